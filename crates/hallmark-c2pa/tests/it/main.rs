//! hallmark-c2pa through its public API only.
#![allow(clippy::unwrap_used, missing_docs)]

use hallmark_c2pa::*;

mod tsa;

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

/// An error with its sources, as a front end prints it.
fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(s) = cur {
        out.push_str(": ");
        out.push_str(&s.to_string());
        cur = s.source();
    }
    out
}

fn cred(k: &GeneratedKeys) -> SigningCredential {
    SigningCredential::from_pem(&k.chain_pem, &k.key_pem).unwrap()
}

/// Sleeps until one second after the end-entity certificate's `not_after` (RFC 3339), so an
/// expiry test waits exactly as long as needed, whatever the machine's speed.
fn sleep_past_expiry(keys: &GeneratedKeys) {
    let end = time::OffsetDateTime::parse(
        &keys.info.not_after,
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    let wait = end - time::OffsetDateTime::now_utc() + time::Duration::seconds(1);
    if wait.is_positive() {
        std::thread::sleep(std::time::Duration::from_secs_f64(wait.as_seconds_f64()));
    }
}

#[test]
fn expired_certificate_reads_invalid_with_the_expired_code() {
    // A certificate that expires a few seconds from now (no time-stamp authority, so the
    // manifest stops validating with it). The window is generous for a loaded machine; the
    // test then waits exactly until the certificate has expired.
    let keys = generate_for(
        &CertOptions::default(),
        time::OffsetDateTime::now_utc(),
        time::Duration::minutes(5) + time::Duration::seconds(12),
    )
    .unwrap();
    let trust = TrustSettings {
        anchors_pem: Some(keys.ca_pem.clone()),
        ..Default::default()
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
    sleep_past_expiry(&keys);
    let v = verify("png", &s.asset, None, &trust).unwrap().unwrap();
    assert_eq!(
        v.validation_state,
        ValidationState::Invalid,
        "{:?}",
        v.failure
    );
    assert!(v.expired(), "{:?}", v.failure);
    // An expired certificate is refused before anything is signed with it.
    let e = SigningCredential::from_pem(&keys.chain_pem, &keys.key_pem).unwrap_err();
    assert!(e.to_string().contains("expired"), "{e}");
}

#[test]
fn a_key_that_does_not_match_the_chain_is_refused() {
    let a = generate(&CertOptions::default()).unwrap();
    let b = generate(&CertOptions::default()).unwrap();
    let err = SigningCredential::from_pem(&a.chain_pem, &b.key_pem).unwrap_err();
    assert!(err.to_string().contains("does not match"), "{err}");
    assert!(SigningCredential::from_pem("junk", &a.key_pem).is_err());
    // Swapped arguments say so.
    let e = SigningCredential::from_pem(&a.key_pem, &a.chain_pem).unwrap_err();
    assert!(e.to_string().contains("swapped"), "{e}");
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
            ..Default::default()
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
        ..Default::default()
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

fn trust(keys: &GeneratedKeys) -> TrustSettings {
    TrustSettings {
        anchors_pem: Some(keys.ca_pem.clone()),
        ..Default::default()
    }
}

/// A c2patool user's definition: its own generator, title and `c2pa.created` action (a
/// camera capture, not AI) and a CreativeWork assertion. hallmark keeps all of it: one
/// inception action, the user's source type, and reports the signer keys it ignored.
#[test]
fn a_c2patool_definition_keeps_its_generator_title_and_created_action() {
    let keys = generate(&CertOptions::default()).unwrap();
    let def = serde_json::json!({
        "claim_generator_info": [{"name": "ACME camera app", "version": "2.1"}],
        "title": "beach.jpg",
        "alg": "es256",
        "private_key": "es256.pem",
        "assertions": [
            {"label": "c2pa.actions", "data": {"actions": [
                {"action": "c2pa.created", "digitalSourceType": "http://cv.iptc.org/newscodes/digitalsourcetype/digitalCapture"},
                {"action": "c2pa.color_adjustments"}
            ]}},
            {"label": "stds.schema-org.CreativeWork", "data": {"@context": "https://schema.org", "@type": "CreativeWork", "author": [{"@type": "Person", "name": "Jane Doe"}]}}
        ]
    });
    let spec = ManifestSpec {
        title: Some("upload.png".into()),
        extra_definition: Some(def.clone()),
        ..Default::default()
    };
    let s = sign(&cred(&keys), &spec, "png", &png(), Embedding::Embedded).unwrap();
    assert_eq!(s.warnings.len(), 2, "{:?}", s.warnings);
    assert!(s.warnings.iter().any(|w| w.contains("\"alg\"")));
    let v = verify("png", &s.asset, None, &trust(&keys))
        .unwrap()
        .unwrap();
    assert_eq!(
        v.validation_state,
        ValidationState::Trusted,
        "{:?}",
        v.failure
    );
    assert_eq!(v.ai, AiStatus::NotDeclared);
    assert_eq!(v.claim_generator, vec!["ACME camera app 2.1".to_string()]);
    let m = &v.report["manifests"][v.active_manifest.as_deref().unwrap()];
    assert_eq!(m["title"], "beach.jpg");
    assert!(m.to_string().contains("Jane Doe"));
    let actions: Vec<String> = m["assertions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["label"].as_str().unwrap().starts_with("c2pa.actions"))
        .flat_map(|a| a["data"]["actions"].as_array().unwrap().clone())
        .map(|a| a["action"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(actions, ["c2pa.created", "c2pa.color_adjustments"]);

    // --source-type overrides the definition's type.
    let spec = ManifestSpec {
        extra_definition: Some(def),
        source_type: Some("compositeWithTrainedAlgorithmicMedia".into()),
        ..Default::default()
    };
    let s = sign(&cred(&keys), &spec, "png", &png(), Embedding::Embedded).unwrap();
    let v = verify("png", &s.asset, None, &trust(&keys))
        .unwrap()
        .unwrap();
    assert_eq!(v.ai, AiStatus::Edited);
    assert!(source_type_iri("not a type!").is_err());
}

/// A definition with two inception actions is refused before signing.
#[test]
fn two_created_actions_are_refused_when_signing() {
    let keys = generate(&CertOptions::default()).unwrap();
    let spec = ManifestSpec {
        extra_definition: Some(serde_json::json!({"assertions": [
            {"label": "c2pa.actions", "data": {"actions": [
                {"action": "c2pa.created", "digitalSourceType": "http://cv.iptc.org/newscodes/digitalsourcetype/digitalCapture"},
                {"action": "c2pa.created", "digitalSourceType": "http://cv.iptc.org/newscodes/digitalsourcetype/digitalCapture"}
            ]}}
        ]})),
        ..Default::default()
    };
    let e = sign(&cred(&keys), &spec, "png", &png(), Embedding::Embedded).unwrap_err();
    assert!(e.to_string().contains("more than one"), "{e}");
}

/// A manifest written by another tool (c2pa's own builder here) with a second
/// `c2pa.created` after the first: c2pa 0.90 accepts it, the reference (c2pa-rs 0.91,
/// c2pa-python 0.38) does not, and neither does hallmark.
#[test]
fn a_second_created_action_from_another_signer_is_invalid() {
    let keys = generate(&CertOptions::default()).unwrap();
    let created = |t: &str| {
        serde_json::json!({"action": "c2pa.created",
            "digitalSourceType": format!("http://cv.iptc.org/newscodes/digitalsourcetype/{t}")})
    };
    let def = serde_json::json!({
        "claim_generator_info": [{"name": "other tool", "version": "1"}],
        "assertions": [{"label": "c2pa.actions", "created": true, "data": {"actions": [
            created("trainedAlgorithmicMedia"), created("digitalCapture")
        ]}}]
    });
    let signer = c2pa::create_signer::from_keys(
        keys.chain_pem.as_bytes(),
        keys.key_pem.as_bytes(),
        c2pa::SigningAlg::Ed25519,
        None,
    )
    .unwrap();
    let ctx = c2pa::Context::new()
        .with_settings(serde_json::json!({"builder": {"thumbnail": {"enabled": false}}}))
        .unwrap()
        .into_shared();
    let mut b = c2pa::Builder::from_shared_context(&ctx)
        .with_definition(def.to_string())
        .unwrap();
    let mut out = std::io::Cursor::new(vec![]);
    b.sign(
        signer.as_ref(),
        "image/png",
        &mut std::io::Cursor::new(png()),
        &mut out,
    )
    .unwrap();
    let v = verify("png", out.get_ref(), None, &trust(&keys))
        .unwrap()
        .unwrap();
    assert_eq!(v.validation_state, ValidationState::Invalid);
    assert!(
        v.failure
            .iter()
            .any(|f| f.code == "assertion.action.malformed"),
        "{:?}",
        v.failure
    );
    assert_eq!(v.report["validation_state"], "Invalid");
}

fn codes(list: &[StatusEntry]) -> Vec<&str> {
    list.iter().map(|s| s.code.as_str()).collect()
}

/// With a time stamp from a (local, real) RFC 3161 authority, a manifest outlives its
/// certificate; without one, it turns Invalid the moment the certificate expires.
#[test]
fn a_time_stamp_keeps_a_manifest_valid_after_its_certificate_expires() {
    let tsa = tsa::LocalTsa::start();
    let opts = CertOptions {
        alg: KeyAlg::Es256,
        ..Default::default()
    };
    // generate_for starts validity five minutes back: this certificate has 12 s left.
    let keys = generate_for(
        &opts,
        time::OffsetDateTime::now_utc(),
        time::Duration::minutes(5) + time::Duration::seconds(12),
    )
    .unwrap();
    let stamper = TimeStamper {
        url: tsa.url.clone(),
        timeout: std::time::Duration::from_secs(20),
    };
    let with = cred(&keys).with_time_stamper(stamper);
    let stamped = sign(
        &with,
        &ManifestSpec::default(),
        "png",
        &png(),
        Embedding::Embedded,
    )
    .unwrap();
    let plain = sign(
        &cred(&keys),
        &ManifestSpec::default(),
        "png",
        &png(),
        Embedding::Embedded,
    )
    .unwrap();
    let trust = TrustSettings {
        anchors_pem: Some(format!("{}{}", keys.ca_pem, tsa.root_pem())),
        ..Default::default()
    };
    let v = verify("png", &stamped.asset, None, &trust)
        .unwrap()
        .unwrap();
    assert_eq!(
        v.validation_state,
        ValidationState::Trusted,
        "{:?}",
        v.failure
    );
    assert!(
        codes(&v.success).contains(&"timeStamp.validated"),
        "{:?}",
        v.success
    );
    sleep_past_expiry(&keys);
    let v = verify("png", &plain.asset, None, &trust).unwrap().unwrap();
    assert_eq!(v.validation_state, ValidationState::Invalid);
    assert!(v.expired(), "{:?}", v.failure);
    let v = verify("png", &stamped.asset, None, &trust)
        .unwrap()
        .unwrap();
    assert_eq!(
        v.validation_state,
        ValidationState::Trusted,
        "a time-stamped manifest must outlive its certificate: {:?}",
        v.failure
    );
    assert!(!v.expired());
}

/// An authority that is down, or answers garbage, fails the signing with a clear error.
#[test]
fn an_unreachable_or_broken_time_stamp_authority_fails_signing_clearly() {
    let keys = generate(&CertOptions::default()).unwrap();
    // A port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let garbage = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let garbage_url = format!("http://{}/", garbage.local_addr().unwrap());
    std::thread::spawn(move || {
        use std::io::{Read, Write};
        for mut s in garbage.incoming().flatten() {
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf);
            let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Type: application/timestamp-reply\r\nContent-Length: 5\r\n\r\nhello");
        }
    });
    for url in [format!("http://127.0.0.1:{port}/"), garbage_url] {
        let c = cred(&keys).with_time_stamper(TimeStamper {
            url: url.clone(),
            timeout: std::time::Duration::from_secs(5),
        });
        let e = sign(
            &c,
            &ManifestSpec::default(),
            "png",
            &png(),
            Embedding::Embedded,
        )
        .expect_err(&url);
        let msg = chain(&e);
        assert!(msg.contains("time-stamp authority"), "{url}: {msg}");
    }
}
