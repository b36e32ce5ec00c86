//! What grading stores: scores of answers, cached evaluations (code runs, judge calls), judge
//! verdicts, and votes. Each write is one short transaction, like the run's cells.

use crate::db::{params, Row};
use crate::schema::sql_now;
use crate::{corrupt, CellId, RunId, Store, StoreError};

/// The columns [`judgement_from_row`] reads, in its order.
pub(crate) const JUDGEMENT_COLUMNS: &str =
    "task_id, kind, model_a, model_b, judge, verdict, rating, detail_json";

/// The one place a stored judgement is decoded: its words into enums, its detail into JSON.
pub(crate) fn judgement_from_row(run: RunId, row: &Row) -> Result<JudgementRecord, StoreError> {
    let task_id: String = row.get(0)?;
    let place = |field: &str| format!("judgement {field} (run {run}, task `{task_id}`)");
    let kind: String = row.get(1)?;
    let verdict: String = row.get(5)?;
    let detail: String = row.get(7)?;
    Ok(JudgementRecord {
        kind: kind
            .parse()
            .map_err(|e: versus_core::record::UnknownSpelling| {
                corrupt(place("kind"), e.to_string())
            })?,
        model_a: row.get(2)?,
        model_b: row.get(3)?,
        judge: row.get(4)?,
        verdict: verdict
            .parse()
            .map_err(|e: versus_core::record::UnknownSpelling| {
                corrupt(place("verdict"), e.to_string())
            })?,
        rating: row.get(6)?,
        detail: serde_json::from_str(&detail)
            .map_err(|e| corrupt(place("detail"), e.to_string()))?,
        task_id,
    })
}

/// The columns [`score_from_row`] reads, in its order.
pub(crate) const SCORE_COLUMNS: &str =
    "task_id, model_id, sample, scorer, value, passed, explanation";

/// The one place a stored score is decoded.
pub(crate) fn score_from_row(row: &Row) -> Result<ScoreRecord, StoreError> {
    Ok(ScoreRecord {
        task_id: row.get(0)?,
        model_id: row.get(1)?,
        sample: row.get(2)?,
        scorer: row.get(3)?,
        value: row.get(4)?,
        passed: row.get(5)?,
        explanation: row.get(6)?,
    })
}

fn vote_from_row(row: &Row) -> Result<VoteRecord, StoreError> {
    let id: i64 = row.get(0)?;
    let place = |field: &str| format!("vote {field} (vote {id})");
    let winner: String = row.get(6)?;
    let source: String = row.get(7)?;
    Ok(VoteRecord {
        run_id: row.get(1)?,
        task_id: row.get(2)?,
        category: row.get(3)?,
        model_a: row.get(4)?,
        model_b: row.get(5)?,
        winner: winner
            .parse()
            .map_err(|e: versus_core::ratings::UnknownWinner| {
                corrupt(place("winner"), e.to_string())
            })?,
        source: source
            .parse()
            .map_err(|e: versus_core::record::UnknownSpelling| {
                corrupt(place("source"), e.to_string())
            })?,
        voter: row.get(8)?,
        judge: row.get(9)?,
    })
}

/// One score of one answer.
#[derive(Debug, Clone, PartialEq)]
pub struct ScoreRecord {
    pub task_id: String,
    pub model_id: String,
    /// Which repeated sample's answer this scores (0-based).
    pub sample: u32,
    /// What produced it: `check:<label>`, `checks`, `rougeL`, `style.flesch_reading_ease`, ...
    pub scorer: String,
    pub value: Option<f64>,
    pub passed: Option<bool>,
    pub explanation: String,
}

/// A judge's verdict on one task, as core defines it; stored with its kind and verdict as words.
pub type JudgementRecord = versus_core::Judgement;

/// A vote between two models, as core defines it.
pub type VoteRecord = versus_core::Vote;

