"""One batched inference path for every tab and for ``evaluation``.

What makes it fast (measured by ``python -m evaluation bench``, see docs/performance.md):

1. **De-duplication** before any work: identical inputs (text, or text pair) are tokenized and run once,
   then inputs that tokenize identically are merged too.
2. **One tokenizer call** over all unique inputs with the fast (Rust) tokenizer, no padding, no
   attention masks: the padded tensors are built here with NumPy, batch by batch (``tokenizer.pad``
   costs more per batch than the whole padding copy).
3. **Length-sorted bucketing with dynamic padding**: unique inputs are sorted by token count and cut
   into batches of at most ``batch_size`` rows and ``max_tokens`` padded tokens, each padded only to
   its own longest member. On STS-B dev (3,000 sentences, 48,709 real tokens, 47,749 after de-duplication)
   this executes 49,675 token positions; sentence-transformers' character-length sort with batch 32
   executes 66,048.
4. ``torch.inference_mode`` (no autograd bookkeeping) and transformers' SDPA attention, which skips
   the mask entirely when a batch has no padding; the bf16 fast mode on a CPU runs an eager-attention copy
   (:func:`eager_twin`: faster there at sentence lengths).
5. **Precision**: fp32 (CPU default, exact), ``bf16`` autocast (fast on CPUs with native bf16: AVX-512 BF16 /
   AMX; emulated, so slower than fp32, elsewhere) or on CUDA, fp16 on CUDA, ``int8`` (dynamic quantization of the
   linear layers, VNNI / AMX-INT8 kernels), and ``fast``: whichever of fp32 / bf16 / int8 a micro-benchmark of the
   model's real shapes finds fastest on this machine (:func:`fast_path`, once per model and process).
6. Results come back in the caller's order with one gather (``index_select``), duplicates included.
"""

from __future__ import annotations

import threading
import time
import warnings
import weakref
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import torch

from .common import pool
from .internals import require
from .serving.device import cpu_capabilities

PRECISIONS = ("fp32", "bf16", "fp16", "auto", "int8", "fast")
DEFAULT_BATCH_SIZE = 64
DEFAULT_MAX_TOKENS = 16384  # padded tokens per batch: bounds activation memory for long inputs (64 × 256)


def cpu_has_native_bf16() -> bool:
    """True when the CPU multiplies bf16 natively (AVX-512 BF16 or AMX), so autocast is a speed-up
    (:func:`bertvariants.serving.device.cpu_capabilities`, the one reader of the CPU's flags)."""
    return cpu_capabilities().native_bf16


