//! The Wilcoxon signed-rank test of paired differences, two-sided, as `scipy.stats.wilcoxon`
//! computes it with its defaults in scipy 1.14 (`zero_method='wilcox'`, `correction=False`,
//! `method='auto'`):
//!
//! - Zero differences are dropped (`'wilcox'`); the others are ranked by absolute value, tied
//!   magnitudes sharing the average of their ranks. R+ is the sum of the ranks of the positive
//!   differences; the reported statistic is min(R+, R−).
//! - `Auto` picks **exact** when there are at most [`WILCOXON_EXACT_LIMIT`] differences and no
//!   zero among them, and the **normal approximation** otherwise (scipy 1.14's rule, from its
//!   documentation and code). Note that ties alone do not switch scipy to the approximation:
//!   with ties the exact branch is no longer exact, and scipy (gh-19872) stays conservative by
//!   rounding a half-integer R+ outward, p = 2·min(P(T ≥ ⌊R+⌋), P(T ≤ ⌈R+⌉)). We do the same,
//!   so results match scipy; callers who want the tie-corrected normal approximation for tied
//!   data can ask for [`WilcoxonMethod::Approx`].
//! - Exact: the null distribution of R+ for m ranks 1..m, each in or out with probability ½,
//!   built by the same recurrence as scipy (`_get_wilcoxon_distr`); its probabilities are
//!   dyadic, so for m ≤ 50 every value and tail sum here is exact. Asking for `Exact` with zero
//!   differences gives the approximation, as in scipy. It costs O(m³) time and O(m²) memory.
//! - Approximation: z = (R+ − m(m+1)/4) / σ with σ² = m(m+1)(2m+1)/24 − Σ(t³ − t)/48 over tie
//!   groups of size t (no continuity correction), p = 2·Φ(−|z|).
//!
//! Where scipy fails we return a result: differences that are all zero give p = 1 with m = 0
//! (scipy raises "zero_method 'wilcox' and 'pratt' do not work if x - y is zero for all
//! elements"), for the same reason McNemar's test gives 1 without discordant pairs. No
//! differences, or any that is not finite, give `None` (scipy returns NaN).

use super::normal::normal_cdf;

/// `Auto` uses the exact distribution up to this many differences (none of them zero).
pub const WILCOXON_EXACT_LIMIT: usize = 50;

/// How the p-value is computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WilcoxonMethod {
    /// scipy's `'auto'`: exact for at most 50 differences without zeros, else approximate.
    /// Never the method of a result.
    Auto,
    Exact,
    /// The normal approximation with the tie correction, without continuity correction.
    Approx,
}

/// The result of a Wilcoxon signed-rank test.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Wilcoxon {
    /// min(R+, R−), scipy's two-sided statistic.
    pub statistic: f64,
    /// The differences that were ranked (the non-zero ones).
    pub ranked: usize,
    /// Two-sided p-value.
    pub p_value: f64,
    /// `Exact` or `Approx`: the method that was used.
    pub method: WilcoxonMethod,
}

/// The two-sided Wilcoxon signed-rank test with scipy's defaults (`method='auto'`).
pub fn wilcoxon(differences: &[f64]) -> Option<Wilcoxon> {
    wilcoxon_with(differences, WilcoxonMethod::Auto)
}

