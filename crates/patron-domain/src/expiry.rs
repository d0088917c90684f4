//! When points expire and when pending points become available.
//!
//! All calendar arithmetic happens on the civil (wall-clock) date and time in the program's time
//! zone, because that is how members read "12 months" or "end of the month": adding a month to
//! 31 January gives 28 (or 29) February, and adding a day across a daylight-saving change keeps
//! the wall-clock time (so that day lasts 23 or 25 hours). When the result falls in a DST gap or
//! fold, jiff's default "compatible" disambiguation applies: a time skipped by a gap moves
//! forward by the gap's length, a repeated time takes its first occurrence.
//!
//! "End of a period" is represented as the first instant of the next period (a lot is expired
//! when `now >= expires_at`), so "end of March" is 1 April 00:00 local time, or the first
//! instant of 1 April if midnight does not exist that day.
//!
//! Nothing here panics: arithmetic beyond jiff's range (year 9999) yields `None` ("no expiry
//! within the representable future") or, when only the rounding fails, the unrounded instant.

use jiff::tz::TimeZone;
use jiff::{Span, Timestamp};

use crate::calendar::Calendar;
pub use crate::calendar::start_of_day;

/// How long earned points wait before the member can spend them (the return window).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pending {
    /// Calendar days in the program's time zone; 0 means points are available at once.
    pub days: u32,
}

/// Where an expiry instant is rounded up to. See [`round_up`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ExpiryRounding {
    None,
    EndOfDay,
    EndOfMonth,
    EndOfQuarter,
    EndOfYear,
}

/// The unit of an [`ExpiryPolicy::AfterEarning`] period.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ExpiryUnit {
    Days,
    Months,
}

/// When points expire. See [`crate::expiry`] for the exact instants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExpiryPolicy {
    /// Points never expire.
    Never,
    /// Each lot expires a fixed period after it was earned, optionally rounded up to the end of
    /// a day, month, quarter or year.
    AfterEarning {
        amount: u32,
        unit: ExpiryUnit,
        round_to: ExpiryRounding,
    },
    /// Every lot expires at the start of the next occurrence of this date (in the program's time
    /// zone). `month` is 1-12; `day` is 1-31 and valid for the month (29 February is allowed and
    /// falls on 28 February in other years).
    FixedYearlyDate { month: i8, day: i8 },
    /// All of a member's points expire after this many months without activity.
    Inactivity { months: u32 },
}

/// When a lot of points earned at `earned_at` expires, or `None` if lots do not expire on their
/// own: under [`ExpiryPolicy::Never`], and under [`ExpiryPolicy::Inactivity`], where expiry is
/// decided per account (see [`inactivity_expires_at`]). Months, quarters and years are the
/// club's calendar's ([`crate::calendar`]).
///
/// - `AfterEarning`: `earned_at` plus the period (civil days or months), then rounded up with
///   [`round_up`].
/// - `FixedYearlyDate`: the first instant of the next occurrence of that month and day strictly
///   after `earned_at` (a day the month lacks that year falls on its last day: 29 February on
///   28 February, 30 Esfand on 29 Esfand). Points earned a moment before the date therefore
///   live only that moment; clubs that want a minimum lifetime use `AfterEarning` with
///   `EndOfYear` rounding instead.
pub fn lot_expires_at(
    policy: &ExpiryPolicy,
    earned_at: Timestamp,
    cal: &Calendar,
) -> Option<Timestamp> {
    match *policy {
        ExpiryPolicy::Never | ExpiryPolicy::Inactivity { .. } => None,
        ExpiryPolicy::AfterEarning {
            amount,
            unit,
            round_to,
        } => {
            let expires_at = add_civil(earned_at, amount, unit, cal)?;
            Some(round_up(expires_at, round_to, cal))
        }
        ExpiryPolicy::FixedYearlyDate { month, day } => {
            next_yearly_date(earned_at, month, day, cal)
        }
    }
}

/// When all of a member's points expire for inactivity: `last_activity_at` plus the configured
/// months (civil, in the program's zone and calendar). `None` for every other policy.
pub fn inactivity_expires_at(
    policy: &ExpiryPolicy,
    last_activity_at: Timestamp,
    cal: &Calendar,
) -> Option<Timestamp> {
    match *policy {
        ExpiryPolicy::Inactivity { months } => {
            add_civil(last_activity_at, months, ExpiryUnit::Months, cal)
        }
        _ => None,
    }
}

