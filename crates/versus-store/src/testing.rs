//! The store's tests on both backends: each test gets a fresh SQLite file, and, when
//! `VERSUS_TEST_POSTGRES` names a PostgreSQL server (`scripts/with-postgres` starts a throw-away
//! one), a fresh schema on it. A test written once and listed in [`on_both_backends!`] runs on
//! each; without a server its PostgreSQL half says it was skipped.

use std::cell::{Cell, RefCell};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::{Database, Store};

/// The variable that names the test server.
pub(crate) const POSTGRES_ENV: &str = "VERSUS_TEST_POSTGRES";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Backend {
    Sqlite,
    Postgres,
}

/// What a test made and what goes when its thread ends: a temporary folder, a schema.
enum Scratch {
    Folder(#[allow(dead_code)] tempfile::TempDir),
    Schema { server: String, name: String },
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if let Scratch::Schema { server, name } = self {
            // Best effort: the throw-away server goes with everything in it anyway.
            if let Ok(mut admin) = postgres::Client::connect(server, postgres::NoTls) {
                let _ = admin.batch_execute(&format!("DROP SCHEMA IF EXISTS {name} CASCADE"));
            }
        }
    }
}

thread_local! {
    /// The backend of the test running on this thread (each test has a thread of its own).
    static BACKEND: Cell<Backend> = const { Cell::new(Backend::Sqlite) };
    static SCRATCH: RefCell<Vec<Scratch>> = const { RefCell::new(Vec::new()) };
}

/// The test server's URL, if one is configured.
pub(crate) fn postgres_server() -> Option<String> {
    std::env::var(POSTGRES_ENV)
        .ok()
        .filter(|url| !url.trim().is_empty())
}

/// Runs `test` with every [`fresh_store`] on `backend`; on PostgreSQL without a server, says
/// the test was skipped.
pub(crate) fn run_on(backend: Backend, name: &str, test: fn()) {
    if backend == Backend::Postgres && postgres_server().is_none() {
        eprintln!(
            "skipped: {name} on PostgreSQL: {POSTGRES_ENV} is not set \
             (scripts/with-postgres starts a throw-away server and sets it)"
        );
        return;
    }
    BACKEND.with(|current| current.set(backend));
    test();
    SCRATCH.with(|scratch| scratch.borrow_mut().clear());
}

/// A fresh, empty database on this test's backend.
pub(crate) fn fresh_store() -> Store {
    Store::connect(&fresh_database()).expect("open a fresh test database")
}

/// A fresh, empty database on this test's backend, not opened yet: a SQLite file in a folder of
/// its own, or a URL whose `search_path` is a schema of its own.
pub(crate) fn fresh_database() -> Database {
    match BACKEND.with(Cell::get) {
        Backend::Sqlite => {
            let folder = tempfile::tempdir().expect("create a temporary folder");
            let path = folder.path().join("versus.db");
            SCRATCH.with(|scratch| scratch.borrow_mut().push(Scratch::Folder(folder)));
            Database::Sqlite(path)
        }
        Backend::Postgres => {
            let server = postgres_server().expect("checked by run_on");
            Database::Postgres(fresh_schema(&server))
        }
    }
}

/// Creates a schema of its own on `server`; returns a URL whose connections use it.
pub(crate) fn fresh_schema(server: &str) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let name = format!(
        "versus_test_{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    );
    let mut admin = postgres::Client::connect(server, postgres::NoTls)
        .unwrap_or_else(|error| panic!("cannot reach {POSTGRES_ENV}: {error}"));
    admin
        .batch_execute(&format!("CREATE SCHEMA {name}"))
        .expect("create a test schema");
    SCRATCH.with(|scratch| {
        scratch.borrow_mut().push(Scratch::Schema {
            server: server.to_string(),
            name: name.clone(),
        })
    });
    let separator = if server.contains('?') { '&' } else { '?' };
    format!("{server}{separator}options=-csearch_path%3D{name}")
}

/// Turns each listed test function into a module with two tests, `sqlite` and `postgres`.
macro_rules! on_both_backends {
    ($($test:ident),* $(,)?) => {
        $(
            mod $test {
                #[test]
                fn sqlite() {
                    $crate::testing::run_on(
                        $crate::testing::Backend::Sqlite,
                        stringify!($test),
                        super::$test,
                    );
                }

                #[test]
                fn postgres() {
                    $crate::testing::run_on(
                        $crate::testing::Backend::Postgres,
                        stringify!($test),
                        super::$test,
                    );
                }
            }
        )*
    };
}
pub(crate) use on_both_backends;
