//! The Gamma-Gamma model of spend per purchase: Fader & Hardie, "The Gamma-Gamma Model of
//! Monetary Value" (2013 note).
//!
//! A customer's purchase amounts are Gamma(p, ν) with a customer-specific ν ~ Gamma(q, γ)
//! (γ is the note's and `lifetimes`' `v`); spend is independent of the purchase process.
//! The data of a repeat customer is x (repeat purchases) and z̄ (their average amount).
//! Marginal density of z̄ (the note's eq. 3), in logarithms:
//!
//! ```text
//! ln f = ln Γ(px+q) − ln Γ(px) − ln Γ(q) + q ln γ + (px−1) ln z̄ + px ln x − (px+q) ln(γ + x z̄)
//! ```
//!
//! Fitted like BG/NBD (log-parameters, BFGS on the exact gradient with the x-dependent
//! special functions computed once per distinct x, Nelder–Mead fallback, standard errors
//! from the Hessian), on customers with x > 0 and z̄ > 0 only.

use crate::bgnbd::ModelError;
use crate::optimize::{BfgsSettings, bfgs, hessian_from_gradient, nelder_mead, standard_errors};
use crate::special::{digamma, ln_gamma};

/// The model's three parameters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GammaGammaParams {
    /// Shape of a purchase amount's distribution.
    pub p: f64,
    /// Shape of the customers' ν.
    pub q: f64,
    /// Scale of the customers' ν (`v` in the note's software and `lifetimes`).
    pub v: f64,
}

/// Repeat customers' (x, z̄) with weights, grouped by x.
#[derive(Debug, Clone)]
pub struct GammaGammaData {
    /// (x, start, end) into the per-customer vectors.
    groups: Vec<(u32, usize, usize)>,
    /// z̄.
    spend: Vec<f64>,
    /// ln z̄.
    ln_spend: Vec<f64>,
    weight: Vec<f64>,
    total_weight: f64,
}

impl GammaGammaData {
    /// Collects `(x, z̄, weight)`; customers with x = 0 or z̄ ≤ 0 are left out (the model
    /// is about repeat spend, and a non-positive average is a refund-dominated history).
    pub fn new(
        customers: impl IntoIterator<Item = (u32, f64, f64)>,
    ) -> Result<GammaGammaData, ModelError> {
        let mut rows: Vec<(u32, f64, f64)> = Vec::new();
        for (index, (x, spend, weight)) in customers.into_iter().enumerate() {
            if !(spend.is_finite() && weight.is_finite() && weight >= 0.0) {
                return Err(ModelError::InvalidCustomer {
                    index,
                    reason: "spend and weight must be finite, weight ≥ 0",
                });
            }
            if x > 0 && spend > 0.0 && weight > 0.0 {
                rows.push((x, spend, weight));
            }
        }
        rows.sort_unstable_by_key(|&(x, spend, _)| (x, spend.to_bits()));
        let mut data = GammaGammaData {
            groups: Vec::new(),
            spend: Vec::with_capacity(rows.len()),
            ln_spend: Vec::with_capacity(rows.len()),
            weight: Vec::with_capacity(rows.len()),
            total_weight: 0.0,
        };
        let mut previous: Option<(u32, u64)> = None;
        for (x, spend, weight) in rows {
            data.total_weight += weight;
            if previous == Some((x, spend.to_bits())) {
                if let Some(w) = data.weight.last_mut() {
                    *w += weight;
                }
                continue;
            }
            if previous.is_none_or(|(px, _)| px != x) {
                data.groups.push((x, data.spend.len(), data.spend.len()));
            }
            previous = Some((x, spend.to_bits()));
            data.spend.push(spend);
            data.ln_spend.push(spend.ln());
            data.weight.push(weight);
            if let Some(group) = data.groups.last_mut() {
                group.2 = data.spend.len();
            }
        }
        Ok(data)
    }

    /// Customers (total weight) in the fit.
    pub fn customers(&self) -> f64 {
        self.total_weight
    }

