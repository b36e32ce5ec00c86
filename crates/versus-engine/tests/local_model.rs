//! End to end through `LocalModel`, the way the runner uses it: chat template, tokenizer, decoder
//! and generation loop together must reproduce transformers' greedy answers on every fixture model.
//! New cases: add a line to `every_fixture_model_answers_like_transformers`.

mod common;

use versus_core::{ChatModel, ChatRequest, GenerationParams, Message, Role};
use versus_engine::source::ModelFiles;
use versus_engine::tokenizer::Tokenizer;
use versus_engine::{LoadOptions, LocalModel};

use common::fixtures_dir;

fn golden(model: &str) -> serde_json::Value {
    let path = fixtures_dir().join(model).join("golden.json");
    serde_json::from_str(&std::fs::read_to_string(&path).expect("read golden.json"))
        .expect("parse golden.json")
}

fn messages(conversation: &serde_json::Value) -> Vec<Message> {
    conversation["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .map(|m| {
            let role = match m["role"].as_str() {
                Some("system") => Role::System,
                Some("assistant") => Role::Assistant,
                _ => Role::User,
            };
            Message::text(role, m["content"].as_str().unwrap_or_default())
        })
        .collect()
}

fn ids(value: &serde_json::Value) -> Vec<u32> {
    value
        .as_array()
        .expect("id list")
        .iter()
        .map(|v| v.as_u64().expect("id") as u32)
        .collect()
}

/// Loads `model` (a fixture folder) and checks every golden conversation: prompt ids, and the
/// greedy answer up to the first stop token (the goldens disable eos and always make 24 tokens).
fn check_model(model: &str) {
    let golden = golden(model);
    let kwargs = golden["reference"]["chat_template_kwargs"]
        .as_object()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .collect();
    let dir = fixtures_dir().join(model);
    let local = LocalModel::load_files(
        &ModelFiles::Folder { dir: dir.clone() },
        model,
        &LoadOptions {
            chat_template_kwargs: kwargs,
            ..LoadOptions::default()
        },
    )
    .expect("load the model");
    let tokenizer = Tokenizer::from_folder(&dir).expect("tokenizer");
    let stop_ids = local.info().stop_token_ids.clone();
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    for conversation in golden["conversations"].as_array().expect("conversations") {
        let id = conversation["id"].as_str().unwrap_or("?");
        let messages = messages(conversation);
        assert_eq!(
            local.prompt_ids(&messages).expect("prompt ids"),
            ids(&conversation["input_ids"]),
            "{model}/{id}: prompt ids"
        );
        let greedy = ids(&conversation["greedy_ids"]);
        let until_stop: Vec<u32> = greedy
            .iter()
            .copied()
            .take_while(|id| !stop_ids.contains(id))
            .collect();
        let expected = tokenizer.decode(&until_stop, true).expect("decode");
        let request = ChatRequest {
            messages,
            params: GenerationParams {
                temperature: Some(0.0),
                max_tokens: Some(greedy.len() as u32),
                // The goldens use no repetition penalty, whatever generation_config.json says.
                repetition_penalty: Some(1.0),
                ..GenerationParams::default()
            },
        };
        let mut streamed = String::new();
        let completion = runtime
            .block_on(local.complete(&request, &mut |piece| streamed.push_str(piece)))
            .expect("complete");
        assert_eq!(completion.text, expected, "{model}/{id}: greedy answer");
        assert_eq!(
            streamed, completion.text,
            "{model}/{id}: streamed pieces add up"
        );
        let usage = completion.usage.expect("local models report usage");
        assert_eq!(
            usage.prompt_tokens as usize,
            ids(&conversation["input_ids"]).len()
        );
        let generated = if until_stop.len() < greedy.len() {
            until_stop.len() + 1
        } else {
            greedy.len()
        };
        assert_eq!(
            usage.completion_tokens as usize, generated,
            "{model}/{id}: token count"
        );
    }
}

#[test]
fn every_fixture_model_answers_like_transformers() {
    check_model("tiny-phi4");
    check_model("tiny-phi35-longrope");
    check_model("tiny-llama32");
    check_model("tiny-qwen25");
}

