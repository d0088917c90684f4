//! The BG/NBD model of repeat purchasing: Fader, Hardie & Lee (2005), "Counting Your
//! Customers the Easy Way: An Alternative to the Pareto/NBD Model".
//!
//! While alive, a customer buys at Poisson rate λ, λ ~ Gamma(r, α) across customers; after
//! every purchase the customer drops out with probability p, p ~ Beta(a, b). A customer's
//! data is (x, t_x, T): x repeat purchases, the last at t_x, observed for T.
//!
//! The likelihood of one customer (FHL eq. 6), written in logarithms so no term overflows
//! for large x:
//!
//! ```text
//! ln L = ln Γ(r+x) − ln Γ(r) + r ln α
//!        + ln( B(a, b+x)/B(a, b) · (α+T)^−(r+x)
//!              + [x > 0] B(a+1, b+x−1)/B(a, b) · (α+t_x)^−(r+x) )
//! ```
//!
//! The fit maximises Σ wᵢ ln Lᵢ over the distinct (x, t_x, T) tuples with their counts wᵢ,
//! in the logarithms of the parameters (so they stay positive), with BFGS on the exact
//! gradient (digamma terms; every x-dependent special function is computed once per
//! distinct x, not once per customer), Nelder–Mead as a fallback, and standard errors from
//! a finite-difference Hessian of the exact gradient.

use crate::optimize::{BfgsSettings, bfgs, hessian_from_gradient, nelder_mead, standard_errors};
use crate::special::{digamma, ln_gamma, log_add_exp};

/// The model's four parameters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BgNbdParams {
    /// Shape of the purchase-rate distribution.
    pub r: f64,
    /// Scale of the purchase-rate distribution (in time periods).
    pub alpha: f64,
    /// Beta shape of the dropout probability.
    pub a: f64,
    /// Beta shape of the dropout probability.
    pub b: f64,
}

impl BgNbdParams {
    #[cfg(test)]
    fn to_array(self) -> [f64; 4] {
        [self.r, self.alpha, self.a, self.b]
    }
    fn from_array(v: [f64; 4]) -> BgNbdParams {
        BgNbdParams {
            r: v[0],
            alpha: v[1],
            a: v[2],
            b: v[3],
        }
    }
}

/// Why a fit or a prediction was refused.
#[derive(Debug, Clone, PartialEq)]
pub enum ModelError {
    /// A customer's numbers are impossible (t_x > T, T ≤ 0, a negative weight, NaN).
    InvalidCustomer {
        /// The position of the customer in the input.
        index: usize,
        /// What is wrong.
        reason: &'static str,
    },
    /// Too few customers (or too few repeat customers) to fit the model.
    TooFewCustomers {
        /// How many were usable.
        usable: usize,
        /// How many the model needs at least.
        needed: usize,
    },
    /// The optimiser found no finite maximum.
    NoConvergence,
}

impl std::fmt::Display for ModelError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ModelError::InvalidCustomer { index, reason } => {
                write!(f, "customer #{}: {reason}", index + 1)
            }
            ModelError::TooFewCustomers { usable, needed } => {
                write!(
                    f,
                    "{usable} usable customers; the model needs at least {needed}"
                )
            }
            ModelError::NoConvergence => {
                f.write_str("the likelihood maximisation did not converge")
            }
        }
    }
}

impl std::error::Error for ModelError {}

/// One group of tuples sharing x, whose special functions are computed once.
#[derive(Debug, Clone, Copy)]
struct Group {
    x: u32,
    start: usize,
    end: usize,
}

/// The distinct (x, t_x, T) tuples of a customer base with their weights, grouped by x.
#[derive(Debug, Clone)]
pub struct BgNbdData {
    groups: Vec<Group>,
    t_x: Vec<f64>,
    t_cal: Vec<f64>,
    weight: Vec<f64>,
    total_weight: f64,
}

