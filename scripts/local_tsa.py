#!/usr/bin/env python3
"""A real RFC 3161 time-stamp authority on loopback, for tests and demos: `openssl ts -reply`
behind http.server, with a TSA certificate (timeStamping EKU) from a throwaway ECDSA root
made by `cryptography`.

usage: local_tsa.py DIR      serves until killed; prints the URL, then the root's path
As a module: start_tsa(tmp) -> (url, root_pem) serves on a daemon thread.
"""
import datetime
import http.server
import os
import subprocess
import sys
import threading

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

TSA_CONF = """[tsa]
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
"""


def start_tsa(tmp):
    """A real RFC 3161 authority on loopback: `openssl ts -reply` behind http.server, with a
    TSA certificate (timeStamping EKU) from a throwaway root made by `cryptography`."""
    d = os.path.join(tmp, "tsa")
    os.makedirs(d)
    now = datetime.datetime.now(datetime.timezone.utc)
    root_key, tsa_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    root_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "interop TSA root")])
    root = (
        x509.CertificateBuilder().subject_name(root_name).issuer_name(root_name)
        .public_key(root_key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(root_key.public_key()), critical=False)
        .sign(root_key, hashes.SHA256())
    )
    tsa = (
        x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "interop TSA")]))
        .issuer_name(root_name).public_key(tsa_key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(True, False, False, False, False, False, False, False, False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.TIME_STAMPING]), critical=True)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(root_key.public_key()), critical=False)
        .sign(root_key, hashes.SHA256())
    )
    pem = lambda c: c.public_bytes(serialization.Encoding.PEM)
    for name, data in [("root.pem", pem(root)), ("tsa.pem", pem(tsa)), ("ts.cnf", TSA_CONF.encode()), ("tsaserial", b"01\n"),
                       ("tsa.key", tsa_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))]:
        with open(os.path.join(d, name), "wb") as f:
            f.write(data)

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            query = self.rfile.read(int(self.headers["Content-Length"]))
            q = os.path.join(d, f"q{threading.get_ident()}.tsq")
            with open(q, "wb") as f:
                f.write(query)
            r = subprocess.run(["openssl", "ts", "-reply", "-config", "ts.cnf", "-queryfile", q, "-signer", "tsa.pem",
                                "-inkey", "tsa.key", "-chain", "root.pem", "-out", "-"], cwd=d, capture_output=True)
            ok = r.returncode == 0
            body = r.stdout if ok else r.stderr
            self.send_response(200 if ok else 500)
            self.send_header("Content-Type", "application/timestamp-reply" if ok else "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.server_address[1]}/", pem(root).decode()


if __name__ == "__main__":
    url, _ = start_tsa(sys.argv[1])
    print(url, flush=True)
    print(os.path.join(sys.argv[1], "tsa", "root.pem"), flush=True)
    threading.Event().wait()


