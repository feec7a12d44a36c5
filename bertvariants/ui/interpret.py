"""Interpret tab: the attention of every layer and head of a served transformer, with rollout and flow (public API
`attention`), the saliency of a served classifier's prediction per token (`saliency`), how faithful each saliency
method is (`faithfulness`), and a masked LM's own head read off every layer (`mlm_lens`)."""

from __future__ import annotations

import gradio as gr

from ..checks import number, text
from .. import interpret as ip
from .. import interpret_views as iv
from ..attention import PARTS
from ..generation_attribution import DEFAULT_NEW_TOKENS, MAX_NEW_TOKENS
from ..mlm_lens import DEFAULT_TOP_K, MAX_TOP_K
from ..rollout import METHODS
from ..saliency import BASELINES, DEFAULT_STEPS, FOILS, MAX_STEPS, RULES
from .bart import EXAMPLE as DOCUMENT
from .common import action, in_place, safe
from .zerogpu import on_gpu


def _attention_inputs(sentence, layer, head) -> tuple[str, int, int]:
    return (text(sentence, "Sentence", max_chars=ip.MAX_CHARS),
            number(layer, "Layer", lo=1, hi=ip.MAX_LAYERS, integer=True),
            number(head, "Head", lo=1, hi=ip.MAX_HEADS, integer=True))


