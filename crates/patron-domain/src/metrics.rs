//! The club's success metrics as arithmetic: reporting periods in the club's time zone, the
//! activity windows of churn and active members, percentages, and each value against its
//! target (`docs/ANALYTICS.md`, "Success metrics").
//!
//! - Periods are calendar days, weeks or months in the program's time zone. Weeks start on
//!   Monday (ISO 8601) in every locale, so a week means the same thing in every club and in
//!   every report. A period is `[start, end)`: from local midnight to the next period's
//!   local midnight (a day across a daylight-saving change is 23 or 25 hours long).
//! - A range `from..=to` (local dates) covers the periods from the one containing `from` to
//!   the one containing `to`, at most [`PERIODS_MAX`].
//! - The activity window of a period ends where the period ends and is one
//!   [`ActivityPeriod`] long (calendar arithmetic in the time zone); the previous window is
//!   the same length just before it. With a monthly activity period and monthly reports the
//!   windows are the calendar months themselves.
//! - Percentages are exact decimals rounded half away from zero to two places; a ratio with
//!   nothing to divide by has no value (`None`), and a metric without a value neither meets
//!   nor misses its target.

use jiff::civil::{Date, Weekday};
use jiff::{Timestamp, ToSpan, Zoned};
use rust_decimal::{Decimal, RoundingStrategy};

use crate::calendar::{Calendar, CalendarSystem};
use crate::program::{ActivityPeriod, Targets};

/// The most periods one report covers (400 days is more than a year of daily figures).
pub const PERIODS_MAX: usize = 400;

/// How long each reporting period is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PeriodLength {
    Day,
    Week,
    Month,
}

impl PeriodLength {
    pub const ALL: [PeriodLength; 3] = [PeriodLength::Day, PeriodLength::Week, PeriodLength::Month];

    pub fn as_str(self) -> &'static str {
        match self {
            PeriodLength::Day => "day",
            PeriodLength::Week => "week",
            PeriodLength::Month => "month",
        }
    }

    pub fn parse(text: &str) -> Option<PeriodLength> {
        PeriodLength::ALL.into_iter().find(|p| p.as_str() == text)
    }

    /// The first day of the period that contains `date` (months of the club's calendar).
    pub fn align(self, date: Date, system: CalendarSystem) -> Date {
        match self {
            PeriodLength::Day => date,
            PeriodLength::Week => {
                let back = i64::from(date.weekday().to_monday_zero_offset());
                date.checked_sub(back.days()).unwrap_or(date)
            }
            PeriodLength::Month => system.first_of_month(date).unwrap_or(date),
        }
    }

    fn next(self, start: Date, system: CalendarSystem) -> Option<Date> {
        match self {
            PeriodLength::Day => start.checked_add(1.day()).ok(),
            PeriodLength::Week => start.checked_add(1.week()).ok(),
            PeriodLength::Month => system.add_months(start, 1),
        }
    }
}

/// One reporting period: `[start, end)` and its first local day.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Period {
    pub first_day: Date,
    /// The period's last local day (inclusive).
    pub last_day: Date,
    pub start: Timestamp,
    pub end: Timestamp,
}

/// Why a range of periods cannot be reported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PeriodError {
    /// `to` is before `from`.
    Reversed,
    /// More than [`PERIODS_MAX`] periods.
    TooMany { periods: usize },
    /// A date outside what the calendar arithmetic supports.
    OutOfRange,
}

impl std::fmt::Display for PeriodError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PeriodError::Reversed => f.write_str("`to` is before `from`"),
            PeriodError::TooMany { periods } => write!(
                f,
                "the range covers {periods} or more periods; at most {PERIODS_MAX} are reported at once"
            ),
            PeriodError::OutOfRange => f.write_str("the dates are out of the supported range"),
        }
    }
}

/// Local midnight of `date` in `tz` (the first instant of the day, also across a DST gap).
pub use crate::calendar::start_of_day;

/// The periods from the one containing `from` to the one containing `to`, in the club's zone
/// and calendar (a Persian club's months run from the first of each Persian month).
pub fn periods(
    length: PeriodLength,
    from: Date,
    to: Date,
    cal: &Calendar,
) -> Result<Vec<Period>, PeriodError> {
    if to < from {
        return Err(PeriodError::Reversed);
    }
    let tz = &cal.tz;
    let mut periods = Vec::new();
    let mut first = length.align(from, cal.system);
    while first <= to {
        if periods.len() == PERIODS_MAX {
            return Err(PeriodError::TooMany {
                periods: PERIODS_MAX + 1,
            });
        }
        let next = length
            .next(first, cal.system)
            .ok_or(PeriodError::OutOfRange)?;
        let start = start_of_day(first, tz).ok_or(PeriodError::OutOfRange)?;
        let end = start_of_day(next, tz).ok_or(PeriodError::OutOfRange)?;
        let last_day = next.yesterday().map_err(|_| PeriodError::OutOfRange)?;
        periods.push(Period {
            first_day: first,
            last_day,
            start,
            end,
        });
        first = next;
    }
    Ok(periods)
}

