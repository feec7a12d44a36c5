"""The Interpret tab's newer views (and the Sentence-BERT tab's attribution): each resolves a served model through
the one resolver, runs its method and returns a named result with figures, tables and PNG / SVG / HTML files.

- :func:`faithfulness_view`: deletion / insertion curves and AOPC of every saliency method, random orders and
  attention as an attribution (:mod:`bertvariants.faithfulness`).
- :func:`mlm_lens_view`: a masked LM's own head after every layer, and token trajectories
  (:mod:`bertvariants.mlm_lens`).
- :func:`similarity_attribution_view`: the token × token integrated-Jacobian matrix of a sentence pair's cosine
  (:mod:`bertvariants.similarity_attribution`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import torch

from . import attention as att
from . import checks
from . import explain_figures as xf
from . import faithfulness as fa
from . import generation_attribution as ga
from . import mlm_lens as ml
from . import rollout as ro
from . import saliency as sal
from . import similarity_attribution as sa
from .figure_files import write_files
from .interpret import SALIENCY_KINDS, Offer, checked_text, offer, sig
from .serving import get_model

LENS_KINDS = ("masked-lm",)
DEFAULT_LENS_SENTENCE = "The capital of France is [MASK]."
DEFAULT_LENS_ANSWER = "paris"
FAITHFULNESS_EXAMPLES = ("The plot is thin, but the performances are wonderful.",
                         "A gripping, beautifully acted film.",
                         "The story is dull and the jokes fall flat.")
SIMILARITY_TASK = "similarity"
SUMMARY_TASK = "summarization"


# --------------------------------------------------------------------------------------------
# Faithfulness
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class FaithfulnessView:
    summary: str
    figure: go.Figure
    table: pd.DataFrame
    files: list[Path]
    result: fa.Faithfulness
    saliency: sal.Saliency


def attention_scores(model, tokenizer, text: str, architecture: str = "") -> tuple[dict[str, np.ndarray], str]:
    """[CLS]'s attention to each token as an attribution (last layer, mean of heads; and its rollout), or no
    scores and why (a BiLSTM has no attention)."""
    if not att.has_attention(model):
        return {}, att.no_attention_reason(model, architecture) + " Its attention rows are left out."
    weights = att.attention_maps(model, tokenizer, text, architecture=architecture).part().weights
    return {"attention ([CLS], last layer)": ro.cls_scores(weights, "attention"),
            "attention rollout ([CLS])": ro.cls_scores(weights, "rollout")}, ""


def faithfulness_view(name: str, text: str, *, steps: int = sal.DEFAULT_STEPS, baseline: str = "pad",
                      n_random: int = fa.RANDOM_ORDERS, seed: int = 0,
                      offered: Offer | None = None) -> FaithfulnessView:
    """Every saliency method's deletion / insertion curves and AOPC beside random orders and attention."""
    served = (offered or offer(SALIENCY_KINDS)).pick(name)
    text = checked_text(text)
    steps = sal.check_steps(steps)
    loaded = get_model(served.name)
    r = sal.explain(loaded.model, loaded.tokenizer, text, steps=steps, baseline=baseline, seed=seed)
    emb = sal.embed(loaded.model, loaded.tokenizer, text)

    def f(e: torch.Tensor) -> torch.Tensor:
        return torch.softmax(emb.logits(e).float(), -1)[:, r.target]

    scores = r.methods()
    extra, note = attention_scores(loaded.model, loaded.tokenizer, text, loaded.architecture)
    scores.update(extra)
    words = [i for i, s in enumerate(r.special) if not s]
    result = fa.evaluate(f, emb.inputs, emb.baseline(baseline), scores, words, output=r.output, n_random=n_random,
                         seed=seed, note=note)
    rows = result.rows()
    table = pd.DataFrame([{k: (sig(v) if isinstance(v, float) else v) for k, v in row.items()} for row in rows])
    best = max(result.methods, key=lambda c: c.aopc)
    rand = float(np.mean([c.aopc for c in result.random]))
    lines = [f"**Prediction: {r.labels[r.target]}** ({r.probabilities[r.target]:.4f}, {loaded.label}). Words are "
             f"replaced by the baseline one at a time in each method's order ({len(words)} words; [CLS] / [SEP] kept).",
             f"**Most faithful here: {best.method}**, AOPC {sig(best.aopc, 3):g} vs {sig(rand, 3):g} for a random "
             f"order (mean of {len(result.random)}, sd {sig(result.random_spread()['aopc'], 3):g}). AOPC of each: "
             + ", ".join(f"{c.method} {sig(c.aopc, 3):g}" for c in result.methods) + "."]
    if note:
        lines.append(note)
    caption = " ".join(lines).replace("**", "")
    files = write_files(xf.faithfulness_panels(result), title=f"Faithfulness: {served.model}", caption=caption,
                        stem="faithfulness")
    return FaithfulnessView("\n\n".join(lines), xf.faithfulness_figure(result), table, files, result, r)


# --------------------------------------------------------------------------------------------
# MLM lens
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class LensView:
    summary: str
    lens_figure: go.Figure
    trajectory_figure: go.Figure
    table: pd.DataFrame
    files: list[Path]
    result: ml.Lens


def lens_table(result: ml.Lens) -> pd.DataFrame:
    rows = []
    for k, m in enumerate(result.masks):
        for p in m.layers:
            row = {"mask": k + 1, "layer": p.layer,
                   "top-k": ", ".join(f"{t} {q:.3f}" for t, q in zip(p.tokens, p.probabilities))}
            if result.gold:
                row[f"rank of “{result.gold}”"] = p.gold_rank
                row[f"P(“{result.gold}”)"] = sig(p.gold_probability)
            rows.append(row)
    return pd.DataFrame(rows)


