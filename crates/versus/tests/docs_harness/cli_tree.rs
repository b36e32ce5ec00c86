//! The command line as clap defines it (`src/cli.rs`, compiled into this test), walked: every
//! subcommand and its flags, and an example's arguments parsed exactly as the binary parses them.

use std::collections::BTreeSet;

use clap::CommandFactory;

use super::cli::Cli;

/// `versus` with every subcommand, built (so that global flags, `--help` and `--version` are on
/// every subcommand, as the binary sees them).
pub fn versus() -> clap::Command {
    let mut command = Cli::command();
    command.build();
    command
}

/// The arguments an example gives `versus`: after `versus`, or after `--` in
/// `cargo run [--release] -- ...`; `None` for any other program.
pub fn versus_args(words: &[String]) -> Option<&[String]> {
    match words {
        [program, rest @ ..] if program == "versus" => Some(rest),
        [cargo, run, rest @ ..] if cargo == "cargo" && run == "run" => {
            let separator = rest.iter().position(|w| w == "--")?;
            let before = &rest[..separator];
            let only_selects_versus = before.iter().all(|w| {
                matches!(
                    w.as_str(),
                    "--release" | "-p" | "--bin" | "versus" | "--locked"
                )
            });
            only_selects_versus.then_some(&rest[separator + 1..])
        }
        _ => None,
    }
}

/// Parses `versus ARGS` as the binary does; clap's message (its first lines) if it refuses them.
/// `--help` and `--version` are accepted.
pub fn check_args(args: &[String]) -> Result<(), String> {
    let argv = std::iter::once("versus".to_string()).chain(args.iter().cloned());
    match Cli::command().try_get_matches_from(argv) {
        Ok(_) => Ok(()),
        Err(error)
            if matches!(
                error.kind(),
                clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion
            ) =>
        {
            Ok(())
        }
        Err(error) => Err(error
            .render()
            .to_string()
            .lines()
            .take_while(|line| !line.starts_with("For more information"))
            .filter(|line| !line.trim().is_empty())
            .collect::<Vec<_>>()
            .join(" / ")),
    }
}

/// The subcommand `args` names (`["model", "tiny"]`), as far as its words name subcommands;
/// empty for `versus` alone.
pub fn subcommand_path(root: &clap::Command, args: &[String]) -> Vec<String> {
    let mut path = Vec::new();
    let mut command = root;
    let mut words = args.iter();
    while let Some(word) = words.next() {
        if word.starts_with('-') {
            // A global flag before the subcommand takes a value (`--db PATH`), a switch none.
            let takes_value = flag_named(command, word)
                .is_some_and(|arg| arg.get_action().takes_values() && !word.contains('='));
            if takes_value {
                words.next();
            }
            continue;
        }
        match command.find_subcommand(word) {
            Some(sub) => {
                path.push(sub.get_name().to_string());
                command = sub;
            }
            None => break,
        }
    }
    path
}

/// The command at `path` under `root`.
pub fn command_at<'a>(root: &'a clap::Command, path: &[String]) -> Option<&'a clap::Command> {
    path.iter()
        .try_fold(root, |command, name| command.find_subcommand(name))
}

/// The visible argument `flag` (`--model`, `--model=x`, `-m`) names on `command`.
pub fn flag_named<'a>(command: &'a clap::Command, flag: &str) -> Option<&'a clap::Arg> {
    let flag = flag.split_once('=').map_or(flag, |(name, _)| name);
    command.get_arguments().filter(|arg| !arg.is_hide_set()).find(|arg| {
        if let Some(long) = flag.strip_prefix("--") {
            arg.get_long() == Some(long)
                || arg.get_all_aliases().is_some_and(|a| a.contains(&long))
        } else if let Some(short) = flag.strip_prefix('-') {
            let mut chars = short.chars();
            matches!((chars.next(), chars.next()), (Some(c), None) if arg.get_short() == Some(c))
        } else {
            false
        }
    })
}

