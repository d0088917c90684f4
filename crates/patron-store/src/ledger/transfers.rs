//! Posting transfers: their rows, the accounts' totals, the wallet's activity, lots created,
//! consumed and restored.

use jiff::Timestamp;
use patron_domain::lots::{self, LotView, Take};
use sqlx::Row;

use crate::batch::Batch;
use crate::{Backend, Conn, Rejection, StoreError, conn, time};

use super::records::*;

/// Appends a transfer row. Does not touch totals.
pub(crate) async fn insert_transfer(
    tx: &mut Conn,
    ctx: LedgerCtx,
    t: &NewTransfer<'_>,
) -> Result<i64, StoreError> {
    debug_assert!(t.amount >= 0, "transfer amounts are never negative");
    debug_assert_ne!(
        t.debit, t.credit,
        "a transfer moves points between two accounts"
    );
    let row = sqlx::query(
        "INSERT INTO transfers (tenant_id, transfer_key, debit_account, credit_account, amount, code, kind, \
         pending_id, timeout_at, member_id, document_type, document_id, note, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) RETURNING id",
    )
    .bind(ctx.tenant.0)
    .bind(&t.key)
    .bind(t.debit)
    .bind(t.credit)
    .bind(t.amount)
    .bind(t.code)
    .bind(t.kind)
    .bind(t.pending_id)
    .bind(t.timeout_at.map(time::to_db))
    .bind(t.member_id)
    .bind(t.document_type)
    .bind(t.document_id)
    .bind(t.note)
    .bind(time::to_db(ctx.now))
    .fetch_one(conn(tx))
    .await?;
    Ok(row.try_get("id")?)
}

/// Appends a transfer whose debit side is the tenant's system account `from_kind` (its
/// `debit` field is ignored): the account is looked up inside the INSERT, saving a round trip
/// per credit. A missing system account fails the NOT NULL constraint, as corruption should.
pub(crate) async fn insert_transfer_from_system(
    tx: &mut Conn,
    ctx: LedgerCtx,
    t: &NewTransfer<'_>,
    from_kind: &str,
) -> Result<i64, StoreError> {
    debug_assert!(t.amount >= 0, "transfer amounts are never negative");
    let row = sqlx::query(
        "INSERT INTO transfers (tenant_id, transfer_key, debit_account, credit_account, amount, code, kind, \
         pending_id, timeout_at, member_id, document_type, document_id, note, created_at) \
         VALUES ($1, $2, (SELECT id FROM accounts WHERE tenant_id = $1 AND kind = $3 AND member_id IS NULL), \
         $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) RETURNING id",
    )
    .bind(ctx.tenant.0)
    .bind(&t.key)
    .bind(from_kind)
    .bind(t.credit)
    .bind(t.amount)
    .bind(t.code)
    .bind(t.kind)
    .bind(t.pending_id)
    .bind(t.timeout_at.map(time::to_db))
    .bind(t.member_id)
    .bind(t.document_type)
    .bind(t.document_id)
    .bind(t.note)
    .bind(time::to_db(ctx.now))
    .fetch_one(conn(tx))
    .await?;
    Ok(row.try_get("id")?)
}

pub(crate) async fn apply_totals(
    tx: &mut Conn,
    wallet: &mut Wallet,
    delta: TotalsDelta,
) -> Result<(), StoreError> {
    let mut batch = Batch::new();
    apply_totals_in(&mut batch, wallet, delta);
    // One statement: it is sent as it is, whatever the backend.
    batch.run(tx, Backend::Sqlite).await
}

