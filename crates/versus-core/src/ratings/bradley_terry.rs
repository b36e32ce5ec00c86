//! The Bradley-Terry maximum-likelihood fit behind Chatbot Arena's ratings: the likelihood as the
//! Arena writes it (logistic regression, a win weighted 2 and a tie 1 for each side), solved by
//! Newton's method where the optimum exists, and by the Arena's own optimiser where it does not.
//!
//! The Arena (`compute_mle_elo`) fits sklearn's `LogisticRegression(fit_intercept=False,
//! penalty=None, tol=1e-6)` to one row per battle outcome, with +ln(10) in model A's column and
//! -ln(10) in model B's, and reports `400 * coefficient + 1000`. Its loss is the weighted mean
//! log-loss, which depends on the pair totals only, so we work on those (`PairPoints`).
//!
//! Two properties of that fit decide what "the" answer is:
//!
//! - Ratings are only defined up to a shift (of each group of models that played each other). The
//!   Arena's lbfgs starts at zero and only ever moves along gradients, whose entries sum to zero
//!   within every group, so it returns coefficients that sum to zero in each group: each group's
//!   mean rating is 1000. We return the same point. (Some Arena versions then shift everything so
//!   that mixtral-8x7b-instruct-v0.1 sits at 1114; we do not anchor.)
//! - The optimum exists only if, within each group, no set of models is unbeaten by the rest
//!   (the "beat or tied" graph is strongly connected). Then we solve it to machine precision with
//!   Newton's method; the Arena's lbfgs stops within its tolerance of it (a few 1e-4 rating
//!   points away). Otherwise, e.g. a model that never loses, the likelihood keeps improving as
//!   ratings spread without bound, and the Arena's numbers are simply where lbfgs stopped, so we
//!   run that optimiser (`lbfgs.rs`) with the Arena's settings and get its numbers.

use super::lbfgs;

/// The Elo-like scale the Arena reports: 400 points per factor of 10 in the odds.
pub const SCALE: f64 = 400.0;
/// The base of the odds the scale refers to.
pub const BASE: f64 = 10.0;
/// The mean rating of every group of models (the coefficients' zero).
pub const INIT_RATING: f64 = 1000.0;

/// The Arena's `LogisticRegression(tol=1e-6)`: lbfgs stops once no gradient entry exceeds it.
pub(crate) const ARENA_GRADIENT_TOLERANCE: f64 = 1e-6;

/// Newton stops once a step moves no coefficient by more than this (4e-9 rating points); the
/// step before it was ~1e-6 or less, so by quadratic convergence the remaining error is at
/// rounding level.
const NEWTON_STEP_TOLERANCE: f64 = 1e-11;
const NEWTON_MAX_ITERATIONS: usize = 100;
/// Steps shorter than this are taken in full: close to the optimum, the loss changes by less
/// than its rounding error, so a line search would only get in the way.
const NEWTON_FULL_STEP_BELOW: f64 = 1e-6;

/// Half points won between two models: 2 per win and 1 per tie (of either kind) for each side,
/// the Arena's sample weights. `first < second` (model indices).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct PairScore {
    pub first: usize,
    pub second: usize,
    pub first_points: f64,
    pub second_points: f64,
}

/// The sufficient statistics of the likelihood: points between every pair that met.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct PairPoints {
    pub models: usize,
    pub pairs: Vec<PairScore>,
}

impl PairPoints {
    /// Pair scores from a dense `models x models` table, `half_points[a * models + b]` being what
    /// `a` took from `b`. Pairs that never met are left out.
    pub fn from_table(models: usize, half_points: &[f64]) -> PairPoints {
        let mut pairs = Vec::new();
        for first in 0..models {
            for second in first + 1..models {
                let first_points = half_points[first * models + second];
                let second_points = half_points[second * models + first];
                if first_points + second_points > 0.0 {
                    pairs.push(PairScore {
                        first,
                        second,
                        first_points,
                        second_points,
                    });
                }
            }
        }
        PairPoints { models, pairs }
    }

