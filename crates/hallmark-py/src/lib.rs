//! `hallmark._native`: the Rust side of hallmark's Python package. Thin: every call goes to
//! the facade (`hallmark`), the file layer (`hallmark-files`) or the text runner
//! (`hallmark-lm`); the Python layer (`python/hallmark`) turns arrays, PIL images and tensors
//! into bytes and results into Python objects.
//!
//! Every call that does real work releases the GIL, catches panics, and raises the
//! `hallmark.errors` exception for its error code (never a crash, never a `PanicException`).
//! Results that are records come back as JSON text, parsed on the Python side into the
//! same dictionaries the CLI's `--json` prints.

use std::{
    panic::AssertUnwindSafe,
    path::{Path, PathBuf},
    sync::Mutex,
};

use anyhow::{Context, Result, anyhow};
use hallmark::{
    Payload, Stamper, WatermarkKey,
    c2pa::{CertOptions, Model},
    image_mark::{Detector, ImageMark},
    io::{Decoded, EncodeOptions, Format, Limits},
    text::{Config, Processor, TextMark},
};
use hallmark_files::{check, keys};
use hallmark_lm::TextTokenizer;
use pyo3::{
    prelude::*,
    types::{PyBytes, PyModule},
};

/// The Python exception for an error: `hallmark.errors.from_code(code, message)`.
fn to_py(py: Python<'_>, e: &anyhow::Error) -> PyErr {
    raise(
        py,
        hallmark_files::error_code(e).as_str(),
        &format!("{e:#}"),
    )
}

fn raise(py: Python<'_>, code: &str, msg: &str) -> PyErr {
    match py
        .import("hallmark.errors")
        .and_then(|m| m.getattr("from_code"))
        .and_then(|f| f.call1((code, msg)))
    {
        Ok(exc) => PyErr::from_value(exc),
        Err(err) => err,
    }
}

/// Runs `f` without the GIL (other Python threads go on: two threads stamping use two
/// cores), turning its error into the matching exception and a panic into
/// `hallmark.errors.Error` with code `internal`.
fn run<T: Send>(py: Python<'_>, f: impl FnOnce() -> Result<T> + Send) -> PyResult<T> {
    match py.detach(|| std::panic::catch_unwind(AssertUnwindSafe(f))) {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(to_py(py, &e)),
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| (*s).to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown".into());
            Err(raise(
                py,
                "internal",
                &format!("internal error (a bug, please report it): {what}"),
            ))
        }
    }
}

fn bad(code: hallmark::ErrorCode, msg: impl Into<String>) -> anyhow::Error {
    hallmark_files::coded(code, msg)
}

fn parse_payload(p: Option<&str>) -> Result<Option<Payload>> {
    p.map(|s| {
        s.parse::<Payload>().map_err(|e| {
            bad(
                hallmark::ErrorCode::InvalidParameter,
                format!("payload {s:?}: {e}"),
            )
        })
    })
    .transpose()
}

fn parse_format(f: Option<&str>) -> Result<Option<Format>> {
    f.map(|s| {
        Format::from_extension(s).ok_or_else(|| {
            bad(
                hallmark::ErrorCode::InvalidParameter,
                format!("unknown format {s:?} (png, jpeg, webp, tiff)"),
            )
        })
    })
    .transpose()
}

/// An RGB image from tightly packed `HxWx3` bytes.
fn rgb(raw: &[u8], width: u32, height: u32) -> Result<image::RgbImage> {
    let want = u64::from(width) * u64::from(height) * 3;
    if width == 0 || height == 0 || raw.len() as u64 != want {
        return Err(bad(
            hallmark::ErrorCode::InvalidInput,
            format!(
                "expected {height}x{width}x3 bytes ({want}), got {} bytes",
                raw.len()
            ),
        ));
    }
    image::RgbImage::from_raw(width, height, raw.to_vec())
        .ok_or_else(|| anyhow!("cannot build a {width}x{height} image"))
}

