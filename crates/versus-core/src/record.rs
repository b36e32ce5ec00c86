//! The persisted run record: what a run was asked to do (`RunPlan`), the judge's verdicts and the
//! votes cast on it, typed once. The store decodes its rows into these types in one place, and
//! reports, scoring, the viewer, ratings and `serve` all read them; nothing else parses a plan or
//! matches a verdict string.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::ratings::{Battle, Winner};
use crate::{GenerationParams, Suite, Task};

/// A run's row id; increasing, so a larger id is a newer run.
pub type RunId = i64;

/// What a run was asked to do, stored with it (as JSON) so reports need nothing else.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunPlan {
    /// The suite after the command line was applied (models replaced, tasks filtered).
    pub suite: Suite,
    /// Generation parameters from the command line, which won over everything else.
    #[serde(default)]
    pub overrides: GenerationParams,
}

impl RunPlan {
    /// The plan as it is stored and reported: every model's base URL redacted
    /// (`redact::redact_url`), so credentials in a URL never reach the database or a report.
    pub fn redacted(&self) -> RunPlan {
        let mut plan = self.clone();
        for model in &mut plan.suite.models {
            if let Some(url) = &model.base_url {
                model.base_url = Some(crate::redact::redact_url(url));
            }
            for url in &mut model.base_urls {
                *url = crate::redact::redact_url(url);
            }
        }
        plan
    }

    /// The parameters a model gets for a task: suite defaults, then the model's, then the
    /// task's, then the command line's.
    pub fn params_for(&self, model_index: usize, task_index: usize) -> GenerationParams {
        self.suite
            .defaults
            .params
            .overlaid(&self.suite.models[model_index].params)
            .overlaid(&self.suite.tasks[task_index].params)
            .overlaid(&self.overrides)
    }

    /// The parameters a model gets before any task's own: suite defaults, the model's, then the
    /// command line's. Reports show these beside each model.
    pub fn model_params(&self, model_index: usize) -> GenerationParams {
        self.suite
            .defaults
            .params
            .overlaid(&self.suite.models[model_index].params)
            .overlaid(&self.overrides)
    }

    /// How many times a model is asked a task: the task's `samples`, else the model's, else the
    /// suite's (`--samples` has already replaced all three when given).
    pub fn samples_for(&self, model_index: usize, task_index: usize) -> u32 {
        self.suite.tasks[task_index]
            .samples
            .or(self.suite.models[model_index].samples)
            .unwrap_or(self.suite.defaults.samples)
            .max(1)
    }

    /// The k of a task's pass@k figures: its own `pass_at`, else the suite's.
    pub fn pass_at_for<'a>(&'a self, task: &'a Task) -> &'a [u32] {
        task.pass_at
            .as_deref()
            .unwrap_or(&self.suite.defaults.pass_at)
    }

    /// The task with this id.
    pub fn task(&self, id: &str) -> Option<&Task> {
        self.suite.tasks.iter().find(|task| task.id == id)
    }

    /// Each task's category, by task id.
    pub fn categories(&self) -> BTreeMap<String, String> {
        self.suite
            .tasks
            .iter()
            .map(|task| (task.id.clone(), task.category.clone()))
            .collect()
    }

    /// The plan as the store keeps it.
    pub fn to_json(&self) -> String {
        // A plan is plain data (strings, numbers, maps with string keys): serializing it cannot
        // fail, so a failure here is a bug worth a loud stop rather than a lost run.
        serde_json::to_string(self).expect("a run plan serializes to JSON")
    }

    /// A plan as the store kept it. The error is serde's, saying where the JSON stopped fitting.
    pub fn from_json(json: &str) -> Result<RunPlan, serde_json::Error> {
        serde_json::from_str(json)
    }
}

