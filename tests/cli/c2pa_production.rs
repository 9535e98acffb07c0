//! C2PA in production: keygen's conforming chains and every algorithm, `cert check`, a
//! bring-your-own chain and key, an external signer (and ones that fail, hang or answer
//! garbage), and time stamps from a local RFC 3161 authority.

use crate::util::*;

#[path = "../../crates/hallmark-c2pa/tests/it/tsa.rs"]
mod tsa;

fn verify(file: &std::path::Path, extra: &[&str]) -> serde_json::Value {
    let mut a = vec!["verify", "--json", file.to_str().unwrap()];
    a.extend_from_slice(extra);
    hm(&a)
        .run()
        .json_lines()
        .into_iter()
        .next()
        .expect("a report")
}

fn keygen_alg(t: &TestDir, alg: &str) -> String {
    let dir = t.path(&format!("keys-{alg}"));
    hm(&["keygen", "--out", dir.to_str().unwrap(), "--alg", alg, "-q"])
        .run()
        .code(0);
    dir.to_str().unwrap().to_string()
}

/// Every algorithm keygen offers: an ECDSA P-256 CA, a chain that passes `cert check`, and
/// stamped files that verify Trusted with the CA as anchor. A chain with an Ed25519 CA (what
/// keygen made before) is reported as off-policy.
#[test]
fn keygen_chains_pass_the_profile_for_every_algorithm() {
    let t = TestDir::new();
    let img = t.write_png("a.png", 320, 240, 3);
    for alg in ["ed25519", "es256", "es384", "ps256"] {
        let keys = keygen_alg(&t, alg);
        let chain = format!("{keys}/c2pa-chain.pem");
        let r = hm(&["cert", "check", "--json", &chain]).run();
        r.code(0);
        let rep = &r.json_lines()[0];
        assert_eq!(rep["ok"], true, "{alg}: {rep}");
        assert_eq!(rep["alg"], alg);
        assert_eq!(rep["certificates"][1]["key"], "ecdsa P-256");
        let out = t.path(&format!("s-{alg}.png"));
        hm(&[
            "stamp",
            img.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
            "--keys",
            &keys,
            "-q",
            "--no-webp-check",
        ])
        .run()
        .code(0);
        let v = verify(&out, &["--keys", &keys]);
        assert_eq!(v["c2pa"]["validation_state"], "Trusted", "{alg}: {v}");
        assert_eq!(
            v["c2pa"]["signer"]["alg"].as_str().unwrap().to_lowercase(),
            alg
        );
        assert_eq!(v["verdict"], "ai_generated");
    }
    // An end-entity certificate that is not one: the CA itself as signer.
    let keys = t.path("keys-es384");
    let r = hm(&["cert", "check", &format!("{}/c2pa-ca.pem", keys.display())]).run();
    r.code(3);
    assert!(r.stdout.contains("problem"), "{}", r.stdout);
}

/// A chain and key from elsewhere (here keygen's, moved out of the folder), the watermark
/// key from the folder; a key for another certificate is refused before anything is written.
#[test]
fn a_bring_your_own_chain_signs_and_a_mismatched_key_is_refused() {
    let t = TestDir::new();
    let wm = t.keygen();
    let ca = keygen_alg(&t, "es256");
    let other = keygen_alg(&t, "es384");
    let img = t.write_png("a.png", 320, 240, 4);
    let out = t.path("byo.png");
    let run = |key: &str, out: &std::path::Path| {
        hm(&[
            "stamp",
            img.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
            "--keys",
            &wm,
            "--cert",
            &format!("{ca}/c2pa-chain.pem"),
            "--private-key",
            key,
            "--no-webp-check",
        ])
        .run()
    };
    run(&format!("{ca}/c2pa-signing.key"), &out).code(0);
    let v = verify(
        &out,
        &["--keys", &wm, "--trust", &format!("{ca}/c2pa-ca.pem")],
    );
    assert_eq!(v["c2pa"]["validation_state"], "Trusted", "{v}");
    // The watermark came from --keys, the signature from --cert: both agree.
    assert_eq!(v["consistency"], "match", "{v}");
    let bad = t.path("bad.png");
    let r = run(&format!("{other}/c2pa-signing.key"), &bad);
    r.code(2);
    assert!(r.stderr.contains("cannot sign"), "{}", r.stderr);
    assert!(!bad.exists());
    // --private-key without --cert is a usage error.
    hm(&[
        "sign",
        img.to_str().unwrap(),
        "-o",
        bad.to_str().unwrap(),
        "--keys",
        &wm,
        "--private-key",
        "x.pem",
    ])
    .run()
    .code(2);
    assert!(!bad.exists());
}

