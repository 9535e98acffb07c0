//! `hallmark text generate` and `hallmark text detect`.

use std::io::{BufRead, Read, Write};
use std::path::{Path, PathBuf};

use crate::out::{errln, outln};
use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use hallmark::text::{Config, Sampler, TextMark};
use hallmark_lm::{GenerateOptions, LoadOptions, Model, TextDetection, TextTokenizer};

use crate::{files, keys};

/// Lines `detect --jsonl` scores in parallel at a time.
const CHUNK: usize = 256;

/// Largest text `detect` reads (bytes): a text of this size, in any script, is detected
/// within 1 GiB (peak measured with the SmolLM2 tokenizer: 16 MiB of Chinese, ~15 million
/// tokens, the worst case; see README "Hostile input"). A `--jsonl` batch scores at most this
/// many bytes of lines at a time, so the bound holds for batches too.
const MAX_TEXT: u64 = 16 << 20;

#[derive(Subcommand, Debug)]
pub enum TextCmd {
    /// Generate text with a local GGUF model, watermarked while it samples.
    #[command(
        after_help = "Examples:\n  hallmark text generate --model models/SmolLM2-135M-Instruct.Q4_1.gguf --key keys --prompt \"Write about lighthouses.\" -o story.txt\n  hallmark text generate --model m.gguf --key keys --prompt-file prompt.txt --temperature 0.7"
    )]
    Generate(GenerateArgs),
    /// Detect the text watermark: a p-value from the text, the key and the tokenizer.
    #[command(
        after_help = "Exit codes: 0 watermarked (every text, with --jsonl), 1 not watermarked, 2 bad input (empty text, not UTF-8, unreadable key or tokenizer; with --jsonl: any bad line).\n\nExamples:\n  hallmark text detect --key keys --tokenizer models/SmolLM2-135M-Instruct.Q4_1.gguf story.txt\n  hallmark text detect --key keys --tokenizer tokenizer.json --jsonl - < posts.jsonl"
    )]
    Detect(DetectArgs),
    /// Write the tokenizer a GGUF model holds as a tokenizer.json: what detectors need,
    /// without the model (or for transformers' PreTrainedTokenizerFast).
    #[command(
        after_help = "Examples:\n  hallmark text tokenizer models/SmolLM2-135M-Instruct.Q4_1.gguf -o tokenizer.json\n  hallmark text detect --key keys --tokenizer tokenizer.json story.txt"
    )]
    Tokenizer {
        /// The GGUF model (or a tokenizer.json, rewritten).
        model: PathBuf,
        /// Where to write the tokenizer.json.
        #[arg(short, long)]
        output: PathBuf,
        /// Replace an existing output.
        #[arg(long)]
        force: bool,
    },
}

#[derive(Args, Debug)]
pub struct SchemeArgs {
    /// Watermark scheme: `gumbel` (distortion-free, the default: "hallmark-text/1 gumbel h=1
    /// hmax=3"),
    /// `kgw` (green list: "hallmark-text/1 kgw h=2 gamma=0.25 delta=2"), `robust` (for text
    /// that will be edited: survives 30% word edits even at low temperature, at +43%
    /// perplexity; green list plus exponential scores: "hallmark-text/1 kgw-gumbel h=1 hmax=3
    /// gamma=0.25 delta=2"), `kgw-robust` (an earlier preset for edits, at twice the
    /// perplexity: "hallmark-text/1 kgw h=1 gamma=0.25 delta=3"), or any full header.
    /// Default: the scheme recorded in the keys folder's text-watermark.conf (keygen writes
    /// it; keys made before it did: "hallmark-text/1 gumbel h=2").
    #[arg(long)]
    scheme: Option<String>,
}

