//! End-to-end tests of the `hallmark` binary: run it in a temporary folder like a user would.
#![allow(clippy::unwrap_used)]

mod c2pa_cases;
mod c2pa_production;
mod contract;
mod hostile;
mod keygen;
mod label;
mod ledger;
mod serve;
mod text;
mod util;
mod watermark;

use util::*;

#[test]
fn help_lists_commands_and_exit_codes() {
    let out = hm(&["--help"]).run();
    out.code(0);
    for word in [
        "keygen",
        "stamp",
        "verify",
        "label",
        "sign",
        "image",
        "text",
        "completions",
        "Exit codes",
    ] {
        assert!(
            out.stdout.contains(word),
            "help lacks {word}:\n{}",
            out.stdout
        );
    }
}

#[test]
fn usage_errors_exit_2() {
    hm(&["frobnicate"]).run().code(2);
    hm(&["stamp"]).run().code(2);
    hm(&["image", "detect"]).run().code(2);
    hm(&["stamp", "x.png", "--keys", "nowhere"]).run().code(2);
}

#[test]
fn completions_print_a_script() {
    let out = hm(&["completions", "bash"]).run();
    out.code(0);
    assert!(out.stdout.contains("hallmark"));
}

/// Every bad input gives exit 2 and a one-line message, never a panic (exit 101).
#[test]
fn bad_images_fail_cleanly() {
    let t = TestDir::new();
    let keys = t.keygen();
    let good = t.write_png("good.png", 300, 200, 1);
    let good_bytes = std::fs::read(&good).unwrap();
    let jpeg = t.write_jpeg("good.jpg", 300, 200, 2);
    let jpeg_bytes = std::fs::read(&jpeg).unwrap();
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("zero.png", vec![]),
        ("random.png", pseudo_random(4096, 7)),
        ("truncated.png", good_bytes[..good_bytes.len() / 2].to_vec()),
        ("truncated.jpg", jpeg_bytes[..jpeg_bytes.len() / 2].to_vec()),
        ("bomb.png", png_header_only(100_000, 100_000)),
        ("image.bmp", bmp(8, 8)),
    ];
    for (name, bytes) in cases {
        let p = t.path(name);
        std::fs::write(&p, &bytes).unwrap();
        let ps = p.to_str().unwrap();
        let out_path = t.path(&format!("out-{name}"));
        for args in [
            vec!["image", "detect", "--key", keys.as_str(), ps],
            vec![
                "stamp",
                ps,
                "-o",
                out_path.to_str().unwrap(),
                "--keys",
                keys.as_str(),
            ],
        ] {
            let out = hm(&args).run();
            out.code(2);
            assert!(
                out.stderr.contains("error:"),
                "{name} {args:?}: {}",
                out.stderr
            );
            assert!(!out.stderr.contains("panicked"), "{name}: {}", out.stderr);
            assert!(
                !out_path.exists(),
                "{name}: an output was written for bad input"
            );
        }
        let out = hm(&["verify", ps]).run();
        // A truncated signed file would be 'tampered'; these were never signed.
        assert_eq!(out.status, Some(2), "{name}: {}{}", out.stdout, out.stderr);
        assert!(!out.stderr.contains("panicked"), "{name}: {}", out.stderr);
    }
}

#[test]
fn stamping_a_text_file_points_to_text_generate() {
    let t = TestDir::new();
    let keys = t.keygen();
    let p = t.path("story.txt");
    std::fs::write(&p, "Once upon a time, a model wrote this.\n").unwrap();
    let out = hm(&[
        "stamp",
        p.to_str().unwrap(),
        "-o",
        t.path("o.txt").to_str().unwrap(),
        "--keys",
        &keys,
    ])
    .run();
    out.code(2);
    assert!(out.stderr.contains("text generate"), "{}", out.stderr);
}

#[test]
fn outputs_never_replace_inputs_without_in_place() {
    let t = TestDir::new();
    let keys = t.keygen();
    let p = t.write_png("a.png", 300, 300, 3);
    let before = std::fs::read(&p).unwrap();
    let ps = p.to_str().unwrap();
    hm(&["stamp", ps, "-o", ps, "--keys", &keys]).run().code(2);
    hm(&["image", "embed", "--key", &keys, ps, "-o", ps])
        .run()
        .code(2);
    assert_eq!(std::fs::read(&p).unwrap(), before, "the input was modified");
    hm(&["stamp", ps, "-o", ps, "--keys", &keys, "--in-place"])
        .run()
        .code(0);
    assert_ne!(std::fs::read(&p).unwrap(), before);
}
