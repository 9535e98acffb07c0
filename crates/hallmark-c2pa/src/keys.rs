//! Signing credentials: a certificate chain (end-entity first) and what signs with its key:
//! a private key in memory (Ed25519, ECDSA P-256 / P-384 or RSA-PSS), or an external command
//! (a KMS, an HSM, a signing service) that never hands the key over. Plus `generate`, which
//! makes a chain that follows the C2PA certificate policy: an ECDSA P-256 CA issuing the
//! end-entity certificate.

use std::fmt;
use std::time::Duration;

use ed25519_dalek::pkcs8::{DecodePrivateKey, EncodePrivateKey, spki::der::pem::LineEnding};
use ed25519_dalek::{Signer as _, SigningKey};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::Error;

/// The signature algorithm of a signing (end-entity) key. The C2PA certificate policy
/// allows all four for end-entity certificates; a CA must use ECDSA or RSA.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, serde::Serialize, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum KeyAlg {
    /// Ed25519 (EdDSA): small and fast; hallmark's default.
    #[default]
    Ed25519,
    /// ECDSA on P-256 with SHA-256.
    Es256,
    /// ECDSA on P-384 with SHA-384.
    Es384,
    /// RSASSA-PSS with SHA-256 (3072-bit keys from `generate`).
    Ps256,
}

impl KeyAlg {
    /// Every algorithm, in the order `--alg` lists them.
    pub const ALL: [KeyAlg; 4] = [KeyAlg::Ed25519, KeyAlg::Es256, KeyAlg::Es384, KeyAlg::Ps256];

    /// The lower-case name (`ed25519`, `es256`, ...), as c2patool spells it.
    pub fn name(self) -> &'static str {
        match self {
            KeyAlg::Ed25519 => "ed25519",
            KeyAlg::Es256 => "es256",
            KeyAlg::Es384 => "es384",
            KeyAlg::Ps256 => "ps256",
        }
    }

    pub(crate) fn signing_alg(self) -> c2pa::SigningAlg {
        match self {
            KeyAlg::Ed25519 => c2pa::SigningAlg::Ed25519,
            KeyAlg::Es256 => c2pa::SigningAlg::Es256,
            KeyAlg::Es384 => c2pa::SigningAlg::Es384,
            KeyAlg::Ps256 => c2pa::SigningAlg::Ps256,
        }
    }
}

impl fmt::Display for KeyAlg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for KeyAlg {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        KeyAlg::ALL
            .into_iter()
            .find(|a| a.name().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| {
                Error::Parameter(format!(
                    "unknown signing algorithm {s:?}: use ed25519, es256, es384 or ps256"
                ))
            })
    }
}

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
    /// The end-entity key's algorithm (the CA is always ECDSA P-256).
    pub alg: KeyAlg,
}

impl Default for CertOptions {
    fn default() -> Self {
        CertOptions {
            org: "hallmark local signer".into(),
            name: "hallmark".into(),
            validity_days: 3650,
            alg: KeyAlg::Ed25519,
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
    /// The signing key's algorithm.
    pub alg: KeyAlg,
    /// The CA key's algorithm (`es256`: ECDSA P-256).
    pub ca_alg: String,
}

/// The CA's key, an ECDSA P-256 key as rcgen needs it (public point and a DER signer).
struct CaKey {
    key: p256::ecdsa::SigningKey,
    point: Vec<u8>,
}

impl rcgen::PublicKeyData for CaKey {
    fn der_bytes(&self) -> &[u8] {
        &self.point
    }
    fn algorithm(&self) -> &'static rcgen::SignatureAlgorithm {
        &rcgen::PKCS_ECDSA_P256_SHA256
    }
}

impl rcgen::SigningKey for CaKey {
    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, rcgen::Error> {
        let sig: p256::ecdsa::Signature = p256::ecdsa::signature::Signer::sign(&self.key, msg);
        Ok(sig.to_der().as_bytes().to_vec())
    }
}

/// A fresh end-entity key.
enum NewKey {
    Ed25519(SigningKey),
    P256(p256::ecdsa::SigningKey),
    P384(p384::ecdsa::SigningKey),
    Rsa(Box<rsa::RsaPrivateKey>),
}

/// An end-entity public key as rcgen puts it into the certificate.
struct PublicOf {
    der: Vec<u8>,
    alg: &'static rcgen::SignatureAlgorithm,
}

impl rcgen::PublicKeyData for PublicOf {
    fn der_bytes(&self) -> &[u8] {
        &self.der
    }
    fn algorithm(&self) -> &'static rcgen::SignatureAlgorithm {
        self.alg
    }
}

