//! Style control as Chatbot Arena does it: Bradley-Terry with covariates for how the two answers
//! look (their length in tokens and their Markdown headers, list items and bold spans), so that a
//! model that wins by writing longer or more decorated answers is rated for what remains.
//!
//! The reference is lm-sys/FastChat `fastchat/serve/monitor/rating_systems.py` (read at commit
//! 0e6d3e4b): `preprocess_for_style`, `contextual_bt_loss_and_grad`, `fit_contextual_bt`,
//! `compute_style_control` and `compute_bootstrap_style_control`; and for the counting,
//! `count_markdown_elements` and `get_element_counts` in `add_markdown_info.py`. As there:
//!
//! - each of the four counts becomes, per battle, `(a - b) / (a + b + 1)` (`add_one=True`, the
//!   ratio applied to all four), then is standardized over all battles (mean 0, population
//!   standard deviation 1, numpy's `std`);
//! - the outcome is 1 for a model A win, 0 for a model B win and ½ for either kind of tie (the
//!   same likelihood as the plain ratings' "a win twice, a tie once for each side");
//! - the logit is `ln(10) * (r_a - r_b) + features · β`, the loss the summed log-loss plus the
//!   Arena's L2 penalty `0.25 * |θ|²` on every parameter (`reg=0.5`; the first published
//!   version, sklearn's `LogisticRegression` with its default C=1 on duplicated battles, is the
//!   same objective), minimised from zero by scipy's L-BFGS-B with `gtol=1e-6`, at most 100
//!   iterations and scipy's default `ftol`, replayed here by `lbfgs.rs`. The Arena's optimiser
//!   usually stops on `ftol`, up to a few 1e-2 rating points short of the optimum; replaying it
//!   gives the Arena's own numbers;
//! - ratings are `400 * r + 1000`; the penalty keeps each group of models that played each other
//!   centred on 1000, as the plain ratings are; the style coefficients are reported as fitted
//!   (change in log-odds per standard deviation of the normalized difference);
//! - bootstrap rounds resample battles with the covariates standardized once, over all battles.
//!
//! Where versus differs, deliberately: a covariate that is the same in every battle (no answer
//! has a header, say) gets a zero column and a zero coefficient, where the Arena's standardization
//! divides 0 by 0 and every number it returns is NaN; a battle of a model against itself is left
//! out (the Arena's logs have none); a model missing from a bootstrap resample is left out of
//! that round's quantiles, as in the plain ratings (the Arena's current code counts it at 1000);
//! there is no anchor model (the Arena shifts mixtral-8x7b-instruct-v0.1 to 1114); resamples are
//! drawn by the plain ratings' seeded generator, so the same battles and seed give the same
//! resamples in both. Token counts come from the caller: the Arena counts every answer with one
//! tokenizer (tiktoken's gpt-3.5-turbo encoding, in `clean_battle_data.py`), which versus-core
//! does not have.
//!
//! `tools/vectors/style_control_vectors.py` re-types the Arena's code and
//! `tests/style_control_vectors.rs` holds us to its numbers.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use regex::Regex;
use serde::{Deserialize, Serialize};

use super::battle::{Battle, Winner};
use super::bootstrap::bootstrap_interval;
use super::bradley_terry::{rating_of, BASE};
use super::lbfgs;
use super::tally::win_rates;
use super::Rating;
use crate::random::Xoshiro256StarStar;

/// The covariates' names, in the order of `StyleCounts`, coefficients and the Arena's
/// `STYLE_CONTROL_ELEMENTS_V1` (answer tokens, headers, list items, bold spans).
pub const STYLE_FEATURES: [&str; 4] = ["length", "headers", "list_items", "bold"];

/// The Arena's L2 penalty (`reg=0.5` in `fit_contextual_bt`: the loss gains `reg / 2 * |θ|²`).
pub const ARENA_STYLE_REGULARIZATION: f64 = 0.5;

