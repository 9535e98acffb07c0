//! The keys folder `hallmark keygen` writes and every command reads: the watermark key and
//! the C2PA signing key (secret, mode 0600), the certificate chain and trust anchor (public),
//! the text watermark scheme, and `keys.json` describing them.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use hallmark::{
    ErrorCode, WatermarkKey,
    c2pa::{
        CertInfo, CertOptions, KeyAlg, RecordKey, SignerCommand, SigningCredential, TimeStamper,
    },
    text::Config,
};

use crate::{MAX_KEY_BYTES, coded, read_secret, read_text_capped, warn_if_shared, write_atomic};

pub use hallmark::keys::{
    CA, CHAIN, LEDGER_KEY, PUBLIC_INFO, SIGNING_KEY, TEXT_CONFIG, UNRECORDED_SCHEME, WATERMARK_KEY,
};

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
    /// The ledger's Ed25519 key (secret, 0600), written when the signing key is not Ed25519.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ledger_key: Option<String>,
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
        LEDGER_KEY,
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
    // The ledger signs with Ed25519: a folder whose signing key is another algorithm gets its
    // own ledger key (and a stale one from an earlier Ed25519 folder goes).
    let ledger_key = if opts.alg == KeyAlg::Ed25519 {
        if force && paths[6].exists() {
            std::fs::remove_file(&paths[6])
                .with_context(|| format!("cannot remove {}", paths[6].display()))?;
        }
        None
    } else {
        write_atomic(
            &paths[6],
            RecordKey::generate_pem()?.as_bytes(),
            Some(0o600),
        )?;
        Some(paths[6].display().to_string())
    };
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
            ledger_key,
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
    warn_if_shared(&file, "the watermark key");
    hallmark::keys::load_watermark_key(&file).map_err(|e| match e {
        hallmark::Error::Parameter(e) => coded(
            ErrorCode::Key,
            format!("{} is not a hallmark watermark key: {e}", file.display()),
        ),
        other => other.into(),
    })
}

