"""The job list across pairs (evaluation/sweep.py): manifests, stable shards, per-job atomic results, merge.

Done-when of issue 28: a 2-shard sweep of a small manifest + ``merge`` gives the same results as running the jobs
one by one, and a killed shard re-run completes only its missing jobs.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from evaluation import runner, sweep
from evaluation.__main__ import main

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture()
def small_manifest(tmp_path, tiny_checkpoint) -> Path:
    """2 tiny models × STS-B (a 9-pair file in its format) × seeds 0, 1: four jobs."""
    data = tmp_path / "sts.csv"
    data.write_text("".join(f"g\tf\t2012\t{i:04d}\t{i % 5}.0\tA man number {i} plays.\tA man {i * 3} sings.\n"
                            for i in range(9)))
    models = [str(tiny_checkpoint("feature-extraction")), str(tiny_checkpoint("feature-extraction", num_hidden_layers=1))]
    path = tmp_path / "sweep.yml"
    path.write_text(yaml.safe_dump({"output": str(tmp_path / "default-out"), "grid": [
        {"models": models, "tasks": ["stsb"], "seeds": [0, 1], "data": str(data), "limit": 7, "batch_size": 4}]}))
    return path


def _last_json(text: str) -> dict:
    return json.loads(text.strip().splitlines()[-1])


def _same_result(a: dict, b: dict) -> bool:
    keys = ("task", "model", "split", "n", "metrics", "score", "ci95", "seed", "data_sha256", "model_revision", "limit")
    return all(a.get(k) == b.get(k) for k in keys)


def test_two_shards_and_merge_equal_running_the_jobs_one_by_one(small_manifest, tmp_path, capsys):
    jobs = sweep.read_manifest(small_manifest).jobs
    assert len(jobs) == 4
    done = []
    for i in (0, 1):
        assert main(["sweep", str(small_manifest), "--shard", f"{i}/2", "--output", str(tmp_path / f"s{i}")]) == 0
        report = _last_json(capsys.readouterr().out)
        assert report["shard"] == f"{i}/2" and not report["failed"] and not report["skipped"]
        done.append(set(report["done"]))
    assert not (done[0] & done[1]) and done[0] | done[1] == {j.id for j in jobs}  # disjoint, complete
    store = tmp_path / "store"
    assert main(["merge", str(tmp_path / "s0"), str(tmp_path / "s1"), "--into", str(store)]) == 0
    merged = _last_json(capsys.readouterr().out)
    assert len(merged["copied"]) == 4 and merged["missing"] == []
    for job in jobs:  # the same numbers and predictions as one `python -m evaluation run` per job
        alone = runner.run(job.task, job.model, data=job.data, limit=job.limit, batch_size=job.batch_size,
                           seed=job.seed, progress=False)
        record = json.loads((store / f"{job.stem}.json").read_text())
        assert _same_result(record, alone.result.to_dict()), job.stem
        stored = [json.loads(line) for line in (store / record["predictions_file"]).read_text().splitlines()]
        assert stored == alone.records
    intervals = {json.dumps(json.loads((store / f"{j.stem}.json").read_text())["ci95"]) for j in jobs
                 if j.model == jobs[0].model}
    assert len(intervals) == 2, intervals  # the seed reaches the run (the bootstrap): the two seeds' rows differ
    assert main(["merge", str(tmp_path / "s0"), str(tmp_path / "s1"), "--into", str(store)]) == 0
    again = _last_json(capsys.readouterr().out)
    assert again["copied"] == [] and len(again["present"]) == 4  # merging twice changes nothing


def test_a_killed_shard_rerun_completes_only_its_missing_jobs(small_manifest, tmp_path, capsys):
    jobs = list(sweep.read_manifest(small_manifest).jobs)
    out = tmp_path / "shard"
    calls: list[str] = []

    def killed_at_third(task, model, **kw):
        if len(calls) == 2:
            raise KeyboardInterrupt  # SIGINT / a scheduler's kill in the middle of job 3
        calls.append(model)
        return runner.run(task, model, **kw)

    with pytest.raises(KeyboardInterrupt):
        sweep.run_jobs(jobs, out, evaluate=killed_at_third)
    assert sorted(p.name for p in out.glob("*.json")) == sorted(f"{j.stem}.json" for j in jobs[:2])
    assert not list(out.glob("*.tmp")) and not list(out.glob(".*"))  # nothing half-written
    sweep.write_job_list(sweep.read_manifest(small_manifest), out)
    assert main(["merge", str(out), "--into", str(tmp_path / "store")]) == 1  # two jobs missing, named
    captured = capsys.readouterr()
    assert {e["id"] for e in _last_json(captured.out)["missing"]} == {j.id for j in jobs[2:]}
    assert captured.err.count("missing ") == 2 and "python -m evaluation run --task stsb" in captured.err
    calls.clear()
    report = sweep.run_jobs(jobs, out, evaluate=lambda task, model, **kw: calls.append(model) or runner.run(
        task, model, **kw))
    assert report.skipped == [j.id for j in jobs[:2]] and report.done == [j.id for j in jobs[2:]]
    assert len(calls) == 2
    assert sweep.run_jobs(jobs, out, evaluate=killed_at_third).skipped == [j.id for j in jobs]  # nothing left


def test_a_failing_job_is_reported_and_the_shard_goes_on(tmp_path):
    jobs = [sweep.Job("stsb", "a"), sweep.Job("stsb", "b")]

    def evaluate(task, model, **kw):
        raise ValueError(f"model {model} cannot load")

    report = sweep.run_jobs(jobs, tmp_path, evaluate=evaluate)
    assert report.done == [] and set(report.failed) == {j.id for j in jobs}
    assert "model a cannot load" in report.failed[jobs[0].id] and not list(tmp_path.glob("*.json"))


def test_shards_are_stable_disjoint_and_cover_the_jobs():
    # the id is a SHA-256 of the job's canonical JSON: the same on every machine, process and Python
    assert sweep.Job("stsb", "minilm").id == "ef5e303c77eb"
    jobs = [sweep.Job(t, m, s) for t in ("stsb", "sst2", "rte") for m in ("minilm", "x", "y") for s in range(4)]
    for n in (1, 2, 3, 5, 8):
        parts = [sweep.shard_jobs(jobs, i, n) for i in range(n)]
        assert sorted(j.id for p in parts for j in p) == sorted(j.id for j in jobs)
        assert sum(map(len, parts)) == len(jobs)
    halves = [len(sweep.shard_jobs(jobs, i, 2)) for i in (0, 1)]
    assert min(halves) >= len(jobs) // 4  # a hash, not a bias: neither shard is nearly empty


def test_manifest_grids_and_their_errors(tmp_path):
    path = tmp_path / "m.yml"
    path.write_text("models: minilm\ntasks: [stsb, sst2]\nseeds: [0, 1, 2]\nlimit: 5\n")
    m = sweep.read_manifest(path)
    assert len(m.jobs) == 6 and {j.limit for j in m.jobs} == {5} and m.output == sweep.DEFAULT_OUTPUT
    path.write_text("grid:\n- {models: [minilm], tasks: [stsb]}\n- {models: [minilm], tasks: [stsb]}\n")
    assert len(sweep.read_manifest(path).jobs) == 1  # listed twice, run once
    for text, message in (("grid:\n- {models: [m], tasks: [t], epochs: 3}\n", "unknown key.*epochs"),
                          ("models: [m]\n", "at least one model and one task"),
                          ("models: [m]\ntasks: [t]\nseeds: [a]\n", "seeds must be integers"),
                          ("- 1\n", "a manifest is a mapping")):
        path.write_text(text)
        with pytest.raises(ValueError, match=message):
            sweep.read_manifest(path)
    with pytest.raises(ValueError, match="manifest not found"):
        sweep.read_manifest(tmp_path / "none.yml")
    assert sweep.parse_shard("3/4") == (3, 4) and sweep.parse_shard(None) == (0, 1)
    for bad in ("4/4", "1", "-1/2", "a/b", "0/0"):
        with pytest.raises(ValueError, match="--shard must be i/N"):
            sweep.parse_shard(bad)


def test_sweep_list_prints_the_shard_and_runs_nothing(small_manifest, tmp_path, capsys):
    assert main(["sweep", str(small_manifest), "--list", "--shard", "0/1"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 4 and all("python -m evaluation run --task stsb" in line for line in lines)
    assert not (tmp_path / "default-out").exists()
