//! The LLM judge: MT-Bench-style pairwise comparisons and single-answer ratings of the answers.
//!
//! A pair is judged twice, once in each order, because judges favour a position (usually the
//! first answer): a verdict counts as a win only when both orders name the same model, and a
//! disagreement is reported as `inconsistent` (a tie) instead of handing the win to whichever
//! model happened to be shown first. Ratings use a 1-10 rubric. Both are reference-guided when the
//! task has a reference answer or code tests, and weigh criteria chosen by the task's category.
//!
//! Prompts are Markdown files with `{{placeholders}}`: builtin (`crates/versus/prompts/`), or
//! replaced file by file from a suite's `[judge] prompts` folder. Every judge call is greedy and
//! cached in the store's `evaluations` table, so re-scoring never asks the judge twice.
//!
//! This file holds the [`Judge`] (construction, the calls and their cache); `prompts.rs` the
//! prompt files, `verdict.rs` reading verdicts and combining the two orders, `defuse.rs` the
//! cleaning of answers before the judge reads them, `results.rs` what the judge returns.

mod defuse;
mod prompts;
mod results;
#[cfg(test)]
mod tests;
mod verdict;

use std::path::Path;
use std::sync::Arc;

use anyhow::{anyhow, Context};
use serde::{Deserialize, Serialize};
use versus_core::checks::CheckKind;
use versus_core::fingerprint::sha256_json;
use versus_core::suggest::closest;
use versus_core::{
    ChatModel, ChatRequest, GenerationParams, Message, ModelConfig, ModelSpec, Role, Suite, Task,
};
use versus_store::Store;

use crate::models::{prepare, KeyPrompter};

use defuse::sanitize_answer;
pub use prompts::Prompts;
use prompts::{render, Template};
pub use results::{JudgeCall, PairwiseJudgement, SingleJudgement};
use verdict::{combine, pair_explanation, parse_choice, parse_rating};

/// The `kind` of judge calls in the store's `evaluations` table.
const EVALUATION_KIND: &str = "judge";
/// Bumped whenever what a cached judge call means changes, so that old entries stop matching.
const JUDGE_KEY_VERSION: u32 = 1;
/// Room for a short explanation and the verdict line. The prompts ask for a few sentences; the
/// limit only stops a rambling judge (MT-Bench gives its judges 2048 tokens).
const JUDGE_MAX_TOKENS: u32 = 1024;

// ---- what the judge is shown ----

/// The task's whole conversation as the judge reads it: a lone user message as it is, otherwise
/// every message (system included) with its role.
fn conversation_text(task: &Task) -> String {
    let mut text = match task.messages.as_slice() {
        [only] if only.role == Role::User => only.text_content(),
        messages => messages
            .iter()
            .map(|message| format!("{}: {}", role_label(message.role), message.text_content()))
            .collect::<Vec<_>>()
            .join("\n\n"),
    };
    if !task.images.is_empty() {
        text.push_str(&format!(
            "\n\n(The user also attached {} image(s), which are not shown here.)",
            task.images.len()
        ));
    }
    text
}

fn role_label(role: Role) -> &'static str {
    match role {
        Role::System => "System",
        Role::User => "User",
        Role::Assistant => "Assistant",
    }
}

/// The reference answer and every code check's tests, or `None` when the task has neither (and
/// the judge gets the prompt without reference).
fn reference_material(task: &Task) -> Option<String> {
    let mut parts = Vec::new();
    if let Some(reference) = task.reference.as_deref().filter(|r| !r.trim().is_empty()) {
        parts.push(format!("Reference answer:\n{}", reference.trim_end()));
    }
    for check in &task.checks {
        if let CheckKind::Code {
            language, tests, ..
        } = &check.kind
        {
            parts.push(format!(
                "Tests that a correct answer's {language} code must pass:\n```{language}\n{}\n```",
                tests.trim_end()
            ));
        }
    }
    (!parts.is_empty()).then(|| parts.join("\n\n"))
}

// ---- the judge ----

/// A judge call before parsing: the judge's text, or why there is none.
struct RawCall {
    key: String,
    output: Result<String, String>,
    cached: bool,
}

/// What the store keeps of a judge call: its text, parsed again on every read (so a better
/// parser applies to old calls too).
#[derive(Serialize, Deserialize)]
struct CachedCall {
    output: String,
}

fn judge_call(prompt: &Template, raw: &RawCall, parsed: Result<String, String>) -> JudgeCall {
    JudgeCall {
        prompt: prompt.origin.clone(),
        output: raw.output.clone().unwrap_or_default(),
        parsed: parsed.as_ref().ok().cloned(),
        error: parsed.err(),
        cached: raw.cached,
    }
}

