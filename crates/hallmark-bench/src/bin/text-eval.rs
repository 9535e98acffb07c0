//! The text watermark's benchmark with a real model (SmolLM2-135M-Instruct) and a null corpus
//! of human text built from Debian packages.
//!
//! ```text
//! scripts/fetch-model.sh models && scripts/fetch-text-corpus.sh corpus
//! cargo run --release -p hallmark-bench --bin text-eval -- generate --model models/SmolLM2-135M-Instruct.Q4_1.gguf
//! cargo run --release -p hallmark-bench --bin text-eval -- report --model models/SmolLM2-135M-Instruct.Q4_1.gguf --corpus corpus
//! ```
//!
//! `generate` writes (and resumes) `target/text-eval/generations.jsonl`: for each prompt, both
//! temperatures (0.7, 1.0) and each scheme of `schemes()` one 200-token generation with
//! its own key. `report` reads it and prints the tables: power at 100 and 200 tokens,
//! perplexity, false positives on the human corpus (several keys, per row, with a 95% upper
//! bound), robustness to edits, localisation in a 2,000-word document, and speed.

use std::collections::BTreeMap;
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use hallmark::WatermarkKey;
use hallmark::text::{Config, Sampler, TextMark};
use hallmark_lm::{GenerateOptions, LoadOptions, Model, TextTokenizer, detect_text};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng, rngs::StdRng};
use serde_json::{Value, json};

/// The benchmark's prompts' topics, one per line (`--topics` for others).
const TOPICS: &str = include_str!("../../data/text-topics.txt");

const TEMPS: [f32; 2] = [0.7, 1.0];

fn schemes() -> Vec<(&'static str, Option<Config>)> {
    let hdr = |h: &str| Some(Config::from_header(h).expect("header"));
    vec![
        // The default: distortion-free, keyed by the shortest new context of 1 to 3 tokens.
        ("gumbel", Some(Config::gumbel())),
        // The previous default: two tokens of context, repeated contexts unwatermarked.
        ("gumbel-h2", hdr("hallmark-text/1 gumbel h=2")),
        ("kgw", Some(Config::kgw())),
        // Candidates for edit robustness at low temperature: a one-token context (more
        // pairs survive an edit) and a strong bias (more evidence per surviving pair).
        (
            "kgw-h1-d2",
            hdr("hallmark-text/1 kgw h=1 gamma=0.25 delta=2"),
        ),
        // `Config::kgw_robust()`.
        ("kgw-h1-d3", Some(Config::kgw_robust())),
        // The hybrid (green list + exponential-minimum over the biased distribution): keyed
        // by one token only (repeated contexts: biased sampling without the keyed rule)...
        (
            "kgw-gumbel-h1-d2",
            hdr("hallmark-text/1 kgw-gumbel h=1 gamma=0.25 delta=2"),
        ),
        // ...and by the shortest new context of 1 to 3 tokens: `Config::robust()`.
        ("kgw-gumbel-h1..3-d2", Some(Config::robust())),
        // A light bias: can the hybrid stay within the 10% perplexity budget?
        (
            "kgw-gumbel-h1..3-d1",
            hdr("hallmark-text/1 kgw-gumbel h=1 hmax=3 gamma=0.25 delta=1"),
        ),
        // Between the two: a point of the robustness / perplexity frontier.
        (
            "kgw-gumbel-h1..3-d1.5",
            hdr("hallmark-text/1 kgw-gumbel h=1 hmax=3 gamma=0.25 delta=1.5"),
        ),
        ("none", None),
    ]
}

/// The benchmark's schemes, or those named by `--only` ("none" is the unwatermarked baseline).
fn selected(a: &Args) -> Vec<(&'static str, Option<Config>)> {
    schemes()
        .into_iter()
        .filter(|(n, _)| a.only.as_ref().is_none_or(|o| o.iter().any(|x| x == n)))
        .collect()
}

fn key_for(i: usize) -> WatermarkKey {
    let mut b = [0x5au8; 32];
    b[..8].copy_from_slice(&(i as u64).to_le_bytes());
    WatermarkKey::from_bytes(b)
}