impl BgNbdData {
    /// Collects `(x, t_x, T, weight)` tuples (weight 1 for one customer each), merging
    /// equal tuples.
    pub fn new(
        customers: impl IntoIterator<Item = (u32, f64, f64, f64)>,
    ) -> Result<BgNbdData, ModelError> {
        let mut rows: Vec<(u32, f64, f64, f64)> = Vec::new();
        for (index, (x, t_x, t_cal, weight)) in customers.into_iter().enumerate() {
            let invalid = |reason| Err(ModelError::InvalidCustomer { index, reason });
            if !(t_cal.is_finite() && t_cal > 0.0) {
                return invalid("T must be positive");
            }
            if !(t_x.is_finite() && (0.0..=t_cal).contains(&t_x)) {
                return invalid("t_x must be within 0..=T");
            }
            if !(weight.is_finite() && weight >= 0.0) {
                return invalid("the weight must be zero or positive");
            }
            if weight > 0.0 {
                // t_x carries no information without repeat purchases.
                rows.push((x, if x == 0 { 0.0 } else { t_x }, t_cal, weight));
            }
        }
        // Non-negative floats order like their bit patterns.
        rows.sort_unstable_by_key(|&(x, t_x, t_cal, _)| (x, t_x.to_bits(), t_cal.to_bits()));
        let mut data = BgNbdData {
            groups: Vec::new(),
            t_x: Vec::with_capacity(rows.len()),
            t_cal: Vec::with_capacity(rows.len()),
            weight: Vec::with_capacity(rows.len()),
            total_weight: 0.0,
        };
        let mut previous: Option<(u32, u64, u64)> = None;
        for (x, t_x, t_cal, weight) in rows {
            let key = (x, t_x.to_bits(), t_cal.to_bits());
            data.total_weight += weight;
            if previous == Some(key) {
                if let Some(w) = data.weight.last_mut() {
                    *w += weight;
                }
                continue;
            }
            if previous.is_none_or(|(px, _, _)| px != x) {
                data.groups.push(Group {
                    x,
                    start: data.t_x.len(),
                    end: data.t_x.len(),
                });
            }
            previous = Some(key);
            data.t_x.push(t_x);
            data.t_cal.push(t_cal);
            data.weight.push(weight);
            if let Some(group) = data.groups.last_mut() {
                group.end = data.t_x.len();
            }
        }
        Ok(data)
    }

    /// The number of distinct tuples.
    pub fn distinct(&self) -> usize {
        self.t_x.len()
    }

    /// The total weight (number of customers).
    pub fn customers(&self) -> f64 {
        self.total_weight
    }

    /// Σ wᵢ ln Lᵢ at `params`, and its gradient with respect to (r, α, a, b) into
    /// `gradient` when given. `threads` > 1 splits the tuples between scoped threads.
    pub fn log_likelihood(
        &self,
        params: BgNbdParams,
        gradient: Option<&mut [f64; 4]>,
        threads: usize,
    ) -> f64 {
        let BgNbdParams { r, alpha, a, b } = params;
        if !(r > 0.0 && alpha > 0.0 && a > 0.0 && b > 0.0) {
            return f64::NAN;
        }
        let per_x = self.x_terms(params);
        let want_gradient = gradient.is_some();
        let threads = threads.clamp(1, 16);
        let (value, sums) = if threads == 1 || self.distinct() < 50_000 {
            self.partial(&per_x, 0, self.groups.len(), r, alpha, a, want_gradient)
        } else {
            // Split the groups into contiguous runs of about equal tuple counts.
            let per_thread = self.distinct().div_ceil(threads);
            let mut bounds = vec![0usize];
            let mut count = 0;
            for (i, g) in self.groups.iter().enumerate() {
                count += g.end - g.start;
                if count >= per_thread * bounds.len() && i + 1 < self.groups.len() {
                    bounds.push(i + 1);
                }
            }
            bounds.push(self.groups.len());
            let per_x = &per_x;
            std::thread::scope(|scope| {
                let handles: Vec<_> = bounds
                    .windows(2)
                    .skip(1)
                    .map(|w| {
                        let (from, to) = (w[0], w[1]);
                        scope.spawn(move || {
                            self.partial(per_x, from, to, r, alpha, a, want_gradient)
                        })
                    })
                    .collect();
                let mut total =
                    self.partial(per_x, bounds[0], bounds[1], r, alpha, a, want_gradient);
                for handle in handles {
                    match handle.join() {
                        Ok((v, g)) => {
                            total.0 += v;
                            for k in 0..4 {
                                total.1[k] += g[k];
                            }
                        }
                        Err(_) => total.0 = f64::NAN,
                    }
                }
                total
            })
        };
        if let Some(gradient) = gradient {
            *gradient = sums;
        }
        value
    }

