//! One verdict per file: C2PA validation, watermark detection, and whether the two agree.

use hallmark_c2pa::{AiStatus, TrustSettings, ValidationState, Verification};
use hallmark_core::{Payload, WatermarkKey};
use hallmark_image::{Detection, Detector, SOFT_BINDING_ALG};

use crate::{
    Error,
    io::{self, Format, Limits},
};

/// The report schema name written in every JSON report.
pub const REPORT_SCHEMA: &str = "hallmark.report/2";

/// What to check a file against.
pub struct Verifier {
    detectors: Vec<Detector>,
    /// Trust anchors for C2PA signers.
    pub trust: TrustSettings,
    /// Decoding limits.
    pub limits: Limits,
    /// A verified accountability ledger to resolve watermark IDs against.
    pub ledger: Option<Vec<crate::ledger::Record>>,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier")
            .field("watermark_keys", &self.detectors.len())
            .finish_non_exhaustive()
    }
}

impl Verifier {
    /// Looks for the watermark of each key in an encoded image: the detection for the key
    /// that found it (or the first key's), `None` without keys.
    ///
    /// # Errors
    /// [`Error::Decode`] when the bytes are not an image hallmark reads.
    pub fn detect(&self, bytes: &[u8]) -> Result<Option<Detection>, Error> {
        if self.detectors.is_empty() {
            return Ok(None);
        }
        let (decoded, _) = io::decode_lenient(bytes, &self.limits)?;
        Ok(detect_any(&self.detectors, &decoded.image))
    }

    /// A verifier that looks for the watermarks of `keys` (may be empty: manifest only).
    pub fn new(keys: &[WatermarkKey], trust: TrustSettings) -> Self {
        Verifier {
            detectors: keys.iter().map(Detector::new).collect(),
            trust,
            limits: Limits::default(),
            ledger: None,
        }
    }
}

/// The overall verdict.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// A valid manifest and/or a watermark say the content is AI-generated.
    AiGenerated,
    /// A valid manifest says the content was edited with AI.
    AiEdited,
    /// A valid manifest that declares no AI involvement.
    SignedNoAiClaim,
    /// A manifest is present but fails validation, or manifest and watermark disagree.
    Tampered,
    /// Neither a manifest nor a watermark was found.
    NoEvidence,
}

/// The class of a [`Report`]'s result, for a caller that acts on it (the CLI turns it into
/// its exit status).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Evidence found and valid: a manifest, a watermark, or both agreeing.
    Found,
    /// Nothing found in a file that decoded cleanly.
    NothingFound,
    /// Nothing found, but the image data is damaged: the answer may be wrong.
    Damaged,
    /// A manifest that fails validation, or a manifest and a watermark that disagree.
    Tampered,
}

/// Whether the watermark agrees with the manifest's soft binding.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Consistency {
    /// The detected payload equals the manifest's soft-binding value.
    Match,
    /// They differ: one of the two was copied from another image.
    Mismatch,
    /// The manifest binds a watermark that was not found with the given keys.
    WatermarkMissing,
    /// Nothing to compare.
    NotApplicable,
}

/// The report for one file (`hallmark.report/1`).
#[derive(Clone, Debug, serde::Serialize, schemars::JsonSchema)]
pub struct Report {
    /// Always [`REPORT_SCHEMA`].
    pub schema: &'static str,
    /// The verdict.
    pub verdict: Verdict,
    /// One line for a person.
    pub summary: String,
    /// The reasons behind the verdict, in plain words.
    pub reasons: Vec<String>,
    /// The image format, when recognised.
    pub format: Option<Format>,
    /// The C2PA verification, when a manifest was found.
    pub c2pa: Option<Verification>,
    /// The watermark detection for the key that found it (or the first key), when searched.
    pub watermark: Option<Detection>,
    /// Manifest versus watermark.
    pub consistency: Consistency,
    /// Ledger records for the detected watermark ID (who stamped it, when, with what).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ledger: Vec<crate::ledger::Record>,
    /// The address of a remote manifest the file points to (XMP `dcterms:provenance`),
    /// which is never fetched.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remote_manifest: Option<String>,
    /// The manifest recovered from a soft-binding registry for a file whose own manifest
    /// is missing (see [`recover`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub registry: Option<Recovery>,
    /// What is damaged in the image data (truncated scan, empty strip, cut-off animation),
    /// when something is: the watermark was looked for in what could be decoded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub damage: Option<String>,
}

