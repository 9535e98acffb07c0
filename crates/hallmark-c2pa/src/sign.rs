use std::io::Cursor;

use serde_json::{Value, json};

use crate::{
    COMPOSITE_WITH_TRAINED_ALGORITHMIC_MEDIA, Error, SigningCredential, TRAINED_ALGORITHMIC_MEDIA,
    keys::CredentialSigner,
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

/// How an ingredient relates to the asset (C2PA ingredient relationships).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Relationship {
    /// The asset is a derivation of this one (at most one per manifest).
    ParentOf,
    /// The ingredient is part of the asset (a layer, a placed image).
    ComponentOf,
    /// The ingredient was an input to the process (a prompt image, a reference).
    InputTo,
}

impl Relationship {
    fn name(self) -> &'static str {
        match self {
            Relationship::ParentOf => "parentOf",
            Relationship::ComponentOf => "componentOf",
            Relationship::InputTo => "inputTo",
        }
    }
}

/// A file added to a manifest as an ingredient: c2patool's `--parent`, and the files of a
/// definition's `ingredient_paths`. If it carries a manifest, that manifest stays in the
/// chain.
#[derive(Clone, Debug)]
pub struct Ingredient {
    /// The file's bytes.
    pub bytes: Vec<u8>,
    /// Its format: an extension or MIME type c2pa reads.
    pub format: String,
    /// Its title (usually the file name).
    pub title: String,
    /// How it relates to the asset.
    pub relationship: Relationship,
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
    /// An explicit parent ingredient (c2patool's `--parent`): the asset is an edit of it.
    /// Refused when the asset (or `parent_asset`) carries a manifest of its own, which is
    /// already its parent.
    pub parent: Option<Ingredient>,
    /// Further ingredients (components, inputs).
    pub ingredients: Vec<Ingredient>,
    /// Resources the definition refers to by identifier, such as a thumbnail file's bytes
    /// under the `identifier` its `thumbnail` names.
    pub resources: Vec<(String, Vec<u8>)>,
    /// A manifest definition in c2patool's JSON format, merged in: its assertions are added;
    /// its `c2pa.created` (or `c2pa.opened`) action, if it has one, replaces hallmark's and
    /// its other actions follow; its `claim_generator_info` (the first entry) and `title`
    /// replace hallmark's; keys that choose the signer (`alg`, `private_key`, `sign_cert`,
    /// `ta_url`, `format`) are ignored with a warning ([`Signed::warnings`]).
    pub extra_definition: Option<Value>,
    /// The digital source type of the inception action (an IPTC term such as
    /// `digitalCapture` or a full IRI; see [`source_type_iri`]). `None`: the definition's
    /// own, else `trainedAlgorithmicMedia` (or `compositeWithTrainedAlgorithmicMedia` for
    /// new pixels from a labelled parent).
    pub source_type: Option<String>,
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
    /// What of the manifest definition was not used, for the user to see.
    pub warnings: Vec<String>,
}

fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// The IPTC digital source type for `name`: a full IRI is kept as it is, a bare term
/// (`digitalCapture`, `trainedAlgorithmicMedia`) is expanded.
///
/// # Errors
/// [`Error::Parameter`] for anything that is neither an `http(s)://` IRI nor a plain term.
pub fn source_type_iri(name: &str) -> Result<String, Error> {
    let n = name.trim();
    if n.starts_with("http://") || n.starts_with("https://") {
        return Ok(n.to_string());
    }
    if !n.is_empty() && n.chars().all(|c| c.is_ascii_alphanumeric()) {
        return Ok(format!(
            "http://cv.iptc.org/newscodes/digitalsourcetype/{n}"
        ));
    }
    Err(Error::Parameter(format!(
        "{name:?} is not a digital source type: give an IPTC term such as digitalCapture or \
         trainedAlgorithmicMedia, or a full IRI"
    )))
}

