//! Issue 18: the CLI's contract for files (outputs as Unix tools treat them).

use std::path::Path;

use crate::util::*;

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// An existing output is never replaced silently: every command that writes one refuses
/// without `--force`, and leaves the file as it was.
#[test]
fn r18_existing_outputs_need_force() {
    let t = TestDir::new();
    let keys = t.keygen();
    let img = t.write_png("in.png", 200, 160, 1);
    let out = t.path("out.png");
    let keep = b"an earlier output someone still needs".to_vec();
    let cases: Vec<Vec<&str>> = vec![
        vec![
            "stamp",
            s(&img),
            "-o",
            s(&out),
            "--keys",
            &keys,
            "--no-check",
        ],
        vec!["sign", s(&img), "-o", s(&out), "--keys", &keys],
        vec!["strip", s(&img), "-o", s(&out)],
        vec![
            "image",
            "embed",
            "--key",
            &keys,
            s(&img),
            "-o",
            s(&out),
            "--no-check",
        ],
    ];
    for args in cases {
        std::fs::write(&out, &keep).unwrap();
        let r = hm(&args).run();
        r.code(2);
        assert!(r.stderr.contains("--force"), "{args:?}: {}", r.stderr);
        assert_eq!(std::fs::read(&out).unwrap(), keep, "{args:?} replaced it");
        let mut forced = args.clone();
        forced.push("--force");
        hm(&forced).run().code(0);
        assert!(
            std::fs::read(&out).unwrap().starts_with(b"\x89PNG"),
            "{args:?}"
        );
    }
    // --out-dir too: a name already taken in the folder is refused, the others written.
    let dir = t.dir("o");
    std::fs::write(dir.join("in.png"), &keep).unwrap();
    let other = t.write_png("other.png", 200, 160, 2);
    let r = hm(&[
        "stamp",
        s(&img),
        s(&other),
        "--out-dir",
        s(&dir),
        "--keys",
        &keys,
        "--no-check",
    ])
    .run();
    r.code(2);
    assert_eq!(std::fs::read(dir.join("in.png")).unwrap(), keep);
    assert!(dir.join("other.png").exists());
}

/// Outputs get the permissions the umask gives (only key files are private).
#[cfg(unix)]
#[test]
fn r18_outputs_get_umask_permissions() {
    use std::os::unix::fs::PermissionsExt;
    let t = TestDir::new();
    let keys = t.keygen();
    let img = t.write_png("in.png", 200, 160, 1);
    let out = t.path("out.png");
    let stripped = t.path("stripped.png");
    // A shell with umask 022, as most are.
    let bin = BIN;
    let st = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "umask 022 && '{bin}' stamp '{}' -o '{}' --keys '{keys}' --no-check -q && '{bin}' strip '{}' -o '{}' -q",
            s(&img),
            s(&out),
            s(&out),
            s(&stripped)
        ))
        .env("HOME", "/nonexistent")
        .status()
        .unwrap();
    assert!(st.success());
    for f in [&out, &stripped] {
        let mode = std::fs::metadata(f).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o644, "{}", f.display());
    }
    let key = Path::new(&keys).join("watermark.key");
    assert_eq!(
        std::fs::metadata(key).unwrap().permissions().mode() & 0o777,
        0o600
    );
}

