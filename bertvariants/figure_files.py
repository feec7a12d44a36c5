"""Heatmaps as files to download: SVG written here, a standalone HTML page around it, and a PNG drawn with Pillow.

Plotly's static export needs kaleido and a Chrome, which a Space (and this machine) lacks, so the files are drawn
from one layout: :func:`layout` turns titled heatmap :class:`Panel` s into a list of rectangles and texts, and the
SVG and PNG writers draw that same list, so the two files agree cell for cell. The SVG carries each cell's value
as a tooltip (``<title>``), and the HTML page is that SVG inline: no script, no network. Labels are sanitised
(control and format characters, which XML forbids or which reorder text, become ``·``).
"""

from __future__ import annotations

import hashlib
import io
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from xml.sax.saxutils import escape

import numpy as np

from .io import atomic_write_bytes

FORMATS = ("png", "svg", "html")
EXPORT_DIR = Path(tempfile.gettempdir()) / "bertvariants-exports"
FONT_FAMILY = "DejaVu Sans, Verdana, Arial, sans-serif"
FONT_FILE = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")
CHAR_W = 0.6  # estimated glyph width per font size (DejaVu Sans averages ≈ 0.55–0.6 em)
MAX_LABEL = 16
# viridis at 9 evenly spaced points (matplotlib's table), interpolated linearly
VIRIDIS = np.array([(68, 1, 84), (71, 44, 122), (59, 81, 139), (44, 113, 142), (33, 144, 141), (39, 173, 129),
                    (92, 200, 99), (170, 220, 50), (253, 231, 37)], dtype=float)


@dataclass(frozen=True)
class Panel:
    """One titled heatmap: ``values[r, c]`` with row and column labels, a colour bar from vmin to vmax."""

    title: str
    values: np.ndarray  # (R, C)
    row_labels: list[str]
    col_labels: list[str]
    row_title: str
    col_title: str
    value_label: str  # what the colour measures (colour-bar caption)
    vmin: float = 0.0
    vmax: float | None = None  # None: the largest value
    annotate: bool = False  # write each value in its cell (when the cells are large enough)
    highlight: tuple[int, int] | None = None  # (row, col) outlined


@dataclass(frozen=True)
class Series:
    """One line of a :class:`LinePanel`: y against x, optionally dashed, with optional text at some points."""

    name: str
    x: Sequence[float]
    y: Sequence[float]
    dash: bool = False
    labels: Sequence[str] | None = None  # one per point ("" for none): e.g. a token at its trajectory's end


@dataclass(frozen=True)
class LinePanel:
    """A titled line chart (curves, trajectories): every series on one pair of axes, a legend below."""

    title: str
    series: list[Series]
    x_title: str
    y_title: str
    markers: bool = True


# Plotly's default colours, so a file's lines have the page's colours
PALETTE = ("#636efa", "#ef553b", "#00cc96", "#ab63fa", "#ffa15a", "#19d3f3", "#ff6692", "#b6e880", "#ff97ff",
           "#fecb52")


@dataclass(frozen=True)
class Line:
    points: tuple[tuple[float, float], ...]
    stroke: str
    width: float = 2.0
    dash: bool = False


@dataclass(frozen=True)
class Rect:
    x: float
    y: float
    w: float
    h: float
    fill: str | None
    stroke: str | None = None
    tooltip: str | None = None


@dataclass(frozen=True)
class Text:
    x: float
    y: float
    text: str
    size: float
    anchor: str = "start"  # start | middle | end
    rotate: bool = False  # True: reads bottom to top (anchor "end" = the text ends at (x, y) and hangs below)
    bold: bool = False
    fill: str = "#222222"


@dataclass
class Drawing:
    width: float
    height: float
    items: list = field(default_factory=list)


def clean_label(s: str, limit: int = MAX_LABEL) -> str:
    """A label safe for XML and for display: non-printable characters -> ·, at most ``limit`` characters."""
    s = "".join(ch if ch.isprintable() else "·" for ch in str(s))
    return s if len(s) <= limit else s[: limit - 1] + "…"


