//! The docs against `--help`: every subcommand and flag is documented, and every flag the docs
//! name exists.
//!
//! The docs mention the command line in code: inline spans and the commands of `sh` blocks.
//! A mention that starts with `versus SUBCOMMAND` (or `cargo run -- SUBCOMMAND`) *invokes* that
//! subcommand, and its flags must be that subcommand's; one that starts with a flag
//! (`` `--top-k` ``) is *bare*, and its flags must exist on some command. Mentions of other
//! programs (`cargo test`, `curl`) are not versus's. A subcommand's flag is documented when a
//! mention invoking it uses the flag, or when a bare mention of the flag stands in a section
//! (the innermost heading around it) that also invokes the subcommand; a flag of `versus`
//! itself (`--db`, `--quiet`, `--help`, `--version`) is documented by any mention.

use std::ops::Range;

use super::cli_tree::{self, command_at, flag_named, flags_of, global_flags, is_flag};
use super::markdown::Place;
use super::Docs;

/// What a piece of code in the docs says about the command line.
#[derive(Debug)]
enum Kind {
    /// `versus PATH ...`.
    Invocation { path: Vec<String> },
    /// It starts with a flag.
    Bare,
    /// Another program, or not a command.
    Other,
}

#[derive(Debug)]
struct Mention {
    place: Place,
    text: String,
    /// The page it is on, and the byte range of its innermost section there.
    page: usize,
    section: Range<usize>,
    kind: Kind,
    /// Its words that are written as flags.
    flags: Vec<String>,
}

fn mentions(docs: &Docs, root: &clap::Command) -> Vec<Mention> {
    let mut out = Vec::new();
    let mut add = |page: usize, place: Place, section: Range<usize>, words: Vec<String>| {
        let (kind, args): (Kind, &[String]) = match cli_tree::versus_args(&words) {
            Some(args) => (
                Kind::Invocation {
                    path: cli_tree::subcommand_path(root, args),
                },
                args,
            ),
            None if words.first().is_some_and(|w| is_flag(w)) => (Kind::Bare, &words),
            None => (Kind::Other, &[]),
        };
        let flags = args
            .iter()
            .take_while(|w| *w != "--")
            .filter(|w| is_flag(w))
            .cloned()
            .collect();
        out.push(Mention {
            place,
            text: words.join(" "),
            page,
            section,
            kind,
            flags,
        });
    };
    for (index, page) in docs.pages.iter().enumerate() {
        for span in &page.spans {
            let words = span.text.split_whitespace().map(str::to_string).collect();
            add(index, span.place.clone(), span.section.clone(), words);
        }
        for block in &page.sh_blocks {
            for command in &block.commands {
                let place = Place {
                    file: page.file.clone(),
                    line: command.line,
                };
                add(index, place, block.section.clone(), command.words.clone());
            }
        }
    }
    out
}

/// The flag name a word writes: `--model=x` is `--model`.
fn flag_name(word: &str) -> &str {
    word.split_once('=').map_or(word, |(name, _)| name)
}

/// Subcommands and flags in `--help` that the docs never mention (as described above).
pub fn undocumented(docs: &Docs) -> Vec<String> {
    let root = cli_tree::versus();
    let mentions = mentions(docs, &root);
    let invokes = |mention: &Mention, path: &[String]| matches!(&mention.kind, Kind::Invocation { path: p } if p == path);
    let mut missing = Vec::new();

    for path in cli_tree::subcommand_paths(&root) {
        let named = mentions
            .iter()
            .any(|m| matches!(&m.kind, Kind::Invocation { path: p } if p.starts_with(&path)));
        if !named {
            missing.push(format!(
                "`versus {}` is not shown: no code in the docs runs it",
                path.join(" ")
            ));
        }
    }

    let globals = global_flags(&root);
    for flag in &globals {
        if !mentions
            .iter()
            .any(|m| m.flags.iter().any(|f| flag_name(f) == flag))
        {
            missing.push(format!("`versus {flag}` is not documented"));
        }
    }

    for path in cli_tree::subcommand_paths(&root) {
        let Some(command) = command_at(&root, &path) else {
            continue;
        };
        if command.has_subcommands() {
            continue;
        }
        for flag in flags_of(command).difference(&globals) {
            let Some(arg) = flag_named(command, flag) else {
                continue;
            };
            let used_in_invocation = mentions.iter().any(|m| {
                invokes(m, &path)
                    && m.flags
                        .iter()
                        .any(|f| flag_named(command, f).is_some_and(|a| a.get_id() == arg.get_id()))
            });
            let nearby = || {
                mentions.iter().any(|bare| {
                    matches!(bare.kind, Kind::Bare)
                        && bare.flags.iter().any(|f| flag_name(f) == flag)
                        && mentions.iter().any(|m| {
                            invokes(m, &path)
                                && m.page == bare.page
                                && section_holds(&bare.section, m)
                        })
                })
            };
            if !used_in_invocation && !nearby() {
                missing.push(format!(
                    "`versus {} {flag}` is not documented: use it in an example, or name it in a section that shows `versus {}`",
                    path.join(" "),
                    path.join(" ")
                ));
            }
        }
    }
    missing
}

/// Whether a mention stands inside a section: sections nest, so its own (innermost) section lies
/// inside every section that contains it.
fn section_holds(section: &Range<usize>, mention: &Mention) -> bool {
    section.start <= mention.section.start && mention.section.end <= section.end
}

/// Flags the docs name that do not exist: on the subcommand a mention invokes, or (for a bare
/// mention) on any command.
pub fn unknown_flags(docs: &Docs) -> Vec<String> {
    let root = cli_tree::versus();
    let mut every_command = vec![&root];
    for path in cli_tree::subcommand_paths(&root) {
        if let Some(command) = command_at(&root, &path) {
            every_command.push(command);
        }
    }
    let mut unknown = Vec::new();
    for mention in mentions(docs, &root) {
        for flag in &mention.flags {
            match &mention.kind {
                Kind::Invocation { path } => {
                    let Some(command) = command_at(&root, path) else {
                        continue;
                    };
                    if flag_named(command, flag).is_none() {
                        let name = if path.is_empty() {
                            "versus".to_string()
                        } else {
                            format!("versus {}", path.join(" "))
                        };
                        unknown.push(format!(
                            "{}: `{}`: `{name}` has no {}",
                            mention.place,
                            mention.text,
                            flag_name(flag)
                        ));
                    }
                }
                Kind::Bare => {
                    if !every_command
                        .iter()
                        .any(|command| flag_named(command, flag).is_some())
                    {
                        unknown.push(format!(
                            "{}: `{}`: no versus command has {}",
                            mention.place,
                            mention.text,
                            flag_name(flag)
                        ));
                    }
                }
                Kind::Other => {}
            }
        }
    }
    unknown
}