impl Store {
    /// Replaces every score of one answer, in one transaction. The scores are stored under
    /// `cell`, whatever cell their own fields name.
    pub fn replace_scores(
        &mut self,
        run: RunId,
        cell: &CellId,
        scores: &[ScoreRecord],
    ) -> Result<(), StoreError> {
        let tx = self.write_transaction()?;
        tx.execute(
            "DELETE FROM scores WHERE run_id = ?1 AND task_id = ?2 AND model_id = ?3 \
             AND sample = ?4",
            params![run, cell.task_id, cell.model_id, cell.sample],
        )?;
        let rows = scores
            .iter()
            .map(|score| {
                params![
                    run,
                    cell.task_id,
                    cell.model_id,
                    cell.sample,
                    score.scorer,
                    score.value,
                    score.passed,
                    score.explanation
                ]
            })
            .collect();
        tx.insert_rows(
            "scores",
            &[
                "run_id",
                "task_id",
                "model_id",
                "sample",
                "scorer",
                "value",
                "passed",
                "explanation",
            ],
            rows,
        )?;
        tx.commit()?;
        Ok(())
    }

    /// Every score of a run, by task, model and scorer.
    pub fn scores(&self, run: RunId) -> Result<Vec<ScoreRecord>, StoreError> {
        self.db
            .query(
                &format!(
                    "SELECT {SCORE_COLUMNS} FROM scores \
                     WHERE run_id = ?1 ORDER BY task_id, model_id, sample, scorer"
                ),
                params![run],
            )?
            .iter()
            .map(score_from_row)
            .collect()
    }

    /// A cached evaluation (its JSON result) by the key over everything that decides it.
    pub fn lookup_evaluation(&self, key: &str) -> Result<Option<String>, StoreError> {
        self.db
            .query_opt(
                "SELECT result_json FROM evaluations WHERE key = ?1",
                params![key],
            )?
            .map(|row| row.get(0))
            .transpose()
    }

    pub fn store_evaluation(
        &mut self,
        key: &str,
        kind: &str,
        result_json: &str,
    ) -> Result<(), StoreError> {
        self.db.execute(
            concat!(
                "INSERT INTO evaluations (key, kind, result_json) VALUES (?1, ?2, ?3) \
                 ON CONFLICT (key) DO UPDATE SET kind = excluded.kind, \
                 result_json = excluded.result_json, created_at = ",
                sql_now!()
            ),
            params![key, kind, result_json],
        )?;
        Ok(())
    }

    /// Records (or replaces) a judge's verdict.
    pub fn record_judgement(
        &mut self,
        run: RunId,
        judgement: &JudgementRecord,
    ) -> Result<(), StoreError> {
        self.db.execute(
            concat!(
                "INSERT INTO judgements \
                 (run_id, task_id, kind, model_a, model_b, judge, verdict, rating, detail_json) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) \
                 ON CONFLICT (run_id, task_id, kind, model_a, model_b, judge) DO UPDATE SET \
                 verdict = excluded.verdict, rating = excluded.rating, \
                 detail_json = excluded.detail_json, created_at = ",
                sql_now!()
            ),
            params![
                run,
                judgement.task_id,
                judgement.kind.as_str(),
                judgement.model_a,
                judgement.model_b,
                judgement.judge,
                judgement.verdict.as_str(),
                judgement.rating,
                judgement.detail.to_string()
            ],
        )?;
        Ok(())
    }

    pub fn judgements(&self, run: RunId) -> Result<Vec<JudgementRecord>, StoreError> {
        self.db
            .query(
                &format!(
                    "SELECT {JUDGEMENT_COLUMNS} FROM judgements WHERE run_id = ?1 \
                     ORDER BY task_id, kind, model_a, model_b"
                ),
                params![run],
            )?
            .iter()
            .map(|row| judgement_from_row(run, row))
            .collect()
    }

