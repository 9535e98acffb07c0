//! Where in a picture the mark is: once a payload has decoded, the detector knows the exact
//! chip pattern the mark should show, so every part of the picture can be asked whether it
//! carries that pattern. A composite (a generated object pasted into a photo, or a photo
//! pasted into a generated image) then reads as partly marked.
//!
//! The picture's working copy is cut into cells of [`CELL`] working pixels. In each cell the
//! normalised residual is correlated with the expected data chips (the keyed signs of the
//! decoded codeword, laid out by the lattice the decoder used), and, for calibration, with
//! four copies of that pattern shifted by half a tile (independent of the mark, so they
//! measure what the picture alone gives: pixels within a chip are correlated, so the null
//! spread is estimated, not assumed). Windows of 5x5 cells whose correlation stands above
//! that null by [`SEED_Z`] standard deviations are certainly marked (seeds). Each cell is
//! then called marked when the correlation coefficient of its 3x3 neighbourhood is at least
//! half the one measured over the seeds (the level halfway between "no mark" and "marked as
//! the seeds are", which keeps a region's edge where it is); marked cells connected to a
//! seed form the regions. Cells with no texture at all (flat, clipped) carry no evidence
//! and take their neighbours' call.

use hallmark_core::{Payload, WatermarkKey};

use crate::{
    geometry::Lattice,
    pattern::{BINS_PER_CHIP, DATA_BINS, DATA_CHIPS, Tile},
    plane::{Plane, floor},
};

/// Side of a map cell, in working pixels (about 5 chips).
const CELL: usize = 16;
/// Window z-score that makes a seed: far above anything the null patterns reach over a
/// whole 1080p picture (about 900 windows).
const SEED_Z: f64 = 6.0;
/// A 3x3-cell neighbourhood this far above the null is marked even when its correlation is
/// below half the seeds' (the embedder marks smooth areas more gently).
const CELL_Z: f64 = 3.0;
/// An area of cells called unmarked one by one is marked as a whole when its interior sums
/// this far above the null (a weakly marked smooth area, not a pasted-in photo).
const AREA_Z: f64 = 3.0;
/// A cell can be called unmarked only when its texture is at least this share of the
/// median texture of the seeds (see [`locate`]); smoother cells carry no evidence.
const TEXTURE_SHARE: f64 = 0.5;

/// Which parts of a picture carry the mark (see the module docs for how it is measured).
#[derive(Clone, Debug, serde::Serialize, schemars::JsonSchema)]
pub struct Regions {
    /// Whether the mark is confined to part of the picture (a composite: a marked object
    /// pasted into an unmarked picture): its areas lie within boxes covering at most
    /// [`PARTIAL_BOX_SHARE`] of the picture, and the textured rest (at least a fifth of
    /// the picture) sums to no more than noise. Meant never to call a picture marked whole
    /// partial, even where the mark cannot be measured (clipped highlights, smooth areas,
    /// degraded copies); the benchmark counts how often it does.
    pub partial: bool,
    /// Share of the picture's area where the mark was measured, 0 to 1. In a picture
    /// marked whole this is often well below 1: the mark is not measurable in clipped
    /// highlights, flat areas, and where the picture's own texture locally opposes it.
    pub fraction: f64,
    /// Where, in words: `whole image` when not partial, else the position of the largest
    /// marked area (`top-left`, `top`, `top-right`, `left`, `centre`, `right`,
    /// `bottom-left`, `bottom`, `bottom-right`).
    pub location: String,
    /// Bounding boxes of the marked areas in pixels of the analysed image, largest first.
    pub boxes: Vec<RegionBox>,
    /// The map itself, one character per cell, row by row from the top: `#` marked, `-`
    /// not marked, `.` no evidence either way (no texture).
    pub grid: Vec<String>,
    /// Side of a grid cell in pixels of the analysed image.
    pub cell_px: f64,
}

/// A marked area's bounding box, in pixels of the analysed image.
#[derive(Clone, Debug, serde::Serialize, schemars::JsonSchema)]
pub struct RegionBox {
    /// Left edge.
    pub x: u32,
    /// Top edge.
    pub y: u32,
    /// Width.
    pub width: u32,
    /// Height.
    pub height: u32,
    /// Share of the picture's area that this area's marked cells cover.
    pub fraction: f64,
}

