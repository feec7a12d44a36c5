"""Is run A really better than run B? A paired bootstrap test on the examples both runs scored.

Both runs' per-example predictions (the ``<result>.predictions.jsonl`` sidecars the harness writes) are joined by
example id; the task's metric is recomputed on each resample of the shared examples *the way the task defines it*
(:data:`METRICS`: accuracy / F1 / MCC from the labels, Spearman / Pearson from the scores, AUROC / AUPRC / RP80
from the probabilities, ROUGE and SQuAD F1 as means of the per-example scores, the held-out MLM loss as the mean
cross-entropy per masked token), through the functions of :mod:`evaluation.metrics`.

The p-value is two-sided, the paired bootstrap hypothesis test of Efron & Tibshirani (1993, §16.4) in the form
Berg-Kirkpatrick, Burkett & Klein (2012, §2.2, "An Empirical Investigation of Statistical Significance in NLP")
give it for NLP: the resampled differences δ*ᵦ, centred on the observed difference δ, stand in for the
difference's distribution under the null hypothesis (no difference), so

    p = (1 + #{b : |δ*ᵦ − δ| ≥ |δ|}) / (1 + B)

(their one-sided test counts δ*ᵦ > 2δ; the +1s keep p > 0 with finitely many resamples, Davison & Hinkley 1997,
eq. 4.11). Identical predictions give δ*ᵦ = δ = 0 and p = 1. The 95% interval of the difference is the
percentile interval of δ*ᵦ; ``a_better_share`` is Koehn's (2004) statistic, the share of resamples in which A
scores better than B. The generator is seeded: the same runs give the same answer.

Bad input (an unknown run, runs of different tasks or splits, no shared examples, a metric the stored records
cannot recompute) raises ValueError with a readable message.
"""

from __future__ import annotations

import functools
import math
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from . import results, tasks
from .metrics import clinical, glue
from .record import Result

RESAMPLES = 1000
SEED = 0
ALPHA = 0.05
MAX_RESAMPLES = 10_000


@dataclass(frozen=True)
class ExampleMetric:
    """How one metric is recomputed from the per-example records: which fields it reads and the function."""

    reads: str  # "labels" | "scores" | "probabilities" | "per-example score" | "masked-token loss"
    fn: Callable[[np.ndarray, np.ndarray, np.ndarray], float]  # (prediction, reference, weight) -> metric


def _mean_score(pred, ref, weight) -> float:
    return float(pred.mean())


def _token_weighted(pred, ref, weight) -> float:
    total = weight.sum()
    return float((pred * weight).sum() / total) if total else float("nan")


# (task format, metric) -> how it is recomputed; None as the metric = the task's primary metric only (the stored
# per-example error is derived from the primary metric: 1 − ROUGE-Lsum, 1 − SQuAD F1, the block's mean CE)
METRICS: dict[tuple[str, str | None], ExampleMetric] = {
    **{(fmt, m): ExampleMetric("labels", lambda p, r, w, f=glue.FUNCTIONS[m]: f(p, r))
       for fmt in ("single", "pair") for m in ("accuracy", "f1", "mcc")},
    **{("sts", m): ExampleMetric("scores", lambda p, r, w, f=glue.FUNCTIONS[m]: f(p, r))
       for m in ("spearman", "pearson")},
    **{("long-note", m): ExampleMetric("probabilities", lambda p, r, w, f=f: f(r, p))
       for m, f in (("auroc", clinical.auroc), ("auprc", clinical.auprc), ("rp80", clinical.rp80))},
    ("summarization", None): ExampleMetric("per-example score", _mean_score),
    ("qa", None): ExampleMetric("per-example score", _mean_score),
    ("term-map", None): ExampleMetric("per-example score", _mean_score),  # error = 1 − (t-SNE neighbour same category)
    ("mlm", None): ExampleMetric("masked-token loss", _token_weighted),
}


