//! Markdown structure of an answer (headers, list items, bold spans, fenced code blocks,
//! tables), counted by a line scanner that follows CommonMark/GFM's block rules closely enough
//! for model answers, and ignores everything inside fenced code blocks.
//!
//! Deliberate simplifications: no indented code blocks (four-space indentation is read as
//! nested content, so nested list items count), bold spans do not cross lines, and HTML is not
//! interpreted.

use serde::{Deserialize, Serialize};

/// Counts of the Markdown constructs an answer uses.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MarkdownStructure {
    /// ATX (`# Title`) and setext (`Title` over `===` or `---`) headers.
    pub headers: usize,
    /// Items marked `-`, `*` or `+`, nested ones included.
    pub unordered_list_items: usize,
    /// Items marked `1.` or `1)`, nested ones included.
    pub ordered_list_items: usize,
    /// `**strong**` and `__strong__` spans outside code.
    pub bold_spans: usize,
    /// Fenced code blocks (```` ``` ```` or `~~~`); one left open counts too.
    pub code_blocks: usize,
    /// GFM tables: a header row followed by a `|---|---|` delimiter row of as many cells.
    pub tables: usize,
}

/// Counts the Markdown structure of `text`.
pub fn markdown_structure(text: &str) -> MarkdownStructure {
    let mut counts = MarkdownStructure::default();
    let mut fence: Option<Fence> = None;
    let mut previous = Block::Blank;
    let mut previous_line = "";
    for raw_line in text.lines() {
        let line = strip_blockquote_markers(raw_line);
        if let Some(open) = fence {
            if open.is_closed_by(line) {
                fence = None;
            }
            previous = Block::Code;
            continue;
        }
        if let Some(opening) = Fence::opened_by(line) {
            counts.code_blocks += 1;
            fence = Some(opening);
            previous = Block::Code;
            continue;
        }
        let block = classify(line, previous, previous_line);
        match block {
            Block::Header => counts.headers += 1,
            Block::UnorderedItem => counts.unordered_list_items += 1,
            Block::OrderedItem => counts.ordered_list_items += 1,
            Block::TableDelimiter => counts.tables += 1,
            Block::Blank | Block::Break | Block::Paragraph | Block::TableRow | Block::Code => {}
        }
        if block != Block::TableDelimiter {
            counts.bold_spans += count_strong_spans(&strip_inline_code(line));
        }
        previous = block;
        previous_line = line;
    }
    counts
}

/// The text outside fenced code blocks and inline code spans: what a reader reads as prose.
pub(crate) fn prose_text(text: &str) -> String {
    let mut prose = String::with_capacity(text.len());
    let mut fence: Option<Fence> = None;
    for raw_line in text.lines() {
        let line = strip_blockquote_markers(raw_line);
        if let Some(open) = fence {
            if open.is_closed_by(line) {
                fence = None;
            }
            continue;
        }
        if let Some(opening) = Fence::opened_by(line) {
            fence = Some(opening);
            continue;
        }
        prose.push_str(&strip_inline_code(line));
        prose.push('\n');
    }
    prose
}

/// What a line is, given the line before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Block {
    Blank,
    Code,
    Header,
    Break,
    UnorderedItem,
    OrderedItem,
    TableDelimiter,
    TableRow,
    Paragraph,
}

fn classify(line: &str, previous: Block, previous_line: &str) -> Block {
    let (indent, rest) = split_indent(line);
    if rest.is_empty() {
        return Block::Blank;
    }
    if indent <= 3 && is_atx_header(rest) {
        return Block::Header;
    }
    if previous == Block::Paragraph && is_table_delimiter_under(rest, previous_line) {
        return Block::TableDelimiter;
    }
    if matches!(previous, Block::TableDelimiter | Block::TableRow) && rest.contains('|') {
        return Block::TableRow;
    }
    // A paragraph line over `===` or `---` is a setext header; `---` elsewhere is a break.
    if previous == Block::Paragraph && indent <= 3 && is_setext_underline(rest) {
        return Block::Header;
    }
    if indent <= 3 && is_thematic_break(rest) {
        return Block::Break;
    }
    if is_unordered_item(rest) {
        return Block::UnorderedItem;
    }
    if is_ordered_item(rest) {
        return Block::OrderedItem;
    }
    Block::Paragraph
}

