//! The club's calendar: its time zone and the calendar its months and years are counted in.
//!
//! Everything the program counts in months or years (points that last "12 months", rounded to
//! "the end of the month"; a fixed yearly expiry date; a tier's calendar year; a rule's monthly
//! limit; birthdays and anniversaries; monthly reports) is counted in the club's calendar:
//! - `gregorian` (the default);
//! - `persian`, the Solar Hijri calendar of Iran (Farvardin to Esfand, the year starting at
//!   Nowruz), through `icu_calendar`'s arithmetic Persian calendar. A Persian club's "end of the
//!   month" is the end of the Persian month, its year runs from 1 Farvardin, and a member born
//!   on 30 Esfand celebrates on 29 Esfand in common years.
//!
//! Dates are still stored and exchanged as ISO (Gregorian) dates and instants: the calendar
//! only decides where months and years begin and end. Day and week arithmetic does not depend
//! on it.
//!
//! Month arithmetic clamps the day to the target month's length, in either calendar: a month
//! after 31 January is 28 (or 29) February, a month after 31 Shahrivar is 30 Mehr. Nothing here
//! panics: a date outside jiff's range (years -9999 to 9999) gives `None`.

use icu_calendar::cal::Persian;
use icu_calendar::{Date as IcuDate, Iso};
use jiff::civil::Date;
use jiff::tz::TimeZone;
use jiff::{Span, Timestamp};

/// The calendar a club counts its months and years in (the program's `[club] calendar`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub enum CalendarSystem {
    #[default]
    Gregorian,
    /// The Solar Hijri calendar (Iran's official calendar).
    Persian,
}

impl CalendarSystem {
    pub const ALL: [CalendarSystem; 2] = [CalendarSystem::Gregorian, CalendarSystem::Persian];

