use std::time::Instant;

use hallmark_core::{KeyId, Payload, WatermarkKey, ecc};
use image::DynamicImage;
use rustfft::{FftPlanner, num_complex::Complex32};

use crate::{
    geometry::{Lattice, analyse, fft2d, find_lattices},
    pattern::{BINS_PER_CHIP, CHIP_PX, G, GP, M, MP, PILOT_HARMONICS, Tile, mark_scale},
    plane::{Plane, floor, working_size},
    regions::{Alignment, Regions, locate},
};

/// The geometric transform the detector estimated between the marked original and the
/// image it was given.
#[derive(Clone, Debug, serde::Serialize, schemars::JsonSchema)]
pub struct Transform {
    /// Side of one tile of the mark in pixels of the analysed image.
    pub tile_period_px: f64,
    /// Tile size relative to the mark's full layout on the working copy: 1.0 for an untouched
    /// image whose short side is 384 px or more (and after a plain resize of one), about
    /// 1.41 after a centre crop keeping half the area. Below 384 px the mark shrinks with the
    /// image, so an untouched 256 px image reads about 0.67.
    pub scale: f64,
    /// Rotation of the tile grid in degrees, counter-clockwise, in (-180, 180].
    pub rotation_deg: f64,
    /// Whether the image is mirrored.
    pub flipped: bool,
    /// Where a tile starts, in pixels of the analysed image (x, y), modulo the tile.
    pub offset_px: [f64; 2],
}

/// The outcome of looking for the mark in one image. "Not marked" is a value, not an error.
#[derive(Clone, Debug, serde::Serialize, schemars::JsonSchema)]
pub struct Detection {
    /// True when a payload passed the keyed check.
    pub detected: bool,
    /// The payload, when detected.
    pub payload: Option<Payload>,
    /// Probability that an unmarked image yields a detection this strong: the number of
    /// decoding attempts times 2^-32 when detected (a bound by construction), 1.0 otherwise.
    pub p_value: f64,
    /// Coded bits that disagreed with the decoded codeword (errors corrected), when detected.
    pub bit_errors: Option<usize>,
    /// Strength of the pilot correlation at the best alignment, in standard deviations.
    pub sync_score: f64,
    /// Decoding attempts made: candidate codewords checked against the keyed check, over all
    /// the alignments tried (the list decoder checks up to 8 per alignment).
    pub attempts: usize,
    /// The estimated geometry, when a tile grid was found.
    pub transform: Option<Transform>,
    /// The public ID of the key searched for.
    pub key_id: KeyId,
    /// Which parts of the picture carry the mark, when detected by [`Detector::detect`]
    /// (a composite reads as partly marked). `None` when not detected, or when the picture
    /// is too small to map.
    pub regions: Option<Regions>,
    /// Wall-clock time spent, milliseconds.
    pub millis: f64,
    /// Where the payload decoded (for the map).
    #[serde(skip)]
    #[schemars(skip)]
    found_at: Option<Alignment>,
}

/// Looks for the mark of one key.
pub struct Detector {
    key: WatermarkKey,
    tile: Tile,
    pilot_spectrum: Vec<Complex32>,
    pilot_gp_spectrum: Vec<Complex32>,
    /// Maximum decoding attempts per image; the p-value bound grows with it.
    max_attempts: usize,
    search: Search,
}

/// How the detector spends its search past the embedding geometry.
///
/// Most images a detector sees carry no mark, and decoding is what a search costs (a list
/// decode per alignment, about a millisecond each). The screened search decodes an alignment
/// only when the folded tile shows the pilot: its 8 keyed gratings both stand out of the
/// tile's own spectrum (line-to-spectrum ratio >= 3) and line up in phase (pilot z >= 2.4). An unmarked
/// picture rarely shows both at once (periodic textures give power without the keyed
/// phases; noise gives neither), so it is answered "no" after the spectral analysis and a
/// few decodes instead of the whole budget. Both searches try a subset of the same
/// candidates, so the false-positive bound is the same.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Search {
    /// Decode the alignments whose pilot is evident (the default).
    #[default]
    Screened,
    /// Decode every alignment the budget allows, evident pilot or not: up to ~15x slower on
    /// an unmarked image; for forensic second looks and for measuring what the screen costs.
    Exhaustive,
}

/// The screen's thresholds (see [`Search`]). Calibrated on the benchmark's attacked images
/// (`docs/image-benchmark.md`, "Fast no"): every alignment that decoded there had a pilot
/// z of at least 2.95 and a line-to-spectrum ratio of at least 5.4, while 94% of the
/// alignments tried on unmarked images fall below one of these.
const SCREEN_Z: f64 = 2.4;
/// See [`SCREEN_Z`].
const SCREEN_SNR: f64 = 3.0;
/// Polishing a lattice (about 60 extra folds) is worth it only when its first reading shows
/// at least a trace of the pilot; looser than the decode screen, since polishing is what
/// sharpens a blurred pilot.
const POLISH_Z: f64 = 2.2;
/// See [`POLISH_Z`].
const POLISH_SNR: f64 = 2.0;

impl std::fmt::Debug for Detector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Detector")
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

