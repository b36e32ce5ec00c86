//! The vocabulary of verdicts: who won a task and on what evidence, and the rows of the criteria
//! table. The rules that produce them read scores, judgements and votes; every report format and
//! the viewer render these same values.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::significance::{self, PairedTest};

/// Which evidence decided a task's verdict, in the order the rule reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum DecidedBy {
    /// Nothing separates the models: no model answered, or no evidence leads.
    #[serde(rename = "none")]
    Nothing,
    /// Only one model's answer succeeded.
    #[serde(rename = "only answer")]
    OnlyAnswer,
    /// The weighted check scores differ.
    #[serde(rename = "checks")]
    Checks,
    /// The judge's pairwise verdicts.
    #[serde(rename = "judge")]
    Judge,
    /// The judge's 1-10 ratings.
    #[serde(rename = "rating")]
    Rating,
    /// ROUGE-L against the reference answer.
    #[serde(rename = "reference")]
    Reference,
}

impl DecidedBy {
    /// The word reports and the viewer show (and the JSON report holds).
    pub fn as_str(self) -> &'static str {
        match self {
            DecidedBy::Nothing => "none",
            DecidedBy::OnlyAnswer => "only answer",
            DecidedBy::Checks => "checks",
            DecidedBy::Judge => "judge",
            DecidedBy::Rating => "rating",
            DecidedBy::Reference => "reference",
        }
    }
}

impl fmt::Display for DecidedBy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The winner of one task, or a tie, and why.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct TaskVerdict {
    pub task: String,
    /// `None` for a tie or when no answer can be compared.
    pub winner: Option<String>,
    pub decided_by: DecidedBy,
    /// The evidence, one line per source, in the order the rule reads it.
    pub why: Vec<String>,
}

/// One row of the criteria table.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct CriterionRow {
    pub criterion: String,
    /// Evidence per model, in the report's model order.
    pub cells: Vec<String>,
    pub verdict: String,
    /// The rule the verdict follows.
    pub rule: String,
    /// What the row's test compares per task (`None` for informational rows).
    pub measure: Option<String>,
    /// The paired comparisons behind the verdict, one per pair of models; empty for
    /// informational rows (context length, size, modalities), which follow a stated rule.
    pub comparisons: Vec<Comparison>,
    /// "how sure": the decisive comparison's adjusted p and n, or why the row decides nothing.
    pub how_sure: String,
}

/// The significance level verdicts use unless a suite's `[verdicts] alpha` says otherwise.
pub const DEFAULT_ALPHA: f64 = 0.05;

/// One criterion's evidence for two models over the tasks both answered: a difference per task
/// (first model minus second, in the measure's unit; 1/0/−1 for pass/fail), and each task's
/// cluster (its `group`, or its own id when it has none).
#[derive(Debug, Clone, PartialEq)]
pub struct PairSample {
    pub model_a: String,
    pub model_b: String,
    pub differences: Vec<f64>,
    pub clusters: Vec<String>,
}

/// A paired comparison of two models on one criterion, as every report format shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Comparison {
    pub model_a: String,
    pub model_b: String,
    pub test: PairedTest,
    /// Tasks compared (ties included); with clusters, still tasks.
    pub n: usize,
    /// Clusters the tasks form (equal to `n` when no task has a `group`).
    pub clusters: usize,
    /// Mean per-task difference, `model_a` minus `model_b`.
    pub difference: f64,
    /// 95% interval of `difference`: the paired bootstrap percentile interval, or with
    /// clusters the normal interval on the clustered standard error.
    pub interval: (f64, f64),
    /// Two-sided p-value of `test`.
    pub p_value: f64,
    /// Holm-Bonferroni adjusted over every comparison of the criteria table.
    pub p_adjusted: f64,
    /// The smallest difference this many tasks could detect at 80% power and the verdicts'
    /// alpha, given the observed spread; `None` when the spread cannot be estimated (one task).
    pub detectable_difference: Option<f64>,
    /// Tasks needed to detect the observed difference at 80% power; `None` when it is zero or
    /// the spread is unknown.
    pub tasks_needed: Option<usize>,
}

