"""Leaderboard tab: results measured here by ``python -m evaluation`` beside the papers' numbers.

Table with search, filters (task, variant, source, size range), column choice, sorting and CSV download;
Plotly figures (grouped bars per task, score vs parameters, GLUE radar, per-run drilldown of the worst
examples) and the training view (the variant lab's loss curves, e.g. RoBERTa's dynamic vs static masking, with
which run ends best and by how much). Everything renders lazily when the tab is selected; a failing plot shows an
error figure. Shareable links: ``?task=stsb,sst2&source=measured&variant=Sentence-BERT&q=minilm&max_params=200``.

The data (filters, table view, CSV, drilldown runs, training view) is :mod:`evaluation.leaderboard`; this module
validates raw inputs, builds the components and wires the events.
"""

from __future__ import annotations

import gradio as gr
import pandas as pd

from evaluation import dashboard
from evaluation import leaderboard as lb

from .common import number, safe, text
from .guard import root_blocks


def _filters(search, tasks, variants, sources, min_params, max_params) -> dict:
    """The filter inputs as sent by the page or the API, validated (ValueError) for lb.filter_rows."""
    search = text(search, "Search", max_chars=200, allow_empty=True)
    lo = number(min_params if min_params not in (None, "") else 0, "Minimum size (M params)", lo=0,
                hi=lb.MAX_PARAMS)
    hi = number(max_params if max_params not in (None, "") else lb.MAX_PARAMS, "Maximum size (M params)", lo=0,
                hi=lb.MAX_PARAMS)
    return lb.check_filters(search=search, tasks=tasks, variants=variants, sources=sources, min_params=lo,
                            max_params=hi)


@safe
def leaderboard_table(search, tasks, variants, sources, min_params, max_params, columns, sort_by, ascending):
    """Public API ``leaderboard``: the filtered, sorted table and a CSV of it (formula cells escaped)."""
    rows = lb.filter_rows(lb.board(), **_filters(search, tasks, variants, sources, min_params, max_params))
    view = lb.table_view(rows, columns, sort_by, ascending)
    return view, lb.export_csv(view)


@safe
def render(search, tasks, variants, sources, min_params, max_params, columns, sort_by, ascending):
    """Everything on the tab: table, CSV, the three figures and the drilldown's run list (on tab select)."""
    board = lb.board()
    rows = lb.filter_rows(board, **_filters(search, tasks, variants, sources, min_params, max_params))
    view = lb.table_view(rows, columns, sort_by, ascending)
    picked = lb.split_list(tasks)
    one_task = picked[0] if len(picked) == 1 else None
    choices = lb.drilldown_runs(rows)
    return (view, lb.export_csv(view),
            dashboard.safe_figure(dashboard.bars_by_task, rows),
            dashboard.safe_figure(dashboard.score_vs_params, rows, one_task),
            dashboard.safe_figure(dashboard.glue_radar, rows),
            gr.update(choices=choices, value=choices[0][1] if choices else None),
            gr.update(choices=lb.variant_choices(board)))


@safe
def drilldown(run_file: str, top: float):
    """Public API ``leaderboard_drilldown``: one run's per-example predictions, worst errors first."""
    k = number(top, "examples shown", lo=1, hi=200, integer=True)  # validated even when no run is picked
    if not run_file:
        return dashboard.error_figure("Pick a measured run (one with stored predictions)."), pd.DataFrame()
    pred = lb.run_predictions(run_file)
    return dashboard.safe_figure(dashboard.drilldown_figure, pred, top=k), pred.head(k)


def training_view(runs, metric, x, smooth, *, keep_going: bool = False):
    """(figure, comparison, run choices, curve choices) of :func:`evaluation.leaderboard.training_view`."""
    weight = number(0 if smooth in (None, "") else smooth, "Smoothing", lo=0, hi=0.99)
    view = lb.training_view(runs, metric, x, weight, keep_going=keep_going)
    return (view.figure, view.summary, gr.update(choices=view.runs, value=view.chosen),
            gr.update(choices=view.metrics, value=view.metric))


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
    return lb.filters_from_query(dict(request.query_params) if request is not None else {})


def build(spec, tab) -> None:
    gr.Markdown("Measured rows come from `python -m evaluation run|score` (JSON files in `results/`, with data and "
                "model hashes); paper rows are the published numbers in `evaluation/references.csv`, each with its "
                "citation. Scores are in points; the primary metric of each task is shown, 95% bootstrap CI for "
                "measured rows. Link to a view with `?task=stsb&source=measured`.")
    with gr.Row():
        search = gr.Textbox(label="Search (model, variant, task, citation)", scale=2)
        tasks = gr.Dropdown(lb.task_choices(), multiselect=True, label="Task")
        variants = gr.Dropdown([], multiselect=True, label="Variant", allow_custom_value=True)
        sources = gr.CheckboxGroup(list(lb.SOURCES), value=list(lb.SOURCES), label="Source")
    with gr.Row():
        min_params = gr.Number(0, label="Min size (M params)", minimum=0)
        max_params = gr.Number(lb.MAX_PARAMS, label="Max size (M params)", minimum=0)
        sort_by = gr.Dropdown(list(lb.ALL_COLUMNS), value="score", label="Sort by")
        ascending = gr.Checkbox(False, label="Ascending")
    with gr.Accordion("Columns", open=False):
        columns = gr.CheckboxGroup(list(lb.ALL_COLUMNS), value=list(lb.DEFAULT_COLUMNS), label="Columns shown")
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
            train_x = gr.Radio(list(lb.TRAINING_X), value="step", label="x axis")
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
    # shareable links: the URL's query parameters preset the filters when the page loads
    root_blocks().load(from_query, None, [search, tasks, variants, sources, min_params, max_params],
                       api_visibility="private")
