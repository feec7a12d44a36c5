"""The two-run comparison view (evaluation.comparison) and the Leaderboard's tables: copy, download, rounding."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from evaluation import comparison, results


def _run(tmp_path, model, pred, gold, *, ts, task="sst2", records=True, **extra):
    recs = [{"id": str(i), "input": f"sentence number {i} " * 8, "prediction": int(p), "reference": int(g),
             "confidence": 0.87654321, "error": 0.9 if p != g else 0.1} for i, (p, g) in enumerate(zip(pred, gold))]
    acc = 100 * float((pred == gold).mean())
    result = {"task": task, "model": model, "split": "dev", "n": len(gold), "metrics": {"accuracy": acc},
              "primary_metric": "accuracy", "timestamp": ts, "seed": 0, "device": "cpu",
              "ci95": {"low": acc - 3, "high": acc + 3}, "versions": {"torch": "2.13.0", "transformers": "5.24.0"},
              **extra}
    return results.write_result(result, tmp_path, recs if records else None).name


@pytest.fixture
def two(tmp_path):
    rng = np.random.default_rng(0)
    gold = rng.integers(0, 2, 200)
    a = np.where(rng.random(200) < 0.9, gold, 1 - gold)
    b = a.copy()
    b[:30] = 1 - b[:30]  # B changes 30 answers
    fa = _run(tmp_path, "teacher", a, gold, ts="2026-01-01T00:00:00+00:00")
    fb = _run(tmp_path, "student", b, gold, ts="2026-01-02T00:00:00+00:00",
              versions={"torch": "2.14.0", "transformers": "5.24.0"})
    return tmp_path, fa, fb, a, b, gold


def test_compare_shows_test_settings_and_disagreements(two):
    where, fa, fb, a, b, gold = two
    view = comparison.compare(where, fa, fb)
    assert view.test is not None and view.test.n == 200 and view.test.text in view.summary
    assert "**A** = teacher (sst2 dev, 2026-01-01) · **B** = student" in view.summary
    a_right = int(((a == gold) & (b != gold))[:30].sum())
    assert f"predict differently on **30** of 200 shared examples: A has the lower error on {a_right}" in view.summary
    s = view.settings.set_index("field")
    assert s.loc["model", "differs"] == "≠" and s.loc["task", "differs"] == ""
    assert (s.loc["version: torch", "A"], s.loc["version: torch", "B"], s.loc["version: torch", "differs"]) == \
        ("2.13.0", "2.14.0", "≠")
    assert s.loc["version: transformers", "differs"] == "" and "metric: accuracy" in s.index and "95% CI" in s.index
    d = view.disagreements
    assert len(d) == 30 and set(d["id"]) == {str(i) for i in range(30)}
    assert list(d.columns[:4]) == ["id", "reference", "A: prediction", "B: prediction"]
    assert (d["A: prediction"] != d["B: prediction"]).all() and set(d["better"]) <= {"A", "B"}


def test_compare_without_predictions_falls_back_to_intervals_and_refuses_other_tasks(two):
    where, fa, _, a, _, gold = two
    plain = _run(where, "no-preds", a, gold, ts="2026-01-03T00:00:00+00:00", records=False)
    view = comparison.compare(where, fa, plain)
    assert view.test is None and view.disagreements.empty
    assert "No paired test" in view.summary and "95% intervals overlap" in view.summary
    other = _run(where, "other", a, gold, ts="2026-01-04T00:00:00+00:00", task="rte")
    with pytest.raises(ValueError, match="same task and split"):
        comparison.compare(where, fa, other)
    with pytest.raises(ValueError, match="unknown run"):
        comparison.compare(where, fa, "missing.json")
    board = results.leaderboard(where, include_paper=False)  # rte has one run; sst2's no-preds run cannot be tested
    student = next(f for f in board["file"] if "student" in f)
    assert comparison.default_pair(board, where) == (fa, student)


def test_compare_endpoint_rounds_for_display(two, monkeypatch):
    import gradio as gr

    from bertvariants.ui import leaderboard as ui

    where, fa, fb, *_ = two
    monkeypatch.setenv("BERTVARIANTS_RESULTS_DIR", str(where))
    summary, test, settings, disagree = ui.leaderboard_compare(fa, fb, 500)
    assert test["resamples"] == 500 and "p = " in summary and len(disagree) == 30
    assert "Args:" in ui.leaderboard_compare.__doc__ and "run_b:" in ui.leaderboard_compare.__doc__
    with pytest.raises(gr.Error, match="unknown run"):
        ui.leaderboard_compare(fa, "no-such-option-☃", 1000)
    fig, table = ui.drilldown(fa, 5)
    assert list(table.columns) == ["id", "error", "prediction", "reference", "confidence", "input"]  # input last
    assert table["confidence"].iloc[0] == 0.88  # 2 decimals on the page
    assert results.predictions(where, fa)["confidence"].iloc[0] == 0.87654321  # the stored value is untouched


def test_every_table_can_be_copied_and_the_board_downloaded(tmp_path, monkeypatch):
    import gradio as gr

    from bertvariants.ui import leaderboard as ui

    monkeypatch.setenv("BERTVARIANTS_RESULTS_DIR", str(tmp_path))
    with gr.Blocks() as demo:
        with gr.Tab("Leaderboard") as tab:
            ui.build(None, tab)
    tables = [b for b in demo.blocks.values() if isinstance(b, gr.Dataframe)]
    assert len(tables) == 4 and all("copy" in (t.buttons or []) and not t.interactive for t in tables)
    assert all(t.max_chars for t in tables)  # long cells are cut on the page (a click shows them), never the data
    downloads = [b for b in demo.blocks.values() if isinstance(b, gr.DownloadButton)]
    named = {f.api_name: f for f in demo.fns.values() if f.api_name}
    assert downloads and downloads[0] in named["leaderboard"].outputs
    view, csv_path = ui.leaderboard_table("", [], [], ["paper"], 0, 1e6, [], "rank", False)
    assert list(view.columns) == [ui.lb.COLUMN_LABELS.get(c, c) for c in ui.lb.DEFAULT_COLUMNS]  # short headers
    assert list(pd.read_csv(csv_path).columns) == list(ui.lb.DEFAULT_COLUMNS)  # the CSV keeps the column names
    assert view["rank"].min() == 1 and pd.read_csv(csv_path).shape[0] == len(view)
