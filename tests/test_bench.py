"""The benchmark's pure parts: FLOP counting, A/B alternation, table and plot. (The bench itself is a
command, not a timed test.)"""

from __future__ import annotations

import time
import xml.dom.minidom

import pytest

from evaluation import bench
from evaluation.bench.encode import EncoderShape
from evaluation.bench.report import svg_chart, table
from evaluation.bench.settings import BenchSettings
from evaluation.bench.timing import alternate


def test_flops_count_matches_a_hand_count():
    shape = EncoderShape(layers=6, hidden=384, intermediate=1536)  # all-MiniLM-L6-v2
    # per token and layer: QKV+O 4·384² and FFN 2·384·1536 weights, 2 FLOPs each; attention 4·T·H
    per_token_weights = 2 * (4 * 384 ** 2 + 2 * 384 * 1536)
    assert per_token_weights == 3_538_944
    t = 17
    assert shape.flops(5, t) == 6 * 5 * t * (per_token_weights + 4 * t * 384)
    assert shape.flops(2, 10) == 2 * shape.flops(1, 10)  # linear in rows
    assert shape.flops(1, 20) > 2 * shape.flops(1, 10)  # attention makes length super-linear


def test_alternate_rotates_and_records_every_repeat():
    calls = []
    fns = {n: (lambda n=n: calls.append(n)) for n in "abc"}
    cpu: dict = {}
    times = alternate(fns, 3, cpu)
    assert calls == list("abc" "bca" "cab")  # each side goes first once
    assert all(len(v) == 3 for v in times.values()) and set(cpu) == set("abc")


def test_table_marks_goals_both_ways():
    text = table({"sst2_vs_pipeline_bs32": 1.6, "cold_start_seconds": 9.0, "extra": 1})
    lines = {line.split()[0]: line for line in text.splitlines()[2:]}
    assert lines["sst2_vs_pipeline_bs32"].rstrip().endswith("yes")
    assert lines["cold_start_seconds"].rstrip().endswith("NO")  # lower is better: 9 > 8
    assert "extra" in lines


def test_svg_chart_is_valid_xml_with_a_bar_per_ratio():
    out = {"stsb_encode_vs_sentence_transformers_fp32": 1.3, "stsb_cpu_time_ratio_fp32": 1.4,
           "app_batching_speedup": 0.9}
    svg = svg_chart(out)
    doc = xml.dom.minidom.parseString(svg)
    bars = [r for r in doc.getElementsByTagName("rect") if r.getAttribute("height") != "100%"]
    assert len(bars) == 3  # two for STS-B (wall, cpu), one for the app (no handler ratio given)
    assert "1.30× (wall)" in svg and "1.40× (cpu)" in svg


def test_main_rejects_unknown_sections(capsys):
    with pytest.raises(SystemExit):
        bench.main(["--only", "stsb,warp-drive"])
    assert "unknown section(s) warp-drive" in capsys.readouterr().err


def test_settings_put_stsb_before_flops_and_refuse_bad_values():
    assert BenchSettings(sections=("flops", "app")).sections == ("stsb", "flops", "app")
    assert BenchSettings().sections == bench.SECTIONS
    with pytest.raises(ValueError, match="unknown section"):
        BenchSettings(sections=("warp-drive",))
    with pytest.raises(ValueError, match="must be ≥ 1"):
        BenchSettings(repeats=0)


def test_training_bench_counts_flops_and_exact_path_learns_like_plain():
    """The training bench's three sides run; the lab's exact path (fused AdamW, sparse heads) follows the
    plain step's loss from the same seed; the FLOP count is the hand count of the plain step."""
    from types import SimpleNamespace

    from evaluation.bench import train_steps as tb

    cfg = SimpleNamespace(hidden_size=4, intermediate_size=8, vocab_size=10)
    fwd = 6 * (4 * 16 + 2 * 4 * 8 + 2 * 5 * 4)  # per token, T = 5
    assert tb.plain_flops("qa", cfg, batch=1, tokens=5) == 2 * 3 * fwd * 5
    assert tb.plain_flops("mlm", cfg, batch=2, tokens=5) == 2 * 3 * (fwd + 16 + 40) * 10
    result = tb.run(("qa", "mlm"), batch=2, tokens=16, repeats=1, loss_steps=2, progress=lambda *_: None)
    for kind in ("qa", "mlm"):
        r = result[kind]
        assert r["plain"]["trainable_parameters"] > 20 * r["lab"]["trainable_parameters"]
        assert r["losses"]["first"]["plain"] == r["losses"]["first"]["exact"]
        assert r["losses"]["max_abs_diff_plain_exact"] < 0.05
        assert r["lab_speedup"] > 0 and 0 < r["lab"]["share_of_peak"]


def test_training_bench_runs_fp32_on_both_sides_without_native_bf16(monkeypatch):
    """Issue 26: on a CPU without native bf16 (read by serving.device.cpu_capabilities, here monkeypatched) the
    training bench runs fp32 on every side and rates them against the fp32 matmul peak; with native bf16, bf16."""
    import dataclasses

    from bertvariants import inference
    from evaluation.bench import train_steps as tb

    peaks = []
    monkeypatch.setattr(tb, "matmul_peak", lambda dtype, **_: peaks.append(dtype) or (100.0, 100.0))
    steps = []

    def step(self, batch, autocast):  # records the precision; takes a moment so that times are not zero
        steps.append(autocast)
        time.sleep(0.01)
        return 1.0

    monkeypatch.setattr(tb.Side, "step", step)
    for native in (False, True):
        caps = dataclasses.replace(inference.cpu_capabilities(), native_bf16=native, model="test CPU")
        monkeypatch.setattr(inference, "cpu_capabilities", lambda: caps)
        peaks.clear(), steps.clear()
        result = tb.run(("qa",), batch=2, tokens=16, repeats=1, progress=lambda *_: None)
        assert result["precision"] == ("bf16" if native else "fp32")
        assert set(steps) == {native}  # plain, exact and lab alike
        assert peaks == (["bf16", "fp32"] if native else ["fp32"])
        assert result["matmul_peak_gflops"]["bf16"] == (100.0 if native else None)


