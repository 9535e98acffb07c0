//! The keys folder `hallmark keygen` writes and every command reads: the watermark key and
//! the C2PA signing key (secret, mode 0600), the certificate chain and trust anchor (public),
//! the text watermark scheme, and `keys.json` describing them.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use hallmark::{
    ErrorCode, WatermarkKey,
    c2pa::{CertInfo, CertOptions, SigningCredential},
    text::Config,
};

use crate::{MAX_CONFIG_BYTES, MAX_KEY_BYTES, coded, read_secret, read_text_capped, write_atomic};

/// The watermark key (secret).
pub const WATERMARK_KEY: &str = "watermark.key";
/// The C2PA signing key, Ed25519 PKCS#8 (secret).
pub const SIGNING_KEY: &str = "c2pa-signing.key";
/// The signing certificate chain, end entity first.
pub const CHAIN: &str = "c2pa-chain.pem";
/// The CA certificate: the trust anchor verifiers are given.
pub const CA: &str = "c2pa-ca.pem";
/// Public facts about the keys ([`KeyFolder`] as JSON).
pub const PUBLIC_INFO: &str = "keys.json";
/// The text watermark scheme header.
pub const TEXT_CONFIG: &str = "text-watermark.conf";

/// The scheme of a key without a text-watermark.conf beside it: hallmark's default before
/// `keygen` recorded the scheme, so text watermarked with such keys keeps detecting.
pub const UNRECORDED_SCHEME: &str = "hallmark-text/1 gumbel h=2";

/// The files of a keys folder.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct KeyFiles {
    /// The watermark key (secret, 0600).
    pub watermark_key: String,
    /// The C2PA signing key (secret, 0600).
    pub signing_key: String,
    /// The certificate chain (public).
    pub certificate_chain: String,
    /// The trust anchor for verifiers (public).
    pub trust_anchor: String,
    /// The text watermark configuration.
    pub text_config: String,
}

/// What [`generate`] made (also the content of `keys.json`).
#[derive(Clone, Debug, serde::Serialize, schemars::JsonSchema)]
pub struct KeyFolder {
    /// The watermark key's public ID.
    pub watermark_key_id: String,
    /// The text watermark scheme header.
    pub text_scheme: String,
    /// The signing certificate's public facts.
    pub signer: CertInfo,
    /// The files written.
    pub files: KeyFiles,
}

/// A scheme by preset name (gumbel, kgw, kgw-robust, robust) or full header.
///
/// # Errors
/// `invalid_parameter` for anything else.
pub fn parse_scheme(s: &str) -> Result<Config> {
    Ok(match s {
        "kgw" => Config::kgw(),
        "kgw-robust" => Config::kgw_robust(),
        "robust" => Config::robust(),
        "gumbel" => Config::gumbel(),
        header => Config::from_header(header).with_context(|| {
            format!(
                "scheme {header:?}: expected gumbel, kgw, kgw-robust, robust or a hallmark-text/1 header"
            )
        })?,
    })
}

/// Writes a new keys folder `dir` (created if missing): fresh keys, a certificate chain made
/// by `opts`, and the text scheme. Existing key files are replaced only with `force`.
///
/// # Errors
/// `output_exists` when key files exist and `force` is false; I/O and key errors.
pub fn generate(dir: &Path, opts: &CertOptions, text: &Config, force: bool) -> Result<KeyFolder> {
    let text_scheme = text.to_header();
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let names = [
        WATERMARK_KEY,
        SIGNING_KEY,
        CHAIN,
        CA,
        PUBLIC_INFO,
        TEXT_CONFIG,
    ];
    let paths: Vec<PathBuf> = names.iter().map(|f| dir.join(f)).collect();
    if !force {
        let existing: Vec<String> = paths
            .iter()
            .filter(|p| p.exists())
            .map(|p| p.display().to_string())
            .collect();
        if !existing.is_empty() {
            return Err(coded(
                ErrorCode::OutputExists,
                format!(
                    "refusing to overwrite existing key files ({}); pass --force to replace them",
                    existing.join(", ")
                ),
            ));
        }
    }
    let wm = WatermarkKey::generate();
    let certs = hallmark::c2pa::generate(opts)?;
    write_atomic(&paths[0], wm.to_file_string().as_bytes(), Some(0o600))?;
    write_atomic(&paths[1], certs.key_pem.as_bytes(), Some(0o600))?;
    write_atomic(&paths[2], certs.chain_pem.as_bytes(), Some(0o644))?;
    write_atomic(&paths[3], certs.ca_pem.as_bytes(), Some(0o644))?;
    write_atomic(
        &paths[5],
        format!("{text_scheme}\n").as_bytes(),
        Some(0o644),
    )?;
    let folder = KeyFolder {
        watermark_key_id: wm.id().to_string(),
        text_scheme,
        signer: certs.info.clone(),
        files: KeyFiles {
            watermark_key: paths[0].display().to_string(),
            signing_key: paths[1].display().to_string(),
            certificate_chain: paths[2].display().to_string(),
            trust_anchor: paths[3].display().to_string(),
            text_config: paths[5].display().to_string(),
        },
    };
    write_atomic(
        &paths[4],
        serde_json::to_string_pretty(&folder)?.as_bytes(),
        Some(0o644),
    )?;
    Ok(folder)
}

/// Reads a watermark key from a key file or a keys folder.
///
/// # Errors
/// `not_found`, `too_large`, or `key` when the file is not a watermark key.
pub fn load_watermark_key(path: &Path) -> Result<WatermarkKey> {
    let file = if path.is_dir() {
        path.join(WATERMARK_KEY)
    } else {
        path.to_path_buf()
    };
    let text = read_secret(&file, "the watermark key")?;
    WatermarkKey::from_file_str(&text).map_err(|e| {
        coded(
            ErrorCode::Key,
            format!("{} is not a hallmark watermark key: {e}", file.display()),
        )
    })
}

/// Reads the signing credential from a keys folder.
///
/// # Errors
/// `not_found`, or `key` when the key and chain are unusable or do not match.
pub fn load_signer(dir: &Path) -> Result<SigningCredential> {
    let chain = read_text_capped(&dir.join(CHAIN), MAX_KEY_BYTES, "the certificate chain")?;
    let key = read_secret(&dir.join(SIGNING_KEY), "the signing key")?;
    SigningCredential::from_pem(&chain, &key)
        .with_context(|| format!("the signing credential in {} is unusable", dir.display()))
}

/// The text scheme: `scheme` (a preset or header) when given, else the text-watermark.conf in
/// the key's folder, else (keys made before keygen wrote that file) [`UNRECORDED_SCHEME`];
/// without a key, the default. Generation and detection resolve it the same way, so they
/// agree without options.
///
/// # Errors
/// A bad scheme or configuration file.
pub fn text_config(scheme: Option<&str>, key: Option<&Path>) -> Result<Config> {
    if let Some(s) = scheme {
        return parse_scheme(s).context("--scheme");
    }
    let Some(key) = key else {
        return Ok(Config::default());
    };
    let dir = if key.is_dir() {
        Some(key)
    } else {
        key.parent()
    };
    match dir.map(|d| d.join(TEXT_CONFIG)).filter(|p| p.exists()) {
        Some(p) => {
            let t = read_text_capped(&p, MAX_CONFIG_BYTES, "the text watermark configuration")?;
            Config::from_header(t.trim())
                .with_context(|| format!("{} is not a text watermark header", p.display()))
        }
        None => Ok(Config::from_header(UNRECORDED_SCHEME)?),
    }
}
