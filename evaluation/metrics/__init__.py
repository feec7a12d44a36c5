"""Metrics of the evaluation harness, reported in percentage points (0–100) except losses (raw).

``glue`` (accuracy, F1, MCC, Pearson, Spearman), ``squad`` (the official v1.1 / v2.0 scorer's semantics),
``rouge`` (rouge-score with stemming, ROUGE-Lsum on one sentence per line), ``clinical`` (AUROC, AUPRC, RP80),
``pretraining`` (held-out masked-LM / span-boundary losses in nats, raw; accuracies and RTD AUROC in points).
:func:`bootstrap_ci` gives the 95% interval of any of them from per-example data with a fixed seed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

BOOTSTRAP_RESAMPLES = 1000


@dataclass(frozen=True)
class Interval:
    """A percentile bootstrap interval of a metric (points)."""

    low: float
    high: float
    resamples: int
    seed: int

    def as_dict(self) -> dict:
        return {"low": round(self.low, 4), "high": round(self.high, 4), "resamples": self.resamples,
                "seed": self.seed, "method": "percentile bootstrap over examples"}


def bootstrap_ci(metric: Callable[[np.ndarray], float], n: int, *, resamples: int = BOOTSTRAP_RESAMPLES,
                 seed: int = 0, level: float = 0.95) -> Interval:
    """Percentile bootstrap (Efron & Tibshirani 1993, §13.3): resample the ``n`` example indices with
    replacement ``resamples`` times, recompute ``metric(indices)``, take the (1±level)/2 quantiles.

    ``metric`` maps an index array to a score, so paired data (predictions, references) stay paired.
    The generator is seeded explicitly: the same seed gives the same interval.

    >>> acc = np.array([1, 0, 1, 1])
    >>> iv = bootstrap_ci(lambda idx: 100 * acc[idx].mean(), 4, resamples=200, seed=0)
    >>> 0 <= iv.low <= 75 <= iv.high <= 100
    True
    """
    if n < 1:
        raise ValueError("bootstrap needs at least one example")
    rng = np.random.default_rng(seed)
    scores = np.empty(resamples)
    for i in range(resamples):
        scores[i] = metric(rng.integers(0, n, size=n))
    scores = scores[np.isfinite(scores)]  # e.g. a correlation of a constant resample
    if scores.size == 0:
        return Interval(float("nan"), float("nan"), resamples, seed)
    alpha = (1 - level) / 2
    low, high = np.quantile(scores, [alpha, 1 - alpha])
    return Interval(float(low), float(high), resamples, seed)


def mean_ci(values: Sequence[float], *, resamples: int = BOOTSTRAP_RESAMPLES, seed: int = 0) -> Interval:
    """Bootstrap interval of the mean of per-example scores (already in points)."""
    arr = np.asarray(values, dtype=np.float64)
    return bootstrap_ci(lambda idx: float(arr[idx].mean()), len(arr), resamples=resamples, seed=seed)
