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

mod detect;
mod novel;
mod prf;

pub use detect::{Detection, SPAN_ALPHA, Span};
pub use prf::Prf;

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

/// A watermarking scheme and its parameters.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Scheme {
    /// Green-list bias (KGW).
    Kgw {
        /// Green fraction of the vocabulary (default 0.25).
        gamma: f64,
        /// Logit bias for green tokens (default 2.0).
        delta: f32,
    },
    /// Exponential-minimum sampling (distortion-free).
    Gumbel,
    /// Both at once, for text that will be edited: the green-list bias, then the
    /// exponential-minimum rule over the biased distribution with a second, independent keyed
    /// stream. The text is distributed as under KGW with the same bias (same quality), but
    /// every token carries two pieces of evidence: its green bit, and its exponential score,
    /// large where the model hesitated. Detection adds them, each scaled to unit null
    /// variance, and the sum has an exact null tail (Gamma plus scaled binomial).
    KgwGumbel {
        /// Green fraction of the vocabulary.
        gamma: f64,
        /// Logit bias for green tokens.
        delta: f32,
    },
}

impl Scheme {
    /// The green list's `(gamma, delta)`, for the schemes that have one.
    fn green(self) -> Option<(f64, f32)> {
        match self {
            Scheme::Kgw { gamma, delta } | Scheme::KgwGumbel { gamma, delta } => {
                Some((gamma, delta))
            }
            Scheme::Gumbel => None,
        }
    }
}

/// Scheme plus context width: everything generator and detector must agree on.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Config {
    /// The scheme.
    pub scheme: Scheme,
    /// How many previous tokens seed the keyed function (the green list always; the
    /// exponential-minimum rule when that context is new in the text).
    pub context: usize,
    /// Longest context of the exponential-minimum rule (>= `context`; header field `hmax`,
    /// absent when equal). The rule needs a context the text has not used before (the same
    /// context and key would pick the same token again), so when the last `context` tokens
    /// have occurred before, it keys on the last `context + 1`, and so on up to `max_context`
    /// tokens; only when all of those repeat is the token sampled without it. Each position's
    /// context is then new, so its keyed number is independent of every other one's, and
    /// the detector can score every position, not only first occurrences.
    pub max_context: usize,
}

impl Default for Config {
    /// The distortion-free scheme keyed by the shortest new context of 1 to 3 tokens: text
    /// quality is unchanged on average (measured: perplexity within a few percent of
    /// unwatermarked sampling), a one-token context survives edits better than a longer one,
    /// and repeated contexts still carry evidence through the longer ones; p-values stay
    /// calibrated on human text (see docs/text-benchmark.md).
    fn default() -> Self {
        Config::gumbel()
    }
}

impl Config {
    /// `hallmark-text/1 gumbel h=1 hmax=3`: the distortion-free exponential-minimum scheme.
    pub fn gumbel() -> Self {
        Config {
            scheme: Scheme::Gumbel,
            context: 1,
            max_context: 3,
        }
    }

    /// `hallmark-text/1 kgw h=2 gamma=0.25 delta=2`: the KGW green list (stronger evidence per
    /// token at low entropy, at a cost in perplexity).
    pub fn kgw() -> Self {
        Config {
            scheme: Scheme::Kgw {
                gamma: 0.25,
                delta: 2.0,
            },
            context: 2,
            max_context: 2,
        }
    }

    /// `hallmark-text/1 kgw h=1 gamma=0.25 delta=3`: the green list keyed by one token of
    /// context with a strong bias, for text that will be edited. Measured on SmolLM2 at
    /// temperature 0.7 (docs/text-benchmark.md): detection after 30% of the words are
    /// substituted, deleted or inserted 0.93 / 1.00 / 1.00 at 200 tokens, at about twice the
    /// perplexity of unwatermarked sampling. A one-token context survives an edit more often
    /// (a pair needs two untouched tokens, not three) and the bias puts evidence in most
    /// tokens even where the model is sure. [`Config::robust`] does better at less cost.
    pub fn kgw_robust() -> Self {
        Config {
            scheme: Scheme::Kgw {
                gamma: 0.25,
                delta: 3.0,
            },
            context: 1,
            max_context: 1,
        }
    }

    /// `hallmark-text/1 kgw-gumbel h=1 hmax=3 gamma=0.25 delta=2`: the hybrid scheme
    /// ([`Scheme::KgwGumbel`]) for text that will be edited. Measured on SmolLM2
    /// (docs/text-benchmark.md): 40 of 40 texts detected after 30% of the words are
    /// substituted, deleted or inserted, at temperature 0.7 and 1.0, perplexity +43% at 0.7
    /// (against +103% for [`Config::kgw_robust`], which detects fewer): a smaller bias, because
    /// the exponential scores add evidence the green bits alone lack.
    pub fn robust() -> Self {
        Config {
            scheme: Scheme::KgwGumbel {
                gamma: 0.25,
                delta: 2.0,
            },
            context: 1,
            max_context: 3,
        }
    }
}

