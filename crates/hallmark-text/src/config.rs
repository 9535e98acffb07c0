//! The scheme and its parameters, and the one-line header that names them (so a detector
//! cannot drift from the generator).

use crate::Error;

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
    pub(crate) fn green(self) -> Option<(f64, f32)> {
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
