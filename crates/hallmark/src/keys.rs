//! The keys folder `hallmark keygen` writes, read in one call ([`Keys::load`]), so a Rust
//! pipeline needs neither its file names nor how a credential is assembled from them. This
//! module and [`read_capped`] are the facade's only file reads (see the crate docs).

use std::io::Read;
use std::path::Path;

use hallmark_c2pa::{RecordKey, SigningCredential, TrustSettings};
use hallmark_core::WatermarkKey;
use hallmark_text::Config;

use crate::{Error, Stamper, Verifier};

/// The watermark key (secret).
pub const WATERMARK_KEY: &str = "watermark.key";
/// The C2PA signing key, PKCS#8 (secret): Ed25519 unless `keygen --alg` chose another.
pub const SIGNING_KEY: &str = "c2pa-signing.key";
/// The Ed25519 key that signs ledger records when the signing key is not Ed25519 (secret).
pub const LEDGER_KEY: &str = "ledger.key";
/// The signing certificate chain, end entity first.
pub const CHAIN: &str = "c2pa-chain.pem";
/// The CA certificate: the trust anchor verifiers are given.
pub const CA: &str = "c2pa-ca.pem";
/// Public facts about the keys (JSON).
pub const PUBLIC_INFO: &str = "keys.json";
/// The text watermark scheme header.
pub const TEXT_CONFIG: &str = "text-watermark.conf";
/// The scheme of a key without a text-watermark.conf beside it: hallmark's default before
/// `keygen` recorded the scheme, so text watermarked with such keys keeps detecting.
pub const UNRECORDED_SCHEME: &str = "hallmark-text/1 gumbel h=2";

/// Largest key, certificate chain or trust-anchor file read (bytes).
pub const MAX_KEY_BYTES: u64 = 1024 * 1024;
/// Largest manifest definition or configuration file read (bytes).
pub const MAX_CONFIG_BYTES: u64 = 4 * 1024 * 1024;

/// A keys folder, loaded: what stamping and verifying with it need.
pub struct Keys {
    /// The watermark key.
    pub watermark: WatermarkKey,
    /// The C2PA signing credential (with its ledger key).
    pub signer: SigningCredential,
    /// The CA certificate (PEM) verifiers trust, when the folder has one.
    pub trust_anchor: Option<String>,
    /// The text watermark scheme recorded beside the key.
    pub text: Config,
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keys")
            .field("watermark", &self.watermark)
            .field("text", &self.text)
            .finish_non_exhaustive()
    }
}

impl Keys {
    /// Reads the keys folder `dir` (as `hallmark keygen --out DIR` writes it).
    ///
    /// # Errors
    /// [`Error::Io`] for a missing or unreadable file, [`Error::TooLarge`] for one over
    /// [`MAX_KEY_BYTES`], and key errors when a file is not what its name says or the chain
    /// and the key do not match.
    pub fn load(dir: &Path) -> Result<Keys, Error> {
        let trust_anchor = match dir.join(CA) {
            p if p.exists() => Some(read_text_capped(&p, MAX_KEY_BYTES, "the trust anchor")?),
            _ => None,
        };
        Ok(Keys {
            watermark: load_watermark_key(&dir.join(WATERMARK_KEY))?,
            signer: load_signer(dir)?,
            trust_anchor,
            text: load_text_config(dir)?,
        })
    }

    /// A stamper with these keys (defaults otherwise; its fields can be changed).
    pub fn stamper(self) -> Stamper {
        Stamper::new(&self.watermark, self.signer)
    }

    /// A verifier that looks for this key's watermark and trusts this folder's CA.
    pub fn verifier(&self) -> Verifier {
        let trust = TrustSettings {
            anchors_pem: self.trust_anchor.clone(),
            ..TrustSettings::default()
        };
        Verifier::new(std::slice::from_ref(&self.watermark), trust)
    }
}

/// Reads a watermark key file.
///
/// # Errors
/// As [`read_capped`]; [`Error::Parameter`] when the file is not a watermark key.
pub fn load_watermark_key(file: &Path) -> Result<WatermarkKey, Error> {
    let text = zeroize::Zeroizing::new(read_text_capped(file, MAX_KEY_BYTES, "the watermark key")?);
    Ok(WatermarkKey::from_file_str(&text)?)
}

