//! Verifying files as every front end does: trust anchors from the usual places, the
//! sidecar manifest beside a file, the ledger checked before it is used, a stamper from a
//! keys folder.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use hallmark::{ErrorCode, Report, Verifier, c2pa::TrustSettings, ledger::Record};

use crate::{MAX_CONFIG_BYTES, coded, keys, read_input, read_text_capped};

/// Largest ledger read (bytes).
pub const MAX_LEDGER_BYTES: u64 = 512 << 20;

/// Where the trust settings come from: each list from its flag, else its environment
/// variable (hallmark's, then c2patool's name), else the settings file (`settings`, else
/// `$HALLMARK_TRUST_SETTINGS`, else `~/.config/hallmark/trust.toml` when it exists).
#[derive(Clone, Debug, Default)]
pub struct TrustOptions {
    /// The user's PEM anchors (`--trust`; `$HALLMARK_TRUST_ANCHORS`; settings
    /// `user_anchors`; `~/.config/hallmark/trust-anchors.pem`).
    pub anchors: Option<PathBuf>,
    /// A PEM trust list such as the C2PA one (`--trust-anchors`; `$C2PATOOL_TRUST_ANCHORS`;
    /// settings `trust_anchors`).
    pub trust_list: Option<PathBuf>,
    /// End-entity certificates trusted as they are (`--allowed-list`;
    /// `$HALLMARK_ALLOWED_LIST`, `$C2PATOOL_ALLOWED_LIST`; settings `allowed_list`).
    pub allowed_list: Option<PathBuf>,
    /// Extra allowed EKU OIDs (`--trust-config`; `$HALLMARK_TRUST_CONFIG`,
    /// `$C2PATOOL_TRUST_CONFIG`; settings `trust_config`).
    pub trust_config: Option<PathBuf>,
    /// A settings file, TOML or JSON, c2pa's layout: a `trust` table with `user_anchors`,
    /// `trust_anchors`, `allowed_list`, `trust_config`, each the content itself (as c2pa
    /// settings files hold it) or a path relative to the file.
    pub settings: Option<PathBuf>,
}

impl TrustOptions {
    /// Only the user's anchors (what `--trust` alone gives).
    pub fn anchors(path: Option<&Path>) -> Self {
        TrustOptions {
            anchors: path.map(Path::to_path_buf),
            ..Default::default()
        }
    }
}

/// One list of the settings file: its content inline, or a path relative to the file.
fn settings_value(file: &Path, v: &str, what: &str) -> Result<String> {
    if v.contains("-----BEGIN") || v.contains('\n') {
        return Ok(v.to_string());
    }
    let p = file.parent().unwrap_or(Path::new(".")).join(v);
    read_text_capped(&p, MAX_CONFIG_BYTES, what)
        .with_context(|| format!("{what} named in {}", file.display()))
}

#[derive(serde::Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct SettingsTrust {
    user_anchors: Option<String>,
    trust_anchors: Option<String>,
    allowed_list: Option<String>,
    trust_config: Option<String>,
    // c2pa's own switch for CAWG identity trust lists; accepted and ignored.
    #[allow(dead_code)]
    verify_trust_list: Option<bool>,
}

#[derive(serde::Deserialize)]
struct SettingsFile {
    #[serde(default)]
    trust: SettingsTrust,
}

fn read_settings(path: &Path) -> Result<SettingsTrust> {
    let text = read_text_capped(path, MAX_CONFIG_BYTES, "the trust settings")?;
    let parsed: SettingsFile = if path.extension().is_some_and(|e| e == "json") {
        serde_json::from_str(&text).map_err(|e| anyhow::anyhow!("{e}"))
    } else {
        toml::from_str(&text).map_err(|e| anyhow::anyhow!("{e}"))
    }
    .map_err(|e| {
        coded(
            ErrorCode::InvalidParameter,
            format!("{} is not a trust settings file: {e}", path.display()),
        )
    })?;
    Ok(parsed.trust)
}

fn env_path(names: &[&str]) -> Option<PathBuf> {
    names
        .iter()
        .find_map(|n| std::env::var_os(n).filter(|v| !v.is_empty()))
        .map(PathBuf::from)
}

fn read_list(p: &Path, what: &str) -> Result<String> {
    let s = p.to_string_lossy();
    if s.starts_with("http://") || s.starts_with("https://") {
        return Err(coded(
            ErrorCode::InvalidParameter,
            format!(
                "{what} must be a local file: hallmark verifies offline (download {s} once and name the file)"
            ),
        ));
    }
    read_text_capped(p, MAX_CONFIG_BYTES, what)
}

fn need_pem(text: String, from: &str, allow_hashes: bool) -> Result<String> {
    let hashes = allow_hashes
        && text
            .lines()
            .map(str::trim)
            .any(|l| l.len() == 44 && l.ends_with('='));
    if !text.contains("-----BEGIN CERTIFICATE-----") && !hashes {
        return Err(coded(
            ErrorCode::Key,
            format!(
                "{from} holds no PEM certificate{}",
                if allow_hashes {
                    " and no base64 SHA-256 certificate hash"
                } else {
                    ""
                }
            ),
        ));
    }
    Ok(text)
}

