//! Patron's storage adapter.
//!
//! One [`Store`] serves both backends. Queries are written once, in the SQL that SQLite and
//! PostgreSQL share (`$1` placeholders, `ON CONFLICT`, `RETURNING`, BIGINT everywhere), and run
//! through sqlx's `Any` driver; the few real differences (how a write transaction starts, row
//! locks, DDL) live in [`Backend`] and in the per-backend migrations. So the two backends
//! cannot drift apart the way hand-copied SQL does, and one contract test suite covers both.
//!
//! Every public method that writes is one atomic unit of work: it opens a write transaction,
//! does all its reads under the locks it needs, decides with the pure functions of
//! `patron-domain`, writes, and commits. Serialization failures, deadlocks and SQLite "busy"
//! answers are retried a bounded number of times ([`RETRY_ATTEMPTS_MAX`]).
//!
//! Architecture invariant: only this crate knows SQL.

pub mod api_keys;
mod availability;
mod batch;
mod bulk;
pub mod cards;
pub mod clv;
pub mod coupons;
pub mod erasure;
pub mod error;
pub mod idempotency;
pub mod jobs;
pub mod ledger;
pub mod members;
pub mod metrics;
mod migrate;
pub mod programs;
pub mod purchases;
pub mod redemptions;
pub mod reward_cancel;
pub mod rewards;
pub mod rules;
mod schedule;
pub mod segments;
pub mod standing;
pub mod stats;
pub mod tenants;
pub mod testing;
pub mod time;
pub mod verify;
pub mod wallet;
mod writer;

pub use batch::renumber;
pub use writer::{GROUP_MAX, Tx};

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyConnection, AnyPool, Connection, Executor};

pub use error::{Rejection, StoreError};

/// How many times a unit of work is attempted when the database asks for a retry.
pub const RETRY_ATTEMPTS_MAX: u32 = 8;

/// Which database a [`Store`] talks to. Chosen once, from the URL scheme.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    /// `FOR UPDATE` on PostgreSQL; nothing on SQLite, where `BEGIN IMMEDIATE` already makes the
    /// transaction the only writer.
    pub fn for_update(self) -> &'static str {
        match self {
            Backend::Sqlite => "",
            Backend::Postgres => " FOR UPDATE",
        }
    }
}

/// Connection settings beyond the URL.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    pub max_connections: u32,
    /// PostgreSQL only: put every table in this schema (created if missing). Tests use a fresh
    /// schema each.
    pub postgres_schema: Option<String>,
    pub acquire_timeout: Duration,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            max_connections: 8,
            postgres_schema: None,
            acquire_timeout: Duration::from_secs(30),
        }
    }
}

/// The handle every use case goes through. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    /// SQLite (file databases): the one connection this process writes through. SQLite admits
    /// one writer at a time anyway; queueing writers here, in order, instead of letting pool
    /// connections race for the file lock keeps them out of SQLite's busy handler (which
    /// sleeps in steps of up to 100 ms), and lets queued units share a commit (`writer`).
    writer: Option<Arc<writer::Writer>>,
    /// How this process's purchases were posted on PostgreSQL.
    purchase_paths: Arc<PathCounters>,
}

#[derive(Debug, Default)]
struct PathCounters {
    optimistic: std::sync::atomic::AtomicU64,
    locked_fallbacks: std::sync::atomic::AtomicU64,
}

/// How the purchases this process posted on PostgreSQL went (see `Store::post_purchase`):
/// committed by the optimistic path, or handed to the locked path. Counts since start.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PurchasePaths {
    pub optimistic: u64,
    pub locked_fallbacks: u64,
}

