"""The app end to end: the public similarity API through gradio_client, the page in a real browser, the tab
modules built from registry.TABS, and ui.guard (its checked gradio patches, per-request validators, preload)."""

from __future__ import annotations

import inspect
import re
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

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


def test_similarity_survives_a_burst_with_bad_requests(client):
    """Concurrent good and bad /similarity requests: every bad one gets its message, and the server
    keeps serving good requests afterwards."""
    from gradio_client.exceptions import AppError, ValidationError

    def one(i):
        a = " " if i % 4 == 0 else f"A man is eating food number {i}."
        try:
            return client.predict(a, "Someone is having a meal.", api_name="/similarity")
        except (AppError, ValidationError) as exc:
            return exc

    with ThreadPoolExecutor(8) as ex:
        answers = list(ex.map(one, range(16)))
    for i, ans in enumerate(answers):
        if i % 4 == 0:
            assert isinstance(ans, (AppError, ValidationError)) and "Sentence A is empty" in str(ans)
        else:  # a bad request batched with good ones must not fail them (per-request validator)
            assert isinstance(ans, float) and 0 < ans < 1, (i, ans)
    good = client.predict("A man is eating food.", "Someone is having a meal.", api_name="/similarity")
    assert good == pytest.approx(0.689, abs=0.001)


def test_import_has_no_side_effects():
    """Importing app.py loads no model and starts no server."""
    code = ("import threading, app; from bertvariants import registry, serving; "
            "assert len(serving.CACHE) == 0; assert threading.active_count() == 1, threading.enumerate(); "
            "print('ok')")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().endswith("ok")


def test_demo_has_one_tab_per_registry_entry_in_order():
    import gradio as gr

    from bertvariants.ui import build_demo

    keys = {t.key for t in TABS}
    tabs = [b for b in build_demo().blocks.values() if isinstance(b, gr.Tab) and b.id in keys]
    assert [(t.id, t.label) for t in tabs] == [(t.key, t.label) for t in TABS]


def test_a_tab_without_its_ui_module_fails_at_build_time(monkeypatch):
    """A TABS entry with no bertvariants/ui/<key>.py is an error naming what to add, not a header-only tab."""
    import bertvariants.ui as ui
    from bertvariants.registry import TabSpec

    ghost = TabSpec("ghost_bert", "GhostBERT", "Nobody 2030, GhostBERT", "https://example.org", "Nothing changed.")
    monkeypatch.setattr(ui, "TABS", (*TABS, ghost))
    with pytest.raises(RuntimeError, match=r"tab 'ghost_bert' \(GhostBERT\) but there is no module "
                                           r"bertvariants\.ui\.ghost_bert: add bertvariants/ui/ghost_bert\.py"):
        ui.build_demo()


def test_guard_fails_loudly_when_gradio_changed_under_a_patch(monkeypatch):
    """The patched gradio internals are checked at start-up: a changed signature or a missing attribute is a
    RuntimeError naming it, the expected and found parameters and the pinned version, before anything is patched."""
    import gradio.context
    import gradio.queueing
    from gradio.components import UploadButton

    from bertvariants.ui import guard

    guard.check_gradio()  # the pinned gradio passes
    monkeypatch.setattr(gradio.queueing, "create_validator_fn", lambda fn, extra=None: fn)
    with pytest.raises(RuntimeError, match=r"(?s)gradio\.queueing\.create_validator_fn should take \(fn\) but "
                                           r"takes \(fn, extra\).*pins gradio==" + re.escape(guard.PINNED_GRADIO)):
        guard.install_fixes()
    monkeypatch.undo()
    monkeypatch.delattr(UploadButton, "_process_single_file")
    monkeypatch.delattr(gradio.context.Context, "root_block")
    with pytest.raises(RuntimeError) as info:
        guard.per_input_validator(lambda v: v)
    assert "UploadButton._process_single_file is missing" in str(info.value)
    assert "gradio.context.Context.root_block is missing" in str(info.value)