/// When points earned at `earned_at` stop being pending: `earned_at` plus the configured civil
/// days, or `None` when points are available at once (`days == 0`).
pub fn pending_until(pending: &Pending, earned_at: Timestamp, cal: &Calendar) -> Option<Timestamp> {
    if pending.days == 0 {
        return None;
    }
    add_days(earned_at, pending.days, &cal.tz)
}

/// Rounds `instant` up to the next boundary of a local day, month, quarter or year of the
/// club's calendar: the first instant of the period that follows the one containing `instant`.
/// An instant already on a boundary is left as it is, so rounding is idempotent and never moves
/// an instant earlier. `ExpiryRounding::None` returns `instant` unchanged.
pub fn round_up(instant: Timestamp, rounding: ExpiryRounding, cal: &Calendar) -> Timestamp {
    match next_boundary(instant, rounding, cal) {
        // The check only fails when a zone's clocks go back across midnight, which can make the
        // next period's start precede a late instant of the current one; keep the instant then.
        Some(boundary) if boundary >= instant => boundary,
        // Beyond the representable range (year 9999): the unrounded instant is the best answer.
        _ => instant,
    }
}

fn next_boundary(
    instant: Timestamp,
    rounding: ExpiryRounding,
    cal: &Calendar,
) -> Option<Timestamp> {
    let date = cal.date_of(instant);
    let system = cal.system;
    let (period_start, next_period_start) = match rounding {
        ExpiryRounding::None => return Some(instant),
        ExpiryRounding::EndOfDay => (date, date.tomorrow().ok()?),
        ExpiryRounding::EndOfMonth => {
            let first = system.first_of_month(date)?;
            (first, system.add_months(first, 1)?)
        }
        ExpiryRounding::EndOfQuarter => {
            let first = system.first_of_quarter(date)?;
            (first, system.add_months(first, 3)?)
        }
        ExpiryRounding::EndOfYear => {
            let first = system.first_of_year(date)?;
            (first, system.add_months(first, 12)?)
        }
    };
    if cal.start_of_day(period_start)? == instant {
        return Some(instant);
    }
    cal.start_of_day(next_period_start)
}

/// `instant` plus `amount` civil days or months of the club's calendar, in its zone. `None`
/// beyond jiff's range.
pub(crate) fn add_civil(
    instant: Timestamp,
    amount: u32,
    unit: ExpiryUnit,
    cal: &Calendar,
) -> Option<Timestamp> {
    match unit {
        ExpiryUnit::Days => add_days(instant, amount, &cal.tz),
        ExpiryUnit::Months => cal.add_months_at(instant, i64::from(amount)),
    }
}

/// `instant` plus `days` civil days in `tz` (the wall-clock time kept). `None` beyond jiff's
/// range.
pub(crate) fn add_days(instant: Timestamp, days: u32, tz: &TimeZone) -> Option<Timestamp> {
    let span = Span::new().try_days(i64::from(days)).ok()?;
    instant
        .to_zoned(tz.clone())
        .checked_add(span)
        .ok()
        .map(|zoned| zoned.timestamp())
}

/// The first instant of the next `month`/`day` of the club's calendar strictly after
/// `instant`. `None` for an invalid month (impossible after validation) or beyond jiff's range.
fn next_yearly_date(instant: Timestamp, month: i8, day: i8, cal: &Calendar) -> Option<Timestamp> {
    let year = cal.system.ymd(cal.date_of(instant))?.year;
    // This year's date, or if it has passed, next year's: the one after is always later.
    for year in [year, year.checked_add(1)?] {
        let date = cal.system.date_clamped(year, month, day)?;
        let start = cal.start_of_day(date)?;
        if start > instant {
            return Some(start);
        }
    }
    None
}

#[cfg(test)]
mod tests {

    use super::*;
    use jiff::civil::DateTime;
    use jiff::{SignedDuration, Zoned};
    use proptest::prelude::*;

    fn tz(name: &str) -> Calendar {
        Calendar::gregorian(TimeZone::get(name).unwrap())
    }

    fn utc() -> Calendar {
        Calendar::gregorian(TimeZone::UTC)
    }

    /// An instant from a local wall-clock time like "2024-01-31T10:00".
    fn at(local: &str, zone: &str) -> Timestamp {
        local
            .parse::<DateTime>()
            .unwrap()
            .to_zoned(tz(zone).tz)
            .unwrap()
            .timestamp()
    }

    fn local(instant: Timestamp, zone: &str) -> Zoned {
        instant.to_zoned(tz(zone).tz)
    }

