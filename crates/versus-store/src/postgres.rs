//! The PostgreSQL connection, on a thread of its own.
//!
//! The synchronous `postgres::Client` drives its socket with a private tokio runtime and blocks
//! on it for every call; called from a thread that is itself running a tokio runtime (the
//! runner's tasks, the viewer's handlers) that nested `block_on` panics. So the client lives on
//! a dedicated thread, created there and never moved, and the store sends it one job at a time
//! over a channel and waits for the answer. Waiting on a channel is plain blocking, like a
//! SQLite call, so the store keeps one synchronous interface whatever thread calls it, and the
//! thread hop costs microseconds against a network round trip.

use std::collections::HashMap;
use std::error::Error;
use std::sync::mpsc;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use postgres::types::{FromSql, IsNull, ToSql, Type};
use postgres::{Client, NoTls, Statement};

use crate::db::{postgres_sql, Row, Value};
use crate::error::BackendError;

/// How long connecting may take when the URL sets no `connect_timeout`.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The client and its prepared statements, owned by the connection's thread.
struct Session {
    client: Client,
    /// Prepared once per connection, by the SQLite text the store wrote.
    statements: HashMap<String, Statement>,
}

impl Session {
    fn statement(&mut self, sql: &str) -> Result<Statement, postgres::Error> {
        if let Some(statement) = self.statements.get(sql) {
            return Ok(statement.clone());
        }
        let statement = self.client.prepare(&postgres_sql(sql))?;
        self.statements.insert(sql.to_string(), statement.clone());
        Ok(statement)
    }
}

type Job = Box<dyn FnOnce(&mut Session) + Send>;

/// A connection to a PostgreSQL server; see the module's documentation for why a thread.
pub(crate) struct PgConnection {
    jobs: Option<mpsc::Sender<Job>>,
    thread: Option<JoinHandle<()>>,
}

impl PgConnection {
    /// Connects to the server `url` names (a `postgres://` or `postgresql://` URL, or a
    /// key=value connection string).
    pub(crate) fn connect(url: &str) -> Result<PgConnection, BackendError> {
        let mut config: postgres::Config = url.parse()?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        let (ready_tx, ready_rx) = mpsc::channel::<Result<(), postgres::Error>>();
        let (jobs_tx, jobs_rx) = mpsc::channel::<Job>();
        let thread = std::thread::Builder::new()
            .name("versus-postgres".to_string())
            .spawn(move || {
                let client = match config.connect(NoTls) {
                    Ok(client) => client,
                    Err(error) => {
                        let _ = ready_tx.send(Err(error));
                        return;
                    }
                };
                let _ = ready_tx.send(Ok(()));
                let mut session = Session {
                    client,
                    statements: HashMap::new(),
                };
                for job in jobs_rx {
                    job(&mut session);
                }
            })
            .map_err(|error| BackendError::Thread(error.to_string()))?;
        match ready_rx.recv() {
            Ok(Ok(())) => Ok(PgConnection {
                jobs: Some(jobs_tx),
                thread: Some(thread),
            }),
            Ok(Err(error)) => {
                let _ = thread.join();
                Err(error.into())
            }
            Err(_) => Err(BackendError::Thread(
                "the PostgreSQL connection thread ended before connecting".to_string(),
            )),
        }
    }

    /// Runs `work` on the connection's thread and waits for its answer.
    fn call<R: Send + 'static>(
        &self,
        work: impl FnOnce(&mut Session) -> Result<R, postgres::Error> + Send + 'static,
    ) -> Result<R, BackendError> {
        let gone = || BackendError::Thread("the PostgreSQL connection thread is gone".to_string());
        let (answer_tx, answer_rx) = mpsc::sync_channel(1);
        let jobs = self.jobs.as_ref().ok_or_else(gone)?;
        jobs.send(Box::new(move |session: &mut Session| {
            let _ = answer_tx.send(work(session));
        }))
        .map_err(|_| gone())?;
        Ok(answer_rx.recv().map_err(|_| gone())??)
    }

    pub(crate) fn execute(&self, sql: &str, params: Vec<Value>) -> Result<u64, BackendError> {
        let sql = sql.to_string();
        self.call(move |session| {
            let statement = session.statement(&sql)?;
            session.client.execute(&statement, &references(&params))
        })
    }

    pub(crate) fn query(&self, sql: &str, params: Vec<Value>) -> Result<Vec<Row>, BackendError> {
        let sql = sql.to_string();
        let rows = self.call(move |session| {
            let statement = session.statement(&sql)?;
            let rows = session.client.query(&statement, &references(&params))?;
            let columns: Arc<[String]> = statement
                .columns()
                .iter()
                .map(|column| column.name().to_string())
                .collect();
            rows.iter()
                .map(|row| {
                    let values = (0..columns.len())
                        .map(|index| row.try_get::<_, Value>(index))
                        .collect::<Result<Vec<Value>, _>>()?;
                    Ok(Row::new(Arc::clone(&columns), values))
                })
                .collect::<Result<Vec<Row>, postgres::Error>>()
        })?;
        Ok(rows)
    }

    pub(crate) fn batch(&self, script: &str) -> Result<(), BackendError> {
        let script = postgres_sql(script);
        self.call(move |session| session.client.batch_execute(&script))
    }
}

