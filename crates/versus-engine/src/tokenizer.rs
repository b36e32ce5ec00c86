//! A model's tokenizer, loaded the way transformers 5 loads it: `tokenizer.json` runs in the
//! `tokenizers` crate, and `tokenizer_config.json`, `special_tokens_map.json` and
//! `generation_config.json` add what transformers takes from them (named special tokens, added
//! tokens, `add_bos_token`/`add_eos_token`, the chat template, the end-of-sequence ids). Those
//! files are read in `tokenizer_config` and `generation_config`; this module applies them.
//!
//! A tokenizer can also be rebuilt from a GGUF file's metadata (see `gguf_tokenizer`).

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use candle_core::quantized::gguf_file;
use serde_json::Value as Json;
use tokenizers::models::ModelWrapper;
use tokenizers::processors::PostProcessorWrapper;
use tokenizers::AddedToken;

pub use crate::detokenize::StreamingDecoder;
use crate::error::{parse_json, EngineError};
use crate::generation_config::generation_eos_ids;
use crate::gguf_tokenizer;
use crate::tokenizer_config::{
    apply_special_tokens_map, parse_tokenizer_config, select_chat_template, TokenizerConfig,
    NAMED_SPECIAL_TOKENS,
};

const TOKENIZER_FILE: &str = "tokenizer.json";
const TOKENIZER_CONFIG_FILE: &str = "tokenizer_config.json";
const SPECIAL_TOKENS_MAP_FILE: &str = "special_tokens_map.json";
const GENERATION_CONFIG_FILE: &str = "generation_config.json";
const CHAT_TEMPLATE_JINJA_FILE: &str = "chat_template.jinja";
const CHAT_TEMPLATE_JSON_FILE: &str = "chat_template.json";

/// Tokens that close a turn in well-known chat templates. A model whose generation_config lists
/// only its base-model end (e.g. `<|endoftext|>`) still ends a chat answer with one of these, so
/// one that the chat template writes counts as an end of sequence too.
const END_OF_TURN_TOKENS: [&str; 6] = [
    "<|im_end|>",
    "<|eot_id|>",
    "<|end|>",
    "<end_of_turn>",
    "<|end_of_turn|>",
    "<|eot|>",
];

/// A model's tokenizer. Cloning is cheap: clones share one loaded tokenizer.
#[derive(Clone)]
pub struct Tokenizer {
    inner: Arc<TokenizerState>,
}

struct TokenizerState {
    backend: tokenizers::Tokenizer,
    bos_token: Option<String>,
    eos_token: Option<String>,
    unk_token: Option<String>,
    pad_token: Option<String>,
    add_bos_token: bool,
    add_eos_token: bool,
    chat_template: Option<String>,
    chat_template_origin: Option<String>,
    clean_up_tokenization_spaces: bool,
    special_ids: BTreeSet<u32>,
    eos_token_ids: Vec<u32>,
}

impl std::fmt::Debug for Tokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokenizer")
            .field("vocab_size", &self.vocab_size())
            .field("bos_token", &self.inner.bos_token)
            .field("eos_token", &self.inner.eos_token)
            .field("eos_token_ids", &self.inner.eos_token_ids)
            .finish_non_exhaustive()
    }
}

impl Tokenizer {
    /// Loads a tokenizer from a model folder: `tokenizer.json` (required), `tokenizer_config.json`,
    /// `special_tokens_map.json`, `generation_config.json` (for the end-of-sequence ids) and a
    /// `chat_template.jinja` / `chat_template.json`, which transformers prefers to the template in
    /// `tokenizer_config.json`.
    pub fn from_folder(dir: &Path) -> Result<Tokenizer, EngineError> {
        let tokenizer_path = dir.join(TOKENIZER_FILE);
        let tokenizer_json = read_required(&tokenizer_path)?;
        let config_path = dir.join(TOKENIZER_CONFIG_FILE);
        let config_text = read_optional(&config_path)?;
        let map_path = dir.join(SPECIAL_TOKENS_MAP_FILE);
        let map_text = read_optional(&map_path)?;
        let generation_path = dir.join(GENERATION_CONFIG_FILE);
        let generation_text = read_optional(&generation_path)?;

        let mut config = match &config_text {
            Some(text) => parse_tokenizer_config(text, &config_path)?,
            None => TokenizerConfig::default(),
        };
        if let Some(text) = &map_text {
            apply_special_tokens_map(&mut config, text, &map_path)?;
        }
        if let Some((template, origin)) = read_chat_template_file(dir)? {
            config.chat_template = Some(template);
            config.chat_template_origin = Some(origin.display().to_string());
        }
        let generation_eos = match &generation_text {
            Some(text) => generation_eos_ids(text, &generation_path)?,
            None => Vec::new(),
        };
        let backend = parse_backend(&tokenizer_json, &tokenizer_path)?;
        Tokenizer::assemble(backend, config, generation_eos)
    }