/// The watermark keys `paths` name: key files, keys folders, and folders of them (every
/// keys folder and `*.key` watermark key file directly inside, in name order). Each comes
/// with the path its text scheme is looked up from. A key named twice is kept once.
///
/// # Errors
/// `not_found` for a path that is not there or a folder without keys; key errors.
pub fn load_watermark_keys(paths: &[PathBuf]) -> Result<Vec<(WatermarkKey, PathBuf)>> {
    let mut out: Vec<(WatermarkKey, PathBuf)> = vec![];
    let push = |k: WatermarkKey, p: PathBuf, out: &mut Vec<(WatermarkKey, PathBuf)>| {
        if out.iter().all(|(o, _)| o.id() != k.id()) {
            out.push((k, p));
        }
    };
    for p in paths {
        if !p.is_dir() || p.join(WATERMARK_KEY).is_file() {
            push(load_watermark_key(p)?, p.clone(), &mut out);
            continue;
        }
        let mut entries: Vec<PathBuf> = std::fs::read_dir(p)
            .with_context(|| format!("cannot read the folder {}", p.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .collect();
        entries.sort();
        let before = out.len();
        for e in entries {
            if e.is_dir() && e.join(WATERMARK_KEY).is_file() {
                push(load_watermark_key(&e)?, e, &mut out);
            } else if e.is_file() && e.extension().is_some_and(|x| x == "key") {
                // Other .key files (a C2PA signing key) are not watermark keys: skip them.
                if let Ok(k) = load_watermark_key(&e) {
                    push(k, e, &mut out);
                }
            }
        }
        if out.len() == before {
            return Err(coded(
                ErrorCode::NotFound,
                format!(
                    "{} holds no watermark key (neither watermark.key, keys folders, nor *.key key files)",
                    p.display()
                ),
            ));
        }
    }
    Ok(out)
}

/// Reads the signing credential from a keys folder (with its ledger key, when the signing
/// key is not Ed25519).
///
/// # Errors
/// `not_found`, or `key` when the key and chain are unusable or do not match.
pub fn load_signer(dir: &Path) -> Result<SigningCredential> {
    warn_if_shared(&dir.join(SIGNING_KEY), "the signing key");
    warn_if_shared(&dir.join(LEDGER_KEY), "the ledger key");
    hallmark::keys::load_signer(dir).map_err(|e| match e {
        e @ hallmark::Error::C2pa(_) => anyhow::Error::new(e).context(format!(
            "the signing credential in {} is unusable",
            dir.display()
        )),
        other => other.into(),
    })
}

/// Gives `cred` the ledger key of the keys folder `dir` when it has none of its own (see
/// [`hallmark::keys::with_ledger_key`]).
fn with_ledger_key(cred: SigningCredential, dir: Option<&Path>) -> Result<SigningCredential> {
    match dir {
        Some(dir) => Ok(hallmark::keys::with_ledger_key(cred, dir)?),
        None => Ok(cred),
    }
}

/// Where the signing credential comes from: a keys folder, or a certificate chain with a
/// private key file or an external signer command (the folder, if given too, still supplies
/// the watermark key and the ledger key); and an optional time-stamp authority.
#[derive(Clone, Debug, Default)]
pub struct CredentialSource {
    /// The keys folder.
    pub keys: Option<PathBuf>,
    /// A PEM certificate chain, end-entity first.
    pub cert: Option<PathBuf>,
    /// A PKCS#8 PEM private key for `cert`.
    pub private_key: Option<PathBuf>,
    /// An external signer for `cert` (see [`SignerCommand`]).
    pub signer_command: Option<String>,
    /// How long one external signature may take.
    pub signer_timeout: Option<std::time::Duration>,
    /// An RFC 3161 time-stamp authority's URL.
    pub tsa_url: Option<String>,
    /// How long a time stamp may take.
    pub tsa_timeout: Option<std::time::Duration>,
}

/// The default deadline for an external signer or a time-stamp authority.
pub const DEFAULT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// Loads the credential `src` describes, checked before anything is signed (see
/// [`SigningCredential::from_pem`], [`SigningCredential::from_command`]).
///
/// # Errors
/// `invalid_parameter` for an incomplete or contradictory source; `not_found`, `key` and
/// `crypto` errors from loading and checking.
pub fn load_credential(src: &CredentialSource) -> Result<SigningCredential> {
    let bad = |m: &str| coded(ErrorCode::InvalidParameter, m.to_string());
    let cred = match (&src.cert, &src.private_key, &src.signer_command) {
        (None, None, None) => {
            let Some(dir) = &src.keys else {
                return Err(bad(
                    "no signing credential: give --keys DIR, or --cert CHAIN.pem with --private-key KEY.pem or --signer-command CMD",
                ));
            };
            load_signer(dir)?
        }
        (Some(_), Some(_), Some(_)) => {
            return Err(bad(
                "--private-key and --signer-command both sign: give one of them",
            ));
        }
        (None, _, _) => {
            return Err(bad(
                "--private-key and --signer-command need the certificate chain they sign for: add --cert CHAIN.pem",
            ));
        }
        (Some(_), None, None) => {
            return Err(bad(
                "--cert needs what signs for it: --private-key KEY.pem or --signer-command CMD",
            ));
        }
        (Some(cert), key, command) => {
            let chain = read_text_capped(cert, MAX_KEY_BYTES, "the certificate chain")?;
            let cred = if let Some(k) = key {
                let pem = read_secret(k, "the private key")?;
                SigningCredential::from_pem(&chain, &pem).with_context(|| {
                    format!(
                        "{} and {} cannot sign together",
                        cert.display(),
                        k.display()
                    )
                })?
            } else {
                SigningCredential::from_command(
                    &chain,
                    SignerCommand {
                        command: command.clone().unwrap_or_default(),
                        timeout: src.signer_timeout.unwrap_or(DEFAULT_TIMEOUT),
                    },
                )
                .with_context(|| format!("the signer command cannot sign for {}", cert.display()))?
            };
            with_ledger_key(cred, src.keys.as_deref())?
        }
    };
    Ok(match &src.tsa_url {
        Some(url) => {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(bad("--tsa-url must be an http:// or https:// URL"));
            }
            cred.with_time_stamper(TimeStamper {
                url: url.clone(),
                timeout: src.tsa_timeout.unwrap_or(DEFAULT_TIMEOUT),
            })
        }
        None => cred,
    })
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
    match dir {
        Some(d) => Ok(hallmark::keys::load_text_config(d)?),
        None => Ok(Config::from_header(UNRECORDED_SCHEME)?),
    }
}
