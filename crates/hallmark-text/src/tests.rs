use rand::{Rng, SeedableRng, rngs::StdRng};

use super::*;

const V: usize = 4000;

/// A synthetic language model: next-token logits depend on the previous token through a
/// seeded hash, scaled by `sharpness` (higher = lower entropy).
fn lm_logits(prev: u32, sharpness: f32) -> Vec<f32> {
    (0..V as u32)
        .map(|v| {
            let mut z = u64::from(prev) << 32 | u64::from(v);
            z = (z ^ (z >> 33)).wrapping_mul(0xff51_afd7_ed55_8ccd);
            z = (z ^ (z >> 33)).wrapping_mul(0xc4ce_b9fe_1a85_ec53);
            let u = (z >> 11) as f32 / (1u64 << 53) as f32;
            // Gumbel-distributed logits: a spread of plausible tokens per context.
            sharpness * -(-(u.max(1e-12)).ln()).ln()
        })
        .collect()
}

fn generate(mark: Option<&TextMark>, n: usize, seed: u64, sharpness: f32, temp: f32) -> Vec<u32> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut toks: Vec<u32> = (0..4).map(|_| rng.gen_range(0..V as u32)).collect();
    // Unwatermarked: the same sampler with no bias.
    let plain = TextMark::new(
        &WatermarkKey::from_bytes([0; 32]),
        Config {
            scheme: Scheme::Kgw {
                gamma: 0.25,
                delta: 0.0,
            },
            ..Config::kgw()
        },
    );
    for _ in 0..n {
        let logits = lm_logits(*toks.last().unwrap_or(&0), sharpness);
        let u: f64 = rng.r#gen();
        let t = match mark {
            Some(m) => m.sample(&toks, &logits, temp, u),
            None => plain.sample(&toks, &logits, temp, u),
        };
        toks.push(t);
    }
    toks
}

/// What seed 42 samples (see `a_seed_reproduces_the_same_tokens`): a known answer.
const KNOWN_SEED_42: [u32; 12] = [
    2438, 2159, 2545, 1579, 148, 1721, 2930, 3440, 495, 18, 3707, 2136,
];

fn key() -> WatermarkKey {
    WatermarkKey::from_bytes([42; 32])
}

#[test]
fn prf_known_answer() {
    let p = Prf::new(&WatermarkKey::from_bytes([0; 32]));
    let seed = p.context_seed(&[1, 2, 3]);
    let got = format!("{:016x} {:016x}", seed, p.token_bits(seed, 42));
    assert_eq!(got, include_str!("kat_prf.txt").trim());
}

#[test]
fn header_round_trip_and_rejects() {
    assert_eq!(
        Config::kgw_robust().to_header(),
        "hallmark-text/1 kgw h=1 gamma=0.25 delta=3"
    );
    assert_eq!(
        Config::robust().to_header(),
        "hallmark-text/1 kgw-gumbel h=1 hmax=3 gamma=0.25 delta=2"
    );
    for cfg in [
        Config::kgw(),
        Config::kgw_robust(),
        Config::robust(),
        Config {
            scheme: Scheme::Gumbel,
            context: 4,
            max_context: 4,
        },
        Config {
            scheme: Scheme::Gumbel,
            context: 1,
            max_context: 3,
        },
    ] {
        assert_eq!(Config::from_header(&cfg.to_header()).unwrap(), cfg);
    }
    for bad in [
        "",
        "hallmark-text/2 kgw h=3 gamma=0.25 delta=2",
        "hallmark-text/1 kgw h=3 gamma=1.5 delta=2",
        "hallmark-text/1 kgw h=0 gamma=0.25 delta=2",
        "hallmark-text/1 kgw h=3 delta=2",
        "hallmark-text/1 kgw-gumbel h=1 gamma=0.25",
        "hallmark-text/1 kgw h=1 hmax=2 gamma=0.25 delta=2",
        "hallmark-text/1 gumbel h=2 hmax=1",
        "hallmark-text/1 magic h=3",
    ] {
        assert!(Config::from_header(bad).is_err(), "{bad}");
    }
}

