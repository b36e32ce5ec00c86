//! Tests of the store's behaviour. Those listed in `on_both_backends!` run twice: on a fresh
//! SQLite file, and on a fresh PostgreSQL schema when `VERSUS_TEST_POSTGRES` names a server
//! (`scripts/with-postgres` starts one); the rest test what only a SQLite file has.

use std::path::PathBuf;

use super::*;
use crate::testing::{fresh_store, on_both_backends};
use versus_core::{ErrorKind, FinishReason};

on_both_backends!(
    runs_are_listed_newest_first_with_their_cell_counts,
    a_run_keeps_everything_it_was_started_from,
    an_empty_database_has_no_runs,
    a_missing_run_is_reported_helpfully,
    creating_a_run_is_all_or_nothing,
    finishing_or_interrupting_a_run_stamps_finished_at,
    resetting_for_resume_reopens_the_run_and_leaves_cells_alone,
    the_newest_run_with_work_left_is_resumable,
    a_run_with_only_failed_cells_left_is_resumable,
    unsupported_cells_do_not_make_a_run_resumable,
    cells_come_back_in_creation_order_and_start_pending,
    completed_cells_round_trip_every_completion_field,
    failed_cells_keep_kind_message_and_attempts,
    unsupported_cells_keep_their_reason,
    a_failed_cell_redone_on_resume_loses_its_error,
    recording_an_unknown_cell_fails_and_stores_nothing,
    stored_completions_can_be_looked_up_by_key,
    a_cached_outcome_reuses_the_stored_completion,
    a_fresh_completion_replaces_the_cached_one_under_its_key,
    a_cached_outcome_whose_row_is_gone_stores_it_so_the_cell_can_point_at_it,
    a_new_database_is_at_the_latest_schema,
    an_unreadable_plan_is_one_error_naming_the_run,
    unknown_judgement_words_are_reported_as_corrupt_not_guessed,
    samples_of_one_task_are_separate_cells_with_separate_scores,
    a_database_a_newer_versus_wrote_is_refused_on_every_backend,
    processes_opening_a_fresh_database_at_once_migrate_it_once,
);

// ---- helpers: one per feature, so that a new case is one line ----

fn memory_store() -> Store {
    fresh_store()
}

fn cell_id(task_id: &str, model_id: &str) -> CellId {
    CellId {
        task_id: task_id.into(),
        model_id: model_id.into(),
        sample: 0,
    }
}

/// Creates a run of `plan_fingerprint` over `cells` given as (task, model) pairs; its models
/// are the distinct models of the cells, in order of appearance.
/// A small plan (two models, one task), as a run stores it.
pub(crate) fn sample_plan() -> versus_core::RunPlan {
    let text = "[[models]]\nspec = \"openai:gpt-4o-mini\"\n[[models]]\nid = \"m2\"\nspec = \"openai:gpt-4.1-nano\"\n[[tasks]]\nid = \"a\"\nprompt = \"Hi\"\n";
    let suite = versus_core::Suite::parse(&versus_core::SuiteSource {
        origin: "sample.toml",
        text,
    })
    .expect("the sample suite parses");
    versus_core::RunPlan {
        suite,
        overrides: Default::default(),
    }
}

/// An in-memory store holding one run of two cells.
pub(crate) fn one_run() -> (Store, RunId) {
    let mut store = memory_store();
    let run = create_run(&mut store, "fp", &[("t1", "m1"), ("t2", "m1")]);
    (store, run)
}

fn create_run(store: &mut Store, plan_fingerprint: &str, cells: &[(&str, &str)]) -> RunId {
    let cells: Vec<CellId> = cells.iter().map(|(t, m)| cell_id(t, m)).collect();
    let mut models: Vec<String> = Vec::new();
    for cell in &cells {
        if !models.contains(&cell.model_id) {
            models.push(cell.model_id.clone());
        }
    }
    store
        .create_run(&NewRun {
            suite_name: "seed",
            suite_hash: "suite-hash",
            suite_text: "[[tasks]]\nid = \"a\"",
            plan_fingerprint,
            plan: &sample_plan(),
            models: &models,
            tool_version: "0.1.0",
            cells: &cells,
        })
        .unwrap()
}

/// A completion with every optional field set.
fn full_completion(text: &str) -> Completion {
    Completion {
        text: text.into(),
        finish_reason: FinishReason::Length,
        usage: Some(Usage {
            reasoning_tokens: Some(40),
            cached_prompt_tokens: Some(8),
            cache_write_tokens: Some(2),
            ..Usage::new(12, 345)
        }),
        timings: Timings {
            latency_ms: 1234.5678,
            ttft_ms: Some(98.765),
        },
        served_model: Some("gpt-4o-mini-2024-07-18".into()),
        attempts: 3,
        thinking: Some("First, the options.".into()),
        server_timings: Some(versus_core::ServerTimings {
            total_ms: Some(1100.0),
            load_ms: Some(0.5),
            prompt_ms: Some(40.0),
            generation_ms: Some(1000.0),
        }),
        via_batch: true,
    }
}

