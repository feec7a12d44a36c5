"""The training view's figure and sentences: the variant lab's logged curves (``results.training_curves``), which
run wins on a held-out measure, and why static masking trains lower yet scores worse held-out.

- :func:`heldout_verdict` only ever compares runs scored on the same held-out measure (same task, split and
  primary metric, from their result records): never runs of different tasks, never a training-curve value such
  as the learning rate. Runs alone on their measure are named as not compared.
- :func:`masking_explanation` is RoBERTa's §4.1 comparison read from the records of an ``mlm-static`` /
  ``mlm-dynamic`` pair: every number in it comes from the records and curves.
- :func:`training_curves_figure` draws one line per run (EMA smoothing, log axis for losses spanning a decade,
  the held-out score as a star at the last step when it measures the plotted curve) in the Leaderboard's colours.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable, Mapping, Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from . import palette
from .plot_style import finish, title

LOWER_IS_BETTER_WORDS = ("loss", "mse", "ce", "perplexity", "nll")  # metric-name tokens of a lower-is-better curve
ACRONYMS = {"mlm": "MLM", "sbo": "SBO", "mse": "MSE", "ce": "CE", "auroc": "AUROC", "rtd": "RTD", "lr": "learning rate"}
DASHES = ("solid", "dash", "dot", "dashdot", "longdash", "longdashdot")
FINAL_POINTS = 5  # a run's final training loss = the mean of its last logged points (one step's loss is noisy)


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
    metric: str  # the label used in ``text``, e.g. "held-out MLM loss on wikipedia-mlm heldout"
    winner_value: float
    runner_up_value: float
    gap: float
    relative: float  # gap / |runner-up value| (0 when the runner-up is 0)
    higher_is_better: bool
    n_runs: int
    text: str


def compare_runs(values: Mapping[str, float], *, metric: str, higher_is_better: bool) -> Comparison:
    """Rank runs by their final ``values`` (run -> number) and say which ends best and by how much.

    RoBERTa's masking ablation (Liu et al. 2019, §4.1, Table 1) compares static and dynamic masking by the score
    each run ends with. Ties are broken by run name, so the sentence is deterministic. The caller guarantees
    that the values measure one thing (:func:`heldout_verdict`).

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


def score_label(run: Mapping, *, where: bool = False) -> str:
    """How a run's held-out score is named: ``held-out MLM loss``, ``dev accuracy``; with ``where``, the task and
    split it was measured on (``held-out MLM loss on wikipedia-mlm heldout``, ``accuracy on sst2 dev``)."""
    primary = str(run["primary_metric"])
    if where:
        return f"{metric_label(primary)} on {run['task']} {run['split']}"
    return metric_label(primary) if primary.startswith("heldout_") else f"{run['split']} {metric_label(primary)}"


@dataclass(frozen=True)
class HeldoutVerdict:
    """The chosen runs' comparisons, one per held-out measure that two or more of them share."""

    comparisons: list[Comparison]
    not_compared: list[str]  # "run (measure)" of runs no other chosen run shares a measure with
    text: str  # the sentence(s) the view shows


def heldout_verdict(runs: pd.DataFrame) -> HeldoutVerdict:
    """Compare ``runs`` (rows of ``results.training_runs``) by held-out score, within each (task, split, primary
    metric) only. ValueError when no two runs share a measure (the text says which measures they have)."""
    scored = runs[pd.to_numeric(runs["score"], errors="coerce").notna()] if len(runs) else runs
    groups = [g for _, g in scored.groupby(["task", "split", "primary_metric"], sort=False)]
    found = [g for g in groups if len(g) >= 2]
    alone = [f"{g['run'].iloc[0]} ({score_label(g.iloc[0], where=True)})" for g in groups if len(g) < 2]
    if not found:
        if len(alone) >= 2:
            raise ValueError("the chosen runs were scored on different held-out measures (" + "; ".join(alone) +
                             "), so none can win on another's: pick runs of the same task and split")
        raise ValueError("comparing runs needs ≥ 2 runs with a held-out score on the same task and split")
    found.sort(key=lambda g: -len(g))
    comps = [compare_runs(dict(zip(g["run"], g["score"].astype(float))), metric=score_label(g.iloc[0], where=True),
                          higher_is_better=bool(g["higher_is_better"].iloc[0])) for g in found]
    text = "; ".join(c.text + _overlap(runs, c) for c in comps)
    if alone:
        text += " (not compared, no other chosen run on the same held-out measure: " + "; ".join(alone) + ")"
    return HeldoutVerdict(comps, alone, text)


