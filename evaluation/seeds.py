"""Variance over seeds: one leaderboard row per setting run with several seeds, its mean, spread and 95% interval.

A bootstrap interval over the evaluation examples (:mod:`evaluation.record`) measures how much the score of *one*
trained model would move on another sample of examples. It does not see how much the score moves when the same
recipe is trained again with another seed, which for encoder fine-tuning on small GLUE tasks is several points
(Dodge et al. 2020; EuroEval fine-tunes each model 10 times and reports a 95% interval over the runs). So:

- :func:`run_seed` is the seed a run varies: the training seed (``training.config.seed``) of a variant-lab run,
  else the harness seed (``seed``: the probe's training sample, its CV folds and the bootstrap);
- :func:`setup_key` fingerprints everything else that decides the score (the training config without seed,
  output and run name; the data's sha256; ``limit``): runs of one model under *other* settings are never
  mixed in as "seeds";
- :func:`fold` keeps, per (model, task, split), the setting of the newest run, the newest run per seed of that
  setting, and when there are two seeds or more gives the row ``score`` = the mean over seeds, ``seeds`` = how
  many, ``seed_sd`` = the sample standard deviation (the spread), ``seed_ci95_low/high`` = the Student-t 95%
  interval of the mean (:func:`summarize`), ``seed_scores`` = every seed's score; the bootstrap interval
  (``ci95_low/high``) becomes the mean of the runs' own bootstrap bounds (one run's interval, typically);
- :func:`seed_test` is the tie test of two such rows: Welch's t-test on their seed scores (unequal variances).

>>> s = summarize([60.0, 62.0, 58.0], [1, 2, 3])
>>> (s.mean, round(s.sd, 3), round(s.low, 2), round(s.high, 2))
(60.0, 2.0, 55.03, 64.97)
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

CONFIDENCE = 0.95
# training-config fields that do not change what is measured: the seed varies by design; where a run is saved,
# what it is called and how it was checkpointed or logged do not move the score
NOT_SETUP = ("seed", "output", "run_name", "resume", "checkpoint_minutes", "log_every", "max_minutes", "data")
SEED_COLUMNS = ("seeds", "seed_sd", "seed_ci95_low", "seed_ci95_high", "seed_scores")
SEED_VALUES = "seed_values"  # the board's exact seed scores (a tuple per row; the tie test reads it)


@dataclass(frozen=True)
class SeedSummary:
    """A score over ``n`` seeds: mean, sample standard deviation, Student-t 95% interval of the mean."""

    n: int
    mean: float
    sd: float
    low: float
    high: float
    seeds: tuple
    scores: tuple

    @property
    def text(self) -> str:
        """``60.00 ± 2.00 (sd, 3 seeds), 95% CI 55.03–64.97``."""
        if self.n < 2:
            return f"{self.mean:.2f} (1 seed: no interval over seeds)"
        return f"{self.mean:.2f} ± {self.sd:.2f} (sd, {self.n} seeds), 95% CI {self.low:.2f}–{self.high:.2f}"


def summarize(scores, seeds=()) -> SeedSummary:
    """Mean, sample SD (ddof 1) and the Student-t interval mean ± t₀.₉₇₅,ₙ₋₁ · sd / √n of ``scores`` (one per seed).
    With n = 3, t = 4.30: three seeds pin the mean down far less than ±1.96 sd/√n would claim."""
    x = np.asarray([float(s) for s in scores], dtype=float)
    if x.size == 0 or not np.isfinite(x).all():
        raise ValueError(f"seed scores must be finite numbers, got {list(scores)}")
    mean = float(x.mean())
    if x.size < 2:
        return SeedSummary(1, mean, float("nan"), float("nan"), float("nan"), tuple(seeds), tuple(x.tolist()))
    from scipy.stats import t

    sd = float(x.std(ddof=1))
    half = float(t.ppf(0.5 + CONFIDENCE / 2, x.size - 1)) * sd / math.sqrt(x.size)
    return SeedSummary(int(x.size), mean, sd, mean - half, mean + half, tuple(seeds), tuple(x.tolist()))


def seed_test(a, b) -> float:
    """Two-sided p-value of Welch's t-test (unequal variances) between two rows' seed scores; nan when either
    has fewer than two seeds or both are constant."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.size < 2 or b.size < 2:
        return float("nan")
    if a.std() == 0 and b.std() == 0:
        return 1.0 if a[0] == b[0] else 0.0
    from scipy.stats import ttest_ind

    return float(ttest_ind(a, b, equal_var=False).pvalue)


