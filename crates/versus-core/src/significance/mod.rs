//! Significance of paired comparisons: two models answered the same tasks, and each task gives
//! a difference (first minus second: 1/0/−1 for pass/fail outcomes, or a difference of scores).
//! Pure functions, each matching a reference package, with the reference named on the function:
//!
//! - counts: McNemar's exact test ([`mcnemar_exact`]) and the sign test ([`sign_test`],
//!   [`sign_counts`]), the same two-sided binomial test (`binomial.rs`);
//! - differences: their mean ([`mean_difference`]), the sign-flip permutation test
//!   ([`sign_flip_test`], exact up to 20 non-zero differences, seeded Monte Carlo beyond;
//!   `permutation.rs`) and the Wilcoxon signed-rank test ([`wilcoxon`], `wilcoxon.rs`);
//! - uncertainty: the paired bootstrap percentile interval of the mean difference
//!   ([`bootstrap_mean_interval`]) and the clustered standard error of a mean
//!   ([`clustered_standard_error`]) (`intervals.rs`);
//! - many comparisons: Holm-Bonferroni adjusted p-values ([`holm_adjust`], `multiple.rs`);
//! - sampling several answers per task: pass@k ([`pass_at_k`], `pass_at_k.rs`);
//! - planning: the minimum detectable difference and the tasks needed to detect one
//!   ([`minimum_detectable_difference`], [`tasks_needed`], `power.rs`), on the normal
//!   distribution of `normal.rs` ([`normal_cdf`], [`normal_quantile`]).
//!
//! [`compare_paired`] puts one comparison together as a [`PairedComparison`] for reports.
//!
//! Nothing here panics on its input: an empty slice, a NaN or an infinity gives `None` (each
//! function says which results it has for degenerate but valid input, such as no discordant
//! pairs). Randomness comes only from the seed a caller passes, through xoshiro256**
//! (`crate::random`), so every result is reproducible. `tools/vectors/stats_vectors.py` computes the
//! references with scipy, statsmodels and numpy, and `tests/stats_vectors.rs` holds us to them.

mod binomial;
mod intervals;
mod multiple;
mod normal;
mod pass_at_k;
mod permutation;
mod power;
mod wilcoxon;

pub use binomial::{mcnemar_exact, sign_counts, sign_test, SignCounts};
pub use intervals::{
    bootstrap_mean_interval, clustered_standard_error, DEFAULT_BOOTSTRAP_RESAMPLES,
};
pub use multiple::holm_adjust;
pub use normal::{normal_cdf, normal_density, normal_quantile};
pub use pass_at_k::pass_at_k;
pub use permutation::{
    sign_flip_test, sign_flip_test_with_draws, SignFlipMethod, SignFlipTest,
    DEFAULT_SIGN_FLIP_DRAWS, EXACT_SIGN_FLIP_LIMIT,
};
pub use power::{
    minimum_detectable_difference, sample_standard_deviation, tasks_needed, DEFAULT_POWER,
};
pub use wilcoxon::{wilcoxon, wilcoxon_with, Wilcoxon, WilcoxonMethod, WILCOXON_EXACT_LIMIT};

/// Whether every value is finite (true for none).
fn all_finite(values: &[f64]) -> bool {
    values.iter().all(|v| v.is_finite())
}

/// The mean, as `v₀ + Σ(vᵢ − v₀)/n` so that equal values give exactly that value. `None` for no
/// values or any value that is not finite.
fn mean(values: &[f64]) -> Option<f64> {
    if !all_finite(values) {
        return None;
    }
    let &reference = values.first()?;
    let sum: f64 = values.iter().map(|v| v - reference).sum();
    Some(reference + sum / values.len() as f64)
}

/// The per-task differences `a[i] − b[i]`. `None` if the slices differ in length or hold a
/// value that is not finite.
pub fn paired_differences(a: &[f64], b: &[f64]) -> Option<Vec<f64>> {
    if a.len() != b.len() || !all_finite(a) || !all_finite(b) {
        return None;
    }
    Some(a.iter().zip(b).map(|(x, y)| x - y).collect())
}

/// The mean of per-task differences (zeros included). `None` for none, or any that is not
/// finite.
pub fn mean_difference(differences: &[f64]) -> Option<f64> {
    mean(differences)
}

/// The test behind a [`PairedComparison`]'s p-value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PairedTest {
    /// McNemar's exact test on the tasks where exactly one model passed (for 1/0/−1
    /// differences of pass/fail outcomes).
    #[serde(rename = "mcnemar_exact")]
    McNemarExact,
    /// The sign test on wins and losses, ties not counted (the same binomial test as McNemar's,
    /// for any differences).
    SignTest,
    /// The sign-flip permutation test of the mean difference.
    SignFlipPermutation,
    /// The Wilcoxon signed-rank test, scipy's defaults.
    Wilcoxon,
}

