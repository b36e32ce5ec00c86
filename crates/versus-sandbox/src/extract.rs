//! Finding the code in a Markdown answer: fenced code blocks by language, and the name of the
//! function the answer defines, so the task's tests can call it whatever the model named it.
//!
//! The fences themselves are found by [`versus_core::fenced::fenced_blocks`], the extractor JSON
//! checks use too, so that every check reads the same blocks of an answer. Its rules are
//! deliberately more lenient than CommonMark (models write fences inside list items, leave them
//! unclosed when an answer is cut off): any indentation opens a fence, and an unclosed fence runs
//! to the end. What is decided here is which blocks are code in a language: the info strings
//! (`python3`, `py`, ...).

use versus_core::fenced::fenced_blocks;

use crate::Language;

/// The contents of the fenced code blocks (``` or ~~~, any fence length) written in `language`,
/// in order. A block counts when its info string names the language (`python`, `py`, `python3`,
/// `js`, `javascript`, `node`, `rust`, `rs`, ...); blocks without an info string are used only
/// when no block is labelled with the language.
pub fn extract_code_blocks(markdown: &str, language: Language) -> Vec<String> {
    let blocks = fenced_blocks(markdown);
    let labelled: Vec<String> = blocks
        .iter()
        .filter(|block| block.label.as_deref().and_then(Language::from_name) == Some(language))
        .map(|block| block.content.clone())
        .collect();
    if !labelled.is_empty() {
        return labelled;
    }
    blocks
        .into_iter()
        .filter(|block| block.label.is_none())
        .map(|block| block.content)
        .collect()
}

/// The name of the first top-level function `code` defines (`def name(`, `function name(`,
/// `const name = (...) =>`, `fn name(`), preferring public names: `main`, names starting with `_`
/// and `test` names are taken only when nothing else is defined (`main` never).
pub fn find_function_name(code: &str, language: Language) -> Option<String> {
    let names = top_level_function_names(code, language);
    let is_helper = |name: &&String| name.starts_with('_') || name.starts_with("test");
    names
        .iter()
        .find(|name| !is_helper(name))
        .or_else(|| names.first())
        .cloned()
}

/// Every top-level function `code` defines, in order, except `main`.
pub fn top_level_function_names(code: &str, language: Language) -> Vec<String> {
    code.lines()
        // Top level means unindented: methods, nested helpers and test modules are indented.
        .filter(|line| !line.starts_with([' ', '\t']))
        .filter_map(|line| match language {
            Language::Python => python_function(line),
            Language::JavaScript => javascript_function(line),
            Language::Rust => rust_function(line),
        })
        .filter(|name| name != "main")
        .collect()
}

fn identifier(text: &str) -> Option<(&str, &str)> {
    let end = text
        .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == '$'))
        .unwrap_or(text.len());
    let name = &text[..end];
    let starts_well = name.chars().next().is_some_and(|c| !c.is_ascii_digit());
    starts_well.then(|| (name, &text[end..]))
}

fn python_function(line: &str) -> Option<String> {
    let line = line.strip_prefix("async ").unwrap_or(line);
    let (name, rest) = identifier(line.strip_prefix("def ")?.trim_start())?;
    // `(` for the parameters; `[` for Python 3.12 type parameters.
    rest.trim_start()
        .starts_with(['(', '['])
        .then(|| name.to_string())
}