    /// sklearn's sum of sample weights, by which it divides the loss.
    fn total_weight(&self) -> f64 {
        self.pairs
            .iter()
            .map(|pair| pair.first_points + pair.second_points)
            .sum()
    }
}

/// Ratings on the Arena's scale from fitted coefficients.
pub(crate) fn rating_of(coefficient: f64) -> f64 {
    SCALE * coefficient + INIT_RATING
}

/// Fits the coefficients (`rating = 400 * coefficient + 1000`), one per model index.
pub(crate) fn fit_coefficients(points: &PairPoints) -> Vec<f64> {
    let objective = Objective::new(points);
    let structure = Structure::of(points);
    if structure.optimum_exists {
        if let Some(coefficients) = newton_optimum(&objective, &structure.groups) {
            return coefficients;
        }
    }
    lbfgs::minimize(
        |coefficients, gradient| objective.loss_and_gradient(coefficients, gradient),
        vec![0.0; points.models],
        &lbfgs::Settings::ARENA,
    )
}

/// Whether a finite maximum-likelihood estimate exists for these points.
pub(crate) fn optimum_exists(points: &PairPoints) -> bool {
    Structure::of(points).optimum_exists
}

/// sklearn's objective: the weighted mean log-loss of the Arena's logistic regression.
pub(crate) struct Objective<'a> {
    points: &'a PairPoints,
    /// ln(BASE), the design matrix entry.
    log_base: f64,
    total_weight: f64,
}

