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
        ColorSpace::RGBA => image::RgbaImage::from_raw(w, h, pixels).map(DynamicImage::ImageRgba8),
        ColorSpace::Luma => image::GrayImage::from_raw(w, h, pixels).map(DynamicImage::ImageLuma8),
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

/// Walks the entropy-coded data of a baseline (sequential Huffman) JPEG and checks that
/// every scan holds all the blocks its frame header declares. Decoders pad a scan that ends
/// early (an end-of-image marker in the middle, or a header inflated after the fact) with
/// zeros and show grey or smeared rows without complaint; this finds it. Only symbols are
/// decoded (no dequantisation, no transform): a few milliseconds for a 1080p photo.
///
/// Progressive and arithmetic-coded files are not walked (`Ok`).
pub(super) fn jpeg_scans_complete(b: &[u8]) -> Result<(), String> {
    let mut tables: [Option<Huffman>; 8] = Default::default(); // DC 0-3, AC 4-7
    let mut frame: Option<Frame> = None;
    let mut restart = 0usize;
    let mut i = 2usize;
    loop {
        // Next marker (fill bytes allowed).
        while i < b.len() && b[i] != 0xFF {
            i += 1;
        }
        while i < b.len() && b[i] == 0xFF {
            i += 1;
        }
        let Some(&m) = b.get(i) else {
            return Ok(()); // no EOI: reported elsewhere
        };
        i += 1;
        match m {
            0xD9 => return Ok(()),
            0xD0..=0xD7 | 0x01 => continue,
            _ => {}
        }
        // A segment cut off by the end of the file: truncation, which the end-marker check
        // reports.
        let (Some(&hi), Some(&lo)) = (b.get(i), b.get(i + 1)) else {
            return Ok(());
        };
        let len = usize::from(u16::from_be_bytes([hi, lo]));
        let Some(seg) = b.get(i + 2..i + len) else {
            return Ok(());
        };
        match m {
            0xC0 | 0xC1 => frame = Some(Frame::parse(seg)?),
            // Progressive, lossless, arithmetic: not walked.
            0xC2 | 0xC3 | 0xC5..=0xC7 | 0xC9..=0xCB | 0xCD..=0xCF => return Ok(()),
            0xC4 => {
                let mut p = 0;
                while p + 17 <= seg.len() {
                    let (class, id) = (seg[p] >> 4, usize::from(seg[p] & 3));
                    let mut counts = [0u8; 16];
                    counts.copy_from_slice(&seg[p + 1..p + 17]);
                    let n: usize = counts.iter().map(|&c| usize::from(c)).sum();
                    let vals = seg
                        .get(p + 17..p + 17 + n)
                        .ok_or("a Huffman table is cut short")?;
                    tables[id + if class == 0 { 0 } else { 4 }] = Some(Huffman::new(&counts, vals));
                    p += 17 + n;
                }
            }
            0xDD if seg.len() >= 2 => {
                restart = usize::from(u16::from_be_bytes([seg[0], seg[1]]));
            }
            0xDA => {
                let f = frame
                    .as_ref()
                    .ok_or("a scan comes before the frame header")?;
                let end = scan(f, seg, &b[i + len..], &tables, restart)?;
                i += len + end;
                continue;
            }
            _ => {}
        }
        i += len;
    }
}

struct Frame {
    width: usize,
    height: usize,
    /// (id, h, v)
    comps: Vec<(u8, usize, usize)>,
}

impl Frame {
    fn parse(seg: &[u8]) -> Result<Frame, String> {
        if seg.len() < 6 {
            return Err("the JPEG frame header is cut short".into());
        }
        let height = usize::from(u16::from_be_bytes([seg[1], seg[2]]));
        let width = usize::from(u16::from_be_bytes([seg[3], seg[4]]));
        let n = usize::from(seg[5]);
        let mut comps = vec![];
        for k in 0..n {
            let c = seg
                .get(6 + 3 * k..9 + 3 * k)
                .ok_or("the JPEG frame header is cut short")?;
            comps.push((
                c[0],
                usize::from(c[1] >> 4).max(1),
                usize::from(c[1] & 15).max(1),
            ));
        }
        Ok(Frame {
            width,
            height,
            comps,
        })
    }
}

