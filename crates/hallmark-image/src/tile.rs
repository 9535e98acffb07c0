//! The tile signal processing shared by the embedder and the detector: the high-passed,
//! locally normalised residual, folding it modulo a lattice into one tile, the tile's
//! high-pass and pilot removal, the eight flips and quarter-turns, the pilot's correlation
//! peak and line ratio, and the coded bits' soft values and statistics.

use hallmark_core::ecc;
use image::DynamicImage;
use rustfft::{FftPlanner, num_complex::Complex32};

use crate::{
    geometry::{Lattice, fft2d},
    pattern::{BINS_PER_CHIP, DATA_BINS, DATA_CHIPS, PILOT_BINS, PILOT_HARMONICS, Tile},
    plane::{Plane, floor},
};

/// Weights of the 8 folded-tile bins a chip's soft value sums (its 4 bins and 2 on each
/// side): a hat that counts the chip's centre most and the edges, where neighbours blur
/// in, least.
const HALF_HAT: [f32; 8] = [0.125, 0.375, 0.625, 0.875, 0.875, 0.625, 0.375, 0.125];

pub(crate) fn soft_bits_raw(tile: &Tile, t: &[f32], dy: usize, dx: usize) -> Vec<f32> {
    {
        let mut soft = vec![0f32; ecc::CODED_BITS];
        for i in 0..DATA_CHIPS {
            for j in 0..DATA_CHIPS {
                let mut acc = 0f32;
                for (ty, wy) in HALF_HAT.iter().enumerate() {
                    let by = (i * BINS_PER_CHIP + ty + DATA_BINS - 2 + dy) % DATA_BINS;
                    let row = &t[by * DATA_BINS..(by + 1) * DATA_BINS];
                    for (tx, wx) in HALF_HAT.iter().enumerate() {
                        let bx = (j * BINS_PER_CHIP + tx + DATA_BINS - 2 + dx) % DATA_BINS;
                        acc += wy * wx * row[bx];
                    }
                }
                soft[usize::from(tile.bit[i * DATA_CHIPS + j])] +=
                    tile.sign[i * DATA_CHIPS + j] * acc;
            }
        }
        soft
    }
}

/// The detector's per-bit statistics, computed linearly at the embedding geometry, for the
/// host picture `yw` and for a mark `mark` (both at working resolution): what the informed
/// embedder needs to know how the picture pushes each bit.
pub(crate) fn bit_statistics(
    tile: &Tile,
    yw: &Plane,
    yw_mean: &Plane,
    mark: &Plane,
    chip: (f64, f64),
) -> (Vec<f32>, Vec<f32>) {
    let (rh, norm) = normalised_residual_with(yw, yw_mean);
    let mut rm = mark.box_mean(HIGHPASS_RADIUS);
    for ((mm, v), n) in rm.data.iter_mut().zip(&mark.data).zip(&norm.data) {
        *mm = (v - *mm) / n;
    }
    let l = Lattice {
        a: [chip.0 * DATA_CHIPS as f64, 0.0],
        b: [0.0, chip.1 * DATA_CHIPS as f64],
        score: 0.0,
    };
    let mut planner = FftPlanner::new();
    let full = (0, 0, yw.w, yw.h);
    let mut stats = |p: &Plane| {
        let t = tile_highpass(&fold(p, &l, DATA_BINS, full), DATA_BINS, l.period());
        let t = remove_pilot(&mut planner, &t);
        soft_bits_raw(tile, &t, 0, 0)
    };
    (stats(&rh), stats(&rm))
}

/// Mean power of the folded tile on the pilot's 8 spectral lines (and their conjugates)
/// over its mean power at the other frequencies of the same band (radius 6-16 bins, where
/// the lines lie): about 1 when the tile holds no pilot, 5 to several hundred when it does.
/// The lines' neighbours are left out of the reference, so a slightly blurred pilot does
/// not raise it.
pub(crate) fn pilot_line_ratio(planner: &mut FftPlanner<f32>, t: &[f32]) -> f64 {
    let mut buf: Vec<Complex32> = t.iter().map(|&v| Complex32::new(v, 0.0)).collect();
    fft2d(planner, &mut buf, DATA_BINS, DATA_BINS, false);
    let step = (DATA_BINS / PILOT_BINS) as i64;
    let g = DATA_BINS as i64;
    let mut near_line = vec![false; DATA_BINS * DATA_BINS];
    let mut on = 0.0f64;
    for &(k1, k2) in &PILOT_HARMONICS {
        for sign in [1i64, -1] {
            let (cx, cy) = (sign * i64::from(k1) * step, sign * i64::from(k2) * step);
            let at = |dx: i64, dy: i64| {
                (cy + dy).rem_euclid(g) as usize * DATA_BINS + (cx + dx).rem_euclid(g) as usize
            };
            on += f64::from(buf[at(0, 0)].norm_sqr());
            for dy in -1..=1 {
                for dx in -1..=1 {
                    near_line[at(dx, dy)] = true;
                }
            }
        }
    }
    let signed = |i: usize| {
        if i > DATA_BINS / 2 {
            i as f64 - DATA_BINS as f64
        } else {
            i as f64
        }
    };
    let (mut off, mut n) = (0.0f64, 0usize);
    for (i, c) in buf.iter().enumerate() {
        let r = signed(i % DATA_BINS).hypot(signed(i / DATA_BINS));
        if (6.0..=16.0).contains(&r) && !near_line[i] {
            off += f64::from(c.norm_sqr());
            n += 1;
        }
    }
    let lines = 2 * PILOT_HARMONICS.len();
    let ratio = (on / lines as f64) / (off / n.max(1) as f64);
    if ratio.is_finite() { ratio } else { 0.0 }
}

