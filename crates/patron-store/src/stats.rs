//! Member statistics kept as purchases arrive (docs/ANALYTICS.md, "Member statistics").
//!
//! `member_stats` and `member_category_spend` are updated in the unit of work of every
//! purchase, refund and attach of a member's purchase ([`record_purchase`],
//! [`record_refund`]), under the member's wallet lock, so they never disagree with the
//! purchases they summarise. [`Store::rebuild_member_stats`] recomputes them from
//! `purchases`/`purchase_lines` and reports (and optionally fixes) every difference.
//!
//! Definitions (the same as `patron_analytics::summary`, which works on files):
//! - A purchase *counts* while it is not fully refunded (`total_minor > refunded_minor`, as
//!   the tier metric counts visits). Anonymous purchases have no member statistics; they
//!   count from the moment they are attached to a member.
//! - `purchases`: counted purchase documents. `purchase_days`: distinct days (in the club's
//!   time zone) with a counted purchase. Days are day numbers, days since 1970-01-01, as
//!   `patron_analytics::date::Day`.
//! - `spend_minor`: Σ (total − refunded) over the member's purchases. `first_day_spend_minor`
//!   is the part of it on the first purchase day, `repeat_spend_minor` the rest (spend on the
//!   purchase days after the first: the Gamma-Gamma numerator).
//! - BG/NBD, as of any instant at or after the last purchase: x = `purchase_days − 1`,
//!   t_x = `last_purchase_day − first_purchase_day`, T = as-of day − `first_purchase_day`
//!   (in days; divide by 7 for weeks).
//! - Per category: Σ (line total − line refunded) over counted purchases, and the counted
//!   purchases with at least one line in the category.
//!
//! Each purchase and each partial refund costs O(its lines): the "did the member already buy
//! that day" question compares with the first and last purchase days and queries only for a
//! back-dated purchase between them. A full refund can move the first or last day, so it
//! recomputes that one member from their history.

use std::collections::{BTreeMap, BTreeSet};

use jiff::Timestamp;
use jiff::tz::TimeZone;
use serde::{Deserialize, Serialize};
use sqlx::Row;

use crate::batch::{Batch, Param};
use crate::ledger::LedgerCtx;
use crate::tenants::TenantId;
use crate::{Backend, Conn, Store, StoreError, conn, time, unit_of_work};

/// One member's statistics.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberStats {
    pub member_id: String,
    pub first_purchase_at: Timestamp,
    pub last_purchase_at: Timestamp,
    /// Days since 1970-01-01 in the club's time zone.
    pub first_purchase_day: i64,
    pub last_purchase_day: i64,
    pub purchases: i64,
    pub purchase_days: i64,
    pub spend_minor: i64,
    pub first_day_spend_minor: i64,
    pub repeat_spend_minor: i64,
    pub updated_at: Timestamp,
    pub categories: Vec<CategorySpend>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CategorySpend {
    pub category: String,
    pub spend_minor: i64,
    pub purchases: i64,
}

impl MemberStats {
    /// BG/NBD x: purchase days after the first.
    pub fn repeat_purchases(&self) -> i64 {
        (self.purchase_days - 1).max(0)
    }

    /// BG/NBD t_x in days: from the first purchase day to the last.
    pub fn t_x_days(&self) -> i64 {
        self.last_purchase_day - self.first_purchase_day
    }

    /// BG/NBD T in days as of `as_of` (at or after the last purchase).
    pub fn t_days(&self, as_of: Timestamp, tz: &TimeZone) -> i64 {
        day_number(as_of, tz) - self.first_purchase_day
    }

    /// The Gamma-Gamma average repeat spend, minor units; `None` without repeat purchases.
    pub fn average_repeat_spend_minor(&self) -> Option<f64> {
        let x = self.repeat_purchases();
        (x > 0).then(|| self.repeat_spend_minor as f64 / x as f64)
    }

    /// Spend per counted purchase, minor units; `None` without purchases.
    pub fn average_spend_minor(&self) -> Option<f64> {
        (self.purchases > 0).then(|| self.spend_minor as f64 / self.purchases as f64)
    }
}

/// One field that differs between the stored statistics and the recomputed ones. `None` on a
/// side when that side has no row (no statistics, or no such category).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatsDifference {
    pub member_id: String,
    /// A column of `member_stats` (`purchases`), or `category[NAME].spend_minor|purchases`.
    pub field: String,
    pub stored: Option<String>,
    pub recomputed: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatsRebuild {
    /// Members with statistics after the recomputation.
    pub members: u64,
    pub differences: Vec<StatsDifference>,
    /// Whether the differing members were rewritten (false for a dry run).
    pub fixed: bool,
}

