//! Small-dimension minimisers for the likelihood fits: BFGS with a backtracking line
//! search (the workhorse: the models provide exact gradients), Nelder–Mead (derivative
//! free, the fallback when BFGS stalls far from a minimum), a finite-difference Hessian
//! for standard errors, and a matrix inverse. Written for 3-4 parameters; nothing here
//! allocates per iteration beyond a few short vectors.

/// Where a minimiser stopped.
#[derive(Debug, Clone, PartialEq)]
pub struct Minimum {
    /// The best point found.
    pub x: Vec<f64>,
    /// The objective there.
    pub value: f64,
    /// Iterations used.
    pub iterations: usize,
    /// Objective evaluations used.
    pub evaluations: usize,
    /// True when a stopping test was met (not an iteration or evaluation limit).
    pub converged: bool,
}

/// Stopping rules for [`bfgs`].
#[derive(Debug, Clone, Copy)]
pub struct BfgsSettings {
    /// Stop when every gradient component is at most this.
    pub gradient_tolerance: f64,
    /// Stop when the objective improved by at most this (relative) for 3 iterations in a row.
    pub value_tolerance: f64,
    /// Iterations at most.
    pub iterations_max: usize,
    /// The largest step in any coordinate (the models' coordinates are logarithms: 5 is a
    /// factor of 150).
    pub step_max: f64,
}

impl Default for BfgsSettings {
    fn default() -> Self {
        BfgsSettings {
            gradient_tolerance: 1e-9,
            value_tolerance: 1e-15,
            iterations_max: 1000,
            step_max: 5.0,
        }
    }
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

fn norm_max(a: &[f64]) -> f64 {
    a.iter().fold(0.0f64, |m, v| m.max(v.abs()))
}

fn identity(n: usize) -> Vec<Vec<f64>> {
    (0..n)
        .map(|i| (0..n).map(|j| if i == j { 1.0 } else { 0.0 }).collect())
        .collect()
}

/// Minimises `f` from `x0` by BFGS. `f(x, gradient)` returns the objective at `x` and
/// writes its gradient; a non-finite value means "outside the domain" and makes the line
/// search step back.
pub fn bfgs<F>(mut f: F, x0: &[f64], settings: BfgsSettings) -> Minimum
where
    F: FnMut(&[f64], &mut [f64]) -> f64,
{
    let n = x0.len();
    let mut x = x0.to_vec();
    let mut g = vec![0.0; n];
    let mut fx = f(&x, &mut g);
    let mut evaluations = 1;
    if !fx.is_finite() || g.iter().any(|v| !v.is_finite()) {
        return Minimum {
            x,
            value: fx,
            iterations: 0,
            evaluations,
            converged: false,
        };
    }
    let mut h = identity(n);
    let mut fresh = true; // h is the identity: scale it after the first step
    let mut stalled = 0;
    let mut x_new = vec![0.0; n];
    let mut g_new = vec![0.0; n];
    let mut direction = vec![0.0; n];
    for iteration in 0..settings.iterations_max {
        if norm_max(&g) <= settings.gradient_tolerance {
            return Minimum {
                x,
                value: fx,
                iterations: iteration,
                evaluations,
                converged: true,
            };
        }
        let slope = search_direction(&mut h, &mut fresh, &g, &mut direction, settings.step_max);
        let search = LineSearch {
            x: &x,
            fx,
            direction: &direction,
            slope,
        };
        let accepted = line_search(&mut f, search, &mut x_new, &mut g_new, &mut evaluations);
        let Some(value) = accepted else {
            if fresh {
                // Even steepest descent cannot improve: we are at the floating-point floor.
                let converged = norm_max(&g) <= settings.gradient_tolerance.sqrt();
                return Minimum {
                    x,
                    value: fx,
                    iterations: iteration,
                    evaluations,
                    converged,
                };
            }
            h = identity(n);
            fresh = true;
            continue;
        };
        let s: Vec<f64> = (0..n).map(|i| x_new[i] - x[i]).collect();
        let y: Vec<f64> = (0..n).map(|i| g_new[i] - g[i]).collect();
        let improvement = fx - value;
        x.copy_from_slice(&x_new);
        g.copy_from_slice(&g_new);
        fx = value;
        if improvement <= settings.value_tolerance * (1.0 + fx.abs()) {
            stalled += 1;
            if stalled >= 3 {
                return Minimum {
                    x,
                    value: fx,
                    iterations: iteration + 1,
                    evaluations,
                    converged: true,
                };
            }
        } else {
            stalled = 0;
        }
        update_inverse_hessian(&mut h, &mut fresh, &s, &y);
    }
    Minimum {
        x,
        value: fx,
        iterations: settings.iterations_max,
        evaluations,
        converged: false,
    }
}

/// The search direction −H·g, reset to steepest descent (and `h` to the identity) when it
/// does not descend, and shortened to at most `step_max` in any coordinate. Returns the
/// slope gᵀd along it.
fn search_direction(
    h: &mut Vec<Vec<f64>>,
    fresh: &mut bool,
    g: &[f64],
    direction: &mut [f64],
    step_max: f64,
) -> f64 {
    let n = g.len();
    for i in 0..n {
        direction[i] = -dot(&h[i], g);
    }
    let mut slope = dot(g, direction);
    if slope.is_nan() || slope >= 0.0 {
        *h = identity(n);
        *fresh = true;
        for i in 0..n {
            direction[i] = -g[i];
        }
        slope = dot(g, direction);
    }
    let longest = norm_max(direction);
    if longest > step_max {
        let shrink = step_max / longest;
        direction.iter_mut().for_each(|d| *d *= shrink);
        slope *= shrink;
    }
    slope
}

/// Where a line search starts and which way it goes.
struct LineSearch<'a> {
    x: &'a [f64],
    fx: f64,
    direction: &'a [f64],
    slope: f64,
}