impl Drop for PgConnection {
    fn drop(&mut self) {
        // Closing the channel ends the thread's loop; it drops the client, closing the socket.
        self.jobs = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn references(params: &[Value]) -> Vec<&(dyn ToSql + Sync)> {
    params
        .iter()
        .map(|value| value as &(dyn ToSql + Sync))
        .collect()
}

/// A parameter takes the type PostgreSQL infers for its placeholder: an integer is written as
/// `int2`, `int4`, `int8`, a float or a boolean as the column needs, so the store's one set of
/// values fits both schemas.
impl ToSql for Value {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut postgres::types::private::BytesMut,
    ) -> Result<IsNull, Box<dyn Error + Sync + Send>> {
        match self {
            Value::Null => Ok(IsNull::Yes),
            Value::Integer(number) => match *ty {
                Type::INT8 => number.to_sql(ty, out),
                Type::INT4 => i32::try_from(*number)?.to_sql(ty, out),
                Type::INT2 => i16::try_from(*number)?.to_sql(ty, out),
                Type::FLOAT8 => (*number as f64).to_sql(ty, out),
                Type::FLOAT4 => (*number as f32).to_sql(ty, out),
                Type::BOOL => (*number != 0).to_sql(ty, out),
                _ => number.to_string().as_str().to_sql(ty, out),
            },
            Value::Real(number) => match *ty {
                Type::FLOAT4 => (*number as f32).to_sql(ty, out),
                Type::FLOAT8 => number.to_sql(ty, out),
                _ => Err(format!("a real number cannot be written as {ty}").into()),
            },
            // PostgreSQL's text cannot hold NUL (a model may answer one): it becomes U+FFFD,
            // the one change a text suffers on this backend.
            Value::Text(text) if text.contains('\0') => {
                text.replace('\0', "\u{FFFD}").as_str().to_sql(ty, out)
            }
            Value::Text(text) => text.as_str().to_sql(ty, out),
            Value::Bool(flag) => match *ty {
                Type::BOOL => flag.to_sql(ty, out),
                Type::INT8 => i64::from(*flag).to_sql(ty, out),
                Type::INT4 => i32::from(*flag).to_sql(ty, out),
                Type::INT2 => i16::from(*flag).to_sql(ty, out),
                _ => Err(format!("a boolean cannot be written as {ty}").into()),
            },
        }
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    postgres::types::to_sql_checked!();
}

impl<'a> FromSql<'a> for Value {
    fn from_sql(ty: &Type, raw: &'a [u8]) -> Result<Value, Box<dyn Error + Sync + Send>> {
        Ok(match *ty {
            Type::BOOL => Value::Bool(bool::from_sql(ty, raw)?),
            Type::INT2 => Value::Integer(i64::from(i16::from_sql(ty, raw)?)),
            Type::INT4 => Value::Integer(i64::from(i32::from_sql(ty, raw)?)),
            Type::INT8 => Value::Integer(i64::from_sql(ty, raw)?),
            Type::FLOAT4 => Value::Real(f64::from(f32::from_sql(ty, raw)?)),
            Type::FLOAT8 => Value::Real(f64::from_sql(ty, raw)?),
            Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME | Type::UNKNOWN => {
                Value::Text(String::from_sql(ty, raw)?)
            }
            _ => return Err(format!("the store reads no column of type {ty}").into()),
        })
    }

    fn from_sql_null(_: &Type) -> Result<Value, Box<dyn Error + Sync + Send>> {
        Ok(Value::Null)
    }

    fn accepts(_: &Type) -> bool {
        true
    }
}