const RSA_BITS: usize = 3072;

impl NewKey {
    fn generate(alg: KeyAlg) -> Result<NewKey, Error> {
        let mut rng = rand_core::OsRng;
        Ok(match alg {
            KeyAlg::Ed25519 => NewKey::Ed25519(SigningKey::generate(&mut rng)),
            KeyAlg::Es256 => NewKey::P256(p256::ecdsa::SigningKey::random(&mut rng)),
            KeyAlg::Es384 => NewKey::P384(p384::ecdsa::SigningKey::random(&mut rng)),
            KeyAlg::Ps256 => NewKey::Rsa(Box::new(
                rsa::RsaPrivateKey::new(&mut rng, RSA_BITS)
                    .map_err(|e| Error::Crypto(format!("RSA key generation failed: {e}")))?,
            )),
        })
    }

    fn public(&self) -> Result<PublicOf, Error> {
        Ok(match self {
            NewKey::Ed25519(k) => PublicOf {
                der: k.verifying_key().to_bytes().to_vec(),
                alg: &rcgen::PKCS_ED25519,
            },
            NewKey::P256(k) => PublicOf {
                der: k
                    .verifying_key()
                    .to_encoded_point(false)
                    .as_bytes()
                    .to_vec(),
                alg: &rcgen::PKCS_ECDSA_P256_SHA256,
            },
            NewKey::P384(k) => PublicOf {
                der: k
                    .verifying_key()
                    .to_encoded_point(false)
                    .as_bytes()
                    .to_vec(),
                alg: &rcgen::PKCS_ECDSA_P384_SHA384,
            },
            NewKey::Rsa(k) => {
                use rsa::pkcs1::EncodeRsaPublicKey as _;
                PublicOf {
                    der: k
                        .to_public_key()
                        .to_pkcs1_der()
                        .map_err(|e| Error::Crypto(format!("cannot encode the RSA key: {e}")))?
                        .into_vec(),
                    // rsaEncryption in the certificate; the signatures are PSS (PS256).
                    alg: &rcgen::PKCS_RSA_SHA256,
                }
            }
        })
    }

    fn pkcs8_pem(&self) -> Result<Zeroizing<String>, Error> {
        let err =
            |e: &dyn fmt::Display| Error::Crypto(format!("cannot encode the private key: {e}"));
        Ok(match self {
            NewKey::Ed25519(k) => ed25519_pem(k)?,
            NewKey::P256(k) => k.to_pkcs8_pem(LineEnding::LF).map_err(|e| err(&e))?,
            NewKey::P384(k) => k.to_pkcs8_pem(LineEnding::LF).map_err(|e| err(&e))?,
            NewKey::Rsa(k) => {
                use rsa::pkcs8::EncodePrivateKey as _;
                k.to_pkcs8_pem(LineEnding::LF).map_err(|e| err(&e))?
            }
        })
    }
}

/// An Ed25519 key as PKCS#8 v1 PEM (the private key alone): what OpenSSL 3.0 and most KMS
/// import tools read (ed25519-dalek's own encoding, v2 with the public key, they refuse).
fn ed25519_pem(k: &SigningKey) -> Result<Zeroizing<String>, Error> {
    ed25519_dalek::pkcs8::KeypairBytes {
        secret_key: k.to_bytes(),
        public_key: None,
    }
    .to_pkcs8_pem(LineEnding::LF)
    .map_err(|e| Error::Crypto(format!("cannot encode the private key: {e}")))
}