/// The activity window that ends at `end`: `[end − one activity period, end)`, in calendar
/// terms in the club's zone and calendar.
pub fn activity_window(
    end: Timestamp,
    activity: ActivityPeriod,
    cal: &Calendar,
) -> Option<(Timestamp, Timestamp)> {
    let months = match activity {
        ActivityPeriod::Day | ActivityPeriod::Week => {
            let zoned: Zoned = end.to_zoned(cal.tz.clone());
            let back = if activity == ActivityPeriod::Day {
                1.day()
            } else {
                1.week()
            };
            return Some((zoned.checked_sub(back).ok()?.timestamp(), end));
        }
        ActivityPeriod::Month => 1,
        ActivityPeriod::Quarter => 3,
        ActivityPeriod::Year => 12,
    };
    Some((cal.add_months_at(end, -months)?, end))
}

/// `numerator / denominator` in percent, rounded to two decimal places; `None` when the
/// denominator is not positive.
pub fn percent(numerator: i64, denominator: i64) -> Option<Decimal> {
    if denominator <= 0 {
        return None;
    }
    let value = Decimal::from(numerator)
        .checked_mul(Decimal::ONE_HUNDRED)?
        .checked_div(Decimal::from(denominator))?;
    Some(value.round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero))
}

/// The success metrics that have targets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Metric {
    IdentifiedRevenuePct,
    RedemptionPct,
    ChurnPct,
    ActivePct,
    Enrollments,
    Liability,
    BreakagePct,
}

impl Metric {
    /// Whether a higher value is better. Churn, liability and breakage are better low
    /// (breakage is points members never used: a program members value has little of it).
    pub fn higher_is_better(self) -> bool {
        !matches!(
            self,
            Metric::ChurnPct | Metric::Liability | Metric::BreakagePct
        )
    }

    /// The club's target for this metric in periods of `length`.
    pub fn target(self, targets: &Targets, length: PeriodLength) -> Option<Decimal> {
        match self {
            Metric::IdentifiedRevenuePct => targets.identified_revenue_pct,
            Metric::RedemptionPct => targets.redemption_pct,
            Metric::ChurnPct => targets.churn_pct,
            Metric::ActivePct => targets.active_pct,
            Metric::Liability => targets.liability,
            Metric::BreakagePct => targets.breakage_pct,
            Metric::Enrollments => match length {
                PeriodLength::Day => targets.enrollments.day,
                PeriodLength::Week => targets.enrollments.week,
                PeriodLength::Month => targets.enrollments.month,
            }
            .map(Decimal::from),
        }
    }
}

/// A metric's value next to its target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scored {
    pub value: Option<Decimal>,
    pub target: Option<Decimal>,
    /// Whether the value reaches the target (at least it, or at most it when lower is
    /// better); `None` without a value or a target.
    pub meets: Option<bool>,
}

/// Scores `value` against the club's target for `metric`.
pub fn score(
    metric: Metric,
    value: Option<Decimal>,
    targets: &Targets,
    length: PeriodLength,
) -> Scored {
    let target = metric.target(targets, length);
    let meets = match (value, target) {
        (Some(value), Some(target)) => Some(if metric.higher_is_better() {
            value >= target
        } else {
            value <= target
        }),
        _ => None,
    };
    Scored {
        value,
        target,
        meets,
    }
}

/// Points liability in major currency units: outstanding points × cost per point, rounded
/// to the currency's minor unit (half away from zero).
pub fn liability(outstanding_points: i64, cost_per_point: Decimal, minor_unit: u32) -> Decimal {
    Decimal::from(outstanding_points)
        .checked_mul(cost_per_point)
        .unwrap_or(Decimal::MAX)
        .round_dp_with_strategy(minor_unit, RoundingStrategy::MidpointAwayFromZero)
}

/// Whether `weekday` starts a reporting week (always Monday; see the module docs).
pub fn week_starts_on(weekday: Weekday) -> bool {
    weekday == Weekday::Monday
}

#[cfg(test)]
mod tests {

    use jiff::civil::date;
    use jiff::tz::TimeZone;

    use super::*;

    fn ny() -> Calendar {
        Calendar::gregorian(TimeZone::get("America/New_York").unwrap())
    }

    const GREGORIAN: CalendarSystem = CalendarSystem::Gregorian;

    #[test]
    fn weeks_start_on_monday_and_months_on_the_first() {
        // 2026-03-04 is a Wednesday.
        assert_eq!(
            PeriodLength::Week.align(date(2026, 3, 4), GREGORIAN),
            date(2026, 3, 2)
        );
        assert_eq!(
            PeriodLength::Week.align(date(2026, 3, 8), GREGORIAN),
            date(2026, 3, 2)
        );
        assert_eq!(
            PeriodLength::Month.align(date(2026, 3, 31), GREGORIAN),
            date(2026, 3, 1)
        );
        assert!(week_starts_on(date(2026, 3, 2).weekday()));
    }

