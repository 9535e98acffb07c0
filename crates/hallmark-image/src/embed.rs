use hallmark_core::{KeyId, Payload, WatermarkKey, ecc};
use image::DynamicImage;

use crate::{
    Error, MIN_SIDE,
    pattern::{CHIP_PX, M, MP, PILOT_HARMONICS, PILOT_SHARE, Tile},
    plane::{Plane, working_scale},
};

/// Embedding parameters, with documented defaults.
#[derive(Clone, Debug)]
pub struct EmbedParams {
    /// Target peak signal-to-noise ratio of the marked image, in dB (default 42.5). Lower is
    /// more robust and less invisible; 40-45 is the useful range.
    pub target_psnr: f64,
    /// Weakest strength, relative to the average, in flat areas (default 0.2).
    pub flat_floor: f32,
    /// Strongest strength, relative to the average, in busy areas (default 2.0).
    pub busy_ceiling: f32,
}

impl Default for EmbedParams {
    fn default() -> Self {
        EmbedParams {
            target_psnr: 42.5,
            flat_floor: 0.2,
            busy_ceiling: 2.0,
        }
    }
}

/// What an embedding did.
#[derive(Clone, Debug, serde::Serialize)]
pub struct EmbedReport {
    /// The payload embedded.
    pub payload: Payload,
    /// The public ID of the key used.
    #[serde(serialize_with = "ser_display")]
    pub key_id: KeyId,
    /// PSNR of the marked image against the original (all channels), dB.
    pub psnr: f64,
    /// Side of one tile of the mark, in pixels of this image.
    pub tile_px: f64,
}

fn ser_display<S: serde::Serializer, T: std::fmt::Display>(v: &T, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(v)
}

/// A watermark embedder for one key.
pub struct ImageMark {
    key: WatermarkKey,
    tile: Tile,
    params: EmbedParams,
}

impl std::fmt::Debug for ImageMark {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImageMark")
            .field("key", &self.key)
            .field("params", &self.params)
            .finish_non_exhaustive()
    }
}

impl ImageMark {
    /// An embedder for `key`.
    pub fn new(key: &WatermarkKey, params: EmbedParams) -> Self {
        ImageMark {
            key: key.clone(),
            tile: Tile::new(key),
            params,
        }
    }

    /// Embeds `payload` into an RGB image in place.
    ///
    /// # Errors
    /// [`Error::TooSmall`] below [`MIN_SIDE`] pixels a side; [`Error::Parameter`] for a
    /// target PSNR outside 30..60 dB.
    pub fn embed(&self, img: &mut image::RgbImage, payload: Payload) -> Result<EmbedReport, Error> {
        let mut dynimg = DynamicImage::ImageRgb8(std::mem::take(img));
        let r = self.embed_dynamic(&mut dynimg, payload);
        *img = match dynimg {
            DynamicImage::ImageRgb8(i) => i,
            other => other.to_rgb8(),
        };
        r
    }

    /// Embeds `payload` into any 8- or 16-bit grey, grey-alpha, RGB or RGBA image in place
    /// (other layouts are converted to RGB8 first). Alpha is left untouched.
    ///
    /// # Errors
    /// As [`ImageMark::embed`].
    pub fn embed_dynamic(
        &self,
        img: &mut DynamicImage,
        payload: Payload,
    ) -> Result<EmbedReport, Error> {
        if !(30.0..=60.0).contains(&self.params.target_psnr) {
            return Err(Error::Parameter(format!(
                "target PSNR {} dB is outside 30..60",
                self.params.target_psnr
            )));
        }
        let (w, h) = (img.width(), img.height());
        if w.min(h) < MIN_SIDE {
            return Err(Error::TooSmall {
                width: w,
                height: h,
                min: MIN_SIDE,
            });
        }
        let delta = self.delta(img, payload);
        let psnr = apply(img, &delta);
        let f = working_scale(w as usize, h as usize);
        Ok(EmbedReport {
            payload,
            key_id: self.key.id(),
            psnr,
            tile_px: CHIP_PX * M as f64 / f,
        })
    }

