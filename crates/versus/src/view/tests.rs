//! Handler tests for `versus view`, through the whole app (guard, headers, routes) with
//! `tower::ServiceExt::oneshot`, on databases built with the store API. One helper per feature:
//! [`Fixture`] makes databases and runs, [`Client`] is a browser (cookies, same-origin headers),
//! [`assert_inert`] checks a page holds no active content but the app's own (the one check,
//! `versus_testkit::html`, that the HTML report's tests use too).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{header, HeaderMap, Request, StatusCode};
use axum::Router;
use tower::ServiceExt;
use versus_core::{
    Completion, ErrorKind, FinishReason, GenerationParams, Suite, SuiteSource, Task, Timings, Usage,
};
use versus_store::{
    CellId, CellOutcome, JudgementRecord, NewRun, RunId, RunStatus, ScoreRecord, Store, VoteRecord,
};

use super::page::url_encode;
use super::{app, Access, ViewState};
use versus_core::RunPlan;
use versus_testkit::html::{active_content, Own};

// ---- databases ----

/// A database file in a temporary folder.
struct Fixture {
    _dir: tempfile::TempDir,
    db: PathBuf,
}

/// How one cell ends: an answer, or a failure.
type Answer = Option<String>;

impl Fixture {
    fn new() -> Fixture {
        let dir = tempfile::tempdir().expect("temporary folder");
        let db = dir.path().join("versus.db");
        Store::open(&db).expect("create the database");
        Fixture { _dir: dir, db }
    }

    fn store(&self) -> Store {
        Store::open(&self.db).expect("open the database")
    }

    /// The app on 127.0.0.1:7777 without a token.
    fn app(&self) -> Router {
        app(ViewState::new(
            self.db.clone(),
            Access::new(None, loopback()),
        ))
    }

    fn app_with_token(&self, token: &str) -> Router {
        app(ViewState::new(
            self.db.clone(),
            Access::new(Some(token.to_string()), loopback()),
        ))
    }

    /// A finished run of `tasks` (id, category) on `models`, each cell as `answer` says.
    fn run(
        &self,
        models: &[&str],
        tasks: &[(String, String)],
        answer: impl Fn(&str, &str) -> Answer,
    ) -> RunId {
        self.sampled_run(models, tasks, 1, |task, model, _| answer(task, model))
    }

    /// A finished run asking every task `samples` times, each answer as `answer` says.
    fn sampled_run(
        &self,
        models: &[&str],
        tasks: &[(String, String)],
        samples: u32,
        answer: impl Fn(&str, &str, u32) -> Answer,
    ) -> RunId {
        let mut store = self.store();
        let plan = RunPlan {
            suite: suite(models, tasks),
            overrides: GenerationParams::default(),
        };
        let cells: Vec<CellId> = tasks
            .iter()
            .flat_map(|(task, _)| {
                models.iter().flat_map(move |model| {
                    (0..samples).map(move |sample| CellId::sample(task, *model, sample))
                })
            })
            .collect();
        let model_ids: Vec<String> = models.iter().map(|m| m.to_string()).collect();
        let fingerprint = format!("plan-{}", store.run_count().unwrap_or(0));
        let run = store
            .create_run(&NewRun {
                suite_name: "view-test",
                suite_hash: "hash",
                suite_text: "",
                plan_fingerprint: &fingerprint,
                plan: &plan,
                models: &model_ids,
                tool_version: "test",
                cells: &cells,
            })
            .expect("create the run");
        let outcomes: Vec<(CellId, CellOutcome)> = cells
            .iter()
            .map(|cell| {
                let outcome = match answer(&cell.task_id, &cell.model_id, cell.sample) {
                    Some(text) => completed(run, cell, &text),
                    None => CellOutcome::Failed {
                        kind: ErrorKind::Server,
                        message: "HTTP 500 after 1 attempt".into(),
                        attempts: 1,
                    },
                };
                (cell.clone(), outcome)
            })
            .collect();
        store
            .record_cells(run, &outcomes)
            .expect("record the cells");
        store
            .set_run_status(run, RunStatus::Finished)
            .expect("finish the run");
        run
    }

    /// A run where every model answers every task with `"{model} on {task}"`-free text.
    fn simple_run(&self, models: &[&str], tasks: &[(String, String)]) -> RunId {
        self.run(models, tasks, |task, model| {
            Some(format!("Answer number {} to {task}.", model.len()))
        })
    }

    fn scores(&self, run: RunId, task: &str, model: &str, scores: &[(&str, f64, Option<bool>)]) {
        let records: Vec<ScoreRecord> = scores
            .iter()
            .map(|(scorer, value, passed)| ScoreRecord {
                task_id: task.into(),
                model_id: model.into(),
                sample: 0,
                scorer: scorer.to_string(),
                value: Some(*value),
                passed: *passed,
                explanation: format!("{scorer} explained"),
            })
            .collect();
        self.store()
            .replace_scores(run, &CellId::first(task, model), &records)
            .expect("store scores");
    }

    fn votes(&self) -> Vec<VoteRecord> {
        self.store().votes().expect("read votes")
    }
}

fn loopback() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 7777))
}

/// `n` tasks `t1`... with categories cycling through `categories`.
fn tasks(n: usize, categories: &[&str]) -> Vec<(String, String)> {
    (1..=n)
        .map(|i| {
            (
                format!("t{i}"),
                categories[(i - 1) % categories.len()].to_string(),
            )
        })
        .collect()
}

