"""``python -m bertvariants.train gpu-bundle``: every job's settings exist in its recipe, precision follows the
processor, and the whole bundle runs end to end at ``--smoke`` size on this CPU (prepare → run → ship → load)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bertvariants.paths import shared_data_dir
from bertvariants.train import gpu_bundle as gb
from bertvariants.train import recipe, load
from bertvariants.train.__main__ import parse_settings, parser
from bertvariants.train.config import config_from_args

RECIPES_WITH_COMPUTE_GOALS = {"mlm-dynamic", "electra", "spanbert", "squad", "clinical", "albert-student"}


@pytest.mark.parametrize("smoke", [False, True], ids=["full", "smoke"])
def test_every_job_is_a_valid_command_of_its_recipe(smoke, tmp_path):
    assert {j.recipe for j in gb.JOBS} == RECIPES_WITH_COMPUTE_GOALS
    assert len({j.name for j in gb.JOBS}) == len(gb.JOBS)
    for job in gb.JOBS:
        cmd = gb.job_command(job, smoke=smoke, out=tmp_path, full=tmp_path / ".full", precision="fp32")
        args = parser().parse_args(cmd[3:])  # after `python -m bertvariants.train`
        overrides = {k: v for k, v in vars(args).items() if k not in ("recipe", "no_progress", "threads", "set", "seeds")}
        overrides.update(parse_settings(args.set))
        cfg = config_from_args(load(recipe(job.recipe))[1], overrides)  # unknown settings raise here
        assert cfg.output == str((tmp_path if job.compact else tmp_path / ".full") / job.name)
        assert "{" not in " ".join(cmd)
        if job.compact:
            assert cfg.lora_rank > 0 or job.recipe == "albert-student"  # compact forms only
    full = sum(j.expected_seconds for j in gb.JOBS)
    assert full <= 15 * 60  # the estimate docs/gpu-bundle.md quotes (training ~8 min + harness scoring)


def test_precision_is_bf16_only_on_cuda_or_a_cpu_with_native_bf16(monkeypatch):
    import torch

    from bertvariants import inference

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(inference, "cpu_has_native_bf16", lambda: False)
    assert gb.bundle_precision() == "fp32"
    monkeypatch.setattr(inference, "cpu_has_native_bf16", lambda: True)
    assert gb.bundle_precision() == "bf16"


def test_corpus_is_cut_from_the_front_to_fit_and_keeps_the_heldout_documents():
    import io

    import numpy as np

    rng = np.random.default_rng(0)
    lengths = rng.integers(50, 150, size=300)
    tokens = rng.integers(0, 30522, size=int(lengths.sum())).astype(np.uint16)
    ends = np.cumsum(lengths)
    whole, dropped = gb.fit_corpus(tokens, ends, 10**9)
    assert dropped == 0
    packed, dropped = gb.fit_corpus(tokens, ends, len(whole) // 2)
    assert 0 < dropped <= 200 and len(packed) <= len(whole) // 2
    arrays = np.load(io.BytesIO(packed))
    assert len(arrays["ends"]) == 300 - dropped and arrays["ends"][-1] == len(arrays["tokens"])
    assert np.array_equal(arrays["tokens"][-int(lengths[-100:].sum()):], tokens[-int(lengths[-100:].sum()):])
    _, dropped = gb.fit_corpus(tokens, ends, 10)  # cannot fit: every training document goes, never the held-out
    assert dropped == 200


def test_a_changed_input_is_refused(tmp_path):
    (tmp_path / "a.bin").write_bytes(b"abc")
    manifest = {"smoke": True, "files": {"a.bin": {"bytes": 3, "sha256": gb.sha256_bytes(b"abc")}}}
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    assert gb.check_inputs(tmp_path)["smoke"]
    (tmp_path / "a.bin").write_bytes(b"abd")
    with pytest.raises(ValueError, match="sha256 differs"):
        gb.check_inputs(tmp_path)


@pytest.mark.timeout(1200)
@pytest.mark.skipif(not (shared_data_dir() / "corpus" / "enwiki2018").is_dir(), reason="needs ../shared/data")
def test_smoke_bundle_runs_every_job_and_its_models_ship(tmp_path, monkeypatch):
    from bertvariants.serving.shipped import ShippedSpec, build_shipped_model, packaged_sha256
    from bertvariants.train.lora import ship

    monkeypatch.setenv("BERTVARIANTS_RESULTS_DIR", str(tmp_path / "stray-results"))
    manifest = gb.prepare(tmp_path / "inputs", smoke=True)
    assert manifest["total_bytes"] <= gb.INPUT_BUDGET and manifest["packaged_sha256"] == packaged_sha256()
    report = gb.run_bundle(tmp_path / "inputs", tmp_path / "out", smoke=True)
    failed = [(r["name"], r.get("error", "")[-1500:]) for r in report["jobs"] if "error" in r]
    assert not failed, failed
    assert [r["name"] for r in report["jobs"]] == [j.name for j in gb.JOBS]
    assert report["precision"] == gb.bundle_precision()
    rows = list((tmp_path / "out" / "results").glob("*.json"))
    assert {json.loads(p.read_text())["task"] for p in rows} >= {"wikipedia-mlm", "wikipedia-rtd", "wikipedia-span",
                                                                "squad_v1", "mtsamples-subset", "stsb"}
    for row in report["jobs"]:
        if row["compact"]:
            assert 0 < row["weights_bytes"] <= gb.MODEL_BUDGET
    squad = tmp_path / "out" / "squad"
    assert "qa_decoding.json" in ShippedSpec.read(squad).files  # its null threshold travels with it
    dst = ship(squad, name="squad", assets=tmp_path / "assets")  # verify(): the packaged base's sha256
    model, spec = build_shipped_model(dst)
    assert spec.base_sha256 == packaged_sha256() and model.config.num_hidden_layers == 6
    assert not (tmp_path / "out" / ".work").exists()
    assert json.loads((tmp_path / "out" / "bundle.json").read_text())["seconds"] == report["seconds"]
