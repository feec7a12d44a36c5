"""The Space as deployed, simulated here: every Hub id of spaces.yml served from a simulated Hugging Face cache.

:mod:`tests.hub_cache` writes a tiny random-weight checkpoint of each real repository (its architecture class,
tokenizer type and config conventions) in the real cache layout. In-process tests point huggingface_hub's cache at
it; the app tests run ``python app.py`` with ``HF_HUB_CACHE=<it> HF_HUB_OFFLINE=1`` and the project's ZeroGPU
switch (``BERTVARIANTS_PRELOAD=1``: the Space's models load at module scope, as on ZeroGPU), then call every
endpoint. The bad-input matrix and the browser tests run against that app too (tests/test_space_ui.py).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import REPO
from .hub_cache import (
    FIXTURES,
    build_hub_cache,
    space_env,
    space_repos,
    start_space_app,
    stop,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")

PLACEHOLDER_LABEL = re.compile(r"\bLABEL_\d+\b")
TENSOR_REPR = re.compile(r"\btensor\(\[|\bParameter containing")


@pytest.fixture
def on_the_space(hub_cache, monkeypatch, tmp_path):
    """In-process: huggingface_hub reads the simulated cache; no trained models in models/."""
    import huggingface_hub.constants

    from bertvariants import serving
    from bertvariants.serving import manifest as mf

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(hub_cache))
    monkeypatch.setenv("BERTVARIANTS_MODELS_DIR", str(tmp_path / "no-models"))
    for key in list(os.environ):
        if key.startswith("BERTVARIANTS_MODEL_"):
            monkeypatch.delenv(key)
    mf.default_manifest.cache_clear()
    serving.CACHE.clear()
    serving.sources.forget_untrained()
    yield hub_cache
    mf.default_manifest.cache_clear()
    serving.CACHE.clear()
    serving.sources.forget_untrained()


# ----------------------------------------------------------------------------------------------- the fixture itself
def test_every_hub_id_of_spaces_yml_has_a_fixture():
    missing = sorted(set(space_repos()) - set(FIXTURES))
    assert not missing, f"spaces.yml names {missing}: add a HubFixture for each to tests/hub_cache.py"


def test_a_new_hub_id_without_a_fixture_fails(tmp_path):
    from bertvariants.serving.manifest import load_manifest

    text = (REPO / "spaces.yml").read_text().replace("hub: roberta-base", "hub: someone/new-model")
    (tmp_path / "spaces.yml").write_text(text)
    with pytest.raises(KeyError, match="someone/new-model"):
        build_hub_cache(tmp_path / "cache", load_manifest(tmp_path / "spaces.yml"))


def test_the_cache_has_the_real_layout(hub_cache):
    from huggingface_hub import snapshot_download

    for repo in space_repos():
        root = hub_cache / ("models--" + repo.replace("/", "--"))
        sha = (root / "refs" / "main").read_text()
        snapshot = Path(snapshot_download(repo, revision="main", local_files_only=True, cache_dir=hub_cache))
        assert snapshot == root / "snapshots" / sha
        assert all(f.is_symlink() and f.resolve().parent == root / "blobs" for f in snapshot.iterdir() if f.is_file())


# ----------------------------------------------------------------------------------------------- resolution
def test_every_slot_is_served_from_the_hub_cache_but_a_head_the_checkpoint_lacks(on_the_space):
    from bertvariants import serving
    from bertvariants.serving.manifest import default_manifest

    for spec in default_manifest().tasks.values():
        res = serving.resolve(spec.key)
        if spec.key == "clinical-classifier":  # Bio_ClinicalBERT: MLM + NSP heads, no classifier
            assert res.source == "shipped", res
            assert len(res.skipped) == 1 and "emilyalsentzer/Bio_ClinicalBERT` has no trained classifier head" in \
                res.skipped[0] and "serves `clinical-embeddings` instead" in res.skipped[0]
            assert "passed over" not in res.label and "has no trained classifier head" in res.label
        else:
            assert res.source == "hub-cache" and not res.skipped, (spec.key, res)
            assert f"`{spec.hub}`" in res.label, res.label


def test_no_slot_serves_a_newly_initialised_head(on_the_space):
    """Every slot loads; the load report of each transformers checkpoint has no missing head weight (the
    resolver refuses one that has)."""
    from bertvariants import serving
    from bertvariants.serving.formats import untrained_head
    from bertvariants.serving.manifest import default_manifest

    for spec in default_manifest().tasks.values():
        loaded = serving.get_model(spec.key)
        assert loaded.kind in (spec.kind, "causal-lm")
        if loaded.resolution.source == "hub-cache":
            import transformers as tf

            from bertvariants.serving.manifest import auto_class

            tf.logging.set_verbosity_error()
            _, report = auto_class(loaded.kind).from_pretrained(loaded.resolution.location, output_loading_info=True)
            assert not untrained_head(loaded.model, loaded.kind, report["missing_keys"]), spec.key


@pytest.mark.parametrize("online", [True, False], ids=["space", "offline"])
def test_every_classifier_slot_has_human_class_names(online, request):
    from bertvariants import serving
    from bertvariants.serving.manifest import default_manifest
    from bertvariants.serving.resolver import generic_labels

    if online:
        request.getfixturevalue("on_the_space")
    for spec in default_manifest().tasks.values():
        if spec.kind == "sequence-classification":
            config = serving.get_model(spec.key).model.config
            names = [str(v) for v in config.id2label.values()]
            assert not any(PLACEHOLDER_LABEL.fullmatch(n) for n in names), (spec.key, names)
            assert not generic_labels(config)


def test_labels_in_the_manifest_are_checked(tmp_path):
    from bertvariants.serving.manifest import ManifestError, load_manifest

    base = (REPO / "spaces.yml").read_text()
    for bad, msg in (("labels: [positive]", "at least two"), ("labels: [a, a]", "distinct"),
                     ("labels: negative", "must be a list")):
        (tmp_path / "spaces.yml").write_text(base.replace("labels: [negative, positive]", bad))
        with pytest.raises(ManifestError, match=msg):
            load_manifest(tmp_path / "spaces.yml")
    moved = base.replace("    labels: [negative, positive]", "").replace(
        "    hub: roberta-base\n", "    hub: roberta-base\n    labels: [a, b]\n")
    (tmp_path / "spaces.yml").write_text(moved)
    with pytest.raises(ManifestError, match="only a sequence-classification task"):
        load_manifest(tmp_path / "spaces.yml")


def test_labels_with_the_wrong_count_are_refused(on_the_space, monkeypatch):
    from dataclasses import replace

    from bertvariants import serving
    from bertvariants.serving.manifest import default_manifest
    from bertvariants.serving.resolver import with_labels

    spec = replace(default_manifest().task("distillation-teacher"), labels=("a", "b", "c"))
    with pytest.raises(serving.ModelUnavailable, match="distillation-teacher.labels names 3 classes, but .* has 2"):
        with_labels(serving.get_model("distillation-teacher"), spec.labels)


def test_two_slots_never_share_one_checkpoint_s_label_names(on_the_space, monkeypatch, tiny_checkpoint):
    """The same classifier checkpoint serving a slot with labels: and one without: two copies, two configs."""
    from bertvariants import serving

    tiny = str(tiny_checkpoint("sequence-classification"))
    monkeypatch.setenv("BERTVARIANTS_MODEL_DISTILLATION_TEACHER", tiny)
    monkeypatch.setenv("BERTVARIANTS_MODEL_CLINICAL_CLASSIFIER", tiny)
    named, plain = serving.get_model("distillation-teacher"), serving.get_model("clinical-classifier")
    assert named.model is not plain.model
    assert list(named.model.config.id2label.values()) == ["negative", "positive"]
    assert list(plain.model.config.id2label.values()) == ["LABEL_0", "LABEL_1"]


# ----------------------------------------------------------------------------------------------- the head rule
BART = dict(vocab_size=99, d_model=36, encoder_layers=1, decoder_layers=1, encoder_attention_heads=3,
            decoder_attention_heads=3, encoder_ffn_dim=37, decoder_ffn_dim=37)


def _headless(kind: str, out: Path) -> Path:
    """A checkpoint of ``kind``'s model family without ``kind``'s trained head."""
    import torch
    import transformers as tf

    torch.manual_seed(0)
    small = dict(hidden_size=36, num_hidden_layers=1, num_attention_heads=3, intermediate_size=37, vocab_size=99)
    model = {
        "masked-lm": lambda: tf.BertModel(tf.BertConfig(**small)),
        "sequence-classification": lambda: tf.BertForPreTraining(tf.BertConfig(**small)),
        "question-answering": lambda: tf.BertForMaskedLM(tf.BertConfig(**small)),
        "electra-discriminator": lambda: tf.ElectraModel(tf.ElectraConfig(embedding_size=36, **small)),
        "seq2seq": lambda: tf.BartModel(tf.BartConfig(**BART, tie_word_embeddings=False)),
        "causal-lm": lambda: tf.LlamaModel(tf.LlamaConfig(vocab_size=99, hidden_size=36, intermediate_size=37,
                                                          num_hidden_layers=1, num_attention_heads=3,
                                                          num_key_value_heads=1, tie_word_embeddings=False)),
    }[kind]()
    model.save_pretrained(out)
    return out


def _headed(kind: str, out: Path) -> Path:
    import torch
    import transformers as tf

    from bertvariants.serving.manifest import auto_class

    torch.manual_seed(0)
    if kind in ("seq2seq", "causal-lm", "electra-discriminator"):
        cfg = {"seq2seq": lambda: tf.BartConfig(**BART, tie_word_embeddings=False),
               "causal-lm": lambda: tf.LlamaConfig(vocab_size=99, hidden_size=36, intermediate_size=37,
                                                   num_hidden_layers=1, num_attention_heads=3, num_key_value_heads=1,
                                                   tie_word_embeddings=False),
               "electra-discriminator": lambda: tf.ElectraConfig(vocab_size=99, embedding_size=36, hidden_size=36,
                                                                 num_hidden_layers=1, num_attention_heads=3,
                                                                 intermediate_size=37)}[kind]()
    else:
        cfg = tf.BertConfig(hidden_size=36, num_hidden_layers=1, num_attention_heads=3, intermediate_size=37,
                            vocab_size=99)
    cls = auto_class(kind)
    (cls(cfg) if kind == "electra-discriminator" else cls.from_config(cfg)).save_pretrained(out)
    return out


@pytest.mark.parametrize("kind", ["masked-lm", "sequence-classification", "question-answering",
                                  "electra-discriminator", "seq2seq", "causal-lm"])
def test_one_rule_for_every_kind_with_a_head(kind, tmp_path, tiny_tokenizer_dir):
    """A checkpoint whose load leaves the kind's head newly initialised is refused (UntrainedHead names the
    weights); the same family with the head loads. Every kind with a head is covered (mf.HEADS)."""
    import shutil

    from bertvariants.serving.formats import load_checkpoint, untrained_head
    from bertvariants.serving.loaded import UntrainedHead
    from bertvariants.serving.manifest import HEADS

    assert set(HEADS) == {"masked-lm", "sequence-classification", "question-answering", "electra-discriminator",
                          "seq2seq", "causal-lm"}, "a new kind with a head: add it to this test"
    bad, good = _headless(kind, tmp_path / "bad"), _headed(kind, tmp_path / "good")
    for d in (bad, good):
        for f in tiny_tokenizer_dir.iterdir():
            shutil.copy(f, d / f.name)
    with pytest.raises(UntrainedHead, match=rf"has no trained {re.escape(HEADS[kind].name)} head \(loading it left "):
        load_checkpoint(str(bad), kind, device="cpu")
    assert load_checkpoint(str(good), kind, device="cpu").kind == kind
    assert untrained_head(object(), "feature-extraction", {"pooler.dense.weight"}) == ()  # headless kinds: none


def test_a_pretraining_checkpoint_is_refused_before_loading(tmp_path):
    """Without loading: a config naming no classifier and weights with no classifier tensors."""
    from bertvariants.serving.formats import missing_head

    bad = _headless("sequence-classification", tmp_path / "pt")
    assert missing_head(str(bad), "sequence-classification") is not None
    assert missing_head(str(bad), "masked-lm") is None  # BertForPreTraining has the MLM head
    assert missing_head(str(bad), "feature-extraction") is None


def test_a_load_that_finds_the_head_untrained_falls_through(on_the_space, tmp_path, tiny_tokenizer_dir, monkeypatch):
    """What the config cannot tell (an untied BART's ``shared`` looks like an LM head), the load report does: the
    explicit local checkpoint is passed over, the next source serves and says why."""
    import shutil

    from bertvariants import serving

    bad = _headless("seq2seq", tmp_path / "bart")
    for f in tiny_tokenizer_dir.iterdir():
        shutil.copy(f, bad / f.name)
    monkeypatch.setenv("BERTVARIANTS_MODEL_SUMMARIZATION", str(bad))
    assert serving.resolve("summarization").source == "local"  # the static check cannot tell
    loaded = serving.get_model("summarization")
    assert loaded.resolution.source == "hub-cache"
    assert "has no trained language-modelling head (loading it left lm_head.weight newly initialised)" in \
        loaded.resolution.skipped[0]
    assert serving.resolve("summarization").source == "hub-cache"  # remembered


# ----------------------------------------------------------------------------------------------- the CLI
def test_models_cli_marks_the_fall_through(hub_cache, tmp_path):
    out = subprocess.run([sys.executable, "-m", "bertvariants", "models"], cwd=REPO, capture_output=True, text=True,
                         env=space_env(hub_cache, tmp_path / "models"), timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    lines = out.stdout.splitlines()
    row = next(line for line in lines if line.startswith("clinical-classifier"))
    assert "*" in row.split()[0] + row[23] and " shipped " in row
    assert any("* passed over: emilyalsentzer/Bio_ClinicalBERT has no trained classifier head" in line
               for line in lines)
    assert "Loading weights" not in out.stdout + out.stderr and "LOAD REPORT" not in out.stdout  # a clean table
    assert not PLACEHOLDER_LABEL.search(out.stdout)
    for repo in ("albert-base-v2", "textattack/bert-base-uncased-SST-2", "facebook/bart-large-cnn"):
        assert repo in out.stdout


# ----------------------------------------------------------------------------------------------- the app on the Space
# ----------------------------------------------------------------------------------------------- the app on the Space
def test_zero_gpu_start_up_loads_every_space_model_at_module_scope(space_app):
    from bertvariants.serving.manifest import default_manifest

    out = space_app.output
    n = len(default_manifest().tasks)
    assert f"models preloaded at start-up: {n} of {n} tasks" in out, out[-3000:]
    for task in default_manifest().tasks:
        assert re.search(rf"^  {re.escape(task)}: cpu ", out, re.M), task
    assert out.index("models preloaded") < out.index("Running on"), "the models load before the server starts"


def test_the_space_reports_its_gpu_functions_with_durations(space_app):
    from bertvariants.ui.zerogpu import GPU_SECONDS, duration_for

    out = space_app.output
    assert "spaces package: installed; ZeroGPU: no" in out
    line = next(line for line in out.splitlines() if line.startswith("GPU-decorated functions ("))
    for name in GPU_SECONDS:
        assert f"{name} {duration_for(name)} s" in line, name


def test_without_the_spaces_package_start_up_is_unchanged(hub_cache, tmp_path):
    import httpx

    app = start_space_app(hub_cache, tmp_path, without_spaces=True)
    try:
        assert "spaces package: not installed" in app.output
        assert "GPU-decorated functions: none" in app.output
        assert httpx.post(app.url + "gradio_api/call/similarity",
                          json={"data": ["A cat sits.", "A dog runs."]}, timeout=30).status_code == 200
    finally:
        stop(app)


def walk(value):
    """Every leaf of an endpoint's answer (tuples, lists, dicts)."""
    if isinstance(value, (list, tuple)):
        for v in value:
            yield from walk(v)
    elif isinstance(value, dict):
        for v in value.values():
            yield from walk(v)
    else:
        yield value


@pytest.fixture(scope="session")
def space_answers(space_client, space_app, tmp_path_factory):
    """Every named endpoint of the Space app called once with its page defaults (a generated clip for uploads)."""
    import imageio_ffmpeg

    from .test_bad_input import FILE_COMPONENTS, default_kwargs, file_value

    clip = tmp_path_factory.mktemp("clip") / "clip.mp4"
    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-loglevel", "error", "-y", "-f", "lavfi", "-i",
                    "testsrc=size=32x32:rate=4", "-t", "2", str(clip)], check=True, timeout=60)
    api = space_client.view_api(print_info=False, return_format="dict")["named_endpoints"]
    answers = {}
    for name, info in sorted(api.items()):
        kwargs = default_kwargs(info["parameters"])
        for p in info["parameters"]:
            if p["component"] in FILE_COMPONENTS and not p["parameter_has_default"]:
                kwargs[p["parameter_name"]] = file_value(p["component"], clip)
        try:
            answers[name] = space_client.predict(api_name=name, **kwargs)
        except Exception as exc:  # noqa: BLE001 - judged below
            answers[name] = exc
    return answers