/// Writes a new keys folder; returns `keys.json` as JSON text.
#[pyfunction]
#[pyo3(signature = (dir, org, name, validity_days, text_scheme, force, alg = None))]
#[allow(clippy::too_many_arguments)] // Python's keyword arguments, one each
fn keygen(
    py: Python<'_>,
    dir: PathBuf,
    org: String,
    name: String,
    validity_days: u32,
    text_scheme: String,
    force: bool,
    alg: Option<String>,
) -> PyResult<String> {
    run(py, || {
        let text = keys::parse_scheme(&text_scheme)?;
        let alg = match alg.as_deref() {
            Some(a) => a.parse()?,
            None => hallmark::c2pa::KeyAlg::default(),
        };
        let folder = keys::generate(
            &dir,
            &CertOptions {
                org,
                name,
                validity_days,
                alg,
            },
            &text,
            force,
        )?;
        Ok(serde_json::to_string(&folder)?)
    })
}

/// A keys folder, loaded.
#[pyclass(frozen, module = "hallmark._native")]
struct NativeKeys {
    dir: PathBuf,
    watermark: WatermarkKey,
    text: Config,
    signer_public_key: String,
}

#[pymethods]
impl NativeKeys {
    #[staticmethod]
    fn load(py: Python<'_>, dir: PathBuf) -> PyResult<Self> {
        run(py, || {
            if !dir.is_dir() {
                return Err(bad(
                    hallmark::ErrorCode::NotFound,
                    format!("{} is not a keys folder", dir.display()),
                ));
            }
            let watermark = keys::load_watermark_key(&dir)?;
            let signer = keys::load_signer(&dir)?;
            let text = keys::text_config(None, Some(&dir))?;
            Ok(NativeKeys {
                signer_public_key: signer.public_key().map(hex::encode).unwrap_or_default(),
                dir,
                watermark,
                text,
            })
        })
    }

    #[getter]
    fn dir(&self) -> PathBuf {
        self.dir.clone()
    }

    #[getter]
    fn watermark_key_id(&self) -> String {
        self.watermark.id().to_string()
    }

    #[getter]
    fn text_scheme(&self) -> String {
        self.text.to_header()
    }

    #[getter]
    fn signer_public_key(&self) -> String {
        self.signer_public_key.clone()
    }
}

/// Stamps images with a keys folder's watermark key and signer.
#[pyclass(frozen, module = "hallmark._native")]
struct NativeStamper {
    inner: Stamper,
}

#[pymethods]
impl NativeStamper {
    #[new]
    #[pyo3(signature = (keys_dir, model=None, model_version=None, check=true, jpeg_quality=None, cert=None, private_key=None, signer_command=None, signer_timeout=None, tsa_url=None))]
    #[allow(clippy::too_many_arguments)] // Python's keyword arguments, one each
    fn new(
        py: Python<'_>,
        keys_dir: PathBuf,
        model: Option<String>,
        model_version: Option<String>,
        check: bool,
        jpeg_quality: Option<u8>,
        cert: Option<PathBuf>,
        private_key: Option<PathBuf>,
        signer_command: Option<String>,
        signer_timeout: Option<f64>,
        tsa_url: Option<String>,
    ) -> PyResult<Self> {
        run(py, || {
            let timeout = signer_timeout
                .map(|t| {
                    if t.is_finite() && t > 0.0 && t <= 86_400.0 {
                        Ok(std::time::Duration::from_secs_f64(t))
                    } else {
                        Err(bad(
                            hallmark::ErrorCode::InvalidParameter,
                            "signer_timeout must be between 0 and 86400 seconds",
                        ))
                    }
                })
                .transpose()?;
            let source = keys::CredentialSource {
                keys: Some(keys_dir.clone()),
                cert,
                private_key,
                signer_command,
                signer_timeout: timeout,
                tsa_url,
                tsa_timeout: None,
            };
            let mut s = check::stamper_with(&keys_dir, &source)?;
            s.model = model.map(|name| Model {
                name,
                version: model_version,
            });
            s.check_readback = check;
            s.jpeg_quality = jpeg_quality;
            Ok(NativeStamper { inner: s })
        })
    }

