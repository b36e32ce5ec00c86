//! BLEU exactly as `sacrebleu` 2.x computes it with its defaults: the `13a` tokenizer, n-grams
//! up to 4, `exp` smoothing, case kept, the closest reference length for the brevity penalty,
//! and effective order for sentence BLEU (`sentence_bleu`) but not for corpus BLEU
//! (`corpus_bleu`). Scores are on sacrebleu's 0–100 scale.

use std::collections::HashMap;
use std::sync::LazyLock;

use regex::Regex;
use serde::{Deserialize, Serialize};

/// The highest n-gram order BLEU counts (sacrebleu's `MAX_NGRAM_ORDER`).
pub const MAX_NGRAM_ORDER: usize = 4;

/// A BLEU score and the statistics behind it, as sacrebleu's `BLEUScore` reports them.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct Bleu {
    /// BLEU on the 0–100 scale.
    pub score: f64,
    /// Matched (clipped) n-grams for n = 1..=4.
    pub counts: [u64; MAX_NGRAM_ORDER],
    /// Hypothesis n-grams for n = 1..=4.
    pub totals: [u64; MAX_NGRAM_ORDER],
    /// Smoothed n-gram precisions on the 0–100 scale (all 0 when nothing matched).
    pub precisions: [f64; MAX_NGRAM_ORDER],
    /// Brevity penalty.
    pub bp: f64,
    /// Hypothesis length in tokens.
    pub sys_len: u64,
    /// Reference length in tokens (the closest reference of each segment, summed).
    pub ref_len: u64,
}

/// BLEU's sufficient statistics, summed over segments (sacrebleu's stats list).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct BleuStatistics {
    pub sys_len: u64,
    pub ref_len: u64,
    pub counts: [u64; MAX_NGRAM_ORDER],
    pub totals: [u64; MAX_NGRAM_ORDER],
}

impl BleuStatistics {
    /// The statistics of one hypothesis segment against its references, tokenized with 13a.
    /// With no references the segment counts nothing (sacrebleu refuses that input).
    pub fn of_segment(hypothesis: &str, references: &[&str]) -> Self {
        if references.is_empty() {
            return Self::default();
        }
        let hypothesis = preprocess(hypothesis);
        let hypothesis_tokens = python_split(&hypothesis);
        let references: Vec<String> = references.iter().map(|r| preprocess(r)).collect();
        let reference_tokens: Vec<Vec<&str>> = references.iter().map(|r| python_split(r)).collect();

        // Each n-gram may match as often as it occurs in the reference that has it most.
        let mut reference_ngrams: HashMap<&[&str], u64> = HashMap::new();
        for tokens in &reference_tokens {
            for (ngram, count) in ngram_counts(tokens) {
                let best = reference_ngrams.entry(ngram).or_insert(0);
                *best = (*best).max(count);
            }
        }

        let mut statistics = Self {
            sys_len: hypothesis_tokens.len() as u64,
            ref_len: closest_reference_length(
                hypothesis_tokens.len(),
                reference_tokens.iter().map(Vec::len),
            ) as u64,
            ..Self::default()
        };
        for (ngram, count) in ngram_counts(&hypothesis_tokens) {
            let order = ngram.len() - 1;
            statistics.totals[order] += count;
            if let Some(&in_reference) = reference_ngrams.get(ngram) {
                statistics.counts[order] += count.min(in_reference);
            }
        }
        statistics
    }

    /// Adds another segment's statistics (a corpus sums its segments').
    pub fn add(&mut self, other: &Self) {
        self.sys_len += other.sys_len;
        self.ref_len += other.ref_len;
        for order in 0..MAX_NGRAM_ORDER {
            self.counts[order] += other.counts[order];
            self.totals[order] += other.totals[order];
        }
    }