/// Issue 18: deleting the last records of a ledger left a valid chain; a checkpoint
/// published earlier now catches it.
#[test]
fn r18_a_checkpoint_catches_a_ledger_cut_short() {
    let t = TestDir::new();
    let keys = t.keygen();
    let ledger = t.path("ledger.jsonl");
    let stamp = |i: u64| {
        let img = t.write_png(&format!("i{i}.png"), 200, 160, i);
        stamp_into_ledger(&img, &t.path(&format!("s{i}.png")), &keys, &ledger).code(0);
    };
    for i in 0..3 {
        stamp(i);
    }
    let head = hm(&["ledger", "head", s(&ledger), "--keys", &keys]).run();
    head.code(0);
    let cp = head.stdout.trim().to_string();
    let v: serde_json::Value = serde_json::from_str(&cp).unwrap();
    assert_eq!(v["records"], 3);
    let cp_file = t.path("checkpoint.json");
    std::fs::write(&cp_file, &cp).unwrap();
    // The ledger grows: still holds the checkpoint.
    stamp(3);
    for expect in [cp.as_str(), s(&cp_file)] {
        hm(&[
            "ledger",
            "verify",
            s(&ledger),
            "--keys",
            &keys,
            "--expect",
            expect,
        ])
        .run()
        .code(0);
    }
    // Cut the last two records: the chain is still valid, the checkpoint is not held.
    let text = std::fs::read_to_string(&ledger).unwrap();
    let kept: Vec<&str> = text.lines().take(2).collect();
    std::fs::write(&ledger, format!("{}\n", kept.join("\n"))).unwrap();
    hm(&["ledger", "verify", s(&ledger), "--keys", &keys])
        .run()
        .code(0);
    let r = hm(&[
        "ledger",
        "verify",
        s(&ledger),
        "--keys",
        &keys,
        "--expect",
        &cp,
    ])
    .run();
    r.code(3);
    assert!(r.stdout.contains("cut off"), "{}", r.stdout);
    // A checkpoint edited to claim fewer records does not verify.
    let forged = cp.replace("\"records\":3", "\"records\":2");
    let r = hm(&["ledger", "verify", s(&ledger), "--expect", &forged]).run();
    r.code(3);
    assert!(r.stdout.contains("signature"), "{}", r.stdout);
}

