//! A single-channel f32 image plane and the few filters the mark needs.

/// A plane's buffer is returned to this thread's scratch cache when the plane is dropped
/// (see [`scratch`]).
#[derive(Debug)]
pub(crate) struct Plane {
    pub w: usize,
    pub h: usize,
    pub data: Vec<f32>,
}

impl Clone for Plane {
    fn clone(&self) -> Self {
        let mut data = scratch::zeroed(self.data.len());
        data.copy_from_slice(&self.data);
        Plane {
            w: self.w,
            h: self.h,
            data,
        }
    }
}

impl Drop for Plane {
    fn drop(&mut self) {
        scratch::give(std::mem::take(&mut self.data));
    }
}

impl Plane {
    /// A zeroed plane (its buffer from this thread's scratch cache when one fits).
    pub fn new(w: usize, h: usize) -> Self {
        Plane {
            w,
            h,
            data: scratch::zeroed(w * h),
        }
    }

    /// Luminance (BT.601 weights, 0..255) resampled to `nw x nh` (separable triangle filter
    /// scaled to the footprint when shrinking, bilinear when enlarging), computed row by row
    /// so a large image never exists as a full-size float plane.
    pub fn luma_resized(img: &image::DynamicImage, nw: usize, nh: usize) -> Self {
        luma_resized(img, nw, nh)
    }

    /// Mean of the squared values.
    pub fn mean_square(&self) -> f64 {
        self.data.iter().map(|v| f64::from(v * v)).sum::<f64>() / self.data.len().max(1) as f64
    }

    /// Mean over a (2r+1)^2 box, clamped at the borders (the mean of the part of the box
    /// inside the plane). Small boxes sum directly (vectorisable, no drift); larger ones use
    /// running sums, so the cost does not depend on `r`.
    pub fn box_mean(&self, r: usize) -> Plane {
        if r <= 8 && self.w > 2 * r && self.h > 2 * r {
            return self.box_mean_small(r);
        }
        self.box_mean_running(r)
    }

    /// Box mean of the squared values (as `box_mean`), without a plane of squares.
    pub fn box_mean_of_squares(&self, r: usize) -> Plane {
        self.box_mean_map(r, |v| v * v)
    }

    /// Box mean of the absolute values (as `box_mean`), without a plane of them.
    pub fn box_mean_of_abs(&self, r: usize) -> Plane {
        self.box_mean_map(r, f32::abs)
    }

    fn box_mean_map(&self, r: usize, f: impl Fn(f32) -> f32) -> Plane {
        if r <= 8 && self.w > 2 * r && self.h > 2 * r {
            return self.box_mean_small_map(r, f);
        }
        Plane {
            w: self.w,
            h: self.h,
            data: self.data.iter().map(|v| f(*v)).collect(),
        }
        .box_mean_running(r)
    }

    fn box_mean_small(&self, r: usize) -> Plane {
        self.box_mean_small_map(r, |v| v)
    }

    /// Small-box mean of `f(value)`; `f` is applied to one row at a time.
    fn box_mean_small_map(&self, r: usize, f: impl Fn(f32) -> f32) -> Plane {
        box_small(self, r, f)
    }

