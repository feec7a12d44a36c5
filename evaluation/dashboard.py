"""Plotly figure builders for the Leaderboard tab (no gradio here): each takes the leaderboard DataFrame of
``evaluation.results`` (columns model, variant, task, source, score, ci95_low/high, params_millions,
latency_ms, ...) and returns a ``go.Figure``. :func:`safe_figure` turns any failure into an error figure, so
one broken plot never takes the others (or the callback) down.

Every figure colours a model with :func:`evaluation.palette.color_map` of the whole board (pass it as
``colors``; the same model has the same colour in every view), has a wrapped title, at most
:data:`~evaluation.palette.MAX_LEGEND` legend entries by default, and stays readable from a 390 px phone to a
1400 px screen (:mod:`evaluation.plot_style`).

The training view's figure and sentences live in :mod:`evaluation.training_plots` and are re-exported here.
"""

from __future__ import annotations

import math
import textwrap
from typing import Mapping

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from . import palette, pareto
from .plot_style import error_figure, finish, safe_figure  # noqa: F401 - re-exported: one import for the UI
from .plot_style import title as make_title
from .tasks import GLUE_TASKS, benchmark
from .training_plots import (ACRONYMS, LOWER_IS_BETTER_WORDS, Comparison, HeldoutVerdict, compare_runs,  # noqa: F401
                             ema, heldout_matches, heldout_verdict, lower_is_better, masking_explanation, metric_label,
                             run_comparison, training_curves_figure)

SOURCE_SYMBOL = {"measured": "circle", "paper": "diamond-open"}
BAR_VIEWS = ("best per variant", "every row")  # the bar chart's rows: the default keeps the legend short
MAX_BARS_PER_TASK = 2 * palette.MAX_LEGEND  # 'every row' can be long; a task stays readable
BAR_PX, FACET_GAP_PX = 26, 40  # one bar's band, and the room for a task's title between facets
LABEL_CHARS = 26  # a bar's model label (the hover has the full name)
FACET_CHARS = 26  # a task title's line


def _scored(df: pd.DataFrame) -> pd.DataFrame:
    if df is None or df.empty:
        raise ValueError("no rows match the filters")
    out = df[pd.to_numeric(df["score"], errors="coerce").notna()].copy()
    if out.empty:
        raise ValueError("no scored rows match the filters")
    out["score"] = out["score"].astype(float)
    return out


def _task_name(key: str) -> str:
    try:
        return benchmark(key).name
    except ValueError:
        return key


def _up(value) -> bool:
    return True if value is None or (isinstance(value, float) and math.isnan(value)) else bool(value)


def _colors(df: pd.DataFrame, colors: Mapping[str, str] | None) -> Mapping[str, str]:
    return colors if colors else palette.color_map(df)


def _short(text: str, n: int = LABEL_CHARS) -> str:
    text = str(text)
    return text if len(text) <= n else text[: n - 1] + "…"


def bar_rows(df: pd.DataFrame, *, view: str = BAR_VIEWS[0]) -> pd.DataFrame:
    """The rows the bar chart draws: per task, best first in the task's direction; ``best per variant`` keeps
    the best row of each (variant family, source), ``every row`` all of them; at most :data:`MAX_BARS_PER_TASK`."""
    if view not in BAR_VIEWS:
        raise ValueError(f"bars: choose one of {', '.join(BAR_VIEWS)}, got {str(view)[:40]!r}")
    d = _scored(df)
    d["family"] = d["variant"].map(palette.family_of) if "variant" in d.columns else palette.OTHER_FAMILY
    up = d["higher_is_better"].map(_up) if "higher_is_better" in d.columns else pd.Series(True, index=d.index)
    d = d.assign(_key=d["score"].where(up, -d["score"])).sort_values(["task", "_key"], ascending=[True, False],
                                                                        kind="stable")
    if view == BAR_VIEWS[0]:
        d = d.drop_duplicates(["task", "family", "source"], keep="first")
    return d.groupby("task", sort=True, group_keys=False).head(MAX_BARS_PER_TASK).drop(columns="_key")


def _labels(g: pd.DataFrame) -> list[str]:
    """Unique y labels of one facet: the model (shortened), "(paper)" where a name repeats, then a counter."""
    base = [_short(m) for m in g["model"]]
    out = [_short(m, LABEL_CHARS - 8) + " (paper)" if s == "paper" and base.count(b) > 1 else b
           for m, b, s in zip(g["model"], base, g["source"])]
    seen: dict[str, int] = {}
    for i, label in enumerate(out):
        seen[label] = seen.get(label, 0) + 1
        if seen[label] > 1:
            out[i] = f"{label} #{seen[label]}"
    return out


