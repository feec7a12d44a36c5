"""Sentence-BERT (Reimers & Gurevych 2019): siamese encoder + pooling + cosine.

§3: both sentences go through the same BERT (shared weights: the "siamese" network), a pooling
layer turns token states into one fixed-size vector (MEAN by default; CLS; MAX), and at inference
the cosine of the two vectors is the similarity. That makes semantic search over n sentences cost
n forward passes instead of the n·(n-1)/2 a cross-encoder needs (§1: 65 hours → 5 seconds for
10,000 sentences).

The same pair can also go through several encoders side by side (:func:`compare_models`): the packaged PyTorch
all-MiniLM-L6-v2, paraphrase-MiniLM-L3-v2 as fp32 ONNX and all-MiniLM-L6-v2 with int8 ONNX weights
(:data:`COMPARE_MODELS`), each with its cosine, live latency, parameter count and size on disk.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import plotly.graph_objects as go
import torch

from .checks import same_length, text
from .common import POOLING_MODES, pool  # noqa: F401  (re-exported: pooling is this paper's mechanism)
from .figures import finish, group_legend_overflow, label_positions, short, wrap_hover
from .figures import title as make_title
from .inference import encode
from .io import weights_size

MAX_SENTENCES = 2000  # list inputs in the UI / API
MAX_CHARS = 5000  # per sentence


def check_sentences(sentences: Sequence[str], *, minimum: int = 1, maximum: int = MAX_SENTENCES) -> list[str]:
    """Strip, drop empty lines and enforce the stated limits (ValueError with a clear message)."""
    cleaned = [s.strip() for s in sentences if s and s.strip()]
    if len(cleaned) < minimum:
        raise ValueError(f"need at least {minimum} non-empty sentence(s), got {len(cleaned)}")
    if len(cleaned) > maximum:
        raise ValueError(f"at most {maximum} sentences per request, got {len(cleaned)}")
    for i, s in enumerate(cleaned):
        text(s, f"sentence {i + 1}", max_chars=MAX_CHARS)
    return cleaned


def split_lines(text: str) -> list[str]:
    return [line for line in (text or "").splitlines()]


def cosine_matrix(a: torch.Tensor, b: torch.Tensor | None = None) -> torch.Tensor:
    """Pairwise cosine similarity (N, M) between rows of ``a`` (N, H) and ``b`` (M, H)."""
    b = a if b is None else b
    a = torch.nn.functional.normalize(a.float(), dim=-1)
    b = torch.nn.functional.normalize(b.float(), dim=-1)
    return a @ b.T


@dataclass(frozen=True)
class PairResult:
    """The siamese view of one pair: both embeddings and their cosine."""

    score: float
    embedding_a: np.ndarray
    embedding_b: np.ndarray
    pooling: str


def similarity(model, tokenizer, a: str, b: str, *, pooling: str = "mean") -> PairResult:
    """Cosine similarity of two sentences with one shared encoder (the siamese network, §3, Fig. 2)."""
    a, b = check_sentences([a], maximum=1)[0], check_sentences([b], maximum=1)[0]
    emb = encode(model, tokenizer, [a, b], pooling=pooling, normalize=True)
    return PairResult(float(emb[0] @ emb[1]), emb[0].numpy(), emb[1].numpy(), pooling)


def similarities(model, tokenizer, a: Sequence[str], b: Sequence[str], *, pooling: str = "mean") -> list[float]:
    """Cosine of each (a[i], b[i]) pair, all pairs in one batched pass (for batched endpoints / STS)."""
    if len(a) != len(b):
        raise ValueError(f"got {len(a)} first sentences but {len(b)} second sentences")
    emb = encode(model, tokenizer, list(a) + list(b), pooling=pooling, normalize=True)
    n = len(a)
    return (emb[:n] * emb[n:]).sum(-1).tolist()


def check_pairs(firsts: Sequence[str], seconds: Sequence[str]) -> None:
    """Every (firsts[i], seconds[i]) is two non-empty texts of at most MAX_CHARS characters (ValueError
    naming the pair otherwise). Unlike :func:`check_sentences` nothing is dropped: pair i stays pair i."""
    same_length(firsts, seconds, "first sentences", "second sentences")
    for i, pair in enumerate(zip(firsts, seconds)):
        for side, s in zip("AB", pair):
            text(s, f"pair {i + 1}: sentence {side}", max_chars=MAX_CHARS)


def similarity_pairs(model, tokenizer, firsts: Sequence[str], seconds: Sequence[str], *, pooling: str = "mean",
                     decimals: int | None = 4) -> list[float]:
    """The similarity endpoint's scores: cos(u_i, v_i) of each pair (§3, Fig. 2 at inference), every pair
    of every request in one batched encode, rounded to ``decimals`` (None: unrounded).

    Pairs are checked first (:func:`check_pairs`), so a bad pair fails before any forward pass. The app's
    batched ``similarity`` endpoint and the bench's handler timing both call this.
    """
    check_pairs(firsts, seconds)
    scores = similarities(model, tokenizer, firsts, seconds, pooling=pooling)
    return scores if decimals is None else [round(s, decimals) for s in scores]


# --------------------------------------------------------------------------------------------
# One pair, several encoders
# --------------------------------------------------------------------------------------------
# names bertvariants.serving.load accepts: packaged models, then the project's shipped students
COMPARE_MODELS = ("minilm", "minilm-l3-onnx", "minilm-int8-onnx", "distil-student", "albert-student")


@dataclass(frozen=True)
class TimedPair:
    score: float  # cos(u, v)
    latency_ms: float  # median wall time of one encode of the pair (tokenize + forward + pool), after a warm-up


def timed_similarity(model, tokenizer, a: str, b: str, *, pooling: str = "mean", max_length: int | None = None,
                     repeats: int = 5) -> TimedPair:
    """Cosine of one pair and the median latency of encoding it (both sentences in one batched pass).

    One untimed warm-up first: a fresh session or module allocates its buffers on the first call.
    """
    if repeats < 1:
        raise ValueError(f"repeats must be ≥ 1, got {repeats}")
    a, b = check_sentences([a], maximum=1)[0], check_sentences([b], maximum=1)[0]
    encode(model, tokenizer, [a, b], pooling=pooling, max_length=max_length)
    times, emb = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        emb = encode(model, tokenizer, [a, b], pooling=pooling, max_length=max_length)  # (2, H), unit rows
        times.append((time.perf_counter() - t0) * 1000)
    return TimedPair(score=float(emb[0] @ emb[1]), latency_ms=statistics.median(times))


@dataclass(frozen=True)
class ModelComparison:
    """One encoder's row of the side-by-side view."""

    name: str  # the name it was loaded by (a :data:`COMPARE_MODELS` entry)
    label: str  # where it comes from and what runs it
    source: str  # the resolver's source: packaged / shipped / trained / local / hub…
    score: float
    latency_ms: float
    parameters: int
    size_bytes: int


