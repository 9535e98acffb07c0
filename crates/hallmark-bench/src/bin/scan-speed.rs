//! How fast the image detector says "no": CPU time of detection on unmarked 1080p photos
//! (decode excluded and included, one core), against marked ones of the same size, and the
//! throughput of scanning a folder of unmarked photos with the CLI (`image detect --jsonl`,
//! `verify DIR`). Seeded and reproducible.
//!
//! cargo build --release -p hallmark-cli
//! cargo run --release -p hallmark-bench --bin scan-speed -- [--count 240] [--images DIR: other source photos] [--folder 1000] [--exhaustive 20]
#![allow(missing_docs, clippy::unwrap_used)]

use std::{io::Write, process::Command, time::Instant};

use cpu_time::ThreadTime;
use hallmark::{
    Payload, WatermarkKey,
    image_mark::{Detector, EmbedParams, ImageMark, Search},
};
use hallmark_bench::*;
use image::{DynamicImage, imageops::FilterType};
use rand::{Rng, SeedableRng, rngs::StdRng};
use rayon::prelude::*;

fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    match args.iter().position(|a| a == name) {
        None => default,
        Some(i) => args
            .get(i + 1)
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{name} needs a number")),
    }
}

/// One unmarked 1080p photo, encoded as a JPEG: a random 16:9 region of a bundled photo or
/// of a procedural render (30-100% of the largest such region), resized to 1920x1080,
/// sometimes mirrored, brightened or given more contrast, at JPEG quality 60-95.
fn unmarked_1080p(set: &[(String, DynamicImage)], seed: u64) -> Vec<u8> {
    let mut rng = StdRng::seed_from_u64(7_000_000 + seed);
    let src = if rng.gen_bool(0.15) {
        DynamicImage::ImageRgb8(render(1920, 1080, rng.r#gen()))
    } else {
        set[rng.gen_range(0..set.len())].1.clone()
    };
    let (w, h) = (f64::from(src.width()), f64::from(src.height()));
    let (mw, mh) = if w / h > 16.0 / 9.0 {
        (h * 16.0 / 9.0, h)
    } else {
        (w, w * 9.0 / 16.0)
    };
    let s = rng.gen_range(0.3f64..=1.0).sqrt();
    let (cw, ch) = ((mw * s).max(32.0) as u32, (mh * s).max(18.0) as u32);
    let x = rng.gen_range(0..=src.width() - cw);
    let y = rng.gen_range(0..=src.height() - ch);
    let filter = if rng.gen_bool(0.5) {
        FilterType::Lanczos3
    } else {
        FilterType::Triangle
    };
    let mut img = src.crop_imm(x, y, cw, ch).resize_exact(1920, 1080, filter);
    if rng.gen_bool(0.3) {
        img = img.fliph();
    }
    match rng.gen_range(0..4) {
        0 => img = map_rgb(&img, |v| v * 1.15),
        1 => img = contrast(&img, 1.2),
        _ => {}
    }
    encode_jpeg(&img, rng.gen_range(60..=95))
}

fn encode_jpeg(img: &DynamicImage, q: u8) -> Vec<u8> {
    let rgb = img.to_rgb8();
    let mut out = vec![];
    jpeg_encoder::Encoder::new(&mut out, q)
        .encode(
            rgb.as_raw(),
            rgb.width() as u16,
            rgb.height() as u16,
            jpeg_encoder::ColorType::Rgb,
        )
        .unwrap();
    out
}

fn ms(t: std::time::Duration) -> f64 {
    t.as_secs_f64() * 1e3
}

fn pct(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    v[((v.len() - 1) as f64 * p).round() as usize]
}

fn main() {
    let n = arg("--count", 240);
    let folder_n = arg("--folder", 1000);
    let exhaustive_n = arg("--exhaustive", 20);
    let set = image_set();
    let limits = hallmark::io::Limits::default();
    let key = WatermarkKey::from_bytes([0x5c; 32]);
    let det = Detector::new(&key);
    println!(
        "hallmark scan speed: {n} unmarked 1920x1080 JPEGs (seeded variants of the bundled photos and renders), one core"
    );

    // Unmarked: decode and detect, thread CPU time, one image at a time.
    let files: Vec<Vec<u8>> = (0..n as u64)
        .into_par_iter()
        .map(|s| unmarked_1080p(&set, s))
        .collect();
    let (mut dec, mut detm, mut both, mut attempts) = (vec![], vec![], vec![], vec![]);
    let mut false_pos = 0;
    for bytes in &files {
        let t = ThreadTime::now();
        let img = hallmark::io::decode(bytes, &limits).unwrap().image;
        let d_ms = ms(t.elapsed());
        let t = ThreadTime::now();
        let d = det.detect(&img);
        let x_ms = ms(t.elapsed());
        false_pos += usize::from(d.detected);
        attempts.push(d.attempts as f64);
        dec.push(d_ms);
        detm.push(x_ms);
        both.push(d_ms + x_ms);
    }
    println!("\n## Unmarked 1080p ({n} images): CPU ms per image");
    println!("| | median | p90 | max |");
    println!("|---|---|---|---|");
    for (name, v) in [
        ("decode (JPEG)", &mut dec),
        ("detect, decode excluded", &mut detm),
        ("detect, decode included", &mut both),
        ("attempts (codewords checked)", &mut attempts),
    ] {
        println!(
            "| {name} | {:.1} | {:.1} | {:.1} |",
            pct(v, 0.5),
            pct(v, 0.9),
            pct(v, 1.0)
        );
    }
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    println!(
        "mean: detect {:.1} ms, decode included {:.1} ms ({:.1} images/s on one core); false positives: {false_pos}/{n}",
        mean(&detm),
        mean(&both),
        1e3 / mean(&both)
    );

    // The same images, searched exhaustively (what every unmarked image cost before the screen).
    let k = exhaustive_n.min(n);
    if k > 0 {
        let ex = Detector::new(&key).with_search(Search::Exhaustive);
        let mut v: Vec<f64> = files[..k]
            .iter()
            .map(|b| {
                let img = hallmark::io::decode(b, &limits).unwrap().image;
                let t = ThreadTime::now();
                let _ = ex.detect(&img);
                ms(t.elapsed())
            })
            .collect();
        println!(
            "exhaustive search on the first {k}: median {:.1} ms, max {:.1} ms (decode excluded)",
            pct(&mut v, 0.5),
            pct(&mut v, 1.0)
        );
    }

    // Marked images of the same size: the first 40 variants, marked and saved as JPEG q90.
    let m = 40.min(n);
    let mut marked_ms = vec![];
    let mut rotated_ms = vec![];
    let mut found = 0;
    for (i, bytes) in files[..m].iter().enumerate() {
        let mut img = hallmark::io::decode(bytes, &limits).unwrap().image;
        let p = Payload(0x1000 + i as u64);
        ImageMark::new(&key, EmbedParams::default())
            .embed_dynamic(&mut img, p)
            .unwrap();
        let img = image::load_from_memory(&encode_jpeg(&img, 90)).unwrap();
        let t = ThreadTime::now();
        let d = det.detect(&img);
        marked_ms.push(ms(t.elapsed()));
        let r = rotate_crop(&img, 5.0);
        let t = ThreadTime::now();
        let dr = det.detect(&r);
        rotated_ms.push(ms(t.elapsed()));
        found += usize::from(d.payload == Some(p)) + usize::from(dr.payload == Some(p));
    }
    let (um, mm, rm) = (
        pct(&mut detm, 0.5),
        pct(&mut marked_ms, 0.5),
        pct(&mut rotated_ms, 0.5),
    );
    println!(
        "\n## Marked 1080p ({m} of the same images, marked, JPEG q90): detect median {mm:.1} ms; \
         rotated 5 deg + crop {rm:.1} ms; payload found {found}/{}",
        2 * m
    );
    println!(
        "unmarked / marked: {:.2}x (target <= 2x); unmarked / marked-and-rotated: {:.2}x",
        um / mm,
        um / rm
    );

    // Folder scans with the CLI.
    if folder_n == 0 {
        return;
    }
    let exe = std::env::current_exe().unwrap().with_file_name("hallmark");
    if !exe.exists() {
        println!(
            "\n(folder scan skipped: build the CLI first: cargo build --release -p hallmark-cli)"
        );
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("key");
    std::fs::write(&keys, key.to_file_string().as_bytes()).unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&keys, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let photos = dir.path().join("photos");
    std::fs::create_dir(&photos).unwrap();
    (0..folder_n as u64).into_par_iter().for_each(|s| {
        let bytes = unmarked_1080p(&set, 100_000 + s);
        let mut f = std::fs::File::create(photos.join(format!("{s:05}.jpg"))).unwrap();
        f.write_all(&bytes).unwrap();
    });
    let mut files: Vec<String> = std::fs::read_dir(&photos)
        .unwrap()
        .map(|e| e.unwrap().path().to_string_lossy().into_owned())
        .collect();
    files.sort();
    println!("\n## Folder scan: {folder_n} unmarked 1920x1080 JPEGs, wall clock");
    let run = |label: &str, args: &[&str]| {
        let t = Instant::now();
        let out = Command::new(&exe).args(args).output().unwrap();
        let secs = t.elapsed().as_secs_f64();
        let lines = out
            .stdout
            .split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
            .count();
        println!(
            "| {label} | {:.1} images/s | {secs:.1} s | {lines} JSON lines, exit {} |",
            folder_n as f64 / secs,
            out.status.code().unwrap_or(-1)
        );
    };
    let key_s = keys.to_string_lossy().into_owned();
    let mut detect_args = vec!["image", "detect", "--key", key_s.as_str(), "--jsonl"];
    detect_args.extend(files.iter().map(String::as_str));
    run("`image detect --jsonl FILES` (one core)", &detect_args);
    let dir_s = photos.to_string_lossy().into_owned();
    for jobs in ["1", "2"] {
        run(
            &format!("`verify DIR --key K --json -j {jobs}`"),
            &[
                "verify",
                dir_s.as_str(),
                "--key",
                key_s.as_str(),
                "--json",
                "-j",
                jobs,
            ],
        );
    }
}
