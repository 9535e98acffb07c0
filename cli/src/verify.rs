//! `hallmark verify`: one verdict per file, its reasons, and the exit status.

use std::{
    io::IsTerminal,
    path::{Path, PathBuf},
};

use anyhow::{Context, Result, bail};
use hallmark::Verdict;

use crate::args::{Cli, VerifyArgs, limits};
use crate::out::{errln, outln};
use crate::{files, json, label, out, registry, use_color};

pub(crate) fn verify(cli: &Cli, a: &VerifyArgs) -> Result<i32> {
    if let Some(url) = &a.resolve {
        return verify_remote(cli, a, url);
    }
    let trust = files::check::TrustOptions {
        anchors: a.trust.clone(),
        trust_list: a.trust_anchors.clone(),
        allowed_list: a.allowed_list.clone(),
        trust_config: a.trust_config.clone(),
        settings: a.trust_settings.clone(),
    };
    let mut verifier =
        files::check::verifier(&a.keys, a.keys_dir.as_deref(), &trust, a.ledger.as_deref())?;
    verifier.limits = limits(cli);
    // Files named on the command line are checked whatever they are; files found in a folder
    // are checked only if they are images (by their bytes), not `.orig` backups, and pass
    // --include/--exclude: the rest (reports, journals, text) is skipped and only counted.
    let mut files: Vec<(PathBuf, bool)> = vec![];
    for f in &a.files {
        if f.is_dir() {
            let filter = globs(f, &a.include, &a.exclude)?;
            for (p, rel) in label::walk_images(f)? {
                let backup = p.extension().is_some_and(|e| e == "orig");
                let wanted = filter
                    .as_ref()
                    .is_none_or(|o| !o.matched(&rel, false).is_ignore());
                if !backup && wanted {
                    files.push((p, true));
                }
            }
        } else {
            files.push((f.clone(), false));
        }
    }
    let color = use_color(cli.color);
    let jobs = crate::args::jobs(a.jobs);
    let pool = rayon::ThreadPoolBuilder::new().num_threads(jobs).build()?;
    let bar = (!cli.quiet && !cli.json && files.len() > 1 && std::io::stderr().is_terminal()).then(
        || {
            let b = indicatif::ProgressBar::new(files.len() as u64);
            b.set_style(
                indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} {per_sec} eta {eta}")
                    .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
            );
            b
        },
    );
    let results: Vec<Result<Option<hallmark::Report>>> = pool.install(|| {
        use rayon::prelude::*;
        files
            .par_iter()
            .map(|(f, walked)| {
                let r = verify_one(f, *walked, &verifier);
                if let Some(b) = &bar {
                    b.inc(1);
                }
                r
            })
            .collect()
    });
    if let Some(b) = &bar {
        b.finish_and_clear();
    }
    let mut codes = vec![];
    let mut skipped = 0usize;
    let mut tally: std::collections::BTreeMap<String, usize> = Default::default();
    for ((f, _), r) in files.iter().zip(results) {
        match r {
            Ok(None) => skipped += 1,
            Ok(Some(rep)) => {
                codes.push(verify_exit_code(rep.outcome()));
                *tally
                    .entry(
                        serde_json::to_value(rep.verdict)?
                            .as_str()
                            .unwrap_or("?")
                            .to_string(),
                    )
                    .or_default() += 1;
                if a.c2pa_report {
                    print_c2pa_report(f, &rep, a.detailed)?;
                } else if cli.json {
                    json::emit_value(&json::VerifyOut {
                        file: f.display().to_string(),
                        report: &rep,
                    })?;
                } else if !cli.quiet {
                    print_report(f, &rep, color, cli.verbose > 0)?;
                }
            }
            Err(e) => {
                codes.push(2);
                *tally.entry("error".into()).or_default() += 1;
                if cli.json {
                    json::emit_error(json::REPORT, f.display().to_string(), &e)?;
                }
                errln!("hallmark: error: {e:#}");
            }
        }
    }
    if files.len() > 1 && !cli.quiet {
        let parts: Vec<String> = tally
            .iter()
            .map(|(k, n)| format!("{n} {}", k.replace('_', " ")))
            .collect();
        // On stdout for people; on stderr under --json, which promises one object per input.
        let mut line = format!(
            "summary: {} images: {}",
            files.len() - skipped,
            parts.join(", ")
        );
        if skipped > 0 {
            line.push_str(&format!("; {skipped} other files skipped (not images)"));
        }
        if cli.json {
            errln!("{line}");
        } else {
            outln!("{line}");
        }
    }
    Ok(combine(&codes))
}

