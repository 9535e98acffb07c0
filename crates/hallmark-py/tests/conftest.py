import os
import pathlib
import shutil
import subprocess

import numpy as np
import pytest

import hallmark

ROOT = pathlib.Path(__file__).resolve().parents[3]
PHOTOS = ROOT / "testdata" / "photos"


def photo(name: str) -> pathlib.Path:
    return PHOTOS / name


@pytest.fixture(scope="session")
def keys(tmp_path_factory) -> hallmark.Keys:
    return hallmark.Keys.generate(tmp_path_factory.mktemp("k") / "keys", org="ACME", name="ACME image model")


@pytest.fixture(scope="session")
def other_keys(tmp_path_factory) -> hallmark.Keys:
    return hallmark.Keys.generate(tmp_path_factory.mktemp("k2") / "keys")


@pytest.fixture(scope="session")
def coffee() -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(photo("p02_coffee_600x400.png")).convert("RGB"))


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> str:
    p = tmp_path_factory.mktemp("m") / "tiny.gguf"
    hallmark._native._write_tiny_model(str(p), 7, 1.0)
    return str(p)


def hallmark_bin() -> str:
    """The CLI built from this tree (HALLMARK_BIN, else target/debug or on PATH)."""
    b = os.environ.get("HALLMARK_BIN")
    if b:
        return os.path.abspath(b)
    for c in (ROOT / "target" / "debug" / "hallmark", ROOT / "target" / "release" / "hallmark"):
        if c.exists():
            return str(c)
    found = shutil.which("hallmark")
    if not found:
        pytest.skip("the hallmark CLI is not built (set HALLMARK_BIN)")
    return found


def cli(*args: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([hallmark_bin(), *args], capture_output=True, text=True, **kw)