def _legend_families(d: pd.DataFrame) -> dict[str, str]:
    """family -> the legend entry it is drawn under: the first MAX_LEGEND − 1 families by name, the rest 'other'."""
    fams = sorted(set(d["family"]), key=str.lower)
    if len(fams) <= palette.MAX_LEGEND:
        return {f: f for f in fams}
    keep = set(fams[: palette.MAX_LEGEND - 1])
    return {f: f if f in keep else palette.OTHER_FAMILY for f in fams}


def _facet_title(task: str, metric: str, up: bool) -> str:
    """``<b>SST-2</b><br>accuracy ↑``: lines of at most :data:`FACET_CHARS`, so a facet's title fits the width a
    phone leaves right of the bar labels."""
    name = "<br>".join(textwrap.wrap(_task_name(task), FACET_CHARS)) or task
    return f"<b>{name}</b><br>{_short(metric_label(metric), FACET_CHARS - 2)} {'↑' if up else '↓'}"


def _primary(task: str, rows: pd.DataFrame) -> str:
    try:
        return benchmark(task).primary
    except ValueError:
        return str(rows["primary_metric"].iloc[0])


def bars_by_task(df: pd.DataFrame, *, view: str = BAR_VIEWS[0], colors: Mapping[str, str] | None = None) -> go.Figure:
    """One facet per task: horizontal bars of the primary metric, best on top, ± 95% CI for measured rows,
    hatched for the papers' numbers. Bars are coloured by model (one colour map), the legend lists the variant
    families (≤ 12; clicking one hides its bars). ``view``: see :func:`bar_rows`."""
    d = bar_rows(df, view=view)
    colors = _colors(df, colors)
    tasks = list(dict.fromkeys(d["task"]))
    sizes = [int((d["task"] == t).sum()) for t in tasks]
    metric = {t: _primary(t, d[d["task"] == t]) for t in tasks}
    ups = {t: _up(d.loc[d["task"] == t, "higher_is_better"].iloc[0]) if "higher_is_better" in d else True
           for t in tasks}
    heads = [_facet_title(t, metric[t], ups[t]) for t in tasks]
    # row 1 is an empty spacer: the first task's title sits between it and the legend-pushed top, not over the legend
    gap = FACET_GAP_PX + 16 * max(h.count("<br>") for h in heads) - 16
    plot_px = sum(n * BAR_PX for n in sizes) + gap * len(tasks) + 2
    fig = make_subplots(rows=len(tasks) + 1, cols=1, row_heights=[0.08] + sizes, subplot_titles=[""] + heads,
                        vertical_spacing=gap / plot_px)
    blank = dict(showgrid=False, showticklabels=False, zeroline=False, showline=False, fixedrange=True)
    fig.update_xaxes(row=1, col=1, **blank)
    fig.update_yaxes(row=1, col=1, **blank)
    legend_of = _legend_families(d)
    hues = palette.family_colors(legend_of.values())
    for entry in dict.fromkeys(legend_of[f] for f in sorted(legend_of, key=str.lower)):  # legend: family hues
        fig.add_scatter(row=1, col=1, x=[None], y=[None], mode="markers", name=entry, legendgroup=entry,
                        marker=dict(symbol="square", size=12, color=hues.get(entry)), hoverinfo="skip")
    for row, t in enumerate(tasks, start=2):
        g = d[d["task"] == t].assign(label=lambda x: _labels(x))
        fmt = "{:.1f}" if ups[t] else "{:.3g}"
        for family, f in g.groupby("family", sort=False):
            lo = (f["score"] - pd.to_numeric(f["ci95_low"], errors="coerce")).fillna(0).clip(lower=0)
            hi = (pd.to_numeric(f["ci95_high"], errors="coerce") - f["score"]).fillna(0).clip(lower=0)
            fig.add_bar(row=row, col=1, orientation="h", x=f["score"], y=f["label"], name=legend_of[family],
                        legendgroup=legend_of[family], showlegend=False, text=[fmt.format(v) for v in f["score"]],
                        textposition="inside", insidetextanchor="start",
                        textfont=dict(color="white", size=11, shadow="auto"),
                        marker=dict(color=[palette.color_of(m, colors) for m in f["model"]],
                                    pattern=dict(shape=["/" if s == "paper" else "" for s in f["source"]],
                                                 fillmode="overlay", fgcolor="white", size=7)),
                        error_x=dict(type="data", array=list(hi), arrayminus=list(lo), visible=bool(hi.any()),
                                     thickness=1.2, width=3),
                        customdata=np.stack([f["model"], f["source"], f["family"]], axis=1),
                        hovertemplate="%{customdata[0]} (%{customdata[1]}, %{customdata[2]})<br>"
                                      + metric[t] + " %{x:.4g}<extra></extra>")
        top = float(np.nanmax(np.r_[g["score"], pd.to_numeric(g["ci95_high"], errors="coerce")]))
        fig.update_yaxes(row=row, col=1, type="category", categoryorder="array", categoryarray=list(g["label"])[::-1],
                         tickfont=dict(size=11))
        fig.update_xaxes(row=row, col=1, range=[min(0.0, float(g["score"].min())), max(top, 1e-9) * 1.04],
                         showticklabels=False, zeroline=True)
    fig.update_annotations(font=dict(size=12), xanchor="left", x=0.0, yanchor="bottom", align="left")  # titles
    finish(fig, height=plot_px + 200, barmode="overlay", bargap=0.25,
           title=make_title("Primary metric per task, best first", "↑ higher / ↓ lower is better · hatched = paper's "
                                                                    "number · solid = measured here, ± 95% CI · "
                                                                    "colour = model, legend = family"),
           meta={"tasks": tasks, "metrics": metric, "view": view, "bars": int(len(d))})
    return fig


