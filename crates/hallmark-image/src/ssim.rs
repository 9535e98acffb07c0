//! A structural-similarity guard for the embedder.
//!
//! PSNR caps the mark's energy, but on pictures that are mostly flat (sky, walls, small
//! thumbnails) the same energy costs much more structural similarity: SSIM divides the
//! change in each window by that window's own contrast. The embedder therefore measures, on
//! the working copy, what SSIM the mark would leave at a given gain, and lowers the gain just
//! enough to keep a target.
//!
//! The statistics are gathered once per window (sums of the picture, the unit-gain mark,
//! their squares and product); SSIM at any gain is then exact for those windows, so the
//! largest admissible gain is found by bisection without touching the pixels again.

use crate::plane::Plane;

/// SSIM's stabilising constants for 8-bit data, (0.01 x 255)^2 and (0.03 x 255)^2.
const C1: f64 = 6.5025;
const C2: f64 = 58.5225;

/// Per-window moments of a picture `x` and a unit-gain change `m`.
pub(crate) struct SsimModel {
    /// (mean x, mean m, var x, var m, cov x m) per window.
    windows: Vec<[f64; 5]>,
}

impl SsimModel {
    /// Moments over non-overlapping `side` x `side` windows (side >= 2).
    pub fn new(x: &Plane, m: &Plane, side: usize) -> Self {
        SsimModel {
            windows: window_moments(x, m, side),
        }
    }

    /// Mean SSIM between the picture and the picture plus `g` times the change.
    pub fn ssim(&self, g: f64) -> f64 {
        if self.windows.is_empty() {
            return 1.0;
        }
        let total: f64 = self
            .windows
            .iter()
            .map(|&[mx, mm, vx, vm, cxm]| {
                let my = mx + g * mm;
                let vy = vx + 2.0 * g * cxm + g * g * vm;
                let cxy = vx + g * cxm;
                ((2.0 * mx * my + C1) * (2.0 * cxy + C2))
                    / ((mx * mx + my * my + C1) * (vx + vy.max(0.0) + C2))
            })
            .sum();
        total / self.windows.len() as f64
    }

    /// The largest gain in `[0, g_max]` that keeps the mean SSIM at or above `target`
    /// (`g_max` itself when it already does).
    pub fn max_gain(&self, target: f64, g_max: f64) -> f64 {
        if self.ssim(g_max) >= target {
            return g_max;
        }
        // Twelve halvings: the gain to 0.03% of g_max, far finer than SSIM needs.
        let (mut lo, mut hi) = (0.0, g_max);
        for _ in 0..12 {
            let mid = 0.5 * (lo + hi);
            if self.ssim(mid) >= target {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        lo
    }
}

/// Per-window moments for [`SsimModel::new`], compiled for AVX2 too (chosen at run time).
#[multiversion::multiversion(targets("x86_64+avx2"))]
fn window_moments(x: &Plane, m: &Plane, side: usize) -> Vec<[f64; 5]> {
    let side = side.max(2);
    let n = (side * side) as f64;
    let mut windows = Vec::with_capacity((x.w / side) * (x.h / side));
    for by in (0..x.h / side).map(|i| i * side) {
        for bx in (0..x.w / side).map(|i| i * side) {
            let mut s = [0f64; 5]; // sx, sm, sxx, smm, sxm
            for y in by..by + side {
                let xr = &x.data[y * x.w + bx..y * x.w + bx + side];
                let mr = &m.data[y * m.w + bx..y * m.w + bx + side];
                for (&a, &b) in xr.iter().zip(mr) {
                    let (a, b) = (f64::from(a), f64::from(b));
                    s[0] += a;
                    s[1] += b;
                    s[2] += a * a;
                    s[3] += b * b;
                    s[4] += a * b;
                }
            }
            let (mx, mm) = (s[0] / n, s[1] / n);
            windows.push([
                mx,
                mm,
                (s[2] / n - mx * mx).max(0.0),
                (s[3] / n - mm * mm).max(0.0),
                s[4] / n - mx * mm,
            ]);
        }
    }
    windows
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plane(w: usize, h: usize, f: impl Fn(usize, usize) -> f32) -> Plane {
        let mut p = Plane::new(w, h);
        for y in 0..h {
            for x in 0..w {
                p.data[y * w + x] = f(x, y);
            }
        }
        p
    }

    /// Direct SSIM over the same windows, from the pixels.
    fn direct(x: &Plane, m: &Plane, g: f32, side: usize) -> f64 {
        let y = Plane {
            w: x.w,
            h: x.h,
            data: x.data.iter().zip(&m.data).map(|(a, b)| a + g * b).collect(),
        };
        let mut total = 0.0;
        let mut n = 0;
        for by in (0..x.h / side).map(|i| i * side) {
            for bx in (0..x.w / side).map(|i| i * side) {
                let px: Vec<(f64, f64)> = (by..by + side)
                    .flat_map(|yy| (bx..bx + side).map(move |xx| (xx, yy)))
                    .map(|(xx, yy)| {
                        (
                            f64::from(x.data[yy * x.w + xx]),
                            f64::from(y.data[yy * x.w + xx]),
                        )
                    })
                    .collect();
                let k = px.len() as f64;
                let ma = px.iter().map(|p| p.0).sum::<f64>() / k;
                let mb = px.iter().map(|p| p.1).sum::<f64>() / k;
                let va = px.iter().map(|p| (p.0 - ma).powi(2)).sum::<f64>() / k;
                let vb = px.iter().map(|p| (p.1 - mb).powi(2)).sum::<f64>() / k;
                let c = px.iter().map(|p| (p.0 - ma) * (p.1 - mb)).sum::<f64>() / k;
                total += ((2.0 * ma * mb + C1) * (2.0 * c + C2))
                    / ((ma * ma + mb * mb + C1) * (va + vb + C2));
                n += 1;
            }
        }
        total / f64::from(n)
    }

    #[test]
    fn matches_direct_ssim_and_finds_the_gain() {
        let x = plane(40, 24, |x, y| {
            if x < 20 {
                100.0
            } else {
                ((x * 7 + y * 13) % 50) as f32 + 80.0
            }
        });
        let m = plane(
            40,
            24,
            |x, y| if (x / 2 + y / 3) % 2 == 0 { 1.0 } else { -1.0 },
        );
        let model = SsimModel::new(&x, &m, 8);
        for g in [0.0f32, 0.5, 2.0, 5.0] {
            let d = direct(&x, &m, g, 8);
            assert!((model.ssim(f64::from(g)) - d).abs() < 1e-9, "g {g}");
        }
        let g = model.max_gain(0.98, 10.0);
        assert!(g > 0.0 && g < 10.0);
        assert!(model.ssim(g) >= 0.98 && model.ssim(g + 10.0 / 2048.0) < 0.98);
        // Already within the target: the cap is returned unchanged.
        assert_eq!(model.max_gain(0.5, 1.0), 1.0);
    }
}
