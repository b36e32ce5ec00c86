//! End-to-end tests in a real browser: the HTML report (`versus report --format html`, opened
//! from disk) and the `versus view` web app with blind voting, driven in headless Chromium
//! through ChromeDriver with fantoccini. New browser cases go here, as one line each on top of
//! the helpers below (`Browser`'s methods, `assert_answers_side_by_side`, `cast_vote`, ...).
//!
//! They need Chromium and ChromeDriver (`apt-get install chromium chromium-driver`; `.ci/run`
//! installs them). Without them these tests fail, with that hint, unless
//! `VERSUS_SKIP_BROWSER_TESTS=1` is set, which skips them. `CHROME_BIN` and `CHROMEDRIVER` point at
//! other binaries. Screenshots are written to `target/screenshots/` for a person to look at.

// libc calls on this test's own child processes, each with its SAFETY comment.
#![allow(unsafe_code)]

mod support;

use std::io::{BufRead, BufReader};
use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::actions::{InputSource, KeyAction, KeyActions};
use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{json, Value};
use support::{toml_string, Sandbox, SuiteBuilder};
use versus_testkit::{FakeServer, Rule, Script};

// ---- the run both tests browse ----

/// The two contestants' ids. Their specs name other models (`hostile`, `plain`) and every answer
/// is scripted, so that neither id appears in an answer: the vote page must not give it away.
const FALCON: &str = "falcon";
const HERON: &str = "heron";

/// Everything an answer can try in a browser: script, event handlers, a `javascript:` link, and a
/// stylesheet that would paint the page red. Only the text around it should survive.
const HOSTILE_ANSWER: &str = r#"Greetings from the cliffs.

<script>window.__pwned=1</script>

<img src=x onerror="window.__pwned=1">

<svg onload="window.__pwned=1"><circle r="5"/></svg>

[click](javascript:window.__pwned=1)

<style>body, p, .answer-body { color: rgb(255, 0, 0) !important; background: rgb(255, 0, 0) !important; }</style>

The wind is strong up here."#;

/// The red the hostile stylesheet would paint, as `getComputedStyle` writes it.
const HOSTILE_RED: &str = "rgb(255, 0, 0)";

/// One task of the run: its id, category, prompt, extra TOML (checks), and what each contestant
/// answers (the judge prefers the answer starting "Plainly", which is always heron's).
struct TaskCase {
    id: &'static str,
    category: &'static str,
    prompt: &'static str,
    checks: &'static str,
    falcon: &'static str,
    heron: &'static str,
}

const TASKS: [TaskCase; 3] = [
    TaskCase {
        id: "greeting",
        category: "creative",
        prompt: "Greet the reader.",
        // The hostile answer says no hello: the one failed check of the run.
        checks: "[[tasks.checks]]\ntype = \"contains\"\nvalue = \"hello\"\nignore_case = true\n",
        falcon: HOSTILE_ANSWER,
        heron: "Plainly: Hello there, reader!",
    },
    TaskCase {
        id: "capital",
        category: "reasoning",
        prompt: "What is the capital of France?",
        checks: "[[tasks.checks]]\ntype = \"contains\"\nvalue = \"Paris\"\n",
        falcon: "The capital of France is Paris.",
        heron: "Plainly: Paris is the capital of France.",
    },
    TaskCase {
        id: "story",
        category: "creative",
        prompt: "Tell a one-line story.",
        checks: "",
        falcon: "A story: wind over the cliffs, and a dive.",
        heron: "Plainly: the tide came in, and the bird waited.",
    },
];

/// The text a person sees of each answer (first line of the hostile one).
fn visible_text(answer: &str) -> &str {
    answer.lines().next().unwrap_or_default()
}

/// A fake server scripted with [`TASKS`] and a judge that prefers heron's answers in either
/// order (so the run has decisive judge verdicts and ratings as well as checks).
fn scripted_server() -> FakeServer {
    let mut script = Script::new()
        .rule(
            Rule::model("judge")
                .prompt_contains("[The Start of Assistant A's Answer]\nPlainly")
                .answer("Answer A is plain and complete. [[A]]"),
        )
        .rule(
            Rule::model("judge")
                .prompt_contains("[The Start of Assistant B's Answer]\nPlainly")
                .answer("Answer B is plain and complete. [[B]]"),
        )
        .rule(Rule::model("judge").answer("Clear enough.\nRating: [[7]]"));
    for task in &TASKS {
        script = script
            .rule(
                Rule::model("hostile")
                    .prompt_contains(task.prompt)
                    .answer(task.falcon),
            )
            .rule(
                Rule::model("plain")
                    .prompt_contains(task.prompt)
                    .answer(task.heron),
            );
    }
    FakeServer::start_in_thread(script).expect("start the fake server")
}