    fn after(amount: u32, unit: ExpiryUnit, round_to: ExpiryRounding) -> ExpiryPolicy {
        ExpiryPolicy::AfterEarning {
            amount,
            unit,
            round_to,
        }
    }

    #[test]
    fn never_and_inactivity_lots_have_no_expiry() {
        let now = at("2024-05-01T12:00", "UTC");
        assert_eq!(lot_expires_at(&ExpiryPolicy::Never, now, &utc()), None);
        let inactivity = ExpiryPolicy::Inactivity { months: 12 };
        assert_eq!(lot_expires_at(&inactivity, now, &utc()), None);
    }

    #[test]
    fn a_month_after_january_31_is_the_last_day_of_february() {
        let policy = after(1, ExpiryUnit::Months, ExpiryRounding::None);
        let leap = lot_expires_at(&policy, at("2024-01-31T10:00", "UTC"), &utc());
        assert_eq!(leap, Some(at("2024-02-29T10:00", "UTC")));
        let common = lot_expires_at(&policy, at("2023-01-31T10:00", "UTC"), &utc());
        assert_eq!(common, Some(at("2023-02-28T10:00", "UTC")));
    }

    #[test]
    fn twelve_months_rounded_to_end_of_month_in_tehran() {
        let policy = after(12, ExpiryUnit::Months, ExpiryRounding::EndOfMonth);
        let expires = lot_expires_at(
            &policy,
            at("2024-03-15T10:00", "Asia/Tehran"),
            &tz("Asia/Tehran"),
        );
        assert_eq!(expires, Some(at("2025-04-01T00:00", "Asia/Tehran")));
        assert_eq!(
            local(expires.unwrap(), "Asia/Tehran").offset().seconds(),
            3 * 3600 + 1800
        );
    }

    #[test]
    fn a_persian_club_rounds_to_the_end_of_the_persian_month_quarter_and_year() {
        let tehran = Calendar::new(
            TimeZone::get("Asia/Tehran").unwrap(),
            crate::calendar::CalendarSystem::Persian,
        );
        // Earned 25 Esfand 1402 (15 March 2024); 12 Persian months later is 25 Esfand 1403
        // (15 March 2025), whose month ends with 30 Esfand: the points last until Nowruz.
        let earned = at("2024-03-15T10:00", "Asia/Tehran");
        let policy = after(12, ExpiryUnit::Months, ExpiryRounding::EndOfMonth);
        assert_eq!(
            lot_expires_at(&policy, earned, &tehran),
            Some(at("2025-03-21T00:00", "Asia/Tehran"))
        );
        // The Persian quarters start on 1 Farvardin, 1 Tir, 1 Mehr and 1 Dey.
        let summer = at("2025-07-01T10:00", "Asia/Tehran"); // 10 Tir 1404
        assert_eq!(
            round_up(summer, ExpiryRounding::EndOfQuarter, &tehran),
            at("2025-09-23T00:00", "Asia/Tehran")
        );
        assert_eq!(
            round_up(summer, ExpiryRounding::EndOfYear, &tehran),
            at("2026-03-21T00:00", "Asia/Tehran")
        );
        // Points that expire every Nowruz (1 Farvardin).
        let nowruz = ExpiryPolicy::FixedYearlyDate { month: 1, day: 1 };
        assert_eq!(
            lot_expires_at(&nowruz, summer, &tehran),
            Some(at("2026-03-21T00:00", "Asia/Tehran"))
        );
        // The inactivity policy counts Persian months too.
        let inactivity = ExpiryPolicy::Inactivity { months: 1 };
        assert_eq!(
            inactivity_expires_at(&inactivity, at("2025-09-22T09:00", "Asia/Tehran"), &tehran),
            Some(at("2025-10-22T09:00", "Asia/Tehran")) // 31 Shahrivar + 1 = 30 Mehr
        );
    }

    #[test]
    fn end_of_day_quarter_and_year_round_to_the_next_period_start() {
        let zone = tz("America/New_York");
        let earned = at("2024-05-20T15:30", "America/New_York");
        let cases = [
            (ExpiryRounding::None, "2024-06-20T15:30"),
            (ExpiryRounding::EndOfDay, "2024-06-21T00:00"),
            (ExpiryRounding::EndOfMonth, "2024-07-01T00:00"),
            (ExpiryRounding::EndOfQuarter, "2024-07-01T00:00"),
            (ExpiryRounding::EndOfYear, "2025-01-01T00:00"),
        ];
        for (rounding, expected) in cases {
            let policy = after(1, ExpiryUnit::Months, rounding);
            assert_eq!(
                lot_expires_at(&policy, earned, &zone),
                Some(at(expected, "America/New_York")),
                "{rounding:?}"
            );
        }
    }