#[derive(Args, Debug)]
pub struct GenerateArgs {
    /// The model (GGUF, llama family; e.g. SmolLM2-135M-Instruct, see scripts/fetch-model.sh).
    #[arg(long)]
    model: PathBuf,
    /// Watermark key file or keys folder (required, unless --no-watermark).
    #[arg(long, required_unless_present = "no_watermark")]
    key: Option<PathBuf>,
    /// The prompt.
    #[arg(
        long,
        conflicts_with = "prompt_file",
        required_unless_present = "prompt_file"
    )]
    prompt: Option<String>,
    /// Read the prompt from a file.
    #[arg(long)]
    prompt_file: Option<PathBuf>,
    /// Most tokens to generate.
    #[arg(long, default_value_t = 200)]
    max_tokens: usize,
    /// Do not stop before this many tokens (end-of-text is suppressed until then).
    #[arg(long, default_value_t = 0)]
    min_tokens: usize,
    /// Sampling temperature.
    #[arg(long, default_value_t = 0.7)]
    temperature: f32,
    /// Seed of the sampler (default: random).
    #[arg(long)]
    seed: Option<u64>,
    #[command(flatten)]
    scheme: SchemeArgs,
    /// Feed the prompt as is, without the model's chat template.
    #[arg(long)]
    raw: bool,
    /// Generate without a watermark (for comparisons).
    #[arg(long)]
    no_watermark: bool,
    /// Keep quantized weights quantized (less memory, much slower on CPU for Q4_1).
    #[arg(long)]
    keep_quantized: bool,
    /// Write the text here (atomically) instead of standard output.
    #[arg(short, long)]
    output: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct DetectArgs {
    /// Watermark key file or keys folder; repeat it, or name a folder of keys folders and
    /// key files, to check many keys at once (the p-value is corrected for their number, and
    /// the output names the key that matched).
    #[arg(long, required = true)]
    key: Vec<PathBuf>,
    /// The tokenizer the text was generated with: the GGUF model or a tokenizer.json.
    #[arg(long)]
    tokenizer: PathBuf,
    /// Text file, or `-` for standard input (the default). With --jsonl: a file of
    /// {"id": ..., "text": ...} lines.
    input: Option<PathBuf>,
    /// Batch mode: read JSON lines {"id", "text"} and print one JSON object per line, in
    /// order (implies --json).
    #[arg(long)]
    pub jsonl: bool,
    /// The prompt the text was generated from: its (context, token) pairs are not counted as evidence.
    #[arg(long)]
    prompt_file: Option<PathBuf>,
    /// p-value below which a text is reported as watermarked.
    #[arg(long, default_value_t = 1e-3)]
    threshold: f64,
    #[command(flatten)]
    scheme: SchemeArgs,
}

/// The scheme: `--scheme`, else the key folder's (see [`hallmark_files::keys::text_config`]).
fn resolve_config(scheme: &SchemeArgs, key: Option<&Path>) -> Result<Config> {
    hallmark_files::keys::text_config(scheme.scheme.as_deref(), key)
}

pub fn run(json: bool, quiet: bool, cmd: &TextCmd) -> Result<i32> {
    match cmd {
        TextCmd::Generate(a) => generate(json, quiet, a),
        TextCmd::Detect(a) => detect(json, quiet, a),
        TextCmd::Tokenizer {
            model,
            output,
            force,
        } => {
            let tok = TextTokenizer::from_file(model)
                .with_context(|| format!("cannot load the tokenizer of {}", model.display()))?;
            files::write_output(
                output,
                tok.to_json()?.as_bytes(),
                files::Replace::allowed_if(*force),
            )?;
            if !quiet {
                crate::out::errln!(
                    "wrote the tokenizer of {} ({} tokens) to {}",
                    model.display(),
                    tok.vocab_size(),
                    output.display()
                );
            }
            Ok(0)
        }
    }
}

