//! Verifying files as every front end does: trust anchors from the usual places, the
//! sidecar manifest beside a file, the ledger checked before it is used, a stamper from a
//! keys folder.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use hallmark::{ErrorCode, Report, Verifier, c2pa::TrustSettings, ledger::Record};

use crate::{MAX_CONFIG_BYTES, coded, keys, read_input, read_text_capped};

/// Largest ledger read (bytes).
pub const MAX_LEDGER_BYTES: u64 = 512 << 20;

/// The trust anchors: `flag` (a PEM file), else `$HALLMARK_TRUST_ANCHORS`, else
/// `~/.config/hallmark/trust-anchors.pem` when it exists; plus the CA of `keys_dir`, if given.
///
/// # Errors
/// Unreadable files, or `key` when a file holds no PEM certificate.
pub fn trust_settings(flag: Option<&Path>, keys_dir: Option<&Path>) -> Result<TrustSettings> {
    let mut pem = String::new();
    let mut add = |p: &Path| -> Result<()> {
        let t = read_text_capped(p, MAX_CONFIG_BYTES, "the trust anchors")?;
        if !t.contains("-----BEGIN CERTIFICATE-----") {
            return Err(coded(
                ErrorCode::Key,
                format!("{} holds no PEM certificate", p.display()),
            ));
        }
        pem.push_str(&t);
        pem.push('\n');
        Ok(())
    };
    if let Some(f) = flag {
        add(f)?;
    } else if let Some(env) = std::env::var_os("HALLMARK_TRUST_ANCHORS") {
        add(Path::new(&env))?;
    } else if let Some(home) = std::env::var_os("HOME") {
        let cfg = Path::new(&home).join(".config/hallmark/trust-anchors.pem");
        if cfg.exists() {
            add(&cfg)?;
        }
    }
    if let Some(d) = keys_dir {
        let ca = d.join(keys::CA);
        if ca.exists() {
            add(&ca)?;
        }
    }
    Ok(TrustSettings {
        anchors_pem: (!pem.is_empty()).then_some(pem),
    })
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
    trust: Option<&Path>,
    ledger: Option<&Path>,
) -> Result<Verifier> {
    let anchors = trust_settings(trust, keys_dir)?;
    let mut wkeys = vec![];
    for k in watermark_keys {
        wkeys.push(keys::load_watermark_key(k)?);
    }
    if let Some(d) = keys_dir {
        wkeys.push(keys::load_watermark_key(d)?);
    }
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
