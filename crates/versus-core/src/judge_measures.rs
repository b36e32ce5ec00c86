//! The judge, measured: the LLM judge's own biases, as evidence beside its verdicts. For each
//! judge of a run, from its pairwise judgements (each asked in both orders) and the run's votes:
//!
//! - **position**: how often the answer shown first (position A) wins a single-order verdict,
//!   with a two-sided sign test against ½ ([`position_bias`]); and how often the two orders agree
//!   ([`consistency`]);
//! - **length**: how often the longer answer wins a decided battle, with a sign test against ½,
//!   and Pearson's correlation of the length difference (a − b) with the outcome (+1 a won, −1 b
//!   won) ([`length_bias`]);
//! - **self-preference**, when the judge is also a contestant: its win rate as judged by itself
//!   against its win rate as judged by other judges and by votes ([`self_preference`]);
//! - **agreement with human votes** on the same task and pair of models: raw agreement and
//!   Cohen's kappa over the three outcomes ([`human_agreement`], [`cohen_kappa`]).
//!
//! Pure functions on typed inputs ([`PairObservation`], one per pairwise judgement, and
//! [`Vote`]); reading a judgement's stored detail into a [`PairObservation`] is the report's job.
//! Every figure that is undefined (no observations, no spread) is `None`; nothing here panics.
//! The rules are written out in docs/verdicts.md, "The judge, measured".

use serde::Serialize;

use crate::ratings::Winner;
use crate::significance::sign_test;
use crate::{JudgeVerdict, Vote};

/// What one order's verdict said about the answer shown first (in position A).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FirstShown {
    /// The judge preferred the answer it was shown first (`[[A]]`).
    Won,
    /// It preferred the answer shown second (`[[B]]`).
    Lost,
    /// It called a tie.
    Tie,
}

/// A battle's outcome in three classes, from `model_a`'s side: the classes Cohen's kappa is
/// computed over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    ModelA,
    ModelB,
    Tie,
}

impl Outcome {
    /// A pairwise verdict's outcome: an inconsistent pair counts as a tie (as in every rating);
    /// `None` for errors and ratings, which count for nobody.
    pub fn from_verdict(verdict: JudgeVerdict) -> Option<Outcome> {
        match verdict {
            JudgeVerdict::ModelA => Some(Outcome::ModelA),
            JudgeVerdict::ModelB => Some(Outcome::ModelB),
            JudgeVerdict::Tie | JudgeVerdict::Inconsistent => Some(Outcome::Tie),
            JudgeVerdict::Rated | JudgeVerdict::Error => None,
        }
    }

    /// A vote's outcome; "both bad" is a tie.
    pub fn from_winner(winner: Winner) -> Outcome {
        match winner {
            Winner::ModelA => Outcome::ModelA,
            Winner::ModelB => Outcome::ModelB,
            Winner::Tie | Winner::TieBothBad => Outcome::Tie,
        }
    }

    /// The same outcome seen with the two models swapped.
    pub fn swapped(self) -> Outcome {
        match self {
            Outcome::ModelA => Outcome::ModelB,
            Outcome::ModelB => Outcome::ModelA,
            Outcome::Tie => Outcome::Tie,
        }
    }
}

/// One pairwise judgement, as the measures read it.
#[derive(Debug, Clone, PartialEq)]
pub struct PairObservation {
    pub task: String,
    /// The judge's label (a model id of the suite when the judge is one of its models).
    pub judge: String,
    pub model_a: String,
    pub model_b: String,
    /// The verdict over both orders.
    pub verdict: JudgeVerdict,
    /// The order with `model_a`'s answer shown first; `None` when it is not known (the call
    /// failed, or the stored detail does not say).
    pub a_first: Option<FirstShown>,
    /// The swapped order, `model_b`'s answer shown first.
    pub b_first: Option<FirstShown>,
    /// `model_a`'s answer's length (words); `None` when not known.
    pub length_a: Option<f64>,
    pub length_b: Option<f64>,
}

