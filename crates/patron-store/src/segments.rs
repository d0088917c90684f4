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

impl Store {
    // ----- RFV -------------------------------------------------------------------------------

    /// Each active member's last purchase day, purchase count and net spend over the counted
    /// purchases before `until` (the end of the as-of day), in member-id order. When nothing
    /// happened after `until`, this is `member_stats` (O(members)); otherwise it is aggregated
    /// from the purchases (O(purchases), for back-dated runs).
    pub async fn rfv_inputs(
        &self,
        tenant: TenantId,
        until: Timestamp,
        tz: &TimeZone,
    ) -> Result<Vec<RfvInput>, StoreError> {
        let later = sqlx::query(
            "SELECT id FROM purchases WHERE tenant_id = $1 AND member_id IS NOT NULL \
             AND occurred_at >= $2 LIMIT 1",
        )
        .bind(tenant.0)
        .bind(time::to_db(until))
        .fetch_optional(self.pool())
        .await?;
        let mut inputs = Vec::new();
        if later.is_none() {
            let rows = sqlx::query(
                "SELECT s.member_id, s.last_purchase_day, s.purchases, s.spend_minor \
                 FROM member_stats s JOIN members m ON m.tenant_id = s.tenant_id AND m.id = s.member_id \
                 WHERE s.tenant_id = $1 AND m.status = 'active' AND s.purchases > 0 ORDER BY s.member_id",
            )
            .bind(tenant.0)
            .fetch_all(self.pool())
            .await?;
            for row in rows {
                inputs.push(RfvInput {
                    member_id: row.try_get("member_id")?,
                    last_day: row.try_get("last_purchase_day")?,
                    purchases: row.try_get("purchases")?,
                    monetary_minor: row.try_get("spend_minor")?,
                });
            }
        } else {
            let rows = sqlx::query(
                "SELECT p.member_id, MAX(p.occurred_at) AS last_at, COUNT(*) AS purchases, \
                 CAST(SUM(p.total_minor - p.refunded_minor) AS BIGINT) AS monetary \
                 FROM purchases p JOIN members m ON m.tenant_id = p.tenant_id AND m.id = p.member_id \
                 WHERE p.tenant_id = $1 AND m.status = 'active' AND p.occurred_at < $2 \
                 AND p.total_minor > p.refunded_minor GROUP BY p.member_id ORDER BY p.member_id",
            )
            .bind(tenant.0)
            .bind(time::to_db(until))
            .fetch_all(self.pool())
            .await?;
            for row in rows {
                let last_at: i64 = row.try_get("last_at")?;
                inputs.push(RfvInput {
                    member_id: row.try_get("member_id")?,
                    last_day: day_number(time::from_db(last_at)?, tz),
                    purchases: row.try_get("purchases")?,
                    monetary_minor: row.try_get("monetary")?,
                });
            }
        }
        Ok(inputs)
    }