#[test]
fn kgw_detects_200_tokens_and_wrong_key_does_not() {
    let m = TextMark::new(&key(), Config::kgw());
    let other = TextMark::new(&WatermarkKey::from_bytes([7; 32]), Config::kgw());
    let mut hits = 0;
    for s in 0..20 {
        let toks = generate(Some(&m), 200, s, 1.0, 0.7);
        if m.detect(&toks, 4).unwrap().p_value < 1e-3 {
            hits += 1;
        }
        assert!(other.detect(&toks, 4).unwrap().p_value > 1e-4);
    }
    assert!(hits >= 19, "{hits}/20");
}

#[test]
fn gumbel_detects_200_tokens() {
    let m = TextMark::new(
        &key(),
        Config {
            scheme: Scheme::Gumbel,
            context: 3,
            max_context: 3,
        },
    );
    let hits = (0..20)
        .filter(|&s| {
            m.detect(&generate(Some(&m), 200, 100 + s, 1.0, 1.0), 4)
                .unwrap()
                .p_value
                < 1e-3
        })
        .count();
    assert!(hits >= 19, "{hits}/20");
}

#[test]
fn unwatermarked_p_values_are_calibrated() {
    for cfg in [
        Config::kgw(),
        Config::kgw_robust(),
        Config::robust(),
        Config {
            scheme: Scheme::Gumbel,
            context: 3,
            max_context: 3,
        },
    ] {
        let m = TextMark::new(&key(), cfg);
        let n = 400;
        let mut below_01 = 0;
        let mut below_001 = 0;
        for s in 0..n {
            let toks = generate(None, 100, 10_000 + s, 1.0, 1.0);
            let p = m.detect(&toks, 4).unwrap().p_value;
            below_01 += usize::from(p < 0.01);
            below_001 += usize::from(p < 0.001);
        }
        // Expected 4 and 0.4; Binomial(400, 0.01) exceeds 12 with probability < 1e-3.
        assert!(below_01 <= 12, "{cfg:?}: {below_01}/{n} below 0.01");
        assert!(below_001 <= 3, "{cfg:?}: {below_001}/{n} below 0.001");
    }
}

#[test]
fn repetition_does_not_trigger() {
    let m = TextMark::new(&key(), Config::kgw());
    // Find a sentence that happens to be green-heavy, then repeat it 20 times.
    let mut worst: Vec<u32> = vec![];
    let mut worst_p = 1.0;
    for s in 0..200 {
        let sent = generate(None, 12, 50_000 + s, 1.0, 1.0);
        let p = m.detect(&sent, 4).map(|d| d.p_value).unwrap_or(1.0);
        if p < worst_p {
            worst_p = p;
            worst = sent;
        }
    }
    let repeated: Vec<u32> = worst
        .iter()
        .cycle()
        .take(worst.len() * 20)
        .copied()
        .collect();
    let d = m.detect(&repeated, 4).unwrap();
    assert!(d.tokens_scored <= worst.len() + 4, "{}", d.tokens_scored);
    // Counting every token would make this look overwhelmingly marked; unique pairs do not.
    assert!(d.p_value > 1e-3, "p = {}", d.p_value);
}

#[test]
fn pasted_span_is_localised() {
    let m = TextMark::new(&key(), Config::kgw());
    let human = generate(None, 2000, 77, 1.0, 1.0);
    let marked = generate(Some(&m), 200, 78, 1.0, 0.7);
    let mut doc = human[..900].to_vec();
    doc.extend_from_slice(&marked[4..]);
    doc.extend_from_slice(&human[900..]);
    let d = m.detect(&doc, 0).unwrap();
    assert!(d.p_value < 1e-3, "{}", d.p_value);
    assert!(
        d.spans
            .iter()
            .any(|s| s.start < 1100 && s.end > 900 && s.p_value < 1e-3),
        "{:?}",
        d.spans
    );
    assert!(m.detect(&human, 0).unwrap().spans.is_empty());
}