fn write_script(t: &TestDir, name: &str, body: &str) -> String {
    let p = t.path(name);
    std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    p.to_str().unwrap().to_string()
}

/// An external signer holds the key (here openssl over a key file, as a KMS or PKCS#11
/// script would); signers that fail, hang or answer garbage give a clear error and no file.
#[test]
fn an_external_signer_signs_and_a_broken_one_writes_nothing() {
    let t = TestDir::new();
    let wm = t.keygen();
    let es = keygen_alg(&t, "es256");
    let ed = keygen_alg(&t, "ed25519");
    let img = t.write_png("a.png", 320, 240, 5);
    let ecdsa = write_script(
        &t,
        "ecdsa.sh",
        &format!("exec openssl dgst -sha256 -sign {es}/c2pa-signing.key"),
    );
    let eddsa = write_script(
        &t,
        "eddsa.sh",
        &format!(
            "f=$(mktemp) && cat > \"$f\" && openssl pkeyutl -sign -inkey {ed}/c2pa-signing.key -rawin -in \"$f\"; r=$?; rm -f \"$f\"; exit $r"
        ),
    );
    for (keys, script) in [(&es, &ecdsa), (&ed, &eddsa)] {
        let out = t.path("ext.png");
        let _ = std::fs::remove_file(&out);
        hm(&[
            "stamp",
            img.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
            "--keys",
            &wm,
            "--cert",
            &format!("{keys}/c2pa-chain.pem"),
            "--signer-command",
            script,
            "--no-webp-check",
        ])
        .run()
        .code(0);
        let v = verify(
            &out,
            &["--keys", &wm, "--trust", &format!("{keys}/c2pa-ca.pem")],
        );
        assert_eq!(v["c2pa"]["validation_state"], "Trusted", "{script}: {v}");
    }
    let failing = write_script(&t, "fail.sh", "echo 'HSM: slot 3 locked' >&2; exit 5");
    let hanging = write_script(&t, "hang.sh", "sleep 30");
    let garbage = write_script(&t, "garbage.sh", "head -c 64 /dev/urandom");
    let silent = write_script(&t, "silent.sh", "cat > /dev/null");
    for (script, why) in [
        (&failing, "slot 3 locked"),
        (&hanging, "did not answer within"),
        (&garbage, "does not verify"),
        (&silent, "no signature"),
    ] {
        let out = t.path("never.png");
        let r = hm(&[
            "sign",
            img.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
            "--cert",
            &format!("{es}/c2pa-chain.pem"),
            "--signer-command",
            script,
            "--signer-timeout",
            "2",
        ])
        .run();
        r.code(2);
        assert!(r.stderr.contains(why), "{script}: {}", r.stderr);
        assert!(!out.exists(), "{script} left an output");
    }
}

/// `--tsa-url`: the manifest carries a time stamp that validates; an authority that is not
/// there fails the command without an output.
#[test]
fn tsa_url_time_stamps_the_manifest() {
    let tsa = tsa::LocalTsa::start();
    let t = TestDir::new();
    let keys = keygen_alg(&t, "es256");
    let img = t.write_png("a.png", 320, 240, 6);
    let out = t.path("ts.png");
    hm(&[
        "sign",
        img.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "--keys",
        &keys,
        "--tsa-url",
        &tsa.url,
    ])
    .run()
    .code(0);
    let anchors = t.path("anchors.pem");
    std::fs::write(
        &anchors,
        format!(
            "{}{}",
            std::fs::read_to_string(format!("{keys}/c2pa-ca.pem")).unwrap(),
            tsa.root_pem()
        ),
    )
    .unwrap();
    let v = verify(
        &out,
        &["--keys", &keys, "--trust", anchors.to_str().unwrap()],
    );
    assert_eq!(v["c2pa"]["validation_state"], "Trusted", "{v}");
    let success: Vec<&str> = v["c2pa"]["success"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["code"].as_str().unwrap())
        .collect();
    assert!(success.contains(&"timeStamp.validated"), "{success:?}");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let none = t.path("none.png");
    let r = hm(&[
        "sign",
        img.to_str().unwrap(),
        "-o",
        none.to_str().unwrap(),
        "--keys",
        &keys,
        "--tsa-url",
        &format!("http://127.0.0.1:{port}/"),
    ])
    .run();
    r.code(2);
    assert!(r.stderr.contains("time-stamp authority"), "{}", r.stderr);
    assert!(!none.exists());
}

