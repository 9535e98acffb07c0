use std::io::Cursor;

use serde::Serialize;
use serde_json::{Value, json};

use crate::{Error, SoftBinding};

/// The three C2PA validation states, from best to worst.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub enum ValidationState {
    /// Signature, bindings and the signer's chain to a trust anchor all check out.
    Trusted,
    /// Signature and bindings check out, but the signer is not (known to be) trusted.
    Valid,
    /// Something failed: see the failure codes.
    Invalid,
}

/// What makes a signer trusted, with c2patool's `trust` options' meaning.
#[derive(Clone, Debug, Default)]
pub struct TrustSettings {
    /// The user's PEM trust anchors (for example a keygen `c2pa-ca.pem`): c2pa's
    /// `trust.user_anchors`.
    pub anchors_pem: Option<String>,
    /// A PEM trust list (for example the C2PA trust list): c2pa's `trust.trust_anchors`,
    /// what c2patool's `--trust_anchors` sets.
    pub trust_list_pem: Option<String>,
    /// End-entity certificates trusted as they are, whatever issued them: PEM certificates
    /// or base64 SHA-256 hashes of their DER, one per line (c2patool's `--allowed_list`).
    pub allowed_list: Option<String>,
    /// Extended key usages a signing certificate may have, one OID per line, added to the
    /// C2PA defaults (c2patool's `--trust_config`).
    pub trust_config: Option<String>,
}

/// Which rule made a signer trusted.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct TrustRule {
    /// `user_anchor` (the user's anchors: `--trust`, a keys folder's CA), `trust_list` (a
    /// trust list such as the C2PA one: `--trust-anchors`) or `allowed_list` (the signing
    /// certificate itself is on the allowed list).
    pub rule: String,
    /// The subject of the anchor the chain leads to (for the anchor rules), when found.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub anchor: Option<String>,
}

/// One C2PA status entry, verbatim from the validator.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct StatusEntry {
    /// The status code, e.g. `assertion.dataHash.mismatch`.
    pub code: String,
    /// The JUMBF URI the code is about.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// The validator's explanation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub explanation: Option<String>,
}

/// What the manifest says about AI involvement.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum AiStatus {
    /// Created by a generative model (trainedAlgorithmicMedia, algorithmicMedia).
    Generated,
    /// Edited with or composited from generative output.
    Edited,
    /// The manifest declares no AI involvement.
    NotDeclared,
}

/// The signer as the certificate states it.
#[derive(Clone, Debug, Default, Serialize, schemars::JsonSchema)]
pub struct SignerSummary {
    /// Organisation of the signing certificate.
    pub issuer: Option<String>,
    /// Common name of the signing certificate.
    pub common_name: Option<String>,
    /// Certificate serial number.
    pub cert_serial_number: Option<String>,
    /// Signature algorithm.
    pub alg: Option<String>,
    /// Signing time claimed by the signer (not attested without a time-stamp authority).
    pub time: Option<String>,
}

/// An ingredient of the active manifest.
#[derive(Clone, Debug, Serialize, schemars::JsonSchema)]
pub struct IngredientSummary {
    /// Title of the ingredient.
    pub title: Option<String>,
    /// `parentOf`, `componentOf` or `inputTo`.
    pub relationship: Option<String>,
    /// Label of the ingredient's own manifest, when it had one.
    pub active_manifest: Option<String>,
}

/// The verdict on one asset's manifest.
#[derive(Clone, Debug, Serialize, schemars::JsonSchema)]
pub struct Verification {
    /// Overall state.
    pub validation_state: ValidationState,
    /// Success codes, verbatim.
    pub success: Vec<StatusEntry>,
    /// Informational codes, verbatim.
    pub informational: Vec<StatusEntry>,
    /// Failure codes, verbatim.
    pub failure: Vec<StatusEntry>,
    /// Label of the active manifest.
    pub active_manifest: Option<String>,
    /// Whether the manifest came from inside the asset (else a sidecar).
    pub embedded: bool,
    /// The signer.
    pub signer: SignerSummary,
    /// `name version` of each claim generator.
    pub claim_generator: Vec<String>,
    /// The digital source type of the first action that states one.
    pub digital_source_type: Option<String>,
    /// What that means.
    pub ai: AiStatus,
    /// The software agent (model) named by the creating or editing action.
    pub software_agent: Option<String>,
    /// Soft bindings recorded in the active manifest.
    pub soft_bindings: Vec<SoftBinding>,
    /// Whether a `c2pa.watermarked` action is present.
    pub watermarked_action: bool,
    /// Ingredients of the active manifest.
    pub ingredients: Vec<IngredientSummary>,
    /// What made the signer trusted (only when it is).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trusted_by: Option<TrustRule>,
    /// c2pa's full report (c2patool's JSON), for `--json` consumers.
    pub report: Value,
    /// c2pa's detailed report (c2patool's `--detailed` JSON: the claims and assertion
    /// stores as stored), with the same failures added.
    #[serde(skip)]
    #[schemars(skip)]
    pub detailed_report: Value,
}