def _overlap(runs: pd.DataFrame, c: Comparison) -> str:
    """How the winner's and the runner-up's 95% intervals sit (when ``runs`` has ``ci95_low`` / ``ci95_high``)."""
    if not {"ci95_low", "ci95_high"} <= set(runs.columns):
        return ""
    rows = runs.set_index("run")
    try:
        (a0, a1), (b0, b1) = (pd.to_numeric(rows.loc[r, ["ci95_low", "ci95_high"]]).astype(float)
                              for r in (c.winner, c.runner_up))
    except (KeyError, TypeError, ValueError):
        return ""
    if not all(map(math.isfinite, (a0, a1, b0, b1))):
        return ""
    if a0 <= b1 and b0 <= a1:
        return f"; their 95% intervals ({a0:.4g}–{a1:.4g} and {b0:.4g}–{b1:.4g}) overlap: not a clear difference"
    return f"; their 95% intervals ({a0:.4g}–{a1:.4g} and {b0:.4g}–{b1:.4g}) do not overlap"


def run_comparison(runs: pd.DataFrame) -> Comparison:
    """The comparison of the largest group of ``runs`` that share a held-out measure (:func:`heldout_verdict`)."""
    return heldout_verdict(runs).comparisons[0]


def final_loss(curves: pd.DataFrame, run: str, *, metric: str = "loss", last: int = FINAL_POINTS) -> float:
    """The mean of the last ``last`` logged values of ``run``'s ``metric`` curve (NaN when it logs none)."""
    d = curves[(curves["run"] == run) & (curves["metric"] == metric)].sort_values("step", kind="stable")
    return float(d["value"].tail(last).mean()) if len(d) else float("nan")


def masking_explanation(runs: pd.DataFrame, curves: pd.DataFrame) -> str | None:
    """Why static masking trains lower yet scores worse held-out (RoBERTa §4.1), from the records of a static
    and a dynamic run of the same task and split; None when ``runs`` hold no such pair.

    ``runs`` needs the columns of ``results.training_runs`` plus ``masking`` (the record's ``details.masking``),
    ``epochs`` and ``train_data`` (``training.data.train_blocks``); ``curves`` the runs' logged curves.
    """
    if "masking" not in runs.columns:
        return None
    for (_task, _split), g in runs.groupby(["task", "split"], sort=False):
        static, dynamic = g[g["masking"] == "static"], g[g["masking"] == "dynamic"]
        if len(static) and len(dynamic):
            return _explain(static.iloc[0], dynamic.iloc[0], curves)
    return None


def _count(value) -> str:
    try:
        return f"{float(value):g}"
    except (TypeError, ValueError):
        return "?"


def _same(a, b) -> bool:
    missing = [v is None or (isinstance(v, float) and math.isnan(v)) for v in (a, b)]
    return all(missing) or (not any(missing) and a == b)


def _explain(s: Mapping, d: Mapping, curves: pd.DataFrame) -> str:
    S, D = s["run"], d["run"]
    same_steps, same_data = _same(s.get("steps"), d.get("steps")), _same(s.get("train_data"), d.get("train_data"))
    if not (same_steps and same_data):
        what = [] if same_steps else [f"{_count(s.get('steps'))} vs {_count(d.get('steps'))} steps"]
        if not same_data:
            what.append(f"training data {s.get('train_data')} vs {d.get('train_data')}")
        return (f"**Static vs dynamic masking:** {S} and {D} are not RoBERTa's §4.1 comparison as recorded "
                f"({', '.join(what)}): only the masking may differ, so their losses say nothing about it. Retrain "
                f"one with the other's settings (`python -m bertvariants.train {s.get('recipe') or S}` or "
                f"`{d.get('recipe') or D}`).")
    ts, td = final_loss(curves, S), final_loss(curves, D)
    hs, hd = float(s["score"]), float(d["score"])
    up = bool(s.get("higher_is_better"))
    measure = score_label(s)
    held_worse = hs < hd if up else hs > hd
    train = f"training loss {ts:.3f} vs {td:.3f} (mean of the last {FINAL_POINTS} logged steps)"
    held = f"{measure} {hs:.3f} vs {hd:.3f}"
    epochs = _count(s.get("epochs"))
    seen = f" ({float(epochs):.1f} epochs here)" if epochs not in ("?", "nan", "inf") else ""
    why = (f"static masking draws each training sequence's mask once, in preprocessing, so every time the model "
           f"sees a sequence{seen} it sees the same masked positions (RoBERTa's static baseline: at most 10 fixed "
           "masks per sequence) and can memorise them")
    if math.isfinite(ts) and math.isfinite(td) and ts < td and held_worse:
        return (f"**Why {S} trains lower but scores worse held-out:** its {train} is below {D}'s, yet its {held} "
                f"is worse. {why[0].upper() + why[1:]}: its training loss falls below dynamic's. The held-out loss "
                "uses fresh masks on documents never trained on, where memorised masks do not help, and dynamic "
                "masking (a new mask each time a sequence is seen) generalises better.")
    return (f"**Static vs dynamic masking:** {S} vs {D}: {train}; {held}. RoBERTa §4.1 expects the static run to "
            f"train lower ({why}) yet score worse held-out; here "
            + ("it does not train lower" if not (math.isfinite(ts) and ts < td) else "it also scores better held-out")
            + ", so these runs show no memorisation gap (it grows with the epochs each sequence is repeated).")


