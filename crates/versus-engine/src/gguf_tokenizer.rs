//! Rebuilds a tokenizer from a GGUF file's `tokenizer.ggml.*` metadata, as a tokenizer.json
//! document for the `tokenizers` crate.
//!
//! Two vocabularies are supported: `gpt2` (byte-level BPE with merges; the pre-tokenizer regex is
//! chosen by `tokenizer.ggml.pre`, as llama.cpp does) and `llama` (SentencePiece with scores and
//! byte fallback; merges are derived from the scores, as transformers' GGUF converter does).

use std::collections::{HashMap, HashSet};

use candle_core::quantized::gguf_file::Value;
use serde_json::Value as Json;

use crate::error::EngineError;
use crate::tokenizer::json_object;
use crate::tokenizer_config::{TokenSpec, TokenizerConfig};

/// The cl100k / Llama 3 split regex (llama.cpp's `LLAMA3`, also used for `dbrx` and `smaug-bpe`).
const LLAMA3_REGEX: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

/// Qwen2's split regex: the Llama 3 one with digits taken one at a time.
const QWEN2_REGEX: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

/// `tokenizer.ggml.pre` values whose pre-tokenizer is the Llama 3 regex.
const LLAMA3_PRE: [&str; 6] = [
    "llama3",
    "llama-v3",
    "llama-bpe",
    "falcon3",
    "dbrx",
    "smaug-bpe",
];

/// Of those, the ones for which llama.cpp also skips merges for whole-word vocabulary entries
/// (`ignore_merges`) and adds BOS by default, as Llama 3 does.
const LLAMA3_IGNORE_MERGES_PRE: [&str; 4] = ["llama3", "llama-v3", "llama-bpe", "falcon3"];

const QWEN2_PRE: [&str; 3] = ["qwen2", "deepseek-r1-qwen", "megrez"];

/// `tokenizer.ggml.token_type` values (llama.cpp's `LLAMA_TOKEN_TYPE_*`).
const TOKEN_TYPE_UNKNOWN: i64 = 2;
const TOKEN_TYPE_CONTROL: i64 = 3;
const TOKEN_TYPE_USER_DEFINED: i64 = 4;

const METADATA: &str = "GGUF metadata";

/// What the GGUF metadata describes: the tokenizer.json document, the tokenizer_config part
/// (special tokens, BOS/EOS flags, chat template) and the end-of-sequence ids.
pub(crate) struct GgufTokenizerParts {
    pub(crate) tokenizer_json: Json,
    pub(crate) config: TokenizerConfig,
    pub(crate) eos_token_ids: Vec<u32>,
}

