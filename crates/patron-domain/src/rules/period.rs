//! Calendar helpers the engine needs around rules: whether a day is a member's birthday or
//! enrollment anniversary (so its jobs know when to trigger those rules). In the program's
//! time zone and calendar (months and years of the Persian calendar for a Persian club). The
//! limit periods are [`super::limit`]'s.

use jiff::civil::Date;
use jiff::{Timestamp, ToSpan};

use crate::calendar::{Calendar, CalendarSystem};

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
