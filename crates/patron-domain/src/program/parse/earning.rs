//! Reading how points are earned and kept: `[earning]` (the base rate and its rounding),
//! `[pending]` (the return window) and `[expiry]` (when points expire).

use rust_decimal::Decimal;

use super::{
    EXCLUDED_ITEMS_MAX, EXPIRY_DAYS_MAX, EXPIRY_MONTHS_MAX, PENDING_DAYS_MAX, Parser, ROUNDINGS,
    Section,
};
use crate::calendar::CalendarSystem;
use crate::expiry::{ExpiryPolicy, ExpiryRounding, ExpiryUnit, Pending};
use crate::program::Earning;
use crate::shared::{Currency, Rounding};

const EXPIRY_UNITS: &[(&str, ExpiryUnit)] =
    &[("days", ExpiryUnit::Days), ("months", ExpiryUnit::Months)];
const EXPIRY_ROUNDINGS: &[(&str, ExpiryRounding)] = &[
    ("none", ExpiryRounding::None),
    ("end_of_day", ExpiryRounding::EndOfDay),
    ("end_of_month", ExpiryRounding::EndOfMonth),
    ("end_of_quarter", ExpiryRounding::EndOfQuarter),
    ("end_of_year", ExpiryRounding::EndOfYear),
];

/// The kinds of expiry policy; which keys each one takes is in [`Parser::expiry`].
#[derive(Clone, Copy, PartialEq)]
enum ExpiryKind {
    Never,
    AfterEarning,
    FixedYearlyDate,
    Inactivity,
}
const EXPIRY_KINDS: &[(&str, ExpiryKind)] = &[
    ("never", ExpiryKind::Never),
    ("after_earning", ExpiryKind::AfterEarning),
    ("fixed_yearly_date", ExpiryKind::FixedYearlyDate),
    ("inactivity", ExpiryKind::Inactivity),
];

