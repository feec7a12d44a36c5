"""What every figure of the variant tabs shares: readable at 1400 px and on a 390 px phone.

Titles are short and wrapped (:func:`wrap`: ``<br>`` between lines of at most :data:`TITLE_CHARS`), with details in
a smaller subtitle; the legend sits horizontally under the title and pushes the plot down (never over it, however
many rows it wraps to on a phone); the width is automatic and margins grow with long tick labels (``automargin``).
:func:`finish` does all of it. At most :data:`MAX_LEGEND` legend entries: :func:`group_legend_overflow` folds the
rest into one grey entry. Long category labels are cut (:func:`short`) with the full text on hover, and hover text
is wrapped (:func:`wrap_hover`) so a tooltip fits a phone.

The Leaderboard's figures (``evaluation/plot_style.py``, a layer above) use these same helpers.
"""

from __future__ import annotations

import textwrap

import plotly.graph_objects as go

TITLE_CHARS = 52  # a 14 px title line this long fits a 390 px phone screen
SUBTITLE_CHARS = 64  # 11 px
TITLE_TOP_PX = 12
MAX_LEGEND = 12  # legend entries shown by default
MAX_POINT_LABELS = 40  # scatter points labelled with text; past this many the labels collide (hover keeps them)
OVERFLOW_COLOR = "#8c8c8c"
EXTRA_COLORS = ("#8c564b", "#2ca02c")  # entries 11 and 12: Plotly's default colorway repeats after 10
FONT = dict(size=12)


def wrap(text: str, width: int = TITLE_CHARS) -> str:
    """``text`` as lines of at most ``width`` characters joined by ``<br>`` (Plotly's line break)."""
    return "<br>".join(textwrap.wrap(str(text), width=width, break_long_words=True, break_on_hyphens=False))


def short(text: str, n: int = 24) -> str:
    """``text`` cut to ``n`` characters with an ellipsis (for tick labels; put the full text in the hover)."""
    return text if len(text) <= n else text[: n - 1] + "…"


def wrap_hover(text: str, width: int = 48) -> str:
    """Hover text wrapped to lines of ``width`` characters, so a long tooltip stays inside a phone screen."""
    return wrap(text, width)


def label_positions(xs) -> list[str]:
    """``textposition`` per point: labels of points right of the centre extend left and the others right, so a label
    near either edge stays inside a narrow (phone) plot."""
    xs = [float(x) for x in xs]
    mid = (min(xs) + max(xs)) / 2 if xs else 0.0
    return ["top left" if x > mid else "top right" for x in xs]


def title(text: str, subtitle: str = "") -> dict:
    """A layout ``title``: the wrapped ``text``, then a smaller wrapped ``subtitle``, at the top left."""
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


def group_legend_overflow(fig: go.Figure, *, noun: str) -> go.Figure:
    """Past ``MAX_LEGEND - 1`` legend entries, the remaining traces share one grey entry "other <noun> (k)" that
    toggles them together; each trace keeps its points and its own hover (put the name in the hovertemplate).
    Entries 11 and 12 get colours of their own (the default ten would repeat)."""
    shown = [t for t in fig.data if t.showlegend is not False]
    for t, colour in zip(shown[10:MAX_LEGEND], EXTRA_COLORS):
        t.update(marker_color=colour)
    if len(shown) <= MAX_LEGEND:
        return fig
    rest = shown[MAX_LEGEND - 1:]
    for i, t in enumerate(rest):
        t.update(legendgroup="overflow", showlegend=i == 0, marker_color=OVERFLOW_COLOR)
    rest[0].name = f"other {noun} ({len(rest)})"
    return fig


def finish(fig: go.Figure, *, title: dict, height: int = 420, **layout) -> go.Figure:
    """The common layout: the :func:`title` at the top, the legend (horizontal, wrapping on a phone) right under it,
    then the plot, which the legend pushes down (a legend referenced to the container grows the top margin, so
    nothing overlaps at 390 px or at 1400 px). Fonts readable, width automatic, margins grown by tick labels.
    Past four legend entries the figure grows by a row per two more: a phone fits about two entries a row, and the
    rows the legend takes must not squeeze the plot."""
    height += 20 * -(-max(0, len(legend_entries(fig)) - 4) // 2)
    top = title_px(title["text"])
    title = {**title, "y": 1 - TITLE_TOP_PX / height}
    legend = dict(orientation="h", x=0, xanchor="left", xref="container", yref="container", y=1 - (top + 4) / height,
                  yanchor="top", font=dict(size=11), itemsizing="constant")
    fig.update_layout(height=height, autosize=True, font=FONT, title=title, legend=legend,
                      hoverlabel=dict(namelength=-1), margin=dict(l=10, r=16, t=top + 16, b=40), **layout)
    fig.update_xaxes(automargin=True)
    fig.update_yaxes(automargin=True)
    return fig