/// Radius of the box mean that the high-pass subtracts (a 5x5 box).
pub(crate) const HIGHPASS_RADIUS: usize = 2;

/// High-pass (minus `m`, the 5x5 mean `y.box_mean(HIGHPASS_RADIUS)`), then divide by the local mean absolute residual and clip.
/// The embedder put more mark where the picture is busy, and the host's own residual is
/// larger there too; normalising by local activity weighs every region by its
/// signal-to-noise ratio, and clipping keeps edges from dominating.
/// Returns the residual and the per-pixel normaliser used.
#[multiversion::multiversion(targets("x86_64+avx2"))]
pub(crate) fn normalised_residual_with(y: &Plane, m: &Plane) -> (Plane, Plane) {
    let mut r = Plane::new(y.w, y.h);
    for ((o, a), b) in r.data.iter_mut().zip(&y.data).zip(&m.data) {
        *o = a - b;
    }
    let local = r.box_mean_of_abs(NORM_RADIUS);
    // Row sums in f32 (vectorised), the total in f64.
    let global = r
        .data
        .chunks(y.w.max(1))
        .map(|row| f64::from(row.iter().map(|v| v.abs()).sum::<f32>()))
        .sum::<f64>()
        / r.data.len().max(1) as f64;
    let floor = (0.25 * global).max(0.25) as f32;
    let mut norm = local;
    norm.data.iter_mut().for_each(|l| *l += floor);
    for (v, n) in r.data.iter_mut().zip(&norm.data) {
        *v = (*v / n).clamp(-3.0, 3.0);
    }
    (r, norm)
}

/// Radius of the local normaliser (mean absolute residual over a 9x9 box). Measured against
/// 6 and 9: a tighter normaliser follows texture edges better (more recoveries on every
/// small photo).
pub(crate) const NORM_RADIUS: usize = 4;

/// Folds the pixels of `region` (x0, y0, x1, y1) modulo the lattice into an n x n tile
/// (mean per bin; bin column follows `a`, row follows `b`).
pub(crate) fn fold(
    r: &Plane,
    l: &Lattice,
    n: usize,
    region: (usize, usize, usize, usize),
) -> Vec<f32> {
    let det = l.determinant();
    let mut sum = vec![0f32; n * n];
    let mut cnt = vec![0u32; n * n];
    if det.abs() < 1e-6 {
        return sum;
    }
    // Inverse of A = [a b] (columns): tile coords t = A^-1 (x, y).
    let (i00, i01, i10, i11) = (l.b[1] / det, -l.b[0] / det, -l.a[1] / det, l.a[0] / det);
    let g = n as f64;
    let (x0, y0, x1, y1) = region;
    let (x1, y1) = (x1.min(r.w), y1.min(r.h));
    if x0 >= x1 || y0 >= y1 {
        return sum;
    }
    let bin = |t: f64| (((t - floor(t)) * g) as usize).min(n - 1);
    if l.a[1] == 0.0 && l.b[0] == 0.0 {
        // Axis-aligned (the embedder's own geometry): bins per column and per row.
        let cols: Vec<usize> = (x0..x1).map(|x| bin(i00 * (x as f64 + 0.5))).collect();
        for y in y0..y1 {
            let row_base = bin(i11 * (y as f64 + 0.5)) * n;
            let row = &r.data[y * r.w + x0..y * r.w + x1];
            for (&val, &bu) in row.iter().zip(&cols) {
                sum[row_base + bu] += val;
                cnt[row_base + bu] += 1;
            }
        }
    } else if n.is_power_of_two() && n <= 1 << 16 {
        // Tile coordinates as 32-bit fixed-point fractions of the tile: wrapping adds do
        // the modulo and the top bits are the bin (a step's rounding, 2^-33 of a tile,
        // adds up to well under a thousandth of a bin across a row).
        let bits = n.trailing_zeros();
        let shift = 32 - bits;
        let fixed = |t: f64| ((t - floor(t)) * 4_294_967_296.0) as u64 as u32;
        let (du, dv) = (fixed(i00), fixed(i10));
        for y in y0..y1 {
            let yf = y as f64 + 0.5;
            let xf = x0 as f64 + 0.5;
            let (mut u, mut v) = (fixed(i00 * xf + i01 * yf), fixed(i10 * xf + i11 * yf));
            let row = &r.data[y * r.w + x0..y * r.w + x1];
            for &val in row {
                let idx = (((v >> shift) << bits) | (u >> shift)) as usize;
                sum[idx] += val;
                cnt[idx] += 1;
                u = u.wrapping_add(du);
                v = v.wrapping_add(dv);
            }
        }
    } else {
        for y in y0..y1 {
            let yf = y as f64 + 0.5;
            let xf = x0 as f64 + 0.5;
            let (mut u, mut v) = (i00 * xf + i01 * yf, i10 * xf + i11 * yf);
            let row = &r.data[y * r.w + x0..y * r.w + x1];
            for &val in row {
                let idx = bin(v) * n + bin(u);
                sum[idx] += val;
                cnt[idx] += 1;
                u += i00;
                v += i10;
            }
        }
    }
    for (s, c) in sum.iter_mut().zip(&cnt) {
        if *c > 0 {
            *s /= *c as f32;
        }
    }
    sum
}