/// Whether a word is written as a flag (`--x`, `-x`), not a value such as `-1` or `--`.
pub fn is_flag(word: &str) -> bool {
    let name = word.trim_start_matches('-');
    (word.starts_with("--") && name.len() > 1 || word.starts_with('-') && name.len() == 1)
        && name.starts_with(|c: char| c.is_ascii_alphabetic())
}

/// Every subcommand path (`run`, `model`, `model tiny`, ...), parents before children.
pub fn subcommand_paths(root: &clap::Command) -> Vec<Vec<String>> {
    fn walk(command: &clap::Command, prefix: &[String], out: &mut Vec<Vec<String>>) {
        for sub in command.get_subcommands().filter(|s| !s.is_hide_set()) {
            if sub.get_name() == "help" {
                continue;
            }
            let mut path = prefix.to_vec();
            path.push(sub.get_name().to_string());
            out.push(path.clone());
            walk(sub, &path, out);
        }
    }
    let mut out = Vec::new();
    walk(root, &[], &mut out);
    out
}

/// A command's visible flags, each as it is best written: `--long`, or `-s` when it has no long
/// name. Positional arguments are not flags.
pub fn flags_of(command: &clap::Command) -> BTreeSet<String> {
    command
        .get_arguments()
        .filter(|arg| !arg.is_hide_set() && !arg.is_positional())
        .filter_map(|arg| {
            arg.get_long()
                .map(|long| format!("--{long}"))
                .or_else(|| arg.get_short().map(|short| format!("-{short}")))
        })
        .collect()
}

/// The flags defined on `versus` itself (`--db`, `--quiet`, `--help`, `--version`): they work on
/// every subcommand, and are documented once.
pub fn global_flags(root: &clap::Command) -> BTreeSet<String> {
    flags_of(root)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(text: &str) -> Vec<String> {
        text.split_whitespace().map(str::to_string).collect()
    }

    #[test]
    fn arguments_parse_as_the_binary_parses_them() {
        assert!(check_args(&words("run --builtin seed -m openai:gpt-4o-mini")).is_ok());
        assert!(check_args(&words("serve --help")).is_ok());
        let unknown = check_args(&words("run --builtin seed --no-such-flag")).unwrap_err();
        assert!(unknown.contains("--no-such-flag"), "{unknown}");
        let bad_value = check_args(&words("model tiny ./t --arch phi3|llama")).unwrap_err();
        assert!(bad_value.contains("phi3|llama"), "{bad_value}");
    }

    #[test]
    fn cargo_run_runs_versus() {
        let demo = words("cargo run --release -- demo");
        assert_eq!(versus_args(&demo), Some(&demo[4..]));
        assert_eq!(versus_args(&words("cargo build --release")), None);
        assert_eq!(versus_args(&words("cargo run --example x -- demo")), None);
        assert_eq!(versus_args(&words("curl -s x")), None);
    }

    #[test]
    fn the_tree_knows_subcommands_and_flags() {
        let root = versus();
        let path = subcommand_path(&root, &words("--db x.db model tiny ./t --arch phi3"));
        assert_eq!(path, ["model", "tiny"]);
        let tiny = command_at(&root, &path).unwrap();
        assert!(flag_named(tiny, "--arch").is_some());
        assert!(
            flag_named(tiny, "--db").is_some(),
            "global flags reach subcommands"
        );
        assert!(flag_named(tiny, "--judge").is_none());
        let run = command_at(&root, &words("run")).unwrap();
        assert!(flag_named(run, "-m").is_some());
        assert!(flag_named(run, "--model=x").is_some());
        assert!(subcommand_paths(&root).contains(&words("votes import")));
        assert!(flags_of(run).contains("--judge"));
        assert!(global_flags(&root).contains("--db"));
        assert!(is_flag("--top-k") && is_flag("-m"));
        assert!(!is_flag("--") && !is_flag("-1") && !is_flag("-"));
    }
}