/// The conjugate spectrum of the pilot rendered on an n x n grid of bins (n a multiple of
/// the pilot period), ready for FFT cross-correlation.
fn pilot_template(planner: &mut FftPlanner<f32>, tile: &Tile, n: usize) -> Vec<Complex32> {
    let mut t: Vec<Complex32> = (0..n * n)
        .map(|i| {
            let (by, bx) = (i / n, i % n);
            let v = tile.pilot(
                (bx as f64 + 0.5) / BINS_PER_CHIP as f64,
                (by as f64 + 0.5) / BINS_PER_CHIP as f64,
            );
            Complex32::new(v, 0.0)
        })
        .collect();
    fft2d(planner, &mut t, n, n, false);
    for c in &mut t {
        *c = c.conj();
    }
    t
}

/// Candidates per decoding (list Viterbi). Each one checked counts as an attempt in the
/// p-value bound: up to 386 alignments (each plane, offset and lattice tried counts one)
/// x 8 = 3088 attempts, p <= 3088 x 2^-32 = 7.2e-7.
const LIST: usize = 8;

/// Alignments the detector may try (each with the list of [`LIST`]): 2 at the embedding
/// geometry (the tile at the origin, 2 planes), then 384 for the search.
const MAX_ALIGNMENTS: usize = 2 + 384;

/// The most candidate codewords one detection checks against the keyed check; a detection's
/// p-value is at most `MAX_ATTEMPTS x 2^-32`.
pub const MAX_ATTEMPTS: usize = MAX_ALIGNMENTS * LIST;

const HALF_HAT: [f32; 8] = [0.125, 0.375, 0.625, 0.875, 0.875, 0.625, 0.375, 0.125];

impl Detector {
    /// A detector for `key`.
    pub fn new(key: &WatermarkKey) -> Self {
        let tile = Tile::new(key);
        let mut planner = FftPlanner::new();
        let t = pilot_template(&mut planner, &tile, G);
        let tp = pilot_template(&mut planner, &tile, GP);
        Detector {
            key: key.clone(),
            tile,
            pilot_spectrum: t,
            pilot_gp_spectrum: tp,
            max_attempts: MAX_ATTEMPTS,
            search: Search::Screened,
        }
    }

    /// The same detector with another search (see [`Search`]).
    #[must_use]
    pub fn with_search(mut self, search: Search) -> Self {
        self.search = search;
        self
    }

    /// The report of a search that found nothing (yet).
    fn nothing_found(&self) -> Detection {
        Detection {
            detected: false,
            payload: None,
            p_value: 1.0,
            bit_errors: None,
            sync_score: 0.0,
            attempts: 0,
            transform: None,
            key_id: self.key.id(),
            regions: None,
            millis: 0.0,
            found_at: None,
        }
    }