    /// Per distinct x: the constant parts of ln A, t1, t2 and of their derivatives at
    /// `params` (valid: all four positive).
    fn x_terms(&self, params: BgNbdParams) -> Vec<XTerms> {
        let BgNbdParams { r, alpha, a, b } = params;
        let ln_alpha = alpha.ln();
        let shared_ln = ln_gamma(r) - r * ln_alpha;
        let ln_beta_ab_rest = ln_gamma(b) - ln_gamma(a + b); // ln B(a, b) − ln Γ(a)
        let psi_r = digamma(r);
        let psi_b = digamma(b);
        let psi_ab = digamma(a + b);
        let ln_a = a.ln();
        self.groups
            .iter()
            .map(|g| {
                let xf = f64::from(g.x);
                let ln_g_abx = ln_gamma(a + b + xf);
                let psi_abx = digamma(a + b + xf);
                let ln_a_term = ln_gamma(r + xf) - shared_ln;
                let d_ln_a_r = digamma(r + xf) - psi_r + ln_alpha;
                let base1 = ln_gamma(b + xf) - ln_g_abx - ln_beta_ab_rest;
                let d1a = psi_ab - psi_abx;
                let d1b = digamma(b + xf) - psi_abx - psi_b + psi_ab;
                let (base2, d2b) = if g.x > 0 {
                    (
                        ln_a + ln_gamma(b + xf - 1.0) - ln_g_abx - ln_beta_ab_rest,
                        digamma(b + xf - 1.0) - psi_abx - psi_b + psi_ab,
                    )
                } else {
                    (f64::NEG_INFINITY, 0.0)
                };
                XTerms {
                    x: xf,
                    repeat: g.x > 0,
                    ln_a_term,
                    d_ln_a_r,
                    base1,
                    base2,
                    d1a,
                    d1b,
                    d2b,
                }
            })
            .collect()
    }

    /// The log-likelihood and gradient sums over groups `from..to`.
    #[allow(clippy::too_many_arguments)]
    fn partial(
        &self,
        per_x: &[XTerms],
        from: usize,
        to: usize,
        r: f64,
        alpha: f64,
        a: f64,
        want_gradient: bool,
    ) -> (f64, [f64; 4]) {
        let mut value = 0.0;
        let mut g = [0.0f64; 4];
        for (group, terms) in self.groups[from..to].iter().zip(&per_x[from..to]) {
            let rx = r + terms.x;
            let range = group.start..group.end;
            let t_x = &self.t_x[range.clone()];
            let t_cal = &self.t_cal[range.clone()];
            let weight = &self.weight[range];
            let mut group_value = 0.0;
            let mut group_weight = 0.0;
            let (mut gr, mut galpha, mut gw2, mut gb) = (0.0, 0.0, 0.0, 0.0);
            if !terms.repeat {
                for i in 0..weight.len() {
                    let l1 = (alpha + t_cal[i]).ln();
                    group_value -= weight[i] * rx * l1;
                    group_weight += weight[i];
                    if want_gradient {
                        gr -= weight[i] * l1;
                        galpha -= weight[i] * rx / (alpha + t_cal[i]);
                    }
                }
            } else {
                for i in 0..weight.len() {
                    let l1 = (alpha + t_cal[i]).ln();
                    let l2 = (alpha + t_x[i]).ln();
                    let t1 = terms.base1 - rx * l1;
                    let t2 = terms.base2 - rx * l2;
                    let w = weight[i];
                    group_value += w * log_add_exp(t1, t2);
                    group_weight += w;
                    if want_gradient {
                        // w2 = e^t2 / (e^t1 + e^t2), computed without overflow.
                        let d = t1 - t2;
                        let w2 = if d > 0.0 {
                            let e = (-d).exp();
                            e / (1.0 + e)
                        } else {
                            1.0 / (1.0 + d.exp())
                        };
                        let w1 = 1.0 - w2;
                        gr -= w * (w1 * l1 + w2 * l2);
                        galpha -= w * rx * (w1 / (alpha + t_cal[i]) + w2 / (alpha + t_x[i]));
                        gw2 += w * w2;
                        gb += w * (w1 * terms.d1b + w2 * terms.d2b);
                    }
                }
            }
            value += group_value + group_weight * terms.ln_a_term;
            if want_gradient {
                g[0] += gr + group_weight * terms.d_ln_a_r;
                g[1] += galpha + group_weight * r / alpha;
                // d t2/da = d t1/da + 1/a.
                g[2] += group_weight * terms.d1a + if terms.repeat { gw2 / a } else { 0.0 };
                g[3] += gb;
            }
        }
        (value, g)
    }
}

