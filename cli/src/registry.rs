//! The client side of a hallmark registry (`hallmark serve`): stamps are registered through a
//! queue file so that none is lost when the service is down.
//!
//! Each stamp's signed record and manifest store is appended to the queue (and synced) as
//! soon as the stamped file is in place; at the end of the run the queue is sent, oldest
//! first, and what the service acknowledged is removed. A run killed at any point, or a
//! service that does not answer, leaves the unsent records in the queue for the next run
//! with `--registry` (or `hallmark ledger push`). The service stores a record once however
//! often it is sent, so a record sent but not yet removed when a run died is harmless.

use std::fs;
use std::io::{Read as _, Seek as _, SeekFrom, Write as _};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use base64::Engine as _;
use hallmark::ledger::Record;

/// The queue file's default name, in the keys folder.
pub const QUEUE: &str = "registry-queue.jsonl";

/// `--registry`, `--registry-token`, `--registry-queue` (shared by `stamp` and `label`).
#[derive(clap::Args, Debug, Clone)]
pub struct RegistryArgs {
    /// Register every stamp with this hallmark registry (`hallmark serve`), e.g.
    /// http://127.0.0.1:8080. Unsent stamps wait in the queue file for the next run.
    #[arg(long, value_name = "URL")]
    pub registry: Option<String>,
    /// The registry's write token (from `hallmark serve token create`).
    #[arg(
        long,
        value_name = "TOKEN",
        env = "HALLMARK_REGISTRY_TOKEN",
        hide_env_values = true
    )]
    pub registry_token: Option<String>,
    /// Where stamps wait until the registry acknowledges them (default:
    /// registry-queue.jsonl in the keys folder).
    #[arg(long, value_name = "FILE", requires = "registry")]
    pub registry_queue: Option<PathBuf>,
}

/// A registry and its local queue.
pub struct Client {
    url: String,
    token: Option<String>,
    agent: ureq::Agent,
}

/// What sending one record gave.
enum Sent {
    /// Stored (or already there).
    Done,
    /// The service is unreachable or failing: try again later.
    Later(String),
    /// The service refuses this record for good (malformed, conflicting).
    Refused(String),
    /// The service refuses the token: every record would fail alike.
    Unauthorized(String),
}

impl Client {
    /// A client for the registry at `url`.
    ///
    /// # Errors
    /// A URL that is not http(s).
    pub fn new(url: &str, token: Option<String>) -> Result<Client> {
        let url = url.trim_end_matches('/').to_string();
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            bail!("--registry/--resolve takes an http:// or https:// URL, not {url:?}");
        }
        let agent = ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_secs(60)))
            .timeout_connect(Some(Duration::from_secs(5)))
            .http_status_as_error(false)
            .build()
            .into();
        Ok(Client { url, token, agent })
    }

    fn auth(&self) -> Option<String> {
        self.token.as_ref().map(|t| format!("Bearer {t}"))
    }

    /// POSTs `body` to `path`, retrying transient failures (no answer, 5xx) with backoff.
    fn post(&self, path: &str, content_type: &str, body: &[u8]) -> Result<(u16, String), String> {
        let url = format!("{}{path}", self.url);
        let mut last = String::new();
        for (attempt, wait_ms) in [0u64, 250, 1000].into_iter().enumerate() {
            if wait_ms > 0 {
                std::thread::sleep(Duration::from_millis(wait_ms));
            }
            let mut req = self.agent.post(&url).header("Content-Type", content_type);
            if let Some(a) = self.auth() {
                req = req.header("Authorization", a);
            }
            match req.send(body) {
                Ok(mut resp) => {
                    let status = resp.status().as_u16();
                    let text = resp
                        .body_mut()
                        .with_config()
                        .limit(64 * 1024 * 1024)
                        .read_to_string()
                        .unwrap_or_default();
                    if status >= 500 && attempt < 2 {
                        last = format!("the registry answered {status}");
                        continue;
                    }
                    return Ok((status, text));
                }
                Err(e) => last = format!("the registry at {} does not answer: {e}", self.url),
            }
        }
        Err(last)
    }

    fn send(&self, line: &str) -> Sent {
        match self.post("/v1/records", "application/json", line.as_bytes()) {
            Err(e) => Sent::Later(e),
            Ok((200 | 201, _)) => Sent::Done,
            Ok((401 | 403, body)) => Sent::Unauthorized(error_message(&body)),
            Ok((s, body)) if s >= 500 || s == 408 || s == 429 => Sent::Later(format!(
                "the registry answered {s}: {}",
                error_message(&body)
            )),
            Ok((s, body)) => Sent::Refused(format!("{s}: {}", error_message(&body))),
        }
    }

    /// Sends a ledger's text to `/v1/ledger` (the service checks the chain before storing
    /// anything) and returns its JSON answer.
    ///
    /// # Errors
    /// The service is unreachable or refuses the ledger.
    pub fn push_ledger(&self, text: &[u8]) -> Result<serde_json::Value> {
        let (status, body) = self
            .post("/v1/ledger", "application/x-ndjson", text)
            .map_err(anyhow::Error::msg)?;
        if status != 200 {
            bail!(
                "the registry refused the ledger ({status}): {}",
                error_message(&body)
            );
        }
        serde_json::from_str(&body).context("the registry's answer is not JSON")
    }

    /// Registers a signed ledger checkpoint (`/v1/checkpoints`).
    ///
    /// # Errors
    /// The service is unreachable or refuses it (a conflicting checkpoint: the ledger was
    /// rewritten).
    pub fn push_checkpoint(&self, cp: &hallmark::ledger::Checkpoint) -> Result<()> {
        let body = serde_json::to_vec(cp)?;
        let (status, body) = self
            .post("/v1/checkpoints", "application/json", &body)
            .map_err(anyhow::Error::msg)?;
        if status != 200 && status != 201 {
            bail!(
                "the registry refused the checkpoint ({status}): {}",
                error_message(&body)
            );
        }
        Ok(())
    }

    /// Has the service verify a file (`/v1/verify`) and returns its report.
    ///
    /// # Errors
    /// The service is unreachable, or refuses the file (its error, with its code).
    pub fn verify(&self, bytes: &[u8]) -> Result<serde_json::Value> {
        let (status, body) = self
            .post("/v1/verify", "application/octet-stream", bytes)
            .map_err(anyhow::Error::msg)?;
        let v: serde_json::Value = serde_json::from_str(&body)
            .with_context(|| format!("the registry's answer ({status}) is not JSON"))?;
        if status != 200 {
            let code = v["error"]["code"].as_str().unwrap_or("");
            let code = hallmark::ErrorCode::from_name(code).unwrap_or(hallmark::ErrorCode::Refused);
            return Err(crate::json::coded(
                code,
                format!(
                    "the registry cannot verify it ({status}): {}",
                    error_message(&body)
                ),
            ));
        }
        Ok(v)
    }
}