/// A completion with every optional field empty.
fn bare_completion(text: &str) -> Completion {
    Completion {
        text: text.into(),
        finish_reason: FinishReason::Unknown,
        usage: None,
        timings: Timings {
            latency_ms: 0.1,
            ttft_ms: None,
        },
        served_model: None,
        attempts: 1,
        thinking: None,
        server_timings: None,
        via_batch: false,
    }
}

fn completed(key: &str, completion: Completion, cached: bool) -> CellOutcome {
    CellOutcome::Completed {
        key: key.into(),
        model_spec: "openai:gpt-4o-mini".into(),
        request_json: "{\"messages\":[]}".into(),
        completion,
        cached,
    }
}

fn failed(kind: ErrorKind, message: &str, attempts: u32) -> CellOutcome {
    CellOutcome::Failed {
        kind,
        message: message.into(),
        attempts,
    }
}

fn unsupported(reason: &str) -> CellOutcome {
    CellOutcome::Unsupported {
        reason: reason.into(),
    }
}

fn record(store: &mut Store, run: RunId, (task_id, model_id): (&str, &str), outcome: CellOutcome) {
    store
        .record_cell(run, &cell_id(task_id, model_id), &outcome)
        .unwrap();
}

fn cell(store: &Store, run: RunId, (task_id, model_id): (&str, &str)) -> CellRecord {
    store
        .cells(run)
        .unwrap()
        .into_iter()
        .find(|cell| cell.task_id == task_id && cell.model_id == model_id)
        .unwrap()
}

fn summary(store: &Store, run: RunId) -> RunSummary {
    store.run(run).unwrap().summary
}

/// (total, ok, failed, unsupported, pending)
fn counts(summary: &RunSummary) -> (u64, u64, u64, u64, u64) {
    (
        summary.cells_total,
        summary.cells_ok,
        summary.cells_failed,
        summary.cells_unsupported,
        summary.cells_pending,
    )
}

/// A SQLite file with only the first migrations of `migrations` (to test upgrades).
fn open_sqlite_with(path: &Path, migrations: &[&str]) -> Result<Store, StoreError> {
    Store::open_with_migrations(&Database::Sqlite(path.to_path_buf()), migrations)
}

fn temp_db() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("versus.db");
    (dir, path)
}

fn set_user_version(path: &Path, version: u32) {
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.pragma_update(None, "user_version", version).unwrap();
}

/// A two-model, two-task plan, as (task, model) pairs.
const GRID: &[(&str, &str)] = &[("t1", "m1"), ("t1", "m2"), ("t2", "m1"), ("t2", "m2")];

// ---- runs ----

fn runs_are_listed_newest_first_with_their_cell_counts() {
    let mut store = memory_store();
    let first = create_run(&mut store, "plan-a", GRID);
    let second = create_run(&mut store, "plan-b", &[("t1", "m1")]);
    let empty = create_run(&mut store, "plan-c", &[]);
    record(
        &mut store,
        first,
        ("t1", "m1"),
        completed("k1", full_completion("hi"), false),
    );
    record(
        &mut store,
        first,
        ("t1", "m2"),
        failed(ErrorKind::Server, "boom", 3),
    );
    record(&mut store, first, ("t2", "m1"), unsupported("needs images"));

    let runs = store.runs().unwrap();
    let ids: Vec<RunId> = runs.iter().map(|run| run.id).collect();
    assert_eq!(ids, [empty, second, first]);
    assert_eq!(counts(&runs[2]), (4, 1, 1, 1, 1));
    assert_eq!(counts(&runs[1]), (1, 0, 0, 0, 1));
    assert_eq!(counts(&runs[0]), (0, 0, 0, 0, 0));
    assert_eq!(runs[2].models, ["m1", "m2"]);
    assert_eq!(runs[2].suite_name, "seed");
    assert_eq!(runs[2].tool_version, "0.1.0");
    assert_eq!(runs[2].status, RunStatus::Running);
    assert_eq!(runs[2].finished_at, None);
    assert_eq!(store.latest_run().unwrap(), Some(empty));
}