/// The text watermark benchmark: generations, attacks, detection, false positives, speed.
#[derive(clap::Parser)]
#[command(name = "text-eval")]
struct Args {
    /// What to run.
    #[arg(value_enum)]
    cmd: Cmd,
    /// The GGUF model that generates (and rewrites, and scores perplexity).
    #[arg(long, default_value = "models/SmolLM2-135M-Instruct.Q4_1.gguf")]
    model: PathBuf,
    /// The human-text corpus (scripts/fetch-text-corpus.sh).
    #[arg(long, default_value = "corpus")]
    corpus: PathBuf,
    /// Where generations and reports go.
    #[arg(long, default_value = "target/text-eval")]
    out: PathBuf,
    /// Prompts per scheme and temperature.
    #[arg(long, default_value_t = 40)]
    prompts: usize,
    /// Tokens per generation.
    #[arg(long, default_value_t = 200)]
    tokens: usize,
    /// Worker threads.
    #[arg(long, default_value_t = 2)]
    threads: usize,
    /// Keys per human document (false positives), or the most keys (`keys`).
    #[arg(long, default_value_t = 100)]
    keys: usize,
    /// Human documents per false-positive row.
    #[arg(long, default_value_t = 500)]
    docs: usize,
    /// Scheme headers, separated by `;` (`null`, `speed`).
    #[arg(long)]
    schemes: Option<String>,
    /// Only these benchmark schemes, by name, comma-separated ("none" is the baseline).
    #[arg(long, value_delimiter = ',')]
    only: Option<Vec<String>>,
    /// Other prompts (one topic per line) instead of `data/text-topics.txt`.
    #[arg(long)]
    topics: Option<PathBuf>,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum Cmd {
    /// Generate with every scheme (resumable).
    Generate,
    /// Rewrite the watermarked generations with the model (the paraphrase attack).
    Paraphrase,
    /// Detect, attack and write the report.
    Report,
    /// The false-positive table alone.
    Null,
    /// The speed table alone.
    Speed,
    /// Many keys at once: texts per second.
    Keys,
}

fn main() {
    let a = <Args as clap::Parser>::parse();
    let r = match a.cmd {
        Cmd::Generate => generate(&a),
        Cmd::Report => report(&a),
        Cmd::Null => null_only(&a),
        Cmd::Speed => speed_only(&a),
        Cmd::Keys => keys_speed(&a),
        Cmd::Paraphrase => paraphrase(&a),
    };
    if let Err(e) = r {
        eprintln!("text-eval: {e}");
        std::process::exit(1);
    }
}

type Res<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

fn topic_lines(text: &str) -> Vec<String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(String::from)
        .collect()
}

fn gen_path(a: &Args) -> PathBuf {
    a.out.join("generations.jsonl")
}

fn job_id(prompt: usize, temp: f32, scheme: &str) -> String {
    format!("{prompt}/{temp}/{scheme}")
}

fn load_generations(p: &Path) -> Vec<Value> {
    let Ok(f) = std::fs::File::open(p) else {
        return vec![];
    };
    std::io::BufReader::new(f)
        .lines()
        .map_while(Result::ok)
        .filter_map(|l| serde_json::from_str(&l).ok())
        .collect()
}

fn generate(a: &Args) -> Res<()> {
    std::fs::create_dir_all(&a.out)?;
    let done: std::collections::HashSet<String> = load_generations(&gen_path(a))
        .iter()
        .filter_map(|v| v["job"].as_str().map(String::from))
        .collect();
    let mut jobs = vec![];
    let topics: Vec<String> = match &a.topics {
        // Other prompts (one topic per line), for a held-out check: use another --out.
        Some(f) => topic_lines(&std::fs::read_to_string(f)?),
        None => topic_lines(TOPICS),
    };
    for p in 0..a.prompts.min(topics.len()) {
        for &t in &TEMPS {
            for (name, cfg) in selected(a) {
                if !done.contains(&job_id(p, t, name)) {
                    jobs.push((p, t, name, cfg));
                }
            }
        }
    }
    let total = jobs.len();
    eprintln!("{total} generations to run ({} already done)", done.len());
    let queue = Mutex::new(jobs.into_iter());
    let out = Mutex::new(
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(gen_path(a))?,
    );
    let count = std::sync::atomic::AtomicUsize::new(0);
    let t0 = std::time::Instant::now();
    std::thread::scope(|s| -> Res<()> {
        let mut hs = vec![];
        for _ in 0..a.threads.max(1) {
            hs.push(s.spawn(|| -> Res<()> {
                let mut model = Model::load(&a.model, LoadOptions::default())?;
                loop {
                    let job = queue.lock().map_err(|_| "poisoned")?.next();
                    let Some((p, t, name, cfg)) = job else {
                        return Ok(());
                    };
                    let prompt = format!("Write a few paragraphs about {}.", topics[p]);
                    let ids = model.prompt_ids(&prompt, false)?;
                    let mark = cfg.map(|c| TextMark::new(&key_for(p), c));
                    let seed = (p as u64) << 8 | u64::from((t * 10.0) as u8);
                    let mut sampler = Sampler::new(mark, seed);
                    let g = model.generate(
                        &ids,
                        &GenerateOptions {
                            max_tokens: a.tokens,
                            min_tokens: a.tokens,
                            temperature: t,
                            seed,
                        },
                        &mut sampler,
                    )?;
                    let v = json!({
                        "job": job_id(p, t, name), "prompt_index": p, "prompt": prompt,
                        "temperature": t, "scheme": name,
                        "header": cfg.map(|c| c.to_header()),
                        "prompt_ids": g.prompt_ids, "ids": g.ids, "text": g.text,
                        "nll": g.nll, "model_ms": g.model_ms, "sampler_ms": g.sampler_ms,
                    });
                    let mut f = out.lock().map_err(|_| "poisoned")?;
                    writeln!(f, "{v}")?;
                    f.flush()?;
                    let n = count.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
                    eprintln!(
                        "[{n}/{total}] {} ({:.0} s elapsed)",
                        job_id(p, t, name),
                        t0.elapsed().as_secs_f64()
                    );
                }
            }));
        }
        for h in hs {
            h.join().map_err(|_| "worker panicked")??;
        }
        Ok(())
    })
}

