//! What a C2PA validator will say about a certificate chain before anything is signed with
//! it: c2pa's own end-entity profile check (the one `Reader` applies: version, validity,
//! algorithms and key sizes, key usage, EKUs, key identifiers), plus the C2PA certificate
//! policy for the CAs above it (ECDSA or RSA keys, CA basic constraints, certificate
//! signing) and the chain's order.

use std::collections::BTreeSet;

use x509_parser::prelude::{FromDer, X509Certificate};

use crate::{Error, KeyAlg};

/// One certificate of a checked chain.
#[derive(Clone, Debug, serde::Serialize, schemars::JsonSchema)]
pub struct CertReport {
    /// `end-entity` (the signer) or `ca`.
    pub role: String,
    /// The certificate's subject.
    pub subject: String,
    /// Its issuer.
    pub issuer: String,
    /// Its public key's algorithm, e.g. `ed25519`, `ecdsa P-256`, `rsa 3072`.
    pub key: String,
    /// Start of validity, RFC 3339.
    pub not_before: String,
    /// End of validity, RFC 3339.
    pub not_after: String,
    /// What a C2PA validator rejects, one sentence each; empty when it passes.
    pub problems: Vec<String>,
    /// Where it departs from the C2PA certificate policy (what the C2PA trust list
    /// requires), though validators given it as an anchor accept it.
    pub policy: Vec<String>,
}

/// The result of [`check_chain`].
#[derive(Clone, Debug, serde::Serialize, schemars::JsonSchema)]
pub struct ChainReport {
    /// Whether the chain passes: no problems and no policy departures anywhere.
    pub ok: bool,
    /// Whether a C2PA validator accepts the chain (no problems; policy departures allowed).
    pub accepted: bool,
    /// The signing algorithm the end-entity key signs with, when it is one C2PA allows.
    pub alg: Option<KeyAlg>,
    /// The certificates, end-entity first.
    pub certificates: Vec<CertReport>,
}

impl ChainReport {
    /// The end-entity certificate's problems: these make signing pointless.
    pub fn end_entity_problems(&self) -> impl Iterator<Item = &str> {
        self.certificates
            .first()
            .into_iter()
            .flat_map(|c| c.problems.iter().map(String::as_str))
    }
}

/// Checks a PEM chain (end-entity first) against c2pa's certificate profile and the C2PA
/// certificate policy.
///
/// # Errors
/// [`Error::Key`] when the PEM holds no certificate.
pub fn check_chain(chain_pem: &str) -> Result<ChainReport, Error> {
    let chain = pem::parse_many(chain_pem)
        .map_err(|e| Error::Key(format!("the certificate chain is not valid PEM: {e}")))?
        .into_iter()
        .filter(|p| p.tag() == "CERTIFICATE")
        .map(|p| p.into_contents())
        .collect::<Vec<_>>();
    if chain.is_empty() {
        return Err(Error::Key("the file holds no PEM certificate".into()));
    }
    Ok(check_chain_der(&chain))
}

fn rfc3339(t: x509_parser::time::ASN1Time) -> String {
    t.to_datetime()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| t.to_string())
}

fn key_name(cert: &X509Certificate<'_>) -> String {
    use x509_parser::public_key::PublicKey;
    let spki = cert.public_key();
    match spki.parsed() {
        Ok(PublicKey::RSA(k)) => format!("rsa {}", k.key_size()),
        Ok(PublicKey::EC(p)) => {
            let curve = spki
                .algorithm
                .parameters
                .as_ref()
                .and_then(|p| p.as_oid().ok())
                .map(|o| o.to_id_string());
            match curve.as_deref() {
                Some("1.2.840.10045.3.1.7") => "ecdsa P-256".into(),
                Some("1.3.132.0.34") => "ecdsa P-384".into(),
                Some("1.3.132.0.35") => "ecdsa P-521".into(),
                _ => format!("ecdsa ({} bits)", p.key_size()),
            }
        }
        _ if spki.algorithm.algorithm.to_id_string() == "1.3.101.112" => "ed25519".into(),
        _ => format!("other ({})", spki.algorithm.algorithm.to_id_string()),
    }
}

