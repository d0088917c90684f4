//! Segments (docs/ANALYTICS.md, "Segments"): RFV runs, rule-segment membership and the member
//! events segment moves record.
//!
//! Everything here is O(members) and batched: inputs are read a page of members at a time
//! (keyset pagination on the member id), rows are written with multi-row `INSERT`s, each batch
//! in its own short transaction so a run of 100,000 members never holds the (SQLite) writer
//! for long. An RFV run becomes visible when its last batch is written and it is marked
//! complete; the moves between it and the previous run are then recorded by two set-based
//! statements. A rule segment's changes are written in batches, each batch with its events in
//! the same transaction, so membership and events never disagree; a run interrupted half-way
//! is finished by the next one (the changes are a difference against what is stored).
//!
//! [`Condition`]s (the SQL subset of segment conditions) become parameterised `WHERE` clauses
//! here, with CEL's meaning (see `patron_domain::segments`).
//!
//! The RFV runs are in `rfv`, the rule segments and the reads behind them in `members`.

mod members;
mod rfv;

use std::collections::{BTreeMap, BTreeSet};

use jiff::Timestamp;
use jiff::tz::TimeZone;
use patron_domain::segments::{Comparison, Condition, Literal, Statistic};
use serde::{Deserialize, Serialize};
use sqlx::Row;
use sqlx::any::AnyArguments;
use sqlx::query::Query;

use crate::batch::placeholders_on;
use crate::stats::day_number;
use crate::tenants::TenantId;
use crate::{Backend, Store, StoreError, time, unit_of_work};

/// Rows per multi-row statement, and members per read page.
const ROWS_PER_STATEMENT: usize = 200;
/// Rows per write transaction.
const ROWS_PER_TRANSACTION: usize = 5_000;

/// What the RFV scoring of one member starts from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RfvInput {
    pub member_id: String,
    /// Day number of the last counted purchase up to the as-of date.
    pub last_day: i64,
    pub purchases: i64,
    pub monetary_minor: i64,
}

/// One scored member of a run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RfvRow {
    pub member_id: String,
    pub recency_days: i64,
    pub frequency: i64,
    pub monetary_minor: i64,
    pub r: i64,
    pub f: i64,
    pub m: i64,
    pub segment: String,
}

/// An RFV run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RfvRun {
    pub id: i64,
    /// YYYY-MM-DD, club time zone.
    pub as_of: String,
    pub as_of_day: i64,
    pub members: i64,
    pub created_at: Timestamp,
}

/// What saving a run recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RfvSaved {
    pub run: RfvRun,
    /// `segment.entered` + `segment.left` events recorded (0 for a back-dated run).
    pub events: u64,
}

/// One cell of the 5 x 5 grid.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RfvCell {
    pub r: i64,
    pub f: i64,
    pub members: i64,
    pub monetary_minor: i64,
}

/// A member's statistics row as the segment batch reads it, with the member's profile.
#[derive(Debug, Clone, PartialEq)]
pub struct SegmentCandidate {
    pub member_id: String,
    pub tier: String,
    /// The profile attributes, a JSON object.
    pub attributes: String,
    pub birthday: Option<String>,
    pub enrolled_at: Timestamp,
    pub purchases: i64,
    pub purchase_days: i64,
    pub spend_minor: i64,
    pub first_purchase_at: Option<Timestamp>,
    pub last_purchase_at: Option<Timestamp>,
    pub last_purchase_day: Option<i64>,
    /// (r, f, m) in the run the batch uses.
    pub rfv: Option<(u8, u8, u8)>,
}

/// What a condition's SQL needs besides its constants.
#[derive(Debug, Clone, Copy)]
pub struct SqlContext {
    /// The evaluation day (day number, club time zone).
    pub today: i64,
    /// The currency's minor unit (spend is compared in major units).
    pub minor_unit: u32,
    /// The RFV run whose scores `rfv_*` read (none: they are NULL).
    pub run_id: Option<i64>,
}

/// A member event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberEvent {
    pub id: i64,
    pub member_id: String,
    pub event_type: String,
    pub occurred_at: Timestamp,
    /// A JSON object.
    pub properties: String,
}

/// A member of a segment, as a page lists them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SegmentMember {
    pub member_id: String,
    /// RFV segments: the member's scores in the run.
    pub scores: Option<RfvRow>,
    /// Rule segments: when the member entered.
    pub entered_at: Option<Timestamp>,
}

