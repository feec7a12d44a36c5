"""The Leaderboard's training view (issue #6): training runs and curves from result records, the curves figure,
the run comparison, the ordering of lower-is-better tasks, and the tab's ``leaderboard_training`` handler."""

from __future__ import annotations

import dataclasses
import json
import math
import warnings

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest

from evaluation import dashboard, results, tasks


def _curve(start: float, end: float, *, steps: int = 9, extra: dict | None = None) -> list[dict]:
    """A geometric decay from ``start`` to ``end`` over ``steps`` logged rows, 0.5 s per step."""
    rows = []
    for i in range(steps):
        step = 1 + 10 * i
        loss = start * (end / start) ** (i / (steps - 1))
        rows.append({"step": step, "loss": round(loss, 6), "lr": 1e-4 * (i + 1) / steps, "seconds": 0.5 * step,
                     **(extra or {})})
    return rows


def _record(model: str, *, task="wikipedia-mlm", score=2.0, primary="heldout_mlm_loss", ts="2026-11-25T15:00:00+00:00",
            curve=None, training=True, higher=False, **extra) -> dict:
    rec = {"task": task, "model": model, "split": "heldout", "n": 7, "metrics": {primary: score, "epochs": 1.3},
           "primary_metric": primary, "score": score, "timestamp": ts, "device": "cpu", "seed": 42,
           "details": {"higher_is_better": higher}, **extra}
    if training:
        rec["training"] = {"recipe": model, "config": {"steps": 81}, "steps": 81, "planned_steps": 81,
                           "seconds": 40.5, "device": "cpu",
                           "curve": _curve(10.0, 0.5) if curve is None else curve}
    return rec


def _write(tmp_path, *records) -> list:
    return [results.write_result(r, tmp_path) for r in records]


@pytest.fixture
def lab(tmp_path):
    """mlm-dynamic (rerun once: the newest counts), mlm-static, a harness record without training, a corrupt file."""
    _write(tmp_path,
           _record("mlm-dynamic", score=2.5, ts="2026-11-25T14:00:00+00:00"),
           _record("mlm-dynamic", score=2.113, ts="2026-11-25T15:00:00+00:00"),
           _record("mlm-static", score=2.344, ts="2026-11-25T15:01:00+00:00", curve=_curve(10.0, 0.6)),
           _record("minilm", task="stsb", primary="spearman", score=86.7, training=False,
                   ts="2026-11-25T16:00:00+00:00", details={}))
    (tmp_path / "cut.json").write_text('{"task": "wikipedia-mlm", "model": "x", "training": {"cur')
    return tmp_path


