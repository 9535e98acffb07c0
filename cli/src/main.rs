//! The `hallmark` command line: thin glue over the `hallmark` library. Files, terminals,
//! folders, exit codes and messages live here; everything else is the library's.

mod args;
mod image;
mod json;
use hallmark_files as files;
mod keys;
mod label;
mod ledger;
mod out;
mod registry;
mod serve;
mod sign;
mod stamp;
mod text;
mod verify;

use std::{
    io::IsTerminal,
    path::{Path, PathBuf},
    process::ExitCode,
};

use anyhow::{Result, bail};
use clap::Parser;
use out::{errln, outln};

use args::{Cli, Cmd, ColorChoice, ImageCmd, limits};
pub(crate) use stamp::{
    commit_with_record, dash_output, output_format, parse_payload, stamper, unreadable_warning,
};

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    init_logging(&cli);
    json::set_version(cli.json_version);
    files::set_warning_sink(|m| errln!("hallmark: warning: {m}"));
    match run(&cli) {
        Ok(code) => ExitCode::from(code as u8),
        Err(e) => {
            if is_broken_pipe(&e) {
                // The reader went away (`hallmark verify DIR | head -1`): nothing to report.
                return ExitCode::from(0);
            }
            // --json promises an object per input, failures included.
            let json_out = cli.json
                || matches!(&cli.cmd, Cmd::Image(ImageCmd::Detect { jsonl: true, .. }))
                || matches!(&cli.cmd, Cmd::Text(text::TextCmd::Detect(a)) if a.jsonl);
            if json_out && let Some((schema, inputs)) = json_inputs(&cli.cmd) {
                for f in inputs {
                    if json::emit_error(schema, f, &e).is_err() {
                        break;
                    }
                }
            }
            errln!("hallmark: error: {e:#}");
            ExitCode::from(2)
        }
    }
}

/// The schema of a command's `--json` objects and the inputs it reports on, for the error
/// objects of a command that failed as a whole (a bad key: every input fails alike).
fn json_inputs(cmd: &Cmd) -> Option<(&'static str, Vec<String>)> {
    let show = |p: &Path| p.display().to_string();
    let all = |ps: &[PathBuf]| ps.iter().map(|p| show(p)).collect();
    Some(match cmd {
        Cmd::Keygen(a) => (json::KEYGEN, vec![show(&a.out)]),
        Cmd::Cert(keys::CertCmd::Check { chain }) => (json::CERT_CHECK, vec![show(chain)]),
        Cmd::Stamp(a) => (json::STAMP, all(&a.inputs)),
        Cmd::Verify(a) => (json::REPORT, all(&a.files)),
        Cmd::Label(a) => (json::LABEL_SUMMARY, vec![show(&a.dir)]),
        Cmd::Sign(a) => (json::SIGN, vec![show(&a.input)]),
        Cmd::Strip { input, .. } => (json::STRIP, vec![show(input)]),
        Cmd::Image(ImageCmd::Embed { input, .. }) => (json::EMBED, vec![show(input)]),
        Cmd::Image(ImageCmd::Detect { files, .. }) => (json::DETECT, all(files)),
        Cmd::Text(c) => return text::json_inputs(c),
        Cmd::Ledger(c) => ledger::json_inputs(c),
        Cmd::Completions { .. } | Cmd::Schema { .. } | Cmd::Serve(_) => return None,
    })
}

pub(crate) fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

fn init_logging(cli: &Cli) {
    let serving = matches!(cli.cmd, Cmd::Serve(_));
    let level = if cli.quiet {
        "error"
    } else {
        match cli.verbose {
            // A service logs every request (with its ID) by default.
            0 if serving => "info",
            0 => "warn",
            1 => "info",
            _ => "debug",
        }
    };
    let ansi = match cli.color {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => {
            std::env::var_os("NO_COLOR").is_none() && std::io::stderr().is_terminal()
        }
    };
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("HALLMARK_LOG").unwrap_or_else(|_| {
                tracing_subscriber::EnvFilter::new(format!("{level},c2pa=error"))
            }),
        )
        .with_writer(std::io::stderr)
        .with_ansi(ansi)
        .without_time()
        .try_init();
}

