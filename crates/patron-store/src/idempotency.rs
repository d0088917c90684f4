//! Idempotency (docs/LEDGER.md#idempotency): the same key and request give the same response and
//! one effect, even after a crash between commit and reply; the same key with another request is
//! refused.
//!
//! A unit of work first *claims* its keys (`INSERT ... ON CONFLICT DO NOTHING`). On PostgreSQL
//! an identical request running concurrently blocks on that insert until the first commits,
//! then finds the stored response and replays it, without doing the work twice. The work then
//! runs in the same transaction, and its answer is stored under the keys **in the statement
//! that sends the work's last writes** (the body's `tail` [`Batch`]): the response costs no
//! round trip of its own, and it commits with the ledger rows or not at all.
//!
//! A business rejection rolls the whole unit back, claim included, and is then stored in a
//! unit of its own ([`settle`]): claim the keys with the rejection as their response, or, if
//! an identical request got there in between, replay what it stored. So nothing of rejected
//! work remains, the rejection is answered the same way to every retry, and the common path
//! pays for no savepoint. An infrastructure error rolls back everything, including the claim,
//! so the call can be retried.
//!
//! A rejection that names something that does not exist ([`Rejection::is_stored`]) is not
//! stored: the request did nothing, and asked again it gets the same answer.
//!
//! A unit whose first statement can carry the claim saves its round trip with
//! [`run_folded`] (the purchase: the claim goes with the wallet's lock, as a multi-statement
//! call on SQLite and a data-modifying CTE on PostgreSQL, where the insert waits for a
//! concurrent identical request exactly as on its own).
//!
//! PostgreSQL's optimistic purchase path ([`run_optimistic`]) has no transaction to claim in
//! first: it checks in its read that no key is taken, and inserts the keys with the stored
//! answer in the one statement that commits the work. A key taken in between (by an
//! identical request, or another one under the same key) fails that insert with a unique
//! violation, which rolls the whole statement back, and the purchase takes the locked path,
//! which replays or refuses as above.

use jiff::Timestamp;
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::collections::HashSet;

use sqlx::{AnyConnection, Row};

use crate::batch::placeholders;
use crate::batch::{Batch, Param};
use crate::tenants::TenantId;
use crate::{Backend, Rejection, Store, StoreError, time};

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

/// What claiming a request's keys found.
enum Claimed<'c, T> {
    /// The keys this request now holds (all of them).
    Fresh(Vec<&'c Claim>),
    /// An earlier identical request's stored answer.
    Replay(Idempotent<T>),
}

/// The statement that claims `claims` with `response` as their stored answer, its
/// placeholders numbered from `$first`, and their values. It returns the keys it claimed
/// (column `key`).
fn claim_sql(
    tenant: TenantId,
    claims: &[Claim],
    now: Timestamp,
    response: &str,
    first: usize,
) -> (String, Vec<Param>) {
    let (sql, params) = insert_keys_sql(tenant, claims, now, response);
    (
        crate::batch::renumber(
            &format!("{sql} ON CONFLICT (tenant_id, key) DO NOTHING RETURNING key"),
            first - 1,
        ),
        params,
    )
}

/// The insert of `claims` with `response` as their stored answer, with `$1..`, and its values:
/// a key already stored makes it fail with a unique violation.
fn insert_keys_sql(
    tenant: TenantId,
    claims: &[Claim],
    now: Timestamp,
    response: &str,
) -> (String, Vec<Param>) {
    let sql = format!(
        "INSERT INTO idempotency_keys (tenant_id, key, operation, request_hash, response, created_at) \
         VALUES {}",
        placeholders(claims.len(), 6)
    );
    let mut params = Vec::with_capacity(claims.len() * 6);
    for claim in claims {
        params.extend([
            tenant.0.into(),
            (&claim.key).into(),
            (&claim.operation).into(),
            (&claim.request_hash).into(),
            response.into(),
            time::to_db(now).into(),
        ]);
    }
    (sql, params)
}