/// A suite of `models` (openai specs, with a price) and `tasks`, all with one prompt.
fn suite(models: &[&str], tasks: &[(String, String)]) -> Suite {
    let mut toml = String::from("name = \"view-test\"\n");
    for model in models {
        toml.push_str(&format!(
            "[[models]]\nid = \"{model}\"\nspec = \"openai:gpt-x\"\nprice = {{ input = 1.0, output = 2.0 }}\n"
        ));
    }
    toml.push_str(
        "[[tasks]]\nid = \"template\"\ncategory = \"reasoning\"\nprompt = \"Why is the sky blue?\"\nreference = \"Rayleigh scattering.\"\n",
    );
    let mut suite = Suite::parse(&SuiteSource {
        origin: "view-test.toml",
        text: &toml,
    })
    .expect("the test suite parses");
    let template = suite.tasks[0].clone();
    suite.tasks = tasks
        .iter()
        .map(|(id, category)| Task {
            id: id.clone(),
            category: category.clone(),
            ..template.clone()
        })
        .collect();
    suite
}

fn completed(run: RunId, cell: &CellId, text: &str) -> CellOutcome {
    CellOutcome::Completed {
        key: format!("{run}/{}/{}/{}", cell.task_id, cell.model_id, cell.sample),
        model_spec: "openai:gpt-x".into(),
        request_json: "{}".into(),
        completion: Completion {
            text: text.into(),
            finish_reason: FinishReason::Stop,
            usage: Some(Usage::new(12, 34)),
            timings: Timings {
                latency_ms: 1234.0,
                ttft_ms: Some(200.0),
            },
            served_model: None,
            attempts: 1,
            thinking: None,
            server_timings: None,
            via_batch: false,
        },
        cached: false,
    }
}

// ---- a browser ----

/// A response, its body as text.
struct Page {
    status: StatusCode,
    headers: HeaderMap,
    body: String,
}

/// Sends requests as a browser on this origin would: `Host`, the cookies it was given, and for
/// POSTs `Origin` and `Sec-Fetch-Site: same-origin` unless told otherwise.
struct Client {
    app: Router,
    cookies: BTreeMap<String, String>,
    bearer: Option<String>,
}

const SAME_ORIGIN: &[(&str, &str)] = &[
    ("origin", "http://127.0.0.1:7777"),
    ("sec-fetch-site", "same-origin"),
];

impl Client {
    fn new(app: Router) -> Client {
        Client {
            app,
            cookies: BTreeMap::new(),
            bearer: None,
        }
    }

    async fn get(&mut self, uri: &str) -> Page {
        self.send("GET", uri, &[], None).await
    }

    /// A form POST with `headers` in place of the same-origin ones.
    async fn post_with(
        &mut self,
        uri: &str,
        form: &[(&str, &str)],
        headers: &[(&str, &str)],
    ) -> Page {
        let body: Vec<String> = form
            .iter()
            .map(|(k, v)| format!("{}={}", url_encode(k), url_encode(v)))
            .collect();
        self.send("POST", uri, headers, Some(body.join("&"))).await
    }

    async fn post(&mut self, uri: &str, form: &[(&str, &str)]) -> Page {
        self.post_with(uri, form, SAME_ORIGIN).await
    }

    async fn send(
        &mut self,
        method: &str,
        uri: &str,
        headers: &[(&str, &str)],
        form: Option<String>,
    ) -> Page {
        let mut request = Request::builder()
            .method(method)
            .uri(uri)
            .header(header::HOST, "127.0.0.1:7777");
        if !self.cookies.is_empty() {
            let cookies: Vec<String> = self
                .cookies
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            request = request.header(header::COOKIE, cookies.join("; "));
        }
        if let Some(token) = &self.bearer {
            request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let body = match form {
            Some(form) => {
                request = request.header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
                Body::from(form)
            }
            None => Body::empty(),
        };
        let response = self
            .app
            .clone()
            .oneshot(request.body(body).expect("a valid request"))
            .await
            .expect("the app always answers");
        for value in response.headers().get_all(header::SET_COOKIE) {
            let text = value.to_str().expect("cookies are ASCII");
            let pair = text.split(';').next().unwrap_or_default();
            if let Some((name, value)) = pair.split_once('=') {
                if value.is_empty() {
                    self.cookies.remove(name);
                } else {
                    self.cookies.insert(name.to_string(), value.to_string());
                }
            }
        }
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = axum::body::to_bytes(response.into_body(), 64 << 20)
            .await
            .expect("the body");
        Page {
            status,
            headers,
            body: String::from_utf8(bytes.to_vec()).expect("pages are UTF-8"),
        }
    }
}

// ---- reading pages ----

/// How many times `needle` occurs.
fn count(html: &str, needle: &str) -> usize {
    html.matches(needle).count()
}

/// The value of the hidden input `name`.
fn hidden(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html
        .find(&marker)
        .unwrap_or_else(|| panic!("no input {name} in {html}"))
        + marker.len();
    html[start..]
        .split('"')
        .next()
        .unwrap_or_default()
        .to_string()
}

/// The HTML of the first element with `data-testid="{testid}"`, up to the next `</article>`.
fn section<'a>(html: &'a str, testid: &str) -> &'a str {
    let start = html
        .find(&format!("data-testid=\"{testid}\""))
        .unwrap_or_else(|| panic!("no {testid} in {html}"));
    let rest = &html[start..];
    &rest[..rest.find("</article>").unwrap_or(rest.len())]
}

/// The text of the element with `data-testid="{testid}"` (up to its first tag end).
fn text_of<'a>(html: &'a str, testid: &str) -> &'a str {
    let start = html
        .find(&format!("data-testid=\"{testid}\""))
        .unwrap_or_else(|| panic!("no {testid} in {html}"));
    let rest = &html[start..];
    let open = rest.find('>').unwrap_or(0) + 1;
    let close = rest[open..].find('<').unwrap_or(0);
    &rest[open..open + close]
}

/// Asserts the page has no active content but the app's own stylesheet, script and forms.
#[track_caller]
fn assert_inert(html: &str) {
    versus_testkit::html::assert_inert(html, &Own::viewer_page());
}

// ---- runs ----

