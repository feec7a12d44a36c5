"""The Leaderboard's training view, as data: which runs, which curve, which run wins on a held-out measure, and
why static masking trains lower yet scores worse held-out (issue #6; figures in :mod:`evaluation.training_plots`).

Pure pandas over :mod:`evaluation.results`; results are read from :func:`bertvariants.paths.results_dir` unless a
``directory`` is given. Bad input raises ValueError with a readable message. Nothing here imports gradio.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

import pandas as pd
import plotly.graph_objects as go

from bertvariants.paths import results_dir

from . import palette, results
from .leaderboard import split_list
from .plot_style import error_figure, safe_figure
from .training_plots import heldout_verdict, masking_explanation, training_curves_figure

TRAINING_X = ("step", "seconds")
DEFAULT_TRAINING_RUNS = ("mlm-dynamic", "mlm-static")  # issue #6: RoBERTa's static vs dynamic masking
MAX_TRAINING_RUNS = 12
NO_TRAINING_RUNS = ("No training runs in the results yet: each variant-lab recipe adds one, e.g. "
                    "`python -m bertvariants.train mlm-dynamic` and `python -m bertvariants.train mlm-static`.")


@dataclass(frozen=True)
class TrainingView:
    """What the training view shows: the figure, the comparison (and the masking explanation), the choices."""

    figure: go.Figure
    summary: str
    runs: list[str]  # every trained run (the run choices)
    chosen: list[str]  # the runs shown, in the order picked
    metrics: list[str]  # the curves the chosen runs log (the curve choices)
    metric: str  # the curve shown


def default_training_runs(runs: pd.DataFrame) -> list[str]:
    """The newest mlm-dynamic + mlm-static runs scored on one task and split and trained on one corpus (a model
    trained for several tasks or on several corpora has several runs), else the two newest runs."""
    pair = runs[runs["model"].isin(DEFAULT_TRAINING_RUNS)]
    for _, g in pair.groupby(["task", "split", "corpus"], sort=False):  # runs are newest first: so are the groups
        if set(g["model"]) == set(DEFAULT_TRAINING_RUNS):
            return [g.loc[g["model"] == m, "run"].iloc[0] for m in DEFAULT_TRAINING_RUNS]
    return list(runs["run"])[:2]


def with_record_facts(chosen: pd.DataFrame, directory: str | os.PathLike) -> pd.DataFrame:
    """``chosen`` (rows of ``results.training_runs``) plus what the masking explanation reads from each record:
    ``masking`` (``details.masking``), ``epochs`` (``metrics.epochs``), ``train_data``
    (``training.data.train_blocks``) and the held-out interval ``ci95_low`` / ``ci95_high``."""
    facts = []
    for f in chosen["file"]:
        r = results.read_result(Path(directory) / f) or {}
        details = r.get("details") if isinstance(r.get("details"), dict) else {}
        data = (r.get("training") or {}).get("data") if isinstance(r.get("training"), dict) else None
        ci = r.get("ci95") if isinstance(r.get("ci95"), dict) else {}
        facts.append({"masking": details.get("masking"), "epochs": (r.get("metrics") or {}).get("epochs"),
                      "train_data": data.get("train_blocks") if isinstance(data, dict) else None,
                      "ci95_low": ci.get("low"), "ci95_high": ci.get("high")})
    return pd.concat([chosen.reset_index(drop=True), pd.DataFrame(facts)], axis=1)


def summary(names: list[str], chosen: pd.DataFrame, curves: pd.DataFrame) -> str:
    """The line under the controls: which run wins on which held-out measure and by how much (never across
    measures), then the static-vs-dynamic explanation when such a pair is shown."""
    if len(names) < 2:
        return f"Pick a second run to compare with **{names[0]}**."
    try:
        text = "**Which wins:** " + heldout_verdict(chosen).text
    except ValueError as exc:
        text = f"**No comparison:** {exc}."
    explained = masking_explanation(chosen, curves)
    return text + (f"\n\n{explained}" if explained else "")


def training_view(selected, metric: str | None, x: str, smooth: float, *, keep_going: bool = False,
                  directory: str | os.PathLike | None = None, colors: Mapping[str, str] | None = None) -> TrainingView:
    """The curves of the chosen training runs (default :func:`default_training_runs`) and which ends best.

    ``keep_going``: when the chosen runs do not log ``metric`` (the UI just changed the runs), fall back to
    ``loss`` instead of refusing (the API refuses: it names the metrics that exist). ``colors``: model -> colour
    (default: :func:`evaluation.palette.color_map` of the whole board, as every Leaderboard figure)."""
    where = Path(directory) if directory is not None else results_dir()
    runs = results.training_runs(where)
    if runs.empty:
        return TrainingView(error_figure("No training runs yet"), NO_TRAINING_RUNS, [], [], ["loss"], "loss")
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
    chosen = with_record_facts(runs.set_index("run").loc[names].reset_index(), where)  # in the order picked
    curves = results.training_curves(where, files=chosen["file"])
    logged = sorted(set(curves["metric"]), key=lambda m: (m != "loss", m))
    metric = metric or "loss"
    if metric not in logged:
        if not (keep_going and logged):
            raise ValueError(f"the chosen runs log no curve {str(metric)[:60]!r}; "
                             f"choose one of {', '.join(logged) or '(none: their curves are missing)'}")
        metric = "loss" if "loss" in logged else logged[0]
    colors = colors or palette.color_map(results.leaderboard(where))  # the board's map: one colour per model
    fig = safe_figure(training_curves_figure, curves, metric=metric, x=x, smooth=smooth, runs=chosen, colors=colors)
    return TrainingView(fig, summary(names, chosen, curves), known, names, logged, metric)

