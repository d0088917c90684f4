//! Cancelling a reward redemption while its coupon is unused: the coupon is voided, the
//! points come back (a reversing transfer; the lots they came from are restored with their
//! original expiry, as a reversed points redemption restores them), the unit of stock is
//! returned and the redemption stops counting against the reward's per-member limit.
//!
//! One unit of work, in the lock order of the redemption itself: the member's wallet, then the
//! redemption row, the stock row and the coupon row.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use sqlx::Row;

use crate::batch::Batch;
use crate::idempotency::{Claim, Idempotent};
use crate::ledger::{self, LedgerCtx, NewTransfer, code};
use crate::members::lock_wallet_with_member;
use crate::tenants::TenantId;
use crate::wallet::{Balance, balance_in};
use crate::{Conn, Rejection, Store, StoreError, conn, idempotent_unit, time};

/// What cancelling a reward redemption did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RewardCancellation {
    pub redemption_id: String,
    pub member_id: String,
    pub reward_id: String,
    /// The coupon, now voided (display form).
    pub coupon_code: String,
    /// Points given back (the reward's price as paid).
    pub points: i64,
    pub cancelled_at: Timestamp,
    pub balance: Balance,
}

/// The redemption row as locked for cancelling it.
struct LockedRedemption {
    reward_id: String,
    points: i64,
    transfer_id: Option<i64>,
    coupon_code: String,
}

async fn cancel_in(
    c: &mut Conn,
    ctx: LedgerCtx,
    redemption_id: &str,
) -> Result<RewardCancellation, StoreError> {
    // The member first (unlocked), to take their wallet lock before the redemption row.
    let owner =
        sqlx::query("SELECT member_id FROM reward_redemptions WHERE tenant_id = $1 AND id = $2")
            .bind(ctx.tenant.0)
            .bind(redemption_id)
            .fetch_optional(conn(c))
            .await?
            .ok_or_else(|| Rejection::RedemptionNotFound {
                redemption_id: redemption_id.to_string(),
            })?;
    let member_id: String = owner.try_get("member_id")?;
    let (mut wallet, member) = lock_wallet_with_member(c, ctx, &member_id).await?;
    // A member who left gets no points back (the exit forfeited or keeps what they had).
    if !member.is_active() {
        return Err(Rejection::MemberExited { member_id }.into());
    }
    let redemption = lock_open_redemption(c, ctx, redemption_id).await?;
    let (display, promotion_id) = lock_unused_coupon(c, ctx, &redemption.coupon_code).await?;
    ledger::expire_due(c, ctx, &mut wallet).await?;
    if let (Some(debit_id), true) = (redemption.transfer_id, redemption.points > 0) {
        give_points_back(
            c,
            ctx,
            &mut wallet,
            &member_id,
            redemption_id,
            debit_id,
            redemption.points,
        )
        .await?;
    }
    let LockedRedemption {
        reward_id,
        points,
        coupon_code,
        ..
    } = redemption;
    // The stock (partner vouchers count their pool instead: the code was shown to the member,
    // so it is not handed out again).
    sqlx::query(
        "UPDATE reward_stock SET issued = issued - 1 WHERE tenant_id = $1 AND reward_id = $2 AND issued > 0",
    )
    .bind(ctx.tenant.0)
    .bind(&reward_id)
    .execute(conn(c))
    .await?;
    // The coupon: voided, and past its expiry from now on, so every check refuses it.
    crate::coupons::void_coupon(
        c,
        ctx,
        &coupon_code,
        promotion_id.as_deref(),
        Some(&reward_id),
        Some(&member_id),
    )
    .await?;
    sqlx::query("UPDATE reward_redemptions SET cancelled_at = $3 WHERE tenant_id = $1 AND id = $2")
        .bind(ctx.tenant.0)
        .bind(redemption_id)
        .bind(time::to_db(ctx.now))
        .execute(conn(c))
        .await?;
    ledger::expire_due(c, ctx, &mut wallet).await?;
    Ok(RewardCancellation {
        redemption_id: redemption_id.to_string(),
        member_id,
        reward_id,
        coupon_code: display,
        points,
        cancelled_at: ctx.now,
        balance: balance_in(c, ctx, &wallet).await?,
    })
}

