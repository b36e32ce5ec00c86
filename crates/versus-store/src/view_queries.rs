//! Queries for `versus view`, the local web app: runs, cells, scores and judgements a page at a
//! time, so that a page over a 10,000-task run reads only the rows it shows, plus a comparison of
//! two runs and a bulk writer for cells.
//!
//! Lists of task ids travel as one JSON array parameter read with `json_each` (PostgreSQL:
//! `json_array_elements_text`), so a page is one
//! statement whatever its size, and every lookup uses the primary keys (`run_id, task_id, ...`).

use crate::db::{params, Row};
use versus_core::RunPlan;

use crate::{
    cell_from_row, corrupt, record_outcome, run_summary_from_row, CellId, CellOutcome, CellRecord,
    CellStatus, JudgementRecord, RunId, RunSummary, ScoreRecord, Store, StoreError,
};

/// A run's summary and what identifies its plan, without the plan itself (which can be large).
#[derive(Debug, Clone)]
pub struct RunHeader {
    pub summary: RunSummary,
    /// Changes whenever the plan does; a cache of the parsed plan is keyed by it.
    pub plan_fingerprint: String,
    pub suite_hash: String,
}

/// One cell as a matrix shows it: its outcome, two figures and the beginning of the answer.
#[derive(Debug, Clone, PartialEq)]
pub struct CellPreview {
    pub task_id: String,
    pub model_id: String,
    pub status: CellStatus,
    /// The error message of a failed or unsupported cell.
    pub error: Option<String>,
    pub cached: bool,
    pub latency_ms: Option<f64>,
    pub completion_tokens: Option<u64>,
    /// The first characters of the answer (of an `ok` cell).
    pub preview: Option<String>,
    /// The answer's length in characters.
    pub answer_chars: Option<u64>,
    /// How many samples the task has for this model; the preview is of the first.
    pub samples: u32,
}

/// One answer (task, model, sample) present in two runs, with what the comparison reads from
/// each side.
#[derive(Debug, Clone, PartialEq)]
pub struct CellComparison {
    pub task_id: String,
    pub model_id: String,
    pub sample: u32,
    pub status_a: CellStatus,
    pub status_b: CellStatus,
    /// Both sides have the same answer text (or neither has one).
    pub same_answer: bool,
    pub latency_a: Option<f64>,
    pub latency_b: Option<f64>,
    /// The weighted check score (`checks`) and whether it passed.
    pub checks_a: Option<f64>,
    pub checks_b: Option<f64>,
    pub passed_a: Option<bool>,
    pub passed_b: Option<bool>,
    pub rouge_a: Option<f64>,
    pub rouge_b: Option<f64>,
    /// The mean of the judge's single ratings.
    pub rating_a: Option<f64>,
    pub rating_b: Option<f64>,
}

/// `ids` as the one JSON array parameter that `json_each` reads.
fn id_list(ids: &[String]) -> String {
    serde_json::Value::from(ids.to_vec()).to_string()
}

impl Store {
    /// How many runs there are.
    pub fn run_count(&self) -> Result<u64, StoreError> {
        self.db
            .query_one("SELECT COUNT(*) AS runs FROM runs", params![])?
            .get("runs")
    }

    /// One page of runs, newest first, with their cell counts (`runs` a page at a time).
    pub fn runs_page(&self, offset: u64, limit: u64) -> Result<Vec<RunSummary>, StoreError> {
        self.db
            .query(
                concat!(
                    "SELECT ",
                    run_summary_columns!(),
                    " FROM (SELECT * FROM runs ORDER BY id DESC LIMIT ?1 OFFSET ?2) r \
                     LEFT JOIN cells c ON c.run_id = r.id ",
                    run_summary_group_by!(),
                    " ORDER BY r.id DESC"
                ),
                params![limit, offset],
            )?
            .iter()
            .map(run_summary_from_row)
            .collect()
    }

