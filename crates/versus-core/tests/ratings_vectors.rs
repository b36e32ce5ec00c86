//! Ratings against the Chatbot Arena reference: `tests/vectors/ratings.json`, written by
//! `tools/vectors/ratings_vectors.py` from the Arena's own `compute_mle_elo` (sklearn lbfgs).
//!
//! Tolerances, in rating points:
//! - Where the maximum-likelihood optimum exists we solve it exactly, and compare with the
//!   reference solved to the optimum (`converged`: the same design and weights, newton-cg to a
//!   1e-12 gradient) within `AT_OPTIMUM`. The Arena's published numbers (`arena`) stop where
//!   lbfgs's gradient falls below tol=1e-6, a few 1e-4 points short; we hold those to
//!   `ARENA_LBFGS_STOP`.
//! - Where it does not (a model never loses), the Arena's numbers are where its optimiser
//!   stopped. We replay that optimiser, so the remaining differences are rounding (the reference
//!   sums one loss term per row, we sum per pair) carried through ~20 iterations, observed at
//!   2e-8 points; `SEPARATED` leaves room for other platforms' rounding.

use std::collections::BTreeMap;
use std::sync::OnceLock;
use std::time::Instant;

use serde::Deserialize;
use versus_core::ratings::{
    bootstrap_interval, bradley_terry, has_finite_mle, parse_battles_jsonl, ranks_from_intervals,
    ratings_of_resample, ratings_with_intervals, Battle,
};

const AT_OPTIMUM: f64 = 1e-6;
const ARENA_LBFGS_STOP: f64 = 1e-3;
const SEPARATED: f64 = 1e-5;
/// pandas' quantiles against ours: the same formula, rounding apart.
const QUANTILE: f64 = 1e-9;

type Table = BTreeMap<String, f64>;

#[derive(Deserialize)]
struct Vectors {
    packages: BTreeMap<String, String>,
    cases: Vec<Case>,
    quantiles: Vec<QuantileCase>,
}

#[derive(Deserialize)]
struct Case {
    name: String,
    mle_exists: bool,
    battles: Vec<Battle>,
    arena: Table,
    converged: Option<Table>,
    resamples: Vec<Resample>,
}

#[derive(Deserialize)]
struct Resample {
    indices: Vec<usize>,
    arena: Table,
    converged: Option<Table>,
}

#[derive(Deserialize)]
struct QuantileCase {
    name: String,
    rounds: Vec<BTreeMap<String, Option<f64>>>,
    lower: Table,
    upper: Table,
    rank: BTreeMap<String, usize>,
}

fn vectors() -> &'static Vectors {
    static VECTORS: OnceLock<Vectors> = OnceLock::new();
    VECTORS.get_or_init(|| {
        serde_json::from_str(include_str!("vectors/ratings.json")).expect("ratings.json parses")
    })
}

fn case(name: &str) -> &'static Case {
    vectors()
        .cases
        .iter()
        .find(|case| case.name == name)
        .unwrap_or_else(|| panic!("no case {name} in ratings.json"))
}

/// The largest difference between our ratings and a reference table; they must name the same
/// models.
fn largest_difference(ours: &[(String, f64)], reference: &Table, context: &str) -> f64 {
    let names: Vec<&String> = ours.iter().map(|(model, _)| model).collect();
    let expected: Vec<&String> = reference.keys().collect();
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(sorted, expected, "{context}: models differ");
    ours.iter()
        .map(|(model, rating)| (rating - reference[model]).abs())
        .fold(0.0, f64::max)
}

/// Checks `ours` against a reference fit, with the tolerance that applies to it.
fn check_fit(
    ours: &[(String, f64)],
    mle_exists: bool,
    arena: &Table,
    converged: Option<&Table>,
    context: &str,
) {
    let versus_arena = largest_difference(ours, arena, context);
    if mle_exists {
        let converged = converged.unwrap_or_else(|| panic!("{context}: no converged reference"));
        let versus_optimum = largest_difference(ours, converged, context);
        eprintln!(
            "{context}: max diff {versus_optimum:.2e} vs optimum, {versus_arena:.2e} vs arena"
        );
        assert!(
            versus_optimum <= AT_OPTIMUM,
            "{context}: {versus_optimum} from the optimum"
        );
        assert!(
            versus_arena <= ARENA_LBFGS_STOP,
            "{context}: {versus_arena} from the Arena"
        );
    } else {
        eprintln!("{context}: max diff {versus_arena:.2e} vs arena (no optimum)");
        assert!(
            versus_arena <= SEPARATED,
            "{context}: {versus_arena} from the Arena"
        );
    }
    let ordered = ours.windows(2).all(|pair| pair[0].1 >= pair[1].1);
    assert!(ordered, "{context}: not best first");
}

