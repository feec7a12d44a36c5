"""The model manifest (spaces.yml) and the one table of model kinds: which checkpoint serves which task.

:data:`KINDS` is the one table of what a task can ask for: each :class:`Kind` row names the transformers Auto
class that loads it, the trained :class:`Head` a checkpoint must hold to serve it (how configs and weights name
that head), and how a compact shipped model of that kind is rebuilt (:mod:`bertvariants.serving.shipped`).
Which checkpoint serves which task lives in ``spaces.yml`` only; :class:`Manifest` is its validated form.

Nothing here imports gradio, loads a model or touches the network at import time.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from ..paths import REPO_ROOT
from ..registry import TABS
from .packaged import PACKAGED_MODELS, locate

MANIFEST_PATH = REPO_ROOT / "spaces.yml"
PACKAGED_NAME = "minilm"  # registry name of the packaged all-MiniLM-L6-v2
PACKAGED_HUB_ID = "sentence-transformers/all-MiniLM-L6-v2"


@dataclass(frozen=True)
class Head:
    """The trained head a kind needs on top of the encoder: how a checkpoint's config names a class that has it
    (``architectures`` suffixes) and how its weights name it (key prefixes, across the model families served)."""

    name: str
    architectures: tuple[str, ...]
    prefixes: tuple[str, ...]


@dataclass(frozen=True)
class Kind:
    """One kind of model a task can ask for.

    ``auto``: the transformers class (an attribute of ``transformers``) that loads a checkpoint of this kind;
    ``head``: the trained head it needs (None: headless, the packaged MiniLM can serve it);
    ``shipped_architecture`` / ``shipped_head``: the class a compact shipped model of this kind is rebuilt as, and
    the parameters its head trains from scratch (names in that class; "" / () where nothing is shipped).
    """

    name: str
    auto: str
    head: Head | None = None
    shipped_architecture: str = ""
    shipped_head: tuple[str, ...] = ()


KINDS: dict[str, Kind] = {k.name: k for k in (
    Kind("sentence-embedding", "AutoModel", None, "BertModel"),
    Kind("feature-extraction", "AutoModel", None, "BertModel"),
    Kind("masked-lm", "AutoModelForMaskedLM",
         Head("masked-LM", ("ForMaskedLM", "BertForPreTraining", "AlbertForPreTraining"),
              ("cls.predictions.", "lm_head.", "predictions.", "generator_predictions.", "vocab_projector.",
               "generator_lm_head.")),
         "BertForMaskedLM", ("cls.predictions.transform.", "cls.predictions.bias")),
    Kind("sequence-classification", "AutoModelForSequenceClassification",
         Head("classifier", ("ForSequenceClassification",),
              ("classifier.", "score.", "classification_head.", "pre_classifier.")),
         "BertForSequenceClassification", ("classifier.", "bert.pooler.")),
    Kind("question-answering", "AutoModelForQuestionAnswering",
         Head("question-answering (span)", ("ForQuestionAnswering",), ("qa_outputs.", "qa_classifier.")),
         "BertForQuestionAnswering", ("qa_outputs.",)),
    Kind("seq2seq", "AutoModelForSeq2SeqLM",
         Head("language-modelling", ("ForConditionalGeneration",), ("lm_head.", "model.shared.", "shared."))),
    Kind("electra-discriminator", "ElectraForPreTraining",
         Head("replaced-token-detection", ("ElectraForPreTraining",), ("discriminator_predictions.",)),
         "ElectraForPreTraining", ("discriminator_predictions.",)),
    Kind("causal-lm", "AutoModelForCausalLM",
         Head("language-modelling", ("ForCausalLM", "LMHeadModel"), ("lm_head.", "model.embed_tokens."))),
)}
# The packaged MiniLM is a bare BertModel: it can honestly serve only the kinds that need no task head.
PACKAGED_KINDS = tuple(k.name for k in KINDS.values() if k.head is None)
# Every other kind needs a trained head: a checkpoint without one is never served for that kind (transformers would
# initialise the head at random; the resolver falls through to the next source).
HEADS: dict[str, Head] = {k.name: k.head for k in KINDS.values() if k.head is not None}


def auto_class(kind: str):
    """The transformers class that loads a checkpoint of ``kind`` (:data:`KINDS`)."""
    import transformers

    return getattr(transformers, KINDS[kind].auto)


def packaged_model_path() -> Path:
    """Directory of the packaged all-MiniLM-L6-v2 (AutoModel / AutoTokenizer / SentenceTransformer load it)."""
    return locate(PACKAGED_NAME)


# --------------------------------------------------------------------------------------------
# The manifest
# --------------------------------------------------------------------------------------------
class ManifestError(ValueError):
    """spaces.yml is malformed; the message names the offending key."""


@dataclass(frozen=True)
class TaskSpec:
    """One task of spaces.yml: which checkpoint serves it online and offline."""

    key: str
    tab: str
    kind: str
    hub: str | None
    revision: str = "main"
    tokenizer: str | None = None
    offline: str = "none"  # "packaged" | "package:<name>" | "trained:<name>" | "none"
    build: str | None = None  # command that builds the trained offline default
    build_minutes: str | None = None  # how long ``build`` takes here, e.g. "≈ 9 min on a 2-core CPU"
    local: str | None = None  # explicit local directory (overridden by the env var)
    shipped: str | None = None  # compact model shipped in bertvariants/assets/models/<name> (bertvariants.shipped)
    labels: tuple[str, ...] = ()  # class names by index, for a classifier whose checkpoint has none (LABEL_0, …)

    @property
    def env_var(self) -> str:
        return "BERTVARIANTS_MODEL_" + self.key.upper().replace("-", "_")

    @property
    def trained_name(self) -> str | None:
        return self.offline.split(":", 1)[1] if self.offline.startswith("trained:") else None

    @property
    def package_name(self) -> str | None:
        """``offline: package:<name>``: a model whose weights ship in a pip package (bertvariants.packaged)."""
        return self.offline.split(":", 1)[1] if self.offline.startswith("package:") else None


@dataclass(frozen=True)
class Manifest:
    tasks: dict[str, TaskSpec]
    models_dir: Path

    def task(self, key: str) -> TaskSpec:
        try:
            return self.tasks[key]
        except KeyError:
            raise KeyError(f"unknown task {key!r}; spaces.yml defines: {', '.join(sorted(self.tasks))}") from None

    def for_tab(self, tab_key: str) -> list[TaskSpec]:
        return [t for t in self.tasks.values() if t.tab == tab_key]

    def unavailable_message(self, spec: TaskSpec) -> str:
        """Why no model serves ``spec`` here and how to get one (the ``build`` and ``build_minutes`` of spaces.yml)."""
        parts = [f"No model can serve '{spec.key}' here."]
        if spec.hub:
            parts.append(f"Online it uses `{spec.hub}` (Hugging Face Hub unreachable and not cached).")
        if spec.trained_name:
            when = f" ({spec.build_minutes})" if spec.build_minutes else ""
            parts.append("Offline it uses a checkpoint trained by this project in "
                         f"`{self.models_dir / spec.trained_name}`"
                         + (f": build it with `{spec.build}`{when}." if spec.build else "."))
        if spec.package_name:
            entry = next(p for p in PACKAGED_MODELS if p.name == spec.package_name)
            parts.append(f"Offline it uses `{entry.hub_id}` from the pip package `{entry.distribution}`, which is "
                         "not installed here: install the README's requirements.")
        parts.append(f"Or point `{spec.env_var}` at a local checkpoint directory.")
        return " ".join(parts)


_TASK_FIELDS = {"tab", "kind", "hub", "revision", "tokenizer", "offline", "build", "build_minutes", "local", "shipped",
                "labels"}


def _labels(raw: Any, where: str, kind: str) -> tuple[str, ...]:
    """``labels:``: a list of at least two distinct non-empty class names, for a classifier only."""
    if kind != "sequence-classification":
        raise ManifestError(f"{where}.labels: only a sequence-classification task has class names, not {kind!r}")
    if (not isinstance(raw, list) or len(raw) < 2 or not all(isinstance(x, str) and x.strip() for x in raw)
            or len(set(raw)) != len(raw)):
        raise ManifestError(f"{where}.labels: must be a list of at least two distinct class names, got {raw!r}")
    return tuple(raw)


def parse_manifest(data: Any, *, base_dir: Path = REPO_ROOT) -> Manifest:
    """Validate the parsed YAML of spaces.yml; every error names the key at fault."""
    if not isinstance(data, dict):
        raise ManifestError("spaces.yml: top level must be a mapping with 'version' and 'tasks'")
    if data.get("version") != 1:
        raise ManifestError(f"spaces.yml: 'version' must be 1, got {data.get('version')!r}")
    tasks_raw = data.get("tasks")
    if not isinstance(tasks_raw, dict) or not tasks_raw:
        raise ManifestError("spaces.yml: 'tasks' must be a non-empty mapping of task key -> settings")
    tab_keys = {t.key for t in TABS}
    tasks: dict[str, TaskSpec] = {}
    for key, raw in tasks_raw.items():
        where = f"spaces.yml: tasks.{key}"
        if not isinstance(raw, dict):
            raise ManifestError(f"{where}: must be a mapping, got {type(raw).__name__}")
        unknown = set(raw) - _TASK_FIELDS
        if unknown:
            raise ManifestError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}; "
                                f"allowed: {', '.join(sorted(_TASK_FIELDS))}")
        for req in ("tab", "kind", "offline"):
            if req not in raw:
                raise ManifestError(f"{where}.{req}: missing")
        for name in _TASK_FIELDS - {"labels"}:
            if name in raw and raw[name] is not None and not isinstance(raw[name], str):
                raise ManifestError(f"{where}.{name}: must be a string, got {type(raw[name]).__name__}")
        if raw["tab"] not in tab_keys:
            raise ManifestError(f"{where}.tab: {raw['tab']!r} is not a tab; known: {', '.join(sorted(tab_keys))}")
        if raw["kind"] not in KINDS:
            raise ManifestError(f"{where}.kind: {raw['kind']!r} is not one of {', '.join(KINDS)}")
        offline = raw["offline"]
        if offline == "packaged":
            if raw["kind"] not in PACKAGED_KINDS:
                raise ManifestError(f"{where}.offline: the packaged MiniLM has no task head and cannot serve kind "
                                    f"{raw['kind']!r}")
        elif offline.startswith("trained:"):
            name = offline.split(":", 1)[1]
            if not name or name.startswith("/") or ".." in Path(name).parts:
                raise ManifestError(f"{where}.offline: 'trained:<name>' needs a relative name inside the models "
                                    f"directory, got {offline!r}")
        elif offline.startswith("package:"):
            known = {p.name for p in PACKAGED_MODELS}
            if offline.split(":", 1)[1] not in known:
                raise ManifestError(f"{where}.offline: {offline!r} names no packaged model; "
                                    f"known: {', '.join(sorted(known))}")
        elif offline != "none":
            raise ManifestError(f"{where}.offline: must be 'packaged', 'package:<name>', 'trained:<name>' or 'none', "
                                f"got {offline!r}")
        shipped = raw.get("shipped")
        if isinstance(shipped, str) and (not shipped or shipped.startswith("/") or ".." in Path(shipped).parts):
            raise ManifestError(f"{where}.shipped: needs a relative name inside bertvariants/assets/models, "
                                f"got {shipped!r}")
        if raw.get("hub") is None and offline == "none" and not raw.get("local") and not shipped:
            raise ManifestError(f"{where}: no 'hub', no 'local' and offline 'none': nothing could ever serve it")
        fields = {k: v for k, v in raw.items() if v is not None}
        if "labels" in fields:
            fields["labels"] = _labels(fields["labels"], where, raw["kind"])
        tasks[key] = TaskSpec(key=key, **fields)
    models_dir = data.get("models_dir", "models")
    if not isinstance(models_dir, str):
        raise ManifestError("spaces.yml: models_dir must be a string path")
    env_dir = os.environ.get("BERTVARIANTS_MODELS_DIR")
    path = Path(env_dir) if env_dir else Path(models_dir)
    return Manifest(tasks=tasks, models_dir=path if path.is_absolute() else base_dir / path)


@lru_cache(maxsize=1)
def default_manifest() -> Manifest:
    """The manifest the app serves from, parsed once per process (``default_manifest.cache_clear()`` re-reads)."""
    return load_manifest()


def load_manifest(path: str | os.PathLike | None = None) -> Manifest:
    path = Path(path) if path else Path(os.environ.get("BERTVARIANTS_MANIFEST", MANIFEST_PATH))
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ManifestError(f"manifest not found: {path}") from None
    except yaml.YAMLError as exc:
        raise ManifestError(f"{path.name}: not valid YAML: {exc}") from None
    return parse_manifest(data, base_dir=path.resolve().parent)
