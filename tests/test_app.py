"""The app end to end: the public similarity API through gradio_client, and the page in a real browser."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from bertvariants.registry import TABS

from .conftest import ARTIFACTS, REPO, free_port, needs_chromium


def test_similarity_api_matches_packaged_minilm(client):
    score = client.predict("A man is eating food.", "Someone is having a meal.", api_name="/similarity")
    assert score == pytest.approx(0.689, abs=0.001)
    unrelated = client.predict("A man is eating food.", "The stock market fell sharply today.", api_name="/similarity")
    assert unrelated < 0.2


def test_similarity_bad_input_is_a_message_and_server_survives(client):
    from gradio_client.exceptions import AppError, ValidationError

    with pytest.raises((AppError, ValidationError), match="Sentence A is empty"):
        client.predict("   ", "Someone is having a meal.", api_name="/similarity")
    with pytest.raises((AppError, ValidationError), match="limit is 5,000"):
        client.predict("x" * 6000, "y", api_name="/similarity")
    assert client.predict("A cat.", "A cat.", api_name="/similarity") == pytest.approx(1.0, abs=1e-3)


def test_search_and_heatmap_endpoints(client):
    hits = client.predict("Somebody plays music.", "A man is eating.\nA woman plays the violin.\nStocks fell.", 2,
                          api_name="/search")
    assert hits["data"][0][2] == "A woman plays the violin."
    assert len(hits["data"]) == 2


def test_import_has_no_side_effects():
    """Importing app.py loads no model and starts no server."""
    code = ("import threading, app; from bertvariants import registry; "
            "assert len(registry._CACHE) == 0; assert threading.active_count() == 1, threading.enumerate(); "
            "print('ok')")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().endswith("ok")


def test_python_app_serves_offline(tmp_path):
    """`python app.py` answers HTTP 200 on loopback with no network."""
    import os
    import urllib.request

    port = free_port()
    env = {**os.environ, "GRADIO_SERVER_PORT": str(port), "HF_HUB_OFFLINE": "1"}
    proc = subprocess.Popen([sys.executable, "app.py"], cwd=REPO, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    try:
        t0 = time.perf_counter()
        while time.perf_counter() - t0 < 60:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=1) as r:
                    assert r.status == 200
                    break
            except OSError:
                assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
                time.sleep(0.2)
        else:
            pytest.fail("app did not answer within 60 s")
    finally:
        proc.terminate()
        proc.wait(timeout=20)


@needs_chromium
def test_page_shows_all_ten_tabs(app_url, browser):
    page = browser.new_page()
    page.goto(app_url, wait_until="domcontentloaded")
    for spec in TABS:
        page.get_by_role("tab", name=spec.label, exact=True).wait_for(timeout=30_000)
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "app_tabs.png"), full_page=False)
    page.close()
