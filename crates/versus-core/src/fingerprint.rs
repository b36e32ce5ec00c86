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
    sample_completion_key(spec, endpoint, request, 0)
}

/// The key of repeated sample `sample` (0-based) of a request: [`completion_key`] for the first,
/// so that a run asking once and a run asking several times share their first answers, and a key
/// of its own for each later one, so that repeated greedy samples (whose requests are identical)
/// are each asked and cached rather than all answered by the first.
pub fn sample_completion_key(
    spec: &ModelSpec,
    endpoint: Option<&str>,
    request: &ChatRequest,
    sample: u32,
) -> String {
    #[derive(Serialize)]
    struct Key<'a> {
        version: u32,
        spec: String,
        endpoint: Option<&'a str>,
        request: &'a ChatRequest,
        // Left out for the first sample, so that its key is what it was before samples existed.
        #[serde(skip_serializing_if = "is_first")]
        sample: u32,
    }
    fn is_first(sample: &u32) -> bool {
        *sample == 0
    }
    sha256_json(&Key {
        version: KEY_VERSION,
        spec: spec.to_string(),
        endpoint: endpoint.map(|e| e.trim_end_matches('/')),
        request,
        sample,
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
        // Pinned: changing it would orphan every cached answer.
        assert_eq!(
            base,
            "8a7472b5bf06f343db1b0ed527ca084db8e434922738a7c363adc89cc2802ec4"
        );
    }

    #[test]
    fn each_repeated_sample_has_its_own_key_and_the_first_keeps_the_plain_one() {
        let spec = ModelSpec::parse("openai:gpt-4o-mini").unwrap();
        let greedy = request("hi", 0.0);
        let keys: Vec<String> = (0..3)
            .map(|i| sample_completion_key(&spec, None, &greedy, i))
            .collect();
        assert_eq!(keys[0], completion_key(&spec, None, &greedy));
        assert_ne!(keys[0], keys[1]);
        assert_ne!(keys[1], keys[2]);
    }
}
