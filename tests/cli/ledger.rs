//! The accountability ledger through the CLI.

use crate::util::*;

#[test]
fn stamps_are_recorded_and_resolve_a_stripped_copy() {
    let t = TestDir::new();
    let keys = t.keygen();
    let ledger = t.path("ledger.jsonl");
    let l = ledger.to_str().unwrap();
    let src = photo("p06_seeding_1920x1080.jpg");
    let out = t.path("s.jpg");
    hm(&[
        "stamp",
        src.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "--keys",
        &keys,
        "--model",
        "acme-gen",
        "--payload",
        "1122334455667788",
        "--ledger",
        l,
    ])
    .run()
    .code(0);
    let second = t.write_png("b.png", 300, 300, 2);
    hm(&[
        "stamp",
        second.to_str().unwrap(),
        "-o",
        t.path("b-s.png").to_str().unwrap(),
        "--keys",
        &keys,
        "--ledger",
        l,
    ])
    .run()
    .code(0);
    hm(&["ledger", "verify", l, "--keys", &keys]).run().code(0);
    // Stripped copy: the ledger says who, when, which model.
    let stripped = t.path("stripped.jpg");
    hm(&[
        "strip",
        out.to_str().unwrap(),
        "-o",
        stripped.to_str().unwrap(),
    ])
    .run()
    .code(0);
    let r = hm(&[
        "verify",
        stripped.to_str().unwrap(),
        "--keys",
        &keys,
        "--ledger",
        l,
    ])
    .run();
    r.code(0);
    assert!(
        r.stdout.contains("ledger: stamped") && r.stdout.contains("acme-gen"),
        "{}",
        r.stdout
    );
    let r = hm(&[
        "verify",
        "--json",
        stripped.to_str().unwrap(),
        "--keys",
        &keys,
        "--ledger",
        l,
    ])
    .run();
    let v = &r.json_lines()[0];
    assert_eq!(v["ledger"][0]["watermark_id"], "1122334455667788", "{v}");
}

#[test]
fn edited_deleted_and_reordered_records_are_named() {
    let t = TestDir::new();
    let keys = t.keygen();
    let ledger = t.path("ledger.jsonl");
    let l = ledger.to_str().unwrap();
    for i in 0..3 {
        let p = t.write_png(&format!("i{i}.png"), 200, 200, i);
        hm(&[
            "stamp",
            p.to_str().unwrap(),
            "-o",
            t.path(&format!("o{i}.png")).to_str().unwrap(),
            "--keys",
            &keys,
            "--ledger",
            l,
        ])
        .run()
        .code(0);
    }
    let good = std::fs::read_to_string(&ledger).unwrap();
    let lines: Vec<&str> = good.lines().collect();
    assert_eq!(lines.len(), 3);
    let check = |text: String, line: u64| {
        std::fs::write(&ledger, text).unwrap();
        let r = hm(&["ledger", "verify", "--json", l]).run();
        r.code(3);
        assert_eq!(r.json_lines()[0]["first_broken_line"], line, "{}", r.stdout);
    };
    check(
        good.replacen("\"model\":null", "\"model\":\"forged\"", 1),
        1,
    );
    check(format!("{}\n{}\n", lines[0], lines[2]), 2);
    check(format!("{}\n{}\n{}\n", lines[0], lines[2], lines[1]), 2);
    // Appending to a broken ledger is refused.
    let p = t.write_png("x.png", 200, 200, 9);
    let r = hm(&[
        "stamp",
        p.to_str().unwrap(),
        "-o",
        t.path("xo.png").to_str().unwrap(),
        "--keys",
        &keys,
        "--ledger",
        l,
    ])
    .run();
    r.code(2);
    assert!(r.stderr.contains("broken"), "{}", r.stderr);
    // A ledger signed by someone else is refused when the signer is pinned.
    std::fs::write(&ledger, &good).unwrap();
    let other = t.keygen_in("other");
    hm(&["ledger", "verify", l, "--keys", &other]).run().code(3);
}
