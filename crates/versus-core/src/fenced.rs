//! Fenced code blocks in a Markdown answer: the one extractor every check uses, so that a JSON
//! check and a code check always read the same blocks of the same answer.
//!
//! Models write Markdown loosely (fences inside list items, unclosed fences when an answer is cut
//! off, a longer fence to close a shorter one), so the rules are deliberately more lenient than
//! CommonMark's:
//!
//! - **Opening fence**: a line of three or more backticks or tildes after any indentation (spaces
//!   or tabs, however many), then an optional info string. A backtick fence's info string cannot
//!   contain a backtick: ```` ```x``` ```` is inline code, not a fence.
//! - **Closing fence**: the opening fence's character, at least as many times, after any
//!   indentation, with nothing but whitespace after it. So five backticks close a fence of three,
//!   while three backticks (or any tildes) inside a block opened by four are content.
//! - **Unclosed fence**: runs to the end of the answer; the block still counts.
//! - **Content indentation**: each content line loses up to as many leading spaces or tabs as the
//!   opening fence was indented by (each space or tab counting one), so a block indented inside a
//!   list item comes out flush while deeper indentation inside it is kept. Content is otherwise
//!   verbatim, with every line (the last one too) ending in `\n`; `\r\n` endings become `\n`.

/// One fenced code block: its label (the info string's first word, if any) and its contents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FencedBlock {
    /// The language word of the info string: `python` for `python`, `{.python}`,
    /// `python title="a.py"`; `rust` for `rust,ignore`. `None` without an info string.
    pub label: Option<String>,
    /// The lines between the fences, indentation removed as the module documentation says.
    pub content: String,
}

/// Every fenced code block of `markdown`, in order (blocks do not nest: a fence inside a block is
/// content unless it closes the block).
pub fn fenced_blocks(markdown: &str) -> Vec<FencedBlock> {
    let mut blocks = Vec::new();
    let mut lines = markdown.lines();
    while let Some(line) = lines.next() {
        let Some(fence) = opening_fence(line) else {
            continue;
        };
        let mut content = String::new();
        for line in lines.by_ref() {
            if closes(line, &fence) {
                break;
            }
            content.push_str(strip_indent(line, fence.indent));
            content.push('\n');
        }
        blocks.push(FencedBlock {
            label: info_label(fence.info),
            content,
        });
    }
    blocks
}

/// An opening fence: its character, length, indentation (in spaces and tabs) and info string.
struct Fence<'a> {
    character: char,
    length: usize,
    indent: usize,
    info: &'a str,
}

/// Leading spaces and tabs: how many, and the rest of the line.
fn split_indent(line: &str) -> (usize, &str) {
    let rest = line.trim_start_matches([' ', '\t']);
    // Spaces and tabs are one byte each, so the byte difference counts them.
    (line.len() - rest.len(), rest)
}

fn opening_fence(line: &str) -> Option<Fence<'_>> {
    let (indent, rest) = split_indent(line);
    let character = rest.chars().next().filter(|c| *c == '`' || *c == '~')?;
    let after = rest.trim_start_matches(character);
    // The fence character is one byte, so the byte difference is the fence's length.
    let length = rest.len() - after.len();
    if length < 3 {
        return None;
    }
    let info = after.trim();
    if character == '`' && info.contains('`') {
        return None;
    }
    Some(Fence {
        character,
        length,
        indent,
        info,
    })
}

fn closes(line: &str, fence: &Fence<'_>) -> bool {
    let (_, rest) = split_indent(line);
    let after = rest.trim_start_matches(fence.character);
    rest.len() - after.len() >= fence.length && after.trim().is_empty()
}

/// Removes up to `indent` leading spaces or tabs.
fn strip_indent(line: &str, indent: usize) -> &str {
    let removable = line
        .bytes()
        .take(indent)
        .take_while(|b| matches!(b, b' ' | b'\t'))
        .count();
    &line[removable..]
}