/// The same 5x5 high-pass as the image side, expressed in tile bins (circular), so the
/// template and extraction match what the folded signal went through. `tile_px` is the side
/// of the n-bin tile in pixels.
pub(crate) fn tile_highpass(t: &[f32], n: usize, tile_px: f64) -> Vec<f32> {
    let bins_per_px = n as f64 / tile_px;
    let r = ((2.0 * bins_per_px).round() as usize).min(n / 4);
    if r == 0 {
        return t.to_vec();
    }
    let k = (2 * r + 1) as f32;
    let mut tmp = vec![0f32; n * n];
    for y in 0..n {
        for x in 0..n {
            let mut s = 0.0;
            for d in 0..=2 * r {
                s += t[y * n + (x + n + d - r) % n];
            }
            tmp[y * n + x] = s / k;
        }
    }
    let mut out = vec![0f32; n * n];
    for y in 0..n {
        for x in 0..n {
            let mut s = 0.0;
            for d in 0..=2 * r {
                s += tmp[((y + n + d - r) % n) * n + x];
            }
            out[y * n + x] = t[y * n + x] - s / k;
        }
    }
    out
}

/// Removes the pilot from a folded data tile by zeroing its spectral lines (and their
/// neighbours), so the pilot's fixed pattern does not leak into the data chips. Costs the
/// data a few hundred of its 16384 frequencies.
pub(crate) fn remove_pilot(planner: &mut FftPlanner<f32>, t: &[f32]) -> Vec<f32> {
    let mut buf: Vec<Complex32> = t.iter().map(|&v| Complex32::new(v, 0.0)).collect();
    fft2d(planner, &mut buf, DATA_BINS, DATA_BINS, false);
    let step = (DATA_BINS / PILOT_BINS) as i64;
    let g = DATA_BINS as i64;
    for &(k1, k2) in &PILOT_HARMONICS {
        for sign in [1i64, -1] {
            let (cx, cy) = (sign * i64::from(k1) * step, sign * i64::from(k2) * step);
            for dy in -1..=1 {
                for dx in -1..=1 {
                    let x = (cx + dx).rem_euclid(g) as usize;
                    let y = (cy + dy).rem_euclid(g) as usize;
                    buf[y * DATA_BINS + x] = Complex32::new(0.0, 0.0);
                }
            }
        }
    }
    fft2d(planner, &mut buf, DATA_BINS, DATA_BINS, true);
    let n = (DATA_BINS * DATA_BINS) as f32;
    buf.iter().map(|c| c.re / n).collect()
}

/// One of the 8 symmetries of the square grid: bit 2 transposes, bit 0 flips rows, bit 1
/// flips columns.
pub(crate) fn dihedral(t: &[f32], o: usize) -> Vec<f32> {
    let mut out = vec![0f32; DATA_BINS * DATA_BINS];
    for y in 0..DATA_BINS {
        for x in 0..DATA_BINS {
            let (mut sy, mut sx) = if o & 4 != 0 { (x, y) } else { (y, x) };
            if o & 1 != 0 {
                sy = DATA_BINS - 1 - sy;
            }
            if o & 2 != 0 {
                sx = DATA_BINS - 1 - sx;
            }
            out[y * DATA_BINS + x] = t[sy * DATA_BINS + sx];
        }
    }
    out
}