    pub fn as_str(self) -> &'static str {
        match self {
            CalendarSystem::Gregorian => "gregorian",
            CalendarSystem::Persian => "persian",
        }
    }

    /// The year, month (1-based) and day of `date` in this calendar.
    pub fn ymd(self, date: Date) -> Option<Ymd> {
        match self {
            CalendarSystem::Gregorian => Some(Ymd {
                year: i32::from(date.year()),
                month: date.month(),
                day: date.day(),
            }),
            CalendarSystem::Persian => {
                let iso = IcuDate::try_new_iso(
                    i32::from(date.year()),
                    u8::try_from(date.month()).ok()?,
                    u8::try_from(date.day()).ok()?,
                )
                .ok()?;
                let persian = iso.to_calendar(Persian::new());
                Some(Ymd {
                    year: persian.year().extended_year(),
                    month: i8::try_from(persian.month().ordinal).ok()?,
                    day: i8::try_from(persian.day_of_month().0).ok()?,
                })
            }
        }
    }

    /// How many days `month` of `year` has in this calendar (`None` for a month that does not
    /// exist or a year out of range).
    pub fn days_in_month(self, year: i32, month: i8) -> Option<i8> {
        match self {
            CalendarSystem::Gregorian => Some(
                Date::new(i16::try_from(year).ok()?, month, 1)
                    .ok()?
                    .days_in_month(),
            ),
            CalendarSystem::Persian => {
                let first = IcuDate::try_new_persian(year, u8::try_from(month).ok()?, 1).ok()?;
                i8::try_from(first.days_in_month()).ok()
            }
        }
    }

    /// The ISO date of `day` `month` `year` in this calendar, the day clamped to the month's
    /// length (30 Esfand is 29 Esfand in a common year, 29 February is 28 February).
    pub fn date_clamped(self, year: i32, month: i8, day: i8) -> Option<Date> {
        let day = day.clamp(1, self.days_in_month(year, month)?);
        match self {
            CalendarSystem::Gregorian => Date::new(i16::try_from(year).ok()?, month, day).ok(),
            CalendarSystem::Persian => {
                let persian = IcuDate::try_new_persian(
                    year,
                    u8::try_from(month).ok()?,
                    u8::try_from(day).ok()?,
                )
                .ok()?;
                let iso = persian.to_calendar(Iso);
                Date::new(
                    i16::try_from(iso.year().extended_year()).ok()?,
                    i8::try_from(iso.month().ordinal).ok()?,
                    i8::try_from(iso.day_of_month().0).ok()?,
                )
                .ok()
            }
        }
    }

    /// The first day of the month that contains `date`.
    pub fn first_of_month(self, date: Date) -> Option<Date> {
        let ymd = self.ymd(date)?;
        self.date_clamped(ymd.year, ymd.month, 1)
    }

    /// The first day of the quarter (months 1–3, 4–6, 7–9, 10–12) that contains `date`.
    pub fn first_of_quarter(self, date: Date) -> Option<Date> {
        let ymd = self.ymd(date)?;
        self.date_clamped(ymd.year, (ymd.month - 1) / 3 * 3 + 1, 1)
    }

    /// The first day of the year that contains `date` (1 January; 1 Farvardin).
    pub fn first_of_year(self, date: Date) -> Option<Date> {
        let ymd = self.ymd(date)?;
        self.date_clamped(ymd.year, 1, 1)
    }

    /// `date` plus `months` (negative: minus), the day clamped to the target month's length.
    pub fn add_months(self, date: Date, months: i64) -> Option<Date> {
        match self {
            CalendarSystem::Gregorian => {
                date.checked_add(Span::new().try_months(months).ok()?).ok()
            }
            CalendarSystem::Persian => {
                let ymd = self.ymd(date)?;
                let index = i64::from(ymd.year)
                    .checked_mul(12)?
                    .checked_add(i64::from(ymd.month - 1))?
                    .checked_add(months)?;
                let year = i32::try_from(index.div_euclid(12)).ok()?;
                let month = i8::try_from(index.rem_euclid(12) + 1).ok()?;
                self.date_clamped(year, month, ymd.day)
            }
        }
    }

    /// Whether `today` is an anniversary of `date` (a birthday, an enrollment day): the same
    /// month and day in this calendar, or the month's last day when this year's month is too
    /// short for the day (29 February on 28 February, 30 Esfand on 29 Esfand). `date` itself
    /// counts; the caller excludes it when it must.
    pub fn is_anniversary(self, date: Date, today: Date) -> bool {
        let (Some(of), Some(now)) = (self.ymd(date), self.ymd(today)) else {
            return false;
        };
        if of.month != now.month {
            return false;
        }
        match self.days_in_month(now.year, now.month) {
            Some(last) if of.day > last => now.day == last,
            _ => now.day == of.day,
        }
    }

    /// How many whole years of this calendar lie between `since` and `today`'s anniversary of
    /// it (the year numbers' difference).
    pub fn years_between(self, since: Date, today: Date) -> Option<i32> {
        Some(self.ymd(today)?.year - self.ymd(since)?.year)
    }
}

impl std::fmt::Display for CalendarSystem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A date in a club's calendar: year, month (1–12) and day (1–31).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Ymd {
    pub year: i32,
    pub month: i8,
    pub day: i8,
}

/// A club's time zone with its calendar: what every civil computation of the program needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Calendar {
    pub tz: TimeZone,
    pub system: CalendarSystem,
}

impl Calendar {
    pub fn new(tz: TimeZone, system: CalendarSystem) -> Calendar {
        Calendar { tz, system }
    }

    /// The Gregorian calendar in `tz`.
    pub fn gregorian(tz: TimeZone) -> Calendar {
        Calendar::new(tz, CalendarSystem::Gregorian)
    }

    /// The local date of `instant`.
    pub fn date_of(&self, instant: Timestamp) -> Date {
        instant.to_zoned(self.tz.clone()).date()
    }

    /// The first instant of a local date: midnight, or the end of a DST gap that swallows it.
    pub fn start_of_day(&self, date: Date) -> Option<Timestamp> {
        start_of_day(date, &self.tz)
    }

