//! C2PA verification of arbitrary bytes as each container hallmark hands to c2pa (the first
//! byte picks the format), with and without a sidecar store, plus hallmark's own checks
//! around c2pa (manifest-store location for data-hash exclusions, inception actions).
#![no_main]

use std::sync::LazyLock;

use hallmark_c2pa::TrustSettings;
use libfuzzer_sys::fuzz_target;

const FORMATS: [&str; 8] = ["jpg", "png", "webp", "tiff", "gif", "avif", "heic", "c2pa"];

static TRUST: LazyLock<TrustSettings> = LazyLock::new(TrustSettings::default);

fuzz_target!(|data: &[u8]| {
    let Some((&pick, rest)) = data.split_first() else {
        return;
    };
    let format = FORMATS[usize::from(pick) % FORMATS.len()];
    if format == "c2pa" {
        // A sidecar store of arbitrary bytes next to a small valid PNG.
        let _ = hallmark_c2pa::verify("png", PNG, Some(rest), &TRUST);
    } else {
        let _ = hallmark_c2pa::verify(format, rest, None, &TRUST);
    }
});

/// A 1x1 PNG.
const PNG: &[u8] = &[
    0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44,
    0x52, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00, 0x00, 0x1f,
    0x15, 0xc4, 0x89, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x44, 0x41, 0x54, 0x78, 0x9c, 0x63, 0xf8,
    0xff, 0xff, 0x3f, 0x00, 0x05, 0xfe, 0x02, 0xfe, 0xa7, 0x35, 0x81, 0x84, 0x00, 0x00, 0x00,
    0x00, 0x49, 0x45, 0x4e, 0x44, 0xae, 0x42, 0x60, 0x82,
];
