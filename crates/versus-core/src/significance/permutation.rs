//! The sign-flip permutation test of a mean paired difference: under the null hypothesis each
//! task's difference is as likely to have had the other sign, so the observed mean is compared
//! with the means of the differences with their signs flipped.
//!
//! This is `scipy.stats.permutation_test((d,), statistic=mean, permutation_type='samples',
//! alternative='two-sided')`: for one sample, "samples" permutations flip signs, and the
//! two-sided p-value is twice the smaller of the two one-sided proportions
//! (`null ≤ observed`, `null ≥ observed`), capped at 1.
//!
//! - **Exact** when at most [`EXACT_SIGN_FLIP_LIMIT`] differences are non-zero: every one of the
//!   2^m sign patterns of the m non-zero differences is enumerated once (scipy's
//!   `n_resamples=np.inf`). Zero differences are part of the data and of the mean, as in scipy,
//!   but flipping a zero changes nothing, so scipy's 2^n patterns are the 2^m patterns each
//!   repeated 2^(n−m) times: the proportions, and so the p-value, are identical.
//! - **Monte Carlo** beyond: `draws` random sign patterns from the seeded generator, with
//!   scipy's estimator for randomized tests, `(count + 1) / (draws + 1)` for each one-sided
//!   proportion (the observed statistic counted as one of the null draws; Phipson and Smyth
//!   2010), so a p-value is never 0. The default is [`DEFAULT_SIGN_FLIP_DRAWS`] draws, whose
//!   binomial standard error at p = 0.05 is about 0.002.
//!
//! Ties: scipy counts a null statistic as equal to the observed one within a relative
//! `100·ε·|observed|`. We use `100·ε·Σ|dᵢ|` on the sums instead, which is never smaller and
//! exceeds the rounding error of any sum in the exact branch (at most about n·ε·Σ|dᵢ| for
//! n ≤ 20 values; typically √n·ε·Σ|dᵢ| for the Monte Carlo sums). It treats as ties the sums that are equal on paper but not in floating point
//! (0.1 + 0.2 against 0.3), including an observed mean that is zero on paper, where scipy's
//! tolerance vanishes. The two rules differ only for null sums within rounding noise of the
//! observed one; `tests/stats_vectors.rs` checks decimal data against exact rational
//! enumeration as well as against scipy.

use crate::random::Xoshiro256StarStar;

/// Up to this many non-zero differences the test enumerates every sign pattern (2^20 ≈ 1e6).
pub const EXACT_SIGN_FLIP_LIMIT: usize = 20;

/// Monte Carlo draws beyond [`EXACT_SIGN_FLIP_LIMIT`] unless the caller chooses another number.
pub const DEFAULT_SIGN_FLIP_DRAWS: usize = 10_000;

/// How a sign-flip p-value was computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SignFlipMethod {
    /// Every sign pattern of the non-zero differences, `patterns = 2^m`.
    Exact { patterns: u64 },
    /// Random sign patterns, `(count + 1) / (draws + 1)` per tail.
    MonteCarlo { draws: usize },
}

/// The result of a sign-flip permutation test.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SignFlipTest {
    /// The mean of all differences, zeros included.
    pub mean_difference: f64,
    /// Two-sided p-value.
    pub p_value: f64,
    pub method: SignFlipMethod,
}

/// The sign-flip test with [`DEFAULT_SIGN_FLIP_DRAWS`] Monte Carlo draws where it is not exact.
/// `None` for no differences or any difference that is not finite. One difference gives
/// p = 1 (scipy refuses fewer than two); all-zero differences give p = 1.
pub fn sign_flip_test(differences: &[f64], seed: u64) -> Option<SignFlipTest> {
    sign_flip_test_with_draws(differences, DEFAULT_SIGN_FLIP_DRAWS, seed)
}

/// [`sign_flip_test`] with `draws` Monte Carlo sign patterns (used only beyond
/// [`EXACT_SIGN_FLIP_LIMIT`] non-zero differences). `None` also for `draws == 0`.
pub fn sign_flip_test_with_draws(
    differences: &[f64],
    draws: usize,
    seed: u64,
) -> Option<SignFlipTest> {
    let mean_difference = super::mean(differences)?;
    if draws == 0 {
        return None;
    }
    let nonzero: Vec<f64> = differences.iter().copied().filter(|&d| d != 0.0).collect();
    let observed: f64 = nonzero.iter().sum();
    let tolerance = 100.0 * f64::EPSILON * nonzero.iter().map(|d| d.abs()).sum::<f64>();
    let (at_most, at_least, total, method) = if nonzero.len() <= EXACT_SIGN_FLIP_LIMIT {
        let (at_most, at_least) = exact_counts(&nonzero, observed, tolerance);
        let patterns = 1u64 << nonzero.len();
        (
            at_most as f64,
            at_least as f64,
            patterns as f64,
            SignFlipMethod::Exact { patterns },
        )
    } else {
        let (at_most, at_least) = monte_carlo_counts(&nonzero, observed, tolerance, draws, seed);
        (
            (at_most + 1) as f64,
            (at_least + 1) as f64,
            (draws + 1) as f64,
            SignFlipMethod::MonteCarlo { draws },
        )
    };
    let p_value = (2.0 * at_most.min(at_least) / total).min(1.0);
    Some(SignFlipTest {
        mean_difference,
        p_value,
        method,
    })
}

