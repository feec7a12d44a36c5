"""Sentence-BERT tab: pair similarity (public API `similarity`), the same pair through five encoders
(`compare_similarity`), heatmap, semantic search, clustering."""

from __future__ import annotations

import gradio as gr
import numpy as np
import pandas as pd

from .. import interpret_views as iv
from .. import sentence_bert as sb
from ..checks import number, text
from ..inference import encode
from ..saliency import MAX_STEPS
from ..serving import get_model, load
from ..serving.packaged import packaged_model
from ..serving.sources import servable
from ..similarity_attribution import DEFAULT_STEPS
from .common import action, done, pending, safe
from .guard import per_input_validator
from .zerogpu import on_gpu

TASK = "similarity"
MAX_CHARS = sb.MAX_CHARS
EXAMPLE_LIST = "\n".join([
    "A man is eating food.",
    "Someone is having a meal.",
    "A man is riding a horse.",
    "A woman is playing the violin.",
    "A person plays a string instrument.",
    "The stock market fell sharply today.",
])


def _model():
    m = get_model(TASK)
    return m.model, m.tokenizer, m.label


@safe
def similarity_batch(first: list[str], second: list[str]) -> list[list[float]]:
    """Cosine similarity of two sentences' mean-pooled embeddings (Reimers & Gurevych 2019; public API
    `similarity`). Batched: concurrent requests share one forward pass; each request is validated alone first,
    so one bad request never fails the others.

    Args:
        first: sentence A, one per request.
        second: sentence B, one per request.

    Returns: the cosine similarity per request, rounded to 4 decimals."""
    for a, b in zip(first, second):
        check_pair(a, b)
    model, tok, _ = _model()
    return [sb.similarity_pairs(model, tok, first, second, decimals=4)]  # gradio batch: one list per output


def check_pair(a, b) -> None:
    text(a, "Sentence A", max_chars=MAX_CHARS)
    text(b, "Sentence B", max_chars=MAX_CHARS)


@safe
def pair_view(a: str, b: str, pooling: str):
    """The siamese view: both sentences through one encoder, pooled, compared (Reimers & Gurevych 2019 §3;
    public API `pair_view`).

    Args:
        a: sentence A.
        b: sentence B.
        pooling: "mean", "cls" or "max".

    Returns: the cosine (markdown) and the first 12 dimensions of both embeddings."""
    check_pair(a, b)
    model, tok, label = _model()
    res = sb.similarity(model, tok, a, b, pooling=pooling)
    dims = pd.DataFrame({"dim": np.arange(len(res.embedding_a))[:12],
                         "u (A)": np.round(np.asarray(res.embedding_a[:12], dtype=np.float64), 4),
                         "v (B)": np.round(np.asarray(res.embedding_b[:12], dtype=np.float64), 4)})
    md = (f"**cos(u, v) = {res.score:.4f}** with {pooling} pooling · {len(res.embedding_a)}-dim embeddings · "
          f"served by {label}")
    return md, dims


@safe
def similarity_attribution(a: str, b: str, steps: float):
    """Why two sentences are similar: a token × token attribution of their cosine by integrated Jacobians
    (Möller et al. 2023, "An Attribution Method for Siamese Encoders").

    Each entry A[i, j] is how much the pair (token i of A, token j of B) contributes to the similarity of the two
    mean-pooled, normalised embeddings. The entries sum to the cosine minus the reference terms (the part a
    [PAD]-only reference input explains) up to the integration error, which the summary reports as the
    completeness gap. Runs T·(m + 1) Jacobian-vector products per sentence (at most 32 tokens each).

    Args:
        a: Sentence A (at most 1,000 characters, 32 tokens).
        b: Sentence B (at most 1,000 characters, 32 tokens).
        steps: m, the number of integration steps, 1 to 300 (the gap is far below 1% at 20).

    Returns:
        A markdown summary (cosine, Σ A, the completeness gap, the top three pairs), the heatmap, the table of
        the top pairs, and the heatmap as PNG, SVG and HTML files.
    """
    check_pair(a, b)
    steps = number(steps, "Integration steps", lo=1, hi=MAX_STEPS, integer=True)
    view = iv.similarity_attribution_view(a, b, steps=steps)
    return view.summary, view.figure, view.pairs, [str(p) for p in view.files]


COMPARE_COLUMNS = ("model", "runs as", "cosine", "latency (ms, median of 5)", "parameters (M)", "size on disk (MB)")


def _runs_as(label: str, source: str) -> str:
    """A short column entry (the full provenance goes below the table): where it comes from · what runs it."""
    what = " · ".join(label.split(" · ")[1:]) or "PyTorch"
    return f"{'pip package' if source == 'packaged' else source} · {what}"