/// The day number (days since 1970-01-01) of an instant in `tz`.
pub fn day_number(at: Timestamp, tz: &TimeZone) -> i64 {
    let date = at.to_zoned(tz.clone()).date();
    days_from_civil(
        i64::from(date.year()),
        i64::from(date.month()),
        i64::from(date.day()),
    )
}

/// Days from 1970-01-01 to a proleptic Gregorian date (the algorithm of
/// `patron_analytics::date::Day::from_ymd`).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let year_of_era = y - era * 400;
    let month_from_march = (month + 9) % 12;
    let day_of_year = (153 * month_from_march + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// The statistics as numbers, the form both the incremental updates and the rebuild use.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
struct StatsRow {
    first_at: i64,
    last_at: i64,
    first_day: i64,
    last_day: i64,
    purchases: i64,
    purchase_days: i64,
    spend: i64,
    first_day_spend: i64,
    repeat_spend: i64,
    /// category → (spend, purchases)
    categories: BTreeMap<String, (i64, i64)>,
}

impl StatsRow {
    fn fields(&self) -> [(&'static str, String); 9] {
        let at = |micros: i64| {
            time::from_db(micros)
                .map(|t| t.to_string())
                .unwrap_or_else(|_| micros.to_string())
        };
        [
            ("first_purchase_at", at(self.first_at)),
            ("last_purchase_at", at(self.last_at)),
            ("first_purchase_day", self.first_day.to_string()),
            ("last_purchase_day", self.last_day.to_string()),
            ("purchases", self.purchases.to_string()),
            ("purchase_days", self.purchase_days.to_string()),
            ("spend_minor", self.spend.to_string()),
            ("first_day_spend_minor", self.first_day_spend.to_string()),
            ("repeat_spend_minor", self.repeat_spend.to_string()),
        ]
    }
}

const STATS_COLUMNS: &str = "member_id, first_purchase_at, last_purchase_at, first_purchase_day, last_purchase_day, \
     purchases, purchase_days, spend_minor, first_day_spend_minor, repeat_spend_minor, updated_at";

fn row_from(row: &sqlx::any::AnyRow) -> Result<StatsRow, StoreError> {
    Ok(StatsRow {
        first_at: row.try_get("first_purchase_at")?,
        last_at: row.try_get("last_purchase_at")?,
        first_day: row.try_get("first_purchase_day")?,
        last_day: row.try_get("last_purchase_day")?,
        purchases: row.try_get("purchases")?,
        purchase_days: row.try_get("purchase_days")?,
        spend: row.try_get("spend_minor")?,
        first_day_spend: row.try_get("first_day_spend_minor")?,
        repeat_spend: row.try_get("repeat_spend_minor")?,
        categories: BTreeMap::new(),
    })
}

/// The stored rows of a tenant (or of one member), with their categories.
async fn load_stored(
    c: &mut Conn,
    tenant: TenantId,
    member: Option<&str>,
    lock: Option<Backend>,
) -> Result<BTreeMap<String, StatsRow>, StoreError> {
    let filter = if member.is_some() {
        " AND member_id = $2"
    } else {
        ""
    };
    let sql = format!(
        "SELECT {STATS_COLUMNS} FROM member_stats WHERE tenant_id = $1{filter}{}",
        lock.map(Backend::for_update).unwrap_or("")
    );
    let mut query = sqlx::query(&sql).bind(tenant.0);
    if let Some(member) = member {
        query = query.bind(member);
    }
    let mut stored = BTreeMap::new();
    for row in query.fetch_all(conn(c)).await? {
        stored.insert(row.try_get::<String, _>("member_id")?, row_from(&row)?);
    }
    let sql = format!(
        "SELECT member_id, category, spend_minor, purchases FROM member_category_spend WHERE tenant_id = $1{filter}"
    );
    let mut query = sqlx::query(&sql).bind(tenant.0);
    if let Some(member) = member {
        query = query.bind(member);
    }
    for row in query.fetch_all(conn(c)).await? {
        let member_id: String = row.try_get("member_id")?;
        let entry = (row.try_get("spend_minor")?, row.try_get("purchases")?);
        // A category row without its member row is a difference too: keep it visible.
        stored
            .entry(member_id)
            .or_insert_with(StatsRow::default)
            .categories
            .insert(row.try_get("category")?, entry);
    }
    Ok(stored)
}

/// Recomputes the statistics of a tenant (or of one member) from the purchase history.
async fn recompute(
    c: &mut Conn,
    tenant: TenantId,
    member: Option<&str>,
    tz: &TimeZone,
) -> Result<BTreeMap<String, StatsRow>, StoreError> {
    let filter = if member.is_some() {
        " AND p.member_id = $2"
    } else {
        ""
    };
    let sql = format!(
        "SELECT p.id, p.member_id, p.occurred_at, p.total_minor, p.refunded_minor FROM purchases p \
         WHERE p.tenant_id = $1 AND p.member_id IS NOT NULL AND p.total_minor > p.refunded_minor{filter}"
    );
    let mut query = sqlx::query(&sql).bind(tenant.0);
    if let Some(member) = member {
        query = query.bind(member);
    }
    // member → [(purchase id, occurred_at, net)]
    let mut history: BTreeMap<String, Vec<(String, i64, i64)>> = BTreeMap::new();
    for row in query.fetch_all(conn(c)).await? {
        let total: i64 = row.try_get("total_minor")?;
        let refunded: i64 = row.try_get("refunded_minor")?;
        history.entry(row.try_get("member_id")?).or_default().push((
            row.try_get("id")?,
            row.try_get("occurred_at")?,
            total - refunded,
        ));
    }
    let sql = format!(
        "SELECT l.purchase_id, l.category, l.total_minor, l.refunded_minor FROM purchase_lines l \
         JOIN purchases p ON p.tenant_id = l.tenant_id AND p.id = l.purchase_id \
         WHERE l.tenant_id = $1 AND p.member_id IS NOT NULL AND p.total_minor > p.refunded_minor{filter}"
    );
    let mut query = sqlx::query(&sql).bind(tenant.0);
    if let Some(member) = member {
        query = query.bind(member);
    }
    // purchase → category → net
    let mut lines: BTreeMap<String, BTreeMap<String, i64>> = BTreeMap::new();
    for row in query.fetch_all(conn(c)).await? {
        let total: i64 = row.try_get("total_minor")?;
        let refunded: i64 = row.try_get("refunded_minor")?;
        *lines
            .entry(row.try_get("purchase_id")?)
            .or_default()
            .entry(row.try_get("category")?)
            .or_default() += total - refunded;
    }
    let mut computed = BTreeMap::new();
    for (member_id, purchases) in history {
        let mut row = StatsRow {
            first_at: i64::MAX,
            last_at: i64::MIN,
            ..StatsRow::default()
        };
        let mut days = BTreeSet::new();
        let mut by_day: Vec<(i64, i64)> = Vec::with_capacity(purchases.len());
        for (id, at, net) in &purchases {
            let day = day_number(time::from_db(*at)?, tz);
            days.insert(day);
            by_day.push((day, *net));
            row.first_at = row.first_at.min(*at);
            row.last_at = row.last_at.max(*at);
            row.purchases += 1;
            row.spend += net;
            for (category, spend) in lines.get(id).into_iter().flatten() {
                let entry = row.categories.entry(category.clone()).or_default();
                entry.0 += spend;
                entry.1 += 1;
            }
        }
        row.first_day = days.first().copied().unwrap_or_default();
        row.last_day = days.last().copied().unwrap_or_default();
        row.purchase_days = days.len() as i64;
        row.first_day_spend = by_day
            .iter()
            .filter(|(day, _)| *day == row.first_day)
            .map(|(_, net)| net)
            .sum();
        row.repeat_spend = row.spend - row.first_day_spend;
        computed.insert(member_id, row);
    }
    Ok(computed)
}

/// Every difference between two sets of rows, member by member, field by field.
fn compare(
    stored: &BTreeMap<String, StatsRow>,
    recomputed: &BTreeMap<String, StatsRow>,
) -> Vec<StatsDifference> {
    let members: BTreeSet<&String> = stored.keys().chain(recomputed.keys()).collect();
    let mut differences = Vec::new();
    for member in members {
        let (old, new) = (stored.get(member), recomputed.get(member));
        // A stored entry made only of orphan category rows has no member row.
        let old_main = old.filter(|row| row.purchases != 0 || row.first_at != 0);
        let old_fields = old_main.map(StatsRow::fields);
        let new_fields = new.map(StatsRow::fields);
        for i in 0..9 {
            let a = old_fields.as_ref().map(|f| f[i].1.clone());
            let b = new_fields.as_ref().map(|f| f[i].1.clone());
            if a != b {
                let name = old_fields
                    .as_ref()
                    .or(new_fields.as_ref())
                    .map(|f| f[i].0)
                    .unwrap_or("?");
                differences.push(StatsDifference {
                    member_id: member.clone(),
                    field: name.to_string(),
                    stored: a,
                    recomputed: b,
                });
            }
        }
        let empty = BTreeMap::new();
        let old_categories = old.map(|r| &r.categories).unwrap_or(&empty);
        let new_categories = new.map(|r| &r.categories).unwrap_or(&empty);
        let categories: BTreeSet<&String> =
            old_categories.keys().chain(new_categories.keys()).collect();
        for category in categories {
            let (a, b) = (old_categories.get(category), new_categories.get(category));
            for (field, pick) in [
                (
                    "spend_minor",
                    (|v: &(i64, i64)| v.0) as fn(&(i64, i64)) -> i64,
                ),
                ("purchases", |v: &(i64, i64)| v.1),
            ] {
                let (a, b) = (a.map(pick), b.map(pick));
                if a != b {
                    differences.push(StatsDifference {
                        member_id: member.clone(),
                        field: format!("category[{category}].{field}"),
                        stored: a.map(|v| v.to_string()),
                        recomputed: b.map(|v| v.to_string()),
                    });
                }
            }
        }
    }
    differences
}

async fn delete_member(c: &mut Conn, tenant: TenantId, member: &str) -> Result<(), StoreError> {
    for table in ["member_stats", "member_category_spend"] {
        sqlx::query(&format!(
            "DELETE FROM {table} WHERE tenant_id = $1 AND member_id = $2"
        ))
        .bind(tenant.0)
        .bind(member)
        .execute(conn(c))
        .await?;
    }
    Ok(())
}

async fn insert_member(
    c: &mut Conn,
    tenant: TenantId,
    member: &str,
    row: &StatsRow,
    now: Timestamp,
) -> Result<(), StoreError> {
    sqlx::query(&format!(
        "INSERT INTO member_stats (tenant_id, {STATS_COLUMNS}) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
    ))
    .bind(tenant.0)
    .bind(member)
    .bind(row.first_at)
    .bind(row.last_at)
    .bind(row.first_day)
    .bind(row.last_day)
    .bind(row.purchases)
    .bind(row.purchase_days)
    .bind(row.spend)
    .bind(row.first_day_spend)
    .bind(row.repeat_spend)
    .bind(time::to_db(now))
    .execute(conn(c))
    .await?;
    for (category, (spend, purchases)) in &row.categories {
        sqlx::query(
            "INSERT INTO member_category_spend (tenant_id, member_id, category, spend_minor, purchases) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(tenant.0)
        .bind(member)
        .bind(category)
        .bind(spend)
        .bind(purchases)
        .execute(conn(c))
        .await?;
    }
    Ok(())
}

/// Recomputes one member's rows from their history (a full refund can move the first or
/// last purchase day; O(the member's purchases)).
async fn rebuild_member_in(
    c: &mut Conn,
    ctx: LedgerCtx,
    tz: &TimeZone,
    member: &str,
) -> Result<(), StoreError> {
    let recomputed = recompute(c, ctx.tenant, Some(member), tz).await?;
    delete_member(c, ctx.tenant, member).await?;
    if let Some(row) = recomputed.get(member) {
        insert_member(c, ctx.tenant, member, row, ctx.now).await?;
    }
    Ok(())
}

struct PurchaseFacts {
    member_id: Option<String>,
    occurred_at: i64,
    total: i64,
    refunded: i64,
}

async fn purchase_facts(
    c: &mut Conn,
    tenant: TenantId,
    purchase_id: &str,
) -> Result<PurchaseFacts, StoreError> {
    let row = sqlx::query(
        "SELECT member_id, occurred_at, total_minor, refunded_minor FROM purchases WHERE tenant_id = $1 AND id = $2",
    )
    .bind(tenant.0)
    .bind(purchase_id)
    .fetch_one(conn(c))
    .await?;
    Ok(PurchaseFacts {
        member_id: row.try_get("member_id")?,
        occurred_at: row.try_get("occurred_at")?,
        total: row.try_get("total_minor")?,
        refunded: row.try_get("refunded_minor")?,
    })
}

async fn update_member_row(
    c: &mut Conn,
    ctx: LedgerCtx,
    member: &str,
    row: &StatsRow,
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE member_stats SET first_purchase_at = $3, last_purchase_at = $4, first_purchase_day = $5, \
         last_purchase_day = $6, purchases = $7, purchase_days = $8, spend_minor = $9, first_day_spend_minor = $10, \
         repeat_spend_minor = $11, updated_at = $12 WHERE tenant_id = $1 AND member_id = $2",
    )
    .bind(ctx.tenant.0)
    .bind(member)
    .bind(row.first_at)
    .bind(row.last_at)
    .bind(row.first_day)
    .bind(row.last_day)
    .bind(row.purchases)
    .bind(row.purchase_days)
    .bind(row.spend)
    .bind(row.first_day_spend)
    .bind(row.repeat_spend)
    .bind(time::to_db(ctx.now))
    .execute(conn(c))
    .await?;
    Ok(())
}

/// Adds a member's purchase to their statistics: call in the unit of work that stored it
/// (posted with a member, or attached to one), after the purchase row and its lines are
/// written. Reads the purchase back, so an attached purchase counts net of what was refunded
/// before it was attached. Anonymous and fully refunded purchases change nothing.
pub(crate) async fn record_purchase(
    c: &mut Conn,
    ctx: LedgerCtx,
    tz: &TimeZone,
    purchase_id: &str,
) -> Result<(), StoreError> {
    let facts = purchase_facts(c, ctx.tenant, purchase_id).await?;
    let Some(member) = facts.member_id.as_deref() else {
        return Ok(());
    };
    let lines = sqlx::query(
        "SELECT category, total_minor, refunded_minor FROM purchase_lines WHERE tenant_id = $1 AND purchase_id = $2",
    )
    .bind(ctx.tenant.0)
    .bind(purchase_id)
    .fetch_all(conn(c))
    .await?;
    let mut categories: BTreeMap<String, i64> = BTreeMap::new();
    for line in lines {
        let total: i64 = line.try_get("total_minor")?;
        let refunded: i64 = line.try_get("refunded_minor")?;
        *categories.entry(line.try_get("category")?).or_default() += total - refunded;
    }
    let counted = Counted {
        member,
        purchase_id,
        occurred_at: facts.occurred_at,
        net: facts.total - facts.refunded,
        categories,
    };
    record_counted(c, ctx, tz, &counted).await
}

/// [`record_purchase`] for a purchase posted in this unit of work, from what the caller holds
/// (nothing is refunded yet), as statements of the caller's `batch`: no reads.
pub(crate) fn push_new_purchase(
    batch: &mut Batch,
    ctx: LedgerCtx,
    tz: &TimeZone,
    purchase: &crate::purchases::records::NewPurchase,
) -> Result<(), StoreError> {
    let Some(member) = purchase.member_id.as_deref() else {
        return Ok(());
    };
    let mut categories: BTreeMap<String, i64> = BTreeMap::new();
    for line in &purchase.lines {
        *categories.entry(line.category.clone()).or_default() += line.total_minor;
    }
    let counted = Counted {
        member,
        purchase_id: &purchase.id,
        occurred_at: time::to_db(purchase.occurred_at),
        net: purchase.total_minor,
        categories,
    };
    push_counted(batch, ctx, tz, &counted)
}

/// A purchase as the statistics count it.
struct Counted<'a> {
    member: &'a str,
    purchase_id: &'a str,
    /// Database time (microseconds).
    occurred_at: i64,
    /// Total minus refunded, minor units.
    net: i64,
    /// Net spend per category.
    categories: BTreeMap<String, i64>,
}

async fn record_counted(
    c: &mut Conn,
    ctx: LedgerCtx,
    tz: &TimeZone,
    counted: &Counted<'_>,
) -> Result<(), StoreError> {
    let mut batch = Batch::new();
    push_counted(&mut batch, ctx, tz, counted)?;
    batch.run(c, ctx.backend).await
}

/// Adds a counted purchase to the member's statistics in two upserts that read nothing
/// first: the member row (created by the first counted purchase) and one row per category.
///
/// The member row's update is the arithmetic of the definitions, on the stored values:
/// a purchase on a new day before the first or after the last purchase day adds a purchase
/// day; one on the first or the last day does not; one back-dated between them adds a day
/// unless another counted purchase of the member falls on that day (the `EXISTS`, which
/// leaves this purchase out). Spend on a day before the first purchase day makes the old
/// first day's spend repeat spend. A category row exists only with its member row (both are
/// written here, and both are rewritten together when a refund recomputes the member), so
/// the category upsert never adds to a stale row.
///
/// The day is an index condition of the `EXISTS` (`purchases_member_covering` leads with
/// `(tenant_id, member_id, occurred_at)`), unlike the tier metric's window (`occurred_at + 0`
/// in `purchases::tier_metric_query`): with a day's bounds the member's index is the only
/// sensible path, and so PostgreSQL's generic plan of the statement that carries this upsert
/// costs less than a custom one and is kept. As a filter on all of the member's purchases,
/// the generic plan's estimate of the subquery (a member's average purchase count, read by a
/// bitmap scan) made a purchase that fires rules (whose statement is longer) look cheaper
/// planned anew with its values every time, which cost ~0.4 ms a purchase (BENCHMARKS.md's
/// history, 2026-12-05).
fn push_counted(
    batch: &mut Batch,
    ctx: LedgerCtx,
    tz: &TimeZone,
    counted: &Counted<'_>,
) -> Result<(), StoreError> {
    let member = counted.member;
    let net = counted.net;
    if net <= 0 {
        return Ok(());
    }
    let at = time::from_db(counted.occurred_at)?;
    let day = day_number(at, tz);
    let bad = |e: jiff::Error| StoreError::Corrupt(format!("day boundaries of {at}: {e}"));
    let start = at.to_zoned(tz.clone()).start_of_day().map_err(bad)?;
    let end = start.tomorrow().map_err(bad)?.start_of_day().map_err(bad)?;
    batch.push(
        "INSERT INTO member_stats (tenant_id, member_id, first_purchase_at, last_purchase_at, first_purchase_day, \
         last_purchase_day, purchases, purchase_days, spend_minor, first_day_spend_minor, repeat_spend_minor, updated_at) \
         VALUES ($1, $2, $3, $3, $4, $4, 1, 1, $5, $5, 0, $6) \
         ON CONFLICT (tenant_id, member_id) DO UPDATE SET \
         first_purchase_at = CASE WHEN $3 < member_stats.first_purchase_at THEN $3 ELSE member_stats.first_purchase_at END, \
         last_purchase_at = CASE WHEN $3 > member_stats.last_purchase_at THEN $3 ELSE member_stats.last_purchase_at END, \
         first_purchase_day = CASE WHEN $4 < member_stats.first_purchase_day THEN $4 ELSE member_stats.first_purchase_day END, \
         last_purchase_day = CASE WHEN $4 > member_stats.last_purchase_day THEN $4 ELSE member_stats.last_purchase_day END, \
         purchases = member_stats.purchases + 1, \
         purchase_days = member_stats.purchase_days + CASE \
           WHEN $4 = member_stats.first_purchase_day OR $4 = member_stats.last_purchase_day THEN 0 \
           WHEN $4 < member_stats.first_purchase_day OR $4 > member_stats.last_purchase_day THEN 1 \
           WHEN EXISTS (SELECT 1 FROM purchases p WHERE p.tenant_id = $1 AND p.member_id = $2 \
             AND p.occurred_at >= $7 AND p.occurred_at < $8 AND p.total_minor > p.refunded_minor AND p.id <> $9) THEN 0 \
           ELSE 1 END, \
         spend_minor = member_stats.spend_minor + $5, \
         first_day_spend_minor = CASE WHEN $4 < member_stats.first_purchase_day THEN $5 \
           WHEN $4 = member_stats.first_purchase_day THEN member_stats.first_day_spend_minor + $5 \
           ELSE member_stats.first_day_spend_minor END, \
         repeat_spend_minor = CASE WHEN $4 < member_stats.first_purchase_day \
           THEN member_stats.repeat_spend_minor + member_stats.first_day_spend_minor \
           WHEN $4 = member_stats.first_purchase_day THEN member_stats.repeat_spend_minor \
           ELSE member_stats.repeat_spend_minor + $5 END, \
         updated_at = $6",
        vec![
            ctx.tenant.0.into(),
            member.into(),
            counted.occurred_at.into(),
            day.into(),
            net.into(),
            time::to_db(ctx.now).into(),
            time::to_db(start.timestamp()).into(),
            time::to_db(end.timestamp()).into(),
            counted.purchase_id.into(),
        ],
    );
    if counted.categories.is_empty() {
        return Ok(());
    }
    // One statement for every category of the purchase (the map has each category once, so
    // no row is upserted twice by it).
    let sql = format!(
        "INSERT INTO member_category_spend (tenant_id, member_id, category, spend_minor, purchases) \
         VALUES {} ON CONFLICT (tenant_id, member_id, category) DO UPDATE SET \
         spend_minor = member_category_spend.spend_minor + excluded.spend_minor, \
         purchases = member_category_spend.purchases + 1",
        crate::batch::placeholders(counted.categories.len(), 5)
    );
    let mut params = Vec::with_capacity(counted.categories.len() * 5);
    for (category, spend) in &counted.categories {
        params.extend([
            ctx.tenant.0.into(),
            member.into(),
            category.into(),
            (*spend).into(),
            Param::from(1_i64),
        ]);
    }
    batch.push(&sql, params);
    Ok(())
}

/// Takes a refund off the member's statistics: call in the refund's unit of work, after the
/// purchase and its lines are updated, with the amount refunded now and its lines'
/// `(category, amount)`. A partial refund lowers the spends; a full refund (the purchase no
/// longer counts) recomputes the member from their history.
pub(crate) async fn record_refund(
    c: &mut Conn,
    ctx: LedgerCtx,
    tz: &TimeZone,
    purchase_id: &str,
    amount_minor: i64,
    lines: &[(String, i64)],
) -> Result<(), StoreError> {
    let facts = purchase_facts(c, ctx.tenant, purchase_id).await?;
    let Some(member) = facts.member_id.as_deref() else {
        return Ok(());
    };
    let refunded_before = facts.refunded - amount_minor;
    if amount_minor == 0 || facts.total <= refunded_before {
        return Ok(()); // it did not count before: nothing of it is in the statistics
    }
    if facts.total <= facts.refunded {
        return rebuild_member_in(c, ctx, tz, member).await;
    }
    let stored = load_stored(c, ctx.tenant, Some(member), Some(ctx.backend)).await?;
    let Some(mut row) = stored.get(member).filter(|row| row.purchases > 0).cloned() else {
        // Statistics missing (history from before they existed): recompute this member.
        return rebuild_member_in(c, ctx, tz, member).await;
    };
    let day = day_number(time::from_db(facts.occurred_at)?, tz);
    row.spend -= amount_minor;
    if day == row.first_day {
        row.first_day_spend -= amount_minor;
    } else {
        row.repeat_spend -= amount_minor;
    }
    update_member_row(c, ctx, member, &row).await?;
    let mut categories: BTreeMap<&str, i64> = BTreeMap::new();
    for (category, amount) in lines {
        *categories.entry(category.as_str()).or_default() += amount;
    }
    for (category, amount) in categories {
        sqlx::query(
            "UPDATE member_category_spend SET spend_minor = spend_minor - $4 \
             WHERE tenant_id = $1 AND member_id = $2 AND category = $3",
        )
        .bind(ctx.tenant.0)
        .bind(member)
        .bind(category)
        .bind(amount)
        .execute(conn(c))
        .await?;
    }
    Ok(())
}

fn to_stats(
    member_id: &str,
    row: &StatsRow,
    updated_at: Timestamp,
) -> Result<MemberStats, StoreError> {
    Ok(MemberStats {
        member_id: member_id.to_string(),
        first_purchase_at: time::from_db(row.first_at)?,
        last_purchase_at: time::from_db(row.last_at)?,
        first_purchase_day: row.first_day,
        last_purchase_day: row.last_day,
        purchases: row.purchases,
        purchase_days: row.purchase_days,
        spend_minor: row.spend,
        first_day_spend_minor: row.first_day_spend,
        repeat_spend_minor: row.repeat_spend,
        updated_at,
        categories: row
            .categories
            .iter()
            .map(|(category, (spend, purchases))| CategorySpend {
                category: category.clone(),
                spend_minor: *spend,
                purchases: *purchases,
            })
            .collect(),
    })
}

/// Columns to read a member's statistics with another statement whose `$1` is the tenant and
/// `$2` the member: the row as a JSON array (`member_stats`, NULL before the first purchase)
/// and its categories as a JSON array of `[category, spend, purchases]`
/// (`member_categories`). [`stats_from`] turns them into [`MemberStats`].
pub(crate) fn stats_columns(backend: Backend) -> &'static str {
    match backend {
        Backend::Sqlite => {
            ", (SELECT json_array(first_purchase_at, last_purchase_at, first_purchase_day, last_purchase_day, \
             purchases, purchase_days, spend_minor, first_day_spend_minor, repeat_spend_minor, updated_at) \
             FROM member_stats ms WHERE ms.tenant_id = $1 AND ms.member_id = $2) AS member_stats, \
             (SELECT json_group_array(json_array(category, spend_minor, purchases)) \
             FROM member_category_spend mc WHERE mc.tenant_id = $1 AND mc.member_id = $2) AS member_categories"
        }
        Backend::Postgres => {
            ", (SELECT CAST(json_build_array(first_purchase_at, last_purchase_at, first_purchase_day, last_purchase_day, \
             purchases, purchase_days, spend_minor, first_day_spend_minor, repeat_spend_minor, updated_at) AS TEXT) \
             FROM member_stats ms WHERE ms.tenant_id = $1 AND ms.member_id = $2) AS member_stats, \
             (SELECT CAST(COALESCE(json_agg(json_build_array(category, spend_minor, purchases)), '[]') AS TEXT) \
             FROM member_category_spend mc WHERE mc.tenant_id = $1 AND mc.member_id = $2) AS member_categories"
        }
    }
}

