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
