//! Damage that decoders paper over. Image decoders are built to show *something* for a
//! broken file: a JPEG scan that ends early is filled with grey, a TIFF strip with no bytes
//! reads as zeros, a truncated animation shows its first frames. A provenance tool must not
//! stamp such a file as if it were whole, nor say "no watermark" without saying why, so each
//! format's damage is looked for here explicitly.

use std::io::Cursor;

use image::DynamicImage;
use zune_core::{bytestream::ZCursor, colorspace::ColorSpace, options::DecoderOptions};
use zune_jpeg::errors::DecodeErrors;

/// Decodes a JPEG in zune-jpeg's strict mode. `Err(Some(why))`: the image data is damaged
/// (ends early, corrupt entropy-coded data). `Err(None)`: strict mode refused something
/// harmless (extra bytes between segments, say); the caller decodes leniently instead.
pub(super) fn jpeg_strict(bytes: &[u8]) -> Result<DynamicImage, Option<String>> {
    let options = DecoderOptions::default()
        .set_strict_mode(true)
        .set_max_width(usize::from(u16::MAX))
        .set_max_height(usize::from(u16::MAX));
    let mut dec = zune_jpeg::JpegDecoder::new_with_options(ZCursor::new(bytes), options);
    dec.decode_headers().map_err(|_| None)?;
    let input = dec.input_colorspace().ok_or(None)?;
    // The same output colour spaces as the image crate's decoder, so pixels are identical.
    let out = match input {
        ColorSpace::RGB | ColorSpace::RGBA | ColorSpace::Luma | ColorSpace::LumaA => input,
        _ => ColorSpace::RGB,
    };
    let opts = dec.options().jpeg_set_out_colorspace(out);
    dec.set_options(opts);
    let (w, h) = dec.dimensions().ok_or(None)?;
    let pixels = dec.decode().map_err(|e| damage_in(&e))?;
    let (w, h) = (
        u32::try_from(w).map_err(|_| None)?,
        u32::try_from(h).map_err(|_| None)?,
    );
    let img = match dec.output_colorspace().unwrap_or(out) {
        ColorSpace::RGB => image::RgbImage::from_raw(w, h, pixels).map(DynamicImage::ImageRgb8),
        ColorSpace::RGBA => {
            image::RgbaImage::from_raw(w, h, pixels).map(DynamicImage::ImageRgba8)
        }
        ColorSpace::Luma => {
            image::GrayImage::from_raw(w, h, pixels).map(DynamicImage::ImageLuma8)
        }
        ColorSpace::LumaA => {
            image::GrayAlphaImage::from_raw(w, h, pixels).map(DynamicImage::ImageLumaA8)
        }
        _ => None,
    };
    img.ok_or(None)
}

/// Whether a strict-mode error says the image data itself is damaged.
fn damage_in(e: &DecodeErrors) -> Option<String> {
    let damaged = match e {
        DecodeErrors::ExhaustedData
        | DecodeErrors::HuffmanDecode(_)
        | DecodeErrors::MCUError(_) => true,
        DecodeErrors::FormatStatic(m) => m.contains("Premature") || m.contains("end of"),
        DecodeErrors::Format(m) => m.contains("Premature") || m.contains("No more bytes"),
        _ => false,
    };
    damaged.then(|| {
        format!(
            "the JPEG's image data is damaged or ends early (the header promises more than the data holds: {e})"
        )
    })
}

/// Damage checks for the formats whose decoders do not report it themselves.
pub(super) fn check(format: super::Format, bytes: &[u8]) -> Option<String> {
    match format {
        super::Format::Tiff => tiff(bytes),
        super::Format::Gif => gif(bytes),
        _ => None,
    }
}

/// A TIFF whose strips or tiles have no bytes, lie beyond the end of the file, or use a
/// compression the decoder does not know.
fn tiff(bytes: &[u8]) -> Option<String> {
    use tiff::tags::Tag;
    let mut dec = tiff::decoder::Decoder::new(Cursor::new(bytes)).ok()?;
    let known = [1u16, 2, 3, 4, 5, 6, 7, 8, 32773, 32946, 34887, 50000];
    if let Ok(Some(c)) = dec.find_tag_unsigned::<u16>(Tag::Compression)
        && !known.contains(&c)
    {
        return Some(format!(
            "the TIFF uses an unknown compression ({c}): its pixels cannot be read"
        ));
    }
    let pairs = [
        (Tag::StripOffsets, Tag::StripByteCounts, "strip"),
        (Tag::TileOffsets, Tag::TileByteCounts, "tile"),
    ];
    for (off_tag, count_tag, what) in pairs {
        let Ok(Some(counts)) = dec.find_tag_unsigned_vec::<u64>(count_tag) else {
            continue;
        };
        let offsets = dec
            .find_tag_unsigned_vec::<u64>(off_tag)
            .ok()
            .flatten()
            .unwrap_or_default();
        if offsets.len() != counts.len() {
            return Some(format!(
                "the TIFF is damaged: {} {what} offsets for {} {what} sizes",
                offsets.len(),
                counts.len()
            ));
        }
        for (i, (&o, &c)) in offsets.iter().zip(&counts).enumerate() {
            if c == 0 {
                return Some(format!("the TIFF is damaged: {what} {i} holds no data"));
            }
            if o.checked_add(c).is_none_or(|end| end > bytes.len() as u64) {
                return Some(format!(
                    "the TIFF is truncated: {what} {i} lies beyond the end of the file"
                ));
            }
        }
    }
    None
}

/// A GIF whose frames do not all decode, or that stops before its trailer.
fn gif(bytes: &[u8]) -> Option<String> {
    let mut opts = gif::DecodeOptions::new();
    opts.set_color_output(gif::ColorOutput::Indexed);
    opts.set_memory_limit(gif::MemoryLimit::Bytes(
        std::num::NonZeroU64::new(256 << 20).unwrap_or(std::num::NonZeroU64::MIN),
    ));
    let mut dec = match opts.read_info(Cursor::new(bytes)) {
        Ok(d) => d,
        Err(e) => return Some(format!("the GIF is damaged: {e}")),
    };
    let mut frame = 0usize;
    loop {
        match dec.read_next_frame() {
            Ok(Some(_)) => frame += 1,
            Ok(None) => break,
            Err(e) => {
                return Some(format!(
                    "the GIF is truncated or damaged at frame {}: {e}",
                    frame + 1
                ));
            }
        }
    }
    if frame == 0 {
        return Some("the GIF holds no frame".into());
    }
    let trailer = bytes.iter().rposition(|&b| b != 0).map(|i| bytes[i]);
    if trailer != Some(0x3B) {
        return Some(format!(
            "the GIF is truncated: it ends after frame {frame} without its trailer"
        ));
    }
    None
}