pub(crate) fn tokenizer_parts(
    metadata: &HashMap<String, Value>,
) -> Result<GgufTokenizerParts, EngineError> {
    let model = required_string(metadata, "tokenizer.ggml.model")?;
    let tokens = string_array(metadata, "tokenizer.ggml.tokens")?;
    let token_types = match metadata.get("tokenizer.ggml.token_type") {
        Some(value) => int_array(value, "tokenizer.ggml.token_type")?,
        None => Vec::new(),
    };
    if !token_types.is_empty() && token_types.len() != tokens.len() {
        return Err(metadata_error(
            "tokenizer.ggml.token_type",
            format!("{} types for {} tokens", token_types.len(), tokens.len()),
        ));
    }
    let token_type = |id: usize| token_types.get(id).copied().unwrap_or(1);

    let token_at = |key: &str| -> Result<Option<(u32, String)>, EngineError> {
        let Some(id) = optional_u32(metadata, key)? else {
            return Ok(None);
        };
        let token = tokens.get(id as usize).ok_or_else(|| {
            metadata_error(key, format!("id {id} is past the {} tokens", tokens.len()))
        })?;
        Ok(Some((id, token.to_string())))
    };
    let bos = token_at("tokenizer.ggml.bos_token_id")?;
    let eos = token_at("tokenizer.ggml.eos_token_id")?;
    let unk = token_at("tokenizer.ggml.unknown_token_id")?;
    let pad = token_at("tokenizer.ggml.padding_token_id")?;
    let eot = token_at("tokenizer.ggml.eot_token_id")?;
    let eom = token_at("tokenizer.ggml.eom_token_id")?;

    let pre = optional_string(metadata, "tokenizer.ggml.pre")?.unwrap_or("default");
    let (tokenizer_json, default_add_bos) = match model {
        "gpt2" => {
            let merges = string_array(metadata, "tokenizer.ggml.merges")?;
            (
                byte_level_bpe_json(&tokens, &merges, pre)?,
                LLAMA3_IGNORE_MERGES_PRE.contains(&pre),
            )
        }
        "llama" => {
            let scores = match metadata.get("tokenizer.ggml.scores") {
                Some(value) => float_array(value, "tokenizer.ggml.scores")?,
                None => return Err(metadata_error("tokenizer.ggml.scores", "missing")),
            };
            if scores.len() != tokens.len() {
                return Err(metadata_error(
                    "tokenizer.ggml.scores",
                    format!("{} scores for {} tokens", scores.len(), tokens.len()),
                ));
            }
            let add_space_prefix =
                optional_bool(metadata, "tokenizer.ggml.add_space_prefix")?.unwrap_or(true);
            let unk_token = unk.as_ref().map(|(_, token)| token.as_str());
            (
                sentencepiece_bpe_json(&tokens, &scores, unk_token, add_space_prefix),
                true,
            )
        }
        other => {
            return Err(metadata_error(
                "tokenizer.ggml.model",
                format!(
                    "tokenizer model `{other}` is not supported; versus reads `gpt2` and `llama`"
                ),
            ))
        }
    };
    let mut tokenizer_json = tokenizer_json;
    tokenizer_json["added_tokens"] = added_tokens_json(&tokens, &token_type);

    let mut config = TokenizerConfig::default();
    for (name, token) in [
        ("bos_token", &bos),
        ("eos_token", &eos),
        ("unk_token", &unk),
        ("pad_token", &pad),
    ] {
        if let Some((_, content)) = token {
            let mut spec = TokenSpec::plain(content.clone());
            spec.special = Some(true);
            config.named.insert(name, spec);
        }
    }
    config.add_bos_token =
        Some(optional_bool(metadata, "tokenizer.ggml.add_bos_token")?.unwrap_or(default_add_bos));
    config.add_eos_token =
        Some(optional_bool(metadata, "tokenizer.ggml.add_eos_token")?.unwrap_or(false));
    config.chat_template = optional_string(metadata, "tokenizer.chat_template")?.map(String::from);
    config.chat_template_origin = Some("GGUF metadata `tokenizer.chat_template`".to_string());

    let eos_token_ids = [&eos, &eot, &eom]
        .into_iter()
        .flatten()
        .map(|(id, _)| *id)
        .collect();
    Ok(GgufTokenizerParts {
        tokenizer_json,
        config,
        eos_token_ids,
    })
}

/// The vocabulary as tokenizer.json writes it. A token listed twice keeps its last id, as in the
/// Python dictionary transformers builds.
fn vocab_json(tokens: &[&str]) -> Json {
    let mut vocab = serde_json::Map::new();
    for (id, token) in tokens.iter().enumerate() {
        vocab.insert(token.to_string(), Json::from(id));
    }
    Json::Object(vocab)
}

/// Control and unknown tokens are special added tokens; user-defined ones (e.g. Qwen's
/// `<tool_call>`) are added tokens that stay in decoded text, as llama.cpp renders them.
fn added_tokens_json(tokens: &[&str], token_type: &dyn Fn(usize) -> i64) -> Json {
    let added = tokens
        .iter()
        .enumerate()
        .filter_map(|(id, token)| {
            let special = match token_type(id) {
                TOKEN_TYPE_CONTROL | TOKEN_TYPE_UNKNOWN => true,
                TOKEN_TYPE_USER_DEFINED => false,
                _ => return None,
            };
            Some(json_object([
                ("id", Json::from(id)),
                ("content", Json::from(*token)),
                ("single_word", Json::from(false)),
                ("lstrip", Json::from(false)),
                ("rstrip", Json::from(false)),
                ("normalized", Json::from(false)),
                ("special", Json::from(special)),
            ]))
        })
        .collect();
    Json::Array(added)
}

