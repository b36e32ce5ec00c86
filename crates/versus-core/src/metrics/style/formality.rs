//! Formality signals in an answer's prose: contractions, second-person pronouns, exclamation
//! marks and questions. Fenced code, inline code, URLs and link destinations are left out
//! first, so `!=` in code or `?` in a query string does not count.
//!
//! Words are runs of letters, joined by single apostrophes (`'` or `’`) between letters, so
//! "don't" and "you’ll" are one word and "'quoted'" is the word "quoted".

use serde::{Deserialize, Serialize};

use super::markdown::prose_text;

/// Counts of informal (or reader-addressing) features of a text.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FormalitySignals {
    /// Words contracted with an apostrophe: anything ending in n't, 're, 've, 'll, 'm or 'd,
    /// "y'all", and 's after a pronoun or question word ("it's", "that's", "let's"; see
    /// `CONTRACTING_S_STEMS`). A noun's 's is a possessive as often as "is", so it does not count.
    pub contractions: usize,
    /// "you", "your", "yours", "yourself", "yourselves", also contracted ("you're").
    pub second_person: usize,
    /// `!` characters (fullwidth too), not counting the one of a Markdown image `![`.
    pub exclamation_marks: usize,
    /// Runs of `?` (and `!`) holding at least one `?`: "Why?" and "Really?!" are one each.
    pub questions: usize,
}

/// Words before 's that make it a contraction ("is", "has", "us") rather than a possessive.
const CONTRACTING_S_STEMS: &[&str] = &[
    "it",
    "that",
    "what",
    "there",
    "here",
    "he",
    "she",
    "who",
    "where",
    "how",
    "when",
    "why",
    "let",
    "this",
    "everyone",
    "everybody",
    "everything",
    "someone",
    "somebody",
    "something",
    "nobody",
    "nothing",
];

/// Suffixes after the last apostrophe that always make a contraction.
const CONTRACTION_SUFFIXES: &[&str] = &["re", "ve", "ll", "m", "d"];

const SECOND_PERSON: &[&str] = &["you", "your", "yours", "yourself", "yourselves"];

/// Counts the formality signals of `text`.
pub fn formality_signals(text: &str) -> FormalitySignals {
    let prose = without_links(&prose_text(text));
    let mut signals = FormalitySignals::default();
    for word in words(&prose) {
        let lower = word.to_lowercase();
        let mut parts = lower.split(is_apostrophe);
        let stem = parts.next().unwrap_or_default();
        if SECOND_PERSON.contains(&stem) {
            signals.second_person += 1;
        }
        if is_contraction(&lower) {
            signals.contractions += 1;
        }
    }
    let marks: Vec<char> = prose.chars().collect();
    for (index, &c) in marks.iter().enumerate() {
        if is_exclamation(c) && marks.get(index + 1) != Some(&'[') {
            signals.exclamation_marks += 1;
        }
    }
    signals.questions = prose
        .split(|c: char| !is_question(c) && !is_exclamation(c))
        .filter(|run| run.chars().any(is_question))
        .count();
    signals
}

fn is_apostrophe(c: char) -> bool {
    c == '\'' || c == '’'
}

fn is_exclamation(c: char) -> bool {
    c == '!' || c == '！'
}

fn is_question(c: char) -> bool {
    c == '?' || c == '？'
}

fn is_contraction(lower_word: &str) -> bool {
    let Some((stem, suffix)) = lower_word.rsplit_once(is_apostrophe) else {
        return false;
    };
    (suffix == "t" && stem.ends_with('n'))
        || CONTRACTION_SUFFIXES.contains(&suffix)
        || (suffix == "s" && CONTRACTING_S_STEMS.contains(&stem))
        || (stem == "y" && suffix == "all")
}

/// Words: letters joined by single apostrophes that have a letter on both sides.
fn words(text: &str) -> Vec<&str> {
    let mut found = Vec::new();
    let mut start: Option<usize> = None;
    let mut chars = text.char_indices().peekable();
    while let Some((index, c)) = chars.next() {
        let next_is_letter = chars.peek().is_some_and(|&(_, next)| next.is_alphabetic());
        let continues_word =
            c.is_alphabetic() || (is_apostrophe(c) && start.is_some() && next_is_letter);
        match (continues_word, start) {
            (true, None) => start = Some(index),
            (false, Some(word_start)) => {
                found.push(&text[word_start..index]);
                start = None;
            }
            _ => {}
        }
    }
    if let Some(word_start) = start {
        found.push(&text[word_start..]);
    }
    found
}

/// The text without bare URLs and Markdown link destinations (`[text](destination)` keeps
/// `[text]`), whose `?` and `!` are not prose.
fn without_links(text: &str) -> String {
    let mut kept = String::with_capacity(text.len());
    let mut rest = text;
    loop {
        let url = ["http://", "https://", "www."]
            .iter()
            .filter_map(|scheme| rest.find(scheme))
            .min();
        let destination = rest.find("](");
        match (url, destination) {
            (Some(start), d) if d.is_none_or(|d| start < d) => {
                kept.push_str(&rest[..start]);
                let end = rest[start..]
                    .find(char::is_whitespace)
                    .map_or(rest.len(), |offset| start + offset);
                rest = &rest[end..];
            }
            (_, Some(start)) => {
                kept.push_str(&rest[..=start]);
                let end = rest[start..]
                    .find(')')
                    .map_or(rest.len(), |offset| start + offset + 1);
                rest = &rest[end..];
            }
            (_, None) => {
                kept.push_str(rest);
                return kept;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formal_text_has_no_signals() {
        let text = "The committee has reviewed the proposal. It will respond in due course.";
        assert_eq!(formality_signals(text), FormalitySignals::default());
    }

    #[test]
    fn contractions_follow_the_rule() {
        let text = "I'm sure you're right: it's late, we've won, they'll come, she'd go, \
                    don't, can't, won't, shouldn't, couldn't've, y'all, let's, that's, you’ll.";
        assert_eq!(formality_signals(text).contractions, 15);
    }

    #[test]
    fn possessives_and_quotes_are_not_contractions() {
        let text = "John's car, the boss's office, James' hat, 'quoted', o'clock, O'Brien, \
                    rock'n'roll, ma'am, the '90s.";
        assert_eq!(formality_signals(text).contractions, 0);
    }

    #[test]
    fn second_person_pronouns_in_any_case_and_contracted() {
        let text = "You and your friends: yours, yourself, YOURSELVES. You're here, you’ll see. \
                    Youth and yours-truly-ish are words too.";
        // "yours" in "yours-truly-ish" is a word of its own once split at the hyphens.
        assert_eq!(formality_signals(text).second_person, 8);
    }

    #[test]
    fn exclamations_and_questions() {
        let signals = formality_signals("Wow! Really?! Why?? No!!! ![image](a.png) ¿Qué? 本当？");
        assert_eq!(signals.exclamation_marks, 5);
        assert_eq!(signals.questions, 4);
    }

    #[test]
    fn code_and_links_are_not_prose() {
        let text = "Check `a != b` and see [the docs](https://x.io/?q=1!) or https://y.io/?a \
                    then:\n```\nif (!done) { ask(\"why?\"); }\n```\nDone!";
        let signals = formality_signals(text);
        assert_eq!(signals.exclamation_marks, 1);
        assert_eq!(signals.questions, 0);
    }

    #[test]
    fn words_join_letters_across_single_inner_apostrophes() {
        assert_eq!(
            words("don't 'quoted' it’s x''y end'"),
            ["don't", "quoted", "it’s", "x", "y", "end"]
        );
    }
}