    /// A run's summary and plan fingerprint, without reading its plan.
    pub fn run_header(&self, run: RunId) -> Result<RunHeader, StoreError> {
        let row = self.db.query_opt(
            concat!(
                "SELECT ",
                run_summary_columns!(),
                ", r.plan_fingerprint, r.suite_hash FROM runs r \
                 LEFT JOIN cells c ON c.run_id = r.id WHERE r.id = ?1 ",
                run_summary_group_by!(),
                ", r.plan_fingerprint, r.suite_hash"
            ),
            params![run],
        )?;
        let Some(row) = row else {
            return Err(StoreError::RunNotFound(run));
        };
        Ok(RunHeader {
            summary: run_summary_from_row(&row)?,
            plan_fingerprint: row.get("plan_fingerprint")?,
            suite_hash: row.get("suite_hash")?,
        })
    }

    /// The plan a run was started from, without the rest of its record.
    pub fn run_plan(&self, run: RunId) -> Result<RunPlan, StoreError> {
        let json: String = self
            .db
            .query_opt("SELECT plan_json FROM runs WHERE id = ?1", params![run])?
            .ok_or(StoreError::RunNotFound(run))?
            .get("plan_json")?;
        crate::decode_plan(run, &json)
    }

    /// The cells of some tasks of a run, in the run's order, each with at most `preview_chars`
    /// characters of its answer.
    pub fn cell_previews(
        &self,
        run: RunId,
        task_ids: &[String],
        preview_chars: usize,
    ) -> Result<Vec<CellPreview>, StoreError> {
        let rows = self.db.query(
            "SELECT c.task_id, c.model_id, c.status, c.error_message, c.cached, \
             p.latency_ms, p.completion_tokens, substr(p.text, 1, ?3) AS preview, \
             length(p.text) AS answer_chars, \
             (SELECT COUNT(*) FROM cells s WHERE s.run_id = c.run_id \
              AND s.task_id = c.task_id AND s.model_id = c.model_id) AS samples \
             FROM cells c LEFT JOIN completions p ON p.key = c.completion_key \
             WHERE c.run_id = ?1 AND c.sample = 0 \
             AND c.task_id IN (SELECT value FROM json_each(?2)) \
             ORDER BY c.position",
            params![
                run,
                id_list(task_ids),
                i64::try_from(preview_chars).unwrap_or(i64::MAX)
            ],
        )?;
        let mut cells = Vec::new();
        for row in &rows {
            let status = cell_status(run, row, "status")?;
            let ok = status == CellStatus::Ok;
            cells.push(CellPreview {
                task_id: row.get("task_id")?,
                model_id: row.get("model_id")?,
                status,
                error: row.get("error_message")?,
                cached: row.get("cached")?,
                latency_ms: if ok { row.get("latency_ms")? } else { None },
                completion_tokens: if ok {
                    row.get("completion_tokens")?
                } else {
                    None
                },
                preview: if ok { row.get("preview")? } else { None },
                answer_chars: if ok { row.get("answer_chars")? } else { None },
                samples: row.get("samples")?,
            });
        }
        Ok(cells)
    }

    /// The cells of some tasks of a run, in the run's order, with their full completions.
    pub fn cells_for_tasks(
        &self,
        run: RunId,
        task_ids: &[String],
    ) -> Result<Vec<CellRecord>, StoreError> {
        self.db
            .query(
                concat!(
                    "SELECT ",
                    cell_columns!(),
                    ", ",
                    completion_columns!(),
                    " FROM cells c LEFT JOIN completions p ON p.key = c.completion_key \
                     WHERE c.run_id = ?1 AND c.task_id IN (SELECT value FROM json_each(?2)) \
                     ORDER BY c.position"
                ),
                params![run, id_list(task_ids)],
            )?
            .iter()
            .map(|row| cell_from_row(run, row))
            .collect()
    }

    /// Every score of some tasks of a run, by task, model and scorer.
    pub fn scores_for_tasks(
        &self,
        run: RunId,
        task_ids: &[String],
    ) -> Result<Vec<ScoreRecord>, StoreError> {
        self.db
            .query(
                &format!(
                    "SELECT {} FROM scores \
                     WHERE run_id = ?1 AND task_id IN (SELECT value FROM json_each(?2)) \
                     ORDER BY task_id, model_id, sample, scorer",
                    crate::grading::SCORE_COLUMNS
                ),
                params![run, id_list(task_ids)],
            )?
            .iter()
            .map(crate::grading::score_from_row)
            .collect()
    }

