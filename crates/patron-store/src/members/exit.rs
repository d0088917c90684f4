//! A member leaving the club.

use jiff::Timestamp;
use sqlx::Row;

use super::*;
use crate::batch::Batch;
use crate::idempotency::{Claim, Idempotent};
use crate::ledger::{self, LedgerCtx, NewTransfer, code};
use crate::programs::audit;
use crate::tenants::TenantId;
use crate::{Conn, Rejection, Store, StoreError, conn, idempotent_unit, time};

impl Store {
    /// The member leaves the club: pending points are voided, holds released, points forfeited
    /// or kept as the program says, personal data erased, cards blocked, the erasure audited.
    pub async fn exit_member(
        &self,
        tenant: TenantId,
        member_id: &str,
        forfeit: bool,
        actor: &str,
        claims: &[Claim],
        now: Timestamp,
    ) -> Result<Idempotent<ExitReceipt>, StoreError> {
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
                exit_in(c, ctx, member_id, forfeit, actor).await
            }
        )
    }
}

/// The exit in the caller's unit of work.
async fn exit_in(
    c: &mut Conn,
    ctx: LedgerCtx,
    member_id: &str,
    forfeit: bool,
    actor: &str,
) -> Result<ExitReceipt, StoreError> {
    let (tenant, now) = (ctx.tenant, ctx.now);
    // The wallet lock before the status, so two racing exits cannot both see an
    // active member (every unit of work on the member takes this lock first).
    let mut wallet = ledger::lock_wallets(c, ctx, &[member_id]).await?.remove(0);
    let member = member_in_tx(c, tenant, member_id).await?;
    if !member.is_active() {
        return Err(Rejection::MemberExited {
            member_id: member_id.to_string(),
        }
        .into());
    }
    ledger::expire_due(c, ctx, &mut wallet).await?;
    let (pending_voided, holds_released) = resolve_open_pending(c, ctx, &mut wallet).await?;
    // Released holds give points back to their lots, which may have expired while
    // held: expire those now, or the forfeit below would try to take points that
    // no unexpired lot holds (and keep_until_expiry would leave them past due).
    ledger::expire_due(c, ctx, &mut wallet).await?;
    let points_forfeited = if forfeit {
        forfeit_spendable(c, ctx, &mut wallet, member_id).await?
    } else {
        0
    };
    close_membership(c, ctx, member_id, &member).await?;
    // Their benefits end with their membership: a coupon in their name could
    // otherwise still be used at a till after the points were settled.
    let coupons_voided = crate::coupons::void_member_coupons(c, ctx, member_id).await?;
    let receipt = ExitReceipt {
        member_id: member_id.to_string(),
        exited_at: now,
        points_forfeited,
        pending_voided,
        holds_released,
        points_kept: wallet.spendable().max(0),
        coupons_voided,
    };
    let details = format!(
        "personal data erased; forfeited {points_forfeited}, kept {}, pending voided {pending_voided}, holds released {holds_released}, coupons voided {coupons_voided}",
        receipt.points_kept
    );
    audit(
        c,
        tenant,
        now,
        actor,
        "member.exit",
        &format!("member:{member_id}"),
        &details,
    )
    .await?;
    Ok(receipt)
}

/// Moves the wallet's spendable points (if any) to the forfeit account; returns how many.
async fn forfeit_spendable(
    c: &mut Conn,
    ctx: LedgerCtx,
    wallet: &mut ledger::Wallet,
    member_id: &str,
) -> Result<i64, StoreError> {
    let spendable = wallet.spendable();
    if spendable <= 0 {
        return Ok(0);
    }
    let to = ledger::system_account(c, ctx.tenant, "forfeit").await?;
    let transfer = NewTransfer::posted(format!("exit:{member_id}"), 0, 0, spendable, code::FORFEIT)
        .member(member_id)
        .document("member_exit", member_id);
    ledger::debit(c, ctx, wallet, to, transfer, false).await?;
    Ok(spendable)
}

/// Erases the member's personal data (and its copies), marks them exited and blocks their
/// active cards.
async fn close_membership(
    c: &mut Conn,
    ctx: LedgerCtx,
    member_id: &str,
    member: &Member,
) -> Result<(), StoreError> {
    crate::erasure::erase_copies(c, ctx.tenant, member).await?;
    sqlx::query(
        "UPDATE members SET status = 'exited', external_id = NULL, name = NULL, phone = NULL, email = NULL, \
         birthday = NULL, time_zone = NULL, attributes = '{}', exited_at = $3, updated_at = $3 \
         WHERE tenant_id = $1 AND id = $2",
    )
    .bind(ctx.tenant.0)
    .bind(member_id)
    .bind(time::to_db(ctx.now))
    .execute(conn(c))
    .await?;
    sqlx::query(
        "UPDATE cards SET status = 'blocked', blocked_at = $3 WHERE tenant_id = $1 AND member_id = $2 AND status = 'active'",
    )
    .bind(ctx.tenant.0)
    .bind(member_id)
    .bind(time::to_db(ctx.now))
    .execute(conn(c))
    .await?;
    Ok(())
}

/// Voids every unresolved pending credit into the wallet and releases every hold on it.
/// Returns (points of pending credits voided, points of holds released).
async fn resolve_open_pending(
    tx: &mut Conn,
    ctx: LedgerCtx,
    wallet: &mut ledger::Wallet,
) -> Result<(i64, i64), StoreError> {
    let rows = sqlx::query(
        "SELECT t.id, t.credit_account FROM transfers t WHERE t.tenant_id = $1 AND t.kind = 'pending' \
         AND (t.credit_account = $2 OR t.debit_account = $2) \
         AND NOT EXISTS (SELECT 1 FROM transfers r WHERE r.tenant_id = t.tenant_id AND r.pending_id = t.id) ORDER BY t.id",
    )
    .bind(ctx.tenant.0)
    .bind(wallet.account_id)
    .fetch_all(conn(tx))
    .await?;
    let (mut voided, mut released) = (0, 0);
    for row in rows {
        let id: i64 = row.try_get("id")?;
        let credit_account: i64 = row.try_get("credit_account")?;
        let pending = ledger::pending_transfer(tx, ctx, id).await?;
        if credit_account == wallet.account_id {
            ledger::resolve_pending_credit(tx, ctx, wallet, &pending, 0, None).await?;
            voided += pending.amount;
            sqlx::query("UPDATE purchases SET earn_state = 'voided' WHERE tenant_id = $1 AND earn_transfer_id = $2")
                .bind(ctx.tenant.0)
                .bind(id)
                .execute(conn(tx))
                .await?;
        } else {
            ledger::resolve_pending_debit(tx, ctx, wallet, &pending, 0).await?;
            released += pending.amount;
            sqlx::query(
                "UPDATE redemptions SET status = 'released', resolved_at = $3 WHERE tenant_id = $1 AND transfer_id = $2",
            )
            .bind(ctx.tenant.0)
            .bind(id)
            .bind(time::to_db(ctx.now))
            .execute(conn(tx))
            .await?;
        }
    }
    Ok((voided, released))
}
