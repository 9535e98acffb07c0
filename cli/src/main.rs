//! The `hallmark` command line: thin glue over the `hallmark` library. Files, terminals,
//! folders, exit codes and messages live here; everything else is the library's.

mod json;
use hallmark_files as files;
mod keys;
mod label;
mod ledger;
mod out;
mod registry;
mod serve;
mod text;

use std::{
    io::IsTerminal,
    path::{Path, PathBuf},
    process::ExitCode,
};

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand, ValueEnum};
use hallmark::{Payload, Verdict};
use out::{errln, outln};

const EXIT_HELP: &str = "\
Exit codes:
  0  success: a label was found and is valid (or the command did its job)
  1  nothing found: no manifest and no watermark
  2  usage, input or I/O error
  3  found but invalid or tampered";

/// Label AI-generated content honestly and durably, and check labels.
#[derive(Parser, Debug)]
#[command(name = "hallmark", version, about, after_help = EXIT_HELP)]
struct Cli {
    /// Machine-readable output on stdout: one JSON object per input, each with `schema`,
    /// `file`, and the result or an `error` {code, message} (see `hallmark schema`).
    #[arg(long, global = true)]
    json: bool,
    /// JSON shapes: 2 (today's) or 1 (hallmark 0.1's: `error` a string, soft-binding values
    /// byte arrays, `hallmark.report/1`), for scripts not yet migrated. Deprecated.
    #[arg(long, global = true, env = "HALLMARK_JSON_VERSION", value_name = "N", default_value_t = 2, value_parser = clap::value_parser!(u8).range(1..=2), hide_env_values = true)]
    json_version: u8,
    /// Less output (only errors).
    #[arg(short, long, global = true)]
    quiet: bool,
    /// More output (repeat for debug logs on stderr).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
    /// Colour: auto (honours NO_COLOR and terminals), always, never.
    #[arg(long, global = true, value_enum, default_value_t = ColorChoice::Auto)]
    color: ColorChoice,
    /// Largest image to decode, in pixels (e.g. 50M); default: whatever --max-memory allows.
    #[arg(long, global = true, value_name = "N", value_parser = parse_size)]
    max_pixels: Option<u64>,
    /// Peak memory budget for one image, e.g. 512M or 2G (default 1G: about 53 megapixels
    /// for an 8-bit photo, 29 for 16-bit RGBA); larger images are refused before decoding.
    #[arg(long, global = true, value_name = "BYTES", value_parser = parse_size)]
    max_memory: Option<u64>,
    #[command(subcommand)]
    cmd: Cmd,
}

/// A count or size with an optional K, M or G suffix (powers of 1024 for bytes, of 1000 for
/// pixels read the same way: `50M` pixels is 52 million; close enough for a limit).
fn parse_size(s: &str) -> std::result::Result<u64, String> {
    let t = s.trim();
    let (num, mult) = match t.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => {
            let m = match c.to_ascii_uppercase() {
                'K' => 1u64 << 10,
                'M' => 1 << 20,
                'G' => 1 << 30,
                _ => return Err(format!("unknown suffix in {s:?} (use K, M or G)")),
            };
            (&t[..i], m)
        }
        _ => (t, 1),
    };
    num.trim()
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(mult))
        .filter(|&n| n > 0)
        .ok_or_else(|| format!("{s:?} is not a positive size"))
}

