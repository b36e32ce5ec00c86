//! Programs to run: an answer's code joined with a task's tests, bound together through the name
//! `candidate`, so the same tests work whatever the model called its function.
//!
//! Tests fail by raising, throwing or panicking. A program with tests passes only if it exits with
//! status 0 *and* its last line of stdout is the end-of-tests marker, drawn at random for each
//! program and printed by the harness after the last test (see `harness.rs`), so that an answer
//! that exits early (`sys.exit(0)`, `process.exit(0)`, `std::process::exit(0)`) fails. The
//! conventions, per language:
//!
//! - **Python**: the harness runs the answer with `exec` as its own module `answer` (so an
//!   `if __name__ == "__main__":` demo in it, which might wait for input, does not run), catching
//!   a `SystemExit` from it ("the answer exited before the tests ran (SystemExit(0))"). Then the
//!   tests run, with `exec` too, in a namespace of their own: the answer's top-level names,
//!   `candidate` bound to the answer's function, and the builtins as they were before the answer
//!   ran (an answer that replaces `builtins.type` or `builtins.isinstance` does not change what
//!   the tests see). The tests are top-level statements, typically
//!   `assert candidate(10) == 55, "..."`; a `SystemExit` during them is a failure too. Then the
//!   marker, and `os._exit(0)`, so nothing of the answer's (an `atexit` hook) runs after it.
//! - **JavaScript**: a one-line preamble comes first, relying on no name the answer's hoisted
//!   declarations could take over (see [`JAVASCRIPT_PREAMBLE`]): it replaces `process.exit` and
//!   `process.reallyExit` (calling either before the tests have finished is a failure that says
//!   so), freezes the `assert` modules and hands the tests a `require` of its own that returns
//!   them, and prints the marker when the process exits with 0 after the tests' last statement
//!   (so asynchronous tests finish first). The answer's code (with ES-module `export` keywords
//!   removed, since it runs as a CommonJS script) follows; the tests follow it inside a block,
//!   where `const candidate = <name>;` is in scope. Tests typically use `require("assert")`.
//! - **Rust**: the harness's `fn main` comes first, then the tests in a module of their own,
//!   `versus_tests`, which sees the answer's items (`use super::*`) and `candidate`; the answer's
//!   code comes last, with a top-level `fn main` of its own renamed out of the way. The tests
//!   must define `fn main()` (returning `()` or a `Result`) calling `candidate(...)` and
//!   panicking on failure; the harness's `main` calls it, then prints the marker. A
//!   `macro_rules!` in the answer cannot reach the tests (a macro's textual scope starts where it
//!   is defined, after the tests), and the tests' asserting macros are called by their full paths
//!   (`assert_eq!(` becomes `::core::assert_eq!(`, and so on), which no `#[macro_export]` can
//!   shadow.

use crate::extract::{extract_code_blocks, find_function_name, top_level_function_names};
use crate::harness::{end_marker_output, new_end_marker, HARNESS_EXIT_CODE, HARNESS_PREFIX};
use crate::Language;