impl Verification {
    /// True when any failure code says the signing certificate expired.
    pub fn expired(&self) -> bool {
        self.failure
            .iter()
            .any(|s| s.code == "signingCredential.expired")
    }
}

fn reader_context(trust: &TrustSettings) -> Result<std::sync::Arc<c2pa::Context>, Error> {
    let mut settings = json!({
        "verify": {
            "remote_manifest_fetch": false,
            "ocsp_fetch": false,
            "verify_after_reading": true,
            "verify_trust": true,
        },
        "core": {"max_decompressed_manifest_size_in_mb": 16},
        "builder": {"thumbnail": {"enabled": false}},
    });
    let mut t = serde_json::Map::new();
    for (k, v) in [
        ("user_anchors", &trust.anchors_pem),
        ("trust_anchors", &trust.trust_list_pem),
        ("allowed_list", &trust.allowed_list),
        ("trust_config", &trust.trust_config),
    ] {
        if let Some(v) = v {
            t.insert(k.into(), json!(v));
        }
    }
    if !t.is_empty() {
        settings["trust"] = Value::Object(t);
    }
    crate::context(settings)
}

/// Whether c2pa finds a manifest store in the asset (valid or not).
pub(crate) fn has_manifest(mime: &str, asset: &[u8]) -> bool {
    let Ok(ctx) = crate::context(json!({
        "verify": {"verify_after_reading": false, "remote_manifest_fetch": false, "ocsp_fetch": false},
        "builder": {"thumbnail": {"enabled": false}},
    })) else {
        return false;
    };
    !matches!(
        c2pa::Reader::from_shared_context(&ctx).with_stream(mime, Cursor::new(asset)),
        Err(c2pa::Error::JumbfNotFound)
            | Err(c2pa::Error::UnsupportedType)
            | Err(c2pa::Error::ProvenanceMissing)
            // A pointer to a remote manifest is not a manifest in the file: signing adds the
            // first embedded one.
            | Err(c2pa::Error::RemoteManifestUrl(_))
            | Err(c2pa::Error::RemoteManifestFetch(_))
    )
}

pub(crate) fn active_label(mime: &str, asset: &[u8], store: &[u8]) -> Result<String, Error> {
    let ctx = crate::context(json!({
        "verify": {"verify_after_reading": false, "remote_manifest_fetch": false},
        "builder": {"thumbnail": {"enabled": false}},
    }))?;
    let reader = c2pa::Reader::from_shared_context(&ctx)
        .with_manifest_data_and_stream(store, mime, Cursor::new(asset))
        .map_err(Error::C2pa)?;
    reader
        .active_label()
        .map(str::to_string)
        .ok_or_else(|| Error::Crypto("the signed manifest has no active label".into()))
}