/// [`apply_totals`] as a statement of `batch`: one statement whether or not activity is
/// recorded, since every round trip counts on the purchase path.
pub(crate) fn apply_totals_in(batch: &mut Batch, wallet: &mut Wallet, delta: TotalsDelta) {
    let (last_activity, inactivity) = match delta.activity {
        Some((at, deadline)) => (Some(time::to_db(at)), deadline.map(time::to_db)),
        None => (None, None),
    };
    let mut params: Vec<crate::batch::Param> = vec![
        delta.credits_posted.into(),
        delta.debits_posted.into(),
        delta.credits_pending.into(),
        delta.debits_pending.into(),
        wallet.account_id.into(),
        i64::from(delta.activity.is_some()).into(),
        last_activity.into(),
        inactivity.into(),
    ];
    // On the optimistic purchase path this statement also checks and counts the wallet's
    // lock version (`Batch::guard_wallet`).
    let (bump, condition) = match batch.wallet_condition(wallet.account_id, params.len() + 1) {
        Some((bump, condition, version)) => {
            params.push(version);
            (bump, condition)
        }
        None => ("", String::new()),
    };
    batch.push(
        &format!(
            "UPDATE accounts SET credits_posted = credits_posted + $1, debits_posted = debits_posted + $2, \
             credits_pending = credits_pending + $3, debits_pending = debits_pending + $4, \
             last_activity_at = CASE WHEN $6 = 1 THEN $7 ELSE last_activity_at END, \
             inactivity_expires_at = CASE WHEN $6 = 1 THEN $8 ELSE inactivity_expires_at END{bump} \
             WHERE id = $5{condition}"
        ),
        params,
    );
    wallet.credits_posted += delta.credits_posted;
    wallet.debits_posted += delta.debits_posted;
    wallet.credits_pending += delta.credits_pending;
    wallet.debits_pending += delta.debits_pending;
    if let Some((at, deadline)) = delta.activity {
        wallet.last_activity_at = Some(at);
        wallet.inactivity_expires_at = deadline;
    }
    debug_assert!(wallet.credits_pending >= 0 && wallet.debits_pending >= 0);
}

/// Records member activity (earning or spending), which restarts an inactivity expiry clock.
pub(crate) async fn touch_activity(
    tx: &mut Conn,
    wallet: &mut Wallet,
    at: Timestamp,
    inactivity_expires_at: Option<Timestamp>,
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE accounts SET last_activity_at = $1, inactivity_expires_at = $2 WHERE id = $3",
    )
    .bind(time::to_db(at))
    .bind(inactivity_expires_at.map(time::to_db))
    .bind(wallet.account_id)
    .execute(conn(tx))
    .await?;
    wallet.last_activity_at = Some(at);
    wallet.inactivity_expires_at = inactivity_expires_at;
    Ok(())
}

pub(super) async fn add_movement(
    tx: &mut Conn,
    ctx: LedgerCtx,
    lot_id: i64,
    transfer_id: i64,
    amount: i64,
) -> Result<(), StoreError> {
    if amount == 0 {
        return Ok(());
    }
    sqlx::query("INSERT INTO lot_movements (tenant_id, lot_id, transfer_id, amount) VALUES ($1, $2, $3, $4)")
        .bind(ctx.tenant.0)
        .bind(lot_id)
        .bind(transfer_id)
        .bind(amount)
        .execute(conn(tx))
        .await?;
    sqlx::query("UPDATE lots SET remaining = remaining + $1 WHERE id = $2")
        .bind(amount)
        .bind(lot_id)
        .execute(conn(tx))
        .await?;
    Ok(())
}

/// Creates the lot of a posted credit. A debt is paid first (docs/LEDGER.md#expiry-lots), recorded as a
/// movement of the same transfer, so `remaining = amount + Σ movements` always holds.
/// `debt_before` is the wallet's debt before the credit was applied to its totals.
pub(super) async fn create_lot(
    tx: &mut Conn,
    ctx: LedgerCtx,
    wallet: &Wallet,
    transfer_id: i64,
    amount: i64,
    expires_at: Option<Timestamp>,
    debt_before: i64,
) -> Result<i64, StoreError> {
    if amount <= 0 {
        return Ok(0);
    }
    let row = sqlx::query(
        "INSERT INTO lots (tenant_id, account_id, transfer_id, amount, remaining, expires_at, created_at) \
         VALUES ($1, $2, $3, $4, $4, $5, $6) RETURNING id",
    )
    .bind(ctx.tenant.0)
    .bind(wallet.account_id)
    .bind(transfer_id)
    .bind(amount)
    .bind(expires_at.map(time::to_db))
    .bind(time::to_db(ctx.now))
    .fetch_one(conn(tx))
    .await?;
    let lot_id: i64 = row.try_get("id")?;
    let (paid_to_debt, _remaining) = lots::settle_debt(amount, debt_before);
    add_movement(tx, ctx, lot_id, transfer_id, -paid_to_debt).await?;
    Ok(paid_to_debt)
}

