//! API keys. The store keeps a hash of each secret, never the secret; the engine makes and
//! hashes keys. A key belongs to one tenant and has one scope.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::programs::audit;
use crate::tenants::{IdKey, Tenant, TenantId};
use crate::{Store, StoreError, conn, time, unit_of_work};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiKey {
    pub id: i64,
    pub tenant_id: i64,
    pub name: String,
    /// The first characters of the key, to recognise it in lists.
    pub prefix: String,
    /// admin | pos | read
    pub scope: String,
    pub created_at: Timestamp,
    pub created_by: String,
    pub revoked_at: Option<Timestamp>,
}

const COLUMNS: &str =
    "k.id, k.tenant_id, k.name, k.prefix, k.scope, k.created_at, k.created_by, k.revoked_at";

fn key_from_row(row: &AnyRow) -> Result<ApiKey, StoreError> {
    Ok(ApiKey {
        id: row.try_get("id")?,
        tenant_id: row.try_get("tenant_id")?,
        name: row.try_get("name")?,
        prefix: row.try_get("prefix")?,
        scope: row.try_get("scope")?,
        created_at: time::from_db(row.try_get("created_at")?)?,
        created_by: row.try_get("created_by")?,
        revoked_at: time::opt_from_db(row.try_get("revoked_at")?)?,
    })
}

impl Store {
    /// Stores a new key (its hash) and audits it.
    #[allow(clippy::too_many_arguments)]
    pub async fn create_api_key(
        &self,
        tenant: TenantId,
        name: &str,
        prefix: &str,
        secret_hash: &str,
        scope: &str,
        actor: &str,
        now: Timestamp,
    ) -> Result<ApiKey, StoreError> {
        unit_of_work!(self, |tx| {
            async {
            let row = sqlx::query(
                "INSERT INTO api_keys (tenant_id, name, prefix, secret_hash, scope, created_at, created_by) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
            )
            .bind(tenant.0)
            .bind(name)
            .bind(prefix)
            .bind(secret_hash)
            .bind(scope)
            .bind(time::to_db(now))
            .bind(actor)
            .fetch_one(conn(&mut tx))
            .await?;
            let id: i64 = row.try_get("id")?;
            audit(&mut tx, tenant, now, actor, "api_key.create", &format!("api_key:{id}"), &format!("{name} ({scope}, {prefix}…)"))
                .await?;
            let sql = format!("SELECT {COLUMNS} FROM api_keys k WHERE k.id = $1");
            let row = sqlx::query(&sql).bind(id).fetch_one(conn(&mut tx)).await?;
            key_from_row(&row)
        }
        .await
        })
    }

    pub async fn api_keys(&self, tenant: TenantId) -> Result<Vec<ApiKey>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM api_keys k WHERE k.tenant_id = $1 ORDER BY k.id");
        let rows = sqlx::query(&sql)
            .bind(tenant.0)
            .fetch_all(self.pool())
            .await?;
        rows.iter().map(key_from_row).collect()
    }

    /// Revokes a key of this tenant. Returns false when the tenant has no such key.
    pub async fn revoke_api_key(
        &self,
        tenant: TenantId,
        id: i64,
        actor: &str,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        unit_of_work!(self, |tx| {
            async {
            let done = sqlx::query(
                "UPDATE api_keys SET revoked_at = $3 WHERE tenant_id = $1 AND id = $2 AND revoked_at IS NULL",
            )
            .bind(tenant.0)
            .bind(id)
            .bind(time::to_db(now))
            .execute(conn(&mut tx))
            .await?;
            if done.rows_affected() == 0 {
                return Ok(false);
            }
            audit(&mut tx, tenant, now, actor, "api_key.revoke", &format!("api_key:{id}"), "revoked").await?;
            Ok(true)
        }
        .await
        })
    }

    /// The live (not revoked) key with this secret hash, and its tenant.
    pub async fn authenticate_api_key(
        &self,
        secret_hash: &str,
    ) -> Result<Option<(ApiKey, Tenant)>, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS}, t.name AS tenant_name, t.created_at AS tenant_created_at, t.id_key AS tenant_id_key FROM api_keys k \
             JOIN tenants t ON t.id = k.tenant_id WHERE k.secret_hash = $1 AND k.revoked_at IS NULL"
        );
        let row = sqlx::query(&sql)
            .bind(secret_hash)
            .fetch_optional(self.pool())
            .await?;
        row.map(|row| {
            let key = key_from_row(&row)?;
            let tenant = Tenant {
                id: TenantId(key.tenant_id),
                name: row.try_get("tenant_name")?,
                created_at: time::from_db(row.try_get("tenant_created_at")?)?,
                id_key: IdKey::from_stored(row.try_get("tenant_id_key")?)?,
            };
            Ok((key, tenant))
        })
        .transpose()
    }
}