def test_every_endpoint_answers_on_the_space(space_answers):
    from bertvariants.ui.zerogpu import GPU_SECONDS

    failed = {k: str(v)[:300] for k, v in space_answers.items() if isinstance(v, Exception)}
    assert not failed, failed
    assert {f"/{name}" for name in GPU_SECONDS} <= set(space_answers), "a GPU endpoint is missing from the API"


def test_no_answer_shows_placeholder_labels_or_tensors(space_answers):
    for name, answer in space_answers.items():
        for leaf in walk(answer):
            text = Path(leaf).read_text(errors="replace") if (isinstance(leaf, str) and leaf.endswith(
                (".csv", ".html")) and Path(leaf).is_file()) else str(leaf)
            assert not PLACEHOLDER_LABEL.search(text), (name, text[:300])
            assert not TENSOR_REPR.search(text), (name, text[:300])


def test_the_clinical_tab_says_which_checkpoint_classifies_and_why(space_app):
    import httpx

    config = httpx.get(space_app.url + "config", timeout=30).text
    assert "emilyalsentzer/Bio_ClinicalBERT` has no trained classifier head" in config
    for repo in ("textattack/bert-base-uncased-SST-2", "mrm8488/spanbert-large-finetuned-squadv2",
                 "facebook/bart-large-cnn", "albert-base-v2"):
        assert repo in config, repo


