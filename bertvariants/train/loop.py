"""The training loop every recipe shares (:func:`fit`).

A recipe hands :func:`fit` a :class:`Setup` (model, a batch iterator and a loss function); :func:`fit` runs

    Accelerator (bf16 on GPU, multi-GPU under ``accelerate launch``) -> AdamW + linear warm-up/decay
    -> tqdm over ``steps`` optimizer steps -> the loss curve (one row every ``log_every`` steps)

and returns a :class:`FitResult`. A wall-time budget (``max_minutes``) or SIGTERM ends training early after a
whole step; the recipe still saves and evaluates what it has.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Sequence

import torch

from ..inference import cpu_has_native_bf16
from ..internals import require
from ..lab_step import adamw, set_attention_dropout
from . import resume as rs
from .config import TrainConfig


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (new-head initialisation draws from torch's global generator)."""
    random.seed(seed)
    try:
        import numpy as np

        np.random.seed(seed)
    except ImportError:  # pragma: no cover - numpy ships with torch
        pass
    torch.manual_seed(seed)


@dataclass
class Setup:
    """What a recipe hands to :func:`fit`.

    ``loss_fn(model, batch) -> dict`` must return ``{"loss": tensor, <other scalar logs>...}``;
    ``batches`` yields batches (dicts of CPU tensors) forever; ``model`` is an ``nn.Module`` holding every
    trainable part (a wrapper when a recipe trains several, e.g. ELECTRA's generator + discriminator).
    """

    model: torch.nn.Module
    batches: Iterator[dict]
    loss_fn: Callable[[torch.nn.Module, dict], dict]
    parameters: Sequence[torch.nn.Parameter] | None = None  # default: model.parameters() that require grad


@dataclass(frozen=True)
class FitResult:
    steps: int
    seconds: float
    curve: list[dict]  # one row per logged step: step, loss, lr, seconds and the recipe's extra logs
    device: str
    processes: int
    planned_steps: int = 0  # steps the schedule was built for (> steps when stopped early)
    precision: str = "fp32"  # "bf16" when the loss ran under bf16 autocast (weights and optimizer stay fp32)

    @property
    def first_loss(self) -> float:
        return self.curve[0]["loss"]

    @property
    def last_loss(self) -> float:
        return self.curve[-1]["loss"]


def classification_loss(model, batch: dict) -> dict:
    """``loss_fn`` of a sequence-classification fine-tune (BERT §4.1): the model's cross-entropy, plus the batch's
    training accuracy as a log."""
    out = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                token_type_ids=batch.get("token_type_ids"), labels=batch["labels"])
    acc = (out.logits.argmax(-1) == batch["labels"]).float().mean()
    return {"loss": out.loss, "train_acc": acc}


def mixed_precision(cfg: TrainConfig | None = None) -> str:
    """accelerate's ``mixed_precision``: bf16 on GPU; on CPU bf16 autocast only when the recipe asks for it
    (``cpu_bf16``) and the processor multiplies bf16 natively (else autocast would emulate it, slower than fp32)."""
    if torch.cuda.is_available():
        return "bf16"
    return "bf16" if cfg is not None and cfg.cpu_bf16 and cpu_has_native_bf16() else "no"


def make_accelerator(cfg: TrainConfig | None = None):
    """Mixed precision per :func:`mixed_precision`; multi-process when launched with ``accelerate launch``."""
    from accelerate import Accelerator
    from accelerate.state import AcceleratorState

    require("accelerate")  # AcceleratorState's two private names below (bertvariants/internals.py)
    precision = mixed_precision(cfg)
    state = AcceleratorState._shared_state
    if state and state.get("_mixed_precision") not in (None, precision):
        # the state is a process-wide singleton: ``train all`` runs recipes of different precisions in one
        # process, so drop the previous recipe's choice (the process group, PartialState, is kept)
        AcceleratorState._reset_state()
    return Accelerator(mixed_precision=precision)


