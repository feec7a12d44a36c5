"""Leaderboard tab: results measured here by ``python -m evaluation`` beside the papers' numbers.

The first screen answers "which variant is best at what": one matrix of variant families × tasks, each cell the
family's best score with its tie-aware rank, coloured by rank (:mod:`evaluation.summary`); one task in detail below
it (a selector, not a panel per task), with a legend saying what every run name is (:mod:`evaluation.run_notes`).
Filters (search, task, variant, source, size range) narrow both. The detail: a table with column choice, sorting,
tie-aware ranks, the mean, spread and 95% interval over seeds of a setting run with several seeds, the rows on the
task's Pareto fronts, copy and CSV download (full precision; the page rounds); Plotly figures (the task's bars,
score vs parameters or latency with the Pareto front outlined), the GLUE radar, per-run drilldown of the worst
examples, in one colour per model; a two-run comparison (paired significance test,
settings side by side, the examples they disagree on) and the training view (the variant lab's loss curves, e.g.
RoBERTa's dynamic vs static masking, which run wins on a held-out measure, and why). Everything renders lazily
when the tab is selected; a failing plot shows an error figure. The filters round-trip through the page's URL:
``?task=stsb,sst2&source=measured&variant=Sentence-BERT&q=minilm&max_params=200``.

The data is :mod:`evaluation.leaderboard` (+ :mod:`evaluation.training_view`); this module validates raw inputs,
builds the components and wires the events.
"""

from __future__ import annotations

import gradio as gr
import pandas as pd

from evaluation import dashboard, palette, results, run_notes, summary
from evaluation import leaderboard as lb
from evaluation import training_view as tv

from ..checks import number, text
from ..paths import results_dir
from .common import explanation, safe
from .guard import root_blocks

TABLE = dict(interactive=False, wrap=True, buttons=["copy", "fullscreen"], max_height=520)


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
    """The leaderboard table: measured results and papers' numbers, filtered, sorted, with tie-aware ranks.

    Rows of one task that a paired bootstrap test (or, without stored predictions, 95% CI overlap) cannot tell
    apart from the best-ranked row above them share its rank; `rank_note` says which rule was used.

    Args:
        search: text matched against model, variant, task and citation (case-insensitive; empty = every row).
        tasks: task keys to keep, e.g. ["stsb", "sst2"] (empty = all).
        variants: variant families to keep, e.g. ["RoBERTa"] (empty = all).
        sources: "measured" and/or "paper" (empty = both).
        min_params: smallest model size kept, millions of parameters.
        max_params: largest model size kept, millions of parameters.
        columns: columns to return (empty = the default set).
        sort_by: a column name, or "rank" (by task, then best rank first).
        ascending: sort ascending (for "rank": worst first).

    Returns:
        The table (numbers rounded to 2 decimals, short headers) and a CSV file of it at full precision.
    """
    rows = lb.filter_rows(lb.board(), **_filters(search, tasks, variants, sources, min_params, max_params))
    view = lb.table_view(rows, columns, sort_by, ascending)
    return lb.display_table(view, headers=True), lb.export_csv(view)


def _detail_task(rows, detail_task) -> str | None:
    """The task the detail shows: the one picked when the filtered rows have it, else :func:`summary.default_task`."""
    tasks = set(rows["task"]) if len(rows) else set()
    return detail_task if detail_task in tasks else summary.default_task(rows)


def _one_task(rows, task):
    return rows[rows["task"] == task] if task is not None else rows


def task_menu(rows, task):
    """The detail selector: every task of the filtered rows (the matrix's columns, in its order), ``task`` chosen."""
    return gr.update(choices=[(summary.task_label(t, rows), t) for t in summary.task_order(rows["task"])],
                     value=task)


