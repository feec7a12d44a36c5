"""The results store: one JSON file per run, merged into pandas DataFrames beside the papers' numbers.

- :func:`write_result` writes atomically (a temporary file in the same directory, then ``os.replace``), so a
  reader never sees half a file; per-example predictions go to a sidecar ``<name>.predictions.jsonl``.
- :func:`load_runs` reads every run (the history); corrupt or truncated files are skipped with a warning
  that names the file. :func:`latest` keeps the newest run per (model, task, split); the leaderboard folds a
  setting run with several seeds into one row (:func:`evaluation.seeds.fold`: mean, spread, 95% interval).
- :func:`references` reads ``evaluation/references.csv`` (published numbers, with citations).
- :func:`leaderboard` = latest measured rows + paper rows, one row per (model, task, split, source), best first
  within a task in the task's own direction (:func:`higher_is_better`: a held-out loss ranks ascending).
- :func:`training_runs` / :func:`training_curves`: the variant lab's runs (records with a ``training`` key,
  written by ``bertvariants.train.records.finish``) and their logged curves in long form, for the training view.
- :func:`to_csv` escapes cells that a spreadsheet would run as a formula (=, +, -, @).
"""

from __future__ import annotations

import json
import math
import os
import re
import warnings
from pathlib import Path
from typing import Iterable

import pandas as pd

from bertvariants.io import atomic_write_text, dir_lock, read_json, safe_dataframe
from bertvariants.paths import RESULTS_DIR

from . import seeds, tasks
from .record import Result

DEFAULT_RESULTS_DIR = RESULTS_DIR  # results/ in the repository; bertvariants.paths.results_dir() honours the env var
REFERENCES_CSV = Path(__file__).resolve().parent / "references.csv"
REQUIRED = ("task", "model", "split", "metrics", "primary_metric", "timestamp")
COLUMNS = ("model", "variant", "task", "split", "source", "primary_metric", "score", "ci95_low", "ci95_high",
           "params_millions", "latency_ms", "examples_per_second", "n", "metrics", "timestamp", "citation", "file",
           "higher_is_better")
TRAINING_COLUMNS = ("run", "model", "recipe", "task", "split", "corpus", "primary_metric", "score", "higher_is_better",
                    "steps", "seconds", "device", "timestamp", "file")
CURVE_COLUMNS = ("run", "model", "file", "step", "seconds", "metric", "value")
RUN_KEYS = ("run_seed", "setup")  # per run: the seed it varies and its setting's hash (evaluation.seeds)
INTERNAL = (*RUN_KEYS, seeds.SEED_VALUES)  # board columns the code reads and the table never shows


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-")[:80] or "model"


def result_name(result: dict) -> str:
    stamp = re.sub(r"[^0-9]", "", result.get("timestamp", ""))[:14]
    return f"{_slug(result['task'])}__{_slug(result['model'])}__{_slug(result['split'])}__{stamp}"


def write_result(result: dict, out_dir: str | os.PathLike = DEFAULT_RESULTS_DIR,
                 records: Iterable[dict] | None = None) -> Path:
    """Write one run as ``<task>__<model>__<split>__<timestamp>.json`` (+ predictions sidecar); returns the path."""
    out_dir = Path(out_dir)
    name = result_name(result)
    with dir_lock(out_dir):  # choosing a free name and writing it is one step: concurrent runs both land
        path = out_dir / f"{name}.json"
        k = 1
        while path.exists():  # two runs in the same second never overwrite each other
            k += 1
            path = out_dir / f"{name}-{k}.json"
        result = dict(result)
        if records is not None:
            side = path.with_suffix(".predictions.jsonl")
            atomic_write_text(side, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records))
            result["predictions_file"] = side.name
        atomic_write_text(path, json.dumps(result, indent=1, ensure_ascii=False) + "\n")
    return path


def read_result(path: Path) -> dict | None:
    """One result file, or None (with a warning naming the file) when it is corrupt or incomplete."""
    try:
        data = read_json(path)
    except ValueError as exc:
        warnings.warn(f"skipping result file {path.name}: {exc}", stacklevel=2)
        return None
    if not isinstance(data, dict) or any(k not in data for k in REQUIRED) or not isinstance(data["metrics"], dict):
        warnings.warn(f"skipping result file {path.name}: missing fields "
                      f"({', '.join(k for k in REQUIRED if not isinstance(data, dict) or k not in data)})",
                      stacklevel=2)
        return None
    return data