/// Locks the redemption row; refused with `RedemptionResolved` when it was cancelled already.
async fn lock_open_redemption(
    c: &mut Conn,
    ctx: LedgerCtx,
    redemption_id: &str,
) -> Result<LockedRedemption, StoreError> {
    let sql = format!(
        "SELECT reward_id, points, transfer_id, coupon_code, cancelled_at FROM reward_redemptions \
         WHERE tenant_id = $1 AND id = $2{}",
        ctx.backend.for_update()
    );
    let row = sqlx::query(&sql)
        .bind(ctx.tenant.0)
        .bind(redemption_id)
        .fetch_one(conn(c))
        .await?;
    let redemption = LockedRedemption {
        reward_id: row.try_get("reward_id")?,
        points: row.try_get("points")?,
        transfer_id: row.try_get("transfer_id")?,
        coupon_code: row.try_get("coupon_code")?,
    };
    if row.try_get::<Option<i64>, _>("cancelled_at")?.is_some() {
        return Err(Rejection::RedemptionResolved {
            redemption_id: redemption_id.to_string(),
            status: "cancelled".into(),
        }
        .into());
    }
    Ok(redemption)
}

/// Locks the redemption's coupon: its display form and promotion. Refused with
/// `CouponRefused { reason: "used" }` once it was used (even once, and not released by an
/// order cancelled): the member had the benefit.
async fn lock_unused_coupon(
    c: &mut Conn,
    ctx: LedgerCtx,
    coupon_code: &str,
) -> Result<(String, Option<String>), StoreError> {
    let sql = format!(
        "SELECT display, uses, state, promotion_id FROM coupons WHERE tenant_id = $1 AND code = $2{}",
        ctx.backend.for_update()
    );
    let coupon = sqlx::query(&sql)
        .bind(ctx.tenant.0)
        .bind(coupon_code)
        .fetch_one(conn(c))
        .await?;
    let display: String = coupon.try_get("display")?;
    if coupon.try_get::<i64, _>("uses")? > 0 {
        return Err(Rejection::CouponRefused {
            coupon: display,
            reason: "used".into(),
        }
        .into());
    }
    Ok((display, coupon.try_get("promotion_id")?))
}

/// The points: a reversing transfer from the redemption account, restoring the lots the
/// debit `debit_id` took (a debt left by an `unlimited` clawback is paid from them first).
async fn give_points_back(
    c: &mut Conn,
    ctx: LedgerCtx,
    wallet: &mut ledger::Wallet,
    member_id: &str,
    redemption_id: &str,
    debit_id: i64,
    points: i64,
) -> Result<(), StoreError> {
    let from = ledger::system_account(c, ctx.tenant, "redemption").await?;
    let transfer = NewTransfer::posted(
        format!("reward_cancel:{redemption_id}"),
        from,
        wallet.account_id,
        points,
        code::REVERSAL,
    )
    .member(member_id)
    .document("reward_redemption", redemption_id);
    let debt_before = wallet.debt();
    let id = ledger::insert_transfer(c, ctx, &transfer).await?;
    let restored = ledger::restore_lots(c, ctx, wallet, debit_id, id, points, debt_before).await?;
    ledger::apply_totals(
        c,
        wallet,
        ledger::TotalsDelta {
            credits_posted: points,
            ..Default::default()
        },
    )
    .await?;
    if restored != points {
        return Err(StoreError::Corrupt(format!(
            "cancelling {redemption_id} restored {restored} of {points} points (debt {debt_before})"
        )));
    }
    Ok(())
}

impl Store {
    /// Cancels a reward redemption whose coupon was not used (idempotent under `claims`):
    /// refused with `CouponRefused { reason: "used" }` once the coupon was redeemed, with
    /// `RedemptionResolved` when it was cancelled already, and with `MemberExited` once the
    /// member has left the club.
    pub async fn cancel_reward_redemption(
        &self,
        tenant: TenantId,
        redemption_id: &str,
        claims: &[Claim],
        now: Timestamp,
    ) -> Result<Idempotent<RewardCancellation>, StoreError> {
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
            async |c: &mut Conn, _tail: &mut Batch| { cancel_in(c, ctx, redemption_id).await }
        )
    }
}
