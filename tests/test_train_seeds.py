"""``python -m bertvariants.train RECIPE --seeds K`` (bertvariants/train/seeds.py): K runs with consecutive seeds
under one run name, each in its own checkpoint directory, folded into one leaderboard row."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bertvariants.train import seeds as train_seeds
from bertvariants.train.__main__ import main
from evaluation import results

pytestmark = pytest.mark.usefixtures("one_torch_thread")

POS = ["a joyous , moving film", "wonderful acting and a great story", "a delight from start to finish"]
NEG = ["a dull , lifeless mess", "boring and far too long", "the plot makes no sense"]


@pytest.fixture()
def sst2_dir(tmp_path) -> Path:
    root = tmp_path / "data"
    (root / "glue" / "sst2").mkdir(parents=True)
    for split, reps in (("train", 4), ("dev", 1)):
        rows = [f"{t}\t1" for t in POS] + [f"{t}\t0" for t in NEG]
        (root / "glue" / "sst2" / f"{split}.tsv").write_text("sentence\tlabel\n" + "\n".join(rows * reps) + "\n")
    return root


def test_seed_plan_is_consecutive_named_and_never_writes_a_served_directory(tmp_path):
    plan = train_seeds.seed_plan("glue", {"run_name": "rte-s3", "task": "rte"}, 3, models_dir=tmp_path)
    assert [p["seed"] for p in plan] == [42, 43, 44]  # the recipe's default seed first
    assert [p["output"] for p in plan] == [str(tmp_path / "seeds" / "rte-s3" / f"seed-{s}") for s in (42, 43, 44)]
    assert all(p["run_name"] == "rte-s3" and p["task"] == "rte" for p in plan)
    given = train_seeds.seed_plan("glue", {"run_name": "r", "seed": 7, "output": str(tmp_path / "o")}, 2,
                                  models_dir=tmp_path)
    assert [(p["seed"], Path(p["output"]).name) for p in given] == [(7, "seed-7"), (8, "seed-8")]
    with pytest.raises(ValueError, match="--seeds needs --set run_name"):
        train_seeds.seed_plan("glue", {}, 3, models_dir=tmp_path)
    with pytest.raises(ValueError, match="--seeds must be a whole number between 1 and"):
        train_seeds.seed_plan("glue", {"run_name": "r"}, 0, models_dir=tmp_path)


def test_cli_refuses_seeds_without_a_run_name_or_with_all(capsys):
    assert main(["glue", "--seeds", "3"]) == 2
    assert "--seeds needs --set run_name=NAME" in capsys.readouterr().err
    assert main(["all", "--seeds", "2", "--set", "run_name=x"]) == 2
    assert "--seeds runs one recipe" in capsys.readouterr().err


def test_two_seeds_train_two_runs_and_fold_into_one_leaderboard_row(sst2_dir, tiny_checkpoint, tmp_path, monkeypatch):
    monkeypatch.setenv("BERTVARIANTS_RESULTS_DIR", str(tmp_path / "results"))
    overrides = {"data": str(sst2_dir), "base_model": str(tiny_checkpoint("feature-extraction")), "steps": 3,
                 "batch_size": 4, "log_every": 1, "run_name": "teacher-s2", "output": str(tmp_path / "m")}
    reports, summary = train_seeds.run_seeds("sst2-teacher", overrides, 2, progress=False, models_dir=tmp_path)
    assert [r.output.name for r in reports] == ["seed-42", "seed-43"] and summary.seeds == (42, 43)
    records = [json.loads(Path(r.result_path).read_text()) for r in reports]
    assert [r["training"]["config"]["seed"] for r in records] == [42, 43]
    assert {r["model"] for r in records} == {"teacher-s2"}
    assert summary.scores == tuple(float(r["metrics"]["accuracy"]) for r in records)
    board = results.leaderboard(tmp_path / "results", include_paper=False)
    assert len(board) == 1 and board.iloc[0]["seeds"] == 2
    assert board.iloc[0]["score"] == pytest.approx(summary.mean)
