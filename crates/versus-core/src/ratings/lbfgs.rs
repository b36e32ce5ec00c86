//! The optimiser the Arena's ratings come from, for the case where they depend on it: scipy's
//! L-BFGS-B (v3.0, as sklearn's `LogisticRegression(solver="lbfgs")` calls it), on the path it
//! takes without bounds, with the Moré-Thuente line search (MINPACK-2 `dcsrch`/`dcstep`).
//!
//! Without bounds, L-BFGS-B's generalised Cauchy point and subspace minimisation reduce to the
//! plain limited-memory BFGS direction `-H g` (`H` from the last `memory` pairs, scaled by
//! `s'y / y'y`), which the two-loop recursion computes; the first direction (and the one after a
//! restart) is `-g`. What makes the result match scipy's is everything else, kept as in
//! `mainlb`/`lnsrlb`: the first trial step `1 / |d|`, later ones 1; the line search constants; a
//! pair is skipped when `s'y <= eps * (-g'd * stp)`; a failed line search clears the memory and
//! retries along `-g` (and gives up if the memory was already empty); and the order of the
//! stopping tests after each iteration: iteration limit (scipy's driver), largest gradient entry
//! `<= gtol`, then relative reduction of f `<= ftol`.

use std::collections::VecDeque;

/// The knobs sklearn sets.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Settings {
    /// scipy's `maxcor`.
    pub memory: usize,
    /// `gtol`: sklearn passes the estimator's `tol`.
    pub gradient_tolerance: f64,
    /// `ftol`: sklearn passes `64 * eps`.
    pub relative_reduction: f64,
    /// `maxiter`: sklearn passes `max_iter` (default 100).
    pub max_iterations: usize,
    /// `maxls`: sklearn passes 50.
    pub max_line_search: usize,
}

impl Settings {
    /// `LogisticRegression(penalty=None, tol=1e-6)` with sklearn's defaults, as in the Arena.
    pub const ARENA: Settings = Settings {
        memory: 10,
        gradient_tolerance: super::bradley_terry::ARENA_GRADIENT_TOLERANCE,
        relative_reduction: 64.0 * f64::EPSILON,
        max_iterations: 100,
        max_line_search: 50,
    };
}

/// L-BFGS-B's cap on the step (`big` in `lnsrlb`).
const MAX_STEP: f64 = 1e10;

/// Minimises `objective` (which returns f and writes the gradient) from `start`, stopping where
/// scipy would, and returns the last iterate.
pub(crate) fn minimize(
    mut objective: impl FnMut(&[f64], &mut [f64]) -> f64,
    start: Vec<f64>,
    settings: &Settings,
) -> Vec<f64> {
    let size = start.len();
    let mut x = start;
    let mut gradient = vec![0.0; size];
    let mut value = objective(&x, &mut gradient);
    if largest_magnitude(&gradient) <= settings.gradient_tolerance {
        return x;
    }
    let mut memory: VecDeque<(Vec<f64>, Vec<f64>)> = VecDeque::with_capacity(settings.memory);
    let mut iterations = 0;
    let mut trial_x = vec![0.0; size];
    let mut trial_gradient = vec![0.0; size];
    loop {
        let direction = search_direction(&gradient, &memory);
        let slope = dot(&gradient, &direction);
        if slope >= 0.0 {
            // Not a descent direction: `lnsrlb` reports it and `mainlb` restarts from the
            // gradient, or gives up when it already was the gradient.
            if memory.is_empty() {
                return x;
            }
            memory.clear();
            continue;
        }
        let first_step = if iterations == 0 {
            (1.0 / norm(&direction)).min(MAX_STEP)
        } else {
            1.0
        };
        let mut evaluate = |step: f64| {
            for ((trial, base), delta) in trial_x.iter_mut().zip(&x).zip(&direction) {
                *trial = step * delta + base;
            }
            let trial_value = objective(&trial_x, &mut trial_gradient);
            (trial_value, dot(&trial_gradient, &direction))
        };
        let Some(accepted) = line_search(
            &mut evaluate,
            value,
            slope,
            first_step,
            settings.max_line_search,
        ) else {
            // The previous iterate stands; as `mainlb`: restart from the gradient, or stop.
            if memory.is_empty() {
                return x;
            }
            memory.clear();
            continue;
        };
        iterations += 1;
        let previous_value = value;
        value = accepted.value;
        let difference: Vec<f64> = trial_gradient
            .iter()
            .zip(&gradient)
            .map(|(new, old)| new - old)
            .collect();
        std::mem::swap(&mut x, &mut trial_x);
        std::mem::swap(&mut gradient, &mut trial_gradient);
        if iterations >= settings.max_iterations
            || largest_magnitude(&gradient) <= settings.gradient_tolerance
            || previous_value - value
                <= settings.relative_reduction * previous_value.abs().max(value.abs()).max(1.0)
        {
            return x;
        }
        let (curvature, scale) = if accepted.step == 1.0 {
            (accepted.slope - slope, -slope)
        } else {
            (
                (accepted.slope - slope) * accepted.step,
                -slope * accepted.step,
            )
        };
        if curvature <= f64::EPSILON * scale {
            continue;
        }
        let step_taken: Vec<f64> = direction.iter().map(|d| d * accepted.step).collect();
        if memory.len() == settings.memory {
            memory.pop_front();
        }
        memory.push_back((step_taken, difference));
    }
}

