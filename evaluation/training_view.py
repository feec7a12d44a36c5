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

from . import results
from .record import Result
from .leaderboard import split_list
from .plot_style import error_figure, safe_figure
from .training_plots import heldout_verdict, masking_explanation, training_curves_figure

TRAINING_X = ("step", "seconds")
DEFAULT_TRAINING_RUNS = ("mlm-dynamic", "mlm-static")  # issue #6: RoBERTa's static vs dynamic masking
# the papers' claims the variant lab measures at equal compute: label -> the two models (result rows' names)
COMPARISONS = {
    "Static vs dynamic masking (RoBERTa §4.1)": DEFAULT_TRAINING_RUNS,
    "Static vs dynamic masking on the 9M-word corpus (under one epoch)": ("mlm-static-2018", "mlm-dynamic-2018"),
    "RTD vs MLM pretraining, then SST-2 (ELECTRA §3.3)": ("sst2-from-rtd", "sst2-from-mlm"),
    "Span vs token masking, then SQuAD (SpanBERT §5)": ("squad-from-span", "squad-from-mlm"),
}
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
    comparisons: list[str] = ()  # the COMPARISONS whose runs exist (labels)


def pair_runs(runs: pd.DataFrame, models: tuple[str, ...]) -> list[str] | None:
    """The newest runs of ``models`` scored on one task and split and trained on one corpus (a model trained for
    several tasks or on several corpora has several runs); None when they have no such runs."""
    pair = runs[runs["model"].isin(models)]
    for _, g in pair.groupby(["task", "split", "corpus"], sort=False):  # runs are newest first: so are the groups
        if set(g["model"]) == set(models):
            return [g.loc[g["model"] == m, "run"].iloc[0] for m in models]
    return None


def default_training_runs(runs: pd.DataFrame) -> list[str]:
    """The newest mlm-dynamic + mlm-static pair (:func:`pair_runs`), else the two newest runs."""
    return pair_runs(runs, DEFAULT_TRAINING_RUNS) or list(runs["run"])[:2]


def comparisons(runs: pd.DataFrame) -> dict[str, list[str]]:
    """The :data:`COMPARISONS` whose two runs are in the results: label -> runs."""
    found = {label: pair_runs(runs, models) for label, models in COMPARISONS.items()}
    return {label: r for label, r in found.items() if r}


def claim_verdict(label: str, directory: str | os.PathLike | None = None) -> str | None:
    """The held-out verdict of one :data:`COMPARISONS` preset, computed from the records (the sentence the training
    view shows for it, with both runs' 95% intervals), or None while either run is missing."""
    if label not in COMPARISONS:
        raise ValueError(f"unknown comparison {label!r}; known: {', '.join(COMPARISONS)}")
    where = Path(directory) if directory is not None else results_dir()
    runs = results.training_runs(where)
    if runs.empty:
        return None
    pair = pair_runs(runs, COMPARISONS[label])
    if not pair:
        return None
    chosen = with_record_facts(runs.set_index("run").loc[pair].reset_index(), where)
    try:
        return heldout_verdict(chosen).text
    except ValueError:
        return None


def with_record_facts(chosen: pd.DataFrame, directory: str | os.PathLike) -> pd.DataFrame:
    """``chosen`` (rows of ``results.training_runs``) plus what the masking explanation reads from each record:
    ``masking`` (``details.masking``), ``epochs`` (``metrics.epochs``), ``train_data``
    (``training.data.train_blocks``) and the held-out interval ``ci95_low`` / ``ci95_high``."""
    facts = []
    for f in chosen["file"]:
        r = results.read(Path(directory) / f) or Result.from_dict({})
        details = r.details if isinstance(r.details, dict) else {}
        data = (r.training or {}).get("data")
        ci = r.ci95 if isinstance(r.ci95, dict) else {}
        config = (r.training or {}).get("config")
        config = config if isinstance(config, dict) else {}
        facts.append({"masking": details.get("masking"), "epochs": r.metrics.get("epochs"),
                      "train_data": data.get("train_blocks") if isinstance(data, dict) else None,
                      "ci95_low": ci.get("low"), "ci95_high": ci.get("high"),
                      "base_model": config.get("base_model"), "model_path": r.extra.get("model_path"),
                      "settings": {k: config.get(k) for k in FINETUNE_SETTINGS}})
    return pd.concat([chosen.reset_index(drop=True), pd.DataFrame(facts)], axis=1)


