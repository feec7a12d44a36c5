"""What a loaded model is: :class:`LoadedModel` with its :class:`Resolution` (where it came from) and revision.

Plain data, importable by every loader module (:mod:`bertvariants.serving.formats` and the format modules its
loader table calls, e.g. :mod:`bertvariants.smollm`, :mod:`bertvariants.onnx_encoder`) without an import cycle.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..io import sha256_file
from .manifest import HEADS, PACKAGED_HUB_ID


@dataclass(frozen=True)
class Resolution:
    """Where a task's model comes from. ``location`` is a local directory or a Hub id."""

    task: str
    source: str  # one of SOURCES
    location: str
    tokenizer_location: str
    revision: str | None = None
    kind: str | None = None  # the kind this source serves, when it differs from the task's (a packaged decoder)
    model_name: str = ""  # what the source is, for the label (packaged models: their Hub id)
    skipped: tuple[str, ...] = ()  # earlier sources passed over, each with its reason (e.g. no trained head)

    @property
    def name(self) -> str:
        """The checkpoint's short name for tables: a Hub repo id (also for a cached snapshot), else the folder name."""
        if self.source.startswith("hub"):
            return short_location(self.location)
        return self.model_name or Path(self.location).name or self.location

    @property
    def label(self) -> str:
        what = {
            "local": "local checkpoint",
            "hub-cache": "Hugging Face checkpoint (cached)",
            "hub": "Hugging Face checkpoint",
            "trained": "trained by this project (offline default)",
            "shipped": "trained by this project, shipped in the repository (offline default)",
            "packaged": ("pretrained weights shipped in a pip package (offline default)" if self.model_name
                         else "packaged all-MiniLM-L6-v2 (offline default)"),
        }[self.source]
        hub = self.source.startswith("hub")
        name = short_location(self.location) if hub else Path(self.location).name or self.location
        if self.source == "packaged":
            name = self.model_name or PACKAGED_HUB_ID
        return f"`{name}` — {what}" + "".join(f" ({why})" for why in self.skipped)


class ModelUnavailable(RuntimeError):
    """No checkpoint can serve a task here; the message says what is missing and how to get it."""


class UntrainedHead(ModelUnavailable):
    """A checkpoint lacks the trained head its task needs (transformers would initialise one at random).

    The resolver never serves such a model: it passes to the next source and says why (:attr:`reason`)."""

    def __init__(self, location: str, kind: str, missing: tuple[str, ...] = ()):
        self.location, self.kind, self.missing = location, kind, tuple(sorted(missing))
        head = HEADS[kind] if kind in HEADS else None
        shown = ", ".join(self.missing[:3]) + (f" and {len(self.missing) - 3} more" if len(self.missing) > 3 else "")
        what = head.name if head else kind
        why = (f"loading it left {shown} newly initialised" if self.missing else
               f"no `{head.prefixes[0]}*` weights, and its config names no {what} architecture" if head else "")
        super().__init__(f"`{short_location(location)}` has no trained {what} head ({why})")

    @property
    def reason(self) -> str:
        return self.args[0]


def short_location(location: str) -> str:
    """A Hub cache snapshot as its repo id (``.../models--org--name/snapshots/<sha>`` -> ``org/name``)."""
    path = Path(location)
    if path.parent.name == "snapshots" and path.parent.parent.name.startswith("models--"):
        return path.parent.parent.name.removeprefix("models--").replace("--", "/")
    return location


@dataclass
class LoadedModel:
    """A model ready for inference, with where it came from (shown in the UI and stored in results).

    ``parts`` holds the further models a format brings (ELECTRA's generator, SpanBERT's MLM + SBO model);
    ``architecture`` names a non-transformers format (e.g. "BiLSTMStudent") for the UI label.
    """

    resolution: Resolution
    kind: str
    model: Any
    tokenizer: Any
    device: str
    parts: dict = field(default_factory=dict)
    architecture: str = ""
    revision: str = ""  # weights hash of a local directory, or the Hub commit / id
    variant: str = ""  # the Leaderboard group a model loaded by name is filed under (serving.load)

    @property
    def label(self) -> str:
        return self.resolution.label + (f" · {self.architecture}" if self.architecture else "")

    @property
    def num_parameters(self) -> int:
        model = self.parts.get("span_model", self.model)
        return sum(p.numel() for p in model.parameters())

    @property
    def location(self) -> Path:
        return Path(self.resolution.location)

    @property
    def pooling(self) -> str:
        """The sentence-transformers pooling of the checkpoint (``1_Pooling/config.json``), else mean."""
        cfg = self.location / "1_Pooling" / "config.json"
        if cfg.is_file():
            data = json.loads(cfg.read_text(encoding="utf-8"))
            if data.get("pooling_mode_cls_token"):
                return "cls"
            if data.get("pooling_mode_max_tokens"):
                return "max"
        return "mean"

    @property
    def max_length(self) -> int:
        """The longest input the model was trained on: sentence-transformers' max_seq_length, the position
        table, the tokenizer's limit, BERT's 512 (whichever is smallest)."""
        st = self.location / "sentence_bert_config.json"
        limits = [json.loads(st.read_text(encoding="utf-8")).get("max_seq_length") if st.is_file() else None,
                  getattr(getattr(self.model, "config", None), "max_position_embeddings", None),
                  getattr(self.tokenizer, "model_max_length", None), 512]
        return min(x for x in limits if isinstance(x, int) and x > 0)


def weights_hash(path: Path) -> str:
    """``sha256:<16 hex>`` over the weight files of a checkpoint directory (its revision in results)."""
    files = sorted(p for p in Path(path).iterdir() if p.suffix in (".safetensors", ".bin") and p.is_file())
    if not files:
        return "unknown"
    h = hashlib.sha256()
    for f in files:
        h.update(sha256_file(f).encode())
    return "sha256:" + h.hexdigest()[:16]


def revision_of(location: str) -> str:
    path = Path(location)
    if path.is_dir():
        if path.parent.name == "snapshots":  # a Hugging Face cache snapshot: its name is the commit sha
            return f"hub:{path.name}"
        return weights_hash(path)
    return f"hub:{location}"
