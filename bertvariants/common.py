"""Helpers shared by the variants: pooling, seeded generators, BERT masking, whole-word grouping.

Variants import from here, never from each other.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import torch

from .checks import MASK_SPELLINGS, probability
from .checks import text as checked_text

POOLING_MODES = ("mean", "cls", "max")


def pool(hidden: torch.Tensor, attention_mask: torch.Tensor, mode: str = "mean") -> torch.Tensor:
    """Pool token states (B, T, H) into sentence vectors (B, H), ignoring padding.

    Sentence-BERT §3 (Reimers & Gurevych 2019): MEAN of all output vectors (their default), the
    output of the CLS token, or MAX-over-time of the output vectors.
    """
    if mode not in POOLING_MODES:
        raise ValueError(f"pooling must be one of {', '.join(POOLING_MODES)}, got {mode!r}")
    if mode == "cls":
        return hidden[:, 0]
    mask = attention_mask.unsqueeze(-1).to(hidden.dtype)  # (B, T, 1)
    if mode == "mean":
        return (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
    # max: padded positions must never win, so push them to the dtype's minimum
    return hidden.masked_fill(mask == 0, torch.finfo(hidden.dtype).min).max(1).values


def make_generator(seed: int | None, device: str | torch.device = "cpu") -> torch.Generator:
    """An explicit torch.Generator (all randomness in the library is drawn from one of these)."""
    gen = torch.Generator(device=device)
    if seed is None:
        gen.seed()
    else:
        gen.manual_seed(int(seed))
    return gen


# --------------------------------------------------------------------------------------------
# BERT masking (Devlin et al. 2019, §3.1 "Task #1: Masked LM" and Appendix A.1)
# --------------------------------------------------------------------------------------------
# How a selected position is corrupted. BERT: 80% [MASK], 10% a random token, 10% unchanged.
REPLACE_MASK, REPLACE_RANDOM, REPLACE_KEEP = 0, 1, 2
IGNORE_INDEX = -100  # label of positions that are not predicted (ignored by F.cross_entropy)


@dataclass(frozen=True)
class MaskedBatch:
    """The result of masking: corrupted ids, MLM labels, and which corruption each position got.

    ``labels`` holds the original id where a position was selected and ``IGNORE_INDEX`` (-100)
    elsewhere. ``selected = masked | randomized | kept`` (the three are disjoint).
    """

    input_ids: torch.Tensor  # (B, T) long, corrupted
    labels: torch.Tensor  # (B, T) long, original id or -100
    selected: torch.Tensor  # (B, T) bool: positions the model must predict
    masked: torch.Tensor  # (B, T) bool: replaced by the mask token
    randomized: torch.Tensor  # (B, T) bool: replaced by a uniformly random token
    kept: torch.Tensor  # (B, T) bool: selected but left unchanged


def special_tokens_mask(ids: torch.Tensor, special_ids) -> torch.Tensor:
    """Bool mask (same shape as ``ids``) of positions holding any of ``special_ids`` ([CLS], [SEP], [PAD], ...)."""
    special = torch.as_tensor(sorted({int(i) for i in special_ids}), dtype=ids.dtype, device=ids.device)
    return torch.isin(ids, special)


def draw_replacement_kinds(shape, *, generator: torch.Generator, mask_ratio: float = 0.8,
                           random_ratio: float = 0.1, device: str | torch.device = "cpu") -> torch.Tensor:
    """For each position, which corruption it gets if selected: REPLACE_MASK / REPLACE_RANDOM / REPLACE_KEEP.

    BERT Appendix A.1: 80% [MASK], 10% random, 10% unchanged. SpanBERT §3.1 draws one kind per *span*:
    draw ``shape=(num_spans,)`` and broadcast it over each span's positions.
    """
    probability(mask_ratio, "mask_ratio")
    probability(random_ratio, "random_ratio")
    if mask_ratio + random_ratio > 1.0 + 1e-9:
        raise ValueError(f"mask_ratio + random_ratio must be ≤ 1, got {mask_ratio} + {random_ratio}")
    u = torch.rand(shape, generator=generator, device=device)
    kinds = torch.full(u.shape, REPLACE_KEEP, dtype=torch.long, device=device)
    kinds[u < mask_ratio + random_ratio] = REPLACE_RANDOM
    kinds[u < mask_ratio] = REPLACE_MASK
    return kinds


def apply_replacements(ids: torch.Tensor, selected: torch.Tensor, kinds: torch.Tensor, *, mask_token_id: int,
                       vocab_size: int, generator: torch.Generator) -> MaskedBatch:
    """Corrupt the ``selected`` positions of ``ids`` as ``kinds`` says; random tokens are uniform over the vocab."""
    if ids.shape != selected.shape or ids.shape != kinds.shape:
        raise ValueError(f"ids {tuple(ids.shape)}, selected {tuple(selected.shape)} and kinds {tuple(kinds.shape)} "
                         "must have the same shape")
    if vocab_size < 1:
        raise ValueError(f"vocab_size must be ≥ 1, got {vocab_size}")
    selected = selected.bool()
    masked = selected & (kinds == REPLACE_MASK)
    randomized = selected & (kinds == REPLACE_RANDOM)
    kept = selected & (kinds == REPLACE_KEEP)
    # draw a random token for every position (fixed number of draws: the stream does not depend on the selection)
    random_tokens = torch.randint(vocab_size, ids.shape, generator=generator, device=ids.device, dtype=ids.dtype)
    out = ids.clone()
    out[masked] = mask_token_id
    out[randomized] = random_tokens[randomized]
    labels = torch.where(selected, ids, torch.full_like(ids, IGNORE_INDEX))
    return MaskedBatch(input_ids=out, labels=labels, selected=selected, masked=masked, randomized=randomized, kept=kept)


def mask_tokens(ids: torch.Tensor, *, mask_token_id: int, vocab_size: int, generator: torch.Generator,
                special_ids=(), special_mask: torch.Tensor | None = None, mlm_probability: float = 0.15,
                mask_ratio: float = 0.8, random_ratio: float = 0.1) -> MaskedBatch:
    """BERT's masked-LM corruption (Devlin et al. 2019, §3.1 and Appendix A.1) as a pure function.

    Each non-special token is selected independently with probability ``mlm_probability`` (15%);
    a selected token becomes the mask token 80% of the time, a uniformly random token 10%, and stays
    unchanged 10%. Special tokens (``special_ids`` and/or ``special_mask``, e.g. [CLS] [SEP] [PAD])
    are never selected. All randomness comes from ``generator``, so a seed fixes the result.

    Args:
        ids: (B, T) or (T,) token ids.
        mask_token_id: id of [MASK] / <mask>.
        vocab_size: random replacements are drawn uniformly from ``range(vocab_size)``.
        generator: explicit torch.Generator (see :func:`make_generator`).
        special_ids: ids never to select; combined (OR) with ``special_mask``.
        special_mask: bool tensor like ``ids``; True = never select.

    Example:
        >>> g = make_generator(0)
        >>> out = mask_tokens(torch.tensor([[101, 7, 8, 9, 102]]), mask_token_id=103, vocab_size=200,
        ...                   special_ids=(101, 102), generator=g)
        >>> bool(out.selected[0, 0]) or bool(out.selected[0, -1])
        False
    """
    probability(mlm_probability, "mlm_probability")
    ids = torch.as_tensor(ids, dtype=torch.long)
    never = torch.zeros_like(ids, dtype=torch.bool)
    if special_mask is not None:
        if special_mask.shape != ids.shape:
            raise ValueError(f"special_mask shape {tuple(special_mask.shape)} != ids shape {tuple(ids.shape)}")
        never |= special_mask.bool().to(ids.device)
    if len(tuple(special_ids)):
        never |= special_tokens_mask(ids, special_ids)
    selected = (torch.rand(ids.shape, generator=generator, device=ids.device) < mlm_probability) & ~never
    kinds = draw_replacement_kinds(ids.shape, generator=generator, mask_ratio=mask_ratio, random_ratio=random_ratio,
                                   device=ids.device)
    return apply_replacements(ids, selected, kinds, mask_token_id=mask_token_id, vocab_size=vocab_size,
                              generator=generator)


def tokenizer_masking_kwargs(tokenizer) -> dict:
    """``mask_token_id``, ``vocab_size`` and ``special_ids`` of a Hugging Face tokenizer, for :func:`mask_tokens`."""
    if tokenizer.mask_token_id is None:
        raise ValueError(f"tokenizer {type(tokenizer).__name__} has no mask token")
    return dict(mask_token_id=int(tokenizer.mask_token_id), vocab_size=len(tokenizer),
                special_ids=tuple(int(i) for i in tokenizer.all_special_ids))


WORDPIECE_SPECIALS = ("[CLS]", "[SEP]", "[PAD]", "[MASK]", "<s>", "</s>", "<pad>", "<mask>")


def word_ids_from_tokens(tokens, *, special_tokens=WORDPIECE_SPECIALS) -> list[int | None]:
    """Word index of each WordPiece token ('##' continues a word); special tokens ([CLS] ...) get None.

    A fallback for slow tokenizers; fast tokenizers give the same through ``encoding.word_ids()``.
    """
    specials = set(special_tokens)
    out: list[int | None] = []
    word = -1
    for tok in tokens:
        if tok in specials:
            out.append(None)
            continue
        if not tok.startswith("##") or word < 0:
            word += 1
        out.append(word)
    return out


def wordpiece_piece(token: str, *, space: bool = True) -> str:
    """A WordPiece token as display text that concatenates into the sentence: a '##' continuation joins its word
    (the '##' dropped), any other token starts a new word (a leading space unless ``space`` is False).

    >>> "".join(wordpiece_piece(t, space=i > 0) for i, t in enumerate(["the", "chef", "##s", "cooked"]))
    'the chefs cooked'
    """
    if token.startswith("##"):
        return token[2:]
    return " " + token if space else token


def word_spans(word_ids) -> list[tuple[int, int]]:
    """Group token positions into whole words: ``[(start, end_exclusive), ...]`` in order, skipping None (specials)."""
    spans: list[tuple[int, int]] = []
    prev = None
    for pos, w in enumerate(word_ids):
        if w is None:
            prev = None
            continue
        if w == prev and spans:
            spans[-1] = (spans[-1][0], pos + 1)
        else:
            spans.append((pos, pos + 1))
        prev = w
    return spans


# --------------------------------------------------------------------------------------------
# Fill-mask input: accept [MASK] or <mask>, whatever the model's own mask token is (ALBERT, RoBERTa, ELECTRA)
# --------------------------------------------------------------------------------------------
def normalize_mask_text(text: str, tokenizer, *, max_masks: int = 5) -> str:
    """Rewrite ``[MASK]`` / ``<mask>`` as the tokenizer's own mask token; ValueError if none is present."""
    text = checked_text(text, "the text", hint="write a sentence containing [MASK] (or <mask>)")
    text = text.strip()
    mask = tokenizer.mask_token
    if mask is None:
        raise ValueError(f"this model's tokenizer ({type(tokenizer).__name__}) has no mask token: it cannot fill masks")
    pattern = "|".join(re.escape(m) for m in sorted(set(MASK_SPELLINGS) | {mask}, key=len, reverse=True))
    n = len(re.findall(pattern, text))
    if n == 0:
        raise ValueError("no mask token in the text: put [MASK] (or <mask>) where a word should be predicted")
    if n > max_masks:
        raise ValueError(f"{n} mask tokens; at most {max_masks} per sentence")
    return re.sub(pattern, mask, text)


def model_token_limit(model, tokenizer, *, cap: int = 512) -> int:
    """The most tokens one input may have: the tokenizer's limit, the model's position table and ``cap``."""
    limits = [cap, getattr(tokenizer, "model_max_length", cap) or cap]
    positions = getattr(getattr(model, "config", None), "max_position_embeddings", None)
    if positions:
        limits.append(int(positions) - (2 if getattr(model.config, "model_type", "") == "roberta" else 0))
    return min(limits)


def sparse_mlm_loss(hidden: torch.Tensor, labels: torch.Tensor, head) -> torch.Tensor:
    """Cross-entropy of ``head`` applied only at predicted positions (labels ≠ -100); BERT §3.1's loss.

    Projecting only the ~15% selected positions onto the 30k vocabulary instead of all T positions
    is the same loss for a fraction of the compute. hidden (B, T, H), labels (B, T) -> ().
    """
    sel = labels != IGNORE_INDEX
    if not bool(sel.any()):
        return hidden.sum() * 0.0  # no prediction in this batch: a zero that keeps the graph
    logits = head(hidden[sel])  # (M, V)
    return torch.nn.functional.cross_entropy(logits.float(), labels[sel])
