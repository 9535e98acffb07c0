//! The screened search (the default) answers unmarked pictures without spending the whole
//! budget, and still finds marks that only the search past the embedding geometry reads.

use hallmark_core::{Payload, WatermarkKey};
use hallmark_image::{Detector, EmbedParams, ImageMark, MAX_ATTEMPTS, Search};
use image::{DynamicImage, imageops::FilterType};

fn photo(name: &str) -> DynamicImage {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../testdata/photos")
        .join(name);
    image::open(&p).expect("bundled photo")
}

const PHOTOS: [&str; 6] = [
    "p01_astronaut_512x512.png",
    "p02_coffee_600x400.png",
    "p03_rocket_640x427.png",
    "p04_camera_gray_512x512.png",
    "p05_hubble_1000x872.png",
    "p06_seeding_1920x1080.jpg",
];

#[test]
fn unmarked_photos_are_answered_without_the_whole_budget() {
    let key = WatermarkKey::from_bytes([0x3c; 32]);
    let screened = Detector::new(&key);
    let exhaustive = Detector::new(&key).with_search(Search::Exhaustive);
    let (mut s_total, mut e_total) = (0, 0);
    for name in PHOTOS {
        let img = photo(name);
        let s = screened.detect(&img);
        let e = exhaustive.detect(&img);
        assert!(!s.detected && !e.detected, "{name}");
        assert!(
            s.attempts <= e.attempts,
            "{name}: {} > {}",
            s.attempts,
            e.attempts
        );
        assert!(
            e.attempts > MAX_ATTEMPTS / 2,
            "{name}: exhaustive {}",
            e.attempts
        );
        s_total += s.attempts;
        e_total += e.attempts;
    }
    // Measured: 16 codewords on five of the six, about a third of the budget on the
    // cameraman (a periodic texture that resembles the pilot's lattice).
    assert!(
        s_total * 4 <= e_total,
        "screened {s_total} vs exhaustive {e_total}"
    );
}

#[test]
fn marks_found_by_the_search_are_still_found() {
    let key = WatermarkKey::from_bytes([0x7e; 32]);
    let det = Detector::new(&key);
    for (i, name) in ["p01_astronaut_512x512.png", "p06_seeding_1920x1080.jpg"]
        .iter()
        .enumerate()
    {
        let mut img = photo(name);
        let payload = Payload(0x5eed_0000 + i as u64);
        ImageMark::new(&key, EmbedParams::default())
            .embed_dynamic(&mut img, payload)
            .expect("embed");
        let (w, h) = (img.width(), img.height());
        let attacked = [
            // A corner crop, scaled: no longer at the embedding geometry (the working copy
            // follows the short side).
            img.crop_imm(0, 0, w * 3 / 4, h * 3 / 4).resize(
                w * 9 / 10,
                h * 9 / 10,
                FilterType::Triangle,
            ),
            // A crop off the tile grid, mirrored.
            img.crop_imm(37, 23, w * 8 / 10, h * 8 / 10).fliph(),
        ];
        for (k, a) in attacked.iter().enumerate() {
            let d = det.detect(a);
            assert_eq!(d.payload, Some(payload), "{name} attack {k}: {d:?}");
            assert!(d.attempts > 16, "{name} attack {k}: found by the search");
        }
    }
}
