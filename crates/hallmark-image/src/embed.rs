use hallmark_core::{KeyId, Payload, WatermarkKey, ecc};
use image::DynamicImage;

use crate::{
    Error, MIN_SIDE,
    pattern::{CHIP_PX, DATA_CHIPS, PILOT_CHIPS, PILOT_HARMONICS, PILOT_SHARE, Tile, mark_scale},
    plane::{Plane, round_i32, working_scale, working_size},
    ssim::SsimModel,
};

/// Embedding parameters, with documented defaults.
#[derive(Clone, Debug)]
pub struct EmbedParams {
    /// Target peak signal-to-noise ratio of the marked image, in dB (default 42.2; each image
    /// gets this to within rounding, more where the SSIM guard lowers the strength). Lower is
    /// more robust and less invisible; 40-45 is the useful range.
    pub target_psnr: f64,
    /// Weakest strength, relative to the average, in flat areas (default 0.2).
    pub flat_floor: f32,
    /// Strongest strength, relative to the average, in busy areas (default 2.0).
    pub busy_ceiling: f32,
    /// Lowest structural similarity (SSIM, luminance) the mark may leave (default 0.985).
    /// On mostly flat pictures and small ones this, not the PSNR, sets the strength.
    pub min_ssim: f64,
    /// Share of the picture's own push on each coded bit that the informed embedder cancels
    /// (default 0.6). 1.0 cancels all of it: the best reading of the untouched image, but
    /// the cancelling energy is spent on the whole picture, so crops read less well
    /// (measured as the default: quarter crops 43 -> 39 of 45, thumbnails 42 -> 44 of 45).
    /// See [`EmbedParams::reinforced`].
    pub host_cancellation: f32,
}

impl EmbedParams {
    /// Stronger parameters to try, in order, for a picture whose mark does not read back
    /// with these (a pipeline re-embeds from the original pixels; `hallmark::mark_encoded`
    /// does): the picture's own push on each coded bit cancelled in full
    /// (`host_cancellation` 1.0); then also a target PSNR of 41 dB; then 40.2 dB, both with
    /// an SSIM floor of 0.982 (the target 0.98 plus a margin for the 8-bit rounding the
    /// embedder's SSIM model does not see: at a model floor of 0.98 a 320x240 thumbnail
    /// measured 0.9797 on its rounded luma). Every step stays within the imperceptibility
    /// targets (PSNR >= 40 dB, SSIM >= 0.98), and only pictures whose mark would otherwise
    /// not read back (or not survive the checks of `hallmark::mark_encoded`) take them.
    /// Steps that would not be stronger than `self` are left out.
    pub fn reinforced(&self) -> Vec<EmbedParams> {
        let full = EmbedParams {
            host_cancellation: self.host_cancellation.max(1.0),
            ..self.clone()
        };
        let louder = |psnr: f64| EmbedParams {
            target_psnr: psnr,
            min_ssim: self.min_ssim.min(LOUDER_MIN_SSIM),
            ..full.clone()
        };
        let mut out: Vec<EmbedParams> = vec![];
        for p in [full.clone(), louder(41.0), louder(40.2)] {
            let prev = out.last().unwrap_or(self);
            let stronger = p.host_cancellation > prev.host_cancellation
                || p.target_psnr < prev.target_psnr
                || p.min_ssim < prev.min_ssim;
            if stronger {
                out.push(p);
            }
        }
        out
    }
}

/// SSIM floor of the louder steps of [`EmbedParams::reinforced`].
const LOUDER_MIN_SSIM: f64 = 0.982;

impl Default for EmbedParams {
    fn default() -> Self {
        EmbedParams {
            target_psnr: 42.2,
            flat_floor: 0.2,
            busy_ceiling: 2.0,
            min_ssim: 0.985,
            host_cancellation: 0.6,
        }
    }
}

