//! Checks `metrics::style` against the Python reference packages: textstat 0.7.13 (counts,
//! Flesch scores, syllables) and lexical-diversity 0.1.1 (TTR, MTLD), through the vectors
//! `tools/vectors/style_vectors.py` writes to `tests/vectors/style.json`. Counts must match
//! exactly, floats to 1e-9. Add a case by adding a text (or token list) to that script.

use std::sync::OnceLock;

use serde::Deserialize;
use versus_core::metrics::style;

const TOLERANCE: f64 = 1e-9;

#[derive(Deserialize)]
struct Vectors {
    packages: serde_json::Value,
    python_whitespace: Vec<u32>,
    texts: Vec<TextCase>,
    mtld: Vec<TokenCase>,
    syllables: Vec<WordCase>,
}

#[derive(Deserialize)]
struct TextCase {
    text: String,
    lexicon_count: usize,
    sentence_count: usize,
    syllable_count: usize,
    char_count: usize,
    letter_count: usize,
    avg_sentence_length: f64,
    avg_syllables_per_word: f64,
    flesch_reading_ease: f64,
    flesch_kincaid_grade: f64,
    tokens: Vec<String>,
    type_token_ratio: f64,
    mtld: f64,
}

#[derive(Deserialize)]
struct TokenCase {
    tokens: Vec<String>,
    type_token_ratio: f64,
    mtld: f64,
}

#[derive(Deserialize)]
struct WordCase {
    word: String,
    syllables: usize,
    /// "cmudict" or "hyphenation": which of textstat's two sources counted the word.
    source: String,
}

fn vectors() -> &'static Vectors {
    static VECTORS: OnceLock<Vectors> = OnceLock::new();
    VECTORS.get_or_init(|| {
        serde_json::from_str(include_str!("vectors/style.json"))
            .unwrap_or_else(|error| panic!("tests/vectors/style.json does not parse: {error}"))
    })
}

/// Asserts a count on every text.
fn check_count(name: &str, expected: impl Fn(&TextCase) -> usize, actual: impl Fn(&str) -> usize) {
    let texts = &vectors().texts;
    assert!(texts.len() >= 50, "only {} texts", texts.len());
    for case in texts {
        assert_eq!(
            actual(&case.text),
            expected(case),
            "{name} of {:?}",
            case.text
        );
    }
}

/// Asserts a float on every text to `TOLERANCE`, and reports the largest difference.
fn check_float(name: &str, expected: impl Fn(&TextCase) -> f64, actual: impl Fn(&str) -> f64) {
    let mut largest: f64 = 0.0;
    for case in &vectors().texts {
        let difference = (actual(&case.text) - expected(case)).abs();
        assert!(
            difference <= TOLERANCE,
            "{name} of {:?}: off by {difference}",
            case.text
        );
        largest = largest.max(difference);
    }
    eprintln!(
        "{name}: largest difference {largest:e} over {} texts",
        vectors().texts.len()
    );
}

#[test]
fn lexicon_count_matches_textstat() {
    check_count("lexicon_count", |c| c.lexicon_count, style::lexicon_count);
}

#[test]
fn sentence_count_matches_textstat() {
    check_count(
        "sentence_count",
        |c| c.sentence_count,
        style::sentence_count,
    );
}

#[test]
fn syllable_count_matches_textstat() {
    check_count(
        "syllable_count",
        |c| c.syllable_count,
        style::syllable_count,
    );
}

#[test]
fn char_count_matches_textstat() {
    check_count("char_count", |c| c.char_count, style::char_count);
}

#[test]
fn letter_count_matches_textstat() {
    check_count("letter_count", |c| c.letter_count, style::letter_count);
}

#[test]
fn avg_sentence_length_matches_textstat() {
    check_float(
        "avg_sentence_length",
        |c| c.avg_sentence_length,
        style::avg_sentence_length,
    );
}

#[test]
fn avg_syllables_per_word_matches_textstat() {
    check_float(
        "avg_syllables_per_word",
        |c| c.avg_syllables_per_word,
        style::avg_syllables_per_word,
    );
}

#[test]
fn flesch_reading_ease_matches_textstat() {
    check_float(
        "flesch_reading_ease",
        |c| c.flesch_reading_ease,
        style::flesch_reading_ease,
    );
}

