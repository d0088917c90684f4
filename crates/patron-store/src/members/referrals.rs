//! Referrals: the referral codes members share, and who referred whom.

use jiff::Timestamp;
use sqlx::Row;

use super::*;
use crate::batch::Batch;
use crate::idempotency::{Claim, Idempotent};
use crate::ledger::LedgerCtx;
use crate::tenants::TenantId;
use crate::{Conn, Rejection, Store, StoreError, conn, idempotent_unit, time};

/// The member a newcomer's referral code names: an active member (a member who left has no
/// working code) who is not the newcomer themselves (same phone or email).
pub(super) async fn referrer_for(
    tx: &mut Conn,
    tenant: TenantId,
    code: &str,
    newcomer: &Profile,
) -> Result<String, StoreError> {
    let row = sqlx::query(
        "SELECT id, phone, email FROM members WHERE tenant_id = $1 AND referral_code = $2 AND status = 'active'",
    )
    .bind(tenant.0)
    .bind(code)
    .fetch_optional(conn(tx))
    .await?;
    let Some(row) = row else {
        return Err(Rejection::UnknownReferralCode {
            referral_code: code.to_string(),
        }
        .into());
    };
    let phone: Option<String> = row.try_get("phone")?;
    let email: Option<String> = row.try_get("email")?;
    // Emails compare without case: `Ada@` and `ada@` may be two addresses to a mail server,
    // but they are one person to a referral.
    let lower = |text: Option<&String>| text.map(|t| t.to_lowercase());
    for (field, theirs, mine) in [
        ("phone", phone, newcomer.phone.clone()),
        (
            "email",
            lower(email.as_ref()),
            lower(newcomer.email.as_ref()),
        ),
    ] {
        if theirs.is_some() && theirs == mine {
            return Err(Rejection::SelfReferral {
                field: field.to_string(),
            }
            .into());
        }
    }
    Ok(row.try_get("id")?)
}

/// Gives every member of `tenant` (every tenant: `None`) who has no referral code one: the
/// members enrolled before migration 0009 (enrollment and the batch import draw codes as
/// they insert). One statement finds them (a partial index holds exactly them), then one
/// update per member.
pub(crate) async fn fill_referral_codes(
    store: &Store,
    tenant: Option<TenantId>,
) -> Result<u64, StoreError> {
    let mut filled = 0u64;
    loop {
        let rows = match tenant {
            Some(tenant) => {
                sqlx::query(
                    "SELECT tenant_id, id FROM members WHERE tenant_id = $1 AND referral_code IS NULL LIMIT 500",
                )
                .bind(tenant.0)
                .fetch_all(store.pool())
                .await?
            }
            None => {
                sqlx::query("SELECT tenant_id, id FROM members WHERE referral_code IS NULL LIMIT 500")
                    .fetch_all(store.pool())
                    .await?
            }
        };
        if rows.is_empty() {
            return Ok(filled);
        }
        let mut missing = Vec::with_capacity(rows.len());
        for row in &rows {
            missing.push((
                row.try_get::<i64, _>("tenant_id")?,
                row.try_get::<String, _>("id")?,
            ));
        }
        let mut tx = store.begin_write().await?;
        for (tenant_id, member_id) in &missing {
            let code = unused_referral_code(&mut tx, TenantId(*tenant_id)).await?;
            sqlx::query(
                "UPDATE members SET referral_code = $3 WHERE tenant_id = $1 AND id = $2 AND referral_code IS NULL",
            )
            .bind(tenant_id)
            .bind(member_id)
            .bind(&code)
            .execute(conn(&mut tx))
            .await?;
        }
        tx.commit().await?;
        filled += missing.len() as u64;
    }
}

/// The longest referral chain walked when checking a later link for a loop (a chain is one
/// member per level, so this is far beyond any real one; past it the link is refused).
const REFERRAL_CHAIN_MAX: usize = 10_000;

