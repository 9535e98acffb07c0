//! Known-answer tests of what an issued image mark depends on in this crate: the keyed tile
//! (which chip carries which coded bit, with which sign), the pilot's gratings and phases,
//! the layout constants and the working-copy geometry. With the payload code's tests in
//! `hallmark-core` and the committed marked images (`testdata/marks`), they freeze format
//! version [`crate::FORMAT_VERSION`]. If one fails, the change orphans marks already issued
//! (`docs/image-format.md`, "Changing the format"): fix the change, never the expected value.

use hallmark_core::WatermarkKey;
use sha2::{Digest, Sha256};

use crate::{
    pattern::{
        BINS_PER_CHIP, CHIP_PX, DATA_CHIPS, FULL_SIZE_SIDE, PILOT_CHIPS, PILOT_HARMONICS,
        PILOT_SHARE, Tile, mark_scale,
    },
    plane::working_size,
};

fn fixture_key() -> WatermarkKey {
    WatermarkKey::from_bytes(std::array::from_fn(|i| (i as u8).wrapping_mul(37) ^ 0x5a))
}

#[test]
fn tile_layout_is_frozen() {
    let tile = Tile::new(&fixture_key());
    let mut h = Sha256::new();
    for (&s, &b) in tile.sign.iter().zip(&tile.bit) {
        h.update([u8::from(s > 0.0)]);
        h.update(b.to_le_bytes());
    }
    for p in tile.phases {
        h.update(p.to_bits().to_le_bytes());
    }
    assert_eq!(hex::encode(h.finalize()), KAT_TILE);
}

#[test]
fn pilot_is_frozen() {
    let tile = Tile::new(&fixture_key());
    // The pilot's value at a few chip coordinates (sums of cosines: compared to 1e-5, not
    // bit for bit, since libm's last bit may differ between platforms).
    let got: Vec<f32> = [(0.0, 0.0), (0.5, 0.5), (1.25, 3.75), (7.0, 2.0), (3.3, 6.1)]
        .iter()
        .map(|&(x, y)| tile.pilot(x, y))
        .collect();
    for (g, e) in got.iter().zip(KAT_PILOT) {
        assert!((g - e).abs() < 1e-5, "pilot {got:?} != {KAT_PILOT:?}");
    }
    assert_eq!(
        PILOT_HARMONICS,
        [
            (1, 2),
            (2, 1),
            (-1, 2),
            (-2, 1),
            (2, 3),
            (3, 2),
            (-2, 3),
            (-3, 2)
        ]
    );
}

#[test]
fn layout_constants_are_frozen() {
    assert_eq!((DATA_CHIPS, PILOT_CHIPS, BINS_PER_CHIP), (32, 8, 4));
    assert_eq!(CHIP_PX, 3.0);
    assert_eq!(FULL_SIZE_SIDE, 384.0);
    assert_eq!(PILOT_SHARE, 0.25);
    // The mark's size and the working copy for the sizes users have.
    let sizes = [
        (128, 128),
        (256, 256),
        (320, 240),
        (640, 427),
        (1920, 1080),
        (4000, 3000),
    ];
    let got: Vec<(f64, f64, usize, usize)> = sizes
        .iter()
        .map(|&(w, h)| {
            let (f, (ww, wh)) = working_size(w, h);
            (mark_scale(w, h), f, ww, wh)
        })
        .collect();
    let want = [
        (0.5, 1.0, 128, 128),
        (2.0 / 3.0, 1.0, 256, 256),
        (0.625, 1.0, 320, 240),
        (1.0, 1.0, 640, 427),
        (1.0, 512.0 / 1080.0, 910, 512),
        (1.0, 512.0 / 3000.0, 683, 512),
    ];
    for ((g, w), s) in got.iter().zip(want).zip(sizes) {
        assert!(
            (g.0 - w.0).abs() < 1e-12 && (g.1 - w.1).abs() < 1e-3 && (g.2, g.3) == (w.2, w.3),
            "{s:?}: got {g:?}, want {w:?}"
        );
    }
}

const KAT_TILE: &str = "5352e9d13daee1f2b38e29e0b1945da52d74d85f727ef97e0344c6d80110cd2b";
const KAT_PILOT: [f32; 5] = [
    1.215_390_4,
    1.236_471_8,
    1.546_747_9,
    0.823_848_1,
    -1.282_531_6,
];
