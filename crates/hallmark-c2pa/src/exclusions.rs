//! What a data hash may leave out. A `c2pa.hash.data` assertion hashes the whole asset
//! except its exclusion ranges, and the C2PA specification (2.x, "validating a data hash")
//! requires a validator to check that what is excluded is the manifest store and nothing
//! else; any other byte in an exclusion is a hole an attacker can fill. c2pa 0.90.22 does
//! not check this; c2pa-rs 0.91 does (contentauth/c2pa-rs #2653, backported as #2673): one
//! declared exclusion must be exactly where the store really is, found by parsing the asset
//! again, or the manifest fails with `assertion.dataHash.mismatch`. This module is that check,
//! written against the formats here, so `verify` reaches the reference's answer.
//!
//! The store's extent is found independently of c2pa: in JPEG the run of consecutive APP11
//! segments of one JUMBF box (`En`) starting with the C2PA superbox, in PNG the `caBX`
//! chunk, in RIFF (WebP, WAV) the `C2PA` chunk without its pad byte. Those are the
//! conventions c2pa-rs writes and measures (checked against files it signs, in the tests).

use std::ops::Range;

use serde_json::Value;

use crate::StatusEntry;

/// Where the asset's manifest store is.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum StoreAt {
    /// The byte range of the whole store container (segments, chunk).
    Found(Range<u64>),
    /// The asset has no manifest store (a sidecar's asset).
    Absent,
    /// The format is not one this module parses, or the container is malformed.
    Unknown,
}

/// Finds the manifest store in `asset` of MIME type `mime`.
pub(crate) fn store_at(mime: &str, asset: &[u8]) -> StoreAt {
    match mime {
        "image/jpeg" => jpeg(asset),
        "image/png" => png(asset),
        "image/webp" | "audio/wav" => riff(asset),
        _ => StoreAt::Unknown,
    }
}

fn be16(b: &[u8], at: usize) -> Option<usize> {
    Some(u16::from_be_bytes(b.get(at..at + 2)?.try_into().ok()?) as usize)
}

fn be32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn range(start: usize, end: usize) -> StoreAt {
    StoreAt::Found(start as u64..end as u64)
}

/// JPEG: markers from the start of image to the start of scan. An APP11 segment is
/// `FF EB`, a 2-byte length, then `JP`, the box instance `En` (2 bytes), the sequence
/// number `Z` (4 bytes) and the box bytes; the first segment of a C2PA store has the
/// superbox header and its description box, whose type UUID starts with `c2pa`. The store
/// is that segment and the ones straight after it with the same `En` and the next `Z`.
fn jpeg(b: &[u8]) -> StoreAt {
    if b.get(0..2) != Some(&[0xFF, 0xD8]) {
        return StoreAt::Unknown;
    }
    let mut at = 2usize;
    let mut store: Option<(usize, usize, [u8; 2], u32)> = None; // start, end, En, last Z
    loop {
        // Fill bytes (FF FF ...) may precede a marker.
        while b.get(at) == Some(&0xFF) && b.get(at + 1) == Some(&0xFF) {
            at += 1;
        }
        let (Some(&0xFF), Some(&marker)) = (b.get(at), b.get(at + 1)) else {
            break;
        };
        // Markers without a length: TEM and RSTn; SOS and EOI end the header.
        if marker == 0x01 || (0xD0..=0xD7).contains(&marker) {
            at += 2;
            continue;
        }
        if marker == 0xDA || marker == 0xD9 {
            break;
        }
        let Some(len) = be16(b, at + 2) else {
            break;
        };
        if len < 2 {
            return StoreAt::Unknown;
        }
        let end = at + 2 + len;
        if end > b.len() {
            return StoreAt::Unknown;
        }
        let content = &b[at + 4..end];
        let app11 = marker == 0xEB && content.len() >= 8 && &content[0..2] == b"JP";
        let en = app11.then(|| [content[2], content[3]]);
        let z = app11.then(|| be32(content, 4)).flatten();
        match (&mut store, en, z) {
            (Some((_, last_end, s_en, s_z)), Some(en), Some(z))
                if *last_end == at && *s_en == en && z == s_z.wrapping_add(1) =>
            {
                *last_end = end;
                *s_z = z;
            }
            (Some(_), ..) => return range_of(store),
            (None, Some(en), Some(z)) if content.get(24..28) == Some(b"c2pa") => {
                store = Some((at, end, en, z));
            }
            _ => {}
        }
        at = end;
    }
    match store {
        Some(_) => range_of(store),
        None => StoreAt::Absent,
    }
}

