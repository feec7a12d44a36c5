"""Data-parallel evaluation of one (model, task) pair under ``accelerate launch``.

    accelerate launch --multi_gpu --num_processes 2 -m evaluation run --task stsb --model minilm

(``--multi_gpu`` is accelerate's torchrun launcher; on a machine without CUDA the processes join a gloo group on
the CPU. ``accelerate launch --cpu --num_processes N`` starts N processes only through MPI in accelerate 1.16;
without MPI it starts one, and this module says so on stderr.)

Every process loads the model and the data; each forward pass of the evaluators (sentence embeddings,
classifier logits: :func:`map_in_order`) runs on this process's contiguous share of the inputs
(``PartialState.split_between_processes``), and the shares come back to every process in the original order
(``gather_object``). The metric, its bootstrap interval and the per-example records are then computed from the
gathered predictions: the numbers are those of a single-process run (the same predictions, up to the float
rounding of a different batch composition, which the records' 4-decimal rounding absorbs). Only the main process
(rank 0) writes the result, which records ``num_processes`` and the inputs each process encoded
(``inputs_per_process``).

Without ``accelerate launch`` (``WORLD_SIZE`` unset or 1) nothing here imports accelerate and
:func:`map_in_order` is a plain call. Formats whose forward passes do not go through :func:`map_in_order`
(generation, SQuAD windows, the held-out pretraining objectives) are refused under several processes
(:func:`check_format`) rather than run N times over.
"""

from __future__ import annotations

import contextvars
import functools
import os
import warnings
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np

WORLD_ENV = "WORLD_SIZE"  # set by accelerate launch / torchrun
DEVICE_ENV = "BERTVARIANTS_DEVICE"  # bertvariants.serving.device.pick_device honours it: one GPU per process
PARALLEL_FORMATS = ("single", "pair", "sts", "long-note")  # evaluators whose forward passes use map_in_order


def world_size() -> int:
    try:
        return max(1, int(os.environ.get(WORLD_ENV, "1")))
    except ValueError:
        return 1


@functools.lru_cache(maxsize=1)
def state():
    """accelerate's ``PartialState`` when launched with several processes (it joins the process group), else None."""
    if world_size() < 2:
        if lone_cpu_launch():
            warnings.warn(LONE_CPU_LAUNCH, stacklevel=2)
        return None
    import torch
    from accelerate import PartialState

    # cpu=True on a machine without CUDA: accelerate then takes the torchrun processes as MULTI_CPU (gloo)
    cpu = os.environ.get("ACCELERATE_USE_CPU", "").lower() in ("1", "true", "yes") or not torch.cuda.is_available()
    found = PartialState(cpu=cpu)
    if found.device.type == "cuda" and not os.environ.get(DEVICE_ENV):
        os.environ[DEVICE_ENV] = str(found.device)  # each process's model on its own GPU
    return found


LONE_CPU_LAUNCH = ("accelerate launch --cpu started one process: accelerate starts several CPU processes only through "
                   "MPI (--mpirun_hostfile); without MPI use accelerate launch --multi_gpu --num_processes N "
                   "(torchrun, gloo on a CPU) or torchrun --nproc_per_node N")


def lone_cpu_launch() -> bool:
    """``accelerate launch --cpu --num_processes N>1`` without MPI: one process, MASTER_ADDR set, no WORLD_SIZE."""
    return (os.environ.get("ACCELERATE_USE_CPU", "").lower() in ("1", "true") and "MASTER_ADDR" in os.environ
            and WORLD_ENV not in os.environ and "PMI_SIZE" not in os.environ)


def num_processes() -> int:
    s = state()
    return s.num_processes if s is not None else 1


def is_main() -> bool:
    """True in a single process and on rank 0 of several: the process that prints and writes the result."""
    s = state()
    return s is None or s.is_main_process


def check_format(fmt: str) -> None:
    """ValueError when ``fmt``'s evaluator cannot split its work across the processes."""
    if num_processes() > 1 and fmt not in PARALLEL_FORMATS:
        raise ValueError(f"data-parallel evaluation covers the formats {', '.join(PARALLEL_FORMATS)}; a {fmt} "
                         f"benchmark runs in one process (python -m evaluation run, without accelerate launch)")


@dataclass
class Tally:
    """How many inputs each process ran through a forward pass during one evaluation."""

    per_process: list[int] = field(default_factory=list)

    def add(self, counts: Sequence[int]) -> None:
        if not self.per_process:
            self.per_process = [0] * len(counts)
        self.per_process = [a + int(b) for a, b in zip(self.per_process, counts)]


CURRENT: contextvars.ContextVar[Tally | None] = contextvars.ContextVar("evaluation_parallel_tally", default=None)


@contextmanager
def tally():
    """Count, per process, the inputs :func:`map_in_order` runs while the block is active."""
    found = Tally()
    token = CURRENT.set(found)
    try:
        yield found
    finally:
        CURRENT.reset(token)


def shares(n: int, processes: int) -> list[range]:
    """The contiguous share of ``n`` inputs each of ``processes`` gets, as ``split_between_processes`` cuts a list
    (the first ``n mod processes`` shares one longer).

    >>> [len(r) for r in shares(7, 3)]
    [3, 2, 2]
    """
    base, extra = divmod(n, processes)
    starts = [i * base + min(i, extra) for i in range(processes + 1)]
    return [range(starts[i], starts[i + 1]) for i in range(processes)]


def map_in_order(fn: Callable[[list], np.ndarray], items: Sequence) -> np.ndarray:
    """``fn(items)`` (an array with one row per item), computed on this process's share of ``items`` and gathered
    from every process in the original order. One process: ``fn(list(items))``."""
    items = list(items)
    s = state()
    if s is None:
        out = np.asarray(fn(items))
        if CURRENT.get() is not None:
            CURRENT.get().add([len(items)])
        return out
    with s.split_between_processes(list(range(len(items)))) as mine:
        mine = list(mine)
        local = np.asarray(fn([items[i] for i in mine])) if mine else None
    from accelerate.utils import gather_object

    parts = gather_object([(s.process_index, len(mine), local)])  # [(rank, count, rows)] from every process
    parts.sort(key=lambda p: p[0])
    if CURRENT.get() is not None:
        CURRENT.get().add([count for _, count, _ in parts])
    arrays = [rows for _, count, rows in parts if count]
    if not arrays:
        return np.asarray(fn([]))
    return np.concatenate(arrays, axis=0)
