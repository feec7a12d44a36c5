"""BART tab: the five noising functions of §2.2 (public API `bart_noise`) and summarization (public API
`summarize`): facebook/bart-large-cnn online; offline SmolLM2-135M-Instruct (shipped in a pip package), labelled
as the decoder-only stand-in it is; Lead-3 always beside it; an extractive fallback, clearly labelled, when no
model can serve the task."""

from __future__ import annotations

import threading

import gradio as gr
import pandas as pd

from .. import bart
from ..checks import number, text
from ..common import make_generator
from ..io import weights_size
from ..serving import ModelUnavailable, get_model, get_packaged
from ..serving.manifest import default_manifest
from .common import action, safe

TASK = "summarization"
MAX_NOISE_CHARS = 20_000
FALLBACKS = ("lead-3", "centroid (MiniLM)")  # Lead-3 is the stronger news baseline (docs/tabs.md: ROUGE on CNN/DM)
EXAMPLE = bart.DEFAULT_DOCUMENT


@safe
def noise(doc: str, permute: bool, rotate: bool, mask_on: bool, mask_ratio: float, delete_on: bool,
          delete_ratio: float, infill_on: bool, infill_ratio: float, lam: float, seed: float):
    """BART's noising transformations on a whitespace-tokenized document, every edit highlighted (Lewis et al.
    2019 §2.2; public API `bart_noise`).

    Args:
        doc: the document.
        permute: shuffle the sentences.
        rotate: rotate the document to start at a random token.
        mask_on: replace tokens with <mask>.
        mask_ratio: share of tokens masked.
        delete_on: delete tokens.
        delete_ratio: share of tokens deleted.
        infill_on: replace spans (lengths ~ Poisson(lam)) with one <mask> each.
        infill_ratio: share of tokens in infilled spans (the paper uses 0.3).
        lam: the Poisson λ of span lengths (the paper uses 3).
        seed: seed for every random choice.

    Returns: the original with what happened to each token, the corrupted encoder input, statistics (markdown)."""
    doc = text(doc, "Document", max_chars=MAX_NOISE_CHARS)
    tokens = doc.split()
    # every number is validated, also when its transformation is switched off (the API may send anything)
    ratios = {name: number(value, f"{name} ratio", lo=0, hi=1) for name, value in
              (("Masking", mask_ratio), ("Deletion", delete_ratio), ("Infilling", infill_ratio))}
    cfg = bart.NoiseConfig(
        sentence_permutation=bool(permute), document_rotation=bool(rotate),
        token_masking=ratios["Masking"] if mask_on else 0.0,
        token_deletion=ratios["Deletion"] if delete_on else 0.0,
        text_infilling=ratios["Infilling"] if infill_on else 0.0,
        poisson_lambda=number(lam, "Poisson λ", lo=0.1, hi=20))
    seed = number(seed, "Seed", lo=0, hi=2**31 - 1, integer=True)
    out = bart.apply_noise(tokens, cfg, generator=make_generator(seed))
    hidden = sum(len(s) for s in out.spans.values())
    md = (f"{len(tokens)} tokens in, {len(out.tokens)} tokens out · {out.tokens.count(bart.MASK)} `<mask>` "
          f"hiding {hidden} token(s) · {len(tokens) - hidden - sum(1 for s in out.source if s >= 0)} deleted. "
          "The model is trained to reconstruct the original from the corrupted input.")
    return bart.highlight_original(out, tokens), bart.highlight_corrupted(out), md


def extractive(doc: str, fallback: str) -> tuple[bart.ExtractiveSummary, str]:
    """The chosen extractive fallback and how it picks sentences."""
    if fallback not in FALLBACKS:
        raise ValueError(f"fallback must be one of {', '.join(FALLBACKS)}")
    if fallback == "lead-3":
        return bart.lead_n(doc, 3), "the document's first three sentences (Lead-3)"
    p = get_packaged()
    return (bart.centroid_summary(doc, p.model, p.tokenizer, n=3),
            "the three sentences closest to the document's MiniLM embedding centroid")


STREAM_EVERY = 0.2  # seconds between two updates of the page while a summary is written


def generate_streaming(m, doc: str, settings: bart.GenerationSettings):
    """Yield the summary so far while the model writes it (generation runs in a thread; the newest text is
    sent at most every :data:`STREAM_EVERY` s), then the finished summary. Errors are re-raised here."""
    latest: dict = {}
    outcome: dict = {}

    def run():
        try:
            outcome["summary"] = bart.summarize_with(m, [doc], settings=settings,
                                                     on_step=lambda t: latest.__setitem__("text", t))[0]
        except Exception as exc:  # noqa: BLE001 - re-raised in the caller's thread
            outcome["error"] = exc

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    shown_text = None
    while worker.is_alive():
        worker.join(STREAM_EVERY)
        text_now = latest.get("text")
        if text_now and text_now != shown_text:
            shown_text = text_now
            yield text_now, False
    if "error" in outcome:
        raise outcome["error"]
    yield outcome["summary"], True


