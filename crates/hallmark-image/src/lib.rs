//! hallmark's invisible image watermark: keyed, carrying a 64-bit payload, found again after
//! JPEG/WebP compression, resizing, cropping, rotation, flips, noise, blur and colour changes.
//!
//! The mark lives in the luminance of decoded pixels. Pure functions over pixel buffers: no
//! file I/O, no decoding, no global state beyond a per-thread cache of scratch buffers
//! (see [`release_scratch`]).
//!
//! # How it works
//! * **Layout.** Two keyed patterns are added to the luminance. A *pilot*: 8 gratings
//!   repeating every 8 chips (a quarter of the mark's energy), which synchronises. A *data
//!   tile* of 32x32 chips (smooth bumps, bilinearly interpolated), each carrying one of the 312
//!   coded bits (64 payload bits + a 32-bit keyed check, rate-1/3 convolutional code, see
//!   [`hallmark_core::ecc`]) times a keyed +-1 sign. Both repeat over the whole image on a
//!   working copy whose short side is at most 512 px, with 3-px chips, so resizing the whole
//!   image leaves the mark at the same relative scale. Below a 384 px short side the mark
//!   shrinks with the image (to 1.5-px chips at 192 px), so thumbnails still carry it.
//! * **Masking.** The strength follows local texture: flat areas (sky, walls) get a fifth of
//!   the average, busy areas up to twice. Informed embedding then gives every coded bit an
//!   amplitude that cancels most of the picture's own push on it. A global gain sets the mean
//!   squared change to [`EmbedParams::target_psnr`], lowered where needed so that the SSIM
//!   the embedder predicts (an exact per-window model) stays at or above
//!   [`EmbedParams::min_ssim`].
//! * **Synchronisation.** The detector first decodes at the embedding geometry (most files
//!   arrive untouched; [`Detector::detect_untouched`] does only this). Otherwise: the pilot's
//!   gratings are lines in the spectrum whose spacing and
//!   angle give scale, rotation and aspect change. The detector folds the high-passed image
//!   modulo that lattice into one tile, finds the translation (and which of the 8
//!   flips/quarter-turns applies) by FFT cross-correlation with the pilot, and, when decoding
//!   fails, refines the lattice on the pilot's and then the data chips' coherence; when no
//!   lattice decodes, it tries the unscaled, unrotated one in the orientation the pilot
//!   prefers. Data chips are read from the normalised residual, then from an
//!   inverse-variance-weighted copy (what crops need).
//! * **Decision.** The payload is accepted only if its 32-bit keyed check matches. An unmarked
//!   image passes one decoding attempt with probability 2^-32; the detector counts its attempts
//!   and reports `attempts * 2^-32` as the p-value bound, so the false-positive rate is a
//!   property of the construction, not of a tuned threshold.
//!
//! ```
//! use hallmark_core::{Payload, WatermarkKey};
//! use hallmark_image::{Detector, EmbedParams, ImageMark};
//!
//! let key = WatermarkKey::from_bytes([1; 32]);
//! let photo = include_bytes!("../../../testdata/photos/p06_seeding_1920x1080.jpg");
//! let mut img = image::load_from_memory(photo).expect("test photo").to_rgb8();
//! let mark = ImageMark::new(&key, EmbedParams::default());
//! let report = mark.embed(&mut img, Payload(0x1234_5678_9abc_def0))?;
//! assert!(report.psnr > 40.0);
//! let found = Detector::new(&key).detect(&image::DynamicImage::ImageRgb8(img));
//! assert_eq!(found.payload, Some(Payload(0x1234_5678_9abc_def0)));
//! # Ok::<(), hallmark_image::Error>(())
//! ```
#![deny(missing_docs)]

mod detect;
mod embed;
#[cfg(test)]
mod format_tests;
mod geometry;
mod pattern;
mod plane;
mod regions;
mod ssim;
mod tile;

pub use detect::{Detection, Detector, MAX_ATTEMPTS, Search, Transform};
pub use embed::{EmbedParams, EmbedReport, ImageMark};
pub use regions::{PARTIAL_BOX_SHARE, RegionBox, Regions};

/// Frees the scratch buffers this thread keeps between calls, and returns how many bytes
/// that was.
///
/// Embedding works on planes of up to ~600k pixels (2.4 MB each, about ten at a time).
/// Their buffers are kept per thread (at most 16 buffers, 48 MB; about 24-30 MB after a
/// large image) so the next call reuses them instead of faulting in fresh pages from the
/// system, which measured a third of a 1080p embedding's time. Detection reuses what is
/// kept but keeps nothing itself. A thread that is done with images can hand them back.
pub fn release_scratch() -> usize {
    plane::scratch::release()
}

/// Bytes of scratch buffers this thread keeps between calls (see [`release_scratch`]).
pub fn scratch_held() -> usize {
    plane::scratch::held()
}

/// The name recorded as the `alg` of a C2PA soft-binding assertion for this watermark. Its
/// last component is [`FORMAT_VERSION`].
pub const SOFT_BINDING_ALG: &str = "io.github.hallmark.image-watermark.v1";

/// Version of the mark's format: the key stream, tile layout, pilot, payload code and keyed
/// check that an issued mark was made with. Frozen by known-answer tests and by committed
/// marked images that every release must read (`testdata/marks`); a change to any of them
/// is a new version, which detectors must read alongside the old ones
/// (`docs/image-format.md`).
pub const FORMAT_VERSION: u32 = 1;

/// Errors from embedding.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The image is too small to carry the mark.
    #[error("image is {width}x{height}; the watermark needs at least {min}x{min} pixels")]
    TooSmall {
        /// Width of the image.
        width: u32,
        /// Height of the image.
        height: u32,
        /// Minimum side.
        min: u32,
    },
    /// A parameter is out of range.
    #[error("invalid parameter: {0}")]
    Parameter(String),
}

/// Smallest side of an image that can carry the mark (two tiles of 128 px).
pub const MIN_SIDE: u32 = 128;
