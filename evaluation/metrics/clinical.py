"""The ClinicalBERT paper's three metrics (Huang et al. 2019, §4.2 and Table 3): AUROC, AUPRC and RP80,
in points, computed the way the official ClinicalBERT code does:

- AUROC: the value of ``sklearn.metrics.roc_auc_score`` (computed from ranks, fast enough to bootstrap);
- AUPRC: trapezoidal area under ``precision_recall_curve`` (``auc(recall, precision)``);
- RP80: recall at 80% precision: the largest recall among operating points with precision ≥ 0.8
  (0 when no threshold reaches 80% precision). The paper motivates it as keeping false alarms low.

Note scores come from chunk probabilities aggregated with the paper's §3.4 formula
(``bertvariants.clinical_bert.aggregate_chunk_scores``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np


def _check(labels: Sequence[int], scores: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    y, s = np.asarray(labels), np.asarray(scores, dtype=np.float64)
    if y.shape != s.shape:
        raise ValueError(f"got {len(y)} labels but {len(s)} scores")
    if set(np.unique(y)) - {0, 1}:
        raise ValueError("clinical metrics need binary labels 0 / 1")
    return y, s


def auroc(labels: Sequence[int], scores: Sequence[float]) -> float:
    """Area under the ROC curve, in points, as the Mann–Whitney U statistic: the chance that a random positive
    scores above a random negative, ties counting half (equals ``sklearn.metrics.roc_auc_score``)."""
    y, s = _check(labels, scores)
    n1 = int(y.sum())
    n0 = len(y) - n1
    if n1 == 0 or n0 == 0:
        return float("nan")  # undefined with one class
    from scipy.stats import rankdata  # scipy and scikit-learn load when a score is computed, not at import

    ranks = rankdata(s)
    return float((ranks[y == 1].sum() - n1 * (n1 + 1) / 2) / (n1 * n0) * 100)


def auprc(labels: Sequence[int], scores: Sequence[float]) -> float:
    y, s = _check(labels, scores)
    if y.sum() == 0:
        return float("nan")
    from sklearn.metrics import auc, precision_recall_curve

    precision, recall, _ = precision_recall_curve(y, s)
    return float(auc(recall, precision) * 100)


def rp80(labels: Sequence[int], scores: Sequence[float], *, min_precision: float = 0.8) -> float:
    """Recall at ``min_precision`` precision, in points.

    >>> round(rp80([1, 1, 0, 1, 0], [0.9, 0.8, 0.7, 0.6, 0.1]), 2)  # 3/4 precision at 0.6 is too low
    66.67
    """
    y, s = _check(labels, scores)
    if y.sum() == 0:
        return float("nan")
    from sklearn.metrics import precision_recall_curve

    precision, recall, _ = precision_recall_curve(y, s)
    ok = precision >= min_precision - 1e-9
    return float(recall[ok].max() * 100) if ok.any() else 0.0


@dataclass(frozen=True)
class ClinicalScore:
    metrics: dict[str, float]


def clinical(labels: Sequence[int], scores: Sequence[float]) -> ClinicalScore:
    return ClinicalScore({"auroc": auroc(labels, scores), "auprc": auprc(labels, scores), "rp80": rp80(labels, scores)})