#[test]
fn empty_and_short_inputs_are_errors() {
    let m = TextMark::new(&key(), Config::kgw());
    assert!(m.detect(&[], 0).is_err());
    assert!(m.detect(&[1, 2], 0).is_err());
    assert!(m.detect(&[1, 2, 3, 4, 5, 6], 6).is_err());
}

#[test]
fn sampler_watermarks_a_context_once_then_samples_plainly() {
    let m = TextMark::new(&key(), Config::gumbel());
    let logits = vec![0.0f32; 1000];
    let ctx = [5u32, 6, 7];
    // The keyed rule alone always picks the same token for the same context...
    let first = m.sample(&ctx, &logits, 1.0, 0.5);
    assert!((0..20).all(|i| m.sample(&ctx, &logits, 1.0, f64::from(i) / 20.0) == first));
    // ...the sampler uses it once, then samples the repeated context plainly.
    let mut s = Sampler::new(Some(m), 9);
    assert_eq!(s.next(&ctx, &logits, 1.0), first);
    let distinct: std::collections::HashSet<u32> =
        (0..50).map(|_| s.next(&ctx, &logits, 1.0)).collect();
    assert!(distinct.len() > 30, "{}", distinct.len());
}

#[test]
fn sampler_biases_every_step_with_the_green_list() {
    // A repeated context keeps its bias under KGW: most tokens drawn after it are green.
    let cfg = Config::kgw();
    let m = TextMark::new(&key(), cfg);
    let ctx = [5u32, 6, 7];
    let seed = m.context_seed(&ctx).unwrap();
    let green = |t: u32| m.prf.token_bits(seed, t) < prf::threshold(0.25);
    let logits = vec![0.0f32; 1000];
    let mut s = Sampler::new(Some(TextMark::new(&key(), cfg)), 9);
    let n = 200;
    let greens = (0..n).filter(|_| green(s.next(&ctx, &logits, 1.0))).count();
    // Flat logits with delta 2: P(green) = 0.25 e^2 / (0.25 e^2 + 0.75) = 0.71; plain
    // sampling would give 0.25 (binomial sd ~6 of 200).
    assert!(greens > 110, "{greens} of {n} green");
}

#[test]
fn hybrid_detects_and_beats_its_green_list_alone_at_low_entropy() {
    // Same text distribution as KGW with the same bias; the exponential scores add evidence.
    let hybrid = TextMark::new(&key(), Config::robust());
    let Scheme::KgwGumbel { gamma, delta } = Config::robust().scheme else {
        unreachable!()
    };
    let green_only = TextMark::new(
        &key(),
        Config {
            scheme: Scheme::Kgw { gamma, delta },
            context: 1,
            max_context: 1,
        },
    );
    let (mut p_hybrid, mut p_green) = (0.0, 0.0);
    let mut hits = 0;
    for s in 0..20 {
        // Sharp logits (low entropy) and 100 tokens: a hard case for both.
        let toks = generate(Some(&hybrid), 100, 300 + s, 2.0, 0.7);
        let d = hybrid.detect(&toks, 4).unwrap();
        hits += usize::from(d.p_value < 1e-3);
        p_hybrid += d.p_value_whole.max(1e-300).log10();
        // The green bits alone, read by a KGW detector with the same key and list.
        p_green += green_only
            .detect(&toks, 4)
            .unwrap()
            .p_value_whole
            .max(1e-300)
            .log10();
        let other = TextMark::new(&WatermarkKey::from_bytes([7; 32]), Config::robust());
        assert!(other.detect(&toks, 4).unwrap().p_value > 1e-4);
    }
    assert!(hits >= 19, "{hits}/20");
    assert!(
        p_hybrid < p_green,
        "mean log10 p: hybrid {} vs green bits alone {}",
        p_hybrid / 20.0,
        p_green / 20.0
    );
}

