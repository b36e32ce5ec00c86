//! The one redaction of URLs: user-info (`user:password@`) and query and fragment values are
//! replaced by `***`, so a URL can be stored, logged and reported without the credentials people
//! put in them (`http://u:PW@host/v1?key=Q`). Every place versus stores, logs or reports a URL
//! goes through `redact_url` (one URL) or `redact_urls_in` (URLs inside a message or a suite's
//! text).

/// What replaces a secret.
pub const REDACTED: &str = "***";

/// `url` with its user-info and its query and fragment values replaced by `***`; scheme, host,
/// port, path and query parameter names are kept. Idempotent; text that is not a URL comes back
/// unchanged apart from anything after a `?` or `#`.
pub fn redact_url(url: &str) -> String {
    let (scheme, rest) = match url.find("://") {
        Some(at) => (&url[..at + 3], &url[at + 3..]),
        None => ("", url),
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let mut out = String::with_capacity(url.len());
    out.push_str(scheme);
    match authority.rfind('@') {
        Some(at) if !scheme.is_empty() => {
            out.push_str(REDACTED);
            out.push_str(&authority[at..]);
        }
        _ => out.push_str(authority),
    }
    let (before_fragment, fragment) = match tail.find('#') {
        Some(at) => (&tail[..at], Some(&tail[at + 1..])),
        None => (tail, None),
    };
    let (path, query) = match before_fragment.find('?') {
        Some(at) => (&before_fragment[..at], Some(&before_fragment[at + 1..])),
        None => (before_fragment, None),
    };
    out.push_str(path);
    if let Some(query) = query {
        out.push('?');
        let redacted: Vec<String> = query
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((name, value)) if !value.is_empty() => format!("{name}={REDACTED}"),
                Some((name, _)) => format!("{name}="),
                // A bare `?TOKEN` may be the secret itself.
                None if pair.is_empty() => String::new(),
                None => REDACTED.to_string(),
            })
            .collect();
        out.push_str(&redacted.join("&"));
    }
    if let Some(fragment) = fragment {
        out.push('#');
        if !fragment.is_empty() {
            out.push_str(REDACTED);
        }
    }
    out
}

/// `text` with every `http://` or `https://` URL in it (up to whitespace, a quote, `<`, `>`, a
/// backtick or a closing bracket) redacted by `redact_url`. Linear in the text.
pub fn redact_urls_in(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = find_url_start(rest) {
        out.push_str(&rest[..start]);
        let candidate = &rest[start..];
        let end = candidate
            .find(|c: char| {
                c.is_whitespace() || matches!(c, '"' | '\'' | '<' | '>' | '`' | ')' | ']' | '}')
            })
            .unwrap_or(candidate.len());
        out.push_str(&redact_url(&candidate[..end]));
        rest = &candidate[end..];
    }
    out.push_str(rest);
    out
}

/// Where the next `http://` or `https://` (any case) starts.
fn find_url_start(text: &str) -> Option<usize> {
    let bytes = text.as_bytes();
    let mut from = 0;
    while let Some(offset) = text[from..].find("://") {
        let at = from + offset;
        for scheme in ["https", "http"] {
            if at >= scheme.len()
                && bytes[at - scheme.len()..at].eq_ignore_ascii_case(scheme.as_bytes())
                && text.is_char_boundary(at - scheme.len())
            {
                return Some(at - scheme.len());
            }
        }
        from = at + 3;
    }
    None
}

/// Whether `url` carries anything `redact_url` would hide.
pub fn has_secrets(url: &str) -> bool {
    redact_url(url) != url
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_info_and_query_values_are_hidden() {
        for (url, expected) in [
            (
                "http://u:PW@host:8080/v1?key=Q&api-version=2024",
                "http://***@host:8080/v1?key=***&api-version=***",
            ),
            ("https://user@host/v1", "https://***@host/v1"),
            ("https://api.openai.com/v1", "https://api.openai.com/v1"),
            ("http://host/v1?SECRET", "http://host/v1?***"),
            ("http://host/v1?a=&b", "http://host/v1?a=&***"),
            ("http://host/v1#token=x", "http://host/v1#***"),
            ("http://h/p@q", "http://h/p@q"),
            ("http://a@b@host/", "http://***@host/"),
        ] {
            assert_eq!(redact_url(url), expected, "{url}");
            assert_eq!(redact_url(expected), expected, "idempotent: {expected}");
        }
    }

    #[test]
    fn urls_inside_text_are_redacted() {
        let text = "cannot reach HTTP://u:PW@h/v1?key=Q (refused); also 'https://x/y?t=1'.";
        assert_eq!(
            redact_urls_in(text),
            "cannot reach HTTP://***@h/v1?key=*** (refused); also 'https://x/y?t=***'."
        );
        assert_eq!(redact_urls_in("no url here: a?b=c"), "no url here: a?b=c");
        assert_eq!(
            redact_urls_in("ünïcode http://ü@h ok"),
            "ünïcode http://***@h ok"
        );
    }
}
