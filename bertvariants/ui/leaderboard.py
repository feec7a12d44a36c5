"""Leaderboard tab: results measured here by ``python -m evaluation`` beside the papers' numbers.

Table with search, filters (task, variant, source, size range), column choice, sorting and CSV download;
Plotly figures (grouped bars per task, score vs parameters, GLUE radar, per-run drilldown of the worst
examples) and the training view (the variant lab's loss curves, e.g. RoBERTa's dynamic vs static masking, with
which run ends best and by how much). Everything renders lazily when the tab is selected; a failing plot shows an error figure.
Shareable links: ``?task=stsb,sst2&source=measured&variant=Sentence-BERT&q=minilm&min_params=0&max_params=200``.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

import gradio as gr
import pandas as pd

from evaluation import dashboard, results
from evaluation.tasks import BENCHMARKS

from ..io import atomic_write_text
from .common import number, safe, text

SOURCES = ("measured", "paper")
BASE_COLUMNS = ("model", "variant", "task", "split", "source", "primary_metric", "score", "ci95_low", "ci95_high",
                "params_millions", "latency_ms", "examples_per_second", "n", "timestamp", "citation", "file")
DEFAULT_COLUMNS = ("model", "variant", "task", "split", "source", "primary_metric", "score", "ci95_low", "ci95_high",
                   "params_millions", "latency_ms", "citation")
METRIC_COLUMNS = tuple(dict.fromkeys(m for b in BENCHMARKS for m in b.metrics))
ALL_COLUMNS = BASE_COLUMNS + METRIC_COLUMNS
MAX_PARAMS = 1e6  # millions: no filter above this


def export_csv(view: pd.DataFrame) -> str:
    """Write the table's CSV (formula cells escaped) under one export folder, named by its content's hash:
    the same view reuses one file and nothing piles up per request (Gradio's cache cleanup removes old ones)."""
    text = results.to_csv(view)
    folder = Path(tempfile.gettempdir()) / "bertvariants-exports"
    path = folder / f"leaderboard-{hashlib.sha256(text.encode()).hexdigest()[:16]}.csv"
    if not path.exists():
        atomic_write_text(path, text)
    return str(path)


def results_dir() -> Path:
    return Path(os.environ.get("BERTVARIANTS_RESULTS_DIR", results.DEFAULT_RESULTS_DIR))


def _split_list(value) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    return [str(v) for v in value]


def filter_rows(df: pd.DataFrame, *, search: str = "", tasks=None, variants=None, sources=SOURCES,
                min_params: float = 0, max_params: float = MAX_PARAMS) -> pd.DataFrame:
    """Rows matching every filter. Rows without a parameter count pass the size filter (it cannot judge them)."""
    out = df
    tasks, variants, sources = _split_list(tasks), _split_list(variants), _split_list(sources)
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
    flat = results.flat(df)
    cols = [c for c in _split_list(columns) if c in flat.columns] or [c for c in DEFAULT_COLUMNS if c in flat.columns]
    if sort_by in flat.columns:
        flat = flat.sort_values(sort_by, ascending=bool(ascending), kind="stable", na_position="last")
    view = flat[cols].copy()
    for c in view.columns:
        if pd.api.types.is_float_dtype(view[c]):
            view[c] = view[c].round(2)
    return view.reset_index(drop=True)


def _inputs(search, tasks, variants, sources, min_params, max_params):
    search = text(search, "Search", max_chars=200, allow_empty=True)
    lo = number(min_params if min_params not in (None, "") else 0, "Minimum size (M params)", lo=0, hi=MAX_PARAMS)
    hi = number(max_params if max_params not in (None, "") else MAX_PARAMS, "Maximum size (M params)", lo=0,
                hi=MAX_PARAMS)
    if lo > hi:
        raise ValueError(f"minimum size {lo:g}M is above the maximum {hi:g}M")
    bad = set(_split_list(sources)) - set(SOURCES)
    if bad:
        raise ValueError(f"unknown source(s) {', '.join(sorted(bad))}; use measured and/or paper")
    return dict(search=search, tasks=tasks, variants=variants, sources=sources or list(SOURCES),
                min_params=lo, max_params=hi)


@safe
def leaderboard_table(search, tasks, variants, sources, min_params, max_params, columns, sort_by, ascending):
    """Public API ``leaderboard``: the filtered, sorted table and a CSV of it (formula cells escaped)."""
    rows = filter_rows(results.leaderboard(results_dir()), **_inputs(search, tasks, variants, sources, min_params,
                                                                        max_params))
    view = table_view(rows, columns, sort_by, ascending)
    return view, export_csv(view)


@safe
def render(search, tasks, variants, sources, min_params, max_params, columns, sort_by, ascending):
    """Everything on the tab: table, CSV, the three figures and the drilldown's run list (on tab select)."""
    board = results.leaderboard(results_dir())
    rows = filter_rows(board, **_inputs(search, tasks, variants, sources, min_params, max_params))
    view = table_view(rows, columns, sort_by, ascending)
    path = export_csv(view)
    one_task = _split_list(tasks)[0] if len(_split_list(tasks)) == 1 else None
    runs = rows[(rows["source"] == "measured") & rows["predictions_file"].notna()] if not rows.empty else rows
    choices = [(f"{r.model} · {r.task} · {r.split} · {r.timestamp}", r.file) for r in runs.itertuples()]
    variant_choices = sorted(v for v in board["variant"].dropna().unique() if v)
    return (view, path,
            dashboard.safe_figure(dashboard.bars_by_task, rows),
            dashboard.safe_figure(dashboard.score_vs_params, rows, one_task),
            dashboard.safe_figure(dashboard.glue_radar, rows),
            gr.update(choices=choices, value=choices[0][1] if choices else None),
            gr.update(choices=variant_choices))


@safe
def drilldown(run_file: str, top: float):
    """Public API ``leaderboard_drilldown``: one run's per-example predictions, worst errors first."""
    k = number(top, "examples shown", lo=1, hi=200, integer=True)  # validated even when no run is picked
    if not run_file:
        return dashboard.error_figure("Pick a measured run (one with stored predictions)."), pd.DataFrame()
    name = Path(str(run_file)).name  # never a path outside the results directory
    pred = results.predictions(results_dir(), name)
    return dashboard.safe_figure(dashboard.drilldown_figure, pred, top=k), pred.head(k)


TRAINING_X = ("step", "seconds")
DEFAULT_TRAINING_RUNS = ("mlm-dynamic", "mlm-static")  # issue #6: RoBERTa's static vs dynamic masking
MAX_TRAINING_RUNS = 12
NO_TRAINING_RUNS = ("No training runs in the results yet: each variant-lab recipe adds one, e.g. "
                    "`python -m bertvariants.train mlm-dynamic` and `python -m bertvariants.train mlm-static`.")


def default_training_runs(runs: pd.DataFrame) -> list[str]:
    """mlm-dynamic + mlm-static when both were trained, else the two newest runs."""
    names = list(runs["run"])
    if all(n in names for n in DEFAULT_TRAINING_RUNS):
        return list(DEFAULT_TRAINING_RUNS)
    return names[:2]


def training_view(selected, metric, x, smooth, *, keep_going: bool = False):
    """(figure, one-line comparison, run choices, metric choices) of the chosen training runs.

    ``keep_going``: when the chosen runs do not log ``metric`` (the UI just changed the runs), fall back to
    ``loss`` instead of refusing (the API refuses: it names the metrics that exist)."""
    runs = results.training_runs(results_dir())
    if runs.empty:
        return (dashboard.error_figure("No training runs yet"), NO_TRAINING_RUNS,
                gr.update(choices=[], value=[]), gr.update(choices=["loss"], value="loss"))
    names = list(dict.fromkeys(_split_list(selected))) or default_training_runs(runs)
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
    weight = number(0 if smooth in (None, "") else smooth, "Smoothing", lo=0, hi=0.99)
    chosen = runs.set_index("run").loc[names].reset_index()  # in the order picked
    curves = results.training_curves(results_dir(), files=chosen["file"])
    logged = sorted(set(curves["metric"]), key=lambda m: (m != "loss", m))
    metric = metric or "loss"
    if metric not in logged:
        if not (keep_going and logged):
            raise ValueError(f"the chosen runs log no curve {str(metric)[:60]!r}; "
                             f"choose one of {', '.join(logged) or '(none: their curves are missing)'}")
        metric = "loss" if "loss" in logged else logged[0]
    fig = dashboard.safe_figure(dashboard.training_curves_figure, curves, metric=metric, x=x, smooth=weight,
                                runs=chosen)
    if len(names) < 2:
        summary = f"Pick a second run to compare with **{names[0]}**."
    else:
        try:
            summary = "**Which wins:** " + dashboard.run_comparison(curves, chosen, metric=metric).text
        except ValueError as exc:
            summary = f"No comparison: {exc}"
        trained_on = sorted(set(chosen["task"]))
        if len(trained_on) > 1:
            summary += f" (different tasks: {', '.join(trained_on)}; their losses are not on one scale)"
    return fig, summary, gr.update(choices=known, value=names), gr.update(choices=logged, value=metric)


@safe
def leaderboard_training(runs, metric, x, smooth):
    """Public API ``leaderboard_training``: the training curves of the chosen runs (default: mlm-dynamic +
    mlm-static, else the two newest) and which run ends best by how much."""
    return training_view(runs, metric, x, smooth)


@safe
def training_render(runs, metric, x, smooth):
    """The training view on tab select / run change: a metric the new runs do not log falls back to loss."""
    return training_view(runs, metric, x, smooth, keep_going=True)


def from_query(request: gr.Request):
    """Filters from the URL's query parameters (a shareable link); unknown values are ignored."""
    q = dict(request.query_params) if request is not None else {}
    task_keys = {b.key for b in BENCHMARKS} | set(results.references()["task"])
    tasks = [t for t in _split_list(q.get("task")) if t in task_keys]
    sources = [s for s in _split_list(q.get("source")) if s in SOURCES] or list(SOURCES)

    def num(key, default):
        try:
            return float(q[key])
        except (KeyError, ValueError):
            return default

    return (q.get("q", "")[:200], tasks, _split_list(q.get("variant")), sources,
            num("min_params", 0), num("max_params", MAX_PARAMS))


def build(spec, tab) -> None:
    task_choices = sorted({b.key for b in BENCHMARKS} | set(results.references()["task"]))
    gr.Markdown("Measured rows come from `python -m evaluation run|score` (JSON files in `results/`, with data and "
                "model hashes); paper rows are the published numbers in `evaluation/references.csv`, each with its "
                "citation. Scores are in points; the primary metric of each task is shown, 95% bootstrap CI for "
                "measured rows. Link to a view with `?task=stsb&source=measured`.")
    with gr.Row():
        search = gr.Textbox(label="Search (model, variant, task, citation)", scale=2)
        tasks = gr.Dropdown(task_choices, multiselect=True, label="Task")
        variants = gr.Dropdown([], multiselect=True, label="Variant", allow_custom_value=True)
        sources = gr.CheckboxGroup(list(SOURCES), value=list(SOURCES), label="Source")
    with gr.Row():
        min_params = gr.Number(0, label="Min size (M params)", minimum=0)
        max_params = gr.Number(MAX_PARAMS, label="Max size (M params)", minimum=0)
        sort_by = gr.Dropdown(list(ALL_COLUMNS), value="score", label="Sort by")
        ascending = gr.Checkbox(False, label="Ascending")
    with gr.Accordion("Columns", open=False):
        columns = gr.CheckboxGroup(list(ALL_COLUMNS), value=list(DEFAULT_COLUMNS), label="Columns shown")
    table = gr.Dataframe(label="Leaderboard", interactive=False, wrap=True)
    csv_file = gr.DownloadButton("Download CSV", value=None)
    bars = gr.Plot(label="Per task")
    with gr.Row():
        scatter = gr.Plot(label="Score vs size")
        radar = gr.Plot(label="GLUE radar")
    with gr.Accordion("Drilldown: per-example predictions of a run, worst errors first", open=False):
        with gr.Row():
            run = gr.Dropdown([], label="Run", scale=3)
            top = gr.Slider(5, 100, value=20, step=1, label="examples")
        drill_plot = gr.Plot()
        drill_table = gr.Dataframe(interactive=False, wrap=True)

    with gr.Accordion("Training runs: the variant lab's curves (python -m bertvariants.train)", open=True):
        with gr.Row():
            train_runs = gr.Dropdown([], value=[], multiselect=True, allow_custom_value=True, label="Runs", scale=3)
            train_metric = gr.Dropdown(["loss"], value="loss", allow_custom_value=True, label="Curve")
            train_x = gr.Radio(list(TRAINING_X), value="step", label="x axis")
            train_smooth = gr.Slider(0, 0.99, value=0, step=0.01, label="Smoothing (EMA weight)")
        train_summary = gr.Markdown()
        train_plot = gr.Plot(label="Training curves")

    filters = [search, tasks, variants, sources, min_params, max_params, columns, sort_by, ascending]
    everything = [table, csv_file, bars, scatter, radar, run, variants]
    tab.select(render, filters, everything, api_visibility="private")
    gr.on([search.submit, tasks.input, variants.input, sources.input, min_params.submit, max_params.submit,
           columns.input, sort_by.input, ascending.input], leaderboard_table, filters, [table, csv_file],
          api_name="leaderboard")
    gr.on([tasks.input, variants.input, sources.input, min_params.submit, max_params.submit, search.submit],
          render, filters, everything, api_visibility="private")
    gr.on([run.change, top.release], drilldown, [run, top], [drill_plot, drill_table], api_name="leaderboard_drilldown")
    train_in = [train_runs, train_metric, train_x, train_smooth]
    train_out = [train_plot, train_summary, train_runs, train_metric]
    tab.select(training_render, train_in, train_out, api_visibility="private")
    train_runs.input(training_render, train_in, train_out, api_visibility="private")
    gr.on([train_metric.input, train_x.input, train_smooth.release], leaderboard_training, train_in, train_out,
          api_name="leaderboard_training")
    root = gr.context.Context.root_block
    if root is not None:  # shareable links: the URL's query parameters preset the filters
        root.load(from_query, None, [search, tasks, variants, sources, min_params, max_params],
                  api_visibility="private")
