//! Suites: the TOML file that names models and tasks, parsed and validated into `Suite`, with
//! errors that point at file, line and column and name the field.

// Suite errors carry the offending source line for display; they are made once per failed
// parse, so their size does not matter.
#![allow(clippy::result_large_err)]

use std::collections::HashMap;
use std::fmt;
use std::ops::Range;

use serde::{Deserialize, Serialize};
use toml::Spanned;

use crate::checks::{Check, CheckKind};
use crate::message::{ContentPart, Message, Role};
use crate::model::{Modality, ModelConfig, ModelMetadata, Price};
use crate::params::GenerationParams;
use crate::spec::ModelSpec;
use crate::suggest;
use crate::wire_api::{OpenAiApi, WireApi};

/// A parsed, validated suite.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Suite {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub defaults: Defaults,
    pub models: Vec<ModelConfig>,
    pub tasks: Vec<Task>,
    /// The LLM judge, when the suite names one (`[judge]`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub judge: Option<JudgeConfig>,
    /// How verdicts decide (`[verdicts]`).
    #[serde(default)]
    pub verdicts: VerdictSettings,
}

/// `[verdicts]`: how sure a verdict must be before it names a winner.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct VerdictSettings {
    /// A criterion names a winner only when its Holm-adjusted p-value is below this.
    pub alpha: f64,
}

impl Default for VerdictSettings {
    fn default() -> VerdictSettings {
        VerdictSettings {
            alpha: crate::verdict::DEFAULT_ALPHA,
        }
    }
}

/// `[judge]`: which model grades the answers, and how.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JudgeConfig {
    /// A model id from `[[models]]`, or a spec such as `openai:gpt-4o`.
    pub model: String,
    /// Pairwise comparisons, each in both orders (MT-Bench style).
    pub pairwise: bool,
    /// Single-answer grading on a 1-10 rubric.
    pub single: bool,
    /// A folder whose prompt files replace the builtin ones (same file names).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompts: Option<String>,
}

/// Run-wide settings from `[defaults]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Defaults {
    pub params: GenerationParams,
    /// Per-request timeout.
    pub timeout_secs: f64,
    /// Requests in flight at once per model.
    pub concurrency: usize,
    /// Requests in flight at once across all models.
    pub max_concurrency: usize,
    /// Retries after the first attempt, for faults worth retrying (429, 5xx, resets, timeouts).
    pub retries: u32,
    /// The first back-off delay; it doubles on each retry, with jitter.
    pub retry_backoff_secs: f64,
    /// How many times each task is asked of each model (models and tasks may override it).
    #[serde(default = "one_sample")]
    pub samples: u32,
    /// The k of the pass@k figures reported for code checks (tasks may override it).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pass_at: Vec<u32>,
    /// The most bytes one response body (a JSON answer, or a whole stream) may have.
    #[serde(default = "default_max_response_bytes")]
    pub max_response_bytes: u64,
    /// The longest line (and event) of a streamed answer, in bytes.
    #[serde(default = "default_max_sse_line_bytes")]
    pub max_sse_line_bytes: u64,
}

fn one_sample() -> u32 {
    1
}

/// The default cap on one response body from a hosted model: a long answer streamed token by
/// token is a few megabytes; a server sending gigabytes is broken or hostile.
pub const DEFAULT_MAX_RESPONSE_BYTES: u64 = 64 * 1024 * 1024;
/// The default cap on one line of a streamed answer: far beyond any chunk, even a whole answer
/// sent as one event.
pub const DEFAULT_MAX_SSE_LINE_BYTES: u64 = 8 * 1024 * 1024;
/// The range both caps may be set in (1 KiB to 4 GiB).
pub const RESPONSE_LIMIT_RANGE: (u64, u64) = (1024, 4 * 1024 * 1024 * 1024);
/// The most retries a request may have.
pub const MAX_RETRIES: u32 = 100;
/// The largest `min`/`max` of a words or tokens check.
pub const MAX_COUNT_BOUND: f64 = 1e12;
/// The highest price a model may be given, in USD per million tokens.
pub const MAX_PRICE: f64 = 1_000_000.0;
/// The longest context a model may claim, in tokens (2^40).
pub const MAX_CONTEXT_LENGTH: u64 = 1 << 40;

fn default_max_response_bytes() -> u64 {
    DEFAULT_MAX_RESPONSE_BYTES
}

fn default_max_sse_line_bytes() -> u64 {
    DEFAULT_MAX_SSE_LINE_BYTES
}

/// The most samples a cell may have: enough for pass@100 with room to spare, few enough that a
/// typo (`samples = 10000000`) is caught at load time rather than by the bill.
pub const MAX_SAMPLES: u32 = 1000;
/// The most sequences a suite may ask a local model to decode together (`batch`).
pub const MAX_BATCH: usize = 256;

impl Default for Defaults {
    fn default() -> Defaults {
        Defaults {
            // The seed article ran GPT-4o-mini at temperature 0, and the pipeline greedily.
            params: GenerationParams {
                temperature: Some(0.0),
                ..GenerationParams::default()
            },
            timeout_secs: 120.0,
            concurrency: 4,
            max_concurrency: 16,
            retries: 4,
            retry_backoff_secs: 1.0,
            samples: 1,
            pass_at: Vec::new(),
            max_response_bytes: DEFAULT_MAX_RESPONSE_BYTES,
            max_sse_line_bytes: DEFAULT_MAX_SSE_LINE_BYTES,
        }
    }
}

/// A place in a suite file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Location {
    pub line: usize,
    pub column: usize,
}

/// A file the suite refers to, relative to the suite's folder, with where it was named.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileRef {
    pub path: String,
    pub location: Location,
}

/// One task: the same messages go to every model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Task {
    pub id: String,
    pub category: String,
    /// The conversation as written in the suite, system message first; images are not included
    /// (see `images`), since reading them is the caller's I/O.
    pub messages: Vec<Message>,
    /// Images sent with the last user message, as paths (relative to the suite) or URLs.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub images: Vec<FileRef>,
    /// A reference answer (e.g. a human summary) for metrics and judges.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
    /// A file holding the reference answer; the caller reads it into `reference`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference_file: Option<FileRef>,
    #[serde(default)]
    pub params: GenerationParams,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    /// What a good answer must satisfy.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub checks: Vec<Check>,
    /// The weighted share of checks an answer must pass (default 1: all).
    #[serde(default = "full_score")]
    pub pass_threshold: f64,
    /// Tasks that share a group (several questions on one passage) are not independent:
    /// verdicts treat each group as one unit (clustered standard errors).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// How many times this task is asked of each model, over the model's and the suite's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub samples: Option<u32>,
    /// The k of this task's pass@k figures, over the suite's `pass_at`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pass_at: Option<Vec<u32>>,
    #[serde(default)]
    pub location: Location,
}

fn full_score() -> f64 {
    1.0
}

impl Task {
    /// The messages with `images` appended to the last user message.
    pub fn messages_with_images(&self, images: Vec<ContentPart>) -> Vec<Message> {
        let mut messages = self.messages.clone();
        if let Some(last_user) = messages.iter_mut().rev().find(|m| m.role == Role::User) {
            last_user.content.extend(images);
        }
        messages
    }

    /// The last user message's text: what a report shows as "the prompt".
    pub fn prompt_text(&self) -> String {
        self.messages
            .iter()
            .rev()
            .find(|m| m.role == Role::User)
            .map(Message::text_content)
            .unwrap_or_default()
    }

    pub fn system_text(&self) -> Option<String> {
        self.messages
            .iter()
            .find(|m| m.role == Role::System)
            .map(Message::text_content)
    }
}

/// A mistake in a suite file, with where it is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct SuiteError {
    /// The file (or builtin name) the suite came from.
    pub origin: String,
    pub location: Option<Location>,
    /// The offending line of the file, for display: cut to a window around the error when it is
    /// long, so that a deeply nested or minified line cannot flood the terminal.
    pub source_line: Option<String>,
    /// The column of the caret under `source_line` (1-based; differs from `location.column`
    /// when the line was cut).
    pub caret_column: usize,
    /// The field at fault, when one is.
    pub field: Option<String>,
    pub message: String,
    pub help: Option<String>,
}

impl fmt::Display for SuiteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.location {
            Some(at) => write!(f, "{}:{}:{}: ", self.origin, at.line, at.column)?,
            None => write!(f, "{}: ", self.origin)?,
        }
        f.write_str(&self.message)?;
        if let (Some(at), Some(line)) = (self.location, &self.source_line) {
            let gutter = at.line.to_string().len();
            write!(
                f,
                "\n{:gutter$} |\n{} | {}\n{:gutter$} | {:>col$}",
                "",
                at.line,
                line,
                "",
                "^",
                col = self.caret_column.max(1)
            )?;
        }
        if let Some(help) = &self.help {
            write!(f, "\n  help: {help}")?;
        }
        Ok(())
    }
}

/// Where a suite's text came from, for error messages.
pub struct SuiteSource<'a> {
    pub origin: &'a str,
    pub text: &'a str,
}

impl SuiteSource<'_> {
    fn location(&self, offset: usize) -> Location {
        let offset = offset.min(self.text.len());
        let before = &self.text[..offset];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let column = before[line_start..].chars().count() + 1;
        Location { line, column }
    }

    /// The line to quote under an error, cut to a window around `column` when it is long, and
    /// the caret's column in what is quoted.
    fn line_excerpt(&self, at: Location) -> Option<(String, usize)> {
        let line = self.text.lines().nth(at.line.saturating_sub(1))?;
        Some(excerpt(line, at.column))
    }

    /// An error at a byte range of the text.
    pub fn error_at(
        &self,
        span: Option<Range<usize>>,
        field: Option<&str>,
        message: impl Into<String>,
    ) -> SuiteError {
        let location = span.map(|span| self.location(span.start));
        let excerpt = location.and_then(|at| self.line_excerpt(at));
        SuiteError {
            origin: self.origin.to_string(),
            location,
            caret_column: excerpt.as_ref().map_or(1, |(_, column)| *column),
            source_line: excerpt.map(|(line, _)| line),
            field: field.map(str::to_string),
            message: cut_message(message.into()),
            help: None,
        }
    }

    /// An error at a location found earlier (for checks made after parsing, such as missing files).
    pub fn error_at_location(
        &self,
        location: Location,
        field: &str,
        message: impl Into<String>,
    ) -> SuiteError {
        let excerpt = self.line_excerpt(location);
        SuiteError {
            origin: self.origin.to_string(),
            location: Some(location),
            caret_column: excerpt.as_ref().map_or(1, |(_, column)| *column),
            source_line: excerpt.map(|(line, _)| line),
            field: Some(field.to_string()),
            message: cut_message(message.into()),
            help: None,
        }
    }

    /// The suite's text from the file's bytes: invalid UTF-8 is an error at the first bad byte,
    /// with its line and column (counted in characters before it).
    pub fn decode(origin: &str, bytes: &[u8]) -> Result<String, SuiteError> {
        match std::str::from_utf8(bytes) {
            Ok(text) => Ok(text.to_string()),
            Err(error) => {
                let good = error.valid_up_to();
                // Cannot fail: the bytes up to `valid_up_to` are valid UTF-8.
                let before = std::str::from_utf8(&bytes[..good]).unwrap_or_default();
                let source = SuiteSource {
                    origin,
                    text: before,
                };
                let bad = bytes[good..]
                    .iter()
                    .take(error.error_len().unwrap_or(1).max(1))
                    .map(|byte| format!("0x{byte:02x}"))
                    .collect::<Vec<_>>()
                    .join(" ");
                let mut error = source.error_at(
                    Some(good..good),
                    None,
                    format!("the file is not valid UTF-8: byte {bad} (offset {good}) is not UTF-8"),
                );
                error.help = Some("save the suite as UTF-8".to_string());
                Err(error)
            }
        }
    }
}

