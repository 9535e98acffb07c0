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

pub use detect::{
    CaseReading, CharSpan, TextDetection, canonical_whitespace, case_readings, detect_text,
    detect_text_keys, read_case, sentence_start_letters,
};
pub use model::{GenerateOptions, Generation, LoadOptions, Model};
pub use tokenizer::{ENCODE_CHUNK, Encoded, TextTokenizer};

/// A candle error as one message: candle appends a captured backtrace to its errors when
/// `RUST_BACKTRACE` is set, which is noise to someone told their file is unreadable.
pub(crate) fn candle_msg(e: &candle_core::Error) -> String {
    let s = e.to_string();
    let mut out: Vec<&str> = vec![];
    for line in s.lines() {
        if line.trim_start().starts_with("0: ") {
            break;
        }
        out.push(line);
    }
    out.join("\n").trim_end().to_string()
}

/// Errors from loading and running models and tokenizers.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A file cannot be read or written: what was being done (with the path), and the
    /// I/O error as the source.
    #[error("{what}")]
    Io {
        /// What failed, such as "cannot open model.gguf".
        what: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
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

#[cfg(test)]
mod tests {
    #[test]
    fn candle_errors_lose_their_backtrace() {
        // Built with a backtrace whatever RUST_BACKTRACE says, as candle builds it when set.
        let e = candle_core::Error::WithBacktrace {
            inner: Box::new(candle_core::Error::Msg("bad file".into())),
            backtrace: Box::new(std::backtrace::Backtrace::force_capture()),
        };
        let with = format!("{e}");
        assert!(
            with.lines().count() > 1,
            "the input carries a backtrace: {with}"
        );
        assert_eq!(super::candle_msg(&e), "bad file");
        let plain = candle_core::Error::Msg("bad file".into());
        assert_eq!(super::candle_msg(&plain), "bad file");
    }
}
