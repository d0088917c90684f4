//! Embedded, forward-only migrations, one list per backend. The two are written by hand; the
//! engine's test `schema_parity` migrates both and fails on any difference in the schemas
//! they make that its table of allowed differences does not list with a reason.
//!
//! Each migration runs in its own transaction together with the row that records it, so a
//! crash leaves the schema either before or after it, never half-way (PostgreSQL and SQLite
//! both have transactional DDL).

use sqlx::{Executor, Row};

use crate::{Backend, Store, StoreError};

struct Migration {
    version: i64,
    name: &'static str,
    sql: &'static str,
}

const SQLITE: &[Migration] = &[
    Migration {
        version: 1,
        name: "init",
        sql: include_str!("../migrations/sqlite/0001_init.sql"),
    },
    Migration {
        version: 2,
        name: "api_keys",
        sql: include_str!("../migrations/sqlite/0002_api_keys.sql"),
    },
    Migration {
        version: 3,
        name: "rules",
        sql: include_str!("../migrations/sqlite/0003_rules.sql"),
    },
    Migration {
        version: 4,
        name: "jobs",
        sql: include_str!("../migrations/sqlite/0004_jobs.sql"),
    },
    Migration {
        version: 5,
        name: "rewards",
        sql: include_str!("../migrations/sqlite/0005_rewards.sql"),
    },
    Migration {
        version: 6,
        name: "member_stats",
        sql: include_str!("../migrations/sqlite/0006_member_stats.sql"),
    },
    Migration {
        version: 7,
        name: "segments",
        sql: include_str!("../migrations/sqlite/0007_segments.sql"),
    },
    Migration {
        version: 8,
        name: "metrics_clv",
        sql: include_str!("../migrations/sqlite/0008_metrics_clv.sql"),
    },
    Migration {
        version: 9,
        name: "referrals",
        sql: include_str!("../migrations/sqlite/0009_referrals.sql"),
    },
    Migration {
        version: 10,
        name: "tier_floors",
        sql: include_str!("../migrations/sqlite/0010_tier_floors.sql"),
    },
    // 11 is PostgreSQL's alone.
    Migration {
        version: 12,
        name: "member_purchases_covering",
        sql: include_str!("../migrations/sqlite/0012_member_purchases_covering.sql"),
    },
    // 13 is PostgreSQL's alone.
    Migration {
        version: 14,
        name: "rule_awards_usage_partial",
        sql: include_str!("../migrations/sqlite/0014_rule_awards_usage_partial.sql"),
    },
    // PostgreSQL's BIGINT columns need no 15: their type refuses a non-integer.
    Migration {
        version: 15,
        name: "integer_amounts",
        sql: include_str!("../migrations/sqlite/0015_integer_amounts.sql"),
    },
    Migration {
        version: 16,
        name: "tenant_id_keys",
        sql: include_str!("../migrations/sqlite/0016_tenant_id_keys.sql"),
    },
];

const POSTGRES: &[Migration] = &[
    Migration {
        version: 1,
        name: "init",
        sql: include_str!("../migrations/postgres/0001_init.sql"),
    },
    Migration {
        version: 2,
        name: "api_keys",
        sql: include_str!("../migrations/postgres/0002_api_keys.sql"),
    },
    Migration {
        version: 3,
        name: "rules",
        sql: include_str!("../migrations/postgres/0003_rules.sql"),
    },
    Migration {
        version: 4,
        name: "jobs",
        sql: include_str!("../migrations/postgres/0004_jobs.sql"),
    },
    Migration {
        version: 5,
        name: "rewards",
        sql: include_str!("../migrations/postgres/0005_rewards.sql"),
    },
    Migration {
        version: 6,
        name: "member_stats",
        sql: include_str!("../migrations/postgres/0006_member_stats.sql"),
    },
    Migration {
        version: 7,
        name: "segments",
        sql: include_str!("../migrations/postgres/0007_segments.sql"),
    },
    Migration {
        version: 8,
        name: "metrics_clv",
        sql: include_str!("../migrations/postgres/0008_metrics_clv.sql"),
    },
    Migration {
        version: 9,
        name: "referrals",
        sql: include_str!("../migrations/postgres/0009_referrals.sql"),
    },
    Migration {
        version: 10,
        name: "tier_floors",
        sql: include_str!("../migrations/postgres/0010_tier_floors.sql"),
    },
    // PostgreSQL only: SQLite's transfer ids need no change (see the file).
    Migration {
        version: 11,
        name: "transfer_ids",
        sql: include_str!("../migrations/postgres/0011_transfer_ids.sql"),
    },
    Migration {
        version: 12,
        name: "member_purchases_covering",
        sql: include_str!("../migrations/postgres/0012_member_purchases_covering.sql"),
    },
    // PostgreSQL only: the optimistic purchase path's guard (see the file).
    Migration {
        version: 13,
        name: "wallet_lock_version",
        sql: include_str!("../migrations/postgres/0013_wallet_lock_version.sql"),
    },
    Migration {
        version: 14,
        name: "rule_awards_usage_partial",
        sql: include_str!("../migrations/postgres/0014_rule_awards_usage_partial.sql"),
    },
    Migration {
        version: 16,
        name: "tenant_id_keys",
        sql: include_str!("../migrations/postgres/0016_tenant_id_keys.sql"),
    },
];

