//! The store behind the web app: a small pool of connections used on blocking threads, and a
//! cache of parsed run plans.
//!
//! Why a pool and not one `Mutex<Store>`: `Store` is one connection (`Send`, not `Sync`).
//! Behind a single mutex every page would wait for every other, including the ratings page's
//! bootstrap and a vote's write; with WAL, SQLite lets several connections read at once while one
//! writes (a `versus run` in another process included). Opening a connection per request would
//! also work (`Store::open` is cheap) but repeats the pragmas and the migration check each time,
//! so idle connections are kept for reuse, up to a few. The same holds for a PostgreSQL server,
//! where a connection is costlier to open. All database work runs in `spawn_blocking`, never on
//! the async workers.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use versus_store::{Database, RunId, Store};

use super::error::ViewError;
use super::ViewState;
use versus_core::RunPlan;

/// Connections kept open between requests; more may be open at once under load.
const IDLE_CONNECTIONS: usize = 4;
/// Parsed plans kept; a 10,000-task plan is a few megabytes parsed.
const CACHED_PLANS: usize = 8;

/// Connections to one database, opened on demand and reused.
pub struct StorePool {
    db: Database,
    idle: Mutex<Vec<Store>>,
}

impl StorePool {
    pub fn new(db: Database) -> StorePool {
        StorePool {
            db,
            idle: Mutex::new(Vec::new()),
        }
    }

    /// Runs `work` on a connection (blocking: call from a blocking thread).
    fn with_store<T>(
        &self,
        work: impl FnOnce(&mut Store) -> Result<T, ViewError>,
    ) -> Result<T, ViewError> {
        let reused = lock(&self.idle).pop();
        let mut store = match reused {
            Some(store) => store,
            None => Store::connect(&self.db)?,
        };
        let result = work(&mut store);
        let mut idle = lock(&self.idle);
        if idle.len() < IDLE_CONNECTIONS {
            idle.push(store);
        }
        result
    }
}

/// A poisoned lock only means another request panicked; the data (a list of connections, a
/// cache) is still whole.
pub fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Parsed plans by run, checked against the run's plan fingerprint so a replaced database
/// cannot serve a stale plan.
#[derive(Default)]
pub struct PlanCache {
    plans: Mutex<HashMap<RunId, (String, Arc<RunPlan>)>>,
}

impl ViewState {
    /// Runs database work on a blocking thread with a pooled connection.
    pub async fn blocking<T, F>(&self, work: F) -> Result<T, ViewError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Store, &ViewState) -> Result<T, ViewError> + Send + 'static,
    {
        let state = self.clone();
        tokio::task::spawn_blocking(move || state.inner.db.with_store(|store| work(store, &state)))
            .await
            .map_err(|error| {
                ViewError::Internal(anyhow::anyhow!("a blocking task failed: {error}"))
            })?
    }

    /// The plan of `run`, whose fingerprint is `fingerprint`, parsed once and then cached.
    pub fn plan(
        &self,
        store: &Store,
        run: RunId,
        fingerprint: &str,
    ) -> Result<Arc<RunPlan>, ViewError> {
        if let Some((cached_fingerprint, plan)) = lock(&self.inner.plans.plans).get(&run) {
            if cached_fingerprint == fingerprint {
                return Ok(plan.clone());
            }
        }
        let plan = Arc::new(store.run_plan(run)?);
        let mut plans = lock(&self.inner.plans.plans);
        if plans.len() >= CACHED_PLANS {
            // Any entry will do: plans are cheap to parse again compared with a page's lifetime.
            if let Some(evicted) = plans.keys().next().copied() {
                plans.remove(&evicted);
            }
        }
        plans.insert(run, (fingerprint.to_string(), plan.clone()));
        Ok(plan)
    }
}