    /// Adds votes in one transaction; returns how many.
    pub fn add_votes(&mut self, votes: &[VoteRecord]) -> Result<usize, StoreError> {
        let tx = self.write_transaction()?;
        for vote in votes {
            tx.execute(
                "INSERT INTO votes \
                 (run_id, task_id, category, model_a, model_b, winner, source, voter, judge) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                params![
                    vote.run_id,
                    vote.task_id,
                    vote.category,
                    vote.model_a,
                    vote.model_b,
                    vote.winner.as_str(),
                    vote.source.as_str(),
                    vote.voter,
                    vote.judge
                ],
            )?;
        }
        tx.commit()?;
        Ok(votes.len())
    }

    /// Every battle the ratings read: the judge's pairwise verdicts of one run (of every run
    /// when `run` is `None`), each with its task's category from the run's plan, and the votes
    /// (those cast on that run when one is given); of one category if given. `versus ratings`,
    /// reports and the viewer all rate these.
    pub fn battles(
        &self,
        run: Option<RunId>,
        category: Option<&str>,
    ) -> Result<Vec<versus_core::ratings::Battle>, StoreError> {
        let runs: Vec<RunId> = match run {
            Some(run) => vec![run],
            None => self.runs()?.iter().map(|r| r.id).collect(),
        };
        let mut battles = Vec::new();
        for run in runs {
            let plan = self.run_plan(run)?;
            let judgements = self.judgements(run)?;
            battles.extend(versus_core::record::battles(
                &judgements,
                &plan.categories(),
                [],
            ));
        }
        let votes = self.votes()?;
        battles.extend(
            votes
                .iter()
                .filter(|v| run.is_none() || v.run_id == run)
                .map(VoteRecord::battle),
        );
        if let Some(category) = category {
            battles.retain(|b| b.category.as_deref() == Some(category));
        }
        Ok(battles)
    }

    /// Every vote, oldest first.
    pub fn votes(&self) -> Result<Vec<VoteRecord>, StoreError> {
        self.db
            .query(
                "SELECT id, run_id, task_id, category, model_a, model_b, winner, source, voter, \
                 judge FROM votes ORDER BY id",
                params![],
            )?
            .iter()
            .map(vote_from_row)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::on_both_backends;

    on_both_backends!(
        scores_are_replaced_per_answer,
        evaluations_judgements_and_votes_round_trip
    );

    fn score(scorer: &str, value: f64) -> ScoreRecord {
        ScoreRecord {
            task_id: "t".into(),
            model_id: "m".into(),
            sample: 0,
            scorer: scorer.into(),
            value: Some(value),
            passed: Some(value > 0.5),
            explanation: format!("{scorer} explained"),
        }
    }

    fn store_with_run() -> (Store, RunId) {
        let mut store = crate::testing::fresh_store();
        let cells = [crate::CellId {
            task_id: "t".into(),
            model_id: "m".into(),
            sample: 0,
        }];
        let run = store
            .create_run(&crate::NewRun {
                suite_name: "s",
                suite_hash: "h",
                suite_text: "",
                plan_fingerprint: "f",
                plan: &crate::tests::sample_plan(),
                models: &["m".to_string()],
                tool_version: "0",
                cells: &cells,
            })
            .unwrap();
        (store, run)
    }

    fn scores_are_replaced_per_answer() {
        let (mut store, run) = store_with_run();
        store
            .replace_scores(
                run,
                &crate::CellId::first("t", "m"),
                &[score("a", 1.0), score("b", 0.0)],
            )
            .unwrap();
        store
            .replace_scores(run, &crate::CellId::first("t", "m"), &[score("a", 0.25)])
            .unwrap();
        assert_eq!(store.scores(run).unwrap(), vec![score("a", 0.25)]);
    }

    fn evaluations_judgements_and_votes_round_trip() {
        let (mut store, run) = store_with_run();
        assert_eq!(store.lookup_evaluation("k").unwrap(), None);
        store
            .store_evaluation("k", "code", "{\"passed\":true}")
            .unwrap();
        assert_eq!(
            store.lookup_evaluation("k").unwrap().as_deref(),
            Some("{\"passed\":true}")
        );

        let judgement = JudgementRecord {
            task_id: "t".into(),
            kind: versus_core::JudgementKind::Pairwise,
            model_a: "m".into(),
            model_b: "n".into(),
            judge: "j".into(),
            verdict: versus_core::JudgeVerdict::Inconsistent,
            rating: None,
            detail: serde_json::json!({}),
        };
        store.record_judgement(run, &judgement).unwrap();
        store.record_judgement(run, &judgement).unwrap();
        assert_eq!(store.judgements(run).unwrap(), vec![judgement]);

        let vote = VoteRecord {
            run_id: Some(run),
            task_id: Some("t".into()),
            category: None,
            model_a: "m".into(),
            model_b: "n".into(),
            winner: versus_core::ratings::Winner::TieBothBad,
            source: versus_core::VoteSource::Human,
            voter: Some("ada".into()),
            judge: None,
        };
        assert_eq!(store.add_votes(&[vote.clone(), vote.clone()]).unwrap(), 2);
        assert_eq!(store.votes().unwrap(), vec![vote.clone(), vote]);
        assert_eq!(
            store.schema_version().unwrap(),
            crate::schema::latest_version(crate::schema::MIGRATIONS)
        );
    }
}
