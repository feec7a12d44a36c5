"""The Pareto view (evaluation/pareto.py): per task, the rows no cheaper row beats, as a table column and as
outlined points (with the front's step line for one task) in the score-vs-size / score-vs-latency scatter, and the
Leaderboard tab's x-axis switch."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from evaluation import dashboard, pareto, plot_style
from evaluation import leaderboard as lb


def _rows() -> pd.DataFrame:
    return pd.DataFrame({
        "model": ["tiny", "mid", "big", "slow", "paper-x", "loss-a", "loss-b"],
        "variant": ["BERT"] * 7,
        "task": ["sst2"] * 5 + ["wikipedia-mlm"] * 2,
        "split": ["dev"] * 7,
        "source": ["measured"] * 4 + ["paper"] + ["measured"] * 2,
        "score": [80.0, 85.0, 84.0, 86.0, 90.0, 2.0, 3.0],
        "params_millions": [5.0, 20.0, 30.0, 200.0, 340.0, 20.0, 10.0],
        "latency_ms": [1.0, 3.0, 2.0, 20.0, None, 4.0, 5.0],
        "ci95_low": [None] * 7, "ci95_high": [None] * 7,
        "higher_is_better": [True] * 5 + [False] * 2,
    }).assign(metrics=lambda d: [{"accuracy": v} for v in d["score"]])


def test_front_keeps_the_points_nothing_cheaper_beats():
    assert pareto.front([80, 85, 84, 86], [5, 20, 30, 200]).tolist() == [True, True, False, True]
    assert pareto.front([1.0, 1.0], [2.0, 2.0]).tolist() == [True, True]  # equal points: neither dominates
    assert pareto.front([2.0, 3.0], [10.0, 20.0], higher_is_better=False).tolist() == [True, False]  # a loss
    assert pareto.front([2.0, 3.0], [10.0, 20.0]).tolist() == [True, True]  # points: 3 is better, and costs more
    assert pareto.front([np.nan, 70.0], [1.0, 5.0]).tolist() == [False, True]  # no score: not judged


def test_pareto_columns_per_task_and_cost():
    cols = pareto.pareto_columns(_rows())
    # size: 'big' (30M, 84) is beaten by 'mid' (20M, 85); a loss task ranks lower as better, its own front
    assert cols["pareto_size"].tolist() == [True, True, False, True, True, True, True]
    # latency: 'big' (2 ms, 84) is faster than 'mid' (3 ms, 85), so both stay; the paper has no latency;
    # 'loss-b' (5 ms, loss 3.0) is slower and worse than 'loss-a' (4 ms, 2.0)
    assert cols["pareto_latency"].tolist() == [True, True, True, True, False, True, False]
    assert cols["pareto"].tolist() == ["size + latency", "size + latency", "latency", "size + latency", "size",
                                       "size + latency", "size"]


def test_the_table_has_the_pareto_column_by_default(tmp_path):
    view = lb.table_view(_rows(), None, "score", False, directory=tmp_path)
    assert "pareto" in lb.DEFAULT_COLUMNS and "pareto" in view.columns
    assert len(lb.DEFAULT_WIDTHS) == len(lb.DEFAULT_COLUMNS) and sum(lb.DEFAULT_WIDTHS) <= 1300  # a 1400 px screen
    shown = lb.display_table(view, headers=True)
    assert "Pareto front" in shown.columns
    assert dict(zip(view["model"], view["pareto"]))["big"] == "latency"


def _outlined(fig) -> dict[str, bool]:
    out = {}
    for t in fig.data:
        if t.mode == "markers" and t.x is not None and len(t.x) and t.x[0] is not None:
            for text, width in zip(t.text, t.marker.line.width):
                out[text.split(" · ")[0]] = width == dashboard.FRONT_LINE["width"]
    return out


def test_scatter_outlines_the_front_for_either_cost():
    rows = _rows()
    size = dashboard.score_vs_params(rows, "sst2")
    assert _outlined(size) == {"tiny": True, "mid": True, "big": False, "slow": True, "paper-x": True}
    line = next(t for t in size.data if t.name == "Pareto front")
    assert list(line.x) == [5.0, 20.0, 200.0, 340.0] and line.line.shape == "hv"  # cheapest first, a step
    lat = dashboard.score_vs_params(rows, "sst2", x="latency")
    assert lat.layout.xaxis.title.text.startswith("latency") and lat.layout.xaxis.type == "log"
    assert _outlined(lat) == {"tiny": True, "mid": True, "big": True, "slow": True}  # the paper: no latency
    several = dashboard.score_vs_params(rows, x="latency")
    assert not any(t.name == "Pareto front" for t in several.data)  # fronts of several tasks: outlines only
    with pytest.raises(ValueError, match="x: choose one of size, latency"):
        dashboard.score_vs_params(rows, x="speed")
    with pytest.raises(ValueError, match="latency"):
        dashboard.score_vs_params(rows.assign(latency_ms=None), x="latency")


def test_scatter_titles_fit_a_phone():
    long = _rows().assign(model=lambda d: d["model"] + "-with-a-very-long-checkpoint-name-from-the-hub")
    for x in dashboard.SCATTER_X:
        for task in (None, "sst2"):
            fig = dashboard.score_vs_params(long, task, x=x)
            title, _, sub = fig.layout.title.text.partition("<span")
            plain = [re.sub(r"<[^>]+>", "", line) for line in title.split("<br>")]
            assert all(len(line) <= plot_style.TITLE_CHARS for line in plain)
            subs = [re.sub(r"<[^>]+>", "", line) for line in ("<span" + sub).split("<br>")][1:]
            assert all(len(line) <= plot_style.SUBTITLE_CHARS for line in subs)
            assert len(plot_style.legend_entries(fig)) <= 4


def test_the_leaderboard_tab_switches_the_scatter_axis(tmp_path, monkeypatch):
    import gradio as gr

    from bertvariants.ui import leaderboard as ui

    monkeypatch.setenv("BERTVARIANTS_RESULTS_DIR", str(tmp_path))
    with gr.Blocks() as demo:
        with gr.Tab("Leaderboard") as tab:
            ui.build(None, tab)
    radios = [b for b in demo.blocks.values() if isinstance(b, gr.Radio) and "Pareto" in (b.label or "")]
    assert len(radios) == 1 and [c[1] for c in radios[0].choices] == list(dashboard.SCATTER_X)
    fig = ui.scatter("", ["sst2"], [], ["paper"], 0, 1e6, "latency")  # papers publish no latency: a message
    assert "latency" in fig.layout.meta["error"]
    fig = ui.scatter("", ["sst2"], [], ["paper"], 0, 1e6, "size")
    assert any(t.name == "Pareto front" for t in fig.data)
    with pytest.raises(gr.Error, match="x axis"):
        ui.scatter("", [], [], ["paper"], 0, 1e6, "speed")