def make_optimizer(params: Sequence[torch.nn.Parameter], cfg: TrainConfig, steps: int):
    """(:func:`bertvariants.lab_step.adamw`, linear warm-up/decay schedule over ``steps``)."""
    from transformers import get_linear_schedule_with_warmup

    optim = adamw(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    return optim, get_linear_schedule_with_warmup(optim, int(cfg.warmup * steps), steps)


def curve_row(step: int, window: dict[str, list[float]], *, lr: float, seconds: float) -> dict:
    """One loss-curve row: the mean of each log over the steps since the last row."""
    return {"step": step, **{k: sum(v) / len(v) for k, v in window.items()}, "lr": lr, "seconds": round(seconds, 2)}


def fit(setup: Setup, cfg: TrainConfig, *, desc: str, progress: bool = True, accelerator=None,
        state_path=None) -> FitResult:
    """Run ``cfg.total_steps`` AdamW steps with linear warm-up/decay and grad-norm clipping at 1.0.

    The training state (:mod:`bertvariants.train.resume`) is saved to ``state_path`` (default
    ``<output of the recipe named desc>.train-state.pt``) every ``cfg.checkpoint_minutes``, on an early stop and
    at the end; with ``cfg.resume`` a saved state is loaded and training continues from its step."""
    from tqdm.auto import tqdm

    if cfg.attention_dropout is not None:
        set_attention_dropout(setup.model, cfg.attention_dropout)
    accelerator = accelerator or make_accelerator(cfg)
    steps = cfg.total_steps
    params = list(setup.parameters) if setup.parameters is not None else [
        p for p in setup.model.parameters() if p.requires_grad]
    optim, sched = make_optimizer(params, cfg, steps)
    state_path = Path(state_path) if state_path is not None else rs.state_file(cfg, desc)
    saved = rs.load_state(state_path, cfg) if cfg.resume and state_path.is_file() else None
    if cfg.resume and saved is None and accelerator.is_main_process:
        print(f"{desc}: --resume found no training state at {state_path}; starting from step 0")
    # the scheduler is stepped here once per optimizer step; accelerate's prepared scheduler would step it once
    # per process, decaying n× too fast under ``accelerate launch``
    model, optim = accelerator.prepare(setup.model, optim)
    curve, window, offset, first = _resumed(saved, setup, optim, sched) if saved else ([], {}, 0.0, 1)
    if saved and accelerator.is_main_process:
        print(f"{desc}: resumed from step {saved['step']} of {steps} ({state_path})")
    model.train()
    start = time.perf_counter() - offset
    last_save = time.perf_counter()
    bar = tqdm(range(first, steps + 1), desc=desc, unit="step", initial=first - 1, total=steps,
               disable=not (progress and accelerator.is_main_process))
    stop = _StopFlag()
    step = first - 1

    def save(done: bool) -> None:
        if accelerator.is_main_process:
            rs.save_state(state_path, cfg=cfg, model=accelerator.unwrap_model(model), optim=optim, sched=sched,
                          loss_fn=setup.loss_fn, step=step, draws=step * accelerator.num_processes, curve=curve,
                          window=window, seconds=time.perf_counter() - start, done=done)

    for step in bar:
        if step > first and (stop.requested or (cfg.max_minutes and
                                                time.perf_counter() - start - offset > 60 * cfg.max_minutes)):
            step -= 1
            break
        logs = _step(setup, model, optim, sched, params, accelerator, desc=desc, step=step)
        for k, v in logs.items():
            window.setdefault(k, []).append(float(v.detach()) if torch.is_tensor(v) else float(v))
        if step % cfg.log_every == 0 or step == steps or step == 1:
            curve.append(curve_row(step, window, lr=sched.get_last_lr()[0], seconds=time.perf_counter() - start))
            window = {}
            bar.set_postfix(loss=f"{curve[-1]['loss']:.4f}")
        if cfg.checkpoint_minutes and time.perf_counter() - last_save > 60 * cfg.checkpoint_minutes and step < steps:
            save(done=False)
            last_save = time.perf_counter()
    bar.close()
    stop.restore()
    if step > first - 1 or saved is None or not saved["done"]:
        save(done=step == steps)  # the end, or where an early stop left off: --resume continues from here
    if window:  # the last partial window when stopped early
        curve.append(curve_row(step, window, lr=sched.get_last_lr()[0], seconds=time.perf_counter() - start))
    seconds = time.perf_counter() - start
    setup.model = accelerator.unwrap_model(model)
    setup.model.eval()
    return FitResult(steps=step, seconds=seconds, curve=curve, device=str(accelerator.device),
                     processes=accelerator.num_processes, planned_steps=steps,
                     precision="bf16" if accelerator.mixed_precision == "bf16" else "fp32")


def _resumed(saved: dict, setup: Setup, optim, sched) -> tuple[list, dict, float, int]:
    """Load a saved training state into the run: (curve, current log window, seconds so far, first step)."""
    rs.restore(saved, model=setup.model, optim=optim, sched=sched, loss_fn=setup.loss_fn)
    for _ in range(saved["draws"]):  # replay the seeded batch stream up to where the run stopped
        next(setup.batches)
    rs.set_rng_states(saved["rng"])  # after the replay: dropout and masking continue where they were
    return saved["curve"], saved["window"], saved["seconds"], saved["step"] + 1


def _step(setup: Setup, model, optim, sched, params, accelerator, *, desc: str, step: int) -> dict:
    """One optimizer step; returns the loss function's logs."""
    # every process draws the same seeded stream and keeps its own slice: distinct data per GPU, reproducible
    draws = [next(setup.batches) for _ in range(accelerator.num_processes)]
    batch = {k: v.to(accelerator.device) if torch.is_tensor(v) else v
             for k, v in draws[accelerator.process_index].items()}
    with accelerator.autocast():
        logs = setup.loss_fn(model, batch)
    loss = logs["loss"]
    if not torch.isfinite(loss):
        raise FloatingPointError(f"{desc}: loss became {loss.item()} at step {step}; lower --lr")
    accelerator.backward(loss)
    accelerator.clip_grad_norm_(params, 1.0)
    optim.step()
    sched.step()
    optim.zero_grad(set_to_none=True)
    return logs


class _StopFlag:
    """SIGTERM during training = finish the current step, then save and evaluate (main thread only)."""

    def __init__(self):
        import signal
        import threading

        self.requested = False
        self._previous = None
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGTERM, self._handle)

    def _handle(self, signum, frame):
        self.requested = True

    def restore(self):
        import signal

        if self._previous is not None:
            signal.signal(signal.SIGTERM, self._previous)
            self._previous = None