/// Per-x constants of one likelihood evaluation.
#[derive(Debug, Clone, Copy)]
struct XTerms {
    x: f64,
    repeat: bool,
    ln_a_term: f64,
    d_ln_a_r: f64,
    base1: f64,
    base2: f64,
    d1a: f64,
    d1b: f64,
    d2b: f64,
}

/// A fitted BG/NBD model.
#[derive(Debug, Clone, PartialEq)]
pub struct BgNbdFit {
    /// The maximum-likelihood parameters.
    pub params: BgNbdParams,
    /// Their standard errors (√diag of the inverse Hessian of −ln L); `None` when the
    /// Hessian is not positive definite.
    pub standard_errors: Option<BgNbdParams>,
    /// Σ wᵢ ln Lᵢ at the maximum.
    pub log_likelihood: f64,
    /// Customers (total weight) and distinct tuples fitted.
    pub customers: f64,
    /// Distinct (x, t_x, T) tuples.
    pub distinct_tuples: usize,
    /// Optimiser iterations and likelihood evaluations, for the curious.
    pub iterations: usize,
    /// Likelihood evaluations.
    pub evaluations: usize,
}

/// Fitting options.
#[derive(Debug, Clone, Copy)]
pub struct FitOptions {
    /// Threads for the likelihood sums (1 = the calling thread only). Results are
    /// deterministic for a given thread count.
    pub threads: usize,
}

impl Default for FitOptions {
    fn default() -> Self {
        FitOptions { threads: 1 }
    }
}

/// Fits the BG/NBD model by maximum likelihood.
pub fn fit(data: &BgNbdData, options: FitOptions) -> Result<BgNbdFit, ModelError> {
    let repeaters = data
        .groups
        .iter()
        .filter(|g| g.x > 0)
        .map(|g| g.end - g.start)
        .sum::<usize>();
    if data.distinct() < 2 || repeaters == 0 {
        return Err(ModelError::TooFewCustomers {
            usable: data.distinct(),
            needed: 2,
        });
    }
    let scale = 1.0 / data.total_weight;
    // Mean negative log-likelihood and its gradient in log-parameters.
    let objective = |theta: &[f64], grad: &mut [f64]| -> f64 {
        let p = [
            theta[0].exp(),
            theta[1].exp(),
            theta[2].exp(),
            theta[3].exp(),
        ];
        let mut g = [0.0; 4];
        let value = data.log_likelihood(BgNbdParams::from_array(p), Some(&mut g), options.threads);
        for k in 0..4 {
            grad[k] = -g[k] * p[k] * scale;
        }
        -value * scale
    };
    // Start: r = 1 and α from the mean purchase rate (E[λ] = r/α ≈ x/T), a = 1, b = 1.
    let (mut sum_x, mut sum_t) = (0.0, 0.0);
    for g in &data.groups {
        for i in g.start..g.end {
            sum_x += data.weight[i] * f64::from(g.x);
            sum_t += data.weight[i] * data.t_cal[i];
        }
    }
    let alpha0 = (sum_t / (sum_x + data.total_weight)).max(1e-6);
    let start = [0.0, alpha0.ln(), 0.0, 0.0];
    let mut evaluations = 0;
    let mut best = bfgs(objective, &start, BfgsSettings::default());
    evaluations += best.evaluations;
    if !best.converged || !best.value.is_finite() {
        let mut scratch = [0.0; 4];
        let rough = nelder_mead(|t| objective(t, &mut scratch), &best.x, 0.5, 1e-12, 4000);
        evaluations += rough.evaluations;
        let polished = bfgs(objective, &rough.x, BfgsSettings::default());
        evaluations += polished.evaluations;
        if polished.value.is_finite() && !(polished.value > best.value && best.value.is_finite()) {
            best = polished;
        }
    }
    if !best.value.is_finite() {
        return Err(ModelError::NoConvergence);
    }
    let params = [
        best.x[0].exp(),
        best.x[1].exp(),
        best.x[2].exp(),
        best.x[3].exp(),
    ];
    let hessian = hessian_from_gradient(
        |p, g| {
            let mut ll = [0.0; 4];
            data.log_likelihood(
                BgNbdParams::from_array([p[0], p[1], p[2], p[3]]),
                Some(&mut ll),
                options.threads,
            );
            for k in 0..4 {
                g[k] = -ll[k];
            }
        },
        &params,
    );
    let standard_errors = hessian
        .as_deref()
        .and_then(standard_errors)
        .map(|se| BgNbdParams::from_array([se[0], se[1], se[2], se[3]]));
    Ok(BgNbdFit {
        params: BgNbdParams::from_array(params),
        standard_errors,
        log_likelihood: data.log_likelihood(BgNbdParams::from_array(params), None, options.threads),
        customers: data.total_weight,
        distinct_tuples: data.distinct(),
        iterations: best.iterations,
        evaluations,
    })
}

