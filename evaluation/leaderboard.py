"""The Leaderboard's data: filters and sorting of the results table with tie-aware ranks, its display rounding and
CSV export, the drilldown's runs, the two-run comparison and significance test, and the shareable link of a view.

Pure pandas over :mod:`evaluation.results`, :mod:`evaluation.ranks`, :mod:`evaluation.significance` and
:mod:`evaluation.comparison`; the Leaderboard tab (``bertvariants/ui/leaderboard.py``) validates the raw inputs,
calls these and wires its components (the training view's data is :mod:`evaluation.training_view`). Results are
read from :func:`bertvariants.paths.results_dir` (``$BERTVARIANTS_RESULTS_DIR``, else ``results/``) unless a
``directory`` is given. Bad filters raise ValueError with a readable message. Nothing here imports gradio.

>>> rows = filter_rows(board(), tasks=["stsb"], sources=["paper"])  # the papers' STS-B rows
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Mapping
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import pandas as pd

from bertvariants.io import atomic_write_text
from bertvariants.paths import results_dir

from . import comparison, pareto, ranks, results, significance
from .tasks import BENCHMARKS

SOURCES = ("measured", "paper")
BASE_COLUMNS = ("rank", "model", "variant", "task", "split", "source", "primary_metric", "score", "ci95_low",
                "ci95_high", "seeds", "seed_sd", "seed_ci95_low", "seed_ci95_high", "seed_scores", "rank_note",
                "params_millions", "latency_ms", "pareto", "pareto_size", "pareto_latency", "examples_per_second", "n",
                "timestamp", "citation", "file")
# what the table shows by default: what fits a 1400 px screen (the citation and the rest: "Columns"). A setting
# run with several seeds shows its mean as the score, the bootstrap interval of one run (CI) beside the interval
# over seeds (seed CI) and the spread (seed sd); "Pareto front" names the cost fronts (size, latency) a row is on.
DEFAULT_COLUMNS = ("rank", "model", "task", "primary_metric", "score", "ci95_low", "ci95_high", "seeds", "seed_sd",
                   "seed_ci95_low", "seed_ci95_high", "source", "params_millions", "pareto", "rank_note")
# px per default column on the page: ≈ 1270 px in all, what a 1400 px screen gives the table (a phone scrolls it)
DEFAULT_WIDTHS = (45, 150, 95, 90, 60, 60, 60, 50, 60, 70, 70, 80, 70, 95, 215)
METRIC_COLUMNS = tuple(dict.fromkeys(m for b in BENCHMARKS for m in b.metrics))
ALL_COLUMNS = BASE_COLUMNS + METRIC_COLUMNS
MAX_PARAMS = 1e6  # millions: no filter above this
DISPLAY_DIGITS = 2  # decimals the page shows; the CSV keeps full precision
# short headers for the page (the CSV keeps the column names): narrow columns fit a 1400 px screen
COLUMN_LABELS = {"primary_metric": "metric", "ci95_low": "CI low", "ci95_high": "CI high",
                 "params_millions": "params (M)", "latency_ms": "latency (ms)", "examples_per_second": "examples/s",
                 "rank_note": "rank basis", "seed_sd": "seed sd", "seed_ci95_low": "seed CI low",
                 "seed_ci95_high": "seed CI high", "seed_scores": "score per seed", "pareto": "Pareto front",
                 "pareto_size": "front: size", "pareto_latency": "front: latency"}
RANK_SORT = "rank"  # sorting by rank = by task, then rank within it


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


def table_view(df: pd.DataFrame, columns, sort_by: str, ascending: bool, *,
               directory: str | os.PathLike | None = None) -> pd.DataFrame:
    """The table at full precision (the CSV): tie-aware ranks within each task of the rows shown
    (:func:`evaluation.ranks.tie_aware_ranks`), the rows on each task's score-vs-size and score-vs-latency Pareto
    fronts (:func:`evaluation.pareto.pareto_columns`), one column per metric, the chosen columns (default
    :data:`DEFAULT_COLUMNS`), sorted by ``sort_by`` (missing values last; ``rank`` = by task, then best rank first,
    reversed by ``ascending`` like a score).
    :func:`display_table` rounds it for the page."""
    flat = results.flat(df)
    if len(df):
        flat = pd.concat([flat, ranks.tie_aware_ranks(df, _where(directory)), pareto.pareto_columns(df)], axis=1)
    else:
        flat = flat.assign(rank=pd.Series(dtype="Int64"), rank_note=pd.Series(dtype=str), pareto=pd.Series(dtype=str),
                           pareto_size=pd.Series(dtype=bool), pareto_latency=pd.Series(dtype=bool))
    cols = [c for c in split_list(columns) if c in flat.columns] or [c for c in DEFAULT_COLUMNS if c in flat.columns]
    if sort_by == RANK_SORT:  # best first unless ascending (as for a score: ascending = worst first)
        flat = flat.sort_values(["task", "rank"], ascending=[True, not ascending], kind="stable", na_position="last")
    elif sort_by in flat.columns:
        flat = flat.sort_values(sort_by, ascending=bool(ascending), kind="stable", na_position="last")
    return flat[cols].reset_index(drop=True)


def column_choices() -> list[tuple[str, str]]:
    """(header, column) of every column: the column chooser's and the sort menu's choices."""
    return [(COLUMN_LABELS.get(c, c), c) for c in ALL_COLUMNS]


def display_table(view: pd.DataFrame, digits: int = DISPLAY_DIGITS, *, headers: bool = False) -> pd.DataFrame:
    """``view`` as the page shows it: float columns rounded to ``digits`` decimals (the CSV keeps them all);
    ``headers``: the short :data:`COLUMN_LABELS` instead of the column names."""
    out = view.rename(columns=COLUMN_LABELS) if headers else view.copy()
    for c in out.columns:
        if pd.api.types.is_float_dtype(out[c]):
            out[c] = out[c].astype("float64").round(digits)
        elif out[c].dtype == object:  # mixed columns (a metric some rows lack): round the numbers in them
            out[c] = [round(v, digits) if isinstance(v, float) else v for v in out[c]]
    return out


def export_csv(view: pd.DataFrame) -> str:
    """Write the table's CSV (formula cells escaped) under one export folder, named by its content's hash:
    the same view reuses one file and nothing piles up per request (Gradio's cache cleanup removes old ones)."""
    text = results.to_csv(view)
    folder = Path(tempfile.gettempdir()) / "bertvariants-exports"
    path = folder / f"leaderboard-{hashlib.sha256(text.encode()).hexdigest()[:16]}.csv"
    if not path.exists():
        atomic_write_text(path, text)
    return str(path)


# --------------------------------------------------------------------------------------------
# Shareable links: the filters read from and written back to the page's query string
# --------------------------------------------------------------------------------------------
QUERY_KEYS = ("q", "task", "variant", "source", "min_params", "max_params")  # the filters' parameter names


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


def share_query(search="", tasks=None, variants=None, sources=None, min_params=0, max_params=MAX_PARAMS) -> dict:
    """The query parameters of a view (the inverse of :func:`filters_from_query`; defaults left out).

    >>> share_query("", ["stsb"], [], ["measured"], 0, 200)
    {'task': 'stsb', 'source': 'measured', 'max_params': '200'}
    """
    out: dict[str, str] = {}
    if str(search or "").strip():
        out["q"] = str(search).strip()[:200]
    for key, value in (("task", tasks), ("variant", variants)):
        if split_list(value):
            out[key] = ",".join(split_list(value))
    chosen = split_list(sources)
    if chosen and set(chosen) != set(SOURCES):
        out["source"] = ",".join(chosen)
    lo, hi = (pd.to_numeric(pd.Series([v]), errors="coerce").iloc[0] for v in (min_params, max_params))
    if pd.notna(lo) and lo > 0:
        out["min_params"] = f"{lo:g}"
    if pd.notna(hi) and hi < MAX_PARAMS:
        out["max_params"] = f"{hi:g}"
    return out


def share_url(current: str, *filters) -> str:
    """``current`` (the page's URL) with its filter parameters replaced by those of ``filters`` (the arguments of
    :func:`share_query`); every other parameter (e.g. ``tab=``) and the fragment are kept."""
    parts = urlsplit(current)
    kept = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k not in QUERY_KEYS]
    query = urlencode(kept + list(share_query(*filters).items()), safe=",")
    return urlunsplit(parts._replace(query=query))