fn random_serial() -> Vec<u8> {
    let mut s = [0u8; 16];
    rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut s);
    s[0] &= 0x7f; // keep it a positive INTEGER
    s[0] |= 0x01; // and of full length
    s.to_vec()
}

fn key_identifier(public: &[u8]) -> Vec<u8> {
    Sha256::digest(public)[..20].to_vec()
}

/// Generates a local CA (ECDSA P-256, as the C2PA certificate policy requires of a CA) and
/// an end-entity signing certificate with a key of `opts.alg`, valid for C2PA
/// (digitalSignature key usage, documentSigning and emailProtection EKUs, Authority and
/// Subject Key Identifiers). The CA's private key is discarded: it exists only to issue this
/// one certificate.
///
/// # Errors
/// [`Error::Parameter`] for an empty name or a zero validity; [`Error::Crypto`] if key
/// generation or certificate serialisation fails.
pub fn generate(opts: &CertOptions) -> Result<GeneratedKeys, Error> {
    generate_at(opts, time::OffsetDateTime::now_utc())
}

/// Like [`generate`] with an explicit start of validity (tests use it for expired chains).
///
/// # Errors
/// As [`generate`].
pub fn generate_at(opts: &CertOptions, now: time::OffsetDateTime) -> Result<GeneratedKeys, Error> {
    generate_for(
        opts,
        now,
        time::Duration::days(i64::from(opts.validity_days)),
    )
}

/// Like [`generate_at`] with the end-entity certificate's lifetime given exactly (tests make
/// certificates that expire within seconds). The CA lives a day longer.
///
/// # Errors
/// As [`generate`].
pub fn generate_for(
    opts: &CertOptions,
    now: time::OffsetDateTime,
    lifetime: time::Duration,
) -> Result<GeneratedKeys, Error> {
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyIdMethod,
        KeyUsagePurpose, SerialNumber,
    };
    if opts.name.trim().is_empty() || opts.org.trim().is_empty() {
        return Err(Error::Parameter("name and org must not be empty".into()));
    }
    if opts.validity_days == 0 || lifetime <= time::Duration::ZERO {
        return Err(Error::Parameter("validity must be at least one day".into()));
    }
    let crypto = |e: rcgen::Error| Error::Crypto(format!("certificate generation failed: {e}"));
    let start = now - time::Duration::minutes(5);
    let ca_signing = p256::ecdsa::SigningKey::random(&mut rand_core::OsRng);
    let ca_key = CaKey {
        point: ca_signing
            .verifying_key()
            .to_encoded_point(false)
            .as_bytes()
            .to_vec(),
        key: ca_signing,
    };
    let mut ca = CertificateParams::default();
    ca.distinguished_name
        .push(DnType::CommonName, format!("{} local CA", opts.org));
    ca.distinguished_name
        .push(DnType::OrganizationName, opts.org.clone());
    ca.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    ca.not_before = start;
    ca.not_after = start + lifetime + time::Duration::days(1);
    ca.serial_number = Some(SerialNumber::from_slice(&random_serial()));
    ca.key_identifier_method = KeyIdMethod::PreSpecified(key_identifier(&ca_key.point));
    let ca_cert = ca.self_signed(&ca_key).map_err(crypto)?;
    let issuer = rcgen::Issuer::new(ca.clone(), ca_key);

    let ee_key = NewKey::generate(opts.alg)?;
    let ee_public = ee_key.public()?;
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
    ee.not_after = start + lifetime;
    let serial = random_serial();
    ee.serial_number = Some(SerialNumber::from_slice(&serial));
    ee.key_identifier_method = KeyIdMethod::PreSpecified(key_identifier(&ee_public.der));
    // rcgen leaves AKI off by default, and c2pa then rejects the certificate.
    ee.use_authority_key_identifier_extension = true;
    let ee_cert = ee.signed_by(&ee_public, &issuer).map_err(crypto)?;

    let key_pem = ee_key.pkcs8_pem()?;
    let ca_pem = ca_cert.pem();
    let chain_pem = format!("{}{}", ee_cert.pem(), ca_pem);
    let info = CertInfo {
        signer_sha256: hex::encode(Sha256::digest(ee_cert.der())),
        ca_sha256: hex::encode(Sha256::digest(ca_cert.der())),
        subject: format!("CN={}, O={}", opts.name, opts.org),
        not_before: rfc3339(ee.not_before),
        not_after: rfc3339(ee.not_after),
        serial: hex::encode(&serial),
        alg: opts.alg,
        ca_alg: "es256".into(),
    };
    Ok(GeneratedKeys {
        key_pem,
        chain_pem,
        ca_pem,
        info,
    })
}

