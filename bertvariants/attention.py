"""Attention weights of any served transformer, every layer and head, and two summaries of each head.

What a head computes (Vaswani et al. 2017, §3.2.1 scaled dot-product attention, §3.2.2 multi-head): for the
queries Q and keys K of one head, ``A = softmax(Q Kᵀ / √d_k)``, a (T_q, T_k) matrix whose row i is a probability
distribution over the positions token i reads from. :func:`attention_maps` returns A for every layer and head:

- an **encoder** (BERT, MiniLM, ELECTRA, a QA or classification head on top): self-attention over the sentence,
  [CLS] and [SEP] included;
- a **decoder-only** model (the SmolLM2 stand-in for BART offline): causal self-attention, so A is lower
  triangular (a token never reads the future);
- an **encoder-decoder** (BART online): the encoder's self-attention over the sentence, and after a short greedy
  generation the decoder's causal self-attention and its **cross-attention** (rows: generated tokens, columns:
  the source sentence; Vaswani et al. §3.2.3 "encoder-decoder attention").

transformers computes A only in its eager attention (SDPA's fused kernel never materialises it and returns no
weights), so the forward pass runs on :func:`bertvariants.inference.eager_twin`, a copy of the served model with
eager attention: the shared model other tabs use keeps SDPA and is never switched, even for one call.

Per-head summaries (the overview grid): :func:`head_entropy`, how broad a head's attention is (Clark et al. 2019,
"What Does BERT Look At?", §3 "Broad attention": the entropy of each head's distribution), and
:func:`mean_distance`, how far a head looks (Vig & Belinkov 2019, mean attention distance Σ_j a_ij·|i − j|).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from .checks import number, token_count
from .inference import eager_twin
from .serving.formats import attention_note

MAX_TOKENS = 128  # a T×T map per head: 6 layers × 12 heads × 128² floats stays small and fast on a CPU
MAX_NEW_TOKENS = 24  # decoder tokens an encoder-decoder generates for its cross-attention
ENCODER, DECODER, CROSS = "encoder self-attention", "decoder self-attention", "cross-attention"
PARTS = (ENCODER, DECODER, CROSS)


@dataclass(frozen=True)
class AttentionMaps:
    """One attention of a model (e.g. its encoder self-attention): A for every layer and head."""

    part: str  # one of PARTS
    query_tokens: list[str]  # rows
    key_tokens: list[str]  # columns
    weights: np.ndarray  # (L, H, T_q, T_k) float32; every row sums to 1
    causal: bool = False

    @property
    def layers(self) -> int:
        return int(self.weights.shape[0])

    @property
    def heads(self) -> int:
        return int(self.weights.shape[1])

    def head(self, layer: int, head: int) -> np.ndarray:
        """A of one head, (T_q, T_k); ``layer`` and ``head`` count from 1 (as the view shows them)."""
        check_head(self, layer, head)
        return self.weights[layer - 1, head - 1]


@dataclass(frozen=True)
class Attention:
    """All attentions of one model on one sentence; ``main`` is the part shown first."""

    parts: dict[str, AttentionMaps]
    main: str
    architecture: str
    note: str = ""  # e.g. the generated text an encoder-decoder's cross-attention reads from
    special: frozenset = field(default_factory=frozenset)  # the tokenizer's special tokens ([CLS], [SEP], </s>, ...)

    def part(self, name: str = "auto") -> AttentionMaps:
        """The part ``name`` (``auto``: :attr:`main`); a part this model lacks is a ValueError naming the ones it
        has."""
        name = self.main if name in (None, "", "auto") else name
        if name not in self.parts:
            raise ValueError(f"this model ({self.architecture}) has no {name}; it has: {', '.join(self.parts)}")
        return self.parts[name]


def strongest_link(maps: AttentionMaps, layer: int, head: int, special=frozenset()) -> tuple[int, int] | None:
    """(query, key) of the head's largest weight between two different positions, special tokens aside (the
    [CLS] / [SEP] "no-op" sinks of Clark et al. §3.2 would win otherwise); None when no such pair exists."""
    a = maps.head(layer, head).copy()
    a[[t in special for t in maps.query_tokens], :] = -1
    a[:, [t in special for t in maps.key_tokens]] = -1
    if maps.part != CROSS:
        np.fill_diagonal(a, -1)
    if a.max() < 0:
        return None
    i, j = np.unravel_index(a.argmax(), a.shape)
    return int(i), int(j)


def check_head(maps: AttentionMaps, layer: int, head: int) -> None:
    """Layer and head, counted from 1, exist in ``maps``: else a ValueError that says the model's size."""
    try:
        number(layer, "layer", lo=1, hi=maps.layers, integer=True)
        number(head, "head", lo=1, hi=maps.heads, integer=True)
    except ValueError as exc:
        raise ValueError(f"{exc} (this model's {maps.part}: {maps.layers} layers × {maps.heads} heads)") from None


