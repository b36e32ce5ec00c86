//! An incremental Server-Sent Events decoder: bytes in as they arrive from the network, whole
//! events out, whatever the read boundaries.
//!
//! Follows the WHATWG event-stream rules that matter for chat APIs: lines end in LF, CRLF or CR;
//! a blank line ends an event; `data:` lines accumulate (joined by `\n`); lines starting with `:`
//! are comments; one space after the colon is dropped. `id:` and `retry:` are read and ignored.
//!
//! A line, and the data of one event, may be at most `max_line_bytes` long (a server that never
//! ends a line must not make the client allocate until it aborts): beyond it `feed` fails with
//! `SseTooLong`.

/// The default longest line (and event data): far beyond any chat chunk, even a whole answer in
/// one event.
pub const DEFAULT_MAX_SSE_LINE_BYTES: usize =
    versus_core::suite::DEFAULT_MAX_SSE_LINE_BYTES as usize;

/// A line or an event's data longer than the decoder's limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a server-sent event line is longer than {limit} bytes (the limit; raise it with `max_sse_line_bytes`)")]
pub struct SseTooLong {
    pub limit: usize,
}

/// One dispatched event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseEvent {
    /// The `event:` field, when the server named the event type.
    pub event: Option<String>,
    /// The `data:` lines joined by `\n`.
    pub data: String,
}

/// Turns a byte stream into events. Feed it every chunk read, then call `finish` at EOF.
#[derive(Debug)]
pub struct SseDecoder {
    /// The longest line, and the longest data of one event, in bytes.
    max_line_bytes: usize,
    /// The bytes of a line whose end has not arrived yet.
    partial_line: Vec<u8>,
    /// The previous chunk ended in CR, so an LF opening the next chunk is the same line break.
    skip_leading_lf: bool,
    event: Option<String>,
    data: String,
    has_data: bool,
}

impl Default for SseDecoder {
    fn default() -> SseDecoder {
        SseDecoder::with_limit(DEFAULT_MAX_SSE_LINE_BYTES)
    }
}

impl SseDecoder {
    pub fn new() -> SseDecoder {
        SseDecoder::default()
    }

    /// A decoder whose lines (and events' data) may be at most `max_line_bytes` long.
    pub fn with_limit(max_line_bytes: usize) -> SseDecoder {
        SseDecoder {
            max_line_bytes,
            partial_line: Vec::new(),
            skip_leading_lf: false,
            event: None,
            data: String::new(),
            has_data: false,
        }
    }

    /// Decodes the next piece of the stream; returns the events it completes, or `SseTooLong`
    /// when a line or an event's data outgrows the limit (the decoder is then spent).
    pub fn feed(&mut self, bytes: &[u8]) -> Result<Vec<SseEvent>, SseTooLong> {
        let mut events = Vec::new();
        let mut position = 0;
        if self.skip_leading_lf && !bytes.is_empty() {
            if bytes[0] == b'\n' {
                position = 1;
            }
            self.skip_leading_lf = false;
        }
        let mut line_start = position;
        while position < bytes.len() {
            let byte = bytes[position];
            if byte != b'\n' && byte != b'\r' {
                position += 1;
                continue;
            }
            self.partial_line
                .extend_from_slice(&bytes[line_start..position]);
            self.check_length()?;
            let line = std::mem::take(&mut self.partial_line);
            self.process_line(&line, &mut events);
            if self.data.len() > self.max_line_bytes {
                return Err(self.too_long());
            }
            position += 1;
            if byte == b'\r' {
                match bytes.get(position) {
                    Some(b'\n') => position += 1,
                    Some(_) => {}
                    None => self.skip_leading_lf = true,
                }
            }
            line_start = position;
        }
        self.partial_line.extend_from_slice(&bytes[line_start..]);
        self.check_length()?;
        Ok(events)
    }

    fn check_length(&mut self) -> Result<(), SseTooLong> {
        if self.partial_line.len() > self.max_line_bytes {
            return Err(self.too_long());
        }
        Ok(())
    }

    /// The error, with the buffers freed.
    fn too_long(&mut self) -> SseTooLong {
        self.partial_line = Vec::new();
        self.data = String::new();
        SseTooLong {
            limit: self.max_line_bytes,
        }
    }

    /// Ends the stream: a last line or event the server did not terminate is still delivered,
    /// because servers that close right after `data: [DONE]` without a blank line are common.
    pub fn finish(&mut self) -> Option<SseEvent> {
        let mut events = Vec::new();
        if !self.partial_line.is_empty() {
            let line = std::mem::take(&mut self.partial_line);
            self.process_line(&line, &mut events);
        }
        self.process_line(b"", &mut events);
        events.pop()
    }