    #[test]
    fn periods_cover_the_range_in_local_time_across_daylight_saving() {
        let tz = ny();
        let days = periods(PeriodLength::Day, date(2026, 3, 7), date(2026, 3, 9), &tz).unwrap();
        assert_eq!(days.len(), 3);
        // 2026-03-08 is the spring-forward day in New York: 23 hours.
        assert_eq!(days[1].end.duration_since(days[1].start).as_hours(), 23);
        assert_eq!(days[0].start.to_string(), "2026-03-07T05:00:00Z");
        let months = periods(
            PeriodLength::Month,
            date(2026, 1, 15),
            date(2026, 3, 1),
            &tz,
        )
        .unwrap();
        assert_eq!(months.len(), 3);
        assert_eq!(months[0].first_day, date(2026, 1, 1));
        assert_eq!(months[0].last_day, date(2026, 1, 31));
        assert_eq!(months[2].end.to_string(), "2026-04-01T04:00:00Z");
    }

    #[test]
    fn ranges_are_capped_and_ordered() {
        let tz = ny();
        assert_eq!(
            periods(PeriodLength::Day, date(2026, 3, 2), date(2026, 3, 1), &tz),
            Err(PeriodError::Reversed)
        );
        assert!(periods(PeriodLength::Day, date(2025, 1, 1), date(2026, 2, 4), &tz).is_ok());
        assert!(matches!(
            periods(PeriodLength::Day, date(2025, 1, 1), date(2026, 2, 5), &tz),
            Err(PeriodError::TooMany { .. })
        ));
    }

    #[test]
    fn activity_windows_are_calendar_lengths_back_from_the_end() {
        let tz = ny();
        let end = start_of_day(date(2026, 4, 1), &tz.tz).unwrap();
        let (start, _) = activity_window(end, ActivityPeriod::Month, &tz).unwrap();
        assert_eq!(start, start_of_day(date(2026, 3, 1), &tz.tz).unwrap());
        let (start, _) = activity_window(end, ActivityPeriod::Quarter, &tz).unwrap();
        assert_eq!(start, start_of_day(date(2026, 1, 1), &tz.tz).unwrap());
    }

    #[test]
    fn a_persian_clubs_months_are_persian_months() {
        let tehran = Calendar::new(
            TimeZone::get("Asia/Tehran").unwrap(),
            CalendarSystem::Persian,
        );
        // 1 April to 30 June 2025: from 12 Farvardin to 9 Tir 1404, four Persian months.
        let months = periods(
            PeriodLength::Month,
            date(2025, 4, 1),
            date(2025, 6, 30),
            &tehran,
        )
        .unwrap();
        let firsts: Vec<Date> = months.iter().map(|month| month.first_day).collect();
        assert_eq!(
            firsts,
            [
                date(2025, 3, 21),
                date(2025, 4, 21),
                date(2025, 5, 22),
                date(2025, 6, 22)
            ]
        );
        assert_eq!(months[0].last_day, date(2025, 4, 20));
        assert_eq!(months[0].start.to_string(), "2025-03-20T20:30:00Z");
        // A month of activity back from 1 Tir is back to 1 Khordad.
        let end = start_of_day(date(2025, 6, 22), &tehran.tz).unwrap();
        let (start, _) = activity_window(end, ActivityPeriod::Month, &tehran).unwrap();
        assert_eq!(start, start_of_day(date(2025, 5, 22), &tehran.tz).unwrap());
    }

    #[test]
    fn percentages_round_half_away_and_scores_follow_the_direction() {
        assert_eq!(percent(2, 3), Some(Decimal::new(6667, 2)));
        assert_eq!(percent(1, 8), Some(Decimal::new(1250, 2)));
        assert_eq!(percent(0, 0), None);
        let targets = Targets {
            churn_pct: Some(Decimal::from(10)),
            active_pct: Some(Decimal::from(50)),
            ..Targets::default()
        };
        let churn = score(
            Metric::ChurnPct,
            Some(Decimal::from(12)),
            &targets,
            PeriodLength::Month,
        );
        assert_eq!(churn.meets, Some(false));
        let active = score(
            Metric::ActivePct,
            Some(Decimal::from(50)),
            &targets,
            PeriodLength::Month,
        );
        assert_eq!(active.meets, Some(true));
        let none = score(Metric::ActivePct, None, &targets, PeriodLength::Month);
        assert_eq!(none.meets, None);
        let untargeted = score(
            Metric::Enrollments,
            Some(Decimal::ONE),
            &targets,
            PeriodLength::Day,
        );
        assert_eq!((untargeted.target, untargeted.meets), (None, None));
        assert_eq!(
            liability(1234, Decimal::new(1, 2), 2),
            Decimal::new(1234, 2)
        );
    }
}