/// The statistics in a row read with [`stats_columns`]; `None` while the member has no
/// counted purchase.
pub(crate) fn stats_from(
    row: &sqlx::any::AnyRow,
    member_id: &str,
) -> Result<Option<MemberStats>, StoreError> {
    let Some(text) = row.try_get::<Option<String>, _>("member_stats")? else {
        return Ok(None);
    };
    let [
        first_at,
        last_at,
        first_day,
        last_day,
        purchases,
        purchase_days,
        spend,
        first_day_spend,
        repeat_spend,
        updated_at,
    ]: [i64; 10] = serde_json::from_str(&text)?;
    if purchases <= 0 {
        return Ok(None);
    }
    let text: String = row.try_get("member_categories")?;
    let categories: Vec<(String, i64, i64)> = serde_json::from_str(&text)?;
    let stats = StatsRow {
        first_at,
        last_at,
        first_day,
        last_day,
        purchases,
        purchase_days,
        spend,
        first_day_spend,
        repeat_spend,
        categories: categories
            .into_iter()
            .map(|(category, spend, purchases)| (category, (spend, purchases)))
            .collect(),
    };
    Ok(Some(to_stats(
        member_id,
        &stats,
        time::from_db(updated_at)?,
    )?))
}

/// A member's statistics read in the caller's transaction (under its locks).
pub(crate) async fn member_stats_in(
    c: &mut Conn,
    backend: Backend,
    tenant: TenantId,
    member_id: &str,
) -> Result<Option<MemberStats>, StoreError> {
    let sql = format!("SELECT 1 AS one{}", stats_columns(backend));
    let row = sqlx::query(&sql)
        .bind(tenant.0)
        .bind(member_id)
        .fetch_one(conn(c))
        .await?;
    stats_from(&row, member_id)
}

