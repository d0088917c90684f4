//! Per-customer predictions from a fitted BG/NBD and Gamma-Gamma pair, and customer
//! lifetime value.
//!
//! CLV here is deliberately simple and says so: expected purchases over a horizon times
//! expected spend per purchase (the two models are independent by assumption, so the
//! expectation of the product is the product of expectations). Optionally discounted per
//! period: value = spend · Σₖ (E[Y(k)] − E[Y(k−1)]) / (1 + d)^k over periods k = 1..H, so
//! purchases expected later weigh less. No margin is applied: multiply by the club's margin
//! to turn revenue into profit.

use crate::bgnbd::BgNbdParams;
use crate::gamma_gamma::GammaGammaParams;
use crate::summary::CustomerSummary;

/// What the models predict for one customer.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Prediction {
    /// P(still a customer).
    pub p_alive: f64,
    /// Expected purchases in the horizon; `None` when the series does not settle.
    pub expected_purchases: Option<f64>,
    /// Expected spend per purchase (major units); `None` without a spend model.
    pub expected_spend: Option<f64>,
}

impl Prediction {
    /// Undiscounted CLV over the horizon: expected purchases × expected spend.
    pub fn value(&self) -> Option<f64> {
        Some(self.expected_purchases? * self.expected_spend?)
    }
}

/// Predicts for one customer over `horizon` periods. `decimals` converts the summary's
/// minor units to the major units the spend model was fitted in.
pub fn predict(
    bgnbd: &BgNbdParams,
    gamma_gamma: Option<&GammaGammaParams>,
    customer: &CustomerSummary,
    horizon: f64,
    decimals: u32,
) -> Prediction {
    let CustomerSummary { x, t_x, t_cal, .. } = *customer;
    let expected_spend = gamma_gamma.and_then(|gg| match customer.average_repeat_spend(decimals) {
        Some(average) if average > 0.0 => gg.expected_spend(x, average),
        // No repeat purchases (or only refunds): the population mean.
        _ => gg.population_mean_spend(),
    });
    Prediction {
        p_alive: bgnbd.p_alive(x, t_x, t_cal),
        expected_purchases: bgnbd.expected_purchases(horizon, x, t_x, t_cal),
        expected_spend,
    }
}

/// Discounted CLV over `periods` whole periods at `discount_rate` per period (0.01 = 1%
/// per week when periods are weeks): spend · Σₖ (E[Y(k)] − E[Y(k−1)]) / (1+d)^k.
pub fn discounted_value(
    bgnbd: &BgNbdParams,
    customer: &CustomerSummary,
    expected_spend: f64,
    periods: u32,
    discount_rate: f64,
) -> Option<f64> {
    let CustomerSummary { x, t_x, t_cal, .. } = *customer;
    let mut previous = 0.0;
    let mut value = 0.0;
    for k in 1..=periods {
        let cumulative = bgnbd.expected_purchases(f64::from(k), x, t_x, t_cal)?;
        value += (cumulative - previous) / (1.0 + discount_rate).powi(k as i32);
        previous = cumulative;
    }
    Some(value * expected_spend)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn undiscounted_value_is_purchases_times_spend_and_discounting_lowers_it() {
        let bg = BgNbdParams {
            r: 0.243,
            alpha: 4.414,
            a: 0.793,
            b: 2.426,
        };
        let gg = GammaGammaParams {
            p: 6.25,
            q: 3.74,
            v: 15.44,
        };
        let customer = CustomerSummary {
            x: 2,
            t_x: 30.43,
            t_cal: 38.86,
            repeat_amount_minor: 4470,
        };
        let p = predict(&bg, Some(&gg), &customer, 39.0, 2);
        let spend = p.expected_spend.unwrap();
        assert!((p.value().unwrap() - p.expected_purchases.unwrap() * spend).abs() < 1e-12);
        let flat = discounted_value(&bg, &customer, spend, 39, 0.0).unwrap();
        assert!((flat - p.value().unwrap()).abs() < 1e-9);
        let discounted = discounted_value(&bg, &customer, spend, 39, 0.002).unwrap();
        assert!(discounted < flat && discounted > 0.9 * flat);
    }
}