    #[test]
    fn quarters_end_on_april_july_october_and_january_first() {
        let zone = utc();
        let cases = [
            ("2024-01-01T00:00:01", "2024-04-01T00:00"),
            ("2024-03-31T23:59", "2024-04-01T00:00"),
            ("2024-04-01T00:00", "2024-04-01T00:00"),
            ("2024-08-15T12:00", "2024-10-01T00:00"),
            ("2024-11-05T00:00", "2025-01-01T00:00"),
        ];
        for (instant, expected) in cases {
            assert_eq!(
                round_up(at(instant, "UTC"), ExpiryRounding::EndOfQuarter, &zone),
                at(expected, "UTC"),
                "{instant}"
            );
        }
    }

    #[test]
    fn an_instant_on_a_boundary_is_not_rounded_further() {
        let zone = tz("Asia/Jerusalem");
        let midnight = at("2024-07-01T00:00", "Asia/Jerusalem");
        for rounding in [
            ExpiryRounding::EndOfDay,
            ExpiryRounding::EndOfMonth,
            ExpiryRounding::EndOfQuarter,
        ] {
            assert_eq!(
                round_up(midnight, rounding, &zone),
                midnight,
                "{rounding:?}"
            );
        }
        assert_eq!(
            round_up(midnight, ExpiryRounding::EndOfYear, &zone),
            at("2025-01-01T00:00", "Asia/Jerusalem")
        );
    }

    #[test]
    fn days_keep_the_wall_clock_time_across_daylight_saving_changes() {
        let zone = tz("America/New_York");
        let policy = after(1, ExpiryUnit::Days, ExpiryRounding::None);
        // Spring forward on 10 March 2024: that day has 23 hours.
        let earned = at("2024-03-09T12:00", "America/New_York");
        let expires = lot_expires_at(&policy, earned, &zone).unwrap();
        assert_eq!(expires, at("2024-03-10T12:00", "America/New_York"));
        assert_eq!(
            expires.duration_since(earned),
            SignedDuration::from_hours(23)
        );
        // Fall back on 3 November 2024: that day has 25 hours.
        let earned = at("2024-11-02T12:00", "America/New_York");
        let expires = lot_expires_at(&policy, earned, &zone).unwrap();
        assert_eq!(
            expires.duration_since(earned),
            SignedDuration::from_hours(25)
        );
    }

    #[test]
    fn a_time_in_the_jerusalem_dst_gap_moves_forward() {
        // Israel skipped 02:00-03:00 on 29 March 2024.
        let zone = tz("Asia/Jerusalem");
        let earned = at("2024-03-28T02:30", "Asia/Jerusalem");
        let until = pending_until(&Pending { days: 1 }, earned, &zone).unwrap();
        let wall = local(until, "Asia/Jerusalem");
        assert_eq!((wall.day(), wall.hour(), wall.minute()), (29, 3, 30));
        assert_eq!(until.duration_since(earned), SignedDuration::from_hours(24));
    }

    #[test]
    fn end_of_day_in_tehran_when_midnight_did_not_exist() {
        // Iran moved clocks from 00:00 to 01:00 on 22 March 2021: that day began at 01:00.
        let zone = tz("Asia/Tehran");
        let evening = at("2021-03-21T20:00", "Asia/Tehran");
        let boundary = round_up(evening, ExpiryRounding::EndOfDay, &zone);
        let wall = local(boundary, "Asia/Tehran");
        assert_eq!((wall.month(), wall.day(), wall.hour()), (3, 22, 1));
        assert_eq!(
            boundary.duration_since(evening),
            SignedDuration::from_hours(4)
        );
        assert_eq!(
            round_up(boundary, ExpiryRounding::EndOfDay, &zone),
            boundary
        );
    }

