"""``--seeds K``: run one recipe K times with consecutive seeds, one leaderboard row with a 95% interval over seeds.

Encoder fine-tuning is seed-sensitive (RTE and CoLA move by several points between seeds; Dodge et al. 2020,
"Fine-Tuning Pretrained Language Models: Weight Initializations, Data Orders, and Early Stopping"): a
bootstrap interval over the dev examples of one run does not see that variance. ``--seeds K`` trains seeds
``s, s+1, …, s+K−1`` (``s`` = ``--seed``, else the recipe's default) with every other setting equal, all under
one ``run_name``, each in its own checkpoint directory ``<models_dir>/seeds/<run_name>/seed-<s>`` (or
``<--output>/seed-<s>``), so no served or shipped checkpoint is ever overwritten. Each run writes its own result
record (``training.config.seed`` tells them apart); the Leaderboard (:mod:`evaluation.seeds`) folds the runs of
one setting into one row: the mean, the standard deviation and the Student-t 95% interval over seeds.

    python -m bertvariants.train glue --seeds 3 --set task=rte --set run_name=glue-rte-s3
"""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path
from typing import Callable

from evaluation import results
from evaluation.seeds import SeedSummary, summarize

from ..checks import number
from . import load, recipe, run_recipe

SEEDS_DIR = "seeds"  # under the models directory: <models_dir>/seeds/<run_name>/seed-<s>
MAX_SEEDS = 100


def default_seed(name: str) -> int:
    """The recipe config's default ``seed``."""
    _, cls = load(recipe(name))
    return next(f.default for f in fields(cls) if f.name == "seed")


def seed_plan(name: str, overrides: dict, k: int, *, models_dir: Path) -> list[dict]:
    """The K runs' overrides: seeds s … s+K−1, each with its own output directory and the shared run name.

    >>> [p["seed"] for p in seed_plan("glue", {"run_name": "r", "seed": 5}, 3, models_dir=Path("m"))]
    [5, 6, 7]
    """
    k = number(k, "--seeds", lo=1, hi=MAX_SEEDS, integer=True)
    run_name = overrides.get("run_name")
    if not run_name:
        raise ValueError("--seeds needs --set run_name=NAME: the seeds' runs share that name (one leaderboard row) "
                         "and save under <models_dir>/seeds/NAME/seed-S, never over a served checkpoint")
    first = overrides.get("seed")
    first = default_seed(name) if first is None else int(first)
    base = Path(overrides["output"]) if overrides.get("output") else models_dir / SEEDS_DIR / str(run_name)
    return [{**overrides, "seed": s, "output": str(base / f"seed-{s}")} for s in range(first, first + k)]


def run_seeds(name: str, overrides: dict, k: int, *, progress: bool = True,
              run: Callable = run_recipe, models_dir: Path | None = None) -> tuple[list, SeedSummary]:
    """Run recipe ``name`` once per seed of :func:`seed_plan`; (the runs' reports, the summary of their primary
    metric over seeds). ``run``: the recipe runner (tests pass a fake one)."""
    if models_dir is None:
        from ..serving.manifest import load_manifest

        models_dir = load_manifest().models_dir
    reports = []
    for plan in seed_plan(name, overrides, k, models_dir=models_dir):
        reports.append(run(name, plan, progress=progress))
    scores = [primary_score(r) for r in reports]
    seeds = [p["seed"] for p in seed_plan(name, overrides, k, models_dir=models_dir)]
    return reports, summarize(scores, seeds)


def primary_score(report) -> float:
    """The primary metric of a finished run's result record (``<checkpoint>/result.json``)."""
    record = results.read(Path(report.result_path))
    if record is None or record.primary_value is None:
        raise ValueError(f"{report.result_path}: no readable result record with its primary metric")
    return float(record.primary_value)