/// Compares the two models of `sample` with `test`; `None` when there is nothing to compare
/// (no tasks) or a difference is not finite. With clusters (fewer clusters than tasks) the unit
/// of the test is the cluster: its mean difference is tested, and the interval uses the
/// clustered standard error (Miller 2024), because tasks in one cluster are not independent.
pub fn compare(sample: &PairSample, test: PairedTest, alpha: f64, seed: u64) -> Option<Comparison> {
    let n = sample.differences.len();
    if n == 0 || sample.clusters.len() != n {
        return None;
    }
    let mut by_cluster: std::collections::BTreeMap<&str, Vec<f64>> = Default::default();
    for (difference, cluster) in sample.differences.iter().zip(&sample.clusters) {
        by_cluster.entry(cluster).or_default().push(*difference);
    }
    let clusters = by_cluster.len();
    let (difference, interval, p_value, spread) = if clusters < n {
        let means: Vec<f64> = by_cluster
            .values()
            .map(|values| significance::mean_difference(values))
            .collect::<Option<_>>()?;
        let difference = significance::mean_difference(&sample.differences)?;
        let se = significance::clustered_standard_error(&sample.differences, &sample.clusters)?;
        let z = -significance::normal_quantile(0.025)?;
        let at_cluster = significance::compare_paired(&means, cluster_test(test), seed)?;
        // The spread of per-task differences that would give this standard error if the tasks
        // were independent: what the planning formula needs.
        let spread = (n >= 2).then(|| se * (n as f64).sqrt());
        (
            difference,
            (difference - z * se, difference + z * se),
            at_cluster.p_value,
            spread,
        )
    } else {
        let compared = significance::compare_paired(&sample.differences, test, seed)?;
        let spread = significance::sample_standard_deviation(&sample.differences);
        (
            compared.mean_difference,
            compared.interval,
            compared.p_value,
            spread,
        )
    };
    let power = significance::DEFAULT_POWER;
    Some(Comparison {
        model_a: sample.model_a.clone(),
        model_b: sample.model_b.clone(),
        test,
        n,
        clusters,
        difference,
        interval,
        p_value,
        p_adjusted: p_value,
        detectable_difference: spread
            .and_then(|s| significance::minimum_detectable_difference(n, s, alpha, power)),
        tasks_needed: spread.and_then(|s| significance::tasks_needed(difference, s, alpha, power)),
    })
}

/// The test run on cluster means: pass/fail tests become a sign-flip test once outcomes are
/// averaged over a cluster (they are no longer 1/0/−1).
fn cluster_test(test: PairedTest) -> PairedTest {
    match test {
        PairedTest::McNemarExact => PairedTest::SignFlipPermutation,
        other => other,
    }
}

/// Holm-Bonferroni over every comparison given, writing each one's `p_adjusted`.
pub fn adjust_all<'a>(comparisons: impl IntoIterator<Item = &'a mut Comparison>) {
    let mut all: Vec<&mut Comparison> = comparisons.into_iter().collect();
    let raw: Vec<f64> = all.iter().map(|c| c.p_value).collect();
    if let Some(adjusted) = significance::holm_adjust(&raw) {
        for (comparison, p) in all.iter_mut().zip(adjusted) {
            comparison.p_adjusted = p;
        }
    }
}