fn a_run_keeps_everything_it_was_started_from() {
    let mut store = memory_store();
    let run = create_run(&mut store, "plan-a", GRID);
    let record = store.run(run).unwrap();
    assert_eq!(record.summary.id, run);
    assert_eq!(record.suite_hash, "suite-hash");
    assert_eq!(record.suite_text, "[[tasks]]\nid = \"a\"");
    assert_eq!(record.plan_fingerprint, "plan-a");
    assert_eq!(record.plan, sample_plan());
    assert_eq!(counts(&record.summary), (4, 0, 0, 0, 4));
    // ISO 8601 UTC with milliseconds, from SQLite's clock.
    let started = &record.summary.started_at;
    assert_eq!(started.len(), "2025-01-31T12:00:00.123Z".len(), "{started}");
    assert!(started.ends_with('Z') && started.as_bytes()[10] == b'T');
}

fn an_empty_database_has_no_runs() {
    let store = memory_store();
    assert!(store.runs().unwrap().is_empty());
    assert_eq!(store.latest_run().unwrap(), None);
}

fn a_missing_run_is_reported_helpfully() {
    let mut store = memory_store();
    let error = store.run(42).unwrap_err();
    assert!(matches!(error, StoreError::RunNotFound(42)));
    assert_eq!(
        error.to_string(),
        "no run 42 in this database; `versus runs` lists them"
    );
    assert!(matches!(store.cells(42), Err(StoreError::RunNotFound(42))));
    assert!(matches!(
        store.reset_for_resume(42),
        Err(StoreError::RunNotFound(42))
    ));
    assert!(matches!(
        store.set_run_status(42, RunStatus::Finished),
        Err(StoreError::RunNotFound(42))
    ));
}

fn creating_a_run_is_all_or_nothing() {
    let mut store = memory_store();
    let duplicate = [cell_id("t1", "m1"), cell_id("t1", "m1")];
    let result = store.create_run(&NewRun {
        suite_name: "seed",
        suite_hash: "h",
        suite_text: "",
        plan_fingerprint: "plan-a",
        plan: &sample_plan(),
        models: &["m1".to_string()],
        tool_version: "0.1.0",
        cells: &duplicate,
    });
    assert!(matches!(result, Err(StoreError::Backend(_))));
    assert!(store.runs().unwrap().is_empty(), "no half-created run");
}

fn finishing_or_interrupting_a_run_stamps_finished_at() {
    let mut store = memory_store();
    for status in [RunStatus::Finished, RunStatus::Interrupted] {
        let run = create_run(&mut store, "plan-a", GRID);
        store.set_run_status(run, status).unwrap();
        let summary = summary(&store, run);
        assert_eq!(summary.status, status);
        let finished_at = summary.finished_at.unwrap();
        assert!(finished_at >= summary.started_at);
    }
}

fn resetting_for_resume_reopens_the_run_and_leaves_cells_alone() {
    let mut store = memory_store();
    let run = create_run(&mut store, "plan-a", GRID);
    record(
        &mut store,
        run,
        ("t1", "m1"),
        completed("k1", full_completion("hi"), false),
    );
    record(
        &mut store,
        run,
        ("t1", "m2"),
        failed(ErrorKind::Timeout, "slow", 2),
    );
    store.set_run_status(run, RunStatus::Interrupted).unwrap();

    store.reset_for_resume(run).unwrap();
    let summary = summary(&store, run);
    assert_eq!(summary.status, RunStatus::Running);
    assert_eq!(summary.finished_at, None);
    assert_eq!(counts(&summary), (4, 1, 1, 0, 2));
    assert_eq!(cell(&store, run, ("t1", "m2")).status, CellStatus::Failed);
}

// ---- resumable runs ----

fn the_newest_run_with_work_left_is_resumable() {
    let mut store = memory_store();
    let older = create_run(&mut store, "plan-a", GRID);
    let newer = create_run(&mut store, "plan-a", GRID);
    create_run(&mut store, "plan-b", GRID);
    assert_eq!(store.find_resumable_run("plan-a").unwrap(), Some(newer));
    assert_eq!(store.find_resumable_run("plan-z").unwrap(), None);

    finish_every_cell(&mut store, newer);
    assert_eq!(
        store.find_resumable_run("plan-a").unwrap(),
        Some(older),
        "a fully done run is skipped"
    );
}

fn a_run_with_only_failed_cells_left_is_resumable() {
    let mut store = memory_store();
    let run = create_run(&mut store, "plan-a", &[("t1", "m1"), ("t2", "m1")]);
    record(
        &mut store,
        run,
        ("t1", "m1"),
        completed("k1", full_completion("hi"), false),
    );
    record(
        &mut store,
        run,
        ("t2", "m1"),
        failed(ErrorKind::RateLimited, "429", 5),
    );
    assert_eq!(store.find_resumable_run("plan-a").unwrap(), Some(run));
}

