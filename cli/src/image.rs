//! `hallmark image`: the invisible watermark on its own (embed, detect, map).

use anyhow::{Context, Result, bail};
use hallmark::Payload;

use crate::args::{Cli, ImageCmd, limits};
use crate::out::{errln, outln};
use crate::{files, json, keys, output_format, parse_payload, unreadable_warning};

pub(crate) fn image(cli: &Cli, c: &ImageCmd) -> Result<i32> {
    match c {
        ImageCmd::Embed {
            key,
            payload,
            input,
            output,
            quality,
            in_place,
            force,
            format,
            checks,
        } => {
            let replace = files::Replace::allowed_if(*force || *in_place);
            files::check_output(output, std::slice::from_ref(input), *in_place, replace)?;
            let key = keys::load_watermark_key(key)?;
            let payload = parse_payload(payload)?.unwrap_or_else(Payload::random);
            let bytes = files::read_input(input)?;
            let mut dec = hallmark::io::decode(&bytes, &limits(cli))?;
            if let Some(f) = output_format(output, *format)? {
                dec.format = f;
            }
            let mark = hallmark::image_mark::ImageMark::new(&key, Default::default());
            let det = hallmark::image_mark::Detector::new(&key);
            let marked = hallmark::mark_encoded(hallmark::MarkRequest {
                input: &bytes,
                decoded: dec,
                mark: &mark,
                read_back: (!checks.no_check).then_some(&det),
                payload,
                encode: hallmark::io::EncodeOptions {
                    jpeg_quality: *quality,
                },
                checks: checks.checks(),
                limits: &limits(cli),
            })?;
            files::write_output(output, &marked.bytes, replace)?;
            // A mark already there (bound by the input's manifest) is overwritten or damaged
            // by the new one: say so.
            let previous = hallmark::bound_watermark(&bytes);
            if let Some(prev) = previous
                && !cli.quiet
            {
                errln!(
                    "hallmark: note: {} already carried watermark ID {prev} (bound by its manifest); the new mark replaces or damages it, and that manifest no longer matches the pixels",
                    input.display()
                );
            }
            let (rep, readable) = (marked.report, marked.readable);
            if cli.json {
                json::emit(
                    json::EMBED,
                    input.display().to_string(),
                    &json::EmbedOut {
                        input: input.display().to_string(),
                        output: output.display().to_string(),
                        report: &rep,
                        readable,
                        reinforced: marked.reinforced,
                        survives_webp: marked.survives_webp,
                        previous_watermark: previous,
                    },
                )?;
            } else if !cli.quiet {
                outln!(
                    "embedded watermark ID {} (key {}) into {}: PSNR {:.2} dB{}",
                    rep.payload,
                    rep.key_id,
                    output.display(),
                    rep.psnr,
                    match (readable, marked.reinforced) {
                        (Some(true), true) =>
                            ", read back (re-embedded stronger: it did not read at first)",
                        (Some(true), false) => ", read back",
                        _ => "",
                    }
                );
            }
            if readable == Some(false) {
                errln!("{}", unreadable_warning(output));
            }
            Ok(0)
        }
        ImageCmd::Detect {
            key,
            files: paths,
            jsonl,
            map,
            force,
            exhaustive,
        } => {
            if let Some(m) = map {
                if paths.len() != 1 {
                    return Err(files::coded(
                        hallmark::ErrorCode::InvalidParameter,
                        "--map draws one image's map: give exactly one image",
                    ));
                }
                let same = |a: &std::path::Path, b: &std::path::Path| matches!((a.canonicalize(), b.canonicalize()), (Ok(x), Ok(y)) if x == y);
                if paths.iter().any(|p| same(m, p)) {
                    return Err(files::coded(
                        hallmark::ErrorCode::InvalidParameter,
                        format!(
                            "--map {} is the image being read: name another file",
                            m.display()
                        ),
                    ));
                }
                files::check_new(m, files::Replace::allowed_if(*force))?;
            }
            let search = if *exhaustive {
                hallmark::image_mark::Search::Exhaustive
            } else {
                hallmark::image_mark::Search::Screened
            };
            let dets: Vec<hallmark::image_mark::Detector> = files::keys::load_watermark_keys(key)?
                .iter()
                .map(|(k, _)| hallmark::image_mark::Detector::new(k).with_search(search))
                .collect();
            let mut codes = vec![];
            for p in paths {
                let r = files::read_input(p).and_then(|b| {
                    hallmark::io::decode_lenient(&b, &limits(cli))
                        .with_context(|| format!("cannot read {}", p.display()))
                });
                match r {
                    Ok((d, damage)) => {
                        let Some(res) = hallmark::detect_any(&dets, &d.image) else {
                            bail!("no watermark key to detect with");
                        };
                        if let (Some(m), Some(regions)) = (map, &res.regions) {
                            let mut png = vec![];
                            image::DynamicImage::ImageRgb8(regions.overlay(&d.image))
                                .write_to(
                                    &mut std::io::Cursor::new(&mut png),
                                    image::ImageFormat::Png,
                                )
                                .context("cannot encode the map")?;
                            files::write_output(m, &png, files::Replace::allowed_if(*force))?;
                        }
                        // Nothing found in a damaged image is not a clean "no" (see verify).
                        codes.push(match (res.detected, &damage) {
                            (true, _) => 0,
                            (false, Some(_)) => 2,
                            (false, None) => 1,
                        });
                        if let Some(why) = &damage
                            && !cli.quiet
                            && !(cli.json || *jsonl)
                        {
                            errln!(
                                "hallmark: error: {} is damaged: {why} (no watermark found in what could be decoded)",
                                p.display()
                            );
                        }
                        if cli.json || *jsonl {
                            json::emit(
                                json::DETECT,
                                p.display().to_string(),
                                &json::DetectOut {
                                    detection: &res,
                                    damage,
                                    keys: dets.len(),
                                },
                            )?;
                        } else if !cli.quiet {
                            match res.payload {
                                Some(pl) => outln!(
                                    "{}: watermark found, ID {} (p-value {:.1e}, {} bit errors corrected, {:.0} ms){}",
                                    p.display(),
                                    pl,
                                    res.p_value,
                                    res.bit_errors.unwrap_or(0),
                                    res.millis,
                                    match &res.regions {
                                        Some(r) if r.is_partial() => format!("; {}", r.describe()),
                                        _ => String::new(),
                                    }
                                ),
                                None => outln!(
                                    "{}: no watermark found ({:.0} ms)",
                                    p.display(),
                                    res.millis
                                ),
                            }
                        }
                    }
                    Err(e) => {
                        codes.push(2);
                        if cli.json || *jsonl {
                            json::emit_error(json::DETECT, p.display().to_string(), &e)?;
                        }
                        errln!("hallmark: error: {e:#}");
                    }
                }
            }
            Ok(if codes.contains(&2) {
                2
            } else if codes.iter().all(|&c| c == 0) {
                0
            } else {
                1
            })
        }
    }
}