    /// Stores a run: the header, the rows in batches, then marks it complete and records the
    /// segment moves against the previous complete run (only when this run is the latest by
    /// as-of date: a back-dated run records none).
    pub async fn save_rfv_run(
        &self,
        tenant: TenantId,
        as_of: &str,
        as_of_day: i64,
        rows: &[RfvRow],
        now: Timestamp,
    ) -> Result<RfvSaved, StoreError> {
        let backend = self.backend();
        let members = i64::try_from(rows.len()).unwrap_or(i64::MAX);
        let run_id: i64 = unit_of_work!(self, |tx| {
            async {
                let row = sqlx::query(
                    "INSERT INTO rfv_runs (tenant_id, as_of, as_of_day, members, created_at) \
                     VALUES ($1, $2, $3, $4, $5) RETURNING id",
                )
                .bind(tenant.0)
                .bind(as_of)
                .bind(as_of_day)
                .bind(members)
                .bind(time::to_db(now))
                .fetch_one(&mut *tx)
                .await?;
                Ok(row.try_get::<i64, _>("id")?)
            }
            .await
        })?;
        for batch in rows.chunks(ROWS_PER_TRANSACTION) {
            unit_of_work!(self, |tx| {
                async {
                    for chunk in batch.chunks(ROWS_PER_STATEMENT) {
                        let sql = format!(
                            "INSERT INTO rfv_members (tenant_id, run_id, member_id, recency_days, frequency, \
                             monetary_minor, r, f, m, segment) VALUES {}",
                            placeholders_on(backend, chunk.len(), 10)
                        );
                        let mut query = sqlx::query(&sql);
                        for row in chunk {
                            query = query
                                .bind(tenant.0)
                                .bind(run_id)
                                .bind(&row.member_id)
                                .bind(row.recency_days)
                                .bind(row.frequency)
                                .bind(row.monetary_minor)
                                .bind(row.r)
                                .bind(row.f)
                                .bind(row.m)
                                .bind(&row.segment);
                        }
                        query.execute(&mut *tx).await?;
                    }
                    Ok(())
                }
                .await
            })?;
        }
        let events: u64 = unit_of_work!(self, |tx| {
            async {
                sqlx::query("UPDATE rfv_runs SET completed_at = $3 WHERE tenant_id = $1 AND id = $2")
                    .bind(tenant.0)
                    .bind(run_id)
                    .bind(time::to_db(now))
                    .execute(&mut *tx)
                    .await?;
                // The previous complete run by (as_of_day, id); none later than this one.
                let later = sqlx::query(
                    "SELECT id FROM rfv_runs WHERE tenant_id = $1 AND completed_at IS NOT NULL AND id <> $2 \
                     AND (as_of_day > $3 OR (as_of_day = $3 AND id > $2)) LIMIT 1",
                )
                .bind(tenant.0)
                .bind(run_id)
                .bind(as_of_day)
                .fetch_optional(&mut *tx)
                .await?;
                if later.is_some() {
                    return Ok(0);
                }
                let previous = sqlx::query(
                    "SELECT id FROM rfv_runs WHERE tenant_id = $1 AND completed_at IS NOT NULL AND id <> $2 \
                     ORDER BY as_of_day DESC, id DESC LIMIT 1",
                )
                .bind(tenant.0)
                .bind(run_id)
                .fetch_optional(&mut *tx)
                .await?;
                let previous: Option<i64> = match previous {
                    Some(row) => Some(row.try_get("id")?),
                    None => None,
                };
                let run_text = run_id.to_string();
                let first = if previous.is_none() { "true" } else { "false" };
                // Segment codes are [a-z0-9_]: no JSON escaping is needed.
                let left = sqlx::query(
                    "INSERT INTO member_events (tenant_id, member_id, type, occurred_at, properties) \
                     SELECT $1, p.member_id, 'segment.left', $4, \
                     '{\"segment\":\"' || p.segment || '\",\"source\":\"rfv\",\"run_id\":' || $5 || ',\"to\":' || \
                     CASE WHEN c.segment IS NULL THEN 'null' ELSE '\"' || c.segment || '\"' END || '}' \
                     FROM rfv_members p LEFT JOIN rfv_members c ON c.run_id = $2 AND c.member_id = p.member_id \
                     WHERE p.run_id = $3 AND (c.segment IS NULL OR c.segment <> p.segment) ORDER BY p.member_id"
                )
                .bind(tenant.0)
                .bind(run_id)
                .bind(previous.unwrap_or(-1))
                .bind(time::to_db(now))
                .bind(&run_text)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                let entered = sqlx::query(&format!(
                    "INSERT INTO member_events (tenant_id, member_id, type, occurred_at, properties) \
                     SELECT $1, c.member_id, 'segment.entered', $4, \
                     '{{\"segment\":\"' || c.segment || '\",\"source\":\"rfv\",\"run_id\":' || $5 || ',\"from\":' || \
                     CASE WHEN p.segment IS NULL THEN 'null' ELSE '\"' || p.segment || '\"' END || ',\"first_run\":{first}}}' \
                     FROM rfv_members c LEFT JOIN rfv_members p ON p.run_id = $3 AND p.member_id = c.member_id \
                     WHERE c.run_id = $2 AND (p.segment IS NULL OR p.segment <> c.segment) ORDER BY c.member_id"
                ))
                .bind(tenant.0)
                .bind(run_id)
                .bind(previous.unwrap_or(-1))
                .bind(time::to_db(now))
                .bind(&run_text)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                Ok(left + entered)
            }
            .await
        })?;
        Ok(RfvSaved {
            run: RfvRun {
                id: run_id,
                as_of: as_of.to_owned(),
                as_of_day,
                members,
                created_at: now,
            },
            events,
        })
    }