    fn process_line(&mut self, line: &[u8], events: &mut Vec<SseEvent>) {
        if line.is_empty() {
            if self.has_data {
                if self.data.ends_with('\n') {
                    self.data.pop();
                }
                events.push(SseEvent {
                    event: self.event.take(),
                    data: std::mem::take(&mut self.data),
                });
            }
            self.event = None;
            self.has_data = false;
            return;
        }
        if line[0] == b':' {
            return;
        }
        // Line breaks never fall inside a UTF-8 sequence, so each line decodes on its own.
        let line = String::from_utf8_lossy(line);
        let (field, value) = match line.split_once(':') {
            Some((field, value)) => (field, value.strip_prefix(' ').unwrap_or(value)),
            None => (line.as_ref(), ""),
        };
        match field {
            "data" => {
                self.data.push_str(value);
                self.data.push('\n');
                self.has_data = true;
            }
            "event" => self.event = Some(value.to_string()),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data_of(events: &[SseEvent]) -> Vec<&str> {
        events.iter().map(|event| event.data.as_str()).collect()
    }

    /// Decodes `stream` fed in pieces cut at `cuts`, plus whatever `finish` delivers.
    fn decode_in_pieces(stream: &[u8], cuts: &[usize]) -> Vec<SseEvent> {
        let mut decoder = SseDecoder::new();
        let mut events = Vec::new();
        let mut start = 0;
        for &cut in cuts.iter().chain(std::iter::once(&stream.len())) {
            events.extend(decoder.feed(&stream[start..cut]).expect("within the limit"));
            start = cut;
        }
        events.extend(decoder.finish());
        events
    }

    #[test]
    fn decodes_data_lines_and_event_boundaries() {
        let events = decode_in_pieces(b"data: one\n\ndata:two\n\ndata: [DONE]\n\n", &[]);
        assert_eq!(data_of(&events), ["one", "two", "[DONE]"]);
    }

    #[test]
    fn joins_multi_line_data_and_skips_comments_and_other_fields() {
        let stream = b": keep-alive\n\nid: 1\nretry: 10\nevent: delta\ndata: a\ndata:  b\n\n";
        let events = decode_in_pieces(stream, &[]);
        assert_eq!(
            events,
            [SseEvent {
                event: Some("delta".into()),
                data: "a\n b".into()
            }]
        );
    }

    #[test]
    fn accepts_crlf_and_bare_cr_line_endings() {
        let events = decode_in_pieces(b"data: a\r\n\r\ndata: b\r\rdata: c\n\n", &[]);
        assert_eq!(data_of(&events), ["a", "b", "c"]);
    }

    #[test]
    fn any_split_of_the_bytes_gives_the_same_events() {
        let stream = "data: {\"x\": \"héllo\"}\r\n\r\n: comment\r\ndata: a\r\ndata: b\r\n\r\ndata: [DONE]\r\n\r\n";
        let bytes = stream.as_bytes();
        let whole = decode_in_pieces(bytes, &[]);
        assert_eq!(data_of(&whole), ["{\"x\": \"héllo\"}", "a\nb", "[DONE]"]);
        for cut in 1..bytes.len() {
            assert_eq!(decode_in_pieces(bytes, &[cut]), whole, "cut at {cut}");
        }
        let every_byte: Vec<usize> = (1..bytes.len()).collect();
        assert_eq!(decode_in_pieces(bytes, &every_byte), whole);
    }

    #[test]
    fn finish_delivers_an_unterminated_last_event() {
        assert_eq!(
            data_of(&decode_in_pieces(b"data: a\n\ndata: [DONE]", &[])),
            ["a", "[DONE]"]
        );
        assert_eq!(
            data_of(&decode_in_pieces(b"data: a\n\ndata: b\n", &[])),
            ["a", "b"]
        );
        let mut decoder = SseDecoder::new();
        assert!(decoder.feed(b": only a comment\n").unwrap().is_empty());
        assert_eq!(decoder.finish(), None);
    }

    #[test]
    fn an_endless_line_or_event_stops_at_the_limit() {
        let mut decoder = SseDecoder::with_limit(64);
        assert!(decoder.feed(b"data: short\n\n").unwrap().len() == 1);
        let chunk = [b'x'; 40];
        assert!(decoder.feed(b"data: ").is_ok());
        assert!(decoder.feed(&chunk).is_ok());
        assert_eq!(decoder.feed(&chunk), Err(SseTooLong { limit: 64 }));
        // Many data lines of one event count together.
        let mut decoder = SseDecoder::with_limit(64);
        let lines = "data: 0123456789\n".repeat(10);
        assert_eq!(
            decoder.feed(lines.as_bytes()),
            Err(SseTooLong { limit: 64 })
        );
        // A line exactly at the limit is fine.
        let mut decoder = SseDecoder::with_limit(16);
        let events = decoder.feed(b"data: 0123456789\n\n").unwrap();
        assert_eq!(data_of(&events), ["0123456789"]);
    }

    #[test]
    fn events_without_data_are_not_dispatched() {
        let events = decode_in_pieces(b"event: ping\n\ndata\n\n", &[]);
        // `data` with no colon is a data field with an empty value: one empty event.
        assert_eq!(data_of(&events), [""]);
    }
}
