//! Geometric synchronisation: the autocorrelation of the high-passed image is a lattice of
//! peaks spaced by the mark's tile; finding that lattice gives scale, rotation and aspect.

use realfft::RealFftPlanner;
use rustfft::{FftPlanner, num_complex::Complex32};

use crate::plane::Plane;

/// In-place 2-D FFT of a `w x h` row-major buffer.
pub(crate) fn fft2d(
    planner: &mut FftPlanner<f32>,
    buf: &mut [Complex32],
    w: usize,
    h: usize,
    inverse: bool,
) {
    let row = if inverse {
        planner.plan_fft_inverse(w)
    } else {
        planner.plan_fft_forward(w)
    };
    row.process(buf);
    let mut t = transpose(buf, w, h);
    let col = if inverse {
        planner.plan_fft_inverse(h)
    } else {
        planner.plan_fft_forward(h)
    };
    col.process(&mut t);
    transpose_into(&t, h, w, buf);
}

fn transpose(src: &[Complex32], w: usize, h: usize) -> Vec<Complex32> {
    let mut out = vec![Complex32::new(0.0, 0.0); w * h];
    transpose_into(src, w, h, &mut out);
    out
}

/// Writes the transpose of the `w x h` `src` into `out` (`h x w`).
fn transpose_into<T: Copy>(src: &[T], w: usize, h: usize, out: &mut [T]) {
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
}

/// Spectral analysis of the high-passed plane `r`.
///
/// Returns the *whitened power spectrum* (each frequency's power divided by the local average
/// power around it, zero frequency at the centre) and the *whitened plane* (the plane filtered
/// so the host image's spectrum is flat). In the ratio the host's smooth spectrum flattens to
/// about 1 while the pilot's few spectral lines stand far above it. Frequencies of an 8x8
/// block grid with the given period (in pixels of `r`) are notched out so JPEG blocking does
/// not pose as a line.
pub(crate) fn analyse(
    planner: &mut FftPlanner<f32>,
    r: &Plane,
    block_period: f64,
) -> (Plane, Plane) {
    let (w, h) = (r.w, r.h);
    let mut reals = RealFftPlanner::<f32>::new();
    let half = HalfSpectrum::of(planner, &mut reals, r);
    // Power of the kept half, transposed (blocked) to rows, then spread over the whole
    // centred plane row by row: bin (y, x) past the half is the mirror of (-y, -x).
    let wc = w / 2 + 1;
    let half_power = {
        let by_cols: Vec<f32> = half.cols.iter().map(|c| c.norm_sqr()).collect();
        let mut rows = vec![0f32; h * wc];
        transpose_into(&by_cols, h, wc, &mut rows);
        rows
    };
    let mut power = Plane::new(w, h);
    for y in 0..h {
        let row = &half_power[y * wc..(y + 1) * wc];
        let my = if y == 0 { 0 } else { h - y };
        let mirror = &half_power[my * wc..(my + 1) * wc];
        let out = &mut power.data[centred(y, h) * w..(centred(y, h) + 1) * w];
        for x in 0..w {
            out[centred(x, w)] = if x < wc { row[x] } else { mirror[w - x] };
        }
    }
    drop(half_power);
    let env = power.box_mean(3);
    let mut notch_x = vec![false; w];
    let mut notch_y = vec![false; h];
    if block_period >= 2.5 {
        for (len, m) in [(w, &mut notch_x), (h, &mut notch_y)] {
            let step = len as f64 / block_period;
            let mut k = 1.0;
            while k * step < len as f64 {
                let c = (k * step).round() as i64;
                for d in -1..=1 {
                    m[(c + d).rem_euclid(len as i64) as usize] = true;
                }
                k += 1.0;
            }
        }
    }
    // Blocking puts energy along whole lines of the spectrum, while a pilot line is a point:
    // on the block grid's rows and columns, measure power against the line's own median, so
    // blocking flattens out and a pilot line that happens to fall there (a small image
    // halved puts every pilot line on the grid) still stands out.
    let line_median = |vals: Vec<f32>| -> f32 {
        let mut v = vals;
        let mid = v.len() / 2;
        if v.is_empty() {
            return 0.0;
        }
        *v.select_nth_unstable_by(mid, f32::total_cmp).1
    };
    let col_med: Vec<f32> = (0..w)
        .map(|x| {
            if notch_x[x] {
                line_median(
                    (0..h)
                        .map(|y| power.data[centred(y, h) * w + centred(x, w)])
                        .collect(),
                )
            } else {
                0.0
            }
        })
        .collect();
    let row_med: Vec<f32> = (0..h)
        .map(|y| {
            if notch_y[y] {
                let sy = centred(y, h);
                line_median(power.data[sy * w..(sy + 1) * w].to_vec())
            } else {
                0.0
            }
        })
        .collect();
    // The ratio, and the whitening gain 1/sqrt(envelope) per bin (unshifted layout; 0 next
    // to zero frequency).
    let mut ratio = Plane::new(w, h);
    let mut gain = Plane::new(w, h);
    for (y, &rm) in row_med.iter().enumerate() {
        let sy = centred(y, h);
        for (x, &cm) in col_med.iter().enumerate() {
            let sx = centred(x, w);
            let near_dc = (x <= 1 || x + 1 >= w) && (y <= 1 || y + 1 >= h);
            if near_dc {
                continue;
            }
            let e = env.data[sy * w + sx].max(cm).max(rm).max(1e-12);
            ratio.data[sy * w + sx] = (power.data[sy * w + sx] / e).min(30.0);
            gain.data[y * w + x] = 1.0 / e.sqrt();
        }
    }
    // Peak memory: the power and its envelope are done with before the inverse transform.
    drop((power, env));
    let white = half.filtered(planner, &mut reals, &gain);
    (ratio, white)
}