fn range_of(store: Option<(usize, usize, [u8; 2], u32)>) -> StoreAt {
    match store {
        Some((start, end, ..)) => range(start, end),
        None => StoreAt::Absent,
    }
}

/// PNG: chunks after the 8-byte signature, each length (4), type (4), data, CRC (4); the
/// store is the `caBX` chunk, all of it.
fn png(b: &[u8]) -> StoreAt {
    if b.get(0..8) != Some(b"\x89PNG\r\n\x1a\n") {
        return StoreAt::Unknown;
    }
    let mut at = 8usize;
    while let Some(len) = be32(b, at) {
        let Some(kind) = b.get(at + 4..at + 8) else {
            return StoreAt::Unknown;
        };
        let Some(end) = (at + 12).checked_add(len as usize) else {
            return StoreAt::Unknown;
        };
        if end > b.len() {
            return StoreAt::Unknown;
        }
        match kind {
            b"caBX" => return range(at, end),
            b"IEND" => break,
            _ => at = end,
        }
    }
    StoreAt::Absent
}

/// RIFF (WebP, WAV): `RIFF`, size, form type, then chunks of fourcc (4), little-endian size
/// (4), data and a pad byte to an even length; the store is the `C2PA` chunk's header and
/// data (c2pa-rs leaves the pad byte out of the exclusion, so it is hashed).
fn riff(b: &[u8]) -> StoreAt {
    if b.get(0..4) != Some(b"RIFF") || b.len() < 12 {
        return StoreAt::Unknown;
    }
    let mut at = 12usize;
    while let Some(head) = b.get(at..at + 8) {
        let size = u32::from_le_bytes([head[4], head[5], head[6], head[7]]) as usize;
        let end = at + 8 + size;
        if end > b.len() {
            return StoreAt::Unknown;
        }
        if &head[0..4] == b"C2PA" {
            return range(at, end);
        }
        at = end + (size & 1);
    }
    StoreAt::Absent
}

/// The exclusions of the active manifest's data hash, from c2pa's detailed report:
/// `None` when the manifest has no data hash (a BMFF or box hash, an update manifest).
fn data_hash_exclusions(detailed: &Value, active: &str) -> Option<Vec<Range<u64>>> {
    let store = detailed
        .pointer(&format!(
            "/manifests/{}/assertion_store",
            active.replace('~', "~0").replace('/', "~1")
        ))?
        .as_object()?;
    let (_, dh) = store
        .iter()
        .find(|(k, _)| k.starts_with("c2pa.hash.data"))?;
    let mut out = vec![];
    for e in dh
        .get("exclusions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let start = e.get("start").and_then(Value::as_u64)?;
        let length = e.get("length").and_then(Value::as_u64)?;
        if length > 0 {
            out.push(start..start.saturating_add(length));
        }
    }
    Some(out)
}

/// The outcome of the check.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Nothing excluded, or an exclusion is exactly the store.
    Fine,
    /// Bytes that are not the manifest store are excluded: a failure.
    Hole(StatusEntry),
    /// The format is not parsed here, so the check was not made: informational.
    Unchecked(StatusEntry),
}

