//! Style and readability statistics of an answer: textstat's counts and Flesch scores, lexical
//! diversity (TTR, MTLD), Markdown structure and formality signals.
//!
//! The readability figures reproduce the Python package `textstat` 0.7.13 (language `en_US`,
//! no rounding, its default) exactly, quirks included; MTLD and TTR reproduce
//! `lexical-diversity` 0.1.1 (`lex_div.mtld`, `lex_div.ttr`). Both are checked against vectors
//! made by `tools/vectors/style_vectors.py`. Markdown and formality counts have no reference
//! package; their rules are documented on their types.
//!
//! textstat works on the raw text, so Markdown markup and code count as words like any other
//! (punctuation such as `#`, `*` or `|` is dropped first). Callers wanting prose-only figures
//! should strip code before calling.

mod formality;
mod markdown;
mod python_text;
mod syllables;

use std::collections::HashSet;
use std::hash::Hash;

use serde::{Deserialize, Serialize};

pub use formality::{formality_signals, FormalitySignals};
pub use markdown::{markdown_structure, MarkdownStructure};

/// Everything this module measures about one text.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StyleStats {
    /// textstat `lexicon_count`: words after punctuation removal.
    pub words: usize,
    /// textstat `sentence_count` (sentences of at most two words are not counted).
    pub sentences: usize,
    /// textstat `syllable_count`.
    pub syllables: usize,
    /// textstat `char_count`: characters other than whitespace.
    pub characters: usize,
    /// textstat `letter_count`: word characters (letters, digits, `_`).
    pub letters: usize,
    /// textstat `avg_sentence_length`: words per sentence.
    pub avg_sentence_length: f64,
    /// textstat `avg_syllables_per_word`.
    pub avg_syllables_per_word: f64,
    /// textstat `flesch_reading_ease`: higher is easier (90-100 very easy, below 30 very hard).
    pub flesch_reading_ease: f64,
    /// textstat `flesch_kincaid_grade`: the US school grade able to read the text.
    pub flesch_kincaid_grade: f64,
    /// Distinct tokens over tokens, of `lexical_tokens`.
    pub type_token_ratio: f64,
    /// MTLD of `lexical_tokens` (0 when no factor completes, as `lexical-diversity` returns).
    pub mtld: f64,
    /// Markdown constructs used.
    pub markdown: MarkdownStructure,
    /// Contractions, second person, exclamations and questions.
    pub formality: FormalitySignals,
}

/// All the statistics of `text`, computing the shared word list once.
pub fn style_stats(text: &str) -> StyleStats {
    let tokens = lexical_tokens(text);
    let words = tokens.len();
    let sentences = sentence_count(text);
    let syllables = tokens.iter().map(|word| word_syllables(word)).sum();
    let readability = Readability {
        words,
        sentences,
        syllables,
    };
    StyleStats {
        words,
        sentences,
        syllables,
        characters: char_count(text),
        letters: letter_count(text),
        avg_sentence_length: readability.words_per_sentence(),
        avg_syllables_per_word: readability.syllables_per_word(),
        flesch_reading_ease: readability.flesch_reading_ease(),
        flesch_kincaid_grade: readability.flesch_kincaid_grade(),
        type_token_ratio: type_token_ratio(&tokens),
        mtld: mtld(&tokens),
        markdown: markdown_structure(text),
        formality: formality_signals(text),
    }
}

/// textstat `lexicon_count(text)`: words once punctuation is removed. An apostrophe survives
/// only before `t`, `s`, `d`, `ve`, `ll` or `re` (so "don't" is one word, "'quoted'" is
/// "quoted"); every other non-word character goes, so "well-known" and "e.g." are one word each.
pub fn lexicon_count(text: &str) -> usize {
    python_text::count_words(text)
}

/// textstat's word list, lowercased (`list_words(text, lowercase=True)`): the words it counts
/// syllables of, and the tokens of `type_token_ratio` and `mtld` here.
pub fn lexical_tokens(text: &str) -> Vec<String> {
    python_text::list_words(text, true)
}

/// textstat `sentence_count(text)`: the matches of `\b[^.!?]+[.!?]*` (Python's `\b`), less
/// those of two words or fewer ("Dr.", "e.g.", "Hi."), at least 1 for any non-empty text
/// (whitespace-only too) and 0 for "".
pub fn sentence_count(text: &str) -> usize {
    if text.is_empty() {
        return 0;
    }
    let counted = sentence_spans(text)
        .filter(|sentence| python_text::count_words(sentence) > 2)
        .count();
    counted.max(1)
}