/// The longest source line quoted whole under an error; longer lines are cut to a window of this
/// many characters around the error.
pub const QUOTED_LINE_LIMIT: usize = 120;

/// The longest error message shown whole (a parser may quote a huge value back).
const MESSAGE_LIMIT: usize = 400;

/// `line` cut to at most `QUOTED_LINE_LIMIT` characters around `column` (1-based, in characters),
/// with `...` where it was cut, and the caret's column in the result.
fn excerpt(line: &str, column: usize) -> (String, usize) {
    let chars: Vec<char> = line.chars().collect();
    if chars.len() <= QUOTED_LINE_LIMIT {
        return (line.to_string(), column);
    }
    let at = column.saturating_sub(1).min(chars.len());
    let start = at.saturating_sub(QUOTED_LINE_LIMIT / 2);
    let end = (start + QUOTED_LINE_LIMIT).min(chars.len());
    let start = end.saturating_sub(QUOTED_LINE_LIMIT);
    let mut shown = String::new();
    let mut caret = at - start + 1;
    if start > 0 {
        shown.push_str("...");
        caret += 3;
    }
    shown.extend(&chars[start..end]);
    if end < chars.len() {
        shown.push_str("...");
    }
    (shown, caret)
}

/// A message cut to `MESSAGE_LIMIT` characters.
fn cut_message(message: String) -> String {
    if message.chars().count() <= MESSAGE_LIMIT {
        return message;
    }
    let mut cut: String = message.chars().take(MESSAGE_LIMIT).collect();
    cut.push_str("... (cut)");
    cut
}

impl SuiteError {
    pub fn with_help(mut self, help: impl Into<String>) -> SuiteError {
        self.help = Some(help.into());
        self
    }
}

