//! Signing credentials: an Ed25519 key and a certificate chain (end-entity first) issued by a
//! local CA, plus the CA certificate that verifiers use as a trust anchor.

use std::fmt;

use ed25519_dalek::pkcs8::{DecodePrivateKey, EncodePrivateKey, spki::der::pem::LineEnding};
use ed25519_dalek::{Signer as _, SigningKey};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::Error;

/// Options for [`generate`].
#[derive(Clone, Debug)]
pub struct CertOptions {
    /// Organisation (O) of both certificates.
    pub org: String,
    /// Common name (CN) of the end-entity certificate: who signs.
    pub name: String,
    /// Validity of the end-entity certificate, in days from now. Without a time-stamp
    /// authority a manifest stops validating once this expires, so the default is long.
    pub validity_days: u32,
}

impl Default for CertOptions {
    fn default() -> Self {
        CertOptions {
            org: "hallmark local signer".into(),
            name: "hallmark".into(),
            validity_days: 3650,
        }
    }
}

/// What [`generate`] produced. Only `key_pem` is secret.
pub struct GeneratedKeys {
    /// The end-entity private key, PKCS#8 PEM. Secret: write it with mode 0600.
    pub key_pem: Zeroizing<String>,
    /// End-entity certificate followed by the CA certificate, PEM.
    pub chain_pem: String,
    /// The CA certificate alone: the trust anchor verifiers need.
    pub ca_pem: String,
    /// Public facts about what was generated.
    pub info: CertInfo,
}

impl fmt::Debug for GeneratedKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GeneratedKeys")
            .field("info", &self.info)
            .finish_non_exhaustive()
    }
}

/// Public facts about a certificate pair, safe to print.
#[derive(Clone, Debug, serde::Serialize, schemars::JsonSchema)]
pub struct CertInfo {
    /// SHA-256 of the end-entity certificate DER, hex.
    pub signer_sha256: String,
    /// SHA-256 of the CA certificate DER, hex.
    pub ca_sha256: String,
    /// Subject of the end-entity certificate.
    pub subject: String,
    /// Start of validity, RFC 3339.
    pub not_before: String,
    /// End of validity, RFC 3339.
    pub not_after: String,
    /// Serial number of the end-entity certificate, hex.
    pub serial: String,
}

struct RcgenKey<'a>(&'a SigningKey, [u8; 32]);

impl rcgen::PublicKeyData for RcgenKey<'_> {
    fn der_bytes(&self) -> &[u8] {
        &self.1
    }
    fn algorithm(&self) -> &'static rcgen::SignatureAlgorithm {
        &rcgen::PKCS_ED25519
    }
}

impl rcgen::SigningKey for RcgenKey<'_> {
    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, rcgen::Error> {
        Ok(self.0.sign(msg).to_bytes().to_vec())
    }
}

fn rcgen_key(k: &SigningKey) -> RcgenKey<'_> {
    RcgenKey(k, k.verifying_key().to_bytes())
}

fn fresh_signing_key() -> SigningKey {
    SigningKey::generate(&mut rand_core::OsRng)
}

fn random_serial() -> Vec<u8> {
    let mut s = [0u8; 16];
    rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut s);
    s[0] &= 0x7f; // keep it a positive INTEGER
    s[0] |= 0x01; // and of full length
    s.to_vec()
}

fn key_identifier(k: &SigningKey) -> Vec<u8> {
    Sha256::digest(k.verifying_key().to_bytes())[..20].to_vec()
}

/// Generates a local CA and an end-entity signing certificate valid for C2PA (digitalSignature
/// key usage, documentSigning and emailProtection EKUs, Authority and Subject Key Identifiers).
/// The CA's private key is discarded: it exists only to issue this one certificate.
///
/// # Errors
/// [`Error::Parameter`] for an empty name or a zero validity; [`Error::Crypto`] if certificate
/// serialisation fails.
pub fn generate(opts: &CertOptions) -> Result<GeneratedKeys, Error> {
    generate_at(opts, time::OffsetDateTime::now_utc())
}