fn rfc3339(t: time::OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| t.to_string())
}

/// An external signer: a shell command that reads the bytes to sign on standard input and
/// writes the raw signature on standard output (c2patool's `--signer-path` convention). It
/// runs with `HALLMARK_SIGN_ALG` set to the algorithm (`es256`, ...). ECDSA signatures may
/// come as DER (what `openssl dgst -sign` writes) or as the fixed-size `r || s` COSE uses.
#[derive(Clone, Debug)]
pub struct SignerCommand {
    /// The command line, run by `sh -c`.
    pub command: String,
    /// How long one signature may take before the command is killed.
    pub timeout: Duration,
}

/// An RFC 3161 time-stamp authority: every signature gets a time stamp from it, so the
/// manifest stays valid after the signing certificate expires.
#[derive(Clone, Debug)]
pub struct TimeStamper {
    /// The authority's URL (HTTP POST of `application/timestamp-query`).
    pub url: String,
    /// How long the request may take.
    pub timeout: Duration,
}

enum SignKey {
    Ed25519(SigningKey),
    Native(c2pa::BoxedSigner),
    Command(SignerCommand),
}

/// The Ed25519 key that signs ledger records and checkpoints: the ledger's identity. It is
/// the C2PA signing key itself when that is an Ed25519 key in memory.
pub struct RecordKey(SigningKey);

impl fmt::Debug for RecordKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("RecordKey")
            .field(&hex::encode(self.public_key()))
            .finish()
    }
}

impl RecordKey {
    /// Loads an Ed25519 PKCS#8 PEM private key.
    ///
    /// # Errors
    /// [`Error::Key`] when `key_pem` is not one.
    pub fn from_pkcs8_pem(key_pem: &str) -> Result<Self, Error> {
        SigningKey::from_pkcs8_pem(key_pem)
            .map(RecordKey)
            .map_err(|_| {
                Error::Key("the ledger key is not an Ed25519 PKCS#8 PEM private key".into())
            })
    }

    /// A fresh random key, PKCS#8 PEM (secret: write it with mode 0600).
    ///
    /// # Errors
    /// [`Error::Crypto`] if encoding fails.
    pub fn generate_pem() -> Result<Zeroizing<String>, Error> {
        ed25519_pem(&SigningKey::generate(&mut rand_core::OsRng))
    }

    /// The signature of `msg`.
    pub fn sign(&self, msg: &[u8]) -> [u8; 64] {
        self.0.sign(msg).to_bytes()
    }

    /// The raw public key.
    pub fn public_key(&self) -> [u8; 32] {
        self.0.verifying_key().to_bytes()
    }
}

/// A loaded signing credential: what signs (a key in memory, zeroized on drop, or an
/// external command) and its certificate chain, checked to belong together.
pub struct SigningCredential {
    key: SignKey,
    alg: KeyAlg,
    pub(crate) chain_der: Vec<Vec<u8>>,
    /// The Ed25519 key that signs ledger records (the signing key itself when it is Ed25519).
    record_key: Option<RecordKey>,
    pub(crate) tsa: Option<TimeStamper>,
}

