"""The paired bootstrap test between two runs (evaluation.significance) and its API endpoint."""

from __future__ import annotations

import numpy as np
import pytest

from evaluation import results, significance
from evaluation.metrics import glue
from evaluation.tasks import benchmark


def _write(tmp_path, model: str, records: list[dict], *, task="sst2", split=None, score=None,
           ts="2026-01-01T00:00:00+00:00", **extra) -> str:
    b = benchmark(task)
    result = {"task": task, "model": model, "split": split or b.default_split, "n": len(records),
              "metrics": {b.primary: 0.0 if score is None else score}, "primary_metric": b.primary, "timestamp": ts,
              "data_sha256": "d" * 64, **extra}
    return results.write_result(result, tmp_path, records).name


def _labels(tmp_path, model: str, correct: np.ndarray, gold: np.ndarray, **kw) -> str:
    """A classification run: right where ``correct`` is True (predictions = gold, else the other label)."""
    pred = np.where(correct, gold, 1 - gold)
    recs = [{"id": str(i), "input": f"sentence {i}", "prediction": int(p), "reference": int(g), "error": float(p != g)}
            for i, (p, g) in enumerate(zip(pred, gold))]
    return _write(tmp_path, model, recs, score=glue.accuracy(pred, gold), **kw)


@pytest.fixture
def gold():
    return np.random.default_rng(7).integers(0, 2, size=400)


def test_a_large_difference_is_significant(tmp_path, gold):
    rng = np.random.default_rng(1)
    a = _labels(tmp_path, "strong", rng.random(400) < 0.9, gold)
    b = _labels(tmp_path, "weak", rng.random(400) < 0.6, gold)
    t = significance.significance(tmp_path, a, b)
    assert t.n == 400 and t.metric == "accuracy" and t.higher_is_better
    assert t.p_value < 0.05 and t.significant() and t.better == "strong"
    assert 0 < t.ci_low < t.difference < t.ci_high  # the interval of A − B excludes 0
    assert t.difference == pytest.approx(t.score_a - t.score_b) and t.difference > 20
    assert t.p_value == pytest.approx(1 / 1001)  # no resample as extreme as the observed difference
    assert "strong is better on sst2 dev accuracy" in t.text and "significant at 0.05" in t.text
    assert t.a_better_share == 1.0


def test_identical_predictions_give_p_one_and_an_interval_around_zero(tmp_path, gold):
    correct = np.random.default_rng(2).random(400) < 0.8
    a, b = _labels(tmp_path, "same-a", correct, gold), _labels(tmp_path, "same-b", correct, gold)
    t = significance.significance(tmp_path, a, b)
    assert t.difference == 0 and t.p_value == pytest.approx(1.0) and t.ci_low <= 0 <= t.ci_high
    assert not t.significant() and t.better is None and "score the same" in t.text


def test_a_tiny_difference_is_not_significant_and_the_test_is_seeded(tmp_path, gold):
    correct = np.random.default_rng(3).random(400) < 0.8
    flipped = correct.copy()
    flipped[:3] = ~flipped[:3]  # 3 of 400 examples differ
    a, b = _labels(tmp_path, "base", correct, gold), _labels(tmp_path, "almost", flipped, gold)
    first = significance.significance(tmp_path, a, b, resamples=500, seed=5)
    assert first.p_value > 0.05 and first.ci_low <= 0 <= first.ci_high
    assert significance.paired_test(significance.pair(tmp_path, a, b), resamples=500, seed=5) == first