/// What an embedding did.
#[derive(Clone, Debug, serde::Serialize, schemars::JsonSchema)]
pub struct EmbedReport {
    /// The payload embedded.
    pub payload: Payload,
    /// The public ID of the key used.
    pub key_id: KeyId,
    /// PSNR of the marked image against the original (all channels), dB.
    pub psnr: f64,
    /// Side of one tile of the mark, in pixels of this image.
    pub tile_px: f64,
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

    /// The same key with other parameters.
    #[must_use]
    pub fn with_params(&self, params: EmbedParams) -> Self {
        ImageMark {
            key: self.key.clone(),
            tile: self.tile.clone(),
            params,
        }
    }

    /// The embedding parameters.
    pub fn params(&self) -> &EmbedParams {
        &self.params
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
        if !(0.0..=1.0).contains(&self.params.host_cancellation) {
            return Err(Error::Parameter(format!(
                "host cancellation {} is outside 0..1",
                self.params.host_cancellation
            )));
        }
        if !(0.5..=1.0).contains(&self.params.min_ssim) {
            return Err(Error::Parameter(format!(
                "minimum SSIM {} is outside 0.5..1",
                self.params.min_ssim
            )));
        }
        // Keep the working planes' buffers for this thread's next embedding.
        let _keep = crate::plane::scratch::keep();
        let (field, budget, ssim) = self.field(img, payload);
        // Large images: the mark is smooth at working resolution (chips of 4 px or more), so
        // it is rendered there and upsampled row by row while it is added: no full-size float
        // plane is ever allocated.
        let rows = Rows::new(&field, w as usize, h as usize);
        let ms = rows.mean_square();
        let gain = if ms > 0.0 {
            ssim.max_gain(self.params.min_ssim, (budget / ms).sqrt()) as f32
        } else {
            0.0
        };
        let psnr = apply(img, &rows, gain);
        let f = working_scale(w as usize, h as usize);
        Ok(EmbedReport {
            payload,
            key_id: self.key.id(),
            psnr,
            tile_px: CHIP_PX * mark_scale(w as usize, h as usize) * DATA_CHIPS as f64 / f,
        })
    }

    /// The luminance change at working resolution, up to a gain, and the mean squared change
    /// the image may take.
    ///
    /// Informed embedding (Malvar and Florencio's improved spread spectrum): the detector's
    /// statistic for each coded bit is a linear function of the picture, so the embedder
    /// measures how much the picture itself already pushes each bit up or down and gives
    /// every bit an amplitude that cancels most of that push. The same energy then buys a
    /// much larger margin than a blind mark.
    fn field(&self, img: &DynamicImage, payload: Payload) -> (Plane, f64, SsimModel) {
        let (w, h) = (img.width() as usize, img.height() as usize);
        let (f, (ww, wh)) = working_size(w, h);
        let yw = Plane::luma_resized(img, ww, wh);
        // Pixels of the working copy per chip, per axis (rounding makes them differ a hair).
        let chip = CHIP_PX * mark_scale(w, h);
        let chip_w = (
            chip * ww as f64 / (w as f64 * f),
            chip * wh as f64 / (h as f64 * f),
        );
        let yw_mean = yw.box_mean(crate::tile::HIGHPASS_RADIUS);
        let act = self.mask(&yw, &yw_mean);
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
        // The pilot is the costly part to render and does not depend on the payload: render
        // it once. Rendering is linear, so the unit-amplitude mark is pilot + data.
        let pilot = render(&self.tile, &signs, &act, chip_w, (ww, wh), Layers::Pilot);
        let data_only = render(&self.tile, &signs, &act, chip_w, (ww, wh), Layers::Data);
        // Eight running sums per row (one vector), rows summed in f64.
        let unit_ms = pilot
            .data
            .chunks(pilot.w.max(1))
            .zip(data_only.data.chunks(pilot.w.max(1)))
            .map(|(pr, dr)| {
                let mut lanes = [0f32; 8];
                for (p8, d8) in pr.chunks_exact(8).zip(dr.chunks_exact(8)) {
                    for l in 0..8 {
                        lanes[l] += (p8[l] + d8[l]) * (p8[l] + d8[l]);
                    }
                }
                let tail = pr.len() / 8 * 8;
                let rest: f32 = pr[tail..]
                    .iter()
                    .zip(&dr[tail..])
                    .map(|(p, d)| (p + d) * (p + d))
                    .sum();
                f64::from(lanes.iter().sum::<f32>() + rest)
            })
            .sum::<f64>()
            / pilot.data.len().max(1) as f64;
        let gain = (budget / unit_ms).sqrt();
        let (host, mark) =
            crate::tile::bit_statistics(&self.tile, &yw, &yw_mean, &data_only, chip_w);
        let coded = ecc::encode(&self.key, payload);
        for (k, a) in amps.iter_mut().enumerate() {
            let sign = if coded[k] { 1.0 } else { -1.0 };
            let (hk, ck) = (host[k] * sign, mark[k] * sign);
            if ck > 1e-9 {
                *a =
                    (1.0 - self.params.host_cancellation * hk / (gain as f32 * ck)).clamp(0.3, 3.0);
            }
        }
        let chips = chips_for(&amps);
        let mut m = render(&self.tile, &chips, &act, chip_w, (ww, wh), Layers::Data);
        for (v, p) in m.data.iter_mut().zip(&pilot.data) {
            *v += p;
        }
        // SSIM is judged on 8x8-pixel windows of the image: that many working pixels.
        let side = (8.0 * f).round().clamp(3.0, 8.0) as usize;
        let ssim = SsimModel::new(&yw, &m, side);
        (m, budget, ssim)
    }

