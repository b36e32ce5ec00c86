//! Where the database is: a SQLite file (the embedded default) or a PostgreSQL server named by a
//! `postgres://` URL. `--db` and `VERSUS_DB` take either; the URL is only ever shown with its
//! user-info and query values redacted, since it may carry a password.

use std::path::{Path, PathBuf};

/// A database `--db` names.
#[derive(Clone, PartialEq, Eq)]
pub enum Database {
    /// A SQLite file (created if missing), or `:memory:`.
    Sqlite(PathBuf),
    /// A PostgreSQL server: a `postgres://` or `postgresql://` URL, secrets and all. Print it
    /// through [`Database`]'s `Display`, never directly.
    Postgres(String),
}

/// The URL schemes that name a PostgreSQL server.
const POSTGRES_SCHEMES: [&str; 2] = ["postgres://", "postgresql://"];

impl Database {
    /// What `--db` says: a URL with a PostgreSQL scheme, else a file path.
    pub fn parse(text: &str) -> Database {
        let is_url = POSTGRES_SCHEMES.iter().any(|scheme| {
            text.get(..scheme.len())
                .is_some_and(|prefix| prefix.eq_ignore_ascii_case(scheme))
        });
        if is_url {
            Database::Postgres(text.to_string())
        } else {
            Database::Sqlite(PathBuf::from(text))
        }
    }

    /// The SQLite file, if this is one.
    pub fn sqlite_path(&self) -> Option<&Path> {
        match self {
            Database::Sqlite(path) => Some(path),
            Database::Postgres(_) => None,
        }
    }

    pub fn is_postgres(&self) -> bool {
        matches!(self, Database::Postgres(_))
    }
}

impl std::str::FromStr for Database {
    type Err = std::convert::Infallible;

    fn from_str(text: &str) -> Result<Database, Self::Err> {
        Ok(Database::parse(text))
    }
}

impl From<&Path> for Database {
    fn from(path: &Path) -> Database {
        Database::Sqlite(path.to_path_buf())
    }
}

impl From<PathBuf> for Database {
    fn from(path: PathBuf) -> Database {
        Database::Sqlite(path)
    }
}

impl std::fmt::Display for Database {
    /// The file path, or the URL with user-info and query values replaced by `***`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Database::Sqlite(path) => write!(f, "{}", path.display()),
            Database::Postgres(url) => f.write_str(&versus_core::redact::redact_url(url)),
        }
    }
}

impl std::fmt::Debug for Database {
    /// The same redacted text as `Display`: a URL's password must not reach a log via `{:?}`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Database({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_name_postgres_and_anything_else_a_file() {
        assert!(Database::parse("postgres://u:pw@db.example/versus").is_postgres());
        assert!(Database::parse("PostgreSQL://db/versus").is_postgres());
        assert_eq!(
            Database::parse("runs/versus.db"),
            Database::Sqlite(PathBuf::from("runs/versus.db"))
        );
        assert_eq!(
            Database::parse("postgres.db").sqlite_path(),
            Some(Path::new("postgres.db"))
        );
    }

    #[test]
    fn a_url_is_shown_without_its_password() {
        let db = Database::parse("postgres://ada:s3cret@db.example:5432/versus?password=x");
        for shown in [db.to_string(), format!("{db:?}")] {
            assert!(!shown.contains("s3cret"), "{shown}");
            assert!(!shown.contains("=x"), "{shown}");
            assert!(shown.contains("db.example:5432/versus"), "{shown}");
        }
    }
}
