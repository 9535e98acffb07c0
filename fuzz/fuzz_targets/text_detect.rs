//! Text-watermark detection: arbitrary token ids under every scheme configuration, and
//! arbitrary UTF-8 through the tokenizer, the case readings, the prompt exclusion and the
//! multi-key search (the tokenizer is the tiny test model's byte-level BPE).
#![no_main]

use std::sync::LazyLock;

use hallmark_core::WatermarkKey;
use hallmark_lm::TextTokenizer;
use hallmark_text::{Config, TextMark};
use libfuzzer_sys::fuzz_target;

static TOKENIZER: LazyLock<TextTokenizer> = LazyLock::new(|| {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let path = dir.path().join("tiny.gguf");
    hallmark_lm::tiny::write_model(&path, 1, 1.0).expect("the tiny model");
    TextTokenizer::from_file(&path).expect("its tokenizer")
});

static MARKS: LazyLock<Vec<TextMark>> = LazyLock::new(|| {
    let key = WatermarkKey::from_bytes([3; 32]);
    let key2 = WatermarkKey::from_bytes([4; 32]);
    vec![
        TextMark::new(&key, Config::default()),
        TextMark::new(&key2, Config::default()),
    ]
});

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    if mode & 1 == 0 {
        let tokens: Vec<u32> = rest
            .chunks_exact(2)
            .map(|c| u32::from(u16::from_le_bytes([c[0], c[1]])) % 600)
            .collect();
        let skip = usize::from(mode >> 1);
        if let Ok(d) = MARKS[0].detect(&tokens, skip) {
            assert!((0.0..=1.0).contains(&d.p_value) || d.p_value.is_nan());
        }
    } else if let Ok(text) = std::str::from_utf8(rest) {
        let (text, prompt) = match text.split_once('\u{1}') {
            Some((t, p)) => (t, Some(p)),
            None => (text, None),
        };
        let marks: Vec<&TextMark> = MARKS.iter().collect();
        let _ = hallmark_lm::detect_text_keys(&marks, &TOKENIZER, text, prompt);
    }
});
