//! Calendar helpers the engine needs around rules: the limit period an instant falls in (so
//! it can count a rule's firings), and whether a day is a member's birthday or enrollment
//! anniversary (so its jobs know when to trigger those rules). All in the program's time zone
//! and calendar (months and years of the Persian calendar for a Persian club).

use jiff::civil::Date;
use jiff::{Timestamp, ToSpan};

use super::{LimitPer, RuleLimit};
use crate::calendar::{Calendar, CalendarSystem};
use crate::expiry::start_of_day;

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

/// Whether `today` is the birthday of someone born on `birth_date`, in the club's calendar (a
/// Persian club celebrates the Persian date, which moves against the Gregorian one). People
/// born on a day this year's month lacks (29 February, 30 Esfand) celebrate on its last day.
pub fn is_birthday(birth_date: Date, today: Date, system: CalendarSystem) -> bool {
    system.is_anniversary(birth_date, today)
}

/// How many years of membership `today` completes, if it is an anniversary of the
/// enrollment (same rule for short months as [`is_birthday`]); `None` on other days and on the
/// enrollment day itself.
pub fn anniversary_years(enrolled_at: Timestamp, today: Date, cal: &Calendar) -> Option<i32> {
    let enrolled_on = cal.date_of(enrolled_at);
    let years = cal.system.years_between(enrolled_on, today)?;
    (years > 0 && is_birthday(enrolled_on, today, cal.system)).then_some(years)
}

/// The birthdays (`MM-DD`, as stored) that may fall on `today` in the club's calendar; the
/// job keeps those that do ([`is_birthday`]). Gregorian: today's, and 29 February on 28
/// February of a common year. Persian: a Persian date moves against the Gregorian one by a day
/// or two from year to year, so the Gregorian days three either side of today, and 29 February
/// whenever they reach the end of February.
pub fn birthday_candidates(today: Date, system: CalendarSystem) -> Vec<String> {
    let reach = match system {
        CalendarSystem::Gregorian => 0,
        CalendarSystem::Persian => 3,
    };
    let mut days: Vec<Date> = (-reach..=reach)
        .filter_map(|offset| today.checked_add(offset.days()).ok())
        .collect();
    if days
        .iter()
        .any(|day| (day.month(), day.day()) == (2, 28) || (day.month(), day.day()) == (3, 1))
        && let Ok(leap_day) = Date::new(2000, 2, 29)
    {
        days.push(leap_day);
    }
    let mut days: Vec<String> = days
        .into_iter()
        .map(|day| day.strftime("%m-%d").to_string())
        .collect();
    days.sort_unstable();
    days.dedup();
    days
}