/// Index `i` of an `n`-long axis with zero frequency moved to the centre (`(i + n/2) % n`
/// without a division).
#[inline(always)]
fn centred(i: usize, n: usize) -> usize {
    let s = i + n / 2;
    if s >= n { s - n } else { s }
}

/// The 2-D spectrum of a real plane, kept as its non-redundant half: the spectrum is
/// conjugate-symmetric, so rows are transformed real to complex (w/2 + 1 bins) and only
/// those columns (half the work and memory of a complex 2-D transform). Column x (< w/2 + 1)
/// is stored contiguously.
struct HalfSpectrum {
    w: usize,
    h: usize,
    cols: Vec<Complex32>,
}

impl HalfSpectrum {
    fn of(planner: &mut FftPlanner<f32>, reals: &mut RealFftPlanner<f32>, r: &Plane) -> Self {
        let (w, h) = (r.w, r.h);
        let wc = w / 2 + 1;
        let r2c = reals.plan_fft_forward(w);
        let mut rows = vec![Complex32::new(0.0, 0.0); h * wc];
        let mut row = r2c.make_input_vec();
        let mut scratch = r2c.make_scratch_vec();
        for (src, out) in r.data.chunks_exact(w).zip(rows.chunks_exact_mut(wc)) {
            row.copy_from_slice(src);
            // Lengths are right by construction: the only possible error.
            let _ = r2c.process_with_scratch(&mut row, out, &mut scratch);
        }
        let mut cols = transpose(&rows, wc, h);
        drop(rows);
        planner.plan_fft_forward(h).process(&mut cols);
        HalfSpectrum { w, h, cols }
    }

    /// Bin (y, x) of the full spectrum (unshifted, unnormalised, as a complex 2-D FFT).
    #[cfg(test)]
    fn at(&self, y: usize, x: usize) -> Complex32 {
        let (w, h) = (self.w, self.h);
        if x <= w / 2 {
            self.cols[x * h + y]
        } else {
            self.cols[(w - x) * h + (h - y) % h].conj()
        }
    }

