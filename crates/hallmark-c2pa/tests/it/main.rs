//! hallmark-c2pa through its public API only.
#![allow(clippy::unwrap_used, missing_docs)]

use hallmark_c2pa::*;

fn png() -> Vec<u8> {
    let img = image::RgbImage::from_fn(64, 48, |x, y| {
        image::Rgb([(x * 4) as u8, (y * 5) as u8, 90])
    });
    let mut out = vec![];
    image::DynamicImage::ImageRgb8(img)
        .write_to(&mut std::io::Cursor::new(&mut out), image::ImageFormat::Png)
        .unwrap();
    out
}

fn cred(k: &GeneratedKeys) -> SigningCredential {
    SigningCredential::from_pem(&k.chain_pem, &k.key_pem).unwrap()
}

#[test]
fn expired_certificate_reads_invalid_with_the_expired_code() {
    // A certificate that expires three seconds from now (no time-stamp authority, so the
    // manifest stops validating with it).
    let now = time::OffsetDateTime::now_utc();
    let opts = CertOptions {
        validity_days: 1,
        ..Default::default()
    };
    let start =
        now - time::Duration::days(1) + time::Duration::minutes(5) + time::Duration::seconds(3);
    let keys = generate_at(&opts, start).unwrap();
    let trust = TrustSettings {
        anchors_pem: Some(keys.ca_pem.clone()),
    };
    let s = sign(
        &cred(&keys),
        &ManifestSpec::default(),
        "png",
        &png(),
        Embedding::Embedded,
    )
    .unwrap();
    let fresh = verify("png", &s.asset, None, &trust).unwrap().unwrap();
    assert_eq!(fresh.validation_state, ValidationState::Trusted);
    std::thread::sleep(std::time::Duration::from_secs(4));
    let v = verify("png", &s.asset, None, &trust).unwrap().unwrap();
    assert_eq!(
        v.validation_state,
        ValidationState::Invalid,
        "{:?}",
        v.failure
    );
    assert!(v.expired(), "{:?}", v.failure);
    // Signing with an expired certificate is refused outright.
    assert!(
        sign(
            &cred(&keys),
            &ManifestSpec::default(),
            "png",
            &png(),
            Embedding::Embedded
        )
        .is_err()
    );
}

#[test]
fn a_key_that_does_not_match_the_chain_is_refused() {
    let a = generate(&CertOptions::default()).unwrap();
    let b = generate(&CertOptions::default()).unwrap();
    let err = SigningCredential::from_pem(&a.chain_pem, &b.key_pem).unwrap_err();
    assert!(err.to_string().contains("does not match"), "{err}");
    assert!(SigningCredential::from_pem("junk", &a.key_pem).is_err());
    assert!(SigningCredential::from_pem(&a.chain_pem, "junk").is_err());
}

#[test]
fn plain_asset_has_no_manifest() {
    assert!(
        verify("png", &png(), None, &TrustSettings::default())
            .unwrap()
            .is_none()
    );
}

#[test]
fn soft_binding_and_model_read_back_exactly() {
    let keys = generate(&CertOptions::default()).unwrap();
    let spec = ManifestSpec {
        model: Some(Model {
            name: "m".into(),
            version: Some("7".into()),
        }),
        soft_bindings: vec![SoftBinding {
            alg: "org.example.wm".into(),
            value: vec![1, 2, 3, 250],
        }],
        watermarked: true,
        ..Default::default()
    };
    let s = sign(
        &cred(&keys),
        &spec,
        "image/png",
        &png(),
        Embedding::Embedded,
    )
    .unwrap();
    let v = verify(
        "image/png",
        &s.asset,
        None,
        &TrustSettings {
            anchors_pem: Some(keys.ca_pem.clone()),
        },
    )
    .unwrap()
    .unwrap();
    assert_eq!(v.validation_state, ValidationState::Trusted);
    assert_eq!(v.soft_bindings, spec.soft_bindings);
    assert_eq!(v.software_agent.as_deref(), Some("m 7"));
    assert!(v.watermarked_action);
    assert_eq!(v.ai, AiStatus::Generated);
    assert_eq!(v.active_manifest.as_deref(), Some(s.manifest_id.as_str()));
    let dbg = format!("{:?}", cred(&keys));
    assert!(!dbg.contains("PRIVATE"), "{dbg}");
}

#[test]
fn sidecar_is_refused_when_the_asset_carries_a_broken_manifest_box() {
    let keys = generate(&CertOptions::default()).unwrap();
    let trust = TrustSettings {
        anchors_pem: Some(keys.ca_pem.clone()),
    };
    let plain = png();
    let side = sign(
        &cred(&keys),
        &ManifestSpec::default(),
        "png",
        &plain,
        Embedding::Sidecar,
    )
    .unwrap();
    assert_eq!(side.asset, plain);
    let v = verify("png", &plain, Some(&side.manifest_store), &trust)
        .unwrap()
        .unwrap();
    assert_eq!(v.validation_state, ValidationState::Trusted);
    // The same sidecar against a different image fails the hard binding.
    let mut other = png();
    let n = other.len();
    other[n - 20] ^= 1;
    let v = verify("png", &other, Some(&side.manifest_store), &trust);
    if let Ok(Some(v)) = v {
        assert_eq!(v.validation_state, ValidationState::Invalid);
    }
}