impl fmt::Debug for SigningCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningCredential")
            .field("alg", &self.alg)
            .field("certificates", &self.chain_der.len())
            .field(
                "external",
                &matches!(self.key, SignKey::Command(_)).then_some(true),
            )
            .field("tsa", &self.tsa.as_ref().map(|t| &t.url))
            .finish_non_exhaustive()
    }
}

fn parse_chain(chain_pem: &str) -> Result<Vec<Vec<u8>>, Error> {
    let chain_der: Vec<Vec<u8>> = pem::parse_many(chain_pem)
        .map_err(|e| Error::Key(format!("the certificate chain is not valid PEM: {e}")))?
        .into_iter()
        .filter(|p| p.tag() == "CERTIFICATE")
        .map(|p| p.into_contents())
        .collect();
    if chain_der.is_empty() {
        return Err(Error::Key(
            "the certificate chain holds no certificate".into(),
        ));
    }
    Ok(chain_der)
}

/// The algorithm a certificate's public key signs with (RSA keys sign PS256).
pub(crate) fn cert_alg(der: &[u8]) -> Result<KeyAlg, Error> {
    let (_, cert) = x509_parser::parse_x509_certificate(der)
        .map_err(|e| Error::Key(format!("the signing certificate does not parse: {e}")))?;
    let spki = cert.public_key();
    let oid = spki.algorithm.algorithm.to_id_string();
    let curve = spki
        .algorithm
        .parameters
        .as_ref()
        .and_then(|p| p.as_oid().ok())
        .map(|o| o.to_id_string());
    match (oid.as_str(), curve.as_deref()) {
        ("1.3.101.112", _) => Ok(KeyAlg::Ed25519),
        ("1.2.840.10045.2.1", Some("1.2.840.10045.3.1.7")) => Ok(KeyAlg::Es256),
        ("1.2.840.10045.2.1", Some("1.3.132.0.34")) => Ok(KeyAlg::Es384),
        ("1.2.840.113549.1.1.1" | "1.2.840.113549.1.1.10", _) => Ok(KeyAlg::Ps256),
        _ => Err(Error::Key(format!(
            "the signing certificate's key ({oid}{}) is not one hallmark signs with (Ed25519, ECDSA P-256 or P-384, RSA)",
            curve.map(|c| format!(" on curve {c}")).unwrap_or_default()
        ))),
    }
}

impl SigningCredential {
    /// Loads a PKCS#8 PEM private key (Ed25519, ECDSA P-256 or P-384, or RSA, which signs
    /// PS256) and a PEM chain (end-entity first), and checks them before any signing: the
    /// key matches the certificate, the certificate is valid now and passes c2pa's profile
    /// checks.
    ///
    /// # Errors
    /// [`Error::Key`] when either PEM does not parse, the key's algorithm is not supported,
    /// the key does not match the certificate, or the certificate is expired or fails the
    /// C2PA profile.
    pub fn from_pem(chain_pem: &str, key_pem: &str) -> Result<Self, Error> {
        if chain_pem.contains("PRIVATE KEY-----") && key_pem.contains("-----BEGIN CERTIFICATE-----")
        {
            return Err(Error::Key(
                "the certificate chain and the private key are swapped: give the chain (CERTIFICATE blocks) first, the key (PRIVATE KEY) second".into(),
            ));
        }
        if chain_pem.contains("PRIVATE KEY-----") {
            return Err(Error::Key(
                "the certificate chain holds a private key: keep keys out of chain files (a chain is public)".into(),
            ));
        }
        let chain_der = parse_chain(chain_pem)?;
        let alg = cert_alg(&chain_der[0])?;
        let key = if alg == KeyAlg::Ed25519 {
            let k = SigningKey::from_pkcs8_pem(key_pem).map_err(|_| {
                Error::Key(
                    "the signing certificate holds an Ed25519 key, but the private key is not an Ed25519 PKCS#8 PEM key".into(),
                )
            })?;
            if k.verifying_key().as_bytes() != ed25519_public(&chain_der[0]).as_slice() {
                return Err(Error::Key(
                    "the signing key does not match the first certificate of the chain".into(),
                ));
            }
            SignKey::Ed25519(k)
        } else {
            if !key_pem.contains("-----BEGIN PRIVATE KEY-----") {
                return Err(Error::Key(format!(
                    "the private key must be PKCS#8 PEM (\"BEGIN PRIVATE KEY\") for the certificate's {alg} key; convert it with `openssl pkcs8 -topk8 -nocrypt`"
                )));
            }
            let chain_pem_only: String = chain_der
                .iter()
                .map(|d| pem::encode(&pem::Pem::new("CERTIFICATE", d.clone())))
                .collect();
            let signer = c2pa::create_signer::from_keys(
                chain_pem_only.as_bytes(),
                key_pem.as_bytes(),
                alg.signing_alg(),
                None,
            )
            .map_err(|e| {
                Error::Key(format!(
                    "the private key cannot sign {alg} for this certificate: {e}"
                ))
            })?;
            SignKey::Native(signer)
        };
        let record_key = match &key {
            SignKey::Ed25519(k) => Some(RecordKey(k.clone())),
            _ => None,
        };
        let cred = SigningCredential {
            key,
            alg,
            chain_der,
            record_key,
            tsa: None,
        };
        cred.check()?;
        Ok(cred)
    }

