//! Attaching an anonymous purchase to a member (who then earns for it as if identified at the
//! till, net of what was refunded since), and posting the pending earnings whose return
//! window has closed.

use jiff::Timestamp;
use patron_domain::posting::{self, Earning};
use patron_domain::program::Program;
use patron_domain::rules::TriggerKind;
use sqlx::Row;

use super::{
    Credit, EarnDecision, MemberReads, PurchaseReceipt, PurchaseRow, credit_earn,
    inactivity_deadline, load_purchase, lot_expiry, update_tier,
};
use crate::batch::Batch;
use crate::idempotency::{Claim, Idempotent};
use crate::ledger::{self, LedgerCtx, Wallet};
use crate::members::lock_wallet_with_member;
use crate::rules;
use crate::segments;
use crate::stats;
use crate::tenants::TenantId;
use crate::wallet::balance_in;
use crate::{Conn, Rejection, Store, StoreError, conn, idempotent_unit, time, unit_of_work};

impl Store {
    /// Attaches an anonymous purchase to a member, who then earns for it as if it had been
    /// identified at the till (net of anything refunded since).
    #[allow(clippy::too_many_arguments)]
    pub async fn attach_purchase(
        &self,
        tenant: TenantId,
        program: &Program,
        purchase_id: &str,
        member_id: &str,
        decide: EarnDecision<'_>,
        claims: &[Claim],
        now: Timestamp,
    ) -> Result<Idempotent<PurchaseReceipt>, StoreError> {
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
                attach_in(c, ctx, program, purchase_id, member_id, decide).await
            }
        )
    }
    /// Posts the pending earnings whose return window has closed by `now` (at most `limit`
    /// of them), each with a lot that expires from the instant the window closed. Returns
    /// how many were resolved. Safe to run concurrently and repeatedly: a pending transfer
    /// resolves once.
    pub async fn activate_due_pending(
        &self,
        tenant: TenantId,
        program: &Program,
        now: Timestamp,
        limit: i64,
    ) -> Result<u64, StoreError> {
        let due = sqlx::query(
            "SELECT p.id, p.member_id FROM purchases p WHERE p.tenant_id = $1 AND p.earn_state = 'pending' \
             AND p.pending_until <= $2 ORDER BY p.pending_until LIMIT $3",
        )
        .bind(tenant.0)
        .bind(time::to_db(now))
        .bind(limit.clamp(1, 10_000))
        .fetch_all(self.pool())
        .await?;
        let mut activated = 0;
        for row in due {
            let purchase_id: String = row.try_get("id")?;
            let member_id: Option<String> = row.try_get("member_id")?;
            if member_id.is_none() {
                continue;
            }
            let ctx = LedgerCtx {
                tenant,
                backend: self.backend(),
                now,
            };
            let done = unit_of_work!(self, |tx| async {
                // The purchase row first, then its member's wallet: the order of a refund and
                // of an attach, which lock the purchase they change before the wallet. The
                // other order let a refund racing this job deadlock on PostgreSQL (one of the
                // two was then retried).
                let loaded = load_purchase(&mut tx, ctx, &purchase_id, true).await?;
                let Some(member_id) = loaded.purchase.member_id.clone() else {
                    return Ok(false);
                };
                let mut wallet = ledger::lock_wallets(&mut tx, ctx, &[member_id.as_str()])
                    .await?
                    .remove(0);
                activate_in(&mut tx, ctx, program, &mut wallet, loaded).await
            }
            .await)?;
            if done {
                activated += 1;
            }
        }
        Ok(activated)
    }
}