fn unsupported_cells_do_not_make_a_run_resumable() {
    let mut store = memory_store();
    let run = create_run(&mut store, "plan-a", &[("t1", "m1"), ("t2", "m1")]);
    record(
        &mut store,
        run,
        ("t1", "m1"),
        completed("k1", full_completion("hi"), false),
    );
    record(&mut store, run, ("t2", "m1"), unsupported("needs images"));
    assert_eq!(store.find_resumable_run("plan-a").unwrap(), None);
}

/// Records every cell of `run` as ok, each with its own completion.
fn finish_every_cell(store: &mut Store, run: RunId) {
    for cell in store.cells(run).unwrap() {
        let key = format!("{run}/{}/{}", cell.task_id, cell.model_id);
        let outcome = completed(&key, bare_completion("done"), false);
        store.record_cell(run, &cell.id(), &outcome).unwrap();
    }
}

// ---- cells ----

fn cells_come_back_in_creation_order_and_start_pending() {
    let mut store = memory_store();
    let order = [("t2", "m2"), ("t1", "m1"), ("t2", "m1"), ("t1", "m2")];
    let run = create_run(&mut store, "plan-a", &order);
    let cells = store.cells(run).unwrap();
    let ids: Vec<(&str, &str)> = cells
        .iter()
        .map(|cell| (cell.task_id.as_str(), cell.model_id.as_str()))
        .collect();
    assert_eq!(ids, order);
    for cell in &cells {
        assert_eq!(cell.status, CellStatus::Pending);
        assert!(cell.completion.is_none() && cell.error.is_none());
        assert!(!cell.cached);
        assert_eq!(cell.attempts, 0);
        assert_eq!(cell.updated_at, None);
    }
}

fn completed_cells_round_trip_every_completion_field() {
    for completion in [full_completion("full"), bare_completion("bare")] {
        assert_completion_round_trips(completion);
    }
    for finish_reason in [
        FinishReason::Stop,
        FinishReason::ContentFilter,
        FinishReason::ToolCalls,
        FinishReason::Other("end_turn".into()),
    ] {
        assert_completion_round_trips(Completion {
            finish_reason,
            ..full_completion("reason")
        });
    }
    assert_completion_round_trips(full_completion("unicode: 日本語 «quotes» \u{1F600}\n"));
    // PostgreSQL's text cannot hold NUL: there it is stored as U+FFFD, everything else as is.
    let mut store = memory_store();
    let run = create_run(&mut store, "plan-a", &[("t1", "m1")]);
    let with_nul = full_completion("before\0after");
    record(
        &mut store,
        run,
        ("t1", "m1"),
        completed("key", with_nul, false),
    );
    let stored = cell(&store, run, ("t1", "m1"))
        .completion
        .unwrap()
        .completion;
    let expected = match store.db.dialect() {
        db::Dialect::Sqlite => "before\0after",
        db::Dialect::Postgres => "before\u{FFFD}after",
    };
    assert_eq!(stored.text, expected);
}

fn assert_completion_round_trips(completion: Completion) {
    let mut store = memory_store();
    let run = create_run(&mut store, "plan-a", &[("t1", "m1")]);
    record(
        &mut store,
        run,
        ("t1", "m1"),
        completed("key", completion.clone(), false),
    );
    let cell = cell(&store, run, ("t1", "m1"));
    assert_eq!(cell.status, CellStatus::Ok);
    assert!(!cell.cached);
    assert_eq!(cell.attempts, completion.attempts);
    assert!(cell.error.is_none());
    assert!(cell.updated_at.is_some());
    let stored = cell.completion.unwrap();
    assert_eq!(stored.key, "key");
    assert_eq!(stored.model_spec, "openai:gpt-4o-mini");
    assert_eq!(stored.completion, completion);
}

fn failed_cells_keep_kind_message_and_attempts() {
    let mut store = memory_store();
    let run = create_run(&mut store, "plan-a", &[("t1", "m1")]);
    record(
        &mut store,
        run,
        ("t1", "m1"),
        failed(ErrorKind::RateLimited, "429 Too Many Requests", 5),
    );
    let cell = cell(&store, run, ("t1", "m1"));
    assert_eq!(cell.status, CellStatus::Failed);
    assert_eq!(cell.attempts, 5);
    assert!(cell.completion.is_none());
    let error = cell.error.unwrap();
    assert_eq!(error.kind, ErrorKind::RateLimited);
    assert_eq!(error.message, "429 Too Many Requests");
}

fn unsupported_cells_keep_their_reason() {
    let mut store = memory_store();
    let run = create_run(&mut store, "plan-a", &[("t1", "m1")]);
    record(
        &mut store,
        run,
        ("t1", "m1"),
        unsupported("m1 reads no images"),
    );
    let cell = cell(&store, run, ("t1", "m1"));
    assert_eq!(cell.status, CellStatus::Unsupported);
    assert_eq!(cell.attempts, 0);
    let error = cell.error.unwrap();
    assert_eq!(error.kind, ErrorKind::Unsupported);
    assert_eq!(error.message, "m1 reads no images");
}