    /// Looks for the mark. Never panics, whatever the pixels.
    pub fn detect(&self, img: &DynamicImage) -> Detection {
        let start = Instant::now();
        let mut out = self.nothing_found();
        let (w, h) = (img.width() as usize, img.height() as usize);
        if w.min(h) < 64 {
            out.millis = start.elapsed().as_secs_f64() * 1e3;
            return out;
        }
        // The first step keeps its planes' buffers for this thread (see `release_scratch`).
        let keep = crate::plane::scratch::keep();
        let (f, (ww, wh), r, calm) = working_residual(img);
        // A picture with no detail at all (one flat colour) has nothing to read the mark
        // from, and a search over its empty spectrum would only spend the budget. Its
        // residual is float rounding: below a thousandth of the normaliser's floor (a
        // quarter grey level) everywhere, while any 8-bit picture with detail has steps of
        // at least 1/25 of a grey level in its 5x5 residual.
        if r.data.iter().all(|v| v.abs() < 1e-3) {
            out.millis = start.elapsed().as_secs_f64() * 1e3;
            return out;
        }
        let mut planner = FftPlanner::new();
        // Most files reach a detector as they were written: first the embedding geometry
        // (all that `detect_untouched` reads), on its own share of the budget.
        if self.try_untouched(&mut planner, [&r, &calm], (w, h), f, &mut out) {
            self.map(&mut out, [&r, &calm], f, (w, h));
            out.millis = start.elapsed().as_secs_f64() * 1e3;
            return out;
        }
        // The spectral search allocates large FFT buffers: cached planes must not sit beside
        // them (measured: a fifth more peak memory), and its own planes are not kept.
        drop(keep);
        crate::plane::scratch::release();
        let (ratio, white) = analyse(&mut planner, &r, 8.0 * f);
        let p_max = (ww.min(wh) as f64 / 3.0).min(160.0);
        let lattices = find_lattices(&ratio, 10.0, p_max, 2);
        let full = (0, 0, ww, wh);
        let rep = (M / MP) as f64;
        // Pilot periods (working pixels) of an untouched image: marked at this size, or cut
        // from a picture marked at full layout (short side 384-512 px, where the pilot is
        // exactly CHIP_PX * MP image pixels).
        let pilot_px = CHIP_PX * MP as f64;
        let nominal = [pilot_px * mark_scale(w, h), pilot_px * f];

        // Per lattice: fold modulo the data tile, rank the 8 orientations by pilot
        // correlation; for the best few, re-express the basis in that orientation, fold the
        // normalised residual and try the (M/MP)^2 data-tile offsets the pilot cannot tell
        // apart (polishing the basis once if that fails).
        for lat in &lattices {
            let data = scaled(lat, rep);
            let hp = tile_highpass(&fold(&white, &data, G, full), G, data.period());
            let mut per_o = vec![];
            for o in 0..8 {
                let t = dihedral(&hp, o);
                if let Some((z, _, _)) = pilot_peak(&mut planner, &t, G, &self.pilot_spectrum) {
                    per_o.push((z, o));
                }
            }
            per_o.sort_by(|a, b| b.0.total_cmp(&a.0));
            for (rank, &(_, o)) in per_o.iter().take(3).enumerate() {
                let pl = oriented(lat, o);
                // Most images reach a detector unscaled and unrotated. When the estimate is
                // within its own error of such a geometry, try the exact one first: on a small
                // picture or crop the estimate's last half percent costs a fifth of the SNR.
                if rank == 0
                    && let Some(exact) = nominal.iter().find_map(|&p| snap(&pl, p))
                    && self
                        .try_decode(&mut planner, [&r, &calm], &exact, f, &mut out, Offsets::All)
                        .found
                {
                    break;
                }
                let plain =
                    self.try_decode(&mut planner, [&r, &calm], &pl, f, &mut out, Offsets::All);
                if plain.found {
                    break;
                }
                // The spectral estimate of the lattice is good to a few tenths of a percent;
                // on small images that is enough to blur the data chips. Polish the basis by
                // maximising the pilot's coherence, then try again (best orientation only).
                let worth_polishing = self.search == Search::Exhaustive
                    || (plain.z >= POLISH_Z && plain.snr >= POLISH_SNR);
                if rank == 0 && worth_polishing {
                    let polished = self.polish(&mut planner, &r, &pl);
                    if self
                        .try_decode(
                            &mut planner,
                            [&r, &calm],
                            &polished,
                            f,
                            &mut out,
                            Offsets::All,
                        )
                        .found
                    {
                        break;
                    }
                    // The pilot's coarse gratings barely notice a scale error of half a
                    // percent, which still drifts the fine data chips by a chip across a
                    // small crop: refine once more on the data chips' own coherence.
                    let refined = self.polish_on_data(&mut planner, &r, &polished);
                    if self
                        .try_decode(
                            &mut planner,
                            [&r, &calm],
                            &refined,
                            f,
                            &mut out,
                            Offsets::All,
                        )
                        .found
                    {
                        break;
                    }
                }
            }
            if out.detected {
                break;
            }
        }
        // Nothing found: the spectral search can lose the pilot in a picture whose own
        // texture is as fine as the mark (grass, gravel). Try the geometry most images arrive
        // in, unscaled and unrotated, in the orientation the pilot prefers.
        if !out.detected {
            let mut tried: Vec<f64> = vec![];
            for &p in &nominal {
                if tried.iter().any(|&q| (q - p).abs() < 1e-9) {
                    continue;
                }
                tried.push(p);
                let base = square_lattice(p);
                let data = scaled(&base, rep);
                let hp = tile_highpass(&fold(&white, &data, G, full), G, data.period());
                let best = (0..8)
                    .filter_map(|o| {
                        pilot_peak(&mut planner, &dihedral(&hp, o), G, &self.pilot_spectrum)
                            .map(|(z, _, _)| (z, o))
                    })
                    .max_by(|a, b| a.0.total_cmp(&b.0));
                if let Some((_, o)) = best
                    && self
                        .try_decode(
                            &mut planner,
                            [&r, &calm],
                            &oriented(&base, o),
                            f,
                            &mut out,
                            Offsets::All,
                        )
                        .found
                {
                    break;
                }
            }
        }
        if out.detected {
            out.p_value = (out.attempts as f64 * ecc::FALSE_MATCH_PER_ATTEMPT).min(1.0);
            self.map(&mut out, [&r, &calm], f, (w, h));
        }
        out.millis = start.elapsed().as_secs_f64() * 1e3;
        out
    }

    /// Fills `out.regions` for a detection (see [`Regions`]).
    fn map(&self, out: &mut Detection, planes: [&Plane; 2], f: f64, size: (usize, usize)) {
        if let (Some(at), Some(payload)) = (out.found_at, out.payload) {
            out.regions = locate(&self.tile, &self.key, payload, planes, &at, f, size);
        }
    }

    /// Looks for the mark only where an untouched file has it: unscaled, unrotated, at the
    /// size it was embedded; the first step of [`Detector::detect`], which returns as soon as
    /// it succeeds, so `detect` finds whatever this finds. `detected: false` here says
    /// nothing about other geometries. The p-value is stated the same way (attempts x 2^-32).
    pub fn detect_untouched(&self, img: &DynamicImage) -> Detection {
        let start = Instant::now();
        let mut out = self.nothing_found();
        let (w, h) = (img.width() as usize, img.height() as usize);
        if w.min(h) >= 64 {
            let _keep = crate::plane::scratch::keep();
            let (f, _, r, calm) = working_residual(img);
            self.try_untouched(&mut FftPlanner::new(), [&r, &calm], (w, h), f, &mut out);
        }
        out.millis = start.elapsed().as_secs_f64() * 1e3;
        out
    }

