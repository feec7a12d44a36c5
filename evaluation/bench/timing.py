"""Timing for every A/B pair: a rotating order, wall and CPU seconds, the median.

A machine shared with other jobs slows whichever side runs during a burst; rotating the order (A, B, C,
then B, C, A, ...) spreads that over all sides, and the median drops the outliers.
"""

from __future__ import annotations

import gc
import statistics
import sys
import time
from typing import Callable


def log(msg: str) -> None:
    """Progress on stderr (stdout ends with the JSON summary)."""
    print(msg, file=sys.stderr, flush=True)


def alternate(fns: dict[str, Callable[[], object]], repeats: int, cpu: dict | None = None) -> dict[str, list[float]]:
    """Wall times of each function, run in a rotating order ``repeats`` times (warm them up before).

    ``cpu``, when given, receives this process's CPU seconds per call too: on a machine shared with other
    jobs they vary far less than wall time (with one torch thread they equal the wall time on an idle core).
    """
    names = list(fns)
    times: dict[str, list[float]] = {n: [] for n in names}
    for r in range(repeats):
        order = names[r % len(names):] + names[:r % len(names)]
        for n in order:
            gc.collect()
            t0, c0 = time.perf_counter(), time.process_time()
            fns[n]()
            times[n].append(time.perf_counter() - t0)
            if cpu is not None:
                cpu.setdefault(n, []).append(time.process_time() - c0)
            log(f"  {n}: {times[n][-1]:.2f} s" + (f" (cpu {cpu[n][-1]:.2f} s)" if cpu is not None else ""))
    return times


def median(xs: list[float]) -> float:
    return float(statistics.median(xs))


def medians(times: dict[str, list[float]]) -> dict[str, float]:
    """The median of each side's times."""
    return {k: median(v) for k, v in times.items()}