    /// BLEU from these statistics with `exp` smoothing, as sacrebleu's `compute_bleu`.
    ///
    /// With `effective_order` the geometric mean runs over the orders that have any
    /// hypothesis n-grams; without it over all four, so a missing order scores 0.
    pub fn score(&self, effective_order: bool) -> Bleu {
        let bp = if self.sys_len < self.ref_len {
            if self.sys_len > 0 {
                (1.0 - self.ref_len as f64 / self.sys_len as f64).exp()
            } else {
                0.0
            }
        } else {
            1.0
        };
        let mut bleu = Bleu {
            score: 0.0,
            counts: self.counts,
            totals: self.totals,
            precisions: [0.0; MAX_NGRAM_ORDER],
            bp,
            sys_len: self.sys_len,
            ref_len: self.ref_len,
        };
        // sacrebleu returns before computing precisions when nothing matched at all.
        if self.counts.iter().all(|&count| count == 0) {
            return bleu;
        }

        // mteval-v13a's smoothing: the k-th order without matches gets precision 1 / (2^k total).
        let mut smoothing = 1.0;
        let mut mean_order = MAX_NGRAM_ORDER;
        for order in 0..MAX_NGRAM_ORDER {
            let total = self.totals[order];
            if total == 0 {
                break;
            }
            if effective_order {
                mean_order = order + 1;
            }
            bleu.precisions[order] = if self.counts[order] == 0 {
                smoothing *= 2.0;
                100.0 / (smoothing * total as f64)
            } else {
                100.0 * self.counts[order] as f64 / total as f64
            };
        }

        let log_sum = bleu.precisions[..mean_order]
            .iter()
            .fold(0.0, |sum, &precision| sum + floored_log(precision));
        bleu.score = bp * (log_sum / mean_order as f64).exp();
        bleu
    }
}

/// sacrebleu's `my_log`: the logarithm, with log(0) floored to -9999999999.
fn floored_log(value: f64) -> f64 {
    if value == 0.0 {
        -9_999_999_999.0
    } else {
        value.ln()
    }
}

/// Sentence BLEU of `hypothesis` against one or more references, as
/// `sacrebleu.sentence_bleu(hypothesis, references)` (effective order on).
/// No references scores 0 (sacrebleu raises).
pub fn sentence_bleu(hypothesis: &str, references: &[&str]) -> Bleu {
    BleuStatistics::of_segment(hypothesis, references).score(true)
}

/// Corpus BLEU, as `sacrebleu.corpus_bleu(hypotheses, references)`: `references` holds
/// reference *streams*, each with one reference per hypothesis, exactly as sacrebleu takes
/// them. Like sacrebleu (Python's `zip`), extra hypotheses or references beyond the shortest
/// list are ignored. Effective order is off. No segments score 0 (sacrebleu raises).
pub fn corpus_bleu(hypotheses: &[&str], references: &[Vec<&str>]) -> Bleu {
    let segment_count = references
        .iter()
        .map(Vec::len)
        .min()
        .map_or(0, |shortest| shortest.min(hypotheses.len()));
    let mut statistics = BleuStatistics::default();
    for (index, hypothesis) in hypotheses.iter().take(segment_count).enumerate() {
        let segment_references: Vec<&str> = references.iter().map(|stream| stream[index]).collect();
        statistics.add(&BleuStatistics::of_segment(hypothesis, &segment_references));
    }
    statistics.score(false)
}

/// What sacrebleu does to a segment before counting: strip trailing whitespace, then 13a.
fn preprocess(segment: &str) -> String {
    tokenize_13a(segment.trim_end_matches(is_python_whitespace))
}

/// sacrebleu's `13a` tokenizer (mteval-v13a's, used by WMT): drops `<skipped>` and `-\n`,
/// turns other newlines into spaces, unescapes four HTML entities, splits off punctuation
/// (periods and commas only when not between digits, dashes only after a digit) and joins the
/// tokens with single spaces.
pub fn tokenize_13a(line: &str) -> String {
    // Sequential replaces, as in sacrebleu: "&amp;lt;" becomes "&lt;" and then "<".
    let mut line = line
        .replace("<skipped>", "")
        .replace("-\n", "")
        .replace('\n', " ");
    if line.contains('&') {
        line = line
            .replace("&quot;", "\"")
            .replace("&amp;", "&")
            .replace("&lt;", "<")
            .replace("&gt;", ">");
    }
    let mut line = format!(" {line} ");
    for (pattern, replacement) in TOKENIZER_13A_RULES.iter() {
        line = pattern.replace_all(&line, *replacement).into_owned();
    }
    python_split(&line).join(" ")
}

