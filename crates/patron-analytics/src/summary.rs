//! A member's purchases turned into the summary the lifetime-value models work on.
//!
//! Purchases on the same day are one purchase (a basket split over two tills is one
//! visit). Over the calibration period, which ends on `calibration_end` (inclusive):
//! `x` = purchase days after the first (repeat purchases), `t_x` = time from the first
//! purchase day to the last, `T` = time from the first purchase day to the end of the
//! period, both in `days_per_period`-day periods (7 for weeks). The Gamma-Gamma model's
//! spend is the average amount of the repeat purchase days (the first purchase is left out:
//! it is the one that made the customer, and often differs).

use crate::date::Day;

/// What the models need to know about one customer.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CustomerSummary {
    /// Repeat purchases: purchase days after the first one.
    pub x: u32,
    /// Time of the last purchase, from the first (0 when `x == 0`), in periods.
    pub t_x: f64,
    /// Time from the first purchase to the end of calibration, in periods ("T").
    pub t_cal: f64,
    /// Total amount of the repeat purchase days, minor units.
    pub repeat_amount_minor: i128,
}

impl CustomerSummary {
    /// Average repeat spend in major units (minor units / 10^decimals); `None` without
    /// repeat purchases.
    pub fn average_repeat_spend(&self, decimals: u32) -> Option<f64> {
        (self.x > 0).then(|| {
            self.repeat_amount_minor as f64 / 10f64.powi(decimals as i32) / f64::from(self.x)
        })
    }
}

/// Summarises one customer's purchases (`(day, amount_minor)`, any order; sorted in
/// place). Purchases after `calibration_end` are ignored. `None` when no purchase falls
/// in the calibration period.
pub fn summarize(
    purchases: &mut [(Day, i64)],
    calibration_end: Day,
    days_per_period: f64,
) -> Option<CustomerSummary> {
    purchases.sort_unstable_by_key(|&(day, _)| day);
    let mut in_period = purchases
        .iter()
        .take_while(|&&(day, _)| day <= calibration_end);
    let &(first, _) = in_period.next()?;
    let mut last = first;
    let mut x = 0u32;
    let mut repeat_amount_minor = 0i128;
    for &(day, amount) in in_period {
        if day == first {
            continue; // same day as the first purchase: part of it
        }
        if day != last {
            x += 1;
            last = day;
        }
        repeat_amount_minor += i128::from(amount);
    }
    Some(CustomerSummary {
        x,
        t_x: last.days_since(first) as f64 / days_per_period,
        t_cal: calibration_end.days_since(first) as f64 / days_per_period,
        repeat_amount_minor,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_day_purchases_are_one_and_later_ones_are_ignored() {
        let mut purchases = vec![
            (Day(14), 500),
            (Day(0), 1000),
            (Day(7), 300),
            (Day(7), 200),
            (Day(0), 99),
            (Day(30), 7000),
        ];
        let s = summarize(&mut purchases, Day(28), 7.0);
        assert_eq!(
            s,
            Some(CustomerSummary {
                x: 2,
                t_x: 2.0,
                t_cal: 4.0,
                repeat_amount_minor: 1000
            })
        );
        assert_eq!(s.and_then(|s| s.average_repeat_spend(2)), Some(5.0));
    }

    #[test]
    fn a_single_purchase_day_is_no_repeat() {
        let mut purchases = vec![(Day(3), 100), (Day(3), 50)];
        let s = summarize(&mut purchases, Day(10), 1.0);
        assert_eq!(
            s,
            Some(CustomerSummary {
                x: 0,
                t_x: 0.0,
                t_cal: 7.0,
                repeat_amount_minor: 0
            })
        );
        assert_eq!(s.and_then(|s| s.average_repeat_spend(2)), None);
        assert_eq!(summarize(&mut [(Day(11), 1)], Day(10), 1.0), None);
    }
}
