//! A small local language model for hallmark's text watermark: a GGUF llama-family model run
//! on the CPU with candle, its tokenizer (rebuilt from the GGUF metadata with the `tokenizers`
//! crate, or read from a `tokenizer.json`), and a generation loop that samples through
//! [`hallmark_text::Sampler`], where the watermark is applied.
//!
//! [`tiny`] writes a small random model with a byte-level tokenizer, so tests can run the whole
//! path (load, generate, detect) without downloading anything.
#![deny(missing_docs)]

mod detect;
mod model;
pub mod tiny;
mod tokenizer;

pub use detect::{CharSpan, TextDetection, canonical_whitespace, detect_text};
pub use model::{GenerateOptions, Generation, LoadOptions, Model};
pub use tokenizer::{Encoded, TextTokenizer};

/// Errors from loading and running models and tokenizers.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A file cannot be read.
    #[error("{0}")]
    Io(String),
    /// The model file is not a usable GGUF llama model, or a forward pass failed.
    #[error("model: {0}")]
    Model(String),
    /// The tokenizer cannot be built or fails on the input.
    #[error("tokenizer: {0}")]
    Tokenizer(String),
    /// The input cannot be used (empty prompt, too long).
    #[error("{0}")]
    Input(String),
}
