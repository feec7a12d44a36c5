"""SpanBERT tab: span-masking explorer with the length law, and extractive QA (public APIs below)."""

from __future__ import annotations

import logging
from pathlib import Path

import gradio as gr
import pandas as pd

from evaluation import results

from ..checks import number, text
from .. import spanbert as sp
from ..common import make_generator
from ..serving import get_model, ModelUnavailable, packaged_tokenizer, resolve
from ..qa import answer_questions, highlight_answer, null_threshold_of
from .common import action, claim, explanation, safe

log = logging.getLogger("bertvariants.ui")
TASK = "spanbert-qa"
MAX_CHARS = 5000
MAX_CONTEXT_CHARS = 50_000  # long contexts are fine: the sliding window handles them
MAX_QUESTION_CHARS = 500
EXAMPLE = ("SpanBERT was released in 2019 by researchers at the University of Washington and Facebook AI. "
           "It masks random contiguous spans of complete words instead of individual tokens, and it trains a "
           "span-boundary objective that predicts every token of a masked span from the two tokens at its "
           "boundary. On SQuAD 1.1 and 2.0 it improved over a tuned BERT baseline by several points of F1.")


def served_start() -> str:
    """Which pretrained start the QA model serving here was fine-tuned from, read from its record (a project
    model's ``result.json``), so the span/MLM claim above sits beside what is actually served; "" otherwise."""
    try:
        res = resolve(TASK)
    except ModelUnavailable:
        return ""
    record = Path(res.location) / "result.json"
    if res.source not in ("shipped", "trained") or not record.is_file():
        return ""
    try:
        rec = results.read(record)
        if rec is None:
            raise ValueError("unreadable result record")
        training = rec.training or {}
        base = (training.get("config") or {}).get("base_model") or "the packaged all-MiniLM-L6-v2 (no span pretraining)"
        return (f"This slot serves `{rec.model}`: {training.get('steps', '?')} SQuAD steps fine-tuned from {base}; "
                f"{rec.task} {rec.split} {rec.primary_metric.upper()} **{float(rec.score):.2f}** (harness).")
    except (OSError, ValueError, KeyError, TypeError) as exc:
        log.warning("spanbert-qa record %s: %s", record, exc)
        return ""


def served_null_threshold() -> float:
    """The null threshold chosen for the QA model serving here (its ``qa_decoding.json``: chosen on held-out
    unanswerable Wikipedia pairs), the slider's default; 0 (the plain §4.3 rule) when it has none."""
    try:
        return null_threshold_of(resolve(TASK).location)
    except (ModelUnavailable, ValueError) as exc:
        log.warning("spanbert-qa null threshold: %s", exc)
        return 0.0


@safe
def spans(passage: str, seed, p, max_span):
    """Span-mask a text and compare span lengths with the clipped geometric law (Joshi et al. 2020 §3.1; public API
    `spanbert_spans`).

    Args:
        passage: the text to mask.
        seed: masking seed.
        p: the geometric distribution's p (0.05–1; the paper uses 0.2).
        max_span: longest span in words (1–30; the paper clips at 10).

    Returns: a summary (markdown), the text with masked spans highlighted, and a histogram of span lengths."""
    text(passage, "Text", max_chars=MAX_CHARS)
    seed = number(seed, "seed", lo=0, hi=2**31 - 1, integer=True)
    config = sp.SpanMaskingConfig(p=number(p, "p", lo=0.05, hi=1.0), max_span=number(max_span, "max span", lo=1,
                                                                                       hi=30, integer=True))
    tok = packaged_tokenizer()  # fast WordPiece: word ids give whole-word spans
    masking = sp.span_mask_text(passage, tok, generator=make_generator(seed), config=config)
    tokens = tok.convert_ids_to_tokens(tok(passage.strip())["input_ids"])
    # the law, estimated from many draws with the same seed (the text alone has too few spans for a histogram)
    sampled = sp.sample_span_lengths(5000, generator=make_generator(seed), p=config.p, max_span=config.max_span)
    n_sel = int(masking.selected.sum())
    eligible = sum(1 for w in tok(passage.strip()).word_ids() if w is not None)
    md = (f"{len(masking.spans)} spans, lengths in words {masking.span_words}; {n_sel} of {eligible} tokens masked "
          f"({n_sel / max(eligible, 1):.1%}, budget 15%). Analytic mean span length: "
          f"**{sp.mean_span_length(p=config.p, max_span=config.max_span):.3f}** words; 5,000 draws: "
          f"{sampled.double().mean().item():.3f}.")
    return md, sp.highlight_spans(tokens, masking), sp.length_histogram_figure(sampled.tolist(), p=config.p,
                                                                                max_span=config.max_span)


