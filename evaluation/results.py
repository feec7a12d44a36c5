"""The results store: one JSON file per run, merged into pandas DataFrames beside the papers' numbers.

- :func:`write_result` writes atomically (a temporary file in the same directory, then ``os.replace``), so a
  reader never sees half a file; per-example predictions go to a sidecar ``<name>.predictions.jsonl``.
- :func:`load_runs` reads every run (the history); corrupt or truncated files are skipped with a warning
  that names the file. :func:`latest` keeps the newest run per (model, task, split).
- :func:`references` reads ``evaluation/references.csv`` (published numbers, with citations).
- :func:`leaderboard` = latest measured rows + paper rows, one row per (model, task, split, source).
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

from bertvariants.io import atomic_write_text, read_json, safe_dataframe

from . import tasks


REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_RESULTS_DIR = REPO_ROOT / "results"
REFERENCES_CSV = Path(__file__).resolve().parent / "references.csv"
REQUIRED = ("task", "model", "split", "metrics", "primary_metric", "timestamp")
COLUMNS = ("model", "variant", "task", "split", "source", "primary_metric", "score", "ci95_low", "ci95_high",
           "params_millions", "latency_ms", "examples_per_second", "n", "metrics", "timestamp", "citation", "file")


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-")[:80] or "model"


def result_name(result: dict) -> str:
    stamp = re.sub(r"[^0-9]", "", result.get("timestamp", ""))[:14]
    return f"{_slug(result['task'])}__{_slug(result['model'])}__{_slug(result['split'])}__{stamp}"


def write_result(result: dict, out_dir: str | os.PathLike = DEFAULT_RESULTS_DIR,
                 records: Iterable[dict] | None = None) -> Path:
    """Write one run as ``<task>__<model>__<split>__<timestamp>.json`` (+ predictions sidecar); returns the path."""
    from bertvariants.io import dir_lock

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
                      f"({', '.join(k for k in REQUIRED if not isinstance(data, dict) or k not in data)})", stacklevel=2)
        return None
    return data


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
        r = read_result(f)
        if r is None:
            continue
        ci = r.get("ci95") or {}
        primary = r["primary_metric"]
        params = _num(r.get("params"))
        rows.append({
            "model": str(r["model"]), "variant": r.get("variant") or "", "task": str(r["task"]),
            "split": str(r["split"]), "source": "measured", "primary_metric": primary,
            "score": _num(r["metrics"].get(primary)), "ci95_low": _num(ci.get("low")), "ci95_high": _num(ci.get("high")),
            "params_millions": round(params / 1e6, 2) if params else (0.0 if params == 0 else None),
            "latency_ms": _num(r.get("latency_ms")), "examples_per_second": _num(r.get("examples_per_second")),
            "n": r.get("n"), "metrics": {k: _num(v) for k, v in r["metrics"].items()},
            "timestamp": str(r["timestamp"]), "citation": f"measured here ({r.get('device', '?')}, seed {r.get('seed')})",
            "file": f.name, "predictions_file": r.get("predictions_file"),
        })
    df = pd.DataFrame(rows, columns=list(COLUMNS) + ["predictions_file"])
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
                     "file": "", "predictions_file": None})
    return pd.DataFrame(rows, columns=list(COLUMNS) + ["predictions_file"])


def leaderboard(results_dir: str | os.PathLike = DEFAULT_RESULTS_DIR, *, include_paper: bool = True) -> pd.DataFrame:
    """Latest measured rows + the papers' rows (source = measured | paper), best score first within a task."""
    parts = [latest(load_runs(results_dir))]
    if include_paper and REFERENCES_CSV.is_file():
        parts.append(references())
    parts = [p for p in parts if not p.empty]
    if not parts:
        return pd.DataFrame(columns=list(COLUMNS) + ["predictions_file"])
    df = pd.concat(parts, ignore_index=True)
    return df.sort_values(["task", "score"], ascending=[True, False], kind="stable", na_position="last").reset_index(drop=True)


def flat(df: pd.DataFrame) -> pd.DataFrame:
    """One column per metric instead of the metrics dict (the table users see); a metric named like a column gets " (metric)"."""
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
    r = read_result(d / result_file)
    if r is None or not r.get("predictions_file"):
        raise ValueError(f"{result_file}: no per-example predictions stored for this run")
    side = d / Path(r["predictions_file"]).name
    if not side.is_file():
        raise ValueError(f"{side.name} is missing")
    rows = [json.loads(line) for line in side.read_text(encoding="utf-8").splitlines() if line.strip()]
    df = pd.DataFrame(rows)
    if "error" in df.columns:
        df = df.sort_values("error", ascending=not worst_first, kind="stable").reset_index(drop=True)
    return df