fn generate(json: bool, quiet: bool, a: &GenerateArgs) -> Result<i32> {
    if !(a.temperature > 0.0 && a.temperature.is_finite()) {
        bail!("--temperature must be a positive number");
    }
    if a.max_tokens == 0 {
        bail!("--max-tokens must be at least 1");
    }
    let prompt = match (&a.prompt, &a.prompt_file) {
        (Some(p), _) => p.clone(),
        (None, Some(f)) => {
            crate::files::read_text_capped(f, crate::files::MAX_CONFIG_BYTES, "the prompt")?
        }
        (None, None) => bail!("give --prompt or --prompt-file"),
    };
    if prompt.trim().is_empty() {
        bail!("the prompt is empty");
    }
    if let Some(o) = &a.output {
        // The output must not land on any input: model, prompt file or key.
        let mut inputs = vec![a.model.clone()];
        inputs.extend(a.prompt_file.clone());
        if let Some(k) = &a.key {
            inputs.push(if k.is_dir() {
                k.join(hallmark_files::keys::WATERMARK_KEY)
            } else {
                k.clone()
            });
        }
        let canon = |p: &Path| std::fs::canonicalize(p).ok();
        if let Some(out) = canon(o) {
            for i in &inputs {
                if canon(i).as_ref() == Some(&out) {
                    bail!(
                        "refusing to write the output over the input {}",
                        i.display()
                    );
                }
            }
        }
    }
    let config = resolve_config(&a.scheme, a.key.as_deref())?;
    let mark = match (&a.key, a.no_watermark) {
        (Some(k), false) => {
            let key = keys::load_watermark_key(k)?;
            Some((TextMark::new(&key, config), key.id().to_string()))
        }
        _ => None,
    };
    let t0 = std::time::Instant::now();
    let mut model = Model::load(
        &a.model,
        LoadOptions {
            dequantize: !a.keep_quantized,
        },
    )
    .with_context(|| format!("cannot load the model {}", a.model.display()))?;
    let load_s = t0.elapsed().as_secs_f64();
    let prompt_ids = model.prompt_ids(&prompt, a.raw)?;
    let seed = a.seed.unwrap_or_else(rand_seed);
    let (mark, key_id) = match mark {
        Some((m, id)) => (Some(m), Some(id)),
        None => (None, None),
    };
    let mut sampler = Sampler::new(mark, seed);
    let t1 = std::time::Instant::now();
    let g = model.generate(
        &prompt_ids,
        &GenerateOptions {
            max_tokens: a.max_tokens,
            min_tokens: a.min_tokens,
            temperature: a.temperature,
            seed,
        },
        &mut sampler,
    )?;
    let gen_s = t1.elapsed().as_secs_f64();
    let n = g.ids.len().max(1) as f64;
    let header = key_id.as_ref().map(|_| config.to_header());
    if let Some(o) = &a.output {
        files::write_atomic(o, g.text.as_bytes(), None)?;
    }
    if json {
        crate::json::emit(
            crate::json::TEXT_GENERATE,
            a.model.display().to_string(),
            &crate::json::TextGenerateOut {
                text: g.text.clone(),
                watermarked: key_id.is_some(),
                scheme: header.clone(),
                key_id: key_id.clone(),
                model: a.model.display().to_string(),
                seed,
                temperature: f64::from(a.temperature),
                prompt_tokens: g.prompt_ids.len(),
                tokens: g.ids.len(),
                perplexity: g.perplexity(),
                load_seconds: load_s,
                seconds: gen_s,
                tokens_per_second: g.ids.len() as f64 / gen_s.max(1e-9),
                model_ms_per_token: g.model_ms / n,
                sampler_ms_per_token: g.sampler_ms / n,
                output: a.output.as_ref().map(|p| p.display().to_string()),
            },
        )?;
    } else {
        if a.output.is_none() {
            let mut out = std::io::stdout().lock();
            writeln!(out, "{}", g.text)?;
        }
        if !quiet {
            errln!(
                "hallmark: {} tokens in {:.1} s ({:.1} tokens/s, sampler {:.3} ms/token); {}",
                g.ids.len(),
                gen_s,
                g.ids.len() as f64 / gen_s.max(1e-9),
                g.sampler_ms / n,
                match (&header, &key_id) {
                    (Some(h), Some(id)) => format!("watermark {h}, key {id}"),
                    _ => "no watermark".into(),
                }
            );
        }
    }
    Ok(0)
}

fn rand_seed() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    h.finish()
}

