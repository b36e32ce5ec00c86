//! The judge's prompt files and their placeholders: the builtin prompts (`crates/versus/prompts/`),
//! a suite's `[judge] prompts` folder replacing them file by file, `criteria.toml`, and filling
//! `{{placeholders}}`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context};
use serde::Deserialize;
use versus_core::suggest::closest;

/// One prompt file: its name (the same in the binary and in an override folder), its builtin
/// text, and the placeholders it may use and must use.
struct PromptFile {
    name: &'static str,
    builtin: &'static str,
    allowed: &'static [&'static str],
    /// A prompt that never shows the judge the question or the answers cannot be judged by.
    required: &'static [&'static str],
}

const PAIRWISE: PromptFile = PromptFile {
    name: "pairwise.md",
    builtin: include_str!("../../prompts/pairwise.md"),
    allowed: &["question", "answer_a", "answer_b", "criteria", "category"],
    required: &["question", "answer_a", "answer_b"],
};

const PAIRWISE_REFERENCE: PromptFile = PromptFile {
    name: "pairwise_reference.md",
    builtin: include_str!("../../prompts/pairwise_reference.md"),
    allowed: &[
        "question",
        "answer_a",
        "answer_b",
        "reference",
        "criteria",
        "category",
    ],
    required: &["question", "answer_a", "answer_b", "reference"],
};

const SINGLE: PromptFile = PromptFile {
    name: "single.md",
    builtin: include_str!("../../prompts/single.md"),
    allowed: &["question", "answer", "criteria", "category"],
    required: &["question", "answer"],
};

const SINGLE_REFERENCE: PromptFile = PromptFile {
    name: "single_reference.md",
    builtin: include_str!("../../prompts/single_reference.md"),
    allowed: &["question", "answer", "reference", "criteria", "category"],
    required: &["question", "answer", "reference"],
};

const CRITERIA_FILE: &str = "criteria.toml";
const BUILTIN_CRITERIA: &str = include_str!("../../prompts/criteria.toml");

/// A prompt template, checked when loaded, with where it came from.
#[derive(Debug, Clone)]
pub(super) struct Template {
    /// `builtin:pairwise.md`, or the override file's path.
    pub(super) origin: String,
    pub(super) text: String,
}

/// What the judge weighs, by task category (`criteria.toml`).
#[derive(Debug, Clone)]
pub(super) struct Criteria {
    /// For every category not listed.
    default: String,
    by_category: BTreeMap<String, String>,
}

/// `criteria.toml` as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CriteriaFile {
    default: Option<String>,
    #[serde(default)]
    categories: BTreeMap<String, String>,
}

impl Criteria {
    /// Parses a criteria file; one without `default` takes `fallback_default` (the builtin's).
    fn parse(text: &str, origin: &str, fallback_default: Option<&str>) -> anyhow::Result<Criteria> {
        let file: CriteriaFile = toml::from_str(text)
            .map_err(|e| anyhow!("{origin} is not a valid judge criteria file: {e}"))?;
        let default = file
            .default
            .or_else(|| fallback_default.map(str::to_string))
            .ok_or_else(|| {
                anyhow!("{origin}: `default` (the criteria for other categories) is missing")
            })?;
        Ok(Criteria {
            default,
            by_category: file.categories,
        })
    }

    pub(super) fn for_category(&self, category: &str) -> &str {
        self.by_category
            .get(category)
            .map_or(self.default.as_str(), String::as_str)
    }
}

/// The judge's prompts: the four templates and the criteria.
#[derive(Debug, Clone)]
pub struct Prompts {
    pub(super) pairwise: Template,
    pub(super) pairwise_reference: Template,
    pub(super) single: Template,
    pub(super) single_reference: Template,
    pub(super) criteria: Criteria,
}

impl Prompts {
    /// The builtin prompts, with each file found in `dir` (when given) replacing its builtin one.
    pub fn load(dir: Option<&Path>) -> anyhow::Result<Prompts> {
        if let Some(dir) = dir {
            if !dir.is_dir() {
                bail!(
                    "the judge's prompts folder {} does not exist (`[judge] prompts`)",
                    dir.display()
                );
            }
        }
        let builtin_criteria =
            Criteria::parse(BUILTIN_CRITERIA, &format!("builtin:{CRITERIA_FILE}"), None)?;
        let criteria = match override_file(dir, CRITERIA_FILE) {
            Some(path) => {
                let text = std::fs::read_to_string(&path)
                    .with_context(|| format!("cannot read {}", path.display()))?;
                Criteria::parse(
                    &text,
                    &path.display().to_string(),
                    Some(&builtin_criteria.default),
                )?
            }
            None => builtin_criteria,
        };
        Ok(Prompts {
            pairwise: load_template(dir, &PAIRWISE)?,
            pairwise_reference: load_template(dir, &PAIRWISE_REFERENCE)?,
            single: load_template(dir, &SINGLE)?,
            single_reference: load_template(dir, &SINGLE_REFERENCE)?,
            criteria,
        })
    }
}

