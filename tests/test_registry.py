"""Registry + the one resolver: manifest validation, resolution order, offline detection, the model cache, the
tab table. Task keys and tabs are taken from spaces.yml and registry.TABS, so a new task or tab is covered the
day it lands."""

from __future__ import annotations

import ast
import copy
import re
import shutil
import time
from pathlib import Path

import pytest
import yaml

from bertvariants import registry as reg
from bertvariants import serving
from bertvariants.serving import device, manifest as mf

REPO = Path(__file__).resolve().parent.parent
UI = REPO / "bertvariants" / "ui"


def _raw() -> dict:
    return yaml.safe_load((REPO / "spaces.yml").read_text())


def _manifest(tmp_path: Path, raw: dict | None = None) -> mf.Manifest:
    raw = copy.deepcopy(raw or _raw())
    raw["models_dir"] = str(tmp_path / "models")
    return mf.parse_manifest(raw, base_dir=tmp_path)


def _first(raw_tasks: dict, what: str, pred) -> str:
    key = next((k for k, t in raw_tasks.items() if pred(t)), None)
    assert key is not None, f"spaces.yml has no task that is {what}: the tests below need one"
    return key


_TASKS = _raw()["tasks"]
ANY = next(iter(_TASKS))  # any task
HEADED = _first(_TASKS, "served by a model with a task head", lambda t: t["kind"] not in mf.PACKAGED_KINDS)
PACKAGED = _first(_TASKS, "served offline by the packaged MiniLM", lambda t: t["offline"] == "packaged")
TRAINED = _first(_TASKS, "on the Hub and trained here offline",
                 lambda t: t.get("hub") and t["offline"].startswith("trained:") and t.get("build"))
SHIPPED = _first(_TASKS, "served offline by a model shipped in the repository", lambda t: t.get("shipped"))


def _without_shipped(raw: dict | None = None) -> dict:
    """The manifest as if the repository shipped no compact models (what a task falls back to without them)."""
    raw = copy.deepcopy(raw or _raw())
    for task in raw["tasks"].values():
        task.pop("shipped", None)
    return raw


def tasks_named_by(path: Path) -> set[str]:
    """The task keys a ui module asks ``get_model`` for: string literals, or module-level string constants."""
    tree = ast.parse(path.read_text())
    consts = {t.id: n.value.value for n in tree.body if isinstance(n, ast.Assign) and isinstance(n.value, ast.Constant)
              for t in n.targets if isinstance(t, ast.Name) and isinstance(n.value.value, str)}
    for n in tree.body:  # A, B = "a", "b"
        if isinstance(n, ast.Assign) and isinstance(n.targets[0], ast.Tuple) and isinstance(n.value, ast.Tuple):
            consts.update({t.id: v.value for t, v in zip(n.targets[0].elts, n.value.elts)
                           if isinstance(t, ast.Name) and isinstance(v, ast.Constant)})
    named = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "get_model" and node.args:
            arg = node.args[0]
            if isinstance(arg, ast.Constant):
                named.add(arg.value)
            elif isinstance(arg, ast.Name) and arg.id in consts:
                named.add(consts[arg.id])
    return named | {v for v in consts.values() if v in _TASKS}


# ---------------------------------------------------------------- manifest
def test_shipped_manifest_is_valid_and_covers_every_model_tab():
    manifest = mf.load_manifest()
    assert {t.tab for t in manifest.tasks.values()} <= {t.key for t in reg.TABS}
    for spec in reg.TABS:  # every task a tab asks for exists, and belongs to that tab
        path = UI / f"{spec.key}.py"
        for key in tasks_named_by(path):
            assert key in manifest.tasks, f"{path.name} asks for task {key!r}: add it to spaces.yml"
            assert manifest.task(key).tab == spec.key, f"spaces.yml: tasks.{key}.tab should be {spec.key!r}"
    for task in manifest.tasks.values():  # and every task of the manifest is served by its tab
        assert task.key in tasks_named_by(UI / f"{task.tab}.py"), \
            f"spaces.yml task {task.key!r} (tab {task.tab}) is never asked for by bertvariants/ui/{task.tab}.py"
    assert manifest.task("similarity").hub == "sentence-transformers/all-MiniLM-L6-v2"
    assert manifest.task("spanbert-qa").tokenizer == "SpanBERT/spanbert-large-cased"


