//! The one check that a page versus rendered is inert: nothing on it can run script or load
//! anything, besides what the page itself is known to hold. Every test of rendered HTML uses it:
//! the HTML report's unit tests and `tests/html_report.rs` (the page the binary writes), and
//! `versus view`'s handler tests (every page of the web app).
//!
//! [`active_content`] reads every tag as a browser's tokenizer would (names and attributes
//! case-insensitive, quoted values only after `=`, entities in values decoded) and reports:
//! - any `<script>` but the page's own, and any other element that runs, styles, frames, embeds,
//!   loads or submits: `style`, `link`, `base`, `template`, `iframe`, `frame`, `frameset`,
//!   `object`, `embed`, `applet`, `portal`, `img`, `image`, `picture`, `source`, `track`,
//!   `video`, `audio`, `form`, `svg`, `math`, `use`, `foreignobject`, `animate`, `set`
//!   ([`Own`] allows the page's own inline SVG and its same-origin forms);
//! - a `<meta>` with an `http-equiv` other than the Content-Security-Policy, or a refresh;
//! - event-handler attributes (`on*=`) and attributes that style or load: `style`, `src`,
//!   `srcset`, `srcdoc`, `background`, `poster`, `action`, `formaction`, `xlink:href`, `data`,
//!   `ping`, `lowsrc`, `dynsrc`;
//! - any attribute whose value is a `javascript:`, `data:` or `vbscript:` URL, holds a CSS
//!   `url(`, or, outside `href`, is an `http:`, `https:` or `//` URL.
//!
//! Text on these pages is escaped, so every `<` outside the page's own blocks (cut out before
//! the scan, see [`Own::block`]) that a browser would read as a tag is one.

/// What a page holds of its own, which [`active_content`] allows.
#[derive(Debug, Clone, Default)]
pub struct Own {
    blocks: Vec<String>,
    same_origin_forms: bool,
    inline_svg: bool,
}

impl Own {
    /// A page allowed nothing of its own.
    pub fn nothing() -> Own {
        Own::default()
    }

    /// The HTML report's page: its inline `<style>` and `<script>`, exactly these texts, once
    /// each; the empty icon that stops browsers asking for `/favicon.ico`; and its inline SVG
    /// charts. (Its Content-Security-Policy `<meta>` is allowed on every page.)
    pub fn report_page(style: &str, script: &str) -> Own {
        Own::nothing()
            .block(format!("<style>{style}</style>"))
            .block(format!("<script>{script}</script>"))
            .block("<link rel=\"icon\" href=\"data:,\">")
            .inline_svg()
    }

    /// A `versus view` page: its one stylesheet and one script from the app's `/assets/`, and
    /// forms that post to the app itself (a path on the same origin).
    pub fn viewer_page() -> Own {
        Own::nothing()
            .block("<link rel=\"stylesheet\" href=\"/assets/view.css\">")
            .block("<script src=\"/assets/view.js\"></script>")
            .same_origin_forms()
    }

    /// A piece of markup the page writes itself, matched exactly: it must occur exactly once, and
    /// is cut out before the scan (so the text of an inline style or script is not read as tags).
    pub fn block(mut self, exact: impl Into<String>) -> Own {
        self.blocks.push(exact.into());
        self
    }

    /// Allows `<form>`s whose `action` is a path on the page's own origin (`/vote`, not
    /// `//host/` or a URL).
    pub fn same_origin_forms(mut self) -> Own {
        self.same_origin_forms = true;
        self
    }

    /// Allows inline `<svg>` (the report's charts). What loads or scripts inside SVG (`image`,
    /// `use`, `foreignObject`, `animate`, `set`, scripts, handlers, URLs) stays forbidden, and the
    /// sanitizer drops every `<svg>` an answer writes.
    pub fn inline_svg(mut self) -> Own {
        self.inline_svg = true;
        self
    }
}

/// Elements that run, style, frame, embed, load or submit something.
const FORBIDDEN_ELEMENTS: &[&str] = &[
    "script",
    "style",
    "link",
    "base",
    "template",
    "iframe",
    "frame",
    "frameset",
    "object",
    "embed",
    "applet",
    "portal",
    "img",
    "image",
    "picture",
    "source",
    "track",
    "video",
    "audio",
    "form",
    "svg",
    "math",
    "use",
    "foreignobject",
    "animate",
    "set",
];

