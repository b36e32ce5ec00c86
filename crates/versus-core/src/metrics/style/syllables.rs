//! Syllables of one word exactly as textstat 0.7.13 counts them for English.
//!
//! textstat looks the (lowercased) word up in NLTK's CMUdict and counts the stress-marked
//! phones of its first pronunciation; for a word CMUdict lacks it asks pyphen's `en_US`
//! hyphenation patterns for the hyphenation points and adds one. Both are reproduced from
//! embedded data: `data/cmudict_syllables.txt` (the first-pronunciation syllable count of every
//! CMUdict word textstat can look up; CMUdict is BSD-2-Clause) and `data/hyph_en_US.dic`
//! (pyphen's patterns, verbatim; BSD-style licence in `data/README_hyph_en_US.txt`).

use std::collections::HashMap;
use std::sync::OnceLock;

use super::python_text::is_space;

const CMUDICT_SYLLABLES: &str = include_str!("../../../data/cmudict_syllables.txt");
const HYPHENATION_PATTERNS: &str = include_str!("../../../data/hyph_en_US.dic");

/// pyphen's default minimum lengths of the first and last parts (`Pyphen(left=2, right=2)`);
/// textstat keeps them, and pyphen ignores the dictionary's own LEFTHYPHENMIN/RIGHTHYPHENMIN.
const LEFT_MIN: usize = 2;
const RIGHT_MIN: usize = 2;

/// Syllables in one word as textstat counts a word of `list_words(text, lowercase=True)`:
/// CMUdict's count when the word is there, else hyphenation points + 1.
pub(crate) fn word_syllables(word: &str) -> usize {
    match cmudict_syllables(word) {
        Some(count) => count,
        None => hyphenation_points(word) + 1,
    }
}

/// The syllable count of `word`'s first CMUdict pronunciation, if CMUdict has the word.
pub(crate) fn cmudict_syllables(word: &str) -> Option<usize> {
    cmudict().get(word).map(|&count| usize::from(count))
}

fn cmudict() -> &'static HashMap<&'static str, u8> {
    static DICTIONARY: OnceLock<HashMap<&'static str, u8>> = OnceLock::new();
    DICTIONARY.get_or_init(|| {
        CMUDICT_SYLLABLES
            .lines()
            .filter(|line| !line.starts_with('#'))
            .filter_map(|line| {
                let (word, count) = line.rsplit_once(' ')?;
                Some((word, count.parse().ok()?))
            })
            .collect()
    })
}

/// Liang-style hyphenation patterns as pyphen's `HyphDict` holds them.
struct Patterns {
    /// Pattern letters -> (offset of the first value, values from there to the last non-zero).
    by_letters: HashMap<String, (usize, Vec<u8>)>,
    /// Longest pattern, in characters.
    max_len: usize,
}

fn patterns() -> &'static Patterns {
    static PATTERNS: OnceLock<Patterns> = OnceLock::new();
    PATTERNS.get_or_init(|| parse_patterns(HYPHENATION_PATTERNS))
}

/// Parses a `hyph_*.dic` as pyphen does: the first line names the encoding (UTF-8 here), then
/// one pattern per line, header keywords and comments skipped. The `^^hh` escapes and
/// nonstandard `/` alternatives pyphen also understands do not occur in the en_US file (a test
/// checks), so they are not implemented.
fn parse_patterns(dic: &str) -> Patterns {
    const IGNORED_PREFIXES: [&str; 6] = [
        "%",
        "#",
        "LEFTHYPHENMIN",
        "RIGHTHYPHENMIN",
        "COMPOUNDLEFTHYPHENMIN",
        "COMPOUNDRIGHTHYPHENMIN",
    ];
    let mut by_letters = HashMap::new();
    for line in dic.split('\n').skip(1) {
        let pattern = line.trim_matches(is_space);
        if pattern.is_empty() || IGNORED_PREFIXES.iter().any(|p| pattern.starts_with(p)) {
            continue;
        }
        let (letters, values) = split_pattern(pattern);
        // pyphen skips patterns whose values are all zero and trims the zeros at both ends,
        // remembering where the first kept value sits.
        let Some(start) = values.iter().position(|&v| v != 0) else {
            continue;
        };
        let end = values
            .iter()
            .rposition(|&v| v != 0)
            .map_or(start, |last| last + 1);
        // A later duplicate replaces an earlier one, as in pyphen's dict.
        by_letters.insert(letters, (start, values[start..end].to_vec()));
    }
    let max_len = by_letters
        .keys()
        .map(|k| k.chars().count())
        .max()
        .unwrap_or(0);
    Patterns {
        by_letters,
        max_len,
    }
}

