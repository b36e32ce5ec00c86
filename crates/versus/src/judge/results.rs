//! What the judge returns: the verdict on a pair, each call's record, the pairwise and single
//! judgements, and their rows for the store.

use serde::{Deserialize, Serialize};
use versus_core::{JudgeVerdict, JudgementKind};
use versus_store::JudgementRecord;

/// The verdict on a pair, over both orders.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PairVerdict {
    ModelA,
    ModelB,
    Tie,
    /// The two orders disagreed (including a win against a tie): counted as a tie.
    Inconsistent,
    /// A call failed or its answer had no verdict: no winner.
    Error,
}

impl From<PairVerdict> for JudgeVerdict {
    fn from(verdict: PairVerdict) -> JudgeVerdict {
        match verdict {
            PairVerdict::ModelA => JudgeVerdict::ModelA,
            PairVerdict::ModelB => JudgeVerdict::ModelB,
            PairVerdict::Tie => JudgeVerdict::Tie,
            PairVerdict::Inconsistent => JudgeVerdict::Inconsistent,
            PairVerdict::Error => JudgeVerdict::Error,
        }
    }
}

/// One call to the judge.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JudgeCall {
    /// The prompt file used: `builtin:pairwise.md` or an override's path.
    pub prompt: String,
    /// The judge's full text; empty when the call failed.
    pub output: String,
    /// `A`, `B` or `tie` (pairwise), or the rating.
    pub parsed: Option<String>,
    /// Why there is no parsed verdict: the call failed, or the answer held none.
    pub error: Option<String>,
    /// Answered from the store without calling the judge.
    pub cached: bool,
}

/// A pairwise judgement: both orders and what they add up to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PairwiseJudgement {
    pub model_a: String,
    pub model_b: String,
    pub verdict: PairVerdict,
    /// `model_a`'s answer shown as A.
    pub first: JudgeCall,
    /// Swapped: `model_b`'s answer shown as A.
    pub second: JudgeCall,
    /// What each order said, in a line.
    pub explanation: String,
}

/// A single-answer rating.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SingleJudgement {
    /// 1-10; `None` when the call failed or gave no rating in range.
    pub rating: Option<f64>,
    pub call: JudgeCall,
    pub explanation: String,
}

impl PairwiseJudgement {
    pub fn to_record(&self, task_id: &str, judge_label: &str) -> JudgementRecord {
        JudgementRecord {
            task_id: task_id.to_string(),
            kind: JudgementKind::Pairwise,
            model_a: self.model_a.clone(),
            model_b: self.model_b.clone(),
            judge: judge_label.to_string(),
            verdict: self.verdict.into(),
            rating: None,
            detail: detail_json(self),
        }
    }
}

impl SingleJudgement {
    /// `model` is the rated model (the judgement itself does not name it).
    pub fn to_record(&self, task_id: &str, model: &str, judge_label: &str) -> JudgementRecord {
        JudgementRecord {
            task_id: task_id.to_string(),
            kind: JudgementKind::Single,
            model_a: model.to_string(),
            model_b: String::new(),
            judge: judge_label.to_string(),
            verdict: if self.rating.is_some() {
                JudgeVerdict::Rated
            } else {
                JudgeVerdict::Error
            },
            rating: self.rating,
            detail: detail_json(self),
        }
    }
}

fn detail_json<T: Serialize>(value: &T) -> serde_json::Value {
    // Plain structs of strings and numbers always serialize; `{}` only guards the impossible.
    serde_json::to_value(value).unwrap_or_else(|_| serde_json::json!({}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_carry_the_whole_judgement() {
        let call = |parsed: &str| JudgeCall {
            prompt: "builtin:pairwise.md".into(),
            output: format!("[[{parsed}]]"),
            parsed: Some(parsed.into()),
            error: None,
            cached: false,
        };
        let judgement = PairwiseJudgement {
            model_a: "m1".into(),
            model_b: "m2".into(),
            verdict: PairVerdict::ModelA,
            first: call("A"),
            second: call("B"),
            explanation: "`m1` better in both orders".into(),
        };
        let record = judgement.to_record("t", "gpt-4o");
        assert_eq!(
            (
                record.kind.as_str(),
                record.model_a.as_str(),
                record.model_b.as_str()
            ),
            ("pairwise", "m1", "m2")
        );
        assert_eq!(
            (record.judge.as_str(), record.verdict.as_str()),
            ("gpt-4o", "model_a")
        );
        let back: PairwiseJudgement =
            serde_json::from_value(record.detail).expect("detail is the judgement as JSON");
        assert_eq!(back, judgement);
    }
}