/// `fit_contextual_bt`'s `scipy.optimize.minimize(method="L-BFGS-B", options={"maxiter": 100,
/// "gtol": 1e-6})`, with scipy's defaults for the rest: `maxcor=10`, `maxls=20` and
/// `ftol=2.22e-9`, which L-BFGS-B receives as `factr = ftol / eps = 1e7` and applies as
/// `factr * epsmch`.
const ARENA_STYLE_SETTINGS: lbfgs::Settings = lbfgs::Settings {
    memory: 10,
    gradient_tolerance: 1e-6,
    relative_reduction: 1e7 * f64::EPSILON,
    max_iterations: 100,
    max_line_search: 20,
};

/// What style control looks at in one answer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct StyleCounts {
    /// The answer's length in tokens.
    pub tokens: u64,
    /// Markdown headers (`#` to `######` at the start of a line).
    pub headers: u64,
    /// Ordered and unordered list items.
    pub list_items: u64,
    /// Bold spans, `**...**` and `__...__`.
    pub bold: u64,
}

impl StyleCounts {
    /// The counts in `STYLE_FEATURES` order.
    pub fn as_array(&self) -> [u64; 4] {
        [self.tokens, self.headers, self.list_items, self.bold]
    }
}

/// A battle with the style of both answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StyledBattle {
    pub battle: Battle,
    pub style_a: StyleCounts,
    pub style_b: StyleCounts,
}

/// One fit: ratings best first (ties by name) and the style coefficients in `STYLE_FEATURES`
/// order.
#[derive(Debug, Clone, PartialEq)]
pub struct StyleFit {
    pub ratings: Vec<(String, f64)>,
    pub coefficients: [f64; 4],
}

/// A style coefficient with its 95% bootstrap interval (equal to the value without rounds).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StyleCoefficient {
    /// One of `STYLE_FEATURES`.
    pub feature: String,
    /// The change in log-odds of winning per standard deviation of the normalized difference.
    pub value: f64,
    pub lower: f64,
    pub upper: f64,
}

/// The style-controlled leaderboard.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StyleControlled {
    /// Best rating first (ties by name), with intervals, ranks, battle counts and win rates as
    /// `ratings_with_intervals` gives them.
    pub ratings: Vec<Rating>,
    /// The four coefficients, in `STYLE_FEATURES` order.
    pub style_coefficients: Vec<StyleCoefficient>,
    /// Battles in the fit (a model against itself does not count).
    pub battles: usize,
}

/// The Arena's counts of headers, list items and bold spans in `text` (`count_markdown_elements`
/// after `get_element_counts` removes code), with `tokens` as the length. The same regular
/// expressions, with Python's meaning of `\s` (Unicode whitespace plus U+001C..U+001F) and `\d`
/// (Unicode decimal digits), and the same quirks: code is removed by deleting, everywhere in the
/// text, each string found between a pair of ```` ``` ```` fences (the fences stay; `~~~` fences
/// are not code to it); a header is 1 to 6 `#` at the very start of a line followed by
/// whitespace; a list item is optional whitespace (which may span blank lines), then `-`, `*`,
/// `+` or digits and `.`, then whitespace, so `* * *` counts and `1)` does not; a bold span has
/// no `*` (or `_`) and no line break inside. `metrics::style::markdown_structure` counts the same
/// things by CommonMark's rules instead, for the report's style statistics.
pub fn markdown_style_counts(text: &str, tokens: u64) -> StyleCounts {
    let patterns = ArenaPatterns::get();
    let mut answer = text.to_string();
    let blocks: Vec<&str> = patterns
        .code
        .captures_iter(text)
        .filter_map(|captures| captures.get(1).map(|block| block.as_str()))
        .collect();
    for block in blocks {
        answer = answer.replace(block, "");
    }
    let count = |pattern: &Regex| pattern.find_iter(&answer).count() as u64;
    StyleCounts {
        tokens,
        headers: patterns.headers.iter().map(count).sum(),
        list_items: count(&patterns.ordered) + count(&patterns.unordered),
        bold: count(&patterns.bold_stars) + count(&patterns.bold_underscores),
    }
}

struct ArenaPatterns {
    code: Regex,
    headers: Vec<Regex>,
    ordered: Regex,
    unordered: Regex,
    bold_stars: Regex,
    bold_underscores: Regex,
}