fn a_failed_cell_redone_on_resume_loses_its_error() {
    let mut store = memory_store();
    let run = create_run(&mut store, "plan-a", &[("t1", "m1")]);
    record(
        &mut store,
        run,
        ("t1", "m1"),
        failed(ErrorKind::Connection, "reset", 4),
    );
    record(
        &mut store,
        run,
        ("t1", "m1"),
        completed("k1", full_completion("hi"), false),
    );
    let cell = cell(&store, run, ("t1", "m1"));
    assert_eq!(cell.status, CellStatus::Ok);
    assert!(cell.error.is_none());
    assert_eq!(cell.attempts, 3);
}

fn recording_an_unknown_cell_fails_and_stores_nothing() {
    let mut store = memory_store();
    let run = create_run(&mut store, "plan-a", &[("t1", "m1")]);
    let outcome = completed("orphan", full_completion("hi"), false);
    let error = store
        .record_cell(run, &cell_id("t9", "m1"), &outcome)
        .unwrap_err();
    assert!(matches!(error, StoreError::CellNotFound { .. }));
    assert!(error.to_string().contains("task `t9`"), "{error}");
    assert!(
        store.lookup_completion("orphan").unwrap().is_none(),
        "the completion is rolled back with the cell"
    );
}

// ---- the completion cache ----

fn stored_completions_can_be_looked_up_by_key() {
    let mut store = memory_store();
    assert!(store.lookup_completion("k1").unwrap().is_none());
    let run = create_run(&mut store, "plan-a", &[("t1", "m1")]);
    record(
        &mut store,
        run,
        ("t1", "m1"),
        completed("k1", full_completion("hi"), false),
    );
    let stored = store.lookup_completion("k1").unwrap().unwrap();
    assert_eq!(stored.key, "k1");
    assert_eq!(stored.completion, full_completion("hi"));
    assert!(stored.created_at.ends_with('Z'));
    assert!(store.lookup_completion("k2").unwrap().is_none());
}

fn a_cached_outcome_reuses_the_stored_completion() {
    let mut store = memory_store();
    let first = create_run(&mut store, "plan-a", &[("t1", "m1")]);
    record(
        &mut store,
        first,
        ("t1", "m1"),
        completed("k1", full_completion("original"), false),
    );
    let created_at = store.lookup_completion("k1").unwrap().unwrap().created_at;

    let second = create_run(&mut store, "plan-a", &[("t1", "m1")]);
    record(
        &mut store,
        second,
        ("t1", "m1"),
        completed("k1", bare_completion("ignored"), true),
    );
    let cell = cell(&store, second, ("t1", "m1"));
    assert!(cell.cached);
    assert_eq!(cell.attempts, 0, "a cached cell made no calls");
    let stored = cell.completion.unwrap();
    assert_eq!(stored.completion, full_completion("original"));
    assert_eq!(stored.created_at, created_at, "the row is not rewritten");
    assert_eq!(completion_rows(&store), 1);
}

fn a_fresh_completion_replaces_the_cached_one_under_its_key() {
    let mut store = memory_store();
    let first = create_run(&mut store, "plan-a", &[("t1", "m1")]);
    record(
        &mut store,
        first,
        ("t1", "m1"),
        completed("k1", full_completion("old"), false),
    );
    let second = create_run(&mut store, "plan-a", &[("t1", "m1")]);
    record(
        &mut store,
        second,
        ("t1", "m1"),
        completed("k1", bare_completion("new"), false),
    );
    let shown = cell(&store, second, ("t1", "m1")).completion.unwrap();
    assert_eq!(shown.completion, bare_completion("new"));
    assert_eq!(
        store.lookup_completion("k1").unwrap().unwrap().completion,
        bare_completion("new")
    );
    assert_eq!(completion_rows(&store), 1);
}

fn a_cached_outcome_whose_row_is_gone_stores_it_so_the_cell_can_point_at_it() {
    let mut store = memory_store();
    let run = create_run(&mut store, "plan-a", &[("t1", "m1")]);
    record(
        &mut store,
        run,
        ("t1", "m1"),
        completed("k1", full_completion("hi"), true),
    );
    let shown = cell(&store, run, ("t1", "m1")).completion.unwrap();
    assert_eq!(shown.completion, full_completion("hi"));
}

fn completion_rows(store: &Store) -> i64 {
    store
        .db
        .query_one("SELECT COUNT(*) AS n FROM completions", params![])
        .unwrap()
        .get("n")
        .unwrap()
}

// ---- the file, durability and migrations ----

