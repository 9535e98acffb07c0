//! End-to-end stamp speed (decode, mark, encode, sign) of a 1080p JPEG on one core, and
//! label-style throughput at 1 and 2 threads.
//!
//! cargo run --release -p hallmark-bench --bin stamp-speed -- [--images N]
#![allow(missing_docs, clippy::unwrap_used)]

use std::time::Instant;

use hallmark::{
    Stamper, WatermarkKey,
    c2pa::{CertOptions, SigningCredential},
};
use hallmark_bench::*;
use rayon::prelude::*;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let n: usize = args
        .iter()
        .position(|a| a == "--images")
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let keys = hallmark::c2pa::generate(&CertOptions::default()).unwrap();
    let cred = SigningCredential::from_pem(&keys.chain_pem, &keys.key_pem).unwrap();
    let stamper = Stamper::new(&WatermarkKey::from_bytes([3; 32]), cred);
    // The same without the WebP round-trip check (`--no-webp-check`), to show its cost.
    let cred = SigningCredential::from_pem(&keys.chain_pem, &keys.key_pem).unwrap();
    let mut unchecked = Stamper::new(&WatermarkKey::from_bytes([3; 32]), cred);
    unchecked.checks = hallmark::Checks::none();
    let jpg = std::fs::read(photos_dir().join("p06_seeding_1920x1080.jpg")).unwrap();
    let one = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap();
    let mut t = vec![];
    one.install(|| {
        for _ in 0..9 {
            let s = Instant::now();
            hallmark::stamp(&jpg, &stamper, None).unwrap();
            t.push(s.elapsed().as_secs_f64() * 1e3);
        }
    });
    println!(
        "stamp 1920x1080 JPEG end to end, one core: median {:.1} ms",
        median(&mut t)
    );
    let mut t = vec![];
    one.install(|| {
        for _ in 0..9 {
            let s = Instant::now();
            hallmark::stamp(&jpg, &unchecked, None).unwrap();
            t.push(s.elapsed().as_secs_f64() * 1e3);
        }
    });
    println!(
        "  the same without the WebP check (--no-webp-check): median {:.1} ms",
        median(&mut t)
    );
    // Where the time goes.
    let (mut td, mut te, mut tc, mut ts) = (vec![], vec![], vec![], vec![]);
    let mark = hallmark::image_mark::ImageMark::new(
        &WatermarkKey::from_bytes([3; 32]),
        Default::default(),
    );
    one.install(|| {
        for _ in 0..5 {
            let s = Instant::now();
            let mut dec = hallmark::io::decode(&jpg, &Default::default()).unwrap();
            td.push(s.elapsed().as_secs_f64() * 1e3);
            let s = Instant::now();
            mark.embed_dynamic(&mut dec.image, hallmark::Payload(9))
                .unwrap();
            te.push(s.elapsed().as_secs_f64() * 1e3);
            let s = Instant::now();
            let enc = hallmark::io::encode(&dec.image, &dec, Default::default()).unwrap();
            tc.push(s.elapsed().as_secs_f64() * 1e3);
            let s = Instant::now();
            hallmark::c2pa::sign(
                stamper.signer(),
                &Default::default(),
                "image/jpeg",
                &enc,
                hallmark::c2pa::Embedding::Embedded,
            )
            .unwrap();
            ts.push(s.elapsed().as_secs_f64() * 1e3);
        }
    });
    println!(
        "  decode {:.1} ms, watermark {:.1} ms, encode {:.1} ms, sign {:.1} ms",
        median(&mut td),
        median(&mut te),
        median(&mut tc),
        median(&mut ts)
    );

    // Throughput over n distinct small-to-medium images (generated, 640x480 PNG).
    let imgs: Vec<Vec<u8>> = (0..n as u64)
        .map(|s| {
            let mut b = vec![];
            image::DynamicImage::ImageRgb8(render(640, 480, s))
                .write_to(&mut std::io::Cursor::new(&mut b), image::ImageFormat::Png)
                .unwrap();
            b
        })
        .collect();
    let mut rates = vec![];
    for (threads, stamper, what) in [
        (1, &stamper, ""),
        (2, &stamper, ""),
        (1, &unchecked, ", without the WebP check"),
    ] {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        let s = Instant::now();
        pool.install(|| {
            imgs.par_iter().for_each(|b| {
                hallmark::stamp(b, stamper, None).unwrap();
            })
        });
        let rate = n as f64 / s.elapsed().as_secs_f64();
        println!(
            "label-style throughput, {n} images 640x480, -j{threads}{what}: {rate:.1} images/s"
        );
        rates.push(rate);
    }
    println!("speed-up -j2 / -j1: {:.2}x", rates[1] / rates[0]);
}