@safe
def summarize(doc: str, num_beams: float, max_length: float, early_stopping: bool, fallback: str,
              progress=gr.Progress()):
    """Abstractive summary by the resolved summarizer (facebook/bart-large-cnn online; offline SmolLM2-135M-
    Instruct, labelled as the decoder-only stand-in it is), with Lead-3 beside it; an extractive fallback, labelled,
    only when no model can serve (public API `summarize`). The page shows the summary while it is written (under
    beam search, the leading beam); the API returns the finished summary.

    Args:
        doc: the document to summarize.
        num_beams: beam size (1–8).
        max_length: longest summary in tokens (10–300).
        early_stopping: stop beams when all have finished.
        fallback: the extractive method used only if no model can serve ("lead-3" or "centroid (MiniLM)").

    Returns: the summary, how it was produced (markdown), and the Lead-3 baseline."""
    doc = text(doc, "Document", max_chars=bart.MAX_DOC_CHARS)
    settings = bart.GenerationSettings(num_beams=number(num_beams, "num_beams", lo=1, hi=16, integer=True),
                                       max_length=number(max_length, "max_length", lo=5, hi=1024, integer=True),
                                       early_stopping=bool(early_stopping))
    if fallback not in FALLBACKS:
        raise ValueError(f"fallback must be one of {', '.join(FALLBACKS)}")
    lead3 = bart.lead_n(doc, 3).text
    progress(0.05, desc="Loading the summarizer (the first load of the offline model takes ~20 s)")
    try:
        m = get_model(TASK)
    except ModelUnavailable as exc:
        s, how = extractive(doc, fallback)
        yield s.text, (f"**Extractive fallback** ({how}) — not BART. {exc} Generation settings do not apply "
                       "to an extractive summary."), lead3
        return
    progress(0.3, desc="Generating the summary")
    for summary, finished in generate_streaming(m, doc, settings):
        if not finished:
            words = len(summary.split())
            yield summary, f"_Writing… {words} word{'s' * (words != 1)} so far (beam search: the leading beam)._", lead3
    if problem := bart.generation_problem(summary):  # never shown as a summary: say so, show the extractive one
        s, how = extractive(doc, fallback)
        yield s.text, (f"**No abstractive summary**: {m.label} failed — {problem}. Shown instead: the "
                       f"**extractive fallback** ({how}), not BART."), lead3
        return
    note = bart.summarizer_note(m.kind, default_manifest().task(TASK).hub)
    if m.kind == "causal-lm":
        how = (f"prompted with the document's first 400 words; beam search with num_beams={settings.num_beams}, "
               f"at most {settings.max_length} new tokens (max_length), no sampling")
    else:
        how = (f"beam search with num_beams={settings.num_beams}, max_length={settings.max_length}, "
               f"early_stopping={settings.early_stopping}")
    yield summary, f"Abstractive summary by {m.label} — {note}: {how}.", lead3


@safe
def compare_summarization(doc: str, num_beams: float, max_length: float, progress=gr.Progress()):
    """The same document through every summarizer here, side by side with latency and size (public API
    `compare_summarization`): the neural summarizer the resolver serves (facebook/bart-large-cnn online; offline
    SmolLM2-135M-Instruct), Lead-3 (the first three sentences, the standard news baseline) and the MiniLM centroid
    extractor (the three sentences closest to the document's embedding centroid).

    Args:
        doc: the document to summarize.
        num_beams: beam size of the neural summarizer (1–8).
        max_length: longest neural summary in tokens (10–300).

    Returns: a table (method, summary, words, latency, parameters, size on disk) and a note (markdown)."""
    import time

    doc = text(doc, "Document", max_chars=bart.MAX_DOC_CHARS)
    settings = bart.GenerationSettings(num_beams=number(num_beams, "num_beams", lo=1, hi=16, integer=True),
                                       max_length=number(max_length, "max_length", lo=5, hi=1024, integer=True),
                                       early_stopping=True)
    rows, notes = [], []

    def row(method: str, summary: str, seconds: float, params: float | None, size: int | None) -> dict:
        problem = bart.generation_problem(summary)
        return {"method": method, "summary": f"(no summary: {problem})" if problem else summary,
                "words": None if problem else len(summary.split()),
                "latency (s, one run)": round(seconds, 3), "parameters (M)": params,
                "size on disk (MB)": round(size / 2**20, 1) if size else None}

    progress(0.05, desc="Loading the summarizer")
    try:
        m = get_model(TASK)
    except ModelUnavailable as exc:
        notes.append(f"- no neural summarizer can serve here: {exc}")
    else:
        progress(0.3, desc="Generating")
        t0 = time.perf_counter()
        summary = bart.summarize_with(m, [doc], settings=settings)[0]
        params = sum(p.numel() for p in m.model.parameters()) / 1e6 if hasattr(m.model, "parameters") else None
        rows.append(row(f"{m.resolution.name} ({m.kind})", summary, time.perf_counter() - t0,
                        round(params, 1) if params else None, weights_size(m.resolution.location) or None))
        notes.append(f"- **neural**: {m.label} — {bart.summarizer_note(m.kind, default_manifest().task(TASK).hub)}")
    t0 = time.perf_counter()
    lead = bart.lead_n(doc, 3).text
    rows.append(row("Lead-3 (extractive)", lead, time.perf_counter() - t0, 0.0, None))
    progress(0.8, desc="Centroid extractor")
    p = get_packaged()
    t0 = time.perf_counter()
    centroid = bart.centroid_summary(doc, p.model, p.tokenizer, n=3).text
    rows.append(row("MiniLM centroid (extractive)", centroid, time.perf_counter() - t0,
                    round(sum(q.numel() for q in p.model.parameters()) / 1e6, 1), None))
    notes.append("- **Lead-3**: no model; **centroid**: the packaged all-MiniLM-L6-v2 embeds each sentence")
    md = ("Latency of one run each, measured now on this server (the neural summarizer's first call also loads "
          "it). ROUGE of each on CNN/DM and XSum is on the Leaderboard.\n\n" + "\n".join(notes))
    return pd.DataFrame(rows), md


