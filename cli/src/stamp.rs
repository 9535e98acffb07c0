//! `hallmark stamp`: watermark and sign, and what `label` shares with it (the stamper,
//! the output format, the order of a stamp's effects).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use hallmark::Payload;

use crate::args::{Cli, StampArgs, limits};
use crate::out::{errln, outln};
use crate::{files, is_broken_pipe, json, keys, ledger, registry};

pub(crate) fn parse_payload(s: &str) -> Result<Option<Payload>> {
    if s.eq_ignore_ascii_case("auto") {
        return Ok(None);
    }
    Ok(Some(s.parse::<Payload>()?))
}

/// The warning for an output whose watermark the detector could not read back.
pub(crate) fn unreadable_warning(out: &Path) -> String {
    format!(
        "hallmark: warning: the watermark could not be read back from {} (the picture leaves \
         it too little room: dense texture everywhere, or a very small or flat image); the \
         file is written, but a copy stripped of its metadata would not be recognised",
        out.display()
    )
}

pub(crate) fn stamper(
    keys: &Path,
    signer: &keys::SignerArgs,
    model: Option<hallmark::c2pa::Model>,
    quality: Option<u8>,
) -> Result<hallmark::Stamper> {
    let mut s = files::check::stamper_with(keys, &signer.source(Some(keys))?)?;
    s.model = model;
    s.jpeg_quality = quality;
    Ok(s)
}

pub(crate) fn refuse_text(path: &Path, bytes: &[u8]) -> Result<()> {
    if files::check::looks_like_text(bytes) {
        return Err(json::coded(
            hallmark::ErrorCode::InvalidInput,
            format!(
                "{} looks like text: a text watermark can only be applied while the text is generated (see `hallmark text generate`), not stamped after the fact",
                path.display()
            ),
        ));
    }
    Ok(())
}

pub(crate) fn stamp(cli: &Cli, a: &StampArgs) -> Result<i32> {
    if a.output.is_some() && a.inputs.len() != 1 {
        bail!("-o/--output takes one input; use --out-dir for several");
    }
    if a.output.is_none() && a.out_dir.is_none() {
        bail!("say where to write: -o OUT or --out-dir DIR");
    }
    let payload = a
        .payload
        .as_deref()
        .map(parse_payload)
        .transpose()?
        .flatten();
    let mut s = stamper(&a.keys, &a.signer, a.model.model(), a.quality)?;
    s.manifest = a.manifest.spec()?;
    s.limits = limits(cli);
    a.checks.apply(&mut s);
    let mut ledger_w = match &a.ledger {
        Some(p) => {
            ledger::ensure_parent(p)?;
            Some(ledger::LedgerWriter::open(
                p,
                ledger::record_key(s.signer())?,
            )?)
        }
        None => None,
    };
    let registration = registry::Registration::from_args(&a.registry, &a.keys)?;
    if let Some(d) = &a.out_dir {
        std::fs::create_dir_all(d).with_context(|| format!("cannot create {}", d.display()))?;
    }
    if a.inputs.iter().filter(|i| files::is_std(i)).count() > 1 {
        bail!("standard input (-) can be given once");
    }
    let outs: Vec<PathBuf> = a
        .inputs
        .iter()
        .map(|input| match (&a.output, &a.out_dir) {
            (Some(o), _) => Ok(o.clone()),
            (None, Some(_)) if files::is_std(input) => {
                bail!("standard input has no file name to keep: give -o OUT (or -o - for stdout)")
            }
            (None, Some(d)) => {
                let name = d.join(
                    input
                        .file_name()
                        .with_context(|| format!("{} has no file name", input.display()))?,
                );
                Ok(match a.format {
                    Some(f) => name.with_extension(f.extension()),
                    None => name,
                })
            }
            (None, None) => bail!("say where to write: -o OUT or --out-dir DIR"),
        })
        .collect::<Result<_>>()?;
    // Two inputs with one base name (a/x.png b/x.png) would write one output twice.
    let mut seen = std::collections::HashMap::new();
    for (input, out) in a.inputs.iter().zip(&outs) {
        if let Some(first) = seen.insert(out.clone(), input) {
            bail!(
                "{} and {} would both be written to {}: stamp them into different folders",
                first.display(),
                input.display(),
                out.display()
            );
        }
    }
    let replace = files::Replace::allowed_if(a.force || a.in_place);
    let mut worst = 0;
    let mut stdout_closed = false;
    let mut warned = false;
    for (input, out) in a.inputs.iter().zip(outs) {
        let started = std::time::Instant::now();
        let res = (|| -> Result<hallmark::Stamped> {
            files::check_output(&out, &a.inputs, a.in_place, replace)?;
            let bytes = files::read_input(input)?;
            refuse_text(input, &bytes)?;
            s.output_format = output_format(&out, a.format)?;
            let st = hallmark::stamp(&bytes, &s, payload)
                .with_context(|| format!("cannot stamp {}", input.display()))?;
            let rec = commit_with_record(&out, &st, &s, ledger_w.as_mut(), replace)?;
            if let Some(r) = &registration {
                r.enqueue(&st, &s, rec).with_context(|| {
                    format!(
                        "{} is stamped, but its registry record could not be queued",
                        out.display()
                    )
                })?;
            }
            Ok(st)
        })();
        tracing::info!(
            input = ?input,
            output = ?out,
            ms = started.elapsed().as_secs_f64() * 1e3,
            ok = res.is_ok(),
            "stamp"
        );
        match res {
            Ok(st) => {
                // A reader that went away (`| head -1`) does not cut the stamping short:
                // the remaining files are still stamped, only not reported.
                let printed = (|| -> Result<()> {
                    if stdout_closed {
                        return Ok(());
                    }
                    if cli.json {
                        json::emit(
                            json::STAMP,
                            input.display().to_string(),
                            &json::StampOut {
                                input: input.display().to_string(),
                                output: out.display().to_string(),
                                stamped: &st,
                            },
                        )?;
                    } else if !cli.quiet {
                        outln!(
                            "stamped {} -> {}  (watermark ID {}, PSNR {:.1} dB{}, manifest {})",
                            input.display(),
                            out.display(),
                            st.payload,
                            st.psnr,
                            if st.watermark_reinforced {
                                ", re-embedded stronger: the first did not read back or survive WebP q50"
                            } else {
                                ""
                            },
                            st.manifest_id
                        );
                    }
                    Ok(())
                })();
                if let Err(e) = printed {
                    if is_broken_pipe(&e) {
                        stdout_closed = true;
                    } else {
                        return Err(e);
                    }
                }
                if st.watermark_readable == Some(false) {
                    errln!("{}", unreadable_warning(&out));
                }
                // The definition's warnings are the same for every file: say them once.
                if !warned {
                    for w in &st.warnings {
                        errln!("hallmark: warning: {w}");
                    }
                    warned = true;
                }
                if let Some(prev) = st.previous_watermark
                    && !cli.quiet
                {
                    errln!(
                        "hallmark: note: {} was already stamped (its manifest binds watermark ID {prev}): it now carries {}, and its old manifest is kept as the new one's parent",
                        input.display(),
                        st.payload
                    );
                }
            }
            Err(e) => {
                if cli.json && !stdout_closed {
                    match json::emit_error(json::STAMP, input.display().to_string(), &e) {
                        Err(pe) if is_broken_pipe(&pe) => stdout_closed = true,
                        r => r?,
                    }
                }
                errln!("hallmark: error: {e:#}");
                worst = 2;
            }
        }
    }
    if let Some(r) = &registration {
        match r.flush(cli.quiet) {
            Ok((sent, _)) => tracing::info!(sent, "registry"),
            Err(e) => {
                errln!("hallmark: error: {e:#}");
                worst = 2;
            }
        }
    }
    Ok(worst)
}