fn need_oids(text: String, from: &str) -> Result<String> {
    for l in text.lines().map(str::trim) {
        if l.is_empty() || l.starts_with("//") || l.starts_with('#') {
            continue;
        }
        let ok = l.split('.').count() >= 2
            && l.split('.')
                .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
        if !ok {
            return Err(coded(
                ErrorCode::InvalidParameter,
                format!(
                    "{from}: {l:?} is not an OID (one EKU OID per line, e.g. 1.3.6.1.5.5.7.3.36)"
                ),
            ));
        }
    }
    Ok(text)
}

/// The trust settings `opts` describe, plus the CA of `keys_dir` (if given) as a user anchor.
///
/// # Errors
/// Unreadable files, `key` when an anchor file holds no PEM certificate, and
/// `invalid_parameter` for a malformed settings file or EKU list, or a URL (verification is
/// offline).
pub fn trust_settings_from(opts: &TrustOptions, keys_dir: Option<&Path>) -> Result<TrustSettings> {
    let settings_path = opts
        .settings
        .clone()
        .or_else(|| env_path(&["HALLMARK_TRUST_SETTINGS"]))
        .or_else(|| {
            let p = Path::new(&std::env::var_os("HOME")?).join(".config/hallmark/trust.toml");
            p.exists().then_some(p)
        });
    let file = settings_path
        .as_deref()
        .map(read_settings)
        .transpose()?
        .unwrap_or_default();
    let from_file = |v: &Option<String>, what: &str| -> Result<Option<(String, String)>> {
        match (v, &settings_path) {
            (Some(v), Some(p)) => Ok(Some((
                settings_value(p, v, what)?,
                format!("{what} in {}", p.display()),
            ))),
            _ => Ok(None),
        }
    };
    // Each list: flag, else environment, else settings file.
    let pick = |flag: &Option<PathBuf>,
                env: &[&str],
                in_file: &Option<String>,
                what: &str|
     -> Result<Option<(String, String)>> {
        if let Some(p) = flag.clone().or_else(|| env_path(env)) {
            return Ok(Some((read_list(&p, what)?, p.display().to_string())));
        }
        from_file(in_file, what)
    };
    let mut anchors = pick(
        &opts.anchors,
        &["HALLMARK_TRUST_ANCHORS"],
        &file.user_anchors,
        "the trust anchors",
    )?;
    if anchors.is_none()
        && let Some(home) = std::env::var_os("HOME")
    {
        let cfg = Path::new(&home).join(".config/hallmark/trust-anchors.pem");
        if cfg.exists() {
            anchors = Some((
                read_list(&cfg, "the trust anchors")?,
                cfg.display().to_string(),
            ));
        }
    }
    let mut anchors_pem = match anchors {
        Some((t, from)) => need_pem(t, &from, false)? + "\n",
        None => String::new(),
    };
    if let Some(d) = keys_dir {
        let ca = d.join(keys::CA);
        if ca.exists() {
            let t = read_list(&ca, "the keys folder's CA")?;
            anchors_pem.push_str(&need_pem(t, &ca.display().to_string(), false)?);
            anchors_pem.push('\n');
        }
    }
    let trust_list_pem = pick(
        &opts.trust_list,
        &["C2PATOOL_TRUST_ANCHORS"],
        &file.trust_anchors,
        "the trust list",
    )?
    .map(|(t, from)| need_pem(t, &from, false))
    .transpose()?;
    let allowed_list = pick(
        &opts.allowed_list,
        &["HALLMARK_ALLOWED_LIST", "C2PATOOL_ALLOWED_LIST"],
        &file.allowed_list,
        "the allowed list",
    )?
    .map(|(t, from)| need_pem(t, &from, true))
    .transpose()?;
    let trust_config = pick(
        &opts.trust_config,
        &["HALLMARK_TRUST_CONFIG", "C2PATOOL_TRUST_CONFIG"],
        &file.trust_config,
        "the trust configuration",
    )?
    .map(|(t, from)| need_oids(t, &from))
    .transpose()?;
    Ok(TrustSettings {
        anchors_pem: (!anchors_pem.is_empty()).then_some(anchors_pem),
        trust_list_pem,
        allowed_list,
        trust_config,
    })
}

/// The user's trust anchors only: `flag` (a PEM file), else `$HALLMARK_TRUST_ANCHORS`, else
/// `~/.config/hallmark/trust-anchors.pem` when it exists; plus the CA of `keys_dir`, if given
/// (and the other lists from the environment and settings file, as
/// [`trust_settings_from`]).
///
/// # Errors
/// As [`trust_settings_from`].
pub fn trust_settings(flag: Option<&Path>, keys_dir: Option<&Path>) -> Result<TrustSettings> {
    trust_settings_from(&TrustOptions::anchors(flag), keys_dir)
}