/// A model acting as judge, with its prompts.
pub struct Judge {
    model: Arc<dyn ChatModel>,
    label: String,
    spec: ModelSpec,
    /// Where requests go (hosted) or what else decides the answers (local): part of the cache key.
    endpoint: Option<String>,
    prompts: Prompts,
}

impl Judge {
    /// `model` is `[judge] model` or `--judge`: a model id from the suite (its entry is used, so
    /// a local model or a server with its own base URL can judge), else `SPEC` or `ID=SPEC`.
    /// `base_url` (`--base-url`) is the API root of a judge given as a spec.
    pub async fn new(
        model: &str,
        base_url: Option<&str>,
        suite: &Suite,
        prompts_dir: Option<&Path>,
        keys: &mut KeyPrompter,
    ) -> anyhow::Result<Judge> {
        // Prompts first: a mistake in them should not wait for a model to load.
        let prompts = Prompts::load(prompts_dir)?;
        let argument = model.trim();
        // `ID=SPEC` names a judge that is not in the suite, as `--model` names a contestant.
        let (named, model) = match crate::settings::split_model_arg(argument) {
            (Some(id), spec) => (Some(id), spec),
            (None, _) => (None, argument),
        };
        let config = match suite
            .models
            .iter()
            .find(|m| named.is_none() && m.id == model)
        {
            Some(config) => config.clone(),
            None => {
                let spec = ModelSpec::parse(model).map_err(|e| {
                    let ids: Vec<&str> = suite.models.iter().map(|m| m.id.as_str()).collect();
                    let hint = closest(model, ids.iter().copied())
                        .map(|id| format!("; did you mean `{id}`?"))
                        .unwrap_or_default();
                    anyhow!(
                        "the judge `{model}` is neither a model id of the suite ({}) nor a model spec: {e}{hint}",
                        if ids.is_empty() { "it has none".to_string() } else { ids.join(", ") }
                    )
                })?;
                let mut config = ModelConfig::from_spec(spec);
                config.id = named.unwrap_or(model).to_string();
                config.base_url = base_url.map(str::to_string);
                config
            }
        };
        let prepared = prepare(&config, &suite.defaults, keys).await;
        let chat = prepared
            .model
            .with_context(|| format!("cannot use `{argument}` as the judge"))?;
        Ok(Judge::with_model(
            &config.id,
            chat,
            prepared.config.spec,
            prepared.endpoint,
            prompts,
        ))
    }

    /// A judge on a model already built: what [`Judge::new`] ends with, and how tests give the
    /// judge a scripted model. `label` names it in reports; `spec` and `endpoint` key its cache.
    /// The prompts come loaded, so that [`Judge::new`] can check them before loading a model.
    pub(crate) fn with_model(
        label: &str,
        model: Arc<dyn ChatModel>,
        spec: ModelSpec,
        endpoint: Option<String>,
        prompts: Prompts,
    ) -> Judge {
        Judge {
            model,
            label: label.to_string(),
            spec,
            endpoint,
            prompts,
        }
    }

    /// The judge's name in reports: the suite's model id, or the spec as given.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// MT-Bench-style pairwise judgement, asked in both orders (see [`verdict::combine`]).
    pub async fn pairwise(
        &self,
        store: &mut Store,
        task: &Task,
        model_a: &str,
        answer_a: &str,
        model_b: &str,
        answer_b: &str,
    ) -> PairwiseJudgement {
        let reference = reference_material(task);
        let template = match reference {
            Some(_) => &self.prompts.pairwise_reference,
            None => &self.prompts.pairwise,
        };
        let (answer_a, answer_b) = (sanitize_answer(answer_a), sanitize_answer(answer_b));
        let first_request =
            self.pairwise_request(template, task, reference.as_deref(), &answer_a, &answer_b);
        let second_request =
            self.pairwise_request(template, task, reference.as_deref(), &answer_b, &answer_a);
        let (first_key, second_key) = (
            self.cache_key(&first_request),
            self.cache_key(&second_request),
        );
        let (first_cached, second_cached) = (
            cached_output(store, &first_key),
            cached_output(store, &second_key),
        );
        // The two orders are independent: ask them at once.
        let (first, second) = tokio::join!(
            self.ask(first_key, first_cached, &first_request),
            self.ask(second_key, second_cached, &second_request)
        );
        remember(store, &first);
        remember(store, &second);

        let parse = |raw: &RawCall| raw.output.clone().and_then(|output| parse_choice(&output));
        let (first_choice, second_choice) = (parse(&first), parse(&second));
        let verdict = combine(&first_choice, &second_choice);
        PairwiseJudgement {
            model_a: model_a.to_string(),
            model_b: model_b.to_string(),
            verdict,
            explanation: pair_explanation(model_a, model_b, &first_choice, &second_choice, verdict),
            first: judge_call(
                template,
                &first,
                first_choice.map(|c| c.as_str().to_string()),
            ),
            second: judge_call(
                template,
                &second,
                second_choice.map(|c| c.as_str().to_string()),
            ),
        }
    }