    /// The real part of the inverse transform of the spectrum times `gain` (a `w x h` plane
    /// in the unshifted layout), unnormalised like the forward transform. That is the
    /// inverse of the spectrum times the gain's symmetric part (g(k) + g(-k)) / 2, again a
    /// conjugate-symmetric spectrum, so half of it suffices.
    fn filtered(
        mut self,
        planner: &mut FftPlanner<f32>,
        reals: &mut RealFftPlanner<f32>,
        gain: &Plane,
    ) -> Plane {
        let (w, h) = (self.w, self.h);
        let wc = w / 2 + 1;
        // The symmetric part of the gain over the kept half, row by row (cache-friendly),
        // then transposed (blocked) to the columns' layout.
        let mut sym = vec![0f32; h * wc];
        for (y, row) in sym.chunks_exact_mut(wc).enumerate() {
            let g = &gain.data[y * w..(y + 1) * w];
            let my = (h - y) % h;
            let mirror = &gain.data[my * w..(my + 1) * w];
            row[0] = 0.5 * (g[0] + mirror[0]);
            for (x, s) in row.iter_mut().enumerate().skip(1) {
                *s = 0.5 * (g[x] + mirror[w - x]);
            }
        }
        let mut sym_cols = vec![0f32; h * wc];
        transpose_into(&sym, wc, h, &mut sym_cols);
        drop(sym);
        for (c, g) in self.cols.iter_mut().zip(&sym_cols) {
            *c *= *g;
        }
        planner.plan_fft_inverse(h).process(&mut self.cols);
        let mut rows = transpose(&self.cols, h, wc);
        drop(self.cols);
        let c2r = reals.plan_fft_inverse(w);
        let mut scratch = c2r.make_scratch_vec();
        let mut out = Plane::new(w, h);
        for (src, dst) in rows.chunks_exact_mut(wc).zip(out.data.chunks_exact_mut(w)) {
            // Symmetric by construction: the first (and, for even widths, last) bins are
            // real up to rounding.
            src[0].im = 0.0;
            if w % 2 == 0 {
                src[wc - 1].im = 0.0;
            }
            let _ = c2r.process_with_scratch(src, dst, &mut scratch);
        }
        out
    }
}

/// A candidate lattice: basis vectors `a` and `b` (x, y) in pixels of the analysed plane.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Lattice {
    pub a: [f64; 2],
    pub b: [f64; 2],
    pub score: f64,
}

impl Lattice {
    pub fn period(&self) -> f64 {
        ((self.a[0].hypot(self.a[1])) + (self.b[0].hypot(self.b[1]))) / 2.0
    }

    /// The basis's determinant: its cell's signed area (negative for a mirrored basis).
    pub fn determinant(&self) -> f64 {
        self.a[0] * self.b[1] - self.b[0] * self.a[1]
    }
}

/// The whitened spectrum, looked up by frequency in cycles per pixel.
struct Spectrum<'a> {
    p: &'a Plane,
}

impl Spectrum<'_> {
    /// Bin coordinates (fractional, centred) of frequency (fx, fy).
    fn bin(&self, fx: f64, fy: f64) -> (f64, f64) {
        (
            fx * self.p.w as f64 + (self.p.w / 2) as f64,
            fy * self.p.h as f64 + (self.p.h / 2) as f64,
        )
    }
    fn get(&self, x: i64, y: i64) -> f64 {
        if x < 0 || y < 0 || x >= self.p.w as i64 || y >= self.p.h as i64 {
            return 0.0;
        }
        f64::from(self.p.data[y as usize * self.p.w + x as usize])
    }
}

use crate::pattern::PILOT_HARMONICS;

/// Each value's 3x3 neighbourhood maximum (outside the plane counts as 0), with a bounds-
/// checked lookup.
struct Max3x3 {
    w: usize,
    h: usize,
    data: Vec<f32>,
}

impl Max3x3 {
    fn get(&self, x: usize, y: usize) -> f64 {
        if x >= self.w || y >= self.h {
            return 0.0;
        }
        f64::from(self.data[y * self.w + x])
    }
}

fn max3x3(p: &Plane) -> Max3x3 {
    let (w, h) = (p.w, p.h);
    // The values are >= 0 (never NaN), so 0 pads the borders and a plain comparison is the
    // maximum (it vectorises, unlike `f32::max`).
    let max = |a: f32, b: f32| if a > b { a } else { b };
    // Horizontal maximum, then vertical.
    let mut hor = vec![0f32; w * h];
    for (src, dst) in p.data.chunks_exact(w).zip(hor.chunks_exact_mut(w)) {
        if w < 3 {
            let m = src.iter().fold(0f32, |m, &v| max(m, v));
            dst.fill(m);
            continue;
        }
        dst[0] = max(src[0], src[1]);
        dst[w - 1] = max(src[w - 2], src[w - 1]);
        let inner = src[..w - 2].iter().zip(&src[1..w - 1]).zip(&src[2..]);
        for (d, ((a, b), c)) in dst[1..w - 1].iter_mut().zip(inner) {
            *d = max(max(*a, *b), *c);
        }
    }
    let mut data = vec![0f32; w * h];
    for y in 0..h {
        let lo = y.saturating_sub(1);
        let hi = (y + 1).min(h - 1);
        let dst = &mut data[y * w..(y + 1) * w];
        for yy in lo..=hi {
            for (d, &v) in dst.iter_mut().zip(&hor[yy * w..(yy + 1) * w]) {
                *d = max(*d, v);
            }
        }
    }
    Max3x3 { w, h, data }
}

