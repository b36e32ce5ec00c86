//! The generation loop: prefill the prompt, then sample one token at a time through the KV cache,
//! stopping at a stop token, a stop string or the token limit, streaming text as it becomes final
//! (never half a UTF-8 character, never a piece of a stop string).

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::decoder::Decoder;
use crate::error::EngineError;
use crate::sampling::{Sampler, SamplingParams};
use crate::tokenizer::Tokenizer;

/// What to generate.
#[derive(Debug, Clone, Default)]
pub struct GenerateOptions {
    pub max_new_tokens: usize,
    pub sampling: SamplingParams,
    /// Ids that end generation (eos ids of the model, the template's end-of-turn token).
    pub stop_ids: Vec<u32>,
    /// Strings that end generation; the text is cut before the first one.
    pub stop_strings: Vec<String>,
    /// The seed when `sampling.seed` is not set.
    pub fallback_seed: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Finish {
    /// A stop id or stop string.
    Stop,
    /// `max_new_tokens` reached.
    Length,
    /// The caller cancelled.
    Cancelled,
}

/// What was generated, with the measurements a report shows.
#[derive(Debug, Clone)]
pub struct Generation {
    /// The answer, special tokens left out, cut before a stop string.
    pub text: String,
    /// Every generated id, the stop id included.
    pub ids: Vec<u32>,
    pub finish: Finish,
    pub prompt_tokens: usize,
    /// Time from the call to the first generated token (prefill plus one sampling step).
    pub time_to_first_token: Duration,
    pub elapsed: Duration,
}

/// Runs the loop. `on_text` gets each piece of final text; `cancel` stops it between tokens.
pub fn generate(
    decoder: &Decoder,
    tokenizer: &Tokenizer,
    prompt_ids: &[u32],
    options: &GenerateOptions,
    on_text: &mut dyn FnMut(&str),
    cancel: &AtomicBool,
) -> Result<Generation, EngineError> {
    let start = Instant::now();
    if prompt_ids.is_empty() {
        return Err(EngineError::InvalidInput("the prompt has no tokens".into()));
    }
    let mut sequence = decoder.new_sequence(prompt_ids.len() + options.max_new_tokens);
    let mut sampler = Sampler::new(options.sampling.clone(), options.fallback_seed);
    let mut text = TextStream::new(tokenizer, &options.stop_strings);
    let mut ids = Vec::new();
    let mut time_to_first_token = None;
    let mut finish = Finish::Length;

    let mut logits = decoder.feed(&mut sequence, prompt_ids)?;
    for step in 0..options.max_new_tokens {
        if cancel.load(Ordering::Relaxed) {
            finish = Finish::Cancelled;
            break;
        }
        let token = sampler.sample(&logits, sequence.tokens());
        ids.push(token);
        time_to_first_token.get_or_insert_with(|| start.elapsed());
        if options.stop_ids.contains(&token) {
            finish = Finish::Stop;
            break;
        }
        if text.push(token, on_text)? {
            finish = Finish::Stop;
            break;
        }
        if step + 1 < options.max_new_tokens {
            logits = decoder.feed(&mut sequence, &[token])?;
        }
    }
    text.finish(on_text)?;
    Ok(Generation {
        text: text.into_text(),
        ids,
        finish,
        prompt_tokens: prompt_ids.len(),
        time_to_first_token: time_to_first_token.unwrap_or_else(|| start.elapsed()),
        elapsed: start.elapsed(),
    })
}

/// Generated text on its way out: decoded incrementally, held back while it could still turn into
/// a stop string, cut at the first stop string.
struct TextStream<'a> {
    decoder: crate::detokenize::StreamingDecoder,
    stop_strings: &'a [String],
    text: String,
    /// Bytes of `text` already handed to the caller.
    sent: usize,
    stopped: bool,
}

impl<'a> TextStream<'a> {
    fn new(tokenizer: &Tokenizer, stop_strings: &'a [String]) -> TextStream<'a> {
        TextStream {
            decoder: tokenizer.streaming_decoder(true),
            stop_strings,
            text: String::new(),
            sent: 0,
            stopped: false,
        }
    }

    /// Adds a token; true when a stop string has appeared.
    fn push(&mut self, token: u32, on_text: &mut dyn FnMut(&str)) -> Result<bool, EngineError> {
        if let Some(piece) = self.decoder.push(token)? {
            self.text.push_str(&piece);
            self.release(on_text, false);
        }
        Ok(self.stopped)
    }

    fn finish(&mut self, on_text: &mut dyn FnMut(&str)) -> Result<(), EngineError> {
        if !self.stopped {
            if let Some(piece) = self.decoder.flush()? {
                self.text.push_str(&piece);
            }
        }
        self.release(on_text, true);
        Ok(())
    }

    /// Cuts at a stop string if one appeared, then sends what can no longer change.
    fn release(&mut self, on_text: &mut dyn FnMut(&str), at_end: bool) {
        if !self.stopped {
            // Search from a little before the unsent text, as a stop string may straddle it.
            let longest = self.stop_strings.iter().map(String::len).max().unwrap_or(0);
            let mut from = self.sent.saturating_sub(longest);
            while !self.text.is_char_boundary(from) {
                from -= 1;
            }
            let first_stop = self
                .stop_strings
                .iter()
                .filter(|s| !s.is_empty())
                .filter_map(|s| self.text[from..].find(s.as_str()).map(|i| from + i))
                .min();
            if let Some(cut) = first_stop {
                self.text.truncate(cut.max(self.sent));
                self.stopped = true;
            }
        }
        let safe_end = if self.stopped || at_end {
            self.text.len()
        } else {
            self.text.len() - self.pending_stop_prefix()
        };
        if safe_end > self.sent {
            on_text(&self.text[self.sent..safe_end]);
            self.sent = safe_end;
        }
    }

    /// The length of the longest tail of the text that begins some stop string: that much is
    /// held back, since the next token may complete the stop string.
    fn pending_stop_prefix(&self) -> usize {
        let unsent = &self.text[self.sent..];
        let mut held = 0;
        for stop in self.stop_strings {
            for (boundary, _) in stop.char_indices().skip(1) {
                let prefix = &stop[..boundary];
                if prefix.len() > held && unsent.ends_with(prefix) {
                    held = prefix.len();
                }
            }
        }
        held
    }

    fn into_text(self) -> String {
        self.text
    }
}