def test_build_minutes_agree_with_the_recipe_table():
    from bertvariants.train import build_note

    for task in mf.load_manifest().tasks.values():
        if task.build and task.build.startswith("python -m bertvariants.train "):
            recipe = task.build.rsplit(" ", 1)[1]
            assert task.build_minutes == build_note(recipe), \
                f"spaces.yml tasks.{task.key}.build_minutes should be {build_note(recipe)!r} (train.RECIPES)"


@pytest.mark.parametrize(
    "mutate, match",
    [
        (lambda d: d.pop("version"), r"'version' must be 1"),
        (lambda d: d.__setitem__("tasks", []), r"'tasks' must be a non-empty mapping"),
        (lambda d: d["tasks"][ANY].pop("kind"), rf"tasks\.{ANY}\.kind: missing"),
        (lambda d: d["tasks"][ANY].__setitem__("kind", "magic"), rf"tasks\.{ANY}\.kind: 'magic' is not one of"),
        (lambda d: d["tasks"][ANY].__setitem__("tab", "gpt"), rf"tasks\.{ANY}\.tab: 'gpt' is not a tab"),
        (lambda d: d["tasks"][ANY].__setitem__("colour", "red"), rf"tasks\.{ANY}: unknown key\(s\) colour"),
        (lambda d: d["tasks"][HEADED].__setitem__("offline", "packaged"),
         rf"tasks\.{HEADED}\.offline: the packaged MiniLM has no task head"),
        (lambda d: d["tasks"][ANY].__setitem__("offline", "somewhere"), rf"tasks\.{ANY}\.offline: must be"),
        (lambda d: d["tasks"][ANY].__setitem__("offline", "trained:../../etc"), rf"tasks\.{ANY}\.offline: 'trained:<name>'"),
        (lambda d: d["tasks"][ANY].__setitem__("hub", 42), rf"tasks\.{ANY}\.hub: must be a string"),
        (lambda d: d["tasks"].__setitem__("x", {"tab": reg.TABS[0].key, "kind": "seq2seq", "offline": "none"}),
         r"tasks\.x: no 'hub'"),
    ],
)
def test_malformed_manifest_names_the_key(mutate, match):
    raw = _raw()
    mutate(raw)
    with pytest.raises(mf.ManifestError, match=match):
        mf.parse_manifest(raw)


def test_manifest_file_errors(tmp_path):
    with pytest.raises(mf.ManifestError, match="manifest not found"):
        mf.load_manifest(tmp_path / "nope.yml")
    bad = tmp_path / "spaces.yml"
    bad.write_text("tasks: [unclosed\n")
    with pytest.raises(mf.ManifestError, match="not valid YAML"):
        mf.load_manifest(bad)


def test_build_demo_rejects_a_bad_manifest(tmp_path, monkeypatch):
    from bertvariants.ui import build_demo

    bad = tmp_path / "spaces.yml"
    raw = _raw()
    raw["tasks"][ANY]["kind"] = "magic"
    bad.write_text(yaml.safe_dump(raw))
    monkeypatch.setenv("BERTVARIANTS_MANIFEST", str(bad))
    mf.default_manifest.cache_clear()
    try:
        with pytest.raises(mf.ManifestError, match=rf"tasks\.{ANY}\.kind"):
            build_demo()
    finally:
        monkeypatch.delenv("BERTVARIANTS_MANIFEST")
        mf.default_manifest.cache_clear()