/// A share of `n` with its two-sided sign test against ½.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct SignShare {
    /// The outcomes counted: `hits` plus the others (ties are never counted).
    pub n: usize,
    pub hits: usize,
    /// `hits / n`; `None` when `n` is 0.
    pub share: Option<f64>,
    /// `scipy.stats.binomtest(hits, n, 0.5).pvalue`; `None` when `n` is 0.
    pub p_value: Option<f64>,
}

impl SignShare {
    /// `hits` against `misses`.
    pub fn new(hits: usize, misses: usize) -> SignShare {
        let n = hits + misses;
        SignShare {
            n,
            hits,
            share: (n > 0).then(|| hits as f64 / n as f64),
            p_value: (n > 0).then(|| sign_test(hits, misses)),
        }
    }
}

/// How often the two orders of a pair agree.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Consistency {
    /// Pairwise judgements.
    pub pairs: usize,
    /// The same verdict in both orders (a win or a tie).
    pub consistent: usize,
    /// Different verdicts across the orders (counted as ties).
    pub inconsistent: usize,
    /// A call failed or gave no verdict (counted for nobody).
    pub errors: usize,
    /// `consistent / (consistent + inconsistent)`; `None` when both are 0.
    pub share: Option<f64>,
}

/// Position bias: single-order verdicts won by the answer shown first.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct PositionBias {
    /// Single-order verdicts won by the answer shown first.
    pub first_won: usize,
    /// Won by the answer shown second.
    pub first_lost: usize,
    /// Ties (not counted by the test).
    pub ties: usize,
    /// Orders whose verdict is not known (not counted).
    pub unknown: usize,
    /// The first-shown answer's share of the decided verdicts (`first_won` of `first_won +
    /// first_lost`), tested against ½.
    pub test: SignShare,
}

/// Length bias over decided battles (the verdict named a winner).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct LengthBias {
    /// Decided battles with both answers' lengths known.
    pub battles: usize,
    pub longer_won: usize,
    pub shorter_won: usize,
    /// Decided battles between answers of equal length (not counted by the test).
    pub equal_length: usize,
    /// Decided battles with a length missing (not counted at all).
    pub unknown: usize,
    /// The longer answer's share of the decided battles of unequal lengths, tested against ½.
    pub test: SignShare,
    /// Pearson's r of `length_a − length_b` with the outcome (+1 a won, −1 b won) over `battles`
    /// (the point-biserial correlation); `None` for fewer than two battles or no spread in
    /// either variable.
    pub correlation: Option<f64>,
}

/// One model's battles as some group of judges (or voters) saw them.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Default)]
pub struct WinRecord {
    pub battles: usize,
    pub wins: usize,
    pub ties: usize,
    pub losses: usize,
    /// `(wins + ties / 2) / battles`; `None` without battles.
    pub win_rate: Option<f64>,
}

impl WinRecord {
    /// The record of `model` over `outcomes`, each a battle's (model_a, model_b, outcome); battles
    /// `model` is not in are skipped.
    pub fn of<'a>(
        model: &str,
        outcomes: impl IntoIterator<Item = (&'a str, &'a str, Outcome)>,
    ) -> WinRecord {
        let mut record = WinRecord::default();
        for (a, b, outcome) in outcomes {
            let mine = if a == model && b != model {
                outcome
            } else if b == model && a != model {
                outcome.swapped()
            } else {
                continue;
            };
            record.battles += 1;
            match mine {
                Outcome::ModelA => record.wins += 1,
                Outcome::ModelB => record.losses += 1,
                Outcome::Tie => record.ties += 1,
            }
        }
        record.with_rate()
    }

    /// Both records' battles together.
    pub fn combined(self, other: WinRecord) -> WinRecord {
        WinRecord {
            battles: self.battles + other.battles,
            wins: self.wins + other.wins,
            ties: self.ties + other.ties,
            losses: self.losses + other.losses,
            win_rate: None,
        }
        .with_rate()
    }

    fn with_rate(mut self) -> WinRecord {
        self.win_rate = (self.battles > 0)
            .then(|| (self.wins as f64 + 0.5 * self.ties as f64) / self.battles as f64);
        self
    }
}

