//! `hallmark serve`: the verification service and soft-binding registry (hallmark-server).

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result};

use crate::files;
use crate::out::outln;

/// `hallmark serve`.
#[derive(clap::Args, Debug)]
#[command(args_conflicts_with_subcommands = true)]
pub struct ServeArgs {
    #[command(subcommand)]
    cmd: Option<ServeCmd>,
    /// Address to listen on (loopback by default; put a TLS proxy in front to expose it).
    #[arg(long, default_value = "127.0.0.1:8080", value_name = "ADDR")]
    listen: String,
    /// The registry database: sqlite:PATH (created on first run) or postgres://...
    #[arg(
        long,
        default_value = "sqlite:hallmark-registry.db",
        value_name = "URL",
        env = "HALLMARK_DB"
    )]
    db: String,
    /// Keys folder(s) or watermark key file(s) to detect watermarks with (repeatable).
    #[arg(long = "keys", value_name = "DIR")]
    keys: Vec<PathBuf>,
    /// PEM trust anchors for C2PA signers (default: the first keys folder's CA, if any).
    #[arg(long, value_name = "PEM")]
    trust: Option<PathBuf>,
    /// Largest request body, in MB.
    #[arg(long, default_value_t = 50, value_name = "MB")]
    max_body_mb: usize,
    /// Longest a request may take, in seconds.
    #[arg(long, default_value_t = 30, value_name = "SECONDS")]
    timeout: u64,
    /// Requests handled at once (more wait, within their timeout).
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// Reads need a bearer token too (by default lookups and verification are public).
    #[arg(long)]
    private_reads: bool,
}

#[derive(clap::Subcommand, Debug)]
enum ServeCmd {
    /// Write tokens for the registry.
    #[command(subcommand)]
    Token(TokenCmd),
}

#[derive(clap::Subcommand, Debug)]
enum TokenCmd {
    /// Create a write token and print it as the last line (only its hash is stored).
    #[command(
        after_help = "Examples:\n  hallmark serve token create --db sqlite:registry.db\n  TOKEN=$(hallmark serve token create --db sqlite:registry.db | tail -1)"
    )]
    Create {
        /// The registry database (as for `hallmark serve`).
        #[arg(
            long,
            default_value = "sqlite:hallmark-registry.db",
            value_name = "URL",
            env = "HALLMARK_DB"
        )]
        db: String,
        /// A note stored with the token (who it is for).
        #[arg(long)]
        label: Option<String>,
    },
}

/// Runs `hallmark serve` (or its `token` subcommand).
pub fn run(quiet: bool, a: &ServeArgs) -> Result<i32> {
    if let Some(ServeCmd::Token(TokenCmd::Create { db, label })) = &a.cmd {
        let token = hallmark_server::block_on(async {
            let store = hallmark_server::store::Store::open(db).await?;
            let t = store.create_token(label.as_deref()).await;
            store.close().await;
            t
        })?
        .context("cannot create a token")?;
        if !quiet {
            crate::out::errln!(
                "hallmark: a new write token for {} (keep it secret; pass it as --registry-token or HALLMARK_REGISTRY_TOKEN):",
                db
            );
        }
        outln!("{token}");
        return Ok(0);
    }
    let mut keys = vec![];
    for k in &a.keys {
        keys.push(files::keys::load_watermark_key(k)?);
    }
    let first_dir = a.keys.iter().find(|k| k.is_dir()).map(PathBuf::as_path);
    let trust = files::check::trust_settings(a.trust.as_deref(), first_dir)?;
    let config = hallmark_server::Config {
        keys,
        trust,
        max_body: a.max_body_mb.saturating_mul(1024 * 1024),
        timeout: Duration::from_secs(a.timeout.max(1)),
        concurrency: a.concurrency.max(1),
        private_reads: a.private_reads,
    };
    let nkeys = config.keys.len();
    let res = hallmark_server::block_on(hallmark_server::run(
        &a.listen,
        &a.db,
        config,
        |addr, backend| {
            crate::out::errln!(
                "hallmark serve: listening on http://{addr} (database {backend}, {nkeys} watermark key(s))"
            );
        },
    ))?;
    res.map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(0)
}