    /// Builds a tokenizer from file contents, with the semantics of [`Tokenizer::from_folder`]
    /// (without the `chat_template.jinja` override).
    pub fn from_strings(
        tokenizer_json: &str,
        tokenizer_config_json: &str,
        generation_config_json: Option<&str>,
        special_tokens_map_json: Option<&str>,
    ) -> Result<Tokenizer, EngineError> {
        let mut config =
            parse_tokenizer_config(tokenizer_config_json, Path::new(TOKENIZER_CONFIG_FILE))?;
        if let Some(text) = special_tokens_map_json {
            apply_special_tokens_map(&mut config, text, Path::new(SPECIAL_TOKENS_MAP_FILE))?;
        }
        let generation_eos = match generation_config_json {
            Some(text) => generation_eos_ids(text, Path::new(GENERATION_CONFIG_FILE))?,
            None => Vec::new(),
        };
        let backend = parse_backend(tokenizer_json, Path::new(TOKENIZER_FILE))?;
        Tokenizer::assemble(backend, config, generation_eos)
    }

    /// Rebuilds the tokenizer a GGUF file describes in its `tokenizer.ggml.*` metadata
    /// (`gpt2` byte-level BPE and `llama` SentencePiece vocabularies).
    pub fn from_gguf(
        metadata: &HashMap<String, gguf_file::Value>,
    ) -> Result<Tokenizer, EngineError> {
        let parts = gguf_tokenizer::tokenizer_parts(metadata)?;
        let text = serde_json::to_string(&parts.tokenizer_json)
            .map_err(|e| EngineError::Tokenizer(format!("GGUF tokenizer: {e}")))?;
        let backend = tokenizers::Tokenizer::from_bytes(text.as_bytes())
            .map_err(|e| EngineError::Tokenizer(format!("GGUF tokenizer: {e}")))?;
        Tokenizer::assemble(backend, parts.config, parts.eos_token_ids)
    }

    /// Applies tokenizer_config on top of the tokenizer.json backend, as transformers'
    /// `TokenizersBackend.__init__` does.
    fn assemble(
        mut backend: tokenizers::Tokenizer,
        config: TokenizerConfig,
        generation_eos: Vec<u32>,
    ) -> Result<Tokenizer, EngineError> {
        add_config_tokens(&mut backend, &config)?;

        let token_content = |name: &str| config.named.get(name).map(|spec| spec.content.clone());
        let bos_token = token_content("bos_token");
        let eos_token = token_content("eos_token");
        let bos_id = bos_token.as_deref().and_then(|t| backend.token_to_id(t));
        let eos_id = eos_token.as_deref().and_then(|t| backend.token_to_id(t));
        // transformers turns a flag off when its token is missing.
        let add_bos_token = config.add_bos_token.unwrap_or(false) && bos_id.is_some();
        let add_eos_token = config.add_eos_token.unwrap_or(false) && eos_id.is_some();

        // transformers rewrites the post-processor only when tokenizer_config names one of the
        // flags; otherwise the one in tokenizer.json (e.g. Llama 3's BOS template) stays.
        if config.add_bos_token.is_some() || config.add_eos_token.is_some() {
            let bos = bos_token.as_deref().zip(bos_id).filter(|_| add_bos_token);
            let eos = eos_token.as_deref().zip(eos_id).filter(|_| add_eos_token);
            let processor = bos_eos_post_processor(bos, eos)?;
            backend.with_post_processor(Some(processor));
        }

        let special_ids: BTreeSet<u32> = backend
            .get_added_tokens_decoder()
            .into_iter()
            .filter(|(_, token)| token.special)
            .map(|(id, _)| id)
            .collect();

        let mut eos_token_ids = Vec::new();
        let mut push_unique = |id: u32| {
            if !eos_token_ids.contains(&id) {
                eos_token_ids.push(id);
            }
        };
        generation_eos.iter().copied().for_each(&mut push_unique);
        if let Some(id) = eos_id {
            push_unique(id);
        }
        if let Some(template) = &config.chat_template {
            for token in END_OF_TURN_TOKENS {
                if template.contains(token) {
                    if let Some(id) = backend.token_to_id(token) {
                        push_unique(id);
                    }
                }
            }
        }

        Ok(Tokenizer {
            inner: Arc::new(TokenizerState {
                bos_token,
                eos_token,
                unk_token: token_content("unk_token"),
                pad_token: token_content("pad_token"),
                add_bos_token,
                add_eos_token,
                chat_template: config.chat_template,
                chat_template_origin: config.chat_template_origin,
                clean_up_tokenization_spaces: config.clean_up_tokenization_spaces,
                special_ids,
                eos_token_ids,
                backend,
            }),
        })
    }