/// See [`Regions::partial`].
pub const PARTIAL_BOX_SHARE: f64 = 0.6;
/// A composite's unmarked part, away from the marked boxes, must cover at least this share
/// of the picture with texture ...
const ABSENT_AREA_SHARE: f64 = 0.2;
/// ... and its correlation with the mark must stay below this many null standard
/// deviations (about 2.3% of true composites miss the call by chance).
const ABSENT_Z: f64 = 2.0;

impl Regions {
    /// Whether the map says only part of the picture is marked ([`Regions::partial`]).
    pub fn is_partial(&self) -> bool {
        self.partial
    }

    /// One line for people: "watermark found in 23% of the image, top-left region".
    pub fn describe(&self) -> String {
        if self.is_partial() {
            format!(
                "watermark found in {:.0}% of the image, {} region",
                self.fraction * 100.0,
                self.location
            )
        } else {
            "watermark found across the whole image".to_string()
        }
    }
}

/// The alignment a payload decoded at: data-tile lattice (working pixels) and the tile
/// offset in bins.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Alignment {
    pub dl: Lattice,
    pub oy: usize,
    pub ox: usize,
}

#[derive(Clone, Copy, Default)]
struct Cell {
    s: f64,
    null: [f64; 4],
    q: f64,
    n: f64,
    /// Sums of |r| and |calm|: their ratio is the cell's texture (calm = r / activity).
    abs_r: f64,
    abs_calm: f64,
}

impl Cell {
    /// The cell's texture (local activity, in units of the calmest place's).
    fn activity(&self) -> Option<f64> {
        (self.abs_calm > 0.0).then(|| self.abs_r / self.abs_calm)
    }
}

/// The 4-connected components of the cells in `state` equal to `which` (a `cols` x `rows`
/// grid, row-major), each as its cell indices.
fn components(state: &[u8], cols: usize, rows: usize, which: u8) -> Vec<Vec<usize>> {
    let mut seen = vec![false; cols * rows];
    let mut out = vec![];
    for start in 0..cols * rows {
        if state[start] != which || seen[start] {
            continue;
        }
        let mut members = vec![];
        let mut stack = vec![start];
        seen[start] = true;
        while let Some(i) = stack.pop() {
            members.push(i);
            let (cx, cy) = (i % cols, i / cols);
            let neighbours = [
                (cx > 0).then(|| i - 1),
                (cx + 1 < cols).then(|| i + 1),
                (cy > 0).then(|| i - cols),
                (cy + 1 < rows).then(|| i + cols),
            ];
            for j in neighbours.into_iter().flatten() {
                if state[j] == which && !seen[j] {
                    seen[j] = true;
                    stack.push(j);
                }
            }
        }
        out.push(members);
    }
    out
}