fn byte_level_bpe_json(tokens: &[&str], merges: &[&str], pre: &str) -> Result<Json, EngineError> {
    let byte_level = |use_regex: bool| {
        json_object([
            ("type", Json::from("ByteLevel")),
            ("add_prefix_space", Json::from(false)),
            ("trim_offsets", Json::from(true)),
            ("use_regex", Json::from(use_regex)),
        ])
    };
    let split_then_bytes = |regex: &str| {
        json_object([
            ("type", Json::from("Sequence")),
            (
                "pretokenizers",
                Json::from(vec![
                    json_object([
                        ("type", Json::from("Split")),
                        ("pattern", json_object([("Regex", Json::from(regex))])),
                        ("behavior", Json::from("Isolated")),
                        ("invert", Json::from(false)),
                    ]),
                    byte_level(false),
                ]),
            ),
        ])
    };
    let (pre_tokenizer, normalizer) = if LLAMA3_PRE.contains(&pre) {
        (split_then_bytes(LLAMA3_REGEX), Json::Null)
    } else if QWEN2_PRE.contains(&pre) {
        // llama.cpp does not normalize, but transformers' Qwen2 tokenizer applies NFC; versus
        // follows transformers, the reference for every other format.
        (
            split_then_bytes(QWEN2_REGEX),
            json_object([("type", Json::from("NFC"))]),
        )
    } else if pre == "gpt-2" {
        // GPT-2's own regex is the one built into the ByteLevel pre-tokenizer.
        (byte_level(true), Json::Null)
    } else {
        return Err(metadata_error(
            "tokenizer.ggml.pre",
            format!(
                "pre-tokenizer `{pre}` is not supported; versus reads {}, {} and gpt-2",
                LLAMA3_PRE.join(", "),
                QWEN2_PRE.join(", ")
            ),
        ));
    };
    let model = json_object([
        ("type", Json::from("BPE")),
        ("dropout", Json::Null),
        ("unk_token", Json::Null),
        ("continuing_subword_prefix", Json::Null),
        ("end_of_word_suffix", Json::Null),
        ("fuse_unk", Json::from(false)),
        ("byte_fallback", Json::from(false)),
        (
            "ignore_merges",
            Json::from(LLAMA3_IGNORE_MERGES_PRE.contains(&pre)),
        ),
        ("vocab", vocab_json(tokens)),
        ("merges", Json::from(merges.to_vec())),
    ]);
    Ok(json_object([
        ("version", Json::from("1.0")),
        ("truncation", Json::Null),
        ("padding", Json::Null),
        ("added_tokens", Json::Array(Vec::new())),
        ("normalizer", normalizer),
        ("pre_tokenizer", pre_tokenizer),
        ("post_processor", Json::Null),
        (
            "decoder",
            json_object([
                ("type", Json::from("ByteLevel")),
                ("add_prefix_space", Json::from(true)),
                ("trim_offsets", Json::from(true)),
                ("use_regex", Json::from(true)),
            ]),
        ),
        ("model", model),
    ]))
}