/// Verifies the manifest of `asset`: embedded, or `sidecar` (the bytes of a `.c2pa` file)
/// when the asset carries none. Returns `Ok(None)` when there is no manifest at all.
///
/// A sidecar is refused (reported Invalid) for an asset that still carries a manifest box
/// of its own, valid or not: c2pa 0.90 does not check the excluded range of a detached
/// manifest (c2pa-rs #2643), so such a pairing could hide tampering.
///
/// # Errors
/// [`Error::Unsupported`] for a format c2pa cannot read; [`Error::C2pa`] when the asset
/// itself cannot be parsed (truncated beyond repair, not the format it claims);
/// [`Error::RemoteManifest`] when the asset holds no manifest but points to one on the web
/// (never fetched here).
pub fn verify(
    format: &str,
    asset: &[u8],
    sidecar: Option<&[u8]>,
    trust: &TrustSettings,
) -> Result<Option<Verification>, Error> {
    let mime =
        crate::embeddable_mime(format).ok_or_else(|| Error::Unsupported(format.to_string()))?;
    let ctx = reader_context(trust)?;
    let embedded = c2pa::Reader::from_shared_context(&ctx).with_stream(mime, Cursor::new(asset));
    let (reader, is_embedded) = match (embedded, sidecar) {
        (Ok(r), _) => (r, true),
        (
            Err(
                c2pa::Error::JumbfNotFound
                | c2pa::Error::ProvenanceMissing
                | c2pa::Error::RemoteManifestUrl(_)
                | c2pa::Error::RemoteManifestFetch(_),
            ),
            Some(store),
        ) => {
            match c2pa::Reader::from_shared_context(&ctx).with_manifest_data_and_stream(
                store,
                mime,
                Cursor::new(asset),
            ) {
                Ok(r) => (r, false),
                Err(e) => return Ok(Some(unreadable(&e, false))),
            }
        }
        (Err(c2pa::Error::JumbfNotFound | c2pa::Error::ProvenanceMissing), None) => {
            return Ok(None);
        }
        // No manifest in the file, only a pointer to one on the web (XMP
        // `dcterms:provenance`). Verification is offline: say so rather than guess.
        (
            Err(c2pa::Error::RemoteManifestUrl(url) | c2pa::Error::RemoteManifestFetch(url)),
            None,
        ) => return Err(Error::RemoteManifest(url)),
        (Err(e), _) if is_asset_error(&e) => return Err(Error::C2pa(e)),
        (Err(e), Some(_)) => {
            let mut v = unreadable(&e, true);
            v.failure.push(StatusEntry {
                code: "hallmark.sidecar.refused".into(),
                url: None,
                explanation: Some(
                    "the asset carries a broken manifest box of its own, so the sidecar is not trusted"
                        .into(),
                ),
            });
            return Ok(Some(v));
        }
        (Err(e), None) => return Ok(Some(unreadable(&e, true))),
    };
    let mut v = summarise(&reader, is_embedded);
    v.detailed_report = serde_json::from_str(&reader.detailed_json()).unwrap_or(Value::Null);
    check_exclusions(&mut v, mime, asset);
    check_inception(&mut v);
    if v.validation_state == ValidationState::Trusted {
        v.trusted_by = trust_rule(&v, &reader, trust);
    }
    Ok(Some(v))
}

/// Which rule c2pa trusted the signer by (its `signingCredential.trusted` entry names the
/// list), and the anchor the chain leads to.
fn trust_rule(v: &Verification, reader: &c2pa::Reader, trust: &TrustSettings) -> Option<TrustRule> {
    let why = v
        .success
        .iter()
        .find(|s| s.code == "signingCredential.trusted")?
        .explanation
        .clone()
        .unwrap_or_default();
    let (rule, list) = if why.contains("EndEntity") {
        ("allowed_list", None)
    } else if why.contains("System") {
        ("trust_list", trust.trust_list_pem.as_deref())
    } else {
        ("user_anchor", trust.anchors_pem.as_deref())
    };
    let anchor = list.and_then(|pem| {
        let chain = reader
            .active_manifest()?
            .signature_info()?
            .cert_chain()
            .to_string();
        crate::profile::anchor_for(&chain, pem)
    });
    Some(TrustRule {
        rule: rule.into(),
        anchor,
    })
}

/// Records a failure found by hallmark's own checks: the manifest is Invalid, in the summary
/// and in c2pa's report (what `--c2pa-report` prints) alike.
fn fail(v: &mut Verification, e: StatusEntry) {
    v.validation_state = ValidationState::Invalid;
    for r in [&mut v.report, &mut v.detailed_report] {
        if let Some(report) = r.as_object_mut() {
            report.insert("validation_state".into(), json!("Invalid"));
            match report
                .get_mut("validation_status")
                .and_then(Value::as_array_mut)
            {
                Some(list) => list.push(json!(e)),
                None => {
                    report.insert("validation_status".into(), json!([e]));
                }
            }
        }
        if let Some(list) = r
            .pointer_mut("/validation_results/activeManifest/failure")
            .and_then(Value::as_array_mut)
        {
            list.push(json!(e));
        }
    }
    v.failure.push(e);
}

