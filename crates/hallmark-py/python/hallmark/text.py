"""The text watermark where text is generated: a logits processor for transformers'
``generate`` (and any loop that samples from scores), a detector, and generation with a
GGUF model. ``key`` is a :class:`hallmark.Keys`, a keys folder or a key file, as on the
CLI; the scheme is the one recorded with the keys unless ``scheme`` names another.

    from hallmark.text import LogitsProcessor
    wm = LogitsProcessor(keys, vocab_size=model.config.vocab_size)
    out = model.generate(**inputs, do_sample=True, logits_processor=[wm])
    # hallmark text detect --key keys --tokenizer tokenizer.json finds it
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence

import numpy as np

from . import _native
from ._convert import is_torch, key_path

__all__ = ["LogitsProcessor", "Detector", "TextDetection", "generate", "Generation"]


class LogitsProcessor:
    """The watermark as a transformers logits processor: ``processor(input_ids, scores) ->
    scores`` with ``input_ids`` ``[batch, seq]`` and ``scores`` ``[batch, vocab]``, numpy
    arrays or torch tensors (returned as the same kind, dtype and device; torch is never
    imported here). Batch-aware: each row is its own sequence. Every shipped scheme works,
    the distortion-free one included: where its keyed rule applies it leaves one token
    possible, so sampling and greedy decoding alike emit the watermarked choice.

    Put it last in the processor list (after temperature and top-k/top-p), as
    ``generate(logits_processor=[...])`` does. A call whose sequence length is not one more
    than the previous call's starts new sequences (a new ``generate``). Beam search
    reorders rows between steps and is not supported."""

    def __init__(self, key: Any, vocab_size: Optional[int] = None, scheme: Optional[str] = None) -> None:
        self._native = _native.NativeProcessor(key_path(key), scheme)
        self.vocab_size = vocab_size

    @property
    def scheme(self) -> str:
        """The scheme header (what ``hallmark text detect`` prints)."""
        return self._native.scheme

    def reset(self) -> None:
        """Forgets the sequences seen so far."""
        self._native.reset()

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        torch_in = is_torch(scores)
        if torch_in:
            ids = input_ids.detach().to("cpu").numpy()
            s = scores.detach().to("cpu").float().numpy()
        else:
            ids = np.asarray(input_ids)
            s = np.asarray(scores)
        if ids.ndim != 2 or s.ndim != 2 or ids.shape[0] != s.shape[0]:
            raise ValueError(f"expected input_ids [batch, seq] and scores [batch, vocab], got {ids.shape} and {s.shape}")
        if self.vocab_size is not None and s.shape[1] < self.vocab_size:
            raise ValueError(f"scores have {s.shape[1]} columns, fewer than the vocabulary's {self.vocab_size}")
        ids64 = np.ascontiguousarray(ids, dtype=np.int64)
        s32 = np.ascontiguousarray(s, dtype=np.float32)
        out = self._native.process(ids64.tobytes(), ids64.shape[0], ids64.shape[1], s32.tobytes(), s32.shape[1])
        res = np.frombuffer(out, dtype=np.float32).reshape(s32.shape)
        if torch_in:
            torch = sys.modules["torch"]
            return torch.from_numpy(res.copy()).to(device=scores.device, dtype=scores.dtype)
        return res.astype(s.dtype, copy=True) if s.dtype != np.float32 else res.copy()


@dataclass(frozen=True)
class TextDetection:
    """A detection, with the fields of transformers' ``WatermarkDetector`` output
    (``num_tokens_scored``, ``z_score``, ``p_value``, ``prediction``) and hallmark's: the
    exact p-value over the whole text, watermarked spans and the scheme."""

    num_tokens_scored: int
    z_score: Optional[float]
    p_value: float
    prediction: bool
    p_value_whole: float
    score: float
    scheme: str
    threshold: float
    tokens: Optional[int] = None
    spans: List[Dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> Dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


class Detector:
    """Scores text for the watermark. ``tokenizer`` is a ``tokenizer.json`` path, a GGUF
    model path or a transformers (fast) tokenizer; :meth:`detect_ids` needs none. A text is
    called watermarked (``prediction``) when its p-value is below ``threshold``."""

    def __init__(
        self,
        key: Any,
        tokenizer: Any = None,
        vocab_size: Optional[int] = None,
        scheme: Optional[str] = None,
        threshold: float = 1e-3,
    ) -> None:
        if not 0.0 < threshold < 1.0:
            raise ValueError("threshold must be in (0, 1)")
        path = json_text = None
        if isinstance(tokenizer, (str, os.PathLike)):
            path = os.fspath(tokenizer)
        elif tokenizer is not None:
            backend = getattr(tokenizer, "backend_tokenizer", None)
            if backend is None:
                raise TypeError("a transformers tokenizer must be a fast one (with backend_tokenizer)")
            json_text = backend.to_str()
        self._native = _native.NativeDetector(key_path(key), scheme, path, json_text)
        self.vocab_size = vocab_size
        self.threshold = threshold

    @property
    def scheme(self) -> str:
        return self._native.scheme

    def _result(self, d: Dict[str, Any], tokens: Optional[int], spans: List[Dict[str, Any]]) -> TextDetection:
        return TextDetection(
            num_tokens_scored=d["tokens_scored"],
            z_score=d.get("z_score"),
            p_value=d["p_value"],
            prediction=d["p_value"] < self.threshold,
            p_value_whole=d["p_value_whole"],
            score=d["score"],
            scheme=self.scheme,
            threshold=self.threshold,
            tokens=tokens,
            spans=spans,
        )

    def detect(self, text: str, prompt: Optional[str] = None) -> TextDetection:
        """Scores a text (``prompt``: the prompt it was generated from, not counted)."""
        if not isinstance(text, str):
            raise TypeError("text must be a str")
        d = json.loads(self._native.detect(text, prompt))
        return self._result(d, d.get("tokens"), d.get("char_spans", []))

    def decode(self, ids: Sequence[int]) -> str:
        """Token ids back to text, with the detector's tokenizer."""
        return self._native.decode([int(x) for x in np.asarray(ids).reshape(-1)])

    def detect_ids(self, ids: Sequence[int]) -> TextDetection:
        """Scores token ids (a list, a 1-D array or tensor)."""
        if is_torch(ids):
            ids = ids.detach().to("cpu").numpy()
        arr = np.asarray(ids).reshape(-1)
        if arr.size and (arr.min() < 0 or (self.vocab_size is not None and arr.max() >= self.vocab_size)):
            raise ValueError("token ids out of range")
        d = json.loads(self._native.detect_ids([int(x) for x in arr]))
        return self._result(d, int(arr.size), d.get("spans", []))


@dataclass(frozen=True)
class Generation:
    """Generated text and how."""

    text: str
    token_ids: List[int]
    prompt_tokens: int
    watermarked: bool
    scheme: Optional[str]
    seed: int
    perplexity: float


def generate(
    model_path: Any,
    key: Any,
    prompt: str,
    *,
    scheme: Optional[str] = None,
    max_tokens: int = 200,
    min_tokens: int = 0,
    temperature: float = 0.8,
    seed: Optional[int] = None,
    raw: bool = False,
) -> Generation:
    """Generates watermarked text with a GGUF model (hallmark's own runner, as
    ``hallmark text generate``); ``key=None`` generates without a watermark. ``raw``
    skips the model's chat template."""
    k = key_path(key) if key is not None else None
    d = json.loads(
        _native.generate(os.fspath(model_path), k, prompt, scheme, max_tokens, min_tokens, temperature, seed, raw)
    )
    return Generation(**d)
