//! The bounds a club states on what one request may carry: the largest line and purchase
//! amount, the largest quantity, the most points one operation may move, and how far a
//! purchase's time may lie from now.
//!
//! Points are money, and every stored total is an `i64`: a single request that may carry any
//! amount can overflow a total, or mint a fortune by a typo. So every amount entering Patron is
//! checked against a bound the program states (`[limits]`, docs/PROGRAM.md), and the bounds
//! themselves are capped by ceilings chosen so that no sum Patron keeps can overflow in any
//! realistic lifetime of a club: with purchases at most [`AMOUNT_MINOR_CEILING`], a member's
//! spend fits an `i64` for 900,000 maximal purchases; with points per operation at most
//! [`POINTS_CEILING`], a wallet's totals fit for 9,000,000 maximal operations.
//!
//! A club that sets no `[limits]` gets defaults sized to its currency ([`Limits::for_currency`]):
//! about a million US dollars' worth for one purchase, whatever the currency's denomination.

use jiff::{SignedDuration, Timestamp};
use rust_decimal::Decimal;

use crate::shared::Currency;

/// The largest amount, in minor units, a line or a purchase may ever be (ten trillion).
pub const AMOUNT_MINOR_CEILING: i64 = 10_000_000_000_000;
/// The largest quantity a line may ever carry.
pub const QUANTITY_CEILING: i64 = 1_000_000_000;
/// The most points one operation may ever move (a trillion).
pub const POINTS_CEILING: i64 = 1_000_000_000_000;
/// The furthest back a purchase, refund or event may ever be dated (ten years).
pub const BACKDATE_DAYS_CEILING: i64 = 3_650;
/// The furthest ahead of the server's clock a time may ever be (one day).
pub const FUTURE_MINUTES_CEILING: i64 = 1_440;

/// Default quantity bound of one line.
const DEFAULT_QUANTITY_MAX: i64 = 100_000;
/// Default points bound of one operation.
const DEFAULT_POINTS_MAX: i64 = 100_000_000;
/// Default back-dating window: an offline till or a late web order, not a history import.
const DEFAULT_BACKDATE_DAYS: u32 = 90;
/// Default allowance for a till whose clock runs ahead.
const DEFAULT_FUTURE_MINUTES: u32 = 15;
/// The default largest purchase, in US dollars' worth.
const DEFAULT_PURCHASE_MAJOR_USD: i64 = 1_000_000;

/// What one request may carry. Every field is positive and at most its ceiling.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The largest total of one line (after its discount), in minor units.
    pub line_amount_max_minor: i64,
    /// The largest total of one purchase, in minor units.
    pub purchase_amount_max_minor: i64,
    /// The largest quantity of one line.
    pub quantity_max: Decimal,
    /// The most points one operation moves: what a purchase or an event earns, an
    /// adjustment, a transfer between members, a redemption.
    pub points_max: i64,
    /// How many days before now a purchase, refund or event may be dated.
    pub backdate_days_max: u32,
    /// How many minutes after now a purchase, refund or event may be dated (clock skew).
    pub future_minutes_max: u32,
}

impl Limits {
    /// The defaults for a club in `currency`: a purchase or a line up to about a million US
    /// dollars' worth (up to ten times that: by the order of magnitude of the currency's units per dollar), 100,000
    /// of an item, 100,000,000 points in one operation, 90 days of back-dating and 15 minutes
    /// of clock skew.
    pub fn for_currency(currency: &Currency) -> Limits {
        let exponent = units_per_usd_exponent(&currency.code) + currency.minor_unit;
        let amount = 10_i64
            .checked_pow(exponent)
            .and_then(|scale| scale.checked_mul(DEFAULT_PURCHASE_MAJOR_USD))
            .map_or(AMOUNT_MINOR_CEILING, |amount| {
                amount.min(AMOUNT_MINOR_CEILING)
            });
        Limits {
            line_amount_max_minor: amount,
            purchase_amount_max_minor: amount,
            quantity_max: Decimal::from(DEFAULT_QUANTITY_MAX),
            points_max: DEFAULT_POINTS_MAX,
            backdate_days_max: DEFAULT_BACKDATE_DAYS,
            future_minutes_max: DEFAULT_FUTURE_MINUTES,
        }
    }

