//! `hallmark label`: stamp a folder tree into a mirror, in parallel, resumably.
//!
//! Crash safety: each output is written atomically (temp file + rename) *before* its journal
//! line is appended and flushed, so after a kill every journal entry names a complete output
//! and an interrupted file is simply redone on `--resume` (its rename replaces, never
//! duplicates).

use std::{
    collections::HashSet,
    fs,
    io::{BufRead, IsTerminal, Write},
    path::{Path, PathBuf},
    sync::{
        Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::Instant,
};

use anyhow::{Context, Result, bail};
use serde_json::json;
use sha2::{Digest, Sha256};

pub const JOURNAL: &str = ".hallmark-journal.jsonl";
pub const REPORT: &str = "report.jsonl";

#[derive(clap::Args, Debug)]
pub struct LabelArgs {
    /// Folder to label (ignore files such as .gitignore and .ignore are honoured).
    dir: PathBuf,
    /// Where the labelled tree is written.
    #[arg(long, required_unless_present = "in_place")]
    out_dir: Option<PathBuf>,
    /// Replace the originals with their stamped versions (requires --backup).
    #[arg(long, conflicts_with = "out_dir")]
    in_place: bool,
    /// With --in-place: keep each original as NAME.orig beside it (and stamp from it on
    /// --resume, never stamping a file twice).
    #[arg(long, requires = "in_place")]
    backup: bool,
    /// Keys folder written by `hallmark keygen`.
    #[arg(long)]
    keys: PathBuf,
    /// Generating model recorded in every manifest.
    #[arg(long)]
    model: Option<String>,
    /// The model's version.
    #[arg(long, requires = "model")]
    model_version: Option<String>,
    /// Parallel jobs (default: all cores).
    #[arg(short = 'j', long, default_value_t = 0)]
    jobs: usize,
    /// Continue an interrupted run: skip files the journal says are done.
    #[arg(long)]
    resume: bool,
    /// List what would be done, write nothing.
    #[arg(long)]
    dry_run: bool,
    /// Process only shard I of N (0-based), e.g. `--shard 2/8`.
    #[arg(long, value_name = "I/N")]
    shard: Option<String>,
    /// Take the shard from JOB_COMPLETION_INDEX (with --shard-count) or
    /// SLURM_ARRAY_TASK_ID/SLURM_ARRAY_TASK_COUNT.
    #[arg(long, conflicts_with = "shard")]
    shard_from_env: bool,
    /// Number of shards when the index comes from JOB_COMPLETION_INDEX.
    #[arg(long)]
    shard_count: Option<u64>,
    /// Append a signed record of every stamp to this ledger file.
    #[arg(long)]
    ledger: Option<PathBuf>,
    /// Skip reading the watermark back from each output, and so the stronger re-embedding of
    /// outputs where it does not read (saves a decode and a detection per file).
    #[arg(long)]
    no_check: bool,
    /// Skip checking that each output's watermark survives a WebP quality-50 round trip, and
    /// so the stronger re-embedding of (mostly flat) pictures where it does not (saves a
    /// WebP encode, a decode and a detection per file).
    #[arg(long)]
    no_webp_check: bool,
}

/// Every regular file under `dir` (ignore files honoured), with its path relative to `dir`,
/// sorted so runs and shards are deterministic.
pub fn walk_images(dir: &Path) -> Result<Vec<(PathBuf, PathBuf)>> {
    walk(dir, true)
}

fn walk(dir: &Path, respect_ignore: bool) -> Result<Vec<(PathBuf, PathBuf)>> {
    let mut out = vec![];
    let mut b = ignore::WalkBuilder::new(dir);
    if !respect_ignore {
        b.standard_filters(false);
    }
    for entry in b.build() {
        let entry = entry.with_context(|| format!("cannot walk {}", dir.display()))?;
        if entry.file_type().is_some_and(|t| t.is_file()) {
            let p = entry.into_path();
            let rel = p.strip_prefix(dir).unwrap_or(&p).to_path_buf();
            out.push((p, rel));
        }
    }
    out.sort_by(|a, b| a.1.cmp(&b.1));
    Ok(out)
}

fn parse_shard(a: &LabelArgs) -> Result<Option<(u64, u64)>> {
    let (i, n) = if let Some(s) = &a.shard {
        let (i, n) = s.split_once('/').context("--shard takes I/N, e.g. 0/4")?;
        (i.trim().parse::<u64>()?, n.trim().parse::<u64>()?)
    } else if a.shard_from_env {
        let env = |k: &str| std::env::var(k).ok().and_then(|v| v.parse::<u64>().ok());
        if let (Some(i), Some(n)) = (env("SLURM_ARRAY_TASK_ID"), env("SLURM_ARRAY_TASK_COUNT")) {
            let min = env("SLURM_ARRAY_TASK_MIN").unwrap_or(0);
            (i - min.min(i), n)
        } else if let Some(i) = env("JOB_COMPLETION_INDEX") {
            let n = a.shard_count.context(
                "JOB_COMPLETION_INDEX is set: give the number of shards with --shard-count",
            )?;
            (i, n)
        } else {
            bail!(
                "--shard-from-env: neither SLURM_ARRAY_TASK_ID/COUNT nor JOB_COMPLETION_INDEX is set"
            );
        }
    } else {
        return Ok(None);
    };
    if n == 0 || i >= n {
        bail!("shard {i}/{n} is out of range (I must be below N)");
    }
    Ok(Some((i, n)))
}

fn in_shard(rel: &Path, shard: Option<(u64, u64)>) -> bool {
    let Some((i, n)) = shard else { return true };
    let h = Sha256::digest(rel.to_string_lossy().as_bytes());
    let v = u64::from_be_bytes([h[0], h[1], h[2], h[3], h[4], h[5], h[6], h[7]]);
    v % n == i
}

pub fn label(json_out: bool, quiet: bool, a: &LabelArgs) -> Result<i32> {
    let start = Instant::now();
    if !a.dir.is_dir() {
        bail!("{} is not a folder", a.dir.display());
    }
    if a.in_place && !a.backup {
        bail!("--in-place replaces your originals: add --backup to keep each as NAME.orig");
    }
    let out_dir: PathBuf = match &a.out_dir {
        Some(d) => d.clone(),
        None => a.dir.clone(),
    };
    let shard = parse_shard(a)?;
    let all = walk_images(&a.dir)?;
    let out_canon = if a.in_place {
        None
    } else {
        fs::canonicalize(&out_dir).ok()
    };
    let todo: Vec<(PathBuf, PathBuf)> = all
        .into_iter()
        .filter(|(p, _)| {
            // Never descend into our own output when it sits inside the input.
            out_canon
                .as_ref()
                .is_none_or(|o| !fs::canonicalize(p).is_ok_and(|c| c.starts_with(o)))
        })
        .filter(|(p, rel)| {
            // In place, the backups and our report are not inputs.
            !a.in_place || !(p.extension().is_some_and(|e| e == "orig") || rel == Path::new(REPORT))
        })
        .filter(|(_, rel)| in_shard(rel, shard))
        .collect();
    if a.dry_run {
        for (p, rel) in &todo {
            if json_out {
                println!(
                    "{}",
                    json!({"file": p.display().to_string(), "output": out_dir.join(rel).display().to_string(), "action": "stamp"})
                );
            } else {
                println!(
                    "would stamp {} -> {}",
                    p.display(),
                    out_dir.join(rel).display()
                );
            }
        }
        if !quiet {
            eprintln!("dry run: {} files", todo.len());
        }
        return Ok(0);
    }
    fs::create_dir_all(&out_dir).with_context(|| format!("cannot create {}", out_dir.display()))?;
    let journal_path = out_dir.join(JOURNAL);
    let mut done: HashSet<String> = HashSet::new();
    let mut previous: Vec<serde_json::Value> = vec![];
    if journal_path.exists() {
        if !a.resume {
            bail!(
                "{} holds a journal from an earlier run: pass --resume to continue it, or choose an empty --out-dir",
                out_dir.display()
            );
        }
        let f = fs::File::open(&journal_path)?;
        for line in std::io::BufReader::new(f).lines() {
            let line = line?;
            // A torn last line (killed mid-write) is ignored: that file is redone.
            let Ok(v) = serde_json::from_str::<serde_json::Value>(&line) else {
                continue;
            };
            if let Some(rel) = v.get("rel").and_then(|r| r.as_str())
                && v.get("status").and_then(|s| s.as_str()) != Some("failed")
            {
                done.insert(rel.to_string());
                previous.push(v);
            }
        }
        // Leftover temporary files from a killed run.
        for (p, _) in walk(&out_dir, false).unwrap_or_default() {
            if p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(".hallmark-") && n.ends_with(".tmp"))
            {
                let _ = fs::remove_file(p);
            }
        }
    }
    let model = a.model.as_ref().map(|n| hallmark::c2pa::Model {
        name: n.clone(),
        version: a.model_version.clone(),
    });
    let mut stamper = crate::stamper(&a.keys, model, None)?;
    stamper.check_readback = !a.no_check;
    if a.no_webp_check {
        stamper.checks = hallmark::Checks::none();
    }
    let ledger_w = match &a.ledger {
        Some(p) => {
            crate::ledger::ensure_parent(p)?;
            Some(Mutex::new(crate::ledger::LedgerWriter::open(
                p,
                stamper.signer(),
            )?))
        }
        None => None,
    };
    let mut journal = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&journal_path)
        .with_context(|| format!("cannot open the journal {}", journal_path.display()))?;
    // Make sure the journal ends with a newline before appending (a torn line stays apart).
    if fs::metadata(&journal_path).map(|m| m.len()).unwrap_or(0) > 0 {
        let _ = journal.write_all(b"\n");
    }
    let journal = Mutex::new(journal);
    let pending: Vec<&(PathBuf, PathBuf)> = todo
        .iter()
        .filter(|(_, rel)| !done.contains(&rel.to_string_lossy().into_owned()))
        .collect();
    let bar = if !quiet && std::io::stderr().is_terminal() {
        let b = indicatif::ProgressBar::new(pending.len() as u64);
        b.set_style(
            indicatif::ProgressStyle::with_template(
                "{bar:40} {pos}/{len} {per_sec} eta {eta} {wide_msg}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        Some(b)
    } else {
        None
    };
    let ok = AtomicUsize::new(0);
    let unreadable = AtomicUsize::new(0);
    let failed = Mutex::new(Vec::<(String, String)>::new());
    let skipped = AtomicUsize::new(0);
    let fatal = Mutex::new(None::<String>);
    let jobs = if a.jobs == 0 {
        std::thread::available_parallelism().map_or(1, |n| n.get())
    } else {
        a.jobs
    };
    let pool = rayon::ThreadPoolBuilder::new().num_threads(jobs).build()?;
    pool.install(|| {
        use rayon::prelude::*;
        pending.par_iter().for_each(|(path, rel)| {
            if fatal.lock().map(|f| f.is_some()).unwrap_or(true) {
                return;
            }
            let rel_s = rel.to_string_lossy().into_owned();
            let out = out_dir.join(rel);
            let entry = match stamp_one(path, &out, &stamper, a.in_place) {
                Ok(Outcome::Stamped(st)) => {
                    ok.fetch_add(1, Ordering::Relaxed);
                    if st.watermark_readable == Some(false) {
                        unreadable.fetch_add(1, Ordering::Relaxed);
                    }
                    if let Some(l) = &ledger_w {
                        let entry = hallmark::ledger::entry_for(&st, &stamper);
                        let res = l
                            .lock()
                            .map_err(|_| anyhow::anyhow!("ledger lock poisoned"))
                            .and_then(|mut w| w.append(entry, stamper.signer()));
                        if let Err(e) = res
                            && let Ok(mut f) = fatal.lock()
                        {
                            f.get_or_insert(format!("{e:#}"));
                        }
                    }
                    json!({"rel": rel_s, "status": "stamped", "input": path.display().to_string(), "output": out.display().to_string(), "payload": st.payload, "manifest_id": st.manifest_id, "input_sha256": st.input_sha256, "output_sha256": st.output_sha256, "psnr": st.psnr, "watermark_readable": st.watermark_readable})
                }
                Ok(Outcome::Skipped(why)) => {
                    skipped.fetch_add(1, Ordering::Relaxed);
                    json!({"rel": rel_s, "status": "skipped", "input": path.display().to_string(), "reason": why})
                }
                Err(e) => {
                    let msg = format!("{e:#}");
                    if is_output_fatal(&e) {
                        if let Ok(mut f) = fatal.lock() {
                            f.get_or_insert(msg.clone());
                        }
                        return;
                    }
                    if let Ok(mut f) = failed.lock() {
                        f.push((rel_s.clone(), msg.clone()));
                    }
                    json!({"rel": rel_s, "status": "failed", "input": path.display().to_string(), "error": msg})
                }
            };
            if let Ok(mut j) = journal.lock() {
                let line = format!("{entry}\n");
                if j.write_all(line.as_bytes()).and_then(|()| j.flush()).is_err()
                    && let Ok(mut f) = fatal.lock()
                {
                    f.get_or_insert("cannot append to the journal (disk full?)".into());
                }
            }
            if let Some(b) = &bar {
                b.inc(1);
            }
        });
    });
    if let Some(b) = &bar {
        b.finish_and_clear();
    }
    if let Some(msg) = fatal.into_inner().ok().flatten() {
        bail!("stopped: {msg} (completed files are kept; rerun with --resume)");
    }
    // The report: every journal entry, last word per file.
    let mut last: std::collections::BTreeMap<String, serde_json::Value> = Default::default();
    for v in previous {
        if let Some(r) = v.get("rel").and_then(|r| r.as_str()) {
            last.insert(r.to_string(), v.clone());
        }
    }
    if let Ok(text) = fs::read_to_string(&journal_path) {
        for line in text.lines() {
            if let Ok(v) = serde_json::from_str::<serde_json::Value>(line)
                && let Some(r) = v.get("rel").and_then(|r| r.as_str())
            {
                last.insert(r.to_string(), v.clone());
            }
        }
    }
    let report: String = last.values().map(|v| format!("{v}\n")).collect();
    crate::files::write_atomic(&out_dir.join(REPORT), report.as_bytes(), None)?;
    let failed = failed.into_inner().unwrap_or_default();
    let secs = start.elapsed().as_secs_f64();
    let n_ok = ok.load(Ordering::Relaxed);
    let summary = json!({
        "summary": true,
        "stamped": n_ok,
        "skipped": skipped.load(Ordering::Relaxed),
        "failed": failed.len(),
        "already_done": done.len(),
        "watermark_unreadable": unreadable.load(Ordering::Relaxed),
        "seconds": secs,
        "images_per_second": if secs > 0.0 { n_ok as f64 / secs } else { 0.0 },
        "jobs": jobs,
        "report": out_dir.join(REPORT).display().to_string(),
    });
    if json_out {
        println!("{summary}");
    } else if !quiet {
        println!(
            "labelled {}: {} stamped, {} skipped (not images), {} failed, {} already done; {:.1} s ({:.1} images/s, {} jobs); report {}",
            a.dir.display(),
            n_ok,
            skipped.load(Ordering::Relaxed),
            failed.len(),
            done.len(),
            secs,
            if secs > 0.0 { n_ok as f64 / secs } else { 0.0 },
            jobs,
            out_dir.join(REPORT).display()
        );
        for (rel, why) in &failed {
            println!("  failed {rel}: {why}");
        }
    }
    let n_unreadable = unreadable.load(Ordering::Relaxed);
    if n_unreadable > 0 && !quiet {
        eprintln!(
            "hallmark: warning: {n_unreadable} stamped file(s) carry a watermark that could not be read back (entries with \"watermark_readable\": false in {}); their manifests are signed, but copies stripped of metadata would not be recognised",
            out_dir.join(REPORT).display()
        );
    }
    Ok(if failed.is_empty() { 0 } else { 2 })
}

enum Outcome {
    Stamped(Box<hallmark::Stamped>),
    Skipped(String),
}

fn stamp_one(path: &Path, out: &Path, s: &hallmark::Stamper, in_place: bool) -> Result<Outcome> {
    let bytes = if in_place {
        // The backup is written (atomically) before the original is replaced, and is the
        // source whenever it exists: a resumed run never stamps a stamped file.
        let mut b = path.as_os_str().to_owned();
        b.push(".orig");
        let backup = PathBuf::from(b);
        if backup.exists() {
            crate::files::read_input(&backup)?
        } else {
            let orig = crate::files::read_input(path)?;
            crate::files::write_atomic(&backup, &orig, None)?;
            orig
        }
    } else {
        crate::files::read_input(path)?
    };
    let Some(fmt) = hallmark::io::Format::sniff(&bytes) else {
        return Ok(Outcome::Skipped("not an image hallmark reads".into()));
    };
    if fmt == hallmark::io::Format::Gif {
        return Ok(Outcome::Skipped("GIF cannot carry the watermark".into()));
    }
    let st = hallmark::stamp(&bytes, s, None)?;
    if let Some(parent) = out.parent() {
        fs::create_dir_all(parent)
            .with_context(|| format!("cannot create {}", parent.display()))?;
    }
    crate::files::write_atomic(out, &st.bytes, None)?;
    Ok(Outcome::Stamped(Box::new(st)))
}

/// Output-side I/O failures (read-only or full folder) stop the run: every later file would
/// fail the same way.
fn is_output_fatal(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>().is_some_and(|io| {
            matches!(
                io.kind(),
                std::io::ErrorKind::PermissionDenied
                    | std::io::ErrorKind::StorageFull
                    | std::io::ErrorKind::ReadOnlyFilesystem
                    | std::io::ErrorKind::QuotaExceeded
            )
        })
    }) && e.to_string().contains("temporary")
        || e.chain()
            .any(|c| c.to_string().contains("cannot create") || c.to_string().contains("disk full"))
}
