use super::*;
use crate::special::hyp2f1;

const PUBLISHED: BgNbdParams = BgNbdParams {
    r: 0.243,
    alpha: 4.414,
    a: 0.793,
    b: 2.426,
};

/// The likelihood of one customer, term by term, straight from eq. 6 with Γ and B.
fn direct_likelihood(p: BgNbdParams, x: u32, t_x: f64, t_cal: f64) -> f64 {
    let xf = f64::from(x);
    let beta = |u: f64, v: f64| (ln_gamma(u) + ln_gamma(v) - ln_gamma(u + v)).exp();
    let big_a = (ln_gamma(p.r + xf) - ln_gamma(p.r)).exp() * p.alpha.powf(p.r);
    let first = beta(p.a, p.b + xf) / beta(p.a, p.b) * big_a / (p.alpha + t_cal).powf(p.r + xf);
    let second = if x > 0 {
        beta(p.a + 1.0, p.b + xf - 1.0) / beta(p.a, p.b) * big_a / (p.alpha + t_x).powf(p.r + xf)
    } else {
        0.0
    };
    first + second
}

#[test]
fn the_log_likelihood_is_the_log_of_equation_6() {
    for &(x, t_x, t_cal) in &[
        (0, 0.0, 38.86),
        (2, 30.43, 38.86),
        (1, 1.71, 38.86),
        (7, 29.43, 35.0),
    ] {
        let data = BgNbdData::new([(x, t_x, t_cal, 1.0)]).unwrap();
        let ln = data.log_likelihood(PUBLISHED, None, 1);
        let direct = direct_likelihood(PUBLISHED, x, t_x, t_cal).ln();
        assert!((ln - direct).abs() < 1e-12, "{x}: {ln} vs {direct}");
    }
}

#[test]
fn the_gradient_matches_finite_differences() {
    let data = BgNbdData::new([
        (0, 0.0, 30.0, 3.0),
        (2, 30.43, 38.86, 1.0),
        (1, 1.71, 38.86, 2.0),
        (12, 20.0, 38.0, 1.0),
    ])
    .unwrap();
    let mut g = [0.0; 4];
    data.log_likelihood(PUBLISHED, Some(&mut g), 1);
    let p = PUBLISHED.to_array();
    for k in 0..4 {
        let h = 1e-6 * p[k];
        let (mut up, mut down) = (p, p);
        up[k] += h;
        down[k] -= h;
        let numeric = (data.log_likelihood(BgNbdParams::from_array(up), None, 1)
            - data.log_likelihood(BgNbdParams::from_array(down), None, 1))
            / (2.0 * h);
        assert!(
            (g[k] - numeric).abs() < 1e-5 * numeric.abs().max(1.0),
            "{k}: {} vs {numeric}",
            g[k]
        );
    }
}

#[test]
fn large_purchase_counts_do_not_overflow() {
    let data = BgNbdData::new([(5000, 300.0, 310.0, 1.0), (0, 0.0, 310.0, 1.0)]).unwrap();
    let mut g = [0.0; 4];
    let ln = data.log_likelihood(PUBLISHED, Some(&mut g), 1);
    assert!(
        ln.is_finite() && g.iter().all(|v| v.is_finite()),
        "{ln} {g:?}"
    );
    let e = PUBLISHED
        .expected_purchases(52.0, 5000, 300.0, 310.0)
        .unwrap();
    assert!(e.is_finite() && e > 0.0, "{e}");
}

#[test]
fn equal_tuples_are_merged_into_weights() {
    let data = BgNbdData::new([
        (1, 2.0, 5.0, 1.0),
        (0, 3.0, 5.0, 1.0),
        (1, 2.0, 5.0, 1.0),
        (0, 0.0, 5.0, 1.0),
    ])
    .unwrap();
    assert_eq!(data.distinct(), 2);
    assert_eq!(data.customers(), 4.0);
    let single = BgNbdData::new([(1, 2.0, 5.0, 2.0), (0, 0.0, 5.0, 2.0)]).unwrap();
    assert_eq!(
        data.log_likelihood(PUBLISHED, None, 1),
        single.log_likelihood(PUBLISHED, None, 1)
    );
    assert!(BgNbdData::new([(1, 6.0, 5.0, 1.0)]).is_err());
}

