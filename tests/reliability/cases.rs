//! The hostile cases, by class. Every case is made from the suite's seed.

use std::{
    path::{Path, PathBuf},
    process::Command,
    time::Duration,
};

use sha2::{Digest, Sha256};

use crate::harness::{BIN, Suite};

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn sha(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// A textured picture (gradients, a disc, noise), deterministic in `seed`.
fn picture(w: u32, h: u32, seed: u64) -> image::RgbImage {
    let mut r = crate::harness::Rng::new(seed);
    let noise = r.bytes((w * h) as usize);
    image::RgbImage::from_fn(w, h, |x, y| {
        let n = f32::from(noise[(y * w + x) as usize]) / 255.0 - 0.5;
        let (fx, fy) = (x as f32 / w as f32, y as f32 / h as f32);
        let disc = if (fx - 0.4).powi(2) + (fy - 0.5).powi(2) < 0.04 {
            70.0
        } else {
            0.0
        };
        let b = 50.0 + 130.0 * fx + disc + 40.0 * n + 20.0 * (x as f32 * 0.3).sin() * fy;
        image::Rgb([
            b.clamp(0.0, 255.0) as u8,
            (b * 0.7 + 50.0 * fy).clamp(0.0, 255.0) as u8,
            (230.0 - b * 0.6).clamp(0.0, 255.0) as u8,
        ])
    })
}

fn encode(img: &image::DynamicImage, fmt: image::ImageFormat) -> Vec<u8> {
    let mut out = std::io::Cursor::new(vec![]);
    img.write_to(&mut out, fmt).unwrap();
    out.into_inner()
}

/// Seed files: every format hallmark reads, plus stamped (signed and marked) files whose
/// manifests the mutations then damage.
fn seeds(suite: &mut Suite) -> Vec<(&'static str, Vec<u8>)> {
    use image::{DynamicImage, ImageFormat};
    let rgb = DynamicImage::ImageRgb8(picture(192, 128, 1));
    let mut jpeg = vec![];
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 88)
        .encode_image(&rgb)
        .unwrap();
    let rgba16 = DynamicImage::ImageRgba16(rgb.to_rgba16());
    let mut gif = vec![];
    {
        let mut enc = image::codecs::gif::GifEncoder::new(&mut gif);
        for k in 0..3u64 {
            let f = DynamicImage::ImageRgb8(picture(64, 48, k + 5)).to_rgba8();
            enc.encode_frame(image::Frame::new(f)).unwrap();
        }
    }
    let mut out = vec![
        ("png", encode(&rgb, ImageFormat::Png)),
        ("png", encode(&rgba16, ImageFormat::Png)),
        ("jpg", jpeg),
        ("webp", encode(&rgb, ImageFormat::WebP)),
        ("tif", encode(&rgb, ImageFormat::Tiff)),
        ("gif", gif),
    ];
    // Stamped files: a manifest box and a mark to damage.
    for (ext, i) in [("png", 0usize), ("jpg", 2)] {
        let src = suite.path(&format!("seed-in.{ext}"));
        std::fs::write(&src, &out[i].1).unwrap();
        let dst = suite.path(&format!("seed-stamped.{ext}"));
        let st = Command::new(BIN)
            .args(["stamp", s(&src), "-o", s(&dst), "--keys", s(&suite.keys)])
            .args(["--model", "seed-model", "--no-check", "-q"])
            .status()
            .unwrap();
        assert!(st.success());
        out.push((ext, std::fs::read(&dst).unwrap()));
    }
    out
}