    /// Whether `at` lies inside the window the club accepts around `now`.
    pub fn check_time(&self, at: Timestamp, now: Timestamp) -> Result<(), LimitError> {
        // Both spans are bounded by their ceilings, so only a `now` at the edge of time
        // could fail: then the edge is the bound.
        let earliest = now
            .checked_sub(SignedDuration::from_hours(
                i64::from(self.backdate_days_max) * 24,
            ))
            .unwrap_or(Timestamp::MIN);
        let latest = now
            .checked_add(SignedDuration::from_mins(i64::from(
                self.future_minutes_max,
            )))
            .unwrap_or(Timestamp::MAX);
        if at < earliest {
            return Err(LimitError::TooEarly {
                backdate_days_max: self.backdate_days_max,
            });
        }
        if at > latest {
            return Err(LimitError::TooLate {
                future_minutes_max: self.future_minutes_max,
            });
        }
        Ok(())
    }

    /// Whether one operation may move `points` (its absolute value: an adjustment may debit).
    pub fn check_points(&self, points: i64) -> Result<(), LimitError> {
        if points.unsigned_abs() > self.points_max.unsigned_abs() {
            return Err(LimitError::Points {
                points_max: self.points_max,
            });
        }
        Ok(())
    }

    /// Whether a line of this quantity and total may be posted.
    pub fn check_line(&self, quantity: Decimal, total_minor: i64) -> Result<(), LimitError> {
        if quantity > self.quantity_max {
            return Err(LimitError::Quantity {
                quantity_max: self.quantity_max,
            });
        }
        if total_minor > self.line_amount_max_minor {
            return Err(LimitError::LineAmount {
                line_amount_max_minor: self.line_amount_max_minor,
            });
        }
        Ok(())
    }

    /// A purchase's total with one more line: refused beyond the purchase limit (and so never
    /// overflowing, however many lines are added).
    pub fn add_to_purchase(&self, total_minor: i64, line_minor: i64) -> Result<i64, LimitError> {
        total_minor
            .checked_add(line_minor)
            .filter(|total| *total <= self.purchase_amount_max_minor)
            .ok_or(LimitError::PurchaseAmount {
                purchase_amount_max_minor: self.purchase_amount_max_minor,
            })
    }
}

/// A value beyond the club's limits. The message names the limit; amounts are in minor units.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LimitError {
    #[error("is more than {quantity_max}, the program's limit (`[limits] quantity_max`)")]
    Quantity { quantity_max: Decimal },
    #[error(
        "is more than {line_amount_max_minor} in minor units, the program's limit for one line (`[limits] line_amount_max`)"
    )]
    LineAmount { line_amount_max_minor: i64 },
    #[error(
        "is more than {purchase_amount_max_minor} in minor units, the program's limit for one purchase (`[limits] purchase_amount_max`)"
    )]
    PurchaseAmount { purchase_amount_max_minor: i64 },
    #[error(
        "is more than {points_max} points, the program's limit for one operation (`[limits] points_max`)"
    )]
    Points { points_max: i64 },
    #[error(
        "is more than {backdate_days_max} days ago, the program's limit (`[limits] backdate_days_max`)"
    )]
    TooEarly { backdate_days_max: u32 },
    #[error(
        "is more than {future_minutes_max} minutes ahead of the server's clock (`[limits] future_minutes_max`)"
    )]
    TooLate { future_minutes_max: u32 },
}