/// Leading indentation in columns (a tab counts as four) and the rest of the line, with
/// trailing whitespace removed.
fn split_indent(line: &str) -> (usize, &str) {
    let rest = line.trim_start_matches([' ', '\t']);
    let indent = line[..line.len() - rest.len()]
        .chars()
        .map(|c| if c == '\t' { 4 } else { 1 })
        .sum();
    (indent, rest.trim_end())
}

/// Removes `>` blockquote markers (each with up to three spaces before and one after).
fn strip_blockquote_markers(mut line: &str) -> &str {
    loop {
        let unindented = line.trim_start_matches(' ');
        if line.len() - unindented.len() > 3 {
            return line;
        }
        match unindented.strip_prefix('>') {
            Some(quoted) => line = quoted.strip_prefix(' ').unwrap_or(quoted),
            None => return line,
        }
    }
}

fn is_atx_header(rest: &str) -> bool {
    let hashes = rest.len() - rest.trim_start_matches('#').len();
    (1..=6).contains(&hashes)
        && rest[hashes..]
            .chars()
            .next()
            .is_none_or(|c| c == ' ' || c == '\t')
}

fn is_setext_underline(rest: &str) -> bool {
    let Some(first) = rest.chars().next() else {
        return false;
    };
    (first == '=' || first == '-') && rest.chars().all(|c| c == first)
}

fn is_thematic_break(rest: &str) -> bool {
    let Some(first) = rest.chars().next() else {
        return false;
    };
    matches!(first, '-' | '*' | '_')
        && rest.chars().filter(|&c| c == first).count() >= 3
        && rest.chars().all(|c| c == first || c == ' ' || c == '\t')
}

/// Whether `marker_rest` (what follows a list marker) lets the marker start an item: a space,
/// a tab, or nothing (an empty item).
fn starts_item(marker_rest: &str) -> bool {
    marker_rest.is_empty() || marker_rest.starts_with([' ', '\t'])
}

fn is_unordered_item(rest: &str) -> bool {
    rest.strip_prefix(['-', '*', '+']).is_some_and(starts_item)
}

fn is_ordered_item(rest: &str) -> bool {
    let digits = rest.len() - rest.trim_start_matches(|c: char| c.is_ascii_digit()).len();
    (1..=9).contains(&digits)
        && rest[digits..]
            .strip_prefix(['.', ')'])
            .is_some_and(starts_item)
}

/// GFM: a delimiter row (cells of `-` with optional `:` at either end, separated by `|`) under
/// a header row with a `|` and the same number of cells.
fn is_table_delimiter_under(rest: &str, header: &str) -> bool {
    if !rest.contains('|') || !header.contains('|') {
        return false;
    }
    let cells = table_cells(rest);
    let is_delimiter_cell = |cell: &&str| {
        let inner = cell.strip_prefix(':').unwrap_or(cell);
        let inner = inner.strip_suffix(':').unwrap_or(inner);
        !inner.is_empty() && inner.chars().all(|c| c == '-')
    };
    cells.iter().all(is_delimiter_cell) && cells.len() == table_cells(header).len()
}

/// A table row's cells: split on `|` not escaped with a backslash, outer pipes dropped.
fn table_cells(row: &str) -> Vec<&str> {
    let row = row.trim();
    let row = row.strip_prefix('|').unwrap_or(row);
    let row = match row.strip_suffix('|') {
        Some(inner) if !inner.ends_with('\\') => inner,
        _ => row,
    };
    let mut cells = Vec::new();
    let mut start = 0;
    let mut escaped = false;
    for (index, c) in row.char_indices() {
        match c {
            '\\' => escaped = !escaped,
            '|' if !escaped => {
                cells.push(row[start..index].trim());
                start = index + 1;
            }
            _ => escaped = false,
        }
    }
    cells.push(row[start..].trim());
    cells
}

