//! Image decoding (every format hallmark reads, leniently as `verify` does) and watermark
//! detection of whatever decodes. Small decode limits keep the search fast; the limits
//! themselves are part of what is tested (no allocation beyond them, no panic at them).
#![no_main]

use std::sync::LazyLock;

use hallmark::io::{Limits, decode_lenient};
use hallmark_core::WatermarkKey;
use hallmark_image::Detector;
use libfuzzer_sys::fuzz_target;

static DETECTOR: LazyLock<Detector> =
    LazyLock::new(|| Detector::new(&WatermarkKey::from_bytes([7; 32])));

fuzz_target!(|data: &[u8]| {
    let limits = Limits::with_memory(64 << 20);
    if let Ok((decoded, _warning)) = decode_lenient(data, &limits) {
        let d = DETECTOR.detect(&decoded.image);
        assert!(d.p_value.is_nan() || (0.0..=1.0).contains(&d.p_value));
    }
});