/// Runs hallmark with `input` on stdin; returns (exit code, stdout bytes, stderr).
fn piped(args: &[&str], input: &[u8]) -> (Option<i32>, Vec<u8>, String) {
    use std::io::Write;
    use std::process::Stdio;
    let mut child = hm(args)
        .command()
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let data = input.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&data);
    });
    let o = child.wait_with_output().unwrap();
    writer.join().unwrap();
    (
        o.status.code(),
        o.stdout,
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// `-` is standard input for one input and standard output for one output, so hallmark
/// sits in a pipe: `curl ... | hallmark stamp - -o - --keys k > out.png`.
#[test]
fn r18_dash_means_stdin_and_stdout() {
    let t = TestDir::new();
    let keys = t.keygen();
    let img = std::fs::read(t.write_png("in.png", 200, 160, 1)).unwrap();
    let (code, stamped, err) = piped(&["stamp", "-", "-o", "-", "--keys", &keys], &img);
    assert_eq!(code, Some(0), "{err}");
    assert!(stamped.starts_with(b"\x89PNG"), "stdout is not the image");
    // The report went to stderr, not into the image.
    assert!(err.contains("stamped"), "{err}");
    let (code, out, err) = piped(&["--json", "verify", "-", "--keys", &keys], &stamped);
    assert_eq!(code, Some(0), "{err}");
    let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(v["verdict"], "ai_generated");
    let (code, _, err) = piped(&["image", "detect", "--key", &keys, "-"], &stamped);
    assert_eq!(code, Some(0), "{err}");
    let (code, stripped, err) = piped(&["strip", "-", "-o", "-"], &stamped);
    assert_eq!(code, Some(0), "{err}");
    let (code, _, _) = piped(&["verify", "-"], &stripped);
    assert_eq!(code, Some(1), "the stripped copy has no manifest");
    let (code, signed, err) = piped(&["sign", "-", "-o", "-", "--keys", &keys], &img);
    assert_eq!(code, Some(0), "{err}");
    let (code, _, err) = piped(&["verify", "-", "--keys", &keys], &signed);
    assert_eq!(code, Some(0), "{err}");
    let (code, embedded, err) = piped(
        &[
            "image",
            "embed",
            "--key",
            &keys,
            "-",
            "-o",
            "-",
            "--payload",
            "00112233aabbccdd",
        ],
        &img,
    );
    assert_eq!(code, Some(0), "{err}");
    let (_, out, _) = piped(
        &["--json", "image", "detect", "--key", &keys, "-"],
        &embedded,
    );
    let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(v["payload"], "00112233aabbccdd");
    // stdin has no name to keep in a folder; it can be read once.
    let (code, _, err) = piped(
        &["stamp", "-", "--out-dir", s(&t.path("o")), "--keys", &keys],
        &img,
    );
    assert_eq!(code, Some(2), "{err}");
    let (code, _, _) = piped(
        &[
            "stamp",
            "-",
            "-",
            "--out-dir",
            s(&t.path("o")),
            "--keys",
            &keys,
        ],
        &img,
    );
    assert_eq!(code, Some(2));
}

/// The output's format follows its extension, or `--format`; a contradiction is an error,
/// never a PNG inside a `.jpg`.
#[test]
fn r18_output_format_follows_the_name() {
    let t = TestDir::new();
    let keys = t.keygen();
    let png = t.write_png("in.png", 240, 180, 1);
    let sniff = |p: &Path| {
        let b = std::fs::read(p).unwrap();
        if b.starts_with(b"\x89PNG") {
            "png"
        } else if b.starts_with(&[0xFF, 0xD8]) {
            "jpeg"
        } else if b.starts_with(b"RIFF") {
            "webp"
        } else if b.starts_with(b"II") || b.starts_with(b"MM") {
            "tiff"
        } else {
            "?"
        }
    };
    let jpg = t.path("out.jpg");
    hm(&["stamp", s(&png), "-o", s(&jpg), "--keys", &keys])
        .run()
        .code(0);
    assert_eq!(sniff(&jpg), "jpeg");
    hm(&["verify", s(&jpg), "--keys", &keys]).run().code(0);
    let r = hm(&[
        "stamp",
        s(&png),
        "-o",
        s(&t.path("x.webp")),
        "--keys",
        &keys,
        "--format",
        "jpeg",
    ])
    .run();
    r.code(2);
    assert!(r.stderr.contains("contradicts"), "{}", r.stderr);
    assert!(!t.path("x.webp").exists());
    let dir = t.path("o");
    hm(&[
        "stamp",
        s(&jpg),
        "--out-dir",
        s(&dir),
        "--keys",
        &keys,
        "--format",
        "png",
        "--force",
    ])
    .run()
    .code(0);
    assert_eq!(sniff(&dir.join("out.png")), "png");
    let r = hm(&[
        "sign",
        s(&png),
        "-o",
        s(&t.path("signed.jpg")),
        "--keys",
        &keys,
    ])
    .run();
    r.code(2);
    assert!(!t.path("signed.jpg").exists());
    let tif = t.path("stripped.tif");
    hm(&["strip", s(&png), "-o", s(&tif)]).run().code(0);
    assert_eq!(sniff(&tif), "tiff");
    let webp = t.path("embedded.webp");
    hm(&["image", "embed", "--key", &keys, s(&png), "-o", s(&webp)])
        .run()
        .code(0);
    assert_eq!(sniff(&webp), "webp");
}

/// Stamping an already stamped image (an img2img output, a re-export) signs a new manifest
/// whose parent ingredient is the old one, as a composite with AI-generated content, and
/// re-marks the pixels with the new ID.
#[test]
fn r18_restamping_keeps_the_old_manifest_as_its_parent() {
    let t = TestDir::new();
    let keys = t.keygen();
    let src = t.write_png("in.png", 320, 240, 3);
    let first = t.path("first.png");
    let second = t.path("second.png");
    for (inp, out, id) in [
        (&src, &first, "1111111111111111"),
        (&first, &second, "2222222222222222"),
    ] {
        hm(&[
            "stamp",
            s(inp),
            "-o",
            s(out),
            "--keys",
            &keys,
            "--payload",
            id,
        ])
        .run()
        .code(0);
    }
    // The second stamp said what the input carried.
    let third = t.path("third.png");
    let r = hm(&[
        "--json",
        "stamp",
        s(&second),
        "-o",
        s(&third),
        "--keys",
        &keys,
    ])
    .run();
    r.code(0);
    assert_eq!(r.json_lines()[0]["previous_watermark"], "2222222222222222");
    let r = hm(&[
        "stamp",
        s(&second),
        "-o",
        s(&third),
        "--keys",
        &keys,
        "--force",
    ])
    .run();
    assert!(r.stderr.contains("already stamped"), "{}", r.stderr);
    let r = hm(&[
        "--json",
        "stamp",
        s(&src),
        "-o",
        s(&t.path("fresh.png")),
        "--keys",
        &keys,
    ])
    .run();
    assert!(r.json_lines()[0].get("previous_watermark").is_none());
    let r = hm(&["--json", "verify", s(&second), "--keys", &keys]).run();
    r.code(0);
    let v = &r.json_lines()[0];
    assert_eq!(v["verdict"], "ai_edited", "{v}");
    assert_eq!(v["watermark"]["payload"], "2222222222222222");
    assert_eq!(v["consistency"], "match");
    assert_eq!(
        v["c2pa"]["digital_source_type"],
        "http://cv.iptc.org/newscodes/digitalsourcetype/compositeWithTrainedAlgorithmicMedia"
    );
    let ingredients = v["c2pa"]["ingredients"].as_array().unwrap();
    assert_eq!(ingredients.len(), 1, "{v}");
    assert_eq!(ingredients[0]["relationship"], "parentOf");
    assert!(ingredients[0]["active_manifest"].is_string(), "{v}");
}

/// "signer not trusted" says why: no anchor given, or the anchors given do not match.
#[test]
fn r18_an_untrusted_signer_is_explained() {
    let t = TestDir::new();
    let keys = t.keygen();
    let other = t.keygen_in("other");
    let img = t.write_png("in.png", 200, 160, 1);
    let out = t.path("signed.png");
    sign(&img, &out, &keys);
    let r = hm(&["verify", s(&out)]).run();
    r.code(0);
    assert!(r.stdout.contains("no trust anchor given"), "{}", r.stdout);
    let ca = Path::new(&other).join("c2pa-ca.pem");
    let r = hm(&["verify", s(&out), "--trust", s(&ca)]).run();
    r.code(0);
    assert!(
        r.stdout
            .contains("does not chain to any of the trust anchors given"),
        "{}",
        r.stdout
    );
    assert!(!r.stdout.contains("no trust anchor given"), "{}", r.stdout);
}

/// `verify DIR` checks the images and skips the rest (reports, journals, text, `.orig`
/// backups), counting verdicts; the exit code reflects images only.
#[test]
fn r18_verify_on_folders_checks_images_only() {
    let t = TestDir::new();
    let keys = t.keygen();
    let dir = t.dir("d");
    for (i, name) in ["a.png", "b.png"].iter().enumerate() {
        let src = t.write_png(&format!("src{i}.png"), 200, 160, i as u64);
        hm(&["stamp", s(&src), "-o", s(&dir.join(name)), "--keys", &keys])
            .run()
            .code(0);
    }
    std::fs::write(dir.join("report.jsonl"), "{\"rel\":\"a.png\"}\n").unwrap();
    std::fs::write(dir.join("notes.txt"), "not an image\n").unwrap();
    std::fs::copy(t.path("src0.png"), dir.join("a.png.orig")).unwrap();
    let r = hm(&["verify", s(&dir), "--keys", &keys]).run();
    r.code(0);
    assert!(
        r.stdout.contains("summary: 2 images: 2 ai generated"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("2 other files skipped"), "{}", r.stdout);
    let r = hm(&[
        "--json",
        "verify",
        s(&dir),
        "--keys",
        &keys,
        "--exclude",
        "b.*",
    ])
    .run();
    r.code(0);
    assert_eq!(r.json_lines().len(), 1, "{}", r.stdout);
    let r = hm(&[
        "--json",
        "verify",
        s(&dir),
        "--keys",
        &keys,
        "--include",
        "b.png",
    ])
    .run();
    r.code(0);
    let v = r.json_lines();
    assert_eq!(v.len(), 1);
    assert!(v[0]["file"].as_str().unwrap().ends_with("b.png"));
    // A text file named on the command line is still an error.
    hm(&["verify", s(&dir.join("notes.txt"))]).run().code(2);
}

/// Every subcommand's help ends with examples.
#[test]
fn r18_every_subcommand_help_ends_with_examples() {
    for cmd in [
        &["keygen"][..],
        &["stamp"],
        &["verify"],
        &["label"],
        &["sign"],
        &["strip"],
        &["completions"],
        &["image", "embed"],
        &["image", "detect"],
        &["text", "generate"],
        &["text", "detect"],
        &["ledger", "verify"],
        &["ledger", "head"],
    ] {
        let mut args = cmd.to_vec();
        args.push("--help");
        let r = hm(&args).run();
        r.code(0);
        let tail = r.stdout.rsplit("Examples:").next().unwrap_or_default();
        assert!(r.stdout.contains("Examples:"), "{cmd:?}");
        assert!(
            tail.lines()
                .filter(|l| l.trim_start().starts_with("hallmark ") || l.contains("| hallmark "))
                .count()
                >= 2,
            "{cmd:?}: {tail}"
        );
    }
}

/// `label --dry-run` follows the journal and the real run's rules, and writes nothing.
#[test]
fn r18_dry_run_says_what_the_real_run_would_do() {
    let t = TestDir::new();
    let keys = t.keygen();
    let root = t.dir("in");
    for i in 0..3 {
        t.write_png(&format!("in/{i}.png"), 200, 160, i);
    }
    std::fs::write(root.join("notes.txt"), "text").unwrap();
    let out = t.path("out");
    label_into(&root, &out, &keys).code(0);
    let journal = std::fs::read(out.join(".hallmark-journal.jsonl")).unwrap();
    // One input edited, one added.
    t.write_png("in/0.png", 200, 160, 40);
    t.write_png("in/3.png", 200, 160, 3);
    let dry = |extra: &[&str]| {
        let mut args = vec![
            "--json",
            "label",
            s(&root),
            "--out-dir",
            s(&out),
            "--keys",
            &keys,
            "--dry-run",
        ];
        args.extend_from_slice(extra);
        hm(&args).run()
    };
    // Without --resume the real run refuses the existing journal: so does the dry run.
    dry(&[]).code(2);
    let r = dry(&["--resume"]);
    r.code(0);
    let mut actions: Vec<(String, String)> = r
        .json_lines()
        .iter()
        .map(|v| {
            let f = v["file"].as_str().unwrap();
            (
                Path::new(f)
                    .file_name()
                    .unwrap()
                    .to_string_lossy()
                    .into_owned(),
                v["action"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    actions.sort();
    let want = [
        ("0.png", "stamp"),
        ("1.png", "already_done"),
        ("2.png", "already_done"),
        ("3.png", "stamp"),
        ("notes.txt", "already_done"),
    ];
    assert_eq!(
        actions,
        want.map(|(a, b)| (a.to_string(), b.to_string())).to_vec()
    );
    assert_eq!(
        std::fs::read(out.join(".hallmark-journal.jsonl")).unwrap(),
        journal
    );
    assert!(!out.join("3.png").exists());
}

/// `label --json` streams one object per file, then the summary; `strip --json` prints its
/// result.
#[test]
fn r18_label_and_strip_speak_json() {
    let t = TestDir::new();
    let keys = t.keygen();
    let root = t.dir("in");
    for i in 0..3 {
        t.write_png(&format!("in/{i}.png"), 200, 160, i);
    }
    let r = hm(&[
        "--json",
        "label",
        s(&root),
        "--out-dir",
        s(&t.path("out")),
        "--keys",
        &keys,
    ])
    .run();
    r.code(0);
    let v = r.json_lines();
    assert_eq!(v.len(), 4, "{}", r.stdout);
    assert!(
        v[..3]
            .iter()
            .all(|o| o["status"] == "stamped" && o["rel"].is_string())
    );
    assert_eq!(v[3]["summary"], true);
    let r = hm(&[
        "--json",
        "strip",
        s(&root.join("0.png")),
        "-o",
        s(&t.path("s.png")),
    ])
    .run();
    r.code(0);
    let v = &r.json_lines()[0];
    assert_eq!(v["format"], "png");
    assert_eq!(v["width"], 200);
    assert!(v["output_sha256"].as_str().is_some_and(|h| h.len() == 64));
}

/// The JSON Schema committed under docs/ is the one the code generates: a change to an
/// output type without regenerating it fails here (and so in CI).
#[test]
fn r18_committed_json_schema_matches_the_code() {
    let r = hm(&["schema"]).run();
    r.code(0);
    let generated: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert!(
        &generated == json_schemas(),
        "docs/json-schema.json is stale: run `cargo run -p hallmark-cli -- schema > docs/json-schema.json`"
    );
    // One schema can be asked for by name; an unknown name is a usage error.
    let one = hm(&["schema", "hallmark.stamp/1"]).run();
    one.code(0);
    let one: serde_json::Value = serde_json::from_str(&one.stdout).unwrap();
    assert_eq!(one, generated["schemas"]["hallmark.stamp/1"]);
    hm(&["schema", "hallmark.nothing/9"]).run().code(2);
}

/// Every command's `--json` objects carry `schema` and `file` and match the schema (checked
/// by `json_lines`), results and failures alike; errors are `{code, message}`.
#[test]
fn r18_every_command_speaks_one_json_contract() {
    let t = TestDir::new();
    let keys_dir = t.path("k2");
    let r = hm(&["--json", "keygen", "--out", s(&keys_dir)]).run();
    r.code(0);
    let v = r.json_lines();
    assert_eq!(v[0]["schema"], "hallmark.keygen/1");
    assert_eq!(v[0]["file"], s(&keys_dir));
    let keys = s(&keys_dir).to_string();
    let img = t.write_png("in.png", 256, 192, 3);
    let junk = t.path("junk.png");
    std::fs::write(&junk, b"not an image at all").unwrap();
    let missing = t.path("missing.png");
    let out = t.path("out.png");
    let ledger = t.path("ledger.jsonl");

    // stamp: one object per input, the failures in order among them.
    let r = hm(&[
        "--json",
        "stamp",
        s(&img),
        s(&junk),
        s(&missing),
        "--out-dir",
        s(&t.dir("st")),
        "--keys",
        &keys,
        "--ledger",
        s(&ledger),
    ])
    .run();
    r.code(2);
    let v = r.json_lines();
    assert_eq!(v.len(), 3, "{}", r.stdout);
    assert!(v.iter().all(|o| o["schema"] == "hallmark.stamp/1"));
    assert_eq!(v[0]["file"], s(&img));
    assert!(v[0]["payload"].is_string());
    assert_eq!(v[1]["error"]["code"], "invalid_input", "{}", v[1]);
    assert_eq!(v[2]["error"]["code"], "not_found", "{}", v[2]);
    assert!(
        v[2]["error"]["message"]
            .as_str()
            .unwrap()
            .contains("missing.png")
    );
    let stamped = t.path("st/in.png");

    // An existing output: output_exists, and the file is kept.
    std::fs::write(&out, b"keep").unwrap();
    let r = hm(&["--json", "stamp", s(&img), "-o", s(&out), "--keys", &keys]).run();
    r.code(2);
    assert_eq!(r.json_lines()[0]["error"]["code"], "output_exists");
    assert_eq!(std::fs::read(&out).unwrap(), b"keep");

    // verify: reports and failures; the soft-binding value is hex, like the payload.
    let r = hm(&["--json", "verify", s(&stamped), s(&junk), "--keys", &keys]).run();
    r.code(2);
    let v = r.json_lines();
    assert_eq!(v[0]["schema"], "hallmark.report/2");
    assert_eq!(
        v[0]["c2pa"]["soft_bindings"][0]["value"], v[0]["watermark"]["payload"],
        "{}",
        v[0]
    );
    assert_eq!(v[1]["error"]["code"], "invalid_input");

    // A whole-command failure (an unreadable key) still answers once per input.
    let r = hm(&[
        "--json",
        "verify",
        s(&stamped),
        s(&img),
        "--keys",
        s(&missing),
    ])
    .run();
    r.code(2);
    let v = r.json_lines();
    assert_eq!(v.len(), 2, "{}", r.stdout);
    assert!(v.iter().all(|o| o["error"]["code"] == "not_found"), "{v:?}");

    // The single-input commands, results and failures.
    let cases: Vec<(Vec<String>, &str)> = vec![
        (
            vec![
                "sign".into(),
                s(&img).into(),
                "-o".into(),
                s(&t.path("sg.png")).into(),
                "--keys".into(),
                keys.clone(),
            ],
            "hallmark.sign/1",
        ),
        (
            vec![
                "strip".into(),
                s(&stamped).into(),
                "-o".into(),
                s(&t.path("sp.png")).into(),
            ],
            "hallmark.strip/1",
        ),
        (
            vec![
                "image".into(),
                "embed".into(),
                "--key".into(),
                keys.clone(),
                s(&img).into(),
                "-o".into(),
                s(&t.path("e.png")).into(),
            ],
            "hallmark.embed/1",
        ),
        (
            vec![
                "image".into(),
                "detect".into(),
                "--key".into(),
                keys.clone(),
                s(&stamped).into(),
            ],
            "hallmark.detect/1",
        ),
        (
            vec![
                "ledger".into(),
                "verify".into(),
                s(&ledger).into(),
                "--keys".into(),
                keys.clone(),
            ],
            "hallmark.ledger-verify/1",
        ),
        (
            vec![
                "ledger".into(),
                "head".into(),
                s(&ledger).into(),
                "--keys".into(),
                keys.clone(),
            ],
            "hallmark.ledger-head/1",
        ),
    ];
    for (args, schema) in cases {
        let mut a: Vec<&str> = vec!["--json"];
        a.extend(args.iter().map(String::as_str));
        let r = hm(&a).run();
        r.code(0);
        let v = r.json_lines();
        assert_eq!(v.len(), 1, "{a:?}: {}", r.stdout);
        assert_eq!(v[0]["schema"], schema, "{a:?}");
        // The same command on a file that does not exist: an error object of that schema.
        let mut bad = a.clone();
        let pos = bad
            .iter()
            .position(|x| *x == s(&img) || *x == s(&stamped) || *x == s(&ledger))
            .unwrap();
        bad[pos] = s(&missing);
        if bad.contains(&"-o") {
            bad.push("--force"); // the first run wrote the output
        }
        let r = hm(&bad).run();
        r.code(2);
        let v = r.json_lines();
        assert_eq!(v.len(), 1, "{bad:?}: {}", r.stdout);
        assert_eq!(v[0]["schema"], schema, "{bad:?}");
        assert_eq!(v[0]["file"], s(&missing), "{bad:?}");
        assert_eq!(v[0]["error"]["code"], "not_found", "{bad:?}: {}", v[0]);
    }

    // label: per-file objects (a failure among them), the plan, the summary.
    let root = t.dir("lab");
    t.write_png("lab/a.png", 200, 160, 1);
    std::fs::write(root.join("b.png"), b"\x89PNG\r\n\x1a\n broken").unwrap();
    let lout = t.path("lab-out");
    let plan = hm(&[
        "--json",
        "label",
        s(&root),
        "--out-dir",
        s(&lout),
        "--keys",
        &keys,
        "--dry-run",
    ])
    .run();
    plan.code(0);
    let v = plan.json_lines();
    assert!(
        v.iter().all(|o| o["schema"] == "hallmark.label-plan/1"),
        "{}",
        plan.stdout
    );
    let r = hm(&[
        "--json",
        "label",
        s(&root),
        "--out-dir",
        s(&lout),
        "--keys",
        &keys,
    ])
    .run();
    let v = r.json_lines();
    let failed: Vec<_> = v.iter().filter(|o| o["status"] == "failed").collect();
    assert_eq!(failed.len(), 1, "{}", r.stdout);
    assert_eq!(failed[0]["error"]["code"], "invalid_input");
    assert_eq!(v.last().unwrap()["schema"], "hallmark.label-summary/1");
}

/// `--json-version 1` (or HALLMARK_JSON_VERSION=1) gives scripts written against 0.1 the
/// shapes they parse: `error` a string, soft-binding values byte arrays, report/1.
#[test]
fn r18_json_version_1_keeps_old_scripts_working() {
    let t = TestDir::new();
    let keys = t.keygen();
    let img = t.write_png("in.png", 256, 192, 4);
    let out = t.path("out.png");
    hm(&["stamp", s(&img), "-o", s(&out), "--keys", &keys])
        .run()
        .code(0);
    let junk = t.path("junk.png");
    std::fs::write(&junk, b"junk").unwrap();
    let by_flag = hm(&[
        "--json",
        "--json-version",
        "1",
        "verify",
        s(&out),
        s(&junk),
        "--keys",
        &keys,
    ])
    .run();
    let by_env = hm(&["--json", "verify", s(&out), s(&junk), "--keys", &keys])
        .env("HALLMARK_JSON_VERSION", "1")
        .run();
    for r in [by_flag, by_env] {
        r.code(2);
        let v = r.json_lines();
        assert_eq!(v[0]["schema"], "hallmark.report/1");
        let bytes = v[0]["c2pa"]["soft_bindings"][0]["value"]
            .as_array()
            .unwrap();
        let hex: String = bytes
            .iter()
            .map(|b| format!("{:02x}", b.as_u64().unwrap()))
            .collect();
        assert_eq!(hex, v[0]["watermark"]["payload"].as_str().unwrap());
        assert!(v[1]["error"].is_string(), "{}", v[1]);
    }
}
