//! Exact tail probabilities for the detectors' null distributions, computed in log space so
//! tiny p-values (1e-30) are not rounded to zero or approximated by a normal tail.

/// `ln(n!)` via a Stirling series for large `n` and a table-free product for small `n`.
pub fn ln_factorial(n: u64) -> f64 {
    if n < 20 {
        (2..=n).map(|k| (k as f64).ln()).sum()
    } else {
        let x = n as f64 + 1.0;
        // ln Gamma(x), Stirling with three correction terms (error < 1e-12 for x >= 20).
        (x - 0.5) * x.ln() - x + 0.5 * (2.0 * std::f64::consts::PI).ln() + 1.0 / (12.0 * x)
            - 1.0 / (360.0 * x.powi(3))
            + 1.0 / (1260.0 * x.powi(5))
    }
}

/// `ln C(n, k)`.
pub fn ln_choose(n: u64, k: u64) -> f64 {
    ln_factorial(n) - ln_factorial(k) - ln_factorial(n - k)
}

/// `P(X >= k)` for `X ~ Binomial(n, p)`, exact.
pub fn binomial_sf(k: u64, n: u64, p: f64) -> f64 {
    if k == 0 {
        return 1.0;
    }
    if k > n {
        return 0.0;
    }
    if p <= 0.0 {
        return 0.0;
    }
    if p >= 1.0 {
        return 1.0;
    }
    let (lp, lq) = (p.ln(), (1.0 - p).ln());
    let ln_pmf = |i: u64| ln_choose(n, i) + i as f64 * lp + (n - i) as f64 * lq;
    let ratio = p / (1.0 - p);
    if (k as f64) <= n as f64 * p {
        // The upper tail is large: one minus the lower tail, summed downwards from k - 1
        // (terms shrink away from the mean).
        let (mut t, mut rel) = (1.0f64, 1.0f64);
        let mut i = k - 1;
        while i > 0 {
            t *= i as f64 / (n - i + 1) as f64 / ratio;
            rel += t;
            if t < rel * 1e-17 {
                break;
            }
            i -= 1;
        }
        return (1.0 - (ln_pmf(k - 1) + rel.ln()).exp()).clamp(0.0, 1.0);
    }
    // Upper tail summed upwards from k, relative to its first term (no underflow).
    let (mut t, mut rel) = (1.0f64, 1.0f64);
    let mut i = k;
    while i < n {
        t *= (n - i) as f64 / (i + 1) as f64 * ratio;
        rel += t;
        if t < rel * 1e-17 {
            break;
        }
        i += 1;
    }
    (ln_pmf(k) + rel.ln()).exp().min(1.0)
}

/// Upper tail of the standard normal distribution, `P(Z >= z)`, accurate in the far tail.
pub fn normal_sf(z: f64) -> f64 {
    0.5 * erfc(z / std::f64::consts::SQRT_2)
}

/// Complementary error function: `1 - erf` by its Taylor series below 0.5, above it the
/// Laplace continued fraction evaluated by the modified Lentz method (checked against
/// reference values of the normal tail down to 1e-23 in the tests below).
pub fn erfc(x: f64) -> f64 {
    if x < 0.0 {
        return 2.0 - erfc(-x);
    }
    if x < 0.5 {
        return 1.0 - erf_series(x);
    }
    // Lentz continued fraction for erfc.
    let mut f;
    let tiny = 1e-300;
    let (mut c, mut d);
    // erfc(x) = exp(-x^2)/sqrt(pi) * 1/(x + 1/2/(x + 1/(x + 3/2/(x + ...))))
    let b0 = x;
    f = if b0 == 0.0 { tiny } else { b0 };
    c = f;
    d = 0.0;
    for i in 1..300 {
        let a = i as f64 / 2.0;
        let b = x;
        d = b + a * d;
        if d.abs() < tiny {
            d = tiny;
        }
        c = b + a / c;
        if c.abs() < tiny {
            c = tiny;
        }
        d = 1.0 / d;
        let delta = c * d;
        f *= delta;
        if (delta - 1.0).abs() < 1e-15 {
            break;
        }
    }
    (-x * x).exp() / std::f64::consts::PI.sqrt() / f
}