def resolve_precision(precision: str, device: str) -> torch.dtype | None:
    """Map a precision option to the autocast dtype (None = plain fp32; ``int8`` runs a quantized copy without
    autocast; ``fast`` is decided per model by :func:`fast_path`)."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if precision == "int8":
        if device.startswith("cuda"):
            raise ValueError("int8 is a CPU precision (dynamic quantization); on CUDA use bf16 or auto")
        return None
    if precision == "fast":
        if not device.startswith("cuda"):
            return None  # decided per model by fast_path (runner_for)
        precision = "auto"
    if precision == "auto":
        if device.startswith("cuda"):
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return None  # fp32 is the CPU default: exact results; ask for bf16 explicitly
    if precision == "fp16" and not device.startswith("cuda"):
        raise ValueError("fp16 is only supported on CUDA; use bf16 on CPU")
    return {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]


_TWINS: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()
_TWINS_LOCK = threading.Lock()


def eager_twin(model):
    """The model with eager attention, for bf16 autocast on a CPU (the fast mode), made once per model.

    At the short lengths of sentence tasks the explicit softmax(QKᵀ)V of eager attention runs faster under bf16
    autocast than SDPA's CPU flash kernel (STS-B dev encode 2.08–2.11 s vs 2.27–2.44 s here; fp32: no difference).
    The shared model keeps SDPA — switching its attention per call would race with concurrent fp32 calls, which
    stay bit-for-bit what they were — so the fast mode runs on a copy that shares nothing mutable. A change to
    the original's weights (an optimizer step bumps each tensor's version counter) makes a fresh copy; a model
    without transformers' ``set_attn_implementation`` runs as it is.
    """
    import copy

    if not hasattr(model, "set_attn_implementation"):
        return model
    require("torch")  # Tensor._version
    versions = tuple(p._version for p in model.parameters())
    with _TWINS_LOCK:
        cached = _TWINS.get(model)
        if cached is None or cached[0] != versions:
            twin = copy.deepcopy(model).eval()
            try:
                twin.set_attn_implementation("eager")
            except (ValueError, AttributeError, NotImplementedError):
                return model
            _TWINS[model] = cached = (versions, twin)
    return cached[1]


def quantized_twin(model):
    """A copy of the model whose linear layers are int8 (dynamic quantization: int8 weights per output channel,
    activations quantized per batch), made once per model. PyTorch's x86 quantized kernels use VNNI / AMX-INT8
    where the CPU has them. Per-channel weights keep STS-B Spearman within 0.4 of fp32 (per-tensor lost 0.7).
    Like :func:`eager_twin`, the shared fp32 model is never changed; a weight update makes a fresh copy."""
    import copy

    from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic

    require("torch")  # Tensor._version
    versions = tuple(p._version for p in model.parameters())
    with _TWINS_LOCK:
        cached = _INT8_TWINS.get(model)
        if cached is None or cached[0] != versions:
            with warnings.catch_warnings():  # torch's notice that eager-mode quantization moves to torchao
                warnings.simplefilter("ignore")
                twin = quantize_dynamic(copy.deepcopy(model).eval(), {torch.nn.Linear: per_channel_dynamic_qconfig},
                                        dtype=torch.qint8)
            _INT8_TWINS[model] = cached = (versions, twin)
    return cached[1]


_INT8_TWINS: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


@dataclass(frozen=True)
class FastPath:
    """The fast mode's choice for one model on this machine: the fastest of fp32, bf16 autocast and int8 on a
    micro-benchmark of the model's real shapes (``seconds``: best of 3 per candidate), or bf16/fp16 on CUDA."""

    precision: str  # "fp32" | "bf16" | "int8" (CPU) | "auto" (CUDA: bf16, or fp16 without bf16)
    seconds: dict
    cpu: str

    def describe(self) -> str:
        timed = ", ".join(f"{k} {v * 1000:.0f} ms" for k, v in self.seconds.items())
        return f"fast mode = {self.precision} on {self.cpu}" + (f" (measured: {timed})" if timed else "")


_FAST: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()  # model -> {shape: FastPath}
FAST_SHAPE = (16, 48)  # (batch, tokens) of the micro-benchmark: a batch of sentence-length inputs
DECODE_SHAPE = (1, 1)  # one token of one sequence: what each step of greedy generation runs
FAST_CANDIDATES = ("fp32", "bf16", "int8")


def fast_path(model, *, shape: tuple[int, int] = FAST_SHAPE,
              candidates: tuple[str, ...] = FAST_CANDIDATES) -> FastPath:
    """Which precision makes ``model`` fastest here, measured once per model, shape, candidates and process: each
    candidate (fp32; bf16 autocast on the eager twin; int8, the quantized twin) runs a ``shape`` = (batch, tokens)
    batch of the model's own vocabulary after a warm-up, taking turns (a burst of load hits all) for ≥ 3 rounds and
    0.2 s each; the fastest wins (flags mislead: emulated bf16 is 4× slower than fp32 on an Ice Lake). ``shape``:
    :data:`FAST_SHAPE` (encoders), :data:`DECODE_SHAPE` (a generation step); ``candidates`` drop a precision a
    task's quality rejects. Twins that lose are released."""
    device = str(next(model.parameters()).device)
    if device.startswith("cuda"):
        return FastPath("auto", {}, torch.cuda.get_device_name(device))
    key = (tuple(shape), tuple(candidates))
    if not key[1] or set(key[1]) - set(FAST_CANDIDATES):
        raise ValueError(f"candidates must be a non-empty subset of {FAST_CANDIDATES}, got {candidates!r}")
    with _TWINS_LOCK:
        if key in _FAST.get(model, {}):
            return _FAST[model][key]
    vocab = getattr(getattr(model, "config", None), "vocab_size", 1000)
    ids = torch.randint(5, max(6, vocab), key[0], generator=torch.Generator().manual_seed(0))
    batch = {"input_ids": ids, "attention_mask": torch.ones_like(ids)}
    build = {"fp32": lambda: (model, None), "bf16": lambda: (eager_twin(model), torch.bfloat16),
             "int8": lambda: (quantized_twin(model), None)}
    runners = {name: build[name]() for name in key[1]}
    times: dict[str, list[float]] = {name: [] for name in runners}
    with torch.inference_mode():
        for name, (runner, dtype) in runners.items():
            with autocast(device, dtype):
                runner(**batch)  # warm-up: first-call allocations, oneDNN primitive creation
        while min(len(t) for t in times.values()) < 3 or min(sum(t) for t in times.values()) < 0.2:
            for name, (runner, dtype) in runners.items():
                with autocast(device, dtype):
                    start = time.perf_counter()
                    runner(**batch)
                    times[name].append(time.perf_counter() - start)
    seconds = {name: min(t) for name, t in times.items()}
    path = FastPath(min(seconds, key=seconds.get), seconds, cpu_capabilities().describe())
    with _TWINS_LOCK:
        _FAST.setdefault(model, {})[key] = path
        chosen = {p.precision for p in _FAST[model].values()}
        for name, twins in (("bf16", _TWINS), ("int8", _INT8_TWINS)):
            if name not in chosen:
                twins.pop(model, None)  # a 135M decoder's eager twin alone holds 0.5 GB
    return path


