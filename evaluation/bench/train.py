"""The ``train`` section: the variant lab's training step against a plain PyTorch step.

Runs :func:`evaluation.bench.train_steps.run` (plain / exact / lab sides, alternating, in this process; the
lab's side is built from :mod:`bertvariants.lab_step`, the functions the recipes train with) and merges its
result: per step kind the lab's and the exact path's speed-up over the plain step and the share of the matmul
peak each reaches. ``python -m bertvariants.train bench`` runs the same function on its own.
"""

from __future__ import annotations

from . import train_steps
from .settings import BenchSettings
from .timing import log


def bench_train(settings: BenchSettings, out: dict, detail: dict) -> None:
    log(f"   training steps: batch {settings.train_batch} x {settings.train_tokens} tokens, "
        f"{settings.repeats} repeats, loss steps {settings.train_loss_steps}")
    result = train_steps.run(batch=settings.train_batch, tokens=settings.train_tokens, repeats=settings.repeats,
                             loss_steps=settings.train_loss_steps, progress=log)
    detail["train"] = result
    for kind, r in result.items():
        if isinstance(r, dict) and "lab_speedup" in r:  # one entry per step kind the bench ran
            out[f"train_{kind}_lab_vs_plain"] = r["lab_speedup"]
            out[f"train_{kind}_exact_vs_plain"] = r["exact_speedup"]
            out[f"train_{kind}_lab_share_of_peak"] = r["lab"]["share_of_peak"]
            if "losses" in r:
                out[f"train_{kind}_loss_max_abs_diff_plain_exact"] = r["losses"]["max_abs_diff_plain_exact"]