def colour(t: float) -> str:
    """Viridis at t ∈ [0, 1] as #rrggbb."""
    t = min(max(float(t), 0.0), 1.0) * (len(VIRIDIS) - 1)
    i = min(int(t), len(VIRIDIS) - 2)
    rgb = VIRIDIS[i] + (VIRIDIS[i + 1] - VIRIDIS[i]) * (t - i)
    return "#" + "".join(f"{round(v):02x}" for v in rgb)


def _fmt(v: float) -> str:
    return f"{v:.3g}" if abs(v) < 1000 else f"{v:.0f}"


def _text_w(s: str, size: float) -> float:
    return len(s) * size * CHAR_W


def _panel(p: Panel, x0: float, y0: float) -> tuple[list, float, float]:
    """Items of one panel placed at (x0, y0); returns (items, width, height)."""
    rows, cols = p.values.shape
    cell = float(np.clip(560 / max(rows, cols, 1), 8, 28))
    fs = float(np.clip(cell * 0.8, 7, 12))
    rlab = [clean_label(s) for s in p.row_labels]
    clab = [clean_label(s) for s in p.col_labels]
    left = 22 + max((_text_w(s, fs) for s in rlab), default=0) + 6
    gx, gy = x0 + left, y0 + 26
    vmax = float(np.nanmax(p.values)) if p.vmax is None else p.vmax
    span = vmax - p.vmin if vmax > p.vmin else 1.0
    items: list = [Text(x0, y0 + 15, clean_label(p.title, 120), 14, bold=True)]
    show_values = p.annotate and cell >= 22
    for r in range(rows):
        for c in range(cols):
            v = float(p.values[r, c])
            t = (v - p.vmin) / span
            items.append(Rect(gx + c * cell, gy + r * cell, cell, cell, colour(t),
                              tooltip=f"{p.row_title} {rlab[r]} · {p.col_title} {clab[c]}: {v:.4f}"))
            if show_values:
                label = f"{v:.2f}" if abs(v) < 10 else f"{v:.0f}"
                items.append(Text(gx + (c + 0.5) * cell, gy + (r + 0.62) * cell, label, min(10.0, cell * 0.36),
                                  "middle", fill="#ffffff" if t < 0.6 else "#111111"))
    if p.highlight is not None:
        r, c = p.highlight
        items.append(Rect(gx + c * cell, gy + r * cell, cell, cell, None, stroke="#e4002b"))
    for r, s in enumerate(rlab):
        items.append(Text(gx - 5, gy + (r + 0.5) * cell + fs * 0.35, s, fs, "end"))
    for c, s in enumerate(clab):
        items.append(Text(gx + (c + 0.5) * cell + fs * 0.35, gy + rows * cell + 5, s, fs, "end", rotate=True))
    grid_w, grid_h = cols * cell, rows * cell
    items.append(Text(x0 + 13, gy + grid_h / 2, clean_label(p.row_title, 60), 12, "middle", rotate=True))
    below = gy + grid_h + 5 + max((_text_w(s, fs) for s in clab), default=0) + 6
    items.append(Text(gx + grid_w / 2, below + 12, clean_label(p.col_title, 60), 12, "middle"))
    # colour bar: 40 slices from vmin (bottom) to vmax (top)
    bx, bh = gx + grid_w + 18, max(grid_h, 120.0)
    for k in range(40):
        items.append(Rect(bx, gy + bh * (39 - k) / 40, 14, bh / 40 + 0.5, colour((k + 0.5) / 40)))
    for frac in (0.0, 0.5, 1.0):
        items.append(Text(bx + 19, gy + bh * (1 - frac) + 4, _fmt(p.vmin + frac * span), 10))
    items.append(Text(bx + 7, gy + bh + 16, clean_label(p.value_label, 40), 10, "middle"))
    width = (bx + 19 + 50) - x0
    width = max(width, _text_w(p.title, 14) + 10, bx + 7 + _text_w(p.value_label, 10) / 2 - x0)
    height = max(below + 20, gy + bh + 24) - y0
    return items, width, height