def test_per_request_validator_isolates_bad_requests_in_a_batch():
    """With ui.guard's validator a bad request is answered alone (422 → ValidationError) and never fails
    the good requests batched with it; each request is validated before it joins a batch."""
    import gradio as gr
    from gradio_client import Client
    from gradio_client.exceptions import ValidationError

    from bertvariants.checks import number, text
    from bertvariants.ui.guard import per_input_validator

    from .test_bad_input import raw_call

    batches: list[int] = []

    def lengths(first: list[str], second: list[str]):
        batches.append(len(first))
        time.sleep(0.2)  # let concurrent requests pile up into one batch
        for a in first:
            assert a.strip(), "a bad request reached the batch"
        return [[len(a) + len(b) for a, b in zip(first, second)]]

    check = per_input_validator(lambda v: text(v, "Sentence A", max_chars=50), lambda v: text(v, "Sentence B", max_chars=50))
    k_check = per_input_validator(lambda v: text(v, "Sentence A", max_chars=50),
                                  lambda v: number(v, "top-k", lo=1, hi=20, integer=True))
    with gr.Blocks() as demo:
        a, b, out = gr.Textbox(), gr.Textbox(), gr.Number()
        gr.Button().click(lengths, [a, b], [out], api_name="pair", batch=True, max_batch_size=16, validator=check)
        k = gr.Slider(1, 20, value=3, step=1)
        gr.Button().click(lambda xs, ks: [[len(x) * int(k) for x, k in zip(xs, ks)]], [a, k], [out], api_name="k",
                          batch=True, validator=k_check)
    port = free_port()
    demo.queue(max_size=64).launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    try:
        client = Client(f"http://127.0.0.1:{port}/", verbose=False)

        def one(i):
            first = "  " if i % 3 == 0 else "x" * i
            try:
                return client.predict(first, "yz", api_name="/pair")
            except ValidationError as exc:
                return str(exc)

        with ThreadPoolExecutor(12) as ex:
            answers = list(ex.map(one, range(12)))
        # out of the slider's range / not finite: the check's message, not gradio's dropped HTTP 400
        for bad, msg in ((1e12, "top-k must be a whole number between 1 and 20"), (-3, "top-k must be a whole number between 1 and 20"),
                         (2.5, "top-k must be a whole number")):
            with pytest.raises(ValidationError, match=msg):
                client.predict("ab", bad, api_name="/k")
        nan = raw_call(f"http://127.0.0.1:{port}/", "/k", '{"data": ["ab", NaN]}')
        assert nan.kind == "message" and "top-k must be a finite number" in nan.text, nan
        assert client.predict("ab", 4, api_name="/k") == 8
    finally:
        demo.close()
    for i, ans in enumerate(answers):
        if i % 3 == 0:
            assert "Sentence A is empty" in ans
        else:
            assert ans == i + 2
    assert max(batches) > 1  # good requests really were batched together


def test_first_concurrent_requests_cannot_race_in_lazy_imports():
    """The app imports up front what Plotly and scikit-learn import lazily (narwhals v1 / v2): two first
    requests drawing a figure and fitting k-means at once used to fail with _DeadlockError."""
    # the preload runs on a background thread once the server answers; every @safe handler waits for it
    code = ("import sys; from bertvariants.ui import guard, common; "
            "assert 'narwhals.stable.v2' not in sys.modules; guard.install_fixes(); guard.preload_in_background(); "
            "first = common.safe(guard.preloaded)(); "
            "missing = [m for m in ('narwhals.stable.v1', 'narwhals.stable.v2', 'plotly.graph_objects') "
            "if m not in sys.modules]; print('first request after preload', first, 'missing', missing)")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-1000:]
    assert out.stdout.strip().endswith("first request after preload True missing []"), out.stdout
    assert "install_fixes()" in (REPO / "bertvariants" / "ui" / "__init__.py").read_text()
    from bertvariants.ui import serve

    body = inspect.getsource(serve)  # app.py and the tests' app start through serve(): preload after the launch
    assert body.index("preload_in_background()") > body.index("demo.launch(")
    assert "serve(demo" in (REPO / "app.py").read_text()


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
def test_page_shows_every_tab(app_url, browser):
    page = browser.new_page()
    page.goto(app_url, wait_until="domcontentloaded")
    for spec in TABS:
        page.get_by_role("tab", name=spec.label, exact=True).wait_for(timeout=30_000)
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "app_tabs.png"), full_page=False)
    page.close()


def test_every_named_endpoint_is_an_mcp_tool_with_a_described_signature(app_url, client):
    """mcp_server=True: each API endpoint is an MCP tool named like the endpoint, whose description and whose
    every argument's description come from the handler's docstring (an "Args:" section)."""
    import json
    import urllib.request

    tools = json.loads(urllib.request.urlopen(app_url + "gradio_api/mcp/schema", timeout=60).read())
    by_name = {t["name"]: t for t in tools}
    endpoints = {name.lstrip("/") for name in client.view_api(print_info=False, return_format="dict")["named_endpoints"]}
    assert set(by_name) == endpoints
    undescribed = {name: [arg for arg, spec in t["inputSchema"]["properties"].items() if not spec.get("description")]
                   for name, t in by_name.items()}
    assert not {k: v for k, v in undescribed.items() if v}, "document every argument in the docstring's Args:"
    assert all(len(t["description"]) > 40 for t in tools), [t["name"] for t in tools if len(t["description"]) <= 40]


def test_tab_links_and_in_place_errors_are_wired():
    """?tab=<key> is read in <head> (before the first tab's select rewrites the URL) and every tab writes its key;
    a failing page event keeps its outputs and fills the error line under its button."""
    import gradio as gr

    from bertvariants.ui import launch_kwargs
    from bertvariants.ui.common import in_place

    kw = launch_kwargs()
    assert "searchParams.get('tab')" in kw["head"] and "data-tab-id" in kw["js"] and kw["mcp_server"] is True

    def boom(x):
        raise ValueError("the sentence is empty")

    outputs = in_place(boom, 2)("")
    assert outputs[0] == gr.skip() and outputs[1] == gr.skip()
    assert outputs[2]["visible"] is True and "the sentence is empty" in outputs[2]["value"]
    ok = in_place(lambda x: (x, 1), 2)("a")
    assert ok[0]["value"] == "a" and ok[0]["visible"] is True and ok[2]["visible"] is False