def run_seed(record: dict) -> int | None:
    """The seed a run varies: the training seed of a variant-lab run, else the harness seed."""
    training = record.get("training")
    if isinstance(training, dict) and isinstance(training.get("config"), dict) and "seed" in training["config"]:
        seed = training["config"]["seed"]
    else:
        seed = record.get("seed")
    try:
        return int(seed)
    except (TypeError, ValueError):
        return None


def setup_key(record: dict) -> str:
    """A short hash of everything but the seed that decides a run's score (see the module docstring)."""
    training = record.get("training") if isinstance(record.get("training"), dict) else {}
    config = training.get("config") if isinstance(training.get("config"), dict) else {}
    setup = {"config": {k: v for k, v in sorted(config.items()) if k not in NOT_SETUP},
             "recipe": training.get("recipe"), "steps": training.get("steps"),
             "data_sha256": record.get("data_sha256"), "limit": record.get("limit"),
             "revision": None if training else record.get("model_revision")}
    return hashlib.sha256(json.dumps(setup, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _mean(values) -> float | None:
    x = pd.to_numeric(pd.Series(list(values)), errors="coerce").dropna()
    return float(x.mean()) if len(x) else None


def fold(runs: pd.DataFrame) -> pd.DataFrame:
    """The newest row per (model, task, split), with the seed columns (:data:`SEED_COLUMNS`) filled in where its
    setting was run with several seeds. ``runs``: :func:`evaluation.results.load_runs` (newest first; columns
    ``run_seed`` and ``setup``)."""
    if runs.empty:
        return runs.assign(**{c: pd.Series(dtype=object) for c in (*SEED_COLUMNS, SEED_VALUES)})
    rows = []
    for _, group in runs.groupby(["model", "task", "split"], sort=False):
        newest = group.iloc[0].to_dict()
        same = group[group["setup"] == newest["setup"]].drop_duplicates("run_seed", keep="first")
        scored = same[pd.to_numeric(same["score"], errors="coerce").notna() & same["run_seed"].notna()]
        row = {**newest, "seeds": 1, "seed_sd": None, "seed_ci95_low": None, "seed_ci95_high": None,
               "seed_scores": None, SEED_VALUES: ()}
        if len(scored) >= 2:
            scored = scored.sort_values("run_seed", kind="stable")
            s = summarize(scored["score"].astype(float), scored["run_seed"].astype(int).tolist())
            row.update(score=s.mean, seeds=s.n, seed_sd=s.sd, seed_ci95_low=s.low, seed_ci95_high=s.high,
                       seed_scores="; ".join(f"{seed}: {v:.2f}" for seed, v in zip(s.seeds, s.scores)),
                       **{SEED_VALUES: s.scores},
                       ci95_low=_mean(scored["ci95_low"]), ci95_high=_mean(scored["ci95_high"]),
                       citation=f"{newest['citation']}; mean of {s.n} seeds")
        rows.append(row)
    return pd.DataFrame(rows).reset_index(drop=True)


def seed_values(row) -> list[float]:
    """A folded row's exact seed scores; [] for a one-seed row or a paper's row."""
    value = row.get(SEED_VALUES) if hasattr(row, "get") else None
    return [float(v) for v in value] if isinstance(value, (tuple, list)) else []