/// A sandbox whose database holds one finished, scored run of [`TASKS`] on falcon and heron,
/// judged by `openai:judge` on the same server.
fn scored_hostile_run() -> (Sandbox, FakeServer) {
    let server = scripted_server();
    let sandbox = Sandbox::with_key().env("OPENAI_BASE_URL", &server.base_url());
    let mut suite = SuiteBuilder::new()
        .model_with(
            "openai-compatible:hostile",
            &server,
            &format!("id = {}\n", toml_string(FALCON)),
        )
        .model_with(
            "openai-compatible:plain",
            &server,
            &format!("id = {}\n", toml_string(HERON)),
        );
    for task in &TASKS {
        suite = suite.task_with(
            task.id,
            task.prompt,
            &format!("category = {}\n{}", toml_string(task.category), task.checks),
        );
    }
    sandbox.suite(suite.build());
    sandbox
        .run(&["--quiet", "--judge", "openai:judge"])
        .success();
    (sandbox, server)
}

// ---- the tests ----

#[tokio::test]
async fn report_shows_answers_side_by_side_filters_and_runs_nothing_hostile() {
    let Some(browser) = Browser::start().await else {
        return;
    };
    let (sandbox, _server) = scored_hostile_run();
    sandbox
        .versus(&["report", "--format", "html", "-o", "report.html"])
        .success();
    let report = sandbox.path().join("report.html");
    browser.open(&file_url(&report)).await;

    for task in &TASKS {
        let answers = format!(
            "section.task[data-task=\"{}\"] [data-testid=\"answer\"]",
            task.id
        );
        assert_answers_side_by_side(&browser, &answers, task).await;
    }
    // The criteria table, with the judge's and the checks' winner overall.
    let verdicts = browser
        .texts("table[data-testid=\"criteria\"] [data-testid=\"criterion-verdict\"]")
        .await;
    assert_eq!(
        verdicts.len(),
        12,
        "one verdict per criterion: {verdicts:?}"
    );
    // heron won every battle, but three battles cannot make that significant.
    assert!(
        verdicts[11]
            .starts_with("no significant difference (sign test falcon vs heron, n = 3: -1.00"),
        "overall: {verdicts:?}"
    );
    let how_sure = browser
        .texts("table[data-testid=\"criteria\"] [data-testid=\"criterion-how-sure\"]")
        .await;
    assert_eq!(how_sure.len(), 12, "{how_sure:?}");
    assert!(
        how_sure[11].starts_with("not significant: p = 1.000 adjusted, n = 3"),
        "{how_sure:?}"
    );

    // Filters: the category, then only tasks with a failed check (greeting: falcon says no hello).
    browser.select("#filter-category", "reasoning").await;
    assert_eq!(browser.visible_tasks().await, ["capital"]);
    browser.select("#filter-category", "creative").await;
    assert_eq!(browser.visible_tasks().await, ["greeting", "story"]);
    browser.select("#filter-category", "").await;
    assert_eq!(
        browser.visible_tasks().await,
        ["greeting", "capital", "story"]
    );
    browser.click("#filter-failed").await;
    assert_eq!(browser.visible_tasks().await, ["greeting"]);
    assert!(browser
        .text("#filter-count")
        .await
        .contains("1 of 3 tasks shown"));
    browser.click("#filter-failed").await;
    assert_eq!(
        browser.visible_tasks().await,
        ["greeting", "capital", "story"]
    );

    // The theme toggle flips the theme and the page's colours, and back.
    let theme_before = browser.theme().await;
    let background_before = browser.background().await;
    browser.click("#theme-toggle").await;
    assert_ne!(
        browser.theme().await,
        theme_before,
        "the toggle switches the theme"
    );
    assert_ne!(
        browser.background().await,
        background_before,
        "and the colours"
    );
    browser.click("#theme-toggle").await;
    assert_eq!(browser.theme().await, theme_before);

    assert_nothing_hostile_ran(&browser).await;
    assert_javascript_links_do_nothing(&browser).await;
    assert_eq!(
        browser.resource_loads().await,
        Vec::<String>::new(),
        "the report loads nothing"
    );

    browser.screenshot("report.png", FullPage::Yes).await;
    browser.close().await;
}