    /// `instant` plus `months` (negative: minus) of this calendar, keeping the local wall-clock
    /// time; a time that falls in a DST gap moves forward by the gap, a repeated one takes its
    /// first occurrence (jiff's "compatible" disambiguation, as `Zoned` arithmetic does).
    pub fn add_months_at(&self, instant: Timestamp, months: i64) -> Option<Timestamp> {
        let zoned = instant.to_zoned(self.tz.clone());
        match self.system {
            CalendarSystem::Gregorian => zoned
                .checked_add(Span::new().try_months(months).ok()?)
                .ok()
                .map(|zoned| zoned.timestamp()),
            CalendarSystem::Persian => {
                let date = self.system.add_months(zoned.date(), months)?;
                date.to_datetime(zoned.time())
                    .to_zoned(self.tz.clone())
                    .ok()
                    .map(|zoned| zoned.timestamp())
            }
        }
    }
}

/// The first instant of a local date: midnight, or the end of a DST gap that swallows midnight.
pub fn start_of_day(date: Date, tz: &TimeZone) -> Option<Timestamp> {
    date.to_zoned(tz.clone())
        .ok()
        .map(|zoned| zoned.timestamp())
}

#[cfg(test)]
mod tests {

    use proptest::prelude::*;

    use super::*;

    fn date(y: i16, m: i8, d: i8) -> Date {
        Date::new(y, m, d).unwrap()
    }

    const PERSIAN: CalendarSystem = CalendarSystem::Persian;

    #[test]
    fn nowruz_and_the_persian_months() {
        // 1 Farvardin 1404 was 21 March 2025; 1403 was a leap year (30 Esfand = 20 March 2025).
        assert_eq!(
            PERSIAN.ymd(date(2025, 3, 21)),
            Some(Ymd {
                year: 1404,
                month: 1,
                day: 1
            })
        );
        assert_eq!(PERSIAN.date_clamped(1403, 12, 30), Some(date(2025, 3, 20)));
        assert_eq!(PERSIAN.days_in_month(1403, 12), Some(30));
        assert_eq!(PERSIAN.days_in_month(1404, 12), Some(29));
        // The first six months have 31 days, the next five 30.
        assert_eq!(PERSIAN.days_in_month(1404, 6), Some(31));
        assert_eq!(PERSIAN.days_in_month(1404, 7), Some(30));
        assert_eq!(PERSIAN.days_in_month(1404, 13), None);
        // 30 Esfand 1404 does not exist: clamped to 29 Esfand (20 March 2026).
        assert_eq!(PERSIAN.date_clamped(1404, 12, 30), Some(date(2026, 3, 20)));
    }

    #[test]
    fn periods_start_on_the_first_of_the_persian_month_quarter_and_year() {
        // 15 May 2025 is 25 Ordibehesht 1404.
        let day = date(2025, 5, 15);
        assert_eq!(PERSIAN.first_of_month(day), Some(date(2025, 4, 21)));
        assert_eq!(PERSIAN.first_of_quarter(day), Some(date(2025, 3, 21)));
        assert_eq!(PERSIAN.first_of_year(day), Some(date(2025, 3, 21)));
        // 1 Mehr 1404 (23 September 2025) starts the third quarter.
        assert_eq!(
            PERSIAN.first_of_quarter(date(2025, 11, 1)),
            Some(date(2025, 9, 23))
        );
        let gregorian = CalendarSystem::Gregorian;
        assert_eq!(gregorian.first_of_month(day), Some(date(2025, 5, 1)));
        assert_eq!(gregorian.first_of_quarter(day), Some(date(2025, 4, 1)));
        assert_eq!(gregorian.first_of_year(day), Some(date(2025, 1, 1)));
    }

    #[test]
    fn adding_months_clamps_to_the_target_months_length() {
        // 31 Shahrivar 1404 (22 September 2025) + 1 month = 30 Mehr (22 October 2025).
        assert_eq!(
            PERSIAN.add_months(date(2025, 9, 22), 1),
            Some(PERSIAN.date_clamped(1404, 7, 30).unwrap())
        );
        // 30 Esfand 1403 + 12 months = 29 Esfand 1404.
        assert_eq!(
            PERSIAN.add_months(date(2025, 3, 20), 12),
            Some(date(2026, 3, 20))
        );
        // Backwards across the year: 10 Farvardin 1404 − 2 months = 10 Bahman 1403.
        assert_eq!(
            PERSIAN.add_months(date(2025, 3, 30), -2),
            PERSIAN.date_clamped(1403, 11, 10)
        );
        assert_eq!(
            CalendarSystem::Gregorian.add_months(date(2025, 1, 31), 1),
            Some(date(2025, 2, 28))
        );
    }

