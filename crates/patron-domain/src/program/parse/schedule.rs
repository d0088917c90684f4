//! Reading when a rule applies and how often: the `from` and `until` instants (a TOML date or
//! date-time in the club's time zone) and the `limit` (at most so many per period).

use jiff::civil::{DateTime, Weekday};
use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan};

use super::{Entry, Parser, Section};
use crate::rules::limit::{LimitPer, RuleLimit};

/// A limit counts at most this many firings per period.
const LIMIT_COUNT_MAX: i64 = 1_000_000;

const PERIODS: &[(&str, LimitPer)] = &[
    ("day", LimitPer::Day),
    ("week", LimitPer::Week),
    ("month", LimitPer::Month),
    ("year", LimitPer::Year),
    ("lifetime", LimitPer::Lifetime),
];

const WEEKDAYS: &[(&str, Weekday)] = &[
    ("monday", Weekday::Monday),
    ("tuesday", Weekday::Tuesday),
    ("wednesday", Weekday::Wednesday),
    ("thursday", Weekday::Thursday),
    ("friday", Weekday::Friday),
    ("saturday", Weekday::Saturday),
    ("sunday", Weekday::Sunday),
];

impl Parser<'_> {
    pub(super) fn limit(&mut self, entry: &Entry<'_>) -> Option<RuleLimit> {
        let Some(table) = entry.item.as_table_like() else {
            self.wrong_type(entry, "a table such as { count = 1, per = \"day\" }");
            return None;
        };
        let section = Section {
            table,
            anchor: entry.offset,
            path: entry.path.clone(),
        };
        self.check_keys(&section, &["count", "per", "week_starts"]);
        let count = self
            .required(&section, "count")
            .and_then(|count| self.integer_in(&count, 1..=LIMIT_COUNT_MAX));
        let per = self
            .required(&section, "per")
            .and_then(|per| self.choice(&per, PERIODS));
        let week_start = match section.entry("week_starts") {
            Some(week_starts) => {
                if per.is_some_and(|per| per != LimitPer::Week) {
                    self.report(
                        week_starts.offset,
                        &week_starts.path,
                        format!("`{}` applies only to per = \"week\"", week_starts.path),
                        Some("remove it".to_owned()),
                    );
                    return None;
                }
                self.choice(&week_starts, WEEKDAYS)
            }
            None => Some(Weekday::Monday),
        };
        Some(RuleLimit {
            count: u32::try_from(count?).ok()?,
            per: per?,
            week_start: week_start?,
        })
    }

    /// A TOML date or date-time in the club's time zone (or with an explicit offset). A date
    /// alone means the start of that day for `from`, and the end of that day for `until`.
    pub(super) fn instant(
        &mut self,
        entry: &Entry<'_>,
        tz: Option<&TimeZone>,
        end_of_date: bool,
    ) -> Option<Timestamp> {
        let Some(datetime) = entry.item.as_datetime() else {
            let hint = entry.item.as_str().map(|text| {
                format!(
                    "write it without quotes: {} = {text}",
                    entry.path.rsplit('.').next().unwrap_or("from")
                )
            });
            self.wrong_type_hinted(
                entry,
                "a date (2025-03-01) or a date and time (2025-03-01T09:00:00)",
                hint,
            );
            return None;
        };
        let Some(date) = datetime.date else {
            self.report(
                entry.offset,
                &entry.path,
                format!("`{}` needs a date, found only a time", entry.path),
                Some("write 2025-03-01T09:00:00".to_owned()),
            );
            return None;
        };
        let invalid = |parser: &mut Self| {
            parser.report(
                entry.offset,
                &entry.path,
                format!("`{}` is not a valid date", entry.path),
                None,
            );
            None
        };
        let Ok(civil_date) = jiff::civil::Date::new(
            i16::try_from(date.year).unwrap_or(i16::MAX),
            i8::try_from(date.month).unwrap_or(i8::MAX),
            i8::try_from(date.day).unwrap_or(i8::MAX),
        ) else {
            return invalid(self);
        };
        let Some(time) = datetime.time else {
            let tz = tz?;
            let day = if end_of_date {
                civil_date.checked_add(1.day()).ok()?
            } else {
                civil_date
            };
            return crate::calendar::start_of_day(day, tz);
        };
        let Ok(civil_time) = jiff::civil::Time::new(
            i8::try_from(time.hour).unwrap_or(i8::MAX),
            i8::try_from(time.minute).unwrap_or(i8::MAX),
            i8::try_from(time.second.unwrap_or(0)).unwrap_or(i8::MAX),
            i32::try_from(time.nanosecond.unwrap_or(0)).unwrap_or(i32::MAX),
        ) else {
            return invalid(self);
        };
        let civil = DateTime::from_parts(civil_date, civil_time);
        match datetime.offset {
            None => civil
                .to_zoned(tz?.clone())
                .ok()
                .map(|zoned| zoned.timestamp()),
            Some(offset) => {
                let minutes = match offset {
                    toml_edit::Offset::Z => 0,
                    toml_edit::Offset::Custom { minutes } => i32::from(minutes),
                };
                let offset = jiff::tz::Offset::from_seconds(minutes * 60).ok()?;
                offset.to_timestamp(civil).ok()
            }
        }
    }
}
