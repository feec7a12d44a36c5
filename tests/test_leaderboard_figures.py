"""The Leaderboard's figures as a user sees them: short legends, bars of visible width, one colour per model in
every figure, titles and labels that fit a 390 px phone, errors that stay inside their box."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from evaluation import dashboard, palette, plot_style
from evaluation import leaderboard as lb

FAMILIES = ("ALBERT", "BERT", "DistilBERT", "ELECTRA", "RoBERTa", "SpanBERT", "Sentence-BERT", "BART")
TASKS = ("sst2", "mrpc", "stsb", "rte", "cola")


@pytest.fixture(scope="module")
def crowded() -> pd.DataFrame:
    """40 models (8 families × 5) on 5 tasks, each measured and published: what made ~40 legend entries."""
    rng = np.random.default_rng(0)
    rows = []
    for family in FAMILIES:
        for k in range(5):
            for task in TASKS:
                for source in ("measured", "paper"):
                    s = float(rng.uniform(50, 95))
                    ci = (s - 2, s + 2) if source == "measured" else (None, None)
                    rows.append(dict(model=f"{family}-{k}", variant=family, task=task, split="dev", source=source,
                                     primary_metric="accuracy", score=s, ci95_low=ci[0], ci95_high=ci[1],
                                     params_millions=10.0 * (k + 1), latency_ms=float(k + 1), higher_is_better=True))
    return pd.DataFrame(rows)


def _plain(text: str) -> list[str]:
    """The lines of a Plotly text without its markup."""
    return [re.sub(r"<[^>]+>", "", line) for line in str(text).split("<br>")]


def test_default_bars_have_a_short_legend_and_more_on_request(crowded):
    fig = dashboard.bars_by_task(crowded)
    entries = plot_style.legend_entries(fig)
    assert len(entries) <= palette.MAX_LEGEND and entries == sorted(FAMILIES, key=str.lower)
    per_task = pd.Series([t.yaxis for t in fig.data if t.type == "bar" for _ in t.x]).value_counts()
    assert (per_task == len(FAMILIES) * 2).all()  # best per (family, source): 16 bars per task, not 80
    every = dashboard.bars_by_task(crowded, view="every row")
    assert every.layout.meta["bars"] == len(TASKS) * dashboard.MAX_BARS_PER_TASK > fig.layout.meta["bars"]
    assert len(plot_style.legend_entries(every)) <= palette.MAX_LEGEND  # the legend lists families either way
    with pytest.raises(ValueError, match="bars: choose one of"):
        dashboard.bar_rows(crowded, view="everything")


def test_bars_have_visible_width(crowded):
    fig = dashboard.bars_by_task(crowded)
    plot_px = fig.layout.height - fig.layout.margin.t - fig.layout.margin.b
    for axis, n in pd.Series([t.yaxis for t in fig.data if t.type == "bar" for _ in t.x]).value_counts().items():
        domain = fig.layout[axis.replace("y", "yaxis")].domain
        assert (domain[1] - domain[0]) * plot_px / n >= 20  # px per bar, whatever the screen width
    assert fig.layout.barmode == "overlay"  # no empty slots reserved for models absent from a task


def test_the_default_board_figures_stay_within_twelve_legend_entries():
    board = lb.board()
    colors = palette.color_map(board)
    for build in (dashboard.bars_by_task, dashboard.glue_radar, dashboard.score_vs_params):
        fig = dashboard.safe_figure(build, board, colors=colors)
        assert len(plot_style.legend_entries(fig)) <= palette.MAX_LEGEND, build.__name__


def test_one_colour_per_model_in_every_figure(crowded):
    colors = palette.color_map(crowded)
    assert palette.color_map(crowded.sample(frac=1, random_state=1)) == colors  # order of rows: no effect
    assert len(set(colors.values())) == len(colors)  # 40 models, 40 colours
    subset = crowded[crowded["task"].isin(["sst2", "mrpc", "stsb"]) & (crowded["variant"] != "BERT")]
    seen: dict[str, set] = {}
    bars = dashboard.bars_by_task(subset, colors=colors)
    for t in bars.data:
        if t.type == "bar":
            for model, color in zip(t.customdata[:, 0], t.marker.color):
                seen.setdefault(model, set()).add(color)
    for t in dashboard.score_vs_params(subset, colors=colors).data:
        if t.x[0] is not None:
            for text, color in zip(t.text, t.marker.color):
                seen.setdefault(text.split(" · ")[0], set()).add(color)
    for t in dashboard.glue_radar(subset, colors=colors).data:
        seen.setdefault(t.name.rsplit(" (", 1)[0], set()).add(t.line.color)
    assert all(c == {colors[m]} for m, c in seen.items()) and len(seen) == 35
    # a filtered figure without the map recolours models: the UI always passes the whole board's map
    assert palette.color_map(subset) != {m: colors[m] for m in palette.color_map(subset)}


def test_family_hues_and_shades():
    colors = palette.color_map([("RoBERTa-base", "RoBERTa"), ("RoBERTa-large", "RoBERTa"), ("x", None), ("y", "")])
    assert colors["x"] != colors["y"] and palette.family_of(None) == palette.family_of(" ") == palette.OTHER_FAMILY
    assert palette.shade("#000000", 0.5) == "rgb(128, 128, 128)" and palette.shade("rgb(10, 20, 30)", 0) == \
        "rgb(10, 20, 30)"
    with pytest.raises(ValueError, match="shade"):
        palette.shade("#000000", 2)


def test_titles_and_labels_fit_a_phone(crowded):
    long = crowded.assign(model=crowded["model"] + "-with-a-very-long-checkpoint-name-from-the-hub")
    figs = [dashboard.bars_by_task(long), dashboard.score_vs_params(long), dashboard.glue_radar(long)]
    for fig in figs:
        title, _, sub = fig.layout.title.text.partition("<span")
        assert all(len(line) <= plot_style.TITLE_CHARS for line in _plain(title))
        assert all(len(line) <= plot_style.SUBTITLE_CHARS for line in _plain("<span" + sub)[1:])
        assert fig.layout.legend.orientation == "h" and fig.layout.legend.yref == "container"  # pushes the plot down
    bars = figs[0]
    labels = [y for t in bars.data if t.type == "bar" for y in t.y]
    assert max(map(len, labels)) <= dashboard.LABEL_CHARS + 4  # "…" and a " #2" counter at most
    assert all(len(line) <= dashboard.FACET_CHARS for a in bars.layout.annotations for line in _plain(a.text))
    assert all(len(t.name) <= 34 for t in figs[2].data)


def test_error_text_stays_inside_its_box():
    message = "the radar needs scores on ≥ 3 GLUE tasks; the filtered rows cover 1 " * 3
    fig = dashboard.safe_figure(dashboard.glue_radar, pd.DataFrame({"score": []}))
    assert fig.layout.meta["error"].startswith("Could not draw this plot: no rows match")
    fig = plot_style.error_figure(message)
    lines = fig.layout.annotations[0].text.split("<br>")
    assert len(lines) >= 5 and max(map(len, lines)) <= 44 and fig.layout.meta["error"] == message
    assert fig.layout.height >= 120 + 20 * len(lines)


def test_drilldown_figure_keeps_ids_short():
    pred = pd.DataFrame({"id": ["dm-test-" + "f" * 40, "b"], "input": ["x", "y"], "prediction": ["p", "q"],
                         "reference": ["r", "s"], "error": [0.9, 0.1]})
    fig = dashboard.drilldown_figure(pred, top=2)
    assert list(fig.data[0].y) == ["b", "dm-test-fffffffff…"] and "worst examples" in fig.layout.title.text
