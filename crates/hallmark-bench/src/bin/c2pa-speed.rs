//! C2PA sign+embed and read+verify speed, in memory, excluding pixel decoding.
//!
//! cargo run --release -p hallmark-bench --bin c2pa-speed
#![allow(missing_docs, clippy::unwrap_used)]

use std::time::Instant;

use hallmark::c2pa::{
    CertOptions, Embedding, ManifestSpec, Model, SigningCredential, TrustSettings,
};
use hallmark_bench::*;

fn main() {
    let keys = hallmark::c2pa::generate(&CertOptions::default()).unwrap();
    let cred = SigningCredential::from_pem(&keys.chain_pem, &keys.key_pem).unwrap();
    let trust = TrustSettings {
        anchors_pem: Some(keys.ca_pem.clone()),
        ..Default::default()
    };
    let fhd = image::open(photos_dir().join("p06_seeding_1920x1080.jpg")).unwrap();
    let mut jpg = vec![];
    fhd.write_to(
        &mut std::io::Cursor::new(&mut jpg),
        image::ImageFormat::Jpeg,
    )
    .unwrap();
    let sq = fhd.resize_to_fill(1024, 1024, image::imageops::FilterType::Triangle);
    let mut png = vec![];
    sq.write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .unwrap();
    let spec = ManifestSpec {
        model: Some(Model {
            name: "bench".into(),
            version: Some("1".into()),
        }),
        ..Default::default()
    };
    println!("| asset | sign+embed (median ms) | read+verify (median ms) | manifest bytes |");
    println!("|---|---|---|---|");
    for (name, mime, bytes) in [
        ("1920x1080 JPEG", "image/jpeg", &jpg),
        ("1024x1024 PNG", "image/png", &png),
    ] {
        let (mut ts, mut tv) = (vec![], vec![]);
        let mut signed = None;
        for _ in 0..21 {
            let t = Instant::now();
            let s = hallmark::c2pa::sign(&cred, &spec, mime, bytes, Embedding::Embedded).unwrap();
            ts.push(t.elapsed().as_secs_f64() * 1e3);
            let t = Instant::now();
            let v = hallmark::c2pa::verify(mime, &s.asset, None, &trust)
                .unwrap()
                .unwrap();
            tv.push(t.elapsed().as_secs_f64() * 1e3);
            assert_eq!(v.validation_state, hallmark::c2pa::ValidationState::Trusted);
            signed = Some(s);
        }
        let s = signed.unwrap();
        println!(
            "| {name} | {:.2} | {:.2} | {} |",
            median(&mut ts),
            median(&mut tv),
            s.asset.len() as i64 - bytes.len() as i64
        );
    }
}
