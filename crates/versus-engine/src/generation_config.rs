//! Reads generation_config.json's end-of-sequence ids, the part of it the tokenizer keeps.

use std::path::Path;

use serde_json::Value as Json;

use crate::error::{config_error, parse_json, EngineError};

/// generation_config.json's `eos_token_id`: one id, a list of ids, or null.
pub(crate) fn generation_eos_ids(text: &str, path: &Path) -> Result<Vec<u32>, EngineError> {
    let value = parse_json(text, path)?;
    let field = "eos_token_id";
    let as_id = |value: &Json| -> Result<u32, EngineError> {
        value
            .as_u64()
            .and_then(|id| u32::try_from(id).ok())
            .ok_or_else(|| config_error(path, field, format!("expected a token id, found {value}")))
    };
    match value.get(field) {
        None | Some(Json::Null) => Ok(Vec::new()),
        Some(Json::Array(ids)) => ids.iter().map(as_id).collect(),
        Some(id) => Ok(vec![as_id(id)?]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generation_eos_accepts_one_or_many() {
        let path = Path::new("generation_config.json");
        assert_eq!(
            generation_eos_ids(r#"{"eos_token_id": 7}"#, path).unwrap(),
            vec![7]
        );
        assert_eq!(
            generation_eos_ids(r#"{"eos_token_id": [7, 8]}"#, path).unwrap(),
            vec![7, 8]
        );
        assert!(generation_eos_ids(r#"{}"#, path).unwrap().is_empty());
        assert!(generation_eos_ids(r#"{"eos_token_id": "x"}"#, path).is_err());
    }
}