    /// Stamps encoded image bytes; returns the stamped file and the result as JSON text.
    #[pyo3(signature = (data, format=None, payload=None))]
    fn stamp<'py>(
        &self,
        py: Python<'py>,
        data: &[u8],
        format: Option<&str>,
        payload: Option<&str>,
    ) -> PyResult<(Bound<'py, PyBytes>, String)> {
        let format = parse_format(format).map_err(|e| to_py(py, &e))?;
        let payload = parse_payload(payload).map_err(|e| to_py(py, &e))?;
        let (bytes, json) = run(py, || {
            // The stamper is shared between threads: the format is per call.
            let t0 = std::time::Instant::now();
            let st = hallmark::stamp_as(data, &self.inner, payload, format)?;
            let mut v = serde_json::to_value(&st)?;
            // The time in the Rust call alone: the benchmark's measure of Python's overhead.
            v["seconds"] = serde_json::json!(t0.elapsed().as_secs_f64());
            let json = v.to_string();
            Ok((st.bytes, json))
        })?;
        Ok((PyBytes::new(py, &bytes), json))
    }
}

/// Encodes tightly packed RGB bytes (`HxWx3`) as an image file (png, jpeg, webp, tiff).
#[pyfunction]
#[pyo3(signature = (raw, width, height, format, jpeg_quality=None))]
fn encode_rgb<'py>(
    py: Python<'py>,
    raw: &[u8],
    width: u32,
    height: u32,
    format: &str,
    jpeg_quality: Option<u8>,
) -> PyResult<Bound<'py, PyBytes>> {
    let fmt = parse_format(Some(format)).map_err(|e| to_py(py, &e))?;
    let out = run(py, || {
        let img = image::DynamicImage::ImageRgb8(rgb(raw, width, height)?);
        let meta = Decoded {
            image: image::DynamicImage::new_rgb8(1, 1),
            format: fmt.unwrap_or(Format::Png),
            icc: None,
            exif: None,
            jpeg_quality: None,
            jpeg_subsampling: None,
        };
        Ok(hallmark::io::encode(
            &img,
            &meta,
            EncodeOptions { jpeg_quality },
        )?)
    })?;
    Ok(PyBytes::new(py, &out))
}

/// Decodes an image file to tightly packed RGB bytes: `(raw, width, height, format)`.
#[pyfunction]
fn decode_rgb<'py>(
    py: Python<'py>,
    data: &[u8],
) -> PyResult<(Bound<'py, PyBytes>, u32, u32, String)> {
    let (raw, w, h, f) = run(py, || {
        let d = hallmark::io::decode(data, &Limits::default())?;
        let img = d.image.to_rgb8();
        let (w, h) = img.dimensions();
        Ok((img.into_raw(), w, h, d.format.extension().to_string()))
    })?;
    Ok((PyBytes::new(py, &raw), w, h, f))
}

/// Verifies a file (by path: its sidecar manifest is read too) or bytes; returns the
/// `hallmark.report/2` object as JSON text.
#[pyfunction]
#[pyo3(signature = (data=None, path=None, watermark_keys=vec![], keys_dir=None, trust=None, ledger=None))]
fn verify(
    py: Python<'_>,
    data: Option<&[u8]>,
    path: Option<PathBuf>,
    watermark_keys: Vec<PathBuf>,
    keys_dir: Option<PathBuf>,
    trust: Option<PathBuf>,
    ledger: Option<PathBuf>,
) -> PyResult<String> {
    run(py, || {
        let v = check::verifier(
            &watermark_keys,
            keys_dir.as_deref(),
            &check::TrustOptions::anchors(trust.as_deref()),
            ledger.as_deref(),
        )?;
        let report = match (data, &path) {
            (Some(d), _) => hallmark::verify(d, None, &v)?,
            (None, Some(p)) => check::verify_path(p, false, &v)?
                .ok_or_else(|| anyhow!("{} is not an image", p.display()))?,
            (None, None) => {
                return Err(bad(
                    hallmark::ErrorCode::InvalidParameter,
                    "give the image's bytes or its path",
                ));
            }
        };
        Ok(serde_json::to_string(&report)?)
    })
}

/// Reads an input file (at most 512 MiB), as the CLI does.
#[pyfunction]
fn read_input<'py>(py: Python<'py>, path: PathBuf) -> PyResult<Bound<'py, PyBytes>> {
    let data = run(py, || hallmark_files::read_input(&path))?;
    Ok(PyBytes::new(py, &data))
}