def _ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    return [lo + (hi - lo) * k / (n - 1) for k in range(n)]


def _line_panel(p: LinePanel, x0: float, y0: float) -> tuple[list, float, float]:
    """Items of one line chart placed at (x0, y0): a 480 × 260 plot, ticks, one polyline per series, a legend."""
    xs = np.concatenate([np.asarray(s.x, dtype=float) for s in p.series])
    ys = np.concatenate([np.asarray(s.y, dtype=float) for s in p.series])
    (xlo, xhi), (ylo, yhi) = (float(xs.min()), float(xs.max())), (float(ys.min()), float(ys.max()))
    xpad, ypad = (xhi - xlo) * 0.04 or 0.5, (yhi - ylo) * 0.06 or 0.5
    xlo, xhi, ylo, yhi = xlo - xpad, xhi + xpad, ylo - ypad, yhi + ypad
    gx, gy, w, h = x0 + 64, y0 + 26, 480.0, 260.0

    def at(x: float, y: float) -> tuple[float, float]:
        return gx + (x - xlo) / (xhi - xlo) * w, gy + h - (y - ylo) / (yhi - ylo) * h

    items: list = [Text(x0, y0 + 15, clean_label(p.title, 120), 14, bold=True),
                   Rect(gx, gy, w, h, "#f7f7fb", stroke=None)]
    for v in _ticks(xlo + xpad, xhi - xpad):
        px, _ = at(v, ylo)
        items += [Line(((px, gy), (px, gy + h)), "#dddddd", 1.0), Text(px, gy + h + 14, _fmt(v), 10, "middle")]
    for v in _ticks(ylo + ypad, yhi - ypad):
        _, py = at(xlo, v)
        items += [Line(((gx, py), (gx + w, py)), "#dddddd", 1.0), Text(gx - 5, py + 4, _fmt(v), 10, "end")]
    for k, s in enumerate(p.series):
        colour_k = PALETTE[k % len(PALETTE)]
        pts = tuple(at(float(a), float(b)) for a, b in zip(s.x, s.y))
        items.append(Line(pts, colour_k, 2.0, s.dash))
        if p.markers:
            items += [Rect(px - 2.5, py - 2.5, 5, 5, colour_k) for px, py in pts]
        for (px, py), label in zip(pts, s.labels or ()):
            if label:
                items.append(Text(px + 5, py - 5, clean_label(label), 10, fill=colour_k))
    items.append(Text(gx + w / 2, gy + h + 32, clean_label(p.x_title, 60), 12, "middle"))
    items.append(Text(x0 + 13, gy + h / 2, clean_label(p.y_title, 60), 12, "middle", rotate=True))
    ly = gy + h + 50
    for k, s in enumerate(p.series):  # the legend: one entry a row
        items += [Line(((gx, ly + 18 * k - 4), (gx + 24, ly + 18 * k - 4)), PALETTE[k % len(PALETTE)], 2.0, s.dash),
                  Text(gx + 30, ly + 18 * k, clean_label(s.name, 60), 11)]
    width = max(gx + w + 16 - x0, _text_w(p.title, 14) + 10)
    return items, width, ly + 18 * len(p.series) - y0


