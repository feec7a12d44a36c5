"""Results store (atomic writes, corrupt files, latest vs history, CSV escaping), figure builders, Leaderboard tab."""

from __future__ import annotations

import json
import warnings

import pandas as pd
import plotly.graph_objects as go
import pytest

from evaluation import dashboard, results


def _result(model="m1", task="stsb", score=80.0, ts="2026-01-01T00:00:00+00:00", **extra):
    from evaluation.tasks import benchmark

    primary = benchmark(task).primary
    return {"task": task, "model": model, "split": benchmark(task).default_split, "n": 10,
            "metrics": {primary: score}, "primary_metric": primary, "timestamp": ts,
            "ci95": {"low": score - 2, "high": score + 1}, "params": 22_700_000, "latency_ms": 3.0,
            "variant": "Sentence-BERT", **extra}


# ------------------------------------------------------------------ results store
def test_write_is_atomic_and_latest_wins_history_stays(tmp_path):
    recs = [{"id": "a", "input": "x", "prediction": 1, "reference": 0, "error": 0.9},
            {"id": "b", "input": "y", "prediction": 0, "reference": 0, "error": 0.1}]
    old = results.write_result(_result(score=70.0, ts="2026-01-01T00:00:00+00:00"), tmp_path, recs)
    new = results.write_result(_result(score=75.0, ts="2026-02-01T00:00:00+00:00"), tmp_path)
    assert not [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")]  # no temp files left
    runs = results.load_runs(tmp_path)
    assert list(runs["score"]) == [75.0, 70.0]  # history, newest first
    best = results.latest(runs)
    assert len(best) == 1 and best["score"].iloc[0] == 75.0 and best["file"].iloc[0] == new.name
    pred = results.predictions(tmp_path, old.name)
    assert list(pred["id"]) == ["a", "b"]  # worst error first


def test_corrupt_and_truncated_files_are_skipped_with_a_warning(tmp_path):
    results.write_result(_result(), tmp_path)
    good = next(tmp_path.glob("*.json")).read_text()
    (tmp_path / "truncated.json").write_text(good[: len(good) // 2])
    (tmp_path / "incomplete.json").write_text(json.dumps({"task": "stsb"}))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        runs = results.load_runs(tmp_path)
    assert len(runs) == 1
    text = " ".join(str(w.message) for w in caught)
    assert "truncated.json" in text and "incomplete.json" in text


def test_csv_export_escapes_formulas(tmp_path):
    df = pd.DataFrame({"model": ["=HYPERLINK(\"http://x\")", "+cmd", "-1+2", "@SUM(A1)", "safe"], "score": [1.0] * 5})
    text = results.to_csv(df, tmp_path / "x.csv")
    lines = text.splitlines()[1:]
    assert [line.split(",")[0] for line in lines][:4] == ["\"'=HYPERLINK(\"\"http://x\"\")\"", "'+cmd", "'-1+2", "'@SUM(A1)"]
    assert lines[4].startswith("safe")
    assert (tmp_path / "x.csv").read_text() == text


def test_references_are_paper_rows_with_citations():
    ref = results.references()
    assert set(ref["source"]) == {"paper"} and ref["citation"].str.len().min() > 5
    row = ref[(ref["model"] == "all-MiniLM-L6-v2") & (ref["task"] == "stsb")].iloc[0]
    assert row["score"] == 82.03 and row["primary_metric"] == "spearman"
    bart = ref[(ref["model"] == "facebook/bart-large-cnn") & (ref["task"] == "cnndm")].iloc[0]
    assert bart["primary_metric"] == "rougeLsum" and bart["metrics"]["rouge1"] == 44.06


def test_leaderboard_merges_measured_and_paper(tmp_path):
    results.write_result(_result(), tmp_path)
    board = results.leaderboard(tmp_path)
    assert {"measured", "paper"} == set(board["source"])
    flat = results.flat(board)
    assert "spearman" in flat.columns and "score (metric)" in flat.columns  # a metric named like a column


# ------------------------------------------------------------------ figures
def _board():
    rows = [
        dict(model="minilm", variant="Sentence-BERT", task=t, split="dev", source="measured", primary_metric="accuracy",
             score=s, ci95_low=s - 2, ci95_high=s + 2, params_millions=22.7, latency_ms=lat)
        for t, s, lat in (("sst2", 81.0, 2.0), ("mrpc", 72.0, 5.0), ("stsb", 86.7, 1.0), ("rte", 58.0, 8.0))
    ] + [
        dict(model="BERT-base", variant="BERT", task=t, split="dev", source="paper", primary_metric="accuracy",
             score=s, ci95_low=None, ci95_high=None, params_millions=110.0, latency_ms=None)
        for t, s in (("sst2", 92.7), ("mrpc", 88.6), ("stsb", 89.0), ("rte", 69.3))
    ]
    return pd.DataFrame(rows)


def test_bars_by_task_one_facet_per_task_best_first():
    fig = dashboard.bars_by_task(_board())
    assert isinstance(fig, go.Figure) and fig.layout.barmode == "overlay"  # no empty slots: bars of visible width
    assert fig.layout.meta["tasks"] == ["mrpc", "rte", "sst2", "stsb"]
    bars = [t for t in fig.data if t.type == "bar"]
    assert {t.name for t in bars} == {"BERT", "Sentence-BERT"}  # legend = variant families
    mrpc = {t.name: t for t in bars if t.yaxis == "y2"}  # row 1 is a spacer: the first task is on y2
    assert list(mrpc["Sentence-BERT"].x) == [72.0] and list(mrpc["Sentence-BERT"].y) == ["minilm"]
    assert list(mrpc["Sentence-BERT"].error_x.array) == [2] and list(mrpc["BERT"].marker.pattern.shape) == ["/"]
    assert list(fig.layout.yaxis2.categoryarray) == ["minilm", "BERT-base"]  # best (88.6) drawn on top
    assert [a.text.split("</b>")[0][3:] for a in fig.layout.annotations] == ["MRPC", "RTE", "SST-2", "STS-B"]


def test_score_vs_params_is_log_with_latency_bubbles():
    fig = dashboard.score_vs_params(_board())
    assert fig.layout.xaxis.type == "log"
    measured = next(t for t in fig.data if t.name == "measured")
    sizes = dict(zip(measured.y, measured.marker.size))
    assert sizes[58.0] > sizes[81.0] > sizes[86.7]  # slower (8 ms) -> bigger bubble
    with pytest.raises(ValueError, match="parameter count"):
        dashboard.score_vs_params(_board().assign(params_millions=None))


def test_glue_radar_and_error_figure():
    fig = dashboard.glue_radar(_board())
    assert all(isinstance(t, go.Scatterpolar) for t in fig.data) and len(fig.data) == 2
    assert list(fig.data[0].theta)[0] == list(fig.data[0].theta)[-1]  # closed polygon
    broken = dashboard.safe_figure(dashboard.glue_radar, _board().query("task == 'sst2'"))
    assert "GLUE tasks" in broken.layout.meta["error"] and not broken.data
    assert "no rows" in dashboard.safe_figure(dashboard.bars_by_task, _board().iloc[0:0]).layout.meta["error"]


def test_drilldown_shows_worst_examples_on_top():
    pred = pd.DataFrame({"id": ["a", "b", "c"], "input": ["x"] * 3, "prediction": [1, 0, 1], "reference": [0, 0, 1],
                         "error": [0.9, 0.2, 0.5]})
    fig = dashboard.drilldown_figure(pred, top=2)
    bar = fig.data[0]
    assert list(bar.y) == ["c", "a"] and list(bar.x) == [0.5, 0.9]  # plotly draws the last bar on top


# ------------------------------------------------------------------ the tab's handlers
def test_leaderboard_tab_filters_and_query(tmp_path, monkeypatch):
    from bertvariants.ui import leaderboard as lb
    from evaluation import leaderboard as data

    monkeypatch.setenv("BERTVARIANTS_RESULTS_DIR", str(tmp_path))
    results.write_result(_result(model="minilm"), tmp_path, [{"id": "1", "input": "", "prediction": 0.1,
                                                               "reference": 2.0, "error": 0.4}])
    board = results.leaderboard(tmp_path)
    only = data.filter_rows(board, tasks=["stsb"], sources=["measured"])
    assert list(only["model"]) == ["minilm"]
    small = data.filter_rows(board, sources=["paper"], min_params=0, max_params=30)
    assert (pd.to_numeric(small["params_millions"]).dropna() <= 30).all() and len(small) >= 1
    assert set(data.filter_rows(board, search="XXLARGE")["model"]) == {"ALBERT-xxlarge-v1"}  # case-insensitive
    view, csv_path = lb.leaderboard_table("", ["stsb"], [], ["measured", "paper"], 0, 1e6, ["model", "score"],
                                          "score", False)
    assert list(view.columns) == ["model", "score"] and view["score"].is_monotonic_decreasing
    out = lb.render("", ["stsb"], [], ["measured", "paper"], 0, 1e6, list(data.DEFAULT_COLUMNS), "score", False)
    assert all(isinstance(f, go.Figure) for f in out[2:5])
    run_file = out[5]["value"]
    fig, table = lb.drilldown(run_file, 10)
    assert isinstance(fig, go.Figure) and list(table["id"]) == ["1"]

    class Req:
        query_params = {"task": "stsb,bogus", "source": "measured", "q": "mini", "max_params": "50"}

    assert lb.from_query(Req()) == ("mini", ["stsb"], [], ["measured"], 0, 50.0)
    import gradio as gr

    with pytest.raises(gr.Error, match="minimum size"):
        lb.leaderboard_table("", [], [], ["paper"], 10, 5, ["model"], "score", False)
