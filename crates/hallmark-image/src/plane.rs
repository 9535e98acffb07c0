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
        let t = transpose(&tmp, nw, self.h);
        let out = resample_rows(&t, self.h, nw, nh);
        Plane {
            w: nw,
            h: nh,
            data: transpose(&out, nh, nw),
        }
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

    /// Mean over a (2r+1)^2 box, clamped at the borders (summed-area table).
    pub fn box_mean(&self, r: usize) -> Plane {
        let (w, h) = (self.w, self.h);
        let mut sat = vec![0f64; (w + 1) * (h + 1)];
        for y in 0..h {
            let mut row = 0f64;
            for x in 0..w {
                row += f64::from(self.data[y * w + x]);
                sat[(y + 1) * (w + 1) + x + 1] = sat[y * (w + 1) + x + 1] + row;
            }
        }
        let mut out = Plane::new(w, h);
        for y in 0..h {
            let y0 = y.saturating_sub(r);
            let y1 = (y + r + 1).min(h);
            for x in 0..w {
                let x0 = x.saturating_sub(r);
                let x1 = (x + r + 1).min(w);
                let s = sat[y1 * (w + 1) + x1] - sat[y0 * (w + 1) + x1] - sat[y1 * (w + 1) + x0]
                    + sat[y0 * (w + 1) + x0];
                out.data[y * w + x] = (s / ((y1 - y0) * (x1 - x0)) as f64) as f32;
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

fn transpose(src: &[f32], w: usize, h: usize) -> Vec<f32> {
    let mut out = vec![0.0; w * h];
    const B: usize = 32;
    for by in (0..h).step_by(B) {
        for bx in (0..w).step_by(B) {
            for y in by..(by + B).min(h) {
                for x in bx..(bx + B).min(w) {
                    out[x * h + y] = src[y * w + x];
                }
            }
        }
    }
    out
}

/// Resamples each row of a `w x h` buffer to `nw` samples.
fn resample_rows(src: &[f32], w: usize, h: usize, nw: usize) -> Vec<f32> {
    let scale = w as f64 / nw as f64;
    let support = scale.max(1.0); // triangle half-width in source pixels
    // Precompute taps per output sample.
    let mut taps: Vec<(usize, Vec<f32>)> = Vec::with_capacity(nw);
    for i in 0..nw {
        let center = (i as f64 + 0.5) * scale - 0.5;
        let lo = (center - support).ceil().max(0.0) as usize;
        let hi = ((center + support).floor() as isize)
            .min(w as isize - 1)
            .max(0) as usize;
        let mut ws: Vec<f32> = (lo..=hi)
            .map(|j| (1.0 - ((j as f64 - center).abs() / support)).max(0.0) as f32)
            .collect();
        let sum: f32 = ws.iter().sum();
        if sum > 0.0 {
            ws.iter_mut().for_each(|v| *v /= sum);
        } else {
            ws = vec![1.0];
        }
        taps.push((lo, ws));
    }
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
