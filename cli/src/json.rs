//! The one JSON contract of every command (`--json`): one object per input, each with a
//! versioned `schema` and the `file` it is about, and either the command's result or an
//! `error` object `{code, message}`. The objects are typed structs; `hallmark schema` prints
//! the JSON Schema generated from them, and `docs/json-schema.json` is checked against it.
//!
//! Byte values are hex (payloads, soft-binding values, hashes); key IDs are hex.
//!
//! `--json-version 1` (or `HALLMARK_JSON_VERSION=1`) restores the shapes of hallmark 0.1
//! for scripts not yet migrated: `error` as a plain string, soft-binding values as byte
//! arrays, and `hallmark.report/1` as the verify schema. See docs/json.md.

use std::{
    collections::BTreeMap,
    sync::atomic::{AtomicU8, Ordering},
};

use hallmark::ErrorCode;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// `hallmark keygen`.
pub const KEYGEN: &str = "hallmark.keygen/1";
/// `hallmark cert check`.
pub const CERT_CHECK: &str = "hallmark.cert-check/1";
/// `hallmark stamp`, one object per image.
pub const STAMP: &str = "hallmark.stamp/1";
/// `hallmark verify`, one object per image.
pub const REPORT: &str = hallmark::REPORT_SCHEMA;
/// `hallmark sign`.
pub const SIGN: &str = "hallmark.sign/1";
/// `hallmark strip`.
pub const STRIP: &str = "hallmark.strip/1";
/// `hallmark image embed`.
pub const EMBED: &str = "hallmark.embed/1";
/// `hallmark image detect`, one object per image.
pub const DETECT: &str = "hallmark.detect/1";
/// `hallmark label`, one object per file handled.
pub const LABEL: &str = "hallmark.label/1";
/// `hallmark label --dry-run`, one object per file.
pub const LABEL_PLAN: &str = "hallmark.label-plan/1";
/// `hallmark label`, the closing summary.
pub const LABEL_SUMMARY: &str = "hallmark.label-summary/1";
/// `hallmark text generate`.
pub const TEXT_GENERATE: &str = "hallmark.text-generate/1";
/// `hallmark text detect`, one object per text (per line with `--jsonl`).
pub const TEXT_DETECT: &str = "hallmark.text-detect/1";
/// `hallmark ledger verify`.
pub const LEDGER_VERIFY: &str = "hallmark.ledger-verify/1";
/// `hallmark ledger head --json`.
pub const LEDGER_HEAD: &str = "hallmark.ledger-head/1";
/// `hallmark ledger push --json`.
pub const LEDGER_PUSH: &str = "hallmark.ledger-push/1";

/// The JSON shapes written (see the module docs).
static VERSION: AtomicU8 = AtomicU8::new(2);

/// Selects the JSON shapes (1: hallmark 0.1's, 2: today's).
pub fn set_version(v: u8) {
    VERSION.store(v, Ordering::Relaxed);
}

/// An error as JSON: a stable code for scripts and the message for people.
#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct ErrorInfo {
    /// What kind of failure (stable; see [`ErrorCode`]).
    pub code: ErrorCode,
    /// The message, as the human output prints it.
    pub message: String,
}

impl ErrorInfo {
    /// The code and message of an error (see [`hallmark_files::error_code`]).
    pub fn of(e: &anyhow::Error) -> Self {
        ErrorInfo {
            code: hallmark_files::error_code(e),
            message: format!("{e:#}"),
        }
    }
}

pub use hallmark_files::coded;

/// One output object: `schema`, `file`, then the body's fields.
#[derive(Debug, Serialize, JsonSchema)]
#[schemars(rename = "Item_for_{T}")]
pub struct Item<T> {
    /// What the object is, versioned (`hallmark.stamp/1`): a breaking change bumps the number.
    pub schema: &'static str,
    /// The input the object is about, as given (`-` for standard input).
    pub file: String,
    /// The result.
    #[serde(flatten)]
    pub body: T,
}

/// The body of an object for an input that failed.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Failed {
    /// What went wrong.
    pub error: ErrorInfo,
    /// `text detect --jsonl`: the 1-based line number of the text.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<usize>,
    /// `text detect --jsonl`: the line's `id`, when it could be read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<Value>,
}

impl Failed {
    /// The body for an error.
    pub fn new(e: &anyhow::Error) -> Self {
        Failed {
            error: ErrorInfo::of(e),
            line: None,
            id: None,
        }
    }
}

/// Either shape one schema's objects take.
#[derive(Serialize, JsonSchema)]
#[serde(untagged)]
#[allow(dead_code)] // only its schema is used
enum Outcome<T> {
    Ok(T),
    Err(Item<Failed>),
}

