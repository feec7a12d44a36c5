"""The result record of one evaluation run: a frozen :class:`Result`, serialized in one place (:meth:`Result.to_dict`).

Metrics are in points (0–100) except losses; ``ci95`` is the percentile bootstrap interval of the primary
metric (1000 resamples, fixed seed). The JSON written to ``results/`` is exactly ``to_dict()``.
"""

from __future__ import annotations

import math
import platform
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from typing import Any, Callable

import numpy as np

from . import metrics as M


@dataclass
class Outcome:
    """What a per-format evaluator returns (see :mod:`evaluation.evaluators`)."""

    metrics: dict[str, float]
    primary_fn: Callable[[np.ndarray], float]  # index array -> primary metric (for the bootstrap)
    records: list[dict]  # per-example predictions, with "error" (higher = worse)
    details: dict
    n: int | None = None  # units scored and resampled when they are not the dataset's examples (corpus blocks)


@dataclass(frozen=True)
class Result:
    """One run: which model on which task and split, its metrics with a CI, and full provenance."""

    task: str
    model: str
    split: str
    n: int
    metrics: dict[str, float | None]
    primary_metric: str
    score: float | None
    ci95: dict
    examples_per_second: float | None
    seconds: float
    latency_ms: float | None
    device: str
    seed: int
    data_sha256: str
    model_revision: str
    variant: str = ""
    params: int | None = None
    versions: dict = field(default_factory=dict)
    timestamp: str = ""
    details: dict = field(default_factory=dict)
    extra: dict = field(default_factory=dict)  # data path, limit, source, command, file, training, ...

    def to_dict(self) -> dict[str, Any]:
        """The JSON record (results/ files, the CLI's last line, the Leaderboard's input)."""
        core = {name: getattr(self, name) for name in self.__dataclass_fields__ if name != "extra"}
        return {**core, **self.extra}

    def with_extra(self, **extra) -> "Result":
        return replace(self, extra={**self.extra, **extra})

    @classmethod
    def from_dict(cls, record: dict[str, Any]) -> "Result":
        """The inverse of :meth:`to_dict`: keys that are not fields go to ``extra``; a field an older or a
        hand-made record lacks gets its neutral default (``score`` defaults to the primary metric's value)."""
        fields = {name: record[name] for name in cls.__dataclass_fields__ if name != "extra" and name in record}
        extra = {k: v for k, v in record.items() if k not in cls.__dataclass_fields__}
        metrics = dict(record.get("metrics") or {})
        primary = str(record.get("primary_metric", ""))
        defaults = dict(n=0, metrics=metrics, primary_metric=primary, score=metrics.get(primary), ci95={},
                        examples_per_second=None, seconds=0.0, latency_ms=None, device="", seed=0, data_sha256="",
                        model_revision="")
        return cls(**{**defaults, **fields, "metrics": metrics, "extra": extra})

    @property
    def training(self) -> dict | None:
        """The variant lab's training provenance (``train.records.finish``), or None for a harness-only run."""
        t = self.extra.get("training")
        return t if isinstance(t, dict) else None

    @property
    def primary_value(self) -> float | None:
        """The primary metric's value as stored in ``metrics`` (what the leaderboard ranks)."""
        return self.metrics.get(self.primary_metric)


def versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for pkg in ("torch", "transformers", "scikit-learn", "numpy", "scipy", "rouge-score", "sentence-transformers"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            pass
    return out


def make_result(*, task: str, model: str, split: str, n: int, outcome: Outcome, primary: str, seconds: float,
                device: str, seed: int, data_sha256: str, model_revision: str, variant: str = "",
                params: int | None = None, extra: dict | None = None) -> Result:
    """The result of a run (metrics rounded, bootstrap CI of the primary metric, versions, timestamp)."""
    iv = M.bootstrap_ci(outcome.primary_fn, n, seed=seed)
    clean = {k: (round(v, 4) if v is not None and math.isfinite(v) else None) for k, v in outcome.metrics.items()}
    return Result(
        task=task, model=model, split=split, n=n, metrics=clean, primary_metric=primary, score=clean.get(primary),
        ci95=iv.as_dict(), examples_per_second=round(n / seconds, 3) if seconds > 0 else None,
        seconds=round(seconds, 3), latency_ms=round(1000 * seconds / n, 3) if n else None, device=device, seed=seed,
        data_sha256=data_sha256, model_revision=model_revision, variant=variant, params=params, versions=versions(),
        timestamp=datetime.now(timezone.utc).isoformat(timespec="seconds"), details=outcome.details,
        extra=dict(extra or {}))
