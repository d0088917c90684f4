//! The special functions the models need, for positive real arguments: `ln Γ`, the
//! digamma function ψ = (ln Γ)′, and the Gauss hypergeometric series ₂F₁.
//!
//! `ln_gamma` and `digamma` shift a small argument up with the recurrences
//! Γ(x + 1) = x Γ(x) and ψ(x + 1) = ψ(x) + 1/x until it is at least 10, then sum the
//! Stirling / de Moivre asymptotic series; the truncation error there is below 1e-16
//! relative.

use std::f64::consts::PI;

/// Where the asymptotic series take over.
const ASYMPTOTIC_FROM: f64 = 10.0;

/// ln Γ(x) for x > 0 (NaN otherwise).
pub fn ln_gamma(x: f64) -> f64 {
    if x.is_nan() || x <= 0.0 {
        return f64::NAN;
    }
    if x.is_infinite() {
        return f64::INFINITY;
    }
    // Γ(x) = Γ(x + k) / (x (x+1) ... (x+k-1)); the product of at most ten factors below 10
    // cannot overflow.
    let mut shifted = x;
    let mut product = 1.0;
    while shifted < ASYMPTOTIC_FROM {
        product *= shifted;
        shifted += 1.0;
    }
    let z = shifted;
    let inv = 1.0 / z;
    let inv2 = inv * inv;
    // Σ B_2k / (2k (2k-1) z^(2k-1)), k = 1..7.
    let series = inv
        * (1.0 / 12.0
            + inv2
                * (-1.0 / 360.0
                    + inv2
                        * (1.0 / 1260.0
                            + inv2
                                * (-1.0 / 1680.0
                                    + inv2
                                        * (1.0 / 1188.0
                                            + inv2
                                                * (-691.0 / 360_360.0 + inv2 * (1.0 / 156.0)))))));
    let stirling = (z - 0.5) * z.ln() - z + 0.5 * (2.0 * PI).ln() + series;
    stirling - product.ln()
}

/// ψ(x) = d/dx ln Γ(x) for x > 0 (NaN otherwise).
pub fn digamma(x: f64) -> f64 {
    if x.is_nan() || x <= 0.0 {
        return f64::NAN;
    }
    if x.is_infinite() {
        return f64::INFINITY;
    }
    let mut shifted = x;
    let mut correction = 0.0;
    while shifted < ASYMPTOTIC_FROM {
        correction -= 1.0 / shifted;
        shifted += 1.0;
    }
    let z = shifted;
    let inv = 1.0 / z;
    let inv2 = inv * inv;
    // ln z − 1/(2z) − Σ B_2k / (2k z^(2k)), k = 1..7.
    let series = inv2
        * (1.0 / 12.0
            + inv2
                * (-1.0 / 120.0
                    + inv2
                        * (1.0 / 252.0
                            + inv2
                                * (-1.0 / 240.0
                                    + inv2
                                        * (1.0 / 132.0
                                            + inv2 * (-691.0 / 32_760.0 + inv2 * (1.0 / 12.0)))))));
    z.ln() - 0.5 * inv - series + correction
}

/// ln B(a, b) = ln Γ(a) + ln Γ(b) − ln Γ(a + b).
pub fn ln_beta(a: f64, b: f64) -> f64 {
    ln_gamma(a) + ln_gamma(b) - ln_gamma(a + b)
}

/// ln(e^u + e^v) without overflow.
#[inline]
pub fn log_add_exp(u: f64, v: f64) -> f64 {
    let (high, low) = if u >= v { (u, v) } else { (v, u) };
    if low == f64::NEG_INFINITY {
        return high;
    }
    high + (low - high).exp().ln_1p()
}

/// The most terms [`hyp2f1`] sums before giving up.
pub const HYP2F1_TERMS_MAX: usize = 1_000_000;

