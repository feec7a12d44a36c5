"""What a recipe leaves behind: the checkpoint, its loss curve, its model card and its result record.

    save_pretrained + tokenizer (:func:`save_checkpoint`) -> evaluation harness (:func:`harness`)
    -> loss-curve CSV + model card (README.md) + result JSON (:func:`finish`)

The result is the evaluation harness's own record (the same code path as ``python -m evaluation run`` and the
Leaderboard) with the training provenance attached, written atomically to ``<checkpoint>/result.json`` and to
the results directory (:func:`bertvariants.paths.results_dir`). Paths in records are portable
(:func:`bertvariants.paths.portable_path`): ``models/<name>``, ``shared/data/<file>``.
"""

from __future__ import annotations

import csv
import shutil
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from ..io import atomic_directory, atomic_write_json, sha256_file
from ..paths import (
    REPO_ROOT,
    SHARED_DATA_LABEL,
    portable_path,
    portable_text,
    results_dir,
    shared_data_dir,
)
from ..serving.shipped import packaged_sha256
from .config import TrainConfig
from .loop import FitResult

# settings with their own flag on ``python -m bertvariants.train``; every other one is ``--set name=value``
CLI_FLAGS = ("steps", "scale", "seed", "batch_size", "lr", "max_length", "log_every", "eval_limit", "max_minutes")
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json")


def write_curve(path: Path, curve: list[dict]) -> Path:
    """Loss curve as CSV (columns: step, loss, <recipe logs>, lr, seconds)."""
    cols: list[str] = []
    for row in curve:
        cols += [k for k in row if k not in cols]
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=cols)
        w.writeheader()
        w.writerows(curve)
    return path


def save_checkpoint(model, tokenizer, out: Path) -> Path:
    """``save_pretrained`` (safetensors) + the tokenizer files, so ``from_pretrained(out)`` loads it offline."""
    with atomic_directory(out) as tmp:  # a Ctrl-C mid-save never leaves config.json beside half the weights
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
    return out


def copy_tokenizer(src: Path, dst: Path) -> None:
    """The tokenizer files of one saved checkpoint, copied beside another (ELECTRA's pair directory)."""
    for name in TOKENIZER_FILES:
        if (src / name).is_file():
            shutil.copy(src / name, dst / name)


@dataclass(frozen=True)
class RunReport:
    """What a recipe returns: where the checkpoint is, the fit, and the measured metrics."""

    recipe: str
    output: Path
    fit: FitResult
    metrics: dict[str, float]
    result_path: Path


def data_lines(data: dict[str, str]) -> str:
    """The card's data list: each input with the sha256 of the file it was read from (when it is a file)."""
    lines = []
    for k, v in data.items():
        v = str(v)
        shared = v.startswith(SHARED_DATA_LABEL + "/")
        if shared:
            path = shared_data_dir() / v[len(SHARED_DATA_LABEL) + 1:]
        else:
            path = Path(v) if Path(v).is_absolute() else REPO_ROOT / v
        digest = f" (sha256 {sha256_file(path)})" if path.is_file() else ""
        lines.append(f"- {k}: `{portable_text(str(v))}`{digest}")
    return "\n".join(lines)


def harness_line(result: dict) -> str:
    """The harness's headline for the card: task, split, n, the primary metric with its 95% CI, data sha256."""
    ci = result.get("ci95") or {}
    interval = (f" (95% CI {ci['low']:.2f}–{ci['high']:.2f}, {ci.get('method', 'bootstrap')}, "
                f"{ci.get('resamples')} resamples)") if ci else ""
    data = f"; data sha256 {result['data_sha256']}" if result.get("data_sha256") else ""
    return (f"Harness (`python -m evaluation run --task {result.get('task')} --model <this folder>`): "
            f"{result.get('task')} {result.get('split')}, n = {result.get('n')}, {result.get('primary_metric')} "
            f"**{float(result.get('score', float('nan'))):.2f}**{interval}{data}.")


def model_card(*, title: str, recipe: str, paper: str, cfg: TrainConfig, fit: FitResult, metrics: dict[str, float],
               data: dict[str, str], notes: str = "", result: dict | None = None) -> str:
    """README.md for a trained checkpoint: what it is, data (with sha256), steps, seconds, metrics with their CI,
    seed, the base model's sha256, how to rebuild."""
    rows = "\n".join(f"| {k} | {v:.4f} |" for k, v in metrics.items())
    data_rows = data_lines(data)
    headline = harness_line(result) + "\n\n" if result and "score" in result else ""
    base_sha = "" if cfg.base_model else f" (model.safetensors sha256 {packaged_sha256()})"
    def shown(v):  # as the CLI parses it back (YAML): a tuple as a flow list without spaces
        return "[" + ",".join(map(str, v)) + "]" if isinstance(v, (tuple, list)) else v

    overrides = " ".join((f"--{f.name.replace('_', '-')} {shown(getattr(cfg, f.name))}" if f.name in CLI_FLAGS
                          else f"--set {f.name}={shown(getattr(cfg, f.name))}") for f in fields(cfg)
                         if getattr(cfg, f.name) != f.default and f.name not in ("output", "data", "base_model"))
    stopped = f" (stopped early; schedule planned for {fit.planned_steps})" if fit.planned_steps > fit.steps else ""
    autocast = " autocast, fp32 weights" if fit.precision == "bf16" else ""
    schedule = (f"{fit.steps}{stopped} × batch {cfg.batch_size} × {fit.processes} process(es), peak lr {cfg.lr}, "
                f"warm-up {cfg.warmup:.0%}, max length {cfg.max_length}")
    return f"""---
library_name: transformers
tags: [bertvariants, {recipe}]
---
# {title}

Trained by `python -m bertvariants.train {recipe}{(' ' + overrides) if overrides else ''}` (bertvariants variant lab).
Implements: {paper}.

{notes}

## Training
- base model: `{cfg.base_model or 'sentence-transformers/all-MiniLM-L6-v2 (packaged)'}`{base_sha}
- steps: {schedule}
- wall time: {fit.seconds:.0f} s on `{fit.device}` ({fit.precision}{autocast})
- seed: {cfg.seed} (reruns with the same seed reproduce on the same hardware)
- loss: {fit.first_loss:.4f} (first logged) → {fit.last_loss:.4f} (last logged); curve in `loss_curve.csv`

## Data
{data_rows}

## Evaluation (evaluation results format, `result.json`; the Leaderboard reads it)
{headline}| metric | value |
|---|---|
{rows}
"""