/// Creates a lot for a credit whose totals the caller applied itself; returns what of it
/// paid the debt.
pub(crate) async fn create_lot_raw(
    tx: &mut Conn,
    ctx: LedgerCtx,
    wallet: &Wallet,
    transfer_id: i64,
    amount: i64,
    expires_at: Option<Timestamp>,
    debt_before: i64,
) -> Result<i64, StoreError> {
    create_lot(
        tx,
        ctx,
        wallet,
        transfer_id,
        amount,
        expires_at,
        debt_before,
    )
    .await
}

/// The wallet's open lots (remaining > 0), for consumption planning.
pub(crate) async fn open_lots(tx: &mut Conn, wallet: &Wallet) -> Result<Vec<LotView>, StoreError> {
    let rows = sqlx::query(
        "SELECT id, remaining, expires_at FROM lots WHERE account_id = $1 AND remaining > 0 ORDER BY id",
    )
    .bind(wallet.account_id)
    .fetch_all(conn(tx))
    .await?;
    rows.iter()
        .map(|row| {
            let id: i64 = row.try_get("id")?;
            Ok(LotView {
                id,
                remaining: row.try_get("remaining")?,
                expires_at: time::opt_from_db(row.try_get("expires_at")?)?,
                seq: id,
            })
        })
        .collect()
}

/// A posted credit from a system account: what [`credit_posted`] writes.
pub(crate) struct Credit<'a> {
    /// The kind of the system account the points come from (`issuance`, `adjustment`...).
    pub from_kind: &'a str,
    pub transfer: NewTransfer<'a>,
    /// The lot's expiry.
    pub expires_at: Option<Timestamp>,
    /// The member activity it counts as, when it does: (at, the inactivity deadline).
    pub activity: Option<(Timestamp, Option<Timestamp>)>,
}

/// A posted credit into a wallet from a system account, with its lot (and, when given, the
/// member activity it counts as).
pub(crate) async fn credit_posted(
    tx: &mut Conn,
    ctx: LedgerCtx,
    wallet: &mut Wallet,
    credit: Credit<'_>,
) -> Result<i64, StoreError> {
    let Credit {
        from_kind,
        transfer,
        expires_at,
        activity,
    } = credit;
    let transfer = NewTransfer {
        credit: wallet.account_id,
        kind: kind::POSTED,
        ..transfer
    };
    let debt_before = wallet.debt();
    let id = insert_transfer_from_system(tx, ctx, &transfer, from_kind).await?;
    apply_totals(
        tx,
        wallet,
        TotalsDelta {
            credits_posted: transfer.amount,
            activity,
            ..Default::default()
        },
    )
    .await?;
    create_lot(
        tx,
        ctx,
        wallet,
        id,
        transfer.amount,
        expires_at,
        debt_before,
    )
    .await?;
    Ok(id)
}

/// [`insert_transfer_from_system`] as a statement of `batch`, under the id `id` allocated with
/// [`next_transfer_id_sql`] in the same transaction.
pub(super) fn push_transfer_from_system(
    batch: &mut Batch,
    ctx: LedgerCtx,
    id: i64,
    t: &NewTransfer<'_>,
    from_kind: &str,
) {
    debug_assert!(t.amount >= 0, "transfer amounts are never negative");
    batch.push(
        "INSERT INTO transfers (id, tenant_id, transfer_key, debit_account, credit_account, amount, code, kind, \
         pending_id, timeout_at, member_id, document_type, document_id, note, created_at) \
         VALUES ($15, $1, $2, (SELECT id FROM accounts WHERE tenant_id = $1 AND kind = $3 AND member_id IS NULL), \
         $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
        vec![
            ctx.tenant.0.into(),
            (&t.key).into(),
            from_kind.into(),
            t.credit.into(),
            t.amount.into(),
            t.code.into(),
            t.kind.into(),
            t.pending_id.into(),
            t.timeout_at.map(time::to_db).into(),
            t.member_id.into(),
            t.document_type.into(),
            t.document_id.into(),
            t.note.into(),
            time::to_db(ctx.now).into(),
            id.into(),
        ],
    );
}