def _missing(name: str) -> str:
    try:
        return f"not installed (pip package {packaged_model(name).distribution})"
    except KeyError:
        return f"not built here (python -m bertvariants.train {name})"


@safe
def compare_similarity(a: str, b: str):
    """The same two sentences through five encoders side by side: all-MiniLM-L6-v2 (the packaged PyTorch model),
    paraphrase-MiniLM-L3-v2 as fp32 ONNX, all-MiniLM-L6-v2 with int8 ONNX weights (both run by onnxruntime), and
    this project's two students of MiniLM: distil-student (its layers 1, 3, 5 + a LoRA adapter, DistilBERT-style)
    and albert-student (factorized embeddings + two shared layers, ALBERT-style).

    Each row gives the cosine of the pair's embeddings (the model's own pooling), the latency of encoding the
    pair measured now on this server (median of 5 after a warm-up), the parameter count and the size on disk.
    A model whose pip package is not installed gets a row saying so.

    Args:
        a: Sentence A (at most 5,000 characters).
        b: Sentence B (at most 5,000 characters).
    Returns:
        A table with one row per model, and a note on how the numbers were measured.
    """
    check_pair(a, b)
    loaded, missing = [], []
    for name in sb.COMPARE_MODELS:
        if servable(name):
            loaded.append((name, load(name)))
        else:
            missing.append(name)
    compared = sb.compare_models(loaded, a, b)
    rows = [{"model": r.name, "runs as": _runs_as(r.label, r.source), "cosine": round(r.score, 4),
             "latency (ms, median of 5)": round(r.latency_ms, 2), "parameters (M)": round(r.parameters / 1e6, 3),
             "size on disk (MB)": round(r.size_bytes / 2**20, 1) if r.size_bytes else None}
            for r in compared]
    rows += [{"model": name, "runs as": _missing(name),
              "cosine": None, "latency (ms, median of 5)": None, "parameters (M)": None, "size on disk (MB)": None}
             for name in missing]
    md = ("Latency is measured now, on this server: tokenize + encode both sentences in one batch, median of 5 "
          "runs after a warm-up, one model at a time. MiniLM-L3 is a different (3-layer) model, so its cosine "
          "differs; the int8 model agrees with the PyTorch MiniLM-L6 to within about 0.01; the two students were "
          "distilled from MiniLM-L6 to reproduce its cosines (STS-B dev Spearman on the Leaderboard); their size on "
          "disk is what the repository stores for them (the rest is rebuilt from the packaged MiniLM at load).\n\n"
          + "\n".join(f"- **{r.name}**: {r.label}" for r in compared))
    return pd.DataFrame(rows, columns=list(COMPARE_COLUMNS)), md


@safe
def heatmap(sentences: str):
    """Pairwise cosine similarities of several sentences (public API `heatmap`).

    Args:
        sentences: 2–60 sentences, one per line.

    Returns: a heatmap of the cosine matrix."""
    text(sentences, "Sentences", max_chars=MAX_CHARS * 10)
    items = sb.check_sentences(sb.split_lines(sentences), minimum=2, maximum=60)
    model, tok, _ = _model()
    emb = encode(model, tok, items)
    return sb.heatmap_figure(items, sb.cosine_matrix(emb).numpy())


@safe
def search(query: str, corpus: str, top_k: float):
    """Semantic search: the sentences closest to a query by cosine similarity (public API `search`).

    Args:
        query: the query sentence.
        corpus: the sentences to search, one per line.
        top_k: how many hits to return (1–100).

    Returns: a table (rank, score, sentence)."""
    text(query, "Query", max_chars=MAX_CHARS)
    text(corpus, "Sentences to search", max_chars=sb.MAX_SENTENCES * 200)
    k = number(top_k, "top-k", lo=1, hi=100, integer=True)
    model, tok, _ = _model()
    hits = sb.semantic_search(model, tok, query, sb.split_lines(corpus), top_k=k)
    return pd.DataFrame([{"rank": h.rank, "score": round(h.score, 4), "sentence": h.sentence} for h in hits])


@safe
def clusters(sentences: str, k: float):
    """k-means clusters of sentence embeddings, shown in a 2-D PCA projection (public API `cluster`).

    Args:
        sentences: the sentences, one per line.
        k: number of clusters (1–20, at most the number of sentences).

    Returns: a scatter plot coloured by cluster."""
    text(sentences, "Sentences", max_chars=sb.MAX_SENTENCES * 200)
    items = sb.check_sentences(sb.split_lines(sentences), minimum=2)
    k = number(k, "number of clusters", lo=1, hi=min(20, len(items)), integer=True)
    model, tok, _ = _model()
    emb = encode(model, tok, items).numpy()
    return sb.cluster_figure(sb.cluster(emb, items, k=k))