def read(path: Path) -> Result | None:
    """One result file as a :class:`~evaluation.record.Result` (the one reader of result records: the leaderboard,
    the training view, the tabs' claim lines and the recipes read through it), or None when it is unreadable."""
    data = read_result(path)
    return None if data is None else Result.from_dict(data)


def higher_is_better(task: str, details: dict | None = None) -> bool:
    """Direction of a task's primary metric: the benchmark table's ``higher_is_better`` for a known task; for a
    task the table does not know (a recipe's own held-out metric), the record's ``details.higher_is_better``;
    else True (scores in points)."""
    try:
        return bool(tasks.benchmark(str(task)).higher_is_better)
    except ValueError:
        pass
    flag = (details or {}).get("higher_is_better") if isinstance(details, dict) else None
    return flag if isinstance(flag, bool) else True


def _num(x):
    try:
        x = float(x)
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) else None


def load_runs(results_dir: str | os.PathLike = DEFAULT_RESULTS_DIR) -> pd.DataFrame:
    """Every run in ``results_dir`` (the history), newest first; one row per run."""
    rows = []
    d = Path(results_dir)
    files = sorted(d.glob("*.json")) if d.is_dir() else []
    for f in files:
        r = read(f)
        if r is None:
            continue
        ci = r.ci95 if isinstance(r.ci95, dict) else {}
        params = _num(r.params)
        record = r.to_dict()
        rows.append({
            "model": str(r.model), "variant": r.variant or "", "task": str(r.task),
            "split": str(r.split), "source": "measured", "primary_metric": r.primary_metric,
            "score": _num(r.primary_value), "ci95_low": _num(ci.get("low")), "ci95_high": _num(ci.get("high")),
            "params_millions": round(params / 1e6, 2) if params else (0.0 if params == 0 else None),
            "latency_ms": _num(r.latency_ms), "examples_per_second": _num(r.examples_per_second),
            "n": r.n, "metrics": {k: _num(v) for k, v in r.metrics.items()},
            "timestamp": str(r.timestamp), "citation": f"measured here ({r.device or '?'}, seed {r.seed})",
            "file": f.name, "predictions_file": r.extra.get("predictions_file"),
            "higher_is_better": higher_is_better(r.task, r.details),
            "run_seed": seeds.run_seed(record), "setup": seeds.setup_key(record),
        })
    df = pd.DataFrame(rows, columns=list(COLUMNS) + ["predictions_file", *RUN_KEYS])
    return df.sort_values("timestamp", ascending=False, kind="stable").reset_index(drop=True)


def latest(runs: pd.DataFrame) -> pd.DataFrame:
    """The newest run per (model, task, split)."""
    if runs.empty:
        return runs
    return runs.sort_values("timestamp", ascending=False, kind="stable").drop_duplicates(
        ["model", "task", "split"], keep="first").reset_index(drop=True)


def references(path: str | os.PathLike = REFERENCES_CSV) -> pd.DataFrame:
    """Published numbers: one row per (model, task, split) with the task's primary metric first when present."""
    ref = pd.read_csv(path)
    rows = []
    for (model, task, split), g in ref.groupby(["model", "task", "split"], sort=False):
        metrics = dict(zip(g["metric"], g["value"].astype(float)))
        try:
            primary = tasks.benchmark(task).primary
        except ValueError:
            primary = g["metric"].iloc[0]
        if primary not in metrics:
            primary = g["metric"].iloc[0]
        params = _num(g["params_millions"].iloc[0])
        rows.append({"model": model, "variant": g["variant"].iloc[0], "task": task, "split": split, "source": "paper",
                     "primary_metric": primary, "score": metrics[primary], "ci95_low": None, "ci95_high": None,
                     "params_millions": params, "latency_ms": None, "examples_per_second": None, "n": None,
                     "metrics": metrics, "timestamp": "", "citation": "; ".join(dict.fromkeys(g["source"])),
                     "file": "", "predictions_file": None, "higher_is_better": higher_is_better(task)})
    return pd.DataFrame(rows, columns=list(COLUMNS) + ["predictions_file"])