def example_metric(task: str, metric: str) -> ExampleMetric:
    """How ``metric`` of ``task`` is recomputed from stored predictions; ValueError when it cannot be."""
    bench = tasks.benchmark(task)
    found = METRICS.get((bench.format, metric)) or (METRICS.get((bench.format, None)) if metric == bench.primary
                                                    else None)
    if found is None:
        raise ValueError(f"{metric} of {task} cannot be recomputed from the stored per-example records (they keep "
                         f"{'one error per block' if bench.format in tasks.BLOCK_FORMATS else 'no such field'}"
                         f"); compare the runs' 95% intervals instead")
    return found


def per_example(pred: pd.DataFrame, how: ExampleMetric) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(prediction, reference, weight) arrays in ``pred``'s row order, in the form ``how.fn`` takes."""
    n = len(pred)
    if how.reads == "per-example score":  # points: the stored error is 1 − score/100
        return 100.0 * (1.0 - pred["error"].to_numpy(float)), np.zeros(n), np.ones(n)
    if how.reads == "masked-token loss":
        if "masked" not in pred.columns:
            raise ValueError("these predictions do not record how many tokens each block masked")
        return pred["error"].to_numpy(float), np.zeros(n), pred["masked"].to_numpy(float)
    kind = int if how.reads == "labels" else float
    ref = pred["reference"].to_numpy(kind if how.reads != "probabilities" else int)
    return pred["prediction"].to_numpy(kind), ref, np.ones(n)


@dataclass(frozen=True)
class Pair:
    """Two runs' records and their predictions on the shared examples (``a`` and ``b``: same ids, same order)."""

    file_a: str
    file_b: str
    record_a: Result
    record_b: Result
    a: pd.DataFrame
    b: pd.DataFrame
    n_a: int  # examples each run scored
    n_b: int

    @property
    def n(self) -> int:
        return len(self.a)


def run_files(directory: str | os.PathLike) -> list[str]:
    """Result files in ``directory`` that have stored per-example predictions (the runs a test can use)."""
    runs = results.load_runs(directory)
    return sorted(runs.loc[runs["predictions_file"].notna(), "file"])


def run_record(directory: str | os.PathLike, run: str) -> tuple[str, Result]:
    """(file name, record) of a run named by its result file; ValueError naming some known runs otherwise."""
    directory = Path(directory)
    name = Path(str(run or "")).name  # a name inside the results directory, never a path
    record = results.read(directory / name) if name.endswith(".json") and (directory / name).is_file() else None
    if record is None:
        known = run_files(directory)
        shown = ", ".join(known[:6]) + (f" … ({len(known)} in all)" if len(known) > 6 else "")
        raise ValueError(f"unknown run {str(run)[:80]!r}: give a result file name from the results directory, "
                         f"e.g. {shown or '(none has stored predictions)'}")
    return name, record


def _predictions(directory: Path, name: str) -> pd.DataFrame:
    p = results.predictions(directory, name, worst_first=False)
    if p.empty or "id" not in p.columns:
        raise ValueError(f"{name}: the stored predictions have no example ids")
    return p.assign(id=p["id"].astype(str)).drop_duplicates("id").set_index("id", drop=False)