/// Checks the active manifest's data-hash exclusions against where the store really is in
/// `asset` (for a sidecar, the asset should hold no store, so nothing may be excluded).
pub(crate) fn check(mime: &str, asset: &[u8], detailed: &Value, active: &str) -> Outcome {
    let Some(excluded) = data_hash_exclusions(detailed, active) else {
        return Outcome::Fine;
    };
    if excluded.is_empty() {
        return Outcome::Fine;
    }
    let url = Some(format!(
        "self#jumbf=/c2pa/{active}/c2pa.assertions/c2pa.hash.data"
    ));
    let list = excluded
        .iter()
        .map(|r| format!("{}..{}", r.start, r.end))
        .collect::<Vec<_>>()
        .join(", ");
    match store_at(mime, asset) {
        StoreAt::Found(store) if excluded.contains(&store) => Outcome::Fine,
        StoreAt::Found(store) => Outcome::Hole(StatusEntry {
            code: "assertion.dataHash.mismatch".into(),
            url,
            explanation: Some(format!(
                "the data hash excludes bytes {list}, but the manifest store is at {}..{}: \
                 bytes outside the store are unprotected",
                store.start, store.end
            )),
        }),
        StoreAt::Absent => Outcome::Hole(StatusEntry {
            code: "assertion.dataHash.mismatch".into(),
            url,
            explanation: Some(format!(
                "the data hash excludes bytes {list}, but the asset holds no manifest store \
                 there: those bytes are unprotected"
            )),
        }),
        StoreAt::Unknown => Outcome::Unchecked(StatusEntry {
            code: "hallmark.dataHash.exclusionsUnchecked".into(),
            url,
            explanation: Some(format!(
                "the data hash excludes bytes {list}; hallmark does not parse {mime} to check \
                 that only the manifest store is excluded"
            )),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn app11(en: u16, z: u32, body: &[u8]) -> Vec<u8> {
        let mut seg = vec![0xFF, 0xEB];
        let len = 2 + 8 + body.len();
        seg.extend_from_slice(&(len as u16).to_be_bytes());
        seg.extend_from_slice(b"JP");
        seg.extend_from_slice(&en.to_be_bytes());
        seg.extend_from_slice(&z.to_be_bytes());
        seg.extend_from_slice(body);
        seg
    }

    fn c2pa_box_head() -> Vec<u8> {
        // LBox, 'jumb', LBox, 'jumd', then a type UUID starting with "c2pa".
        let mut b = vec![0, 0, 1, 0];
        b.extend_from_slice(b"jumb");
        b.extend_from_slice(&[0, 0, 0, 40]);
        b.extend_from_slice(b"jumd");
        b.extend_from_slice(b"c2pa");
        b.extend_from_slice(&[0u8; 20]);
        b
    }

    fn jpeg_with(segments: &[Vec<u8>]) -> Vec<u8> {
        let mut j = vec![0xFF, 0xD8];
        // APP0 JFIF, 16 bytes.
        j.extend_from_slice(&[0xFF, 0xE0, 0, 16]);
        j.extend_from_slice(&[0u8; 14]);
        for s in segments {
            j.extend_from_slice(s);
        }
        j.extend_from_slice(&[0xFF, 0xDA, 0, 2, 1, 2, 3, 0xFF, 0xD9]);
        j
    }

    #[test]
    fn a_jpeg_store_is_its_consecutive_segments_only() {
        let first = app11(7, 1, &c2pa_box_head());
        let second = app11(7, 2, &[9u8; 30]);
        let other = app11(8, 1, &[1u8; 40]);
        let j = jpeg_with(&[first.clone(), second.clone(), other]);
        let start = 2 + 18;
        let end = start + first.len() + second.len();
        assert_eq!(store_at("image/jpeg", &j), range(start, end));
        // A segment out of sequence ends the store.
        let j = jpeg_with(&[first.clone(), app11(7, 3, &[9u8; 30])]);
        assert_eq!(store_at("image/jpeg", &j), range(20, 20 + first.len()));
        // No C2PA box at all.
        let j = jpeg_with(&[app11(7, 1, &[0u8; 40])]);
        assert_eq!(store_at("image/jpeg", &j), StoreAt::Absent);
    }

    #[test]
    fn a_truncated_container_is_unknown_not_absent() {
        let j = jpeg_with(&[app11(7, 1, &c2pa_box_head())]);
        assert_eq!(store_at("image/jpeg", &j[..30]), StoreAt::Unknown);
        let mut p = b"\x89PNG\r\n\x1a\n".to_vec();
        p.extend_from_slice(&[0, 0, 1, 0]);
        p.extend_from_slice(b"caBX");
        assert_eq!(store_at("image/png", &p), StoreAt::Unknown);
        let mut w = b"RIFF\0\0\0\0WEBP".to_vec();
        w.extend_from_slice(b"C2PA\xff\0\0\0");
        assert_eq!(store_at("image/webp", &w), StoreAt::Unknown);
    }

    #[test]
    fn an_exclusion_wider_than_the_store_is_a_hole() {
        let first = app11(7, 1, &c2pa_box_head());
        let j = jpeg_with(std::slice::from_ref(&first));
        let store = 20u64..(20 + first.len()) as u64;
        let detailed = |start: u64, length: u64| {
            serde_json::json!({"manifests": {"urn:x": {"assertion_store": {
                "c2pa.hash.data": {"exclusions": [{"start": start, "length": length}]}
            }}}})
        };
        let exact = detailed(store.start, store.end - store.start);
        assert_eq!(check("image/jpeg", &j, &exact, "urn:x"), Outcome::Fine);
        let wide = detailed(0, store.end);
        assert!(matches!(
            check("image/jpeg", &j, &wide, "urn:x"),
            Outcome::Hole(e) if e.code == "assertion.dataHash.mismatch"
        ));
        let none = serde_json::json!({"manifests": {"urn:x": {"assertion_store": {}}}});
        assert_eq!(check("image/jpeg", &j, &none, "urn:x"), Outcome::Fine);
        assert!(matches!(
            check("image/gif", &j, &wide, "urn:x"),
            Outcome::Unchecked(_)
        ));
    }

    /// Hostile containers: seeded random corruptions and truncations of valid JPEG, PNG and
    /// RIFF layouts never panic, and a found range always lies inside the file.
    #[test]
    fn corrupt_containers_never_panic_and_ranges_stay_inside() {
        let jpeg = jpeg_with(&[app11(7, 1, &c2pa_box_head()), app11(7, 2, &[5u8; 40])]);
        let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
        for (kind, len) in [
            (b"IHDR", 13usize),
            (b"caBX", 60),
            (b"IDAT", 20),
            (b"IEND", 0),
        ] {
            png.extend_from_slice(&(len as u32).to_be_bytes());
            png.extend_from_slice(kind);
            png.extend(std::iter::repeat_n(7u8, len + 4));
        }
        let mut riff = b"RIFF\0\0\0\0WEBP".to_vec();
        for (kind, len) in [(b"VP8X", 10usize), (b"C2PA", 33), (b"VP8 ", 20)] {
            riff.extend_from_slice(kind);
            riff.extend_from_slice(&(len as u32).to_le_bytes());
            riff.extend(std::iter::repeat_n(3u8, len + (len & 1)));
        }
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for (mime, base) in [
            ("image/jpeg", jpeg),
            ("image/png", png),
            ("image/webp", riff),
        ] {
            assert!(matches!(store_at(mime, &base), StoreAt::Found(_)), "{mime}");
            for _ in 0..3000 {
                let mut b = base.clone();
                for _ in 0..1 + next() % 4 {
                    let i = (next() as usize) % b.len();
                    b[i] = next() as u8;
                }
                let cut = (next() as usize) % (b.len() + 1);
                if next() % 3 == 0 {
                    b.truncate(cut);
                }
                if let StoreAt::Found(r) = store_at(mime, &b) {
                    assert!(r.start <= r.end && r.end <= b.len() as u64, "{mime}: {r:?}");
                }
            }
        }
    }
}