fn statistic_sql(statistic: Statistic) -> &'static str {
    match statistic {
        Statistic::Purchases => "COALESCE(s.purchases, 0)",
        Statistic::PurchaseDays => "COALESCE(s.purchase_days, 0)",
        // $2 is the scale (10^minor_unit), a double: the division is IEEE on both backends,
        // as the in-process statistic computes it.
        Statistic::Spend => "(COALESCE(s.spend_minor, 0) / $2)",
        // $3 is the evaluation day.
        Statistic::DaysSinceLastPurchase => "($3 - s.last_purchase_day)",
        Statistic::RfvR => "v.r",
        Statistic::RfvF => "v.f",
        Statistic::RfvM => "v.m",
    }
}

/// Renders a condition as SQL over the aliases `s` (member_stats) and `v` (rfv_members),
/// appending its constants to `binds` (placeholders numbered from `binds.len() + first`).
fn render(condition: &Condition, first: usize, binds: &mut Vec<Literal>) -> String {
    match condition {
        Condition::Compare {
            statistic,
            op,
            value,
        } => {
            binds.push(*value);
            let placeholder = format!("${}", first + binds.len() - 1);
            let column = statistic_sql(*statistic);
            // CEL: `null == x` is false and `null != x` true; SQL would answer NULL.
            match op {
                Comparison::Eq => {
                    format!("({column} IS NOT NULL AND {column} = {placeholder})")
                }
                Comparison::Ne => format!("({column} IS NULL OR {column} <> {placeholder})"),
                _ => format!("({column} {} {placeholder})", op.sql()),
            }
        }
        Condition::And(a, b) => format!(
            "({} AND {})",
            render(a, first, binds),
            render(b, first, binds)
        ),
        Condition::Or(a, b) => format!(
            "({} OR {})",
            render(a, first, binds),
            render(b, first, binds)
        ),
    }
}

fn bind_literal<'q>(
    query: Query<'q, sqlx::Any, AnyArguments<'q>>,
    literal: Literal,
) -> Query<'q, sqlx::Any, AnyArguments<'q>> {
    match literal {
        Literal::Int(value) => query.bind(value),
        Literal::Double(value) => query.bind(value),
    }
}

fn score(value: i64) -> u8 {
    u8::try_from(value.clamp(0, 255)).unwrap_or(0)
}

fn rfv_row_from(row: &sqlx::any::AnyRow) -> Result<RfvRow, StoreError> {
    Ok(RfvRow {
        member_id: row.try_get("member_id")?,
        recency_days: row.try_get("recency_days")?,
        frequency: row.try_get("frequency")?,
        monetary_minor: row.try_get("monetary_minor")?,
        r: row.try_get("r")?,
        f: row.try_get("f")?,
        m: row.try_get("m")?,
        segment: row.try_get("segment")?,
    })
}

/// A column to read a member's segments with another statement whose `$1` is the tenant and
/// `$2` the member (`member_segments`: a JSON array of `[order, code]`, the RFV segment of the
/// latest complete run first); [`segments_from`] reads it.
pub(crate) fn segments_column(backend: Backend) -> String {
    let rows = "SELECT 0 AS o, rm.segment AS s FROM rfv_members rm \
         WHERE rm.tenant_id = $1 AND rm.member_id = $2 AND rm.run_id = (SELECT rr.id FROM rfv_runs rr \
         WHERE rr.tenant_id = $1 AND rr.completed_at IS NOT NULL ORDER BY rr.as_of_day DESC, rr.id DESC LIMIT 1) \
         UNION ALL SELECT 1 AS o, sm.segment_id AS s FROM segment_members sm \
         WHERE sm.tenant_id = $1 AND sm.member_id = $2";
    match backend {
        Backend::Sqlite => format!(
            ", (SELECT json_group_array(json_array(o, s)) FROM ({rows}) x) AS member_segments"
        ),
        Backend::Postgres => format!(
            ", (SELECT CAST(COALESCE(json_agg(json_build_array(o, s)), '[]') AS TEXT) FROM ({rows}) x) \
             AS member_segments"
        ),
    }
}

/// The segments in a row read with [`segments_column`]: the RFV segment, then the rule
/// segments by code.
pub(crate) fn segments_from(row: &sqlx::any::AnyRow) -> Result<Vec<String>, StoreError> {
    let text: String = row.try_get("member_segments")?;
    let mut pairs: Vec<(i64, String)> = serde_json::from_str(&text)?;
    pairs.sort();
    Ok(pairs.into_iter().map(|(_, code)| code).collect())
}

/// A member's segments read in the caller's transaction.
pub(crate) async fn member_segments_in(
    c: &mut crate::Conn,
    backend: Backend,
    tenant: TenantId,
    member_id: &str,
) -> Result<Vec<String>, StoreError> {
    let sql = format!("SELECT 1 AS one{}", segments_column(backend));
    let row = sqlx::query(&sql)
        .bind(tenant.0)
        .bind(member_id)
        .fetch_one(crate::conn(c))
        .await?;
    segments_from(&row)
}
