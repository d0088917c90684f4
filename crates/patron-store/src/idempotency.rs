//! Idempotency (LEDGER.md): the same key and request give the same response and one effect,
//! even after a crash between commit and reply; the same key with another request is refused.
//!
//! A unit of work first *claims* its keys (`INSERT ... ON CONFLICT DO NOTHING`). On PostgreSQL
//! an identical request running concurrently blocks on that insert until the first commits,
//! then finds the stored response and replays it, without doing the work twice. The work then
//! runs inside a savepoint: a business rejection rolls the savepoint back (nothing of the work
//! remains) and is stored as the response; an infrastructure error rolls back everything,
//! including the claim, so the call can be retried. The response is written in the same
//! transaction as the ledger rows.

use jiff::Timestamp;
use serde::Serialize;
use serde::de::DeserializeOwned;
use sqlx::{Acquire, AnyConnection, Row};

use crate::bulk::placeholders;
use crate::tenants::TenantId;
use crate::{Rejection, Store, StoreError, time};

/// Prefix of keys derived from a shop's document id. They are kept forever (the document id
/// is unique forever); client keys expire after the retention period.
pub const DOCUMENT_KEY_PREFIX: &str = "document:";

/// One idempotency key a unit of work claims.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    pub key: String,
    /// What the key was used for (`purchase.post`, `member.enroll`, ...).
    pub operation: String,
    /// A hash of the canonical request; a different request under the same key is refused.
    pub request_hash: String,
}

impl Claim {
    pub fn new(
        key: impl Into<String>,
        operation: impl Into<String>,
        request_hash: impl Into<String>,
    ) -> Self {
        Claim {
            key: key.into(),
            operation: operation.into(),
            request_hash: request_hash.into(),
        }
    }
}

/// The answer of an idempotent unit of work.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Idempotent<T> {
    /// What the operation answered: its result, or the business rejection it stored.
    pub outcome: Result<T, Rejection>,
    /// True when this is the stored answer of an earlier identical request.
    pub replayed: bool,
}

impl<T> Idempotent<T> {
    /// The result as `Result<T, StoreError>`, for callers that don't care about replays.
    pub fn into_result(self) -> Result<T, StoreError> {
        self.outcome.map_err(StoreError::Rejected)
    }
}

#[derive(serde::Serialize, serde::Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
enum Stored<T> {
    Ok { value: T },
    Rejected { rejection: Rejection },
}

/// Runs `body` idempotently under `claims` inside the caller's transaction.
pub(crate) async fn run<T, F>(
    tx: &mut AnyConnection,
    tenant: TenantId,
    claims: &[Claim],
    now: Timestamp,
    body: F,
) -> Result<Idempotent<T>, StoreError>
where
    T: Serialize + DeserializeOwned,
    F: AsyncFnOnce(&mut AnyConnection) -> Result<T, StoreError>,
{
    // One statement claims every key; the keys it returns are ours.
    let mut claimed = std::collections::HashSet::with_capacity(claims.len());
    if !claims.is_empty() {
        let sql = format!(
            "INSERT INTO idempotency_keys (tenant_id, key, operation, request_hash, response, created_at) \
             VALUES {} ON CONFLICT (tenant_id, key) DO NOTHING RETURNING key",
            placeholders(claims.len(), 6)
        );
        let mut query = sqlx::query(&sql);
        for claim in claims {
            query = query
                .bind(tenant.0)
                .bind(&claim.key)
                .bind(&claim.operation)
                .bind(&claim.request_hash)
                .bind("")
                .bind(time::to_db(now));
        }
        for row in query.fetch_all(&mut *tx).await? {
            claimed.insert(row.try_get::<String, _>("key")?);
        }
    }
    let owned: Vec<&Claim> = claims.iter().filter(|c| claimed.contains(&c.key)).collect();
    // Every key already taken must have been taken by this same request; the first one's
    // stored answer is replayed.
    let mut replay: Option<String> = None;
    for claim in claims.iter().filter(|c| !claimed.contains(&c.key)) {
        let row = sqlx::query(
            "SELECT operation, request_hash, response FROM idempotency_keys WHERE tenant_id = $1 AND key = $2",
        )
        .bind(tenant.0)
        .bind(&claim.key)
        .fetch_one(&mut *tx)
        .await?;
        let operation: String = row.try_get("operation")?;
        let request_hash: String = row.try_get("request_hash")?;
        let response: String = row.try_get("response")?;
        if operation != claim.operation || request_hash != claim.request_hash {
            return Err(StoreError::IdempotencyMismatch {
                key: claim.key.clone(),
            });
        }
        if response.is_empty() {
            // Only possible if a claim was committed without its response: never by this code.
            return Err(StoreError::Corrupt(format!(
                "idempotency key {:?} has no stored response",
                claim.key
            )));
        }
        replay.get_or_insert(response);
    }
    if let Some(response) = replay {
        // Keys this request claimed before finding the replay get the same stored answer.
        store_response(tx, tenant, &owned, &response).await?;
        let stored: Stored<T> = serde_json::from_str(&response)?;
        let outcome = match stored {
            Stored::Ok { value } => Ok(value),
            Stored::Rejected { rejection } => Err(rejection),
        };
        return Ok(Idempotent {
            outcome,
            replayed: true,
        });
    }

    let mut savepoint = tx.begin().await?;
    let result = body(&mut savepoint).await;
    let outcome = match result {
        Ok(value) => {
            savepoint.commit().await?;
            Ok(value)
        }
        Err(StoreError::Rejected(rejection)) => {
            savepoint.rollback().await?;
            Err(rejection)
        }
        Err(other) => return Err(other),
    };
    if !owned.is_empty() {
        let stored = match &outcome {
            Ok(value) => Stored::Ok { value },
            Err(rejection) => Stored::Rejected {
                rejection: rejection.clone(),
            },
        };
        let response = serde_json::to_string(&stored)?;
        store_response(tx, tenant, &owned, &response).await?;
    }
    Ok(Idempotent {
        outcome,
        replayed: false,
    })
}

/// Stores the response under every key this request owns, in one statement.
async fn store_response(
    tx: &mut AnyConnection,
    tenant: TenantId,
    keys: &[&Claim],
    response: &str,
) -> Result<(), StoreError> {
    if keys.is_empty() {
        return Ok(());
    }
    let list = (0..keys.len())
        .map(|i| format!("${}", i + 3))
        .collect::<Vec<_>>()
        .join(", ");
    let sql = format!(
        "UPDATE idempotency_keys SET response = $2 WHERE tenant_id = $1 AND key IN ({list})"
    );
    let mut query = sqlx::query(&sql).bind(tenant.0).bind(response);
    for claim in keys {
        query = query.bind(&claim.key);
    }
    query.execute(&mut *tx).await?;
    Ok(())
}

impl Store {
    /// Deletes client idempotency keys older than `before` (document keys are kept). Returns
    /// how many were removed.
    pub async fn purge_idempotency_keys(&self, before: Timestamp) -> Result<u64, StoreError> {
        let done = sqlx::query(
            "DELETE FROM idempotency_keys WHERE created_at < $1 AND key NOT LIKE 'document:%'",
        )
        .bind(time::to_db(before))
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected())
    }
}
