//! Calendar dates as day numbers (days since 1970-01-01 in the proleptic Gregorian
//! calendar), parsed straight from bytes. Analytics only ever subtracts dates, so a day
//! number is all it needs, and parsing one costs a few integer operations.

use std::fmt;

/// A calendar date as the number of days since 1970-01-01 (negative before it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Day(pub i32);

/// Why a date was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DateError {
    /// Neither `YYYY-MM-DD` nor `YYYYMMDD`.
    Format,
    /// Month not in 1-12 or day not in the month (2023-02-29).
    OutOfRange,
}

impl fmt::Display for DateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DateError::Format => f.write_str("expected a date as YYYY-MM-DD or YYYYMMDD"),
            DateError::OutOfRange => f.write_str("no such date (month 1-12, day within the month)"),
        }
    }
}

impl std::error::Error for DateError {}

fn is_leap(year: i32) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

/// Days in `month` (1-12) of `year`.
fn days_in_month(year: i32, month: u32) -> u32 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if is_leap(year) => 29,
        _ => 28,
    }
}

impl Day {
    /// The day number of a calendar date, or `None` when the date does not exist.
    pub fn from_ymd(year: i32, month: u32, day: u32) -> Option<Day> {
        if !(1..=12).contains(&month) || day == 0 || day > days_in_month(year, month) {
            return None;
        }
        // Count from 0000-03-01 so the leap day is the last day of the counting year; an
        // "era" is 400 years = 146,097 days, after which the calendar repeats exactly.
        let y = if month <= 2 { year - 1 } else { year };
        let era = y.div_euclid(400);
        let year_of_era = y - era * 400;
        let month_from_march = (month + 9) % 12;
        let day_of_year = (153 * month_from_march + 2) / 5 + day - 1;
        let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100
            + i32::try_from(day_of_year).ok()?;
        // 719,468 days from 0000-03-01 to 1970-01-01.
        Some(Day(era * 146_097 + day_of_era - 719_468))
    }

    /// The calendar date (year, month, day) of this day number.
    pub fn to_ymd(self) -> (i32, u32, u32) {
        let z = self.0 + 719_468;
        let era = z.div_euclid(146_097);
        let day_of_era = z - era * 146_097;
        let year_of_era =
            (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
        let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
        let month_from_march = (5 * day_of_year + 2) / 153;
        let day = (day_of_year - (153 * month_from_march + 2) / 5 + 1) as u32;
        let month = if month_from_march < 10 {
            month_from_march + 3
        } else {
            month_from_march - 9
        } as u32;
        let year = year_of_era + era * 400 + i32::from(month <= 2);
        (year, month, day)
    }

    /// Parses `YYYY-MM-DD` or `YYYYMMDD` (ASCII digits, years 0001-9999).
    pub fn parse(text: &[u8]) -> Result<Day, DateError> {
        let (y, m, d) = match text {
            [y0, y1, y2, y3, b'-', m0, m1, b'-', d0, d1] => {
                ([*y0, *y1, *y2, *y3], [*m0, *m1], [*d0, *d1])
            }
            [y0, y1, y2, y3, m0, m1, d0, d1] => ([*y0, *y1, *y2, *y3], [*m0, *m1], [*d0, *d1]),
            _ => return Err(DateError::Format),
        };
        let mut value = [0u32; 3];
        for (slot, digits) in value.iter_mut().zip([&y[..], &m[..], &d[..]]) {
            for &c in digits {
                if !c.is_ascii_digit() {
                    return Err(DateError::Format);
                }
                *slot = *slot * 10 + u32::from(c - b'0');
            }
        }
        let [year, month, day] = value;
        if year == 0 {
            return Err(DateError::OutOfRange);
        }
        // `year` is at most 9999, so it fits an i32.
        Day::from_ymd(year as i32, month, day).ok_or(DateError::OutOfRange)
    }

    /// Days from `earlier` to `self` (negative when `self` is before it).
    pub fn days_since(self, earlier: Day) -> i64 {
        i64::from(self.0) - i64::from(earlier.0)
    }
}

impl fmt::Display for Day {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (y, m, d) = self.to_ymd();
        write!(f, "{y:04}-{m:02}-{d:02}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_epoch_is_day_zero_and_both_layouts_agree() {
        assert_eq!(Day::parse(b"1970-01-01"), Ok(Day(0)));
        assert_eq!(Day::parse(b"19700102"), Ok(Day(1)));
        assert_eq!(Day::parse(b"1969-12-31"), Ok(Day(-1)));
        assert_eq!(
            Day::parse(b"1997-09-30")
                .unwrap()
                .days_since(Day::parse(b"19970101").unwrap()),
            272
        );
    }

    #[test]
    fn impossible_dates_are_refused() {
        assert_eq!(Day::parse(b"2023-02-29"), Err(DateError::OutOfRange));
        assert!(Day::parse(b"2024-02-29").is_ok());
        assert_eq!(Day::parse(b"1900-02-29"), Err(DateError::OutOfRange));
        assert_eq!(
            Day::parse(b"2000-02-29").map(|d| d.to_string()),
            Ok("2000-02-29".into())
        );
        assert_eq!(Day::parse(b"2023-13-01"), Err(DateError::OutOfRange));
        assert_eq!(Day::parse(b"2023-1-01"), Err(DateError::Format));
        assert_eq!(Day::parse(b"2023/01/01"), Err(DateError::Format));
        assert_eq!(Day::parse(b"20230a01"), Err(DateError::Format));
    }

    #[test]
    fn every_day_round_trips_through_the_calendar() {
        for n in -800_000..800_000 {
            let (y, m, d) = Day(n).to_ymd();
            assert_eq!(Day::from_ymd(y, m, d), Some(Day(n)), "{n}");
        }
    }
}