/// [`check_chain`] over DER certificates.
pub(crate) fn check_chain_der(chain: &[Vec<u8>]) -> ChainReport {
    let mut certificates = vec![];
    let mut alg = None;
    for (i, der) in chain.iter().enumerate() {
        let Ok((_, cert)) = X509Certificate::from_der(der) else {
            certificates.push(CertReport {
                role: if i == 0 { "end-entity" } else { "ca" }.into(),
                subject: String::new(),
                issuer: String::new(),
                key: String::new(),
                not_before: String::new(),
                not_after: String::new(),
                problems: vec!["the certificate does not parse as X.509".into()],
                policy: vec![],
            });
            continue;
        };
        let mut problems = vec![];
        let mut policy = vec![];
        let validity = cert.validity();
        if !validity.is_valid() {
            let now = x509_parser::time::ASN1Time::now();
            problems.push(if now < validity.not_before {
                format!("not valid yet (from {})", rfc3339(validity.not_before))
            } else {
                format!("expired on {}", rfc3339(validity.not_after))
            });
        }
        let key = key_name(&cert);
        if i == 0 {
            alg = crate::keys::cert_alg(der).ok();
            problems.extend(end_entity_profile(der));
        } else {
            if key == "ed25519" {
                policy.push(
                    "a CA key must be ECDSA or RSA (C2PA certificate policy: Ed25519 is allowed only for end-entity certificates)"
                        .into(),
                );
            }
            if !cert.is_ca() {
                problems.push("not a CA certificate (basicConstraints cA is not set)".into());
            }
            if let Ok(Some(ku)) = cert.key_usage()
                && !ku.value.key_cert_sign()
            {
                problems
                    .push("its key usage does not allow signing certificates (keyCertSign)".into());
            }
        }
        // The chain must go upwards: each certificate issued by the next one.
        if let Some(next) = chain.get(i + 1)
            && let Ok((_, up)) = X509Certificate::from_der(next)
        {
            if cert.issuer() != up.subject() {
                problems.push(format!(
                    "issued by {}, but the next certificate in the chain is {} (the chain must be ordered end-entity first, each followed by its issuer)",
                    cert.issuer(),
                    up.subject()
                ));
            } else if let (Some(aki), Some(ski)) = (authority_key_id(&cert), subject_key_id(&up))
                && aki != ski
            {
                problems.push(
                    "its authority key identifier does not match the next certificate's subject key identifier".into(),
                );
            }
        }
        certificates.push(CertReport {
            role: if i == 0 { "end-entity" } else { "ca" }.into(),
            subject: cert.subject().to_string(),
            issuer: cert.issuer().to_string(),
            key,
            not_before: rfc3339(validity.not_before),
            not_after: rfc3339(validity.not_after),
            problems,
            policy,
        });
    }
    ChainReport {
        ok: certificates
            .iter()
            .all(|c| c.problems.is_empty() && c.policy.is_empty()),
        accepted: certificates.iter().all(|c| c.problems.is_empty()),
        alg,
        certificates,
    }
}

fn authority_key_id(c: &X509Certificate<'_>) -> Option<Vec<u8>> {
    c.extensions()
        .iter()
        .find_map(|e| match e.parsed_extension() {
            x509_parser::extensions::ParsedExtension::AuthorityKeyIdentifier(a) => {
                a.key_identifier.as_ref().map(|k| k.0.to_vec())
            }
            _ => None,
        })
}

fn subject_key_id(c: &X509Certificate<'_>) -> Option<Vec<u8>> {
    c.extensions()
        .iter()
        .find_map(|e| match e.parsed_extension() {
            x509_parser::extensions::ParsedExtension::SubjectKeyIdentifier(k) => Some(k.0.to_vec()),
            _ => None,
        })
}

/// c2pa's own end-entity profile check, its log turned into sentences (validity is
/// reported by the caller).
fn end_entity_profile(der: &[u8]) -> Vec<String> {
    use c2pa::crypto::cose::{CertificateTrustPolicy, check_end_entity_certificate_profile};
    let mut log = c2pa::status_tracker::StatusTracker::default();
    let res = check_end_entity_certificate_profile(
        der,
        &CertificateTrustPolicy::default(),
        &mut log,
        None,
    );
    let Err(e) = res else {
        return vec![];
    };
    let mut seen = BTreeSet::new();
    let mut out: Vec<String> = log
        .logged_items()
        .iter()
        .map(|i| i.description.to_string())
        .filter(|d| !d.contains("expired") && seen.insert(d.clone()))
        .map(|d| format!("c2pa rejects it: {d}"))
        .collect();
    if out.is_empty()
        && !matches!(
            e,
            c2pa::crypto::cose::CertificateProfileError::CertificateNotValidAtTime
        )
    {
        out.push(format!("c2pa rejects it: {e}"));
    }
    out
}

/// Whether `sig` (as COSE carries it) is `alg`'s signature of `msg` by the key in `cert_der`.
pub(crate) fn signature_verifies(alg: KeyAlg, cert_der: &[u8], msg: &[u8], sig: &[u8]) -> bool {
    let Ok((_, cert)) = X509Certificate::from_der(cert_der) else {
        return false;
    };
    let Some(v) = c2pa::crypto::raw_signature::validator_for_signing_alg(alg.signing_alg()) else {
        return false;
    };
    v.validate(sig, msg, cert.public_key().raw).is_ok()
}

/// An external signer's output as COSE needs it: ECDSA as fixed-size `r || s`, converted
/// from DER when the signer wrote DER (as `openssl dgst -sign` does); anything else as is.
pub(crate) fn cose_signature(alg: KeyAlg, sig: Vec<u8>) -> Vec<u8> {
    let fixed = match alg {
        KeyAlg::Es256 if sig.len() != 64 => p256::ecdsa::Signature::from_der(&sig)
            .ok()
            .map(|s| s.to_bytes().to_vec()),
        KeyAlg::Es384 if sig.len() != 96 => p384::ecdsa::Signature::from_der(&sig)
            .ok()
            .map(|s| s.to_bytes().to_vec()),
        _ => None,
    };
    fixed.unwrap_or(sig)
}

/// The subject of the certificate in `anchors_pem` that the PEM `chain` leads to: one that
/// is in the chain, or that issued its last certificate.
pub(crate) fn anchor_for(chain: &str, anchors_pem: &str) -> Option<String> {
    let der = |p: &str| -> Vec<Vec<u8>> {
        pem::parse_many(p)
            .map(|v| {
                v.into_iter()
                    .filter(|p| p.tag() == "CERTIFICATE")
                    .map(|p| p.into_contents())
                    .collect()
            })
            .unwrap_or_default()
    };
    let chain = der(chain);
    let anchors = der(anchors_pem);
    let last = chain.last()?;
    let (_, last) = X509Certificate::from_der(last).ok()?;
    for a in &anchors {
        let Ok((_, cert)) = X509Certificate::from_der(a) else {
            continue;
        };
        if chain.contains(a) || cert.subject() == last.issuer() {
            return Some(cert.subject().to_string());
        }
    }
    None
}