    /// A credential whose key stays outside: `command` signs (see [`SignerCommand`]) for the
    /// chain in `chain_pem`, with the algorithm of the certificate's key (RSA keys sign
    /// PS256). The command is run once here on a probe message and its signature checked
    /// against the certificate, so a signer that fails, hangs or answers garbage is found
    /// before any file is signed.
    ///
    /// # Errors
    /// [`Error::Key`] for a bad chain or a certificate that fails the checks of
    /// [`SigningCredential::from_pem`]; [`Error::Crypto`] when the command fails, times out
    /// or returns a signature that does not verify.
    pub fn from_command(chain_pem: &str, command: SignerCommand) -> Result<Self, Error> {
        if command.command.trim().is_empty() {
            return Err(Error::Parameter("the signer command is empty".into()));
        }
        if chain_pem.contains("PRIVATE KEY-----") {
            return Err(Error::Key(
                "the certificate chain holds a private key: give --cert the chain only (the signer command holds the key)".into(),
            ));
        }
        let chain_der = parse_chain(chain_pem)?;
        let alg = cert_alg(&chain_der[0])?;
        let cred = SigningCredential {
            key: SignKey::Command(command),
            alg,
            chain_der,
            record_key: None,
            tsa: None,
        };
        cred.check()?;
        Ok(cred)
    }

    /// Time-stamps every signature at `tsa`.
    pub fn with_time_stamper(mut self, tsa: TimeStamper) -> Self {
        self.tsa = Some(tsa);
        self
    }

    /// Uses the Ed25519 key in `key_pem` (PKCS#8) to sign ledger records, for a credential
    /// whose own key cannot (another algorithm, or an external signer).
    ///
    /// # Errors
    /// [`Error::Key`] when `key_pem` is not an Ed25519 PKCS#8 key.
    pub fn with_record_key(mut self, key_pem: &str) -> Result<Self, Error> {
        self.record_key = Some(RecordKey::from_pkcs8_pem(key_pem)?);
        Ok(self)
    }

    /// The key that signs ledger records, if the credential has one.
    pub fn record_key(&self) -> Option<&RecordKey> {
        self.record_key.as_ref()
    }

