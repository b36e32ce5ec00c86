//! Battles: one vote between two models, as Chatbot Arena's battle logs write it, and the JSONL
//! format of `versus votes import` (one battle per line) with errors that name line and field.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use thiserror::Error;

/// The outcome of a battle, with the Arena's spellings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Winner {
    #[serde(rename = "model_a")]
    ModelA,
    #[serde(rename = "model_b")]
    ModelB,
    #[serde(rename = "tie")]
    Tie,
    /// A tie where the voter found both answers bad. Every statistic here counts it as a tie,
    /// as the Arena does.
    #[serde(rename = "tie (bothbad)")]
    TieBothBad,
}

impl Winner {
    /// Every outcome, in the order error messages list them.
    pub const ALL: [Winner; 4] = [
        Winner::ModelA,
        Winner::ModelB,
        Winner::Tie,
        Winner::TieBothBad,
    ];

    /// The Arena's spelling, as in the battle logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Winner::ModelA => "model_a",
            Winner::ModelB => "model_b",
            Winner::Tie => "tie",
            Winner::TieBothBad => "tie (bothbad)",
        }
    }

    /// True for both kinds of tie.
    pub fn is_tie(self) -> bool {
        matches!(self, Winner::Tie | Winner::TieBothBad)
    }

    /// Each side's points, `(model_a, model_b)`: a win 1, either kind of tie ½, a loss 0. Every
    /// points tally and win rate in versus counts this way.
    pub fn points(self) -> (f64, f64) {
        let a = f64::from(self.half_points_a()) / 2.0;
        (a, 1.0 - a)
    }

    /// Model A's share of the battle in half points: 2 for a win, 1 for a tie, 0 for a loss.
    /// These are the Arena's sample weights (a win counts twice, a tie once for each side).
    pub(crate) fn half_points_a(self) -> u8 {
        match self {
            Winner::ModelA => 2,
            Winner::ModelB => 0,
            Winner::Tie | Winner::TieBothBad => 1,
        }
    }
}

impl fmt::Display for Winner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A string that is not one of the Arena's four outcomes.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("unknown winner {found:?}; expected one of {}", allowed_winners())]
pub struct UnknownWinner {
    pub found: String,
}

impl FromStr for Winner {
    type Err = UnknownWinner;

    fn from_str(text: &str) -> Result<Winner, UnknownWinner> {
        Winner::ALL
            .into_iter()
            .find(|winner| winner.as_str() == text)
            .ok_or_else(|| UnknownWinner {
                found: text.to_string(),
            })
    }
}

fn allowed_winners() -> String {
    let quoted: Vec<String> = Winner::ALL
        .iter()
        .map(|winner| format!("{:?}", winner.as_str()))
        .collect();
    quoted.join(", ")
}

/// One vote: which of two models answered better, optionally with the task, its category and
/// who judged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Battle {
    pub model_a: String,
    pub model_b: String,
    pub winner: Winner,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub judge: Option<String>,
}

impl Battle {
    /// A battle with no task, category or judge.
    pub fn new(model_a: impl Into<String>, model_b: impl Into<String>, winner: Winner) -> Battle {
        Battle {
            model_a: model_a.into(),
            model_b: model_b.into(),
            winner,
            task: None,
            category: None,
            judge: None,
        }
    }
}

/// Why a line of a battles JSONL file was rejected. Lines count from 1, blank lines included.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum BattleParseError {
    #[error("line {line}: not valid JSON: {message}")]
    InvalidJson { line: usize, message: String },
    #[error("line {line}: expected a JSON object with model_a, model_b and winner, found {found}")]
    NotAnObject { line: usize, found: &'static str },
    #[error("line {line}: missing field `{field}`")]
    MissingField { line: usize, field: &'static str },
    #[error("line {line}: field `{field}` must be a string, found {found}")]
    NotAString {
        line: usize,
        field: &'static str,
        found: &'static str,
    },
    #[error("line {line}: field `{field}` is empty")]
    EmptyField { line: usize, field: &'static str },
    #[error(
        "line {line}: field `winner` is {found:?}; expected one of {}",
        allowed_winners()
    )]
    UnknownWinner { line: usize, found: String },
    #[error(
        "line {line}: model_a and model_b are both {model:?}; a battle is between two different \
         models"
    )]
    SameModel { line: usize, model: String },
}