/// Attributes that style, load or submit, whatever their value.
const LOADING_ATTRIBUTES: &[&str] = &[
    "style",
    "src",
    "srcset",
    "srcdoc",
    "background",
    "poster",
    "action",
    "formaction",
    "xlink:href",
    "data",
    "ping",
    "lowsrc",
    "dynsrc",
];

/// URL schemes that run script or carry a document.
const SCRIPT_SCHEMES: &[&str] = &["javascript:", "data:", "vbscript:"];

/// Everything in `page` that could run or load something and is not the page's `own`; empty
/// when the page is inert. Each entry says what was found and quotes the tag.
pub fn active_content(page: &str, own: &Own) -> Vec<String> {
    let mut problems = Vec::new();
    let mut rest = page.to_string();
    for block in &own.blocks {
        let count = rest.matches(block.as_str()).count();
        if count != 1 {
            problems.push(format!(
                "the page's own {} occurs {count} times, not once",
                quote(block)
            ));
        }
        rest = rest.replacen(block.as_str(), "", 1);
    }
    let lower = rest.to_ascii_lowercase();
    let bytes = lower.as_bytes();
    let mut at = 0;
    while let Some(offset) = lower[at..].find('<') {
        let open = at + offset;
        match bytes.get(open + 1) {
            Some(c) if c.is_ascii_alphabetic() => {
                let tag = read_tag(&lower, open + 1);
                check_tag(&tag, &rest[open..tag.end], own, &mut problems);
                at = tag.end;
            }
            // An end tag: its attributes are dropped, but their quotes decide where it ends.
            Some(b'/') if bytes.get(open + 2).is_some_and(u8::is_ascii_alphabetic) => {
                at = read_tag(&lower, open + 2).end;
            }
            // A comment, doctype, bogus comment or empty end tag: inert up to its first `>`
            // (a comment may run on further, but what follows is then only more comment).
            Some(b'!' | b'?' | b'/') => {
                at = lower[open..]
                    .find('>')
                    .map_or(lower.len(), |end| open + end + 1);
            }
            // A `<` that opens no tag is text.
            _ => at = open + 1,
        }
    }
    problems
}

/// Panics with everything [`active_content`] finds in `page`, if anything.
#[track_caller]
pub fn assert_inert(page: &str, own: &Own) {
    let problems = active_content(page, own);
    assert!(
        problems.is_empty(),
        "active content in the page:\n{}",
        problems.join("\n")
    );
}

/// A start tag as the tokenizer reads it: lower-case name, attributes (name, raw value), and
/// the byte just past its `>`.
struct Tag {
    name: String,
    attributes: Vec<(String, String)>,
    end: usize,
}

/// Reads the tag whose name starts at `start` (just past `<` or `</`).
fn read_tag(html: &str, start: usize) -> Tag {
    let bytes = html.as_bytes();
    let space = |at: usize| bytes[at].is_ascii_whitespace();
    let mut at = start;
    while at < bytes.len() && !space(at) && bytes[at] != b'/' && bytes[at] != b'>' {
        at += 1;
    }
    let name = html[start..at].to_string();
    let mut attributes = Vec::new();
    loop {
        while at < bytes.len() && (space(at) || bytes[at] == b'/') {
            at += 1;
        }
        if at >= bytes.len() {
            return Tag {
                name,
                attributes,
                end: bytes.len(),
            };
        }
        if bytes[at] == b'>' {
            return Tag {
                name,
                attributes,
                end: at + 1,
            };
        }
        // An attribute's name runs to a space, `/`, `>` or `=`; a leading `=` is part of it.
        let key_start = at;
        at += 1;
        while at < bytes.len() && !space(at) && !matches!(bytes[at], b'/' | b'>' | b'=') {
            at += 1;
        }
        let key = html[key_start..at].to_string();
        let mut after = at;
        while after < bytes.len() && space(after) {
            after += 1;
        }
        let mut value = String::new();
        if bytes.get(after) == Some(&b'=') {
            at = after + 1;
            while at < bytes.len() && space(at) {
                at += 1;
            }
            match bytes.get(at) {
                Some(&mark @ (b'"' | b'\'')) => {
                    let value_start = at + 1;
                    let value_end = html[value_start..]
                        .find(mark as char)
                        .map_or(bytes.len(), |end| value_start + end);
                    value = html[value_start..value_end].to_string();
                    at = (value_end + 1).min(bytes.len());
                }
                _ => {
                    let value_start = at;
                    while at < bytes.len() && !space(at) && bytes[at] != b'>' {
                        at += 1;
                    }
                    value = html[value_start..at].to_string();
                }
            }
        }
        attributes.push((key, value));
    }
}

