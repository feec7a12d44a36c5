"""The ``cold`` section: ``python app.py`` to its first HTTP 200, against a bare gradio app with the same tabs.

The bare app is gradio alone: one ``gr.Blocks`` with the registry's eleven tab labels, each tab empty, queued and
launched like the app (loopback, a free port, the MCP server on). It is written from :data:`BARE_APP` into a
temporary file and started exactly as the app is (``python FILE``, the same interpreter, working directory and
environment); what the app takes beyond it is what its own imports and ``build_demo()`` cost. The two start
alternately ``--repeats`` times and each is stopped once it answered; medians of wall and CPU seconds
(CPU seconds: what an idle machine would wait, roughly, on one core).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bertvariants.paths import REPO_ROOT
from bertvariants.registry import TABS

from ..loadtest import free_port, stop_server, wait_until_served
from .settings import BenchSettings
from .timing import log, median

START_TIMEOUT = 300  # seconds
POLL = 0.05  # seconds between two requests while a server starts

BARE_APP = '''\
import json, os, sys
import gradio as gr

with gr.Blocks(title="bare") as demo:
    with gr.Tabs():
        for label in json.loads(sys.argv[1]):
            with gr.Tab(label):
                pass
demo.queue(max_size=64, default_concurrency_limit=2)
demo.launch(server_name=os.environ["GRADIO_SERVER_NAME"], server_port=int(os.environ["GRADIO_SERVER_PORT"]),
            mcp_server=True)
'''


def first_200(argv: list[str], workdir: Path) -> tuple[float, float]:
    """Start ``python *argv`` on a free loopback port; (wall seconds to its first HTTP 200, CPU seconds it used by
    then). The server is stopped before returning."""
    import psutil

    port = free_port()
    env = {**os.environ, "GRADIO_SERVER_PORT": str(port), "GRADIO_SERVER_NAME": "127.0.0.1", "HF_HUB_OFFLINE": "1",
           "TRANSFORMERS_OFFLINE": "1", "GRADIO_ANALYTICS_ENABLED": "False", "TOKENIZERS_PARALLELISM": "false",
           "GRADIO_TEMP_DIR": str(workdir / "gradio")}
    url = f"http://127.0.0.1:{port}/"
    with open(workdir / "server.log", "ab") as server_log:
        t0 = time.perf_counter()
        proc = subprocess.Popen([sys.executable, *argv], cwd=REPO_ROOT, env=env, stdout=server_log,
                                stderr=subprocess.STDOUT)
    try:
        wait_until_served(proc, url, timeout=START_TIMEOUT, poll=POLL, what=f"{argv[0]} (see {workdir / 'server.log'})")
        wall = time.perf_counter() - t0
        cpu = psutil.Process(proc.pid).cpu_times()
        return wall, cpu.user + cpu.system
    finally:
        stop_server(proc)


def bench_startup(settings: BenchSettings, out: dict, detail: dict) -> None:
    """The app and the bare app, alternating; the app's start beyond the bare one is the figure."""
    labels = [spec.label for spec in TABS]
    with tempfile.TemporaryDirectory(prefix="bv-bench-start-") as tmp:
        bare = Path(tmp) / "bare_app.py"
        bare.write_text(BARE_APP, encoding="utf-8")
        sides = {"app": ["app.py"], "bare gradio": [str(bare), json.dumps(labels)]}
        wall: dict[str, list[float]] = {k: [] for k in sides}
        cpu: dict[str, list[float]] = {k: [] for k in sides}
        for r in range(settings.repeats):
            for name in (list(sides) if r % 2 == 0 else list(sides)[::-1]):
                w, c = first_200(sides[name], Path(tmp))
                wall[name].append(w)
                cpu[name].append(c)
                log(f"  {name}: first HTTP 200 after {w:.2f} s (cpu {c:.2f} s)")
    app, base = median(wall["app"]), median(wall["bare gradio"])
    out["cold_start_seconds"] = round(app, 2)
    out["cold_start_bare_gradio_seconds"] = round(base, 2)
    out["cold_start_over_bare_seconds"] = round(app - base, 2)
    out["cold_start_cpu_seconds"] = round(median(cpu["app"]), 2)
    out["cold_start_bare_gradio_cpu_seconds"] = round(median(cpu["bare gradio"]), 2)
    detail["cold_start"] = {"tabs": labels, "seconds": wall, "cpu_seconds": cpu, "bare_app": BARE_APP,
                            "repeats": settings.repeats}
