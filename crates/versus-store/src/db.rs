//! The two backends behind one interface: an embedded SQLite file or a shared PostgreSQL server.
//!
//! Every query of the store is written once, in the SQL both dialects share, with SQLite's
//! numbered placeholders (`?1`). [`postgres_sql`] rewrites the few spellings that differ (the
//! placeholders, the clock, `json_each`) for PostgreSQL. Parameters and results travel as
//! [`Value`]s, and rows come back whole as [`Row`]s, so that no code outside this module (and
//! `postgres.rs`) knows which backend answers.

use std::cell::RefCell;
use std::sync::Arc;

use crate::error::BackendError;
use crate::postgres::PgConnection;
use crate::StoreError;

/// One SQL value, as a parameter or a column of a result.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Value {
    Null,
    Integer(i64),
    Real(f64),
    Text(String),
    /// SQLite stores it as 0 or 1; PostgreSQL has booleans of its own.
    Bool(bool),
}

/// What may be passed as a query parameter.
pub(crate) trait ToValue {
    fn to_value(&self) -> Value;
}

impl ToValue for str {
    fn to_value(&self) -> Value {
        Value::Text(self.to_string())
    }
}

impl ToValue for String {
    fn to_value(&self) -> Value {
        Value::Text(self.clone())
    }
}

impl ToValue for i64 {
    fn to_value(&self) -> Value {
        Value::Integer(*self)
    }
}

impl ToValue for u32 {
    fn to_value(&self) -> Value {
        Value::Integer(i64::from(*self))
    }
}

impl ToValue for u64 {
    fn to_value(&self) -> Value {
        // Counts and token numbers never come near 2^63; saturating keeps the conversion total.
        Value::Integer(i64::try_from(*self).unwrap_or(i64::MAX))
    }
}

impl ToValue for f64 {
    fn to_value(&self) -> Value {
        Value::Real(*self)
    }
}

impl ToValue for bool {
    fn to_value(&self) -> Value {
        Value::Bool(*self)
    }
}

impl<T: ToValue> ToValue for Option<T> {
    fn to_value(&self) -> Value {
        match self {
            Some(value) => value.to_value(),
            None => Value::Null,
        }
    }
}

impl<T: ToValue + ?Sized> ToValue for &T {
    fn to_value(&self) -> Value {
        (**self).to_value()
    }
}

/// The parameters of a query, in placeholder order (`?1`, `?2`, ...).
macro_rules! params {
    ($($value:expr),* $(,)?) => {
        ::std::vec::Vec::<$crate::db::Value>::from([$($crate::db::ToValue::to_value(&$value)),*])
    };
}
pub(crate) use params;

/// What a column may be read as.
pub(crate) trait FromValue: Sized {
    /// `None` when the value does not fit the type.
    fn from_value(value: &Value) -> Option<Self>;
}

impl FromValue for i64 {
    fn from_value(value: &Value) -> Option<i64> {
        match value {
            Value::Integer(number) => Some(*number),
            Value::Bool(flag) => Some(i64::from(*flag)),
            _ => None,
        }
    }
}

impl FromValue for u32 {
    fn from_value(value: &Value) -> Option<u32> {
        i64::from_value(value).and_then(|number| u32::try_from(number).ok())
    }
}

impl FromValue for u64 {
    fn from_value(value: &Value) -> Option<u64> {
        i64::from_value(value).and_then(|number| u64::try_from(number).ok())
    }
}

impl FromValue for f64 {
    fn from_value(value: &Value) -> Option<f64> {
        match value {
            Value::Real(number) => Some(*number),
            // An exact small integer; SQLite hands back whole REAL aggregates this way at times.
            Value::Integer(number) => Some(*number as f64),
            _ => None,
        }
    }
}

impl FromValue for bool {
    fn from_value(value: &Value) -> Option<bool> {
        match value {
            Value::Bool(flag) => Some(*flag),
            Value::Integer(number) => Some(*number != 0),
            _ => None,
        }
    }
}

