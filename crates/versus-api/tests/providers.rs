//! Every provider's client against versus-testkit's fake of its wire format (a separate copy of
//! each format, checked against the official Python clients): answers streamed and whole,
//! thinking kept apart, usage as reported, retries on 429/529/5xx, cut streams, errors inside
//! streams and malformed JSON, keys sent the provider's way and never echoed, blocks recorded as
//! blocks, images accepted or refused; and each as a member of an endpoint pool.

use std::time::Duration;

use versus_api::{
    Api, ApiClient, AzureAuth, AzureOptions, ClientConfig, PoolClient, PoolSettings, RetryPolicy,
};
use versus_core::{
    ChatRequest, Completion, ContentPart, ErrorKind, FinishReason, GenerationParams, Message,
    ModelError, OpenAiApi, Role,
};
use versus_testkit::{default_answer, FakeServer, Fault, Format, Rule, Script};

const KEY: &str = "sk-test-provider-key-1234";
const MODEL: &str = "model-x";

/// Each API versus speaks, as the tests reach it.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Provider {
    Chat,
    Responses,
    Anthropic,
    Gemini,
    AzureClassic,
    AzureV1,
    AzureResponses,
    Ollama,
}

const ALL: [Provider; 8] = [
    Provider::Chat,
    Provider::Responses,
    Provider::Anthropic,
    Provider::Gemini,
    Provider::AzureClassic,
    Provider::AzureV1,
    Provider::AzureResponses,
    Provider::Ollama,
];

impl Provider {
    fn api(self) -> Api {
        let azure = |api_version: Option<&str>, api| {
            Api::Azure(AzureOptions {
                api_version: api_version.map(str::to_string),
                auth: AzureAuth::ApiKey,
                api,
            })
        };
        match self {
            Provider::Chat => Api::ChatCompletions,
            Provider::Responses => Api::Responses,
            Provider::Anthropic => Api::Anthropic,
            Provider::Gemini => Api::Gemini,
            Provider::AzureClassic => azure(Some("2024-10-21"), OpenAiApi::Chat),
            Provider::AzureV1 => azure(None, OpenAiApi::Chat),
            Provider::AzureResponses => azure(None, OpenAiApi::Responses),
            Provider::Ollama => Api::Ollama,
        }
    }

    fn base_url(self, server: &FakeServer) -> String {
        match self {
            Provider::Chat | Provider::Responses => server.base_url(),
            _ => server.root_url(),
        }
    }

    fn format(self) -> Format {
        match self {
            Provider::Chat | Provider::AzureClassic | Provider::AzureV1 => Format::ChatCompletions,
            Provider::Responses | Provider::AzureResponses => Format::Responses,
            Provider::Anthropic => Format::Anthropic,
            Provider::Gemini => Format::Gemini,
            Provider::Ollama => Format::Ollama,
        }
    }

    /// The header the key travels in, and its value.
    fn key_header(self) -> (&'static str, String) {
        match self {
            Provider::Anthropic => ("x-api-key", KEY.to_string()),
            Provider::Gemini => ("x-goog-api-key", KEY.to_string()),
            Provider::AzureClassic | Provider::AzureV1 | Provider::AzureResponses => {
                ("api-key", KEY.to_string())
            }
            Provider::Chat | Provider::Responses | Provider::Ollama => {
                ("authorization", format!("Bearer {KEY}"))
            }
        }
    }
}

fn client(server: &FakeServer, provider: Provider, stream: bool, retries: u32) -> ApiClient {
    let mut config = ClientConfig::new(provider.base_url(server), MODEL);
    config.api_key = Some(KEY.to_string());
    config.key_hint = Some("TEST_API_KEY".to_string());
    config.stream = stream;
    config.timeout = Duration::from_secs(10);
    config.retry = RetryPolicy {
        max_retries: retries,
        base_delay: Duration::from_millis(5),
        max_delay: Duration::from_millis(20),
    };
    ApiClient::for_api(provider.api(), config).expect("a valid client")
}

fn request(prompt: &str) -> ChatRequest {
    ChatRequest {
        messages: vec![Message::system("Be brief."), Message::user(prompt)],
        params: GenerationParams {
            temperature: Some(0.0),
            max_tokens: Some(64),
            ..Default::default()
        },
    }
}