def runner_for(model, precision: str, device: str, *, shape: tuple[int, int] = FAST_SHAPE,
               candidates: tuple[str, ...] = FAST_CANDIDATES):
    """(the module to run, autocast dtype) for ``precision``: the model itself, its eager twin under bf16 autocast,
    or its int8 twin; ``fast`` resolves through :func:`fast_path` measured on ``shape`` among ``candidates``."""
    if precision == "fast":
        precision = fast_path(model, shape=shape, candidates=candidates).precision
    dtype = resolve_precision(precision, device)
    if model.training or device != "cpu":
        return model, dtype
    if precision == "int8":
        return quantized_twin(model), None
    return (eager_twin(model) if dtype == torch.bfloat16 else model), dtype


def autocast(device: str, dtype: torch.dtype | None):
    """``torch.autocast`` to ``dtype`` on ``device``'s type, or a disabled one when ``dtype`` is None (fp32 / int8)."""
    if dtype is None:
        return torch.autocast(device_type=device.split(":")[0], enabled=False)
    return torch.autocast(device_type=device.split(":")[0], dtype=dtype)


@dataclass(frozen=True)
class Plan:
    """How a list of inputs maps onto forward passes: unique inputs, length-sorted batches."""

    unique_index: list[int]  # for each caller position, the index of its unique input
    batches: list[list[int]]  # unique-input indices per batch, longest first