pub(crate) fn use_color(cli_color: ColorChoice) -> bool {
    match cli_color {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => {
            std::env::var_os("NO_COLOR").is_none() && std::io::stdout().is_terminal()
        }
    }
}

fn run(cli: &Cli) -> Result<i32> {
    // `-o -`: the image goes to stdout, every report line to stderr.
    let dash = |p: &Option<PathBuf>| p.as_deref().is_some_and(files::is_std);
    let data_on_stdout = match &cli.cmd {
        Cmd::Stamp(a) => dash(&a.output),
        Cmd::Sign(a) => dash(&a.output),
        Cmd::Strip { output, .. } => files::is_std(output),
        Cmd::Image(ImageCmd::Embed { output, .. }) => files::is_std(output),
        _ => false,
    };
    if data_on_stdout {
        out::stdout_is_data();
    }
    match &cli.cmd {
        Cmd::Keygen(a) => keys::keygen(a, cli.json, cli.quiet),
        Cmd::Cert(c) => keys::cert(c, cli.json, cli.quiet),
        Cmd::Stamp(a) => stamp::stamp(cli, a),
        Cmd::Verify(a) => verify::verify(cli, a),
        Cmd::Label(a) => label::label(cli.json, cli.quiet, limits(cli), a),
        Cmd::Sign(a) => sign::sign(cli, a),
        Cmd::Image(c) => image::image(cli, c),
        Cmd::Text(c) => text::run(cli.json, cli.quiet, c),
        Cmd::Ledger(c) => ledger::run(cli.json, cli.quiet, c),
        Cmd::Serve(a) => serve::run(cli.quiet, a),
        Cmd::Strip {
            input,
            output,
            force,
            format,
        } => {
            let replace = files::Replace::allowed_if(*force);
            files::check_output(output, std::slice::from_ref(input), false, replace)?;
            let bytes = files::read_input(input)?;
            let mut dec = hallmark::io::decode(&bytes, &limits(cli))?;
            dec.icc = None;
            dec.exif = None;
            if let Some(f) = output_format(output, *format)? {
                dec.format = f;
            }
            let out =
                hallmark::io::encode(&dec.image, &dec, hallmark::io::EncodeOptions::default())?;
            files::write_output(output, &out, files::Replace::allowed_if(*force))?;
            if cli.json {
                json::emit(
                    json::STRIP,
                    input.display().to_string(),
                    &json::StripOut {
                        input: input.display().to_string(),
                        output: output.display().to_string(),
                        format: dec.format,
                        width: dec.image.width(),
                        height: dec.image.height(),
                        output_sha256: hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&out)),
                    },
                )?;
            } else if !cli.quiet {
                outln!("stripped {} -> {}", input.display(), output.display());
            }
            Ok(0)
        }
        Cmd::Schema { name } => {
            let doc = match name {
                None => json::schema_document(),
                Some(n) => match json::schemas().remove(n.as_str()) {
                    Some(s) => s.to_value(),
                    None => bail!(
                        "no schema named {n:?}; known: {}",
                        json::schemas()
                            .keys()
                            .copied()
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                },
            };
            out::raw_line(&serde_json::to_string_pretty(&doc)?)?;
            Ok(0)
        }
        Cmd::Completions { shell } => {
            use clap::CommandFactory;
            // Generated into memory: clap_complete panics when its writer fails (a closed pipe).
            let mut buf = Vec::new();
            clap_complete::generate(*shell, &mut Cli::command(), "hallmark", &mut buf);
            use std::io::Write;
            let mut o = std::io::stdout().lock();
            o.write_all(&buf).and_then(|()| o.flush())?;
            Ok(0)
        }
    }
}
