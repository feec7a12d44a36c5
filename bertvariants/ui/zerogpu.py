"""GPU and ZeroGPU Spaces: which handlers run a model (and for how long), and the Space's models loaded up front.

On a ZeroGPU Space (hardware ``zero-a10g`` / ``zero-h200``) a GPU is attached only while a function decorated with
``@spaces.GPU(duration=…)`` runs; a Space with no decorated function fails at start-up ("No @spaces.GPU function
detected"). The ``spaces`` package is a no-op everywhere else (its ``GPU`` returns the function unchanged), so the
same code runs on a CPU Space, a GPU Space and a laptop. What ZeroGPU requires, and where this project does it:

- ``spaces`` is imported before anything initialises CUDA: app.py imports it first.
- Models are loaded at module scope and moved to CUDA there (ZeroGPU packs the CUDA tensors created then and
  restores them inside each decorated call): :func:`preload_space_models`, run by app.py at import when
  ``SPACES_ZERO_GPU`` is set — or when this project's own switch ``BERTVARIANTS_PRELOAD=1`` is (tests use it:
  the ``spaces`` package itself asserts ``SPACES_ZERO_DEVICE_API_URL`` when ``SPACES_ZERO_GPU`` is set).
  Everywhere else models stay lazy (the app starts without loading any).
- Each decorated function declares a short ``duration``: ZeroGPU checks it against the visitor's remaining quota
  before the call runs, so a shorter honest value serves more visitors. :data:`GPU_SECONDS` holds each
  model-running endpoint's seconds measured on a 2-core CPU with the offline models (``python -m
  bertvariants.ui.gpu_seconds``); the duration is :func:`duration_for` that figure (a GPU is well over 20× faster
  than 2 CPU cores, the online checkpoints at most ~10× larger than the offline ones), within [10 s, 120 s].
- Handlers never return tensors (they return text, tables and figures; tests/test_space.py checks every output).

Endpoints not in :data:`GPU_SECONDS` or :data:`CPU_ONLY` fail a test, so a new endpoint is classified the day it
lands.
"""

from __future__ import annotations

import logging
import math
import sys
import time
from dataclasses import dataclass

from .. import serving
from ..serving.device import truthy
from ..serving.manifest import default_manifest

log = logging.getLogger("bertvariants.zerogpu")

# Seconds of one default request on a 2-core CPU (Intel Xeon Ice Lake, no native bf16; offline models; the second
# call, the model already loaded; the machine shared with other jobs, so these are upper bounds), measured on
# 2026-12-07 by `python -m bertvariants.ui.gpu_seconds` (summarize / compare_summarization with one thread: two OpenMP
# threads on a shared 2-core machine took 250 s). The endpoints that run a neural model.
GPU_SECONDS: dict[str, float] = {
    "albert_features": 0.44, "albert_fill_mask": 0.43, "attention": 0.34, "clinical_score": 1.21,
    "clinical_terms": 1.78, "cluster": 0.33, "compare_fill_mask": 1.08, "compare_sentiment": 1.55,
    "compare_similarity": 1.20, "compare_summarization": 18.6, "distillation_teacher_logits": 0.15,
    "electra_detect": 0.12, "electra_replace": 0.16, "faithfulness": 2.82, "heatmap": 0.34, "mlm_lens": 1.35,
    "pair_view": 0.27, "roberta_fill_mask": 0.16, "saliency": 1.33, "search": 0.20, "similarity": 0.29,
    "similarity_attribution": 3.32, "spanbert_qa": 0.19, "summarize": 16.1, "summary_attribution": 80.0,
}

# Endpoints that run no model on a GPU: never decorated, never hold one (the reason, for the test that every
# endpoint is classified).
_MECHANISM = "a mechanism view: pure functions of the input, no model"
_LEADERBOARD = "reads result files and draws figures"
CPU_ONLY: dict[str, str] = {
    "albert_parameters": _MECHANISM, "albert_sop": _MECHANISM, "bart_noise": _MECHANISM,
    "distillation_explore": _MECHANISM, "distillation_loss": _MECHANISM, "electra_data_path": _MECHANISM,
    "roberta_masking": _MECHANISM, "spanbert_spans": _MECHANISM,
    "roberta_tokenizers": "tokenizers only (WordPiece vs byte-level BPE)",
    "video_tokenize": "EfficientNet-Lite0 frame features run on the CPU (an 18 MB CNN over a few frames)",
    "leaderboard": _LEADERBOARD, "leaderboard_drilldown": _LEADERBOARD, "leaderboard_significance": _LEADERBOARD,
    "leaderboard_compare": _LEADERBOARD, "leaderboard_training": _LEADERBOARD,
}

