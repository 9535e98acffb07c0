//! hallmark's file layer, shared by its front ends (the CLI, the Python package): bounded
//! reads, atomic writes staged until their record is safe, special files written through
//! instead of replaced, and the keys folder (key files with mode 0600, see [`keys`]).
//!
//! Errors are `anyhow` errors whose chain carries an [`ErrorCode`] (a [`Coded`] error, a
//! library error or an I/O error), so every front end reports them alike.

use std::{
    fs,
    io::{Read, Write},
    path::{Path, PathBuf},
};

use anyhow::{Context, Result};
use hallmark::ErrorCode;

pub mod check;
pub mod keys;

/// An error with its code, for the refusals the library does not make (an output that
/// exists, a file over a size limit, an input that would be overwritten).
#[derive(Debug)]
pub struct Coded {
    /// The code.
    pub code: ErrorCode,
    msg: String,
}

impl std::fmt::Display for Coded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.msg)
    }
}

impl std::error::Error for Coded {}

/// An error with a code: `return Err(coded(ErrorCode::OutputExists, format!(...)))`.
pub fn coded(code: ErrorCode, msg: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(Coded {
        code,
        msg: msg.into(),
    })
}

/// The code of an error: that of the first error in its chain that has one ([`Coded`], the
/// library's errors, JSON and I/O errors), else `invalid_parameter` (what is left are a
/// front end's checks of its arguments).
pub fn error_code(e: &anyhow::Error) -> ErrorCode {
    e.chain()
        .find_map(|c| {
            c.downcast_ref::<Coded>()
                .map(|c| c.code)
                .or_else(|| c.downcast_ref::<hallmark_lm::Error>().map(lm_code))
                .or_else(|| {
                    c.is::<serde_json::Error>()
                        .then_some(ErrorCode::InvalidInput)
                })
                .or_else(|| ErrorCode::find(c))
        })
        .unwrap_or(ErrorCode::InvalidParameter)
}

fn lm_code(e: &hallmark_lm::Error) -> ErrorCode {
    match e {
        hallmark_lm::Error::Io { source, .. } => ErrorCode::find(source).unwrap_or(ErrorCode::Io),
        hallmark_lm::Error::Model(_) | hallmark_lm::Error::Tokenizer(_) => {
            ErrorCode::InvalidParameter
        }
        _ => ErrorCode::InvalidInput,
    }
}

/// Where warnings go (a key file others can read): the CLI prints them, the Python package
/// raises a Python warning. Until set, they go to standard error.
static WARN: std::sync::OnceLock<fn(&str)> = std::sync::OnceLock::new();

/// Sets where warnings go (once; later calls are ignored).
pub fn set_warning_sink(f: fn(&str)) {
    let _ = WARN.set(f);
}

fn warn(msg: &str) {
    match WARN.get() {
        Some(f) => f(msg),
        None => eprintln!("hallmark: warning: {msg}"),
    }
}

/// Largest input file read (bytes). Decoders have their own pixel limits on top.
pub const MAX_INPUT_BYTES: u64 = 512 * 1024 * 1024;

pub use hallmark::keys::{MAX_CONFIG_BYTES, MAX_KEY_BYTES, human_bytes};

/// Reads at most `cap` bytes of `path` (a regular file, a FIFO or a device alike): anything
/// longer is refused after `cap + 1` bytes, before it can fill memory (`/dev/zero` as a key).
/// (The facade's [`hallmark::keys::read_capped`], as an `anyhow` error.)
pub fn read_capped(path: &Path, cap: u64, what: &str) -> Result<Vec<u8>> {
    Ok(hallmark::keys::read_capped(path, cap, what)?)
}

/// [`read_capped`] for text files.
pub fn read_text_capped(path: &Path, cap: u64, what: &str) -> Result<String> {
    Ok(hallmark::keys::read_text_capped(path, cap, what)?)
}

/// Whether a path argument is `-`: standard input for an input, standard output for an
/// output.
pub fn is_std(path: &Path) -> bool {
    path.as_os_str() == "-"
}

/// Reads a whole input file (or standard input for `-`), refusing anything over
/// [`MAX_INPUT_BYTES`].
pub fn read_input(path: &Path) -> Result<Vec<u8>> {
    if is_std(path) {
        let mut buf = Vec::new();
        std::io::stdin()
            .lock()
            .take(MAX_INPUT_BYTES + 1)
            .read_to_end(&mut buf)
            .context("cannot read standard input")?;
        if buf.len() as u64 > MAX_INPUT_BYTES {
            return Err(coded(
                ErrorCode::TooLarge,
                format!(
                    "standard input is over the {} input limit",
                    human_bytes(MAX_INPUT_BYTES)
                ),
            ));
        }
        return Ok(buf);
    }
    read_capped(path, MAX_INPUT_BYTES, "input")
}

