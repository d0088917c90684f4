//! Test databases for the contract tests of every crate: a fresh SQLite file, and a fresh
//! PostgreSQL schema when `PATRON_TEST_POSTGRES_URL` is set. Under `CI=true` a missing or
//! unreachable PostgreSQL is a failure, never a silent skip.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::{Backend, Store, StoreError, StoreOptions};

/// The environment variable naming the PostgreSQL server tests may use.
pub const POSTGRES_URL_VAR: &str = "PATRON_TEST_POSTGRES_URL";

static SKIP_NOTED: AtomicBool = AtomicBool::new(false);

/// A migrated, empty database that cleans up after itself when dropped.
#[derive(Debug)]
pub struct TestDatabase {
    pub store: Store,
    pub url: String,
    pub schema: Option<String>,
    sqlite_path: Option<PathBuf>,
    admin_url: Option<String>,
}

impl TestDatabase {
    pub fn backend(&self) -> Backend {
        self.store.backend()
    }

    /// Opens another store on the same database (a second process, or a restart).
    pub async fn reopen(&self) -> Result<Store, StoreError> {
        let options = StoreOptions {
            postgres_schema: self.schema.clone(),
            ..StoreOptions::default()
        };
        Store::connect(&self.url, options).await
    }

    /// Closes the pool and removes the database (the SQLite file, or the PostgreSQL schema).
    /// Dropping a `TestDatabase` does the same; this is the polite way, which closes the
    /// pool's connections first.
    pub async fn cleanup(mut self) {
        self.store.close().await;
        self.remove_sqlite_files();
        if let Some((admin, schema)) = self.schema_to_drop() {
            drop_schema(&admin, &schema).await;
        }
    }

    fn remove_sqlite_files(&mut self) {
        if let Some(path) = self.sqlite_path.take() {
            for suffix in ["", "-wal", "-shm"] {
                let mut p = path.clone().into_os_string();
                p.push(suffix);
                let _ = std::fs::remove_file(p);
            }
        }
    }

    /// The schema still to drop, at most once.
    fn schema_to_drop(&mut self) -> Option<(String, String)> {
        let admin = self.admin_url.take()?;
        Some((admin, self.schema.clone()?))
    }
}

/// A test that ends without `cleanup` (most do, and a failing one always does) still leaves
/// nothing behind: the schema is dropped from a short-lived thread of its own, since `Drop`
/// cannot wait on the test's runtime.
impl Drop for TestDatabase {
    fn drop(&mut self) {
        self.remove_sqlite_files();
        let Some((admin, schema)) = self.schema_to_drop() else {
            return;
        };
        let dropper = std::thread::spawn(move || {
            if let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                runtime.block_on(drop_schema(&admin, &schema));
            }
        });
        let _ = dropper.join();
    }
}

async fn drop_schema(admin_url: &str, schema: &str) {
    let options = StoreOptions {
        max_connections: 1,
        ..StoreOptions::default()
    };
    if let Ok(store) = Store::connect(admin_url, options).await {
        // A connection of the test's pool may still be closing its transaction; wait for it
        // a little, never forever.
        let _ = sqlx::query("SET lock_timeout = '10s'")
            .execute(store.pool())
            .await;
        let _ = sqlx::query(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
            .execute(store.pool())
            .await;
        store.close().await;
    }
}

fn unique_name(prefix: &str) -> String {
    format!("{prefix}_{}", uuid::Uuid::new_v4().simple())
}

/// A fresh, migrated SQLite database in a temporary file.
pub async fn sqlite() -> Result<TestDatabase, StoreError> {
    let path = std::env::temp_dir().join(format!("{}.db", unique_name("patron_test")));
    let url = format!("sqlite://{}", path.display());
    let store = Store::connect(&url, StoreOptions::default()).await?;
    store.migrate().await?;
    Ok(TestDatabase {
        store,
        url,
        schema: None,
        sqlite_path: Some(path),
        admin_url: None,
    })
}

/// A fresh, migrated PostgreSQL schema, or None when `PATRON_TEST_POSTGRES_URL` is unset
/// outside CI. Panics in CI when PostgreSQL is not configured or not reachable.
pub async fn postgres() -> Option<TestDatabase> {
    let in_ci = std::env::var("CI").is_ok_and(|v| v == "true" || v == "1");
    let Ok(url) = std::env::var(POSTGRES_URL_VAR) else {
        assert!(
            !in_ci,
            "{POSTGRES_URL_VAR} is not set: CI must run every storage test on PostgreSQL too"
        );
        if !SKIP_NOTED.swap(true, Ordering::Relaxed) {
            eprintln!(
                "skipped: PostgreSQL runs of the storage tests ({POSTGRES_URL_VAR} is unset; \
                 set it to e.g. postgres://postgres@127.0.0.1:5432/postgres to enable them)"
            );
        }
        return None;
    };
    Some(postgres_at(&url).await)
}

/// A fresh, migrated PostgreSQL schema on the server at `url`. Panics if it is not usable
/// (test fixtures fail where they fail).
#[allow(clippy::panic)]
pub async fn postgres_at(url: &str) -> TestDatabase {
    let url = url.to_string();
    let schema = unique_name("patron_test");
    let options = StoreOptions {
        postgres_schema: Some(schema.clone()),
        max_connections: 16,
        ..StoreOptions::default()
    };
    let connected = async {
        let store = Store::connect(&url, options).await?;
        store.migrate().await?;
        Ok::<Store, StoreError>(store)
    }
    .await;
    match connected {
        Ok(store) => TestDatabase {
            store,
            url: url.clone(),
            schema: Some(schema),
            sqlite_path: None,
            admin_url: Some(url),
        },
        Err(error) => panic!("PostgreSQL at {url} is not usable: {error}"),
    }
}

/// Every backend available to this test run: SQLite always, PostgreSQL when configured.
/// Panics when SQLite cannot create its file.
#[allow(clippy::panic)]
pub async fn all() -> Vec<TestDatabase> {
    let mut databases = Vec::with_capacity(2);
    match sqlite().await {
        Ok(db) => databases.push(db),
        Err(error) => panic!("cannot create a SQLite test database: {error}"),
    }
    if let Some(db) = postgres().await {
        databases.push(db);
    }
    databases
}