/// The `message` of an `{"error": {...}}` answer, made safe to print.
fn error_message(body: &str) -> String {
    let msg = serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v["error"]["message"].as_str().map(str::to_string))
        .unwrap_or_else(|| body.chars().take(200).collect());
    crate::out::escape(&msg).into_owned()
}

/// The queue of records waiting for the registry.
pub struct Queue {
    path: PathBuf,
}

impl Queue {
    /// The queue at `path` (created on first use).
    pub fn new(path: PathBuf) -> Queue {
        Queue { path }
    }

    /// The queue a command uses: `--registry-queue`, else the keys folder's.
    pub fn for_args(a: &RegistryArgs, keys: &Path) -> Queue {
        Queue::new(a.registry_queue.clone().unwrap_or_else(|| keys.join(QUEUE)))
    }

    fn open(&self) -> Result<fs::File> {
        if let Some(parent) = self.path.parent().filter(|p| !p.as_os_str().is_empty()) {
            fs::create_dir_all(parent)
                .with_context(|| format!("cannot create {}", parent.display()))?;
        }
        fs::OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(&self.path)
            .with_context(|| format!("cannot open the registry queue {}", self.path.display()))
    }

    /// Appends a stamp's record and manifest store, synced before returning.
    ///
    /// # Errors
    /// The queue cannot be written.
    pub fn push(&self, record: &Record, manifest_store: &[u8]) -> Result<()> {
        let line = serde_json::to_string(&hallmark_server_record(record, manifest_store))?;
        let mut f = self.open()?;
        f.lock()
            .with_context(|| format!("cannot lock the registry queue {}", self.path.display()))?;
        let r = (|| -> std::io::Result<()> {
            // A torn last line (a killed writer) must not swallow this one.
            let len = f.metadata()?.len();
            let mut sep = Vec::new();
            if len > 0 {
                let mut last = [0u8; 1];
                f.seek(SeekFrom::Start(len - 1))?;
                f.read_exact(&mut last)?;
                if last[0] != b'\n' {
                    sep.push(b'\n');
                }
            }
            sep.extend_from_slice(line.as_bytes());
            sep.push(b'\n');
            f.write_all(&sep)?;
            f.sync_data()
        })();
        let _ = f.unlock();
        r.with_context(|| format!("cannot write the registry queue {}", self.path.display()))
    }

