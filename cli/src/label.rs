//! `hallmark label`: stamp a folder tree into a mirror, in parallel, resumably.
//!
//! Crash safety: each output is written under a temporary name and synced, its ledger record
//! (if any) appended and synced, then the output renamed into place, and only then is its
//! journal line appended and flushed. So after a kill every journal entry names a complete
//! output, and an interrupted file is simply redone on `--resume` (its rename replaces, never
//! duplicates).
//!
//! The journal keys each file by its path's exact bytes and remembers the input's SHA-256: an
//! input edited between runs is stamped again, and a journal started for another input folder
//! refuses to be resumed. In place, backups are never overwritten and the journal lives in the
//! user's state folder, not in the folder being labelled.

use std::{
    collections::HashMap,
    fs,
    io::{IsTerminal, Write},
    path::{Path, PathBuf},
    sync::{
        Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::Instant,
};

use crate::out::{errln, outln};
use anyhow::{Context, Result, bail};
use serde_json::json;
use sha2::{Digest, Sha256};

pub const JOURNAL: &str = ".hallmark-journal.jsonl";
pub const REPORT: &str = "report.jsonl";

#[derive(clap::Args, Debug)]
pub struct LabelArgs {
    /// Folder to label (ignore files such as .gitignore and .ignore are honoured).
    pub dir: PathBuf,
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
    #[command(flatten)]
    signer: crate::keys::SignerArgs,
    #[command(flatten)]
    model: crate::args::ModelArgs,
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
    #[command(flatten)]
    registry: crate::registry::RegistryArgs,
    /// The journal file (default: `.hallmark-journal.jsonl` in the output folder; with
    /// --in-place, a file per input folder under $XDG_STATE_HOME/hallmark/label, never
    /// inside the folder being labelled). The report is written beside it.
    #[arg(long, value_name = "FILE")]
    journal: Option<PathBuf>,
    #[command(flatten)]
    checks: crate::args::CheckArgs,
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

/// The first line of a journal: which input tree it belongs to.
const JOURNAL_SCHEMA: &str = "hallmark.label-journal/2";

/// A file's identity in the journal: its path relative to the input, byte for byte (hex of
/// the raw bytes on Unix), so names that are not UTF-8 never collide after lossy conversion.
fn path_key(rel: &Path) -> String {
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStrExt;
        hex::encode(rel.as_os_str().as_bytes())
    }
    #[cfg(not(unix))]
    {
        hex::encode(rel.to_string_lossy().as_bytes())
    }
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// `p` made absolute and free of `..` and symlinks as far as it exists (the rest appended),
/// so an output folder that does not exist yet can still be compared with the input.
fn canonical_lenient(p: &Path) -> PathBuf {
    let abs = std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
    let mut existing = abs.clone();
    let mut rest = vec![];
    loop {
        if let Ok(c) = fs::canonicalize(&existing) {
            let mut out = c;
            for part in rest.iter().rev() {
                out.push(part);
            }
            return out;
        }
        match (
            existing.file_name().map(|n| n.to_os_string()),
            existing.parent(),
        ) {
            (Some(name), Some(parent)) => {
                rest.push(name);
                existing = parent.to_path_buf();
            }
            _ => return abs,
        }
    }
}

/// What the journal says about one file: its last outcome, and the backup made of it.
#[derive(Default)]
struct Known {
    /// status, input SHA-256, output SHA-256 of the last stamped/skipped entry.
    done: Option<(String, Option<String>, Option<String>)>,
    /// SHA-256 of the `.orig` backup this run made (in place).
    backup: Option<String>,
}

/// Where the journal of an in-place run lives: never in the folder being labelled, but in
/// the user's state folder, one journal per input folder.
fn state_journal(dir: &Path) -> Result<PathBuf> {
    let base = match std::env::var_os("XDG_STATE_HOME").filter(|v| !v.is_empty()) {
        Some(s) => PathBuf::from(s),
        None => PathBuf::from(std::env::var_os("HOME").context(
            "neither XDG_STATE_HOME nor HOME is set: give the journal's place with --journal",
        )?)
        .join(".local/state"),
    };
    let id = &sha256_hex(path_key(dir).as_bytes())[..16];
    Ok(base.join("hallmark/label").join(format!("{id}.jsonl")))
}

pub fn label(
    json_out: bool,
    quiet: bool,
    limits: hallmark::io::Limits,
    a: &LabelArgs,
) -> Result<i32> {
    let start = Instant::now();
    if !a.dir.is_dir() {
        return Err(crate::json::coded(
            hallmark::ErrorCode::InvalidInput,
            format!("{} is not a folder", a.dir.display()),
        ));
    }
    if a.in_place && !a.backup {
        bail!("--in-place replaces your originals: add --backup to keep each as NAME.orig");
    }
    let in_canon =
        fs::canonicalize(&a.dir).with_context(|| format!("cannot resolve {}", a.dir.display()))?;
    let out_dir: PathBuf = match &a.out_dir {
        Some(d) => {
            let o = canonical_lenient(d);
            if o == in_canon || o.starts_with(&in_canon) {
                bail!(
                    "the output folder {} is the input folder or inside it: choose a folder outside {} (or label --in-place --backup)",
                    d.display(),
                    a.dir.display()
                );
            }
            d.clone()
        }
        None => a.dir.clone(),
    };
    let shard = parse_shard(a)?;
    let all = walk_images(&a.dir)?;
    let todo: Vec<(PathBuf, PathBuf)> = all
        .into_iter()
        .filter(|(p, _)| {
            // In place, the backups are not inputs.
            !a.in_place || p.extension().is_none_or(|e| e != "orig")
        })
        .filter(|(_, rel)| in_shard(rel, shard))
        .collect();
    let journal_path = match (&a.journal, a.in_place) {
        (Some(j), _) => j.clone(),
        (None, false) => out_dir.join(JOURNAL),
        (None, true) => state_journal(&in_canon)?,
    };
    // Out of place the report sits in the output folder; in place, beside the journal, so
    // nothing but the stamped files and their backups is written into the labelled folder.
    let report_path = if a.in_place {
        journal_path.with_extension("report.jsonl")
    } else {
        out_dir.join(REPORT)
    };
    let known = Journal::read(&journal_path, &in_canon, a.resume, &a.dir)?;
    let journal_exists = known.is_some();
    let known = known.unwrap_or_default();
    if journal_exists && !a.dry_run {
        remove_temporaries(&out_dir);
    }
    if a.dry_run {
        return dry_run(&todo, &out_dir, a.in_place, &known, json_out, quiet);
    }
    fs::create_dir_all(&out_dir).with_context(|| format!("cannot create {}", out_dir.display()))?;
    if let Some(parent) = journal_path.parent().filter(|p| !p.as_os_str().is_empty()) {
        fs::create_dir_all(parent)
            .with_context(|| format!("cannot create {}", parent.display()))?;
    }
    let mut stamper = crate::stamper(&a.keys, &a.signer, a.model.model(), None)?;
    stamper.limits = limits;
    a.checks.apply(&mut stamper);
    let ledger_w = match &a.ledger {
        Some(p) => {
            crate::ledger::ensure_parent(p)?;
            Some(Mutex::new(crate::ledger::LedgerWriter::open(
                p,
                crate::ledger::record_key(stamper.signer())?,
            )?))
        }
        None => None,
    };
    let registration = crate::registry::Registration::from_args(&a.registry, &a.keys)?;
    let journal = Journal::open(&journal_path, journal_exists, &in_canon)?;
    let write_journal = |entry: &serde_json::Value| journal.append(entry);
    let bar = if !quiet && std::io::stderr().is_terminal() {
        let b = indicatif::ProgressBar::new(todo.len() as u64);
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
    let already = AtomicUsize::new(0);
    let failed = Mutex::new(Vec::<(String, String)>::new());
    let skipped = AtomicUsize::new(0);
    let fatal = Mutex::new(None::<String>);
    let jobs = crate::args::jobs(a.jobs);
    let job = Job {
        stamper: &stamper,
        in_place: a.in_place,
        known: &known,
        ledger: ledger_w.as_ref(),
        registration: registration.as_ref(),
        write_journal: &write_journal,
    };
    let pool = rayon::ThreadPoolBuilder::new().num_threads(jobs).build()?;
    pool.install(|| {
        use rayon::prelude::*;
        todo.par_iter().for_each(|(path, rel)| {
            if fatal.lock().map(|f| f.is_some()).unwrap_or(true) {
                return;
            }
            let rel_s = rel.to_string_lossy().into_owned();
            let out = out_dir.join(rel);
            let base = crate::json::LabelEntry {
                rel: rel_s.clone(),
                rel_bytes: path_key(rel),
                input: path.display().to_string(),
                status: String::new(),
                output: None,
                payload: None,
                manifest_id: None,
                input_sha256: None,
                output_sha256: None,
                psnr: None,
                watermark_readable: None,
                reason: None,
                error: None,
            };
            let entry = match job.one(path, rel, &out) {
                Ok(Outcome::AlreadyDone) => {
                    already.fetch_add(1, Ordering::Relaxed);
                    None
                }
                Ok(Outcome::Stamped(st)) => {
                    ok.fetch_add(1, Ordering::Relaxed);
                    if st.watermark_readable == Some(false) {
                        unreadable.fetch_add(1, Ordering::Relaxed);
                    }
                    Some(crate::json::LabelEntry {
                        status: "stamped".into(),
                        output: Some(out.display().to_string()),
                        payload: Some(st.payload),
                        manifest_id: Some(st.manifest_id),
                        input_sha256: Some(st.input_sha256),
                        output_sha256: Some(st.output_sha256),
                        psnr: Some(st.psnr),
                        watermark_readable: st.watermark_readable,
                        ..base
                    })
                }
                Ok(Outcome::Skipped { why, sha256 }) => {
                    skipped.fetch_add(1, Ordering::Relaxed);
                    Some(crate::json::LabelEntry {
                        status: "skipped".into(),
                        reason: Some(why),
                        input_sha256: Some(sha256),
                        ..base
                    })
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
                    Some(crate::json::LabelEntry {
                        status: "failed".into(),
                        error: serde_json::to_value(crate::json::ErrorInfo::of(&e)).ok(),
                        ..base
                    })
                }
            };
            if let Some(entry) = entry {
                if let Err(e) = serde_json::to_value(&entry)
                    .map_err(anyhow::Error::from)
                    .and_then(|v| write_journal(&v))
                    && let Ok(mut f) = fatal.lock()
                {
                    f.get_or_insert(format!("{e:#}"));
                }
                // --json streams each file's object as it is done; the summary comes last.
                // A closed stdout does not stop the labelling.
                if json_out {
                    let _ = crate::json::emit(crate::json::LABEL, entry.input.clone(), &entry);
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
        return Err(crate::json::coded(
            hallmark::ErrorCode::OutputExists,
            format!("stopped: {msg} (completed files are kept; rerun with --resume)"),
        ));
    }
    // The report: the last word per file over the whole journal (earlier runs included).
    let mut last: std::collections::BTreeMap<String, serde_json::Value> = Default::default();
    let text = crate::files::read_text_capped(&journal_path, 1 << 30, "the journal")?;
    for line in text.lines() {
        if let Ok(v) = serde_json::from_str::<serde_json::Value>(line)
            && let Some(r) = v.get("rel").and_then(|r| r.as_str())
            && v.get("status").and_then(|s| s.as_str()) != Some("backup")
        {
            let key = v
                .get("rel_bytes")
                .and_then(|k| k.as_str())
                .map_or_else(|| hex::encode(r.as_bytes()), str::to_string);
            last.insert(key, v.clone());
        }
    }
    let report: String = last.values().map(|v| format!("{v}\n")).collect();
    crate::files::write_atomic(&report_path, report.as_bytes(), None)?;
    let failed = failed.into_inner().unwrap_or_default();
    let secs = start.elapsed().as_secs_f64();
    let n_ok = ok.load(Ordering::Relaxed);
    let n_done = already.load(Ordering::Relaxed);
    let summary = crate::json::LabelSummaryOut {
        summary: true,
        stamped: n_ok,
        skipped: skipped.load(Ordering::Relaxed),
        failed: failed.len(),
        already_done: n_done,
        watermark_unreadable: unreadable.load(Ordering::Relaxed),
        seconds: secs,
        images_per_second: if secs > 0.0 { n_ok as f64 / secs } else { 0.0 },
        jobs,
        report: report_path.display().to_string(),
        journal: journal_path.display().to_string(),
    };
    if json_out {
        crate::json::emit(
            crate::json::LABEL_SUMMARY,
            a.dir.display().to_string(),
            &summary,
        )?;
    } else if !quiet {
        outln!(
            "labelled {}: {} stamped, {} skipped (not images), {} failed, {} already done; {:.1} s ({:.1} images/s, {} jobs); report {}",
            a.dir.display(),
            n_ok,
            skipped.load(Ordering::Relaxed),
            failed.len(),
            n_done,
            secs,
            if secs > 0.0 { n_ok as f64 / secs } else { 0.0 },
            jobs,
            report_path.display()
        );
        for (rel, why) in &failed {
            outln!("  failed {rel}: {why}");
        }
    }
    let mut registry_failed = false;
    if let Some(r) = &registration
        && let Err(e) = r.flush(quiet)
    {
        errln!("hallmark: error: {e:#}");
        registry_failed = true;
    }
    let n_unreadable = unreadable.load(Ordering::Relaxed);
    if n_unreadable > 0 && !quiet {
        errln!(
            "hallmark: warning: {n_unreadable} stamped file(s) carry a watermark that could not be read back (entries with \"watermark_readable\": false in {}); their manifests are signed, but copies stripped of metadata would not be recognised",
            report_path.display()
        );
    }
    Ok(if failed.is_empty() && !registry_failed {
        0
    } else {
        2
    })
}

/// A label run's journal: a header line naming the input folder, then one JSON line per
/// file and event, appended and flushed as each happens, so a killed run resumes where it
/// stopped.
struct Journal {
    path: PathBuf,
    file: Mutex<fs::File>,
}

impl Journal {
    /// What an earlier run recorded, by [`path_key`]; `None` when there is no journal yet.
    /// A journal is resumed only with `--resume`, and only for the input folder it names.
    fn read(
        path: &Path,
        in_canon: &Path,
        resume: bool,
        dir: &Path,
    ) -> Result<Option<HashMap<String, Known>>> {
        if !fs::metadata(path).is_ok_and(|m| m.len() > 0) {
            return Ok(None);
        }
        if !resume {
            bail!(
                "{} holds a journal from an earlier run: pass --resume to continue it, or choose an empty --out-dir",
                path.display()
            );
        }
        let mut known: HashMap<String, Known> = HashMap::new();
        let text = crate::files::read_text_capped(path, 1 << 30, "the journal").unwrap_or_default();
        for (i, line) in text.lines().enumerate() {
            // A torn last line (killed mid-write) is ignored: that file is redone.
            let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else {
                continue;
            };
            if i == 0
                && let Some(input) = v.get("input_bytes").and_then(|s| s.as_str())
            {
                if v.get("journal").and_then(|s| s.as_str()) != Some(JOURNAL_SCHEMA)
                    || input != path_key(in_canon)
                {
                    bail!(
                        "the journal {} belongs to another input folder ({}): refusing to resume {} into it",
                        path.display(),
                        v.get("input").and_then(|s| s.as_str()).unwrap_or("?"),
                        dir.display()
                    );
                }
                continue;
            }
            let key = match v.get("rel_bytes").and_then(|r| r.as_str()) {
                Some(k) => k.to_string(),
                // Journals of earlier versions: UTF-8 names only, keyed by the name.
                None => match v.get("rel").and_then(|r| r.as_str()) {
                    Some(r) => hex::encode(r.as_bytes()),
                    None => continue,
                },
            };
            let st = |k: &str| v.get(k).and_then(|s| s.as_str()).map(str::to_string);
            let entry = known.entry(key).or_default();
            match st("status").as_deref() {
                Some("backup") => entry.backup = st("backup_sha256"),
                Some(s @ ("stamped" | "skipped")) => {
                    entry.done = Some((s.to_string(), st("input_sha256"), st("output_sha256")));
                }
                _ => entry.done = None,
            }
        }
        Ok(Some(known))
    }

    /// Opens the journal for appending: a new one gets its header, a resumed one a newline
    /// first (so a torn last line stays apart).
    fn open(path: &Path, exists: bool, in_canon: &Path) -> Result<Journal> {
        let mut file = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .with_context(|| format!("cannot open the journal {}", path.display()))?;
        let first = if exists {
            "\n".to_string()
        } else {
            let header = json!({"journal": JOURNAL_SCHEMA, "input": in_canon.display().to_string(), "input_bytes": path_key(in_canon)});
            format!("{header}\n")
        };
        file.write_all(first.as_bytes())
            .with_context(|| format!("cannot write the journal {}", path.display()))?;
        Ok(Journal {
            path: path.to_path_buf(),
            file: Mutex::new(file),
        })
    }

    /// Appends one entry and flushes it.
    fn append(&self, entry: &serde_json::Value) -> Result<()> {
        let mut j = self
            .file
            .lock()
            .map_err(|_| anyhow::anyhow!("journal lock poisoned"))?;
        j.write_all(format!("{entry}\n").as_bytes())
            .and_then(|()| j.flush())
            .with_context(|| {
                format!(
                    "cannot append to the journal {} (disk full?)",
                    self.path.display()
                )
            })
    }
}

/// Removes the temporary files a killed run left in `out_dir`.
fn remove_temporaries(out_dir: &Path) {
    for (p, _) in walk(out_dir, false).unwrap_or_default() {
        if p.file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with(".hallmark-") && n.ends_with(".tmp"))
        {
            let _ = fs::remove_file(p);
        }
    }
}

/// `--dry-run`: what the real run would do, file by file, by the same rules (journal,
/// content hashes, skips, backups); nothing is written.
fn dry_run(
    todo: &[(PathBuf, PathBuf)],
    out_dir: &Path,
    in_place: bool,
    known: &HashMap<String, Known>,
    json_out: bool,
    quiet: bool,
) -> Result<i32> {
    let mut counts: std::collections::BTreeMap<&str, usize> = Default::default();
    for (p, rel) in todo {
        let out = out_dir.join(rel);
        let (action, reason) = match plan(p, &out, in_place, known.get(&path_key(rel))) {
            Ok(Planned::AlreadyDone) => ("already_done", None),
            Ok(Planned::Skip { why, .. }) => ("skip", Some(why)),
            Ok(Planned::Stamp { .. }) => ("stamp", None),
            Err(e) => ("fail", Some(format!("{e:#}"))),
        };
        *counts.entry(action).or_default() += 1;
        if json_out {
            crate::json::emit(
                crate::json::LABEL_PLAN,
                p.display().to_string(),
                &crate::json::LabelPlanOut {
                    output: out.display().to_string(),
                    action,
                    reason: reason.clone(),
                },
            )?;
        } else {
            match action {
                "stamp" => outln!("would stamp {} -> {}", p.display(), out.display()),
                "already_done" => outln!("already done: {}", p.display()),
                "skip" => outln!("would skip {}: {}", p.display(), reason.unwrap_or_default()),
                _ => outln!("would fail {}: {}", p.display(), reason.unwrap_or_default()),
            }
        }
    }
    if !quiet {
        let parts: Vec<String> = counts.iter().map(|(k, n)| format!("{n} {k}")).collect();
        errln!("dry run: {} files: {}", todo.len(), parts.join(", "));
    }
    Ok(0)
}

/// What labelling one file comes to, decided before anything is written (a dry run prints
/// exactly this).
enum Planned {
    AlreadyDone,
    Skip { why: String, sha256: String },
    Stamp { current: Vec<u8>, sha256: String },
}

/// Decides what to do with one file: done already if the journal says so and its content is
/// still what was stamped (an input edited since is stamped again); skipped if it is not an
/// image that can carry the mark; refused (an error) in place when a `NAME.orig` exists that
/// this run did not make; otherwise stamped.
fn plan(path: &Path, out: &Path, in_place: bool, known: Option<&Known>) -> Result<Planned> {
    let current = crate::files::read_input(path)?;
    let current_sha = sha256_hex(&current);
    if let Some((status, input_sha, output_sha)) = known.and_then(|k| k.done.as_ref()) {
        let same_as = |h: &Option<String>| h.as_deref() == Some(current_sha.as_str());
        let done = match status.as_str() {
            // Out of place the input must be unchanged (and its output still there); in
            // place the file must still be the stamped output.
            "stamped" if !in_place => same_as(input_sha) && out.exists(),
            "stamped" => same_as(output_sha),
            _ => same_as(input_sha),
        };
        if done {
            return Ok(Planned::AlreadyDone);
        }
    }
    let Some(fmt) = hallmark::io::Format::sniff(&current) else {
        return Ok(Planned::Skip {
            why: "not an image hallmark reads".into(),
            sha256: current_sha,
        });
    };
    if let Some(why) = fmt.watermark_refusal() {
        return Ok(Planned::Skip {
            why: why.into(),
            sha256: current_sha,
        });
    }
    if in_place {
        let backup = backup_path(path);
        if fs::symlink_metadata(&backup).is_ok() {
            let ours = known.and_then(|k| k.backup.as_deref());
            let theirs = crate::files::read_input(&backup).map(|b| sha256_hex(&b))?;
            if ours != Some(theirs.as_str()) {
                return Err(crate::json::coded(
                    hallmark::ErrorCode::OutputExists,
                    format!(
                        "{} already exists and was not made by this run: refusing to overwrite it or stamp from it (move it away, then rerun)",
                        backup.display()
                    ),
                ));
            }
        }
    }
    Ok(Planned::Stamp {
        current,
        sha256: current_sha,
    })
}

fn backup_path(path: &Path) -> PathBuf {
    let mut b = path.as_os_str().to_owned();
    b.push(".orig");
    PathBuf::from(b)
}

enum Outcome {
    Stamped(Box<hallmark::Stamped>),
    Skipped { why: String, sha256: String },
    AlreadyDone,
}

/// What every worker shares.
struct Job<'a, J: Fn(&serde_json::Value) -> Result<()> + Sync> {
    stamper: &'a hallmark::Stamper,
    in_place: bool,
    known: &'a HashMap<String, Known>,
    ledger: Option<&'a Mutex<crate::ledger::LedgerWriter>>,
    registration: Option<&'a crate::registry::Registration>,
    write_journal: &'a J,
}

impl<J: Fn(&serde_json::Value) -> Result<()> + Sync> Job<'_, J> {
    /// Labels one file. A file the journal lists as done is done only if its content is
    /// still what was stamped (an input edited since is stamped again).
    fn one(&self, path: &Path, rel: &Path, out: &Path) -> Result<Outcome> {
        let known = self.known.get(&path_key(rel));
        let (current, current_sha) = match plan(path, out, self.in_place, known)? {
            Planned::AlreadyDone => return Ok(Outcome::AlreadyDone),
            Planned::Skip { why, sha256 } => return Ok(Outcome::Skipped { why, sha256 }),
            Planned::Stamp { current, sha256 } => (current, sha256),
        };
        let bytes = if self.in_place {
            self.backup(path, rel, current, &current_sha, known)?
        } else {
            current
        };
        let st = hallmark::stamp(&bytes, self.stamper, None)?;
        if let Some(parent) = out.parent() {
            fs::create_dir_all(parent)
                .with_context(|| format!("cannot create {}", parent.display()))?;
        }
        let rec = match self.ledger {
            Some(l) => {
                let mut w = l
                    .lock()
                    .map_err(|_| anyhow::anyhow!("ledger lock poisoned"))?;
                crate::commit_with_record(
                    out,
                    &st,
                    self.stamper,
                    Some(&mut w),
                    crate::files::Replace::Allow,
                )?
            }
            None => crate::commit_with_record(
                out,
                &st,
                self.stamper,
                None,
                crate::files::Replace::Allow,
            )?,
        };
        if let Some(r) = self.registration {
            r.enqueue(&st, self.stamper, rec).with_context(|| {
                format!(
                    "{} is stamped, but its registry record could not be queued",
                    out.display()
                )
            })?;
        }
        Ok(Outcome::Stamped(Box::new(st)))
    }

    /// In place: the original to stamp from, backed up as `NAME.orig` first. An existing
    /// `NAME.orig` is used only when this run's journal says it made it and its bytes are
    /// unchanged; any other `NAME.orig` is never overwritten and the file is refused.
    fn backup(
        &self,
        path: &Path,
        rel: &Path,
        current: Vec<u8>,
        current_sha: &str,
        known: Option<&Known>,
    ) -> Result<Vec<u8>> {
        let backup = backup_path(path);
        if fs::symlink_metadata(&backup).is_ok() {
            let ours = known.and_then(|k| k.backup.as_deref());
            let bytes = crate::files::read_input(&backup)?;
            if ours == Some(sha256_hex(&bytes).as_str()) {
                return Ok(bytes);
            }
            bail!(
                "{} already exists and was not made by this run: refusing to overwrite it or stamp from it (move it away, then rerun)",
                backup.display()
            );
        }
        // Journal first: a kill between the two leaves a journal line naming a backup that
        // does not exist yet, never a backup nobody knows about.
        (self.write_journal)(
            &json!({"rel": rel.to_string_lossy(), "rel_bytes": path_key(rel), "status": "backup", "backup_sha256": current_sha}),
        )?;
        crate::files::stage(&backup, &current, None)?
            .commit_new()
            .with_context(|| format!("cannot back up {}", path.display()))?;
        Ok(current)
    }
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
