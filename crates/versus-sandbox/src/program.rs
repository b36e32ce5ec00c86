//! Programs to run: an answer's code joined with a task's tests, bound together through the name
//! `candidate`, so the same tests work whatever the model called its function.
//!
//! The conventions, per language (tests fail by raising, throwing or panicking; passing means the
//! program exits with status 0):
//!
//! - **Python**: the answer runs as its own module `answer` (so an `if __name__ == "__main__":`
//!   demo in it, which might wait for input, does not run), its top-level names are copied into the
//!   test script's globals, and `candidate` is bound to the answer's function. The tests are
//!   top-level statements, typically `assert candidate(10) == 55, "..."`.
//! - **JavaScript**: the answer's code (with ES-module `export` keywords removed, since it runs as a
//!   CommonJS script) comes first; the tests follow inside a block, where
//!   `const candidate = <name>;` is in scope. Tests typically use `require("assert")`.
//! - **Rust**: the answer's code comes first, with a top-level `fn main` of its own renamed out of
//!   the way; then `use crate::<name> as candidate;`; then the tests, which must define
//!   `fn main()` calling `candidate(...)` and panicking (`assert!`, `assert_eq!`) on failure.

use crate::extract::{extract_code_blocks, find_function_name, top_level_function_names};
use crate::Language;

/// A complete program to run in the sandbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Program {
    pub language: Language,
    /// The whole source: for Python and JavaScript the script, for Rust the crate root.
    pub source: String,
}

/// Why an answer could not be turned into a program; a failed check, not a sandbox problem.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AnswerError {
    #[error("the answer has no {language} code block (a fenced ```{language} block)")]
    NoCodeBlock { language: Language },
    #[error("the answer's {language} code defines no top-level function for the tests to call (give the check a `function` name if the answer uses another form)")]
    NoFunction { language: Language },
    #[error("`{name}` is not a valid {language} function name")]
    InvalidFunctionName { name: String, language: Language },
}

impl Program {
    /// A program whose source is already complete.
    pub fn new(language: Language, source: impl Into<String>) -> Program {
        Program {
            language,
            source: source.into(),
        }
    }

    /// The answer's `code` followed by the task's `tests`, with `candidate` bound to the answer's
    /// function `function_name` (see the module documentation for each language's convention).
    /// `function_name` must be an identifier; [`Program::from_answer`] checks that.
    pub fn with_tests(language: Language, code: &str, tests: &str, function_name: &str) -> Program {
        let source = match language {
            Language::Python => python_with_tests(code, tests, function_name),
            Language::JavaScript => javascript_with_tests(code, tests, function_name),
            Language::Rust => rust_with_tests(code, tests, function_name),
        };
        Program { language, source }
    }

    /// The program that runs `tests` against a Markdown answer: its `language` code blocks (those
    /// that define a top-level function, or all of them when none does, so a separate usage
    /// example is left out), bound to the answer's first top-level function, or to
    /// `fallback_function` when the answer defines none.
    pub fn from_answer(
        markdown: &str,
        language: Language,
        tests: &str,
        fallback_function: Option<&str>,
    ) -> Result<Program, AnswerError> {
        let blocks = extract_code_blocks(markdown, language);
        if blocks.iter().all(|block| block.trim().is_empty()) {
            return Err(AnswerError::NoCodeBlock { language });
        }
        let defining: Vec<&String> = blocks
            .iter()
            .filter(|block| !top_level_function_names(block, language).is_empty())
            .collect();
        let code = if defining.is_empty() {
            blocks.join("\n")
        } else {
            defining
                .iter()
                .map(|block| block.as_str())
                .collect::<Vec<_>>()
                .join("\n")
        };
        let name = match find_function_name(&code, language) {
            Some(name) => name,
            None => match fallback_function {
                Some(name) if is_identifier(name) => name.to_string(),
                Some(name) => {
                    return Err(AnswerError::InvalidFunctionName {
                        name: name.to_string(),
                        language,
                    })
                }
                None => return Err(AnswerError::NoFunction { language }),
            },
        };
        Ok(Program::with_tests(language, &code, tests, &name))
    }
}

