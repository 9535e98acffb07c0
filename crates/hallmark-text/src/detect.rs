use std::collections::HashSet;

use hallmark_core::stats;

use crate::{Error, Scheme, TextMark};

/// A token range found to carry the watermark.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Span {
    /// First token index (inclusive).
    pub start: usize,
    /// Last token index (exclusive).
    pub end: usize,
    /// p-value of the window, multiplied by the number of windows examined (Bonferroni).
    pub p_value: f64,
}

/// The outcome of scoring a token sequence. "Not watermarked" is a large p-value.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Detection {
    /// Probability that unwatermarked text scores at least this high (exact tail).
    pub p_value: f64,
    /// z-score (KGW only).
    pub z_score: Option<f64>,
    /// Unique (context, token) pairs scored.
    pub tokens_scored: usize,
    /// Green tokens among them (KGW) or the summed score (Gumbel).
    pub score: f64,
    /// Watermarked spans (corrected p < 0.001), possibly empty.
    pub spans: Vec<Span>,
}

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
    }
}

pub(crate) fn detect(m: &TextMark, tokens: &[u32], skip: usize) -> Result<Detection, Error> {
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
    // Per position: the score if this (context, token) pair is new, else None.
    let mut seen: HashSet<&[u32]> = HashSet::new();
    let mut per: Vec<Option<f64>> = vec![None; tokens.len()];
    for i in start..tokens.len() {
        let pair = &tokens[i - h..=i];
        if seen.insert(pair) {
            per[i] = m.score_token(&tokens[i - h..i], tokens[i]);
        }
    }
    let scored: Vec<f64> = per.iter().flatten().copied().collect();
    let total: f64 = scored.iter().sum();
    let (p, z) = tail(m.config.scheme, scored.len(), total);
    // Span search: windows of several lengths, stride a quarter window; Bonferroni over all
    // windows examined.
    let mut windows = vec![];
    for &len in &[50usize, 100, 200, 400] {
        if len > tokens.len() - start {
            continue;
        }
        let stride = (len / 4).max(1);
        let mut s = start;
        while s + len <= tokens.len() {
            windows.push((s, s + len));
            s += stride;
        }
    }
    let n_windows = windows.len().max(1) as f64;
    let mut spans: Vec<Span> = vec![];
    for (s, e) in windows {
        let vals: Vec<f64> = per[s..e].iter().flatten().copied().collect();
        let (wp, _) = tail(m.config.scheme, vals.len(), vals.iter().sum());
        let corrected = (wp * n_windows).min(1.0);
        if corrected < 1e-3 {
            // Merge overlapping windows into one span, keeping the smallest p.
            if let Some(last) = spans.last_mut()
                && s <= last.end
            {
                last.end = last.end.max(e);
                last.p_value = last.p_value.min(corrected);
                continue;
            }
            spans.push(Span {
                start: s,
                end: e,
                p_value: corrected,
            });
        }
    }
    Ok(Detection {
        p_value: p,
        z_score: z,
        tokens_scored: scored.len(),
        score: total,
        spans,
    })
}