    #[test]
    fn anniversaries_fall_on_the_last_day_of_a_short_month() {
        let born_30_esfand = date(2025, 3, 20); // 30 Esfand 1403
        assert!(PERSIAN.is_anniversary(born_30_esfand, date(2026, 3, 20))); // 29 Esfand 1404
        assert!(!PERSIAN.is_anniversary(born_30_esfand, date(2026, 3, 19)));
        // A Persian birthday moves against the Gregorian one: born 1 Farvardin 1404
        // (21 March 2025), the birthday in 1405 is 21 March 2026 (after a 29-day Esfand).
        assert!(PERSIAN.is_anniversary(date(2025, 3, 21), date(2026, 3, 21)));
        let leap_born = date(2024, 2, 29);
        let gregorian = CalendarSystem::Gregorian;
        assert!(gregorian.is_anniversary(leap_born, date(2025, 2, 28)));
        assert!(!gregorian.is_anniversary(leap_born, date(2024, 2, 28)));
        assert!(gregorian.is_anniversary(leap_born, date(2028, 2, 29)));
    }

    #[test]
    fn months_keep_the_wall_clock_time_in_the_zone() {
        let tehran = Calendar::new(TimeZone::get("Asia/Tehran").unwrap(), PERSIAN);
        let at = date(2025, 4, 5)
            .at(15, 30, 0, 0)
            .to_zoned(tehran.tz.clone())
            .unwrap()
            .timestamp();
        let later = tehran
            .add_months_at(at, 1)
            .unwrap()
            .to_zoned(tehran.tz.clone());
        // 16 Farvardin 1404 + 1 month = 16 Ordibehesht 1404 = 6 May 2025, same time of day.
        assert_eq!(later.date(), date(2025, 5, 6));
        assert_eq!((later.hour(), later.minute()), (15, 30));
    }

    #[test]
    fn out_of_range_dates_give_none_not_a_panic() {
        assert_eq!(PERSIAN.add_months(date(9999, 12, 1), 12), None);
        assert_eq!(PERSIAN.date_clamped(i32::MAX, 1, 1), None);
        assert_eq!(PERSIAN.days_in_month(1404, 0), None);
        assert_eq!(CalendarSystem::Gregorian.date_clamped(1404, 0, 1), None);
    }

    fn any_date() -> impl Strategy<Value = Date> {
        (1900i16..2200, 1i8..=12, 1i8..=31)
            .prop_filter_map("a real date", |(y, m, d)| Date::new(y, m, d).ok())
    }

    proptest! {
        /// A Persian date converts to the same ISO date and back.
        #[test]
        fn persian_dates_round_trip(day in any_date()) {
            let ymd = PERSIAN.ymd(day).unwrap();
            prop_assert_eq!(PERSIAN.date_clamped(ymd.year, ymd.month, ymd.day), Some(day));
        }

        /// Month starts never move forward; the next month starts after `day`; a month is
        /// 28 to 31 days long (29 to 31 in the Persian calendar).
        #[test]
        fn months_contain_their_days(day in any_date(), system in prop::sample::select(CalendarSystem::ALL.to_vec())) {
            let first = system.first_of_month(day).unwrap();
            let next = system.add_months(first, 1).unwrap();
            prop_assert!(first <= day && day < next);
            let length = first.until(next).unwrap().get_days();
            let shortest = if system == CalendarSystem::Persian { 29 } else { 28 };
            prop_assert!((shortest..=31).contains(&length), "{} days", length);
            prop_assert!(system.first_of_quarter(day).unwrap() <= first);
            prop_assert!(system.first_of_year(day).unwrap() <= system.first_of_quarter(day).unwrap());
        }

        /// Adding n months then going back n never lands later than the start.
        #[test]
        fn months_go_back_no_later_than_they_came(day in any_date(), n in 0i64..40) {
            let there = PERSIAN.add_months(day, n).unwrap();
            let back = PERSIAN.add_months(there, -n).unwrap();
            prop_assert!(back <= day);
            prop_assert!(there >= day);
        }
    }
}
