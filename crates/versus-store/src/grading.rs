//! What grading stores: scores of answers, cached evaluations (code runs, judge calls), judge
//! verdicts, and votes. Each write is one short transaction, like the run's cells.

use rusqlite::{params, OptionalExtension};

use crate::{RunId, Store, StoreError};

/// One score of one answer.
#[derive(Debug, Clone, PartialEq)]
pub struct ScoreRecord {
    pub task_id: String,
    pub model_id: String,
    /// What produced it: `check:<label>`, `checks`, `rougeL`, `style.flesch_reading_ease`, ...
    pub scorer: String,
    pub value: Option<f64>,
    pub passed: Option<bool>,
    pub explanation: String,
}

/// A judge's verdict on one task: a pair of answers, or one answer's rating.
#[derive(Debug, Clone, PartialEq)]
pub struct JudgementRecord {
    pub task_id: String,
    /// `pairwise` or `single`.
    pub kind: String,
    pub model_a: String,
    /// Empty for single ratings.
    pub model_b: String,
    pub judge: String,
    /// Pairwise: `model_a`, `model_b`, `tie`, `inconsistent` or `error`; single: `rated` or `error`.
    pub verdict: String,
    pub rating: Option<f64>,
    /// Both orders' prompts, outputs and parsed verdicts, as JSON.
    pub detail_json: String,
}

/// A vote between two models, from a person or an imported battle log.
#[derive(Debug, Clone, PartialEq)]
pub struct VoteRecord {
    pub run_id: Option<RunId>,
    pub task_id: Option<String>,
    pub category: Option<String>,
    pub model_a: String,
    pub model_b: String,
    /// `model_a`, `model_b`, `tie` or `tie (bothbad)`.
    pub winner: String,
    /// `human` or `import`.
    pub source: String,
    pub voter: Option<String>,
    pub judge: Option<String>,
}