def plan_batches(lengths: Sequence[int], keys: Sequence, *, batch_size: int, max_tokens: int | None = None) -> Plan:
    """De-duplicate ``keys`` and group the unique ones into length-sorted batches.

    Every batch holds at most ``batch_size`` rows, and ``max_tokens`` caps rows × longest length (the
    padded size), so a batch of long inputs gets fewer rows; a single input longer than ``max_tokens``
    still gets a batch of its own. Ties keep first-appearance order (stable sort).
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be ≥ 1, got {batch_size}")
    if max_tokens is not None and max_tokens < 1:
        raise ValueError(f"max_tokens must be ≥ 1 (or None), got {max_tokens}")
    if len(lengths) != len(keys):
        raise ValueError(f"got {len(lengths)} lengths but {len(keys)} keys")
    first: dict = {}
    unique_index = [first.setdefault(k, len(first)) for k in keys]
    uniq_len = [0] * len(first)
    for pos, u in enumerate(unique_index):
        uniq_len[u] = lengths[pos]
    order = sorted(range(len(first)), key=lambda u: -uniq_len[u])
    batches: list[list[int]] = []
    current: list[int] = []
    for u in order:
        longest = uniq_len[current[0]] if current else uniq_len[u]  # sorted: the first row is the longest
        if current and (len(current) >= batch_size or (max_tokens and longest * (len(current) + 1) > max_tokens)):
            batches.append(current)
            current = []
        current.append(u)
    if current:
        batches.append(current)
    return Plan(unique_index=unique_index, batches=batches)


@dataclass(frozen=True)
class Prepared:
    """Inputs de-duplicated, tokenized once and planned: what ``run_batched`` executes (and the bench counts)."""

    features: dict[str, list[list[int]]]  # per unique text: input_ids (+ token_type_ids, ...), unpadded
    pad_values: dict[str, int]
    padding_side: str
    plan: Plan  # over the unique texts: plan.unique_index maps unique text -> planned row
    text_index: list[int]  # caller position -> unique text
    source: list[int]  # planned row -> the unique text whose tokens it runs

    def shapes(self) -> list[tuple[int, int]]:
        """(rows, padded length) of every forward pass, in execution order."""
        ids = self.features["input_ids"]
        return [(len(b), max(len(ids[self.source[u]]) for u in b)) for b in self.plan.batches]

    def useful_tokens(self) -> list[int]:
        """Real (non-padding) tokens of every forward pass, in execution order."""
        ids = self.features["input_ids"]
        return [sum(len(ids[self.source[u]]) for u in b) for b in self.plan.batches]

    def padded(self, batch: list[int]) -> dict[str, torch.Tensor]:
        """The (B, T) tensors of one batch: every tokenizer feature plus the attention mask, padded with NumPy."""
        rows = [self.features["input_ids"][self.source[u]] for u in batch]
        longest = max(len(r) for r in rows)
        left = self.padding_side == "left"
        mask = np.zeros((len(rows), longest), dtype=np.int64)
        for i, r in enumerate(rows):
            if left:
                mask[i, longest - len(r):] = 1
            else:
                mask[i, :len(r)] = 1
        out = {"attention_mask": mask}
        for name, values in self.features.items():
            arr = np.full((len(rows), longest), self.pad_values.get(name, 0), dtype=np.int64)
            for i, u in enumerate(batch):
                seq = values[self.source[u]]
                if left:
                    arr[i, longest - len(seq):] = seq
                else:
                    arr[i, :len(seq)] = seq
            out[name] = arr
        return {k: torch.from_numpy(v) for k, v in out.items()}


def prepare(tokenizer, texts: Sequence[str], text_pairs: Sequence[str] | None = None, *,
            batch_size: int = DEFAULT_BATCH_SIZE, max_length: int | None = None,
            max_tokens: int | None = DEFAULT_MAX_TOKENS) -> Prepared:
    """De-duplicate, tokenize once (fast tokenizer, no padding) and plan length-sorted batches."""
    if text_pairs is not None and len(text_pairs) != len(texts):
        raise ValueError(f"got {len(texts)} texts but {len(text_pairs)} text pairs")
    if len(texts) == 0:
        raise ValueError("no input texts")
    max_length = max_length or min(getattr(tokenizer, "model_max_length", 512) or 512, 512)
    keys = list(texts) if text_pairs is None else list(zip(texts, text_pairs))
    first: dict = {}
    text_index = [first.setdefault(k, len(first)) for k in keys]  # exact-duplicate inputs are tokenized once
    uniq = list(first)
    firsts = uniq if text_pairs is None else [k[0] for k in uniq]
    seconds = None if text_pairs is None else [k[1] for k in uniq]
    enc = tokenizer(firsts, seconds, truncation=True, max_length=max_length, padding=False,
                    return_attention_mask=False)
    features = {k: v for k, v in enc.items() if k != "attention_mask"}
    ids = features["input_ids"]
    if "token_type_ids" in features and text_pairs is not None:
        tok_keys = [(tuple(x), tuple(t)) for x, t in zip(ids, features["token_type_ids"])]
    else:
        tok_keys = [tuple(x) for x in ids]
    plan = plan_batches([len(x) for x in ids], tok_keys, batch_size=batch_size, max_tokens=max_tokens)
    pad_values = {"input_ids": tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0,
                  "token_type_ids": getattr(tokenizer, "pad_token_type_id", 0) or 0}
    source = [-1] * (max(plan.unique_index) + 1)
    for t, u in enumerate(plan.unique_index):
        if source[u] < 0:
            source[u] = t
    return Prepared(features=features, pad_values=pad_values, padding_side=getattr(tokenizer, "padding_side", "right"),
                    plan=plan, text_index=text_index, source=source)


def run_batched(
    model,
    tokenizer,
    texts: Sequence[str],
    text_pairs: Sequence[str] | None = None,
    *,
    head: Callable[[object, dict], torch.Tensor],
    batch_size: int = DEFAULT_BATCH_SIZE,
    max_length: int | None = None,
    precision: str = "fp32",
    progress: bool = False,
    desc: str = "batches",
    max_tokens: int | None = DEFAULT_MAX_TOKENS,
) -> torch.Tensor:
    """Run ``head(model, batch) -> (B, ...)`` over all inputs; returns a float32 tensor in input order.

    ``batch`` is a dict of (B, T) tensors on the model's device: the tokenizer's features
    (``input_ids``, ``token_type_ids`` when it makes them) and ``attention_mask``.
    """
    device = str(next(model.parameters()).device)
    resolve_precision(precision, device)  # validate before any tokenization
    prep = prepare(tokenizer, texts, text_pairs, batch_size=batch_size, max_length=max_length, max_tokens=max_tokens)
    batches = prep.plan.batches
    if progress:
        from tqdm.auto import tqdm

        batches = tqdm(batches, desc=desc, unit="batch")
    results: list[torch.Tensor] = []
    runner, dtype = runner_for(model, precision, device)
    with torch.inference_mode(), autocast(device, dtype):
        for batch in batches:
            tensors = {k: v.to(device) for k, v in prep.padded(batch).items()}
            results.append(head(runner, tensors).float().cpu())
    out = torch.cat(results) if len(results) > 1 else results[0]  # (U, ...) in execution order
    executed = np.concatenate([np.asarray(b, dtype=np.int64) for b in prep.plan.batches])
    row_of = np.empty(len(executed), dtype=np.int64)
    row_of[executed] = np.arange(len(executed))  # planned unique input -> row of ``out``
    gather = row_of[np.asarray(prep.plan.unique_index, dtype=np.int64)[np.asarray(prep.text_index, dtype=np.int64)]]
    return out.index_select(0, torch.from_numpy(gather))


def _embed_head(pooling: str, normalize: bool):
    def head(model, batch):
        hidden = model(**batch).last_hidden_state  # (B, T, H)
        emb = pool(hidden.float(), batch["attention_mask"], pooling)
        return torch.nn.functional.normalize(emb, dim=-1) if normalize else emb

    return head


def encode(model, tokenizer, texts: Sequence[str], *, pooling: str = "mean", normalize: bool = True,
           batch_size: int = DEFAULT_BATCH_SIZE, max_length: int | None = None, precision: str = "fp32",
           progress: bool = False, max_tokens: int | None = DEFAULT_MAX_TOKENS) -> torch.Tensor:
    """Sentence embeddings (N, H), float32, in input order (Sentence-BERT pooling, §3)."""
    return run_batched(model, tokenizer, texts, head=_embed_head(pooling, normalize), batch_size=batch_size,
                       max_length=max_length, precision=precision, progress=progress, desc="encode",
                       max_tokens=max_tokens)


def _cls_only_applies(model) -> bool:
    """BERT sequence classifiers in eval mode: the logits read only [CLS]'s final state (through the pooler)."""
    return (type(model).__name__ == "BertForSequenceClassification" and not model.training
            and getattr(model.bert, "pooler", None) is not None and not model.config.is_decoder)