fn check_tag(tag: &Tag, text: &str, own: &Own, problems: &mut Vec<String>) {
    let mut found = |what: &str| problems.push(format!("{what}: {}", quote(text)));
    let attribute = |name: &str| {
        tag.attributes
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    };
    // `svg:image` is an `image`.
    let local = tag.name.rsplit(':').next().unwrap_or_default();
    let same_origin_action = attribute("action").is_some_and(|action| {
        action.starts_with('/') && !action.starts_with("//") && !action.starts_with("/\\")
    });
    let allowed = match local {
        "svg" => own.inline_svg,
        "form" => own.same_origin_forms && same_origin_action,
        _ => false,
    };
    if FORBIDDEN_ELEMENTS.contains(&local) && !allowed {
        found("an element that runs, styles, frames, embeds, loads or submits");
    }
    if local == "meta" {
        let equiv = attribute("http-equiv").map(compact);
        if equiv.is_some_and(|e| e != "content-security-policy")
            || text.to_ascii_lowercase().contains("refresh")
        {
            found("a meta tag that acts");
        }
    }
    for (key, value) in &tag.attributes {
        let value = compact(value);
        if key.starts_with("on") {
            found("an event handler");
        } else if LOADING_ATTRIBUTES.contains(&key.as_str())
            && !(key == "action" && local == "form" && allowed)
        {
            found("an attribute that styles or loads");
        }
        if SCRIPT_SCHEMES
            .iter()
            .any(|scheme| value.starts_with(scheme))
        {
            found("a script or data URL");
        }
        if value.contains("url(") {
            found("a CSS URL");
        }
        // Escaped prose in a data attribute may mention a URL; a value that is one may load.
        if key != "href"
            && ["http:", "https:", "//"]
                .iter()
                .any(|u| value.starts_with(u))
        {
            found("a URL outside href");
        }
    }
}

/// An attribute value as a browser reads it for a URL: entities decoded, lower-cased, and
/// without the spaces and control characters it would skip (`java&#09;script:` is `javascript:`).
fn compact(value: &str) -> String {
    decode_entities(value)
        .to_lowercase()
        .chars()
        .filter(|c| !c.is_whitespace() && !c.is_control())
        .collect()
}

fn decode_entities(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let mut rest = value;
    while let Some(at) = rest.find('&') {
        out.push_str(&rest[..at]);
        rest = &rest[at + 1..];
        match entity(rest) {
            Some((c, len)) => {
                out.push(c);
                rest = &rest[len..];
            }
            None => out.push('&'),
        }
    }
    out.push_str(rest);
    out
}

/// The character a reference at the start of `text` (just past `&`) stands for, and its length.
fn entity(text: &str) -> Option<(char, usize)> {
    const NAMED: &[(&str, char)] = &[
        ("colon;", ':'),
        ("tab;", '\t'),
        ("newline;", '\n'),
        ("lpar;", '('),
        ("rpar;", ')'),
        ("sol;", '/'),
        ("bsol;", '\\'),
        ("period;", '.'),
        ("amp;", '&'),
        ("quot;", '"'),
        ("apos;", '\''),
        ("lt;", '<'),
        ("gt;", '>'),
    ];
    if let Some(number) = text.strip_prefix('#') {
        let (digits, radix, prefix) = match number.strip_prefix(['x', 'X']) {
            Some(hex) => (hex, 16, 2),
            None => (number, 10, 1),
        };
        let len = digits
            .chars()
            .take_while(|c| c.is_digit(radix))
            .map(char::len_utf8)
            .sum::<usize>();
        let code = u32::from_str_radix(&digits[..len], radix).ok()?;
        let semicolon = usize::from(digits[len..].starts_with(';'));
        return Some((
            char::from_u32(code).unwrap_or('\u{fffd}'),
            prefix + len + semicolon,
        ));
    }
    NAMED
        .iter()
        .find(|(name, _)| {
            text.get(..name.len())
                .is_some_and(|start| start.eq_ignore_ascii_case(name))
        })
        .map(|&(name, c)| (c, name.len()))
}