@safe
def attention(model: str, sentence: str, layer: float, head: float, part: str, view: str = "attention"):
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
        view: "attention" (the chosen head), "rollout" or "flow" (Abnar & Zuidema 2020: the heads' mean with the
            residual, 0.5·A + 0.5·I, followed back to the input through the chosen layer; rollout multiplies the
            layers' matrices, flow solves a max-flow per token pair, at most 40 tokens).

    Returns:
        A markdown summary, the chosen head's (or the rollout / flow) heatmap, the all-heads overview, and the PNG,
        SVG and HTML files.
    """
    sentence, layer, head = _attention_inputs(sentence, layer, head)
    view = ip.attention_view(model, sentence, layer=layer, head=head, part=part, method=view)
    return view.summary, view.head_figure, view.overview_figure, [str(p) for p in view.files]


@safe
def attention_page(model: str, sentence: str, layer: float, head: float, part: str, view: str = "attention"):
    """The page's redraw: layer and head clamped to the chosen model's size, the selectors' ranges set to it."""
    sentence, layer, head = _attention_inputs(sentence, layer, head)
    view = ip.attention_view(model, sentence, layer=layer, head=head, part=part, clamp=True, method=view)
    return (view.summary, view.head_figure, view.overview_figure, [str(p) for p in view.files],
            gr.update(maximum=view.maps.layers, value=view.layer), gr.update(maximum=view.maps.heads, value=view.head))


@safe
def saliency(model: str, sentence: str, steps: float, baseline: str, rule: str, contrast: str = "none"):
    """Which tokens a served classifier's prediction rests on: gradient × input, integrated gradients, SmoothGrad.

    Attributes P(predicted class) to the token embeddings — or, with a contrast class, the logit difference
    "why the prediction rather than that class" (Yin & Neubig 2022). Integrated gradients (Sundararajan et al.
    2017, §3 eq. 1) integrates the gradient along the straight path from a baseline x' to the input x with m steps
    (§5 eq. 3); completeness says Σ IG = F(x) − F(x'), and the summary reports the gap. SmoothGrad (Smilkov et al.
    2017) averages the gradient over 20 noisy copies of the input, times the input. Works for the BERT classifiers
    and for the BiLSTM student (through its embedding layer).

    Args:
        model: the served classifier, named by its spaces.yml task: "distillation-teacher" (SST-2),
            "distillation-student" (the BiLSTM student) or "clinical-classifier".
        sentence: the text, at most 1,000 characters and 128 tokens.
        steps: m, the number of integration steps, 1 to 300.
        baseline: "pad" ([PAD] embeddings at every word) or "zero" (zero vectors); [CLS] and [SEP] are kept.
        rule: "trapezoid" or "riemann" (the paper's right Riemann sum).
        contrast: "none" (attribute P(predicted class)), "runner-up" (the second most probable class) or a class
            name, e.g. "negative": attribute logit(predicted) − logit(contrast).

    Returns:
        A markdown summary (predicted class, its probability, the completeness gap), gradient × input, integrated
        gradients and SmoothGrad per token (scaled to [-1, 1]; positive raises the attributed output), and the
        table of raw scores.
    """
    sentence = text(sentence, "Sentence", max_chars=ip.MAX_CHARS)
    steps = number(steps, "Integration steps", lo=1, hi=MAX_STEPS, integer=True)
    view = ip.saliency_view(model, sentence, steps=steps, baseline=baseline, rule=rule, contrast=contrast)
    return view.summary, view.gradient_x_input, view.integrated_gradients, view.smoothgrad, view.table


@safe
def faithfulness(model: str, sentence: str, steps: float, baseline: str):
    """How faithful each saliency method is on one sentence: deletion and insertion curves, and AOPC.

    Removes the words one at a time in each method's order, most relevant first (their embedding replaced by the
    baseline's), and records P(predicted class): AOPC = the mean drop (Samek et al. 2017 eq. 12; higher = more
    faithful), the areas under the deletion (lower = faithful) and insertion (higher = faithful) curves (Petsiuk
    et al. 2018). Compared for gradient × input, integrated gradients, SmoothGrad, [CLS]'s last-layer attention
    and its rollout, and the mean of 10 seeded random orders (the chance level).

    Args:
        model: the served classifier, named by its spaces.yml task: "distillation-teacher" (SST-2),
            "distillation-student" (the BiLSTM student; no attention rows) or "clinical-classifier".
        sentence: the text, at most 1,000 characters and 128 tokens.
        steps: m, integrated gradients' number of steps, 1 to 300.
        baseline: "pad" or "zero": what a removed word's embedding becomes (and IG's baseline).

    Returns:
        A markdown summary (the most faithful method, its AOPC against random), the curves, the table of AOPC and
        areas per method, and the curves as PNG, SVG and HTML files.
    """
    sentence = text(sentence, "Sentence", max_chars=ip.MAX_CHARS)
    steps = number(steps, "Integration steps", lo=1, hi=MAX_STEPS, integer=True)
    if baseline not in BASELINES:
        raise ValueError(f"baseline must be one of {', '.join(BASELINES)}, got {baseline!r}")
    view = iv.faithfulness_view(model, sentence, steps=steps, baseline=baseline)
    return view.summary, view.figure, view.table, [str(p) for p in view.files]


@safe
def mlm_lens(model: str, sentence: str, answer: str, top_k: float):
    """The MLM lens: a masked LM's own prediction head applied after every layer at each [MASK].

    Applies the model's MLM head (its transform, LayerNorm and decoder) to the hidden state after every layer
    (0 = the embeddings) at each mask: the top-k tokens per layer and the rank of the answer, i.e. where in the
    stack the answer appears. The last layer is exactly the model's fill-mask output. Also each token's hidden
    states through the layers, projected to 2-D by one PCA over all layers (token trajectories).

    Args:
        model: the served masked LM, named by its spaces.yml task: "albert-fill-mask" / "roberta-fill-mask" (the
            shipped mlm-dynamic offline; ALBERT / RoBERTa online) or "electra-generator".
        sentence: the text with [MASK] where the model should predict (at most 1,000 characters, 128 tokens).
        answer: the gold token whose rank is followed, e.g. "paris" (one vocabulary token; empty: none).
        top_k: how many tokens per layer, 1 to 20.

    Returns:
        A markdown summary (where the answer enters the top 5), the layer × token heatmap, the trajectories plot,
        the per-layer table, and PNG, SVG and HTML files.
    """
    sentence = text(sentence, "Sentence", max_chars=ip.MAX_CHARS)
    answer = text(answer, "Answer", max_chars=100, allow_empty=True)
    top_k = number(top_k, "top-k", lo=1, hi=MAX_TOP_K, integer=True)
    view = iv.mlm_lens_view(model, sentence, answer=answer, top_k=top_k)
    return view.summary, view.lens_figure, view.trajectory_figure, view.table, [str(p) for p in view.files]


@safe
def summary_attribution(document: str, new_tokens: float):
    """Which source tokens each token of the served summarizer's output rests on.

    Generates a greedy continuation of the document with the summarizer the resolver serves (SmolLM2-135M-Instruct
    prompted to summarize, offline; facebook/bart-large-cnn online) and attributes each generated token's
    probability p(y_t | document, y_<t) to the document's tokens by gradient × input (one backward pass per
    generated token; the instruction's own tokens are left out).

    Args:
        document: the text to summarize (its first 120 words are used; at most 256 source tokens).
        new_tokens: how many tokens to generate and attribute, 1 to 24.

    Returns:
        A markdown summary (the generated text), the generated × source heatmap, a table of each generated token's
        probability and its top three source tokens, and the heatmap as PNG, SVG and HTML files.
    """
    document = text(document, "Document", max_chars=20_000)
    new_tokens = number(new_tokens, "Generated tokens", lo=1, hi=MAX_NEW_TOKENS, integer=True)
    view = iv.generation_view(document, max_new_tokens=new_tokens)
    return view.summary, view.figure, view.table, [str(p) for p in view.files]


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
                "has cross-attention from what it generates to the sentence. **Rollout** and **flow** (Abnar & "
                "Zuidema 2020) follow the heads' mean, with the residual (0.5·A + 0.5·I), back to the input tokens "
                "through the chosen layer. " + _offer_note(offered, "models"))
    with gr.Row():
        model = gr.Dropdown(choices, value=choices[0][1] if choices else None, label="Model", scale=2)
        part = gr.Radio(["auto", *PARTS], value="auto", label="Attention", scale=2)
    sentence = gr.Textbox(label="Sentence (≤ 128 tokens)", value=ip.DEFAULT_SENTENCE)
    with gr.Row():
        layer = gr.Slider(1, ip.MAX_LAYERS, value=ip.DEFAULT_LAYER, step=1, label="Layer")
        head = gr.Slider(1, ip.MAX_HEADS, value=ip.DEFAULT_HEAD, step=1, label="Head")
        method = gr.Radio(list(METHODS), value="attention", label="Show")
    show = action("Show attention")
    summary = gr.Markdown(visible=False)
    with gr.Row():
        head_plot = gr.Plot(label="The chosen head", visible=False)
        overview = gr.Plot(label="All heads", visible=False)
    files = gr.File(label="Download: PNG, SVG, HTML", file_count="multiple", visible=False)
    inputs = [model, sentence, layer, head, part, method]
    show.click(attention, inputs, [summary, head_plot, overview, files], api_name="attention", concurrency_limit=2)
    redraw = in_place(on_gpu(attention_page, "attention"), 6)  # runs the model: on the GPU on ZeroGPU
    outputs = [summary, head_plot, overview, files, layer, head, show.error]
    tab.select(redraw, inputs, outputs, api_visibility="private")  # the default sentence on arrival
    gr.on([model.input, part.input, method.input, layer.release, head.release, sentence.submit], redraw, inputs,
          outputs, api_visibility="private")


