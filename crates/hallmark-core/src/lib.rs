//! Shared building blocks of hallmark's marks: watermark keys and their public IDs, the 64-bit
//! payload, the error-correcting code that carries it, and exact p-value helpers.
//!
//! This crate knows nothing about pixels, tokens or C2PA, and does no I/O.
//!
//! ```
//! use hallmark_core::{Payload, WatermarkKey};
//!
//! let key = WatermarkKey::from_bytes([7u8; 32]);
//! let payload: Payload = "00000000deadbeef".parse()?;
//! // The key ID is public and safe to print; the key itself never is.
//! assert_eq!(key.id().to_string().len(), 16);
//! assert!(!format!("{key:?}").contains("0707"));
//! let coded = hallmark_core::ecc::encode(&key, payload);
//! let soft: Vec<f32> = coded.iter().map(|&b| if b { 1.0 } else { -1.0 }).collect();
//! assert_eq!(hallmark_core::ecc::decode(&key, &soft).map(|d| d.payload), Some(payload));
//! # Ok::<(), hallmark_core::Error>(())
//! ```
#![deny(missing_docs)]

pub mod ecc;
#[cfg(test)]
mod format_tests;
mod key;
mod payload;
pub mod stats;
mod stream;

pub use key::{KeyId, WatermarkKey};
pub use payload::Payload;
pub use stream::KeyStream;

/// Errors from parsing keys and payloads.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A value given by the caller is malformed (bad hex, wrong length, unknown header).
    #[error("invalid {what}: {why}")]
    Parameter {
        /// What was being parsed.
        what: &'static str,
        /// Why it was rejected.
        why: String,
    },
}

impl Error {
    pub(crate) fn param(what: &'static str, why: impl Into<String>) -> Self {
        Error::Parameter {
            what,
            why: why.into(),
        }
    }
}