fn erf_series(x: f64) -> f64 {
    let mut sum = x;
    let mut term = x;
    let x2 = x * x;
    for n in 1..60 {
        term *= -x2 / n as f64;
        let add = term / (2 * n + 1) as f64;
        sum += add;
        if add.abs() < 1e-17 {
            break;
        }
    }
    sum * 2.0 / std::f64::consts::PI.sqrt()
}

/// Upper tail of a Gamma(shape, 1) variable, `P(X >= x)` (regularised upper incomplete gamma),
/// exact up to floating point. The null distribution of a sum of `shape` unit exponentials.
pub fn gamma_sf(shape: f64, x: f64) -> f64 {
    gamma_sf_lg(shape, ln_gamma(shape), x)
}

/// [`gamma_sf`] with `lg = ln_gamma(shape)` precomputed (many tails of one shape).
fn gamma_sf_lg(shape: f64, lg: f64, x: f64) -> f64 {
    ln_gamma_sf_lg(shape, lg, x).exp().clamp(0.0, 1.0)
}

/// The natural log of [`gamma_sf_lg`], finite far beyond where the tail underflows.
fn ln_gamma_sf_lg(shape: f64, lg: f64, x: f64) -> f64 {
    if x <= 0.0 {
        return 0.0;
    }
    if x < shape + 1.0 {
        // Series for the lower incomplete gamma.
        let mut sum = 1.0 / shape;
        let mut term = sum;
        let mut a = shape;
        for _ in 0..10_000 {
            a += 1.0;
            term *= x / a;
            sum += term;
            if term < sum * 1e-16 {
                break;
            }
        }
        (-(sum.ln() - x + shape * x.ln() - lg).exp().min(1.0)).ln_1p()
    } else {
        // Continued fraction for the upper incomplete gamma (Lentz).
        let tiny = 1e-300;
        let mut b = x + 1.0 - shape;
        let mut c = 1.0 / tiny;
        let mut d = 1.0 / b;
        let mut h = d;
        for i in 1..10_000 {
            let an = -(i as f64) * (i as f64 - shape);
            b += 2.0;
            d = an * d + b;
            if d.abs() < tiny {
                d = tiny;
            }
            c = b + an / c;
            if c.abs() < tiny {
                c = tiny;
            }
            d = 1.0 / d;
            let delta = d * c;
            h *= delta;
            if (delta - 1.0).abs() < 1e-16 {
                break;
            }
        }
        (-x + shape * x.ln() - lg + h.ln()).min(0.0)
    }
}

/// Upper tail `P(G + c B >= x)` of a Gamma(shape, 1) variable plus `c` times an independent
/// Binomial(n, p) one: the null distribution of the hybrid text score (`shape` unit
/// exponentials plus `c` per green token among `n`), exact up to floating point and a
/// truncation below 1e-13 of the sum.
///
/// Summed over the binomial count `k`: `sum_k P(B = k) * gamma_sf(n, x - c k)`. The terms are
/// log-concave in `k` (a log-concave pmf times a log-concave survival function of an affine
/// argument), so the sum starts at the largest term and walks outwards until the remaining
/// terms are negligible.
pub fn gamma_binomial_sf(shape: f64, n: u64, p: f64, c: f64, x: f64) -> f64 {
    if shape <= 0.0 {
        // The scaled binomial alone: P(B >= ceil(x / c)).
        if x <= 0.0 {
            return 1.0;
        }
        if c <= 0.0 {
            return 0.0;
        }
        let k = (x / c - 1e-9).ceil().max(0.0);
        return if k > n as f64 {
            0.0
        } else {
            binomial_sf(k as u64, n, p)
        };
    }
    if n == 0 || p <= 0.0 || p >= 1.0 || c <= 0.0 {
        let shift = if p >= 1.0 { c.max(0.0) * n as f64 } else { 0.0 };
        return gamma_sf(shape, x - shift);
    }
    let lg = ln_gamma(shape);
    if shape >= STEP_SHAPE {
        gamma_binomial_sweep(shape, lg, n, p, c, x)
    } else {
        gamma_binomial_direct(shape, lg, n, p, c, x)
    }
}

