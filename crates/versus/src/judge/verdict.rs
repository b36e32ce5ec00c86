//! Reading the judge's verdicts: the `[[A]]`/`[[B]]`/`[[C]]` (tie) and `[[rating]]` tokens in its
//! answers, and combining the verdicts of the two orders of a pair into one.

use std::ops::Range;

use super::results::PairVerdict;

pub(super) const NO_PAIR_VERDICT: &str = "no [[A]]/[[B]]/[[C]] verdict in the judge's answer";
pub(super) const NO_RATING: &str = "no [[rating]] (e.g. `Rating: [[7]]`) in the judge's answer";

/// A pairwise verdict as the judge writes it: `[[A]]`, `[[B]]` or `[[C]]` (a tie).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Choice {
    A,
    B,
    Tie,
}

impl Choice {
    pub(super) fn as_str(self) -> &'static str {
        match self {
            Choice::A => "A",
            Choice::B => "B",
            Choice::Tie => "tie",
        }
    }
}

/// What a `[[...]]` holds, when it is a verdict of either kind.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Token {
    Choice(Choice),
    /// Any number, in range or not.
    Rating(f64),
}

/// The longest text between `[[` and `]]` a verdict can have (`[[ 10.0 ]]` and the like).
pub(super) const MAX_TOKEN_INNER: usize = 12;

fn parse_token(inner: &str) -> Option<Token> {
    let inner = inner.trim();
    match inner.to_ascii_uppercase().as_str() {
        "A" => return Some(Token::Choice(Choice::A)),
        "B" => return Some(Token::Choice(Choice::B)),
        "C" => return Some(Token::Choice(Choice::Tie)),
        _ => {}
    }
    // Digits with at most one decimal point, as MT-Bench's `\d+\.?\d*`: no signs, exponents,
    // `inf` or `NaN`, which Rust's float parser would take.
    let (whole, fraction) = inner.split_once('.').unwrap_or((inner, ""));
    let digits = |s: &str| s.chars().all(|c| c.is_ascii_digit());
    if whole.is_empty() || !digits(whole) || !digits(fraction) {
        return None;
    }
    inner.parse().ok().map(Token::Rating)
}

/// Every verdict-like `[[...]]` in `text`, in order, with its byte range.
pub(super) fn verdict_tokens(text: &str) -> Vec<(Range<usize>, Token)> {
    let bytes = text.as_bytes();
    let mut tokens = Vec::new();
    let mut at = 0;
    while at + 1 < bytes.len() {
        if bytes[at] == b'[' && bytes[at + 1] == b'[' {
            let inner_start = at + 2;
            let window_end = (inner_start + MAX_TOKEN_INNER + 2).min(bytes.len());
            let close = bytes[inner_start..window_end]
                .windows(2)
                .position(|pair| pair == b"]]");
            // `[` and `]` are ASCII, so these offsets are character boundaries.
            if let Some(token) = close.and_then(|len| {
                parse_token(&text[inner_start..inner_start + len])
                    .map(|token| (at..inner_start + len + 2, token))
            }) {
                at = token.0.end;
                tokens.push(token);
                continue;
            }
        }
        at += 1;
    }
    tokens
}

/// The judge's pairwise verdict: the last `[[A]]`/`[[B]]`/`[[C]]` it wrote (judges often quote
/// the format while reasoning; the final line is the decision).
pub(super) fn parse_choice(output: &str) -> Result<Choice, String> {
    verdict_tokens(output)
        .into_iter()
        .rev()
        .find_map(|(_, token)| match token {
            Token::Choice(choice) => Some(choice),
            Token::Rating(_) => None,
        })
        .ok_or_else(|| NO_PAIR_VERDICT.to_string())
}

/// The judge's rating: the last `[[N]]` it wrote, which must lie in 1-10.
pub(super) fn parse_rating(output: &str) -> Result<f64, String> {
    let rating = verdict_tokens(output)
        .into_iter()
        .rev()
        .find_map(|(_, token)| match token {
            Token::Rating(rating) => Some(rating),
            Token::Choice(_) => None,
        })
        .ok_or_else(|| NO_RATING.to_string())?;
    if (1.0..=10.0).contains(&rating) {
        Ok(rating)
    } else {
        Err(format!("the judge's rating {rating} is outside 1-10"))
    }
}

// ---- the two orders ----

/// What a verdict in one order says about the two models. In the swapped order the judge saw
/// `model_b`'s answer as A, so its `[[A]]` is a vote for `model_b`.
fn winner(choice: Choice, swapped: bool) -> PairVerdict {
    match (choice, swapped) {
        (Choice::Tie, _) => PairVerdict::Tie,
        (Choice::A, false) | (Choice::B, true) => PairVerdict::ModelA,
        (Choice::B, false) | (Choice::A, true) => PairVerdict::ModelB,
    }
}

/// Position-bias control: a win counts only if the judge names the same model in both orders.
pub(super) fn combine(
    first: &Result<Choice, String>,
    second: &Result<Choice, String>,
) -> PairVerdict {
    match (first, second) {
        (Ok(first), Ok(second)) => {
            let (first, second) = (winner(*first, false), winner(*second, true));
            if first == second {
                first
            } else {
                PairVerdict::Inconsistent
            }
        }
        _ => PairVerdict::Error,
    }
}

