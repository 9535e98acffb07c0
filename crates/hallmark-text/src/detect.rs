use hallmark_core::stats;
use rustc_hash::FxHashSet;

use crate::{Error, Scheme, TextMark, prf};

/// A token range found to carry the watermark.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Span {
    /// First token index (inclusive).
    pub start: usize,
    /// Last token index (exclusive).
    pub end: usize,
    /// p-value of the best window in the span, multiplied by the number of windows examined
    /// (Bonferroni).
    pub p_value: f64,
}

/// The outcome of scoring a token sequence. "Not watermarked" is a large p-value.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Detection {
    /// The test's p-value: the smaller of the whole-text p-value and the best corrected window
    /// p-value, times two (Bonferroni over the two tests) when windows were searched.
    pub p_value: f64,
    /// Probability that unwatermarked text scores at least this high over the whole text
    /// (exact tail: binomial for KGW, Gamma for Gumbel).
    pub p_value_whole: f64,
    /// z-score of the whole text (KGW and the hybrid; the Gumbel score has none).
    pub z_score: Option<f64>,
    /// Unique (context, token) pairs scored.
    pub tokens_scored: usize,
    /// Green tokens among them (KGW) or the summed score (Gumbel).
    pub score: f64,
    /// Watermarked spans (corrected p < 0.001), possibly empty.
    pub spans: Vec<Span>,
}

/// Window lengths (tokens) of the span search; the stride is a quarter window.
pub(crate) const WINDOWS: [usize; 4] = [50, 100, 200, 400];

/// Corrected p-value below which a window is reported as a span.
pub(crate) const SPAN_ALPHA: f64 = 1e-3;

fn tail(scheme: Scheme, n: usize, score: f64) -> (f64, Option<f64>) {
    if n == 0 {
        return (1.0, None);
    }
    match scheme {
        Scheme::Kgw { gamma, .. } => {
            let k = score.round() as u64;
            let nf = n as f64;
            let z = (score - gamma * nf) / (nf * gamma * (1.0 - gamma)).sqrt();
            (stats::binomial_sf(k, n as u64, gamma), Some(z))
        }
        Scheme::Gumbel => (stats::gamma_sf(n as f64, score), None),
        Scheme::KgwGumbel { gamma, .. } => {
            let c = green_weight(gamma);
            let nf = n as f64;
            let z = (score - nf * (1.0 + c * gamma)) / (2.0 * nf).sqrt();
            (stats::gamma_binomial_sf(n as u64, gamma, c, score), Some(z))
        }
    }
}

/// The hybrid score's weight on a green token: one null standard deviation of the green
/// indicator, so both parts of the score have unit null variance and count equally.
pub(crate) fn green_weight(gamma: f64) -> f64 {
    1.0 / (gamma * (1.0 - gamma)).sqrt()
}

/// Null mean and variance of one scored token.
fn null_moments(scheme: Scheme) -> (f64, f64) {
    match scheme {
        Scheme::Kgw { gamma, .. } => (gamma, gamma * (1.0 - gamma)),
        Scheme::Gumbel => (1.0, 1.0),
        Scheme::KgwGumbel { gamma, .. } => (1.0 + green_weight(gamma) * gamma, 2.0),
    }
}

/// Keyed 64-bit value of the pair (context before `i`, token `i`): both the dedup key and the
/// source of the score. Distinct pairs collide with probability 2^-64.
#[inline]
fn pair_bits(m: &TextMark, tokens: &[u32], i: usize) -> (u64, u64) {
    let h = m.config.context;
    let seed = m.prf.context_seed(&tokens[i - h..i]);
    (seed, m.prf.token_bits(seed, tokens[i]))
}

/// The score of token `token` after context `seed`, whose first-stream bits are `bits`.
#[inline]
fn score_bits(m: &TextMark, seed: u64, token: u32, bits: u64) -> f64 {
    match m.config.scheme {
        Scheme::Kgw { gamma, .. } => f64::from(u8::from(bits < prf::threshold(gamma))),
        Scheme::Gumbel => -(1.0 - prf::to_uniform(bits)).ln(),
        Scheme::KgwGumbel { gamma, .. } => {
            let green = f64::from(u8::from(bits < prf::threshold(gamma)));
            let u = prf::to_uniform(m.prf.token_bits_2(seed, token));
            -(1.0 - u).ln() + green_weight(gamma) * green
        }
    }
}

