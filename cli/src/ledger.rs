//! The ledger file: append with a chained, signed record per stamp; verify; load for lookups.

use std::{
    fs,
    io::Write,
    path::{Path, PathBuf},
};

use anyhow::{Context, Result, bail};
use hallmark::ledger::{self, Record};

/// An open ledger ready for appending.
pub struct LedgerWriter {
    path: PathBuf,
    last: Option<Record>,
    file: fs::File,
}

impl LedgerWriter {
    /// Opens (or creates) a ledger. An existing ledger must verify; a torn last line left by
    /// a crash is cut off first (its stamp is then simply not recorded).
    pub fn open(path: &Path, cred: &hallmark::c2pa::SigningCredential) -> Result<Self> {
        let mut text = match fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => {
                return Err(e)
                    .with_context(|| format!("cannot read the ledger {}", path.display()));
            }
        };
        if !text.is_empty() && !text.ends_with('\n') {
            let keep = text.rfind('\n').map_or(0, |i| i + 1);
            text.truncate(keep);
            let f = fs::OpenOptions::new().write(true).open(path)?;
            f.set_len(keep as u64)?;
        }
        let records = ledger::verify_chain(&text, Some(cred.public_key())).map_err(|b| {
            anyhow::anyhow!(
                "the ledger {} is broken at line {}: {}; refusing to append",
                path.display(),
                b.line,
                b.reason
            )
        })?;
        let file = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .with_context(|| format!("cannot open the ledger {}", path.display()))?;
        Ok(LedgerWriter {
            path: path.to_path_buf(),
            last: records.into_iter().last(),
            file,
        })
    }

    /// Appends and flushes one record.
    pub fn append(
        &mut self,
        entry: ledger::Entry,
        cred: &hallmark::c2pa::SigningCredential,
    ) -> Result<()> {
        let r = ledger::next_record(self.last.as_ref(), entry, cred);
        let line = format!("{}\n", serde_json::to_string(&r)?);
        self.file
            .write_all(line.as_bytes())
            .and_then(|()| self.file.sync_data())
            .with_context(|| format!("cannot append to the ledger {}", self.path.display()))?;
        self.last = Some(r);
        Ok(())
    }
}

/// Loads and verifies a ledger for lookups.
pub fn load(path: &Path, key: Option<[u8; 32]>) -> Result<Vec<Record>> {
    let text = fs::read_to_string(path)
        .with_context(|| format!("cannot read the ledger {}", path.display()))?;
    ledger::verify_chain(&text, key).map_err(|b| {
        anyhow::anyhow!(
            "the ledger {} is broken at line {}: {}",
            path.display(),
            b.line,
            b.reason
        )
    })
}

#[derive(clap::Subcommand, Debug)]
pub enum LedgerCmd {
    /// Check the chain and signatures; name the first broken record.
    Verify {
        /// The ledger file.
        file: PathBuf,
        /// Keys folder whose signing key the ledger must be signed with.
        #[arg(long)]
        keys: Option<PathBuf>,
    },
}

pub fn run(json_out: bool, quiet: bool, cmd: &LedgerCmd) -> Result<i32> {
    match cmd {
        LedgerCmd::Verify { file, keys } => {
            let key = keys
                .as_deref()
                .map(crate::keys::load_signer)
                .transpose()?
                .map(|c| c.public_key());
            let text = fs::read_to_string(file)
                .with_context(|| format!("cannot read {}", file.display()))?;
            match ledger::verify_chain(&text, key) {
                Ok(recs) => {
                    if json_out {
                        println!(
                            "{}",
                            serde_json::json!({"file": file.display().to_string(), "valid": true, "records": recs.len(), "signer_pinned": key.is_some()})
                        );
                    } else if !quiet {
                        println!(
                            "{}: ledger intact, {} records{}",
                            file.display(),
                            recs.len(),
                            if key.is_some() {
                                ", signed by the given key"
                            } else {
                                " (signer not pinned: pass --keys to check whose key signed it)"
                            }
                        );
                    }
                    Ok(0)
                }
                Err(b) => {
                    if json_out {
                        println!(
                            "{}",
                            serde_json::json!({"file": file.display().to_string(), "valid": false, "first_broken_line": b.line, "reason": b.reason})
                        );
                    } else {
                        println!(
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