/// A Huffman table: a 9-bit lookup for short codes, the canonical limits for the rest.
struct Huffman {
    lut: Vec<(u8, u8)>, // (length, symbol); length 0: longer code
    maxcode: [i32; 18],
    mincode: [i32; 17],
    valptr: [i32; 17],
    vals: Vec<u8>,
}

impl Huffman {
    fn new(counts: &[u8; 16], vals: &[u8]) -> Huffman {
        let mut h = Huffman {
            lut: vec![(0, 0); 512],
            maxcode: [-1; 18],
            mincode: [0; 17],
            valptr: [0; 17],
            vals: vals.to_vec(),
        };
        let (mut code, mut k) = (0i32, 0i32);
        for l in 1..=16usize {
            let n = i32::from(counts[l - 1]);
            if n > 0 {
                h.valptr[l] = k;
                h.mincode[l] = code;
                for j in 0..n {
                    let c = code + j;
                    if l <= 9 && c < (1 << l) {
                        let shift = 9 - l;
                        for fill in 0..(1usize << shift) {
                            let idx = ((c as usize) << shift) | fill;
                            if let (Some(slot), Some(&v)) =
                                (h.lut.get_mut(idx), vals.get((k + j) as usize))
                            {
                                *slot = (l as u8, v);
                            }
                        }
                    }
                }
                code += n;
                k += n;
                h.maxcode[l] = code - 1;
            }
            code <<= 1;
        }
        h.maxcode[17] = i32::MAX;
        h
    }

    fn decode(&self, r: &mut Bits) -> Option<u8> {
        let peek = r.peek16();
        let (len, v) = self.lut[(peek >> 7) as usize];
        if len > 0 {
            r.skip(u32::from(len));
            return Some(v);
        }
        for l in 10..=16usize {
            let code = (peek >> (16 - l)) as i32;
            if code <= self.maxcode[l] {
                r.skip(l as u32);
                return self
                    .vals
                    .get((self.valptr[l] + code - self.mincode[l]) as usize)
                    .copied();
            }
        }
        None
    }
}

/// Bits of entropy-coded data, unstuffed, stopping at the first marker. Past it, zeros are
/// supplied and counted: reading any of them means the data ran out.
struct Bits<'a> {
    data: &'a [u8],
    pos: usize,
    buf: u64,
    nbits: u32,
    /// Bits taken past the end of the real data.
    over: u32,
    /// The marker that ended the data, and where it is.
    marker: Option<(u8, usize)>,
}

impl<'a> Bits<'a> {
    fn new(data: &'a [u8]) -> Self {
        Bits {
            data,
            pos: 0,
            buf: 0,
            nbits: 0,
            over: 0,
            marker: None,
        }
    }

    fn fill(&mut self) {
        while self.nbits <= 56 {
            let mut byte = 0u8;
            let mut real = false;
            if self.marker.is_none() && self.pos < self.data.len() {
                let x = self.data[self.pos];
                if x == 0xFF {
                    match self.data.get(self.pos + 1) {
                        Some(0x00) => {
                            byte = 0xFF;
                            real = true;
                            self.pos += 2;
                        }
                        Some(&m) => self.marker = Some((m, self.pos)),
                        None => self.marker = Some((0, self.pos)),
                    }
                } else {
                    byte = x;
                    real = true;
                    self.pos += 1;
                }
            } else if self.marker.is_none() {
                self.marker = Some((0, self.pos));
            }
            self.buf |= u64::from(byte) << (56 - self.nbits);
            self.nbits += 8;
            if !real {
                self.over += 8;
            }
        }
    }

    fn peek16(&mut self) -> u32 {
        self.fill();
        (self.buf >> 48) as u32
    }