def summary(names: list[str], chosen: pd.DataFrame, curves: pd.DataFrame,
            directory: str | os.PathLike | None = None) -> str:
    """The line under the controls: which run wins on which held-out measure and by how much (never across
    measures), then the static-vs-dynamic explanation when such a pair is shown."""
    if len(names) < 2:
        return f"Pick a second run to compare with **{names[0]}**."
    try:
        text = "**Which wins:** " + heldout_verdict(chosen).text
    except ValueError as exc:
        text = f"**No comparison:** {exc}."
    explained = masking_explanation(chosen, curves) or start_explanation(chosen, directory)
    return text + (f"\n\n{explained}" if explained else "")


FINETUNE_SETTINGS = ("steps", "batch_size", "lr", "lora_rank", "max_length", "seed")


def start_explanation(chosen: pd.DataFrame, directory: str | os.PathLike | None = None) -> str | None:
    """For fine-tuned runs of one task that start from different pretrained encoders (``--base-model``) with the
    same fine-tuning settings: the sentence saying that only the start differs, and how each start was
    pretrained (the pretraining run's steps and wall time, read from its own record). None otherwise."""
    if "base_model" not in chosen.columns:
        return None
    for (_task, _split), g in chosen.groupby(["task", "split"], sort=False):
        g = g[g["base_model"].notna()]
        if len(g) < 2 or len(set(g["base_model"])) < 2:
            continue
        a, b = g.iloc[0], g.iloc[1]
        differ = [k for k in FINETUNE_SETTINGS if a["settings"].get(k) != b["settings"].get(k)]
        if differ:
            return (f"**Not an equal fine-tune:** {a['run']} and {b['run']} differ in {', '.join(differ)} as well as "
                    "their start, so the difference is not the pretraining's alone.")
        st = a["settings"]
        starts = "; ".join(f"{r['run']} from `{r['base_model']}`{_pretraining(r['base_model'], directory)}"
                           for r in (a, b))
        return (f"**Equal fine-tuning:** both fine-tuned with the same settings ({_count(st.get('steps'))} steps × "
                f"{_count(st.get('batch_size'))}, lr {_count(st.get('lr'))}, LoRA rank {_count(st.get('lora_rank'))}, "
                f"seed {_count(st.get('seed'))}); only the pretrained start differs: {starts}.")
    return None


def _pretraining(base: str, directory) -> str:
    """", pretrained N steps × B in S s" from the record of the run that saved ``base`` (or "")."""
    where = Path(directory) if directory is not None else results_dir()
    base = str(base).rstrip("/")
    for f, r in results.training_records(where):
        path = str(r.extra.get("model_path") or "").rstrip("/")
        if path and (base == path or base.startswith(path + "/")):
            t = r.training
            c = t.get("config") or {}
            return (f" (pretrained {_count(t.get('steps'))} steps × {_count(c.get('batch_size'))} blocks of "
                    f"{_count(c.get('max_length'))} tokens in {_count(round(float(t.get('seconds') or 0)))} s, "
                    f"run {r.model})")
    return ""


def _count(value) -> str:
    try:
        return f"{float(value):g}"
    except (TypeError, ValueError):
        return "?"


def training_view(selected, metric: str | None, x: str, smooth: float, *, keep_going: bool = False,
                  directory: str | os.PathLike | None = None, colors: Mapping[str, str] | None = None) -> TrainingView:
    """The curves of the chosen training runs (default :func:`default_training_runs`) and which ends best.

    ``keep_going``: when the chosen runs do not log ``metric`` (the UI just changed the runs), fall back to
    ``loss`` instead of refusing (the API refuses: it names the metrics that exist). ``colors``: run -> colour
    (default: a hue of its own per run, :func:`evaluation.training_plots.run_colors`)."""
    where = Path(directory) if directory is not None else results_dir()
    runs = results.training_runs(where)
    if runs.empty:
        return TrainingView(error_figure("No training runs yet"), NO_TRAINING_RUNS, [], [], ["loss"], "loss", [])
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
    fig = safe_figure(training_curves_figure, curves, metric=metric, x=x, smooth=smooth, runs=chosen, colors=colors)
    return TrainingView(fig, summary(names, chosen, curves, where), known, names, logged, metric,
                        list(comparisons(runs)))

