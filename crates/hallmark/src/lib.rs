//! hallmark: label AI-generated content honestly and durably, and check labels.
//!
//! This is the one dependency a generation pipeline needs. It composes the three marks:
//! the invisible image watermark ([`hallmark_image`]), the signed C2PA manifest
//! ([`hallmark_c2pa`]) and the statistical text watermark ([`hallmark_text`]), over bytes
//! in memory. It reads no environment variables and opens no files, except the keys folder
//! [`keys::Keys::load`] is pointed at; the `hallmark` CLI does the rest.
//!
//! Keys, stamp, verify:
//!
//! ```
//! use hallmark::c2pa::{CertOptions, SigningCredential, TrustSettings, generate};
//! use hallmark::{Stamper, Verdict, Verifier, WatermarkKey, stamp, verify};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // Keys: a watermark key and a C2PA signing chain, made here in memory. A folder that
//! // `hallmark keygen` wrote is one call: `hallmark::keys::Keys::load(dir)?.stamper()`.
//! let watermark = WatermarkKey::generate();
//! let chain = generate(&CertOptions::default())?;
//! let signer = SigningCredential::from_pem(&chain.chain_pem, &chain.key_pem)?;
//!
//! // An image as a pipeline has it: encoded bytes.
//! let png = include_bytes!("../../../testdata/photos/p02_coffee_600x400.png");
//!
//! // Stamp: watermark (a fresh 64-bit ID) and sign, in one pass.
//! let stamped = stamp(png, &Stamper::new(&watermark, signer), None)?;
//!
//! // Verify, trusting the chain's CA: one verdict, with its reasons.
//! let trust = TrustSettings { anchors_pem: Some(chain.ca_pem.clone()), ..Default::default() };
//! let report = verify(&stamped.bytes, None, &Verifier::new(&[watermark], trust))?;
//! assert_eq!(report.verdict, Verdict::AiGenerated);
//! assert_eq!(report.watermark.and_then(|d| d.payload), Some(stamped.payload));
//!
//! // Bad input is an error value, never a panic.
//! assert!(hallmark::io::decode(b"not an image", &Default::default()).is_err());
//! # Ok(())
//! # }
//! ```
#![deny(missing_docs)]

mod error;
pub mod io;
pub mod keys;
pub mod ledger;
mod stamp;
mod verify;

pub use stamp::{
    CORNER_CHECK_MIN_PIXELS, Checks, MarkRequest, MarkedFile, MarkedPixels, Stamped, Stamper,
    mark_encoded, mark_pixels, read_back, stamp, stamp_as, survives_webp, webp_corner_snr,
    webp_corner_survives, webp_whole_survives,
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
