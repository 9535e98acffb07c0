//! Everything the CLI prints goes through here, for two reasons.
//!
//! 1. **Untrusted text is escaped.** Model names, signer organisations, titles and claim
//!    generators come from manifests anyone can write; file names come from folders anyone
//!    can fill. Printed raw, a control character could move the cursor, recolour the screen,
//!    or start a new line that reads "trusted signer". Human output escapes control
//!    characters, line separators and bidirectional overrides (see [`escape`]); JSON output
//!    stays exact (serde_json escapes what JSON requires and nothing else is changed).
//! 2. **A closed pipe is not a crash.** `println!` panics when stdout is gone (`hallmark
//!    verify DIR | head -1`); these functions return the error instead, and `main` turns a
//!    broken pipe into a quiet exit, as ripgrep does.

use std::{borrow::Cow, io::Write};

/// Whether `c` must not reach a terminal as is: C0 and C1 controls and DEL (except tab),
/// Unicode line and paragraph separators, and the bidirectional embedding, override and
/// isolate controls that can make a line display in another order than it reads.
fn is_unsafe(c: char) -> bool {
    (c.is_control() && c != '\t')
        || matches!(
            c,
            '\u{200E}' | '\u{200F}' | '\u{2028}' | '\u{2029}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}'
        )
}

/// `s` with every character a terminal would interpret escaped (`\n`, `\r`, `\u{1b}`, ...).
/// Text without such characters is returned as is.
pub fn escape(s: &str) -> Cow<'_, str> {
    if !s.chars().any(is_unsafe) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c if is_unsafe(c) => out.push_str(&format!("\\u{{{:x}}}", u32::from(c))),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// Set when standard output carries the command's data (`-o -`): every report line then
/// goes to stderr, so it cannot corrupt the image on stdout.
static STDOUT_IS_DATA: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Sends report lines to stderr from now on (see [`STDOUT_IS_DATA`]).
pub fn stdout_is_data() {
    STDOUT_IS_DATA.store(true, std::sync::atomic::Ordering::Relaxed);
}

/// Writes one line to stdout as is (JSON, or text whose untrusted parts are already
/// escaped). Errors (a closed pipe) are returned, never a panic.
pub fn raw_line(s: &str) -> std::io::Result<()> {
    if STDOUT_IS_DATA.load(std::sync::atomic::Ordering::Relaxed) {
        let mut e = std::io::stderr().lock();
        e.write_all(s.as_bytes())?;
        return e.write_all(b"\n");
    }
    let mut o = std::io::stdout().lock();
    o.write_all(s.as_bytes())?;
    o.write_all(b"\n")?;
    o.flush()
}

/// Writes one line of human output to stdout, escaped.
pub fn line(s: &str) -> std::io::Result<()> {
    raw_line(&escape(s))
}

/// Writes one line to stderr, escaped. A closed stderr is ignored: there is nowhere left
/// to report it.
pub fn err_line(s: &str) {
    let mut e = std::io::stderr().lock();
    let _ = e.write_all(escape(s).as_bytes());
    let _ = e.write_all(b"\n");
}

/// Human output: `outln!("stamped {} -> {}", a, b)` prints an escaped line and returns from
/// the enclosing function with the error if stdout is closed.
macro_rules! outln {
    ($($t:tt)*) => {
        $crate::out::line(&format!($($t)*))?
    };
}

/// A message on stderr, escaped.
macro_rules! errln {
    ($($t:tt)*) => {
        $crate::out::err_line(&format!($($t)*))
    };
}

pub(crate) use {errln, outln};

#[cfg(test)]
mod tests {
    use super::escape;

    #[test]
    fn controls_and_bidi_are_escaped_plain_text_is_not() {
        assert_eq!(escape("photo 1.png"), "photo 1.png");
        assert_eq!(escape("tab\there"), "tab\there");
        assert_eq!(escape("é 日本"), "é 日本");
        assert_eq!(
            escape("acme\n  - trusted signer"),
            "acme\\n  - trusted signer"
        );
        assert_eq!(escape("\x1b[2J\x1b[32mok"), "\\u{1b}[2J\\u{1b}[32mok");
        assert_eq!(escape("a\rb\u{7f}c\u{9b}d"), "a\\rb\\u{7f}c\\u{9b}d");
        assert_eq!(escape("x\u{202e}gnp.exe"), "x\\u{202e}gnp.exe");
        assert_eq!(escape("l\u{2028}m"), "l\\u{2028}m");
    }
}
