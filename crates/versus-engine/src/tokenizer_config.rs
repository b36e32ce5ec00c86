//! Reads tokenizer_config.json and special_tokens_map.json: the named special tokens, added
//! tokens, `add_bos_token`/`add_eos_token`, `clean_up_tokenization_spaces` and the chat template,
//! as transformers 5 takes them, into one [`TokenizerConfig`] for the tokenizer to apply.

use std::collections::HashMap;
use std::path::Path;

use serde_json::Value as Json;
use tokenizers::AddedToken;

use crate::error::{config_error, parse_json, EngineError};

/// The named special tokens transformers knows (`SPECIAL_TOKENS_ATTRIBUTES`).
pub(crate) const NAMED_SPECIAL_TOKENS: [&str; 7] = [
    "bos_token",
    "eos_token",
    "unk_token",
    "sep_token",
    "pad_token",
    "cls_token",
    "mask_token",
];

/// A token as `tokenizer_config.json` writes it: a plain string or an `AddedToken` object.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct TokenSpec {
    pub(crate) content: String,
    pub(crate) single_word: bool,
    pub(crate) lstrip: bool,
    pub(crate) rstrip: bool,
    pub(crate) normalized: Option<bool>,
    pub(crate) special: Option<bool>,
}

impl TokenSpec {
    pub(crate) fn plain(content: impl Into<String>) -> TokenSpec {
        TokenSpec {
            content: content.into(),
            single_word: false,
            lstrip: false,
            rstrip: false,
            normalized: None,
            special: None,
        }
    }

    /// The `tokenizers` added token, with `special` when the spec does not say.
    pub(crate) fn to_added_token(&self, default_special: bool) -> AddedToken {
        let special = self.special.unwrap_or(default_special);
        // tokenizers' default: special tokens are not normalized, others are.
        let normalized = self.normalized.unwrap_or(!special);
        AddedToken::from(self.content.clone(), special)
            .single_word(self.single_word)
            .lstrip(self.lstrip)
            .rstrip(self.rstrip)
            .normalized(normalized)
    }
}

/// What transformers reads from tokenizer_config.json (and special_tokens_map.json).
#[derive(Debug, Default)]
pub(crate) struct TokenizerConfig {
    pub(crate) named: HashMap<&'static str, TokenSpec>,
    pub(crate) extra_special: Vec<TokenSpec>,
    pub(crate) added_tokens_decoder: Vec<(u32, TokenSpec)>,
    pub(crate) add_bos_token: Option<bool>,
    pub(crate) add_eos_token: Option<bool>,
    pub(crate) chat_template: Option<String>,
    /// Where the chat template was read from (a file, or GGUF metadata), named in its errors.
    pub(crate) chat_template_origin: Option<String>,
    pub(crate) clean_up_tokenization_spaces: bool,
}

/// Reads a token written as a string, an `AddedToken` object or null.
fn parse_token_spec(
    value: &Json,
    path: &Path,
    field: &str,
) -> Result<Option<TokenSpec>, EngineError> {
    match value {
        Json::Null => Ok(None),
        Json::String(content) => Ok(Some(TokenSpec::plain(content.clone()))),
        Json::Object(object) => {
            let content = object
                .get("content")
                .and_then(Json::as_str)
                .ok_or_else(|| {
                    config_error(path, field, "a token object needs a string `content`")
                })?;
            let flag = |name: &str| object.get(name).and_then(Json::as_bool);
            Ok(Some(TokenSpec {
                content: content.to_string(),
                single_word: flag("single_word").unwrap_or(false),
                lstrip: flag("lstrip").unwrap_or(false),
                rstrip: flag("rstrip").unwrap_or(false),
                normalized: flag("normalized"),
                special: flag("special"),
            }))
        }
        other => Err(config_error(
            path,
            field,
            format!("expected a token (string or object), found {other}"),
        )),
    }
}

fn parse_token_list(value: &Json, path: &Path, field: &str) -> Result<Vec<TokenSpec>, EngineError> {
    let items: Vec<&Json> = match value {
        Json::Null => Vec::new(),
        Json::Array(items) => items.iter().collect(),
        // transformers 5 also writes extra special tokens as a map of names to tokens.
        Json::Object(map) => map.values().collect(),
        other => {
            return Err(config_error(
                path,
                field,
                format!("expected a list of tokens, found {other}"),
            ))
        }
    };
    let mut tokens = Vec::new();
    for item in items {
        if let Some(spec) = parse_token_spec(item, path, field)? {
            tokens.push(spec);
        }
    }
    Ok(tokens)
}

/// A chat template given as a string, or as a list of named templates (the `default` one is
/// used, as transformers does when no name is asked for).
pub(crate) fn select_chat_template(
    value: &Json,
    path: &Path,
) -> Result<Option<String>, EngineError> {
    match value {
        Json::Null => Ok(None),
        Json::String(template) => Ok(Some(template.clone())),
        Json::Array(entries) => {
            for entry in entries {
                let name = entry.get("name").and_then(Json::as_str);
                let template = entry.get("template").and_then(Json::as_str);
                match (name, template) {
                    (Some("default"), Some(template)) => return Ok(Some(template.to_string())),
                    (Some(_), Some(_)) => {}
                    _ => {
                        return Err(config_error(
                            path,
                            "chat_template",
                            "each named template needs a string `name` and `template`",
                        ))
                    }
                }
            }
            Ok(None)
        }
        other => Err(config_error(
            path,
            "chat_template",
            format!("expected a string or a list of named templates, found {other}"),
        )),
    }
}

