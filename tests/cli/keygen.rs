use std::os::unix::fs::PermissionsExt;

use x509_parser::prelude::*;

use crate::util::*;

fn certs(pem_text: &str) -> Vec<Vec<u8>> {
    x509_parser::pem::Pem::iter_from_buffer(pem_text.as_bytes())
        .map(|p| p.expect("pem").contents)
        .collect()
}

#[test]
fn keygen_writes_private_files_0600_and_public_info() {
    let t = TestDir::new();
    let dir = t.path("k");
    let out = hm(&[
        "keygen",
        "--out",
        dir.to_str().unwrap(),
        "--json",
        "--org",
        "ACME",
        "--name",
        "ACME generator",
    ])
    .run();
    out.code(0);
    let info = &out.json_lines()[0];
    let key_id = info["watermark_key_id"].as_str().expect("key id");
    assert_eq!(key_id.len(), 16);
    for (f, mode) in [
        ("watermark.key", 0o600),
        ("c2pa-signing.key", 0o600),
        ("c2pa-chain.pem", 0o644),
        ("c2pa-ca.pem", 0o644),
    ] {
        let m = std::fs::metadata(dir.join(f))
            .expect(f)
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(m, mode, "{f}");
    }
    // Nothing secret on stdout.
    let secret = std::fs::read_to_string(dir.join("watermark.key")).unwrap();
    let hex_line = secret.lines().nth(1).unwrap();
    assert!(!out.stdout.contains(hex_line));
    let pkcs8 = std::fs::read_to_string(dir.join("c2pa-signing.key")).unwrap();
    let body = pkcs8.lines().nth(1).unwrap();
    assert!(!out.stdout.contains(body));
    assert!(out.stdout.contains("ACME"));
}

#[test]
fn keygen_refuses_to_overwrite_without_force() {
    let t = TestDir::new();
    let dir = t.keygen();
    let before = std::fs::read(format!("{dir}/watermark.key")).unwrap();
    let out = hm(&["keygen", "--out", &dir]).run();
    out.code(2);
    assert!(out.stderr.contains("--force"), "{}", out.stderr);
    assert_eq!(
        std::fs::read(format!("{dir}/watermark.key")).unwrap(),
        before
    );
    hm(&["keygen", "--out", &dir, "--force", "-q"])
        .run()
        .code(0);
    assert_ne!(
        std::fs::read(format!("{dir}/watermark.key")).unwrap(),
        before
    );
}

#[test]
fn chain_carries_what_c2pa_requires_and_the_ca_signed_it() {
    let t = TestDir::new();
    let dir = t.keygen();
    let chain = certs(&std::fs::read_to_string(format!("{dir}/c2pa-chain.pem")).unwrap());
    let ca_pem = certs(&std::fs::read_to_string(format!("{dir}/c2pa-ca.pem")).unwrap());
    assert_eq!(chain.len(), 2, "end-entity then CA");
    assert_eq!(chain[1], ca_pem[0], "the chain ends with the trust anchor");
    let (_, ee) = parse_x509_certificate(&chain[0]).unwrap();
    let (_, ca) = parse_x509_certificate(&chain[1]).unwrap();
    assert_eq!(ee.version(), X509Version::V3);
    let ku = ee.key_usage().unwrap().expect("key usage").value;
    assert!(ku.digital_signature());
    assert!(!ku.key_cert_sign());
    let eku = ee.extended_key_usage().unwrap().expect("eku").value;
    let doc_signing = x509_parser::oid_registry::Oid::from(&[1, 3, 6, 1, 5, 5, 7, 3, 36]).unwrap();
    assert!(eku.other.contains(&doc_signing) || eku.email_protection);
    assert!(eku.other.contains(&doc_signing));
    let bc = ee.basic_constraints().unwrap();
    assert!(
        bc.is_none_or(|b| !b.value.ca),
        "end-entity must not be a CA"
    );
    let aki = ee
        .extensions()
        .iter()
        .find(|e| e.oid == x509_parser::oid_registry::OID_X509_EXT_AUTHORITY_KEY_IDENTIFIER);
    assert!(aki.is_some(), "AKI is required by c2pa");
    assert!(ca.basic_constraints().unwrap().expect("bc").value.ca);
    // Valid from about now, for years.
    let now = ASN1Time::now();
    assert!(ee.validity().not_before <= now && now < ee.validity().not_after);
    let years = (ee.validity().not_after.timestamp() - now.timestamp()) / (365 * 86400);
    assert!(years >= 9, "{years}");
    // The CA key is ECDSA P-256 (the C2PA certificate policy: no Ed25519 CAs), and it
    // verifies the end-entity certificate's signature.
    use p256::ecdsa::{Signature as EcSignature, VerifyingKey as EcKey, signature::Verifier as _};
    assert_eq!(
        ca.public_key().algorithm.algorithm.to_id_string(),
        "1.2.840.10045.2.1",
        "id-ecPublicKey"
    );
    let vk = EcKey::from_sec1_bytes(ca.public_key().subject_public_key.data.as_ref()).unwrap();
    let sig = EcSignature::from_der(ee.signature_value.data.as_ref()).unwrap();
    vk.verify(ee.tbs_certificate.as_ref(), &sig)
        .expect("CA signed the end-entity");
    // A changed certificate body does not verify (the check can fail).
    let mut bad = ee.tbs_certificate.as_ref().to_vec();
    let n = bad.len();
    bad[n - 10] ^= 1;
    assert!(vk.verify(&bad, &sig).is_err());
}

#[test]
fn keys_load_back_and_sign() {
    let t = TestDir::new();
    let dir = t.keygen();
    let img = t.write_png("a.png", 200, 160, 4);
    let out = t.path("a-signed.png");
    hm(&[
        "sign",
        img.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "--keys",
        &dir,
        "-q",
    ])
    .run()
    .code(0);
    hm(&["verify", out.to_str().unwrap(), "--keys", &dir])
        .run()
        .code(0);
}