#[tokio::test]
async fn the_runs_list_pages_newest_first() {
    let fixture = Fixture::new();
    let first = fixture.run(
        &["alpha", "beta"],
        &tasks(2, &["reasoning"]),
        |task, model| (task != "t2" || model != "beta").then(|| "fine".to_string()),
    );
    for _ in 0..54 {
        fixture.simple_run(&["alpha"], &tasks(1, &["reasoning"]));
    }
    let mut client = Client::new(fixture.app());
    let page = client.get("/").await;
    assert_eq!(page.status, StatusCode::OK);
    assert_eq!(count(&page.body, "data-testid=\"runs-table\""), 1);
    assert_eq!(count(&page.body, "data-testid=\"run-row\""), 50);
    assert!(page.body.contains("data-run=\"55\""), "newest first");
    assert!(page.body.contains("page 1 of 2 (55 in all)"));
    let last = client.get("/?page=2").await;
    assert_eq!(count(&last.body, "data-testid=\"run-row\""), 5);
    let row = &last.body[last
        .body
        .find(&format!("data-run=\"{first}\""))
        .expect("first run")..];
    assert_eq!(text_of(row, "run-ok"), "3");
    assert_eq!(text_of(row, "run-failed"), "1");
    assert_eq!(text_of(row, "run-status"), "finished");
}

#[tokio::test]
async fn an_empty_database_says_so() {
    let fixture = Fixture::new();
    let page = Client::new(fixture.app()).get("/").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("data-testid=\"runs-empty\""));
}

// ---- the matrix ----

#[tokio::test]
async fn the_matrix_pages_tasks_and_filters_by_category() {
    let fixture = Fixture::new();
    let run = fixture.run(
        &["alpha", "beta"],
        &tasks(120, &["reasoning", "coding", "creative"]),
        |task, model| {
            (task != "t1" || model != "beta")
                .then(|| format!("Answer of {} words to {task}.", model.len()))
        },
    );
    fixture.scores(run, "t2", "alpha", &[("checks", 1.0, Some(true))]);
    fixture.scores(run, "t2", "beta", &[("checks", 0.5, Some(false))]);
    let mut client = Client::new(fixture.app());

    let page = client.get(&format!("/runs/{run}")).await;
    assert_eq!(page.status, StatusCode::OK);
    assert_eq!(count(&page.body, "data-testid=\"matrix\""), 1);
    assert_eq!(count(&page.body, "data-testid=\"task-row\""), 50);
    assert_eq!(count(&page.body, "data-testid=\"cell\""), 100);
    assert!(page.body.contains("page 1 of 3 (120 in all)"));
    // t1: only alpha answered, so alpha wins; t2: the checks decide.
    assert!(page.body.contains("data-testid=\"verdict\" data-task=\"t1\" data-winner=\"alpha\" data-decided-by=\"only answer\""));
    assert!(page.body.contains(
        "data-testid=\"verdict\" data-task=\"t2\" data-winner=\"alpha\" data-decided-by=\"checks\""
    ));
    assert!(page
        .body
        .contains("data-task=\"t1\" data-model=\"beta\" data-status=\"failed\""));
    assert!(page.body.contains("HTTP 500 after 1 attempt"));
    assert!(page
        .body
        .contains("data-testid=\"cell-checks\" data-passed=\"false\""));

    let last = client.get(&format!("/runs/{run}?page=3")).await;
    assert_eq!(count(&last.body, "data-testid=\"task-row\""), 20);
    assert!(last.body.contains("data-task=\"t120\""));

    let coding = client
        .get(&format!("/runs/{run}?category=coding&page=2"))
        .await;
    assert_eq!(count(&coding.body, "data-testid=\"task-row\""), 40);
    assert!(
        coding.body.contains("page 1 of 1 (40 in all)"),
        "a page past the end shows the last"
    );
    assert!(coding.body.contains("<option value=\"coding\" selected>"));
    for row in coding.body.split("data-testid=\"task-row\"").skip(1) {
        assert!(
            row.contains("<span class=\"category\">coding</span>"),
            "{row}"
        );
    }
    assert_eq!(
        client.get(&format!("/runs/{}", run + 1)).await.status,
        StatusCode::NOT_FOUND
    );
}

/// The ISSUE's performance check: a 10,000-task run on two models, built through the store API,
/// renders a page in one bounded pass (header, cached plan, one query each for the page's
/// cells, scores and judgements).
#[tokio::test]
async fn a_page_of_a_ten_thousand_task_run_renders_quickly() {
    let fixture = Fixture::new();
    let started = Instant::now();
    let run = fixture.run(
        &["alpha", "beta"],
        &tasks(10_000, &["reasoning", "coding"]),
        |task, _| Some(format!("An answer to {task} that goes on for a while. ").repeat(5)),
    );
    let built = started.elapsed();
    let mut client = Client::new(fixture.app());

    let start = Instant::now();
    let first = client.get(&format!("/runs/{run}")).await;
    let cold = start.elapsed();
    let start = Instant::now();
    let last = client.get(&format!("/runs/{run}?page=200")).await;
    let warm = start.elapsed();
    let start = Instant::now();
    let filtered = client
        .get(&format!("/runs/{run}?category=coding&page=77"))
        .await;
    let filtered_time = start.elapsed();
    eprintln!(
        "10,000 tasks x 2 models: built in {built:?}; first page (plan parsed) {cold:?}, \
         last page {warm:?}, a filtered page {filtered_time:?}"
    );
    for page in [&first, &last, &filtered] {
        assert_eq!(page.status, StatusCode::OK);
        assert_eq!(count(&page.body, "data-testid=\"task-row\""), 50);
        assert_eq!(count(&page.body, "data-testid=\"cell\""), 100);
    }
    assert!(last.body.contains("page 200 of 200 (10000 in all)"));
    assert!(last.body.contains("data-task=\"t10000\""));
    assert!(filtered.body.contains("page 77 of 100 (5000 in all)"));
    // Generous bounds for a debug build on a busy machine; the printed times are the measure.
    assert!(cold < Duration::from_secs(10), "first page took {cold:?}");
    assert!(warm < Duration::from_secs(2), "a cached page took {warm:?}");
    assert!(
        filtered_time < Duration::from_secs(2),
        "a filtered page took {filtered_time:?}"
    );
}

