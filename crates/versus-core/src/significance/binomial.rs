//! Tests on counts of paired outcomes: McNemar's exact test and the sign test, which are the
//! same two-sided binomial test with success probability ½ on the informative pairs.
//!
//! With `n = b + c` informative pairs and `k = min(b, c)`, the p-value is
//! `min(1, 2·P(X ≤ k))` for X ~ Bin(n, ½), and 1 when `n = 0`. This is statsmodels'
//! `mcnemar(table, exact=True).pvalue` (which doubles the lower tail and caps at 1) and also
//! scipy's `binomtest(k, n, 0.5).pvalue`: scipy's two-sided test sums the probabilities of all
//! outcomes no more likely than the observed one (up to a relative 1e-7), and for p = ½ the
//! distribution is symmetric, so those outcomes are exactly the two tails `X ≤ k` and
//! `X ≥ n − k`: the doubled tail. When `b = c` every outcome qualifies and both give 1. (They
//! could part only if a non-mirror outcome had a probability within 1e-7 of the observed one,
//! which needs n in the tens of millions.) `tests/stats_vectors.rs` checks both references.
//!
//! The tail is `2^{−n}·Σ_{i≤k} C(n, i)`, summed smallest term first with the coefficients kept
//! in range by exact power-of-two rescaling, so nothing overflows or underflows before the
//! answer does, and small tables are exact. It costs O(min(b, c)).

/// Wins, losses and ties of one model against another over paired tasks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SignCounts {
    /// Tasks where the difference (first minus second) is positive.
    pub wins: usize,
    /// Tasks where it is negative.
    pub losses: usize,
    /// Tasks where it is exactly zero: reported, not counted by the tests.
    pub ties: usize,
}

/// Counts the signs of per-task differences. `None` if any difference is not finite; all zero
/// counts for no differences.
pub fn sign_counts(differences: &[f64]) -> Option<SignCounts> {
    if !super::all_finite(differences) {
        return None;
    }
    let mut counts = SignCounts {
        wins: 0,
        losses: 0,
        ties: 0,
    };
    for &difference in differences {
        if difference > 0.0 {
            counts.wins += 1;
        } else if difference < 0.0 {
            counts.losses += 1;
        } else {
            counts.ties += 1;
        }
    }
    Some(counts)
}

/// McNemar's exact test on the discordant counts of a paired 2×2 table `[[a, b], [c, d]]`: `b`
/// tasks only the first model got right, `c` only the second. Two-sided p-value
/// `min(1, 2·P(X ≤ min(b, c)))`, X ~ Bin(b + c, ½); 1 when `b + c = 0`.
/// Reference: statsmodels `mcnemar([[a, b], [c, d]], exact=True).pvalue`.
pub fn mcnemar_exact(b: usize, c: usize) -> f64 {
    two_sided_half(b, c)
}

/// The two-sided sign test of `wins` against `losses` (ties are not counted): the same binomial
/// test as [`mcnemar_exact`]; 1 when there are neither wins nor losses.
/// Reference: `scipy.stats.binomtest(wins, wins + losses, 0.5).pvalue`.
pub fn sign_test(wins: usize, losses: usize) -> f64 {
    two_sided_half(wins, losses)
}

fn two_sided_half(b: usize, c: usize) -> f64 {
    let Some(n) = b.checked_add(c) else {
        // More pairs than a usize counts: far beyond any evaluation; the normal approximation
        // would be exact to every printed digit, but there is nothing sensible to return.
        return f64::NAN;
    };
    let k = b.min(c);
    if n == 0 || 2 * (k as u128) >= n as u128 {
        return 1.0;
    }
    (2.0 * lower_tail_half(k, n)).min(1.0)
}

/// P(X ≤ k) for X ~ Bin(n, ½), for k < n/2: `2^{−n}·Σ_{i≤k} C(n, i)`, the binomial coefficients
/// from the recurrence `C(n, i) = C(n, i − 1)·(n − i + 1)/i`, smallest first, rescaled by 2^−600
/// whenever they grow past 2^600 so that nothing overflows. While the coefficients are below
/// 2^53 every step is exact, so small tables give exact p-values.
fn lower_tail_half(k: usize, n: usize) -> f64 {
    const RESCALE_EXPONENT: i32 = 600;
    let threshold = 2f64.powi(RESCALE_EXPONENT);
    let shrink = 2f64.powi(-RESCALE_EXPONENT);
    let (mut coefficient, mut sum, mut rescales) = (1.0f64, 1.0f64, 0i64);
    for i in 1..=k {
        coefficient = coefficient * (n - i + 1) as f64 / i as f64;
        sum += coefficient;
        if coefficient > threshold {
            coefficient *= shrink;
            sum *= shrink;
            rescales += 1;
        }
    }
    // sum · 2^(600·rescales − n), applied in steps that cannot overflow or underflow early.
    let mut exponent = rescales * i64::from(RESCALE_EXPONENT) - n as i64;
    let mut result = sum;
    while exponent < -1000 {
        result *= 2f64.powi(-1000);
        exponent += 1000;
        if result == 0.0 {
            return 0.0;
        }
    }
    result * 2f64.powi(exponent as i32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_discordant_pairs_give_one() {
        assert_eq!(mcnemar_exact(0, 0), 1.0);
        assert_eq!(sign_test(0, 0), 1.0);
        assert_eq!(mcnemar_exact(5, 5), 1.0);
        assert_eq!(mcnemar_exact(4, 5), 1.0);
    }

    #[test]
    fn small_tables_match_hand_computation() {
        // 2·P(X ≤ 0), X ~ Bin(1, ½) = 1; Bin(3, ½): 2·(1/8) = 0.25.
        assert_eq!(mcnemar_exact(1, 0), 1.0);
        assert_eq!(mcnemar_exact(0, 3), 0.25);
        // Bin(10, ½): 2·(1 + 10 + 45)/1024.
        assert!((sign_test(8, 2) - 112.0 / 1024.0).abs() < 1e-15);
        assert_eq!(sign_test(2, 8), sign_test(8, 2));
        // Bin(2000, ½) far tail underflows gracefully.
        assert_eq!(mcnemar_exact(0, 2000), 0.0);
    }

    #[test]
    fn sign_counts_report_ties_and_reject_nan() {
        let counts = sign_counts(&[1.0, -0.5, 0.0, 2.0, -0.0]).unwrap();
        assert_eq!(
            counts,
            SignCounts {
                wins: 2,
                losses: 1,
                ties: 2
            }
        );
        assert_eq!(sign_counts(&[]).map(|c| c.ties), Some(0));
        assert_eq!(sign_counts(&[1.0, f64::NAN]), None);
        assert_eq!(sign_counts(&[f64::INFINITY]), None);
    }
}
