"""The Interpret tab's library: which served models each view offers, and the two views.

- **Attention** (:func:`attention_view`): every layer × head of a served transformer on one sentence
  (:mod:`bertvariants.attention`), the chosen head as a token × token heatmap, an overview of all heads (entropy
  and mean distance per head), and the same figures as PNG / SVG / HTML files (:mod:`bertvariants.figure_files`).
- **Saliency** (:func:`saliency_view`): gradient × input and integrated gradients of a served classifier's
  prediction per token, with IG's completeness gap (:mod:`bertvariants.saliency`).

The models come from the one resolver: every task of spaces.yml whose kind the view can read, resolved here and
de-duplicated by checkpoint (the packaged MiniLM serves three tasks offline: it is offered once). A model is
named by the first task it serves; nothing here names a checkpoint path.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from . import attention as att
from . import checks
from . import rollout as ro
from . import saliency as sal
from .common import wordpiece_piece
from .figure_files import Panel, write_files
from .serving import ModelUnavailable, default_manifest, get_model, resolve
from .serving.formats import attention_note, recorded_architecture
from .serving.manifest import KINDS, PACKAGED_HUB_ID, Manifest

ATTENTION_KINDS = tuple(KINDS)  # every manifest kind is a transformers model, except a BiLSTM checkpoint (below)
SALIENCY_KINDS = ("sequence-classification",)
MAX_CHARS = 1000  # and at most att.MAX_TOKENS / sal.MAX_TOKENS tokens
MAX_LAYERS, MAX_HEADS = 64, 64  # the selectors' bounds; each model's own sizes are checked per request
DEFAULT_SENTENCE = "The animal didn't cross the street because it was too tired."
DEFAULT_REVIEW = "The plot is thin, but the performances are wonderful."
DEFAULT_LAYER, DEFAULT_HEAD = 6, 12  # MiniLM: its strongest link in the default sentence is "it" → "animal"


# --------------------------------------------------------------------------------------------
# Which served models a view offers
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Served:
    """A model serving some tasks here; ``name`` (its first task) is what the views take."""

    name: str
    tasks: tuple[str, ...]
    model: str  # short checkpoint name
    architecture: str  # '' when the checkpoint does not say (a GGUF in a pip package, a Hub id)

    @property
    def label(self) -> str:
        return f"{self.model} — {', '.join(self.tasks)}"


@dataclass(frozen=True)
class Offer:
    """What a view can offer here: the models, and the ones it cannot read (with why)."""

    models: tuple[Served, ...]
    excluded: tuple[str, ...]  # one markdown line each

    def choices(self) -> list[tuple[str, str]]:
        return [(m.label, m.name) for m in self.models]

    def pick(self, name) -> Served:
        for m in self.models:
            if name == m.name or name in m.tasks:
                return m
        known = ", ".join(m.name for m in self.models) or "none"
        raise ValueError(f"unknown model {name!r}: choose one of {known}")


def _short(location: str, source: str, model_name: str, manifest: Manifest) -> str:
    model_name = model_name or (PACKAGED_HUB_ID if source == "packaged" else "")
    if model_name:
        return model_name.rsplit("/", 1)[-1]
    if source.startswith("hub"):
        return location
    path = Path(location)
    try:
        return str(path.relative_to(manifest.models_dir))
    except ValueError:
        return path.name


def offer(kinds: tuple[str, ...], *, attention: bool = False, manifest: Manifest | None = None) -> Offer:
    """The served models of ``kinds``, one per checkpoint, in manifest order (resolved, not loaded); with
    ``attention``, a checkpoint without attention layers (the BiLSTM student) is left out, saying why."""
    manifest = manifest or default_manifest()
    groups: dict[str, list] = {}
    excluded = []
    for task in manifest.tasks.values():
        if task.kind not in kinds:
            continue
        try:
            res = resolve(task, manifest)
        except ModelUnavailable as exc:
            excluded.append(f"- `{task.key}`: not available here ({str(exc).split('. ')[0]}).")
            continue
        groups.setdefault(res.location, [res, []])[1].append(task.key)
    models = []
    for location, (res, tasks) in groups.items():
        served = Served(tasks[0], tuple(tasks), _short(location, res.source, res.model_name, manifest),
                        recorded_architecture(location))
        if attention and attention_note(served.architecture):
            excluded.append(f"- `{served.label}`: {att.no_attention_reason(None, served.architecture)}")
            continue
        models.append(served)
    return Offer(tuple(models), tuple(excluded))


def checked_text(text, max_chars: int = MAX_CHARS) -> str:
    return checks.text(text, "the text", max_chars=max_chars, hint="enter a sentence")


# --------------------------------------------------------------------------------------------
# Attention view
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class AttentionView:
    summary: str  # markdown
    head_figure: go.Figure
    overview_figure: go.Figure
    files: list[Path]  # PNG, SVG, HTML
    maps: att.AttentionMaps
    layer: int  # the head shown (from 1)
    head: int
    traced: np.ndarray | None = None  # the rollout / flow matrix shown instead of the head, if one was asked for


def display_tokens(tokens: list[str]) -> list[str]:
    """Tokens as labels: byte-level BPE's Ġ / Ċ and SentencePiece's ▁ shown as the space / newline they stand
    for; position numbers keep repeated tokens apart on the axes."""
    out = []
    for i, t in enumerate(tokens):
        t = t.replace("Ġ", "␣").replace("▁", "␣").replace("Ċ", "⏎")
        out.append(f"{t} ({i})" if tokens.count(tokens[i]) > 1 else t)
    return out


def head_figure(maps: att.AttentionMaps, layer: int, head: int, matrix: np.ndarray | None = None,
                title: str = "") -> go.Figure:
    """The chosen head's attention matrix (or ``matrix``, e.g. a rollout, titled ``title``): row = attending token
    (query), column = attended-to token (key)."""
    a = maps.head(layer, head) if matrix is None else matrix
    rows, cols = display_tokens(maps.query_tokens), display_tokens(maps.key_tokens)
    hover = [[f"{rows[i]} → {cols[j]}: {a[i, j]:.3f}" for j in range(a.shape[1])] for i in range(a.shape[0])]
    fig = go.Figure(go.Heatmap(z=np.round(a, 4), x=list(range(len(cols))), y=list(range(len(rows))),
                               colorscale="Viridis", zmin=0, zmax=float(a.max()), hovertext=hover,
                               hoverinfo="text", colorbar=dict(title=dict(text="weight"), thickness=12)))
    fig.update_xaxes(tickmode="array", tickvals=list(range(len(cols))), ticktext=cols, tickangle=-60,
                     title_text="attended-to token (key)", automargin=True)
    fig.update_yaxes(tickmode="array", tickvals=list(range(len(rows))), ticktext=rows, autorange="reversed",
                     title_text="attending token (query)", automargin=True)
    size = max(len(rows), len(cols))
    fig.update_layout(title=dict(text=title or f"Layer {layer}, head {head}: {maps.part}", font=dict(size=15)),
                      height=int(np.clip(22 * size + 220, 380, 900)), margin=dict(l=10, r=10, t=50, b=10),
                      font=dict(size=12 if size <= 30 else 9))
    return fig


def overview_figure(maps: att.AttentionMaps, layer: int, head: int) -> go.Figure:
    """Every head at a glance: entropy (low = focused on few tokens) and, for self-attention, mean distance."""
    panels = [("Entropy per head (nats; low = focused)", att.head_entropy(maps.weights))]
    if maps.part != att.CROSS:
        panels.append(("Mean attention distance (tokens)", att.mean_distance(maps.weights)))
    n = len(panels)
    panel_px, gap_px, top, bottom = (26 if maps.layers <= 12 else 16) * maps.layers + 40, 110, 80, 10
    height = n * panel_px + (n - 1) * gap_px + top + bottom
    fig = make_subplots(rows=n, cols=1, subplot_titles=[t for t, _ in panels],
                        vertical_spacing=gap_px / (height - top - bottom) if n > 1 else 0.0)
    heads, layers = list(range(1, maps.heads + 1)), list(range(1, maps.layers + 1))
    annotate = maps.layers * maps.heads <= 96
    for k, (title, z) in enumerate(panels, start=1):
        low, high = fig.layout["yaxis" if k == 1 else f"yaxis{k}"].domain  # the colour bar spans its own panel
        fig.add_trace(go.Heatmap(z=np.round(z, 3), x=heads, y=layers, colorscale="Viridis",
                                 texttemplate="%{z:.2f}" if annotate else None, textfont=dict(size=9),
                                 hovertemplate="layer %{y}, head %{x}: %{z:.3f}<extra></extra>",
                                 colorbar=dict(y=(low + high) / 2, len=high - low, thickness=12)), row=k, col=1)
        fig.add_shape(type="rect", x0=head - 0.5, x1=head + 0.5, y0=layer - 0.5, y1=layer + 0.5,
                      line=dict(color="#e4002b", width=3), row=k, col=1)
        fig.update_xaxes(title_text="head", tickmode="linear", dtick=1 if maps.heads <= 16 else 2, row=k, col=1)
        fig.update_yaxes(title_text="layer", autorange="reversed", tickmode="linear",
                         dtick=1 if maps.layers <= 16 else 2, row=k, col=1)
    fig.update_layout(title=dict(text=f"All {maps.layers} × {maps.heads} heads: {maps.part}", font=dict(size=15)),
                      height=height, margin=dict(l=10, r=10, t=top, b=bottom))
    return fig


def export_panels(maps: att.AttentionMaps, layer: int, head: int) -> list[Panel]:
    rows, cols = display_tokens(maps.query_tokens), display_tokens(maps.key_tokens)
    heads, layers = [str(h) for h in range(1, maps.heads + 1)], [str(x) for x in range(1, maps.layers + 1)]
    panels = [Panel(f"Layer {layer}, head {head}: {maps.part}", maps.head(layer, head), rows, cols, "query", "key",
                    "weight", annotate=len(rows) <= 12),
              Panel("Entropy per head (nats; low = focused)", att.head_entropy(maps.weights), layers, heads, "layer",
                    "head", "nats", annotate=True, highlight=(layer - 1, head - 1))]
    if maps.part != att.CROSS:
        panels.append(Panel("Mean attention distance (tokens)", att.mean_distance(maps.weights), layers, heads,
                            "layer", "head", "tokens", annotate=True, highlight=(layer - 1, head - 1)))
    return panels


def _extremes(maps: att.AttentionMaps) -> str:
    ent = att.head_entropy(maps.weights)
    lo, hi = np.unravel_index(ent.argmin(), ent.shape), np.unravel_index(ent.argmax(), ent.shape)
    return (f"Most focused head: layer {lo[0] + 1}, head {lo[1] + 1} (entropy {ent[lo]:.2f} nats); broadest: "
            f"layer {hi[0] + 1}, head {hi[1] + 1} ({ent[hi]:.2f}; uniform over {len(maps.key_tokens)} tokens would "
            f"be {np.log(len(maps.key_tokens)):.2f}).")


def traced(maps: att.AttentionMaps, layer: int, method: str) -> tuple[np.ndarray, str, str]:
    """Rollout or flow through ``layer`` (Abnar & Zuidema 2020; :mod:`bertvariants.rollout`): the matrix, its title
    and a summary line; a ValueError for cross-attention (the graph needs one sequence through every layer)."""
    if maps.part == att.CROSS:
        raise ValueError(f"{method} follows a self-attention back to the input; cross-attention has no such path: "
                         "choose the encoder (or decoder) self-attention")
    if method == "rollout":
        a = ro.rollout(maps.weights)[layer - 1]
        what = "share of each input token in each position (rows sum to 1)"
    else:
        a = ro.flow(maps.weights, layer=layer)
        what = "max-flow from each position to each input token"
    line = (f"**Attention {method}** through layer {layer} (0.5·A + 0.5·I, heads averaged, rows renormalised; "
            f"Abnar & Zuidema 2020): {what}.")
    return a, f"Attention {method} through layer {layer}: {maps.part}", line


def attention_view(name: str, text: str, *, layer: int = 1, head: int = 1, part: str = "auto",
                   clamp: bool = False, method: str = "attention", offered: Offer | None = None) -> AttentionView:
    """One sentence through a served model: the chosen head (or, with ``method`` rollout / flow, the attention
    traced back to the input through ``layer``), the overview and the files (layer / head from 1; with ``clamp`` a
    layer or head beyond the model's is its last, else a ValueError)."""
    served = (offered or offer(ATTENTION_KINDS, attention=True)).pick(name)
    text = checked_text(text)
    if part not in ("auto", *att.PARTS):
        raise ValueError(f"the attention must be one of auto, {', '.join(att.PARTS)}; got {part!r}")
    if method not in ro.METHODS:
        raise ValueError(f"the view must be one of {', '.join(ro.METHODS)}; got {method!r}")
    loaded = get_model(served.name)
    result = att.attention_maps(loaded.model, loaded.tokenizer, text, architecture=loaded.architecture)
    maps = result.part(part)
    if clamp:
        layer, head = min(max(int(layer), 1), maps.layers), min(max(int(head), 1), maps.heads)
    att.check_head(maps, layer, head)
    a = maps.head(layer, head)
    link = att.strongest_link(maps, layer, head, result.special)
    if link is None:
        strongest = "no link between two different ordinary tokens"
    else:
        q, k = display_tokens(maps.query_tokens)[link[0]], display_tokens(maps.key_tokens)[link[1]]
        strongest = f"strongest link between two different ordinary tokens: **{q} → {k}** ({a[link]:.3f})"
    ent, dist = att.head_entropy(maps.weights)[layer - 1, head - 1], None
    if maps.part != att.CROSS:
        dist = att.mean_distance(maps.weights)[layer - 1, head - 1]
    lines = [f"**{maps.part}** of {loaded.label} · {len(maps.query_tokens)} × {len(maps.key_tokens)} tokens · "
             f"{maps.layers} layers × {maps.heads} heads" + (" · causal (a token never reads later ones)"
                                                             if maps.causal else ""),
             f"Layer {layer}, head {head}: {strongest}; entropy {ent:.2f} nats"
             + (f"; mean distance {dist:.2f} tokens." if dist is not None else "."),
             _extremes(maps)]
    panels = export_panels(maps, layer, head)
    matrix, title = None, ""
    if method != "attention":
        matrix, title, line = traced(maps, layer, method)
        lines.insert(1, line)
        rows, cols = display_tokens(maps.query_tokens), display_tokens(maps.key_tokens)
        panels.insert(0, Panel(title, matrix, rows, cols, "position", "input token", method,
                               annotate=len(rows) <= 12))
    if result.note:
        lines.append(result.note)
    caption = " ".join(lines).replace("**", "")
    files = write_files(panels, title=f"{served.model}: {maps.part}", caption=caption, stem="attention")
    return AttentionView("\n\n".join(lines), head_figure(maps, layer, head, matrix, title),
                         overview_figure(maps, layer, head), files, maps, layer, head, matrix)


# --------------------------------------------------------------------------------------------
# Saliency view
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SaliencyView:
    summary: str  # markdown: prediction, probability, completeness
    gradient_x_input: list[tuple[str, float]]  # (token text, score in [-1, 1]) for gr.HighlightedText
    integrated_gradients: list[tuple[str, float]]
    smoothgrad: list[tuple[str, float]]
    table: pd.DataFrame  # token, grad × input, IG, SmoothGrad (rounded)
    result: sal.Saliency


def sig(v: float, digits: int = 4, decimals: int = 6) -> float:
    """``v`` to ``digits`` significant digits and at most ``decimals`` decimals: tiny gradients stay visible (a
    saturated classifier's are ~1e-4), and no float32 tail such as 0.6899999976158142 reaches a table."""
    v = float(v)
    return 0.0 if v == 0 or not np.isfinite(v) else round(float(f"{v:.{digits}g}"), decimals) + 0.0


def highlights(tokens: list[str], scores: np.ndarray) -> list[tuple[str, float]]:
    """One (text, score / max |score|) entry per token; WordPiece's ## pieces join their word without a space."""
    top = float(np.abs(scores).max()) if len(scores) else 0.0
    out = []
    for i, (t, s) in enumerate(zip(tokens, scores)):
        space = bool(i) and any(ch.isalnum() or ch == "[" for ch in t)  # punctuation hugs the word before it
        t = wordpiece_piece(t.replace("Ġ", "").replace("▁", "") if space else t, space=space)
        out.append((t, round(float(s) / top, 3) + 0.0 if top > 0 else 0.0))
    return out


def saliency_view(name: str, text: str, *, steps: int = sal.DEFAULT_STEPS, baseline: str = "pad",
                  rule: str = "trapezoid", contrast: str = "none", offered: Offer | None = None) -> SaliencyView:
    """A served classifier on one sentence: prediction, per-token gradient × input, IG and SmoothGrad of
    P(predicted) — or, with a ``contrast`` class, of the logit difference — and IG's completeness gap."""
    served = (offered or offer(SALIENCY_KINDS)).pick(name)
    text = checked_text(text)
    steps = sal.check_steps(steps)
    if baseline not in sal.BASELINES or rule not in sal.RULES:
        raise ValueError(f"baseline must be one of {', '.join(sal.BASELINES)} and the rule one of "
                         f"{', '.join(sal.RULES)}; got {baseline!r}, {rule!r}")
    loaded = get_model(served.name)
    r = sal.explain(loaded.model, loaded.tokenizer, text, steps=steps, baseline=baseline, rule=rule, foil=contrast)
    ig, tok_ig = r.ig, r.integrated_gradients
    p = float(r.probabilities[r.target])
    rel = ig.relative_gap
    base = "[PAD] embeddings" if baseline == "pad" else "zero embeddings"
    lines = [f"**Prediction: {r.labels[r.target]}** with probability **{p:.4f}** ({loaded.label}).",
             f"Integrated gradients of {r.output} with m = {steps} steps ({rule} rule), baseline x' = "
             f"{base} at the words ([CLS]/[SEP] kept): Σ IG = {ig.total:.4f}; F(x) − F(x') = {ig.f_input:.4f} − "
             f"{ig.f_baseline:.4f} = {ig.delta:.4f}. **Completeness gap {sig(ig.gap, 3):g}**"
             + (f" ({100 * rel:.2f}% of |F(x) − F(x')|)." if np.isfinite(rel) else "."),
             (f"Gradient × input sums to {sig(r.gradient_x_input.sum(), 3):g}: a local, first-order estimate with "
              "no completeness; where the probability saturates the gradient vanishes, which is why IG integrates "
              "along a path (Sundararajan et al. §2.1). SmoothGrad averages the gradient over "
              f"{sal.SMOOTHGRAD_SAMPLES} noisy copies (σ = {sal.SMOOTHGRAD_NOISE:g} of the embeddings' range; "
              "Smilkov et al. 2017).")]
    if r.foil is not None:
        lines.insert(1, f"**Contrastive: why {r.labels[r.target]} rather than {r.labels[r.foil]}** — every method "
                        f"attributes the logit difference {r.output} (Yin & Neubig 2022); red favours "
                        f"{r.labels[r.target]}, purple {r.labels[r.foil]}.")
    elif abs(ig.delta) < 0.1:
        lines.append(f"The baseline itself scores {ig.f_baseline:.4f} (the model already leans this way without the "
                     f"words), so IG has only {ig.delta:.4f} to distribute over them.")
    table = pd.DataFrame({"token": r.tokens, "grad × input": [sig(v) for v in r.gradient_x_input],
                          "IG": [sig(v) for v in tok_ig], "SmoothGrad": [sig(v) for v in r.smoothgrad]})
    return SaliencyView("\n\n".join(lines), highlights(r.tokens, r.gradient_x_input), highlights(r.tokens, tok_ig),
                        highlights(r.tokens, r.smoothgrad), table, r)