def test_metrics_are_recomputed_the_way_each_task_defines_them(tmp_path):
    rng = np.random.default_rng(4)
    gold = rng.uniform(0, 5, 300)
    runs = {}
    for name, noise in (("close", 0.3), ("far", 1.5)):
        pred = gold + rng.normal(0, noise, 300)
        recs = [{"id": f"s{i}", "prediction": float(p), "reference": float(g), "error": 0.0}
                for i, (p, g) in enumerate(zip(pred, gold))]
        runs[name] = (_write(tmp_path, name, recs, task="stsb"), pred)
    t = significance.significance(tmp_path, runs["close"][0], runs["far"][0])
    assert t.metric == "spearman" and t.score_a == pytest.approx(glue.spearman(runs["close"][1], gold))
    assert t.significant() and t.better == "close"
    # ROUGE: the mean of the per-example scores (the stored error is 1 − ROUGE-Lsum / 100)
    errors = {"lead": rng.uniform(0.5, 0.7, 120), "model": rng.uniform(0.6, 0.8, 120)}
    files = {k: _write(tmp_path, k, [{"id": f"d{i}", "prediction": "…", "reference": "ref", "error": round(e, 4)}
                                     for i, e in enumerate(v)], task="cnndm") for k, v in errors.items()}
    t = significance.significance(tmp_path, files["lead"], files["model"])
    assert t.metric == "rougeLsum" and t.score_a == pytest.approx(100 * (1 - np.round(errors["lead"], 4)).mean())
    assert t.better == "lead" and t.significant()


def test_held_out_mlm_loss_is_weighted_by_masked_tokens_and_lower_wins(tmp_path):
    masked = [5, 20, 10, 15] * 25
    recs = {name: [{"id": f"block-{i}", "prediction": "", "reference": "tok", "masked": m, "error": loss + 0.01 * (i % 7)}
                   for i, m in enumerate(masked)] for name, loss in (("dynamic", 2.0), ("static", 2.3))}
    a = _write(tmp_path, "mlm-dynamic", recs["dynamic"], task="wikipedia-mlm")
    b = _write(tmp_path, "mlm-static", recs["static"], task="wikipedia-mlm")
    t = significance.significance(tmp_path, a, b)
    err = np.array([r["error"] for r in recs["dynamic"]])
    assert t.score_a == pytest.approx((err * masked).sum() / sum(masked))
    assert not t.higher_is_better and t.difference < 0 and t.better == "mlm-dynamic" and t.significant()


def test_term_map_rate_is_the_share_of_same_category_neighbours(tmp_path):
    """bioterms: each term's record says whether its t-SNE neighbour shares its category (error 0) or not."""
    rng = np.random.default_rng(5)
    same = {"minilm": rng.random(600) < 0.80, "clinical": rng.random(600) < 0.90}
    files = {k: _write(tmp_path, k, [{"id": f"Disease:t{i}", "input": f"t{i}", "prediction": int(m), "reference": "Disease",
                                      "error": 1 - int(m)} for i, m in enumerate(v)], task="bioterms",
                       score=100 * v.mean()) for k, v in same.items()}
    t = significance.significance(tmp_path, files["clinical"], files["minilm"])
    assert t.metric == "nn_rate_tsne" and t.score_a == pytest.approx(100 * same["clinical"].mean())
    assert t.better == "clinical" and t.significant()


def test_runs_are_joined_by_example_id(tmp_path, gold):
    correct = np.random.default_rng(5).random(400) < 0.8
    a = _labels(tmp_path, "full", correct, gold)
    recs = [{"id": str(i), "prediction": int(gold[i]), "reference": int(gold[i]), "error": 0.0} for i in range(400)]
    b = _write(tmp_path, "partial", recs[::-1][:250] + [{"id": "extra", "prediction": 1, "reference": 1, "error": 0.0}])
    p = significance.pair(tmp_path, a, b)
    assert (p.n, p.n_a, p.n_b) == (250, 400, 251) and list(p.a["id"]) == list(p.b["id"])
    assert sorted(p.a["id"], key=int) == [str(i) for i in range(150, 400)]  # only the shared ids, paired row by row
    assert (p.a["reference"].to_numpy() == p.b["reference"].to_numpy()).all()


