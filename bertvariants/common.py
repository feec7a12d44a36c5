"""Helpers shared by the variants: pooling of token states and seeded generators.

Variants import from here, never from each other.
"""

from __future__ import annotations

import torch

POOLING_MODES = ("mean", "cls", "max")


def pool(hidden: torch.Tensor, attention_mask: torch.Tensor, mode: str = "mean") -> torch.Tensor:
    """Pool token states (B, T, H) into sentence vectors (B, H), ignoring padding.

    Sentence-BERT §3 (Reimers & Gurevych 2019): MEAN of all output vectors (their default), the
    output of the CLS token, or MAX-over-time of the output vectors.
    """
    if mode not in POOLING_MODES:
        raise ValueError(f"pooling must be one of {', '.join(POOLING_MODES)}, got {mode!r}")
    if mode == "cls":
        return hidden[:, 0]
    mask = attention_mask.unsqueeze(-1).to(hidden.dtype)  # (B, T, 1)
    if mode == "mean":
        return (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
    # max: padded positions must never win, so push them to the dtype's minimum
    return hidden.masked_fill(mask == 0, torch.finfo(hidden.dtype).min).max(1).values


def make_generator(seed: int | None, device: str | torch.device = "cpu") -> torch.Generator:
    """An explicit torch.Generator (all randomness in the library is drawn from one of these)."""
    gen = torch.Generator(device=device)
    if seed is None:
        gen.seed()
    else:
        gen.manual_seed(int(seed))
    return gen