    fn run_from(row: &sqlx::any::AnyRow) -> Result<RfvRun, StoreError> {
        Ok(RfvRun {
            id: row.try_get("id")?,
            as_of: row.try_get("as_of")?,
            as_of_day: row.try_get("as_of_day")?,
            members: row.try_get("members")?,
            created_at: time::from_db(row.try_get("created_at")?)?,
        })
    }

    /// The latest complete run (by as-of date, then id), or the complete run `id`.
    pub async fn rfv_run(
        &self,
        tenant: TenantId,
        id: Option<i64>,
    ) -> Result<Option<RfvRun>, StoreError> {
        let row = sqlx::query(
            "SELECT id, as_of, as_of_day, members, created_at FROM rfv_runs \
             WHERE tenant_id = $1 AND completed_at IS NOT NULL AND ($2 = 0 OR id = $3) \
             ORDER BY as_of_day DESC, id DESC LIMIT 1",
        )
        .bind(tenant.0)
        .bind(i64::from(id.is_some()))
        .bind(id.unwrap_or(0))
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(Self::run_from).transpose()
    }

    /// The latest complete run whose as-of day is `as_of_day` or earlier (by as-of date,
    /// then id): the grid as it stood on that day.
    pub async fn rfv_run_as_of(
        &self,
        tenant: TenantId,
        as_of_day: i64,
    ) -> Result<Option<RfvRun>, StoreError> {
        let row = sqlx::query(
            "SELECT id, as_of, as_of_day, members, created_at FROM rfv_runs \
             WHERE tenant_id = $1 AND completed_at IS NOT NULL AND as_of_day <= $2 \
             ORDER BY as_of_day DESC, id DESC LIMIT 1",
        )
        .bind(tenant.0)
        .bind(as_of_day)
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(Self::run_from).transpose()
    }