impl BattleParseError {
    /// The 1-based line the error is on.
    pub fn line(&self) -> usize {
        match self {
            BattleParseError::InvalidJson { line, .. }
            | BattleParseError::NotAnObject { line, .. }
            | BattleParseError::MissingField { line, .. }
            | BattleParseError::NotAString { line, .. }
            | BattleParseError::EmptyField { line, .. }
            | BattleParseError::UnknownWinner { line, .. }
            | BattleParseError::SameModel { line, .. } => *line,
        }
    }

    /// The field at fault, when one is.
    pub fn field(&self) -> Option<&'static str> {
        match self {
            BattleParseError::InvalidJson { .. } | BattleParseError::NotAnObject { .. } => None,
            BattleParseError::MissingField { field, .. }
            | BattleParseError::NotAString { field, .. }
            | BattleParseError::EmptyField { field, .. } => Some(field),
            BattleParseError::UnknownWinner { .. } => Some("winner"),
            BattleParseError::SameModel { .. } => Some("model_b"),
        }
    }
}

/// Parses battles, one JSON object per line: `model_a`, `model_b`, `winner` (`model_a`,
/// `model_b`, `tie` or `tie (bothbad)`), and optionally `task`, `category`, `judge` (strings or
/// null). Other fields are ignored, so the Arena's own battle records import as they are. Blank
/// lines are skipped; the first bad line stops the parse.
pub fn parse_battles_jsonl(text: &str) -> Result<Vec<Battle>, BattleParseError> {
    // A byte order mark is not part of the first object.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut battles = Vec::new();
    for (index, content) in text.lines().enumerate() {
        if content.trim().is_empty() {
            continue;
        }
        battles.push(parse_battle_line(index + 1, content)?);
    }
    Ok(battles)
}

fn parse_battle_line(line: usize, content: &str) -> Result<Battle, BattleParseError> {
    let value: Value =
        serde_json::from_str(content).map_err(|error| BattleParseError::InvalidJson {
            line,
            message: error.to_string(),
        })?;
    let Value::Object(object) = value else {
        return Err(BattleParseError::NotAnObject {
            line,
            found: json_kind(&value),
        });
    };
    let model_a = required_name(&object, line, "model_a")?;
    let model_b = required_name(&object, line, "model_b")?;
    let winner_text = required_string(&object, line, "winner")?;
    let winner =
        winner_text
            .parse::<Winner>()
            .map_err(|unknown| BattleParseError::UnknownWinner {
                line,
                found: unknown.found,
            })?;
    if model_a == model_b {
        return Err(BattleParseError::SameModel {
            line,
            model: model_a,
        });
    }
    Ok(Battle {
        model_a,
        model_b,
        winner,
        task: optional_string(&object, line, "task")?,
        category: optional_string(&object, line, "category")?,
        judge: optional_string(&object, line, "judge")?,
    })
}

fn required_string(
    object: &Map<String, Value>,
    line: usize,
    field: &'static str,
) -> Result<String, BattleParseError> {
    match object.get(field) {
        None | Some(Value::Null) => Err(BattleParseError::MissingField { line, field }),
        Some(Value::String(text)) => Ok(text.clone()),
        Some(other) => Err(BattleParseError::NotAString {
            line,
            field,
            found: json_kind(other),
        }),
    }
}

fn required_name(
    object: &Map<String, Value>,
    line: usize,
    field: &'static str,
) -> Result<String, BattleParseError> {
    let name = required_string(object, line, field)?;
    if name.trim().is_empty() {
        return Err(BattleParseError::EmptyField { line, field });
    }
    Ok(name)
}

fn optional_string(
    object: &Map<String, Value>,
    line: usize,
    field: &'static str,
) -> Result<Option<String>, BattleParseError> {
    match object.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) => Ok(Some(text.clone())),
        Some(other) => Err(BattleParseError::NotAString {
            line,
            field,
            found: json_kind(other),
        }),
    }
}

fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_error(text: &str) -> BattleParseError {
        match parse_battles_jsonl(text) {
            Ok(battles) => panic!("expected an error, parsed {battles:?}"),
            Err(error) => error,
        }
    }

    #[test]
    fn parses_lines_skipping_blanks_and_unknown_fields() {
        let text = "\u{feff}{\"model_a\":\"x\",\"model_b\":\"y\",\"winner\":\"model_a\"}\n\n   \n\
                    {\"model_a\":\"y\",\"model_b\":\"z\",\"winner\":\"tie (bothbad)\",\
                    \"category\":\"coding\",\"task\":\"t1\",\"judge\":null,\"tstamp\":1.5}\r\n";
        let battles = parse_battles_jsonl(text).unwrap();
        assert_eq!(battles.len(), 2);
        assert_eq!(battles[0], Battle::new("x", "y", Winner::ModelA));
        assert_eq!(battles[1].winner, Winner::TieBothBad);
        assert_eq!(battles[1].category.as_deref(), Some("coding"));
        assert_eq!(battles[1].task.as_deref(), Some("t1"));
        assert_eq!(battles[1].judge, None);
        assert_eq!(parse_battles_jsonl("").unwrap(), Vec::new());
    }

    #[test]
    fn serde_uses_the_arena_spellings() {
        let battle = Battle::new("x", "y", Winner::TieBothBad);
        let json = serde_json::to_string(&battle).unwrap();
        assert_eq!(
            json,
            r#"{"model_a":"x","model_b":"y","winner":"tie (bothbad)"}"#
        );
        assert_eq!(serde_json::from_str::<Battle>(&json).unwrap(), battle);
        for winner in Winner::ALL {
            assert_eq!(winner.as_str().parse::<Winner>(), Ok(winner));
            assert_eq!(
                serde_json::to_string(&winner).unwrap(),
                format!("{:?}", winner.as_str())
            );
        }
    }

    #[test]
    fn unknown_winner_names_line_field_and_allowed_values() {
        let text = "{\"model_a\":\"x\",\"model_b\":\"y\",\"winner\":\"model_a\"}\n\n\
                    {\"model_a\":\"x\",\"model_b\":\"y\",\"winner\":\"draw\"}\n";
        let error = parse_error(text);
        assert_eq!(error.line(), 3);
        assert_eq!(error.field(), Some("winner"));
        assert_eq!(
            error.to_string(),
            "line 3: field `winner` is \"draw\"; expected one of \"model_a\", \"model_b\", \
             \"tie\", \"tie (bothbad)\""
        );
    }

    #[test]
    fn each_kind_of_bad_line_is_located() {
        let cases: [(&str, usize, Option<&str>, &str); 9] = [
            ("{\"model_a\":\"x\"", 1, None, "not valid JSON"),
            ("\n[1,2]", 2, None, "found an array"),
            (
                "{\"model_b\":\"y\",\"winner\":\"tie\"}",
                1,
                Some("model_a"),
                "missing field `model_a`",
            ),
            (
                "{\"model_a\":\"x\",\"model_b\":null,\"winner\":\"tie\"}",
                1,
                Some("model_b"),
                "missing field `model_b`",
            ),
            (
                "{\"model_a\":\"x\",\"model_b\":\"y\"}",
                1,
                Some("winner"),
                "missing field `winner`",
            ),
            (
                "{\"model_a\":7,\"model_b\":\"y\",\"winner\":\"tie\"}",
                1,
                Some("model_a"),
                "must be a string, found a number",
            ),
            (
                "{\"model_a\":\" \",\"model_b\":\"y\",\"winner\":\"tie\"}",
                1,
                Some("model_a"),
                "field `model_a` is empty",
            ),
            (
                "\n\n\n{\"model_a\":\"x\",\"model_b\":\"y\",\"winner\":\"tie\",\"category\":[]}",
                4,
                Some("category"),
                "field `category` must be a string, found an array",
            ),
            (
                "{\"model_a\":\"x\",\"model_b\":\"x\",\"winner\":\"tie\"}",
                1,
                Some("model_b"),
                "model_a and model_b are both \"x\"",
            ),
        ];
        for (text, line, field, message) in cases {
            let error = parse_error(text);
            assert_eq!(error.line(), line, "{text}");
            assert_eq!(error.field(), field, "{text}");
            let shown = error.to_string();
            assert!(shown.starts_with(&format!("line {line}: ")), "{shown}");
            assert!(shown.contains(message), "{shown} lacks {message}");
        }
    }
}
