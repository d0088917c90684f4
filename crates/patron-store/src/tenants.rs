//! Tenants: the clubs one deployment hosts. Every other table is keyed by tenant id, and every
//! query filters on it, so one club never sees another's rows.

use jiff::Timestamp;
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::{Store, StoreError, conn, time, unit_of_work};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TenantId(pub i64);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tenant {
    pub id: TenantId,
    pub name: String,
    pub created_at: Timestamp,
}

/// The program-level system accounts every tenant has (LEDGER.md, Model).
pub const SYSTEM_ACCOUNTS: &[&str] = &[
    "issuance",
    "redemption",
    "expiry",
    "clawback",
    "adjustment",
    "forfeit",
];

fn tenant_from_row(row: &AnyRow) -> Result<Tenant, StoreError> {
    Ok(Tenant {
        id: TenantId(row.try_get("id")?),
        name: row.try_get("name")?,
        created_at: time::from_db(row.try_get("created_at")?)?,
    })
}

impl Store {
    pub async fn tenant_by_name(&self, name: &str) -> Result<Option<Tenant>, StoreError> {
        let row = sqlx::query("SELECT id, name, created_at FROM tenants WHERE name = $1")
            .bind(name)
            .fetch_optional(self.pool())
            .await?;
        row.as_ref().map(tenant_from_row).transpose()
    }

    pub async fn tenant_by_id(&self, id: TenantId) -> Result<Option<Tenant>, StoreError> {
        let row = sqlx::query("SELECT id, name, created_at FROM tenants WHERE id = $1")
            .bind(id.0)
            .fetch_optional(self.pool())
            .await?;
        row.as_ref().map(tenant_from_row).transpose()
    }

    pub async fn list_tenants(&self) -> Result<Vec<Tenant>, StoreError> {
        let rows = sqlx::query("SELECT id, name, created_at FROM tenants ORDER BY id")
            .fetch_all(self.pool())
            .await?;
        rows.iter().map(tenant_from_row).collect()
    }

    /// Returns the tenant with this name, creating it (and its system accounts) if needed.
    pub async fn ensure_tenant(&self, name: &str, now: Timestamp) -> Result<Tenant, StoreError> {
        unit_of_work!(self, |tx| {
            async {
            let existing = sqlx::query("SELECT id, name, created_at FROM tenants WHERE name = $1")
                .bind(name)
                .fetch_optional(conn(&mut tx))
                .await?;
            if let Some(row) = existing {
                return tenant_from_row(&row);
            }
            let row = sqlx::query(
                "INSERT INTO tenants (name, created_at) VALUES ($1, $2) RETURNING id, name, created_at",
            )
            .bind(name)
            .bind(time::to_db(now))
            .fetch_one(conn(&mut tx))
            .await?;
            let tenant = tenant_from_row(&row)?;
            for kind in SYSTEM_ACCOUNTS {
                sqlx::query("INSERT INTO accounts (tenant_id, kind) VALUES ($1, $2)")
                    .bind(tenant.id.0)
                    .bind(*kind)
                    .execute(conn(&mut tx))
                    .await?;
            }
            Ok(tenant)
        }
        .await
        })
    }
}