/// The rewrite attack: every watermarked generation (of the schemes `--only` names) rewritten
/// by the same local model, unwatermarked, at temperature 0.7, through its chat template:
/// "Rewrite the following text in your own words". Written (and resumed) to
/// `paraphrases.jsonl` beside the generations; `report` adds the row when the file exists.
fn paraphrase(a: &Args) -> Res<()> {
    let path = a.out.join("paraphrases.jsonl");
    let done: std::collections::HashSet<String> = load_generations(&path)
        .iter()
        .filter_map(|v| v["job"].as_str().map(String::from))
        .collect();
    let gens = load_generations(&gen_path(a));
    let jobs: Vec<Value> = gens
        .into_iter()
        .filter(|g| g["scheme"].as_str() != Some("none"))
        .filter(|g| {
            a.only
                .as_ref()
                .is_none_or(|o| o.iter().any(|x| Some(x.as_str()) == g["scheme"].as_str()))
        })
        .filter(|g| g["job"].as_str().is_some_and(|j| !done.contains(j)))
        .collect();
    let total = jobs.len();
    eprintln!("{total} paraphrases to run ({} already done)", done.len());
    let queue = Mutex::new(jobs.into_iter());
    let out = Mutex::new(
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)?,
    );
    let count = std::sync::atomic::AtomicUsize::new(0);
    std::thread::scope(|s| -> Res<()> {
        let mut hs = vec![];
        for _ in 0..a.threads.max(1) {
            hs.push(s.spawn(|| -> Res<()> {
                let mut model = Model::load(&a.model, LoadOptions::default())?;
                loop {
                    let job = queue.lock().map_err(|_| "poisoned")?.next();
                    let Some(g) = job else { return Ok(()) };
                    let text = g["text"].as_str().unwrap_or_default();
                    let prompt = format!(
                        "Rewrite the following text in your own words, keeping its meaning:\n\n{text}"
                    );
                    let ids = model.prompt_ids(&prompt, false)?;
                    let seed = 77 + count.load(std::sync::atomic::Ordering::Relaxed) as u64;
                    let mut sampler = Sampler::new(None, seed);
                    let r = model.generate(
                        &ids,
                        &GenerateOptions {
                            max_tokens: a.tokens + 50,
                            min_tokens: 0,
                            temperature: 0.7,
                            seed,
                        },
                        &mut sampler,
                    )?;
                    let v = json!({"job": g["job"], "text": r.text});
                    let mut f = out.lock().map_err(|_| "poisoned")?;
                    writeln!(f, "{v}")?;
                    f.flush()?;
                    let n = count.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
                    eprintln!("[{n}/{total}] {}", g["job"]);
                }
            }));
        }
        for h in hs {
            h.join().map_err(|_| "worker panicked")??;
        }
        Ok(())
    })
}

// ---------------------------------------------------------------------------------------------
// Report.