#[test]
fn a_reopened_database_keeps_its_data_in_wal_mode() {
    let (_dir, path) = temp_db();
    let run = {
        let mut store = Store::open(&path).unwrap();
        let run = create_run(&mut store, "plan-a", GRID);
        record(
            &mut store,
            run,
            ("t1", "m1"),
            completed("k1", full_completion("hi"), false),
        );
        run
    };
    let store = Store::open(&path).unwrap();
    assert_eq!(store.location().sqlite_path(), Some(path.as_path()));
    assert_eq!(store.latest_run().unwrap(), Some(run));
    assert_eq!(
        cell(&store, run, ("t1", "m1"))
            .completion
            .unwrap()
            .completion,
        full_completion("hi")
    );
    let journal_mode: String = store
        .db
        .sqlite_connection()
        .pragma_query_value(None, "journal_mode", |row| row.get(0))
        .unwrap();
    assert_eq!(journal_mode, "wal");
    let foreign_keys: bool = store
        .db
        .sqlite_connection()
        .pragma_query_value(None, "foreign_keys", |row| row.get(0))
        .unwrap();
    assert!(foreign_keys);
}

#[test]
fn a_recorded_cell_is_visible_to_another_connection_at_once() {
    let (_dir, path) = temp_db();
    let mut writer = Store::open(&path).unwrap();
    let run = create_run(&mut writer, "plan-a", GRID);
    record(
        &mut writer,
        run,
        ("t2", "m2"),
        completed("k1", full_completion("hi"), false),
    );

    // The writer stays open: what another process sees now is what survives a SIGKILL.
    let reader = Store::open(&path).unwrap();
    let seen = cell(&reader, run, ("t2", "m2"));
    assert_eq!(seen.status, CellStatus::Ok);
    assert_eq!(seen.completion.unwrap().completion, full_completion("hi"));
    drop(writer);
}

fn a_new_database_is_at_the_latest_schema() {
    let store = memory_store();
    assert_eq!(
        store.schema_version().unwrap(),
        schema::latest_version(schema::MIGRATIONS)
    );
    // Both backends have had the same migrations: one vocabulary, one version number.
    assert_eq!(schema::MIGRATIONS.len(), schema::POSTGRES_MIGRATIONS.len());
}

#[test]
fn a_database_from_a_newer_versus_is_refused() {
    let (_dir, path) = temp_db();
    drop(Store::open(&path).unwrap());
    set_user_version(&path, 99);
    let error = Store::open(&path).err().unwrap();
    let latest = schema::latest_version(schema::MIGRATIONS);
    assert!(matches!(
        error,
        StoreError::NewerSchema { found: 99, supported, .. } if supported == latest
    ));
    assert_eq!(
        error.to_string(),
        format!(
            "the database at {} was written by a newer versus (schema 99, this build knows {latest}); \
             upgrade versus or use another --db",
            path.display()
        )
    );
}

#[test]
fn an_appended_migration_is_applied_to_an_existing_database() {
    let (_dir, path) = temp_db();
    let run = {
        let mut store = Store::open(&path).unwrap();
        create_run(&mut store, "plan-a", GRID)
    };
    let latest = schema::latest_version(schema::MIGRATIONS);
    let add_table =
        "CREATE TABLE test_extra (run_id INTEGER NOT NULL REFERENCES runs (id), note TEXT);";
    let mut migrations = schema::MIGRATIONS.to_vec();
    migrations.push(add_table);

    let store = open_sqlite_with(&path, &migrations).unwrap();
    assert_eq!(store.schema_version().unwrap(), latest + 1);
    store
        .db
        .sqlite_connection()
        .execute(
            "INSERT INTO test_extra (run_id, note) VALUES (?1, 'x')",
            [run],
        )
        .unwrap();
    assert_eq!(store.cells(run).unwrap().len(), 4, "existing data is kept");
    drop(store);

    // Applied once: opening again with the same list changes nothing.
    let store = open_sqlite_with(&path, &migrations).unwrap();
    assert_eq!(store.schema_version().unwrap(), latest + 1);
    // And this build, which does not know the extra migration, now refuses the database.
    drop(store);
    assert!(matches!(
        Store::open(&path),
        Err(StoreError::NewerSchema { found, .. }) if found == latest + 1
    ));
}

