"""The figures of the faithfulness, MLM-lens and similarity-attribution views (Plotly, in the tabs' common style),
and the same figures as downloadable panels (:mod:`bertvariants.figure_files`)."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from .faithfulness import Faithfulness
from .generation_attribution import GenerationAttribution
from .figure_files import PALETTE, LinePanel, Panel, Series
from .figures import MAX_POINT_LABELS, finish, label_positions, title
from .mlm_lens import Lens, Trajectories
from .similarity_attribution import PairAttribution


def token_labels(tokens: list[str]) -> list[str]:
    """Tokens as axis labels: BPE / SentencePiece space marks shown as ␣, repeated tokens numbered."""
    out = []
    for i, t in enumerate(tokens):
        t = t.replace("Ġ", "␣").replace("▁", "␣").replace("Ċ", "⏎")
        out.append(f"{t} ({i})" if tokens.count(tokens[i]) > 1 else t)
    return out


# --------------------------------------------------------------------------------------------
# Faithfulness
# --------------------------------------------------------------------------------------------
def faithfulness_figure(result: Faithfulness) -> go.Figure:
    """F against the fraction of words removed (deletion) and inserted (insertion), one line per method, the
    random orders' mean dashed."""
    fig = make_subplots(rows=2, cols=1, subplot_titles=["Deletion (lower area = faithful)",
                                                        "Insertion (higher area = faithful)"],
                        vertical_spacing=0.2)  # stacked: side by side, a phone squeezes both
    lines = [*result.methods, result.random_mean]
    for k, c in enumerate(lines):
        x = np.round(np.linspace(0, 1, len(c.deletion)), 4)
        style = dict(color=PALETTE[k % len(PALETTE)], dash="dash" if c.method.startswith("random") else "solid")
        for row, y in ((1, c.deletion), (2, c.insertion)):
            fig.add_trace(go.Scatter(x=x, y=np.round(y, 4), mode="lines+markers", name=c.method, line=style,
                                     legendgroup=c.method, showlegend=row == 1,
                                     hovertemplate=f"{c.method}: %{{y:.3f}} at %{{x:.2f}}<extra></extra>"),
                          row=row, col=1)
    fig.update_xaxes(title_text="fraction of words", range=[-0.02, 1.02])
    fig.update_yaxes(title_text=result.output)
    return finish(fig, title=title("Deletion and insertion curves", f"{result.output} as words are removed / "
                                    "inserted in each method's order"), height=640)


def faithfulness_panels(result: Faithfulness) -> list[LinePanel]:
    lines = [*result.methods, result.random_mean]
    x = [list(np.linspace(0, 1, len(c.deletion))) for c in lines]
    dashed = [c.method.startswith("random") for c in lines]
    return [LinePanel(f"Deletion: {result.output} (lower area = faithful)",
                      [Series(c.method, xs, c.deletion, dash=d) for c, xs, d in zip(lines, x, dashed)],
                      "fraction of words removed", result.output),
            LinePanel(f"Insertion: {result.output} (higher area = faithful)",
                      [Series(c.method, xs, c.insertion, dash=d) for c, xs, d in zip(lines, x, dashed)],
                      "fraction of words inserted", result.output)]