/// Reads a secret key file, warning (as ssh does) when others may read it.
pub fn read_secret(path: &Path, what: &str) -> Result<zeroize::Zeroizing<String>> {
    let text = zeroize::Zeroizing::new(read_text_capped(path, MAX_KEY_BYTES, what)?);
    warn_if_shared(path, what);
    Ok(text)
}

/// Warns (as ssh does) when others may read the secret file `path`.
pub fn warn_if_shared(path: &Path, what: &str) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(m) = fs::metadata(path)
            && m.is_file()
            && m.permissions().mode() & 0o077 != 0
        {
            warn(&format!(
                "{what} {} is readable by others (mode {:04o}); it should be private to you: \
                 chmod 600 {}",
                path.display(),
                m.permissions().mode() & 0o7777,
                path.display()
            ));
        }
    }
}

/// Whether an output may replace an existing file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Replace {
    /// Refuse: an existing output is never replaced silently (the default).
    Refuse,
    /// Replace it (`--force`, `--in-place`, or a file this run owns, as `label`'s outputs).
    Allow,
}

impl Replace {
    /// `Allow` when the user asked for it.
    pub fn allowed_if(asked: bool) -> Replace {
        if asked {
            Replace::Allow
        } else {
            Replace::Refuse
        }
    }
}

/// Fails early, before any work, when `out` exists as a regular file and may not be
/// replaced (devices and FIFOs are written through, so they do not count).
pub fn check_new(out: &Path, replace: Replace) -> Result<()> {
    if replace == Replace::Refuse && !is_std(out) && fs::metadata(out).is_ok_and(|m| m.is_file()) {
        return Err(coded(
            ErrorCode::OutputExists,
            format!(
                "{} already exists: pass --force to replace it",
                out.display()
            ),
        ));
    }
    Ok(())
}

/// Writes an output atomically, replacing an existing file only when allowed (checked again
/// at the rename, so a file created meanwhile by someone else is not replaced either).
pub fn write_output(path: &Path, bytes: &[u8], replace: Replace) -> Result<()> {
    check_new(path, replace)?;
    stage(path, bytes, None)?.commit_as(replace)
}

/// Writes `bytes` to `path` atomically (see [`stage`]).
pub fn write_atomic(path: &Path, bytes: &[u8], mode: Option<u32>) -> Result<()> {
    stage(path, bytes, mode)?.commit()
}

/// An output written and synced but not yet in place. Dropping it leaves no trace; committing
/// moves it into place with one rename, so a reader never sees a half-written file.
#[derive(Debug)]
pub struct Staged {
    target: PathBuf,
    kind: StagedKind,
}

#[derive(Debug)]
enum StagedKind {
    /// A temporary file in the target's folder, renamed over the target on commit.
    Temp(tempfile::NamedTempFile),
    /// A FIFO or a character device (`-o /dev/stdout`, `-o /dev/null`): written through on
    /// commit, never replaced by a regular file.
    Through(Vec<u8>),
    /// `-o -`: standard output.
    Stdout(Vec<u8>),
}

impl Staged {
    /// Moves the output into place, replacing an existing file only when allowed.
    pub fn commit_as(self, replace: Replace) -> Result<()> {
        match (replace, &self.kind) {
            (Replace::Refuse, StagedKind::Temp(_)) => {
                let target = self.target.clone();
                self.commit_new().map_err(|e| {
                    if target.exists() {
                        coded(
                            ErrorCode::OutputExists,
                            format!(
                                "{} already exists: pass --force to replace it",
                                target.display()
                            ),
                        )
                    } else {
                        e
                    }
                })
            }
            _ => self.commit(),
        }
    }

    /// Moves the output into place only if nothing is there yet (backups never replace a
    /// file, even one created a moment ago by another process).
    pub fn commit_new(self) -> Result<()> {
        match self.kind {
            StagedKind::Temp(tmp) => {
                tmp.persist_noclobber(&self.target)
                    .map_err(|e| e.error)
                    .with_context(|| {
                        format!(
                            "cannot create {} (it may already exist)",
                            self.target.display()
                        )
                    })?;
                Ok(())
            }
            StagedKind::Through(_) | StagedKind::Stdout(_) => Err(coded(
                ErrorCode::Refused,
                format!(
                    "refusing to write {}: not a regular file",
                    self.target.display()
                ),
            )),
        }
    }

    /// Moves the output into place.
    pub fn commit(self) -> Result<()> {
        match self.kind {
            StagedKind::Temp(tmp) => {
                tmp.persist(&self.target)
                    .map_err(|e| e.error)
                    .with_context(|| {
                        format!(
                            "cannot move the output into place at {}",
                            self.target.display()
                        )
                    })?;
            }
            StagedKind::Stdout(bytes) => {
                let mut o = std::io::stdout().lock();
                o.write_all(&bytes)
                    .and_then(|()| o.flush())
                    .context("cannot write to standard output")?;
            }
            StagedKind::Through(bytes) => {
                let mut f = fs::OpenOptions::new()
                    .write(true)
                    .open(&self.target)
                    .with_context(|| format!("cannot open {}", self.target.display()))?;
                f.write_all(&bytes)
                    .and_then(|()| f.flush())
                    .with_context(|| format!("cannot write {}", self.target.display()))?;
            }
        }
        Ok(())
    }
}