#[test]
fn a_version_one_database_is_upgraded_in_place() {
    let (_dir, path) = temp_db();
    {
        // Written as a version-1 build wrote it: no sample column anywhere.
        let store = open_sqlite_with(&path, &schema::MIGRATIONS[..1]).unwrap();
        store
            .db
            .sqlite_connection()
            .execute_batch(&format!(
                "INSERT INTO runs (id, suite_name, suite_hash, suite_text, plan_fingerprint, \
                 plan_json, models_json, tool_version, status) VALUES (1, 'seed', 'h', 't', \
                 'plan-a', '{}', '[\"m1\",\"m2\"]', '0.1.0', 'running'); \
                 INSERT INTO cells (run_id, task_id, model_id, position, status) VALUES \
                 (1, 't1', 'm1', 0, 'pending'), (1, 't1', 'm2', 1, 'pending'), \
                 (1, 't2', 'm1', 2, 'pending'), (1, 't2', 'm2', 3, 'pending');",
                sample_plan().to_json().replace('\'', "''")
            ))
            .unwrap();
    }
    let mut store = Store::open(&path).unwrap();
    assert_eq!(
        store.schema_version().unwrap(),
        schema::latest_version(schema::MIGRATIONS)
    );
    let cells = store.cells(1).unwrap();
    assert_eq!(cells.len(), 4, "existing data is kept");
    assert!(
        cells.iter().all(|c| c.sample == 0),
        "old cells are sample 0"
    );
    assert_eq!(cells[2].id(), CellId::first("t2", "m1"), "in their order");
    assert!(store.scores(1).unwrap().is_empty());
    // The rebuilt tables take new samples beside the old rows.
    store
        .record_cell(1, &cell_id("t1", "m1"), &unsupported("no"))
        .unwrap();
    assert_eq!(store.cells(1).unwrap()[0].status, CellStatus::Unsupported);
}

#[test]
fn a_version_two_database_keeps_its_scores_as_sample_zero() {
    let (_dir, path) = temp_db();
    {
        let store = open_sqlite_with(&path, &schema::MIGRATIONS[..2]).unwrap();
        store
            .db
            .sqlite_connection()
            .execute_batch(&format!(
                "INSERT INTO runs (id, suite_name, suite_hash, suite_text, plan_fingerprint, \
                 plan_json, models_json, tool_version, status) VALUES (1, 'seed', 'h', 't', \
                 'plan-a', '{}', '[\"m1\"]', '0.1.0', 'finished'); \
                 INSERT INTO cells (run_id, task_id, model_id, position, status) VALUES \
                 (1, 't1', 'm1', 0, 'failed'); \
                 INSERT INTO scores (run_id, task_id, model_id, scorer, value, passed, \
                 explanation) VALUES (1, 't1', 'm1', 'checks', 0.5, 0, 'half');",
                sample_plan().to_json().replace('\'', "''")
            ))
            .unwrap();
    }
    let store = Store::open(&path).unwrap();
    let scores = store.scores(1).unwrap();
    assert_eq!(scores.len(), 1);
    assert_eq!(
        (scores[0].sample, scores[0].value, scores[0].passed),
        (0, Some(0.5), Some(false))
    );
}

#[test]
fn a_failing_migration_leaves_the_database_at_the_previous_version() {
    let (_dir, path) = temp_db();
    drop(open_sqlite_with(&path, &schema::MIGRATIONS[..1]).unwrap());
    let broken = "CREATE TABLE half (x INTEGER); THIS IS NOT SQL;";
    let error = open_sqlite_with(&path, &[schema::MIGRATIONS[0], broken])
        .err()
        .unwrap();
    assert!(matches!(error, StoreError::Migration { version: 2, .. }));
    let store = open_sqlite_with(&path, &schema::MIGRATIONS[..1]).unwrap();
    assert_eq!(store.schema_version().unwrap(), 1);
    let half_tables: i64 = store
        .db
        .sqlite_connection()
        .query_row(
            "SELECT COUNT(*) FROM sqlite_master WHERE name = 'half'",
            [],
            |row| row.get(0),
        )
        .unwrap();
    assert_eq!(half_tables, 0, "the failed migration was rolled back whole");
}

#[test]
fn opening_in_a_missing_folder_names_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("no-such-folder").join("versus.db");
    let error = Store::open(&path).err().unwrap();
    assert!(matches!(error, StoreError::Open { .. }));
    let message = error.to_string();
    assert!(message.contains(&path.display().to_string()), "{message}");
    assert!(
        message.ends_with("check the path or pass --db"),
        "{message}"
    );
}

#[test]
fn opening_a_file_that_is_not_a_database_fails_cleanly() {
    let (_dir, path) = temp_db();
    std::fs::write(&path, "this is a text file, not SQLite ".repeat(100)).unwrap();
    assert!(matches!(Store::open(&path), Err(StoreError::Open { .. })));
}

#[test]
fn the_store_can_move_to_another_thread() {
    fn assert_send<T: Send>() {}
    assert_send::<Store>();
}

