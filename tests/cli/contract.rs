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
    let dir = t.path("o");
    std::fs::create_dir(&dir).unwrap();
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
