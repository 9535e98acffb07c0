//! Image decoding and encoding over bytes in memory, with limits, metadata carried through,
//! and JPEG quality estimated from the input's quantization tables.
//!
//! The facade never opens files: callers (the CLI, a pipeline) read and write bytes, and
//! write atomically on their side.

use std::io::Cursor;

use image::{DynamicImage, ImageDecoder, ImageFormat};

use crate::Error;

mod damage;

/// Decoding limits. A decompression bomb or an absurd header is refused from the header's
/// dimensions, before any large allocation happens.
///
/// The memory a whole stamp or verification needs grows with the pixel count (working
/// copies, the encoded output, the read-back and WebP checks) and with the size of the
/// decoded image (16-bit and alpha images are carried through at their depth). From
/// `/usr/bin/time -v` runs of `hallmark stamp` on 12-48 MP 8-bit photos and a 30 MP 16-bit
/// RGBA PNG (docs/reliability.md), the peak stays under [`PEAK_BYTES_PER_PIXEL`] bytes per
/// pixel plus [`PEAK_PER_DECODED_BYTE_X10`]/10 bytes per decoded byte; an image whose
/// estimate exceeds `max_memory` is refused before decoding.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Maximum width in pixels (default 16384).
    pub max_width: u32,
    /// Maximum height in pixels (default 16384).
    pub max_height: u32,
    /// Maximum bytes the decoder may allocate for the decoded image (default a third of
    /// `max_memory`).
    pub max_alloc: u64,
    /// Maximum pixel count, width x height (default: no limit beyond `max_memory`).
    pub max_pixels: u64,
    /// The peak-memory budget the estimate above is held to (default 1 GiB): about 53
    /// megapixels for an 8-bit RGB photo, 29 for 16-bit RGBA.
    pub max_memory: u64,
}

/// Peak bytes per pixel of the most demanding whole operation, besides the decoded image's
/// own copies (see [`Limits`]).
pub const PEAK_BYTES_PER_PIXEL: u64 = 10;

/// Peak bytes per byte of the decoded image, times ten (see [`Limits`]).
pub const PEAK_PER_DECODED_BYTE_X10: u64 = 34;

impl Limits {
    /// Limits for a peak-memory budget of `bytes`.
    pub fn with_memory(bytes: u64) -> Self {
        Limits {
            max_width: 65535,
            max_height: 65535,
            max_alloc: bytes / 3,
            max_pixels: u64::MAX,
            max_memory: bytes,
        }
    }

    /// The estimated peak memory of processing an image of `pixels` pixels that decodes to
    /// `decoded_bytes` bytes.
    pub fn estimate(pixels: u64, decoded_bytes: u64) -> u64 {
        pixels
            .saturating_mul(PEAK_BYTES_PER_PIXEL)
            .saturating_add(decoded_bytes.saturating_mul(PEAK_PER_DECODED_BYTE_X10) / 10)
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_width: 16384,
            max_height: 16384,
            ..Limits::with_memory(1 << 30)
        }
    }
}

/// Raster formats hallmark reads and writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// JPEG (JFIF/EXIF).
    Jpeg,
    /// PNG.
    Png,
    /// WebP (written lossless).
    WebP,
    /// TIFF.
    Tiff,
    /// GIF (read and signed; not re-encoded with a watermark, palette quantisation would
    /// erase it).
    Gif,
}