/// Finds up to `max` candidate pilot lattices, best first, with periods in `[p_min, p_max]`
/// pixels, by matching the pilot's line pattern against the whitened spectrum over scale and
/// rotation, then refining each from the measured line positions (which also absorbs an
/// aspect-ratio change).
pub(crate) fn find_lattices(ratio: &Plane, p_min: f64, p_max: f64, max: usize) -> Vec<Lattice> {
    let sp = Spectrum { p: ratio };
    let n_theta = 180usize;
    let dtheta = std::f64::consts::FRAC_PI_2 / n_theta as f64;
    let step: f64 = 1.008;
    let mut ps = vec![];
    let mut p = p_min;
    while p <= p_max {
        ps.push(p);
        p *= step;
    }
    let np = ps.len();
    if np == 0 {
        return vec![];
    }
    // The grid asks for the best value within one bin of ~60k x 8 frequencies (lines fall
    // between bins): take the 3x3 maximum of the spectrum once, then each is one lookup.
    let near = max3x3(ratio);
    let (w, h) = (ratio.w as f64, ratio.h as f64);
    let (cx0, cy0) = ((ratio.w / 2) as f64, (ratio.h / 2) as f64);
    let mut grid = vec![0f64; np * n_theta];
    for t in 0..n_theta {
        let theta = t as f64 * dtheta;
        let (c, s) = (theta.cos(), theta.sin());
        let rotated: [(f64, f64); 8] = std::array::from_fn(|j| {
            let (k1, k2) = PILOT_HARMONICS[j];
            let (k1, k2) = (f64::from(k1), f64::from(k2));
            (c * k1 - s * k2, s * k1 + c * k2)
        });
        for (i, &p) in ps.iter().enumerate() {
            let inv_p = 1.0 / p;
            let mut sum = 0.0;
            for &(ux, uy) in &rotated {
                let (fx, fy) = (ux * inv_p, uy * inv_p);
                if fx.abs() >= 0.5 || fy.abs() >= 0.5 {
                    continue;
                }
                // |f| < 0.5 keeps both coordinates positive: truncation is the floor.
                let x = (fx * w + cx0 + 0.5) as usize;
                let y = (fy * h + cy0 + 0.5) as usize;
                sum += near.get(x, y);
            }
            grid[i * n_theta + t] = sum / PILOT_HARMONICS.len() as f64;
        }
    }
    // Local maxima over a 5x5 neighbourhood (angles wrap), best `max` kept. A cell below
    // the `max`-th best maximum found so far cannot make the cut: skip its neighbourhood.
    let wrap: Vec<usize> = (0..n_theta + 4)
        .map(|t| (t + n_theta - 2) % n_theta)
        .collect();
    let mut peaks: Vec<(f64, f64, f64)> = vec![];
    let mut bar = f64::NEG_INFINITY;
    for i in 0..np {
        for t in 0..n_theta {
            let v = grid[i * n_theta + t];
            if v < bar {
                continue;
            }
            let is_max = (i.saturating_sub(2)..(i + 3).min(np)).all(|ii| {
                (0..5).all(|k| (ii == i && k == 2) || grid[ii * n_theta + wrap[t + k]] <= v)
            });
            if is_max {
                peaks.push((v, ps[i], t as f64 * dtheta));
                if max > 0 && peaks.len() >= max {
                    let mut vs: Vec<f64> = peaks.iter().map(|q| q.0).collect();
                    vs.sort_by(|a, b| b.total_cmp(a));
                    bar = vs[max - 1];
                }
            }
        }
    }
    peaks.sort_by(|x, y| y.0.total_cmp(&x.0));
    peaks
        .into_iter()
        .take(max)
        .map(|(v, p, theta)| refine(&sp, p, theta, v))
        .collect()
}