/// From this shape on, [`gamma_binomial_sf`] steps the Gamma tail from one count to the next
/// (a quadrature of the density over a step of `c`) instead of evaluating it afresh: about
/// fifteen times faster. Below it, the density is too peaked near 0 for a fixed rule and the
/// sums are short anyway.
const STEP_SHAPE: f64 = 64.0;

/// Eight-point Gauss-Legendre rule on [-1, 1]: (node, weight), nodes symmetric about 0.
const GAUSS8: [(f64, f64); 4] = [
    (0.183_434_642_495_649_8, 0.362_683_783_378_362),
    (0.525_532_409_916_329, 0.313_706_645_877_887_3),
    (0.796_666_477_413_626_7, 0.222_381_034_453_374_5),
    (0.960_289_856_497_536_3, 0.101_228_536_290_376_3),
];

/// `ln(e^a + e^b)`.
fn ln_add(a: f64, b: f64) -> f64 {
    let (hi, lo) = if a >= b { (a, b) } else { (b, a) };
    if lo == f64::NEG_INFINITY {
        hi
    } else {
        hi + (lo - hi).exp().ln_1p()
    }
}

/// [`gamma_binomial_sf`] for large shapes, in one sweep over the counts that matter.
///
/// The range comes first, from an upper bound on every term (the binomial pmf times the
/// Chernoff bound `(y/a)^a e^(a-y)` on the Gamma tail at `y = x - c k`): log-concave in `k`,
/// so its maximum is found by climbing and the range ends where it is 60 nats below that
/// maximum (the bound exceeds the true term by less than `sqrt(2 pi a)`, so the terms left out
/// are below 1e-15 of the sum). Then one exact tail at the range's lowest count (the largest
/// `y`), and each next count's tail is the previous one plus the Gamma density integrated over
/// the step: only additions of positive terms, so rounding does not grow.
fn gamma_binomial_sweep(shape: f64, lg: f64, n: u64, p: f64, c: f64, x: f64) -> f64 {
    let (lp, lq) = (p.ln(), (1.0 - p).ln());
    let ln_odds = lp - lq;
    let ln_pmf = |k: u64| ln_choose(n, k) + k as f64 * lp + (n - k) as f64 * lq;
    let up = |k: u64| (((n - k) as f64) / ((k + 1) as f64)).ln() + ln_odds;
    let down = |k: u64| ((k as f64) / ((n - k + 1) as f64)).ln() - ln_odds;
    let ln_tail_bound = |k: u64| {
        let y = x - c * k as f64;
        if y <= shape {
            0.0
        } else {
            shape - y + shape * (y / shape).ln()
        }
    };
    // Climb from the tilted count to the bound's maximum.
    let theta = chernoff_theta(shape, n, p, c, x);
    let tilt = p * (c * theta).exp();
    let mut k = ((n as f64 * tilt / (1.0 - p + tilt)).round() as u64).min(n);
    let mut lpmf = ln_pmf(k);
    let mut top = lpmf + ln_tail_bound(k);
    while k < n {
        let l = lpmf + up(k);
        let b = l + ln_tail_bound(k + 1);
        if b <= top {
            break;
        }
        (k, lpmf, top) = (k + 1, l, b);
    }
    while k > 0 {
        let l = lpmf + down(k);
        let b = l + ln_tail_bound(k - 1);
        if b <= top {
            break;
        }
        (k, lpmf, top) = (k - 1, l, b);
    }
    let floor = top - 60.0;
    let (mut lo, mut l) = (k, lpmf);
    while lo > 0 {
        l += down(lo);
        if l + ln_tail_bound(lo - 1) < floor {
            break;
        }
        lo -= 1;
    }
    let (mut hi, mut l) = (k, lpmf);
    while hi < n {
        l += up(hi);
        if l + ln_tail_bound(hi + 1) < floor {
            break;
        }
        hi += 1;
    }
    // ln of the Gamma density integrated over [a, b] (0 < a < b).
    let ln_mass = |a: f64, b: f64| {
        let (mid, half) = (0.5 * (a + b), 0.5 * (b - a));
        let mut v = [0.0f64; 8];
        for (i, &(node, _)) in GAUSS8.iter().enumerate() {
            for (j, t) in [mid - half * node, mid + half * node]
                .into_iter()
                .enumerate()
            {
                v[2 * i + j] = (shape - 1.0) * t.ln() - t - lg;
            }
        }
        let m = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let s: f64 = GAUSS8
            .iter()
            .enumerate()
            .map(|(i, &(_, w))| w * ((v[2 * i] - m).exp() + (v[2 * i + 1] - m).exp()))
            .sum();
        m + (half * s).ln()
    };
    let mut y = x - c * lo as f64;
    let mut ln_q = ln_gamma_sf_lg(shape, lg, y);
    let mut lpmf = ln_pmf(lo);
    let mut total = f64::NEG_INFINITY;
    for j in lo..=hi {
        total = ln_add(total, lpmf + ln_q);
        if j == hi {
            break;
        }
        let next = y - c;
        ln_q = if next <= 0.0 {
            0.0
        } else if ln_q < 0.0 {
            ln_add(ln_q, ln_mass(next, y)).min(0.0)
        } else {
            0.0
        };
        y = next;
        lpmf += up(j);
    }
    total.exp().clamp(0.0, 1.0)
}

