//! The inputs of the success metrics (docs/ANALYTICS.md, "Success metrics"): per reporting
//! period, aggregate sums and counts over purchases, members, coupon events and transfers.
//!
//! Every figure is one SQL aggregate over all periods at once: the periods are a `VALUES`
//! list joined to the table by time range (each period reads only its own rows through the
//! time indexes of migration 0008), grouped by period. Members at a period's end and points
//! outstanding are rolled forward from one opening count and the per-period changes, so no
//! query is O(periods × members). The store does the sums; the arithmetic on them
//! (percentages, liability in money, targets) is `patron_domain::metrics`.

use std::collections::BTreeMap;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use sqlx::any::{AnyArguments, AnyRow};
use sqlx::query::Query;
use sqlx::{Any, Row};

use crate::tenants::TenantId;
use crate::{Store, StoreError, time};

/// One reporting period and its activity windows, `[start, end)` each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MetricWindow {
    pub start: Timestamp,
    pub end: Timestamp,
    /// The current activity window is `[activity_start, end)`.
    pub activity_start: Timestamp,
    /// The previous activity window is `[previous_activity_start, activity_start)`.
    pub previous_activity_start: Timestamp,
}

/// The points ledger over one period (docs/LEDGER.md#invariants, 9): closing = opening + issued −
/// redeemed − expired − clawed back − forfeited + adjusted + other. Posted points only
/// (pending earnings count when they post); outstanding is the sum of the members' posted
/// balances, net of debts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct PointsFlow {
    pub opening: i64,
    /// Credited from the issuance account (purchases, events, joins, birthdays...).
    pub issued: i64,
    /// Spent on redemptions, net of reversed redemptions.
    pub redeemed: i64,
    pub expired: i64,
    pub clawed_back: i64,
    /// Taken when a member left under the `forfeit` exit policy.
    pub forfeited: i64,
    /// Signed: credits minus debits of manual adjustments.
    pub adjusted: i64,
    /// Signed: anything moved to or from another system account.
    pub other: i64,
    pub closing: i64,
}

/// One campaign's coupon events in a period: a promotion, or a reward's coupons.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CampaignCounts {
    pub promotion_id: Option<String>,
    pub reward_id: Option<String>,
    pub issued: i64,
    pub redeemed: i64,
    pub released: i64,
}

/// The raw figures of one period.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct PeriodCounts {
    /// Σ (total − refunded) of the purchases that occurred in the period (refunds count
    /// against the purchase's period), and the part of it on purchases linked to a member.
    pub revenue_minor: i64,
    pub identified_revenue_minor: i64,
    pub purchases: i64,
    pub identified_purchases: i64,
    /// Members (enrolled and not exited at the period's end) with a counted purchase in the
    /// current activity window.
    pub active_members: i64,
    /// Members with a counted purchase in the previous activity window.
    pub previous_active_members: i64,
    /// Of those, the ones with no counted purchase in the current window.
    pub churned_members: i64,
    /// Members enrolled before the period's end and not exited by then.
    pub members_at_end: i64,
    pub enrollments: i64,
    pub exits: i64,
    pub coupons_issued: i64,
    /// Redemptions minus releases (a cancelled order's coupon use is undone).
    pub coupons_redeemed: i64,
    pub coupons_released: i64,
    pub campaigns: Vec<CampaignCounts>,
    pub points: PointsFlow,
}

/// A campaign: (promotion id, reward id).
type CampaignKey = (Option<String>, Option<String>);

/// `WITH w(idx, s, e, a, pa) AS (VALUES ($k, ...), ...)`, placeholders from `first`.
fn windows_cte(first: usize, count: usize) -> String {
    let mut sql = String::from("WITH w(idx, s, e, a, pa) AS (VALUES ");
    for i in 0..count {
        let p = first + i * 5;
        if i > 0 {
            sql.push_str(", ");
        }
        sql.push_str(&format!(
            "(${}, ${}, ${}, ${}, ${})",
            p,
            p + 1,
            p + 2,
            p + 3,
            p + 4
        ));
    }
    sql.push_str(") ");
    sql
}

fn bind_windows<'q>(
    mut query: Query<'q, Any, AnyArguments<'q>>,
    windows: &[MetricWindow],
) -> Query<'q, Any, AnyArguments<'q>> {
    for (index, window) in windows.iter().enumerate() {
        query = query
            .bind(i64::try_from(index).unwrap_or(i64::MAX))
            .bind(time::to_db(window.start))
            .bind(time::to_db(window.end))
            .bind(time::to_db(window.activity_start))
            .bind(time::to_db(window.previous_activity_start));
    }
    query
}