    /// [`Detector::detect_untouched`] for the top-left corner of a picture: `part` is the
    /// corner (its first `part.width()` columns and `part.height()` rows) of a picture of
    /// `full` = (width, height), read at the geometry the embedder used for the whole
    /// picture. A cheap check of what a codec does to a mark (the codec's round trip of a
    /// quarter of a picture costs a quarter): the corner holds a quarter of the mark's
    /// repetitions, so it reads where the whole picture does, with margin to spare, or not.
    pub fn detect_untouched_corner(&self, part: &DynamicImage, full: (u32, u32)) -> Detection {
        let start = Instant::now();
        let mut out = self.nothing_found();
        let _keep = crate::plane::scratch::keep();
        if let Some((f, r, calm)) = corner_residual(part, full) {
            let size = (full.0 as usize, full.1 as usize);
            self.try_untouched(&mut FftPlanner::new(), [&r, &calm], size, f, &mut out);
        }
        out.millis = start.elapsed().as_secs_f64() * 1e3;
        out
    }

    /// How clearly the top-left corner `part` of a picture of `full` = (width, height)
    /// carries the mark of a known `payload`, read at the whole picture's embedding
    /// geometry (as [`Detector::detect_untouched_corner`]): the signal-to-noise ratio of the
    /// coded bits (mean over spread of each bit's reading times its known sign), scaled to
    /// what the whole picture would give (the corner holds a fraction of the mark's
    /// repetitions; the ratio grows with the square root of the area). A predictor of
    /// decoding that does not need a decode to succeed: the decoder reads reliably above
    /// about 2 (measured by the stamp's WebP check, `image-robustness --only-webp-check`).
    /// `None` when the corner is too small to read.
    pub fn corner_bit_snr(
        &self,
        part: &DynamicImage,
        full: (u32, u32),
        payload: Payload,
    ) -> Option<f64> {
        let _keep = crate::plane::scratch::keep();
        let (_, r, calm) = corner_residual(part, full)?;
        let (pw, ph) = (part.width() as usize, part.height() as usize);
        let (w, h) = (full.0 as usize, full.1 as usize);
        let mut planner = FftPlanner::new();
        let base = square_lattice(CHIP_PX * MP as f64 * mark_scale(w, h));
        let dl = scaled(&base, (M / MP) as f64);
        let coded = ecc::encode(&self.key, payload);
        let mut best: Option<f64> = None;
        for plane in [&r, &calm] {
            let region = (0, 0, plane.w, plane.h);
            let t = tile_highpass(&fold(plane, &dl, G, region), G, dl.period());
            let Some((_, dy, dx)) = pilot_peak(&mut planner, &t, G, &self.pilot_spectrum) else {
                continue;
            };
            let (dy, dx) = (dy.round() as usize % GP, dx.round() as usize % GP);
            let near = |d: usize| if d > GP / 2 { (G / GP) - 1 } else { 0 };
            let (oy, ox) = (dy + near(dy) * GP, dx + near(dx) * GP);
            let t = remove_pilot(&mut planner, &t);
            let x: Vec<f64> = soft_bits_raw(&self.tile, &t, oy, ox)
                .iter()
                .zip(&coded)
                .map(|(&v, &c)| if c { f64::from(v) } else { -f64::from(v) })
                .collect();
            let n = x.len() as f64;
            let mean = x.iter().sum::<f64>() / n;
            let sd = (x.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n).sqrt();
            if sd > 0.0 && sd.is_finite() {
                let whole = ((w * h) as f64 / (pw * ph) as f64).sqrt();
                let snr = mean / sd * whole;
                best = Some(best.map_or(snr, |b| b.max(snr)));
            }
        }
        best
    }

    /// Decodes at the geometry the embedder used for an image of `size` (unscaled, unrotated);
    /// on success also states the p-value.
    fn try_untouched(
        &self,
        planner: &mut FftPlanner<f32>,
        planes: [&Plane; 2],
        (w, h): (usize, usize),
        f: f64,
        out: &mut Detection,
    ) -> bool {
        let base = square_lattice(CHIP_PX * MP as f64 * mark_scale(w, h));
        let found = self
            .try_decode(planner, planes, &base, f, out, Offsets::Origin)
            .found;
        if found {
            out.p_value = (out.attempts as f64 * ecc::FALSE_MATCH_PER_ATTEMPT).min(1.0);
        }
        found
    }

