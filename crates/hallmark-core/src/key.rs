//! Watermark keys. The 256-bit secret is shared by the image and text marks; each mark derives
//! its own sub-keys with a domain-separation label, so one mark's detector output never helps
//! attack another.

use std::fmt;

use sha2::{Digest, Sha256};
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::Error;

/// First line of a watermark key file; the versioned header lets a later format be told apart.
const FILE_HEADER: &str = "hallmark-watermark-key v1";

/// A 256-bit watermark secret. `Debug` shows only the public [`KeyId`]; the bytes are zeroized
/// when the key is dropped.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct WatermarkKey([u8; 32]);

impl WatermarkKey {
    /// Wraps 32 secret bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        WatermarkKey(bytes)
    }

    /// A fresh key from the operating system's random number generator.
    pub fn generate() -> Self {
        let mut bytes = [0u8; 32];
        rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut bytes);
        let key = WatermarkKey(bytes);
        bytes.zeroize();
        key
    }

    /// The public identifier of this key: a hash of the secret, safe to show in reports.
    pub fn id(&self) -> KeyId {
        let mut h = Sha256::new();
        h.update(b"hallmark/key-id/v1\0");
        h.update(self.0);
        let d = h.finalize();
        let mut id = [0u8; 8];
        id.copy_from_slice(&d[..8]);
        KeyId(id)
    }

    /// Derives a 256-bit sub-key for one purpose (for example `"image/pattern/v1"`).
    pub fn derive(&self, label: &str) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(b"hallmark/derive/v1\0");
        h.update((label.len() as u64).to_le_bytes());
        h.update(label.as_bytes());
        h.update(self.0);
        h.finalize().into()
    }

    /// Serialises the key in its file format (a header line and 64 hex digits).
    /// The returned string holds the secret: write it to a 0600 file and drop it.
    pub fn to_file_string(&self) -> zeroize::Zeroizing<String> {
        zeroize::Zeroizing::new(format!("{FILE_HEADER}\n{}\n", hex::encode(self.0)))
    }

    /// Parses a key file written by [`WatermarkKey::to_file_string`]. A bare line of 64 hex
    /// digits is accepted too.
    ///
    /// # Errors
    /// [`Error::Parameter`] when the header is unknown or the secret is not 64 hex digits.
    pub fn from_file_str(text: &str) -> Result<Self, Error> {
        let mut lines = text.lines().map(str::trim).filter(|l| !l.is_empty());
        let first = lines
            .next()
            .ok_or_else(|| Error::param("watermark key", "the key file is empty"))?;
        let hex_line = if first.starts_with("hallmark-watermark-key") {
            if first != FILE_HEADER {
                return Err(Error::param(
                    "watermark key",
                    format!("unsupported key file version {first:?}"),
                ));
            }
            lines
                .next()
                .ok_or_else(|| Error::param("watermark key", "the key line is missing"))?
        } else {
            first
        };
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(hex_line, &mut bytes).map_err(|_| {
            Error::param(
                "watermark key",
                "expected 64 hex digits (is this a watermark key file?)",
            )
        })?;
        let key = WatermarkKey(bytes);
        bytes.zeroize();
        Ok(key)
    }
}

impl fmt::Debug for WatermarkKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WatermarkKey")
            .field("id", &self.id())
            .finish_non_exhaustive()
    }
}

/// The public, 64-bit identifier of a [`WatermarkKey`], shown as 16 hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyId(pub [u8; 8]);

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl serde::Serialize for KeyId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl schemars::JsonSchema for KeyId {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "KeyId".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "The public ID of a watermark key: 16 lower-case hex digits.",
            "type": "string",
            "pattern": "^[0-9a-f]{16}$"
        })
    }
}

impl fmt::Debug for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyId({self})")
    }
}

#[cfg(test)]
mod tests;
