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