/// Prints one object (a line of JSON) in the selected shapes.
pub fn emit<T: Serialize>(
    schema: &'static str,
    file: impl Into<String>,
    body: &T,
) -> Result<(), anyhow::Error> {
    emit_value(&Item {
        schema,
        file: file.into(),
        body,
    })
}

/// One output object as a JSON value (to print later with [`emit_value`]); `Null` if the
/// body cannot be serialised, which the typed bodies here always can.
pub fn item_value<T: Serialize>(schema: &'static str, file: &str, body: &T) -> Value {
    serde_json::to_value(Item {
        schema,
        file: file.to_string(),
        body,
    })
    .unwrap_or(Value::Null)
}

/// Prints the error object for one input.
pub fn emit_error(
    schema: &'static str,
    file: impl Into<String>,
    e: &anyhow::Error,
) -> Result<(), anyhow::Error> {
    emit(schema, file, &Failed::new(e))
}

/// Prints any serialisable value as one line, in the selected shapes.
pub fn emit_value<T: Serialize>(v: &T) -> Result<(), anyhow::Error> {
    let mut v = serde_json::to_value(v)?;
    if VERSION.load(Ordering::Relaxed) == 1 {
        to_v1(&mut v);
    }
    crate::out::raw_line(&v.to_string())?;
    Ok(())
}

/// hallmark 0.1's shapes: `error` a string, soft-binding values byte arrays, report/1.
fn to_v1(v: &mut Value) {
    let Some(o) = v.as_object_mut() else { return };
    if let Some(msg) = o
        .get("error")
        .and_then(|e| e.get("message"))
        .and_then(Value::as_str)
        .map(str::to_string)
    {
        o.insert("error".into(), Value::String(msg));
    }
    if o.get("schema").and_then(Value::as_str) == Some(REPORT) {
        o.insert("schema".into(), Value::from("hallmark.report/1"));
    }
    if let Some(sb) = o
        .get_mut("c2pa")
        .and_then(|c| c.get_mut("soft_bindings"))
        .and_then(Value::as_array_mut)
    {
        for b in sb {
            if let Some(bytes) = b
                .get("value")
                .and_then(Value::as_str)
                .and_then(|h| hex::decode(h).ok())
            {
                b["value"] = Value::from(bytes);
            }
        }
    }
}

/// `hallmark stamp`: the library's result with the paths.
#[derive(Serialize, JsonSchema)]
pub struct StampOut<'a> {
    /// The input path (also in `file`; kept for scripts written against 0.1).
    pub input: String,
    /// Where the stamped image went (`-`: standard output).
    pub output: String,
    /// What was stamped.
    #[serde(flatten)]
    pub stamped: &'a hallmark::Stamped,
}

/// `hallmark verify`: the report with its path (the report carries its own `schema`).
#[derive(Serialize, JsonSchema)]
pub struct VerifyOut<'a> {
    /// The input the report is about.
    pub file: String,
    /// The report.
    #[serde(flatten)]
    pub report: &'a hallmark::Report,
}

/// `hallmark sign`.
#[derive(Serialize, JsonSchema)]
pub struct SignOut {
    /// The input path.
    pub input: String,
    /// The signed asset, when one was written.
    pub output: Option<String>,
    /// The sidecar manifest, when one was written.
    pub sidecar: Option<String>,
    /// Label of the new manifest.
    pub manifest_id: String,
    /// What of the manifest definition was not used (also printed on stderr).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

/// `hallmark strip`.
#[derive(Serialize, JsonSchema)]
pub struct StripOut {
    /// The input path.
    pub input: String,
    /// The output path.
    pub output: String,
    /// The output's format.
    pub format: hallmark::io::Format,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// SHA-256 of the output, hex.
    pub output_sha256: String,
}

/// `hallmark image embed`.
#[derive(Serialize, JsonSchema)]
pub struct EmbedOut<'a> {
    /// The input path.
    pub input: String,
    /// The output path.
    pub output: String,
    /// What was embedded.
    #[serde(flatten)]
    pub report: &'a hallmark::image_mark::EmbedReport,
    /// Whether the detector reads the payload back from the output (null: not checked).
    pub readable: Option<bool>,
    /// Whether the mark was re-embedded stronger to read back or survive WebP.
    pub reinforced: bool,
    /// Whether the mark survives a WebP q50 round trip (null: not checked).
    pub survives_webp: Option<bool>,
    /// The watermark ID the input's manifest bound, when it had one: the new mark replaces
    /// or damages it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous_watermark: Option<hallmark::Payload>,
}