/// `verify --c2pa-report`: c2pa's JSON report on the manifest store, pretty-printed as
/// c2patool prints it; characters that could reorder or hide text on a terminal (bidi
/// controls, line separators) are written as JSON escapes, which read back the same.
pub(crate) fn print_c2pa_report(f: &Path, rep: &hallmark::Report, detailed: bool) -> Result<()> {
    let Some(c) = &rep.c2pa else {
        errln!("{}: no C2PA manifest", f.display());
        return Ok(());
    };
    let doc = if detailed {
        &c.detailed_report
    } else {
        &c.report
    };
    if doc.is_null() {
        errln!(
            "{}: the manifest store cannot be read: {}",
            f.display(),
            c.failure
                .first()
                .and_then(|e| e.explanation.clone())
                .unwrap_or_default()
        );
        return Ok(());
    }
    let text = serde_json::to_string_pretty(doc)?;
    let mut safe = String::with_capacity(text.len());
    for ch in text.chars() {
        let cp = ch as u32;
        let risky = matches!(cp, 0x7f..=0x9f | 0x200b..=0x200f | 0x2028..=0x202e | 0x2060..=0x206f | 0xfeff | 0xfff9..=0xfffb);
        if risky {
            safe.push_str(&format!("\\u{cp:04x}"));
        } else {
            safe.push(ch);
        }
    }
    out::raw_line(&safe)?;
    Ok(())
}

/// `verify --resolve URL`: each file is verified by the service, which recovers a stripped
/// manifest through its registry. Output and exit codes are those of a local `verify`.
pub(crate) fn verify_remote(cli: &Cli, a: &VerifyArgs, url: &str) -> Result<i32> {
    let client = registry::Client::new(url, a.registry_token.clone())?;
    let color = use_color(cli.color);
    let mut codes = vec![];
    for f in &a.files {
        let res = (|| -> Result<serde_json::Value> {
            if f.is_dir() {
                bail!("{} is a folder: --resolve checks files", f.display());
            }
            let bytes = files::read_input(f)?;
            client.verify(&bytes)
        })();
        match res {
            Ok(mut rep) => {
                let verdict = rep["verdict"].as_str().unwrap_or("").to_string();
                let code = match verdict.as_str() {
                    "ai_generated" | "ai_edited" | "signed_no_ai_claim" => 0,
                    "no_evidence" if rep.get("damage").is_some_and(|d| !d.is_null()) => 2,
                    "no_evidence" => 1,
                    "tampered" => 3,
                    _ => 2,
                };
                codes.push(code);
                if cli.json {
                    if let Some(o) = rep.as_object_mut() {
                        let schema = o.remove("schema").unwrap_or_else(|| json::REPORT.into());
                        let mut m = serde_json::Map::new();
                        m.insert("schema".into(), schema);
                        m.insert("file".into(), f.display().to_string().into());
                        m.append(o);
                        json::emit_value(&m)?;
                    }
                } else if !cli.quiet {
                    let summary = rep["summary"].as_str().unwrap_or("");
                    let paint = match (color, code) {
                        (true, 0) => "\x1b[1;33m",
                        (true, 3) => "\x1b[1;31m",
                        (true, _) => "\x1b[1m",
                        (false, _) => "",
                    };
                    out::raw_line(&format!(
                        "{}: {paint}{}{}",
                        out::escape(&f.display().to_string()),
                        out::escape(summary),
                        if paint.is_empty() { "" } else { "\x1b[0m" }
                    ))?;
                    for r in rep["reasons"].as_array().into_iter().flatten() {
                        outln!("  - {}", r.as_str().unwrap_or(""));
                    }
                }
            }
            Err(e) => {
                codes.push(2);
                if cli.json {
                    json::emit_error(json::REPORT, f.display().to_string(), &e)?;
                }
                errln!("hallmark: error: {e:#}");
            }
        }
    }
    Ok(combine(&codes))
}