/// A manifest has exactly one inception action, `c2pa.created` or `c2pa.opened` (C2PA 2.x,
/// actions validation). c2pa 0.90 only checks that the first action is one; c2pa-rs 0.91
/// (c2pa-python 0.38) also rejects a second one with `assertion.action.malformed`.
fn check_inception(v: &mut Verification) {
    let Some(active) = v.active_manifest.clone() else {
        return;
    };
    let count = v
        .report
        .get("manifests")
        .and_then(|m| m.get(&active))
        .and_then(|m| m.get("assertions"))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|a| {
            a.get("label")
                .and_then(Value::as_str)
                .is_some_and(|l| l.starts_with("c2pa.actions"))
        })
        .flat_map(|a| {
            a.pointer("/data/actions")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default()
        })
        .filter(|a| {
            matches!(
                a.get("action").and_then(Value::as_str),
                Some("c2pa.created" | "c2pa.opened")
            )
        })
        .count();
    if count > 1 {
        fail(
            v,
            StatusEntry {
                code: "assertion.action.malformed".into(),
                url: Some(active),
                explanation: Some(format!(
                    "cannot have more than one c2pa.created or c2pa.opened action (this manifest has {count})"
                )),
            },
        );
    }
}

/// Applies the data-hash exclusion rule c2pa 0.90 lacks (see `exclusions`): a hole makes the
/// manifest Invalid, in the summary and in c2pa's own report alike.
fn check_exclusions(v: &mut Verification, mime: &str, asset: &[u8]) {
    let Some(active) = v.active_manifest.clone() else {
        return;
    };
    match crate::exclusions::check(mime, asset, &v.detailed_report, &active) {
        crate::exclusions::Outcome::Fine => {}
        crate::exclusions::Outcome::Unchecked(e) => {
            if let Some(list) = v
                .report
                .pointer_mut("/validation_results/activeManifest/informational")
                .and_then(Value::as_array_mut)
            {
                list.push(json!(e));
            }
            v.informational.push(e);
        }
        crate::exclusions::Outcome::Hole(e) => fail(v, e),
    }
}

/// Errors that say the asset itself is broken (not the manifest): these are the caller's
/// input errors, not a tampered manifest.
fn is_asset_error(e: &c2pa::Error) -> bool {
    matches!(
        e,
        c2pa::Error::IoError(_)
            | c2pa::Error::UnsupportedType
            | c2pa::Error::InvalidAsset(_)
            | c2pa::Error::PngError(_)
            | c2pa::Error::JpegError(_)
            | c2pa::Error::TiffError(_)
            | c2pa::Error::GifError(_)
            | c2pa::Error::RiffError(_)
            | c2pa::Error::BmffError(_)
            | c2pa::Error::InsufficientMemory
    )
}

/// A verification with the given state and codes and nothing read from a manifest yet.
fn bare(
    state: ValidationState,
    success: Vec<StatusEntry>,
    informational: Vec<StatusEntry>,
    failure: Vec<StatusEntry>,
    embedded: bool,
) -> Verification {
    Verification {
        validation_state: state,
        success,
        informational,
        failure,
        active_manifest: None,
        embedded,
        signer: SignerSummary::default(),
        claim_generator: vec![],
        digital_source_type: None,
        ai: AiStatus::NotDeclared,
        software_agent: None,
        soft_bindings: vec![],
        watermarked_action: false,
        ingredients: vec![],
        trusted_by: None,
        report: Value::Null,
        detailed_report: Value::Null,
    }
}

fn unreadable(e: &c2pa::Error, embedded: bool) -> Verification {
    let failure = vec![StatusEntry {
        code: "manifest.unreadable".into(),
        url: None,
        explanation: Some(format!("the manifest store cannot be read: {e}")),
    }];
    bare(ValidationState::Invalid, vec![], vec![], failure, embedded)
}

/// `name version` (or `name`) of a claim generator or software agent object.
fn name_version(o: &Value) -> String {
    let n = o.get("name").and_then(Value::as_str).unwrap_or("?");
    match o.get("version").and_then(Value::as_str) {
        Some(ver) => format!("{n} {ver}"),
        None => n.to_string(),
    }
}

fn entries(v: Option<&Value>) -> Vec<StatusEntry> {
    v.and_then(|v| serde_json::from_value(v.clone()).ok())
        .unwrap_or_default()
}