def _classifiers_intro(text: str) -> list:
    """The view's explanation (with which classifiers are offered here) above it; returns the choices."""
    offered = ip.offer(ip.SALIENCY_KINDS)
    gr.Markdown(text + _offer_note(offered, "classifiers"))
    return offered.choices()


def _classifier_and_steps(choices: list, steps_label: str) -> tuple[gr.Dropdown, gr.Slider]:
    """The offered classifiers (the first selected) and the integration steps, side by side in a row."""
    model = gr.Dropdown(choices, value=choices[0][1] if choices else None, label="Classifier", scale=2)
    steps = gr.Slider(1, MAX_STEPS, value=DEFAULT_STEPS, step=1, label=steps_label, scale=2)
    return model, steps


def _saliency_view(sub) -> None:
    choices = _classifiers_intro(
        "Which tokens the prediction rests on. **Gradient × input**: x·∂F/∂x at the input (one backward "
        "pass). **Integrated gradients** (Sundararajan et al. 2017): (x − x')·∫₀¹ ∂F(x' + α(x − x'))/∂x dα, "
        "whose sum equals F(x) − F(x') (completeness; the gap shown measures the integration error). "
        "**SmoothGrad** (Smilkov et al. 2017): the gradient averaged over noisy copies, times x. A "
        "**contrast** class attributes logit(predicted) − logit(contrast) instead: why this class rather "
        "than that one. Red raises the attributed output, purple lowers it. ")
    with gr.Row():
        model, steps = _classifier_and_steps(choices, "Integration steps m")
    sentence = gr.Textbox(label="Sentence (≤ 128 tokens)", value=ip.DEFAULT_REVIEW)
    with gr.Row():
        baseline = gr.Radio(list(BASELINES), value="pad", label="Baseline x' at the words")
        rule = gr.Radio(list(RULES), value="trapezoid", label="Integration rule")
        contrast = gr.Dropdown(list(FOILS), value="none", allow_custom_value=True,
                               label="Contrast class (or type a class name)")
    run = action("Explain")
    summary = gr.Markdown(visible=False)
    gxi = gr.HighlightedText(label="Gradient × input", show_legend=False, visible=False)
    ig = gr.HighlightedText(label="Integrated gradients", show_legend=False, visible=False)
    sg = gr.HighlightedText(label="SmoothGrad × input", show_legend=False, visible=False)
    table = gr.Dataframe(label="Scores per token", interactive=False, visible=False)
    inputs, outputs = [model, sentence, steps, baseline, rule, contrast], [summary, gxi, ig, sg, table]
    run.click(saliency, inputs, outputs, api_name="saliency", concurrency_limit=2)
    redraw = in_place(on_gpu(saliency, "saliency"), 5)
    sub.select(redraw, inputs, [*outputs, run.error], api_visibility="private")  # the default sentence on arrival
    gr.on([model.input, baseline.input, rule.input, contrast.input, steps.release], redraw, inputs,
          [*outputs, run.error], api_visibility="private")


