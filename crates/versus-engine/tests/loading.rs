//! Loading failures are errors that name the file and tensor (never panics), and the loaders'
//! other paths (sharded safetensors) give the same model as the plain one.

mod common;

use std::collections::HashMap;
use std::path::Path;

use candle_core::quantized::{gguf_file, GgmlDType, QTensor};
use candle_core::{DType, Device, Tensor};
use versus_engine::decoder::Decoder;
use versus_engine::EngineError;

use common::fixtures_dir;

/// A temporary model folder holding a fixture's config.json.
fn folder_with_config(model: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::copy(
        fixtures_dir().join(model).join("config.json"),
        dir.path().join("config.json"),
    )
    .expect("copy config");
    dir
}

fn fixture_tensors(model: &str) -> HashMap<String, Tensor> {
    candle_core::safetensors::load(
        fixtures_dir().join(model).join("model.safetensors"),
        &Device::Cpu,
    )
    .expect("load fixture")
}

fn load(dir: &Path) -> Result<Decoder, EngineError> {
    Decoder::from_hf_dir(dir, &Device::Cpu, DType::F32, None)
}

fn expect_error(result: Result<Decoder, EngineError>) -> EngineError {
    match result {
        Ok(_) => panic!("loading succeeded, expected an error"),
        Err(error) => error,
    }
}

#[test]
fn truncated_safetensors_is_an_error_naming_the_file() {
    let dir = folder_with_config("tiny-phi4");
    let bytes = std::fs::read(fixtures_dir().join("tiny-phi4/model.safetensors")).expect("read");
    let path = dir.path().join("model.safetensors");
    std::fs::write(&path, &bytes[..bytes.len() / 2]).expect("write");
    let error = expect_error(load(dir.path()));
    assert!(
        matches!(error, EngineError::InvalidFile { .. }),
        "{error:?}"
    );
    let message = error.to_string();
    assert!(message.contains(&path.display().to_string()), "{message}");
    assert!(message.contains("truncated"), "{message}");
}

#[test]
fn wrong_shaped_tensor_is_named_with_both_shapes() {
    let dir = folder_with_config("tiny-llama32");
    let mut tensors = fixture_tensors("tiny-llama32");
    tensors.insert(
        "model.layers.1.mlp.down_proj.weight".to_string(),
        Tensor::zeros((128, 128), DType::F32, &Device::Cpu).expect("zeros"),
    );
    let path = dir.path().join("model.safetensors");
    candle_core::safetensors::save(&tensors, &path).expect("save");
    let error = expect_error(load(dir.path()));
    let EngineError::Tensor { file, name, reason } = &error else {
        panic!("expected a tensor error, got {error:?}");
    };
    assert_eq!(name, "model.layers.1.mlp.down_proj.weight");
    assert_eq!(file, &path.display().to_string());
    assert!(
        reason.contains("[128, 128]") && reason.contains("[128, 256]"),
        "{reason}"
    );
}

#[test]
fn missing_tensor_is_named() {
    let dir = folder_with_config("tiny-qwen25");
    let mut tensors = fixture_tensors("tiny-qwen25");
    tensors.remove("model.layers.0.self_attn.k_proj.bias");
    candle_core::safetensors::save(&tensors, dir.path().join("model.safetensors")).expect("save");
    let message = expect_error(load(dir.path())).to_string();
    assert!(
        message.contains("model.layers.0.self_attn.k_proj.bias") && message.contains("missing"),
        "{message}"
    );
}

#[test]
fn integer_tensor_is_rejected() {
    let dir = folder_with_config("tiny-llama32");
    let mut tensors = fixture_tensors("tiny-llama32");
    tensors.insert(
        "model.norm.weight".to_string(),
        Tensor::zeros(128, DType::U32, &Device::Cpu).expect("zeros"),
    );
    candle_core::safetensors::save(&tensors, dir.path().join("model.safetensors")).expect("save");
    let message = expect_error(load(dir.path())).to_string();
    assert!(
        message.contains("model.norm.weight") && message.contains("U32"),
        "{message}"
    );
}

#[test]
fn unknown_architecture_is_an_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config =
        std::fs::read_to_string(fixtures_dir().join("tiny-llama32/config.json")).expect("config");
    std::fs::write(
        dir.path().join("config.json"),
        config.replace("LlamaForCausalLM", "MambaForCausalLM"),
    )
    .expect("write");
    std::fs::copy(
        fixtures_dir().join("tiny-llama32/model.safetensors"),
        dir.path().join("model.safetensors"),
    )
    .expect("copy");
    let error = expect_error(load(dir.path()));
    assert!(
        matches!(error, EngineError::UnsupportedArchitecture { .. }),
        "{error:?}"
    );
    assert!(error.to_string().contains("MambaForCausalLM"), "{error}");
}

