"""The Leaderboard's data: filters and sorting of the results table, its CSV export, the drilldown's runs,
the filters of a shareable link, and the training view (which runs, which curve, which run ends best).

Pure pandas over :mod:`evaluation.results` and :mod:`evaluation.dashboard`; the Leaderboard tab
(``bertvariants/ui/leaderboard.py``) validates the raw inputs, calls these and wires its components. Results are
read from :func:`bertvariants.paths.results_dir` (``$BERTVARIANTS_RESULTS_DIR``, else ``results/``) unless a
``directory`` is given. Bad filters raise ValueError with a readable message. Nothing here imports gradio.

>>> rows = filter_rows(board(), tasks=["stsb"], sources=["paper"])  # the papers' STS-B rows
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

import pandas as pd
import plotly.graph_objects as go

from bertvariants.io import atomic_write_text
from bertvariants.paths import results_dir

from . import dashboard, results
from .tasks import BENCHMARKS

SOURCES = ("measured", "paper")
BASE_COLUMNS = ("model", "variant", "task", "split", "source", "primary_metric", "score", "ci95_low", "ci95_high",
                "params_millions", "latency_ms", "examples_per_second", "n", "timestamp", "citation", "file")
DEFAULT_COLUMNS = ("model", "variant", "task", "split", "source", "primary_metric", "score", "ci95_low", "ci95_high",
                   "params_millions", "latency_ms", "citation")
METRIC_COLUMNS = tuple(dict.fromkeys(m for b in BENCHMARKS for m in b.metrics))
ALL_COLUMNS = BASE_COLUMNS + METRIC_COLUMNS
MAX_PARAMS = 1e6  # millions: no filter above this


def _where(directory: str | os.PathLike | None) -> Path:
    return Path(directory) if directory is not None else results_dir()


def split_list(value) -> list[str]:
    """A multiselect's value as a list: None → [], "a, b" → ["a", "b"], any iterable → its items as text.

    >>> split_list("stsb, sst2")
    ['stsb', 'sst2']
    """
    if value is None:
        return []
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    return [str(v) for v in value]


# --------------------------------------------------------------------------------------------
# The table
# --------------------------------------------------------------------------------------------
def board(directory: str | os.PathLike | None = None) -> pd.DataFrame:
    """Latest measured rows + the papers' rows (:func:`evaluation.results.leaderboard`)."""
    return results.leaderboard(_where(directory))


def task_choices() -> list[str]:
    """Every task a row can have: the benchmark table's and the papers' (evaluation/references.csv)."""
    return sorted({b.key for b in BENCHMARKS} | set(results.references()["task"]))


def variant_choices(rows: pd.DataFrame) -> list[str]:
    return sorted(v for v in rows["variant"].dropna().unique() if v)


def check_filters(*, search: str = "", tasks=None, variants=None, sources=None, min_params: float = 0,
                  max_params: float = MAX_PARAMS) -> dict:
    """The keyword arguments of :func:`filter_rows`; ValueError for an unknown source or a size range upside down.
    No source means both."""
    if min_params > max_params:
        raise ValueError(f"minimum size {min_params:g}M is above the maximum {max_params:g}M")
    bad = set(split_list(sources)) - set(SOURCES)
    if bad:
        raise ValueError(f"unknown source(s) {', '.join(sorted(bad))}; use measured and/or paper")
    return dict(search=search, tasks=split_list(tasks), variants=split_list(variants),
                sources=split_list(sources) or list(SOURCES), min_params=min_params, max_params=max_params)


def filter_rows(df: pd.DataFrame, *, search: str = "", tasks=None, variants=None, sources=SOURCES,
                min_params: float = 0, max_params: float = MAX_PARAMS) -> pd.DataFrame:
    """Rows matching every filter. Rows without a parameter count pass the size filter (it cannot judge them)."""
    out = df
    tasks, variants, sources = split_list(tasks), split_list(variants), split_list(sources)
    if tasks:
        out = out[out["task"].isin(tasks)]
    if variants:
        out = out[out["variant"].isin(variants)]
    out = out[out["source"].isin(sources)]
    params = pd.to_numeric(out["params_millions"], errors="coerce")
    out = out[params.isna() | ((params >= min_params) & (params <= max_params))]
    if search and search.strip() and not out.empty:  # agg(axis=1) of no rows is a DataFrame, not a Series
        needle = search.strip().lower()
        hay = out[["model", "variant", "task", "citation"]].astype(str).agg(" ".join, axis=1).str.lower()
        out = out[hay.str.contains(needle, regex=False)]
    return out


def table_view(df: pd.DataFrame, columns, sort_by: str, ascending: bool) -> pd.DataFrame:
    """The table users see: one column per metric, the chosen columns (default :data:`DEFAULT_COLUMNS`),
    sorted by ``sort_by`` (missing values last), floats rounded to 2 decimals."""
    flat = results.flat(df)
    cols = [c for c in split_list(columns) if c in flat.columns] or [c for c in DEFAULT_COLUMNS if c in flat.columns]
    if sort_by in flat.columns:
        flat = flat.sort_values(sort_by, ascending=bool(ascending), kind="stable", na_position="last")
    view = flat[cols].copy()
    for c in view.columns:
        if pd.api.types.is_float_dtype(view[c]):
            view[c] = view[c].round(2)
    return view.reset_index(drop=True)


def export_csv(view: pd.DataFrame) -> str:
    """Write the table's CSV (formula cells escaped) under one export folder, named by its content's hash:
    the same view reuses one file and nothing piles up per request (Gradio's cache cleanup removes old ones)."""
    text = results.to_csv(view)
    folder = Path(tempfile.gettempdir()) / "bertvariants-exports"
    path = folder / f"leaderboard-{hashlib.sha256(text.encode()).hexdigest()[:16]}.csv"
    if not path.exists():
        atomic_write_text(path, text)
    return str(path)