/// Writes an output atomically; an existing file is replaced only with `force`.
#[pyfunction]
fn write_output(py: Python<'_>, path: PathBuf, data: &[u8], force: bool) -> PyResult<()> {
    run(py, || {
        hallmark_files::write_output(&path, data, hallmark_files::Replace::allowed_if(force))
    })
}

fn load_key(path: &Path) -> Result<WatermarkKey> {
    keys::load_watermark_key(path)
}

/// Embeds the watermark into tightly packed RGB bytes; returns the marked bytes and the
/// embedding's report as JSON text.
#[pyfunction]
#[pyo3(signature = (raw, width, height, key, payload=None, check=true))]
fn image_embed<'py>(
    py: Python<'py>,
    raw: &[u8],
    width: u32,
    height: u32,
    key: PathBuf,
    payload: Option<&str>,
    check: bool,
) -> PyResult<(Bound<'py, PyBytes>, String)> {
    let payload = parse_payload(payload).map_err(|e| to_py(py, &e))?;
    let (out, json) = run(py, || {
        let k = load_key(&key)?;
        let img = image::DynamicImage::ImageRgb8(rgb(raw, width, height)?);
        let mark = ImageMark::new(&k, Default::default());
        let det = Detector::new(&k);
        let payload = payload.unwrap_or_else(Payload::random);
        let m = hallmark::mark_pixels(
            &img,
            &mark,
            check.then_some(&det),
            payload,
            if check {
                hallmark::Checks::default()
            } else {
                hallmark::Checks::none()
            },
        )?;
        let mut v = serde_json::to_value(&m.report)?;
        v["readable"] = serde_json::json!(m.readable);
        v["reinforced"] = serde_json::json!(m.reinforced);
        v["survives_webp"] = serde_json::json!(m.survives_webp);
        Ok((m.image.to_rgb8().into_raw(), v.to_string()))
    })?;
    Ok((PyBytes::new(py, &out), json))
}

/// Looks for the watermark in tightly packed RGB bytes; returns the detection as JSON text.
#[pyfunction]
fn image_detect(
    py: Python<'_>,
    raw: &[u8],
    width: u32,
    height: u32,
    key: PathBuf,
) -> PyResult<String> {
    run(py, || {
        let k = load_key(&key)?;
        let img = image::DynamicImage::ImageRgb8(rgb(raw, width, height)?);
        Ok(serde_json::to_string(&Detector::new(&k).detect(&img))?)
    })
}

fn text_mark(key: &Path, scheme: Option<&str>) -> Result<TextMark> {
    let config = keys::text_config(scheme, Some(key))?;
    Ok(TextMark::new(&load_key(key)?, config))
}

/// The text watermark as a logits processor over a batch: one sequence state per row.
#[pyclass(module = "hallmark._native")]
struct NativeProcessor {
    mark: TextMark,
    rows: Mutex<Rows>,
}

#[derive(Default)]
struct Rows {
    procs: Vec<Processor>,
    seq: usize,
}

#[pymethods]
impl NativeProcessor {
    #[new]
    #[pyo3(signature = (key, scheme=None))]
    fn new(py: Python<'_>, key: PathBuf, scheme: Option<String>) -> PyResult<Self> {
        run(py, || {
            Ok(NativeProcessor {
                mark: text_mark(&key, scheme.as_deref())?,
                rows: Mutex::default(),
            })
        })
    }

    #[getter]
    fn scheme(&self) -> String {
        self.mark.config().to_header()
    }

    /// Forgets the sequences (a new `generate` call starts fresh by itself: a batch whose
    /// length is not one more than the last call's is taken as new).
    fn reset(&self) {
        if let Ok(mut r) = self.rows.lock() {
            *r = Rows::default();
        }
    }