    /// Single-answer grading on a 1-10 rubric. `model` names the answer's author for the caller's
    /// records only: the judge is never told who wrote an answer.
    pub async fn single(
        &self,
        store: &mut Store,
        task: &Task,
        _model: &str,
        answer: &str,
    ) -> SingleJudgement {
        let reference = reference_material(task);
        let template = match reference {
            Some(_) => &self.prompts.single_reference,
            None => &self.prompts.single,
        };
        let answer = sanitize_answer(answer);
        let question = conversation_text(task);
        let criteria = self.prompts.criteria.for_category(&task.category);
        let prompt = render(
            &template.text,
            &[
                ("question", &question),
                ("answer", &answer),
                ("reference", reference.as_deref().unwrap_or_default()),
                ("criteria", criteria),
                ("category", &task.category),
            ],
        );
        let request = judge_request(prompt);
        let key = self.cache_key(&request);
        let cached = cached_output(store, &key);
        let raw = self.ask(key, cached, &request).await;
        remember(store, &raw);

        let rating = raw.output.clone().and_then(|output| parse_rating(&output));
        let explanation = match &rating {
            Ok(rating) => format!("rated {rating}/10"),
            Err(reason) => format!("error, no rating: {reason}"),
        };
        SingleJudgement {
            rating: rating.as_ref().ok().copied(),
            call: judge_call(template, &raw, rating.map(|r| r.to_string())),
            explanation,
        }
    }

    fn pairwise_request(
        &self,
        template: &Template,
        task: &Task,
        reference: Option<&str>,
        shown_first: &str,
        shown_second: &str,
    ) -> ChatRequest {
        let question = conversation_text(task);
        let criteria = self.prompts.criteria.for_category(&task.category);
        judge_request(render(
            &template.text,
            &[
                ("question", &question),
                ("answer_a", shown_first),
                ("answer_b", shown_second),
                ("reference", reference.unwrap_or_default()),
                ("criteria", criteria),
                ("category", &task.category),
            ],
        ))
    }

    /// The key of a judge call: the judge (spec and endpoint), the whole prompt and the
    /// parameters, so any change to what the judge would see asks it again.
    fn cache_key(&self, request: &ChatRequest) -> String {
        #[derive(Serialize)]
        struct Key<'a> {
            kind: &'static str,
            version: u32,
            spec: String,
            endpoint: Option<&'a str>,
            request: &'a ChatRequest,
        }
        sha256_json(&Key {
            kind: EVALUATION_KIND,
            version: JUDGE_KEY_VERSION,
            spec: self.spec.to_string(),
            endpoint: self.endpoint.as_deref(),
            request,
        })
    }

    async fn ask(&self, key: String, cached: Option<String>, request: &ChatRequest) -> RawCall {
        if let Some(output) = cached {
            return RawCall {
                key,
                output: Ok(output),
                cached: true,
            };
        }
        let result = self.model.complete(request, &mut |_: &str| {}).await;
        RawCall {
            key,
            output: result
                .map(|completion| completion.text)
                .map_err(|e| format!("the judge call failed: {e}")),
            cached: false,
        }
    }
}

/// The judge sees one user message: every chat template accepts that (some reject a system
/// role), and greedy decoding makes its verdicts reproducible, hence cacheable. The judge's own
/// sampling settings from the suite are deliberately not used.
fn judge_request(prompt: String) -> ChatRequest {
    ChatRequest {
        messages: vec![Message::user(prompt)],
        params: GenerationParams {
            temperature: Some(0.0),
            max_tokens: Some(JUDGE_MAX_TOKENS),
            ..GenerationParams::default()
        },
    }
}

fn cached_output(store: &Store, key: &str) -> Option<String> {
    // A cache that cannot be read only costs a new call; the verdict comes out the same.
    let json = store.lookup_evaluation(key).ok().flatten()?;
    serde_json::from_str::<CachedCall>(&json)
        .ok()
        .map(|cached| cached.output)
}

fn remember(store: &mut Store, call: &RawCall) {
    // Only answers are kept: a failed call (network, rate limit) is worth trying again.
    let (false, Ok(output)) = (call.cached, &call.output) else {
        return;
    };
    let cached = CachedCall {
        output: output.clone(),
    };
    if let Ok(json) = serde_json::to_string(&cached) {
        // A cache that cannot be written costs a repeat call at the next re-score, nothing more:
        // this verdict stands, and the caller's own writes to the same store report a broken
        // database.
        let _ = store.store_evaluation(&call.key, EVALUATION_KIND, &json);
    }
}
