//! Python's notion of word and space characters, and textstat's word list built on them.
//!
//! textstat works with Python's `re` and `str` methods, whose `\w` is `str.isalnum()` or `_` and
//! whose `\s` (also `str.split()`'s separator) is `str.isspace()`. Neither matches Rust's
//! definitions (Rust's `\w` adds combining marks and connector punctuation and lacks `No`
//! numbers such as `²`; Python's `\s` adds the separators U+001C..U+001F), so both are
//! reproduced here: `\w` from a table generated with Python (`data/python_word_chars.txt`).

use std::sync::OnceLock;

/// `start end` lines (inclusive, hex) of the code points Python's `re` matches with `\w`.
const PYTHON_WORD_CHARS: &str = include_str!("../../../data/python_word_chars.txt");

fn word_char_ranges() -> &'static [(u32, u32)] {
    static RANGES: OnceLock<Vec<(u32, u32)>> = OnceLock::new();
    RANGES.get_or_init(|| parse_ranges(PYTHON_WORD_CHARS))
}

/// Parses the range table; malformed lines are skipped (a unit test checks there are none).
fn parse_ranges(table: &str) -> Vec<(u32, u32)> {
    table
        .lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| {
            let (start, end) = line.split_once(' ')?;
            Some((
                u32::from_str_radix(start, 16).ok()?,
                u32::from_str_radix(end, 16).ok()?,
            ))
        })
        .collect()
}

/// Python's `\w` for `str` patterns: `c.isalnum() or c == '_'`.
pub(crate) fn is_word_char(c: char) -> bool {
    if c.is_ascii() {
        return c.is_ascii_alphanumeric() || c == '_';
    }
    let code = u32::from(c);
    let ranges = word_char_ranges();
    let after = ranges.partition_point(|&(start, _)| start <= code);
    after > 0 && code <= ranges[after - 1].1
}

/// Python's `\s` and `str.isspace()`: Unicode White_Space plus the information separators
/// U+001C..U+001F, which Python counts as whitespace (bidirectional class B or S).
pub(crate) fn is_space(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

/// textstat's `remove_punctuation(text, rm_apostrophe=False)`: drops every character that is
/// neither `\w` nor `\s`, except an ASCII apostrophe followed by `t`, `s`, `d`, `ve`, `ll` or
/// `re` (its contraction rule, tested on the original text and case-sensitively, so the
/// apostrophe in "DON'T" goes).
pub(crate) fn remove_punctuation_keeping_contractions(text: &str) -> String {
    let mut kept = String::with_capacity(text.len());
    for (index, c) in text.char_indices() {
        let keep = if c == '\'' {
            let rest = &text[index + 1..];
            rest.starts_with(['t', 's', 'd'])
                || rest.starts_with("ve")
                || rest.starts_with("ll")
                || rest.starts_with("re")
        } else {
            is_word_char(c) || is_space(c)
        };
        if keep {
            kept.push(c);
        }
    }
    kept
}

/// textstat's `list_words(text)`: punctuation removed (contraction apostrophes kept), split on
/// Python whitespace, lowercased as a whole first when `lowercase` (as textstat does, which
/// matters for the final-sigma rule).
pub(crate) fn list_words(text: &str, lowercase: bool) -> Vec<String> {
    let mut stripped = remove_punctuation_keeping_contractions(text);
    if lowercase {
        stripped = stripped.to_lowercase();
    }
    stripped
        .split(is_space)
        .filter(|word| !word.is_empty())
        .map(str::to_owned)
        .collect()
}

/// textstat's `count_words(text)`: the length of `list_words`, without building the strings.
pub(crate) fn count_words(text: &str) -> usize {
    remove_punctuation_keeping_contractions(text)
        .split(is_space)
        .filter(|word| !word.is_empty())
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_table_parses_completely() {
        let data_lines = PYTHON_WORD_CHARS
            .lines()
            .filter(|line| !line.starts_with('#'))
            .count();
        assert_eq!(word_char_ranges().len(), data_lines);
        assert!(word_char_ranges().windows(2).all(|w| w[0].1 < w[1].0));
    }

    #[test]
    fn word_chars_follow_python() {
        for c in [
            'a', 'Z', '0', '_', 'é', 'ß', 'Σ', '东', '²', '½', '①', 'Ⅻ', 'ﬁ',
        ] {
            assert!(is_word_char(c), "{c:?} is \\w in Python");
        }
        // Combining marks and connector punctuation other than '_' are not.
        for c in ['\u{301}', '\u{94d}', '\u{203f}', '-', '\'', '’', ' ', '🎉'] {
            assert!(!is_word_char(c), "{c:?} is not \\w in Python");
        }
    }

    #[test]
    fn spaces_include_the_information_separators() {
        assert!(is_space('\u{1c}') && is_space('\u{a0}') && is_space('\u{3000}'));
        assert!(!is_space('\u{200b}'));
    }

    #[test]
    fn punctuation_removal_keeps_only_contraction_apostrophes() {
        assert_eq!(
            remove_punctuation_keeping_contractions("Don't 'quote' it's DON'T e.g. well-known"),
            "Don't quote it's DONT eg wellknown"
        );
        assert_eq!(list_words("  ΣΟΦΙΑΣ  Café!  ", true), ["σοφιας", "café"]);
    }
}
