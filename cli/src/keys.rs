//! `hallmark keygen` and loading a keys folder.

use std::path::{Path, PathBuf};

use crate::out::outln;
use anyhow::{Context, Result};
use hallmark::{WatermarkKey, c2pa::SigningCredential};

use crate::files::write_atomic;
use crate::text::TEXT_CONFIG;

pub const WATERMARK_KEY: &str = "watermark.key";
pub const SIGNING_KEY: &str = "c2pa-signing.key";
pub const CHAIN: &str = "c2pa-chain.pem";
pub const CA: &str = "c2pa-ca.pem";
pub const PUBLIC_INFO: &str = "keys.json";

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
    /// Overwrite existing key files.
    #[arg(long)]
    pub force: bool,
}

pub fn keygen(args: &KeygenArgs, json_out: bool, quiet: bool) -> Result<i32> {
    let text_scheme = crate::text::parse_scheme(&args.text_scheme)
        .context("--text-scheme")?
        .to_header();
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create {}", args.out.display()))?;
    let paths: Vec<PathBuf> = [
        WATERMARK_KEY,
        SIGNING_KEY,
        CHAIN,
        CA,
        PUBLIC_INFO,
        TEXT_CONFIG,
    ]
    .iter()
    .map(|f| args.out.join(f))
    .collect();
    if !args.force {
        let existing: Vec<String> = paths
            .iter()
            .filter(|p| p.exists())
            .map(|p| p.display().to_string())
            .collect();
        if !existing.is_empty() {
            return Err(crate::json::coded(
                hallmark::ErrorCode::OutputExists,
                format!(
                    "refusing to overwrite existing key files ({}); pass --force to replace them",
                    existing.join(", ")
                ),
            ));
        }
    }
    let wm = WatermarkKey::generate();
    let certs = hallmark::c2pa::generate(&hallmark::c2pa::CertOptions {
        org: args.org.clone(),
        name: args.name.clone(),
        validity_days: args.validity_days,
    })?;
    write_atomic(&paths[0], wm.to_file_string().as_bytes(), Some(0o600))?;
    write_atomic(&paths[1], certs.key_pem.as_bytes(), Some(0o600))?;
    write_atomic(&paths[2], certs.chain_pem.as_bytes(), Some(0o644))?;
    write_atomic(&paths[3], certs.ca_pem.as_bytes(), Some(0o644))?;
    write_atomic(
        &paths[5],
        format!("{text_scheme}\n").as_bytes(),
        Some(0o644),
    )?;
    let info = crate::json::KeygenOut {
        watermark_key_id: wm.id().to_string(),
        text_scheme: text_scheme.to_string(),
        signer: certs.info.clone(),
        files: crate::json::KeyFiles {
            watermark_key: paths[0].display().to_string(),
            signing_key: paths[1].display().to_string(),
            certificate_chain: paths[2].display().to_string(),
            trust_anchor: paths[3].display().to_string(),
            text_config: paths[5].display().to_string(),
        },
    };
    write_atomic(
        &paths[4],
        serde_json::to_string_pretty(&info)?.as_bytes(),
        Some(0o644),
    )?;
    if json_out {
        crate::json::emit(crate::json::KEYGEN, args.out.display().to_string(), &info)?;
    } else if !quiet {
        outln!("wrote keys to {}", args.out.display());
        outln!(
            "  watermark key   {}  (secret, mode 0600; key ID {})",
            paths[0].display(),
            wm.id()
        );
        outln!(
            "  signing key     {}  (secret, mode 0600, Ed25519 PKCS#8)",
            paths[1].display()
        );
        outln!(
            "  signer chain    {}  ({})",
            paths[2].display(),
            certs.info.subject
        );
        outln!(
            "  trust anchor    {}  (give verifiers this file)",
            paths[3].display()
        );
        outln!("  text scheme     {}  ({text_scheme})", paths[5].display());
        outln!("  signer SHA-256  {}", certs.info.signer_sha256);
        outln!("  CA SHA-256      {}", certs.info.ca_sha256);
        outln!(
            "  valid           {} to {}",
            certs.info.not_before,
            certs.info.not_after
        );
    }
    Ok(0)
}

/// Reads a watermark key from a key file or a keys folder.
pub fn load_watermark_key(path: &Path) -> Result<WatermarkKey> {
    let file = if path.is_dir() {
        path.join(WATERMARK_KEY)
    } else {
        path.to_path_buf()
    };
    let text = crate::files::read_secret(&file, "the watermark key")?;
    WatermarkKey::from_file_str(&text)
        .with_context(|| format!("{} is not a hallmark watermark key", file.display()))
}

/// Reads the signing credential from a keys folder.
pub fn load_signer(dir: &Path) -> Result<SigningCredential> {
    let chain = crate::files::read_text_capped(
        &dir.join(CHAIN),
        crate::files::MAX_KEY_BYTES,
        "the certificate chain",
    )?;
    let key = crate::files::read_secret(&dir.join(SIGNING_KEY), "the signing key")?;
    SigningCredential::from_pem(&chain, &key)
        .with_context(|| format!("the signing credential in {} is unusable", dir.display()))
}