// ---- one task ----

#[tokio::test]
async fn a_task_shows_answers_side_by_side_with_their_evidence() {
    let fixture = Fixture::new();
    let run = fixture.run(&["alpha", "beta"], &tasks(3, &["reasoning"]), |_, model| {
        Some(format!("# Heading\n\n**bold {}** and `code`", model.len()))
    });
    fixture.scores(
        run,
        "t2",
        "alpha",
        &[
            ("check.1:contains east", 1.0, Some(true)),
            ("checks", 1.0, Some(true)),
            ("rougeL", 0.41, None),
        ],
    );
    fixture.scores(
        run,
        "t2",
        "beta",
        &[
            ("check.1:contains east", 0.0, Some(false)),
            ("checks", 0.0, Some(false)),
        ],
    );
    fixture
        .store()
        .record_judgement(
            run,
            &JudgementRecord {
                task_id: "t2".into(),
                kind: versus_core::JudgementKind::Pairwise,
                model_a: "alpha".into(),
                model_b: "beta".into(),
                judge: "judge-model".into(),
                verdict: versus_core::JudgeVerdict::ModelA,
                rating: None,
                detail: serde_json::json!({
                    "first": {"output": "A is clearer. [[A]]"},
                    "second": {"output": "B is clearer. [[B]] <script>x</script>"},
                    "explanation": "both orders prefer alpha"
                }),
            },
        )
        .expect("store the judgement");
    let mut client = Client::new(fixture.app());
    let page = client.get(&format!("/runs/{run}/tasks/t2")).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("Why is the sky blue?"));
    assert!(page.body.contains("Rayleigh scattering."));
    assert_eq!(count(&page.body, "data-testid=\"answer-column\""), 2);
    let alpha = section(&page.body, "answer-column\" data-model=\"alpha");
    assert!(alpha.contains("<h1>Heading</h1>"), "{alpha}");
    assert!(alpha.contains("<strong>bold 5</strong>"));
    assert!(alpha.contains("data-testid=\"figures\" data-model=\"alpha\""));
    assert!(alpha.contains("1.23 s"), "latency");
    assert!(alpha.contains("data-testid=\"check\" data-passed=\"true\""));
    assert!(alpha.contains("0.410"), "ROUGE-L");
    let beta = section(&page.body, "answer-column\" data-model=\"beta");
    assert!(beta.contains("data-testid=\"check\" data-passed=\"false\""));
    assert!(page
        .body
        .contains("data-testid=\"judgement\" data-kind=\"pairwise\" data-verdict=\"model_a\""));
    assert!(page.body.contains("A is clearer. [[A]]"));
    assert!(
        page.body.contains("&lt;script&gt;x&lt;/script&gt;"),
        "judge output is escaped"
    );
    assert!(page
        .body
        .contains("data-testid=\"verdict\" data-winner=\"alpha\" data-decided-by=\"checks\""));
    assert!(page.body.contains("data-testid=\"task-prev\""));
    assert!(page.body.contains("data-testid=\"task-next\""));
    assert_inert(&page.body);

    assert_eq!(
        client.get(&format!("/runs/{run}/tasks/nope")).await.status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn the_criteria_page_shows_each_verdict_with_how_sure_it_is() {
    let fixture = Fixture::new();
    let run = fixture.run(&["alpha", "beta"], &tasks(24, &["coding"]), |_, model| {
        Some(format!("answer of {model}"))
    });
    for i in 1..=24 {
        let task = format!("t{i}");
        fixture.scores(run, &task, "alpha", &[("checks", 1.0, Some(true))]);
        let beta = i % 2 == 0;
        fixture.scores(
            run,
            &task,
            "beta",
            &[("checks", f64::from(u8::from(beta)), Some(beta))],
        );
    }
    let mut client = Client::new(fixture.app());
    let matrix = client.get(&format!("/runs/{run}")).await;
    assert!(matrix
        .body
        .contains(&format!("href=\"/runs/{run}/criteria\"")));
    let page = client.get(&format!("/runs/{run}/criteria")).await;
    assert_eq!(page.status, StatusCode::OK);
    let coding = page
        .body
        .split("data-criterion=\"Coding\"")
        .nth(1)
        .and_then(|rest| rest.split("</tr>").next())
        .unwrap_or_else(|| panic!("no coding row in {}", page.body));
    assert!(
        coding.contains("alpha: more checks passed; McNemar exact test alpha vs beta, n = 24"),
        "{coding}"
    );
    assert!(
        coding.contains("data-testid=\"criterion-how-sure\">p = "),
        "{coding}"
    );
    assert!(page.body.contains("How sure"));
    assert_inert(&page.body);
    assert_eq!(
        client.get("/runs/999/criteria").await.status,
        StatusCode::NOT_FOUND
    );
}

/// The task page shows an answer through the same function as the HTML report: a fenced code
/// block is highlighted there exactly as in the report.
#[tokio::test]
async fn a_code_answer_is_highlighted_as_in_the_report() {
    let fixture = Fixture::new();
    let answer = "Recursion:\n\n```python\ndef fib(n):\n    return n if n < 2 else fib(n - 1) + fib(n - 2)\n```";
    let run = fixture.run(&["alpha", "beta"], &tasks(1, &["coding"]), |_, _| {
        Some(answer.to_string())
    });
    let report = crate::report::build(&fixture.store(), run).expect("build the report");
    let report_page = crate::report::html::render(&report);
    let open = "<div class=\"answer-body\" data-testid=\"answer-body\">";
    let start = report_page.find(open).expect("an answer in the report") + open.len();
    let in_report = &report_page[start..start + report_page[start..].find("</div>").unwrap()];
    assert!(
        in_report.contains("<span class=\"tok-kw\">def</span>"),
        "the report highlights code: {in_report}"
    );
    assert!(in_report.contains("n &lt; <span class=\"tok-num\">2</span>"));

    let page = Client::new(fixture.app())
        .get(&format!("/runs/{run}/tasks/t1"))
        .await;
    assert_eq!(page.status, StatusCode::OK);
    let alpha = section(&page.body, "answer-column\" data-model=\"alpha");
    assert!(
        alpha.contains(&format!(
            "<div class=\"answer\" data-testid=\"answer\" data-model=\"alpha\">{in_report}</div>"
        )),
        "the viewer shows the report's markup: {alpha}"
    );
    assert_inert(&page.body);
}

// ---- comparing runs ----

#[tokio::test]
async fn two_runs_compare_per_task_and_model() {
    let fixture = Fixture::new();
    let models = ["alpha", "beta"];
    let a = fixture.run(&models, &tasks(2, &["reasoning"]), |task, model| {
        Some(format!("old {task} {model}"))
    });
    let b = fixture.run(&models, &tasks(3, &["reasoning"]), |task, model| {
        match (task, model) {
            ("t1", "alpha") => Some("old t1 alpha".into()),
            ("t2", "alpha") => None,
            _ => Some(format!("new {task} {model}")),
        }
    });
    for (run, value) in [(a, 0.5), (b, 1.0)] {
        fixture.scores(run, "t1", "beta", &[("checks", value, Some(value >= 1.0))]);
        fixture.scores(run, "t1", "alpha", &[("checks", 1.0, Some(true))]);
    }
    let mut client = Client::new(fixture.app());
    let page = client.get(&format!("/compare?a={a}&b={b}")).await;
    assert_eq!(page.status, StatusCode::OK);
    assert_eq!(
        count(&page.body, "data-testid=\"compare-row\""),
        4,
        "t3 is only in b"
    );
    assert!(page
        .body
        .contains("data-testid=\"totals-better\" data-count=\"1\""));
    assert!(page
        .body
        .contains("data-testid=\"totals-worse\" data-count=\"1\""));
    assert!(page
        .body
        .contains("data-testid=\"totals-same\" data-count=\"2\""));
    assert!(page
        .body
        .contains("data-testid=\"totals-answers-changed\" data-count=\"3\""));
    assert!(page.body.contains(
        "data-task=\"t1\" data-model=\"beta\" data-change=\"better\" data-answer=\"changed\""
    ));
    assert!(page
        .body
        .contains("data-task=\"t2\" data-model=\"alpha\" data-change=\"worse\""));
    assert!(page.body.contains(
        "data-task=\"t1\" data-model=\"alpha\" data-change=\"same\" data-answer=\"same\""
    ));
    let changed = client
        .get(&format!("/compare?a={a}&b={b}&show=changed"))
        .await;
    assert_eq!(count(&changed.body, "data-testid=\"compare-row\""), 3);
    assert_eq!(
        client.get(&format!("/compare?a={a}&b=99")).await.status,
        StatusCode::NOT_FOUND
    );
    assert!(client
        .get("/compare")
        .await
        .body
        .contains("data-testid=\"compare-form\""));
}

// ---- voting ----

/// A run with one task answered by `alpha` and `beta` (answers that do not name them).
fn voting_fixture() -> (Fixture, RunId) {
    let fixture = Fixture::new();
    let run = fixture.run(&["alpha", "beta"], &tasks(1, &["reasoning"]), |_, model| {
        Some(
            if model == "alpha" {
                "The first answer."
            } else {
                "The second answer."
            }
            .to_string(),
        )
    });
    (fixture, run)
}

/// GETs a vote page; returns it with the model that sits left and the one right.
async fn ballot_page(client: &mut Client) -> (Page, String, String) {
    let page = client.get("/vote").await;
    assert_eq!(page.status, StatusCode::OK);
    let left = section(&page.body, "answer-left");
    let (left, right) = if left.contains("The first answer.") {
        ("alpha", "beta")
    } else {
        ("beta", "alpha")
    };
    (page, left.to_string(), right.to_string())
}

/// POSTs a vote from `page`'s form.
async fn vote(client: &mut Client, page: &Page, choice: &str) -> Page {
    client
        .post(
            "/vote",
            &[
                ("ballot", &hidden(&page.body, "ballot")),
                ("csrf", &hidden(&page.body, "csrf")),
                ("choice", choice),
            ],
        )
        .await
}

#[tokio::test]
async fn a_blind_vote_is_recorded_once_for_the_pair_shown() {
    let (fixture, run) = voting_fixture();
    let mut client = Client::new(fixture.app());
    let (page, left, right) = ballot_page(&mut client).await;
    // Blind: no model name anywhere in the page before the vote.
    assert!(
        !page.body.contains("alpha") && !page.body.contains("beta"),
        "{}",
        page.body
    );
    for testid in [
        "vote-form",
        "vote-left",
        "vote-right",
        "vote-tie",
        "vote-bothbad",
        "shortcuts",
        "voter-name",
    ] {
        assert!(
            page.body.contains(&format!("data-testid=\"{testid}\"")),
            "{testid}"
        );
    }
    assert_inert(&page.body);

    // Forged model names in the form are ignored: the ballot decides.
    let ballot = hidden(&page.body, "ballot");
    let csrf = hidden(&page.body, "csrf");
    let form = [
        ("ballot", ballot.as_str()),
        ("csrf", csrf.as_str()),
        ("choice", "left"),
        ("voter", "  Ada  "),
        ("model_a", "forged-a"),
        ("model_b", "forged-b"),
        ("left", "forged-a"),
    ];
    let result = client.post("/vote", &form).await;
    assert_eq!(result.status, StatusCode::OK, "{}", result.body);
    assert_eq!(text_of(&result.body, "reveal-left"), left);
    assert_eq!(text_of(&result.body, "reveal-right"), right);
    assert!(result.body.contains("data-testid=\"vote-next\""));
    assert_inert(&result.body);
    let votes = fixture.votes();
    assert_eq!(
        votes,
        vec![VoteRecord {
            run_id: Some(run),
            task_id: Some("t1".into()),
            category: Some("reasoning".into()),
            model_a: left.clone(),
            model_b: right.clone(),
            winner: versus_core::ratings::Winner::ModelA,
            source: versus_core::VoteSource::Human,
            voter: Some("Ada".into()),
            judge: None,
        }]
    );
    // The name is remembered for the next page.
    assert!(client.get("/vote").await.body.contains("value=\"Ada\""));

    // A ballot is single use, and a made-up one is no ballot.
    let again = client.post("/vote", &form).await;
    assert_eq!(again.status, StatusCode::CONFLICT);
    let mut made_up = form;
    made_up[0].1 = "0123456789abcdef0123456789abcdef";
    assert_eq!(
        client.post("/vote", &made_up).await.status,
        StatusCode::CONFLICT
    );
    assert_eq!(fixture.votes().len(), 1);

    // The ratings take the vote at once.
    let ratings = client.get("/ratings").await;
    assert!(ratings.body.contains("data-testid=\"ratings-table\""));
    assert!(
        ratings
            .body
            .contains(&format!("data-model=\"{left}\" data-rank=\"1\"")),
        "{}",
        ratings.body
    );
    assert!(ratings
        .body
        .contains("data-testid=\"ratings-battles\" data-count=\"1\""));
}

#[tokio::test]
async fn each_button_records_its_winner() {
    let (fixture, _) = voting_fixture();
    let mut client = Client::new(fixture.app());
    for (choice, winner) in [
        ("left", "model_a"),
        ("right", "model_b"),
        ("tie", "tie"),
        ("bothbad", "tie (bothbad)"),
    ] {
        let (page, left, right) = ballot_page(&mut client).await;
        assert_eq!(
            vote(&mut client, &page, choice).await.status,
            StatusCode::OK
        );
        let stored = fixture.votes().pop().expect("a vote");
        assert_eq!(
            (stored.model_a, stored.model_b, stored.winner.as_str()),
            (left, right, winner)
        );
    }
    let (page, ..) = ballot_page(&mut client).await;
    assert_eq!(
        vote(&mut client, &page, "alpha").await.status,
        StatusCode::BAD_REQUEST
    );
    // A bad choice does not use up the ballot.
    assert_eq!(vote(&mut client, &page, "tie").await.status, StatusCode::OK);
    assert_eq!(fixture.votes().len(), 5);
}

#[tokio::test]
async fn cross_site_posts_are_refused_before_the_ballot_is_touched() {
    let (fixture, _) = voting_fixture();
    let mut client = Client::new(fixture.app());
    let (page, ..) = ballot_page(&mut client).await;
    let form = [
        ("ballot", hidden(&page.body, "ballot")),
        ("csrf", hidden(&page.body, "csrf")),
        ("choice", "left".to_string()),
    ];
    let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    for headers in [
        &[("origin", "https://evil.example")][..],
        &[("sec-fetch-site", "cross-site")],
        &[
            ("origin", "https://evil.example"),
            ("sec-fetch-site", "cross-site"),
        ],
        &[
            ("origin", "http://127.0.0.1:7777"),
            ("sec-fetch-site", "same-site"),
        ],
        &[("origin", "null")],
        &[("origin", "http://127.0.0.1:8000")],
    ] {
        let refused = client.post_with("/vote", &form, headers).await;
        assert_eq!(refused.status, StatusCode::FORBIDDEN, "{headers:?}");
    }
    assert!(fixture.votes().is_empty());
    // The same form from this origin still works: nothing above used the ballot.
    assert_eq!(client.post("/vote", &form).await.status, StatusCode::OK);
    assert_eq!(fixture.votes().len(), 1);
}

#[tokio::test]
async fn a_vote_needs_this_browsers_csrf_token() {
    let (fixture, _) = voting_fixture();
    let mut client = Client::new(fixture.app());
    let (page, ..) = ballot_page(&mut client).await;
    let ballot = hidden(&page.body, "ballot");
    let wrong = [
        ("ballot", ballot.as_str()),
        ("csrf", "00000000000000000000000000000000"),
        ("choice", "left"),
    ];
    assert_eq!(
        client.post("/vote", &wrong).await.status,
        StatusCode::FORBIDDEN
    );
    let missing = [("ballot", ballot.as_str()), ("choice", "left")];
    assert!(client
        .post("/vote", &missing)
        .await
        .status
        .is_client_error());
    // Another browser (no cookie) with this page's token is refused too.
    let mut stranger = Client::new(fixture.app());
    let right = [
        ("ballot", ballot.as_str()),
        ("csrf", &hidden(&page.body, "csrf")),
        ("choice", "left"),
    ];
    assert_eq!(
        stranger.post("/vote", &right).await.status,
        StatusCode::FORBIDDEN
    );
    assert!(fixture.votes().is_empty());
    assert_eq!(client.post("/vote", &right).await.status, StatusCode::OK);
}

#[tokio::test]
async fn a_get_never_votes() {
    let (fixture, _) = voting_fixture();
    let mut client = Client::new(fixture.app());
    let (page, ..) = ballot_page(&mut client).await;
    let ballot = hidden(&page.body, "ballot");
    let csrf = hidden(&page.body, "csrf");
    let sneaky = client
        .get(&format!(
            "/vote?ballot={ballot}&csrf={csrf}&choice=left&voter=x"
        ))
        .await;
    assert_eq!(sneaky.status, StatusCode::OK);
    assert!(fixture.votes().is_empty());
    assert_eq!(
        vote(&mut client, &page, "right").await.status,
        StatusCode::OK,
        "ballot unused"
    );
}

#[tokio::test]
async fn nothing_to_vote_on_is_said() {
    let fixture = Fixture::new();
    fixture.run(&["alpha", "beta"], &tasks(1, &["reasoning"]), |_, model| {
        (model == "alpha").then(|| "alone".to_string())
    });
    let page = Client::new(fixture.app()).get("/vote").await;
    assert!(page.body.contains("data-testid=\"vote-empty\""));
    let ratings = Client::new(fixture.app()).get("/ratings").await;
    assert!(ratings.body.contains("data-testid=\"ratings-empty\""));
}

// ---- access ----

const TOKEN: &str = "a-long-enough-test-token-0123456789";

#[tokio::test]
async fn a_configured_token_is_required() {
    let (fixture, _) = voting_fixture();
    let mut anonymous = Client::new(fixture.app_with_token(TOKEN));
    let refused = anonymous.get("/").await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
    assert!(refused.body.contains("data-testid=\"login-form\""));
    assert_eq!(
        anonymous.get("/vote").await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        anonymous.post("/vote", &[("choice", "left")]).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        anonymous.get("/assets/view.css").await.status,
        StatusCode::OK
    );
    assert_eq!(
        anonymous.get("/login?token=wrong-token").await.status,
        StatusCode::UNAUTHORIZED
    );

    let mut bearer = Client::new(fixture.app_with_token(TOKEN));
    bearer.bearer = Some(TOKEN.into());
    assert_eq!(bearer.get("/").await.status, StatusCode::OK);

    let mut browser = Client::new(fixture.app_with_token(TOKEN));
    let login = browser.get(&format!("/login?token={TOKEN}")).await;
    assert_eq!(login.status, StatusCode::SEE_OTHER);
    let cookie = login
        .headers
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("versus_session="))
        .expect("a session cookie");
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    assert!(
        !cookie.contains(TOKEN),
        "the cookie holds a hash, not the token"
    );
    assert_eq!(browser.get("/").await.status, StatusCode::OK);
    let (page, ..) = ballot_page(&mut browser).await;
    assert_eq!(
        vote(&mut browser, &page, "tie").await.status,
        StatusCode::OK
    );

    let mut form_login = Client::new(fixture.app_with_token(TOKEN));
    assert_eq!(
        form_login.post("/login", &[("token", TOKEN)]).await.status,
        StatusCode::SEE_OTHER
    );
    assert_eq!(form_login.get("/ratings").await.status, StatusCode::OK);
}