    /// Sends every queued record, oldest first, and keeps only what was not acknowledged.
    /// Returns (sent, still queued) and prints a warning for what stays.
    ///
    /// # Errors
    /// The queue cannot be read or rewritten, or the registry refuses the token.
    pub fn flush(&self, client: &Client, quiet: bool) -> Result<(usize, usize)> {
        if !self.path.exists() {
            return Ok((0, 0));
        }
        let mut f = self.open()?;
        f.lock()
            .with_context(|| format!("cannot lock the registry queue {}", self.path.display()))?;
        let res = self.flush_locked(&mut f, client, quiet);
        let _ = f.unlock();
        res
    }

    fn flush_locked(
        &self,
        f: &mut fs::File,
        client: &Client,
        quiet: bool,
    ) -> Result<(usize, usize)> {
        let mut text = String::new();
        f.seek(SeekFrom::Start(0))?;
        f.read_to_string(&mut text)
            .with_context(|| format!("cannot read the registry queue {}", self.path.display()))?;
        let mut keep: Vec<&str> = vec![];
        let mut sent = 0;
        let mut unauthorized = None;
        let mut down = None;
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            if serde_json::from_str::<serde_json::Value>(line).is_err() {
                // A torn line from a killed writer: that stamp's file was never put in place
                // before its record was whole, so nothing is lost by dropping it.
                continue;
            }
            if unauthorized.is_some() || down.is_some() {
                keep.push(line);
                continue;
            }
            match client.send(line) {
                Sent::Done => sent += 1,
                Sent::Later(why) => {
                    down = Some(why);
                    keep.push(line);
                }
                Sent::Unauthorized(why) => {
                    unauthorized = Some(why);
                    keep.push(line);
                }
                Sent::Refused(why) => {
                    crate::out::errln!(
                        "hallmark: error: the registry refuses a queued record ({why}); it is kept in {}",
                        self.rejected().display()
                    );
                    let mut r = fs::OpenOptions::new()
                        .create(true)
                        .append(true)
                        .open(self.rejected())?;
                    writeln!(r, "{line}")?;
                    r.sync_data()?;
                }
            }
        }
        // Rewrite under the lock: what was acknowledged goes, the rest stays in order.
        let mut rest = keep.join("\n");
        if !rest.is_empty() {
            rest.push('\n');
        }
        f.set_len(0)?;
        f.write_all(rest.as_bytes())?;
        f.sync_data()?;
        if let Some(why) = unauthorized {
            bail!(
                "the registry refuses the token ({why}); {} record(s) wait in {}",
                keep.len(),
                self.path.display()
            );
        }
        if let Some(why) = down
            && !quiet
        {
            crate::out::errln!(
                "hallmark: warning: {why}; {} stamp record(s) wait in {} and are sent on the next run with --registry",
                keep.len(),
                self.path.display()
            );
        }
        Ok((sent, keep.len()))
    }

    fn rejected(&self) -> PathBuf {
        self.path.with_extension("rejected.jsonl")
    }
}

fn hallmark_server_record(record: &Record, store: &[u8]) -> serde_json::Value {
    serde_json::json!({
        "record": record,
        "manifest_store": base64::engine::general_purpose::STANDARD.encode(store),
    })
}

/// The registry of a stamping run: where records queue and where they go.
pub struct Registration {
    /// The service.
    pub client: Client,
    /// The queue file.
    pub queue: Queue,
}

impl Registration {
    /// From the command's flags (`None` without `--registry`).
    ///
    /// # Errors
    /// A malformed URL.
    pub fn from_args(a: &RegistryArgs, keys: &Path) -> Result<Option<Registration>> {
        let Some(url) = &a.registry else {
            return Ok(None);
        };
        Ok(Some(Registration {
            client: Client::new(url, a.registry_token.clone())?,
            queue: Queue::for_args(a, keys),
        }))
    }

    /// Queues a stamp: its ledger record when a ledger holds one, else a standalone signed
    /// record (the same facts, signed with the same key).
    ///
    /// # Errors
    /// The queue cannot be written.
    pub fn enqueue(
        &self,
        st: &hallmark::Stamped,
        s: &hallmark::Stamper,
        ledger_record: Option<Record>,
    ) -> Result<()> {
        let record = match ledger_record {
            Some(r) => r,
            None => hallmark::ledger::next_record(
                None,
                hallmark::ledger::entry_for(st, s),
                crate::ledger::record_key(s.signer())?,
            ),
        };
        self.queue.push(&record, &st.manifest_store)
    }

    /// Sends what is queued (see [`Queue::flush`]).
    ///
    /// # Errors
    /// As [`Queue::flush`].
    pub fn flush(&self, quiet: bool) -> Result<(usize, usize)> {
        self.queue.flush(&self.client, quiet)
    }
}
