//! Batches submitted to providers' batch APIs (`versus run --batch`, migration 6): each is
//! recorded with the provider's id and its cells the moment the provider accepts it, so that an
//! interrupted run polls it again instead of submitting (and paying for) its cells twice.

use crate::db::params;
use crate::schema::sql_now;
use crate::{CellId, RunId, Store, StoreError};

/// One cell of a batch: the id the request carries in the batch, and the cell it answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchCell {
    pub custom_id: String,
    pub cell: CellId,
}

/// A batch the provider has and versus has not read back yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingBatch {
    /// The store's own id of the batch.
    pub row: i64,
    pub model_id: String,
    /// The provider's id, to poll it by.
    pub provider_batch_id: String,
    pub submitted_at: String,
    pub cells: Vec<BatchCell>,
}

/// How a batch was closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BatchEnd {
    /// Its results were read and recorded.
    Ended,
    /// The provider failed it as a whole; its cells went back to ordinary calls.
    Failed,
}

impl Store {
    /// Records a batch the provider accepted, with its cells, in one transaction; returns its row.
    pub fn record_batch(
        &mut self,
        run: RunId,
        model_id: &str,
        provider_batch_id: &str,
        cells: &[BatchCell],
    ) -> Result<i64, StoreError> {
        let tx = self.write_transaction()?;
        let row: i64 = tx
            .query_one(
                "INSERT INTO batches (run_id, model_id, provider_batch_id, status) \
                 VALUES (?1, ?2, ?3, 'pending') RETURNING id",
                params![run, model_id, provider_batch_id],
            )?
            .get("id")?;
        for cell in cells {
            tx.execute(
                "INSERT INTO batch_cells (batch_id, custom_id, task_id, model_id, sample) \
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![
                    row,
                    cell.custom_id,
                    cell.cell.task_id,
                    cell.cell.model_id,
                    cell.cell.sample
                ],
            )?;
        }
        tx.commit()?;
        Ok(row)
    }

    /// A run's batches still to be read back, oldest first, each with its cells.
    pub fn pending_batches(&self, run: RunId) -> Result<Vec<PendingBatch>, StoreError> {
        let mut batches: Vec<PendingBatch> = self
            .db
            .query(
                "SELECT id, model_id, provider_batch_id, submitted_at FROM batches \
                 WHERE run_id = ?1 AND status = 'pending' ORDER BY id",
                params![run],
            )?
            .iter()
            .map(|row| {
                Ok(PendingBatch {
                    row: row.get(0)?,
                    model_id: row.get(1)?,
                    provider_batch_id: row.get(2)?,
                    submitted_at: row.get(3)?,
                    cells: Vec::new(),
                })
            })
            .collect::<Result<_, StoreError>>()?;
        for batch in &mut batches {
            batch.cells = self
                .db
                .query(
                    "SELECT custom_id, task_id, model_id, sample FROM batch_cells \
                     WHERE batch_id = ?1 ORDER BY custom_id",
                    params![batch.row],
                )?
                .iter()
                .map(|row| {
                    Ok(BatchCell {
                        custom_id: row.get(0)?,
                        cell: CellId::sample(
                            row.get::<String>(1)?,
                            row.get::<String>(2)?,
                            row.get(3)?,
                        ),
                    })
                })
                .collect::<Result<_, StoreError>>()?;
        }
        Ok(batches)
    }

    /// Closes a batch: read back (`Ended`) or failed as a whole, with the provider's reason.
    pub fn close_batch(
        &mut self,
        row: i64,
        end: BatchEnd,
        reason: Option<&str>,
    ) -> Result<(), StoreError> {
        let status = match end {
            BatchEnd::Ended => "ended",
            BatchEnd::Failed => "failed",
        };
        let changed = self.db.execute(
            concat!(
                "UPDATE batches SET status = ?2, reason = ?3, closed_at = ",
                sql_now!(),
                " WHERE id = ?1 AND status = 'pending'"
            ),
            params![row, status, reason],
        )?;
        if changed == 0 {
            let exists = self
                .db
                .query_opt("SELECT 1 AS one FROM batches WHERE id = ?1", params![row])?
                .is_some();
            if !exists {
                return Err(StoreError::Corrupt {
                    what: format!("batch {row}"),
                    reason: "no such batch".to_string(),
                });
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::on_both_backends;

    on_both_backends!(a_recorded_batch_is_pending_with_its_cells_until_closed);
    use crate::tests::one_run;

    fn cells(ids: &[(&str, &str)]) -> Vec<BatchCell> {
        ids.iter()
            .map(|(custom_id, task)| BatchCell {
                custom_id: custom_id.to_string(),
                cell: CellId::sample(*task, "m1", 0),
            })
            .collect()
    }

    fn a_recorded_batch_is_pending_with_its_cells_until_closed() {
        let (mut store, run) = one_run();
        let row = store
            .record_batch(
                run,
                "m1",
                "batch_abc",
                &cells(&[("c0", "t1"), ("c1", "t2")]),
            )
            .unwrap();
        let pending = store.pending_batches(run).unwrap();
        assert_eq!(pending.len(), 1);
        assert_eq!(pending[0].provider_batch_id, "batch_abc");
        assert_eq!(pending[0].cells, cells(&[("c0", "t1"), ("c1", "t2")]));
        assert_eq!(store.runs().unwrap()[0].batches_waiting, 1);
        store.close_batch(row, BatchEnd::Ended, None).unwrap();
        assert!(store.pending_batches(run).unwrap().is_empty());
        assert_eq!(store.runs().unwrap()[0].batches_waiting, 0);
        // Closing twice is harmless; closing what never existed is not.
        store
            .close_batch(row, BatchEnd::Failed, Some("late"))
            .unwrap();
        assert!(store.close_batch(row + 100, BatchEnd::Ended, None).is_err());
    }
}
