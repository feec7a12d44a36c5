"""Interpret tab: the attention of every layer and head of a served transformer (public API `attention`), and the
saliency of a served classifier's prediction per token (public API `saliency`)."""

from __future__ import annotations

import gradio as gr

from .. import interpret as ip
from ..attention import PARTS
from ..saliency import BASELINES, DEFAULT_STEPS, MAX_STEPS, RULES
from .common import action, in_place, number, safe, text


def _attention_inputs(sentence, layer, head) -> tuple[str, int, int]:
    return (text(sentence, "Sentence", max_chars=ip.MAX_CHARS),
            number(layer, "Layer", lo=1, hi=ip.MAX_LAYERS, integer=True),
            number(head, "Head", lo=1, hi=ip.MAX_HEADS, integer=True))


@safe
def attention(model: str, sentence: str, layer: float, head: float, part: str):
    """Attention weights of a served transformer on one sentence, for every layer and head.

    Runs the sentence through the model with eager attention and returns the chosen head's token × token matrix
    A = softmax(Q·Kᵀ/√d) (Vaswani et al. 2017, §3.2.1; row = attending token, each row sums to 1), an overview of
    every head (entropy and mean attention distance per head), and both as PNG, SVG and HTML files.

    Args:
        model: the served model, named by a spaces.yml task it serves: "similarity" (the packaged
            all-MiniLM-L6-v2), "distillation-teacher", "clinical-classifier", "spanbert-qa", "albert-fill-mask",
            "electra-discriminator", "summarization" (the decoder standing in for BART offline), ...
        sentence: the text, at most 1,000 characters and 128 tokens.
        layer: the layer, counted from 1.
        head: the attention head, counted from 1.
        part: "auto" (the model's main attention), "encoder self-attention", "decoder self-attention" or
            "cross-attention" (encoder-decoder models, after a short greedy generation).

    Returns:
        A markdown summary, the chosen head's heatmap, the all-heads overview, and the PNG, SVG and HTML files.
    """
    sentence, layer, head = _attention_inputs(sentence, layer, head)
    view = ip.attention_view(model, sentence, layer=layer, head=head, part=part)
    return view.summary, view.head_figure, view.overview_figure, [str(p) for p in view.files]


@safe
def attention_page(model: str, sentence: str, layer: float, head: float, part: str):
    """The page's redraw: layer and head clamped to the chosen model's size, the selectors' ranges set to it."""
    sentence, layer, head = _attention_inputs(sentence, layer, head)
    view = ip.attention_view(model, sentence, layer=layer, head=head, part=part, clamp=True)
    return (view.summary, view.head_figure, view.overview_figure, [str(p) for p in view.files],
            gr.update(maximum=view.maps.layers, value=view.layer), gr.update(maximum=view.maps.heads, value=view.head))


@safe
def saliency(model: str, sentence: str, steps: float, baseline: str, rule: str):
    """Which tokens a served classifier's prediction rests on: gradient × input and integrated gradients.

    Attributes P(predicted class) to the token embeddings. Integrated gradients (Sundararajan et al. 2017, §3 eq. 1)
    integrates the gradient along the straight path from a baseline x' to the input x with m steps (§5 eq. 3);
    completeness says Σ IG = F(x) − F(x'), and the summary reports the gap. Works for the BERT classifiers and for
    the BiLSTM student (through its embedding layer).

    Args:
        model: the served classifier, named by its spaces.yml task: "distillation-teacher" (SST-2),
            "distillation-student" (the BiLSTM student) or "clinical-classifier".
        sentence: the text, at most 1,000 characters and 128 tokens.
        steps: m, the number of integration steps, 1 to 300.
        baseline: "pad" ([PAD] embeddings at every word) or "zero" (zero vectors); [CLS] and [SEP] are kept.
        rule: "trapezoid" or "riemann" (the paper's right Riemann sum).

    Returns:
        A markdown summary (predicted class, its probability, the completeness gap), gradient × input and
        integrated gradients per token (scaled to [-1, 1]; positive raises the predicted class's probability), and
        the table of raw scores.
    """
    sentence = text(sentence, "Sentence", max_chars=ip.MAX_CHARS)
    steps = number(steps, "Integration steps", lo=1, hi=MAX_STEPS, integer=True)
    view = ip.saliency_view(model, sentence, steps=steps, baseline=baseline, rule=rule)
    return view.summary, view.gradient_x_input, view.integrated_gradients, view.table