/// One mutation of `b`, chosen by the generator.
fn mutate(suite: &mut Suite, b: &[u8]) -> (String, Vec<u8>) {
    let r = &mut suite.rng;
    let mut v = b.to_vec();
    let kind = r.below(8);
    let name = match kind {
        0 => {
            let cut = r.below(v.len().max(1));
            v.truncate(cut);
            format!("truncate@{cut}")
        }
        1 => {
            let k = 1 + r.below(16);
            for _ in 0..k {
                let at = r.below(v.len().max(1));
                if let Some(x) = v.get_mut(at) {
                    *x ^= 1 << r.below(8);
                }
            }
            format!("flip{k}")
        }
        2 => {
            let at = r.below(v.len().max(1));
            let n = 1 + r.below(64);
            let junk = r.bytes(n);
            v.splice(at..at, junk);
            format!("insert{n}@{at}")
        }
        3 => {
            let at = r.below(v.len().max(1));
            let n = (1 + r.below(512)).min(v.len() - at.min(v.len()));
            let junk = r.bytes(n);
            v[at..at + n].copy_from_slice(&junk);
            format!("overwrite{n}@{at}")
        }
        4 => {
            // Early in the file: headers, dimensions, chunk lengths.
            let at = r.below(v.len().clamp(1, 64));
            let val = [0u8, 0xFF, 0x7F, 0x80][r.below(4)];
            if let Some(x) = v.get_mut(at) {
                *x = val;
            }
            format!("header{val:02x}@{at}")
        }
        5 => {
            let at = r.below(v.len().max(1));
            let n = r.below(v.len() - at + 1);
            v.drain(at..at + n);
            format!("delete{n}@{at}")
        }
        6 => {
            // Duplicate a region (repeated chunks, segments, boxes).
            let at = r.below(v.len().max(1));
            let n = r.below((v.len() - at).min(4096) + 1);
            let dup = v[at..at + n].to_vec();
            v.splice(at..at, dup);
            format!("dup{n}@{at}")
        }
        _ => {
            // Zero a region (a crash on write leaves zero-filled blocks).
            let at = r.below(v.len().max(1));
            let n = r.below((v.len() - at).min(8192) + 1);
            v[at..at + n].fill(0);
            format!("zero{n}@{at}")
        }
    };
    (name, v)
}

/// Mutated and truncated images of every format, through verify, detect, stamp and sign.
pub fn mutated_images(suite: &mut Suite, n: usize) {
    let seeds = seeds(suite);
    let keys = suite.keys.clone();
    let out_dir = suite.path("out");
    std::fs::create_dir_all(&out_dir).unwrap();
    for i in 0..n {
        suite.cases += 1;
        let (ext, seed) = &seeds[suite.rng.below(seeds.len())];
        let (how, bytes) = mutate(suite, seed);
        // Some names carry escape sequences and newlines, as hostile uploads may.
        let name = if i % 7 == 3 {
            format!("c{i}-\x1b[2J\x1b]0;x\x07\n- trusted.{ext}")
        } else {
            format!("c{i}.{ext}")
        };
        let p = suite.path(&name);
        std::fs::write(&p, &bytes).unwrap();
        let case = format!("mutated {ext} {how}");
        suite.run(&case, &["verify", s(&p), "--keys", s(&keys)], &[0, 1, 2, 3]);
        suite.run(
            &case,
            &["--json", "image", "detect", "--key", s(&keys), s(&p)],
            &[0, 1, 2],
        );
        if i % 3 == 0 {
            let out = out_dir.join(format!("s{i}.{ext}"));
            run_writing(
                suite,
                &case,
                &[
                    "stamp",
                    s(&p),
                    "-o",
                    s(&out),
                    "--keys",
                    s(&keys),
                    "--no-webp-check",
                ],
                &[0, 2],
                &out,
            );
            let out2 = out_dir.join(format!("g{i}.{ext}"));
            run_writing(
                suite,
                &case,
                &["sign", s(&p), "-o", s(&out2), "--keys", s(&keys)],
                &[0, 2],
                &out2,
            );
        }
        if std::fs::read(&p).map(|b| sha(&b)).ok() != Some(sha(&bytes)) {
            suite.data_loss(&case, format!("the input {} changed", p.display()));
        }
        let _ = std::fs::remove_file(&p);
    }
}

/// Runs a command that writes `out`, then checks the output against its exit code.
fn run_writing(suite: &mut Suite, case: &str, args: &[&str], ok: &[i32], out: &Path) {
    let code = suite.run(case, args, ok).code;
    check_output(suite, case, code, out);
}

/// An output exists exactly when its command succeeded.
fn check_output(suite: &mut Suite, case: &str, code: Option<i32>, out: &Path) {
    let exists = out.exists();
    match code {
        Some(0) if !exists => suite.data_loss(case, format!("exit 0 but no {}", out.display())),
        Some(c) if c != 0 && exists => {
            suite.data_loss(case, format!("exit {c} but {} was written", out.display()))
        }
        _ => {}
    }
    let _ = std::fs::remove_file(out);
}

