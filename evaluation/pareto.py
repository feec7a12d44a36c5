"""Which rows are on the Pareto front of score against cost, per task: nothing both cheaper and better exists.

Two costs, each from the leaderboard's own columns (:data:`COSTS`): model size (``params_millions``) and latency
per example (``latency_ms``, measured rows only). Within one task a row is *dominated* when another row of that
task costs no more and scores at least as well (in the task's direction: a held-out loss counts lower as better),
and is strictly better in one of the two; the rows no other row dominates form the front. A row without a score
or without that cost is not judged (never on that front). Like the ranks, the front is computed over the rows
shown: filtering the table recomputes it.

>>> import pandas as pd
>>> rows = pd.DataFrame({"task": ["t"] * 3, "score": [80.0, 85.0, 82.0], "params_millions": [10.0, 100.0, 200.0],
...                      "latency_ms": [1.0, 5.0, 2.0], "higher_is_better": [True] * 3})
>>> pareto_columns(rows)["pareto"].tolist()
['size + latency', 'size + latency', 'latency']
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

COSTS = {"size": "params_millions", "latency": "latency_ms"}  # the front's name -> the cost column
PARETO_COLUMNS = ("pareto", "pareto_size", "pareto_latency")


def front(score, cost, *, higher_is_better: bool = True) -> np.ndarray:
    """Boolean mask of the non-dominated points of (cost, score): lower cost and better score win; NaNs are False.

    >>> front([1.0, 2.0, 3.0], [1.0, 1.0, 0.5]).tolist()
    [False, False, True]
    """
    s = np.asarray(score, dtype=float) * (1.0 if higher_is_better else -1.0)  # larger = better from here on
    c = np.asarray(cost, dtype=float)
    ok = np.isfinite(s) & np.isfinite(c)
    out = np.zeros(len(s), dtype=bool)
    for i in np.flatnonzero(ok):
        others = ok & (c <= c[i]) & (s >= s[i]) & ((c < c[i]) | (s > s[i]))
        out[i] = not others.any()
    return out


def _up(value) -> bool:
    return True if value is None or (isinstance(value, float) and math.isnan(value)) else bool(value)


def pareto_columns(board: pd.DataFrame) -> pd.DataFrame:
    """``pareto_size`` / ``pareto_latency`` (bool) and ``pareto`` (text: "size + latency", "size", "latency" or "")
    for every row of ``board``, aligned to its index, the fronts taken per task."""
    flags = {name: pd.Series(False, index=board.index) for name in COSTS}
    for _, group in board.groupby("task", sort=False):
        up = _up(group["higher_is_better"].iloc[0]) if "higher_is_better" in group else True
        score = pd.to_numeric(group["score"], errors="coerce")
        for name, column in COSTS.items():
            if column in group:
                cost = pd.to_numeric(group[column], errors="coerce")
                flags[name].loc[group.index] = front(score, cost, higher_is_better=up)
    text = [" + ".join(name for name in COSTS if flags[name].at[i]) for i in board.index]
    return pd.DataFrame({"pareto": text, "pareto_size": flags["size"], "pareto_latency": flags["latency"]},
                        index=board.index)