fn javascript_function(line: &str) -> Option<String> {
    let mut line = line.strip_prefix("export ").unwrap_or(line);
    line = line.strip_prefix("default ").unwrap_or(line);
    let declaration = line.strip_prefix("async ").unwrap_or(line);
    if let Some(rest) = declaration.strip_prefix("function") {
        let rest = rest.trim_start().trim_start_matches('*').trim_start();
        let (name, rest) = identifier(rest)?;
        return rest.trim_start().starts_with('(').then(|| name.to_string());
    }
    let rest = ["const ", "let ", "var "]
        .iter()
        .find_map(|keyword| line.strip_prefix(keyword))?;
    let (name, rest) = identifier(rest.trim_start())?;
    let value = rest.trim_start().strip_prefix('=')?.trim_start();
    if value.starts_with("=") {
        return None; // `==` is a comparison, not an assignment
    }
    let value = value.strip_prefix("async").map_or(value, str::trim_start);
    let is_function = value.starts_with("function")
        // `(a, b) => ...`, or the parameter list continues on the next lines.
        || (value.starts_with('(') && (value.contains("=>") || !value.contains(')')))
        // `n => ...`
        || identifier(value).is_some_and(|(_, after)| after.trim_start().starts_with("=>"));
    is_function.then(|| name.to_string())
}

