"""The ``summary`` section: the BART tab's offline summarizer on its default document, the earlier path against
the current default, alternating in one process.

- **earlier** (:data:`bertvariants.smollm.EARLIER_PATH`, the default before issue 26): SmolLM2-135M-Instruct with
  2 beams, its weights in bf16 where the CPU has native bf16, else fp32;
- **default** (:data:`bertvariants.smollm.DEFAULT_PATH`): 2 beams on the fp32 weights, in whichever of fp32 and
  bf16 autocast :func:`bertvariants.inference.fast_path` measures fastest for one generation step
  (:data:`~bertvariants.inference.DECODE_SHAPE`) on this CPU — measured once, before the timing, and reported.

Both write at most 100 new tokens of the same prompt (:data:`bertvariants.bart.DEFAULT_DOCUMENT`); the times are
medians of alternating repeats (wall and this process's CPU seconds). The quality check is the harness's ROUGE on
CNN/DM and XSum (docs/performance.md), not this one document.
"""

from __future__ import annotations

import copy
import time
from dataclasses import asdict

from .settings import BenchSettings
from .timing import alternate, log, medians

TASK = "summarization"  # the manifest task the BART tab's summarizer serves
EARLIER = "earlier (2 beams, bf16 weights where native)"
DEFAULT = "default (2 beams, fast path)"


def earlier_model(model):
    """The earlier path's model: a copy in bf16 where this CPU has native bf16, else the fp32 model itself."""
    import torch

    from bertvariants.serving.device import cpu_capabilities

    if not cpu_capabilities().native_bf16:
        return model
    return copy.deepcopy(model).to(torch.bfloat16).eval()


def bench_summary(settings: BenchSettings, out: dict, detail: dict) -> None:
    from bertvariants import smollm
    from bertvariants.bart import DEFAULT_DOCUMENT
    from bertvariants.inference import DECODE_SHAPE, fast_path
    from bertvariants.serving import get_model

    m = get_model(TASK)
    if m.kind != "causal-lm":
        log(f"summary: the summarizer here is {m.kind} ({m.label}), not the offline decoder: skipped")
        return
    old = earlier_model(m.model)
    earlier, default = smollm.EARLIER_PATH, smollm.DEFAULT_PATH

    def run(model, path) -> str:
        return smollm.summarize(model, m.tokenizer, [DEFAULT_DOCUMENT], num_beams=path.num_beams,
                                max_new_tokens=path.max_new_tokens, max_words=path.max_words,
                                precision=path.precision, candidates=path.candidates, batch_size=1)[0]

    fns = {EARLIER: lambda: run(old, earlier), DEFAULT: lambda: run(m.model, default)}
    t0 = time.perf_counter()
    chosen = smollm.precision_used(m.model, default.precision, default.candidates)  # the measurement, once
    choice_seconds = time.perf_counter() - t0
    texts = {k: f() for k, f in fns.items()}  # warm-up, and the summaries reported
    cpu: dict[str, list[float]] = {}
    times = alternate(fns, settings.repeats, cpu)
    med, med_cpu = medians(times), medians(cpu)
    tokens = {k: len(m.tokenizer(t, add_special_tokens=False)["input_ids"]) for k, t in texts.items()}
    out["summary_seconds_earlier"] = round(med[EARLIER], 2)
    out["summary_seconds"] = round(med[DEFAULT], 2)
    out["summary_speedup"] = round(med[EARLIER] / med[DEFAULT], 3)
    out["summary_cpu_seconds_earlier"] = round(med_cpu[EARLIER], 2)
    out["summary_cpu_seconds"] = round(med_cpu[DEFAULT], 2)
    out["summary_fast_path"] = chosen
    log(f"summary: {med[EARLIER]:.2f} s (earlier) vs {med[DEFAULT]:.2f} s (default, {chosen}): "
        f"{med[EARLIER] / med[DEFAULT]:.2f}×")
    detail["summary"] = {"model": m.label, "document_words": len(DEFAULT_DOCUMENT.split()),
                         "paths": {EARLIER: {**asdict(earlier), "weights": str(next(old.parameters()).dtype)},
                                   DEFAULT: {**asdict(default), "ran_in": chosen}},
                         "seconds": med, "cpu_seconds": med_cpu, "all_seconds": times,
                         "fast_path_choice_seconds": choice_seconds,
                         "fast_path": fast_path(m.model, shape=DECODE_SHAPE, candidates=default.candidates).describe(),
                         "new_tokens": tokens, "summaries": texts}