def filters_from_query(query: Mapping[str, str]) -> tuple:
    """(search, tasks, variants, sources, min_params, max_params) from a shareable link's query parameters,
    e.g. ``?task=stsb,sst2&source=measured&variant=Sentence-BERT&q=minilm&max_params=200``; unknown values are
    ignored."""
    known_tasks = set(task_choices())
    tasks = [t for t in split_list(query.get("task")) if t in known_tasks]
    sources = [s for s in split_list(query.get("source")) if s in SOURCES] or list(SOURCES)

    def num(key, default):
        try:
            return float(query[key])
        except (KeyError, ValueError):
            return default

    return (query.get("q", "")[:200], tasks, split_list(query.get("variant")), sources,
            num("min_params", 0), num("max_params", MAX_PARAMS))


# --------------------------------------------------------------------------------------------
# The drilldown
# --------------------------------------------------------------------------------------------
def drilldown_runs(rows: pd.DataFrame) -> list[tuple[str, str]]:
    """(label, result file) of each measured run in ``rows`` that stored per-example predictions."""
    if rows.empty:
        return []
    runs = rows[(rows["source"] == "measured") & rows["predictions_file"].notna()]
    return [(f"{r.model} · {r.task} · {r.split} · {r.timestamp}", r.file) for r in runs.itertuples()]


def run_predictions(run_file: str, directory: str | os.PathLike | None = None) -> pd.DataFrame:
    """One run's per-example predictions, worst errors first. Only the file's name counts: never a path
    outside the results directory."""
    return results.predictions(_where(directory), Path(str(run_file)).name)


# --------------------------------------------------------------------------------------------
# The training view (issue #6)
# --------------------------------------------------------------------------------------------
TRAINING_X = ("step", "seconds")
DEFAULT_TRAINING_RUNS = ("mlm-dynamic", "mlm-static")  # issue #6: RoBERTa's static vs dynamic masking
MAX_TRAINING_RUNS = 12
NO_TRAINING_RUNS = ("No training runs in the results yet: each variant-lab recipe adds one, e.g. "
                    "`python -m bertvariants.train mlm-dynamic` and `python -m bertvariants.train mlm-static`.")


@dataclass(frozen=True)
class TrainingView:
    """What the training view shows: the figure, a one-line comparison, and the choices it offers."""

    figure: go.Figure
    summary: str
    runs: list[str]  # every trained run (the run choices)
    chosen: list[str]  # the runs shown, in the order picked
    metrics: list[str]  # the curves the chosen runs log (the curve choices)
    metric: str  # the curve shown


def default_training_runs(runs: pd.DataFrame) -> list[str]:
    """mlm-dynamic + mlm-static when both were trained, else the two newest runs."""
    names = list(runs["run"])
    if all(n in names for n in DEFAULT_TRAINING_RUNS):
        return list(DEFAULT_TRAINING_RUNS)
    return names[:2]


def training_view(selected, metric: str | None, x: str, smooth: float, *, keep_going: bool = False,
                  directory: str | os.PathLike | None = None) -> TrainingView:
    """The curves of the chosen training runs (default :func:`default_training_runs`) and which ends best.

    ``keep_going``: when the chosen runs do not log ``metric`` (the UI just changed the runs), fall back to
    ``loss`` instead of refusing (the API refuses: it names the metrics that exist)."""
    where = _where(directory)
    runs = results.training_runs(where)
    if runs.empty:
        return TrainingView(dashboard.error_figure("No training runs yet"), NO_TRAINING_RUNS, [], [], ["loss"], "loss")
    names = list(dict.fromkeys(split_list(selected))) or default_training_runs(runs)
    known = list(runs["run"])
    unknown = [n for n in names if n not in known]
    if unknown:
        shown = ", ".join(known[:MAX_TRAINING_RUNS]) + (" …" if len(known) > MAX_TRAINING_RUNS else "")
        raise ValueError(f"unknown training run(s) {', '.join(repr(n[:60]) for n in unknown[:3])}; "
                         f"trained runs: {shown}")
    if len(names) > MAX_TRAINING_RUNS:
        raise ValueError(f"choose at most {MAX_TRAINING_RUNS} runs, got {len(names)}")
    if x not in TRAINING_X:
        raise ValueError(f"x axis must be step or seconds, got {x!r}")
    chosen = runs.set_index("run").loc[names].reset_index()  # in the order picked
    curves = results.training_curves(where, files=chosen["file"])
    logged = sorted(set(curves["metric"]), key=lambda m: (m != "loss", m))
    metric = metric or "loss"
    if metric not in logged:
        if not (keep_going and logged):
            raise ValueError(f"the chosen runs log no curve {str(metric)[:60]!r}; "
                             f"choose one of {', '.join(logged) or '(none: their curves are missing)'}")
        metric = "loss" if "loss" in logged else logged[0]
    fig = dashboard.safe_figure(dashboard.training_curves_figure, curves, metric=metric, x=x, smooth=smooth,
                                runs=chosen)
    return TrainingView(fig, _comparison(names, curves, chosen, metric), known, names, logged, metric)


def _comparison(names: list[str], curves: pd.DataFrame, chosen: pd.DataFrame, metric: str) -> str:
    if len(names) < 2:
        return f"Pick a second run to compare with **{names[0]}**."
    try:
        summary = "**Which wins:** " + dashboard.run_comparison(curves, chosen, metric=metric).text
    except ValueError as exc:
        summary = f"No comparison: {exc}"
    trained_on = sorted(set(chosen["task"]))
    if len(trained_on) > 1:
        summary += f" (different tasks: {', '.join(trained_on)}; their losses are not on one scale)"
    return summary