/// A SentencePiece vocabulary as the BPE model transformers builds for it: `▁` for spaces,
/// byte fallback, and merges derived from the scores.
fn sentencepiece_bpe_json(
    tokens: &[&str],
    scores: &[f32],
    unk_token: Option<&str>,
    add_space_prefix: bool,
) -> Json {
    let replace = |from: &str, to: &str| {
        json_object([
            ("type", Json::from("Replace")),
            ("pattern", json_object([("String", Json::from(from))])),
            ("content", Json::from(to)),
        ])
    };
    let mut normalizers = Vec::new();
    if add_space_prefix {
        normalizers.push(json_object([
            ("type", Json::from("Prepend")),
            ("prepend", Json::from("\u{2581}")),
        ]));
    }
    normalizers.push(replace(" ", "\u{2581}"));
    let mut decoders = vec![
        replace("\u{2581}", " "),
        json_object([("type", Json::from("ByteFallback"))]),
        json_object([("type", Json::from("Fuse"))]),
    ];
    if add_space_prefix {
        decoders.push(json_object([
            ("type", Json::from("Strip")),
            ("content", Json::from(" ")),
            ("start", Json::from(1)),
            ("stop", Json::from(0)),
        ]));
    }
    let merges: Vec<Json> = merges_from_scores(tokens, scores)
        .into_iter()
        .map(|(left, right)| Json::from(vec![left, right]))
        .collect();
    let model = json_object([
        ("type", Json::from("BPE")),
        ("dropout", Json::Null),
        ("unk_token", unk_token.map_or(Json::Null, Json::from)),
        ("continuing_subword_prefix", Json::Null),
        ("end_of_word_suffix", Json::Null),
        ("fuse_unk", Json::from(true)),
        ("byte_fallback", Json::from(true)),
        ("ignore_merges", Json::from(false)),
        ("vocab", vocab_json(tokens)),
        ("merges", Json::Array(merges)),
    ]);
    json_object([
        ("version", Json::from("1.0")),
        ("truncation", Json::Null),
        ("padding", Json::Null),
        ("added_tokens", Json::Array(Vec::new())),
        (
            "normalizer",
            json_object([
                ("type", Json::from("Sequence")),
                ("normalizers", Json::Array(normalizers)),
            ]),
        ),
        ("pre_tokenizer", Json::Null),
        ("post_processor", Json::Null),
        (
            "decoder",
            json_object([
                ("type", Json::from("Sequence")),
                ("decoders", Json::Array(decoders)),
            ]),
        ),
        ("model", model),
    ])
}

/// Merges for a SentencePiece vocabulary: every split of a token into two tokens, the token with
/// the higher score merging first. llama.cpp merges the adjacent pair whose result scores
/// highest, which BPE with merges ranked by the result's score reproduces; this is how
/// transformers' GGUF converter builds them.
fn merges_from_scores(tokens: &[&str], scores: &[f32]) -> Vec<(String, String)> {
    let mut score_of: HashMap<&str, f32> = HashMap::new();
    for (token, score) in tokens.iter().zip(scores) {
        score_of.insert(token, *score);
    }
    let mut seen: HashSet<&str> = HashSet::new();
    let mut merges: Vec<(&str, &str, f32)> = Vec::new();
    for token in tokens {
        if !seen.insert(token) {
            continue;
        }
        let score = score_of[token];
        let mut local: Vec<(&str, &str, f32)> = token
            .char_indices()
            .skip(1)
            .map(|(split, _)| token.split_at(split))
            .filter(|(left, right)| score_of.contains_key(left) && score_of.contains_key(right))
            .map(|(left, right)| (left, right, score))
            .collect();
        local.sort_by(|a, b| {
            let key = |merge: &(&str, &str, f32)| (score_of[merge.0], score_of[merge.1]);
            let (a0, a1) = key(a);
            let (b0, b1) = key(b);
            b0.total_cmp(&a0).then(b1.total_cmp(&a1))
        });
        merges.extend(local);
    }
    // A stable sort: pieces with equal scores keep their vocabulary order.
    merges.sort_by(|a, b| b.2.total_cmp(&a.2));
    merges
        .into_iter()
        .map(|(left, right, _)| (left.to_string(), right.to_string()))
        .collect()
}

fn metadata_error(key: &str, reason: impl Into<String>) -> EngineError {
    EngineError::Config {
        file: METADATA.to_string(),
        field: key.to_string(),
        reason: reason.into(),
    }
}

fn as_int(value: &Value) -> Option<i64> {
    match value {
        Value::U8(v) => Some(i64::from(*v)),
        Value::I8(v) => Some(i64::from(*v)),
        Value::U16(v) => Some(i64::from(*v)),
        Value::I16(v) => Some(i64::from(*v)),
        Value::U32(v) => Some(i64::from(*v)),
        Value::I32(v) => Some(i64::from(*v)),
        Value::U64(v) => i64::try_from(*v).ok(),
        Value::I64(v) => Some(*v),
        _ => None,
    }
}

