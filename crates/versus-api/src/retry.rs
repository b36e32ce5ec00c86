//! When to try again: the retry policy, exponential back-off with jitter, and the server's own
//! `retry-after-ms` / `Retry-After` headers.

use std::time::{Duration, SystemTime};

use reqwest::header::HeaderMap;

/// The longest wait a server's `Retry-After` may impose; beyond it the server is not coming back
/// soon enough for an interactive tool, and a longer wait would look like a hang.
pub const MAX_SERVER_DELAY: Duration = Duration::from_secs(120);

/// How often and how patiently to retry transient faults (rate limits, 5xx, timeouts, broken
/// connections and streams, garbled answers).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Retries after the first attempt; 0 means a single attempt.
    pub max_retries: u32,
    /// The wait before the first retry; it doubles with each further retry.
    pub base_delay: Duration,
    /// The back-off never waits longer than this (a server's `Retry-After` may).
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> RetryPolicy {
        RetryPolicy {
            max_retries: 4,
            base_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(30),
        }
    }
}

impl RetryPolicy {
    /// The wait before retry number `retry_index` (0 for the first retry) when the server did
    /// not say: `base_delay * 2^retry_index`, capped at `max_delay`, then scaled by a random
    /// factor in [0.5, 1.0] so that many clients failing together do not retry together.
    pub fn backoff(&self, retry_index: u32) -> Duration {
        self.backoff_with_jitter(retry_index, 0.5 + fastrand::f64() * 0.5)
    }

    fn backoff_with_jitter(&self, retry_index: u32, jitter: f64) -> Duration {
        let growth = 2u32.saturating_pow(retry_index);
        let delay = self.base_delay.saturating_mul(growth).min(self.max_delay);
        delay.mul_f64(jitter.clamp(0.0, 1.0))
    }
}

/// The wait the server asked for, from `retry-after-ms` (OpenAI's, in milliseconds) or else
/// `Retry-After` (seconds, possibly fractional, or an HTTP date), capped at `MAX_SERVER_DELAY`.
/// `None` when neither header is present and readable.
pub fn server_delay(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    let header = |name: &str| headers.get(name).and_then(|value| value.to_str().ok());
    header("retry-after-ms")
        .and_then(parse_retry_after_ms)
        .or_else(|| header("retry-after").and_then(|value| parse_retry_after(value, now)))
        .map(|delay| delay.min(MAX_SERVER_DELAY))
}

/// What the server says about retrying in `x-should-retry` (Anthropic's and OpenAI's servers
/// send it; their official clients obey it): `Some(true)`/`Some(false)`, `None` when absent.
pub fn server_says_retry(headers: &HeaderMap) -> Option<bool> {
    match headers.get("x-should-retry")?.to_str().ok()?.trim() {
        "true" => Some(true),
        "false" => Some(false),
        _ => None,
    }
}

/// `retry-after-ms: 1500` (fractions allowed).
pub fn parse_retry_after_ms(value: &str) -> Option<Duration> {
    non_negative_seconds(value.trim().parse::<f64>().ok()? / 1000.0)
}

/// `Retry-After: 2`, `Retry-After: 0.5` or `Retry-After: Wed, 21 Oct 2015 07:28:00 GMT`. A date
/// in the past means "now".
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<f64>() {
        return non_negative_seconds(seconds);
    }
    let when = httpdate::parse_http_date(value).ok()?;
    Some(when.duration_since(now).unwrap_or(Duration::ZERO))
}

fn non_negative_seconds(seconds: f64) -> Option<Duration> {
    if !seconds.is_finite() || seconds < 0.0 {
        return None;
    }
    // Beyond the cap the exact value does not matter, and this keeps `from_secs_f64` in range.
    Some(Duration::from_secs_f64(
        seconds.min(MAX_SERVER_DELAY.as_secs_f64()),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    fn policy(base_ms: u64, max_ms: u64) -> RetryPolicy {
        RetryPolicy {
            max_retries: 4,
            base_delay: Duration::from_millis(base_ms),
            max_delay: Duration::from_millis(max_ms),
        }
    }

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let policy = policy(100, 1000);
        let full: Vec<u128> = (0..6)
            .map(|retry| policy.backoff_with_jitter(retry, 1.0).as_millis())
            .collect();
        assert_eq!(full, [100, 200, 400, 800, 1000, 1000]);
        assert_eq!(policy.backoff_with_jitter(1, 0.5).as_millis(), 100);
        // Huge retry counts saturate instead of overflowing.
        assert_eq!(policy.backoff_with_jitter(u32::MAX, 1.0).as_millis(), 1000);
    }

    #[test]
    fn jittered_backoff_stays_within_half_to_full() {
        let policy = policy(100, 1000);
        for _ in 0..200 {
            let delay = policy.backoff(2).as_millis();
            assert!((200..=400).contains(&delay), "{delay}");
        }
    }

    #[test]
    fn retry_after_in_seconds_milliseconds_and_dates() {
        let now = httpdate::parse_http_date("Wed, 21 Oct 2015 07:28:00 GMT").expect("a date");
        assert_eq!(parse_retry_after("2", now), Some(Duration::from_secs(2)));
        assert_eq!(
            parse_retry_after(" 0.25 ", now),
            Some(Duration::from_millis(250))
        );
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:30 GMT", now),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:27:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("-1", now), None);
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(
            parse_retry_after_ms("1500"),
            Some(Duration::from_millis(1500))
        );
        assert_eq!(parse_retry_after_ms("NaN"), None);
    }

    #[test]
    fn x_should_retry_is_read_when_present() {
        let mut headers = HeaderMap::new();
        assert_eq!(server_says_retry(&headers), None);
        headers.insert("x-should-retry", HeaderValue::from_static("false"));
        assert_eq!(server_says_retry(&headers), Some(false));
        headers.insert("x-should-retry", HeaderValue::from_static("true"));
        assert_eq!(server_says_retry(&headers), Some(true));
        headers.insert("x-should-retry", HeaderValue::from_static("maybe"));
        assert_eq!(server_says_retry(&headers), None);
    }

    #[test]
    fn server_delay_prefers_milliseconds_and_is_capped() {
        let now = SystemTime::now();
        let mut headers = HeaderMap::new();
        assert_eq!(server_delay(&headers, now), None);
        headers.insert("retry-after", HeaderValue::from_static("3"));
        assert_eq!(server_delay(&headers, now), Some(Duration::from_secs(3)));
        headers.insert("retry-after-ms", HeaderValue::from_static("20"));
        assert_eq!(server_delay(&headers, now), Some(Duration::from_millis(20)));
        headers.insert("retry-after-ms", HeaderValue::from_static("junk"));
        assert_eq!(server_delay(&headers, now), Some(Duration::from_secs(3)));
        headers.insert("retry-after", HeaderValue::from_static("86400"));
        assert_eq!(server_delay(&headers, now), Some(MAX_SERVER_DELAY));
    }
}