impl Store {
    /// Replaces every score of one answer, in one transaction.
    pub fn replace_scores(
        &mut self,
        run: RunId,
        task_id: &str,
        model_id: &str,
        scores: &[ScoreRecord],
    ) -> Result<(), StoreError> {
        let tx = self.write_transaction()?;
        tx.execute(
            "DELETE FROM scores WHERE run_id = ?1 AND task_id = ?2 AND model_id = ?3",
            params![run, task_id, model_id],
        )?;
        {
            let mut insert = tx.prepare(
                "INSERT INTO scores (run_id, task_id, model_id, scorer, value, passed, explanation)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?;
            for score in scores {
                insert.execute(params![
                    run,
                    task_id,
                    model_id,
                    score.scorer,
                    score.value,
                    score.passed,
                    score.explanation
                ])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Every score of a run, by task, model and scorer.
    pub fn scores(&self, run: RunId) -> Result<Vec<ScoreRecord>, StoreError> {
        let mut query = self.conn.prepare(
            "SELECT task_id, model_id, scorer, value, passed, explanation FROM scores
             WHERE run_id = ?1 ORDER BY task_id, model_id, scorer",
        )?;
        let rows = query.query_map(params![run], |row| {
            Ok(ScoreRecord {
                task_id: row.get(0)?,
                model_id: row.get(1)?,
                scorer: row.get(2)?,
                value: row.get(3)?,
                passed: row.get(4)?,
                explanation: row.get(5)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// A cached evaluation (its JSON result) by the key over everything that decides it.
    pub fn lookup_evaluation(&self, key: &str) -> Result<Option<String>, StoreError> {
        Ok(self
            .conn
            .query_row(
                "SELECT result_json FROM evaluations WHERE key = ?1",
                params![key],
                |row| row.get(0),
            )
            .optional()?)
    }

    pub fn store_evaluation(
        &mut self,
        key: &str,
        kind: &str,
        result_json: &str,
    ) -> Result<(), StoreError> {
        self.conn.execute(
            "INSERT OR REPLACE INTO evaluations (key, kind, result_json) VALUES (?1, ?2, ?3)",
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
        self.conn.execute(
            "INSERT OR REPLACE INTO judgements
             (run_id, task_id, kind, model_a, model_b, judge, verdict, rating, detail_json)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            params![
                run,
                judgement.task_id,
                judgement.kind,
                judgement.model_a,
                judgement.model_b,
                judgement.judge,
                judgement.verdict,
                judgement.rating,
                judgement.detail_json
            ],
        )?;
        Ok(())
    }

    pub fn judgements(&self, run: RunId) -> Result<Vec<JudgementRecord>, StoreError> {
        let mut query = self.conn.prepare(
            "SELECT task_id, kind, model_a, model_b, judge, verdict, rating, detail_json
             FROM judgements WHERE run_id = ?1 ORDER BY task_id, kind, model_a, model_b",
        )?;
        let rows = query.query_map(params![run], |row| {
            Ok(JudgementRecord {
                task_id: row.get(0)?,
                kind: row.get(1)?,
                model_a: row.get(2)?,
                model_b: row.get(3)?,
                judge: row.get(4)?,
                verdict: row.get(5)?,
                rating: row.get(6)?,
                detail_json: row.get(7)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Adds votes in one transaction; returns how many.
    pub fn add_votes(&mut self, votes: &[VoteRecord]) -> Result<usize, StoreError> {
        let tx = self.write_transaction()?;
        {
            let mut insert = tx.prepare(
                "INSERT INTO votes
                 (run_id, task_id, category, model_a, model_b, winner, source, voter, judge)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            )?;
            for vote in votes {
                insert.execute(params![
                    vote.run_id,
                    vote.task_id,
                    vote.category,
                    vote.model_a,
                    vote.model_b,
                    vote.winner,
                    vote.source,
                    vote.voter,
                    vote.judge
                ])?;
            }
        }
        tx.commit()?;
        Ok(votes.len())
    }

    /// Every vote, oldest first.
    pub fn votes(&self) -> Result<Vec<VoteRecord>, StoreError> {
        let mut query = self.conn.prepare(
            "SELECT run_id, task_id, category, model_a, model_b, winner, source, voter, judge
             FROM votes ORDER BY id",
        )?;
        let rows = query.query_map([], |row| {
            Ok(VoteRecord {
                run_id: row.get(0)?,
                task_id: row.get(1)?,
                category: row.get(2)?,
                model_a: row.get(3)?,
                model_b: row.get(4)?,
                winner: row.get(5)?,
                source: row.get(6)?,
                voter: row.get(7)?,
                judge: row.get(8)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn score(scorer: &str, value: f64) -> ScoreRecord {
        ScoreRecord {
            task_id: "t".into(),
            model_id: "m".into(),
            scorer: scorer.into(),
            value: Some(value),
            passed: Some(value > 0.5),
            explanation: format!("{scorer} explained"),
        }
    }

    fn store_with_run() -> (Store, RunId) {
        let mut store = Store::open_in_memory().unwrap();
        let cells = [crate::CellId {
            task_id: "t".into(),
            model_id: "m".into(),
        }];
        let run = store
            .create_run(&crate::NewRun {
                suite_name: "s",
                suite_hash: "h",
                suite_text: "",
                plan_fingerprint: "f",
                plan_json: "{}",
                models: &["m".to_string()],
                tool_version: "0",
                cells: &cells,
            })
            .unwrap();
        (store, run)
    }

    #[test]
    fn scores_are_replaced_per_answer() {
        let (mut store, run) = store_with_run();
        store
            .replace_scores(run, "t", "m", &[score("a", 1.0), score("b", 0.0)])
            .unwrap();
        store
            .replace_scores(run, "t", "m", &[score("a", 0.25)])
            .unwrap();
        assert_eq!(store.scores(run).unwrap(), vec![score("a", 0.25)]);
    }

    #[test]
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
            kind: "pairwise".into(),
            model_a: "m".into(),
            model_b: "n".into(),
            judge: "j".into(),
            verdict: "inconsistent".into(),
            rating: None,
            detail_json: "{}".into(),
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
            winner: "tie (bothbad)".into(),
            source: "human".into(),
            voter: Some("ada".into()),
            judge: None,
        };
        assert_eq!(store.add_votes(&[vote.clone(), vote.clone()]).unwrap(), 2);
        assert_eq!(store.votes().unwrap(), vec![vote.clone(), vote]);
        assert_eq!(store.schema_version().unwrap(), 2);
    }
}