/// Maps the mark over the working-copy residual `r` (image `size`, working scale `f`).
pub(crate) fn locate(
    tile: &Tile,
    key: &WatermarkKey,
    payload: Payload,
    [r, calm]: [&Plane; 2],
    at: &Alignment,
    f: f64,
    size: (usize, usize),
) -> Option<Regions> {
    let l = &at.dl;
    let det = l.a[0] * l.b[1] - l.b[0] * l.a[1];
    if det.abs() < 1e-6 || r.w < CELL || r.h < CELL {
        return None;
    }
    let chips = tile.chips(key, payload);
    // The same pattern shifted by half a tile (and a quarter), for the null.
    let shifted = |di: usize, dj: usize| -> Vec<f32> {
        (0..DATA_CHIPS * DATA_CHIPS)
            .map(|k| {
                chips[((k / DATA_CHIPS + di) % DATA_CHIPS) * DATA_CHIPS
                    + (k % DATA_CHIPS + dj) % DATA_CHIPS]
            })
            .collect()
    };
    let nulls = [
        shifted(DATA_CHIPS / 2, 0),
        shifted(0, DATA_CHIPS / 2),
        shifted(DATA_CHIPS / 2, DATA_CHIPS / 2),
        shifted(DATA_CHIPS / 4, 3 * DATA_CHIPS / 4),
    ];
    let (i00, i01, i10, i11) = (l.b[1] / det, -l.b[0] / det, -l.a[1] / det, l.a[0] / det);
    let (cols, rows) = (r.w.div_ceil(CELL), r.h.div_ceil(CELL));
    let mut cells = vec![Cell::default(); cols * rows];
    let g = DATA_BINS as f64;
    let chip_of = |t: f64, off: usize| -> usize {
        // Bin within the tile, then the chip whose reading window (see `soft_bits_raw`)
        // is centred on it.
        let bin = (t - floor(t)) * g;
        let rel = (bin - off as f64 + 0.5).rem_euclid(g);
        ((rel / BINS_PER_CHIP as f64) as usize).min(DATA_CHIPS - 1)
    };
    for y in 0..r.h {
        let yf = y as f64 + 0.5;
        let row = &r.data[y * r.w..(y + 1) * r.w];
        let calm_row = &calm.data[y * r.w..(y + 1) * r.w];
        for ((x, &v), &cv) in row.iter().enumerate().zip(calm_row) {
            let xf = x as f64 + 0.5;
            let (u, w) = (i00 * xf + i01 * yf, i10 * xf + i11 * yf);
            let k = chip_of(w, at.oy) * DATA_CHIPS + chip_of(u, at.ox);
            let c = &mut cells[(y / CELL) * cols + x / CELL];
            let v = f64::from(v);
            c.s += v * f64::from(chips[k]);
            for (acc, p) in c.null.iter_mut().zip(&nulls) {
                *acc += v * f64::from(p[k]);
            }
            c.q += v * v;
            c.n += 1.0;
            c.abs_r += v.abs();
            c.abs_calm += f64::from(cv).abs();
        }
    }
    // Null spread: E[s'^2] = c * q over the shifted patterns.
    let sum_q: f64 = cells.iter().map(|c| c.q).sum();
    if sum_q <= 0.0 {
        return None;
    }
    let sum_null: f64 = cells
        .iter()
        .map(|c| c.null.iter().map(|v| v * v).sum::<f64>())
        .sum();
    let inflation = (sum_null / (4.0 * sum_q)).max(1e-12);
    let window = |cx: usize, cy: usize, rad: usize| -> (f64, f64, f64) {
        let (mut s, mut q, mut n) = (0.0, 0.0, 0.0);
        for y in cy.saturating_sub(rad)..(cy + rad + 1).min(rows) {
            for x in cx.saturating_sub(rad)..(cx + rad + 1).min(cols) {
                let c = &cells[y * cols + x];
                s += c.s;
                q += c.q;
                n += c.n;
            }
        }
        (s, q, n)
    };
    // Seeds, and the correlation they show.
    let mut seed = vec![false; cols * rows];
    let (mut seed_s, mut seed_q, mut seed_n) = (0.0, 0.0, 0.0);
    for cy in 0..rows {
        for cx in 0..cols {
            let (s, q, n) = window(cx, cy, 2);
            if q > 0.0 && s / (inflation * q).sqrt() >= SEED_Z {
                seed[cy * cols + cx] = true;
                let c = &cells[cy * cols + cx];
                seed_s += c.s;
                seed_q += c.q;
                seed_n += c.n;
            }
            let _ = n;
        }
    }
    if seed_q <= 0.0 || seed_s <= 0.0 {
        return None;
    }
    let rho_marked = seed_s / (seed_q * seed_n).sqrt();
    // The texture where the mark was seen clearly: the embedder follows texture, so a part
    // of the picture much smoother than that would carry the mark too faintly to see
    // either way, and says nothing about whether it is marked.
    let mut seed_activity: Vec<f64> = (0..cols * rows)
        .filter(|&i| seed[i])
        .filter_map(|i| cells[i].activity())
        .collect();
    seed_activity.sort_by(f64::total_cmp);
    let textured = seed_activity
        .get(seed_activity.len() / 2)
        .map_or(0.0, |m| m * TEXTURE_SHARE);
    // Per cell: marked (1), not (0), or no evidence (2).
    const NOT: u8 = 0;
    const MARKED: u8 = 1;
    const FLAT: u8 = 2;
    let mean_q = sum_q / cells.iter().map(|c| c.n).sum::<f64>();
    let mut state: Vec<u8> = (0..cols * rows)
        .map(|i| {
            let (cx, cy) = (i % cols, i / cols);
            let c = &cells[i];
            if c.n == 0.0 || c.q < 1e-3 * mean_q * c.n {
                return FLAT;
            }
            let (s, q, n) = window(cx, cy, 1);
            let rho = s / (q * n).sqrt();
            // Halfway to the seeds' correlation, or (where the mark is weak, as the
            // embedder leaves it in smooth areas) clearly above the null.
            if rho >= 0.5 * rho_marked || s / (inflation * q).sqrt() >= CELL_Z {
                MARKED
            } else if c.activity().is_some_and(|a| a >= textured) {
                NOT
            } else {
                FLAT
            }
        })
        .collect();
    // Flat cells take the majority call of their textured neighbours (twice, so a flat
    // patch fills in from its border).
    for _ in 0..2 {
        let before = state.clone();
        for cy in 0..rows {
            for cx in 0..cols {
                if before[cy * cols + cx] != FLAT {
                    continue;
                }
                let (mut yes, mut no) = (0, 0);
                for y in cy.saturating_sub(1)..(cy + 2).min(rows) {
                    for x in cx.saturating_sub(1)..(cx + 2).min(cols) {
                        match before[y * cols + x] {
                            MARKED => yes += 1,
                            NOT => no += 1,
                            _ => {}
                        }
                    }
                }
                if yes + no > 0 {
                    state[cy * cols + cx] = if yes > no { MARKED } else { NOT };
                }
            }
        }
    }
    // An area called unmarked cell by cell may still carry the mark gently (the embedder
    // marks smooth and dark areas at a fifth of its average strength): test each connected
    // unmarked area as a whole, on its interior (cells whose neighbours are all in it, so
    // a marked neighbour's edge does not leak in). An area that carries no mark sums to
    // noise; one that does stands out of it, and is marked.
    let before = state.clone();
    for members in components(&before, cols, rows, NOT) {
        let interior = |i: usize| {
            let (cx, cy) = (i % cols, i / cols);
            (cy.saturating_sub(1)..(cy + 2).min(rows)).all(|y| {
                (cx.saturating_sub(1)..(cx + 2).min(cols)).all(|x| before[y * cols + x] == NOT)
            })
        };
        let (mut s, mut q) = (0.0, 0.0);
        for &i in members.iter().filter(|&&i| interior(i)) {
            s += cells[i].s;
            q += cells[i].q;
        }
        if q > 0.0 && s / (inflation * q).sqrt() >= AREA_Z {
            for &i in &members {
                state[i] = MARKED;
            }
        }
    }
    // Marked areas: 4-connected marked cells, kept when they hold a seed.
    let areas: Vec<(Vec<usize>, bool)> = components(&state, cols, rows, MARKED)
        .into_iter()
        .map(|members| {
            let has_seed = members.iter().any(|&i| seed[i]);
            (members, has_seed)
        })
        .collect();
    let (w, h) = size;
    let px = CELL as f64 / f;
    let cell_area = |i: usize| -> f64 {
        let (cx, cy) = ((i % cols) as f64, (i / cols) as f64);
        let cw = (((cx + 1.0) * px).min(w as f64) - cx * px).max(0.0);
        let ch = (((cy + 1.0) * px).min(h as f64) - cy * px).max(0.0);
        cw * ch
    };
    let total = (w * h) as f64;
    let mut kept: Vec<(f64, RegionBox, (f64, f64))> = vec![];
    let mut marked = vec![false; cols * rows];
    // Cells within one cell of a marked area's box (its edge may leak into them).
    let mut near_box = vec![false; cols * rows];
    for (members, has_seed) in &areas {
        if !has_seed {
            continue;
        }
        let area: f64 = members.iter().map(|&i| cell_area(i)).sum();
        let (mut x0, mut y0, mut x1, mut y1) = (cols, rows, 0, 0);
        let (mut mx, mut my) = (0.0, 0.0);
        for &i in members {
            marked[i] = true;
            let (cx, cy) = (i % cols, i / cols);
            x0 = x0.min(cx);
            y0 = y0.min(cy);
            x1 = x1.max(cx + 1);
            y1 = y1.max(cy + 1);
            mx += cx as f64 + 0.5;
            my += cy as f64 + 0.5;
        }
        for y in y0.saturating_sub(1)..(y1 + 1).min(rows) {
            for x in x0.saturating_sub(1)..(x1 + 1).min(cols) {
                near_box[y * cols + x] = true;
            }
        }
        let k = members.len() as f64;
        let to_px = |c: usize, limit: usize| ((c as f64 * px).round() as u32).min(limit as u32);
        let b = RegionBox {
            x: to_px(x0, w),
            y: to_px(y0, h),
            width: to_px(x1, w) - to_px(x0, w),
            height: to_px(y1, h) - to_px(y0, h),
            fraction: area / total,
        };
        kept.push((area, b, (mx / k * px / w as f64, my / k * px / h as f64)));
    }
    kept.sort_by(|a, b| b.0.total_cmp(&a.0));
    let fraction = (kept.iter().map(|k| k.0).sum::<f64>() / total).min(1.0);
    let box_share = (kept
        .iter()
        .map(|k| f64::from(k.1.width) * f64::from(k.1.height))
        .sum::<f64>()
        / total)
        .min(1.0);
    // Partial needs evidence of absence too: the textured cells away from the boxes, taken
    // together, must cover a good part of the picture and sum to noise. In a picture marked
    // whole but degraded (noise, blur, heavy compression) the mark is measured only in its
    // busiest parts, but the rest still sums above the null.
    let (mut out_s, mut out_q, mut out_area) = (0.0, 0.0, 0.0);
    for i in 0..cols * rows {
        if !near_box[i] && state[i] == NOT {
            out_s += cells[i].s;
            out_q += cells[i].q;
            out_area += cell_area(i);
        }
    }
    let absent = out_q > 0.0
        && out_area >= ABSENT_AREA_SHARE * total
        && out_s / (inflation * out_q).sqrt() < ABSENT_Z;
    let partial = box_share <= PARTIAL_BOX_SHARE && absent;
    let location = match kept.first() {
        _ if !partial => "whole image".to_string(),
        None => "no".to_string(),
        Some((_, _, (cx, cy))) => {
            let v = ["top", "", "bottom"][((cy * 3.0) as usize).min(2)];
            let hpos = ["left", "", "right"][((cx * 3.0) as usize).min(2)];
            match (v, hpos) {
                ("", "") => "centre".to_string(),
                ("", x) | (x, "") => x.to_string(),
                (a, b) => format!("{a}-{b}"),
            }
        }
    };
    let grid = (0..rows)
        .map(|cy| {
            (0..cols)
                .map(|cx| {
                    let i = cy * cols + cx;
                    if marked[i] {
                        '#'
                    } else if state[i] == FLAT {
                        '.'
                    } else {
                        '-'
                    }
                })
                .collect()
        })
        .collect();
    Some(Regions {
        partial,
        fraction,
        location,
        boxes: kept.into_iter().map(|k| k.1).collect(),
        grid,
        cell_px: px,
    })
}