/// Least-squares fit of the frequency basis B (f = B k) from sub-bin line positions, then
/// the spatial basis A = B^-T.
fn refine(sp: &Spectrum<'_>, p: f64, theta: f64, score: f64) -> Lattice {
    let (c, s) = (theta.cos(), theta.sin());
    let coarse = Lattice {
        a: [p * c, p * s],
        b: [-p * s, p * c],
        score,
    };
    let mut kk = [[0.0f64; 2]; 2]; // sum w k k^T
    let mut fk = [[0.0f64; 2]; 2]; // sum w f k^T (rows fx, fy)
    let mut used = 0;
    for &(k1, k2) in &PILOT_HARMONICS {
        let k = [f64::from(k1), f64::from(k2)];
        let fx = (c * k[0] - s * k[1]) / p;
        let fy = (s * k[0] + c * k[1]) / p;
        let (bx, by) = sp.bin(fx, fy);
        let (cx, cy) = (bx.round() as i64, by.round() as i64);
        let mut best = (0.0f64, cx, cy);
        for dy in -2..=2 {
            for dx in -2..=2 {
                let v = sp.get(cx + dx, cy + dy);
                if v > best.0 {
                    best = (v, cx + dx, cy + dy);
                }
            }
        }
        if best.0 < 3.0 {
            continue;
        }
        let sub = |m: f64, c0: f64, pl: f64| {
            let den = m - 2.0 * c0 + pl;
            if den.abs() < 1e-12 {
                0.0
            } else {
                (0.5 * (m - pl) / den).clamp(-0.5, 0.5)
            }
        };
        let (x0, y0) = (best.1, best.2);
        let px = x0 as f64 + sub(sp.get(x0 - 1, y0), best.0, sp.get(x0 + 1, y0));
        let py = y0 as f64 + sub(sp.get(x0, y0 - 1), best.0, sp.get(x0, y0 + 1));
        let mfx = (px - (sp.p.w / 2) as f64) / sp.p.w as f64;
        let mfy = (py - (sp.p.h / 2) as f64) / sp.p.h as f64;
        let w = best.0;
        for r in 0..2 {
            for cc in 0..2 {
                kk[r][cc] += w * k[r] * k[cc];
            }
        }
        for cc in 0..2 {
            fk[0][cc] += w * mfx * k[cc];
            fk[1][cc] += w * mfy * k[cc];
        }
        used += 1;
    }
    let det = kk[0][0] * kk[1][1] - kk[0][1] * kk[1][0];
    if used < 4 || det.abs() < 1e-12 {
        return coarse;
    }
    let inv = [
        [kk[1][1] / det, -kk[0][1] / det],
        [-kk[1][0] / det, kk[0][0] / det],
    ];
    let bm = |r: usize, cc: usize| fk[r][0] * inv[0][cc] + fk[r][1] * inv[1][cc];
    let b = [[bm(0, 0), bm(0, 1)], [bm(1, 0), bm(1, 1)]];
    // A = B^-T.
    let bd = b[0][0] * b[1][1] - b[0][1] * b[1][0];
    if bd.abs() < 1e-12 {
        return coarse;
    }
    // B^-1 = [[b11, -b01], [-b10, b00]] / bd; A = (B^-1)^T.
    let a_mat = [[b[1][1] / bd, -b[1][0] / bd], [-b[0][1] / bd, b[0][0] / bd]];
    let refined = Lattice {
        a: [a_mat[0][0], a_mat[1][0]],
        b: [a_mat[0][1], a_mat[1][1]],
        score,
    };
    let change = (refined.a[0] - coarse.a[0]).hypot(refined.a[1] - coarse.a[1])
        + (refined.b[0] - coarse.b[0]).hypot(refined.b[1] - coarse.b[1]);
    if change > 0.1 * p {
        return coarse;
    }
    refined
}

// Lattice algebra: orientations, snapping to a known period, scaling.

/// The basis that makes the fold come out in orientation `o` (see [`dihedral`]).
pub(crate) fn oriented(l: &Lattice, o: usize) -> Lattice {
    let su = if o & 2 != 0 { -1.0 } else { 1.0 };
    let sv = if o & 1 != 0 { -1.0 } else { 1.0 };
    let (a, b) = if o & 4 != 0 {
        ([sv * l.b[0], sv * l.b[1]], [su * l.a[0], su * l.a[1]])
    } else {
        ([su * l.a[0], su * l.a[1]], [sv * l.b[0], sv * l.b[1]])
    };
    Lattice {
        a,
        b,
        score: l.score,
    }
}