    /// Every judgement of some tasks of a run.
    pub fn judgements_for_tasks(
        &self,
        run: RunId,
        task_ids: &[String],
    ) -> Result<Vec<JudgementRecord>, StoreError> {
        self.db
            .query(
                &format!(
                    "SELECT {} FROM judgements \
                     WHERE run_id = ?1 AND task_id IN (SELECT value FROM json_each(?2)) \
                     ORDER BY task_id, kind, model_a, model_b",
                    crate::grading::JUDGEMENT_COLUMNS
                ),
                params![run, id_list(task_ids)],
            )?
            .iter()
            .map(|row| crate::grading::judgement_from_row(run, row))
            .collect()
    }

    /// A random (run, task) with at least two answered cells, of one run or of any; `None` when
    /// there is none. For blind voting.
    pub fn random_votable_task(
        &self,
        run: Option<RunId>,
    ) -> Result<Option<(RunId, String)>, StoreError> {
        self.db
            .query_opt(
                "SELECT run_id, task_id FROM cells \
                 WHERE status = 'ok' AND (CAST(?1 AS BIGINT) IS NULL OR run_id = ?1) \
                 AND sample = 0 \
                 GROUP BY run_id, task_id HAVING COUNT(*) >= 2 ORDER BY random() LIMIT 1",
                params![run],
            )?
            .map(|row| Ok((row.get("run_id")?, row.get("task_id")?)))
            .transpose()
    }

    /// Every (task, model) present in both runs, in run `a`'s order, with what changed.
    pub fn compare_runs(&self, a: RunId, b: RunId) -> Result<Vec<CellComparison>, StoreError> {
        for run in [a, b] {
            if !self.run_exists(run)? {
                return Err(StoreError::RunNotFound(run));
            }
        }
        // Scores and ratings are joined per side; the rating is the mean of single ratings.
        let rows = self.db.query(
            "SELECT ca.task_id, ca.model_id, ca.sample, ca.status AS status_a, \
             cb.status AS status_b, \
             (pa.text IS NOT DISTINCT FROM pb.text) AS same_answer, \
             pa.latency_ms AS latency_a, pb.latency_ms AS latency_b, \
             sa.value AS checks_a, sa.passed AS passed_a, sb.value AS checks_b, \
             sb.passed AS passed_b, ra.value AS rouge_a, rb.value AS rouge_b, \
             (SELECT AVG(j.rating) FROM judgements j WHERE j.run_id = ca.run_id \
              AND j.task_id = ca.task_id AND j.kind = 'single' AND j.model_a = ca.model_id) \
              AS rating_a, \
             (SELECT AVG(j.rating) FROM judgements j WHERE j.run_id = cb.run_id \
              AND j.task_id = cb.task_id AND j.kind = 'single' AND j.model_a = cb.model_id) \
              AS rating_b \
             FROM cells ca \
             JOIN cells cb ON cb.run_id = ?2 AND cb.task_id = ca.task_id \
              AND cb.model_id = ca.model_id AND cb.sample = ca.sample \
             LEFT JOIN completions pa ON pa.key = ca.completion_key \
             LEFT JOIN completions pb ON pb.key = cb.completion_key \
             LEFT JOIN scores sa ON sa.run_id = ca.run_id AND sa.task_id = ca.task_id \
              AND sa.model_id = ca.model_id AND sa.sample = ca.sample AND sa.scorer = 'checks' \
             LEFT JOIN scores sb ON sb.run_id = cb.run_id AND sb.task_id = cb.task_id \
              AND sb.model_id = cb.model_id AND sb.sample = cb.sample AND sb.scorer = 'checks' \
             LEFT JOIN scores ra ON ra.run_id = ca.run_id AND ra.task_id = ca.task_id \
              AND ra.model_id = ca.model_id AND ra.sample = ca.sample AND ra.scorer = 'rougeL' \
             LEFT JOIN scores rb ON rb.run_id = cb.run_id AND rb.task_id = cb.task_id \
              AND rb.model_id = cb.model_id AND rb.sample = cb.sample AND rb.scorer = 'rougeL' \
             WHERE ca.run_id = ?1 ORDER BY ca.position",
            params![a, b],
        )?;
        let mut compared = Vec::new();
        for row in &rows {
            let status_a = cell_status(a, row, "status_a")?;
            let status_b = cell_status(b, row, "status_b")?;
            compared.push(CellComparison {
                task_id: row.get("task_id")?,
                model_id: row.get("model_id")?,
                sample: row.get("sample")?,
                status_a,
                status_b,
                same_answer: row.get("same_answer")?,
                latency_a: row.get("latency_a")?,
                latency_b: row.get("latency_b")?,
                checks_a: row.get("checks_a")?,
                checks_b: row.get("checks_b")?,
                passed_a: row.get("passed_a")?,
                passed_b: row.get("passed_b")?,
                rouge_a: row.get("rouge_a")?,
                rouge_b: row.get("rouge_b")?,
                rating_a: row.get("rating_a")?,
                rating_b: row.get("rating_b")?,
            });
        }
        Ok(compared)
    }