    /// Σ wᵢ ln fᵢ at `params`, with the gradient in (p, q, v) when asked.
    pub fn log_likelihood(&self, params: GammaGammaParams, gradient: Option<&mut [f64; 3]>) -> f64 {
        let GammaGammaParams { p, q, v } = params;
        if !(p > 0.0 && q > 0.0 && v > 0.0) {
            return f64::NAN;
        }
        let ln_v = v.ln();
        let ln_gamma_q = ln_gamma(q);
        let psi_q = digamma(q);
        let want = gradient.is_some();
        let mut value = 0.0;
        let mut g = [0.0f64; 3];
        for &(x, start, end) in &self.groups {
            let xf = f64::from(x);
            let px = p * xf;
            let ln_x = xf.ln();
            let constant = ln_gamma(px + q) - ln_gamma(px) - ln_gamma_q + q * ln_v + px * ln_x;
            let (psi_pxq, psi_px) = if want {
                (digamma(px + q), digamma(px))
            } else {
                (0.0, 0.0)
            };
            let mut group_weight = 0.0;
            let (mut sum_ln_z, mut sum_ln_den, mut sum_inv_den) = (0.0, 0.0, 0.0);
            for i in start..end {
                let w = self.weight[i];
                let den = v + xf * self.spend[i];
                let ln_den = den.ln();
                group_weight += w;
                sum_ln_z += w * self.ln_spend[i];
                sum_ln_den += w * ln_den;
                if want {
                    sum_inv_den += w / den;
                }
            }
            value += group_weight * constant + (px - 1.0) * sum_ln_z - (px + q) * sum_ln_den;
            if want {
                g[0] += xf * (group_weight * (psi_pxq - psi_px + ln_x) + sum_ln_z - sum_ln_den);
                g[1] += group_weight * (psi_pxq - psi_q + ln_v) - sum_ln_den;
                g[2] += group_weight * q / v - (px + q) * sum_inv_den;
            }
        }
        if let Some(gradient) = gradient {
            *gradient = g;
        }
        value
    }
}

/// A fitted Gamma-Gamma model.
#[derive(Debug, Clone, PartialEq)]
pub struct GammaGammaFit {
    /// The maximum-likelihood parameters.
    pub params: GammaGammaParams,
    /// Their standard errors, when the Hessian is positive definite.
    pub standard_errors: Option<GammaGammaParams>,
    /// Σ wᵢ ln fᵢ at the maximum.
    pub log_likelihood: f64,
    /// Customers fitted (x > 0, z̄ > 0).
    pub customers: f64,
    /// Optimiser iterations.
    pub iterations: usize,
}

/// Fits the Gamma-Gamma model by maximum likelihood.
pub fn fit(data: &GammaGammaData) -> Result<GammaGammaFit, ModelError> {
    if data.spend.len() < 2 {
        return Err(ModelError::TooFewCustomers {
            usable: data.spend.len(),
            needed: 2,
        });
    }
    let scale = 1.0 / data.total_weight;
    let objective = |theta: &[f64], grad: &mut [f64]| -> f64 {
        let p = [theta[0].exp(), theta[1].exp(), theta[2].exp()];
        let mut g = [0.0; 3];
        let value = data.log_likelihood(
            GammaGammaParams {
                p: p[0],
                q: p[1],
                v: p[2],
            },
            Some(&mut g),
        );
        for k in 0..3 {
            grad[k] = -g[k] * p[k] * scale;
        }
        -value * scale
    };
    // Start: p = q = 2 and v from the mean spend (E[z] = p v / (q − 1) = 2 v).
    let mean_spend: f64 = data
        .spend
        .iter()
        .zip(&data.weight)
        .map(|(s, w)| s * w)
        .sum::<f64>()
        * scale;
    let start = [2f64.ln(), 2f64.ln(), (mean_spend / 2.0).max(1e-9).ln()];
    let mut best = bfgs(objective, &start, BfgsSettings::default());
    if !best.converged || !best.value.is_finite() {
        let mut scratch = [0.0; 3];
        let rough = nelder_mead(|t| objective(t, &mut scratch), &best.x, 0.5, 1e-12, 4000);
        let polished = bfgs(objective, &rough.x, BfgsSettings::default());
        if polished.value.is_finite() && !(polished.value > best.value && best.value.is_finite()) {
            best = polished;
        }
    }
    if !best.value.is_finite() {
        return Err(ModelError::NoConvergence);
    }
    let params = GammaGammaParams {
        p: best.x[0].exp(),
        q: best.x[1].exp(),
        v: best.x[2].exp(),
    };
    let hessian = hessian_from_gradient(
        |x, g| {
            let mut ll = [0.0; 3];
            data.log_likelihood(
                GammaGammaParams {
                    p: x[0],
                    q: x[1],
                    v: x[2],
                },
                Some(&mut ll),
            );
            for k in 0..3 {
                g[k] = -ll[k];
            }
        },
        &[params.p, params.q, params.v],
    );
    let standard_errors = hessian
        .as_deref()
        .and_then(standard_errors)
        .map(|se| GammaGammaParams {
            p: se[0],
            q: se[1],
            v: se[2],
        });
    Ok(GammaGammaFit {
        params,
        standard_errors,
        log_likelihood: data.log_likelihood(params, None),
        customers: data.total_weight,
        iterations: best.iterations,
    })
}

