"""The Leaderboard's first screen: which variant is best at what, as one matrix of variant families × tasks.

Each cell is a family's best row on a task (in the task's own direction: a held-out loss is best low), written as
its score and its tie-aware rank among the families (:func:`evaluation.ranks.tie_aware_ranks` over the families'
best rows: Welch's t-test over seeds, the paired bootstrap test, or 95% interval overlap; rows the data cannot
tell apart share a rank), and coloured by that rank. The cell's tooltip names the model, its source and what the
run is (:mod:`evaluation.run_notes`). One task in detail is the rest of the tab: :func:`default_task` picks it.

Pure pandas and text (an HTML fragment with its own scoped style); nothing here imports gradio.

>>> import pandas as pd
>>> rows = pd.DataFrame({"model": ["a", "b"], "variant": ["BERT", "ALBERT"], "task": ["sst2"] * 2,
...                      "split": ["dev"] * 2, "source": ["paper"] * 2, "primary_metric": ["accuracy"] * 2,
...                      "score": [90.0, 80.0],
...                      "ci95_low": [None] * 2, "ci95_high": [None] * 2, "higher_is_better": [True] * 2,
...                      "file": ["", ""], "predictions_file": [None] * 2})
>>> m = summary_matrix(rows)
>>> (m.families, m.tasks, m.cells[("BERT", "sst2")].rank, m.cells[("ALBERT", "sst2")].rank)
(['BERT', 'ALBERT'], ['sst2'], 1, 2)
"""

from __future__ import annotations

import html
import math
import os
from dataclasses import dataclass
from typing import Mapping

import pandas as pd

from . import palette, ranks
from .tasks import BENCHMARKS, benchmark

# background and text colour of a cell by rank: 1, 2, 3, 4 and below (sequential greens: lightness orders them)
RANK_COLORS = (("#1b7837", "#ffffff"), ("#5aae61", "#ffffff"), ("#a6dba0", "#10351a"), ("#e7f1e4", "#33403a"))
EMPTY_COLOR = "#f6f6f6"


@dataclass(frozen=True)
class Cell:
    """One family's best row on one task, ranked among the families' best rows of that task."""

    family: str
    task: str
    model: str
    source: str  # measured | paper
    score: float
    rank: int | None
    of: int  # how many families have a score on the task
    note: str  # why the rank (the rank_note of evaluation.ranks)
    split: str
    metric: str
    higher_is_better: bool


@dataclass(frozen=True)
class Matrix:
    """The families (most first ranks first), the tasks (in the benchmark table's order) and the cells."""

    families: list[str]
    tasks: list[str]
    cells: dict[tuple[str, str], Cell]


def _up(value) -> bool:
    return True if value is None or (isinstance(value, float) and math.isnan(value)) else bool(value)


def task_order(tasks) -> list[str]:
    """The benchmark table's order (GLUE, QA, summarisation, clinical, pretraining), then the papers' other tasks."""
    known = [b.key for b in BENCHMARKS]
    return sorted(set(tasks), key=lambda t: (known.index(t) if t in known else len(known), t))


def task_name(key: str) -> str:
    try:
        return benchmark(key).name
    except ValueError:
        return key


def best_per_family(rows: pd.DataFrame) -> pd.DataFrame:
    """Per (task, family) the best scored row, in the task's direction (ties: the first row, measured before paper
    only by the board's order)."""
    d = rows[pd.to_numeric(rows["score"], errors="coerce").notna()].copy()
    if d.empty:
        return d.assign(family=pd.Series(dtype=str))
    d["score"] = d["score"].astype(float)
    d["family"] = d["variant"].map(palette.family_of)
    up = d["higher_is_better"].map(_up)
    d = d.assign(_key=d["score"].where(up, -d["score"])).sort_values(["task", "_key"], ascending=[True, False],
                                                                       kind="stable")
    return d.drop_duplicates(["task", "family"], keep="first").drop(columns="_key")