/// A judge that is also a contestant, judging its own battles.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SelfPreference {
    /// The judge's model id.
    pub model: String,
    /// Its battles as it judged them.
    pub by_self: WinRecord,
    /// Its battles as the run's other judges judged them.
    pub by_other_judges: WinRecord,
    /// Its battles in the run's votes (people, imported logs).
    pub by_votes: WinRecord,
    /// `by_self`'s win rate minus the win rate over other judges and votes together; `None`
    /// (self-preference cannot be measured) when either side has no battles.
    pub difference: Option<f64>,
}

/// Agreement of a judge's verdicts with votes on the same task and pair of models.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct HumanAgreement {
    /// Verdict-vote pairs compared (a task and pair with two votes gives two).
    pub n: usize,
    /// Pairs where the vote and the verdict have the same outcome.
    pub agreements: usize,
    /// `agreements / n`; `None` when `n` is 0.
    pub raw: Option<f64>,
    /// Cohen's kappa over the three outcomes ([`cohen_kappa`]); `None` when `n` is 0 or the
    /// chance agreement is 1.
    pub kappa: Option<f64>,
}

/// Everything measured about one judge.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct JudgeMeasures {
    /// The judge's label.
    pub judge: String,
    pub consistency: Consistency,
    pub position: PositionBias,
    pub length: LengthBias,
    /// `None` when the judge is not one of the models compared.
    pub self_preference: Option<SelfPreference>,
    pub human_agreement: HumanAgreement,
}

/// Every judge's measures, judges in the order they first appear. `contestants` are the run's
/// model ids; `votes` its votes (of any source).
pub fn measure_judges(
    observations: &[PairObservation],
    votes: &[Vote],
    contestants: &[&str],
) -> Vec<JudgeMeasures> {
    let mut judges: Vec<&str> = Vec::new();
    for observation in observations {
        if !judges.contains(&observation.judge.as_str()) {
            judges.push(&observation.judge);
        }
    }
    judges
        .into_iter()
        .map(|judge| {
            let mine: Vec<&PairObservation> =
                observations.iter().filter(|o| o.judge == judge).collect();
            JudgeMeasures {
                judge: judge.to_string(),
                consistency: consistency(mine.iter().copied()),
                position: position_bias(mine.iter().copied()),
                length: length_bias(mine.iter().copied()),
                self_preference: contestants
                    .contains(&judge)
                    .then(|| self_preference(judge, observations, votes)),
                human_agreement: human_agreement(mine.iter().copied(), votes),
            }
        })
        .collect()
}

/// How often both orders gave the same verdict.
pub fn consistency<'a>(observations: impl IntoIterator<Item = &'a PairObservation>) -> Consistency {
    let (mut pairs, mut inconsistent, mut errors) = (0, 0, 0);
    for observation in observations {
        pairs += 1;
        match observation.verdict {
            JudgeVerdict::Inconsistent => inconsistent += 1,
            JudgeVerdict::Error | JudgeVerdict::Rated => errors += 1,
            JudgeVerdict::ModelA | JudgeVerdict::ModelB | JudgeVerdict::Tie => {}
        }
    }
    let consistent = pairs - inconsistent - errors;
    let decided = consistent + inconsistent;
    Consistency {
        pairs,
        consistent,
        inconsistent,
        errors,
        share: (decided > 0).then(|| consistent as f64 / decided as f64),
    }
}

/// Position bias over both orders of every judgement: the share of decided single-order verdicts
/// won by the answer shown first, with the sign test of those wins against the losses.
pub fn position_bias<'a>(
    observations: impl IntoIterator<Item = &'a PairObservation>,
) -> PositionBias {
    let (mut won, mut lost, mut ties, mut unknown) = (0, 0, 0, 0);
    for observation in observations {
        for order in [observation.a_first, observation.b_first] {
            match order {
                Some(FirstShown::Won) => won += 1,
                Some(FirstShown::Lost) => lost += 1,
                Some(FirstShown::Tie) => ties += 1,
                None => unknown += 1,
            }
        }
    }
    PositionBias {
        first_won: won,
        first_lost: lost,
        ties,
        unknown,
        test: SignShare::new(won, lost),
    }
}