fn index_of(row: &AnyRow, len: usize) -> Result<Option<usize>, StoreError> {
    let idx: i64 = row.try_get("idx")?;
    Ok(usize::try_from(idx).ok().filter(|i| *i < len))
}

/// The shared parts of the period queries: `$1` the tenant, `$2` the store (always bound),
/// then the windows' `VALUES` list from `$3`.
struct Periods<'a> {
    store: &'a Store,
    tenant: TenantId,
    windows: &'a [MetricWindow],
    store_id: Option<&'a str>,
    cte: String,
}

/// A member's purchase that counts for activity: linked to a member and not fully refunded.
const COUNTED: &str = "p.member_id IS NOT NULL AND p.total_minor > p.refunded_minor";

impl Periods<'_> {
    fn store_filter(&self, alias: &str) -> String {
        if self.store_id.is_some() {
            format!(" AND {alias}.store_id = $2")
        } else {
            // Every query binds $2; this keeps it referenced on both backends.
            " AND $2 = $2".to_owned()
        }
    }

    /// Runs `sql` (which starts with the windows' CTE) with the tenant, the store and the
    /// windows bound; yields each row with the index of its window.
    async fn rows(&self, sql: &str) -> Result<Vec<(usize, AnyRow)>, StoreError> {
        let query = sqlx::query(sql)
            .bind(self.tenant.0)
            .bind(self.store_id.unwrap_or(""));
        let rows = bind_windows(query, self.windows)
            .fetch_all(self.store.pool())
            .await?;
        let mut indexed = Vec::with_capacity(rows.len());
        for row in rows {
            if let Some(i) = index_of(&row, self.windows.len())? {
                indexed.push((i, row));
            }
        }
        Ok(indexed)
    }

    /// Revenue: purchases by when they occurred.
    async fn revenue(&self, out: &mut [PeriodCounts]) -> Result<(), StoreError> {
        let sql = format!(
            "{}SELECT w.idx, \
             CAST(COALESCE(SUM(p.total_minor - p.refunded_minor), 0) AS BIGINT) AS revenue, \
             CAST(COALESCE(SUM(CASE WHEN p.member_id IS NOT NULL THEN p.total_minor - p.refunded_minor ELSE 0 END), 0) AS BIGINT) AS identified, \
             CAST(COUNT(*) AS BIGINT) AS purchases, CAST(COUNT(p.member_id) AS BIGINT) AS identified_purchases \
             FROM w JOIN purchases p ON p.tenant_id = $1 AND p.occurred_at >= w.s AND p.occurred_at < w.e{} \
             GROUP BY w.idx",
            self.cte,
            self.store_filter("p")
        );
        for (i, row) in self.rows(&sql).await? {
            out[i].revenue_minor = row.try_get("revenue")?;
            out[i].identified_revenue_minor = row.try_get("identified")?;
            out[i].purchases = row.try_get("purchases")?;
            out[i].identified_purchases = row.try_get("identified_purchases")?;
        }
        Ok(())
    }

    /// Active members in the current window (still members at the period's end).
    async fn active_members(&self, out: &mut [PeriodCounts]) -> Result<(), StoreError> {
        let sql = format!(
            "{}SELECT w.idx, CAST(COUNT(DISTINCT p.member_id) AS BIGINT) AS n \
             FROM w JOIN purchases p ON p.tenant_id = $1 AND {COUNTED} \
             AND p.occurred_at >= w.a AND p.occurred_at < w.e{} \
             WHERE EXISTS (SELECT 1 FROM members m WHERE m.tenant_id = $1 AND m.id = p.member_id \
             AND m.enrolled_at < w.e AND (m.exited_at IS NULL OR m.exited_at >= w.e)) \
             GROUP BY w.idx",
            self.cte,
            self.store_filter("p")
        );
        for (i, row) in self.rows(&sql).await? {
            out[i].active_members = row.try_get("n")?;
        }
        Ok(())
    }

    /// Active in the previous window, and of those, without a purchase in the current one.
    async fn churn(&self, out: &mut [PeriodCounts]) -> Result<(), StoreError> {
        let sql = format!(
            "{}SELECT w.idx, CAST(COUNT(DISTINCT p.member_id) AS BIGINT) AS previous, \
             CAST(COUNT(DISTINCT CASE WHEN NOT EXISTS (SELECT 1 FROM purchases q WHERE q.tenant_id = $1 \
             AND q.member_id = p.member_id AND q.total_minor > q.refunded_minor \
             AND q.occurred_at >= w.a AND q.occurred_at < w.e{}) THEN p.member_id END) AS BIGINT) AS churned \
             FROM w JOIN purchases p ON p.tenant_id = $1 AND {COUNTED} \
             AND p.occurred_at >= w.pa AND p.occurred_at < w.a{} \
             GROUP BY w.idx",
            self.cte,
            self.store_filter("q"),
            self.store_filter("p")
        );
        for (i, row) in self.rows(&sql).await? {
            out[i].previous_active_members = row.try_get("previous")?;
            out[i].churned_members = row.try_get("churned")?;
        }
        Ok(())
    }

    /// Members: enrolled and exited before the first period, then per period, rolled forward.
    async fn membership(
        &self,
        first_start: Timestamp,
        out: &mut [PeriodCounts],
    ) -> Result<(), StoreError> {
        let row = sqlx::query(
            "SELECT CAST(COUNT(*) AS BIGINT) AS enrolled, \
             CAST(COUNT(CASE WHEN exited_at IS NOT NULL AND exited_at < $2 THEN 1 END) AS BIGINT) AS exited \
             FROM members WHERE tenant_id = $1 AND enrolled_at < $2",
        )
        .bind(self.tenant.0)
        .bind(time::to_db(first_start))
        .fetch_one(self.store.pool())
        .await?;
        let mut members: i64 =
            row.try_get::<i64, _>("enrolled")? - row.try_get::<i64, _>("exited")?;
        for (column, target) in [("enrolled_at", 0), ("exited_at", 1)] {
            let sql = format!(
                "{}SELECT w.idx, CAST(COUNT(*) AS BIGINT) AS n FROM w JOIN members m \
                 ON m.tenant_id = $1 AND m.{column} >= w.s AND m.{column} < w.e \
                 WHERE $2 = $2 GROUP BY w.idx",
                self.cte
            );
            for (i, row) in self.rows(&sql).await? {
                let count: i64 = row.try_get("n")?;
                if target == 0 {
                    out[i].enrollments = count;
                } else {
                    out[i].exits = count;
                }
            }
        }
        for period in out.iter_mut() {
            members += period.enrollments - period.exits;
            period.members_at_end = members;
        }
        Ok(())
    }

    /// Coupon events per campaign, and the period's totals over its campaigns.
    async fn coupons(&self, out: &mut [PeriodCounts]) -> Result<(), StoreError> {
        let sql = format!(
            "{}SELECT w.idx, c.event, c.promotion_id, c.reward_id, CAST(COUNT(*) AS BIGINT) AS n \
             FROM w JOIN coupon_events c ON c.tenant_id = $1 AND c.at >= w.s AND c.at < w.e \
             WHERE $2 = $2 AND c.event IN ('issued', 'redeemed', 'released') \
             GROUP BY w.idx, c.event, c.promotion_id, c.reward_id",
            self.cte
        );
        let mut campaigns: Vec<BTreeMap<CampaignKey, CampaignCounts>> =
            vec![BTreeMap::new(); out.len()];
        for (i, row) in self.rows(&sql).await? {
            let event: String = row.try_get("event")?;
            let promotion_id: Option<String> = row.try_get("promotion_id")?;
            let reward_id: Option<String> = row.try_get("reward_id")?;
            let count: i64 = row.try_get("n")?;
            let entry = campaigns[i]
                .entry((promotion_id.clone(), reward_id.clone()))
                .or_insert_with(|| CampaignCounts {
                    promotion_id,
                    reward_id,
                    issued: 0,
                    redeemed: 0,
                    released: 0,
                });
            match event.as_str() {
                "issued" => entry.issued += count,
                "redeemed" => entry.redeemed += count,
                _ => entry.released += count,
            }
        }
        for (period, campaigns) in out.iter_mut().zip(campaigns) {
            for mut campaign in campaigns.into_values() {
                period.coupons_issued += campaign.issued;
                period.coupons_released += campaign.released;
                period.coupons_redeemed += campaign.redeemed - campaign.released;
                campaign.redeemed -= campaign.released;
                period.campaigns.push(campaign);
            }
        }
        Ok(())
    }

    /// Points: the members' posted balances before the first period, then the flows between
    /// wallets and each system account per period, rolled forward.
    async fn points(
        &self,
        first_start: Timestamp,
        out: &mut [PeriodCounts],
    ) -> Result<(), StoreError> {
        let row = sqlx::query(
            "SELECT CAST(COALESCE(SUM(CASE WHEN c.member_id IS NOT NULL THEN t.amount ELSE 0 END), 0) AS BIGINT) AS credits, \
             CAST(COALESCE(SUM(CASE WHEN d.member_id IS NOT NULL THEN t.amount ELSE 0 END), 0) AS BIGINT) AS debits \
             FROM transfers t JOIN accounts c ON c.id = t.credit_account JOIN accounts d ON d.id = t.debit_account \
             WHERE t.tenant_id = $1 AND t.kind IN ('posted', 'post_pending') AND t.created_at < $2",
        )
        .bind(self.tenant.0)
        .bind(time::to_db(first_start))
        .fetch_one(self.store.pool())
        .await?;
        let mut outstanding: i64 =
            row.try_get::<i64, _>("credits")? - row.try_get::<i64, _>("debits")?;
        let sql = format!(
            "{}SELECT w.idx, s.kind, \
             CAST(COALESCE(SUM(CASE WHEN t.debit_account = s.id THEN t.amount ELSE 0 END), 0) AS BIGINT) AS to_wallets, \
             CAST(COALESCE(SUM(CASE WHEN t.credit_account = s.id THEN t.amount ELSE 0 END), 0) AS BIGINT) AS from_wallets \
             FROM w JOIN transfers t ON t.tenant_id = $1 AND t.kind IN ('posted', 'post_pending') \
             AND t.created_at >= w.s AND t.created_at < w.e \
             JOIN accounts s ON s.tenant_id = $1 AND s.member_id IS NULL \
             AND (s.id = t.debit_account OR s.id = t.credit_account) \
             WHERE $2 = $2 GROUP BY w.idx, s.kind",
            self.cte
        );
        for (i, row) in self.rows(&sql).await? {
            let kind: String = row.try_get("kind")?;
            let net: i64 =
                row.try_get::<i64, _>("to_wallets")? - row.try_get::<i64, _>("from_wallets")?;
            let flow = &mut out[i].points;
            match kind.as_str() {
                "issuance" => flow.issued += net,
                "redemption" => flow.redeemed -= net,
                "expiry" => flow.expired -= net,
                "clawback" => flow.clawed_back -= net,
                "forfeit" => flow.forfeited -= net,
                "adjustment" => flow.adjusted += net,
                _ => flow.other += net,
            }
        }
        for period in out.iter_mut() {
            let flow = &mut period.points;
            flow.opening = outstanding;
            outstanding +=
                flow.issued - flow.redeemed - flow.expired - flow.clawed_back - flow.forfeited
                    + flow.adjusted
                    + flow.other;
            flow.closing = outstanding;
        }
        Ok(())
    }
}

