//! Speed of the text watermark: one sampling step at a 49,152-token vocabulary (SmolLM2's),
//! and detection throughput on token ids.
//! `cargo bench -p hallmark-text --bench text`
#![allow(missing_docs)]

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use hallmark_core::WatermarkKey;
use hallmark_text::{Config, Sampler, TextMark, sample_plain};
use std::hint::black_box;

const VOCAB: usize = 49_152;

/// Logits shaped like a language model's: a few plausible tokens, a long tail.
fn logits(seed: u64) -> Vec<f32> {
    let mut x = seed;
    (0..VOCAB)
        .map(|_| {
            x = x
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            let u = ((x >> 11) as f32 + 0.5) / (1u64 << 53) as f32;
            // Gumbel noise scaled: logit spread like a small LM's.
            3.0 * -(-u.ln()).ln()
        })
        .collect()
}

fn schemes() -> Vec<(&'static str, Config)> {
    vec![
        ("kgw", Config::kgw()),
        ("gumbel", Config::gumbel()),
        ("robust", Config::robust()),
    ]
}

fn sampling(c: &mut Criterion) {
    let key = WatermarkKey::from_bytes([9; 32]);
    let l = logits(1);
    let ctx = [17u32, 923, 4051, 88];
    let mut g = c.benchmark_group("sampling_step_50k_vocab");
    g.bench_function("plain", |b| {
        b.iter(|| sample_plain(black_box(&l), 0.7, 0.37))
    });
    for (name, cfg) in schemes() {
        let m = TextMark::new(&key, cfg);
        // A fresh sampler per step, so every step is a first occurrence of its context (the
        // keyed rule applies), as in a generation's new contexts.
        g.bench_function(name, |b| {
            b.iter_batched(
                || Sampler::new(Some(m.clone()), 7),
                |mut s| s.next(black_box(&ctx), black_box(&l), 0.7),
                criterion::BatchSize::SmallInput,
            )
        });
    }
    let m = TextMark::new(&key, Config::kgw());
    g.bench_function("kgw_bias_only", |b| {
        let mut buf = l.clone();
        b.iter(|| m.bias(black_box(&ctx), black_box(&mut buf)))
    });
    g.finish();
}

fn detection(c: &mut Criterion) {
    let key = WatermarkKey::from_bytes([9; 32]);
    let n = 1_000_000usize;
    let mut x = 7u64;
    let toks: Vec<u32> = (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x % VOCAB as u64) as u32
        })
        .collect();
    let mut g = c.benchmark_group("detect_token_ids");
    g.throughput(Throughput::Elements(n as u64));
    g.sample_size(10);
    for (name, cfg) in schemes() {
        let m = TextMark::new(&key, cfg);
        for len in [200usize, 2_000, 100_000, 1_000_000] {
            g.throughput(Throughput::Elements(len as u64));
            g.bench_with_input(BenchmarkId::new(name, len), &len, |b, &len| {
                b.iter(|| m.detect(black_box(&toks[..len]), 0).map(|d| d.p_value))
            });
        }
    }
    g.finish();
}

criterion_group!(benches, sampling, detection);
criterion_main!(benches);
