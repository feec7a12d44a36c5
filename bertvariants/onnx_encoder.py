"""Sentence encoders shipped as ONNX files, run by onnxruntime behind the project's one inference path.

Sentence-BERT §3 needs token states and a pooling layer; an ONNX export of a BERT encoder gives the token states
(``last_hidden_state``, B × T × H) and this project pools them (:func:`bertvariants.common.pool`), so an ONNX
model goes through :func:`bertvariants.inference.encode` exactly like a PyTorch one. :class:`OnnxEncoder` is the
adapter: a ``torch.nn.Module`` whose ``forward(**batch)`` runs an ``onnxruntime.InferenceSession`` and returns
``.last_hidden_state``, with a ``config`` and a (zero-element) device anchor as its first parameter.

The two packaged files (``bertvariants.serving.packaged``) both output token states: ``minilm-int8-onnx`` only that
(``last_hidden_state``); ``minilm-l3-onnx`` the whole sentence-transformers pipeline (input ids, mask, token
embeddings and the already mean-pooled, unnormalised sentence embedding). The adapter always uses the token
states, so every pooling mode works; the tests check that mean pooling reproduces the export's own pooled output.
A file that exports only pooled vectors is refused with a clear message. Neither file carries a tokenizer: both
models use BERT's uncased 30,522-token WordPiece vocabulary, the packaged MiniLM's tokenizer.

**Parameters, honestly.** onnxruntime keeps the weights in C++; torch never sees them. :func:`read_weights` walks
the file's protobuf (no ``onnx`` package needed) and lists the weight initializers: floating-point and 8-bit
tensors of rank ≥ 1, not the int64 index/shape constants, and not the quantization scales and zero points
(counted apart: they store how an int8 weight maps back to floats, not something the network learned). The
adapter's ``parameters()`` yields one shape-only ``meta`` tensor per weight after the anchor, so
``sum(p.numel() for p in model.parameters())`` is the ONNX model's real count: 17,241,984 for
paraphrase-MiniLM-L3-v2 and 22,565,376 for the int8 all-MiniLM-L6-v2 (both are the PyTorch BertModel's count
without the [CLS] pooler, which a sentence encoder's export drops). They stay out of ``state_dict()`` and
``.to()``: they have no values to save or move.

Nothing here imports gradio, loads a model or reads a file at import time.
"""

from __future__ import annotations

import logging
import math
import mmap
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
import torch
from torch import nn

from .io import sha256_file
from .serving.cache import packaged_tokenizer

log = logging.getLogger(__name__)

# TensorProto.DataType -> torch dtype of the weights we count (4-bit ints are counted, mirrored as uint8)
WEIGHT_DTYPES = {1: torch.float32, 2: torch.uint8, 3: torch.int8, 10: torch.float16, 11: torch.float64,
                 16: torch.bfloat16, 21: torch.uint8, 22: torch.int8}
DTYPE_NAMES = {1: "fp32", 2: "uint8", 3: "int8", 10: "fp16", 11: "fp64", 16: "bf16", 21: "uint4", 22: "int4"}
# operator -> the input positions that hold quantization scales / zero points, not weights
QUANT_INPUTS = {"DequantizeLinear": (1, 2), "QuantizeLinear": (1, 2), "QLinearMatMul": (1, 2, 4, 5, 6, 7),
                "MatMulInteger": (2, 3), "DynamicQuantizeMatMul": (2, 3), "MatMulIntegerToFloat": (2, 3, 4, 5)}


