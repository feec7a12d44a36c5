"""The command line: exact interface, last-line JSON, one-line errors, result files."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import types
from pathlib import Path


from evaluation.__main__ import main

REPO = Path(__file__).resolve().parent.parent
RESULT_FIELDS = {"task", "model", "split", "n", "metrics", "ci95", "primary_metric", "examples_per_second", "seconds",
                 "device", "seed", "data_sha256", "model_revision", "versions", "timestamp"}


def _cli(*args, cwd=REPO):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    return subprocess.run([sys.executable, "-m", "evaluation", *map(str, args)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120)


def _last_json(stdout: str) -> dict:
    return json.loads(stdout.strip().splitlines()[-1])


def test_score_rouge_plain_text_subprocess(tmp_path):
    (tmp_path / "pred.txt").write_text("The cat sat on the mat . A dog barked .\nRain fell all day .\n")
    (tmp_path / "ref.txt").write_text("A dog barked . The cat sat on the mat .\nIt rained all day .\n")
    proc = _cli("score", "--metric", "rouge", "--predictions", tmp_path / "pred.txt", "--references", tmp_path / "ref.txt")
    assert proc.returncode == 0, proc.stderr
    res = _last_json(proc.stdout)
    assert set(res["metrics"]) == {"rouge1", "rouge2", "rougeL", "rougeLsum"} and res["n"] == 2
    assert res["primary_metric"] == "rougeLsum" and res["metrics"]["rougeLsum"] > res["metrics"]["rougeL"]
    assert res["ci95"]["low"] <= res["metrics"]["rougeLsum"] <= res["ci95"]["high"]


def test_bad_input_is_one_line_without_traceback(tmp_path, capsys):
    (tmp_path / "pred.txt").write_text("one\ntwo\nthree\n")
    (tmp_path / "ref.txt").write_text("one\ntwo\n")
    assert main(["score", "--metric", "rouge", "--predictions", str(tmp_path / "pred.txt"),
                 "--references", str(tmp_path / "ref.txt")]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.count("\n") == 1 and "Traceback" not in captured.err
    assert captured.err.startswith("error: 3 predictions but 2 references")


def _squad_files(tmp_path, preds):
    data = {"version": "v2.0", "data": [{"title": "t", "paragraphs": [{"context": "c", "qas": [
        {"id": "q1", "question": "?", "answers": [{"text": "the Normans", "answer_start": 0}]},
        {"id": "q2", "question": "?", "answers": []}]}]}]}
    (tmp_path / "dev.json").write_text(json.dumps(data))
    (tmp_path / "pred.json").write_text(json.dumps(preds))
    return ["--predictions", tmp_path / "pred.json", "--references", tmp_path / "dev.json"]


def test_score_squad_official_formats(tmp_path, capsys):
    assert main(["score", "--metric", "squad_v2", *map(str, _squad_files(tmp_path, {"q1": "Normans", "q2": ""}))]) == 0
    res = _last_json(capsys.readouterr().out)
    assert res["metrics"]["exact_match"] == 100.0 and res["metrics"]["NoAns_f1"] == 100.0
    assert main(["score", "--metric", "squad_v2", *map(str, _squad_files(tmp_path, {"q1": "Normans"}))]) == 2
    err = capsys.readouterr().err
    assert "1 of 2 question ids have no prediction (first: q2)" in err and err.count("\n") == 1


def test_score_classification_metrics(tmp_path, capsys):
    (tmp_path / "p.txt").write_text("1\n0\n1\n1\n")
    (tmp_path / "r.txt").write_text("1\n0\n0\n1\n")
    assert main(["score", "--metric", "accuracy", "--predictions", str(tmp_path / "p.txt"),
                 "--references", str(tmp_path / "r.txt")]) == 0
    assert _last_json(capsys.readouterr().out)["metrics"] == {"accuracy": 75.0}
    assert main(["score", "--metric", "pearson", "--predictions", str(tmp_path / "missing.txt"),
                 "--references", str(tmp_path / "r.txt")]) == 2
    assert "file not found" in capsys.readouterr().err


def test_run_writes_the_same_json_it_prints(tmp_path, tiny_checkpoint, capsys):
    data = tmp_path / "sts.csv"
    data.write_text("".join(f"g\tf\t2012\t{i:04d}\t{i % 5}.0\tA man number {i}.\tA man {i * 3}.\n" for i in range(9)))
    argv = ["run", "--task", "stsb", "--model", str(tiny_checkpoint("feature-extraction")), "--data", str(data),
            "--limit", "6", "--batch-size", "4", "--output", str(tmp_path / "out")]
    assert main(argv) == 0
    res = _last_json(capsys.readouterr().out)
    assert RESULT_FIELDS <= set(res) and res["n"] == 6 and res["split"] == "dev" and res["seed"] == 0
    saved = json.loads(Path(res["file"]).read_text())
    assert saved["metrics"] == res["metrics"] and saved["predictions_file"].endswith(".predictions.jsonl")
    assert len((tmp_path / "out" / saved["predictions_file"]).read_text().splitlines()) == 6
    assert main(argv) == 0  # same seed, same numbers; a second file, not an overwrite
    again = _last_json(capsys.readouterr().out)
    assert (again["metrics"], again["ci95"]) == (res["metrics"], res["ci95"])
    assert len(list((tmp_path / "out").glob("*.json"))) == 2


def test_run_errors_are_clear(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("BERTVARIANTS_DATA", str(tmp_path))
    assert main(["run", "--task", "stsb", "--model", "minilm"]) == 2
    assert "pass --data PATH" in capsys.readouterr().err
    (tmp_path / "sts.csv").write_text("g\tf\t2012\t0\t1.0\tA.\tB.\n")
    assert main(["run", "--task", "stsb", "--model", "org/not-here", "--data", str(tmp_path / "sts.csv")]) == 2
    assert "Hub is unreachable (offline)" in capsys.readouterr().err
    assert main(["run", "--task", "nope", "--model", "minilm"]) == 2
    assert "unknown task 'nope'" in capsys.readouterr().err


def test_leaderboard_command(tmp_path, capsys):
    from evaluation import results

    results.write_result({"task": "stsb", "model": "m1", "split": "dev", "n": 3, "metrics": {"spearman": 80.0},
                          "primary_metric": "spearman", "timestamp": "2026-01-01T00:00:00+00:00", "params": 5_000_000},
                         tmp_path)
    assert main(["leaderboard", "--results", str(tmp_path), "--csv", str(tmp_path / "lb.csv")]) == 0
    out = capsys.readouterr().out
    assert "m1" in out and "measured" in out and "paper" in out
    assert "m1" in (tmp_path / "lb.csv").read_text()


def test_bench_subcommand_forwards_argv(monkeypatch):
    seen = []
    fake = types.ModuleType("evaluation.bench")
    fake.main = lambda argv: seen.append(argv) or 0
    monkeypatch.setitem(sys.modules, "evaluation.bench", fake)
    monkeypatch.setattr("evaluation.bench", fake, raising=False)
    assert main(["bench", "--x", "1"]) == 0
    assert seen == [["--x", "1"]]
