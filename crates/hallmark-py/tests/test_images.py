"""Keys, stamping, verifying and the pixel watermark, against real photos."""

import io
import json
import os
import stat

import numpy as np
import pytest
from PIL import Image

import hallmark
from conftest import cli, photo


def test_keys_are_the_clis_files_with_private_keys_0600(keys, tmp_path):
    for f in ("watermark.key", "c2pa-signing.key"):
        assert stat.S_IMODE(os.stat(os.path.join(keys.dir, f)).st_mode) == 0o600
    for f in ("c2pa-chain.pem", "c2pa-ca.pem", "keys.json", "text-watermark.conf"):
        assert os.path.exists(os.path.join(keys.dir, f))
    info = json.load(open(os.path.join(keys.dir, "keys.json")))
    assert info["watermark_key_id"] == keys.watermark_key_id
    again = hallmark.Keys.load(keys.dir)
    assert again.watermark_key_id == keys.watermark_key_id
    with pytest.raises(hallmark.OutputExistsError) as e:
        hallmark.Keys.generate(keys.dir)
    assert e.value.code == "output_exists"
    # The CLI reads what Python wrote.
    r = cli("--json", "verify", str(photo("p02_coffee_600x400.png")), "--keys", keys.dir)
    assert r.returncode == 1, r.stderr


@pytest.mark.parametrize("kind", ["bytes", "path", "pil", "numpy"])
def test_stamp_takes_every_kind_of_image_and_verify_finds_it(keys, kind, coffee):
    src = photo("p02_coffee_600x400.png")
    image = {
        "bytes": src.read_bytes(),
        "path": str(src),
        "pil": Image.open(src),
        "numpy": coffee,
    }[kind]
    s = hallmark.Stamper(keys, model="acme-diffusion", model_version="2.1")
    st = s.stamp(image, payload="0123456789abcdef")
    assert st.payload == "0123456789abcdef"
    assert st.watermark_readable is True
    assert st.format == "png"
    assert st.psnr > 38
    assert st.manifest_id.startswith("urn:c2pa:")
    assert st.data[:8] == b"\x89PNG\r\n\x1a\n"
    rep = hallmark.verify(st.data, keys=keys)
    assert rep.verdict == "ai_generated", rep.reasons
    assert rep.watermark["payload"] == st.payload
    assert rep.c2pa["software_agent"] == "acme-diffusion 2.1"
    assert rep.c2pa["soft_bindings"][0]["value"] == st.payload
    assert rep.schema == hallmark.REPORT_SCHEMA
    assert rep.exit_code == 0


def test_stamp_writes_the_asked_format(keys):
    st = hallmark.Stamper(keys).stamp(str(photo("p02_coffee_600x400.png")), format="jpeg")
    assert st.format == "jpeg" and st.data[:2] == b"\xff\xd8"
    with pytest.raises(hallmark.ParameterError):
        hallmark.Stamper(keys).stamp(str(photo("p02_coffee_600x400.png")), format="bmp")


def test_report_mirrors_the_cli_json(keys, tmp_path):
    st = hallmark.Stamper(keys).stamp(str(photo("p03_rocket_640x427.png")))
    out = tmp_path / "stamped.png"
    st.save(out)
    py = hallmark.verify(str(out), keys=keys).to_dict()
    r = cli("--json", "verify", str(out), "--keys", keys.dir)
    assert r.returncode == 0, r.stderr
    c = json.loads(r.stdout)
    for k in ("schema", "verdict", "summary", "reasons", "consistency", "format"):
        assert py[k] == c[k], k
    assert py["watermark"]["payload"] == c["watermark"]["payload"]
    # save() never replaces a file silently.
    with pytest.raises(hallmark.OutputExistsError):
        st.save(out)
    st.save(out, force=True)


def test_a_stripped_copy_is_still_recognised_by_its_watermark(keys):
    st = hallmark.Stamper(keys).stamp(str(photo("p05_hubble_1000x872.png")))
    pixels = np.asarray(Image.open(io.BytesIO(st.data)).convert("RGB"))
    rep = hallmark.verify(pixels, keys=keys)  # no manifest: pixels only
    assert rep.c2pa is None
    assert rep.watermark["detected"] and rep.watermark["payload"] == st.payload
    assert rep.verdict == "ai_generated"
    # Another key finds nothing.
    rep2 = hallmark.verify(pixels, keys=hallmark.Keys.generate(os.path.join(os.path.dirname(keys.dir), "k3")))
    assert rep2.verdict == "no_evidence" and rep2.exit_code == 1