# what the page runs when a filter changes: the same parameters as share_query, written with history.replaceState
# (no reload, no new history entry); the arguments are the six filter components' values
SHARE_JS = """
(search, tasks, variants, sources, min_params, max_params) => {
  const KEYS = %(keys)s, SOURCES = %(sources)s, MAX = %(max)s;
  const url = new URL(window.location.href);
  const list = (v) => (Array.isArray(v) ? v : String(v ?? "").split(",")).map((s) => String(s).trim()).filter(Boolean);
  const num = (v) => (v === null || v === undefined || v === "" || !isFinite(Number(v)) ? null : Number(v));
  const src = list(sources), lo = num(min_params), hi = num(max_params);
  const values = {
    q: String(search ?? "").trim().slice(0, 200),
    task: list(tasks).join(","),
    variant: list(variants).join(","),
    source: src.length && !SOURCES.every((s) => src.includes(s)) ? src.join(",") : "",
    min_params: lo !== null && lo > 0 ? String(lo) : "",
    max_params: hi !== null && hi < MAX ? String(hi) : "",
  };
  for (const key of KEYS) {
    if (values[key]) url.searchParams.set(key, values[key]); else url.searchParams.delete(key);
  }
  window.history.replaceState(window.history.state, "", url.pathname + url.search + url.hash);
  return [];
}
""" % {"keys": json.dumps(list(QUERY_KEYS)), "sources": json.dumps(list(SOURCES)), "max": json.dumps(MAX_PARAMS)}