impl Store {
    /// A member's statistics; `None` while they have no counted purchase.
    pub async fn member_stats(
        &self,
        tenant: TenantId,
        member_id: &str,
    ) -> Result<Option<MemberStats>, StoreError> {
        let mut c = self.pool().acquire().await?;
        member_stats_in(&mut c, self.backend(), tenant, member_id).await
    }

    /// Recomputes every member's statistics of a tenant from the purchase history (days in
    /// `tz`, the club's time zone) and compares them with the stored ones. With `fix`, the
    /// members that differ are rewritten in one unit of work that holds off concurrent
    /// updates of the statistics (a table lock on PostgreSQL; SQLite has one writer), so a
    /// purchase committing meanwhile is counted exactly once. Without, a read-only check (a
    /// purchase committing during it can show as a transient difference).
    pub async fn rebuild_member_stats(
        &self,
        tenant: TenantId,
        tz: &TimeZone,
        fix: bool,
        now: Timestamp,
    ) -> Result<StatsRebuild, StoreError> {
        if !fix {
            let mut c = self.pool().acquire().await?;
            let stored = load_stored(&mut c, tenant, None, None).await?;
            let recomputed = recompute(&mut c, tenant, None, tz).await?;
            return Ok(StatsRebuild {
                members: recomputed.len() as u64,
                differences: compare(&stored, &recomputed),
                fixed: false,
            });
        }
        let backend = self.backend();
        unit_of_work!(self, |tx| async {
            if backend == Backend::Postgres {
                sqlx::query("LOCK TABLE member_stats, member_category_spend IN EXCLUSIVE MODE")
                    .execute(&mut *tx)
                    .await?;
            }
            let stored = load_stored(&mut tx, tenant, None, None).await?;
            let recomputed = recompute(&mut tx, tenant, None, tz).await?;
            let differences = compare(&stored, &recomputed);
            let members: BTreeSet<&str> =
                differences.iter().map(|d| d.member_id.as_str()).collect();
            for member in members {
                delete_member(&mut tx, tenant, member).await?;
                if let Some(row) = recomputed.get(member) {
                    insert_member(&mut tx, tenant, member, row, now).await?;
                }
            }
            Ok::<_, StoreError>(StatsRebuild {
                members: recomputed.len() as u64,
                differences,
                fixed: true,
            })
        }
        .await)
    }
}

#[cfg(test)]
mod tests {
    use super::days_from_civil;

    #[test]
    fn day_numbers_match_the_calendar() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(1969, 12, 31), -1);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
    }
}
