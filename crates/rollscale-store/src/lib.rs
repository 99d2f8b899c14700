//! The source of truth. Every durable fact of rollscale is a row here; memory elsewhere is a
//! cache rebuilt from it at start.
//!
//! One portable SQL text for SQLite (the default) and PostgreSQL, through sqlx's `Any` driver.
//! Mutable rows carry a `generation`: updates say `WHERE id = $1 AND generation = $2` and fail
//! with [`StoreError::Conflict`] when someone else moved first. Row types never leave this
//! crate: functions take and return the domain types of `rollscale-core`.

mod access;
mod activities;
mod alerts;
mod backup;
mod catalog;
mod conn;
mod executions;
mod groups;
mod image_tasks;
mod instances;
mod keys;
mod leases;
mod load_balancers;
mod seal;
mod templates;
mod tokens;

pub use executions::{Execution, ExecutionFilter, PreparedWork};
pub use leases::{task_lease_name, Lease, Unleased, RECONCILER_LEASE};
pub use seal::{ServerKey, ServerKeyError};
pub use tokens::ClientTokenRecord;

use conn::{Conn, Db, Single};
use serde::de::DeserializeOwned;
use serde::Serialize;
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::migrate::Migrator;
use sqlx::{AnyConnection, Connection, Executor, Row};
use thiserror::Error;

static MIGRATOR: Migrator = sqlx::migrate!("./migrations");