    /// The luminance change to add, per pixel, before rounding.
    ///
    /// Informed embedding (Malvar and Florencio's improved spread spectrum): the detector's
    /// statistic for each coded bit is a linear function of the picture, so the embedder
    /// measures how much the picture itself already pushes each bit up or down and gives
    /// every bit an amplitude that cancels most of that push. The same energy then buys a
    /// much larger margin than a blind mark.
    fn delta(&self, img: &DynamicImage, payload: Payload) -> Plane {
        let y = Plane::luma(img);
        let (w, h) = (y.w, y.h);
        let f = working_scale(w, h);
        let (ww, wh) = (
            ((w as f64 * f).round() as usize).max(1),
            ((h as f64 * f).round() as usize).max(1),
        );
        let yw = y.resize(ww, wh);
        // Pixels of the working copy per chip, per axis (rounding makes them differ a hair).
        let chip_w = (
            CHIP_PX * ww as f64 / (w as f64 * f),
            CHIP_PX * wh as f64 / (h as f64 * f),
        );
        let act = self.mask(&yw);
        let signs = self.tile.chips(&self.key, payload);
        let target_mse = (255.0 / 10f64.powf(self.params.target_psnr / 20.0)).powi(2);
        // Rounding to 8 bits adds about 1/12 to the mean squared change.
        let budget = (target_mse - 1.0 / 12.0).max(0.1);

        let mut amps = vec![1f32; ecc::CODED_BITS];
        let chips_for = |amps: &[f32]| -> Vec<f32> {
            signs
                .iter()
                .zip(&self.tile.bit)
                .map(|(s, &k)| s * amps[usize::from(k)])
                .collect()
        };
        let unit = render(
            &self.tile,
            &chips_for(&amps),
            &act,
            chip_w,
            (ww, wh),
            true,
            true,
        );
        let gain = (budget / unit.mean_square()).sqrt();
        let data_only = render(&self.tile, &signs, &act, chip_w, (ww, wh), false, true);
        let (host, mark) = crate::detect::bit_statistics(&self.tile, &yw, &data_only, chip_w);
        let coded = ecc::encode(&self.key, payload);
        for (k, a) in amps.iter_mut().enumerate() {
            let sign = if coded[k] { 1.0 } else { -1.0 };
            let (hk, ck) = (host[k] * sign, mark[k] * sign);
            if ck > 1e-9 {
                *a = (1.0 - ISS_LAMBDA * hk / (gain as f32 * ck)).clamp(0.3, 3.0);
            }
        }
        let chips = chips_for(&amps);
        if (ww, wh) == (w, h) {
            let m = render(&self.tile, &chips, &act, chip_w, (w, h), true, true);
            let g = (budget / m.mean_square()).sqrt() as f32;
            return Plane {
                w,
                h,
                data: m.data.iter().map(|v| v * g).collect(),
            };
        }
        // Large images: the mark is smooth at working resolution (chips of 4 px), so render it
        // there, mask included, and upsample the finished pattern; rendering 2-8 million
        // pixels directly would cost several times more for the same field.
        let m = render(&self.tile, &chips, &act, chip_w, (ww, wh), true, true);
        let mut full = m.upsample_bilinear(w, h);
        let g = (budget / full.mean_square()).sqrt() as f32;
        full.data.iter_mut().for_each(|v| *v *= g);
        full
    }

    /// Texture mask at working resolution: local standard deviation over about one chip,
    /// relative to the median, clamped to [flat_floor, busy_ceiling].
    fn mask(&self, y: &Plane) -> Plane {
        let r = 2;
        let mean = y.box_mean(r);
        let sq = Plane {
            w: y.w,
            h: y.h,
            data: y.data.iter().map(|v| v * v).collect(),
        };
        let mean_sq = sq.box_mean(r);
        let mut act: Vec<f32> = mean
            .data
            .iter()
            .zip(&mean_sq.data)
            .map(|(m, s)| (s - m * m).max(0.0).sqrt())
            .collect();
        let mut sorted = act.clone();
        let mid = sorted.len() / 2;
        let median = *sorted.select_nth_unstable_by(mid, f32::total_cmp).1;
        let norm = if median > 0.5 { median } else { 0.5 };
        for a in &mut act {
            *a = (*a / norm).clamp(self.params.flat_floor, self.params.busy_ceiling);
        }
        Plane {
            w: y.w,
            h: y.h,
            data: act,
        }
    }
}

/// How much of the host's push on each bit the informed embedder cancels.
const ISS_LAMBDA: f32 = 0.6;