def build(spec, tab) -> None:
    with gr.Row():
        a = gr.Textbox(label="Sentence A", value="A man is eating food.")
        b = gr.Textbox(label="Sentence B", value="Someone is having a meal.")
    with gr.Row():
        go_btn = gr.Button("Compare", variant="primary")
        score = gr.Number(label="Cosine similarity", precision=4, visible=False)
    pending(go_btn)
    go_event = go_btn.click(on_gpu(similarity_batch, "similarity"), [a, b], [score], api_name="similarity",
                            batch=True, max_batch_size=32, concurrency_limit=1, validator=per_input_validator(
                                lambda v: text(v, "Sentence A", max_chars=MAX_CHARS),
                                lambda v: text(v, "Sentence B", max_chars=MAX_CHARS)))
    # batched (one call serves many users), so one event: the score box appears once it holds a score
    go_event.success(lambda: gr.update(visible=True), None, [score], api_visibility="private")
    done(go_btn, go_event)

    with gr.Accordion("Siamese view: both sentences through one encoder, pooled, compared", open=False):
        pooling = gr.Radio(list(sb.POOLING_MODES), value="mean", label="Pooling (§3)")
        pair_btn = action("Show embeddings", variant="secondary")
        pair_md = gr.Markdown(visible=False)
        pair_df = gr.Dataframe(label="First 12 dimensions of u and v", visible=False)
        pair_btn.click(pair_view, [a, b, pooling], [pair_md, pair_df], api_name="pair_view")

    with gr.Accordion("Why are A and B similar? Token × token attribution (integrated Jacobians)", open=False):
        gr.Markdown("Each cell is how much a pair of tokens, one from each sentence, contributes to the cosine "
                    "(Möller et al. 2023): the entries sum to the cosine minus what a [PAD]-only reference explains, "
                    "up to the integration error shown as the completeness gap.")
        att_steps = gr.Slider(1, MAX_STEPS, value=DEFAULT_STEPS, step=1, label="Integration steps m")
        att_btn = action("Explain the similarity", variant="secondary")
        att_md = gr.Markdown(visible=False)
        att_plot = gr.Plot(show_label=False, visible=False)  # the figure has its own title
        att_df = gr.Dataframe(label="Top token pairs", visible=False)
        att_files = gr.File(label="Download: PNG, SVG, HTML", file_count="multiple", visible=False)
        att_btn.click(similarity_attribution, [a, b, att_steps], [att_md, att_plot, att_df, att_files],
                      api_name="similarity_attribution", concurrency_limit=1)

    with gr.Accordion("Compare models on one input: MiniLM-L6 (PyTorch, int8 ONNX), MiniLM-L3 ONNX, two students",
                      open=False):
        cmp_btn = action("Compare the five encoders on A and B", variant="secondary")
        cmp_df = gr.Dataframe(label="Same pair, five encoders", headers=list(COMPARE_COLUMNS), visible=False)
        cmp_md = gr.Markdown(visible=False)
        cmp_btn.click(compare_similarity, [a, b], [cmp_df, cmp_md], api_name="compare_similarity",
                      concurrency_limit=1)  # one comparison at a time: each latency is measured alone

    with gr.Tab("Similarity heatmap"):
        sents = gr.Textbox(label="Sentences (one per line, 2–60)", lines=6, value=EXAMPLE_LIST)
        hm_btn = action("Heatmap", variant="secondary")
        hm = gr.Plot(visible=False)
        hm_btn.click(heatmap, [sents], [hm], api_name="heatmap")
    with gr.Tab("Semantic search"):
        query = gr.Textbox(label="Query", value="Somebody is playing music.")
        corpus = gr.Textbox(label="Sentences to search (one per line)", lines=6, value=EXAMPLE_LIST)
        k = gr.Slider(1, 20, value=3, step=1, label="top-k")
        s_btn = action("Search", variant="secondary")
        hits = gr.Dataframe(label="Top hits", visible=False, wrap=True)
        s_btn.click(search, [query, corpus, k], [hits], api_name="search")
    with gr.Tab("Clustering"):
        c_sents = gr.Textbox(label="Sentences (one per line)", lines=6, value=EXAMPLE_LIST)
        c_k = gr.Slider(1, 10, value=3, step=1, label="k (clusters)")
        c_btn = action("Cluster", variant="secondary")
        c_plot = gr.Plot(visible=False)
        c_btn.click(clusters, [c_sents, c_k], [c_plot], api_name="cluster")