#[test]
fn stop_strings_cut_the_answer_and_seeds_repeat() {
    let dir = fixtures_dir().join("tiny-phi4");
    let local = LocalModel::load_files(
        &ModelFiles::Folder { dir },
        "tiny-phi4",
        &LoadOptions::default(),
    )
    .expect("load");
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let ask = |params: GenerationParams| {
        let request = ChatRequest {
            messages: vec![Message::user("Tell me a story about a robot.")],
            params,
        };
        runtime
            .block_on(local.complete(&request, &mut |_| {}))
            .expect("complete")
    };
    let full = ask(GenerationParams {
        temperature: Some(0.0),
        max_tokens: Some(24),
        ..Default::default()
    });
    assert!(full.text.chars().count() > 4, "{:?}", full.text);
    // Stop at a piece from the middle of the greedy answer.
    let middle: String = full.text.chars().skip(3).take(2).collect();
    let cut = ask(GenerationParams {
        temperature: Some(0.0),
        max_tokens: Some(24),
        stop: Some(vec![middle.clone()]),
        ..Default::default()
    });
    let expected_prefix = &full.text[..full.text.find(&middle).expect("middle is in the text")];
    assert_eq!(cut.text, expected_prefix);
    assert_eq!(cut.finish_reason, versus_core::FinishReason::Stop);

    let sampled = |seed| {
        ask(GenerationParams {
            temperature: Some(1.0),
            top_p: Some(0.9),
            max_tokens: Some(16),
            seed: Some(seed),
            ..Default::default()
        })
        .text
    };
    assert_eq!(sampled(5), sampled(5), "same seed, same answer");
}

/// Requests of every kind (greedy, sampled with a seed, with a stop string, of several lengths)
/// asked one at a time.
fn mixed_requests() -> Vec<ChatRequest> {
    let prompts = [
        "Tell me a story about a robot.",
        "What is 2 + 2?",
        "Write a haiku about the sea, please, with a title and a moral at the end.",
        "Hi",
        "List three colours.",
        "Explain recursion to a child.",
    ];
    prompts
        .iter()
        .enumerate()
        .map(|(index, prompt)| ChatRequest {
            messages: vec![Message::user(*prompt)],
            params: GenerationParams {
                temperature: Some(if index % 2 == 0 { 0.0 } else { 0.8 }),
                seed: Some(index as u64),
                max_tokens: Some(8 + 4 * index as u32),
                stop: (index == 4).then(|| vec!["e".to_string()]),
                ..GenerationParams::default()
            },
        })
        .collect()
}

fn load_tiny_phi4(options: LoadOptions) -> LocalModel {
    LocalModel::load_files(
        &ModelFiles::Folder {
            dir: fixtures_dir().join("tiny-phi4"),
        },
        "tiny-phi4",
        &options,
    )
    .expect("load")
}

/// Every request sent at once: the texts each gets when asked alone.
fn answers_at_once(local: &LocalModel, requests: &[ChatRequest]) -> Vec<String> {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let calls: Vec<_> = requests
            .iter()
            .cloned()
            .map(|request| {
                let local = local.clone();
                tokio::spawn(async move {
                    let mut streamed = String::new();
                    let completion = local
                        .complete(&request, &mut |piece| streamed.push_str(piece))
                        .await
                        .expect("complete");
                    assert_eq!(streamed, completion.text, "streamed pieces add up");
                    completion.text
                })
            })
            .collect();
        let mut texts = Vec::new();
        for call in calls {
            texts.push(call.await.expect("join"));
        }
        texts
    })
}

fn answers_one_at_a_time(local: &LocalModel, requests: &[ChatRequest]) -> Vec<String> {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    requests
        .iter()
        .map(|request| {
            runtime
                .block_on(local.complete(request, &mut |_| {}))
                .expect("complete")
                .text
        })
        .collect()
}

