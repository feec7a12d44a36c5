"""Seed variance on the leaderboard (evaluation/seeds.py): one row per setting run with several seeds, its mean,
spread and Student-t 95% interval, runs of other settings never mixed in, and the seed-level tie test in the ranks."""

from __future__ import annotations

import math

import pandas as pd
import pytest
from scipy import stats

from evaluation import leaderboard as lb
from evaluation import ranks, results, seeds


def _training_run(where, model: str, seed: int, score: float, *, stamp: str, steps: int = 200, task: str = "rte",
                  ci: float = 5.0) -> None:
    config = {"steps": steps, "lr": 5e-5, "seed": seed, "output": f"models/seeds/{model}/seed-{seed}",
              "run_name": model, "task": task}
    results.write_result({"task": task, "model": model, "split": "dev", "n": 277, "metrics": {"accuracy": score},
                          "primary_metric": "accuracy", "timestamp": f"2026-12-07T{stamp}+00:00", "seed": 0,
                          "ci95": {"low": score - ci, "high": score + ci}, "params": 22_700_000,
                          "data_sha256": "abc", "limit": None,
                          "training": {"recipe": "glue", "config": config, "steps": steps}}, where)


def test_summary_is_the_student_t_interval_of_the_mean():
    s = seeds.summarize([60.0, 62.0, 58.0], [42, 43, 44])
    low, high = stats.t.interval(0.95, df=2, loc=60.0, scale=2.0 / math.sqrt(3))
    assert (s.n, s.mean, s.sd) == (3, 60.0, 2.0) and s.low == pytest.approx(low) and s.high == pytest.approx(high)
    assert s.high - s.low > 2 * 1.96 * 2.0 / math.sqrt(3)  # three seeds: wider than the normal interval
    assert "3 seeds" in s.text and "95% CI 55.03–64.97" in s.text
    one = seeds.summarize([70.0])
    assert one.n == 1 and math.isnan(one.sd) and "no interval" in one.text
    with pytest.raises(ValueError, match="finite"):
        seeds.summarize([1.0, float("nan")])


def test_welch_test_matches_scipy_and_needs_two_seeds_a_side():
    a, b = [60.0, 61.0, 59.5], [55.0, 58.0, 54.0]
    assert seeds.seed_test(a, b) == pytest.approx(stats.ttest_ind(a, b, equal_var=False).pvalue)
    assert math.isnan(seeds.seed_test([60.0], b))
    assert seeds.seed_test([1.0, 1.0], [1.0, 1.0]) == 1.0 and seeds.seed_test([1.0, 1.0], [2.0, 2.0]) == 0.0


def test_runs_of_one_setting_fold_into_one_row_and_other_settings_stay_out(tmp_path):
    _training_run(tmp_path, "glue-rte-s3", 42, 90.0, stamp="10:00:00", steps=50)  # an older, other setting
    _training_run(tmp_path, "glue-rte-s3", 42, 55.0, stamp="11:00:00")
    _training_run(tmp_path, "glue-rte-s3", 43, 58.0, stamp="11:10:00")
    _training_run(tmp_path, "glue-rte-s3", 44, 65.0, stamp="11:20:00")
    _training_run(tmp_path, "glue-rte-s3", 43, 60.0, stamp="11:30:00")  # seed 43 again: the newest counts
    _training_run(tmp_path, "glue-rte-one", 42, 57.0, stamp="11:00:00")
    board = results.leaderboard(tmp_path, include_paper=False).set_index("model")
    row = board.loc["glue-rte-s3"]
    expected = seeds.summarize([55.0, 60.0, 65.0], [42, 43, 44])
    assert row["seeds"] == 3 and row["score"] == pytest.approx(60.0) and row["seed_sd"] == pytest.approx(5.0)
    assert (row["seed_ci95_low"], row["seed_ci95_high"]) == pytest.approx((expected.low, expected.high))
    assert row["seed_scores"] == "42: 55.00; 43: 60.00; 44: 65.00"
    assert (row["ci95_low"], row["ci95_high"]) == pytest.approx((55.0, 65.0))  # the runs' own intervals, averaged
    single = board.loc["glue-rte-one"]
    assert single["seeds"] == 1 and pd.isna(single["seed_ci95_low"]) and single["score"] == 57.0
    view = lb.table_view(board.reset_index(), None, "score", False, directory=tmp_path)
    assert {"seeds", "seed_sd", "seed_ci95_low", "seed_ci95_high", "pareto"} <= set(view.columns)
    assert seeds.SEED_VALUES not in results.flat(board.reset_index()).columns  # internal: never a table column