def test_bad_input_is_a_clear_value_error(tmp_path, gold):
    ok = np.ones(400, dtype=bool)
    a = _labels(tmp_path, "a", ok, gold)
    b = _labels(tmp_path, "b", ok, gold, ts="2026-01-02T00:00:00+00:00")
    other_task = _write(tmp_path, "c", [{"id": "0", "prediction": 0.1, "reference": 1.0, "error": 0.1}], task="stsb")
    other_ids = _write(tmp_path, "d", [{"id": "x", "prediction": 1, "reference": 1, "error": 0.0}])
    other_refs = _write(tmp_path, "e", [{"id": "0", "prediction": 1, "reference": 1 - int(gold[0]), "error": 0.0}])
    no_preds = results.write_result({"task": "sst2", "model": "f", "split": "dev", "metrics": {"accuracy": 80.0},
                                     "primary_metric": "accuracy", "timestamp": "2026-01-03T00:00:00+00:00"},
                                    tmp_path).name
    rtd = [_write(tmp_path, m, [{"id": "block-0", "prediction": "x", "reference": "y", "error": 0.1}],
                  task="wikipedia-rtd") for m in ("g1", "g2")]
    cases = [((a, "nope.json"), r"unknown run 'nope.json'.*e\.g\. "), ((a, "../../etc/passwd"), r"unknown run"),
             ((a, a), r"two different runs"), ((a, other_task), r"sst2 dev but c on stsb dev.*same task and split"),
             ((a, other_ids), r"share no example id"), ((a, other_refs), r"different references for 1 of their 1"),
             ((a, no_preds), r"no per-example predictions"), (tuple(rtd), r"auroc of wikipedia-rtd cannot be recomputed")]
    for (x, y), message in cases:
        with pytest.raises(ValueError, match=message):
            significance.significance(tmp_path, x, y)
    assert significance.significance(tmp_path, a, b).p_value == pytest.approx(1.0)


def test_p_value_definition():
    assert significance.p_value(0.0, np.zeros(99)) == 1.0
    centred = np.random.default_rng(0).normal(3.0, 1.0, 999)  # δ = 3, sd 1: |δ* − δ| ≥ 3 about 0.3% of the time
    assert significance.p_value(3.0, centred) < 0.02
    assert significance.p_value(0.5, np.random.default_rng(0).normal(0.5, 1.0, 999)) > 0.5
    with pytest.raises(ValueError, match="resamples must be between"):
        significance.paired_bootstrap(lambda i: 0.0, lambda i: 0.0, 5, resamples=0)
    assert "Berg-Kirkpatrick" in significance.__doc__ and "Koehn" in significance.__doc__
    assert "(1 + #{b : |δ*ᵦ − δ| ≥ |δ|}) / (1 + B)" in significance.__doc__


def test_significance_endpoint_answers_and_refuses_with_a_message(tmp_path, gold, monkeypatch):
    import gradio as gr

    from bertvariants.ui import leaderboard as ui

    monkeypatch.setenv("BERTVARIANTS_RESULTS_DIR", str(tmp_path))
    rng = np.random.default_rng(1)
    a = _labels(tmp_path, "strong", rng.random(400) < 0.9, gold)
    b = _labels(tmp_path, "weak", rng.random(400) < 0.6, gold)
    out = ui.leaderboard_significance(a, b, 500)
    assert out["significant"] and out["better"] == "strong" and out["resamples"] == 500 and out["n"] == 400
    assert ui.leaderboard_significance(None, None, 1000)["model_a"] in ("strong", "weak")  # the default pair
    for args, message in (((a, "no-such-run", 1000), "unknown run"), ((a, b, float("nan")), "finite number"),
                          ((a, b, 50), "between 100 and 5000")):
        with pytest.raises(gr.Error, match=message):
            ui.leaderboard_significance(*args)
    doc = ui.leaderboard_significance.__doc__
    assert "Args:" in doc and "run_a:" in doc and "resamples:" in doc and "p-value" in doc
    with gr.Blocks() as demo:
        with gr.Tab("Leaderboard") as tab:
            ui.build(None, tab)
    named = {f.api_name: f for f in demo.fns.values() if f.api_name}
    assert named["leaderboard_significance"].fn is ui.leaderboard_significance
    assert [c.label for c in named["leaderboard_significance"].inputs] == ["Run A", "Run B", "bootstrap resamples"]
