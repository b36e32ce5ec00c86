//! The shell the docs' examples are written in, as far as the test reads it: one simple command
//! per line (`\` continues a line), words with POSIX quoting, `NAME=VALUE` prefixes, and a
//! trailing `# comment`. Pipes, redirections, `;`, `&&`, `$` expansions and globs are refused:
//! the runner would have to guess what they do.

/// One command line of an example.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShellCommand {
    /// Its first line in the Markdown file.
    pub line: usize,
    /// `NAME=VALUE` assignments before the program, for this command only.
    pub env: Vec<(String, String)>,
    /// The program and its arguments, unquoted.
    pub words: Vec<String>,
    /// The trailing comment, without `#`.
    pub comment: Option<String>,
}

impl ShellCommand {
    /// The command as a reader sees it (quoting aside).
    pub fn display(&self) -> String {
        let env = self
            .env
            .iter()
            .map(|(name, value)| format!("{name}={value}"));
        let words = self.words.iter().map(|word| {
            if word.is_empty() || word.contains([' ', '"', '\'']) {
                format!("'{}'", word.replace('\'', "'\\''"))
            } else {
                word.clone()
            }
        });
        env.chain(words).collect::<Vec<_>>().join(" ")
    }

    /// The exit code its comment documents (`# exit 2: ...`, `# exits 1 when ...`), else 0.
    pub fn expected_exit(&self) -> i32 {
        let Some(comment) = &self.comment else {
            return 0;
        };
        let words: Vec<&str> = comment.split_whitespace().collect();
        words
            .windows(2)
            .find_map(|pair| match pair {
                ["exit" | "exits", code] => {
                    code.trim_end_matches([':', ',', '.', ';']).parse().ok()
                }
                _ => None,
            })
            .unwrap_or(0)
    }
}

/// Characters with a meaning to the shell that the runner does not give them.
const UNSUPPORTED: &str = "|&;<>()$`*?";

/// Splits a block into commands. `first_line` is the block's first line in its file; errors
/// read `LINE: what`.
pub fn parse_block(text: &str, first_line: usize) -> Result<Vec<ShellCommand>, String> {
    let mut commands = Vec::new();
    let mut chars = text.chars().peekable();
    let mut line = first_line;
    let mut words: Vec<String> = Vec::new();
    let mut word: Option<String> = None;
    let mut comment: Option<String> = None;
    let mut command_line = line;

    let finish = |words: &mut Vec<String>,
                  comment: &mut Option<String>,
                  commands: &mut Vec<ShellCommand>,
                  at: usize| {
        if !words.is_empty() {
            let mut env = Vec::new();
            let mut rest = std::mem::take(words).into_iter().peekable();
            while let Some(pair) = rest.next_if(|w| assignment(w).is_some()) {
                if let Some((name, value)) = pair.split_once('=') {
                    env.push((name.to_string(), value.to_string()));
                }
            }
            commands.push(ShellCommand {
                line: at,
                env,
                words: rest.collect(),
                comment: comment.take(),
            });
        }
        comment.take();
    };

    while let Some(c) = chars.next() {
        match c {
            '\n' => {
                if let Some(done) = word.take() {
                    words.push(done);
                }
                finish(&mut words, &mut comment, &mut commands, command_line);
                line += 1;
                command_line = line;
            }
            ' ' | '\t' => {
                if let Some(done) = word.take() {
                    words.push(done);
                }
            }
            '#' if word.is_none() => {
                let mut text = String::new();
                while let Some(&next) = chars.peek() {
                    if next == '\n' {
                        break;
                    }
                    text.push(next);
                    chars.next();
                }
                comment = Some(text.trim().to_string());
            }
            '\\' => match chars.next() {
                Some('\n') => {
                    line += 1;
                }
                Some(escaped) => word.get_or_insert_with(String::new).push(escaped),
                None => return Err(format!("{line}: a `\\` at the end of the block")),
            },
            '\'' => {
                let current = word.get_or_insert_with(String::new);
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(inner) => {
                            if inner == '\n' {
                                line += 1;
                            }
                            current.push(inner);
                        }
                        None => return Err(format!("{command_line}: an unclosed `'`")),
                    }
                }
            }
            '"' => {
                let current = word.get_or_insert_with(String::new);
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(escaped @ ('$' | '`' | '"' | '\\')) => current.push(escaped),
                            Some('\n') => line += 1,
                            Some(other) => {
                                current.push('\\');
                                current.push(other);
                            }
                            None => return Err(format!("{command_line}: an unclosed `\"`")),
                        },
                        Some(expansion @ ('$' | '`')) => {
                            return Err(format!(
                                "{line}: `{expansion}` inside double quotes: the docs test does not expand it; quote with '...' or write the value"
                            ))
                        }
                        Some(inner) => {
                            if inner == '\n' {
                                line += 1;
                            }
                            current.push(inner);
                        }
                        None => return Err(format!("{command_line}: an unclosed `\"`")),
                    }
                }
            }
            c if UNSUPPORTED.contains(c) => {
                return Err(format!(
                    "{line}: `{c}` is shell syntax the docs test does not run (pipes, redirections, lists, expansions, globs); quote it if it is text, or write one simple command per line"
                ));
            }
            c => word.get_or_insert_with(String::new).push(c),
        }
    }
    if let Some(done) = word.take() {
        words.push(done);
    }
    finish(&mut words, &mut comment, &mut commands, command_line);
    Ok(commands)
}

