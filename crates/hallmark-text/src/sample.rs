//! Sampling through the watermark: the softmax, the inverse CDF, [`Sampler`] (a generation
//! loop's step) and [`Processor`] (for loops that sample by themselves).

use crate::{Scheme, TextMark, novel};

/// Turns logits into unnormalised probabilities `exp((l - max) / t)` in place; returns their
/// sum. Logits more than 40 / t below the maximum get weight 0.
///
/// This runs once per generated token over the whole vocabulary (50k and more), where a
/// libm `exp` per entry was the sampler's largest cost: [`exp_neg`] is branch-free and the
/// loops vectorise. Relative error below 3e-6 (most of it from rounding `a log2 e` to f32 at
/// a = -40), far under what sampling can notice.
pub(crate) fn softmax_weights(w: &mut [f32], inv_t: f32) -> f32 {
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
pub(crate) fn exp_neg(a: f32) -> f32 {
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
pub(crate) fn inverse_cdf(w: &[f32], z: f32, uniform: f64) -> u32 {
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
    /// [`Config::max_context`](crate::Config::max_context)); when every one repeats, the token is sampled plainly (the
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
///   this text, see [`Config::max_context`](crate::Config::max_context)), it picks the token from the distribution the
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