/// Backtracking with the Armijo condition; halving, at most 60 times (2^-60). The accepted
/// value, with `x_new` and `g_new` at its point; `None` when no step was accepted.
fn line_search<F>(
    f: &mut F,
    search: LineSearch<'_>,
    x_new: &mut [f64],
    g_new: &mut [f64],
    evaluations: &mut usize,
) -> Option<f64>
where
    F: FnMut(&[f64], &mut [f64]) -> f64,
{
    let mut step = 1.0;
    for _ in 0..60 {
        for i in 0..search.x.len() {
            x_new[i] = search.x[i] + step * search.direction[i];
        }
        let value = f(x_new, g_new);
        *evaluations += 1;
        if value.is_finite()
            && g_new.iter().all(|v| v.is_finite())
            && value <= search.fx + 1e-4 * step * search.slope
        {
            return Some(value);
        }
        step *= 0.5;
    }
    None
}

/// The BFGS update of the inverse Hessian approximation `h` with the step `s` and the
/// gradient change `y`; skipped when the curvature sᵀy is not clearly positive. The first
/// update after a reset scales the identity by sᵀy / yᵀy.
fn update_inverse_hessian(h: &mut Vec<Vec<f64>>, fresh: &mut bool, s: &[f64], y: &[f64]) {
    let n = s.len();
    let sy = dot(s, y);
    if sy > 1e-12 * dot(s, s).sqrt() * dot(y, y).sqrt() {
        if *fresh {
            let scale = sy / dot(y, y);
            *h = identity(n)
                .into_iter()
                .map(|row| row.into_iter().map(|v| v * scale).collect())
                .collect();
            *fresh = false;
        }
        // H ← (I − ρ s yᵀ) H (I − ρ y sᵀ) + ρ s sᵀ, expanded:
        // H + ρ² (yᵀHy) s sᵀ + ρ s sᵀ − ρ (H y sᵀ + s yᵀ H).
        let rho = 1.0 / sy;
        let hy: Vec<f64> = (0..n).map(|i| dot(&h[i], y)).collect();
        let yhy = dot(y, &hy);
        for i in 0..n {
            for j in 0..n {
                h[i][j] +=
                    (rho * rho * yhy + rho) * s[i] * s[j] - rho * (hy[i] * s[j] + s[i] * hy[j]);
            }
        }
    }
}