/// The format an output is written in: `--format`, else what the output's extension names,
/// else `None` (the input's). A `--format` the extension contradicts is an error: never a
/// PNG inside a `.jpg`.
pub(crate) fn output_format(
    out: &Path,
    flag: Option<hallmark::io::Format>,
) -> Result<Option<hallmark::io::Format>> {
    let by_name = if files::is_std(out) {
        None
    } else {
        out.extension()
            .and_then(|e| e.to_str())
            .and_then(hallmark::io::Format::from_extension)
    };
    match (flag, by_name) {
        (Some(f), Some(n)) if f != n => bail!(
            "--format {} contradicts the output name {} (a .{} file): make them agree",
            f.extension(),
            out.display(),
            n.extension()
        ),
        (Some(f), _) => Ok(Some(f)),
        (None, n) => Ok(n),
    }
}

pub(crate) fn dash_output(o: &Option<PathBuf>) -> bool {
    o.as_deref().is_some_and(files::is_std)
}

/// Puts a stamped output in place, with its ledger record when there is a ledger.
///
/// The order guarantees "no output without its record": the output is written and synced
/// under a temporary name, the record is appended and synced, and only then is the output
/// renamed into place. If the ledger cannot be written (disk full), nothing appears at `out`.
/// The one window left, a rename failing after the record was written, is reported as an
/// error naming the ledger line, so a script never mistakes it for success.
pub(crate) fn commit_with_record(
    out: &Path,
    st: &hallmark::Stamped,
    s: &hallmark::Stamper,
    ledger: Option<&mut ledger::LedgerWriter>,
    replace: files::Replace,
) -> Result<Option<hallmark::ledger::Record>> {
    files::check_new(out, replace)?;
    let staged = files::stage(out, &st.bytes, None)?;
    let Some(l) = ledger else {
        return staged.commit_as(replace).map(|()| None);
    };
    let rec = l
        .append(
            hallmark::ledger::entry_for(st, s),
            ledger::record_key(s.signer())?,
        )
        .with_context(|| format!("nothing was written to {}", out.display()))?;
    staged.commit_as(replace).with_context(|| {
        format!(
            "the stamp of {} (watermark ID {}) is recorded in the ledger as record {}, but the file is not in place",
            out.display(),
            st.payload,
            rec.seq
        )
    })?;
    Ok(Some(rec))
}