# --------------------------------------------------------------------------------------------
# MLM lens
# --------------------------------------------------------------------------------------------
def lens_matrix(result: Lens, mask: int = 0) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Probabilities and ranks (L + 1, k) after each layer of the last layer's top-k tokens (and the answer, last,
    when it is not among them)."""
    m = result.masks[mask]
    logits = m.logits.double()  # (L + 1, V)
    ids = logits[-1].topk(len(m.layers[-1].tokens)).indices.tolist()
    names = list(m.layers[-1].tokens)
    if result.gold_id is not None and result.gold_id not in ids:
        ids.append(result.gold_id)
        names.append(f"{result.gold} (answer)")
    chosen = logits[:, ids]  # (L + 1, k)
    ranks = (logits.unsqueeze(1) > chosen.unsqueeze(-1)).sum(-1) + 1  # (L + 1, k): 1 = that layer's top token
    return logits.softmax(-1)[:, ids].numpy(), ranks.numpy(), names


def lens_figure(result: Lens, mask: int = 0) -> go.Figure:
    """Rows: layers (0 = embeddings); columns: the model's final top-k at the mask (and the answer); cells: each
    token's rank under the model's own head after that layer (colour: log10 rank, bright = near the top)."""
    probs, ranks, names = lens_matrix(result, mask)
    m = result.masks[mask]
    layers = [f"layer {p.layer}" for p in m.layers]
    hover = [[f"{layers[r]} · {names[c]}: rank {ranks[r, c]}, P = {probs[r, c]:.4f}<br>top: "
              f"{', '.join(m.layers[r].tokens)}" for c in range(len(names))] for r in range(len(layers))]
    z = np.round(np.log10(ranks.astype(np.float64)), 3)
    fig = go.Figure(go.Heatmap(z=z, x=names, y=layers, colorscale="Viridis", reversescale=True, zmin=0,
                               text=ranks, texttemplate="%{text}", hovertext=hover, hoverinfo="text",
                               colorbar=dict(title=dict(text="log10 rank"), thickness=12)))
    sub = "rank under the model's own MLM head after every layer (1 = top)"
    if result.gold:
        first = m.first_layer_in_top(5)
        sub += f"; “{result.gold}” enters the top 5 at " + (f"layer {first}" if first is not None else "no layer")
    return finish(fig, title=title(f"MLM lens at mask {mask + 1} (position {m.position})", sub),
                  height=max(360, 34 * len(layers) + 200),
                  xaxis=dict(title="token (the last layer's top-k)", tickangle=-45),
                  yaxis=dict(title="layer", autorange="reversed"))


def lens_panels(result: Lens) -> list:
    panels = []
    for k, m in enumerate(result.masks):
        _, ranks, names = lens_matrix(result, k)
        panels.append(Panel(f"Mask {k + 1}: log10 rank after each layer (0 = top)", np.log10(ranks.astype(float)),
                            [f"layer {p.layer}" for p in m.layers], names, "layer", "token", "log10 rank",
                            annotate=True))
        if result.gold:
            panels.append(LinePanel(f"Mask {k + 1}: rank of “{result.gold}” per layer (log10)",
                                    [Series(result.gold, [p.layer for p in m.layers],
                                            [float(np.log10(p.gold_rank)) for p in m.layers])],
                                    "layer", "log10 rank (0 = top)"))
    return panels


def trajectory_figure(tokens: list[str], traj: Trajectories, special: list[bool] | None = None) -> go.Figure:
    """Each token's hidden state after every layer in one PCA plane: a line per token from layer 0 (hollow) to
    the last layer, where the token's label sits (up to MAX_POINT_LABELS labels; the rest on hover)."""
    fig = go.Figure()
    labels = token_labels(tokens)
    shown = [i for i in range(len(labels)) if not (special and special[i])]
    for k, i in enumerate(shown):
        xy = np.round(traj.coords[:, i], 3)
        fig.add_trace(go.Scatter(x=xy[:, 0], y=xy[:, 1], mode="lines+markers", name=labels[i], showlegend=False,
                                 line=dict(color=PALETTE[k % len(PALETTE)], width=1.5),
                                 marker=dict(size=[9] + [6] * (len(xy) - 1),
                                             symbol=["circle-open"] + ["circle"] * (len(xy) - 1)),
                                 customdata=list(range(len(xy))),
                                 hovertemplate=f"{labels[i]} after layer %{{customdata}}<extra></extra>"))
    ends = shown[:MAX_POINT_LABELS]
    last = np.round(traj.coords[-1, ends], 3)
    fig.add_trace(go.Scatter(x=last[:, 0], y=last[:, 1], mode="text", text=[labels[i] for i in ends],
                             textposition=label_positions(last[:, 0]), cliponaxis=False, showlegend=False,
                             textfont=dict(size=11), hoverinfo="skip"))
    ev = traj.explained
    return finish(fig, title=title("Token trajectories through the layers",
                                   "one PCA over every layer's states; hollow = embeddings, label = last layer"),
                  height=480, xaxis_title=f"PC1 ({ev[0]:.0%} of variance)", yaxis_title=f"PC2 ({ev[1]:.0%})")