/// Asks `provider` through a fresh server following `script`; returns the answer, the text shown
/// while streaming, and the server (for its log).
async fn ask(
    provider: Provider,
    script: Script,
    stream: bool,
    chat: ChatRequest,
) -> (Result<Completion, ModelError>, String, FakeServer) {
    let server = FakeServer::start(script.require_api_key(KEY))
        .await
        .expect("a fake server");
    let mut shown = String::new();
    let result = client(&server, provider, stream, 2)
        .complete_streaming(&chat, &mut |text| shown.push_str(text))
        .await;
    (result, shown, server)
}

#[tokio::test]
async fn every_provider_streams_an_answer_with_usage_timings_and_its_key_header() {
    for provider in ALL {
        let (result, shown, server) =
            ask(provider, Script::new(), true, request("hello there")).await;
        let completion = result.unwrap_or_else(|e| panic!("{provider:?}: {}", e.message));
        let expected = default_answer(MODEL, "hello there");
        assert_eq!(completion.text, expected, "{provider:?}");
        assert_eq!(
            shown, expected,
            "{provider:?}: text streamed once, in order"
        );
        assert_eq!(completion.finish_reason, FinishReason::Stop, "{provider:?}");
        let usage = completion
            .usage
            .unwrap_or_else(|| panic!("{provider:?}: usage"));
        assert_eq!(
            usage.prompt_tokens,
            2 + 2,
            "{provider:?}: system and user words"
        );
        assert_eq!(usage.completion_tokens, 5, "{provider:?}");
        assert!(
            completion.timings.ttft_ms.is_some(),
            "{provider:?}: time to first token"
        );
        assert_eq!(completion.attempts, 1);
        assert!(completion.thinking.is_none(), "{provider:?}");
        let logged = server.last_request().expect("a request");
        assert_eq!(logged.format, provider.format(), "{provider:?}");
        assert!(logged.stream, "{provider:?}");
        let (header, value) = provider.key_header();
        assert_eq!(logged.header(header), Some(value.as_str()), "{provider:?}");
        assert_eq!(logged.model, MODEL, "{provider:?}");
        assert_eq!(logged.params.max_tokens, Some(64), "{provider:?}");
        if provider == Provider::Anthropic {
            assert_eq!(
                logged.header("anthropic-version"),
                Some(versus_api::ANTHROPIC_VERSION)
            );
        }
        if provider == Provider::Ollama {
            let timings = completion.server_timings.expect("Ollama's durations");
            assert!(timings.total_ms.is_some() && timings.generation_ms.is_some());
        } else {
            assert!(completion.server_timings.is_none(), "{provider:?}");
        }
    }
}

#[tokio::test]
async fn every_provider_reads_a_whole_answer() {
    for provider in ALL {
        let (result, _, server) =
            ask(provider, Script::new(), false, request("whole please")).await;
        let completion = result.unwrap_or_else(|e| panic!("{provider:?}: {}", e.message));
        assert_eq!(
            completion.text,
            default_answer(MODEL, "whole please"),
            "{provider:?}"
        );
        assert!(completion.usage.is_some(), "{provider:?}");
        assert!(completion.timings.ttft_ms.is_none(), "{provider:?}");
        assert!(
            !server.last_request().expect("logged").stream,
            "{provider:?}"
        );
    }
}

#[tokio::test]
async fn thinking_is_kept_apart_and_its_tokens_reported() {
    let thinking = "First I weigh the options carefully.";
    for provider in ALL {
        for stream in [true, false] {
            let script = Script::new().rule(Rule::any().thinking(thinking));
            let (result, shown, _) = ask(provider, script, stream, request("think")).await;
            let completion = result.unwrap_or_else(|e| panic!("{provider:?}: {}", e.message));
            let answer = default_answer(MODEL, "think");
            assert_eq!(completion.text, answer, "{provider:?} {stream}");
            assert_eq!(
                shown, answer,
                "{provider:?} {stream}: thinking is not shown as text"
            );
            assert_eq!(
                completion.thinking.as_deref(),
                Some(thinking),
                "{provider:?} {stream}"
            );
            let usage = completion.usage.expect("usage");
            if provider == Provider::Ollama {
                assert_eq!(
                    usage.reasoning_tokens, None,
                    "Ollama does not count thinking apart"
                );
            } else {
                assert_eq!(usage.reasoning_tokens, Some(6), "{provider:?} {stream}");
                assert_eq!(
                    usage.completion_tokens,
                    4 + 6,
                    "{provider:?} {stream}: thinking is output"
                );
                assert_eq!(usage.answer_tokens(), 4);
            }
        }
    }
}