impl Report {
    /// What the report amounts to: a damaged image in which nothing was found is
    /// [`Outcome::Damaged`], not a clean [`Outcome::NothingFound`].
    pub fn outcome(&self) -> Outcome {
        match self.verdict {
            Verdict::AiGenerated | Verdict::AiEdited | Verdict::SignedNoAiClaim => Outcome::Found,
            Verdict::Tampered => Outcome::Tampered,
            Verdict::NoEvidence if self.damage.is_some() => Outcome::Damaged,
            Verdict::NoEvidence => Outcome::NothingFound,
        }
    }
}

/// Looks for the watermark of each detector's key in `image`, in order, until one finds it:
/// that key's detection (its `key_id` names the key), else the first key's. With several
/// keys the p-value is multiplied by their number: any of them could have matched by chance
/// (family-wise, Bonferroni). `None` without detectors.
pub fn detect_any(detectors: &[Detector], image: &image::DynamicImage) -> Option<Detection> {
    let mut best: Option<Detection> = None;
    for d in detectors {
        let det = d.detect(image);
        let found = det.detected;
        if best.is_none() || found {
            best = Some(det);
        }
        if found {
            break;
        }
    }
    let n = detectors.len() as f64;
    best.map(|mut b| {
        b.p_value = (b.p_value * n).min(1.0);
        b
    })
}

/// Verifies one file's bytes (and a sidecar manifest's bytes, if one sits beside it).
///
/// # Errors
/// [`Error::Decode`] when the file is not an image hallmark reads and has no manifest either.
pub fn verify(bytes: &[u8], sidecar: Option<&[u8]>, v: &Verifier) -> Result<Report, Error> {
    let format = Format::sniff(bytes);
    let Some(fmt) = format else {
        return Err(Error::Decode(if bytes.is_empty() {
            "the file is empty".into()
        } else {
            "not a supported image (hallmark reads JPEG, PNG, WebP, TIFF and GIF)".into()
        }));
    };
    let mut remote_manifest = None;
    let c2pa = match hallmark_c2pa::verify(fmt.mime(), bytes, sidecar, &v.trust) {
        Ok(c) => c,
        Err(hallmark_c2pa::Error::RemoteManifest(url)) => {
            remote_manifest = Some(url);
            None
        }
        Err(hallmark_c2pa::Error::C2pa(e)) => {
            // The container itself does not parse for c2pa: decoding will say why.
            io::decode(bytes, &v.limits)?;
            return Err(Error::Decode(format!("c2pa cannot read the file: {e}")));
        }
        Err(e) => return Err(e.into()),
    };
    let mut watermark = None;
    let mut damage = None;
    if !v.detectors.is_empty() {
        let (decoded, dmg) = io::decode_lenient(bytes, &v.limits)?;
        damage = dmg;
        watermark = detect_any(&v.detectors, &decoded.image);
    } else if c2pa.is_none() {
        // Still refuse files that are not decodable images, so bad input is an error.
        damage = io::decode_lenient(bytes, &v.limits)?.1;
    }
    let anchors_given = v.trust.anchors_pem.is_some()
        || v.trust.trust_list_pem.is_some()
        || v.trust.allowed_list.is_some();
    let mut report = judge(format, c2pa, watermark, anchors_given);
    if let Some(why) = damage {
        report.reasons.push(format!(
            "the image is damaged: {why}; the watermark was looked for in what could be decoded"
        ));
        report.summary.push_str(" (the image is damaged)");
        report.damage = Some(why);
    }
    if let Some(url) = remote_manifest {
        report.reasons.push(format!(
            "the file holds no manifest, only the address of a remote one ({url}), which was not fetched: hallmark verifies offline (download it and verify it as a sidecar .c2pa file)"
        ));
        report.remote_manifest = Some(url);
    }
    if let (Some(records), Some(id)) =
        (&v.ledger, report.watermark.as_ref().and_then(|w| w.payload))
    {
        let hits = crate::ledger::lookup(records, id);
        for r in &hits {
            report.reasons.push(format!(
                "ledger: stamped {} by {} with model {} (manifest {}, record {})",
                r.entry.time,
                r.entry.signer,
                r.entry.model.as_deref().unwrap_or("unrecorded"),
                r.entry.manifest_id,
                r.seq
            ));
        }
        if hits.is_empty() {
            report
                .reasons
                .push(format!("ledger: watermark ID {id} is not in the ledger"));
        }
        report.ledger = hits.into_iter().cloned().collect();
    }
    Ok(report)
}