/// Decompression bombs and absurd headers: refused from the header, or processed within the
/// memory bound.
pub fn bombs(suite: &mut Suite) {
    use image::{DynamicImage, ImageFormat};
    let keys = suite.keys.clone();
    let mut files: Vec<(String, Vec<u8>)> = vec![];
    // Real deflate bombs within the default limit: zeros compress ~1000:1.
    let big = DynamicImage::ImageLuma8(image::GrayImage::new(6000, 6000));
    files.push(("png-zeros-6000.png".into(), encode(&big, ImageFormat::Png)));
    let big_rgb = DynamicImage::ImageRgb8(image::RgbImage::new(4000, 4000));
    files.push(("tiff-4000.tif".into(), encode(&big_rgb, ImageFormat::Tiff)));
    // Headers declaring far more than the limits.
    let small = encode(
        &DynamicImage::ImageRgb8(picture(16, 16, 3)),
        ImageFormat::Png,
    );
    for (w, h, depth, color) in [
        (16384u32, 16384u32, 16u8, 6u8),
        (65535, 65535, 8, 2),
        (1, 0x7FFF_FFFF, 8, 0),
    ] {
        files.push((
            format!("png-header-{w}x{h}.png"),
            png_with_ihdr(&small, w, h, depth, color),
        ));
    }
    let mut jpeg = vec![];
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 80)
        .encode_image(&DynamicImage::ImageRgb8(picture(16, 16, 4)))
        .unwrap();
    for (w, h) in [(16384u16, 16384u16), (65535, 65535), (65535, 1)] {
        let mut b = jpeg.clone();
        let sof = b.windows(2).position(|x| x == [0xFF, 0xC0]).unwrap();
        b[sof + 5..sof + 7].copy_from_slice(&h.to_be_bytes());
        b[sof + 7..sof + 9].copy_from_slice(&w.to_be_bytes());
        files.push((format!("jpeg-header-{w}x{h}.jpg"), b));
    }
    let mut gif = b"GIF89a".to_vec();
    gif.extend([0xFF, 0xFF, 0xFF, 0xFF, 0, 0, 0]);
    gif.extend([
        0x2C, 0, 0, 0, 0, 0xFF, 0xFF, 0xFF, 0xFF, 0, 2, 2, 0x4C, 0x01, 0, 0x3B,
    ]);
    files.push(("gif-65535.gif".into(), gif));
    for (name, bytes) in files {
        suite.cases += 1;
        let p = suite.path(&name);
        std::fs::write(&p, &bytes).unwrap();
        let case = format!("bomb {name}");
        suite.run(&case, &["verify", s(&p), "--keys", s(&keys)], &[0, 1, 2, 3]);
        suite.run(
            &case,
            &["image", "detect", "--key", s(&keys), s(&p)],
            &[0, 1, 2],
        );
        let out = suite.path(&format!("bomb-out-{name}"));
        run_writing(
            suite,
            &case,
            &["stamp", s(&p), "-o", s(&out), "--keys", s(&keys)],
            &[0, 2],
            &out,
        );
        let _ = std::fs::remove_file(&p);
    }
}

/// A PNG with its IHDR replaced (dimensions, depth, colour type) and the CRC fixed.
fn png_with_ihdr(png: &[u8], w: u32, h: u32, depth: u8, color: u8) -> Vec<u8> {
    let mut b = png.to_vec();
    b[16..20].copy_from_slice(&w.to_be_bytes());
    b[20..24].copy_from_slice(&h.to_be_bytes());
    b[24] = depth;
    b[25] = color;
    let crc = crc32(&b[12..29]);
    b[29..33].copy_from_slice(&crc.to_be_bytes());
    b
}