/// The decoding limits the global flags ask for.
pub(crate) fn limits(cli: &Cli) -> hallmark::io::Limits {
    let mut l = match cli.max_memory {
        Some(m) => hallmark::io::Limits::with_memory(m),
        None => hallmark::io::Limits::default(),
    };
    if let Some(p) = cli.max_pixels {
        l.max_pixels = p;
        l.max_width = 65535;
        l.max_height = 65535;
    }
    l
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum ColorChoice {
    Auto,
    Always,
    Never,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Generate keys: a C2PA signing key and certificate chain, and a watermark key.
    #[command(after_help = "Examples:
  hallmark keygen --out keys --org \"ACME\" --name \"ACME image model\"
  hallmark keygen --out keys-text --text-scheme robust")]
    Keygen(keys::KeygenArgs),
    /// Certificates: what a C2PA validator will say about a signing chain.
    #[command(subcommand)]
    Cert(keys::CertCmd),
    /// Watermark and sign images in one pass (the main job).
    #[command(after_help = "Examples:
  hallmark stamp render.png -o render.stamped.png --keys keys --model acme-diffusion
  hallmark stamp out/*.png --out-dir stamped/ --keys keys --ledger stamps.jsonl
  curl -s https://example.com/a.png | hallmark stamp - -o - --keys keys > a.stamped.png")]
    Stamp(StampArgs),
    /// Check files: C2PA manifest, watermark, and whether they agree.
    #[command(after_help = "Examples:
  hallmark verify suspicious.jpg --trust anchors.pem --key partner.key
  hallmark verify uploads/ --keys keys --exclude \"*.tmp\" --json > verdicts.jsonl
  hallmark verify stripped.jpg --keys keys --ledger stamps.jsonl")]
    Verify(VerifyArgs),
    /// Stamp every image in a folder, in parallel, resumable.
    #[command(after_help = "Examples:
  hallmark label assets/ --out-dir labelled/ --keys keys -j 8
  hallmark label assets/ --out-dir labelled/ --keys keys --resume
  hallmark label assets/ --in-place --backup --keys keys --ledger stamps.jsonl")]
    Label(label::LabelArgs),
    /// Sign an image with a C2PA manifest alone (no watermark).
    #[command(after_help = "Examples:
  hallmark sign photo.jpg -o photo.signed.jpg --keys keys --manifest manifest.json
  hallmark sign photo.jpg --sidecar --keys keys")]
    Sign(SignArgs),
    /// The invisible image watermark on its own.
    #[command(subcommand)]
    Image(ImageCmd),
    /// The text watermark (applied while an LLM generates).
    #[command(subcommand)]
    Text(text::TextCmd),
    /// Re-encode an image's pixels without any metadata or manifest, as many platforms do
    /// on upload (for demos and tests of stripped copies).
    #[command(
        after_help = "Examples:\n  hallmark strip stamped.jpg -o stripped.jpg\n  hallmark strip stamped.png -o stripped.webp"
    )]
    Strip {
        /// Input image.
        input: PathBuf,
        /// Output image (same format).
        #[arg(short, long)]
        output: PathBuf,
        /// Replace an existing output file.
        #[arg(long)]
        force: bool,
        /// Output format: jpeg, png, webp or tiff (default: what -o's extension names,
        /// else the input's).
        #[arg(long, value_name = "FORMAT", value_parser = parse_format)]
        format: Option<hallmark::io::Format>,
    },
    /// The accountability ledger of stamps.
    #[command(subcommand)]
    Ledger(ledger::LedgerCmd),
    /// Run the verification service: the C2PA soft-binding resolution API over a registry
    /// of stamps, POST /v1/verify, and a verify page at /.
    #[command(
        after_help = "Examples:\n  hallmark serve --db sqlite:registry.db --keys keys\n  hallmark serve token create --db sqlite:registry.db\n  hallmark serve --listen 127.0.0.1:8080 --db postgres://hallmark@localhost/hallmark --keys keys"
    )]
    Serve(serve::ServeArgs),
    /// Print shell completions.
    #[command(
        after_help = "Examples:\n  hallmark completions bash > ~/.local/share/bash-completion/completions/hallmark\n  hallmark completions zsh > ~/.zfunc/_hallmark"
    )]
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Print the JSON Schema of what `--json` prints: every schema, or the one named.
    #[command(
        after_help = "Examples:\n  hallmark schema > hallmark-json-schema.json\n  hallmark schema hallmark.stamp/1"
    )]
    Schema {
        /// A schema name, e.g. `hallmark.report/2` (as in the objects' `schema` field).
        name: Option<String>,
    },
}

#[derive(clap::Args, Debug)]
struct ModelArgs {
    /// The generating model, recorded in the manifest.
    #[arg(long)]
    model: Option<String>,
    /// The model's version.
    #[arg(long, requires = "model")]
    model_version: Option<String>,
}

impl ModelArgs {
    fn model(&self) -> Option<hallmark::c2pa::Model> {
        self.model.as_ref().map(|n| hallmark::c2pa::Model {
            name: n.clone(),
            version: self.model_version.clone(),
        })
    }
}

/// What a manifest says beyond hallmark's own statements, as c2patool users give it.
#[derive(clap::Args, Debug, Default)]
struct ManifestArgs {
    /// A manifest definition in c2patool's JSON format: its title, claim generator,
    /// assertions, actions, ingredients, `ingredient_paths` and `thumbnail` (files relative
    /// to the definition) are kept; its own c2pa.created action replaces hallmark's; keys
    /// that choose the signer are ignored with a warning.
    #[arg(long, value_name = "JSON")]
    manifest: Option<PathBuf>,
    /// The file this asset was made from, recorded as its parent ingredient (with its
    /// manifest, if it has one); c2patool's --parent.
    #[arg(long, value_name = "FILE")]
    parent: Option<PathBuf>,
    /// A file that is part of this asset, recorded as a componentOf ingredient (repeatable).
    #[arg(long, value_name = "FILE")]
    ingredient: Vec<PathBuf>,
    /// The digital source type of the creating action: an IPTC term (digitalCapture,
    /// trainedAlgorithmicMedia, compositeWithTrainedAlgorithmicMedia, ...) or a full IRI.
    /// Default: the definition's own, else trainedAlgorithmicMedia.
    #[arg(long, value_name = "TYPE")]
    source_type: Option<String>,
}

impl ManifestArgs {
    /// The manifest specification these flags describe (files read, paths in the
    /// definition resolved against its folder).
    fn spec(&self) -> Result<hallmark::c2pa::ManifestSpec> {
        use hallmark::c2pa::{Ingredient, Relationship};
        let ingredient = |p: &Path, rel: Relationship| -> Result<Ingredient> {
            let bytes = files::read_input(p)?;
            let fmt = hallmark::io::Format::sniff(&bytes)
                .map(|f| f.mime().to_string())
                .or_else(|| p.extension().map(|e| e.to_string_lossy().into_owned()))
                .with_context(|| format!("{}: cannot tell the ingredient's format", p.display()))?;
            Ok(Ingredient {
                bytes,
                format: fmt,
                title: p
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default(),
                relationship: rel,
            })
        };
        let mut spec = hallmark::c2pa::ManifestSpec {
            source_type: self.source_type.clone(),
            ..Default::default()
        };
        if let Some(t) = &self.source_type {
            hallmark::c2pa::source_type_iri(t).context("--source-type")?;
        }
        if let Some(p) = &self.parent {
            spec.parent = Some(ingredient(p, Relationship::ParentOf)?);
        }
        for p in &self.ingredient {
            spec.ingredients
                .push(ingredient(p, Relationship::ComponentOf)?);
        }
        if let Some(p) = &self.manifest {
            let t = files::read_text_capped(p, files::MAX_CONFIG_BYTES, "the manifest definition")?;
            let mut def: serde_json::Value = serde_json::from_str(&t)
                .with_context(|| format!("{} is not valid JSON", p.display()))?;
            let base = p.parent().unwrap_or(Path::new("."));
            // c2patool's ingredient_paths: files relative to the definition.
            if let Some(list) = def
                .as_object_mut()
                .and_then(|o| o.remove("ingredient_paths"))
            {
                for q in list.as_array().into_iter().flatten() {
                    let q = q.as_str().context(
                        "ingredient_paths in the manifest definition must be file names",
                    )?;
                    spec.ingredients
                        .push(ingredient(&base.join(q), Relationship::ComponentOf)?);
                }
            }
            // A thumbnail given as a file (c2patool resolves its identifier as a path).
            if let Some(id) = def
                .pointer("/thumbnail/identifier")
                .and_then(serde_json::Value::as_str)
                .map(str::to_string)
            {
                let f = base.join(&id);
                if f.is_file() {
                    let bytes = files::read_input(&f)?;
                    spec.resources.push((id, bytes));
                }
            }
            spec.extra_definition = Some(def);
        }
        Ok(spec)
    }
}

#[derive(clap::Args, Debug)]
struct StampArgs {
    /// Images to stamp.
    #[arg(required = true)]
    inputs: Vec<PathBuf>,
    /// Output file (one input only).
    #[arg(short, long, conflicts_with = "out_dir")]
    output: Option<PathBuf>,
    /// Output folder (any number of inputs; names kept).
    #[arg(long)]
    out_dir: Option<PathBuf>,
    /// Keys folder written by `hallmark keygen`.
    #[arg(long)]
    keys: PathBuf,
    #[command(flatten)]
    signer: keys::SignerArgs,
    #[command(flatten)]
    model: ModelArgs,
    #[command(flatten)]
    manifest: ManifestArgs,
    /// Watermark payload, 16 hex digits (default: a fresh random ID per image).
    #[arg(long)]
    payload: Option<String>,
    /// JPEG quality of the output (default: the input's, estimated).
    #[arg(long, value_parser = clap::value_parser!(u8).range(1..=100))]
    quality: Option<u8>,
    /// Allow the output to replace the input.
    #[arg(long)]
    in_place: bool,
    /// Replace existing output files (without it, an existing output is an error).
    #[arg(long)]
    force: bool,
    /// Output format: jpeg, png, webp or tiff (default: what -o's extension names, else the
    /// input's). With --out-dir, the output names take this format's extension.
    #[arg(long, value_name = "FORMAT", value_parser = parse_format)]
    format: Option<hallmark::io::Format>,
    /// Append a signed record of every stamp to this ledger file.
    #[arg(long)]
    ledger: Option<PathBuf>,
    #[command(flatten)]
    registry: registry::RegistryArgs,
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

#[derive(clap::Args, Debug)]
struct VerifyArgs {
    /// Files (or folders) to check.
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// PEM trust anchors for C2PA signers (also: $HALLMARK_TRUST_ANCHORS, the trust
    /// settings' user_anchors, or ~/.config/hallmark/trust-anchors.pem).
    #[arg(long, value_name = "PEM")]
    trust: Option<PathBuf>,
    /// A PEM trust list, such as the C2PA trust list: c2patool's --trust_anchors (also:
    /// $C2PATOOL_TRUST_ANCHORS, the trust settings' trust_anchors).
    #[arg(long, value_name = "PEM")]
    trust_anchors: Option<PathBuf>,
    /// Signing certificates trusted as they are: PEM certificates or base64 SHA-256 hashes
    /// of them, one per line; c2patool's --allowed_list (also: $HALLMARK_ALLOWED_LIST,
    /// $C2PATOOL_ALLOWED_LIST, the trust settings' allowed_list).
    #[arg(long, value_name = "FILE")]
    allowed_list: Option<PathBuf>,
    /// Extra extended key usages a signing certificate may carry, one OID per line;
    /// c2patool's --trust_config (also: $HALLMARK_TRUST_CONFIG, $C2PATOOL_TRUST_CONFIG, the
    /// trust settings' trust_config).
    #[arg(long, value_name = "FILE")]
    trust_config: Option<PathBuf>,
    /// A trust settings file (TOML, or JSON by its extension) in c2pa's layout: a `[trust]`
    /// table with user_anchors, trust_anchors, allowed_list, trust_config, each the content
    /// or a path relative to the file (also: $HALLMARK_TRUST_SETTINGS, or
    /// ~/.config/hallmark/trust.toml).
    #[arg(long, value_name = "FILE")]
    trust_settings: Option<PathBuf>,
    /// Print c2pa's report on each file's manifest store instead of hallmark's verdict: the
    /// JSON c2patool prints (manifests, assertions, validation results), with hallmark's own
    /// checks' failures added. The exit code is verify's.
    #[arg(long, conflicts_with = "resolve")]
    c2pa_report: bool,
    /// With --c2pa-report: the detailed form, as `c2patool --detailed` prints it.
    #[arg(long, requires = "c2pa_report")]
    detailed: bool,
    /// Watermark key file(s) or keys folder(s) to look for watermarks with (repeatable; a
    /// folder of keys folders and key files counts every key in it; the p-value is multiplied
    /// by the number of keys).
    #[arg(long = "key", value_name = "KEY")]
    keys: Vec<PathBuf>,
    /// A keys folder: its watermark key and its CA as trust anchor.
    #[arg(long = "keys", value_name = "DIR")]
    keys_dir: Option<PathBuf>,
    /// Parallel jobs for folders.
    #[arg(short = 'j', long, default_value_t = 0)]
    jobs: usize,
    /// Look detected watermark IDs up in this ledger (who stamped it, when, which model).
    #[arg(long)]
    ledger: Option<PathBuf>,
    /// In folders, check only files matching this glob (repeatable; .gitignore syntax,
    /// relative to the folder, e.g. `*.jpg` or `renders/**`).
    #[arg(long, value_name = "GLOB")]
    include: Vec<String>,
    /// In folders, skip files matching this glob (repeatable).
    #[arg(long, value_name = "GLOB")]
    exclude: Vec<String>,
    /// Have this hallmark service verify the files (POST URL/v1/verify): it looks for the
    /// watermark with its keys and recovers a stripped manifest from its registry.
    #[arg(long, value_name = "URL", conflicts_with_all = ["keys", "keys_dir", "ledger", "trust", "trust_anchors", "allowed_list", "trust_config", "trust_settings"])]
    resolve: Option<String>,
    /// A token for a service that keeps reads private (`hallmark serve --private-reads`).
    #[arg(
        long,
        value_name = "TOKEN",
        env = "HALLMARK_REGISTRY_TOKEN",
        hide_env_values = true,
        requires = "resolve"
    )]
    registry_token: Option<String>,
}

#[derive(clap::Args, Debug)]
struct SignArgs {
    /// The image to sign.
    input: PathBuf,
    /// Output file with the manifest embedded.
    #[arg(short, long, required_unless_present = "sidecar")]
    output: Option<PathBuf>,
    /// Write the manifest to a sidecar `.c2pa` file beside the output (or the input).
    #[arg(long)]
    sidecar: bool,
    /// Keys folder written by `hallmark keygen` (not needed with --cert).
    #[arg(long, required_unless_present = "cert")]
    keys: Option<PathBuf>,
    #[command(flatten)]
    signer: keys::SignerArgs,
    #[command(flatten)]
    model: ModelArgs,
    #[command(flatten)]
    manifest: ManifestArgs,
    /// Allow the output to replace the input.
    #[arg(long)]
    in_place: bool,
    /// Replace existing outputs: the output file, or the sidecar `.c2pa` file.
    #[arg(long)]
    force: bool,
}

#[derive(Subcommand, Debug)]
enum ImageCmd {
    /// Embed a watermark.
    #[command(
        after_help = "Examples:\n  hallmark image embed --key keys in.png -o marked.png\n  hallmark image embed --key keys --payload 00112233aabbccdd in.jpg -o marked.jpg"
    )]
    Embed {
        /// Watermark key file or keys folder.
        #[arg(long)]
        key: PathBuf,
        /// 16 hex digits, or `auto` for a random ID.
        #[arg(long, default_value = "auto")]
        payload: String,
        /// Input image.
        input: PathBuf,
        /// Output image (same format as the input).
        #[arg(short, long)]
        output: PathBuf,
        /// JPEG quality of the output (default: the input's, estimated).
        #[arg(long, value_parser = clap::value_parser!(u8).range(1..=100))]
        quality: Option<u8>,
        /// Allow the output to replace the input.
        #[arg(long)]
        in_place: bool,
        /// Replace an existing output file.
        #[arg(long)]
        force: bool,
        /// Output format: jpeg, png, webp or tiff (default: what -o's extension names,
        /// else the input's).
        #[arg(long, value_name = "FORMAT", value_parser = parse_format)]
        format: Option<hallmark::io::Format>,
        /// Skip reading the watermark back from the written file, and so the stronger
        /// re-embedding when it does not read (saves a decode and a detection).
        #[arg(long)]
        no_check: bool,
        /// Skip checking that the watermark survives a WebP quality-50 round trip, and so
        /// the stronger re-embedding of (mostly flat) pictures where it does not.
        #[arg(long)]
        no_webp_check: bool,
    },
    /// Detect a watermark.
    #[command(
        after_help = "Examples:\n  hallmark image detect --key keys suspicious.jpg\n  hallmark image detect --key keys --jsonl uploads/*.jpg > found.jsonl"
    )]
    Detect {
        /// Watermark key file or keys folder; repeat it, or name a folder of keys folders
        /// and key files, to look for many keys' marks (the p-value is multiplied by the
        /// number of keys; `key_id` names the key that matched).
        #[arg(long, required = true)]
        key: Vec<PathBuf>,
        /// Images.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// The same as --json (kept for scripts written against 0.1).
        #[arg(long, hide = true)]
        jsonl: bool,
        /// Write a picture of where the mark is (PNG: marked parts in colour, the rest
        /// greyed, marked areas outlined). One image only; written only when the mark is
        /// found.
        #[arg(long, value_name = "OUT.png")]
        map: Option<PathBuf>,
        /// Replace an existing --map file.
        #[arg(long)]
        force: bool,
        /// Decode every alignment the search budget allows, not only those whose pilot is
        /// evident (a forensic second look: up to ~15x slower on an unmarked image; the
        /// false-positive bound is the same).
        #[arg(long)]
        exhaustive: bool,
    },
}

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

fn is_broken_pipe(e: &anyhow::Error) -> bool {
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
        Cmd::Stamp(a) => stamp(cli, a),
        Cmd::Verify(a) => verify(cli, a),
        Cmd::Label(a) => label::label(cli.json, cli.quiet, limits(cli), a),
        Cmd::Sign(a) => sign(cli, a),
        Cmd::Image(c) => image(cli, c),
        Cmd::Text(c) => text::run(cli.json, cli.quiet, c),
        Cmd::Ledger(c) => ledger::run(cli.json, cli.quiet, c),
        Cmd::Serve(a) => serve::run(cli.quiet, a),
        Cmd::Strip {
            input,
            output,
            force,
            format,
        } => {
            files::check_not_input(output, std::slice::from_ref(input), false)?;
            files::check_new(output, files::Replace::allowed_if(*force))?;
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

fn parse_payload(s: &str) -> Result<Option<Payload>> {
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

fn refuse_text(path: &Path, bytes: &[u8]) -> Result<()> {
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

fn stamp(cli: &Cli, a: &StampArgs) -> Result<i32> {
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
    s.check_readback = !a.no_check;
    if a.no_webp_check {
        s.checks = hallmark::Checks::none();
    }
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
            files::check_not_input(&out, &a.inputs, a.in_place)?;
            files::check_new(&out, replace)?;
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

/// `--format NAME`: a format name as an extension would give it.
fn parse_format(s: &str) -> std::result::Result<hallmark::io::Format, String> {
    hallmark::io::Format::from_extension(s)
        .ok_or_else(|| format!("unknown format {s:?} (jpeg, png, webp, tiff)"))
}

/// The format an output is written in: `--format`, else what the output's extension names,
/// else `None` (the input's). A `--format` the extension contradicts is an error: never a
/// PNG inside a `.jpg`.
fn output_format(
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

fn dash_output(o: &Option<PathBuf>) -> bool {
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

fn verify(cli: &Cli, a: &VerifyArgs) -> Result<i32> {
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
    let jobs = if a.jobs == 0 {
        std::thread::available_parallelism().map_or(1, |n| n.get())
    } else {
        a.jobs
    };
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
fn print_c2pa_report(f: &Path, rep: &hallmark::Report, detailed: bool) -> Result<()> {
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
fn verify_remote(cli: &Cli, a: &VerifyArgs, url: &str) -> Result<i32> {
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
fn verify_one(
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
fn globs(
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
fn verify_exit_code(o: hallmark::Outcome) -> i32 {
    match o {
        hallmark::Outcome::Found => 0,
        hallmark::Outcome::NothingFound => 1,
        hallmark::Outcome::Damaged => 2,
        hallmark::Outcome::Tampered => 3,
    }
}

fn combine(codes: &[i32]) -> i32 {
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

fn print_report(f: &Path, r: &hallmark::Report, color: bool, verbose: bool) -> Result<()> {
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

fn sign(cli: &Cli, a: &SignArgs) -> Result<i32> {
    let bytes = files::read_input(&a.input)?;
    let fmt = hallmark::io::Format::sniff(&bytes)
        .context("not a supported image (hallmark signs JPEG, PNG, WebP, TIFF and GIF)")?;
    // The manifest binds these exact bytes: a corrupt or truncated image would be signed as
    // if it were whole. Decode it first, as `stamp` does (the pixels are then dropped).
    hallmark::io::decode(&bytes, &limits(cli))
        .with_context(|| format!("cannot sign {}", a.input.display()))?;
    let signer = keys::load_credential(&a.signer.source(a.keys.as_deref())?)?;
    let mut spec = a.manifest.spec()?;
    spec.title = a
        .input
        .file_name()
        .map(|n| n.to_string_lossy().into_owned());
    spec.model = a.model.model();
    let embedding = if a.sidecar {
        hallmark::c2pa::Embedding::Sidecar
    } else {
        hallmark::c2pa::Embedding::Embedded
    };
    let signed = hallmark::c2pa::sign(&signer, &spec, fmt.mime(), &bytes, embedding)
        .with_context(|| format!("cannot sign {}", a.input.display()))?;
    for w in &signed.warnings {
        errln!("hallmark: warning: {w}");
    }
    if a.sidecar && dash_output(&a.output) {
        bail!("a sidecar needs a file name to sit beside: give -o FILE, not -o -");
    }
    if a.sidecar && a.output.is_none() && files::is_std(&a.input) {
        bail!("--sidecar with standard input needs -o OUT to name the sidecar after");
    }
    let (asset_out, side_out) = match (&a.output, a.sidecar) {
        (Some(o), true) => (Some(o.clone()), Some(o.with_extension("c2pa"))),
        (Some(o), false) => (Some(o.clone()), None),
        (None, _) => (None, Some(a.input.with_extension("c2pa"))),
    };
    let replace = files::Replace::allowed_if(a.force || a.in_place);
    if let Some(o) = &asset_out
        && let Some(named) = output_format(o, None)?
        && named != fmt
    {
        bail!(
            "{} names a {} file but the input is {}: `sign` keeps the pixels and their encoding as they are (use `stamp` or `strip --format` to convert)",
            o.display(),
            named.extension(),
            fmt.extension()
        );
    }
    if let Some(o) = &asset_out {
        files::check_not_input(o, std::slice::from_ref(&a.input), a.in_place)?;
        files::check_new(o, replace)?;
    }
    if let Some(s) = &side_out {
        // A sidecar never replaces a manifest someone already has: above all the input's own
        // `.c2pa`, which may be the only copy of its provenance.
        if std::fs::symlink_metadata(s).is_ok() && !a.force {
            return Err(json::coded(
                hallmark::ErrorCode::OutputExists,
                format!(
                    "refusing to overwrite the existing sidecar {} (pass --force to replace it)",
                    s.display()
                ),
            ));
        }
    }
    if let Some(o) = &asset_out {
        files::write_output(o, &signed.asset, replace)?;
    }
    if let Some(s) = &side_out {
        files::write_output(
            s,
            &signed.manifest_store,
            files::Replace::allowed_if(a.force),
        )?;
    }
    if cli.json {
        json::emit(
            json::SIGN,
            a.input.display().to_string(),
            &json::SignOut {
                input: a.input.display().to_string(),
                output: asset_out.map(|p| p.display().to_string()),
                sidecar: side_out.map(|p| p.display().to_string()),
                manifest_id: signed.manifest_id.clone(),
                warnings: signed.warnings.clone(),
            },
        )?;
    } else if !cli.quiet {
        outln!(
            "signed {} (manifest {}){}{}",
            a.input.display(),
            signed.manifest_id,
            asset_out
                .map(|p| format!(" -> {}", p.display()))
                .unwrap_or_default(),
            side_out
                .map(|p| format!(", sidecar {}", p.display()))
                .unwrap_or_default()
        );
    }
    Ok(0)
}

fn image(cli: &Cli, c: &ImageCmd) -> Result<i32> {
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
            no_check,
            no_webp_check,
        } => {
            files::check_not_input(output, std::slice::from_ref(input), *in_place)?;
            let replace = files::Replace::allowed_if(*force || *in_place);
            files::check_new(output, replace)?;
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
                read_back: (!*no_check).then_some(&det),
                payload,
                encode: hallmark::io::EncodeOptions {
                    jpeg_quality: *quality,
                },
                checks: if *no_webp_check {
                    hallmark::Checks::none()
                } else {
                    hallmark::Checks::default()
                },
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