@safe
def detail(search, tasks, variants, sources, min_params, max_params, columns, sort_by, ascending, detail_task,
           bar_view=dashboard.BAR_VIEWS[0], scatter_x="size"):
    """One task in detail: its table (tie-aware ranks), CSV, bars and score-vs-cost scatter, and what its runs are."""
    board = lb.board()
    colors = palette.color_map(board)  # one colour per model, from the whole board: stable under filtering
    rows = lb.filter_rows(board, **_filters(search, tasks, variants, sources, min_params, max_params))
    task = _detail_task(rows, detail_task)
    one = _one_task(rows, task)
    view = lb.table_view(one, columns, sort_by, ascending)
    notes = run_notes.notes_markdown(one, results_dir(), title=f"**What the runs of {task} are** (from their "
                                     "result files):") if task else ""
    return (lb.display_table(view, headers=True), lb.export_csv(view),
            dashboard.safe_figure(dashboard.bars_by_task, one, view=bar_view, colors=colors),
            dashboard.safe_figure(dashboard.score_vs_params, one, task, colors=colors, x=scatter_x), notes)


@safe
def render(search, tasks, variants, sources, min_params, max_params, columns, sort_by, ascending,
           bar_view=dashboard.BAR_VIEWS[0], scatter_x="size", detail_task=None):
    """Everything on the tab: the detail's table, CSV and figures (:func:`detail`), the GLUE radar, the drilldown's
    and the comparison's run lists, then the summary matrix, the detail's task menu and the run-name legend."""
    board = lb.board()
    rows = lb.filter_rows(board, **_filters(search, tasks, variants, sources, min_params, max_params))
    task = _detail_task(rows, detail_task)
    table, csv, bar_fig, scatter_fig, notes = detail(search, tasks, variants, sources, min_params, max_params,
                                                     columns, sort_by, ascending, task, bar_view, scatter_x)
    choices = lb.drilldown_runs(rows)
    runs, pair = lb.compare_choices(rows)
    matrix = summary.matrix_html(summary.summary_matrix(rows, results_dir()), run_notes.run_notes(rows))
    return (table, csv, bar_fig, scatter_fig,
            dashboard.safe_figure(dashboard.glue_radar, rows, colors=palette.color_map(board)),
            gr.update(choices=choices, value=choices[0][1] if choices else None),
            gr.update(choices=lb.variant_choices(board)),
            gr.update(choices=runs, value=pair[0] if pair else None),
            gr.update(choices=runs, value=pair[1] if pair else None),
            matrix, task_menu(rows, task), notes)


@safe
def bars(search, tasks, variants, sources, min_params, max_params, bar_view, detail_task=None):
    """The bar chart alone (its view changed), of the detail's task."""
    board = lb.board()
    rows = lb.filter_rows(board, **_filters(search, tasks, variants, sources, min_params, max_params))
    return dashboard.safe_figure(dashboard.bars_by_task, _one_task(rows, _detail_task(rows, detail_task)),
                                 view=bar_view, colors=palette.color_map(board))


@safe
def scatter(search, tasks, variants, sources, min_params, max_params, scatter_x, detail_task=None):
    """The score-vs-cost scatter alone (its x axis changed: model size or latency), Pareto front outlined; the
    detail's task, else the one task filtered, else every task."""
    if scatter_x not in dashboard.SCATTER_X:
        raise ValueError(f"x axis: choose one of {', '.join(dashboard.SCATTER_X)}")
    board = lb.board()
    rows = lb.filter_rows(board, **_filters(search, tasks, variants, sources, min_params, max_params))
    picked = lb.split_list(tasks)
    task = detail_task if detail_task in set(rows["task"]) else (picked[0] if len(picked) == 1 else None)
    return dashboard.safe_figure(dashboard.score_vs_params, _one_task(rows, task), task,
                                 colors=palette.color_map(board), x=scatter_x)


@safe
def drilldown(run_file: str, top: float):
    """One run's per-example predictions, worst errors first.

    Args:
        run_file: the run's result file name in the results directory (the leaderboard CSV's `file` column).
        top: how many of the worst examples to return (1–200).

    Returns:
        A bar chart of the worst examples' errors and their table (id, error, prediction, reference, ..., input).
    """
    k = number(top, "examples shown", lo=1, hi=200, integer=True)  # validated even when no run is picked
    if not run_file:
        return dashboard.error_figure("Pick a measured run (one with stored predictions)."), pd.DataFrame()
    pred = lb.run_predictions(run_file)
    return dashboard.safe_figure(dashboard.drilldown_figure, pred, top=k), lb.display_table(lb.drilldown_table(pred, k))