impl Store {
    /// The raw figures of each window, in order. `store_id` narrows the purchase figures
    /// (revenue, active, churn) to one store; the rest are club-wide. Windows must be
    /// contiguous and in order (each one's `start` the previous one's `end`): members and
    /// points are rolled forward from the first start.
    pub async fn period_metrics(
        &self,
        tenant: TenantId,
        windows: &[MetricWindow],
        store_id: Option<&str>,
    ) -> Result<Vec<PeriodCounts>, StoreError> {
        let mut out = vec![PeriodCounts::default(); windows.len()];
        let Some(first) = windows.first() else {
            return Ok(out);
        };
        let periods = Periods {
            store: self,
            tenant,
            windows,
            store_id,
            // $1 tenant, $2 the store (always bound, so the window placeholders start at 3).
            cte: windows_cte(3, windows.len()),
        };
        periods.revenue(&mut out).await?;
        periods.active_members(&mut out).await?;
        periods.churn(&mut out).await?;
        periods.membership(first.start, &mut out).await?;
        periods.coupons(&mut out).await?;
        periods.points(first.start, &mut out).await?;
        Ok(out)
    }

    /// The sum of the members' posted balances now (credits posted − debits posted), for
    /// checking a roll-forward against the stored totals.
    pub async fn outstanding_points(&self, tenant: TenantId) -> Result<i64, StoreError> {
        let row = sqlx::query(
            "SELECT CAST(COALESCE(SUM(credits_posted - debits_posted), 0) AS BIGINT) AS n \
             FROM accounts WHERE tenant_id = $1 AND member_id IS NOT NULL",
        )
        .bind(tenant.0)
        .fetch_one(self.pool())
        .await?;
        Ok(row.try_get("n")?)
    }
}
