//! Reading `[limits]`: what one request may carry (docs/PROGRAM.md, "Limits").
//!
//! Every key is optional; a missing one takes the default for the club's currency
//! ([`Limits::for_currency`]). Each value is bounded by its ceiling in [`crate::limits`], so no
//! program can let a request overflow a stored total.

use rust_decimal::Decimal;

use super::{Parser, Section};
use crate::limits::{
    AMOUNT_MINOR_CEILING, BACKDATE_DAYS_CEILING, FUTURE_MINUTES_CEILING, Limits, POINTS_CEILING,
    QUANTITY_CEILING,
};
use crate::shared::Currency;

const LIMIT_KEYS: &[&str] = &[
    "line_amount_max",
    "purchase_amount_max",
    "quantity_max",
    "points_max",
    "backdate_days_max",
    "future_minutes_max",
];

impl Parser<'_> {
    /// `None` when a problem was reported, or when the currency is invalid (reported there).
    pub(super) fn limits(
        &mut self,
        section: Option<&Section<'_>>,
        currency: Option<&Currency>,
    ) -> Option<Limits> {
        let currency = currency?;
        let mut limits = Limits::for_currency(currency);
        let Some(section) = section else {
            return Some(limits);
        };
        self.check_keys(section, LIMIT_KEYS);
        let mut ok = true;
        let mut amount = |parser: &mut Self, key: &str, target: &mut i64| {
            let Some(entry) = section.entry(key) else {
                return;
            };
            match parser
                .money(&entry, Some(currency))
                .filter(|minor| parser.amount_in_range(&entry, *minor))
            {
                Some(minor) => *target = minor,
                None => ok = false,
            }
        };
        amount(self, "line_amount_max", &mut limits.line_amount_max_minor);
        amount(
            self,
            "purchase_amount_max",
            &mut limits.purchase_amount_max_minor,
        );
        if let Some(entry) = section.entry("quantity_max") {
            match self.decimal_in(&entry, Decimal::ONE, Decimal::from(QUANTITY_CEILING)) {
                Some(quantity) => limits.quantity_max = quantity,
                None => ok = false,
            }
        }
        if let Some(entry) = section.entry("points_max") {
            match self.integer_in(&entry, 1..=POINTS_CEILING) {
                Some(points) => limits.points_max = points,
                None => ok = false,
            }
        }
        let mut whole = |parser: &mut Self, key: &str, ceiling: i64, target: &mut u32| {
            let Some(entry) = section.entry(key) else {
                return;
            };
            match parser
                .integer_in(&entry, 0..=ceiling)
                .and_then(|value| u32::try_from(value).ok())
            {
                Some(value) => *target = value,
                None => ok = false,
            }
        };
        whole(
            self,
            "backdate_days_max",
            BACKDATE_DAYS_CEILING,
            &mut limits.backdate_days_max,
        );
        whole(
            self,
            "future_minutes_max",
            FUTURE_MINUTES_CEILING,
            &mut limits.future_minutes_max,
        );
        ok.then_some(limits)
    }

    /// An amount limit is at least one minor unit and at most the ceiling.
    fn amount_in_range(&mut self, entry: &super::Entry<'_>, minor: i64) -> bool {
        if (1..=AMOUNT_MINOR_CEILING).contains(&minor) {
            return true;
        }
        self.report(
            entry.offset,
            &entry.path,
            format!(
                "`{}` must be more than zero and at most {AMOUNT_MINOR_CEILING} in minor units of the currency",
                entry.path
            ),
            None,
        );
        false
    }
}