/// [`gamma_binomial_sf`] term by term, each Gamma tail evaluated afresh.
fn gamma_binomial_direct(shape: f64, lg: f64, n: u64, p: f64, c: f64, x: f64) -> f64 {
    let (lp, lq) = (p.ln(), (1.0 - p).ln());
    let ln_odds = lp - lq;
    let ln_term = |k: u64, ln_pmf: f64| {
        let g = gamma_sf_lg(shape, lg, x - c * k as f64);
        if g > 0.0 {
            ln_pmf + g.ln()
        } else {
            f64::NEG_INFINITY
        }
    };
    // Start at the binomial count the sum is tilted towards (the exponential tilt that puts
    // the mean at x), then climb to the largest term: the terms are log-concave in k.
    let theta = chernoff_theta(shape, n, p, c, x);
    let tilt = p * (c * theta).exp();
    let mut k = ((n as f64 * tilt / (1.0 - p + tilt)).round() as u64).min(n);
    let mut lpmf = ln_choose(n, k) + k as f64 * lp + (n - k) as f64 * lq;
    // ln pmf(k + 1) - ln pmf(k) and ln pmf(k - 1) - ln pmf(k).
    let up = |k: u64| (((n - k) as f64) / ((k + 1) as f64)).ln() + ln_odds;
    let down = |k: u64| ((k as f64) / ((n - k + 1) as f64)).ln() - ln_odds;
    let mut top = ln_term(k, lpmf);
    // Climb up, or else down (each step one new term).
    let mut dir_up = true;
    loop {
        let next = if dir_up {
            (k < n).then(|| (k + 1, lpmf + up(k)))
        } else {
            (k > 0).then(|| (k - 1, lpmf + down(k)))
        };
        match next.map(|(j, l)| (j, l, ln_term(j, l))) {
            Some((j, l, t)) if t > top => {
                (k, lpmf, top) = (j, l, t);
            }
            _ if dir_up => dir_up = false,
            _ => break,
        }
    }
    if top == f64::NEG_INFINITY {
        return 0.0;
    }
    // Sum relative to the largest term, outwards until the rest is below 1e-17 of the sum.
    let mut rel = 1.0f64;
    let (mut j, mut lj) = (k, lpmf);
    while j > 0 {
        lj += down(j);
        j -= 1;
        let t = (ln_term(j, lj) - top).exp();
        rel += t;
        // Terms keep shrinking below the maximum (concavity).
        if t < rel * 1e-13 {
            break;
        }
    }
    let (mut j, mut lj) = (k, lpmf);
    while j < n {
        lj += up(j);
        j += 1;
        // The Gamma factor is at most 1, so once the pmf is negligible so is every later term.
        if lj - top < (rel * 1e-13).ln() {
            break;
        }
        rel += (ln_term(j, lj) - top).exp();
    }
    (top + rel.ln()).exp().clamp(0.0, 1.0)
}