# ---------------------------------------------------------------- resolution order
def test_resolution_order(tmp_path, monkeypatch, tiny_checkpoint):
    """explicit env path -> hub cache/online -> project-trained -> shipped -> packaged -> unavailable."""
    manifest = _manifest(tmp_path)
    spec = manifest.task(PACKAGED)
    fill = manifest.task(TRAINED)

    # offline, nothing cached or trained: packaged MiniLM for embeddings, the shipped model for a task head
    assert serving.resolve(spec, manifest, online=False).source == "packaged"
    if fill.shipped:
        res = serving.resolve(fill, manifest, online=False)
        assert (res.source, Path(res.location).name) == ("shipped", fill.shipped)
    # without shipped models: unavailable, and the message says how to build one
    bare = _manifest(tmp_path, _without_shipped())
    with pytest.raises(serving.ModelUnavailable, match=re.escape(fill.build)):
        serving.resolve(bare.task(TRAINED), bare, online=False)

    # a project-trained checkpoint is found in the models directory
    trained = manifest.models_dir / fill.trained_name
    trained.parent.mkdir(parents=True, exist_ok=True)
    trained.symlink_to(tiny_checkpoint("masked-lm"), target_is_directory=True)
    res = serving.resolve(fill, manifest, online=False)
    assert (res.source, res.location) == ("trained", str(trained))

    # online wins over trained (the Space serves the real Hub checkpoint)
    res = serving.resolve(fill, manifest, online=True)
    assert (res.source, res.location) == ("hub", fill.hub)

    # an explicit local path wins over everything
    monkeypatch.setenv(fill.env_var, str(tiny_checkpoint("masked-lm")))
    res = serving.resolve(fill, manifest, online=True)
    assert (res.source, res.location) == ("local", str(tiny_checkpoint("masked-lm")))

    # a bad explicit path is an error naming the variable, not a silent fallback
    monkeypatch.setenv(fill.env_var, str(tmp_path / "missing"))
    with pytest.raises(serving.ModelUnavailable, match=fill.env_var):
        serving.resolve(fill, manifest, online=False)


def test_hub_cache_is_used_offline(tmp_path, monkeypatch, tiny_checkpoint):
    """A checkpoint in the Hugging Face cache (its real layout: refs/<revision> -> snapshots/<sha>) serves offline."""
    import huggingface_hub.constants

    manifest = _manifest(tmp_path)
    fill = manifest.task(TRAINED)
    repo = tmp_path / "hub" / f"models--{fill.hub.replace('/', '--')}"
    sha = "0123456789abcdef0123456789abcdef01234567"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / fill.revision).write_text(sha)
    shutil.copytree(tiny_checkpoint("masked-lm"), repo / "snapshots" / sha)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    res = serving.resolve(fill, manifest, online=False)
    assert res.source == "hub-cache" and Path(res.location).name == sha


def test_env_var_name_and_label(tmp_path):
    manifest = _manifest(tmp_path)
    spec = mf.TaskSpec(key="electra-discriminator", tab="electra", kind="electra-discriminator", hub=None)
    assert spec.env_var == "BERTVARIANTS_MODEL_ELECTRA_DISCRIMINATOR"
    res = serving.resolve(PACKAGED, manifest, online=False)
    assert "packaged all-MiniLM-L6-v2" in res.label and mf.PACKAGED_HUB_ID in res.label
    raw = _without_shipped()
    raw["tasks"][SHIPPED]["offline"] = "none"
    assert "unavailable" in serving.describe(SHIPPED, _manifest(tmp_path, raw))


def test_offline_detection_is_fast_and_sticky(monkeypatch):
    device.hub_online.cache_clear()
    try:
        monkeypatch.setenv("HF_HUB_OFFLINE", "1")
        t = time.perf_counter()
        assert device.hub_online() is False
        assert time.perf_counter() - t < 0.1
    finally:
        device.hub_online.cache_clear()


def test_offline_probe_failure_sets_hf_offline(monkeypatch):
    for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "BERTVARIANTS_OFFLINE"):
        monkeypatch.delenv(var, raising=False)

    def refuse(*a, **k):
        raise OSError("no network")

    monkeypatch.setattr(device.socket, "create_connection", refuse)
    device.hub_online.cache_clear()
    try:
        assert device.hub_online() is False
        import os

        assert os.environ["HF_HUB_OFFLINE"] == "1"
    finally:
        device.hub_online.cache_clear()


# ---------------------------------------------------------------- loading and cache
def test_get_model_loads_once_and_uses_env_checkpoint(monkeypatch, tiny_checkpoint):
    spec = mf.default_manifest().task(PACKAGED)
    monkeypatch.setenv(spec.env_var, str(tiny_checkpoint(spec.kind)))
    a = serving.get_model(PACKAGED)
    b = serving.get_model(PACKAGED)
    assert a is b
    assert a.resolution.source == "local" and a.num_parameters > 0
    assert type(a.model).__name__ == "BertModel"
    assert not a.model.training


def test_lru_is_bounded():
    cache = serving.cache.ModelCache(max_items=2)
    loads = []
    for key in ["a", "b", "a", "c", "b"]:
        cache.get((key,), lambda k=key: loads.append(k) or k)
    assert len(cache) == 2
    assert loads == ["a", "b", "c", "b"]  # 'a' was a hit; 'b' was evicted by 'c' (least recently used)