/// The sidecar manifest of `path`: `NAME.c2pa` or `NAME.EXT.c2pa`, when one exists.
pub fn sidecar_for(path: &Path) -> Option<PathBuf> {
    let a = path.with_extension("c2pa");
    if a != path && a.is_file() {
        return Some(a);
    }
    let mut b = path.as_os_str().to_owned();
    b.push(".c2pa");
    let b = PathBuf::from(b);
    b.is_file().then_some(b)
}

/// Whether bytes that are no image look like text (a text watermark is checked with
/// `text detect`, not here).
pub fn looks_like_text(bytes: &[u8]) -> bool {
    !bytes.is_empty()
        && hallmark::io::Format::sniff(bytes).is_none()
        && std::str::from_utf8(&bytes[..bytes.len().min(4096)]).is_ok()
}

/// Reads a ledger and checks its chain and signatures (`key` pins the signer).
///
/// # Errors
/// Unreadable files; `invalid_input` naming the first broken line.
pub fn load_ledger(path: &Path, key: Option<[u8; 32]>) -> Result<Vec<Record>> {
    let text = read_text_capped(path, MAX_LEDGER_BYTES, "the ledger")?;
    hallmark::ledger::verify_chain(&text, key).map_err(|b| {
        coded(
            ErrorCode::InvalidInput,
            format!(
                "the ledger {} is broken at line {}: {}",
                path.display(),
                b.line,
                b.reason
            ),
        )
    })
}

/// A verifier for the watermark keys (key files or keys folders) and the keys folder
/// `keys_dir` (its watermark key, CA and signer), trust anchors as [`trust_settings`]
/// finds them, and a ledger to resolve watermark IDs against (pinned to `keys_dir`'s signer
/// when given).
///
/// # Errors
/// Unreadable or malformed keys, anchors or ledger.
pub fn verifier(
    watermark_keys: &[PathBuf],
    keys_dir: Option<&Path>,
    trust: &TrustOptions,
    ledger: Option<&Path>,
) -> Result<Verifier> {
    let anchors = trust_settings_from(trust, keys_dir)?;
    // Key files, keys folders and folders of them; a key named twice is looked for once.
    let mut paths = watermark_keys.to_vec();
    if let Some(d) = keys_dir {
        paths.push(d.to_path_buf());
    }
    let wkeys: Vec<hallmark::WatermarkKey> = keys::load_watermark_keys(&paths)?
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    let mut v = Verifier::new(&wkeys, anchors);
    if let Some(l) = ledger {
        let key = keys_dir
            .map(keys::load_signer)
            .transpose()?
            .and_then(|c| c.public_key());
        v.ledger = Some(load_ledger(l, key)?);
    }
    Ok(v)
}

/// Verifies one file (`-`: standard input) with its sidecar manifest, if any. A file found by
/// walking a folder (`walked`) that is not an image is skipped (`None`); one named by the
/// caller is an error instead.
///
/// # Errors
/// Unreadable files, `invalid_input` for text and undecodable files.
pub fn verify_path(f: &Path, walked: bool, verifier: &Verifier) -> Result<Option<Report>> {
    let bytes = read_input(f)?;
    if walked && hallmark::io::Format::sniff(&bytes).is_none() {
        return Ok(None);
    }
    if looks_like_text(&bytes) {
        return Err(coded(
            ErrorCode::InvalidInput,
            format!(
                "{} looks like text: check it with `hallmark text detect --key KEY --tokenizer MODEL.gguf {}`",
                f.display(),
                f.display()
            ),
        ));
    }
    let side = sidecar_for(f).map(|p| read_input(&p)).transpose()?;
    let rep = hallmark::verify(&bytes, side.as_deref(), verifier)
        .with_context(|| format!("cannot verify {}", f.display()))?;
    Ok(Some(rep))
}

/// A stamper with the keys of a keys folder.
///
/// # Errors
/// Unreadable or malformed keys.
pub fn stamper(keys_dir: &Path) -> Result<hallmark::Stamper> {
    stamper_with(keys_dir, &keys::CredentialSource::default())
}

/// A stamper with the watermark key of `keys_dir` and the signing credential `signer`
/// describes (its `keys` filled in with `keys_dir` when empty).
///
/// # Errors
/// As [`keys::load_watermark_key`] and [`keys::load_credential`].
pub fn stamper_with(keys_dir: &Path, signer: &keys::CredentialSource) -> Result<hallmark::Stamper> {
    let wm = keys::load_watermark_key(keys_dir)?;
    let mut src = signer.clone();
    if src.keys.is_none() {
        src.keys = Some(keys_dir.to_path_buf());
    }
    let signer = keys::load_credential(&src)?;
    Ok(hallmark::Stamper::new(&wm, signer))
}