    #[test]
    fn fixed_yearly_date_is_the_next_occurrence_strictly_after_earning() {
        let zone = tz("Asia/Jerusalem");
        let new_year = ExpiryPolicy::FixedYearlyDate { month: 1, day: 1 };
        let cases = [
            ("2024-06-01T09:00", "2025-01-01T00:00"),
            ("2024-12-31T23:59", "2025-01-01T00:00"),
            ("2025-01-01T00:00", "2026-01-01T00:00"),
            ("2025-01-01T00:01", "2026-01-01T00:00"),
        ];
        for (earned, expected) in cases {
            assert_eq!(
                lot_expires_at(&new_year, at(earned, "Asia/Jerusalem"), &zone),
                Some(at(expected, "Asia/Jerusalem")),
                "{earned}"
            );
        }
        let mid_year = ExpiryPolicy::FixedYearlyDate { month: 7, day: 1 };
        assert_eq!(
            lot_expires_at(&mid_year, at("2024-03-01T00:00", "Asia/Jerusalem"), &zone),
            Some(at("2024-07-01T00:00", "Asia/Jerusalem"))
        );
    }

    #[test]
    fn february_29_falls_on_february_28_in_common_years() {
        let zone = utc();
        let policy = ExpiryPolicy::FixedYearlyDate { month: 2, day: 29 };
        let cases = [
            ("2023-03-01T00:00", "2024-02-29T00:00"),
            ("2024-02-28T12:00", "2024-02-29T00:00"),
            ("2024-03-01T00:00", "2025-02-28T00:00"),
            ("2025-02-28T00:00", "2026-02-28T00:00"),
        ];
        for (earned, expected) in cases {
            assert_eq!(
                lot_expires_at(&policy, at(earned, "UTC"), &zone),
                Some(at(expected, "UTC")),
                "{earned}"
            );
        }
    }

    #[test]
    fn the_fixed_date_is_local_midnight_not_utc() {
        // In Tehran (+03:30) 1 January starts at 20:30 UTC on 31 December.
        let zone = tz("Asia/Tehran");
        let policy = ExpiryPolicy::FixedYearlyDate { month: 1, day: 1 };
        let earned = "2024-12-31T21:00:00Z".parse::<Timestamp>().unwrap();
        assert_eq!(
            lot_expires_at(&policy, earned, &zone),
            Some("2025-12-31T20:30:00Z".parse::<Timestamp>().unwrap())
        );
    }

    #[test]
    fn inactivity_counts_calendar_months_from_the_last_activity() {
        let zone = tz("America/New_York");
        let policy = ExpiryPolicy::Inactivity { months: 12 };
        let last = at("2024-02-29T18:00", "America/New_York");
        assert_eq!(
            inactivity_expires_at(&policy, last, &zone),
            Some(at("2025-02-28T18:00", "America/New_York"))
        );
        let never = ExpiryPolicy::Never;
        assert_eq!(inactivity_expires_at(&never, last, &zone), None);
        let fixed = after(12, ExpiryUnit::Months, ExpiryRounding::None);
        assert_eq!(inactivity_expires_at(&fixed, last, &zone), None);
    }

    #[test]
    fn pending_is_none_for_zero_days_and_counts_civil_days_otherwise() {
        let zone = tz("Asia/Jerusalem");
        let earned = at("2024-10-20T11:00", "Asia/Jerusalem");
        assert_eq!(pending_until(&Pending { days: 0 }, earned, &zone), None);
        // 14 days across the end of DST on 27 October keep 11:00 on the wall clock.
        assert_eq!(
            pending_until(&Pending { days: 14 }, earned, &zone),
            Some(at("2024-11-03T11:00", "Asia/Jerusalem"))
        );
    }

    #[test]
    fn arithmetic_beyond_year_9999_does_not_panic() {
        let zone = utc();
        let late = Timestamp::MAX;
        let policy = after(12, ExpiryUnit::Months, ExpiryRounding::EndOfYear);
        assert_eq!(lot_expires_at(&policy, late, &zone), None);
        assert_eq!(round_up(late, ExpiryRounding::EndOfYear, &zone), late);
        let fixed = ExpiryPolicy::FixedYearlyDate { month: 1, day: 1 };
        assert_eq!(lot_expires_at(&fixed, late, &zone), None);
        let invalid = ExpiryPolicy::FixedYearlyDate { month: 13, day: 1 };
        assert_eq!(
            lot_expires_at(&invalid, at("2024-01-01T00:00", "UTC"), &zone),
            None
        );
    }

    const ZONES: [&str; 6] = [
        "UTC",
        "Asia/Tehran",
        "Asia/Jerusalem",
        "America/New_York",
        "America/Sao_Paulo",
        "Australia/Lord_Howe",
    ];
    const ROUNDINGS: [ExpiryRounding; 5] = [
        ExpiryRounding::None,
        ExpiryRounding::EndOfDay,
        ExpiryRounding::EndOfMonth,
        ExpiryRounding::EndOfQuarter,
        ExpiryRounding::EndOfYear,
    ];

