"""ClinicalBERT (Huang et al. 2019): long-note scoring and medical term embeddings.

§3.4 (readmission prediction): a discharge note is longer than BERT's 512-token limit, so it is split into
n subsequences, each is scored, and the scores are combined as

    P(readmit = 1 | h_patient) = (P_max^n + P_mean^n · n/c) / (1 + n/c),    c = 2

where the superscript n means "over the n subsequences" (not a power). P_max keeps a single strongly
positive chunk from being drowned out; the P_mean·n/c term lets many moderately positive chunks add up,
and the weight n/c grows with the note's length. The official code computes the same number as
``(max + sum/2) / (1 + n/2)``, because P_mean·n/2 = sum/2.

>>> round(aggregate_chunk_scores([0.9, 0.2, 0.1]).probability, 4)
0.6
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import plotly.graph_objects as go

from .checks import text
from .figures import finish, group_legend_overflow, wrap_hover
from .figures import title as make_title

MAX_TOKENS = 512  # BERT's limit, [CLS] and [SEP] included
MAX_NOTE_CHARS = 200_000  # ≈ 40k words; longer inputs are refused with a clear message
MAX_CHUNKS = 128
C_DEFAULT = 2.0
TERMS_PATH = Path(__file__).resolve().parent / "assets" / "medical_terms.tsv"
TERM_CATEGORIES = ("drugs", "anatomy", "diseases", "procedures")
# 100 Disease + 100 Chemical terms of the BC5CDR / NCBI-disease corpora (the harness's bioterms task uses 500 + 500)
BIOMEDICAL_TERMS_PATH = TERMS_PATH.parent / "biomedical_terms.tsv"
TERM_SETS = {"project terms (80, 4 categories)": TERMS_PATH,
             "BC5CDR / NCBI-disease terms (200: Disease, Chemical)": BIOMEDICAL_TERMS_PATH}


# --------------------------------------------------------------------------------------------
# Chunking (§3.4: "split into subsequences")
# --------------------------------------------------------------------------------------------
def chunk_spans(num_tokens: int, *, max_tokens: int = MAX_TOKENS, stride: int = 0, num_special: int = 2,
                starts_allowed: Sequence[bool] | None = None) -> list[tuple[int, int]]:
    """Token index ranges [start, end) covering ``num_tokens`` tokens with chunks of ≤ max_tokens − num_special
    tokens (room for [CLS] ... [SEP]); consecutive chunks overlap by ``stride`` tokens.

    ``starts_allowed[i]`` (optional) marks tokens where a chunk may begin/end (word starts), so a chunk never
    cuts a word in two unless a single word is longer than a chunk.
    """
    body = max_tokens - num_special
    if body < 1:
        raise ValueError(f"max_tokens={max_tokens} leaves no room for text after {num_special} special tokens")
    if not 0 <= stride < body:
        raise ValueError(f"stride (overlap) must be in [0, {body - 1}] for max_tokens={max_tokens}, got {stride}")
    if num_tokens < 1:
        raise ValueError("the note has no tokens: please enter some text")
    spans: list[tuple[int, int]] = []
    start = 0
    while True:
        end = min(start + body, num_tokens)
        if end < num_tokens and starts_allowed is not None:
            # back off to the last word start inside the chunk (never to the chunk's own start)
            cut = next((j for j in range(end, start, -1) if starts_allowed[j]), None)
            if cut is not None and cut > start + stride:
                end = cut
        spans.append((start, end))
        if end >= num_tokens:
            return spans
        nxt = end - stride
        if starts_allowed is not None and stride:
            nxt = next((j for j in range(nxt, end) if starts_allowed[j]), nxt)
        start = max(nxt, start + 1)


def chunk_token_ids(ids: Sequence[int], *, max_tokens: int = MAX_TOKENS, stride: int = 0,
                    cls_id: int | None = None, sep_id: int | None = None) -> list[list[int]]:
    """Split a tokenized note (ids without special tokens) into chunks of ≤ ``max_tokens`` ids, each wrapped
    as [CLS] ... [SEP] when cls_id / sep_id are given (§3.4). Pure: the training recipes use it on ids."""
    num_special = int(cls_id is not None) + int(sep_id is not None)
    spans = chunk_spans(len(ids), max_tokens=max_tokens, stride=stride, num_special=num_special)
    head = [cls_id] if cls_id is not None else []
    tail = [sep_id] if sep_id is not None else []
    return [head + list(ids[s:e]) + tail for s, e in spans]


@dataclass(frozen=True)
class Chunk:
    index: int
    token_start: int  # in the note's tokens (no special tokens)
    token_end: int
    char_start: int
    char_end: int
    text: str  # the note's characters covered by the chunk's tokens

    @property
    def num_tokens(self) -> int:
        return self.token_end - self.token_start


def check_note(note: str, *, max_chars: int = MAX_NOTE_CHARS) -> str:
    return text(note, "the note", max_chars=max_chars, hint="please paste a clinical note")


def chunk_note(tokenizer, note: str, *, max_tokens: int = MAX_TOKENS, stride: int = 0,
               max_chunks: int = MAX_CHUNKS) -> list[Chunk]:
    """Tokenize a note once (fast tokenizer, no special tokens) and cut it into chunks at word boundaries.

    Each chunk's ``text`` is the exact character span of its tokens, so re-tokenizing it gives back the same
    tokens (BERT's pre-tokenizer splits words independently) and it fits in ``max_tokens`` with [CLS]/[SEP].
    """
    check_note(note)
    enc = tokenizer(note, add_special_tokens=False, return_offsets_mapping=True, truncation=False, verbose=False)
    offsets = enc["offset_mapping"]
    if not offsets:
        raise ValueError("the note has no tokens after tokenization: please enter some text")
    word_ids = enc.word_ids() if hasattr(enc, "word_ids") else None
    n = len(offsets)
    starts = [True] * (n + 1)
    if word_ids is not None:
        starts = [i == 0 or word_ids[i] != word_ids[i - 1] for i in range(n)] + [True]
    num_special = tokenizer.num_special_tokens_to_add(pair=False)
    spans = chunk_spans(n, max_tokens=max_tokens, stride=stride, num_special=num_special, starts_allowed=starts)
    if len(spans) > max_chunks:
        raise ValueError(f"the note splits into {len(spans)} chunks of {max_tokens} tokens, more than the {max_chunks} "
                         "scored per note: shorten it")
    chunks = []
    for i, (s, e) in enumerate(spans):
        c0, c1 = offsets[s][0], offsets[e - 1][1]
        chunks.append(Chunk(i, s, e, c0, c1, note[c0:c1]))
    return chunks


# --------------------------------------------------------------------------------------------
# Aggregation (§3.4, eq. 4)
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ChunkAggregate:
    """The paper's aggregate and the two scores it interpolates between."""

    probability: float | np.ndarray  # (P_max + P_mean·n/c) / (1 + n/c)
    p_max: float | np.ndarray
    p_mean: float | np.ndarray
    n: int
    c: float


def aggregate_chunk_scores(probs, *, c: float = C_DEFAULT) -> ChunkAggregate:
    """P = (P_max + P_mean·n/c) / (1 + n/c) over n chunk probabilities (Huang et al. §3.4, eq. 4).

    ``probs``: (n,) probabilities of the positive class, or (n, C) per-class probabilities aggregated class by
    class (the result is then not renormalised: each class gets its own readmission-style score).
    """
    p = np.asarray(probs, dtype=np.float64)
    if p.ndim not in (1, 2) or p.shape[0] == 0:
        raise ValueError(f"need a non-empty (n,) or (n, C) array of chunk probabilities, got shape {p.shape}")
    if not np.all(np.isfinite(p)) or p.min() < 0 or p.max() > 1:
        raise ValueError("chunk scores must be probabilities in [0, 1]")
    if not c > 0:
        raise ValueError(f"c must be > 0, got {c}")
    n = p.shape[0]
    p_max, p_mean = p.max(0), p.mean(0)
    agg = (p_max + p_mean * n / c) / (1 + n / c)
    as_out = (lambda x: float(x)) if p.ndim == 1 else (lambda x: x)
    return ChunkAggregate(probability=as_out(agg), p_max=as_out(p_max), p_mean=as_out(p_mean), n=n, c=float(c))


def official_aggregate(probs: Sequence[float]) -> float:
    """The official ClinicalBERT code's formula, ``(max + sum/2) / (1 + n/2)`` (equals the paper's with c = 2)."""
    p = np.asarray(probs, dtype=np.float64)
    return float((p.max() + p.sum() / 2) / (1 + len(p) / 2))


@dataclass(frozen=True)
class NoteScore:
    chunks: list[Chunk]
    chunk_probs: np.ndarray  # (n, C)
    labels: list[str]
    positive: int  # class index whose probability the aggregate reports
    aggregate: ChunkAggregate  # on chunk_probs[:, positive]


def score_note(model, tokenizer, note: str, *, max_tokens: int = MAX_TOKENS, stride: int = 0, c: float = C_DEFAULT,
               positive: int | str = 1) -> NoteScore:
    """Chunk a note, classify every chunk in one batched pass (inference.classify), aggregate (§3.4)."""
    import torch

    from .inference import classify

    chunks = chunk_note(tokenizer, note, max_tokens=max_tokens, stride=stride)
    logits = classify(model, tokenizer, [ch.text for ch in chunks], max_length=max_tokens)  # (n, C)
    probs = torch.softmax(logits, -1).numpy()
    id2label = getattr(model.config, "id2label", None) or {i: f"class {i}" for i in range(probs.shape[1])}
    labels = [str(id2label.get(i, i)) for i in range(probs.shape[1])]
    if isinstance(positive, str):
        if positive not in labels:
            raise ValueError(f"unknown class {positive!r}; this classifier has {', '.join(labels)}")
        positive = labels.index(positive)
    if not 0 <= positive < probs.shape[1]:
        raise ValueError(f"class index {positive} out of range for {probs.shape[1]} classes")
    return NoteScore(chunks=chunks, chunk_probs=probs, labels=labels, positive=positive,
                     aggregate=aggregate_chunk_scores(probs[:, positive], c=c))


def chunk_figure(score: NoteScore) -> go.Figure:
    """Per-chunk probability bars plus horizontal lines for the aggregate, max-only and mean-only scores."""
    p = score.chunk_probs[:, score.positive]
    agg = score.aggregate
    x = [f"chunk {ch.index + 1}" for ch in score.chunks]
    fig = go.Figure(go.Bar(x=x, y=p, name=f"P({score.labels[score.positive]}) per chunk",
                           text=[f"{v:.3f}" for v in p],
                           hovertext=[wrap_hover(ch.text[:200] + "…") for ch in score.chunks],
                           hovertemplate="%{x}: P = %{y:.3f}<br>%{hovertext}<extra></extra>"))
    for value, name, dash in ((agg.probability, f"aggregate (c={agg.c:g})", "solid"), (agg.p_max, "max only", "dot"),
                              (agg.p_mean, "mean only", "dash")):
        fig.add_trace(go.Scatter(x=x, y=[value] * len(x), mode="lines", name=f"{name}: {value:.3f}",
                                 line=dict(dash=dash, width=2), hovertemplate=f"{name}: %{{y:.3f}}<extra></extra>"))
    return finish(fig, title=make_title(f"{agg.n} chunk(s): P = {agg.probability:.3f}",
                                        f"aggregate P = (P_max + P_mean·n/c) / (1 + n/c), c = {agg.c:g}"),
                  xaxis_title="chunk of the note", yaxis=dict(title="probability", range=[0, 1]),
                  uniformtext=dict(minsize=8, mode="hide"))  # many chunks: numbers too small to read stay on hover


# --------------------------------------------------------------------------------------------
# Medical term embeddings + t-SNE
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Term:
    term: str
    category: str


def load_terms(path: str | Path = TERMS_PATH) -> list[Term]:
    """The project's small medical term list (``term<TAB>category``; categories: drugs, anatomy, diseases,
    procedures)."""
    terms = []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        term, category = line.split("\t")
        terms.append(Term(term.strip(), category.strip()))
    return terms


@dataclass(frozen=True)
class TermMap:
    terms: list[Term]
    coords: np.ndarray  # (N, 2)
    perplexity: float


def tsne_terms(embeddings: np.ndarray, terms: Sequence[Term], *, perplexity: float = 15.0, seed: int = 0) -> TermMap:
    """2-D t-SNE (scikit-learn, cosine metric) of term embeddings (N, H); deterministic for a seed."""
    from sklearn.manifold import TSNE
    from threadpoolctl import threadpool_limits

    n = len(terms)
    if embeddings.shape[0] != n or n < 3:
        raise ValueError(f"need ≥ 3 terms and one embedding per term, got {n} terms, {embeddings.shape[0]} rows")
    perplexity = float(min(perplexity, n - 1))  # sklearn requires perplexity < n_samples
    # a few hundred points need no thread pool; OpenMP threads spinning on a busy shared CPU cost 10x
    with threadpool_limits(limits=1):
        coords = TSNE(n_components=2, perplexity=perplexity, metric="cosine", init="pca", random_state=seed,
                      max_iter=500).fit_transform(np.asarray(embeddings, dtype=np.float32))
    return TermMap(terms=list(terms), coords=coords, perplexity=perplexity)


def same_category_neighbours(points: np.ndarray, categories: Sequence[str], *, metric: str = "euclidean") -> np.ndarray:
    """(N,) 1.0 where a point's nearest *other* point (``metric``: "euclidean" for a t-SNE map, "cosine" for
    embeddings) has the same category, else 0.0; the mean is the same-category nearest-neighbour rate, the
    clustering measure we report for Huang et al. 2019 Fig. 2 (terms grouped by category in t-SNE). Ties go to
    the lowest index (deterministic)."""
    from sklearn.metrics import pairwise_distances

    x = np.asarray(points, dtype=np.float64)
    cats = np.asarray(list(categories))
    if x.ndim != 2 or len(x) != len(cats) or len(x) < 2:
        raise ValueError(f"need ≥ 2 points (N, D) and one category per point, got {x.shape} and {len(cats)}")
    d = pairwise_distances(x, metric=metric)
    np.fill_diagonal(d, np.inf)
    return (cats[d.argmin(axis=1)] == cats).astype(np.float64)


def chance_neighbour_rate(categories: Sequence[str]) -> float:
    """The rate if each point's neighbour were a uniformly random other point: Σ_c n_c(n_c − 1) / (N(N − 1))
    (½ − 1/(2(N−1)) for two equal categories)."""
    _, counts = np.unique(np.asarray(list(categories)), return_counts=True)
    n = counts.sum()
    if n < 2:
        raise ValueError("need ≥ 2 points")
    return float((counts * (counts - 1)).sum() / (n * (n - 1)))


def tsne_figure(tmap: TermMap) -> go.Figure:
    """The terms' t-SNE map, one colour per category (past 11 categories the rest share one grey legend entry)."""
    fig = go.Figure()
    for cat in sorted({t.category for t in tmap.terms}):
        idx = [i for i, t in enumerate(tmap.terms) if t.category == cat]
        fig.add_trace(go.Scatter(x=tmap.coords[idx, 0], y=tmap.coords[idx, 1], mode="markers", name=cat,
                                 text=[tmap.terms[i].term for i in idx],
                                 hovertemplate="%{text}<extra>" + cat + "</extra>",
                                 marker=dict(size=10)))
    group_legend_overflow(fig, noun="categories")
    return finish(fig, title=make_title("t-SNE of medical term embeddings", f"perplexity {tmap.perplexity:g}, "
                                        "colour = term category"), height=460,
                  xaxis_title="t-SNE 1", yaxis_title="t-SNE 2")