/// A complete program to run in the sandbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Program {
    pub language: Language,
    /// The whole source: for Python and JavaScript the script, for Rust the crate root.
    pub source: String,
    /// The line the program prints after its last test, if it has tests: then it passes only if
    /// it exits with 0 and this is the last line of its stdout (see [`Program::with_tests`]).
    /// `None` for a complete program of one's own ([`Program::new`]), which passes on exit 0.
    pub end_marker: Option<String>,
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
    /// A program whose source is already complete; it passes when it exits with 0.
    pub fn new(language: Language, source: impl Into<String>) -> Program {
        Program {
            language,
            source: source.into(),
            end_marker: None,
        }
    }

    /// The answer's `code` joined with the task's `tests` by a harness, with `candidate` bound to
    /// the answer's function `function_name` (see the module documentation for each language's
    /// convention). `function_name` must be an identifier; [`Program::from_answer`] checks that.
    ///
    /// Each call draws a new end-of-tests marker ([`Program::end_marker`]), which the harness
    /// prints after the last test: the program passes only if it exits with 0 and that marker is
    /// the last line of its stdout.
    ///
    /// # Panics
    ///
    /// If the operating system has no randomness to give for the marker.
    pub fn with_tests(language: Language, code: &str, tests: &str, function_name: &str) -> Program {
        let marker = new_end_marker();
        let source = match language {
            Language::Python => python_with_tests(code, tests, function_name, &marker),
            Language::JavaScript => javascript_with_tests(code, tests, function_name, &marker),
            Language::Rust => rust_with_tests(code, tests, function_name, &marker),
        };
        Program {
            language,
            source,
            end_marker: Some(marker),
        }
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

fn python_with_tests(code: &str, tests: &str, function_name: &str, marker: &str) -> String {
    let answer = string_literal(code);
    let tests = string_literal(tests);
    let marker = string_literal(&end_marker_output(marker));
    let prefix = string_literal(&format!("\n{HARNESS_PREFIX}"));
    format!(
        r#"# The harness (see versus-sandbox's program.rs). Everything it needs after the answer has run is
# taken now, before the answer can replace it.
import builtins as _versus_builtins
import linecache as _versus_linecache
import os as _versus_os
import sys as _versus_sys
import types as _versus_types

_versus_exit = _versus_os._exit
_versus_write = _versus_os.write
_versus_stdout = _versus_sys.stdout
_versus_builtins_before = dict(vars(_versus_builtins))
_versus_answer_source = {answer}
_versus_tests_source = {tests}


def _versus_fail(reason):
    for stream in (_versus_sys.stdout, _versus_stdout):
        try:
            stream.flush()
        except BaseException:
            pass
    _versus_write(2, ({prefix} + reason + "\n").encode("utf-8", "replace"))
    _versus_exit({HARNESS_EXIT_CODE})


# (The defaults are the builtins as they are now, before the answer runs.)
def _versus_exit_text(error, _type=type, _repr=repr, _shown=(int, str, bool)):
    try:
        code = error.code
        shown = "" if code is None else _repr(code) if _type(code) in _shown else "..."
    except BaseException:
        shown = "..."
    return "SystemExit(" + shown + ")"


for _versus_name, _versus_text in (
    ("answer.py", _versus_answer_source),
    ("tests.py", _versus_tests_source),
):
    _versus_linecache.cache[_versus_name] = (
        len(_versus_text), None, _versus_text.splitlines(True), _versus_name
    )

# The answer runs as its own module, `answer`: its `if __name__ == "__main__":` demo (which might
# wait for input) does not run, and its tracebacks show answer.py's lines.
answer = _versus_types.ModuleType("answer")
answer.__file__ = "answer.py"
_versus_sys.modules["answer"] = answer
try:
    exec(compile(_versus_answer_source, "answer.py", "exec"), answer.__dict__)
except SystemExit as _versus_error:
    _versus_fail(
        "the answer exited before the tests ran (" + _versus_exit_text(_versus_error) + ")"
    )

# The tests run in a namespace of their own, with the builtins as they were before the answer ran.
_versus_namespace = {{
    _k: _v for _k, _v in _versus_builtins_before["vars"](answer).items() if not _k.startswith("__")
}}
_versus_namespace["__name__"] = "__main__"
_versus_namespace["__builtins__"] = _versus_builtins_before
_versus_namespace["answer"] = answer
_versus_namespace["candidate"] = answer.{function_name}
try:
    _versus_builtins_before["exec"](
        _versus_builtins_before["compile"](_versus_tests_source, "tests.py", "exec"),
        _versus_namespace,
    )
except SystemExit as _versus_error:
    _versus_fail(
        "the tests did not finish: " + _versus_exit_text(_versus_error) + " was raised during the tests"
    )

# Every test has passed: the end-of-tests marker, and nothing after it.
_versus_sys.stdout.flush()
_versus_stdout.flush()
_versus_sys.stderr.flush()
_versus_write(1, {marker}.encode("ascii"))
_versus_exit(0)
"#
    )
}

/// The start of the JavaScript harness, on one line (so the answer's line numbers move by one):
/// the marker goes in for `@MARKER@`, the harness's exit code for `@EXIT@`, its stderr prefix
/// for `@PREFIX@`.
///
/// It runs before the answer, but in the same scope, where the answer's function declarations
/// are hoisted above it (a `function require(id)` or `function process()` of the answer's is in
/// force from the first line): so it names nothing of that scope, and reaches the global object
/// through `({}).constructor.constructor`, intrinsics no declaration can shadow, and modules
/// through the main module. `__versus_tests_started` and `__versus_tests_done` are `const`s
/// declared after the answer's code (see `javascript_with_tests`): until a declaration has run,
/// reading the name throws, and the answer can neither declare nor assign them.
const JAVASCRIPT_PREAMBLE: &str = "const __versus_harness = (() => { \
const global = ({}).constructor.constructor(\"return globalThis\")(); \
const { process, Object } = global; \
const main = process.mainModule; \
const load = main.require.bind(main); \
const marker = @MARKER@; \
const writeSync = load(\"fs\").writeSync; \
const reallyExit = process.reallyExit.bind(process); \
const pristine = { __proto__: null }; \
for (const id of [\"assert\", \"assert/strict\", \"node:assert\", \"node:assert/strict\"]) { \
const loaded = load(id); Object.freeze(loaded); pristine[id] = loaded; } \
const shown = (code) => typeof code === \"number\" || typeof code === \"string\" ? `${code}` \
: code === undefined ? \"\" : \"...\"; \
const exiter = (how) => function (code) { let reason; \
try { __versus_tests_started; \
reason = `the tests did not finish: ${how}(${shown(code)}) was called during the tests`; } \
catch { reason = `the answer exited before the tests ran (${how}(${shown(code)}))`; } \
try { writeSync(2, `\\n@PREFIX@${reason}\\n`); } catch {} \
reallyExit(@EXIT@); }; \
process.exit = exiter(\"process.exit\"); \
process.reallyExit = exiter(\"process.reallyExit\"); \
process.on(\"exit\", (code) => { let done = false; \
try { done = __versus_tests_done === true; } catch {} \
if (done && code === 0) writeSync(1, marker); }); \
const realRequire = load(\"module\").createRequire(main.filename); \
const requireForTests = (id) => typeof id === \"string\" && id in pristine ? pristine[id] \
: realRequire(id); \
requireForTests.main = realRequire.main; \
requireForTests.resolve = realRequire.resolve; \
requireForTests.cache = realRequire.cache; \
return Object.freeze({ require: requireForTests }); })();";

fn javascript_with_tests(code: &str, tests: &str, function_name: &str, marker: &str) -> String {
    let code = strip_module_exports(code);
    let preamble = JAVASCRIPT_PREAMBLE
        .replace("@MARKER@", &string_literal(&end_marker_output(marker)))
        .replace("@EXIT@", &HARNESS_EXIT_CODE.to_string())
        .replace("@PREFIX@", HARNESS_PREFIX);
    // A `"use strict"` directive counts only at the start of the script: it goes before the
    // preamble, on the same line.
    let strict = code
        .lines()
        .map(str::trim)
        .find(|line| !line.is_empty() && !line.starts_with("//"))
        .is_some_and(|line| {
            let line = line.trim_end_matches(';').trim_end();
            line == "\"use strict\"" || line == "'use strict'"
        });
    let strict = if strict { "\"use strict\"; " } else { "" };
    // The tests sit in a block so their own `const` declarations (a second
    // `const assert = require("assert")`) cannot collide with the answer's; there `require` is
    // the harness's, which hands out the `assert` modules as they were before the answer ran.
    let binding = if function_name == "candidate" {
        String::new()
    } else {
        format!("const candidate = {function_name};\n")
    };
    format!(
        "{strict}{preamble}\n{code}\n;\nconst __versus_tests_started = true;\n// The task's tests:\n{{\nconst require = __versus_harness.require;\n{binding}{tests}\n}}\nconst __versus_tests_done = true;\n"
    )
}

/// The answer runs as a CommonJS script, where `export` is a syntax error: drop the keyword from
/// top-level declarations, and comment out export lists (`export { a, b };`, `export default a;`).
/// A `#!` line, allowed only as a script's first line, which the answer's no longer is, is
/// commented out too.
fn strip_module_exports(code: &str) -> String {
    let mut stripped = String::with_capacity(code.len());
    for (number, line) in code.lines().enumerate() {
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
            None if number == 0 && line.starts_with("#!") => format!("// {line}"),
            None => line.to_string(),
        };
        stripped.push_str(&line);
        stripped.push('\n');
    }
    stripped
}

