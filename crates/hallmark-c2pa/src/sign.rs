use std::io::Cursor;

use serde_json::{Value, json};

use crate::{
    COMPOSITE_WITH_TRAINED_ALGORITHMIC_MEDIA, Error, SigningCredential, TRAINED_ALGORITHMIC_MEDIA,
    keys::Ed25519Signer,
};

/// The generating model, recorded as the software agent of the creating action.
#[derive(
    Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
pub struct Model {
    /// Model name, e.g. `"stable-diffusion-xl"`.
    pub name: String,
    /// Model version, if known.
    pub version: Option<String>,
}

/// A soft binding: a value recoverable from the content itself (a watermark), recorded in a
/// `c2pa.soft-binding` assertion so a stripped copy can find its manifest again.
#[derive(
    Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
pub struct SoftBinding {
    /// Algorithm name from the C2PA soft-binding list, or a reverse-domain name.
    pub alg: String,
    /// The binding value (for a watermark: its payload bytes). Base64 in the manifest, hex
    /// in hallmark's JSON (like the payload).
    #[serde(with = "hex::serde")]
    #[schemars(with = "String")]
    pub value: Vec<u8>,
}

/// What a manifest says about the asset.
#[derive(Clone, Debug, Default)]
pub struct ManifestSpec {
    /// Title of the asset (often the file name).
    pub title: Option<String>,
    /// The model that generated the content.
    pub model: Option<Model>,
    /// Soft bindings to record (the image watermark's payload).
    pub soft_bindings: Vec<SoftBinding>,
    /// Record a `c2pa.watermarked` action (the asset carries an invisible watermark).
    pub watermarked: bool,
    /// The original asset (same format) when `sign` is given re-encoded pixels: if it carries
    /// a manifest, that manifest is kept as the parent ingredient.
    pub parent_asset: Option<Vec<u8>>,
    /// A manifest definition in c2patool's JSON format, merged in: its assertions are added,
    /// its actions appended to ours, its other top-level fields kept unless hallmark sets them.
    pub extra_definition: Option<Value>,
}

/// Where the manifest goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Embedding {
    /// Inside the asset (JPEG APP11, PNG caBX chunk, ...).
    Embedded,
    /// In a separate `.c2pa` manifest store; the asset is left byte-for-byte unchanged.
    Sidecar,
}

/// The result of [`sign`].
#[derive(Clone, Debug)]
pub struct Signed {
    /// The asset with the manifest embedded (for [`Embedding::Sidecar`], the unchanged input).
    pub asset: Vec<u8>,
    /// The manifest store bytes (JUMBF); for a sidecar, the content of the `.c2pa` file.
    pub manifest_store: Vec<u8>,
    /// The label (URN) of the new active manifest.
    pub manifest_id: String,
}

fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

pub(crate) fn definition(spec: &ManifestSpec, has_parent: bool) -> Result<Value, Error> {
    let when = now_rfc3339();
    let mut agent = json!({"name": "hallmark", "version": env!("CARGO_PKG_VERSION")});
    if let Some(m) = &spec.model {
        agent = json!({"name": m.name});
        if let Some(v) = &m.version {
            agent["version"] = json!(v);
        }
    }
    // A created asset has no parent; a re-signed one is an edit whose parent keeps the old
    // manifest, and our action says what the model did. New pixels made from a labelled
    // parent (an img2img or inpainting output stamped again) are a composite with
    // AI-generated content.
    let source_type = if has_parent && spec.parent_asset.is_some() {
        COMPOSITE_WITH_TRAINED_ALGORITHMIC_MEDIA
    } else {
        TRAINED_ALGORITHMIC_MEDIA
    };
    let mut actions = vec![json!({
        "action": if has_parent { "c2pa.edited" } else { "c2pa.created" },
        "digitalSourceType": source_type,
        "softwareAgent": agent,
        "when": when,
    })];
    if spec.watermarked {
        actions.push(json!({
            "action": "c2pa.watermarked",
            "softwareAgent": {"name": "hallmark", "version": env!("CARGO_PKG_VERSION")},
            "when": when,
            "description": "invisible image watermark carrying the soft-binding value",
        }));
    }
    let mut assertions = vec![];
    for sb in &spec.soft_bindings {
        use base64::Engine as _;
        assertions.push(json!({
            "label": "c2pa.soft-binding",
            "data": {
                "alg": sb.alg,
                "blocks": [{"scope": {}, "value": base64::engine::general_purpose::STANDARD.encode(&sb.value)}],
                "name": "hallmark image watermark",
            },
            "created": true,
        }));
    }
    let mut def = json!({
        "claim_generator_info": [{"name": "hallmark", "version": env!("CARGO_PKG_VERSION")}],
    });
    if let Some(t) = &spec.title {
        def["title"] = json!(t);
    }
    if let Some(extra) = &spec.extra_definition {
        let Value::Object(extra) = extra else {
            return Err(Error::Parameter(
                "the manifest definition must be a JSON object".into(),
            ));
        };
        for (k, v) in extra {
            match k.as_str() {
                "assertions" => {
                    let Value::Array(list) = v else {
                        return Err(Error::Parameter(
                            "\"assertions\" in the manifest definition must be an array".into(),
                        ));
                    };
                    for a in list {
                        let label = a.get("label").and_then(Value::as_str).unwrap_or_default();
                        if label.starts_with("c2pa.actions") {
                            if let Some(user) = a.pointer("/data/actions").and_then(Value::as_array)
                            {
                                actions.extend(user.iter().cloned());
                            }
                        } else if label.is_empty() {
                            return Err(Error::Parameter(
                                "an assertion in the manifest definition has no label".into(),
                            ));
                        } else {
                            assertions.push(a.clone());
                        }
                    }
                }
                "claim_generator_info" => {
                    if let (Some(ours), Some(theirs)) =
                        (def["claim_generator_info"].as_array_mut(), v.as_array())
                    {
                        ours.extend(theirs.iter().cloned());
                    }
                }
                // The signer and format are decided here, never by the definition.
                "alg" | "private_key" | "sign_cert" | "ta_url" | "format" => {}
                _ => {
                    if def.get(k).is_none() {
                        def[k] = v.clone();
                    }
                }
            }
        }
    }
    assertions.insert(
        0,
        json!({"label": "c2pa.actions", "data": {"actions": actions}, "created": true}),
    );
    def["assertions"] = Value::Array(assertions);
    Ok(def)
}