#[test]
fn flesch_kincaid_grade_matches_textstat() {
    check_float(
        "flesch_kincaid_grade",
        |c| c.flesch_kincaid_grade,
        style::flesch_kincaid_grade,
    );
}

#[test]
fn lexical_tokens_are_textstats_lowercased_words() {
    for case in &vectors().texts {
        assert_eq!(
            style::lexical_tokens(&case.text),
            case.tokens,
            "tokens of {:?}",
            case.text
        );
    }
}

#[test]
fn type_token_ratio_matches_lexical_diversity() {
    check_float(
        "type_token_ratio",
        |c| c.type_token_ratio,
        |text| style::type_token_ratio(&style::lexical_tokens(text)),
    );
    for case in &vectors().mtld {
        let difference = (style::type_token_ratio(&case.tokens) - case.type_token_ratio).abs();
        assert!(
            difference <= TOLERANCE,
            "ttr of {:?}: off by {difference}",
            case.tokens
        );
    }
}

#[test]
fn mtld_matches_lexical_diversity() {
    check_float(
        "mtld",
        |c| c.mtld,
        |text| style::mtld(&style::lexical_tokens(text)),
    );
    let mut largest: f64 = 0.0;
    for case in &vectors().mtld {
        let difference = (style::mtld(&case.tokens) - case.mtld).abs();
        assert!(
            difference <= TOLERANCE,
            "mtld of {:?}: off by {difference}",
            case.tokens
        );
        largest = largest.max(difference);
    }
    eprintln!(
        "mtld of token lists: largest difference {largest:e} over {}",
        vectors().mtld.len()
    );
}

#[test]
fn style_stats_matches_textstat_and_lexical_diversity() {
    for case in &vectors().texts {
        let stats = style::style_stats(&case.text);
        let context = format!("style_stats of {:?}", case.text);
        assert_eq!(stats.words, case.lexicon_count, "{context}");
        assert_eq!(stats.sentences, case.sentence_count, "{context}");
        assert_eq!(stats.syllables, case.syllable_count, "{context}");
        assert_eq!(stats.characters, case.char_count, "{context}");
        assert_eq!(stats.letters, case.letter_count, "{context}");
        for (actual, expected) in [
            (stats.avg_sentence_length, case.avg_sentence_length),
            (stats.avg_syllables_per_word, case.avg_syllables_per_word),
            (stats.flesch_reading_ease, case.flesch_reading_ease),
            (stats.flesch_kincaid_grade, case.flesch_kincaid_grade),
            (stats.type_token_ratio, case.type_token_ratio),
            (stats.mtld, case.mtld),
        ] {
            assert!(
                (actual - expected).abs() <= TOLERANCE,
                "{context}: {actual} != {expected}"
            );
        }
    }
}

#[test]
fn word_syllables_match_textstat() {
    let words = &vectors().syllables;
    assert!(words.len() >= 2000, "only {} words", words.len());
    for case in words {
        assert_eq!(
            style::syllable_count(&case.word),
            case.syllables,
            "syllables of {:?}",
            case.word
        );
        // A word that is its own single token is counted by `word_syllables` alike.
        if let [token] = style::lexical_tokens(&case.word).as_slice() {
            let from_word = style::word_syllables(token);
            assert_eq!(
                from_word, case.syllables,
                "word_syllables of {token:?} ({})",
                case.source
            );
        }
    }
    let sources = |name: &str| words.iter().filter(|case| case.source == name).count();
    eprintln!(
        "{} words: {} from CMUdict, {} from hyphenation ({})",
        words.len(),
        sources("cmudict"),
        sources("hyphenation"),
        vectors().packages
    );
}

#[test]
fn whitespace_is_pythons() {
    let python: Vec<u32> = vectors().python_whitespace.clone();
    for code in 0..=0x10FFFF_u32 {
        let Some(c) = char::from_u32(code) else {
            continue;
        };
        // char_count skips exactly the characters Python calls whitespace.
        let is_space = style::char_count(c.encode_utf8(&mut [0; 4])) == 0;
        assert_eq!(
            is_space,
            python.binary_search(&code).is_ok(),
            "U+{code:04X}"
        );
    }
}