impl ArenaPatterns {
    fn get() -> &'static ArenaPatterns {
        static PATTERNS: OnceLock<ArenaPatterns> = OnceLock::new();
        PATTERNS.get_or_init(|| {
            // Python's `\s` on str: Rust's Unicode `\s` plus the four information separators.
            const SPACE: &str = r"[\s\x1C-\x1F]";
            let compile = |pattern: &str| Regex::new(pattern).expect("a valid pattern");
            ArenaPatterns {
                code: compile(r"```([^`]*)```"),
                headers: (1..=6)
                    .map(|level| compile(&format!(r"(?m)^#{{{level}}}{SPACE}")))
                    .collect(),
                ordered: compile(&format!(r"(?m)^{SPACE}*\d+\.{SPACE}")),
                unordered: compile(&format!(r"(?m)^{SPACE}*[-*+]{SPACE}")),
                bold_stars: compile(r"\*\*[^*\n]+\*\*"),
                bold_underscores: compile(r"__[^_\n]+__"),
            }
        })
    }
}

/// The battles whose two answers have style counts in `answers` (keyed by task and model), with
/// them, and how many battles were left out: those without a task, or with an answer missing.
pub fn styled_battles(
    battles: &[Battle],
    answers: &BTreeMap<(String, String), StyleCounts>,
) -> (Vec<StyledBattle>, usize) {
    let mut styled = Vec::with_capacity(battles.len());
    for battle in battles {
        let Some(task) = &battle.task else { continue };
        let style = |model: &str| answers.get(&(task.clone(), model.to_string())).copied();
        if let (Some(style_a), Some(style_b)) = (style(&battle.model_a), style(&battle.model_b)) {
            styled.push(StyledBattle {
                battle: battle.clone(),
                style_a,
                style_b,
            });
        }
    }
    let left_out = battles.len() - styled.len();
    (styled, left_out)
}

/// The standardized covariates of each battle, as the Arena's `preprocess_for_style` computes
/// them (`None` for a battle of a model against itself, which takes no part).
pub fn style_features(battles: &[StyledBattle]) -> Vec<Option<[f64; 4]>> {
    StyleProblem::new(battles, ARENA_STYLE_REGULARIZATION)
        .rows
        .iter()
        .map(|row| row.map(|row| row.features))
        .collect()
}

/// The style-controlled fit of all battles.
pub fn style_controlled_fit(battles: &[StyledBattle]) -> StyleFit {
    let problem = StyleProblem::new(battles, ARENA_STYLE_REGULARIZATION);
    problem.named(problem.fit(0..battles.len()))
}

/// The fit of one bootstrap resample: the battles at `resample` (positions in `battles`, repeats
/// allowed, positions past the end ignored), with the covariates standardized over all
/// `battles`, fitted exactly as each bootstrap round is. Models missing from the resample are
/// left out.
pub fn style_controlled_fit_of_resample(battles: &[StyledBattle], resample: &[usize]) -> StyleFit {
    let problem = StyleProblem::new(battles, ARENA_STYLE_REGULARIZATION);
    problem.named(problem.fit(resample.iter().copied()))
}

/// The style-controlled leaderboard: ratings and style coefficients fitted to all battles, 95%
/// bootstrap intervals from `rounds` resamples drawn from `seed` (the same draws as
/// `ratings_with_intervals` makes for as many battles), ranks from the intervals, battle counts
/// and win rates.
pub fn style_controlled_ratings(
    battles: &[StyledBattle],
    rounds: usize,
    seed: u64,
) -> StyleControlled {
    let problem = StyleProblem::new(battles, ARENA_STYLE_REGULARIZATION);
    let (ratings, coefficients) = problem.fit(0..battles.len());
    let mut random = Xoshiro256StarStar::seeded(seed);
    let count = battles.len() as u64;
    let rounds_table: Vec<(Vec<Option<f64>>, [f64; 4])> = (0..rounds)
        .map(|_| {
            let resample: Vec<usize> = (0..count).map(|_| random.below(count) as usize).collect();
            problem.fit(resample)
        })
        .collect();
    let plain: Vec<Battle> = battles.iter().map(|styled| styled.battle.clone()).collect();
    let records = win_rates(&plain);
    let rounds: Vec<&[Option<f64>]> = rounds_table
        .iter()
        .map(|(round, _)| round.as_slice())
        .collect();
    let board = super::leaderboard(&problem.models, &ratings, &rounds, &records);
    let style_coefficients = STYLE_FEATURES
        .iter()
        .enumerate()
        .map(|(feature, name)| {
            let value = coefficients[feature];
            let samples: Vec<f64> = rounds_table
                .iter()
                .map(|(_, round)| round[feature])
                .collect();
            let (lower, upper) = bootstrap_interval(&samples).unwrap_or((value, value));
            StyleCoefficient {
                feature: name.to_string(),
                value,
                lower,
                upper,
            }
        })
        .collect();
    StyleControlled {
        ratings: board,
        style_coefficients,
        battles: problem.rows.iter().flatten().count(),
    }
}

