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
    /// The key the API encrypts this club's integer ids under (migration 0016).
    pub id_key: IdKey,
}

/// A club's secret for its opaque ids: 32 random bytes, made once with the club and never
/// changed, since every id the API handed out is encrypted under it. Its `Debug` shows
/// nothing, so that logging a tenant cannot leak it.
#[derive(Clone, PartialEq, Eq)]
pub struct IdKey([u8; 32]);

impl IdKey {
    /// A new random key (the thread's CSPRNG, seeded from the operating system).
    pub fn random() -> IdKey {
        IdKey(rand::random())
    }

    pub fn from_bytes(bytes: [u8; 32]) -> IdKey {
        IdKey(bytes)
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The stored form: 64 lowercase hex digits.
    fn to_db(&self) -> String {
        hex::encode(self.0)
    }

    pub(crate) fn from_stored(text: Option<String>) -> Result<IdKey, StoreError> {
        let bytes = text
            .and_then(|text| hex::decode(text).ok())
            .and_then(|bytes| <[u8; 32]>::try_from(bytes).ok())
            .ok_or_else(|| StoreError::Corrupt("a club's id key is missing or malformed".into()))?;
        Ok(IdKey(bytes))
    }
}

impl std::fmt::Debug for IdKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("IdKey(..)")
    }
}

/// The program-level system accounts every tenant has (docs/LEDGER.md#model).
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
        id_key: IdKey::from_stored(row.try_get("id_key")?)?,
    })
}

/// The columns [`tenant_from_row`] reads, for a row of `tenants` named `t`.
pub(crate) const TENANT_COLUMNS: &str = "t.id, t.name, t.created_at, t.id_key";

impl Store {
    pub async fn tenant_by_name(&self, name: &str) -> Result<Option<Tenant>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {TENANT_COLUMNS} FROM tenants t WHERE t.name = $1"
        ))
        .bind(name)
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(tenant_from_row).transpose()
    }

    pub async fn tenant_by_id(&self, id: TenantId) -> Result<Option<Tenant>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {TENANT_COLUMNS} FROM tenants t WHERE t.id = $1"
        ))
        .bind(id.0)
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(tenant_from_row).transpose()
    }

    pub async fn list_tenants(&self) -> Result<Vec<Tenant>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {TENANT_COLUMNS} FROM tenants t ORDER BY t.id"
        ))
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(tenant_from_row).collect()
    }

    /// Returns the tenant with this name, creating it (and its system accounts) if needed.
    pub async fn ensure_tenant(&self, name: &str, now: Timestamp) -> Result<Tenant, StoreError> {
        unit_of_work!(self, |tx| {
            async {
            let existing = sqlx::query(&format!("SELECT {TENANT_COLUMNS} FROM tenants t WHERE t.name = $1"))
                .bind(name)
                .fetch_optional(conn(&mut tx))
                .await?;
            if let Some(row) = existing {
                return tenant_from_row(&row);
            }
            let row = sqlx::query(
                "INSERT INTO tenants (name, created_at, id_key) VALUES ($1, $2, $3) RETURNING id, name, created_at, id_key",
            )
            .bind(name)
            .bind(time::to_db(now))
            .bind(IdKey::random().to_db())
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
