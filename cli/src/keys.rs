//! `hallmark keygen` and loading a keys folder.

use std::path::PathBuf;

use crate::out::outln;
use anyhow::{Context, Result};
use hallmark_files::keys;

#[derive(clap::Args, Debug)]
pub struct KeygenArgs {
    /// Folder to write the keys into (created if missing).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Organisation named in the certificates.
    #[arg(long, default_value = "hallmark local signer")]
    pub org: String,
    /// Common name of the signing certificate (who signs).
    #[arg(long, default_value = "hallmark")]
    pub name: String,
    /// Validity of the signing certificate in days. Without a time-stamp authority a
    /// manifest stops validating when the certificate expires, so keep it long.
    #[arg(long, default_value_t = 3650)]
    pub validity_days: u32,
    /// Text watermark scheme recorded for these keys (text-watermark.conf), used by `text
    /// generate` and `text detect` unless they pass --scheme: gumbel (the default), kgw,
    /// robust, kgw-robust, or a full "hallmark-text/1 ..." header.
    #[arg(long, default_value = "gumbel", value_name = "SCHEME")]
    pub text_scheme: String,
    /// The signing key's algorithm: ed25519, es256, es384 or ps256 (the CA is always ECDSA
    /// P-256, as the C2PA certificate policy requires of a CA).
    #[arg(long, default_value = "ed25519", value_name = "ALG", value_parser = parse_alg)]
    pub alg: hallmark::c2pa::KeyAlg,
    /// Overwrite existing key files.
    #[arg(long)]
    pub force: bool,
}

#[derive(clap::Subcommand, Debug)]
pub enum CertCmd {
    /// Check a certificate chain (PEM, end-entity first) against the C2PA certificate
    /// profile c2pa applies and the C2PA certificate policy, before signing with it: lists
    /// what a validator will reject and why. Exit 0 when it passes, 3 when it does not.
    #[command(after_help = "Examples:
  hallmark cert check keys/c2pa-chain.pem
  hallmark cert check --json issued-chain.pem")]
    Check {
        /// The chain, PEM.
        chain: PathBuf,
    },
}

pub fn cert(c: &CertCmd, json_out: bool, quiet: bool) -> Result<i32> {
    let CertCmd::Check { chain } = c;
    let pem = hallmark_files::read_text_capped(
        chain,
        hallmark_files::MAX_KEY_BYTES,
        "the certificate chain",
    )?;
    let report = hallmark::c2pa::check_chain(&pem)
        .with_context(|| format!("cannot check {}", chain.display()))?;
    if json_out {
        crate::json::emit(
            crate::json::CERT_CHECK,
            chain.display().to_string(),
            &report,
        )?;
    } else if !quiet {
        outln!(
            "{}: {}",
            chain.display(),
            if report.ok {
                "passes the C2PA certificate profile and policy"
            } else if report.accepted {
                "C2PA validators accept it, but it departs from the C2PA certificate policy (a trust list will not take it)"
            } else {
                "a C2PA validator will reject it"
            }
        );
        for (i, c) in report.certificates.iter().enumerate() {
            if c.subject.is_empty() {
                outln!("  [{i}] {} (unreadable)", c.role);
            } else {
                outln!(
                    "  [{i}] {} {} ({}; {} to {})",
                    c.role,
                    c.subject,
                    c.key,
                    c.not_before,
                    c.not_after
                );
            }
            for p in &c.problems {
                outln!("      problem: {p}");
            }
            for p in &c.policy {
                outln!("      policy: {p}");
            }
        }
        if let Some(a) = report.alg {
            outln!("  signs with {a}");
        }
    }
    Ok(if report.ok { 0 } else { 3 })
}

fn parse_alg(s: &str) -> Result<hallmark::c2pa::KeyAlg, String> {
    s.parse().map_err(|e: hallmark::c2pa::Error| e.to_string())
}

