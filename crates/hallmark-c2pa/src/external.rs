//! What signing asks of the outside world: an external signer command, and an RFC 3161
//! time-stamp authority over HTTP. Both are bounded in time and in the bytes they may
//! return, and their failures say which side failed.

use std::io::{Read, Write};
use std::process::{Command, Stdio};

use crate::{Error, KeyAlg, SignerCommand, TimeStamper};

/// The largest signature an external signer may write (RSA-8192 is 1 KB).
const MAX_SIGNATURE: u64 = 16 * 1024;
/// How much of the signer's standard error an error message quotes.
const STDERR_QUOTE: usize = 400;

/// Runs the signer command on `data`: the raw signature it writes, or an error that says
/// what went wrong (exit status and the start of its standard error, timeout, no output).
pub(crate) fn run(cmd: &SignerCommand, alg: KeyAlg, data: &[u8]) -> Result<Vec<u8>, Error> {
    let fail = |why: String| Error::Crypto(format!("the signer command {why}"));
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(&cmd.command)
        .env("HALLMARK_SIGN_ALG", alg.name())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| fail(format!("cannot be started: {e}")))?;
    // Feed and drain on threads, so a signer that writes before it reads cannot deadlock.
    let mut stdin = child.stdin.take();
    let input = data.to_vec();
    let feeder = std::thread::spawn(move || {
        if let Some(s) = stdin.as_mut() {
            // A signer that does not read everything is allowed to exit early.
            let _ = s.write_all(&input);
        }
        drop(stdin);
    });
    let mut stdout = child.stdout.take();
    let out_reader = std::thread::spawn(move || {
        let mut buf = vec![];
        if let Some(s) = stdout.as_mut() {
            let _ = s.take(MAX_SIGNATURE + 1).read_to_end(&mut buf);
        }
        buf
    });
    let mut stderr = child.stderr.take();
    let err_reader = std::thread::spawn(move || {
        let mut buf = vec![];
        if let Some(s) = stderr.as_mut() {
            let _ = s.take(64 * 1024).read_to_end(&mut buf);
        }
        buf
    });
    let status = match wait_timeout::ChildExt::wait_timeout(&mut child, cmd.timeout) {
        Ok(Some(s)) => s,
        Ok(None) => {
            let _ = child.kill();
            let _ = child.wait();
            return Err(fail(format!(
                "did not answer within {} s and was stopped",
                cmd.timeout.as_secs_f64()
            )));
        }
        Err(e) => return Err(fail(format!("could not be waited for: {e}"))),
    };
    let _ = feeder.join();
    let out = out_reader.join().unwrap_or_default();
    let err = err_reader.join().unwrap_or_default();
    if !status.success() {
        let quoted: String = String::from_utf8_lossy(&err)
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect::<Vec<_>>()
            .join(" | ")
            .chars()
            .take(STDERR_QUOTE)
            .collect();
        return Err(fail(format!(
            "failed ({status}){}",
            if quoted.trim().is_empty() {
                String::new()
            } else {
                format!(": {}", quoted.trim())
            }
        )));
    }
    if out.is_empty() {
        return Err(fail("wrote no signature on its standard output".into()));
    }
    if out.len() as u64 > MAX_SIGNATURE {
        return Err(fail(format!(
            "wrote more than {MAX_SIGNATURE} bytes: that is not a signature"
        )));
    }
    Ok(out)
}

/// An HTTP client for c2pa's time-stamp request, with a deadline.
struct Http {
    timeout: std::time::Duration,
}

impl c2pa::http::SyncHttpResolver for Http {
    fn http_resolve(
        &self,
        request: http::Request<Vec<u8>>,
    ) -> Result<http::Response<Box<dyn Read>>, c2pa::http::HttpResolverError> {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(self.timeout))
            .http_status_as_error(false)
            .build()
            .into();
        let response = agent
            .run(request)
            .map_err(|e| c2pa::http::HttpResolverError::Other(Box::new(e)))?;
        Ok(response.map(|b| Box::new(b.into_reader()) as Box<dyn Read>))
    }
}

/// Gets a time-stamp token for `message` from `tsa` (c2pa builds the RFC 3161 request and
/// checks the reply against the message).
pub(crate) fn time_stamp(tsa: &TimeStamper, message: &[u8]) -> c2pa::Result<Vec<u8>> {
    if cfg!(not(feature = "https"))
        && tsa
            .url
            .trim_start()
            .to_ascii_lowercase()
            .starts_with("https:")
    {
        return Err(c2pa::Error::BadParam(format!(
            "{} is an HTTPS time-stamp authority, and this build of hallmark has no TLS (the `https` feature): use its http:// address, or a build with the feature",
            tsa.url
        )));
    }
    let body = c2pa::crypto::time_stamp::default_rfc3161_message(message)?;
    let ctx = c2pa::Context::new().with_resolver(Http {
        timeout: tsa.timeout,
    });
    c2pa::crypto::time_stamp::default_rfc3161_request(&tsa.url, None, &body, message, &ctx).map_err(
        |e| {
            c2pa::Error::BadParam(format!(
                "the time-stamp authority at {} gave no usable time stamp: {e}",
                tsa.url
            ))
        },
    )
}
