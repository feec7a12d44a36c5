"""Models this project trained and ships inside the repository, in compact form, so a fresh clone serves every
task offline with no build step.

A shipped model is a folder ``bertvariants/assets/models/<name>/`` holding:

- ``shipped.json`` — what it is: the kind it serves, the **base** it is applied to (recomputed at load from the
  packaged all-MiniLM-L6-v2, whose sha256 is recorded and checked), the model config overrides (labels), and the
  sha256 of every file in the folder (checked at load: a changed or truncated file is refused);
- ``adapter_model.safetensors`` + ``adapter_config.json`` — a LoRA adapter (Hu et al. 2021, §4.1: rank r ≪ d)
  over the base's attention and feed-forward linears, saved by ``peft``; merged into the base at load as
  W₀ + (α/r)·B·A (:func:`merge_lora`, what peft's ``merge_and_unload`` computes, without importing peft), so
  inference costs exactly what the plain model costs;
- ``head.safetensors`` — the task head trained from scratch (classifier, QA span head, the MLM transform and
  bias, ELECTRA's replaced-token head), fp16; weights tied to the base (the MLM decoder = the word embeddings)
  are not stored;
- ``README.md`` — the model card (recipe, data and its sha256, steps, seconds, harness metrics with CI, seed).

Bases (:data:`BASES`): ``minilm`` (the packaged model with the kind's head), ``minilm-layers`` (only the listed
encoder layers, DistilBERT-style), ``minilm-electra`` (the packaged weights as an ELECTRA discriminator),
``bilstm-minilm`` (Tang et al.'s BiLSTM student on the packaged, frozen token embeddings; everything else is in
``head.safetensors``), ``albert-minilm`` (ALBERT's factorized, shared encoder whose V×E table is the truncated SVD
of the packaged embeddings; everything else is in ``head.safetensors``). Only
safetensors are read; no pickle is ever loaded from the assets.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Callable

from ..albert_init import albert_from_bert
from ..electra import discriminator_from_bert
from ..io import atomic_write_json, sha256_file
from ..paths import REPO_ROOT
from ..students import BiLSTMConfig, BiLSTMStudent
from .manifest import KINDS, auto_class, packaged_model_path

SHIPPED_DIR = REPO_ROOT / "bertvariants" / "assets" / "models"
MANIFEST = "shipped.json"
ADAPTER_FILES = ("adapter_config.json", "adapter_model.safetensors")
HEAD_FILE = "head.safetensors"
LORA_TARGETS = ("query", "key", "value", "attention.output.dense", "intermediate.dense", "output.dense")
# the parameters a task head trains from scratch, and the transformers class a shipped model of each kind is
# rebuilt as: columns of the one kinds table (manifest.KINDS)
HEAD_PREFIXES = {k.name: k.shipped_head for k in KINDS.values() if k.shipped_architecture}
ARCHITECTURES = {k.name: k.shipped_architecture for k in KINDS.values() if k.shipped_architecture}


class ShippedModelError(ValueError):
    """A shipped model folder is incomplete, changed, or built on another base than the packaged one."""


@dataclass(frozen=True)
class ShippedSpec:
    """``shipped.json``: how to rebuild a shipped model from the packaged MiniLM."""

    name: str
    kind: str
    base: str  # a key of BASES
    base_sha256: str  # sha256 of the packaged model.safetensors the adapter was trained on
    files: dict[str, str]  # file name -> sha256
    config: dict = field(default_factory=dict)  # e.g. num_labels, id2label
    layers: tuple[int, ...] = ()  # minilm-layers: which encoder layers the student keeps
    recipe: str = ""
    max_length: int | None = None  # the tokenizer's model_max_length it was trained with (e.g. 128-token chunks)

    @classmethod
    def read(cls, folder: Path) -> "ShippedSpec":
        path = Path(folder) / MANIFEST
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
            raw["layers"] = tuple(raw.get("layers", ()))
            config = raw.get("config", {})
            if "id2label" in config:  # JSON keys are strings; transformers wants class indices
                config["id2label"] = {int(k): v for k, v in config["id2label"].items()}
            return cls(**raw)
        except (OSError, ValueError, TypeError) as exc:
            raise ShippedModelError(f"{path}: not a readable shipped-model manifest ({exc})") from None

    def write(self, folder: Path) -> Path:
        data = {k: (list(v) if isinstance(v, tuple) else v) for k, v in self.__dict__.items()}
        return atomic_write_json(Path(folder) / MANIFEST, data)


def is_shipped(path: Path) -> bool:
    return (Path(path) / MANIFEST).is_file()


def shipped_dir(name: str) -> Path:
    return SHIPPED_DIR / name


@lru_cache(maxsize=1)
def packaged_sha256() -> str:
    """sha256 of the packaged MiniLM's weights (the base every adapter was trained on)."""
    return sha256_file(packaged_model_path() / "model.safetensors")