impl Parser<'_> {
    pub(super) fn earning(
        &mut self,
        section: &Section<'_>,
        currency: Option<&Currency>,
    ) -> Option<Earning> {
        self.check_keys(
            section,
            &[
                "points_per_unit",
                "rounding",
                "minimum_purchase",
                "excluded_categories",
                "excluded_skus",
            ],
        );
        let points_per_unit = self.required(section, "points_per_unit").and_then(|entry| {
            let value = self.decimal_in(&entry, Decimal::ZERO, Decimal::new(1_000_000, 0))?;
            if value.is_zero() {
                self.report(
                    entry.offset,
                    &entry.path,
                    format!("`{}` must be greater than 0", entry.path),
                    Some("a program where purchases earn nothing still needs a rate".to_owned()),
                );
                return None;
            }
            Some(value)
        });
        let rounding = match section.entry("rounding") {
            Some(entry) => self.choice(&entry, ROUNDINGS),
            None => Some(Rounding::Down),
        };
        let minimum_purchase_minor = match section.entry("minimum_purchase") {
            Some(entry) => self.money(&entry, currency),
            None => Some(0),
        };
        let excluded_categories = match section.entry("excluded_categories") {
            Some(entry) => self.string_list(&entry, EXCLUDED_ITEMS_MAX),
            None => Some(Vec::new()),
        };
        let excluded_skus = match section.entry("excluded_skus") {
            Some(entry) => self.string_list(&entry, EXCLUDED_ITEMS_MAX),
            None => Some(Vec::new()),
        };
        Some(Earning {
            points_per_unit: points_per_unit?,
            rounding: rounding?,
            minimum_purchase_minor: minimum_purchase_minor?,
            excluded_categories: excluded_categories?,
            excluded_skus: excluded_skus?,
        })
    }

    pub(super) fn pending(&mut self, section: &Section<'_>) -> Option<Pending> {
        self.check_keys(section, &["days"]);
        let days = self.required(section, "days")?;
        let days = self.integer_in(&days, 0..=PENDING_DAYS_MAX)?;
        Some(Pending {
            days: u32::try_from(days).ok()?,
        })
    }

    pub(super) fn expiry(
        &mut self,
        section: &Section<'_>,
        calendar: CalendarSystem,
    ) -> Option<ExpiryPolicy> {
        const KEYS: &[&str] = &[
            "policy", "amount", "unit", "round_to", "month", "day", "months",
        ];
        self.check_keys(section, KEYS);
        let kind_entry = self.required(section, "policy")?;
        let kind = self.choice(&kind_entry, EXPIRY_KINDS)?;
        let (kind_word, applicable): (&str, &[&str]) = match kind {
            ExpiryKind::Never => ("never", &[]),
            ExpiryKind::AfterEarning => ("after_earning", &["amount", "unit", "round_to"]),
            ExpiryKind::FixedYearlyDate => ("fixed_yearly_date", &["month", "day"]),
            ExpiryKind::Inactivity => ("inactivity", &["months"]),
        };
        // A key that belongs to another policy is almost always a leftover from editing the
        // policy, and silently ignoring it would hide the club's intent.
        let mut misplaced = false;
        for key in KEYS
            .iter()
            .copied()
            .filter(|key| *key != "policy" && !applicable.contains(key))
        {
            if let Some(entry) = section.entry(key) {
                let owner = match key {
                    "amount" | "unit" | "round_to" => "after_earning",
                    "month" | "day" => "fixed_yearly_date",
                    _ => "inactivity",
                };
                self.report(
                    section.key_offset(key).unwrap_or(entry.offset),
                    &entry.path,
                    format!("`{}` does not apply to policy \"{kind_word}\"", entry.path),
                    Some(format!("remove it, or use policy = \"{owner}\"")),
                );
                misplaced = true;
            }
        }
        let policy = match kind {
            ExpiryKind::Never => Some(ExpiryPolicy::Never),
            ExpiryKind::AfterEarning => self.expiry_after_earning(section),
            ExpiryKind::FixedYearlyDate => self.expiry_fixed_yearly_date(section, calendar),
            ExpiryKind::Inactivity => {
                let months = self.required(section, "months")?;
                let months = self.integer_in(&months, 1..=EXPIRY_MONTHS_MAX)?;
                Some(ExpiryPolicy::Inactivity {
                    months: u32::try_from(months).ok()?,
                })
            }
        };
        if misplaced { None } else { policy }
    }

    /// `policy = "after_earning"`: `amount` days or months, optionally rounded up (`round_to`).
    fn expiry_after_earning(&mut self, section: &Section<'_>) -> Option<ExpiryPolicy> {
        let unit = self
            .required(section, "unit")
            .and_then(|entry| self.choice(&entry, EXPIRY_UNITS));
        let amount_max = match unit {
            Some(ExpiryUnit::Months) => EXPIRY_MONTHS_MAX,
            _ => EXPIRY_DAYS_MAX,
        };
        let amount = self
            .required(section, "amount")
            .and_then(|entry| self.integer_in(&entry, 1..=amount_max));
        let round_to = match section.entry("round_to") {
            Some(entry) => self.choice(&entry, EXPIRY_ROUNDINGS),
            None => Some(ExpiryRounding::None),
        };
        Some(ExpiryPolicy::AfterEarning {
            amount: u32::try_from(amount?).ok()?,
            unit: unit?,
            round_to: round_to?,
        })
    }

    /// `policy = "fixed_yearly_date"`: a `month` and a `day` that month has (in a leap year).
    fn expiry_fixed_yearly_date(
        &mut self,
        section: &Section<'_>,
        calendar: CalendarSystem,
    ) -> Option<ExpiryPolicy> {
        let month = self
            .required(section, "month")
            .and_then(|entry| self.integer_in(&entry, 1..=12));
        let day_entry = self.required(section, "day");
        let day = day_entry
            .as_ref()
            .and_then(|entry| self.integer_in(entry, 1..=31));
        let (month, day, day_entry) = (month?, day?, day_entry?);
        // Checked against a leap year so that 29 February (30 Esfand) is allowed: in
        // common years it falls on the month's last day.
        let leap_year = match calendar {
            CalendarSystem::Gregorian => 2000,
            CalendarSystem::Persian => 1403,
        };
        let days_in_month = calendar
            .days_in_month(leap_year, i8::try_from(month).ok()?)
            .map_or(31, i64::from);
        if day > days_in_month {
            let of = match calendar {
                CalendarSystem::Gregorian => "",
                CalendarSystem::Persian => " of the Persian calendar",
            };
            self.report(
                day_entry.offset,
                &day_entry.path,
                format!(
                    "`{}` is {day}, but month {month}{of} has only {days_in_month} days",
                    day_entry.path
                ),
                None,
            );
            return None;
        }
        Some(ExpiryPolicy::FixedYearlyDate {
            month: i8::try_from(month).ok()?,
            day: i8::try_from(day).ok()?,
        })
    }
}
