//! Counting battles: wins, ties and losses per pair of models and per model, win rates with a
//! tie worth half a win, and the same split by category.

use std::collections::BTreeMap;

use super::battle::{Battle, Winner};

/// The record between two models, `a` before `b` in name order (whichever was shown first).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PairRecord {
    pub a: String,
    pub b: String,
    pub wins_a: usize,
    pub wins_b: usize,
    /// Both kinds of tie.
    pub ties: usize,
}

impl PairRecord {
    pub fn battles(&self) -> usize {
        self.wins_a + self.wins_b + self.ties
    }
}

/// One model's record against all others.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct WinRate {
    pub model: String,
    /// `(wins + ties / 2) / battles`.
    pub win_rate: f64,
    pub battles: usize,
    pub wins: usize,
    pub losses: usize,
    /// Both kinds of tie.
    pub ties: usize,
}

/// Wins and ties for every pair of models that met, sorted by (`a`, `b`). A battle of a model
/// against itself (which `parse_battles_jsonl` rejects) is not counted.
pub fn pairwise_results(battles: &[Battle]) -> Vec<PairRecord> {
    let mut pairs: BTreeMap<(&str, &str), PairRecord> = BTreeMap::new();
    for battle in battles {
        let (first, second) = (battle.model_a.as_str(), battle.model_b.as_str());
        if first == second {
            continue;
        }
        let flipped = second < first;
        let key = if flipped {
            (second, first)
        } else {
            (first, second)
        };
        let record = pairs.entry(key).or_insert_with(|| PairRecord {
            a: key.0.to_string(),
            b: key.1.to_string(),
            wins_a: 0,
            wins_b: 0,
            ties: 0,
        });
        match (battle.winner, flipped) {
            (Winner::ModelA, false) | (Winner::ModelB, true) => record.wins_a += 1,
            (Winner::ModelB, false) | (Winner::ModelA, true) => record.wins_b += 1,
            (Winner::Tie | Winner::TieBothBad, _) => record.ties += 1,
        }
    }
    pairs.into_values().collect()
}

/// Every model's record and win rate (a tie counts half), best win rate first, then by name.
/// A battle of a model against itself is not counted.
pub fn win_rates(battles: &[Battle]) -> Vec<WinRate> {
    let mut models: BTreeMap<&str, WinRate> = BTreeMap::new();
    for battle in battles {
        if battle.model_a == battle.model_b {
            continue;
        }
        let (outcome_a, outcome_b) = match battle.winner {
            Winner::ModelA => (Outcome::Win, Outcome::Loss),
            Winner::ModelB => (Outcome::Loss, Outcome::Win),
            Winner::Tie | Winner::TieBothBad => (Outcome::Tie, Outcome::Tie),
        };
        record(&mut models, &battle.model_a, outcome_a);
        record(&mut models, &battle.model_b, outcome_b);
    }
    let mut rates: Vec<WinRate> = models
        .into_values()
        .map(|mut rate| {
            rate.win_rate = (rate.wins as f64 + 0.5 * rate.ties as f64) / rate.battles as f64;
            rate
        })
        .collect();
    rates.sort_by(|x, y| {
        y.win_rate
            .total_cmp(&x.win_rate)
            .then_with(|| x.model.cmp(&y.model))
    });
    rates
}

fn record<'a>(models: &mut BTreeMap<&'a str, WinRate>, model: &'a str, outcome: Outcome) {
    let entry = models.entry(model).or_insert_with(|| WinRate {
        model: model.to_string(),
        win_rate: 0.0,
        battles: 0,
        wins: 0,
        losses: 0,
        ties: 0,
    });
    entry.battles += 1;
    match outcome {
        Outcome::Win => entry.wins += 1,
        Outcome::Loss => entry.losses += 1,
        Outcome::Tie => entry.ties += 1,
    }
}

#[derive(Clone, Copy)]
enum Outcome {
    Win,
    Loss,
    Tie,
}

/// Battles split by category; `None` holds the battles that have none. Keys are in order, `None`
/// first.
pub fn group_by_category(battles: &[Battle]) -> BTreeMap<Option<String>, Vec<Battle>> {
    let mut groups: BTreeMap<Option<String>, Vec<Battle>> = BTreeMap::new();
    for battle in battles {
        groups
            .entry(battle.category.clone())
            .or_default()
            .push(battle.clone());
    }
    groups
}