def summary_matrix(rows: pd.DataFrame, directory: str | os.PathLike | None = None) -> Matrix:
    """The matrix of ``rows`` (a filtered board): each family's best row per task, ranked among the families with
    :func:`evaluation.ranks.tie_aware_ranks` (``directory``: where the result files are, for paired tests)."""
    best = best_per_family(rows)
    if best.empty:
        return Matrix([], [], {})
    ranked = pd.concat([best, ranks.tie_aware_ranks(best, directory)], axis=1)
    counts = ranked.groupby("task")["score"].count()
    cells = {}
    for r in ranked.itertuples():
        rank = None if pd.isna(r.rank) else int(r.rank)
        cells[(r.family, r.task)] = Cell(r.family, r.task, str(r.model), str(r.source), float(r.score), rank,
                                         int(counts[r.task]), str(r.rank_note), str(r.split), str(r.primary_metric),
                                         _up(r.higher_is_better))
    wins = {f: sum(1 for c in cells.values() if c.family == f and c.rank == 1) for f in set(ranked["family"])}
    families = sorted(wins, key=lambda f: (-wins[f], f == palette.OTHER_FAMILY, f.lower()))
    return Matrix(families, task_order(ranked["task"]), cells)


def default_task(rows: pd.DataFrame, preferred: str = "sst2") -> str | None:
    """The task the detail shows first: ``preferred`` when it has rows, else the task with the most rows."""
    if rows is None or rows.empty:
        return None
    tasks = set(rows["task"])
    if preferred in tasks:
        return preferred
    counts = rows["task"].value_counts()
    return min(tasks, key=lambda t: (-counts[t], task_order(tasks).index(t)))


def task_label(key: str, rows: pd.DataFrame | None = None) -> str:
    """``SST-2 (sst2) · 20 rows``: the detail selector's label of a task."""
    n = int((rows["task"] == key).sum()) if rows is not None and len(rows) else 0
    name = task_name(key)
    name = name if len(name) <= 32 else name[:31].rstrip(" ,:") + "…"
    head = name if name == key else f"{name} ({key})"
    return f"{head} · {n} row{'s' * (n != 1)}" if rows is not None else head


def format_score(value: float) -> str:
    """A score for reading: points with one decimal (``96.9``), small values (a loss) with three digits (``4.07``)."""
    if value is None or not math.isfinite(value):
        return "–"
    return f"{value:,.1f}" if abs(value) >= 10 else f"{value:.3g}"


STYLE = """<style>
.bv-matrix { overflow-x: auto; max-width: 100%; border: 1px solid #d9d9d9; border-radius: 6px;
  scrollbar-width: auto; scrollbar-color: #7c8ce6 #eef0fb; }
.bv-matrix::-webkit-scrollbar { height: 10px; } .bv-matrix::-webkit-scrollbar-thumb { background: #7c8ce6; }
.bv-matrix table { border-collapse: separate !important; border-spacing: 0; font-size: 12.5px; margin: 0 !important;
  border: 0 !important; width: auto !important; min-width: 0 !important; table-layout: auto; }
.bv-matrix th, .bv-matrix td { padding: 2px 4px !important; text-align: center; white-space: nowrap;
  border: 0 !important; border-bottom: 1px solid #fff !important; border-right: 1px solid #fff !important;
  line-height: 1.3 !important; min-width: 0 !important; }
.bv-matrix thead th { font-weight: 600; font-size: 11.5px; vertical-align: bottom; background: #f3f4f6;
  color: #222; white-space: normal; max-width: 7.5em; }
.bv-matrix .bv-task { position: sticky; left: 0; z-index: 1; text-align: left !important; background: #f3f4f6;
  color: #222; border-right: 1px solid #d0d0d0 !important; max-width: none; }
.bv-matrix .bv-rank { font-size: 10px; margin-left: 3px; font-weight: 700; color: inherit !important;
  font-style: normal; }
.bv-matrix-scroll { display: none; font-size: 12px; color: #4f5bd5; margin: 0 0 4px; }
@media (max-width: 760px) { .bv-matrix-scroll { display: block; }
  .bv-matrix .bv-task { max-width: 7.5em; white-space: normal; } }
.bv-matrix td.bv-paper { font-style: italic; }
.bv-matrix-key { font-size: 12px; margin: 6px 0 0; color: #444; line-height: 1.8; }
.bv-matrix-key span.bv-swatch { display: inline-block; padding: 0 6px; border-radius: 3px; margin-right: 4px; }
</style>"""