/// Prepares `bytes` for `path`: a temporary file in the same folder, written and synced.
///
/// What is at `path` decides how it will be written: nothing or a regular file is replaced
/// atomically; a symlink is followed and its target replaced (the link stays); a FIFO or a
/// character device is written through; a folder, a block device, a socket or a dangling
/// symlink is refused. `mode` sets the permissions (key files); otherwise the file gets what
/// the umask gives, like any other file.
pub fn stage(path: &Path, bytes: &[u8], mode: Option<u32>) -> Result<Staged> {
    if is_std(path) {
        return Ok(Staged {
            target: path.to_path_buf(),
            kind: StagedKind::Stdout(bytes.to_vec()),
        });
    }
    let target = resolve_output(path)?;
    if let Ok(m) = fs::metadata(&target) {
        #[cfg(unix)]
        {
            use std::os::unix::fs::FileTypeExt;
            let t = m.file_type();
            if t.is_fifo() || t.is_char_device() {
                return Ok(Staged {
                    target,
                    kind: StagedKind::Through(bytes.to_vec()),
                });
            }
            if t.is_block_device() || t.is_socket() {
                return Err(coded(
                    ErrorCode::Refused,
                    format!(
                        "refusing to write to {}: it is a block device or a socket",
                        path.display()
                    ),
                ));
            }
        }
        if m.is_dir() {
            return Err(coded(
                ErrorCode::InvalidInput,
                format!("{} is a folder, not a file", path.display()),
            ));
        }
    }
    let dir = match target.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let mut b = tempfile::Builder::new();
    b.prefix(".hallmark-").suffix(".tmp");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        // The kernel applies the umask to this mode at creation: 0644 under the usual 022.
        b.permissions(fs::Permissions::from_mode(mode.unwrap_or(0o666)));
    }
    let mut tmp = b
        .tempfile_in(&dir)
        .with_context(|| format!("cannot create a temporary file in {}", dir.display()))?;
    #[cfg(unix)]
    if let Some(m) = mode {
        use std::os::unix::fs::PermissionsExt;
        // Explicit modes (0600 keys) are exact, whatever the umask.
        fs::set_permissions(tmp.path(), fs::Permissions::from_mode(m))
            .with_context(|| format!("cannot set permissions on {}", tmp.path().display()))?;
    }
    #[cfg(not(unix))]
    let _ = mode;
    tmp.write_all(bytes)
        .and_then(|()| tmp.as_file().sync_all())
        .with_context(|| format!("cannot write {} (disk full?)", path.display()))?;
    Ok(Staged {
        target,
        kind: StagedKind::Temp(tmp),
    })
}

/// The file an output path really names: itself, or a symlink's final target. A dangling
/// symlink is refused (replacing it would silently turn a link into a file).
fn resolve_output(path: &Path) -> Result<PathBuf> {
    match fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() => match fs::canonicalize(path) {
            Ok(real) => Ok(real),
            // Links into /proc (`/dev/stdout` -> `pipe:[...]`) do not canonicalise: write
            // through the link itself when it points at a FIFO or device.
            Err(_) if fs::metadata(path).is_ok() => Ok(path.to_path_buf()),
            Err(_) => Err(coded(
                ErrorCode::Refused,
                format!(
                    "refusing to write to {}: it is a symlink to a missing file",
                    path.display()
                ),
            )),
        },
        _ => Ok(path.to_path_buf()),
    }
}

/// The checks before writing `out`, before any work: it is none of the `inputs` (unless
/// `in_place`: see [`check_not_input`]) and it is new unless `replace` allows replacing it
/// (see [`check_new`]).
///
/// # Errors
/// `refused` for an input, `output_exists` for an existing file not to be replaced.
pub fn check_output(
    out: &Path,
    inputs: &[PathBuf],
    in_place: bool,
    replace: Replace,
) -> Result<()> {
    check_not_input(out, inputs, in_place)?;
    check_new(out, replace)
}

/// Refuses to write over an input file unless asked.
pub fn check_not_input(out: &Path, inputs: &[PathBuf], in_place: bool) -> Result<()> {
    if in_place || is_std(out) {
        return Ok(());
    }
    let canon = |p: &Path| fs::canonicalize(p).ok();
    if let Some(o) = canon(out) {
        for i in inputs {
            if canon(i).as_ref() == Some(&o) {
                return Err(coded(
                    ErrorCode::Refused,
                    format!(
                        "refusing to overwrite the input {} (pass --in-place to allow it)",
                        i.display()
                    ),
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
