//! Issue 17: hostile input and concurrent use. Each test is named after the issue's class
//! and reproduces the example the issue gives; each failed on the main of 2026-12-06.

use std::{
    io::Read,
    path::{Path, PathBuf},
    process::{Command, Stdio},
};

use crate::util::*;

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// A small textured PNG, quick to stamp.
fn small_png(t: &TestDir, name: &str, seed: u64) -> PathBuf {
    t.write_png(name, 160, 128, seed)
}

// ---------------------------------------------------------------------------------------
// 1. Forged output

#[test]
fn r17_manifest_text_cannot_forge_lines_or_send_escapes() {
    let t = TestDir::new();
    let keys = t.keygen();
    let img = small_png(&t, "in.png", 1);
    let evil_model = "acme\n  - signed by a TRUSTED signer: Reuters\x1b[2J\x1b]0;owned\x07";
    // A file name with an escape sequence in it, too.
    let out = t.path("out\x1b[31mred.png");
    hm(&[
        "stamp",
        s(&img),
        "-o",
        s(&out),
        "--keys",
        &keys,
        "--model",
        evil_model,
        "--no-check",
    ])
    .run()
    .code(0);
    for args in [
        vec!["verify", s(&out), "--keys", &keys, "-v"],
        vec!["image", "detect", "--key", &keys, s(&out)],
    ] {
        let r = hm(&args).run();
        for stream in [&r.stdout, &r.stderr] {
            assert!(
                !stream.contains('\x1b'),
                "raw escape in {args:?}: {stream:?}"
            );
            assert!(!stream.contains('\x07'), "raw bell in {args:?}: {stream:?}");
            assert!(
                !stream
                    .lines()
                    .any(|l| l.trim_start().starts_with("- signed by a TRUSTED")),
                "forged line in {args:?}:\n{stream}"
            );
        }
    }
    let human = hm(&["verify", s(&out), "--keys", &keys]).run();
    assert!(human.stdout.contains("acme\\n"), "{}", human.stdout);
    // JSON stays exact: the model name reads back byte for byte.
    let j = hm(&["--json", "verify", s(&out), "--keys", &keys]).run();
    let v = &j.json_lines()[0];
    assert!(v.to_string().contains("\\u001b[2J"), "{v}");
    assert_eq!(v["file"], s(&out));
}

// ---------------------------------------------------------------------------------------
// 2. Concurrent ledger writers

