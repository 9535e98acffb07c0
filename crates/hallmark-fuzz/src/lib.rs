//! The fuzz harnesses: one function per target, each taking arbitrary bytes and running one
//! parser hallmark applies to input it did not make. `fuzz/` wraps each in `cargo fuzz`
//! (libFuzzer); `tests/corpus.rs` runs each over its committed seeds and over every input a
//! fuzzer once crashed (`fuzz/regressions/`), so those stay fixed.
//!
//! A harness panics only when hallmark misbehaves: a panic inside hallmark, or an answer
//! outside its contract (a p-value outside [0, 1]). Errors are fine: refusing bad bytes is
//! the point.

use std::sync::LazyLock;

use hallmark::io::{Limits, decode_lenient};
use hallmark::ledger::{Checkpoint, check_checkpoint, verify_chain};
use hallmark_c2pa::{
    CertOptions, Embedding, ManifestSpec, SigningCredential, TrustSettings, generate, sign,
};
use hallmark_core::WatermarkKey;
use hallmark_image::Detector;
use hallmark_lm::TextTokenizer;
use hallmark_text::{Config, TextMark};

/// A harness: arbitrary bytes in, a panic only when hallmark misbehaves.
pub type Harness = fn(&[u8]);

/// The targets, by name (the `fuzz/fuzz_targets/*.rs` names and the corpus folders).
pub const TARGETS: [(&str, Harness); 5] = [
    ("image_detect", image_detect),
    ("c2pa_verify", c2pa_verify),
    ("text_detect", text_detect),
    ("ledger_parse", ledger_parse),
    ("manifest_definition", manifest_definition),
];

static DETECTOR: LazyLock<Detector> =
    LazyLock::new(|| Detector::new(&WatermarkKey::from_bytes([7; 32])));

/// Image decoding (every format hallmark reads, leniently as `verify` does) and watermark
/// detection of whatever decodes. A 64 MiB memory budget keeps each run fast; the limits
/// themselves are under test (no allocation past them, no panic at them).
pub fn image_detect(data: &[u8]) {
    let limits = Limits::with_memory(64 << 20);
    if let Ok((decoded, _damage)) = decode_lenient(data, &limits) {
        let d = DETECTOR.detect(&decoded.image);
        assert!(
            (0.0..=1.0).contains(&d.p_value),
            "p-value {} out of range",
            d.p_value
        );
    }
}

const FORMATS: [&str; 8] = ["jpg", "png", "webp", "tiff", "gif", "avif", "heic", "c2pa"];

static TRUST: LazyLock<TrustSettings> = LazyLock::new(TrustSettings::default);

/// C2PA verification of arbitrary bytes in each container hallmark hands to c2pa (the
/// first byte picks it), or as a sidecar store beside a valid PNG; hallmark's own checks
/// around c2pa (manifest-store location, inception actions) included.
pub fn c2pa_verify(data: &[u8]) {
    let Some((&pick, rest)) = data.split_first() else {
        return;
    };
    let format = FORMATS[usize::from(pick) % FORMATS.len()];
    if format == "c2pa" {
        let _ = hallmark_c2pa::verify("png", PNG_1X1, Some(rest), &TRUST);
    } else {
        let _ = hallmark_c2pa::verify(format, rest, None, &TRUST);
    }
}

static TOKENIZER: LazyLock<TextTokenizer> = LazyLock::new(|| {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let path = dir.path().join("tiny.gguf");
    hallmark_lm::tiny::write_model(&path, 1, 1.0).expect("the tiny model");
    TextTokenizer::from_file(&path).expect("its tokenizer")
});

static MARKS: LazyLock<[TextMark; 2]> = LazyLock::new(|| {
    [
        TextMark::new(&WatermarkKey::from_bytes([3; 32]), Config::default()),
        TextMark::new(&WatermarkKey::from_bytes([4; 32]), Config::kgw()),
    ]
});

/// Text-watermark detection: arbitrary token ids (first byte even; the rest as 16-bit ids,
/// the first byte's upper bits the prompt length to skip), or arbitrary UTF-8 (first byte
/// odd; a `\u{1}` separates the text from a prompt to exclude) through the tokenizer, the
/// case readings and two keys of different schemes at once.
pub fn text_detect(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    if mode & 1 == 0 {
        let tokens: Vec<u32> = rest
            .chunks_exact(2)
            .map(|c| u32::from(u16::from_le_bytes([c[0], c[1]])))
            .collect();
        let skip = usize::from(mode >> 1);
        for mark in MARKS.iter() {
            if let Ok(d) = mark.detect(&tokens, skip) {
                assert!((0.0..=1.0).contains(&d.p_value), "p-value {}", d.p_value);
            }
        }
    } else if let Ok(text) = std::str::from_utf8(rest) {
        let (text, prompt) = match text.split_once('\u{1}') {
            Some((t, p)) => (t, Some(p)),
            None => (text, None),
        };
        let marks: Vec<&TextMark> = MARKS.iter().collect();
        if let Ok((_, d)) = hallmark_lm::detect_text_keys(&marks, &TOKENIZER, text, prompt) {
            assert!(
                (0.0..=1.0).contains(&d.detection.p_value),
                "p-value {}",
                d.detection.p_value
            );
        }
    }
}

/// The accountability ledger's parser and chain check (JSON lines, hashes, signatures,
/// sequence), then a checkpoint (JSON, after a blank line) against whatever verified.
pub fn ledger_parse(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (ledger, checkpoint) = text.split_once("\n\n").unwrap_or((text, ""));
    let records = verify_chain(ledger, None).unwrap_or_default();
    if let Ok(cp) = serde_json::from_str::<Checkpoint>(checkpoint) {
        let _ = check_checkpoint(&records, &cp, None);
    }
}

static CREDENTIAL: LazyLock<SigningCredential> = LazyLock::new(|| {
    let g = generate(&CertOptions::default()).expect("a test chain");
    SigningCredential::from_pem(&g.chain_pem, &g.key_pem).expect("its credential")
});

/// A c2patool-style manifest definition (arbitrary JSON) merged into hallmark's manifest
/// and signed into a small PNG: a definition may be refused, never crash the signer.
pub fn manifest_definition(data: &[u8]) {
    let Ok(def) = serde_json::from_slice::<serde_json::Value>(data) else {
        return;
    };
    let spec = ManifestSpec {
        extra_definition: Some(def),
        ..ManifestSpec::default()
    };
    let _ = sign(&CREDENTIAL, &spec, "png", PNG_1X1, Embedding::Embedded);
}

/// A 1x1 PNG.
const PNG_1X1: &[u8] = &[
    0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44, 0x52,
    0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00, 0x00, 0x1f, 0x15, 0xc4,
    0x89, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x44, 0x41, 0x54, 0x78, 0x9c, 0x63, 0xf8, 0xff, 0xff, 0x3f,
    0x00, 0x05, 0xfe, 0x02, 0xfe, 0xa7, 0x35, 0x81, 0x84, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45, 0x4e,
    0x44, 0xae, 0x42, 0x60, 0x82,
];