/// Spells out the text forms of a plain enum once: `as_str`, `Display`, `FromStr` and the list of
/// every value, so stored columns, JSON and messages agree.
macro_rules! spelled_enum {
    ($(#[$meta:meta])* $name:ident, $what:literal { $($(#[$vmeta:meta])* $variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        pub enum $name {
            $($(#[$vmeta])* #[serde(rename = $text)] $variant),+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The stored (and JSON) spelling.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = UnknownSpelling;

            fn from_str(text: &str) -> Result<$name, UnknownSpelling> {
                $name::ALL
                    .iter()
                    .copied()
                    .find(|value| value.as_str() == text)
                    .ok_or_else(|| UnknownSpelling {
                        what: $what,
                        found: text.to_string(),
                        expected: $name::ALL.iter().map(|value| value.as_str()).collect(),
                    })
            }
        }
    };
}

/// A stored word that is none of an enum's spellings.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} {found:?}; expected one of {}", expected.join(", "))]
pub struct UnknownSpelling {
    pub what: &'static str,
    pub found: String,
    pub expected: Vec<&'static str>,
}

spelled_enum! {
    /// What a judgement judged: a pair of answers, or one answer on its own.
    JudgementKind, "judgement kind" {
        /// Two answers compared, in both orders.
        Pairwise = "pairwise",
        /// One answer rated from 1 to 10.
        Single = "single",
    }
}

spelled_enum! {
    /// What the judge concluded. Pairwise: `ModelA`, `ModelB`, `Tie`, `Inconsistent` (the two
    /// orders disagreed) or `Error`; single: `Rated` or `Error`.
    JudgeVerdict, "judge verdict" {
        ModelA = "model_a",
        ModelB = "model_b",
        Tie = "tie",
        /// The two orders named different winners: counted as a tie.
        Inconsistent = "inconsistent",
        /// A single rating was given.
        Rated = "rated",
        /// The judge's output could not be read: counted for nobody.
        Error = "error",
    }
}

impl JudgeVerdict {
    /// The battle outcome a pairwise verdict counts as; `None` for errors and ratings, which
    /// are never a win (or a tie) for anyone.
    pub fn winner(self) -> Option<Winner> {
        match self {
            JudgeVerdict::ModelA => Some(Winner::ModelA),
            JudgeVerdict::ModelB => Some(Winner::ModelB),
            JudgeVerdict::Tie | JudgeVerdict::Inconsistent => Some(Winner::Tie),
            JudgeVerdict::Rated | JudgeVerdict::Error => None,
        }
    }
}

spelled_enum! {
    /// Where a vote came from.
    VoteSource, "vote source" {
        /// Cast in `versus view`'s blind voting.
        Human = "human",
        /// Read by `versus votes import`.
        Import = "import",
    }
}

/// A judge's verdict on one task: a pair of answers, or one answer's rating.
#[derive(Debug, Clone, PartialEq)]
pub struct Judgement {
    pub task_id: String,
    pub kind: JudgementKind,
    pub model_a: String,
    /// Empty for single ratings.
    pub model_b: String,
    pub judge: String,
    pub verdict: JudgeVerdict,
    pub rating: Option<f64>,
    /// Both orders' prompts, outputs and parsed verdicts, as the judge wrote them.
    pub detail: serde_json::Value,
}

impl Judgement {
    /// The judge's short explanation, if its detail has one.
    pub fn explanation(&self) -> &str {
        self.detail
            .get("explanation")
            .and_then(|e| e.as_str())
            .unwrap_or_default()
    }

    /// This judgement as a battle, when it is a pairwise verdict that counts; `category` is the
    /// task's.
    pub fn battle(&self, category: Option<&str>) -> Option<Battle> {
        if self.kind != JudgementKind::Pairwise {
            return None;
        }
        Some(Battle {
            model_a: self.model_a.clone(),
            model_b: self.model_b.clone(),
            winner: self.verdict.winner()?,
            task: Some(self.task_id.clone()),
            category: category.map(str::to_string),
            judge: Some(self.judge.clone()),
        })
    }
}

/// A vote between two models, from a person or an imported battle log.
#[derive(Debug, Clone, PartialEq)]
pub struct Vote {
    pub run_id: Option<RunId>,
    pub task_id: Option<String>,
    pub category: Option<String>,
    pub model_a: String,
    pub model_b: String,
    pub winner: Winner,
    pub source: VoteSource,
    pub voter: Option<String>,
    pub judge: Option<String>,
}

impl Vote {
    /// This vote as a battle for the ratings.
    pub fn battle(&self) -> Battle {
        Battle {
            model_a: self.model_a.clone(),
            model_b: self.model_b.clone(),
            winner: self.winner,
            task: self.task_id.clone(),
            category: self.category.clone(),
            judge: self.judge.clone(),
        }
    }
}

/// The battles of a run: its judge's pairwise verdicts (inconsistent pairs as ties, errors left
/// out), each with its task's category from `categories`, then the votes. Every place that rates
/// models (reports, `versus ratings`, the viewer) builds its battles here.
pub fn battles<'a>(
    judgements: impl IntoIterator<Item = &'a Judgement>,
    categories: &BTreeMap<String, String>,
    votes: impl IntoIterator<Item = &'a Vote>,
) -> Vec<Battle> {
    let mut battles: Vec<Battle> = judgements
        .into_iter()
        .filter_map(|j| j.battle(categories.get(&j.task_id).map(String::as_str)))
        .collect();
    battles.extend(votes.into_iter().map(Vote::battle));
    battles
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairwise(verdict: JudgeVerdict) -> Judgement {
        Judgement {
            task_id: "t".into(),
            kind: JudgementKind::Pairwise,
            model_a: "a".into(),
            model_b: "b".into(),
            judge: "j".into(),
            verdict,
            rating: None,
            detail: serde_json::json!({"explanation": "because"}),
        }
    }

    #[test]
    fn spellings_round_trip_and_unknown_words_say_what_was_expected() {
        for verdict in JudgeVerdict::ALL {
            assert_eq!(verdict.as_str().parse::<JudgeVerdict>(), Ok(*verdict));
            assert_eq!(
                serde_json::to_value(verdict).unwrap(),
                serde_json::Value::String(verdict.as_str().into())
            );
        }
        for kind in JudgementKind::ALL {
            assert_eq!(kind.to_string().parse::<JudgementKind>(), Ok(*kind));
        }
        let error = "draw".parse::<VoteSource>().unwrap_err();
        assert_eq!(
            error.to_string(),
            "unknown vote source \"draw\"; expected one of human, import"
        );
    }

    #[test]
    fn only_counting_pairwise_verdicts_become_battles() {
        let categories = BTreeMap::from([("t".to_string(), "coding".to_string())]);
        let mut single = pairwise(JudgeVerdict::Rated);
        single.kind = JudgementKind::Single;
        let judgements = [
            pairwise(JudgeVerdict::ModelA),
            pairwise(JudgeVerdict::Inconsistent),
            pairwise(JudgeVerdict::Error),
            single,
        ];
        let vote = Vote {
            run_id: Some(1),
            task_id: None,
            category: Some("creative".into()),
            model_a: "b".into(),
            model_b: "a".into(),
            winner: Winner::TieBothBad,
            source: VoteSource::Human,
            voter: None,
            judge: None,
        };
        let battles = battles(&judgements, &categories, [&vote]);
        let outcomes: Vec<(Winner, Option<&str>)> = battles
            .iter()
            .map(|b| (b.winner, b.category.as_deref()))
            .collect();
        assert_eq!(
            outcomes,
            [
                (Winner::ModelA, Some("coding")),
                (Winner::Tie, Some("coding")),
                (Winner::TieBothBad, Some("creative")),
            ]
        );
        assert_eq!(judgements[0].explanation(), "because");
    }
}