/// The model that beats every other on this criterion with an adjusted p below `alpha`, if one
/// does. `higher_is_better` says which sign of the difference is better.
pub fn significant_winner(
    comparisons: &[Comparison],
    higher_is_better: bool,
    alpha: f64,
) -> Option<String> {
    let models: Vec<&str> = comparisons
        .iter()
        .flat_map(|c| [c.model_a.as_str(), c.model_b.as_str()])
        .collect();
    models
        .iter()
        .copied()
        .find(|model| {
            let mine: Vec<&Comparison> = comparisons
                .iter()
                .filter(|c| c.model_a == *model || c.model_b == *model)
                .collect();
            !mine.is_empty()
                && mine.iter().all(|c| {
                    let advantage = if c.model_a == *model {
                        c.difference
                    } else {
                        -c.difference
                    };
                    let better = if higher_is_better {
                        advantage > 0.0
                    } else {
                        advantage < 0.0
                    };
                    better && c.p_adjusted < alpha
                })
        })
        .map(str::to_string)
}

/// "McNemar exact test, n = 40: +0.500 (95% CI +0.350 to +0.650), p = 2.0e-6 (adjusted
/// 1.2e-5)": the evidence a verdict line carries.
pub fn describe(comparison: &Comparison) -> String {
    let clusters = if comparison.clusters < comparison.n {
        format!(" in {} clusters", comparison.clusters)
    } else {
        String::new()
    };
    format!(
        "{} {} vs {}, n = {}{clusters}: {} (95% CI {} to {}), p = {} (adjusted {})",
        comparison.test,
        comparison.model_a,
        comparison.model_b,
        comparison.n,
        signed(comparison.difference),
        signed(comparison.interval.0),
        signed(comparison.interval.1),
        p_text(comparison.p_value),
        p_text(comparison.p_adjusted),
    )
}

/// Why a criterion names no winner, with what it would take to decide.
pub fn undecided(comparison: &Comparison) -> String {
    let planning = match (comparison.detectable_difference, comparison.tasks_needed) {
        _ if comparison.n < 2 => {
            "; one task cannot show a difference: add tasks".to_string()
        }
        (Some(0.0), _) => {
            "; every task gives the same difference, so more tasks would not change this".to_string()
        }
        (Some(d), Some(needed)) => format!(
            "; about {needed} tasks would be needed to detect a difference of {} (this many can detect {})",
            unsigned(comparison.difference),
            unsigned(d)
        ),
        (Some(d), None) => format!("; this many tasks can detect a difference of {}", unsigned(d)),
        _ => String::new(),
    };
    format!(
        "no significant difference ({}){planning}",
        describe(comparison)
    )
}

/// A p-value as reports print it: three significant digits, scientific below 0.001.
pub fn p_text(p: f64) -> String {
    if p >= 0.001 || p == 0.0 {
        format!("{p:.3}")
    } else {
        format!("{p:.1e}")
    }
}

fn signed(value: f64) -> String {
    format!("{}{}", if value > 0.0 { "+" } else { "" }, trimmed(value))
}

fn unsigned(value: f64) -> String {
    trimmed(value.abs())
}