    /// Checks the credential before it signs anything: the certificate is valid now and
    /// passes c2pa's end-entity profile, and a probe signature verifies against it.
    fn check(&self) -> Result<(), Error> {
        let report = crate::profile::check_chain_der(&self.chain_der);
        if let Some(problem) = report.end_entity_problems().next() {
            return Err(Error::Key(format!(
                "the signing certificate cannot sign C2PA manifests: {problem} (run `hallmark cert check` on the chain for the whole report)"
            )));
        }
        let probe = b"hallmark: does this key match its certificate?";
        let sig = self.raw_sign(probe)?;
        if !crate::profile::signature_verifies(self.alg, &self.chain_der[0], probe, &sig) {
            return Err(match self.key {
                SignKey::Command(_) => Error::Crypto(format!(
                    "the signer command's signature does not verify with the certificate's key (it must write the raw {} signature of its standard input, for this certificate's key)",
                    self.alg
                )),
                _ => Error::Key(
                    "the signing key does not match the first certificate of the chain".into(),
                ),
            });
        }
        Ok(())
    }

    /// Signs `data` with the credential's key, as COSE needs the signature.
    pub(crate) fn raw_sign(&self, data: &[u8]) -> Result<Vec<u8>, Error> {
        match &self.key {
            SignKey::Ed25519(k) => Ok(k.sign(data).to_bytes().to_vec()),
            SignKey::Native(s) => s
                .sign(data)
                .map_err(|e| Error::Crypto(format!("signing failed: {e}"))),
            SignKey::Command(c) => {
                let sig = crate::external::run(c, self.alg, data)?;
                Ok(crate::profile::cose_signature(self.alg, sig))
            }
        }
    }

    /// The signing algorithm.
    pub fn alg(&self) -> KeyAlg {
        self.alg
    }

    /// Whether an external command signs.
    pub fn is_external(&self) -> bool {
        matches!(self.key, SignKey::Command(_))
    }

    /// The signer's certificate (DER).
    pub fn certificate(&self) -> &[u8] {
        &self.chain_der[0]
    }

    /// Signs ledger records: the Ed25519 record key's signature of `msg`, or `None` when the
    /// credential has no Ed25519 key (see [`SigningCredential::with_record_key`]).
    pub fn sign_bytes(&self, msg: &[u8]) -> Option<[u8; 64]> {
        self.record_key.as_ref().map(|k| k.sign(msg))
    }

    /// The signing certificate's subject, e.g. `CN=ACME generator, O=ACME`.
    pub fn subject(&self) -> String {
        x509_parser::parse_x509_certificate(&self.chain_der[0])
            .map(|(_, c)| c.subject().to_string())
            .unwrap_or_default()
    }

    /// The raw Ed25519 public key of the record key (the ledger's identity), if there is one.
    pub fn public_key(&self) -> Option<[u8; 32]> {
        self.record_key.as_ref().map(RecordKey::public_key)
    }
}

fn ed25519_public(cert_der: &[u8]) -> Vec<u8> {
    x509_parser::parse_x509_certificate(cert_der)
        .map(|(_, c)| c.public_key().subject_public_key.data.to_vec())
        .unwrap_or_default()
}

/// The c2pa signer over a [`SigningCredential`].
pub(crate) struct CredentialSigner<'a>(pub(crate) &'a SigningCredential);

impl c2pa::Signer for CredentialSigner<'_> {
    fn sign(&self, data: &[u8]) -> c2pa::Result<Vec<u8>> {
        self.0
            .raw_sign(data)
            .map_err(|e| c2pa::Error::BadParam(e.to_string()))
    }
    fn alg(&self) -> c2pa::SigningAlg {
        self.0.alg.signing_alg()
    }
    fn certs(&self) -> c2pa::Result<Vec<Vec<u8>>> {
        Ok(self.0.chain_der.clone())
    }
    fn reserve_size(&self) -> usize {
        // Signature (RSA-3072 or 4096 at most) plus the chain in the COSE header, and a time
        // stamp token with the authority's own chain when there is one.
        4096 + self.0.chain_der.iter().map(Vec::len).sum::<usize>()
            + if self.0.tsa.is_some() { 16 * 1024 } else { 0 }
    }
    fn send_timestamp_request(&self, message: &[u8]) -> Option<c2pa::Result<Vec<u8>>> {
        let tsa = self.0.tsa.as_ref()?;
        Some(crate::external::time_stamp(tsa, message))
    }
}
