"""What a run name such as ``cmp-rtd`` or ``glue-rte-full-200st-seeds`` means, read from the run's own result record.

A measured row's name is whatever its recipe was called (``--run-name``); its result file says what it is: the
variant lab's ``training`` block (recipe, steps × batch, learning rate, LoRA rank or all weights, the pretrained
start, the generator's size), the seeds folded into the row, and ``details.method`` (how the harness scored it).
A paper's row is explained by its citation. Nothing is written by hand per name.

>>> note = describe_record(Result.from_dict({"task": "wikipedia-rtd", "model": "cmp-rtd", "split": "heldout",
...     "variant": "ELECTRA", "details": {"method": "AUROC of P(replaced)"}, "training": {"recipe": "electra",
...     "steps": 400, "config": {"batch_size": 16, "lr": 1e-4, "lora_rank": 0, "generator_multiplier": 0.25}}}))
>>> note.split("; ")
['ELECTRA trained here (recipe electra): 400 steps × batch 16, lr 0.0001, all weights, generator 0.25× the \
discriminator', 'scored by AUROC of P(replaced)']
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Iterable

import pandas as pd

from bertvariants.paths import results_dir

from . import results
from .record import Result

METHOD_CHARS = 110  # how much of the harness's method sentence a note keeps


def _num(value) -> str | None:
    try:
        x = float(value)
    except (TypeError, ValueError):
        return None
    return f"{x:g}" if math.isfinite(x) else None


def _short(text, n: int = METHOD_CHARS) -> str:
    text = " ".join(str(text or "").split())
    return text if len(text) <= n else text[: n - 1].rstrip(" ,;") + "…"


def _training(t: dict) -> str:
    """``recipe electra: 400 steps × batch 16, lr 0.0001, all weights, from models/cmp-mlm, ...``"""
    c = t.get("config") if isinstance(t.get("config"), dict) else {}
    parts = []
    steps, batch = _num(t.get("steps") or c.get("steps")), _num(c.get("batch_size"))
    if steps:
        parts.append(f"{steps} steps" + (f" × batch {batch}" if batch else ""))
    if _num(c.get("lr")):
        parts.append(f"lr {_num(c.get('lr'))}")
    rank = _num(c.get("lora_rank"))
    if rank is not None:
        parts.append("all weights" if rank == "0" else f"LoRA rank {rank}")
    if c.get("base_model"):
        parts.append(f"from {c['base_model']}")
    if _num(c.get("generator_multiplier")):
        parts.append(f"generator {_num(c['generator_multiplier'])}× the discriminator")
    data = t.get("data") if isinstance(t.get("data"), dict) else {}
    if data.get("corpus"):
        parts.append(f"on {Path(str(data['corpus'])).name}")
    recipe = t.get("recipe")
    return f"trained here (recipe {recipe})" + (": " + ", ".join(parts) if parts else "")


def describe_record(record: Result, *, seeds: Iterable | None = None) -> str:
    """One sentence saying what the run of ``record`` (:func:`evaluation.results.read`) is: trained here and how,
    or evaluated as shipped; with ``seeds`` (the seeds folded into its row), that the score is their mean."""
    variant = str(record.variant or "").strip()
    t = record.training
    head = (f"{variant} " if variant else "") + (_training(t) if t else "checkpoint evaluated as is (not trained here)")
    seeds = [s for s in (seeds or ()) if s is not None]
    if len(seeds) >= 2:
        head += f"; mean of {len(seeds)} seeds ({', '.join(str(s) for s in seeds)})"
    details = record.details if isinstance(record.details, dict) else {}
    method = details.get("method")
    return head + (f"; scored by {_short(method)}" if method else "")


def _seeds(row) -> list:
    runs = row.get("seed_scores")
    if isinstance(runs, str) and runs:
        return [part.split(":")[0].strip() for part in runs.split(";")]  # "42: 22.19; 43: 24.41"
    return []


def explain_row(row, directory: str | os.PathLike | None = None) -> str:
    """What a board row is: a paper's number with its citation, or :func:`describe_record` of the measured run's
    result file."""
    if row.get("source") == "paper":
        return f"published number ({row.get('citation') or 'paper'})"
    name = str(row.get("file") or "")
    record = results.read(Path(directory or results_dir()) / Path(name).name) if name else None
    if not record:
        return "measured here (its result file is missing)"
    return describe_record(record, seeds=_seeds(row))


def run_notes(rows: pd.DataFrame, directory: str | os.PathLike | None = None) -> dict[tuple[str, str], str]:
    """(model, task) -> :func:`explain_row` for every row of ``rows`` (a board or a slice of it)."""
    if rows is None or rows.empty:
        return {}
    return {(str(r["model"]), str(r["task"])): explain_row(r, directory) for r in rows.to_dict("records")}


def notes_markdown(rows: pd.DataFrame, directory: str | os.PathLike | None = None, *, title: str = "") -> str:
    """A legend of the run names in ``rows``: ``**name** — what it is``, measured runs first."""
    if rows is None or rows.empty:
        return ""
    ordered = pd.concat([rows[rows["source"] != "paper"], rows[rows["source"] == "paper"]])
    seen, lines = set(), []
    for r in ordered.to_dict("records"):
        if r["model"] in seen:
            continue
        seen.add(r["model"])
        lines.append(f"- **{r['model']}** — {explain_row(r, directory)}")
    return (f"{title}\n\n" if title else "") + "\n".join(lines)


def training_notes(runs: Iterable[str], directory: str | os.PathLike | None = None) -> str:
    """The legend of the training view's runs (labels of ``results.training_runs``): what each one is."""
    where = Path(directory or results_dir())
    table = results.training_runs(where)
    files = dict(zip(table["run"], table["file"]))
    lines = []
    for run in runs:
        record = results.read(where / files[run]) if run in files else None
        lines.append(f"- **{run}** — {describe_record(record) if record else 'not in the results'}")
    return "\n".join(lines)