/// The matches of textstat's sentence regex `\b[^.!?]+[.!?]*`, scanning as `re.findall` does.
fn sentence_spans(text: &str) -> impl Iterator<Item = &str> {
    let is_terminator = |c: char| matches!(c, '.' | '!' | '?');
    let mut position = 0;
    let mut previous_is_word = false;
    std::iter::from_fn(move || {
        while let Some(c) = text[position..].chars().next() {
            let at_boundary = previous_is_word != python_text::is_word_char(c);
            if at_boundary && !is_terminator(c) {
                // Greedy and never backtracking: all non-terminators, then all terminators.
                let start = position;
                let body = text[start..]
                    .find(is_terminator)
                    .map_or(text.len(), |i| start + i);
                let end = text[body..]
                    .find(|c: char| !is_terminator(c))
                    .map_or(text.len(), |i| body + i);
                position = end;
                // A match ends after a terminator (no word character) or at the end of text.
                previous_is_word = false;
                return Some(&text[start..end]);
            }
            previous_is_word = python_text::is_word_char(c);
            position += c.len_utf8();
        }
        None
    })
}

/// textstat `syllable_count(text)`: the syllables of every lowercased word, each from CMUdict
/// (first pronunciation) or, for words it lacks, pyphen's en_US hyphenation points + 1.
pub fn syllable_count(text: &str) -> usize {
    lexical_tokens(text)
        .iter()
        .map(|word| word_syllables(word))
        .sum()
}

/// Syllables of one word as textstat counts a word of `lexical_tokens` (lowercase, punctuation
/// already removed): CMUdict's count, else hyphenation points + 1 (so never 0 outside CMUdict,
/// while CMUdict gives "hmm" 0).
pub fn word_syllables(word: &str) -> usize {
    syllables::word_syllables(word)
}

/// textstat `char_count(text)` (with its default `ignore_spaces=True`): characters other than
/// Python whitespace.
pub fn char_count(text: &str) -> usize {
    text.chars().filter(|&c| !python_text::is_space(c)).count()
}

/// textstat `letter_count(text)`: Python word characters, which include digits and `_`.
pub fn letter_count(text: &str) -> usize {
    text.chars()
        .filter(|&c| python_text::is_word_char(c))
        .count()
}

/// textstat `avg_sentence_length(text)`: words per sentence, 0 for no sentences.
pub fn avg_sentence_length(text: &str) -> f64 {
    Readability::of(text).words_per_sentence()
}

/// textstat `avg_syllables_per_word(text)`: 0 for no words.
pub fn avg_syllables_per_word(text: &str) -> f64 {
    Readability::of(text).syllables_per_word()
}

/// textstat `flesch_reading_ease(text)` for en_US: 206.835 - 1.015 x words per sentence -
/// 84.6 x syllables per word, unrounded; 0 when either average is 0.
pub fn flesch_reading_ease(text: &str) -> f64 {
    Readability::of(text).flesch_reading_ease()
}

/// textstat `flesch_kincaid_grade(text)`: 0.39 x words per sentence + 11.8 x syllables per
/// word - 15.59, unrounded; 0 when either average is 0.
pub fn flesch_kincaid_grade(text: &str) -> f64 {
    Readability::of(text).flesch_kincaid_grade()
}

/// The counts textstat's Flesch formulas start from.
struct Readability {
    words: usize,
    sentences: usize,
    syllables: usize,
}

impl Readability {
    fn of(text: &str) -> Readability {
        let tokens = lexical_tokens(text);
        Readability {
            words: tokens.len(),
            sentences: sentence_count(text),
            syllables: tokens.iter().map(|word| word_syllables(word)).sum(),
        }
    }

    fn words_per_sentence(&self) -> f64 {
        ratio(self.words, self.sentences)
    }

    fn syllables_per_word(&self) -> f64 {
        ratio(self.syllables, self.words)
    }

    fn flesch_reading_ease(&self) -> f64 {
        let (words_per_sentence, syllables_per_word) = self.averages();
        if words_per_sentence == 0.0 || syllables_per_word == 0.0 {
            return 0.0;
        }
        // Evaluated left to right as textstat writes it, for bit-identical results.
        206.835 - 1.015 * words_per_sentence - 84.6 * syllables_per_word
    }

    fn flesch_kincaid_grade(&self) -> f64 {
        let (words_per_sentence, syllables_per_word) = self.averages();
        if words_per_sentence == 0.0 || syllables_per_word == 0.0 {
            return 0.0;
        }
        (0.39 * words_per_sentence) + (11.8 * syllables_per_word) - 15.59
    }

    fn averages(&self) -> (f64, f64) {
        (self.words_per_sentence(), self.syllables_per_word())
    }
}

/// `numerator / denominator`, 0 when the denominator is 0 (textstat's ZeroDivisionError rule).
fn ratio(numerator: usize, denominator: usize) -> f64 {
    if denominator == 0 {
        0.0
    } else {
        numerator as f64 / denominator as f64
    }
}

/// The TTR below which an MTLD factor is complete (McCarthy & Jarvis 2010).
const MTLD_THRESHOLD: f64 = 0.72;
/// `lexical-diversity`'s `min=10`: a factor completes only once it is this long.
const MTLD_MIN_FACTOR_LENGTH: usize = 10;

