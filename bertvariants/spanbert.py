"""SpanBERT (Joshi et al. 2020): span masking, the span-boundary objective, and the MLM + SBO model.

§3.1 "Span Masking": repeatedly sample a span length ℓ ~ Geo(p=0.2) clipped at ℓ_max = 10 (the
distribution is truncated and renormalised over 1..10, giving the paper's mean ℓ̄ ≈ 3.8), measured
in *complete words*; pick a random start word; mask whole words until 15% of the tokens are masked.
The 80/10/10 replacement is decided per span, not per token.
§3.2 "Span Boundary Objective": each token x_i of a span (s, e) is predicted from the boundary
states x_{s-1}, x_{e+1} and a relative position embedding p_{i-s+1}:
    h0 = [x_{s-1}; x_{e+1}; p_{i-s+1}],  h1 = LayerNorm(GeLU(W1 h0)),  y_i = LayerNorm(GeLU(W2 h1)),
then y_i is scored against the vocabulary; the SBO loss is added to the MLM loss.
Task (§4.1, SQuAD 2.0): extractive QA decoding lives in :mod:`bertvariants.qa`.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Sequence

import plotly.graph_objects as go
import torch
from torch import nn
from torch.nn import functional as F

from . import checks
from .common import (
    IGNORE_INDEX,
    REPLACE_KEEP,
    REPLACE_MASK,
    REPLACE_RANDOM,
    apply_replacements,
    draw_replacement_kinds,
    word_ids_from_tokens,
    word_spans,
    wordpiece_piece,
)
from .figures import finish
from .figures import title as make_title

GEOMETRIC_P = 0.2
MAX_SPAN = 10
MASK_BUDGET = 0.15


@dataclass(frozen=True)
class SpanMaskingConfig:
    """§3.1 defaults."""

    p: float = GEOMETRIC_P
    max_span: int = MAX_SPAN
    budget: float = MASK_BUDGET
    mask_ratio: float = 0.8
    random_ratio: float = 0.1


def span_length_pmf(*, p: float = GEOMETRIC_P, max_span: int = MAX_SPAN) -> torch.Tensor:
    """P(ℓ = 1..max_span): Geo(p) truncated at ``max_span`` and renormalised (§3.1)."""
    if not 0 < p <= 1:
        raise ValueError(f"p must be in (0, 1], got {p}")
    if max_span < 1:
        raise ValueError(f"max_span must be ≥ 1, got {max_span}")
    lengths = torch.arange(1, max_span + 1, dtype=torch.float64)
    w = p * (1 - p) ** (lengths - 1)
    return w / w.sum()


def mean_span_length(*, p: float = GEOMETRIC_P, max_span: int = MAX_SPAN) -> float:
    """Analytic mean of the clipped law: 3.797 for p=0.2, ℓ_max=10 (the paper's 3.8)."""
    pmf = span_length_pmf(p=p, max_span=max_span)
    return float((pmf * torch.arange(1, max_span + 1, dtype=torch.float64)).sum())


def sample_span_lengths(n: int, *, generator: torch.Generator, p: float = GEOMETRIC_P,
                        max_span: int = MAX_SPAN) -> torch.Tensor:
    """``n`` span lengths (in words) drawn from :func:`span_length_pmf`."""
    pmf = span_length_pmf(p=p, max_span=max_span).float()
    return torch.multinomial(pmf, n, replacement=True, generator=generator) + 1


@dataclass(frozen=True)
class SpanMasking:
    """One sequence after span masking. Spans are token ranges ``(start, end_exclusive)`` sorted by start."""

    input_ids: torch.Tensor  # (T,)
    labels: torch.Tensor  # (T,) original id inside spans, -100 elsewhere
    selected: torch.Tensor  # (T,) bool
    spans: list[tuple[int, int]]
    span_words: list[int]  # length of each span in words
    span_kinds: list[int]  # REPLACE_MASK / REPLACE_RANDOM / REPLACE_KEEP per span


def choose_spans(words: Sequence[tuple[int, int]], *, generator: torch.Generator,
                 config: SpanMaskingConfig = SpanMaskingConfig(), max_tries: int = 200) -> list[tuple[int, int]]:
    """Pick spans of whole words (as ``(first_word, last_word_exclusive)``) until the token budget is met.

    ``words`` are token ranges of the words (specials excluded). A span must not overlap or touch an
    earlier one (its boundary tokens must stay visible for the SBO); when a start does not fit, a new
    start is drawn for the *same* length, so the length law is not biased toward short spans.
    """
    n_tokens = sum(e - s for s, e in words)
    target = round(config.budget * n_tokens)
    taken = [False] * len(words)
    chosen: list[tuple[int, int]] = []
    masked = 0
    while masked < target:
        length = int(sample_span_lengths(1, generator=generator, p=config.p, max_span=config.max_span))
        placed = False
        for _ in range(max_tries):
            start = int(torch.randint(len(words), (1,), generator=generator))
            end = min(start + length, len(words))  # clipped at the end of the sequence
            lo, hi = max(start - 1, 0), min(end + 1, len(words))
            if any(taken[lo:hi]):
                continue
            # whole words, stopping once the budget is reached (the last span may come out shorter)
            stop = start
            while stop < end and masked < target:
                masked += words[stop][1] - words[stop][0]
                stop += 1
            for w in range(start, stop):
                taken[w] = True
            chosen.append((start, stop))
            placed = True
            break
        if not placed:  # the sequence is too crowded for this length: stop rather than loop forever
            break
    return sorted(chosen)


def span_mask(ids: torch.Tensor, word_ids: Sequence[int | None], *, mask_token_id: int, vocab_size: int,
              generator: torch.Generator, config: SpanMaskingConfig = SpanMaskingConfig()) -> SpanMasking:
    """Span masking of one sequence (§3.1). ``word_ids`` gives each token's word (None = special, never masked).

    Example:
        >>> from bertvariants.common import make_generator
        >>> out = span_mask(torch.arange(10, 50), [None] + list(range(38)) + [None], mask_token_id=3,
        ...                 vocab_size=99, generator=make_generator(0))
        >>> int(out.selected.sum())  # round(0.15 * 38) = 6 tokens
        6
    """
    ids = torch.as_tensor(ids, dtype=torch.long)
    if ids.dim() != 1 or len(word_ids) != ids.shape[0]:
        raise ValueError(f"ids must be 1-D with one word id per token; got ids {tuple(ids.shape)}, "
                         f"{len(word_ids)} word ids")
    words = word_spans(word_ids)
    if not words:
        raise ValueError("no maskable words in the sequence")
    chosen = choose_spans(words, generator=generator, config=config)
    spans = [(words[a][0], words[b - 1][1]) for a, b in chosen]
    span_kinds = draw_replacement_kinds((len(spans),), generator=generator, mask_ratio=config.mask_ratio,
                                        random_ratio=config.random_ratio)
    selected = torch.zeros_like(ids, dtype=torch.bool)
    kinds = torch.full_like(ids, REPLACE_KEEP)
    for (s, e), k in zip(spans, span_kinds.tolist()):
        selected[s:e] = True
        kinds[s:e] = k  # §3.1: one decision per span
    out = apply_replacements(ids, selected, kinds, mask_token_id=mask_token_id, vocab_size=vocab_size,
                             generator=generator)
    return SpanMasking(input_ids=out.input_ids, labels=out.labels, selected=selected, spans=spans,
                       span_words=[b - a for a, b in chosen], span_kinds=span_kinds.tolist())


@dataclass(frozen=True)
class SpanMaskedBatch:
    """A batch after span masking, ready for MLM + SBO (:func:`sbo_targets` takes ``spans`` and ``labels``)."""

    input_ids: torch.Tensor  # (B, T)
    labels: torch.Tensor  # (B, T)
    selected: torch.Tensor  # (B, T) bool
    spans: list[list[tuple[int, int]]]  # per row, token ranges (start, end_exclusive)


def span_mask_batch(ids: torch.Tensor, word_ids: Sequence[Sequence[int | None]], *, mask_token_id: int,
                    vocab_size: int, generator: torch.Generator,
                    config: SpanMaskingConfig = SpanMaskingConfig()) -> SpanMaskedBatch:
    """:func:`span_mask` row by row over a padded batch (padding must have word id None)."""
    if ids.dim() != 2 or len(word_ids) != ids.shape[0]:
        raise ValueError(f"ids must be (B, T) with one word-id list per row; got {tuple(ids.shape)} and "
                         f"{len(word_ids)} lists")
    rows = [span_mask(ids[b], word_ids[b], mask_token_id=mask_token_id, vocab_size=vocab_size, generator=generator,
                      config=config) for b in range(ids.shape[0])]
    return SpanMaskedBatch(input_ids=torch.stack([r.input_ids for r in rows]),
                           labels=torch.stack([r.labels for r in rows]),
                           selected=torch.stack([r.selected for r in rows]), spans=[r.spans for r in rows])


def span_mask_text(text: str, tokenizer, *, generator: torch.Generator,
                   config: SpanMaskingConfig = SpanMaskingConfig(), max_tokens: int = 512) -> SpanMasking:
    """Tokenize ``text`` (fast tokenizer: ``word_ids``) and span-mask it."""
    text = checks.text(text, "the text").strip()
    enc = tokenizer(text, truncation=False)
    checks.token_count(len(enc["input_ids"]), "the text", limit=max_tokens)
    return span_mask(torch.tensor(enc["input_ids"]), enc.word_ids(), mask_token_id=tokenizer.mask_token_id,
                     vocab_size=len(tokenizer), generator=generator, config=config)


# --------------------------------------------------------------------------------------------
# Span boundary objective (§3.2)
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SboTargets:
    """One row per masked token: where its span's boundaries are and what it must predict."""

    batch_index: torch.Tensor  # (N,)
    left: torch.Tensor  # (N,) position s-1
    right: torch.Tensor  # (N,) position e+1
    relative: torch.Tensor  # (N,) i - s (0-based offset inside the span)
    target: torch.Tensor  # (N,) original token id

    def to(self, device) -> SboTargets:
        return SboTargets(*(getattr(self, f.name).to(device) for f in fields(self)))


def sbo_targets(spans: Sequence[Sequence[tuple[int, int]]], labels: torch.Tensor, *,
                max_span_tokens: int = 32) -> SboTargets:
    """Gather the SBO's inputs for a batch: ``spans[b]`` are token ranges (start, end_exclusive) of row ``b``."""
    rows: list[tuple[int, int, int, int, int]] = []
    t = labels.shape[1]
    for b, row_spans in enumerate(spans):
        for s, e in row_spans:
            left, right = max(s - 1, 0), min(e, t - 1)  # x_{s-1} and x_{e+1} (e inclusive = end_exclusive - 1)
            for i in range(s, e):
                rows.append((b, left, right, min(i - s, max_span_tokens - 1), int(labels[b, i])))
    if not rows:
        empty = torch.zeros(0, dtype=torch.long)
        return SboTargets(empty, empty, empty, empty, empty)
    cols = torch.tensor(rows, dtype=torch.long).T
    return SboTargets(*cols)


class SpanBoundaryHead(nn.Module):
    """y_i = f(x_{s-1}, x_{e+1}, p_{i-s+1}): a 2-layer FFN with GeLU + LayerNorm, then vocabulary logits (§3.2)."""

    def __init__(self, hidden_size: int, vocab_size: int, *, max_span_tokens: int = 32,
                 decoder_weight: nn.Parameter | None = None):
        super().__init__()
        self.position = nn.Embedding(max_span_tokens, hidden_size)  # relative position p_{i-s+1}
        self.layer1 = nn.Linear(3 * hidden_size, hidden_size)
        self.norm1 = nn.LayerNorm(hidden_size)
        self.layer2 = nn.Linear(hidden_size, hidden_size)
        self.norm2 = nn.LayerNorm(hidden_size)
        self.decoder = nn.Linear(hidden_size, vocab_size)
        if decoder_weight is not None:  # SpanBERT ties the output layer to the input embeddings
            self.decoder.weight = decoder_weight

    def forward(self, hidden: torch.Tensor, targets: SboTargets) -> torch.Tensor:
        """hidden (B, T, H) → logits (N, V) for the N masked tokens of ``targets``."""
        left = hidden[targets.batch_index, targets.left]  # (N, H)
        right = hidden[targets.batch_index, targets.right]  # (N, H)
        h0 = torch.cat([left, right, self.position(targets.relative)], dim=-1)  # (N, 3H)
        h1 = self.norm1(F.gelu(self.layer1(h0)))
        y = self.norm2(F.gelu(self.layer2(h1)))
        return self.decoder(y)


def sbo_loss(logits: torch.Tensor, targets: SboTargets) -> torch.Tensor:
    """Cross-entropy of the SBO predictions; 0 (with a graph) when there is nothing to predict."""
    if targets.target.numel() == 0:
        return logits.sum() * 0.0
    return F.cross_entropy(logits.float(), targets.target)


@dataclass(frozen=True)
class SpanBertLoss:
    loss: torch.Tensor  # mlm_loss + sbo_loss (§3.2: "we sum the loss from both the span boundary and MLM objectives")
    mlm_loss: torch.Tensor
    sbo_loss: torch.Tensor


def spanbert_loss(mlm_logits: torch.Tensor, labels: torch.Tensor, sbo_logits: torch.Tensor,
                  targets: SboTargets) -> SpanBertLoss:
    """§3.2: L = L_MLM + L_SBO. ``mlm_logits`` (B, T, V) with ``labels`` (B, T), or (M, V) with the M labels of
    the masked positions (a sparse head); ``sbo_logits`` (N, V) for the N rows of ``targets``."""
    mlm = F.cross_entropy(mlm_logits.reshape(-1, mlm_logits.shape[-1]).float(), labels.reshape(-1),
                          ignore_index=IGNORE_INDEX) if (labels != IGNORE_INDEX).any() else mlm_logits.sum() * 0.0
    sbo = sbo_loss(sbo_logits, targets)
    return SpanBertLoss(loss=mlm + sbo, mlm_loss=mlm, sbo_loss=sbo)


# --------------------------------------------------------------------------------------------
# Explorer figures
# --------------------------------------------------------------------------------------------
def length_histogram_figure(lengths: Sequence[int], *, p: float = GEOMETRIC_P, max_span: int = MAX_SPAN) -> go.Figure:
    """Observed span lengths (words) against the clipped geometric law."""
    lengths = torch.as_tensor(list(lengths), dtype=torch.long)
    xs = list(range(1, max_span + 1))
    counts = torch.bincount(lengths, minlength=max_span + 1)[1: max_span + 1].double()
    observed = (counts / counts.sum().clamp(min=1)).tolist()
    fig = go.Figure()
    fig.add_trace(go.Bar(x=xs, y=observed, name=f"observed ({len(lengths)} spans, mean "
                                               f"{lengths.double().mean().item() if len(lengths) else 0:.2f})",
                         hovertemplate="length %{x}: %{y:.3f}<extra>observed</extra>"))
    fig.add_trace(go.Scatter(x=xs, y=span_length_pmf(p=p, max_span=max_span).tolist(), mode="lines+markers",
                             name=f"Geo({p:g}) clipped at {max_span} "
                                  f"(mean {mean_span_length(p=p, max_span=max_span):.2f})",
                             hovertemplate="length %{x}: %{y:.3f}<extra>geometric law</extra>"))
    return finish(fig, title=make_title("Span lengths in words", f"observed spans vs the geometric law (p = {p:g})"),
                  xaxis_title="span length (words)", yaxis_title="fraction")


def highlight_spans(tokens: Sequence[str], masking: SpanMasking) -> list[tuple[str, str | None]]:
    """(token, label) pairs for gr.HighlightedText: each masked token labelled with its span and replacement kind."""
    names = {REPLACE_MASK: "[MASK]", REPLACE_RANDOM: "random", REPLACE_KEEP: "kept"}
    label: list[str | None] = [None] * len(tokens)
    for n, ((s, e), k) in enumerate(zip(masking.spans, masking.span_kinds)):
        for i in range(s, e):
            label[i] = f"span {n + 1}: {names[k]}"
    return [(wordpiece_piece(t, space=i > 0), lab) for i, (t, lab) in enumerate(zip(tokens, label))]


# --------------------------------------------------------------------------------------------
# The pretraining model: a masked LM plus the span-boundary head (§3.2), and its saved form
# --------------------------------------------------------------------------------------------
SBO_HEAD_FILE = "sbo_head.safetensors"  # saved beside the masked LM's checkpoint


@dataclass(frozen=True)
class SpanBertLogits:
    """Both heads' predictions from one encoder pass."""

    mlm: torch.Tensor  # (M, V) at the masked positions (labels ≠ -100), in row-major order
    sbo: torch.Tensor  # (N, V) one row per SBO target


class SpanBertModel(nn.Module):
    """A BertForMaskedLM plus a span-boundary head; ``forward`` returns the two losses (:class:`SpanBertLoss`)."""

    def __init__(self, mlm, *, max_span_tokens: int = 32):
        super().__init__()
        self.mlm = mlm
        emb = mlm.bert.embeddings.word_embeddings
        self.sbo = SpanBoundaryHead(mlm.config.hidden_size, mlm.config.vocab_size, max_span_tokens=max_span_tokens,
                                    decoder_weight=emb.weight)

    def logits(self, input_ids: torch.Tensor, labels: torch.Tensor, targets: SboTargets,
               attention_mask: torch.Tensor | None = None) -> SpanBertLogits:
        """The MLM head at the masked positions only (the ~15% of T projected onto the 30k vocabulary: the same
        loss for a fraction of the compute) and the SBO head at every span token."""
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        hidden = self.mlm.bert(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state  # (B, T, H)
        return SpanBertLogits(mlm=self.mlm.cls(hidden[labels != IGNORE_INDEX]),
                              sbo=self.sbo(hidden, targets.to(hidden.device)))

    def forward(self, input_ids: torch.Tensor, labels: torch.Tensor, targets: SboTargets,
                attention_mask: torch.Tensor | None = None) -> SpanBertLoss:
        """§3.2's MLM + SBO loss of a span-masked batch (:func:`span_mask_batch`, :func:`sbo_targets`)."""
        out = self.logits(input_ids, labels, targets, attention_mask)
        return spanbert_loss(out.mlm, labels[labels != IGNORE_INDEX], out.sbo, targets.to(out.sbo.device))


def block_word_ids(tokenizer, block: torch.Tensor) -> list[int | None]:
    """WordPiece word index of each token of a block ("##" continues the previous word); specials -> None."""
    return word_ids_from_tokens(tokenizer.convert_ids_to_tokens(block.tolist()),
                                special_tokens=tokenizer.all_special_tokens)


def load_span_model(mlm, head_file) -> SpanBertModel:
    """A saved SpanBERT: ``mlm`` (the loaded ``BertForMaskedLM``) plus the SBO head saved beside it in
    ``sbo_head.safetensors`` (its decoder is the tied word-embedding matrix, so it is not in the file)."""
    from safetensors.torch import load_file

    state = load_file(str(head_file))
    if "position.weight" not in state:
        raise ValueError(f"{head_file} is not a span-boundary head (no position.weight)")
    model = SpanBertModel(mlm, max_span_tokens=state["position.weight"].shape[0])
    result = model.sbo.load_state_dict(state, strict=False)
    if result.unexpected_keys or set(result.missing_keys) != {"decoder.weight"}:
        raise ValueError(f"{head_file} does not match the span-boundary head: missing {result.missing_keys}, "
                         f"unexpected {result.unexpected_keys}")
    return model.to(next(mlm.parameters()).device).eval()
