//! ROUGE-1, ROUGE-2, ROUGE-L and ROUGE-Lsum exactly as Google's `rouge-score` package computes
//! them (`RougeScorer(["rouge1", "rouge2", "rougeL", "rougeLsum"], use_stemmer=...)`), with its
//! default tokenizer and, optionally, its Porter stemmer (NLTK's, see `porter.rs`).
//!
//! rouge-score's `score(target, prediction)` is `rouge(reference, candidate, ...)` here:
//! precision is measured against the candidate, recall against the reference.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

pub use super::porter::stem as porter_stem;

/// Precision, recall and F1 of one ROUGE variant, each in `0.0..=1.0`.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct RougeScore {
    pub precision: f64,
    pub recall: f64,
    pub fmeasure: f64,
}

impl RougeScore {
    /// The score from its two ratios, with F1 computed as rouge-score's `scoring.fmeasure`
    /// (same operation order, and `0.0` when both are zero).
    pub fn from_precision_recall(precision: f64, recall: f64) -> Self {
        let fmeasure = if precision + recall > 0.0 {
            2.0 * precision * recall / (precision + recall)
        } else {
            0.0
        };
        Self {
            precision,
            recall,
            fmeasure,
        }
    }

    fn from_counts(hits: usize, candidate_count: usize, reference_count: usize) -> Self {
        Self::from_precision_recall(
            hits as f64 / candidate_count as f64,
            hits as f64 / reference_count as f64,
        )
    }
}

/// The four ROUGE variants rouge-score is usually asked for.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct RougeScores {
    pub rouge1: RougeScore,
    pub rouge2: RougeScore,
    pub rouge_l: RougeScore,
    pub rouge_lsum: RougeScore,
}

/// ROUGE-1, ROUGE-2, ROUGE-L and ROUGE-Lsum of `candidate` against `reference`.
pub fn rouge(reference: &str, candidate: &str, use_stemmer: bool) -> RougeScores {
    let reference_tokens = tokenize(reference, use_stemmer);
    let candidate_tokens = tokenize(candidate, use_stemmer);
    RougeScores {
        rouge1: rouge_n(&reference_tokens, &candidate_tokens, 1),
        rouge2: rouge_n(&reference_tokens, &candidate_tokens, 2),
        rouge_l: rouge_l(&reference_tokens, &candidate_tokens),
        rouge_lsum: rouge_lsum(reference, candidate, use_stemmer),
    }
}

/// rouge-score's default tokenizer: lowercase (Python's full Unicode lowercasing), every run of
/// characters other than `[a-z0-9]` is a separator, and with `use_stemmer` each token longer
/// than three characters is Porter-stemmed. Accented and non-Latin letters are separators, so
/// "café" gives "caf"; only two non-ASCII code points survive, because they lowercase into
/// ASCII: the Kelvin sign (`K` -> `k`) and `İ` (-> `i` plus a combining dot, a separator).
pub fn tokenize(text: &str, use_stemmer: bool) -> Vec<String> {
    text.to_lowercase()
        .split(|c: char| !is_token_char(c))
        .filter(|token| !token.is_empty())
        .map(|token| {
            // rouge-score stems only tokens of more than 3 characters (all ASCII by now).
            if use_stemmer && token.len() > 3 {
                porter_stem(token)
            } else {
                token.to_string()
            }
        })
        // rouge-score's final check drops any token that is not `^[a-z0-9]+$`.
        .filter(|token| !token.is_empty() && token.chars().all(is_token_char))
        .collect()
}

fn is_token_char(c: char) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit()
}

