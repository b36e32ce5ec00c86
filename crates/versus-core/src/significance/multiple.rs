//! Adjusting p-values for multiple comparisons: Holm-Bonferroni.

/// Holm-Bonferroni adjusted p-values, in the order of `p_values`: sorted ascending, the j-th
/// smallest (from 0) is multiplied by m − j, a running maximum keeps them monotone, and each is
/// capped at 1. This is statsmodels' `multipletests(p, method='holm')[1]`. Equal p-values get
/// equal adjusted values whatever order they sort in. Rejecting the hypotheses whose adjusted
/// p-value is at most α controls the family-wise error rate at α.
///
/// `None` if any p-value is NaN or outside [0, 1]; an empty list for an empty list.
pub fn holm_adjust(p_values: &[f64]) -> Option<Vec<f64>> {
    if !p_values.iter().all(|p| (0.0..=1.0).contains(p)) {
        return None;
    }
    let m = p_values.len();
    let mut order: Vec<usize> = (0..m).collect();
    order.sort_by(|&a, &b| p_values[a].total_cmp(&p_values[b]));
    let mut adjusted = vec![0.0; m];
    let mut running = 0.0f64;
    for (rank, &index) in order.iter().enumerate() {
        running = running.max(p_values[index] * (m - rank) as f64);
        adjusted[index] = running.min(1.0);
    }
    Some(adjusted)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adjusts_in_input_order() {
        // statsmodels: multipletests([0.01, 0.04, 0.03, 0.005], method='holm')[1]
        let adjusted = holm_adjust(&[0.01, 0.04, 0.03, 0.005]).unwrap();
        let expected = [0.03, 0.06, 0.06, 0.02];
        for (a, e) in adjusted.iter().zip(expected) {
            assert!((a - e).abs() < 1e-15, "{adjusted:?}");
        }
        assert_eq!(holm_adjust(&[0.5, 0.9]).unwrap(), vec![1.0, 1.0]);
        assert_eq!(holm_adjust(&[0.2]).unwrap(), vec![0.2]);
    }

    #[test]
    fn rejects_bad_input() {
        assert_eq!(holm_adjust(&[]), Some(vec![]));
        assert_eq!(holm_adjust(&[0.1, f64::NAN]), None);
        assert_eq!(holm_adjust(&[1.5]), None);
        assert_eq!(holm_adjust(&[-0.1]), None);
    }
}