SCATTER_X = {"size": ("params_millions", "parameters (millions, log)"),
             "latency": ("latency_ms", "latency per example (ms, log)")}  # the scatter's x choices (pareto.COSTS)
FRONT_LINE = dict(color="#111", width=2.5)  # the outline of a point on its task's Pareto front


def _front_trace(fig: go.Figure, d: pd.DataFrame, col: str) -> None:
    """The front of one task as a step line through its points, cheapest first (better only by paying more)."""
    f = d[d["front"]].assign(_x=lambda x: x[col].astype(float)).sort_values("_x", kind="stable")
    if f.empty:
        return
    fig.add_scatter(x=f["_x"], y=f["score"], mode="lines", line=dict(color="#111", width=1.2, dash="dot",
                                                                   shape="hv"),
                    name="Pareto front", hoverinfo="skip", showlegend=True)


def score_vs_params(df: pd.DataFrame, task: str | None = None, *, colors: Mapping[str, str] | None = None,
                    x: str = "size") -> go.Figure:
    """Score against parameter count (``x="size"``, bubble area ∝ latency) or against latency per example
    (``x="latency"``, bubble area ∝ parameters), log x; each point in its model's colour, the symbol says the
    source, an outline marks the rows on their task's Pareto front of score vs that cost
    (:func:`evaluation.pareto.pareto_columns`, over the rows given: the table's "Pareto front" column); one task
    also gets the front as a dotted step line."""
    if x not in SCATTER_X:
        raise ValueError(f"x: choose one of {', '.join(SCATTER_X)}, got {str(x)[:40]!r}")
    col, axis_title = SCATTER_X[x]
    other = SCATTER_X["latency" if x == "size" else "size"][0]
    d = _scored(df)
    colors = _colors(df, colors)
    if task:
        d = d[d["task"] == task]
    d = d.assign(front=pareto.pareto_columns(d)[f"pareto_{x}"] if len(d) else False)  # over every scored row
    d = d[pd.to_numeric(d[col], errors="coerce") > 0]
    if d.empty:
        raise ValueError(f"no rows with a known {'parameter count' if x == 'size' else 'latency'}"
                         + (f" for {task}" if task else ""))
    size_of = pd.to_numeric(d[other], errors="coerce")
    top = size_of.max() if size_of.notna().any() else 1.0
    fig = go.Figure()
    for src, g in d.groupby("source"):
        gs = pd.to_numeric(g[other], errors="coerce")
        size = [10 + 40 * math.sqrt(v / top) if pd.notna(v) and top > 0 else 10 for v in gs]
        lat = pd.to_numeric(g["latency_ms"], errors="coerce")
        fig.add_scatter(x=g[col].astype(float), y=g["score"], mode="markers", name=src,
                        marker=dict(size=size, symbol=SOURCE_SYMBOL.get(src, "circle"), sizemode="diameter",
                                    color=[palette.color_of(m, colors) for m in g["model"]],
                                    line=dict(width=[FRONT_LINE["width"] if f else (1.5 if src == "paper" else 0.5)
                                                     for f in g["front"]],
                                              color=[FRONT_LINE["color"] if f else "#444" for f in g["front"]])),
                        text=[f"{m} · {_task_name(t)} · {('%.1f ms/example' % v) if pd.notna(v) else 'latency n/a'}"
                              f" · {p:.1f}M params" + (f" · on the {x} front" if f else "")
                              for m, t, v, p, f in zip(g["model"], g["task"], lat, g["params_millions"].astype(float),
                                                       g["front"])],
                        hovertemplate="%{text}<br>score %{y:.2f}<extra></extra>", showlegend=False)
    for src in sorted(set(d["source"])):  # neutral legend swatches: the points' colours are the models'
        fig.add_scatter(x=[None], y=[None], mode="markers", name=f"{src} ({'solid' if src == 'measured' else 'open'})",
                        marker=dict(symbol=SOURCE_SYMBOL.get(src, "circle"), size=11, color="#777"), hoverinfo="skip")
    if task:
        _front_trace(fig, d, col)
    bubble = "latency per example (measured)" if x == "size" else "parameters"
    finish(fig, height=500, title=make_title(("Score vs model size" if x == "size" else "Score vs latency")
                                             + (f" — {_task_name(task)}" if task else ""),
                                             " · ".join([f"bubble size = {bubble}",
                                                         "black outline = on the task's Pareto front"]
                                                        + ([] if task else ["pick one task to compare like with "
                                                                            "like"]))),
           xaxis=dict(type="log", title=axis_title), yaxis_title="score")
    return fig