    /// Token ids of `text`. Special-token text in `text` becomes its token (transformers'
    /// `split_special_tokens=False`); `add_special_tokens` adds what the post-processor adds
    /// (e.g. Llama 3's `<|begin_of_text|>`).
    pub fn encode(&self, text: &str, add_special_tokens: bool) -> Result<Vec<u32>, EngineError> {
        let encoding = self
            .inner
            .backend
            .encode_fast(text, add_special_tokens)
            .map_err(|e| EngineError::Tokenizer(format!("cannot encode text: {e}")))?;
        Ok(encoding.get_ids().to_vec())
    }

    /// The text of `ids`; ids with no token are left out, as in transformers.
    pub fn decode(&self, ids: &[u32], skip_special_tokens: bool) -> Result<String, EngineError> {
        let text = self.decode_raw(ids, skip_special_tokens)?;
        // transformers 5 ignores clean_up_tokenization_spaces for BPE models: the clean-up was
        // written for WordPiece and removes real spaces before punctuation in BPE output.
        if self.inner.clean_up_tokenization_spaces && !self.is_bpe() {
            Ok(clean_up_tokenization(&text))
        } else {
            Ok(text)
        }
    }

    /// Decoding without transformers' clean-up, for the streaming decoder.
    pub(crate) fn decode_raw(
        &self,
        ids: &[u32],
        skip_special_tokens: bool,
    ) -> Result<String, EngineError> {
        self.inner
            .backend
            .decode(ids, skip_special_tokens)
            .map_err(|e| EngineError::Tokenizer(format!("cannot decode token ids: {e}")))
    }

    /// An incremental decoder that emits text as ids arrive, never half a character.
    pub fn streaming_decoder(&self, skip_special_tokens: bool) -> StreamingDecoder {
        StreamingDecoder::new(self, skip_special_tokens)
    }

    /// The id of a token (added tokens included).
    pub fn token_to_id(&self, token: &str) -> Option<u32> {
        self.inner.backend.token_to_id(token)
    }

    /// The token of an id, as transformers' `convert_ids_to_tokens` gives it.
    pub fn id_to_token(&self, id: u32) -> Option<String> {
        self.inner.backend.id_to_token(id)
    }

    /// The tokens of `ids`; ids with no token are an error.
    pub fn ids_to_tokens(&self, ids: &[u32]) -> Result<Vec<String>, EngineError> {
        ids.iter()
            .map(|&id| {
                self.id_to_token(id)
                    .ok_or_else(|| EngineError::Tokenizer(format!("no token has id {id}")))
            })
            .collect()
    }

    /// `len(tokenizer)` in transformers: every distinct token, added tokens included.
    pub fn vocab_size(&self) -> usize {
        self.inner.backend.get_vocab_size(true)
    }

    pub fn bos_token(&self) -> Option<&str> {
        self.inner.bos_token.as_deref()
    }

    pub fn eos_token(&self) -> Option<&str> {
        self.inner.eos_token.as_deref()
    }

    pub fn unk_token(&self) -> Option<&str> {
        self.inner.unk_token.as_deref()
    }

    pub fn pad_token(&self) -> Option<&str> {
        self.inner.pad_token.as_deref()
    }

    pub fn bos_token_id(&self) -> Option<u32> {
        self.bos_token().and_then(|t| self.token_to_id(t))
    }

    pub fn eos_token_id(&self) -> Option<u32> {
        self.eos_token().and_then(|t| self.token_to_id(t))
    }