    fn box_mean_running(&self, r: usize) -> Plane {
        let (w, h) = (self.w, self.h);
        if w == 0 || h == 0 {
            return self.clone();
        }
        // Horizontal pass: differences of a prefix sum per row.
        let mut tmp = Plane::new(w, h);
        let tmp = &mut tmp.data;
        let mut pre = vec![0f64; w + 1];
        for (row, out) in self.data.chunks_exact(w).zip(tmp.chunks_exact_mut(w)) {
            for (x, v) in row.iter().enumerate() {
                pre[x + 1] = pre[x] + f64::from(*v);
            }
            for (x, o) in out.iter_mut().enumerate() {
                let (lo, hi) = (x.saturating_sub(r), (x + r + 1).min(w));
                *o = ((pre[hi] - pre[lo]) / (hi - lo) as f64) as f32;
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

/// [`Plane::luma_resized`], compiled for AVX2 too (chosen at run time).
#[multiversion::multiversion(targets("x86_64+avx2"))]
fn luma_resized(img: &image::DynamicImage, nw: usize, nh: usize) -> Plane {
    let (w, h) = (img.width() as usize, img.height() as usize);
    let converted;
    let (raw, stride): (&[u8], usize) = match img {
        image::DynamicImage::ImageLuma8(g) => (g.as_raw(), 1),
        image::DynamicImage::ImageRgb8(rgb) => (rgb.as_raw(), 3),
        image::DynamicImage::ImageRgba8(rgba) => (rgba.as_raw(), 4),
        other => {
            converted = other.to_rgb8();
            (converted.as_raw(), 3)
        }
    };
    let row_luma = |y: usize, dst: &mut [f32]| {
        luma_row(&raw[y * w * stride..(y + 1) * w * stride], stride, dst);
    };
    if (nw, nh) == (w, h) {
        let mut p = Plane::new(w, h);
        for (y, row) in p.data.chunks_exact_mut(w.max(1)).enumerate() {
            row_luma(y, row);
        }
        return p;
    }
    // Vertical pass first, on whole rows (contiguous, vectorised), then the horizontal
    // taps once per output row: the taps' gathers run on `nh` rows instead of `h`. The
    // input rows an output row needs sit in a ring of converted luma rows, so each input
    // row is converted once.
    let vtaps = taps(h, nh);
    let span = vtaps.iter().map(|(_, ws)| ws.len()).max().unwrap_or(1);
    let htaps = taps(w, nw);
    let k = htaps.iter().map(|(_, ws)| ws.len()).max().unwrap_or(1);
    // Horizontal taps laid out flat with a fixed count, padded to a multiple of 4 (the
    // inner dot product then has a constant trip count the compiler unrolls).
    let kp = k.div_ceil(4) * 4;
    let mut flat = vec![0f32; nw * kp];
    for ((_, ws), f) in htaps.iter().zip(flat.chunks_exact_mut(kp)) {
        f[..ws.len()].copy_from_slice(ws);
    }
    let starts: Vec<usize> = htaps.iter().map(|(lo, _)| *lo).collect();
    let mut ring = vec![0f32; (span + 1) * w];
    let mut ring_row = vec![usize::MAX; span + 1];
    let mut acc = vec![0f32; w + kp];
    let mut out = Plane::new(nw, nh);
    for ((lo, ws), orow) in vtaps.iter().zip(out.data.chunks_exact_mut(nw.max(1))) {
        acc[..w].iter_mut().for_each(|a| *a = 0.0);
        for (j, &wgt) in ws.iter().enumerate() {
            let y = lo + j;
            let slot = y % (span + 1);
            let row = &mut ring[slot * w..(slot + 1) * w];
            if ring_row[slot] != y {
                row_luma(y, row);
                ring_row[slot] = y;
            }
            for (a, v) in acc[..w].iter_mut().zip(row.iter()) {
                *a += wgt * v;
            }
        }
        match kp {
            4 => htap_row::<4>(orow, &acc, &starts, &flat),
            8 => htap_row::<8>(orow, &acc, &starts, &flat),
            12 => htap_row::<12>(orow, &acc, &starts, &flat),
            16 => htap_row::<16>(orow, &acc, &starts, &flat),
            _ => {
                for ((o, &s), f) in orow.iter_mut().zip(&starts).zip(flat.chunks_exact(kp)) {
                    *o = f.iter().zip(&acc[s..s + kp]).map(|(a, b)| a * b).sum();
                }
            }
        }
    }
    out
}

/// One output row of the horizontal taps (`K` per output, zero-padded).
#[inline(always)]
fn htap_row<const K: usize>(out: &mut [f32], acc: &[f32], starts: &[usize], flat: &[f32]) {
    for ((o, &s), f) in out.iter_mut().zip(starts).zip(flat.chunks_exact(K)) {
        let a: &[f32; K] = acc[s..s + K].try_into().unwrap_or(&[0.0; K]);
        let f: &[f32; K] = f.try_into().unwrap_or(&[0.0; K]);
        // Four independent lanes (one vector), not one serial chain of adds.
        let mut lanes = [0f32; 4];
        for i in 0..K {
            lanes[i % 4] += a[i] * f[i];
        }
        *o = (lanes[0] + lanes[1]) + (lanes[2] + lanes[3]);
    }
}

/// [`Plane::box_mean_small_map`], compiled for AVX2 too (chosen at run time).
#[multiversion::multiversion(targets("x86_64+avx2"))]
fn box_small<F: Fn(f32) -> f32>(p: &Plane, r: usize, f: F) -> Plane {
    let (w, h) = (p.w, p.h);

    // Horizontal means of the rows in a ring of 2r + 1 rows (no second plane), then
    // vertical sums of whole rows.
    let n = 2 * r + 1;
    let mut ring = vec![0f32; n * w];
    let mut mapped = vec![0f32; w];
    let mut horizontal = |y: usize, out: &mut [f32]| {
        for (m, v) in mapped.iter_mut().zip(&p.data[y * w..(y + 1) * w]) {
            *m = f(*v);
        }
        let row = &mapped[..];
        for x in 0..r {
            out[x] = row[..=x + r].iter().sum::<f32>() / (x + r + 1) as f32;
            out[w - 1 - x] = row[w - 1 - x - r..].iter().sum::<f32>() / (x + r + 1) as f32;
        }
        // Shifted whole-row sums: vectorisable, unlike a sum per window.
        let mut shifted: [&[f32]; 17] = [&[]; 17]; // r <= 8
        for (d, s) in shifted[..n].iter_mut().enumerate() {
            *s = &row[d..d + w - 2 * r];
        }
        mean_of_rows(&mut out[r..w - r], &shifted[..n]);
    };
    let mut out = Plane::new(w, h);
    let mut ready = 0; // rows [0, ready) have been filtered into the ring
    for y in 0..h {
        let (lo, hi) = (y.saturating_sub(r), (y + r).min(h - 1));
        while ready <= hi {
            let slot = ready % n;
            horizontal(ready, &mut ring[slot * w..(slot + 1) * w]);
            ready += 1;
        }
        let mut rows: [&[f32]; 17] = [&[]; 17];
        for (yy, s) in (lo..=hi).zip(rows.iter_mut()) {
            *s = &ring[(yy % n) * w..(yy % n + 1) * w];
        }
        mean_of_rows(&mut out.data[y * w..(y + 1) * w], &rows[..=hi - lo]);
    }
    out
}

/// `out` = the element-wise mean of `rows` (each at least `out`'s length), in passes that
/// each add up to four rows (fewer loads and stores of `out` than a pass per row).
#[inline(always)]
fn mean_of_rows(out: &mut [f32], rows: &[&[f32]]) {
    let k = 1.0 / rows.len().max(1) as f32;
    for (i, c) in rows.chunks(4).enumerate() {
        let first = i == 0;
        let last = (i + 1) * 4 >= rows.len();
        let s = if last { k } else { 1.0 };
        let prev = if first { 0.0 } else { 1.0 };
        let n = out.len();
        match *c {
            [a] => {
                for (o, a) in out.iter_mut().zip(&a[..n]) {
                    *o = (*o * prev + a) * s;
                }
            }
            [a, b] => {
                for ((o, a), b) in out.iter_mut().zip(&a[..n]).zip(&b[..n]) {
                    *o = (*o * prev + (a + b)) * s;
                }
            }
            [a, b, c3] => {
                for (((o, a), b), c3) in out.iter_mut().zip(&a[..n]).zip(&b[..n]).zip(&c3[..n]) {
                    *o = (*o * prev + ((a + b) + c3)) * s;
                }
            }
            [a, b, c3, d] => {
                let quad = a[..n].iter().zip(&b[..n]).zip(&c3[..n]).zip(&d[..n]);
                for (o, (((a, b), c3), d)) in out.iter_mut().zip(quad) {
                    *o = (*o * prev + ((a + b) + (c3 + d))) * s;
                }
            }
            _ => {}
        }
    }
}

/// A per-thread cache of large scratch buffers.
///
/// An embedding at the working size (up to ~600k pixels) needs about ten planes of up to
/// 2.4 MB. Freed to the system allocator, each comes back as fresh pages that the kernel
/// must fault in and zero on the next call: measured, a third of a 1080p embedding's time
/// on this project's VM (glibc trims the freed heap after every call). Buffers of planes
/// dropped during an embedding (see [`keep`]) are kept for the thread's next planes
/// instead, up to [`MAX_BUFFERS`] buffers and [`MAX_BYTES`] in all;
/// [`crate::release_scratch`] empties the cache.
pub(crate) mod scratch {
    use std::cell::RefCell;

    /// Buffers smaller than this (in f32s, 256 KB) are left to the allocator, which serves
    /// them from its own free lists without new pages.
    const MIN_LEN: usize = 1 << 16;
    /// Most buffers kept per thread.
    pub const MAX_BUFFERS: usize = 16;
    /// Most bytes kept per thread.
    pub const MAX_BYTES: usize = 48 << 20;

    thread_local! {
        static FREE: RefCell<Vec<Vec<f32>>> = const { RefCell::new(Vec::new()) };
        static KEEPING: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
    }

    /// While the returned guard lives, planes dropped on this thread keep their buffers in
    /// the cache. The embedder keeps them; the detector does not: it also allocates large
    /// FFT buffers, and cached planes held beside those raised its peak memory by a fifth.
    /// Both take from the cache.
    pub fn keep() -> Keep {
        let _ = KEEPING.try_with(|k| k.set(k.get() + 1));
        Keep(())
    }

    /// See [`keep`].
    pub struct Keep(());

    impl Drop for Keep {
        fn drop(&mut self) {
            let _ = KEEPING.try_with(|k| k.set(k.get().saturating_sub(1)));
        }
    }

    /// A zeroed buffer of `len` values: the smallest cached one that fits, else a new one.
    /// Cached buffers too small for `len` are freed first, so the cache never holds memory
    /// beside a new allocation it could have served (measured: without this, a cold
    /// detection's peak grew by a fifth).
    pub fn zeroed(len: usize) -> Vec<f32> {
        if len < MIN_LEN {
            return vec![0.0; len];
        }
        let cached = FREE
            .try_with(|f| {
                let mut f = f.borrow_mut();
                let best = f
                    .iter()
                    .enumerate()
                    .filter(|(_, v)| v.capacity() >= len)
                    .min_by_key(|(_, v)| v.capacity())
                    .map(|(i, _)| i);
                match best {
                    Some(i) => Some(f.swap_remove(i)),
                    None => {
                        f.clear();
                        None
                    }
                }
            })
            .ok()
            .flatten();
        match cached {
            Some(mut v) => {
                v.clear();
                v.resize(len, 0.0);
                v
            }
            None => vec![0.0; len],
        }
    }

    /// Keeps `v` for a later [`zeroed`] on this thread when it is large, a [`keep`] guard
    /// lives and the cache has room; otherwise frees it.
    pub fn give(v: Vec<f32>) {
        if v.capacity() < MIN_LEN || KEEPING.try_with(|k| k.get() == 0).unwrap_or(true) {
            return;
        }
        // During thread teardown the cache may be gone: then `v` is simply freed.
        let _ = FREE.try_with(|f| {
            let mut f = f.borrow_mut();
            let held: usize = f.iter().map(|b| b.capacity() * 4).sum();
            if f.len() < MAX_BUFFERS && held + v.capacity() * 4 <= MAX_BYTES {
                f.push(v);
            }
        });
    }

    /// Frees this thread's cached buffers; returns the bytes freed.
    pub fn release() -> usize {
        FREE.try_with(|f| {
            let mut f = f.borrow_mut();
            let bytes = f.iter().map(|b| b.capacity() * 4).sum();
            f.clear();
            f.shrink_to_fit();
            bytes
        })
        .unwrap_or(0)
    }

    /// Bytes cached on this thread.
    pub fn held() -> usize {
        FREE.try_with(|f| f.borrow().iter().map(|b| b.capacity() * 4).sum())
            .unwrap_or(0)
    }
}

/// BT.601 luma of one row of 8-bit samples (`stride` 1 = grey, else RGB first), compiled
/// for AVX2 too (chosen at run time).
#[multiversion::multiversion(targets("x86_64+avx2"))]
fn luma_row(src: &[u8], stride: usize, dst: &mut [f32]) {
    #[inline(always)]
    fn luma(px: &[u8]) -> f32 {
        0.299 * f32::from(px[0]) + 0.587 * f32::from(px[1]) + 0.114 * f32::from(px[2])
    }
    match stride {
        1 => {
            for (d, s) in dst.iter_mut().zip(src) {
                *d = f32::from(*s);
            }
        }
        3 => {
            for (d, px) in dst.iter_mut().zip(src.chunks_exact(3)) {
                *d = luma(px);
            }
        }
        _ => {
            for (d, px) in dst.iter_mut().zip(src.chunks_exact(stride)) {
                *d = luma(px);
            }
        }
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

/// The working scale for an image of `w x h`: the mark is defined on a copy whose short side
/// is at most 512 px (and at most ~600k pixels), so large images carry proportionally larger
/// chips that survive being shrunk for the web.
pub(crate) fn working_scale(w: usize, h: usize) -> f64 {
    let short = w.min(h) as f64;
    let by_side = 512.0 / short;
    let by_area = (600_000.0 / (w as f64 * h as f64)).sqrt();
    by_side.min(by_area).min(1.0)
}

/// The working scale and the working copy's size for an image of `w x h`.
pub(crate) fn working_size(w: usize, h: usize) -> (f64, (usize, usize)) {
    let f = working_scale(w, h);
    let side = |n: usize| ((n as f64 * f).round() as usize).max(1);
    (f, (side(w), side(h)))
}

/// `x.floor()` without a libm call (the baseline x86-64 target has no rounding instruction,
/// and these run once per pixel). Exact for |x| < 2^52.
#[inline]
pub(crate) fn floor(x: f64) -> f64 {
    let t = x as i64 as f64;
    if t > x { t - 1.0 } else { t }
}

/// Nearest integer, halves away from zero (as `f32::round`), without a libm call.
#[inline]
pub(crate) fn round_i32(x: f32) -> i32 {
    if x >= 0.0 {
        (x + 0.5) as i32
    } else {
        (x - 0.5) as i32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resized_luma_matches_a_separable_reference() {
        let (w, h, nw, nh) = (37usize, 23usize, 16usize, 11usize);
        let rgb = image::RgbImage::from_fn(w as u32, h as u32, |x, y| {
            image::Rgb([
                (x * 7 % 256) as u8,
                (y * 13 % 256) as u8,
                ((x * y) % 256) as u8,
            ])
        });
        let img = image::DynamicImage::ImageRgb8(rgb);
        let full = Plane::luma_resized(&img, w, h);
        let got = Plane::luma_resized(&img, nw, nh);
        // Reference: horizontal taps on every row, then vertical taps.
        let (ht, vt) = (taps(w, nw), taps(h, nh));
        for (oy, (ylo, yws)) in vt.iter().enumerate() {
            for (ox, (xlo, xws)) in ht.iter().enumerate() {
                let mut v = 0f32;
                for (j, wy) in yws.iter().enumerate() {
                    for (i, wx) in xws.iter().enumerate() {
                        v += wy * wx * full.data[(ylo + j) * w + xlo + i];
                    }
                }
                let g = got.data[oy * nw + ox];
                assert!((g - v).abs() < 1e-2, "({ox},{oy}): {g} vs {v}");
            }
        }
    }

    #[test]
    fn small_box_mean_matches_running_sums() {
        for (w, h) in [(7, 9), (17, 18), (40, 13), (128, 64)] {
            let p = Plane {
                w,
                h,
                data: (0..w * h).map(|i| ((i * 7919) % 251) as f32).collect(),
            };
            for r in (1..=8).filter(|&r| w > 2 * r && h > 2 * r) {
                let a = p.box_mean_small(r);
                let b = p.box_mean_running(r);
                for (x, y) in a.data.iter().zip(&b.data) {
                    assert!((x - y).abs() < 1e-3, "{w}x{h} r={r}: {x} vs {y}");
                }
                let sq = Plane {
                    w,
                    h,
                    data: p.data.iter().map(|v| v * v).collect(),
                };
                let (a, b) = (p.box_mean_of_squares(r), sq.box_mean_running(r));
                for (x, y) in a.data.iter().zip(&b.data) {
                    assert!((x - y).abs() < 0.05, "{w}x{h} r={r}: {x} vs {y} (squares)");
                }
            }
        }
    }

    #[test]
    fn scratch_buffers_come_back_zeroed_and_bounded() {
        let (w, h) = (300, 300); // above the cache's minimum size
        assert_eq!(scratch::release(), scratch::release()); // empty after the first
        {
            let _keep = scratch::keep();
            let mut a = Plane::new(w, h);
            a.data.iter_mut().for_each(|v| *v = 7.0);
            drop(a);
            assert_eq!(scratch::held(), w * h * 4);
            // The same buffer, zeroed.
            let b = Plane::new(w, h);
            assert_eq!(scratch::held(), 0);
            assert!(b.data.iter().all(|&v| v == 0.0));
            let c = b.clone();
            drop((b, c));
            assert_eq!(scratch::held(), 2 * w * h * 4);
            // A bigger request frees what cannot serve it instead of holding it beside.
            let big = Plane::new(w, 2 * h);
            assert_eq!(scratch::held(), 0);
            drop(big);
            // Never more than the caps.
            let many: Vec<Plane> = (0..scratch::MAX_BUFFERS + 4)
                .map(|_| Plane::new(w, h))
                .collect();
            drop(many);
            assert!(scratch::held() <= scratch::MAX_BYTES);
            assert!(scratch::held() <= scratch::MAX_BUFFERS * 2 * w * h * 4);
        }
        // Without a guard nothing is kept.
        scratch::release();
        drop(Plane::new(w, h));
        assert_eq!(scratch::held(), 0);
        assert!(scratch::release() == 0);
    }
}
