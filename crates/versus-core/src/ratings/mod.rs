//! Ratings from pairwise votes, computed as Chatbot Arena computes them: battle records and their
//! JSONL format (`battle.rs`), win/tie/loss tallies and win rates (`tally.rs`), Bradley-Terry
//! maximum-likelihood ratings (`bradley_terry.rs`, with the Arena's optimiser in `lbfgs.rs` for
//! data where the optimum does not exist), and seeded bootstrap intervals with ranks
//! (`bootstrap.rs`).
//!
//! The reference is the Arena's `compute_mle_elo` and `get_bootstrap_result`
//! (lmsys.org/blog/2023-12-07-leaderboard, lm-sys/FastChat `elo_analysis.py`);
//! `tools/vectors/ratings_vectors.py` re-types them and the tests in
//! `tests/ratings_vectors.rs` hold us to their numbers.

mod battle;
mod bootstrap;
mod bradley_terry;
mod lbfgs;
mod style_control;
mod tally;

pub use battle::{parse_battles_jsonl, Battle, BattleParseError, UnknownWinner, Winner};
pub use bootstrap::{bootstrap_interval, ranks_from_intervals};
pub use bradley_terry::{BASE, INIT_RATING, SCALE};
pub use style_control::{
    markdown_style_counts, style_controlled_fit, style_controlled_fit_of_resample,
    style_controlled_ratings, style_features, styled_battles, StyleCoefficient, StyleControlled,
    StyleCounts, StyleFit, StyledBattle, ARENA_STYLE_REGULARIZATION, STYLE_FEATURES,
};
pub use tally::{
    group_by_category, pairwise_results, pairwise_results_by_category, win_rates,
    win_rates_by_category, PairRecord, WinRate,
};

use bootstrap::IndexedBattles;

/// The bootstrap rounds `versus` uses unless told otherwise (the Arena's default).
pub const DEFAULT_BOOTSTRAP_ROUNDS: usize = 1000;

/// A model's place on the leaderboard.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Rating {
    pub model: String,
    /// The Bradley-Terry rating fitted to all battles (the Arena's `elo_rating_final`).
    pub rating: f64,
    /// The 2.5% quantile of the bootstrap ratings; equal to `rating` without bootstrap rounds.
    pub lower: f64,
    /// The 97.5% quantile of the bootstrap ratings; equal to `rating` without bootstrap rounds.
    pub upper: f64,
    /// 1 + the number of models whose `lower` is above this model's `upper`.
    pub rank: usize,
    pub battles: usize,
    /// Wins plus half the ties, over battles.
    pub win_rate: f64,
}

/// Bradley-Terry ratings on the Arena's scale (400 points per factor of 10 in the odds, each
/// group of models that played each other centred on 1000), best first. A model that never
/// lost gets the finite rating the Arena's optimiser stops at; see `has_finite_mle`.
pub fn bradley_terry(battles: &[Battle]) -> Vec<(String, f64)> {
    let index = IndexedBattles::new(battles);
    let ratings = index.fit(0..index.len());
    sorted_ratings(&index, ratings)
}

/// The ratings of one bootstrap resample: the battles at `resample` (positions in `battles`,
/// repeats allowed, positions past the end ignored), fitted exactly as each bootstrap round is.
/// Models missing from the resample are left out. Best first.
pub fn ratings_of_resample(battles: &[Battle], resample: &[usize]) -> Vec<(String, f64)> {
    let index = IndexedBattles::new(battles);
    let ratings = index.fit(resample.iter().copied());
    sorted_ratings(&index, ratings)
}

/// Whether the battles determine finite maximum-likelihood ratings: false when, among models
/// that played each other, some set of models never lost (nor tied) against the rest. The
/// ratings are then where the Arena's optimiser stopped, and only their order means anything.
pub fn has_finite_mle(battles: &[Battle]) -> bool {
    let index = IndexedBattles::new(battles);
    index.has_finite_mle()
}

/// A leaderboard from fitted `ratings` (by model index; `None` for a model the fit left out),
/// the same fit on each bootstrap round, and each model's record: 95% intervals from the rounds
/// (a model missing from a round is left out of it), ranks from the intervals, best rating
/// first (ties by name). Plain and style-controlled ratings both end here.
pub(crate) fn leaderboard(
    models: &[String],
    ratings: &[Option<f64>],
    rounds: &[&[Option<f64>]],
    records: &[WinRate],
) -> Vec<Rating> {
    let mut board: Vec<Rating> = models
        .iter()
        .enumerate()
        .filter_map(|(model, name)| {
            let rating = ratings[model]?;
            let samples: Vec<f64> = rounds.iter().filter_map(|round| round[model]).collect();
            let (lower, upper) = bootstrap_interval(&samples).unwrap_or((rating, rating));
            let record = records.iter().find(|record| &record.model == name);
            Some(Rating {
                model: name.clone(),
                rating,
                lower,
                upper,
                rank: 0,
                battles: record.map_or(0, |record| record.battles),
                win_rate: record.map_or(0.0, |record| record.win_rate),
            })
        })
        .collect();
    let intervals: Vec<(f64, f64)> = board.iter().map(|row| (row.lower, row.upper)).collect();
    for (row, rank) in board.iter_mut().zip(ranks_from_intervals(&intervals)) {
        row.rank = rank;
    }
    board.sort_by(|x, y| {
        y.rating
            .total_cmp(&x.rating)
            .then_with(|| x.model.cmp(&y.model))
    });
    board
}