fn an_unreadable_plan_is_one_error_naming_the_run() {
    let mut store = memory_store();
    let run = create_run(&mut store, "plan-a", GRID);
    store
        .db
        .execute(
            "UPDATE runs SET plan_json = '{\"suite\": 7}' WHERE id = ?1",
            params![run],
        )
        .unwrap();
    for error in [
        store.run(run).unwrap_err(),
        store.run_plan(run).unwrap_err(),
    ] {
        assert!(matches!(error, StoreError::UnreadablePlan { run: r, .. } if r == run));
        let message = error.to_string();
        assert!(
            message.starts_with(&format!("run {run}'s plan cannot be read: ")),
            "{message}"
        );
        assert!(
            message.contains("incompatible version of versus"),
            "{message}"
        );
    }
}

fn unknown_judgement_words_are_reported_as_corrupt_not_guessed() {
    let mut store = memory_store();
    let run = create_run(&mut store, "plan-a", GRID);
    store
        .db
        .execute(
            "INSERT INTO judgements (run_id, task_id, kind, model_a, model_b, judge, verdict, rating, detail_json) \
             VALUES (?1, 't1', 'pairwise', 'm1', 'm2', 'j', 'landslide', NULL, '{}')",
            params![run],
        )
        .unwrap();
    let message = store.judgements(run).unwrap_err().to_string();
    assert!(message.contains("judgement verdict (run"), "{message}");
    assert!(
        message.contains("unknown judge verdict \"landslide\""),
        "{message}"
    );
}

fn samples_of_one_task_are_separate_cells_with_separate_scores() {
    let mut store = fresh_store();
    let cells: Vec<CellId> = (0..3).map(|i| CellId::sample("t1", "m1", i)).collect();
    let run = store
        .create_run(&NewRun {
            suite_name: "seed",
            suite_hash: "h",
            suite_text: "",
            plan_fingerprint: "plan-s",
            plan: &sample_plan(),
            models: &["m1".to_string()],
            tool_version: "0.1.0",
            cells: &cells,
        })
        .unwrap();
    for (i, cell) in cells.iter().enumerate() {
        let text = format!("answer {i}");
        store
            .record_cell(
                run,
                cell,
                &completed(&format!("k{i}"), bare_completion(&text), false),
            )
            .unwrap();
        let score = ScoreRecord {
            task_id: cell.task_id.clone(),
            model_id: cell.model_id.clone(),
            sample: cell.sample,
            scorer: "checks".into(),
            value: Some(i as f64),
            passed: Some(i % 2 == 0),
            explanation: String::new(),
        };
        store.replace_scores(run, cell, &[score]).unwrap();
    }
    let stored = store.cells(run).unwrap();
    assert_eq!(
        stored.iter().map(|c| c.sample).collect::<Vec<_>>(),
        [0, 1, 2]
    );
    let texts: Vec<&str> = stored
        .iter()
        .map(|c| c.completion.as_ref().unwrap().completion.text.as_str())
        .collect();
    assert_eq!(texts, ["answer 0", "answer 1", "answer 2"]);
    let scores = store.scores(run).unwrap();
    assert_eq!(
        scores
            .iter()
            .map(|s| (s.sample, s.value))
            .collect::<Vec<_>>(),
        [(0, Some(0.0)), (1, Some(1.0)), (2, Some(2.0))]
    );
    // Re-scoring one sample leaves the others alone.
    store.replace_scores(run, &cells[1], &[]).unwrap();
    assert_eq!(store.scores(run).unwrap().len(), 2);
    let missing = store
        .record_cell(run, &CellId::sample("t1", "m1", 7), &unsupported("no"))
        .unwrap_err();
    assert!(missing.to_string().contains("sample 8"), "{missing}");
}

fn a_database_a_newer_versus_wrote_is_refused_on_every_backend() {
    let db = crate::testing::fresh_database();
    let store = Store::connect(&db).unwrap();
    match store.db.dialect() {
        db::Dialect::Sqlite => store
            .db
            .with_connection(|conn| conn.batch("PRAGMA user_version = 99")),
        db::Dialect::Postgres => store
            .db
            .with_connection(|conn| conn.batch("UPDATE versus_schema SET version = 99")),
    }
    .unwrap();
    drop(store);
    let error = Store::connect(&db).err().unwrap();
    assert!(
        matches!(error, StoreError::NewerSchema { found: 99, .. }),
        "{error}"
    );
}

fn processes_opening_a_fresh_database_at_once_migrate_it_once() {
    let db = crate::testing::fresh_database();
    let openers: Vec<_> = (0..4)
        .map(|_| {
            let db = db.clone();
            std::thread::spawn(move || Store::connect(&db).map(|store| store.schema_version()))
        })
        .collect();
    for opener in openers {
        let version = opener.join().unwrap().unwrap().unwrap();
        assert_eq!(version, schema::latest_version(schema::MIGRATIONS));
    }
}
