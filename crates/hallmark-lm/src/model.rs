//! A quantized llama-family model in a GGUF file, run on the CPU with candle.

use std::io::Cursor;
use std::path::Path;
use std::time::Instant;

use candle_core::quantized::{GgmlDType, QTensor, gguf_file};
use candle_core::{Device, Tensor};
use candle_transformers::models::quantized_llama::ModelWeights;
use hallmark_text::Sampler;

use crate::{Error, TextTokenizer};

/// How to load a model.
#[derive(Clone, Copy, Debug)]
pub struct LoadOptions {
    /// Expand quantized weights to f32 at load. candle has no SIMD kernel for some quantized
    /// types (Q4_1 runs at ~2.5 tokens/s here, ~18 after expansion), at the cost of about 4x
    /// the file size in memory.
    pub dequantize: bool,
}

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions { dequantize: true }
    }
}

/// A loaded model with its tokenizer.
pub struct Model {
    weights: ModelWeights,
    tokenizer: TextTokenizer,
    context_length: usize,
    device: Device,
}

impl std::fmt::Debug for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Model")
            .field("tokenizer", &self.tokenizer)
            .field("context_length", &self.context_length)
            .finish_non_exhaustive()
    }
}

/// Generation settings.
#[derive(Clone, Copy, Debug)]
pub struct GenerateOptions {
    /// Upper bound on generated tokens (generation also stops at an end-of-text token).
    pub max_tokens: usize,
    /// End-of-text tokens are masked until this many tokens are generated (0: never masked).
    pub min_tokens: usize,
    /// Sampling temperature (> 0).
    pub temperature: f32,
    /// Seed of the sampler's random numbers (KGW and unwatermarked sampling use them).
    pub seed: u64,
}

/// What a generation produced.
#[derive(Clone, Debug)]
pub struct Generation {
    /// Prompt token ids (after the chat template).
    pub prompt_ids: Vec<u32>,
    /// Generated token ids (end-of-text excluded).
    pub ids: Vec<u32>,
    /// The generated text.
    pub text: String,
    /// Negative log-likelihood (nats) of each generated token under the unmodified model at
    /// temperature 1: the perplexity of the output as the same model scores it.
    pub nll: Vec<f64>,
    /// Time in the model's forward passes, milliseconds.
    pub model_ms: f64,
    /// Time in the sampler (watermark included), milliseconds.
    pub sampler_ms: f64,
}

impl Generation {
    /// Perplexity of the generated tokens under the model.
    pub fn perplexity(&self) -> f64 {
        if self.nll.is_empty() {
            return f64::NAN;
        }
        (self.nll.iter().sum::<f64>() / self.nll.len() as f64).exp()
    }
}

fn model_err(path: &Path) -> impl Fn(candle_core::Error) -> Error + '_ {
    move |e| Error::Model(format!("{}: {}", path.display(), crate::candle_msg(&e)))
}

impl Model {
    /// Loads a GGUF model (llama architecture) and the tokenizer in its metadata.
    ///
    /// # Errors
    /// [`Error::Io`] if the file cannot be read, [`Error::Model`] if it is not a usable GGUF
    /// llama model, [`Error::Tokenizer`] if its tokenizer cannot be rebuilt.
    pub fn load(path: &Path, opts: LoadOptions) -> Result<Self, Error> {
        let file = std::fs::File::open(path).map_err(|source| Error::Io {
            what: format!("cannot open {}", path.display()),
            source,
        })?;
        let mut reader = std::io::BufReader::new(file);
        let ct = gguf_file::Content::read(&mut reader).map_err(|e| {
            Error::Model(format!(
                "{} is not a readable GGUF file: {}",
                path.display(),
                crate::candle_msg(&e)
            ))
        })?;
        let arch = ct
            .metadata
            .get("general.architecture")
            .and_then(|v| v.to_string().ok())
            .cloned()
            .unwrap_or_default();
        if arch != "llama" {
            return Err(Error::Model(format!(
                "{}: architecture {arch:?} is not supported (llama only)",
                path.display()
            )));
        }
        let tokenizer = TextTokenizer::from_gguf(&ct)?;
        let context_length = ct
            .metadata
            .get("llama.context_length")
            .and_then(|v| v.to_u32().ok())
            .map_or(2048, |v| v as usize);
        let device = Device::Cpu;
        let err = model_err(path);
        let weights = if opts.dequantize && has_quantized(&ct) {
            let buf = expand_to_f32(&ct, &mut reader, &device).map_err(&err)?;
            let mut cur = Cursor::new(buf);
            let ct2 = gguf_file::Content::read(&mut cur).map_err(&err)?;
            ModelWeights::from_gguf(ct2, &mut cur, &device).map_err(&err)?
        } else {
            ModelWeights::from_gguf(ct, &mut reader, &device).map_err(&err)?
        };
        Ok(Model {
            weights,
            tokenizer,
            context_length,
            device,
        })
    }

    /// The model's tokenizer.
    pub fn tokenizer(&self) -> &TextTokenizer {
        &self.tokenizer
    }