def _two_runs(run_a, run_b, resamples) -> tuple[str, str, int]:
    k = number(resamples, "Resamples", lo=100, hi=5000, integer=True)
    a, b = (text(r, name, max_chars=300, allow_empty=True).strip() for r, name in ((run_a, "Run A"), (run_b, "Run B")))
    if not (a and b):
        _, pair = lb.compare_choices(lb.board())
        if pair is None:
            raise ValueError("pick two runs: no two measured runs of one task are in the results")
        a, b = a or pair[0], b or (pair[1] if pair[1] != a else pair[0])
    return a, b, k


@safe
def leaderboard_significance(run_a, run_b, resamples):
    """Paired bootstrap significance test between two evaluation runs, on the examples both of them scored.

    Joins the runs' stored per-example predictions by example id, recomputes the task's primary metric (accuracy,
    F1, Spearman, AUROC, ROUGE, SQuAD F1, held-out MLM loss ...) on `resamples` resamples of the shared examples,
    and reports the difference A − B, its 95% percentile interval and a two-sided p-value, p = (1 + #{|δ* − δ| ≥
    |δ|}) / (1 + B) (Berg-Kirkpatrick et al. 2012 §2.2; Efron & Tibshirani 1993 §16.4). Unknown runs, runs of
    different tasks or splits, runs without stored predictions or without shared examples give an error message.

    Args:
        run_a: result file name of run A in the results directory, e.g. "sst2__minilm__dev__20261125140457.json"
            (the leaderboard CSV's `file` column). Empty: the default pair (first task with two such runs).
        run_b: result file name of run B: same task and split as run A.
        resamples: bootstrap resamples, 100–5000 (1000 by default).

    Returns:
        JSON: run_a, run_b, model_a, model_b, task, split, metric, n (shared examples), score_a, score_b,
        difference, ci_low, ci_high, p_value, significant (p < 0.05), better, a_better_share, text.
    """
    a, b, k = _two_runs(run_a, run_b, resamples)
    return lb.significance_test(a, b, resamples=k).as_dict()


@safe
def leaderboard_compare(run_a, run_b, resamples):
    """Two evaluation runs side by side: the paired significance test, settings and versions, disagreements.

    Args:
        run_a: result file name of run A in the results directory (the leaderboard CSV's `file` column).
            Empty: the default pair.
        run_b: result file name of run B: same task and split as run A.
        resamples: bootstrap resamples for the paired test, 100–5000.

    Returns:
        A summary (markdown: the test's sentence, or the 95% intervals when the runs stored no shared
        predictions), the test as JSON, the settings table (field | A | B | differs) and the examples the two
        runs predict differently (largest error gap first).
    """
    a, b, k = _two_runs(run_a, run_b, resamples)
    view = lb.compare(a, b, resamples=k)
    found = view.test.as_dict() if view.test is not None else {"paired_test": None, "why": view.summary}
    return view.summary, found, view.settings, lb.display_table(view.disagreements, 4)


@safe
def compare_render(run_a, run_b, resamples):
    """The comparison when the tab opens: a hint instead of an error when no two runs can be compared."""
    if not (run_a and run_b):
        return "_Pick two runs of one task to compare them._", None, pd.DataFrame(), pd.DataFrame()
    return leaderboard_compare(run_a, run_b, resamples)


def training_view(runs, metric, x, smooth, *, keep_going: bool = False):
    """(figure, comparison, run choices, curve choices) of :func:`evaluation.training_view.training_view`."""
    weight = number(0 if smooth in (None, "") else smooth, "Smoothing", lo=0, hi=0.99)
    view = tv.training_view(runs, metric, x, weight, keep_going=keep_going)
    return (view.figure, view.summary, gr.update(choices=view.runs, value=view.chosen),
            gr.update(choices=view.metrics, value=view.metric))


