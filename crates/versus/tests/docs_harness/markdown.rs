//! What the docs test reads from a Markdown page: its fenced `sh` blocks (with the `needs:` marker
//! before each, if any), its fenced TOML blocks, and its inline code spans, each with the section
//! it stands in.

use std::fmt;
use std::ops::Range;

use pulldown_cmark::{CodeBlockKind, Event, HeadingLevel, Options, Parser, Tag, TagEnd};

use super::shell::{self, ShellCommand};

/// Why a block cannot run in the test: the words `<!-- needs: ... -->` may list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// The internet: a download, or a hosted service the fake server cannot stand in for.
    Network,
    /// A real API key or token.
    Key,
    /// A model file nothing in the repository can stand in for.
    Model,
    /// The source tree and its toolchain: building or testing this workspace.
    Workspace,
    /// A PostgreSQL server (`--db postgres://...`, `versus worker`).
    Postgres,
}

impl Need {
    const ALL: [(&'static str, Need); 5] = [
        ("network", Need::Network),
        ("key", Need::Key),
        ("model", Need::Model),
        ("workspace", Need::Workspace),
        ("postgres", Need::Postgres),
    ];

    fn parse(word: &str) -> Option<Need> {
        Need::ALL
            .iter()
            .find(|(name, _)| *name == word)
            .map(|(_, need)| *need)
    }
}

/// Where something is in the docs: `README.md:42`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Place {
    pub file: String,
    pub line: usize,
}

impl fmt::Display for Place {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.file, self.line)
    }
}

/// A fenced `sh` block: its commands, and why it cannot run, if it is marked.
#[derive(Debug, Clone)]
pub struct ShBlock {
    /// The line of the opening fence.
    pub place: Place,
    pub text: String,
    pub needs: Vec<Need>,
    pub commands: Vec<ShellCommand>,
    /// The byte range of the innermost section containing it (see [`CodeSpan::section`]).
    pub section: Range<usize>,
}

impl ShBlock {
    /// Whether the test runs it (else it only checks that it parses).
    pub fn runs(&self) -> bool {
        self.needs.is_empty()
    }
}

/// An inline code span, with the innermost section it stands in.
#[derive(Debug, Clone)]
pub struct CodeSpan {
    pub place: Place,
    pub text: String,
    /// The byte range of the innermost section (heading to the next heading of its level or
    /// above) containing it: code in the same range is "nearby".
    pub section: Range<usize>,
}

/// One Markdown page, read.
#[derive(Debug, Clone, Default)]
pub struct Page {
    pub file: String,
    pub sh_blocks: Vec<ShBlock>,
    /// Fenced `toml` blocks: their place and text.
    pub toml_blocks: Vec<(Place, String)>,
    /// Every inline code span.
    pub spans: Vec<CodeSpan>,
}

/// Fence languages that are shell by another name: refused, so that no shell example escapes the
/// test by being labelled differently.
const OTHER_SHELL_NAMES: [&str; 5] = ["bash", "shell", "console", "zsh", "shell-session"];

/// Reads a page. Errors name the file and line: a malformed marker, a marker not followed by a
/// `sh` block, a shell block labelled other than `sh`, or a command the example runner cannot read.
pub fn read_page(file: &str, markdown: &str) -> Result<Page, String> {
    let line_of = |offset: usize| markdown[..offset].matches('\n').count() + 1;
    let place = |offset: usize| Place {
        file: file.to_string(),
        line: line_of(offset),
    };
    let sections = sections(markdown);
    let section_of = |offset: usize| -> Range<usize> {
        sections
            .iter()
            .filter(|range| range.contains(&offset))
            .min_by_key(|range| range.len())
            .cloned()
            .unwrap_or(0..markdown.len())
    };

    let mut page = Page {
        file: file.to_string(),
        ..Page::default()
    };
    let mut errors = Vec::new();
    // A `needs:` marker waiting for its block: the needs and the marker's offset.
    let mut pending: Option<(Vec<Need>, usize)> = None;
    // The code block being read: its language, the fence's offset, its text.
    let mut open_block: Option<(String, usize, String)> = None;

    for (event, range) in Parser::new_ext(markdown, Options::ENABLE_TABLES).into_offset_iter() {
        match event {
            Event::Start(Tag::CodeBlock(kind)) => {
                let language = match kind {
                    CodeBlockKind::Fenced(info) => {
                        info.split_whitespace().next().unwrap_or("").to_string()
                    }
                    CodeBlockKind::Indented => String::new(),
                };
                open_block = Some((language, range.start, String::new()));
            }
            Event::Text(text) if open_block.is_some() => {
                if let Some((_, _, code)) = open_block.as_mut() {
                    code.push_str(&text);
                }
            }
            Event::End(TagEnd::CodeBlock) => {
                let Some((language, start, code)) = open_block.take() else {
                    continue;
                };
                let fence = place(start);
                let needs = pending.take().map(|(needs, _)| needs).unwrap_or_default();
                if language == "sh" {
                    match shell::parse_block(&code, fence.line + 1) {
                        Ok(commands) => page.sh_blocks.push(ShBlock {
                            place: fence,
                            text: code,
                            needs,
                            commands,
                            section: section_of(start),
                        }),
                        Err(error) => errors.push(format!("{file}:{error}")),
                    }
                } else if OTHER_SHELL_NAMES.contains(&language.as_str()) {
                    errors.push(format!(
                        "{fence}: a ```{language} block: label shell examples ```sh, so that the docs test runs them"
                    ));
                } else if language == "toml" {
                    page.toml_blocks.push((fence, code));
                }
            }
            Event::Code(text) => page.spans.push(CodeSpan {
                place: place(range.start),
                text: text.to_string(),
                section: section_of(range.start),
            }),
            Event::Html(html) | Event::InlineHtml(html) => {
                let Some(marker) = marker_text(&html) else {
                    continue;
                };
                if let Some((_, earlier)) = pending.take() {
                    errors.push(format!(
                        "{}: a `needs:` marker not followed by a ```sh block",
                        place(earlier)
                    ));
                }
                match parse_needs(marker) {
                    Ok(needs) => pending = Some((needs, range.start)),
                    Err(error) => errors.push(format!("{}: {error}", place(range.start))),
                }
            }
            Event::Start(tag) if pending.is_some() && !matches!(tag, Tag::HtmlBlock) => {
                if let Some((_, earlier)) = pending.take() {
                    errors.push(format!(
                        "{}: a `needs:` marker not followed by a ```sh block",
                        place(earlier)
                    ));
                }
            }
            _ => {}
        }
    }
    if let Some((_, earlier)) = pending {
        errors.push(format!(
            "{}: a `needs:` marker not followed by a ```sh block",
            place(earlier)
        ));
    }
    if errors.is_empty() {
        Ok(page)
    } else {
        Err(errors.join("\n"))
    }
}