#[tokio::test]
async fn viewer_browses_the_run_and_votes_blind() {
    let Some(browser) = Browser::start().await else {
        return;
    };
    let (sandbox, _server) = scored_hostile_run();
    let viewer = Viewer::start(&sandbox);

    // Runs list → the run's matrix: every task x model cell.
    browser.open(&viewer.url("/")).await;
    assert_eq!(browser.count("[data-testid=\"run-row\"]").await, 1);
    browser.click("[data-testid=\"run-link\"]").await;
    browser.wait_for("table[data-testid=\"matrix\"]").await;
    browser.wait_until_ready().await;
    assert_eq!(
        browser
            .attributes("[data-testid=\"model-column\"]", "data-model")
            .await,
        [FALCON, HERON]
    );
    assert_eq!(
        browser.count("[data-testid=\"cell\"]").await,
        TASKS.len() * 2
    );
    browser.screenshot("matrix.png", FullPage::Yes).await;

    // One task, answers side by side, the hostile one inert.
    for task in &TASKS {
        browser
            .open(&viewer.url(&format!("/runs/1/tasks/{}", task.id)))
            .await;
        let answers = "[data-testid=\"answer-column\"] [data-testid=\"answer\"]";
        assert_answers_side_by_side(&browser, answers, task).await;
        assert_nothing_hostile_ran(&browser).await;
        assert_javascript_links_do_nothing(&browser).await;
    }

    // Blind votes: with the keyboard and with the buttons, each kind once.
    browser.open(&viewer.url("/vote")).await;
    browser.screenshot("vote.png", FullPage::No).await;
    browser
        .type_into("[data-testid=\"voter-name\"]", "Ada Lovelace")
        .await;
    let votes = [
        (Press::Key('1'), "model_a"),
        (Press::Button("vote-right"), "model_b"),
        (Press::Key('='), "tie"),
        (Press::Button("vote-bothbad"), "tie (bothbad)"),
    ];
    let mut revealed = Vec::new();
    for (index, (press, winner)) in votes.iter().enumerate() {
        revealed.push(cast_vote(&browser, press, winner).await);
        if index == 0 {
            browser.screenshot("vote-revealed.png", FullPage::No).await;
            // The next pair, by keyboard this time.
            browser.press('n').await;
        } else {
            browser.click("[data-testid=\"vote-next\"]").await;
        }
        browser.wait_for("[data-testid=\"vote-form\"]").await;
        browser.wait_until_ready().await;
    }

    // The store holds exactly these votes, as the page revealed them.
    let store = versus_store::Store::open(&sandbox.db()).expect("open the store");
    let stored = store.votes().expect("read the votes");
    assert_eq!(stored.len(), votes.len(), "{stored:?}");
    for ((vote, (_, winner)), (left, right)) in stored.iter().zip(&votes).zip(&revealed) {
        assert_eq!(vote.winner.as_str(), *winner, "{vote:?}");
        assert_eq!(vote.source.as_str(), "human", "{vote:?}");
        assert_eq!(vote.voter.as_deref(), Some("Ada Lovelace"), "{vote:?}");
        assert_eq!(
            (&vote.model_a, &vote.model_b),
            (left, right),
            "left is model_a"
        );
        assert_eq!(vote.run_id, Some(1));
        assert!(
            TASKS.iter().any(|t| vote.task_id.as_deref() == Some(t.id)),
            "{vote:?}"
        );
    }

    // The ratings take the votes at once.
    browser.open(&viewer.url("/ratings")).await;
    assert!(browser
        .text("[data-testid=\"ratings-battles\"]")
        .await
        .contains(&format!("{} votes", votes.len())));
    let mut rated = browser
        .attributes("[data-testid=\"rating-row\"]", "data-model")
        .await;
    rated.sort();
    assert_eq!(rated, [FALCON, HERON]);
    for battles in browser
        .attributes("[data-testid=\"rating-row\"]", "data-battles")
        .await
    {
        let battles: usize = battles.parse().expect("a battle count");
        assert!(battles >= votes.len(), "{battles} battles");
    }
    browser.close().await;
}