/// c2patool's trust options: anchors, a trust list, an allowed list (certificates or their
/// hashes), a trust config, from flags, environment variables and a settings file; the
/// report names the rule that made the signer trusted.
#[test]
fn trust_comes_from_anchors_lists_and_settings_and_the_report_names_the_rule() {
    let t = TestDir::new();
    let keys = keygen_alg(&t, "es256");
    let img = t.write_png("a.png", 240, 180, 7);
    let out = t.path("s.png");
    hm(&[
        "sign",
        img.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "--keys",
        &keys,
    ])
    .run()
    .code(0);
    let chain = std::fs::read_to_string(format!("{keys}/c2pa-chain.pem")).unwrap();
    let ee_pem = chain
        .split_inclusive("-----END CERTIFICATE-----\n")
        .next()
        .unwrap();
    let allowed = t.path("allowed.pem");
    std::fs::write(&allowed, ee_pem).unwrap();
    let ca = format!("{keys}/c2pa-ca.pem");
    let rule = |v: &serde_json::Value| v["c2pa"]["trusted_by"]["rule"].as_str().map(str::to_string);

    let v = verify(&out, &[]);
    assert_eq!(v["c2pa"]["validation_state"], "Valid");
    assert_eq!(rule(&v), None);
    let v = verify(&out, &["--trust", &ca]);
    assert_eq!(rule(&v).as_deref(), Some("user_anchor"), "{v}");
    assert!(
        v["c2pa"]["trusted_by"]["anchor"]
            .as_str()
            .unwrap()
            .contains("local CA")
    );
    let v = verify(&out, &["--trust-anchors", &ca]);
    assert_eq!(rule(&v).as_deref(), Some("trust_list"), "{v}");
    let v = verify(&out, &["--allowed-list", allowed.to_str().unwrap()]);
    assert_eq!(v["c2pa"]["validation_state"], "Trusted", "{v}");
    assert_eq!(rule(&v).as_deref(), Some("allowed_list"));
    assert!(v["summary"].as_str().unwrap().contains("allowed list"));
    // c2patool's environment variable names work too.
    let r = hm(&["verify", "--json", out.to_str().unwrap()])
        .env("C2PATOOL_ALLOWED_LIST", allowed.to_str().unwrap())
        .run();
    assert_eq!(rule(&r.json_lines()[0]).as_deref(), Some("allowed_list"));
    // A settings file in c2pa's layout, with a path relative to it and inline content.
    let settings = t.path("trust.toml");
    std::fs::write(
        &settings,
        "[trust]\nuser_anchors = \"keys-es256/c2pa-ca.pem\"\ntrust_config = \"1.3.6.1.5.5.7.3.36\\n1.3.6.1.5.5.7.3.4\\n\"\n",
    )
    .unwrap();
    let v = verify(&out, &["--trust-settings", settings.to_str().unwrap()]);
    assert_eq!(rule(&v).as_deref(), Some("user_anchor"), "{v}");
    // Malformed inputs are clear errors, not a quiet "untrusted".
    std::fs::write(&settings, "[trust]\nno_such_key = 1\n").unwrap();
    hm(&[
        "verify",
        out.to_str().unwrap(),
        "--trust-settings",
        settings.to_str().unwrap(),
    ])
    .run()
    .code(2);
    let eku = t.path("eku.cfg");
    std::fs::write(&eku, "documentSigning\n").unwrap();
    let r = hm(&[
        "verify",
        out.to_str().unwrap(),
        "--trust-config",
        eku.to_str().unwrap(),
    ])
    .run();
    r.code(2);
    assert!(r.stderr.contains("not an OID"), "{}", r.stderr);
    let r = hm(&[
        "verify",
        out.to_str().unwrap(),
        "--allowed-list",
        "https://example.com/list.pem",
    ])
    .run();
    r.code(2);
    assert!(r.stderr.contains("offline"), "{}", r.stderr);
}