/// Circular cross-correlation of an n x n tile with a template (given as the conjugate of
/// its spectrum), folded onto one pilot period (the pilot repeats inside larger tiles).
/// Returns the z-score of the best shift and the shift (row, column) in bins, sub-bin.
pub(crate) fn pilot_peak(
    planner: &mut FftPlanner<f32>,
    t: &[f32],
    n: usize,
    template_conj: &[Complex32],
) -> Option<(f64, f64, f64)> {
    let mut buf: Vec<Complex32> = t.iter().map(|&v| Complex32::new(v, 0.0)).collect();
    fft2d(planner, &mut buf, n, n, false);
    for (b, p) in buf.iter_mut().zip(template_conj) {
        *b *= p;
    }
    fft2d(planner, &mut buf, n, n, true);
    let mut surf = vec![0f64; PILOT_BINS * PILOT_BINS];
    for (i, c) in buf.iter().enumerate() {
        surf[((i / n) % PILOT_BINS) * PILOT_BINS + (i % n) % PILOT_BINS] += f64::from(c.re);
    }
    let cnt = surf.len() as f64;
    let mean = surf.iter().sum::<f64>() / cnt;
    let sd = (surf.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / cnt).sqrt();
    if sd.is_nan() || sd <= 0.0 || !sd.is_finite() {
        return None;
    }
    let (i, &v) = surf.iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1))?;
    let (py, px) = (i / PILOT_BINS, i % PILOT_BINS);
    let at = |y: usize, x: usize| surf[(y % PILOT_BINS) * PILOT_BINS + x % PILOT_BINS];
    let sub = |m: f64, c: f64, p: f64| {
        let den = m - 2.0 * c + p;
        if den.abs() < 1e-12 {
            0.0
        } else {
            (0.5 * (m - p) / den).clamp(-0.5, 0.5)
        }
    };
    let dy = py as f64 + sub(at(py + PILOT_BINS - 1, px), v, at(py + 1, px));
    let dx = px as f64 + sub(at(py, px + PILOT_BINS - 1), v, at(py, px + 1));
    Some(((v - mean) / sd, dy, dx))
}

/// The raw peak of the circular correlation of a PILOT_BINS x PILOT_BINS tile with the pilot.
pub(crate) fn pilot_peak_raw(
    planner: &mut FftPlanner<f32>,
    t: &[f32],
    template_conj: &[Complex32],
) -> f64 {
    let mut buf: Vec<Complex32> = t.iter().map(|&v| Complex32::new(v, 0.0)).collect();
    fft2d(planner, &mut buf, PILOT_BINS, PILOT_BINS, false);
    for (b, p) in buf.iter_mut().zip(template_conj) {
        *b *= p;
    }
    fft2d(planner, &mut buf, PILOT_BINS, PILOT_BINS, true);
    buf.iter()
        .map(|c| f64::from(c.re))
        .fold(f64::NEG_INFINITY, f64::max)
}

/// The normalised residual of `img` resampled to `ww x wh`, and its calm-weighted copy.
pub(crate) fn residual_at(img: &DynamicImage, ww: usize, wh: usize) -> (Plane, Plane) {
    let y = Plane::luma_resized(img, ww, wh);
    let (r, norm) = normalised_residual_with(&y, &y.box_mean(HIGHPASS_RADIUS));
    let calm = calm_weighted(&r, &norm.data);
    (r, calm)
}

/// `r` divided once more by the local activity: the normalised residual is x / sigma (sigma
/// the local activity), and this copy is x / sigma^2, the inverse-variance weighting that suits
/// a mark whose amplitude does not grow with texture. The embedder's mask stops growing in
/// busy places while the picture's residual keeps growing, so where the noise is the picture
/// (a crop, which loses the embedder's whole-picture cancellation) this copy reads more; where
/// it is a codec (which spares texture) the plain residual does. The detector cannot tell
/// which, so it tries both, each attempt counted in the bound. Scaled so the calmest place
/// keeps weight 1.
pub(crate) fn calm_weighted(r: &Plane, norm: &[f32]) -> Plane {
    let mut out = r.clone();
    let least = norm.iter().copied().fold(f32::INFINITY, f32::min);
    if least.is_finite() && least > 0.0 {
        for (v, n) in out.data.iter_mut().zip(norm) {
            *v *= least / n;
        }
    }
    out
}
