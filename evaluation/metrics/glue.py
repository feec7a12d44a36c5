"""GLUE metrics (Wang et al. 2019, §3 and Table 1): accuracy (SST-2, RTE, QNLI, MRPC), F1 of the positive class
(MRPC, QQP), Matthews correlation (CoLA), Pearson and Spearman correlation (STS-B). Points, 0–100.

Thin wrappers of scikit-learn / SciPy so the semantics are the GLUE ones (``glue_compute_metrics`` in the
original BERT / transformers code did the same calls).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

METRICS = ("accuracy", "f1", "mcc", "pearson", "spearman")


def _pair(predictions: Sequence, references: Sequence) -> tuple[np.ndarray, np.ndarray]:
    p, r = np.asarray(predictions), np.asarray(references)
    if p.shape != r.shape:
        raise ValueError(f"got {len(p)} predictions but {len(r)} references")
    if p.size == 0:
        raise ValueError("no predictions to score")
    return p, r


def accuracy(predictions: Sequence, references: Sequence) -> float:
    """Share of exact label matches, in points.

    >>> accuracy([1, 0, 1, 1], [1, 1, 1, 1])
    75.0
    """
    p, r = _pair(predictions, references)
    return float((p == r).mean() * 100)


def f1(predictions: Sequence, references: Sequence, *, positive=1) -> float:
    """F1 of the positive class (GLUE's MRPC / QQP F1), in points."""
    from sklearn.metrics import f1_score

    p, r = _pair(predictions, references)
    return float(f1_score(r, p, pos_label=positive, average="binary", zero_division=0) * 100)


def mcc(predictions: Sequence, references: Sequence) -> float:
    """Matthews correlation coefficient (CoLA), in points (−100..100)."""
    from sklearn.metrics import matthews_corrcoef

    p, r = _pair(predictions, references)
    return float(matthews_corrcoef(r, p) * 100)


def _corr(p: np.ndarray, r: np.ndarray) -> float:
    """Pearson's r of two float vectors, × 100 (NaN when either is constant: the correlation is undefined)."""
    p, r = p - p.mean(), r - r.mean()
    denom = np.sqrt((p * p).sum() * (r * r).sum())
    return float((p * r).sum() / denom * 100) if denom > 0 else float("nan")


def _floats(predictions, references) -> tuple[np.ndarray, np.ndarray]:
    p, r = _pair(predictions, references)
    return p.astype(np.float64), r.astype(np.float64)


def pearson(predictions: Sequence[float], references: Sequence[float]) -> float:
    """Pearson's r × 100 (STS-B); equals ``scipy.stats.pearsonr`` (numpy here: the bootstrap calls it 1000×)."""
    return _corr(*_floats(predictions, references))


def spearman(predictions: Sequence[float], references: Sequence[float]) -> float:
    """Spearman's ρ × 100 (STS-B; the Sentence-BERT paper's STS metric, §4.1): Pearson's r of the ranks,
    ties at their average rank, which is what ``scipy.stats.spearmanr`` computes.

    >>> round(spearman([0.1, 0.4, 0.3], [1.0, 5.0, 3.0]), 1)
    100.0
    """
    from scipy.stats import rankdata

    p, r = _floats(predictions, references)
    return _corr(rankdata(p), rankdata(r))


FUNCTIONS = {"accuracy": accuracy, "f1": f1, "mcc": mcc, "pearson": pearson, "spearman": spearman}


def compute(name: str, predictions: Sequence, references: Sequence) -> float:
    if name not in FUNCTIONS:
        raise ValueError(f"unknown GLUE metric {name!r}; one of {', '.join(METRICS)}")
    return FUNCTIONS[name](predictions, references)