/// One text's result, as printed.
fn result_json(
    d: &TextDetection,
    threshold: f64,
    header: &str,
    key_id: &str,
) -> crate::json::TextDetectOut {
    let det = &d.detection;
    crate::json::TextDetectOut {
        key_id: key_id.to_string(),
        keys: d.keys,
        case: d.case,
        case_readings: d.case_readings,
        detected: det.p_value < threshold,
        p_value: det.p_value,
        p_value_whole: det.p_value_whole,
        z_score: det.z_score,
        tokens: d.tokens,
        tokens_scored: det.tokens_scored,
        score: det.score,
        spans: d.char_spans.clone(),
        scheme: header.to_string(),
        id: None,
        line: None,
    }
}

/// The name `--json` objects give the input: the file, or `-` for standard input.
fn input_name(input: Option<&Path>) -> String {
    input.map_or_else(|| "-".to_string(), |p| p.display().to_string())
}

/// The schema and inputs of a text command's `--json` objects (see `main::json_inputs`).
pub fn json_inputs(cmd: &TextCmd) -> Option<(&'static str, Vec<String>)> {
    match cmd {
        TextCmd::Generate(a) => Some((
            crate::json::TEXT_GENERATE,
            vec![a.model.display().to_string()],
        )),
        TextCmd::Detect(a) => Some((
            crate::json::TEXT_DETECT,
            vec![input_name(a.input.as_deref())],
        )),
        // Writes a file and prints nothing on stdout.
        TextCmd::Tokenizer { .. } => None,
    }
}

fn read_text(input: Option<&Path>) -> Result<String> {
    let mut buf = vec![];
    match input {
        None => {
            std::io::stdin()
                .lock()
                .take(MAX_TEXT + 1)
                .read_to_end(&mut buf)
                .context("cannot read standard input")?;
        }
        Some(p) if p == Path::new("-") => {
            std::io::stdin()
                .lock()
                .take(MAX_TEXT + 1)
                .read_to_end(&mut buf)
                .context("cannot read standard input")?;
        }
        Some(p) => {
            let f =
                std::fs::File::open(p).with_context(|| format!("cannot open {}", p.display()))?;
            f.take(MAX_TEXT + 1)
                .read_to_end(&mut buf)
                .with_context(|| format!("cannot read {}", p.display()))?;
        }
    }
    if buf.len() as u64 > MAX_TEXT {
        bail!("the text is larger than {} MiB", MAX_TEXT >> 20);
    }
    String::from_utf8(buf).context("the text is not valid UTF-8")
}

/// The keys `text detect` checks: each with its scheme (`--scheme`, else its folder's).
struct KeySet {
    marks: Vec<TextMark>,
    ids: Vec<String>,
    headers: Vec<String>,
}

impl KeySet {
    fn load(a: &DetectArgs) -> Result<KeySet> {
        let keys = files::keys::load_watermark_keys(&a.key)?;
        let mut set = KeySet {
            marks: vec![],
            ids: vec![],
            headers: vec![],
        };
        for (k, from) in keys {
            let config = resolve_config(&a.scheme, Some(&from))?;
            set.marks.push(TextMark::new(&k, config));
            set.ids.push(k.id().to_string());
            set.headers.push(config.to_header());
        }
        Ok(set)
    }

    fn detect(
        &self,
        tok: &TextTokenizer,
        text: &str,
        prompt: Option<&str>,
    ) -> Result<(usize, hallmark_lm::TextDetection), hallmark_lm::Error> {
        let refs: Vec<&TextMark> = self.marks.iter().collect();
        hallmark_lm::detect_text_keys(&refs, tok, text, prompt)
    }
}