def _quiet(fn, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(*args, **kwargs)


# ------------------------------------------------------------------ results: runs and curves
def test_training_runs_newest_trained_record_per_model(lab):
    with pytest.warns(UserWarning, match="cut.json"):
        runs = results.training_runs(lab)
    assert list(runs.columns) == list(results.TRAINING_COLUMNS)
    assert list(runs["run"]) == ["mlm-static", "mlm-dynamic"]  # newest first; minilm has no training key
    dyn = runs.set_index("run").loc["mlm-dynamic"]
    assert dyn["score"] == 2.113 and dyn["steps"] == 81 and dyn["seconds"] == 40.5 and dyn["device"] == "cpu"
    assert not dyn["higher_is_better"]  # the record's own flag: wikipedia-mlm ranks ascending
    # a later harness record of a trained model (no training key) does not hide its training run
    _write(lab, _record("mlm-static", score=9.9, training=False, ts="2026-11-25T17:00:00+00:00"))
    assert _quiet(results.training_runs, lab).set_index("run").loc["mlm-static", "score"] == 2.344


def test_run_labels_name_the_task_when_one_model_was_trained_twice(tmp_path):
    _write(tmp_path, _record("student", task="stsb", primary="spearman", score=80.0, higher=True),
           _record("student", task="sst2", primary="accuracy", score=85.0, higher=True))
    labels = sorted(results.training_runs(tmp_path)["run"])
    assert labels == ["student · sst2 · heldout", "student · stsb · heldout"]


def test_training_curves_long_form_and_bad_records_skipped_by_name(lab):
    bad_rows = [{"step": "x", "loss": 1.0}, "not a row", {"step": 5, "loss": 1.5, "flag": True, "note": "text"}]
    _write(lab, _record("no-curve", curve=[], ts="2026-11-25T15:02:00+00:00"),
           _record("odd-rows", curve=bad_rows, ts="2026-11-25T15:03:00+00:00"),
           {**_record("not-an-object"), "training": "oops", "timestamp": "2026-11-25T15:04:00+00:00"})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        curves = results.training_curves(lab)
    said = " ".join(str(w.message) for w in caught)
    assert "no-curve" in said and "cut.json" in said and "not-an-object" in said
    assert "odd-rows" in said and "dropped 2 training-curve row(s)" in said
    assert list(curves.columns) == list(results.CURVE_COLUMNS)
    assert set(curves["run"]) == {"mlm-dynamic", "mlm-static", "odd-rows"}
    odd = curves[curves["run"] == "odd-rows"]
    assert list(odd["metric"]) == ["loss"] and odd["seconds"].isna().all()  # bools and text are not metrics
    dyn = curves[(curves["run"] == "mlm-dynamic") & (curves["metric"] == "loss")]
    assert len(dyn) == 9 and dyn["value"].iloc[0] == 10.0 and dyn["value"].iloc[-1] == 0.5  # the newest run's curve
    assert list(dyn["seconds"]) == [0.5 * s for s in dyn["step"]]
    assert set(curves[curves["run"] == "mlm-static"]["metric"]) == {"loss", "lr"}


def test_training_curves_of_named_files_only(lab):
    runs = _quiet(results.training_runs, lab)
    static = runs.set_index("run").loc["mlm-static", "file"]
    curves = _quiet(results.training_curves, lab, files=["../../" + static])  # a path is reduced to its name
    assert set(curves["run"]) == {"mlm-static"}
    with pytest.raises(ValueError, match="not a training run"):
        _quiet(results.training_curves, lab, files=["stsb__minilm__heldout__x.json"])


# ------------------------------------------------------------------ leaderboard ordering
def test_leaderboard_ranks_each_task_in_its_own_direction(tmp_path, monkeypatch):
    toy = dataclasses.replace(tasks.benchmark("stsb"), key="toy-perplexity", aliases=(), higher_is_better=False)
    monkeypatch.setattr(tasks, "BENCHMARKS", tasks.BENCHMARKS + (toy,))
    _write(tmp_path,
           _record("a", task="heldout-thing", score=3.0), _record("b", task="heldout-thing", score=1.0),
           _record("c", task="heldout-thing", score=2.0),
           # the benchmark table wins over a record's own flag
           _record("d", task="toy-perplexity", primary="spearman", score=5.0, higher=True),
           _record("e", task="toy-perplexity", primary="spearman", score=4.0, higher=True),
           # no table entry, no flag: descending (points)
           _record("f", task="other-score", score=1.0, details={}), _record("g", task="other-score", score=7.0,
                                                                           details={}),
           _record("h", task="stsb", primary="spearman", score=70.0, higher=False),
           _record("i", task="stsb", primary="spearman", score=80.0, higher=False))
    board = results.leaderboard(tmp_path, include_paper=False)
    order = {t: list(g["model"]) for t, g in board.groupby("task", sort=False)}
    assert order == {"heldout-thing": ["b", "c", "a"], "other-score": ["g", "f"], "stsb": ["i", "h"],
                     "toy-perplexity": ["e", "d"]}
    assert results.higher_is_better("heldout-thing", {"higher_is_better": False}) is False
    assert results.higher_is_better("sts-b", {"higher_is_better": False}) is True  # alias of a known task


# ------------------------------------------------------------------ the comparison
def test_compare_runs_says_who_wins_and_by_how_much():
    c = dashboard.compare_runs({"mlm-static": 2.344, "mlm-dynamic": 2.113}, metric="held-out MLM loss",
                               higher_is_better=False)
    assert (c.winner, c.runner_up, c.n_runs) == ("mlm-dynamic", "mlm-static", 2)
    assert math.isclose(c.gap, 0.231) and math.isclose(c.relative, 0.231 / 2.344)
    assert c.text == "mlm-dynamic ends 0.231 lower held-out MLM loss than mlm-static (2.113 vs 2.344, 9.9% lower)"
    up = dashboard.compare_runs({"a": 80.0, "b": 84.4, "c": float("nan"), "d": 70.0}, metric="dev accuracy",
                                higher_is_better=True)
    assert up.winner == "b" and up.runner_up == "a" and up.n_runs == 3
    assert up.text.startswith("b ends 4.4 higher dev accuracy than a (84.4 vs 80") and "next best of 3" in up.text
    tie = dashboard.compare_runs({"y": 1.0, "x": 1.0}, metric="loss", higher_is_better=False)
    assert tie.text == "x and y end level on loss (1)"
    with pytest.raises(ValueError, match="≥ 2 runs"):
        dashboard.compare_runs({"a": 1.0, "b": float("inf")}, metric="loss", higher_is_better=False)


def test_heldout_matches_and_metric_names():
    assert dashboard.heldout_matches("loss", "heldout_mlm_loss", ["loss", "lr"])  # the MLM recipes
    assert not dashboard.heldout_matches("loss", "heldout_mlm_loss", ["loss", "mlm_loss", "sbo_loss"])  # SpanBERT
    assert dashboard.heldout_matches("mlm_loss", "heldout_mlm_loss", ["loss", "mlm_loss"])
    assert not dashboard.heldout_matches("loss", "accuracy", ["loss", "train_acc"])
    assert dashboard.metric_label("heldout_mlm_loss") == "held-out MLM loss"
    assert [dashboard.lower_is_better(m) for m in ("loss", "logit_mse", "ce", "hidden_cos", "train_acc")] == \
        [True, True, True, False, False]


def test_ema_is_debiased_and_validated():
    assert np.allclose(dashboard.ema([3.0] * 5, 0.9), 3.0)  # no pull towards 0 at the start
    assert np.allclose(dashboard.ema([1.0, 5.0, 2.0], 0.0), [1.0, 5.0, 2.0])
    s = dashboard.ema([0.0, 1.0], 0.5)
    assert np.isclose(s[1], 0.5 * 1.0 / (1 - 0.25))
    for bad in (-0.1, 1.0, float("nan")):
        with pytest.raises(ValueError, match="smoothing"):
            dashboard.ema([1.0], bad)


# ------------------------------------------------------------------ the figure
def test_training_figure_lines_log_axis_heldout_stars_and_title(lab):
    runs, curves = _quiet(results.training_runs, lab), _quiet(results.training_curves, lab)
    fig = dashboard.training_curves_figure(curves, metric="loss", runs=runs)
    lines = [t for t in fig.data if t.mode == "lines"]
    stars = [t for t in fig.data if t.mode == "markers"]
    assert [t.name for t in lines] == ["mlm-dynamic (held-out MLM loss 2.113)", "mlm-static (held-out MLM loss 2.344)"]
    assert fig.layout.yaxis.type == "log"  # 10 -> 0.5: more than one decade
    assert [(t.x[0], t.y[0]) for t in stars] == [(81, 2.113), (81, 2.344)]  # held-out loss at the last step
    assert fig.layout.meta["comparison"] == ("mlm-dynamic ends 0.231 lower held-out MLM loss on wikipedia-mlm heldout "
                                             "than mlm-static (2.113 vs 2.344, 9.9% lower)")
    assert fig.layout.title.text.replace("<br>", " ") == fig.layout.meta["comparison"]  # wrapped for a phone
    assert max(len(line) for line in fig.layout.title.text.split("<br>")) <= 52
    lr = dashboard.training_curves_figure(curves, metric="lr", x="seconds", smooth=0.6, runs=runs)
    assert lr.layout.yaxis.type == "linear" and not [t for t in lr.data if t.mode == "markers"]
    assert len(lr.data) == 4 and list(lr.data[0].x) == [0.5 * s for s in range(1, 82, 10)]  # raw + smoothed
    assert lr.layout.xaxis.title.text == "wall time (s)"
    assert "held-out MLM loss" in lr.layout.title.text  # the held-out comparison, whatever curve is shown


def test_training_figure_without_heldout_scores_compares_nothing(lab):
    """Without held-out scores nothing wins: a training-curve value (loss, lr, seconds) is never a verdict."""
    curves = _quiet(results.training_curves, lab)
    narrow = curves.assign(value=np.where(curves["metric"] == "loss", 1.0 + curves["value"] / 100, curves["value"]))
    fig = dashboard.training_curves_figure(narrow, metric="loss")
    assert fig.layout.yaxis.type == "linear" and len(fig.data) == 2  # 1.1 -> 1.005: not a decade
    assert fig.layout.meta["comparison"] == "" and "ends" not in fig.layout.title.text
    assert fig.layout.title.text.startswith("Training loss of ") and {"mlm-dynamic", "mlm-static"} <= set(
        fig.layout.title.text[len("Training loss of "):].split(", "))
    for metric in ("lr", "loss"):
        assert dashboard.training_curves_figure(curves, metric=metric, x="seconds").layout.meta["comparison"] == ""
    one = dashboard.training_curves_figure(curves[curves["run"] == "mlm-static"], metric="loss")
    assert one.layout.title.text == "Training loss of mlm-static"
    with pytest.raises(ValueError, match="logs 'hidden_cos'.*logged: loss, lr"):
        dashboard.training_curves_figure(curves, metric="hidden_cos")
    with pytest.raises(ValueError, match="x must be"):
        dashboard.training_curves_figure(curves, x="epoch")
    assert "smoothing" in dashboard.safe_figure(dashboard.training_curves_figure, curves, smooth=1.5).layout.meta[
        "error"]


def test_runs_of_different_tasks_are_never_compared(lab):
    runs = _quiet(results.training_runs, lab)
    other = runs.iloc[[0]].assign(run="student", model="student", task="sst2", split="dev", primary_metric="accuracy",
                                  score=91.0, higher_is_better=True)
    with pytest.raises(ValueError, match="different held-out measures.*accuracy on sst2 dev.*pick runs of the same"):
        dashboard.heldout_verdict(pd.concat([runs[runs["run"] == "mlm-static"], other]))
    verdict = dashboard.heldout_verdict(pd.concat([runs, other]))
    assert [c.winner for c in verdict.comparisons] == ["mlm-dynamic"] and len(verdict.comparisons) == 1
    assert verdict.not_compared == ["student (accuracy on sst2 dev)"] and "student" not in verdict.comparisons[0].text
    assert "not compared" in verdict.text
    curves = _quiet(results.training_curves, lab)
    lr = dashboard.training_curves_figure(curves, metric="lr", runs=pd.concat([runs[runs["run"] == "mlm-static"], other]))
    assert lr.layout.meta["comparison"] == ""  # different tasks: no winner, whatever curve is drawn


# ------------------------------------------------------------------ RoBERTa §4.1: static vs dynamic masking
def _masking_lab(tmp_path, *, static_steps=81):
    """mlm-static trains lower (0.5 vs 0.9) but scores worse held-out (2.344 vs 2.113): the issue's pair."""
    dyn = _record("mlm-dynamic", score=2.113, curve=_curve(10.0, 0.9),
                  details={"higher_is_better": False, "masking": "dynamic"}, ts="2026-11-25T15:00:00+00:00")
    sta = _record("mlm-static", score=2.344, curve=_curve(10.0, 0.5),
                  details={"higher_is_better": False, "masking": "static"}, ts="2026-11-25T15:01:00+00:00")
    sta["training"]["steps"] = static_steps
    _write(tmp_path, dyn, sta)
    return tmp_path


def test_static_vs_dynamic_explanation_uses_the_records_numbers(tmp_path):
    from evaluation import training_view as tv

    view = tv.training_view(None, "loss", "step", 0.0, directory=_masking_lab(tmp_path))
    curves = results.training_curves(tmp_path)
    final = {r: curves[(curves["run"] == r) & (curves["metric"] == "loss")]["value"].tail(5).mean()
             for r in ("mlm-static", "mlm-dynamic")}
    assert final["mlm-static"] < final["mlm-dynamic"]
    said = view.summary.split("\n\n")[1]
    assert said.startswith("**Why mlm-static trains lower but scores worse held-out:**")
    assert f"training loss {final['mlm-static']:.3f} vs {final['mlm-dynamic']:.3f}" in said
    assert "held-out MLM loss 2.344 vs 2.113 is worse" in said and "(1.3 epochs here)" in said  # metrics.epochs
    assert "same masked positions" in said and "fresh masks" in said
    assert view.summary.startswith("**Which wins:** mlm-dynamic ends 0.231 lower held-out MLM loss")


def test_static_vs_dynamic_of_unequal_budgets_is_not_explained_as_memorisation(tmp_path):
    from evaluation import training_view as tv

    view = tv.training_view(None, "loss", "step", 0.0, directory=_masking_lab(tmp_path, static_steps=600))
    assert "not RoBERTa's §4.1 comparison as recorded (600 vs 81 steps)" in view.summary
    assert "memorise" not in view.summary
    assert tv.training_view(["mlm-dynamic"], "loss", "step", 0.0, directory=tmp_path).summary.startswith("Pick")


# ------------------------------------------------------------------ the view's data (no gradio)
def test_training_view_data_defaults_choices_and_errors(lab):
    from evaluation import training_view as data

    view = _quiet(data.training_view, None, "loss", "step", 0.0, directory=lab)
    assert view.chosen == ["mlm-dynamic", "mlm-static"] and set(view.runs) == {"mlm-dynamic", "mlm-static"}
    assert view.metrics == ["loss", "lr"] and view.metric == "loss" and isinstance(view.figure, go.Figure)
    assert view.summary == "**Which wins:** " + view.figure.layout.meta["comparison"]
    assert _quiet(data.training_view, ["mlm-static"], "nope", "step", 0.0, keep_going=True, directory=lab).metric == "loss"
    with pytest.raises(ValueError, match="log no curve 'nope'"):
        _quiet(data.training_view, ["mlm-static"], "nope", "step", 0.0, directory=lab)
    with pytest.raises(ValueError, match="unknown training run"):
        _quiet(data.training_view, ["ghost"], "loss", "step", 0.0, directory=lab)
    empty = lab / "empty"
    empty.mkdir()
    assert data.training_view(None, "loss", "step", 0.0, directory=empty).summary == data.NO_TRAINING_RUNS


# ------------------------------------------------------------------ the tab's handler
def test_training_tab_handler_defaults_errors_and_fallback(lab, monkeypatch):
    import gradio as gr

    from bertvariants.ui import leaderboard as lb

    monkeypatch.setenv("BERTVARIANTS_RESULTS_DIR", str(lab))
    _write(lab, _record("electra", task="wikipedia-rtd", primary="auroc", score=91.0, higher=True,
                        ts="2026-11-25T18:00:00+00:00", curve=_curve(30.0, 12.0, extra={"disc_acc": 0.9})))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fig, summary, run_update, metric_update = lb.leaderboard_training([], "loss", "step", 0)
        assert run_update["value"] == ["mlm-dynamic", "mlm-static"]  # the pair, though electra is newer
        assert set(run_update["choices"]) == {"electra", "mlm-dynamic", "mlm-static"}
        assert summary == "**Which wins:** " + fig.layout.meta["comparison"] and "mlm-dynamic ends 0.231 lower" in summary
        assert metric_update["choices"] == ["loss", "lr"] and isinstance(fig, go.Figure)
        _, one, _, _ = lb.leaderboard_training("electra", "loss", "seconds", 0.5)
        assert "second run" in one
        with pytest.raises(gr.Error, match="unknown training run.*'no-such-run'.*trained runs: electra"):
            lb.leaderboard_training(["mlm-static", "no-such-run"], "loss", "step", 0)
        with pytest.raises(gr.Error, match="log no curve 'disc_acc'; choose one of loss, lr"):
            lb.leaderboard_training(["mlm-static", "mlm-dynamic"], "disc_acc", "step", 0)
        with pytest.raises(gr.Error, match="finite number"):
            lb.leaderboard_training([], "loss", "step", float("nan"))
        with pytest.raises(gr.Error, match="x axis"):
            lb.leaderboard_training([], "loss", "epoch", 0)
        # the UI changing runs falls back to loss instead of refusing
        fig, _, _, metric_update = lb.training_render(["mlm-static"], "disc_acc", "step", 0)
        assert metric_update["value"] == "loss" and fig.layout.meta["metric"] == "loss"
        assert lb.training_render(["electra"], "disc_acc", "step", 0)[3]["value"] == "disc_acc"


def test_training_tab_without_mlm_pair_or_any_run(tmp_path, monkeypatch):
    from bertvariants.ui import leaderboard as lb

    monkeypatch.setenv("BERTVARIANTS_RESULTS_DIR", str(tmp_path))
    fig, summary, run_update, _ = lb.leaderboard_training(None, "loss", "step", 0)
    assert "No training runs" in summary and fig.layout.meta["error"] and run_update["choices"] == []
    _write(tmp_path, *(_record(f"r{i}", ts=f"2026-11-25T1{i}:00:00+00:00") for i in range(3)))
    _, summary, run_update, _ = lb.leaderboard_training(None, "loss", "step", 0)
    assert run_update["value"] == ["r2", "r1"] and "different tasks" not in summary  # the two newest
    _write(tmp_path, _record("student", task="stsb", primary="spearman", score=80.0, higher=True,
                             ts="2026-11-25T19:00:00+00:00"))
    _, summary, run_update, _ = lb.leaderboard_training(None, "loss", "step", 0)
    assert run_update["value"] == ["student", "r2"]
    assert summary.startswith("**No comparison:** the chosen runs were scored on different held-out measures")
    assert "spearman on stsb heldout" in summary and "held-out MLM loss on wikipedia-mlm heldout" in summary
    assert "ends" not in summary and "final training" not in summary  # never a verdict on the curves' last values


def test_training_endpoint_is_public_and_wired(tmp_path, monkeypatch):
    import gradio as gr

    from bertvariants.ui import leaderboard as lb

    monkeypatch.setenv("BERTVARIANTS_RESULTS_DIR", str(tmp_path))
    with gr.Blocks() as demo:
        with gr.Tab("Leaderboard") as tab:
            lb.build(None, tab)
    fns = {f.api_name: f for f in demo.fns.values() if f.api_name}
    fn = fns["leaderboard_training"]
    assert fn.fn is lb.leaderboard_training
    assert [type(c).__name__ for c in fn.inputs] == ["Dropdown", "Dropdown", "Radio", "Slider"]
    assert json.dumps(fn.inputs[0].choices) == "[]" and fn.inputs[1].value == "loss"


# ------------------------------------------------------------------ a paper's claim: equal fine-tunes from two starts
def _finetune(model, base, score, ci, ts, **config):
    rec = _record(model, task="sst2", primary="accuracy", score=score, ts=ts, higher=True,
                  ci95={"low": ci[0], "high": ci[1]})
    rec["training"]["config"] = {"steps": 400, "batch_size": 32, "lr": 5e-4, "lora_rank": 16, "max_length": 128,
                                 "seed": 42, "base_model": base, **config}
    return rec


def _pretrain(model, path, steps, seconds):
    rec = _record(model, model_path=path, ts="2026-11-25T13:00:00+00:00")
    rec["training"].update(steps=steps, seconds=seconds, config={"batch_size": 16, "max_length": 128})
    return rec


def test_rtd_vs_mlm_comparison_says_only_the_start_differs(tmp_path):
    from evaluation import training_view as tv

    _write(tmp_path, _pretrain("cmp-rtd", "models/cmp-rtd", 400, 610.4), _pretrain("cmp-mlm", "models/cmp-mlm", 400, 420.0),
           _finetune("sst2-from-rtd", "models/cmp-rtd/discriminator", 86.2, (84.0, 88.3), "2026-11-25T15:00:00+00:00"),
           _finetune("sst2-from-mlm", "models/cmp-mlm", 84.9, (82.6, 87.2), "2026-11-25T15:05:00+00:00"))
    runs = results.training_runs(tmp_path)
    found = tv.comparisons(runs)
    assert list(found) == ["RTD vs MLM pretraining, then SST-2 (ELECTRA §3.3)"]  # only pairs present are offered
    view = _quiet(tv.training_view, found["RTD vs MLM pretraining, then SST-2 (ELECTRA §3.3)"], None, "step", 0,
                  directory=tmp_path)
    assert "sst2-from-rtd" in view.summary.split("**Which wins:**")[1].split(";")[0]  # the higher accuracy wins
    assert "overlap" in view.summary  # 84.0–88.3 vs 82.6–87.2: not a clear difference, and it says so
    assert "**Equal fine-tuning:**" in view.summary and "400 steps × 32" in view.summary
    assert "pretrained 400 steps × 16 blocks of 128 tokens in 610 s, run cmp-rtd" in view.summary
    assert "in 420 s, run cmp-mlm" in view.summary
    # a fine-tune with other settings is called out, not credited to the pretraining
    _write(tmp_path, _finetune("sst2-from-mlm", "models/cmp-mlm", 84.9, (82.6, 87.2), "2026-11-25T16:00:00+00:00",
                               steps=800))
    again = _quiet(tv.training_view, ["sst2-from-rtd", "sst2-from-mlm"], None, "step", 0, directory=tmp_path)
    assert "**Not an equal fine-tune:**" in again.summary and "steps" in again.summary


def test_claim_verdict_is_the_views_sentence_or_none(tmp_path):
    from evaluation import training_view as tv

    label = "RTD vs MLM pretraining, then SST-2 (ELECTRA §3.3)"
    assert tv.claim_verdict(label, tmp_path) is None  # no runs yet
    _write(tmp_path, _finetune("sst2-from-rtd", "models/cmp-rtd/discriminator", 86.2, (84.0, 88.3),
                               "2026-11-25T15:00:00+00:00"))
    assert tv.claim_verdict(label, tmp_path) is None  # one run of the pair
    _write(tmp_path, _finetune("sst2-from-mlm", "models/cmp-mlm", 88.9, (87.0, 90.6), "2026-11-25T15:05:00+00:00"))
    text = tv.claim_verdict(label, tmp_path)
    assert text.startswith("sst2-from-mlm") or "sst2-from-mlm" in text.split(";")[0]  # the higher accuracy wins
    assert "do not overlap" not in text and "overlap" in text  # 84.0–88.3 vs 87.0–90.6
    assert tv.claim_verdict("Span vs token masking, then SQuAD (SpanBERT §5)", tmp_path) is None
    with pytest.raises(ValueError, match="unknown comparison"):
        tv.claim_verdict("no such claim", tmp_path)
