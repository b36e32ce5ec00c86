//! Checks: what a suite says a good answer must satisfy (`[[tasks.checks]]`), and the evaluation of
//! the checks that need nothing but the answer's text. Code checks (run in a sandbox) and metric
//! checks (against the task's reference) are evaluated by the caller, which owns that machinery.

use serde::{Deserialize, Serialize};

use crate::fenced::fenced_blocks;

/// One check on an answer, with its weight in the task's check score.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Check {
    #[serde(flatten)]
    pub kind: CheckKind,
    /// Share of this check in the task's weighted score (default 1).
    #[serde(default = "one")]
    pub weight: f64,
    /// A label for reports; defaults to a description of the check.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

fn one() -> f64 {
    1.0
}

/// The kinds of check, as written in `type = "..."`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum CheckKind {
    /// The whole answer (trimmed) equals `value`.
    Equals {
        value: String,
        #[serde(default)]
        ignore_case: bool,
    },
    Contains {
        value: String,
        #[serde(default)]
        ignore_case: bool,
    },
    ContainsAny {
        values: Vec<String>,
        #[serde(default)]
        ignore_case: bool,
    },
    ContainsAll {
        values: Vec<String>,
        #[serde(default)]
        ignore_case: bool,
    },
    /// None of `values` appears.
    NotContains {
        values: Vec<String>,
        #[serde(default)]
        ignore_case: bool,
    },
    /// The answer matches the regular expression (Rust `regex` syntax).
    Regex { pattern: String },
    /// The answer (or else its first fenced block that parses) is valid JSON, and fits `schema`
    /// when given.
    Json {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        schema: Option<serde_json::Value>,
    },
    /// Word count within bounds.
    Words {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        min: Option<u64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        max: Option<u64>,
    },
    /// Answer length in tokens (as the model reported them) within bounds.
    Tokens {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        min: Option<u64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        max: Option<u64>,
    },
    /// A reference metric or text statistic within bounds, e.g. `metric = "rougeL"`, `min = 0.3`.
    Metric {
        metric: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        min: Option<f64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        max: Option<f64>,
    },
    /// Extract the answer's code in `language` and run it with `tests` in a sandbox.
    Code {
        language: String,
        tests: String,
        /// The function the tests call, when the answer's own cannot be found.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        function: Option<String>,
        /// Wall-clock limit in seconds.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        timeout: Option<f64>,
    },
}

/// The metrics a `metric` check may name.
pub const METRICS: &[&str] = &[
    "rouge1",
    "rouge2",
    "rougeL",
    "rougeLsum",
    "bleu",
    "flesch_reading_ease",
    "flesch_kincaid_grade",
    "words",
    "sentences",
    "type_token_ratio",
    "mtld",
];

/// The outcome of one check.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckResult {
    pub passed: bool,
    /// 1 for a pass, 0 for a fail (checks are pass/fail; the weight makes the task's score).
    pub value: f64,
    pub explanation: String,
}

impl CheckResult {
    pub fn pass(explanation: impl Into<String>) -> CheckResult {
        CheckResult {
            passed: true,
            value: 1.0,
            explanation: explanation.into(),
        }
    }

    pub fn fail(explanation: impl Into<String>) -> CheckResult {
        CheckResult {
            passed: false,
            value: 0.0,
            explanation: explanation.into(),
        }
    }

    fn from(passed: bool, explanation: String) -> CheckResult {
        if passed {
            CheckResult::pass(explanation)
        } else {
            CheckResult::fail(explanation)
        }
    }
}

impl Check {
    /// A short description for reports: the name, or what the check asks.
    pub fn label(&self) -> String {
        if let Some(name) = &self.name {
            return name.clone();
        }
        match &self.kind {
            CheckKind::Equals { value, .. } => format!("equals {value:?}"),
            CheckKind::Contains { value, .. } => format!("contains {value:?}"),
            CheckKind::ContainsAny { values, .. } => format!("contains any of {values:?}"),
            CheckKind::ContainsAll { values, .. } => format!("contains all of {values:?}"),
            CheckKind::NotContains { values, .. } => format!("contains none of {values:?}"),
            CheckKind::Regex { pattern } => format!("matches /{pattern}/"),
            CheckKind::Json { schema: None } => "valid JSON".into(),
            CheckKind::Json { schema: Some(_) } => "JSON fitting the schema".into(),
            CheckKind::Words { min, max } => format!("words {}", bounds(min, max)),
            CheckKind::Tokens { min, max } => format!("tokens {}", bounds(min, max)),
            CheckKind::Metric { metric, min, max } => {
                format!("{metric} {}", bounds(min, max))
            }
            CheckKind::Code { language, .. } => format!("{language} code passes the tests"),
        }
    }