#[test]
fn hybrid_sampling_keeps_the_green_biased_distribution() {
    // Over keys, the keyed rule picks token v as often as the biased softmax says.
    let logits: Vec<f32> = (0..50).map(|v| -0.15 * v as f32).collect();
    let ctx = [3u32];
    let (keys, t) = (20_000, 0.8f32);
    let mut freq = vec![0f64; logits.len()];
    let mut want = vec![0f64; logits.len()];
    for k in 0..keys {
        let mut kb = [0u8; 32];
        kb[..4].copy_from_slice(&(k as u32).to_le_bytes());
        let m = TextMark::new(&WatermarkKey::from_bytes(kb), Config::robust());
        freq[m.sample(&ctx, &logits, t, 0.5) as usize] += 1.0 / f64::from(keys);
        let mut w = logits.clone();
        m.bias(&ctx, &mut w);
        let z = softmax_weights(&mut w, 1.0 / t);
        for (x, q) in want.iter_mut().zip(&w) {
            *x += f64::from(q / z) / f64::from(keys);
        }
    }
    for v in 0..8 {
        let sd = (want[v] * (1.0 - want[v]) / f64::from(keys)).sqrt();
        assert!(
            (freq[v] - want[v]).abs() < 4.5 * sd,
            "token {v}: {} vs {}",
            freq[v],
            want[v]
        );
    }
}

#[test]
fn hybrid_null_tail_passes_the_window_screen() {
    // The span search skips windows under 1.5 null sd above the mean, assuming their tail is
    // above 0.05 (so their corrected p-value is 1): true for the hybrid's null at every size
    // and mix of green-list pairs and exponential scores.
    let c = detect::green_weight(0.25);
    for n in 1..=400u64 {
        for e in [0, 1, n / 3, n / 2, n] {
            let (nf, ef) = (n as f64, e as f64);
            let x = ef + nf * 0.25 * c + 1.5 * (ef + nf).sqrt();
            // Green bits alone are discrete: the highest skipped score is a whole number of
            // green weights.
            let x = if e == 0 { c * (x / c).floor() } else { x };
            let p = hallmark_core::stats::gamma_binomial_sf(ef, n, 0.25, c, x);
            assert!(p > 0.05, "n={n} e={e}: {p}");
        }
    }
}

#[test]
fn long_texts_score_as_short_ones_do() {
    // The bulk bookkeeping of long texts (sorting) against the per-position one, on text that
    // repeats itself, with and without an excluded prompt, for every kind of configuration.
    let mut rng = StdRng::seed_from_u64(11);
    let configs = [
        Config::gumbel(),
        Config::robust(),
        Config::kgw(),
        Config::kgw_robust(),
        Config::from_header("hallmark-text/1 gumbel h=2").expect("header"),
        Config::from_header("hallmark-text/1 kgw-gumbel h=2 hmax=4 gamma=0.5 delta=1")
            .expect("header"),
    ];
    for (ci, config) in configs.into_iter().enumerate() {
        let m = TextMark::new(&key(), config);
        let vocab = [30u32, 4000][ci % 2];
        let mut t: Vec<u32> = (0..2000).map(|_| rng.gen_range(0..vocab)).collect();
        t.extend(generate(Some(&m), 1500, ci as u64, 1.0, 1.0));
        let copy = t[100..700].to_vec();
        t.extend(copy);
        let prompt = t[..40].to_vec();
        for (skip, exclude) in [
            (0, &[][..]),
            (40, &[][..]),
            (40, &prompt[..]),
            (3, &t[2500..2600]),
        ] {
            let short = detect::detect_with(&m, &t, skip, exclude, usize::MAX).expect("scores");
            let long = detect::detect_with(&m, &t, skip, exclude, 0).expect("scores");
            assert_eq!(
                format!("{short:?}"),
                format!("{long:?}"),
                "{} skip {skip}",
                config.to_header()
            );
            assert!(short.tokens_scored > 1000);
        }
    }
}