/// Claims `claims` with `response` as their stored answer (`""` while the work runs), in one
/// statement; replays the answer stored under a key already taken by the same request.
async fn claim<'c, T>(
    tx: &mut AnyConnection,
    tenant: TenantId,
    claims: &'c [Claim],
    now: Timestamp,
    response: &str,
) -> Result<Claimed<'c, T>, StoreError>
where
    T: DeserializeOwned,
{
    let claimed = insert_claims(tx, tenant, claims, now, response).await?;
    resolve(tx, tenant, claims, &claimed).await
}

/// Runs the claim's statement ([`claim_sql`]) on its own; returns the keys it took.
async fn insert_claims(
    tx: &mut AnyConnection,
    tenant: TenantId,
    claims: &[Claim],
    now: Timestamp,
    response: &str,
) -> Result<HashSet<String>, StoreError> {
    let mut claimed = HashSet::with_capacity(claims.len());
    if !claims.is_empty() {
        let (sql, params) = claim_sql(tenant, claims, now, response, 1);
        for row in crate::batch::bind_all(sqlx::query(&sql), &params)
            .fetch_all(&mut *tx)
            .await?
        {
            claimed.insert(row.try_get::<String, _>("key")?);
        }
    }
    Ok(claimed)
}

/// What a claim that took the keys in `claimed` found: all of them, or the stored answer of
/// the identical request that holds the others.
async fn resolve<'c, T>(
    tx: &mut AnyConnection,
    tenant: TenantId,
    claims: &'c [Claim],
    claimed: &HashSet<String>,
) -> Result<Claimed<'c, T>, StoreError>
where
    T: DeserializeOwned,
{
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
    let Some(response) = replay else {
        return Ok(Claimed::Fresh(owned));
    };
    // Keys this request claimed before finding the replay get the same stored answer.
    if !owned.is_empty() {
        let mut batch = Batch::new();
        push_response(&mut batch, tenant, &owned, &response);
        batch.run(tx, crate::Backend::Sqlite).await?;
    }
    let stored: Stored<T> = serde_json::from_str(&response)?;
    let outcome = match stored {
        Stored::Ok { value } => Ok(value),
        Stored::Rejected { rejection } => Err(rejection),
    };
    Ok(Claimed::Replay(Idempotent {
        outcome,
        replayed: true,
    }))
}

/// Runs `body` idempotently under `claims` inside the caller's transaction (see the module
/// documentation). `body` may leave writes that need no answer in its `tail`: they are sent
/// after it returns, in one statement with the stored response. A business rejection comes
/// back as `Err(StoreError::Rejected)`: the caller rolls the unit back and stores it with
/// [`settle`] (the [`idempotent_unit!`](crate::idempotent_unit) macro does both).
pub(crate) async fn run<T, F>(
    tx: &mut AnyConnection,
    backend: Backend,
    tenant: TenantId,
    claims: &[Claim],
    now: Timestamp,
    body: F,
) -> Result<Idempotent<T>, StoreError>
where
    T: Serialize + DeserializeOwned,
    F: AsyncFnOnce(&mut AnyConnection, &mut Batch) -> Result<T, StoreError>,
{
    let owned = match claim(tx, tenant, claims, now, "").await? {
        Claimed::Replay(replay) => return Ok(replay),
        Claimed::Fresh(owned) => owned,
    };
    let mut tail = Batch::new();
    let value = body(tx, &mut tail).await?;
    if !owned.is_empty() {
        let response = serde_json::to_string(&Stored::Ok { value: &value })?;
        push_response(&mut tail, tenant, &owned, &response);
    }
    tail.run(tx, backend).await?;
    Ok(Idempotent {
        outcome: Ok(value),
        replayed: false,
    })
}

/// The claim of a unit run by [`run_folded`]: the unit's first statement carries it.
#[derive(Debug)]
pub(crate) struct FoldedClaim<'c> {
    tenant: TenantId,
    claims: &'c [Claim],
    now: Timestamp,
    /// The keys the claim took, once it ran.
    claimed: Option<HashSet<String>>,
}