    /// Texture mask at working resolution: local standard deviation over about one chip,
    /// relative to the median, clamped to [flat_floor, busy_ceiling].
    fn mask(&self, y: &Plane, mean: &Plane) -> Plane {
        let r = crate::tile::HIGHPASS_RADIUS;
        let mut plane = y.box_mean_of_squares(r);
        let act = &mut plane.data;
        for (a, m) in act.iter_mut().zip(&mean.data) {
            *a = (*a - m * m).max(0.0).sqrt();
        }
        // The median sets the scale only: every 7th value estimates it well and costs a
        // seventh of a full selection.
        let mut sorted: Vec<f32> = act.iter().step_by(7).copied().collect();
        let mid = sorted.len() / 2;
        let median = *sorted.select_nth_unstable_by(mid, f32::total_cmp).1;
        // On a mostly flat picture the median is a flat area's: never let a texture below
        // MIN_TYPICAL_TEXTURE count as typical, so skies and walls stay at the floor and the
        // energy goes where SSIM (which the embedder also guards) barely notices it.
        let norm = median.max(MIN_TYPICAL_TEXTURE);
        for a in act.iter_mut() {
            *a = (*a / norm).clamp(self.params.flat_floor, self.params.busy_ceiling);
        }
        plane
    }
}

/// Local standard deviation (grey levels) below which a texture never sets the mask's scale.
/// Measured: 3 raises the lowest SSIM of the benchmark from 0.9836 to 0.9874 at the same
/// robustness (5.4, SSIM's own sqrt(C2/2), moves too much energy into busy areas).
const MIN_TYPICAL_TEXTURE: f32 = 3.0;

/// Which of the mark's two patterns [`render`] draws.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Layers {
    /// The pilot alone (the synchronisation gratings).
    Pilot,
    /// The data chips alone (the coded payload).
    Data,
}

