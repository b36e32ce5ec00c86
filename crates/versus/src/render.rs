//! Model output as HTML: Markdown rendered with pulldown-cmark, then sanitized with ammonia,
//! because answers are untrusted. Shared by the HTML report and `versus view`: both show an
//! answer through [`answer_html`], so the same answer reads the same in both.
//!
//! What never reaches a page: `<script>` and other active elements, event-handler attributes,
//! `style` attributes and `<style>` (CSS can load remote content), `javascript:` and `data:` URLs,
//! and images from answers (an `<img>` would make the page request a URL the model chose; they are
//! shown as links instead). Suite-provided images are rendered by the caller, not from answers.

use std::collections::HashSet;

use pulldown_cmark::{html, CowStr, Event, LinkType, Options, Parser, Tag, TagEnd};

/// An answer as HTML: Markdown rendered and sanitized ([`markdown_to_safe_html`]), then its
/// fenced code highlighted (`report::html::highlight`, which only adds our own spans around
/// escaped text). The one way an answer enters a page, in the HTML report and in `versus view`.
pub fn answer_html(markdown: &str) -> String {
    crate::report::html::highlight::highlight_code_blocks(&markdown_to_safe_html(markdown))
}

/// Renders untrusted Markdown to HTML that is safe to embed in a page.
pub fn markdown_to_safe_html(markdown: &str) -> String {
    let options = Options::ENABLE_TABLES
        | Options::ENABLE_STRIKETHROUGH
        | Options::ENABLE_TASKLISTS
        | Options::ENABLE_FOOTNOTES;
    let mut in_image = false;
    // Images become links labelled "image: ALT", so no request leaves the page on load.
    let events = Parser::new_ext(markdown, options).map(|event| match event {
        Event::Start(Tag::Image {
            dest_url, title, ..
        }) => {
            in_image = true;
            Event::Start(Tag::Link {
                link_type: LinkType::Inline,
                dest_url,
                title,
                id: CowStr::Borrowed(""),
            })
        }
        Event::End(TagEnd::Image) => {
            in_image = false;
            Event::End(TagEnd::Link)
        }
        Event::Text(text) if in_image => Event::Text(format!("image: {text}").into()),
        other => other,
    });
    let mut raw = String::with_capacity(markdown.len() * 3 / 2);
    html::push_html(&mut raw, events);
    sanitizer().clean(&raw).to_string()
}

fn sanitizer() -> ammonia::Builder<'static> {
    let mut builder = ammonia::Builder::default();
    builder
        .rm_tags(["img"])
        .url_schemes(HashSet::from(["http", "https", "mailto"]))
        .link_rel(Some("noopener noreferrer nofollow"))
        .add_allowed_classes("code", LANGUAGE_CLASSES)
        .add_tag_attributes("input", ["type", "checked", "disabled"])
        .add_tags(["input"]);
    builder
}

/// Language classes pulldown-cmark puts on fenced code (`language-python`), kept for highlighting.
const LANGUAGE_CLASSES: &[&str] = &[
    "language-python",
    "language-py",
    "language-javascript",
    "language-js",
    "language-typescript",
    "language-ts",
    "language-rust",
    "language-rs",
    "language-bash",
    "language-sh",
    "language-shell",
    "language-json",
    "language-toml",
    "language-yaml",
    "language-html",
    "language-css",
    "language-sql",
    "language-c",
    "language-cpp",
    "language-java",
    "language-go",
    "language-text",
];

/// Escapes text for HTML element content and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Renders `markdown` and asserts none of `forbidden` survives.
    fn safe(markdown: &str, forbidden: &[&str]) -> String {
        let html = markdown_to_safe_html(markdown);
        for needle in forbidden {
            assert!(
                !html.to_lowercase().contains(&needle.to_lowercase()),
                "{needle:?} survived in {html}"
            );
        }
        html
    }

    #[test]
    fn markdown_renders() {
        let html = safe("# Title\n\n**bold** and `code`\n\n```python\nx = 1\n```\n\n| a | b |\n|---|---|\n| 1 | 2 |\n", &[]);
        assert!(html.contains("<h1>Title</h1>"), "{html}");
        assert!(html.contains("<strong>bold</strong>"));
        assert!(
            html.contains("<code class=\"language-python\">x = 1"),
            "{html}"
        );
        assert!(html.contains("<table>"));
    }

    #[test]
    fn hostile_answers_execute_nothing() {
        safe(
            "<script>window.pwned = 1</script>",
            &["<script", "pwned = 1</"],
        );
        safe(
            "<img src=x onerror=\"window.pwned=1\">",
            &["onerror", "<img"],
        );
        safe("[click](javascript:window.pwned=1)", &["javascript:"]);
        safe("<a href=\"JaVaScRiPt:alert(1)\">x</a>", &["javascript:"]);
        safe("[x](data:text/html;base64,PHNjcmlwdD4=)", &["data:"]);
        safe(
            "<div style=\"background:url(https://evil.example/x.png)\">x</div>",
            &["style=", "evil.example/x.png)"],
        );
        safe(
            "<style>body{background:url(https://evil.example/)}</style>",
            &["<style", "background:url"],
        );
        safe(
            "<iframe src=\"https://evil.example\"></iframe>",
            &["<iframe"],
        );
        safe(
            "<svg onload=\"alert(1)\"><circle/></svg>",
            &["onload", "<svg"],
        );
        safe(
            "<form action=\"https://evil.example\"><button>go</button></form>",
            &["<form", "<button"],
        );
        let html = safe("![a cat](https://evil.example/cat.png)", &["<img"]);
        assert!(html.contains("image: a cat"), "{html}");
        assert!(
            html.contains("rel=\"noopener noreferrer nofollow\""),
            "{html}"
        );
    }

    #[test]
    fn escape_covers_attribute_and_text_contexts() {
        assert_eq!(
            escape("<a href=\"x\">'&'</a>"),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
    }
}