@safe
def qa(question: str, context: str, null_threshold, stride):
    """Extractive question answering with a sliding window and SQuAD 2.0's no-answer rule (Devlin et al. 2019 §4.3;
    public API `spanbert_qa`).

    Args:
        question: the question.
        context: the passage that may contain the answer.
        null_threshold: answer "no answer" when the null score beats the best span by more than this (−100–100).
        stride: overlap between consecutive 384-token windows (16–256 tokens).

    Returns: the answer with its scores (markdown), the context with the answer highlighted, the n-best spans."""
    text(question, "Question", max_chars=MAX_QUESTION_CHARS)
    if not (context or "").strip():
        raise ValueError("the question has no context: paste the passage in which to find the answer")
    text(context, "Context", max_chars=MAX_CONTEXT_CHARS)
    threshold = number(null_threshold, "null-score threshold", lo=-100, hi=100)
    stride = number(stride, "stride", lo=16, hi=256, integer=True)
    m = get_model(TASK)
    res = answer_questions(m.model, m.tokenizer, [question], [context], max_length=384, stride=stride,
                              null_threshold=threshold)[0]
    if res.is_impossible:
        md = (f"**No answer** (SQuAD 2.0): the null score {res.null_score:.2f} beats the best span "
              f"({res.best_span_score:.2f}) by more than the threshold {threshold:g}.")
    else:
        md = (f"**{res.answer}** · score {res.score:.2f} (start + end logits), P = {res.probability:.2f} among the "
              f"n-best and the null answer · null score {res.null_score:.2f}")
    md += f"\n\n{res.num_windows} window(s) of 384 tokens, stride {stride} · served by {m.label}"
    nbest = pd.DataFrame([{"answer": c["text"], "score": round(c["score"], 3), "start": c["start_char"]}
                          for c in res.candidates[:10]])
    return md, highlight_answer(res), nbest


def build(spec, tab) -> None:
    with gr.Tab("Span masking"):
        with explanation("How span masking works (§3.1, §3.2)"):
            gr.Markdown("§3.1: span lengths ~ Geo(0.2) clipped at 10 (mean 3.8 words), whole words, 15% budget, "
                        "one 80/10/10 decision per span. §3.2: the span-boundary objective predicts each masked token "
                        "from x_{s-1}, x_{e+1} and its position in the span.")
        passage = gr.Textbox(label="Text", lines=4, value=EXAMPLE)
        with gr.Row():
            seed = gr.Number(value=0, precision=0, label="seed")
            p = gr.Slider(0.05, 1.0, value=0.2, step=0.05, label="geometric p")
            max_span = gr.Slider(1, 30, value=10, step=1, label="max span (words)")
        s_btn = action("Mask spans")
        s_md = gr.Markdown(visible=False)
        s_hl = gr.HighlightedText(label="Masked spans", show_legend=False, visible=False)
        s_plot = gr.Plot(visible=False)
        s_btn.click(spans, [passage, seed, p, max_span], [s_md, s_hl, s_plot], api_name="spanbert_spans")
    with gr.Tab("Question answering"):
        with explanation("What was measured here, and the served model's start"):
            claim("Span vs token masking, then SQuAD (SpanBERT §5)",
                  "SpanBERT's claim (§5: span masking + SBO pretraining helps extractive QA)")
            gr.Markdown(served_start())
        question = gr.Textbox(label="Question", value="Who released SpanBERT?")
        context = gr.Textbox(label="Context", lines=6, value=EXAMPLE)
        tau = served_null_threshold()
        with gr.Row():
            threshold = gr.Slider(min(-10.0, tau - 5), max(10.0, tau + 5), value=tau, step=0.01,
                                  label="null-score threshold (SQuAD 2.0; default: chosen for the served model)")
            stride = gr.Slider(16, 256, value=128, step=16, label="sliding-window stride (tokens)")
        q_btn = action("Answer")
        q_md = gr.Markdown(visible=False)
        q_hl = gr.HighlightedText(label="Answer in context", visible=False)
        q_df = gr.Dataframe(label="n-best spans", visible=False)
        q_btn.click(qa, [question, context, threshold, stride], [q_md, q_hl, q_df], api_name="spanbert_qa")