def test_load_checkpoint_rejects_unknown_kind(tiny_checkpoint):
    with pytest.raises(ValueError, match="unknown model kind"):
        serving.load_checkpoint(str(tiny_checkpoint("feature-extraction")), "telepathy")


def test_model_allowed_only_manifest_ids(monkeypatch):
    monkeypatch.delenv("BERTVARIANTS_ALLOW_ANY_MODEL", raising=False)
    assert serving.formats.model_allowed(_TASKS[TRAINED]["hub"])
    assert serving.formats.model_allowed(mf.PACKAGED_NAME)
    assert not serving.formats.model_allowed("someone/untrusted-model")
    monkeypatch.setenv("BERTVARIANTS_ALLOW_ANY_MODEL", "1")
    assert serving.formats.model_allowed("someone/untrusted-model")


def test_pick_device_env_override(monkeypatch):
    device.pick_device.cache_clear()
    monkeypatch.setenv("BERTVARIANTS_DEVICE", "cpu")
    try:
        assert device.pick_device() == "cpu"
    finally:
        device.pick_device.cache_clear()


# ---------------------------------------------------------------- the tab table
def test_tab_table_is_well_formed():
    """Unique keys (module names) and labels; every tab cites its paper. README lists them in this order
    (tests/test_docs.py) and the page shows them in this order (tests/test_app.py)."""
    keys, labels = [t.key for t in reg.TABS], [t.label for t in reg.TABS]
    assert len(set(keys)) == len(keys) and len(set(labels)) == len(labels)
    for spec in reg.TABS:
        assert spec.key.isidentifier(), f"tab key {spec.key!r} must be a module name"
        assert spec.paper and spec.url.startswith("https://") and spec.summary


def test_every_tab_has_its_modules():
    for spec in reg.TABS:
        assert (UI / f"{spec.key}.py").is_file(), f"tab {spec.key}: add bertvariants/ui/{spec.key}.py"
        library = [REPO / "bertvariants" / f"{spec.key}.py", REPO / "evaluation" / f"{spec.key}.py"]
        assert any(p.is_file() for p in library), \
            f"tab {spec.key}: add its library module bertvariants/{spec.key}.py (or evaluation/{spec.key}.py)"


def test_library_never_imports_gradio():
    for path in list((REPO / "bertvariants").glob("*.py")) + list((REPO / "evaluation").rglob("*.py")) + \
            list((REPO / "bertvariants" / "train").glob("*.py")):
        # import statements, not text: a script the bench writes for another process (a bare gradio app to time
        # against app.py) is not an import of this library. gradio_client (a plain HTTP client, used by
        # evaluation/loadtest.py to drive the app) is not gradio.
        imported = {a.name for n in ast.walk(ast.parse(path.read_text())) if isinstance(n, ast.Import) for a in n.names}
        imported |= {n.module or "" for n in ast.walk(ast.parse(path.read_text())) if isinstance(n, ast.ImportFrom)}
        assert not {m for m in imported if m == "gradio" or m.startswith("gradio.")}, path


def test_ui_keeps_no_cache_of_its_own():
    """One bounded cache (serving.CACHE): tabs use serving.get_model / cached / packaged_tokenizer."""
    for path in UI.glob("*.py"):
        src = path.read_text()
        assert "lru_cache" not in src and "ModelCache(" not in src, \
            f"{path.name}: use serving.cached((name, ...), build) or serving.packaged_tokenizer()"


def test_unavailable_message_says_how_long_the_build_takes(tmp_path):
    from bertvariants.train import RECIPES, build_note

    manifest = _manifest(tmp_path)
    for task in manifest.tasks.values():
        if task.build and task.build_minutes:
            msg = manifest.unavailable_message(task)
            assert f"`{task.build}` ({task.build_minutes})" in msg, msg
    msg = manifest.unavailable_message(manifest.task("distillation-student"))
    assert "python -m bertvariants.train bilstm-student` (≈ 9 min on a 2-core CPU, after " \
           "`python -m bertvariants.train sst2-teacher` (≈ 22 min))" in msg
    assert all(1 <= r.minutes <= 30 for r in RECIPES)  # the lab's budget: ≈ 15 min per recipe, none wildly off
    assert build_note("mlm-static") == "≈ 6 min on a 2-core CPU"
    with pytest.raises(ValueError, match="unknown recipe"):
        build_note("nope")