#[tokio::test]
async fn only_loopback_host_names_are_answered() {
    let fixture = Fixture::new();
    for (host, status) in [
        ("127.0.0.1:7777", StatusCode::OK),
        ("localhost:7777", StatusCode::OK),
        ("[::1]:7777", StatusCode::OK),
        ("evil.example:7777", StatusCode::MISDIRECTED_REQUEST),
        ("127.0.0.1:8000", StatusCode::MISDIRECTED_REQUEST),
    ] {
        let request = Request::builder()
            .uri("/")
            .header(header::HOST, host)
            .body(Body::empty())
            .expect("a request");
        let response = fixture.app().oneshot(request).await.expect("an answer");
        assert_eq!(response.status(), status, "{host}");
    }
    let no_host = Request::builder()
        .uri("/")
        .body(Body::empty())
        .expect("a request");
    let response = fixture.app().oneshot(no_host).await.expect("an answer");
    assert_eq!(response.status(), StatusCode::MISDIRECTED_REQUEST);
}

#[tokio::test]
async fn every_response_carries_the_security_headers() {
    let fixture = Fixture::new();
    let mut client = Client::new(fixture.app());
    for uri in ["/", "/runs/404", "/nowhere", "/assets/view.js"] {
        let page = client.get(uri).await;
        let header = |name: &str| {
            page.headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_string()
        };
        assert!(
            header("content-security-policy").contains("default-src 'none'"),
            "{uri}"
        );
        assert!(
            header("content-security-policy").contains("script-src 'self';"),
            "{uri}"
        );
        assert!(
            header("content-security-policy").contains("frame-ancestors 'none'"),
            "{uri}"
        );
        assert_eq!(header("x-content-type-options"), "nosniff", "{uri}");
        assert_eq!(header("referrer-policy"), "same-origin", "{uri}");
    }
    let page = client.get("/").await;
    assert!(page
        .body
        .contains("<script src=\"/assets/view.js\"></script>"));
    let script = client.get("/assets/view.js").await;
    assert!(script.body.contains("window.__versusReady = true"));
}

