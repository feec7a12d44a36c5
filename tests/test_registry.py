"""Registry: manifest validation, resolution order, offline detection, the model cache, the tab table."""

from __future__ import annotations

import copy
import re
import time
from pathlib import Path

import pytest
import yaml

from bertvariants import registry as reg

REPO = Path(__file__).resolve().parent.parent


def _raw() -> dict:
    return yaml.safe_load((REPO / "spaces.yml").read_text())


def _manifest(tmp_path: Path, raw: dict | None = None) -> reg.Manifest:
    raw = copy.deepcopy(raw or _raw())
    raw["models_dir"] = str(tmp_path / "models")
    return reg.parse_manifest(raw, base_dir=tmp_path)


# ---------------------------------------------------------------- manifest
def test_shipped_manifest_is_valid_and_covers_every_model_tab():
    manifest = reg.load_manifest()
    model_tabs = {t.tab for t in manifest.tasks.values()}
    assert model_tabs <= {t.key for t in reg.TABS}
    for key in ("similarity", "albert-features", "roberta-fill-mask", "electra-discriminator", "spanbert-qa",
                "distillation-teacher", "clinical-classifier", "summarization"):
        assert key in manifest.tasks
    assert manifest.task("similarity").hub == "sentence-transformers/all-MiniLM-L6-v2"
    assert manifest.task("spanbert-qa").tokenizer == "SpanBERT/spanbert-large-cased"


@pytest.mark.parametrize(
    "mutate, match",
    [
        (lambda d: d.pop("version"), r"'version' must be 1"),
        (lambda d: d.__setitem__("tasks", []), r"'tasks' must be a non-empty mapping"),
        (lambda d: d["tasks"]["similarity"].pop("kind"), r"tasks\.similarity\.kind: missing"),
        (lambda d: d["tasks"]["similarity"].__setitem__("kind", "magic"), r"tasks\.similarity\.kind: 'magic' is not one of"),
        (lambda d: d["tasks"]["similarity"].__setitem__("tab", "gpt"), r"tasks\.similarity\.tab: 'gpt' is not a tab"),
        (lambda d: d["tasks"]["similarity"].__setitem__("colour", "red"), r"tasks\.similarity: unknown key\(s\) colour"),
        (lambda d: d["tasks"]["roberta-fill-mask"].__setitem__("offline", "packaged"),
         r"tasks\.roberta-fill-mask\.offline: the packaged MiniLM has no task head"),
        (lambda d: d["tasks"]["similarity"].__setitem__("offline", "somewhere"), r"tasks\.similarity\.offline: must be"),
        (lambda d: d["tasks"]["similarity"].__setitem__("offline", "trained:../../etc"), r"tasks\.similarity\.offline: 'trained:<name>'"),
        (lambda d: d["tasks"]["similarity"].__setitem__("hub", 42), r"tasks\.similarity\.hub: must be a string"),
        (lambda d: d["tasks"].__setitem__("x", {"tab": "bart", "kind": "seq2seq", "offline": "none"}), r"tasks\.x: no 'hub'"),
    ],
)
def test_malformed_manifest_names_the_key(mutate, match):
    raw = _raw()
    mutate(raw)
    with pytest.raises(reg.ManifestError, match=match):
        reg.parse_manifest(raw)


def test_manifest_file_errors(tmp_path):
    with pytest.raises(reg.ManifestError, match="manifest not found"):
        reg.load_manifest(tmp_path / "nope.yml")
    bad = tmp_path / "spaces.yml"
    bad.write_text("tasks: [unclosed\n")
    with pytest.raises(reg.ManifestError, match="not valid YAML"):
        reg.load_manifest(bad)


def test_build_demo_rejects_a_bad_manifest(tmp_path, monkeypatch):
    from bertvariants.ui import build_demo

    bad = tmp_path / "spaces.yml"
    raw = _raw()
    raw["tasks"]["similarity"]["kind"] = "magic"
    bad.write_text(yaml.safe_dump(raw))
    monkeypatch.setenv("BERTVARIANTS_MANIFEST", str(bad))
    reg.default_manifest.cache_clear()
    try:
        with pytest.raises(reg.ManifestError, match=r"tasks\.similarity\.kind"):
            build_demo()
    finally:
        monkeypatch.delenv("BERTVARIANTS_MANIFEST")
        reg.default_manifest.cache_clear()