/// ₂F₁(a, b; c; z) = Σₙ (a)ₙ (b)ₙ / (c)ₙ zⁿ / n! for 0 ≤ z < 1 and c > 0, summed until a
/// term no longer changes the sum. `None` when the series has not settled after
/// [`HYP2F1_TERMS_MAX`] terms or leaves the finite floats.
///
/// Converges fastest when z is small and c is large compared to a·b; the BG/NBD
/// expectation uses it in that form (see `bgnbd`).
pub fn hyp2f1(a: f64, b: f64, c: f64, z: f64) -> Option<f64> {
    if !(0.0..1.0).contains(&z) || c.is_nan() || c <= 0.0 {
        return None;
    }
    let mut term = 1.0f64;
    let mut sum = 1.0f64;
    for n in 0..HYP2F1_TERMS_MAX {
        let k = n as f64;
        term *= (a + k) * (b + k) / ((c + k) * (k + 1.0)) * z;
        let next = sum + term;
        if !next.is_finite() {
            return None;
        }
        if next == sum && (n > 2 || term == 0.0) {
            return Some(next);
        }
        sum = next;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, relative: f64) -> bool {
        (a - b).abs() <= relative * b.abs().max(1e-300)
    }

    #[test]
    fn ln_gamma_matches_factorials_and_known_values() {
        let mut factorial = 1.0f64;
        for n in 1..40u32 {
            // Γ(n) = (n-1)!
            assert!(
                close(ln_gamma(f64::from(n)), factorial.ln(), 1e-14) || n <= 2,
                "{n}"
            );
            factorial *= f64::from(n);
        }
        assert!(ln_gamma(1.0).abs() < 1e-14);
        assert!(ln_gamma(2.0).abs() < 1e-14);
        assert!(close(ln_gamma(0.5), PI.sqrt().ln(), 1e-14));
        assert!(close(
            ln_gamma(1e-8),
            -(1e-8f64).ln() - 0.577_215_664_901_532_9 * 1e-8,
            1e-12
        ));
        // Large arguments stay finite: ln Γ(1e6).
        assert!(close(ln_gamma(1e6), 12_815_504.569_147_612, 1e-14));
    }

    #[test]
    fn digamma_is_the_derivative_of_ln_gamma() {
        assert!(close(digamma(1.0), -0.577_215_664_901_532_9, 1e-14));
        for &x in &[0.01, 0.243, 0.793, 1.5, 2.426, 7.0, 13.3, 250.0, 1e5] {
            let h = 1e-5 * x;
            let numeric = (ln_gamma(x + h) - ln_gamma(x - h)) / (2.0 * h);
            assert!(
                close(digamma(x), numeric, 1e-6),
                "{x}: {} vs {numeric}",
                digamma(x)
            );
        }
    }

    #[test]
    fn hyp2f1_matches_closed_forms() {
        // ₂F₁(1, 1; 2; z) = −ln(1 − z) / z
        for &z in &[0.0, 0.1, 0.5, 0.9, 0.99] {
            let expected = if z == 0.0 {
                1.0
            } else {
                -(1.0f64 - z).ln() / z
            };
            let got = hyp2f1(1.0, 1.0, 2.0, z);
            assert!(
                got.is_some_and(|g| close(g, expected, 1e-12)),
                "{z}: {got:?}"
            );
        }
        // ₂F₁(a, b; b; z) = (1 − z)^(−a)
        let got = hyp2f1(2.5, 3.0, 3.0, 0.3);
        assert!(got.is_some_and(|g| close(g, 0.7f64.powf(-2.5), 1e-13)));
        assert_eq!(hyp2f1(1.0, 1.0, 2.0, 1.0), None);
    }

    #[test]
    fn log_add_exp_does_not_overflow() {
        assert!(close(
            log_add_exp(1000.0, 1000.0),
            1000.0 + 2f64.ln(),
            1e-15
        ));
        assert_eq!(log_add_exp(-5.0, f64::NEG_INFINITY), -5.0);
    }
}
