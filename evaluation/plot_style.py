"""What every Leaderboard figure shares: readable titles at 1400 px and at a 390 px phone width, the error figure
that replaces a plot that cannot be drawn, and :func:`safe_figure` (a failing plot never takes the others down).

Titles are short and wrapped (:func:`wrap`: ``<br>`` between lines of at most :data:`TITLE_CHARS`), the legend
sits horizontally under the title and pushes the plot down (never over it), and margins grow with long tick
labels (``automargin``): :func:`finish` does all of it. :func:`finish` and the title, wrapping and legend-counting
helpers are the variant tabs' own (:mod:`bertvariants.figures`, a layer below), so both follow one set of rules.
"""

from __future__ import annotations

import logging
import textwrap
from typing import Callable

import plotly.graph_objects as go

from bertvariants.figures import (FONT, SUBTITLE_CHARS, TITLE_CHARS, TITLE_TOP_PX,  # noqa: F401 - one set of
                                  finish, legend_entries, title, title_px, wrap)  # rules for every figure, re-exported

log = logging.getLogger(__name__)

ERROR_COLOR = "#b00020"


def error_figure(message: str) -> go.Figure:
    """An empty figure that says what went wrong, wrapped to stay inside its box at any width."""
    fig = go.Figure()
    lines = textwrap.wrap(str(message), width=44, break_long_words=True) or [""]
    fig.add_annotation(text="<br>".join(lines), x=0.5, y=0.5, xref="paper", yref="paper", showarrow=False,
                       font=dict(size=13, color=ERROR_COLOR), align="center")
    fig.update_layout(xaxis=dict(visible=False), yaxis=dict(visible=False), height=max(220, 120 + 20 * len(lines)),
                      margin=dict(l=10, r=10, t=20, b=20), meta={"error": str(message)})
    return fig


def safe_figure(build: Callable[..., go.Figure], *args, **kwargs) -> go.Figure:
    """``build(*args, **kwargs)``, or an :func:`error_figure` saying why it failed."""
    try:
        return build(*args, **kwargs)
    except Exception as exc:  # noqa: BLE001 - a failing plot becomes a message, never a dead callback
        log.exception("plot %s failed", getattr(build, "__name__", build))
        return error_figure(f"Could not draw this plot: {exc}")
