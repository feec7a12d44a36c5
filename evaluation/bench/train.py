"""The ``train`` section: the variant lab's training step against a plain PyTorch step.

The training code sits above evaluation (core ← evaluation ← train), so this section runs it as a program,
``python -m bertvariants.train bench`` (:mod:`bertvariants.train.bench`: plain / exact / lab sides, alternating,
in one process), and merges its JSON: per step kind the lab's and the exact path's speed-up over the plain step
and the share of the matmul peak each reaches.
"""

from __future__ import annotations

import json
import subprocess
import sys

from bertvariants.paths import REPO_ROOT

from .settings import BenchSettings
from .timing import log


def bench_train(settings: BenchSettings, out: dict, detail: dict) -> None:
    cmd = [sys.executable, "-m", "bertvariants.train", "bench", "--repeats", str(settings.repeats),
           "--batch", str(settings.train_batch), "--tokens", str(settings.train_tokens),
           "--loss-steps", str(settings.train_loss_steps)]
    if settings.threads:
        cmd += ["--threads", str(settings.threads)]
    log("   " + " ".join(cmd[1:]))
    proc = subprocess.run(cmd, cwd=REPO_ROOT, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"the training bench failed (exit {proc.returncode}): {proc.stderr[-2000:]}")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    detail["train"] = result
    for kind, r in result.items():
        if isinstance(r, dict) and "lab_speedup" in r:  # one entry per step kind the bench ran
            out[f"train_{kind}_lab_vs_plain"] = r["lab_speedup"]
            out[f"train_{kind}_exact_vs_plain"] = r["exact_speedup"]
            out[f"train_{kind}_lab_share_of_peak"] = r["lab"]["share_of_peak"]
            if "losses" in r:
                out[f"train_{kind}_loss_max_abs_diff_plain_exact"] = r["losses"]["max_abs_diff_plain_exact"]
