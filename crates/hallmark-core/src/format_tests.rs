//! Known-answer tests of everything an issued mark depends on in this crate: key derivation,
//! the keyed stream, the keyed check and the convolutional code. A mark in the world was
//! laid out and encoded with exactly these bytes; if one of these tests fails, the change
//! orphans every mark already issued (see `docs/image-format.md`, "Changing the format").
//! Fix the change, never the expected value.

use sha2::{Digest, Sha256};

use crate::{KeyStream, Payload, WatermarkKey, ecc};

fn fixture_key() -> WatermarkKey {
    WatermarkKey::from_bytes(std::array::from_fn(|i| (i as u8).wrapping_mul(37) ^ 0x5a))
}

#[test]
fn key_derivation_is_frozen() {
    let k = fixture_key();
    assert_eq!(hex::encode(k.derive("image/tile/v2")), KAT_DERIVE_TILE);
    assert_eq!(hex::encode(k.derive("ecc/check/v1")), KAT_DERIVE_CHECK);
}

#[test]
fn key_stream_is_frozen() {
    let mut s = KeyStream::new(&fixture_key(), "image/tile/v2");
    let mut h = Sha256::new();
    for _ in 0..1000 {
        h.update(s.next_u32().to_le_bytes());
    }
    // The derived draws the layout uses: bounded integers (shuffles) and signs.
    for _ in 0..1000 {
        h.update(s.below(1024).to_le_bytes());
        h.update(s.sign().to_le_bytes());
    }
    assert_eq!(hex::encode(h.finalize()), KAT_STREAM);
}

#[test]
fn payload_code_is_frozen() {
    let k = fixture_key();
    for (payload, expected) in [
        (Payload(0), KAT_CODE_ZERO),
        (Payload(0x0123_4567_89ab_cdef), KAT_CODE_0123),
        (Payload(u64::MAX), KAT_CODE_ONES),
    ] {
        let bits = ecc::encode(&k, payload);
        assert_eq!(bits.len(), ecc::CODED_BITS);
        let packed: Vec<u8> = bits
            .chunks(8)
            .map(|c| c.iter().fold(0u8, |a, &b| (a << 1) | u8::from(b)))
            .collect();
        assert_eq!(hex::encode(packed), expected, "payload {payload:?}");
        // And the decoder reads its own codeword back.
        let soft: Vec<f32> = bits.iter().map(|&b| if b { 1.0 } else { -1.0 }).collect();
        assert_eq!(ecc::decode(&k, &soft).map(|d| d.payload), Some(payload));
    }
    assert_eq!(ecc::CODED_BITS, 312);
    assert_eq!(ecc::CHECK_BITS, 32);
}

const KAT_DERIVE_TILE: &str = "014aeca04da39bc87be396b1444a14a0017f7ad9a3c012d8d857e9a46dbbf1e5";
const KAT_DERIVE_CHECK: &str = "4b8b3b4daa1b2d5aae9b976a358f8e25f59eb3ca7f414815cb50e2986fad0edb";
const KAT_STREAM: &str = "a93d34d531789adcdb8719290463c835e0a620f254ffe9649cfd444406421f68";
const KAT_CODE_ZERO: &str =
    "000000000000000000000000000000000000000000000000fa55925deeec082a0132be36367a9f";
const KAT_CODE_0123: &str =
    "000007d14430f70ce11958b1c54a6e91a03eb7e8ef59bcbf63578a693fca3da943a8dcac79fa9f";
const KAT_CODE_ONES: &str =
    "e6850ab6db6db6db6db6db6db6db6db6db6db6db6db6db6d53b6fb8d6da0f7e52726585df34e00";