def test_verify_names_an_untrusted_signer_and_a_ledger(keys, other_keys, tmp_path):
    st = hallmark.Stamper(keys).stamp(str(photo("p02_coffee_600x400.png")))
    rep = hallmark.verify(st.data, keys=other_keys, watermark_keys=[keys])
    assert rep.c2pa["validation_state"] == "Valid"
    rep = hallmark.verify(st.data, trust=keys.trust_anchor)
    assert rep.c2pa["validation_state"] == "Trusted"
    assert rep.watermark is None


def test_embed_and_detect_on_pixels(keys, other_keys, coffee):
    marked = hallmark.image.embed(coffee, keys, "00112233aabbccdd")
    assert marked.shape == coffee.shape and marked.dtype == np.uint8
    assert not np.array_equal(marked, coffee)
    d = hallmark.image.detect(marked, keys)
    assert d.detected and d.payload == "00112233aabbccdd" and d.p_value < 1e-6
    assert not hallmark.image.detect(marked, other_keys).detected
    assert not hallmark.image.detect(coffee, keys).detected
    pil = hallmark.image.embed(Image.fromarray(coffee), keys, "00112233aabbccdd")
    assert isinstance(pil, Image.Image)
    # Encoded bytes and paths are read too.
    buf = io.BytesIO()
    Image.fromarray(marked).save(buf, format="PNG")
    assert hallmark.image.detect(buf.getvalue(), keys).payload == "00112233aabbccdd"


def test_bad_input_raises_clear_errors(keys, tmp_path):
    s = hallmark.Stamper(keys)
    for bad, code in [
        (b"", "invalid_input"),
        (b"not an image at all", "invalid_input"),
        (photo("p02_coffee_600x400.png").read_bytes()[:3000], "invalid_input"),
        (photo("p06_seeding_1920x1080.jpg").read_bytes()[:20000], "invalid_input"),
        (str(tmp_path / "missing.png"), "not_found"),
    ]:
        with pytest.raises(hallmark.Error) as e:
            s.stamp(bad)
        assert e.value.code == code, (bad[:20], e.value)
    with pytest.raises(hallmark.InputError):
        s.stamp(np.zeros((200, 200), np.uint8))
    with pytest.raises(hallmark.InputError):
        s.stamp(np.zeros((200, 200, 3), np.float32))
    with pytest.raises(hallmark.InputError) as e:
        hallmark.image.embed(np.zeros((50, 50, 3), np.uint8), keys)
    assert e.value.code == "too_small"
    with pytest.raises(hallmark.ParameterError):
        s.stamp(str(photo("p02_coffee_600x400.png")), payload="xyz")
    with pytest.raises(hallmark.InputError):
        hallmark.verify(b"\x89PNG\r\n\x1a\n" + b"\0" * 100, keys=keys)
    bad_key = tmp_path / "bad.key"
    bad_key.write_text("not a key\n")
    os.chmod(bad_key, 0o600)
    with pytest.raises(hallmark.KeyMaterialError):
        hallmark.image.detect(np.zeros((200, 200, 3), np.uint8), str(bad_key))
    with pytest.raises(TypeError):
        hallmark.image.detect(np.zeros((200, 200, 3), np.uint8), 42)


def test_own_chain_and_external_signer_from_python(keys, tmp_path):
    """A pipeline signs with its CA's chain: an ES256 key file, or a signer command (the key
    stays outside); the watermark key is the keys folder's. A key for another certificate is
    refused before anything is signed."""
    ca = hallmark.Keys.generate(tmp_path / "ca", alg="es256")
    chain = os.path.join(ca.dir, "c2pa-chain.pem")
    key = os.path.join(ca.dir, "c2pa-signing.key")
    assert os.path.exists(os.path.join(ca.dir, "ledger.key"))
    src = str(photo("p02_coffee_600x400.png"))
    for kwargs in ({"private_key": key}, {"signer_command": f"openssl dgst -sha256 -sign {key}"}):
        st = hallmark.Stamper(keys, cert=chain, check=False, **kwargs).stamp(src)
        rep = hallmark.verify(st.data, keys=keys, trust=os.path.join(ca.dir, "c2pa-ca.pem"))
        assert rep.c2pa["validation_state"] == "Trusted", rep.reasons
        assert rep.c2pa["signer"]["alg"].lower() == "es256"
        assert rep.watermark["payload"] == st.payload
    with pytest.raises(hallmark.Error) as e:
        hallmark.Stamper(keys, cert=chain, private_key=os.path.join(keys.dir, "c2pa-signing.key"))
    assert "cannot sign" in str(e.value)