/// Length bias over the decided battles (verdict `model_a` or `model_b`): the longer answer's
/// share of those between answers of unequal length, with its sign test, and Pearson's r of the
/// length difference with the outcome.
pub fn length_bias<'a>(observations: impl IntoIterator<Item = &'a PairObservation>) -> LengthBias {
    let (mut longer, mut shorter, mut equal, mut unknown) = (0, 0, 0, 0);
    let (mut differences, mut outcomes) = (Vec::new(), Vec::new());
    for observation in observations {
        let sign = match observation.verdict {
            JudgeVerdict::ModelA => 1.0,
            JudgeVerdict::ModelB => -1.0,
            _ => continue,
        };
        let (Some(a), Some(b)) = (observation.length_a, observation.length_b) else {
            unknown += 1;
            continue;
        };
        let difference = a - b;
        if !difference.is_finite() {
            unknown += 1;
            continue;
        }
        differences.push(difference);
        outcomes.push(sign);
        if difference == 0.0 {
            equal += 1;
        } else if (difference > 0.0) == (sign > 0.0) {
            longer += 1;
        } else {
            shorter += 1;
        }
    }
    LengthBias {
        battles: differences.len(),
        longer_won: longer,
        shorter_won: shorter,
        equal_length: equal,
        unknown,
        test: SignShare::new(longer, shorter),
        correlation: pearson(&differences, &outcomes),
    }
}

/// `judge`'s battles as judged by itself, by the other judges in `observations`, and by
/// `votes`. Errors count for nobody; inconsistent pairs are ties.
pub fn self_preference(
    judge: &str,
    observations: &[PairObservation],
    votes: &[Vote],
) -> SelfPreference {
    let judged = |by_self: bool| {
        WinRecord::of(
            judge,
            observations
                .iter()
                .filter(|o| (o.judge == judge) == by_self)
                .filter_map(|o| {
                    Some((
                        o.model_a.as_str(),
                        o.model_b.as_str(),
                        Outcome::from_verdict(o.verdict)?,
                    ))
                }),
        )
    };
    let by_self = judged(true);
    let by_other_judges = judged(false);
    let by_votes = WinRecord::of(
        judge,
        votes.iter().map(|v| {
            (
                v.model_a.as_str(),
                v.model_b.as_str(),
                Outcome::from_winner(v.winner),
            )
        }),
    );
    let others = by_other_judges.combined(by_votes);
    SelfPreference {
        model: judge.to_string(),
        by_self,
        by_other_judges,
        by_votes,
        difference: by_self
            .win_rate
            .zip(others.win_rate)
            .map(|(own, others)| own - others),
    }
}

/// The judge's verdicts against votes on the same task and the same pair of models (in either
/// order; the vote is turned to the judgement's order). Every verdict-vote pair counts once;
/// errors and votes without a task are left out.
pub fn human_agreement<'a>(
    observations: impl IntoIterator<Item = &'a PairObservation>,
    votes: &[Vote],
) -> HumanAgreement {
    let mut pairs = Vec::new();
    for observation in observations {
        let Some(verdict) = Outcome::from_verdict(observation.verdict) else {
            continue;
        };
        for vote in votes {
            if vote.task_id.as_deref() != Some(observation.task.as_str()) {
                continue;
            }
            let vote_outcome = Outcome::from_winner(vote.winner);
            let (a, b) = (&observation.model_a, &observation.model_b);
            if &vote.model_a == a && &vote.model_b == b {
                pairs.push((verdict, vote_outcome));
            } else if &vote.model_a == b && &vote.model_b == a {
                pairs.push((verdict, vote_outcome.swapped()));
            }
        }
    }
    let agreements = pairs.iter().filter(|(x, y)| x == y).count();
    HumanAgreement {
        n: pairs.len(),
        agreements,
        raw: (!pairs.is_empty()).then(|| agreements as f64 / pairs.len() as f64),
        kappa: cohen_kappa(&pairs),
    }
}