def compare_models(loaded: Sequence[tuple[str, object]], a: str, b: str, *, repeats: int = 5) -> list[ModelComparison]:
    """The same pair through every ``(name, LoadedModel)``: cosine with the model's own pooling, live latency,
    parameters and size on disk. Models run one after another, so each latency is measured alone."""
    rows = []
    for name, m in loaded:
        timed = timed_similarity(m.model, m.tokenizer, a, b, pooling=m.pooling, max_length=m.max_length,
                                 repeats=repeats)
        rows.append(ModelComparison(name=name, label=m.label, source=m.resolution.source,
                                    score=timed.score, latency_ms=timed.latency_ms,
                                    parameters=m.num_parameters, size_bytes=weights_size(m.resolution.location)))
    return rows


@dataclass(frozen=True)
class SearchHit:
    rank: int
    index: int
    sentence: str
    score: float


def semantic_search(model, tokenizer, query: str, corpus: Sequence[str], *, top_k: int = 5,
                    pooling: str = "mean") -> list[SearchHit]:
    """Top-k corpus sentences by cosine to the query (§1: one embedding per sentence, then a dot product)."""
    query = check_sentences([query], maximum=1)[0]
    corpus = check_sentences(corpus)
    if top_k < 1:
        raise ValueError(f"top_k must be ≥ 1, got {top_k}")
    emb = encode(model, tokenizer, [query, *corpus], pooling=pooling)
    scores = (emb[1:] @ emb[0]).numpy()
    order = np.argsort(-scores, kind="stable")[: min(top_k, len(corpus))]
    return [SearchHit(rank=r + 1, index=int(i), sentence=corpus[i], score=float(scores[i]))
            for r, i in enumerate(order)]


@dataclass(frozen=True)
class Clustering:
    labels: np.ndarray  # (N,)
    coords: np.ndarray  # (N, 2) PCA projection of the embeddings
    sentences: list[str]
    explained_variance: tuple[float, float]