/// The exponential tilt `theta` in [0, 1) minimising the Chernoff bound of
/// [`gamma_binomial_chernoff`]: the cumulant generating function's slope equals `x`.
fn chernoff_theta(shape: f64, n: u64, p: f64, c: f64, x: f64) -> f64 {
    let nf = n as f64;
    // K'(theta) = shape / (1 - theta) + n c q(theta), q = p e^{c theta} / (1 - p + p e^{c theta}).
    let slope = |t: f64| {
        let e = p * (c * t).exp();
        shape / (1.0 - t) + nf * c * e / (1.0 - p + e)
    };
    if slope(0.0) >= x {
        return 0.0;
    }
    // K' increases (K is convex) from the mean at 0 to infinity at 1: Newton steps kept
    // inside a shrinking bracket, bisection when a step leaves it.
    let curve = |t: f64| {
        let e = p * (c * t).exp();
        let q = e / (1.0 - p + e);
        shape / ((1.0 - t) * (1.0 - t)) + nf * c * c * q * (1.0 - q)
    };
    let (mut lo, mut hi) = (0.0f64, 1.0f64);
    let mut t = 0.0;
    for _ in 0..100 {
        let f = slope(t) - x;
        if f < 0.0 {
            lo = t;
        } else {
            hi = t;
        }
        if hi - lo < 1e-12 || f.abs() < 1e-10 * x.abs().max(1.0) {
            break;
        }
        let step = t - f / curve(t);
        t = if step > lo && step < hi {
            step
        } else {
            0.5 * (lo + hi)
        };
    }
    lo.max(t.min(hi)).min(1.0 - 1e-15)
}

/// A Chernoff upper bound on [`gamma_binomial_sf`]: `min_theta E[e^{theta (S - x)}]`. Cheap
/// (no special functions beyond `exp` and `ln`), so a detector can skip the exact tail of a
/// window whose bound already makes it irrelevant. Never below the exact tail.
pub fn gamma_binomial_chernoff(shape: f64, n: u64, p: f64, c: f64, x: f64) -> f64 {
    let t = chernoff_theta(shape.max(0.0), n, p, c, x);
    if t <= 0.0 {
        return 1.0;
    }
    let ln_mgf = -shape.max(0.0) * (1.0 - t).ln() + n as f64 * (1.0 - p + p * (c * t).exp()).ln();
    (ln_mgf - t * x).exp().min(1.0)
}