#[tokio::test]
async fn rate_limits_and_overloads_wait_and_retry() {
    for provider in ALL {
        let overloaded = if provider == Provider::Anthropic {
            529
        } else {
            503
        };
        let script = Script::new().rule(Rule::any().faults([
            Fault::status(429).retry_after("0.05"),
            Fault::status(overloaded),
        ]));
        let (result, _, server) = ask(provider, script, true, request("busy")).await;
        let completion = result.unwrap_or_else(|e| panic!("{provider:?}: {}", e.message));
        assert_eq!(completion.attempts, 3, "{provider:?}");
        let requests = server.requests();
        let waited = requests[1].received_at - requests[0].received_at;
        assert!(
            waited >= Duration::from_millis(50),
            "{provider:?}: retry-after honoured"
        );
    }
}

#[tokio::test]
async fn cut_streams_error_events_and_malformed_json_are_retried_without_repeating_text() {
    for provider in ALL {
        for fault in [
            Fault::cut_stream(2),
            Fault::error_event(2),
            Fault::MalformedJson,
        ] {
            let script = Script::new().rule(Rule::any().fault(fault.clone()));
            let (result, shown, _) = ask(provider, script, true, request("fragile")).await;
            let completion =
                result.unwrap_or_else(|e| panic!("{provider:?} {fault:?}: {}", e.message));
            let answer = default_answer(MODEL, "fragile");
            assert_eq!(completion.text, answer, "{provider:?} {fault:?}");
            assert_eq!(shown, answer, "{provider:?} {fault:?}: no text shown twice");
            assert_eq!(completion.attempts, 2, "{provider:?} {fault:?}");
        }
    }
}

#[tokio::test]
async fn persistent_faults_give_up_with_the_kind_and_the_attempts() {
    for provider in ALL {
        let script = Script::new().rule(Rule::any().fault_forever(Fault::error_event(1)));
        let (result, _, _) = ask(provider, script, true, request("broken")).await;
        let error = result.expect_err("gives up");
        assert_eq!(error.attempts, 3, "{provider:?}");
        assert!(
            error.message.contains("gave up after 3 attempts"),
            "{provider:?}: {}",
            error.message
        );
    }
}

#[tokio::test]
async fn a_wrong_key_is_an_auth_error_not_retried_and_never_echoed() {
    for provider in ALL {
        let server = FakeServer::start(Script::new().require_api_key("the-right-key"))
            .await
            .expect("a fake server");
        let result = client(&server, provider, true, 3)
            .complete_streaming(&request("hi"), &mut |_| {})
            .await;
        let error = result.expect_err("rejected");
        assert_eq!(
            error.kind,
            ErrorKind::Auth,
            "{provider:?}: {}",
            error.message
        );
        assert_eq!(error.attempts, 1, "{provider:?}");
        assert!(
            error.message.contains("TEST_API_KEY"),
            "{provider:?}: {}",
            error.message
        );
        assert!(
            !error.message.contains(KEY),
            "{provider:?}: {}",
            error.message
        );
        assert_eq!(server.request_count(), 1, "{provider:?}");
    }
}

#[tokio::test]
async fn blocked_answers_are_blocked_not_empty_successes() {
    // Ollama has no block of its own.
    for provider in ALL.into_iter().filter(|p| *p != Provider::Ollama) {
        for stream in [true, false] {
            let script = Script::new().rule(Rule::any().fault(Fault::Blocked));
            let (result, _, server) = ask(provider, script, stream, request("risky")).await;
            let error = result.expect_err("blocked");
            assert_eq!(
                error.kind,
                ErrorKind::Blocked,
                "{provider:?} {stream}: {}",
                error.message
            );
            assert_eq!(
                server.request_count(),
                1,
                "{provider:?}: a block is not retried"
            );
            assert!(error.message.contains("blocked"), "{}", error.message);
        }
    }
    let script = Script::new().rule(Rule::any().fault(Fault::Blocked));
    let (result, _, _) = ask(Provider::Gemini, script, true, request("risky")).await;
    let message = result.expect_err("blocked").message;
    assert!(
        message.contains("SAFETY") && message.contains("HARM_CATEGORY_HARASSMENT"),
        "{message}"
    );
}

fn with_image(prompt: &str) -> ChatRequest {
    let mut chat = request(prompt);
    chat.messages[1] = Message {
        role: Role::User,
        content: vec![
            ContentPart::Text {
                text: prompt.to_string(),
            },
            ContentPart::Image {
                url: "data:image/png;base64,iVBORw0KGgo=".to_string(),
                source: Some("pixel.png".to_string()),
            },
        ],
    };
    chat
}

