//! How many points a purchase earns.
//!
//! Points = eligible amount in major units × points per unit × tier multiplier, rounded to a
//! whole number with the program's rounding mode. The arithmetic is exact decimal (no floats)
//! and checked: a result too large for an `i64` is an error, never a wrapped or saturated
//! number, so a purchase can never earn negative points nor a fortune by overflow. (What is
//! large enough to refuse, far below that, is the program's `[limits] points_max`.)

use rust_decimal::prelude::ToPrimitive;
use rust_decimal::{Decimal, RoundingStrategy};

use crate::program::Earning;
use crate::shared::{Currency, Rounding};

/// Points earned on a purchase.
///
/// - `purchase_total_minor`: the whole purchase, in minor units; below
///   [`Earning::minimum_purchase_minor`] it earns nothing.
/// - `eligible_amount_minor`: the part that earns points (after [`is_eligible`] exclusions), in
///   minor units.
/// - `multiplier`: the member's tier multiplier (1 for none).
///
/// Returns 0 for non-positive amounts or multipliers, and [`PointsOverflow`] for a result that
/// does not fit an `i64`.
pub fn base_points(
    earning: &Earning,
    currency: &Currency,
    purchase_total_minor: i64,
    eligible_amount_minor: i64,
    multiplier: Decimal,
) -> Result<i64, PointsOverflow> {
    if purchase_total_minor < earning.minimum_purchase_minor
        || eligible_amount_minor <= 0
        || multiplier <= Decimal::ZERO
        || earning.points_per_unit <= Decimal::ZERO
    {
        return Ok(0);
    }
    // Minor to major units exactly: 1234 with two decimals is 12.34. A scale beyond what a
    // Decimal holds (28) cannot come from a validated program (at most 4); earn nothing rather
    // than guess.
    let Ok(amount) = Decimal::try_new(eligible_amount_minor, currency.minor_unit) else {
        return Ok(0);
    };
    // Every factor is positive here, so an overflow can only be too large a result.
    let points = amount
        .checked_mul(earning.points_per_unit)
        .and_then(|points| points.checked_mul(multiplier))
        .ok_or(PointsOverflow)?;
    let strategy = match earning.rounding {
        Rounding::Down => RoundingStrategy::ToZero,
        Rounding::Up => RoundingStrategy::AwayFromZero,
        Rounding::HalfUp => RoundingStrategy::MidpointAwayFromZero,
        Rounding::HalfEven => RoundingStrategy::MidpointNearestEven,
    };
    points
        .round_dp_with_strategy(0, strategy)
        .to_i64()
        .map(|points| points.max(0))
        .ok_or(PointsOverflow)
}

/// A number of points too large for an `i64`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the points are too large to count")]
pub struct PointsOverflow;