    /// Whether `encode(.., add_special_tokens=true)` is configured to prepend the BOS token by
    /// tokenizer_config (a post-processor in tokenizer.json may add it regardless).
    pub fn add_bos_token(&self) -> bool {
        self.inner.add_bos_token
    }

    pub fn add_eos_token(&self) -> bool {
        self.inner.add_eos_token
    }

    /// Ids of the special tokens (those `skip_special_tokens` drops).
    pub fn special_token_ids(&self) -> &BTreeSet<u32> {
        &self.inner.special_ids
    }

    pub fn is_special(&self, id: u32) -> bool {
        self.inner.special_ids.contains(&id)
    }

    /// The ids that end generation: generation_config's `eos_token_id`, tokenizer_config's
    /// `eos_token`, and the end-of-turn token the chat template writes, in that order.
    pub fn eos_token_ids(&self) -> Vec<u32> {
        self.inner.eos_token_ids.clone()
    }

    /// The chat template (the `default` one where several are named).
    pub fn chat_template(&self) -> Option<&str> {
        self.inner.chat_template.as_deref()
    }

    /// Where the chat template was read from (a file, or GGUF metadata), for its errors.
    pub fn chat_template_origin(&self) -> Option<&str> {
        self.inner.chat_template_origin.as_deref()
    }

    /// The special tokens a chat template sees as variables (`bos_token`, `eos_token`,
    /// `unk_token`, `pad_token`), as transformers passes its special tokens map.
    pub fn template_special_tokens(&self) -> Vec<(&'static str, String)> {
        let state = &self.inner;
        [
            ("bos_token", &state.bos_token),
            ("eos_token", &state.eos_token),
            ("unk_token", &state.unk_token),
            ("pad_token", &state.pad_token),
        ]
        .into_iter()
        .filter_map(|(name, value)| value.clone().map(|value| (name, value)))
        .collect()
    }

    /// The `tokenizers` tokenizer underneath.
    pub fn backend(&self) -> &tokenizers::Tokenizer {
        &self.inner.backend
    }

    /// Whether a token is a byte-fallback token (`<0x0A>`), which decodes to one raw byte.
    pub(crate) fn is_byte_fallback_token(&self, id: u32) -> bool {
        let ModelWrapper::BPE(bpe) = self.inner.backend.get_model() else {
            return false;
        };
        if !bpe.byte_fallback {
            return false;
        }
        self.id_to_token(id).is_some_and(|token| {
            token.len() == 6
                && token.starts_with("<0x")
                && token.ends_with('>')
                && u8::from_str_radix(&token[3..5], 16).is_ok()
        })
    }

    fn is_bpe(&self) -> bool {
        matches!(self.inner.backend.get_model(), ModelWrapper::BPE(_))
    }
}

/// transformers' `clean_up_tokenization`: removes the spaces WordPiece decoding leaves before
/// punctuation and English contractions.
fn clean_up_tokenization(text: &str) -> String {
    text.replace(" .", ".")
        .replace(" ?", "?")
        .replace(" !", "!")
        .replace(" ,", ",")
        .replace(" ' ", "'")
        .replace(" n't", "n't")
        .replace(" 'm", "'m")
        .replace(" 's", "'s")
        .replace(" 've", "'ve")
        .replace(" 're", "'re")
}

/// Adds the added tokens of tokenizer_config and the named special tokens that tokenizer.json
/// lacks, as transformers does when it loads a tokenizer.
fn add_config_tokens(
    backend: &mut tokenizers::Tokenizer,
    config: &TokenizerConfig,
) -> Result<(), EngineError> {
    let present = backend.get_added_tokens_decoder();
    let present_by_content: HashMap<&str, &AddedToken> = present
        .values()
        .map(|token| (token.content.as_str(), token))
        .collect();

    // An entry of added_tokens_decoder replaces a token of tokenizer.json with the same content
    // but other flags (transformers compares the whole AddedToken).
    let mut to_add: Vec<AddedToken> = Vec::new();
    let mut sorted_decoder = config.added_tokens_decoder.clone();
    sorted_decoder.sort_by_key(|(id, _)| *id);
    for (_, spec) in &sorted_decoder {
        let token = spec.to_added_token(false);
        if present_by_content.get(token.content.as_str()) != Some(&&token) {
            to_add.push(token);
        }
    }

    // Named special tokens, then the extra ones, that are not added tokens yet become special.
    let named = NAMED_SPECIAL_TOKENS
        .iter()
        .filter_map(|name| config.named.get(name));
    for spec in named.chain(config.extra_special.iter()) {
        let known = present_by_content.contains_key(spec.content.as_str())
            || to_add.iter().any(|token| token.content == spec.content);
        if !known {
            let mut token = spec.to_added_token(true);
            token.special = true;
            to_add.push(token);
        }
    }

    if !to_add.is_empty() {
        backend
            .add_tokens(to_add)
            .map_err(|e| EngineError::Tokenizer(format!("cannot add tokens: {e}")))?;
    }
    Ok(())
}