    /// Folds with pilot basis `pl`, aligns on the pilot, and tries the data-tile offsets on
    /// the normalised residual, then on its calm-weighted copy (see [`calm_weighted`]): all
    /// of them, or with [`Offsets::Origin`] only the one nearest the image's origin (where
    /// the embedder put the tile: an untouched file).
    fn try_decode(
        &self,
        planner: &mut FftPlanner<f32>,
        planes: [&Plane; 2],
        pl: &Lattice,
        f: f64,
        out: &mut Detection,
        offsets: Offsets,
    ) -> Tried {
        let at_origin = offsets == Offsets::Origin;
        let mut tried = Tried {
            found: false,
            z: 0.0,
            snr: 0.0,
        };
        let dl = scaled(pl, (M / MP) as f64);
        let full = (0, 0, planes[0].w, planes[0].h);
        // Data are read from the normalised residual, the plane the informed embedder
        // optimised for; the whitened plane served the synchronisation.
        let t = tile_highpass(&fold(planes[0], &dl, G, full), G, dl.period());
        let Some((z, dy, dx)) = pilot_peak(planner, &t, G, &self.pilot_spectrum) else {
            return tried;
        };
        out.sync_score = out.sync_score.max(z);
        let (dy, dx) = (dy.round() as usize % GP, dx.round() as usize % GP);
        // The screen (the embedding geometry is always decoded: two alignments, and where
        // most marked files are found).
        tried.z = z;
        tried.snr = pilot_line_ratio(planner, &t);
        if !at_origin
            && self.search == Search::Screened
            && (tried.z < SCREEN_Z || tried.snr < SCREEN_SNR)
        {
            if out.transform.is_none() {
                out.transform = Some(transform(&dl, dy, dx, f));
            }
            return tried;
        }
        for (k, plane) in planes.iter().enumerate() {
            let t = if k == 0 {
                remove_pilot(planner, &t)
            } else {
                let t = tile_highpass(&fold(plane, &dl, G, full), G, dl.period());
                remove_pilot(planner, &t)
            };
            // Near the origin, a pilot offset past half its period is a small negative one.
            let near = |d: usize| if d > GP / 2 { (G / GP) - 1 } else { 0 };
            let mut candidates: Vec<(usize, usize)> = if at_origin {
                vec![(dy + near(dy) * GP, dx + near(dx) * GP)]
            } else {
                (0..G / GP)
                    .flat_map(|i| (0..G / GP).map(move |j| (dy + i * GP, dx + j * GP)))
                    .collect()
            };
            // Most coherent first: at the right offset each bit's chips add up, elsewhere
            // they cancel, so the energy of the per-bit sums ranks the offsets and the right
            // one is usually decoded first (fewer list decodes, fewer attempts counted).
            if candidates.len() > 1 {
                let mut ranked: Vec<(f32, (usize, usize))> = candidates
                    .iter()
                    .map(|&(oy, ox)| {
                        let e = self.soft_bits_raw(&t, oy, ox).iter().map(|v| v * v).sum();
                        (e, (oy, ox))
                    })
                    .collect();
                ranked.sort_by(|a, b| b.0.total_cmp(&a.0));
                candidates = ranked.into_iter().map(|(_, c)| c).collect();
            }
            for (oy, ox) in candidates {
                if out.attempts + LIST > self.max_attempts {
                    return tried;
                }
                let soft = self.soft_bits(&t, oy, ox);
                let (decoded, checked) = ecc::decode_list(&self.key, &soft, LIST);
                out.attempts += checked;
                if let Some(d) = decoded {
                    out.detected = true;
                    out.payload = Some(d.payload);
                    out.bit_errors = Some(d.bit_errors);
                    out.sync_score = z;
                    out.transform = Some(transform(&dl, oy, ox, f));
                    out.found_at = Some(Alignment { dl, oy, ox });
                    tried.found = true;
                    return tried;
                }
            }
        }
        if out.transform.is_none() {
            out.transform = Some(transform(&dl, dy, dx, f));
        }
        tried
    }

    /// Coordinate search over small changes of the pilot basis (scale and shear per axis),
    /// maximising the pilot's folded correlation peak.
    fn polish(&self, planner: &mut FftPlanner<f32>, r: &Plane, pl: &Lattice) -> Lattice {
        let full = (0, 0, r.w, r.h);
        let strength = |planner: &mut FftPlanner<f32>, l: &Lattice| -> f64 {
            let t = tile_highpass(&fold(r, l, GP, full), GP, l.period());
            pilot_peak_raw(planner, &t, &self.pilot_gp_spectrum)
        };
        coordinate_search(planner, pl, &[0.004, 0.002, 0.001], strength)
    }

    /// Coordinate search over small changes of the pilot basis maximising the data chips'
    /// coherence: the energy of the per-bit sums at the best of the data-tile offsets the
    /// pilot leaves open. Blind (the bits are unknown), but it uses the fine data chips and
    /// three times the pilot's energy. Measured: +3 recoveries over the 594-trial sweep; the
    /// criterion is noisy on small crops and does not always reach the true lattice.
    fn polish_on_data(&self, planner: &mut FftPlanner<f32>, r: &Plane, pl: &Lattice) -> Lattice {
        let full = (0, 0, r.w, r.h);
        let coherence = |planner: &mut FftPlanner<f32>, l: &Lattice| -> f64 {
            let dl = scaled(l, (M / MP) as f64);
            let t = tile_highpass(&fold(r, &dl, G, full), G, dl.period());
            let Some((_, dy, dx)) = pilot_peak(planner, &t, G, &self.pilot_spectrum) else {
                return 0.0;
            };
            let t = remove_pilot(planner, &t);
            let total: f64 = t.iter().map(|v| f64::from(v * v)).sum();
            if total <= 0.0 {
                return 0.0;
            }
            let (dy, dx) = (dy.round() as usize % GP, dx.round() as usize % GP);
            let mut best = 0.0f64;
            for i in 0..G / GP {
                for j in 0..G / GP {
                    let soft = self.soft_bits_raw(&t, dy + i * GP, dx + j * GP);
                    let e: f64 = soft.iter().map(|v| f64::from(v * v)).sum();
                    best = best.max(e);
                }
            }
            best / total
        };
        coordinate_search(planner, pl, &[0.004, 0.002, 0.001, 0.0005], coherence)
    }

    fn soft_bits(&self, t: &[f32], dy: usize, dx: usize) -> Vec<f32> {
        let mut soft = self.soft_bits_raw(t, dy, dx);
        let norm = (soft.iter().map(|v| v * v).sum::<f32>() / soft.len() as f32).sqrt();
        if norm > 0.0 && norm.is_finite() {
            soft.iter_mut().for_each(|v| *v /= norm);
        }
        soft
    }

    fn soft_bits_raw(&self, t: &[f32], dy: usize, dx: usize) -> Vec<f32> {
        soft_bits_raw(&self.tile, t, dy, dx)
    }
}