/// The hallmark watermark ID that the manifest of `bytes` binds (its `c2pa.soft-binding`),
/// if the file carries a readable manifest with one: what an image already stamped says it
/// carries, whatever key marked it. Validity and trust are not judged here.
pub fn bound_watermark(bytes: &[u8]) -> Option<Payload> {
    let fmt = Format::sniff(bytes)?;
    let v = hallmark_c2pa::verify(fmt.mime(), bytes, None, &TrustSettings::default())
        .ok()
        .flatten()?;
    bound_payload(&v)
}

fn bound_payload(c: &Verification) -> Option<Payload> {
    c.soft_bindings
        .iter()
        .find(|b| b.alg == SOFT_BINDING_ALG && b.value.len() == 8)
        .map(|b| {
            let mut a = [0u8; 8];
            a.copy_from_slice(&b.value);
            Payload(u64::from_be_bytes(a))
        })
}

fn judge(
    format: Option<Format>,
    c2pa: Option<Verification>,
    wm: Option<Detection>,
    anchors_given: bool,
) -> Report {
    let mut reasons = vec![];
    let found = wm.as_ref().filter(|d| d.detected);
    let consistency = match (&c2pa, found) {
        (Some(c), Some(d)) if c.validation_state != ValidationState::Invalid => {
            match bound_payload(c) {
                Some(p) if Some(p) == d.payload => Consistency::Match,
                Some(_) => Consistency::Mismatch,
                None => Consistency::NotApplicable,
            }
        }
        (Some(c), None) if wm.is_some() && bound_payload(c).is_some() => {
            Consistency::WatermarkMissing
        }
        _ => Consistency::NotApplicable,
    };
    if let Some(d) = found {
        reasons.push(format!(
            "watermark found: ID {} (key {}, p-value {:.1e}, {} bit errors corrected)",
            d.payload.map(|p| p.to_string()).unwrap_or_default(),
            d.key_id,
            d.p_value,
            d.bit_errors.unwrap_or(0)
        ));
        // A composite: only part of the picture carries the mark.
        if let Some(r) = d.regions.as_ref().filter(|r| r.is_partial()) {
            reasons.push(format!(
                "{} (the rest of the picture does not carry it: a composite or an edit)",
                r.describe()
            ));
        }
    } else if wm.is_some() {
        reasons.push("no watermark found with the given key(s)".into());
    }
    let (verdict, summary) = match &c2pa {
        Some(c) if c.validation_state == ValidationState::Invalid => {
            let codes: Vec<&str> = c.failure.iter().map(|s| s.code.as_str()).collect();
            let why = if c.expired() {
                "the signing certificate has expired (no time stamp proves it was valid when signing)".to_string()
            } else if codes.contains(&"assertion.dataHash.mismatch")
                && c.success
                    .iter()
                    .any(|s| s.code == "assertion.dataHash.match")
            {
                // The hash matches, but what it leaves out is more than the manifest store.
                "the signed hash leaves bytes outside the manifest unprotected, so they may have been changed".to_string()
            } else if codes.iter().any(|c| {
                c.contains("dataHash") || c.contains("boxesHash") || c.contains("hash.mismatch")
            }) {
                "image changed after signing".to_string()
            } else if codes.iter().any(|c| c.starts_with("claimSignature")) {
                "the manifest's signature does not verify".to_string()
            } else if codes.iter().any(|c| c.contains("untrusted")) {
                "the signer is not trusted".to_string()
            } else {
                "the manifest fails validation".to_string()
            };
            reasons.push(format!("C2PA manifest invalid: {}", codes.join(", ")));
            if let Some(d) = found {
                let _ = d;
                reasons.push("the watermark alone still indicates AI generation".into());
            }
            (Verdict::Tampered, format!("tampered: {why}"))
        }
        Some(c) => {
            let signer = c
                .signer
                .issuer
                .clone()
                .or_else(|| c.signer.common_name.clone())
                .unwrap_or_else(|| "unknown".into());
            let trust = if c.validation_state == ValidationState::Trusted {
                let by = match &c.trusted_by {
                    Some(r) => {
                        let rule = match r.rule.as_str() {
                            "allowed_list" => "its certificate is on the allowed list",
                            "trust_list" => "it chains to the trust list",
                            _ => "it chains to a trust anchor given",
                        };
                        match &r.anchor {
                            Some(a) => format!(" ({rule}: {a})"),
                            None => format!(" ({rule})"),
                        }
                    }
                    None => String::new(),
                };
                format!("trusted signer {signer}{by}")
            } else {
                format!(
                    "signer {signer} (valid signature, signer not trusted: {})",
                    if anchors_given {
                        "it does not chain to any of the trust anchors given, nor is it on an allowed list"
                    } else {
                        "no trust anchor given"
                    }
                )
            };
            reasons.push(format!(
                "C2PA manifest {}: {}",
                match c.validation_state {
                    ValidationState::Trusted => "trusted",
                    _ => "valid",
                },
                trust
            ));
            if let Some(a) = &c.software_agent {
                reasons.push(format!("generated by {a}"));
            }
            if let Some(t) = &c.digital_source_type {
                reasons.push(format!("digital source type {t}"));
            }
            let wm_part = match consistency {
                Consistency::Match => "; watermark present and matches the manifest",
                Consistency::WatermarkMissing => {
                    "; the watermark the manifest declares was not found"
                }
                _ => "",
            };
            if consistency == Consistency::Mismatch {
                reasons.push(
                    "the watermark's ID differs from the manifest's soft binding: one of them was copied from another image".into(),
                );
                (
                    Verdict::Tampered,
                    "tampered: watermark and manifest belong to different images".into(),
                )
            } else {
                match c.ai {
                    AiStatus::Generated => (
                        Verdict::AiGenerated,
                        format!("AI-generated: signed manifest, {trust}{wm_part}"),
                    ),
                    AiStatus::Edited => (
                        Verdict::AiEdited,
                        format!("AI-edited: signed manifest, {trust}{wm_part}"),
                    ),
                    AiStatus::NotDeclared if found.is_some() => (
                        Verdict::AiGenerated,
                        format!(
                            "AI-generated: watermark found; signed manifest from {trust} declares no AI use"
                        ),
                    ),
                    AiStatus::NotDeclared => (
                        Verdict::SignedNoAiClaim,
                        format!("signed manifest, {trust}; it declares no AI involvement"),
                    ),
                }
            }
        }
        None => match found {
            Some(_) => {
                reasons.push("no C2PA manifest in the file".into());
                (
                    Verdict::AiGenerated,
                    "AI-generated: watermark found, manifest missing (probably stripped)".into(),
                )
            }
            None => {
                reasons.push("no C2PA manifest in the file".into());
                (
                    Verdict::NoEvidence,
                    "no evidence found (this is not proof of human origin)".into(),
                )
            }
        },
    };
    Report {
        schema: REPORT_SCHEMA,
        verdict,
        summary,
        reasons,
        format,
        c2pa,
        watermark: wm,
        consistency,
        ledger: vec![],
        registry: None,
        remote_manifest: None,
        damage: None,
    }
}