@safe
def leaderboard_training(runs, metric, x, smooth):
    """The variant lab's training curves of the chosen runs, and which run wins on a held-out measure.

    Runs are only compared on the same held-out measure (same task, split and primary metric), never across
    tasks and never on a training-curve value such as the learning rate; a static / dynamic masking pair also
    gets the sentence explaining RoBERTa §4.1 from its records.

    Args:
        runs: training run names (default: mlm-dynamic + mlm-static, else the two newest runs).
        metric: the logged curve to draw, e.g. "loss" or "lr".
        x: "step" or "seconds" (wall time).
        smooth: EMA smoothing weight in [0, 0.99].

    Returns:
        The curves figure, the comparison (markdown), and the run and curve choices.
    """
    return training_view(runs, metric, x, smooth)


@safe
def training_render(runs, metric, x, smooth):
    """The training view on tab select / run change: a metric the new runs do not log falls back to loss."""
    return training_view(runs, metric, x, smooth, keep_going=True)


@safe
def training_legend(runs):
    """What each shown training run is (from its result file): the legend under the curves."""
    legend = run_notes.training_notes(lb.split_list(runs), results_dir())
    return f"**What these runs are** (from their result files):\n{legend}" if legend else ""


@safe
def comparison_choices():
    """The Comparison menu: the papers' claims whose two runs are in the results."""
    return gr.update(choices=list(tv.comparisons(results.training_runs(results_dir()))), value=None)


@safe
def pick_comparison(label, metric, x, smooth):
    """Show one of :data:`evaluation.training_view.COMPARISONS`: its two runs, which wins on their held-out measure,
    and why (equal compute, what differs)."""
    found = tv.comparisons(results.training_runs(results_dir()))
    if label not in found:
        raise ValueError(f"no such comparison in the results: {str(label)[:80]!r}")
    return training_view(found[label], metric, x, smooth, keep_going=True)


def from_query(request: gr.Request):
    """Filters from the URL's query parameters (a shareable link); unknown values are ignored. No size limit shows
    as an empty "Max size" box (the API's 1e6 "no limit" is not a number a reader should see)."""
    found = lb.filters_from_query(dict(request.query_params) if request is not None else {})
    return (*found[:5], None if found[5] >= lb.MAX_PARAMS else found[5])


def compare_section():
    """The two-run view's components: (inputs [run A, run B, resamples], the page's button, outputs, the API's
    hidden trigger)."""
    with gr.Accordion("Compare two runs: paired significance test, settings, disagreements", open=False):
        with gr.Row():
            run_a = gr.Dropdown([], label="Run A", allow_custom_value=True, scale=2, min_width=240)
            run_b = gr.Dropdown([], label="Run B", allow_custom_value=True, scale=2, min_width=240)
            resamples = gr.Slider(100, 5000, value=1000, step=100, label="bootstrap resamples", min_width=160)
        button = gr.Button("Compare", variant="primary", size="sm")
        summary = gr.Markdown()
        with gr.Accordion("The test as JSON", open=False):
            found = gr.JSON(label="paired bootstrap test")
        settings = gr.Dataframe(label="Metrics, settings and versions side by side (≠ = they differ)", max_chars=60,
                                pinned_columns=1, **TABLE)
        disagree = gr.Dataframe(label="Examples the two runs predict differently (largest error gap first)",
                                max_chars=80, **TABLE)
        api_trigger = gr.Button(visible=False)  # the significance API's event: the page's button runs the full view
    return [run_a, run_b, resamples], button, [summary, found, settings, disagree], api_trigger


