//! The script a fake server follows: rules that match requests and the faults they inject.

use std::collections::VecDeque;
use std::time::Duration;

/// Something going wrong with one answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// Answer with this HTTP status. `body` defaults to an OpenAI error object
    /// (`{"error":{"message":..,"type":..,"param":null,"code":..}}`) fitting the status.
    Status {
        code: u16,
        retry_after: Option<String>,
        body: Option<String>,
    },
    /// Send the role chunk and `after_chunks` content chunks, then close the connection abruptly:
    /// no `finish_reason`, no `[DONE]`. A non-streaming request gets half its JSON body, then the
    /// connection is closed.
    CutStream { after_chunks: usize },
    /// Wait this long before answering (to outlast a client's timeout), then answer normally.
    Delay(Duration),
    /// Status 200 whose JSON (the body, or an SSE `data:` line) does not parse.
    MalformedJson,
    /// Answer normally but leave `usage` out, even when `stream_options.include_usage` asks for it.
    NoUsage,
    /// Answer with a non-streaming `chat.completion` JSON object even when `stream: true` was asked.
    IgnoreStream,
    /// Stream the opening events and `after_chunks` content chunks, then an error inside the
    /// stream in the format's own shape (Anthropic's `event: error` with `overloaded_error`, the
    /// Responses API's `error` event, an `{"error": ...}` chunk or line), and end the stream.
    /// A non-streaming request gets a 500.
    ErrorEvent { after_chunks: usize },
    /// The provider withholds the answer: Gemini's `finishReason: SAFETY` with safety ratings,
    /// Anthropic's `stop_reason: refusal`, a `content_filter` finish in OpenAI's formats, an
    /// error line from Ollama (which has no such thing).
    Blocked,
}

impl Fault {
    /// `Fault::Status` with the default OpenAI error body and no `Retry-After`.
    pub fn status(code: u16) -> Fault {
        Fault::Status {
            code,
            retry_after: None,
            body: None,
        }
    }

    /// Sets the `Retry-After` header of a `Fault::Status`.
    ///
    /// # Panics
    /// On any other fault: the test's script is wrong.
    pub fn retry_after(self, value: impl Into<String>) -> Fault {
        match self {
            Fault::Status { code, body, .. } => Fault::Status {
                code,
                retry_after: Some(value.into()),
                body,
            },
            other => panic!("Fault::retry_after only applies to Fault::Status, not {other:?}"),
        }
    }

    /// Replaces the body of a `Fault::Status` (sent as `application/json`, verbatim).
    ///
    /// # Panics
    /// On any other fault: the test's script is wrong.
    pub fn body(self, body: impl Into<String>) -> Fault {
        match self {
            Fault::Status {
                code, retry_after, ..
            } => Fault::Status {
                code,
                retry_after,
                body: Some(body.into()),
            },
            other => panic!("Fault::body only applies to Fault::Status, not {other:?}"),
        }
    }

    pub fn cut_stream(after_chunks: usize) -> Fault {
        Fault::CutStream { after_chunks }
    }

    pub fn delay(duration: Duration) -> Fault {
        Fault::Delay(duration)
    }

    pub fn error_event(after_chunks: usize) -> Fault {
        Fault::ErrorEvent { after_chunks }
    }
}

/// Which requests a rule applies to, and what it does to them.
///
/// A matching request takes the next fault from the rule's queue; once the queue is empty it gets
/// the `fault_forever` fault if one is set, and otherwise a normal answer (the rule's `answer` if
/// set, else [`default_answer`](crate::default_answer)).
#[derive(Debug, Clone, Default)]
pub struct Rule {
    model: Option<String>,
    prompt_contains: Option<String>,
    faults: VecDeque<Fault>,
    fault_forever: Option<Fault>,
    answer: Option<String>,
    thinking: Option<String>,
    refuse_images: bool,
    chunk_delay: Option<Duration>,
}

impl Rule {
    /// Matches every request.
    pub fn any() -> Rule {
        Rule::default()
    }

    /// Matches requests for exactly this model name.
    pub fn model(name: impl Into<String>) -> Rule {
        Rule {
            model: Some(name.into()),
            ..Rule::default()
        }
    }

    /// Also requires the last user message's text to contain `text`.
    pub fn prompt_contains(mut self, text: impl Into<String>) -> Rule {
        self.prompt_contains = Some(text.into());
        self
    }

    /// Queues one fault, used by the next matching request not already given one.
    pub fn fault(mut self, fault: Fault) -> Rule {
        self.faults.push_back(fault);
        self
    }

    /// Queues faults, one per matching request, in order.
    pub fn faults(mut self, faults: impl IntoIterator<Item = Fault>) -> Rule {
        self.faults.extend(faults);
        self
    }

    /// Applies `fault` to every matching request once the queue is used up: a model that never
    /// recovers.
    pub fn fault_forever(mut self, fault: Fault) -> Rule {
        self.fault_forever = Some(fault);
        self
    }

    /// Answers with `text` instead of [`default_answer`](crate::default_answer).
    pub fn answer(mut self, text: impl Into<String>) -> Rule {
        self.answer = Some(text.into());
        self
    }

    /// Thinks `text` before answering: streamed first as the format's thinking (Anthropic's
    /// thinking block, Gemini's thought parts, the Responses API's reasoning summary, Ollama's
    /// `thinking`, `reasoning_content` deltas in chat completions), its words reported as
    /// reasoning tokens and counted in the output.
    pub fn thinking(mut self, text: impl Into<String>) -> Rule {
        self.thinking = Some(text.into());
        self
    }