impl GammaGammaParams {
    /// The population mean spend per purchase, p·v/(q−1); `None` when q ≤ 1 (no finite mean).
    pub fn population_mean_spend(&self) -> Option<f64> {
        (self.q > 1.0).then(|| self.p * self.v / (self.q - 1.0))
    }

    /// E[spend per purchase | x, z̄] = p (v + x z̄) / (p x + q − 1) (the note's eq. 5): a
    /// weighted average of the population mean and the customer's own average. For x = 0
    /// it is the population mean. `None` when p x + q ≤ 1.
    pub fn expected_spend(&self, x: u32, average_spend: f64) -> Option<f64> {
        let xf = f64::from(x);
        let denominator = self.p * xf + self.q - 1.0;
        (denominator > 0.0).then(|| self.p * (self.v + xf * average_spend) / denominator)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PUBLISHED: GammaGammaParams = GammaGammaParams {
        p: 6.25,
        q: 3.74,
        v: 15.44,
    };

    #[test]
    fn the_density_integrates_to_one() {
        // ∫ f(z̄) dz̄ over (0, ∞) for x = 3, by the substitution z = e^u and the midpoint rule.
        let (lo, hi, steps) = (-12.0f64, 12.0f64, 200_000);
        let du = (hi - lo) / f64::from(steps);
        let mut total = 0.0;
        for k in 0..steps {
            let z = (lo + (f64::from(k) + 0.5) * du).exp();
            let data = GammaGammaData::new([(3, z, 1.0)]).unwrap();
            total += data.log_likelihood(PUBLISHED, None).exp() * z * du;
        }
        assert!((total - 1.0).abs() < 1e-6, "{total}");
    }

    #[test]
    fn the_gradient_matches_finite_differences() {
        let data = GammaGammaData::new([
            (1, 11.77, 1.0),
            (2, 22.35, 2.0),
            (7, 40.0, 1.0),
            (2, 5.5, 1.0),
        ])
        .unwrap();
        let mut g = [0.0; 3];
        data.log_likelihood(PUBLISHED, Some(&mut g));
        let p = [PUBLISHED.p, PUBLISHED.q, PUBLISHED.v];
        for k in 0..3 {
            let h = 1e-6 * p[k];
            let (mut up, mut down) = (p, p);
            up[k] += h;
            down[k] -= h;
            let at = |v: [f64; 3]| {
                data.log_likelihood(
                    GammaGammaParams {
                        p: v[0],
                        q: v[1],
                        v: v[2],
                    },
                    None,
                )
            };
            let numeric = (at(up) - at(down)) / (2.0 * h);
            assert!(
                (g[k] - numeric).abs() < 1e-5 * numeric.abs().max(1.0),
                "{k}: {} vs {numeric}",
                g[k]
            );
        }
    }

    #[test]
    fn expected_spend_shrinks_towards_the_population_mean() {
        let mean = PUBLISHED.population_mean_spend().unwrap();
        assert_eq!(PUBLISHED.expected_spend(0, 999.0), Some(mean));
        let one = PUBLISHED.expected_spend(1, 100.0).unwrap();
        let many = PUBLISHED.expected_spend(20, 100.0).unwrap();
        assert!(mean < one && one < many && many < 100.0);
    }

    #[test]
    fn non_repeat_and_non_positive_spend_are_left_out() {
        let data =
            GammaGammaData::new([(0, 10.0, 1.0), (2, 0.0, 1.0), (2, -3.0, 1.0), (1, 5.0, 1.0)])
                .unwrap();
        assert_eq!(data.customers(), 1.0);
        assert!(fit(&data).is_err());
    }
}
