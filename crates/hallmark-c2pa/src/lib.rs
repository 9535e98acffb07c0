//! Sign and verify C2PA manifests that label content as AI-generated.
//!
//! Everything works over bytes in memory: the caller decodes nothing here and this crate opens
//! no files. Signing is offline unless asked otherwise: the key is in memory (Ed25519, ECDSA
//! or RSA-PSS) or held by an external signer command, and a time-stamp authority is called
//! only when one is configured ([`TimeStamper`]); verification never fetches anything.
//!
//! Main types: [`SigningCredential`] (a key and its chain), [`ManifestSpec`] (what a manifest
//! says: model, soft bindings, extra c2patool-style definition), [`sign`] and [`verify`],
//! which returns a [`Verification`] or `None` when there is no manifest.
#![deny(missing_docs)]

mod exclusions;
mod external;
mod keys;
mod profile;
mod sign;
mod verify;

pub use keys::{
    CertInfo, CertOptions, GeneratedKeys, KeyAlg, RecordKey, SignerCommand, SigningCredential,
    TimeStamper, generate, generate_at, generate_for,
};
pub use profile::{CertReport, ChainReport, check_chain};
pub use sign::{
    Embedding, Ingredient, ManifestSpec, Model, Relationship, Signed, SoftBinding, sign,
    source_type_iri,
};
pub use verify::{
    AiStatus, IngredientSummary, SignerSummary, StatusEntry, TrustRule, TrustSettings,
    ValidationState, Verification, verify,
};

/// The IRI of the IPTC digital source type for media created by a trained model.
pub const TRAINED_ALGORITHMIC_MEDIA: &str =
    "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia";

/// The IRI of the IPTC digital source type for media that combine existing content with
/// content made by a trained model (an edit of a labelled parent, inpainting, img2img).
pub const COMPOSITE_WITH_TRAINED_ALGORITHMIC_MEDIA: &str =
    "http://cv.iptc.org/newscodes/digitalsourcetype/compositeWithTrainedAlgorithmicMedia";

/// Errors from signing and verifying.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A caller-supplied value is unusable (bad manifest definition, empty name).
    #[error("{0}")]
    Parameter(String),
    /// The signing key or certificate chain cannot be loaded or used.
    #[error("{0}")]
    Key(String),
    /// The asset format cannot carry a manifest here.
    #[error("unsupported format {0:?} for an embedded manifest (use a sidecar)")]
    Unsupported(String),
    /// Certificate or signature machinery failed.
    #[error("{0}")]
    Crypto(String),
    /// The asset carries no manifest, only the address of a remote one (XMP
    /// `dcterms:provenance`), which is never fetched: verification here is offline.
    #[error("the manifest is remote, at {0}, and was not fetched (hallmark verifies offline)")]
    RemoteManifest(String),
    /// The c2pa library refused the asset or the manifest.
    /// (Its message is "c2pa"; the c2pa error is its source: print the chain, as
    /// `{:#}` on an `anyhow::Error` does, to see it.)
    #[error("c2pa")]
    C2pa(#[source] c2pa::Error),
}

/// Maps a file extension or MIME type to the MIME type c2pa expects, if c2pa can embed a
/// manifest in it here.
pub fn embeddable_mime(format: &str) -> Option<&'static str> {
    let f = format.to_ascii_lowercase();
    let f = f.rsplit('/').next().unwrap_or(&f).to_string();
    Some(match f.as_str() {
        "jpg" | "jpeg" => "image/jpeg",
        "png" => "image/png",
        "webp" => "image/webp",
        "tif" | "tiff" => "image/tiff",
        "gif" => "image/gif",
        "avif" => "image/avif",
        "heic" => "image/heic",
        "heif" => "image/heif",
        "svg" | "svg+xml" => "image/svg+xml",
        "mp4" => "video/mp4",
        "mov" | "quicktime" => "video/quicktime",
        "wav" | "x-wav" => "audio/wav",
        "mp3" | "mpeg" => "audio/mpeg",
        "pdf" => "application/pdf",
        _ => return None,
    })
}

pub(crate) fn context(settings: serde_json::Value) -> Result<std::sync::Arc<c2pa::Context>, Error> {
    Ok(c2pa::Context::new()
        .with_settings(settings)
        .map_err(Error::C2pa)?
        .into_shared())
}
