//! The vocabulary of verdicts: who won a task and on what evidence, and the rows of the criteria
//! table. The rules that produce them read scores, judgements and votes; every report format and
//! the viewer render these same values.

use std::fmt;

use serde::{Deserialize, Serialize};

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
}
