//! Purchase arithmetic: line totals and the amounts of partial refunds.
//!
//! Quantities are decimals (3.25 kg); prices and totals are integer minor units. A line's total
//! is `quantity × unit price − discount`, rounded half-even to the minor unit. A partial refund
//! of a line is proportional to the quantity returned, and the refund that returns the last of
//! a line takes exactly what is left of its total, so any sequence of partial refunds adds up
//! to the line total, never more.

use rust_decimal::prelude::ToPrimitive;
use rust_decimal::{Decimal, RoundingStrategy};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LineError {
    #[error("quantity must be greater than zero")]
    NonPositiveQuantity,
    #[error("unit price must not be negative")]
    NegativePrice,
    #[error("discount must be between zero and the line's gross amount")]
    BadDiscount,
    #[error("the line total is too large")]
    Overflow,
    #[error("cannot return {requested} of this line: {remaining} remain")]
    ReturnExceedsQuantity {
        requested: Decimal,
        remaining: Decimal,
    },
}

/// `quantity × unit_price_minor − discount_minor`, rounded half-even to the minor unit.
pub fn line_total_minor(
    quantity: Decimal,
    unit_price_minor: i64,
    discount_minor: i64,
) -> Result<i64, LineError> {
    if quantity <= Decimal::ZERO {
        return Err(LineError::NonPositiveQuantity);
    }
    if unit_price_minor < 0 {
        return Err(LineError::NegativePrice);
    }
    let gross = quantity
        .checked_mul(Decimal::from(unit_price_minor))
        .ok_or(LineError::Overflow)?
        .round_dp_with_strategy(0, RoundingStrategy::MidpointNearestEven)
        .to_i64()
        .ok_or(LineError::Overflow)?;
    if discount_minor < 0 || discount_minor > gross {
        return Err(LineError::BadDiscount);
    }
    Ok(gross - discount_minor)
}

/// The amount refunded when `refund_quantity` more of a line is returned.
///
/// `refunded_quantity` and `refunded_minor` are what earlier refunds of this line returned.
pub fn refund_line_amount(
    line_total_minor: i64,
    quantity: Decimal,
    refunded_quantity: Decimal,
    refunded_minor: i64,
    refund_quantity: Decimal,
) -> Result<i64, LineError> {
    if refund_quantity <= Decimal::ZERO {
        return Err(LineError::NonPositiveQuantity);
    }
    let remaining = quantity - refunded_quantity;
    if refund_quantity > remaining {
        return Err(LineError::ReturnExceedsQuantity {
            requested: refund_quantity,
            remaining,
        });
    }
    if refund_quantity == remaining {
        return Ok(line_total_minor - refunded_minor);
    }
    let share = Decimal::from(line_total_minor)
        .checked_mul(refund_quantity)
        .and_then(|x| x.checked_div(quantity))
        .ok_or(LineError::Overflow)?
        .round_dp_with_strategy(0, RoundingStrategy::MidpointNearestEven)
        .to_i64()
        .ok_or(LineError::Overflow)?;
    // Rounding must never let partial refunds overtake the line total.
    Ok(share.min(line_total_minor - refunded_minor))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn d(s: &str) -> Decimal {
        s.parse().unwrap()
    }

    #[test]
    fn line_total_rounds_half_even() {
        assert_eq!(line_total_minor(d("2"), 150, 0).unwrap(), 300);
        assert_eq!(line_total_minor(d("0.5"), 3, 0).unwrap(), 2); // 1.5 -> 2
        assert_eq!(line_total_minor(d("0.5"), 5, 0).unwrap(), 2); // 2.5 -> 2
        assert_eq!(line_total_minor(d("3"), 100, 50).unwrap(), 250);
    }

    #[test]
    fn bad_lines_are_refused() {
        assert_eq!(
            line_total_minor(d("0"), 100, 0),
            Err(LineError::NonPositiveQuantity)
        );
        assert_eq!(
            line_total_minor(d("1"), -1, 0),
            Err(LineError::NegativePrice)
        );
        assert_eq!(
            line_total_minor(d("1"), 100, 101),
            Err(LineError::BadDiscount)
        );
        assert_eq!(
            line_total_minor(d("1"), 100, -1),
            Err(LineError::BadDiscount)
        );
    }

    #[test]
    fn returning_more_than_bought_is_refused() {
        let err = refund_line_amount(1000, d("2"), d("1.5"), 750, d("1")).unwrap_err();
        assert!(matches!(err, LineError::ReturnExceedsQuantity { .. }));
    }

    proptest! {
        #[test]
        fn partial_refunds_add_up_to_the_line_total(
            total in 0i64..10_000_000,
            parts in proptest::collection::vec(1u32..5, 1..6),
        ) {
            let quantity = Decimal::from(parts.iter().sum::<u32>());
            let (mut refunded_quantity, mut refunded_minor) = (Decimal::ZERO, 0i64);
            for part in &parts {
                let q = Decimal::from(*part);
                let amount = refund_line_amount(total, quantity, refunded_quantity, refunded_minor, q).unwrap();
                prop_assert!(amount >= 0);
                refunded_quantity += q;
                refunded_minor += amount;
                prop_assert!(refunded_minor <= total);
            }
            prop_assert_eq!(refunded_minor, total);
        }
    }
}