# ---------------------------------------------------------------- resolution order
def test_resolution_order(tmp_path, monkeypatch, tiny_checkpoint):
    """explicit env path -> hub cache/online -> project-trained -> packaged -> unavailable."""
    manifest = _manifest(tmp_path)
    spec = manifest.task("albert-features")  # offline: packaged
    fill = manifest.task("roberta-fill-mask")  # offline: trained:mlm-dynamic

    # offline, nothing cached or trained: packaged MiniLM for embeddings, unavailable for fill-mask
    assert reg.resolve(spec, manifest, online=False).source == "packaged"
    with pytest.raises(reg.ModelUnavailable, match=r"python -m bertvariants.train mlm-dynamic"):
        reg.resolve(fill, manifest, online=False)

    # a project-trained checkpoint is found in the models directory
    trained = manifest.models_dir / "mlm-dynamic"
    trained.parent.mkdir(parents=True)
    trained.symlink_to(tiny_checkpoint("masked-lm"), target_is_directory=True)
    res = reg.resolve(fill, manifest, online=False)
    assert (res.source, res.location) == ("trained", str(trained))

    # online wins over trained (the Space serves the real Hub checkpoint)
    res = reg.resolve(fill, manifest, online=True)
    assert (res.source, res.location) == ("hub", "roberta-base")

    # an explicit local path wins over everything
    monkeypatch.setenv(fill.env_var, str(tiny_checkpoint("masked-lm")))
    res = reg.resolve(fill, manifest, online=True)
    assert (res.source, res.location) == ("local", str(tiny_checkpoint("masked-lm")))

    # a bad explicit path is an error naming the variable, not a silent fallback
    monkeypatch.setenv(fill.env_var, str(tmp_path / "missing"))
    with pytest.raises(reg.ModelUnavailable, match="BERTVARIANTS_MODEL_ROBERTA_FILL_MASK"):
        reg.resolve(fill, manifest, online=False)


def test_hub_cache_is_used_offline(tmp_path, monkeypatch, tiny_checkpoint):
    manifest = _manifest(tmp_path)
    monkeypatch.setattr(reg, "_hub_cache_dir", lambda repo, rev: str(tiny_checkpoint("masked-lm")) if repo else None)
    res = reg.resolve(manifest.task("roberta-fill-mask"), manifest, online=False)
    assert res.source == "hub-cache"


def test_env_var_name_and_label(tmp_path):
    manifest = _manifest(tmp_path)
    assert manifest.task("electra-discriminator").env_var == "BERTVARIANTS_MODEL_ELECTRA_DISCRIMINATOR"
    res = reg.resolve("similarity", manifest, online=False)
    assert "packaged all-MiniLM-L6-v2" in res.label and "sentence-transformers/all-MiniLM-L6-v2" in res.label
    assert "unavailable" in reg.describe("spanbert-qa", manifest)


def test_offline_detection_is_fast_and_sticky(monkeypatch):
    reg.hub_online.cache_clear()
    try:
        monkeypatch.setenv("HF_HUB_OFFLINE", "1")
        t = time.perf_counter()
        assert reg.hub_online() is False
        assert time.perf_counter() - t < 0.1
    finally:
        reg.hub_online.cache_clear()


def test_offline_probe_failure_sets_hf_offline(monkeypatch):
    for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "BERTVARIANTS_OFFLINE"):
        monkeypatch.delenv(var, raising=False)

    def refuse(*a, **k):
        raise OSError("no network")

    monkeypatch.setattr(reg.socket, "create_connection", refuse)
    reg.hub_online.cache_clear()
    try:
        assert reg.hub_online() is False
        import os

        assert os.environ["HF_HUB_OFFLINE"] == "1"
    finally:
        reg.hub_online.cache_clear()