/// The full-data fit of a case matches the reference.
fn mle_matches_reference(name: &str) {
    let case = case(name);
    assert_eq!(has_finite_mle(&case.battles), case.mle_exists, "{name}");
    let ours = bradley_terry(&case.battles);
    check_fit(
        &ours,
        case.mle_exists,
        &case.arena,
        case.converged.as_ref(),
        name,
    );
}

/// Each listed bootstrap resample of a case, fitted by the bootstrap's own code path, matches the
/// reference fit of the same resample.
fn resamples_match_reference(name: &str) {
    let case = case(name);
    assert!(!case.resamples.is_empty(), "{name} lists no resamples");
    for (number, resample) in case.resamples.iter().enumerate() {
        let ours = ratings_of_resample(&case.battles, &resample.indices);
        check_fit(
            &ours,
            case.mle_exists,
            &resample.arena,
            resample.converged.as_ref(),
            &format!("{name} resample {number}"),
        );
    }
}

/// Quantiles and ranks from a table of bootstrap rounds match pandas and the Arena's rank loop.
fn quantiles_and_ranks_match_reference(name: &str) {
    let table = vectors()
        .quantiles
        .iter()
        .find(|table| table.name == name)
        .unwrap_or_else(|| panic!("no quantile case {name}"));
    let models: Vec<&String> = table.lower.keys().collect();
    let mut intervals = Vec::new();
    for model in &models {
        let samples: Vec<f64> = table
            .rounds
            .iter()
            .filter_map(|round| round.get(*model).copied().flatten())
            .collect();
        let (lower, upper) = bootstrap_interval(&samples).expect("samples");
        assert!(
            (lower - table.lower[*model]).abs() <= QUANTILE,
            "{model} lower"
        );
        assert!(
            (upper - table.upper[*model]).abs() <= QUANTILE,
            "{model} upper"
        );
        intervals.push((lower, upper));
    }
    let ranks = ranks_from_intervals(&intervals);
    for (model, rank) in models.iter().zip(ranks) {
        assert_eq!(rank, table.rank[*model], "{model} rank");
    }
}

#[test]
fn five_models_2000() {
    mle_matches_reference("five_models_2000");
}

#[test]
fn five_models_500() {
    mle_matches_reference("five_models_500");
}

#[test]
fn four_models_no_ties() {
    mle_matches_reference("four_models_no_ties");
}

#[test]
fn three_models_small() {
    mle_matches_reference("three_models_small");
}

#[test]
fn unconnected_pair() {
    mle_matches_reference("unconnected_pair");
}

#[test]
fn never_loses() {
    mle_matches_reference("never_loses");
}

#[test]
fn unbeaten_pair() {
    mle_matches_reference("unbeaten_pair");
}

#[test]
fn twelve_models_2000() {
    mle_matches_reference("twelve_models_2000");
}

#[test]
fn never_loses_resamples() {
    resamples_match_reference("never_loses");
}

#[test]
fn five_models_500_resamples() {
    resamples_match_reference("five_models_500");
}

#[test]
fn three_models_small_resamples() {
    resamples_match_reference("three_models_small");
}

#[test]
fn bootstrap_table() {
    quantiles_and_ranks_match_reference("bootstrap_table");
}

#[test]
fn vectors_name_their_generator_versions() {
    let packages = &vectors().packages;
    for package in ["numpy", "pandas", "scikit-learn", "scipy"] {
        assert!(packages.contains_key(package), "{package}");
    }
}

#[test]
fn battles_round_trip_through_jsonl() {
    let battles = &case("five_models_500").battles;
    let mut text = String::new();
    for battle in battles {
        text.push_str(&serde_json::to_string(battle).expect("serialises"));
        text.push('\n');
    }
    assert_eq!(&parse_battles_jsonl(&text).expect("parses"), battles);
}

#[test]
fn bootstrap_brackets_the_rating_and_is_reproducible() {
    let battles = &case("five_models_500").battles;
    // 1000 rounds as `versus` runs them in release builds; fewer in debug builds to keep the
    // test quick.
    let rounds = if cfg!(debug_assertions) { 60 } else { 1000 };
    let started = Instant::now();
    let board = ratings_with_intervals(battles, rounds, 2024);
    eprintln!(
        "bootstrap: {rounds} rounds of {} battles in {:?}",
        battles.len(),
        started.elapsed()
    );
    assert_eq!(board, ratings_with_intervals(battles, rounds, 2024));
    let ratings: Vec<(String, f64)> = board
        .iter()
        .map(|row| (row.model.clone(), row.rating))
        .collect();
    assert_eq!(ratings, bradley_terry(battles));
    for row in &board {
        assert!(row.lower < row.rating && row.rating < row.upper, "{row:?}");
        // 500 battles among 5 models: each model's interval spans tens of points.
        assert!(row.upper - row.lower < 150.0, "{row:?}");
    }
    // The weakest model (hidden strength 880 against 1000 and more) is below everyone else's
    // interval.
    let last = board.last().expect("five models");
    assert_eq!((last.model.as_str(), last.rank), ("eos", 5));
    assert_eq!(board[0].rank, 1);
}