# one hue per run of the training view (Okabe & Ito's colour-blind-safe set without its black, then Dark24)
RUN_HUES = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442") \
    + tuple(palette.FAMILY_HUES)


def run_colors(runs: Sequence[str]) -> dict[str, str]:
    """run -> a hue of its own, in the order given (the first run blue, the second orange, ...)."""
    return {str(r): RUN_HUES[k % len(RUN_HUES)] for k, r in enumerate(runs)}


def _trace_name(run: str, h: Mapping | None) -> str:
    if h is None or pd.isna(h.get("score")):
        return str(run)
    return f"{run} ({score_label(h)} {float(h['score']):.4g})"


def training_curves_figure(curves: pd.DataFrame, *, metric: str = "loss", x: str = "step", smooth: float = 0.0,
                           runs: pd.DataFrame | None = None, colors: Mapping[str, str] | None = None) -> go.Figure:
    """One line per run of the training ``curves`` (long form of ``evaluation.results.training_curves``).

    ``x``: ``step`` or ``seconds`` (wall time). ``smooth``: EMA weight in [0, 1) (the raw curve stays, faint).
    With ``runs`` (``results.training_runs``), each run's held-out score is in its legend entry and is drawn
    as a star at its last point when it measures the plotted metric (:func:`heldout_matches`). A loss that
    spans more than one decade is drawn on a log axis. The title is :func:`heldout_verdict`'s sentence (runs on
    different held-out measures are never compared). Each run has its own hue (:func:`run_colors`; ``colors``:
    run -> colour overrides): the board's model colours are shades of one hue within a family, too close to tell
    two curves of one variant apart.
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
    info = {str(r["run"]): r for r in runs.to_dict("records")} if runs is not None and len(runs) else {}
    hues = {**run_colors(list(dict.fromkeys(d["run"]))), **(colors or {})}
    fig, ys, markers = go.Figure(), [], {}
    for k, (run, g) in enumerate(d.sort_values(["run", "step"], kind="stable").groupby("run", sort=False)):
        dash = DASHES[k % len(DASHES)]  # and a dash per run: curves stay apart in grey print too
        color, raw, h = hues[run], g["value"].to_numpy(float), info.get(run)
        if smooth > 0:
            fig.add_scatter(x=g[x], y=raw, mode="lines", name=f"{run} (raw)", legendgroup=run, showlegend=False,
                            line=dict(color=color, width=1), opacity=0.3, hoverinfo="skip")
        fig.add_scatter(x=g[x], y=ema(raw, smooth) if smooth > 0 else raw, mode="lines", name=_trace_name(run, h),
                        legendgroup=run, line=dict(color=color, width=2.5, dash=dash),
                        hovertemplate=f"{run}<br>{x} %{{x}}<br>{metric} %{{y:.4g}}<extra></extra>")
        ys.extend(raw)
        if h is not None and pd.notna(h.get("score")) and \
                heldout_matches(metric, h["primary_metric"], set(curves.loc[curves["run"] == run, "metric"])):
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
        found = heldout_verdict(runs[runs["run"].isin(names)]).comparisons if runs is not None else []
        comparison = "; ".join(c.text for c in found)
    except ValueError:  # one run, or runs on different held-out measures: nothing is compared
        comparison = ""
    head = comparison or f"Training {metric_label(metric)} of {', '.join(names[:3])}" + (" …" if len(names) > 3 else "")
    finish(fig, height=480, title=title(head), xaxis_title="optimizer step" if x == "step" else "wall time (s)",
           yaxis=dict(title=metric_label(metric), type="log" if log_y else "linear"),
           meta={"runs": names, "metric": metric, "x": x, "log_y": log_y, "comparison": comparison,
                 "heldout_markers": markers})
    return fig