const HEADER: &str = "hallmark-text/1";

impl Config {
    /// A one-line, versioned description, e.g. `hallmark-text/1 kgw h=2 gamma=0.25 delta=2`.
    pub fn to_header(&self) -> String {
        let h = if self.max_context > self.context {
            format!("h={} hmax={}", self.context, self.max_context)
        } else {
            format!("h={}", self.context)
        };
        match self.scheme {
            Scheme::Kgw { gamma, delta } => format!("{HEADER} kgw {h} gamma={gamma} delta={delta}"),
            Scheme::Gumbel => format!("{HEADER} gumbel {h}"),
            Scheme::KgwGumbel { gamma, delta } => {
                format!("{HEADER} kgw-gumbel {h} gamma={gamma} delta={delta}")
            }
        }
    }

    /// Parses [`Config::to_header`].
    ///
    /// # Errors
    /// [`Error::Config`] for another version, an unknown scheme or out-of-range values.
    pub fn from_header(s: &str) -> Result<Config, Error> {
        let mut it = s.split_whitespace();
        if it.next() != Some(HEADER) {
            return Err(Error::Config(format!(
                "expected a {HEADER} header, got {s:?}"
            )));
        }
        let scheme = it.next().unwrap_or_default().to_string();
        let mut h = None;
        let mut hmax = None;
        let mut gamma = None;
        let mut delta = None;
        for kv in it {
            let (k, v) = kv
                .split_once('=')
                .ok_or_else(|| Error::Config(format!("bad field {kv:?}")))?;
            let bad = |_| Error::Config(format!("bad value in {kv:?}"));
            match k {
                "h" => h = Some(v.parse::<usize>().map_err(|e| bad(e.to_string()))?),
                "hmax" => hmax = Some(v.parse::<usize>().map_err(|e| bad(e.to_string()))?),
                "gamma" => gamma = Some(v.parse::<f64>().map_err(|e| bad(e.to_string()))?),
                "delta" => delta = Some(v.parse::<f32>().map_err(|e| bad(e.to_string()))?),
                _ => return Err(Error::Config(format!("unknown field {k:?}"))),
            }
        }
        let context = h.ok_or_else(|| Error::Config("missing h".into()))?;
        let cfg = Config {
            scheme: match scheme.as_str() {
                "kgw" => Scheme::Kgw {
                    gamma: gamma.ok_or_else(|| Error::Config("missing gamma".into()))?,
                    delta: delta.ok_or_else(|| Error::Config("missing delta".into()))?,
                },
                "gumbel" => Scheme::Gumbel,
                "kgw-gumbel" => Scheme::KgwGumbel {
                    gamma: gamma.ok_or_else(|| Error::Config("missing gamma".into()))?,
                    delta: delta.ok_or_else(|| Error::Config("missing delta".into()))?,
                },
                other => return Err(Error::Config(format!("unknown scheme {other:?}"))),
            },
            context,
            max_context: hmax.unwrap_or(context),
        };
        cfg.validate()?;
        Ok(cfg)
    }

