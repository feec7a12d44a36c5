"""Plotly figure builders for the Leaderboard tab (no gradio here): each takes the leaderboard DataFrame of
``evaluation.results`` (columns model, variant, task, source, score, ci95_low/high, params_millions,
latency_ms, ...) and returns a ``go.Figure``. :func:`safe_figure` turns any failure into an error figure, so
one broken plot never takes the others (or the callback) down.

The training view (:func:`training_curves_figure`, :func:`compare_runs`) draws the variant lab's logged curves
(``results.training_curves``) and says which run ends best and by how much.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Callable, Iterable, Mapping, Sequence

import numpy as np
import pandas as pd
import plotly.colors
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


# ------------------------------------------------------------------ training view (the variant lab's curves)
LOWER_IS_BETTER_WORDS = ("loss", "mse", "ce", "perplexity", "nll")  # metric-name tokens of a lower-is-better curve
ACRONYMS = {"mlm": "MLM", "sbo": "SBO", "mse": "MSE", "ce": "CE", "auroc": "AUROC", "rtd": "RTD", "lr": "learning rate"}


def lower_is_better(metric: str) -> bool:
    """A curve metric named like a loss (``loss``, ``mlm_loss``, ``logit_mse``, ``ce``, ...) is better low."""
    return any(tok in LOWER_IS_BETTER_WORDS for tok in str(metric).lower().split("_"))


def metric_label(metric: str) -> str:
    """``heldout_mlm_loss`` -> ``held-out MLM loss`` (titles and the comparison sentence)."""
    words = str(metric).replace("heldout_", "held-out_").split("_")
    return " ".join(ACRONYMS.get(w.lower(), w) for w in words)


@dataclass(frozen=True)
class Comparison:
    """Which run ends best on ``metric`` and by how much over the next best (``gap`` ≥ 0, in the metric's units)."""

    winner: str
    runner_up: str
    metric: str  # the label used in ``text``, e.g. "held-out MLM loss"
    winner_value: float
    runner_up_value: float
    gap: float
    relative: float  # gap / |runner-up value| (0 when the runner-up is 0)
    higher_is_better: bool
    n_runs: int
    text: str


def compare_runs(values: Mapping[str, float], *, metric: str, higher_is_better: bool) -> Comparison:
    """Rank runs by their final ``values`` (run -> number) and say which ends best and by how much.

    The issue's question for RoBERTa's masking ablation (Liu et al. 2019, §4.1, Table 1 compares static and
    dynamic masking by the score each run ends with); used for the training view's title, its one-line
    summary and the README. Ties are broken by run name, so the sentence is deterministic.

    >>> compare_runs({"mlm-static": 2.344, "mlm-dynamic": 2.113}, metric="held-out MLM loss",
    ...              higher_is_better=False).text
    'mlm-dynamic ends 0.231 lower held-out MLM loss than mlm-static (2.113 vs 2.344, 9.9% lower)'
    """
    finite = {str(k): float(v) for k, v in values.items() if v is not None and math.isfinite(float(v))}
    if len(finite) < 2:
        raise ValueError(f"comparing runs needs ≥ 2 runs with a finite {metric}; got {len(finite)}")
    sign = -1.0 if higher_is_better else 1.0
    ranked = sorted(finite.items(), key=lambda kv: (sign * kv[1], kv[0]))
    (win, wv), (run, rv) = ranked[0], ranked[1]
    gap = abs(wv - rv)
    rel = gap / abs(rv) if rv else 0.0
    if gap == 0:
        text = f"{win} and {run} end level on {metric} ({wv:.4g})"
    else:
        word = "higher" if higher_is_better else "lower"
        text = f"{win} ends {gap:.3g} {word} {metric} than {run} ({wv:.4g} vs {rv:.4g}, {rel:.1%} {word})"
    if len(finite) > 2:
        text += f"; {run} is the next best of {len(finite)} runs"
    return Comparison(winner=win, runner_up=run, metric=metric, winner_value=wv, runner_up_value=rv, gap=gap,
                      relative=rel, higher_is_better=higher_is_better, n_runs=len(finite), text=text)


def heldout_matches(metric: str, primary: str, curve_metrics: Iterable[str]) -> bool:
    """Whether a run's held-out ``primary`` metric measures the plotted training-curve ``metric``.

    Same name, or ``heldout_<metric>``; and a held-out ``*_loss`` matches the curve ``loss`` when the curve
    logs no loss term of its own (the training loss is that one objective, e.g. MLM cross-entropy for
    ``mlm-dynamic`` / ``mlm-static``; SpanBERT's ``loss`` = MLM + SBO does not match a held-out MLM loss).
    """
    primary, metric = str(primary), str(metric)
    if primary in (metric, f"heldout_{metric}"):
        return True
    terms = [m for m in curve_metrics if "loss" in str(m) and m != "loss"]
    return metric == "loss" and primary.startswith("heldout_") and primary.endswith("_loss") and not terms


def ema(values: Sequence[float], weight: float) -> np.ndarray:
    """TensorBoard-style exponential moving average, debiased (the first points are not pulled to 0)."""
    if not (0.0 <= weight < 1.0) or not math.isfinite(weight):
        raise ValueError(f"smoothing must be in [0, 1), got {weight}")
    out, acc = np.empty(len(values)), 0.0
    for i, v in enumerate(values):
        acc = weight * acc + (1.0 - weight) * float(v)
        out[i] = acc / (1.0 - weight ** (i + 1))
    return out


def _run_info(runs: pd.DataFrame | None) -> dict[str, dict]:
    if runs is None or runs.empty:
        return {}
    return {str(r["run"]): r for r in runs.to_dict("records")}


def _score_label(run: Mapping, *, task: bool = False) -> str:
    """How a run's held-out score is named: ``held-out MLM loss``, ``dev accuracy`` (+ `` (sst2)``)."""
    primary = str(run["primary_metric"])
    if primary.startswith("heldout_"):
        return metric_label(primary)
    return f"{run['split']} {metric_label(primary)}" + (f" ({run['task']})" if task else "")


def run_comparison(curves: pd.DataFrame, runs: pd.DataFrame | None = None, *, metric: str = "loss") -> Comparison:
    """The comparison of the runs in ``curves``: by their held-out score when every run has one on the same
    task and metric (the number the recipes report), else by the last logged value of the curve ``metric``."""
    names = list(dict.fromkeys(curves["run"]))
    info = _run_info(runs)
    held = [info.get(n) for n in names]
    if held and all(h is not None and pd.notna(h.get("score")) for h in held) and \
            len({(h["task"], h["split"], h["primary_metric"]) for h in held}) == 1:
        h = held[0]
        return compare_runs({n: float(i["score"]) for n, i in zip(names, held)}, metric=_score_label(h, task=True),
                            higher_is_better=bool(h["higher_is_better"]))
    d = curves[curves["metric"] == metric].sort_values("step", kind="stable")
    last = d.groupby("run", sort=False)["value"].last()
    return compare_runs(last.to_dict(), metric=f"final training {metric_label(metric)}",
                        higher_is_better=not lower_is_better(metric))


def training_curves_figure(curves: pd.DataFrame, *, metric: str = "loss", x: str = "step", smooth: float = 0.0,
                           runs: pd.DataFrame | None = None) -> go.Figure:
    """One line per run of the training ``curves`` (long form of ``evaluation.results.training_curves``).

    ``x``: ``step`` or ``seconds`` (wall time). ``smooth``: EMA weight in [0, 1) (the raw curve stays, faint).
    With ``runs`` (``results.training_runs``), each run's held-out score is in its legend entry and is drawn
    as a star at its last point when it measures the plotted metric (:func:`heldout_matches`). A loss that
    spans more than one decade is drawn on a log axis. The title is :func:`run_comparison`'s sentence.
    """
    if x not in ("step", "seconds"):
        raise ValueError(f"x must be 'step' or 'seconds', got {x!r}")
    if curves is None or curves.empty:
        raise ValueError("no training curves to draw")
    logged = sorted(set(curves["metric"]))
    d = curves[curves["metric"] == metric].dropna(subset=[x, "value"])
    if d.empty:
        raise ValueError(f"no selected run logs {metric!r} against {x}; logged: {', '.join(logged)}")
    ema(np.zeros(1), smooth)  # validates the weight before drawing anything
    info = _run_info(runs)
    colors = plotly.colors.qualitative.Plotly
    fig, ys, markers = go.Figure(), [], {}
    for i, (run, g) in enumerate(d.sort_values(["run", "step"], kind="stable").groupby("run", sort=False)):
        color, raw = colors[i % len(colors)], g["value"].to_numpy(float)
        h = info.get(run)
        scored = h is not None and pd.notna(h.get("score"))
        name = f"{run} ({_score_label(h)} {float(h['score']):.4g})" if scored else str(run)
        if smooth > 0:
            fig.add_scatter(x=g[x], y=raw, mode="lines", name=f"{run} (raw)", legendgroup=run, showlegend=False,
                            line=dict(color=color, width=1), opacity=0.3, hoverinfo="skip")
        line = ema(raw, smooth) if smooth > 0 else raw
        fig.add_scatter(x=g[x], y=line, mode="lines", name=name, legendgroup=run, line=dict(color=color, width=2),
                        hovertemplate=f"{run}<br>{x} %{{x}}<br>{metric} %{{y:.4g}}<extra></extra>")
        ys.extend(raw)
        run_metrics = set(curves.loc[curves["run"] == run, "metric"])
        if scored and heldout_matches(metric, h["primary_metric"], run_metrics):
            markers[run] = float(h["score"])
            fig.add_scatter(x=[g[x].iloc[-1]], y=[markers[run]], mode="markers", name=f"{run} held-out",
                            legendgroup=run, showlegend=False,
                            marker=dict(symbol="star", size=14, color=color, line=dict(width=1, color="black")),
                            hovertemplate=f"{run}: held-out {h['primary_metric']} %{{y:.4g}}<extra></extra>")
    ys.extend(markers.values())
    positive = [v for v in ys if v > 0]
    log_y = bool(lower_is_better(metric) and len(positive) == len(ys) and max(ys) / min(ys) > 10)
    names = list(dict.fromkeys(d["run"]))
    try:
        comparison = run_comparison(curves[curves["run"].isin(names)], runs, metric=metric).text
    except ValueError:  # one run: nothing to compare
        comparison = ""
    title = comparison or f"{names[0]}: training {metric_label(metric)}"
    fig.update_layout(title=dict(text=title, font=dict(size=14)), xaxis_title="optimizer step" if x == "step"
                      else "wall time (s)", yaxis=dict(title=metric_label(metric), type="log" if log_y else "linear"),
                      legend=dict(orientation="h", yanchor="top", y=-0.2, x=0), height=460,
                      meta={"runs": names, "metric": metric, "x": x, "log_y": log_y, "comparison": comparison,
                            "heldout_markers": markers})
    return fig