/// The four substitutions of sacrebleu's `TokenizerRegexp`, with its patterns verbatim.
static TOKENIZER_13A_RULES: LazyLock<Vec<(Regex, &'static str)>> = LazyLock::new(|| {
    [
        // Every ASCII punctuation character except ' , - . stands alone.
        (r"([\{-\~\[-\` -\&\(-\+\:-\@\/])", " ${1} "),
        // Periods and commas are split off unless preceded...
        (r"([^0-9])([\.,])", "${1} ${2} "),
        // ...or followed by a digit.
        (r"([\.,])([^0-9])", " ${1} ${2}"),
        // A dash after a digit is split off.
        (r"([0-9])(-)", "${1} ${2} "),
    ]
    .into_iter()
    .map(|(pattern, replacement)| {
        (
            Regex::new(pattern).expect("the 13a patterns are valid"),
            replacement,
        )
    })
    .collect()
});

/// Python's `str.isspace`: Unicode White_Space plus the separators U+001C..U+001F.
fn is_python_whitespace(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

/// Python's `str.split()` with no argument.
fn python_split(text: &str) -> Vec<&str> {
    text.split(is_python_whitespace)
        .filter(|token| !token.is_empty())
        .collect()
}

/// Counts of every n-gram of order 1..=4.
fn ngram_counts<'a>(tokens: &'a [&'a str]) -> HashMap<&'a [&'a str], u64> {
    let mut counts: HashMap<&[&str], u64> = HashMap::new();
    for order in 1..=MAX_NGRAM_ORDER {
        for ngram in tokens.windows(order) {
            *counts.entry(ngram).or_insert(0) += 1;
        }
    }
    counts
}

/// sacrebleu's closest reference length: the reference length nearest the hypothesis length,
/// the shorter one on a tie.
fn closest_reference_length(
    hypothesis_length: usize,
    reference_lengths: impl Iterator<Item = usize>,
) -> usize {
    reference_lengths
        .min_by_key(|&length| (hypothesis_length.abs_diff(length), length))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokenizer_13a_splits_punctuation_but_not_numbers() {
        assert_eq!(
            tokenize_13a("Hello, world! It costs $1,000.50 (approx.)"),
            "Hello , world ! It costs $ 1,000.50 ( approx . )"
        );
        assert_eq!(
            tokenize_13a("state-of-the-art 1990-2000"),
            "state-of-the-art 1990 - 2000"
        );
        assert_eq!(tokenize_13a("AT&amp;T &amp;lt;"), "AT & T <");
        assert_eq!(
            tokenize_13a("hyphen-\nated <skipped>word"),
            "hyphenated word"
        );
    }

    #[test]
    fn identical_sentence_scores_100() {
        let bleu = sentence_bleu("The cat sat on the mat.", &["The cat sat on the mat."]);
        assert!((bleu.score - 100.0).abs() < 1e-9);
        assert_eq!(bleu.counts, [7, 6, 5, 4]);
        assert_eq!(bleu.bp, 1.0);
    }

    #[test]
    fn effective_order_and_exp_smoothing_on_a_two_word_sentence() {
        // Unigrams 2/2 = 100, bigrams 0/1 smoothed to 100 / (2 * 1) = 50: sqrt(100 * 50).
        let bleu = sentence_bleu("cat the", &["the cat"]);
        assert!((bleu.score - 5000f64.sqrt()).abs() < 1e-9);
        assert_eq!(bleu.precisions, [100.0, 50.0, 0.0, 0.0]);
    }

    #[test]
    fn closest_reference_length_prefers_the_shorter_on_ties() {
        assert_eq!(closest_reference_length(5, [6, 4].into_iter()), 4);
        assert_eq!(closest_reference_length(5, [7, 2].into_iter()), 7);
    }

    #[test]
    fn corpus_without_effective_order_scores_zero_when_an_order_is_missing() {
        let bleu = corpus_bleu(&["the cat"], &[vec!["the cat"]]);
        assert_eq!(bleu.score, 0.0);
        assert_eq!(bleu.counts, [2, 1, 0, 0]);
    }
}