// ---- The file format, as serde reads it. Kept apart from `Suite` so the file can stay flat and
// friendly while the vocabulary stays structured.

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSuite {
    name: Option<String>,
    description: Option<String>,
    #[serde(default)]
    defaults: RawDefaults,
    #[serde(default)]
    models: Vec<Spanned<RawModel>>,
    #[serde(default)]
    tasks: Vec<Spanned<RawTask>>,
    judge: Option<Spanned<RawJudge>>,
    verdicts: Option<RawVerdicts>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawVerdicts {
    alpha: Option<Spanned<f64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawJudge {
    model: Spanned<String>,
    pairwise: Option<bool>,
    single: Option<bool>,
    prompts: Option<String>,
}

/// A `[[tasks.checks]]` table as written: every key any check type takes, sorted out by `type`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCheck {
    #[serde(rename = "type")]
    kind: Spanned<String>,
    value: Option<String>,
    values: Option<Vec<String>>,
    ignore_case: Option<bool>,
    pattern: Option<String>,
    schema: Option<serde_json::Value>,
    metric: Option<String>,
    min: Option<f64>,
    max: Option<f64>,
    language: Option<String>,
    tests: Option<String>,
    function: Option<String>,
    timeout: Option<f64>,
    weight: Option<f64>,
    name: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawDefaults {
    temperature: Option<Spanned<f64>>,
    top_p: Option<Spanned<f64>>,
    max_tokens: Option<Spanned<u32>>,
    seed: Option<u64>,
    stop: Option<Vec<String>>,
    top_k: Option<Spanned<u32>>,
    min_p: Option<Spanned<f64>>,
    repetition_penalty: Option<Spanned<f64>>,
    thinking_budget: Option<Spanned<u32>>,
    reasoning_effort: Option<Spanned<String>>,
    timeout: Option<Spanned<f64>>,
    concurrency: Option<Spanned<usize>>,
    max_concurrency: Option<Spanned<usize>>,
    retries: Option<Spanned<u32>>,
    retry_backoff: Option<Spanned<f64>>,
    samples: Option<Spanned<u32>>,
    pass_at: Option<Spanned<Vec<u32>>>,
    max_response_bytes: Option<Spanned<u64>>,
    max_sse_line_bytes: Option<Spanned<u64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawModel {
    id: Option<Spanned<String>>,
    spec: Spanned<String>,
    base_url: Option<String>,
    endpoint: Option<Spanned<String>>,
    api_key_env: Option<String>,
    base_urls: Option<Spanned<Vec<String>>>,
    endpoints: Option<Spanned<Vec<String>>>,
    api_key_envs: Option<Spanned<Vec<String>>>,
    pool_in_cache_key: Option<bool>,
    requests_per_minute: Option<Spanned<u32>>,
    tokens_per_minute: Option<Spanned<u64>>,
    api: Option<Spanned<String>>,
    api_version: Option<Spanned<String>>,
    stream: Option<bool>,
    concurrency: Option<Spanned<usize>>,
    temperature: Option<Spanned<f64>>,
    top_p: Option<Spanned<f64>>,
    max_tokens: Option<Spanned<u32>>,
    seed: Option<u64>,
    stop: Option<Vec<String>>,
    top_k: Option<Spanned<u32>>,
    min_p: Option<Spanned<f64>>,
    repetition_penalty: Option<Spanned<f64>>,
    thinking_budget: Option<Spanned<u32>>,
    reasoning_effort: Option<Spanned<String>>,
    parameters: Option<String>,
    context_length: Option<Spanned<u64>>,
    modalities: Option<Vec<Modality>>,
    price: Option<Spanned<Price>>,
    architecture: Option<String>,
    dtype: Option<Spanned<String>>,
    quantize: Option<Spanned<String>>,
    device: Option<Spanned<String>>,
    chat_template_kwargs: Option<std::collections::BTreeMap<String, serde_json::Value>>,
    force: Option<bool>,
    batch: Option<Spanned<usize>>,
    samples: Option<Spanned<u32>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTask {
    id: Spanned<String>,
    category: Option<String>,
    system: Option<Spanned<String>>,
    prompt: Option<Spanned<String>>,
    messages: Option<Spanned<Vec<RawMessage>>>,
    #[serde(default)]
    images: Vec<Spanned<String>>,
    reference: Option<String>,
    reference_file: Option<Spanned<String>>,
    temperature: Option<Spanned<f64>>,
    top_p: Option<Spanned<f64>>,
    max_tokens: Option<Spanned<u32>>,
    seed: Option<u64>,
    stop: Option<Vec<String>>,
    top_k: Option<Spanned<u32>>,
    min_p: Option<Spanned<f64>>,
    repetition_penalty: Option<Spanned<f64>>,
    thinking_budget: Option<Spanned<u32>>,
    reasoning_effort: Option<Spanned<String>>,
    #[serde(default)]
    tags: Vec<String>,
    group: Option<Spanned<String>>,
    #[serde(default)]
    checks: Vec<Spanned<RawCheck>>,
    pass_threshold: Option<Spanned<f64>>,
    samples: Option<Spanned<u32>>,
    pass_at: Option<Spanned<Vec<u32>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMessage {
    role: Role,
    content: Spanned<String>,
}

/// The longest a code check may run: an hour.
pub const MAX_CODE_TIMEOUT_SECS: f64 = 3600.0;

/// The category a task gets when the suite names none.
pub const DEFAULT_CATEGORY: &str = "general";

/// Categories versus knows criteria for; any other string is allowed too.
pub const KNOWN_CATEGORIES: &[&str] = &[
    "reasoning",
    "coding",
    "creative",
    "summarization",
    "explanation",
];

impl Suite {
    /// Parses and validates a suite. File references (images, reference files) are recorded
    /// but not checked: that is the caller's I/O (see `Suite::file_refs`).
    pub fn parse(source: &SuiteSource<'_>) -> Result<Suite, SuiteError> {
        let raw: RawSuite = toml::from_str(source.text).map_err(|e| toml_error(source, &e))?;
        let defaults = convert_defaults(source, raw.defaults)?;

        let mut models: Vec<ModelConfig> = Vec::new();
        let mut model_spans: Vec<Range<usize>> = Vec::new();
        let mut model_lines: HashMap<String, Location> = HashMap::new();
        for raw_model in raw.models {
            let span = raw_model.span();
            model_spans.push(span.clone());
            let model = convert_model(source, raw_model.into_inner())?;
            let here = source.location(span.start);
            if let Some(first) = model_lines.insert(model.id.clone(), here) {
                return Err(source
                    .error_at(
                        Some(span),
                        Some("id"),
                        format!("duplicate model id `{}`", model.id),
                    )
                    .with_help(format!(
                        "line {} already defines it; give each model its own `id`",
                        first.line
                    )));
            }
            models.push(model);
        }

        let mut tasks: Vec<Task> = Vec::new();
        let mut task_spans: Vec<Range<usize>> = Vec::new();
        let mut task_lines: HashMap<String, Location> = HashMap::new();
        for raw_task in raw.tasks {
            let span = raw_task.span();
            task_spans.push(span.clone());
            let task = convert_task(source, span.clone(), raw_task.into_inner())?;
            if let Some(first) = task_lines.insert(task.id.clone(), task.location) {
                return Err(source
                    .error_at(
                        Some(span),
                        Some("id"),
                        format!("duplicate task id `{}`", task.id),
                    )
                    .with_help(format!(
                        "line {} already defines it; give each task its own `id`",
                        first.line
                    )));
            }
            tasks.push(task);
        }
        if tasks.is_empty() {
            return Err(source
                .error_at(None, Some("tasks"), "the suite has no tasks")
                .with_help("add at least one [[tasks]] table with an `id` and a `prompt`"));
        }

        check_parameter_support(
            source,
            &defaults,
            &models,
            &model_spans,
            &tasks,
            &task_spans,
        )?;

        let judge = raw
            .judge
            .map(|judge| {
                let judge = judge.into_inner();
                if judge.model.get_ref().trim().is_empty() {
                    return Err(source.error_at(
                        Some(judge.model.span()),
                        Some("model"),
                        "`[judge] model` is empty: name a model id from [[models]] or a spec",
                    ));
                }
                Ok(JudgeConfig {
                    model: judge.model.into_inner(),
                    pairwise: judge.pairwise.unwrap_or(true),
                    single: judge.single.unwrap_or(true),
                    prompts: judge.prompts,
                })
            })
            .transpose()?;
        let mut verdicts = VerdictSettings::default();
        if let Some(alpha) = raw.verdicts.and_then(|v| v.alpha) {
            let value = *alpha.get_ref();
            // Written so that NaN fails too.
            if !(value > 0.0 && value < 1.0) {
                return Err(source
                    .error_at(
                        Some(alpha.span()),
                        Some("alpha"),
                        format!("`[verdicts] alpha` is {value}, outside the open interval 0..1"),
                    )
                    .with_help("the significance level, for example 0.05 or 0.01"));
            }
            verdicts.alpha = value;
        }
        let name = raw
            .name
            .filter(|n| !n.trim().is_empty())
            .unwrap_or_else(|| default_name(source.origin));
        Ok(Suite {
            name,
            description: raw.description,
            defaults,
            models,
            tasks,
            judge,
            verdicts,
        })
    }

    /// Every file the suite names, for the caller to check and read.
    pub fn file_refs(&self) -> impl Iterator<Item = (&Task, &FileRef)> {
        self.tasks.iter().flat_map(|task| {
            task.images
                .iter()
                .chain(task.reference_file.iter())
                .map(move |file| (task, file))
        })
    }
}

/// Refuses parameters a model's API does not take, at the model (when `[defaults]` or the
/// model sets them) or at the task (when a task does), naming the model, its API and the field.
fn check_parameter_support(
    source: &SuiteSource<'_>,
    defaults: &Defaults,
    models: &[ModelConfig],
    model_spans: &[Range<usize>],
    tasks: &[Task],
    task_spans: &[Range<usize>],
) -> Result<(), SuiteError> {
    for (model, model_span) in models.iter().zip(model_spans) {
        let Some(api) = model.wire_api() else {
            continue;
        };
        let model_params = defaults.params.overlaid(&model.params);
        if let Some(problem) = api.check(&model_params) {
            let origin = if problem.param.is_set(&model.params) {
                "in its [[models]] entry"
            } else {
                "in [defaults]"
            };
            return Err(source
                .error_at(
                    Some(model_span.clone()),
                    Some(problem.param.name()),
                    format!(
                        "model `{}` ({}): {} (`{}` is set {origin})",
                        model.id,
                        model.spec,
                        problem.reason,
                        problem.param.name()
                    ),
                )
                .with_help(parameter_help(api, problem.param)));
        }
        for (task, task_span) in tasks.iter().zip(task_spans) {
            if let Some(problem) = api.check(&model_params.overlaid(&task.params)) {
                return Err(source
                    .error_at(
                        Some(task_span.clone()),
                        Some(problem.param.name()),
                        format!(
                            "task `{}` with model `{}` ({}): {} (`{}` is set by the task)",
                            task.id,
                            model.id,
                            model.spec,
                            problem.reason,
                            problem.param.name()
                        ),
                    )
                    .with_help(parameter_help(api, problem.param)));
            }
        }
    }
    Ok(())
}

/// What to do about a parameter an API refuses.
pub fn parameter_help(api: WireApi, param: crate::wire_api::Param) -> String {
    format!(
        "versus never drops a parameter that changes answers: set `{}` only on the models whose APIs take it, or remove it ({} takes: {})",
        param.name(),
        api.name(),
        crate::wire_api::Param::ALL
            .iter()
            .filter(|p| api.accepts(**p))
            .map(|p| p.name())
            .collect::<Vec<_>>()
            .join(", ")
    )
}

fn default_name(origin: &str) -> String {
    let file = origin.rsplit(['/', '\\']).next().unwrap_or(origin);
    file.strip_suffix(".toml").unwrap_or(file).to_string()
}

/// Turns a TOML or serde error into a `SuiteError`, adding "did you mean" to unknown keys.
fn toml_error(source: &SuiteSource<'_>, error: &toml::de::Error) -> SuiteError {
    let message = error.message().trim().to_string();
    if let Some(rest) = message.strip_prefix("unknown field `") {
        let unknown = rest.split('`').next().unwrap_or_default().to_string();
        let expected: Vec<&str> = rest
            .split_once("expected")
            .map(|(_, list)| list.split('`').skip(1).step_by(2).collect())
            .unwrap_or_default();
        let mut err = source.error_at(
            error.span(),
            Some(&unknown),
            format!("unknown key `{unknown}`"),
        );
        err.help = Some(match suggest::closest(&unknown, expected.iter().copied()) {
            Some(close) => format!("did you mean `{close}`?"),
            None => format!("expected one of: {}", expected.join(", ")),
        });
        return err;
    }
    let field = message
        .strip_prefix("missing field `")
        .and_then(|rest| rest.split('`').next());
    source.error_at(error.span(), field, message.clone())
}

fn check_range<T: PartialOrd + Copy + fmt::Display>(
    source: &SuiteSource<'_>,
    field: &str,
    value: &Option<Spanned<T>>,
    min: T,
    max: T,
) -> Result<Option<T>, SuiteError> {
    match value {
        None => Ok(None),
        Some(spanned) => {
            let v = *spanned.get_ref();
            // Written so that NaN (which compares false with everything) is out of range too.
            if !(v >= min && v <= max) {
                Err(source.error_at(
                    Some(spanned.span()),
                    Some(field),
                    format!("`{field}` is {v}, outside {min}..={max}"),
                ))
            } else {
                Ok(Some(v))
            }
        }
    }
}

/// The generation parameters a `[defaults]`, `[[models]]` or `[[tasks]]` table may set.
struct RawParams {
    temperature: Option<Spanned<f64>>,
    top_p: Option<Spanned<f64>>,
    max_tokens: Option<Spanned<u32>>,
    seed: Option<u64>,
    stop: Option<Vec<String>>,
    top_k: Option<Spanned<u32>>,
    min_p: Option<Spanned<f64>>,
    repetition_penalty: Option<Spanned<f64>>,
    thinking_budget: Option<Spanned<u32>>,
    reasoning_effort: Option<Spanned<String>>,
}

/// Moves the generation-parameter fields out of a raw table (they have the same names in all).
macro_rules! raw_params {
    ($raw:expr) => {
        RawParams {
            temperature: $raw.temperature,
            top_p: $raw.top_p,
            max_tokens: $raw.max_tokens,
            seed: $raw.seed,
            stop: $raw.stop,
            top_k: $raw.top_k,
            min_p: $raw.min_p,
            repetition_penalty: $raw.repetition_penalty,
            thinking_budget: $raw.thinking_budget,
            reasoning_effort: $raw.reasoning_effort,
        }
    };
}

fn convert_params(
    source: &SuiteSource<'_>,
    raw: RawParams,
) -> Result<GenerationParams, SuiteError> {
    Ok(GenerationParams {
        temperature: check_range(source, "temperature", &raw.temperature, 0.0, 2.0)?,
        top_p: check_range(source, "top_p", &raw.top_p, 0.0, 1.0)?,
        max_tokens: check_range(source, "max_tokens", &raw.max_tokens, 1, u32::MAX)?,
        seed: raw.seed,
        stop: raw.stop,
        top_k: check_range(source, "top_k", &raw.top_k, 1, u32::MAX)?,
        min_p: check_range(source, "min_p", &raw.min_p, 0.0, 1.0)?,
        repetition_penalty: check_range(
            source,
            "repetition_penalty",
            &raw.repetition_penalty,
            0.01,
            100.0,
        )?,
        thinking_budget: raw.thinking_budget.map(Spanned::into_inner),
        reasoning_effort: raw
            .reasoning_effort
            .as_ref()
            .map(|effort| parse_choice(source, "reasoning_effort", effort))
            .transpose()?,
    })
}

fn convert_defaults(source: &SuiteSource<'_>, raw: RawDefaults) -> Result<Defaults, SuiteError> {
    let base = Defaults::default();
    let params = convert_params(source, raw_params!(raw))?;
    Ok(Defaults {
        params: base.params.overlaid(&params),
        timeout_secs: check_range(source, "timeout", &raw.timeout, 0.001, 86_400.0)?
            .unwrap_or(base.timeout_secs),
        concurrency: check_range(source, "concurrency", &raw.concurrency, 1, 4096)?
            .unwrap_or(base.concurrency),
        max_concurrency: check_range(source, "max_concurrency", &raw.max_concurrency, 1, 65_536)?
            .unwrap_or(base.max_concurrency),
        retries: check_range(source, "retries", &raw.retries, 0, MAX_RETRIES)?
            .unwrap_or(base.retries),
        retry_backoff_secs: check_range(source, "retry_backoff", &raw.retry_backoff, 0.0, 600.0)?
            .unwrap_or(base.retry_backoff_secs),
        samples: check_range(source, "samples", &raw.samples, 1, MAX_SAMPLES)?
            .unwrap_or(base.samples),
        pass_at: convert_pass_at(source, raw.pass_at)?.unwrap_or_default(),
        max_response_bytes: check_range(
            source,
            "max_response_bytes",
            &raw.max_response_bytes,
            RESPONSE_LIMIT_RANGE.0,
            RESPONSE_LIMIT_RANGE.1,
        )?
        .unwrap_or(base.max_response_bytes),
        max_sse_line_bytes: check_range(
            source,
            "max_sse_line_bytes",
            &raw.max_sse_line_bytes,
            RESPONSE_LIMIT_RANGE.0,
            RESPONSE_LIMIT_RANGE.1,
        )?
        .unwrap_or(base.max_sse_line_bytes),
    })
}

/// `pass_at = [1, 5, 10]`: each k at least 1 and at most [`MAX_SAMPLES`], sorted, no repeats.
fn convert_pass_at(
    source: &SuiteSource<'_>,
    raw: Option<Spanned<Vec<u32>>>,
) -> Result<Option<Vec<u32>>, SuiteError> {
    let Some(raw) = raw else { return Ok(None) };
    let span = raw.span();
    let mut ks = raw.into_inner();
    if let Some(bad) = ks.iter().find(|k| !(1..=MAX_SAMPLES).contains(*k)) {
        return Err(source
            .error_at(
                Some(span),
                Some("pass_at"),
                format!("`pass_at` has k = {bad}, outside 1..={MAX_SAMPLES}"),
            )
            .with_help("pass@k needs at least k samples per task: for example `samples = 10` and `pass_at = [1, 5, 10]`"));
    }
    ks.sort_unstable();
    ks.dedup();
    Ok(Some(ks))
}

/// The check types, as `type = "..."` names them.
const CHECK_TYPES: &[&str] = &[
    "equals",
    "contains",
    "contains_any",
    "contains_all",
    "not_contains",
    "regex",
    "json",
    "words",
    "tokens",
    "metric",
    "code",
];

fn convert_check(
    source: &SuiteSource<'_>,
    task: &str,
    raw: Spanned<RawCheck>,
) -> Result<Check, SuiteError> {
    let span = raw.span();
    let raw = raw.into_inner();
    let kind_name = raw.kind.get_ref().clone();
    let at = |message: String| source.error_at(Some(span.clone()), Some("checks"), message);
    let need = |field: &str, value: Option<String>| {
        value.ok_or_else(|| {
            at(format!(
                "task `{task}`: a `{kind_name}` check needs `{field}`"
            ))
        })
    };
    let ignore_case = raw.ignore_case.unwrap_or(false);
    let as_count = |v: Option<f64>| v.map(|v| v.max(0.0).round() as u64);
    // Bounds must be numbers (NaN compares false with everything: a check that can never pass),
    // counts must be counts, and the range must not be empty.
    let counts = matches!(kind_name.as_str(), "words" | "tokens");
    for (field, value) in [("min", raw.min), ("max", raw.max)] {
        let Some(value) = value else { continue };
        let valid = if counts {
            (0.0..=MAX_COUNT_BOUND).contains(&value)
        } else {
            value.is_finite()
        };
        if !valid {
            let range = if counts {
                format!("0..={MAX_COUNT_BOUND}")
            } else {
                "a finite number".to_string()
            };
            return Err(at(format!(
                "task `{task}`: a `{kind_name}` check's `{field}` is {value:?}; it must be {range}"
            )));
        }
    }
    if let (Some(min), Some(max)) = (raw.min, raw.max) {
        if min > max {
            return Err(at(format!(
                "task `{task}`: a `{kind_name}` check's `min` ({min}) is above its `max` ({max}): no answer could pass"
            )));
        }
    }
    // Keys that belong to another check type are mistakes, not silently ignored.
    let mut given: Vec<&str> = Vec::new();
    for (key, present) in [
        ("value", raw.value.is_some()),
        ("values", raw.values.is_some()),
        ("ignore_case", raw.ignore_case.is_some()),
        ("pattern", raw.pattern.is_some()),
        ("schema", raw.schema.is_some()),
        ("metric", raw.metric.is_some()),
        ("min", raw.min.is_some()),
        ("max", raw.max.is_some()),
        ("language", raw.language.is_some()),
        ("tests", raw.tests.is_some()),
        ("function", raw.function.is_some()),
        ("timeout", raw.timeout.is_some()),
    ] {
        if present {
            given.push(key);
        }
    }
    let allowed: &[&str] = match kind_name.as_str() {
        "equals" | "contains" => &["value", "ignore_case"],
        "contains_any" | "contains_all" | "not_contains" => &["values", "ignore_case"],
        "regex" => &["pattern"],
        "json" => &["schema"],
        "words" | "tokens" => &["min", "max"],
        "metric" => &["metric", "min", "max"],
        "code" => &["language", "tests", "function", "timeout"],
        other => {
            let hint = suggest::closest(other, CHECK_TYPES.iter().copied())
                .map(|t| format!("; did you mean `{t}`?"))
                .unwrap_or_default();
            return Err(source.error_at(
                Some(raw.kind.span()),
                Some("type"),
                format!(
                    "task `{task}`: unknown check type `{other}` (known: {}){hint}",
                    CHECK_TYPES.join(", ")
                ),
            ));
        }
    };
    if let Some(extra) = given.iter().find(|key| !allowed.contains(key)) {
        return Err(at(format!(
            "task `{task}`: `{extra}` does not apply to a `{kind_name}` check (it takes {})",
            allowed.join(", ")
        )));
    }
    let kind = match kind_name.as_str() {
        "equals" => CheckKind::Equals {
            value: need("value", raw.value)?,
            ignore_case,
        },
        "contains" => CheckKind::Contains {
            value: need("value", raw.value)?,
            ignore_case,
        },
        "contains_any" | "contains_all" | "not_contains" => {
            let values = raw.values.filter(|v| !v.is_empty()).ok_or_else(|| {
                at(format!(
                    "task `{task}`: a `{kind_name}` check needs a non-empty `values` list"
                ))
            })?;
            match kind_name.as_str() {
                "contains_any" => CheckKind::ContainsAny {
                    values,
                    ignore_case,
                },
                "contains_all" => CheckKind::ContainsAll {
                    values,
                    ignore_case,
                },
                _ => CheckKind::NotContains {
                    values,
                    ignore_case,
                },
            }
        }
        "regex" => CheckKind::Regex {
            pattern: need("pattern", raw.pattern)?,
        },
        "json" => CheckKind::Json { schema: raw.schema },
        "words" => CheckKind::Words {
            min: as_count(raw.min),
            max: as_count(raw.max),
        },
        "tokens" => CheckKind::Tokens {
            min: as_count(raw.min),
            max: as_count(raw.max),
        },
        "metric" => CheckKind::Metric {
            metric: need("metric", raw.metric)?,
            min: raw.min,
            max: raw.max,
        },
        _ => CheckKind::Code {
            language: need("language", raw.language)?,
            tests: need("tests", raw.tests)?,
            function: raw.function,
            timeout: match raw.timeout {
                // Written so that NaN fails too; a day is far beyond any test worth running.
                Some(t) if !(t > 0.0 && t <= MAX_CODE_TIMEOUT_SECS) => {
                    return Err(at(format!(
                        "task `{task}`: a code check's `timeout` is {t} seconds; it must be above 0 and at most {MAX_CODE_TIMEOUT_SECS}"
                    )))
                }
                timeout => timeout,
            },
        },
    };
    if let Some(weight) = raw.weight.filter(|w| !(*w >= 0.0 && w.is_finite())) {
        return Err(at(format!(
            "task `{task}`: a check's `weight` is {weight}; it must be a finite number, 0 or more"
        )));
    }
    let check = Check {
        kind,
        weight: raw.weight.unwrap_or(1.0),
        name: raw.name,
    };
    if check.weight < 0.0 || !check.weight.is_finite() {
        return Err(at(format!("task `{task}`: `weight` must be zero or more")));
    }
    check
        .validate()
        .map_err(|reason| at(format!("task `{task}`: {reason}")))?;
    Ok(check)
}

/// Parses a string field into one of a fixed set of choices, erring at the field.
fn parse_choice<T: std::str::FromStr<Err = String>>(
    source: &SuiteSource<'_>,
    field: &str,
    value: &Spanned<String>,
) -> Result<T, SuiteError> {
    value
        .get_ref()
        .parse()
        .map_err(|reason: String| source.error_at(Some(value.span()), Some(field), reason))
}

fn convert_model(source: &SuiteSource<'_>, raw: RawModel) -> Result<ModelConfig, SuiteError> {
    let spec = ModelSpec::parse(raw.spec.get_ref())
        .map_err(|e| source.error_at(Some(raw.spec.span()), Some("spec"), e.to_string()))?;
    let mut config = ModelConfig::from_spec(spec);
    if let Some(id) = raw.id {
        if id.get_ref().trim().is_empty() {
            return Err(source.error_at(Some(id.span()), Some("id"), "model `id` is empty"));
        }
        config.id = id.into_inner();
    }
    config.base_url = raw.base_url;
    convert_endpoint_fields(source, &mut config, raw.endpoint, raw.api, raw.api_version)?;
    config.api_key_env = raw.api_key_env;
    convert_pool_fields(
        source,
        &mut config,
        PoolFields {
            base_urls: raw.base_urls,
            endpoints: raw.endpoints,
            api_key_envs: raw.api_key_envs,
            pool_in_cache_key: raw.pool_in_cache_key,
            requests_per_minute: raw.requests_per_minute,
            tokens_per_minute: raw.tokens_per_minute,
        },
    )?;
    config.stream = raw.stream.unwrap_or(true);
    config.concurrency = check_range(source, "concurrency", &raw.concurrency, 1, 4096)?;
    config.params = convert_params(source, raw_params!(raw))?;
    let price = match raw.price {
        None => None,
        Some(price) => {
            let span = price.span();
            let price = price.into_inner();
            for (field, value) in [("price.input", price.input), ("price.output", price.output)] {
                // Written so that NaN is out of range too.
                if !(0.0..=MAX_PRICE).contains(&value) {
                    return Err(source.error_at(
                        Some(span.clone()),
                        Some(field),
                        format!("`{field}` is {value}, outside 0..={MAX_PRICE} (USD per million tokens)"),
                    ));
                }
            }
            Some(price)
        }
    };
    let mine = ModelMetadata {
        parameters: raw.parameters,
        context_length: check_range(
            source,
            "context_length",
            &raw.context_length,
            1,
            MAX_CONTEXT_LENGTH,
        )?,
        modalities: raw.modalities.unwrap_or_default(),
        price,
        price_source: None,
        architecture: raw.architecture,
        dtype: None,
        device: None,
    };
    config.metadata = mine.or(&config.metadata);
    if let Some(dtype) = &raw.dtype {
        config.local.dtype = parse_choice(source, "dtype", dtype)?;
    }
    if let Some(quantize) = &raw.quantize {
        config.local.quantize = Some(parse_choice(source, "quantize", quantize)?);
    }
    if let Some(device) = &raw.device {
        config.local.device = parse_choice(source, "device", device)?;
    }
    config.local.chat_template_kwargs = raw.chat_template_kwargs.unwrap_or_default();
    config.local.force = raw.force.unwrap_or(false);
    config.local.batch = check_range(source, "batch", &raw.batch, 1, MAX_BATCH)?;
    config.samples = check_range(source, "samples", &raw.samples, 1, MAX_SAMPLES)?;
    Ok(config)
}

/// The most URLs (or keys) one model's pool may list.
pub const MAX_POOL_LIST: usize = 64;
/// The most endpoints ((URL, key) pairs) one model's pool may have.
pub const MAX_POOL_ENDPOINTS: usize = 256;
/// The largest `requests_per_minute` budget.
pub const MAX_REQUESTS_PER_MINUTE: u32 = 1_000_000;
/// The largest `tokens_per_minute` budget.
pub const MAX_TOKENS_PER_MINUTE: u64 = 1_000_000_000;

/// A `[[models]]` table's endpoint-pool fields, as written.
struct PoolFields {
    base_urls: Option<Spanned<Vec<String>>>,
    endpoints: Option<Spanned<Vec<String>>>,
    api_key_envs: Option<Spanned<Vec<String>>>,
    pool_in_cache_key: Option<bool>,
    requests_per_minute: Option<Spanned<u32>>,
    tokens_per_minute: Option<Spanned<u64>>,
}

/// `base_urls` (an `azure:` model's `endpoints`), `api_key_envs`, `pool_in_cache_key` and the
/// per-key budgets (docs/endpoint-pools.md): each list non-empty, without blanks or repeats,
/// never beside its single form, and only on hosted models.
fn convert_pool_fields(
    source: &SuiteSource<'_>,
    config: &mut ModelConfig,
    fields: PoolFields,
) -> Result<(), SuiteError> {
    let azure = matches!(config.spec, ModelSpec::Azure { .. });
    let local = config.spec.is_local();
    let id = config.id.clone();
    let list = |name: &str,
                single: &str,
                value: Spanned<Vec<String>>,
                has_single: bool|
     -> Result<Vec<String>, SuiteError> {
        let span = value.span();
        let at = |message: String| source.error_at(Some(span.clone()), Some(name), message);
        if local {
            return Err(at(format!(
                "model `{id}` runs in-process; `{name}` is for hosted models"
            )));
        }
        if has_single {
            return Err(at(format!(
                "model `{id}` has both `{single}` and `{name}`: list every one in `{name}`"
            )));
        }
        let items: Vec<String> = value
            .into_inner()
            .into_iter()
            .map(|item| item.trim().to_string())
            .collect();
        if items.is_empty() || items.len() > MAX_POOL_LIST {
            return Err(at(format!(
                "model `{id}`: `{name}` lists {} entries; it takes 1 to {MAX_POOL_LIST}",
                items.len()
            )));
        }
        let mut seen = std::collections::HashSet::new();
        for item in &items {
            if item.is_empty() {
                return Err(at(format!("model `{id}`: `{name}` has an empty entry")));
            }
            if !seen.insert(item.trim_end_matches('/')) {
                return Err(at(format!(
                    "model `{id}`: `{name}` lists `{}` twice",
                    crate::redact::redact_url(item)
                )));
            }
        }
        Ok(items)
    };
    let urls = match (fields.base_urls, fields.endpoints) {
        (Some(urls), _) if azure => return Err(source
            .error_at(
                Some(urls.span()),
                Some("base_urls"),
                format!("model `{id}`: an `azure:` model takes `endpoints`, not `base_urls`"),
            )
            .with_help(
                "endpoints = [\"https://R1.openai.azure.com\", \"https://R2.openai.azure.com\"]",
            )),
        (_, Some(endpoints)) if !azure => {
            return Err(source
                .error_at(
                    Some(endpoints.span()),
                    Some("endpoints"),
                    format!("model `{id}`: `endpoints` is for `azure:` models"),
                )
                .with_help("other hosted models list their API roots as `base_urls`"))
        }
        (Some(urls), _) => Some(list(
            "base_urls",
            "base_url",
            urls,
            config.base_url.is_some(),
        )?),
        (None, Some(endpoints)) => Some(list(
            "endpoints",
            "endpoint",
            endpoints,
            config.base_url.is_some(),
        )?),
        (None, None) => None,
    };
    config.base_urls = urls.unwrap_or_default();
    if let Some(keys) = fields.api_key_envs {
        config.api_key_envs = list(
            "api_key_envs",
            "api_key_env",
            keys,
            config.api_key_env.is_some(),
        )?;
    }
    let endpoints = config.endpoint_count();
    if endpoints > MAX_POOL_ENDPOINTS {
        return Err(source.error_at(
            None,
            Some("base_urls"),
            format!(
                "model `{id}` has {endpoints} endpoints (every URL with every key); at most {MAX_POOL_ENDPOINTS}"
            ),
        ));
    }
    config.pool_in_cache_key = fields.pool_in_cache_key.unwrap_or(false);
    for (name, span) in [
        (
            "requests_per_minute",
            fields.requests_per_minute.as_ref().map(Spanned::span),
        ),
        (
            "tokens_per_minute",
            fields.tokens_per_minute.as_ref().map(Spanned::span),
        ),
    ] {
        if let (true, Some(span)) = (local, span) {
            return Err(source.error_at(
                Some(span),
                Some(name),
                format!("model `{id}` runs in-process; `{name}` is for hosted models"),
            ));
        }
    }
    config.requests_per_minute = check_range(
        source,
        "requests_per_minute",
        &fields.requests_per_minute,
        1,
        MAX_REQUESTS_PER_MINUTE,
    )?;
    config.tokens_per_minute = check_range(
        source,
        "tokens_per_minute",
        &fields.tokens_per_minute,
        1,
        MAX_TOKENS_PER_MINUTE,
    )?;
    Ok(())
}

/// `endpoint`, `api` and `api_version`: Azure's resource endpoint (kept as the model's
/// `base_url`, where every other hosted model keeps its API root) and API version, and the choice
/// of OpenAI's Responses API. Each is refused where it does not apply, rather than ignored.
fn convert_endpoint_fields(
    source: &SuiteSource<'_>,
    config: &mut ModelConfig,
    endpoint: Option<Spanned<String>>,
    api: Option<Spanned<String>>,
    api_version: Option<Spanned<String>>,
) -> Result<(), SuiteError> {
    let azure = matches!(config.spec, ModelSpec::Azure { .. });
    let id = config.id.clone();
    if let Some(endpoint) = endpoint {
        if !azure {
            return Err(source
                .error_at(
                    Some(endpoint.span()),
                    Some("endpoint"),
                    format!("model `{id}`: `endpoint` is for `azure:` models"),
                )
                .with_help("other hosted models take their API root as `base_url`"));
        }
        if config.base_url.is_some() {
            return Err(source.error_at(
                Some(endpoint.span()),
                Some("endpoint"),
                format!("model `{id}` has both `endpoint` and `base_url`: an `azure:` model takes `endpoint` only"),
            ));
        }
        if endpoint.get_ref().trim().is_empty() {
            return Err(source.error_at(
                Some(endpoint.span()),
                Some("endpoint"),
                format!("model `{id}` has an empty `endpoint`"),
            ));
        }
        config.base_url = Some(endpoint.into_inner());
    } else if azure && config.base_url.is_some() {
        return Err(source
            .error_at(
                None,
                Some("base_url"),
                format!("model `{id}`: an `azure:` model takes `endpoint`, not `base_url`"),
            )
            .with_help("endpoint = \"https://RESOURCE.openai.azure.com\""));
    }
    if let Some(version) = api_version {
        if !azure {
            return Err(source.error_at(
                Some(version.span()),
                Some("api_version"),
                format!("model `{id}`: `api_version` is for `azure:` models"),
            ));
        }
        if version.get_ref().trim().is_empty() {
            return Err(source.error_at(
                Some(version.span()),
                Some("api_version"),
                format!("model `{id}` has an empty `api_version`"),
            ));
        }
        config.api_version = Some(version.into_inner().trim().to_string());
    }
    if let Some(api) = api {
        let choice: OpenAiApi = parse_choice(source, "api", &api)?;
        match (&config.spec, choice) {
            (ModelSpec::OpenAi { model }, OpenAiApi::Responses) => {
                // One spelling per API, so that both forms share cache keys and reports.
                config.spec = ModelSpec::OpenAiResponses {
                    model: model.clone(),
                };
            }
            (ModelSpec::OpenAi { .. }, OpenAiApi::Chat) => {}
            (ModelSpec::OpenAiResponses { .. }, OpenAiApi::Responses) => {}
            (ModelSpec::OpenAiResponses { .. }, OpenAiApi::Chat) => {
                return Err(source.error_at(
                    Some(api.span()),
                    Some("api"),
                    format!("model `{id}`: an `openai-responses:` model is asked through the Responses API; use an `openai:` spec for chat completions"),
                ))
            }
            (ModelSpec::Azure { .. }, choice) => config.api = Some(choice),
            (spec, _) => {
                return Err(source.error_at(
                    Some(api.span()),
                    Some("api"),
                    format!(
                        "model `{id}`: `api` chooses between OpenAI's chat and Responses APIs, for `openai:` and `azure:` models, not `{}:`",
                        spec.provider()
                    ),
                ))
            }
        }
    }
    Ok(())
}

fn convert_task(
    source: &SuiteSource<'_>,
    span: Range<usize>,
    raw: RawTask,
) -> Result<Task, SuiteError> {
    let id_span = raw.id.span();
    let id = raw.id.into_inner();
    if id.trim().is_empty() {
        return Err(source.error_at(Some(id_span), Some("id"), "task `id` is empty"));
    }
    let nonempty = |field: &str, value: &Spanned<String>| -> Result<(), SuiteError> {
        if value.get_ref().trim().is_empty() {
            Err(source.error_at(
                Some(value.span()),
                Some(field),
                format!("task `{id}` has an empty `{field}`"),
            ))
        } else {
            Ok(())
        }
    };

    let mut messages = Vec::new();
    if let Some(system) = &raw.system {
        nonempty("system", system)?;
        messages.push(Message::system(system.get_ref().clone()));
    }
    match (raw.prompt, raw.messages) {
        (Some(prompt), None) => {
            nonempty("prompt", &prompt)?;
            messages.push(Message::user(prompt.into_inner()));
        }
        (None, Some(list)) => {
            let list_span = list.span();
            let list = list.into_inner();
            if list.is_empty() {
                return Err(source.error_at(
                    Some(list_span),
                    Some("messages"),
                    format!("task `{id}` has an empty `messages` list"),
                ));
            }
            for message in &list {
                nonempty("content", &message.content)?;
                if message.role == Role::System && raw.system.is_some() {
                    return Err(source
                        .error_at(
                            Some(message.content.span()),
                            Some("messages"),
                            format!("task `{id}` has a system message and a `system` key"),
                        )
                        .with_help("keep one of the two"));
                }
            }
            if list.last().map(|m| m.role) != Some(Role::User) {
                return Err(source
                    .error_at(
                        Some(list_span),
                        Some("messages"),
                        format!("task `{id}`: the last message must be the user's"),
                    )
                    .with_help("the models answer the last user message"));
            }
            messages.extend(
                list.into_iter()
                    .map(|m| Message::text(m.role, m.content.into_inner())),
            );
        }
        (Some(prompt), Some(_)) => {
            return Err(source
                .error_at(
                    Some(prompt.span()),
                    Some("prompt"),
                    format!("task `{id}` has both `prompt` and `messages`"),
                )
                .with_help(
                    "use `prompt` for one turn or `messages` for a conversation, not both",
                ));
        }
        (None, None) => {
            return Err(source
                .error_at(
                    Some(id_span),
                    Some("prompt"),
                    format!("task `{id}` has no `prompt`"),
                )
                .with_help("add `prompt = \"...\"` or a `messages` list"));
        }
    }

    let file_ref = |value: Spanned<String>, field: &str| -> Result<FileRef, SuiteError> {
        if value.get_ref().trim().is_empty() {
            return Err(source.error_at(
                Some(value.span()),
                Some(field),
                format!("task `{id}` has an empty path in `{field}`"),
            ));
        }
        Ok(FileRef {
            location: source.location(value.span().start),
            path: value.into_inner(),
        })
    };
    let images = raw
        .images
        .into_iter()
        .map(|image| file_ref(image, "images"))
        .collect::<Result<Vec<_>, _>>()?;
    let reference_file = raw
        .reference_file
        .map(|file| file_ref(file, "reference_file"))
        .transpose()?;
    if raw.reference.is_some() && reference_file.is_some() {
        return Err(source.error_at(
            Some(span.clone()),
            Some("reference"),
            format!("task `{id}` has both `reference` and `reference_file`"),
        ));
    }

    let params = convert_params(source, raw_params!(raw))?;
    let checks = raw
        .checks
        .into_iter()
        .map(|check| convert_check(source, &id, check))
        .collect::<Result<Vec<_>, _>>()?;
    let pass_threshold =
        check_range(source, "pass_threshold", &raw.pass_threshold, 0.0, 1.0)?.unwrap_or(1.0);
    let samples = check_range(source, "samples", &raw.samples, 1, MAX_SAMPLES)?;
    let pass_at = convert_pass_at(source, raw.pass_at)?;
    Ok(Task {
        samples,
        pass_at,
        checks,
        pass_threshold,
        category: raw
            .category
            .filter(|c| !c.trim().is_empty())
            .unwrap_or_else(|| DEFAULT_CATEGORY.to_string()),
        messages,
        images,
        reference: raw.reference,
        reference_file,
        params,
        tags: raw.tags,
        group: match raw.group {
            Some(group) if group.get_ref().trim().is_empty() => {
                return Err(source.error_at(
                    Some(group.span()),
                    Some("group"),
                    format!("task `{id}` has an empty `group`: name the passage or set it shares, or leave it out"),
                ))
            }
            group => group.map(Spanned::into_inner),
        },
        location: source.location(span.start),
        id,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Suite, SuiteError> {
        Suite::parse(&SuiteSource {
            origin: "suite.toml",
            text,
        })
    }

    /// Parses `text` expecting an error, and returns it as the user would see it.
    fn error(text: &str) -> String {
        parse(text)
            .expect_err("suite should be rejected")
            .to_string()
    }

    #[test]
    fn parses_a_full_suite() {
        let suite = parse(
            r#"
name = "demo"
[defaults]
temperature = 0.2
max_tokens = 300
concurrency = 2

[[models]]
spec = "openai:gpt-4o-mini"

[[models]]
id = "local-llama"
spec = "openai-compatible:llama3"
base_url = "http://127.0.0.1:8080/v1"
api_key_env = "LLAMA_KEY"
max_tokens = 100
parameters = "8B"
price = { input = 0.0, output = 0.0 }

[[tasks]]
id = "t1"
category = "reasoning"
system = "Be brief."
prompt = "Why?"
max_tokens = 50
tags = ["a"]

[[tasks]]
id = "chat"
messages = [
  { role = "user", content = "Hi" },
  { role = "assistant", content = "Hello" },
  { role = "user", content = "And?" },
]
images = ["cat.png"]
"#,
        )
        .unwrap();
        assert_eq!(suite.name, "demo");
        assert_eq!(suite.defaults.params.temperature, Some(0.2));
        assert_eq!(suite.defaults.concurrency, 2);
        assert_eq!(suite.models[0].id, "gpt-4o-mini");
        assert!(
            suite.models[0].metadata.price.is_some(),
            "catalogue metadata"
        );
        assert_eq!(suite.models[1].id, "local-llama");
        assert_eq!(suite.models[1].params.max_tokens, Some(100));
        assert_eq!(suite.models[1].metadata.parameters.as_deref(), Some("8B"));
        let t1 = &suite.tasks[0];
        assert_eq!(
            t1.messages,
            vec![Message::system("Be brief."), Message::user("Why?")]
        );
        assert_eq!(t1.params.max_tokens, Some(50));
        assert_eq!(t1.location.line, 20, "the `[[tasks]]` header");
        let chat = &suite.tasks[1];
        assert_eq!(chat.category, DEFAULT_CATEGORY);
        assert_eq!(chat.messages.len(), 3);
        assert_eq!(chat.prompt_text(), "And?");
        assert_eq!(chat.images[0].path, "cat.png");
        assert_eq!(suite.file_refs().count(), 1);
    }

    #[test]
    fn unknown_keys_point_at_the_key_and_suggest() {
        let text = "[[tasks]]\nid = \"a\"\npromt = \"x\"\n";
        let message = error(text);
        assert!(
            message.starts_with("suite.toml:3:1: unknown key `promt`"),
            "{message}"
        );
        assert!(message.contains("did you mean `prompt`?"), "{message}");
        assert!(message.contains("3 | promt = \"x\""), "{message}");
    }

    #[test]
    fn rejects_mistakes_with_their_place() {
        let cases: &[(&str, &str)] = &[
            ("", "the suite has no tasks"),
            ("[[tasks]]\nid = \"a\"\n", "task `a` has no `prompt`"),
            ("[[tasks]]\nid = \"a\"\nprompt = \"  \"\n", "3:10: task `a` has an empty `prompt`"),
            (
                "[[tasks]]\nid = \"a\"\nprompt = \"x\"\n[[tasks]]\nid = \"a\"\nprompt = \"y\"\n",
                "4:1: duplicate task id `a`",
            ),
            (
                "[[models]]\nspec = \"openai:x\"\n[[models]]\nspec = \"openai:x\"\n[[tasks]]\nid = \"a\"\nprompt = \"x\"\n",
                "duplicate model id `x`",
            ),
            (
                "[[models]]\nspec = \"nope:x\"\n[[tasks]]\nid = \"a\"\nprompt = \"x\"\n",
                "2:8: invalid model spec `nope:x`",
            ),
            (
                "[defaults]\ntemperature = 5.0\n[[tasks]]\nid = \"a\"\nprompt = \"x\"\n",
                "2:15: `temperature` is 5, outside 0..=2",
            ),
            (
                "[[tasks]]\nid = \"a\"\nprompt = \"x\"\nmessages = [{ role = \"user\", content = \"y\" }]\n",
                "has both `prompt` and `messages`",
            ),
            (
                "[[tasks]]\nid = \"a\"\nmessages = [{ role = \"user\", content = \"y\" }, { role = \"assistant\", content = \"z\" }]\n",
                "the last message must be the user's",
            ),
            ("[[tasks]]\nid = \"a\"\nprompt = \"x\"\nimages = [\"\"]\n", "empty path in `images`"),
            ("[[tasks]]\nprompt = \"x\"\n", "missing field `id`"),
            ("[[tasks]]\nid = \"a\"\nprompt = 3\n", "invalid type"),
            ("[[tasks]\n", "suite.toml:1:"),
        ];
        for (text, expected) in cases {
            let message = error(text);
            assert!(message.contains(expected), "for {text:?}: got {message}");
        }
    }

    #[test]
    fn local_options_are_read_and_checked() {
        let suite = parse(
            "[[models]]\nspec = \"hf:a/b\"\ndtype = \"f16\"\nquantize = \"q4k\"\ndevice = \"cuda:1\"\nchat_template_kwargs = { date_string = \"26 Jul 2024\" }\n[[tasks]]\nid = \"a\"\nprompt = \"x\"\n",
        )
        .unwrap();
        let local = &suite.models[0].local;
        assert_eq!(local.dtype, crate::DTypeChoice::F16);
        assert_eq!(local.quantize, Some(crate::Quantization::Q4K));
        assert_eq!(local.device, crate::DeviceChoice::Cuda(1));
        assert_eq!(local.chat_template_kwargs["date_string"], "26 Jul 2024");
        let message = error("[[models]]\nspec = \"hf:a/b\"\ndevice = \"tpu\"\n[[tasks]]\nid = \"a\"\nprompt = \"x\"\n");
        assert!(message.contains("3:10: unknown device `tpu`"), "{message}");
    }

    #[test]
    fn check_bounds_are_numbers_in_range() {
        let check = |lines: &str| {
            format!("[[tasks]]\nid = \"a\"\nprompt = \"x\"\n[[tasks.checks]]\n{lines}\n")
        };
        for (lines, needle) in [
            ("type = \"words\"\nmin = nan", "`min` is NaN"),
            ("type = \"tokens\"\nmax = 1e300", "`max` is 1e300"),
            ("type = \"words\"\nmin = -1", "`min` is -1"),
            (
                "type = \"metric\"\nmetric = \"words\"\nmax = inf",
                "`max` is inf",
            ),
            ("type = \"words\"\nmin = 10\nmax = 5", "is above its `max`"),
        ] {
            let message = error(&check(lines));
            assert!(message.contains(needle), "{lines}: {message}");
        }
        assert!(parse(&check(
            "type = \"metric\"\nmetric = \"flesch_reading_ease\"\nmin = -50\nmax = 120"
        ))
        .is_ok());
    }

    #[test]
    fn prices_and_context_lengths_are_checked() {
        let model = |extra: &str| {
            format!(
                "[[models]]\nspec = \"openai:m\"\n{extra}\n[[tasks]]\nid = \"a\"\nprompt = \"x\"\n"
            )
        };
        for (extra, needle) in [
            (
                "price = { input = nan, output = 1.0 }",
                "`price.input` is NaN",
            ),
            (
                "price = { input = 1.0, output = -2.0 }",
                "`price.output` is -2",
            ),
            ("price = { input = 1e300, output = 1.0 }", "outside 0..="),
            ("context_length = 0", "`context_length` is 0, outside"),
        ] {
            let message = error(&model(extra));
            assert!(message.contains(needle), "{extra}: {message}");
            assert!(
                message.contains("p.toml:3:") || message.contains(":3:"),
                "{message}"
            );
        }
        assert!(parse(&model(
            "price = { input = 0.15, output = 0.6 }\ncontext_length = 128000"
        ))
        .is_ok());
    }

    #[test]
    fn response_limits_and_retries_are_read_and_checked() {
        let suite = parse("[defaults]\nmax_response_bytes = 2048\nmax_sse_line_bytes = 1024\nretries = 0\n[[tasks]]\nid = \"a\"\nprompt = \"x\"\n").unwrap();
        assert_eq!(suite.defaults.max_response_bytes, 2048);
        assert_eq!(suite.defaults.max_sse_line_bytes, 1024);
        assert_eq!(suite.defaults.retries, 0);
        assert_eq!(
            Defaults::default().max_response_bytes,
            DEFAULT_MAX_RESPONSE_BYTES
        );
        for (field, value) in [
            ("max_response_bytes", "10"),
            ("max_sse_line_bytes", "0"),
            ("max_response_bytes", "9000000000000"),
            ("retries", "1000000"),
        ] {
            let message = error(&format!(
                "[defaults]\n{field} = {value}\n[[tasks]]\nid = \"a\"\nprompt = \"x\"\n"
            ));
            assert!(
                message.contains(&format!("`{field}` is {value}, outside")),
                "{message}"
            );
        }
    }

    #[test]
    fn numbers_out_of_range_nan_and_infinity_are_refused_at_load_time() {
        let code = |timeout: &str| {
            error(&format!(
                "[[tasks]]\nid = \"a\"\nprompt = \"x\"\n[[tasks.checks]]\ntype = \"code\"\nlanguage = \"python\"\ntests = \"assert True\"\ntimeout = {timeout}\n"
            ))
        };
        for timeout in ["1e300", "1e20", "inf", "nan", "-1", "0"] {
            let message = code(timeout);
            assert!(
                message.contains("a code check's `timeout` is"),
                "{timeout}: {message}"
            );
            assert!(message.starts_with("suite.toml:4:"), "{timeout}: {message}");
        }
        let weight = error("[[tasks]]\nid = \"a\"\nprompt = \"x\"\n[[tasks.checks]]\ntype = \"contains\"\nvalue = \"x\"\nweight = nan\n");
        assert!(weight.contains("`weight` is NaN"), "{weight}");
        for (field, value) in [
            ("temperature", "nan"),
            ("top_p", "nan"),
            ("timeout", "nan"),
            ("temperature", "inf"),
        ] {
            let message = error(&format!(
                "[defaults]\n{field} = {value}\n[[tasks]]\nid = \"a\"\nprompt = \"x\"\n"
            ));
            assert!(message.contains("outside"), "{field} = {value}: {message}");
        }
    }

    #[test]
    fn samples_and_pass_at_layer_task_over_model_over_defaults() {
        let suite = parse(
            "[defaults]\nsamples = 3\npass_at = [10, 1, 5, 1]\n[[models]]\nspec = \"openai:gpt-4o-mini\"\nsamples = 5\n[[models]]\nid = \"b\"\nspec = \"openai:gpt-4o\"\n[[tasks]]\nid = \"a\"\nprompt = \"x\"\n[[tasks]]\nid = \"c\"\nprompt = \"y\"\nsamples = 10\npass_at = [2]\n",
        )
        .unwrap();
        assert_eq!(
            suite.defaults.pass_at,
            [1, 5, 10],
            "sorted, without repeats"
        );
        let plan = crate::RunPlan {
            suite,
            overrides: GenerationParams::default(),
        };
        assert_eq!(plan.samples_for(0, 0), 5, "the model's over the suite's");
        assert_eq!(plan.samples_for(1, 0), 3, "the suite's");
        assert_eq!(plan.samples_for(0, 1), 10, "the task's over the model's");
        assert_eq!(plan.pass_at_for(&plan.suite.tasks[0]), [1, 5, 10]);
        assert_eq!(plan.pass_at_for(&plan.suite.tasks[1]), [2]);
        let one = parse("[[tasks]]\nid = \"a\"\nprompt = \"x\"\n").unwrap();
        assert_eq!(one.defaults.samples, 1);
        for (text, needle) in [
            (
                "[defaults]\nsamples = 0\n",
                "2:11: `samples` is 0, outside 1..=1000",
            ),
            (
                "[defaults]\nsamples = 100000\n",
                "`samples` is 100000, outside",
            ),
            (
                "[defaults]\npass_at = [1, 0]\n",
                "`pass_at` has k = 0, outside 1..=1000",
            ),
        ] {
            let message = error(&format!("{text}[[tasks]]\nid = \"a\"\nprompt = \"x\"\n"));
            assert!(message.contains(needle), "{text}: {message}");
        }
        let message = error("[[tasks]]\nid = \"a\"\nprompt = \"x\"\nsamples = 0\n");
        assert!(message.contains("4:11: `samples` is 0"), "{message}");
    }

    #[test]
    fn groups_and_the_verdicts_alpha_are_read_and_checked() {
        let suite = parse(
            "[verdicts]\nalpha = 0.01\n[[tasks]]\nid = \"q1\"\nprompt = \"x\"\ngroup = \"passage-1\"\n[[tasks]]\nid = \"q2\"\nprompt = \"y\"\n",
        )
        .unwrap();
        assert_eq!(suite.verdicts.alpha, 0.01);
        assert_eq!(suite.tasks[0].group.as_deref(), Some("passage-1"));
        assert_eq!(suite.tasks[1].group, None);
        let default = parse("[[tasks]]\nid = \"a\"\nprompt = \"x\"\n").unwrap();
        assert_eq!(default.verdicts.alpha, 0.05);
        for (alpha, needle) in [
            ("0", "2:9: `[verdicts] alpha` is 0"),
            ("1.5", "is 1.5, outside"),
            ("nan", "is NaN, outside"),
        ] {
            let message = error(&format!(
                "[verdicts]\nalpha = {alpha}\n[[tasks]]\nid = \"a\"\nprompt = \"x\"\n"
            ));
            assert!(message.contains(needle), "{alpha}: {message}");
        }
        let message = error("[[tasks]]\nid = \"a\"\nprompt = \"x\"\ngroup = \" \"\n");
        assert!(
            message.contains("task `a` has an empty `group`"),
            "{message}"
        );
    }

    #[test]
    fn checks_and_judges_are_read_and_checked() {
        let suite = parse(
            r#"
[judge]
model = "openai:gpt-4o"
single = false

[[tasks]]
id = "a"
prompt = "x"
pass_threshold = 0.5

[[tasks.checks]]
type = "contains"
value = "east"
ignore_case = true
weight = 2

[[tasks.checks]]
type = "metric"
metric = "rougeL"
min = 0.2
"#,
        )
        .unwrap();
        let judge = suite.judge.as_ref().unwrap();
        assert_eq!(judge.model, "openai:gpt-4o");
        assert!(judge.pairwise && !judge.single);
        let task = &suite.tasks[0];
        assert_eq!(task.pass_threshold, 0.5);
        assert_eq!(task.checks.len(), 2);
        assert_eq!(task.checks[0].weight, 2.0);
        assert!(matches!(task.checks[1].kind, CheckKind::Metric { .. }));

        let with_check = |check: &str| {
            format!("[[tasks]]\nid = \"a\"\nprompt = \"x\"\n[[tasks.checks]]\n{check}\n")
        };
        let cases = [
            (
                "type = \"contain\"\nvalue = \"x\"",
                "5:8: task `a`: unknown check type `contain`",
            ),
            (
                "type = \"contain\"\nvalue = \"x\"",
                "did you mean `contains`?",
            ),
            (
                "type = \"contains\"\npattern = \"x\"",
                "`pattern` does not apply to a `contains` check",
            ),
            ("type = \"contains\"", "a `contains` check needs `value`"),
            ("type = \"regex\"\npattern = \"(\"", "invalid regex"),
            (
                "type = \"contains\"\nvalue = \"x\"\nignore_cse = true",
                "did you mean `ignore_case`?",
            ),
        ];
        for (check, expected) in cases {
            let message = error(&with_check(check));
            assert!(message.contains(expected), "for {check:?}: {message}");
        }
    }

    #[test]
    fn invalid_utf8_points_at_the_first_bad_byte() {
        let bytes = b"name = \"x\"\n[[tasks]]\nid = \"a\xe9b\"\n";
        let error = SuiteSource::decode("s.toml", bytes).unwrap_err();
        assert_eq!(error.location, Some(Location { line: 3, column: 8 }));
        let shown = error.to_string();
        assert!(shown.starts_with("s.toml:3:8: "), "{shown}");
        assert!(shown.contains("0xe9"), "{shown}");
        assert_eq!(
            SuiteSource::decode("s.toml", "ok = \"é\"".as_bytes()).unwrap(),
            "ok = \"é\""
        );
    }

    #[test]
    fn long_and_deeply_nested_lines_are_quoted_cut() {
        let nested = format!("x = {}1{}\n", "[".repeat(20_000), "]".repeat(20_000));
        let shown = error(&nested);
        assert!(
            shown.len() < 2_000,
            "{} bytes: {}",
            shown.len(),
            &shown[..300]
        );
        let long = format!("name = \"{}\"\nbogus = 1\n", "n".repeat(5_000));
        let shown = error(&format!("{long}{}", "z".repeat(3)));
        assert!(shown.len() < 2_000, "{shown}");
        // A cut line keeps the caret under the error.
        let line = format!("{}bogus = 1", " ".repeat(0));
        let (text, caret) = excerpt(&format!("{}{line}", "a".repeat(500)), 501);
        assert!(text.starts_with("..."));
        assert_eq!(&text[caret - 1..caret + 4], "bogus");
    }

    #[test]
    fn name_defaults_to_the_file_stem() {
        let suite = Suite::parse(&SuiteSource {
            origin: "dir/my-suite.toml",
            text: "[[tasks]]\nid = \"a\"\nprompt = \"x\"\n",
        })
        .unwrap();
        assert_eq!(suite.name, "my-suite");
        assert_eq!(suite.defaults, Defaults::default());
    }

    #[test]
    fn images_go_to_the_last_user_message() {
        let suite = parse("[[tasks]]\nid = \"a\"\nsystem = \"s\"\nprompt = \"x\"\n").unwrap();
        let image = ContentPart::Image {
            url: "https://example.com/cat.png".into(),
            source: None,
        };
        let messages = suite.tasks[0].messages_with_images(vec![image.clone()]);
        assert_eq!(messages[1].content.last(), Some(&image));
        assert!(!messages[0].has_images());
    }

    /// A suite with one model (its TOML lines) and one task (its extra TOML lines).
    fn one_model(model: &str, task: &str) -> String {
        format!("[[models]]\n{model}\n\n[[tasks]]\nid = \"t\"\nprompt = \"Hi\"\n{task}\n")
    }

    #[test]
    fn new_providers_parse_with_their_fields() {
        let suite = parse(&one_model(
            "spec = \"azure:my-gpt\"\nendpoint = \"https://r.openai.azure.com\"\napi_version = \"2024-10-21\"\napi = \"responses\"",
            "",
        ))
        .unwrap();
        let azure = &suite.models[0];
        assert_eq!(
            azure.base_url.as_deref(),
            Some("https://r.openai.azure.com")
        );
        assert_eq!(azure.api_version.as_deref(), Some("2024-10-21"));
        assert_eq!(azure.wire_api(), Some(WireApi::AzureResponses));
        let responses = parse(&one_model(
            "spec = \"openai:gpt-4.1\"\napi = \"responses\"",
            "",
        ))
        .unwrap();
        assert_eq!(
            responses.models[0].spec.to_string(),
            "openai-responses:gpt-4.1",
            "one spelling for the Responses API"
        );
        assert_eq!(responses.models[0].id, "gpt-4.1");
        let thinking = parse(&one_model(
            "spec = \"anthropic:claude-haiku-4-5\"\nthinking_budget = 2048\ntemperature = 1\nmax_tokens = 8192",
            "",
        ))
        .unwrap();
        assert_eq!(thinking.models[0].params.thinking_budget, Some(2048));
        assert!(thinking.models[0].metadata.price.is_some());
        let effort = parse(&one_model(
            "spec = \"openai-responses:o4-mini\"\nreasoning_effort = \"low\"",
            "",
        ))
        .unwrap();
        assert_eq!(
            effort.models[0].params.reasoning_effort,
            Some(crate::wire_api::ReasoningEffort::Low)
        );
    }

    #[test]
    fn endpoint_api_and_api_version_are_refused_where_they_do_not_apply() {
        let cases = [
            (
                "spec = \"openai:gpt\"\nendpoint = \"https://x\"",
                "`endpoint` is for `azure:` models",
            ),
            (
                "spec = \"azure:d\"\nbase_url = \"https://x\"",
                "takes `endpoint`, not `base_url`",
            ),
            (
                "spec = \"gemini:g\"\napi_version = \"v1\"",
                "`api_version` is for `azure:` models",
            ),
            (
                "spec = \"anthropic:c\"\napi = \"responses\"",
                "not `anthropic:`",
            ),
            (
                "spec = \"openai-responses:o\"\napi = \"chat\"",
                "use an `openai:` spec",
            ),
            (
                "spec = \"openai:gpt\"\napi = \"completions\"",
                "unknown api `completions`",
            ),
            (
                "spec = \"openai-responses:o\"\nreasoning_effort = \"extreme\"",
                "unknown reasoning_effort",
            ),
        ];
        for (model, expected) in cases {
            let message = error(&one_model(model, ""));
            assert!(message.contains(expected), "{model}: {message}");
            assert!(message.starts_with("suite.toml:"), "{message}");
        }
    }

    #[test]
    fn parameters_an_api_cannot_take_are_refused_with_model_field_and_place() {
        let from_defaults = error(&format!(
            "[defaults]\nseed = 7\n\n{}",
            one_model("id = \"claude\"\nspec = \"anthropic:claude-haiku-4-5\"", "")
        ));
        assert!(
            from_defaults.contains("model `claude` (anthropic:claude-haiku-4-5)"),
            "{from_defaults}"
        );
        assert!(
            from_defaults.contains("does not take `seed`"),
            "{from_defaults}"
        );
        assert!(
            from_defaults.contains("set in [defaults]"),
            "{from_defaults}"
        );
        assert!(
            from_defaults.contains("help: versus never drops"),
            "{from_defaults}"
        );
        let from_model = error(&one_model(
            "spec = \"gemini:gemini-2.5-flash\"\nmin_p = 0.1",
            "",
        ));
        assert!(
            from_model.contains("Gemini API does not take `min_p`"),
            "{from_model}"
        );
        assert!(
            from_model.contains("in its [[models]] entry"),
            "{from_model}"
        );
        let from_task = error(&one_model(
            "spec = \"openai-responses:gpt-4.1\"",
            "stop = [\"END\"]",
        ));
        assert!(
            from_task.contains("task `t` with model `gpt-4.1`"),
            "{from_task}"
        );
        assert!(
            from_task.contains("Responses API does not take `stop`"),
            "{from_task}"
        );
        let line = from_task.split(':').nth(1).unwrap();
        assert_eq!(line, "4", "points at the task: {from_task}");
        let hot = error(&one_model("spec = \"anthropic:c\"\ntemperature = 1.5", ""));
        assert!(hot.contains("from 0 to 1, not 1.5"), "{hot}");
        let thinking_at_zero = error(&one_model(
            "spec = \"anthropic:c\"\nthinking_budget = 2000",
            "",
        ));
        assert!(
            thinking_at_zero.contains("only temperature 1"),
            "{thinking_at_zero}"
        );
        // Local and chat-completions models take what they took before.
        assert!(parse(&format!(
            "[defaults]\nseed = 1\nmin_p = 0.1\n{}",
            one_model("spec = \"ollama:llama3\"", "")
        ))
        .is_ok());
        assert!(parse(&format!(
            "[defaults]\nseed = 1\n{}",
            one_model("spec = \"openai:gpt-4o\"", "")
        ))
        .is_ok());
    }

    #[test]
    fn endpoint_pools_parse_and_count_every_url_with_every_key() {
        let suite = parse(&one_model(
            "spec = \"openai-compatible:m\"\nbase_urls = [\"http://a:1/v1\", \"http://b:1/v1/\"]\napi_key_envs = [\"K1_KEY\", \"K2_KEY\"]\npool_in_cache_key = true\nrequests_per_minute = 60\ntokens_per_minute = 90000",
            "",
        ))
        .unwrap();
        let model = &suite.models[0];
        assert_eq!(model.base_urls, ["http://a:1/v1", "http://b:1/v1/"]);
        assert_eq!(model.api_key_envs, ["K1_KEY", "K2_KEY"]);
        assert_eq!(model.endpoint_count(), 4);
        assert!(model.pool_in_cache_key);
        assert_eq!(model.requests_per_minute, Some(60));
        assert_eq!(model.tokens_per_minute, Some(90_000));
        let azure = parse(&one_model(
            "spec = \"azure:d\"\nendpoints = [\"https://r1.openai.azure.com\", \"https://r2.openai.azure.com\"]",
            "",
        ))
        .unwrap();
        assert_eq!(azure.models[0].endpoint_count(), 2);
        // A single model serializes as before: the plan's JSON (and its fingerprint) is unchanged.
        let plain = parse(&one_model("spec = \"openai:gpt-4o\"", "")).unwrap();
        let json = serde_json::to_string(&plain.models[0]).unwrap();
        assert!(
            !json.contains("base_urls") && !json.contains("pool_in_cache_key"),
            "{json}"
        );
    }

    #[test]
    fn endpoint_pool_mistakes_are_located() {
        let cases = [
            (
                "spec = \"openai-compatible:m\"\nbase_url = \"http://a/v1\"\nbase_urls = [\"http://b/v1\"]",
                "both `base_url` and `base_urls`",
                "4",
            ),
            ("spec = \"openai-compatible:m\"\nbase_urls = []", "takes 1 to 64", "3"),
            (
                "spec = \"openai-compatible:m\"\nbase_urls = [\"http://a/v1\", \"http://a/v1/\"]",
                "lists `http://a/v1/` twice",
                "3",
            ),
            ("spec = \"openai:gpt-4o\"\napi_key_envs = [\" \"]", "an empty entry", "3"),
            (
                "spec = \"openai:gpt-4o\"\napi_key_env = \"A_KEY\"\napi_key_envs = [\"B_KEY\"]",
                "both `api_key_env` and `api_key_envs`",
                "4",
            ),
            (
                "spec = \"local:./m\"\nbase_urls = [\"http://a/v1\"]",
                "is for hosted models",
                "3",
            ),
            (
                "spec = \"azure:d\"\nbase_urls = [\"https://r.openai.azure.com\"]",
                "takes `endpoints`, not `base_urls`",
                "3",
            ),
            (
                "spec = \"openai:gpt-4o\"\nendpoints = [\"https://r\"]",
                "`endpoints` is for `azure:` models",
                "3",
            ),
            ("spec = \"openai:gpt-4o\"\nrequests_per_minute = 0", "outside 1..=1000000", "3"),
            (
                "spec = \"local:./m\"\ntokens_per_minute = 10",
                "is for hosted models",
                "3",
            ),
        ];
        for (model, needle, line) in cases {
            let message = error(&one_model(model, ""));
            assert!(message.contains(needle), "{model}: {message}");
            assert_eq!(
                message.split(':').nth(1),
                Some(line),
                "{model} points at its line: {message}"
            );
        }
        let password = error(&one_model(
            "spec = \"openai-compatible:m\"\nbase_urls = [\"http://u:pw@a/v1\", \"http://u:pw@a/v1\"]",
            "",
        ));
        // The message redacts the URL (the quoted line is the user's own file).
        let first_line = password.lines().next().unwrap_or_default();
        assert!(first_line.contains("http://***@a/v1"), "{password}");
    }
}
