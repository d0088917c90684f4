//! Spending and moving points: balances, redemptions (immediate, or held at checkout and then
//! captured or released), reversals of redemptions, admin adjustments, member-to-member
//! transfers that carry their lots, the member's ledger, and the expiry job.

use jiff::Timestamp;
use patron_domain::expiry;
use patron_domain::lots::Take;
use patron_domain::program::Program;
use serde::{Deserialize, Serialize};
use sqlx::Row;

use crate::batch::Batch;
use crate::idempotency::{Claim, Idempotent};
use crate::ledger::{
    self, LedgerCtx, NewTransfer, TRANSFER_COLUMNS, TransferRecord, Wallet, code, kind,
};
use crate::members::{lock_wallet_with_member, member_in_tx};
use crate::programs::audit;
use crate::tenants::TenantId;
use crate::{Conn, Rejection, Store, StoreError, conn, idempotent_unit, time, unit_of_work};

use crate::wallet::balance_in;
pub use crate::wallet::{Balance, EXPIRING_LISTED_MAX, ExpiringPoints};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRedemption {
    pub id: String,
    pub member_id: String,
    pub points: i64,
    /// Hold at checkout: reserve now, capture or release later (or at `hold_expires_at`).
    pub hold: bool,
    pub hold_expires_at: Option<Timestamp>,
    pub description: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Redemption {
    pub id: String,
    pub member_id: String,
    pub points: i64,
    pub captured_points: i64,
    /// held | captured | released | completed | reversed
    pub status: String,
    pub hold_expires_at: Option<Timestamp>,
    pub description: Option<String>,
    pub created_at: Timestamp,
    pub balance: Option<Balance>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdjustmentReceipt {
    pub member_id: String,
    pub points: i64,
    pub reason: String,
    pub transfer_id: i64,
    pub balance: Balance,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransferReceipt {
    pub from_member_id: String,
    pub to_member_id: String,
    pub points: i64,
    pub transfer_id: i64,
    pub balance: Balance,
}

async fn load_redemption(
    c: &mut Conn,
    ctx: LedgerCtx,
    id: &str,
) -> Result<(Redemption, i64), StoreError> {
    let sql = format!(
        "SELECT id, member_id, points, captured_points, status, transfer_id, hold_expires_at, description, created_at \
         FROM redemptions WHERE tenant_id = $1 AND id = $2{}",
        ctx.backend.for_update()
    );
    let row = sqlx::query(&sql)
        .bind(ctx.tenant.0)
        .bind(id)
        .fetch_optional(conn(c))
        .await?;
    let Some(row) = row else {
        return Err(Rejection::RedemptionNotFound {
            redemption_id: id.to_string(),
        }
        .into());
    };
    Ok((
        Redemption {
            id: row.try_get("id")?,
            member_id: row.try_get("member_id")?,
            points: row.try_get("points")?,
            captured_points: row.try_get("captured_points")?,
            status: row.try_get("status")?,
            hold_expires_at: time::opt_from_db(row.try_get("hold_expires_at")?)?,
            description: row.try_get("description")?,
            created_at: time::from_db(row.try_get("created_at")?)?,
            balance: None,
        },
        row.try_get("transfer_id")?,
    ))
}

async fn active_wallet(
    c: &mut Conn,
    ctx: LedgerCtx,
    member_id: &str,
) -> Result<Wallet, StoreError> {
    // The lock first: leaving the club holds it, so a member read under it cannot be one
    // who left while this unit of work waited (PostgreSQL, read committed).
    let (mut wallet, member) = lock_wallet_with_member(c, ctx, member_id).await?;
    if !member.is_active() {
        return Err(Rejection::MemberExited {
            member_id: member_id.to_string(),
        }
        .into());
    }
    ledger::expire_due(c, ctx, &mut wallet).await?;
    Ok(wallet)
}

fn inactivity(program: &Program, at: Timestamp) -> Option<Timestamp> {
    expiry::inactivity_expires_at(&program.expiry, at, &program.calendar())
}

/// Resolves a hold: capture `amount` (0 releases it).
async fn resolve_hold(
    c: &mut Conn,
    ctx: LedgerCtx,
    program: &Program,
    redemption_id: &str,
    amount: Option<i64>,
) -> Result<Redemption, StoreError> {
    let (mut redemption, transfer_id) = load_redemption(c, ctx, redemption_id).await?;
    if redemption.status != "held" {
        return Err(Rejection::RedemptionResolved {
            redemption_id: redemption_id.to_string(),
            status: redemption.status,
        }
        .into());
    }
    let capture = amount.unwrap_or(redemption.points);
    if capture > redemption.points || capture < 0 {
        return Err(Rejection::CaptureTooLarge {
            held: redemption.points,
            requested: capture,
        }
        .into());
    }
    let mut wallet = ledger::lock_wallets(c, ctx, &[redemption.member_id.as_str()])
        .await?
        .remove(0);
    let pending = ledger::pending_transfer(c, ctx, transfer_id).await?;
    ledger::resolve_pending_debit(c, ctx, &mut wallet, &pending, capture).await?;
    let status = if capture > 0 { "captured" } else { "released" };
    sqlx::query(
        "UPDATE redemptions SET status = $3, captured_points = $4, resolved_at = $5 WHERE tenant_id = $1 AND id = $2",
    )
    .bind(ctx.tenant.0)
    .bind(redemption_id)
    .bind(status)
    .bind(capture)
    .bind(time::to_db(ctx.now))
    .execute(conn(c))
    .await?;
    if capture > 0 {
        ledger::touch_activity(c, &mut wallet, ctx.now, inactivity(program, ctx.now)).await?;
    }
    ledger::expire_due(c, ctx, &mut wallet).await?;
    redemption.status = status.to_string();
    redemption.captured_points = capture;
    redemption.balance = Some(balance_in(c, ctx, &wallet).await?);
    Ok(redemption)
}

impl Store {
    /// Spends points: at once, or as a hold to capture or release later.
    pub async fn redeem(
        &self,
        tenant: TenantId,
        program: &Program,
        new: &NewRedemption,
        claims: &[Claim],
        now: Timestamp,
    ) -> Result<Idempotent<Redemption>, StoreError> {
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
                let mut wallet = active_wallet(c, ctx, &new.member_id).await?;
                let to = ledger::system_account(c, tenant, "redemption").await?;
                let transfer = NewTransfer {
                    kind: if new.hold {
                        kind::PENDING
                    } else {
                        kind::POSTED
                    },
                    timeout_at: if new.hold { new.hold_expires_at } else { None },
                    ..NewTransfer::posted(
                        format!("redeem:{}", new.id),
                        0,
                        0,
                        new.points,
                        code::REDEEM,
                    )
                    .member(&new.member_id)
                    .document("redemption", &new.id)
                    .note(new.description.as_deref())
                };
                let debit = ledger::debit(c, ctx, &mut wallet, to, transfer, false).await?;
                let status = if new.hold { "held" } else { "completed" };
                sqlx::query(
                    "INSERT INTO redemptions (tenant_id, id, member_id, points, captured_points, status, transfer_id, \
                     hold_expires_at, description, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
                )
                .bind(tenant.0)
                .bind(&new.id)
                .bind(&new.member_id)
                .bind(new.points)
                .bind(if new.hold { 0 } else { new.points })
                .bind(status)
                .bind(debit.transfer_id)
                .bind(if new.hold { new.hold_expires_at.map(time::to_db) } else { None })
                .bind(&new.description)
                .bind(time::to_db(now))
                .execute(conn(c))
                .await?;
                if !new.hold {
                    ledger::touch_activity(c, &mut wallet, now, inactivity(program, now)).await?;
                }
                Ok(Redemption {
                    id: new.id.clone(),
                    member_id: new.member_id.clone(),
                    points: new.points,
                    captured_points: if new.hold { 0 } else { new.points },
                    status: status.to_string(),
                    hold_expires_at: if new.hold { new.hold_expires_at } else { None },
                    description: new.description.clone(),
                    created_at: now,
                    balance: Some(balance_in(c, ctx, &wallet).await?),
                })
            }
        )
    }

    /// Captures a hold, all of it or `points` of it; the rest goes back to the member's lots.
    pub async fn capture_redemption(
        &self,
        tenant: TenantId,
        program: &Program,
        redemption_id: &str,
        points: Option<i64>,
        claims: &[Claim],
        now: Timestamp,
    ) -> Result<Idempotent<Redemption>, StoreError> {
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
                if points == Some(0) {
                    return Err(Rejection::CaptureTooLarge {
                        held: 0,
                        requested: 0,
                    }
                    .into());
                }
                resolve_hold(c, ctx, program, redemption_id, points).await
            }
        )
    }

    /// Releases a hold: every point goes back to the lot it came from.
    pub async fn release_redemption(
        &self,
        tenant: TenantId,
        program: &Program,
        redemption_id: &str,
        claims: &[Claim],
        now: Timestamp,
    ) -> Result<Idempotent<Redemption>, StoreError> {
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
                resolve_hold(c, ctx, program, redemption_id, Some(0)).await
            }
        )
    }

    /// Gives back the points of a completed or captured redemption (an order cancelled after
    /// points were spent), restoring the lots they came from with their original expiry.
    /// Refused (`MemberExited`) once the member has left the club.
    pub async fn reverse_redemption(
        &self,
        tenant: TenantId,
        redemption_id: &str,
        claims: &[Claim],
        now: Timestamp,
    ) -> Result<Idempotent<Redemption>, StoreError> {
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
                let (mut redemption, transfer_id) = load_redemption(c, ctx, redemption_id).await?;
                if redemption.status != "completed" && redemption.status != "captured" {
                    return Err(Rejection::RedemptionResolved {
                        redemption_id: redemption_id.to_string(),
                        status: redemption.status,
                    }
                    .into());
                }
                // Points given back to a member who left would resurrect what the exit
                // forfeited (or kept only until it expires): refused like every other change
                // to their wallet, the status read under the lock that leaving the club holds.
                let (mut wallet, member) =
                    lock_wallet_with_member(c, ctx, &redemption.member_id).await?;
                if !member.is_active() {
                    return Err(Rejection::MemberExited {
                        member_id: redemption.member_id,
                    }
                    .into());
                }
                let amount = redemption.captured_points;
                let from = ledger::system_account(c, tenant, "redemption").await?;
                let transfer = NewTransfer::posted(
                    format!("reverse:{redemption_id}"),
                    from,
                    wallet.account_id,
                    amount,
                    code::REVERSAL,
                )
                .member(&redemption.member_id)
                .document("redemption", redemption_id);
                let debt_before = wallet.debt();
                let id = ledger::insert_transfer(c, ctx, &transfer).await?;
                // For a captured hold the movements that took points belong to the pending
                // transfer; what its capture gave back was restored already.
                // A debt (after an `unlimited` clawback) is paid from the restored points first.
                let restored =
                    ledger::restore_lots(c, ctx, &mut wallet, transfer_id, id, amount, debt_before)
                        .await?;
                ledger::apply_totals(
                    c,
                    &mut wallet,
                    ledger::TotalsDelta {
                        credits_posted: amount,
                        ..Default::default()
                    },
                )
                .await?;
                if restored != amount {
                    return Err(StoreError::Corrupt(format!(
                        "reversal of {redemption_id} restored {restored} of {amount} points (debt {debt_before})"
                    )));
                }
                sqlx::query("UPDATE redemptions SET status = 'reversed', resolved_at = $3 WHERE tenant_id = $1 AND id = $2")
                    .bind(tenant.0)
                    .bind(redemption_id)
                    .bind(time::to_db(now))
                    .execute(conn(c))
                    .await?;
                ledger::expire_due(c, ctx, &mut wallet).await?;
                redemption.status = "reversed".into();
                redemption.balance = Some(balance_in(c, ctx, &wallet).await?);
                Ok(redemption)
            }
        )
    }

    pub async fn redemption(
        &self,
        tenant: TenantId,
        redemption_id: &str,
    ) -> Result<Option<Redemption>, StoreError> {
        let ctx = LedgerCtx {
            tenant,
            backend: crate::Backend::Sqlite,
            now: Timestamp::UNIX_EPOCH,
        };
        let mut c = self.pool().acquire().await?;
        match load_redemption(&mut c, ctx, redemption_id).await {
            Ok((redemption, _)) => Ok(Some(redemption)),
            Err(StoreError::Rejected(Rejection::RedemptionNotFound { .. })) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// An audited admin correction: `points` > 0 credits (with a lot under the expiry policy),
    /// `points` < 0 debits (never below zero).
    #[allow(clippy::too_many_arguments)]
    pub async fn adjust(
        &self,
        tenant: TenantId,
        program: &Program,
        member_id: &str,
        adjustment_id: &str,
        points: i64,
        reason: &str,
        actor: &str,
        claims: &[Claim],
        now: Timestamp,
    ) -> Result<Idempotent<AdjustmentReceipt>, StoreError> {
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
                let mut wallet = active_wallet(c, ctx, member_id).await?;
                let transfer = NewTransfer::posted(
                    format!("adjust:{adjustment_id}"),
                    0,
                    0,
                    points.abs(),
                    code::ADJUST,
                )
                .member(member_id)
                .document("adjustment", adjustment_id)
                .note(Some(reason));
                let transfer_id = if points > 0 {
                    let expires_at =
                        expiry::lot_expires_at(&program.expiry, now, &program.calendar());
                    let credit = ledger::Credit {
                        from_kind: "adjustment",
                        transfer,
                        expires_at,
                        activity: Some((now, inactivity(program, now))),
                    };
                    ledger::credit_posted(c, ctx, &mut wallet, credit).await?
                } else {
                    let to = ledger::system_account(c, tenant, "adjustment").await?;
                    ledger::debit(c, ctx, &mut wallet, to, transfer, false)
                        .await?
                        .transfer_id
                };
                audit(
                    c,
                    tenant,
                    now,
                    actor,
                    "ledger.adjust",
                    &format!("member:{member_id}"),
                    &format!("{points:+} points: {reason}"),
                )
                .await?;
                Ok(AdjustmentReceipt {
                    member_id: member_id.to_string(),
                    points,
                    reason: reason.to_string(),
                    transfer_id,
                    balance: balance_in(c, ctx, &wallet).await?,
                })
            }
        )
    }

    /// Moves points from one member to another. The points keep the expiry of the lots they
    /// came from (no expiry reset by transfer).
    #[allow(clippy::too_many_arguments)]
    pub async fn transfer_points(
        &self,
        tenant: TenantId,
        program: &Program,
        transfer_id: &str,
        from_member: &str,
        to_member: &str,
        points: i64,
        claims: &[Claim],
        now: Timestamp,
    ) -> Result<Idempotent<TransferReceipt>, StoreError> {
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
                if from_member == to_member {
                    return Err(Rejection::TransferToSelf.into());
                }
                // Both locks first, then whether both are still members (see `active_wallet`).
                let mut wallets = ledger::lock_wallets(c, ctx, &[from_member, to_member]).await?;
                for member_id in [from_member, to_member] {
                    let member = member_in_tx(c, tenant, member_id).await?;
                    if !member.is_active() {
                        return Err(Rejection::MemberExited {
                            member_id: member_id.to_string(),
                        }
                        .into());
                    }
                }
                let (mut from, mut to) = (wallets.remove(0), wallets.remove(0));
                ledger::expire_due(c, ctx, &mut from).await?;
                ledger::expire_due(c, ctx, &mut to).await?;
                let transfer = NewTransfer::posted(
                    format!("transfer:{transfer_id}"),
                    0,
                    0,
                    points,
                    code::TRANSFER,
                )
                .member(from_member)
                .document("transfer", transfer_id);
                let debit =
                    ledger::debit(c, ctx, &mut from, to.account_id, transfer, false).await?;
                carry_lots(c, ctx, &mut to, debit.transfer_id, &debit.takes).await?;
                ledger::touch_activity(c, &mut from, now, inactivity(program, now)).await?;
                ledger::touch_activity(c, &mut to, now, inactivity(program, now)).await?;
                Ok(TransferReceipt {
                    from_member_id: from_member.to_string(),
                    to_member_id: to_member.to_string(),
                    points,
                    transfer_id: debit.transfer_id,
                    balance: balance_in(c, ctx, &from).await?,
                })
            }
        )
    }

    /// A member's transfers, newest first, before the transfer id `before` (cursor).
    pub async fn member_ledger(
        &self,
        tenant: TenantId,
        member_id: &str,
        before: Option<i64>,
        limit: i64,
    ) -> Result<Vec<TransferRecord>, StoreError> {
        let wallet = ledger::read_wallet(self.pool(), tenant, member_id)
            .await?
            .ok_or_else(|| Rejection::MemberNotFound {
                member_id: member_id.to_string(),
            })?;
        let sql = format!(
            "SELECT {TRANSFER_COLUMNS} FROM transfers WHERE tenant_id = $1 AND (debit_account = $2 OR credit_account = $2) \
             AND id < $3 ORDER BY id DESC LIMIT $4"
        );
        let rows = sqlx::query(&sql)
            .bind(tenant.0)
            .bind(wallet.account_id)
            .bind(before.unwrap_or(i64::MAX))
            .bind(limit.clamp(1, 1000))
            .fetch_all(self.pool())
            .await?;
        rows.iter().map(ledger::transfer_from_row).collect()
    }

    /// Expires every lot due by `now` in this tenant (at most `limit` wallets per call), and
    /// releases holds whose timeout passed. Idempotent: expiry transfer keys derive from the
    /// lots. Returns (points expired, holds released).
    pub async fn run_expiry(
        &self,
        tenant: TenantId,
        program: &Program,
        now: Timestamp,
        limit: i64,
    ) -> Result<(i64, i64), StoreError> {
        let wallets = sqlx::query(
            "SELECT DISTINCT a.member_id FROM accounts a JOIN lots l ON l.account_id = a.id \
             WHERE a.tenant_id = $1 AND l.remaining > 0 \
             AND (l.expires_at <= $2 OR a.inactivity_expires_at <= $2) ORDER BY a.member_id LIMIT $3",
        )
        .bind(tenant.0)
        .bind(time::to_db(now))
        .bind(limit.clamp(1, 100_000))
        .fetch_all(self.pool())
        .await?;
        let mut expired = 0;
        for row in wallets {
            let member_id: String = row.try_get("member_id")?;
            let ctx = LedgerCtx {
                tenant,
                backend: self.backend(),
                now,
            };
            expired += unit_of_work!(self, |tx| async {
                let mut wallet = ledger::lock_wallets(&mut tx, ctx, &[member_id.as_str()])
                    .await?
                    .remove(0);
                ledger::expire_due(&mut tx, ctx, &mut wallet).await
            }
            .await)?;
        }
        let holds = sqlx::query(
            "SELECT id FROM redemptions WHERE tenant_id = $1 AND status = 'held' AND hold_expires_at <= $2 ORDER BY id LIMIT $3",
        )
        .bind(tenant.0)
        .bind(time::to_db(now))
        .bind(limit.clamp(1, 100_000))
        .fetch_all(self.pool())
        .await?;
        let mut released = 0;
        for row in holds {
            let id: String = row.try_get("id")?;
            let ctx = LedgerCtx {
                tenant,
                backend: self.backend(),
                now,
            };
            let result = unit_of_work!(self, |tx| async {
                resolve_hold(&mut tx, ctx, program, &id, Some(0)).await
            }
            .await);
            match result {
                Ok(_) => released += 1,
                // Captured or released by the shop in the meantime.
                Err(StoreError::Rejected(Rejection::RedemptionResolved { .. })) => {}
                Err(e) => return Err(e),
            }
        }
        Ok((expired, released))
    }
}

/// Creates the receiving wallet's lots of a member-to-member transfer: one per source lot
/// taken, with that lot's expiry.
async fn carry_lots(
    c: &mut Conn,
    ctx: LedgerCtx,
    to: &mut Wallet,
    transfer_id: i64,
    takes: &[Take],
) -> Result<(), StoreError> {
    let total: i64 = takes.iter().map(|t| t.amount).sum();
    let mut debt = to.debt();
    ledger::apply_totals(
        c,
        to,
        ledger::TotalsDelta {
            credits_posted: total,
            ..Default::default()
        },
    )
    .await?;
    for take in takes {
        let expires_at: Option<i64> = sqlx::query("SELECT expires_at FROM lots WHERE id = $1")
            .bind(take.lot_id)
            .fetch_one(conn(c))
            .await?
            .try_get("expires_at")?;
        let paid = ledger::create_lot_raw(
            c,
            ctx,
            to,
            transfer_id,
            take.amount,
            time::opt_from_db(expires_at)?,
            debt,
        )
        .await?;
        debt -= paid;
    }
    Ok(())
}
