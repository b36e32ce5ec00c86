//! Numbers and short labels as every report format writes them (the Markdown report, the HTML
//! report and its charts, and `versus view`'s pages where they show the same figure), so that the
//! same run never reads differently in two places: seconds, tokens per second, US dollars,
//! percentages, thousands separators, ratings with their intervals, prices, modalities, and the
//! words for what was not measured or not reported.
//!
//! Each function returns plain text; the HTML callers escape it like any other text.

use versus_core::{Modality, ModelMetadata, Price};

/// An absent value in a table cell or a figure: not measured, not known, not applicable.
pub const DASH: &str = "–";

/// Token usage the server did not report ("Nothing is invented": counts are never estimated).
pub const NOT_REPORTED: &str = "not reported";

/// `value`, or [`DASH`] when there is none.
pub fn or_dash(value: Option<String>) -> String {
    value.unwrap_or_else(|| DASH.to_string())
}

/// Milliseconds as seconds with two decimals: `1234.0` → `1.23 s`.
pub fn seconds(ms: f64) -> String {
    format!("{:.2} s", ms / 1000.0)
}

/// A generation speed with one decimal, without its unit: `45.04` → `45.0`.
pub fn tokens_per_second(rate: f64) -> String {
    format!("{rate:.1}")
}

/// A cost in US dollars: four decimals, or six below a cent so that small costs do not read as
/// zero: `1.5` → `$1.5000`, `0.000072` → `$0.000072`.
pub fn dollars(amount: f64) -> String {
    if amount >= 0.01 || amount == 0.0 {
        format!("${amount:.4}")
    } else {
        format!("${amount:.6}")
    }
}

/// A fraction (0-1) as a whole percentage: `0.5` → `50%`.
pub fn percent(fraction: f64) -> String {
    format!("{:.0}%", fraction * 100.0)
}

/// A count with thousands separators: `1234567` → `1,234,567`.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A Bradley-Terry rating, whole: `1012.6` → `1013`.
pub fn rating(value: f64) -> String {
    format!("{value:.0}")
}

/// A rating's interval, whole, joined by an en dash: `(987.2, 1040.9)` → `987–1041`.
pub fn interval(lower: f64, upper: f64) -> String {
    format!("{lower:.0}–{upper:.0}")
}

/// A model's price in and out, in USD per million tokens: `0.15 / 0.6`.
pub fn price(price: &Price) -> String {
    format!("{} / {}", price.input, price.output)
}

/// The first twelve characters of a hash, as shown next to a suite's name.
pub fn short_hash(hash: &str) -> &str {
    hash.get(..12).unwrap_or(hash)
}

/// What a model takes, `text, image`, or [`DASH`] when its metadata does not say.
pub fn modalities(metadata: &ModelMetadata) -> String {
    if metadata.modalities.is_empty() {
        return DASH.into();
    }
    metadata
        .modalities
        .iter()
        .map(|m| match m {
            Modality::Text => "text",
            Modality::Image => "image",
        })
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_read_well() {
        assert_eq!(thousands(1234567), "1,234,567");
        assert_eq!(thousands(999), "999");
        assert_eq!(dollars(0.000072), "$0.000072");
        assert_eq!(dollars(1.5), "$1.5000");
        assert_eq!(seconds(1234.0), "1.23 s");
    }

    #[test]
    fn rates_ratings_and_absences_read_well() {
        assert_eq!(tokens_per_second(45.04), "45.0");
        assert_eq!(percent(0.5), "50%");
        assert_eq!(percent(1.0), "100%");
        assert_eq!(rating(1012.6), "1013");
        assert_eq!(interval(987.2, 1040.9), "987–1041");
        assert_eq!(
            price(&Price {
                input: 0.15,
                output: 0.6
            }),
            "0.15 / 0.6"
        );
        assert_eq!(short_hash("0123456789abcdef"), "0123456789ab");
        assert_eq!(short_hash("abc"), "abc");
        assert_eq!(or_dash(None), "–");
        assert_eq!(or_dash(Some("x".into())), "x");
        assert_eq!(modalities(&ModelMetadata::default()), "–");
    }
}