/// Posts the pending earning of one purchase whose window has closed (`loaded` read under
/// its row lock, then the wallet locked). Returns false when someone else resolved it first.
async fn activate_in(
    c: &mut Conn,
    ctx: LedgerCtx,
    program: &Program,
    wallet: &mut Wallet,
    loaded: PurchaseRow,
) -> Result<bool, StoreError> {
    let purchase = &loaded.purchase;
    let purchase_id = purchase.id.as_str();
    let (Some(transfer_id), "pending", Some(until)) = (
        loaded.earn_transfer_id,
        purchase.earn_state.as_str(),
        purchase.pending_until,
    ) else {
        return Ok(false);
    };
    if until > ctx.now {
        return Ok(false);
    }
    // Expire what is due first, as every other unit of work on a wallet does: posting the
    // earning touches the inactivity clock, which would otherwise revive points whose
    // inactivity deadline passed before this job ran.
    ledger::expire_due(c, ctx, wallet).await?;
    let pending = ledger::pending_transfer(c, ctx, transfer_id).await?;
    let amount = purchase.points - purchase.settled_points;
    let resolution = ledger::resolve_pending_credit(
        c,
        ctx,
        wallet,
        &pending,
        amount,
        lot_expiry(program, until),
    )
    .await?;
    if resolution == ledger::Resolution::AlreadyResolved {
        return Ok(false);
    }
    let state = if amount > 0 { "posted" } else { "voided" };
    sqlx::query("UPDATE purchases SET earn_state = $3 WHERE tenant_id = $1 AND id = $2")
        .bind(ctx.tenant.0)
        .bind(purchase_id)
        .bind(state)
        .execute(conn(c))
        .await?;
    if amount > 0 {
        ledger::touch_activity(c, wallet, ctx.now, inactivity_deadline(program, ctx.now)).await?;
    }
    Ok(true)
}
async fn attach_in(
    c: &mut Conn,
    ctx: LedgerCtx,
    program: &Program,
    purchase_id: &str,
    member_id: &str,
    decide: EarnDecision<'_>,
) -> Result<PurchaseReceipt, StoreError> {
    let loaded = load_purchase(c, ctx, purchase_id, true).await?;
    let purchase = &loaded.purchase;
    if purchase.member_id.is_some() {
        return Err(Rejection::AlreadyAttached {
            purchase_id: purchase_id.to_string(),
        }
        .into());
    }
    // The wallet lock first, then the member (see `post_purchase_in`).
    let (mut wallet, member) = lock_wallet_with_member(c, ctx, member_id).await?;
    if !member.is_active() {
        return Err(Rejection::MemberExited {
            member_id: member_id.to_string(),
        }
        .into());
    }
    let periods = rules::limit_periods(program, TriggerKind::Purchase, purchase.occurred_at);
    let usage = rules::usage_in(c, ctx.tenant, member_id, &periods).await?;
    let reads = rule_reads(c, ctx, member_id, decide).await?;
    let earn = (decide.decide)(&member, &usage, &reads)?;
    ledger::expire_due(c, ctx, &mut wallet).await?;
    // Earn on what was kept: what was refunded before attaching never earned.
    let eligible_refunded: i64 = loaded
        .purchase
        .lines
        .iter()
        .zip(&loaded.line_refunded_minor)
        .filter(|(line, _)| line.eligible)
        .map(|(_, refunded_minor)| refunded_minor)
        .sum();
    let (points, settled, credited) =
        posting::attach_earning(earn.points, purchase.eligible_minor, eligible_refunded);
    let earning = posting::decide_earning(credited, earn.pending_until, ctx.now);
    let mut batch = Batch::new();
    let id = ledger::next_transfer_id(c, ctx.backend).await?;
    let credit = Credit {
        purchase_id,
        points: credited,
        earning,
        id,
    };
    let transfer_id = credit_earn(c, &mut batch, ctx, program, &mut wallet, credit).await?;
    batch.run(c, ctx.backend).await?;
    let earned = Attached {
        points,
        settled,
        earning,
        transfer_id,
    };
    write_attachment(c, ctx, purchase_id, member_id, &earned).await?;
    stats::record_purchase(c, ctx, &program.tz(), purchase_id).await?;
    let awards = rules::Awards {
        member_id,
        source_type: "purchase",
        source_id: purchase_id,
        awards: &earn.awards,
        periods: &periods,
        occurred_at: purchase.occurred_at,
    };
    rules::record_awards(c, ctx, awards).await?;
    if let Some(referral) = &earn.referral {
        rules::pay_referral(
            c,
            ctx,
            program,
            &member,
            purchase_id,
            purchase.occurred_at,
            referral,
        )
        .await?;
    }
    let tier = update_tier(c, ctx, program, member_id, &member.tier).await?;
    let balance = balance_in(c, ctx, &wallet).await?;
    Ok(PurchaseReceipt {
        purchase_id: purchase_id.to_string(),
        document_id: purchase.document_id.clone(),
        member_id: Some(member_id.to_string()),
        points: credited,
        base_points: earn.base_points,
        rules: earn.awards.clone(),
        points_state: earning.code().to_string(),
        pending_until: earning.pending_until(),
        balance: Some(balance),
        tier: Some(tier),
    })
}

/// What the rules read about the member besides the member row, read only when they do.
async fn rule_reads(
    c: &mut Conn,
    ctx: LedgerCtx,
    member_id: &str,
    decide: EarnDecision<'_>,
) -> Result<MemberReads, StoreError> {
    Ok(MemberReads {
        statistics: if decide.reads_statistics {
            stats::member_stats_in(c, ctx.backend, ctx.tenant, member_id).await?
        } else {
            None
        },
        segments: if decide.reads_segments {
            segments::member_segments_in(c, ctx.backend, ctx.tenant, member_id).await?
        } else {
            Vec::new()
        },
    })
}

/// What an attached purchase earned, as its row stores it.
struct Attached {
    points: i64,
    settled: i64,
    earning: Earning,
    transfer_id: Option<i64>,
}

/// The purchase's row, now the member's, with what it earned.
async fn write_attachment(
    c: &mut Conn,
    ctx: LedgerCtx,
    purchase_id: &str,
    member_id: &str,
    earned: &Attached,
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE purchases SET member_id = $3, attached_at = $4, points = $5, settled_points = $6, earn_state = $7, \
         earn_transfer_id = $8, pending_until = $9 WHERE tenant_id = $1 AND id = $2",
    )
    .bind(ctx.tenant.0)
    .bind(purchase_id)
    .bind(member_id)
    .bind(time::to_db(ctx.now))
    .bind(earned.points)
    .bind(earned.settled)
    .bind(earned.earning.code())
    .bind(earned.transfer_id)
    .bind(earned.earning.pending_until().map(time::to_db))
    .execute(conn(c))
    .await?;
    Ok(())
}
