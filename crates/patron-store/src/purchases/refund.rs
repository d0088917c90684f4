//! Refunding lines of a purchase: the purchase and its lines are read under the purchase's
//! lock and the wallet under its own (its due lots expired first), the domain plans the
//! refund (`patron_domain::posting::plan_refund`: the lines' amounts, the clawback, what
//! becomes of a pending earning), and the plan is written.

use jiff::Timestamp;
use patron_domain::clawback::EarnState;
use patron_domain::posting::{self, LineSnapshot, PendingChange, RefundPlan, RefundSnapshot};
use patron_domain::program::Program;

use super::{NewRefund, PurchaseRow, RefundReceipt, load_purchase, parse_quantity};
use crate::batch::Batch;
use crate::idempotency::{Claim, Idempotent};
use crate::ledger::{self, LedgerCtx, NewTransfer, Wallet, code};
use crate::members::clawback_mode;
use crate::rules;
use crate::stats;
use crate::tenants::TenantId;
use crate::wallet::balance_in;
use crate::{Conn, Rejection, Store, StoreError, conn, idempotent_unit, time};

impl Store {
    /// Refunds lines of a purchase (idempotent under `claims`, which include the document key).
    pub async fn refund_purchase(
        &self,
        tenant: TenantId,
        program: &Program,
        refund: &NewRefund,
        claims: &[Claim],
        now: Timestamp,
    ) -> Result<Idempotent<RefundReceipt>, StoreError> {
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
            async |c: &mut Conn, _tail: &mut Batch| { refund_in(c, ctx, program, refund).await }
        )
    }
}

/// Reads the refund's snapshot under the locks, plans it, and writes the plan.
async fn refund_in(
    c: &mut Conn,
    ctx: LedgerCtx,
    program: &Program,
    refund: &NewRefund,
) -> Result<RefundReceipt, StoreError> {
    let loaded = load_purchase(c, ctx, &refund.purchase_id, true).await?;
    let purchase = &loaded.purchase;
    // Lock the wallet before anything else is written, in the same order as every other unit.
    let mut wallet = match purchase.member_id.as_deref() {
        Some(member_id) => Some(ledger::lock_wallets(c, ctx, &[member_id]).await?.remove(0)),
        None => None,
    };
    let earning = match purchase.earn_state.as_str() {
        "pending" => Some(EarnState::Pending),
        "posted" => Some(EarnState::Posted),
        _ => None,
    };
    let wallet_snapshot = match wallet.as_mut() {
        Some(wallet) => {
            ledger::expire_due(c, ctx, wallet).await?;
            // The member's status is read only when the clawback can depend on it.
            let mode = if purchase.points > 0 && earning.is_some() {
                clawback_mode(c, ctx, program, &wallet.member_id).await?
            } else {
                posting::clawback_mode(program.returns)
            };
            Some(posting::WalletSnapshot {
                spendable: wallet.spendable(),
                mode,
            })
        }
        None => None,
    };
    let lines = line_snapshots(&loaded)?;
    let snapshot = RefundSnapshot {
        total_minor: purchase.total_minor,
        refunded_minor: purchase.refunded_minor,
        eligible_minor: purchase.eligible_minor,
        points: purchase.points,
        settled_points: purchase.settled_points,
        earning,
        has_earn_transfer: loaded.earn_transfer_id.is_some(),
        lines: &lines,
        wallet: wallet_snapshot,
    };
    let requested: Option<Vec<(i64, String)>> = refund.lines.as_ref().map(|lines| {
        lines
            .iter()
            .map(|line| (line.line_no, line.quantity.clone()))
            .collect()
    });
    let plan = posting::plan_refund(&snapshot, requested.as_deref())
        .map_err(|e| Rejection::RefundTooLarge { reason: e.reason })?;
    write_refund(c, ctx, program, refund, &loaded, wallet.as_mut(), &plan).await
}