/// What a soft-binding registry holds for a watermark ID: one stamp's manifest and facts.
#[derive(Clone, Debug)]
pub struct Candidate {
    /// The manifest's label.
    pub manifest_id: String,
    /// The manifest store's bytes (`application/c2pa`), when the registry has them (a
    /// record ingested from a ledger has only the facts).
    pub manifest_store: Option<Vec<u8>>,
    /// Who signed (the signing certificate's subject).
    pub signer: String,
    /// The generating model, if recorded.
    pub model: Option<String>,
    /// RFC 3339 time of the stamp.
    pub time: String,
}

/// A manifest recovered from a registry through the watermark (`registry` in the report).
#[derive(Clone, Debug, serde::Serialize, schemars::JsonSchema)]
pub struct Recovery {
    /// The recovered manifest's label (`GET /manifests/{manifestId}` returns its bytes).
    pub manifest_id: String,
    /// Who signed it.
    pub signer: String,
    /// The generating model, if recorded.
    pub model: Option<String>,
    /// When the image was stamped (RFC 3339).
    pub time: String,
    /// The recovered manifest checked against this file, when the registry holds its
    /// bytes. Its hash of the file no longer matches once the metadata is stripped; what
    /// links the two is the watermark its soft binding names.
    pub c2pa: Option<Verification>,
    /// How many registered manifests bind the same watermark ID.
    pub matches: usize,
}