impl Regions {
    /// A picture of the map for people: `img` (the analysed image) scaled to at most 1280
    /// px on its long side, with the marked cells in their own colours, the cells without
    /// the mark greyed and darkened, cells without evidence greyed, and each marked area's
    /// box outlined.
    pub fn overlay(&self, img: &image::DynamicImage) -> image::RgbImage {
        let (w, h) = (img.width().max(1), img.height().max(1));
        let s = (1280.0 / f64::from(w.max(h))).min(1.0);
        let (ow, oh) = (
            ((f64::from(w) * s).round() as u32).max(1),
            ((f64::from(h) * s).round() as u32).max(1),
        );
        let mut out = img
            .resize_exact(ow, oh, image::imageops::FilterType::Triangle)
            .to_rgb8();
        let cell = self.cell_px * s;
        let rows: Vec<&[u8]> = self.grid.iter().map(|r| r.as_bytes()).collect();
        for (x, y, p) in out.enumerate_pixels_mut() {
            let (cx, cy) = (
                (f64::from(x) / cell) as usize,
                (f64::from(y) / cell) as usize,
            );
            let state = rows
                .get(cy)
                .and_then(|r| r.get(cx))
                .copied()
                .unwrap_or(b'.');
            if state == b'#' {
                continue;
            }
            let grey = 0.299 * f32::from(p[0]) + 0.587 * f32::from(p[1]) + 0.114 * f32::from(p[2]);
            let v = if state == b'-' {
                grey * 0.45
            } else {
                grey * 0.8
            };
            *p = image::Rgb([v as u8, v as u8, v as u8]);
        }
        for b in &self.boxes {
            let to = |v: u32| (f64::from(v) * s).round() as u32;
            let (x0, y0) = (to(b.x).min(ow - 1), to(b.y).min(oh - 1));
            let (x1, y1) = (
                to(b.x + b.width).clamp(x0 + 1, ow) - 1,
                to(b.y + b.height).clamp(y0 + 1, oh) - 1,
            );
            let colour = image::Rgb([255, 64, 160]);
            for t in 0..3u32 {
                for x in x0..=x1 {
                    out.put_pixel(x, (y0 + t).min(oh - 1), colour);
                    out.put_pixel(x, y1.saturating_sub(t), colour);
                }
                for y in y0..=y1 {
                    out.put_pixel((x0 + t).min(ow - 1), y, colour);
                    out.put_pixel(x1.saturating_sub(t), y, colour);
                }
            }
        }
        out
    }
}