def _offer_note(offer: ip.Offer, what: str) -> str:
    lines = [f"_{len(offer.models)} served {what} here, each named by the tasks it serves._"]
    if offer.excluded:
        lines += ["", "Not offered:", *offer.excluded]
    return "\n".join(lines)


def _attention_view(tab) -> None:
    offered = ip.offer(ip.ATTENTION_KINDS, attention=True)
    choices = offered.choices()
    gr.Markdown("Every layer and head: **A = softmax(Q·Kᵀ/√d)**, one row per attending token (Vaswani et al. 2017 "
                "§3.2.1). Encoders read the whole sentence; a decoder's attention is causal; an encoder-decoder also "
                "has cross-attention from what it generates to the sentence. " + _offer_note(offered, "models"))
    with gr.Row():
        model = gr.Dropdown(choices, value=choices[0][1] if choices else None, label="Model", scale=2)
        part = gr.Radio(["auto", *PARTS], value="auto", label="Attention", scale=2)
    sentence = gr.Textbox(label="Sentence (≤ 128 tokens)", value=ip.DEFAULT_SENTENCE)
    with gr.Row():
        layer = gr.Slider(1, ip.MAX_LAYERS, value=ip.DEFAULT_LAYER, step=1, label="Layer")
        head = gr.Slider(1, ip.MAX_HEADS, value=ip.DEFAULT_HEAD, step=1, label="Head")
    show = action("Show attention")
    summary = gr.Markdown(visible=False)
    with gr.Row():
        head_plot = gr.Plot(label="The chosen head", visible=False)
        overview = gr.Plot(label="All heads", visible=False)
    files = gr.File(label="Download: PNG, SVG, HTML", file_count="multiple", visible=False)
    inputs = [model, sentence, layer, head, part]
    show.click(attention, inputs, [summary, head_plot, overview, files], api_name="attention", concurrency_limit=2)
    redraw = in_place(attention_page, 6)
    outputs = [summary, head_plot, overview, files, layer, head, show.error]
    tab.select(redraw, inputs, outputs, api_visibility="private")  # the default sentence on arrival
    gr.on([model.input, part.input, layer.release, head.release, sentence.submit], redraw, inputs, outputs,
          api_visibility="private")


def _saliency_view(sub) -> None:
    offered = ip.offer(ip.SALIENCY_KINDS)
    choices = offered.choices()
    gr.Markdown("Which tokens the prediction rests on. **Gradient × input**: x·∂F/∂x at the input (one backward "
                "pass). **Integrated gradients** (Sundararajan et al. 2017): (x − x')·∫₀¹ ∂F(x' + α(x − x'))/∂x dα, "
                "whose sum equals F(x) − F(x') (completeness; the gap shown measures the integration error). Red "
                "raises the predicted class's probability, purple lowers it. " + _offer_note(offered, "classifiers"))
    with gr.Row():
        model = gr.Dropdown(choices, value=choices[0][1] if choices else None, label="Classifier", scale=2)
        steps = gr.Slider(1, MAX_STEPS, value=DEFAULT_STEPS, step=1, label="Integration steps m", scale=2)
    sentence = gr.Textbox(label="Sentence (≤ 128 tokens)", value=ip.DEFAULT_REVIEW)
    with gr.Row():
        baseline = gr.Radio(list(BASELINES), value="pad", label="Baseline x' at the words")
        rule = gr.Radio(list(RULES), value="trapezoid", label="Integration rule")
    run = action("Explain")
    summary = gr.Markdown(visible=False)
    gxi = gr.HighlightedText(label="Gradient × input", show_legend=False, visible=False)
    ig = gr.HighlightedText(label="Integrated gradients", show_legend=False, visible=False)
    table = gr.Dataframe(label="Scores per token", interactive=False, visible=False)
    inputs, outputs = [model, sentence, steps, baseline, rule], [summary, gxi, ig, table]
    run.click(saliency, inputs, outputs, api_name="saliency", concurrency_limit=2)
    redraw = in_place(saliency, 4)
    sub.select(redraw, inputs, [*outputs, run.error], api_visibility="private")  # the default sentence on arrival
    gr.on([model.input, baseline.input, rule.input, steps.release], redraw, inputs, [*outputs, run.error],
          api_visibility="private")


def build(spec, tab) -> None:
    with gr.Tab("Attention"):
        _attention_view(tab)
    with gr.Tab("Saliency") as sub:
        _saliency_view(sub)