impl Format {
    /// Why a watermarked image cannot be written in this format, if it cannot: GIF's
    /// palette quantisation would erase the mark. The one place this rule lives.
    pub fn watermark_refusal(self) -> Option<&'static str> {
        match self {
            Format::Gif => Some(
                "GIF cannot carry the watermark (palette quantisation erases it); convert to PNG, or use `hallmark sign` for a manifest alone",
            ),
            Format::Jpeg | Format::Png | Format::WebP | Format::Tiff => None,
        }
    }

    /// The MIME type.
    pub fn mime(self) -> &'static str {
        match self {
            Format::Jpeg => "image/jpeg",
            Format::Png => "image/png",
            Format::WebP => "image/webp",
            Format::Tiff => "image/tiff",
            Format::Gif => "image/gif",
        }
    }

    /// The usual file extension.
    pub fn extension(self) -> &'static str {
        match self {
            Format::Jpeg => "jpg",
            Format::Png => "png",
            Format::WebP => "webp",
            Format::Tiff => "tif",
            Format::Gif => "gif",
        }
    }

    /// The format a file name's extension names (`jpg`, `jpeg`, `png`, `webp`, `tif`,
    /// `tiff`, `gif`, any case), if any.
    pub fn from_extension(ext: &str) -> Option<Format> {
        Some(match ext.to_ascii_lowercase().as_str() {
            "jpg" | "jpeg" | "jpe" | "jfif" => Format::Jpeg,
            "png" => Format::Png,
            "webp" => Format::WebP,
            "tif" | "tiff" => Format::Tiff,
            "gif" => Format::Gif,
            _ => return None,
        })
    }

    /// Recognises a format from the first bytes of a file (never from its name).
    pub fn sniff(bytes: &[u8]) -> Option<Format> {
        match image::guess_format(bytes).ok()? {
            ImageFormat::Jpeg => Some(Format::Jpeg),
            ImageFormat::Png => Some(Format::Png),
            ImageFormat::WebP => Some(Format::WebP),
            ImageFormat::Tiff => Some(Format::Tiff),
            ImageFormat::Gif => Some(Format::Gif),
            _ => None,
        }
    }

    fn image_format(self) -> ImageFormat {
        match self {
            Format::Jpeg => ImageFormat::Jpeg,
            Format::Png => ImageFormat::Png,
            Format::WebP => ImageFormat::WebP,
            Format::Tiff => ImageFormat::Tiff,
            Format::Gif => ImageFormat::Gif,
        }
    }
}

/// JPEG chroma subsampling.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
pub enum Subsampling {
    /// Full-resolution chroma.
    #[serde(rename = "4:4:4")]
    S444,
    /// Half horizontal chroma.
    #[serde(rename = "4:2:2")]
    S422,
    /// Half horizontal and vertical chroma.
    #[serde(rename = "4:2:0")]
    S420,
}

/// A decoded image with what is needed to write it back faithfully.
#[derive(Clone, Debug)]
pub struct Decoded {
    /// The pixels, in stored orientation (the EXIF orientation is kept, not applied, so the
    /// written file displays the same way).
    pub image: DynamicImage,
    /// The container format.
    pub format: Format,
    /// The embedded ICC profile, if any.
    pub icc: Option<Vec<u8>>,
    /// The raw EXIF block, if any.
    pub exif: Option<Vec<u8>>,
    /// For JPEG: the quality estimated from the luminance quantization table.
    pub jpeg_quality: Option<u8>,
    /// For JPEG: the chroma subsampling of the input.
    pub jpeg_subsampling: Option<Subsampling>,
}

/// Decodes an image from bytes, refusing damaged data.
///
/// # Errors
/// [`Error::Decode`] for empty, truncated, damaged, corrupt or unsupported data,
/// [`Error::TooLarge`] for images over the [`Limits`]; the message is one line and says which. Damage that decoders
/// usually paper over with grey (a JPEG scan that ends early, a header declaring more
/// pixels than the data holds, an empty TIFF strip, a truncated GIF frame) is an error here.
pub fn decode(bytes: &[u8], limits: &Limits) -> Result<Decoded, Error> {
    let (d, damage) = decode_lenient(bytes, limits)?;
    match damage {
        Some(why) => Err(Error::Decode(why)),
        None => Ok(d),
    }
}

