"""How faithful is a saliency map? Delete (or insert) tokens in its order and watch the class probability.

- **Deletion / MoRF** (Samek et al. 2017, "Evaluating the visualization of what a deep neural network has
  learned", §III-A): replace the words one at a time, most relevant first, and record F after each step:
  x⁽⁰⁾ = x, x⁽ᵏ⁾ = x with the first k words of the order removed. A faithful order makes F fall fast.
  **AOPC** (eq. 12) = 1/(L + 1) Σ_{k=0}^{L} (F(x⁽⁰⁾) − F(x⁽ᵏ⁾)): higher = the map found what F rests on.
- **Deletion and insertion curves** (Petsiuk et al. 2018, "RISE", §4.1): F against the fraction of words
  removed (deletion: a low area under the curve is good) or inserted into the empty input, most relevant first
  (insertion: a high area is good). Areas by the trapezoid rule over fractions 0..1.

"Removing" a word puts the same baseline embedding at its position that integrated gradients starts from
([PAD]; [CLS] / [SEP] always kept), so the length, positions and segments never change and the curves measure
the tokens' content only. Every method is compared with the same curves for **random orders** (the chance
level: n seeded permutations, mean and spread) and for **attention as an attribution** ([CLS]'s attention to
each word: the last layer's mean over heads, and its rollout, Abnar & Zuidema 2020).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from .checks import number

RANDOM_ORDERS = 10
RANDOM = "random order"

Scalar = Callable[[torch.Tensor], torch.Tensor]  # (B, T, E) -> (B,)


# --------------------------------------------------------------------------------------------
# The maths: pure functions of an order and F
# --------------------------------------------------------------------------------------------
def order_of(scores: np.ndarray, words: list[int]) -> list[int]:
    """The word positions by decreasing score (most relevant first; ties by position)."""
    scores = np.asarray(scores, dtype=np.float64)
    return sorted(words, key=lambda i: (-scores[i], i))


def random_orders(words: list[int], n: int, *, generator: torch.Generator) -> list[list[int]]:
    """``n`` uniformly random permutations of ``words`` from an explicit seeded generator."""
    return [[words[int(k)] for k in torch.randperm(len(words), generator=generator)] for _ in range(n)]


def aopc(deletion: np.ndarray) -> float:
    """Samek et al. 2017 eq. 12 for one input: mean over k = 0..L of F(x⁽⁰⁾) − F(x⁽ᵏ⁾)."""
    deletion = np.asarray(deletion, dtype=np.float64)
    return float(np.mean(deletion[0] - deletion))


def area(curve: np.ndarray) -> float:
    """Area under F against the fraction k/L ∈ [0, 1] (trapezoid rule; Petsiuk et al. 2018 §4.1)."""
    curve = np.asarray(curve, dtype=np.float64)
    if len(curve) < 2:
        return float(curve[0]) if len(curve) else 0.0
    return float(((curve[1:] + curve[:-1]) / 2).mean())


def perturbed(x: torch.Tensor, baseline: torch.Tensor, order: list[int], *, insert: bool = False) -> torch.Tensor:
    """(L + 1, T, E): row k is x with the first k positions of ``order`` set to the baseline (deletion), or the
    baseline with the first k positions restored from x (insertion)."""
    start, source = (baseline, x) if insert else (x, baseline)
    rows = [start.clone()]
    for i in order:
        nxt = rows[-1].clone()
        nxt[i] = source[i]
        rows.append(nxt)
    return torch.stack(rows)


@dataclass(frozen=True)
class Curves:
    """One order's deletion and insertion curves: F after k = 0..L words removed / inserted."""

    method: str
    order: list[int]
    deletion: np.ndarray  # (L + 1,)
    insertion: np.ndarray  # (L + 1,)

    @property
    def aopc(self) -> float:
        return aopc(self.deletion)

    @property
    def deletion_area(self) -> float:
        return area(self.deletion)

    @property
    def insertion_area(self) -> float:
        return area(self.insertion)


def curves(f: Scalar, x: torch.Tensor, baseline: torch.Tensor, order: list[int], *, method: str = "") -> Curves:
    """Deletion and insertion curves of one order, all 2(L + 1) inputs in one batch."""
    batch = torch.cat([perturbed(x, baseline, order), perturbed(x, baseline, order, insert=True)])
    with torch.no_grad():
        out = f(batch).double().cpu().numpy()
    n = len(order) + 1
    return Curves(method, list(order), out[:n], out[n:])


@dataclass(frozen=True)
class Faithfulness:
    """Every method's curves, the random orders' curves, and the figures' numbers."""

    output: str  # what F is, e.g. "P(positive)"
    words: list[int]  # the positions that were removed (special tokens kept)
    methods: list[Curves]  # in the order shown
    random: list[Curves]
    note: str = ""  # e.g. why attention is missing

    @property
    def random_mean(self) -> Curves:
        return Curves(RANDOM, [], np.mean([c.deletion for c in self.random], 0),
                      np.mean([c.insertion for c in self.random], 0))

    def random_spread(self) -> dict[str, float]:
        """Standard deviations over the random orders of each number."""
        return {"aopc": float(np.std([c.aopc for c in self.random])),
                "deletion_area": float(np.std([c.deletion_area for c in self.random])),
                "insertion_area": float(np.std([c.insertion_area for c in self.random]))}

    def rows(self) -> list[dict]:
        """One row per method, then the random orders' mean (± sd): AOPC, deletion area, insertion area."""
        out = [{"method": c.method, "AOPC (deletion, higher = faithful)": c.aopc,
                "deletion area (lower = faithful)": c.deletion_area,
                "insertion area (higher = faithful)": c.insertion_area} for c in self.methods]
        mean, sd = self.random_mean, self.random_spread()
        out.append({"method": f"{RANDOM} (mean of {len(self.random)}; sd {sd['aopc']:.3f})",
                    "AOPC (deletion, higher = faithful)": float(np.mean([c.aopc for c in self.random])),
                    "deletion area (lower = faithful)": mean.deletion_area,
                    "insertion area (higher = faithful)": mean.insertion_area})
        return out


def evaluate(f: Scalar, x: torch.Tensor, baseline: torch.Tensor, scores: dict[str, np.ndarray], words: list[int],
             *, output: str, n_random: int = RANDOM_ORDERS, seed: int = 0, note: str = "") -> Faithfulness:
    """Deletion / insertion curves of each method's order (``scores``: name -> (T,) per-token scores) and of
    ``n_random`` seeded random orders, for F over embeddings ``x`` with ``baseline`` at removed words."""
    if not words:
        raise ValueError("the text has no words to remove (only special tokens)")
    number(n_random, "the number of random orders", lo=1, hi=100, integer=True)
    methods = [curves(f, x, baseline, order_of(s, words), method=name) for name, s in scores.items()]
    generator = torch.Generator().manual_seed(seed)
    rand = [curves(f, x, baseline, o, method=RANDOM) for o in random_orders(words, n_random, generator=generator)]
    return Faithfulness(output, list(words), methods, rand, note)