def _direction(value) -> bool:
    """True unless ``value`` says lower is better (a missing direction ranks like points)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return True
    return bool(value)


def leaderboard(results_dir: str | os.PathLike = DEFAULT_RESULTS_DIR, *, include_paper: bool = True) -> pd.DataFrame:
    """Latest measured rows + the papers' rows (source = measured | paper), best score first within a task;
    a measured setting run with several seeds is one row with their mean and the seed columns
    (:func:`evaluation.seeds.fold`). Order:
    descending where higher is better, ascending for lower-is-better tasks (a held-out loss); see
    :func:`higher_is_better`. Rows without a score come last."""
    parts = [seeds.fold(load_runs(results_dir))]  # the newest run per (model, task, split), folded over its seeds
    if include_paper and REFERENCES_CSV.is_file():
        parts.append(references())
    parts = [p for p in parts if not p.empty]
    if not parts:
        return pd.DataFrame(columns=list(COLUMNS) + ["predictions_file", *seeds.SEED_COLUMNS, seeds.SEED_VALUES])
    df = pd.concat(parts, ignore_index=True).reindex(columns=list(dict.fromkeys(
        [*parts[0].columns, *COLUMNS, "predictions_file", *seeds.SEED_COLUMNS, seeds.SEED_VALUES])))
    df["seeds"] = pd.to_numeric(df["seeds"], errors="coerce").astype("Int64")  # a paper's row: <NA>
    score = pd.to_numeric(df["score"], errors="coerce")
    up = df["higher_is_better"].map(_direction)
    rank = score.where(up, -score)  # higher rank = better in both directions
    return (df.assign(_rank=rank).sort_values(["task", "_rank"], ascending=[True, False], kind="stable",
                                              na_position="last")
            .drop(columns="_rank").reset_index(drop=True))


def training_records(results_dir: str | os.PathLike) -> list[tuple[Path, Result]]:
    """(file, record) of every readable result that carries a ``training`` dict, newest first."""
    d = Path(results_dir)
    found = []
    for f in sorted(d.glob("*.json")) if d.is_dir() else []:
        r = read(f)
        if r is None or "training" not in r.extra:
            continue
        if r.training is None:
            warnings.warn(f"skipping training data of {f.name}: 'training' is not an object", stacklevel=3)
            continue
        found.append((f, r))
    found.sort(key=lambda fr: str(fr[1].timestamp), reverse=True)
    return found


def _run_labels(keys: list[tuple[str, str, str, str]]) -> list[str]:
    """The model name, or ``model · task · split`` (``· corpus`` when it was trained on a named corpus) where one
    model has several training records (several tasks, or the same recipe on two corpora)."""
    models = [k[0] for k in keys]
    return [m if models.count(m) == 1 else " · ".join(x for x in (m, t, s, c) if x) for m, t, s, c in keys]


def training_runs(results_dir: str | os.PathLike = DEFAULT_RESULTS_DIR) -> pd.DataFrame:
    """One row per trained model: the newest record per (model, task, split, training corpus) that has a
    ``training`` key (the variant lab's ``finish`` writes it). Columns :data:`TRAINING_COLUMNS`; ``run`` is the model
    name (``model · task · split [· corpus]`` when a model has several such records); newest first. The corpus
    (``details.corpus``, "" when the record names none) keeps a recipe run on another corpus (mlm-dynamic on the
    2018 sample) from hiding the run it is not comparable with (the 600-step §4.1 pair on the 106-article sample)."""
    rows, seen = [], set()
    for f, r in training_records(results_dir):
        details = r.details if isinstance(r.details, dict) else {}
        corpus = str(details.get("corpus") or "")
        key = (str(r.model), str(r.task), str(r.split), corpus)
        if key in seen:
            continue
        seen.add(key)
        t = r.training
        rows.append({"model": key[0], "recipe": str(t.get("recipe") or key[0]), "task": key[1], "split": key[2],
                     "corpus": corpus,
                     "primary_metric": r.primary_metric, "score": _num(r.primary_value),
                     "higher_is_better": higher_is_better(key[1], details),
                     "steps": _num(t.get("steps")), "seconds": _num(t.get("seconds")),
                     "device": str(t.get("device") or r.device or "?"), "timestamp": str(r.timestamp),
                     "file": f.name})
    for row, label in zip(rows, _run_labels([(x["model"], x["task"], x["split"], x["corpus"]) for x in rows])):
        row["run"] = label
    return pd.DataFrame(rows, columns=list(TRAINING_COLUMNS))


def training_curves(results_dir: str | os.PathLike = DEFAULT_RESULTS_DIR,
                    files: Iterable[str] | None = None) -> pd.DataFrame:
    """The logged training curves of :func:`training_runs` (or of the result ``files`` named), long form:
    one row per (run, step, metric) with columns :data:`CURVE_COLUMNS`. ``seconds`` is the wall time at that
    step. Every numeric column of a curve row other than ``step`` / ``seconds`` is a metric (loss, lr and the
    recipe's extras, e.g. ``hidden_cos``). A record whose curve is missing or malformed is skipped with a
    warning naming its file; a malformed row (no numeric step) is dropped with one warning per file."""
    runs = training_runs(results_dir)
    if files is not None:
        wanted = [Path(str(f)).name for f in files]  # a name, never a path outside the results directory
        unknown = sorted(set(wanted) - set(runs["file"]))
        if unknown:
            raise ValueError(f"not a training run in the results: {', '.join(unknown)}")
        runs = runs[runs["file"].isin(wanted)]
    d = Path(results_dir)
    rows = []
    for run in runs.itertuples():
        r = read(d / run.file)
        curve = (r.training or {}).get("curve") if r is not None else None
        if not isinstance(curve, list) or not curve:
            warnings.warn(f"skipping the training curve of {run.file}: no 'training.curve' list", stacklevel=2)
            continue
        bad = 0
        for point in curve:
            step = _num(point.get("step")) if isinstance(point, dict) else None
            if step is None:
                bad += 1
                continue
            seconds = _num(point.get("seconds"))
            for metric, value in point.items():
                value = None if isinstance(value, bool) else _num(value)
                if metric in ("step", "seconds") or value is None:
                    continue
                rows.append({"run": run.run, "model": run.model, "file": run.file, "step": step, "seconds": seconds,
                             "metric": str(metric), "value": value})
        if bad:
            warnings.warn(f"{run.file}: dropped {bad} training-curve row(s) without a numeric step", stacklevel=2)
    return pd.DataFrame(rows, columns=list(CURVE_COLUMNS))


def flat(df: pd.DataFrame) -> pd.DataFrame:
    """One column per metric instead of the metrics dict (the table users see); a metric named like a column gets
    " (metric)"."""
    df = df.drop(columns=list(INTERNAL), errors="ignore")
    if df.empty:
        return df.drop(columns=["metrics", "predictions_file"], errors="ignore")
    taken = set(df.columns)
    metric_cols = pd.DataFrame([{(k if k not in taken else f"{k} (metric)"): v for k, v in (m or {}).items()}
                                for m in df["metrics"]], index=df.index)
    metric_cols = metric_cols.reindex(sorted(metric_cols.columns), axis=1)
    return pd.concat([df.drop(columns=["metrics", "predictions_file"], errors="ignore"), metric_cols], axis=1)


def to_csv(df: pd.DataFrame, path: str | os.PathLike | None = None) -> str:
    """CSV text of ``df`` with formula-like text cells escaped; written atomically to ``path`` when given."""
    text = safe_dataframe(df).to_csv(index=False)
    if path is not None:
        atomic_write_text(Path(path), text)
    return text


def predictions(results_dir: str | os.PathLike, result_file: str, *, worst_first: bool = True) -> pd.DataFrame:
    """Per-example predictions of one run (its sidecar jsonl), worst errors first."""
    d = Path(results_dir)
    r = read(d / result_file)
    if r is None or not r.extra.get("predictions_file"):
        raise ValueError(f"{result_file}: no per-example predictions stored for this run")
    side = d / Path(r.extra["predictions_file"]).name
    if not side.is_file():
        raise ValueError(f"{side.name} is missing")
    rows = [json.loads(line) for line in side.read_text(encoding="utf-8").splitlines() if line.strip()]
    df = pd.DataFrame(rows)
    if "error" in df.columns:
        df = df.sort_values("error", ascending=not worst_first, kind="stable").reset_index(drop=True)
    return df
