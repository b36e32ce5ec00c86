//! Content hashes: the completion cache key (everything that determines an answer) and the
//! fingerprint of a run plan (to find an interrupted run to resume).

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::completion::ChatRequest;
use crate::spec::ModelSpec;

/// Bumped whenever the meaning of a key changes, so old cache entries stop matching.
const KEY_VERSION: u32 = 1;

/// The hex SHA-256 of a value's JSON form. serde_json writes struct fields in declaration order
/// and this crate uses no hash maps in hashed values, so the form is canonical.
pub fn sha256_json<T: Serialize>(value: &T) -> String {
    let bytes = serde_json::to_vec(value).unwrap_or_default();
    hex(&Sha256::digest(bytes))
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::new(), |mut out, b| {
        let _ = write!(out, "{b:02x}");
        out
    })
}

/// The key under which a completion is cached: the model, where it is served from, every
/// generation parameter and the full message list (images by content, as they are sent).
pub fn completion_key(spec: &ModelSpec, endpoint: Option<&str>, request: &ChatRequest) -> String {
    #[derive(Serialize)]
    struct Key<'a> {
        version: u32,
        spec: String,
        endpoint: Option<&'a str>,
        request: &'a ChatRequest,
    }
    sha256_json(&Key {
        version: KEY_VERSION,
        spec: spec.to_string(),
        endpoint: endpoint.map(|e| e.trim_end_matches('/')),
        request,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::Message;
    use crate::params::GenerationParams;

    fn request(prompt: &str, temperature: f64) -> ChatRequest {
        ChatRequest {
            messages: vec![Message::user(prompt)],
            params: GenerationParams {
                temperature: Some(temperature),
                ..Default::default()
            },
        }
    }

    #[test]
    fn keys_change_with_everything_that_determines_the_answer() {
        let spec = ModelSpec::parse("openai:gpt-4o-mini").unwrap();
        let other = ModelSpec::parse("openai:gpt-4o").unwrap();
        let base = completion_key(&spec, None, &request("hi", 0.0));
        assert_eq!(base, completion_key(&spec, None, &request("hi", 0.0)));
        assert_eq!(base.len(), 64);
        assert_ne!(base, completion_key(&other, None, &request("hi", 0.0)));
        assert_ne!(
            base,
            completion_key(&spec, Some("http://x/v1"), &request("hi", 0.0))
        );
        assert_ne!(base, completion_key(&spec, None, &request("hi!", 0.0)));
        assert_ne!(base, completion_key(&spec, None, &request("hi", 0.5)));
        assert_eq!(
            completion_key(&spec, Some("http://x/v1/"), &request("hi", 0.0)),
            completion_key(&spec, Some("http://x/v1"), &request("hi", 0.0)),
            "a trailing slash does not change the endpoint"
        );
    }
}
