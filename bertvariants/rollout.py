"""Attention rollout and attention flow (Abnar & Zuidema 2020, "Quantifying Attention Flow in Transformers").

Raw attention says which tokens one layer mixes; after a few layers every position holds a mixture of all the
inputs, so layer L's weights no longer say which *input* tokens a position reads. Both methods follow the
attention back through the layers to the input, over the graph whose nodes are (layer, position) and whose edge
from position i of layer l to position j of layer l − 1 weighs Â_l[i, j]:

- the residual connection is part of that graph (§3): Â = 0.5·A + 0.5·I with A the heads' mean, rows
  renormalised (:func:`residual_attention`), so each row of Â stays a probability distribution;
- **rollout** (§3, eq. 1) multiplies them: Ã_l = Â_l · Ã_{l−1}, Ã_1 = Â_1 — the share of each input token in
  position i at layer l when attention mixes linearly. A product of row-stochastic matrices is row-stochastic,
  so every row of Ã sums to 1;
- **flow** (§3) treats the weights as capacities and takes, for each pair (i at layer l, j at the input), the
  maximum flow from one to the other: the bottleneck the paths share, not their product. Exact, by max-flow
  (scipy's Dinic / Edmonds–Karp on integer capacities scaled by :data:`FLOW_SCALE`); (l + 1)·T nodes and
  l·T² edges per problem and T² problems, so it is kept to :data:`MAX_FLOW_TOKENS` tokens.
"""

from __future__ import annotations

import numpy as np

from .checks import number

MAX_FLOW_TOKENS = 40  # T² max-flow problems on (L + 1)·T nodes: ≈ 1 s for 6 layers at 40 tokens on one core
FLOW_SCALE = 1_000_000  # capacities as integers (scipy's max-flow needs them): 6 decimals kept
METHODS = ("attention", "rollout", "flow")


def residual_attention(weights: np.ndarray) -> np.ndarray:
    """Â = 0.5·mean_h(A) + 0.5·I with rows renormalised (§3): (L, H, T, T) -> (L, T, T) float64."""
    w = np.asarray(weights, dtype=np.float64)
    if w.ndim != 4 or w.shape[-1] != w.shape[-2]:
        raise ValueError(f"rollout needs self-attention weights (L, H, T, T), got shape {w.shape}")
    a = 0.5 * w.mean(1) + 0.5 * np.eye(w.shape[-1])
    return a / a.sum(-1, keepdims=True)


def rollout(weights: np.ndarray) -> np.ndarray:
    """Ã_l = Â_l · Ã_{l−1} for every layer (§3 eq. 1): (L, H, T, T) -> (L, T, T); Ã_l[i, j] is input token j's
    share in position i after layer l, and every row sums to 1."""
    a = residual_attention(weights)
    out = np.empty_like(a)
    out[0] = a[0]
    for layer in range(1, len(a)):
        out[layer] = a[layer] @ out[layer - 1]
    return out


def flow_graph(a: np.ndarray):
    """The layered graph of Â (L, T, T) as a scipy CSR matrix of integer capacities: node l·T + i is position i
    after layer l (layer 0: the input); edge (l, i) → (l − 1, j) has capacity Â_l[i, j] · FLOW_SCALE."""
    from scipy.sparse import csr_matrix

    layers, t, _ = a.shape
    rows, cols, caps = [], [], []
    for layer in range(1, layers + 1):
        i, j = np.meshgrid(np.arange(t), np.arange(t), indexing="ij")
        rows.append((layer * t + i).ravel())
        cols.append(((layer - 1) * t + j).ravel())
        caps.append(np.floor(a[layer - 1] * FLOW_SCALE).astype(np.int64).ravel())
    rows, cols, caps = np.concatenate(rows), np.concatenate(cols), np.concatenate(caps)
    keep = caps > 0
    n = (layers + 1) * t
    return csr_matrix((caps[keep].astype(np.int32), (rows[keep], cols[keep])), shape=(n, n))


def flow(weights: np.ndarray, *, layer: int | None = None, rows=None) -> np.ndarray:
    """Attention flow (§3) from every position after ``layer`` (from 1; None: the last) to every input token:
    F[i, j] = max-flow from node (layer, i) to node (0, j) with capacities Â (floored to 1e-6: no node sends
    more than 1). (T, T), entries in [0, 1]; ``rows`` (positions) limits the sources solved, the other rows stay 0."""
    from scipy.sparse.csgraph import maximum_flow

    a = residual_attention(weights)
    depth = len(a) if layer is None else number(layer, "layer", lo=1, hi=len(a), integer=True)
    t = a.shape[-1]
    if t > MAX_FLOW_TOKENS:
        raise ValueError(f"attention flow solves {t}² max-flow problems; the limit is {MAX_FLOW_TOKENS} tokens "
                         "(rollout has none): shorten the text or choose rollout")
    graph = flow_graph(a[:depth])
    out = np.zeros((t, t))
    for i in range(t) if rows is None else rows:
        for j in range(t):
            out[i, j] = maximum_flow(graph, depth * t + i, j).flow_value / FLOW_SCALE
    return out


def cls_scores(weights: np.ndarray, method: str, *, position: int = 0) -> np.ndarray:
    """One position's (by default [CLS]'s) attention to the input tokens as an attribution (T,): the last
    layer's raw attention (mean of heads), its rollout row or its flow row."""
    if method == "attention":
        return np.asarray(weights, dtype=np.float64)[-1, :, position].mean(0)
    if method == "rollout":
        return rollout(weights)[-1, position]
    if method == "flow":
        return flow(weights, rows=[position])[position]
    raise ValueError(f"the attention method must be one of {', '.join(METHODS)}, got {method!r}")