/// Links a member to the referrer whose code they present, after enrollment ("referred
/// later"): see [`Store::set_referrer`].
async fn set_referrer_in(
    c: &mut Conn,
    ctx: LedgerCtx,
    member_id: &str,
    referral_code: &str,
) -> Result<Member, StoreError> {
    // Later links are the only way a loop could form (a newcomer has no one below them), so
    // they take turns in the club: two links made at once (A under B, B under A) cannot
    // both see no loop. The row is the club's counter of later links.
    sqlx::query(
        "INSERT INTO counters (tenant_id, name, value) VALUES ($1, 'referral_links', 1) \
         ON CONFLICT (tenant_id, name) DO UPDATE SET value = counters.value + 1",
    )
    .bind(ctx.tenant.0)
    .execute(conn(c))
    .await?;
    // The newcomer's wallet lock: their purchases (which read the link) wait for it.
    let (_wallet, member) = lock_wallet_with_member(c, ctx, member_id).await?;
    if !member.is_active() {
        return Err(Rejection::MemberExited {
            member_id: member_id.to_string(),
        }
        .into());
    }
    if member.referral.referred_by.is_some() {
        return Err(Rejection::ReferralNotAllowed {
            member_id: member_id.to_string(),
            reason: "the member already has a referrer".into(),
        }
        .into());
    }
    let purchased =
        sqlx::query("SELECT id FROM purchases WHERE tenant_id = $1 AND member_id = $2 LIMIT 1")
            .bind(ctx.tenant.0)
            .bind(member_id)
            .fetch_optional(conn(c))
            .await?;
    if purchased.is_some() {
        return Err(Rejection::ReferralNotAllowed {
            member_id: member_id.to_string(),
            reason: "a referrer can be added only before the member's first purchase".into(),
        }
        .into());
    }
    if member.referral.code.as_deref() == Some(referral_code) {
        return Err(Rejection::SelfReferral {
            field: "referral_code".into(),
        }
        .into());
    }
    let referrer_id = referrer_for(c, ctx.tenant, referral_code, &member.profile).await?;
    if referrer_id == member.id {
        return Err(Rejection::SelfReferral {
            field: "referral_code".into(),
        }
        .into());
    }
    // No loop: the member must not be above the referrer in the referral tree.
    let mut above = Some(referrer_id.clone());
    let mut levels = 0;
    while let Some(id) = above {
        if id == member.id || levels > REFERRAL_CHAIN_MAX {
            return Err(Rejection::ReferralLoop {
                member_id: member.id.clone(),
                referrer_id,
            }
            .into());
        }
        levels += 1;
        above = sqlx::query("SELECT referred_by FROM members WHERE tenant_id = $1 AND id = $2")
            .bind(ctx.tenant.0)
            .bind(&id)
            .fetch_optional(conn(c))
            .await?
            .map(|row| row.try_get::<Option<String>, _>("referred_by"))
            .transpose()?
            .flatten();
    }
    sqlx::query(
        "UPDATE members SET referred_by = $3, referred_at = $4, updated_at = $4 WHERE tenant_id = $1 AND id = $2",
    )
    .bind(ctx.tenant.0)
    .bind(member_id)
    .bind(&referrer_id)
    .bind(time::to_db(ctx.now))
    .execute(conn(c))
    .await?;
    member_in_tx(c, ctx.tenant, member_id).await
}

impl Store {
    /// Gives every member of the club who has no referral code one (migrations call it for
    /// every club). Returns how many.
    pub async fn fill_referral_codes(&self, tenant: TenantId) -> Result<u64, StoreError> {
        fill_referral_codes(self, Some(tenant)).await
    }

    /// Records who referred a member after their enrollment (idempotent under `claims`):
    /// refused when they already have a referrer or a purchase, when the code is unknown or
    /// the referrer's own (same member, phone or email), and when the referrer is below them
    /// in the referral tree (a loop).
    pub async fn set_referrer(
        &self,
        tenant: TenantId,
        member_id: &str,
        referral_code: &str,
        claims: &[Claim],
        now: Timestamp,
    ) -> Result<Idempotent<Member>, StoreError> {
        let ctx = LedgerCtx {
            tenant,
            backend: self.backend(),
            now,
        };
        idempotent_unit!(
            self,
            tenant,
            claims,
            now,
            async |c: &mut Conn, _tail: &mut Batch| {
                set_referrer_in(c, ctx, member_id, referral_code).await
            }
        )
    }
}