/// `l` replaced by the axis-aligned square lattice of period `p` when each basis vector is
/// within 1.5% in length and 1 degree in angle of an axis (the spectral estimate's own error
/// on small images), else `None`.
pub(crate) fn snap(l: &Lattice, p: f64) -> Option<Lattice> {
    let snap_vec = |v: [f64; 2]| -> Option<[f64; 2]> {
        let len = v[0].hypot(v[1]);
        if (len / p - 1.0).abs() > 0.015 {
            return None;
        }
        let quarter = std::f64::consts::FRAC_PI_2;
        let angle = v[1].atan2(v[0]);
        let k = (angle / quarter).round();
        if (angle - k * quarter).abs() > 1f64.to_radians() {
            return None;
        }
        let (sn, cs) = (k * quarter).sin_cos();
        Some([cs.round() * p, sn.round() * p])
    };
    let (a, b) = (snap_vec(l.a)?, snap_vec(l.b)?);
    Some(Lattice {
        a,
        b,
        score: l.score,
    })
}

/// The axis-aligned square lattice of period `p` (an untouched image's pilot).
pub(crate) fn square_lattice(p: f64) -> Lattice {
    Lattice {
        a: [p, 0.0],
        b: [0.0, p],
        score: 0.0,
    }
}

pub(crate) fn scaled(l: &Lattice, k: f64) -> Lattice {
    Lattice {
        a: [l.a[0] * k, l.a[1] * k],
        b: [l.b[0] * k, l.b[1] * k],
        score: l.score,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plane(w: usize, h: usize, seed: usize) -> Plane {
        Plane {
            w,
            h,
            data: (0..w * h)
                .map(|i| (((i + seed) * 7919 % 251) as f32 - 125.0) / 50.0)
                .collect(),
        }
    }

    fn complex(p: &Plane) -> Vec<Complex32> {
        p.data.iter().map(|&v| Complex32::new(v, 0.0)).collect()
    }

    #[test]
    fn half_spectrum_matches_the_complex_transform() {
        let mut planner = FftPlanner::new();
        let mut reals = RealFftPlanner::new();
        for (w, h) in [(40, 30), (37, 23), (36, 25), (33, 40)] {
            let p = plane(w, h, 1);
            let half = HalfSpectrum::of(&mut planner, &mut reals, &p);
            let mut full = complex(&p);
            fft2d(&mut planner, &mut full, w, h, false);
            let scale = full.iter().map(|c| c.norm()).fold(0f32, f32::max);
            for y in 0..h {
                for x in 0..w {
                    let d = (half.at(y, x) - full[y * w + x]).norm();
                    assert!(d < 1e-5 * scale, "{w}x{h} bin ({x},{y}): off by {d}");
                }
            }
        }
    }

    #[test]
    fn filtering_the_half_matches_the_real_part_of_the_complex_inverse() {
        let mut planner = FftPlanner::new();
        let mut reals = RealFftPlanner::new();
        for (w, h) in [(40, 30), (37, 23), (36, 25), (33, 40)] {
            let p = plane(w, h, 3);
            // An asymmetric gain: the real part of the inverse sees only its symmetric part.
            let gain = Plane {
                w,
                h,
                data: (0..w * h).map(|i| ((i * 31 % 17) as f32) / 7.0).collect(),
            };
            let got = HalfSpectrum::of(&mut planner, &mut reals, &p).filtered(
                &mut planner,
                &mut reals,
                &gain,
            );
            let mut full = complex(&p);
            fft2d(&mut planner, &mut full, w, h, false);
            for (c, g) in full.iter_mut().zip(&gain.data) {
                *c *= g;
            }
            fft2d(&mut planner, &mut full, w, h, true);
            let scale = full.iter().map(|c| c.re.abs()).fold(0f32, f32::max);
            for (i, (a, b)) in got.data.iter().zip(&full).enumerate() {
                let d = (a - b.re).abs();
                assert!(d < 1e-4 * scale, "{w}x{h} pixel {i}: {a} vs {}", b.re);
            }
        }
    }
}