# --------------------------------------------------------------------------------------------
# Reading the weights' shapes from the ONNX protobuf
# --------------------------------------------------------------------------------------------
def _varint(buf, i: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = buf[i]
        i += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            return value, i


def _fields(buf, start: int, end: int) -> Iterator[tuple[int, int, object]]:
    """(field number, wire type, value) of one protobuf message; a length-delimited value is its (start, end)."""
    i = start
    while i < end:
        key, i = _varint(buf, i)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, i = _varint(buf, i)
        elif wire == 2:
            n, i = _varint(buf, i)
            value, i = (i, i + n), i + n  # raw weight bytes are skipped by length, never read
        elif wire in (1, 5):
            value, i = None, i + (8 if wire == 1 else 4)
        else:
            raise ValueError(f"not an ONNX protobuf (wire type {wire} at byte {i})")
        yield number, wire, value


def _text(buf, span) -> str:
    return bytes(buf[span[0]:span[1]]).decode("utf-8", "replace")


def _tensor_header(buf, span) -> tuple[str, tuple[int, ...], int]:
    """TensorProto: name (8), dims (1, packed or not), data_type (2)."""
    name, dims, dtype = "", [], 0
    for number, wire, value in _fields(buf, *span):
        if number == 1 and wire == 0:
            dims.append(value)
        elif number == 1:
            i = value[0]
            while i < value[1]:
                d, i = _varint(buf, i)
                dims.append(d)
        elif number == 2:
            dtype = value
        elif number == 8:
            name = _text(buf, value)
    return name, tuple(dims), dtype


def _node(buf, span) -> tuple[str, list[str], list[str], list]:
    """NodeProto: op_type (4), inputs (1), outputs (2), the tensors of its attributes (AttributeProto.t = 5)."""
    op, inputs, outputs, tensors = "", [], [], []
    for number, _, value in _fields(buf, *span):
        if number == 4:
            op = _text(buf, value)
        elif number == 1:
            inputs.append(_text(buf, value))
        elif number == 2:
            outputs.append(_text(buf, value))
        elif number == 5:
            tensors += [v for n, w, v in _fields(buf, *value) if n == 5 and w == 2]
    return op, inputs, outputs, tensors


@dataclass(frozen=True)
class OnnxWeights:
    """The weight tensors an ONNX file stores: what the network learned, and the quantization metadata apart."""

    shapes: tuple[tuple[str, tuple[int, ...], int], ...]  # (name, shape, TensorProto dtype) of every weight
    quantization: int  # elements of scales and zero points (int8 → float mapping), not counted as parameters

    @property
    def parameters(self) -> int:
        return sum(math.prod(shape) for _, shape, _ in self.shapes)

    @property
    def by_dtype(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for _, shape, dtype in self.shapes:
            out[DTYPE_NAMES[dtype]] = out.get(DTYPE_NAMES[dtype], 0) + math.prod(shape)
        return out

    def shape_of(self, fragment: str) -> tuple[int, ...] | None:
        """The shape of the first weight whose name contains ``fragment`` (e.g. ``position_embeddings``)."""
        return next((shape for name, shape, _ in self.shapes if fragment in name), None)


def read_weights(path: str | Path) -> OnnxWeights:
    """List the weights of an ONNX file from its protobuf headers (the raw bytes are memory-mapped, never read).

    Weights: initializers and ``Constant`` tensors of a floating-point or 8-bit type with rank ≥ 1. Quantization
    metadata: the scale / zero-point inputs of the quantized operators (:data:`QUANT_INPUTS`) and the float
    factor of ``Mul(Cast(int8 weight), scale)``, the weight-only int8 pattern of the packaged int8 MiniLM.
    """
    with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as buf:
        graph = next((v for n, w, v in _fields(buf, 0, len(buf)) if n == 7 and w == 2), None)  # ModelProto.graph
        if graph is None:
            raise ValueError(f"{path} is not an ONNX model (no graph)")
        tensors: dict[str, tuple[tuple[int, ...], int]] = {}
        nodes = []
        for number, wire, value in _fields(buf, *graph):
            if number == 5 and wire == 2:  # GraphProto.initializer
                name, dims, dtype = _tensor_header(buf, value)
                tensors[name] = (dims, dtype)
            elif number == 1 and wire == 2:  # GraphProto.node
                op, inputs, outputs, attrs = _node(buf, value)
                nodes.append((op, inputs, outputs))
                if op == "Constant" and attrs and outputs:
                    _, dims, dtype = _tensor_header(buf, attrs[0])
                    tensors[outputs[0]] = (dims, dtype)
    cast_of = {outs[0]: ins[0] for op, ins, outs in nodes if op == "Cast" and ins and outs}
    metadata = set()
    for op, inputs, _ in nodes:
        metadata.update(inputs[i] for i in QUANT_INPUTS.get(op, ()) if i < len(inputs))
        if op == "Mul" and len(inputs) == 2:
            for mine, other in (inputs, inputs[::-1]):
                if tensors.get(cast_of.get(other, ""), ((), 0))[1] in (2, 3, 21, 22):
                    metadata.add(mine)  # Mul(Cast(int8 weight), scale): the scale
    weights = tuple((name, dims, dtype) for name, (dims, dtype) in tensors.items()
                    if dtype in WEIGHT_DTYPES and dims and name not in metadata)
    quant = sum(math.prod(tensors[n][0]) for n in metadata if n in tensors)
    return OnnxWeights(shapes=weights, quantization=quant)


# --------------------------------------------------------------------------------------------
# The adapter
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class OnnxConfig:
    """What callers read from ``model.config`` (``LoadedModel.max_length`` reads ``max_position_embeddings``)."""

    hidden_size: int
    max_position_embeddings: int | None  # rows of the position table, when the graph has one
    vocab_size: int | None  # rows of the word-embedding table
    inputs: tuple[str, ...]  # the graph's input names (some exports take no token_type_ids)
    token_output: str  # the (B, T, H) float output used as last_hidden_state
    pooled_output: str | None  # a (B, H) float output the export pools itself, if any (tests compare against it)
    file: str
    sha256: str
    size_bytes: int
    weight_dtypes: dict  # elements per stored dtype, e.g. {"int8": 22533888, "fp32": 31488}
    quantization_elements: int
    provider: str  # the onnxruntime execution provider the session runs on
    model_type: str = "onnx"
    is_decoder: bool = False


@dataclass
class OnnxOutput:
    last_hidden_state: torch.Tensor  # (B, T, H) float32


def session_options(threads: int | None = None):
    """onnxruntime options: as many intra-op threads as torch uses (one knob for both runtimes), no spinning."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = max(1, threads or torch.get_num_threads())
    opts.inter_op_num_threads = 1
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # idle pool threads would otherwise spin between requests, stealing the CPU that torch's models share
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return opts


def providers_for(device: str) -> list[str]:
    """CUDA first when the device is CUDA and this onnxruntime build has the CUDA provider, then the CPU."""
    import onnxruntime as ort

    if device.startswith("cuda") and "CUDAExecutionProvider" in ort.get_available_providers():
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    return ["CPUExecutionProvider"]


def pick_outputs(outputs) -> tuple[str, str | None]:
    """(token-state output, pooled output or None) among a session's outputs (``NodeArg``: name, shape, type)."""
    floats = [o for o in outputs if o.type == "tensor(float)"]
    tokens = [o.name for o in floats if len(o.shape) == 3]
    pooled = [o.name for o in floats if len(o.shape) == 2]
    if not tokens:
        raise ValueError(f"the ONNX graph outputs no (batch, tokens, hidden) float tensor (outputs: "
                         f"{', '.join(o.name for o in outputs)}); Sentence-BERT pooling needs the token states")
    preferred = [n for n in tokens if n in ("last_hidden_state", "token_embeddings")]
    return (preferred or tokens)[0], (pooled[0] if pooled else None)


class OnnxEncoder(nn.Module):
    """An ``onnxruntime`` session that :func:`bertvariants.inference.encode` can call like a transformers encoder.

    ``forward(input_ids, attention_mask, token_type_ids=None)`` → :class:`OnnxOutput` with ``last_hidden_state``
    (B, T, H) on the anchor's device. Inputs the graph does not take are dropped (token type ids, all zero for a
    single sentence; a sentence pair on a graph without them is refused rather than silently mis-encoded).
    """

    def __init__(self, session, config: OnnxConfig, weights: OnnxWeights, *, device: str = "cpu"):
        super().__init__()
        self.session = session
        self.config = config
        # first parameter: inference reads the device from next(model.parameters()); it holds no numbers
        self.anchor = nn.Parameter(torch.zeros(0, device=device), requires_grad=False)
        self.weight_shapes = tuple(
            (name, nn.Parameter(torch.empty(shape, dtype=WEIGHT_DTYPES[dtype], device="meta"), requires_grad=False))
            for name, shape, dtype in weights.shapes)  # shape-only mirrors of the ONNX weights: honest counts

    def named_parameters(self, prefix: str = "", recurse: bool = True, remove_duplicate: bool = True):
        """The anchor, then one ``meta`` tensor per ONNX weight (``onnx.<initializer name>``)."""
        yield from super().named_parameters(prefix, recurse, remove_duplicate)
        dot = f"{prefix}." if prefix else ""
        for name, tensor in self.weight_shapes:
            yield f"{dot}onnx.{name}", tensor

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                token_type_ids: torch.Tensor | None = None, **_) -> OnnxOutput:
        given = {"input_ids": input_ids,
                 "attention_mask": torch.ones_like(input_ids) if attention_mask is None else attention_mask,
                 "token_type_ids": torch.zeros_like(input_ids) if token_type_ids is None else token_type_ids}
        if "token_type_ids" not in self.config.inputs and token_type_ids is not None and bool(token_type_ids.any()):
            raise ValueError("this ONNX encoder takes no token_type_ids: it encodes single sentences, not pairs")
        feed = {}
        for name in self.config.inputs:
            if name not in given:
                raise ValueError(f"the ONNX graph needs an input {name!r} this adapter cannot provide")
            feed[name] = np.ascontiguousarray(given[name].detach().to("cpu", torch.int64).numpy())
        (hidden,) = self.session.run([self.config.token_output], feed)  # (B, T, H) float32
        return OnnxOutput(torch.from_numpy(hidden).to(self.anchor.device))


# --------------------------------------------------------------------------------------------
# Opening a directory
# --------------------------------------------------------------------------------------------
def onnx_file(location: str | Path) -> Path:
    """The one ``*.onnx`` file of a directory (ValueError when there is none or more than one)."""
    path = Path(location)
    if path.is_file() and path.suffix == ".onnx":
        return path
    files = sorted(path.glob("*.onnx")) if path.is_dir() else []
    if len(files) != 1:
        raise ValueError(f"{location} must hold exactly one .onnx file, found "
                         f"{', '.join(f.name for f in files) or 'none'}")
    return files[0]


def onnx_revision(path: str | Path) -> str:
    """``onnx:sha256:<16 hex>`` of the file (the model's revision in results)."""
    return "onnx:sha256:" + sha256_file(onnx_file(path))[:16]


@dataclass(frozen=True)
class OpenedOnnx:
    """What :func:`open_onnx_encoder` hands the loader table (which wraps it in a ``LoadedModel``)."""

    model: OnnxEncoder
    tokenizer: object
    device: str  # "cuda" only when the session really runs on the CUDA provider
    architecture: str  # for the label, e.g. "ONNX int8 weights · onnxruntime 1.32.0 CPU"
    revision: str


def load_tokenizer(tokenizer_location: str | None):
    """The given tokenizer, else the packaged MiniLM's WordPiece tokenizer (shared, built once per process)."""
    if tokenizer_location:
        from transformers import AutoTokenizer

        return AutoTokenizer.from_pretrained(tokenizer_location, local_files_only=Path(tokenizer_location).exists())
    return packaged_tokenizer()


def open_onnx_encoder(location: str | Path, *, device: str = "cpu", tokenizer_location: str | None = None,
                      threads: int | None = None) -> OpenedOnnx:
    """Open the ``*.onnx`` file in ``location`` as an :class:`OnnxEncoder` plus its tokenizer.

    The session runs on the CUDA provider when ``device`` is CUDA and the provider is available, else on the CPU
    with ``threads`` (default: torch's thread count) intra-op threads. The tokenizer's vocabulary must match the
    graph's word-embedding table.

    >>> opened = open_onnx_encoder(locate("minilm-int8-onnx"))  # doctest: +SKIP
    >>> encode(opened.model, opened.tokenizer, ["A man is eating food."]).shape  # doctest: +SKIP
    torch.Size([1, 384])
    """
    import onnxruntime as ort

    file = onnx_file(location)
    providers = providers_for(device)
    session = ort.InferenceSession(str(file), session_options(threads), providers=providers)
    provider = session.get_providers()[0]
    token_output, pooled_output = pick_outputs(session.get_outputs())
    weights = read_weights(file)
    tokenizer = load_tokenizer(tokenizer_location)
    vocab = weights.shape_of("word_embeddings")
    if vocab and len(tokenizer) > vocab[0]:
        raise ValueError(f"{file.name} embeds {vocab[0]:,} token ids but the tokenizer has {len(tokenizer):,}: "
                         "pass the tokenizer the model was exported with")
    hidden = next(o.shape[-1] for o in session.get_outputs() if o.name == token_output)
    positions = weights.shape_of("position_embeddings")
    config = OnnxConfig(hidden_size=int(hidden) if isinstance(hidden, int) else (vocab or (0, 0))[-1],
                        max_position_embeddings=positions[0] if positions else None,
                        vocab_size=vocab[0] if vocab else None, inputs=tuple(i.name for i in session.get_inputs()),
                        token_output=token_output, pooled_output=pooled_output, file=str(file),
                        sha256=sha256_file(file), size_bytes=file.stat().st_size, weight_dtypes=weights.by_dtype,
                        quantization_elements=weights.quantization, provider=provider)
    effective = device if provider == "CUDAExecutionProvider" else "cpu"
    if effective != device:
        log.info("onnxruntime has no CUDA provider here: %s runs on the CPU", file.name)
    model = OnnxEncoder(session, config, weights, device=effective).eval()
    stored = "int8 weights" if "int8" in config.weight_dtypes else "/".join(config.weight_dtypes) + " weights"
    arch = f"ONNX {stored} · onnxruntime {ort.__version__} {provider.replace('ExecutionProvider', '')}"
    return OpenedOnnx(model=model, tokenizer=tokenizer, device=effective, architecture=arch,
                      revision="onnx:sha256:" + config.sha256[:16])
