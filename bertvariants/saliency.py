"""Which input tokens a classifier's prediction rests on: gradient × input and integrated gradients.

Both attribute F(x) = P(predicted class | x) to the token embeddings x ∈ R^{T×E} (the words' input vectors; the
model adds its own position and segment embeddings on top), and a token's score is the sum over its E dimensions.

- **Gradient × input** (Shrikumar et al. 2016, "Not Just a Black Box", §2; Simonyan et al. 2014 §3 for the
  gradient): a_i = x_i · ∂F/∂x_i at the input. One backward pass; exact for a linear F, a local estimate otherwise.
- **Integrated gradients** (Sundararajan et al. 2017, "Axiomatic Attribution for Deep Networks", §3 eq. 1):
  IG_i = (x_i − x'_i) · ∫₀¹ ∂F(x' + α(x − x'))/∂x_i dα along the straight line from a baseline x'. By the
  fundamental theorem of calculus for path integrals, Σ_i IG_i = F(x) − F(x') (§3 Proposition 1, completeness);
  the integral is approximated with m steps (§5 eq. 3: a Riemann sum; here also the trapezoid rule, whose error
  falls as 1/m² instead of 1/m), and the paper checks completeness to pick m ("20 to 300 steps ... within 5%").
  :attr:`IntegratedGradients.gap` reports |Σ IG − (F(x) − F(x'))| so the view can show it.

- **SmoothGrad** (Smilkov et al. 2017, "SmoothGrad: removing noise by adding noise", §3 eq. 3):
  the gradient averaged over n noisy copies x + N(0, σ²), σ = noise level × (max x − min x) (§4.1: 10–20%),
  times the input (the paper's §4.3 "SmoothGrad … combined with Gradient ⊙ Input"). Noise at the words only,
  drawn from an explicit seeded generator.

**Contrastive** (Yin & Neubig 2022, "Interpreting Language Models with Contrastive Explanations", §2): with a
foil class, F is the logit difference z_target − z_foil instead of P(target): "why *positive* rather than
*negative*". Completeness then holds for that difference.

Baseline x' (§5 "a black image", for text "the all-zero input embedding vector", §6.3): ``pad`` puts the [PAD]
token's embedding at every word position, ``zero`` the zero vector; [CLS] and [SEP] keep their own embeddings in
both, so x − x' = 0 there and their IG is exactly 0 (the score is spread over the words only).

The BiLSTM student (Tang et al. 2019) is not a transformer: its gradients flow through its embedding layer (the
frozen MiniLM table plus its low-rank correction) the same way. Gradients are taken with ``torch.autograd.grad``
with respect to the embeddings only, so nothing accumulates in the shared model's parameters.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass

import numpy as np
import torch

from .checks import number, probability, token_count

MAX_TOKENS = 128
MAX_STEPS = 300  # the paper's upper end; IG costs m + 1 forward and backward passes
DEFAULT_STEPS = 50
SMOOTHGRAD_SAMPLES = 20  # n (§4.2: "the estimate … becomes stable" past ~50 on images; 20 suffices per token here)
SMOOTHGRAD_NOISE = 0.15  # σ / (max x − min x), §4.1's 10–20%
MAX_SAMPLES = 200
FOILS = ("none", "runner-up")  # or a class name
RULES = ("trapezoid", "riemann")
BASELINES = ("pad", "zero")

Scalar = Callable[[torch.Tensor], torch.Tensor]  # (B, T, E) embeddings -> (B,) the attributed output


# --------------------------------------------------------------------------------------------
# The maths: pure functions of F and x
# --------------------------------------------------------------------------------------------
def path_points(steps: int, rule: str = "trapezoid") -> tuple[torch.Tensor, torch.Tensor]:
    """α_k and the quadrature weights w_k with Σ_k w_k g(α_k) ≈ ∫₀¹ g(α) dα.

    ``riemann``: α_k = k/m, k = 1..m, w_k = 1/m (the paper's eq. 3, right Riemann sum); ``trapezoid``:
    α_k = k/m, k = 0..m, w = 1/m with half weight at both ends."""
    steps = check_steps(steps)
    if rule not in RULES:
        raise ValueError(f"the integration rule must be one of {', '.join(RULES)}, got {rule!r}")
    if rule == "riemann":
        alphas = torch.arange(1, steps + 1, dtype=torch.float64) / steps
        return alphas, torch.full((steps,), 1.0 / steps, dtype=torch.float64)
    alphas = torch.arange(0, steps + 1, dtype=torch.float64) / steps
    weights = torch.full((steps + 1,), 1.0 / steps, dtype=torch.float64)
    weights[0] = weights[-1] = 0.5 / steps
    return alphas, weights


def check_steps(steps) -> int:
    """m, the number of integration steps: a whole number in [1, MAX_STEPS] (else a ValueError)."""
    return number(steps, "the number of integration steps", lo=1, hi=MAX_STEPS, integer=True)


def gradient_x_input(f: Scalar, x: torch.Tensor) -> torch.Tensor:
    """x ⊙ ∂F/∂x at x, the shape of x (Shrikumar et al. 2016 §2). ``f`` maps (B, *x.shape) to (B,)."""
    point = x.detach().float().unsqueeze(0).requires_grad_(True)  # fp32 even for a bf16 model (cast at its input)
    with torch.enable_grad():
        (grad,) = torch.autograd.grad(f(point.to(x.dtype)).sum(), point)
    return x.detach().double() * grad[0].double()


def smoothgrad(f: Scalar, x: torch.Tensor, *, samples: int = SMOOTHGRAD_SAMPLES, noise: float = SMOOTHGRAD_NOISE,
               where: torch.Tensor | None = None, generator: torch.Generator, batch_size: int = 16) -> torch.Tensor:
    """x ⊙ (1/n) Σ_k ∂F/∂x (x + ε_k), ε_k ~ N(0, σ²) (Smilkov et al. 2017 §3 eq. 3 times the input, §4.3).

    σ = ``noise`` · (max x − min x); ``where`` (broadcastable to x, boolean) limits the noise to some elements.
    The noise comes from ``generator`` (on the CPU), so a seed gives the same map."""
    samples = number(samples, "the number of SmoothGrad samples", lo=1, hi=MAX_SAMPLES, integer=True)
    noise = probability(noise, "the SmoothGrad noise level")
    dtype = x.dtype
    base = x.detach().float()
    sigma = noise * float(base.max() - base.min())
    eps = torch.randn((samples, *base.shape), generator=generator, dtype=torch.float32).to(base.device) * sigma
    if where is not None:
        eps = eps * where.to(base.device).float()
    total = torch.zeros(base.shape, dtype=torch.float64, device=base.device)
    with torch.enable_grad():
        for chunk in eps.split(batch_size):
            points = (base.unsqueeze(0) + chunk).requires_grad_(True)  # (b, *x.shape)
            (grad,) = torch.autograd.grad(f(points.to(dtype)).sum(), points)
            total += grad.double().sum(0)
    return base.double() * total / samples


class Completeness:
    """The completeness check of a path attribution (Sundararajan et al. 2017 §3, Prop. 1; Möller et al. 2023 for a
    pair of inputs): the attributions' sum (``total``) equals what the exact integral gives (``target``); the
    difference is the integration error. A subclass provides ``total`` and ``target``."""

    total: float
    target: float

    @property
    def gap(self) -> float:
        """|total − target|: the integration error (0 for the exact integral)."""
        return abs(self.total - self.target)

    @property
    def relative_gap(self) -> float:
        return self.gap / abs(self.target) if abs(self.target) > 1e-12 else float("inf")


@dataclass(frozen=True)
class IntegratedGradients(Completeness):
    """IG of every input element (the shape of x), and the outputs at both ends of the path."""

    attributions: torch.Tensor  # float64, the shape of x
    f_input: float  # F(x)
    f_baseline: float  # F(x')
    steps: int
    rule: str

    @property
    def total(self) -> float:
        """Σ IG, which completeness says equals F(x) − F(x')."""
        return float(self.attributions.sum())

    @property
    def delta(self) -> float:
        return self.f_input - self.f_baseline

    @property
    def target(self) -> float:
        """F(x) − F(x'), what Σ IG equals for the exact integral."""
        return self.delta


def integrated_gradients(f: Scalar, x: torch.Tensor, baseline: torch.Tensor, *, steps: int = DEFAULT_STEPS,
                         rule: str = "trapezoid", batch_size: int = 16) -> IntegratedGradients:
    """IG_i = (x_i − x'_i) · Σ_k w_k ∂F(x' + α_k(x − x'))/∂x_i (Sundararajan et al. 2017, §3 eq. 1 and §5 eq. 3).

    The path points are evaluated ``batch_size`` at a time (one forward and one backward per batch).

    >>> w = torch.tensor([2.0, -1.0])
    >>> ig = integrated_gradients(lambda p: (p * w).sum(-1) ** 2, torch.ones(2), torch.zeros(2), steps=300)
    >>> round(ig.total, 4), round(ig.delta, 4)
    (1.0, 1.0)
    """
    if x.shape != baseline.shape:
        raise ValueError(f"input {tuple(x.shape)} and baseline {tuple(baseline.shape)} must have the same shape")
    alphas, weights = path_points(steps, rule)
    dtype = x.dtype  # the model's; the path itself is laid out in fp32 (a bf16 α grid would be uneven)
    x, baseline = x.detach().float(), baseline.detach().float()
    diff = x - baseline
    avg_grad = torch.zeros(x.shape, dtype=torch.float64, device=x.device)
    shape = (-1,) + (1,) * x.dim()
    with torch.enable_grad():
        for a, w in zip(alphas.split(batch_size), weights.split(batch_size)):
            a = a.to(device=x.device, dtype=torch.float32).view(shape)
            points = (baseline.unsqueeze(0) + a * diff.unsqueeze(0)).requires_grad_(True)  # (b, *x.shape)
            (grad,) = torch.autograd.grad(f(points.to(dtype)).sum(), points)
            avg_grad += (w.to(x.device).view(shape) * grad.double()).sum(0)
    with torch.no_grad():
        ends = f(torch.stack([x, baseline]).to(dtype)).double()
    return IntegratedGradients(diff.double() * avg_grad, float(ends[0]), float(ends[1]), int(steps), rule)


# --------------------------------------------------------------------------------------------
# Classifiers seen from their embeddings
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Embedded:
    """A sentence as a classifier's token embeddings, and the classifier as a function of them."""

    tokens: list[str]
    special: list[bool]  # [CLS], [SEP], ...: kept in every baseline
    inputs: torch.Tensor  # (T, E)
    pad: torch.Tensor  # (E,) the [PAD] token's embedding
    logits: Callable[[torch.Tensor], torch.Tensor]  # (B, T, E) -> (B, C)
    recurrent: bool = False  # an LSTM: cuDNN computes its backward pass only in training mode

    def baseline(self, kind: str = "pad") -> torch.Tensor:
        """x': [PAD] (or zero) embeddings at every word position, the special tokens' own embeddings kept."""
        if kind not in BASELINES:
            raise ValueError(f"the baseline must be one of {', '.join(BASELINES)}, got {kind!r}")
        fill = self.pad if kind == "pad" else torch.zeros_like(self.pad)
        keep = torch.tensor(self.special, device=self.inputs.device).unsqueeze(-1)  # (T, 1)
        return torch.where(keep, self.inputs, fill.expand_as(self.inputs))


def embed(model, tokenizer, text: str, *, max_tokens: int = MAX_TOKENS) -> Embedded:
    """``text`` as ``model``'s token embeddings: a transformers classifier (through ``inputs_embeds``: the model
    adds position and segment embeddings itself) or the BiLSTM student (through its embedding layer)."""
    enc = tokenizer(text, return_tensors="pt", truncation=False, return_special_tokens_mask=True)
    n = int(enc["input_ids"].shape[1])
    token_count(n, "the text", limit=max_tokens, why="for saliency")
    device = next(model.parameters()).device
    ids = enc["input_ids"].to(device)
    special = [bool(s) for s in enc["special_tokens_mask"][0].tolist()]
    tokens = [str(t) for t in tokenizer.convert_ids_to_tokens(ids[0].tolist())]
    pad_id = torch.tensor([[tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0]], device=device)
    with torch.no_grad():
        if hasattr(model, "logits_from_embeddings"):  # a recurrent student: through its own embedding layer
            x, pad = model.input_embeddings(ids)[0], model.input_embeddings(pad_id)[0, 0]
            return Embedded(tokens, special, x, pad, model.logits_from_embeddings, recurrent=True)
        if not hasattr(model, "get_input_embeddings"):
            raise ValueError(f"{type(model).__name__} exposes no input embeddings to attribute to")
        table = model.get_input_embeddings()
        x, pad = table(ids)[0], table(pad_id)[0, 0]
    extra = {k: v.to(device) for k, v in enc.items() if k == "token_type_ids"}

    def logits(e: torch.Tensor) -> torch.Tensor:
        batch = {k: v.expand(e.shape[0], -1) for k, v in extra.items()}
        mask = torch.ones(e.shape[:2], dtype=torch.long, device=e.device)
        return model(inputs_embeds=e, attention_mask=mask, **batch).logits

    return Embedded(tokens, special, x, pad, logits)


# --------------------------------------------------------------------------------------------
# One sentence, both methods
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Saliency:
    """Per-token scores of both methods for the predicted class of one sentence."""

    tokens: list[str]
    special: list[bool]
    labels: list[str]  # class names
    probabilities: np.ndarray  # (C,)
    target: int  # the predicted class, whose probability is attributed
    gradient_x_input: np.ndarray  # (T,)
    ig: IntegratedGradients  # attributions (T, E)
    baseline: str
    smoothgrad: np.ndarray  # (T,) SmoothGrad × input
    foil: int | None = None  # contrastive: F = z_target − z_foil; None: F = P(target)

    @property
    def output(self) -> str:
        """What F is, in words."""
        if self.foil is None:
            return f"P({self.labels[self.target]})"
        return f"logit({self.labels[self.target]}) − logit({self.labels[self.foil]})"

    def methods(self) -> dict[str, np.ndarray]:
        """Every method's per-token scores, in the order the views show them."""
        return {"gradient × input": self.gradient_x_input, "integrated gradients": self.integrated_gradients,
                "SmoothGrad × input": self.smoothgrad}

    @property
    def integrated_gradients(self) -> np.ndarray:
        """(T,): each token's IG summed over its embedding dimensions."""
        return self.ig.attributions.sum(-1).cpu().numpy()


def class_names(model, n: int) -> list[str]:
    id2label = getattr(getattr(model, "config", None), "id2label", None) or {}
    return [str(id2label.get(i, id2label.get(str(i), f"class {i}"))) for i in range(n)]


def pick_foil(foil, labels: list[str], probabilities: torch.Tensor, target: int) -> int | None:
    """The contrast class: None for "none" / "", the second most probable for "runner-up", else a class named by
    its label (or its index); the target itself is refused (z_t − z_t = 0 explains nothing)."""
    if foil is None or foil in ("", "none"):
        return None
    if foil == "runner-up":
        if len(labels) < 2:
            raise ValueError("a contrast needs a classifier with at least two classes")
        return int(torch.argsort(probabilities, descending=True)[1])
    named = {label.lower(): i for i, label in enumerate(labels)}
    index = named.get(str(foil).strip().lower())
    if index is None and str(foil).isdigit() and int(foil) < len(labels):
        index = int(foil)
    if index is None:
        raise ValueError(f"unknown contrast class {foil!r}: choose none, runner-up or one of {', '.join(labels)}")
    if index == target:
        raise ValueError(f"the contrast class {labels[index]!r} is the predicted class itself: choose another one")
    return index


def explain(model, tokenizer, text: str, *, steps: int = DEFAULT_STEPS, baseline: str = "pad",
            rule: str = "trapezoid", max_tokens: int = MAX_TOKENS, batch_size: int = 16, foil=None,
            samples: int = SMOOTHGRAD_SAMPLES, noise: float = SMOOTHGRAD_NOISE, seed: int = 0) -> Saliency:
    """Gradient × input, integrated gradients and SmoothGrad of P(predicted class) for ``text`` — or, with a
    ``foil`` class, of the logit difference z_predicted − z_foil (see the module docstring)."""
    check_steps(steps)
    emb = embed(model, tokenizer, text, max_tokens=max_tokens)
    x, x0 = emb.inputs, emb.baseline(baseline)
    with torch.no_grad():
        probs = torch.softmax(emb.logits(x.unsqueeze(0)).double(), -1)[0]
    target = int(probs.argmax())
    labels = class_names(model, len(probs))
    foil = pick_foil(foil, labels, probs, target)

    def f(e: torch.Tensor) -> torch.Tensor:  # (B, T, E) -> (B,): the attributed output
        z = emb.logits(e).float()
        return torch.softmax(z, -1)[:, target] if foil is None else z[:, target] - z[:, foil]

    words = ~torch.tensor(emb.special).unsqueeze(-1)  # (T, 1): SmoothGrad's noise at the words only
    generator = torch.Generator().manual_seed(seed)
    # cuDNN runs an LSTM's backward pass only in training mode; the native kernel has no such limit
    no_cudnn = torch.backends.cudnn.flags(enabled=False) if emb.recurrent else nullcontext()
    with no_cudnn:
        gxi = gradient_x_input(f, x).sum(-1).cpu().numpy()
        ig = integrated_gradients(f, x, x0, steps=steps, rule=rule, batch_size=batch_size)
        sg = smoothgrad(f, x, samples=samples, noise=noise, where=words, generator=generator,
                        batch_size=batch_size).sum(-1).cpu().numpy()
    return Saliency(emb.tokens, emb.special, labels, probs.cpu().numpy(), target, gxi, ig, baseline, sg, foil)