/// `hallmark image detect`.
#[derive(Serialize, JsonSchema)]
pub struct DetectOut<'a> {
    /// The detection.
    #[serde(flatten)]
    pub detection: &'a hallmark::image_mark::Detection,
    /// What is damaged in the image data, when something is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub damage: Option<String>,
    /// How many keys were looked for; the p-value is multiplied by their number.
    pub keys: usize,
}

/// `hallmark keygen` (also the content of `keys.json`).
pub type KeygenOut = hallmark_files::keys::KeyFolder;

/// `hallmark label --dry-run`: what the real run would do with one file.
#[derive(Serialize, JsonSchema)]
pub struct LabelPlanOut {
    /// Where the output would go.
    pub output: String,
    /// `stamp`, `skip`, `already_done` or `fail`.
    pub action: &'static str,
    /// Why it would be skipped or fail.
    pub reason: Option<String>,
}

/// `hallmark label`: what happened to one file (also its journal and report line).
#[derive(Clone, Serialize, serde::Deserialize, JsonSchema)]
pub struct LabelEntry {
    /// The path relative to the labelled folder (lossy for non-UTF-8 names).
    pub rel: String,
    /// The relative path's raw bytes, hex (exact for any name).
    pub rel_bytes: String,
    /// The input path.
    pub input: String,
    /// `stamped`, `skipped` or `failed`.
    pub status: String,
    /// Where the stamped image went.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<String>,
    /// The watermark ID.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload: Option<hallmark::Payload>,
    /// Label of the manifest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manifest_id: Option<String>,
    /// SHA-256 of the input, hex.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_sha256: Option<String>,
    /// SHA-256 of the output, hex.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_sha256: Option<String>,
    /// PSNR of the watermark, dB.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub psnr: Option<f64>,
    /// Whether the mark reads back from the output.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub watermark_readable: Option<bool>,
    /// Why the file was skipped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Why it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<ErrorInfo>")]
    pub error: Option<Value>,
}

/// `hallmark label`: the closing summary (its `file` is the labelled folder).
#[derive(Serialize, JsonSchema)]
pub struct LabelSummaryOut {
    /// Always true (tells the summary from the per-file objects in a stream).
    pub summary: bool,
    /// Files stamped in this run.
    pub stamped: usize,
    /// Files skipped (not images).
    pub skipped: usize,
    /// Files that failed.
    pub failed: usize,
    /// Files done by an earlier run.
    pub already_done: usize,
    /// Stamped files whose mark does not read back.
    pub watermark_unreadable: usize,
    /// Wall-clock seconds.
    pub seconds: f64,
    /// Stamped images per second.
    pub images_per_second: f64,
    /// Parallel jobs.
    pub jobs: usize,
    /// The report file.
    pub report: String,
    /// The journal file.
    pub journal: String,
}

/// `hallmark text generate`.
#[derive(Serialize, JsonSchema)]
pub struct TextGenerateOut {
    /// The generated text.
    pub text: String,
    /// Whether it carries the watermark.
    pub watermarked: bool,
    /// The scheme header, when watermarked.
    pub scheme: Option<String>,
    /// The watermark key's ID, when watermarked.
    pub key_id: Option<String>,
    /// The model file.
    pub model: String,
    /// The sampling seed.
    pub seed: u64,
    /// The sampling temperature.
    pub temperature: f64,
    /// Tokens in the prompt.
    pub prompt_tokens: usize,
    /// Tokens generated.
    pub tokens: usize,
    /// Perplexity of the generated tokens under the model.
    pub perplexity: f64,
    /// Seconds to load the model.
    pub load_seconds: f64,
    /// Seconds to generate.
    pub seconds: f64,
    /// Generated tokens per second.
    pub tokens_per_second: f64,
    /// Model time per token, ms.
    pub model_ms_per_token: f64,
    /// Watermark sampler time per token, ms.
    pub sampler_ms_per_token: f64,
    /// Where the text was written, when not to stdout.
    pub output: Option<String>,
}

/// `hallmark text detect`: one text's result.
#[derive(Serialize, JsonSchema)]
pub struct TextDetectOut {
    /// The p-value is below `--threshold`.
    pub detected: bool,
    /// The key that scored best (its public ID): with several keys, the one that matched.
    pub key_id: String,
    /// How many keys were checked; the p-values are corrected for them.
    pub keys: usize,
    /// The case reading that scored best (`as_is`, `sentence_starts`, `sentence_case`).
    pub case: hallmark_lm::CaseReading,
    /// How many distinct case readings the text has, all scored; the p-values are corrected
    /// for them.
    pub case_readings: usize,
    /// The test's p-value (exact).
    pub p_value: f64,
    /// The whole-text p-value.
    pub p_value_whole: f64,
    /// z-score (KGW and hybrid schemes).
    pub z_score: Option<f64>,
    /// Tokens in the text.
    pub tokens: usize,
    /// Unique (context, token) pairs scored.
    pub tokens_scored: usize,
    /// Green count or summed score.
    pub score: f64,
    /// Watermarked spans, as character ranges.
    pub spans: Vec<hallmark_lm::CharSpan>,
    /// The scheme header used.
    pub scheme: String,
    /// With `--jsonl`: the line's `id`, as given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<Value>,
    /// With `--jsonl`: the 1-based line number.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<usize>,
}

