//! A single-channel f32 image plane and the few filters the mark needs.

#[derive(Clone, Debug)]
pub(crate) struct Plane {
    pub w: usize,
    pub h: usize,
    pub data: Vec<f32>,
}

impl Plane {
    pub fn new(w: usize, h: usize) -> Self {
        Plane {
            w,
            h,
            data: vec![0.0; w * h],
        }
    }

    /// Luminance (BT.601 weights) of any decoded image, 0..255.
    pub fn luma(img: &image::DynamicImage) -> Self {
        let (w, h) = (img.width() as usize, img.height() as usize);
        let mut p = Plane::new(w, h);
        match img {
            image::DynamicImage::ImageLuma8(g) => {
                for (d, s) in p.data.iter_mut().zip(g.as_raw()) {
                    *d = f32::from(*s);
                }
            }
            image::DynamicImage::ImageRgb8(rgb) => fill_rgb(&mut p.data, rgb.as_raw(), 3),
            image::DynamicImage::ImageRgba8(rgba) => fill_rgb(&mut p.data, rgba.as_raw(), 4),
            other => {
                let rgb = other.to_rgb8();
                fill_rgb(&mut p.data, rgb.as_raw(), 3);
            }
        }
        p
    }

    /// Mean of the squared values.
    pub fn mean_square(&self) -> f64 {
        self.data.iter().map(|v| f64::from(v * v)).sum::<f64>() / self.data.len().max(1) as f64
    }

    /// Area-weighted resampling to `nw x nh` (separable triangle filter scaled to the
    /// footprint when shrinking, bilinear when enlarging).
    pub fn resize(&self, nw: usize, nh: usize) -> Plane {
        if nw == self.w && nh == self.h {
            return self.clone();
        }
        let tmp = resample_rows(&self.data, self.w, self.h, nw);
        // Vertical pass over whole rows (no transpose): each output row is a weighted sum of
        // a few input rows.
        let taps = taps(self.h, nh);
        let mut out = Plane::new(nw, nh);
        for (y, (lo, ws)) in taps.iter().enumerate() {
            let orow = &mut out.data[y * nw..(y + 1) * nw];
            for (k, &wgt) in ws.iter().enumerate() {
                let src = &tmp[(lo + k) * nw..(lo + k + 1) * nw];
                for (o, v) in orow.iter_mut().zip(src) {
                    *o += wgt * v;
                }
            }
        }
        out
    }

    /// Bilinear upsampling to `nw x nh` (pixel centres aligned), for smooth fields.
    pub fn upsample_bilinear(&self, nw: usize, nh: usize) -> Plane {
        let sx = self.w as f64 / nw as f64;
        let sy = self.h as f64 / nh as f64;
        let cols: Vec<(usize, usize, f32)> = (0..nw)
            .map(|x| {
                let u = ((x as f64 + 0.5) * sx - 0.5).max(0.0);
                let x0 = (u.floor() as usize).min(self.w - 1);
                let x1 = (x0 + 1).min(self.w - 1);
                (x0, x1, (u - x0 as f64) as f32)
            })
            .collect();
        let mut out = Plane::new(nw, nh);
        for y in 0..nh {
            let v = ((y as f64 + 0.5) * sy - 0.5).max(0.0);
            let y0 = (v.floor() as usize).min(self.h - 1);
            let y1 = (y0 + 1).min(self.h - 1);
            let ty = (v - y0 as f64) as f32;
            let r0 = &self.data[y0 * self.w..(y0 + 1) * self.w];
            let r1 = &self.data[y1 * self.w..(y1 + 1) * self.w];
            let orow = &mut out.data[y * nw..(y + 1) * nw];
            for (o, &(x0, x1, tx)) in orow.iter_mut().zip(&cols) {
                let a = r0[x0] + (r0[x1] - r0[x0]) * tx;
                let b = r1[x0] + (r1[x1] - r1[x0]) * tx;
                *o = a + (b - a) * ty;
            }
        }
        out
    }