/// Renders the masked mark on a `size` grid with `chip` pixels per chip (x, y). Compiled for
/// AVX2 too (chosen at run time).
#[multiversion::multiversion(targets("x86_64+avx2"))]
fn render(
    tile: &Tile,
    chips: &[f32],
    act: &Plane,
    chip: (f64, f64),
    size: (usize, usize),
    layers: Layers,
) -> Plane {
    let (w, h) = size;
    let (pilot, data) = match layers {
        Layers::Pilot => (true, false),
        Layers::Data => (false, true),
    };
    let ap = if pilot { PILOT_SHARE.sqrt() } else { 0.0 };
    let ad = if data {
        (1.0 - PILOT_SHARE).sqrt()
    } else {
        0.0
    };
    // Separable pieces of the pilot's gratings (laid out per harmonic, so each row is a few
    // vectorisable passes) and of the bilinear chip field.
    let s = std::f64::consts::TAU / PILOT_CHIPS as f64;
    let nh = PILOT_HARMONICS.len();
    let norm = (2.0 / nh as f64).sqrt() as f32;
    let mut cx_cos = vec![0f32; nh * w];
    let mut cx_sin = vec![0f32; nh * w];
    let mut col = Vec::with_capacity(w);
    for x in 0..w {
        let cx = (x as f64 + 0.5) / chip.0;
        for (hh, &(k1, _)) in PILOT_HARMONICS.iter().enumerate() {
            let a = s * f64::from(k1) * cx;
            cx_cos[hh * w + x] = a.cos() as f32;
            cx_sin[hh * w + x] = a.sin() as f32;
        }
        let u = cx - 0.5;
        let fu = u.floor();
        let j0 = (fu as i64).rem_euclid(DATA_CHIPS as i64) as usize;
        col.push((j0, (j0 + 1) % DATA_CHIPS, (u - fu) as f32));
    }
    let mut out = Plane::new(w, h);
    let mut rowv = [0f32; DATA_CHIPS];
    for y in 0..h {
        let cy = (y as f64 + 0.5) / chip.1;
        let orow = &mut out.data[y * w..(y + 1) * w];
        if pilot {
            for (hh, (&(_, k2), &ph)) in PILOT_HARMONICS.iter().zip(&tile.phases).enumerate() {
                let b = s * f64::from(k2) * cy + ph;
                let (rc, rs) = (b.cos() as f32 * norm * ap, b.sin() as f32 * norm * ap);
                let cc = &cx_cos[hh * w..(hh + 1) * w];
                let cs = &cx_sin[hh * w..(hh + 1) * w];
                for ((o, c), sn) in orow.iter_mut().zip(cc).zip(cs) {
                    *o += c * rc - sn * rs;
                }
            }
        }
        if data {
            let v = cy - 0.5;
            let fv = v.floor();
            let i0 = (fv as i64).rem_euclid(DATA_CHIPS as i64) as usize;
            let i1 = (i0 + 1) % DATA_CHIPS;
            let ty = (v - fv) as f32;
            for (j, r) in rowv.iter_mut().enumerate() {
                *r = ad
                    * (chips[i0 * DATA_CHIPS + j] * (1.0 - ty) + chips[i1 * DATA_CHIPS + j] * ty);
            }
            for (o, &(j0, j1, tx)) in orow.iter_mut().zip(&col) {
                *o += rowv[j0] * (1.0 - tx) + rowv[j1] * tx;
            }
        }
        for (o, a) in orow.iter_mut().zip(&act.data[y * w..(y + 1) * w]) {
            *o *= a;
        }
    }
    out
}

/// The working-resolution field, read back row by row at the image's size (bilinear when
/// the two differ).
struct Rows<'a> {
    field: &'a Plane,
    w: usize,
    h: usize,
    /// Per output column: the left and right source columns and the weight of the right.
    x0: Vec<u32>,
    x1: Vec<u32>,
    tx: Vec<f32>,
}

/// The two field rows most recently widened to the image's width (a field row serves about
/// two image rows when enlarging, so each is widened once).
struct RowCache {
    index: [usize; 2],
    wide: [Vec<f32>; 2],
}