impl Store {
    /// Opens a store from a database URL: `sqlite://path`, `sqlite::memory:`, a bare file path
    /// (SQLite), or `postgres://...`. Runs no migrations: call [`Store::migrate`].
    pub async fn connect(url: &str, options: StoreOptions) -> Result<Store, StoreError> {
        sqlx::any::install_default_drivers();
        let (url, backend) = normalize_url(url)?;
        let connect_options = AnyConnectOptions::from_str(&url)
            .map_err(|e| StoreError::Config(format!("invalid database URL: {e}")))?;
        let schema = options.postgres_schema.clone();
        if let (Backend::Postgres, Some(schema)) = (backend, &schema) {
            if !schema
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_')
            {
                return Err(StoreError::Config(format!(
                    "invalid schema name {schema:?}"
                )));
            }
            // Create the schema once, before the pool's connections set their search_path.
            let mut conn = sqlx::AnyConnection::connect_with(&connect_options).await?;
            conn.execute(format!("CREATE SCHEMA IF NOT EXISTS {schema}").as_str())
                .await?;
        }
        let max_connections = match (backend, url.contains(":memory:")) {
            // An in-memory SQLite database exists per connection: keep exactly one.
            (Backend::Sqlite, true) => 1,
            _ => options.max_connections.max(1),
        };
        let pool = AnyPoolOptions::new()
            .max_connections(max_connections)
            // No ping before every checkout: it doubled the round trips of short queries. A
            // connection the server dropped fails its next statement instead, and that
            // failure stores nothing (the caller retries), so correctness does not depend
            // on the ping.
            .test_before_acquire(false)
            .acquire_timeout(options.acquire_timeout)
            .after_connect({
                let schema = schema.clone();
                move |conn, _meta| {
                    let schema = schema.clone();
                    Box::pin(
                        async move { prepare_connection(conn, backend, schema.as_deref()).await },
                    )
                }
            })
            .connect_with(connect_options.clone())
            .await?;
        let writer = if backend == Backend::Sqlite && max_connections > 1 {
            let mut conn = AnyConnection::connect_with(&connect_options).await?;
            prepare_connection(&mut conn, backend, None).await?;
            Some(writer::Writer::new(conn))
        } else {
            None
        };
        Ok(Store {
            pool,
            backend,
            writer,
            purchase_paths: Arc::default(),
        })
    }

    /// How this process's purchases were posted on PostgreSQL ([`PurchasePaths`]).
    pub fn purchase_paths(&self) -> PurchasePaths {
        use std::sync::atomic::Ordering::Relaxed;
        PurchasePaths {
            optimistic: self.purchase_paths.optimistic.load(Relaxed),
            locked_fallbacks: self.purchase_paths.locked_fallbacks.load(Relaxed),
        }
    }