/// The power of ten nearest above a currency's units per US dollar: 0 for the dollar and the
/// currencies worth about as much or more, 1 for most (the shekel, the yuan, the real...), more
/// for currencies of small units. An order of
/// magnitude is all the defaults need (a club states exact limits in `[limits]`); the table
/// holds the currencies whose unit is worth less than a tenth of a cent or so, as of 2026.
fn units_per_usd_exponent(code: &str) -> u32 {
    match code {
        "IRR" => 6,
        "LBP" | "VND" | "IDR" | "LAK" | "SLL" | "GNF" | "UZS" | "PYG" | "STD" | "SYP" => 5,
        "IQD" | "KRW" | "COP" | "MMK" | "UGX" | "TZS" | "KHR" | "MGA" | "CLP" | "BIF" | "MNT"
        | "RWF" | "AMD" | "CDF" | "MWK" | "NGN" | "HUF" | "KZT" | "XOF" | "XAF" => 3,
        "JPY" | "ISK" | "RSD" | "PKR" | "LKR" | "INR" | "RUB" | "KES" | "DZD" | "PHP" | "THB"
        | "TWD" | "UAH" | "EGP" | "AFN" | "NPR" | "BDT" => 2,
        "USD" | "EUR" | "GBP" | "CHF" | "CAD" | "AUD" | "NZD" | "SGD" | "KWD" | "BHD" | "OMR"
        | "JOD" | "KYD" | "GIP" | "FKP" | "SHP" | "BSD" | "PAB" | "BMD" => 0,
        _ => 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn currency(code: &str, minor_unit: u32) -> Currency {
        Currency {
            code: code.into(),
            minor_unit,
        }
    }

    #[test]
    fn defaults_are_about_the_same_worth_in_every_currency() {
        // A million dollars, and up to ten times that in other currencies (the exponent
        // rounds up).
        assert_eq!(
            Limits::for_currency(&currency("USD", 2)).purchase_amount_max_minor,
            100_000_000
        );
        assert_eq!(
            Limits::for_currency(&currency("IRR", 0)).purchase_amount_max_minor,
            1_000_000_000_000
        );
        assert_eq!(
            Limits::for_currency(&currency("ILS", 2)).purchase_amount_max_minor,
            1_000_000_000
        );
        assert_eq!(
            Limits::for_currency(&currency("JPY", 0)).purchase_amount_max_minor,
            100_000_000
        );
    }

    #[test]
    fn defaults_never_pass_the_ceilings() {
        let limits = Limits::for_currency(&currency("IRR", 4));
        assert_eq!(limits.purchase_amount_max_minor, AMOUNT_MINOR_CEILING);
        assert!(limits.points_max <= POINTS_CEILING);
    }

    #[test]
    fn times_are_accepted_inside_the_window_only() {
        let limits = Limits::for_currency(&currency("USD", 2));
        let now: Timestamp = "2026-03-02T17:00:00Z".parse().unwrap();
        let at = |text: &str| text.parse::<Timestamp>().unwrap();
        assert!(limits.check_time(now, now).is_ok());
        assert!(limits.check_time(at("2025-12-02T17:00:00Z"), now).is_ok());
        assert!(limits.check_time(at("2026-03-02T17:15:00Z"), now).is_ok());
        assert_eq!(
            limits.check_time(at("0001-01-01T00:00:00Z"), now),
            Err(LimitError::TooEarly {
                backdate_days_max: 90
            })
        );
        assert_eq!(
            limits.check_time(at("2099-01-01T00:00:00Z"), now),
            Err(LimitError::TooLate {
                future_minutes_max: 15
            })
        );
        assert!(limits.check_time(at("2026-03-02T17:15:01Z"), now).is_err());
    }

    #[test]
    fn the_messages_name_the_limit() {
        let limits = Limits::for_currency(&currency("USD", 2));
        let error = limits.add_to_purchase(1, i64::MAX).unwrap_err().to_string();
        assert!(error.contains("purchase_amount_max"), "{error}");
        assert!(error.contains("100000000"), "{error}");
    }

    proptest! {
        #[test]
        fn points_beyond_the_limit_are_refused_either_way(points in any::<i64>()) {
            let limits = Limits::for_currency(&currency("USD", 2));
            let allowed = limits.check_points(points).is_ok();
            prop_assert_eq!(allowed, points.unsigned_abs() <= 100_000_000);
        }
    }
}