    /// Checks a suite can get wrong in ways found only by compiling them (a bad regex or
    /// schema, an unknown metric or language), so suites fail at load time rather than mid-run.
    pub fn validate(&self) -> Result<(), String> {
        match &self.kind {
            CheckKind::Regex { pattern } => regex::Regex::new(pattern)
                .map(|_| ())
                .map_err(|e| format!("invalid regex: {e}")),
            CheckKind::Json {
                schema: Some(schema),
            } => jsonschema::validator_for(schema)
                .map(|_| ())
                .map_err(|e| format!("invalid JSON Schema: {e}")),
            CheckKind::Metric { metric, min, max } => {
                if !METRICS.contains(&metric.as_str()) {
                    let hint = crate::suggest::closest(metric, METRICS.iter().copied())
                        .map(|m| format!("; did you mean `{m}`?"))
                        .unwrap_or_default();
                    return Err(format!(
                        "unknown metric `{metric}` (known: {}){hint}",
                        METRICS.join(", ")
                    ));
                }
                if min.is_none() && max.is_none() {
                    return Err("a metric check needs `min` or `max`".into());
                }
                Ok(())
            }
            CheckKind::Words {
                min: None,
                max: None,
            }
            | CheckKind::Tokens {
                min: None,
                max: None,
            } => Err("a length check needs `min` or `max`".into()),
            CheckKind::Code {
                language, tests, ..
            } => {
                if !["python", "javascript", "rust"].contains(&language.as_str()) {
                    return Err(format!(
                        "unknown language `{language}` (python, javascript, rust)"
                    ));
                }
                if tests.trim().is_empty() {
                    return Err("a code check needs `tests`".into());
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// Evaluates a check that needs only the answer (and its reported token count). `None` for
    /// metric and code checks, which the caller evaluates.
    pub fn evaluate_text(
        &self,
        answer: &str,
        completion_tokens: Option<u64>,
    ) -> Option<CheckResult> {
        let fold = |text: &str, ignore_case: bool| {
            if ignore_case {
                text.to_lowercase()
            } else {
                text.to_string()
            }
        };
        let result = match &self.kind {
            CheckKind::Equals { value, ignore_case } => {
                let ok = fold(answer.trim(), *ignore_case) == fold(value.trim(), *ignore_case);
                CheckResult::from(
                    ok,
                    if ok {
                        "the answer equals the expected text".into()
                    } else {
                        format!("the answer is not {value:?}")
                    },
                )
            }
            CheckKind::Contains { value, ignore_case } => {
                let ok = fold(answer, *ignore_case).contains(&fold(value, *ignore_case));
                CheckResult::from(
                    ok,
                    format!("{value:?} {}", if ok { "found" } else { "not found" }),
                )
            }
            CheckKind::ContainsAny {
                values,
                ignore_case,
            } => {
                let haystack = fold(answer, *ignore_case);
                match values
                    .iter()
                    .find(|v| haystack.contains(&fold(v, *ignore_case)))
                {
                    Some(found) => CheckResult::pass(format!("{found:?} found")),
                    None => CheckResult::fail(format!("none of {values:?} found")),
                }
            }
            CheckKind::ContainsAll {
                values,
                ignore_case,
            } => {
                let haystack = fold(answer, *ignore_case);
                let missing: Vec<&String> = values
                    .iter()
                    .filter(|v| !haystack.contains(&fold(v, *ignore_case)))
                    .collect();
                if missing.is_empty() {
                    CheckResult::pass(format!("all {} found", values.len()))
                } else {
                    CheckResult::fail(format!("missing {missing:?}"))
                }
            }
            CheckKind::NotContains {
                values,
                ignore_case,
            } => {
                let haystack = fold(answer, *ignore_case);
                let present: Vec<&String> = values
                    .iter()
                    .filter(|v| haystack.contains(&fold(v, *ignore_case)))
                    .collect();
                if present.is_empty() {
                    CheckResult::pass("none of the forbidden texts found")
                } else {
                    CheckResult::fail(format!("found {present:?}"))
                }
            }
            CheckKind::Regex { pattern } => match regex::Regex::new(pattern) {
                Ok(re) => match re.find(answer) {
                    Some(m) => CheckResult::pass(format!("matched {:?}", m.as_str())),
                    None => CheckResult::fail(format!("no match for /{pattern}/")),
                },
                Err(e) => CheckResult::fail(format!("invalid regex: {e}")),
            },
            CheckKind::Json { schema } => json_check(answer, schema.as_ref()),
            CheckKind::Words { min, max } => {
                let words = answer.split_whitespace().count() as u64;
                let ok = within(words, min, max);
                CheckResult::from(ok, format!("{words} words, wanted {}", bounds(min, max)))
            }
            CheckKind::Tokens { min, max } => match completion_tokens {
                Some(tokens) => {
                    let ok = within(tokens, min, max);
                    CheckResult::from(ok, format!("{tokens} tokens, wanted {}", bounds(min, max)))
                }
                None => CheckResult::fail("the model reported no token count"),
            },
            CheckKind::Metric { .. } | CheckKind::Code { .. } => return None,
        };
        Some(result)
    }
}

fn within<T: PartialOrd + Copy>(value: T, min: &Option<T>, max: &Option<T>) -> bool {
    min.is_none_or(|m| value >= m) && max.is_none_or(|m| value <= m)
}

fn bounds<T: std::fmt::Display>(min: &Option<T>, max: &Option<T>) -> String {
    match (min, max) {
        (Some(a), Some(b)) => format!("between {a} and {b}"),
        (Some(a), None) => format!("at least {a}"),
        (None, Some(b)) => format!("at most {b}"),
        (None, None) => "any".into(),
    }
}

/// Whether a metric value is within a metric check's bounds, as a result with its explanation.
pub fn metric_result(
    metric: &str,
    value: f64,
    min: &Option<f64>,
    max: &Option<f64>,
) -> CheckResult {
    let ok = within(value, min, max);
    CheckResult::from(
        ok,
        format!("{metric} = {value:.4}, wanted {}", bounds(min, max)),
    )
}

/// The answer as JSON: the whole text, or else the first fenced block that parses, whatever its
/// label. The blocks are [`fenced_blocks`]'s, the same ones code checks read.
fn json_check(answer: &str, schema: Option<&serde_json::Value>) -> CheckResult {
    let parsed = serde_json::from_str::<serde_json::Value>(answer.trim())
        .ok()
        .or_else(|| {
            fenced_blocks(answer)
                .into_iter()
                .find_map(|block| serde_json::from_str(block.content.trim()).ok())
        });
    let Some(value) = parsed else {
        return CheckResult::fail("the answer holds no valid JSON");
    };
    let Some(schema) = schema else {
        return CheckResult::pass("valid JSON");
    };
    match jsonschema::validator_for(schema) {
        Err(e) => CheckResult::fail(format!("invalid JSON Schema: {e}")),
        Ok(validator) => {
            let errors: Vec<String> = validator
                .iter_errors(&value)
                .take(3)
                .map(|e| format!("{} at {}", e, e.instance_path()))
                .collect();
            if errors.is_empty() {
                CheckResult::pass("valid JSON fitting the schema")
            } else {
                CheckResult::fail(format!(
                    "JSON does not fit the schema: {}",
                    errors.join("; ")
                ))
            }
        }
    }
}

/// The weighted score of a task's check results (0..1) and whether it reaches `threshold`.
pub fn weighted_score(results: &[(f64, &CheckResult)], threshold: f64) -> Option<(f64, bool)> {
    let total: f64 = results.iter().map(|(w, _)| w).sum();
    if results.is_empty() || total <= 0.0 {
        return None;
    }
    let score = results.iter().map(|(w, r)| w * r.value).sum::<f64>() / total;
    Some((score, score + 1e-12 >= threshold))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(toml_text: &str) -> Check {
        toml::from_str(toml_text).expect("check parses")
    }

    /// Evaluates a check given as TOML on `answer`: (passed, explanation).
    fn run(toml_text: &str, answer: &str) -> (bool, String) {
        let c = check(toml_text);
        c.validate().expect("valid check");
        let r = c.evaluate_text(answer, Some(12)).expect("a text check");
        (r.passed, r.explanation)
    }

    #[test]
    fn text_checks() {
        assert!(run("type = \"equals\"\nvalue = \"Yes\"", " Yes\n").0);
        assert!(!run("type = \"equals\"\nvalue = \"Yes\"", "yes").0);
        assert!(
            run(
                "type = \"equals\"\nvalue = \"Yes\"\nignore_case = true",
                "yes"
            )
            .0
        );
        assert!(run("type = \"contains\"\nvalue = \"east\"", "rises in the east").0);
        assert!(
            run(
                "type = \"contains_any\"\nvalues = [\"x\", \"east\"]",
                "the east"
            )
            .0
        );
        let (ok, why) = run(
            "type = \"contains_all\"\nvalues = [\"east\", \"west\"]",
            "east",
        );
        assert!(!ok && why.contains("west"), "{why}");
        assert!(
            !run(
                "type = \"not_contains\"\nvalues = [\"As an AI\"]\nignore_case = true",
                "as an ai model"
            )
            .0
        );
        assert!(run("type = \"regex\"\npattern = \"\\\\d{4}\"", "in 1468").0);
        assert!(run("type = \"words\"\nmax = 3", "one two three").0);
        assert!(!run("type = \"words\"\nmin = 4", "one two three").0);
        assert!(run("type = \"tokens\"\nmin = 10\nmax = 20", "whatever").0);
    }

    #[test]
    fn json_checks_find_fenced_json_and_apply_schemas() {
        let schema = "type = \"json\"\nschema = { type = \"object\", required = [\"name\"], properties = { name = { type = \"string\" } } }";
        assert!(run(schema, "Here:\n```json\n{\"name\": \"Ada\"}\n```").0);
        let (ok, why) = run(schema, "{\"name\": 3}");
        assert!(!ok && why.contains("does not fit"), "{why}");
        assert!(!run("type = \"json\"", "not json").0);
    }

    /// The blocks a JSON check reads are the shared extractor's, the ones code checks read: on
    /// answers where the old, stricter extractor of this module found nothing (unclosed fences,
    /// longer closing fences) or might be misled, the check reads the first block that
    /// `fenced_blocks` yields and that parses, and nothing else.
    #[test]
    fn json_checks_read_the_blocks_code_checks_read() {
        let schema = "type = \"json\"\nschema = { type = \"object\", required = [\"name\"], properties = { name = { type = \"string\" } } }";
        let ada = serde_json::json!({"name": "Ada"});
        for answer in [
            // An unclosed fence (the answer was cut off) runs to the end.
            "Here you go:\n```json\n{\"name\": \"Ada\"}",
            // A longer closing fence closes; the next block is a block of its own.
            "```json\n{\"name\": \"Ada\"}\n`````\nand the code:\n```python\nprint(1)\n```\n",
            // ...so the decoy after it is never swallowed into the first block.
            "```\n{\"name\": \"Ada\"}\n````\n```json\n{\"name\": 3}\n```\n",
            // A shorter fence inside a longer one is content, not a block of its own.
            "````markdown\n```json\n{\"name\": 3}\n```\n````\n```json\n{\"name\": \"Ada\"}\n```\n",
            // Tilde fences.
            "~~~json\n{\"name\": \"Ada\"}\n~~~\n",
            // A fence indented in a list item.
            "1. The record:\n   ```json\n   {\"name\":\n     \"Ada\"}\n   ```\n",
        ] {
            let (ok, why) = run(schema, answer);
            assert!(ok, "{why}: {answer:?}");
            let read = fenced_blocks(answer)
                .into_iter()
                .find_map(|block| serde_json::from_str::<serde_json::Value>(&block.content).ok());
            assert_eq!(read.as_ref(), Some(&ada), "{answer:?}");
        }
        // No block that parses, however the fences fall: a fail, not a guess.
        assert!(
            !run(
                "type = \"json\"",
                "```json\n{\"name\":\n````\n\"Ada\"}\n```\n"
            )
            .0
        );
    }

    #[test]
    fn bad_checks_are_caught_at_load_time() {
        let err = |t: &str| check(t).validate().unwrap_err();
        assert!(err("type = \"regex\"\npattern = \"(\"").contains("invalid regex"));
        assert!(err("type = \"metric\"\nmetric = \"rougel\"\nmin = 0.2")
            .contains("did you mean `rougeL`"));
        assert!(err("type = \"words\"").contains("min"));
        assert!(err("type = \"code\"\nlanguage = \"cobol\"\ntests = \"x\"")
            .contains("unknown language"));
        assert!(toml::from_str::<Check>("type = \"nope\"").is_err());
    }

    #[test]
    fn weighted_scores_reach_thresholds() {
        let pass = CheckResult::pass("");
        let fail = CheckResult::fail("");
        let results = [(3.0, &pass), (1.0, &fail)];
        assert_eq!(weighted_score(&results, 0.75), Some((0.75, true)));
        assert_eq!(weighted_score(&results, 1.0), Some((0.75, false)));
        assert_eq!(weighted_score(&[], 1.0), None);
    }
}