/// The battles as the fit sees them: models by index (in name order), outcomes, covariates.
struct StyleProblem {
    models: Vec<String>,
    /// One entry per input battle, `None` for a model against itself.
    rows: Vec<Option<Row>>,
    regularization: f64,
}

#[derive(Debug, Clone, Copy)]
struct Row {
    model_a: usize,
    model_b: usize,
    /// Model A's share: 1, ½ or 0.
    outcome: f64,
    /// Standardized normalized differences, `STYLE_FEATURES` order.
    features: [f64; 4],
}

impl StyleProblem {
    fn new(battles: &[StyledBattle], regularization: f64) -> StyleProblem {
        let counted = |styled: &&StyledBattle| styled.battle.model_a != styled.battle.model_b;
        let mut models: Vec<String> = battles
            .iter()
            .filter(counted)
            .flat_map(|styled| [styled.battle.model_a.clone(), styled.battle.model_b.clone()])
            .collect();
        models.sort();
        models.dedup();
        let index_of = |name: &str| {
            models
                .binary_search_by(|model| model.as_str().cmp(name))
                .expect("every counted model is listed")
        };
        // (a - b) / (a + b + 1) per battle and covariate, then each column standardized.
        let differences: Vec<Option<[f64; 4]>> = battles
            .iter()
            .map(|styled| {
                counted(&styled).then(|| {
                    let (a, b) = (styled.style_a.as_array(), styled.style_b.as_array());
                    std::array::from_fn(|k| {
                        let (a, b) = (a[k] as f64, b[k] as f64);
                        (a - b) / (a + b + 1.0)
                    })
                })
            })
            .collect();
        let columns: Vec<(f64, f64)> = (0..4)
            .map(|k| standardization(differences.iter().flatten().map(|row| row[k])))
            .collect();
        let rows = battles
            .iter()
            .zip(&differences)
            .map(|(styled, difference)| {
                let difference = (*difference)?;
                Some(Row {
                    model_a: index_of(&styled.battle.model_a),
                    model_b: index_of(&styled.battle.model_b),
                    outcome: match styled.battle.winner {
                        Winner::ModelA => 1.0,
                        Winner::ModelB => 0.0,
                        Winner::Tie | Winner::TieBothBad => 0.5,
                    },
                    features: std::array::from_fn(|k| {
                        let (mean, deviation) = columns[k];
                        if deviation > 0.0 {
                            (difference[k] - mean) / deviation
                        } else {
                            0.0
                        }
                    }),
                })
            })
            .collect();
        StyleProblem {
            models,
            rows,
            regularization,
        }
    }