    pub(crate) fn count_purchase_path(&self, optimistic: bool) {
        use std::sync::atomic::Ordering::Relaxed;
        let counter = if optimistic {
            &self.purchase_paths.optimistic
        } else {
            &self.purchase_paths.locked_fallbacks
        };
        counter.fetch_add(1, Relaxed);
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Applies the embedded migrations of this backend that have not run yet.
    pub async fn migrate(&self) -> Result<migrate::MigrationReport, StoreError> {
        migrate::run(self).await
    }

    /// Whether every embedded migration has been applied (for readiness checks).
    pub async fn migrations_current(&self) -> Result<bool, StoreError> {
        migrate::current(self).await
    }

    /// After a bulk load of members: PostgreSQL's `ANALYZE` of the tables it filled, so the
    /// statements that follow are planned for the tables as they now are rather than as
    /// autovacuum last saw them (docs/CONFIG.md, "PostgreSQL's statistics"). Nothing on
    /// SQLite, whose planner does not rely on gathered statistics.
    pub async fn refresh_member_statistics(&self) -> Result<(), StoreError> {
        if self.backend == Backend::Postgres {
            sqlx::query("ANALYZE members, accounts, cards, consents")
                .execute(&self.pool)
                .await?;
        }
        Ok(())
    }

    /// Starts a write transaction: `BEGIN IMMEDIATE` on SQLite (take the write lock now, so
    /// a read-then-write unit of work cannot deadlock on the upgrade), a plain `BEGIN` on
    /// PostgreSQL (row locks are taken with `FOR UPDATE`).
    pub async fn begin_write(&self) -> Result<Tx, StoreError> {
        let tx = match (&self.writer, self.backend) {
            // SQLite file: the writer queue, with group commit (see `writer`).
            (Some(writer), _) => writer.begin().await?,
            (None, Backend::Sqlite) => {
                Tx::pooled(self.pool.acquire().await?, "BEGIN IMMEDIATE").await?
            }
            (None, Backend::Postgres) => Tx::pooled(self.pool.acquire().await?, "BEGIN").await?,
        };
        Ok(tx)
    }

    /// SQLite: how many units of work are queued for the writer now (`None` on PostgreSQL,
    /// where writers do not queue in the process). For tests and diagnostics.
    pub fn queued_writers(&self) -> Option<usize> {
        self.writer.as_ref().map(|writer| writer.waiting())
    }

    /// Closes the pool, waiting for connections in use to be returned, and the writer.
    pub async fn close(&self) {
        if let Some(writer) = &self.writer {
            writer.flush().await;
        }
        self.pool.close().await;
    }
}

/// Session settings every connection gets when it opens.
async fn prepare_connection(
    conn: &mut AnyConnection,
    backend: Backend,
    schema: Option<&str>,
) -> Result<(), sqlx::Error> {
    match backend {
        Backend::Sqlite => {
            // WAL for concurrent readers; FULL so a committed ledger transaction survives power
            // loss (docs/LEDGER.md#concurrency); a busy timeout so a second process waits for the
            // writer instead of failing.
            conn.execute(
                "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; \
                 PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 10000;",
            )
            .await?;
        }
        Backend::Postgres => {
            if let Some(schema) = schema {
                conn.execute(format!("SET search_path TO {schema}").as_str())
                    .await?;
            }
        }
    }
    Ok(())
}

/// Runs a unit of work in a write transaction, retrying the whole unit when the database
/// reports a transient conflict. The body is an `async` block that uses `$tx`
/// (`&mut AnyConnection` via `&mut *$tx`) and returns `Result<T, StoreError>`; it must be
/// safe to run again from the start (it is: nothing is visible until commit).
#[macro_export]
macro_rules! unit_of_work {
    ($store:expr, |$tx:ident| $body:expr) => {{
        let mut attempt: u32 = 0;
        loop {
            attempt += 1;
            let mut $tx = $store.begin_write().await?;
            let result = $body;
            let result = match result {
                Ok(value) => $tx
                    .commit()
                    .await
                    .map(|_| value)
                    .map_err($crate::StoreError::from),
                Err(error) => {
                    let _ = $tx.rollback().await;
                    Err(error)
                }
            };
            match result {
                Err(error) if error.is_retryable() && attempt < $crate::RETRY_ATTEMPTS_MAX => {
                    $crate::backoff(attempt).await;
                    continue;
                }
                other => break other,
            }
        }
    }};
}

/// An idempotent unit of work: [`unit_of_work!`] around [`idempotency::run`], then
/// [`idempotency::settle`], which stores a business rejection (the unit itself rolled back).
/// `$body` is an `async |c: &mut Conn, tail: &mut Batch| -> Result<T, StoreError>` closure.
#[macro_export]
#[doc(hidden)]
macro_rules! idempotent_unit {
    ($store:expr, $tenant:expr, $claims:expr, $now:expr, $body:expr) => {{
        let result = $crate::unit_of_work!($store, |tx| async {
            $crate::idempotency::run(&mut tx, $store.backend(), $tenant, $claims, $now, $body).await
        }
        .await);
        $crate::idempotency::settle($store, $tenant, $claims, $now, result).await
    }};
}

/// A short, jittered pause before retrying a conflicted unit of work.
#[doc(hidden)]
pub async fn backoff(attempt: u32) {
    let base_ms = 2u64.saturating_pow(attempt.min(7));
    let jitter_ms = u64::from(uuid::Uuid::new_v4().as_bytes()[0]) % (base_ms + 1);
    tokio::time::sleep(Duration::from_millis(base_ms + jitter_ms)).await;
}

/// Accepts `sqlite://...`, `sqlite:...`, `postgres://...`, `postgresql://...` and a bare file
/// path, and tells which backend it names. New SQLite files are created (`mode=rwc`).
pub fn normalize_url(url: &str) -> Result<(String, Backend), StoreError> {
    let url = url.trim();
    if url.is_empty() {
        return Err(StoreError::Config("the database URL is empty".into()));
    }
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return Ok((url.to_string(), Backend::Postgres));
    }
    if url == "sqlite::memory:" || url.starts_with("sqlite::memory:") {
        return Ok((url.to_string(), Backend::Sqlite));
    }
    let path = if let Some(rest) = url.strip_prefix("sqlite://") {
        rest
    } else if let Some(rest) = url.strip_prefix("sqlite:") {
        rest
    } else if url.contains("://") {
        return Err(StoreError::Config(format!(
            "unsupported database URL {url:?}: use sqlite://PATH, a file path, or postgres://..."
        )));
    } else {
        url
    };
    let (path, query) = match path.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (path, None),
    };
    let mut normalized = format!("sqlite://{path}");
    match query {
        Some(query) if query.contains("mode=") => normalized.push_str(&format!("?{query}")),
        Some(query) => normalized.push_str(&format!("?{query}&mode=rwc")),
        None => normalized.push_str("?mode=rwc"),
    }
    Ok((normalized, Backend::Sqlite))
}

/// The connection a unit of work writes through: a transaction or a savepoint inside one.
pub(crate) type Conn = AnyConnection;

/// Reborrows a connection as an executor (keeps call sites short).
pub(crate) fn conn(tx: &mut Conn) -> &mut Conn {
    tx
}
