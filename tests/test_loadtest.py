"""The load-test script keeps working: a tiny bounded run against the real app (no timing asserts)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from evaluation import loadtest

from .conftest import REPO


def test_percentile_is_nearest_rank():
    xs = [5.0, 1.0, 3.0, 2.0, 4.0]
    assert loadtest.percentile(xs, 50) == 3.0
    assert loadtest.percentile(xs, 95) == 5.0
    assert loadtest.percentile(xs, 0) == 1.0
    assert loadtest.percentile([7.0], 95) == 7.0
    assert loadtest.percentile([], 50) is None
    assert loadtest.percentile(list(range(1, 101)), 95) == 95


def test_request_kwargs_use_the_page_examples(tmp_path):
    params = [
        {"parameter_name": "a", "component": "Textbox", "parameter_has_default": True, "parameter_default": "hi"},
        {"parameter_name": "b", "component": "Textbox", "parameter_has_default": False, "parameter_default": None},
        {"parameter_name": "k", "component": "Slider", "parameter_has_default": True, "parameter_default": 3},
        {"parameter_name": "f", "component": "File", "parameter_has_default": False, "parameter_default": None},
    ]
    clip = tmp_path / "c.mp4"
    clip.write_bytes(b"x")
    kw = loadtest.request_kwargs(params, clip)
    assert kw["a"] == "hi" and kw["b"] == loadtest.EXAMPLE_TEXT and kw["k"] == 3
    assert kw["f"]["path"] == str(clip)


def test_queue_full_is_told_apart_from_failures():
    from gradio_client.exceptions import AppError
    from gradio_client.utils import QueueError

    assert loadtest.is_queue_full(QueueError("Queue is full! Please try again."))
    assert not loadtest.is_queue_full(AppError("Queue is full? no: a handler message"))
    assert not loadtest.is_queue_full(RuntimeError("connection reset"))


def test_tiny_bounded_run_counts_queue_full_separately_and_cleans_up(tmp_path):
    """8 clients × 24 requests against a queue of size 1: the overflow comes back as explicit queue-full
    rejections (not failures), every request is accounted for, no temp file is left behind, and the
    last line of stdout is the JSON report."""
    out = subprocess.run([sys.executable, "-m", "evaluation.loadtest", "--clients", "8", "--requests", "24",
                          "--queue-size", "1", "--endpoints", "similarity,search", "--workdir", str(tmp_path / "w")],
                         cwd=REPO, capture_output=True, text=True, timeout=400)
    report = json.loads(out.stdout.strip().splitlines()[-1])
    assert report["endpoints"] == ["similarity", "search"] and report["unavailable"] == {}
    assert report["ok"] + report["queue_full"] + report["failed"] == 24
    assert report["failed"] == 0, report["failures"]
    assert report["queue_full"] > 0 and report["ok"] > 0
    assert report["temp_files_left_after_exit"] == 0
    assert report["p50_ms"] is not None and report["p95_ms"] >= report["p50_ms"]
    assert set(report["checks"]) >= {"no_failed_requests", "all_requests_answered", "no_temp_file_growth"}
    assert out.returncode == (0 if report["passed"] else 1)
    assert "queue-full" in out.stderr


def test_bad_arguments_are_refused_before_starting_anything():
    with pytest.raises(ValueError, match="--clients and --requests must be at least 1"):
        loadtest.run(clients=0, requests=10)


# ----------------------------------------------------------------------------------------------- what it found
def test_model_loads_never_overlap_across_threads():
    """Two different models requested at once load one after the other (from_pretrained under a
    process-global meta-device context failed with 'Cannot copy out of meta tensor' when overlapped),
    while a model already loaded is served without waiting."""
    import threading
    import time

    from bertvariants.serving.cache import ModelCache

    cache = ModelCache(max_items=4)
    active, overlaps = [0], []
    lock = threading.Lock()

    def loader(tag):
        def load():
            with lock:
                active[0] += 1
                overlaps.append(active[0])
            time.sleep(0.05)
            with lock:
                active[0] -= 1
            return tag
        return load

    threads = [threading.Thread(target=cache.get, args=((k,), loader(k))) for k in "abcdef" for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert max(overlaps) == 1 and len(overlaps) == 6  # serial, and each key loaded once
    assert cache.get(("f",), loader("never")) == "f"


def test_malloc_arenas_are_capped_on_glibc(monkeypatch):
    from bertvariants.ui import guard

    monkeypatch.setenv("MALLOC_ARENA_MAX", "4")
    assert guard.limit_malloc_arenas() is False  # the operator's setting wins
    monkeypatch.delenv("MALLOC_ARENA_MAX")
    import platform

    assert guard.limit_malloc_arenas(2) is (platform.libc_ver()[0] == "glibc")