def pair(directory: str | os.PathLike, run_a: str, run_b: str) -> Pair:
    """Both runs' predictions joined by example id; ValueError unless they scored the same examples."""
    where = Path(directory)
    (fa, ra), (fb, rb) = run_record(where, run_a), run_record(where, run_b)
    if fa == fb:
        raise ValueError(f"pick two different runs (both are {fa})")
    if (ra.task, ra.split) != (rb.task, rb.split):
        raise ValueError(f"{ra.model} was scored on {ra.task} {ra.split} but {rb.model} on "
                         f"{rb.task} {rb.split}: a paired test needs two runs of the same task and split")
    if ra.data_sha256 and rb.data_sha256 and ra.data_sha256 != rb.data_sha256:
        raise ValueError(f"{fa} and {fb} read different data files (sha256 {str(ra.data_sha256)[:12]} vs "
                         f"{str(rb.data_sha256)[:12]}): their examples are not the same")
    pa, pb = _predictions(where, fa), _predictions(where, fb)
    ids = pa.index[pa.index.isin(pb.index)]  # run A's order
    if not len(ids):
        raise ValueError(f"{fa} and {fb} share no example id ({len(pa)} and {len(pb)} examples): they were not "
                         f"scored on the same examples")
    a, b = pa.loc[ids].reset_index(drop=True), pb.loc[ids].reset_index(drop=True)
    if "reference" in a.columns and "reference" in b.columns:
        differ = int((a["reference"].astype(str) != b["reference"].astype(str)).sum())
        if differ:
            raise ValueError(f"{fa} and {fb} give different references for {differ} of their {len(ids)} shared "
                             f"examples: they were not scored on the same data")
    return Pair(fa, fb, ra, rb, a, b, len(pa), len(pb))


@dataclass(frozen=True)
class PairedTest:
    """The paired bootstrap test of run A against run B (difference = A − B, in the metric's units)."""

    run_a: str
    run_b: str
    model_a: str
    model_b: str
    task: str
    split: str
    metric: str
    higher_is_better: bool
    n: int  # shared examples
    n_a: int
    n_b: int
    score_a: float  # recomputed on the shared examples
    score_b: float
    difference: float
    ci_low: float
    ci_high: float
    p_value: float
    a_better_share: float  # Koehn (2004): share of resamples in which A scores better
    resamples: int
    seed: int
    method: str = ("paired bootstrap over shared examples; two-sided p = (1 + #{|δ* − δ| ≥ |δ|}) / (1 + B) "
                   "(Efron & Tibshirani 1993 §16.4; Berg-Kirkpatrick et al. 2012 §2.2)")

    def significant(self, alpha: float = ALPHA) -> bool:
        return self.p_value < alpha

    @property
    def better(self) -> str | None:
        """The model that scores better on the shared examples (None on a tie)."""
        if self.difference == 0:
            return None
        a_wins = (self.difference > 0) == self.higher_is_better
        return self.model_a if a_wins else self.model_b

    @property
    def text(self) -> str:
        """One sentence: who is better, by how much, the interval, the p-value, and whether it is significant."""
        p = "p < 0.001" if self.p_value < 0.001 else f"p = {self.p_value:.3f}"
        what = f"{self.task} {self.split} {self.metric}"
        verdict = (f"significant at {ALPHA:g}" if self.significant() else f"not significant at {ALPHA:g}: "
                   "the data cannot tell them apart")
        head = (f"{self.model_a} and {self.model_b} score the same {what} ({self.score_a:.4g})"
                if self.better is None else
                f"{self.better} is better on {what}: {self.model_a} − {self.model_b} = {self.difference:+.3g} "
                f"({self.score_a:.4g} vs {self.score_b:.4g})")
        return (f"{head}, 95% CI [{self.ci_low:+.3g}, {self.ci_high:+.3g}], {p} (paired bootstrap, "
                f"{self.resamples} resamples of {self.n} shared examples); {verdict}.")

    def as_dict(self) -> dict:
        return {**asdict(self), "significant": self.significant(), "better": self.better, "text": self.text}


def paired_bootstrap(a: Callable[[np.ndarray], float], b: Callable[[np.ndarray], float], n: int, *,
                     resamples: int = RESAMPLES, seed: int = SEED) -> tuple[float, np.ndarray]:
    """(δ, δ*): the observed difference a − b on all ``n`` examples and its ``resamples`` bootstrap replicates,
    each from one resample of example indices shared by both metrics (that is what makes the test paired).
    Replicates where either metric is undefined (e.g. a correlation of a constant resample) are dropped."""
    if n < 1:
        raise ValueError("a paired test needs at least one shared example")
    if not 1 <= resamples <= MAX_RESAMPLES:
        raise ValueError(f"resamples must be between 1 and {MAX_RESAMPLES}, got {resamples}")
    rng = np.random.default_rng(seed)
    every = np.arange(n)
    delta = a(every) - b(every)
    reps = np.empty(resamples)
    for i in range(resamples):
        idx = rng.integers(0, n, size=n)
        reps[i] = a(idx) - b(idx)
    return float(delta), reps[np.isfinite(reps)]


