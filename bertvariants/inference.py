"""One batched inference path for every tab and for ``evaluation``.

Texts are tokenized once with the fast tokenizer, de-duplicated, sorted by length and cut into
batches padded only to their own longest member (dynamic padding), run under
``torch.inference_mode`` (SDPA attention is transformers' default), then scattered back into the
caller's order. Precision: fp32 (CPU default), bf16 autocast on CPUs with native bf16
(AVX-512 BF16 / AMX) or on CUDA, fp16 on CUDA.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Callable, Sequence

import torch

from .common import pool

PRECISIONS = ("fp32", "bf16", "fp16", "auto")


@lru_cache(maxsize=1)
def cpu_has_native_bf16() -> bool:
    """True when the CPU multiplies bf16 natively (AVX-512 BF16 or AMX), so autocast is a speed-up."""
    try:
        flags = open("/proc/cpuinfo", encoding="utf-8").read()
    except OSError:
        return False
    return any(f in flags for f in ("avx512_bf16", "amx_bf16"))


def resolve_precision(precision: str, device: str) -> torch.dtype | None:
    """Map a precision option to the autocast dtype (None = plain fp32)."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if precision == "auto":
        if device.startswith("cuda"):
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return None  # fp32 is the CPU default: exact results; ask for bf16 explicitly
    if precision == "fp16" and not device.startswith("cuda"):
        raise ValueError("fp16 is only supported on CUDA; use bf16 on CPU")
    return {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]


def _autocast(device: str, dtype: torch.dtype | None):
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

    ``max_tokens`` caps batch_size × longest length, so a batch of long inputs gets fewer rows.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be ≥ 1, got {batch_size}")
    first: dict = {}
    unique_index = [first.setdefault(k, len(first)) for k in keys]
    uniq_len = [0] * len(first)
    for pos, u in enumerate(unique_index):
        uniq_len[u] = lengths[pos]
    order = sorted(range(len(first)), key=lambda u: -uniq_len[u])
    batches: list[list[int]] = []
    current: list[int] = []
    for u in order:
        longest = uniq_len[current[0]] if current else uniq_len[u]
        if current and (len(current) >= batch_size or (max_tokens and longest * (len(current) + 1) > max_tokens)):
            batches.append(current)
            current = []
        current.append(u)
    if current:
        batches.append(current)
    return Plan(unique_index=unique_index, batches=batches)


def run_batched(
    model,
    tokenizer,
    texts: Sequence[str],
    text_pairs: Sequence[str] | None = None,
    *,
    head: Callable[[object, dict], torch.Tensor],
    batch_size: int = 64,
    max_length: int | None = None,
    precision: str = "fp32",
    progress: bool = False,
    desc: str = "batches",
) -> torch.Tensor:
    """Run ``head(model, batch) -> (B, ...)`` over all inputs; returns a float32 tensor in input order."""
    if text_pairs is not None and len(text_pairs) != len(texts):
        raise ValueError(f"got {len(texts)} texts but {len(text_pairs)} text pairs")
    if len(texts) == 0:
        raise ValueError("no input texts")
    device = str(next(model.parameters()).device)
    dtype = resolve_precision(precision, device)
    max_length = max_length or min(getattr(tokenizer, "model_max_length", 512) or 512, 512)
    enc = tokenizer(list(texts), list(text_pairs) if text_pairs is not None else None, truncation=True,
                    max_length=max_length, padding=False)
    ids = enc["input_ids"]
    keys = [tuple(x) for x in ids] if text_pairs is None else [
        (tuple(x), tuple(t)) for x, t in zip(ids, enc.get("token_type_ids", ids))]
    plan = plan_batches([len(x) for x in ids], keys, batch_size=batch_size)
    first_pos: dict[int, int] = {}
    for pos, u in enumerate(plan.unique_index):
        first_pos.setdefault(u, pos)
    out: list[torch.Tensor | None] = [None] * len(first_pos)
    batches = plan.batches
    if progress:
        from tqdm.auto import tqdm

        batches = tqdm(batches, desc=desc, unit="batch")
    with torch.inference_mode(), _autocast(device, dtype):
        for batch in batches:
            feats = [{k: enc[k][first_pos[u]] for k in enc.keys()} for u in batch]
            padded = tokenizer.pad(feats, padding="longest", return_tensors="pt")
            padded = {k: v.to(device) for k, v in padded.items()}
            result = head(model, padded).float().cpu()
            for row, u in enumerate(batch):
                out[u] = result[row]
    stacked = torch.stack(out)  # (U, ...)
    return stacked[torch.tensor(plan.unique_index)]


def _embed_head(pooling: str, normalize: bool):
    def head(model, batch):
        hidden = model(**batch).last_hidden_state  # (B, T, H)
        emb = pool(hidden.float(), batch["attention_mask"], pooling)
        return torch.nn.functional.normalize(emb, dim=-1) if normalize else emb

    return head


def encode(model, tokenizer, texts: Sequence[str], *, pooling: str = "mean", normalize: bool = True,
           batch_size: int = 64, max_length: int | None = None, precision: str = "fp32",
           progress: bool = False) -> torch.Tensor:
    """Sentence embeddings (N, H), float32, in input order (Sentence-BERT pooling, §3)."""
    return run_batched(model, tokenizer, texts, head=_embed_head(pooling, normalize), batch_size=batch_size,
                       max_length=max_length, precision=precision, progress=progress, desc="encode")


def classify(model, tokenizer, texts: Sequence[str], text_pairs: Sequence[str] | None = None, *,
             batch_size: int = 64, max_length: int | None = None, precision: str = "fp32",
             progress: bool = False) -> torch.Tensor:
    """Logits (N, C) of a sequence classifier, float32, in input order."""
    return run_batched(model, tokenizer, texts, text_pairs, head=lambda m, b: m(**b).logits, batch_size=batch_size,
                       max_length=max_length, precision=precision, progress=progress, desc="classify")


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