pub(crate) fn parse_tokenizer_config(
    text: &str,
    path: &Path,
) -> Result<TokenizerConfig, EngineError> {
    let value = parse_json(text, path)?;
    let Json::Object(object) = value else {
        return Err(EngineError::InvalidFile {
            path: path.to_path_buf(),
            reason: "expected a JSON object".to_string(),
        });
    };
    let mut config = TokenizerConfig::default();
    for name in NAMED_SPECIAL_TOKENS {
        if let Some(value) = object.get(name) {
            if let Some(spec) = parse_token_spec(value, path, name)? {
                config.named.insert(name, spec);
            }
        }
    }
    for field in ["additional_special_tokens", "extra_special_tokens"] {
        if let Some(value) = object.get(field) {
            for spec in parse_token_list(value, path, field)? {
                if !config.extra_special.contains(&spec) {
                    config.extra_special.push(spec);
                }
            }
        }
    }
    if let Some(decoder) = object.get("added_tokens_decoder") {
        let Json::Object(entries) = decoder else {
            return Err(config_error(
                path,
                "added_tokens_decoder",
                "expected an object of ids",
            ));
        };
        for (id_text, token) in entries {
            let field = format!("added_tokens_decoder.{id_text}");
            let id: u32 = id_text
                .parse()
                .map_err(|_| config_error(path, &field, "the key is not a token id"))?;
            if let Some(spec) = parse_token_spec(token, path, &field)? {
                config.added_tokens_decoder.push((id, spec));
            }
        }
    }
    let flag = |name: &str| -> Result<Option<bool>, EngineError> {
        match object.get(name) {
            None | Some(Json::Null) => Ok(None),
            Some(Json::Bool(flag)) => Ok(Some(*flag)),
            Some(other) => Err(config_error(
                path,
                name,
                format!("expected true or false, found {other}"),
            )),
        }
    };
    config.add_bos_token = flag("add_bos_token")?;
    config.add_eos_token = flag("add_eos_token")?;
    config.clean_up_tokenization_spaces = flag("clean_up_tokenization_spaces")?.unwrap_or(false);
    if let Some(template) = object.get("chat_template") {
        config.chat_template = select_chat_template(template, path)?;
        config.chat_template_origin = Some(path.display().to_string());
    }
    Ok(config)
}

/// special_tokens_map.json overrides the named tokens of tokenizer_config.json, as in
/// transformers' `from_pretrained`.
pub(crate) fn apply_special_tokens_map(
    config: &mut TokenizerConfig,
    text: &str,
    path: &Path,
) -> Result<(), EngineError> {
    let value = parse_json(text, path)?;
    let Json::Object(object) = value else {
        return Err(EngineError::InvalidFile {
            path: path.to_path_buf(),
            reason: "expected a JSON object".to_string(),
        });
    };
    for name in NAMED_SPECIAL_TOKENS {
        if let Some(value) = object.get(name) {
            if let Some(mut spec) = parse_token_spec(value, path, name)? {
                // Tokens of the special tokens map are special by definition.
                spec.special = Some(true);
                config.named.insert(name, spec);
            }
        }
    }
    for field in ["additional_special_tokens", "extra_special_tokens"] {
        if let Some(value) = object.get(field) {
            for spec in parse_token_list(value, path, field)? {
                if !config
                    .extra_special
                    .iter()
                    .any(|known| known.content == spec.content)
                {
                    config.extra_special.push(spec);
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_specs_accept_strings_objects_and_null() {
        let path = Path::new("tokenizer_config.json");
        assert_eq!(
            parse_token_spec(&Json::from("<s>"), path, "bos_token").unwrap(),
            Some(TokenSpec::plain("<s>"))
        );
        let object: Json = serde_json::from_str(
            r#"{"__type": "AddedToken", "content": "</s>", "rstrip": true, "normalized": false}"#,
        )
        .unwrap();
        let spec = parse_token_spec(&object, path, "eos_token")
            .unwrap()
            .unwrap();
        assert_eq!(spec.content, "</s>");
        assert!(spec.rstrip);
        assert_eq!(spec.normalized, Some(false));
        assert_eq!(
            parse_token_spec(&Json::Null, path, "bos_token").unwrap(),
            None
        );
        let error = parse_token_spec(&Json::from(3), path, "bos_token").unwrap_err();
        assert!(error.to_string().contains("bos_token"), "{error}");
    }

    #[test]
    fn named_chat_templates_pick_default() {
        let path = Path::new("tokenizer_config.json");
        let value: Json = serde_json::from_str(
            r#"[{"name": "tool_use", "template": "T"}, {"name": "default", "template": "D"}]"#,
        )
        .unwrap();
        assert_eq!(
            select_chat_template(&value, path).unwrap().as_deref(),
            Some("D")
        );
    }
}
