"""Where a model comes from: the ordered sources, first hit wins, without loading anything.

By **task key** of ``spaces.yml`` (:func:`resolve`)::

    1. env BERTVARIANTS_MODEL_<TASK> or the manifest's ``local:``  -> an explicit local directory
    2. ``hub`` (+ ``revision``): the Hugging Face cache, or the Hub when online
    3. ``offline: trained:<name>``: <models_dir>/<name>, built by ``python -m bertvariants.train`` (a model you
       built overrides the shipped one)
    4. ``shipped: <name>``: bertvariants/assets/models/<name>, trained by this project and shipped in the
       repository in compact form (a LoRA adapter + head over the packaged MiniLM, :mod:`.shipped`)
    5. ``offline: packaged`` / ``package:<name>``: weights shipped in a pip package (:mod:`.packaged`)
    6. unavailable: :class:`ModelUnavailable` says what is missing and which command builds it

A source whose checkpoint lacks the task's trained head (a classifier slot served by a pretraining checkpoint:
transformers would initialise the classifier at random) is never served: the next source serves and its label
says which checkpoint was passed over and why (one rule, :func:`.formats.missing_head` before a load and
:func:`.formats.untrained_head` on transformers' load report, remembered with :func:`remember_untrained`).

By **name** (:func:`project_model`, :func:`checkpoint_dir`): a model this project trains, a local directory, or
a task's resolved directory. :func:`hub_tokenizer`: a tokenizer from the Hub cache, or the Hub when online.

Nothing here imports gradio, loads a model or touches the network at import time.
"""

from __future__ import annotations

import json
import os
from dataclasses import replace
from pathlib import Path
from typing import Iterator

from .device import hub_online
from .formats import is_checkpoint, missing_head
from .loaded import ModelUnavailable, Resolution, UntrainedHead, short_location
from .manifest import HEADS, PACKAGED_NAME, Manifest, TaskSpec, default_manifest, packaged_model_path
from .packaged import PACKAGED_MODELS, PackageMissing, available, locate, packaged_model
from .shipped import is_shipped, shipped_dir

SOURCES = ("local", "hub-cache", "hub", "trained", "shipped", "packaged")


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


def remember_untrained(problem: UntrainedHead) -> None:
    """A load found ``problem``: the next :func:`resolve` passes over that checkpoint and says why."""
    _NO_HEAD[(problem.location, problem.kind)] = problem


def forget_untrained() -> None:
    """Forget every checkpoint a load found headless (tests; a rebuilt checkpoint)."""
    _NO_HEAD.clear()


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


def recorded_variant(folder: str) -> str:
    """The variant a project model's result record (``result.json``, written by its recipe) files it under."""
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


def local_checkpoint(task: str, given: str | None = None, *, missing: str) -> Path:
    """A recipe's frozen part (ELECTRA's generator, the distillation teacher): the directory ``given`` on its command
    line, else the checkpoint serving ``task`` here offline (models/ if built, else shipped: the order above).
    ValueError with ``missing`` (``{path}`` filled in: how to build one) when it is not a checkpoint."""
    path = Path(given) if given else Path(resolve(task, online=False).location)
    if not is_checkpoint(path):
        raise ValueError(missing.format(path=path))
    return path


def hub_tokenizer(hub_id: str):
    """The tokenizer of ``hub_id`` from the Hugging Face cache, or the Hub when online; ModelUnavailable when
    neither has it (e.g. RoBERTa's own byte-level BPE offline)."""
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(hub_id, local_files_only=not hub_online())
    except Exception as exc:  # noqa: BLE001 - not cached / offline / bad id: all mean "not here"
        raise ModelUnavailable(f"the tokenizer of {hub_id} is neither cached nor reachable: {exc}") from None
