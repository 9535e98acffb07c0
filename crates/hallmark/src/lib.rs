//! hallmark: label AI-generated content honestly and durably, and check labels.
//!
//! This is the one dependency a generation pipeline needs. It composes the three marks:
//! the invisible image watermark ([`hallmark_image`]), the signed C2PA manifest
//! ([`hallmark_c2pa`]) and the statistical text watermark ([`hallmark_text`]), over bytes
//! in memory. It never opens files or reads environment variables; the `hallmark` CLI does.
//!
//! ```
//! use hallmark::io::{Limits, decode};
//! // Bad input is an error value, never a panic.
//! assert!(decode(b"not an image", &Limits::default()).is_err());
//! ```
#![deny(missing_docs)]

mod error;
pub mod io;
pub mod ledger;
mod stamp;
mod verify;

pub use stamp::{
    Checks, MarkRequest, MarkedFile, MarkedPixels, Stamped, Stamper, mark_encoded, mark_pixels,
    read_back, stamp, stamp_as, survives_webp, webp_corner_snr, webp_corner_survives,
    webp_whole_survives,
};
pub use verify::{
    Candidate, Consistency, Outcome, REPORT_SCHEMA, Recovery, Report, Verdict, Verifier,
    bound_watermark, detect_any, recover, verify,
};

pub use hallmark_c2pa as c2pa;
pub use hallmark_core::{KeyId, Payload, WatermarkKey};
pub use hallmark_image as image_mark;
pub use hallmark_text as text;

pub use error::{Error, ErrorCode};
