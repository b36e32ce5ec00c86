//! The HTML report through the real binary: a scripted model whose answers (and a judge whose
//! verdicts, and a suite whose ids) try to run script or load remote content, and a page that
//! must do neither; and `--format html` on stdout. How answers are sanitized is tested beside
//! `render.rs`, the page's parts beside `report/html.rs`; this file holds the end-to-end line.

mod support;

use support::{Sandbox, SuiteBuilder};
use versus_testkit::{FakeServer, Rule, Script};

/// Everything an answer can try: script, event handlers, script and data URLs, remote styles,
/// remote images, frames, and code that tries to close its own block.
const HOSTILE_ANSWER: &str = r#"<script>window.__pwned=1</script>

<img src=x onerror="window.__pwned=1">

[click me](javascript:window.__pwned=1)

<a href="data:text/html,<script>window.__pwned=1</script>">data link</a>

<style>@import url(https://evil.example/i.css)</style>

<div style="background:url(https://evil.example/a.png)">background</div>

![remote picture](https://evil.example/pic.png)

<iframe src="https://evil.example/frame"></iframe>

<svg onload="window.__pwned=1"><image href="https://evil.example/s.png"/></svg>

[a fine link](https://example.org/ok)

```python
print("</code><script>window.__pwned=1</script>")
```
"#;

const HOSTILE_JUDGE: &str = "<script>window.__pwned=3</script><img src=https://evil.example/j.png> The first is better. [[A]]";

const HOSTILE_MODEL_ID: &str = "<script>window.__pwned=2</script>";
const HOSTILE_TASK_ID: &str = "<script>window.__pwned=4</script>";

fn hostile_server() -> FakeServer {
    FakeServer::start_in_thread(
        Script::new()
            .rule(Rule::model("hostile").answer(HOSTILE_ANSWER))
            .rule(Rule::model("plain").answer("A plain answer."))
            .rule(Rule::model("judge").answer(HOSTILE_JUDGE)),
    )
    .expect("start the fake server")
}

#[test]
fn hostile_answers_execute_nothing_and_load_nothing() {
    let server = hostile_server();
    let sandbox = Sandbox::new();
    let mut suite = SuiteBuilder::new()
        .model_with(
            "openai-compatible:hostile",
            &server,
            &format!("id = {}\n", support::toml_string(HOSTILE_MODEL_ID)),
        )
        .model_with(
            "openai-compatible:plain",
            &server,
            "modalities = [\"text\", \"image\"]\n",
        )
        .model_with("openai-compatible:judge", &server, "id = \"judge-model\"\n")
        .task_with(
            HOSTILE_TASK_ID,
            "Say something.",
            "category = \"\\\"><img src=x onerror=alert(1)>\"\n",
        )
        .task_with(
            "photo",
            "Describe the picture.",
            "images = [\"https://evil.example/photo.png\"]\n",
        )
        .build();
    suite.push('\n');
    sandbox.suite(suite);
    sandbox.run(&["--judge", "judge-model"]).success();
    sandbox
        .versus(&["report", "--format", "html", "-o", "report.html"])
        .success();
    let page = std::fs::read_to_string(sandbox.path().join("report.html"))
        .expect("the report was written");

    // The policy that would stop anything that slipped through.
    assert!(
        page.contains("<meta http-equiv=\"Content-Security-Policy\" content=\"default-src &#39;none&#39;; style-src &#39;sha256-"),
        "no CSP meta tag"
    );
    assert!(page.contains("script-src &#39;sha256-"));

    // Nothing active, nothing that loads.
    assert_eq!(active_content(&page), Vec::<String>::new());
    let lower = page.to_ascii_lowercase();
    assert_eq!(
        lower.matches("<script").count(),
        1,
        "only the report's own script"
    );
    assert_eq!(
        lower.matches("<style").count(),
        1,
        "only the report's own style"
    );
    for needle in ["url(", "@import", "javascript:", "data:text"] {
        assert!(!lower.contains(needle), "{needle:?} is in the page");
    }

    // What is left is shown as text, or as a plain link.
    assert!(page.contains(
        "<a href=\"https://example.org/ok\" rel=\"noopener noreferrer nofollow\">a fine link</a>"
    ));
    assert!(
        page.contains("image: remote picture"),
        "images in answers become links"
    );
    assert!(
        page.contains("&lt;script&gt;window.__pwned=2&lt;/script&gt;"),
        "model id as text"
    );
    assert!(
        page.contains("&lt;script&gt;window.__pwned=4&lt;/script&gt;"),
        "task id as text"
    );
    assert!(
        page.contains("&lt;script&gt;window.__pwned=3&lt;/script&gt;"),
        "the judge's output as text"
    );
    assert!(
        page.contains("&lt;/code&gt;&lt;script&gt;"),
        "code that closes its own block stays text"
    );
    assert!(
        page.contains("<code>https://evil.example/photo.png</code>"),
        "suite images named"
    );
    assert!(page.contains("data-testid=\"answer\""));
    assert!(page.contains("window.__versusReady = true"));
}

#[test]
fn html_goes_to_stdout_without_output_flag() {
    let server = FakeServer::start_in_thread(Script::new()).expect("start the fake server");
    let sandbox = Sandbox::with_key();
    sandbox.suite(SuiteBuilder::standard(&server).build());
    sandbox.run(&[]).success();
    let stdout = sandbox
        .versus(&["report", "--format", "html"])
        .success()
        .stdout;
    assert!(stdout.starts_with("<!DOCTYPE html>"), "{stdout}");
    assert!(stdout.trim_end().ends_with("</html>"));
    assert_eq!(stdout.matches("data-testid=\"answer\"").count(), 6);
    sandbox
        .versus(&["report", "--format", "html", "-o", "same.html"])
        .success();
    let file = std::fs::read_to_string(sandbox.path().join("same.html")).expect("written");
    assert_eq!(file, stdout, "the file and stdout hold the same page");
}

/// Every tag of `page` that could run or load something, besides the report's single `<style>`
/// and `<script>` in the head (whose contents are skipped): elements that load or embed,
/// event-handler, `style` and `src`-like attributes, links to `javascript:`/`data:`, and any
/// URL in an attribute other than `href`. Text is escaped, so every `<` outside those two
/// blocks opens a real tag.
fn active_content(page: &str) -> Vec<String> {
    const LOADING: &[&str] = &[
        "script",
        "style",
        "img",
        "iframe",
        "frame",
        "object",
        "embed",
        "link",
        "base",
        "form",
        "video",
        "audio",
        "source",
        "track",
        "image",
        "use",
        "foreignobject",
        "svg:image",
        "picture",
        "portal",
        "applet",
        "meta",
    ];
    let mut problems = Vec::new();
    let lower = page.to_ascii_lowercase();
    let mut rest = lower.as_str();
    let mut own_blocks = 0;
    while let Some(open) = rest.find('<') {
        rest = &rest[open + 1..];
        let end = tag_end(rest);
        let tag = &rest[..end];
        rest = &rest[end.min(rest.len())..];
        let (name, attributes) = parse_tag(tag);
        // The report's own blocks: bare tags, contents skipped to their end tag.
        if (name == "style" || name == "script") && attributes.is_empty() {
            own_blocks += 1;
            let close = format!("</{name}>");
            rest = rest.find(&close).map_or("", |at| &rest[at + close.len()..]);
            continue;
        }
        let allowed = match name.as_str() {
            "link" => {
                attributes
                    == [
                        ("rel".into(), "icon".into()),
                        ("href".into(), "data:,".into()),
                    ]
            }
            "meta" => attributes
                .iter()
                .all(|(n, v)| n != "http-equiv" || v == "content-security-policy"),
            _ => false,
        };
        if LOADING.contains(&name.as_str()) && !allowed {
            problems.push(format!("<{tag}>"));
        }
        for (attribute, value) in &attributes {
            let loads = attribute.starts_with("on")
                || [
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
                ]
                .contains(&attribute.as_str());
            let bad_link = attribute == "href"
                && ["javascript:", "data:", "vbscript:"]
                    .iter()
                    .any(|scheme| value.trim_start().starts_with(scheme))
                && name != "link";
            let url_elsewhere =
                attribute != "href" && (value.contains("http:") || value.contains("https:"));
            if loads || bad_link || url_elsewhere {
                problems.push(format!("<{tag}>: {attribute}"));
            }
        }
    }
    if own_blocks != 2 {
        problems.push(format!(
            "{own_blocks} bare <style>/<script> blocks, expected 2"
        ));
    }
    problems
}

/// Where the tag starting at `text` (just after its `<`) ends: its `>` outside quoted values.
fn tag_end(text: &str) -> usize {
    let mut quote = None;
    for (at, c) in text.char_indices() {
        match (quote, c) {
            (None, '"' | '\'') => quote = Some(c),
            (Some(q), _) if c == q => quote = None,
            (None, '>') => return at,
            _ => {}
        }
    }
    text.len()
}

/// A tag's name and its attributes (name, unquoted value).
fn parse_tag(tag: &str) -> (String, Vec<(String, String)>) {
    let tag = tag.trim_end_matches('/');
    let name_end = tag
        .find(|c: char| c.is_whitespace() || c == '/')
        .unwrap_or(tag.len());
    let name = tag[..name_end].to_string();
    let mut attributes = Vec::new();
    let mut rest = &tag[name_end..];
    loop {
        rest = rest.trim_start_matches(|c: char| c.is_whitespace() || c == '/');
        if rest.is_empty() {
            break;
        }
        let key_end = rest
            .find(|c: char| c.is_whitespace() || c == '=')
            .unwrap_or(rest.len());
        let key = rest[..key_end].to_string();
        rest = rest[key_end..].trim_start();
        let mut value = String::new();
        if let Some(after) = rest.strip_prefix('=') {
            let after = after.trim_start();
            let (text, remaining) = match after.chars().next() {
                Some(q @ ('"' | '\'')) => {
                    let close = after[1..].find(q).map_or(after.len(), |at| at + 1);
                    (&after[1..close], &after[(close + 1).min(after.len())..])
                }
                _ => {
                    let end = after.find(char::is_whitespace).unwrap_or(after.len());
                    (&after[..end], &after[end..])
                }
            };
            value = text.to_string();
            rest = remaining;
        }
        attributes.push((key, value));
    }
    (name, attributes)
}

#[test]
fn the_checker_sees_active_content() {
    let own = "<style>a{}</style><script>1</script>";
    assert!(active_content(own).is_empty());
    for bad in [
        "<script src=\"x.js\"></script>",
        "<img src=x>",
        "<p onclick=\"x()\">",
        "<div style=\"color:red\">",
        "<a href=\"javascript:x()\">",
        "<a href=\"data:text/html,x\">",
        "<link rel=\"stylesheet\" href=\"https://evil.example/s.css\">",
        "<meta http-equiv=\"refresh\" content=\"0;url=https://evil.example\">",
        "<svg><image href=\"https://evil.example/i.png\"/></svg>",
        "<p title=x data-x=\"https://evil.example\">",
        "<script>2</script>",
    ] {
        assert!(
            !active_content(&format!("{own}{bad}")).is_empty(),
            "missed {bad}"
        );
    }
}
