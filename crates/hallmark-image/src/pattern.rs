//! The keyed tile: which chips are pilot, which carry which coded bit, and their signs.

use hallmark_core::{KeyStream, Payload, WatermarkKey, ecc};

/// Chips per side of the data tile.
pub(crate) const DATA_CHIPS: usize = 32;
/// Chips per side of the pilot tile, which repeats (DATA_CHIPS/PILOT_CHIPS)^2 times inside a data tile.
pub(crate) const PILOT_CHIPS: usize = 8;
/// The pilot's harmonics (of its tile), one per conjugate pair: two orbits of the square's
/// symmetry group, so the set of spectral lines looks the same under any flip or quarter
/// turn (the detector resolves those from the keyed phases), and together they generate the
/// whole lattice (so no smaller lattice explains them).
pub(crate) const PILOT_HARMONICS: [(i32, i32); 8] = [
    (1, 2),
    (2, 1),
    (-1, 2),
    (-2, 1),
    (2, 3),
    (3, 2),
    (-2, 3),
    (-3, 2),
];
/// Share of the mark's energy given to the pilot (sync) pattern. Measured: 0.25 recovers more
/// than 0.35 or 0.45 (sync is rarely what fails) and no less than 0.18.
pub(crate) const PILOT_SHARE: f32 = 0.25;
/// Chip size, in pixels of the working copy, for images whose short side is 384 px or more.
/// Chosen by measurement (docs/image-benchmark.md): 3 px chips recover 566 of 594 attacked
/// and small images against 521 for 4 px and 533 for 3.5 px, with 2.5 px no better.
pub(crate) const CHIP_PX: f64 = 3.0;
/// Short side (pixels) at and above which the mark has its full chip size.
pub(crate) const FULL_SIZE_SIDE: f64 = 384.0;

/// The mark's size relative to its full layout (chips of [`CHIP_PX`] working pixels).
///
/// Below [`FULL_SIZE_SIDE`] the mark shrinks with the image, down to half size (1.5-px chips
/// at 192 px and below): a 256 px thumbnail's own texture drowns 3-px chips, and a natural
/// picture's amplitude falls with frequency, so finer chips buy margin where the image has
/// few pixels (at the price of robustness to compression, which at that size is out of
/// reach anyway). The detector needs no change: it measures the mark's scale from the pilot
/// and reports it relative to the full layout (a natively marked 256 px image reads as scale
/// 0.67, like a 384 px one shrunk to 256).
pub(crate) fn mark_scale(w: usize, h: usize) -> f64 {
    (w.min(h) as f64 / FULL_SIZE_SIDE).clamp(0.5, 1.0)
}
/// Bins per chip side in the detector's folded tile.
pub(crate) const BINS_PER_CHIP: usize = 4;
/// Side of the folded data tile, in bins.
pub(crate) const DATA_BINS: usize = DATA_CHIPS * BINS_PER_CHIP;
/// Side of the pilot tile, in bins.
pub(crate) const PILOT_BINS: usize = PILOT_CHIPS * BINS_PER_CHIP;

/// The keyed layout: a small pilot tile that repeats densely (its many repeats make sharp
/// spectral lines for synchronisation), and a larger data tile where each chip carries one
/// coded bit (spread over about 3.3 chips per bit).
#[derive(Clone)]
pub(crate) struct Tile {
    /// Keyed phases of the pilot's gratings.
    pub phases: [f64; 8],
    /// Data chip signs, DATA_CHIPS x DATA_CHIPS.
    pub sign: Vec<f32>,
    /// Coded-bit index of each data chip.
    pub bit: Vec<u16>,
}

impl Tile {
    pub fn new(key: &WatermarkKey) -> Tile {
        let mut ks = KeyStream::new(key, "image/tile/v2");
        let mut order: Vec<usize> = (0..DATA_CHIPS * DATA_CHIPS).collect();
        ks.shuffle(&mut order);
        let mut bit = vec![0u16; DATA_CHIPS * DATA_CHIPS];
        for (n, &chip) in order.iter().enumerate() {
            bit[chip] = (n % ecc::CODED_BITS) as u16;
        }
        let sign = (0..DATA_CHIPS * DATA_CHIPS).map(|_| ks.sign()).collect();
        let phases = std::array::from_fn(|_| {
            f64::from(ks.next_u32()) / f64::from(u32::MAX) * std::f64::consts::TAU
        });
        Tile { phases, sign, bit }
    }

    /// Data chip amplitudes (+-1) for a payload.
    pub fn chips(&self, key: &WatermarkKey, payload: Payload) -> Vec<f32> {
        let coded = ecc::encode(key, payload);
        self.sign
            .iter()
            .zip(&self.bit)
            .map(|(&s, &k)| if coded[usize::from(k)] { s } else { -s })
            .collect()
    }
}

impl Tile {
    /// The pilot at chip coordinates: a sum of gratings, unit variance.
    #[inline]
    pub fn pilot(&self, cx: f64, cy: f64) -> f32 {
        let s = std::f64::consts::TAU / PILOT_CHIPS as f64;
        let mut v = 0.0;
        for (&(k1, k2), &ph) in PILOT_HARMONICS.iter().zip(&self.phases) {
            v += (s * (f64::from(k1) * cx + f64::from(k2) * cy) + ph).cos();
        }
        (v * (2.0 / PILOT_HARMONICS.len() as f64).sqrt()) as f32
    }
}
