#!/usr/bin/env python3
"""Interoperability with a C2PA reader and signer nobody here wrote: c2pa-python.

1. Files hallmark signs validate in c2pa-python: Trusted with hallmark's CA as anchor, Valid
   without, and carry the AI-generated action; for every `keygen --alg`, with a time stamp
   from a local RFC 3161 authority (`openssl ts`), through an external signer command, and
   with a chain and key made elsewhere (`--cert --private-key`).
2. Files c2pa-python signs (with certificates made here by `cryptography`: Ed25519, ES256,
   ES384, PS256; with a time stamp; through its callback signer) verify in hallmark with the
   same state.

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
from local_tsa import start_tsa
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
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
    """A C2PA-conforming chain made by `cryptography`: an ECDSA P-256 CA (the C2PA certificate
    policy's rule for CAs) and an end-entity key of `kind`."""
    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key, digest = ec.generate_private_key(ec.SECP256R1()), hashes.SHA256()
    ee_key, alg = {
        "es256": lambda: (ec.generate_private_key(ec.SECP256R1()), "es256"),
        "es384": lambda: (ec.generate_private_key(ec.SECP384R1()), "es384"),
        "ps256": lambda: (rsa.generate_private_key(public_exponent=65537, key_size=2048), "ps256"),
        "ed25519": lambda: (ed25519.Ed25519PrivateKey.generate(), "ed25519"),
    }[kind]()
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


def hallmark_state(hm, path, *trust):
    args = [hm, "verify", "--json", path]
    if trust:
        bundle = path + ".anchors.pem"
        with open(bundle, "w") as f:
            f.write("".join(open(t).read() for t in trust))
        args += ["--trust", bundle]
    r = subprocess.run(args, capture_output=True, text=True)
    if not r.stdout:
        raise SystemExit(f"hallmark verify {path} printed nothing: {r.stderr}")
    rep = json.loads(r.stdout.splitlines()[0])
    return (rep["c2pa"] or {}).get("validation_state"), rep


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

    tsa_url, tsa_root = start_tsa(tmp)
    tsa_root_path = os.path.join(tmp, "tsa-root.pem")
    with open(tsa_root_path, "w") as f:
        f.write(tsa_root)

    # 1b. Every algorithm keygen offers, each with a time stamp.
    for alg in ["ed25519", "es256", "es384", "ps256"]:
        k = os.path.join(tmp, f"keys-{alg}")
        subprocess.run([hm, "keygen", "--out", k, "--alg", alg, "-q"], check=True)
        ca = open(os.path.join(k, "c2pa-ca.pem")).read()
        out = os.path.join(tmp, f"stamp-{alg}.jpg")
        subprocess.run([hm, "stamp", photo, "-o", out, "--keys", k, "--tsa-url", tsa_url, "-q"], check=True)
        state, report = read_state(out, ca + tsa_root)
        codes = [c["code"] for c in report.get("validation_results", {}).get("activeManifest", {}).get("success", [])]
        check(state == "Trusted" and "timeStamp.validated" in codes,
              f"hallmark stamp --alg {alg} --tsa-url -> c2pa-python: {state}, time stamp validated: {'timeStamp.validated' in codes}")

    # 1c. An external signer holds the key (openssl here, as a KMS or PKCS#11 script would).
    k = os.path.join(tmp, "keys-es256")
    out = os.path.join(tmp, "external.jpg")
    subprocess.run([hm, "stamp", photo, "-o", out, "--keys", keys, "--cert", os.path.join(k, "c2pa-chain.pem"),
                    "--signer-command", f"openssl dgst -sha256 -sign {os.path.join(k, 'c2pa-signing.key')}",
                    "--tsa-url", tsa_url, "-q"], check=True)
    state, _ = read_state(out, open(os.path.join(k, "c2pa-ca.pem")).read() + tsa_root)
    check(state == "Trusted", f"hallmark stamp --signer-command -> c2pa-python: {state}")

    # 1d. A chain and key made elsewhere (by `cryptography`), given as --cert and --private-key.
    for kind in ["es256", "ps256"]:
        alg, chain, key, ca_path = make_chain(kind, tmp)
        cert_path, key_path = os.path.join(tmp, f"byo-{kind}.pem"), os.path.join(tmp, f"byo-{kind}.key")
        with open(cert_path, "wb") as f:
            f.write(chain)
        with open(key_path, "wb") as f:
            f.write(key)
        os.chmod(key_path, 0o600)
        out = os.path.join(tmp, f"byo-{kind}.jpg")
        subprocess.run([hm, "stamp", photo, "-o", out, "--keys", keys, "--cert", cert_path, "--private-key", key_path, "-q"], check=True)
        state, _ = read_state(out, open(ca_path).read())
        check(state == "Trusted", f"hallmark stamp --cert/--private-key ({kind}, cryptography-made chain) -> c2pa-python: {state}")
        state_hm, _ = hallmark_state(hm, out, ca_path)
        check(state_hm == "Trusted", f"... and hallmark reads it {state_hm}")

    # 2. c2pa-python signs, hallmark verifies.
    src_png = os.path.join(tmp, "src.png")
    subprocess.run([hm, "strip", photo, "-o", src_png.replace(".png", ".jpg"), "-q"], check=True)
    src = src_png.replace(".png", ".jpg")
    for kind in ["es256", "ed25519", "es384", "ps256"]:
        alg, chain, key, ca_path = make_chain(kind, tmp)
        # Time-stamped by the same local authority.
        signer = c2pa.Signer.from_info(c2pa.C2paSignerInfo(alg.encode(), chain, key, tsa_url.encode()))
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
        state_hm, rep = hallmark_state(hm, out, ca_path, tsa_root_path)
        codes = [c["code"] for c in rep["c2pa"]["success"]]
        check(state_hm == "Trusted" and "timeStamp.validated" in codes,
              f"c2pa-python {kind} with a time stamp -> hallmark: {state_hm}, time stamp validated: {'timeStamp.validated' in codes}")

    # 2b. c2pa-python's callback signer (its external signer), ES256.
    alg, chain, key, ca_path = make_chain("es256", tmp)
    private = serialization.load_pem_private_key(key, None)

    def callback(data: bytes) -> bytes:
        from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
        r_, s_ = decode_dss_signature(private.sign(data, ec.ECDSA(hashes.SHA256())))
        return r_.to_bytes(32, "big") + s_.to_bytes(32, "big")

    signer = c2pa.Signer.from_callback(callback, c2pa.C2paSigningAlg.ES256, chain.decode(), None)
    builder = c2pa.Builder({"claim_generator_info": [{"name": "c2pa-python interop", "version": "1"}],
                            "assertions": [{"label": "c2pa.actions", "data": {"actions": [{"action": "c2pa.created", "digitalSourceType": AI}]}}]},
                           context=c2pa.Context.from_dict({"verify": {"remote_manifest_fetch": False}}))
    out = os.path.join(tmp, "py-callback.jpg")
    with open(src, "rb") as s_in, open(out, "w+b") as d:
        builder.sign(signer, "image/jpeg", s_in, d)
    state_py, _ = read_state(out, open(ca_path).read())
    state_hm, _ = hallmark_state(hm, out, ca_path)
    check(state_hm == state_py == "Trusted", f"c2pa-python callback signer -> hallmark: {state_hm}, c2pa-python itself: {state_py}")

    # 3. Never more trusting than the reference: on files with known defects and files made
    # from c2patool-style definitions, hallmark's state is never better than c2pa-python's.
    rank = {"Invalid": 0, "Valid": 1, "Trusted": 2}
    here = os.path.dirname(os.path.abspath(__file__))
    cases = [os.path.join(here, "..", "testdata", "c2pa", "truepic-20230212-camera.jpg")]
    definition = {
        "claim_generator_info": [{"name": "ACME camera app", "version": "2.1"}],
        "title": "capture.jpg",
        "assertions": [{"label": "c2pa.actions", "data": {"actions": [
            {"action": "c2pa.created", "digitalSourceType": "http://cv.iptc.org/newscodes/digitalsourcetype/digitalCapture"},
            {"action": "c2pa.color_adjustments"}]}}],
    }
    def_path = os.path.join(tmp, "definition.json")
    with open(def_path, "w") as f:
        json.dump(definition, f)
    out = os.path.join(tmp, "definition.jpg")
    subprocess.run([hm, "sign", src, "-o", out, "--keys", keys, "--manifest", def_path, "-q"], check=True)
    cases.append(out)
    for path in cases:
        state_py, _ = read_state(path, ca_pem)
        state_hm, rep = hallmark_state(hm, path, os.path.join(keys, "c2pa-ca.pem"))
        check(rank.get(state_hm, 0) <= rank.get(state_py, 0),
              f"{os.path.basename(path)}: hallmark {state_hm}, c2pa-python {state_py} (hallmark must never be more trusting)")
    state_py, report = read_state(out, ca_pem)
    check(state_py == "Trusted", f"a c2patool definition signed by hallmark -> c2pa-python: {state_py}")
    active = report["manifests"][report["active_manifest"]]
    check(active.get("claim_generator_info", [{}])[0].get("name") == "ACME camera app",
          "the definition's claim_generator_info is the manifest's")

    if failures:
        print(f"{len(failures)} interop check(s) failed")
        sys.exit(1)
    print("all interop checks passed")


if __name__ == "__main__":
    main()
