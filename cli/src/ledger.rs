//! The ledger file: append with a chained, signed record per stamp; verify; load for lookups.

use std::{
    fs,
    io::{Read, Seek, SeekFrom, Write},
    path::{Path, PathBuf},
};

use crate::out::outln;
use anyhow::{Context, Result, bail};
use hallmark::ledger::{self, Record};

/// An open ledger ready for appending, shared safely with other processes.
///
/// Every append takes an exclusive advisory lock on the file (`flock`), reads whatever other
/// processes appended since this writer last looked, checks that it continues the chain, and
/// only then writes its own record after the true last one and syncs it. So four `stamp
/// --ledger SAME` processes, or two `label` runs sharing a ledger, produce one valid chain.
pub struct LedgerWriter {
    path: PathBuf,
    file: fs::File,
    /// The last record known to be in the file, and the file's length after it.
    last: Option<Record>,
    len: u64,
    /// 1-based number of the next line.
    next_line: usize,
}

impl LedgerWriter {
    /// Opens (or creates) a ledger. An existing ledger must verify. A last line without its
    /// newline is kept when it is a complete record that continues the chain (the newline is
    /// added); when it is a torn fragment left by a killed writer, it is cut off (that stamp
    /// was never completed, see `stamp`'s order).
    pub fn open(path: &Path, key: &hallmark::c2pa::RecordKey) -> Result<Self> {
        let file = fs::OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(path)
            .with_context(|| format!("cannot open the ledger {}", path.display()))?;
        let mut w = LedgerWriter {
            path: path.to_path_buf(),
            file,
            last: None,
            len: 0,
            next_line: 1,
        };
        w.locked(|w| w.catch_up(Some(key.public_key())))?;
        Ok(w)
    }

    /// Runs `f` holding the exclusive lock on the ledger file.
    fn locked<T>(&mut self, f: impl FnOnce(&mut Self) -> Result<T>) -> Result<T> {
        self.file
            .lock()
            .with_context(|| format!("cannot lock the ledger {}", self.path.display()))?;
        let r = f(self);
        let _ = self.file.unlock();
        r
    }

    /// Reads what was appended since `self.len` (under the lock), repairs a torn tail, and
    /// checks that it continues the chain.
    fn catch_up(&mut self, key: Option<[u8; 32]>) -> Result<()> {
        let len = self
            .file
            .metadata()
            .with_context(|| format!("cannot stat the ledger {}", self.path.display()))?
            .len();
        if len < self.len {
            return Err(crate::json::coded(
                hallmark::ErrorCode::Io,
                format!(
                    "the ledger {} shrank while it was being appended to (was {} bytes, now {len}); refusing to append",
                    self.path.display(),
                    self.len
                ),
            ));
        }
        if len == self.len {
            return Ok(());
        }
        let mut new = Vec::with_capacity(usize::try_from(len - self.len).unwrap_or(0));
        self.file.seek(SeekFrom::Start(self.len))?;
        (&self.file)
            .take(len - self.len)
            .read_to_end(&mut new)
            .with_context(|| format!("cannot read the ledger {}", self.path.display()))?;
        let mut text = String::from_utf8(new).map_err(|e| {
            anyhow::anyhow!(
                "the ledger {} is broken near byte {}: not UTF-8 text; refusing to append",
                self.path.display(),
                self.len + e.utf8_error().valid_up_to() as u64
            )
        })?;
        let mut end = len;
        if !text.ends_with('\n') {
            let cut = text.rfind('\n').map_or(0, |i| i + 1);
            let tail = &text[cut..];
            let complete =
                hallmark::ledger::verify_continuation(self.last.as_ref(), 1, &text, key).is_ok();
            if complete && !tail.trim().is_empty() {
                // A whole record whose newline was lost: keep it, end the line.
                self.file
                    .write_all(b"\n")
                    .and_then(|()| self.file.sync_data())
                    .with_context(|| format!("cannot repair the ledger {}", self.path.display()))?;
                text.push('\n');
                end += 1;
            } else if serde_json::from_str::<serde_json::Value>(tail).is_err() {
                // A torn fragment from a killed writer (never whole JSON): cut it off.
                end = self.len + cut as u64;
                self.file
                    .set_len(end)
                    .with_context(|| format!("cannot repair the ledger {}", self.path.display()))?;
                text.truncate(cut);
            }
            // Otherwise a whole record that does not continue the chain: nothing is cut, and
            // the check below refuses to append after it.
        }
        let records =
            hallmark::ledger::verify_continuation(self.last.as_ref(), self.next_line, &text, key)
                .map_err(|b| {
                anyhow::anyhow!(
                    "the ledger {} is broken at line {}: {}; refusing to append",
                    self.path.display(),
                    b.line,
                    b.reason
                )
            })?;
        self.next_line += text.lines().count();
        if let Some(r) = records.into_iter().last() {
            self.last = Some(r);
        }
        self.len = end;
        Ok(())
    }