/// `NAME=VALUE` with a valid variable name: its name.
pub fn assignment(word: &str) -> Option<&str> {
    let (name, _) = word.split_once('=')?;
    let mut chars = name.chars();
    let first = chars.next()?;
    (first.is_ascii_alphabetic() || first == '_')
        .then_some(())
        .filter(|()| chars.all(|c| c.is_ascii_alphanumeric() || c == '_'))
        .map(|()| name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(text: &str) -> Vec<Vec<String>> {
        parse_block(text, 1)
            .unwrap()
            .into_iter()
            .map(|c| c.words)
            .collect()
    }

    #[test]
    fn lines_quotes_comments_and_continuations() {
        let text = "versus chat local:./tiny \"Hi there\" --system 'Be brief.'   # a comment\n\n# a line of comment\ncurl -s http://x \\\n  -d '{\"a\": 1}'\n";
        let commands = parse_block(text, 10).unwrap();
        assert_eq!(commands.len(), 2);
        assert_eq!(
            commands[0].words,
            [
                "versus",
                "chat",
                "local:./tiny",
                "Hi there",
                "--system",
                "Be brief."
            ]
        );
        assert_eq!(commands[0].comment.as_deref(), Some("a comment"));
        assert_eq!(commands[0].line, 10);
        assert_eq!(
            commands[1].words,
            ["curl", "-s", "http://x", "-d", "{\"a\": 1}"]
        );
        assert_eq!(commands[1].line, 13);
        assert_eq!(
            words("versus a#b"),
            [["versus", "a#b"]],
            "# inside a word is text"
        );
    }

    #[test]
    fn assignments_before_the_program_are_its_environment() {
        let commands =
            parse_block("VIEW_TOKEN=... versus view --token-env VIEW_TOKEN\n", 1).unwrap();
        assert_eq!(
            commands[0].env,
            [("VIEW_TOKEN".to_string(), "...".to_string())]
        );
        assert_eq!(
            commands[0].words,
            ["versus", "view", "--token-env", "VIEW_TOKEN"]
        );
        assert_eq!(
            words("versus run --model a=b:c"),
            [["versus", "run", "--model", "a=b:c"]]
        );
    }

    #[test]
    fn shell_syntax_it_cannot_run_is_refused() {
        for text in [
            "versus model tiny ./t --arch phi3|llama",
            "versus runs > runs.txt",
            "versus runs && versus report",
            "versus report --run $RUN",
            "versus chat local:./t \"$PROMPT\"",
            "versus run *.toml",
            "versus chat local:./t 'unclosed",
        ] {
            assert!(parse_block(text, 1).is_err(), "{text}");
        }
        assert!(parse_block("versus chat local:./t 'a|b > c?'", 1).is_ok());
    }

    #[test]
    fn comments_document_exit_codes() {
        let expected = |text: &str| parse_block(text, 1).unwrap()[0].expected_exit();
        assert_eq!(expected("versus runs"), 0);
        assert_eq!(expected("versus runs   # past runs"), 0);
        assert_eq!(
            expected("versus run --builtin sed   # exit 2: no such suite"),
            2
        );
        assert_eq!(
            expected("versus run x.toml   # exits 1 when a cell fails"),
            1
        );
    }
}
