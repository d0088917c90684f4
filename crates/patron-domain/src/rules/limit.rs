//! How often a member may have something: the limit of an earning rule or of a reward
//! ([`RuleLimit`]: at most so many per day, week, month, year or lifetime), and the period of
//! such a limit that contains an instant ([`limit_period`]), so the engine can count what was
//! already given in it. Periods are the club's: its time zone and calendar (months and years of
//! the Persian calendar for a Persian club).
//!
//! This module imports only the calendar, so the rules and the rewards can both use it.

use jiff::civil::Weekday;
use jiff::{Timestamp, ToSpan};

use crate::calendar::{Calendar, start_of_day};

/// At most `count` firings per member per period.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RuleLimit {
    pub count: u32,
    pub per: LimitPer,
    /// The first day of a week, for `per = week`.
    pub week_start: Weekday,
}

/// The period a [`RuleLimit`] counts over, in the program's time zone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LimitPer {
    Day,
    Week,
    Month,
    Year,
    /// The member's whole membership.
    Lifetime,
}

/// The period of a rule limit that contains an instant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LimitPeriod {
    /// A stable name for the period, usable as a counter key: `2025-03-14` (day),
    /// `2025-03-10` (the first day of the week), `2025-03` (month), `2025` (year), `lifetime`.
    /// Months and years are numbered in the club's calendar (`1404-01`, `1404` in the
    /// Persian one), so the keys of the two calendars never meet.
    pub key: String,
    /// The first instant of the period (local midnight); `None` for a lifetime limit.
    pub start: Option<Timestamp>,
    /// The first instant after the period; `None` for a lifetime limit.
    pub end: Option<Timestamp>,
}

/// The period of `limit` that contains `at`, in the club's zone and calendar. The engine
/// counts the firings of the rule for the member whose occasion instant lies in
/// `[start, end)`.
pub fn limit_period(limit: &RuleLimit, at: Timestamp, cal: &Calendar) -> LimitPeriod {
    let date = cal.date_of(at);
    let system = cal.system;
    let (first, next, key) = match limit.per {
        LimitPer::Lifetime => {
            return LimitPeriod {
                key: "lifetime".to_owned(),
                start: None,
                end: None,
            };
        }
        LimitPer::Day => (date, date.checked_add(1.day()).ok(), date.to_string()),
        LimitPer::Week => {
            let back = (date.weekday().to_monday_zero_offset()
                - limit.week_start.to_monday_zero_offset())
            .rem_euclid(7);
            let first = date.checked_sub(i64::from(back).days()).unwrap_or(date);
            (first, first.checked_add(7.days()).ok(), first.to_string())
        }
        LimitPer::Month => {
            let first = system.first_of_month(date).unwrap_or(date);
            let ymd = system.ymd(first);
            (
                first,
                system.add_months(first, 1),
                ymd.map_or_else(
                    || first.to_string(),
                    |ymd| format!("{:04}-{:02}", ymd.year, ymd.month),
                ),
            )
        }
        LimitPer::Year => {
            let first = system.first_of_year(date).unwrap_or(date);
            (
                first,
                system.add_months(first, 12),
                system
                    .ymd(first)
                    .map_or_else(|| first.to_string(), |ymd| format!("{:04}", ymd.year)),
            )
        }
    };
    LimitPeriod {
        key,
        start: start_of_day(first, &cal.tz),
        end: next.and_then(|next| start_of_day(next, &cal.tz)),
    }
}