    /// Applies the model's chat template (from its GGUF metadata; ChatML when it has none but
    /// has ChatML's tokens; nothing for a plain completion model, or with `raw`) and
    /// tokenizes.
    ///
    /// # Errors
    /// [`Error::Tokenizer`] if the template does not render or tokenization fails.
    pub fn prompt_ids(&self, prompt: &str, raw: bool) -> Result<Vec<u32>, Error> {
        let text = if raw {
            None
        } else {
            self.tokenizer.chat_prompt(prompt)?
        };
        self.tokenizer
            .encode_prompt(text.as_deref().unwrap_or(prompt))
    }

    /// Generates from `prompt_ids` with `sampler` (which carries the watermark, if any).
    /// The model's KV cache is reset first, so calls are independent.
    ///
    /// # Errors
    /// [`Error::Input`] for an empty prompt or one that leaves no room in the context window;
    /// [`Error::Model`] if a forward pass fails.
    pub fn generate(
        &mut self,
        prompt_ids: &[u32],
        opts: &GenerateOptions,
        sampler: &mut Sampler,
    ) -> Result<Generation, Error> {
        if prompt_ids.is_empty() {
            return Err(Error::Input("the prompt is empty".into()));
        }
        if prompt_ids.len() + 1 >= self.context_length {
            return Err(Error::Input(format!(
                "the prompt has {} tokens; the model's context is {}",
                prompt_ids.len(),
                self.context_length
            )));
        }
        let max_new = opts
            .max_tokens
            .min(self.context_length - prompt_ids.len() - 1);
        let err = |e: candle_core::Error| Error::Model(crate::candle_msg(&e));
        let mut seq: Vec<u32> = prompt_ids.to_vec();
        let mut ids = vec![];
        let mut nll = vec![];
        let (mut model_ms, mut sampler_ms) = (0.0, 0.0);
        let mut pos = 0;
        for _ in 0..max_new {
            let t0 = Instant::now();
            let input = Tensor::new(&seq[pos..], &self.device)
                .and_then(|t| t.unsqueeze(0))
                .map_err(err)?;
            let mut logits = self
                .weights
                .forward(&input, pos)
                .and_then(|l| l.squeeze(0))
                .and_then(|l| l.to_vec1::<f32>())
                .map_err(err)?;
            let lse = log_sum_exp(&logits);
            if ids.len() < opts.min_tokens {
                for &e in self.tokenizer.eos() {
                    if let Some(l) = logits.get_mut(e as usize) {
                        *l = f32::NEG_INFINITY;
                    }
                }
            }
            pos = seq.len();
            let t1 = Instant::now();
            let next = sampler.next(&seq, &logits, opts.temperature);
            sampler_ms += t1.elapsed().as_secs_f64() * 1e3;
            model_ms += (t1 - t0).as_secs_f64() * 1e3;
            if self.tokenizer.eos().contains(&next) {
                break;
            }
            nll.push(
                lse - logits
                    .get(next as usize)
                    .map_or(f64::INFINITY, |&l| f64::from(l)),
            );
            seq.push(next);
            ids.push(next);
        }
        let text = self.tokenizer.decode(&ids)?;
        Ok(Generation {
            prompt_ids: prompt_ids.to_vec(),
            ids,
            text,
            nll,
            model_ms,
            sampler_ms,
        })
    }
}

fn log_sum_exp(logits: &[f32]) -> f64 {
    let m = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let z: f64 = logits.iter().map(|&l| f64::from(l - m).exp()).sum();
    z.ln() + f64::from(m)
}

fn has_quantized(ct: &gguf_file::Content) -> bool {
    ct.tensor_infos.values().any(|t| {
        !matches!(
            t.ggml_dtype,
            GgmlDType::F32 | GgmlDType::F16 | GgmlDType::BF16
        )
    })
}

/// Rewrites the model in memory with every tensor as f32 (candle then runs plain f32 matmuls).
fn expand_to_f32<R: std::io::Read + std::io::Seek>(
    ct: &gguf_file::Content,
    reader: &mut R,
    device: &Device,
) -> candle_core::Result<Vec<u8>> {
    let mut names: Vec<&String> = ct.tensor_infos.keys().collect();
    names.sort();
    let mut tensors: Vec<(String, QTensor)> = Vec::with_capacity(names.len());
    for name in names {
        let q = ct.tensor(reader, name, device)?;
        let q = match q.dtype() {
            GgmlDType::F32 => q,
            _ => QTensor::quantize(&q.dequantize(device)?, GgmlDType::F32)?,
        };
        tensors.push((name.clone(), q));
    }
    let metadata: Vec<(&str, &gguf_file::Value)> =
        ct.metadata.iter().map(|(k, v)| (k.as_str(), v)).collect();
    let refs: Vec<(&str, &QTensor)> = tensors.iter().map(|(n, t)| (n.as_str(), t)).collect();
    let mut out = Cursor::new(Vec::new());
    gguf_file::write(&mut out, &metadata, &refs)?;
    Ok(out.into_inner())
}