#[derive(Debug, Error)]
pub enum StoreError {
    /// Another writer changed the row first; reload and decide again.
    #[error("the {what} {id} was changed concurrently")]
    Conflict { what: &'static str, id: String },
    #[error("the {what} {id} already exists")]
    AlreadyExists { what: &'static str, id: String },
    /// A row the write depends on does not exist (checked inside the write's transaction).
    #[error("the {what} {id} does not exist")]
    Missing { what: &'static str, id: String },
    /// The write would take `id` past its limit of `what` (checked inside the write's
    /// transaction).
    #[error("the {id} has {limit} {what} already")]
    LimitExceeded { what: &'static str, id: String, limit: i64 },
    #[error("database error")]
    Database(#[from] sqlx::Error),
    #[error("database migration failed")]
    Migration(#[from] sqlx::migrate::MigrateError),
    /// The statement that was to write this row together with others failed: each of them
    /// gets this, with the failure's text.
    #[error("a batched write failed: {0}")]
    Batch(String),
    #[error("a stored {what} could not be read")]
    Corrupt {
        what: &'static str,
        #[source]
        source: serde_json::Error,
    },
    /// A file beside the database (a backup's copy) could not be written or read.
    #[error("{what}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    /// A sealed AccessKey secret does not open with this server key (the key was changed?).
    #[error("the secret of the AccessKey {id} cannot be opened with this server key")]
    Unsealable { id: String },
}

/// A value with the generation it was read at.
#[derive(Clone, Debug, PartialEq)]
pub struct Versioned<T> {
    pub value: T,
    pub generation: i64,
}

/// Which database the store runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

#[derive(Clone)]
pub struct Store {
    db: Db,
    backend: Backend,
    /// Seals AccessKey secrets; see [`Store::with_server_key`].
    server_key: std::sync::Arc<ServerKey>,
    /// Where this handle's process "dies" (tests only; see [`Store::crashing_at`]).
    #[cfg(feature = "fault-injection")]
    crash: Option<std::sync::Arc<CrashPoint>>,
}

/// A crash point of the crash-at-every-step harnesses: the store's `n`-th call (counting
/// from 0) and every one after it never return, as if the process died just before; what
/// was committed before stays committed.
#[cfg(feature = "fault-injection")]
pub struct CrashPoint {
    remaining: std::sync::atomic::AtomicI64,
    hit: std::sync::atomic::AtomicBool,
}

#[cfg(feature = "fault-injection")]
impl CrashPoint {
    /// Whether the crash point was reached.
    pub fn hit(&self) -> bool {
        self.hit.load(std::sync::atomic::Ordering::SeqCst)
    }
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("backend", &self.backend).finish()
    }
}

impl Store {
    /// Opens the database at `url` (`sqlite://PATH` or `postgres://…`), creating a SQLite file
    /// when missing, and migrates it to the current schema.
    pub async fn open(url: &str) -> Result<Store, StoreError> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("postgres") { Backend::Postgres } else { Backend::Sqlite };
        let url = match backend {
            Backend::Sqlite if !url.contains('?') => format!("{url}?mode=rwc"),
            _ => url.to_string(),
        };
        let db = match backend {
            // One connection (see `conn`): SQLite serializes writers anyway.
            Backend::Sqlite => {
                let mut conn = AnyConnection::connect(&url).await?;
                conn.execute("PRAGMA journal_mode = WAL").await?;
                // Survives a crash of the process (kill -9); a power loss may lose the
                // last commits, which the engine redoes idempotently.
                conn.execute("PRAGMA synchronous = NORMAL").await?;
                conn.execute("PRAGMA busy_timeout = 5000").await?;
                MIGRATOR.run(&mut conn).await?;
                Db::Single(std::sync::Arc::new(Single::new(conn)))
            }
            Backend::Postgres => {
                let pool = AnyPoolOptions::new().max_connections(16).connect(&url).await?;
                MIGRATOR.run(&pool).await?;
                Db::Pool(pool)
            }
        };
        Ok(Store {
            db,
            backend,
            server_key: std::sync::Arc::new(ServerKey::generate()),
            #[cfg(feature = "fault-injection")]
            crash: None,
        })
    }

    /// This store, but every call from its `n`-th on (0 is the first) never returns, as if
    /// the process died right before it: the crash-at-every-step harnesses give it to one
    /// engine, stop that engine when the point is reached, and resume on the plain store.
    #[cfg(feature = "fault-injection")]
    pub fn crashing_at(&self, n: i64) -> (Store, std::sync::Arc<CrashPoint>) {
        let point = std::sync::Arc::new(CrashPoint {
            remaining: std::sync::atomic::AtomicI64::new(n),
            hit: std::sync::atomic::AtomicBool::new(false),
        });
        (Store { crash: Some(point.clone()), ..self.clone() }, point)
    }

    /// A connection for a few statements or a transaction, given back when dropped. Every
    /// call of the store takes one here, so this is where a test's crash point stops it.
    pub(crate) async fn conn(&self) -> Result<Conn<'_>, StoreError> {
        #[cfg(feature = "fault-injection")]
        if let Some(point) = &self.crash {
            if point.remaining.fetch_sub(1, std::sync::atomic::Ordering::SeqCst) <= 0 {
                point.hit.store(true, std::sync::atomic::Ordering::SeqCst);
                std::future::pending::<()>().await;
            }
        }
        self.db.conn().await
    }

    /// How many of the store's connections are lent out now. On PostgreSQL a connection whose
    /// statement was abandoned midway (its future dropped, as when a task is stopped) comes
    /// back only once the server has answered it (the pool pings it first), so 0 means that
    /// every statement sent through this store has been carried out: for tests that must know
    /// that no write sent earlier is still to land.
    pub fn connections_in_use(&self) -> usize {
        self.db.in_use()
    }

    /// Creates the database `name` on the PostgreSQL server of `admin_url` (a URL of a
    /// database there that the role may connect to, with the right to create databases) and
    /// returns its URL. For tests and tools that need a database of their own.
    pub async fn postgres_create_database(admin_url: &str, name: &str) -> Result<String, StoreError> {
        sqlx::any::install_default_drivers();
        if !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(StoreError::Missing { what: "valid database name", id: name.to_string() });
        }
        let mut conn = AnyConnection::connect(admin_url).await?;
        conn.execute(format!("CREATE DATABASE {name}").as_str()).await?;
        let (base, _) = admin_url.rsplit_once('/').unwrap_or((admin_url, ""));
        let query = admin_url.split_once('?').map(|(_, query)| format!("?{query}")).unwrap_or_default();
        Ok(format!("{base}/{name}{query}"))
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Rows changed since the store was opened (SQLite only; 0 on PostgreSQL). Benchmarks use
    /// it to report the store's writes per instance.
    pub async fn total_changes(&self) -> Result<i64, StoreError> {
        match self.backend {
            Backend::Sqlite => {
                Ok(sqlx::query("SELECT total_changes()").fetch_one(&mut *self.conn().await?).await?.try_get(0)?)
            }
            Backend::Postgres => Ok(0),
        }
    }

    /// A named setting (e.g. whether the demo was created).
    pub async fn setting_get(&self, name: &str) -> Result<Option<String>, StoreError> {
        let row = sqlx::query("SELECT value FROM settings WHERE name = $1")
            .bind(name)
            .fetch_optional(&mut *self.conn().await?)
            .await?;
        Ok(row.map(|row| row.get::<String, _>(0)))
    }

    pub async fn setting_put(&self, name: &str, value: &str) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO settings (name, value) VALUES ($1, $2) \
             ON CONFLICT (name) DO UPDATE SET value = excluded.value",
        )
        .bind(name)
        .bind(value)
        .execute(&mut *self.conn().await?)
        .await?;
        Ok(())
    }
}

pub(crate) fn to_json<T: Serialize>(value: &T) -> String {
    // Domain types are plain data with string keys: serializing them cannot fail.
    serde_json::to_string(value).unwrap_or_else(|error| panic!("domain value did not serialize: {error}"))
}

pub(crate) fn from_json<T: DeserializeOwned>(what: &'static str, text: &str) -> Result<T, StoreError> {
    serde_json::from_str(text).map_err(|source| StoreError::Corrupt { what, source })
}

/// Reads `body` and `generation` columns of a row.
/// A column holding an enum's name as text (a status, a state), read as that enum.
pub(crate) fn text_enum<T: DeserializeOwned>(what: &'static str, row: &AnyRow, index: usize) -> Result<T, StoreError> {
    serde_json::from_value(serde_json::Value::String(row.try_get::<String, _>(index)?))
        .map_err(|source| StoreError::Corrupt { what, source })
}

pub(crate) fn versioned<T: DeserializeOwned>(what: &'static str, row: &AnyRow) -> Result<Versioned<T>, StoreError> {
    let body: String = row.try_get("body")?;
    let generation: i64 = row.try_get("generation")?;
    Ok(Versioned { value: from_json(what, &body)?, generation })
}

/// The parameters of a statement with many of them, in order: `?` on SQLite, which looks
/// `$n` names up one by one (binding a thousand of them takes milliseconds), and `$1`, `$2`…
/// on PostgreSQL, which knows no other kind. Every other statement says `$n` on both.
pub(crate) fn placeholders(backend: Backend) -> impl FnMut() -> String {
    let mut n = 0;
    move || match backend {
        Backend::Sqlite => "?".to_string(),
        Backend::Postgres => {
            n += 1;
            format!("${n}")
        }
    }
}

pub(crate) fn is_unique_violation(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Database(db) => {
            db.is_unique_violation() || db.message().contains("UNIQUE") || db.message().contains("duplicate key")
        }
        _ => false,
    }
}

pub(crate) fn conflict_unless_one(rows: u64, what: &'static str, id: &str) -> Result<(), StoreError> {
    if rows == 1 {
        Ok(())
    } else {
        Err(StoreError::Conflict { what, id: id.to_string() })
    }
}

#[cfg(test)]
pub(crate) mod testing {
    use crate::Store;

    /// A fresh, empty store: SQLite in a temporary directory; or, when
    /// `ROLLSCALE_TEST_POSTGRES_URL` names a PostgreSQL server's database (e.g.
    /// `postgres://postgres@127.0.0.1:5432/postgres`), a new database created on that server.
    pub(crate) async fn fresh_store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().expect("tempdir");
        let url = match std::env::var("ROLLSCALE_TEST_POSTGRES_URL") {
            Ok(admin) if !admin.is_empty() => {
                let name = format!("rollscale_test_{}", rand_suffix());
                Store::postgres_create_database(&admin, &name).await.expect("create a database on the test server")
            }
            _ => format!("sqlite://{}", dir.path().join("t.db").display()),
        };
        (dir, Store::open(&url).await.expect("open"))
    }

    fn rand_suffix() -> String {
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos();
        format!("{:x}_{}", nanos, std::process::id())
    }
}
