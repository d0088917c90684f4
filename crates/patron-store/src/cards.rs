//! Membership cards: virtual cards issued at enrollment, physical cards pre-printed in
//! batches and bound at enrollment, and replacement of a lost card (the balance lives on the
//! member's wallet, so it follows; the old number is blocked).

use jiff::Timestamp;
use patron_domain::card;
use serde::{Deserialize, Serialize};
use sqlx::Row;

use crate::batch::Batch;
use crate::idempotency::{Claim, Idempotent};
use crate::programs::audit;
use crate::tenants::TenantId;
use crate::{Conn, Rejection, Store, StoreError, conn, idempotent_unit, time, unit_of_work};

/// Total length of a card number, check digit included.
pub const CARD_NUMBER_LENGTH: usize = patron_domain::card::CARD_NUMBER_LENGTH_DEFAULT;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CardKind {
    Virtual,
    Physical,
}

impl CardKind {
    fn as_str(self) -> &'static str {
        match self {
            CardKind::Virtual => "virtual",
            CardKind::Physical => "physical",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Card {
    pub number: String,
    pub kind: String,
    pub status: String,
    pub member_id: Option<String>,
    pub batch_id: Option<i64>,
    pub issued_at: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CardReplacement {
    pub member_id: String,
    pub old_number: String,
    pub new_number: String,
}

/// Takes the next value of a per-tenant counter.
pub(crate) async fn next_counter(
    tx: &mut Conn,
    tenant: TenantId,
    name: &str,
) -> Result<i64, StoreError> {
    let row = sqlx::query(
        "INSERT INTO counters (tenant_id, name, value) VALUES ($1, $2, 1) \
         ON CONFLICT (tenant_id, name) DO UPDATE SET value = counters.value + 1 RETURNING value",
    )
    .bind(tenant.0)
    .bind(name)
    .fetch_one(conn(tx))
    .await?;
    Ok(row.try_get("value")?)
}

/// Issues a new card number (prefix + serial + Luhn check digit) and stores the card, bound
/// to `member_id` when given.
pub(crate) async fn issue_card(
    tx: &mut Conn,
    tenant: TenantId,
    prefix: &str,
    kind: CardKind,
    member_id: Option<&str>,
    batch_id: Option<i64>,
    now: Timestamp,
) -> Result<String, StoreError> {
    let serial = next_counter(tx, tenant, "card_serial").await?;
    let serial =
        u64::try_from(serial).map_err(|_| StoreError::Corrupt("negative card serial".into()))?;
    let number = card::card_number(prefix, serial, CARD_NUMBER_LENGTH).ok_or_else(|| {
        StoreError::Config(format!(
            "card prefix {prefix:?} leaves no room for serial {serial}"
        ))
    })?;
    let status = if member_id.is_some() {
        "active"
    } else {
        "available"
    };
    sqlx::query(
        "INSERT INTO cards (tenant_id, number, kind, status, member_id, batch_id, issued_at, bound_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(tenant.0)
    .bind(&number)
    .bind(kind.as_str())
    .bind(status)
    .bind(member_id)
    .bind(batch_id)
    .bind(time::to_db(now))
    .bind(member_id.map(|_| time::to_db(now)))
    .execute(conn(tx))
    .await?;
    Ok(number)
}

/// Binds a pre-printed card to a member; it must exist and be available.
pub(crate) async fn bind_card(
    tx: &mut Conn,
    tenant: TenantId,
    number: &str,
    member_id: &str,
    now: Timestamp,
) -> Result<(), StoreError> {
    let row = sqlx::query("SELECT status FROM cards WHERE tenant_id = $1 AND number = $2")
        .bind(tenant.0)
        .bind(number)
        .fetch_optional(conn(tx))
        .await?;
    let Some(row) = row else {
        return Err(Rejection::CardNotFound {
            number: number.to_string(),
        }
        .into());
    };
    let status: String = row.try_get("status")?;
    if status != "available" {
        return Err(Rejection::CardUnavailable {
            number: number.to_string(),
            status,
        }
        .into());
    }
    sqlx::query(
        "UPDATE cards SET status = 'active', member_id = $3, bound_at = $4 WHERE tenant_id = $1 AND number = $2",
    )
    .bind(tenant.0)
    .bind(number)
    .bind(member_id)
    .bind(time::to_db(now))
    .execute(conn(tx))
    .await?;
    Ok(())
}

impl Store {
    /// Creates a batch of `count` pre-printed card numbers, available for binding.
    pub async fn issue_card_batch(
        &self,
        tenant: TenantId,
        prefix: &str,
        count: u32,
        actor: &str,
        now: Timestamp,
    ) -> Result<(i64, Vec<String>), StoreError> {
        unit_of_work!(self, |tx| {
            async {
            let row = sqlx::query(
                "INSERT INTO card_batches (tenant_id, count, created_at, created_by) VALUES ($1, $2, $3, $4) RETURNING id",
            )
            .bind(tenant.0)
            .bind(i64::from(count))
            .bind(time::to_db(now))
            .bind(actor)
            .fetch_one(conn(&mut tx))
            .await?;
            let batch_id: i64 = row.try_get("id")?;
            let mut numbers = Vec::with_capacity(count as usize);
            for _ in 0..count {
                numbers.push(issue_card(&mut tx, tenant, prefix, CardKind::Physical, None, Some(batch_id), now).await?);
            }
            audit(&mut tx, tenant, now, actor, "cards.issue_batch", &format!("card_batch:{batch_id}"), &format!("{count} cards"))
                .await?;
            Ok((batch_id, numbers))
        }
        .await
        })
    }

    pub async fn card(&self, tenant: TenantId, number: &str) -> Result<Option<Card>, StoreError> {
        let row = sqlx::query(
            "SELECT number, kind, status, member_id, batch_id, issued_at FROM cards WHERE tenant_id = $1 AND number = $2",
        )
        .bind(tenant.0)
        .bind(number)
        .fetch_optional(self.pool())
        .await?;
        row.map(|row| {
            Ok(Card {
                number: row.try_get("number")?,
                kind: row.try_get("kind")?,
                status: row.try_get("status")?,
                member_id: row.try_get("member_id")?,
                batch_id: row.try_get("batch_id")?,
                issued_at: time::from_db(row.try_get("issued_at")?)?,
            })
        })
        .transpose()
    }

    /// Replaces a lost or damaged card: the old number is blocked, a new one (a given
    /// pre-printed card, or a new virtual one) is bound to the same member.
    #[allow(clippy::too_many_arguments)]
    pub async fn replace_card(
        &self,
        tenant: TenantId,
        number: &str,
        replacement: Option<&str>,
        prefix: &str,
        actor: &str,
        claims: &[Claim],
        now: Timestamp,
    ) -> Result<Idempotent<CardReplacement>, StoreError> {
        idempotent_unit!(
            self,
            tenant,
            claims,
            now,
            async |c: &mut Conn, _tail: &mut Batch| {
                let row = sqlx::query(
                    "SELECT status, member_id FROM cards WHERE tenant_id = $1 AND number = $2",
                )
                .bind(tenant.0)
                .bind(number)
                .fetch_optional(conn(c))
                .await?;
                let Some(row) = row else {
                    return Err(Rejection::CardNotFound {
                        number: number.to_string(),
                    }
                    .into());
                };
                let status: String = row.try_get("status")?;
                let member_id: Option<String> = row.try_get("member_id")?;
                let member_id = match (status.as_str(), member_id) {
                    ("active", Some(member_id)) => member_id,
                    _ => {
                        return Err(Rejection::CardUnavailable {
                            number: number.to_string(),
                            status,
                        }
                        .into());
                    }
                };
                let new_number = match replacement {
                    Some(new_number) => {
                        bind_card(c, tenant, new_number, &member_id, now).await?;
                        new_number.to_string()
                    }
                    None => {
                        issue_card(
                            c,
                            tenant,
                            prefix,
                            CardKind::Virtual,
                            Some(&member_id),
                            None,
                            now,
                        )
                        .await?
                    }
                };
                sqlx::query(
                    "UPDATE cards SET status = 'blocked', blocked_at = $3, replaced_by = $4 WHERE tenant_id = $1 AND number = $2",
                )
                .bind(tenant.0)
                .bind(number)
                .bind(time::to_db(now))
                .bind(&new_number)
                .execute(conn(c))
                .await?;
                audit(
                    c,
                    tenant,
                    now,
                    actor,
                    "card.replace",
                    &format!("member:{member_id}"),
                    &format!("{number} -> {new_number}"),
                )
                .await?;
                Ok(CardReplacement {
                    member_id,
                    old_number: number.to_string(),
                    new_number,
                })
            }
        )
    }
}