/// Verifies one file. A file found by walking a folder that is not an image is skipped
/// (`None`); one named on the command line is an error instead.
pub(crate) fn verify_one(
    f: &Path,
    walked: bool,
    verifier: &hallmark::Verifier,
) -> Result<Option<hallmark::Report>> {
    let started = std::time::Instant::now();
    let rep = files::check::verify_path(f, walked, verifier)?;
    match &rep {
        None => tracing::debug!(file = ?f, "skipped: not an image"),
        Some(r) => tracing::info!(
            file = ?f,
            verdict = ?r.verdict,
            ms = started.elapsed().as_secs_f64() * 1e3,
            "verify"
        ),
    }
    Ok(rep)
}

/// The --include/--exclude globs for a folder walk (paths relative to the folder, as
/// .gitignore patterns), or `None` when neither is given.
pub(crate) fn globs(
    root: &Path,
    include: &[String],
    exclude: &[String],
) -> Result<Option<ignore::overrides::Override>> {
    if include.is_empty() && exclude.is_empty() {
        return Ok(None);
    }
    let mut b = ignore::overrides::OverrideBuilder::new(root);
    for g in include {
        b.add(g)
            .with_context(|| format!("bad --include glob {g:?}"))?;
    }
    for g in exclude {
        b.add(&format!("!{g}"))
            .with_context(|| format!("bad --exclude glob {g:?}"))?;
    }
    Ok(Some(b.build()?))
}

/// One exit code for many files: an error wins, then tampering, then "nothing found" for any
/// file without a label; 0 only when every file carries a valid label.
/// `verify`'s exit status for one report (a documented contract): 0 evidence found and
/// valid, 1 nothing found, 2 nothing found in a damaged image, 3 invalid or inconsistent.
pub(crate) fn verify_exit_code(o: hallmark::Outcome) -> i32 {
    match o {
        hallmark::Outcome::Found => 0,
        hallmark::Outcome::NothingFound => 1,
        hallmark::Outcome::Damaged => 2,
        hallmark::Outcome::Tampered => 3,
    }
}

pub(crate) fn combine(codes: &[i32]) -> i32 {
    if codes.contains(&2) {
        2
    } else if codes.contains(&3) {
        3
    } else if codes.contains(&1) {
        1
    } else {
        0
    }
}

pub(crate) fn print_report(
    f: &Path,
    r: &hallmark::Report,
    color: bool,
    verbose: bool,
) -> Result<()> {
    // The summary quotes the manifest (model, signer): escaped before our own colour codes.
    let paint = |s: &str, code: &str| {
        let s = out::escape(s);
        if color {
            format!("\x1b[{code}m{s}\x1b[0m")
        } else {
            s.into_owned()
        }
    };
    let c = match r.verdict {
        Verdict::AiGenerated | Verdict::AiEdited => "1;33",
        Verdict::SignedNoAiClaim => "1;32",
        Verdict::Tampered => "1;31",
        Verdict::NoEvidence => "1",
    };
    out::raw_line(&format!(
        "{}: {}",
        out::escape(&f.display().to_string()),
        paint(&r.summary, c)
    ))?;
    for reason in &r.reasons {
        outln!("  - {reason}");
    }
    if let Some(c2) = &r.c2pa {
        if verbose || c2.validation_state == hallmark::c2pa::ValidationState::Invalid {
            for s in &c2.failure {
                outln!(
                    "  failure: {} {}",
                    s.code,
                    s.explanation.as_deref().unwrap_or("")
                );
            }
        }
        if verbose {
            for s in &c2.success {
                outln!("  success: {}", s.code);
            }
            for s in &c2.informational {
                outln!("  info: {}", s.code);
            }
            for i in &c2.ingredients {
                outln!(
                    "  ingredient: {} ({})",
                    i.title.as_deref().unwrap_or("?"),
                    i.relationship.as_deref().unwrap_or("?")
                );
            }
        }
    }
    Ok(())
}
