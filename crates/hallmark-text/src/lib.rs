//! hallmark's statistical text watermark, over token ids: logits processors a sampling loop
//! calls at each step, and detectors that give honest p-values from the tokens alone.
//!
//! Three schemes, all keyed by the keygen watermark key:
//! * [`Scheme::Kgw`]: the green-list watermark of Kirchenbauer et al. A keyed function of the
//!   previous `context` tokens splits the vocabulary into a green fraction `gamma`; green
//!   logits get `+delta`. Detection counts green tokens: exact binomial tail.
//! * [`Scheme::Gumbel`]: the distortion-free exponential-minimum rule (Aaronson): the token
//!   maximising `r_v^(1/p_v)` is chosen, `r` keyed uniform numbers; the output distribution is
//!   unchanged on average. Detection sums `-ln(1 - r)`: exact Gamma tail. Each position is
//!   keyed by the shortest context (1 to 3 tokens by default) that is new in the text, so
//!   every position carries evidence and most survive an edit nearby.
//! * [`Scheme::KgwGumbel`]: both, for text that will be edited: the green-list bias, then the
//!   exponential-minimum rule over the biased distribution. Exact Gamma-plus-binomial tail.
//!
//! Honesty on real text: each unique (context, token) pair is scored once and every
//! exponential score has its own context (repeated phrases cannot pile up evidence), tails
//! are exact, and the span search corrects for the number of windows it looks at.
//!
//! The scheme and its parameters travel in a versioned [`Config`] header, so a detector can
//! never silently use other parameters than the generator.
//!
//! The real-model side (candle, a tokenizer, `hallmark text generate` / `detect`) is in
//! `hallmark-lm` and the CLI.
//!
//! ```
//! use hallmark_core::WatermarkKey;
//! use hallmark_text::{Config, Scheme, TextMark};
//!
//! let mark = TextMark::new(&WatermarkKey::from_bytes([1; 32]), Config::kgw());
//! let mut logits = vec![0.0f32; 1000];
//! mark.bias(&[5, 17, 256, 9], &mut logits);
//! assert!(logits.iter().any(|&l| l > 0.0));
//! let header = mark.config().to_header();
//! assert_eq!(Config::from_header(&header)?, *mark.config());
//! # Ok::<(), hallmark_text::Error>(())
//! ```
#![deny(missing_docs)]

mod config;
mod detect;
mod novel;
mod prf;
mod sample;

pub use config::{Config, Scheme};
pub use detect::{Detection, SPAN_ALPHA, Span};
pub use prf::Prf;
#[cfg(test)]
use sample::exp_neg;
pub use sample::{Processor, Sampler, sample_plain};
use sample::{inverse_cdf, softmax_weights};

use hallmark_core::WatermarkKey;

/// Errors from configuration parsing and detection input.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A configuration header or parameter is invalid.
    #[error("invalid text watermark configuration: {0}")]
    Config(String),
    /// The input cannot be scored (empty, or too short for the context width).
    #[error("{0}")]
    Input(String),
}

/// A text watermark for one key and configuration: the generation side and the detector.
#[derive(Clone)]
pub struct TextMark {
    prf: Prf,
    config: Config,
}

impl std::fmt::Debug for TextMark {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TextMark")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl TextMark {
    /// The watermark for `key` with `config`.
    pub fn new(key: &WatermarkKey, config: Config) -> Self {
        TextMark {
            prf: Prf::new(key),
            config,
        }
    }

    /// The configuration (write its header next to generated text's metadata).
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The keyed seed of the last `h` tokens of `context` (None while it is shorter than `h`).
    pub fn context_seed(&self, context: &[u32]) -> Option<u64> {
        self.seed(context)
    }

    fn seed(&self, context: &[u32]) -> Option<u64> {
        let h = self.config.context;
        (context.len() >= h).then(|| self.prf.context_seed(&context[context.len() - h..]))
    }

    /// KGW: adds `delta` to the green logits for the next token after `context`. A no-op for
    /// the Gumbel scheme (which is a sampling rule, see [`Sampler`]) and while the
    /// context is shorter than the configured width.
    pub fn bias(&self, context: &[u32], logits: &mut [f32]) {
        let Some((gamma, delta)) = self.config.scheme.green() else {
            return;
        };
        let Some(seed) = self.seed(context) else {
            return;
        };
        let threshold = prf::threshold(gamma);
        for (v, l) in logits.iter_mut().enumerate() {
            if self.prf.token_bits(seed, v as u32) < threshold {
                *l += delta;
            }
        }
    }

    /// Samples the next token at `temperature` using `uniform` (a number in [0, 1) from the
    /// caller's RNG) for KGW, or the keyed exponential-minimum rule for Gumbel and the hybrid
    /// (which use no outside randomness once the context is long enough).
    ///
    /// Stateless, so it keys every position on the shortest width `h` only: with a longer
    /// `hmax` (the default's 3) a generation loop must go through [`Sampler`] (or
    /// [`Processor`]), which tracks which contexts the text already had. Crate-private so
    /// no caller can lose that evidence by mistake; only the tests use it.
    #[cfg(test)]
    pub(crate) fn sample(
        &self,
        context: &[u32],
        logits: &[f32],
        temperature: f32,
        uniform: f64,
    ) -> u32 {
        let inv_t = 1.0 / temperature.max(1e-4);
        match self.seed(context) {
            Some(_) => self.sample_keyed(context, self.config.context, logits, inv_t, uniform),
            None => sample_plain(logits, temperature, uniform),
        }
    }