pub(super) fn pair_explanation(
    model_a: &str,
    model_b: &str,
    first: &Result<Choice, String>,
    second: &Result<Choice, String>,
    verdict: PairVerdict,
) -> String {
    let said = |result: &Result<Choice, String>, swapped: bool| match result {
        Ok(choice) => match winner(*choice, swapped) {
            PairVerdict::ModelA => format!("`{model_a}` better"),
            PairVerdict::ModelB => format!("`{model_b}` better"),
            _ => "a tie".to_string(),
        },
        Err(reason) => format!("no verdict ({reason})"),
    };
    let orders = format!(
        "with `{model_a}` shown first: {}; with `{model_b}` shown first: {}",
        said(first, false),
        said(second, true)
    );
    match verdict {
        PairVerdict::ModelA => format!("`{model_a}` better in both orders"),
        PairVerdict::ModelB => format!("`{model_b}` better in both orders"),
        PairVerdict::Tie => "a tie in both orders".to_string(),
        PairVerdict::Inconsistent => format!("inconsistent, counted as a tie: {orders}"),
        PairVerdict::Error => match (first, second) {
            (Err(first), Err(second)) if first == second => {
                format!("error, no winner: {first} (both orders)")
            }
            _ => format!("error, no winner: {orders}"),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // ---- helpers: one per feature, so a new case is one line ----

    fn pair_verdict(first: Result<Choice, &str>, second: Result<Choice, &str>) -> PairVerdict {
        combine(
            &first.map_err(str::to_string),
            &second.map_err(str::to_string),
        )
    }

    #[test]
    fn pairwise_verdicts_are_the_last_one_written() {
        for (output, expected) in [
            ("A explains better.\n[[A]]", Ok(Choice::A)),
            ("[[B]]", Ok(Choice::B)),
            ("Equal.\n\n[[C]]", Ok(Choice::Tie)),
            ("I output [[A]] or [[B]]; here: [[B]]", Ok(Choice::B)),
            ("At first [[A]], on reflection **[[ c ]]**", Ok(Choice::Tie)),
            ("[[A]] then a rating [[7]]", Ok(Choice::A)),
            ("A is better.", Err(NO_PAIR_VERDICT)),
            ("[A]", Err(NO_PAIR_VERDICT)),
            ("[[D]]", Err(NO_PAIR_VERDICT)),
            ("[[A is better]]", Err(NO_PAIR_VERDICT)),
            ("", Err(NO_PAIR_VERDICT)),
        ] {
            assert_eq!(
                parse_choice(output),
                expected.map_err(str::to_string),
                "{output:?}"
            );
        }
    }

    #[test]
    fn ratings_are_the_last_number_in_range() {
        for (output, expected) in [
            ("Good.\nRating: [[7]]", Some(7.0)),
            ("Rating: [[7.5]]", Some(7.5)),
            ("Rating: [[ 10 ]]", Some(10.0)),
            ("Rating: [[1]]", Some(1.0)),
            ("Draft [[3]], final Rating: [[8]]", Some(8.0)),
            ("Rating: [[8]] [[A]]", Some(8.0)),
        ] {
            assert_eq!(parse_rating(output).ok(), expected, "{output:?}");
        }
        for (output, reason) in [
            ("Rating: [[11]]", "outside 1-10"),
            ("Rating: [[0]]", "outside 1-10"),
            ("Rating: [[10.5]]", "outside 1-10"),
            ("Rating: 7", NO_RATING),
            ("Rating: [[seven]]", NO_RATING),
            ("Rating: [[-3]]", NO_RATING),
            ("Rating: [[1e1]]", NO_RATING),
            ("Rating: [[NaN]]", NO_RATING),
            ("Rating: [[7/10]]", NO_RATING),
        ] {
            let error = parse_rating(output).expect_err(output);
            assert!(error.contains(reason), "{output:?}: {error}");
        }
    }

    #[test]
    fn a_win_needs_the_same_model_in_both_orders() {
        use Choice::{A, B};
        use PairVerdict::{Error, Inconsistent, ModelA, ModelB};
        // (first order: m1 shown as A; second order: m2 shown as A) -> verdict. A letter in the
        // second order names the swapped answer: B there is m1.
        for (first, second, expected) in [
            (Ok(A), Ok(B), ModelA),
            (Ok(B), Ok(A), ModelB),
            (Ok(Choice::Tie), Ok(Choice::Tie), PairVerdict::Tie),
            (Ok(A), Ok(A), Inconsistent), // always the first position: position bias
            (Ok(B), Ok(B), Inconsistent),
            (Ok(A), Ok(Choice::Tie), Inconsistent),
            (Ok(Choice::Tie), Ok(A), Inconsistent),
            (Err("no verdict"), Ok(B), Error),
            (Ok(A), Err("call failed"), Error),
            (Err("x"), Err("y"), Error),
        ] {
            assert_eq!(
                pair_verdict(first, second),
                expected,
                "{first:?} / {second:?}"
            );
        }
    }

    #[test]
    fn explanations_say_what_each_order_said() {
        let said = |first, second| {
            let (first, second) = (Ok(first), Ok(second));
            pair_explanation("m1", "m2", &first, &second, combine(&first, &second))
        };
        assert_eq!(said(Choice::A, Choice::B), "`m1` better in both orders");
        assert_eq!(
            said(Choice::A, Choice::A),
            "inconsistent, counted as a tie: with `m1` shown first: `m1` better; \
             with `m2` shown first: `m2` better"
        );
    }
}
