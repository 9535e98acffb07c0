//! Geometric synchronisation: the autocorrelation of the high-passed image is a lattice of
//! peaks spaced by the mark's tile; finding that lattice gives scale, rotation and aspect.

use rustfft::{FftPlanner, num_complex::Complex32};

use crate::plane::{Plane, floor};

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
fn transpose_into(src: &[Complex32], w: usize, h: usize, out: &mut [Complex32]) {
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
    let mut spec: Vec<Complex32> = r.data.iter().map(|&v| Complex32::new(v, 0.0)).collect();
    fft2d(planner, &mut spec, w, h, false);
    let mut power = Plane::new(w, h);
    for y in 0..h {
        for x in 0..w {
            let sy = (y + h / 2) % h;
            let sx = (x + w / 2) % w;
            power.data[sy * w + sx] = spec[y * w + x].norm_sqr();
        }
    }
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
                        .map(|y| power.data[((y + h / 2) % h) * w + (x + w / 2) % w])
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
                let sy = (y + h / 2) % h;
                line_median(power.data[sy * w..(sy + 1) * w].to_vec())
            } else {
                0.0
            }
        })
        .collect();
    let mut ratio = Plane::new(w, h);
    for y in 0..h {
        for x in 0..w {
            let sy = (y + h / 2) % h;
            let sx = (x + w / 2) % w;
            let e = env.data[sy * w + sx]
                .max(col_med[x])
                .max(row_med[y])
                .max(1e-12);
            let near_dc = (x <= 1 || x + 1 >= w) && (y <= 1 || y + 1 >= h);
            if near_dc {
                spec[y * w + x] = Complex32::new(0.0, 0.0);
                continue;
            }
            ratio.data[sy * w + sx] = (power.data[sy * w + sx] / e).min(30.0);
            spec[y * w + x] /= e.sqrt();
        }
    }
    // Peak memory: the power and its envelope are done with before the inverse transform
    // allocates its own buffers.
    drop((power, env));
    fft2d(planner, &mut spec, w, h, true);
    let white = Plane {
        w,
        h,
        data: spec.iter().map(|c| c.re).collect(),
    };
    (ratio, white)
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
    /// Best value within one bin of the frequency (lines fall between bins).
    fn peak_near(&self, fx: f64, fy: f64) -> f64 {
        if fx.abs() >= 0.5 || fy.abs() >= 0.5 {
            return 0.0;
        }
        let (bx, by) = self.bin(fx, fy);
        let (cx, cy) = (floor(bx + 0.5) as i64, floor(by + 0.5) as i64);
        let mut best = 0.0f64;
        for dy in -1..=1 {
            for dx in -1..=1 {
                best = best.max(self.get(cx + dx, cy + dy));
            }
        }
        best
    }
    /// Score of a square lattice of period `p` pixels at angle `theta`: mean whitened power at
    /// the pilot's lines.
    fn score(&self, p: f64, theta: f64) -> f64 {
        let (c, s) = (theta.cos(), theta.sin());
        let mut sum = 0.0;
        for &(k1, k2) in &PILOT_HARMONICS {
            let (k1, k2) = (f64::from(k1), f64::from(k2));
            let fx = (c * k1 - s * k2) / p;
            let fy = (s * k1 + c * k2) / p;
            sum += self.peak_near(fx, fy);
        }
        sum / PILOT_HARMONICS.len() as f64
    }
}

use crate::pattern::PILOT_HARMONICS;

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
    let mut grid = vec![0f64; np * n_theta];
    for (i, &p) in ps.iter().enumerate() {
        for t in 0..n_theta {
            grid[i * n_theta + t] = sp.score(p, t as f64 * dtheta);
        }
    }
    let mut peaks = vec![];
    for i in 0..np {
        for t in 0..n_theta {
            let v = grid[i * n_theta + t];
            let mut is_max = true;
            'n: for di in -2i64..=2 {
                for dt in -2i64..=2 {
                    if di == 0 && dt == 0 {
                        continue;
                    }
                    let ii = i as i64 + di;
                    if ii < 0 || ii >= np as i64 {
                        continue;
                    }
                    let tt = (t as i64 + dt).rem_euclid(n_theta as i64) as usize;
                    if grid[ii as usize * n_theta + tt] > v {
                        is_max = false;
                        break 'n;
                    }
                }
            }
            if is_max {
                peaks.push((v, ps[i], t as f64 * dtheta));
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