def cluster(embeddings: np.ndarray, sentences: Sequence[str], *, k: int, seed: int = 0) -> Clustering:
    """k-means over sentence embeddings plus a 2-D PCA projection for plotting."""
    from sklearn.cluster import KMeans
    from sklearn.decomposition import PCA

    n = len(sentences)
    if not 1 <= k <= n:
        raise ValueError(f"number of clusters must be between 1 and the number of sentences ({n}), got {k}")
    labels = KMeans(n_clusters=k, n_init=10, random_state=seed).fit_predict(embeddings)
    if n >= 2:
        pca = PCA(n_components=min(2, n), random_state=seed).fit(embeddings)
        coords = pca.transform(embeddings)
        ev = tuple(float(x) for x in pca.explained_variance_ratio_)
        if coords.shape[1] == 1:
            coords = np.hstack([coords, np.zeros_like(coords)])
            ev = (ev[0], 0.0)
    else:
        coords, ev = np.zeros((1, 2)), (0.0, 0.0)
    return Clustering(labels=labels, coords=coords, sentences=list(sentences), explained_variance=ev)


# --------------------------------------------------------------------------------------------
# Figures
# --------------------------------------------------------------------------------------------
MAX_SENTENCE_LABELS = 12  # points of the cluster plot labelled with their sentence


def heatmap_figure(sentences: Sequence[str], matrix: np.ndarray) -> go.Figure:
    """Cosine-similarity heatmap with the sentences on both axes (full text on hover)."""
    n = len(sentences)
    labels = [f"{i + 1}. {short(s, 40)}" for i, s in enumerate(sentences)]
    matrix = np.round(np.asarray(matrix, dtype=np.float64), 4)  # float32 cells would show as 0.6899999976158142
    lines = [wrap_hover(s) for s in sentences]
    hover = [[f"{lines[i]}<br>{lines[j]}<br>cos = {matrix[i, j]:.3f}" for j in range(n)] for i in range(n)]
    fig = go.Figure(go.Heatmap(z=matrix, x=labels, y=labels, zmin=-1, zmax=1, colorscale="RdBu", reversescale=True,
                               text=np.round(matrix, 2), texttemplate="%{text:.2f}" if n <= 15 else None,
                               hovertext=hover, hoverinfo="text",
                               colorbar=dict(title=dict(text="cosine", side="right"), orientation="h", thickness=12,
                                             lenmode="pixels", len=200, dtick=0.5, x=0, xanchor="left", y=0,
                                             yref="container", yanchor="bottom")))
    # phone-sized tick labels: rows show the number and the sentence cut to 18 characters, columns the number only,
    # every step-th when there are many (a long sentence on both axes would leave no room for the cells)
    step = -(-n // 8)
    return finish(fig, title=make_title("Cosine similarity of sentence embeddings", "hover a cell for both sentences"),
                  height=max(380, (40 if n <= 15 else 22) * n + 220),
                  xaxis=dict(title="sentence (number)", tickvals=labels[::step],
                             ticktext=[str(i + 1) for i in range(0, n, step)]),
                  yaxis=dict(title="sentence", autorange="reversed", tickvals=labels,
                             ticktext=[f"{i + 1}. {short(s, 18)}" for i, s in enumerate(sentences)]))


def cluster_figure(result: Clustering) -> go.Figure:
    """The sentences in the plane of their embeddings' first two principal components, one colour per k-means
    cluster (past 11 clusters the rest share one grey legend entry; hover names each point's cluster)."""
    fig = go.Figure()
    # a sentence per label collides past a dozen points on a phone: then the sentences stay on hover
    mode = "markers+text" if len(result.sentences) <= MAX_SENTENCE_LABELS else "markers"
    where = label_positions(result.coords[:, 0])
    for c in sorted(set(result.labels.tolist())):
        idx = np.flatnonzero(result.labels == c)
        fig.add_trace(go.Scatter(x=result.coords[idx, 0], y=result.coords[idx, 1], mode=mode,
                                 name=f"cluster {c + 1}", text=[short(result.sentences[i], 20) for i in idx],
                                 hovertext=[wrap_hover(result.sentences[i]) for i in idx],
                                 hovertemplate=f"%{{hovertext}}<extra>cluster {c + 1}</extra>", cliponaxis=False,
                                 textposition=[where[i] for i in idx], textfont=dict(size=10),
                                 marker=dict(size=11)))
    group_legend_overflow(fig, noun="clusters")
    ev = result.explained_variance
    return finish(fig, title=make_title("k-means clusters of sentence embeddings", "2-D PCA projection"), height=460,
                  xaxis_title=f"PC1 ({ev[0]:.0%} of variance)", yaxis_title=f"PC2 ({ev[1]:.0%} of variance)")