    fn skip(&mut self, n: u32) {
        self.buf <<= n;
        self.nbits -= n;
    }

    fn bits(&mut self, n: u32) -> u32 {
        if n == 0 {
            return 0;
        }
        self.fill();
        let v = (self.buf >> (64 - n)) as u32;
        self.skip(n);
        v
    }

    /// Whether bits past the real data were consumed.
    fn overrun(&self) -> bool {
        self.over > self.nbits
    }

    /// At a restart boundary: the data must stop at an RSTn marker; the reader moves past
    /// it with an empty buffer. False when something else is there.
    fn restart(&mut self) -> bool {
        self.fill();
        match self.marker {
            Some((m, p)) if (0xD0..=0xD7).contains(&m) => {
                self.pos = p + 2;
                self.buf = 0;
                self.nbits = 0;
                self.over = 0;
                self.marker = None;
                true
            }
            _ => false,
        }
    }
}

/// Walks one scan; returns how many bytes of `data` it used.
fn scan(
    f: &Frame,
    header: &[u8],
    data: &[u8],
    tables: &[Option<Huffman>; 8],
    restart: usize,
) -> Result<usize, String> {
    let ns = usize::from(*header.first().ok_or("empty scan header")?);
    let hmax = f.comps.iter().map(|c| c.1).max().unwrap_or(1);
    let vmax = f.comps.iter().map(|c| c.2).max().unwrap_or(1);
    // (blocks per MCU for this component, DC table, AC table)
    let mut comps = vec![];
    for k in 0..ns {
        let c = header
            .get(1 + 2 * k..3 + 2 * k)
            .ok_or("the scan header is cut short")?;
        let (_, h, v) = *f
            .comps
            .iter()
            .find(|x| x.0 == c[0])
            .ok_or("a scan names an unknown component")?;
        let dc = tables[usize::from(c[1] >> 4) & 3]
            .as_ref()
            .ok_or("a scan uses a missing Huffman table")?;
        let ac = tables[4 + (usize::from(c[1] & 15) & 3)]
            .as_ref()
            .ok_or("a scan uses a missing Huffman table")?;
        comps.push((if ns == 1 { 1 } else { h * v }, h, v, dc, ac));
    }
    let units = if ns == 1 {
        let (_, h, v, _, _) = comps[0];
        let cw = (f.width * h).div_ceil(hmax);
        let ch = (f.height * v).div_ceil(vmax);
        cw.div_ceil(8) * ch.div_ceil(8)
    } else {
        f.width.div_ceil(8 * hmax) * f.height.div_ceil(8 * vmax)
    };
    let mut r = Bits::new(data);
    let mut done = 0usize;
    'mcus: while done < units {
        if restart > 0 && done > 0 && done.is_multiple_of(restart) && !r.restart() {
            break 'mcus;
        }
        for &(blocks, _, _, dc, ac) in &comps {
            for _ in 0..blocks {
                let Some(s) = dc.decode(&mut r) else {
                    break 'mcus;
                };
                r.bits(u32::from(s.min(16)));
                let mut k = 1;
                while k < 64 {
                    let Some(rs) = ac.decode(&mut r) else {
                        break 'mcus;
                    };
                    let (run, size) = (rs >> 4, rs & 15);
                    if size == 0 {
                        if run != 15 {
                            break;
                        }
                        k += 16;
                    } else {
                        k += usize::from(run);
                        r.bits(u32::from(size));
                        k += 1;
                    }
                }
                if r.overrun() {
                    break 'mcus;
                }
            }
        }
        done += 1;
    }
    // The last MCU may lean on the padding bits; anything earlier is missing data.
    if done + 1 < units {
        return Err(format!(
            "the JPEG's image data ends early: its scan holds {done} of the {units} blocks its header declares (truncated, or the header was inflated)"
        ));
    }
    Ok(r.marker.map_or(r.pos, |(_, p)| p))
}