// ---- hostile answers ----

/// Answers a hostile model could give, each trying a different way to run or load something.
const HOSTILE: &[&str] = &[
    "<script>window.pwned = 1</script>",
    "<img src=x onerror=\"window.pwned = 1\">",
    "[click me](javascript:window.pwned=1)",
    "<a href=\"JaVaScRiPt:alert(1)\">link</a>",
    "<div style=\"background:url(https://evil.example/x.png)\">styled</div>",
    "<style>body { background: url(https://evil.example/bg.png) }</style>",
    "![tracker](https://evil.example/pixel.png)",
    "<iframe src=\"https://evil.example\"></iframe>",
    "<svg onload=\"alert(1)\"><circle r=\"1\"/></svg>",
    "<form action=\"https://evil.example\"><button>go</button></form>",
    "\"><script>alert(1)</script><a title='",
    "[data](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
];

#[tokio::test]
async fn hostile_answers_never_become_active_content() {
    let fixture = Fixture::new();
    let hostile_task = "x\"><img src=x onerror=alert(1)>";
    let all: String = HOSTILE.join("\n\n");
    let task_list = vec![
        (hostile_task.to_string(), "<i>reasoning</i>".to_string()),
        ("plain".to_string(), "reasoning".to_string()),
    ];
    let a = fixture.run(&["alpha", "beta"], &task_list, |_, model| {
        Some(if model == "alpha" {
            all.clone()
        } else {
            format!("{all}\n\nsecond")
        })
    });
    let b = fixture.run(&["alpha", "beta"], &task_list, |_, _| {
        Some(HOSTILE[1].to_string())
    });
    let mut client = Client::new(fixture.app());
    let mut pages = vec![
        client.get("/").await,
        client.get(&format!("/runs/{a}")).await,
        client
            .get(&format!(
                "/runs/{a}?category={}",
                url_encode("<i>reasoning</i>")
            ))
            .await,
        client
            .get(&format!("/runs/{a}/tasks/{}", url_encode(hostile_task)))
            .await,
        client.get(&format!("/runs/{a}/tasks/plain")).await,
        client.get(&format!("/compare?a={a}&b={b}")).await,
    ];
    let (vote_page, ..) = ballot_page(&mut client).await;
    let revealed = vote(&mut client, &vote_page, "left").await;
    pages.push(vote_page);
    pages.push(revealed);
    pages.push(client.get("/ratings").await);
    for page in &pages {
        assert_eq!(page.status, StatusCode::OK, "{}", page.body);
        assert_inert(&page.body);
        assert!(
            !page.body.contains("<i>reasoning"),
            "categories are escaped"
        );
    }
    // The hostile text is still shown, as text.
    assert!(pages[3].body.contains("data-testid=\"answer\""));
    assert!(pages[3].body.contains("&lt;script&gt;") || pages[3].body.contains("styled"));
}