/// Definition keys that say how to sign rather than what: the signer and the format are
/// decided by hallmark's own options, so the definition's are ignored (with a warning).
const SIGNER_KEYS: [&str; 5] = ["alg", "private_key", "sign_cert", "ta_url", "format"];

fn is_inception(action: &Value) -> bool {
    matches!(
        action.get("action").and_then(Value::as_str),
        Some("c2pa.created" | "c2pa.opened")
    )
}

/// The manifest definition handed to c2pa, and warnings about what of the user's definition
/// was not used.
pub(crate) fn definition(
    spec: &ManifestSpec,
    has_parent: bool,
    from_parent: bool,
) -> Result<(Value, Vec<String>), Error> {
    let when = now_rfc3339();
    let mut warnings = vec![];
    let mut agent = json!({"name": "hallmark", "version": env!("CARGO_PKG_VERSION")});
    if let Some(m) = &spec.model {
        agent = json!({"name": m.name});
        if let Some(v) = &m.version {
            agent["version"] = json!(v);
        }
    }
    let mut user_actions: Vec<Value> = vec![];
    let mut assertions = vec![];
    let mut def = json!({});
    let mut generator: Option<Value> = None;
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
                            match a.pointer("/data/actions") {
                                Some(Value::Array(user)) => user_actions.extend(user.iter().cloned()),
                                _ => {
                                    return Err(Error::Parameter(format!(
                                        "the {label} assertion in the manifest definition has no \"actions\" array"
                                    )));
                                }
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
                // A claim has one generator (C2PA 2.x): the definition's names the product
                // that signs, so it replaces hallmark's.
                "claim_generator_info" => match v {
                    Value::Array(list) if !list.is_empty() => {
                        if list.len() > 1 {
                            warnings.push(format!(
                                "the manifest definition lists {} claim_generator_info entries; a claim has one, so only the first is used",
                                list.len()
                            ));
                        }
                        generator = Some(list[0].clone());
                    }
                    Value::Object(_) => generator = Some(v.clone()),
                    _ => {
                        return Err(Error::Parameter(
                            "\"claim_generator_info\" in the manifest definition must be a list of {name, version} objects".into(),
                        ));
                    }
                },
                "claim_generator" => warnings.push(
                    "the manifest definition's \"claim_generator\" string is ignored (C2PA 2.x claims use claim_generator_info)".into(),
                ),
                k if SIGNER_KEYS.contains(&k) => warnings.push(format!(
                    "the manifest definition's {k:?} is ignored: hallmark's own options choose the signer, time stamp and format"
                )),
                _ => def[k] = v.clone(),
            }
        }
    }
    if let Some(g) = &generator
        && g.get("name")
            .and_then(Value::as_str)
            .is_none_or(|n| n.trim().is_empty())
    {
        return Err(Error::Parameter(
            "the manifest definition's claim_generator_info has no name".into(),
        ));
    }
    def["claim_generator_info"] = json!([generator
        .unwrap_or_else(|| json!({"name": "hallmark", "version": env!("CARGO_PKG_VERSION")}))]);
    // The definition's title wins over the file name hallmark would use.
    if def.get("title").is_none()
        && let Some(t) = &spec.title
    {
        def["title"] = json!(t);
    }

    let source_override = spec
        .source_type
        .as_deref()
        .map(source_type_iri)
        .transpose()?;
    let user_inception = user_actions.iter().position(is_inception);
    if user_actions.iter().filter(|a| is_inception(a)).count() > 1 {
        return Err(Error::Parameter(
            "the manifest definition has more than one c2pa.created or c2pa.opened action; a manifest has exactly one".into(),
        ));
    }
    let mut actions = vec![];
    match user_inception {
        Some(_) if has_parent => {
            return Err(Error::Parameter(
                "the manifest definition has its own c2pa.created or c2pa.opened action, but the asset already carries a manifest: signing it again is an edit, which c2pa opens itself. Drop that action from the definition (or strip the old manifest first)".into(),
            ));
        }
        Some(i) => {
            // The user's own inception action stands (a camera's digitalCapture is not AI);
            // --source-type overrides its type, and the model names the agent if it has none.
            let mut a = user_actions.remove(i);
            if let Some(t) = &source_override {
                a["digitalSourceType"] = json!(t);
            } else if a.get("digitalSourceType").is_none() && a["action"] == "c2pa.created" {
                a["digitalSourceType"] = json!(TRAINED_ALGORITHMIC_MEDIA);
            }
            if spec.model.is_some() && a.get("softwareAgent").is_none() {
                a["softwareAgent"] = agent.clone();
            }
            actions.push(a);
        }
        None => {
            // A created asset has no parent; a re-signed one is an edit whose parent keeps
            // the old manifest, and our action says what the model did. New pixels made
            // from a labelled parent (an img2img or inpainting output stamped again) are a
            // composite with AI-generated content.
            let default_type = if has_parent && from_parent {
                COMPOSITE_WITH_TRAINED_ALGORITHMIC_MEDIA
            } else {
                TRAINED_ALGORITHMIC_MEDIA
            };
            actions.push(json!({
                "action": if has_parent { "c2pa.edited" } else { "c2pa.created" },
                "digitalSourceType": source_override.clone().unwrap_or_else(|| default_type.to_string()),
                "softwareAgent": agent,
                "when": when,
            }));
        }
    }
    actions.extend(user_actions);
    if spec.watermarked {
        actions.push(json!({
            "action": "c2pa.watermarked",
            "softwareAgent": {"name": "hallmark", "version": env!("CARGO_PKG_VERSION")},
            "when": when,
            "description": "invisible image watermark carrying the soft-binding value",
        }));
    }
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
    assertions.insert(
        0,
        json!({"label": "c2pa.actions", "data": {"actions": actions}, "created": true}),
    );
    def["assertions"] = Value::Array(assertions);
    Ok((def, warnings))
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
    if parent.is_some() && spec.parent.is_some() {
        return Err(Error::Parameter(
            "the asset carries a manifest of its own, which becomes its parent ingredient: a second parent (--parent) is not allowed".into(),
        ));
    }
    let has_parent = parent.is_some() || spec.parent.is_some();
    let from_parent = spec.parent_asset.is_some() || spec.parent.is_some();
    let (def, warnings) = definition(spec, has_parent, from_parent)?;
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
    let mut extra: Vec<&Ingredient> = spec.parent.iter().collect();
    extra.extend(spec.ingredients.iter());
    if extra
        .iter()
        .filter(|i| i.relationship == Relationship::ParentOf)
        .count()
        > 1
    {
        return Err(Error::Parameter(
            "a manifest has at most one parent ingredient".into(),
        ));
    }
    for ing in extra {
        if ing.relationship == Relationship::ParentOf {
            builder.set_intent(c2pa::BuilderIntent::Edit);
        }
        let fmt = crate::embeddable_mime(&ing.format)
            .ok_or_else(|| Error::Unsupported(ing.format.clone()))?;
        builder
            .add_ingredient_from_stream(
                json!({"title": ing.title, "relationship": ing.relationship.name()}).to_string(),
                fmt,
                &mut Cursor::new(&ing.bytes),
            )
            .map_err(|e| {
                Error::Parameter(format!(
                    "the ingredient {:?} cannot be added: {e}",
                    ing.title
                ))
            })?;
    }
    for (id, bytes) in &spec.resources {
        builder
            .add_resource(id, Cursor::new(bytes.clone()))
            .map_err(|e| Error::Parameter(format!("the resource {id:?} cannot be added: {e}")))?;
    }
    if embedding == Embedding::Sidecar {
        builder.set_no_embed(true);
    }
    let signer = CredentialSigner(cred);
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
        warnings,
    })
}