fn detect(json: bool, quiet: bool, a: &DetectArgs) -> Result<i32> {
    if !(a.threshold > 0.0 && a.threshold < 1.0) {
        bail!("--threshold must be in (0, 1)");
    }
    let set = KeySet::load(a)?;
    let tok = TextTokenizer::from_file(&a.tokenizer)
        .with_context(|| format!("cannot load the tokenizer {}", a.tokenizer.display()))?;
    let prompt = match &a.prompt_file {
        Some(p) => Some(crate::files::read_text_capped(
            p,
            crate::files::MAX_CONFIG_BYTES,
            "the prompt",
        )?),
        None => None,
    };
    if a.jsonl {
        return detect_jsonl(&set, &tok, prompt.as_deref(), a);
    }
    let text = read_text(a.input.as_deref())?;
    let (ki, td) = set.detect(&tok, &text, prompt.as_deref())?;
    let header = &set.headers[ki];
    let v = result_json(&td, a.threshold, header, &set.ids[ki]);
    let d = &td.detection;
    let detected = d.p_value < a.threshold;
    if json {
        crate::json::emit(crate::json::TEXT_DETECT, input_name(a.input.as_deref()), &v)?;
    } else if !quiet {
        let z = d
            .z_score
            .map(|z| format!(", z = {z:.2}"))
            .unwrap_or_default();
        let key = if set.marks.len() > 1 {
            format!(
                "key {}, the best of {} keys; corrected for them",
                set.ids[ki],
                set.marks.len()
            )
        } else {
            format!("key {}", set.ids[ki])
        };
        let case = match td.case {
            hallmark_lm::CaseReading::AsIs => String::new(),
            hallmark_lm::CaseReading::SentenceStarts => {
                ", read with sentences capitalised".to_string()
            }
            hallmark_lm::CaseReading::SentenceCase => ", read in sentence case".to_string(),
        };
        outln!(
            "{}: p-value {:.2e}{z} over {} scored tokens ({header}, {key}{case})",
            if detected {
                "watermark detected"
            } else {
                "no watermark detected"
            },
            d.p_value,
            d.tokens_scored,
        );
        for s in &v.spans {
            outln!(
                "  watermarked span: characters {}..{} (corrected p-value {:.2e})",
                s.start,
                s.end,
                s.p_value
            );
        }
        if d.tokens_scored < 50 {
            outln!(
                "  note: short text ({} scored tokens): weak evidence either way",
                d.tokens_scored
            );
        }
    }
    Ok(if detected { 0 } else { 1 })
}

/// One line of a JSONL input.
enum Line {
    Bytes(Vec<u8>),
    /// Longer than the cap: skipped to its end without being held in memory.
    TooLong,
}

/// Reads one line (without its newline) holding at most `cap` bytes of it; `None` at the end.
fn read_line_capped(r: &mut dyn BufRead, cap: u64) -> std::io::Result<Option<Line>> {
    let mut buf = Vec::new();
    let n = (&mut *r).take(cap + 1).read_until(b'\n', &mut buf)?;
    if n == 0 {
        return Ok(None);
    }
    if buf.last() == Some(&b'\n') {
        buf.pop();
        if buf.last() == Some(&b'\r') {
            buf.pop();
        }
        return Ok(Some(Line::Bytes(buf)));
    }
    if (buf.len() as u64) <= cap {
        return Ok(Some(Line::Bytes(buf))); // the last line, without a newline
    }
    drop(buf);
    loop {
        let avail = r.fill_buf()?;
        if avail.is_empty() {
            break;
        }
        if let Some(p) = avail.iter().position(|&b| b == b'\n') {
            r.consume(p + 1);
            break;
        }
        let len = avail.len();
        r.consume(len);
    }
    Ok(Some(Line::TooLong))
}