def build(spec, tab) -> None:
    with gr.Tab("Noising explorer"):
        gr.Markdown("BART's pretraining corrupts a document and trains the decoder to restore it (§2.2). "
                    "Tokens here are words; a span of text infilling has length ~ Poisson(λ) and becomes ONE `<mask>`.")
        doc = gr.Textbox(label="Document", lines=5, value=EXAMPLE)
        with gr.Row():
            permute = gr.Checkbox(label="Sentence permutation", value=True)
            rotate = gr.Checkbox(label="Document rotation", value=False)
        with gr.Row():
            mask_on = gr.Checkbox(label="Token masking", value=False)
            mask_ratio = gr.Slider(0, 1, value=0.15, step=0.05, label="masking ratio")
            delete_on = gr.Checkbox(label="Token deletion", value=False)
            delete_ratio = gr.Slider(0, 1, value=0.15, step=0.05, label="deletion ratio")
        with gr.Row():
            infill_on = gr.Checkbox(label="Text infilling", value=True)
            infill_ratio = gr.Slider(0, 1, value=0.3, step=0.05, label="infilling ratio (paper: 0.3)")
            lam = gr.Slider(0.5, 10, value=3.0, step=0.5, label="Poisson λ (paper: 3)")
            seed = gr.Number(value=0, step=1, label="Seed")
        btn = action("Corrupt")
        original = gr.HighlightedText(label="Original: what happened to each token", combine_adjacent=False,
                                      visible=False)
        corrupted = gr.HighlightedText(label="Corrupted encoder input", combine_adjacent=False, visible=False)
        stats = gr.Markdown(visible=False)
        btn.click(noise, [doc, permute, rotate, mask_on, mask_ratio, delete_on, delete_ratio, infill_on, infill_ratio,
                          lam, seed], [original, corrupted, stats], api_name="bart_noise")
    with gr.Tab("Summarization"):
        s_doc = gr.Textbox(label="Document", lines=8, value=EXAMPLE)
        with gr.Row():
            beams = gr.Slider(1, 8, value=2, step=1, label="num_beams")
            max_len = gr.Slider(10, 300, value=100, step=10, label="max_length")
            early = gr.Checkbox(value=True, label="early_stopping")
            fallback = gr.Radio(list(FALLBACKS), value=FALLBACKS[0], label="Offline fallback (extractive)")
        s_btn = action("Summarize")
        with gr.Row():
            summary = gr.Textbox(label="Summary", lines=4, visible=False)
            lead3 = gr.Textbox(label="Lead-3 (extractive baseline: the first three sentences)", lines=4,
                               visible=False)
        s_md = gr.Markdown(visible=False)
        s_btn.click(summarize, [s_doc, beams, max_len, early, fallback], [summary, s_md, lead3],
                    api_name="summarize", concurrency_limit=1)
        with gr.Accordion("Compare every summarizer here on this document (latency, size)", open=False):
            c_btn = action("Compare summarizers", variant="secondary")
            c_df = gr.Dataframe(label="Same document, each summarizer", visible=False, wrap=True)
            c_md = gr.Markdown(visible=False)
            c_btn.click(compare_summarization, [s_doc, beams, max_len], [c_df, c_md], api_name="compare_summarization",
                        concurrency_limit=1)