/// The language word of an info string: `python`, `{.python}`, `py title="a.py"`, `rust,ignore`.
fn info_label(info: &str) -> Option<String> {
    let label: String = info
        .trim_start_matches(['{', '.'])
        .chars()
        .take_while(|c| c.is_alphanumeric() || matches!(c, '+' | '#' | '_' | '-'))
        .collect();
    (!label.is_empty()).then_some(label)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (label, content) of every block.
    fn blocks(markdown: &str) -> Vec<(Option<String>, String)> {
        fenced_blocks(markdown)
            .into_iter()
            .map(|block| (block.label, block.content))
            .collect()
    }

    fn block(label: Option<&str>, content: &str) -> (Option<String>, String) {
        (label.map(str::to_string), content.to_string())
    }

    #[test]
    fn blocks_in_order_with_labels() {
        let markdown = "Intro\n```python\na = 1\n```\ntext\n```\nplain\n```\n```py\nb = 2\n```\n";
        assert_eq!(
            blocks(markdown),
            [
                block(Some("python"), "a = 1\n"),
                block(None, "plain\n"),
                block(Some("py"), "b = 2\n"),
            ]
        );
        assert!(blocks("no code here\n").is_empty());
    }

    #[test]
    fn an_unclosed_fence_runs_to_the_end() {
        assert_eq!(
            blocks("```python\ndef f():\n    return 1"),
            [block(Some("python"), "def f():\n    return 1\n")]
        );
        // A closed block, then one cut off right after its opening fence.
        assert_eq!(
            blocks("```\na\n```\n```json\n"),
            [block(None, "a\n"), block(Some("json"), "")]
        );
    }

    #[test]
    fn a_longer_closing_fence_closes() {
        assert_eq!(
            blocks("```js\nlet a;\n`````\nafter\n```\nb\n```\n"),
            [block(Some("js"), "let a;\n"), block(None, "b\n")]
        );
        // Trailing whitespace is allowed after a closing fence; anything else is not.
        assert_eq!(
            blocks("```\na\n``` x\n```  \n"),
            [block(None, "a\n``` x\n")]
        );
    }

    #[test]
    fn a_shorter_or_other_fence_inside_a_block_is_content() {
        let markdown = "````markdown\n```python\nx = 1\n```\n~~~\n````\n";
        assert_eq!(
            blocks(markdown),
            [block(Some("markdown"), "```python\nx = 1\n```\n~~~\n")]
        );
    }

    #[test]
    fn tilde_fences() {
        let markdown = "~~~js\nlet a = 1;\n~~~\n~~~~\n```\n~~~\n~~~~~~\n";
        assert_eq!(
            blocks(markdown),
            [block(Some("js"), "let a = 1;\n"), block(None, "```\n~~~\n"),]
        );
        // A tilde fence's info string may hold backticks.
        assert_eq!(
            blocks("~~~ python `main.py`\nx\n~~~\n"),
            [block(Some("python"), "x\n")]
        );
    }

    #[test]
    fn indented_fences_in_list_items_come_out_flush() {
        let markdown =
            "1. Step\n   ```{.rust .numberLines}\n   fn a() {}\n       indented\n   ```\n";
        assert_eq!(
            blocks(markdown),
            [block(Some("rust"), "fn a() {}\n    indented\n")]
        );
        // Deeply indented fences open too; a line indented less than the fence loses what it has.
        let deep = "        ```py\n        def f():\n            pass\n  x\n        ```\n";
        assert_eq!(blocks(deep), [block(Some("py"), "def f():\n    pass\nx\n")]);
        // Tabs count like spaces, one each.
        assert_eq!(
            blocks("-\tStep\n\t```python\n\t\tpass\n\t```\n"),
            [block(Some("python"), "\tpass\n")]
        );
    }

    #[test]
    fn info_string_variants_and_line_endings() {
        assert_eq!(
            blocks("```py title=\"fib.py\"\ndef f(): pass\n```"),
            [block(Some("py"), "def f(): pass\n")]
        );
        assert_eq!(
            blocks("```rust,ignore\nfn f() {}\n```\n```c++\nint x;\n```\n"),
            [
                block(Some("rust"), "fn f() {}\n"),
                block(Some("c++"), "int x;\n")
            ]
        );
        assert_eq!(
            blocks("```js\r\nlet a;\r\n```\r\n"),
            [block(Some("js"), "let a;\n")]
        );
    }

    #[test]
    fn inline_fences_and_short_fences_are_not_blocks() {
        assert!(blocks("use ```python``` fences").is_empty());
        assert!(blocks("```python```\nx\n").is_empty());
        assert!(blocks("``\nx\n``\n").is_empty());
    }
}