/// `lex_div.ttr(tokens)`: distinct tokens over tokens, 0 for none.
pub fn type_token_ratio<T: Eq + Hash>(tokens: &[T]) -> f64 {
    ratio(tokens.iter().collect::<HashSet<_>>().len(), tokens.len())
}

/// `lex_div.mtld(tokens)`: the mean of the forward and backward MTLD passes, threshold 0.72.
///
/// As that package computes it: a factor completes when its TTR drops below 0.72 *and* it has
/// at least 10 tokens; the last token always ends a partial factor weighted (1 - TTR) / (1 -
/// 0.72), even one that would have completed; and a pass with no factor weight gives 0 (so
/// short texts of distinct words have MTLD 0, not infinity).
pub fn mtld<T: Eq + Hash>(tokens: &[T]) -> f64 {
    (mtld_pass(tokens.iter()) + mtld_pass(tokens.iter().rev())) / 2.0
}

fn mtld_pass<'a, T: Eq + Hash + 'a>(tokens: impl ExactSizeIterator<Item = &'a T>) -> f64 {
    let total = tokens.len();
    let mut factors = 0.0_f64;
    let mut factor_lengths = 0_usize;
    let mut types = HashSet::new();
    let mut length = 0_usize;
    for (index, token) in tokens.enumerate() {
        types.insert(token);
        length += 1;
        let ttr = ratio(types.len(), length);
        if index + 1 == total {
            factors += (1.0 - ttr) / (1.0 - MTLD_THRESHOLD);
            factor_lengths += length;
        } else if ttr < MTLD_THRESHOLD && length >= MTLD_MIN_FACTOR_LENGTH {
            factors += 1.0;
            factor_lengths += length;
            types.clear();
            length = 0;
        }
    }
    if factors == 0.0 {
        0.0
    } else {
        factor_lengths as f64 / factors
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sentences_shorter_than_three_words_are_not_counted() {
        assert_eq!(sentence_count(""), 0);
        assert_eq!(sentence_count("   "), 1);
        assert_eq!(sentence_count("Hi. Yes. No!"), 1);
        assert_eq!(
            sentence_count("Dr. Smith went home. He slept well! Did you sleep well?"),
            3
        );
        let spans: Vec<&str> = sentence_spans("  Dr. Smith, (aside) went home...Yes").collect();
        assert_eq!(spans, ["Dr.", "Smith, (aside) went home...", "Yes"]);
    }

    #[test]
    fn flesch_scores_follow_textstat() {
        // textstat 0.7.13 gives 10 words, 1 sentence, 15 syllables, and these unrounded scores.
        let text = "The quick brown fox jumps over the lazy dog repeatedly.";
        assert_eq!(lexicon_count(text), 10);
        assert_eq!(sentence_count(text), 1);
        assert_eq!(syllable_count(text), 15);
        assert_eq!(flesch_reading_ease(text), 69.78500000000001);
        assert_eq!(flesch_kincaid_grade(text), 6.010000000000002);
        assert_eq!(flesch_reading_ease(""), 0.0);
        assert_eq!(flesch_kincaid_grade("..."), 0.0);
    }

    #[test]
    fn mtld_of_degenerate_inputs() {
        let none: [&str; 0] = [];
        assert_eq!(mtld(&none), 0.0);
        assert_eq!(type_token_ratio(&none), 0.0);
        assert_eq!(mtld(&["a"]), 0.0);
        assert_eq!(type_token_ratio(&["a", "a", "b", "c"]), 0.75);
    }

    #[test]
    fn style_stats_agrees_with_the_single_functions() {
        let text = "# Title\n\nYou'll see: it's **easy**! Isn't it? Dr. Jones said so.";
        let stats = style_stats(text);
        assert_eq!(stats.words, lexicon_count(text));
        assert_eq!(stats.sentences, sentence_count(text));
        assert_eq!(stats.syllables, syllable_count(text));
        assert_eq!(stats.flesch_reading_ease, flesch_reading_ease(text));
        assert_eq!(stats.flesch_kincaid_grade, flesch_kincaid_grade(text));
        assert_eq!(stats.avg_sentence_length, avg_sentence_length(text));
        assert_eq!(stats.avg_syllables_per_word, avg_syllables_per_word(text));
        assert_eq!(stats.markdown.headers, 1);
        assert_eq!(stats.markdown.bold_spans, 1);
        assert_eq!(stats.formality.contractions, 3);
        assert_eq!(stats.formality.second_person, 1);
        assert_eq!(stats.formality.exclamation_marks, 1);
        assert_eq!(stats.formality.questions, 1);
        let json = serde_json::to_string(&stats).unwrap_or_default();
        let back: Option<StyleStats> = serde_json::from_str(&json).ok();
        assert_eq!(back, Some(stats));
    }
}