def test_a_newer_run_of_another_setting_replaces_the_seed_row(tmp_path):
    for seed, score in ((1, 50.0), (2, 52.0)):
        _training_run(tmp_path, "m", seed, score, stamp=f"10:0{seed}:00")
    _training_run(tmp_path, "m", 1, 70.0, stamp="12:00:00", steps=999)
    row = results.leaderboard(tmp_path, include_paper=False).iloc[0]
    assert row["seeds"] == 1 and row["score"] == 70.0  # the newest setting, alone: no stale seeds mixed in


def test_harness_seeds_of_an_evaluation_fold_too(tmp_path):
    for seed, score in ((0, 80.0), (1, 82.0), (2, 81.0)):
        results.write_result({"task": "sst2", "model": "minilm", "split": "dev", "n": 872, "seed": seed,
                              "metrics": {"accuracy": score}, "primary_metric": "accuracy", "data_sha256": "d",
                              "model_revision": "r", "limit": None, "timestamp": f"2026-12-07T10:0{seed}:00+00:00"},
                             tmp_path)
    row = results.leaderboard(tmp_path, include_paper=False).iloc[0]
    assert row["seeds"] == 3 and row["score"] == pytest.approx(81.0)


def _row(model, score, values=(), low=None, high=None):
    s = seeds.summarize(values) if len(values) > 1 else None
    return pd.Series({"model": model, "task": "rte", "split": "dev", "score": score, "ci95_low": low,
                      "ci95_high": high, "higher_is_better": True, "source": "measured", "file": f"{model}.json",
                      "predictions_file": None, seeds.SEED_VALUES: tuple(values),
                      "seed_ci95_low": s.low if s else None, "seed_ci95_high": s.high if s else None})


def test_ranks_use_the_seed_level_test_when_both_rows_have_seeds():
    best = _row("a", 60.0, (60.0, 61.0, 59.0), 55.0, 65.0)
    far = _row("b", 50.0, (50.0, 51.0, 49.0), 45.0, 55.0)  # bootstrap CIs overlap; the seeds do not
    near = _row("c", 59.7, (59.0, 62.0, 58.1), 55.0, 65.0)
    v = ranks.verdict(best, far, None)
    assert not v.tie and "Welch t-test over seeds, 3 vs 3" in v.note
    assert ranks.verdict(best, near, None).tie
    board = pd.DataFrame([best, far, near])
    assert ranks.tie_aware_ranks(board)["rank"].tolist() == [1, 3, 1]


def test_seeds_on_one_side_only_use_the_interval_over_seeds():
    seeded = _row("a", 60.0, (56.0, 60.0, 64.0), 58.0, 62.0)  # seed interval ≈ 50–70, bootstrap 58–62
    run = _row("b", 52.0, (), 51.0, 53.0)
    v = ranks.verdict(seeded, run, None)
    assert v.tie and "seeds on one side only" in v.note  # the bootstrap CIs alone would not overlap
    assert ranks.row_interval(seeded) == pytest.approx((seeded["seed_ci95_low"], seeded["seed_ci95_high"]))
    assert ranks.row_interval(run) == (51.0, 53.0)
    steady = _row("c", 60.0, (59.9, 60.0, 60.1), 55.0, 65.0)  # seeds agree; the test sample still varies
    assert ranks.row_interval(steady) == (55.0, 65.0)


def test_paper_rows_have_no_seed_count():
    board = results.leaderboard(results.DEFAULT_RESULTS_DIR)
    assert board.loc[board["source"] == "paper", "seeds"].isna().all()
    assert (board.loc[board["source"] == "measured", "seeds"] >= 1).all()
    assert str(board["seeds"].dtype) == "Int64"  # a count is shown as 3, not 3.0