def bert_cls_logits(model, batch) -> torch.Tensor:
    """Logits of a ``BertForSequenceClassification`` with its last layer computed at [CLS] only.

    The classifier reads ``pooler(h_L[:, 0])`` (Devlin et al. 2019, §3 / §4.1), and in the last layer a position's
    output depends on its own query, every key and value, and its own feed-forward pass. So the last layer needs
    keys and values for all T tokens but the query projection, attention output, both feed-forward matmuls and
    LayerNorms for one token: per sequence it costs 2·T·H² + O(H²) multiply-adds instead of 12·T·H² (1/6 of
    the encoder's matmul work for a 6-layer model, minus the K/V share). Same modules, same arithmetic for the
    [CLS] row, so the logits equal the full forward pass up to float rounding (tests check 1e-5).
    """
    require("transformers")  # the internals below, checked once (bertvariants/internals.py)
    from transformers.masking_utils import create_bidirectional_mask
    from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS
    from transformers.models.bert.modeling_bert import eager_attention_forward

    bert = model.bert
    h = bert.embeddings(input_ids=batch["input_ids"], token_type_ids=batch.get("token_type_ids"))  # (B, T, H)
    mask = batch.get("attention_mask")
    ext = None
    if mask is not None and not bool(mask.all()):
        ext = create_bidirectional_mask(config=bert.config, inputs_embeds=h, attention_mask=mask)
    *body, last = bert.encoder.layer
    for layer in body:
        h = layer(h, ext)
    att = last.attention.self
    heads = (h.shape[0], -1, att.num_attention_heads, att.attention_head_size)
    q = att.query(h[:, :1]).view(heads).transpose(1, 2)  # (B, heads, 1, d): the [CLS] query only
    k = att.key(h).view(heads).transpose(1, 2)  # (B, heads, T, d)
    v = att.value(h).view(heads).transpose(1, 2)
    if ext is not None and ext.dim() == 4 and ext.shape[2] > 1:
        ext = ext[:, :, :1]  # the [CLS] query's row of the (B, 1, T, T) mask
    attend = ALL_ATTENTION_FUNCTIONS.get_interface(bert.config._attn_implementation, eager_attention_forward)
    ctx, _ = attend(att, q, k, v, ext, dropout=0.0, scaling=att.scaling)
    a = last.attention.output(ctx.reshape(h.shape[0], 1, -1), h[:, :1])  # dense + residual + LayerNorm, (B, 1, H)
    return model.classifier(model.dropout(bert.pooler(last.feed_forward_chunk(a))))  # (B, C)