/// Hash-binding failures that stripping or re-encoding a file causes by itself.
fn hash_failure(code: &str) -> bool {
    code.contains("dataHash") || code.contains("boxesHash") || code.contains("hash.mismatch")
}

/// Completes `report` (of the file `bytes`) with what a registry holds for its watermark,
/// when the file carries no manifest of its own but a watermark was found. Each candidate's
/// manifest store, when present, is validated against the file: its signature must verify
/// and its soft binding must name the detected watermark, or it is ignored (with a reason).
/// The first candidate that stands up becomes [`Report::registry`] and the summary says who
/// signed it; the verdict stays [`Verdict::AiGenerated`] (the watermark's).
pub fn recover(report: &mut Report, bytes: &[u8], candidates: &[Candidate], trust: &TrustSettings) {
    if report.c2pa.is_some() {
        return;
    }
    let Some(id) = report
        .watermark
        .as_ref()
        .filter(|w| w.detected)
        .and_then(|w| w.payload)
    else {
        return;
    };
    if candidates.is_empty() {
        report.reasons.push(format!(
            "registry: no manifest is registered for watermark ID {id}"
        ));
        return;
    }
    let mime = report.format.map(Format::mime);
    let mut accepted: Option<Recovery> = None;
    for c in candidates {
        let mut checked = None;
        if let (Some(store), Some(mime)) = (&c.manifest_store, mime) {
            match hallmark_c2pa::verify(mime, bytes, Some(store), trust) {
                Ok(Some(v)) => {
                    let bad: Vec<&str> = v
                        .failure
                        .iter()
                        .map(|s| s.code.as_str())
                        .filter(|c| !hash_failure(c))
                        .collect();
                    if !bad.is_empty() {
                        report.reasons.push(format!(
                            "registry: manifest {} ignored: it does not validate ({})",
                            c.manifest_id,
                            bad.join(", ")
                        ));
                        continue;
                    }
                    if bound_payload(&v) != Some(id) {
                        report.reasons.push(format!(
                            "registry: manifest {} ignored: its soft binding does not name watermark ID {id}",
                            c.manifest_id
                        ));
                        continue;
                    }
                    checked = Some(v);
                }
                Ok(None) | Err(_) => {
                    report.reasons.push(format!(
                        "registry: manifest {} ignored: its bytes are not a readable manifest store",
                        c.manifest_id
                    ));
                    continue;
                }
            }
        }
        if accepted.is_none() {
            accepted = Some(Recovery {
                manifest_id: c.manifest_id.clone(),
                signer: c.signer.clone(),
                model: c.model.clone(),
                time: c.time.clone(),
                c2pa: checked,
                matches: 0,
            });
        }
    }
    let Some(mut r) = accepted else {
        report.reasons.push(format!(
            "registry: no registered manifest for watermark ID {id} stands up"
        ));
        return;
    };
    r.matches = candidates.len();
    let model = r.model.as_deref().unwrap_or("an unrecorded model");
    report.summary = format!(
        "AI-generated: watermark found, manifest recovered from the registry: signed by {} with model {model} at {}",
        r.signer, r.time
    );
    report.reasons.push(match &r.c2pa {
        Some(v) => format!(
            "registry: manifest {} recovered; its signature {}, it binds watermark ID {id}{}",
            r.manifest_id,
            if v.validation_state == ValidationState::Trusted
                || v.success.iter().any(|s| s.code == "signingCredential.trusted")
            {
                "verifies and chains to a trust anchor"
            } else {
                "verifies (signer not checked against a trust anchor)"
            },
            if v.failure.iter().any(|s| hash_failure(&s.code)) {
                "; its hash of the file no longer matches, as expected once metadata is stripped or the file re-encoded"
            } else {
                ""
            }
        ),
        None => format!(
            "registry: manifest {} recorded for watermark ID {id} from a signed ledger (the registry holds no manifest bytes for it)",
            r.manifest_id
        ),
    });
    if r.matches > 1 {
        report.reasons.push(format!(
            "registry: {} manifests bind watermark ID {id}; the first that validates is shown",
            r.matches
        ));
    }
    report.registry = Some(r);
}