impl FromValue for String {
    fn from_value(value: &Value) -> Option<String> {
        match value {
            Value::Text(text) => Some(text.clone()),
            _ => None,
        }
    }
}

impl<T: FromValue> FromValue for Option<T> {
    fn from_value(value: &Value) -> Option<Option<T>> {
        match value {
            Value::Null => Some(None),
            other => T::from_value(other).map(Some),
        }
    }
}

/// A column of a [`Row`]: by position (from 0) or by name.
pub(crate) trait ColumnIndex {
    fn position(&self, columns: &[String]) -> Option<usize>;
    fn describe(&self) -> String;
}

impl ColumnIndex for usize {
    fn position(&self, columns: &[String]) -> Option<usize> {
        (*self < columns.len()).then_some(*self)
    }

    fn describe(&self) -> String {
        format!("column {self}")
    }
}

impl ColumnIndex for &str {
    fn position(&self, columns: &[String]) -> Option<usize> {
        columns.iter().position(|name| name == self)
    }

    fn describe(&self) -> String {
        format!("column `{self}`")
    }
}

/// One row of a result, read whole.
#[derive(Debug, Clone)]
pub(crate) struct Row {
    columns: Arc<[String]>,
    values: Vec<Value>,
}

impl Row {
    pub(crate) fn new(columns: Arc<[String]>, values: Vec<Value>) -> Row {
        Row { columns, values }
    }

    /// The column `index` as a `T`; a missing column or a value of another type is an error that
    /// names the column.
    pub(crate) fn get<T: FromValue>(&self, index: impl ColumnIndex) -> Result<T, StoreError> {
        let value = index
            .position(&self.columns)
            .and_then(|position| self.values.get(position))
            .ok_or_else(|| StoreError::Corrupt {
                what: index.describe(),
                reason: "no such column in the result".to_string(),
            })?;
        T::from_value(value).ok_or_else(|| StoreError::Corrupt {
            what: index.describe(),
            reason: format!(
                "holds {value:?}, not a {}",
                std::any::type_name::<T>()
                    .rsplit("::")
                    .next()
                    .unwrap_or("value")
            ),
        })
    }
}

/// Which backend a connection talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dialect {
    Sqlite,
    Postgres,
}

/// One open connection.
pub(crate) enum Connection {
    Sqlite(rusqlite::Connection),
    Postgres(PgConnection),
}

impl Connection {
    pub(crate) fn dialect(&self) -> Dialect {
        match self {
            Connection::Sqlite(_) => Dialect::Sqlite,
            Connection::Postgres(_) => Dialect::Postgres,
        }
    }

    /// Runs a statement; returns how many rows it changed.
    pub(crate) fn execute(&mut self, sql: &str, params: Vec<Value>) -> Result<u64, BackendError> {
        match self {
            Connection::Sqlite(conn) => {
                let mut statement = conn.prepare_cached(sql)?;
                let changed = statement.execute(rusqlite::params_from_iter(params.iter()))?;
                Ok(changed as u64)
            }
            Connection::Postgres(conn) => conn.execute(sql, params),
        }
    }

    /// Runs a query and reads every row of its result.
    pub(crate) fn query(
        &mut self,
        sql: &str,
        params: Vec<Value>,
    ) -> Result<Vec<Row>, BackendError> {
        match self {
            Connection::Sqlite(conn) => {
                let mut statement = conn.prepare_cached(sql)?;
                let columns: Arc<[String]> = statement
                    .column_names()
                    .into_iter()
                    .map(str::to_string)
                    .collect();
                let mut rows = statement.query(rusqlite::params_from_iter(params.iter()))?;
                let mut read = Vec::new();
                while let Some(row) = rows.next()? {
                    let values = (0..columns.len())
                        .map(|index| row.get_ref(index).map(sqlite_value))
                        .collect::<Result<Vec<Value>, _>>()?;
                    read.push(Row {
                        columns: Arc::clone(&columns),
                        values,
                    });
                }
                Ok(read)
            }
            Connection::Postgres(conn) => conn.query(sql, params),
        }
    }