fn crc32(data: &[u8]) -> u32 {
    let mut c = 0xFFFF_FFFFu32;
    for &x in data {
        c ^= u32::from(x);
        for _ in 0..8 {
            c = if c & 1 == 1 {
                0xEDB8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
        }
    }
    !c
}

/// Key, trust, manifest-definition and configuration files that are not what they claim.
pub fn hostile_keys_and_configs(suite: &mut Suite) {
    let keys = suite.keys.clone();
    let img = suite.path("ok.png");
    picture(160, 120, 9).save(&img).unwrap();
    let mut blobs: Vec<(&str, Vec<u8>)> = vec![
        ("empty", vec![]),
        ("random", suite.rng.bytes(4096)),
        ("big", vec![b'a'; 3 << 20]),
        ("nested-json", "[".repeat(200_000).into_bytes()),
        (
            "escapes",
            b"\x1b[2J\x1b]0;title\x07\nhallmark-watermark-key v1\n".to_vec(),
        ),
    ];
    blobs.push((
        "pem-junk",
        b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n".to_vec(),
    ));
    for (name, bytes) in &blobs {
        suite.cases += 1;
        let f = suite.path(&format!("hostile-{name}"));
        std::fs::write(&f, bytes).unwrap();
        let case = format!("hostile file {name}");
        suite.run(&case, &["image", "detect", "--key", s(&f), s(&img)], &[2]);
        suite.run(&case, &["verify", s(&img), "--trust", s(&f)], &[1, 2]);
        let out = suite.path("cfg-out.png");
        run_writing(
            suite,
            &case,
            &[
                "sign",
                s(&img),
                "-o",
                s(&out),
                "--keys",
                s(&keys),
                "--manifest",
                s(&f),
            ],
            &[0, 2],
            &out,
        );
        // A keys folder whose files are replaced by this blob.
        let kd = suite.path(&format!("keys-{name}"));
        std::fs::create_dir_all(&kd).unwrap();
        for k in [
            "watermark.key",
            "c2pa-signing.key",
            "c2pa-chain.pem",
            "c2pa-ca.pem",
        ] {
            std::fs::copy(keys.join(k), kd.join(k)).unwrap();
        }
        for k in ["c2pa-signing.key", "c2pa-chain.pem"] {
            let saved = std::fs::read(kd.join(k)).unwrap();
            std::fs::write(kd.join(k), bytes).unwrap();
            run_writing(
                suite,
                &case,
                &[
                    "stamp",
                    s(&img),
                    "-o",
                    s(&out),
                    "--keys",
                    s(&kd),
                    "--no-check",
                ],
                &[2],
                &out,
            );
            std::fs::write(kd.join(k), saved).unwrap();
        }
    }
    // Devices as key and trust files.
    suite.cases += 1;
    suite.run(
        "device as key",
        &["image", "detect", "--key", "/dev/zero", s(&img)],
        &[2],
    );
    suite.run(
        "device as trust",
        &["verify", s(&img), "--trust", "/dev/zero"],
        &[2],
    );
    suite.run(
        "device as definition",
        &[
            "sign",
            s(&img),
            "-o",
            "/dev/null",
            "--keys",
            s(&keys),
            "--manifest",
            "/dev/zero",
        ],
        &[2],
    );
}

/// Hostile text through `text detect` (tiny model tokenizer: no download).
pub fn hostile_text(suite: &mut Suite, n: usize) {
    let keys = suite.keys.clone();
    let model = suite.path("tiny.gguf");
    hallmark_lm::tiny::write_model(&model, 7, 1.0).unwrap();
    for i in 0..n {
        suite.cases += 1;
        let r = &mut suite.rng;
        let (name, bytes): (&str, Vec<u8>) = match i % 5 {
            0 => ("random bytes", {
                let n = 1 + r.below(20_000);
                r.bytes(n)
            }),
            1 => ("control characters", {
                let mut v = b"Plain words \x1b[2J\x1b]0;t\x07 then more \r\n".repeat(50);
                v.extend(r.bytes(16));
                v
            }),
            2 => ("empty", vec![]),
            3 => (
                "long",
                "the same words over and over, "
                    .repeat(170_000)
                    .into_bytes(),
            ),
            _ => ("jsonl", {
                let mut v = br#"{"id":1,"text":"some text to score here"}"#.to_vec();
                v.push(b'\n');
                v.extend(r.bytes(200));
                v.push(b'\n');
                v.extend(br#"{"id":2,"text":"more"}"#);
                v
            }),
        };
        let f = suite.path(&format!("text-{i}.txt"));
        std::fs::write(&f, &bytes).unwrap();
        let case = format!("text {name}");
        let mut args = vec![
            "text",
            "detect",
            "--key",
            s(&keys),
            "--tokenizer",
            s(&model),
            s(&f),
        ];
        if name == "jsonl" {
            args.push("--jsonl");
        }
        suite.run(&case, &args, &[0, 1, 2]);
    }
}

/// Kills mid-run: a stamp with a ledger, and a label, killed at seeded moments. After each,
/// the ledger verifies, every output present has its record, and a resumed label finishes
/// with every image labelled once.
pub fn kills(suite: &mut Suite, n: usize) {
    let keys = suite.keys.clone();
    let src = suite.path("kill-src");
    std::fs::create_dir_all(&src).unwrap();
    let mut inputs = vec![];
    for k in 0..12u64 {
        let p = src.join(format!("k{k}.png"));
        picture(160, 128, 100 + k).save(&p).unwrap();
        inputs.push(p);
    }
    for round in 0..n {
        suite.cases += 1;
        let case = format!("kill round {round}");
        let ledger = suite.path(&format!("kill-ledger-{round}.jsonl"));
        let out = suite.path(&format!("kill-out-{round}"));
        let mut args: Vec<String> = vec!["stamp".into()];
        args.extend(inputs.iter().map(|p| s(p).to_string()));
        args.extend(
            [
                "--out-dir",
                s(&out),
                "--keys",
                s(&keys),
                "--ledger",
                s(&ledger),
                "--no-check",
                "-q",
            ]
            .map(String::from),
        );
        let mut child = Command::new(BIN).args(&args).spawn().unwrap();
        std::thread::sleep(Duration::from_millis(50 + suite.rng.below(600) as u64));
        let _ = child.kill();
        let _ = child.wait();
        if ledger.exists() {
            let code = suite
                .run(&case, &["ledger", "verify", s(&ledger)], &[0])
                .code;
            if code == Some(0) {
                let text = std::fs::read_to_string(&ledger).unwrap_or_default();
                for e in std::fs::read_dir(&out).into_iter().flatten().flatten() {
                    let name = e.file_name().to_string_lossy().into_owned();
                    if name.starts_with('.') {
                        continue;
                    }
                    let h = sha(&std::fs::read(e.path()).unwrap_or_default());
                    if !text.contains(&h) {
                        suite.data_loss(
                            &case,
                            format!("{name} is in place without its ledger record"),
                        );
                    }
                }
            }
        }
        // label, killed, then resumed to the end.
        let lout = suite.path(&format!("kill-label-{round}"));
        let mut child = Command::new(BIN)
            .args([
                "label",
                s(&src),
                "--out-dir",
                s(&lout),
                "--keys",
                s(&keys),
                "-j",
                "2",
                "-q",
                "--no-check",
            ])
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(50 + suite.rng.below(800) as u64));
        let _ = child.kill();
        let _ = child.wait();
        let args = [
            "--json",
            "label",
            s(&src),
            "--out-dir",
            s(&lout),
            "--keys",
            s(&keys),
            "--resume",
            "--no-check",
        ];
        let code = suite.run(&case, &args, &[0]).code;
        if code == Some(0) {
            let report = std::fs::read_to_string(lout.join("report.jsonl")).unwrap_or_default();
            let stamped = report.lines().filter(|l| l.contains("\"stamped\"")).count();
            let files = std::fs::read_dir(&lout)
                .into_iter()
                .flatten()
                .flatten()
                .filter(|e| e.file_name().to_string_lossy().ends_with(".png"))
                .count();
            if stamped != inputs.len() || files != inputs.len() {
                suite.data_loss(
                    &case,
                    format!(
                        "label after a kill: {stamped} reported, {files} files, {} inputs",
                        inputs.len()
                    ),
                );
            }
        }
    }
}

/// Several processes stamping into one ledger at once.
pub fn concurrency(suite: &mut Suite) {
    suite.cases += 1;
    let keys = suite.keys.clone();
    let ledger = suite.path("shared-ledger.jsonl");
    let src = suite.path("conc.png");
    picture(160, 128, 42).save(&src).unwrap();
    let (procs, per) = (4usize, 12usize);
    let mut children = vec![];
    for p in 0..procs {
        let dir: PathBuf = suite.path(&format!("conc-{p}"));
        std::fs::create_dir_all(&dir).unwrap();
        let mut args: Vec<String> = vec!["stamp".into()];
        for i in 0..per {
            let f = dir.join(format!("{i}.png"));
            std::fs::copy(&src, &f).unwrap();
            args.push(s(&f).into());
        }
        args.extend(
            [
                "--out-dir",
                s(&dir.join("o")),
                "--keys",
                s(&keys),
                "--ledger",
                s(&ledger),
                "--no-check",
                "-q",
            ]
            .map(String::from),
        );
        children.push(Command::new(BIN).args(&args).spawn().unwrap());
    }
    for mut c in children {
        let _ = c.wait();
    }
    let o = suite.run(
        "concurrent ledger",
        &["--json", "ledger", "verify", s(&ledger)],
        &[0],
    );
    if o.code == Some(0) {
        let recs = std::fs::read_to_string(&ledger)
            .unwrap_or_default()
            .lines()
            .count();
        if recs != procs * per {
            suite.data_loss(
                "concurrent ledger",
                format!("{recs} records for {} stamps", procs * per),
            );
        }
    }
}