def mlm_lens_view(name: str, text: str, *, answer: str = "", top_k: int = ml.DEFAULT_TOP_K,
                  offered: Offer | None = None) -> LensView:
    """A served masked LM's own head after every layer at each mask, the answer's rank, token trajectories."""
    served = (offered or offer(LENS_KINDS)).pick(name)
    text = checked_text(text)
    loaded = get_model(served.name)
    result = ml.lens(loaded.model, loaded.tokenizer, text, gold=answer, top_k=top_k)
    # [CLS] / [SEP] / padding left out of the trajectories; the mask, where the answer forms, kept
    special = set(getattr(loaded.tokenizer, "all_special_tokens", ())) - {loaded.tokenizer.mask_token}
    special = [t in special for t in result.tokens]
    traj = ml.trajectories(result.hidden)
    lines = [f"**{loaded.label}** · {result.layers} layers · {len(result.masks)} mask(s). Layer 0 is the "
             "embeddings; the last layer is the model's own fill-mask output."]
    for k, m in enumerate(result.masks):
        last = m.layers[-1]
        line = f"Mask {k + 1}: final top-{result.top_k} {', '.join(last.tokens)}."
        if result.gold:
            first = m.first_layer_in_top(5)
            line += (f" **“{result.gold}” first enters the top 5 at layer {first}**" if first is not None
                     else f" “{result.gold}” never enters the top 5")
            line += f" (rank {last.gold_rank} at the last layer)."
        lines.append(line)
    caption = " ".join(lines).replace("**", "")
    panels = [*xf.lens_panels(result), xf.trajectory_panel(result.tokens, traj, special)]
    files = write_files(panels, title=f"MLM lens: {served.model}", caption=caption, stem="mlm-lens")
    return LensView("\n\n".join(lines), xf.lens_figure(result), xf.trajectory_figure(result.tokens, traj, special),
                    lens_table(result), files, result)


# --------------------------------------------------------------------------------------------
# Similarity attribution
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class PairView:
    summary: str
    figure: go.Figure
    pairs: pd.DataFrame
    files: list[Path]
    result: sa.PairAttribution


def similarity_attribution_view(a: str, b: str, *, steps: int = sa.DEFAULT_STEPS,
                                top: int = sa.TOP_PAIRS) -> PairView:
    """Integrated-Jacobian attribution of the Sentence-BERT tab's cosine of (a, b), its gap and top pairs."""
    a, b = checked_text(a), checked_text(b)
    loaded = get_model(SIMILARITY_TASK)
    r = sa.attribute_pair(loaded.model, loaded.tokenizer, a, b, steps=steps, pooling=loaded.pooling)
    pairs = r.top_pairs(top)
    lines = [f"**cos(a, b) = {r.score:.4f}** ({loaded.label}). Σ A = **{r.total:.4f}** = (f(a) − f(r))ᵀ(f(b) − f(r)) "
             f"up to the integration error: cos minus the reference terms s(r, b) + s(a, r) − s(r, r) = "
             f"{r.reference_terms:.4f} gives {r.target:.4f}. **Completeness gap {sig(r.gap, 3):g}** "
             f"({100 * r.relative_gap:.4f}% at m = {r.steps} steps).",
             "Top pairs: " + "; ".join(f"**{x} · {y}** {v:.3f}" for x, y, v in pairs[:3]) + "."]
    caption = " ".join(lines).replace("**", "")
    files = write_files(xf.pair_panels(r), title="Why are the two sentences similar?", caption=caption,
                        stem="similarity-attribution")
    table = pd.DataFrame([{"rank": k + 1, "token in A": x, "token in B": y, "A[i, j]": sig(v)}
                          for k, (x, y, v) in enumerate(pairs)])
    return PairView("\n\n".join(lines), xf.pair_figure(r), table, files, r)


# --------------------------------------------------------------------------------------------
# Summary attribution
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class GenerationView:
    summary: str
    figure: go.Figure
    table: pd.DataFrame
    files: list[Path]
    result: ga.GenerationAttribution


def generation_view(document: str, *, max_new_tokens: int = ga.DEFAULT_NEW_TOKENS) -> GenerationView:
    """The served summarizer's greedy continuation of ``document``, each token's probability attributed to the
    document's tokens by gradient × input."""
    checks.text(document, "the document", hint="please paste some text")
    loaded = get_model(SUMMARY_TASK)
    if loaded.kind not in ("seq2seq", "causal-lm"):
        raise ValueError(f"the summarizer here is a {loaded.kind} model: it generates nothing to attribute")
    r = ga.attribute_generation(loaded.model, loaded.tokenizer, document, max_new_tokens=max_new_tokens)
    lines = [f"**{loaded.label}**, greedy: “{r.text}” ({len(r.generated_tokens)} tokens from the first "
             f"{ga.MAX_WORDS} words of the document, {len(r.source_tokens)} source tokens).",
             "Each generated token's probability p(yₜ | document, y₍<ₜ₎) is attributed to the document's tokens by "
             "gradient × input: red raised it. The instruction's own tokens are left out."]
    rows = [{"generated": tok, "p": sig(p),
             "top source tokens": ", ".join(f"{xf.token_labels([s])[0]} {v:+.3f}" for s, v in r.top_sources(t))}
            for t, (tok, p) in enumerate(zip(xf.token_labels(r.generated_tokens), r.probabilities))]
    caption = " ".join(lines).replace("**", "")
    files = write_files(xf.generation_panels(r), title="Summary attribution", caption=caption,
                        stem="summary-attribution")
    return GenerationView("\n\n".join(lines), xf.generation_figure(r), pd.DataFrame(rows), files, r)