def layout(panels: list[Panel], *, title: str) -> Drawing:
    """Panels stacked top to bottom under a title, as rectangles and texts (what both writers draw)."""
    if not panels:
        raise ValueError("nothing to draw: no panels")
    items: list = [Text(12, 24, clean_label(title, 140), 16, bold=True)]
    y, width = 44.0, _text_w(title, 16) + 24
    for p in panels:
        if isinstance(p, LinePanel):
            if not p.series or any(len(s.x) != len(s.y) or not len(s.x) for s in p.series):
                raise ValueError(f"panel {p.title!r}: every series needs as many x as y values, at least one")
            part, w, h = _line_panel(p, 12, y)
            items += part
            width, y = max(width, w + 24), y + h + 24
            continue
        if p.values.ndim != 2 or p.values.shape != (len(p.row_labels), len(p.col_labels)):
            raise ValueError(f"panel {p.title!r}: values {p.values.shape} do not match its "
                             f"{len(p.row_labels)} × {len(p.col_labels)} labels")
        part, w, h = _panel(p, 12, y)
        items += part
        width, y = max(width, w + 24), y + h + 24
    return Drawing(width=float(np.ceil(width)), height=float(np.ceil(y)), items=items)


# --------------------------------------------------------------------------------------------
# Writers
# --------------------------------------------------------------------------------------------
def to_svg(d: Drawing) -> str:
    """The drawing as an SVG document (each cell's value in its ``<title>`` tooltip)."""
    out = [(f'<svg xmlns="http://www.w3.org/2000/svg" width="{d.width:.0f}" height="{d.height:.0f}" '
            f'viewBox="0 0 {d.width:.0f} {d.height:.0f}" font-family="{FONT_FAMILY}">'),
           f'<rect width="{d.width:.0f}" height="{d.height:.0f}" fill="#ffffff"/>']
    for it in d.items:
        if isinstance(it, Line):
            pts = " ".join(f"{x:.1f},{y:.1f}" for x, y in it.points)
            dash = ' stroke-dasharray="6 4"' if it.dash else ""
            out.append(f'<polyline points="{pts}" fill="none" stroke="{it.stroke}" stroke-width="{it.width:g}"{dash}/>')
        elif isinstance(it, Rect):
            paint = f'fill="{it.fill}"' if it.fill else 'fill="none"'
            if it.stroke:
                paint += f' stroke="{it.stroke}" stroke-width="2"'
            tip = f"<title>{escape(it.tooltip)}</title>" if it.tooltip else ""
            out.append(f'<rect x="{it.x:.1f}" y="{it.y:.1f}" width="{it.w:.1f}" height="{it.h:.1f}" {paint}>'
                       f"{tip}</rect>"
                       if tip else
                       f'<rect x="{it.x:.1f}" y="{it.y:.1f}" width="{it.w:.1f}" height="{it.h:.1f}" {paint}/>')
        else:
            where = (f'transform="translate({it.x:.1f},{it.y:.1f}) rotate(-90)"' if it.rotate
                     else f'x="{it.x:.1f}" y="{it.y:.1f}"')
            weight = ' font-weight="bold"' if it.bold else ""
            out.append(f'<text {where} font-size="{it.size:.1f}" text-anchor="{it.anchor}" fill="{it.fill}"{weight}>'
                       f"{escape(it.text)}</text>")
    out.append("</svg>")
    return "\n".join(out)


def to_html(d: Drawing, *, title: str, caption: str = "") -> str:
    """A standalone page: the SVG inline (hover a cell for its value) and a caption; no script, no network."""
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{escape(clean_label(title, 140))}</title>"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<style>body{{font-family:{FONT_FAMILY};margin:16px;color:#222}} svg{{max-width:100%;height:auto}}"
            "</style></head><body>\n"
            f"<p>{escape(caption)}</p>\n{to_svg(d)}\n</body></html>\n")


@lru_cache(maxsize=16)
def _font(size: int, bold: bool = False):
    from PIL import ImageFont

    path = FONT_FILE.with_name("DejaVuSans-Bold.ttf") if bold else FONT_FILE
    try:
        return ImageFont.truetype(str(path), size)
    except OSError:  # no DejaVu here: Pillow's own scalable font (Pillow ≥ 10.1)
        return ImageFont.load_default(size=size)


