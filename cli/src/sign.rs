//! `hallmark sign`: a C2PA manifest alone, embedded or as a sidecar.

use anyhow::{Context, Result, bail};

use crate::args::{Cli, SignArgs, limits};
use crate::out::{errln, outln};
use crate::{dash_output, files, json, keys, output_format};

pub(crate) fn sign(cli: &Cli, a: &SignArgs) -> Result<i32> {
    let bytes = files::read_input(&a.input)?;
    let fmt = hallmark::io::Format::sniff(&bytes)
        .context("not a supported image (hallmark signs JPEG, PNG, WebP, TIFF and GIF)")?;
    // The manifest binds these exact bytes: a corrupt or truncated image would be signed as
    // if it were whole. Decode it first, as `stamp` does (the pixels are then dropped).
    hallmark::io::decode(&bytes, &limits(cli))
        .with_context(|| format!("cannot sign {}", a.input.display()))?;
    let signer = keys::load_credential(&a.signer.source(a.keys.as_deref())?)?;
    let mut spec = a.manifest.spec()?;
    spec.title = a
        .input
        .file_name()
        .map(|n| n.to_string_lossy().into_owned());
    spec.model = a.model.model();
    let embedding = if a.sidecar {
        hallmark::c2pa::Embedding::Sidecar
    } else {
        hallmark::c2pa::Embedding::Embedded
    };
    let signed = hallmark::c2pa::sign(&signer, &spec, fmt.mime(), &bytes, embedding)
        .with_context(|| format!("cannot sign {}", a.input.display()))?;
    for w in &signed.warnings {
        errln!("hallmark: warning: {w}");
    }
    if a.sidecar && dash_output(&a.output) {
        bail!("a sidecar needs a file name to sit beside: give -o FILE, not -o -");
    }
    if a.sidecar && a.output.is_none() && files::is_std(&a.input) {
        bail!("--sidecar with standard input needs -o OUT to name the sidecar after");
    }
    let (asset_out, side_out) = match (&a.output, a.sidecar) {
        (Some(o), true) => (Some(o.clone()), Some(o.with_extension("c2pa"))),
        (Some(o), false) => (Some(o.clone()), None),
        (None, _) => (None, Some(a.input.with_extension("c2pa"))),
    };
    let replace = files::Replace::allowed_if(a.force || a.in_place);
    if let Some(o) = &asset_out
        && let Some(named) = output_format(o, None)?
        && named != fmt
    {
        bail!(
            "{} names a {} file but the input is {}: `sign` keeps the pixels and their encoding as they are (use `stamp` or `strip --format` to convert)",
            o.display(),
            named.extension(),
            fmt.extension()
        );
    }
    if let Some(o) = &asset_out {
        files::check_output(o, std::slice::from_ref(&a.input), a.in_place, replace)?;
    }
    if let Some(s) = &side_out {
        // A sidecar never replaces a manifest someone already has: above all the input's own
        // `.c2pa`, which may be the only copy of its provenance.
        if std::fs::symlink_metadata(s).is_ok() && !a.force {
            return Err(json::coded(
                hallmark::ErrorCode::OutputExists,
                format!(
                    "refusing to overwrite the existing sidecar {} (pass --force to replace it)",
                    s.display()
                ),
            ));
        }
    }
    if let Some(o) = &asset_out {
        files::write_output(o, &signed.asset, replace)?;
    }
    if let Some(s) = &side_out {
        files::write_output(
            s,
            &signed.manifest_store,
            files::Replace::allowed_if(a.force),
        )?;
    }
    if cli.json {
        json::emit(
            json::SIGN,
            a.input.display().to_string(),
            &json::SignOut {
                input: a.input.display().to_string(),
                output: asset_out.map(|p| p.display().to_string()),
                sidecar: side_out.map(|p| p.display().to_string()),
                manifest_id: signed.manifest_id.clone(),
                warnings: signed.warnings.clone(),
            },
        )?;
    } else if !cli.quiet {
        outln!(
            "signed {} (manifest {}){}{}",
            a.input.display(),
            signed.manifest_id,
            asset_out
                .map(|p| format!(" -> {}", p.display()))
                .unwrap_or_default(),
            side_out
                .map(|p| format!(", sidecar {}", p.display()))
                .unwrap_or_default()
        );
    }
    Ok(0)
}