/// ROUGE-N on token lists: clipped n-gram overlap over the candidate's n-grams (precision) and
/// the reference's (recall). `n` must be at least 1 (rouge-score rejects 0); `n = 0` scores 0.
pub fn rouge_n<S: AsRef<str>>(
    reference_tokens: &[S],
    candidate_tokens: &[S],
    n: usize,
) -> RougeScore {
    if n == 0 {
        return RougeScore::default();
    }
    let reference_ngrams = ngram_counts(reference_tokens, n);
    let candidate_ngrams = ngram_counts(candidate_tokens, n);
    let overlap: usize = reference_ngrams
        .iter()
        .map(|(ngram, &count)| count.min(candidate_ngrams.get(ngram).copied().unwrap_or(0)))
        .sum();
    let reference_count: usize = reference_ngrams.values().sum();
    let candidate_count: usize = candidate_ngrams.values().sum();
    // rouge-score divides by max(count, 1), so an empty side scores 0 rather than NaN.
    RougeScore::from_counts(overlap, candidate_count.max(1), reference_count.max(1))
}

fn ngram_counts<S: AsRef<str>>(tokens: &[S], n: usize) -> HashMap<Vec<&str>, usize> {
    let mut counts: HashMap<Vec<&str>, usize> = HashMap::new();
    for window in tokens.windows(n) {
        let ngram: Vec<&str> = window.iter().map(AsRef::as_ref).collect();
        *counts.entry(ngram).or_insert(0) += 1;
    }
    counts
}

/// ROUGE-L on token lists: longest common subsequence over the candidate's length (precision)
/// and the reference's (recall); 0 when either is empty.
pub fn rouge_l<S: AsRef<str>>(reference_tokens: &[S], candidate_tokens: &[S]) -> RougeScore {
    if reference_tokens.is_empty() || candidate_tokens.is_empty() {
        return RougeScore::default();
    }
    let lcs = lcs_length(reference_tokens, candidate_tokens);
    RougeScore::from_counts(lcs, candidate_tokens.len(), reference_tokens.len())
}

/// Length of the longest common subsequence, in O(n·m) time and O(m) memory.
pub fn lcs_length<S: AsRef<str>>(a: &[S], b: &[S]) -> usize {
    let mut previous = vec![0usize; b.len() + 1];
    let mut current = vec![0usize; b.len() + 1];
    for a_token in a {
        for (j, b_token) in b.iter().enumerate() {
            current[j + 1] = if a_token.as_ref() == b_token.as_ref() {
                previous[j] + 1
            } else {
                previous[j + 1].max(current[j])
            };
        }
        std::mem::swap(&mut previous, &mut current);
    }
    previous[b.len()]
}

/// ROUGE-Lsum: summary-level LCS (section 3.2 of the ROUGE paper) with sentences split on
/// `\n`, as rouge-score does without `split_summaries`. For each reference sentence the union
/// of its LCS with every candidate sentence counts as hits, each token at most as many times
/// as it occurs in both summaries (ROUGE-1.5.5's guard against double counting, which
/// rouge-score follows).
pub fn rouge_lsum(reference: &str, candidate: &str, use_stemmer: bool) -> RougeScore {
    let reference_sentences = summary_sentences(reference, use_stemmer);
    let candidate_sentences = summary_sentences(candidate, use_stemmer);
    summary_level_lcs(&reference_sentences, &candidate_sentences)
}

/// The tokens of each non-empty line. A line of spaces or punctuation is kept as an empty
/// sentence, as rouge-score keeps it (it filters lines, not token lists).
fn summary_sentences(text: &str, use_stemmer: bool) -> Vec<Vec<String>> {
    text.split('\n')
        .filter(|line| !line.is_empty())
        .map(|line| tokenize(line, use_stemmer))
        .collect()
}

fn summary_level_lcs(reference: &[Vec<String>], candidate: &[Vec<String>]) -> RougeScore {
    let reference_length: usize = reference.iter().map(Vec::len).sum();
    let candidate_length: usize = candidate.iter().map(Vec::len).sum();
    if reference_length == 0 || candidate_length == 0 {
        return RougeScore::default();
    }

    let mut reference_left = token_counts(reference);
    let mut candidate_left = token_counts(candidate);
    let mut hits = 0usize;
    for reference_sentence in reference {
        for token in union_lcs(reference_sentence, candidate) {
            let (Some(in_reference), Some(in_candidate)) =
                (reference_left.get_mut(token), candidate_left.get_mut(token))
            else {
                continue;
            };
            if *in_reference > 0 && *in_candidate > 0 {
                hits += 1;
                *in_reference -= 1;
                *in_candidate -= 1;
            }
        }
    }
    RougeScore::from_counts(hits, candidate_length, reference_length)
}