def verify(folder: Path, spec: ShippedSpec) -> None:
    """Every listed file exists with its recorded sha256, and the base is the packaged model it was trained on."""
    for name, digest in spec.files.items():
        path = Path(folder) / name
        if not path.is_file():
            raise ShippedModelError(f"{path} is missing (the shipped model {spec.name} is incomplete)")
        if sha256_file(path) != digest:
            raise ShippedModelError(f"{path}: sha256 does not match {MANIFEST} (the file changed or is truncated)")
    if spec.base_sha256 != packaged_sha256():
        raise ShippedModelError(f"{spec.name} was trained on another all-MiniLM-L6-v2 (sha256 {spec.base_sha256[:12]}…)"
                                f" than the packaged one ({packaged_sha256()[:12]}…)")


# --------------------------------------------------------------------------------------------
# Bases: recomputed from the packaged model at load, never stored
# --------------------------------------------------------------------------------------------
def _minilm(kind: str, config: dict, layers: tuple[int, ...]):
    model = auto_class(kind).from_pretrained(str(packaged_model_path()), **config)
    return model


def _minilm_layers(kind: str, config: dict, layers: tuple[int, ...]):
    """DistilBERT §3 "student initialization": keep ``layers`` of the teacher's encoder (e.g. 1, 3, 5)."""
    from torch import nn

    model = _minilm(kind, config, ())
    encoder = model.base_model.encoder
    if not layers or max(layers) >= len(encoder.layer):
        raise ShippedModelError(f"layers {layers} do not fit a {len(encoder.layer)}-layer base")
    encoder.layer = nn.ModuleList(encoder.layer[i] for i in layers)
    model.config.num_hidden_layers = len(layers)
    return model


def _minilm_electra(kind: str, config: dict, layers: tuple[int, ...]):
    """The packaged weights as an ``ElectraForPreTraining`` (BERT and ELECTRA share their encoder modules)."""
    from transformers import BertModel

    return discriminator_from_bert(BertModel.from_pretrained(str(packaged_model_path()), add_pooling_layer=False))


def packaged_word_embeddings():
    """The packaged MiniLM's token embedding table (30,522 × 384), read from its safetensors."""
    from safetensors import safe_open

    with safe_open(str(packaged_model_path() / "model.safetensors"), framework="pt") as f:
        return f.get_tensor("embeddings.word_embeddings.weight")


def _bilstm_minilm(kind: str, config: dict, layers: tuple[int, ...]):
    """Tang et al.'s BiLSTM student whose (frozen) word embeddings are the packaged MiniLM's token embeddings."""
    model = BiLSTMStudent(BiLSTMConfig.from_json(config))
    emb = packaged_word_embeddings()
    if tuple(emb.shape) != tuple(model.embedding.weight.shape):
        raise ShippedModelError(f"the packaged embeddings {tuple(emb.shape)} do not fit the student's "
                                f"{tuple(model.embedding.weight.shape)}")
    model.embedding.weight.data.copy_(emb)
    return model


def _albert_minilm(kind: str, config: dict, layers: tuple[int, ...]):
    """ALBERT §3.1 from the packaged MiniLM: the V×E table by (sign-fixed) truncated SVD, one shared layer (or
    ``hidden_groups`` of them); the student's trained weights (everything but that table) are then copied in from
    ``head.safetensors``."""
    from transformers import BertModel

    bert = BertModel.from_pretrained(str(packaged_model_path()), add_pooling_layer=False)
    return albert_from_bert(bert, embedding_size=int(config.get("embedding_size", 128)),
                            shared_from=int(config.get("shared_from", 0)),
                            hidden_groups=int(config.get("hidden_groups", 1)))


BASES: dict[str, Callable] = {"minilm": _minilm, "minilm-layers": _minilm_layers, "minilm-electra": _minilm_electra,
                              "bilstm-minilm": _bilstm_minilm, "albert-minilm": _albert_minilm}