    /// The 5 x 5 grid of a run: members and monetary value per (R, F) cell with members.
    pub async fn rfv_grid(&self, tenant: TenantId, run: i64) -> Result<Vec<RfvCell>, StoreError> {
        let rows = sqlx::query(
            "SELECT r, f, COUNT(*) AS members, CAST(SUM(monetary_minor) AS BIGINT) AS monetary \
             FROM rfv_members WHERE tenant_id = $1 AND run_id = $2 GROUP BY r, f ORDER BY r DESC, f",
        )
        .bind(tenant.0)
        .bind(run)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|row| {
                Ok(RfvCell {
                    r: row.try_get("r")?,
                    f: row.try_get("f")?,
                    members: row.try_get("members")?,
                    monetary_minor: row.try_get("monetary")?,
                })
            })
            .collect()
    }

    /// Members per segment of a run, and their monetary value.
    pub async fn rfv_segment_totals(
        &self,
        tenant: TenantId,
        run: i64,
    ) -> Result<BTreeMap<String, (i64, i64)>, StoreError> {
        let rows = sqlx::query(
            "SELECT segment, COUNT(*) AS members, CAST(SUM(monetary_minor) AS BIGINT) AS monetary \
             FROM rfv_members WHERE tenant_id = $1 AND run_id = $2 GROUP BY segment",
        )
        .bind(tenant.0)
        .bind(run)
        .fetch_all(self.pool())
        .await?;
        let mut totals = BTreeMap::new();
        for row in rows {
            totals.insert(
                row.try_get("segment")?,
                (row.try_get("members")?, row.try_get("monetary")?),
            );
        }
        Ok(totals)
    }

    /// A member's row in a run.
    pub async fn rfv_member(
        &self,
        tenant: TenantId,
        run: i64,
        member_id: &str,
    ) -> Result<Option<RfvRow>, StoreError> {
        let row = sqlx::query(
            "SELECT member_id, recency_days, frequency, monetary_minor, r, f, m, segment FROM rfv_members \
             WHERE tenant_id = $1 AND run_id = $2 AND member_id = $3",
        )
        .bind(tenant.0)
        .bind(run)
        .bind(member_id)
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(rfv_row_from).transpose()
    }

    // ----- Rule segments ---------------------------------------------------------------------

    /// Active members after `after` (member-id order), at most `limit`, with their statistics
    /// and scores in `ctx.run_id`; with `filter`, only those it holds for.
    pub async fn segment_candidates(
        &self,
        tenant: TenantId,
        after: Option<&str>,
        limit: i64,
        filter: Option<&Condition>,
        ctx: SqlContext,
    ) -> Result<Vec<SegmentCandidate>, StoreError> {
        let mut binds = Vec::new();
        let clause = match filter {
            Some(condition) => format!(" AND {}", render(condition, 7, &mut binds)),
            None => String::new(),
        };
        let sql = format!(
            "SELECT m.id, m.tier, m.attributes, m.birthday, m.enrolled_at, s.purchases, s.purchase_days, \
             s.spend_minor, s.first_purchase_at, s.last_purchase_at, s.last_purchase_day, v.r, v.f, v.m \
             FROM members m \
             LEFT JOIN member_stats s ON s.tenant_id = m.tenant_id AND s.member_id = m.id \
             LEFT JOIN rfv_members v ON v.run_id = $4 AND v.member_id = m.id \
             WHERE m.tenant_id = $1 AND m.status = 'active' AND ($5 = 0 OR m.id > $6){clause} \
             ORDER BY m.id LIMIT {}",
            limit.clamp(1, 100_000)
        );
        let scale = 10f64.powi(i32::try_from(ctx.minor_unit).unwrap_or(0));
        let mut query = sqlx::query(&sql)
            .bind(tenant.0)
            .bind(scale)
            .bind(ctx.today)
            .bind(ctx.run_id.unwrap_or(-1))
            .bind(i64::from(after.is_some()))
            .bind(after.unwrap_or(""));
        for literal in binds {
            query = bind_literal(query, literal);
        }
        let rows = query.fetch_all(self.pool()).await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let first: Option<i64> = row.try_get("first_purchase_at")?;
            let last: Option<i64> = row.try_get("last_purchase_at")?;
            let r: Option<i64> = row.try_get("r")?;
            let f: Option<i64> = row.try_get("f")?;
            let m: Option<i64> = row.try_get("m")?;
            out.push(SegmentCandidate {
                member_id: row.try_get("id")?,
                tier: row.try_get("tier")?,
                attributes: row.try_get("attributes")?,
                birthday: row.try_get("birthday")?,
                enrolled_at: time::from_db(row.try_get("enrolled_at")?)?,
                purchases: row.try_get::<Option<i64>, _>("purchases")?.unwrap_or(0),
                purchase_days: row.try_get::<Option<i64>, _>("purchase_days")?.unwrap_or(0),
                spend_minor: row.try_get::<Option<i64>, _>("spend_minor")?.unwrap_or(0),
                first_purchase_at: first.map(time::from_db).transpose()?,
                last_purchase_at: last.map(time::from_db).transpose()?,
                last_purchase_day: row.try_get("last_purchase_day")?,
                rfv: match (r, f, m) {
                    (Some(r), Some(f), Some(m)) => Some((score(r), score(f), score(m))),
                    _ => None,
                },
            });
        }
        Ok(out)
    }

    /// The active members a SQL-subset condition holds for, in id order.
    pub async fn members_matching(
        &self,
        tenant: TenantId,
        condition: &Condition,
        ctx: SqlContext,
    ) -> Result<Vec<String>, StoreError> {
        let mut binds = Vec::new();
        let clause = render(condition, 5, &mut binds);
        let sql = format!(
            "SELECT m.id FROM members m \
             LEFT JOIN member_stats s ON s.tenant_id = m.tenant_id AND s.member_id = m.id \
             LEFT JOIN rfv_members v ON v.run_id = $4 AND v.member_id = m.id \
             WHERE m.tenant_id = $1 AND m.status = 'active' AND {clause} ORDER BY m.id"
        );
        let scale = 10f64.powi(i32::try_from(ctx.minor_unit).unwrap_or(0));
        let mut query = sqlx::query(&sql)
            .bind(tenant.0)
            .bind(scale)
            .bind(ctx.today)
            .bind(ctx.run_id.unwrap_or(-1));
        for literal in binds {
            query = bind_literal(query, literal);
        }
        let rows = query.fetch_all(self.pool()).await?;
        rows.iter()
            .map(|row| Ok(row.try_get::<String, _>("id")?))
            .collect()
    }

    /// The distinct purchase days (club time zone) of the members with ids in
    /// `first..=last`, each member's sorted (counted purchases only).
    pub async fn purchase_days_between(
        &self,
        tenant: TenantId,
        first: &str,
        last: &str,
        tz: &TimeZone,
    ) -> Result<BTreeMap<String, Vec<i64>>, StoreError> {
        let rows = sqlx::query(
            "SELECT member_id, occurred_at FROM purchases WHERE tenant_id = $1 AND member_id >= $2 \
             AND member_id <= $3 AND total_minor > refunded_minor",
        )
        .bind(tenant.0)
        .bind(first)
        .bind(last)
        .fetch_all(self.pool())
        .await?;
        let mut days: BTreeMap<String, BTreeSet<i64>> = BTreeMap::new();
        for row in rows {
            let at = time::from_db(row.try_get("occurred_at")?)?;
            days.entry(row.try_get("member_id")?)
                .or_default()
                .insert(day_number(at, tz));
        }
        Ok(days
            .into_iter()
            .map(|(member, days)| (member, days.into_iter().collect()))
            .collect())
    }

    /// For the members with ids in `first..=last`: their counted purchases since `since` and
    /// the categories bought in them.
    pub async fn window_categories_between(
        &self,
        tenant: TenantId,
        first: &str,
        last: &str,
        since: Timestamp,
    ) -> Result<BTreeMap<String, (i64, BTreeSet<String>)>, StoreError> {
        let mut out: BTreeMap<String, (i64, BTreeSet<String>)> = BTreeMap::new();
        let rows = sqlx::query(
            "SELECT member_id, COUNT(*) AS n FROM purchases WHERE tenant_id = $1 AND member_id >= $2 \
             AND member_id <= $3 AND occurred_at >= $4 AND total_minor > refunded_minor GROUP BY member_id",
        )
        .bind(tenant.0)
        .bind(first)
        .bind(last)
        .bind(time::to_db(since))
        .fetch_all(self.pool())
        .await?;
        for row in rows {
            out.entry(row.try_get("member_id")?).or_default().0 = row.try_get("n")?;
        }
        let rows = sqlx::query(
            "SELECT DISTINCT p.member_id, l.category FROM purchase_lines l \
             JOIN purchases p ON p.tenant_id = l.tenant_id AND p.id = l.purchase_id \
             WHERE l.tenant_id = $1 AND p.member_id >= $2 AND p.member_id <= $3 AND p.occurred_at >= $4 \
             AND p.total_minor > p.refunded_minor",
        )
        .bind(tenant.0)
        .bind(first)
        .bind(last)
        .bind(time::to_db(since))
        .fetch_all(self.pool())
        .await?;
        for row in rows {
            out.entry(row.try_get("member_id")?)
                .or_default()
                .1
                .insert(row.try_get("category")?);
        }
        Ok(out)
    }

    /// The club's `n` categories in the most counted member purchases since `since` (ties by
    /// name).
    pub async fn top_categories(
        &self,
        tenant: TenantId,
        since: Timestamp,
        n: usize,
    ) -> Result<Vec<String>, StoreError> {
        let rows = sqlx::query(
            "SELECT l.category, COUNT(DISTINCT p.id) AS n FROM purchase_lines l \
             JOIN purchases p ON p.tenant_id = l.tenant_id AND p.id = l.purchase_id \
             WHERE l.tenant_id = $1 AND p.member_id IS NOT NULL AND p.occurred_at >= $2 \
             AND p.total_minor > p.refunded_minor GROUP BY l.category ORDER BY n DESC, l.category LIMIT $3",
        )
        .bind(tenant.0)
        .bind(time::to_db(since))
        .bind(i64::try_from(n).unwrap_or(i64::MAX))
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|row| Ok(row.try_get::<String, _>("category")?))
            .collect()
    }

    /// The current members of a rule segment, in id order.
    pub async fn rule_segment_members(
        &self,
        tenant: TenantId,
        segment: &str,
    ) -> Result<Vec<String>, StoreError> {
        let rows = sqlx::query(
            "SELECT member_id FROM segment_members WHERE tenant_id = $1 AND segment_id = $2 ORDER BY member_id",
        )
        .bind(tenant.0)
        .bind(segment)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|row| Ok(row.try_get::<String, _>("member_id")?))
            .collect()
    }

    /// The rule segments with stored members (to find those the program no longer has).
    pub async fn stored_rule_segments(&self, tenant: TenantId) -> Result<Vec<String>, StoreError> {
        let rows = sqlx::query(
            "SELECT DISTINCT segment_id FROM segment_members WHERE tenant_id = $1 ORDER BY segment_id",
        )
        .bind(tenant.0)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|row| Ok(row.try_get::<String, _>("segment_id")?))
            .collect()
    }

    /// Applies a rule segment's changes: `entered` join, `left` leave, each with its
    /// `segment.entered`/`segment.left` event, in batches (each batch one transaction).
    /// A member already in (or already out) is skipped, so repeating a batch changes nothing.
    pub async fn apply_segment_changes(
        &self,
        tenant: TenantId,
        segment: &str,
        entered: &[String],
        left: &[String],
        now: Timestamp,
    ) -> Result<u64, StoreError> {
        let backend = self.backend();
        let properties = format!("{{\"segment\":\"{segment}\",\"source\":\"rule\"}}");
        let mut events = 0;
        for (members, entering) in [(entered, true), (left, false)] {
            for batch in members.chunks(ROWS_PER_TRANSACTION) {
                events += unit_of_work!(self, |tx| {
                    async {
                        let mut changed = 0u64;
                        for chunk in batch.chunks(ROWS_PER_STATEMENT) {
                            let (sql, event_type) = if entering {
                                (
                                    format!(
                                        "INSERT INTO segment_members (tenant_id, segment_id, member_id, entered_at) \
                                         VALUES {} ON CONFLICT DO NOTHING RETURNING member_id",
                                        placeholders_on(backend, chunk.len(), 4)
                                    ),
                                    "segment.entered",
                                )
                            } else {
                                let list = (0..chunk.len())
                                    .map(|i| format!("${}", i + 3))
                                    .collect::<Vec<_>>()
                                    .join(", ");
                                (
                                    format!(
                                        "DELETE FROM segment_members WHERE tenant_id = $1 AND segment_id = $2 \
                                         AND member_id IN ({list}) RETURNING member_id"
                                    ),
                                    "segment.left",
                                )
                            };
                            let mut query = sqlx::query(&sql);
                            if entering {
                                for member in chunk {
                                    query = query
                                        .bind(tenant.0)
                                        .bind(segment)
                                        .bind(member)
                                        .bind(time::to_db(now));
                                }
                            } else {
                                query = query.bind(tenant.0).bind(segment);
                                for member in chunk {
                                    query = query.bind(member);
                                }
                            }
                            let mut done: Vec<String> = Vec::new();
                            for row in query.fetch_all(&mut *tx).await? {
                                done.push(row.try_get("member_id")?);
                            }
                            done.sort();
                            if done.is_empty() {
                                continue;
                            }
                            let sql = format!(
                                "INSERT INTO member_events (tenant_id, member_id, type, occurred_at, properties) VALUES {}",
                                placeholders_on(backend, done.len(), 5)
                            );
                            let mut query = sqlx::query(&sql);
                            for member in &done {
                                query = query
                                    .bind(tenant.0)
                                    .bind(member)
                                    .bind(event_type)
                                    .bind(time::to_db(now))
                                    .bind(&properties);
                            }
                            query.execute(&mut *tx).await?;
                            changed += done.len() as u64;
                        }
                        Ok(changed)
                    }
                    .await
                })?;
            }
        }
        Ok(events)
    }

    /// Members per rule segment.
    pub async fn rule_segment_counts(
        &self,
        tenant: TenantId,
    ) -> Result<BTreeMap<String, i64>, StoreError> {
        let rows = sqlx::query(
            "SELECT segment_id, COUNT(*) AS n FROM segment_members WHERE tenant_id = $1 GROUP BY segment_id",
        )
        .bind(tenant.0)
        .fetch_all(self.pool())
        .await?;
        let mut counts = BTreeMap::new();
        for row in rows {
            counts.insert(row.try_get("segment_id")?, row.try_get("n")?);
        }
        Ok(counts)
    }

    /// A page of a segment's members after `after`: an RFV segment of run `run` (`Some`), or
    /// a rule segment (`None`).
    pub async fn list_segment_members(
        &self,
        tenant: TenantId,
        segment: &str,
        run: Option<i64>,
        after: Option<&str>,
        limit: i64,
    ) -> Result<Vec<SegmentMember>, StoreError> {
        let limit = limit.clamp(1, 1000);
        let mut out = Vec::new();
        match run {
            Some(run) => {
                let rows = sqlx::query(
                    "SELECT member_id, recency_days, frequency, monetary_minor, r, f, m, segment FROM rfv_members \
                     WHERE tenant_id = $1 AND run_id = $2 AND segment = $3 AND ($4 = 0 OR member_id > $5) \
                     ORDER BY member_id LIMIT $6",
                )
                .bind(tenant.0)
                .bind(run)
                .bind(segment)
                .bind(i64::from(after.is_some()))
                .bind(after.unwrap_or(""))
                .bind(limit)
                .fetch_all(self.pool())
                .await?;
                for row in rows {
                    let scores = rfv_row_from(&row)?;
                    out.push(SegmentMember {
                        member_id: scores.member_id.clone(),
                        scores: Some(scores),
                        entered_at: None,
                    });
                }
            }
            None => {
                let rows = sqlx::query(
                    "SELECT member_id, entered_at FROM segment_members WHERE tenant_id = $1 AND segment_id = $2 \
                     AND ($3 = 0 OR member_id > $4) ORDER BY member_id LIMIT $5",
                )
                .bind(tenant.0)
                .bind(segment)
                .bind(i64::from(after.is_some()))
                .bind(after.unwrap_or(""))
                .bind(limit)
                .fetch_all(self.pool())
                .await?;
                for row in rows {
                    out.push(SegmentMember {
                        member_id: row.try_get("member_id")?,
                        scores: None,
                        entered_at: Some(time::from_db(row.try_get("entered_at")?)?),
                    });
                }
            }
        }
        Ok(out)
    }

    /// A member's current segments: their RFV segment in the latest complete run, then the
    /// rule segments they are in (by id).
    pub async fn member_segments(
        &self,
        tenant: TenantId,
        member_id: &str,
    ) -> Result<Vec<String>, StoreError> {
        let mut c = self.pool().acquire().await?;
        member_segments_in(&mut c, self.backend(), tenant, member_id).await
    }

    /// A member's events, oldest first.
    pub async fn member_events(
        &self,
        tenant: TenantId,
        member_id: &str,
    ) -> Result<Vec<MemberEvent>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, member_id, type, occurred_at, properties FROM member_events \
             WHERE tenant_id = $1 AND member_id = $2 ORDER BY id",
        )
        .bind(tenant.0)
        .bind(member_id)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|row| {
                Ok(MemberEvent {
                    id: row.try_get("id")?,
                    member_id: row.try_get("member_id")?,
                    event_type: row.try_get("type")?,
                    occurred_at: time::from_db(row.try_get("occurred_at")?)?,
                    properties: row.try_get("properties")?,
                })
            })
            .collect()
    }

    /// Every purchase line of the tenant's member purchases since `since`: (member, document,
    /// day number, category, sku), for basket analysis.
    pub async fn basket_lines(
        &self,
        tenant: TenantId,
        since: Timestamp,
        tz: &TimeZone,
    ) -> Result<Vec<(String, String, i64, String, String)>, StoreError> {
        let rows = sqlx::query(
            "SELECT p.member_id, p.id, p.occurred_at, l.category, l.sku FROM purchase_lines l \
             JOIN purchases p ON p.tenant_id = l.tenant_id AND p.id = l.purchase_id \
             WHERE l.tenant_id = $1 AND p.member_id IS NOT NULL AND p.occurred_at >= $2 \
             AND p.total_minor > p.refunded_minor ORDER BY p.member_id, p.id",
        )
        .bind(tenant.0)
        .bind(time::to_db(since))
        .fetch_all(self.pool())
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let at = time::from_db(row.try_get("occurred_at")?)?;
            out.push((
                row.try_get("member_id")?,
                row.try_get("id")?,
                day_number(at, tz),
                row.try_get("category")?,
                row.try_get("sku")?,
            ));
        }
        Ok(out)
    }
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