# --------------------------------------------------------------------------------------------
# Per-head summaries (pure functions of A)
# --------------------------------------------------------------------------------------------
def head_entropy(weights: np.ndarray) -> np.ndarray:
    """Mean over query rows of the entropy −Σ_j a_ij ln a_ij (nats) of each head: (L, H, T_q, T_k) -> (L, H).

    0 = every row puts all its mass on one token; ln T_k = uniform attention (Clark et al. 2019, §3)."""
    p = np.clip(weights.astype(np.float64), 1e-12, 1.0)
    return (-(weights * np.log(p)).sum(-1)).mean(-1)


def mean_distance(weights: np.ndarray) -> np.ndarray:
    """Mean over query rows i of Σ_j a_ij·|i − j|, in tokens (self-attention only): (L, H, T, T) -> (L, H).

    Positional heads (previous / next token) score ≈ 1; heads that read the whole sentence score ≈ T/3."""
    t_q, t_k = weights.shape[-2:]
    if t_q != t_k:
        raise ValueError(f"attention distance needs self-attention (T_q = T_k), got {t_q} × {t_k}")
    idx = np.arange(t_q)
    dist = np.abs(idx[:, None] - idx[None, :])  # (T, T)
    return (weights.astype(np.float64) * dist).sum(-1).mean(-1)


# --------------------------------------------------------------------------------------------
# Extraction
# --------------------------------------------------------------------------------------------
def has_attention(model) -> bool:
    """A transformers model (it can switch to eager attention and return A); a BiLSTM or ONNX session cannot."""
    return hasattr(model, "set_attn_implementation") and hasattr(model, "config")


def no_attention_reason(model, architecture: str = "") -> str:
    """Why ``model`` has no attention weights to show (the view says this instead of drawing a plot)."""
    name = architecture or type(model).__name__
    if note := attention_note(name):  # the checkpoint's format says why (a recurrent student)
        return note
    return f"{name} is not a transformers model with attention layers, so it exposes no attention weights."


def _stack(attentions) -> np.ndarray:
    """transformers' tuple of L tensors (1, H, T_q, T_k) -> (L, H, T_q, T_k) float32 on the CPU."""
    if not attentions or any(a is None for a in attentions):
        raise ValueError("the model returned no attention weights (its attention kernel does not compute them)")
    return torch.stack([a[0] for a in attentions]).float().cpu().numpy()


def _tokenize(tokenizer, text: str, max_tokens: int) -> dict:
    enc = tokenizer(text, return_tensors="pt", truncation=False)
    n = int(enc["input_ids"].shape[1])
    token_count(n, "the text", limit=max_tokens, why=f"(one {n}×{n} map per layer and head)")
    if n == 0:
        raise ValueError("the text has no tokens")
    return dict(enc)