/// `ln Gamma(x)` for `x > 0` (Lanczos, g = 7).
pub fn ln_gamma(x: f64) -> f64 {
    const G: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if x < 0.5 {
        let pi = std::f64::consts::PI;
        return (pi / (pi * x).sin()).ln() - ln_gamma(1.0 - x);
    }
    let x = x - 1.0;
    let mut a = G[0];
    let t = x + 7.5;
    for (i, &g) in G.iter().enumerate().skip(1) {
        a += g / (x + i as f64);
    }
    0.5 * (2.0 * std::f64::consts::PI).ln() + (x + 0.5) * t.ln() - t + a.ln()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Null mean and standard deviation of Gamma(shape) + c Binomial(n, p).
    fn null_mean_sd(shape: f64, n: u64, p: f64, c: f64) -> (f64, f64) {
        let nf = n as f64;
        (
            shape + nf * c * p,
            (shape + nf * c * c * p * (1.0 - p)).sqrt(),
        )
    }

    fn close(a: f64, b: f64, rel: f64) -> bool {
        ((a - b) / b).abs() < rel
    }

    fn log_sum_exp(it: impl Iterator<Item = f64> + Clone) -> f64 {
        let m = it.clone().fold(f64::NEG_INFINITY, f64::max);
        if m == f64::NEG_INFINITY {
            return m;
        }
        m + it.map(|x| (x - m).exp()).sum::<f64>().ln()
    }

    #[test]
    fn binomial_matches_log_sum_of_all_terms() {
        for &(n, p) in &[
            (1u64, 0.25),
            (7, 0.5),
            (50, 0.25),
            (200, 0.25),
            (1000, 0.1),
            (3000, 0.5),
        ] {
            for k in 0..=n {
                let (lp, lq) = (f64::ln(p), f64::ln(1.0 - p));
                let terms = (k..=n).map(|i| ln_choose(n, i) + i as f64 * lp + (n - i) as f64 * lq);
                let direct = log_sum_exp(terms).exp().min(1.0);
                let got = binomial_sf(k, n, p);
                let ok = if direct > 1e-300 {
                    (got - direct).abs() <= if direct < 0.3 { 1e-9 * direct } else { 1e-10 }
                } else {
                    got < 1e-290
                };
                assert!(ok, "n={n} p={p} k={k}: {got} vs {direct}");
            }
        }
    }

    #[test]
    fn binomial_matches_direct_sum() {
        // P(X >= 3), X ~ Bin(5, 0.5) = 16/32.
        assert!(close(binomial_sf(3, 5, 0.5), 0.5, 1e-12));
        // P(X >= 60), X ~ Bin(100, 0.25): reference value from exact rational arithmetic.
        assert!(close(
            binomial_sf(60, 100, 0.25),
            1.326_834_674_358_738_3e-13,
            1e-9
        ));
        assert_eq!(binomial_sf(0, 10, 0.3), 1.0);
        assert_eq!(binomial_sf(11, 10, 0.3), 0.0);
    }

    #[test]
    fn normal_tail_far_out() {
        assert!(close(normal_sf(0.0), 0.5, 1e-12));
        assert!(close(normal_sf(1.959_963_984_540_054), 0.025, 1e-9));
        assert!(close(normal_sf(5.0), 2.866_515_718_791_939e-7, 1e-9));
        assert!(close(normal_sf(10.0), 7.619_853_024_160_527e-24, 1e-8));
    }

    #[test]
    fn gamma_tail() {
        // Gamma(1) is the exponential: P(X >= x) = e^-x.
        assert!(close(gamma_sf(1.0, 3.0), (-3.0f64).exp(), 1e-10));
        // Gamma(2): (1 + x) e^-x.
        assert!(close(gamma_sf(2.0, 0.7), 1.7 * (-0.7f64).exp(), 1e-10));
        assert!(close(
            gamma_sf(200.0, 300.0),
            3.371_103_255_525_884e-10,
            1e-8
        ));
    }

    #[test]
    fn gamma_binomial_matches_the_sum_over_every_count() {
        // Against the plain sum over all k (log-sum-exp), tails from ~0.5 down to 1e-40.
        for &(n, p, c) in &[
            (1u64, 0.25, 2.3),
            (7, 0.25, 2.309),
            (60, 0.5, 1.0),
            (400, 0.1, 3.0),
        ] {
            let shape = (n as f64 * 0.7).ceil();
            let (mean, sd) = null_mean_sd(shape, n, p, c);
            for z in [-2.0, 0.0, 1.0, 3.0, 6.0, 12.0] {
                let x = mean + z * sd;
                let want = log_sum_exp(
                    (0..=n)
                        .map(|k| {
                            ln_choose(n, k)
                                + k as f64 * p.ln()
                                + (n - k) as f64 * (1.0 - p).ln()
                                + gamma_sf(shape, x - c * k as f64).ln()
                        })
                        .collect::<Vec<_>>()
                        .into_iter(),
                )
                .exp();
                let got = gamma_binomial_sf(shape, n, p, c, x);
                assert!(close(got, want, 1e-9), "n={n} z={z}: {got} vs {want}");
            }
        }
    }

    #[test]
    fn gamma_binomial_sweep_matches_fresh_tails() {
        // The stepped tails of large shapes against a fresh tail per count (itself checked
        // against the full sum above), from the bulk to beyond 1e-200.
        for &(shape, n, p, c) in &[
            (64.0, 70u64, 0.25, 2.309),
            (90.0, 100, 0.25, 2.309),
            (1800.0, 2000, 0.25, 2.309),
            (900.0, 1000, 0.1, 3.0),
            (20_000.0, 20_000, 0.5, 1.0),
            (150.0, 900, 0.25, 2.309),
            (5000.0, 40, 0.3, 2.0),
        ] {
            let lg = ln_gamma(shape);
            let (mean, sd) = null_mean_sd(shape, n, p, c);
            for z in [-3.0, 0.0, 1.0, 1.7, 3.0, 6.0, 12.0, 25.0, 40.0] {
                let x = mean + z * sd;
                let swept = gamma_binomial_sweep(shape, lg, n, p, c, x);
                let fresh = gamma_binomial_direct(shape, lg, n, p, c, x);
                assert!(
                    close(swept, fresh, 1e-9),
                    "shape={shape} n={n} z={z}: {swept} vs {fresh}"
                );
                assert!(swept > 0.0 || fresh == 0.0);
            }
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(300))]
        #[test]
        fn gamma_binomial_tail_is_a_tail(
            shape in 64.0f64..50_000.0,
            n in 1u64..60_000,
            p in 0.01f64..0.99,
            c in 0.1f64..5.0,
            z in -5.0f64..30.0,
        ) {
            // Any parameters: a probability, never increasing in x, equal to the fresh sum.
            let lg = ln_gamma(shape);
            let (mean, sd) = null_mean_sd(shape, n, p, c);
            let x = mean + z * sd;
            let a = gamma_binomial_sf(shape, n, p, c, x);
            let b = gamma_binomial_sf(shape, n, p, c, x + 0.5 * sd);
            proptest::prop_assert!((0.0..=1.0).contains(&a) && b <= a * (1.0 + 1e-12), "{a} {b}");
            let fresh = gamma_binomial_direct(shape, lg, n, p, c, x);
            proptest::prop_assert!(
                (a - fresh).abs() <= 1e-9 * fresh.max(1e-300),
                "{a} vs {fresh}"
            );
        }
    }

    #[test]
    fn gamma_binomial_matches_simulation() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(5);
        let (n, p, c) = (30u64, 0.25, 1.0 / (0.25f64 * 0.75).sqrt());
        let x = n as f64 * (1.0 + c * p) + 2.0 * (2.0 * n as f64).sqrt();
        let trials = 200_000;
        let hits = (0..trials)
            .filter(|_| {
                let s: f64 = (0..n)
                    .map(|_| {
                        let u: f64 = rng.r#gen();
                        -(1.0 - u).ln() + if rng.gen_bool(p) { c } else { 0.0 }
                    })
                    .sum();
                s >= x
            })
            .count();
        let want = gamma_binomial_sf(n as f64, n, p, c, x);
        let sd = (want * (1.0 - want) / trials as f64).sqrt();
        assert!(
            (hits as f64 / trials as f64 - want).abs() < 4.0 * sd,
            "{hits}/{trials} vs {want}"
        );
    }

    #[test]
    fn chernoff_bounds_the_exact_tail() {
        for &(shape, n, p, c) in &[
            (5.0, 7u64, 0.25, 2.3),
            (140.0, 200, 0.25, 2.31),
            (0.5, 3, 0.5, 1.0),
        ] {
            let mean = shape + n as f64 * c * p;
            for dx in [-1.0, 0.0, 0.5, 2.0, 10.0, 40.0, 120.0] {
                let x = mean + dx;
                let exact = gamma_binomial_sf(shape, n, p, c, x);
                let bound = gamma_binomial_chernoff(shape, n, p, c, x);
                assert!(bound >= exact * (1.0 - 1e-9), "x={x}: {bound} < {exact}");
                if dx >= 10.0 {
                    assert!(bound < 1.0);
                }
            }
        }
    }
}