/// The sampler's seed reproduces the same tokens in every version: its generator is named
/// (ChaCha12), and these tokens are its known answer for seed 42 under a fixed key.
#[test]
fn a_seed_reproduces_the_same_tokens() {
    let m = TextMark::new(&WatermarkKey::from_bytes([7u8; 32]), Config::kgw());
    let mut s = Sampler::new(Some(m), 42);
    let mut toks = vec![1u32, 2];
    for _ in 0..12 {
        let l = lm_logits(*toks.last().expect("context"), 0.5);
        let t = s.next(&toks, &l, 1.0);
        toks.push(t);
    }
    assert_eq!(toks[2..], KNOWN_SEED_42[..], "{toks:?}");
}

#[test]
fn many_keys_at_once_answer_as_each_key_alone() {
    // Several keys of two configurations, the text watermarked under one of them; short and
    // long texts, with and without a prompt: detect_many must give each key's own answer.
    let configs = [Config::gumbel(), Config::kgw()];
    let marks: Vec<TextMark> = (0..6u8)
        .map(|i| {
            let mut b = [0x33u8; 32];
            b[0] = i;
            TextMark::new(&WatermarkKey::from_bytes(b), configs[usize::from(i) % 2])
        })
        .collect();
    let refs: Vec<&TextMark> = marks.iter().collect();
    for n in [60usize, 300, 5000] {
        let t = generate(Some(&marks[3]), n, n as u64, 1.0, 1.0);
        let prompt = t[..10].to_vec();
        for (skip, exclude) in [(0, &[][..]), (10, &prompt[..])] {
            let many = TextMark::detect_many(&refs, &t, skip, exclude);
            for (m, got) in marks.iter().zip(&many) {
                let one = m.detect_excluding(&t, skip, exclude);
                assert_eq!(format!("{got:?}"), format!("{one:?}"), "{n} tokens");
            }
            let best = many
                .iter()
                .enumerate()
                .min_by(|a, b| {
                    let pa = a.1.as_ref().map_or(1.0, |d| d.p_value);
                    let pb = b.1.as_ref().map_or(1.0, |d| d.p_value);
                    pa.total_cmp(&pb)
                })
                .map(|(i, _)| i);
            if n >= 300 {
                assert_eq!(best, Some(3), "the marking key scores best");
            }
        }
    }
    // Too short for one configuration's context: that key reports its own error.
    let res = TextMark::detect_many(&refs, &[1, 2], 0, &[]);
    assert_eq!(res.len(), refs.len());
}

/// A generation loop that samples by itself (as transformers' `generate` does), with the
/// watermark applied as a logits processor.
fn generate_with_processor(mark: &TextMark, n: usize, seed: u64, temp: f32) -> Vec<u32> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut toks: Vec<u32> = (0..4).map(|_| rng.gen_range(0..V as u32)).collect();
    let mut p = Processor::new(mark.clone());
    for _ in 0..n {
        // Temperature first, as the loop's warpers do, then the processor.
        let mut scores: Vec<f32> = lm_logits(*toks.last().unwrap_or(&0), 1.0)
            .iter()
            .map(|l| l / temp)
            .collect();
        p.process(&toks, &mut scores);
        let u: f64 = rng.r#gen();
        toks.push(sample_plain(&scores, 1.0, u));
    }
    toks
}

#[test]
fn the_processor_watermarks_what_an_outside_loop_samples_for_every_scheme() {
    let other = WatermarkKey::from_bytes([7; 32]);
    for config in [
        Config::gumbel(),
        Config::kgw(),
        Config::robust(),
        Config::kgw_robust(),
    ] {
        let m = TextMark::new(&key(), config);
        let wrong = TextMark::new(&other, config);
        let mut hits = 0;
        for s in 0..10 {
            let toks = generate_with_processor(&m, 200, 100 + s, 0.7);
            if m.detect(&toks, 4).unwrap().p_value < 1e-3 {
                hits += 1;
            }
            assert!(wrong.detect(&toks, 4).unwrap().p_value > 1e-4, "{config:?}");
        }
        assert!(hits >= 9, "{config:?}: {hits}/10");
    }
}