    fn validate(&self) -> Result<(), Error> {
        if self.context == 0 || self.context > 16 {
            return Err(Error::Config("context width must be 1..=16".into()));
        }
        if self.max_context < self.context || self.max_context > 16 {
            return Err(Error::Config("hmax must be in h..=16".into()));
        }
        if matches!(self.scheme, Scheme::Kgw { .. }) && self.max_context != self.context {
            return Err(Error::Config(
                "hmax is for the exponential-minimum rule; the green list uses h only".into(),
            ));
        }
        if let Some((gamma, delta)) = self.scheme.green()
            && !(gamma > 0.0 && gamma < 1.0 && delta.is_finite() && delta >= 0.0)
        {
            return Err(Error::Config(
                "gamma must be in (0, 1) and delta >= 0".into(),
            ));
        }
        Ok(())
    }
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

/// Turns logits into unnormalised probabilities `exp((l - max) / t)` in place; returns their
/// sum. Logits more than 40 / t below the maximum get weight 0.
///
/// This runs once per generated token over the whole vocabulary (50k and more), where a
/// libm `exp` per entry was the sampler's largest cost: [`exp_neg`] is branch-free and the
/// loops vectorise. Relative error below 3e-6 (most of it from rounding `a log2 e` to f32 at
/// a = -40), far under what sampling can notice.
fn softmax_weights(w: &mut [f32], inv_t: f32) -> f32 {
    let m = w.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    for x in w.iter_mut() {
        let a = (*x - m) * inv_t;
        // NaN (a NaN logit, or an all -inf row) and anything below -40 weigh nothing.
        *x = if a > -40.0 { exp_neg(a) } else { 0.0 };
    }
    // Eight running sums: the additions pipeline and vectorise.
    let mut acc = [0.0f32; 8];
    let mut chunks = w.chunks_exact(8);
    for c in &mut chunks {
        for (a, &x) in acc.iter_mut().zip(c) {
            *a += x;
        }
    }
    acc.iter().sum::<f32>() + chunks.remainder().iter().sum::<f32>()
}

/// `exp(a)` for `a` in [-40, 0]: `2^(a log2 e)` split into an integer power of two, set
/// directly in the exponent bits, and `2^f` for `f` in [-1/2, 1/2] by its Taylor series to
/// degree 7 (truncation error 5e-9; f32 rounding dominates).
#[inline]
fn exp_neg(a: f32) -> f32 {
    // Round to nearest by the 1.5 * 2^23 trick: `round` is a libm call on baseline x86_64
    // (no SSE4.1), which would keep the loop from vectorising.
    const MAGIC: f32 = 12_582_912.0;
    let y = a.clamp(-60.0, 0.0) * std::f32::consts::LOG2_E;
    let k = (y + MAGIC) - MAGIC;
    let f = y - k;
    let p = 1.0
        + f * (std::f32::consts::LN_2
            + f * (0.240_226_5
                + f * (0.055_504_11
                    + f * (0.009_618_129
                        + f * (0.001_333_355_8 + f * (0.000_154_035_3 + f * 0.000_015_252_73))))));
    let bits = ((k as i32 + 127) as u32) << 23;
    p * f32::from_bits(bits)
}

/// Samples from unnormalised probabilities `w` (total `z`) with one uniform number.
fn inverse_cdf(w: &[f32], z: f32, uniform: f64) -> u32 {
    let mut u = uniform.clamp(0.0, 1.0 - 1e-12) * f64::from(z);
    let mut last = 0;
    for (v, &q) in w.iter().enumerate() {
        if q > 0.0 {
            last = v;
            u -= f64::from(q);
            if u < 0.0 {
                return v as u32;
            }
        }
    }
    last as u32
}

/// Plain temperature sampling (no watermark) with one uniform number.
pub fn sample_plain(logits: &[f32], temperature: f32, uniform: f64) -> u32 {
    let mut w = logits.to_vec();
    let z = softmax_weights(&mut w, 1.0 / temperature.max(1e-4));
    inverse_cdf(&w, z, uniform)
}

/// A sampler a generation loop calls once per step: temperature sampling with a seeded random
/// stream, through the watermark when there is one.
///
/// ```
/// use hallmark_core::WatermarkKey;
/// use hallmark_text::{Config, Sampler, TextMark};
///
/// let mark = TextMark::new(&WatermarkKey::from_bytes([7; 32]), Config::default());
/// let mut sampler = Sampler::new(Some(mark), 1);
/// let logits = vec![0.5f32; 50_000];
/// let token = sampler.next(&[1, 2, 3], &logits, 0.7);
/// assert!(token < 50_000);
/// ```
pub struct Sampler {
    mark: Option<TextMark>,
    /// ChaCha12 seeded from the caller's seed: named, not `StdRng` (whose algorithm rand may
    /// change), so a seed reproduces the same text in every version (pinned by a test).
    rng: rand_chacha::ChaCha12Rng,
    novelty: Option<novel::Novelty>,
}

impl std::fmt::Debug for Sampler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sampler")
            .field("mark", &self.mark)
            .finish_non_exhaustive()
    }
}

impl Sampler {
    /// A sampler with an optional watermark, its random stream seeded by `seed`. Use one
    /// sampler per generated text: it remembers which contexts it has watermarked.
    pub fn new(mark: Option<TextMark>, seed: u64) -> Self {
        use rand::SeedableRng;
        Sampler {
            novelty: mark
                .as_ref()
                .map(|m| novel::Novelty::new(m.config.context, m.config.max_context)),
            rng: rand_chacha::ChaCha12Rng::seed_from_u64(seed),
            mark,
        }
    }

    /// The watermark, if any.
    pub fn mark(&self) -> Option<&TextMark> {
        self.mark.as_ref()
    }

