//! Property tests of what versus-core reads from untrusted text: the suite parser never panics
//! and keeps its errors short and located, suite bytes decode exactly when they are UTF-8 (and
//! otherwise point at the first bad byte), and URL redaction hides credentials and is stable.

use proptest::prelude::*;
use versus_core::redact::{redact_url, redact_urls_in};
use versus_core::{Suite, SuiteSource};

/// The error parsing `text` gives, if any.
fn parse_error(text: &str) -> Option<versus_core::SuiteError> {
    Suite::parse(&SuiteSource {
        origin: "p.toml",
        text,
    })
    .err()
}

/// Suite-shaped text: real keys and tables with values of every kind, in any order.
fn suite_like() -> impl Strategy<Value = String> {
    let key = prop::sample::select(vec![
        "name",
        "description",
        "id",
        "prompt",
        "spec",
        "base_url",
        "api_key_env",
        "temperature",
        "top_p",
        "max_tokens",
        "seed",
        "timeout",
        "retries",
        "samples",
        "pass_at",
        "type",
        "value",
        "weight",
        "reference_file",
        "images",
        "category",
        "messages",
        "max_response_bytes",
        "concurrency",
        "group",
        "stop",
    ]);
    let value = prop_oneof![
        any::<i64>().prop_map(|n| n.to_string()),
        any::<f64>().prop_map(|x| format!("{x:?}")),
        prop::sample::select(vec![
            "nan", "inf", "-inf", "1e300", "true", "[]", "{}", "[1, 2]"
        ])
        .prop_map(str::to_string),
        "[ -~]{0,12}".prop_map(|s| format!("{s:?}")),
    ];
    let line = prop_oneof![
        (key, value).prop_map(|(k, v)| format!("{k} = {v}")),
        prop::sample::select(vec![
            "[defaults]",
            "[[models]]",
            "[[tasks]]",
            "[[tasks.checks]]",
            "[judge]",
            "[verdicts]",
        ])
        .prop_map(str::to_string),
    ];
    prop::collection::vec(line, 0..24).prop_map(|lines| lines.join("\n"))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn the_parser_never_panics_on_any_text(text in "\\PC{0,400}") {
        let _ = parse_error(&text);
    }

    #[test]
    fn suite_errors_are_located_and_short(text in suite_like()) {
        if let Some(error) = parse_error(&text) {
            let shown = error.to_string();
            prop_assert!(shown.starts_with("p.toml"), "{}", shown);
            prop_assert!(shown.len() < 2_000, "{} bytes", shown.len());
            if let Some(at) = error.location {
                prop_assert!(at.line >= 1 && at.line <= text.lines().count().max(1) + 1);
            }
        }
    }

    #[test]
    fn suite_bytes_decode_exactly_when_they_are_utf8(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
        match (SuiteSource::decode("p.toml", &bytes), std::str::from_utf8(&bytes)) {
            (Ok(text), Ok(expected)) => prop_assert_eq!(text, expected),
            (Err(error), Err(utf8)) => {
                let good = &bytes[..utf8.valid_up_to()];
                let line = good.iter().filter(|&&b| b == b'\n').count() + 1;
                prop_assert_eq!(error.location.map(|at| at.line), Some(line));
            }
            (decoded, expected) => prop_assert!(false, "{:?} vs {:?}", decoded.is_ok(), expected.is_ok()),
        }
    }

    #[test]
    fn redaction_hides_credentials_and_is_stable(
        scheme in prop::sample::select(vec!["http", "https", "HTTP"]),
        user in "[a-z]{0,6}",
        password in "PW[a-z0-9]{6}",
        host in "[a-z]{1,8}(\\.[a-z]{2,4})?(:[0-9]{1,5})?",
        path in "(/[a-z0-9._-]{0,6}){0,3}",
        query in "QV[a-z0-9]{6}",
        tail in "[ -~]{0,20}",
    ) {
        let url = format!("{scheme}://{user}:{password}@{host}{path}?key={query}&x=1");
        let redacted = redact_url(&url);
        prop_assert!(!redacted.contains(&password), "{}", redacted);
        prop_assert!(!redacted.contains(&query), "{}", redacted);
        prop_assert!(redacted.contains(&host), "{}", redacted);
        prop_assert_eq!(redact_url(&redacted), redacted.clone());
        let text = format!("error at {url} {tail}");
        let in_text = redact_urls_in(&text);
        prop_assert!(!in_text.contains(&password) && !in_text.contains(&query), "{}", in_text);
        prop_assert_eq!(redact_urls_in(&in_text), in_text.clone());
    }

    #[test]
    fn redaction_never_panics_on_any_text(text in "\\PC{0,200}") {
        let once = redact_urls_in(&text);
        prop_assert_eq!(redact_urls_in(&once), once.clone());
        let _ = redact_url(&text);
    }
}