fn report(a: &Args) -> Res<()> {
    let gens = load_generations(&gen_path(a));
    if gens.is_empty() {
        return Err(format!(
            "no generations in {}: run `generate` first",
            gen_path(a).display()
        )
        .into());
    }
    let tok = TextTokenizer::from_file(&a.model)?;
    let mut md = String::new();
    let cfgs: BTreeMap<&str, Config> = selected(a)
        .into_iter()
        .filter_map(|(n, c)| c.map(|c| (n, c)))
        .collect();
    let marked: Vec<&Value> = gens
        .iter()
        .filter(|g| g["scheme"].as_str() != Some("none"))
        .collect();
    let mark_of = |g: &Value| -> Option<TextMark> {
        let p = g["prompt_index"].as_u64()? as usize;
        let c = cfgs.get(g["scheme"].as_str()?)?;
        Some(TextMark::new(&key_for(p), *c))
    };
    let ids_of = |g: &Value| -> Vec<u32> {
        g["ids"]
            .as_array()
            .map(|v| {
                v.iter()
                    .filter_map(|x| x.as_u64().map(|x| x as u32))
                    .collect()
            })
            .unwrap_or_default()
    };
    let pv = |m: &TextMark, text: &str, prompt: Option<&str>| -> f64 {
        detect_text(m, &tok, text, prompt).map_or(1.0, |d| d.detection.p_value)
    };

    // Power.
    md.push_str(&format!(
        "### Power: detection rate at p < 0.001 ({} prompts, one key each; text decoded, re-tokenized, prompt excluded)\n\n",
        a.prompts
    ));
    md.push_str("| scheme | temperature | 100 tokens | 200 tokens | median p (200) | target |\n|---|---|---|---|---|---|\n");
    for name in cfgs.keys() {
        for &t in &TEMPS {
            let sel: Vec<&&Value> = marked.iter().filter(|g| is_run(g, name, t)).collect();
            if sel.is_empty() {
                continue;
            }
            let mut row = format!("| {name} | {t} |");
            let mut med = 1.0;
            let mut rates = vec![];
            for n in [100usize, 200] {
                let mut ps: Vec<f64> = sel
                    .iter()
                    .filter_map(|g| {
                        let m = mark_of(g)?;
                        let ids = ids_of(g);
                        let text = tok.decode(&ids[..n.min(ids.len())]).ok()?;
                        Some(pv(&m, &text, g["prompt"].as_str()))
                    })
                    .collect();
                let hits = ps.iter().filter(|&&p| p < 1e-3).count();
                rates.push(hits as f64 / ps.len().max(1) as f64);
                row.push_str(&format!(
                    " {hits}/{} = {:.3} |",
                    ps.len(),
                    hits as f64 / ps.len().max(1) as f64
                ));
                ps.sort_by(f64::total_cmp);
                med = ps.get(ps.len() / 2).copied().unwrap_or(1.0);
            }
            let ok = rates[0] >= 0.95 && rates[1] >= 0.99;
            row.push_str(&format!(
                " {med:.1e} | {} (>=0.95 / >=0.99) |\n",
                if ok { "met" } else { "MISSED" }
            ));
            md.push_str(&row);
        }
    }

    // Perplexity.
    md.push_str("\n### Quality: perplexity of the generated tokens under the same model (mean over prompts)\n\n| scheme | temperature | perplexity | vs. unwatermarked |\n|---|---|---|---|\n");
    let ppl = |name: &str, t: f32| -> Option<f64> {
        let v: Vec<f64> = gens
            .iter()
            .filter(|g| is_run(g, name, t))
            .filter_map(|g| {
                let n: Vec<f64> = g["nll"]
                    .as_array()?
                    .iter()
                    .filter_map(Value::as_f64)
                    .collect();
                (!n.is_empty()).then(|| (n.iter().sum::<f64>() / n.len() as f64).exp())
            })
            .collect();
        (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
    };
    for &t in &TEMPS {
        let base = ppl("none", t);
        for (name, _) in selected(a) {
            if let Some(p) = ppl(name, t) {
                let rel = base
                    .map(|b| format!("{:+.1}%", 100.0 * (p / b - 1.0)))
                    .unwrap_or_default();
                md.push_str(&format!("| {name} | {t} | {p:.2} | {rel} |\n"));
            }
        }
    }

    // False positives on human text.
    md.push_str(&null_table(a, &tok, &cfgs)?);

    // Robustness.
    md.push_str(
        "\n### Robustness at 200 tokens: detection rate at p < 0.001 after edits (seeded)\n\n",
    );
    let vocab = word_vocab(a)?;
    let attacks: Vec<(&str, Box<Attack<'_>>)> = vec![
        ("none", Box::new(|t: &str, _: &mut StdRng| t.to_string())),
        (
            "substitute 30% of words",
            Box::new(|t: &str, r: &mut StdRng| edit_words(t, r, 0.3, Edit::Substitute, &vocab)),
        ),
        (
            "delete 30% of words",
            Box::new(|t: &str, r: &mut StdRng| edit_words(t, r, 0.3, Edit::Delete, &vocab)),
        ),
        (
            "insert 30% more words",
            Box::new(|t: &str, r: &mut StdRng| edit_words(t, r, 0.3, Edit::Insert, &vocab)),
        ),
        (
            "lower-case",
            Box::new(|t: &str, _: &mut StdRng| t.to_lowercase()),
        ),
        (
            "capitals (shouted)",
            Box::new(|t: &str, _: &mut StdRng| t.to_uppercase()),
        ),
        (
            "title case",
            Box::new(|t: &str, _: &mut StdRng| title_case(t)),
        ),
        (
            "first letter of every sentence changed",
            Box::new(|t: &str, _: &mut StdRng| toggle_sentence_starts(t)),
        ),
        (
            "double spaces and newlines",
            Box::new(|t: &str, _: &mut StdRng| t.replace(' ', "  ").replace('\n', "\n\n")),
        ),
        (
            "collapse whitespace to single spaces",
            Box::new(|t: &str, _: &mut StdRng| t.split_whitespace().collect::<Vec<_>>().join(" ")),
        ),
    ];
    md.push_str("| attack |");
    let mut cols = vec![];
    for name in cfgs.keys() {
        for &t in &TEMPS {
            md.push_str(&format!(" {name} T={t} |"));
            cols.push((*name, t));
        }
    }
    md.push_str(" target |\n|---|");
    for _ in &cols {
        md.push_str("---|");
    }
    md.push_str("---|\n");
    for (ai, (aname, f)) in attacks.iter().enumerate() {
        md.push_str(&format!("| {aname} |"));
        // Per scheme: does it reach the target at every temperature?
        let mut ok_by: BTreeMap<&str, bool> = BTreeMap::new();
        for (name, t) in &cols {
            let sel: Vec<&&Value> = marked.iter().filter(|g| is_run(g, name, *t)).collect();
            let mut hits = 0;
            for (i, g) in sel.iter().enumerate() {
                let Some(m) = mark_of(g) else { continue };
                let text = g["text"].as_str().unwrap_or_default();
                let mut rng = StdRng::seed_from_u64(1000 * ai as u64 + i as u64);
                let attacked = f(text, &mut rng);
                hits += usize::from(pv(&m, &attacked, g["prompt"].as_str()) < 1e-3);
            }
            let rate = hits as f64 / sel.len().max(1) as f64;
            *ok_by.entry(name).or_insert(true) &= rate >= 0.9;
            md.push_str(&format!(" {hits}/{} = {rate:.2} |", sel.len()));
        }
        let met: Vec<&str> = ok_by.iter().filter(|e| *e.1).map(|e| *e.0).collect();
        let status = if ai == 0 {
            String::new()
        } else if met.len() == ok_by.len() {
            "met by every scheme (>=0.9)".to_string()
        } else if met.is_empty() {
            "MISSED by every scheme (>=0.9)".to_string()
        } else {
            format!("met (>=0.9 at both temperatures) by {}", met.join(", "))
        };
        md.push_str(&format!(" {status} |\n"));
    }

    // The rewrite attack, when `paraphrase` has run.
    let paras: BTreeMap<String, String> = load_generations(&a.out.join("paraphrases.jsonl"))
        .iter()
        .filter_map(|v| {
            Some((
                v["job"].as_str()?.to_string(),
                v["text"].as_str()?.to_string(),
            ))
        })
        .collect();
    if !paras.is_empty() {
        md.push_str("| rewritten by the model (\"in your own words\", T=0.7, unwatermarked) |");
        for (name, t) in &cols {
            let sel: Vec<&&Value> = marked.iter().filter(|g| is_run(g, name, *t)).collect();
            let (mut hits, mut n) = (0, 0);
            for g in &sel {
                let (Some(m), Some(text)) =
                    (mark_of(g), g["job"].as_str().and_then(|j| paras.get(j)))
                else {
                    continue;
                };
                n += 1;
                hits += usize::from(pv(&m, text, g["prompt"].as_str()) < 1e-3);
            }
            md.push_str(&format!(
                " {hits}/{n} = {:.2} |",
                hits as f64 / n.max(1) as f64
            ));
        }
        md.push_str(" no target yet |\n");
    }

    // Localisation.
    md.push_str(&localisation(a, &tok, &marked, &mark_of)?);

    // Speed.
    md.push_str("\n### Speed\n\n");
    let per_tok = |name: &str, field: &str| -> f64 {
        let (mut ms, mut n) = (0.0, 0usize);
        for g in gens.iter().filter(|g| g["scheme"].as_str() == Some(name)) {
            ms += g[field].as_f64().unwrap_or(0.0);
            n += g["ids"].as_array().map_or(0, Vec::len);
        }
        ms / n.max(1) as f64
    };
    let model = per_tok("none", "model_ms");
    let plain = per_tok("none", "sampler_ms");
    md.push_str(&format!(
        "Model forward pass: {model:.1} ms per token ({:.1} tokens/s, f32 weights, one process of {} running).\n\n| sampler | ms per step | watermark overhead (vs. plain sampling) | share of the model's step | target |\n|---|---|---|---|---|\n| plain | {plain:.3} | | | |\n",
        1000.0 / model.max(1e-9),
        a.threads
    ));
    for name in cfgs.keys() {
        let s = per_tok(name, "sampler_ms");
        let over = (s - plain).max(0.0);
        md.push_str(&format!(
            "| {name} | {s:.3} | {over:.3} ms | {:.2}% | {} (<=2%) |\n",
            100.0 * over / model.max(1e-9),
            if over / model.max(1e-9) <= 0.02 {
                "met"
            } else {
                "MISSED"
            }
        ));
    }
    md.push_str(&detection_speed(&cfgs));
    std::fs::write(a.out.join("report.md"), &md)?;
    print!("{md}");
    Ok(())
}

/// A text edit: the text and a seeded RNG in, the edited text out.
type Attack<'a> = dyn Fn(&str, &mut StdRng) -> String + 'a;

/// Only the false-positive table, for any schemes (`--schemes "hallmark-text/1 gumbel h=2;..."`):
/// needs no generations, so scheme parameters can be checked against human text cheaply.
fn null_only(a: &Args) -> Res<()> {
    let tok = TextTokenizer::from_file(&a.model)?;
    let cfgs = scheme_headers(a)?;
    let cfgs: BTreeMap<&str, Config> = cfgs.iter().map(|(h, c)| (h.as_str(), *c)).collect();
    print!("{}", null_table(a, &tok, &cfgs)?);
    Ok(())
}

/// Only the detection-speed table, for any schemes.
fn speed_only(a: &Args) -> Res<()> {
    let cfgs = scheme_headers(a)?;
    print!(
        "{}",
        detection_speed(&cfgs.iter().map(|(h, c)| (h.as_str(), *c)).collect())
    );
    Ok(())
}

/// Many keys at once: texts per second for `detect_text_keys` (one tokenisation per case
/// reading, key-independent bookkeeping shared) with 1 to 1,000 keys of the default scheme,
/// on 200-token human texts from the corpus (`--docs` of them; one core). The key-by-key
/// loop (`detect_text` per key) is timed beside it up to 100 keys.
fn keys_speed(a: &Args) -> Res<()> {
    let tok = TextTokenizer::from_file(&a.model)?;
    let docs = read_jsonl(&a.corpus.join("null.jsonl"))?;
    let texts: Vec<String> = docs
        .iter()
        .filter(|d| d["row"].as_str() == Some("prose"))
        .filter_map(|d| d["text"].as_str())
        .filter_map(|t| {
            let ids = tok.encode(t).ok()?.ids;
            (ids.len() >= 200)
                .then(|| tok.decode(&ids[..200]).ok())
                .flatten()
        })
        .take(a.docs.min(200))
        .collect();
    let mut out = format!(
        "\n### Many keys at once: 200-token texts per second, one core ({} human texts, default scheme)\n\n| keys | detect_text_keys (shared) texts/s | key by key texts/s | speed-up |\n|---|---|---|---|\n",
        texts.len()
    );
    for n in [1usize, 10, 100, 1000] {
        let marks: Vec<TextMark> = (0..n)
            .map(|i| TextMark::new(&key_for(5_000_000 + i), Config::gumbel()))
            .collect();
        let refs: Vec<&TextMark> = marks.iter().collect();
        let t0 = std::time::Instant::now();
        for t in &texts {
            let _ = hallmark_lm::detect_text_keys(&refs, &tok, t, None);
        }
        let shared = texts.len() as f64 / t0.elapsed().as_secs_f64();
        let one = if n <= 100 {
            let t0 = std::time::Instant::now();
            for t in &texts {
                for m in &marks {
                    let _ = detect_text(m, &tok, t, None);
                }
            }
            let r = texts.len() as f64 / t0.elapsed().as_secs_f64();
            (format!("{r:.1}"), format!("{:.1}x", shared / r))
        } else {
            ("(not run)".into(), String::new())
        };
        out.push_str(&format!("| {n} | {shared:.1} | {} | {} |\n", one.0, one.1));
    }
    print!("{out}");
    Ok(())
}

/// `--schemes "HEADER;HEADER"`, else every scheme of the benchmark, by header.
fn scheme_headers(a: &Args) -> Res<Vec<(String, Config)>> {
    let headers: Vec<String> = match &a.schemes {
        Some(s) => s
            .split(';')
            .map(|h| h.trim().to_string())
            .filter(|h| !h.is_empty())
            .collect(),
        None => schemes()
            .into_iter()
            .filter_map(|(_, c)| c.map(|c| c.to_header()))
            .collect(),
    };
    headers
        .into_iter()
        .map(|h| Config::from_header(&h).map(|c| (h, c)).map_err(Into::into))
        .collect()
}

fn detection_speed(cfgs: &BTreeMap<&str, Config>) -> String {
    let mut out = String::from(
        "\nDetection on token ids, one core (random ids over a 49,152 vocabulary):\n\n| scheme | document length | tokens/s | target |\n|---|---|---|---|\n",
    );
    let mut rng = StdRng::seed_from_u64(5);
    let ids: Vec<u32> = (0..1_000_000)
        .map(|_| rng.gen_range(0..49_152u32))
        .collect();
    for (name, c) in cfgs {
        let m = TextMark::new(&key_for(0), *c);
        for len in [200usize, 2_000, 100_000] {
            let reps = (2_000_000 / len).max(1);
            let t0 = std::time::Instant::now();
            let mut acc = 0.0;
            for r in 0..reps {
                let s = (r * 7919) % (ids.len() - len);
                acc += m.detect(&ids[s..s + len], 0).map_or(0.0, |d| d.p_value);
            }
            let rate = (reps * len) as f64 / t0.elapsed().as_secs_f64();
            std::hint::black_box(acc);
            out.push_str(&format!(
                "| {name} | {len} | {:.1} M | {} (>=10 M) |\n",
                rate / 1e6,
                if rate >= 1e7 { "met" } else { "MISSED" }
            ));
        }
    }
    out
}

/// Whether generation record `g` used scheme `name` at temperature `t`.
fn is_run(g: &Value, name: &str, t: f32) -> bool {
    g["scheme"].as_str() == Some(name)
        && g["temperature"]
            .as_f64()
            .is_some_and(|x| (x - f64::from(t)).abs() < 1e-6)
}

fn read_jsonl(p: &Path) -> Res<Vec<Value>> {
    let f = std::fs::File::open(p)
        .map_err(|e| format!("{}: {e} (run scripts/fetch-text-corpus.sh)", p.display()))?;
    Ok(std::io::BufReader::new(f)
        .lines()
        .map_while(Result::ok)
        .filter_map(|l| serde_json::from_str(&l).ok())
        .collect())
}

/// Upper end of the one-sided 95% Clopper-Pearson interval for x successes in n trials.
fn cp_upper(x: usize, n: usize) -> f64 {
    if x >= n {
        return 1.0;
    }
    // P(X <= x | p) = 0.05, solved by bisection.
    let cdf = |p: f64| 1.0 - hallmark_core::stats::binomial_sf(x as u64 + 1, n as u64, p);
    let (mut lo, mut hi) = (x as f64 / n as f64, 1.0);
    for _ in 0..60 {
        let mid = 0.5 * (lo + hi);
        if cdf(mid) > 0.05 {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    hi
}

/// Every word's first letter capitalised, the rest lower-case.
fn title_case(t: &str) -> String {
    let mut out = String::with_capacity(t.len());
    let mut word_start = true;
    for c in t.chars() {
        if c.is_alphabetic() {
            if word_start {
                out.extend(c.to_uppercase());
            } else {
                out.extend(c.to_lowercase());
            }
            word_start = false;
        } else {
            out.push(c);
            word_start = c.is_whitespace() || c == '-' || c == '"' || c == '(';
        }
    }
    out
}

/// The first letter of every sentence in the other case (what some reposting tools and
/// phone keyboards do).
fn toggle_sentence_starts(t: &str) -> String {
    t.chars()
        .zip(hallmark_lm::sentence_start_letters(t))
        .flat_map(|(c, start)| -> Vec<char> {
            match (start, c.is_uppercase()) {
                (false, _) => vec![c],
                (true, true) => c.to_lowercase().collect(),
                (true, false) => c.to_uppercase().collect(),
            }
        })
        .collect()
}

fn null_table(a: &Args, tok: &TextTokenizer, cfgs: &BTreeMap<&str, Config>) -> Res<String> {
    let docs = read_jsonl(&a.corpus.join("null.jsonl"))?;
    let mut rows: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for d in &docs {
        if let (Some(r), Some(t)) = (d["row"].as_str(), d["text"].as_str()) {
            rows.entry(r.to_string()).or_default().push(t.to_string());
        }
    }
    let mut derived: Vec<(String, Vec<String>)> = vec![];
    let prose: Vec<String> = ["prose", "reference", "python-docs"]
        .iter()
        .flat_map(|r| rows.get(*r).cloned().unwrap_or_default())
        .collect();
    // Very short texts: the first 50 tokens of prose documents.
    let short: Vec<String> = pick(&prose, a.docs, 11)
        .iter()
        .filter_map(|t| {
            let ids = tok.encode(t).ok()?.ids;
            tok.decode(&ids[..50.min(ids.len())]).ok()
        })
        .collect();
    derived.push(("very short (50 tokens)".into(), short));
    // Human text shouted: the detector's case search must not raise false positives.
    derived.push((
        "prose in capitals".into(),
        pick(&prose, a.docs, 14)
            .iter()
            .map(|t| t.to_uppercase())
            .collect(),
    ));
    derived.push((
        "prose in title case".into(),
        pick(&prose, a.docs, 15)
            .iter()
            .map(|t| title_case(t))
            .collect(),
    ));
    // Stress: a paragraph repeated 4 times; a sentence repeated 20 times.
    let paras: Vec<String> = prose
        .iter()
        .flat_map(|t| t.split("\n\n").map(str::to_string).collect::<Vec<_>>())
        .filter(|p| p.split_whitespace().count() >= 40)
        .collect();
    // Repeated human text: the same unit `times` times over.
    let repeated = |units: &[String], times: usize, sep: &str, seed: u64| -> Vec<String> {
        pick(units, a.docs, seed)
            .iter()
            .map(|u| vec![u.as_str(); times].join(sep))
            .collect()
    };
    derived.push((
        "stress: paragraph x4".into(),
        repeated(&paras, 4, "\n\n", 12),
    ));
    let sentences: Vec<String> = prose
        .iter()
        .flat_map(|t| {
            t.split(". ")
                .map(|s| format!("{}.", s.trim_end_matches('.')))
                .collect::<Vec<_>>()
        })
        .filter(|s| s.split_whitespace().count() >= 8)
        .collect();
    derived.push((
        "stress: sentence x20".into(),
        repeated(&sentences, 20, " ", 13),
    ));
    let mut out = format!(
        "\n### False positives on human text (Debian packages; {} keys per document, every trial its own key; up to {} documents per row)\n\n| row | scheme | trials | mean tokens scored | FPR at p < 0.01 | FPR at p < 0.001 | 95% upper bound | target |\n|---|---|---|---|---|---|---|---|\n",
        a.keys, a.docs
    );
    let mut all: Vec<(String, Vec<String>)> = rows
        .iter()
        .map(|(r, v)| (r.clone(), pick(v, a.docs, 10)))
        .collect();
    all.extend(derived);
    let (mut n_rows, mut n_chance_misses) = (0usize, 0usize);
    for (row, texts) in &all {
        // As `detect_text` reads a text: every distinct case reading, the best p-value times
        // their number. Tokenized once per document, scored once per key.
        let encoded: Vec<Vec<Vec<u32>>> = texts
            .iter()
            .map(|t| {
                hallmark_lm::case_readings(&hallmark_lm::canonical_whitespace(t).0)
                    .into_iter()
                    .filter_map(|(_, r)| tok.encode(&r).ok().map(|e| e.ids))
                    .collect::<Vec<_>>()
            })
            .filter(|v| !v.is_empty())
            .collect();
        for (name, c) in cfgs {
            let (mut n, mut h2, mut h3, mut scored) = (0usize, 0usize, 0usize, 0usize);
            // Every trial has its own key: one key shared across documents would correlate
            // their p-values (common word pairs get the same keyed score in every document),
            // and the confidence bound below assumes independent trials.
            for k in 0..a.keys {
                for (j, readings) in encoded.iter().enumerate() {
                    let m = TextMark::new(&key_for(1_000_000 + k * encoded.len() + j), *c);
                    let mut best: Option<hallmark::text::Detection> = None;
                    for ids in readings {
                        let Ok(d) = m.detect(ids, 0) else { continue };
                        if best.as_ref().is_none_or(|b| d.p_value < b.p_value) {
                            best = Some(d);
                        }
                    }
                    let Some(d) = best else { continue };
                    let p = (d.p_value * readings.len() as f64).min(1.0);
                    n += 1;
                    scored += d.tokens_scored;
                    h2 += usize::from(p < 1e-2);
                    h3 += usize::from(p < 1e-3);
                }
            }
            let up = cp_upper(h3, n);
            // An exact test has a false-positive rate of 0.1% at p < 0.001 by construction, so
            // measured rates scatter around that line: a point estimate above it is called a
            // miss only when 0.1% itself would rarely produce that many detections.
            let chance = hallmark_core::stats::binomial_sf(h3 as u64, n as u64, 0.001);
            n_rows += 1;
            let status = if up >= 0.003 {
                "MISSED".to_string()
            } else if (h3 as f64) <= 0.001 * n as f64 {
                "met".to_string()
            } else if chance >= 0.05 {
                format!("met within sampling error (P = {chance:.2} at exactly 0.1%)")
            } else {
                n_chance_misses += 1;
                format!("MISSED (P = {chance:.3} at exactly 0.1%)")
            };
            out.push_str(&format!(
                "| {row} | {name} | {n} | {:.0} | {:.2}% | {:.3}% | {:.3}% | {} |\n",
                scored as f64 / n.max(1) as f64,
                100.0 * h2 as f64 / n.max(1) as f64,
                100.0 * h3 as f64 / n.max(1) as f64,
                100.0 * up,
                status
            ));
        }
    }
    // Rows are many: an exact test puts some above 0.1% with a small P by chance alone.
    out.push_str(&format!(
        "\n{n_chance_misses} of {n_rows} rows read above 0.1% with P < 0.05 at exactly 0.1%; an exact test flags up to about {:.1} rows that way by chance (5% of them).\n",
        0.05 * n_rows as f64
    ));
    Ok(out)
}

fn word_vocab(a: &Args) -> Res<Vec<String>> {
    let docs = read_jsonl(&a.corpus.join("null.jsonl"))?;
    let mut v: Vec<String> = docs
        .iter()
        .filter(|d| d["row"].as_str() == Some("prose"))
        .filter_map(|d| d["text"].as_str())
        .flat_map(|t| t.split_whitespace().map(str::to_string).collect::<Vec<_>>())
        .collect();
    v.sort();
    v.dedup();
    Ok(v)
}

#[derive(Clone, Copy)]
enum Edit {
    Substitute,
    Delete,
    Insert,
}

/// Edits a random `frac` of the words (whitespace-separated; the result is joined with single
/// spaces, newlines kept as paragraph breaks).
fn edit_words(text: &str, rng: &mut StdRng, frac: f64, e: Edit, vocab: &[String]) -> String {
    let paras: Vec<String> = text
        .split('\n')
        .map(|line| {
            let mut out: Vec<String> = vec![];
            for w in line.split_whitespace() {
                let hit = rng.gen_bool(frac);
                match (hit, e) {
                    (false, _) => out.push(w.to_string()),
                    (true, Edit::Substitute) => {
                        out.push(vocab[rng.gen_range(0..vocab.len())].clone())
                    }
                    (true, Edit::Delete) => {}
                    (true, Edit::Insert) => {
                        out.push(w.to_string());
                        out.push(vocab[rng.gen_range(0..vocab.len())].clone());
                    }
                }
            }
            out.join(" ")
        })
        .collect();
    paras.join("\n")
}

fn localisation(
    a: &Args,
    tok: &TextTokenizer,
    marked: &[&Value],
    mark_of: &dyn Fn(&Value) -> Option<TextMark>,
) -> Res<String> {
    let long = read_jsonl(&a.corpus.join("long.jsonl"))?;
    let long: Vec<String> = long
        .iter()
        .filter_map(|d| d["text"].as_str().map(String::from))
        .collect();
    if long.is_empty() {
        return Err("long.jsonl is empty".into());
    }
    let mut out = String::from(
        "\n### Localisation: a 200-token watermarked passage pasted into a 2,000-word human document\n\n| scheme | found (corrected p < 0.001, span overlaps the passage) | mean overlap (IoU of characters) | human documents alone with a span |\n|---|---|---|---|\n",
    );
    let schemes: Vec<&str> = {
        let mut s: Vec<&str> = marked.iter().filter_map(|g| g["scheme"].as_str()).collect();
        s.sort();
        s.dedup();
        s
    };
    for name in schemes {
        let sel: Vec<&&Value> = marked
            .iter()
            .filter(|g| g["scheme"].as_str() == Some(name))
            .collect();
        // Generations of schemes no longer in the benchmark have no detector here.
        if sel.first().and_then(|g| mark_of(g)).is_none() {
            continue;
        }
        let (mut found, mut iou_sum, mut false_docs) = (0usize, 0.0, 0usize);
        for (i, g) in sel.iter().enumerate() {
            let Some(m) = mark_of(g) else { continue };
            let doc = &long[i % long.len()];
            let paras: Vec<&str> = doc.split("\n\n").collect();
            let cut = paras.len() / 2;
            let before = paras[..cut].join("\n\n");
            let after = paras[cut..].join("\n\n");
            let passage = g["text"].as_str().unwrap_or_default().trim();
            let s0 = before.chars().count() + 2;
            let s1 = s0 + passage.chars().count();
            let full = format!("{before}\n\n{passage}\n\n{after}");
            let Ok(d) = detect_text(&m, tok, &full, None) else {
                continue;
            };
            let hit = d.detection.p_value < 1e-3
                && d.char_spans
                    .iter()
                    .any(|s| s.start < s1 && s.end > s0 && s.p_value < 1e-3);
            if hit {
                found += 1;
                // IoU of the union of spans with the passage.
                let inter: usize = d
                    .char_spans
                    .iter()
                    .map(|s| s.end.min(s1).saturating_sub(s.start.max(s0)))
                    .sum();
                let span_len: usize = d.char_spans.iter().map(|s| s.end - s.start).sum();
                iou_sum += inter as f64 / (span_len + (s1 - s0) - inter) as f64;
            }
            if detect_text(&m, tok, doc, None).is_ok_and(|d| !d.char_spans.is_empty()) {
                false_docs += 1;
            }
        }
        out.push_str(&format!(
            "| {name} | {found}/{} = {:.2} | {:.2} | {false_docs}/{} |\n",
            sel.len(),
            found as f64 / sel.len().max(1) as f64,
            iou_sum / found.max(1) as f64,
            sel.len()
        ));
    }
    Ok(out)
}

fn pick<T: Clone>(v: &[T], n: usize, seed: u64) -> Vec<T> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut v = v.to_vec();
    v.shuffle(&mut rng);
    v.truncate(n);
    v
}