/// [`credit_posted`] for the purchase path: the transfer (under `id`, allocated with
/// [`next_transfer_id_sql`]), the totals and the lot all go into `batch`. A wallet in debt
/// takes the unbatched path, since its lot also records the debt paid, which needs the lot's
/// id; the transfer then gets an id of its own, which is returned.
pub(crate) async fn credit_posted_batched(
    tx: &mut Conn,
    batch: &mut Batch,
    ctx: LedgerCtx,
    wallet: &mut Wallet,
    credit: Credit<'_>,
    id: i64,
) -> Result<i64, StoreError> {
    if wallet.debt() > 0 || credit.transfer.amount <= 0 {
        return credit_posted(tx, ctx, wallet, credit).await;
    }
    let Credit {
        from_kind,
        transfer,
        expires_at,
        activity,
    } = credit;
    let transfer = NewTransfer {
        credit: wallet.account_id,
        kind: kind::POSTED,
        ..transfer
    };
    push_transfer_from_system(batch, ctx, id, &transfer, from_kind);
    apply_totals_in(
        batch,
        wallet,
        TotalsDelta {
            credits_posted: transfer.amount,
            activity,
            ..Default::default()
        },
    );
    batch.push(
        "INSERT INTO lots (tenant_id, account_id, transfer_id, amount, remaining, expires_at, created_at) \
         VALUES ($1, $2, $3, $4, $4, $5, $6)",
        vec![
            ctx.tenant.0.into(),
            wallet.account_id.into(),
            id.into(),
            transfer.amount.into(),
            expires_at.map(time::to_db).into(),
            time::to_db(ctx.now).into(),
        ],
    );
    Ok(id)
}

/// [`credit_pending`] for the purchase path: the transfer (under `id`, allocated with
/// [`next_transfer_id_sql`]) and the totals into `batch`.
pub(crate) fn credit_pending_batched(
    batch: &mut Batch,
    ctx: LedgerCtx,
    wallet: &mut Wallet,
    from_kind: &str,
    transfer: NewTransfer<'_>,
    id: i64,
) -> i64 {
    let transfer = NewTransfer {
        credit: wallet.account_id,
        kind: kind::PENDING,
        ..transfer
    };
    push_transfer_from_system(batch, ctx, id, &transfer, from_kind);
    apply_totals_in(
        batch,
        wallet,
        TotalsDelta {
            credits_pending: transfer.amount,
            ..Default::default()
        },
    );
    id
}

/// A posted (or, with `pending`, held) debit from a wallet to a system or member account,
/// consuming lots soonest-expiry first. Without `may_go_negative` it is rejected when the
/// spendable balance is short; with it, the shortfall becomes debt.
pub(crate) async fn debit(
    tx: &mut Conn,
    ctx: LedgerCtx,
    wallet: &mut Wallet,
    to_account: i64,
    transfer: NewTransfer<'_>,
    may_go_negative: bool,
) -> Result<Debit, StoreError> {
    let amount = transfer.amount;
    let pending = transfer.kind == kind::PENDING;
    if amount <= 0 {
        return Err(StoreError::Corrupt("a debit must be positive".into()));
    }
    if !may_go_negative && wallet.spendable() < amount {
        return Err(Rejection::InsufficientPoints {
            available: wallet.spendable().max(0),
            requested: amount,
        }
        .into());
    }
    let lots = open_lots(tx, wallet).await?;
    let plan = lots::plan_consumption(&lots, amount, ctx.now);
    if plan.shortfall > 0 && !may_go_negative {
        // Stored totals say there is enough, the lots say there is not: the two disagree.
        return Err(StoreError::Corrupt(format!(
            "wallet {} has {} spendable but lots cover only {}",
            wallet.account_id,
            wallet.spendable(),
            amount - plan.shortfall
        )));
    }
    let transfer = NewTransfer {
        debit: wallet.account_id,
        credit: to_account,
        ..transfer
    };
    let id = insert_transfer(tx, ctx, &transfer).await?;
    for take in &plan.takes {
        add_movement(tx, ctx, take.lot_id, id, -take.amount).await?;
    }
    let delta = if pending {
        TotalsDelta {
            debits_pending: amount,
            ..Default::default()
        }
    } else {
        TotalsDelta {
            debits_posted: amount,
            ..Default::default()
        }
    };
    apply_totals(tx, wallet, delta).await?;
    Ok(Debit {
        transfer_id: id,
        takes: plan.takes,
    })
}