# --------------------------------------------------------------------------------------------
# The drilldown, the two-run comparison, the significance test
# --------------------------------------------------------------------------------------------
DRILLDOWN_FIRST = ("id", "error", "prediction", "reference")  # what fits on screen first; the long input last


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


def drilldown_table(pred: pd.DataFrame, top: int) -> pd.DataFrame:
    """The ``top`` worst examples with the short columns first (id, error, prediction, reference) and the input
    last, so the prediction columns are on screen at any width."""
    first = [c for c in DRILLDOWN_FIRST if c in pred.columns]
    rest = [c for c in pred.columns if c not in first and c != "input"] + (["input"] if "input" in pred else [])
    return pred.head(top)[first + rest].reset_index(drop=True)


def compare_choices(rows: pd.DataFrame, directory: str | os.PathLike | None = None):
    """(choices, default pair) of the two-run view for ``rows``: every measured run, and the first two runs of
    one task that share stored predictions (:func:`evaluation.comparison.default_pair`)."""
    return comparison.run_choices(rows), comparison.default_pair(rows, _where(directory))


def compare(run_a: str, run_b: str, *, resamples: int = significance.RESAMPLES,
            directory: str | os.PathLike | None = None) -> comparison.RunComparison:
    """The two-run view (:func:`evaluation.comparison.compare`) of two result files."""
    return comparison.compare(_where(directory), run_a, run_b, resamples=resamples)


def significance_test(run_a: str, run_b: str, *, resamples: int = significance.RESAMPLES,
                      directory: str | os.PathLike | None = None) -> significance.PairedTest:
    """The paired bootstrap test (:func:`evaluation.significance.significance`) of two result files."""
    return significance.significance(_where(directory), run_a, run_b, resamples=resamples)
