use super::*;

#[test]
fn capped_reads_stop_at_the_cap_for_devices_too() {
    let e = read_capped(Path::new("/dev/zero"), 4096, "key").unwrap_err();
    assert!(
        format!("{e:#}").contains("longer than the 4 KiB limit"),
        "{e:#}"
    );
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("k");
    fs::write(&p, vec![b'a'; 5000]).unwrap();
    let e = read_capped(&p, 4096, "key").unwrap_err();
    assert!(format!("{e:#}").contains("over the 4 KiB limit"), "{e:#}");
    fs::write(&p, vec![b'a'; 4096]).unwrap();
    assert_eq!(read_capped(&p, 4096, "key").unwrap().len(), 4096);
}

#[cfg(unix)]
#[test]
fn symlinked_outputs_replace_their_target_and_keep_the_link() {
    let d = tempfile::tempdir().unwrap();
    let real = d.path().join("real.txt");
    fs::write(&real, "old").unwrap();
    let link = d.path().join("link.txt");
    std::os::unix::fs::symlink(&real, &link).unwrap();
    write_atomic(&link, b"new", None).unwrap();
    assert!(
        fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert_eq!(fs::read_to_string(&real).unwrap(), "new");
    let dangling = d.path().join("dangling.txt");
    std::os::unix::fs::symlink(d.path().join("missing"), &dangling).unwrap();
    assert!(write_atomic(&dangling, b"x", None).is_err());
    assert!(
        fs::symlink_metadata(&dangling)
            .unwrap()
            .file_type()
            .is_symlink()
    );
}

#[cfg(unix)]
#[test]
fn devices_are_written_through_never_replaced() {
    use std::os::unix::fs::FileTypeExt;
    write_atomic(Path::new("/dev/null"), b"through", None).unwrap();
    assert!(
        fs::metadata("/dev/null")
            .unwrap()
            .file_type()
            .is_char_device()
    );
}

#[cfg(unix)]
#[test]
fn outputs_get_the_umask_mode_and_keys_0600() {
    use std::os::unix::fs::PermissionsExt;
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("out.bin");
    write_atomic(&out, b"x", None).unwrap();
    let mode = fs::metadata(&out).unwrap().permissions().mode() & 0o777;
    // Whatever the umask, group/other may read unless it masks them; never 0600 by fiat.
    assert_ne!(mode & 0o444, 0o400, "mode {mode:o}");
    let key = d.path().join("k.key");
    write_atomic(&key, b"x", Some(0o600)).unwrap();
    assert_eq!(
        fs::metadata(&key).unwrap().permissions().mode() & 0o777,
        0o600
    );
}

/// A keys folder `keygen` writes is what the facade's `Keys::load` reads: stamping and
/// verifying with it need no file names (the stamped photo verifies, trusted by the folder's
/// CA, with the watermark found); a missing key file is a `not_found` error naming it.
#[test]
fn the_facade_loads_a_keys_folder_in_one_call() {
    use hallmark::c2pa::{CertOptions, KeyAlg};
    let t = tempfile::tempdir().expect("temp dir");
    for (name, alg) in [("ed", KeyAlg::Ed25519), ("es", KeyAlg::Es256)] {
        let dir = t.path().join(name);
        let opts = CertOptions {
            alg,
            ..CertOptions::default()
        };
        crate::keys::generate(&dir, &opts, &hallmark::text::Config::kgw(), false).expect("keygen");
        let keys = hallmark::keys::Keys::load(&dir).expect("loads");
        assert_eq!(keys.text, hallmark::text::Config::kgw());
        assert!(keys.signer.record_key().is_some(), "{name}: a ledger key");
        let verifier = keys.verifier();
        let photo = std::fs::read(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../../testdata/photos/p02_coffee_600x400.png"),
        )
        .expect("photo");
        let stamped = hallmark::stamp(&photo, &keys.stamper(), None).expect("stamps");
        let report = hallmark::verify(&stamped.bytes, None, &verifier).expect("verifies");
        assert_eq!(report.verdict, hallmark::Verdict::AiGenerated, "{name}");
        assert_eq!(
            report.c2pa.map(|c| c.validation_state),
            Some(hallmark::c2pa::ValidationState::Trusted),
            "{name}"
        );
        assert_eq!(
            report.watermark.and_then(|d| d.payload),
            Some(stamped.payload),
            "{name}"
        );
    }
    std::fs::remove_file(t.path().join("ed").join(crate::keys::WATERMARK_KEY)).expect("rm");
    let e = hallmark::keys::Keys::load(&t.path().join("ed")).expect_err("no watermark key");
    assert_eq!(e.code(), hallmark::ErrorCode::NotFound);
    assert!(e.message().contains("watermark.key"), "{}", e.message());
}