/// Reads the signing credential of the keys folder `dir`, with the key that signs ledger
/// records: the folder's `ledger.key`, or the signing key itself when it is Ed25519.
///
/// # Errors
/// As [`read_capped`]; [`Error::C2pa`] when the chain and key are unusable or do not match.
pub fn load_signer(dir: &Path) -> Result<SigningCredential, Error> {
    let chain = read_text_capped(&dir.join(CHAIN), MAX_KEY_BYTES, "the certificate chain")?;
    let key = zeroize::Zeroizing::new(read_text_capped(
        &dir.join(SIGNING_KEY),
        MAX_KEY_BYTES,
        "the signing key",
    )?);
    let cred = SigningCredential::from_pem(&chain, &key)?;
    with_ledger_key(cred, dir)
}

/// Gives `cred` the ledger key of the keys folder `dir` when it has none of its own: the
/// folder's `ledger.key`, or its signing key when that is Ed25519.
///
/// # Errors
/// As [`read_capped`].
pub fn with_ledger_key(cred: SigningCredential, dir: &Path) -> Result<SigningCredential, Error> {
    if cred.record_key().is_some() {
        return Ok(cred);
    }
    for name in [LEDGER_KEY, SIGNING_KEY] {
        let p = dir.join(name);
        if !p.exists() {
            continue;
        }
        let pem = zeroize::Zeroizing::new(read_text_capped(&p, MAX_KEY_BYTES, "the ledger key")?);
        if RecordKey::from_pkcs8_pem(&pem).is_ok() {
            return Ok(cred.with_record_key(&pem)?);
        }
    }
    Ok(cred)
}

/// The text watermark scheme recorded in the keys folder `dir` (`text-watermark.conf`), or
/// [`UNRECORDED_SCHEME`] for folders made before it was recorded.
///
/// # Errors
/// As [`read_capped`]; [`Error::Input`] when the file is not a scheme header.
pub fn load_text_config(dir: &Path) -> Result<Config, Error> {
    let p = dir.join(TEXT_CONFIG);
    if !p.exists() {
        return Config::from_header(UNRECORDED_SCHEME).map_err(|e| Error::Input(e.to_string()));
    }
    let t = read_text_capped(&p, MAX_CONFIG_BYTES, "the text watermark configuration")?;
    Config::from_header(t.trim()).map_err(|e| {
        Error::Input(format!(
            "{} is not a text watermark header: {e}",
            p.display()
        ))
    })
}

/// Reads at most `cap` bytes of `path` (a regular file, a FIFO or a device alike): anything
/// longer is refused after `cap + 1` bytes, before it can fill memory (`/dev/zero` as a
/// key). `what` names the file in messages ("the watermark key").
///
/// # Errors
/// [`Error::Io`] when it cannot be opened or read, [`Error::Input`] for a folder,
/// [`Error::TooLarge`] over the cap.
pub fn read_capped(path: &Path, cap: u64, what: &str) -> Result<Vec<u8>, Error> {
    let io = |doing: &str, source| Error::Io {
        what: format!("cannot {doing} {what} {}", path.display()),
        source,
    };
    let f = std::fs::File::open(path).map_err(|e| io("open", e))?;
    let meta = f.metadata().map_err(|e| io("stat", e))?;
    if meta.is_dir() {
        return Err(Error::Input(format!(
            "{what} {} is a directory",
            path.display()
        )));
    }
    if meta.len() > cap {
        return Err(Error::TooLarge(format!(
            "{what} {} is {} bytes, over the {} limit",
            path.display(),
            meta.len(),
            human_bytes(cap)
        )));
    }
    // Regular files report their length; devices and FIFOs report 0 and are read up to the cap.
    let mut buf = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0));
    f.take(cap + 1)
        .read_to_end(&mut buf)
        .map_err(|e| io("read", e))?;
    if buf.len() as u64 > cap {
        return Err(Error::TooLarge(format!(
            "{what} {} is longer than the {} limit",
            path.display(),
            human_bytes(cap)
        )));
    }
    Ok(buf)
}

/// [`read_capped`] for text files.
///
/// # Errors
/// As [`read_capped`]; [`Error::Input`] when the file is not UTF-8.
pub fn read_text_capped(path: &Path, cap: u64, what: &str) -> Result<String, Error> {
    let bytes = read_capped(path, cap, what)?;
    String::from_utf8(bytes)
        .map_err(|_| Error::Input(format!("{what} {} is not UTF-8 text", path.display())))
}

/// A size for messages: whole MiB or KiB.
pub fn human_bytes(n: u64) -> String {
    if n >= 1 << 20 {
        format!("{} MiB", n >> 20)
    } else {
        format!("{} KiB", n >> 10)
    }
}