/// The line without its inline code spans: a run of n backticks up to the next run of exactly
/// n backticks. An unmatched run is literal text.
fn strip_inline_code(line: &str) -> String {
    let mut kept = String::with_capacity(line.len());
    let mut rest = line;
    while let Some(start) = rest.find('`') {
        kept.push_str(&rest[..start]);
        let run = rest[start..].len() - rest[start..].trim_start_matches('`').len();
        let after_opening = &rest[start + run..];
        match find_backtick_run(after_opening, run) {
            Some(end) => rest = &after_opening[end + run..],
            None => {
                kept.push_str(&rest[start..start + run]);
                rest = after_opening;
            }
        }
    }
    kept.push_str(rest);
    kept
}

/// Byte offset of the first run of exactly `length` backticks in `text`.
fn find_backtick_run(text: &str, length: usize) -> Option<usize> {
    let mut offset = 0;
    while let Some(found) = text[offset..].find('`') {
        let start = offset + found;
        let run = text[start..].len() - text[start..].trim_start_matches('`').len();
        if run == length {
            return Some(start);
        }
        offset = start + run;
    }
    None
}

/// `**strong**` and `__strong__` spans in one line. An opener is followed by a non-space that
/// is not the marker; a closer follows a non-space; `__` must not touch a letter or digit on
/// the outside (CommonMark's intraword rule, so `snake__case__name` is no span).
fn count_strong_spans(line: &str) -> usize {
    let chars: Vec<char> = line.chars().collect();
    ['*', '_']
        .into_iter()
        .map(|marker| count_spans_of(&chars, marker))
        .sum()
}

fn count_spans_of(chars: &[char], marker: char) -> usize {
    let is_pair = |i: usize| chars.get(i) == Some(&marker) && chars.get(i + 1) == Some(&marker);
    let intraword = |c: Option<&char>| marker == '_' && c.is_some_and(|c| c.is_alphanumeric());
    let can_open = |i: usize| {
        is_pair(i)
            && chars
                .get(i + 2)
                .is_some_and(|&c| !c.is_whitespace() && c != marker)
            && !intraword(i.checked_sub(1).and_then(|p| chars.get(p)))
    };
    let can_close = |j: usize| {
        is_pair(j)
            && j.checked_sub(1)
                .and_then(|p| chars.get(p))
                .is_some_and(|c| !c.is_whitespace())
            && !intraword(chars.get(j + 2))
    };
    let mut spans = 0;
    let mut i = 0;
    while i + 1 < chars.len() {
        if can_open(i) {
            // Whether a position closes does not depend on the opener, so when this opener
            // finds no closer, no later one can: stop (this keeps the scan linear).
            match (i + 3..chars.len()).find(|&j| can_close(j)) {
                Some(close) => {
                    spans += 1;
                    i = close + 2;
                    continue;
                }
                None => break,
            }
        }
        i += 1;
    }
    spans
}

/// An open fenced code block: its marker character and length.
#[derive(Debug, Clone, Copy)]
struct Fence {
    marker: char,
    length: usize,
}

impl Fence {
    /// A line of at most three spaces' indentation and three or more backticks or tildes (a
    /// backtick fence's info string may not contain a backtick).
    fn opened_by(line: &str) -> Option<Fence> {
        let (indent, rest) = split_indent(line);
        let marker = rest.chars().next().filter(|c| *c == '`' || *c == '~')?;
        let length = rest.len() - rest.trim_start_matches(marker).len();
        let info = &rest[length..];
        (indent <= 3 && length >= 3 && !(marker == '`' && info.contains('`')))
            .then_some(Fence { marker, length })
    }