impl<'a> Rows<'a> {
    fn new(field: &'a Plane, w: usize, h: usize) -> Self {
        let sx = field.w as f64 / w as f64;
        let mut x0 = Vec::with_capacity(w);
        let mut x1 = Vec::with_capacity(w);
        let mut tx = Vec::with_capacity(w);
        for x in 0..w {
            let u = ((x as f64 + 0.5) * sx - 0.5).max(0.0);
            let i = (u as usize).min(field.w - 1);
            x0.push(i as u32);
            x1.push((i + 1).min(field.w - 1) as u32);
            tx.push((u - i as f64) as f32);
        }
        Rows {
            field,
            w,
            h,
            x0,
            x1,
            tx,
        }
    }

    fn same_size(&self) -> bool {
        (self.field.w, self.field.h) == (self.w, self.h)
    }

    fn cache(&self) -> RowCache {
        let wide = if self.same_size() { 0 } else { self.w };
        RowCache {
            index: [usize::MAX; 2],
            wide: [vec![0f32; wide], vec![0f32; wide]],
        }
    }

    /// Field row `fy` widened to the image's width, from the cache when it is there.
    #[inline(always)]
    fn wide<'c>(&self, fy: usize, cache: &'c mut RowCache) -> &'c [f32] {
        let slot = fy % 2;
        if cache.index[slot] != fy {
            let f = self.field;
            let src = &f.data[fy * f.w..(fy + 1) * f.w];
            let out = &mut cache.wide[slot];
            for (((o, &i0), &i1), &t) in out.iter_mut().zip(&self.x0).zip(&self.x1).zip(&self.tx) {
                let (a, c) = (src[i0 as usize], src[i1 as usize]);
                *o = a + (c - a) * t;
            }
            cache.index[slot] = fy;
        }
        &cache.wide[slot]
    }

    /// Row `y` of the field at the image's size.
    #[inline(always)]
    fn row(&self, y: usize, cache: &mut RowCache, out: &mut [f32]) {
        let f = self.field;
        if self.same_size() {
            out.copy_from_slice(&f.data[y * f.w..(y + 1) * f.w]);
            return;
        }
        // Widen the two field rows (cached), then blend them: contiguous, vectorised.
        let v = ((y as f64 + 0.5) * f.h as f64 / self.h as f64 - 0.5).max(0.0);
        let y0 = (v as usize).min(f.h - 1);
        let y1 = (y0 + 1).min(f.h - 1);
        let ty = (v - y0 as f64) as f32;
        self.wide(y0, cache);
        self.wide(y1, cache);
        let (r0, r1) = (&cache.wide[y0 % 2], &cache.wide[y1 % 2]);
        for ((o, a), c) in out.iter_mut().zip(r0).zip(r1) {
            *o = a + (c - a) * ty;
        }
    }

    /// Mean square of the field at the image's size, exactly, without widening a row: the
    /// square of a horizontally interpolated row is a quadratic form in the field row,
    /// sum_i a_i u_i^2 + b_i u_i u_(i+1), with weights gathered once from the columns' taps.
    fn mean_square(&self) -> f64 {
        if self.same_size() {
            return self.field.mean_square();
        }
        let f = self.field;
        let (mut a, mut b) = (vec![0f32; f.w], vec![0f32; f.w]);
        for ((&i0, &i1), &t) in self.x0.iter().zip(&self.x1).zip(&self.tx) {
            let (i0, i1) = (i0 as usize, i1 as usize);
            a[i0] += (1.0 - t) * (1.0 - t);
            a[i1] += t * t;
            if i1 == i0 {
                a[i0] += 2.0 * t * (1.0 - t);
            } else {
                b[i0] += 2.0 * t * (1.0 - t);
            }
        }
        let mut u = vec![0f32; f.w + 1];
        let mut sum = 0f64;
        for y in 0..self.h {
            let v = ((y as f64 + 0.5) * f.h as f64 / self.h as f64 - 0.5).max(0.0);
            let y0 = (v as usize).min(f.h - 1);
            let y1 = (y0 + 1).min(f.h - 1);
            let ty = (v - y0 as f64) as f32;
            let r0 = &f.data[y0 * f.w..(y0 + 1) * f.w];
            let r1 = &f.data[y1 * f.w..(y1 + 1) * f.w];
            for ((o, p), q) in u.iter_mut().zip(r0).zip(r1) {
                *o = p + (q - p) * ty;
            }
            // Eight running sums (one vector) rather than one serial chain of adds.
            let (u0, u1) = (&u[..f.w], &u[1..=f.w]);
            let mut lanes = [0f32; 8];
            let quads = u0
                .chunks_exact(8)
                .zip(u1.chunks_exact(8))
                .zip(a.chunks_exact(8).zip(b.chunks_exact(8)));
            for ((p, q), (ai, bi)) in quads {
                for l in 0..8 {
                    lanes[l] += p[l] * (ai[l] * p[l] + bi[l] * q[l]);
                }
            }
            let tail = f.w / 8 * 8;
            let rest: f32 = (tail..f.w)
                .map(|i| u0[i] * (a[i] * u0[i] + b[i] * u1[i]))
                .sum();
            sum += f64::from(lanes.iter().sum::<f32>() + rest);
        }
        sum / (self.w * self.h).max(1) as f64
    }
}