/// The signed sums of `values` for every sign pattern (bit i set: value i negated).
fn all_signed_sums(values: &[f64]) -> Vec<f64> {
    (0u32..1 << values.len())
        .map(|pattern| {
            values
                .iter()
                .enumerate()
                .map(|(i, &v)| if pattern >> i & 1 == 1 { -v } else { v })
                .sum()
        })
        .collect()
}

/// How many of the 2^m sign patterns give a sum at most / at least the observed one (within
/// `tolerance`). The sums of the two halves are tabulated and combined pairwise.
fn exact_counts(nonzero: &[f64], observed: f64, tolerance: f64) -> (u64, u64) {
    let (first, second) = nonzero.split_at(nonzero.len() / 2);
    let first = all_signed_sums(first);
    let second = all_signed_sums(second);
    let (mut at_most, mut at_least) = (0u64, 0u64);
    for &a in &first {
        for &b in &second {
            let sum = a + b;
            if sum <= observed + tolerance {
                at_most += 1;
            }
            if sum >= observed - tolerance {
                at_least += 1;
            }
        }
    }
    (at_most, at_least)
}

/// How many of `draws` random sign patterns give a sum at most / at least the observed one.
fn monte_carlo_counts(
    nonzero: &[f64],
    observed: f64,
    tolerance: f64,
    draws: usize,
    seed: u64,
) -> (usize, usize) {
    let mut random = Xoshiro256StarStar::seeded(seed);
    let (mut at_most, mut at_least) = (0usize, 0usize);
    for _ in 0..draws {
        let mut sum = 0.0;
        for chunk in nonzero.chunks(64) {
            let bits = random.next_u64();
            for (i, &v) in chunk.iter().enumerate() {
                sum += if bits >> i & 1 == 1 { -v } else { v };
            }
        }
        if sum <= observed + tolerance {
            at_most += 1;
        }
        if sum >= observed - tolerance {
            at_least += 1;
        }
    }
    (at_most, at_least)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_and_non_finite_inputs_have_no_test() {
        assert_eq!(sign_flip_test(&[], 1), None);
        assert_eq!(sign_flip_test(&[1.0, f64::NAN], 1), None);
        assert_eq!(sign_flip_test(&[f64::NEG_INFINITY, 1.0], 1), None);
        assert_eq!(sign_flip_test_with_draws(&[1.0], 0, 1), None);
    }

    #[test]
    fn degenerate_inputs_give_one() {
        let single = sign_flip_test(&[0.7], 1).unwrap();
        assert_eq!(single.p_value, 1.0);
        assert_eq!(single.method, SignFlipMethod::Exact { patterns: 2 });
        let zeros = sign_flip_test(&[0.0; 30], 1).unwrap();
        assert_eq!(zeros.p_value, 1.0);
        assert_eq!(zeros.mean_difference, 0.0);
        assert_eq!(zeros.method, SignFlipMethod::Exact { patterns: 1 });
    }

    #[test]
    fn exact_p_counts_patterns() {
        // Five positive differences: only the identity pattern reaches the observed sum, so
        // each tail is 1/32 and p = 2/32.
        let test = sign_flip_test(&[1.0, 2.0, 3.0, 4.0, 5.0], 1).unwrap();
        assert_eq!(test.p_value, 2.0 / 32.0);
        assert_eq!(test.mean_difference, 3.0);
        // Equal magnitudes: the sum is 4 − 2·(negated count); P(sum ≥ 2) = 5/16 → p = 10/16.
        let test = sign_flip_test(&[1.0, 1.0, 1.0, -1.0, 0.0], 1).unwrap();
        assert_eq!(test.p_value, 10.0 / 16.0);
        // A mean that is zero in exact arithmetic but not in floating point still gives 1.
        let test = sign_flip_test(&[0.1, 0.2, -0.3], 1).unwrap();
        assert_eq!(test.p_value, 1.0);
    }

    #[test]
    fn monte_carlo_is_seeded_and_never_zero() {
        let differences = vec![1.0; 40];
        let test = sign_flip_test(&differences, 3).unwrap();
        assert_eq!(test.method, SignFlipMethod::MonteCarlo { draws: 10_000 });
        assert_eq!(test.p_value, 2.0 / 10_001.0);
        let mixed: Vec<f64> = (0..40).map(|i| f64::from(i % 7) - 2.5).collect();
        assert_eq!(sign_flip_test(&mixed, 9), sign_flip_test(&mixed, 9));
    }
}