def training_section():
    """The training view's components: (inputs [runs, curve, x, smoothing], outputs [plot, summary, runs, curve])."""
    with gr.Accordion("Training runs: the variant lab's curves (python -m bertvariants.train)", open=True):
        comparison = gr.Dropdown([], value=None, label="A paper's claim, measured here at equal compute "
                                 "(or pick runs below)", min_width=240)
        with gr.Row():
            runs = gr.Dropdown([], value=[], multiselect=True, allow_custom_value=True, label="Runs", scale=3,
                               min_width=240)
            metric = gr.Dropdown(["loss"], value="loss", allow_custom_value=True, label="Curve", min_width=140)
            x = gr.Radio(list(tv.TRAINING_X), value="step", label="x axis", min_width=140)
            smooth = gr.Slider(0, 0.99, value=0, step=0.01, label="Smoothing (EMA weight)", min_width=160)
        summary = gr.Markdown()
        plot = gr.Plot(label="Training curves", show_label=False)
        legend = gr.Markdown(elem_id="bv-training-notes")
    runs.change(training_legend, runs, legend, api_visibility="private")  # every way the shown runs change
    return [runs, metric, x, smooth, comparison], [plot, summary, runs, metric]


INTRO = ("**Which variant is best at what:** each variant's best score per task, with its rank (colour). One task "
         "in detail, its runs explained, below the filters.")
ABOUT = ("Measured rows come from `python -m evaluation run|score` (JSON files in `results/`, with data and model "
         "hashes); paper rows are the published numbers in `evaluation/references.csv`, each with its citation. "
         "Scores are in points (held-out losses in nats, lower is better); measured rows have 95% bootstrap "
         "intervals. A setting trained or evaluated with several seeds is one row: its score is the mean over seeds, "
         "with the spread (**seed sd**) and the 95% interval over seeds (**seed CI**) beside one run's bootstrap "
         "**CI**. Rows of a task share a **rank** when a Welch t-test over seeds, a paired bootstrap test (or, "
         "without stored predictions, CI overlap) cannot tell them apart; the matrix ranks each variant's best row "
         "the same way. **Pareto front** names the rows no cheaper row of the task beats (size, latency). The page "
         "address follows the filters: copy it to share this view.")


def filters_section():
    """The filters (search, task, variant, source, size; sorting and columns) in a closed accordion whose label
    says the defaults: every row is shown until a filter is set."""
    with gr.Accordion("Filters — showing every task, variant and size, measured and papers' numbers", open=False):
        with gr.Row():
            search = gr.Textbox(label="Search (model, variant, task, citation)", scale=2, min_width=240)
            tasks = gr.Dropdown(lb.task_choices(), multiselect=True, label="Task", min_width=200,
                                info="empty = every task")
            variants = gr.Dropdown([], multiselect=True, label="Variant", allow_custom_value=True, min_width=200,
                                   info="empty = every variant")
            sources = gr.CheckboxGroup(list(lb.SOURCES), value=list(lb.SOURCES), label="Source", min_width=200)
        with gr.Row():
            min_params = gr.Number(0, label="Min size (M params)", minimum=0, min_width=150)
            max_params = gr.Number(None, label="Max size (M params)", minimum=0, min_width=150,
                                   placeholder="no limit")
            sort_by = gr.Dropdown(lb.column_choices(), value=lb.RANK_SORT, label="Sort by (rank: best first)",
                                  min_width=150)
            ascending = gr.Checkbox(False, label="Ascending", min_width=120)
        with gr.Accordion("Columns", open=False):
            columns = gr.CheckboxGroup(lb.column_choices(), value=list(lb.DEFAULT_COLUMNS), label="Columns shown")
    return [search, tasks, variants, sources, min_params, max_params], [columns, sort_by, ascending]