fn rust_with_tests(code: &str, tests: &str, function_name: &str, marker: &str) -> String {
    // Inner attributes (`#![allow(...)]`) must open the crate, so they are hoisted.
    let is_inner_attribute = |line: &&str| line.trim_start().starts_with("#![");
    let mut source: String = code
        .lines()
        .chain(tests.lines())
        .filter(is_inner_attribute)
        .map(|line| format!("{line}\n"))
        .collect();
    // The harness comes first, and names everything by its full path: nothing the answer
    // defines can stand in for what it calls.
    let marker = end_marker_output(marker).escape_default().to_string();
    source.push_str(&format!(
        r#"
// The harness (see versus-sandbox's program.rs): the tests' `main`, then the end-of-tests marker.
fn main() -> ::std::process::ExitCode {{
    let code = ::std::process::Termination::report(versus_tests::main());
    if code == ::std::process::ExitCode::SUCCESS {{
        let mut stdout = ::std::io::stdout().lock();
        let written = ::std::io::Write::write_all(&mut stdout, "{marker}".as_bytes())
            .and_then(|()| ::std::io::Write::flush(&mut stdout));
        if written.is_err() {{
            return ::std::process::ExitCode::FAILURE;
        }}
    }}
    code
}}

// The task's tests, before the answer, so that no `macro_rules!` of the answer's is in scope.
mod versus_tests {{
use super::*;
"#
    ));
    if function_name != "candidate" {
        source.push_str(&format!("use super::{function_name} as candidate;\n"));
    }
    let tests: String = tests
        .lines()
        .filter(|line| !is_inner_attribute(line))
        .map(|line| format!("{}\n", expose_tests_main(line)))
        .collect();
    source.push_str(&qualify_asserting_macros(&tests));
    source.push_str("}\n\n// The answer:\n");
    for line in code.lines().filter(|line| !is_inner_attribute(line)) {
        source.push_str(&rename_answer_main(line));
        source.push('\n');
    }
    source
}

/// The tests' `fn main` lives in their module; the harness's `main` calls it.
fn expose_tests_main(line: &str) -> String {
    match line.strip_prefix("fn main(") {
        Some(rest) => format!("pub(crate) fn main({rest}"),
        None => line.to_string(),
    }
}

/// The tests bring the `fn main`; an answer's own (a usage demo) is renamed out of the way.
fn rename_answer_main(line: &str) -> String {
    for prefix in ["fn main(", "pub fn main("] {
        if let Some(rest) = line.strip_prefix(prefix) {
            return format!("#[allow(dead_code)] fn versus_answer_main({rest}");
        }
    }
    line.to_string()
}

/// The macros tests fail with, which the answer must not be able to replace.
const ASSERTING_MACROS: [&str; 10] = [
    "assert",
    "assert_eq",
    "assert_ne",
    "debug_assert",
    "debug_assert_eq",
    "debug_assert_ne",
    "panic",
    "unreachable",
    "todo",
    "unimplemented",
];

/// Rust source with every call of an [`ASSERTING_MACROS`] macro by its bare name
/// (`assert_eq!(`) made a call by its full path (`::core::assert_eq!(`), outside string and
/// character literals and comments; calls by a path (`std::assert!`) are left alone.
fn qualify_asserting_macros(source: &str) -> String {
    let chars: Vec<char> = source.chars().collect();
    let mut out = String::with_capacity(source.len() + 64);
    let mut i = 0;
    let is_ident = |c: char| c.is_alphanumeric() || c == '_';
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        // Comments, copied whole.
        if c == '/' && next == Some('/') {
            let end = chars[i..]
                .iter()
                .position(|&c| c == '\n')
                .map_or(chars.len(), |n| i + n);
            out.extend(&chars[i..end]);
            i = end;
            continue;
        }
        if c == '/' && next == Some('*') {
            let mut depth = 0;
            let mut j = i;
            while j < chars.len() {
                if chars[j] == '/' && chars.get(j + 1) == Some(&'*') {
                    depth += 1;
                    j += 2;
                } else if chars[j] == '*' && chars.get(j + 1) == Some(&'/') {
                    depth -= 1;
                    j += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    j += 1;
                }
            }
            let end = j.min(chars.len());
            out.extend(&chars[i..end]);
            i = end;
            continue;
        }
        // String literals (also `b"..."`, whose `b` went out as an identifier).
        if c == '"' {
            let end = string_end(&chars, i + 1, 0);
            out.extend(&chars[i..end]);
            i = end;
            continue;
        }
        // Character literals; a lifetime (`'a`) is copied as it is.
        if c == '\'' {
            let end = if next == Some('\\') {
                // `'\n'`, `'\''`, `'\u{1F600}'`: the escaped character, then up to the quote.
                chars
                    .get(i + 3..)
                    .and_then(|rest| rest.iter().position(|&c| c == '\''))
                    .map_or(chars.len(), |n| i + 3 + n + 1)
            } else if chars.get(i + 2) == Some(&'\'') {
                i + 3
            } else {
                i + 1
            };
            out.extend(&chars[i..end]);
            i = end;
            continue;
        }
        if is_ident(c) {
            let start = i;
            while i < chars.len() && is_ident(chars[i]) {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            // Raw strings: `r"..."`, `r#"..."#`, `br#"..."#`.
            if word == "r" || word == "br" {
                let hashes = chars[i..].iter().take_while(|&&c| c == '#').count();
                if chars.get(i + hashes) == Some(&'"') {
                    let end = string_end(&chars, i + hashes + 1, hashes);
                    out.push_str(&word);
                    out.extend(&chars[i..end]);
                    i = end;
                    continue;
                }
            }
            let is_call = chars.get(i) == Some(&'!')
                && chars[i + 1..]
                    .iter()
                    .find(|c| !c.is_whitespace())
                    .is_some_and(|c| matches!(c, '(' | '[' | '{'));
            let after_path = out.trim_end().ends_with(':');
            let after_raw = out.ends_with("r#");
            if is_call && !after_path && !after_raw && ASSERTING_MACROS.contains(&word.as_str()) {
                out.push_str("::core::");
            }
            out.push_str(&word);
            continue;
        }
        out.push(c);
        i += 1;
    }
    out
}

/// Where a string literal whose contents start at `start` ends (just past its closing quote and
/// `hashes` `#`s; escapes count only in ordinary strings, `hashes == 0`).
fn string_end(chars: &[char], start: usize, hashes: usize) -> usize {
    let mut j = start;
    while j < chars.len() {
        match chars[j] {
            '\\' if hashes == 0 => j += 2,
            '"' if chars[j + 1..]
                .iter()
                .take(hashes)
                .filter(|&&c| c == '#')
                .count()
                == hashes =>
            {
                return (j + 1 + hashes).min(chars.len());
            }
            _ => j += 1,
        }
    }
    chars.len()
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
    fn python_binds_candidate_and_prints_the_marker_last() {
        let program = Program::with_tests(
            Language::Python,
            "def fib(n):\n    return n\n",
            "assert candidate(1) == 1",
            "fib",
        );
        let marker = program
            .end_marker
            .as_deref()
            .expect("a program with tests has a marker");
        assert!(program
            .source
            .contains("_versus_namespace[\"candidate\"] = answer.fib\n"));
        assert!(program
            .source
            .contains("_versus_tests_source = \"assert candidate(1) == 1\"\n"));
        let printed = program.source.find(marker).unwrap();
        assert!(
            printed
                > program
                    .source
                    .find("_versus_tests_source, \"tests.py\"")
                    .unwrap()
        );
        assert!(program.source.ends_with("_versus_exit(0)\n"));
        // Each program draws its own marker.
        let again = Program::with_tests(Language::Python, "def fib(n): pass", "", "fib");
        assert_ne!(again.end_marker.as_deref(), Some(marker));
        assert_eq!(Program::new(Language::Python, "pass").end_marker, None);
    }

    #[test]
    fn javascript_strips_exports_and_scopes_tests() {
        let program = Program::with_tests(
            Language::JavaScript,
            "export function fib(n) { return n; }\nexport { fib };\n",
            "assert(candidate(1) === 1);",
            "fib",
        );
        let marker = program.end_marker.as_deref().unwrap();
        let (preamble, rest) = program.source.split_once('\n').unwrap();
        assert!(preamble.starts_with("const __versus_harness = "));
        assert!(preamble.contains(marker));
        assert!(rest.starts_with("function fib(n)"));
        assert!(rest.contains("// export { fib };"));
        assert!(rest.contains(
            "{\nconst require = __versus_harness.require;\nconst candidate = fib;\nassert(candidate(1) === 1);\n}\nconst __versus_tests_done = true;\n"
        ));
    }

    #[test]
    fn javascript_keeps_use_strict_first_and_comments_out_a_shebang() {
        let program = Program::with_tests(
            Language::JavaScript,
            "#!/usr/bin/env node\n'use strict';\nfunction fib(n) { return n; }\n",
            "",
            "fib",
        );
        assert!(program
            .source
            .starts_with("\"use strict\"; const __versus_harness = "));
        assert!(program
            .source
            .contains("\n// #!/usr/bin/env node\n'use strict';\n"));
    }

    #[test]
    fn rust_puts_the_tests_before_the_answer_and_renames_its_main() {
        let program = Program::with_tests(
            Language::Rust,
            "#![allow(unused)]\nfn fib(n: u64) -> u64 { n }\nfn main() { println!(\"{}\", fib(3)); }\n",
            "fn main() { assert_eq!(candidate(2), 2); }",
            "fib",
        );
        let source = &program.source;
        assert!(source.starts_with("#![allow(unused)]\n"));
        assert!(source.contains("fn versus_answer_main() {"));
        assert!(source.contains("use super::fib as candidate;"));
        assert!(source.contains("\npub(crate) fn main() { ::core::assert_eq!(candidate(2), 2); }"));
        let marker = program.end_marker.as_deref().unwrap();
        let order = [
            source
                .find("fn main() -> ::std::process::ExitCode")
                .unwrap(),
            source.find(marker).unwrap(),
            source.find("mod versus_tests {").unwrap(),
            source.find("fn fib(n: u64)").unwrap(),
        ];
        assert!(order.windows(2).all(|pair| pair[0] < pair[1]), "{source}");
    }

    #[test]
    fn asserting_macros_are_called_by_their_full_paths() {
        for (tests, qualified) in [
            ("assert_eq!(a, b);", "::core::assert_eq!(a, b);"),
            ("assert!(x)", "::core::assert!(x)"),
            ("assert_ne! (a, b)", "::core::assert_ne! (a, b)"),
            ("if x { panic!(\"no\") }", "if x { ::core::panic!(\"no\") }"),
            ("debug_assert!{x}", "::core::debug_assert!{x}"),
            // Already a path, or another macro, or a name that merely ends the same way.
            (
                "std::assert!(x); ::core::assert_eq!(a, b)",
                "std::assert!(x); ::core::assert_eq!(a, b)",
            ),
            (
                "my_assert!(x); vec![1]; assert",
                "my_assert!(x); vec![1]; assert",
            ),
            // Not code: strings, raw strings, characters, comments.
            ("let s = \"assert!(x)\";", "let s = \"assert!(x)\";"),
            (
                "let s = \"a \\\" assert!(x)\";",
                "let s = \"a \\\" assert!(x)\";",
            ),
            (
                "r#\"assert!(\"x\")\"#; assert!(y)",
                "r#\"assert!(\"x\")\"#; ::core::assert!(y)",
            ),
            (
                "let q = '\\''; assert!(q == '\"');",
                "let q = '\\''; ::core::assert!(q == '\"');",
            ),
            (
                "fn f<'a>(x: &'a str) { assert!(x.is_empty()) }",
                "fn f<'a>(x: &'a str) { ::core::assert!(x.is_empty()) }",
            ),
            (
                "// assert!(x)\nassert!(y)",
                "// assert!(x)\n::core::assert!(y)",
            ),
            (
                "/* assert!(x) /* nested */ */ assert!(y)",
                "/* assert!(x) /* nested */ */ ::core::assert!(y)",
            ),
        ] {
            assert_eq!(qualify_asserting_macros(tests), qualified, "{tests}");
        }
    }

    #[test]
    fn from_answer_leaves_out_usage_blocks_and_reports_missing_code() {
        let markdown = "```python\ndef fibonacci(n):\n    return n\n```\nUsage:\n```python\nprint(fibonacci(input()))\n```\n";
        let program = Program::from_answer(markdown, Language::Python, "pass", None).unwrap();
        assert!(program
            .source
            .contains("\"candidate\"] = answer.fibonacci\n"));
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
        assert!(fallback.source.contains("\"candidate\"] = answer.x\n"));
        assert!(matches!(
            Program::from_answer(no_function, Language::Python, "", Some("x; import os")),
            Err(AnswerError::InvalidFunctionName { .. })
        ));
    }
}
