"""Helpers the per-format evaluators share: embeddings through the one inference path, pair features, clipping."""

from __future__ import annotations

import numpy as np

from bertvariants import inference

from .. import parallel
from ..handle import ModelHandle
from ..loaders import Dataset


def encode(h: ModelHandle, texts, *, batch_size: int, progress: bool) -> np.ndarray:
    """(N, H) sentence embeddings of ``texts`` with the model's own pooling (``bertvariants.inference.encode``);
    under ``accelerate launch`` each process encodes its share (:func:`evaluation.parallel.map_in_order`)."""
    m = h.loaded
    progress = progress and parallel.is_main()
    return parallel.map_in_order(lambda part: inference.encode(
        m.model, m.tokenizer, part, pooling=h.pooling, batch_size=batch_size, max_length=h.max_length,
        progress=progress).numpy(), list(texts))


def logits(h: ModelHandle, texts, pairs=None, *, batch_size: int, max_length: int | None, progress: bool) -> np.ndarray:
    """(N, C) classifier logits of ``texts`` (with ``pairs``: [CLS] A [SEP] B [SEP]) through
    ``bertvariants.inference.classify``; under ``accelerate launch`` each process runs its share."""
    m = h.loaded
    progress = progress and parallel.is_main()
    items = list(zip(texts, pairs)) if pairs is not None else [(t, None) for t in texts]

    def run(part):
        second = [b for _, b in part] if pairs is not None else None
        return inference.classify(m.model, m.tokenizer, [a for a, _ in part], second, batch_size=batch_size,
                                  max_length=max_length, progress=progress).float().numpy()

    return parallel.map_in_order(run, items)


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
