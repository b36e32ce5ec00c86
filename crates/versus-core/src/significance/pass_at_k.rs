//! pass@k: the chance that at least one of k answers passes, estimated from n sampled answers of
//! which c passed.

/// The unbiased estimator of Chen et al. (2021, HumanEval), `1 − C(n − c, k)/C(n, k)`, in its
/// numerically stable product form `1 − Π_{i=n−c+1..n} (1 − k/i)` (HumanEval's
/// `estimate_pass_at_k`); 1 when `n − c < k` (every k-subset holds a passing answer).
///
/// `None` when `k` is 0, or larger than `n`, or `c` is larger than `n`: HumanEval's code would
/// return 1 for `k > n` and 0 for `k = 0`, neither of which estimates anything.
pub fn pass_at_k(n: usize, c: usize, k: usize) -> Option<f64> {
    if k == 0 || k > n || c > n {
        return None;
    }
    if n - c < k {
        return Some(1.0);
    }
    let product: f64 = (n - c + 1..=n).map(|i| 1.0 - k as f64 / i as f64).product();
    Some(1.0 - product)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_combinatorial_form() {
        // 1 − C(8, 2)/C(10, 2) = 1 − 28/45
        let p = pass_at_k(10, 2, 2).unwrap();
        assert!((p - 17.0 / 45.0).abs() < 1e-15);
        assert_eq!(pass_at_k(10, 0, 3), Some(0.0));
        assert_eq!(pass_at_k(10, 9, 2), Some(1.0));
        assert_eq!(pass_at_k(10, 10, 10), Some(1.0));
        // pass@1 is the pass rate.
        assert!((pass_at_k(20, 7, 1).unwrap() - 0.35).abs() < 1e-15);
    }

    #[test]
    fn rejects_impossible_counts() {
        assert_eq!(pass_at_k(10, 2, 0), None);
        assert_eq!(pass_at_k(10, 2, 11), None);
        assert_eq!(pass_at_k(10, 11, 1), None);
        assert_eq!(pass_at_k(0, 0, 1), None);
    }
}