/// `pairwise_results` for each category (see `group_by_category`).
pub fn pairwise_results_by_category(
    battles: &[Battle],
) -> BTreeMap<Option<String>, Vec<PairRecord>> {
    group_by_category(battles)
        .into_iter()
        .map(|(category, group)| (category, pairwise_results(&group)))
        .collect()
}

/// `win_rates` for each category (see `group_by_category`).
pub fn win_rates_by_category(battles: &[Battle]) -> BTreeMap<Option<String>, Vec<WinRate>> {
    group_by_category(battles)
        .into_iter()
        .map(|(category, group)| (category, win_rates(&group)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn battle(a: &str, b: &str, winner: Winner, category: Option<&str>) -> Battle {
        Battle {
            category: category.map(str::to_string),
            ..Battle::new(a, b, winner)
        }
    }

    fn sample() -> Vec<Battle> {
        vec![
            battle("y", "x", Winner::ModelA, Some("code")),
            battle("x", "y", Winner::ModelA, None),
            battle("x", "y", Winner::Tie, Some("code")),
            battle("y", "x", Winner::TieBothBad, None),
            battle("x", "z", Winner::ModelB, Some("prose")),
            battle("z", "x", Winner::ModelB, None),
            battle("z", "z", Winner::ModelA, None),
        ]
    }

    #[test]
    fn pairs_are_oriented_by_name_whoever_was_shown_first() {
        let pairs = pairwise_results(&sample());
        assert_eq!(
            pairs,
            vec![
                PairRecord {
                    a: "x".into(),
                    b: "y".into(),
                    wins_a: 1,
                    wins_b: 1,
                    ties: 2
                },
                PairRecord {
                    a: "x".into(),
                    b: "z".into(),
                    wins_a: 1,
                    wins_b: 1,
                    ties: 0
                },
            ]
        );
        assert_eq!(pairs[0].battles(), 4);
    }

    #[test]
    fn win_rates_count_ties_half_and_skip_self_battles() {
        let rates = win_rates(&sample());
        let summary: Vec<(&str, f64, usize, usize, usize, usize)> = rates
            .iter()
            .map(|r| {
                (
                    r.model.as_str(),
                    r.win_rate,
                    r.battles,
                    r.wins,
                    r.losses,
                    r.ties,
                )
            })
            .collect();
        // x: 2 wins, 2 losses, 2 ties of 6; y: 1-1-2 of 4; z: 1-1-0 of 2; all exactly 0.5, so
        // the order falls back to names.
        assert_eq!(
            summary,
            vec![
                ("x", 0.5, 6, 2, 2, 2),
                ("y", 0.5, 4, 1, 1, 2),
                ("z", 0.5, 2, 1, 1, 0),
            ]
        );
        let lopsided = [
            battle("a", "b", Winner::ModelA, None),
            battle("a", "b", Winner::Tie, None),
            battle("c", "a", Winner::ModelB, None),
        ];
        let rates = win_rates(&lopsided);
        assert_eq!(rates[0].model, "a");
        assert!((rates[0].win_rate - 2.5 / 3.0).abs() < 1e-15);
        assert_eq!(rates[1].model, "b");
        assert!((rates[1].win_rate - 0.25).abs() < 1e-15);
        assert_eq!((rates[2].model.as_str(), rates[2].win_rate), ("c", 0.0));
        assert!(win_rates(&[]).is_empty());
    }

    #[test]
    fn categories_split_the_counts() {
        let by_category = win_rates_by_category(&sample());
        let keys: Vec<Option<&str>> = by_category.keys().map(Option::as_deref).collect();
        assert_eq!(keys, vec![None, Some("code"), Some("prose")]);
        let code = &by_category[&Some("code".to_string())];
        assert_eq!((code[0].model.as_str(), code[0].win_rate), ("y", 0.75));
        assert_eq!((code[1].model.as_str(), code[1].win_rate), ("x", 0.25));
        let pairs = pairwise_results_by_category(&sample());
        let prose = &pairs[&Some("prose".to_string())];
        assert_eq!(
            (prose[0].a.as_str(), prose[0].wins_a, prose[0].wins_b),
            ("x", 0, 1)
        );
        assert_eq!(pairs[&None].len(), 2);
    }
}