// ---- what the tests check, one helper per feature ----

/// The answers `selector` finds are the task's two, falcon's then heron's, each showing its text,
/// laid out side by side (same row, different columns).
async fn assert_answers_side_by_side(browser: &Browser, selector: &str, task: &TaskCase) {
    let answers = browser.all(selector).await;
    assert_eq!(answers.len(), 2, "{}: two answers", task.id);
    let mut models = Vec::new();
    let mut boxes = Vec::new();
    for (answer, expected) in answers.iter().zip([task.falcon, task.heron]) {
        models.push(answer.attr("data-model").await.ok().flatten());
        let text = answer.text().await.expect("an answer's text");
        assert!(
            text.contains(visible_text(expected)),
            "{}: {text:?} lacks {:?}",
            task.id,
            visible_text(expected)
        );
        boxes.push(answer.rectangle().await.expect("an answer's box"));
    }
    assert_eq!(
        models,
        [Some(FALCON.to_string()), Some(HERON.to_string())],
        "{}",
        task.id
    );
    let ((left_x, left_y, left_width, _), (right_x, right_y, _, _)) = (boxes[0], boxes[1]);
    assert!(
        right_x >= left_x + left_width - 1.0 && (right_y - left_y).abs() < 40.0,
        "{}: the answers are not side by side: {boxes:?}",
        task.id
    );
}

/// No handler, script or stylesheet from an answer ran: the flag is unset and nothing is red.
async fn assert_nothing_hostile_ran(browser: &Browser) {
    assert_eq!(
        browser.js("return typeof window.__pwned;").await,
        "undefined",
        "an answer ran script"
    );
    let painted = browser
        .js(&format!(
            "return Array.from(document.querySelectorAll('body, body *'))
                .filter(e => {{ const s = getComputedStyle(e);
                    return s.color === '{HOSTILE_RED}' || s.backgroundColor === '{HOSTILE_RED}'; }})
                .map(e => e.tagName);"
        ))
        .await;
    assert_eq!(painted, json!([]), "an answer's stylesheet applied");
}

/// Links that survived sanitizing have no `javascript:` target, and clicking the one the hostile
/// answer wrote (as text, if at all) neither runs it nor leaves the page.
async fn assert_javascript_links_do_nothing(browser: &Browser) {
    assert_eq!(browser.count("a[href^=\"javascript:\" i]").await, 0);
    let page = browser.client.current_url().await.expect("the current URL");
    for link in browser.all("a").await {
        if link.text().await.unwrap_or_default() == "click" {
            link.click().await.expect("click the link");
        }
    }
    assert_eq!(
        browser.js("return typeof window.__pwned;").await,
        "undefined"
    );
    assert_eq!(
        browser.client.current_url().await.expect("the current URL"),
        page
    );
}

