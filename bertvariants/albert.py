"""ALBERT (Lan et al. 2019): factorized embeddings, cross-layer sharing, sentence-order prediction.

§3.1 "Factorized embedding parameterization": the vocabulary is embedded in a small space E and
projected to the hidden size H, so the embedding costs V×E + E×H instead of V×H (V=30000,
E=128, H=768: 3.9M instead of 23.0M).
§3.1 "Cross-layer parameter sharing": all layers share one set of weights (the default); the paper
also ablates sharing only the feed-forward network or only the attention (Table 4).
§3.1 "Inter-sentence coherence loss": sentence-order prediction (SOP) — positive = two consecutive
segments in order, negative = the same two segments swapped (NSP drew its negatives from another
document, which a model can solve by topic alone).

Parameter counts are closed-form; tests check them against ``sum(p.numel())`` of transformers'
``AlbertModel`` / ``BertModel`` and of :class:`SharedEncoder` (our module for the partial-sharing
modes), built from the same configs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

import plotly.graph_objects as go
import torch
from torch import nn
from torch.nn import functional as F

from .albert_init import svd_factorize
from .checks import probability, token_count, tokenized
from .figures import MAX_POINT_LABELS, finish, label_positions, wrap
from .figures import title as make_title

MAX_TOKENS = 128  # the tab's limit per sentence (the models accept 512; 128 keeps the PCA plot readable)
SHARING_MODES = ("all", "ffn", "attention", "none")  # Table 4: all-shared, shared-FFN, shared-attention, not-shared
SHARING_LABELS = {"all": "all-shared (ALBERT default)", "ffn": "shared-FFN", "attention": "shared-attention",
                  "none": "not-shared"}


@dataclass(frozen=True)
class AlbertSize:
    """Sizes that determine the parameter count (Table 1 / Table 2 of the paper). Heads do not change it."""

    vocab_size: int = 30_000
    embedding_size: int = 128  # E
    hidden_size: int = 768  # H
    num_layers: int = 12  # L
    intermediate_size: int = 3072  # feed-forward size, 4H in every configuration of the paper
    num_heads: int = 12
    max_position: int = 512
    type_vocab_size: int = 2
    sharing: str = "all"
    pooler: bool = True  # transformers' AlbertModel / BertModel include the [CLS] pooler (H×H + H)

    def __post_init__(self):
        if self.sharing not in SHARING_MODES:
            raise ValueError(f"sharing must be one of {', '.join(SHARING_MODES)}, got {self.sharing!r}")
        for name in ("vocab_size", "embedding_size", "hidden_size", "num_layers", "intermediate_size", "num_heads",
                     "max_position", "type_vocab_size"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be ≥ 1, got {getattr(self, name)}")
        if self.hidden_size % self.num_heads:
            raise ValueError(f"hidden_size {self.hidden_size} is not divisible by num_heads {self.num_heads}")


# Table 1 of the paper (V=30000, E=128, FFN=4H), with the parameter counts it reports.
PAPER_CONFIGS: dict[str, tuple[AlbertSize, str]] = {
    "ALBERT-base": (AlbertSize(hidden_size=768, num_layers=12, intermediate_size=3072, num_heads=12), "12M"),
    "ALBERT-large": (AlbertSize(hidden_size=1024, num_layers=24, intermediate_size=4096, num_heads=16), "18M"),
    "ALBERT-xlarge": (AlbertSize(hidden_size=2048, num_layers=24, intermediate_size=8192, num_heads=16), "60M"),
    "ALBERT-xxlarge": (AlbertSize(hidden_size=4096, num_layers=12, intermediate_size=16384, num_heads=64), "235M"),
}
# BERT (Devlin et al. 2019): V=30522 WordPiece, E=H (no factorization), no sharing.
BERT_CONFIGS: dict[str, tuple[AlbertSize, str]] = {
    "BERT-base": (AlbertSize(vocab_size=30522, embedding_size=768, hidden_size=768, num_layers=12,
                             intermediate_size=3072, num_heads=12, sharing="none"), "110M"),
    "BERT-large": (AlbertSize(vocab_size=30522, embedding_size=1024, hidden_size=1024, num_layers=24,
                              intermediate_size=4096, num_heads=16, sharing="none"), "334M"),
}


@dataclass(frozen=True)
class ParameterCount:
    """Parameters by part. ``embeddings`` includes the E→H projection (ALBERT) and the embedding LayerNorm."""

    embeddings: int
    attention: int  # Q, K, V, output projection + the attention LayerNorm, over all *distinct* layers
    ffn: int  # both feed-forward matrices + the output LayerNorm, over all distinct layers
    pooler: int

    @property
    def total(self) -> int:
        return self.embeddings + self.attention + self.ffn + self.pooler


def _attention_block(h: int) -> int:
    return 4 * (h * h + h) + 2 * h  # Q, K, V, O with biases + LayerNorm


def _ffn_block(h: int, i: int) -> int:
    return (h * i + i) + (i * h + h) + 2 * h  # H→I, I→H with biases + LayerNorm


def count_parameters(size: AlbertSize, *, factorized: bool = True) -> ParameterCount:
    """Closed-form parameter count of an ALBERT (``factorized=True``) or BERT (``False``, needs E = H) encoder.

    ALBERT §3.1: embeddings V×E + E×H (the E×H projection + bias exists even when E = H, as in
    transformers' AlbertModel); BERT: V×H. Sharing (Table 4) keeps 1 or L copies of each block.
    """
    v, e, h, i, l = size.vocab_size, size.embedding_size, size.hidden_size, size.intermediate_size, size.num_layers
    if not factorized and e != h:
        raise ValueError(f"BERT has no factorization: embedding_size must equal hidden_size, got E={e}, H={h}")
    emb = (v + size.max_position + size.type_vocab_size) * e + 2 * e  # token + position + segment tables + LN
    if factorized:
        emb += e * h + h  # embedding_hidden_mapping_in: E -> H
    n_attn = 1 if size.sharing in ("all", "attention") else l
    n_ffn = 1 if size.sharing in ("all", "ffn") else l
    return ParameterCount(embeddings=emb, attention=n_attn * _attention_block(h), ffn=n_ffn * _ffn_block(h, i),
                          pooler=(h * h + h) if size.pooler else 0)


def bert_equivalent(size: AlbertSize) -> AlbertSize:
    """The BERT with the same V, H, L and FFN: E = H, nothing shared."""
    return replace(size, embedding_size=size.hidden_size, sharing="none")


@dataclass(frozen=True)
class Comparison:
    albert: ParameterCount
    bert: ParameterCount

    @property
    def saving(self) -> float:
        """Fraction of BERT's parameters that ALBERT does without."""
        return 1.0 - self.albert.total / self.bert.total


def compare_with_bert(size: AlbertSize) -> Comparison:
    return Comparison(albert=count_parameters(size), bert=count_parameters(bert_equivalent(size), factorized=False))


def embedding_saving(*, vocab_size: int = 30_000, embedding_size: int = 128, hidden_size: int = 768) -> tuple[int, int]:
    """The worked example of §3.1: (V×H, V×E + E×H) — weights only, no biases."""
    return vocab_size * hidden_size, vocab_size * embedding_size + embedding_size * hidden_size


def millions(n: int) -> str:
    return f"{n / 1e6:.0f}M"


def paper_table() -> list[dict]:
    """Rows for the UI: each Table 1 configuration, our exact count, and the count the paper reports."""
    rows = []
    for name, (size, paper) in {**PAPER_CONFIGS, **BERT_CONFIGS}.items():
        count = count_parameters(size, factorized=name.startswith("ALBERT"))
        rows.append({"model": name, "L": size.num_layers, "H": size.hidden_size, "E": size.embedding_size,
                     "sharing": SHARING_LABELS[size.sharing], "parameters (exact)": count.total,
                     "ours": millions(count.total), "paper": paper})
    return rows


# --------------------------------------------------------------------------------------------
# A real module for every sharing mode (transformers has only all-shared and not-shared)
# --------------------------------------------------------------------------------------------
class Attention(nn.Module):
    """Post-LN multi-head self-attention block, the same parameters as AlbertAttention."""

    def __init__(self, hidden: int, heads: int):
        super().__init__()
        self.heads = heads
        self.query, self.key, self.value, self.dense = (nn.Linear(hidden, hidden) for _ in range(4))
        self.norm = nn.LayerNorm(hidden)

    def forward(self, x: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        b, t, h = x.shape

        def split(y):  # (B, T, H) -> (B, heads, T, H/heads)
            return y.view(b, t, self.heads, h // self.heads).transpose(1, 2)

        mask = None if attention_mask is None else attention_mask[:, None, None, :].bool()  # (B, 1, 1, T)
        ctx = F.scaled_dot_product_attention(split(self.query(x)), split(self.key(x)), split(self.value(x)),
                                             attn_mask=mask)
        return self.norm(x + self.dense(ctx.transpose(1, 2).reshape(b, t, h)))


class FeedForward(nn.Module):
    def __init__(self, hidden: int, intermediate: int):
        super().__init__()
        self.up, self.down = nn.Linear(hidden, intermediate), nn.Linear(intermediate, hidden)
        self.norm = nn.LayerNorm(hidden)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(x + self.down(F.gelu(self.up(x))))


class SharedEncoder(nn.Module):
    """ALBERT encoder with any sharing mode of Table 4: factorized embeddings → L layers → pooler.

    Shared blocks are the *same* module object at every depth, so ``parameters()`` counts them once.
    """

    def __init__(self, size: AlbertSize):
        super().__init__()
        e, h = size.embedding_size, size.hidden_size
        self.word = nn.Embedding(size.vocab_size, e)  # V×E
        self.position = nn.Embedding(size.max_position, e)
        self.segment = nn.Embedding(size.type_vocab_size, e)
        self.emb_norm = nn.LayerNorm(e)
        self.project = nn.Linear(e, h)  # E×H: the factorization of §3.1
        one_attn, one_ffn = Attention(h, size.num_heads), FeedForward(h, size.intermediate_size)
        self.attention = nn.ModuleList(
            [one_attn if size.sharing in ("all", "attention") else Attention(h, size.num_heads)
             for _ in range(size.num_layers)])
        self.ffn = nn.ModuleList(
            [one_ffn if size.sharing in ("all", "ffn") else FeedForward(h, size.intermediate_size)
             for _ in range(size.num_layers)])
        self.pooler = nn.Linear(h, h) if size.pooler else None

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        t = input_ids.shape[1]
        pos = torch.arange(t, device=input_ids.device)
        x = self.emb_norm(self.word(input_ids) + self.position(pos) + self.segment(torch.zeros_like(input_ids)))
        x = self.project(x)  # (B, T, E) -> (B, T, H)
        for attn, ffn in zip(self.attention, self.ffn):
            x = ffn(attn(x, attention_mask))
        return x  # (B, T, H)


def transformers_model(size: AlbertSize, *, bert: bool = False):
    """transformers' AlbertModel (sharing 'all' or 'none') or BertModel built from ``size`` (for the tests)."""
    from transformers import AlbertConfig, AlbertModel, BertConfig, BertModel

    common = dict(vocab_size=size.vocab_size, hidden_size=size.hidden_size, num_hidden_layers=size.num_layers,
                  num_attention_heads=size.num_heads, intermediate_size=size.intermediate_size,
                  max_position_embeddings=size.max_position, type_vocab_size=size.type_vocab_size)
    if bert:
        return BertModel(BertConfig(**common), add_pooling_layer=size.pooler)
    if size.sharing not in ("all", "none"):
        raise ValueError(f"transformers' AlbertModel supports sharing 'all' or 'none', not {size.sharing!r}; "
                         "use SharedEncoder")
    groups = 1 if size.sharing == "all" else size.num_layers
    return AlbertModel(AlbertConfig(embedding_size=size.embedding_size, num_hidden_groups=groups, inner_group_num=1,
                                    **common), add_pooling_layer=size.pooler)


def breakdown_figure(size: AlbertSize) -> go.Figure:
    """Stacked bar: embeddings / attention / FFN / pooler of this ALBERT versus the BERT of the same V, H, L."""
    cmp = compare_with_bert(size)
    names = [f"ALBERT ({SHARING_LABELS[size.sharing]}, E={size.embedding_size})", f"BERT (E=H={size.hidden_size})"]
    fig = go.Figure()
    for part in ("embeddings", "attention", "ffn", "pooler"):
        vals = [getattr(cmp.albert, part) / 1e6, getattr(cmp.bert, part) / 1e6]
        fig.add_trace(go.Bar(name="FFN" if part == "ffn" else part, x=names, y=vals,
                             text=[f"{v:.1f}M" for v in vals], textposition="inside", textangle=0,
                             hovertemplate="%{x}<br>%{fullData.name}: %{y:.2f}M<extra></extra>"))
    ticks = [wrap(n, 20) for n in names]  # short lines: the two labels sit side by side on a phone
    return finish(fig, title=make_title(f"ALBERT {cmp.albert.total / 1e6:.1f}M vs BERT {cmp.bert.total / 1e6:.1f}M "
                                        f"parameters ({cmp.saving:.0%} fewer)", "stacked by part of the network"),
                  barmode="stack", yaxis_title="parameters (millions)",
                  xaxis=dict(title="model", tickvals=names, ticktext=ticks),
                  uniformtext=dict(minsize=9, mode="hide"))  # a sliver's number stays on hover


# --------------------------------------------------------------------------------------------
# Sentence-order prediction (§3.1, §4.6)
# --------------------------------------------------------------------------------------------
_SENTENCE_END = re.compile(r"(?<=[.!?。！？])\s+")


def split_sentences(text: str) -> list[str]:
    """Split text into sentences at ., ! or ? followed by whitespace (and at line breaks)."""
    out = []
    for line in (text or "").splitlines():
        out.extend(s.strip() for s in _SENTENCE_END.split(line) if s.strip())
    return out


@dataclass(frozen=True)
class SopPair:
    first: str
    second: str
    in_order: bool  # label: True = positive (consecutive, original order), False = swapped


def sop_pairs(text: str, *, generator: torch.Generator | None = None, swap_probability: float = 0.5) -> list[SopPair]:
    """SOP examples from one document: each pair of consecutive segments, swapped with ``swap_probability``.

    §3.1: "positive examples: two consecutive segments from the same document; negative examples:
    the same two consecutive segments but with their order swapped". Segments here are sentences.
    With ``generator=None`` both versions of every pair are returned (the explorer's view).
    """
    sentences = split_sentences(text)
    if len(sentences) < 2:
        raise ValueError(f"SOP needs at least 2 sentences (segments) from one document, got {len(sentences)}")
    probability(swap_probability, "swap_probability")
    pairs: list[SopPair] = []
    for a, b in zip(sentences, sentences[1:]):
        if generator is None:
            pairs += [SopPair(a, b, True), SopPair(b, a, False)]
        elif torch.rand((), generator=generator).item() < swap_probability:
            pairs.append(SopPair(b, a, False))
        else:
            pairs.append(SopPair(a, b, True))
    return pairs


# --------------------------------------------------------------------------------------------
# "Use ALBERT like BERT": token representations and the [CLS] vector
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class TokenFeatures:
    tokens: list[str]
    hidden: torch.Tensor  # (T, H) last hidden states
    cls: torch.Tensor  # (H,) the [CLS] (first-token) vector
    coords: torch.Tensor  # (T, 2) PCA projection of the token states
    explained: tuple[float, float]


def token_features(model, tokenizer, sentence: str, *, max_length: int = MAX_TOKENS) -> TokenFeatures:
    """Last-layer token states and the [CLS] vector of one sentence, plus a 2-D PCA of the tokens."""
    from .inference import run_batched

    sentence, ids = tokenized(sentence, "the sentence", tokenizer=tokenizer, max_tokens=max_length)
    hidden = run_batched(model, tokenizer, [sentence], head=lambda m, b: m(**b).last_hidden_state,
                         max_length=max_length)[0]  # (T, H)
    centred = hidden - hidden.mean(0, keepdim=True)
    if hidden.shape[0] >= 2:
        _, s, v = torch.linalg.svd(centred, full_matrices=False)
        k = min(2, v.shape[0])
        coords = centred @ v[:k].T
        var = s ** 2 / (s ** 2).sum().clamp(min=1e-12)
        explained = (float(var[0]), float(var[1]) if k > 1 else 0.0)
        if k == 1:
            coords = torch.cat([coords, torch.zeros_like(coords)], 1)
    else:
        coords, explained = torch.zeros(hidden.shape[0], 2), (0.0, 0.0)
    return TokenFeatures(tokens=tokenizer.convert_ids_to_tokens(ids), hidden=hidden, cls=hidden[0], coords=coords,
                         explained=explained)


def features_figure(features: TokenFeatures) -> go.Figure:
    """The tokens' last-layer states in the plane of their first two principal components."""
    c = features.coords.numpy()
    labelled = len(features.tokens) <= MAX_POINT_LABELS  # more labels would collide: the tokens stay on hover
    fig = go.Figure(go.Scatter(x=c[:, 0], y=c[:, 1], mode="markers+text" if labelled else "markers",
                               text=features.tokens, textposition=label_positions(c[:, 0]), cliponaxis=False,
                               marker=dict(size=10), showlegend=False,
                               hovertemplate="%{text}<br>PC1 %{x:.3f}, PC2 %{y:.3f}<extra></extra>"))
    return finish(fig, title=make_title("Token representations", "2-D PCA of the last layer's token states"),
                  xaxis_title=f"PC1 ({features.explained[0]:.0%})", yaxis_title=f"PC2 ({features.explained[1]:.0%})")


# --------------------------------------------------------------------------------------------
# The fill-mask prediction through a factorized output embedding (§3.1)
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class FactorizedFill:
    """Top-k at each mask through the full V×H output embedding and through its best rank-E factorization."""

    embedding_size: int  # E
    full: list[list[tuple[int, float]]]  # per mask: (token id, probability), V×H table
    factorized: list[list[tuple[int, float]]]  # per mask, V×E table · E×H projection
    full_parameters: int  # V×H
    factorized_parameters: int  # V×E + E×H


def output_layer_inputs(model, tokenizer, text: str, *, max_length: int = MAX_TOKENS) -> torch.Tensor:
    """(n_masks, H): what a masked LM's output layer (its V×H token-embedding table) receives at each mask token."""
    ids = tokenizer(text, truncation=False, return_tensors="pt")
    token_count(ids["input_ids"].shape[1], "the sentence", limit=max_length)
    where = ids["input_ids"][0] == tokenizer.mask_token_id
    if not where.any():
        raise ValueError(f"no mask token in the text: put {tokenizer.mask_token} where a word should be predicted")
    seen = []
    hook = model.get_output_embeddings().register_forward_pre_hook(lambda module, args: seen.append(args[0]))
    try:
        device = next(model.parameters()).device
        with torch.inference_mode():
            model(**{k: v.to(device) for k, v in ids.items()})
    finally:
        hook.remove()
    return seen[0][0, where.to(seen[0].device)].float().cpu()  # (n_masks, H)


def factorized_fill(model, tokenizer, text: str, *, embedding_size: int = 128, top_k: int = 5,
                    factors: tuple[torch.Tensor, torch.Tensor] | None = None) -> FactorizedFill:
    """§3.1 on a prediction: score the vocabulary with the model's own V×H output embedding W, and with its best
    rank-E factorization W ≈ A (V×E) · B (E×H) (truncated SVD, :func:`bertvariants.albert_init.svd_factorize`) —
    the hidden state is projected into E dimensions and compared with a V×E table, as ALBERT's embedding is.
    ``factors`` = a precomputed (A, B) for this model and E (the SVD of a 30K×384 table takes about a second)."""
    out = model.get_output_embeddings()
    weight = out.weight.detach().float().cpu()  # (V, H)
    bias = out.bias.detach().float().cpu() if getattr(out, "bias", None) is not None else torch.zeros(weight.shape[0])
    a, b = factors if factors is not None else svd_factorize(weight, embedding_size)  # (V, E), (E, H)
    h = output_layer_inputs(model, tokenizer, text)  # (n, H)

    def top(logits: torch.Tensor) -> list[list[tuple[int, float]]]:
        p, i = torch.softmax(logits, -1).topk(top_k, dim=-1)
        return [list(zip(row_i.tolist(), row_p.tolist())) for row_i, row_p in zip(i, p)]

    v, hidden = weight.shape
    return FactorizedFill(embedding_size=a.shape[1], full=top(h @ weight.T + bias),
                          factorized=top((h @ b.T) @ a.T + bias),  # (n, E) · (E, V)
                          full_parameters=v * hidden, factorized_parameters=v * a.shape[1] + a.shape[1] * hidden)