def p_value(delta: float, replicates: np.ndarray) -> float:
    """Two-sided bootstrap p-value of the module docstring: (1 + #{|δ* − δ| ≥ |δ|}) / (1 + B)."""
    if not math.isfinite(delta) or replicates.size == 0:
        return float("nan")
    tol = 1e-12 * max(1.0, abs(delta))  # δ* − δ of identical runs is 0 up to rounding
    extreme = np.count_nonzero(np.abs(replicates - delta) >= abs(delta) - tol)
    return float((1 + extreme) / (1 + replicates.size))


def paired_test(p: Pair, *, metric: str | None = None, resamples: int = RESAMPLES, seed: int = SEED) -> PairedTest:
    """The paired bootstrap test of ``p`` on ``metric`` (default: the task's primary metric)."""
    task = str(p.record_a.task)
    metric = metric or str(p.record_a.primary_metric)
    how = example_metric(task, metric)
    a, b = per_example(p.a, how), per_example(p.b, how)
    score_a, score_b = (lambda idx, x=x: how.fn(x[0][idx], x[1][idx], x[2][idx]) for x in (a, b))
    delta, reps = paired_bootstrap(score_a, score_b, p.n, resamples=resamples, seed=seed)
    if reps.size == 0:
        raise ValueError(f"{metric} is undefined on every resample of the {p.n} shared examples")
    up = results.higher_is_better(task, p.record_a.details)
    lo, hi = np.quantile(reps, [0.025, 0.975])
    every = np.arange(p.n)
    a_better = np.count_nonzero(reps > 0 if up else reps < 0) / reps.size
    return PairedTest(p.file_a, p.file_b, str(p.record_a.model), str(p.record_b.model), task,
                      str(p.record_a.split), metric, up, p.n, p.n_a, p.n_b, score_a(every),
                      score_b(every), delta, float(lo), float(hi), p_value(delta, reps), float(a_better),
                      int(reps.size), seed)


def _stamp(directory: Path, *files: str) -> tuple:
    return tuple((directory / f).stat().st_mtime_ns if (directory / f).is_file() else 0 for f in files)


@functools.lru_cache(maxsize=256)
def _cached(directory: str, run_a: str, run_b: str, metric: str | None, resamples: int, seed: int,
            stamp: tuple) -> PairedTest:
    return paired_test(pair(directory, run_a, run_b), metric=metric, resamples=resamples, seed=seed)


def significance(directory: str | os.PathLike, run_a: str, run_b: str, *, metric: str | None = None,
                 resamples: int = RESAMPLES, seed: int = SEED) -> PairedTest:
    """Paired bootstrap test of two runs (result file names in ``directory``); cached per file contents.

    >>> significance("results", "sst2__minilm__dev__20261125140457.json",
    ...              "sst2__minilm-int8-onnx__dev__20261203084500.json").n  # doctest: +SKIP
    872
    """
    where = Path(directory)
    names = [Path(str(r or "")).name for r in (run_a, run_b)]
    return _cached(str(where), names[0], names[1], metric, int(resamples), int(seed), _stamp(where, *names))


def interval(score, low, high) -> tuple[float, float]:
    """A row's 95% interval, or the point (score, score) when it has none (a paper's number)."""
    lo, hi = pd.to_numeric(pd.Series([low, high]), errors="coerce")
    return (float(lo), float(hi)) if math.isfinite(lo) and math.isfinite(hi) else (float(score), float(score))