/// `dir/name` when it is a file: a missing file falls back to the builtin one.
fn override_file(dir: Option<&Path>, name: &str) -> Option<PathBuf> {
    dir.map(|dir| dir.join(name)).filter(|path| path.is_file())
}

fn load_template(dir: Option<&Path>, file: &PromptFile) -> anyhow::Result<Template> {
    let template = match override_file(dir, file.name) {
        Some(path) => Template {
            text: std::fs::read_to_string(&path)
                .with_context(|| format!("cannot read {}", path.display()))?,
            origin: path.display().to_string(),
        },
        None => Template {
            origin: format!("builtin:{}", file.name),
            text: file.builtin.to_string(),
        },
    };
    check_placeholders(file, &template)?;
    Ok(template)
}

// ---- rendering ----

/// A template cut into literal text and `{{placeholders}}`.
#[derive(Debug, PartialEq)]
enum Piece<'t> {
    Text(&'t str),
    Placeholder(&'t str),
}

/// Cuts a template at its `{{name}}` placeholders (spaces inside the braces allowed). Only an
/// identifier between the braces makes a placeholder; any other `{{` (JSON or code in a prompt)
/// is text.
fn pieces(template: &str) -> Vec<Piece<'_>> {
    let mut pieces = Vec::new();
    let mut text_start = 0;
    let mut search_from = 0;
    while let Some(open) = template[search_from..].find("{{").map(|i| i + search_from) {
        let inner_start = open + 2;
        let Some(close) = template[inner_start..].find("}}").map(|i| i + inner_start) else {
            break;
        };
        let name = template[inner_start..close].trim();
        if is_identifier(name) {
            if text_start < open {
                pieces.push(Piece::Text(&template[text_start..open]));
            }
            pieces.push(Piece::Placeholder(name));
            text_start = close + 2;
            search_from = close + 2;
        } else {
            search_from = open + 1;
        }
    }
    if text_start < template.len() {
        pieces.push(Piece::Text(&template[text_start..]));
    }
    pieces
}

