//! Reference metrics and text statistics, each exactly as its reference package computes it:
//! ROUGE as Google's `rouge-score`, BLEU as `sacrebleu`, readability as `textstat`.

pub mod bleu;
mod porter;
pub mod rouge;
pub mod style;
