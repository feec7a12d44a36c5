"""The models this repository ships: every slot of spaces.yml that names one has it, it loads offline from the
clone alone (no ../shared, no models/), runs one small inference, and all weights together stay ≤ 40 MB."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch

from bertvariants import serving
from bertvariants.serving.manifest import load_manifest
from bertvariants.serving.shipped import SHIPPED_DIR, ShippedSpec, shipped_dir

from .conftest import REPO

WEIGHTS_BUDGET_MB = 40.0
SHIPPED_TASKS = [t for t in load_manifest().tasks.values() if t.shipped]


def test_every_model_slot_names_a_shipped_or_packaged_model():
    """A fresh clone has no models/: each task needs a shipped model or a packaged one to be served offline."""
    for task in load_manifest().tasks.values():
        assert task.shipped or task.offline == "packaged" or task.package_name, task.key


@pytest.mark.parametrize("task", SHIPPED_TASKS, ids=lambda t: t.key)
def test_shipped_model_loads_and_runs(task):
    folder = shipped_dir(task.shipped)
    assert (folder / "shipped.json").is_file(), (f"{task.key}: spaces.yml ships {task.shipped!r} but {folder} has no "
                                                 f"shipped.json; build it with `{task.build}` then "
                                                 f"`python -m bertvariants.train ship {task.shipped}`")
    spec = ShippedSpec.read(folder)
    assert spec.kind == task.kind and (folder / "README.md").is_file()  # with its model card
    loaded = serving.load_checkpoint(str(folder), task.kind, device="cpu")
    tok = loaded.tokenizer
    with torch.inference_mode():
        if task.kind == "question-answering":
            from bertvariants.qa import answer_questions

            res = answer_questions(loaded.model, tok, ["What is the capital of France?"],
                                   ["Paris is the capital and most populous city of France."], allow_impossible=False)
            assert res[0].answer
        elif task.kind == "masked-lm":
            enc = tok(f"The capital of France is {tok.mask_token}.", return_tensors="pt")
            logits = loaded.model(**enc).logits
            assert logits.shape[-1] == tok.vocab_size and torch.isfinite(logits).all()
        else:
            enc = tok(["a moving, funny and beautifully acted film"], return_tensors="pt")
            logits = loaded.model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"]).logits
            assert torch.isfinite(logits).all()


SERVED = {t.shipped for t in SHIPPED_TASKS}
EXTRA_SHIPPED = sorted(p.name for p in SHIPPED_DIR.iterdir() if (p / "shipped.json").is_file() and p.name not in SERVED)


@pytest.mark.parametrize("name", EXTRA_SHIPPED)
def test_shipped_sentence_students_load_by_name_and_agree_with_their_teacher(name):
    """The students no slot serves (distil-student, albert-student) load by name from the clone alone and embed
    a paraphrase pair closer than an unrelated pair, as their teacher does."""
    from bertvariants import sentence_bert as sb

    named = serving.load(name)
    m = named
    assert m.resolution.source in ("shipped", "trained") and named.variant in ("Distillation", "ALBERT")
    assert (shipped_dir(name) / "README.md").is_file()
    close, far = (sb.similarity(m.model, m.tokenizer, "A man is eating food.", b).score
                  for b in ("Someone is having a meal.", "The stock market fell sharply today."))
    assert close > far + 0.2


def test_albert_student_table_is_recomputed_the_same_whatever_sign_lapack_returns():
    """svd_factorize fixes each singular vector's sign, so the shipped ALBERT student's recomputed V×E table does
    not depend on the LAPACK build: flipping the SVD's signs gives the same factors."""
    from bertvariants.albert_init import svd_factorize

    w = torch.randn(50, 12, generator=torch.Generator().manual_seed(0))
    a, b = svd_factorize(w, 5)
    a2, b2 = svd_factorize(-w, 5)  # the same subspace, every singular pair's sign flipped somewhere
    assert torch.allclose(b, b2, atol=1e-5) and torch.allclose(a, -a2, atol=1e-5)
    assert (b.gather(1, b.abs().argmax(1, keepdim=True)) > 0).all()