def trajectory_panel(tokens: list[str], traj: Trajectories, special: list[bool] | None = None) -> LinePanel:
    labels = token_labels(tokens)
    series = [Series(label, traj.coords[:, i, 0], traj.coords[:, i, 1],
                     labels=[""] * (len(traj.coords) - 1) + [label])
              for i, label in enumerate(labels) if not (special and special[i])]
    return LinePanel("Token trajectories (one PCA over all layers; label = last layer)", series[:10],
                     f"PC1 ({traj.explained[0]:.0%})", f"PC2 ({traj.explained[1]:.0%})")


# --------------------------------------------------------------------------------------------
# Similarity attribution
# --------------------------------------------------------------------------------------------
def words_only(result: PairAttribution) -> tuple[np.ndarray, list[str], list[str]]:
    rows = [i for i, s in enumerate(result.special_a) if not s]
    cols = [j for j, s in enumerate(result.special_b) if not s]
    return (result.matrix[np.ix_(rows, cols)], token_labels([result.tokens_a[i] for i in rows]),
            token_labels([result.tokens_b[j] for j in cols]))


def pair_figure(result: PairAttribution) -> go.Figure:
    """A[i, j]: how much the pair (token i of A, token j of B) contributes to the similarity; red raises it."""
    z, rows, cols = words_only(result)
    top = float(np.abs(z).max()) or 1.0
    hover = [[f"{rows[i]} · {cols[j]}: {z[i, j]:.4f}" for j in range(len(cols))] for i in range(len(rows))]
    fig = go.Figure(go.Heatmap(z=np.round(z, 4), x=cols, y=rows, zmin=-top, zmax=top, colorscale="RdBu",
                               reversescale=True, text=np.round(z, 2),
                               texttemplate="%{text:.2f}" if max(len(rows), len(cols)) <= 14 else None,
                               hovertext=hover, hoverinfo="text", colorbar=dict(title=dict(text="A"), thickness=12)))
    return finish(fig, title=title("Token × token attribution of the similarity",
                                   f"integrated Jacobians; Σ A = {result.total:.3f}, cos = {result.score:.3f}"),
                  height=max(380, 30 * len(rows) + 240),
                  xaxis=dict(title="sentence B", tickangle=-45), yaxis=dict(title="sentence A", autorange="reversed"))


def pair_panels(result: PairAttribution) -> list[Panel]:
    z, rows, cols = words_only(result)
    return [Panel("Token × token attribution A (sums to the score minus the reference terms)", z, rows, cols,
                  "sentence A", "sentence B", "A", vmin=float(z.min()), vmax=float(z.max()),
                  annotate=max(len(rows), len(cols)) <= 14)]


# --------------------------------------------------------------------------------------------
# Generation attribution
# --------------------------------------------------------------------------------------------
def generation_figure(result: GenerationAttribution) -> go.Figure:
    """Rows: the generated tokens; columns: the source tokens; cells: gradient × input of each generated token's
    probability (red raises it)."""
    rows, cols = token_labels(result.generated_tokens), token_labels(result.source_tokens)
    z = result.scores
    top = float(np.abs(z).max()) or 1.0
    hover = [[f"{rows[t]} ← {cols[i]}: {z[t, i]:.4f}" for i in range(len(cols))] for t in range(len(rows))]
    fig = go.Figure(go.Heatmap(z=np.round(z, 5), x=list(range(len(cols))), y=rows, zmin=-top, zmax=top,
                               colorscale="RdBu", reversescale=True, hovertext=hover, hoverinfo="text",
                               colorbar=dict(title=dict(text="grad × input"), thickness=12)))
    ticks = list(range(0, len(cols), max(1, -(-len(cols) // 12))))  # at most 12 labels: the rest on hover
    return finish(fig, title=title("Which source tokens each generated token rests on",
                                   "gradient × input of p(generated token); hover a cell for both tokens"),
                  height=max(360, 26 * len(rows) + 260),
                  xaxis=dict(title="source token", tickangle=-60, tickvals=ticks, ticktext=[cols[i] for i in ticks]),
                  yaxis=dict(title="generated token", autorange="reversed"))


def generation_panels(result: GenerationAttribution) -> list[Panel]:
    z = result.scores
    return [Panel("Gradient × input of each generated token's probability", z, token_labels(result.generated_tokens),
                  token_labels(result.source_tokens), "generated", "source", "grad × input", vmin=float(z.min()),
                  vmax=float(z.max()))]