#[test]
fn the_published_customer_expects_1_226_purchases() {
    let e = PUBLISHED.expected_purchases(39.0, 2, 30.43, 38.86).unwrap();
    assert!((e - 1.226).abs() < 5e-4, "{e}");
}

#[test]
fn the_transformed_expectation_equals_equation_10() {
    for &(x, t_x, t_cal, t) in &[
        (2, 30.43, 38.86, 39.0),
        (0, 0.0, 20.0, 10.0),
        (6, 12.0, 30.0, 52.0),
    ] {
        let p = PUBLISHED;
        let xf = f64::from(x);
        let z = t / (p.alpha + t_cal + t);
        let f = hyp2f1(p.r + xf, p.b + xf, p.a + p.b + xf - 1.0, z).unwrap();
        let numerator = (p.a + p.b + xf - 1.0) / (p.a - 1.0)
            * (1.0 - ((p.alpha + t_cal) / (p.alpha + t_cal + t)).powf(p.r + xf) * f);
        let direct = numerator * p.p_alive(x, t_x, t_cal);
        let ours = p.expected_purchases(t, x, t_x, t_cal).unwrap();
        assert!(
            (ours - direct).abs() < 1e-10 * direct.abs(),
            "{x}: {ours} vs {direct}"
        );
    }
    // a = 1 exactly is the limit, not 0/0.
    let one = BgNbdParams {
        a: 1.0,
        ..PUBLISHED
    };
    let near = BgNbdParams {
        a: 1.0 + 1e-9,
        ..PUBLISHED
    };
    let (e1, e2) = (
        one.expected_purchases(39.0, 2, 30.0, 38.0).unwrap(),
        near.expected_purchases(39.0, 2, 30.0, 38.0).unwrap(),
    );
    assert!((e1 - e2).abs() < 1e-6, "{e1} vs {e2}");
}

#[test]
fn both_evaluations_of_the_expectation_agree_and_extremes_stay_finite() {
    for a in [1.5, 1.9, 2.0] {
        let p = BgNbdParams { a, ..PUBLISHED };
        for &(x, t_cal, t) in &[
            (0, 20.0, 10.0),
            (2, 38.86, 39.0),
            (40, 50.0, 52.0),
            (3, 5.0, 300.0),
        ] {
            let one = p.bracket_transformed(t, x, t_cal).unwrap();
            let two = p.bracket_direct(t, x, t_cal).unwrap();
            assert!(
                (one - two).abs() < 1e-9 * one.abs(),
                "a={a} x={x}: {one} vs {two}"
            );
        }
    }
    // A base without dropout heterogeneity fits a, b → ∞; predictions must survive it.
    let flat = BgNbdParams {
        r: 0.82,
        alpha: 4.8,
        a: 8.6e5,
        b: 4.4e6,
    };
    let e = flat.expected_purchases(26.0, 3, 28.0, 29.3).unwrap();
    assert!(e.is_finite() && e > 0.0, "{e}");
    // a + b < 1: the transformed series has c < 0 for x = 0.
    let small = BgNbdParams {
        r: 0.5,
        alpha: 3.0,
        a: 0.3,
        b: 0.4,
    };
    assert!(
        small
            .expected_purchases(10.0, 0, 0.0, 20.0)
            .is_some_and(|e| e.is_finite() && e > 0.0)
    );
    // Large x, long horizon.
    let e = PUBLISHED
        .expected_purchases(520.0, 3000, 300.0, 310.0)
        .unwrap();
    assert!(e.is_finite() && e > 0.0, "{e}");
}

#[test]
fn p_alive_is_one_without_repeats_and_falls_with_silence() {
    assert_eq!(PUBLISHED.p_alive(0, 0.0, 38.0), 1.0);
    let recent = PUBLISHED.p_alive(3, 37.0, 38.0);
    let silent = PUBLISHED.p_alive(3, 5.0, 38.0);
    assert!(recent > silent && silent > 0.0 && recent < 1.0);
}