BASE_ARCHITECTURES = {"albert-minilm": "AlbertModel"}  # bases rebuilt as another class than their kind's


def architecture(spec: ShippedSpec) -> str:
    """The model class a shipped model is rebuilt as."""
    return BASE_ARCHITECTURES.get(spec.base) or ARCHITECTURES[spec.kind]


def build_base(spec: ShippedSpec):
    """The base rebuilt from the packaged model. transformers' load report would list the task head as "newly
    initialized": true of the base, but the shipped head is copied in next, so the report is silenced here."""
    from transformers.utils import logging as hf_logging

    if spec.base not in BASES:
        raise ShippedModelError(f"{spec.name}: unknown base {spec.base!r}; one of {', '.join(BASES)}")
    level, bars = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        return BASES[spec.base](spec.kind, dict(spec.config), spec.layers)
    finally:
        hf_logging.set_verbosity(level)
        if bars:
            hf_logging.enable_progress_bar()


def head_state(model, kind: str) -> dict:
    """The task head's parameters (trained from scratch), without weights tied to the base."""
    prefixes = HEAD_PREFIXES[kind]
    tied = {id(p) for name, p in model.named_parameters() if not name.startswith(prefixes)}
    return {name: p.detach() for name, p in model.named_parameters()
            if name.startswith(prefixes) and id(p) not in tied}


def load_head(model, path: Path) -> None:
    """Copy ``head.safetensors`` into ``model``: every stored tensor must name a parameter of the same shape."""
    import torch
    from safetensors.torch import load_file

    params = dict(model.named_parameters())
    state = load_file(str(path))
    for name, value in state.items():
        if name not in params or params[name].shape != value.shape:
            raise ShippedModelError(f"{path}: {name} {tuple(value.shape)} matches no parameter of the base")
        with torch.no_grad():
            params[name].copy_(value.to(params[name].dtype))


def merge_lora(model, folder: Path) -> int:
    """Hu et al. 2021 §4.1: W = W₀ + (α / r)·B·A for every adapted linear of the peft adapter in ``folder``, in
    place (what peft's ``merge_and_unload`` computes; peft itself is needed only to train). Returns the number of
    merged matrices. Adapter options that change the formula (rsLoRA, DoRA, per-module ranks) are refused."""
    import torch
    from safetensors.torch import load_file

    config = json.loads((Path(folder) / ADAPTER_FILES[0]).read_text(encoding="utf-8"))
    unsupported = [k for k in ("use_rslora", "use_dora", "fan_in_fan_out", "rank_pattern", "alpha_pattern")
                   if config.get(k)]
    if config.get("peft_type") != "LORA" or unsupported:
        raise ShippedModelError(f"{folder}: only plain LoRA adapters are merged here "
                                f"(found {unsupported or config.get('peft_type')})")
    scale = config["lora_alpha"] / config["r"]
    state = load_file(str(Path(folder) / ADAPTER_FILES[1]))
    modules = dict(model.named_modules())
    merged = 0
    for key, a in state.items():
        if not key.endswith(".lora_A.weight"):
            continue
        name = key.removeprefix("base_model.model.").removesuffix(".lora_A.weight")
        b = state.get(key.replace(".lora_A.", ".lora_B."))
        linear = modules.get(name)
        if b is None or linear is None or tuple(linear.weight.shape) != (b.shape[0], a.shape[1]):
            raise ShippedModelError(f"{folder}: adapter entry {name} does not match the base")
        with torch.no_grad():
            linear.weight += scale * (b.float() @ a.float()).to(linear.weight.dtype)  # (out, r) @ (r, in)
        merged += 1
    if merged == 0 or merged * 2 != len(state):
        raise ShippedModelError(f"{folder}: {len(state)} adapter tensors, {merged} merged")
    return merged


def build_shipped_model(folder: Path):
    """(model, spec): the base rebuilt from the packaged model, the head copied in, the adapter merged."""
    folder = Path(folder)
    spec = ShippedSpec.read(folder)
    verify(folder, spec)
    model = build_base(spec)
    if (folder / HEAD_FILE).is_file():
        load_head(model, folder / HEAD_FILE)
    if (folder / ADAPTER_FILES[1]).is_file():
        merge_lora(model, folder)
    return model.eval(), spec