impl<'c> FoldedClaim<'c> {
    fn new(tenant: TenantId, claims: &'c [Claim], now: Timestamp) -> Self {
        FoldedClaim {
            tenant,
            claims,
            now,
            claimed: None,
        }
    }

    /// The claim's statement with its placeholders numbered from `$first`, and its values;
    /// `None` when there is nothing to claim. The caller runs it at the start of its first
    /// statement and gives the keys it returned to [`FoldedClaim::record`].
    pub(crate) fn sql(&self, first: usize) -> Option<(String, Vec<Param>)> {
        (!self.claims.is_empty()).then(|| claim_sql(self.tenant, self.claims, self.now, "", first))
    }

    /// Records the keys the claim took. Some of them taken by an earlier request: the unit
    /// stops here ([`StoreError::ClaimTaken`]) and the runner answers with what is stored.
    pub(crate) fn record(&mut self, claimed: HashSet<String>) -> Result<(), StoreError> {
        let complete = claimed.len() == self.claims.len();
        self.claimed = Some(claimed);
        if complete {
            Ok(())
        } else {
            Err(StoreError::ClaimTaken)
        }
    }

    /// The keys to claim.
    pub(crate) fn claims(&self) -> &[Claim] {
        self.claims
    }

    /// The optimistic path ([`run_optimistic`]): the body found none of the keys taken, and
    /// the runner claims them all with the answer, in the statement that commits the work.
    pub(crate) fn defer(&mut self) {
        self.claimed = Some(self.claims.iter().map(|c| c.key.clone()).collect());
    }

    /// Claims now, in a statement of its own (for a unit whose path has no statement to carry
    /// it).
    pub(crate) async fn claim_now(&mut self, tx: &mut AnyConnection) -> Result<(), StoreError> {
        let claimed = insert_claims(tx, self.tenant, self.claims, self.now, "").await?;
        self.record(claimed)
    }
}