/// transformers' `update_post_processor`: `[bos] $A:0 [eos]` for one sequence and
/// `[bos] $A:0 [eos] [bos] $B:1 [eos]` for a pair.
fn bos_eos_post_processor(
    bos: Option<(&str, u32)>,
    eos: Option<(&str, u32)>,
) -> Result<PostProcessorWrapper, EngineError> {
    let piece = |kind: &str, id: &str, type_id: u32| {
        json_object([(
            kind,
            json_object([("id", Json::from(id)), ("type_id", Json::from(type_id))]),
        )])
    };
    let sequence_template = |sequence: &str, type_id: u32| {
        let mut pieces = Vec::new();
        if let Some((token, _)) = bos {
            pieces.push(piece("SpecialToken", token, type_id));
        }
        pieces.push(piece("Sequence", sequence, type_id));
        if let Some((token, _)) = eos {
            pieces.push(piece("SpecialToken", token, type_id));
        }
        pieces
    };
    let single = sequence_template("A", 0);
    let mut pair = single.clone();
    pair.extend(sequence_template("B", 1));
    let mut special_tokens = serde_json::Map::new();
    for (token, id) in bos.into_iter().chain(eos) {
        special_tokens.insert(
            token.to_string(),
            json_object([
                ("id", Json::from(token)),
                ("ids", Json::from(vec![id])),
                ("tokens", Json::from(vec![token])),
            ]),
        );
    }
    let processor = json_object([
        ("type", Json::from("TemplateProcessing")),
        ("single", Json::Array(single)),
        ("pair", Json::Array(pair)),
        ("special_tokens", Json::Object(special_tokens)),
    ]);
    serde_json::from_value(processor).map_err(|e| {
        EngineError::Tokenizer(format!("cannot build the BOS/EOS post-processor: {e}"))
    })
}

pub(crate) fn json_object<const N: usize>(entries: [(&str, Json); N]) -> Json {
    Json::Object(
        entries
            .into_iter()
            .map(|(key, value)| (key.to_string(), value))
            .collect(),
    )
}

fn parse_backend(text: &str, path: &Path) -> Result<tokenizers::Tokenizer, EngineError> {
    tokenizers::Tokenizer::from_bytes(text.as_bytes()).map_err(|e| EngineError::InvalidFile {
        path: path.to_path_buf(),
        reason: format!("not a tokenizers serialization: {e}"),
    })
}

fn read_required(path: &Path) -> Result<String, EngineError> {
    std::fs::read_to_string(path).map_err(|e| EngineError::Io {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })
}

fn read_optional(path: &Path) -> Result<Option<String>, EngineError> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(Some(text)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(EngineError::Io {
            path: path.to_path_buf(),
            reason: e.to_string(),
        }),
    }
}

/// transformers 5 saves templates to `chat_template.jinja` (older versions to
/// `chat_template.json`), and a template there wins over tokenizer_config's.
fn read_chat_template_file(dir: &Path) -> Result<Option<(String, PathBuf)>, EngineError> {
    let jinja_path = dir.join(CHAT_TEMPLATE_JINJA_FILE);
    if let Some(text) = read_optional(&jinja_path)? {
        return Ok(Some((text, jinja_path)));
    }
    let json_path = dir.join(CHAT_TEMPLATE_JSON_FILE);
    let Some(text) = read_optional(&json_path)? else {
        return Ok(None);
    };
    let value = parse_json(&text, &json_path)?;
    match value.get("chat_template") {
        Some(template) => Ok(select_chat_template(template, &json_path)?.map(|t| (t, json_path))),
        None => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_up_matches_transformers() {
        assert_eq!(
            clean_up_tokenization("a , b . c ! it 's I 'm do n't"),
            "a, b. c! it's I'm don't"
        );
    }
}