impl<'a> Objective<'a> {
    pub fn new(points: &'a PairPoints) -> Objective<'a> {
        Objective {
            points,
            log_base: BASE.ln(),
            total_weight: points.total_weight(),
        }
    }

    /// The loss at `coefficients`, writing its gradient into `gradient`.
    pub fn loss_and_gradient(&self, coefficients: &[f64], gradient: &mut [f64]) -> f64 {
        gradient.iter_mut().for_each(|entry| *entry = 0.0);
        if self.total_weight <= 0.0 {
            return 0.0;
        }
        let mut loss = 0.0;
        for pair in &self.points.pairs {
            let logit = self.log_base * (coefficients[pair.first] - coefficients[pair.second]);
            loss += pair.first_points * softplus(-logit) + pair.second_points * softplus(logit);
            let weight = pair.first_points + pair.second_points;
            let slope = self.log_base * (weight * sigmoid(logit) - pair.first_points);
            gradient[pair.first] += slope;
            gradient[pair.second] -= slope;
        }
        gradient
            .iter_mut()
            .for_each(|entry| *entry /= self.total_weight);
        loss / self.total_weight
    }

    /// The loss's Hessian, dense and row-major.
    fn hessian(&self, coefficients: &[f64]) -> Vec<f64> {
        let models = self.points.models;
        let mut hessian = vec![0.0; models * models];
        if self.total_weight <= 0.0 {
            return hessian;
        }
        let scale = self.log_base * self.log_base / self.total_weight;
        for pair in &self.points.pairs {
            let logit = self.log_base * (coefficients[pair.first] - coefficients[pair.second]);
            let probability = sigmoid(logit);
            let curvature = scale
                * (pair.first_points + pair.second_points)
                * probability
                * (1.0 - probability);
            let (first, second) = (pair.first, pair.second);
            hessian[first * models + first] += curvature;
            hessian[second * models + second] += curvature;
            hessian[first * models + second] -= curvature;
            hessian[second * models + first] -= curvature;
        }
        hessian
    }
}

/// ln(1 + e^x) without overflow.
fn softplus(x: f64) -> f64 {
    x.max(0.0) + (-x.abs()).exp().ln_1p()
}

/// 1 / (1 + e^-x) without overflow.
fn sigmoid(x: f64) -> f64 {
    if x >= 0.0 {
        1.0 / (1.0 + (-x).exp())
    } else {
        let e = x.exp();
        e / (1.0 + e)
    }
}

/// Which models are tied together by battles, and whether the likelihood has a maximum.
struct Structure {
    /// Models linked by battles, each group in index order.
    groups: Vec<Vec<usize>>,
    optimum_exists: bool,
}

impl Structure {
    fn of(points: &PairPoints) -> Structure {
        let models = points.models;
        let mut parent: Vec<usize> = (0..models).collect();
        fn root(parent: &mut [usize], mut model: usize) -> usize {
            while parent[model] != model {
                parent[model] = parent[parent[model]];
                model = parent[model];
            }
            model
        }
        // took[a] lists the models a took points from (beat or tied).
        let mut took: Vec<Vec<usize>> = vec![Vec::new(); models];
        let mut gave: Vec<Vec<usize>> = vec![Vec::new(); models];
        for pair in &points.pairs {
            let (first, second) = (
                root(&mut parent, pair.first),
                root(&mut parent, pair.second),
            );
            parent[first.max(second)] = first.min(second);
            if pair.first_points > 0.0 {
                took[pair.first].push(pair.second);
                gave[pair.second].push(pair.first);
            }
            if pair.second_points > 0.0 {
                took[pair.second].push(pair.first);
                gave[pair.first].push(pair.second);
            }
        }
        let mut group_of_root: Vec<Option<usize>> = vec![None; models];
        let mut groups: Vec<Vec<usize>> = Vec::new();
        for model in 0..models {
            let top = root(&mut parent, model);
            let group = *group_of_root[top].get_or_insert_with(|| {
                groups.push(Vec::new());
                groups.len() - 1
            });
            groups[group].push(model);
        }
        // A group has a maximum iff every model can reach every other along "took points from"
        // edges: otherwise some set of models was never beaten by the rest, and its ratings can
        // rise without bound (Zermelo 1929, Ford 1957).
        let optimum_exists = groups.iter().all(|group| {
            let anchor = group[0];
            reaches_all(&took, anchor, group.len()) && reaches_all(&gave, anchor, group.len())
        });
        Structure {
            groups,
            optimum_exists,
        }
    }
}

fn reaches_all(edges: &[Vec<usize>], start: usize, count: usize) -> bool {
    let mut seen = vec![false; edges.len()];
    let mut stack = vec![start];
    seen[start] = true;
    let mut reached = 1;
    while let Some(model) = stack.pop() {
        for &next in &edges[model] {
            if !seen[next] {
                seen[next] = true;
                reached += 1;
                stack.push(next);
            }
        }
    }
    reached == count
}

/// Newton's method on the coefficients, with each group's mean held at zero (where the Arena's
/// lbfgs ends up): the first model of each group is pinned while solving for a step, and the step
/// is then shifted to keep the group's sum at zero, which changes no logit. `None` if the reduced
/// Hessian is not positive definite (it is, whenever the optimum exists) or Newton does not settle.
fn newton_optimum(objective: &Objective, groups: &[Vec<usize>]) -> Option<Vec<f64>> {
    let models = objective.points.models;
    let free: Vec<usize> = groups
        .iter()
        .flat_map(|group| group[1..].iter().copied())
        .collect();
    let mut coefficients = vec![0.0; models];
    let mut gradient = vec![0.0; models];
    let mut loss = objective.loss_and_gradient(&coefficients, &mut gradient);
    if free.is_empty() {
        return Some(coefficients);
    }
    let mut trial = vec![0.0; models];
    let mut trial_gradient = vec![0.0; models];
    for _ in 0..NEWTON_MAX_ITERATIONS {
        let hessian = objective.hessian(&coefficients);
        let mut reduced: Vec<f64> = Vec::with_capacity(free.len() * free.len());
        for &row in &free {
            reduced.extend(free.iter().map(|&column| hessian[row * models + column]));
        }
        let mut step_free: Vec<f64> = free.iter().map(|&model| -gradient[model]).collect();
        cholesky_solve(&mut reduced, &mut step_free, free.len())?;
        let mut step = vec![0.0; models];
        for (&model, &value) in free.iter().zip(&step_free) {
            step[model] = value;
        }
        for group in groups {
            let mean = group.iter().map(|&model| step[model]).sum::<f64>() / group.len() as f64;
            group.iter().for_each(|&model| step[model] -= mean);
        }
        let largest = step.iter().fold(0.0_f64, |max, value| max.max(value.abs()));
        let slope: f64 = step.iter().zip(&gradient).map(|(s, g)| s * g).sum();
        let mut length = 1.0;
        loop {
            for ((entry, coefficient), delta) in trial.iter_mut().zip(&coefficients).zip(&step) {
                *entry = coefficient + length * delta;
            }
            let trial_loss = objective.loss_and_gradient(&trial, &mut trial_gradient);
            // Armijo's sufficient decrease, far from the optimum only.
            if largest * length <= NEWTON_FULL_STEP_BELOW
                || trial_loss <= loss + 1e-4 * length * slope
                || length < 1e-12
            {
                loss = trial_loss;
                break;
            }
            length *= 0.5;
        }
        std::mem::swap(&mut coefficients, &mut trial);
        std::mem::swap(&mut gradient, &mut trial_gradient);
        // Judged on the full Newton step (always taken at this size), never on one a line search
        // shortened.
        if largest <= NEWTON_STEP_TOLERANCE {
            return Some(coefficients);
        }
    }
    None
}

/// Solves `matrix * x = rhs` in place (`rhs` becomes `x`) for a symmetric positive definite
/// `size x size` row-major matrix, by Cholesky factorisation. `None` if it is not positive
/// definite.
fn cholesky_solve(matrix: &mut [f64], rhs: &mut [f64], size: usize) -> Option<()> {
    for column in 0..size {
        let mut diagonal = matrix[column * size + column];
        for k in 0..column {
            diagonal -= matrix[column * size + k] * matrix[column * size + k];
        }
        if !diagonal.is_finite() || diagonal <= 0.0 {
            return None;
        }
        let diagonal = diagonal.sqrt();
        matrix[column * size + column] = diagonal;
        for row in column + 1..size {
            let mut value = matrix[row * size + column];
            for k in 0..column {
                value -= matrix[row * size + k] * matrix[column * size + k];
            }
            matrix[row * size + column] = value / diagonal;
        }
    }
    // L y = rhs, then L^T x = y.
    for row in 0..size {
        let mut value = rhs[row];
        for k in 0..row {
            value -= matrix[row * size + k] * rhs[k];
        }
        rhs[row] = value / matrix[row * size + row];
    }
    for row in (0..size).rev() {
        let mut value = rhs[row];
        for k in row + 1..size {
            value -= matrix[k * size + row] * rhs[k];
        }
        rhs[row] = value / matrix[row * size + row];
    }
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn points(models: usize, results: &[(usize, usize, f64, f64)]) -> PairPoints {
        PairPoints {
            models,
            pairs: results
                .iter()
                .map(|&(first, second, first_points, second_points)| PairScore {
                    first,
                    second,
                    first_points,
                    second_points,
                })
                .collect(),
        }
    }

    #[test]
    fn two_models_match_the_closed_form() {
        // 3 wins to 1 (half points 6 and 2): odds 3, so the gap is 400 * log10(3), split
        // evenly around 1000.
        let fit = fit_coefficients(&points(2, &[(0, 1, 6.0, 2.0)]));
        let gap = SCALE * 3f64.log10();
        assert!((rating_of(fit[0]) - (1000.0 + gap / 2.0)).abs() < 1e-9);
        assert!((rating_of(fit[1]) - (1000.0 - gap / 2.0)).abs() < 1e-9);
    }

    #[test]
    fn gradient_matches_finite_differences() {
        let table = points(3, &[(0, 1, 5.0, 3.0), (1, 2, 4.0, 1.0), (0, 2, 0.0, 2.0)]);
        let objective = Objective::new(&table);
        let at = [0.3, -0.1, -0.2];
        let mut gradient = [0.0; 3];
        objective.loss_and_gradient(&at, &mut gradient);
        let mut scratch = [0.0; 3];
        for model in 0..3 {
            let (mut up, mut down) = (at, at);
            up[model] += 1e-6;
            down[model] -= 1e-6;
            let numeric = (objective.loss_and_gradient(&up, &mut scratch)
                - objective.loss_and_gradient(&down, &mut scratch))
                / 2e-6;
            assert!((numeric - gradient[model]).abs() < 1e-8, "model {model}");
        }
    }

    #[test]
    fn structure_finds_groups_and_separation() {
        // 0 and 1 split points; 2 and 3 only met each other: two groups, both fine.
        let split = points(4, &[(0, 1, 1.0, 3.0), (2, 3, 2.0, 2.0)]);
        let structure = Structure::of(&split);
        assert_eq!(structure.groups, vec![vec![0, 1], vec![2, 3]]);
        assert!(structure.optimum_exists);
        // 2 beat 0 and 1 every time: no maximum.
        let unbeaten = points(3, &[(0, 1, 1.0, 3.0), (0, 2, 0.0, 4.0), (1, 2, 0.0, 2.0)]);
        assert!(!optimum_exists(&unbeaten));
        // A single tie is enough to connect the champion back.
        let tied = points(3, &[(0, 1, 1.0, 3.0), (0, 2, 1.0, 5.0), (1, 2, 0.0, 2.0)]);
        assert!(optimum_exists(&tied));
    }

    #[test]
    fn each_group_is_centred_on_the_initial_rating() {
        let split = points(5, &[(0, 1, 6.0, 2.0), (1, 2, 3.0, 3.0), (3, 4, 1.0, 7.0)]);
        let fit = fit_coefficients(&split);
        assert!((fit[0] + fit[1] + fit[2]).abs() < 1e-12);
        assert!((fit[3] + fit[4]).abs() < 1e-12);
        let gap = SCALE * 7f64.log10();
        assert!((rating_of(fit[4]) - rating_of(fit[3]) - gap).abs() < 1e-9);
    }

    #[test]
    fn separated_models_get_the_arena_optimisers_finite_answer() {
        let unbeaten = points(3, &[(0, 1, 4.0, 4.0), (0, 2, 0.0, 6.0), (1, 2, 0.0, 4.0)]);
        let fit = fit_coefficients(&unbeaten);
        assert!(fit.iter().all(|value| value.is_finite()));
        assert!(fit[2] > fit[0] + 1.0 && fit[2] > fit[1] + 1.0);
        assert!((fit[0] - fit[1]).abs() < 1e-3);
        let mut gradient = [0.0; 3];
        Objective::new(&unbeaten).loss_and_gradient(&fit, &mut gradient);
        assert!(gradient
            .iter()
            .all(|value| value.abs() <= ARENA_GRADIENT_TOLERANCE));
    }

    #[test]
    fn cholesky_solves_and_rejects_indefinite() {
        let mut matrix = vec![4.0, 2.0, 2.0, 3.0];
        let mut rhs = vec![2.0, 1.0];
        cholesky_solve(&mut matrix, &mut rhs, 2).unwrap();
        assert!((rhs[0] - 0.5).abs() < 1e-15 && rhs[1].abs() < 1e-15);
        let mut singular = vec![1.0, 1.0, 1.0, 1.0];
        assert!(cholesky_solve(&mut singular, &mut [1.0, 1.0], 2).is_none());
    }
}