/// Decodes an image from bytes as far as its data goes, and says what is damaged: for
/// verifiers, which should still look at what is there and report the damage.
///
/// # Errors
/// [`Error::Decode`] when nothing usable can be decoded (empty, corrupt beyond reading,
/// unsupported), [`Error::TooLarge`] when the image is over the [`Limits`].
pub fn decode_lenient(bytes: &[u8], limits: &Limits) -> Result<(Decoded, Option<String>), Error> {
    if bytes.is_empty() {
        return Err(Error::Decode("the file is empty".into()));
    }
    let format = Format::sniff(bytes).ok_or_else(|| {
        Error::Decode("not a supported image (hallmark reads JPEG, PNG, WebP, TIFF and GIF)".into())
    })?;
    let mut damage = None;
    if format == Format::Jpeg && !jpeg_complete(bytes) {
        damage = Some("the JPEG is truncated (its image data has no end marker)".to_string());
    }
    let mut reader = image::ImageReader::with_format(Cursor::new(bytes), format.image_format());
    let mut l = image::Limits::default();
    l.max_image_width = Some(limits.max_width);
    l.max_image_height = Some(limits.max_height);
    l.max_alloc = Some(limits.max_alloc);
    reader.limits(l);
    let mut decoder = reader.into_decoder().map_err(decode_error)?;
    let (w, h) = decoder.dimensions();
    if w == 0 || h == 0 {
        return Err(Error::Decode("the image has no pixels".into()));
    }
    if w > limits.max_width || h > limits.max_height {
        return Err(Error::TooLarge(format!(
            "image is {w}x{h}, over the limit of {}x{} pixels",
            limits.max_width, limits.max_height
        )));
    }
    let pixels = u64::from(w) * u64::from(h);
    if pixels > limits.max_pixels {
        return Err(Error::TooLarge(format!(
            "image is {w}x{h} ({:.1} megapixels), over the limit of {:.1} megapixels",
            pixels as f64 / 1e6,
            limits.max_pixels as f64 / 1e6
        )));
    }
    let estimate = Limits::estimate(pixels, decoder.total_bytes());
    if decoder.total_bytes() > limits.max_alloc || estimate > limits.max_memory {
        return Err(Error::TooLarge(format!(
            "image is {w}x{h} with {} bytes per pixel: processing it would take about {} MiB, over the memory limit of {} MiB",
            decoder.color_type().bytes_per_pixel(),
            estimate >> 20,
            limits.max_memory >> 20
        )));
    }
    let icc = decoder.icc_profile().ok().flatten();
    let exif = decoder.exif_metadata().ok().flatten();
    let image = match format {
        // The JPEG decoder is run strict first: it then reports a scan that ends early
        // instead of filling the rest with grey. Only damage to the image data counts as
        // damage; strict-mode complaints about harmless oddities fall back to the usual
        // lenient decoding.
        Format::Jpeg => {
            let img = match damage::jpeg_strict(bytes) {
                Ok(img) => img,
                Err(strict) => {
                    if damage.is_none() {
                        damage = strict;
                    }
                    DynamicImage::from_decoder(decoder).map_err(decode_error)?
                }
            };
            // A scan that stops at an early end marker decodes without complaint even
            // in strict mode: count its blocks against the header.
            if damage.is_none()
                && let Err(why) = damage::jpeg_scans_complete(bytes)
            {
                damage = Some(why);
            }
            img
        }
        _ => {
            if let Some(why) = damage::check(format, bytes) {
                damage = Some(why);
            }
            DynamicImage::from_decoder(decoder).map_err(decode_error)?
        }
    };
    let (jpeg_quality, jpeg_subsampling) = if format == Format::Jpeg {
        jpeg_tables(bytes)
    } else {
        (None, None)
    };
    Ok((
        Decoded {
            image,
            format,
            icc,
            exif,
            jpeg_quality,
            jpeg_subsampling,
        },
        damage,
    ))
}

fn decode_error(e: image::ImageError) -> Error {
    use image::ImageError as E;
    if let E::Limits(l) = e {
        return Error::TooLarge(format!(
            "refused: the image exceeds the decoding limits ({l})"
        ));
    }
    match e {
        E::Unsupported(u) => Error::Decode(format!("unsupported image: {u}")),
        E::IoError(io) if io.kind() == std::io::ErrorKind::UnexpectedEof => {
            Error::Decode("the image is truncated".to_string())
        }
        other => Error::Corrupt(other),
    }
}

/// Options for [`encode`].
#[derive(Clone, Copy, Debug, Default)]
pub struct EncodeOptions {
    /// JPEG quality to write; default: the input's estimated quality, else 92.
    pub jpeg_quality: Option<u8>,
}

