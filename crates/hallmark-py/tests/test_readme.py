"""The README's "Use from Python" examples, run as written (in order, from a folder laid
out like the repository's root)."""

import importlib.util
import os
import pathlib
import re

import pytest

from conftest import ROOT, hallmark_bin


def blocks():
    text = (ROOT / "README.md").read_text()
    section = text.split("## Use from Python", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```python\n(.*?)```", section, flags=re.S)


def test_the_readme_has_the_three_examples():
    b = blocks()
    assert len(b) == 3
    assert "Watermarker" in b[0] and "LogitsProcessor" in b[1] and "hallmark.verify" in b[2]


def test_readme_examples_run_as_written(tmp_path, monkeypatch, capsys):
    for d in ("testdata", "models"):
        if (ROOT / d).exists():
            (tmp_path / d).symlink_to(ROOT / d)
    bin_dir = os.path.dirname(hallmark_bin())  # before the chdir: it may be relative
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PATH", bin_dir + os.pathsep + os.environ["PATH"])
    diffusers, transformers, verify = blocks()

    exec(compile(diffusers, "README:diffusers", "exec"), {})
    assert capsys.readouterr().out.startswith("True ")

    exec(compile(verify, "README:verify", "exec"), {})
    out = capsys.readouterr().out
    assert out.splitlines()[0] == "ai_generated"

    missing = [m for m in ("torch", "transformers") if importlib.util.find_spec(m) is None]
    if not (tmp_path / "models" / "SmolLM2-135M-Instruct.Q4_1.gguf").exists():
        missing.append("models/SmolLM2-135M-Instruct.Q4_1.gguf (scripts/fetch-model.sh models)")
    if missing:
        pytest.skip("the transformers example needs " + ", ".join(missing))
    exec(compile(transformers, "README:transformers", "exec"), {})
    assert capsys.readouterr().out.startswith("True ")