/// Where the C2PA signature comes from when it is not the keys folder's own key.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct SignerArgs {
    /// Sign with this certificate chain (PEM, end-entity first) instead of the keys
    /// folder's, with --private-key or --signer-command.
    #[arg(long, value_name = "CHAIN.pem")]
    pub cert: Option<PathBuf>,
    /// The PKCS#8 PEM private key of --cert (Ed25519, ECDSA P-256/P-384, or RSA: PS256).
    #[arg(
        long,
        value_name = "KEY.pem",
        requires = "cert",
        conflicts_with = "signer_command"
    )]
    pub private_key: Option<PathBuf>,
    /// Sign with an external command (a KMS, an HSM, a signing service) for --cert: it reads
    /// the bytes to sign on stdin and writes the raw signature on stdout; run by `sh -c`
    /// with HALLMARK_SIGN_ALG set. ECDSA signatures may be DER.
    #[arg(long, value_name = "CMD", requires = "cert")]
    pub signer_command: Option<String>,
    /// Seconds one external signature may take before the command is stopped.
    #[arg(long, value_name = "SECS", default_value_t = 30.0)]
    pub signer_timeout: f64,
    /// Time-stamp every signature at this RFC 3161 authority, so manifests stay valid after
    /// the certificate expires.
    #[arg(long, value_name = "URL")]
    pub tsa_url: Option<String>,
    /// Seconds a time stamp may take.
    #[arg(long, value_name = "SECS", default_value_t = 30.0)]
    pub tsa_timeout: f64,
}

impl SignerArgs {
    /// The credential source these flags (and a keys folder) describe.
    pub fn source(&self, keys: Option<&std::path::Path>) -> Result<keys::CredentialSource> {
        let secs = |v: f64, what: &str| {
            anyhow::ensure!(
                v.is_finite() && v > 0.0 && v <= 86_400.0,
                "{what} must be between 0 and 86400 seconds"
            );
            Ok(std::time::Duration::from_secs_f64(v))
        };
        Ok(keys::CredentialSource {
            keys: keys.map(std::path::Path::to_path_buf),
            cert: self.cert.clone(),
            private_key: self.private_key.clone(),
            signer_command: self.signer_command.clone(),
            signer_timeout: Some(secs(self.signer_timeout, "--signer-timeout")?),
            tsa_url: self.tsa_url.clone(),
            tsa_timeout: Some(secs(self.tsa_timeout, "--tsa-timeout")?),
        })
    }
}

pub fn keygen(args: &KeygenArgs, json_out: bool, quiet: bool) -> Result<i32> {
    let text = keys::parse_scheme(&args.text_scheme).context("--text-scheme")?;
    let info = keys::generate(
        &args.out,
        &hallmark::c2pa::CertOptions {
            org: args.org.clone(),
            name: args.name.clone(),
            validity_days: args.validity_days,
            alg: args.alg,
        },
        &text,
        args.force,
    )?;
    let text_scheme = &info.text_scheme;
    let f = &info.files;
    if json_out {
        crate::json::emit(crate::json::KEYGEN, args.out.display().to_string(), &info)?;
    } else if !quiet {
        outln!("wrote keys to {}", args.out.display());
        outln!(
            "  watermark key   {}  (secret, mode 0600; key ID {})",
            f.watermark_key,
            info.watermark_key_id
        );
        outln!(
            "  signing key     {}  (secret, mode 0600, {} PKCS#8; CA {})",
            f.signing_key,
            info.signer.alg,
            info.signer.ca_alg
        );
        if let Some(l) = &f.ledger_key {
            outln!("  ledger key      {l}  (secret, mode 0600, Ed25519: signs ledger records)");
        }
        outln!(
            "  signer chain    {}  ({})",
            f.certificate_chain,
            info.signer.subject
        );
        outln!(
            "  trust anchor    {}  (give verifiers this file)",
            f.trust_anchor
        );
        outln!("  text scheme     {}  ({text_scheme})", f.text_config);
        outln!("  signer SHA-256  {}", info.signer.signer_sha256);
        outln!("  CA SHA-256      {}", info.signer.ca_sha256);
        outln!(
            "  valid           {} to {}",
            info.signer.not_before,
            info.signer.not_after
        );
    }
    Ok(0)
}

pub use keys::{load_credential, load_signer, load_watermark_key};