    /// Mean over a (2r+1)^2 box, clamped at the borders: two separable running sums, so
    /// the cost does not depend on `r`.
    pub fn box_mean(&self, r: usize) -> Plane {
        let (w, h) = (self.w, self.h);
        if w == 0 || h == 0 {
            return self.clone();
        }
        // Horizontal pass: running window sum per row.
        let mut tmp = vec![0f32; w * h];
        for y in 0..h {
            let row = &self.data[y * w..(y + 1) * w];
            let out = &mut tmp[y * w..(y + 1) * w];
            let mut acc = 0f64;
            let mut lo = 0usize;
            let mut hi = 0usize; // window is [lo, hi)
            for (x, o) in out.iter_mut().enumerate() {
                let want_hi = (x + r + 1).min(w);
                let want_lo = x.saturating_sub(r);
                while hi < want_hi {
                    acc += f64::from(row[hi]);
                    hi += 1;
                }
                while lo < want_lo {
                    acc -= f64::from(row[lo]);
                    lo += 1;
                }
                *o = (acc / (hi - lo) as f64) as f32;
            }
        }
        // Vertical pass: running sums of whole rows, cache-friendly.
        let mut out = Plane::new(w, h);
        let mut acc = vec![0f64; w];
        let (mut lo, mut hi) = (0usize, 0usize);
        for y in 0..h {
            let want_hi = (y + r + 1).min(h);
            let want_lo = y.saturating_sub(r);
            while hi < want_hi {
                for (a, v) in acc.iter_mut().zip(&tmp[hi * w..(hi + 1) * w]) {
                    *a += f64::from(*v);
                }
                hi += 1;
            }
            while lo < want_lo {
                for (a, v) in acc.iter_mut().zip(&tmp[lo * w..(lo + 1) * w]) {
                    *a -= f64::from(*v);
                }
                lo += 1;
            }
            let inv = 1.0 / (hi - lo) as f64;
            for (o, a) in out.data[y * w..(y + 1) * w].iter_mut().zip(&acc) {
                *o = (a * inv) as f32;
            }
        }
        out
    }
}

fn fill_rgb(dst: &mut [f32], src: &[u8], stride: usize) {
    for (d, px) in dst.iter_mut().zip(src.chunks_exact(stride)) {
        *d = 0.299 * f32::from(px[0]) + 0.587 * f32::from(px[1]) + 0.114 * f32::from(px[2]);
    }
}

/// Triangle-filter taps mapping `n` samples to `nn` (footprint-scaled when shrinking).
fn taps(n: usize, nn: usize) -> Vec<(usize, Vec<f32>)> {
    let scale = n as f64 / nn as f64;
    let support = scale.max(1.0);
    (0..nn)
        .map(|i| {
            let center = (i as f64 + 0.5) * scale - 0.5;
            let lo = (center - support).ceil().max(0.0) as usize;
            let hi = ((center + support).floor() as isize)
                .min(n as isize - 1)
                .max(0) as usize;
            let lo = lo.min(hi);
            let mut ws: Vec<f32> = (lo..=hi)
                .map(|j| (1.0 - ((j as f64 - center).abs() / support)).max(0.0) as f32)
                .collect();
            let sum: f32 = ws.iter().sum();
            if sum > 0.0 {
                ws.iter_mut().for_each(|v| *v /= sum);
            } else {
                ws = vec![1.0];
            }
            (lo, ws)
        })
        .collect()
}

/// Resamples each row of a `w x h` buffer to `nw` samples.
fn resample_rows(src: &[f32], w: usize, h: usize, nw: usize) -> Vec<f32> {
    let taps = taps(w, nw);
    let mut out = vec![0.0; nw * h];
    for y in 0..h {
        let row = &src[y * w..(y + 1) * w];
        let orow = &mut out[y * nw..(y + 1) * nw];
        for (o, (lo, ws)) in orow.iter_mut().zip(&taps) {
            *o = ws.iter().zip(&row[*lo..]).map(|(a, b)| a * b).sum();
        }
    }
    out
}

/// The working scale for an image of `w x h`: the mark is defined on a copy whose short side
/// is at most 512 px (and at most ~600k pixels), so large images carry proportionally larger
/// chips that survive being shrunk for the web.
pub(crate) fn working_scale(w: usize, h: usize) -> f64 {
    let short = w.min(h) as f64;
    let by_side = 512.0 / short;
    let by_area = (600_000.0 / (w as f64 * h as f64)).sqrt();
    by_side.min(by_area).min(1.0)
}
