"""Data-parallel evaluation of one (model, task) pair under ``accelerate launch`` (evaluation/parallel.py).

The CI check of issue 28: two CPU processes (torchrun through accelerate's launcher, gloo) each encode about half
of STS-B's sentences, rank 0 alone writes one result that records ``"num_processes": 2``, and its metrics, interval
and predictions file equal a single-process run's.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from evaluation import parallel

from .conftest import REPO, SHARED_DATA, free_port

LIMIT = 24


def _sts_file(tmp_path: Path) -> Path:
    """The real STS-B dev file when the shared data is here, else a small one in its format."""
    real = SHARED_DATA / "glue" / "stsb" / "sts-dev.csv"
    if real.is_file():
        return real
    path = tmp_path / "sts-dev.csv"
    path.write_text("".join(f"g\tf\t2012\t{i:04d}\t{i % 6}.0\tA man is playing instrument number {i}.\t"
                            f"Someone plays the {['guitar', 'flute', 'drum'][i % 3]} {i * 7 % 5} times.\n"
                            for i in range(2 * LIMIT)))
    return path


def _env() -> dict:
    return {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "OMP_NUM_THREADS": "1",
            "BERTVARIANTS_RESULTS_DIR": "/nonexistent-results"}  # the run writes only to --output


def _run(prefix: list[str], data: Path, out: Path) -> subprocess.CompletedProcess:
    args = ["-m", "evaluation", "run", "--task", "stsb", "--model", "minilm", "--data", str(data),
            "--limit", str(LIMIT), "--batch-size", "8", "--output", str(out)]
    return subprocess.run([*prefix, *args], cwd=REPO, env=_env(), capture_output=True, text=True, timeout=300)


def _one_result(out: Path) -> tuple[dict, str]:
    files = sorted(out.glob("*.json"))
    assert len(files) == 1, [f.name for f in files]
    record = json.loads(files[0].read_text())
    return record, (out / record["predictions_file"]).read_text()


def test_two_processes_split_the_examples_and_write_the_single_process_result(tmp_path):
    pytest.importorskip("accelerate")
    data = _sts_file(tmp_path)
    single = _run([sys.executable], data, tmp_path / "single")
    assert single.returncode == 0, single.stderr[-2000:]
    launch = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
              "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
              "--main_process_port", str(free_port())]
    multi = _run(launch, data, tmp_path / "multi")
    assert multi.returncode == 0, multi.stderr[-2000:]
    a, preds_a = _one_result(tmp_path / "single")
    b, preds_b = _one_result(tmp_path / "multi")  # exactly one file: rank 1 wrote nothing
    assert (a["num_processes"], b["num_processes"]) == (1, 2)
    # STS-B encodes each pair's two sentences: 2 × LIMIT inputs, cut in two contiguous halves per encode call
    assert a["inputs_per_process"] == [2 * LIMIT]
    assert b["inputs_per_process"] == [2 * len(r) for r in parallel.shares(LIMIT, 2)] == [LIMIT, LIMIT]
    assert (b["metrics"], b["ci95"], b["n"], b["score"]) == (a["metrics"], a["ci95"], a["n"], a["score"])
    assert preds_b == preds_a
    printed = [line for line in multi.stdout.splitlines() if line.startswith("{")]
    assert len(printed) == 1 and json.loads(printed[0])["num_processes"] == 2  # one JSON line, from rank 0


def test_shares_are_contiguous_and_cover_every_input():
    for n in (0, 1, 5, 24, 101):
        for k in (1, 2, 3, 8):
            cut = parallel.shares(n, k)
            assert [i for r in cut for i in r] == list(range(n))
            assert max(map(len, cut)) - min(map(len, cut)) <= 1


def test_one_process_is_a_plain_call_and_is_counted(monkeypatch):
    monkeypatch.delenv(parallel.WORLD_ENV, raising=False)
    parallel.state.cache_clear()
    with parallel.tally() as counted:
        out = parallel.map_in_order(lambda part: [[len(t)] for t in part], ["ab", "c", "def"])
    assert out.tolist() == [[2], [1], [3]] and counted.per_process == [3]
    assert parallel.is_main() and parallel.num_processes() == 1


def test_formats_that_cannot_split_are_refused_under_several_processes(monkeypatch):
    monkeypatch.setattr(parallel, "num_processes", lambda: 2)
    parallel.check_format("sts")
    with pytest.raises(ValueError, match="runs in one process"):
        parallel.check_format("qa")


def test_a_cpu_launch_that_started_one_process_is_named(monkeypatch):
    monkeypatch.setenv("ACCELERATE_USE_CPU", "True")
    monkeypatch.setenv("MASTER_ADDR", "127.0.0.1")
    monkeypatch.delenv(parallel.WORLD_ENV, raising=False)
    monkeypatch.delenv("PMI_SIZE", raising=False)
    assert parallel.lone_cpu_launch()
    parallel.state.cache_clear()
    with pytest.warns(UserWarning, match="--multi_gpu"):
        assert parallel.state() is None
    parallel.state.cache_clear()
    monkeypatch.setenv(parallel.WORLD_ENV, "1")
    assert not parallel.lone_cpu_launch()
