"""The one resolver: a model by task key (:func:`get_model`, what the tabs do) or by name (:func:`load`, what the
CLI and the recipes do), loaded once per process through the bounded cache (:mod:`.cache`).

Where a model comes from is :mod:`.sources`; how a checkpoint becomes a model is the loader table of
:mod:`.formats`. Nothing here imports gradio, loads a model or touches the network at import time.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

from ..electra import check_shared_vocabulary
from ..registry import tab
from .device import hub_online
from .cache import CACHE
from .formats import (SPECIAL_KINDS, is_checkpoint, kind_from_config, load_checkpoint, loader_for, model_allowed,
                      variant_of)
from .loaded import LoadedModel, ModelUnavailable, Resolution, UntrainedHead
from .manifest import PACKAGED_NAME, Manifest, default_manifest, packaged_model_path
from .packaged import PACKAGED_MODELS, locate, packaged_model
from .sources import checkpoint_dir, project_model, recorded_variant, remember_untrained, resolve


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
            remember_untrained(exc)  # the next resolve() passes over it and says why
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


def _packaged_minilm(name: str, manifest: Manifest) -> LoadedModel:
    return replace(get_packaged("sentence-embedding"), variant="Sentence-BERT")


def _packaged(name: str, manifest: Manifest) -> LoadedModel:
    entry, path = packaged_model(name), str(locate(name))
    res = Resolution(name, "packaged", path, path, kind=entry.kind, model_name=entry.hub_id)
    return replace(cached_checkpoint(path, entry.kind, resolution=res), variant=entry.variant)


def _task(name: str, manifest: Manifest) -> LoadedModel:  # raises ModelUnavailable with the way to get one
    return replace(get_model(name, manifest), variant=tab(manifest.task(name).tab).label)


def _project(name: str, manifest: Manifest) -> LoadedModel:
    project = project_model(name)
    loaded = cached_checkpoint(project.location, kind_from_config(project.location), resolution=project)
    return replace(loaded, variant=recorded_variant(project.location))


def _directory(name: str, manifest: Manifest) -> LoadedModel:
    path = Path(name).expanduser()
    if not is_checkpoint(path):
        raise ValueError(f"{path} is not a checkpoint directory (no config.json)")
    return replace(load_checkpoint(str(path), kind_from_config(str(path))), variant=variant_of(path))


@dataclass(frozen=True)
class NameKind:
    """One kind of name :func:`load` accepts: how to tell it, and how to load it (with its Leaderboard variant)."""

    what: str
    accepts: Callable[[str, Manifest], bool]
    load: Callable[[str, Manifest], LoadedModel]


NAMES: tuple[NameKind, ...] = (  # the first that accepts a name loads it
    NameKind("the packaged MiniLM", lambda n, m: n == PACKAGED_NAME, _packaged_minilm),
    NameKind("a packaged model", lambda n, m: n in {p.name for p in PACKAGED_MODELS}, _packaged),
    NameKind("a spaces.yml task", lambda n, m: n in m.tasks, _task),
    NameKind("a project model", lambda n, m: not Path(n).expanduser().is_dir() and project_model(n) is not None,
             _project),
    NameKind("a local checkpoint directory", lambda n, m: Path(n).expanduser().is_dir(), _directory),
    NameKind("a Hub id", lambda n, m: "/" in n and not Path(n).expanduser().exists(),
             lambda n, m: replace(_hub_model(n, m), variant="Hub checkpoint")),
)


def load(name: str, *, kind: str | None = None) -> LoadedModel:
    """Load a model by name, the first of :data:`NAMES` that accepts it: ``minilm`` | a packaged model | a
    spaces.yml task key | a project model (models/ or shipped: :func:`project_model`) | a local checkpoint dir | a
    Hub id (online). ``variant`` says which group of the Leaderboard its results go to.

    ``kind`` asks for a specific kind (``masked-lm``, ``electra-rtd``, ``span-mlm``: the held-out pretraining
    benchmarks) of a checkpoint directory (or, for ``electra-rtd``, the served ELECTRA slots); by default the task's
    kind or the checkpoint's own. Not cached for local directories and Hub ids (an evaluation run loads its model
    once).
    """
    manifest = default_manifest()
    if kind is not None:
        return _as_kind(name, kind, manifest)
    for entry in NAMES:
        if entry.accepts(name, manifest):
            return entry.load(name, manifest)
    raise ValueError(f"unknown model {name!r}: not {PACKAGED_NAME}, lead3, a spaces.yml task "
                     f"({', '.join(sorted(manifest.tasks))}), a local directory or a Hub id")


def _as_kind(name: str, kind: str, manifest: Manifest) -> LoadedModel:
    if kind == "electra-rtd" and name in manifest.tasks and manifest.task(name).kind == "electra-discriminator":
        return replace(served_electra_pair(name, manifest), variant="ELECTRA")
    path = checkpoint_dir(name)
    if not is_checkpoint(path) and kind not in SPECIAL_KINDS:
        raise ValueError(f"{path} is not a checkpoint directory (no config.json)")
    return replace(load_checkpoint(str(path), kind), variant=loader_for(str(path), kind).variant)


def _hub_model(name: str, manifest: Manifest) -> LoadedModel:
    """A Hub id named in spaces.yml (any id with BERTVARIANTS_ALLOW_ANY_MODEL=1), online only."""
    if not hub_online():
        raise ValueError(f"{name!r} looks like a Hugging Face Hub id, but the Hub is unreachable (offline). "
                         f"Use a registry name ({PACKAGED_NAME}, lead3, or a spaces.yml task: "
                         f"{', '.join(sorted(manifest.tasks))}) or a local checkpoint directory")
    if not model_allowed(name):  # before even its config is fetched
        raise ValueError(f"{name!r} is not a model named in spaces.yml; set BERTVARIANTS_ALLOW_ANY_MODEL=1 "
                         "to evaluate arbitrary Hub ids")
    return load_checkpoint(name, kind_from_config(name))
