//! Opening the database for a command: connect, migrate, and build an [`Engine`] on the
//! system clock. Every command that touches the database goes through [`open`], so a fresh
//! database is usable by any command and an old one is brought up to date first.

use std::sync::Arc;

use anyhow::Context;
use patron_engine::model::{StoreOptions, Tenant};
use patron_engine::{Clock, Engine, EngineError, SystemClock};

use crate::settings::Settings;

/// Connects to the database and applies pending migrations: the engine over it, on the
/// system clock. Applied migrations are logged at `info` (`patron migrate` prints them).
pub async fn connect_and_migrate(database_url: &str) -> anyhow::Result<(Engine, Vec<String>)> {
    connect_and_migrate_with(database_url, StoreOptions::default(), Arc::new(SystemClock)).await
}

/// [`connect_and_migrate`] with explicit connection settings and clock.
pub async fn connect_and_migrate_with(
    database_url: &str,
    options: StoreOptions,
    clock: Arc<dyn Clock>,
) -> anyhow::Result<(Engine, Vec<String>)> {
    let shown = redact(database_url);
    let engine = Engine::connect(database_url, options, clock)
        .await
        .with_context(|| format!("cannot open the database {shown}"))?;
    let applied = engine
        .migrate()
        .await
        .with_context(|| format!("cannot migrate the database {shown}"))?;
    for name in &applied {
        tracing::info!(migration = %name, database = %shown, "applied migration");
    }
    Ok((engine, applied))
}

/// The engine over the configured database, migrated, on the system clock.
pub async fn open(settings: &Settings) -> anyhow::Result<Engine> {
    let (engine, _) = connect_and_migrate(&settings.database_url).await?;
    Ok(engine)
}

/// The tenant with this name, or an error that says how to create it.
pub async fn tenant(engine: &Engine, name: &str) -> anyhow::Result<Tenant> {
    match engine.tenant(name).await {
        Ok(tenant) => Ok(tenant),
        Err(EngineError::TenantNotFound(_)) => anyhow::bail!(
            "tenant {name:?} not found; create it by applying a program: patron program apply FILE --tenant {name}\n  (`patron tenants list` shows the tenants in this database)"
        ),
        Err(error) => Err(error.into()),
    }
}

/// The URL with any password replaced by `***`, for messages and logs.
pub fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let Some((credentials, host)) = rest.rsplit_once('@') else {
        return url.to_string();
    };
    match credentials.split_once(':') {
        Some((user, _password)) => format!("{scheme}://{user}:***@{host}"),
        None => url.to_string(),
    }
}

/// Who is acting when `--actor` is not given: the login name, else `cli`.
pub fn default_actor() -> String {
    std::env::var("USER")
        .or_else(|_| std::env::var("USERNAME"))
        .ok()
        .filter(|name| !name.trim().is_empty())
        .unwrap_or_else(|| "cli".to_string())
}

/// `12345` → `12,345`.
pub fn thousands(n: impl Into<i128>) -> String {
    let n: i128 = n.into();
    let digits = n.unsigned_abs().to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3 + 1);
    if n < 0 {
        out.push('-');
    }
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}
