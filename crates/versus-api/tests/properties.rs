//! Property tests of what versus-api reads from servers: the SSE decoder gives the same events
//! however the bytes are split, never panics on any bytes and never holds more than its limit;
//! the wire decoders take any JSON without panicking.

use proptest::prelude::*;
use versus_api::sse::{SseDecoder, SseEvent, SseTooLong};
use versus_api::wire::{ChatCompletionChunk, ChatCompletionResponse, ErrorDetail};

/// Decodes `bytes` fed in pieces cut at `cuts` (sorted, deduplicated, in range).
fn decode(bytes: &[u8], cuts: &[usize], limit: usize) -> Result<Vec<SseEvent>, SseTooLong> {
    let mut decoder = SseDecoder::with_limit(limit);
    let mut events = Vec::new();
    let mut start = 0;
    for &cut in cuts.iter().chain(std::iter::once(&bytes.len())) {
        events.extend(decoder.feed(&bytes[start..cut])?);
        start = cut;
    }
    events.extend(decoder.finish());
    Ok(events)
}

/// SSE-shaped bytes: fields, comments, blank lines and every kind of line end.
fn sse_like() -> impl Strategy<Value = Vec<u8>> {
    let line = prop_oneof![
        "[ -~]{0,20}".prop_map(|s| format!("data: {s}")),
        "[ -~]{0,10}".prop_map(|s| format!("event: {s}")),
        "[ -~]{0,10}".prop_map(|s| format!(": {s}")),
        Just(String::new()),
        Just("data".to_string()),
        Just("retry: 10".to_string()),
        "\\PC{0,8}".prop_map(|s| format!("data:{s}")),
    ];
    let end = prop::sample::select(vec!["\n", "\r\n", "\r"]);
    prop::collection::vec((line, end), 0..30).prop_map(|lines| {
        lines
            .into_iter()
            .flat_map(|(line, end)| format!("{line}{end}").into_bytes())
            .collect()
    })
}

fn cuts_for(len: usize) -> impl Strategy<Value = Vec<usize>> {
    prop::collection::vec(0..=len, 0..8).prop_map(|mut cuts| {
        cuts.sort_unstable();
        cuts.dedup();
        cuts
    })
}

/// Any JSON value, a few levels deep, with the keys the decoders look for.
fn json_like() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        any::<f64>().prop_map(serde_json::Value::from),
        "[ -~]{0,10}".prop_map(serde_json::Value::from),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        let key = prop::sample::select(vec![
            "choices",
            "index",
            "delta",
            "content",
            "message",
            "finish_reason",
            "usage",
            "prompt_tokens",
            "completion_tokens",
            "model",
            "error",
            "code",
            "type",
            "status",
            "role",
            "x",
        ]);
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::from),
            prop::collection::btree_map(key.prop_map(str::to_string), inner, 0..5)
                .prop_map(|map| serde_json::Value::Object(map.into_iter().collect())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn any_split_of_an_sse_stream_gives_the_same_events(
        (bytes, cuts) in sse_like().prop_flat_map(|bytes| {
            let len = bytes.len();
            (Just(bytes), cuts_for(len))
        })
    ) {
        let whole = decode(&bytes, &[], usize::MAX).expect("no limit");
        prop_assert_eq!(decode(&bytes, &cuts, usize::MAX).expect("no limit"), whole);
    }

    #[test]
    fn the_decoder_never_panics_and_respects_its_limit(
        (bytes, cuts) in prop::collection::vec(any::<u8>(), 0..600).prop_flat_map(|bytes| {
            let len = bytes.len();
            (Just(bytes), cuts_for(len))
        }),
        limit in 1usize..64,
    ) {
        if let Ok(events) = decode(&bytes, &cuts, limit) {
            for event in events {
                prop_assert!(event.data.len() <= limit, "{} > {}", event.data.len(), limit);
            }
        }
    }

    #[test]
    fn wire_decoders_take_any_json_without_panicking(value in json_like()) {
        let _ = ErrorDetail::from_body(&value);
        if let Ok(chunk) = serde_json::from_value::<ChatCompletionChunk>(value.clone()) {
            if let Some(usage) = chunk.usage {
                let _ = usage.to_usage();
            }
        }
        if let Ok(response) = serde_json::from_value::<ChatCompletionResponse>(value.clone()) {
            if let Some(usage) = response.usage {
                let _ = usage.to_usage();
            }
        }
        let text = value.to_string();
        let _ = serde_json::from_str::<ChatCompletionChunk>(&text);
    }

    #[test]
    fn wire_decoders_take_any_text_without_panicking(text in "\\PC{0,200}") {
        let _ = serde_json::from_str::<ChatCompletionChunk>(&text);
        let _ = serde_json::from_str::<ChatCompletionResponse>(&text);
    }
}
