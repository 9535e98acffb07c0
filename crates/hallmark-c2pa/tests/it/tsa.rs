//! A real RFC 3161 time-stamp authority on loopback for tests: `openssl ts -reply` with a
//! throwaway ECDSA root and TSA certificate, behind a minimal HTTP/1.1 handler on a thread.
//! Shared with the CLI tests (included there by path).

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A running authority; it stops when dropped (the listener thread exits with the process).
pub struct LocalTsa {
    dir: tempfile::TempDir,
    /// `http://127.0.0.1:PORT/`.
    pub url: String,
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl is installed (the tests' time-stamp authority)");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

const EXT: &str = "[tsa_ext]
basicConstraints = critical, CA:false
keyUsage = critical, digitalSignature
extendedKeyUsage = critical, timeStamping
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[ca_ext]
basicConstraints = critical, CA:true
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[req]
distinguished_name = dn
[dn]
";

const TS_CONF: &str = "[tsa]
default_tsa = tsa_config
[tsa_config]
serial = ./tsaserial
crypto_device = builtin
signer_digest = sha256
default_policy = 1.2.3.4.1
digests = sha256, sha384, sha512
accuracy = secs:1
ordering = no
tsa_name = no
ess_cert_id_chain = no
ess_cert_id_alg = sha256
";

impl LocalTsa {
    /// Makes the certificates and starts serving.
    pub fn start() -> LocalTsa {
        let dir = tempfile::tempdir().expect("temp dir");
        let d = dir.path();
        std::fs::write(d.join("ext.cnf"), EXT).unwrap();
        std::fs::write(d.join("ts.cnf"), TS_CONF).unwrap();
        std::fs::write(d.join("tsaserial"), "01\n").unwrap();
        openssl(
            d,
            &[
                "ecparam",
                "-name",
                "prime256v1",
                "-genkey",
                "-noout",
                "-out",
                "ca.key",
            ],
        );
        openssl(
            d,
            &[
                "req",
                "-x509",
                "-new",
                "-key",
                "ca.key",
                "-subj",
                "/CN=test TSA root/O=hallmark tests",
                "-days",
                "30",
                "-out",
                "ca.pem",
                "-config",
                "ext.cnf",
                "-extensions",
                "ca_ext",
            ],
        );
        openssl(
            d,
            &[
                "ecparam",
                "-name",
                "prime256v1",
                "-genkey",
                "-noout",
                "-out",
                "tsa.key",
            ],
        );
        openssl(
            d,
            &[
                "req",
                "-new",
                "-key",
                "tsa.key",
                "-subj",
                "/CN=test TSA/O=hallmark tests",
                "-out",
                "tsa.csr",
                "-config",
                "ext.cnf",
            ],
        );
        openssl(
            d,
            &[
                "x509",
                "-req",
                "-in",
                "tsa.csr",
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-days",
                "30",
                "-extfile",
                "ext.cnf",
                "-extensions",
                "tsa_ext",
                "-out",
                "tsa.pem",
            ],
        );
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        let url = format!("http://{}/", listener.local_addr().unwrap());
        let root = d.to_path_buf();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let root = root.clone();
                std::thread::spawn(move || serve(stream, &root));
            }
        });
        LocalTsa { dir, url }
    }

    /// The authority's root certificate (PEM): the anchor that makes its time stamps trusted.
    pub fn root_pem(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("ca.pem")).unwrap()
    }

    /// Where its files are.
    pub fn dir(&self) -> PathBuf {
        self.dir.path().to_path_buf()
    }
}

fn serve(stream: std::net::TcpStream, root: &Path) {
    let mut reader = BufReader::new(stream.try_clone().expect("clone"));
    let mut len = 0usize;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        if let Some(v) = l
            .to_ascii_lowercase()
            .strip_prefix("content-length:")
            .map(str::trim)
            .map(str::to_string)
        {
            len = v.parse().unwrap_or(0);
        }
    }
    let mut query = vec![0u8; len];
    if reader.read_exact(&mut query).is_err() {
        return;
    }
    let q = tempfile::NamedTempFile::new_in(root).unwrap();
    std::fs::write(q.path(), &query).unwrap();
    let out = Command::new("openssl")
        .args(["ts", "-reply", "-config", "ts.cnf", "-queryfile"])
        .arg(q.path())
        .args([
            "-signer", "tsa.pem", "-inkey", "tsa.key", "-chain", "ca.pem", "-out", "-",
        ])
        .current_dir(root)
        .output()
        .unwrap();
    let mut w = stream;
    let (status, ctype, body) = if out.status.success() {
        ("200 OK", "application/timestamp-reply", out.stdout)
    } else {
        ("500 Internal Server Error", "text/plain", out.stderr)
    };
    let _ = write!(
        w,
        "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let _ = w.write_all(&body);
}