fn is_identifier(name: &str) -> bool {
    name.starts_with(|c: char| c.is_ascii_alphabetic())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Checks that a template uses only the placeholders its file offers, and every one it needs.
fn check_placeholders(file: &PromptFile, template: &Template) -> anyhow::Result<()> {
    let used: Vec<&str> = pieces(&template.text)
        .into_iter()
        .filter_map(|piece| match piece {
            Piece::Placeholder(name) => Some(name),
            Piece::Text(_) => None,
        })
        .collect();
    let offered = || {
        file.allowed
            .iter()
            .map(|name| format!("{{{{{name}}}}}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    if let Some(unknown) = used.iter().find(|name| !file.allowed.contains(name)) {
        let hint = closest(unknown, file.allowed.iter().copied())
            .map(|name| format!("; did you mean `{{{{{name}}}}}`?"))
            .unwrap_or_default();
        bail!(
            "{}: unknown placeholder `{{{{{unknown}}}}}` ({} may use {}){hint}",
            template.origin,
            file.name,
            offered()
        );
    }
    if let Some(missing) = file.required.iter().find(|name| !used.contains(name)) {
        bail!(
            "{}: the prompt never shows the judge `{{{{{missing}}}}}`; {} must include it",
            template.origin,
            file.name
        );
    }
    Ok(())
}

/// Fills a checked template. Values are inserted as they are and never scanned again, so an
/// answer containing `{{answer_b}}` stays text.
pub(super) fn render(template: &str, values: &[(&str, &str)]) -> String {
    let mut out =
        String::with_capacity(template.len() + values.iter().map(|(_, v)| v.len()).sum::<usize>());
    for piece in pieces(template) {
        match piece {
            Piece::Text(text) => out.push_str(text),
            Piece::Placeholder(name) => match values.iter().find(|(key, _)| *key == name) {
                Some((_, value)) => out.push_str(value),
                // Unreachable for checked templates; keeping the text shows the mistake.
                None => {
                    out.push_str("{{");
                    out.push_str(name);
                    out.push_str("}}");
                }
            },
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    // ---- helpers: one per feature, so a new case is one line ----

    const A_START: &str = "[The Start of Assistant A's Answer]";

    /// A prompts folder holding `files` (name, text).
    fn prompts_dir(files: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("create a temporary folder");
        for (name, text) in files {
            std::fs::write(dir.path().join(name), text).expect("write a prompt file");
        }
        dir
    }

    fn load_error(files: &[(&str, &str)]) -> String {
        let dir = prompts_dir(files);
        format!(
            "{:#}",
            Prompts::load(Some(dir.path())).expect_err("an error")
        )
    }

    const VALID_PAIRWISE: &str = "Q: {{question}}\nA: {{answer_a}}\nB: {{answer_b}}\n";

    #[test]
    fn placeholders_are_filled_once() {
        let filled = render(
            "Q: {{question}} / {{ answer_a }} / {{answer_b}} {\"json\": {{1}}}",
            &[
                ("question", "why?"),
                ("answer_a", "I say {{answer_b}}"),
                ("answer_b", "because"),
            ],
        );
        assert_eq!(
            filled,
            "Q: why? / I say {{answer_b}} / because {\"json\": {{1}}}"
        );
    }

    #[test]
    fn prompt_files_name_their_placeholder_mistakes() {
        let error = load_error(&[("pairwise.md", "{{question}} {{answr_a}} {{answer_b}}")]);
        assert!(
            error.contains("pairwise.md: unknown placeholder `{{answr_a}}`"),
            "{error}"
        );
        assert!(error.contains("did you mean `{{answer_a}}`"), "{error}");
        // A placeholder of another prompt is unknown here too.
        let error = load_error(&[("single.md", "{{question}} {{answer}} {{reference}}")]);
        assert!(
            error.contains("single.md: unknown placeholder `{{reference}}`"),
            "{error}"
        );
        let error = load_error(&[("single_reference.md", "{{question}} {{answer}}")]);
        assert!(
            error.contains("single_reference.md: the prompt never shows the judge `{{reference}}`"),
            "{error}"
        );
    }

    #[test]
    fn builtin_prompts_are_valid_and_delimit_the_answers() {
        let prompts = Prompts::load(None).expect("builtin prompts");
        for template in [&prompts.pairwise, &prompts.pairwise_reference] {
            assert!(template.text.contains(A_START), "{}", template.origin);
            assert!(template.text.contains("[[C]]"), "{}", template.origin);
        }
        for template in [&prompts.single, &prompts.single_reference] {
            assert!(
                template.text.contains("Rating: [[5]]"),
                "{}",
                template.origin
            );
        }
        for category in versus_core::suite::KNOWN_CATEGORIES {
            assert!(
                prompts.criteria.by_category.contains_key(*category),
                "criteria for {category}"
            );
        }
        assert!(prompts
            .criteria
            .for_category("poetry-slam")
            .contains("helpfulness"));
    }

    #[test]
    fn prompt_files_override_the_builtin_ones_one_by_one() {
        let dir = prompts_dir(&[
            ("pairwise.md", &format!("HOUSE STYLE\n{VALID_PAIRWISE}")),
            ("criteria.toml", "[categories]\nreasoning = \"rigour\"\n"),
        ]);
        let prompts = Prompts::load(Some(dir.path())).expect("load the overrides");
        assert!(prompts.pairwise.text.starts_with("HOUSE STYLE"));
        assert_eq!(
            prompts.pairwise.origin,
            dir.path().join("pairwise.md").display().to_string()
        );
        assert_eq!(prompts.single.origin, "builtin:single.md");
        assert_eq!(prompts.criteria.for_category("reasoning"), "rigour");
        // The override's categories replace the builtin ones; its missing `default` does not.
        assert!(prompts
            .criteria
            .for_category("coding")
            .contains("helpfulness"));
    }

    #[test]
    fn bad_prompt_folders_are_named() {
        let error = load_error(&[("criteria.toml", "default = [unclosed")]);
        assert!(
            error.contains("criteria.toml is not a valid judge criteria file"),
            "{error}"
        );
        let error = load_error(&[("criteria.toml", "defualt = \"x\"")]);
        assert!(error.contains("criteria.toml"), "{error}");
        let missing = Path::new("/surely/not/a/prompts/folder");
        let error = format!("{:#}", Prompts::load(Some(missing)).expect_err("an error"));
        assert!(
            error.contains("/surely/not/a/prompts/folder does not exist"),
            "{error}"
        );
    }
}
