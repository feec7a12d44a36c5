"""Training state on disk: checkpoint every few minutes, ``--resume`` to the same result as an unbroken run.

:func:`bertvariants.train.loop.fit` writes one file, ``<output>.train-state.pt`` beside the recipe's output
directory, every ``checkpoint_minutes`` of training, when it stops early (``--max-minutes``, SIGTERM) and when it
finishes. It holds everything the next step depends on:

- the trainable parameters (a LoRA run: the adapters and the head; a full fine-tune: every weight that trains),
- the optimizer's moments and step counts, the learning-rate schedule's position,
- every random state the step draws from: Python's, NumPy's, torch's CPU (and CUDA) generators, and any the
  recipe's loss keeps itself (a loss object with ``state_dict`` / ``load_state_dict``, e.g. ELECTRA's sampler),
- the data position: batches drawn so far (the batch streams are seeded and deterministic, so resuming replays
  the same stream up to that point without training on it; the stream's own generators are what make the
  order reproducible, never the global ones that dropout draws from),
- the loss curve so far and the elapsed training seconds.

A resumed run therefore takes exactly the steps an unbroken run would have taken (tested: kill at step k,
resume, compare every loss and every weight). The file is written atomically, so a kill while saving leaves the
previous state. It is refused, with the setting that differs, when the run's schedule-defining settings changed.
"""

from __future__ import annotations

import io
import random
from dataclasses import asdict
from pathlib import Path

import torch

from ..io import atomic_write_bytes
from .config import TrainConfig, output_dir

# settings that define the schedule and the batch stream: a state saved under other values cannot continue here
SCHEDULE_KEYS = ("steps", "scale", "batch_size", "lr", "weight_decay", "warmup", "max_length", "seed", "base_model",
                 "lora_rank", "cpu_bf16", "attention_dropout")
VERSION = 1


def state_file(cfg: TrainConfig, name: str) -> Path:
    """``<output>.train-state.pt``: beside the output directory, which the recipe replaces when it saves."""
    out = output_dir(cfg, name)
    return out.with_name(out.name + ".train-state.pt")


def fingerprint(cfg: TrainConfig) -> dict:
    """The schedule-defining settings plus every recipe-specific one (masking rate, span length, ...)."""
    shared = {f for f in asdict(TrainConfig())}
    values = asdict(cfg)
    return {k: v for k, v in values.items() if k in SCHEDULE_KEYS or k not in shared}


def rng_states() -> dict:
    import numpy as np

    states = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def set_rng_states(states: dict) -> None:
    import numpy as np

    random.setstate(states["python"])
    np.random.set_state(states["numpy"])
    torch.set_rng_state(states["torch"])
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


def trainable_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {n: p.detach().cpu().clone() for n, p in model.named_parameters() if p.requires_grad}


def save_state(path: Path, *, cfg: TrainConfig, model, optim, sched, loss_fn, step: int, draws: int,
               curve: list, window: dict, seconds: float, done: bool) -> None:
    state = {"version": VERSION, "fingerprint": fingerprint(cfg), "step": step, "draws": draws, "done": done,
             "params": trainable_state(model), "optim": optim.state_dict(), "sched": sched.state_dict(),
             "rng": rng_states(), "loss_fn": loss_fn.state_dict() if hasattr(loss_fn, "state_dict") else None,
             "curve": curve, "window": window, "seconds": seconds}
    buf = io.BytesIO()
    torch.save(state, buf)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, buf.getvalue())


def load_state(path: Path, cfg: TrainConfig) -> dict:
    """The saved state, after checking it belongs to this run's settings (ValueError naming what differs)."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # a truncated or foreign file: say so instead of a pickle traceback
        raise ValueError(f"--resume: cannot read the training state {path} ({type(exc).__name__}: {exc}); "
                         "delete it to start over") from exc
    if not isinstance(state, dict) or state.get("version") != VERSION:
        raise ValueError(f"--resume: {path} is not a training state of this version; delete it to start over")
    saved, now = state["fingerprint"], fingerprint(cfg)
    differ = sorted(k for k in set(saved) | set(now) if saved.get(k) != now.get(k))
    if differ:
        shown = ", ".join(f"{k}: saved {saved.get(k)!r}, now {now.get(k)!r}" for k in differ)
        raise ValueError(f"--resume: {path} was saved by a run with other settings ({shown}); run with the same "
                         "settings, or without --resume to start over")
    return state


def restore(state: dict, *, model, optim, sched, loss_fn) -> None:
    """Load parameters, optimizer, schedule and the loss's own generators (RNG states come last, in fit)."""
    params = dict(model.named_parameters())
    missing = sorted(set(state["params"]) - set(params))
    if missing:
        raise ValueError(f"--resume: the saved state has parameters this model lacks ({', '.join(missing[:3])}…)")
    with torch.no_grad():
        for name, value in state["params"].items():
            params[name].copy_(value.to(params[name].device))
    optim.load_state_dict(state["optim"])
    sched.load_state_dict(state["sched"])
    if state.get("loss_fn") is not None and hasattr(loss_fn, "load_state_dict"):
        loss_fn.load_state_dict(state["loss_fn"])
