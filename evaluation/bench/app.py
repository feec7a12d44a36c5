"""The app sections: ``app`` (Gradio batching of the similarity handler), ``cold`` and ``rss``.

- ``app``: the similarity handler served by Gradio with ``batch=True`` versus the same handler unbatched,
  16 concurrent ``gradio_client`` clients, requests/s and p50/p95 latency. The handler is the library function
  the app's endpoint calls, :func:`bertvariants.sentence_bert.similarity_pairs` (below the UI and this
  benchmark both). Its server is gradio alone around that function, written from :data:`SERVER` into a
  temporary file and started as its own process (so the server never shares a GIL with the 16 client threads),
  as the ``cold`` section starts its bare gradio app; the handler alone is timed in this process.
- ``cold``: ``python app.py`` until the first HTTP 200; ``rss``: the app's resident memory after one call
  of every endpoint it exposes (endpoints whose model is unavailable offline are listed, not fatal).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from bertvariants.paths import REPO_ROOT

from ..loadtest import (
    free_port,
    make_clip,
    percentile,
    request_kwargs,
    rss_bytes,
    share_work,
    start_server,
    stop_server,
    wait_until_served,
)
from .encode import stsb_data
from .settings import BenchSettings
from .timing import alternate, log, median, medians

SIMILARITY_TASK = "similarity"  # the manifest task the app's similarity endpoint serves
VARIANTS = ("unbatched", "batched", "noop")  # endpoints of SERVER

SERVER = '''\
"""The similarity handler three ways: batched (the app's setting), unbatched (one request per call, the queue's
default concurrency) and noop (batched, no model: the framework's own ceiling on requests/s)."""
import sys

import gradio as gr
import torch

from bertvariants.serving import get_model
from bertvariants.sentence_bert import similarity_pairs

port, max_batch_size, threads = (int(a) for a in sys.argv[1:4])
if threads:
    torch.set_num_threads(threads)
served = get_model(sys.argv[4])  # loads once, before either variant is timed


def batched(first, second):
    return [similarity_pairs(served.model, served.tokenizer, first, second, decimals=4)]


def single(a, b):
    return similarity_pairs(served.model, served.tokenizer, [a], [b], decimals=4)[0]


def noop(first, second):
    return [[0.0] * len(first)]


with gr.Blocks() as demo:
    a, b, s = gr.Textbox(), gr.Textbox(), gr.Number()
    btn = gr.Button()
    btn.click(batched, [a, b], [s], api_name="batched", batch=True, max_batch_size=max_batch_size,
              concurrency_limit=1)
    btn.click(single, [a, b], [s], api_name="unbatched")
    btn.click(noop, [a, b], [s], api_name="noop", batch=True, max_batch_size=max_batch_size, concurrency_limit=1)
demo.queue(max_size=64, default_concurrency_limit=2)
demo.launch(server_name="127.0.0.1", server_port=port, quiet=True)
'''
SERVER_START_TIMEOUT = 300  # seconds


def pairs_for_clients(n: int, path: str | None) -> list[tuple[str, str]]:
    """The first ``n`` STS-B pairs, or distinct synthetic pairs when there is no shared data."""
    try:
        a, b, _, _ = stsb_data(path)
        return list(zip(a, b))[:n]
    except ValueError:  # no shared data: distinct synthetic pairs (dedup must not help either side)
        return [(f"A sentence about topic number {i}.", f"Another sentence, this one about item {i}.")
                for i in range(n)]


# --------------------------------------------------------------------------------------------
# app: the handler alone, then served batched vs unbatched
# --------------------------------------------------------------------------------------------
def time_handler(settings: BenchSettings, out: dict) -> dict[str, float]:
    """The handler alone (no HTTP): one call with the clients' 16 pairs vs 16 calls of one pair."""
    from bertvariants.sentence_bert import similarity_pairs
    from bertvariants.serving import get_model

    served = get_model(SIMILARITY_TASK)
    model, tok = served.model, served.tokenizer
    group = pairs_for_clients(settings.clients, settings.stsb)
    firsts, seconds = [p[0] for p in group], [p[1] for p in group]
    fns = {"handler, one call of 16": lambda: similarity_pairs(model, tok, firsts, seconds),
           "handler, 16 calls of 1": lambda: [similarity_pairs(model, tok, [x], [y]) for x, y in group]}
    for f in fns.values():
        f()
    handler = medians(alternate(fns, max(3, settings.repeats)))
    out["app_handler_batching_speedup"] = round(handler["handler, 16 calls of 1"]
                                                / handler["handler, one call of 16"], 3)
    return handler


def start_similarity_server(settings: BenchSettings, workdir: Path) -> tuple[subprocess.Popen, str]:
    """:data:`SERVER` on a free loopback port, once it answers HTTP 200."""
    port = free_port()
    program = workdir / "similarity_server.py"
    program.write_text(SERVER, encoding="utf-8")
    cmd = [sys.executable, str(program), str(port), str(settings.max_batch_size), str(settings.threads or 0),
           SIMILARITY_TASK]
    env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))}
    server = subprocess.Popen(cmd, cwd=REPO_ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/"
    wait_until_served(server, url, timeout=SERVER_START_TIMEOUT, what="the similarity server")
    return server, url


def run_variant(clients: list, pairs: list[tuple[str, str]], variant: str, timeout: float
                ) -> tuple[float, list[float], dict[int, float]]:
    """Every pair once through endpoint ``/variant``, the clients pulling from one shared queue of work.
    Returns (wall seconds, latencies in seconds, score of each pair index)."""
    lat: list[float] = []
    scores: dict[int, float] = {}
    lock = threading.Lock()

    def send(c, i: int) -> None:
        t0 = time.perf_counter()
        r = c.submit(*pairs[i], api_name=f"/{variant}").result(timeout=timeout)
        with lock:
            lat.append(time.perf_counter() - t0)
            scores[i] = float(r)

    t0 = time.perf_counter()
    share_work(clients, len(pairs), send)
    return time.perf_counter() - t0, lat, scores


def drive_variants(settings: BenchSettings, url: str, pairs: list[tuple[str, str]]) -> dict[str, dict]:
    """Each variant in turn (``--app-repeats`` times), ``--clients`` clients: req/s, p50/p95 ms, scores."""
    from gradio_client import Client

    clients = [Client(url, verbose=False, download_files=False) for _ in range(settings.clients)]
    results: dict[str, dict] = {}
    try:
        for variant in list(VARIANTS) * settings.app_repeats:
            wall, lat, scores = run_variant(clients, pairs, variant, settings.endpoint_timeout)
            rec = results.setdefault(variant, {"rps": [], "p50_ms": [], "p95_ms": [], "scores": scores})
            rec["rps"].append(len(pairs) / wall)
            rec["p50_ms"].append(1000 * percentile(lat, 50))
            rec["p95_ms"].append(1000 * percentile(lat, 95))
            log(f"  app {variant}: {len(pairs) / wall:.1f} req/s, p50 {rec['p50_ms'][-1]:.0f} ms, "
                f"p95 {rec['p95_ms'][-1]:.0f} ms")
    finally:
        for c in clients:
            c.close()
    return results


def bench_app(settings: BenchSettings, out: dict, detail: dict) -> None:
    """Same handler, batch=True (the app's setting) vs one request per call, 16 concurrent clients."""
    handler = time_handler(settings, out)
    pairs = pairs_for_clients(settings.requests, settings.stsb)
    with tempfile.TemporaryDirectory(prefix="bv-bench-similarity-") as tmp:
        server, url = start_similarity_server(settings, Path(tmp))
        try:
            results = drive_variants(settings, url, pairs)
        finally:
            server.terminate()
            server.wait(timeout=30)
    diff = max(abs(results["batched"]["scores"][i] - results["unbatched"]["scores"][i]) for i in range(len(pairs)))
    assert diff < 1e-3, f"batched and unbatched scores differ by {diff}"
    summary = {v: {k: round(median(r[k]), 1) for k in ("rps", "p50_ms", "p95_ms")} for v, r in results.items()}
    out["app_batching_speedup"] = round(summary["batched"]["rps"] / summary["unbatched"]["rps"], 3)
    out["app_rps_batched"] = summary["batched"]["rps"]
    out["app_rps_unbatched"] = summary["unbatched"]["rps"]
    out["app_p50_ms_batched"] = summary["batched"]["p50_ms"]
    out["app_p95_ms_batched"] = summary["batched"]["p95_ms"]
    out["app_p50_ms_unbatched"] = summary["unbatched"]["p50_ms"]
    out["app_p95_ms_unbatched"] = summary["unbatched"]["p95_ms"]
    out["app_rps_noop_ceiling"] = summary["noop"]["rps"]
    detail["app"] = {"handler_seconds": handler, "clients": settings.clients, "requests": len(pairs),
                     "max_batch_size": settings.max_batch_size, "summary": summary, "max_score_diff": diff,
                     "runs": {v: {k: r[k] for k in ("rps", "p50_ms", "p95_ms")} for v, r in results.items()}}


# --------------------------------------------------------------------------------------------
# cold and rss: the real app
# --------------------------------------------------------------------------------------------
def call_every_endpoint(url: str, clip: Path, timeout: float) -> tuple[list[str], dict[str, str], int]:
    """One call of each named endpoint with the page's example inputs: (ran, {failed: why}, total)."""
    from gradio_client import Client

    client = Client(url, verbose=False, download_files=False)
    api = client.view_api(print_info=False, return_format="dict")["named_endpoints"]
    ran, failed = [], {}
    for name, info in sorted(api.items()):
        t1 = time.perf_counter()
        try:
            client.submit(api_name=name, **request_kwargs(info["parameters"], clip)).result(timeout=timeout)
            ran.append(name)
        except Exception as exc:  # noqa: BLE001 - offline some models need training: reported
            failed[name] = (str(exc).splitlines() or [type(exc).__name__])[0][:160]
        log(f"  {name}: {'ok' if name in ran else 'unavailable/failed'} ({time.perf_counter() - t1:.1f} s)")
    client.close()
    return ran, failed, len(api)


def bench_cold_and_rss(settings: BenchSettings, out: dict, detail: dict, *, cold: bool, rss: bool) -> None:
    """``python app.py`` to the first HTTP 200; then every endpoint once and the server's resident memory."""
    with tempfile.TemporaryDirectory(prefix="bv-bench-app-") as tmp:
        t0 = time.perf_counter()
        proc, url, _ = start_server(Path(tmp), queue_size=64)
        started = time.perf_counter() - t0
        try:
            if cold:
                import psutil

                cpu = psutil.Process(proc.pid).cpu_times()
                out["cold_start_seconds"] = round(started, 2)
                out["cold_start_cpu_seconds"] = round(cpu.user + cpu.system, 2)  # what an idle machine would wait
                detail["cold_start"] = {"seconds": started, "cpu_seconds": cpu.user + cpu.system,
                                        "rss_mb_at_start": rss_bytes(proc.pid) / 2**20}
            if rss:
                clip = make_clip(Path(tmp) / "clip.mp4")
                ran, failed, total = call_every_endpoint(url, clip, settings.endpoint_timeout)
                time.sleep(1.0)
                out["rss_mb_all_tabs"] = round(rss_bytes(proc.pid) / 2**20, 1)
                out["rss_endpoints_ran"] = len(ran)
                out["rss_endpoints_total"] = total
                detail["rss"] = {"ran": ran, "unavailable_or_failed": failed}
        finally:
            stop_server(proc)