impl BgNbdParams {
    /// ln of the odds that a customer with (x, t_x, T) has dropped out:
    /// [x > 0] · ln( a/(b+x−1) · ((α+T)/(α+t_x))^(r+x) ); −∞ when x = 0.
    fn ln_dropout_odds(&self, x: u32, t_x: f64, t_cal: f64) -> f64 {
        if x == 0 {
            return f64::NEG_INFINITY;
        }
        let xf = f64::from(x);
        self.a.ln() - (self.b + xf - 1.0).ln()
            + (self.r + xf) * ((self.alpha + t_cal).ln() - (self.alpha + t_x).ln())
    }

    /// P(alive | x, t_x, T) (FHL 2005, section 4.2):
    /// 1 / (1 + [x > 0] a/(b+x−1) ((α+T)/(α+t_x))^(r+x)).
    pub fn p_alive(&self, x: u32, t_x: f64, t_cal: f64) -> f64 {
        let odds = self.ln_dropout_odds(x, t_x, t_cal);
        if odds > 0.0 {
            let e = (-odds).exp();
            e / (1.0 + e)
        } else {
            1.0 / (1.0 + odds.exp())
        }
    }

    /// E[Y(t) | x, t_x, T]: expected purchases in the next `t` periods of a customer with
    /// history (x, t_x, T) (FHL 2005, eq. 10):
    ///
    /// ```text
    /// (a+b+x−1)/(a−1) · [1 − ((α+T)/(α+T+t))^(r+x) ₂F₁(r+x, b+x; a+b+x−1; z)] · P(alive)
    /// ```
    ///
    /// with z = t/(α+T+t). Two evaluations, each used where it is well conditioned:
    ///
    /// - |a − 1| ≤ 1: Euler's transformation ₂F₁(A, B; C; z) = (1−z)^(C−A−B) ₂F₁(C−A, C−B;
    ///   C; z) turns the power and the series into (1−z)^(a−1) ₂F₁(a+b−1−r, a−1; a+b+x−1; z),
    ///   whose terms shrink at least like zⁿ for any x; every term carries the factor a−1,
    ///   which is divided out analytically, so a = 1 is no 0/0.
    /// - a > 2: the series as written (all terms positive), summed with a running scale in
    ///   logarithms so (1−z)^−x-sized partial sums for large x cannot overflow; the power is
    ///   applied in logarithms too.
    ///
    /// `None` when the series does not settle (z extremely close to 1).
    pub fn expected_purchases(&self, t: f64, x: u32, t_x: f64, t_cal: f64) -> Option<f64> {
        if t <= 0.0 {
            return Some(0.0);
        }
        let bracket = if (self.a - 1.0).abs() <= 1.0 {
            self.bracket_transformed(t, x, t_cal)?
        } else {
            self.bracket_direct(t, x, t_cal)?
        };
        Some(bracket * self.p_alive(x, t_x, t_cal))
    }

