//! An incremental decoder of newline-delimited JSON (Ollama's streams): bytes in as they
//! arrive, whole non-blank lines out, whatever the read boundaries, each at most a set length.

/// A line longer than the decoder's limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "a streamed line is longer than {limit} bytes (the limit; raise it with `max_sse_line_bytes`)"
)]
pub struct LineTooLong {
    pub limit: usize,
}

/// Cuts a byte stream into lines (LF or CRLF); blank lines are skipped.
#[derive(Debug)]
pub struct LineDecoder {
    max_line_bytes: usize,
    partial: Vec<u8>,
}

impl LineDecoder {
    pub fn with_limit(max_line_bytes: usize) -> LineDecoder {
        LineDecoder {
            max_line_bytes,
            partial: Vec::new(),
        }
    }

    /// The lines `bytes` completes, or `LineTooLong` (the decoder is then spent).
    pub fn feed(&mut self, bytes: &[u8]) -> Result<Vec<String>, LineTooLong> {
        let mut lines = Vec::new();
        let mut rest = bytes;
        while let Some(end) = rest.iter().position(|byte| *byte == b'\n') {
            self.partial.extend_from_slice(&rest[..end]);
            self.check()?;
            let line = std::mem::take(&mut self.partial);
            push_line(&line, &mut lines);
            rest = &rest[end + 1..];
        }
        self.partial.extend_from_slice(rest);
        self.check()?;
        Ok(lines)
    }

    /// The last line, when the stream ended without a newline.
    pub fn finish(&mut self) -> Option<String> {
        let line = std::mem::take(&mut self.partial);
        let mut lines = Vec::new();
        push_line(&line, &mut lines);
        lines.pop()
    }

    fn check(&mut self) -> Result<(), LineTooLong> {
        if self.partial.len() > self.max_line_bytes {
            self.partial = Vec::new();
            return Err(LineTooLong {
                limit: self.max_line_bytes,
            });
        }
        Ok(())
    }
}

fn push_line(line: &[u8], lines: &mut Vec<String>) {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let text = String::from_utf8_lossy(line);
    if !text.trim().is_empty() {
        lines.push(text.into_owned());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_whole_whatever_the_cuts() {
        let stream = b"{\"a\":1}\r\n\n{\"b\":\"\xc3\xa9\"}\n{\"c\":3}";
        for cut in 0..stream.len() {
            let mut decoder = LineDecoder::with_limit(100);
            let mut lines = decoder.feed(&stream[..cut]).expect("short");
            lines.extend(decoder.feed(&stream[cut..]).expect("short"));
            lines.extend(decoder.finish());
            assert_eq!(
                lines,
                ["{\"a\":1}", "{\"b\":\"é\"}", "{\"c\":3}"],
                "cut at {cut}"
            );
        }
    }

    #[test]
    fn an_endless_line_fails_at_the_limit() {
        let mut decoder = LineDecoder::with_limit(8);
        assert!(decoder.feed(b"12345").is_ok());
        assert_eq!(decoder.feed(b"6789"), Err(LineTooLong { limit: 8 }));
    }
}