#[test]
fn the_inertness_check_catches_active_content() {
    let shell = |body: &str| {
        format!(
            "<link rel=\"stylesheet\" href=\"/assets/view.css\">{body}\
             <script src=\"/assets/view.js\"></script>"
        )
    };
    let own = Own::viewer_page();
    assert_eq!(
        active_content(&shell("<p title='a > b'>&lt;script&gt;</p>"), &own),
        Vec::<String>::new()
    );
    for bad in [
        "<script>alert(1)</script>",
        "<img src=x>",
        "<a href=\"javascript:alert(1)\">x</a>",
        "<p onclick=\"x\">x</p>",
        "<p style=\"color:red\">x</p>",
        "<a href=' data:text/html,x'>x</a>",
        "<div title=\"x\" ONERROR=y>",
    ] {
        assert!(
            !active_content(&shell(bad), &own).is_empty(),
            "{bad} passed"
        );
    }
}

#[tokio::test]
async fn later_samples_are_shown_collapsed_under_the_first_and_counted_in_the_matrix() {
    let fixture = Fixture::new();
    let run = fixture.sampled_run(
        &["alpha", "beta"],
        &tasks(1, &["coding"]),
        3,
        |_, model, sample| Some(format!("{model} says **{sample}**")),
    );
    let mut client = Client::new(fixture.app());
    let page = client.get(&format!("/runs/{run}/tasks/t1")).await;
    assert_eq!(page.status, StatusCode::OK);
    assert_eq!(
        count(&page.body, "data-testid=\"answer-column\""),
        2,
        "one column per model"
    );
    let alpha = section(&page.body, "answer-column\" data-model=\"alpha");
    assert!(
        alpha.contains("3 samples: 3 answered, 3 different answers"),
        "{alpha}"
    );
    assert!(alpha.contains("<details data-testid=\"later-samples\"><summary>2 more samples"));
    assert_eq!(count(alpha, "data-testid=\"sample\""), 2);
    assert!(
        alpha.contains("data-sample=\"3\""),
        "samples are numbered from 1"
    );
    assert!(
        alpha.contains("alpha says <strong>2</strong>"),
        "the last sample's answer, rendered"
    );
    let matrix = client.get(&format!("/runs/{run}")).await;
    assert!(
        matrix
            .body
            .contains("data-testid=\"cell-samples\" data-samples=\"3\""),
        "{}",
        matrix.body
    );
    assert_eq!(
        count(&matrix.body, "data-testid=\"cell-status\""),
        2,
        "one cell per model"
    );
}

