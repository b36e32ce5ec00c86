//! Planning: the smallest difference a paired comparison of n tasks can detect, and the tasks
//! needed to detect a given one (the power analysis of Miller 2024, "Adding Error Bars to
//! Evals", for a paired test with the observed standard deviation s of the per-task
//! differences):
//!
//! `d = (z_{1−α/2} + z_{power}) · s / √n`, and its inverse
//! `n = ⌈((z_{1−α/2} + z_{power}) · s / d)²⌉`.

use super::normal::normal_quantile;

/// The power the report plans for: 80%.
pub const DEFAULT_POWER: f64 = 0.8;

/// The sample standard deviation (n − 1 denominator, numpy's `std(x, ddof=1)`), the `s` of the
/// planning formulas when it is estimated from per-task differences. `None` for fewer than two
/// values or any value that is not finite.
pub fn sample_standard_deviation(values: &[f64]) -> Option<f64> {
    if values.len() < 2 {
        return None;
    }
    let mean = super::mean(values)?;
    let squares: f64 = values.iter().map(|v| (v - mean) * (v - mean)).sum();
    Some((squares / (values.len() - 1) as f64).sqrt())
}

/// z_{1−α/2} + z_{power}, or `None` unless 0 < α < 1 and 0 < power < 1.
fn z_sum(alpha: f64, power: f64) -> Option<f64> {
    if !(alpha > 0.0 && alpha < 1.0 && power > 0.0 && power < 1.0) {
        return None;
    }
    // −z_{α/2} rather than z_{1−α/2}: the same number without the rounding of 1 − α/2.
    Some(-normal_quantile(alpha / 2.0)? + normal_quantile(power)?)
}

/// The minimum detectable difference of a paired two-sided test at level `alpha` with the given
/// `power`, over `tasks` tasks whose per-task differences have standard deviation `sd`:
/// `(z_{1−α/2} + z_{power}) · sd / √tasks`. `None` for no tasks, a negative or non-finite `sd`,
/// or `alpha`/`power` outside (0, 1).
pub fn minimum_detectable_difference(tasks: usize, sd: f64, alpha: f64, power: f64) -> Option<f64> {
    if tasks == 0 || !sd.is_finite() || sd < 0.0 {
        return None;
    }
    Some(z_sum(alpha, power)? * sd / (tasks as f64).sqrt())
}

/// The tasks needed to detect `difference`: the smallest n ≥ 1 whose
/// [`minimum_detectable_difference`] is at most `|difference|`, which is
/// `⌈((z_{1−α/2} + z_{power}) · sd / difference)²⌉` up to rounding (the smallest n is checked
/// directly, so `tasks_needed(minimum_detectable_difference(n, ..), ..)` is `n`). `None` for a
/// zero or non-finite difference, a negative or non-finite `sd`, `alpha`/`power` outside
/// (0, 1), or an answer beyond 2^53 tasks.
pub fn tasks_needed(difference: f64, sd: f64, alpha: f64, power: f64) -> Option<usize> {
    let difference = difference.abs();
    if !difference.is_finite() || difference == 0.0 || !sd.is_finite() || sd < 0.0 {
        return None;
    }
    let z = z_sum(alpha, power)?;
    let estimate = (z * sd / difference).powi(2).ceil().max(1.0);
    if estimate > 9_007_199_254_740_992.0 {
        return None;
    }
    let detectable = |n: usize| z * sd / (n as f64).sqrt();
    let mut n = estimate as usize;
    while n > 1 && detectable(n - 1) <= difference {
        n -= 1;
    }
    while detectable(n) > difference {
        n += 1;
    }
    Some(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn miller_example() {
        // (1.959964 + 0.841621)² ≈ 7.8489: with sd 1 a difference of 0.1 needs 785 tasks.
        assert_eq!(tasks_needed(0.1, 1.0, 0.05, DEFAULT_POWER), Some(785));
        let d = minimum_detectable_difference(785, 1.0, 0.05, DEFAULT_POWER).unwrap();
        assert!(d <= 0.1 && d > 0.0999);
        for n in [1, 2, 10, 164, 1000, 123_457] {
            let d = minimum_detectable_difference(n, 0.37, 0.05, 0.8).unwrap();
            assert_eq!(tasks_needed(d, 0.37, 0.05, 0.8), Some(n), "{n}");
        }
        assert_eq!(tasks_needed(0.5, 0.0, 0.05, 0.8), Some(1));
    }

    #[test]
    fn rejects_bad_input() {
        assert_eq!(minimum_detectable_difference(0, 1.0, 0.05, 0.8), None);
        assert_eq!(minimum_detectable_difference(10, -1.0, 0.05, 0.8), None);
        assert_eq!(minimum_detectable_difference(10, f64::NAN, 0.05, 0.8), None);
        assert_eq!(minimum_detectable_difference(10, 1.0, 0.0, 0.8), None);
        assert_eq!(minimum_detectable_difference(10, 1.0, 0.05, 1.0), None);
        assert_eq!(tasks_needed(0.0, 1.0, 0.05, 0.8), None);
        assert_eq!(tasks_needed(f64::NAN, 1.0, 0.05, 0.8), None);
        assert_eq!(tasks_needed(1e-300, 1.0, 0.05, 0.8), None);
        assert_eq!(sample_standard_deviation(&[1.0]), None);
        assert_eq!(sample_standard_deviation(&[1.0, f64::NAN]), None);
        assert_eq!(sample_standard_deviation(&[1.0, 3.0]), Some(2.0f64.sqrt()));
    }
}
