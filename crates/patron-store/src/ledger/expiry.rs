//! Expiring a wallet's due lots (and its points after inactivity), before any other unit of
//! work on it.

use patron_domain::lots::LotView;
use sqlx::Row;

use crate::{Conn, StoreError, conn, time};

use super::records::*;
use super::transfers::*;
use super::wallets::*;

/// Expires what is due in this wallet at `ctx.now`: every lot past its expiry instant, and
/// every lot when the wallet's inactivity deadline has passed. Each expiry transfer's key is
/// derived from its lot and how many times that lot expired before, so running this twice
/// expires nothing twice. Returns the points expired.
pub(crate) async fn expire_due(
    tx: &mut Conn,
    ctx: LedgerCtx,
    wallet: &mut Wallet,
) -> Result<i64, StoreError> {
    // Most units of work find nothing due: the wallet's read said so, without a query.
    if !wallet.may_expire_at(ctx.now) {
        return Ok(0);
    }
    let inactive = wallet.inactivity_expires_at.is_some_and(|at| at <= ctx.now);
    // Only the due lots are read: this runs before every unit of work on the wallet, and a
    // member's history of lots grows without bound.
    let rows = sqlx::query(
        "SELECT id, remaining, expires_at FROM lots WHERE account_id = $1 AND remaining > 0 \
         AND (expires_at <= $2 OR $3 = 1) ORDER BY id",
    )
    .bind(wallet.account_id)
    .bind(time::to_db(ctx.now))
    .bind(i64::from(inactive))
    .fetch_all(conn(tx))
    .await?;
    let lots = rows
        .iter()
        .map(|row| {
            let id: i64 = row.try_get("id")?;
            Ok(LotView {
                id,
                remaining: row.try_get("remaining")?,
                expires_at: time::opt_from_db(row.try_get("expires_at")?)?,
                seq: id,
            })
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    let due: Vec<&LotView> = lots.iter().collect();
    if due.is_empty() {
        return Ok(0);
    }
    let expiry_account = system_account(tx, ctx.tenant, "expiry").await?;
    let mut total = 0;
    for lot in due {
        let previous: i64 = sqlx::query(
            "SELECT CAST(COUNT(*) AS BIGINT) AS n FROM lot_movements m JOIN transfers t ON t.id = m.transfer_id \
             WHERE m.lot_id = $1 AND t.code = 'expire'",
        )
        .bind(lot.id)
        .fetch_one(conn(tx))
        .await?
        .try_get("n")?;
        let key = format!("expire:lot:{}:{}", lot.id, previous);
        let transfer = NewTransfer::posted(
            key,
            wallet.account_id,
            expiry_account,
            lot.remaining,
            code::EXPIRE,
        )
        .member(&wallet.member_id);
        let id = insert_transfer(tx, ctx, &transfer).await?;
        add_movement(tx, ctx, lot.id, id, -lot.remaining).await?;
        apply_totals(
            tx,
            wallet,
            TotalsDelta {
                debits_posted: lot.remaining,
                ..Default::default()
            },
        )
        .await?;
        total += lot.remaining;
    }
    Ok(total)
}