def _faithfulness_view() -> None:
    choices = _classifiers_intro(
        "Is an explanation faithful to the model? Remove the words one at a time in the method's order, "
        "most relevant first, and watch P(predicted class) (**deletion**: a faithful order makes it fall "
        "fast; **AOPC**, Samek et al. 2017, is the mean drop), or insert them into the empty input "
        "(**insertion**: it should rise fast; Petsiuk et al. 2018). Every method against a random order "
        "(10 seeded permutations: chance) and attention as an attribution. ")
    with gr.Row():
        model, steps = _classifier_and_steps(choices, "Integration steps m (IG)")
        baseline = gr.Radio(list(BASELINES), value="pad", label="A removed word becomes")
    sentence = gr.Textbox(label="Sentence (≤ 128 tokens)", value=iv.FAITHFULNESS_EXAMPLES[0])
    gr.Examples([[e] for e in iv.FAITHFULNESS_EXAMPLES], [sentence], label="Examples")
    run = action("Check faithfulness")
    summary = gr.Markdown(visible=False)
    plot = gr.Plot(show_label=False, visible=False)  # the figure has its own title
    table = gr.Dataframe(label="AOPC and areas per method", interactive=False, visible=False, wrap=True)
    files = gr.File(label="Download: PNG, SVG, HTML", file_count="multiple", visible=False)
    run.click(faithfulness, [model, sentence, steps, baseline], [summary, plot, table, files], api_name="faithfulness",
              concurrency_limit=2)


def _lens_view() -> None:
    offered = ip.offer(iv.LENS_KINDS)
    choices = offered.choices()
    gr.Markdown("Where in the stack does the answer appear? The masked LM's **own MLM head** (transform, LayerNorm, "
                "decoder) applied to the hidden state after every layer at each [MASK]: the top-k per layer and the "
                "answer's rank. The last layer is the model's fill-mask output. Below, each token's hidden states "
                "through the layers in one PCA plane. " + _offer_note(offered, "masked LMs"))
    with gr.Row():
        model = gr.Dropdown(choices, value=choices[0][1] if choices else None, label="Masked LM", scale=2)
        answer = gr.Textbox(label="Answer to follow (one token)", value=iv.DEFAULT_LENS_ANSWER, scale=1)
        top_k = gr.Slider(1, MAX_TOP_K, value=DEFAULT_TOP_K, step=1, label="top-k", scale=1)
    sentence = gr.Textbox(label="Sentence with [MASK]", value=iv.DEFAULT_LENS_SENTENCE)
    run = action("Read every layer")
    summary = gr.Markdown(visible=False)
    with gr.Row():
        lens_plot = gr.Plot(show_label=False, visible=False)  # the figures have their own titles
        traj_plot = gr.Plot(show_label=False, visible=False)
    table = gr.Dataframe(label="Top-k per layer", interactive=False, visible=False, wrap=True)
    files = gr.File(label="Download: PNG, SVG, HTML", file_count="multiple", visible=False)
    run.click(mlm_lens, [model, sentence, answer, top_k], [summary, lens_plot, traj_plot, table, files],
              api_name="mlm_lens", concurrency_limit=2)


def _generation_view() -> None:
    gr.Markdown("For the summarizer (the BART tab's model): each token it generates, and which document tokens its "
                "probability rests on — **gradient × input** of p(token | document, tokens so far) for every "
                "document token, one backward pass per generated token (inseq's \"input × gradient\" for "
                "generators). The continuation is greedy, so it can differ from the BART tab's beam search.")
    document = gr.Textbox(label="Document", lines=5, value=DOCUMENT)
    new_tokens = gr.Slider(1, MAX_NEW_TOKENS, value=DEFAULT_NEW_TOKENS, step=1, label="Generated tokens")
    run = action("Attribute the summary")
    summary = gr.Markdown(visible=False)
    plot = gr.Plot(show_label=False, visible=False)
    table = gr.Dataframe(label="Each generated token and its top source tokens", interactive=False, visible=False,
                         wrap=True)
    files = gr.File(label="Download: PNG, SVG, HTML", file_count="multiple", visible=False)
    run.click(summary_attribution, [document, new_tokens], [summary, plot, table, files],
              api_name="summary_attribution", concurrency_limit=1)


def build(spec, tab) -> None:
    with gr.Tab("Attention"):
        _attention_view(tab)
    with gr.Tab("Saliency") as sub:
        _saliency_view(sub)
    with gr.Tab("Faithfulness"):
        _faithfulness_view()
    with gr.Tab("MLM lens"):
        _lens_view()
    with gr.Tab("Summary attribution"):
        _generation_view()