    /// Fits the battles at `resample` (input positions, repeats allowed, past the end ignored):
    /// each model's rating (`None` for a model not in the resample) and the coefficients. Every
    /// model keeps its parameter, as in the Arena; one that is not in the resample has a zero
    /// gradient throughout, so it neither moves nor changes the optimiser's path.
    fn fit(&self, resample: impl IntoIterator<Item = usize>) -> (Vec<Option<f64>>, [f64; 4]) {
        let mut weights = vec![0.0; self.rows.len()];
        for position in resample {
            if let Some(weight) = weights.get_mut(position) {
                *weight += 1.0;
            }
        }
        let active: Vec<(Row, f64)> = self
            .rows
            .iter()
            .zip(&weights)
            .filter_map(|(row, &weight)| match row {
                Some(row) if weight > 0.0 => Some((*row, weight)),
                _ => None,
            })
            .collect();
        let models = self.models.len();
        let log_base = BASE.ln();
        let regularization = self.regularization;
        let objective = |parameters: &[f64], gradient: &mut [f64]| -> f64 {
            let mut loss = 0.5 * regularization * dot(parameters, parameters);
            for (entry, parameter) in gradient.iter_mut().zip(parameters) {
                *entry = regularization * parameter;
            }
            let coefficients = &parameters[models..];
            for (row, weight) in &active {
                let logit = log_base * (parameters[row.model_a] - parameters[row.model_b])
                    + dot(&row.features, coefficients);
                loss += weight
                    * (row.outcome * softplus(-logit) + (1.0 - row.outcome) * softplus(logit));
                let slope = weight * (sigmoid(logit) - row.outcome);
                gradient[row.model_a] += log_base * slope;
                gradient[row.model_b] -= log_base * slope;
                for (entry, feature) in gradient[models..].iter_mut().zip(&row.features) {
                    *entry += slope * feature;
                }
            }
            loss
        };
        let parameters = lbfgs::minimize(
            objective,
            vec![0.0; models + STYLE_FEATURES.len()],
            &ARENA_STYLE_SETTINGS,
        );
        let mut present = vec![false; models];
        for (row, _) in &active {
            present[row.model_a] = true;
            present[row.model_b] = true;
        }
        let ratings = present
            .iter()
            .zip(&parameters)
            .map(|(&present, &parameter)| present.then(|| rating_of(parameter)))
            .collect();
        let coefficients = std::array::from_fn(|k| parameters[models + k]);
        (ratings, coefficients)
    }

    fn named(&self, (ratings, coefficients): (Vec<Option<f64>>, [f64; 4])) -> StyleFit {
        let mut named: Vec<(String, f64)> = self
            .models
            .iter()
            .zip(ratings)
            .filter_map(|(model, rating)| Some((model.clone(), rating?)))
            .collect();
        named.sort_by(|x, y| y.1.total_cmp(&x.1).then_with(|| x.0.cmp(&y.0)));
        StyleFit {
            ratings: named,
            coefficients,
        }
    }
}

/// numpy's `mean` and `std` (population) of a column; a deviation of 0 when every value is the
/// same, which makes the column zero (the Arena's 0 / 0).
fn standardization(values: impl Iterator<Item = f64> + Clone) -> (f64, f64) {
    let count = values.clone().count();
    if count == 0 {
        return (0.0, 0.0);
    }
    let mut all_equal = values.clone().map(f64::to_bits);
    let first = all_equal.next();
    if all_equal.all(|bits| Some(bits) == first) {
        return (0.0, 0.0);
    }
    let mean = values.clone().sum::<f64>() / count as f64;
    let variance = values.map(|value| (value - mean).powi(2)).sum::<f64>() / count as f64;
    (mean, variance.sqrt())
}