/// Cohen's kappa of two raters over paired labels: `κ = (p_o − p_e) / (1 − p_e)`, with
/// `p_o = Σ_k n_kk / n` the observed agreement and `p_e = Σ_k (n_k· / n)(n_·k / n)` the
/// agreement expected by chance from each rater's label frequencies (`n_k·`: how often the first
/// rater said k, `n_·k` the second). Computed as `(n·Σ n_kk − Σ n_k·n_·k) / (n² − Σ n_k·n_·k)`
/// on counts. This is `sklearn.metrics.cohen_kappa_score(y1, y2)` (unweighted); `None` for no
/// pairs, or when `p_e = 1` (both raters always gave the one same label), where sklearn
/// returns NaN.
pub fn cohen_kappa<T: PartialEq>(pairs: &[(T, T)]) -> Option<f64> {
    if pairs.is_empty() {
        return None;
    }
    // The labels seen, each once (few: linear search keeps `T` free of Hash or Ord).
    let mut labels: Vec<&T> = Vec::new();
    for (x, y) in pairs {
        for label in [x, y] {
            if !labels.contains(&label) {
                labels.push(label);
            }
        }
    }
    let n = pairs.len() as f64;
    let agreed = pairs.iter().filter(|(x, y)| x == y).count() as f64;
    let chance: f64 = labels
        .iter()
        .map(|&label| {
            let first = pairs.iter().filter(|(x, _)| x == label).count() as f64;
            let second = pairs.iter().filter(|(_, y)| y == label).count() as f64;
            first * second
        })
        .sum();
    let denominator = n * n - chance;
    (denominator != 0.0).then(|| (n * agreed - chance) / denominator)
}

