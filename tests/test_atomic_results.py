"""Results are never half-written: corrupt files are skipped by name, concurrent runs all land, Ctrl-C
leaves nothing partial and says so, training checkpoints appear whole."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from .conftest import REPO

RUN = {"task": "stsb", "model": "minilm", "split": "dev", "metrics": {"spearman": 0.82, "pearson": 0.83},
       "primary_metric": "spearman", "score": 0.82, "timestamp": "2026-11-25T13:00:00+00:00"}


def _env():
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    env.pop("BERTVARIANTS_DEBUG", None)
    return env


def test_truncated_and_corrupt_results_are_skipped_with_a_warning_naming_the_file(tmp_path):
    from evaluation import results

    good = results.write_result(RUN, tmp_path)
    (tmp_path / "truncated.json").write_text(json.dumps({**RUN, "model": "other"})[:57])
    (tmp_path / "binary.json").write_bytes(b"\x00\xff\xfe garbage")
    (tmp_path / "list.json").write_text("[1, 2, 3]")
    with pytest.warns(UserWarning) as caught:
        runs = results.load_runs(tmp_path)
        board = results.leaderboard(tmp_path)
    named = " ".join(str(w.message) for w in caught)
    for bad in ("truncated.json", "binary.json", "list.json"):
        assert bad in named, named
    assert runs["model"].tolist() == ["minilm"] and runs["file"].tolist() == [good.name]
    measured = board[board["source"] == "measured"]
    assert measured["model"].tolist() == ["minilm"]


def test_leaderboard_tab_survives_a_corrupt_result_and_exports_safe_csv(tmp_path, monkeypatch):
    """The Leaderboard tab's handler renders the good rows when a file in the results dir is cut short, and
    its CSV download escapes a model name that a spreadsheet would run as a formula."""
    import pandas as pd

    from bertvariants.ui import leaderboard as lb
    from evaluation import results

    results.write_result(RUN, tmp_path)
    results.write_result({**RUN, "model": '=HYPERLINK("http://evil","x")'}, tmp_path)
    (tmp_path / "cut.json").write_text('{"task": "sst2", "model": "x", "metr')
    monkeypatch.setenv("BERTVARIANTS_RESULTS_DIR", str(tmp_path))
    with pytest.warns(UserWarning, match="cut.json"):
        view, csv_path = lb.leaderboard_table("", None, None, ["measured"], 0, 1e6, None, "score", False)
    assert sorted(view["model"].tolist()) == sorted(["minilm", '=HYPERLINK("http://evil","x")'])
    exported = pd.read_csv(csv_path)
    assert sorted(exported["model"].tolist()) == sorted(["minilm", '\'=HYPERLINK("http://evil","x")'])


def test_concurrent_writers_with_the_same_name_all_land(tmp_path):
    """16 runs finishing in the same second (same task/model/split/timestamp) give 16 distinct, whole files."""
    from evaluation import results

    paths: list[Path] = []
    lock = threading.Lock()

    def write(i):
        p = results.write_result({**RUN, "seed": i}, tmp_path, records=[{"id": "0", "prediction": i}])
        with lock:
            paths.append(p)

    threads = [threading.Thread(target=write, args=(i,)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(paths)) == 16
    seeds = sorted(json.loads(p.read_text())["seed"] for p in paths)
    assert seeds == list(range(16))
    for p in paths:  # each result points at its own predictions
        data = json.loads(p.read_text())
        side = tmp_path / data["predictions_file"]
        assert json.loads(side.read_text())["prediction"] == data["seed"]
    assert not list(tmp_path.glob(".*.tmp"))


def _score_cmd(tmp_path: Path, out: Path, tag: str) -> list[str]:
    pred, ref = tmp_path / f"pred_{tag}.txt", tmp_path / "ref.txt"
    pred.write_text("the cat sat on the mat\na dog barked loudly\n")
    ref.write_text("the cat was on the mat\nthe dog barked\n")
    return [sys.executable, "-m", "evaluation", "score", "--metric", "rouge", "--predictions", str(pred),
            "--references", str(ref), "--task", "cnndm", "--model", "same-model", "--output", str(out)]


def test_two_cli_runs_writing_at_once_both_land(tmp_path):
    """Two `python -m evaluation score --output` processes started together into one results dir."""
    out = tmp_path / "results"
    procs = [subprocess.Popen(_score_cmd(tmp_path, out, tag), cwd=REPO, env=_env(), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for tag in ("a", "b")]
    answers = [p.communicate(timeout=180) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [a[1][-500:] for a in answers]
    files = sorted(out.glob("*.json"))
    assert len(files) == 2, files
    written = {json.loads(a[0].strip().splitlines()[-1])["file"] for a in answers}
    assert written == {str(f) for f in files}
    for f in files:
        assert json.loads(f.read_text())["model"] == "same-model"


def _stsb_file(path: Path, n: int) -> Path:
    words = "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu".split()
    lines = ["score\tsentence1\tsentence2"]
    for i in range(n):
        a = " ".join(words[(i + j) % len(words)] for j in range(12)) + f" number {i}"
        b = " ".join(words[(i * 7 + j) % len(words)] for j in range(12)) + f" item {i}"  # unique: no dedupe
        lines.append(f"{(i % 51) / 10:.1f}\t{a}\t{b}")
    path.write_text("\n".join(lines) + "\n")
    return path


def test_ctrl_c_leaves_no_partial_result_and_says_so(tmp_path):
    """SIGINT to `python -m evaluation run` in the middle of encoding: exit 130, a one-line notice, no
    result file and no temp file in the output directory."""
    data = _stsb_file(tmp_path / "sts.tsv", 40_000)  # 80,000 distinct sentences: minutes of encoding
    out = tmp_path / "results"
    proc = subprocess.Popen([sys.executable, "-m", "evaluation", "run", "--task", "stsb", "--model", "minilm",
                             "--data", str(data), "--output", str(out), "--batch-size", "16"],
                            cwd=REPO, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            # a test run started in the background (`cmd &` in a script) inherits SIGINT ignored,
                            # and Python then never raises KeyboardInterrupt: give the child the default handling
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    err: list[str] = []
    reader = threading.Thread(target=lambda: err.extend(iter(lambda: proc.stderr.read(64), "")), daemon=True)
    reader.start()
    deadline = time.monotonic() + 120
    while "encode:" not in "".join(err) and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.2)  # wait until it is inside the encoding loop
    assert proc.poll() is None and "encode:" in "".join(err), "".join(err)[-1000:]
    time.sleep(1.0)
    proc.send_signal(signal.SIGINT)
    stdout = proc.stdout.read()
    proc.wait(timeout=120)
    reader.join(timeout=30)
    stderr = "".join(err)
    assert proc.returncode == 130, stderr[-1000:]
    assert "Traceback" not in stderr
    last = stderr.strip().splitlines()[-1]
    assert "interrupted" in last and "no result was written" in last
    assert stdout.strip() == ""
    left = [p.name for p in out.rglob("*") if p.is_file()] if out.exists() else []
    assert left == []


def test_interrupted_checkpoint_save_keeps_the_previous_checkpoint(tiny_checkpoint, tmp_path):
    """The variant lab's save_checkpoint: Ctrl-C after config.json but before the weights leaves the old
    checkpoint loadable, and no directory that looks like a checkpoint but is half written."""
    from bertvariants import serving
    from bertvariants.train.records import save_checkpoint

    loaded = serving.load_checkpoint(str(tiny_checkpoint("masked-lm")), "masked-lm", device="cpu")
    out = tmp_path / "models" / "mlm-dynamic"
    save_checkpoint(loaded.model, loaded.tokenizer, out)
    before = (out / "model.safetensors").read_bytes()

    class Interrupted:
        def save_pretrained(self, d):
            (Path(d) / "config.json").write_text("{}")
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(Interrupted(), loaded.tokenizer, out)
    assert (out / "model.safetensors").read_bytes() == before
    assert serving.load_checkpoint(str(out), "masked-lm", device="cpu").model is not None
    assert sorted(p.name for p in out.parent.iterdir()) == ["mlm-dynamic"]


def test_training_result_json_is_atomic(tmp_path, monkeypatch):
    """The variant lab writes its result.json with the one atomic writer (bertvariants.io.atomic_write_json)."""
    from bertvariants import io

    target = tmp_path / "result.json"
    io.atomic_write_json(target, {"v": 1})

    def boom(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(io.os, "replace", boom)
    with pytest.raises(KeyboardInterrupt):
        io.atomic_write_json(target, {"v": 2})
    assert json.loads(target.read_text()) == {"v": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["result.json"]