/// Adds `delta` to every colour channel; returns the PSNR over colour channels.
fn apply(img: &mut DynamicImage, rows: &Rows<'_>, gain: f32) -> f64 {
    /// Adds the rounded change `di` to the first `colour` samples of an 8-bit pixel; returns
    /// the squared error. The input is integer, so round(old + d) == old + round(d). Integer
    /// sums: a float accumulator would chain every pixel's add on the last.
    #[inline(always)]
    fn add8(px: &mut [u8], di: i32, colour: usize) -> u32 {
        let mut se = 0u32;
        for c in &mut px[..colour] {
            let old = i32::from(*c);
            let new = (old + di).clamp(0, 255);
            let e = new - old;
            se += (e * e) as u32;
            *c = new as u8;
        }
        se
    }
    /// The same for 16-bit samples (`di` already in 16-bit units).
    #[inline(always)]
    fn add16(px: &mut [u16], di: i32, colour: usize) -> u32 {
        let mut se = 0u32;
        for c in &mut px[..colour] {
            let old = i32::from(*c);
            let new = (old + di).clamp(0, 65535);
            let e = (new - old).unsigned_abs();
            se = se.saturating_add(e.saturating_mul(e));
            *c = new as u16;
        }
        se
    }
    /// Walks the buffer row by row (`stride` samples per pixel, the first `colour` of them
    /// changed, `unit` = one 8-bit step in sample units); returns the summed squared error.
    #[inline(always)]
    fn walk<T>(
        buf: &mut [T],
        rows: &Rows<'_>,
        gain: f32,
        (stride, colour, unit): (usize, usize, f32),
        add: impl Fn(&mut [T], i32, usize) -> u32,
    ) -> f64 {
        let mut se = 0u64;
        let mut d = vec![0f32; rows.w];
        let mut q = vec![0i32; rows.w];
        let mut cache = rows.cache();
        let g = gain * unit;
        for (y, line) in buf
            .chunks_exact_mut(rows.w * stride)
            .enumerate()
            .take(rows.h)
        {
            rows.row(y, &mut cache, &mut d);
            for (qv, dv) in q.iter_mut().zip(&d) {
                *qv = round_i32(dv * g);
            }
            se += add_row(line, &q, stride, colour, &add);
        }
        se as f64
    }
    /// One row, generic: pixel by pixel.
    #[inline(always)]
    fn add_row<T>(
        line: &mut [T],
        q: &[i32],
        stride: usize,
        colour: usize,
        add: &impl Fn(&mut [T], i32, usize) -> u32,
    ) -> u64 {
        let mut row_se = 0u64;
        for (px, &qv) in line.chunks_exact_mut(stride).zip(q) {
            row_se += u64::from(add(px, qv, colour));
        }
        row_se
    }
    /// RGB8, the common case: spread the changes over the samples, then one flat loop the
    /// compiler vectorises (compiled for AVX2 too, chosen at run time).
    #[multiversion::multiversion(targets("x86_64+avx2"))]
    fn walk_rgb8<'a>(buf: &mut [u8], rows: &Rows<'a>, gain: f32) -> f64 {
        let mut se = 0u64;
        let mut d = vec![0f32; rows.w];
        let mut qs = vec![0i16; rows.w * 3];
        let mut cache = rows.cache();
        for (y, line) in buf.chunks_exact_mut(rows.w * 3).enumerate().take(rows.h) {
            rows.row(y, &mut cache, &mut d);
            for (q3, dv) in qs.chunks_exact_mut(3).zip(&d) {
                let q = round_i32(dv * gain).clamp(-255, 255) as i16;
                q3.copy_from_slice(&[q, q, q]);
            }
            let mut row_se = 0u32;
            for (c, &q) in line.iter_mut().zip(&qs) {
                let old = i16::from(*c);
                let new = (old + q).clamp(0, 255);
                let e = i32::from(new - old);
                row_se += (e * e) as u32;
                *c = new as u8;
            }
            se += u64::from(row_se);
        }
        se as f64
    }
    const U16: f64 = 257.0 * 257.0;
    let (se, channels) = match img {
        DynamicImage::ImageLuma8(b) => (walk(b, rows, gain, (1, 1, 1.0), add8), 1),
        DynamicImage::ImageLumaA8(b) => (walk(b, rows, gain, (2, 1, 1.0), add8), 1),
        DynamicImage::ImageRgb8(b) => (walk_rgb8(b, rows, gain), 3),
        DynamicImage::ImageRgba8(b) => (walk(b, rows, gain, (4, 3, 1.0), add8), 3),
        DynamicImage::ImageLuma16(b) => (walk(b, rows, gain, (1, 1, 257.0), add16) / U16, 1),
        DynamicImage::ImageLumaA16(b) => (walk(b, rows, gain, (2, 1, 257.0), add16) / U16, 1),
        DynamicImage::ImageRgb16(b) => (walk(b, rows, gain, (3, 3, 257.0), add16) / U16, 3),
        DynamicImage::ImageRgba16(b) => (walk(b, rows, gain, (4, 3, 257.0), add16) / U16, 3),
        other => {
            let mut rgb = DynamicImage::ImageRgb8(other.to_rgb8());
            let p = apply(&mut rgb, rows, gain);
            *other = rgb;
            return p;
        }
    };
    let mse = se / (rows.w * rows.h * channels) as f64;
    if mse <= 0.0 {
        f64::INFINITY
    } else {
        10.0 * (255.0f64 * 255.0 / mse).log10()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_mean_square_matches_the_widened_rows() {
        // A field smaller, equal to and larger than the image on each axis.
        for (fw, fh, w, h) in [(37, 23, 80, 51), (40, 40, 40, 40), (64, 30, 41, 77)] {
            let field = Plane {
                w: fw,
                h: fh,
                data: (0..fw * fh)
                    .map(|i| ((i * 7919 % 211) as f32 - 105.0) / 37.0)
                    .collect(),
            };
            let rows = Rows::new(&field, w, h);
            let mut cache = rows.cache();
            let mut buf = vec![0f32; w];
            let mut sum = 0f64;
            for y in 0..h {
                rows.row(y, &mut cache, &mut buf);
                sum += buf.iter().map(|v| f64::from(v * v)).sum::<f64>();
            }
            let brute = sum / (w * h) as f64;
            let fast = rows.mean_square();
            assert!(
                (fast - brute).abs() < 1e-4 * brute,
                "{fw}x{fh} -> {w}x{h}: {fast} vs {brute}"
            );
        }
    }
}