    /// Appends one record after the ledger's true last record (whoever wrote it) and syncs
    /// it to disk before returning.
    pub fn append(
        &mut self,
        entry: ledger::Entry,
        key: &hallmark::c2pa::RecordKey,
    ) -> Result<Record> {
        self.locked(|w| {
            w.catch_up(Some(key.public_key()))?;
            let r = ledger::next_record(w.last.as_ref(), entry, key);
            let line = format!("{}\n", serde_json::to_string(&r)?);
            let res = w
                .file
                .write_all(line.as_bytes())
                .and_then(|()| w.file.sync_data());
            if let Err(e) = res {
                // Leave no partial line behind (a full disk can take half of it).
                let _ = w.file.set_len(w.len);
                return Err(e)
                    .with_context(|| format!("cannot append to the ledger {}", w.path.display()));
            }
            w.len += line.len() as u64;
            w.next_line += 1;
            w.last = Some(r.clone());
            Ok(r)
        })
    }
}

/// Loads and verifies a ledger for lookups.
pub use crate::files::check::load_ledger as load;

#[derive(clap::Subcommand, Debug)]
pub enum LedgerCmd {
    /// Check the chain and signatures; name the first broken record.
    #[command(
        after_help = "Examples:\n  hallmark ledger verify stamps.jsonl --keys keys\n  hallmark ledger verify stamps.jsonl --keys keys --expect checkpoint.json"
    )]
    Verify {
        /// The ledger file.
        file: PathBuf,
        /// Keys folder whose signing key the ledger must be signed with.
        #[arg(long)]
        keys: Option<PathBuf>,
        /// A checkpoint printed earlier by `ledger head` (a file, or the JSON itself): the
        /// ledger must still hold every record it counted (exit 3 if records were cut off
        /// the end or rewritten).
        #[arg(long, value_name = "CHECKPOINT")]
        expect: Option<String>,
    },
    #[command(
        after_help = "Examples:\n  hallmark ledger head stamps.jsonl --keys keys > checkpoint.json\n  hallmark ledger verify stamps.jsonl --keys keys --expect checkpoint.json"
    )]
    /// Print a signed checkpoint of the ledger (record count and head hash) to publish
    /// elsewhere; `ledger verify --expect` later proves nothing was cut off.
    Head {
        /// The ledger file.
        file: PathBuf,
        /// Keys folder whose signing key signs the checkpoint (the ledger's).
        #[arg(long)]
        keys: PathBuf,
        /// Also register the checkpoint with this hallmark registry: a ledger pushed there
        /// later that is shorter, or rewritten, is refused.
        #[arg(long, value_name = "URL")]
        registry: Option<String>,
        /// The registry's write token.
        #[arg(
            long,
            value_name = "TOKEN",
            env = "HALLMARK_REGISTRY_TOKEN",
            hide_env_values = true,
            requires = "registry"
        )]
        registry_token: Option<String>,
    },
    /// Register every stamp of a ledger with a hallmark registry (`hallmark serve`). The
    /// chain and signatures are checked here and again by the service before it stores
    /// anything; records it already has are left as they are.
    #[command(
        after_help = "Examples:\n  hallmark ledger push stamps.jsonl --registry http://127.0.0.1:8080 --registry-token $TOKEN"
    )]
    Push {
        /// The ledger file.
        file: PathBuf,
        /// The registry's URL.
        #[arg(long, value_name = "URL")]
        registry: String,
        /// The registry's write token (from `hallmark serve token create`).
        #[arg(
            long,
            value_name = "TOKEN",
            env = "HALLMARK_REGISTRY_TOKEN",
            hide_env_values = true
        )]
        registry_token: Option<String>,
        /// Keys folder whose signing key the ledger must be signed with.
        #[arg(long)]
        keys: Option<PathBuf>,
    },
}