/// The purchase's lines as the domain reads them.
fn line_snapshots(loaded: &PurchaseRow) -> Result<Vec<LineSnapshot>, StoreError> {
    let purchase = &loaded.purchase;
    purchase
        .lines
        .iter()
        .zip(&purchase.refunded_quantities)
        .zip(&loaded.line_refunded_minor)
        .map(|((line, refunded_quantity), refunded_minor)| {
            Ok(LineSnapshot {
                line_no: line.line_no,
                category: line.category.clone(),
                quantity: parse_quantity(&line.quantity)?,
                total_minor: line.total_minor,
                eligible: line.eligible,
                refunded_quantity: parse_quantity(refunded_quantity)?,
                refunded_minor: *refunded_minor,
            })
        })
        .collect()
}

/// Writes a refund's plan: the lines, the points, the referral's clawback and the rules'
/// limits, the purchase's totals, the statistics, and the refund with its receipt.
async fn write_refund(
    c: &mut Conn,
    ctx: LedgerCtx,
    program: &Program,
    refund: &NewRefund,
    loaded: &PurchaseRow,
    mut wallet: Option<&mut Wallet>,
    plan: &RefundPlan,
) -> Result<RefundReceipt, StoreError> {
    let purchase = &loaded.purchase;
    update_lines(c, ctx, &purchase.id, plan).await?;
    let mut earn_state = purchase.earn_state.clone();
    let mut earn_transfer_id = loaded.earn_transfer_id;
    if let Some(wallet) = wallet.as_deref_mut() {
        if let Some(state) = write_points(c, ctx, refund, loaded, wallet, plan).await? {
            (earn_state, earn_transfer_id) = state;
        }
        let referral = rules::ReferralRefund {
            purchase_id: &purchase.id,
            refund_id: &refund.id,
            original_eligible_minor: purchase.eligible_minor,
            eligible_refunded_before: plan.eligible_refunded_before,
            eligible_refund_minor: plan.eligible_refund_minor,
        };
        rules::claw_back_referral(c, ctx, program, referral).await?;
        let forgiven = plan.clawback.forgiven;
        rules::release_limits_if_reversed(c, ctx, &purchase.id, plan.fully_refunded, forgiven)
            .await?;
    }
    sqlx::query(
        "UPDATE purchases SET refunded_minor = refunded_minor + $3, settled_points = settled_points + $4, \
         clawed_back_points = clawed_back_points + $5, earn_state = $6, earn_transfer_id = $7 \
         WHERE tenant_id = $1 AND id = $2",
    )
    .bind(ctx.tenant.0)
    .bind(&purchase.id)
    .bind(plan.amount_minor)
    .bind(plan.settled())
    .bind(plan.clawback.claw_back)
    .bind(&earn_state)
    .bind(earn_transfer_id)
    .execute(conn(c))
    .await?;
    let tz = program.tz();
    stats::record_refund(
        c,
        ctx,
        &tz,
        &purchase.id,
        plan.amount_minor,
        &plan.categories(),
    )
    .await?;
    let balance = match wallet.as_deref() {
        Some(wallet) => Some(balance_in(c, ctx, wallet).await?),
        None => None,
    };
    let receipt = RefundReceipt {
        refund_id: refund.id.clone(),
        purchase_id: purchase.id.clone(),
        document_id: refund.document_id.clone(),
        amount_minor: plan.amount_minor,
        clawed_back_points: plan.clawback.claw_back,
        reduced_pending_points: plan.clawback.reduce_pending,
        forgiven_points: plan.clawback.forgiven,
        balance,
    };
    insert_refund(c, ctx, refund, &receipt).await?;
    Ok(receipt)
}