/// How a vote is given: a keyboard shortcut, or the button with this test id.
enum Press {
    Key(char),
    Button(&'static str),
}

/// On a fresh vote page: the names are hidden; vote; the names are revealed with the recorded
/// winner. Returns the revealed (left, right) models.
async fn cast_vote(browser: &Browser, press: &Press, winner: &str) -> (String, String) {
    let page = format!(
        "{}\n{}",
        browser.js("return document.body.innerText;").await,
        browser.client.source().await.expect("the page source")
    );
    for model in [FALCON, HERON] {
        assert!(!page.contains(model), "{model} is named before the vote");
    }
    assert_eq!(browser.count("[data-testid=\"answer\"]").await, 2);
    match press {
        Press::Key(key) => {
            // The shortcuts are off while typing in a field, as they should be.
            browser.js("document.activeElement.blur();").await;
            browser.press(*key).await;
        }
        Press::Button(testid) => browser.click(&format!("[data-testid=\"{testid}\"]")).await,
    }
    let result = browser.wait_for("[data-testid=\"vote-result\"]").await;
    browser.wait_until_ready().await;
    assert_eq!(
        result.attr("data-winner").await.ok().flatten().as_deref(),
        Some(winner)
    );
    let left = browser.text("[data-testid=\"reveal-left\"]").await;
    let right = browser.text("[data-testid=\"reveal-right\"]").await;
    let mut pair = [left.as_str(), right.as_str()];
    pair.sort();
    assert_eq!(pair, [FALCON, HERON], "both names are revealed");
    assert_nothing_hostile_ran(browser).await;
    (left, right)
}

// ---- the browser ----

const WINDOW: (u32, u32) = (1400, 1000);
/// Full-page screenshots stop here, so that a very long page still gives a file one can open.
const MAX_SCREENSHOT_HEIGHT: u32 = 16_000;
const READY_TIMEOUT: Duration = Duration::from_secs(15);

enum FullPage {
    Yes,
    No,
}

/// A headless Chromium session with its own ChromeDriver and a fresh profile.
struct Browser {
    client: Client,
    _driver: ChromeDriver,
    _profile: tempfile::TempDir,
}

impl Browser {
    /// A browser, or `None` when Chromium or ChromeDriver is missing and
    /// `VERSUS_SKIP_BROWSER_TESTS=1` says to skip.
    async fn start() -> Option<Browser> {
        let (chrome, chromedriver) = browser_binaries()?;
        let driver = ChromeDriver::start(&chromedriver);
        let profile = tempfile::Builder::new()
            .prefix("versus-chromium-")
            .tempdir()
            .expect("a profile folder");
        let args = [
            "--headless=new".to_string(),
            "--no-sandbox".to_string(),
            "--disable-gpu".to_string(),
            "--disable-dev-shm-usage".to_string(),
            "--disable-quic".to_string(),
            "--no-first-run".to_string(),
            // Without these, Chromium's own background connections exhaust what this machine
            // allows and page connections are refused.
            "--disable-background-networking".to_string(),
            "--disable-component-update".to_string(),
            "--disable-sync".to_string(),
            format!("--user-data-dir={}", profile.path().display()),
            format!("--window-size={},{}", WINDOW.0, WINDOW.1),
        ];
        let capabilities = json!({
            "browserName": "chrome",
            "goog:chromeOptions": { "binary": chrome, "args": args },
        });
        let Value::Object(capabilities) = capabilities else {
            unreachable!("a JSON object")
        };
        // Two crypto providers are compiled in (fantoccini's aws-lc-rs, reqwest's ring), so
        // rustls cannot pick one itself. Err means a test on another thread installed it first.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = ClientBuilder::rustls()
            .expect("a rustls HTTP client")
            .capabilities(capabilities)
            .connect(&driver.url())
            .await
            .unwrap_or_else(|e| panic!("cannot start Chromium through ChromeDriver: {e}"));
        Some(Browser {
            client,
            _driver: driver,
            _profile: profile,
        })
    }

    /// Opens `url` and waits until the page's script has run.
    async fn open(&self, url: &str) {
        self.client
            .goto(url)
            .await
            .unwrap_or_else(|e| panic!("cannot open {url}: {e}"));
        self.wait_until_ready().await;
    }