    /// Runs a script of statements without parameters (migrations, transaction control).
    pub(crate) fn batch(&mut self, script: &str) -> Result<(), BackendError> {
        match self {
            Connection::Sqlite(conn) => Ok(conn.execute_batch(script)?),
            Connection::Postgres(conn) => conn.batch(script),
        }
    }
}

impl rusqlite::ToSql for Value {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        use rusqlite::types::{ToSqlOutput, ValueRef};
        Ok(match self {
            Value::Null => ToSqlOutput::Borrowed(ValueRef::Null),
            Value::Integer(number) => ToSqlOutput::Borrowed(ValueRef::Integer(*number)),
            Value::Real(number) => ToSqlOutput::Borrowed(ValueRef::Real(*number)),
            Value::Text(text) => ToSqlOutput::Borrowed(ValueRef::Text(text.as_bytes())),
            Value::Bool(flag) => ToSqlOutput::Borrowed(ValueRef::Integer(i64::from(*flag))),
        })
    }
}

fn sqlite_value(value: rusqlite::types::ValueRef<'_>) -> Value {
    use rusqlite::types::ValueRef;
    match value {
        ValueRef::Null => Value::Null,
        ValueRef::Integer(number) => Value::Integer(number),
        ValueRef::Real(number) => Value::Real(number),
        // The store writes only UTF-8; a foreign byte sequence is shown, not refused.
        ValueRef::Text(bytes) | ValueRef::Blob(bytes) => {
            Value::Text(String::from_utf8_lossy(bytes).into_owned())
        }
    }
}

/// SQLite's clock as the store's SQL spells it (see `schema::sql_now!`), and PostgreSQL's
/// spelling of the same text: ISO 8601, UTC, milliseconds.
const SQLITE_NOW: &str = "strftime('%Y-%m-%dT%H:%M:%fZ','now')";
const POSTGRES_NOW: &str = "to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')";
/// Seconds since the Unix epoch, in both spellings (the run and cell leases count in these).
pub(crate) const SQLITE_UNIX_NOW: &str = "CAST(strftime('%s', 'now') AS INTEGER)";
const POSTGRES_UNIX_NOW: &str = "CAST(FLOOR(EXTRACT(EPOCH FROM now())) AS BIGINT)";
/// Milliseconds since the Unix epoch, in both spellings (cell leases and worker heartbeats).
/// PostgreSQL's `clock_timestamp()`, not `now()`: a lease is measured from the statement, not
/// from the start of its transaction.
pub(crate) const SQLITE_UNIX_MS: &str =
    "CAST((julianday('now') - 2440587.5) * 86400000.0 AS INTEGER)";
const POSTGRES_UNIX_MS: &str =
    "CAST(FLOOR(EXTRACT(EPOCH FROM clock_timestamp()) * 1000) AS BIGINT)";

/// The PostgreSQL spelling of a query written for SQLite: `?N` becomes `$N`, SQLite's clock
/// becomes PostgreSQL's, and `json_each(?N)` (a JSON array parameter read as rows of `value`)
/// becomes `json_array_elements_text`, whose one column is also named `value`.
pub(crate) fn postgres_sql(sql: &str) -> String {
    let sql = sql
        .replace(SQLITE_NOW, POSTGRES_NOW)
        .replace(SQLITE_UNIX_NOW, POSTGRES_UNIX_NOW)
        .replace(SQLITE_UNIX_MS, POSTGRES_UNIX_MS);
    let mut out = String::with_capacity(sql.len() + 16);
    let mut rest = sql.as_str();
    while let Some(start) = rest.find(['?', 'j']) {
        out.push_str(&rest[..start]);
        rest = &rest[start..];
        if let Some(after) = rest.strip_prefix("json_each(?") {
            let digits = after.len() - after.trim_start_matches(|c: char| c.is_ascii_digit()).len();
            if digits > 0 && after[digits..].starts_with(')') {
                out.push_str("json_array_elements_text(CAST(CAST($");
                out.push_str(&after[..digits]);
                out.push_str(" AS TEXT) AS json))");
                rest = &after[digits + 1..];
                continue;
            }
        }
        if let Some(after) = rest.strip_prefix('?') {
            out.push('$');
            rest = after;
        } else {
            out.push('j');
            rest = &rest[1..];
        }
    }
    out.push_str(rest);
    out
}