def _tokens(tokenizer, ids) -> list[str]:
    return [str(t) for t in tokenizer.convert_ids_to_tokens([int(i) for i in ids])]


def attention_maps(model, tokenizer, text: str, *, architecture: str = "", max_tokens: int = MAX_TOKENS,
                   max_new_tokens: int = MAX_NEW_TOKENS) -> Attention:
    """Every attention of ``model`` on ``text`` (see the module docstring for what each kind of model has).

    Runs on the model's device, on an eager-attention copy; raises ValueError for a model without attention or a
    text over ``max_tokens`` tokens.

    >>> att = attention_maps(loaded.model, loaded.tokenizer, "The cat sat.")  # doctest: +SKIP
    >>> att.part().weights.shape                                              # doctest: +SKIP
    (6, 12, 6, 6)
    """
    architecture = architecture or type(model).__name__
    if not has_attention(model):
        raise ValueError(no_attention_reason(model, architecture))
    enc = _tokenize(tokenizer, text, max_tokens)
    device = next(model.parameters()).device
    enc = {k: v.to(device) for k, v in enc.items()}
    twin = eager_twin(model)
    if twin is model:
        raise ValueError(f"{architecture} cannot switch to eager attention, which is the only kernel that returns "
                         "attention weights")
    source = _tokens(tokenizer, enc["input_ids"][0])
    special = frozenset(str(t) for t in getattr(tokenizer, "all_special_tokens", ()))
    with torch.inference_mode():
        if getattr(model.config, "is_encoder_decoder", False):
            return _encoder_decoder(model, twin, tokenizer, enc, source, architecture, max_new_tokens, special)
        out = twin(**enc, output_attentions=True)
    weights = _stack(out.attentions)
    if _is_decoder_only(model):
        maps = AttentionMaps(DECODER, source, source, weights, causal=True)
        return Attention({DECODER: maps}, DECODER, architecture, special=special)
    return Attention({ENCODER: AttentionMaps(ENCODER, source, source, weights)}, ENCODER, architecture,
                     special=special)


def _is_decoder_only(model) -> bool:
    return type(model).__name__.endswith("ForCausalLM") or bool(getattr(model.config, "is_decoder", False))


def _encoder_decoder(model, twin, tokenizer, enc: dict, source: list[str], architecture: str,
                     max_new_tokens: int, special: frozenset) -> Attention:
    """Encoder self-attention over the sentence; greedy generation (on the shared SDPA model: it returns no
    weights), then one teacher-forced eager pass over the generated tokens for the decoder's self- and
    cross-attention. Row t of the cross-attention is labelled with the token that step produced."""
    enc = {k: v for k, v in enc.items() if k in ("input_ids", "attention_mask")}  # no segment ids in a seq2seq
    generated = model.generate(**enc, max_new_tokens=max_new_tokens, num_beams=1, do_sample=False)  # (1, 1 + n)
    if generated.shape[1] < 2:
        raise ValueError("the model generated no token, so there is no cross-attention to show")
    dec_in = generated[:, :-1]
    out = twin(**enc, decoder_input_ids=dec_in, decoder_attention_mask=torch.ones_like(dec_in),
               output_attentions=True)
    produced = _tokens(tokenizer, generated[0, 1:])  # cross-attention rows: the token each step produced
    steps = _tokens(tokenizer, dec_in[0])  # decoder self-attention: the decoder's own input positions
    parts = {
        ENCODER: AttentionMaps(ENCODER, source, source, _stack(out.encoder_attentions)),
        DECODER: AttentionMaps(DECODER, steps, steps, _stack(out.decoder_attentions), causal=True),
        CROSS: AttentionMaps(CROSS, produced, source, _stack(out.cross_attentions)),
    }
    text = tokenizer.decode(generated[0], skip_special_tokens=True).strip()
    return Attention(parts, CROSS, architecture, note=f"Generated (greedy, ≤ {max_new_tokens} tokens): “{text}”",
                     special=special)