impl PairedTest {
    /// Every test, in the order above.
    pub const ALL: [PairedTest; 4] = [
        PairedTest::McNemarExact,
        PairedTest::SignTest,
        PairedTest::SignFlipPermutation,
        PairedTest::Wilcoxon,
    ];

    /// The test's name as a report prints it.
    pub fn as_str(self) -> &'static str {
        match self {
            PairedTest::McNemarExact => "McNemar exact test",
            PairedTest::SignTest => "sign test",
            PairedTest::SignFlipPermutation => "sign-flip permutation test",
            PairedTest::Wilcoxon => "Wilcoxon signed-rank test",
        }
    }
}

impl std::fmt::Display for PairedTest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One paired comparison of two models over the same tasks, as a report shows it.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PairedComparison {
    /// Tasks compared (ties included).
    pub n: usize,
    /// Mean of the per-task differences, first model minus second.
    pub mean_difference: f64,
    /// 95% paired bootstrap percentile interval of the mean difference.
    pub interval: (f64, f64),
    /// Two-sided p-value of `test`.
    pub p_value: f64,
    pub test: PairedTest,
}

/// Seeds the sign-flip draws apart from the bootstrap's, from the one seed a caller passes.
const PERMUTATION_STREAM: u64 = 0x5349_474e_464c_4950;

/// Compares two models from their per-task differences: the mean difference, its 95% bootstrap
/// interval ([`DEFAULT_BOOTSTRAP_RESAMPLES`] resamples from `seed`) and the p-value of `test`
/// (the sign-flip test draws from a stream derived from `seed`). For McNemar's test and the
/// sign test the discordant counts are the positive and negative differences. `None` for no
/// differences or any that is not finite.
pub fn compare_paired(
    differences: &[f64],
    test: PairedTest,
    seed: u64,
) -> Option<PairedComparison> {
    let mean_difference = mean(differences)?;
    let interval = bootstrap_mean_interval(differences, DEFAULT_BOOTSTRAP_RESAMPLES, seed)?;
    let p_value = match test {
        PairedTest::McNemarExact | PairedTest::SignTest => {
            let counts = sign_counts(differences)?;
            sign_test(counts.wins, counts.losses)
        }
        PairedTest::SignFlipPermutation => {
            sign_flip_test(differences, seed ^ PERMUTATION_STREAM)?.p_value
        }
        PairedTest::Wilcoxon => wilcoxon(differences)?.p_value,
    };
    Some(PairedComparison {
        n: differences.len(),
        mean_difference,
        interval,
        p_value,
        test,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn means_are_exact_for_equal_values() {
        assert_eq!(mean(&[0.1, 0.1, 0.1]), Some(0.1));
        assert_eq!(mean(&[]), None);
        assert_eq!(mean(&[1.0, f64::NAN]), None);
        assert_eq!(mean_difference(&[1.0, 2.0, 6.0]), Some(3.0));
    }

    #[test]
    fn differences_need_matching_finite_slices() {
        assert_eq!(
            paired_differences(&[1.0, 0.0], &[0.0, 0.0]),
            Some(vec![1.0, 0.0])
        );
        assert_eq!(paired_differences(&[1.0], &[]), None);
        assert_eq!(paired_differences(&[f64::NAN], &[0.0]), None);
        assert_eq!(paired_differences(&[], &[]), Some(vec![]));
    }

    #[test]
    fn comparisons_name_their_test() {
        let differences = [1.0, 1.0, 0.0, -1.0, 1.0, 1.0, 0.0, 1.0];
        for test in PairedTest::ALL {
            let comparison = compare_paired(&differences, test, 7).unwrap();
            assert_eq!(comparison.test, test);
            assert_eq!(comparison.n, 8);
            assert_eq!(comparison.mean_difference, 0.5);
            let (lower, upper) = comparison.interval;
            assert!(lower <= 0.5 && 0.5 <= upper);
            assert!((0.0..=1.0).contains(&comparison.p_value));
        }
        // 5 wins, 1 loss: 2·(1 + 6)/64.
        let mcnemar = compare_paired(&differences, PairedTest::McNemarExact, 7).unwrap();
        assert_eq!(mcnemar.p_value, 14.0 / 64.0);
        assert_eq!(PairedTest::Wilcoxon.as_str(), "Wilcoxon signed-rank test");
        assert_eq!(PairedTest::SignTest.to_string(), "sign test");
        assert_eq!(
            serde_json::to_string(&PairedTest::SignFlipPermutation).unwrap(),
            "\"sign_flip_permutation\""
        );
        assert_eq!(compare_paired(&[], PairedTest::SignTest, 7), None);
        assert_eq!(compare_paired(&[f64::NAN], PairedTest::Wilcoxon, 7), None);
    }
}