    /// Answers 400, in the format's error shape, to requests carrying images: a model that does
    /// not read them.
    pub fn refuse_images(mut self) -> Rule {
        self.refuse_images = true;
        self
    }

    /// Waits this long before each streamed content chunk and the final chunks.
    pub fn chunk_delay(mut self, delay: Duration) -> Rule {
        self.chunk_delay = Some(delay);
        self
    }

    fn matches(&self, model: &str, last_user_text: &str) -> bool {
        let model_matches = self.model.as_deref().is_none_or(|wanted| wanted == model);
        let prompt_matches = self
            .prompt_contains
            .as_deref()
            .is_none_or(|needle| last_user_text.contains(needle));
        model_matches && prompt_matches
    }
}

/// Everything a fake server does: its rules, in order (the first matching rule wins), and global
/// settings.
#[derive(Debug, Clone)]
pub struct Script {
    rules: Vec<Rule>,
    fixed_latency: Option<Duration>,
    require_api_key: Option<String>,
    log_requests: bool,
    batch_polls: u32,
}

impl Default for Script {
    fn default() -> Script {
        Script {
            rules: Vec::new(),
            fixed_latency: None,
            require_api_key: None,
            log_requests: true,
            batch_polls: 1,
        }
    }
}

impl Script {
    /// No rules: every request gets [`default_answer`](crate::default_answer).
    pub fn new() -> Script {
        Script::default()
    }

    /// Adds a rule after the existing ones.
    pub fn rule(mut self, rule: Rule) -> Script {
        self.rules.push(rule);
        self
    }

    /// Waits this long before every chat answer (errors included), like a slow network.
    pub fn fixed_latency(mut self, latency: Duration) -> Script {
        self.fixed_latency = Some(latency);
        self
    }

    /// Answers 401 (in each format's error shape; Gemini's is a 400 `API_KEY_INVALID`, as
    /// Google's) unless the key is sent the format's way: `Authorization: Bearer {key}`
    /// (OpenAI's formats, Ollama; also accepted by Anthropic's and Azure's), `x-api-key`
    /// (Anthropic), `api-key` (Azure), `x-goog-api-key` or `?key=` (Gemini).
    pub fn require_api_key(mut self, key: impl Into<String>) -> Script {
        self.require_api_key = Some(key.into());
        self
    }

    /// Whether requests are kept in the log (default yes). Turned off for long-running servers
    /// (benchmarks), where the log would only grow; `request_count` still counts.
    pub fn log_requests(mut self, enabled: bool) -> Script {
        self.log_requests = enabled;
        self
    }

    /// How many status requests a batch job answers "in progress" before it has ended
    /// (default 1); `u32::MAX` keeps every batch pending.
    pub fn batch_polls(mut self, polls: u32) -> Script {
        self.batch_polls = polls;
        self
    }

    pub(crate) fn batch_polls_setting(&self) -> u32 {
        self.batch_polls
    }

    pub(crate) fn fixed_latency_setting(&self) -> Option<Duration> {
        self.fixed_latency
    }

    pub(crate) fn required_api_key(&self) -> Option<&str> {
        self.require_api_key.as_deref()
    }

    pub(crate) fn logs_requests(&self) -> bool {
        self.log_requests
    }

    /// The model names rules mention, each once, in rule order.
    pub(crate) fn models(&self) -> Vec<String> {
        let mut models: Vec<String> = Vec::new();
        for name in self.rules.iter().filter_map(|rule| rule.model.as_ref()) {
            if !models.contains(name) {
                models.push(name.clone());
            }
        }
        models
    }

    /// Picks what to do with one request, consuming a queued fault of the first matching rule.
    pub(crate) fn decide(&mut self, model: &str, last_user_text: &str) -> Decision {
        let Some(rule) = self
            .rules
            .iter_mut()
            .find(|rule| rule.matches(model, last_user_text))
        else {
            return Decision::default();
        };
        Decision {
            fault: rule
                .faults
                .pop_front()
                .or_else(|| rule.fault_forever.clone()),
            answer: rule.answer.clone(),
            thinking: rule.thinking.clone(),
            refuse_images: rule.refuse_images,
            chunk_delay: rule.chunk_delay,
        }
    }
}

/// What a script says to do with one request.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Decision {
    pub fault: Option<Fault>,
    /// Replaces the default answer.
    pub answer: Option<String>,
    pub thinking: Option<String>,
    pub refuse_images: bool,
    pub chunk_delay: Option<Duration>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_matching_rule_wins_and_its_queue_drains() {
        let mut script = Script::new()
            .rule(
                Rule::model("m1")
                    .prompt_contains("sunrise")
                    .faults([Fault::status(429), Fault::status(500)]),
            )
            .rule(Rule::model("m1").fault_forever(Fault::MalformedJson));
        let faults: Vec<Option<Fault>> = (0..3)
            .map(|_| script.decide("m1", "a sunrise poem").fault)
            .collect();
        assert_eq!(
            faults,
            [Some(Fault::status(429)), Some(Fault::status(500)), None]
        );
        assert_eq!(
            script.decide("m1", "sunset").fault,
            Some(Fault::MalformedJson)
        );
        assert_eq!(script.decide("m2", "sunrise"), Decision::default());
    }

    #[test]
    fn models_lists_rule_models_once() {
        let script = Script::new()
            .rule(Rule::model("b"))
            .rule(Rule::any())
            .rule(Rule::model("a"))
            .rule(Rule::model("b"));
        assert_eq!(script.models(), ["b", "a"]);
    }

    #[test]
    #[should_panic(expected = "only applies to Fault::Status")]
    fn retry_after_on_other_faults_is_a_script_bug() {
        let _ = Fault::MalformedJson.retry_after("1");
    }
}