#[tokio::test]
async fn images_go_in_each_format_and_a_model_may_refuse_them() {
    for provider in ALL {
        let (result, _, server) = ask(provider, Script::new(), true, with_image("describe")).await;
        result.unwrap_or_else(|e| panic!("{provider:?}: {}", e.message));
        let logged = server.last_request().expect("logged");
        assert_eq!(logged.image_urls.len(), 1, "{provider:?}");
        assert!(
            logged.image_urls[0].ends_with("iVBORw0KGgo="),
            "{provider:?}"
        );

        let script = Script::new().rule(Rule::any().refuse_images());
        let (result, _, _) = ask(provider, script, true, with_image("describe")).await;
        let error = result.expect_err("refused");
        assert_eq!(error.kind, ErrorKind::BadRequest, "{provider:?}");
        assert!(
            error.message.contains("does not support image input"),
            "{provider:?}: {}",
            error.message
        );
    }
}

#[tokio::test]
async fn no_usage_from_the_server_means_no_usage() {
    for provider in ALL {
        let script = Script::new().rule(Rule::any().fault(Fault::NoUsage));
        let (result, _, _) = ask(provider, script, true, request("quiet")).await;
        let completion = result.unwrap_or_else(|e| panic!("{provider:?}: {}", e.message));
        assert_eq!(completion.usage, None, "{provider:?}");
    }
}

#[tokio::test]
async fn an_azure_entra_token_goes_as_a_bearer_token() {
    let server = FakeServer::start(Script::new().require_api_key(KEY))
        .await
        .expect("a fake server");
    let mut config = ClientConfig::new(server.root_url(), "my-deployment");
    config.api_key = Some(KEY.to_string());
    let api = Api::Azure(AzureOptions {
        api_version: Some("2024-10-21".to_string()),
        auth: AzureAuth::BearerToken,
        api: OpenAiApi::Chat,
    });
    let completion = ApiClient::for_api(api, config)
        .expect("valid")
        .complete_streaming(&request("hi"), &mut |_| {})
        .await
        .expect("answered");
    assert!(completion.text.starts_with("Answer from my-deployment"));
    let logged = server.last_request().expect("logged");
    assert!(logged
        .path
        .starts_with("/openai/deployments/my-deployment/chat/completions?api-version=2024-10-21"));
    assert_eq!(
        logged.header("authorization"),
        Some(format!("Bearer {KEY}").as_str())
    );
    assert_eq!(logged.header("api-key"), None);
}

/// Polls batch `id` until it has ended, at most `polls` times.
async fn wait_for_batch(
    client: &ApiClient,
    id: &str,
    polls: usize,
) -> Vec<versus_api::BatchResult> {
    for _ in 0..polls {
        match client.poll_batch(id).await.expect("a status") {
            versus_api::BatchPoll::Running { .. } => continue,
            versus_api::BatchPoll::Ended(results) => return results,
            versus_api::BatchPoll::Failed(reason) => panic!("the batch failed: {reason}"),
        }
    }
    panic!("the batch did not end in {polls} polls");
}

#[tokio::test]
async fn batches_are_submitted_polled_and_read_back_request_by_request() {
    use versus_api::{BatchItem, BatchOutcome};
    for provider in [Provider::Chat, Provider::Anthropic, Provider::Gemini] {
        let script = Script::new()
            .require_api_key(KEY)
            .batch_polls(2)
            .rule(
                Rule::any()
                    .prompt_contains("refused")
                    .fault(Fault::status(400)),
            )
            .rule(
                Rule::any()
                    .prompt_contains("thinks")
                    .thinking("Ponder first."),
            );
        let server = FakeServer::start(script).await.expect("a fake server");
        let client = client(&server, provider, true, 1);
        assert!(client.takes_batches(), "{provider:?}");
        let items: Vec<BatchItem> = ["one", "refused", "thinks"]
            .iter()
            .map(|prompt| BatchItem {
                custom_id: format!("cell-{prompt}"),
                request: request(prompt),
            })
            .collect();
        let id = client
            .submit_batch(&items)
            .await
            .unwrap_or_else(|e| panic!("{provider:?}: {}", e.message));
        let logged = server.requests();
        assert_eq!(
            logged.len(),
            3,
            "{provider:?}: each request answered once, in the batch"
        );
        assert!(logged
            .iter()
            .all(|r| r.batch.as_deref() == Some(id.as_str()) || r.batch.is_some()));
        assert!(
            !logged.iter().any(|r| r.stream),
            "{provider:?}: batch requests do not stream"
        );
        let results = wait_for_batch(&client, &id, 5).await;
        assert_eq!(results.len(), 3, "{provider:?}");
        for result in results {
            match (result.custom_id.as_str(), result.outcome) {
                ("cell-one", BatchOutcome::Answered(completion)) => {
                    assert_eq!(
                        completion.text,
                        default_answer(MODEL, "one"),
                        "{provider:?}"
                    );
                    assert!(completion.usage.is_some());
                }
                ("cell-thinks", BatchOutcome::Answered(completion)) => {
                    assert_eq!(
                        completion.thinking.as_deref(),
                        Some("Ponder first."),
                        "{provider:?}"
                    );
                }
                ("cell-refused", BatchOutcome::Failed(error)) => {
                    assert_eq!(
                        error.kind,
                        ErrorKind::BadRequest,
                        "{provider:?}: {}",
                        error.message
                    );
                    assert!(!error.message.contains(KEY));
                }
                (id, outcome) => panic!("{provider:?}: {id}: {outcome:?}"),
            }
        }
    }
}

