"""Plotly figure builders for the Leaderboard tab (no gradio here): each takes the leaderboard DataFrame of
``evaluation.results`` (columns model, variant, task, source, score, ci95_low/high, params_millions,
latency_ms, ...) and returns a ``go.Figure``. :func:`safe_figure` turns any failure into an error figure, so
one broken plot never takes the others (or the callback) down.
"""

from __future__ import annotations

import logging
import math
from typing import Callable

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from .tasks import GLUE_TASKS, benchmark

log = logging.getLogger(__name__)

SOURCE_SYMBOL = {"measured": "circle", "paper": "diamond-open"}


def error_figure(message: str) -> go.Figure:
    """An empty figure that says what went wrong (shown instead of a plot)."""
    fig = go.Figure()
    fig.add_annotation(text=message, x=0.5, y=0.5, xref="paper", yref="paper", showarrow=False,
                       font=dict(size=14, color="#b00020"))
    fig.update_layout(xaxis=dict(visible=False), yaxis=dict(visible=False), height=320,
                      meta={"error": message})
    return fig


def safe_figure(build: Callable[..., go.Figure], *args, **kwargs) -> go.Figure:
    try:
        return build(*args, **kwargs)
    except Exception as exc:  # noqa: BLE001 - a failing plot becomes a message, never a dead callback
        log.exception("plot %s failed", getattr(build, "__name__", build))
        return error_figure(f"Could not draw this plot: {exc}")


def _label(row) -> str:
    return f"{row['model']} ({row['source']})"


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


def bars_by_task(df: pd.DataFrame) -> go.Figure:
    """Grouped bars: one group per task, one bar per (model, source), primary metric with its 95% CI."""
    d = _scored(df)
    tasks = sorted(d["task"].unique())
    fig = go.Figure()
    for label, g in d.assign(label=d.apply(_label, axis=1)).groupby("label", sort=True):
        g = g.set_index("task")
        y = [g["score"].get(t, np.nan) for t in tasks]
        hi = [(g["ci95_high"].get(t) - g["score"].get(t)) if t in g.index and pd.notna(g["ci95_high"].get(t)) else 0
              for t in tasks]
        lo = [(g["score"].get(t) - g["ci95_low"].get(t)) if t in g.index and pd.notna(g["ci95_low"].get(t)) else 0
              for t in tasks]
        src = g["source"].iloc[0]
        fig.add_bar(name=label, x=[_task_name(t) for t in tasks], y=y,
                    error_y=dict(type="data", array=hi, arrayminus=lo, visible=any(hi)),
                    marker_pattern_shape="/" if src == "paper" else "",
                    hovertemplate="%{x}: %{y:.2f}<extra>" + label + "</extra>")
    metric = {t: d[d["task"] == t]["primary_metric"].iloc[0] for t in tasks}
    fig.update_layout(barmode="group", title="Primary metric per task (hatched = paper, solid = measured here ± 95% CI)",
                      yaxis_title="score (points)", xaxis_title="task", height=420 + 18 * ((len(fig.data) + 2) // 3),
                      legend=dict(title="model (source)", orientation="h", yanchor="top", y=-0.18, x=0),
                      meta={"tasks": tasks, "metrics": metric})
    return fig


def score_vs_params(df: pd.DataFrame, task: str | None = None) -> go.Figure:
    """Score against parameter count (log x); bubble area ∝ latency per example (measured rows only)."""
    d = _scored(df)
    if task:
        d = d[d["task"] == task]
    d = d[pd.to_numeric(d["params_millions"], errors="coerce") > 0]
    if d.empty:
        raise ValueError("no rows with a known parameter count" + (f" for {task}" if task else ""))
    lat = pd.to_numeric(d["latency_ms"], errors="coerce")
    top = lat.max() if lat.notna().any() else 1.0
    fig = go.Figure()
    for src, g in d.groupby("source"):
        gl = pd.to_numeric(g["latency_ms"], errors="coerce")
        size = [10 + 40 * math.sqrt(v / top) if pd.notna(v) and top > 0 else 10 for v in gl]
        fig.add_scatter(x=g["params_millions"].astype(float), y=g["score"], mode="markers", name=src,
                        marker=dict(size=size, symbol=SOURCE_SYMBOL.get(src, "circle"), sizemode="diameter"),
                        text=[f"{m} · {_task_name(t)} · {('%.1f ms/example' % v) if pd.notna(v) else 'latency n/a'}"
                              for m, t, v in zip(g["model"], g["task"], gl)],
                        hovertemplate="%{text}<br>%{x:.1f}M params, score %{y:.2f}<extra></extra>")
    fig.update_layout(title="Score vs model size" + (f" — {_task_name(task)}" if task else "") +
                      " (bubble size = latency per example, measured)",
                      xaxis=dict(type="log", title="parameters (millions, log scale)"), yaxis_title="score (points)")
    return fig


def glue_radar(df: pd.DataFrame, *, min_tasks: int = 2) -> go.Figure:
    """One polygon per model over the GLUE tasks it has scores for (primary metrics)."""
    d = _scored(df)
    d = d[d["task"].isin(GLUE_TASKS)]
    tasks = [t for t in GLUE_TASKS if t in set(d["task"])]
    if len(tasks) < 3:
        raise ValueError(f"the radar needs scores on ≥ 3 GLUE tasks; the filtered rows cover {len(tasks)}")
    fig = go.Figure()
    for label, g in d.assign(label=d.apply(_label, axis=1)).groupby("label", sort=True):
        g = g.drop_duplicates("task").set_index("task")
        if g.index.isin(tasks).sum() < min_tasks:
            continue
        r = [g["score"].get(t, None) for t in tasks]
        fig.add_scatterpolar(r=r + r[:1], theta=[_task_name(t) for t in tasks + tasks[:1]], name=label,
                             fill="toself", opacity=0.55, connectgaps=True)
    if not fig.data:
        raise ValueError(f"no model has scores on ≥ {min_tasks} of the GLUE tasks shown")
    fig.update_layout(title="GLUE tasks (primary metric, points)", polar=dict(radialaxis=dict(range=[0, 100])))
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
    fig = go.Figure(go.Bar(x=d["error"], y=[str(i) for i in d["id"]], orientation="h", hovertext=hover,
                           hoverinfo="text", marker_color="#d62728"))
    fig.update_layout(title=title or f"{len(d)} worst examples (hover for input, prediction, reference)",
                      xaxis_title="error", yaxis_title="example id", yaxis=dict(type="category"),
                      height=max(320, 22 * len(d) + 120))
    return fig
