//! The tokenizer and generation loop on the tiny random model.
#![allow(clippy::unwrap_used, missing_docs)]

use hallmark_lm::{GenerateOptions, LoadOptions, Model, TextTokenizer, tiny};
use hallmark_text::Sampler;

fn model() -> (tempfile::TempDir, std::path::PathBuf) {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("tiny.gguf");
    tiny::write_model(&p, 3, 1.0).unwrap();
    (d, p)
}

#[test]
fn gguf_tokenizer_round_trips_with_char_offsets() {
    let (_d, p) = model();
    let tok = TextTokenizer::from_file(&p).unwrap();
    let text = "the weather in 2024:\n\ttoday it is 21 degrees, then  rain.";
    let enc = tok.encode(text).unwrap();
    assert_eq!(tok.decode(&enc.ids).unwrap(), text);
    assert_eq!(enc.ids.len(), enc.offsets.len());
    // Merges apply ("the" is one token), digits are split one by one.
    assert!(enc.ids.len() < text.chars().count());
    let chars: Vec<char> = text.chars().collect();
    for (&id, &(s, e)) in enc.ids.iter().zip(&enc.offsets) {
        let piece: String = chars[s..e].iter().collect();
        let dec = tok.decode(&[id]).unwrap();
        assert_eq!(piece, dec);
        if dec.chars().any(|c| c.is_ascii_digit()) {
            assert_eq!(dec.trim().len(), 1, "digits are split: {dec:?}");
        }
    }
}

#[test]
fn generation_is_deterministic_in_the_seed_and_respects_limits() {
    let (_d, p) = model();
    let mut m = Model::load(&p, LoadOptions::default()).unwrap();
    let prompt = m.prompt_ids("Hello there", false).unwrap();
    let opts = GenerateOptions {
        max_tokens: 40,
        min_tokens: 40,
        temperature: 1.0,
        seed: 1,
    };
    let a = m
        .generate(&prompt, &opts, &mut Sampler::new(None, 1))
        .unwrap();
    let b = m
        .generate(&prompt, &opts, &mut Sampler::new(None, 1))
        .unwrap();
    let c = m
        .generate(&prompt, &opts, &mut Sampler::new(None, 2))
        .unwrap();
    assert_eq!(a.ids.len(), 40);
    assert_eq!(a.ids, b.ids);
    assert_ne!(a.ids, c.ids);
    assert_eq!(a.nll.len(), 40);
    assert!(a.perplexity() > 1.0 && a.perplexity().is_finite());
    assert!(m.generate(&[], &opts, &mut Sampler::new(None, 1)).is_err());
}

#[test]
fn non_models_are_errors() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("x.gguf");
    for bytes in [
        &b""[..],
        b"GGUF",
        b"GGUF\x03\x00\x00\x00\xff\xff\xff\xff\xff\xff\xff\xff",
        b"{}",
    ] {
        std::fs::write(&p, bytes).unwrap();
        assert!(Model::load(&p, LoadOptions::default()).is_err());
        assert!(TextTokenizer::from_file(&p).is_err());
    }
}