def _cell_html(c: Cell | None, family: str, task: str, notes: Mapping[tuple[str, str], str]) -> str:
    if c is None:
        return f'<td style="background:{EMPTY_COLOR};color:#999" title="{html.escape(family)}: no row on {task}">·</td>'
    bg, fg = RANK_COLORS[min(c.rank or len(RANK_COLORS), len(RANK_COLORS)) - 1]
    what = notes.get((c.model, c.task), "")
    tip = (f"{task_name(c.task)} ({c.split}), {c.metric} {'↑' if c.higher_is_better else '↓'}: {c.family}'s best is "
           f"{c.model} ({'paper' if c.source == 'paper' else 'measured here'}) with {c.score:.4g}; rank {c.rank} of "
           f"{c.of} variants ({c.note})" + (f". {c.model}: {what}" if what else ""))
    cls = ' class="bv-paper"' if c.source == "paper" else ""
    return (f'<td{cls} style="background:{bg};color:{fg}" title="{html.escape(tip)}" data-task="{html.escape(task)}" '
            f'data-rank="{c.rank}">{format_score(c.score)}<span class="bv-rank">#{c.rank}</span></td>')


def _task_html(task: str, cells: Mapping[tuple[str, str], Cell]) -> str:
    """A row's head: the task key and its direction; the tooltip names the task and its metric."""
    some = next((c for (f, t), c in cells.items() if t == task), None)
    arrow = "↑" if some is None or some.higher_is_better else "↓"
    metric = some.metric if some is not None else ""
    tip = f"{task_name(task)}: {metric} ({'higher' if arrow == '↑' else 'lower'} is better)"
    label = html.escape(task).replace("_", "_<wbr>").replace("-", "-<wbr>")
    return f'<th scope="row" class="bv-task" title="{html.escape(tip)}">{label}&nbsp;{arrow}</th>'


def matrix_html(m: Matrix, notes: Mapping[tuple[str, str], str] | None = None) -> str:
    """The matrix as an HTML table, one row per task and one column per variant family (most wins first), that
    scrolls sideways inside its own frame with the task names pinned, and a colour key; ``notes``: (model, task)
    -> what the run is (each cell's tooltip)."""
    notes = notes or {}
    if not m.tasks:
        return STYLE + '<div class="bv-matrix-key">No scored rows match the filters.</div>'
    head = "".join(f'<th scope="col">{html.escape(f)}</th>' for f in m.families)
    body = "".join("<tr>" + _task_html(t, m.cells)
                   + "".join(_cell_html(m.cells.get((f, t)), f, t, notes) for f in m.families) + "</tr>"
                   for t in m.tasks)
    swatches = "".join(f'<span class="bv-swatch" style="background:{bg};color:{fg}">{label}</span>'
                       for (bg, fg), label in zip(RANK_COLORS, ("rank 1", "rank 2", "rank 3", "rank 4+")))
    key = (f'<div class="bv-matrix-key">{swatches} · number = the variant\'s best score on the task, #n = its '
           "rank among the variants (shared when a significance test or the 95% intervals cannot tell them apart) · "
           "<i>italic</i> = a paper's number, upright = measured here · ↑/↓ = higher/lower is better · hover a cell "
           "or a task for the model, the metric and what the run is</div>")
    return (f'{STYLE}<div class="bv-matrix-scroll">← the table scrolls sideways: more variants →</div>'
            f'<div class="bv-matrix" role="region" aria-label="Best score per task and variant" tabindex="0">'
            f'<table><thead><tr><th scope="col" class="bv-task">task</th>{head}</tr></thead>'
            f"<tbody>{body}</tbody></table></div>{key}")