def test_shipped_weights_fit_the_budget():
    tracked = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True, text=True, check=True)
    files = [REPO / f for f in tracked.stdout.split("\0") if f]
    weight_suffixes = (".safetensors", ".bin", ".onnx", ".pt", ".pth", ".gguf", ".npz", ".ckpt", ".h5")
    total = sum(f.stat().st_size for f in files if f.suffix in weight_suffixes and f.is_file()) / 1e6
    assert total <= WEIGHTS_BUDGET_MB, f"{total:.1f} MB of weight files in git (budget {WEIGHTS_BUDGET_MB} MB)"
    pickles = [f for f in SHIPPED_DIR.rglob("*") if f.suffix in (".bin", ".pt", ".pth", ".ckpt", ".pkl")]
    assert not pickles, f"no pickle in the shipped assets: {pickles}"


def test_models_command_reports_every_slot_served_on_a_fresh_clone(tmp_path):
    """``python -m bertvariants models`` with an empty models directory (a fresh clone) and offline."""
    env = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "BERTVARIANTS_MODELS_DIR": str(tmp_path),
           "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    out = subprocess.run([sys.executable, "-m", "bertvariants", "models", "--no-load", "--json"], cwd=REPO, env=env,
                         capture_output=True, text=True, timeout=120)
    report = json.loads(out.stdout.strip().splitlines()[-1])
    missing = [s["task"] for s in report["slots"] if s["source"] == "unavailable"]
    assert out.returncode == 0 and not missing, (missing, out.stderr[-2000:])
    assert {s["task"] for s in report["slots"]} == set(load_manifest().tasks)
    assert all(s["source"] in ("shipped", "packaged") for s in report["slots"])
    assert {r["name"] for r in report["project_models"]} == set(EXTRA_SHIPPED)
    assert all(r["source"] == "shipped" and r["size_mb"] > 0 for r in report["project_models"])


def test_models_command_exits_1_and_says_why_when_a_slot_is_unavailable(tmp_path):
    import yaml

    manifest = yaml.safe_load((REPO / "spaces.yml").read_text())
    manifest["tasks"]["spanbert-qa"]["shipped"] = "no-such-model"
    (tmp_path / "spaces.yml").write_text(yaml.safe_dump(manifest))
    env = {"HF_HUB_OFFLINE": "1", "BERTVARIANTS_MODELS_DIR": str(tmp_path / "models"), "PATH": "/usr/bin:/bin",
           "HOME": str(tmp_path), "BERTVARIANTS_MANIFEST": str(tmp_path / "spaces.yml")}
    out = subprocess.run([sys.executable, "-m", "bertvariants", "models", "--no-load"], cwd=REPO, env=env,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 1
    row = next(line for line in out.stdout.splitlines() if line.startswith("spanbert-qa"))
    assert "unavailable" in row and "python -m bertvariants.train squad" in row


def test_a_missing_weights_package_makes_the_slot_unavailable_not_a_crash(monkeypatch):
    from bertvariants.serving import packaged

    def missing(name):
        raise packaged.PackageMissing(f"{name}: not installed here")

    monkeypatch.setattr(serving.sources, "locate", missing)
    monkeypatch.setattr(serving.sources, "available", lambda name: False)
    monkeypatch.setattr(serving.sources, "packaged_model_path", lambda: missing("minilm"))
    with pytest.raises(serving.ModelUnavailable, match="minilm: not installed here"):
        serving.resolve("similarity", online=False)


def test_a_missing_package_model_says_which_package_to_install(monkeypatch):
    task = next(t for t in load_manifest().tasks.values() if t.package_name)
    monkeypatch.setattr(serving.sources, "available", lambda name: False)
    monkeypatch.setattr(serving.sources, "_hub_cache_dir", lambda *a, **k: None)
    with pytest.raises(serving.ModelUnavailable, match="from the pip package"):
        serving.resolve(task.key, online=False)


def test_every_shipped_tensor_is_finite():
    """No inf or NaN in any shipped weight (a folded standardisation once stored 1/σ ≈ 1e6 of constant [CLS]
    dimensions in fp16 as inf: the forward pass stayed finite through tanh, every gradient was NaN)."""
    import torch
    from safetensors.torch import load_file

    for f in sorted((REPO / "bertvariants" / "assets" / "models").glob("*/*.safetensors")):
        for name, t in load_file(str(f)).items():
            assert torch.isfinite(t.float()).all(), f"{f.parent.name}/{f.name}: {name} has inf or NaN"