/// The two-sided Wilcoxon signed-rank test by the given method (see the module notes).
pub fn wilcoxon_with(differences: &[f64], method: WilcoxonMethod) -> Option<Wilcoxon> {
    if differences.is_empty() || !super::all_finite(differences) {
        return None;
    }
    let has_zeros = differences.contains(&0.0);
    let method = match method {
        WilcoxonMethod::Auto if differences.len() <= WILCOXON_EXACT_LIMIT && !has_zeros => {
            WilcoxonMethod::Exact
        }
        WilcoxonMethod::Exact if !has_zeros => WilcoxonMethod::Exact,
        _ => WilcoxonMethod::Approx,
    };
    let mut nonzero: Vec<f64> = differences.iter().copied().filter(|&d| d != 0.0).collect();
    let m = nonzero.len();
    if m == 0 {
        return Some(Wilcoxon {
            statistic: 0.0,
            ranked: 0,
            p_value: 1.0,
            method,
        });
    }
    nonzero.sort_by(|a, b| a.abs().total_cmp(&b.abs()));
    // Average ranks over runs of equal magnitude; Σ(t³ − t) over the runs.
    let (mut plus, mut minus, mut ties) = (0.0f64, 0.0f64, 0.0f64);
    let mut start = 0;
    while start < m {
        let mut end = start + 1;
        while end < m && nonzero[end].abs() == nonzero[start].abs() {
            end += 1;
        }
        let rank = (start + 1 + end) as f64 / 2.0;
        for &d in &nonzero[start..end] {
            if d > 0.0 {
                plus += rank;
            } else {
                minus += rank;
            }
        }
        let t = (end - start) as f64;
        ties += t * t * t - t;
        start = end;
    }
    let p_value = match method {
        WilcoxonMethod::Exact => exact_p(plus, m),
        _ => {
            let m = m as f64;
            let mean = m * (m + 1.0) * 0.25;
            let variance = (m * (m + 1.0) * (2.0 * m + 1.0) - ties / 2.0) / 24.0;
            let z = (plus - mean) / variance.sqrt();
            2.0 * normal_cdf(-z.abs())
        }
    };
    Some(Wilcoxon {
        statistic: plus.min(minus),
        ranked: m,
        p_value,
        method,
    })
}

/// 2·min(P(T ≥ ⌊R+⌋), P(T ≤ ⌈R+⌉)), capped at 1, for the exact null distribution of T over
/// `m` ranks.
fn exact_p(plus: f64, m: usize) -> f64 {
    let pmf = signed_rank_distribution(m);
    let floor = plus.floor() as usize;
    let ceil = (plus.ceil() as usize).min(pmf.len() - 1);
    let upper: f64 = pmf[floor.min(pmf.len())..].iter().sum();
    let lower: f64 = pmf[..=ceil].iter().sum();
    (2.0 * upper.min(lower)).min(1.0)
}

/// P(T = t) for t = 0..=m(m+1)/2, T the sum of a random subset of the ranks 1..=m.
fn signed_rank_distribution(m: usize) -> Vec<f64> {
    let mut pmf = vec![1.0];
    for k in 1..=m {
        let mut next = vec![0.0; k * (k + 1) / 2 + 1];
        for (t, &p) in pmf.iter().enumerate() {
            next[t] += 0.5 * p;
            next[t + k] += 0.5 * p;
        }
        pmf = next;
    }
    pmf
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_and_non_finite_inputs_have_no_test() {
        assert_eq!(wilcoxon(&[]), None);
        assert_eq!(wilcoxon(&[1.0, f64::NAN]), None);
        assert_eq!(wilcoxon(&[f64::INFINITY, 1.0]), None);
    }

    #[test]
    fn all_zero_differences_give_one() {
        let result = wilcoxon(&[0.0, 0.0, -0.0]).unwrap();
        assert_eq!(result.p_value, 1.0);
        assert_eq!(result.ranked, 0);
        assert_eq!(result.method, WilcoxonMethod::Approx);
    }

    #[test]
    fn exact_distribution_is_the_subset_sum_count() {
        // Ranks 1, 2, 3: subset sums 0,1,2,3,3,4,5,6.
        let pmf = signed_rank_distribution(3);
        let eighths: Vec<f64> = pmf.iter().map(|p| p * 8.0).collect();
        assert_eq!(eighths, vec![1.0, 1.0, 1.0, 2.0, 1.0, 1.0, 1.0]);
        // All positive: R+ = 15 of max 15 over 5 ranks: p = 2/32.
        let result = wilcoxon(&[1.0, 2.0, 3.0, 4.0, 5.0]).unwrap();
        assert_eq!(result.p_value, 2.0 / 32.0);
        assert_eq!(result.statistic, 0.0);
        assert_eq!(result.method, WilcoxonMethod::Exact);
        // One difference: p = 1.
        assert_eq!(wilcoxon(&[-2.0]).unwrap().p_value, 1.0);
    }

    #[test]
    fn zeros_switch_to_the_approximation() {
        let result = wilcoxon_with(&[1.0, 2.0, 0.0, -3.0], WilcoxonMethod::Exact).unwrap();
        assert_eq!(result.method, WilcoxonMethod::Approx);
        assert_eq!(result.ranked, 3);
        let many: Vec<f64> = (1..=51).map(f64::from).collect();
        assert_eq!(wilcoxon(&many).unwrap().method, WilcoxonMethod::Approx);
    }
}
