use super::*;

#[test]
fn key_id_known_answer() {
    // A change to the ID derivation would orphan every issued key: pin it.
    let key = WatermarkKey::from_bytes([0u8; 32]);
    assert_eq!(key.id().to_string(), KNOWN_ID_ZERO);
    let other = WatermarkKey::from_bytes([1u8; 32]);
    assert_ne!(key.id(), other.id());
}

const KNOWN_ID_ZERO: &str = include_str!("kat_id_zero.txt");

#[test]
fn file_round_trip_and_debug_hides_secret() {
    let key = WatermarkKey::from_bytes([0xab; 32]);
    let text = key.to_file_string();
    let back = WatermarkKey::from_file_str(&text).expect("parses");
    assert_eq!(back.id(), key.id());
    let dbg = format!("{key:?}");
    assert!(!dbg.contains("abab"), "{dbg}");
    assert!(dbg.contains(&key.id().to_string()));
}

#[test]
fn rejects_bad_files() {
    for bad in [
        "",
        "hallmark-watermark-key v9\n00",
        "zz",
        "hallmark-watermark-key v1\n1234",
    ] {
        assert!(WatermarkKey::from_file_str(bad).is_err(), "{bad:?}");
    }
}

#[test]
fn derive_separates_labels() {
    let key = WatermarkKey::from_bytes([3u8; 32]);
    assert_ne!(key.derive("a"), key.derive("b"));
    assert_eq!(key.derive("a"), key.derive("a"));
}
