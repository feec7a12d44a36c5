"""Tie-aware ranks of the leaderboard (evaluation.ranks) on synthetic boards, and the table that shows them."""

from __future__ import annotations

import numpy as np
import pandas as pd

from evaluation import ranks, results


def _board(rows: list[tuple], task="t", up=True) -> pd.DataFrame:
    """(model, score, ci low, ci high, source) rows of one task, no stored predictions."""
    return pd.DataFrame([{"model": m, "task": task, "split": "dev", "score": s, "ci95_low": lo, "ci95_high": hi,
                          "source": src, "higher_is_better": up, "file": "", "predictions_file": None}
                         for m, s, lo, hi, src in rows])


def test_overlapping_intervals_share_the_rank_of_the_best_row_above():
    board = _board([("c", 80.0, 78.0, 82.0, "measured"), ("a", 90.0, 88.0, 92.0, "measured"),
                    ("b", 89.5, 87.0, 91.0, "measured"), ("d", 79.0, 75.0, 81.0, "measured")])
    out = pd.concat([board, ranks.tie_aware_ranks(board)], axis=1).sort_values("rank", kind="stable")
    assert list(out["model"]) == ["a", "b", "c", "d"] and list(out["rank"]) == [1, 1, 3, 3]  # competition ranks
    notes = dict(zip(out["model"], out["rank_note"]))
    assert notes["a"] == "best"
    assert notes["b"] == "tied with a: 95% CIs overlap (CI rule: no shared predictions)"  # it says so
    assert notes["c"] == "below a: 95% CIs do not overlap (CI rule: no shared predictions)"
    assert notes["d"].startswith("tied with c:")


def test_papers_numbers_are_points_and_lower_is_better_tasks_rank_ascending():
    paper = _board([("x", 96.9, None, None, "paper"), ("y", 96.4, None, None, "paper"),
                    ("z", 96.4, None, None, "paper"), ("m", 96.0, 95.0, 97.0, "measured")])
    assert list(ranks.tie_aware_ranks(paper)["rank"]) == [1, 2, 2, 2]  # m's interval holds y's 96.4
    assert ranks.tie_aware_ranks(paper)["rank_note"].iloc[2] == "tied with y: same score (no CIs)"
    loss = _board([("static", 5.32, 5.17, 5.45, "measured"), ("dynamic", 4.10, 4.0, 4.2, "measured"),
                   ("none", float("nan"), None, None, "measured")], up=False)
    r = ranks.tie_aware_ranks(loss)
    assert list(r["rank"].astype("object")) == [2, 1, pd.NA] and r["rank_note"].iloc[2] == "no score"


def test_tasks_are_ranked_separately():
    board = pd.concat([_board([("a", 90.0, 89.0, 91.0, "measured"), ("b", 50.0, 49.0, 51.0, "measured")], task="t1"),
                       _board([("c", 70.0, 69.0, 71.0, "measured")], task="t2")], ignore_index=True)
    assert list(ranks.tie_aware_ranks(board)["rank"]) == [1, 2, 1]


def _run(tmp_path, model, correct, gold, *, ci, ts):
    pred = np.where(correct, gold, 1 - gold)
    recs = [{"id": str(i), "prediction": int(p), "reference": int(g), "error": float(p != g)}
            for i, (p, g) in enumerate(zip(pred, gold))]
    acc = 100 * float((pred == gold).mean())
    return results.write_result({"task": "sst2", "model": model, "split": "dev", "n": len(gold),
                                 "metrics": {"accuracy": acc}, "primary_metric": "accuracy", "timestamp": ts,
                                 "ci95": {"low": ci[0], "high": ci[1]}}, tmp_path, recs)


def test_the_paired_test_decides_when_both_runs_stored_predictions(tmp_path):
    rng = np.random.default_rng(0)
    gold = rng.integers(0, 2, 500)
    base = rng.random(500) < 0.85
    near = base.copy()
    near[:4] = False  # four examples worse: not a significant difference
    # intervals made up to be disjoint: the CI rule alone would split a and b, the paired test ties them
    _run(tmp_path, "a", base, gold, ci=(84.9, 85.1), ts="2026-01-01T00:00:00+00:00")
    _run(tmp_path, "b", near, gold, ci=(84.0, 84.3), ts="2026-01-02T00:00:00+00:00")
    _run(tmp_path, "c", rng.random(500) < 0.55, gold, ci=(50.0, 60.0), ts="2026-01-03T00:00:00+00:00")
    board = results.leaderboard(tmp_path, include_paper=False)
    out = pd.concat([board[["model"]], ranks.tie_aware_ranks(board, tmp_path)], axis=1).set_index("model")
    assert list(out.loc[["a", "b", "c"], "rank"]) == [1, 1, 3]
    assert out.loc["b", "rank_note"].startswith("tied with a: p = ") and "(paired bootstrap)" in out.loc["b", "rank_note"]
    assert out.loc["c", "rank_note"] == "below a: p < 0.001 (paired bootstrap)"
    # without the directory (no predictions to read) the same board falls back to CI overlap, and says so
    assert "CI rule" in ranks.tie_aware_ranks(board)["rank_note"].iloc[1]


def test_the_table_shows_ranks_rounded_and_the_csv_keeps_full_precision(tmp_path):
    from evaluation import leaderboard as lb

    rng = np.random.default_rng(1)
    gold = rng.integers(0, 2, 300)
    _run(tmp_path, "a", rng.random(300) < 0.8, gold, ci=(75.123456, 84.987654), ts="2026-01-01T00:00:00+00:00")
    _run(tmp_path, "b", rng.random(300) < 0.6, gold, ci=(55.5, 64.5), ts="2026-01-02T00:00:00+00:00")
    board = results.leaderboard(tmp_path, include_paper=False)
    view = lb.table_view(board, list(lb.DEFAULT_COLUMNS), "rank", False, directory=tmp_path)  # best first
    assert list(view.columns) == list(lb.DEFAULT_COLUMNS) and list(view["rank"]) == [1, 2]
    shown = lb.display_table(view)
    assert shown["ci95_low"].iloc[0] == 75.12 and view["ci95_low"].iloc[0] == 75.123456
    csv = pd.read_csv(lb.export_csv(view))
    assert csv["ci95_low"].iloc[0] == 75.123456 and csv["rank"].tolist() == [1, 2]
    assert list(lb.table_view(board, ["rank"], "rank", True, directory=tmp_path)["rank"]) == [2, 1]