/// What a transfer took from each lot (negative movements), for restoring.
pub(crate) async fn takes_of(tx: &mut Conn, transfer_id: i64) -> Result<Vec<Take>, StoreError> {
    let rows = sqlx::query("SELECT lot_id, amount FROM lot_movements WHERE transfer_id = $1 AND amount < 0 ORDER BY id")
        .bind(transfer_id)
        .fetch_all(conn(tx))
        .await?;
    rows.iter()
        .map(|row| {
            Ok(Take {
                lot_id: row.try_get("lot_id")?,
                amount: -row.try_get::<i64, _>("amount")?,
            })
        })
        .collect()
}

/// Gives back up to `amount` of what `original_transfer` took from lots, recorded against
/// `by_transfer`. Restored points keep their lot's original expiry.
///
/// `debt_before` is the wallet's debt before the points come back. Like any credit, restored
/// points pay a debt first (docs/LEDGER.md#expiry-lots): that part is taken straight back out of the restored
/// lots, soonest-expiring first, as movements of the same transfer. Without this, a hold
/// released (or a redemption reversed) after an `unlimited` clawback put the wallet in debt
/// left the lots holding more than the spendable balance (invariant 7).
pub(crate) async fn restore_lots(
    tx: &mut Conn,
    ctx: LedgerCtx,
    wallet: &mut Wallet,
    original_transfer: i64,
    by_transfer: i64,
    amount: i64,
    debt_before: i64,
) -> Result<i64, StoreError> {
    // A lot given back may be past its expiry: the wallet's hint no longer says "nothing due".
    wallet.next_expiry_at = Some(Timestamp::MIN);
    let takes = takes_of(tx, original_transfer).await?;
    // What was given back already (a hold's capture returns the part not captured) must not
    // be given back twice.
    let rows = sqlx::query(
        "SELECT m.lot_id, m.amount FROM lot_movements m JOIN transfers t ON t.id = m.transfer_id \
         WHERE t.pending_id = $1 AND m.amount > 0 ORDER BY m.id",
    )
    .bind(original_transfer)
    .fetch_all(conn(tx))
    .await?;
    let restored_before = rows
        .iter()
        .map(|row| {
            Ok(Take {
                lot_id: row.try_get("lot_id")?,
                amount: row.try_get("amount")?,
            })
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    let remaining = lots::takes_not_yet_restored(&takes, &restored_before);
    let restores = lots::plan_restore(&remaining, amount);
    let mut restored = 0;
    for take in &restores {
        add_movement(tx, ctx, take.lot_id, by_transfer, take.amount).await?;
        restored += take.amount;
    }
    // `plan_restore` refills the latest-expiring lots first; the debt takes from the
    // soonest-expiring of them, so the member keeps the points that live longest.
    let mut debt = debt_before.max(0);
    for take in restores.iter().rev() {
        if debt == 0 {
            break;
        }
        let (paid, _) = lots::settle_debt(take.amount, debt);
        add_movement(tx, ctx, take.lot_id, by_transfer, -paid).await?;
        debt -= paid;
    }
    Ok(restored)
}