def glue_radar(df: pd.DataFrame, *, min_tasks: int = 2, colors: Mapping[str, str] | None = None,
               max_models: int = palette.MAX_LEGEND) -> go.Figure:
    """One polygon per model over the GLUE tasks it has scores for (primary metrics); the ``max_models`` models
    with the best mean score when more qualify."""
    d = _scored(df)
    colors = _colors(df, colors)
    d = d[d["task"].isin(GLUE_TASKS)]
    tasks = [t for t in GLUE_TASKS if t in set(d["task"])]
    if len(tasks) < 3:
        raise ValueError(f"the radar needs scores on ≥ 3 GLUE tasks; the filtered rows cover {len(tasks)}")
    d = d.assign(label=d["model"] + " (" + d["source"] + ")")
    polys = []
    for label, g in d.groupby("label", sort=True):
        g = g.drop_duplicates("task").set_index("task")
        if g.index.isin(tasks).sum() >= min_tasks:
            polys.append((-float(g["score"].mean()), label, g))
    if not polys:
        raise ValueError(f"no model has scores on ≥ {min_tasks} of the GLUE tasks shown")
    chosen = sorted(polys, key=lambda p: (p[0], p[1]))[:max_models]
    fig = go.Figure()
    for _, label, g in chosen:
        r = [g["score"].get(t, None) for t in tasks]
        fig.add_scatterpolar(r=r + r[:1], theta=[_task_name(t) for t in tasks + tasks[:1]], name=_short(label, 34),
                             fill="toself", opacity=0.5, connectgaps=True,
                             line=dict(color=palette.color_of(g["model"].iloc[0], colors)))
    more = len(polys) - len(chosen)
    finish(fig, height=520, title=make_title("GLUE tasks (primary metric, points)",
                                        f"{more} more model(s) left out: filter to see them" if more > 0 else ""),
           polar=dict(radialaxis=dict(range=[0, 100], tickfont=dict(size=10)),
                      angularaxis=dict(tickfont=dict(size=11))))
    return fig


def drilldown_figure(pred: pd.DataFrame, *, top: int = 20, title: str = "") -> go.Figure:
    """The ``top`` worst examples of one run (error = 1 − p(gold), rank gap, 1 − F1 or 1 − ROUGE), worst on top."""
    if pred is None or pred.empty:
        raise ValueError("this run stored no per-example predictions")
    if "error" not in pred.columns:
        raise ValueError("the predictions have no 'error' column")
    d = pred.sort_values("error", ascending=False, kind="stable").head(top).iloc[::-1]
    hover = [f"id {i}<br>input: {str(x)[:160]}<br>prediction: {str(p)[:120]}<br>reference: {str(r)[:120]}"
             for i, x, p, r in zip(d["id"], d.get("input", [""] * len(d)), d["prediction"], d["reference"])]
    fig = go.Figure(go.Bar(x=d["error"], y=[_short(i, 18) for i in d["id"].astype(str)], orientation="h",
                           hovertext=hover, hoverinfo="text", marker_color="#d62728"))
    finish(fig, height=max(320, 24 * len(d) + 140), title=make_title(title or f"{len(d)} worst examples",
                                                                "hover a bar for input, prediction, reference"),
           xaxis_title="error", yaxis=dict(title="example id", type="category"), showlegend=False)
    return fig
