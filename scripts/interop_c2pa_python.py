#!/usr/bin/env python3
"""Interoperability with a C2PA reader and signer nobody here wrote: c2pa-python.

1. Files hallmark signs validate in c2pa-python: Trusted with hallmark's CA as anchor, Valid
   without, and carry the AI-generated action.
2. Files c2pa-python signs (with certificates made here by `cryptography`, ES256 and Ed25519)
   verify in hallmark with the same state.

usage: interop_c2pa_python.py HALLMARK_BINARY PHOTO
Exit status 0 when every check passes.
"""
import datetime
import io
import json
import os
import subprocess
import sys
import tempfile

import c2pa
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

AI = "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"
failures = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what)
    if not cond:
        failures.append(what)


def read_state(path, anchors_pem=None):
    settings = {"verify": {"remote_manifest_fetch": False, "ocsp_fetch": False}}
    if anchors_pem:
        settings["trust"] = {"user_anchors": anchors_pem}
    ctx = c2pa.Context.from_dict(settings)
    with open(path, "rb") as f:
        mime = "image/jpeg" if path.endswith(".jpg") else "image/png"
        reader = c2pa.Reader(mime, f, context=ctx)
        return reader.get_validation_state(), json.loads(reader.json())


def make_chain(kind, tmp):
    now = datetime.datetime.now(datetime.timezone.utc)
    if kind == "es256":
        ca_key, ee_key, alg, digest = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1()), "es256", hashes.SHA256()
    else:
        ca_key, ee_key, alg, digest = ed25519.Ed25519PrivateKey.generate(), ed25519.Ed25519PrivateKey.generate(), "ed25519", None
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"interop {kind} CA"), x509.NameAttribute(NameOID.ORGANIZATION_NAME, "c2pa-python interop")])
    ca = (
        x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
        .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, digest)
    )
    ee_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"interop {kind} signer"), x509.NameAttribute(NameOID.ORGANIZATION_NAME, "c2pa-python interop")])
    ee = (
        x509.CertificateBuilder().subject_name(ee_name).issuer_name(ca_name)
        .public_key(ee_key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(True, False, False, False, False, False, False, False, False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ee_key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, digest)
    )
    pem = lambda c: c.public_bytes(serialization.Encoding.PEM)
    key_pem = ee_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    ca_path = os.path.join(tmp, f"{kind}-ca.pem")
    with open(ca_path, "wb") as f:
        f.write(pem(ca))
    return alg, pem(ee) + pem(ca), key_pem, ca_path


def main():
    hm, photo = sys.argv[1], sys.argv[2]
    tmp = tempfile.mkdtemp(prefix="hallmark-interop-")
    keys = os.path.join(tmp, "keys")
    subprocess.run([hm, "keygen", "--out", keys, "-q"], check=True)
    ca_pem = open(os.path.join(keys, "c2pa-ca.pem")).read()

    # 1. hallmark signs, c2pa-python reads.
    for name, args in [("stamp", ["stamp"]), ("sign", ["sign"])]:
        out = os.path.join(tmp, f"{name}.jpg")
        subprocess.run([hm, *args, photo, "-o", out, "--keys", keys, "--model", "interop-model", "-q"], check=True)
        state, report = read_state(out, ca_pem)
        check(state == "Trusted", f"hallmark {name} -> c2pa-python: Trusted with the CA (got {state})")
        state, _ = read_state(out)
        check(state == "Valid", f"hallmark {name} -> c2pa-python: Valid without an anchor (got {state})")
        active = report["manifests"][report["active_manifest"]]
        actions = [a for asr in active["assertions"] if asr["label"].startswith("c2pa.actions") for a in asr["data"]["actions"]]
        check(any(a.get("action") == "c2pa.created" and a.get("digitalSourceType") == AI for a in actions),
              f"hallmark {name} -> c2pa-python: c2pa.created with trainedAlgorithmicMedia")

    # 2. c2pa-python signs, hallmark verifies.
    src_png = os.path.join(tmp, "src.png")
    subprocess.run([hm, "strip", photo, "-o", src_png.replace(".png", ".jpg"), "-q"], check=True)
    src = src_png.replace(".png", ".jpg")
    for kind in ["es256", "ed25519"]:
        alg, chain, key, ca_path = make_chain(kind, tmp)
        signer = c2pa.Signer.from_info(c2pa.C2paSignerInfo(alg.encode(), chain, key, None))
        manifest = {
            "claim_generator_info": [{"name": "c2pa-python interop", "version": "1"}],
            "assertions": [{"label": "c2pa.actions", "data": {"actions": [{"action": "c2pa.created", "digitalSourceType": AI}]}}],
        }
        ctx = c2pa.Context.from_dict({"verify": {"remote_manifest_fetch": False}})
        builder = c2pa.Builder(manifest, context=ctx)
        out = os.path.join(tmp, f"py-{kind}.jpg")
        with open(src, "rb") as s, open(out, "w+b") as d:
            builder.sign(signer, "image/jpeg", s, d)
        state_py, _ = read_state(out, open(ca_path).read())
        r = subprocess.run([hm, "verify", "--json", out, "--trust", ca_path], capture_output=True, text=True)
        rep = json.loads(r.stdout.splitlines()[0])
        state_hm = rep["c2pa"]["validation_state"] if rep.get("c2pa") else None
        check(state_hm == state_py == "Trusted", f"c2pa-python {kind} -> hallmark: {state_hm}, c2pa-python itself: {state_py}")
        check(rep["verdict"] == "ai_generated" and r.returncode == 0, f"c2pa-python {kind} -> hallmark verdict {rep['verdict']} exit {r.returncode}")
        r = subprocess.run([hm, "verify", "--json", out], capture_output=True, text=True)
        rep = json.loads(r.stdout.splitlines()[0])
        check(rep["c2pa"]["validation_state"] == "Valid", f"c2pa-python {kind} -> hallmark without anchor: {rep['c2pa']['validation_state']}")

    if failures:
        print(f"{len(failures)} interop check(s) failed")
        sys.exit(1)
    print("all interop checks passed")


if __name__ == "__main__":
    main()