#[test]
fn missing_weights_are_an_error() {
    let dir = folder_with_config("tiny-phi4");
    let message = expect_error(load(dir.path())).to_string();
    assert!(message.contains("model.safetensors"), "{message}");
}

#[test]
fn sharded_safetensors_load_like_one_file() {
    let dir = folder_with_config("tiny-qwen25");
    let tensors = fixture_tensors("tiny-qwen25");
    let (first, second): (HashMap<_, _>, HashMap<_, _>) = tensors
        .into_iter()
        .partition(|(name, _)| name.contains("layers.0") || name.contains("embed"));
    let mut weight_map = serde_json::Map::new();
    for (file, shard) in [
        ("model-00001-of-00002.safetensors", &first),
        ("model-00002-of-00002.safetensors", &second),
    ] {
        candle_core::safetensors::save(shard, dir.path().join(file)).expect("save shard");
        for name in shard.keys() {
            weight_map.insert(name.clone(), serde_json::Value::String(file.to_string()));
        }
    }
    let index = serde_json::json!({"metadata": {}, "weight_map": weight_map});
    std::fs::write(
        dir.path().join("model.safetensors.index.json"),
        index.to_string(),
    )
    .expect("index");

    let sharded = load(dir.path()).expect("sharded model");
    let single = load(&fixtures_dir().join("tiny-qwen25")).expect("single-file model");
    let tokens = [1000, 1001, 17, 42, 99, 1002];
    assert_eq!(
        sharded.logits_all(&tokens).expect("sharded"),
        single.logits_all(&tokens).expect("single")
    );

    // A shard named by the index but absent is an error naming it.
    std::fs::remove_file(dir.path().join("model-00002-of-00002.safetensors")).expect("remove");
    let message = expect_error(load(dir.path())).to_string();
    assert!(
        message.contains("model-00002-of-00002.safetensors"),
        "{message}"
    );
}

#[test]
fn truncated_gguf_names_a_tensor() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bytes = std::fs::read(fixtures_dir().join("tiny-phi4-gguf/model-q8_0.gguf")).expect("read");
    let path = dir.path().join("model.gguf");
    std::fs::write(&path, &bytes[..bytes.len() - 1000]).expect("write");
    let error = expect_error(Decoder::from_gguf(&path, &Device::Cpu, DType::F32));
    let EngineError::Tensor { file, name, reason } = &error else {
        panic!("expected a tensor error, got {error:?}");
    };
    assert_eq!(file, &path.display().to_string());
    assert!(name.ends_with(".weight"), "{name}");
    assert!(reason.contains("truncated"), "{reason}");

    // Cut inside the header: not a GGUF at all.
    std::fs::write(&path, &bytes[..100]).expect("write");
    let error = expect_error(Decoder::from_gguf(&path, &Device::Cpu, DType::F32));
    assert!(
        matches!(error, EngineError::InvalidFile { .. }),
        "{error:?}"
    );
}

#[test]
fn gguf_of_another_architecture_is_unsupported() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("model.gguf");
    let norm = QTensor::quantize(
        &Tensor::ones(32, DType::F32, &Device::Cpu).expect("ones"),
        GgmlDType::F32,
    )
    .expect("q");
    let architecture = gguf_file::Value::String("gemma2".to_string());
    let mut file = std::fs::File::create(&path).expect("create");
    gguf_file::write(
        &mut file,
        &[("general.architecture", &architecture)],
        &[("output_norm.weight", &norm)],
    )
    .expect("write");
    drop(file);
    let error = expect_error(Decoder::from_gguf(&path, &Device::Cpu, DType::F32));
    assert!(
        matches!(error, EngineError::UnsupportedArchitecture { .. }),
        "{error:?}"
    );
    assert!(error.to_string().contains("gemma2"), "{error}");
}

#[test]
fn bad_token_ids_are_invalid_input() {
    let decoder = load(&fixtures_dir().join("tiny-phi4")).expect("model");
    let mut sequence = decoder.new_sequence(4);
    let error = decoder
        .feed(&mut sequence, &[1, 2, 5000])
        .expect_err("out of vocabulary");
    assert!(matches!(error, EngineError::InvalidInput(_)), "{error:?}");
    assert!(
        sequence.is_empty(),
        "a failed feed leaves the sequence as it was"
    );
    let error = decoder.feed(&mut sequence, &[]).expect_err("empty");
    assert!(matches!(error, EngineError::InvalidInput(_)), "{error:?}");
    // The sequence is still usable.
    decoder
        .feed(&mut sequence, &[1, 2, 3])
        .expect("feed after errors");
    assert_eq!(sequence.tokens(), &[1, 2, 3]);
}