    /// (a+b+x−1)/(a−1) · [1 − (1−z)^(r+x) ₂F₁(...)] by Euler's transformation.
    fn bracket_transformed(&self, t: f64, x: u32, t_cal: f64) -> Option<f64> {
        let BgNbdParams { r, alpha, a, b } = *self;
        let xf = f64::from(x);
        let z = t / (alpha + t_cal + t);
        let ln_one_minus_z = ((alpha + t_cal) / (alpha + t_cal + t)).ln();
        let am1 = a - 1.0;
        // (1 − (1−z)^(a−1)) / (a−1), → −ln(1−z) as a → 1.
        let first = if am1.abs() < 1e-12 {
            -ln_one_minus_z
        } else {
            -(am1 * ln_one_minus_z).exp_m1() / am1
        };
        // (₂F₁(p, a−1; c; z) − 1) / (a−1).
        let tail = hyp2f1_tail_over_second(a + b - 1.0 - r, am1, a + b + xf - 1.0, z)?;
        Some((a + b + xf - 1.0) * (first - (am1 * ln_one_minus_z).exp() * tail))
    }

    /// (a+b+x−1)/(a−1) · [1 − (1−z)^(r+x) ₂F₁(...)] from the series as written.
    fn bracket_direct(&self, t: f64, x: u32, t_cal: f64) -> Option<f64> {
        let BgNbdParams { r, alpha, a, b } = *self;
        let xf = f64::from(x);
        let z = t / (alpha + t_cal + t);
        let ln_one_minus_z = ((alpha + t_cal) / (alpha + t_cal + t)).ln();
        let ln_series = ln_hyp2f1_positive(r + xf, b + xf, a + b + xf - 1.0, z)?;
        let ln_product = (r + xf) * ln_one_minus_z + ln_series;
        Some((a + b + xf - 1.0) / (a - 1.0) * -ln_product.exp_m1())
    }
}

/// ln ₂F₁(p, q; c; z) for p, q, c > 0 and 0 ≤ z < 1 (every term positive), summed with a
/// running scale so the partial sums never overflow; `None` if the series does not settle
/// in [`crate::special::HYP2F1_TERMS_MAX`] terms.
fn ln_hyp2f1_positive(p: f64, q: f64, c: f64, z: f64) -> Option<f64> {
    if !((0.0..1.0).contains(&z) && p > 0.0 && q > 0.0 && c > 0.0) {
        return None;
    }
    const RESCALE_ABOVE: f64 = 1e250;
    let mut term = 1.0f64;
    let mut sum = 1.0f64;
    let mut ln_scale = 0.0f64;
    for n in 0..crate::special::HYP2F1_TERMS_MAX {
        let k = n as f64;
        term *= (p + k) * (q + k) / ((c + k) * (k + 1.0)) * z;
        let next = sum + term;
        if next == sum {
            return Some(sum.ln() + ln_scale);
        }
        sum = next;
        if sum > RESCALE_ABOVE {
            sum /= RESCALE_ABOVE;
            term /= RESCALE_ABOVE;
            ln_scale += RESCALE_ABOVE.ln();
        }
    }
    None
}

/// (₂F₁(p, q; c; z) − 1) / q = Σ_{n≥1} (p)ₙ (q+1)ₙ₋₁ / (c)ₙ zⁿ / n!, summed until a term
/// no longer changes the sum; `None` if it does not settle in
/// [`crate::special::HYP2F1_TERMS_MAX`] terms.
fn hyp2f1_tail_over_second(p: f64, q: f64, c: f64, z: f64) -> Option<f64> {
    // c may be negative (a + b < 1 with x = 0), but not 0, −1, −2, ...: a pole.
    if !(0.0..1.0).contains(&z) || !c.is_finite() || (c <= 0.0 && c.fract() == 0.0) {
        return None;
    }
    let mut term = p * z / c;
    let mut sum = term;
    for n in 1..crate::special::HYP2F1_TERMS_MAX {
        let k = n as f64;
        term *= (p + k) * (q + k) / ((c + k) * (k + 1.0)) * z;
        let next = sum + term;
        if !next.is_finite() {
            return None;
        }
        if next == sum {
            return Some(sum);
        }
        sum = next;
    }
    None
}

#[cfg(test)]
mod tests;