/// The leaderboard: Bradley-Terry ratings, 95% bootstrap intervals from `rounds` resamples drawn
/// from `seed` (the same seed gives the same intervals), ranks from the intervals, battle counts
/// and win rates. Best rating first (ties by name).
pub fn ratings_with_intervals(battles: &[Battle], rounds: usize, seed: u64) -> Vec<Rating> {
    let index = IndexedBattles::new(battles);
    let ratings = index.fit(0..index.len());
    let rounds_table = index.bootstrap(rounds, seed);
    let records = win_rates(battles);
    let rounds: Vec<&[Option<f64>]> = rounds_table.iter().map(Vec::as_slice).collect();
    leaderboard(&index.models, &ratings, &rounds, &records)
}

fn sorted_ratings(index: &IndexedBattles, ratings: Vec<Option<f64>>) -> Vec<(String, f64)> {
    let mut named: Vec<(String, f64)> = index
        .models
        .iter()
        .zip(ratings)
        .filter_map(|(model, rating)| Some((model.clone(), rating?)))
        .collect();
    named.sort_by(|x, y| y.1.total_cmp(&x.1).then_with(|| x.0.cmp(&y.0)));
    named
}

#[cfg(test)]
mod tests {
    use super::*;

    fn battles(results: &[(&str, &str, Winner)]) -> Vec<Battle> {
        results
            .iter()
            .map(|&(a, b, winner)| Battle::new(a, b, winner))
            .collect()
    }

    /// 3 models, everyone beat everyone at least once.
    fn league() -> Vec<Battle> {
        let mut log = Vec::new();
        for _ in 0..6 {
            log.extend(battles(&[
                ("a", "b", Winner::ModelA),
                ("b", "c", Winner::ModelA),
                ("c", "a", Winner::ModelB),
                ("a", "c", Winner::Tie),
            ]));
        }
        log.extend(battles(&[
            ("b", "a", Winner::ModelA),
            ("c", "b", Winner::ModelA),
            ("c", "a", Winner::ModelA),
            ("b", "c", Winner::TieBothBad),
        ]));
        log
    }

    #[test]
    fn ratings_are_ordered_and_centred() {
        let ratings = bradley_terry(&league());
        let names: Vec<&str> = ratings.iter().map(|(model, _)| model.as_str()).collect();
        assert_eq!(names, vec!["a", "b", "c"]);
        let mean = ratings.iter().map(|(_, rating)| rating).sum::<f64>() / 3.0;
        assert!((mean - INIT_RATING).abs() < 1e-9);
        assert!(has_finite_mle(&league()));
        assert!(bradley_terry(&[]).is_empty());
    }

    #[test]
    fn self_battles_are_ignored() {
        let mut log = league();
        log.push(Battle::new("a", "a", Winner::ModelA));
        log.push(Battle::new("z", "z", Winner::Tie));
        assert_eq!(bradley_terry(&log), bradley_terry(&league()));
    }

    #[test]
    fn same_seed_same_intervals_and_other_seeds_differ() {
        let first = ratings_with_intervals(&league(), 40, 42);
        let again = ratings_with_intervals(&league(), 40, 42);
        let other = ratings_with_intervals(&league(), 40, 43);
        assert_eq!(first, again);
        assert_ne!(first, other);
        for row in &first {
            assert!(row.lower <= row.upper, "{row:?}");
            assert!(row.lower < row.rating + 200.0 && row.upper > row.rating - 200.0);
        }
        let ratings: Vec<(String, f64)> = first
            .iter()
            .map(|row| (row.model.clone(), row.rating))
            .collect();
        assert_eq!(ratings, bradley_terry(&league()));
        let a = &first[0];
        // a: 12 wins, 2 losses and 6 ties.
        assert_eq!((a.model.as_str(), a.battles), ("a", 20));
        assert!((a.win_rate - 0.75).abs() < 1e-12);
    }

    #[test]
    fn without_rounds_the_interval_is_the_rating() {
        let board = ratings_with_intervals(&league(), 0, 1);
        for row in &board {
            assert_eq!((row.lower, row.upper), (row.rating, row.rating));
        }
        let ranks: Vec<usize> = board.iter().map(|row| row.rank).collect();
        assert_eq!(ranks, vec![1, 2, 3]);
    }

    #[test]
    fn resample_positions_select_battles() {
        let log = league();
        let everything: Vec<usize> = (0..log.len()).collect();
        assert_eq!(ratings_of_resample(&log, &everything), bradley_terry(&log));
        let doubled: Vec<usize> = everything.iter().chain(&everything).copied().collect();
        let twice = ratings_of_resample(&log, &doubled);
        for ((model, once), (same, doubled)) in bradley_terry(&log).iter().zip(&twice) {
            assert_eq!(model, same);
            assert!((once - doubled).abs() < 1e-9);
        }
        let only_ab = ratings_of_resample(&log, &[0, 24, 999]);
        assert_eq!(only_ab.len(), 2);
        assert!((only_ab[0].1 + only_ab[1].1 - 2.0 * INIT_RATING).abs() < 1e-9);
    }

    #[test]
    fn a_model_that_never_loses_is_flagged_and_finite() {
        let mut log = league();
        for opponent in ["a", "b", "c"] {
            log.push(Battle::new("champ", opponent, Winner::ModelA));
            log.push(Battle::new(opponent, "champ", Winner::ModelB));
        }
        assert!(!has_finite_mle(&log));
        let ratings = bradley_terry(&log);
        assert_eq!(ratings[0].0, "champ");
        assert!(ratings.iter().all(|(_, rating)| rating.is_finite()));
    }
}