/// The store's connection, borrowed for one call at a time. PostgreSQL's client needs `&mut`
/// for every query, reads included; the store's readers take `&self`, so the connection sits in
/// a `RefCell` (the store is `Send`, used by one thread at a time, never shared).
pub(crate) struct Db {
    conn: RefCell<Connection>,
    dialect: Dialect,
}

impl Db {
    pub(crate) fn new(conn: Connection) -> Db {
        let dialect = conn.dialect();
        Db {
            conn: RefCell::new(conn),
            dialect,
        }
    }

    pub(crate) fn dialect(&self) -> Dialect {
        self.dialect
    }

    /// The connection itself, for what only one backend does (pragmas, migrations).
    pub(crate) fn with_connection<R>(&self, work: impl FnOnce(&mut Connection) -> R) -> R {
        work(&mut self.conn.borrow_mut())
    }

    /// The SQLite connection, for tests of what only a SQLite file has (pragmas, migrations).
    #[cfg(test)]
    pub(crate) fn sqlite_connection(&self) -> std::cell::RefMut<'_, rusqlite::Connection> {
        std::cell::RefMut::map(self.conn.borrow_mut(), |conn| match conn {
            Connection::Sqlite(conn) => conn,
            Connection::Postgres(_) => panic!("a SQLite-only test got a PostgreSQL store"),
        })
    }

    pub(crate) fn execute(&self, sql: &str, params: Vec<Value>) -> Result<u64, StoreError> {
        Ok(self.conn.borrow_mut().execute(sql, params)?)
    }

    pub(crate) fn query(&self, sql: &str, params: Vec<Value>) -> Result<Vec<Row>, StoreError> {
        Ok(self.conn.borrow_mut().query(sql, params)?)
    }

    /// Inserts `rows` (each with one value per column of `columns`) into `table`, many rows per
    /// statement: one round trip per chunk instead of one per row, which is what a server's
    /// latency charges for. Chunks are of a fixed size (and one remainder), so the prepared
    /// statements are few.
    pub(crate) fn insert_rows(
        &self,
        table: &str,
        columns: &[&str],
        rows: Vec<Vec<Value>>,
    ) -> Result<(), StoreError> {
        const ROWS_PER_STATEMENT: usize = 200;
        let mut rows = rows.into_iter().peekable();
        while rows.peek().is_some() {
            let chunk: Vec<Vec<Value>> = rows.by_ref().take(ROWS_PER_STATEMENT).collect();
            let mut sql = format!("INSERT INTO {table} ({}) VALUES ", columns.join(", "));
            let mut values = Vec::with_capacity(chunk.len() * columns.len());
            for (index, row) in chunk.into_iter().enumerate() {
                if index > 0 {
                    sql.push_str(", ");
                }
                let first = index * columns.len();
                let placeholders: Vec<String> = (1..=columns.len())
                    .map(|column| format!("?{}", first + column))
                    .collect();
                sql.push('(');
                sql.push_str(&placeholders.join(", "));
                sql.push(')');
                values.extend(row);
            }
            self.execute(&sql, values)?;
        }
        Ok(())
    }

    /// The first row of a query's result, if it has one.
    pub(crate) fn query_opt(
        &self,
        sql: &str,
        params: Vec<Value>,
    ) -> Result<Option<Row>, StoreError> {
        Ok(self.query(sql, params)?.into_iter().next())
    }

    /// The first row of a query that always has one (an aggregate, `RETURNING`).
    pub(crate) fn query_one(&self, sql: &str, params: Vec<Value>) -> Result<Row, StoreError> {
        self.query_opt(sql, params)?
            .ok_or_else(|| StoreError::Corrupt {
                what: "query result".to_string(),
                reason: format!(
                    "no row from `{}`",
                    sql.split_whitespace().take(6).collect::<Vec<_>>().join(" ")
                ),
            })
    }

    /// A transaction that takes the write lock up front on SQLite (`BEGIN IMMEDIATE`: one that
    /// reads first and writes later can fail at once with SQLITE_BUSY under WAL, without waiting
    /// out the busy timeout); on PostgreSQL row locks are taken as rows are written or claimed.
    /// Rolled back when dropped uncommitted.
    pub(crate) fn transaction(&self) -> Result<Tx<'_>, StoreError> {
        let begin = match self.dialect {
            Dialect::Sqlite => "BEGIN IMMEDIATE",
            Dialect::Postgres => "BEGIN",
        };
        self.conn.borrow_mut().batch(begin)?;
        Ok(Tx {
            db: self,
            open: true,
        })
    }
}