# ---------------------------------------------------------------- loading and cache
def test_get_model_loads_once_and_uses_env_checkpoint(monkeypatch, tiny_checkpoint):
    path = tiny_checkpoint("feature-extraction")
    monkeypatch.setenv("BERTVARIANTS_MODEL_ALBERT_FEATURES", str(path))
    a = reg.get_model("albert-features")
    b = reg.get_model("albert-features")
    assert a is b
    assert a.resolution.source == "local" and a.num_parameters > 0
    assert type(a.model).__name__ == "BertModel"
    assert not a.model.training


def test_lru_is_bounded():
    cache = reg.ModelCache(max_items=2)
    loads = []
    for key in ["a", "b", "a", "c", "b"]:
        cache.get((key,), lambda k=key: loads.append(k) or k)
    assert len(cache) == 2
    assert loads == ["a", "b", "c", "b"]  # 'a' was a hit; 'b' was evicted by 'c' (least recently used)


def test_load_checkpoint_rejects_unknown_kind(tiny_checkpoint):
    with pytest.raises(ValueError, match="unknown model kind"):
        reg.load_checkpoint(str(tiny_checkpoint("feature-extraction")), "telepathy")


def test_model_allowed_only_manifest_ids(monkeypatch):
    monkeypatch.delenv("BERTVARIANTS_ALLOW_ANY_MODEL", raising=False)
    assert reg.model_allowed("roberta-base")
    assert reg.model_allowed("minilm")
    assert not reg.model_allowed("someone/untrusted-model")
    monkeypatch.setenv("BERTVARIANTS_ALLOW_ANY_MODEL", "1")
    assert reg.model_allowed("someone/untrusted-model")


def test_pick_device_env_override(monkeypatch):
    reg.pick_device.cache_clear()
    monkeypatch.setenv("BERTVARIANTS_DEVICE", "cpu")
    try:
        assert reg.pick_device() == "cpu"
    finally:
        reg.pick_device.cache_clear()


# ---------------------------------------------------------------- the tab table
def test_tab_table_is_the_ten_tabs_in_order():
    assert [t.label for t in reg.TABS] == ["ALBERT", "RoBERTa", "ELECTRA", "SpanBERT", "Distillation", "Sentence-BERT",
                                          "ClinicalBERT", "VideoBERT", "BART", "Leaderboard"]
    assert len({t.key for t in reg.TABS}) == len(reg.TABS)
    for spec in reg.TABS:
        assert spec.paper and spec.url.startswith("https://") and spec.summary


def test_every_tab_has_its_modules():
    for spec in reg.TABS:
        assert (REPO / "bertvariants" / "ui" / f"{spec.key}.py").is_file(), spec.key
        if spec.key != "leaderboard":
            assert (REPO / "bertvariants" / f"{spec.key}.py").is_file(), spec.key


def test_library_never_imports_gradio():
    for path in list((REPO / "bertvariants").glob("*.py")) + list((REPO / "evaluation").rglob("*.py")) + \
            list((REPO / "bertvariants" / "train").glob("*.py")):
        src = path.read_text()
        # gradio_client (a plain HTTP client, used by evaluation/loadtest.py to drive the app) is not gradio
        assert not re.search(r"\b(import|from) gradio\b(?!_client)", src), path


def test_unavailable_message_says_how_long_the_build_takes(tmp_path):
    from bertvariants.train import RECIPES, build_note

    manifest = _manifest(tmp_path)
    msg = reg.unavailable_message(manifest.task("distillation-student"), manifest)
    assert "python -m bertvariants.train bilstm-student` (≈ 9 min on a 2-core CPU, after " \
           "`python -m bertvariants.train sst2-teacher` (≈ 22 min))" in msg
    assert all(1 <= r.minutes <= 30 for r in RECIPES)  # the lab's budget: ≈ 15 min per recipe, none wildly off
    assert build_note("mlm-static") == "≈ 6 min on a 2-core CPU"
    with pytest.raises(ValueError, match="unknown recipe"):
        build_note("nope")