/// A deterministic random source for simulations (SplitMix64).
struct Random(u64);

impl Random {
    fn uniform(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64 + f64::EPSILON / 2.0
    }
    fn normal(&mut self) -> f64 {
        (-2.0 * self.uniform().ln()).sqrt() * (2.0 * std::f64::consts::PI * self.uniform()).cos()
    }
    /// Gamma(shape, 1) by Marsaglia & Tsang (boosted for shape < 1).
    fn gamma(&mut self, shape: f64) -> f64 {
        if shape < 1.0 {
            return self.gamma(shape + 1.0) * self.uniform().powf(1.0 / shape);
        }
        let d = shape - 1.0 / 3.0;
        let c = 1.0 / (9.0 * d).sqrt();
        loop {
            let z = self.normal();
            let v = (1.0 + c * z).powi(3);
            if v > 0.0 && self.uniform().ln() < 0.5 * z * z + d - d * v + d * v.ln() {
                return d * v;
            }
        }
    }
}

/// One customer from the BG/NBD story: rate λ ~ Gamma(r, α), dropout p ~ Beta(a, b),
/// a purchase at time 0, then exponential gaps, a coin with p after each repeat purchase.
fn simulate(p: BgNbdParams, random: &mut Random, t_cal: f64) -> (u32, f64, f64, f64) {
    let lambda = random.gamma(p.r) / p.alpha;
    let g1 = random.gamma(p.a);
    let dropout = g1 / (g1 + random.gamma(p.b));
    let (mut t, mut x, mut t_x) = (0.0, 0u32, 0.0);
    loop {
        t += -random.uniform().ln() / lambda;
        if t > t_cal {
            break;
        }
        x += 1;
        t_x = t;
        if random.uniform() < dropout {
            break;
        }
    }
    (x, t_x, t_cal, 1.0)
}

#[test]
fn a_fit_recovers_the_parameters_of_a_simulated_base() {
    let truth = BgNbdParams {
        r: 0.5,
        alpha: 6.0,
        a: 0.8,
        b: 2.5,
    };
    let mut random = Random(7);
    let customers: Vec<_> = (0..20_000)
        .map(|i| simulate(truth, &mut random, 20.0 + f64::from(i % 20)))
        .collect();
    let data = BgNbdData::new(customers).unwrap();
    let fit = fit(&data, FitOptions::default()).unwrap();
    let se = fit.standard_errors.unwrap();
    let (got, truth, se) = (
        fit.params.to_array(),
        truth.to_array(),
        BgNbdParams::from_array(se.to_array()).to_array(),
    );
    for k in 0..4 {
        assert!(
            (got[k] - truth[k]).abs() < 4.0 * se[k],
            "{k}: {got:?} vs {truth:?} (se {se:?})"
        );
    }
    let mut g = [0.0; 4];
    data.log_likelihood(fit.params, Some(&mut g), 1);
    assert!(g.iter().all(|v| v.abs() < 1e-4), "{g:?}");
}

#[test]
fn threads_give_the_same_likelihood() {
    let rows = (0..60_000u32).map(|i| {
        let x = i % 17;
        let t_cal = 1.0 + f64::from(i % 997) / 10.0;
        let t_x = if x == 0 {
            0.0
        } else {
            t_cal * f64::from(i % 13) / 13.0
        };
        (x, t_x, t_cal, 1.0)
    });
    let data = BgNbdData::new(rows).unwrap();
    let (mut g1, mut g2) = ([0.0; 4], [0.0; 4]);
    let one = data.log_likelihood(PUBLISHED, Some(&mut g1), 1);
    let two = data.log_likelihood(PUBLISHED, Some(&mut g2), 2);
    assert!((one - two).abs() < 1e-9 * one.abs(), "{one} vs {two}");
    for k in 0..4 {
        assert!((g1[k] - g2[k]).abs() < 1e-9 * g1[k].abs().max(1.0));
    }
}