/// A checkpoint given on the command line: a file holding one, or the JSON text itself.
fn read_checkpoint(arg: &str) -> Result<hallmark::ledger::Checkpoint> {
    let text = if arg.trim_start().starts_with('{') {
        arg.to_string()
    } else {
        crate::files::read_text_capped(
            Path::new(arg),
            crate::files::MAX_KEY_BYTES,
            "the checkpoint",
        )?
    };
    serde_json::from_str(text.trim())
        .context("not a ledger checkpoint (expected the JSON `ledger head` prints)")
}

/// The schema and inputs of a ledger command's `--json` objects (see `main::json_inputs`).
pub fn json_inputs(cmd: &LedgerCmd) -> (&'static str, Vec<String>) {
    match cmd {
        LedgerCmd::Head { file, .. } => {
            (crate::json::LEDGER_HEAD, vec![file.display().to_string()])
        }
        LedgerCmd::Verify { file, .. } => {
            (crate::json::LEDGER_VERIFY, vec![file.display().to_string()])
        }
        LedgerCmd::Push { file, .. } => {
            (crate::json::LEDGER_PUSH, vec![file.display().to_string()])
        }
    }
}

pub fn run(json_out: bool, quiet: bool, cmd: &LedgerCmd) -> Result<i32> {
    match cmd {
        LedgerCmd::Push {
            file,
            registry,
            registry_token,
            keys,
        } => {
            let key = keys
                .as_deref()
                .map(crate::keys::load_signer)
                .transpose()?
                .and_then(|c| c.public_key());
            let recs = load(file, key)?;
            if recs.is_empty() {
                bail!("{} holds no records: nothing to push", file.display());
            }
            let text = crate::files::read_text_capped(
                file,
                crate::files::check::MAX_LEDGER_BYTES,
                "the ledger",
            )?;
            let client = crate::registry::Client::new(registry, registry_token.clone())?;
            let answer = client.push_ledger(text.as_bytes())?;
            let mut out: crate::json::LedgerPushOut = serde_json::from_value(answer)
                .context("the registry's answer is not a ledger push result")?;
            out.registry = registry.clone();
            if json_out {
                crate::json::emit(crate::json::LEDGER_PUSH, file.display().to_string(), &out)?;
            } else if !quiet {
                outln!(
                    "{}: {} records verified and pushed to {}: {} new, {} already there, {} conflicting",
                    file.display(),
                    out.records,
                    registry,
                    out.created,
                    out.existing,
                    out.conflicts
                );
            }
            Ok(if out.conflicts > 0 { 3 } else { 0 })
        }
        LedgerCmd::Head {
            file,
            keys,
            registry,
            registry_token,
        } => {
            let cred = crate::keys::load_signer(keys)?;
            let key = record_key(&cred)?;
            let recs = load(file, Some(key.public_key()))?;
            let cp = ledger::checkpoint(&recs, key);
            if let Some(url) = registry {
                crate::registry::Client::new(url, registry_token.clone())?
                    .push_checkpoint(&cp)
                    .with_context(|| format!("the checkpoint was not registered with {url}"))?;
            }
            // The checkpoint is the artifact: one JSON line on stdout (with --json, inside
            // the usual object).
            if json_out {
                crate::json::emit(
                    crate::json::LEDGER_HEAD,
                    file.display().to_string(),
                    &crate::json::LedgerHeadOut { checkpoint: &cp },
                )?;
            } else {
                crate::out::raw_line(&serde_json::to_string(&cp)?)?;
            }
            if !quiet && !json_out {
                crate::out::errln!(
                    "{}: checkpoint of {} records, head {}; publish it, then check later with `hallmark ledger verify {} --expect CHECKPOINT`",
                    file.display(),
                    cp.records,
                    cp.head,
                    file.display()
                );
            }
            Ok(0)
        }
        LedgerCmd::Verify { file, keys, expect } => {
            let key = keys
                .as_deref()
                .map(crate::keys::load_signer)
                .transpose()?
                .and_then(|c| c.public_key());
            let checkpoint = expect.as_deref().map(read_checkpoint).transpose()?;
            let text = read_ledger(file)?;
            let verified = ledger::verify_chain(&text, key).and_then(|recs| {
                if let Some(cp) = &checkpoint
                    && let Err(reason) = ledger::check_checkpoint(&recs, cp, key)
                {
                    return Err(ledger::Broken {
                        line: recs.len() + 1,
                        reason,
                    });
                }
                Ok(recs)
            });
            match verified {
                Ok(recs) => {
                    if json_out {
                        crate::json::emit(
                            crate::json::LEDGER_VERIFY,
                            file.display().to_string(),
                            &crate::json::LedgerVerifyOut {
                                valid: true,
                                records: Some(recs.len()),
                                signer_pinned: key.is_some(),
                                checkpoint_checked: checkpoint.is_some(),
                                first_broken_line: None,
                                reason: None,
                            },
                        )?;
                    } else if !quiet {
                        outln!(
                            "{}: ledger intact, {} records{}{}",
                            file.display(),
                            recs.len(),
                            if key.is_some() {
                                ", signed by the given key"
                            } else {
                                " (signer not pinned: pass --keys to check whose key signed it)"
                            },
                            match &checkpoint {
                                Some(cp) => format!(
                                    ", holding all {} records of the checkpoint of {}",
                                    cp.records, cp.time
                                ),
                                None => String::new(),
                            }
                        );
                    }
                    Ok(0)
                }
                Err(b) => {
                    if json_out {
                        crate::json::emit(
                            crate::json::LEDGER_VERIFY,
                            file.display().to_string(),
                            &crate::json::LedgerVerifyOut {
                                valid: false,
                                records: None,
                                signer_pinned: key.is_some(),
                                checkpoint_checked: checkpoint.is_some(),
                                first_broken_line: Some(b.line),
                                reason: Some(b.reason.clone()),
                            },
                        )?;
                    } else {
                        outln!(
                            "{}: ledger BROKEN at line {}: {}",
                            file.display(),
                            b.line,
                            b.reason
                        );
                    }
                    Ok(3)
                }
            }
        }
    }
}

pub fn ensure_parent(path: &Path) -> Result<()> {
    if let Some(p) = path.parent()
        && !p.as_os_str().is_empty()
        && !p.exists()
    {
        bail!("the ledger's folder {} does not exist", p.display());
    }
    Ok(())
}

/// Reads a ledger for checking. Ledgers grow with every stamp, so the cap is generous
/// (512 MiB, about 800,000 records).
fn read_ledger(path: &Path) -> Result<String> {
    crate::files::read_text_capped(path, crate::files::check::MAX_LEDGER_BYTES, "the ledger")
}

/// The key that signs ledger records for `cred`, or a clear error when it has none.
pub fn record_key(cred: &hallmark::c2pa::SigningCredential) -> Result<&hallmark::c2pa::RecordKey> {
    cred.record_key().ok_or_else(|| {
        crate::json::coded(
            hallmark::ErrorCode::Key,
            format!(
                "the ledger is signed with an Ed25519 key, and this {} credential has none: give --keys DIR too (its ledger.key, or its signing key when that is Ed25519, signs the records)",
                cred.alg()
            ),
        )
    })
}
