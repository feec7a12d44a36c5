"""Helpers the per-format evaluators share: embeddings through the one inference path, pair features, clipping."""

from __future__ import annotations

import numpy as np

from bertvariants import inference

from ..handle import ModelHandle
from ..loaders import Dataset


def encode(h: ModelHandle, texts, *, batch_size: int, progress: bool) -> np.ndarray:
    """(N, H) sentence embeddings of ``texts`` with the model's own pooling (``bertvariants.inference.encode``)."""
    m = h.loaded
    return inference.encode(m.model, m.tokenizer, list(texts), pooling=h.pooling, batch_size=batch_size,
                  max_length=h.max_length, progress=progress).numpy()


def features(h: ModelHandle, ds: Dataset, *, batch_size: int, progress: bool) -> np.ndarray:
    """(N, H) for single sentences, (N, 4H) = [u, v, |u−v|, u∗v] for pairs (Sentence-BERT §3)."""
    u = encode(h, [e.text for e in ds.examples], batch_size=batch_size, progress=progress)
    if ds.examples[0].text_pair is None:
        return u
    v = encode(h, [e.text_pair for e in ds.examples], batch_size=batch_size, progress=progress)
    return np.concatenate([u, v, np.abs(u - v), u * v], axis=1)


def clip(text: str, pair: str | None, n: int = 300) -> str:
    s = text if pair is None else f"{text} ||| {pair}"
    return s if len(s) <= n else s[: n - 1] + "…"