MIN_DURATION, MAX_DURATION = 10, 120


def duration_for(api_name: str) -> int:
    """The ``@spaces.GPU(duration=…)`` of an endpoint, in seconds: its CPU time rounded up to 5 s, in [10, 120]."""
    return int(min(MAX_DURATION, max(MIN_DURATION, 5 * math.ceil(GPU_SECONDS[api_name] / 5))))


def spaces_package():
    """The ``spaces`` package when it is installed (app.py has imported it first), else None."""
    if "spaces" in sys.modules:
        return sys.modules["spaces"]
    try:
        import spaces
    except ImportError:
        return None
    return spaces


@dataclass(frozen=True)
class Decorated:
    api_name: str
    duration: int


DECORATED: dict[str, Decorated] = {}  # what on_gpu() decorated in this process, for the start-up report


def on_gpu(fn, api_name: str):
    """``fn`` decorated with ``spaces.GPU(duration=duration_for(api_name))`` when it runs a model and the
    ``spaces`` package is installed; ``fn`` itself otherwise (the decorator is a no-op off ZeroGPU anyway)."""
    if api_name not in GPU_SECONDS:
        return fn
    spaces = spaces_package()
    if spaces is None:
        return fn
    DECORATED[api_name] = Decorated(api_name, duration_for(api_name))
    return spaces.GPU(duration=DECORATED[api_name].duration)(fn)


def zero_gpu() -> bool:
    """Running on a ZeroGPU Space (Hugging Face sets ``SPACES_ZERO_GPU``)."""
    return truthy("SPACES_ZERO_GPU")


def preload_requested() -> bool:
    """Load every Space model at module scope: on ZeroGPU, or when ``BERTVARIANTS_PRELOAD=1``."""
    return zero_gpu() or truthy("BERTVARIANTS_PRELOAD")


@dataclass(frozen=True)
class Preloaded:
    task: str
    label: str  # which checkpoint serves it (or why none does)
    device: str
    seconds: float
    ok: bool


def preload_space_models() -> list[Preloaded]:
    """Every task of spaces.yml resolved and loaded now, onto the device the resolver picks (CUDA on a GPU or
    ZeroGPU Space), before the first request. The model cache is widened to hold them all (no eviction would
    then reload one inside a GPU call). A slot that cannot load is reported and left to its tab's message."""
    tasks = list(default_manifest().tasks)
    serving.CACHE.max_items = max(serving.CACHE.max_items, len(tasks) + 2)
    done = []
    for task in tasks:
        start = time.perf_counter()
        try:
            loaded = serving.get_model(task)
        except Exception as exc:  # noqa: BLE001 - a slot that cannot load keeps its tab's own message
            done.append(Preloaded(task, f"unavailable: {exc}", "-", time.perf_counter() - start, False))
            continue
        done.append(Preloaded(task, loaded.label, loaded.device, time.perf_counter() - start, True))
    return done


def startup_report(preloaded: list[Preloaded] | None = None) -> str:
    """What start-up did for GPUs, one line each: the decorated functions with their durations, the models
    loaded up front (or that models load on first use)."""
    spaces = spaces_package()
    lines = [f"spaces package: {'installed' if spaces else 'not installed'}; ZeroGPU: {'yes' if zero_gpu() else 'no'}"]
    if DECORATED:
        lines.append(f"GPU-decorated functions ({len(DECORATED)}): " + ", ".join(
            f"{d.api_name} {d.duration} s" for d in sorted(DECORATED.values(), key=lambda d: d.api_name)))
    else:
        lines.append("GPU-decorated functions: none (no spaces package)")
    if preloaded is None:
        lines.append("models: loaded on first use")
    else:
        ok = sum(p.ok for p in preloaded)
        lines.append(f"models preloaded at start-up: {ok} of {len(preloaded)} tasks in "
                     f"{sum(p.seconds for p in preloaded):.1f} s")
        lines += [f"  {p.task}: {p.device} {p.seconds:.1f} s {p.label}" for p in preloaded]
    return "\n".join(lines)