    /// The next token after `context` (all previous ids, prompt included) given `logits`.
    ///
    /// With the distortion-free scheme (and the hybrid's exponential part) each position is
    /// keyed by the shortest context, `h` to `hmax` tokens, that is new in this text (see
    /// [`Config::max_context`]); when every one repeats, the token is sampled plainly (the
    /// hybrid: from the green-biased distribution, without the keyed rule).
    /// Otherwise the keyed rule would pick the same token again and again (it is
    /// deterministic given the context), making text loop; the detector scores each
    /// (context, token) pair once anyway. The green-list scheme biases every step: its
    /// sampling stays random, and a repeated context followed by a new token is new evidence.
    pub fn next(&mut self, context: &[u32], logits: &[f32], temperature: f32) -> u32 {
        let u: f64 = rand::Rng::r#gen(&mut self.rng);
        let (Some(m), Some(novelty)) = (&self.mark, &mut self.novelty) else {
            return sample_plain(logits, temperature, u);
        };
        if context.len() < m.config.context {
            return sample_plain(logits, temperature, u);
        }
        let inv_t = 1.0 / temperature.max(1e-4);
        match m.config.scheme {
            Scheme::Kgw { .. } => m.sample_keyed(context, m.config.context, logits, inv_t, u),
            scheme => match (novelty.step(context), scheme) {
                (Some(width), _) => m.sample_keyed(context, width, logits, inv_t, u),
                (None, Scheme::KgwGumbel { gamma, delta }) => {
                    let seed = m
                        .prf
                        .context_seed(&context[context.len() - m.config.context..]);
                    m.sample_green(seed, logits, gamma, delta, inv_t, u)
                }
                (None, _) => sample_plain(logits, temperature, u),
            },
        }
    }
}

/// The watermark as a logits processor, for generation loops that sample by themselves
/// (transformers' `generate`, serving engines): it changes the next-token scores in place so
/// that whatever the loop then does with them (sampling, or taking the argmax) yields the
/// token [`Sampler`] would pick with the same key, scheme and context.
///
/// - Green-list scheme: the green tokens' scores get `delta` added (the loop's own sampling
///   stays random, as in [`Sampler`]).
/// - Distortion-free scheme and the hybrid: where the keyed rule applies (a context new in
///   this text, see [`Config::max_context`]), it picks the token from the distribution the
///   scores give (at temperature 1: apply temperature and other warpers before) and every
///   other score becomes minus infinity; where every context repeats, the scores are left
///   as they are (the hybrid: green-biased), as [`Sampler`] samples plainly there.
///
/// One processor per generated sequence: it remembers which contexts the sequence used.
///
/// ```
/// use hallmark_core::WatermarkKey;
/// use hallmark_text::{Config, Processor, TextMark};
///
/// let mark = TextMark::new(&WatermarkKey::from_bytes([7; 32]), Config::default());
/// let mut p = Processor::new(mark);
/// let mut scores = vec![0.5f32; 1000];
/// p.process(&[1, 2, 3], &mut scores);
/// assert_eq!(scores.iter().filter(|s| s.is_finite()).count(), 1);
/// ```
#[derive(Clone, Debug)]
pub struct Processor {
    mark: TextMark,
    novelty: novel::Novelty,
}

impl Processor {
    /// A processor for one sequence.
    pub fn new(mark: TextMark) -> Self {
        Processor {
            novelty: novel::Novelty::new(mark.config.context, mark.config.max_context),
            mark,
        }
    }

    /// The watermark.
    pub fn mark(&self) -> &TextMark {
        &self.mark
    }

    /// Changes `scores` (the next token's logits after `context`, all previous ids, prompt
    /// included) in place; call once per generated token. Returns the token the keyed rule
    /// chose, when it chose one.
    pub fn process(&mut self, context: &[u32], scores: &mut [f32]) -> Option<u32> {
        let m = &self.mark;
        if scores.is_empty() || context.len() < m.config.context {
            return None;
        }
        match m.config.scheme {
            Scheme::Kgw { .. } => {
                m.bias(context, scores);
                None
            }
            scheme => match self.novelty.step(context) {
                Some(width) => {
                    let t = m.sample_keyed(context, width, scores, 1.0, 0.0);
                    for (v, s) in scores.iter_mut().enumerate() {
                        if v as u32 != t {
                            *s = f32::NEG_INFINITY;
                        } else if !s.is_finite() {
                            *s = 0.0;
                        }
                    }
                    Some(t)
                }
                None => {
                    if matches!(scheme, Scheme::KgwGumbel { .. }) {
                        m.bias(context, scores);
                    }
                    None
                }
            },
        }
    }
}

#[cfg(test)]
mod tests;