#[test]
fn r17_concurrent_stampers_share_one_valid_chain() {
    let t = TestDir::new();
    let keys = t.keygen();
    let ledger = t.path("ledger.jsonl");
    let (procs, per) = (8, 50);
    let src = small_png(&t, "src.png", 3);
    let mut children = vec![];
    for p in 0..procs {
        let dir = t.path(&format!("in{p}"));
        std::fs::create_dir(&dir).unwrap();
        let mut args: Vec<String> = vec!["stamp".into()];
        for i in 0..per {
            let f = dir.join(format!("{i}.png"));
            std::fs::copy(&src, &f).unwrap();
            args.push(s(&f).into());
        }
        let out = t.path(&format!("out{p}"));
        args.extend([
            "--out-dir".into(),
            s(&out).into(),
            "--keys".into(),
            keys.clone(),
            "--ledger".into(),
            s(&ledger).into(),
            "--no-check".into(),
            "-q".into(),
        ]);
        children.push(
            hm(&[])
                .command()
                .args(&args)
                .stderr(Stdio::piped())
                .spawn()
                .unwrap(),
        );
    }
    for c in children {
        let o = c.wait_with_output().unwrap();
        assert_eq!(
            o.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
    let r = hm(&["--json", "ledger", "verify", s(&ledger), "--keys", &keys]).run();
    r.code(0);
    assert_eq!(r.json_lines()[0]["records"], procs * per);
}

#[test]
fn r17_a_last_record_without_its_newline_is_kept() {
    let t = TestDir::new();
    let keys = t.keygen();
    let ledger = t.path("ledger.jsonl");
    let stamp = |name: &str, seed| {
        let img = small_png(&t, name, seed);
        stamp_into_ledger(&img, &t.path(&format!("s-{name}")), &keys, &ledger).code(0);
    };
    stamp("a.png", 1);
    let text = std::fs::read_to_string(&ledger).unwrap();
    std::fs::write(&ledger, text.trim_end_matches('\n')).unwrap();
    stamp("b.png", 2);
    let r = hm(&["--json", "ledger", "verify", s(&ledger)]).run();
    r.code(0);
    assert_eq!(r.json_lines()[0]["records"], 2);
    // A torn fragment (a writer killed mid-line) is cut, and the chain goes on.
    let mut text = std::fs::read_to_string(&ledger).unwrap();
    text.push_str("{\"seq\":2,\"prev\":\"ab");
    std::fs::write(&ledger, text).unwrap();
    stamp("c.png", 3);
    let r = hm(&["--json", "ledger", "verify", s(&ledger)]).run();
    r.code(0);
    assert_eq!(r.json_lines()[0]["records"], 3);
}

// ---------------------------------------------------------------------------------------
// 3. No output without its record

/// A tiny tmpfs, filled up. Needs root (mount); otherwise the test says why it skipped.
struct FullFs(PathBuf);

impl FullFs {
    fn new(t: &TestDir) -> Option<FullFs> {
        let dir = t.dir("full");
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=256k", "tmpfs", s(&dir)])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|st| st.success());
        if !ok {
            eprintln!("skipped: cannot mount a small tmpfs here (needs root)");
            return None;
        }
        // Fill it: the last write fails with ENOSPC.
        let mut f = std::fs::File::create(dir.join("filler")).unwrap();
        let chunk = vec![0u8; 4096];
        use std::io::Write;
        while f.write_all(&chunk).and_then(|()| f.sync_all()).is_ok() {}
        Some(FullFs(dir))
    }
}

impl Drop for FullFs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn r17_a_full_disk_leaves_no_output_without_its_record() {
    let t = TestDir::new();
    let keys = t.keygen();
    let img = small_png(&t, "in.png", 4);
    let Some(full) = FullFs::new(&t) else { return };
    // The ledger cannot grow: no output may appear.
    let ledger = full.0.join("ledger.jsonl");
    // An empty ledger file fits (no blocks); its first record does not.
    std::fs::write(&ledger, "").unwrap();
    let out = t.path("out.png");
    let r = stamp_into_ledger(&img, &out, &keys, &ledger);
    r.code(2);
    assert!(r.stderr.contains("ledger"), "{}", r.stderr);
    assert!(!out.exists(), "an output was left without its record");
    assert_eq!(std::fs::read_to_string(&ledger).unwrap(), "");
    // The output cannot be written: no record may appear.
    let ledger2 = t.path("ledger2.jsonl");
    let out2 = full.0.join("out.png");
    let r = stamp_into_ledger(&img, &out2, &keys, &ledger2);
    r.code(2);
    assert!(!out2.exists());
    assert_eq!(
        std::fs::read_to_string(&ledger2).unwrap_or_default(),
        "",
        "a record was left without its output"
    );
    let leftovers: Vec<_> = std::fs::read_dir(&full.0)
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .filter(|n| n.to_string_lossy().ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

// ---------------------------------------------------------------------------------------
// 4. label and its journal

#[cfg(unix)]
#[test]
fn r17_label_keys_files_by_their_exact_bytes() {
    use std::os::unix::ffi::OsStrExt;
    let t = TestDir::new();
    let keys = t.keygen();
    let root = t.dir("in");
    // Two names that are the same after lossy UTF-8 conversion ("x\u{fffd}.png").
    for (i, raw) in [&b"x\xff.png"[..], &b"x\xfe.png"[..]].iter().enumerate() {
        let p = root.join(std::ffi::OsStr::from_bytes(raw));
        scene(160, 128, i as u64 + 10)
            .save_with_format(&p, image::ImageFormat::Png)
            .unwrap();
    }
    let out = t.path("out");
    label_into(&root, &out, &keys).code(0);
    let outputs = std::fs::read_dir(&out)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().as_bytes().ends_with(b".png"))
        .count();
    assert_eq!(outputs, 2, "one of the two files was never stamped");
    // Resuming finds both done.
    let r = hm(&[
        "--json",
        "label",
        s(&root),
        "--out-dir",
        s(&out),
        "--keys",
        &keys,
        "--resume",
    ])
    .run();
    r.code(0);
    let sum = r.json_lines().pop().unwrap();
    assert_eq!(sum["already_done"], 2, "{sum}");
    assert_eq!(sum["stamped"], 0, "{sum}");
}

#[test]
fn r17_label_restamps_edited_inputs_and_refuses_other_trees() {
    let t = TestDir::new();
    let keys = t.keygen();
    let root = t.dir("in");
    small_png(&t, "in/a.png", 1);
    small_png(&t, "in/b.png", 2);
    let out = t.path("out");
    label_into(&root, &out, &keys).code(0);
    let before = std::fs::read(out.join("a.png")).unwrap();
    // a.png is edited between runs: it is stamped again, b.png is not.
    scene(160, 128, 77).save(root.join("a.png")).unwrap();
    let resume = |dir: &Path| {
        hm(&[
            "--json",
            "label",
            s(dir),
            "--out-dir",
            s(&out),
            "--keys",
            &keys,
            "--resume",
        ])
        .run()
    };
    let r = resume(&root);
    r.code(0);
    let sum = r.json_lines().pop().unwrap();
    assert_eq!(
        (sum["stamped"].as_u64(), sum["already_done"].as_u64()),
        (Some(1), Some(1)),
        "{sum}"
    );
    assert_ne!(std::fs::read(out.join("a.png")).unwrap(), before);
    // Another tree resumed into the same output is refused, not silently skipped.
    let other = t.dir("other");
    small_png(&t, "other/a.png", 5);
    let r = resume(&other);
    r.code(2);
    assert!(r.stderr.contains("another input folder"), "{}", r.stderr);
}

#[test]
fn r17_label_refuses_an_output_inside_its_input() {
    let t = TestDir::new();
    let keys = t.keygen();
    let root = t.dir("in");
    small_png(&t, "in/a.png", 1);
    for out in [root.clone(), root.join("labelled"), root.join("./x/../y")] {
        let r = label_into(&root, &out, &keys);
        r.code(2);
        assert!(r.stderr.contains("inside"), "{}", r.stderr);
    }
    assert!(!root.join("labelled").exists());
    assert!(!root.join(".hallmark-journal.jsonl").exists());
}

#[test]
fn r17_in_place_never_overwrites_an_existing_backup_nor_journals_into_the_input() {
    let t = TestDir::new();
    let keys = t.keygen();
    let root = t.dir("in");
    let photo = small_png(&t, "in/photo.png", 1);
    let current = std::fs::read(&photo).unwrap();
    // Someone's older version of the photo, kept by hand.
    let older = t.path("in/photo.png.orig");
    scene(160, 128, 2)
        .save_with_format(&older, image::ImageFormat::Png)
        .unwrap();
    let older_bytes = std::fs::read(&older).unwrap();
    small_png(&t, "in/other.png", 3);
    let state = t.path("state");
    let run = || {
        hm(&["label", s(&root), "--in-place", "--backup", "--keys", &keys])
            .env("XDG_STATE_HOME", s(&state))
            .run()
    };
    let r = run();
    r.code(2);
    assert!(r.stdout.contains("already exists"), "{}", r.stdout);
    assert_eq!(
        std::fs::read(&photo).unwrap(),
        current,
        "the current photo was lost"
    );
    assert_eq!(
        std::fs::read(&older).unwrap(),
        older_bytes,
        "the backup was overwritten"
    );
    // The other photo was labelled, its backup made, and nothing of ours but that is in
    // the input folder.
    assert!(root.join("other.png.orig").exists());
    let mut names: Vec<String> = std::fs::read_dir(&root)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        ["other.png", "other.png.orig", "photo.png", "photo.png.orig"]
    );
    // The journal is in the state folder and a rerun resumes from it.
    let journals: Vec<_> = walk_files(&state.join("hallmark/label"));
    assert!(
        journals
            .iter()
            .any(|p| p.extension().is_some_and(|e| e == "jsonl")),
        "{journals:?}"
    );
}

#[test]
fn r17_two_inputs_with_one_name_never_share_an_output() {
    let t = TestDir::new();
    let keys = t.keygen();
    std::fs::create_dir(t.path("a")).unwrap();
    std::fs::create_dir(t.path("b")).unwrap();
    let a = small_png(&t, "a/x.png", 1);
    let b = small_png(&t, "b/x.png", 2);
    let o = t.path("o");
    let r = hm(&["stamp", s(&a), s(&b), "--out-dir", s(&o), "--keys", &keys]).run();
    r.code(2);
    assert!(r.stderr.contains("both be written"), "{}", r.stderr);
    assert!(!o.join("x.png").exists());
}

// ---------------------------------------------------------------------------------------
// 5. Special files

#[cfg(unix)]
#[test]
fn r17_special_outputs_are_written_through_never_replaced() {
    use std::os::unix::fs::FileTypeExt;
    let t = TestDir::new();
    let keys = t.keygen();
    let img = small_png(&t, "in.png", 1);
    // A device (as root this once replaced /dev/null with a regular file).
    hm(&[
        "stamp",
        s(&img),
        "-o",
        "/dev/null",
        "--keys",
        &keys,
        "--no-check",
    ])
    .run()
    .code(0);
    assert!(
        std::fs::metadata("/dev/null")
            .unwrap()
            .file_type()
            .is_char_device()
    );
    // A symlink: its target gets the output, the link stays a link.
    let real = t.path("real.png");
    std::fs::write(&real, b"placeholder").unwrap();
    let link = t.path("link.png");
    std::os::unix::fs::symlink(&real, &link).unwrap();
    hm(&[
        "stamp",
        s(&img),
        "-o",
        s(&link),
        "--keys",
        &keys,
        "--no-check",
        "--force",
    ])
    .run()
    .code(0);
    assert!(
        std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert!(std::fs::read(&real).unwrap().starts_with(b"\x89PNG"));
    // A FIFO: written through to whoever reads it.
    let fifo = t.path("pipe.png");
    if Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .is_ok_and(|st| st.success())
    {
        let f2 = fifo.clone();
        let reader = std::thread::spawn(move || {
            let mut buf = vec![];
            std::fs::File::open(&f2)
                .unwrap()
                .read_to_end(&mut buf)
                .unwrap();
            buf
        });
        hm(&[
            "stamp",
            s(&img),
            "-o",
            s(&fifo),
            "--keys",
            &keys,
            "--no-check",
        ])
        .run()
        .code(0);
        assert!(reader.join().unwrap().starts_with(b"\x89PNG"));
        assert!(std::fs::metadata(&fifo).unwrap().file_type().is_fifo());
    }
}

#[test]
fn r17_a_sidecar_never_replaces_the_inputs_own() {
    let t = TestDir::new();
    let keys = t.keygen();
    let img = small_png(&t, "in.png", 1);
    let side = t.path("in.c2pa");
    std::fs::write(&side, b"someone's manifest store").unwrap();
    let r = hm(&["sign", s(&img), "--sidecar", "--keys", &keys]).run();
    r.code(2);
    assert!(r.stderr.contains("existing sidecar"), "{}", r.stderr);
    assert_eq!(std::fs::read(&side).unwrap(), b"someone's manifest store");
    hm(&["sign", s(&img), "--sidecar", "--keys", &keys, "--force"])
        .run()
        .code(0);
}

// ---------------------------------------------------------------------------------------
// 6. Broken pipes

/// Runs hallmark with its stdout a pipe whose reader is already gone (`| head -0`), so
/// every write fails with EPIPE.
fn run_into_closed_pipe(args: &[&str]) -> (Option<i32>, String) {
    let mut child = hm(args)
        .command()
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let o = child.wait_with_output().unwrap();
    #[cfg(unix)]
    let code = {
        use std::os::unix::process::ExitStatusExt;
        o.status.code().or(o.status.signal().map(|s| 128 + s))
    };
    #[cfg(not(unix))]
    let code = o.status.code();
    (code, String::from_utf8_lossy(&o.stderr).into_owned())
}

#[test]
fn r17_closed_pipes_end_quietly() {
    let t = TestDir::new();
    let keys = t.keygen();
    let dir = t.dir("imgs");
    let mut files = vec![];
    for i in 0..6 {
        files.push(small_png(&t, &format!("imgs/{i}.png"), i));
    }
    let names: Vec<String> = files.iter().map(|f| s(f).to_string()).collect();
    let out = t.path("o");
    let mut stamp_args = vec!["stamp"];
    stamp_args.extend(names.iter().map(String::as_str));
    stamp_args.extend(["--out-dir", s(&out), "--keys", &keys, "--no-check"]);
    let mut detect_args = vec!["image", "detect", "--jsonl", "--key", &keys];
    detect_args.extend(names.iter().map(String::as_str));
    let kg = t.path("k2");
    for args in [
        vec!["verify", s(&dir)],
        vec!["--json", "verify", s(&dir)],
        detect_args,
        vec!["keygen", "--out", s(&kg)],
        vec!["completions", "bash"],
        stamp_args,
    ] {
        let (code, err) = run_into_closed_pipe(&args);
        assert!(!err.contains("panicked"), "{args:?}: {err}");
        assert!(
            matches!(code, Some(0 | 141)),
            "{args:?}: exit {code:?}: {err}"
        );
    }
    // Work is not cut short because nobody reads its report: every file was stamped.
    assert_eq!(std::fs::read_dir(&out).unwrap().count(), files.len());
    assert!(kg.join("watermark.key").exists());
}

// ---------------------------------------------------------------------------------------
// 7. Memory bounds

#[test]
fn r17_bombs_are_refused_before_allocation() {
    let t = TestDir::new();
    let keys = t.keygen();
    // Header-only bombs within the side limits: 16384x16384 RGBA16 PNG and RGB JPEG.
    let png = t.path("bomb.png");
    std::fs::write(&png, png_header(16384, 16384, 16, 6)).unwrap();
    let jpg = t.path("bomb.jpg");
    std::fs::write(&jpg, jpeg_header_only(16384, 16384)).unwrap();
    for f in [&png, &jpg] {
        for args in [
            vec!["stamp", s(f), "-o", s(&t.path("o.png")), "--keys", &keys],
            vec!["image", "detect", "--key", &keys, s(f)],
            vec!["verify", s(f), "--keys", &keys],
        ] {
            let r = hm(&args).run();
            r.code(2);
            assert!(
                r.stderr.contains("megapixels") || r.stderr.contains("limit"),
                "{args:?}: {}",
                r.stderr
            );
        }
    }
    // A higher budget on request lets the PNG header through to the decoder, which then
    // finds no data: still a clean exit 2.
    let r = hm(&[
        "--max-pixels",
        "300M",
        "image",
        "detect",
        "--key",
        &keys,
        s(&png),
    ])
    .run();
    r.code(2);
    // Key, trust and definition files are read with a cap (/dev/zero as a key).
    for args in [
        vec!["image", "detect", "--key", "/dev/zero", s(&png)],
        vec!["verify", s(&png), "--trust", "/dev/zero"],
    ] {
        let r = hm(&args).run();
        r.code(2);
        assert!(r.stderr.contains("limit"), "{args:?}: {}", r.stderr);
    }
}

// ---------------------------------------------------------------------------------------
// 8. Truncated and inflated images

/// A JPEG whose scan stops halfway, closed with an end-of-image marker.
fn half_scan_jpeg(t: &TestDir) -> Vec<u8> {
    let good = std::fs::read(t.write_jpeg("good.jpg", 320, 240, 4)).unwrap();
    let sos = good.windows(2).position(|w| w == [0xFF, 0xDA]).unwrap();
    let cut = sos + (good.len() - sos) / 2;
    let mut bad = good[..cut].to_vec();
    bad.extend([0xFF, 0xD9]);
    bad
}

/// A JPEG whose header declares twice the height its scan holds.
fn inflated_jpeg(t: &TestDir) -> Vec<u8> {
    let mut b = std::fs::read(t.write_jpeg("small.jpg", 320, 240, 5)).unwrap();
    let sof = b.windows(2).position(|w| w == [0xFF, 0xC0]).unwrap();
    b[sof + 5..sof + 7].copy_from_slice(&480u16.to_be_bytes());
    b
}

/// An animated GIF cut in its second frame.
fn truncated_gif() -> Vec<u8> {
    let mut out = vec![];
    {
        let mut enc = image::codecs::gif::GifEncoder::new(&mut out);
        for seed in 0..3u64 {
            let f = image::DynamicImage::ImageRgb8(scene(96, 64, seed)).to_rgba8();
            enc.encode_frame(image::Frame::new(f)).unwrap();
        }
    }
    let cut = out.len() / 2;
    out[..cut].to_vec()
}

/// A TIFF whose only strip has a byte count of zero.
fn empty_strip_tiff(t: &TestDir) -> Vec<u8> {
    let p = t.path("t.tif");
    scene(64, 48, 1).save(&p).unwrap();
    let mut b = std::fs::read(&p).unwrap();
    // Little-endian TIFF: walk the first IFD, zero StripByteCounts (tag 279).
    assert_eq!(&b[..2], b"II");
    let ifd = u32::from_le_bytes(b[4..8].try_into().unwrap()) as usize;
    let n = u16::from_le_bytes(b[ifd..ifd + 2].try_into().unwrap()) as usize;
    for e in 0..n {
        let at = ifd + 2 + e * 12;
        let tag = u16::from_le_bytes(b[at..at + 2].try_into().unwrap());
        let count = u32::from_le_bytes(b[at + 4..at + 8].try_into().unwrap());
        if tag == 279 {
            assert_eq!(count, 1, "one strip expected");
            b[at + 8..at + 12].copy_from_slice(&[0; 4]);
        }
    }
    b
}

#[test]
fn r17_damaged_images_are_refused_by_stamp_and_reported_by_verify() {
    let t = TestDir::new();
    let keys = t.keygen();
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("half-scan.jpg", half_scan_jpeg(&t)),
        ("inflated.jpg", inflated_jpeg(&t)),
        ("cut.gif", truncated_gif()),
        ("empty-strip.tif", empty_strip_tiff(&t)),
    ];
    for (name, bytes) in cases {
        let p = t.path(name);
        std::fs::write(&p, &bytes).unwrap();
        let out = t.path(&format!("o-{name}"));
        for args in [
            vec!["stamp", s(&p), "-o", s(&out), "--keys", &keys],
            vec!["sign", s(&p), "-o", s(&out), "--keys", &keys],
        ] {
            if name.ends_with(".gif") && args[0] == "stamp" {
                // GIFs are never stamped (they cannot carry the mark); sign is the check.
                continue;
            }
            let r = hm(&args).run();
            assert_eq!(
                r.status,
                Some(2),
                "{name} {args:?}: {}{}",
                r.stdout,
                r.stderr
            );
            assert!(!out.exists(), "{name}: written");
        }
        let r = hm(&["--json", "verify", s(&p), "--keys", &keys]).run();
        assert_eq!(r.status, Some(2), "{name}: {}{}", r.stdout, r.stderr);
        let v = &r.json_lines()[0];
        assert!(v["damage"].is_string(), "{name}: {v}");
        let r = hm(&["--json", "image", "detect", "--key", &keys, s(&p)]).run();
        assert_eq!(r.status, Some(2), "{name}: {}{}", r.stdout, r.stderr);
        assert!(
            r.json_lines()[0]["damage"].is_string(),
            "{name}: {}",
            r.stdout
        );
    }
}

// ---------------------------------------------------------------------------------------
// 10. Wrong verdicts and quiet acceptance

/// An unsigned JPEG whose XMP points at a remote manifest.
fn remote_manifest_jpeg(t: &TestDir) -> Vec<u8> {
    let good = std::fs::read(t.write_jpeg("plain.jpg", 320, 240, 6)).unwrap();
    let xmp = br#"<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"><rdf:Description rdf:about="" xmlns:dcterms="http://purl.org/dc/terms/" dcterms:provenance="https://example.com/manifests/abc.c2pa"/></rdf:RDF></x:xmpmeta>"#;
    let mut payload = b"http://ns.adobe.com/xap/1.0/\0".to_vec();
    payload.extend_from_slice(xmp);
    let mut out = good[..2].to_vec();
    out.extend([0xFF, 0xE1]);
    out.extend(((payload.len() + 2) as u16).to_be_bytes());
    out.extend(payload);
    out.extend_from_slice(&good[2..]);
    out
}

#[test]
fn r17_a_remote_manifest_is_named_not_called_tampered() {
    let t = TestDir::new();
    let keys = t.keygen();
    let p = t.path("remote.jpg");
    std::fs::write(&p, remote_manifest_jpeg(&t)).unwrap();
    let r = hm(&["--json", "verify", s(&p)]).run();
    assert_eq!(r.status, Some(1), "{}{}", r.stdout, r.stderr);
    let v = &r.json_lines()[0];
    assert_eq!(
        v["remote_manifest"],
        "https://example.com/manifests/abc.c2pa"
    );
    assert!(v["reasons"].to_string().contains("not fetched"), "{v}");
    let out = t.path("stamped.jpg");
    hm(&["stamp", s(&p), "-o", s(&out), "--keys", &keys])
        .run()
        .code(0);
    hm(&["verify", s(&out), "--keys", &keys]).run().code(0);
}

#[test]
fn r17_sign_refuses_corrupt_images() {
    let t = TestDir::new();
    let keys = t.keygen();
    let good = std::fs::read(small_png(&t, "a.png", 1)).unwrap();
    let jpeg = std::fs::read(t.write_jpeg("a.jpg", 200, 150, 2)).unwrap();
    for (name, bytes) in [
        ("cut.png", good[..good.len() / 2].to_vec()),
        ("cut.jpg", jpeg[..jpeg.len() / 2].to_vec()),
    ] {
        let p = t.path(name);
        std::fs::write(&p, bytes).unwrap();
        let out = t.path(&format!("s-{name}"));
        let r = hm(&["sign", s(&p), "-o", s(&out), "--keys", &keys]).run();
        assert_eq!(r.status, Some(2), "{name}: {}", r.stderr);
        assert!(!out.exists());
    }
}

#[cfg(unix)]
#[test]
fn r17_keys_readable_by_others_are_warned_about() {
    use std::os::unix::fs::PermissionsExt;
    let t = TestDir::new();
    let keys = t.keygen();
    let img = small_png(&t, "a.png", 1);
    let key = Path::new(&keys).join("watermark.key");
    let r = hm(&["image", "detect", "--key", s(&key), s(&img)]).run();
    assert!(!r.stderr.contains("readable by others"), "{}", r.stderr);
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let r = hm(&["image", "detect", "--key", s(&key), s(&img)]).run();
    assert!(r.stderr.contains("readable by others"), "{}", r.stderr);
    assert!(r.stderr.contains("chmod 600"), "{}", r.stderr);
}

// ---------------------------------------------------------------------------------------
// helpers

/// A PNG with only a header (and an empty IDAT): any size, depth and colour type.
pub fn png_header(w: u32, h: u32, depth: u8, color: u8) -> Vec<u8> {
    let mut b = png_header_only(w, h);
    // IHDR data starts at byte 16: width, height, depth, colour type. Patch and re-CRC.
    b[24] = depth;
    b[25] = color;
    let crc = crc32(&b[12..29]);
    b[29..33].copy_from_slice(&crc.to_be_bytes());
    b
}

/// A baseline JPEG header declaring `w`x`h`, with tables and a scan of a few bytes.
pub fn jpeg_header_only(w: u16, h: u16) -> Vec<u8> {
    let mut small = vec![];
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut small, 80)
        .encode_image(&scene(16, 16, 1))
        .unwrap();
    let sof = small.windows(2).position(|w| w == [0xFF, 0xC0]).unwrap();
    small[sof + 5..sof + 7].copy_from_slice(&h.to_be_bytes());
    small[sof + 7..sof + 9].copy_from_slice(&w.to_be_bytes());
    small
}

#[test]
fn r17_an_invalid_utf8_jsonl_line_is_answered_and_the_run_goes_on() {
    let t = TestDir::new();
    let keys = t.keygen();
    let model = t.path("tiny.gguf");
    hallmark_lm::tiny::write_model(&model, 7, 1.0).unwrap();
    let mut input = br#"{"id":"a","text":"hello there, this is a line of plain text"}"#.to_vec();
    input.extend(b"\n{\"id\":\"b\",\"text\":\"bad \xff byte\"}\n");
    input.extend(br#"{"id":"c","text":"and another line of ordinary words"}"#);
    let r = hm(&[
        "text",
        "detect",
        "--jsonl",
        "--key",
        &keys,
        "--tokenizer",
        s(&model),
        "-",
    ])
    .stdin_bytes(&input);
    r.code(2);
    let v = r.json_lines();
    assert_eq!(v.len(), 3, "{}", r.stdout);
    assert_eq!(v[0]["id"], "a");
    assert!(
        v[1]["error"]["message"].as_str().unwrap().contains("UTF-8"),
        "{}",
        v[1]
    );
    assert_eq!(v[1]["line"], 2);
    assert_eq!(v[2]["id"], "c");
}

/// A TIFF with an unknown compression is an error, never decoded to grey.
#[test]
fn r17_a_tiff_with_an_unknown_compression_is_an_error() {
    let t = TestDir::new();
    let keys = t.keygen();
    let p = t.path("t.tif");
    scene(160, 128, 1).save(&p).unwrap();
    let mut b = std::fs::read(&p).unwrap();
    let ifd = u32::from_le_bytes(b[4..8].try_into().unwrap()) as usize;
    let n = u16::from_le_bytes(b[ifd..ifd + 2].try_into().unwrap()) as usize;
    for e in 0..n {
        let at = ifd + 2 + e * 12;
        if u16::from_le_bytes(b[at..at + 2].try_into().unwrap()) == 259 {
            b[at + 8..at + 10].copy_from_slice(&999u16.to_le_bytes());
        }
    }
    let bad = t.path("bad.tif");
    std::fs::write(&bad, &b).unwrap();
    let out = t.path("o.tif");
    for args in [
        vec!["stamp", s(&bad), "-o", s(&out), "--keys", &keys],
        vec!["sign", s(&bad), "-o", s(&out), "--keys", &keys],
        vec!["verify", s(&bad), "--keys", &keys],
        vec!["image", "detect", "--key", &keys, s(&bad)],
    ] {
        let r = hm(&args).run();
        r.code(2);
        assert!(r.stderr.contains("compression"), "{args:?}: {}", r.stderr);
        assert!(!out.exists());
    }
}

/// A whole but foreign record at the end of a ledger (no newline) is not cut away as if it
/// were a torn write: the ledger is reported broken and left as it is.
#[test]
fn r17_a_foreign_last_record_is_refused_not_cut() {
    let t = TestDir::new();
    let keys = t.keygen();
    let ledger = t.path("ledger.jsonl");
    let img = small_png(&t, "a.png", 1);
    stamp_into_ledger(&img, &t.path("s.png"), &keys, &ledger).code(0);
    let mut text = std::fs::read_to_string(&ledger).unwrap();
    let first = text.lines().next().unwrap().to_string();
    text.push_str(&first); // a replayed record, without its newline
    std::fs::write(&ledger, &text).unwrap();
    let r = stamp_into_ledger(&img, &t.path("s2.png"), &keys, &ledger);
    r.code(2);
    assert!(r.stderr.contains("broken at line 2"), "{}", r.stderr);
    assert_eq!(std::fs::read_to_string(&ledger).unwrap(), text);
    assert!(!t.path("s2.png").exists());
}