/// pyphen's `re.findall(r'(\d?)(\D?)', pattern)`: each match is an optional digit then an
/// optional non-digit, ending with the empty match at the end of the string, so a pattern of n
/// letters usually has n + 1 values (a missing digit is 0).
fn split_pattern(pattern: &str) -> (String, Vec<u8>) {
    let mut letters = String::new();
    let mut values = Vec::new();
    let mut chars = pattern.chars().peekable();
    loop {
        let digit = chars.next_if(char::is_ascii_digit);
        let letter = chars.next_if(|c| !c.is_ascii_digit());
        let value = digit.and_then(|d| d.to_digit(10)).unwrap_or(0);
        values.push(u8::try_from(value).unwrap_or(0));
        match letter {
            Some(letter) => letters.push(letter),
            // Only the end of the pattern gives the empty match; findall stops after it.
            None if digit.is_none() => break,
            None => {}
        }
    }
    (letters, values)
}

/// pyphen's `Pyphen(lang="en_US").positions(word)`, counted: the hyphenation points of the
/// lowercased word whose pattern value is odd, kept when at least `LEFT_MIN` characters from the
/// start and `RIGHT_MIN` from the end (of `word` as given, counted in characters).
pub(crate) fn hyphenation_points(word: &str) -> usize {
    let patterns = patterns();
    let pointed: String = format!(".{}.", word.to_lowercase());
    // Byte offset of every character boundary, so pattern look-ups slice by characters.
    let boundaries: Vec<usize> = pointed
        .char_indices()
        .map(|(offset, _)| offset)
        .chain(std::iter::once(pointed.len()))
        .collect();
    let length = boundaries.len() - 1;
    let mut references = vec![0u8; length + 1];
    for i in 0..length.saturating_sub(1) {
        let stop = (i + patterns.max_len).min(length);
        for j in i + 1..=stop {
            let Some((offset, values)) = patterns
                .by_letters
                .get(&pointed[boundaries[i]..boundaries[j]])
            else {
                continue;
            };
            for (k, &value) in values.iter().enumerate() {
                if let Some(reference) = references.get_mut(i + offset + k) {
                    *reference = (*reference).max(value);
                }
            }
        }
    }
    let right = word.chars().count().checked_sub(RIGHT_MIN);
    references
        .iter()
        .enumerate()
        // Reference i is the point before character i - 1 of the word.
        .filter(|&(i, &value)| value % 2 == 1 && i >= 1)
        .map(|(i, _)| i - 1)
        .filter(|&point| point >= LEFT_MIN && right.is_some_and(|right| point <= right))
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_split_like_pyphens_findall() {
        assert_eq!(
            split_pattern(".a2ch4"),
            (".ach".to_owned(), vec![0, 0, 2, 0, 4, 0])
        );
        assert_eq!(split_pattern("1ba"), ("ba".to_owned(), vec![1, 0, 0]));
        assert_eq!(split_pattern("a8'8"), ("a'".to_owned(), vec![0, 8, 8, 0]));
        assert_eq!(split_pattern("a12b"), ("ab".to_owned(), vec![0, 1, 2, 0]));
    }

    #[test]
    fn the_en_us_file_needs_no_escapes_or_alternatives() {
        assert!(!HYPHENATION_PATTERNS.contains("^^"));
        assert!(!HYPHENATION_PATTERNS.contains('/'));
        // pyphen 0.18.1 holds len(hd.patterns) == 11015 and hd.maxlen == 28 for en_US.
        assert_eq!(patterns().by_letters.len(), 11_015);
        assert_eq!(patterns().max_len, 28);
    }

    #[test]
    fn words_are_counted_from_cmudict_or_hyphenation() {
        assert_eq!(cmudict_syllables("dictionary"), Some(4));
        assert_eq!(cmudict_syllables("hmm"), Some(0));
        assert_eq!(word_syllables("hmm"), 0);
        assert_eq!(cmudict_syllables("kubernetes"), None);
        // pyphen: hy-phen-ation
        assert_eq!(hyphenation_points("hyphenation"), 2);
        assert_eq!(hyphenation_points(""), 0);
        assert_eq!(hyphenation_points("a"), 0);
    }
}