def _png_line(draw, points: list[tuple[float, float]], fill: str, width: int, dash: bool) -> None:
    """A polyline; dashed as 6-on / 4-off segments (Pillow draws no dashes), measured along the line."""
    if not dash:
        draw.line(points, fill=fill, width=width, joint="curve")
        return
    on, off, travelled = 12.0, 8.0, 0.0  # at the PNG's scale 2: the SVG's 6 / 4
    for (x1, y1), (x2, y2) in zip(points, points[1:]):
        length = float(np.hypot(x2 - x1, y2 - y1))
        t = 0.0
        while t < length:
            phase = travelled % (on + off)
            step = min((on - phase) if phase < on else (on + off - phase), length - t)
            if phase < on:
                a, b = t / length, (t + step) / length
                draw.line([(x1 + (x2 - x1) * a, y1 + (y2 - y1) * a), (x1 + (x2 - x1) * b, y1 + (y2 - y1) * b)],
                          fill=fill, width=width)
            t, travelled = t + step, travelled + step


def to_png(d: Drawing, *, scale: float = 2.0) -> bytes:
    """The drawing rasterised with Pillow at ``scale`` × its size (2: sharp on high-density screens)."""
    from PIL import Image, ImageDraw

    img = Image.new("RGB", (int(d.width * scale), int(d.height * scale)), "white")
    draw = ImageDraw.Draw(img)
    for it in d.items:
        if isinstance(it, Line):
            _png_line(draw, [(x * scale, y * scale) for x, y in it.points], it.stroke, max(1, round(it.width * scale)),
                      it.dash)
            continue
        if isinstance(it, Rect):
            box = [it.x * scale, it.y * scale, (it.x + it.w) * scale - 1, (it.y + it.h) * scale - 1]
            if it.fill:
                draw.rectangle(box, fill=it.fill)
            if it.stroke:
                draw.rectangle(box, outline=it.stroke, width=max(1, int(2 * scale)))
            continue
        font = _font(max(6, round(it.size * scale)), it.bold)
        if not it.rotate:
            anchor = {"start": "ls", "middle": "ms", "end": "rs"}[it.anchor]
            draw.text((it.x * scale, it.y * scale), it.text, font=font, fill=it.fill, anchor=anchor)
            continue
        left, top, right, bottom = font.getbbox(it.text)
        if right <= left:
            continue
        mask = Image.new("L", (right - left + 2, bottom - top + 2), 0)
        ImageDraw.Draw(mask).text((1 - left, 1 - top), it.text, font=font, fill=255)
        mask = mask.rotate(90, expand=True)  # counter-clockwise: reads bottom to top, its end at the top
        x = it.x * scale - mask.width * 0.8  # the baseline sits at x (as in the SVG)
        y = it.y * scale - {"start": mask.height, "middle": mask.height / 2, "end": 0}[it.anchor]
        img.paste(Image.new("RGB", mask.size, it.fill), (int(x), int(y)), mask)
    buf = io.BytesIO()
    img.save(buf, format="PNG", optimize=True)
    return buf.getvalue()


def write_files(panels: list, *, title: str, caption: str = "", stem: str = "figure",
                folder: Path | None = None) -> list[Path]:
    """PNG, SVG and HTML of the panels (heatmap :class:`Panel` s and :class:`LinePanel` s), named by their
    content's hash under one export folder (the same figure reuses its files; Gradio's cache cleanup removes old
    copies it served)."""
    d = layout(panels, title=title)
    svg = to_svg(d)
    digest = hashlib.sha256((svg + caption).encode("utf-8")).hexdigest()[:16]
    folder = Path(folder) if folder else EXPORT_DIR
    data = {"png": lambda: to_png(d), "svg": lambda: svg.encode("utf-8"),
            "html": lambda: to_html(d, title=title, caption=caption).encode("utf-8")}
    paths = []
    for ext in FORMATS:
        path = folder / f"{stem}-{digest}.{ext}"
        if not path.exists():
            atomic_write_bytes(path, data[ext]())
        paths.append(path)
    return paths