def test_a_failed_generation_is_never_shown_as_a_summary(space_answers):
    """The random bart-large-cnn stand-in generates whatever it generates: either a summary, or the page says the
    generation failed and shows the extractive summary (never a 0-word summary)."""
    from bertvariants import bart

    summary, md, lead3 = space_answers["/summarize"]
    assert summary.strip(), md
    if "No abstractive summary" in md:
        assert "extractive fallback" in md
    else:
        assert bart.generation_problem(summary) is None
    table = space_answers["/compare_summarization"][0]
    rows = [dict(zip(table["headers"], r)) for r in table["data"]]
    for row in rows:
        assert row["words"] not in (0, "0"), row


# ----------------------------------------------------------------------------------------------- the front matter
def test_front_matter_preloads_every_hub_id_and_suggests_a_real_hardware_flavour():
    import yaml
    from huggingface_hub import SpaceHardware

    text = (REPO / "README.md").read_text(encoding="utf-8")
    front = yaml.safe_load(text.split("---\n")[1])
    assert front["suggested_hardware"] in {h.value for h in SpaceHardware}, front["suggested_hardware"]
    repos = space_repos()
    entries = front["preload_from_hub"]
    assert sorted(e.split()[0] for e in entries) == sorted(repos), "preload_from_hub must list spaces.yml's Hub ids"
    for entry in entries:  # `repo` follows the default branch; a pinned revision needs `repo files sha`
        parts = entry.split()
        if repos[parts[0]] != "main":
            assert len(parts) == 3 and parts[2] == repos[parts[0]], entry
    assert set(repos) <= set(front["models"])
    assert "## Deploy as a Space" in text and (REPO / "docs" / "deploy.md").is_file()


