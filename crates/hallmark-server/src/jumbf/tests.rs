#![allow(clippy::unwrap_used)]

use super::active_only;

fn bx(kind: &[u8; 4], body: &[u8]) -> Vec<u8> {
    let mut v = ((body.len() + 8) as u32).to_be_bytes().to_vec();
    v.extend_from_slice(kind);
    v.extend_from_slice(body);
    v
}

#[test]
fn keeps_the_description_and_the_last_manifest() {
    let desc = bx(b"jumd", b"c2pa-description");
    let m1 = bx(b"jumb", &bx(b"jumd", b"first"));
    let m2 = bx(b"jumb", &bx(b"jumd", b"second-active"));
    let store = bx(b"jumb", &[desc.clone(), m1, m2.clone()].concat());
    let out = active_only(&store).unwrap();
    assert_eq!(out, bx(b"jumb", &[desc, m2].concat()));
    // A store of one manifest comes back unchanged.
    assert_eq!(active_only(&out).unwrap(), out);
}

#[test]
fn malformed_stores_give_none_never_a_panic() {
    let desc = bx(b"jumd", b"d");
    let m = bx(b"jumb", b"x");
    let good = bx(b"jumb", &[desc, m].concat());
    for cut in 0..good.len() {
        let _ = active_only(&good[..cut]);
    }
    let mut lying = good.clone();
    lying[3] = 0xff; // the outer box claims more than there is
    assert!(active_only(&lying).is_none());
    assert!(active_only(b"").is_none());
    assert!(active_only(&bx(b"free", b"")).is_none());
    // a zero-length inner box would loop forever if trusted
    let zero = bx(
        b"jumb",
        &[bx(b"jumd", b"d"), vec![0, 0, 0, 4, b'j', b'u', b'm', b'b']].concat(),
    );
    assert!(active_only(&zero).is_none());
}