/// `text` in backquotes, cut to a readable length.
fn quote(text: &str) -> String {
    const MAX: usize = 160;
    let mut out: String = text.chars().take(MAX).collect();
    if text.chars().count() > MAX {
        out.push('…');
    }
    format!("`{out}`")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(body: &str) -> Vec<String> {
        let own = Own::report_page("a{}", "1 < 2");
        active_content(
            &format!(
                "<!DOCTYPE html><head><meta charset=\"utf-8\"><meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'\"><link rel=\"icon\" href=\"data:,\"><style>a{{}}</style><script>1 < 2</script></head><body>{body}</body>"
            ),
            &own,
        )
    }

    fn viewer(body: &str) -> Vec<String> {
        active_content(
            &format!(
                "<link rel=\"stylesheet\" href=\"/assets/view.css\">{body}<script src=\"/assets/view.js\"></script>"
            ),
            &Own::viewer_page(),
        )
    }

    #[test]
    fn own_pieces_pass_once_and_only_once() {
        assert_eq!(
            report("<p title='a > b'>&lt;script&gt;</p>"),
            Vec::<String>::new()
        );
        assert_eq!(
            report("<svg viewBox=\"0 0 1 1\" role=\"img\"><g><rect x=\"0\"/></g></svg>"),
            Vec::<String>::new()
        );
        assert_eq!(
            viewer("<form method=\"post\" action=\"/vote\"><button>go</button></form>"),
            Vec::<String>::new()
        );
        assert_eq!(
            viewer("<a href=\"https://example.org/ok\" rel=\"noopener\">x</a> a < b"),
            Vec::<String>::new()
        );
        assert!(!report("<style>a{}</style>").is_empty(), "twice");
        assert!(
            !active_content("<p>x</p>", &Own::viewer_page()).is_empty(),
            "missing"
        );
        assert!(
            !viewer("<svg></svg>").is_empty(),
            "svg is the report's own only"
        );
    }

    #[test]
    fn active_content_is_caught() {
        for bad in [
            "<script>alert(1)</script>",
            "<script src=\"x.js\"></script>",
            "<SCRIPT>2</SCRIPT>",
            "<img src=x>",
            "<p onclick=\"x()\">",
            "<div title=\"x\" ONERROR=y>",
            "<p style=\"color:red\">x</p>",
            "<a href=\"javascript:x()\">x</a>",
            "<a href=' data:text/html,x'>x</a>",
            "<a href=\"data:text/html,x\">",
            "<a href=\"java&#x09;script:x()\">x</a>",
            "<a href=\"&#106;avascript:x()\">x</a>",
            "<a href=\"javascript&colon;x()\">x</a>",
            "<a href=\"vbscript:x\">x</a>",
            "<link rel=\"stylesheet\" href=\"https://evil.example/s.css\">",
            "<meta http-equiv=\"refresh\" content=\"0;url=https://evil.example\">",
            "<svg><image href=\"https://evil.example/i.png\"/></svg>",
            "<svg:image href=\"x\">",
            "<p title=x data-x=\"https://evil.example\">",
            "<p data-x=\" //evil.example/x\">",
            "<iframe srcdoc=\"x\"></iframe>",
            "<object data=\"x\"></object>",
            "<embed>",
            "<base href=\"https://evil.example/\">",
            "<form action=\"https://evil.example\"><button>go</button></form>",
            "<form action=\"//evil.example\">",
            "<button formaction=\"/x\">",
            "<video poster=\"x\">",
            "<math><mi>x</mi></math>",
            "<template><p>x</p></template>",
            "<div title=\"url(x)\">",
            "<p x\" ><script>alert(1)</script>\">",
            "<!--><script>alert(1)</script>-->",
        ] {
            assert!(!report(bad).is_empty(), "missed {bad}");
            assert!(!viewer(bad).is_empty(), "missed {bad} on a viewer page");
        }
    }
}