/// Minimises `f` from `x0` by Nelder–Mead with the usual coefficients (reflect 1, expand
/// 2, contract ½, shrink ½) and a first simplex of steps `step` along each axis. Stops when
/// the values at the simplex's corners agree to `tolerance` (relative) or after
/// `iterations_max` iterations. Non-finite values count as +∞.
pub fn nelder_mead<F>(
    mut f: F,
    x0: &[f64],
    step: f64,
    tolerance: f64,
    iterations_max: usize,
) -> Minimum
where
    F: FnMut(&[f64]) -> f64,
{
    let n = x0.len();
    let mut evaluations = 0;
    let mut eval = |x: &[f64], evaluations: &mut usize| {
        *evaluations += 1;
        let v = f(x);
        if v.is_finite() { v } else { f64::INFINITY }
    };
    let mut simplex: Vec<(Vec<f64>, f64)> = Vec::with_capacity(n + 1);
    simplex.push((x0.to_vec(), eval(x0, &mut evaluations)));
    for i in 0..n {
        let mut x = x0.to_vec();
        x[i] += step;
        let v = eval(&x, &mut evaluations);
        simplex.push((x, v));
    }
    for iteration in 0..iterations_max {
        simplex.sort_by(|a, b| a.1.total_cmp(&b.1));
        let best = simplex[0].1;
        let worst = simplex[n].1;
        if worst.is_finite() && (worst - best).abs() <= tolerance * (1.0 + best.abs()) {
            let (x, value) = simplex.swap_remove(0);
            return Minimum {
                x,
                value,
                iterations: iteration,
                evaluations,
                converged: true,
            };
        }
        let centroid: Vec<f64> = (0..n)
            .map(|j| simplex[..n].iter().map(|(x, _)| x[j]).sum::<f64>() / n as f64)
            .collect();
        let toward = |t: f64, from: &[f64]| -> Vec<f64> {
            (0..n)
                .map(|j| centroid[j] + t * (from[j] - centroid[j]))
                .collect()
        };
        let reflected = toward(-1.0, &simplex[n].0);
        let reflected_value = eval(&reflected, &mut evaluations);
        if reflected_value < simplex[0].1 {
            let expanded = toward(-2.0, &simplex[n].0);
            let expanded_value = eval(&expanded, &mut evaluations);
            simplex[n] = if expanded_value < reflected_value {
                (expanded, expanded_value)
            } else {
                (reflected, reflected_value)
            };
            continue;
        }
        if reflected_value < simplex[n - 1].1 {
            simplex[n] = (reflected, reflected_value);
            continue;
        }
        let (contracted, contracted_value) = if reflected_value < simplex[n].1 {
            let c = toward(-0.5, &simplex[n].0);
            let v = eval(&c, &mut evaluations);
            (c, v)
        } else {
            let c = toward(0.5, &simplex[n].0);
            let v = eval(&c, &mut evaluations);
            (c, v)
        };
        if contracted_value < simplex[n].1.min(reflected_value) {
            simplex[n] = (contracted, contracted_value);
            continue;
        }
        let best_x = simplex[0].0.clone();
        for corner in simplex.iter_mut().skip(1) {
            let x: Vec<f64> = (0..n)
                .map(|j| best_x[j] + 0.5 * (corner.0[j] - best_x[j]))
                .collect();
            let v = eval(&x, &mut evaluations);
            *corner = (x, v);
        }
    }
    simplex.sort_by(|a, b| a.1.total_cmp(&b.1));
    let (x, value) = simplex.swap_remove(0);
    Minimum {
        x,
        value,
        iterations: iterations_max,
        evaluations,
        converged: false,
    }
}

/// The Hessian at `x` by central differences of an exact gradient: column j is
/// (∇f(x + hⱼeⱼ) − ∇f(x − hⱼeⱼ)) / 2hⱼ with hⱼ = 1e-5·max(|xⱼ|, 1e-3), symmetrised.
/// `None` when a gradient is not finite.
pub fn hessian_from_gradient<G>(mut gradient: G, x: &[f64]) -> Option<Vec<Vec<f64>>>
where
    G: FnMut(&[f64], &mut [f64]),
{
    let n = x.len();
    let mut h = vec![vec![0.0; n]; n];
    let mut plus = vec![0.0; n];
    let mut minus = vec![0.0; n];
    let mut point = x.to_vec();
    for j in 0..n {
        let step = 1e-5 * x[j].abs().max(1e-3);
        point[j] = x[j] + step;
        gradient(&point, &mut plus);
        point[j] = x[j] - step;
        gradient(&point, &mut minus);
        point[j] = x[j];
        for i in 0..n {
            h[i][j] = (plus[i] - minus[i]) / (2.0 * step);
        }
    }
    for i in 0..n {
        for j in 0..i {
            let mean = 0.5 * (h[i][j] + h[j][i]);
            h[i][j] = mean;
            h[j][i] = mean;
        }
    }
    h.iter().flatten().all(|v| v.is_finite()).then_some(h)
}