/// `-H g` by the two-loop recursion; `-g` with no memory.
fn search_direction(gradient: &[f64], memory: &VecDeque<(Vec<f64>, Vec<f64>)>) -> Vec<f64> {
    let mut q = gradient.to_vec();
    let Some((last_s, last_y)) = memory.back() else {
        return q.iter().map(|value| -value).collect();
    };
    let mut alphas = Vec::with_capacity(memory.len());
    for (s, y) in memory.iter().rev() {
        let alpha = dot(s, &q) / dot(y, s);
        q.iter_mut().zip(y).for_each(|(qi, yi)| *qi -= alpha * yi);
        alphas.push(alpha);
    }
    let gamma = dot(last_s, last_y) / dot(last_y, last_y);
    q.iter_mut().for_each(|value| *value *= gamma);
    for ((s, y), alpha) in memory.iter().zip(alphas.iter().rev()) {
        let beta = dot(y, &q) / dot(y, s);
        q.iter_mut()
            .zip(s)
            .for_each(|(qi, si)| *qi += si * (alpha - beta));
    }
    q.iter().map(|value| -value).collect()
}

struct Accepted {
    step: f64,
    value: f64,
    /// The directional derivative at the accepted point.
    slope: f64,
}

/// `dcsrch` as `lnsrlb` drives it (ftol 1e-3, gtol 0.9, xtol 0.1, steps in [0, 1e10]). Both its
/// "convergence" and its "warning" exits accept the last point evaluated; `None` when
/// `max_evaluations` trial points did not satisfy it.
fn line_search(
    evaluate: &mut impl FnMut(f64) -> (f64, f64),
    initial_value: f64,
    initial_slope: f64,
    first_step: f64,
    max_evaluations: usize,
) -> Option<Accepted> {
    const FTOL: f64 = 1e-3;
    const GTOL: f64 = 0.9;
    const XTOL: f64 = 0.1;
    const XTRAPL: f64 = 1.1;
    const XTRAPU: f64 = 4.0;
    let (step_min, step_max) = (0.0, MAX_STEP);
    let mut step = first_step;
    let mut bracketed = false;
    let mut stage_one = true;
    let test_slope = FTOL * initial_slope;
    let mut width = step_max - step_min;
    let mut previous_width = width / 0.5;
    let mut best = Endpoint {
        step: 0.0,
        value: initial_value,
        slope: initial_slope,
    };
    let mut other = best;
    let mut interval_min = 0.0;
    let mut interval_max = step + XTRAPU * step;
    let mut evaluations = 0;
    loop {
        let (value, slope) = evaluate(step);
        evaluations += 1;
        let sufficient = initial_value + step * test_slope;
        if stage_one && value <= sufficient && slope >= 0.0 {
            stage_one = false;
        }
        let warning = (bracketed
            && (step <= interval_min
                || step >= interval_max
                || interval_max - interval_min <= XTOL * interval_max))
            || (step == step_max && value <= sufficient && slope <= test_slope)
            || (step == step_min && (value > sufficient || slope >= test_slope));
        let converged = value <= sufficient && slope.abs() <= GTOL * -initial_slope;
        if warning || converged {
            return Some(Accepted { step, value, slope });
        }
        if evaluations >= max_evaluations {
            return None;
        }
        let trial = Endpoint { step, value, slope };
        if stage_one && value <= best.value && value > sufficient {
            // The modified function (value minus the sufficient-decrease line) until a point
            // satisfies the first condition.
            let modified = |point: Endpoint| Endpoint {
                step: point.step,
                value: point.value - point.step * test_slope,
                slope: point.slope - test_slope,
            };
            let (mut best_m, mut other_m) = (modified(best), modified(other));
            step = safeguarded_step(
                &mut best_m,
                &mut other_m,
                modified(trial),
                &mut bracketed,
                interval_min,
                interval_max,
            );
            let restored = |point: Endpoint| Endpoint {
                step: point.step,
                value: point.value + point.step * test_slope,
                slope: point.slope + test_slope,
            };
            best = restored(best_m);
            other = restored(other_m);
        } else {
            step = safeguarded_step(
                &mut best,
                &mut other,
                trial,
                &mut bracketed,
                interval_min,
                interval_max,
            );
        }
        if bracketed {
            if (other.step - best.step).abs() >= 0.66 * previous_width {
                step = best.step + 0.5 * (other.step - best.step);
            }
            previous_width = width;
            width = (other.step - best.step).abs();
            interval_min = best.step.min(other.step);
            interval_max = best.step.max(other.step);
        } else {
            interval_min = step + XTRAPL * (step - best.step);
            interval_max = step + XTRAPU * (step - best.step);
        }
        step = step.max(step_min).min(step_max);
        if bracketed
            && (step <= interval_min
                || step >= interval_max
                || interval_max - interval_min <= XTOL * interval_max)
        {
            step = best.step;
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Endpoint {
    step: f64,
    value: f64,
    slope: f64,
}

/// `dcstep`: the next trial step from cubic and quadratic interpolation, updating the interval
/// (`best` has the lowest value so far, `other` is the interval's other end).
fn safeguarded_step(
    best: &mut Endpoint,
    other: &mut Endpoint,
    trial: Endpoint,
    bracketed: &mut bool,
    step_min: f64,
    step_max: f64,
) -> f64 {
    let (stx, fx, dx) = (best.step, best.value, best.slope);
    let (sty, fy, dy) = (other.step, other.value, other.slope);
    let (stp, fp, dp) = (trial.step, trial.value, trial.slope);
    let sign = dp * (dx / dx.abs());
    let next;
    if fp > fx {
        // Higher value: the minimum is bracketed.
        let theta = 3.0 * (fx - fp) / (stp - stx) + dx + dp;
        let s = theta.abs().max(dx.abs()).max(dp.abs());
        let mut gamma = s * ((theta / s).powi(2) - (dx / s) * (dp / s)).sqrt();
        if stp < stx {
            gamma = -gamma;
        }
        let p = (gamma - dx) + theta;
        let q = ((gamma - dx) + gamma) + dp;
        let cubic = stx + (p / q) * (stp - stx);
        let quadratic = stx + ((dx / ((fx - fp) / (stp - stx) + dx)) / 2.0) * (stp - stx);
        next = if (cubic - stx).abs() < (quadratic - stx).abs() {
            cubic
        } else {
            cubic + (quadratic - cubic) / 2.0
        };
        *bracketed = true;
    } else if sign < 0.0 {
        // Lower value, slopes of opposite sign: bracketed.
        let theta = 3.0 * (fx - fp) / (stp - stx) + dx + dp;
        let s = theta.abs().max(dx.abs()).max(dp.abs());
        let mut gamma = s * ((theta / s).powi(2) - (dx / s) * (dp / s)).sqrt();
        if stp > stx {
            gamma = -gamma;
        }
        let p = (gamma - dp) + theta;
        let q = ((gamma - dp) + gamma) + dx;
        let cubic = stp + (p / q) * (stx - stp);
        let secant = stp + (dp / (dp - dx)) * (stx - stp);
        next = if (cubic - stp).abs() > (secant - stp).abs() {
            cubic
        } else {
            secant
        };
        *bracketed = true;
    } else if dp.abs() < dx.abs() {
        // Lower value, same sign, slope shrinking.
        let theta = 3.0 * (fx - fp) / (stp - stx) + dx + dp;
        let s = theta.abs().max(dx.abs()).max(dp.abs());
        let mut gamma = s * ((theta / s).powi(2) - (dx / s) * (dp / s)).max(0.0).sqrt();
        if stp > stx {
            gamma = -gamma;
        }
        let p = (gamma - dp) + theta;
        let q = (gamma + (dx - dp)) + gamma;
        let r = p / q;
        let cubic = if r < 0.0 && gamma != 0.0 {
            stp + r * (stx - stp)
        } else if stp > stx {
            step_max
        } else {
            step_min
        };
        let secant = stp + (dp / (dp - dx)) * (stx - stp);
        if *bracketed {
            let closer = if (cubic - stp).abs() < (secant - stp).abs() {
                cubic
            } else {
                secant
            };
            next = if stp > stx {
                closer.min(stp + 0.66 * (sty - stp))
            } else {
                closer.max(stp + 0.66 * (sty - stp))
            };
        } else {
            let farther = if (cubic - stp).abs() > (secant - stp).abs() {
                cubic
            } else {
                secant
            };
            next = farther.min(step_max).max(step_min);
        }
    } else if *bracketed {
        // Lower value, same sign, slope not shrinking, bracketed: cubic towards `other`.
        let theta = 3.0 * (fp - fy) / (sty - stp) + dy + dp;
        let s = theta.abs().max(dy.abs()).max(dp.abs());
        let mut gamma = s * ((theta / s).powi(2) - (dy / s) * (dp / s)).sqrt();
        if stp > sty {
            gamma = -gamma;
        }
        let p = (gamma - dp) + theta;
        let q = ((gamma - dp) + gamma) + dy;
        next = stp + (p / q) * (sty - stp);
    } else if stp > stx {
        next = step_max;
    } else {
        next = step_min;
    }
    if fp > fx {
        *other = trial;
    } else {
        if sign < 0.0 {
            *other = *best;
        }
        *best = trial;
    }
    next
}

fn dot(x: &[f64], y: &[f64]) -> f64 {
    x.iter().zip(y).map(|(a, b)| a * b).sum()
}

fn norm(x: &[f64]) -> f64 {
    dot(x, x).sqrt()
}

fn largest_magnitude(x: &[f64]) -> f64 {
    x.iter().fold(0.0, |max, value| max.max(value.abs()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minimises_a_quadratic() {
        // f = (x - 1)^2 + 10 (y + 2)^2
        let objective = |x: &[f64], g: &mut [f64]| {
            g[0] = 2.0 * (x[0] - 1.0);
            g[1] = 20.0 * (x[1] + 2.0);
            (x[0] - 1.0).powi(2) + 10.0 * (x[1] + 2.0).powi(2)
        };
        let settings = Settings {
            gradient_tolerance: 1e-10,
            ..Settings::ARENA
        };
        let x = minimize(objective, vec![0.0, 0.0], &settings);
        assert!(
            (x[0] - 1.0).abs() < 1e-9 && (x[1] + 2.0).abs() < 1e-9,
            "{x:?}"
        );
    }

    #[test]
    fn stops_at_once_when_the_start_is_flat_enough() {
        let objective = |_: &[f64], g: &mut [f64]| {
            g[0] = 1e-7;
            0.0
        };
        assert_eq!(minimize(objective, vec![3.0], &Settings::ARENA), vec![3.0]);
    }

    #[test]
    fn rosenbrock_converges_within_the_iteration_limit() {
        let objective = |x: &[f64], g: &mut [f64]| {
            let (a, b) = (x[0], x[1]);
            g[0] = -2.0 * (1.0 - a) - 400.0 * a * (b - a * a);
            g[1] = 200.0 * (b - a * a);
            (1.0 - a).powi(2) + 100.0 * (b - a * a).powi(2)
        };
        let x = minimize(objective, vec![-1.2, 1.0], &Settings::ARENA);
        assert!(
            (x[0] - 1.0).abs() < 1e-4 && (x[1] - 1.0).abs() < 1e-4,
            "{x:?}"
        );
    }
}