/// Like [`generate`] with an explicit start of validity (tests use it for expired chains).
///
/// # Errors
/// As [`generate`].
pub fn generate_at(opts: &CertOptions, now: time::OffsetDateTime) -> Result<GeneratedKeys, Error> {
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyIdMethod,
        KeyUsagePurpose, SerialNumber,
    };
    if opts.name.trim().is_empty() || opts.org.trim().is_empty() {
        return Err(Error::Parameter("name and org must not be empty".into()));
    }
    if opts.validity_days == 0 {
        return Err(Error::Parameter("validity must be at least one day".into()));
    }
    let crypto = |e: rcgen::Error| Error::Crypto(format!("certificate generation failed: {e}"));
    let start = now - time::Duration::minutes(5);
    let ca_key = fresh_signing_key();
    let mut ca = CertificateParams::default();
    ca.distinguished_name
        .push(DnType::CommonName, format!("{} local CA", opts.org));
    ca.distinguished_name
        .push(DnType::OrganizationName, opts.org.clone());
    ca.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    ca.not_before = start;
    ca.not_after = start + time::Duration::days(i64::from(opts.validity_days) + 1);
    ca.serial_number = Some(SerialNumber::from_slice(&random_serial()));
    ca.key_identifier_method = KeyIdMethod::PreSpecified(key_identifier(&ca_key));
    let ca_signer = rcgen_key(&ca_key);
    let ca_cert = ca.self_signed(&ca_signer).map_err(crypto)?;
    let issuer = rcgen::Issuer::new(ca.clone(), rcgen_key(&ca_key));

    let ee_key = fresh_signing_key();
    let mut ee = CertificateParams::default();
    ee.distinguished_name
        .push(DnType::CommonName, opts.name.clone());
    ee.distinguished_name
        .push(DnType::OrganizationName, opts.org.clone());
    ee.is_ca = IsCa::ExplicitNoCa;
    ee.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    ee.extended_key_usages = vec![
        // id-kp-documentSigning (RFC 9336), which C2PA prefers, plus emailProtection.
        ExtendedKeyUsagePurpose::Other(vec![1, 3, 6, 1, 5, 5, 7, 3, 36]),
        ExtendedKeyUsagePurpose::EmailProtection,
    ];
    ee.not_before = start;
    ee.not_after = start + time::Duration::days(i64::from(opts.validity_days));
    let serial = random_serial();
    ee.serial_number = Some(SerialNumber::from_slice(&serial));
    ee.key_identifier_method = KeyIdMethod::PreSpecified(key_identifier(&ee_key));
    // rcgen leaves AKI off by default, and c2pa then rejects the certificate.
    ee.use_authority_key_identifier_extension = true;
    let ee_cert = ee.signed_by(&rcgen_key(&ee_key), &issuer).map_err(crypto)?;

    let key_pem = ee_key
        .to_pkcs8_pem(LineEnding::LF)
        .map_err(|e| Error::Crypto(format!("cannot encode the private key: {e}")))?;
    let ca_pem = ca_cert.pem();
    let chain_pem = format!("{}{}", ee_cert.pem(), ca_pem);
    let fmt_time = |t: time::OffsetDateTime| {
        t.format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_else(|_| t.to_string())
    };
    let info = CertInfo {
        signer_sha256: hex::encode(Sha256::digest(ee_cert.der())),
        ca_sha256: hex::encode(Sha256::digest(ca_cert.der())),
        subject: format!("CN={}, O={}", opts.name, opts.org),
        not_before: fmt_time(ee.not_before),
        not_after: fmt_time(ee.not_after),
        serial: hex::encode(&serial),
    };
    Ok(GeneratedKeys {
        key_pem: Zeroizing::new(key_pem.to_string()),
        chain_pem,
        ca_pem,
        info,
    })
}

/// A loaded signing credential: the Ed25519 key (zeroized on drop) and its chain.
pub struct SigningCredential {
    pub(crate) key: SigningKey,
    pub(crate) chain_der: Vec<Vec<u8>>,
}

impl fmt::Debug for SigningCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningCredential")
            .field("certificates", &self.chain_der.len())
            .finish_non_exhaustive()
    }
}

impl SigningCredential {
    /// Loads a PKCS#8 PEM Ed25519 private key and a PEM chain (end-entity first), and checks
    /// that the key matches the end-entity certificate.
    ///
    /// # Errors
    /// [`Error::Key`] when either PEM does not parse or the key does not match the certificate.
    pub fn from_pem(chain_pem: &str, key_pem: &str) -> Result<Self, Error> {
        let key = SigningKey::from_pkcs8_pem(key_pem).map_err(|_| {
            Error::Key("the signing key is not an Ed25519 PKCS#8 PEM private key".into())
        })?;
        let chain_der: Vec<Vec<u8>> = pem::parse_many(chain_pem)
            .map_err(|e| Error::Key(format!("the certificate chain is not valid PEM: {e}")))?
            .into_iter()
            .filter(|p| p.tag() == "CERTIFICATE")
            .map(|p| p.into_contents())
            .collect();
        let Some(ee) = chain_der.first() else {
            return Err(Error::Key(
                "the certificate chain holds no certificate".into(),
            ));
        };
        let (_, cert) = x509_parser::parse_x509_certificate(ee)
            .map_err(|e| Error::Key(format!("the signing certificate does not parse: {e}")))?;
        let spki_key = cert.public_key().subject_public_key.data.as_ref();
        if spki_key != key.verifying_key().as_bytes() {
            return Err(Error::Key(
                "the signing key does not match the first certificate of the chain".into(),
            ));
        }
        Ok(SigningCredential { key, chain_der })
    }

    /// The signer's certificate (DER).
    pub fn certificate(&self) -> &[u8] {
        &self.chain_der[0]
    }

    /// Signs arbitrary bytes with the credential's key (used by the ledger).
    pub fn sign_bytes(&self, msg: &[u8]) -> [u8; 64] {
        self.key.sign(msg).to_bytes()
    }

    /// The signing certificate's subject, e.g. `CN=ACME generator, O=ACME`.
    pub fn subject(&self) -> String {
        x509_parser::parse_x509_certificate(&self.chain_der[0])
            .map(|(_, c)| c.subject().to_string())
            .unwrap_or_default()
    }

    /// The raw Ed25519 public key.
    pub fn public_key(&self) -> [u8; 32] {
        self.key.verifying_key().to_bytes()
    }
}

/// The c2pa signer over a [`SigningCredential`]. Kept small so a KMS- or HSM-backed signer
/// can replace it later.
pub(crate) struct Ed25519Signer<'a>(pub(crate) &'a SigningCredential);

impl c2pa::Signer for Ed25519Signer<'_> {
    fn sign(&self, data: &[u8]) -> c2pa::Result<Vec<u8>> {
        Ok(self.0.key.sign(data).to_bytes().to_vec())
    }
    fn alg(&self) -> c2pa::SigningAlg {
        c2pa::SigningAlg::Ed25519
    }
    fn certs(&self) -> c2pa::Result<Vec<Vec<u8>>> {
        Ok(self.0.chain_der.clone())
    }
    fn reserve_size(&self) -> usize {
        // Signature plus the certificate chain in the COSE header, with room to spare.
        2048 + self.0.chain_der.iter().map(Vec::len).sum::<usize>()
    }
}