fn migrations(backend: Backend) -> &'static [Migration] {
    match backend {
        Backend::Sqlite => SQLITE,
        Backend::Postgres => POSTGRES,
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrationReport {
    pub applied: Vec<String>,
    pub current_version: i64,
}

const CREATE_TABLE: &str = "CREATE TABLE IF NOT EXISTS patron_migrations (
    version BIGINT PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)";

pub(crate) async fn run(store: &Store) -> Result<MigrationReport, StoreError> {
    let mut applied = Vec::new();
    {
        let mut conn = store.pool().acquire().await?;
        conn.execute(CREATE_TABLE).await?;
    }
    refuse_newer_schema(store).await?;
    for migration in migrations(store.backend()) {
        let mut tx = store.begin_write().await?;
        let done = sqlx::query("SELECT version FROM patron_migrations WHERE version = $1")
            .bind(migration.version)
            .fetch_optional(&mut *tx)
            .await?;
        if done.is_some() {
            tx.rollback().await?;
            continue;
        }
        tx.execute(migration.sql).await?;
        sqlx::query(
            "INSERT INTO patron_migrations (version, name, applied_at) VALUES ($1, $2, $3)",
        )
        .bind(migration.version)
        .bind(migration.name)
        .bind(jiff::Timestamp::now().as_microsecond())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        applied.push(format!("{:04}_{}", migration.version, migration.name));
    }
    // Members enrolled before 0009 (or by an import cut short before its codes were filled)
    // get their referral codes: random codes are made here, not in SQL.
    crate::members::referrals::fill_referral_codes(store, None).await?;
    Ok(MigrationReport {
        applied,
        current_version: latest_known(store.backend()),
    })
}

/// Refuses a database that a newer Patron migrated: this binary would run on a schema whose
/// rules it does not know (since migration 13, a PostgreSQL process that locks a wallet
/// without counting the lock breaks the optimistic purchase path of the newer ones).
async fn refuse_newer_schema(store: &Store) -> Result<(), StoreError> {
    let known = latest_known(store.backend());
    let found = applied_version(store).await?;
    if found > known {
        return Err(StoreError::Config(format!(
            "the database was migrated by a newer Patron (schema version {found}; this binary \
             knows up to {known}): run the newer version, or stop it and restore a backup \
             taken before its migration"
        )));
    }
    Ok(())
}

/// The newest migration this binary embeds for `backend`.
fn latest_known(backend: Backend) -> i64 {
    migrations(backend).last().map(|m| m.version).unwrap_or(0)
}

/// The newest migration applied to the database (0 for none; an error without the table).
async fn applied_version(store: &Store) -> Result<i64, sqlx::Error> {
    sqlx::query("SELECT CAST(COALESCE(MAX(version), 0) AS BIGINT) AS v FROM patron_migrations")
        .fetch_one(store.pool())
        .await?
        .try_get("v")
}

pub(crate) async fn current(store: &Store) -> Result<bool, StoreError> {
    match applied_version(store).await {
        Ok(version) => Ok(version >= latest_known(store.backend())),
        // No migrations table yet: not current.
        Err(sqlx::Error::Database(_)) => Ok(false),
        Err(e) => Err(e.into()),
    }
}