    /// Records how many cells ended, all in one transaction (for imports and large test runs;
    /// a live run records each cell as it arrives with [`Store::record_cell`]).
    pub fn record_cells(
        &mut self,
        run: RunId,
        outcomes: &[(CellId, CellOutcome)],
    ) -> Result<(), StoreError> {
        let tx = self.write_transaction()?;
        for (cell, outcome) in outcomes {
            record_outcome(&tx, run, cell, outcome)?;
        }
        tx.commit()?;
        Ok(())
    }
}

fn cell_status(run: RunId, row: &Row, column: &str) -> Result<CellStatus, StoreError> {
    let text: String = row.get(column)?;
    CellStatus::from_column(&text).ok_or_else(|| {
        corrupt(
            format!("cell status (run {run})"),
            format!("unknown value `{text}`"),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::on_both_backends;

    on_both_backends!(
        pages_read_only_the_tasks_asked_for,
        runs_are_paged_newest_first,
        votable_tasks_have_two_answers,
        runs_compare_per_task_and_model
    );
    use crate::{CellId, NewRun};
    use versus_core::{Completion, FinishReason, Timings};

    fn completed(text: &str) -> CellOutcome {
        CellOutcome::Completed {
            key: format!("key-{text}"),
            model_spec: "m".into(),
            request_json: "{}".into(),
            completion: Completion {
                text: text.into(),
                finish_reason: FinishReason::Stop,
                usage: None,
                timings: Timings {
                    latency_ms: 10.0,
                    ttft_ms: None,
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

    /// A run of `tasks` tasks (`t0`, `t1`, ...) on models `a` and `b`, every cell pending.
    fn run_with(store: &mut Store, tasks: usize) -> RunId {
        let cells: Vec<CellId> = (0..tasks)
            .flat_map(|t| {
                ["a", "b"].map(|m| CellId {
                    task_id: format!("t{t}"),
                    model_id: m.into(),
                    sample: 0,
                })
            })
            .collect();
        store
            .create_run(&NewRun {
                suite_name: "s",
                suite_hash: "h",
                suite_text: "",
                plan_fingerprint: "f",
                plan: &crate::tests::sample_plan(),
                models: &["a".to_string(), "b".to_string()],
                tool_version: "0",
                cells: &cells,
            })
            .unwrap()
    }

    fn pages_read_only_the_tasks_asked_for() {
        let mut store = crate::testing::fresh_store();
        let run = run_with(&mut store, 5);
        let answer = "é".repeat(50);
        store
            .record_cells(
                run,
                &[
                    (CellId::first("t1", "a"), completed(&answer)),
                    (CellId::first("t3", "b"), completed("short")),
                ],
            )
            .unwrap();
        let page = store
            .cell_previews(run, &["t3".into(), "t1".into()], 10)
            .unwrap();
        let shown: Vec<(&str, &str)> = page
            .iter()
            .map(|c| (c.task_id.as_str(), c.model_id.as_str()))
            .collect();
        assert_eq!(shown, [("t1", "a"), ("t1", "b"), ("t3", "a"), ("t3", "b")]);
        assert_eq!(page[0].preview.as_deref(), Some("é".repeat(10).as_str()));
        assert_eq!(page[0].answer_chars, Some(50));
        assert_eq!(page[1].status, CellStatus::Pending);
        assert_eq!(page[1].preview, None);
        assert_eq!(store.cells_for_tasks(run, &["t3".into()]).unwrap().len(), 2);
        assert_eq!(store.run_plan(run).unwrap(), crate::tests::sample_plan());
        assert_eq!(store.run_header(run).unwrap().summary.cells_ok, 2);
        assert!(matches!(
            store.run_header(run + 1),
            Err(StoreError::RunNotFound(_))
        ));
    }

    fn runs_are_paged_newest_first() {
        let mut store = crate::testing::fresh_store();
        let runs: Vec<RunId> = (0..3).map(|_| run_with(&mut store, 1)).collect();
        assert_eq!(store.run_count().unwrap(), 3);
        let page: Vec<RunId> = store
            .runs_page(1, 5)
            .unwrap()
            .iter()
            .map(|r| r.id)
            .collect();
        assert_eq!(page, [runs[1], runs[0]]);
        assert_eq!(store.runs_page(0, 1).unwrap()[0].cells_total, 2);
    }

    fn votable_tasks_have_two_answers() {
        let mut store = crate::testing::fresh_store();
        let run = run_with(&mut store, 3);
        assert_eq!(store.random_votable_task(None).unwrap(), None);
        store
            .record_cells(
                run,
                &[
                    (CellId::first("t0", "a"), completed("x")),
                    (CellId::first("t2", "a"), completed("y")),
                    (CellId::first("t2", "b"), completed("z")),
                ],
            )
            .unwrap();
        for _ in 0..5 {
            assert_eq!(
                store.random_votable_task(Some(run)).unwrap(),
                Some((run, "t2".to_string()))
            );
        }
        assert_eq!(store.random_votable_task(Some(run + 1)).unwrap(), None);
    }

    fn runs_compare_per_task_and_model() {
        let mut store = crate::testing::fresh_store();
        let a = run_with(&mut store, 2);
        let b = run_with(&mut store, 1);
        store
            .record_cells(
                a,
                &[
                    (CellId::first("t0", "a"), completed("same")),
                    (CellId::first("t0", "b"), completed("old")),
                ],
            )
            .unwrap();
        store
            .record_cells(
                b,
                &[
                    (CellId::first("t0", "a"), completed("same")),
                    (CellId::first("t0", "b"), completed("new")),
                ],
            )
            .unwrap();
        let score = |value: f64| ScoreRecord {
            task_id: "t0".into(),
            model_id: "b".into(),
            sample: 0,
            scorer: "checks".into(),
            value: Some(value),
            passed: Some(value >= 1.0),
            explanation: String::new(),
        };
        store
            .replace_scores(a, &CellId::first("t0", "b"), &[score(0.5)])
            .unwrap();
        store
            .replace_scores(b, &CellId::first("t0", "b"), &[score(1.0)])
            .unwrap();
        let rows = store.compare_runs(a, b).unwrap();
        assert_eq!(rows.len(), 2, "t1 is only in run a");
        assert!(rows[0].same_answer);
        assert!(!rows[1].same_answer);
        assert_eq!((rows[1].checks_a, rows[1].checks_b), (Some(0.5), Some(1.0)));
        assert_eq!(
            (rows[1].passed_a, rows[1].passed_b),
            (Some(false), Some(true))
        );
        assert!(matches!(
            store.compare_runs(a, 99),
            Err(StoreError::RunNotFound(99))
        ));
    }
}