fn is_identifier(name: &str) -> bool {
    name.chars()
        .next()
        .is_some_and(|c| c.is_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_alphanumeric() || c == '_')
}

/// A double-quoted string literal valid in both Python and JavaScript.
fn string_literal(text: &str) -> String {
    let mut literal = String::with_capacity(text.len() + 2);
    literal.push('"');
    for c in text.chars() {
        match c {
            '\\' => literal.push_str("\\\\"),
            '"' => literal.push_str("\\\""),
            '\n' => literal.push_str("\\n"),
            '\r' => literal.push_str("\\r"),
            '\t' => literal.push_str("\\t"),
            c if c.is_control() || c == '\u{2028}' || c == '\u{2029}' => {
                literal.push_str(&format!("\\u{:04x}", c as u32))
            }
            c => literal.push(c),
        }
    }
    literal.push('"');
    literal
}

fn python_with_tests(code: &str, tests: &str, function_name: &str) -> String {
    let source = string_literal(code);
    format!(
        r#"# The answer runs as its own module, `answer`: its `if __name__ == "__main__":` demo (which
# might wait for input) does not run, and its tracebacks show answer.py's lines.
import linecache as _versus_linecache
import sys as _versus_sys
import types as _versus_types

_versus_source = {source}
_versus_linecache.cache["answer.py"] = (
    len(_versus_source), None, _versus_source.splitlines(True), "answer.py"
)
answer = _versus_types.ModuleType("answer")
answer.__file__ = "answer.py"
_versus_sys.modules["answer"] = answer
exec(compile(_versus_source, "answer.py", "exec"), answer.__dict__)
globals().update({{_k: _v for _k, _v in vars(answer).items() if not _k.startswith("__")}})
candidate = answer.{function_name}

# The task's tests:
{tests}
"#
    )
}

fn javascript_with_tests(code: &str, tests: &str, function_name: &str) -> String {
    let code = strip_module_exports(code);
    // The tests sit in a block so their own `const` declarations (a second
    // `const assert = require("assert")`) cannot collide with the answer's.
    let binding = if function_name == "candidate" {
        String::new()
    } else {
        format!("const candidate = {function_name};\n")
    };
    format!("{code}\n;\n// The task's tests:\n{{\n{binding}{tests}\n}}\n")
}

/// The answer runs as a CommonJS script, where `export` is a syntax error: drop the keyword from
/// top-level declarations, and comment out export lists (`export { a, b };`, `export default a;`).
fn strip_module_exports(code: &str) -> String {
    let mut stripped = String::with_capacity(code.len());
    for line in code.lines() {
        let line = match line.strip_prefix("export ") {
            Some(rest) => {
                let rest = rest.strip_prefix("default ").unwrap_or(rest);
                let declares = ["function", "async ", "class ", "const ", "let ", "var "]
                    .iter()
                    .any(|keyword| rest.starts_with(keyword));
                if declares {
                    rest.to_string()
                } else {
                    format!("// {line}")
                }
            }
            None => line.to_string(),
        };
        stripped.push_str(&line);
        stripped.push('\n');
    }
    stripped
}

fn rust_with_tests(code: &str, tests: &str, function_name: &str) -> String {
    // Inner attributes (`#![allow(...)]`) must open the crate, so they are hoisted.
    let is_inner_attribute = |line: &&str| line.trim_start().starts_with("#![");
    let mut source: String = code
        .lines()
        .chain(tests.lines())
        .filter(is_inner_attribute)
        .map(|line| format!("{line}\n"))
        .collect();
    for line in code.lines().filter(|line| !is_inner_attribute(line)) {
        source.push_str(&rename_answer_main(line));
        source.push('\n');
    }
    if function_name != "candidate" {
        source.push_str(&format!(
            "\n#[allow(unused_imports)]\nuse crate::{function_name} as candidate;\n"
        ));
    }
    source.push_str("\n// The task's tests:\n");
    for line in tests.lines().filter(|line| !is_inner_attribute(line)) {
        source.push_str(line);
        source.push('\n');
    }
    source
}

