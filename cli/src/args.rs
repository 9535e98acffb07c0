//! The command line's arguments: the global options and every command's flags.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::{Parser, Subcommand, ValueEnum};

use crate::{files, keys, label, ledger, registry, serve, text};

pub(crate) const EXIT_HELP: &str = "\
Exit codes:
  0  success: a label was found and is valid (or the command did its job)
  1  nothing found: no manifest and no watermark
  2  usage, input or I/O error
  3  found but invalid or tampered";

/// Label AI-generated content honestly and durably, and check labels.
#[derive(Parser, Debug)]
#[command(name = "hallmark", version, about, after_help = EXIT_HELP)]
pub(crate) struct Cli {
    /// Machine-readable output on stdout: one JSON object per input, each with `schema`,
    /// `file`, and the result or an `error` {code, message} (see `hallmark schema`).
    #[arg(long, global = true)]
    pub(crate) json: bool,
    /// JSON shapes: 2 (today's) or 1 (hallmark 0.1's: `error` a string, soft-binding values
    /// byte arrays, `hallmark.report/1`), for scripts not yet migrated. Deprecated.
    #[arg(long, global = true, env = "HALLMARK_JSON_VERSION", value_name = "N", default_value_t = 2, value_parser = clap::value_parser!(u8).range(1..=2), hide_env_values = true)]
    pub(crate) json_version: u8,
    /// Less output (only errors).
    #[arg(short, long, global = true)]
    pub(crate) quiet: bool,
    /// More output (repeat for debug logs on stderr).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub(crate) verbose: u8,
    /// Colour: auto (honours NO_COLOR and terminals), always, never.
    #[arg(long, global = true, value_enum, default_value_t = ColorChoice::Auto)]
    pub(crate) color: ColorChoice,
    /// Largest image to decode, in pixels (e.g. 50M); default: whatever --max-memory allows.
    #[arg(long, global = true, value_name = "N", value_parser = parse_size)]
    pub(crate) max_pixels: Option<u64>,
    /// Peak memory budget for one image, e.g. 512M or 2G (default 1G: about 53 megapixels
    /// for an 8-bit photo, 29 for 16-bit RGBA); larger images are refused before decoding.
    #[arg(long, global = true, value_name = "BYTES", value_parser = parse_size)]
    pub(crate) max_memory: Option<u64>,
    #[command(subcommand)]
    pub(crate) cmd: Cmd,
}