/// Three significant digits, without an exponent for everyday magnitudes.
fn trimmed(value: f64) -> String {
    let magnitude = value.abs();
    if magnitude == 0.0 {
        "0".to_string()
    } else if magnitude >= 100.0 {
        format!("{value:.0}")
    } else if magnitude >= 1.0 {
        format!("{value:.2}")
    } else if magnitude >= 0.001 {
        format!("{value:.3}")
    } else {
        format!("{value:.1e}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(differences: &[f64], clusters: Option<&[&str]>) -> PairSample {
        PairSample {
            model_a: "a".into(),
            model_b: "b".into(),
            differences: differences.to_vec(),
            clusters: match clusters {
                Some(c) => c.iter().map(|s| s.to_string()).collect(),
                None => (0..differences.len()).map(|i| format!("t{i}")).collect(),
            },
        }
    }

    #[test]
    fn a_model_passing_everything_against_one_failing_half_is_significant() {
        // 40 tasks: `a` passes all, `b` fails 20 of them.
        let differences: Vec<f64> = (0..40)
            .map(|i| if i % 2 == 0 { 1.0 } else { 0.0 })
            .collect();
        let mut comparisons = vec![compare(
            &sample(&differences, None),
            PairedTest::McNemarExact,
            0.05,
            1,
        )
        .unwrap()];
        adjust_all(comparisons.iter_mut());
        let c = &comparisons[0];
        assert_eq!((c.n, c.difference), (40, 0.5));
        assert!(c.p_value < 1e-5, "{c:?}");
        assert_eq!(
            significant_winner(&comparisons, true, 0.05).as_deref(),
            Some("a")
        );
        assert!(
            describe(c).starts_with("McNemar exact test a vs b, n = 40: +0.500"),
            "{}",
            describe(c)
        );
    }

    #[test]
    fn identical_answers_are_never_called_different() {
        for n in [1, 5, 40, 400] {
            let zeros = vec![0.0; n];
            let c = compare(
                &sample(&zeros, None),
                PairedTest::SignFlipPermutation,
                0.05,
                7,
            )
            .unwrap();
            assert_eq!(c.p_value, 1.0, "n = {n}");
            assert_eq!(
                significant_winner(std::slice::from_ref(&c), true, 0.05),
                None
            );
            assert!(
                undecided(&c).starts_with("no significant difference"),
                "{}",
                undecided(&c)
            );
        }
    }

    #[test]
    fn one_task_says_it_cannot_decide() {
        let c = compare(
            &sample(&[0.3], None),
            PairedTest::SignFlipPermutation,
            0.05,
            1,
        )
        .unwrap();
        assert_eq!(c.detectable_difference, None);
        assert!(
            undecided(&c).ends_with("one task cannot show a difference: add tasks"),
            "{}",
            undecided(&c)
        );
    }

    #[test]
    fn clustered_tasks_are_tested_by_cluster() {
        // Four passages with five questions each: the clusters, not the 20 tasks, are the unit.
        let differences: Vec<f64> = (0..20).map(|i| if i < 15 { 1.0 } else { 0.0 }).collect();
        let clusters: Vec<&str> = (0..20).map(|i| ["p1", "p2", "p3", "p4"][i / 5]).collect();
        let clustered = compare(
            &sample(&differences, Some(&clusters)),
            PairedTest::McNemarExact,
            0.05,
            1,
        )
        .unwrap();
        let independent = compare(
            &sample(&differences, None),
            PairedTest::McNemarExact,
            0.05,
            1,
        )
        .unwrap();
        assert_eq!((clustered.n, clustered.clusters), (20, 4));
        assert_eq!(clustered.test, PairedTest::McNemarExact);
        // Four clusters cannot be as convincing as twenty independent tasks.
        assert!(
            clustered.p_value > independent.p_value,
            "{clustered:?} {independent:?}"
        );
        assert!(describe(&clustered).contains("n = 20 in 4 clusters"));
    }

    #[test]
    fn holm_adjusts_across_the_table_and_the_winner_must_beat_everyone() {
        let strong = compare(&sample(&[1.0; 30], None), PairedTest::SignTest, 0.05, 1).unwrap();
        let mut weak = compare(
            &sample(&[1.0, 0.0, -1.0, 1.0], None),
            PairedTest::SignTest,
            0.05,
            1,
        )
        .unwrap();
        weak.model_b = "c".into();
        let mut table = vec![strong, weak];
        adjust_all(table.iter_mut());
        assert!(table[0].p_adjusted >= table[0].p_value);
        assert_eq!(table[1].p_adjusted, 1.0);
        // `a` beats `b` clearly but not `c`: no winner of the row.
        assert_eq!(significant_winner(&table, true, 0.05), None);
        assert_eq!(
            significant_winner(&table[..1], true, 0.05).as_deref(),
            Some("a")
        );
        // Where lower is better, the same evidence makes `b` the winner.
        assert_eq!(
            significant_winner(&table[..1], false, 0.05).as_deref(),
            Some("b")
        );
    }
}
