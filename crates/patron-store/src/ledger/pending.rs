//! Two-phase transfers: a pending transfer resolves once, posted (in part or whole) or voided.

use jiff::Timestamp;
use sqlx::Row;

use crate::{Conn, StoreError, conn};

use super::records::*;
use super::transfers::*;

pub(crate) async fn pending_transfer(
    tx: &mut Conn,
    ctx: LedgerCtx,
    id: i64,
) -> Result<PendingTransfer, StoreError> {
    let row = sqlx::query(
        "SELECT t.id, t.transfer_key, t.debit_account, t.credit_account, t.amount, t.code, t.kind, r.kind AS resolved \
         FROM transfers t LEFT JOIN transfers r ON r.tenant_id = t.tenant_id AND r.pending_id = t.id \
         WHERE t.tenant_id = $1 AND t.id = $2",
    )
    .bind(ctx.tenant.0)
    .bind(id)
    .fetch_optional(conn(tx))
    .await?
    .ok_or_else(|| StoreError::Corrupt(format!("pending transfer {id} not found")))?;
    let kind: String = row.try_get("kind")?;
    if kind != kind::PENDING {
        return Err(StoreError::Corrupt(format!(
            "transfer {id} is {kind}, not pending"
        )));
    }
    Ok(PendingTransfer {
        id: row.try_get("id")?,
        key: row.try_get("transfer_key")?,
        debit: row.try_get("debit_account")?,
        credit: row.try_get("credit_account")?,
        amount: row.try_get("amount")?,
        code: row.try_get("code")?,
        resolved: row.try_get("resolved")?,
    })
}

/// Appends the row that resolves a pending transfer: a post of `amount` (already clamped to
/// what was held), or a void of the whole hold when `amount` is 0. The unique index on
/// `pending_id` makes a second resolution fail.
pub(super) async fn insert_resolution(
    tx: &mut Conn,
    ctx: LedgerCtx,
    wallet: &Wallet,
    pending: &PendingTransfer,
    amount: i64,
) -> Result<(i64, Resolution), StoreError> {
    let (kind, resolution, suffix, row_amount) = if amount > 0 {
        (kind::POST_PENDING, Resolution::Posted, "post", amount)
    } else {
        (
            kind::VOID_PENDING,
            Resolution::Voided,
            "void",
            pending.amount,
        )
    };
    let transfer = NewTransfer {
        kind,
        pending_id: Some(pending.id),
        ..NewTransfer::posted(
            format!("{}:{suffix}", pending.key),
            pending.debit,
            pending.credit,
            row_amount,
            &pending.code,
        )
        .member(&wallet.member_id)
    };
    let id = insert_transfer(tx, ctx, &transfer).await?;
    Ok((id, resolution))
}

/// Posts `amount` (≤ held) of a pending credit into `wallet`, creating its lot, or voids it
/// when `amount` is 0.
pub(crate) async fn resolve_pending_credit(
    tx: &mut Conn,
    ctx: LedgerCtx,
    wallet: &mut Wallet,
    pending: &PendingTransfer,
    amount: i64,
    expires_at: Option<Timestamp>,
) -> Result<Resolution, StoreError> {
    if pending.resolved.is_some() {
        return Ok(Resolution::AlreadyResolved);
    }
    let amount = amount.clamp(0, pending.amount);
    let debt_before = wallet.debt();
    let (id, resolution) = insert_resolution(tx, ctx, wallet, pending, amount).await?;
    apply_totals(
        tx,
        wallet,
        TotalsDelta {
            credits_pending: -pending.amount,
            credits_posted: amount,
            ..Default::default()
        },
    )
    .await?;
    create_lot(tx, ctx, wallet, id, amount, expires_at, debt_before).await?;
    Ok(resolution)
}

/// Captures `amount` (≤ held) of a pending debit (a redemption hold), restoring the lots of
/// the part not captured; `amount` 0 releases the hold entirely.
pub(crate) async fn resolve_pending_debit(
    tx: &mut Conn,
    ctx: LedgerCtx,
    wallet: &mut Wallet,
    pending: &PendingTransfer,
    amount: i64,
) -> Result<Resolution, StoreError> {
    if pending.resolved.is_some() {
        return Ok(Resolution::AlreadyResolved);
    }
    let amount = amount.clamp(0, pending.amount);
    let (id, resolution) = insert_resolution(tx, ctx, wallet, pending, amount).await?;
    let debt_before = wallet.debt();
    restore_lots(
        tx,
        ctx,
        wallet,
        pending.id,
        id,
        pending.amount - amount,
        debt_before,
    )
    .await?;
    apply_totals(
        tx,
        wallet,
        TotalsDelta {
            debits_pending: -pending.amount,
            debits_posted: amount,
            ..Default::default()
        },
    )
    .await?;
    Ok(resolution)
}