/// Continuous batching: six requests at once, four at a time in one batch, each answered as it
/// is alone; the scheduler really decoded several together.
#[test]
fn concurrent_requests_are_batched_and_answered_as_alone() {
    let requests = mixed_requests();
    let local = load_tiny_phi4(LoadOptions {
        max_batch: Some(4),
        ..LoadOptions::default()
    });
    assert_eq!(local.max_batch(), 4);
    let alone = answers_one_at_a_time(&local, &requests);
    assert_eq!(local.batch_stats().peak_batch, 1);
    let together = answers_at_once(&local, &requests);
    assert_eq!(together, alone);
    let stats = local.batch_stats();
    assert_eq!(stats.peak_batch, 4, "{stats:?}");
}

/// A KV budget that holds two of these requests' caches: the others wait (they are not
/// refused), and every answer is still the one it gets alone.
#[test]
fn requests_beyond_the_kv_budget_wait_for_room() {
    // Reservations close in size, so that a budget can fit two but never three.
    let requests: Vec<ChatRequest> = mixed_requests()
        .into_iter()
        .map(|mut request| {
            request.params.max_tokens = Some(40);
            request
        })
        .collect();
    let probe = load_tiny_phi4(LoadOptions::default());
    let alone = answers_one_at_a_time(&probe, &requests);
    // Each request reserves (prompt + max_tokens) positions; a budget that fits any two of
    // them but no three.
    let mut reserved: Vec<u64> = requests
        .iter()
        .map(|request| {
            let prompt = probe.prompt_ids(&request.messages).expect("prompt").len() as u64;
            (prompt + u64::from(request.params.max_tokens.unwrap_or(0)))
                * probe.kv_bytes_per_position()
        })
        .collect();
    reserved.sort_unstable();
    let budget = reserved[reserved.len() - 1] + reserved[reserved.len() - 2];
    assert!(
        budget < reserved[0] + reserved[1] + reserved[2],
        "{reserved:?}"
    );
    let local = load_tiny_phi4(LoadOptions {
        max_batch: Some(8),
        kv_budget_bytes: Some(budget),
        ..LoadOptions::default()
    });
    let together = answers_at_once(&local, &requests);
    assert_eq!(together, alone);
    let stats = local.batch_stats();
    assert!(stats.peak_batch <= 2, "{stats:?}");
    assert!(stats.waited_for_memory > 0, "{stats:?}");
}

/// A request whose caller goes away is dropped from the batch between steps; the others finish.
#[test]
fn a_cancelled_request_leaves_the_batch_and_the_others_finish() {
    let local = load_tiny_phi4(LoadOptions::default());
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let long = ChatRequest {
        messages: vec![Message::user("Tell me a story about a robot.")],
        params: GenerationParams {
            temperature: Some(0.0),
            max_tokens: Some(400),
            ..GenerationParams::default()
        },
    };
    let short = ChatRequest {
        params: GenerationParams {
            max_tokens: Some(12),
            ..long.params.clone()
        },
        ..long.clone()
    };
    let expected = answers_one_at_a_time(&local, std::slice::from_ref(&short));
    let texts = runtime.block_on(async {
        let cancelled = {
            let local = local.clone();
            tokio::spawn(async move {
                // Give up as soon as the answer has begun, long before its 400 tokens: a
                // deadline in time instead let a fast machine finish the whole answer first.
                let (began, has_begun) = tokio::sync::oneshot::channel::<()>();
                let mut began = Some(began);
                let mut on_text = |_: &str| {
                    if let Some(began) = began.take() {
                        let _ = began.send(());
                    }
                };
                let call = local.complete(&long, &mut on_text);
                tokio::select! {
                    biased;
                    _ = has_begun => true,
                    _ = call => false,
                }
            })
        };
        let finished = {
            let local = local.clone();
            let short = short.clone();
            tokio::spawn(async move {
                local
                    .complete(&short, &mut |_| {})
                    .await
                    .expect("complete")
                    .text
            })
        };
        (
            cancelled.await.expect("join"),
            finished.await.expect("join"),
        )
    });
    assert!(texts.0, "the long request was given up before it finished");
    assert_eq!(vec![texts.1], expected);
    // The scheduler is free again: a new request is answered.
    assert_eq!(
        answers_one_at_a_time(&local, std::slice::from_ref(&short)),
        expected
    );
}