#[tokio::test]
async fn anonymous_vote_pages_never_void_a_voters_open_ballot() {
    // 10,001 anonymous GETs of /vote evicted the oldest ballot and made a voter's vote fail
    // (409). Ballots are now bounded per client (cookie) and never evicted across clients.
    let (fixture, _) = voting_fixture();
    let app = fixture.app();
    let mut voter = Client::new(app.clone());
    let (page, ..) = ballot_page(&mut voter).await;
    for _ in 0..super::ballots::BALLOTS_PER_CLIENT * 3 {
        // A fresh client each time: no cookies.
        let mut anonymous = Client::new(app.clone());
        assert_eq!(anonymous.get("/vote").await.status, StatusCode::OK);
    }
    // The same voter reloading the page many times only loses its own oldest ballots.
    for _ in 0..super::ballots::BALLOTS_PER_CLIENT - 1 {
        ballot_page(&mut voter).await;
    }
    let voted = vote(&mut voter, &page, "left").await;
    assert_eq!(voted.status, StatusCode::OK, "{}", voted.body);
    // Another client cannot use a ballot it was not given.
    let (page, ..) = ballot_page(&mut voter).await;
    let mut thief = Client::new(app);
    thief.get("/").await;
    let stolen = thief
        .post(
            "/vote",
            &[
                ("ballot", &hidden(&page.body, "ballot")),
                (
                    "csrf",
                    &thief
                        .cookies
                        .get("versus_csrf")
                        .cloned()
                        .unwrap_or_default(),
                ),
                ("choice", "left"),
            ],
        )
        .await;
    assert_eq!(stolen.status, StatusCode::CONFLICT, "{}", stolen.body);
}