def harness(task: str, checkpoint: Path, *, data: Path | None = None, split: str | None = None,
            limit: int | None = None, options: dict | None = None) -> dict:
    """Score a saved checkpoint with the evaluation harness (``evaluation.runner.run``: the same code path as
    ``python -m evaluation run`` and the Leaderboard). Returns its result record (metrics in points).
    ``options``: the benchmark's split settings (:func:`heldout_options` for the held-out pretraining tasks)."""
    from evaluation import runner

    evaluation = runner.run(task, str(checkpoint), data=str(data) if data else None, split=split, limit=limit,
                            progress=False, options=options)
    return evaluation.result.to_dict()


def heldout_options(cfg) -> dict:
    """A pretraining recipe's held-out split as the harness's ``wikipedia-*`` options, so that the recipe and
    ``python -m evaluation run --task ... --model <checkpoint>`` score the same blocks with the same masks."""
    return {"heldout_docs": cfg.heldout_docs, "block_tokens": cfg.max_length, "eval_blocks": cfg.eval_blocks}


def portable_config(cfg: TrainConfig) -> dict:
    """The config as a record stores it: no machine paths (the output directory relative to the repository, data
    files relative to the shared data), so results written on one machine read the same on another."""
    return {k: (portable_path(v) if k == "output" else portable_text(v)) if isinstance(v, str) and v else v
            for k, v in asdict(cfg).items()}


def training_record(*, recipe: str, cfg: TrainConfig, fit: FitResult, out: Path, data: dict[str, str]) -> dict:
    """The ``training`` block of a result: recipe, config, steps, time, device, data and the logged curve."""
    return {
        "recipe": recipe, "config": portable_config(cfg),
        "steps": fit.steps, "planned_steps": fit.planned_steps,
        "seconds": round(fit.seconds, 1), "device": fit.device, "precision": fit.precision,
        "processes": fit.processes, "data": {k: portable_text(str(v)) for k, v in data.items()},
        "curve_csv": portable_path(out / "loss_curve.csv"),
        "curve": [{k: (round(v, 6) if isinstance(v, float) else v) for k, v in row.items()} for row in fit.curve],
    }


def amended(result: dict, *, metrics: dict | None = None, details: dict | None = None) -> dict:
    """A harness record with a recipe's own ``metrics`` and ``details`` added (e.g. the untrained head's loss)."""
    return {**result, "metrics": {**result["metrics"], **(metrics or {})},
            "details": {**result.get("details", {}), **(details or {})}}


def finish(*, recipe: str, name: str, title: str, paper: str, cfg: TrainConfig, fit: FitResult, out: Path,
           result: dict, data: dict[str, str], notes: str = "", variant: str = "",
           extra: Sequence[dict] = ()) -> RunReport:
    """Write the loss curve, the model card and the result JSON (``<out>/result.json`` + the Leaderboard's
    results directory) next to an already saved checkpoint. ``result`` is the evaluation record; each of
    ``extra`` (another harness record of the same model, e.g. a second held-out split) gets its own row in the
    results directory with the same model and training block."""
    from evaluation.results import write_result

    write_curve(out / "loss_curve.csv", fit.curve)
    metrics = {k: float(v) for k, v in result["metrics"].items() if v is not None}
    name = cfg.run_name or name
    variant = variant or result.get("variant", "")
    trained = {"model": name, "variant": variant, "model_path": portable_path(out),
               "model_revision": result.get("model_revision", "trained"),
               "training": training_record(recipe=recipe, cfg=cfg, fit=fit, out=out, data=data)}
    record = {**result, **trained}
    (out / "README.md").write_text(model_card(title=title, recipe=recipe, paper=paper, cfg=cfg, fit=fit,
                                              metrics=metrics, data=data, notes=notes, result=result),
                                   encoding="utf-8")  # cards are shipped: data_lines keeps no machine paths
    path = atomic_write_json(out / "result.json", record)
    write_result(record, results_dir())
    for other in extra:
        write_result({**other, **trained}, results_dir())
    return RunReport(recipe=recipe, output=out, fit=fit, metrics=metrics, result_path=path)