def detail_section():
    """One task in detail: (task menu, bar view, scatter x, [table, CSV, bars, scatter, run legend], radar)."""
    gr.Markdown("### One task in detail")
    with gr.Row():
        task = gr.Dropdown([], value=None, label="Task", scale=2, min_width=240, elem_id="bv-detail-task")
        bar_view = gr.Radio(list(dashboard.BAR_VIEWS), value=dashboard.BAR_VIEWS[1], label="Bars", min_width=200)
    table = gr.Dataframe(label="The task's rows, best rank first (rounded: the CSV has full precision; citation "
                               "and more under Filters → Columns)", max_chars=64,
                         column_widths=list(lb.DEFAULT_WIDTHS), **TABLE)
    csv_file = gr.DownloadButton("Download CSV (full precision)", value=None, size="sm")
    notes = gr.Markdown(elem_id="bv-run-notes")
    with gr.Row():
        bar_plot = gr.Plot(label="Per task", show_label=False, min_width=360)  # the figures carry their own titles
        with gr.Column(min_width=360):
            scatter_x = gr.Radio(list(dashboard.SCATTER_X), value="size", label="Score against (outlined: on the "
                                 "task's Pareto front)")
            scatter_plot = gr.Plot(label="Score vs size", show_label=False)
    radar = gr.Plot(label="GLUE radar", show_label=False)
    return task, bar_view, scatter_x, [table, csv_file, bar_plot, scatter_plot, notes], radar


def build(spec, tab) -> None:
    gr.Markdown(INTRO)
    matrix = gr.HTML(elem_id="bv-matrix")
    shown, sorting = filters_section()
    with explanation("How rows, ranks and intervals are computed"):
        gr.Markdown(ABOUT)
    task, bar_view, scatter_x, detail_out, radar = detail_section()
    with gr.Accordion("Drilldown: per-example predictions of a run, worst errors first", open=False):
        with gr.Row():
            run = gr.Dropdown([], label="Run", scale=3, min_width=240)
            top = gr.Slider(5, 100, value=20, step=1, label="examples", min_width=160)
        drill_plot = gr.Plot(show_label=False)
        drill_table = gr.Dataframe(max_chars=80, **TABLE)
    two_runs, compare_btn, compare_out, significance_api = compare_section()
    train_in, train_out = training_section()
    train_in, comparison = train_in[:4], train_in[4]
    search, tasks, variants, sources, min_params, max_params = shown
    filters = [*shown, *sorting]
    table, csv_file, bar_plot, scatter_plot, notes = detail_out
    everything = [table, csv_file, bar_plot, scatter_plot, radar, run, variants, *two_runs[:2], matrix, task, notes]
    tab.select(render, [*filters, bar_view, scatter_x, task], everything, api_visibility="private").then(
        compare_render, two_runs, compare_out, api_visibility="private")
    changed = [tasks.input, variants.input, sources.input, min_params.submit, max_params.submit, search.submit]
    table_api = gr.Button(visible=False)  # the table API's event: the page's table is one task's (detail)
    table_api.click(leaderboard_table, filters, [table, csv_file], api_name="leaderboard")
    gr.on(changed, render, [*filters, bar_view, scatter_x, task], everything, api_visibility="private")
    gr.on(changed, None, shown, None, js=lb.SHARE_JS, api_visibility="private")  # the URL follows the filters
    gr.on([task.input, *[c.input for c in sorting]], detail, [*filters, task, bar_view, scatter_x], detail_out,
          api_visibility="private")
    bar_view.input(bars, [*shown, bar_view, task], bar_plot, api_visibility="private")
    scatter_x.input(scatter, [*shown, scatter_x, task], scatter_plot, api_visibility="private")
    gr.on([run.change, top.release], drilldown, [run, top], [drill_plot, drill_table], api_name="leaderboard_drilldown")
    compare_btn.click(leaderboard_compare, two_runs, compare_out, api_name="leaderboard_compare")
    significance_api.click(leaderboard_significance, two_runs, compare_out[1], api_name="leaderboard_significance")
    tab.select(training_render, train_in, train_out, api_visibility="private")
    tab.select(comparison_choices, None, comparison, api_visibility="private")
    comparison.input(pick_comparison, [comparison, *train_in[1:]], train_out, api_visibility="private")
    train_in[0].input(training_render, train_in, train_out, api_visibility="private")
    gr.on([train_in[1].input, train_in[2].input, train_in[3].release], leaderboard_training, train_in, train_out,
          api_name="leaderboard_training")
    # shareable links: the URL's query parameters preset the filters when the page loads
    root_blocks().load(from_query, None, shown, api_visibility="private")