    fn instant() -> impl Strategy<Value = Timestamp> {
        // 1970 to 2100, to the second.
        (0_i64..4_102_444_800).prop_map(|seconds| Timestamp::from_second(seconds).unwrap())
    }

    fn system() -> impl Strategy<Value = crate::calendar::CalendarSystem> {
        prop::sample::select(crate::calendar::CalendarSystem::ALL.to_vec())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn expiry_is_never_before_earning(
            earned in instant(),
            zone in 0..ZONES.len(),
            amount in 0_u32..=120,
            months in any::<bool>(),
            rounding in 0..ROUNDINGS.len(),
            system in system(),
        ) {
            let zone = Calendar::new(tz(ZONES[zone]).tz, system);
            let unit = if months { ExpiryUnit::Months } else { ExpiryUnit::Days };
            let policy = after(amount, unit, ROUNDINGS[rounding]);
            let expires = lot_expires_at(&policy, earned, &zone).unwrap();
            prop_assert!(expires >= earned);
        }

        #[test]
        fn rounding_moves_forward_to_a_boundary_and_is_idempotent(
            instant in instant(),
            zone_index in 0..ZONES.len(),
            rounding in 0..ROUNDINGS.len(),
            system in system(),
        ) {
            let zone = Calendar::new(tz(ZONES[zone_index]).tz, system);
            let rounding = ROUNDINGS[rounding];
            let rounded = round_up(instant, rounding, &zone);
            prop_assert!(rounded >= instant);
            prop_assert_eq!(round_up(rounded, rounding, &zone), rounded);
            let wall = rounded.to_zoned(zone.tz.clone());
            if rounding != ExpiryRounding::None {
                prop_assert_eq!(wall.start_of_day().unwrap().timestamp(), rounded);
                // Less than one period (plus a DST hour) later.
                let period_days_max = match rounding {
                    ExpiryRounding::EndOfDay => 1,
                    ExpiryRounding::EndOfMonth => 31,
                    // A Persian spring or summer quarter: three 31-day months.
                    ExpiryRounding::EndOfQuarter => 93,
                    _ => 366,
                };
                prop_assert!(rounded.duration_since(instant) <= SignedDuration::from_hours(24 * period_days_max + 1));
            }
            // On the first day of a month, quarter or year of the club's calendar.
            let wall = system.ymd(wall.date()).unwrap();
            match rounding {
                ExpiryRounding::EndOfMonth => prop_assert_eq!(wall.day, 1),
                ExpiryRounding::EndOfQuarter => {
                    prop_assert_eq!(wall.day, 1);
                    prop_assert!([1, 4, 7, 10].contains(&wall.month));
                }
                ExpiryRounding::EndOfYear => prop_assert_eq!((wall.month, wall.day), (1, 1)),
                _ => {}
            }
        }

        #[test]
        fn rounding_never_moves_expiry_earlier_than_unrounded(
            earned in instant(),
            zone in 0..ZONES.len(),
            amount in 1_u32..=24,
            rounding in 0..ROUNDINGS.len(),
            system in system(),
        ) {
            let zone = Calendar::new(tz(ZONES[zone]).tz, system);
            let plain = lot_expires_at(&after(amount, ExpiryUnit::Months, ExpiryRounding::None), earned, &zone);
            let rounded = lot_expires_at(&after(amount, ExpiryUnit::Months, ROUNDINGS[rounding]), earned, &zone);
            prop_assert!(rounded >= plain);
        }

        #[test]
        fn fixed_yearly_date_is_within_a_year_and_on_the_date(
            earned in instant(),
            zone in 0..ZONES.len(),
            month in 1_i8..=12,
            day in 1_i8..=31,
        ) {
            let zone = tz(ZONES[zone]);
            let policy = ExpiryPolicy::FixedYearlyDate { month, day };
            let expires = lot_expires_at(&policy, earned, &zone).unwrap();
            prop_assert!(expires > earned);
            prop_assert!(expires.duration_since(earned) <= SignedDuration::from_hours(24 * 366 + 1));
            let wall = expires.to_zoned(zone.tz.clone());
            prop_assert_eq!(wall.month(), month);
            prop_assert_eq!(wall.day(), day.min(wall.days_in_month()));
        }
    }
}