fn detect_jsonl(
    set: &KeySet,
    tok: &TextTokenizer,
    prompt: Option<&str>,
    a: &DetectArgs,
) -> Result<i32> {
    let reader: Box<dyn BufRead> = match a.input.as_deref() {
        None => Box::new(std::io::stdin().lock()),
        Some(p) if p == Path::new("-") => Box::new(std::io::stdin().lock()),
        Some(p) => Box::new(std::io::BufReader::new(
            std::fs::File::open(p).with_context(|| format!("cannot open {}", p.display()))?,
        )),
    };
    let (mut n, mut hits, mut errors) = (0usize, 0usize, 0usize);
    // Lines are scored in parallel chunks; results are printed in input order.
    let file = input_name(a.input.as_deref());
    let score = |(i, line): &(usize, Result<String, String>)| -> (serde_json::Value, Option<bool>) {
        let parsed: Result<(serde_json::Value, String)> = line
            .as_ref()
            .map_err(|e| anyhow::anyhow!("{e}"))
            .and_then(|l| serde_json::from_str::<serde_json::Value>(l).context("not JSON"))
            .and_then(|v| {
                let text = v
                    .get("text")
                    .and_then(|t| t.as_str())
                    .context("no \"text\" string")?
                    .to_string();
                Ok((
                    v.get("id").cloned().unwrap_or(serde_json::Value::Null),
                    text,
                ))
            });
        let failed = |e: anyhow::Error, id: Option<serde_json::Value>| {
            let mut f = crate::json::Failed::new(&e);
            f.line = Some(i + 1);
            f.id = id;
            (
                crate::json::item_value(crate::json::TEXT_DETECT, &file, &f),
                None,
            )
        };
        match parsed {
            // Whatever is wrong with a line is wrong with the input.
            Err(e) => failed(
                crate::json::coded(
                    hallmark::ErrorCode::InvalidInput,
                    format!("line {}: {e:#}", i + 1),
                ),
                None,
            ),
            Ok((id, text)) => match set.detect(tok, &text, prompt) {
                Ok((ki, d)) => {
                    let mut v = result_json(&d, a.threshold, &set.headers[ki], &set.ids[ki]);
                    v.id = Some(id);
                    v.line = Some(i + 1);
                    (
                        crate::json::item_value(crate::json::TEXT_DETECT, &file, &v),
                        Some(d.detection.p_value < a.threshold),
                    )
                }
                Err(e) => failed(e.into(), Some(id)),
            },
        }
    };
    let mut reader = reader;
    let mut i = 0usize;
    let mut eof = false;
    let mut pending: Option<(usize, Result<String, String>)> = None;
    let line_len = |l: &(usize, Result<String, String>)| l.1.as_ref().map_or(0, |t| t.len() as u64);
    loop {
        // A line that is not UTF-8 or is too long is answered with an error object in its
        // place; the run goes on.
        let mut chunk: Vec<(usize, Result<String, String>)> = Vec::with_capacity(CHUNK);
        // Bounded in bytes too: big lines are scored a few at a time, so memory stays
        // within what one text of the largest size needs, whatever the input holds.
        let mut chunk_bytes = 0u64;
        if let Some(p) = pending.take() {
            chunk_bytes += line_len(&p);
            chunk.push(p);
        }
        while !eof && chunk.len() < CHUNK {
            let line = match read_line_capped(&mut reader, MAX_TEXT)
                .with_context(|| format!("cannot read line {}", i + 1))?
            {
                None => {
                    eof = true;
                    break;
                }
                Some(Line::TooLong) => Err(format!(
                    "the line is longer than the {} MiB limit for one text",
                    MAX_TEXT >> 20
                )),
                Some(Line::Bytes(b)) => String::from_utf8(b)
                    .map_err(|e| format!("not UTF-8 text (byte {})", e.utf8_error().valid_up_to())),
            };
            if line.as_ref().is_ok_and(|l| l.trim().is_empty()) {
                i += 1;
                continue;
            }
            let entry = (i, line);
            i += 1;
            if !chunk.is_empty() && chunk_bytes + line_len(&entry) > MAX_TEXT {
                // Scored with the next chunk, so no chunk holds more than MAX_TEXT bytes.
                pending = Some(entry);
                break;
            }
            chunk_bytes += line_len(&entry);
            chunk.push(entry);
        }
        if chunk.is_empty() {
            break;
        }
        let results: Vec<(serde_json::Value, Option<bool>)> = {
            use rayon::prelude::*;
            chunk.par_iter().map(score).collect()
        };
        for (v, outcome) in results {
            n += 1;
            match outcome {
                Some(hit) => hits += usize::from(hit),
                None => errors += 1,
            }
            crate::json::emit_value(&v)?;
        }
    }
    if n == 0 {
        bail!("no input lines");
    }
    Ok(if errors > 0 {
        2
    } else if hits == n {
        0
    } else {
        1
    })
}
