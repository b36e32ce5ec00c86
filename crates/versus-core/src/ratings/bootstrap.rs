//! Bootstrap intervals as the Arena computes them (`get_bootstrap_result`): resample the battles
//! with replacement, refit, and take each model's 2.5% and 97.5% quantiles; then ranks from the
//! intervals. Seeded with a small self-contained generator, so a seed always gives the same
//! intervals.

use super::battle::Battle;
use super::bradley_terry::{fit_coefficients, optimum_exists, rating_of, PairPoints};
use crate::random::Xoshiro256StarStar;
use crate::stats::percentile;

/// Battles with models replaced by indices (models in name order, as the Arena's pivot tables
/// sort them), ready to be tallied for any resample.
pub(crate) struct IndexedBattles {
    pub models: Vec<String>,
    /// One entry per input battle, `None` for a battle of a model against itself (it carries no
    /// information and is never counted), so that resample indices refer to the input.
    slots: Vec<Option<IndexedBattle>>,
}

#[derive(Clone, Copy)]
struct IndexedBattle {
    model_a: usize,
    model_b: usize,
    half_points_a: u8,
}

impl IndexedBattles {
    pub fn new(battles: &[Battle]) -> IndexedBattles {
        let mut models: Vec<String> = battles
            .iter()
            .filter(|battle| battle.model_a != battle.model_b)
            .flat_map(|battle| [battle.model_a.clone(), battle.model_b.clone()])
            .collect();
        models.sort();
        models.dedup();
        let index_of = |name: &str| models.binary_search_by(|model| model.as_str().cmp(name));
        let slots = battles
            .iter()
            .map(
                |battle| match (index_of(&battle.model_a), index_of(&battle.model_b)) {
                    (Ok(model_a), Ok(model_b)) if model_a != model_b => Some(IndexedBattle {
                        model_a,
                        model_b,
                        half_points_a: battle.winner.half_points_a(),
                    }),
                    _ => None,
                },
            )
            .collect();
        IndexedBattles { models, slots }
    }

    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// Fits the battles at `resample` (input positions, repeats allowed; positions past the end
    /// are ignored) and returns each model's rating, `None` for a model that is not in the
    /// resample (the Arena's bootstrap table has NaN there, which its quantiles skip).
    pub fn fit(&self, resample: impl IntoIterator<Item = usize>) -> Vec<Option<f64>> {
        let (present, points) = self.tally(resample);
        let coefficients = fit_coefficients(&points);
        let mut ratings = vec![None; self.models.len()];
        for (&model, &coefficient) in present.iter().zip(&coefficients) {
            ratings[model] = Some(rating_of(coefficient));
        }
        ratings
    }

    /// Whether all battles together determine finite ratings.
    pub fn has_finite_mle(&self) -> bool {
        optimum_exists(&self.tally(0..self.len()).1)
    }

    /// The models that played in `resample` and the points between them (indexed by position
    /// in the returned model list). Only models that played take part in a fit, as in the
    /// Arena's design matrix.
    fn tally(&self, resample: impl IntoIterator<Item = usize>) -> (Vec<usize>, PairPoints) {
        let models = self.models.len();
        let mut half_points = vec![0.0; models * models];
        for position in resample {
            if let Some(Some(battle)) = self.slots.get(position) {
                let points_a = f64::from(battle.half_points_a);
                half_points[battle.model_a * models + battle.model_b] += points_a;
                half_points[battle.model_b * models + battle.model_a] += 2.0 - points_a;
            }
        }
        let present: Vec<usize> = (0..models)
            .filter(|&model| {
                (0..models).any(|other| {
                    half_points[model * models + other] + half_points[other * models + model] > 0.0
                })
            })
            .collect();
        let mut compact = Vec::with_capacity(present.len() * present.len());
        for &row in &present {
            compact.extend(
                present
                    .iter()
                    .map(|&column| half_points[row * models + column]),
            );
        }
        let points = PairPoints::from_table(present.len(), &compact);
        (present, points)
    }

    /// Each model's rating in each of `rounds` resamples drawn from `seed`.
    pub fn bootstrap(&self, rounds: usize, seed: u64) -> Vec<Vec<Option<f64>>> {
        let mut random = Xoshiro256StarStar::seeded(seed);
        let count = self.len() as u64;
        (0..rounds)
            .map(|_| {
                // As `battles.sample(frac=1.0, replace=True)`: as many draws as battles, each
                // uniform over all of them.
                let resample: Vec<usize> =
                    (0..count).map(|_| random.below(count) as usize).collect();
                self.fit(resample)
            })
            .collect()
    }
}

/// The 2.5% and 97.5% quantiles of a model's bootstrap ratings, interpolated linearly as numpy
/// and pandas do by default. `None` for no samples.
pub fn bootstrap_interval(samples: &[f64]) -> Option<(f64, f64)> {
    Some((percentile(samples, 2.5)?, percentile(samples, 97.5)?))
}

/// The Arena's ranks from `(lower, upper)` intervals: 1 + the number of models whose lower bound
/// is above this model's upper bound, i.e. that are better beyond doubt. Models whose intervals
/// overlap share ranks.
pub fn ranks_from_intervals(intervals: &[(f64, f64)]) -> Vec<usize> {
    intervals
        .iter()
        .enumerate()
        .map(|(model, &(_, upper))| {
            1 + intervals
                .iter()
                .enumerate()
                .filter(|&(other, &(lower, _))| other != model && lower > upper)
                .count()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals_interpolate_like_numpy() {
        let samples: Vec<f64> = (0..=40).map(f64::from).collect();
        // numpy.percentile(range(41), [2.5, 97.5]) == [1.0, 39.0]
        assert_eq!(bootstrap_interval(&samples), Some((1.0, 39.0)));
        // numpy.percentile([10, 20, 30, 40], [2.5, 97.5]) == [10.75, 39.25]
        let (lower, upper) = bootstrap_interval(&[40.0, 10.0, 30.0, 20.0]).unwrap();
        assert!((lower - 10.75).abs() < 1e-12 && (upper - 39.25).abs() < 1e-12);
        assert_eq!(bootstrap_interval(&[5.0]), Some((5.0, 5.0)));
        assert_eq!(bootstrap_interval(&[]), None);
    }

    #[test]
    fn ranks_count_models_better_beyond_doubt() {
        let intervals = [
            (1100.0, 1200.0),
            (1050.0, 1150.0),
            (1000.0, 1090.0),
            (900.0, 950.0),
            (900.0, 950.0),
        ];
        // The second overlaps the first: both rank 1. The third is below the first's lower
        // bound only. Equal intervals share a rank; a bound that touches is not "above".
        assert_eq!(ranks_from_intervals(&intervals), vec![1, 1, 2, 4, 4]);
        assert_eq!(
            ranks_from_intervals(&[(10.0, 10.0), (10.0, 10.0), (9.0, 9.0)]),
            vec![1, 1, 3]
        );
        assert!(ranks_from_intervals(&[]).is_empty());
    }
}
