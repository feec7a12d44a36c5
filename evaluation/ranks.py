"""Tie-aware ranks of the leaderboard: rows the data cannot tell apart share a rank.

Within each task, rows are ordered best first in the task's own direction (a held-out loss ascending). Walking
down, each row is compared with the *leader* of the rank group above it (the best-ranked row of that group):

- both rows folded several seeds (:mod:`evaluation.seeds`) → the seed-level test: Welch's t-test on the two
  rows' seed scores, p ≥ 0.05 → a tie (the variance between seeds is what the examples' bootstrap cannot see);
  seeds on one side only → the intervals' overlap, that side spanning the wider of its seed and bootstrap intervals;
- else, both rows are runs with stored per-example predictions on the same split → the paired bootstrap test of
  :mod:`evaluation.significance`; p ≥ 0.05 → the row shares the leader's rank;
- otherwise (a paper's number, a run without predictions, a metric the records cannot recompute) → the rows'
  95% intervals: overlapping intervals share a rank. A paper's number has no interval and counts as a point.
  Overlap is the cruder, conservative rule (two intervals can overlap while the difference is significant,
  Schenker & Gentleman 2001), and the ``rank_note`` of every such row says it was used.

Ranks are competition ranks ("1, 1, 3"): a row that differs from its leader takes its position.

>>> import pandas as pd
>>> board = pd.DataFrame({"model": ["a", "b", "c"], "task": ["t"] * 3, "split": ["dev"] * 3,
...                       "score": [90.0, 89.5, 80.0], "ci95_low": [88.0, 87.0, 78.0], "ci95_high": [92.0, 91.0, 82.0],
...                       "higher_is_better": [True] * 3, "source": ["measured"] * 3, "file": ["", "", ""],
...                       "predictions_file": [None] * 3})
>>> tie_aware_ranks(board)["rank"].tolist()
[1, 1, 3]
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

import pandas as pd

from . import seeds
from . import significance as sig

RANK_COLUMNS = ("rank", "rank_note")


@dataclass(frozen=True)
class Verdict:
    """Whether a row ties with its leader, and the reason in words."""

    tie: bool
    note: str


def _has_predictions(row) -> bool:
    value = row.get("predictions_file")
    return row.get("source") == "measured" and isinstance(value, str) and bool(value) and bool(row.get("file"))


def row_interval(row) -> tuple[float, float]:
    """A row's 95% interval: its bootstrap one; a row with several seeds (:mod:`evaluation.seeds`) spans the wider
    of that and its interval over seeds (the one sees the test sample's variance, the other the training seed's)."""
    boot = sig.interval(row["score"], row.get("ci95_low"), row.get("ci95_high"))
    if len(seeds.seed_values(row)) < 2:
        return boot
    over = sig.interval(row["score"], row.get("seed_ci95_low"), row.get("seed_ci95_high"))
    return min(boot[0], over[0]), max(boot[1], over[1])


def ci_verdict(leader, row, *, why: str = "") -> Verdict:
    """Overlap of the two rows' 95% intervals (a paper's number is a point; a row with several seeds counts with
    its interval over seeds); ``why`` says why not a paired test."""
    a, b = row_interval(leader), row_interval(row)
    tie = a[0] <= b[1] and b[0] <= a[1]
    head = f"{'tied with' if tie else 'below'} {leader['model']}"
    if a[0] == a[1] and b[0] == b[1]:
        return Verdict(tie, f"{head}: {'same score' if tie else 'lower score'} (no CIs)")
    return Verdict(tie, f"{head}: 95% CIs {'overlap' if tie else 'do not overlap'} "
                        f"(CI rule: {why or 'no paired test'})")


def verdict(leader, row, directory: str | os.PathLike | None, *, alpha: float = sig.ALPHA) -> Verdict:
    """Does ``row`` tie with ``leader``? Welch's t-test over seeds when both rows have several seeds; else the
    paired test when both stored predictions; else CI overlap (a row with seeds: its interval over seeds)."""
    a, b = seeds.seed_values(leader), seeds.seed_values(row)
    if len(a) >= 2 and len(b) >= 2:
        p = seeds.seed_test(a, b)
        shown = "p < 0.001" if p < 0.001 else f"p = {p:.3f}"
        tie = not p < alpha
        return Verdict(tie, f"{'tied with' if tie else 'below'} {leader['model']}: {shown} (Welch t-test over seeds, "
                            f"{len(a)} vs {len(b)})")
    if len(a) >= 2 or len(b) >= 2:
        return ci_verdict(leader, row, why="seeds on one side only")
    if directory is None or not (_has_predictions(leader) and _has_predictions(row)):
        return ci_verdict(leader, row, why="no shared predictions")
    try:
        test = sig.significance(directory, leader["file"], row["file"])
    except ValueError as exc:
        return ci_verdict(leader, row, why=str(exc).split(":")[-1].strip()[:80])
    p = "p < 0.001" if test.p_value < 0.001 else f"p = {test.p_value:.3f}"
    if test.significant(alpha):
        return Verdict(False, f"below {leader['model']}: {p} (paired bootstrap)")
    return Verdict(True, f"tied with {leader['model']}: {p} (paired bootstrap)")


def _ordered(group: pd.DataFrame) -> pd.DataFrame:
    up = group["higher_is_better"].map(lambda v: True if v is None or (isinstance(v, float) and math.isnan(v))
                                       else bool(v))
    score = pd.to_numeric(group["score"], errors="coerce")
    key = score.where(up, -score)
    return group.assign(_key=key).sort_values("_key", ascending=False, kind="stable", na_position="last")


def tie_aware_ranks(board: pd.DataFrame, directory: str | os.PathLike | None = None, *,
                    alpha: float = sig.ALPHA) -> pd.DataFrame:
    """``rank`` (nullable int) and ``rank_note`` for every row of ``board``, aligned to its index.

    ``directory``: where the rows' result files are (paired tests need them); None = CI overlap only."""
    out = pd.DataFrame({"rank": pd.array([pd.NA] * len(board), dtype="Int64"), "rank_note": [""] * len(board)},
                       index=board.index)
    for _, group in board.groupby("task", sort=False):
        leader, leader_rank = None, 0
        for position, (index, row) in enumerate(_ordered(group).iterrows(), start=1):
            if pd.isna(pd.to_numeric(row["score"], errors="coerce")):
                out.at[index, "rank_note"] = "no score"
                continue
            if leader is None:
                leader, leader_rank = row, position
                out.at[index, "rank"], out.at[index, "rank_note"] = position, "best"
                continue
            v = verdict(leader, row, directory, alpha=alpha)
            if not v.tie:
                leader, leader_rank = row, position
            out.at[index, "rank"], out.at[index, "rank_note"] = leader_rank, v.note
    return out
