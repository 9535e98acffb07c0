//! hallmark's invisible image watermark: keyed, carrying a 64-bit payload, found again after
//! JPEG/WebP compression, resizing, cropping, rotation, flips, noise, blur and colour changes.
//!
//! The mark lives in the luminance of decoded pixels. Pure functions over pixel buffers: no
//! file I/O, no decoding, no global state.
//!
//! # How it works
//! * **Tile.** A square tile of 32x32 *chips* (smooth bumps, bilinearly interpolated): a quarter
//!   are a keyed pilot, the rest carry the payload (64 bits + 32-bit keyed check, rate-1/3
//!   convolutional code, see [`hallmark_core::ecc`]), each chip multiplied by a keyed +-1
//!   sequence. The tile repeats over the whole image, and its size is tied to the image's
//!   short side (4 chips per pixel of a 512-px working copy), so resizing the whole image
//!   leaves the mark at the same relative scale and the detector can work on a small copy.
//! * **Masking.** The strength follows local texture: flat areas (sky, walls) get a fifth of
//!   the average, busy areas up to twice; a global gain then sets the mean squared change, so
//!   PSNR is fixed by [`EmbedParams::target_psnr`] rather than by the picture.
//! * **Synchronisation.** Repetition makes the mark's autocorrelation a lattice of peaks whose
//!   spacing and angle give scale, rotation and aspect change (Kutter's self-reference). The
//!   detector folds the high-passed image modulo that lattice into one tile, then finds the
//!   translation (and which of the 8 flips/quarter-turns applies) by FFT cross-correlation with
//!   the pilot.
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
mod geometry;
mod pattern;
mod plane;
mod ssim;

pub use detect::{Detection, Detector, Transform};
pub use embed::{EmbedParams, EmbedReport, ImageMark};

/// The name recorded as the `alg` of a C2PA soft-binding assertion for this watermark.
pub const SOFT_BINDING_ALG: &str = "io.github.hallmark.image-watermark.v1";

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