/// Pearson's correlation coefficient `r = Σ(x − x̄)(y − ȳ) / √(Σ(x − x̄)² · Σ(y − ȳ)²)`, as
/// `scipy.stats.pearsonr(x, y).statistic`. `None` when the slices differ in length, hold fewer
/// than two values or a value that is not finite, or either has no spread (scipy's NaN).
pub fn pearson(x: &[f64], y: &[f64]) -> Option<f64> {
    if x.len() != y.len() || x.len() < 2 || !x.iter().chain(y).all(|v| v.is_finite()) {
        return None;
    }
    let n = x.len() as f64;
    let mean_x = x.iter().sum::<f64>() / n;
    let mean_y = y.iter().sum::<f64>() / n;
    let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
    for (a, b) in x.iter().zip(y) {
        let (dx, dy) = (a - mean_x, b - mean_y);
        sxy += dx * dy;
        sxx += dx * dx;
        syy += dy * dy;
    }
    if sxx == 0.0 || syy == 0.0 {
        return None;
    }
    let r = sxy / (sxx.sqrt() * syy.sqrt());
    // Rounding can carry |r| a hair past 1; scipy clips too.
    r.is_finite().then(|| r.clamp(-1.0, 1.0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::VoteSource;

    fn close(actual: Option<f64>, expected: f64) {
        let actual = actual.expect("a value");
        assert!(
            (actual - expected).abs() < 1e-12,
            "{actual} is not {expected}"
        );
    }

    #[allow(clippy::too_many_arguments)]
    fn observation(
        task: &str,
        judge: &str,
        a: &str,
        b: &str,
        verdict: JudgeVerdict,
        orders: (Option<FirstShown>, Option<FirstShown>),
        lengths: (Option<f64>, Option<f64>),
    ) -> PairObservation {
        PairObservation {
            task: task.into(),
            judge: judge.into(),
            model_a: a.into(),
            model_b: b.into(),
            verdict,
            a_first: orders.0,
            b_first: orders.1,
            length_a: lengths.0,
            length_b: lengths.1,
        }
    }

    fn vote(task: Option<&str>, a: &str, b: &str, winner: Winner) -> Vote {
        Vote {
            run_id: Some(1),
            task_id: task.map(str::to_string),
            category: None,
            model_a: a.into(),
            model_b: b.into(),
            winner,
            source: VoteSource::Human,
            voter: None,
            judge: None,
        }
    }

    use FirstShown::{Lost, Tie as Even, Won};
    use JudgeVerdict::{Error, Inconsistent, ModelA, ModelB};

    #[test]
    fn cohen_kappa_matches_sklearn() {
        // sklearn's documented example: cohen_kappa_score(
        //   ["negative", "positive", "negative", "neutral", "positive"],
        //   ["negative", "positive", "negative", "neutral", "negative"]) == 0.6875.
        // n = 5, 4 agree; first rater 2 negative, 2 positive, 1 neutral; second 3, 1, 1:
        // (5·4 − (2·3 + 2·1 + 1·1)) / (25 − 9) = 11/16.
        let y1 = ["negative", "positive", "negative", "neutral", "positive"];
        let y2 = ["negative", "positive", "negative", "neutral", "negative"];
        let pairs: Vec<(&str, &str)> = y1.into_iter().zip(y2).collect();
        close(cohen_kappa(&pairs), 0.6875);
        // Wikipedia's 2×2 example [[20, 5], [10, 15]]: p_o = 0.7, p_e = 0.5·0.6 + 0.5·0.4 = 0.5,
        // κ = 0.2 / 0.5 = 0.4; as outcomes, the third class unused.
        let mut table = Vec::new();
        for (x, y, count) in [
            (Outcome::ModelA, Outcome::ModelA, 20),
            (Outcome::ModelA, Outcome::ModelB, 5),
            (Outcome::ModelB, Outcome::ModelA, 10),
            (Outcome::ModelB, Outcome::ModelB, 15),
        ] {
            table.extend(std::iter::repeat_n((x, y), count));
        }
        close(cohen_kappa(&table), 0.4);
        // Perfect agreement is 1; agreement exactly at chance is 0.
        close(cohen_kappa(&[(1, 1), (2, 2), (3, 3)]), 1.0);
        close(cohen_kappa(&[(1, 1), (1, 2), (2, 1), (2, 2)]), 0.0);
        // Undefined: nothing to compare, or both raters always said the same one thing.
        assert_eq!(cohen_kappa::<Outcome>(&[]), None);
        assert_eq!(cohen_kappa(&[(Outcome::Tie, Outcome::Tie); 3]), None);
    }

    #[test]
    fn pearson_matches_the_formula_and_is_none_where_undefined() {
        // x = [3, 1, −1, −3], y = [1, 1, −1, −1]: Σxy = 8, Σx² = 20, Σy² = 4, r = 8/√80 = 2/√5.
        close(
            pearson(&[3.0, 1.0, -1.0, -3.0], &[1.0, 1.0, -1.0, -1.0]),
            2.0 / 5f64.sqrt(),
        );
        close(pearson(&[1.0, 2.0], &[-1.0, 1.0]), 1.0);
        close(pearson(&[1.0, 2.0, 3.0], &[3.0, 2.0, 1.0]), -1.0);
        assert_eq!(pearson(&[1.0], &[1.0]), None);
        assert_eq!(pearson(&[1.0, 2.0], &[1.0, 1.0]), None, "no spread in y");
        assert_eq!(pearson(&[1.0, 1.0], &[1.0, -1.0]), None, "no spread in x");
        assert_eq!(pearson(&[1.0, 2.0], &[1.0]), None);
        assert_eq!(pearson(&[1.0, f64::NAN], &[1.0, -1.0]), None);
    }

    #[test]
    fn position_bias_counts_each_order_from_the_first_shown_side() {
        let observations = [
            // The first-shown answer won in both orders: inconsistent.
            observation(
                "t1",
                "j",
                "m1",
                "m2",
                Inconsistent,
                (Some(Won), Some(Won)),
                (None, None),
            ),
            observation(
                "t2",
                "j",
                "m1",
                "m2",
                ModelA,
                (Some(Won), Some(Lost)),
                (None, None),
            ),
            observation(
                "t3",
                "j",
                "m1",
                "m2",
                Inconsistent,
                (Some(Won), Some(Even)),
                (None, None),
            ),
            observation(
                "t4",
                "j",
                "m1",
                "m2",
                Error,
                (Some(Won), None),
                (None, None),
            ),
        ];
        let position = position_bias(&observations);
        assert_eq!(
            (
                position.first_won,
                position.first_lost,
                position.ties,
                position.unknown
            ),
            (5, 1, 1, 1)
        );
        // 5 of 6 decided: p = 2·(1 + 6)/64 = 0.21875 (scipy binomtest(5, 6)).
        assert_eq!(position.test.n, 6);
        close(position.test.share, 5.0 / 6.0);
        close(position.test.p_value, 0.21875);
        let consistency = consistency(&observations);
        assert_eq!(
            (
                consistency.pairs,
                consistency.consistent,
                consistency.inconsistent,
                consistency.errors
            ),
            (4, 1, 2, 1)
        );
        close(consistency.share, 1.0 / 3.0);

        let nothing = position_bias(&[]);
        assert_eq!(nothing.test.n, 0);
        assert_eq!((nothing.test.share, nothing.test.p_value), (None, None));
        assert_eq!(super::consistency(&[]).share, None);
    }

    #[test]
    fn length_bias_counts_decided_battles_and_correlates_the_difference() {
        let o = |verdict, a: Option<f64>, b: Option<f64>| {
            observation("t", "j", "m1", "m2", verdict, (None, None), (a, b))
        };
        let observations = [
            o(ModelA, Some(30.0), Some(10.0)), // longer won, difference +20, outcome +1
            o(ModelB, Some(10.0), Some(20.0)), // longer won, −10, −1
            o(ModelA, Some(5.0), Some(15.0)),  // shorter won, −10, +1
            o(ModelB, Some(8.0), Some(8.0)),   // equal, 0, −1
            o(ModelA, None, Some(8.0)),        // unknown length
            o(Inconsistent, Some(1.0), Some(100.0)), // not decided: left out
        ];
        let length = length_bias(&observations);
        assert_eq!(
            (
                length.battles,
                length.longer_won,
                length.shorter_won,
                length.equal_length,
                length.unknown
            ),
            (4, 2, 1, 1, 1)
        );
        // 2 of 3: binomtest(2, 3).pvalue = 1.
        assert_eq!(length.test.n, 3);
        close(length.test.share, 2.0 / 3.0);
        close(length.test.p_value, 1.0);
        // x = [20, −10, −10, 0] (mean 0), y = [1, −1, 1, −1] (mean 0): Σxy = 20 + 10 − 10 + 0 = 20,
        // Σx² = 600, Σy² = 4: r = 20/√2400 = 1/√6.
        close(length.correlation, 1.0 / 6f64.sqrt());

        // Four decided battles, all won by the longer answer: p = 2/16.
        let all_longer: Vec<PairObservation> = (0..4)
            .map(|i| o(ModelA, Some(10.0 + i as f64), Some(1.0)))
            .collect();
        let length = length_bias(&all_longer);
        close(length.test.share, 1.0);
        close(length.test.p_value, 0.125);
        assert_eq!(length.correlation, None, "every outcome +1: no spread");
    }

    #[test]
    fn self_preference_compares_the_judge_with_others_and_votes() {
        let o = |task: &str, judge: &str, verdict| {
            observation(
                task,
                judge,
                "me",
                "you",
                verdict,
                (None, None),
                (None, None),
            )
        };
        let observations = [
            o("t1", "me", ModelA),
            o("t2", "me", Inconsistent),
            o("t3", "me", ModelA),
            o("t4", "me", Error), // counts for nobody
            o("t1", "other", ModelB),
            o("t2", "other", ModelA),
        ];
        // The vote names the pair the other way round: `you` lost, so `me` won.
        let votes = [
            vote(Some("t1"), "you", "me", Winner::ModelB),
            vote(None, "me", "you", Winner::TieBothBad),
            vote(None, "you", "them", Winner::ModelA), // not `me`'s battle
        ];
        let preference = self_preference("me", &observations, &votes);
        let record = |r: WinRecord| (r.battles, r.wins, r.ties, r.losses);
        assert_eq!(record(preference.by_self), (3, 2, 1, 0));
        close(preference.by_self.win_rate, 2.5 / 3.0);
        assert_eq!(record(preference.by_other_judges), (2, 1, 0, 1));
        close(preference.by_other_judges.win_rate, 0.5);
        assert_eq!(record(preference.by_votes), (2, 1, 1, 0));
        close(preference.by_votes.win_rate, 0.75);
        // Others together: 4 battles, 2 wins, 1 tie: 2.5/4.
        close(preference.difference, 2.5 / 3.0 - 2.5 / 4.0);

        // Judged by nobody else: cannot be measured.
        let alone = self_preference("me", &observations[..4], &[]);
        assert_eq!(alone.by_other_judges.battles + alone.by_votes.battles, 0);
        assert_eq!(alone.difference, None);
    }

    #[test]
    fn agreement_with_votes_matches_task_and_pair_in_either_order() {
        let o = |task: &str, verdict| {
            observation(task, "j", "m1", "m2", verdict, (None, None), (None, None))
        };
        let observations = [
            o("t1", ModelA),
            o("t2", Inconsistent),
            o("t3", ModelB),
            o("t4", Error),
        ];
        let votes = [
            vote(Some("t1"), "m2", "m1", Winner::ModelB), // m1 won: agrees with ModelA
            vote(Some("t2"), "m1", "m2", Winner::ModelA), // verdict tie, vote a: disagree
            vote(Some("t3"), "m1", "m2", Winner::TieBothBad), // verdict b, vote tie: disagree
            vote(Some("t3"), "m1", "m2", Winner::ModelB), // agrees
            vote(Some("t4"), "m1", "m2", Winner::ModelA), // the verdict was an error: left out
            vote(None, "m1", "m2", Winner::ModelA),       // no task: left out
            vote(Some("t1"), "m1", "m3", Winner::ModelA), // another pair: left out
        ];
        let agreement = human_agreement(&observations, &votes);
        assert_eq!((agreement.n, agreement.agreements), (4, 2));
        close(agreement.raw, 0.5);
        // Judge: A, T, B, B; votes: A, A, T, B. n = 4, 2 agree; judge counts A1 T1 B2, votes
        // A2 T1 B1: Σ = 2 + 1 + 2 = 5; κ = (4·2 − 5)/(16 − 5) = 3/11.
        close(agreement.kappa, 3.0 / 11.0);

        let none = human_agreement(&observations, &[]);
        assert_eq!((none.n, none.raw, none.kappa), (0, None, None));
    }

    #[test]
    fn judges_are_measured_separately_and_only_contestants_for_self_preference() {
        let observations = [
            observation(
                "t1",
                "m1",
                "m1",
                "m2",
                ModelA,
                (Some(Won), Some(Lost)),
                (Some(2.0), Some(1.0)),
            ),
            observation(
                "t1",
                "outsider",
                "m1",
                "m2",
                ModelB,
                (Some(Lost), Some(Won)),
                (Some(2.0), Some(1.0)),
            ),
        ];
        let measures = measure_judges(&observations, &[], &["m1", "m2"]);
        assert_eq!(measures.len(), 2);
        assert_eq!(measures[0].judge, "m1");
        assert_eq!(measures[0].position.first_won, 1);
        assert_eq!(measures[0].length.longer_won, 1);
        let preference = measures[0]
            .self_preference
            .as_ref()
            .expect("m1 is a contestant");
        close(preference.by_self.win_rate, 1.0);
        close(preference.by_other_judges.win_rate, 0.0);
        close(preference.difference, 1.0);
        assert_eq!(measures[1].judge, "outsider");
        assert_eq!(measures[1].length.shorter_won, 1);
        assert_eq!(measures[1].self_preference, None);
        assert_eq!(measures[1].human_agreement.n, 0);
        assert!(measure_judges(&[], &[], &["m1"]).is_empty());
    }
}
