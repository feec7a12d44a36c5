"""Why two sentences are similar: a token × token attribution of a Siamese encoder's score by integrated Jacobians.

Möller, Nikolaev & Padó 2023, "An Attribution Method for Siamese Encoders" (EMNLP), §2: a Siamese model scores
two inputs a and b by s = f(a)ᵀ f(b). With reference inputs r_a, r_b and the integrated Jacobians
J_a = ∫₀¹ ∂f(r_a + α(a − r_a))/∂a dα (D × T_a·E; likewise J_b), the fundamental theorem of calculus gives
f(a) − f(r_a) = J_a (a − r_a), so

    (f(a) − f(r_a))ᵀ (f(b) − f(r_b)) = Σ_ij A_ij,   A_ij = Σ_d P_a[d, i] · P_b[d, j],   (§2 eq. 5–6)

where P_a[:, i] = J_a[:, i, :] (a_i − r_a,i) is token i's integrated contribution to the embedding. Expanding
the left side, A sums to the score s(a, b) minus the reference terms s(r_a, b) + s(a, r_b) − s(r_a, r_b) (which
vanish when f(r) = 0, the paper's §2.2 shift). The integral is a quadrature over m steps (trapezoid rule, as in
:mod:`bertvariants.saliency`), so Σ A misses its target by an integration error that the view reports as the
**completeness gap** (the paper's §4.1 "approximation error").

Here f is the Sentence-BERT tab's encoder seen as a function of its token embeddings, mean-pooled and L2-normalised,
so s is the cosine the tab shows (Reimers & Gurevych 2019 §3). The reference r puts the [PAD] embedding at every
word ([CLS] / [SEP] kept, as in the Saliency view). Each P[:, i] is a directional derivative — one forward-mode
Jacobian-vector product per token and path point, T·(m + 1) of them batched — so the cost grows with the number
of tokens, not with the embedding size D.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch.autograd import forward_ad

from .checks import text as checked_text, token_count
from .common import pool
from .inference import eager_twin
from .saliency import Completeness, check_steps, path_points

MAX_TOKENS = 32  # per sentence: T·(m + 1) Jacobian-vector products of length T, ≈ 20 s at 17 tokens on one core
DEFAULT_STEPS = 20  # the gap is ~1e-6 of the target here at 20 (tests check ≤ 1%)
TOP_PAIRS = 10


@dataclass(frozen=True)
class EmbeddedSentence:
    """A sentence as its token embeddings and the encoder as a function of them."""

    tokens: list[str]
    special: list[bool]
    inputs: torch.Tensor  # (T, E)
    reference: torch.Tensor  # (T, E): [PAD] at the words, [CLS] / [SEP] kept
    encode: Callable[[torch.Tensor], torch.Tensor]  # (B, T, E) -> (B, D) unit vectors


def embed_sentence(model, tokenizer, text: str, *, pooling: str = "mean", max_tokens: int = MAX_TOKENS):
    """``text`` as the encoder's input embeddings, with f = normalise(pool(encoder(e))) on an eager-attention copy
    (forward-mode derivatives go through eager attention; SDPA's fused kernel has none)."""
    checked_text(text, "the sentence")
    enc = tokenizer(text, return_tensors="pt", truncation=False, return_special_tokens_mask=True)
    n = int(enc["input_ids"].shape[1])
    token_count(n, "the sentence", limit=max_tokens, why="for the attribution")
    twin = eager_twin(model)
    device = next(twin.parameters()).device
    ids = enc["input_ids"].to(device)
    special = [bool(s) for s in enc["special_tokens_mask"][0].tolist()]
    pad = torch.tensor([[tokenizer.pad_token_id or 0]], device=device)
    with torch.no_grad():
        table = twin.get_input_embeddings()
        x, fill = table(ids)[0], table(pad)[0, 0]
    keep = torch.tensor(special, device=device).unsqueeze(-1)
    extra = {k: v.to(device) for k, v in enc.items() if k == "token_type_ids"}

    def f(e: torch.Tensor) -> torch.Tensor:
        mask = torch.ones(e.shape[:2], dtype=torch.long, device=e.device)
        batch = {k: v.expand(e.shape[0], -1) for k, v in extra.items()}
        hidden = twin(inputs_embeds=e, attention_mask=mask, **batch).last_hidden_state
        return torch.nn.functional.normalize(pool(hidden, mask, pooling), dim=-1)

    tokens = [str(t) for t in tokenizer.convert_ids_to_tokens(ids[0].tolist())]
    return EmbeddedSentence(tokens, special, x, torch.where(keep, x, fill.expand_as(x)), f)


def integrated_contributions(f, x: torch.Tensor, reference: torch.Tensor, *, steps: int = DEFAULT_STEPS,
                             rule: str = "trapezoid", batch_size: int = 64) -> torch.Tensor:
    """P (D, T): P[:, i] = Σ_k w_k ∂f(r + α_k(x − r))/∂x_i · (x_i − r_i), the integrated Jacobian of f times each
    token's own step, by forward-mode AD (one tangent per token and path point)."""
    alphas, weights = path_points(steps, rule)
    x, reference = x.detach().float(), reference.detach().float()
    diff = x - reference  # (T, E)
    t = x.shape[0]
    tangents = torch.zeros(t, t, *x.shape[1:], device=x.device)  # tangent i moves token i only
    tangents[torch.arange(t), torch.arange(t)] = diff
    points = reference.unsqueeze(0) + alphas.float().to(x.device).view(-1, 1, 1) * diff.unsqueeze(0)  # (K, T, E)
    primal = points.unsqueeze(1).expand(-1, t, -1, -1).reshape(-1, *x.shape)  # (K·T, T, E)
    tangent = tangents.unsqueeze(0).expand(len(alphas), -1, -1, -1).reshape(-1, *x.shape)
    out = []
    with torch.no_grad(), forward_ad.dual_level():
        for p, d in zip(primal.split(batch_size), tangent.split(batch_size)):
            out.append(forward_ad.unpack_dual(f(forward_ad.make_dual(p, d))).tangent.double())
    jvp = torch.cat(out).view(len(alphas), t, -1)  # (K, T, D)
    return (weights.to(jvp.device).view(-1, 1, 1) * jvp).sum(0).T  # (D, T)


@dataclass(frozen=True)
class PairAttribution(Completeness):
    """A (T_a, T_b) matrix whose entries sum to (f(a) − f(r_a))ᵀ (f(b) − f(r_b)), with the scores around it."""

    tokens_a: list[str]
    tokens_b: list[str]
    special_a: list[bool]
    special_b: list[bool]
    matrix: np.ndarray  # (T_a, T_b) float64
    score: float  # s(a, b) = cos(a, b)
    reference_terms: float  # s(r_a, b) + s(a, r_b) − s(r_a, r_b)
    steps: int

    @property
    def total(self) -> float:
        return float(self.matrix.sum())

    @property
    def target(self) -> float:
        """What Σ A equals for the exact integral: the score minus the reference terms."""
        return self.score - self.reference_terms

    def top_pairs(self, n: int = TOP_PAIRS) -> list[tuple[str, str, float]]:
        """The ``n`` largest entries between two words (special tokens' rows and columns are 0)."""
        rows = [i for i, s in enumerate(self.special_a) if not s]
        cols = [j for j, s in enumerate(self.special_b) if not s]
        cells = sorted(((self.matrix[i, j], i, j) for i in rows for j in cols), key=lambda c: (-c[0], c[1], c[2]))
        return [(self.tokens_a[i], self.tokens_b[j], float(v)) for v, i, j in cells[:n]]


def attribute_pair(model, tokenizer, a: str, b: str, *, steps: int = DEFAULT_STEPS, pooling: str = "mean",
                   rule: str = "trapezoid", max_tokens: int = MAX_TOKENS) -> PairAttribution:
    """Integrated-Jacobian attribution of cos(a, b) (Möller et al. 2023 §2; see the module docstring)."""
    steps = check_steps(steps)
    sa = embed_sentence(model, tokenizer, a, pooling=pooling, max_tokens=max_tokens)
    sb = embed_sentence(model, tokenizer, b, pooling=pooling, max_tokens=max_tokens)
    pa = integrated_contributions(sa.encode, sa.inputs, sa.reference, steps=steps, rule=rule)  # (D, T_a)
    pb = integrated_contributions(sb.encode, sb.inputs, sb.reference, steps=steps, rule=rule)  # (D, T_b)
    with torch.no_grad():
        fa, ra = sa.encode(torch.stack([sa.inputs, sa.reference]).float()).double()
        fb, rb = sb.encode(torch.stack([sb.inputs, sb.reference]).float()).double()
    reference_terms = float(ra @ fb + fa @ rb - ra @ rb)
    return PairAttribution(sa.tokens, sb.tokens, sa.special, sb.special, (pa.T @ pb).cpu().numpy(), float(fa @ fb),
                           reference_terms, steps)
