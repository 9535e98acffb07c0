"""The text watermark: the logits processor in a sampling loop, the detector, generation."""

import numpy as np
import pytest

import hallmark
from hallmark.text import Detector, LogitsProcessor
from conftest import cli

SCHEMES = ["gumbel", "kgw", "robust", "kgw-robust"]


def fake_model_scores(rng: np.random.Generator, batch: int, vocab: int) -> np.ndarray:
    """Next-token scores of a stand-in model: a spread of plausible tokens per step."""
    return (rng.gumbel(size=(batch, vocab)) * 1.5).astype(np.float32)


def sample(scores: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    p = np.exp(scores - scores.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    return np.array([rng.choice(len(row), p=row) for row in p])


def run_loop(proc, batch=2, vocab=5000, steps=150, seed=0, prompt_len=5):
    """transformers' generate loop, reduced to its essentials: scores -> processors ->
    sampling -> append."""
    rng = np.random.default_rng(seed)
    ids = rng.integers(0, vocab, size=(batch, prompt_len))
    for _ in range(steps):
        scores = fake_model_scores(rng, batch, vocab)
        scores = proc(ids, scores)
        nxt = sample(scores, rng)
        ids = np.concatenate([ids, nxt[:, None]], axis=1)
    return ids


@pytest.mark.parametrize("scheme", SCHEMES)
def test_processor_watermarks_a_batch_for_every_scheme(keys, other_keys, scheme):
    # 300 tokens: the keys are fresh each run, and at 150 the weakest scheme here (kgw,
    # delta 2) measured z = 5.1 once (p = 2e-6): strong evidence, but over the bound below.
    proc = LogitsProcessor(keys, vocab_size=5000, scheme=scheme)
    ids = run_loop(proc, steps=300)
    det = Detector(keys, scheme=scheme)
    wrong = Detector(other_keys, scheme=scheme)
    for row in ids:
        generated = row[5:]
        r = det.detect_ids(generated)
        assert r.prediction and r.p_value < 1e-6, (scheme, r)
        assert r.num_tokens_scored > 200
        # Under the null the p-value is uniform: a wrong key passes 1e-6 once in a million
        # (the default 1e-3 threshold would fail this test about once in 150 runs).
        assert wrong.detect_ids(generated).p_value > 1e-6
    # Without the processor, nothing is found.
    plain = run_loop(lambda i, s: s, seed=1, steps=300)
    assert det.detect_ids(plain[0][5:]).p_value > 1e-6


def test_processor_returns_what_it_was_given(keys):
    proc = LogitsProcessor(keys, 100)
    ids = np.array([[1, 2, 3, 4]], dtype=np.int32)
    s64 = np.random.default_rng(0).normal(size=(1, 100))
    out = proc(ids, s64)
    assert isinstance(out, np.ndarray) and out.dtype == np.float64 and out.shape == (1, 100)
    # The distortion-free scheme leaves one token possible where its keyed rule applies.
    assert np.isfinite(out).sum() == 1
    with pytest.raises(ValueError):
        proc(np.zeros((2, 3), np.int64), np.zeros((1, 100), np.float32))
    with pytest.raises(ValueError):
        proc(np.zeros((1, 3), np.int64), np.zeros((1, 50), np.float32))
    with pytest.raises(hallmark.InputError):
        proc(np.array([[1, 2, -5, 4, 5]]), np.zeros((1, 100), np.float32))


def test_generated_text_is_detected_by_python_and_the_cli(keys, tiny_model, tmp_path):
    g = hallmark.text.generate(tiny_model, keys, "Once upon a time", max_tokens=300, min_tokens=300, seed=3, temperature=1.0, raw=True)
    assert g.watermarked and g.scheme == keys.text_scheme
    det = Detector(keys, tokenizer=tiny_model)
    r = det.detect(g.text)
    assert r.prediction, r
    f = tmp_path / "story.txt"
    f.write_text(g.text)
    c = cli("--json", "text", "detect", "--key", keys.dir, "--tokenizer", tiny_model, str(f))
    assert c.returncode == 0, c.stdout + c.stderr
    unmarked = hallmark.text.generate(tiny_model, None, "Once upon a time", max_tokens=300, min_tokens=300, seed=3, raw=True)
    assert not unmarked.watermarked
    assert det.detect(unmarked.text).p_value > 1e-6  # fresh keys: 1e-3 would fail 1 run in 1,000


def test_processor_output_decoded_to_text_is_found_by_the_cli(keys, tiny_model, tmp_path):
    """What a transformers pipeline does: sample ids through the processor, decode them with
    the model's tokenizer; `hallmark text detect` with that tokenizer finds the mark."""
    det = Detector(keys, tokenizer=tiny_model)
    vocab = 200  # below the tiny model's vocabulary: printable text
    proc = LogitsProcessor(keys)
    ids = run_loop(proc, batch=1, vocab=vocab, steps=400, seed=5, prompt_len=3)[0][3:]
    text = det.decode(ids)
    f = tmp_path / "t.txt"
    f.write_text(text)
    c = cli("text", "detect", "--key", keys.dir, "--tokenizer", tiny_model, str(f))
    assert c.returncode == 0, c.stdout + c.stderr


def test_detector_bad_input(keys, tiny_model):
    det = Detector(keys, tokenizer=tiny_model)
    with pytest.raises(hallmark.InputError):
        det.detect("   ")
    with pytest.raises(TypeError):
        det.detect(b"bytes")
    with pytest.raises(hallmark.ParameterError):
        Detector(keys).detect("no tokenizer given")
    with pytest.raises(hallmark.Error):
        Detector(keys, tokenizer="/nonexistent/tokenizer.json")
    with pytest.raises(ValueError):
        Detector(keys, threshold=2.0)
    with pytest.raises(hallmark.Error):
        hallmark.text.generate(tiny_model, keys, "", max_tokens=5)
