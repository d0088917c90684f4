//! Calendar helpers the engine needs around rules: the limit period an instant falls in (so
//! it can count a rule's firings), and whether a day is a member's birthday or enrollment
//! anniversary (so its jobs know when to trigger those rules). All in the program's time zone.

use jiff::civil::Date;
use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan};

use super::{LimitPer, RuleLimit};
use crate::expiry::start_of_day;

/// The period of a rule limit that contains an instant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LimitPeriod {
    /// A stable name for the period, usable as a counter key: `2025-03-14` (day),
    /// `2025-03-10` (the first day of the week), `2025-03` (month), `2025` (year), `lifetime`.
    pub key: String,
    /// The first instant of the period (local midnight); `None` for a lifetime limit.
    pub start: Option<Timestamp>,
    /// The first instant after the period; `None` for a lifetime limit.
    pub end: Option<Timestamp>,
}

/// The period of `limit` that contains `at`, in time zone `tz`. The engine counts the
/// firings of the rule for the member whose occasion instant lies in `[start, end)`.
pub fn limit_period(limit: &RuleLimit, at: Timestamp, tz: &TimeZone) -> LimitPeriod {
    let date = at.to_zoned(tz.clone()).date();
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
            let first = date.first_of_month();
            (
                first,
                first.checked_add(1.month()).ok(),
                format!("{:04}-{:02}", first.year(), first.month()),
            )
        }
        LimitPer::Year => {
            let first = date.first_of_year();
            (
                first,
                first.checked_add(1.year()).ok(),
                format!("{:04}", first.year()),
            )
        }
    };
    LimitPeriod {
        key,
        start: start_of_day(first, tz),
        end: next.and_then(|next| start_of_day(next, tz)),
    }
}

/// Whether `today` is the birthday of someone born on `birth_date`. People born on 29
/// February celebrate on 28 February in other years.
pub fn is_birthday(birth_date: Date, today: Date) -> bool {
    if birth_date.month() == 2 && birth_date.day() == 29 && !today.in_leap_year() {
        return today.month() == 2 && today.day() == 28;
    }
    today.month() == birth_date.month() && today.day() == birth_date.day()
}

/// How many years of membership `today` completes, if it is an anniversary of the
/// enrollment (same rule for 29 February as [`is_birthday`]); `None` on other days and on the
/// enrollment day itself.
pub fn anniversary_years(enrolled_at: Timestamp, today: Date, tz: &TimeZone) -> Option<i16> {
    let enrolled_on = enrolled_at.to_zoned(tz.clone()).date();
    let years = today.year() - enrolled_on.year();
    (years > 0 && is_birthday(enrolled_on, today)).then_some(years)
}