fn dot(x: &[f64], y: &[f64]) -> f64 {
    x.iter().zip(y).map(|(a, b)| a * b).sum()
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ratings::{bradley_terry, INIT_RATING};

    fn counts(tokens: u64, headers: u64, list_items: u64, bold: u64) -> StyleCounts {
        StyleCounts {
            tokens,
            headers,
            list_items,
            bold,
        }
    }

    fn styled(
        a: &str,
        b: &str,
        winner: Winner,
        style_a: StyleCounts,
        style_b: StyleCounts,
    ) -> StyledBattle {
        StyledBattle {
            battle: Battle::new(a, b, winner),
            style_a,
            style_b,
        }
    }

    /// 3 models, everyone beat everyone at least once, with varied styles.
    fn league(style: impl Fn(usize, &str) -> StyleCounts) -> Vec<StyledBattle> {
        let results = [
            ("a", "b", Winner::ModelA),
            ("b", "c", Winner::ModelA),
            ("c", "a", Winner::ModelB),
            ("a", "c", Winner::Tie),
            ("b", "a", Winner::ModelA),
            ("c", "b", Winner::ModelA),
            ("c", "a", Winner::ModelA),
            ("b", "c", Winner::TieBothBad),
        ];
        let mut log = Vec::new();
        for round in 0..6 {
            for (index, &(a, b, winner)) in results.iter().enumerate() {
                if round > 0 && index >= 4 {
                    continue;
                }
                let seed = round * 8 + index;
                log.push(styled(a, b, winner, style(seed, a), style(seed + 1, b)));
            }
        }
        log
    }

    fn varied(seed: usize, model: &str) -> StyleCounts {
        let bias = if model == "a" { 300 } else { 100 };
        counts(
            bias + (seed as u64 * 37) % 90,
            (seed as u64) % 3,
            (seed as u64 * 7) % 5,
            (seed as u64 * 5) % 4,
        )
    }

    #[test]
    fn without_style_and_penalty_the_fit_is_plain_bradley_terry() {
        let log = league(|_, _| StyleCounts::default());
        let plain_battles: Vec<Battle> = log.iter().map(|styled| styled.battle.clone()).collect();
        let plain = bradley_terry(&plain_battles);
        let problem = StyleProblem::new(&log, 0.0);
        assert!(problem
            .rows
            .iter()
            .flatten()
            .all(|row| row.features == [0.0; 4]));
        let fit = problem.named(problem.fit(0..log.len()));
        assert_eq!(fit.coefficients, [0.0; 4]);
        assert_eq!(fit.ratings.len(), plain.len());
        for ((model, styled), (same, plain)) in fit.ratings.iter().zip(&plain) {
            assert_eq!(model, same);
            // lbfgs stops at gtol 1e-6 on the summed loss (or ftol), Newton at the optimum.
            assert!(
                (styled - plain).abs() < 1e-3,
                "{model}: {styled} vs {plain}"
            );
        }
    }

    #[test]
    fn with_the_arenas_penalty_zero_style_is_plain_bradley_terry_shrunk_towards_1000() {
        let log = league(|_, _| counts(100, 0, 2, 1));
        let plain_battles: Vec<Battle> = log.iter().map(|styled| styled.battle.clone()).collect();
        let plain = bradley_terry(&plain_battles);
        let fit = style_controlled_fit(&log);
        assert_eq!(fit.coefficients, [0.0; 4]);
        let names: Vec<&String> = fit.ratings.iter().map(|(model, _)| model).collect();
        let plain_names: Vec<&String> = plain.iter().map(|(model, _)| model).collect();
        assert_eq!(names, plain_names);
        for ((model, styled), (_, plain)) in fit.ratings.iter().zip(&plain) {
            let (styled, plain) = (styled - INIT_RATING, plain - INIT_RATING);
            assert!(styled.abs() < plain.abs(), "{model}");
            assert!(
                styled * plain > 0.0 && styled.abs() > 0.8 * plain.abs(),
                "{model}"
            );
        }
        let mean = fit.ratings.iter().map(|(_, rating)| rating).sum::<f64>() / 3.0;
        assert!((mean - INIT_RATING).abs() < 1e-6);
    }

    #[test]
    fn covariates_are_normalized_differences_standardized() {
        let log = vec![
            styled(
                "x",
                "y",
                Winner::ModelA,
                counts(3, 0, 1, 0),
                counts(1, 0, 0, 0),
            ),
            styled(
                "y",
                "x",
                Winner::ModelB,
                counts(0, 0, 0, 0),
                counts(0, 0, 2, 0),
            ),
            styled(
                "x",
                "x",
                Winner::Tie,
                counts(50, 9, 9, 9),
                counts(0, 0, 0, 0),
            ),
        ];
        let features = style_features(&log);
        // Lengths: (3-1)/5 = 0.4 and 0/1 = 0: mean 0.2, deviation 0.2.
        let first = features[0].unwrap();
        let second = features[1].unwrap();
        assert!((first[0] - 1.0).abs() < 1e-12 && (second[0] + 1.0).abs() < 1e-12);
        // Headers never differ: a zero column, not NaN. List items: 1/2 and -2/3.
        assert_eq!((first[1], second[1]), (0.0, 0.0));
        assert!((first[2] - 1.0).abs() < 1e-12 && (second[2] + 1.0).abs() < 1e-12);
        assert_eq!(features[2], None, "a self-battle takes no part");
        let fit = style_controlled_fit(&log);
        assert!(fit.coefficients.iter().all(|value| value.is_finite()));
        assert_eq!(fit.coefficients[1], 0.0);
        assert_eq!(fit.coefficients[3], 0.0);
    }

    #[test]
    fn bootstrap_is_seeded_and_brackets_the_fit() {
        let log = league(varied);
        let first = style_controlled_ratings(&log, 30, 7);
        assert_eq!(first, style_controlled_ratings(&log, 30, 7));
        assert_ne!(first, style_controlled_ratings(&log, 30, 8));
        let fit = style_controlled_fit(&log);
        let ratings: Vec<(String, f64)> = first
            .ratings
            .iter()
            .map(|row| (row.model.clone(), row.rating))
            .collect();
        assert_eq!(ratings, fit.ratings);
        assert_eq!(first.battles, log.len());
        for (coefficient, (name, value)) in first
            .style_coefficients
            .iter()
            .zip(STYLE_FEATURES.iter().zip(fit.coefficients))
        {
            assert_eq!(
                (coefficient.feature.as_str(), coefficient.value),
                (*name, value)
            );
            assert!(coefficient.lower <= coefficient.upper);
        }
        let none = style_controlled_ratings(&log, 0, 7);
        for row in &none.ratings {
            assert_eq!((row.lower, row.upper), (row.rating, row.rating));
        }
        let a = first.ratings.iter().find(|row| row.model == "a").unwrap();
        assert_eq!(a.battles, 20);
    }

    #[test]
    fn resample_positions_select_battles() {
        let log = league(varied);
        let everything: Vec<usize> = (0..log.len()).collect();
        assert_eq!(
            style_controlled_fit_of_resample(&log, &everything),
            style_controlled_fit(&log)
        );
        let only_ab = style_controlled_fit_of_resample(&log, &[0, 4, 999]);
        assert_eq!(only_ab.ratings.len(), 2);
        assert!((only_ab.ratings[0].1 + only_ab.ratings[1].1 - 2.0 * INIT_RATING).abs() < 1e-6);
    }

    #[test]
    fn nothing_to_fit() {
        let fit = style_controlled_ratings(&[], 10, 1);
        assert!(fit.ratings.is_empty());
        assert_eq!(fit.battles, 0);
        assert!(fit.style_coefficients.iter().all(|c| c.value == 0.0));
    }

    #[test]
    fn battles_are_styled_from_their_tasks_answers() {
        let mut with_task = Battle::new("x", "y", Winner::ModelA);
        with_task.task = Some("t".into());
        let mut missing = with_task.clone();
        missing.model_b = "z".into();
        let answers = BTreeMap::from([
            (("t".to_string(), "x".to_string()), counts(10, 1, 0, 0)),
            (("t".to_string(), "y".to_string()), counts(20, 0, 3, 1)),
        ]);
        let (styled, left_out) = styled_battles(
            &[
                with_task.clone(),
                missing,
                Battle::new("x", "y", Winner::Tie),
            ],
            &answers,
        );
        assert_eq!(left_out, 2);
        assert_eq!(styled.len(), 1);
        assert_eq!(styled[0].battle, with_task);
        assert_eq!(
            (styled[0].style_a.tokens, styled[0].style_b.list_items),
            (10, 3)
        );
    }

    #[test]
    fn markdown_counts_follow_the_arenas_patterns() {
        let text = "## Key ideas\n\n1. **Data**: examples.\n2. **Model**: a function.\n\n\
                    - Supervised\n- Unsupervised\n\n```python\n# comment\n- not an item\n```\n";
        assert_eq!(markdown_style_counts(text, 42), counts(42, 1, 4, 2));
        // `1)` is no item, `* * *` is one, an indented `#` is no header.
        assert_eq!(
            markdown_style_counts("1) one\n* * *\n  # no\n#\tyes", 0),
            counts(0, 1, 1, 0)
        );
        // The text between fences is removed wherever it occurs.
        assert_eq!(markdown_style_counts("```x``` and **x**", 0).bold, 0);
    }
}