/// The refund's points on the wallet: the clawback's debit, and a reduced pending earning
/// voided (what stays of it pends anew, same timeout, so that the wallet's pending total, and
/// every balance shown, is what will post; reduced to nothing, it is voided now rather than
/// at its timeout). Returns the purchase's new earning state and transfer, when they change.
async fn write_points(
    c: &mut Conn,
    ctx: LedgerCtx,
    refund: &NewRefund,
    loaded: &PurchaseRow,
    wallet: &mut Wallet,
    plan: &RefundPlan,
) -> Result<Option<(String, Option<i64>)>, StoreError> {
    let purchase = &loaded.purchase;
    let member_id = wallet.member_id.clone();
    if plan.clawback.claw_back > 0 {
        let to = ledger::system_account(c, ctx.tenant, "clawback").await?;
        let transfer = NewTransfer::posted(
            format!("clawback:{}", refund.id),
            0,
            0,
            plan.clawback.claw_back,
            code::CLAWBACK,
        )
        .member(&member_id)
        .document("refund", &refund.id);
        ledger::debit(c, ctx, wallet, to, transfer, plan.clawback.may_go_negative).await?;
    }
    let (PendingChange::Repend { .. } | PendingChange::Void, Some(transfer_id)) =
        (plan.pending, loaded.earn_transfer_id)
    else {
        return Ok(None);
    };
    let pending = ledger::pending_transfer(c, ctx, transfer_id).await?;
    let voided = ledger::resolve_pending_credit(c, ctx, wallet, &pending, 0, None).await?;
    if voided != ledger::Resolution::Voided {
        return Err(StoreError::Corrupt(format!(
            "purchase {} is pending but its earning {transfer_id} was resolved",
            purchase.id
        )));
    }
    let PendingChange::Repend { stays } = plan.pending else {
        return Ok(Some(("voided".into(), loaded.earn_transfer_id)));
    };
    let transfer = NewTransfer {
        timeout_at: purchase.pending_until,
        ..NewTransfer::posted(
            format!("earn:{}:refund:{}", purchase.id, refund.id),
            0,
            0,
            stays,
            code::EARN,
        )
        .member(&member_id)
        .document("purchase", &purchase.id)
    };
    let id = ledger::next_transfer_id(c, ctx.backend).await?;
    let mut batch = Batch::new();
    ledger::credit_pending_batched(&mut batch, ctx, wallet, "issuance", transfer, id);
    batch.run(c, ctx.backend).await?;
    Ok(Some((purchase.earn_state.clone(), Some(id))))
}

/// The refund's row, with its receipt as the stored response.
async fn insert_refund(
    c: &mut Conn,
    ctx: LedgerCtx,
    refund: &NewRefund,
    receipt: &RefundReceipt,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO refunds (tenant_id, id, purchase_id, document_id, amount_minor, clawed_back_points, reduced_pending, \
         forgiven_points, occurred_at, request_hash, response, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
    )
    .bind(ctx.tenant.0)
    .bind(&refund.id)
    .bind(&receipt.purchase_id)
    .bind(&refund.document_id)
    .bind(receipt.amount_minor)
    .bind(receipt.clawed_back_points)
    .bind(receipt.reduced_pending_points)
    .bind(receipt.forgiven_points)
    .bind(time::to_db(refund.occurred_at))
    .bind(&refund.request_hash)
    .bind(serde_json::to_string(receipt)?)
    .bind(time::to_db(ctx.now))
    .execute(conn(c))
    .await?;
    Ok(())
}

/// The lines' refunded quantities and amounts.
async fn update_lines(
    c: &mut Conn,
    ctx: LedgerCtx,
    purchase_id: &str,
    plan: &RefundPlan,
) -> Result<(), StoreError> {
    for line in &plan.lines {
        sqlx::query(
            "UPDATE purchase_lines SET refunded_quantity = $4, refunded_minor = refunded_minor + $5 \
             WHERE tenant_id = $1 AND purchase_id = $2 AND line_no = $3",
        )
        .bind(ctx.tenant.0)
        .bind(purchase_id)
        .bind(line.line_no)
        .bind(line.refunded_quantity.to_string())
        .bind(line.amount_minor)
        .execute(conn(c))
        .await?;
    }
    Ok(())
}