/// Renders the masked mark on a `size` grid with `chip` pixels per chip (x, y).
fn render(
    tile: &Tile,
    chips: &[f32],
    act: &Plane,
    chip: (f64, f64),
    size: (usize, usize),
    pilot: bool,
    data: bool,
) -> Plane {
    let (w, h) = size;
    let ap = if pilot { PILOT_SHARE.sqrt() } else { 0.0 };
    let ad = if data {
        (1.0 - PILOT_SHARE).sqrt()
    } else {
        0.0
    };
    // Separable pieces of the pilot's gratings and of the bilinear chip field.
    let s = std::f64::consts::TAU / MP as f64;
    let nh = PILOT_HARMONICS.len();
    let norm = (2.0 / nh as f64).sqrt() as f32;
    let mut cx_cos = vec![0f32; w * nh];
    let mut cx_sin = vec![0f32; w * nh];
    let mut col = Vec::with_capacity(w);
    for x in 0..w {
        let cx = (x as f64 + 0.5) / chip.0;
        for (hh, &(k1, _)) in PILOT_HARMONICS.iter().enumerate() {
            let a = s * f64::from(k1) * cx;
            cx_cos[x * nh + hh] = a.cos() as f32;
            cx_sin[x * nh + hh] = a.sin() as f32;
        }
        let u = cx - 0.5;
        let fu = u.floor();
        let j0 = (fu as i64).rem_euclid(M as i64) as usize;
        col.push((j0, (j0 + 1) % M, (u - fu) as f32));
    }
    let mut out = Plane::new(w, h);
    for y in 0..h {
        let cy = (y as f64 + 0.5) / chip.1;
        let mut rc = [0f32; 8];
        let mut rs = [0f32; 8];
        for (hh, (&(_, k2), &ph)) in PILOT_HARMONICS.iter().zip(&tile.phases).enumerate() {
            let b = s * f64::from(k2) * cy + ph;
            rc[hh] = b.cos() as f32;
            rs[hh] = b.sin() as f32;
        }
        let v = cy - 0.5;
        let fv = v.floor();
        let i0 = (fv as i64).rem_euclid(M as i64) as usize;
        let i1 = (i0 + 1) % M;
        let ty = (v - fv) as f32;
        let r0 = &chips[i0 * M..(i0 + 1) * M];
        let r1 = &chips[i1 * M..(i1 + 1) * M];
        let orow = &mut out.data[y * w..(y + 1) * w];
        let arow = &act.data[y * w..(y + 1) * w];
        for (x, (o, a)) in orow.iter_mut().zip(arow).enumerate() {
            let mut p = 0f32;
            if pilot {
                let cc = &cx_cos[x * nh..(x + 1) * nh];
                let cs = &cx_sin[x * nh..(x + 1) * nh];
                for hh in 0..nh {
                    p += cc[hh] * rc[hh] - cs[hh] * rs[hh];
                }
                p *= norm;
            }
            let (j0, j1, tx) = col[x];
            let d = (r0[j0] * (1.0 - tx) + r0[j1] * tx) * (1.0 - ty)
                + (r1[j0] * (1.0 - tx) + r1[j1] * tx) * ty;
            *o = (ap * p + ad * d) * a;
        }
    }
    out
}

/// Adds `delta` to every colour channel; returns the PSNR over colour channels.
fn apply(img: &mut DynamicImage, delta: &Plane) -> f64 {
    fn add8(px: &mut [u8], d: f32, colour: usize, se: &mut f64) {
        // The input is integer, so round(old + d) == old + round(d): one rounding per pixel.
        let di = d.round() as i32;
        if di == 0 {
            return;
        }
        for c in &mut px[..colour] {
            let old = i32::from(*c);
            let new = (old + di).clamp(0, 255);
            let e = new - old;
            *se += f64::from(e * e);
            *c = new as u8;
        }
    }
    fn add16(px: &mut [u16], d: f32, colour: usize, se: &mut f64) {
        for c in &mut px[..colour] {
            let old = f32::from(*c);
            let new = (old + d * 257.0).round().clamp(0.0, 65535.0);
            let e = (new - old) / 257.0;
            *se += f64::from(e * e);
            *c = new as u16;
        }
    }
    let mut se = 0f64;
    let channels;
    match img {
        DynamicImage::ImageLuma8(b) => {
            channels = 1;
            for (px, d) in b.chunks_exact_mut(1).zip(&delta.data) {
                add8(px, *d, 1, &mut se);
            }
        }
        DynamicImage::ImageLumaA8(b) => {
            channels = 1;
            for (px, d) in b.chunks_exact_mut(2).zip(&delta.data) {
                add8(px, *d, 1, &mut se);
            }
        }
        DynamicImage::ImageRgb8(b) => {
            channels = 3;
            for (px, d) in b.chunks_exact_mut(3).zip(&delta.data) {
                add8(px, *d, 3, &mut se);
            }
        }
        DynamicImage::ImageRgba8(b) => {
            channels = 3;
            for (px, d) in b.chunks_exact_mut(4).zip(&delta.data) {
                add8(px, *d, 3, &mut se);
            }
        }
        DynamicImage::ImageLuma16(b) => {
            channels = 1;
            for (px, d) in b.chunks_exact_mut(1).zip(&delta.data) {
                add16(px, *d, 1, &mut se);
            }
        }
        DynamicImage::ImageLumaA16(b) => {
            channels = 1;
            for (px, d) in b.chunks_exact_mut(2).zip(&delta.data) {
                add16(px, *d, 1, &mut se);
            }
        }
        DynamicImage::ImageRgb16(b) => {
            channels = 3;
            for (px, d) in b.chunks_exact_mut(3).zip(&delta.data) {
                add16(px, *d, 3, &mut se);
            }
        }
        DynamicImage::ImageRgba16(b) => {
            channels = 3;
            for (px, d) in b.chunks_exact_mut(4).zip(&delta.data) {
                add16(px, *d, 3, &mut se);
            }
        }
        other => {
            let mut rgb = DynamicImage::ImageRgb8(other.to_rgb8());
            let p = apply(&mut rgb, delta);
            *other = rgb;
            return p;
        }
    }
    let mse = se / (delta.data.len() * channels) as f64;
    if mse <= 0.0 {
        f64::INFINITY
    } else {
        10.0 * (255.0f64 * 255.0 / mse).log10()
    }
}
