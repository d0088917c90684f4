//! The member's tier metric and the upgrade after a posting.

use patron_domain::program::{Program, TierBasis};
use patron_domain::tier;
use sqlx::Row;

use super::TierStatus;
use crate::batch::Batch;
use crate::ledger::{self, LedgerCtx, Wallet};
use crate::wallet::{Balance, EXPIRING_LISTED_MAX, balance_of};
use crate::{Conn, StoreError, conn, time};

/// The query of the member's qualifying metric in the program's tier window, as of `now`
/// (`$1` tenant, `$2` member, `$3` window start, `$4` now), and its `$3`.
pub(crate) fn tier_metric_query(program: &Program, ctx: LedgerCtx) -> (String, i64) {
    let start = tier::window_start(&program.tiers.window, ctx.now, &program.calendar())
        .map(time::to_db)
        .unwrap_or(i64::MIN);
    let expression = match program.tiers.basis {
        TierBasis::Spend => "CAST(COALESCE(SUM(total_minor - refunded_minor), 0) AS BIGINT)",
        TierBasis::Visits => "CAST(COUNT(*) AS BIGINT)",
        TierBasis::PointsEarned => "CAST(COALESCE(SUM(points - settled_points), 0) AS BIGINT)",
    };
    // `occurred_at + 0`: the window must not be an index condition. PostgreSQL's generic plan
    // guesses a range of parameters to be narrow (0.5%) and then prefers the club-wide
    // `purchases_time` index over `purchases_member`, filtering every purchase of the club in
    // the window down to this member's (seen in the posting benchmark: 1 ms a purchase at
    // 3,000 purchases, growing with the club). A member's purchases are found by
    // `(tenant_id, member_id)` and the window is a filter on them; the index carries the
    // columns summed here (migration 12), so even a member with hundreds of purchases in the
    // window costs a few index pages, not a heap page each.
    let sql = format!(
        "SELECT {expression} AS metric FROM purchases WHERE tenant_id = $1 AND member_id = $2 \
         AND occurred_at + 0 >= $3 AND occurred_at + 0 <= $4 AND total_minor > refunded_minor"
    );
    (sql, start)
}

/// The member's qualifying metric in the program's tier window, as of `now`.
pub(crate) async fn tier_metric(
    c: &mut Conn,
    ctx: LedgerCtx,
    program: &Program,
    member_id: &str,
) -> Result<i64, StoreError> {
    let (sql, start) = tier_metric_query(program, ctx);
    let row = sqlx::query(&sql)
        .bind(ctx.tenant.0)
        .bind(member_id)
        .bind(start)
        .bind(time::to_db(ctx.now))
        .fetch_one(conn(c))
        .await?;
    Ok(row.try_get("metric")?)
}

/// Re-evaluates the member's tier after a posting: upgrades happen at once; downgrades wait
/// for the period end (the nightly job of the tier engine).
pub(crate) async fn update_tier(
    c: &mut Conn,
    ctx: LedgerCtx,
    program: &Program,
    member_id: &str,
    current: &str,
) -> Result<TierStatus, StoreError> {
    let metric = tier_metric(c, ctx, program, member_id).await?;
    decide_tier(c, ctx, program, member_id, current, metric).await
}

/// [`update_tier`] and [`balance_in`] of the end of a posting, with one query for both reads
/// (the tier metric, and the wallet's points expiring soonest).
pub(super) async fn update_tier_and_balance(
    c: &mut Conn,
    ctx: LedgerCtx,
    program: &Program,
    member_id: &str,
    current: &str,
    wallet: &Wallet,
) -> Result<(TierStatus, Balance), StoreError> {
    let (metric_sql, start) = tier_metric_query(program, ctx);
    let sql = format!(
        "SELECT 0 AS part, CAST(NULL AS BIGINT) AS expires_at, metric AS amount FROM ({metric_sql}) m \
         UNION ALL SELECT 1 AS part, expires_at, points AS amount FROM ({}) e ORDER BY part, expires_at",
        ledger::expiring_sql("$5", "$4", "$6")
    );
    let rows = sqlx::query(&sql)
        .bind(ctx.tenant.0)
        .bind(member_id)
        .bind(start)
        .bind(time::to_db(ctx.now))
        .bind(wallet.account_id)
        .bind(EXPIRING_LISTED_MAX)
        .fetch_all(conn(c))
        .await?;
    let mut metric = 0;
    let mut expiring = Vec::new();
    for row in &rows {
        let amount: i64 = row.try_get("amount")?;
        match row.try_get::<i64, _>("part")? {
            0 => metric = amount,
            _ => expiring.push((time::from_db(row.try_get("expires_at")?)?, amount)),
        }
    }
    let tier = decide_tier(c, ctx, program, member_id, current, metric).await?;
    Ok((tier, balance_of(wallet, expiring)))
}

/// Upgrades the member at once when `metric` qualifies for a higher tier.
async fn decide_tier(
    c: &mut Conn,
    ctx: LedgerCtx,
    program: &Program,
    member_id: &str,
    current: &str,
    metric: i64,
) -> Result<TierStatus, StoreError> {
    let mut batch = Batch::new();
    let tier = decide_tier_in(&mut batch, ctx, program, member_id, current, metric);
    // One statement at most: it is sent as it is, whatever the backend.
    batch.run(c, ctx.backend).await?;
    Ok(tier)
}

/// [`decide_tier`] with the upgrade, if any, as a statement of `batch`.
pub(super) fn decide_tier_in(
    batch: &mut Batch,
    ctx: LedgerCtx,
    program: &Program,
    member_id: &str,
    current: &str,
    metric: i64,
) -> TierStatus {
    let mut code = current.to_string();
    let mut upgraded_from = None;
    if let tier::TierDecision::Upgrade(to) = tier::decide(&program.tiers, current, metric) {
        batch.push(
            "UPDATE members SET tier = $3, tier_since = $4, updated_at = $4 WHERE tenant_id = $1 AND id = $2",
            vec![
                ctx.tenant.0.into(),
                member_id.into(),
                (&to).into(),
                time::to_db(ctx.now).into(),
            ],
        );
        upgraded_from = Some(code.clone());
        code = to;
    }
    let progress = tier::progress(&program.tiers, &code, metric);
    TierStatus {
        code,
        upgraded_from,
        metric,
        next: progress.next,
        needed_for_next: progress.needed_for_next,
    }
}