    /// `input_ids`: `batch x seq` little-endian i64; `scores`: `batch x vocab` f32, changed
    /// and returned.
    fn process<'py>(
        &self,
        py: Python<'py>,
        input_ids: &[u8],
        batch: usize,
        seq: usize,
        scores: &[u8],
        vocab: usize,
    ) -> PyResult<Bound<'py, PyBytes>> {
        let scores_out = run(py, || {
            if input_ids.len() != batch * seq * 8 || scores.len() != batch * vocab * 4 {
                return Err(bad(
                    hallmark::ErrorCode::InvalidInput,
                    format!(
                        "input_ids must be {batch}x{seq} int64 and scores {batch}x{vocab} float32"
                    ),
                ));
            }
            let mut rows = self
                .rows
                .lock()
                .map_err(|_| anyhow!("the processor was poisoned by an earlier failure"))?;
            if rows.procs.len() != batch || seq != rows.seq + 1 {
                rows.procs = (0..batch)
                    .map(|_| Processor::new(self.mark.clone()))
                    .collect();
            }
            rows.seq = seq;
            let mut s: Vec<f32> = scores
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect();
            let mut ctx = Vec::with_capacity(seq);
            for (row, p) in rows.procs.iter_mut().enumerate() {
                ctx.clear();
                for b in input_ids[row * seq * 8..(row + 1) * seq * 8].chunks_exact(8) {
                    let id = i64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]);
                    ctx.push(u32::try_from(id).map_err(|_| {
                        bad(
                            hallmark::ErrorCode::InvalidInput,
                            format!("token id {id} is out of range"),
                        )
                    })?);
                }
                p.process(&ctx, &mut s[row * vocab..(row + 1) * vocab]);
            }
            Ok(s)
        })?;
        // Written straight into the new bytes object: no intermediate buffer.
        PyBytes::new_with(py, scores_out.len() * 4, |b| {
            for (chunk, x) in b.chunks_exact_mut(4).zip(&scores_out) {
                chunk.copy_from_slice(&x.to_le_bytes());
            }
            Ok(())
        })
    }
}

/// Scores text (with a tokenizer) or token ids for the text watermark.
#[pyclass(frozen, module = "hallmark._native")]
struct NativeDetector {
    mark: TextMark,
    tokenizer: Option<TextTokenizer>,
}

#[pymethods]
impl NativeDetector {
    #[new]
    #[pyo3(signature = (key, scheme=None, tokenizer_path=None, tokenizer_json=None))]
    fn new(
        py: Python<'_>,
        key: PathBuf,
        scheme: Option<String>,
        tokenizer_path: Option<PathBuf>,
        tokenizer_json: Option<String>,
    ) -> PyResult<Self> {
        run(py, || {
            let tokenizer = match (tokenizer_path, tokenizer_json) {
                (Some(p), _) => Some(
                    TextTokenizer::from_file(&p)
                        .with_context(|| format!("cannot load the tokenizer {}", p.display()))?,
                ),
                (None, Some(j)) => Some(TextTokenizer::from_json(&j)?),
                (None, None) => None,
            };
            Ok(NativeDetector {
                mark: text_mark(&key, scheme.as_deref())?,
                tokenizer,
            })
        })
    }

    #[getter]
    fn scheme(&self) -> String {
        self.mark.config().to_header()
    }

    /// Scores a text; returns hallmark-lm's detection (with character spans) as JSON text.
    #[pyo3(signature = (text, prompt=None))]
    fn detect(&self, py: Python<'_>, text: &str, prompt: Option<&str>) -> PyResult<String> {
        run(py, || {
            let tok = self.tokenizer.as_ref().ok_or_else(|| {
                bad(
                    hallmark::ErrorCode::InvalidParameter,
                    "detecting text needs a tokenizer (tokenizer.json, a GGUF model or a transformers tokenizer); detect_ids needs none",
                )
            })?;
            let d = hallmark_lm::detect_text(&self.mark, tok, text, prompt)?;
            Ok(serde_json::to_string(&d)?)
        })
    }

    /// Decodes token ids to text with the detector's tokenizer.
    fn decode(&self, py: Python<'_>, ids: Vec<u32>) -> PyResult<String> {
        run(py, || {
            let tok = self.tokenizer.as_ref().ok_or_else(|| {
                bad(
                    hallmark::ErrorCode::InvalidParameter,
                    "decoding needs a tokenizer",
                )
            })?;
            Ok(tok.decode(&ids)?)
        })
    }

