//! The HTML report through the real binary: a scripted model whose answers (and a judge whose
//! verdicts, and a suite whose ids) try to run script or load remote content, and a page that
//! must do neither; and `--format html` on stdout. How answers are sanitized is tested beside
//! `render.rs`, the page's parts in `report/html/tests.rs`; this file holds the end-to-end line.
//! Inertness is `versus_testkit::html`'s one check, the same the unit tests use.

mod support;

use support::{Sandbox, SuiteBuilder};
use versus_testkit::html::{active_content, assert_inert, Own};
use versus_testkit::{FakeServer, Rule, Script};

/// The report's own inline style and script, exactly as the binary embeds them.
const STYLE: &str = include_str!("../src/report/assets/report.css");
const SCRIPT: &str = include_str!("../src/report/assets/report.js");

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
    assert_inert(&page, &Own::report_page(STYLE, SCRIPT));
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

#[test]
fn the_checker_sees_active_content() {
    let own = "<link rel=\"icon\" href=\"data:,\"><style>a{}</style><script>1</script>";
    let allowed = Own::report_page("a{}", "1");
    assert!(active_content(own, &allowed).is_empty());
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
            !active_content(&format!("{own}{bad}"), &allowed).is_empty(),
            "missed {bad}"
        );
    }
}