fn classify(dst: &str) -> AiStatus {
    let t = dst.rsplit('/').next().unwrap_or(dst);
    match t {
        "trainedAlgorithmicMedia" | "algorithmicMedia" => AiStatus::Generated,
        "compositeWithTrainedAlgorithmicMedia"
        | "compositeSynthetic"
        | "algorithmicallyEnhanced" => AiStatus::Edited,
        _ => AiStatus::NotDeclared,
    }
}

fn summarise(reader: &c2pa::Reader, embedded: bool) -> Verification {
    let report: Value = serde_json::from_str(&reader.json()).unwrap_or(Value::Null);
    let state = match reader.validation_state() {
        c2pa::ValidationState::Trusted => ValidationState::Trusted,
        c2pa::ValidationState::Valid => ValidationState::Valid,
        _ => ValidationState::Invalid,
    };
    let vr = report.pointer("/validation_results/activeManifest");
    let mut failure = entries(vr.and_then(|v| v.get("failure")));
    let success = entries(vr.and_then(|v| v.get("success")));
    let informational = entries(vr.and_then(|v| v.get("informational")));
    // Failures in ingredients are reported by c2pa as deltas: surface them too.
    if let Some(deltas) = report
        .pointer("/validation_results/ingredientDeltas")
        .and_then(Value::as_array)
    {
        for d in deltas {
            failure.extend(entries(d.pointer("/validationDeltas/failure")));
        }
    }
    let active = reader.active_label().map(str::to_string);
    let manifest = active
        .as_deref()
        .and_then(|l| report.get("manifests").and_then(|m| m.get(l)));
    let mut v = bare(state, success, informational, failure, embedded);
    v.active_manifest = active.clone();
    if let Some(m) = manifest {
        let s = |p: &str| m.pointer(p).and_then(Value::as_str).map(str::to_string);
        v.signer = SignerSummary {
            issuer: s("/signature_info/issuer"),
            common_name: s("/signature_info/common_name"),
            cert_serial_number: s("/signature_info/cert_serial_number"),
            alg: s("/signature_info/alg"),
            time: s("/signature_info/time"),
        };
        if let Some(list) = m.get("claim_generator_info").and_then(Value::as_array) {
            v.claim_generator = list.iter().map(name_version).collect();
        } else if let Some(g) = m.get("claim_generator").and_then(Value::as_str) {
            v.claim_generator = vec![g.to_string()];
        }
        for a in m
            .get("assertions")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let label = a.get("label").and_then(Value::as_str).unwrap_or_default();
            if label.starts_with("c2pa.actions") {
                for act in a
                    .pointer("/data/actions")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    let name = act
                        .get("action")
                        .and_then(Value::as_str)
                        .unwrap_or_default();
                    if name == "c2pa.watermarked" {
                        v.watermarked_action = true;
                    }
                    if let Some(dst) = act.get("digitalSourceType").and_then(Value::as_str) {
                        let class = classify(dst);
                        if v.digital_source_type.is_none() || class == AiStatus::Generated {
                            if v.ai != AiStatus::Generated {
                                v.digital_source_type = Some(dst.to_string());
                                v.ai = class;
                            }
                            if let Some(agent) = act.get("softwareAgent") {
                                v.software_agent = Some(match agent {
                                    Value::String(s) => s.clone(),
                                    _ => name_version(agent),
                                });
                            }
                        }
                    }
                }
            } else if label.starts_with("c2pa.soft-binding") {
                let alg = a
                    .pointer("/data/alg")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                for b in a
                    .pointer("/data/blocks")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    use base64::Engine as _;
                    if let Some(val) = b.get("value").and_then(Value::as_str)
                        && let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(val)
                    {
                        v.soft_bindings.push(SoftBinding {
                            alg: alg.to_string(),
                            value: bytes,
                        });
                    }
                }
            }
        }
        v.ingredients = m
            .get("ingredients")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .map(|i| IngredientSummary {
                title: i.get("title").and_then(Value::as_str).map(str::to_string),
                relationship: i
                    .get("relationship")
                    .and_then(Value::as_str)
                    .map(str::to_string),
                active_manifest: i
                    .get("active_manifest")
                    .and_then(Value::as_str)
                    .map(str::to_string),
            })
            .collect();
    }
    v.report = report;
    v
}