/// The tests bring the `fn main`; an answer's own (a usage demo) is renamed out of the way.
fn rename_answer_main(line: &str) -> String {
    for prefix in ["fn main(", "pub fn main("] {
        if let Some(rest) = line.strip_prefix(prefix) {
            return format!("#[allow(dead_code)]\nfn versus_answer_main({rest}");
        }
    }
    line.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn string_literals_escape_quotes_backslashes_and_controls() {
        assert_eq!(
            string_literal("a\"b\\c\nd\te\u{1}é"),
            "\"a\\\"b\\\\c\\nd\\te\\u0001é\""
        );
    }

    #[test]
    fn python_binds_candidate() {
        let program = Program::with_tests(
            Language::Python,
            "def fib(n):\n    return n\n",
            "assert candidate(1) == 1",
            "fib",
        );
        assert!(program.source.contains("candidate = answer.fib\n"));
        assert!(program.source.ends_with("assert candidate(1) == 1\n"));
    }

    #[test]
    fn javascript_strips_exports_and_scopes_tests() {
        let program = Program::with_tests(
            Language::JavaScript,
            "export function fib(n) { return n; }\nexport { fib };\n",
            "assert(candidate(1) === 1);",
            "fib",
        );
        assert!(program.source.starts_with("function fib(n)"));
        assert!(program.source.contains("// export { fib };"));
        assert!(program
            .source
            .contains("{\nconst candidate = fib;\nassert(candidate(1) === 1);\n}"));
    }

    #[test]
    fn rust_renames_the_answers_main_and_hoists_inner_attributes() {
        let program = Program::with_tests(
            Language::Rust,
            "#![allow(unused)]\nfn fib(n: u64) -> u64 { n }\nfn main() { println!(\"{}\", fib(3)); }\n",
            "fn main() { assert_eq!(candidate(2), 2); }",
            "fib",
        );
        assert!(program.source.starts_with("#![allow(unused)]\n"));
        assert!(program.source.contains("fn versus_answer_main() {"));
        assert!(program.source.contains("use crate::fib as candidate;"));
        assert!(program
            .source
            .contains("\nfn main() { assert_eq!(candidate(2), 2); }"));
    }

    #[test]
    fn from_answer_leaves_out_usage_blocks_and_reports_missing_code() {
        let markdown = "```python\ndef fibonacci(n):\n    return n\n```\nUsage:\n```python\nprint(fibonacci(input()))\n```\n";
        let program = Program::from_answer(markdown, Language::Python, "pass", None).unwrap();
        assert!(program.source.contains("candidate = answer.fibonacci"));
        assert!(!program.source.contains("input()"));

        let error =
            Program::from_answer("No code, sorry.", Language::Python, "", None).unwrap_err();
        assert_eq!(
            error,
            AnswerError::NoCodeBlock {
                language: Language::Python
            }
        );
        assert!(error.to_string().contains("no python code block"));

        let no_function = "```python\nx = 1\n```";
        assert_eq!(
            Program::from_answer(no_function, Language::Python, "", None),
            Err(AnswerError::NoFunction {
                language: Language::Python
            })
        );
        let fallback = Program::from_answer(no_function, Language::Python, "", Some("x")).unwrap();
        assert!(fallback.source.contains("candidate = answer.x"));
        assert!(matches!(
            Program::from_answer(no_function, Language::Python, "", Some("x; import os")),
            Err(AnswerError::InvalidFunctionName { .. })
        ));
    }
}