    /// Scores token ids; returns the detection as JSON text.
    fn detect_ids(&self, py: Python<'_>, ids: Vec<u32>) -> PyResult<String> {
        run(py, || {
            let d = self.mark.detect(&ids, 0)?;
            Ok(serde_json::to_string(&d)?)
        })
    }
}

/// Generates text with a GGUF model, watermarked with `key` (unless None).
#[pyfunction]
#[pyo3(signature = (model_path, key, prompt, scheme=None, max_tokens=200, min_tokens=0, temperature=0.8, seed=None, raw=false))]
#[allow(clippy::too_many_arguments)]
fn generate(
    py: Python<'_>,
    model_path: PathBuf,
    key: Option<PathBuf>,
    prompt: String,
    scheme: Option<String>,
    max_tokens: usize,
    min_tokens: usize,
    temperature: f32,
    seed: Option<u64>,
    raw: bool,
) -> PyResult<String> {
    run(py, || {
        if temperature.is_nan() || temperature <= 0.0 {
            return Err(bad(
                hallmark::ErrorCode::InvalidParameter,
                "temperature must be a positive number",
            ));
        }
        let mark = key
            .as_deref()
            .map(|k| text_mark(k, scheme.as_deref()))
            .transpose()?;
        let header = mark.as_ref().map(|m| m.config().to_header());
        let mut model = hallmark_lm::Model::load(&model_path, hallmark_lm::LoadOptions::default())
            .with_context(|| format!("cannot load the model {}", model_path.display()))?;
        let prompt_ids = model.prompt_ids(&prompt, raw)?;
        let seed = seed.unwrap_or_else(|| Payload::random().0);
        let mut sampler = hallmark::text::Sampler::new(mark, seed);
        let g = model.generate(
            &prompt_ids,
            &hallmark_lm::GenerateOptions {
                max_tokens,
                min_tokens,
                temperature,
                seed,
            },
            &mut sampler,
        )?;
        Ok(serde_json::json!({
            "text": g.text,
            "token_ids": g.ids,
            "prompt_tokens": g.prompt_ids.len(),
            "watermarked": header.is_some(),
            "scheme": header,
            "seed": seed,
            "perplexity": g.perplexity(),
        })
        .to_string())
    })
}

/// Writes a tiny random GGUF model with a byte-level tokenizer (hallmark's own test model:
/// gibberish, no download), for tests and examples.
#[pyfunction]
#[pyo3(signature = (path, seed=7, sharpness=1.0))]
fn _write_tiny_model(py: Python<'_>, path: PathBuf, seed: u64, sharpness: f32) -> PyResult<()> {
    run(py, || {
        Ok(hallmark_lm::tiny::write_model(&path, seed, sharpness)?)
    })
}

fn warn_python(msg: &str) {
    Python::attach(|py| {
        let _ = py
            .import("warnings")
            .and_then(|w| w.getattr("warn"))
            .and_then(|f| f.call1((msg,)));
    });
}

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    hallmark_files::set_warning_sink(warn_python);
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add("REPORT_SCHEMA", hallmark::REPORT_SCHEMA)?;
    m.add_class::<NativeKeys>()?;
    m.add_class::<NativeStamper>()?;
    m.add_class::<NativeProcessor>()?;
    m.add_class::<NativeDetector>()?;
    m.add_function(wrap_pyfunction!(keygen, m)?)?;
    m.add_function(wrap_pyfunction!(encode_rgb, m)?)?;
    m.add_function(wrap_pyfunction!(decode_rgb, m)?)?;
    m.add_function(wrap_pyfunction!(verify, m)?)?;
    m.add_function(wrap_pyfunction!(image_embed, m)?)?;
    m.add_function(wrap_pyfunction!(image_detect, m)?)?;
    m.add_function(wrap_pyfunction!(generate, m)?)?;
    m.add_function(wrap_pyfunction!(read_input, m)?)?;
    m.add_function(wrap_pyfunction!(_write_tiny_model, m)?)?;
    m.add_function(wrap_pyfunction!(write_output, m)?)?;
    Ok(())
}
