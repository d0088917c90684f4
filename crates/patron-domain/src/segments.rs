//! Member segments: the RFV grid's named segments and the club's rule segments.
//!
//! - **RFV segments** (`docs/ANALYTICS.md`, "RFV / RFM"): every member with a counted purchase
//!   gets R, F and M scores 1-5 as of a date, and the (R, F) cell of a 5 x 5 grid names their
//!   segment. [`RfvSegments`] holds the grid as segment *codes* (`champions`, `at_risk`...)
//!   and the club's localized names for them; the program may rename segments (`[rfv.names]`)
//!   and replace the whole grid (`[rfv] grid`).
//! - **Rule segments** (`[[segments]]`): a CEL condition over `member` (its attributes and
//!   [`STATISTICS`]) and `now`, evaluated for every member in a batch.
//!
//! Batch evaluation has two paths that must agree: [`sql_subset`] recognises conditions made
//! only of comparisons of SQL-computable statistics ([`Statistic`]) with constants, combined
//! with `&&`, `||` and parentheses, which the store turns into a parameterised `WHERE`
//! clause; everything else is evaluated here ([`evaluate`]), member by member. The SQL form
//! keeps CEL's meaning exactly: `&&`/`||` absorb errors the way SQL's three-valued logic
//! absorbs `NULL` (`error || true` is true, `error && false` is false), an ordering
//! comparison with a missing value (`null > 60`) is an error in CEL and `NULL` in SQL, and
//! equality with a missing value is false (`==`) or true (`!=`) in both (the store writes
//! `x IS NOT NULL AND x = ?` and `x IS NULL OR x <> ?`). [`RuleSegment::prefilter`] is the
//! SQL-able part of a top-level conjunction, used to narrow the members a complex condition is
//! evaluated for.
//!
//! Pure: no I/O, times passed in. The grid is in `rfv.rs`, the statistics a condition reads in
//! `statistics.rs`, the SQL subset in `subset.rs`; this file holds the rule segments and their
//! evaluation in process.

use std::collections::BTreeMap;

use jiff::Timestamp;
use jiff::tz::TimeZone;

use crate::rules::expr::{CompiledExpr, ExprError, ExprValue, Scope, Variable};
use crate::rules::{FactValue, MemberFacts};
use crate::shared::Localized;

mod rfv;
mod statistics;
mod subset;

pub use rfv::{DEFAULT_GRID, DEFAULT_SEGMENTS, RfvSegments, SCORES};
pub use statistics::{STATISTICS, SegmentStatistics, TOP_CATEGORIES, WINDOW_DAYS, median_gap_days};
pub use subset::{
    Comparison, Condition, Literal, Statistic, sql_prefilter, sql_subset, statistics_read,
};

/// A named segment defined by a condition (`[[segments]]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleSegment {
    /// `[a-z0-9_]+`, unique among the program's segments (RFV codes included).
    pub id: String,
    pub names: Localized,
    /// A condition over `member` and `now`.
    pub condition: CompiledExpr,
    /// The whole condition as SQL, when it is in the SQL subset.
    pub sql: Option<Condition>,
    /// When it is not: the SQL-able conjuncts of a top-level `&&` chain (a member the
    /// condition holds for satisfies them), to narrow the members evaluated in process.
    pub prefilter: Option<Condition>,
}

impl RuleSegment {
    /// A segment with this condition (the plans are derived from it).
    pub fn new(id: String, names: Localized, condition: CompiledExpr) -> RuleSegment {
        let sql = sql_subset(condition.source());
        let prefilter = if sql.is_some() {
            None
        } else {
            sql_prefilter(condition.source())
        };
        RuleSegment {
            id,
            names,
            condition,
            sql,
            prefilter,
        }
    }

    /// Whether the condition reads `member.statistics.<name>` (the batch computes the costly
    /// statistics only when some segment reads them).
    pub fn reads_statistic(&self, name: &str) -> bool {
        statistics_read(self.condition.source()).contains(&name)
    }
}

/// Whether a member is in a rule segment: the condition evaluated over the member (with
/// `statistics` as [`SegmentStatistics::facts`] gives them) and `now`. An error (a missing
/// attribute, a comparison with a missing value) means "not in the segment"; the caller
/// counts it.
pub fn evaluate(
    segment: &RuleSegment,
    member: &MemberFacts,
    now: Timestamp,
    tz: &TimeZone,
) -> Result<bool, ExprError> {
    let scope = Scope::new(vec![
        (Variable::Member, member_value(member, now, tz)),
        (Variable::Now, ExprValue::timestamp(now, tz)),
    ])?;
    segment.condition.condition(&scope)
}

fn member_value(member: &MemberFacts, now: Timestamp, tz: &TimeZone) -> ExprValue {
    let enrolled_on = member.enrolled_at.to_zoned(tz.clone()).date();
    let today = now.to_zoned(tz.clone()).date();
    let days_since_enrollment = today
        .since(enrolled_on)
        .map_or(0, |span| i64::from(span.get_days()));
    let birth_date = member
        .birth_date
        .and_then(|date| date.to_zoned(tz.clone()).ok())
        .map_or_else(ExprValue::null, |z| ExprValue::timestamp(z.timestamp(), tz));
    ExprValue::map([
        ("id", ExprValue::text(&member.id)),
        ("tier", ExprValue::text(&member.tier)),
        (
            "segments",
            ExprValue::list(member.segments.iter().map(|s| ExprValue::text(s)).collect()),
        ),
        ("attributes", facts_map(&member.attributes, tz)),
        ("statistics", facts_map(&member.statistics, tz)),
        ("birth_date", birth_date),
        ("enrolled_at", ExprValue::timestamp(member.enrolled_at, tz)),
        (
            "days_since_enrollment",
            ExprValue::int(days_since_enrollment),
        ),
    ])
}

fn facts_map(facts: &BTreeMap<String, FactValue>, tz: &TimeZone) -> ExprValue {
    ExprValue::map(
        facts
            .iter()
            .map(|(key, value)| (key.as_str(), fact_value(value, tz))),
    )
}

fn fact_value(value: &FactValue, tz: &TimeZone) -> ExprValue {
    match value {
        FactValue::Null => ExprValue::null(),
        FactValue::Bool(value) => ExprValue::bool(*value),
        FactValue::Int(value) => ExprValue::int(*value),
        FactValue::Double(value) => ExprValue::double(*value),
        FactValue::Text(value) => ExprValue::text(value),
        FactValue::Timestamp(value) => ExprValue::timestamp(*value, tz),
        FactValue::List(values) => {
            ExprValue::list(values.iter().map(|value| fact_value(value, tz)).collect())
        }
        FactValue::Map(map) => facts_map(map, tz),
    }
}

#[cfg(test)]
mod tests;