    /// Waits for `window.__versusReady`, which the report's and the viewer's scripts set last.
    async fn wait_until_ready(&self) {
        let deadline = Instant::now() + READY_TIMEOUT;
        while self.js("return window.__versusReady === true;").await != true {
            assert!(
                Instant::now() < deadline,
                "the page never set window.__versusReady"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Runs a script in the page and returns its value.
    async fn js(&self, script: &str) -> Value {
        self.client
            .execute(script, Vec::new())
            .await
            .unwrap_or_else(|e| panic!("script failed: {e}\n{script}"))
    }

    async fn all(&self, css: &str) -> Vec<Element> {
        self.client
            .find_all(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("cannot look for {css}: {e}"))
    }

    async fn count(&self, css: &str) -> usize {
        self.all(css).await.len()
    }

    async fn find(&self, css: &str) -> Element {
        self.client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no {css} on the page: {e}"))
    }

    /// Waits for an element that a navigation brings.
    async fn wait_for(&self, css: &str) -> Element {
        match self
            .client
            .wait()
            .at_most(READY_TIMEOUT)
            .for_element(Locator::Css(css))
            .await
        {
            Ok(element) => element,
            Err(e) => panic!(
                "{css} never appeared ({e}); the page at {} says:\n{}",
                self.client
                    .current_url()
                    .await
                    .map_or_else(|e| e.to_string(), |u| u.to_string()),
                self.js("return document.body.innerText;").await
            ),
        }
    }

    /// The visible text of the first element matching `css`.
    async fn text(&self, css: &str) -> String {
        self.find(css)
            .await
            .text()
            .await
            .unwrap_or_else(|e| panic!("no text for {css}: {e}"))
    }

    /// The visible text of every element matching `css`.
    async fn texts(&self, css: &str) -> Vec<String> {
        let mut texts = Vec::new();
        for element in self.all(css).await {
            texts.push(element.text().await.unwrap_or_default());
        }
        texts
    }

    /// One attribute of every element matching `css`.
    async fn attributes(&self, css: &str, name: &str) -> Vec<String> {
        let mut values = Vec::new();
        for element in self.all(css).await {
            values.push(element.attr(name).await.ok().flatten().unwrap_or_default());
        }
        values
    }

    async fn click(&self, css: &str) {
        self.find(css)
            .await
            .click()
            .await
            .unwrap_or_else(|e| panic!("cannot click {css}: {e}"));
    }

    async fn type_into(&self, css: &str, text: &str) {
        self.find(css)
            .await
            .send_keys(text)
            .await
            .unwrap_or_else(|e| panic!("cannot type into {css}: {e}"));
    }

    /// Picks an option of a `<select>` by value, as a person would (the change event fires).
    async fn select(&self, css: &str, value: &str) {
        self.find(css)
            .await
            .select_by_value(value)
            .await
            .unwrap_or_else(|e| panic!("cannot pick {value:?} in {css}: {e}"));
    }

    /// Presses and releases one key on whatever has the focus.
    async fn press(&self, key: char) {
        let keys = KeyActions::new("keyboard".to_string())
            .then(KeyAction::Down { value: key })
            .then(KeyAction::Up { value: key });
        self.client
            .perform_actions(keys)
            .await
            .unwrap_or_else(|e| panic!("cannot press {key:?}: {e}"));
    }

    /// The report's tasks that are rendered (not hidden by a filter), in page order.
    async fn visible_tasks(&self) -> Vec<String> {
        let tasks = self
            .js(
                "return Array.from(document.querySelectorAll('section.task'))
                .filter(t => t.getClientRects().length > 0)
                .map(t => t.dataset.task);",
            )
            .await;
        serde_json::from_value(tasks).expect("a list of task ids")
    }

    /// The theme in force: the one chosen on `<html>`, or the system's.
    async fn theme(&self) -> Value {
        self.js("return document.documentElement.getAttribute('data-theme')
                || (matchMedia('(prefers-color-scheme: dark)').matches ? 'dark' : 'light');")
            .await
    }

    async fn background(&self) -> Value {
        self.js("return getComputedStyle(document.body).backgroundColor;")
            .await
    }

    /// Every resource the page fetched or tried to (Resource Timing lists failures too).
    async fn resource_loads(&self) -> Vec<String> {
        let names = self
            .js("return performance.getEntriesByType('resource').map(e => e.name);")
            .await;
        serde_json::from_value(names).expect("a list of URLs")
    }

    /// Saves a PNG to `target/screenshots/NAME`: the window, or the whole page (the window made
    /// as tall as the page for the shot).
    async fn screenshot(&self, name: &str, full_page: FullPage) {
        if let FullPage::Yes = full_page {
            let page = self
                .js("return Math.ceil(document.documentElement.scrollHeight);")
                .await;
            let inner = self.js("return window.innerHeight;").await;
            let (page, inner) = (
                page.as_u64().unwrap_or(0) as u32,
                inner.as_u64().unwrap_or(0) as u32,
            );
            let frame = WINDOW.1.saturating_sub(inner);
            let height = (page + frame).clamp(WINDOW.1, MAX_SCREENSHOT_HEIGHT);
            self.resize(WINDOW.0, height).await;
        }
        let png = self
            .client
            .screenshot()
            .await
            .unwrap_or_else(|e| panic!("cannot take a screenshot: {e}"));
        if let FullPage::Yes = full_page {
            self.resize(WINDOW.0, WINDOW.1).await;
        }
        let folder = screenshot_folder();
        std::fs::create_dir_all(&folder).expect("create target/screenshots");
        let path = folder.join(name);
        std::fs::write(&path, png).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    }

    async fn resize(&self, width: u32, height: u32) {
        self.client
            .set_window_size(width, height)
            .await
            .unwrap_or_else(|e| panic!("cannot resize the window to {width}x{height}: {e}"));
    }

    /// Ends the session, which closes Chromium (ChromeDriver is killed on drop either way).
    async fn close(self) {
        let Browser {
            client,
            _driver,
            _profile,
        } = self;
        client.close().await.expect("close the browser");
    }
}

/// `target/screenshots`, beside the test's scratch folder `target/tmp`.
fn screenshot_folder() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("CARGO_TARGET_TMPDIR is inside target/")
        .join("screenshots")
}

fn file_url(path: &Path) -> String {
    format!("file://{}", path.display())
}

/// Chromium and ChromeDriver, or `None` to skip; panics with an install hint when they are
/// missing and skipping was not asked for.
fn browser_binaries() -> Option<(PathBuf, PathBuf)> {
    let chrome = std::env::var_os("CHROME_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"));
    let chromedriver = std::env::var_os("CHROMEDRIVER")
        .map(PathBuf::from)
        .or_else(|| find_in_path("chromedriver"));
    match chromedriver {
        Some(chromedriver) if chrome.is_file() => return Some((chrome, chromedriver)),
        _ => {}
    }
    if std::env::var("VERSUS_SKIP_BROWSER_TESTS").as_deref() == Ok("1") {
        eprintln!("skipped: no Chromium or ChromeDriver, and VERSUS_SKIP_BROWSER_TESTS=1");
        return None;
    }
    panic!(
        "the browser tests need Chromium ({}) and ChromeDriver (`chromedriver` on PATH): \
         install them with `apt-get install chromium chromium-driver` (CHROME_BIN and \
         CHROMEDRIVER point elsewhere), or set VERSUS_SKIP_BROWSER_TESTS=1 to skip these tests",
        chrome.display()
    );
}

fn find_in_path(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|candidate| candidate.is_file())
}

/// A ChromeDriver on a free local port, in its own process group so that dropping it also ends
/// the Chromium it started, even when a test fails before closing its session.
struct ChromeDriver {
    child: Child,
    port: u16,
}

impl ChromeDriver {
    fn start(program: &Path) -> ChromeDriver {
        let port = free_port();
        let child = Command::new(program)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", program.display()));
        let driver = ChromeDriver { child, port };
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "ChromeDriver did not listen on port {port}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        driver
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for ChromeDriver {
    fn drop(&mut self) {
        // The group is the driver's own pid (process_group(0)): the driver and its browser.
        // SAFETY: kill(2) with a negative pid signals that process group and touches no memory.
        unsafe {
            libc::kill(-(self.child.id() as i32), libc::SIGKILL);
        }
        let _ = self.child.wait();
    }
}

/// A port nobody listens on right now (the listener is closed before the port is used).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free local port")
        .port()
}

// ---- the viewer ----

/// A running `versus view --port 0`, killed when dropped.
struct Viewer {
    child: Child,
    /// Kept open: the server may still write to it.
    _stdout: BufReader<ChildStdout>,
    /// `http://127.0.0.1:PORT`, from the first line it prints.
    base: String,
}

impl Viewer {
    fn start(sandbox: &Sandbox) -> Viewer {
        let mut child = sandbox
            .command(&["view", "--port", "0", "--quiet"])
            .stderr(Stdio::null())
            .spawn()
            .expect("start versus view");
        let mut stdout = BufReader::new(child.stdout.take().expect("stdout is piped"));
        let mut first = String::new();
        stdout
            .read_line(&mut first)
            .expect("versus view prints its URL");
        let base = first.trim().trim_end_matches('/').to_string();
        assert!(
            base.starts_with("http://127.0.0.1:"),
            "not a URL: {first:?}"
        );
        Viewer {
            child,
            _stdout: stdout,
            base,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }
}

impl Drop for Viewer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