def _logits_head(model, batch):
    if _cls_only_applies(model):
        return bert_cls_logits(model, batch)
    return model(**batch).logits


def classify(model, tokenizer, texts: Sequence[str], text_pairs: Sequence[str] | None = None, *,
             batch_size: int = DEFAULT_BATCH_SIZE, max_length: int | None = None, precision: str = "fp32",
             progress: bool = False, max_tokens: int | None = DEFAULT_MAX_TOKENS) -> torch.Tensor:
    """Logits (N, C) of a sequence classifier, float32, in input order."""
    return run_batched(model, tokenizer, texts, text_pairs, head=_logits_head, batch_size=batch_size,
                       max_length=max_length, precision=precision, progress=progress, desc="classify",
                       max_tokens=max_tokens)


@dataclass(frozen=True)
class MaskPrediction:
    """Top-k fillers of one mask position of one text."""

    position: int  # token index of the mask in the tokenized text
    tokens: list[str]
    token_ids: list[int]
    probabilities: list[float]


def _fill_mask_head(mask_token_id: int, top_k: int, max_masks: int):
    def head(model, batch):
        logits = model(**batch).logits.float()  # (B, T, V)
        b, t, _ = logits.shape
        out = torch.full((b, max_masks, top_k, 3), -1.0, device=logits.device)  # (pos, id, prob) per candidate
        for row in range(b):
            positions = (batch["input_ids"][row] == mask_token_id).nonzero().flatten()[:max_masks]
            for slot, pos in enumerate(positions.tolist()):
                probs = logits[row, pos].softmax(-1)
                p, ids = probs.topk(top_k)
                out[row, slot, :, 0] = pos
                out[row, slot, :, 1] = ids.float()  # exact: vocabularies are far below 2^24
                out[row, slot, :, 2] = p
        return out

    return head


def fill_mask(model, tokenizer, texts: Sequence[str], *, top_k: int = 5, max_masks: int = 5, batch_size: int = 32,
              max_length: int | None = None, precision: str = "fp32") -> list[list[MaskPrediction]]:
    """Top-k predictions (softmax over the vocabulary) at every mask token of each text, batched."""
    if tokenizer.mask_token_id is None:
        raise ValueError("this tokenizer has no mask token")
    if top_k < 1:
        raise ValueError(f"top_k must be ≥ 1, got {top_k}")
    raw = run_batched(model, tokenizer, texts, head=_fill_mask_head(tokenizer.mask_token_id, top_k, max_masks),
                      batch_size=batch_size, max_length=max_length, precision=precision, desc="fill-mask")
    results = []
    for per_text in raw:  # (max_masks, top_k, 3)
        preds = []
        for slot in per_text:
            if slot[0, 0] < 0:
                break
            ids = slot[:, 1].long().tolist()
            preds.append(MaskPrediction(int(slot[0, 0]), tokenizer.convert_ids_to_tokens(ids), ids,
                                        slot[:, 2].tolist()))
        results.append(preds)
    return results