/// `hallmark ledger verify`.
#[derive(Serialize, JsonSchema)]
pub struct LedgerVerifyOut {
    /// The chain, signatures (and checkpoint, when given) check out.
    pub valid: bool,
    /// Records in the ledger, when valid.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub records: Option<usize>,
    /// Whether the signer's key was given (else the first record's key is assumed).
    pub signer_pinned: bool,
    /// Whether a checkpoint was checked.
    pub checkpoint_checked: bool,
    /// 1-based line of the first bad record, when broken.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_broken_line: Option<usize>,
    /// What is wrong, when broken.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// `hallmark ledger head --json`.
#[derive(Serialize, JsonSchema)]
pub struct LedgerHeadOut<'a> {
    /// The checkpoint (what `ledger head` prints without `--json`).
    pub checkpoint: &'a hallmark::ledger::Checkpoint,
}

/// `hallmark ledger push --json`: what the registry stored.
#[derive(Serialize, Deserialize, JsonSchema)]
pub struct LedgerPushOut {
    /// The registry's URL.
    #[serde(default)]
    pub registry: String,
    /// Records in the ledger (all verified before sending).
    pub records: u64,
    /// Records the registry did not have.
    pub created: u64,
    /// Records it already had.
    pub existing: u64,
    /// Records whose manifest ID the registry holds under another record (not stored).
    pub conflicts: u64,
}

/// The JSON Schema of every object the CLI prints, by schema name.
pub fn schemas() -> BTreeMap<&'static str, schemars::Schema> {
    fn of<T: JsonSchema>() -> schemars::Schema {
        schemars::SchemaGenerator::default().into_root_schema_for::<Outcome<T>>()
    }
    let mut m = BTreeMap::new();
    m.insert(KEYGEN, of::<Item<KeygenOut>>());
    m.insert(CERT_CHECK, of::<Item<hallmark::c2pa::ChainReport>>());
    m.insert(STAMP, of::<Item<StampOut<'static>>>());
    m.insert(REPORT, of::<VerifyOut<'static>>());
    m.insert(SIGN, of::<Item<SignOut>>());
    m.insert(STRIP, of::<Item<StripOut>>());
    m.insert(EMBED, of::<Item<EmbedOut<'static>>>());
    m.insert(DETECT, of::<Item<DetectOut<'static>>>());
    m.insert(LABEL, of::<Item<LabelEntry>>());
    m.insert(LABEL_PLAN, of::<Item<LabelPlanOut>>());
    m.insert(LABEL_SUMMARY, of::<Item<LabelSummaryOut>>());
    m.insert(TEXT_GENERATE, of::<Item<TextGenerateOut>>());
    m.insert(TEXT_DETECT, of::<Item<TextDetectOut>>());
    m.insert(LEDGER_VERIFY, of::<Item<LedgerVerifyOut>>());
    m.insert(LEDGER_HEAD, of::<Item<LedgerHeadOut<'static>>>());
    m.insert(LEDGER_PUSH, of::<Item<LedgerPushOut>>());
    for (name, s) in &mut m {
        s.insert("title".into(), Value::from(*name));
        // Every object's `schema` field holds exactly this name.
        if let Some(defs) = s.get_mut("$defs").and_then(Value::as_object_mut) {
            let outer = defs
                .iter_mut()
                .filter(|(k, _)| k.starts_with("Item_for_") || *k == "VerifyOut");
            for (_, def) in outer {
                if let Some(field) = def.pointer_mut("/properties/schema") {
                    field["const"] = Value::from(*name);
                }
            }
        }
        if let Some(field) = s.get_mut("properties").and_then(|p| p.get_mut("schema")) {
            field["const"] = Value::from(*name);
        }
    }
    m
}

/// The document `hallmark schema` prints and `docs/json-schema.json` holds.
pub fn schema_document() -> Value {
    let mut doc = serde_json::Map::new();
    doc.insert(
        "description".into(),
        Value::from(
            "JSON Schemas of every object hallmark's commands print with --json, by the value of their `schema` field. Generated by `hallmark schema`.",
        ),
    );
    doc.insert(
        "schemas".into(),
        Value::Object(
            schemas()
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_value()))
                .collect(),
        ),
    );
    Value::Object(doc)
}

#[cfg(test)]
mod tests;