    /// A closing fence: the same marker, at least as long, nothing after it.
    fn is_closed_by(self, line: &str) -> bool {
        let (indent, rest) = split_indent(line);
        let length = rest.len() - rest.trim_start_matches(self.marker).len();
        indent <= 3 && length >= self.length && rest[length..].is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(
        headers: usize,
        unordered_list_items: usize,
        ordered_list_items: usize,
        bold_spans: usize,
        code_blocks: usize,
        tables: usize,
    ) -> MarkdownStructure {
        MarkdownStructure {
            headers,
            unordered_list_items,
            ordered_list_items,
            bold_spans,
            code_blocks,
            tables,
        }
    }

    #[test]
    fn plain_text_has_no_structure() {
        assert_eq!(markdown_structure(""), MarkdownStructure::default());
        assert_eq!(
            markdown_structure("Just a sentence. And 2 * 3 * 4 = 24, not bold."),
            MarkdownStructure::default()
        );
    }

    #[test]
    fn headers_atx_and_setext() {
        let text = "# One\n## Two ##\n###### Six\n####### seven is text\n#hashtag\n\
                    Title\n=====\n\nSubtitle\n---\n   # indented three\n    # indented four";
        assert_eq!(markdown_structure(text).headers, 6);
    }

    #[test]
    fn a_rule_after_a_blank_line_or_a_list_is_no_header() {
        assert_eq!(
            markdown_structure("text\n\n---\n- item\n---\n***\n* * *").headers,
            0
        );
        assert_eq!(markdown_structure("- item\n---").unordered_list_items, 1);
    }

    #[test]
    fn list_items_unordered_ordered_and_nested() {
        let text = "- a\n* b\n+ c\n  - nested\n-not an item\n1. one\n2) two\n   10. ten\n\
                    1234567890. too many digits\n3.not an item\n- [ ] task";
        let structure = markdown_structure(text);
        assert_eq!(structure.unordered_list_items, 5);
        assert_eq!(structure.ordered_list_items, 3);
    }

    #[test]
    fn bold_spans_outside_code() {
        let text = "**one** and __two__ and ***three*** and **four\n\
                    ** not bold ** and snake__case__name and `**code**`\n\
                    a **5** b **6**";
        assert_eq!(markdown_structure(text).bold_spans, 5);
    }

    #[test]
    fn fenced_code_hides_its_content() {
        let text = "```python\n# not a header\n- not an item\n**not bold**\n```\n\
                    ~~~~\n```\nstill code\n~~~~\n```\nunclosed\n# not a header";
        assert_eq!(markdown_structure(text), counts(0, 0, 0, 0, 3, 0));
    }

    #[test]
    fn a_backtick_fence_info_string_cannot_hold_backticks() {
        assert_eq!(markdown_structure("``` `x` ```\n# header").code_blocks, 0);
    }

    #[test]
    fn tables_need_a_matching_delimiter_row() {
        let text = "| a | b |\n|---|:-:|\n| 1 | 2 |\n| 3 | 4 |\n\n\
                    a | b\n--- | ---\n\n\
                    | a | b |\n|---|\n\n\
                    a | b\n---";
        let structure = markdown_structure(text);
        assert_eq!(structure.tables, 2);
        // The last one is a paragraph over `---`: a setext header.
        assert_eq!(structure.headers, 1);
    }

    #[test]
    fn blockquotes_are_looked_into() {
        let text = "> # Quoted header\n> - quoted item\n> > **deep**";
        assert_eq!(markdown_structure(text), counts(1, 1, 0, 1, 0, 0));
    }

    #[test]
    fn a_seed_like_answer() {
        let text = "## Key ideas\n\n1. **Data**: examples.\n2. **Model**: a function.\n\n\
                    - Supervised\n- Unsupervised\n\n```python\nprint('hi')\n```\n";
        assert_eq!(markdown_structure(text), counts(1, 2, 2, 2, 1, 0));
    }

    #[test]
    fn prose_drops_code() {
        assert_eq!(
            prose_text("Use `x != y`!\n```\nif a != b: pass\n```\nDone?"),
            "Use !\nDone?\n"
        );
    }
}
