//! Uncertainty of a mean: the paired bootstrap percentile interval of the mean difference, and
//! the clustered standard error of a mean.

use std::collections::BTreeMap;

use crate::random::Xoshiro256StarStar;
use crate::stats::percentile;

/// Bootstrap resamples unless the caller chooses another number (scipy.stats.bootstrap's
/// default `n_resamples`).
pub const DEFAULT_BOOTSTRAP_RESAMPLES: usize = 9_999;

/// The 95% percentile bootstrap interval of the mean of `differences`: `resamples` times, draw
/// as many tasks as there are, uniformly with replacement (seeded), and take the mean; the
/// interval is the 2.5% and 97.5% percentiles of those means, interpolated linearly as
/// `numpy.percentile` does. This is `scipy.stats.bootstrap((d,), np.mean,
/// method='percentile')`; its draws come from numpy's generator, which is not reproduced, so
/// only the method is shared (`tests/stats_vectors.rs` checks coverage on simulated data and
/// the distance to scipy's interval within its Monte Carlo error).
///
/// Each resample mean is computed as `d₀ + Σ(dᵢ − d₀)/n`, so differences that are all equal
/// give exactly that value as both ends. `None` for no differences, any difference that is not
/// finite, or no resamples.
pub fn bootstrap_mean_interval(
    differences: &[f64],
    resamples: usize,
    seed: u64,
) -> Option<(f64, f64)> {
    if resamples == 0 || !super::all_finite(differences) {
        return None;
    }
    let &reference = differences.first()?;
    let shifted: Vec<f64> = differences.iter().map(|d| d - reference).collect();
    let count = shifted.len() as u64;
    let mut random = Xoshiro256StarStar::seeded(seed);
    let mut means = Vec::with_capacity(resamples);
    for _ in 0..resamples {
        let mut sum = 0.0;
        for _ in 0..count {
            sum += shifted[random.below(count) as usize];
        }
        means.push(reference + sum / count as f64);
    }
    Some((percentile(&means, 2.5)?, percentile(&means, 97.5)?))
}

/// The clustered standard error of the mean of `values`, tasks grouped by `groups` (one label
/// per value), as in Miller (2024), "Adding Error Bars to Evals", appendix A (the sandwich
/// estimator):
///
/// `SE = √(Σ_c (Σ_{i∈c} (xᵢ − x̄))²) / n`
///
/// without a small-sample factor. (Inspect AI's `stderr(cluster=...)`, which cites the same
/// appendix, multiplies the variance by C/(C − 1) for C clusters; we follow the paper.)
/// When every task is its own cluster this is `√(Σ(xᵢ − x̄)²)/n`, the ordinary standard error
/// with the n denominator, `numpy.std(x)/√n` (ddof = 0), which is √((n − 1)/n) times the usual
/// `std(x, ddof=1)/√n`. One cluster gives 0 up to rounding: there is no between-cluster
/// variation to measure.
///
/// `None` for no values, a `groups` of another length, or any value that is not finite.
pub fn clustered_standard_error<G: AsRef<str>>(values: &[f64], groups: &[G]) -> Option<f64> {
    if values.len() != groups.len() {
        return None;
    }
    let mean = super::mean(values)?;
    let mut residuals: BTreeMap<&str, f64> = BTreeMap::new();
    for (value, group) in values.iter().zip(groups) {
        *residuals.entry(group.as_ref()).or_insert(0.0) += value - mean;
    }
    let variance: f64 = residuals.values().map(|sum| sum * sum).sum();
    Some(variance.sqrt() / values.len() as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn degenerate_data_give_a_point() {
        assert_eq!(bootstrap_mean_interval(&[0.1; 7], 500, 3), Some((0.1, 0.1)));
        assert_eq!(bootstrap_mean_interval(&[-2.5], 10, 3), Some((-2.5, -2.5)));
    }

    #[test]
    fn bootstrap_rejects_bad_input() {
        assert_eq!(bootstrap_mean_interval(&[], 100, 1), None);
        assert_eq!(bootstrap_mean_interval(&[1.0, 2.0], 0, 1), None);
        assert_eq!(bootstrap_mean_interval(&[1.0, f64::NAN], 100, 1), None);
    }

    #[test]
    fn bootstrap_interval_brackets_the_mean() {
        let differences: Vec<f64> = (0..40).map(|i| f64::from(i % 5) - 1.0).collect();
        let (lower, upper) = bootstrap_mean_interval(&differences, 2000, 9).unwrap();
        assert!(lower < 1.0 && 1.0 < upper, "{lower} {upper}");
        assert_eq!(
            bootstrap_mean_interval(&differences, 2000, 9),
            Some((lower, upper))
        );
    }

    #[test]
    fn clustered_error_with_singletons_is_the_n_denominator_error() {
        let values = [1.0, 0.0, 1.0, 1.0];
        let groups = ["a", "b", "c", "d"];
        // numpy.std([1, 0, 1, 1]) / 2 = 0.4330127018922193 / 2
        let se = clustered_standard_error(&values, &groups).unwrap();
        assert!((se - 0.21650635094610965).abs() < 1e-15, "{se}");
        // Two clusters of two: residuals (0.25 − 0.75) and (0.25 + 0.25): √(0.25 + 0.25)/4.
        let se = clustered_standard_error(&values, &["x", "x", "y", "y"]).unwrap();
        assert!((se - 0.5f64.sqrt() / 4.0).abs() < 1e-15, "{se}");
        let one = clustered_standard_error(&values, &["z"; 4]).unwrap();
        assert!(one.abs() < 1e-15);
    }

    #[test]
    fn clustered_error_rejects_bad_input() {
        let none: [&str; 0] = [];
        assert_eq!(clustered_standard_error(&[], &none), None);
        assert_eq!(clustered_standard_error(&[1.0], &["a", "b"]), None);
        assert_eq!(clustered_standard_error(&[f64::NAN], &["a"]), None);
    }
}