/// [`run`] for a unit whose first statement carries the claim ([`FoldedClaim`]), one round
/// trip fewer: the body must run [`FoldedClaim::sql`] at the start of its first statement
/// (or call [`FoldedClaim::claim_now`] before any), and stop with the error of
/// [`FoldedClaim::record`] when a key was taken. On PostgreSQL the claim keeps its waiting
/// semantics: the statement's insert waits for a concurrent identical request to commit.
pub(crate) async fn run_folded<T, F>(
    tx: &mut AnyConnection,
    backend: Backend,
    tenant: TenantId,
    claims: &[Claim],
    now: Timestamp,
    body: F,
) -> Result<Idempotent<T>, StoreError>
where
    T: Serialize + DeserializeOwned,
    F: AsyncFnOnce(&mut AnyConnection, &mut Batch, &mut FoldedClaim<'_>) -> Result<T, StoreError>,
{
    let mut folded = FoldedClaim::new(tenant, claims, now);
    let mut tail = Batch::new();
    let result = body(tx, &mut tail, &mut folded).await;
    let Some(claimed) = folded.claimed.take() else {
        // Refused or failed before its claim ran (a rejection is stored by `settle`), or a
        // body that never claimed: a bug, refused.
        result?;
        return Err(StoreError::Corrupt(
            "an idempotent unit of work ran without claiming its keys".into(),
        ));
    };
    let value = match result {
        Ok(value) => value,
        Err(StoreError::ClaimTaken) => {
            return match resolve::<T>(tx, tenant, claims, &claimed).await? {
                Claimed::Replay(replay) => Ok(replay),
                Claimed::Fresh(_) => Err(StoreError::Corrupt(
                    "a claim reported taken keys that are not stored".into(),
                )),
            };
        }
        Err(other) => return Err(other),
    };
    if !claims.is_empty() {
        let owned: Vec<&Claim> = claims.iter().collect();
        let response = serde_json::to_string(&Stored::Ok { value: &value })?;
        push_response(&mut tail, tenant, &owned, &response);
    }
    tail.run(tx, backend).await?;
    Ok(Idempotent {
        outcome: Ok(value),
        replayed: false,
    })
}

/// [`run_folded`] for PostgreSQL's optimistic purchase path, on a connection outside any
/// transaction. `body` only reads (one statement, without locks), finds none of the keys
/// taken, says so with [`FoldedClaim::defer`] and guards its tail on the wallet it read
/// ([`Batch::guard_wallet`]). The tail then goes out with the claim of every key, their stored
/// answer included, as one statement that commits on its own: all of it or nothing.
///
/// What the path leaves to the locked one comes back as [`StoreError::TakeLockedPath`] with
/// nothing written: the body's own refusals, a unique violation (a key or the document
/// claimed since the read: the locked path replays or refuses it) and a serialization failure
/// (the wallet's guard, or PostgreSQL's own).
pub(crate) async fn run_optimistic<T, F>(
    c: &mut AnyConnection,
    tenant: TenantId,
    claims: &[Claim],
    now: Timestamp,
    body: F,
) -> Result<Idempotent<T>, StoreError>
where
    T: Serialize,
    F: AsyncFnOnce(&mut AnyConnection, &mut Batch, &mut FoldedClaim<'_>) -> Result<T, StoreError>,
{
    let mut folded = FoldedClaim::new(tenant, claims, now);
    let mut tail = Batch::new();
    let value = body(c, &mut tail, &mut folded).await?;
    if folded.claimed.is_none() {
        return Err(StoreError::Corrupt(
            "an optimistic unit of work ran without deferring its claim".into(),
        ));
    }
    if !claims.is_empty() {
        let response = serde_json::to_string(&Stored::Ok { value: &value })?;
        let (sql, params) = insert_keys_sql(tenant, claims, now, &response);
        tail.push(&sql, params);
    }
    // A unique violation here is not the body's rejection: see above.
    tail.forget_unique_violation();
    match tail.run(c, crate::Backend::Postgres).await {
        Ok(()) => Ok(Idempotent {
            outcome: Ok(value),
            replayed: false,
        }),
        Err(error) if error.is_unique_violation() || error.is_retryable() => {
            Err(StoreError::TakeLockedPath)
        }
        Err(error) => Err(error),
    }
}

/// The end of an idempotent unit of work: a business rejection that rolled the unit back is
/// stored under the request's keys in a unit of its own (or, if an identical request stored
/// its answer in between, that answer is replayed). Other outcomes pass through.
pub(crate) async fn settle<T>(
    store: &Store,
    tenant: TenantId,
    claims: &[Claim],
    now: Timestamp,
    result: Result<Idempotent<T>, StoreError>,
) -> Result<Idempotent<T>, StoreError>
where
    T: DeserializeOwned,
{
    let rejection = match result {
        Err(StoreError::Rejected(rejection)) => rejection,
        other => return other,
    };
    if claims.is_empty() || !rejection.is_stored() {
        return Ok(Idempotent {
            outcome: Err(rejection),
            replayed: false,
        });
    }
    let response = serde_json::to_string(&Stored::<()>::Rejected {
        rejection: rejection.clone(),
    })?;
    crate::unit_of_work!(store, |tx| async {
        match claim::<T>(&mut tx, tenant, claims, now, &response).await? {
            Claimed::Replay(replay) => Ok(replay),
            Claimed::Fresh(_) => Ok(Idempotent {
                outcome: Err(rejection.clone()),
                replayed: false,
            }),
        }
    }
    .await)
}

/// Stores `response` under every key this request owns, as a statement of `batch`.
fn push_response(batch: &mut Batch, tenant: TenantId, keys: &[&Claim], response: &str) {
    if keys.is_empty() {
        return;
    }
    let list = (0..keys.len())
        .map(|i| format!("${}", i + 3))
        .collect::<Vec<_>>()
        .join(", ");
    let mut params: Vec<Param> = vec![tenant.0.into(), response.into()];
    params.extend(keys.iter().map(|claim| Param::from(&claim.key)));
    batch.push(
        &format!(
            "UPDATE idempotency_keys SET response = $2 WHERE tenant_id = $1 AND key IN ({list})"
        ),
        params,
    );
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
