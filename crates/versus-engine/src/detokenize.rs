//! Incremental detokenization: text as token ids arrive, never half a UTF-8 character.
//!
//! It is the prefix-offset method of text-generation-inference (and of transformers'
//! `TextStreamer`): decode a short window of recent ids twice, without and with the newest ones,
//! and emit what the second decoding adds. Decoding a window instead of all ids keeps each step
//! cheap; the window starts where decoding restarts cleanly, so the emitted pieces add up to
//! `decode(all ids)`.

use crate::error::EngineError;
use crate::tokenizer::Tokenizer;

/// Emits the text of a growing list of token ids, piece by piece.
///
/// The concatenation of everything [`StreamingDecoder::push`] and [`StreamingDecoder::flush`]
/// return equals `tokenizer.decode(ids, skip_special_tokens)` (before transformers'
/// WordPiece clean-up, which never applies to BPE models).
#[derive(Debug, Clone)]
pub struct StreamingDecoder {
    tokenizer: Tokenizer,
    skip_special_tokens: bool,
    ids: Vec<u32>,
    /// Start of the window that is decoded at each step.
    prefix_offset: usize,
    /// End of the ids whose text has been emitted.
    read_offset: usize,
    /// Everything emitted so far, to repair the rare step where a window does not decode to an
    /// extension of its prefix.
    emitted: String,
}

impl StreamingDecoder {
    pub fn new(tokenizer: &Tokenizer, skip_special_tokens: bool) -> StreamingDecoder {
        StreamingDecoder {
            tokenizer: tokenizer.clone(),
            skip_special_tokens,
            ids: Vec::new(),
            prefix_offset: 0,
            read_offset: 0,
            emitted: String::new(),
        }
    }

    /// Adds one id; returns the new text, or `None` while the text is incomplete (a character
    /// whose bytes have not all arrived, or a token that adds no text).
    pub fn push(&mut self, id: u32) -> Result<Option<String>, EngineError> {
        self.ids.push(id);
        // A run of byte-fallback tokens decodes as one group: a later byte that makes the group
        // invalid turns every byte of it into U+FFFD, even a valid character at its start. So
        // the text of a run is only final once a token that is not a byte follows it.
        if self.tokenizer.is_byte_fallback_token(id) {
            return Ok(None);
        }
        self.emit(false)
    }

    /// Emits whatever is held back, e.g. an incomplete character at the very end (as U+FFFD,
    /// like `decode` gives it).
    pub fn flush(&mut self) -> Result<Option<String>, EngineError> {
        self.emit(true)
    }

    /// All ids pushed so far.
    pub fn ids(&self) -> &[u32] {
        &self.ids
    }

    /// All text emitted so far.
    pub fn text(&self) -> &str {
        &self.emitted
    }

    fn decode(&self, ids: &[u32]) -> Result<String, EngineError> {
        self.tokenizer.decode_raw(ids, self.skip_special_tokens)
    }

    fn emit(&mut self, at_end: bool) -> Result<Option<String>, EngineError> {
        if self.read_offset == self.ids.len() {
            return Ok(None);
        }
        let prefix_text = self.decode(&self.ids[self.prefix_offset..self.read_offset])?;
        let window_text = self.decode(&self.ids[self.prefix_offset..])?;
        // U+FFFD at the end is a character whose remaining bytes are still to come.
        if !at_end && window_text.ends_with('\u{FFFD}') {
            return Ok(None);
        }
        let new_text = match window_text.strip_prefix(prefix_text.as_str()) {
            Some(new_text) => new_text.to_string(),
            None => {
                // The window did not extend its prefix (a decoder that rewrites earlier text);
                // fall back to decoding everything and emit what is past the emitted text.
                let full_text = self.decode(&self.ids)?;
                if !at_end && full_text.ends_with('\u{FFFD}') {
                    return Ok(None);
                }
                match full_text.strip_prefix(self.emitted.as_str()) {
                    Some(new_text) => new_text.to_string(),
                    None => {
                        return Err(EngineError::Tokenizer(
                            "streaming decoder: the text of earlier tokens changed".to_string(),
                        ))
                    }
                }
            }
        };
        if new_text.is_empty() {
            // Nothing visible yet (e.g. a skipped special token): keep the window as it is.
            return Ok(None);
        }
        self.advance_window()?;
        self.emitted.push_str(&new_text);
        Ok(Some(new_text))
    }

    /// Moves the window past the emitted ids. Its new start must itself decode to some text:
    /// decoders such as SentencePiece's `Strip` drop the leading space of whatever comes first,
    /// so a window that starts with ids that decode to nothing (skipped special tokens) would
    /// lose the space of the next word.
    fn advance_window(&mut self) -> Result<(), EngineError> {
        let candidate = self.read_offset;
        let end = self.ids.len();
        if candidate < end && !self.decode(&self.ids[candidate..end])?.is_empty() {
            self.prefix_offset = candidate;
        }
        self.read_offset = end;
        Ok(())
    }
}