/// The inside of a `<!-- needs: ... -->` comment, or `None` for any other HTML.
fn marker_text(html: &str) -> Option<&str> {
    let inner = html
        .trim()
        .strip_prefix("<!--")?
        .strip_suffix("-->")?
        .trim();
    inner.starts_with("needs").then_some(inner)
}

/// `needs: network, key` into its needs; anything else is an error saying what is allowed.
fn parse_needs(marker: &str) -> Result<Vec<Need>, String> {
    let allowed = Need::ALL.map(|(name, _)| name).join(", ");
    let list = marker.strip_prefix("needs:").ok_or_else(|| {
        format!("`<!-- {marker} -->`: write `<!-- needs: WHAT -->`, WHAT among {allowed}")
    })?;
    let needs: Result<Vec<Need>, String> = list
        .split(',')
        .map(str::trim)
        .map(|word| {
            Need::parse(word).ok_or_else(|| {
                format!("`<!-- {marker} -->`: `{word}` is not a need; the needs are {allowed}")
            })
        })
        .collect();
    let needs = needs?;
    if needs.is_empty() {
        return Err(format!("`<!-- {marker} -->` lists no need"));
    }
    Ok(needs)
}

/// The byte range of every section: from its heading to the next heading of the same level or
/// above (or the end).
fn sections(markdown: &str) -> Vec<Range<usize>> {
    let mut headings: Vec<(HeadingLevel, usize)> = Vec::new();
    for (event, range) in Parser::new_ext(markdown, Options::ENABLE_TABLES).into_offset_iter() {
        if let Event::Start(Tag::Heading { level, .. }) = event {
            headings.push((level, range.start));
        }
    }
    headings
        .iter()
        .enumerate()
        .map(|(index, (level, start))| {
            let end = headings[index + 1..]
                .iter()
                .find(|(other, _)| other <= level)
                .map_or(markdown.len(), |(_, offset)| *offset);
            *start..end
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sh_blocks_carry_their_marker_and_line() {
        let page = read_page(
            "DOC.md",
            "# Title\n\n```sh\nversus runs\n```\n\n<!-- needs: network, key -->\n```sh\nversus run --builtin seed\n```\n",
        )
        .unwrap();
        assert_eq!(page.sh_blocks.len(), 2);
        assert_eq!(page.sh_blocks[0].place.to_string(), "DOC.md:3");
        assert!(page.sh_blocks[0].runs());
        assert_eq!(page.sh_blocks[1].needs, vec![Need::Network, Need::Key]);
        assert_eq!(page.sh_blocks[1].commands[0].line, 9);
    }

    #[test]
    fn bad_markers_and_other_shell_labels_are_errors() {
        let unknown = read_page(
            "D.md",
            "<!-- needs: internet -->\n```sh\nversus runs\n```\n",
        );
        assert!(
            unknown
                .as_ref()
                .unwrap_err()
                .contains("`internet` is not a need"),
            "{unknown:?}"
        );
        let stray = read_page(
            "D.md",
            "<!-- needs: key -->\n\nSome text.\n\n```sh\nversus runs\n```\n",
        );
        assert!(
            stray
                .as_ref()
                .unwrap_err()
                .contains("D.md:1: a `needs:` marker not followed"),
            "{stray:?}"
        );
        let bash = read_page("D.md", "text\n\n```bash\nversus runs\n```\n");
        assert!(
            bash.as_ref()
                .unwrap_err()
                .contains("D.md:3: a ```bash block"),
            "{bash:?}"
        );
        // Other comments are left alone.
        assert!(read_page("D.md", "<!-- a note -->\n```sh\nversus runs\n```\n").is_ok());
    }

    #[test]
    fn code_knows_its_innermost_section() {
        let markdown = "# A\n\n`versus view`\n\n## B\n\n`--port`\n\n## C\n\n`--host`\n";
        let page = read_page("D.md", markdown).unwrap();
        let section = |code: &str| {
            let found = page.spans.iter().find(|c| c.text == code).unwrap();
            &markdown[found.section.clone()]
        };
        assert!(section("versus view").starts_with("# A"));
        assert!(
            section("versus view").contains("## C"),
            "a section holds its subsections"
        );
        assert_eq!(section("--port"), "## B\n\n`--port`\n\n");
        assert!(section("--host").starts_with("## C"));
    }
}