/// Whether a line item earns points: neither its SKU nor its category is excluded. Codes are
/// compared exactly as the shop sends them.
pub fn is_eligible(earning: &Earning, sku: &str, category: &str) -> bool {
    !earning.excluded_skus.iter().any(|excluded| excluded == sku)
        && !earning
            .excluded_categories
            .iter()
            .any(|excluded| excluded == category)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The points of a purchase that cannot overflow (every test but the overflow's).
    fn base_points(
        earning: &Earning,
        currency: &Currency,
        purchase_total_minor: i64,
        eligible_amount_minor: i64,
        multiplier: Decimal,
    ) -> i64 {
        super::base_points(
            earning,
            currency,
            purchase_total_minor,
            eligible_amount_minor,
            multiplier,
        )
        .unwrap()
    }

    fn earning(points_per_unit: Decimal, rounding: Rounding) -> Earning {
        Earning {
            points_per_unit,
            rounding,
            minimum_purchase_minor: 0,
            excluded_categories: vec!["tobacco".into()],
            excluded_skus: vec!["GIFT-CARD".into()],
        }
    }

    fn rial() -> Currency {
        Currency {
            code: "IRR".into(),
            minor_unit: 0,
        }
    }

    fn dollar() -> Currency {
        Currency {
            code: "USD".into(),
            minor_unit: 2,
        }
    }

    #[test]
    fn one_point_per_hundred_thousand_rials_rounds_down() {
        let earning = earning(Decimal::new(1, 5), Rounding::Down);
        assert_eq!(
            base_points(&earning, &rial(), 2_599_000, 2_599_000, Decimal::ONE),
            25
        );
        assert_eq!(
            base_points(&earning, &rial(), 99_999, 99_999, Decimal::ONE),
            0
        );
        assert_eq!(
            base_points(&earning, &rial(), 100_000, 100_000, Decimal::ONE),
            1
        );
    }

    #[test]
    fn minor_units_are_divided_out_before_the_rate() {
        // $12.34 at 10 points per dollar is 123.4 points.
        let earning = earning(Decimal::new(10, 0), Rounding::Down);
        assert_eq!(
            base_points(&earning, &dollar(), 1_234, 1_234, Decimal::ONE),
            123
        );
    }

    #[test]
    fn each_rounding_mode_applies_to_the_fraction() {
        // $2.50 at 1 point per dollar is exactly 2.5 points; $3.50 is 3.5; $2.51 is 2.51.
        let cases = [
            (Rounding::Down, [2, 3, 2]),
            (Rounding::Up, [3, 4, 3]),
            (Rounding::HalfUp, [3, 4, 3]),
            (Rounding::HalfEven, [2, 4, 3]),
        ];
        for (rounding, expected) in cases {
            let earning = earning(Decimal::ONE, rounding);
            let got = [250, 350, 251]
                .map(|cents| base_points(&earning, &dollar(), cents, cents, Decimal::ONE));
            assert_eq!(got, expected, "{rounding:?}");
        }
    }

    #[test]
    fn tier_multiplier_applies_before_rounding() {
        // 2.6 points × 1.5 = 3.9: 3 rounding down, 4 rounding half up.
        let earning = earning(Decimal::ONE, Rounding::Down);
        assert_eq!(
            base_points(&earning, &dollar(), 260, 260, Decimal::new(15, 1)),
            3
        );
        let earning_half_up = Earning {
            rounding: Rounding::HalfUp,
            ..earning
        };
        assert_eq!(
            base_points(&earning_half_up, &dollar(), 260, 260, Decimal::new(15, 1)),
            4
        );
    }

    #[test]
    fn a_purchase_below_the_minimum_earns_nothing() {
        let earning = Earning {
            minimum_purchase_minor: 500,
            ..earning(Decimal::ONE, Rounding::Down)
        };
        assert_eq!(base_points(&earning, &dollar(), 499, 499, Decimal::ONE), 0);
        assert_eq!(base_points(&earning, &dollar(), 500, 500, Decimal::ONE), 5);
        // The minimum applies to the whole purchase, not to the eligible part.
        assert_eq!(base_points(&earning, &dollar(), 600, 300, Decimal::ONE), 3);
    }

    #[test]
    fn non_positive_inputs_earn_nothing() {
        let earning = earning(Decimal::ONE, Rounding::Up);
        assert_eq!(
            base_points(&earning, &dollar(), -500, -500, Decimal::ONE),
            0
        );
        assert_eq!(base_points(&earning, &dollar(), 500, 0, Decimal::ONE), 0);
        assert_eq!(base_points(&earning, &dollar(), 500, 500, Decimal::ZERO), 0);
        assert_eq!(
            base_points(&earning, &dollar(), 500, 500, Decimal::NEGATIVE_ONE),
            0
        );
    }

    #[test]
    fn huge_results_are_an_error_not_a_saturated_number() {
        let earning = earning(Decimal::new(1_000_000, 0), Rounding::Down);
        assert_eq!(
            super::base_points(&earning, &rial(), i64::MAX, i64::MAX, Decimal::new(100, 0)),
            Err(PointsOverflow)
        );
        let impossible_scale = Currency {
            code: "XXX".into(),
            minor_unit: 40,
        };
        assert_eq!(
            base_points(&earning, &impossible_scale, 1, 1, Decimal::ONE),
            0
        );
    }

    #[test]
    fn excluded_skus_and_categories_do_not_earn() {
        let earning = earning(Decimal::ONE, Rounding::Down);
        assert!(is_eligible(&earning, "MILK-1L", "dairy"));
        assert!(!is_eligible(&earning, "CIGS-20", "tobacco"));
        assert!(!is_eligible(&earning, "GIFT-CARD", "gifts"));
        assert!(
            is_eligible(&earning, "gift-card", "Tobacco"),
            "comparison is exact"
        );
    }

    proptest! {
        #[test]
        fn points_are_never_negative_and_grow_with_the_amount(
            amount in 0_i64..1_000_000_000_000,
            extra in 0_i64..1_000_000,
            rate_mantissa in 1_i64..1_000_000,
            rate_scale in 0_u32..8,
            multiplier_tenths in 1_i64..100,
            rounding_index in 0_usize..4,
        ) {
            let rounding = [Rounding::Down, Rounding::Up, Rounding::HalfUp, Rounding::HalfEven][rounding_index];
            let earning = earning(Decimal::new(rate_mantissa, rate_scale), rounding);
            let multiplier = Decimal::new(multiplier_tenths, 1);
            let smaller = base_points(&earning, &dollar(), amount, amount, multiplier);
            let larger = base_points(&earning, &dollar(), amount + extra, amount + extra, multiplier);
            prop_assert!(smaller >= 0);
            prop_assert!(larger >= smaller);
        }

        #[test]
        fn rounding_modes_stay_within_one_point_of_each_other(
            amount in 1_i64..1_000_000_000,
            rate_mantissa in 1_i64..10_000,
        ) {
            let rate = Decimal::new(rate_mantissa, 3);
            let down = base_points(&earning(rate, Rounding::Down), &dollar(), amount, amount, Decimal::ONE);
            let up = base_points(&earning(rate, Rounding::Up), &dollar(), amount, amount, Decimal::ONE);
            let half_up = base_points(&earning(rate, Rounding::HalfUp), &dollar(), amount, amount, Decimal::ONE);
            let half_even = base_points(&earning(rate, Rounding::HalfEven), &dollar(), amount, amount, Decimal::ONE);
            prop_assert!(up - down <= 1 && up >= down);
            prop_assert!((down..=up).contains(&half_up));
            prop_assert!((down..=up).contains(&half_even));
        }
    }
}
