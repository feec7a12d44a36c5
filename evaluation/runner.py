"""Run one benchmark on one model and return its :class:`~evaluation.record.Result` with full provenance.

    model name --(handle.resolve_model: the one resolver, bertvariants.serving)--> ModelHandle
    task key   --(tasks.load)--> Dataset
    EVALUATORS[format](bench, handle, dataset) --> Outcome (metrics, bootstrap function, per-example records)
    record.make_result --> Result (metrics in points, 95% CI, data sha256, model revision, versions)

How each format is scored is in :mod:`evaluation.evaluators`. Under ``accelerate launch`` the forward passes are
split across the processes (:mod:`evaluation.parallel`); the result records ``num_processes`` and the inputs each
process encoded (``inputs_per_process``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from bertvariants.io import sha256_path
from bertvariants.paths import portable_path

from . import parallel, tasks
from .evaluators import EVALUATORS
from .handle import resolve_model
from .metrics.pretraining import HELDOUT_DOCS, HELDOUT_DOCS_BY_SPLIT, heldout_config
from .record import Result, make_result

DEFAULT_SEED = 0
PROBE_TRAIN_SIZE = 8000


@dataclass(frozen=True)
class Evaluation:
    """A finished run: the result record and the per-example predictions (``<result>.predictions.jsonl``)."""

    result: Result
    records: list[dict]


def run(task: str, model: str, *, data: str | None = None, split: str | None = None, limit: int | None = None,
        batch_size: int = 64, seed: int = DEFAULT_SEED, probe_train_size: int = PROBE_TRAIN_SIZE,
        train_data: str | None = None, progress: bool = True, options: dict | None = None) -> Evaluation:
    """Evaluate ``model`` on ``task``.

    ``train_data``: the probe's training file when the task's default train file is not available.
    ``options``: the held-out pretraining benchmarks' split settings (names of
    :class:`evaluation.metrics.pretraining.HeldoutConfig`: ``heldout_docs``, ``block_tokens``, ``eval_blocks``,
    ``mask_seed``); the recipes pass their own so that they and the CLI agree. ``limit`` caps blocks there.
    """
    if batch_size < 1:
        raise ValueError(f"--batch-size must be ≥ 1, got {batch_size}")
    bench = tasks.benchmark(task)
    split = split or bench.default_split
    block_kw: dict = {}  # the held-out pretraining evaluators' settings
    if bench.format in tasks.BLOCK_FORMATS:
        split_default = {"heldout_docs": HELDOUT_DOCS_BY_SPLIT.get(split, HELDOUT_DOCS)}
        heldout = heldout_config({**split_default, **(options or {})})
        ds = tasks.load(bench, split, data, heldout_docs=heldout.heldout_docs)
        block_kw = {"limit": limit, "heldout": heldout}
    elif options:
        raise ValueError(f"{bench.key} takes no options (got {', '.join(options)})")
    else:
        ds = tasks.load(bench, split, data).limit(limit)
    if not ds.examples:
        raise ValueError(f"{ds.path.name} has no examples")
    parallel.check_format(bench.format)  # under accelerate launch: joins the process group before the model loads
    handle = resolve_model(model, bench)
    t0 = time.perf_counter()
    with parallel.tally() as counted:
        outcome = EVALUATORS[bench.format](bench, handle, ds, seed=seed, batch_size=batch_size,
                                           probe_train_size=probe_train_size, train_data=train_data,
                                           progress=progress and parallel.is_main(), **block_kw)
    seconds = time.perf_counter() - t0
    n = outcome.n if outcome.n is not None else len(ds)
    result = make_result(task=bench.key, model=model, split=split, n=n, outcome=outcome, primary=bench.primary,
                         seconds=seconds, device=handle.device, seed=seed, data_sha256=sha256_path(ds.path),
                         model_revision=handle.revision, variant=handle.variant, params=handle.params,
                         extra={"data": portable_path(ds.path), "limit": limit, "source": "measured",
                                "num_processes": parallel.num_processes(),
                                "inputs_per_process": counted.per_process or None})
    return Evaluation(result, outcome.records)