    /// The keyed rule with the exponential-minimum part keyed by the last `width` tokens of
    /// `context` (which holds at least `width` and at least `h` tokens).
    fn sample_keyed(
        &self,
        context: &[u32],
        width: usize,
        logits: &[f32],
        inv_t: f32,
        uniform: f64,
    ) -> u32 {
        let n = context.len();
        let seed = self.prf.context_seed(&context[n - self.config.context..]);
        let wide = || self.prf.context_seed(&context[n - width..]);
        match self.config.scheme {
            Scheme::Kgw { gamma, delta } => {
                self.sample_green(seed, logits, gamma, delta, inv_t, uniform)
            }
            Scheme::Gumbel => {
                let mut w = logits.to_vec();
                let z = softmax_weights(&mut w, inv_t);
                let s = wide();
                self.exp_min(&w, z, |v| self.prf.token_uniform(s, v))
            }
            Scheme::KgwGumbel { gamma, delta } => {
                let mut w = self.biased(seed, logits, gamma, delta);
                let z = softmax_weights(&mut w, inv_t);
                let s2 = self.prf.stream_2(wide());
                self.exp_min(&w, z, |v| prf::to_uniform(self.prf.bits_2(s2, v)))
            }
        }
    }

    /// The logits with `delta` added to the green tokens after `seed`.
    fn biased(&self, seed: u64, logits: &[f32], gamma: f64, delta: f32) -> Vec<f32> {
        let thr = prf::threshold(gamma);
        logits
            .iter()
            .enumerate()
            .map(|(v, &l)| {
                if self.prf.token_bits(seed, v as u32) < thr {
                    l + delta
                } else {
                    l
                }
            })
            .collect()
    }

    /// Temperature sampling from the green-biased distribution with one uniform number.
    fn sample_green(
        &self,
        seed: u64,
        logits: &[f32],
        gamma: f64,
        delta: f32,
        inv_t: f32,
        uniform: f64,
    ) -> u32 {
        let mut w = self.biased(seed, logits, gamma, delta);
        let z = softmax_weights(&mut w, inv_t);
        inverse_cdf(&w, z, uniform)
    }

    /// The exponential-minimum rule over unnormalised probabilities `w` (total `z`) with keyed
    /// uniform numbers `r(v)`: the token maximising `r^(1/p)`.
    fn exp_min(&self, w: &[f32], z: f32, r: impl Fn(u32) -> f64) -> u32 {
        // argmax r^(1/p) == argmax ln(r)/p. Tokens with probability below 1e-10 are left out
        // (they would win with that probability: a negligible truncation).
        //
        // The logarithm is the cost (a large vocabulary has ~50k tokens above the floor), and
        // almost no token needs it: ln(r) <= r - 1, so a token whose (r - 1)/p is already
        // below the best score so far cannot win. Starting from the most probable token
        // makes the best score good at once. The result is exactly the plain argmax (ties,
        // which have probability zero, go to the lowest index as before).
        let floor = z * 1e-10;
        let Some(top) = (0..w.len()).max_by(|&a, &b| w[a].total_cmp(&w[b]).then(b.cmp(&a))) else {
            return 0;
        };
        let mut best = (f64::NEG_INFINITY, u32::MAX);
        let mut consider = |v: usize, q: f32| {
            if q <= floor {
                return;
            }
            let u = r(v as u32);
            let q = f64::from(q);
            // (u - 1) / q < best, without the division (q > 0).
            if u - 1.0 < best.0 * q {
                return;
            }
            let score = u.ln() / q;
            if score > best.0 || (score == best.0 && (v as u32) < best.1) {
                best = (score, v as u32);
            }
        };
        consider(top, w[top]);
        for (v, &q) in w.iter().enumerate() {
            if v != top {
                consider(v, q);
            }
        }
        if best.1 == u32::MAX { 0 } else { best.1 }
    }

    /// Scores `tokens` (generated text; the first `skip` tokens are context only, e.g. a
    /// prompt the text starts with): see [`Detection`].
    ///
    /// # Errors
    /// [`Error::Input`] when no token can be scored.
    pub fn detect(&self, tokens: &[u32], skip: usize) -> Result<Detection, Error> {
        detect::detect(self, tokens, skip, &[])
    }

    /// Like [`TextMark::detect`], but no (context, token) pair that occurs in `exclude` (a
    /// prompt, or any text known not to be generated) is scored.
    ///
    /// # Errors
    /// [`Error::Input`] when no token can be scored.
    pub fn detect_excluding(
        &self,
        tokens: &[u32],
        skip: usize,
        exclude: &[u32],
    ) -> Result<Detection, Error> {
        detect::detect(self, tokens, skip, exclude)
    }

    /// [`TextMark::detect_excluding`] under each of `marks` at once: the text's key-independent
    /// bookkeeping (context widths, first occurrences) is shared by every key of one
    /// configuration, so many keys cost little more than their keyed scores. One result per
    /// mark, the same as detecting key by key; correcting for the number of keys (the best
    /// p-value times their count) is the caller's.
    pub fn detect_many(
        marks: &[&TextMark],
        tokens: &[u32],
        skip: usize,
        exclude: &[u32],
    ) -> Vec<Result<Detection, Error>> {
        detect::detect_many(marks, tokens, skip, exclude)
    }
}

#[cfg(test)]
mod tests;
