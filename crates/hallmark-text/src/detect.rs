use hallmark_core::stats;
use rustc_hash::FxHashSet;

use crate::novel::{self, Novelty};
use crate::{Error, Scheme, TextMark, prf};

/// A token range found to carry the watermark.
#[derive(Clone, Debug, PartialEq, serde::Serialize, schemars::JsonSchema)]
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
#[derive(Clone, Debug, serde::Serialize, schemars::JsonSchema)]
pub struct Detection {
    /// The test's p-value: the smaller of the whole-text p-value and the best corrected window
    /// p-value, times two (Bonferroni over the two tests) when windows were searched.
    pub p_value: f64,
    /// Probability that unwatermarked text scores at least this high over the whole text
    /// (exact tail: binomial for KGW, Gamma for Gumbel, Gamma plus scaled binomial for the
    /// hybrid, whose values above ~0.05 may be given as a Chernoff upper bound instead).
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
pub const SPAN_ALPHA: f64 = 1e-3;

/// Texts at least this long (tokens after the skipped prefix) get their context widths by
/// sorting rather than one map lookup per position.
const LONG_TEXT: usize = 4096;

/// Hybrid p-values whose Chernoff bound is at least this are reported as the bound (exact
/// tails are ~0.05 and above there).
const CHERNOFF_ENOUGH: f64 = 0.25;

/// Evidence in a stretch of text: green-list pairs and exponential scores counted.
#[derive(Clone, Copy, Debug, Default)]
struct Counts {
    green: u32,
    exp: u32,
}

impl std::ops::Sub for Counts {
    type Output = Counts;
    fn sub(self, o: Counts) -> Counts {
        Counts {
            green: self.green - o.green,
            exp: self.exp - o.exp,
        }
    }
}

/// The hybrid score's weight on a green token: one null standard deviation of the green
/// indicator, so both parts of the score have unit null variance and count equally.
pub(crate) fn green_weight(gamma: f64) -> f64 {
    1.0 / (gamma * (1.0 - gamma)).sqrt()
}

/// Null mean and variance of one green-list pair's score and of one exponential score.
fn unit_moments(scheme: Scheme) -> ((f64, f64), (f64, f64)) {
    match scheme {
        Scheme::Kgw { gamma, .. } => ((gamma, gamma * (1.0 - gamma)), (0.0, 0.0)),
        Scheme::Gumbel => ((0.0, 0.0), (1.0, 1.0)),
        Scheme::KgwGumbel { gamma, .. } => ((green_weight(gamma) * gamma, 1.0), (1.0, 1.0)),
    }
}

/// Null mean and variance of the score of a stretch with counts `c`.
fn moments(scheme: Scheme, c: Counts) -> (f64, f64) {
    let ((mg, vg), (me, ve)) = unit_moments(scheme);
    let (g, e) = (f64::from(c.green), f64::from(c.exp));
    (g * mg + e * me, g * vg + e * ve)
}

/// Exact null tail of `score` over a stretch with counts `c`, and its z-score where the
/// scheme has one.
fn tail(scheme: Scheme, c: Counts, score: f64) -> (f64, Option<f64>) {
    if c.green == 0 && c.exp == 0 {
        return (1.0, None);
    }
    let (mean, var) = moments(scheme, c);
    let z = (score - mean) / var.sqrt();
    match scheme {
        Scheme::Kgw { gamma, .. } => (
            stats::binomial_sf(score.round() as u64, u64::from(c.green), gamma),
            Some(z),
        ),
        Scheme::Gumbel => (stats::gamma_sf(f64::from(c.exp), score), None),
        Scheme::KgwGumbel { gamma, .. } => {
            let (e, g, w) = (f64::from(c.exp), u64::from(c.green), green_weight(gamma));
            // The exact tail sums one Gamma tail per plausible green count (~100 for 200
            // tokens). Where its Chernoff bound is already large (the text is far from
            // significant), the bound is the p-value: never below the exact tail, so still
            // valid, only conservative where no test threshold lies.
            let bound = stats::gamma_binomial_chernoff(e, g, gamma, w, score);
            let p = if bound >= CHERNOFF_ENOUGH {
                bound
            } else {
                stats::gamma_binomial_sf(e, g, gamma, w, score)
            };
            (p, Some(z))
        }
    }
}

/// Which keyed stream the exponential scores come from (None: the scheme has none).
fn exp_stream(scheme: Scheme) -> Option<u8> {
    match scheme {
        Scheme::Kgw { .. } => None,
        Scheme::Gumbel => Some(1),
        Scheme::KgwGumbel { .. } => Some(2),
    }
}

#[inline]
fn top32(bits: u64) -> u32 {
    (bits >> 32) as u32
}

#[inline]
fn exp_bits(m: &TextMark, stream: u8, seed: u64, token: u32) -> u64 {
    if stream == 1 {
        m.prf.token_bits(seed, token)
    } else {
        m.prf.token_bits_2(seed, token)
    }
}

pub(crate) fn detect(
    m: &TextMark,
    tokens: &[u32],
    skip: usize,
    exclude: &[u32],
) -> Result<Detection, Error> {
    detect_with(m, tokens, skip, exclude, LONG_TEXT)
}

/// [`detect`], treating texts of at least `long_text` scored tokens as long (bookkeeping by
/// sorting rather than per position; the answers are the same).
pub(crate) fn detect_with(
    m: &TextMark,
    tokens: &[u32],
    skip: usize,
    exclude: &[u32],
    long_text: usize,
) -> Result<Detection, Error> {
    let start = skip.max(m.config.context);
    let bulk = (tokens.len() > start && tokens.len() - start >= long_text)
        .then(|| bookkeeping(&m.config, tokens, start));
    detect_planned(m, tokens, skip, exclude, bulk.as_ref())
}

/// The key-independent part of detection: each position's context width and whether its
/// (context, token) pair is new, by sorting. Shared by every key of one configuration.
fn bookkeeping(config: &crate::Config, tokens: &[u32], start: usize) -> novel::LongText {
    let (h, hmax) = (config.context, config.max_context);
    let scheme = config.scheme;
    let stream = exp_stream(scheme);
    let pairwise = hmax == h;
    let want_widths = stream.is_some() && !pairwise;
    let want_pairs = scheme.green().is_some() || pairwise;
    novel::long_text(tokens, start, h, hmax, want_widths, want_pairs)
}

/// Detection under many keys at once: the text's key-independent bookkeeping is done once per
/// configuration, then each key only computes its keyed scores. The answers are those of
/// [`detect`] key by key. (Family-wise correction over the keys is the caller's.)
pub(crate) fn detect_many(
    marks: &[&TextMark],
    tokens: &[u32],
    skip: usize,
    exclude: &[u32],
) -> Vec<Result<Detection, Error>> {
    let mut plans: Vec<(crate::Config, Option<novel::LongText>)> = vec![];
    marks
        .iter()
        .map(|m| {
            let start = skip.max(m.config.context);
            if tokens.len() <= start {
                return detect_planned(m, tokens, skip, exclude, None);
            }
            let idx = match plans.iter().position(|(c, _)| *c == m.config) {
                Some(i) => i,
                None => {
                    plans.push((m.config, Some(bookkeeping(&m.config, tokens, start))));
                    plans.len() - 1
                }
            };
            detect_planned(m, tokens, skip, exclude, plans[idx].1.as_ref())
        })
        .collect()
}

/// Detection with the bookkeeping given (`Some`: the long-text path) or done per position.
fn detect_planned(
    m: &TextMark,
    tokens: &[u32],
    skip: usize,
    exclude: &[u32],
    planned: Option<&novel::LongText>,
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
    let Scores { cnt, sum, scored } = score_positions(m, tokens, start, exclude, planned);
    let n = tokens.len();
    let total = sum[n];
    let (p_whole, z) = tail(scheme, cnt[n], total);
    let (hits, best, n_windows) = search_windows(scheme, &cnt, &sum, start, p_whole);
    let spans = merge_spans(scheme, &cnt, &sum, hits);
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

/// Per-position evidence as prefix sums: `cnt[i]` and `sum[i]` count and add the scores of
/// positions before `i`.
struct Scores {
    cnt: Vec<Counts>,
    sum: Vec<f64>,
    /// Positions that added evidence.
    scored: usize,
}

/// Scores every position from `start` on (see [`detect`] for which pairs count), with the
/// long-text bookkeeping when `planned` is given.
fn score_positions(
    m: &TextMark,
    tokens: &[u32],
    start: usize,
    exclude: &[u32],
    planned: Option<&novel::LongText>,
) -> Scores {
    let (h, hmax) = (m.config.context, m.config.max_context);
    let scheme = m.config.scheme;
    let green = scheme.green().map(|(gamma, _)| {
        let w = match scheme {
            Scheme::KgwGumbel { .. } => green_weight(gamma),
            _ => 1.0,
        };
        (prf::threshold(gamma), w)
    });
    let stream = exp_stream(scheme);
    // Green-list pairs already seen (in the excluded prompt, or earlier in the text) are not
    // scored again; exponential scores are keyed by contexts new in the text (so never
    // repeat), and skipped when the excluded prompt had the same keyed pair at any width.
    // Sets hold the top 32 bits of the keyed pair: a collision (about 1 in 40,000 per pair in
    // a 100,000-token text) only leaves a pair unscored, and the sets stay in cache.
    let mut seen: FxHashSet<u32> = FxHashSet::default();
    let mut excluded: FxHashSet<u32> = FxHashSet::default();
    for i in h..exclude.len() {
        let seed = m.prf.context_seed(&exclude[i - h..i]);
        if green.is_some() {
            seen.insert(top32(m.prf.token_bits(seed, exclude[i])));
        }
        if let Some(st) = stream {
            for w in h..=hmax.min(i) {
                let seed = m.prf.context_seed(&exclude[i - w..i]);
                excluded.insert(top32(exp_bits(m, st, seed, exclude[i])));
            }
        }
    }
    // With a single width, exponential scores are deduplicated as (context, token) pairs like
    // green bits (the sampler keyed only a context's first occurrence; later ones score as
    // noise, and a passage pasted after other text keeps all its pairs). With several widths,
    // the width comes from the context rule, whose keyed contexts never repeat.
    let pairwise = hmax == h;
    // Long texts (and many keys): each position's context width and whether its (context,
    // token) pair is new, all at once by sorting (same answers, fewer cache misses than a map
    // lookup per position); the set then only holds the excluded prompt's pairs.
    let long = planned.is_some();
    let want_widths = stream.is_some() && !pairwise;
    let want_pairs = green.is_some() || pairwise;
    let bulk = planned;
    let first_pairs = bulk.filter(|_| want_pairs).map(|b| &b.first_pairs);
    let excluded_green = if long {
        std::mem::take(&mut seen)
    } else {
        FxHashSet::default()
    };
    if green.is_some() && !long {
        seen.reserve(tokens.len());
    }
    let mut seen_exp: FxHashSet<u32> = FxHashSet::default();
    let mut novelty = Novelty::new(h, hmax);
    if stream.is_some() && !pairwise && !long {
        novelty.reserve(tokens.len() - start);
    }
    let sorted = bulk.filter(|_| want_widths).map(|b| &b.widths);
    // Prefix sums over positions: evidence counts and score.
    let n = tokens.len();
    let mut cnt = vec![Counts::default(); n + 1];
    let mut sum = vec![0f64; n + 1];
    let mut scored = 0usize;
    for i in 0..n {
        let (mut c, mut s) = (cnt[i], 0.0);
        if i >= start {
            let t = tokens[i];
            let seed = m.prf.context_seed(&tokens[i - h..i]);
            let before = (c.green, c.exp);
            if let Some((thr, weight)) = green {
                let bits = m.prf.token_bits(seed, t);
                let fresh = match &first_pairs {
                    Some(f) => f[i - start] && !excluded_green.contains(&top32(bits)),
                    None => seen.insert(top32(bits)),
                };
                if fresh {
                    c.green += 1;
                    if bits < thr {
                        s += weight;
                    }
                }
            }
            let width = match stream {
                None => None,
                Some(_) if pairwise => Some(h),
                Some(_) => match &sorted {
                    Some(ws) => Some(usize::from(ws[i - start])).filter(|&w| w > 0),
                    None => novelty.step(&tokens[..i]),
                },
            };
            if let (Some(st), Some(w)) = (stream, width) {
                let seed = if w == h {
                    seed
                } else {
                    m.prf.context_seed(&tokens[i - w..i])
                };
                let bits = exp_bits(m, st, seed, t);
                let fresh = !pairwise
                    || match &first_pairs {
                        Some(f) => f[i - start],
                        None => seen_exp.insert(top32(bits)),
                    };
                if fresh && (excluded.is_empty() || !excluded.contains(&top32(bits))) {
                    c.exp += 1;
                    s += -(1.0 - prf::to_uniform(bits)).ln();
                }
            }
            scored += usize::from((c.green, c.exp) != before);
        }
        cnt[i + 1] = c;
        sum[i + 1] = sum[i] + s;
    }
    Scores { cnt, sum, scored }
}

/// The span search: windows of several lengths, stride a quarter window, each tested with
/// its exact tail; returns the windows significant after a Bonferroni correction over all
/// windows examined (the whole text counting as one more), the smallest corrected p-value,
/// and the number of windows.
fn search_windows(
    scheme: Scheme,
    cnt: &[Counts],
    sum: &[f64],
    start: usize,
    p_whole: f64,
) -> (Vec<Span>, f64, f64) {
    let n = cnt.len() - 1;
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
    // A window whose score is less than 1.5 standard deviations above its null mean has an
    // exact tail above 0.05 (both nulls are right-skewed), so its corrected p-value is at
    // least 0.05 times the number of windows: skip its exact tail. Skipping can only raise
    // the reported p-value, and only where it would have been at least 0.1 (twice that
    // window's corrected p-value); with 20 windows or more those windows are at 1 anyway.
    for (s, e) in windows {
        let c = cnt[e] - cnt[s];
        let score = sum[e] - sum[s];
        let (mean, var) = moments(scheme, c);
        if var == 0.0 || score - mean <= 1.5 * var.sqrt() {
            continue;
        }
        // The hybrid's exact tail is a sum of Gamma tails: first a Chernoff bound (an upper
        // bound, a few exps); a window it already puts at a corrected p of 1 is skipped. That
        // can only leave the reported p-value larger (conservative), never smaller.
        if let Scheme::KgwGumbel { gamma, .. } = scheme
            && stats::gamma_binomial_chernoff(
                f64::from(c.exp),
                u64::from(c.green),
                gamma,
                green_weight(gamma),
                score,
            ) * n_windows
                >= 1.0
        {
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
    (hits, best, n_windows)
}

/// Merges overlapping significant windows into spans (each keeping its smallest p-value),
/// then trims each span to the stretch its scores support.
fn merge_spans(scheme: Scheme, cnt: &[Counts], sum: &[f64], mut hits: Vec<Span>) -> Vec<Span> {
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
    for sp in &mut spans {
        let (mut best, mut best_range) = (f64::NEG_INFINITY, (sp.start, sp.end));
        let (mut run, mut run_start) = (0.0f64, sp.start);
        for i in sp.start..sp.end {
            let (mean, var) = moments(scheme, cnt[i + 1] - cnt[i]);
            run += (sum[i + 1] - sum[i]) - (mean + 0.25 * var.sqrt());
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
    spans
}