/// Encodes pixels in `meta.format`, carrying ICC and EXIF across where the format allows.
///
/// # Errors
/// [`Error::Encoder`] when the encoder fails, [`Error::Encode`] when the format cannot hold
/// these pixels.
pub fn encode(image: &DynamicImage, meta: &Decoded, opts: EncodeOptions) -> Result<Vec<u8>, Error> {
    let enc_err = |e: jpeg_encoder::EncodingError| Error::Encoder(Box::new(e));
    let mut out = Vec::new();
    match meta.format {
        Format::Jpeg => {
            let q = opts
                .jpeg_quality
                .or(meta.jpeg_quality)
                .unwrap_or(92)
                .clamp(1, 100);
            let mut enc = jpeg_encoder::Encoder::new(&mut out, q);
            enc.set_sampling_factor(match meta.jpeg_subsampling {
                Some(Subsampling::S444) => jpeg_encoder::SamplingFactor::F_1_1,
                Some(Subsampling::S422) => jpeg_encoder::SamplingFactor::F_2_1,
                _ => jpeg_encoder::SamplingFactor::F_2_2,
            });
            // Standard Huffman tables: optimised ones save ~5% of bytes but double the encode time.
            enc.set_optimized_huffman_tables(false);
            if let Some(icc) = &meta.icc {
                enc.add_icc_profile(icc).map_err(enc_err)?;
            }
            if let Some(exif) = &meta.exif {
                let raw = exif.strip_prefix(b"Exif\0\0").unwrap_or(exif);
                enc.add_exif_metadata(raw).map_err(enc_err)?;
            }
            let (w, h) = (image.width(), image.height());
            let (w16, h16) = (
                u16::try_from(w)
                    .map_err(|_| Error::Encode("JPEG is limited to 65535 pixels a side".into()))?,
                u16::try_from(h)
                    .map_err(|_| Error::Encode("JPEG is limited to 65535 pixels a side".into()))?,
            );
            match image {
                DynamicImage::ImageLuma8(g) => enc
                    .encode(g.as_raw(), w16, h16, jpeg_encoder::ColorType::Luma)
                    .map_err(enc_err)?,
                other => {
                    let rgb = other.to_rgb8();
                    enc.encode(rgb.as_raw(), w16, h16, jpeg_encoder::ColorType::Rgb)
                        .map_err(enc_err)?
                }
            }
        }
        Format::Png => {
            let enc = image::codecs::png::PngEncoder::new_with_quality(
                &mut out,
                image::codecs::png::CompressionType::Default,
                image::codecs::png::FilterType::Adaptive,
            );
            write_with_metadata(enc, image, meta, true)?;
        }
        Format::WebP => {
            let rgba;
            let img = match image {
                DynamicImage::ImageRgb8(_) | DynamicImage::ImageRgba8(_) => image,
                other => {
                    rgba = DynamicImage::ImageRgba8(other.to_rgba8());
                    &rgba
                }
            };
            let enc = image::codecs::webp::WebPEncoder::new_lossless(&mut out);
            write_with_metadata(enc, img, meta, true)?;
        }
        Format::Tiff => {
            let mut cur = Cursor::new(&mut out);
            let enc = image::codecs::tiff::TiffEncoder::new(&mut cur);
            // The TIFF encoder has no EXIF hook; the ICC profile is kept.
            write_with_metadata(enc, image, meta, false)?;
        }
        Format::Gif => {
            return Err(Error::Unsupported(
                "GIF output would quantise the watermark away; convert to PNG first".into(),
            ));
        }
    }
    Ok(out)
}

fn write_with_metadata(
    mut enc: impl image::ImageEncoder,
    image: &DynamicImage,
    meta: &Decoded,
    exif: bool,
) -> Result<(), Error> {
    // Metadata is best effort: an encoder that cannot carry it still writes the pixels.
    if let Some(icc) = &meta.icc {
        let _ = enc.set_icc_profile(icc.clone());
    }
    if exif && let Some(e) = &meta.exif {
        let _ = enc.set_exif_metadata(e.clone());
    }
    enc.write_image(
        image.as_bytes(),
        image.width(),
        image.height(),
        image.color().into(),
    )
    .map_err(|e| Error::Encoder(Box::new(e)))
}