/// Greedy search over the pilot basis: scale and shear of each axis, one step of each size in
/// each direction, keeping whatever raises `score`.
fn coordinate_search(
    planner: &mut FftPlanner<f32>,
    pl: &Lattice,
    steps: &[f64],
    score: impl Fn(&mut FftPlanner<f32>, &Lattice) -> f64,
) -> Lattice {
    let apply = |l: &Lattice, e: [f64; 4]| Lattice {
        a: [
            l.a[0] * (1.0 + e[0]) + l.b[0] * e[1],
            l.a[1] * (1.0 + e[0]) + l.b[1] * e[1],
        ],
        b: [
            l.b[0] * (1.0 + e[3]) + l.a[0] * e[2],
            l.b[1] * (1.0 + e[3]) + l.a[1] * e[2],
        ],
        score: l.score,
    };
    let mut best = *pl;
    let mut best_s = score(planner, &best);
    for &step in steps {
        for k in 0..4 {
            for sign in [1.0, -1.0] {
                let mut e = [0.0; 4];
                e[k] = sign * step;
                let cand = apply(&best, e);
                let s = score(planner, &cand);
                if s > best_s {
                    best_s = s;
                    best = cand;
                }
            }
        }
    }
    best
}

fn soft_bits_raw(tile: &Tile, t: &[f32], dy: usize, dx: usize) -> Vec<f32> {
    {
        let mut soft = vec![0f32; ecc::CODED_BITS];
        for i in 0..M {
            for j in 0..M {
                let mut acc = 0f32;
                for (ty, wy) in HALF_HAT.iter().enumerate() {
                    let by = (i * BINS_PER_CHIP + ty + G - 2 + dy) % G;
                    let row = &t[by * G..(by + 1) * G];
                    for (tx, wx) in HALF_HAT.iter().enumerate() {
                        let bx = (j * BINS_PER_CHIP + tx + G - 2 + dx) % G;
                        acc += wy * wx * row[bx];
                    }
                }
                soft[usize::from(tile.bit[i * M + j])] += tile.sign[i * M + j] * acc;
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
        a: [chip.0 * M as f64, 0.0],
        b: [0.0, chip.1 * M as f64],
        score: 0.0,
    };
    let mut planner = FftPlanner::new();
    let full = (0, 0, yw.w, yw.h);
    let mut stats = |p: &Plane| {
        let t = tile_highpass(&fold(p, &l, G, full), G, l.period());
        let t = remove_pilot(&mut planner, &t);
        soft_bits_raw(tile, &t, 0, 0)
    };
    (stats(&rh), stats(&rm))
}

/// What one [`Detector::try_decode`] saw: whether it decoded, and the pilot's evidence at
/// that lattice (the screen's two statistics).
#[derive(Clone, Copy, Debug)]
struct Tried {
    found: bool,
    /// Pilot correlation z (0 to 4: 4 when the 8 gratings line up perfectly in phase).
    z: f64,
    /// [`pilot_line_ratio`] of the folded tile.
    snr: f64,
}

/// Mean power of the folded tile on the pilot's 8 spectral lines (and their conjugates)
/// over its mean power at the other frequencies of the same band (radius 6-16 bins, where
/// the lines lie): about 1 when the tile holds no pilot, 5 to several hundred when it does.
/// The lines' neighbours are left out of the reference, so a slightly blurred pilot does
/// not raise it.
fn pilot_line_ratio(planner: &mut FftPlanner<f32>, t: &[f32]) -> f64 {
    let mut buf: Vec<Complex32> = t.iter().map(|&v| Complex32::new(v, 0.0)).collect();
    fft2d(planner, &mut buf, G, G, false);
    let step = (G / GP) as i64;
    let g = G as i64;
    let mut near_line = vec![false; G * G];
    let mut on = 0.0f64;
    for &(k1, k2) in &PILOT_HARMONICS {
        for sign in [1i64, -1] {
            let (cx, cy) = (sign * i64::from(k1) * step, sign * i64::from(k2) * step);
            let at = |dx: i64, dy: i64| {
                (cy + dy).rem_euclid(g) as usize * G + (cx + dx).rem_euclid(g) as usize
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
        if i > G / 2 {
            i as f64 - G as f64
        } else {
            i as f64
        }
    };
    let (mut off, mut n) = (0.0f64, 0usize);
    for (i, c) in buf.iter().enumerate() {
        let r = signed(i % G).hypot(signed(i / G));
        if (6.0..=16.0).contains(&r) && !near_line[i] {
            off += f64::from(c.norm_sqr());
            n += 1;
        }
    }
    let lines = 2 * PILOT_HARMONICS.len();
    let ratio = (on / lines as f64) / (off / n.max(1) as f64);
    if ratio.is_finite() { ratio } else { 0.0 }
}

/// Which data-tile offsets [`Detector::try_decode`] tries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Offsets {
    /// All 16 the pilot cannot tell apart.
    All,
    /// Only the one nearest the image's origin.
    Origin,
}

/// Radius of the box mean that the high-pass subtracts (a 5x5 box).
pub(crate) const HIGHPASS_RADIUS: usize = 2;

/// High-pass (minus `m`, the 5x5 mean `y.box_mean(HIGHPASS_RADIUS)`), then divide by the local mean absolute residual and clip.
/// The embedder put more mark where the picture is busy, and the host's own residual is
/// larger there too; normalising by local activity weighs every region by its
/// signal-to-noise ratio, and clipping keeps edges from dominating.
/// Returns the residual and the per-pixel normaliser used.
#[multiversion::multiversion(targets("x86_64+avx2"))]
fn normalised_residual_with(y: &Plane, m: &Plane) -> (Plane, Plane) {
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
const NORM_RADIUS: usize = 4;

/// Folds the pixels of `region` (x0, y0, x1, y1) modulo the lattice into an n x n tile
/// (mean per bin; bin column follows `a`, row follows `b`).
fn fold(r: &Plane, l: &Lattice, n: usize, region: (usize, usize, usize, usize)) -> Vec<f32> {
    let det = l.a[0] * l.b[1] - l.b[0] * l.a[1];
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
fn tile_highpass(t: &[f32], n: usize, tile_px: f64) -> Vec<f32> {
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
fn remove_pilot(planner: &mut FftPlanner<f32>, t: &[f32]) -> Vec<f32> {
    let mut buf: Vec<Complex32> = t.iter().map(|&v| Complex32::new(v, 0.0)).collect();
    fft2d(planner, &mut buf, G, G, false);
    let step = (G / GP) as i64;
    let g = G as i64;
    for &(k1, k2) in &PILOT_HARMONICS {
        for sign in [1i64, -1] {
            let (cx, cy) = (sign * i64::from(k1) * step, sign * i64::from(k2) * step);
            for dy in -1..=1 {
                for dx in -1..=1 {
                    let x = (cx + dx).rem_euclid(g) as usize;
                    let y = (cy + dy).rem_euclid(g) as usize;
                    buf[y * G + x] = Complex32::new(0.0, 0.0);
                }
            }
        }
    }
    fft2d(planner, &mut buf, G, G, true);
    let n = (G * G) as f32;
    buf.iter().map(|c| c.re / n).collect()
}

/// One of the 8 symmetries of the square grid: bit 2 transposes, bit 0 flips rows, bit 1
/// flips columns.
fn dihedral(t: &[f32], o: usize) -> Vec<f32> {
    let mut out = vec![0f32; G * G];
    for y in 0..G {
        for x in 0..G {
            let (mut sy, mut sx) = if o & 4 != 0 { (x, y) } else { (y, x) };
            if o & 1 != 0 {
                sy = G - 1 - sy;
            }
            if o & 2 != 0 {
                sx = G - 1 - sx;
            }
            out[y * G + x] = t[sy * G + sx];
        }
    }
    out
}

/// Circular cross-correlation of an n x n tile with a template (given as the conjugate of
/// its spectrum), folded onto one pilot period (the pilot repeats inside larger tiles).
/// Returns the z-score of the best shift and the shift (row, column) in bins, sub-bin.
fn pilot_peak(
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
    let mut surf = vec![0f64; GP * GP];
    for (i, c) in buf.iter().enumerate() {
        surf[((i / n) % GP) * GP + (i % n) % GP] += f64::from(c.re);
    }
    let cnt = surf.len() as f64;
    let mean = surf.iter().sum::<f64>() / cnt;
    let sd = (surf.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / cnt).sqrt();
    if sd.is_nan() || sd <= 0.0 || !sd.is_finite() {
        return None;
    }
    let (i, &v) = surf.iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1))?;
    let (py, px) = (i / GP, i % GP);
    let at = |y: usize, x: usize| surf[(y % GP) * GP + x % GP];
    let sub = |m: f64, c: f64, p: f64| {
        let den = m - 2.0 * c + p;
        if den.abs() < 1e-12 {
            0.0
        } else {
            (0.5 * (m - p) / den).clamp(-0.5, 0.5)
        }
    };
    let dy = py as f64 + sub(at(py + GP - 1, px), v, at(py + 1, px));
    let dx = px as f64 + sub(at(py, px + GP - 1), v, at(py, px + 1));
    Some(((v - mean) / sd, dy, dx))
}

/// The raw peak of the circular correlation of a GP x GP tile with the pilot.
fn pilot_peak_raw(planner: &mut FftPlanner<f32>, t: &[f32], template_conj: &[Complex32]) -> f64 {
    let mut buf: Vec<Complex32> = t.iter().map(|&v| Complex32::new(v, 0.0)).collect();
    fft2d(planner, &mut buf, GP, GP, false);
    for (b, p) in buf.iter_mut().zip(template_conj) {
        *b *= p;
    }
    fft2d(planner, &mut buf, GP, GP, true);
    buf.iter()
        .map(|c| f64::from(c.re))
        .fold(f64::NEG_INFINITY, f64::max)
}

/// The basis that makes the fold come out in orientation `o` (see [`dihedral`]).
fn oriented(l: &Lattice, o: usize) -> Lattice {
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
fn snap(l: &Lattice, p: f64) -> Option<Lattice> {
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

/// The working copy's scale, its size, its clipped, normalised residual and that residual's
/// calm-weighted copy.
fn working_residual(img: &DynamicImage) -> (f64, (usize, usize), Plane, Plane) {
    let (w, h) = (img.width() as usize, img.height() as usize);
    let (f, (ww, wh)) = working_size(w, h);
    let (r, calm) = residual_at(img, ww, wh);
    (f, (ww, wh), r, calm)
}

/// For the top-left corner `part` of a picture of `full` = (width, height): the whole
/// picture's working scale, and the corner's residual and calm-weighted copy on the whole
/// picture's working grid. `None` when the corner is under 64 px or larger than `full`.
fn corner_residual(part: &DynamicImage, full: (u32, u32)) -> Option<(f64, Plane, Plane)> {
    let (pw, ph) = (part.width() as usize, part.height() as usize);
    let (w, h) = (full.0 as usize, full.1 as usize);
    if pw.min(ph) < 64 || pw > w || ph > h {
        return None;
    }
    let (f, (ww, wh)) = working_size(w, h);
    let side = |n: usize, whole: usize, working: usize| {
        ((n as f64 * working as f64 / whole as f64).round() as usize).max(1)
    };
    let (r, calm) = residual_at(part, side(pw, w, ww), side(ph, h, wh));
    Some((f, r, calm))
}

/// The normalised residual of `img` resampled to `ww x wh`, and its calm-weighted copy.
fn residual_at(img: &DynamicImage, ww: usize, wh: usize) -> (Plane, Plane) {
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
fn calm_weighted(r: &Plane, norm: &[f32]) -> Plane {
    let mut out = r.clone();
    let least = norm.iter().copied().fold(f32::INFINITY, f32::min);
    if least.is_finite() && least > 0.0 {
        for (v, n) in out.data.iter_mut().zip(norm) {
            *v *= least / n;
        }
    }
    out
}

/// The axis-aligned square lattice of period `p` (an untouched image's pilot).
fn square_lattice(p: f64) -> Lattice {
    Lattice {
        a: [p, 0.0],
        b: [0.0, p],
        score: 0.0,
    }
}

fn scaled(l: &Lattice, k: f64) -> Lattice {
    Lattice {
        a: [l.a[0] * k, l.a[1] * k],
        b: [l.b[0] * k, l.b[1] * k],
        score: l.score,
    }
}

fn transform(l: &Lattice, dy: usize, dx: usize, f: f64) -> Transform {
    let period = l.period();
    let det = l.a[0] * l.b[1] - l.b[0] * l.a[1];
    // The data tile is laid out with `a` along +x and `b` along +y: a negative determinant
    // means a mirror image. The angle of `a` is the rotation.
    let flipped = det < 0.0;
    let mut rot = l.a[1].atan2(l.a[0]).to_degrees();
    if rot <= -180.0 {
        rot += 360.0;
    }
    let (fy, fx) = (dy as f64 / G as f64, dx as f64 / G as f64);
    let ox = (l.a[0] * fx + l.b[0] * fy) / f;
    let oy = (l.a[1] * fx + l.b[1] * fy) / f;
    Transform {
        tile_period_px: period / f,
        scale: period / (CHIP_PX * M as f64),
        rotation_deg: rot,
        flipped,
        offset_px: [ox, oy],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fuzzer found that a one-colour picture (a GIF of transparent black) sent the search
    /// through its whole budget over an empty spectrum: it is answered without one.
    #[test]
    fn a_flat_picture_is_answered_without_a_search() {
        let det = Detector::new(&WatermarkKey::from_bytes([7; 32]));
        for img in [
            DynamicImage::new_rgba8(192, 128),
            DynamicImage::ImageRgb8(image::RgbImage::from_pixel(
                640,
                480,
                image::Rgb([200, 120, 40]),
            )),
        ] {
            let d = det.detect(&img);
            assert!(!d.detected);
            assert_eq!(d.attempts, 0, "{}x{}", img.width(), img.height());
        }
    }

    #[test]
    fn fixed_point_fold_matches_a_float_reference() {
        let (w, h) = (203, 151);
        let r = Plane {
            w,
            h,
            data: (0..w * h)
                .map(|i| ((i * 7919 % 257) as f32) - 128.0)
                .collect(),
        };
        let (p, th) = (37.3f64, 7f64.to_radians());
        let l = Lattice {
            a: [p * th.cos(), p * th.sin()],
            b: [-p * th.sin(), p * th.cos()],
            score: 0.0,
        };
        for n in [GP, G] {
            let got = fold(&r, &l, n, (0, 0, w, h));
            // Reference: each pixel's bin from the inverse basis in f64.
            let det = l.a[0] * l.b[1] - l.b[0] * l.a[1];
            let inv = [l.b[1] / det, -l.b[0] / det, -l.a[1] / det, l.a[0] / det];
            let bin = |t: f64| (((t - t.floor()) * n as f64) as usize).min(n - 1);
            let mut sum = vec![0f64; n * n];
            let mut cnt = vec![0u32; n * n];
            for y in 0..h {
                for x in 0..w {
                    let (xf, yf) = (x as f64 + 0.5, y as f64 + 0.5);
                    let (u, v) = (inv[0] * xf + inv[1] * yf, inv[2] * xf + inv[3] * yf);
                    let i = bin(v) * n + bin(u);
                    sum[i] += f64::from(r.data[y * w + x]);
                    cnt[i] += 1;
                }
            }
            let mut off = 0;
            for (i, g) in got.iter().enumerate() {
                let want = if cnt[i] > 0 {
                    sum[i] / f64::from(cnt[i])
                } else {
                    0.0
                };
                if (f64::from(*g) - want).abs() > 1e-3 {
                    off += 1;
                }
            }
            // A pixel within rounding of a bin edge may land in the neighbour bin.
            assert!(off <= n * n / 1000, "n = {n}: {off} bins differ");
        }
    }
}
