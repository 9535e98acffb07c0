//! Batch labelling: mirror tree, journal, report, resume after SIGKILL, bad files skipped.

use std::{path::Path, process::Command, time::Duration};

use crate::util::*;

fn make_tree(t: &TestDir, n: usize) -> std::path::PathBuf {
    let root = t.path("in");
    for i in 0..n {
        let sub = root.join(format!("d{}", i % 3));
        std::fs::create_dir_all(&sub).unwrap();
        scene(160 + (i as u32 % 4) * 16, 144, i as u64)
            .save(sub.join(format!("img{i:03}.png")))
            .unwrap();
    }
    std::fs::write(root.join("notes.txt"), "not an image").unwrap();
    std::fs::write(
        root.join("d0/broken.png"),
        &std::fs::read(root.join("d0/img000.png")).unwrap()[..300],
    )
    .unwrap();
    root
}

fn report(out: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(out.join("report.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn label_mirrors_reports_and_skips_bad_files() {
    let t = TestDir::new();
    let keys = t.keygen();
    let root = make_tree(&t, 6);
    let out = t.path("out");
    let r = hm(&[
        "label",
        root.to_str().unwrap(),
        "--out-dir",
        out.to_str().unwrap(),
        "--keys",
        &keys,
        "-j",
        "2",
    ])
    .run();
    // One corrupt image: reported, not fatal, and the exit code says something failed.
    r.code(2);
    assert!(r.stdout.contains("6 stamped"), "{}", r.stdout);
    let rep = report(&out);
    assert_eq!(rep.len(), 8);
    assert_eq!(rep.iter().filter(|v| v["status"] == "stamped").count(), 6);
    assert!(
        rep.iter()
            .any(|v| v["rel"] == "notes.txt" && v["status"] == "skipped")
    );
    assert!(
        rep.iter()
            .any(|v| v["rel"] == "d0/broken.png" && v["status"] == "failed")
    );
    for v in rep.iter().filter(|v| v["status"] == "stamped") {
        let o = out.join(v["rel"].as_str().unwrap());
        hm(&["verify", o.to_str().unwrap(), "--keys", &keys])
            .run()
            .code(0);
    }
    // Originals untouched, no output for the text file.
    assert!(!out.join("notes.txt").exists());
    // A second run without --resume refuses to mix runs.
    label_into(&root, &out, &keys).code(2);
    // Dry run writes nothing.
    let dry = t.path("dry");
    let r = hm(&[
        "label",
        root.to_str().unwrap(),
        "--out-dir",
        dry.to_str().unwrap(),
        "--keys",
        &keys,
        "--dry-run",
    ])
    .run();
    r.code(0);
    assert!(!dry.exists());
}

#[test]
fn in_place_needs_backup_and_never_stamps_twice() {
    let t = TestDir::new();
    let keys = t.keygen();
    let root = make_tree(&t, 3);
    let state = t.path("state");
    let in_place = |extra: &[&str]| {
        let mut args = vec![
            "label",
            root.to_str().unwrap(),
            "--in-place",
            "--keys",
            &keys,
        ];
        args.extend_from_slice(extra);
        hm(&args)
            .env("XDG_STATE_HOME", state.to_str().unwrap())
            .run()
    };
    let before = std::fs::read(root.join("d0/img000.png")).unwrap();
    in_place(&[]).code(2);
    assert_eq!(
        std::fs::read(root.join("d0/img000.png")).unwrap(),
        before,
        "modified without --backup"
    );
    let r = in_place(&["--backup"]);
    r.code(2); // the corrupt file
    assert_eq!(
        std::fs::read(root.join("d0/img000.png.orig")).unwrap(),
        before,
        "backup is the original"
    );
    let stamped = std::fs::read(root.join("d0/img000.png")).unwrap();
    assert_ne!(stamped, before);
    hm(&[
        "verify",
        root.join("d0/img000.png").to_str().unwrap(),
        "--keys",
        &keys,
    ])
    .run()
    .code(0);
    // Neither the journal nor the report is written into the labelled folder.
    assert!(!root.join(".hallmark-journal.jsonl").exists());
    assert!(!root.join("report.jsonl").exists());
    // Resumed with its journal: nothing is stamped twice.
    let r = in_place(&["--backup", "--resume", "--json"]);
    let sum = r.json_lines().pop().unwrap();
    assert_eq!(sum["stamped"], 0, "{sum}");
    assert_eq!(std::fs::read(root.join("d0/img000.png")).unwrap(), stamped);
    // With the journal lost, the backups are no longer known to be this run's: each such
    // file is refused (never stamped twice, never stamped from a backup someone else made).
    std::fs::remove_dir_all(&state).unwrap();
    let r = in_place(&["--backup"]);
    r.code(2);
    assert!(r.stdout.contains("already exists"), "{}", r.stdout);
    assert!(!root.join("d0/img000.png.orig.orig").exists());
    assert_eq!(std::fs::read(root.join("d0/img000.png")).unwrap(), stamped);
    assert_eq!(
        std::fs::read(root.join("d0/img000.png.orig")).unwrap(),
        before
    );
}

#[test]
fn shards_partition_the_folder() {
    let t = TestDir::new();
    let keys = t.keygen();
    let root = make_tree(&t, 9);
    let mut seen = std::collections::BTreeSet::new();
    let mut total = 0;
    for i in 0..3 {
        let r = hm(&[
            "label",
            root.to_str().unwrap(),
            "--out-dir",
            t.path("o").to_str().unwrap(),
            "--keys",
            &keys,
            "--dry-run",
            "--json",
            "--shard",
            &format!("{i}/3"),
        ])
        .run();
        r.code(0);
        for v in r.json_lines() {
            total += 1;
            seen.insert(v["file"].as_str().unwrap().to_string());
        }
    }
    assert_eq!(total, seen.len(), "a file landed in two shards");
    assert_eq!(seen.len(), 11);
    let r = hm(&[
        "label",
        root.to_str().unwrap(),
        "--out-dir",
        t.path("o").to_str().unwrap(),
        "--keys",
        &keys,
        "--dry-run",
        "--shard-from-env",
        "--json",
    ])
    .env("SLURM_ARRAY_TASK_ID", "1")
    .env("SLURM_ARRAY_TASK_COUNT", "3")
    .run();
    r.code(0);
    hm(&[
        "label",
        root.to_str().unwrap(),
        "--out-dir",
        "x",
        "--keys",
        &keys,
        "--shard",
        "3/3",
    ])
    .run()
    .code(2);
}

#[test]
fn killed_runs_resume_without_losing_or_duplicating() {
    let t = TestDir::new();
    let keys = t.keygen();
    let root = make_tree(&t, 24);
    let out = t.path("out");
    let mut rng = pseudo_random(16, 99).into_iter();
    for round in 0..4 {
        let mut args = vec![
            "label".to_string(),
            root.to_str().unwrap().into(),
            "--out-dir".into(),
            out.to_str().unwrap().into(),
            "--keys".into(),
            keys.clone(),
            "-j".into(),
            "2".into(),
            "-q".into(),
        ];
        if round > 0 {
            args.push("--resume".into());
        }
        let mut child = Command::new(BIN).args(&args).spawn().unwrap();
        let wait_ms = 40 + u64::from(rng.next().unwrap_or(0)) * 2;
        std::thread::sleep(Duration::from_millis(wait_ms));
        let _ = child.kill(); // SIGKILL
        let _ = child.wait();
    }
    let r = hm(&[
        "label",
        root.to_str().unwrap(),
        "--out-dir",
        out.to_str().unwrap(),
        "--keys",
        &keys,
        "--resume",
        "--json",
    ])
    .run();
    r.code(2); // the broken file
    let rep = report(&out);
    let stamped: Vec<_> = rep.iter().filter(|v| v["status"] == "stamped").collect();
    assert_eq!(
        stamped.len(),
        24,
        "every image stamped exactly once in the report"
    );
    // Every output is complete and valid (one verify over the folder); no temporary files
    // left behind.
    let v = hm(&["verify", out.to_str().unwrap(), "--keys", &keys, "--json"]).run();
    v.code(0);
    let verdicts: std::collections::BTreeMap<String, String> = v
        .json_lines()
        .into_iter()
        .map(|j| {
            let f = j["file"].as_str().unwrap().to_string();
            (f, j["verdict"].as_str().unwrap_or("error").to_string())
        })
        .collect();
    for s in &stamped {
        let o = out.join(s["rel"].as_str().unwrap());
        assert_eq!(
            verdicts.get(o.to_str().unwrap()).map(String::as_str),
            Some("ai_generated"),
            "{o:?}: {verdicts:?}"
        );
    }
    let leftovers: Vec<_> = walk_files(&out)
        .into_iter()
        .filter(|p| p.to_string_lossy().ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    let outputs = walk_files(&out)
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "png"))
        .count();
    assert_eq!(outputs, 24);
}

#[test]
fn unwritable_output_gives_a_clear_error() {
    let t = TestDir::new();
    let keys = t.keygen();
    let root = make_tree(&t, 2);
    // An output folder that cannot be created (its parent is a file): fails for root too,
    // unlike a permission bit.
    let blocker = t.path("blocker");
    std::fs::write(&blocker, "a file, not a folder").unwrap();
    let out = blocker.join("out");
    let r = label_into(&root, &out, &keys);
    r.code(2);
    assert!(r.stderr.contains("cannot create"), "{}", r.stderr);
    // A read-only output folder (effective only when not running as root).
    use std::os::unix::fs::PermissionsExt;
    let ro = t.path("ro");
    std::fs::create_dir(&ro).unwrap();
    std::fs::set_permissions(&ro, std::fs::Permissions::from_mode(0o555)).unwrap();
    let probe = std::fs::write(ro.join("probe"), "x").is_err();
    if probe {
        let r = label_into(&root, &ro, &keys);
        r.code(2);
        assert!(r.stderr.contains("cannot"), "{}", r.stderr);
    }
}