/// Whether a JPEG's last scan is followed by an end-of-image marker. Decoders fill a cut-off
/// scan with grey without complaint; a truncated file must be an error instead.
fn jpeg_complete(bytes: &[u8]) -> bool {
    let Some(sos) = bytes.windows(2).rposition(|w| w == [0xFF, 0xDA]) else {
        return false;
    };
    bytes[sos..].windows(2).any(|w| w == [0xFF, 0xD9])
}

/// Reads the JPEG's luminance quantization table and sampling factors. The quality is the
/// libjpeg quality whose scaled standard table is closest to the file's.
fn jpeg_tables(bytes: &[u8]) -> (Option<u8>, Option<Subsampling>) {
    let mut luma: Option<[u16; 64]> = None;
    let mut sub = None;
    let mut i = 2;
    while i + 4 <= bytes.len() {
        if bytes[i] != 0xFF {
            break;
        }
        let marker = bytes[i + 1];
        if marker == 0xD8 || (0xD0..=0xD7).contains(&marker) || marker == 0x01 {
            i += 2;
            continue;
        }
        if marker == 0xFF {
            i += 1;
            continue;
        }
        let len = usize::from(u16::from_be_bytes([bytes[i + 2], bytes[i + 3]]));
        if len < 2 || i + 2 + len > bytes.len() {
            break;
        }
        let seg = &bytes[i + 4..i + 2 + len];
        match marker {
            0xDB => {
                let mut p = 0;
                while p < seg.len() {
                    let pq = seg[p] >> 4;
                    let tq = seg[p] & 15;
                    let size = if pq == 0 { 64 } else { 128 };
                    if p + 1 + size > seg.len() {
                        break;
                    }
                    if tq == 0 {
                        let mut t = [0u16; 64];
                        for (k, v) in t.iter_mut().enumerate() {
                            *v = if pq == 0 {
                                u16::from(seg[p + 1 + k])
                            } else {
                                u16::from_be_bytes([seg[p + 1 + 2 * k], seg[p + 2 + 2 * k]])
                            };
                        }
                        luma = Some(t);
                    }
                    p += 1 + size;
                }
            }
            0xC0..=0xC3 | 0xC5..=0xC7 | 0xC9..=0xCB | 0xCD..=0xCF => {
                if seg.len() >= 6 + 3 && seg[5] >= 3 {
                    let hv = seg[7];
                    sub = Some(match (hv >> 4, hv & 15) {
                        (2, 2) => Subsampling::S420,
                        (2, 1) => Subsampling::S422,
                        _ => Subsampling::S444,
                    });
                } else if seg.len() >= 6 {
                    sub = Some(Subsampling::S444);
                }
            }
            0xDA => break,
            _ => {}
        }
        i += 2 + len;
    }
    (luma.map(|t| estimate_quality(&t)), sub)
}

/// The standard JPEG luminance table (Annex K), in zig-zag order as stored in DQT.
const STD_LUMA_ZIGZAG: [u16; 64] = [
    16, 11, 12, 14, 12, 10, 16, 14, 13, 14, 18, 17, 16, 19, 24, 40, 26, 24, 22, 22, 24, 49, 35, 37,
    29, 40, 58, 51, 61, 60, 57, 51, 56, 55, 64, 72, 92, 78, 64, 68, 87, 69, 55, 56, 80, 109, 81,
    87, 95, 98, 103, 104, 103, 62, 77, 113, 121, 112, 100, 120, 92, 101, 103, 99,
];

pub(crate) fn estimate_quality(table: &[u16; 64]) -> u8 {
    let mut best = (f64::INFINITY, 92u8);
    for q in 1..=100u32 {
        let scale = if q < 50 { 5000 / q } else { 200 - 2 * q };
        let err: f64 = STD_LUMA_ZIGZAG
            .iter()
            .zip(table)
            .map(|(&b, &t)| {
                let s = ((u32::from(b) * scale + 50) / 100).clamp(1, 255);
                let d = f64::from(s) - f64::from(t);
                d * d
            })
            .sum();
        if err < best.0 {
            best = (err, q as u8);
        }
    }
    best.1
}

#[cfg(test)]
mod tests;