#[tokio::test]
async fn a_pending_batch_says_so_and_other_apis_take_none() {
    let server = FakeServer::start(Script::new().require_api_key(KEY).batch_polls(u32::MAX))
        .await
        .expect("a fake server");
    let client = client(&server, Provider::Anthropic, true, 1);
    let items = [versus_api::BatchItem {
        custom_id: "c1".into(),
        request: request("hi"),
    }];
    let id = client.submit_batch(&items).await.expect("submitted");
    assert!(matches!(
        client.poll_batch(&id).await.expect("a status"),
        versus_api::BatchPoll::Running { total: Some(1), .. }
    ));
    assert!(
        client.poll_batch("../../etc").await.is_err(),
        "an id is a path segment, no more"
    );
    for provider in [Provider::Ollama, Provider::Responses, Provider::AzureV1] {
        assert!(
            !self::client(&server, provider, true, 0).takes_batches(),
            "{provider:?}"
        );
    }
}

/// A pool of `servers` for `provider`, each a client as `client` makes it.
fn pool(servers: &[&FakeServer], provider: Provider, retries: u32) -> PoolClient {
    let members = servers
        .iter()
        .map(|server| client(server, provider, true, retries))
        .collect();
    let settings = PoolSettings {
        concurrency: 4,
        requests_per_minute: None,
        tokens_per_minute: None,
    };
    PoolClient::new(members, settings, None).expect("a pool")
}

#[tokio::test]
async fn every_provider_works_as_a_pool_member_past_a_failing_endpoint() {
    for provider in ALL {
        let healthy = FakeServer::start(Script::new().require_api_key(KEY))
            .await
            .expect("a fake server");
        let failing = FakeServer::start(
            Script::new()
                .require_api_key(KEY)
                .rule(Rule::any().fault_forever(Fault::status(503))),
        )
        .await
        .expect("a fake server");
        let pool = pool(&[&failing, &healthy], provider, 2);
        for index in 0..6 {
            let prompt = format!("question {index}");
            let mut shown = String::new();
            let completion = pool
                .complete_streaming(&request(&prompt), &mut |text| shown.push_str(text))
                .await
                .unwrap_or_else(|e| panic!("{provider:?}: {}", e.message));
            let expected = default_answer(MODEL, &prompt);
            assert_eq!(completion.text, expected, "{provider:?}");
            assert_eq!(shown, expected, "{provider:?}: shown once");
        }
        assert_eq!(healthy.request_count(), 6, "{provider:?}");
        assert_eq!(
            failing.request_count(),
            3,
            "{provider:?}: ejected after three failures"
        );
    }
}

#[tokio::test]
async fn a_429_pauses_its_endpoint_for_the_time_asked_while_the_others_answer() {
    let limited = FakeServer::start(
        Script::new()
            .require_api_key(KEY)
            .rule(Rule::any().fault(Fault::status(429).retry_after("30"))),
    )
    .await
    .expect("a fake server");
    let other = FakeServer::start(Script::new().require_api_key(KEY))
        .await
        .expect("a fake server");
    let pool = pool(&[&limited, &other], Provider::Chat, 2);
    let started = std::time::Instant::now();
    for index in 0..4 {
        let prompt = format!("question {index}");
        let completion = pool
            .complete_streaming(&request(&prompt), &mut |_| {})
            .await
            .expect("answered by the other endpoint");
        assert_eq!(completion.text, default_answer(MODEL, &prompt));
    }
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "nobody waited out the 30 s"
    );
    assert_eq!(limited.request_count(), 1, "paused after its 429");
    assert_eq!(other.request_count(), 4);
}
