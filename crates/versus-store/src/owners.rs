//! Which process works on a run: one at a time. A process claims a run before it asks its
//! models, refreshes a heartbeat while it works and releases the run when it stops; a second
//! process finds the claim, says who holds the run, and leaves. A claim whose heartbeat is
//! older than the staleness limit (its process died without releasing it), or whose process is
//! gone from this host, is taken over.

use crate::db::{params, SQLITE_UNIX_NOW};
use crate::{RunId, Store, StoreError};

/// The process working on a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunOwner {
    pub pid: u32,
    pub host: String,
}

/// What a claim found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// This process now holds the run.
    Claimed,
    /// Another live process holds it; its heartbeat is `heartbeat_age_secs` old.
    HeldBy {
        owner: RunOwner,
        heartbeat_age_secs: i64,
    },
}

/// Seconds since the Unix epoch, as the database sees the clock (the database's clock, so that
/// processes on several machines compare the same one).
const SQL_UNIX_NOW: &str = SQLITE_UNIX_NOW;

impl Store {
    /// Claims `run` for `me`, unless another process holds it with a heartbeat younger than
    /// `stale_after_secs` and (on this host) is still alive per `alive`.
    pub fn claim_run(
        &mut self,
        run: RunId,
        me: &RunOwner,
        stale_after_secs: i64,
        alive: impl Fn(u32) -> bool,
    ) -> Result<Claim, StoreError> {
        let tx = self.write_transaction()?;
        // On PostgreSQL the run's row is locked first, so that claims of one run take turns
        // (two processes could otherwise both find no claim and both insert one); SQLite's
        // BEGIN IMMEDIATE already serialises them.
        if tx.dialect() == crate::db::Dialect::Postgres
            && tx
                .query_opt("SELECT id FROM runs WHERE id = ?1 FOR UPDATE", params![run])?
                .is_none()
        {
            return Err(StoreError::RunNotFound(run));
        }
        let holder: Option<(u32, String, i64)> = tx
            .query_opt(
                &format!(
                    "SELECT pid, host, {SQL_UNIX_NOW} - heartbeat_at AS age FROM run_owners \
                     WHERE run_id = ?1"
                ),
                params![run],
            )?
            .map(|row| -> Result<_, StoreError> {
                Ok((row.get("pid")?, row.get("host")?, row.get("age")?))
            })
            .transpose()?;
        if let Some((pid, host, age)) = holder {
            let mine = pid == me.pid && host == me.host;
            let dead_here = host == me.host && !alive(pid);
            if !mine && !dead_here && age < stale_after_secs {
                return Ok(Claim::HeldBy {
                    owner: RunOwner { pid, host },
                    heartbeat_age_secs: age.max(0),
                });
            }
        }
        tx.execute(
            &format!(
                "INSERT INTO run_owners (run_id, pid, host, claimed_at, heartbeat_at) \
                 VALUES (?1, ?2, ?3, {SQL_UNIX_NOW}, {SQL_UNIX_NOW}) \
                 ON CONFLICT (run_id) DO UPDATE SET pid = excluded.pid, host = excluded.host, \
                 claimed_at = excluded.claimed_at, heartbeat_at = excluded.heartbeat_at"
            ),
            params![run, me.pid, me.host],
        )?;
        tx.commit()?;
        Ok(Claim::Claimed)
    }

    /// Refreshes `me`'s heartbeat on `run`; `false` if `me` no longer holds it.
    pub fn heartbeat(&mut self, run: RunId, me: &RunOwner) -> Result<bool, StoreError> {
        let changed = self.db.execute(
            &format!(
                "UPDATE run_owners SET heartbeat_at = {SQL_UNIX_NOW} \
                 WHERE run_id = ?1 AND pid = ?2 AND host = ?3"
            ),
            params![run, me.pid, me.host],
        )?;
        Ok(changed > 0)
    }

    /// Gives `run` up, if `me` holds it.
    pub fn release_run(&mut self, run: RunId, me: &RunOwner) -> Result<(), StoreError> {
        self.db.execute(
            "DELETE FROM run_owners WHERE run_id = ?1 AND pid = ?2 AND host = ?3",
            params![run, me.pid, me.host],
        )?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::on_both_backends;

    on_both_backends!(one_process_at_a_time_works_on_a_run);
    use crate::tests::one_run;

    fn owner(pid: u32, host: &str) -> RunOwner {
        RunOwner {
            pid,
            host: host.into(),
        }
    }

    fn one_process_at_a_time_works_on_a_run() {
        let (mut store, run) = one_run();
        let first = owner(100, "a");
        let second = owner(200, "a");
        let alive = |_| true;
        assert_eq!(
            store.claim_run(run, &first, 30, alive).unwrap(),
            Claim::Claimed
        );
        // The holder may claim again (a resume in the same process).
        assert_eq!(
            store.claim_run(run, &first, 30, alive).unwrap(),
            Claim::Claimed
        );
        match store.claim_run(run, &second, 30, alive).unwrap() {
            Claim::HeldBy { owner, .. } => assert_eq!(owner, first),
            Claim::Claimed => panic!("claimed a held run"),
        }
        assert!(store.heartbeat(run, &first).unwrap());
        assert!(!store.heartbeat(run, &second).unwrap());
        // A holder that died on this host is taken over at once.
        assert_eq!(
            store.claim_run(run, &second, 30, |pid| pid != 100).unwrap(),
            Claim::Claimed
        );
        // A stale heartbeat from another host is taken over.
        let remote = owner(300, "b");
        assert_eq!(
            store.claim_run(run, &remote, 0, alive).unwrap(),
            Claim::Claimed
        );
        store.release_run(run, &remote).unwrap();
        assert_eq!(
            store.claim_run(run, &first, 30, alive).unwrap(),
            Claim::Claimed
        );
    }
}