fn required_string<'a>(
    metadata: &'a HashMap<String, Value>,
    key: &str,
) -> Result<&'a str, EngineError> {
    optional_string(metadata, key)?.ok_or_else(|| metadata_error(key, "missing"))
}

fn optional_string<'a>(
    metadata: &'a HashMap<String, Value>,
    key: &str,
) -> Result<Option<&'a str>, EngineError> {
    match metadata.get(key) {
        None => Ok(None),
        Some(Value::String(text)) => Ok(Some(text.as_str())),
        Some(other) => Err(metadata_error(
            key,
            format!("expected a string, found {:?}", other.value_type()),
        )),
    }
}

fn optional_u32(metadata: &HashMap<String, Value>, key: &str) -> Result<Option<u32>, EngineError> {
    match metadata.get(key) {
        None => Ok(None),
        Some(value) => as_int(value)
            .and_then(|v| u32::try_from(v).ok())
            .map(Some)
            .ok_or_else(|| metadata_error(key, "expected a token id")),
    }
}

fn optional_bool(
    metadata: &HashMap<String, Value>,
    key: &str,
) -> Result<Option<bool>, EngineError> {
    match metadata.get(key) {
        None => Ok(None),
        Some(Value::Bool(flag)) => Ok(Some(*flag)),
        Some(other) => Err(metadata_error(
            key,
            format!("expected a boolean, found {:?}", other.value_type()),
        )),
    }
}

fn array<'a>(value: &'a Value, key: &str) -> Result<&'a [Value], EngineError> {
    match value {
        Value::Array(items) => Ok(items),
        other => Err(metadata_error(
            key,
            format!("expected an array, found {:?}", other.value_type()),
        )),
    }
}

fn string_array<'a>(
    metadata: &'a HashMap<String, Value>,
    key: &str,
) -> Result<Vec<&'a str>, EngineError> {
    let value = metadata
        .get(key)
        .ok_or_else(|| metadata_error(key, "missing"))?;
    array(value, key)?
        .iter()
        .map(|item| match item {
            Value::String(text) => Ok(text.as_str()),
            _ => Err(metadata_error(key, "expected an array of strings")),
        })
        .collect()
}

fn int_array(value: &Value, key: &str) -> Result<Vec<i64>, EngineError> {
    array(value, key)?
        .iter()
        .map(|item| {
            as_int(item).ok_or_else(|| metadata_error(key, "expected an array of integers"))
        })
        .collect()
}

fn float_array(value: &Value, key: &str) -> Result<Vec<f32>, EngineError> {
    array(value, key)?
        .iter()
        .map(|item| match item {
            Value::F32(v) => Ok(*v),
            // llama.cpp reads scores as f32 whatever the file stores.
            Value::F64(v) => Ok(*v as f32),
            _ => Err(metadata_error(key, "expected an array of numbers")),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merges_rank_by_the_merged_token_score() {
        let tokens = ["a", "b", "c", "ab", "bc", "abc"];
        let scores = [0.0, 0.0, 0.0, -2.0, -1.0, -3.0];
        let merges = merges_from_scores(&tokens, &scores);
        let pairs: Vec<(&str, &str)> = merges
            .iter()
            .map(|(l, r)| (l.as_str(), r.as_str()))
            .collect();
        assert_eq!(
            pairs,
            vec![("b", "c"), ("a", "b"), ("a", "bc"), ("ab", "c")]
        );
    }

    #[test]
    fn unsupported_models_are_named() {
        let mut metadata = HashMap::new();
        metadata.insert(
            "tokenizer.ggml.model".to_string(),
            Value::String("bert".to_string()),
        );
        metadata.insert(
            "tokenizer.ggml.tokens".to_string(),
            Value::Array(Vec::new()),
        );
        let error = tokenizer_parts(&metadata).err().map(|e| e.to_string());
        assert!(
            error.as_deref().is_some_and(|e| e.contains("`bert`")),
            "{error:?}"
        );
    }
}
