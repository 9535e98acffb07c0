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
    /// Overwrite existing key files.
    #[arg(long)]
    pub force: bool,
}

pub fn keygen(args: &KeygenArgs, json_out: bool, quiet: bool) -> Result<i32> {
    let text = keys::parse_scheme(&args.text_scheme).context("--text-scheme")?;
    let info = keys::generate(
        &args.out,
        &hallmark::c2pa::CertOptions {
            org: args.org.clone(),
            name: args.name.clone(),
            validity_days: args.validity_days,
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
            "  signing key     {}  (secret, mode 0600, Ed25519 PKCS#8)",
            f.signing_key
        );
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

pub use keys::{load_signer, load_watermark_key};