def test_every_endpoint_is_classified_for_zero_gpu(client):
    """Each named endpoint either runs a model (GPU_SECONDS: decorated with @spaces.GPU and its duration) or is
    listed with the reason it never needs a GPU (CPU_ONLY); a new endpoint in neither fails here."""
    from bertvariants.ui.zerogpu import (
        CPU_ONLY,
        GPU_SECONDS,
        MAX_DURATION,
        MIN_DURATION,
        duration_for,
    )

    named = {n.lstrip("/") for n in client.view_api(print_info=False, return_format="dict")["named_endpoints"]}
    assert not set(GPU_SECONDS) & set(CPU_ONLY)
    unclassified = sorted(named - set(GPU_SECONDS) - set(CPU_ONLY))
    assert not unclassified, (f"classify {unclassified} in bertvariants/ui/zerogpu.py: GPU_SECONDS (runs a model; "
                              "measure it with python -m bertvariants.ui.gpu_seconds) or CPU_ONLY (why not)")
    stale = sorted((set(GPU_SECONDS) | set(CPU_ONLY)) - named)
    assert not stale, f"zerogpu.py lists endpoints the app no longer has: {stale}"
    assert all(MIN_DURATION <= duration_for(n) <= MAX_DURATION for n in GPU_SECONDS)
    assert duration_for("summarize") == 20 and duration_for("similarity") == 10