def test_startup_section_times_the_app_and_a_bare_app_alternating(monkeypatch, tmp_path):
    """cold: both servers start --repeats times in alternating order; the difference of medians is reported."""
    from evaluation.bench import startup

    started = []

    def fake_first_200(argv, workdir):
        started.append("app" if argv == ["app.py"] else "bare")
        return (5.0, 4.0) if argv == ["app.py"] else (3.5, 3.0)

    monkeypatch.setattr(startup, "first_200", fake_first_200)
    out, detail = {}, {}
    startup.bench_startup(BenchSettings(sections=("cold",), repeats=2), out, detail)
    assert started == ["app", "bare", "bare", "app"]
    assert out["cold_start_over_bare_seconds"] == 1.5 and out["cold_start_bare_gradio_seconds"] == 3.5
    assert len(detail["cold_start"]["tabs"]) == 11
    compile(startup.BARE_APP, "bare_app.py", "exec")  # the bare app is valid Python


def test_every_default_section_has_a_runner():
    import inspect

    source = inspect.getsource(bench.run_sections)
    for section in bench.SECTIONS + ("train",):
        assert f'"{section}"' in source, section


def test_markdown_table_names_the_cpu_and_marks_goals():
    from evaluation.bench.report import (
        TABLE_END,
        TABLE_START,
        markdown_table,
        with_table,
    )

    run = {"summary": {"summary_seconds": 2.5, "cold_start_over_bare_seconds": 3.1, "summary_fast_path": "int8"},
           "detail": {"cpu": "Test CPU (native bf16)", "threads": 2, "cpu_count": 2, "repeats": 3,
                      "load_average_start": [4.0, 3.0, 2.0]}}
    md = markdown_table(run)
    assert md.startswith("CPU: Test CPU (native bf16) · torch threads 2 of 2 cores")
    assert "| `summary_seconds` | 2.5 | ≤ 3 | yes |" in md
    assert "| `cold_start_over_bare_seconds` | 3.1 | ≤ 2 | **no** |" in md
    assert "| `summary_fast_path` | int8 |  |  |" in md
    doc = f"# Title\n{TABLE_START}\nold\n{TABLE_END}\ntail\n"
    assert with_table(doc, run) == f"# Title\n{TABLE_START}\n{md}\n{TABLE_END}\ntail\n"
    with pytest.raises(ValueError, match="markers"):
        with_table("# no table here", run)



def test_the_performance_doc_holds_the_table_of_the_committed_bench_run():
    """docs/performance.md's bench table is what the generator makes of docs/performance.json (regenerate with
    ``python -m evaluation.bench.report docs/performance.json docs/performance.md``)."""
    import json

    from bertvariants.paths import REPO_ROOT
    from evaluation.bench.report import with_table

    doc = (REPO_ROOT / "docs" / "performance.md").read_text(encoding="utf-8")
    run = json.loads((REPO_ROOT / "docs" / "performance.json").read_text(encoding="utf-8"))
    assert with_table(doc, run) == doc


def test_app_section_serves_the_library_similarity_three_ways(tmp_path):
    """The app section's server is gradio around :func:`bertvariants.sentence_bert.similarity_pairs` (no UI
    module): batched and unbatched give the library's scores, noop gives zeros."""
    from bertvariants.sentence_bert import similarity_pairs
    from bertvariants.serving import get_model
    from evaluation.bench import app

    settings = BenchSettings(sections=("app",), clients=2, requests=3, threads=1)
    pairs = [("A man plays a guitar.", "Someone is playing music."), ("A cat sleeps.", "The stock market fell."),
             ("Two dogs run on grass.", "Dogs are running outside.")]
    server, url = app.start_similarity_server(settings, tmp_path)
    try:
        results = app.drive_variants(settings, url, pairs)
    finally:
        server.terminate()
        server.wait(timeout=30)
    served = get_model(app.SIMILARITY_TASK)
    expected = similarity_pairs(served.model, served.tokenizer, [a for a, _ in pairs], [b for _, b in pairs],
                                decimals=4)
    for variant in ("batched", "unbatched"):
        got = [results[variant]["scores"][i] for i in range(len(pairs))]
        assert got == pytest.approx(expected, abs=2e-4), variant
    assert set(results["noop"]["scores"].values()) == {0.0}


def test_the_bench_lab_side_uses_the_recipes_defaults():
    """The training bench builds its lab side from bertvariants.lab_step's constants (core cannot import the
    train layer's TrainConfig): they must be TrainConfig's defaults."""
    from bertvariants.lab_step import LAB_ATTENTION_DROPOUT, LAB_WEIGHT_DECAY
    from bertvariants.train.config import TrainConfig

    assert TrainConfig().weight_decay == LAB_WEIGHT_DECAY
    assert TrainConfig().attention_dropout == LAB_ATTENTION_DROPOUT