pub(crate) fn detect(
    m: &TextMark,
    tokens: &[u32],
    skip: usize,
    exclude: &[u32],
) -> Result<Detection, Error> {
    let h = m.config.context;
    let start = skip.max(h);
    if tokens.len() <= start {
        return Err(Error::Input(format!(
            "too short to score: {} tokens, need more than {start} (context width {h}{})",
            tokens.len(),
            if skip > 0 {
                " plus the excluded prompt"
            } else {
                ""
            }
        )));
    }
    let scheme = m.config.scheme;
    // Pairs already seen (in the excluded prompt, or earlier in the text) are not scored again.
    let mut seen: FxHashSet<u64> = FxHashSet::default();
    seen.reserve(tokens.len() + exclude.len());
    for i in h..exclude.len() {
        seen.insert(pair_bits(m, exclude, i).1);
    }
    // Prefix sums over positions: scored count and score.
    let n = tokens.len();
    let mut cnt = vec![0u32; n + 1];
    let mut sum = vec![0f64; n + 1];
    for i in 0..n {
        let (mut c, mut s) = (0, 0.0);
        if i >= start {
            let (seed, bits) = pair_bits(m, tokens, i);
            if seen.insert(bits) {
                c = 1;
                s = score_bits(m, seed, tokens[i], bits);
            }
        }
        cnt[i + 1] = cnt[i] + c;
        sum[i + 1] = sum[i] + s;
    }
    let scored = cnt[n] as usize;
    let total = sum[n];
    let (p_whole, z) = tail(scheme, scored, total);
    // Span search: windows of several lengths, stride a quarter window; Bonferroni over all
    // windows examined.
    let mut windows = vec![];
    for &len in &WINDOWS {
        if len > n - start {
            continue;
        }
        let stride = (len / 4).max(1);
        let mut s = start;
        while s + len <= n {
            windows.push((s, s + len));
            s += stride;
        }
    }
    let n_windows = windows.len() as f64;
    let mut hits: Vec<Span> = vec![];
    let mut best = 1.0f64;
    // With 20 or more windows, a window whose score is less than 1.5 standard deviations above
    // its null mean has an exact tail above 0.05 (both nulls are right-skewed), so its corrected
    // p-value is 1: skip the exact tail. Fewer windows: compute every tail.
    let screen = n_windows >= 20.0;
    let (mean, var) = null_moments(scheme);
    for (s, e) in windows {
        let c = (cnt[e] - cnt[s]) as usize;
        let score = sum[e] - sum[s];
        if screen && (c == 0 || score - mean * c as f64 <= 1.5 * (var * c as f64).sqrt()) {
            continue;
        }
        let (wp, _) = tail(scheme, c, score);
        let corrected = (wp * n_windows).min(1.0);
        best = best.min(corrected);
        if corrected < SPAN_ALPHA {
            hits.push(Span {
                start: s,
                end: e,
                p_value: corrected,
            });
        }
    }
    // The whole text counts as a window too (its test is the uncorrected one).
    if n_windows > 0.0 && 2.0 * p_whole < SPAN_ALPHA {
        hits.push(Span {
            start,
            end: n,
            p_value: 2.0 * p_whole,
        });
    }
    // Merge overlapping windows into spans, keeping each span's smallest p.
    hits.sort_by_key(|s| s.start);
    let mut spans: Vec<Span> = vec![];
    for w in hits {
        match spans.last_mut() {
            Some(last) if w.start <= last.end => {
                last.end = last.end.max(w.end);
                last.p_value = last.p_value.min(w.p_value);
            }
            _ => spans.push(w),
        }
    }
    // Windows overhang the marked text by up to a window length: trim each span to its
    // maximum-sum stretch of scores above the null mean plus a quarter standard deviation (the
    // drift keeps the stretch from wandering into unmarked text, where the centred scores are
    // a zero-mean walk).
    let mean = mean + 0.25 * var.sqrt();
    for sp in &mut spans {
        let (mut best, mut best_range) = (f64::NEG_INFINITY, (sp.start, sp.end));
        let (mut run, mut run_start) = (0.0f64, sp.start);
        for i in sp.start..sp.end {
            let c = f64::from(cnt[i + 1] - cnt[i]);
            run += (sum[i + 1] - sum[i]) - mean * c;
            if run > best {
                best = run;
                best_range = (run_start, i + 1);
            }
            if run < 0.0 {
                run = 0.0;
                run_start = i + 1;
            }
        }
        if best > 0.0 {
            (sp.start, sp.end) = best_range;
        }
    }
    let p_value = if n_windows > 0.0 {
        (2.0 * p_whole.min(best)).min(1.0)
    } else {
        p_whole
    };
    Ok(Detection {
        p_value,
        p_value_whole: p_whole,
        z_score: z,
        tokens_scored: scored,
        score: total,
        spans,
    })
}
