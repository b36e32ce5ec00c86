//! The generation loop: prefill the prompt, then sample one token at a time through the KV cache,
//! stopping at a stop token, a stop string or the token limit, streaming text as it becomes final
//! (never half a UTF-8 character, never a piece of a stop string).

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::decoder::{Decoder, Sequence};
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
    /// Time from the request's arrival to the first generated token (waiting, prefill and one
    /// sampling step).
    pub time_to_first_token: Duration,
    /// Time from the request's arrival to the end.
    pub elapsed: Duration,
}

/// Runs the loop for one sequence on its own. `on_text` gets each piece of final text;
/// `cancel` stops it between tokens. (Several requests at once go through
/// [`crate::scheduler::Scheduler`], which drives the same [`Generator`] for each.)
pub fn generate(
    decoder: &Decoder,
    tokenizer: &Tokenizer,
    prompt_ids: &[u32],
    options: &GenerateOptions,
    on_text: &mut dyn FnMut(&str),
    cancel: &AtomicBool,
) -> Result<Generation, EngineError> {
    let mut generator = Generator::new(decoder, tokenizer, prompt_ids, options, Instant::now())?;
    loop {
        if cancel.load(Ordering::Relaxed) {
            return generator.cancel(on_text);
        }
        let pending = generator.pending().to_vec();
        let logits = decoder.feed(generator.sequence_mut(), &pending)?;
        generator.consumed(pending.len());
        if let Some(generation) = generator.next_token(&logits, on_text)? {
            return Ok(generation);
        }
    }
}

/// One sequence's generation in progress, fed by whoever runs the forward passes (the loop
/// above, or the scheduler, many at once): the prompt first (in one piece or in chunks), then
/// each sampled token; after every feed that reaches the end of [`Generator::pending`], the
/// logits go to [`Generator::next_token`].
pub struct Generator {
    sequence: Sequence,
    sampler: Sampler,
    text: TextStream,
    stop_ids: Vec<u32>,
    max_new_tokens: usize,
    /// Tokens to feed before the next logits: the prompt's unfed rest, or the last sample.
    pending: Vec<u32>,
    /// How many of `pending` have been fed.
    fed: usize,
    ids: Vec<u32>,
    prompt_tokens: usize,
    arrived: Instant,
    time_to_first_token: Option<Duration>,
}

impl Generator {
    /// A generation of `prompt_ids`, timed from `arrived` (when the request came in, so time
    /// spent waiting for a place in a batch counts, as a server's would).
    pub fn new(
        decoder: &Decoder,
        tokenizer: &Tokenizer,
        prompt_ids: &[u32],
        options: &GenerateOptions,
        arrived: Instant,
    ) -> Result<Generator, EngineError> {
        if prompt_ids.is_empty() {
            return Err(EngineError::InvalidInput("the prompt has no tokens".into()));
        }
        Ok(Generator {
            sequence: decoder.new_sequence(Generator::positions(prompt_ids.len(), options)),
            sampler: Sampler::new(options.sampling.clone(), options.fallback_seed),
            text: TextStream::new(tokenizer, options.stop_strings.clone()),
            stop_ids: options.stop_ids.clone(),
            max_new_tokens: options.max_new_tokens,
            pending: prompt_ids.to_vec(),
            fed: 0,
            ids: Vec::new(),
            prompt_tokens: prompt_ids.len(),
            arrived,
            time_to_first_token: None,
        })
    }

    /// The most positions a generation of this prompt can cache: what its KV cache is sized to.
    pub fn positions(prompt_tokens: usize, options: &GenerateOptions) -> usize {
        prompt_tokens + options.max_new_tokens
    }

    /// Tokens still to feed before the next logits are wanted.
    pub fn pending(&self) -> &[u32] {
        &self.pending[self.fed..]
    }

    /// Whether the prompt is still being fed (no token sampled yet).
    pub fn prefilling(&self) -> bool {
        self.ids.is_empty()
    }

    /// The sequence to feed [`Generator::pending`] into.
    pub fn sequence_mut(&mut self) -> &mut Sequence {
        &mut self.sequence
    }

    /// Records that the next `count` pending tokens were fed.
    pub fn consumed(&mut self, count: usize) {
        self.fed = (self.fed + count).min(self.pending.len());
    }

    /// Samples from the logits of the last fed position, streams what text became final, and
    /// returns the generation when it ended (a stop id or string, or the token limit).
    pub fn next_token(
        &mut self,
        logits: &[f32],
        on_text: &mut dyn FnMut(&str),
    ) -> Result<Option<Generation>, EngineError> {
        if self.max_new_tokens == 0 {
            return self.finish(Finish::Length, on_text).map(Some);
        }
        let token = self.sampler.sample(logits, self.sequence.tokens());
        self.ids.push(token);
        self.time_to_first_token
            .get_or_insert_with(|| self.arrived.elapsed());
        if self.stop_ids.contains(&token) || self.text.push(token, on_text)? {
            return self.finish(Finish::Stop, on_text).map(Some);
        }
        if self.ids.len() >= self.max_new_tokens {
            return self.finish(Finish::Length, on_text).map(Some);
        }
        self.pending = vec![token];
        self.fed = 0;
        Ok(None)
    }

    /// Ends the generation early (the caller cancelled), keeping the text so far.
    pub fn cancel(mut self, on_text: &mut dyn FnMut(&str)) -> Result<Generation, EngineError> {
        self.finish(Finish::Cancelled, on_text)
    }

    /// The generation as it ends (the generator is spent).
    fn finish(
        &mut self,
        finish: Finish,
        on_text: &mut dyn FnMut(&str),
    ) -> Result<Generation, EngineError> {
        self.text.finish(on_text)?;
        let elapsed = self.arrived.elapsed();
        Ok(Generation {
            text: self.text.take_text(),
            ids: std::mem::take(&mut self.ids),
            finish,
            prompt_tokens: self.prompt_tokens,
            time_to_first_token: self.time_to_first_token.unwrap_or(elapsed),
            elapsed,
        })
    }
}

/// Generated text on its way out: decoded incrementally, held back while it could still turn into
/// a stop string, cut at the first stop string.
struct TextStream {
    decoder: crate::detokenize::StreamingDecoder,
    stop_strings: Vec<String>,
    text: String,
    /// Bytes of `text` already handed to the caller.
    sent: usize,
    stopped: bool,
}

impl TextStream {
    fn new(tokenizer: &Tokenizer, stop_strings: Vec<String>) -> TextStream {
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
        for stop in &self.stop_strings {
            for (boundary, _) in stop.char_indices().skip(1) {
                let prefix = &stop[..boundary];
                if prefix.len() > held && unsent.ends_with(prefix) {
                    held = prefix.len();
                }
            }
        }
        held
    }

    fn take_text(&mut self) -> String {
        std::mem::take(&mut self.text)
    }
}