/// Signs `asset` (of MIME type or extension `format`) with a manifest built from `spec`.
/// When the asset already carries a manifest, it is kept as the parent ingredient.
///
/// # Errors
/// [`Error::Unsupported`] for a format c2pa cannot embed into (ask for a sidecar, which works
/// for the same formats c2pa can hash), [`Error::Parameter`] for a bad definition, and
/// [`Error::C2pa`] when c2pa rejects the asset (for example a corrupt file).
pub fn sign(
    cred: &SigningCredential,
    spec: &ManifestSpec,
    format: &str,
    asset: &[u8],
    embedding: Embedding,
) -> Result<Signed, Error> {
    let mime =
        crate::embeddable_mime(format).ok_or_else(|| Error::Unsupported(format.to_string()))?;
    let parent: Option<&[u8]> = match &spec.parent_asset {
        Some(p) if crate::verify::has_manifest(mime, p) => Some(p),
        Some(_) => None,
        None => crate::verify::has_manifest(mime, asset).then_some(asset),
    };
    let has_parent = parent.is_some();
    let def = definition(spec, has_parent)?;
    let ctx = crate::context(json!({
        "verify": {
            "verify_after_sign": true,
            "remote_manifest_fetch": false,
            "ocsp_fetch": false,
        },
        "builder": {"thumbnail": {"enabled": false}},
    }))?;
    let mut builder = c2pa::Builder::from_shared_context(&ctx)
        .with_definition(def.to_string())
        .map_err(Error::C2pa)?;
    if let Some(p) = parent {
        if std::ptr::eq(p, asset) {
            builder.set_intent(c2pa::BuilderIntent::Edit);
        } else {
            // The parent's manifest stays in the chain as the ingredient the new one
            // opened (c2pa-rs then writes the c2pa.opened action that must come first).
            builder.set_intent(c2pa::BuilderIntent::Edit);
            let title = spec.title.clone().unwrap_or_else(|| "original".into());
            builder
                .add_ingredient_from_stream(
                    json!({"title": title, "relationship": "parentOf"}).to_string(),
                    mime,
                    &mut Cursor::new(p),
                )
                .map_err(Error::C2pa)?;
        }
    }
    if embedding == Embedding::Sidecar {
        builder.set_no_embed(true);
    }
    let signer = Ed25519Signer(cred);
    let mut src = Cursor::new(asset);
    let mut dst = Cursor::new(Vec::with_capacity(asset.len() + 16 * 1024));
    let store = builder
        .sign(&signer, mime, &mut src, &mut dst)
        .map_err(Error::C2pa)?;
    let out = if embedding == Embedding::Sidecar {
        asset.to_vec()
    } else {
        dst.into_inner()
    };
    let manifest_id = crate::verify::active_label(mime, &out, &store)?;
    Ok(Signed {
        asset: out,
        manifest_store: store,
        manifest_id,
    })
}
