"""One colour per model for every Leaderboard figure: the bars, the scatter, the radar and the two-run view.

A model's colour is its family's hue (the ``variant`` column: BERT, RoBERTa, ALBERT, ...) in a shade that tells
the family's models apart. Both are assigned from a stable order, the sorted family names and, within a family,
the sorted model names of the *whole* board (not of the filtered rows), so filtering, sorting or switching views
never recolours a model. Colours are plain ``rgb(r, g, b)`` strings (no gradio, no I/O).

>>> colors = color_map([("BERT-base", "BERT"), ("RoBERTa-base", "RoBERTa"), ("RoBERTa-large", "RoBERTa")])
>>> colors["BERT-base"] != colors["RoBERTa-base"] != colors["RoBERTa-large"]
True
"""

from __future__ import annotations

from typing import Iterable, Mapping

import pandas as pd
import plotly.colors

# family hues: Tableau 10 (plotly's D3) without its grey (grey is "other"), three more distinct hues, then Dark24
FAMILY_HUES = tuple(c for c in plotly.colors.qualitative.D3 if c != "#7F7F7F") + ("#F2B701", "#3C3C8C", "#00A08A") \
    + tuple(plotly.colors.qualitative.Dark24)
# shade of the k-th model of a family: > 0 mixes towards white, < 0 towards black (the first keeps the hue)
SHADES = (0.0, -0.45, 0.45, -0.25, 0.3, -0.6, 0.6, -0.12, 0.15, -0.35)
OTHER_FAMILY = "other"
MAX_LEGEND = 12  # legend entries a figure shows by default (the issue: ≤ ~12)


def _rgb(color: str) -> tuple[float, float, float]:
    if color.startswith("#"):
        return tuple(float(c) for c in plotly.colors.hex_to_rgb(color))
    return tuple(float(c) for c in plotly.colors.unlabel_rgb(color))


def shade(color: str, t: float) -> str:
    """``color`` mixed towards white (``t`` > 0) or black (``t`` < 0) by ``|t|`` (0..1), as ``rgb(...)``."""
    if not -1.0 <= t <= 1.0:
        raise ValueError(f"shade must be in [-1, 1], got {t}")
    target = (255.0, 255.0, 255.0) if t > 0 else (0.0, 0.0, 0.0)
    mixed = plotly.colors.find_intermediate_color(_rgb(color), target, abs(t))
    return "rgb({}, {}, {})".format(*(int(round(c)) for c in mixed))


def family_of(variant) -> str:
    """The family a row's ``variant`` names (empty or missing: :data:`OTHER_FAMILY`)."""
    text = "" if variant is None or (isinstance(variant, float) and variant != variant) else str(variant).strip()
    return text or OTHER_FAMILY


def model_families(rows: pd.DataFrame | Iterable[tuple[str, str]]) -> dict[str, str]:
    """model -> family, from a board (columns ``model``, ``variant``) or (model, variant) pairs; a model listed
    under several families keeps the first non-empty one in sorted order."""
    pairs = zip(rows["model"], rows["variant"]) if isinstance(rows, pd.DataFrame) else rows
    out: dict[str, str] = {}
    for model, variant in sorted(((str(m), family_of(v)) for m, v in pairs),
                                 key=lambda mv: (mv[0], mv[1] == OTHER_FAMILY, mv[1])):
        out.setdefault(model, variant)
    return out


def family_colors(families: Iterable[str]) -> dict[str, str]:
    """family -> hue, in sorted order (:data:`OTHER_FAMILY` always grey)."""
    named = sorted({f for f in families if f != OTHER_FAMILY}, key=str.lower)
    out = {f: shade(FAMILY_HUES[i % len(FAMILY_HUES)], 0.0) for i, f in enumerate(named)}
    out[OTHER_FAMILY] = "rgb(140, 140, 140)"
    return out


def color_map(rows: pd.DataFrame | Iterable[tuple[str, str]]) -> dict[str, str]:
    """model -> colour for every model of ``rows`` (the whole board: see the module docstring)."""
    families = model_families(rows)
    hues = family_colors(families.values())
    out: dict[str, str] = {}
    for family in hues:
        members = sorted((m for m, f in families.items() if f == family), key=lambda m: (m.lower(), m))
        for k, model in enumerate(members):
            out[model] = shade(hues[family], SHADES[k % len(SHADES)])
    return out


def color_of(model: str, colors: Mapping[str, str] | None, default: str = "rgb(140, 140, 140)") -> str:
    """The model's colour in ``colors`` (a model the map does not know is grey)."""
    return (colors or {}).get(str(model), default)