/// A count or size with an optional K, M or G suffix (powers of 1024 for bytes, of 1000 for
/// pixels read the same way: `50M` pixels is 52 million; close enough for a limit).
pub(crate) fn parse_size(s: &str) -> std::result::Result<u64, String> {
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
pub(crate) enum ColorChoice {
    Auto,
    Always,
    Never,
}

#[derive(Subcommand, Debug)]
pub(crate) enum Cmd {
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
pub(crate) struct ModelArgs {
    /// The generating model, recorded in the manifest.
    #[arg(long)]
    pub(crate) model: Option<String>,
    /// The model's version.
    #[arg(long, requires = "model")]
    pub(crate) model_version: Option<String>,
}

impl ModelArgs {
    pub(crate) fn model(&self) -> Option<hallmark::c2pa::Model> {
        self.model.as_ref().map(|n| hallmark::c2pa::Model {
            name: n.clone(),
            version: self.model_version.clone(),
        })
    }
}

/// What a manifest says beyond hallmark's own statements, as c2patool users give it.
#[derive(clap::Args, Debug, Default)]
pub(crate) struct ManifestArgs {
    /// A manifest definition in c2patool's JSON format: its title, claim generator,
    /// assertions, actions, ingredients, `ingredient_paths` and `thumbnail` (files relative
    /// to the definition) are kept; its own c2pa.created action replaces hallmark's; keys
    /// that choose the signer are ignored with a warning.
    #[arg(long, value_name = "JSON")]
    pub(crate) manifest: Option<PathBuf>,
    /// The file this asset was made from, recorded as its parent ingredient (with its
    /// manifest, if it has one); c2patool's --parent.
    #[arg(long, value_name = "FILE")]
    pub(crate) parent: Option<PathBuf>,
    /// A file that is part of this asset, recorded as a componentOf ingredient (repeatable).
    #[arg(long, value_name = "FILE")]
    pub(crate) ingredient: Vec<PathBuf>,
    /// The digital source type of the creating action: an IPTC term (digitalCapture,
    /// trainedAlgorithmicMedia, compositeWithTrainedAlgorithmicMedia, ...) or a full IRI.
    /// Default: the definition's own, else trainedAlgorithmicMedia.
    #[arg(long, value_name = "TYPE")]
    pub(crate) source_type: Option<String>,
}

impl ManifestArgs {
    /// The manifest specification these flags describe (files read, paths in the
    /// definition resolved against its folder).
    pub(crate) fn spec(&self) -> Result<hallmark::c2pa::ManifestSpec> {
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
pub(crate) struct StampArgs {
    /// Images to stamp.
    #[arg(required = true)]
    pub(crate) inputs: Vec<PathBuf>,
    /// Output file (one input only).
    #[arg(short, long, conflicts_with = "out_dir")]
    pub(crate) output: Option<PathBuf>,
    /// Output folder (any number of inputs; names kept).
    #[arg(long)]
    pub(crate) out_dir: Option<PathBuf>,
    /// Keys folder written by `hallmark keygen`.
    #[arg(long)]
    pub(crate) keys: PathBuf,
    #[command(flatten)]
    pub(crate) signer: keys::SignerArgs,
    #[command(flatten)]
    pub(crate) model: ModelArgs,
    #[command(flatten)]
    pub(crate) manifest: ManifestArgs,
    /// Watermark payload, 16 hex digits (default: a fresh random ID per image).
    #[arg(long)]
    pub(crate) payload: Option<String>,
    /// JPEG quality of the output (default: the input's, estimated).
    #[arg(long, value_parser = clap::value_parser!(u8).range(1..=100))]
    pub(crate) quality: Option<u8>,
    /// Allow the output to replace the input.
    #[arg(long)]
    pub(crate) in_place: bool,
    /// Replace existing output files (without it, an existing output is an error).
    #[arg(long)]
    pub(crate) force: bool,
    /// Output format: jpeg, png, webp or tiff (default: what -o's extension names, else the
    /// input's). With --out-dir, the output names take this format's extension.
    #[arg(long, value_name = "FORMAT", value_parser = parse_format)]
    pub(crate) format: Option<hallmark::io::Format>,
    /// Append a signed record of every stamp to this ledger file.
    #[arg(long)]
    pub(crate) ledger: Option<PathBuf>,
    #[command(flatten)]
    pub(crate) registry: registry::RegistryArgs,
    #[command(flatten)]
    pub(crate) checks: CheckArgs,
}

/// The checks of each marked output (`stamp`, `label`, `image embed`).
#[derive(clap::Args, Debug)]
pub(crate) struct CheckArgs {
    /// Skip reading the watermark back from each output, and so the stronger re-embedding of
    /// outputs where it does not read (saves a decode and a detection per file).
    #[arg(long)]
    pub(crate) no_check: bool,
    /// Skip checking that each output's watermark survives a WebP quality-50 round trip, and
    /// so the stronger re-embedding of (mostly flat) pictures where it does not (saves a
    /// WebP encode, a decode and a detection per file).
    #[arg(long)]
    pub(crate) no_webp_check: bool,
}

impl CheckArgs {
    /// Applies the flags to a stamper.
    pub(crate) fn apply(&self, s: &mut hallmark::Stamper) {
        s.check_readback = !self.no_check;
        s.checks = self.checks();
    }

    /// The survival checks the flags leave on.
    pub(crate) fn checks(&self) -> hallmark::Checks {
        if self.no_webp_check {
            hallmark::Checks::none()
        } else {
            hallmark::Checks::default()
        }
    }
}

#[derive(clap::Args, Debug)]
pub(crate) struct VerifyArgs {
    /// Files (or folders) to check.
    #[arg(required = true)]
    pub(crate) files: Vec<PathBuf>,
    /// PEM trust anchors for C2PA signers (also: $HALLMARK_TRUST_ANCHORS, the trust
    /// settings' user_anchors, or ~/.config/hallmark/trust-anchors.pem).
    #[arg(long, value_name = "PEM")]
    pub(crate) trust: Option<PathBuf>,
    /// A PEM trust list, such as the C2PA trust list: c2patool's --trust_anchors (also:
    /// $C2PATOOL_TRUST_ANCHORS, the trust settings' trust_anchors).
    #[arg(long, value_name = "PEM")]
    pub(crate) trust_anchors: Option<PathBuf>,
    /// Signing certificates trusted as they are: PEM certificates or base64 SHA-256 hashes
    /// of them, one per line; c2patool's --allowed_list (also: $HALLMARK_ALLOWED_LIST,
    /// $C2PATOOL_ALLOWED_LIST, the trust settings' allowed_list).
    #[arg(long, value_name = "FILE")]
    pub(crate) allowed_list: Option<PathBuf>,
    /// Extra extended key usages a signing certificate may carry, one OID per line;
    /// c2patool's --trust_config (also: $HALLMARK_TRUST_CONFIG, $C2PATOOL_TRUST_CONFIG, the
    /// trust settings' trust_config).
    #[arg(long, value_name = "FILE")]
    pub(crate) trust_config: Option<PathBuf>,
    /// A trust settings file (TOML, or JSON by its extension) in c2pa's layout: a `[trust]`
    /// table with user_anchors, trust_anchors, allowed_list, trust_config, each the content
    /// or a path relative to the file (also: $HALLMARK_TRUST_SETTINGS, or
    /// ~/.config/hallmark/trust.toml).
    #[arg(long, value_name = "FILE")]
    pub(crate) trust_settings: Option<PathBuf>,
    /// Print c2pa's report on each file's manifest store instead of hallmark's verdict: the
    /// JSON c2patool prints (manifests, assertions, validation results), with hallmark's own
    /// checks' failures added. The exit code is verify's.
    #[arg(long, conflicts_with = "resolve")]
    pub(crate) c2pa_report: bool,
    /// With --c2pa-report: the detailed form, as `c2patool --detailed` prints it.
    #[arg(long, requires = "c2pa_report")]
    pub(crate) detailed: bool,
    /// Watermark key file(s) or keys folder(s) to look for watermarks with (repeatable; a
    /// folder of keys folders and key files counts every key in it; the p-value is multiplied
    /// by the number of keys).
    #[arg(long = "key", value_name = "KEY")]
    pub(crate) keys: Vec<PathBuf>,
    /// A keys folder: its watermark key and its CA as trust anchor.
    #[arg(long = "keys", value_name = "DIR")]
    pub(crate) keys_dir: Option<PathBuf>,
    /// Parallel jobs for folders.
    #[arg(short = 'j', long, default_value_t = 0)]
    pub(crate) jobs: usize,
    /// Look detected watermark IDs up in this ledger (who stamped it, when, which model).
    #[arg(long)]
    pub(crate) ledger: Option<PathBuf>,
    /// In folders, check only files matching this glob (repeatable; .gitignore syntax,
    /// relative to the folder, e.g. `*.jpg` or `renders/**`).
    #[arg(long, value_name = "GLOB")]
    pub(crate) include: Vec<String>,
    /// In folders, skip files matching this glob (repeatable).
    #[arg(long, value_name = "GLOB")]
    pub(crate) exclude: Vec<String>,
    /// Have this hallmark service verify the files (POST URL/v1/verify): it looks for the
    /// watermark with its keys and recovers a stripped manifest from its registry.
    #[arg(long, value_name = "URL", conflicts_with_all = ["keys", "keys_dir", "ledger", "trust", "trust_anchors", "allowed_list", "trust_config", "trust_settings"])]
    pub(crate) resolve: Option<String>,
    /// A token for a service that keeps reads private (`hallmark serve --private-reads`).
    #[arg(
        long,
        value_name = "TOKEN",
        env = "HALLMARK_REGISTRY_TOKEN",
        hide_env_values = true,
        requires = "resolve"
    )]
    pub(crate) registry_token: Option<String>,
}

#[derive(clap::Args, Debug)]
pub(crate) struct SignArgs {
    /// The image to sign.
    pub(crate) input: PathBuf,
    /// Output file with the manifest embedded.
    #[arg(short, long, required_unless_present = "sidecar")]
    pub(crate) output: Option<PathBuf>,
    /// Write the manifest to a sidecar `.c2pa` file beside the output (or the input).
    #[arg(long)]
    pub(crate) sidecar: bool,
    /// Keys folder written by `hallmark keygen` (not needed with --cert).
    #[arg(long, required_unless_present = "cert")]
    pub(crate) keys: Option<PathBuf>,
    #[command(flatten)]
    pub(crate) signer: keys::SignerArgs,
    #[command(flatten)]
    pub(crate) model: ModelArgs,
    #[command(flatten)]
    pub(crate) manifest: ManifestArgs,
    /// Allow the output to replace the input.
    #[arg(long)]
    pub(crate) in_place: bool,
    /// Replace existing outputs: the output file, or the sidecar `.c2pa` file.
    #[arg(long)]
    pub(crate) force: bool,
}

#[derive(Subcommand, Debug)]
pub(crate) enum ImageCmd {
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
        #[command(flatten)]
        checks: CheckArgs,
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

/// `-j N`: N worker threads, 0 for one per core.
pub(crate) fn jobs(n: usize) -> usize {
    if n == 0 {
        std::thread::available_parallelism().map_or(1, |n| n.get())
    } else {
        n
    }
}

/// `--format NAME`: a format name as an extension would give it.
pub(crate) fn parse_format(s: &str) -> std::result::Result<hallmark::io::Format, String> {
    hallmark::io::Format::from_extension(s)
        .ok_or_else(|| format!("unknown format {s:?} (jpeg, png, webp, tiff)"))
}
