"""What every Leaderboard figure shares: readable titles at 1400 px and at a 390 px phone width, the error figure
that replaces a plot that cannot be drawn, and :func:`safe_figure` (a failing plot never takes the others down).

Titles are short and wrapped (:func:`wrap`: ``<br>`` between lines of at most :data:`TITLE_CHARS`), the legend
sits horizontally under the title and pushes the plot down (never over it), and margins grow with long tick
labels (``automargin``): :func:`finish` does all of it.
"""

from __future__ import annotations

import logging
import textwrap
from typing import Callable

import plotly.graph_objects as go

log = logging.getLogger(__name__)

TITLE_CHARS = 52  # a 14 px title line this long fits a 390 px phone screen
SUBTITLE_CHARS = 64  # 11 px
TITLE_TOP_PX = 12
FONT = dict(size=12)
ERROR_COLOR = "#b00020"


def wrap(text: str, width: int = TITLE_CHARS) -> str:
    """``text`` as lines of at most ``width`` characters joined by ``<br>`` (Plotly's line break)."""
    return "<br>".join(textwrap.wrap(str(text), width=width, break_long_words=True, break_on_hyphens=False)) or ""


def title(text: str, subtitle: str = "") -> dict:
    """A layout ``title``: the wrapped ``text``, then a smaller wrapped ``subtitle``, at the top of the figure
    (:func:`finish` places the legend under it and the plot under both)."""
    body = wrap(text)
    if subtitle:
        body += "<br><span style='font-size:11px'>" + wrap(subtitle, SUBTITLE_CHARS) + "</span>"
    return dict(text=body, x=0.0, xanchor="left", xref="container", yref="container", yanchor="top",
                pad=dict(l=10), font=dict(size=14))


def title_px(text: str) -> int:
    """Pixels a :func:`title` text takes: 20 per title line, 15 per subtitle line, plus the top gap."""
    main, _, sub = str(text).partition("<span")
    return TITLE_TOP_PX + 20 * (main.count("<br>") + (0 if sub else 1)) + (15 * (sub.count("<br>") + 1) if sub else 0)


def legend_entries(fig: go.Figure) -> list[str]:
    """The names the figure's legend lists (one per legend group; traces hidden from the legend left out)."""
    seen: dict[str, None] = {}
    for t in fig.data:
        if t.showlegend is False or not t.name:
            continue
        seen.setdefault(t.legendgroup or t.name, None)
    return list(seen)


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


def finish(fig: go.Figure, *, height: int, title: dict, **layout) -> go.Figure:
    """The common layout: the :func:`title` at the top, the legend (horizontal, wrapping on a phone) right under
    it, then the plot, which the legend pushes down however many rows it wraps to (a legend referenced to the
    container grows the top margin: nothing overlaps at 390 px or at 1400 px). Fonts readable, width automatic."""
    top = title_px(title["text"])
    title = {**title, "y": 1 - TITLE_TOP_PX / height}
    legend = dict(orientation="h", x=0, xanchor="left", xref="container", yref="container", y=1 - (top + 4) / height,
                  yanchor="top", font=dict(size=11), itemsizing="constant")
    fig.update_layout(height=height, autosize=True, font=FONT, title=title, legend=legend,
                      hoverlabel=dict(namelength=-1), margin=dict(l=10, r=16, t=top + 16, b=40), **layout)
    fig.update_xaxes(automargin=True)
    fig.update_yaxes(automargin=True)
    return fig