fn token_counts(sentences: &[Vec<String>]) -> HashMap<&str, usize> {
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for token in sentences.iter().flatten() {
        *counts.entry(token.as_str()).or_insert(0) += 1;
    }
    counts
}

/// The tokens of `reference_sentence`, in order, that are in the LCS with at least one
/// candidate sentence.
fn union_lcs<'a>(reference_sentence: &'a [String], candidate: &[Vec<String>]) -> Vec<&'a str> {
    let mut in_union = vec![false; reference_sentence.len()];
    for candidate_sentence in candidate {
        for index in lcs_indices(reference_sentence, candidate_sentence) {
            in_union[index] = true;
        }
    }
    reference_sentence
        .iter()
        .zip(in_union)
        .filter(|(_, in_union)| *in_union)
        .map(|(token, _)| token.as_str())
        .collect()
}

/// The indices into `reference` of one LCS with `candidate`: which one matters for the union,
/// so this reads it out of the full table exactly as rouge-score's `_backtrack_norec` does
/// (take a match, else step left only when that is strictly longer, else step up).
fn lcs_indices(reference: &[String], candidate: &[String]) -> Vec<usize> {
    let columns = candidate.len() + 1;
    let mut table = vec![0u32; (reference.len() + 1) * columns];
    for i in 1..=reference.len() {
        for j in 1..=candidate.len() {
            table[i * columns + j] = if reference[i - 1] == candidate[j - 1] {
                table[(i - 1) * columns + j - 1] + 1
            } else {
                table[(i - 1) * columns + j].max(table[i * columns + j - 1])
            };
        }
    }

    let mut indices = Vec::new();
    let (mut i, mut j) = (reference.len(), candidate.len());
    while i > 0 && j > 0 {
        if reference[i - 1] == candidate[j - 1] {
            indices.push(i - 1);
            i -= 1;
            j -= 1;
        } else if table[i * columns + j - 1] > table[(i - 1) * columns + j] {
            j -= 1;
        } else {
            i -= 1;
        }
    }
    indices.reverse();
    indices
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokenizer_lowercases_splits_on_non_alphanumerics_and_stems_long_tokens() {
        assert_eq!(
            tokenize("The Cats' 3.5% naïve-running!", false),
            ["the", "cats", "3", "5", "na", "ve", "running"]
        );
        assert_eq!(
            tokenize("The Cats' 3.5% naïve-running!", true),
            ["the", "cat", "3", "5", "na", "ve", "run"]
        );
        // "was" has three characters, so rouge-score leaves it alone.
        assert_eq!(tokenize("was", true), ["was"]);
        assert!(tokenize("", true).is_empty());
    }

    #[test]
    fn rouge_score_readme_example() {
        let scores = rouge(
            "The quick brown fox jumps over the lazy dog",
            "The quick brown dog jumps on the log.",
            true,
        );
        assert!((scores.rouge1.precision - 0.75).abs() < 1e-12);
        assert!((scores.rouge1.recall - 6.0 / 9.0).abs() < 1e-12);
        assert!((scores.rouge_l.fmeasure - 0.5882352941176471).abs() < 1e-12);
    }

    #[test]
    fn rouge_lsum_unions_lcs_across_candidate_sentences() {
        // The example of section 3.2 of the ROUGE paper: union LCS of r with c1 and c2 is
        // w1 w2 w3 w5, so 4 hits over 5 reference and 10 candidate tokens.
        let score = rouge_lsum("w1 w2 w3 w4 w5", "w1 w2 w6 w7 w8\nw1 w3 w8 w9 w5", false);
        assert_eq!(score.recall, 0.8);
        assert_eq!(score.precision, 0.4);
    }

    #[test]
    fn empty_sides_score_zero() {
        assert_eq!(rouge("", "text", true), RougeScores::default());
        assert_eq!(rouge("text", "", false), RougeScores::default());
    }
}