/// The inverse of a square matrix by Gauss–Jordan elimination with partial pivoting;
/// `None` when it is singular (a pivot below 1e-300) or not square.
pub fn invert(matrix: &[Vec<f64>]) -> Option<Vec<Vec<f64>>> {
    let n = matrix.len();
    if matrix.iter().any(|row| row.len() != n) {
        return None;
    }
    let mut a: Vec<Vec<f64>> = matrix.to_vec();
    let mut inverse = identity(n);
    for column in 0..n {
        let pivot =
            (column..n).max_by(|&i, &j| a[i][column].abs().total_cmp(&a[j][column].abs()))?;
        if a[pivot][column].is_nan() || a[pivot][column].abs() <= 1e-300 {
            return None;
        }
        a.swap(column, pivot);
        inverse.swap(column, pivot);
        let p = a[column][column];
        for j in 0..n {
            a[column][j] /= p;
            inverse[column][j] /= p;
        }
        for i in 0..n {
            if i != column {
                let factor = a[i][column];
                if factor != 0.0 {
                    for j in 0..n {
                        a[i][j] -= factor * a[column][j];
                        inverse[i][j] -= factor * inverse[column][j];
                    }
                }
            }
        }
    }
    Some(inverse)
}

/// Standard errors from the Hessian of a negative log-likelihood: √diag(H⁻¹). `None` when
/// H is singular or a variance is not positive (the fit is not at a proper maximum).
pub fn standard_errors(hessian: &[Vec<f64>]) -> Option<Vec<f64>> {
    let inverse = invert(hessian)?;
    (0..inverse.len())
        .map(|i| {
            let variance = inverse[i][i];
            (variance > 0.0 && variance.is_finite()).then(|| variance.sqrt())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rosenbrock(x: &[f64], g: &mut [f64]) -> f64 {
        let (a, b) = (x[0], x[1]);
        g[0] = -2.0 * (1.0 - a) - 400.0 * a * (b - a * a);
        g[1] = 200.0 * (b - a * a);
        (1.0 - a).powi(2) + 100.0 * (b - a * a).powi(2)
    }

    #[test]
    fn bfgs_finds_the_rosenbrock_valley_floor() {
        let m = bfgs(rosenbrock, &[-1.2, 1.0], BfgsSettings::default());
        assert!(m.converged, "{m:?}");
        assert!(
            (m.x[0] - 1.0).abs() < 1e-6 && (m.x[1] - 1.0).abs() < 1e-6,
            "{m:?}"
        );
    }

    #[test]
    fn nelder_mead_finds_it_too() {
        let mut g = [0.0; 2];
        let m = nelder_mead(|x| rosenbrock(x, &mut g), &[-1.2, 1.0], 0.5, 1e-14, 5000);
        assert!(m.converged, "{m:?}");
        assert!(
            (m.x[0] - 1.0).abs() < 1e-4 && (m.x[1] - 1.0).abs() < 1e-4,
            "{m:?}"
        );
    }

    #[test]
    fn hessian_and_inverse_of_a_quadratic() {
        // f = x² + 3xy + 5y² → H = [[2, 3], [3, 10]], H⁻¹ = [[10, −3], [−3, 2]] / 11.
        let h = hessian_from_gradient(
            |x, g| {
                g[0] = 2.0 * x[0] + 3.0 * x[1];
                g[1] = 3.0 * x[0] + 10.0 * x[1];
            },
            &[0.3, -0.2],
        )
        .unwrap();
        assert!((h[0][1] - 3.0).abs() < 1e-8 && (h[1][1] - 10.0).abs() < 1e-8);
        let inverse = invert(&h).unwrap();
        assert!((inverse[0][0] - 10.0 / 11.0).abs() < 1e-8);
        assert!((inverse[0][1] + 3.0 / 11.0).abs() < 1e-8);
        let se = standard_errors(&h).unwrap();
        assert!((se[1] - (2.0f64 / 11.0).sqrt()).abs() < 1e-8);
        assert_eq!(invert(&[vec![1.0, 2.0], vec![2.0, 4.0]]), None);
    }
}