fn rust_function(line: &str) -> Option<String> {
    let mut line = line;
    if let Some(rest) = line.strip_prefix("pub") {
        line = rest.trim_start();
        if line.starts_with('(') {
            // `pub(crate)`, `pub(super)`, `pub(in path)`
            line = line[line.find(')')? + 1..].trim_start();
        }
    }
    for qualifier in ["const ", "async ", "unsafe ", "extern \"C\" ", "extern "] {
        line = line.strip_prefix(qualifier).unwrap_or(line).trim_start();
    }
    let (name, rest) = identifier(line.strip_prefix("fn ")?.trim_start())?;
    rest.trim_start()
        .starts_with(['(', '<'])
        .then(|| name.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blocks(markdown: &str, language: Language) -> Vec<String> {
        extract_code_blocks(markdown, language)
    }

    #[test]
    fn labelled_blocks_in_order_with_aliases() {
        let markdown =
            "Intro\n```python\na = 1\n```\ntext\n```py\nb = 2\n```\n```python3\nc = 3\n```\n";
        assert_eq!(
            blocks(markdown, Language::Python),
            ["a = 1\n", "b = 2\n", "c = 3\n"]
        );
        assert!(blocks(markdown, Language::Rust).is_empty());
    }

    #[test]
    fn tildes_long_fences_and_nested_fences() {
        let markdown = "~~~js\nlet a = 1;\n~~~\n````javascript\n```\nnot a close\n```\n````\n";
        assert_eq!(
            blocks(markdown, Language::JavaScript),
            ["let a = 1;\n", "```\nnot a close\n```\n"]
        );
    }

    #[test]
    fn unlabelled_blocks_only_without_labelled_ones() {
        let unlabelled = "```\nx = 1\n```\n";
        assert_eq!(blocks(unlabelled, Language::Python), ["x = 1\n"]);
        let mixed = "```\nshell stuff\n```\n```rs\nfn f() {}\n```\n";
        assert_eq!(blocks(mixed, Language::Rust), ["fn f() {}\n"]);
        // A block labelled with another language is never taken.
        assert!(blocks("```bash\nls\n```\n", Language::Python).is_empty());
    }

    #[test]
    fn info_string_variants_and_indented_fences() {
        let markdown =
            "1. Step\n   ```{.rust .numberLines}\n   fn a() {}\n       indented\n   ```\n";
        assert_eq!(
            blocks(markdown, Language::Rust),
            ["fn a() {}\n    indented\n"]
        );
        let titled = "```py title=\"fib.py\"\ndef f(): pass\n```";
        assert_eq!(blocks(titled, Language::Python), ["def f(): pass\n"]);
        let crlf = "```js\r\nlet a;\r\n```\r\n";
        assert_eq!(blocks(crlf, Language::JavaScript), ["let a;\n"]);
    }

    #[test]
    fn unclosed_fence_runs_to_the_end_and_inline_fences_are_ignored() {
        assert_eq!(
            blocks("```python\ndef f():\n    return 1", Language::Python),
            ["def f():\n    return 1\n"]
        );
        assert!(blocks("use ```python``` fences", Language::Python).is_empty());
    }

    /// A JSON check (versus-core's) and the code extractor split an answer into the same blocks,
    /// however loosely its fences are written.
    #[test]
    fn json_checks_and_code_extraction_read_the_same_blocks() {
        use versus_core::checks::{Check, CheckKind};
        let json_check = Check {
            kind: CheckKind::Json { schema: None },
            weight: 1.0,
            name: None,
        };
        let json_passes = |answer: &str| {
            json_check
                .evaluate_text(answer, None)
                .is_some_and(|result| result.passed)
        };
        for (answer, code) in [
            // A longer closing fence closes the JSON block; the code block is its own.
            (
                "```json\n{\"a\": 1}\n`````\n```python\ndef f(): pass\n```\n",
                "def f(): pass\n",
            ),
            // A shorter fence inside a longer one is content: the JSON lives in the outer block.
            (
                "````python\ndef f(): pass\n```\n````\n~~~\n{\"a\": 1}\n~~~\n",
                "def f(): pass\n```\n",
            ),
            // Fences indented in list items, the last one cut off.
            (
                "1. Data:\n   ```json\n   {\"a\": 1}\n   ```\n2. Code:\n   ```python\n   def f(): pass",
                "def f(): pass\n",
            ),
        ] {
            assert!(json_passes(answer), "{answer:?}");
            assert_eq!(blocks(answer, Language::Python), [code], "{answer:?}");
        }
        // An unclosed fence: the code extractor reads it to the end, and so does the JSON check.
        let cut_off = "```python\ndef f(): pass\n```\n```json\n{\"a\": 1}";
        assert!(json_passes(cut_off));
        assert_eq!(blocks(cut_off, Language::Python), ["def f(): pass\n"]);
    }

    #[test]
    fn python_function_names() {
        let code = "import sys\n\nclass Memo:\n    def get(self): pass\n\n@cache\ndef fibonacci(n):\n    def inner(k): pass\n\ndef main():\n    pass\n";
        assert_eq!(
            find_function_name(code, Language::Python).as_deref(),
            Some("fibonacci")
        );
        let helpers_first = "def _helper(x): pass\nasync def fib(n): pass\n";
        assert_eq!(
            find_function_name(helpers_first, Language::Python).as_deref(),
            Some("fib")
        );
        assert_eq!(
            find_function_name("def main(): pass\n", Language::Python),
            None
        );
        assert_eq!(find_function_name("print(1)\n", Language::Python), None);
    }

    #[test]
    fn javascript_function_names() {
        for (code, name) in [
            ("function fib(n) {\n}\n", "fib"),
            ("async function* gen (n) {}\n", "gen"),
            ("export default function fibonacci(n) {}\n", "fibonacci"),
            ("const memo = new Map();\nconst fib = (n) => n;\n", "fib"),
            ("let f = n => n + 1;\n", "f"),
            ("var g = async function (n) {};\n", "g"),
            ("const h = (\n  n,\n) => n;\n", "h"),
        ] {
            assert_eq!(
                find_function_name(code, Language::JavaScript).as_deref(),
                Some(name),
                "{code}"
            );
        }
        for code in [
            "const x = (1 + 2) * 3;\n",
            "  function nested() {}\n",
            "const a = b == c;\n",
        ] {
            assert_eq!(
                find_function_name(code, Language::JavaScript),
                None,
                "{code}"
            );
        }
    }

    #[test]
    fn rust_function_names() {
        for (code, name) in [
            ("fn fib(n: u64) -> u64 { n }\n", "fib"),
            ("pub fn fibonacci(n: usize) -> u128 { 0 }\n", "fibonacci"),
            ("pub(crate) const fn f<T>(t: T) {}\n", "f"),
            (
                "use std::collections::HashMap;\nfn main() {}\nfn later(n: u32) {}\n",
                "later",
            ),
        ] {
            assert_eq!(
                find_function_name(code, Language::Rust).as_deref(),
                Some(name),
                "{code}"
            );
        }
        let methods_only = "struct S;\nimpl S {\n    fn m(&self) {}\n}\nfn main() {}\n";
        assert_eq!(find_function_name(methods_only, Language::Rust), None);
    }
}