#[test]
fn where_the_keyed_rule_applies_the_processor_picks_the_samplers_token() {
    let m = TextMark::new(&key(), Config::gumbel());
    let mut p = Processor::new(m.clone());
    let mut s = Sampler::new(Some(m), 1);
    let mut toks: Vec<u32> = vec![1, 2, 3, 4];
    for _ in 0..100 {
        let logits = lm_logits(*toks.last().unwrap(), 1.0);
        let mut scores = logits.clone();
        let chosen = p.process(&toks, &mut scores);
        let t = s.next(&toks, &logits, 1.0);
        if let Some(c) = chosen {
            assert_eq!(c, t);
            assert_eq!(scores.iter().filter(|x| x.is_finite()).count(), 1);
        }
        toks.push(t);
    }
}

#[test]
fn the_pruned_exponential_minimum_is_the_plain_argmax() {
    let m = TextMark::new(&key(), Config::gumbel());
    let mut rng = StdRng::seed_from_u64(9);
    for case in 0..300 {
        let n = [2usize, 10, 1000, 50_000][case % 4];
        let sharp = [0.1f32, 1.0, 4.0][case % 3];
        let mut w: Vec<f32> = (0..n)
            .map(|_| sharp * rng.gen_range(-8.0f32..8.0))
            .collect();
        let z = softmax_weights(&mut w, 1.0);
        let seed: u64 = rng.r#gen();
        let r = |v: u32| m.prf.token_uniform(seed, v);
        let floor = z * 1e-10;
        let mut naive = (f64::NEG_INFINITY, 0u32);
        for (v, &q) in w.iter().enumerate() {
            if q > floor {
                let s = r(v as u32).ln() / f64::from(q);
                if s > naive.0 {
                    naive = (s, v as u32);
                }
            }
        }
        assert_eq!(m.exp_min(&w, z, r), naive.1, "case {case}");
    }
}

#[test]
fn the_fast_exponential_matches_libm() {
    let mut worst = 0.0f64;
    for i in 0..=400_000 {
        let a = -40.0 * (i as f32) / 400_000.0;
        let want = f64::from(a).exp();
        let got = f64::from(exp_neg(a));
        worst = worst.max(((got - want) / want).abs());
    }
    assert!(worst < 5e-6, "relative error {worst}");
    // NaN and -inf rows weigh nothing instead of poisoning the sum.
    let mut w = vec![f32::NAN, 1.0, f32::NEG_INFINITY, 0.5];
    let z = softmax_weights(&mut w, 1.0);
    assert!(z.is_finite() && w[0] == 0.0 && w[2] == 0.0 && w[1] == 1.0);
}

#[test]
#[ignore = "timing probe, run by hand"]
fn probe_softmax_speed() {
    let mut rng = StdRng::seed_from_u64(1);
    let base: Vec<f32> = (0..50_000).map(|_| rng.gen_range(-5.0f32..5.0)).collect();
    let t = std::time::Instant::now();
    let mut z = 0.0;
    for _ in 0..1000 {
        let mut w = base.clone();
        z += softmax_weights(&mut w, 1.0);
    }
    eprintln!("fast: {:?} per call ({z})", t.elapsed() / 1000);
    let t = std::time::Instant::now();
    let mut z = 0.0;
    for _ in 0..1000 {
        let mut w = base.clone();
        let m = w.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        for x in w.iter_mut() {
            let a = *x - m;
            *x = if a > -40.0 { a.exp() } else { 0.0 };
            z += *x;
        }
    }
    eprintln!("libm: {:?} per call ({z})", t.elapsed() / 1000);
    let m = TextMark::new(&key(), Config::gumbel());
    let mut p = Processor::new(m);
    let t = std::time::Instant::now();
    for i in 0..1000u32 {
        let mut w = base.clone();
        p.process(&[i, i + 1, i + 2], &mut w);
    }
    eprintln!("process: {:?} per call", t.elapsed() / 1000);
}