/// An open transaction; see [`Db::transaction`].
pub(crate) struct Tx<'a> {
    db: &'a Db,
    open: bool,
}

impl Tx<'_> {
    pub(crate) fn commit(mut self) -> Result<(), StoreError> {
        self.open = false;
        if let Err(error) = self.db.conn.borrow_mut().batch("COMMIT") {
            // SQLite keeps a transaction open after a failed COMMIT (SQLITE_BUSY); end it.
            let _ = self.db.conn.borrow_mut().batch("ROLLBACK");
            return Err(error.into());
        }
        Ok(())
    }
}

impl std::ops::Deref for Tx<'_> {
    type Target = Db;

    fn deref(&self) -> &Db {
        self.db
    }
}

impl Drop for Tx<'_> {
    fn drop(&mut self) {
        if self.open {
            // Nothing to report it to: the error that dropped the transaction is on its way up,
            // and a connection that cannot roll back fails its next statement anyway.
            let _ = self.db.conn.borrow_mut().batch("ROLLBACK");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn postgres_spelling_rewrites_placeholders_clock_and_json_lists() {
        assert_eq!(
            postgres_sql(
                "SELECT a FROM t WHERE id = ?1 AND b IN (SELECT value FROM json_each(?12))"
            ),
            "SELECT a FROM t WHERE id = $1 AND b IN (SELECT value FROM \
             json_array_elements_text(CAST(CAST($12 AS TEXT) AS json)))"
        );
        assert_eq!(
            postgres_sql(concat!(
                "UPDATE t SET at = ",
                "strftime('%Y-%m-%dT%H:%M:%fZ','now')"
            )),
            format!("UPDATE t SET at = {POSTGRES_NOW}")
        );
        assert_eq!(
            postgres_sql("SELECT json, j FROM jobs"),
            "SELECT json, j FROM jobs"
        );
    }

    #[test]
    fn values_read_back_as_the_types_asked_for() {
        let row = Row {
            columns: vec!["n".to_string(), "flag".to_string(), "none".to_string()].into(),
            values: vec![Value::Integer(3), Value::Bool(true), Value::Null],
        };
        assert_eq!(row.get::<u32>("n").unwrap(), 3);
        assert_eq!(row.get::<f64>(0).unwrap(), 3.0);
        assert!(row.get::<bool>("flag").unwrap());
        assert_eq!(row.get::<Option<String>>("none").unwrap(), None);
        assert!(row.get::<String>("n").is_err());
        assert!(row.get::<i64>("missing").is_err());
    }
}
