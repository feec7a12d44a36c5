"""Load test: the real app on loopback, many concurrent ``gradio_client`` clients, bounded and measured.

    python -m evaluation.loadtest [--clients 32] [--requests 500] [--endpoints similarity,search,...]

1. starts ``app.py`` on 127.0.0.1 (a free port) in a subprocess with its own ``GRADIO_TEMP_DIR`` and
   ``TMPDIR``, so every upload and temp file it makes is counted;
2. warms up: one request per model-backed endpoint with the page's example inputs (its defaults in the
   API); endpoints whose model is unavailable here are dropped and named (offline they need training);
   then one concurrent round of 2 × ``--clients`` requests (threads, arenas and sessions exist);
3. records the server's resident memory (RSS, children included) and its temp files;
4. ``--clients`` threads, each with its own ``gradio_client.Client``, send ``--requests`` requests in
   total, round-robin over the endpoints; each is ``ok``, an explicit ``queue full`` rejection (counted,
   allowed) or a failure;
5. reports p50 / p95 latency (overall and per endpoint), RSS after the run vs after warm-up (must stay
   within ``--max-rss-growth``, default 10%), temp files left beyond warm-up (must be none) — and prints
   one JSON object as the last line. Exit status 1 when any check fails.

Loopback only; nothing else is contacted (HF_HUB_OFFLINE=1).
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

from bertvariants.paths import REPO_ROOT

# Endpoints that run a model (the ones worth loading). Mechanism-only views are cheap and not the point.
MODEL_BACKED = (
    "similarity", "pair_view", "search", "heatmap", "cluster",
    "albert_features", "albert_fill_mask", "roberta_fill_mask",
    "electra_replace", "electra_detect", "spanbert_qa",
    "distillation_teacher_logits", "compare_sentiment",
    "clinical_score", "clinical_terms", "summarize", "video_tokenize",
)
FILE_COMPONENTS = ("File", "Video")
# for a text input the page leaves empty (filled by another step, e.g. ELECTRA's detector input)
EXAMPLE_TEXT = "The patient was given aspirin after the chef cooked the meal."


@dataclass
class Report:
    """What one run measured (printed as the last line, JSON)."""

    clients: int
    requests: int
    endpoints: list[str]
    unavailable: dict[str, str]
    ok: int = 0
    queue_full: int = 0
    failed: int = 0
    failures: list[str] = field(default_factory=list)  # first few, for the reader
    p50_ms: float | None = None
    p95_ms: float | None = None
    max_ms: float | None = None
    per_endpoint: dict[str, dict] = field(default_factory=dict)
    wall_s: float = 0.0
    throughput_rps: float = 0.0
    rss_warm_mb: float = 0.0
    rss_after_mb: float = 0.0
    rss_growth_pct: float = 0.0
    temp_files_warm: int = 0
    temp_files_after: int = 0
    temp_files_left_after_exit: int = 0
    checks: dict[str, bool] = field(default_factory=dict)
    passed: bool = False


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def percentile(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile (q in [0, 100]) of ``values``; None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, min(len(ordered), int(-(-q * len(ordered) // 100))))  # ceil(q·n/100)
    return ordered[rank - 1]


def rss_bytes(pid: int) -> int:
    """Resident memory of a process and its children."""
    import psutil

    proc = psutil.Process(pid)
    total = proc.memory_info().rss
    for child in proc.children(recursive=True):
        try:
            total += child.memory_info().rss
        except psutil.Error:
            pass
    return total


def count_files(*roots: Path) -> int:
    return sum(1 for r in roots if r.exists() for p in r.rglob("*") if p.is_file())


def start_server(workdir: Path, *, queue_size: int, timeout: float = 180) -> tuple[subprocess.Popen, str, dict]:
    port = free_port()
    dirs = {"gradio": workdir / "gradio", "tmp": workdir / "tmp"}
    for d in dirs.values():
        d.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "GRADIO_SERVER_PORT": str(port), "GRADIO_SERVER_NAME": "127.0.0.1",
           "GRADIO_TEMP_DIR": str(dirs["gradio"]), "TMPDIR": str(dirs["tmp"]), "HF_HUB_OFFLINE": "1",
           "TRANSFORMERS_OFFLINE": "1", "GRADIO_ANALYTICS_ENABLED": "False", "BERTVARIANTS_QUEUE_SIZE": str(queue_size),
           "TOKENIZERS_PARALLELISM": "false"}
    log = open(workdir / "server.log", "wb")
    proc = subprocess.Popen([sys.executable, "app.py"], cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    wait_until_served(proc, url, timeout=timeout, what=f"app (see {workdir / 'server.log'})")
    return proc, url, dirs


def wait_until_served(proc: subprocess.Popen, url: str, *, timeout: float, poll: float = 0.3,
                      what: str = "the server") -> None:
    """Return once ``url`` answers HTTP 200; RuntimeError when ``proc`` exits first, or after ``timeout`` s (then
    the server is terminated)."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(poll)
    proc.terminate()
    raise RuntimeError(f"{what} did not answer on {url} within {timeout:.0f} s")


def stop_server(proc: subprocess.Popen) -> None:
    """Ctrl-C, as an operator would: gradio's shutdown then deletes the uploads and cached outputs it tracks."""
    import signal

    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def make_clip(path: Path) -> Path:
    """A 2 s, 64×48 test-pattern MP4 (for endpoints that take a video)."""
    import imageio_ffmpeg

    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-loglevel", "error", "-y", "-f", "lavfi", "-i",
                    "testsrc=size=64x48:rate=8", "-t", "2", "-pix_fmt", "yuv420p", str(path)], check=True, timeout=60)
    return path


def request_kwargs(params: list[dict], clip: Path) -> dict:
    """The page's example inputs (API defaults); a small clip for file inputs."""
    from gradio_client import handle_file

    kwargs = {}
    for p in params:
        if p["component"] in FILE_COMPONENTS:
            f = handle_file(str(clip))
            kwargs[p["parameter_name"]] = {"video": f, "subtitles": None} if p["component"] == "Video" else f
        elif p["parameter_has_default"]:
            kwargs[p["parameter_name"]] = p["parameter_default"]
        elif p["component"] == "Textbox":
            kwargs[p["parameter_name"]] = EXAMPLE_TEXT
    return kwargs


def is_queue_full(exc: BaseException) -> bool:
    from gradio_client.exceptions import AppError

    text = str(exc).lower()
    return (type(exc).__name__ == "QueueError" or "queue is full" in text) and not isinstance(exc, AppError)


def endpoint_templates(probe, endpoints: list[str] | None, clip: Path) -> dict[str, dict]:
    """The request of each endpoint to load (asked for, else every model-backed one the app has):
    ``{name: kwargs}`` with the page's example inputs. ValueError names endpoints the app lacks."""
    api = probe.view_api(print_info=False, return_format="dict")["named_endpoints"]
    wanted = endpoints or [e for e in MODEL_BACKED if f"/{e}" in api]
    missing = [e for e in wanted if f"/{e}" not in api]
    if missing:
        raise ValueError(f"no such endpoint(s): {', '.join(missing)}; the app has {', '.join(sorted(api))}")
    return {e: request_kwargs(api[f"/{e}"]["parameters"], clip) for e in wanted}


def warm_up(probe, templates: dict[str, dict]) -> dict[str, str]:
    """One request per endpoint (loads every model once); ``{endpoint: why}`` for those that cannot serve."""
    unavailable: dict[str, str] = {}
    for e, kwargs in templates.items():
        try:
            probe.predict(api_name=f"/{e}", **kwargs)
        except Exception as exc:  # noqa: BLE001 - reported, not fatal: offline some models need training
            unavailable[e] = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
    return unavailable


def share_work(clients: list, n: int, work: Callable[[object, int], None]) -> None:
    """Items 0 … n − 1 shared by ``clients``: one thread per client, each taking the next item from one queue
    until none is left and calling ``work(client, item)`` (which guards any state it shares)."""
    todo = iter(range(n))
    lock = threading.Lock()

    def worker(c) -> None:
        while True:
            with lock:
                i = next(todo, None)
            if i is None:
                return
            work(c, i)

    with ThreadPoolExecutor(len(clients)) as ex:
        list(ex.map(worker, clients))


def warm_concurrently(pool_clients: list, live: list[str], templates: dict[str, dict]) -> None:
    """2 × clients requests at once, so that worker threads, their allocator arenas and per-session state
    exist before the baseline: the RSS check then measures growth per request, not first-use costs."""

    def warm(c, i: int) -> None:
        try:
            c.predict(api_name=f"/{live[i % len(live)]}", **templates[live[i % len(live)]])
        except Exception:  # noqa: BLE001 - warm-up only; the measured run counts failures
            pass

    share_work(pool_clients, 2 * len(pool_clients), warm)


def send_requests(pool_clients: list, live: list[str], templates: dict[str, dict], report: Report, *,
                  requests: int, request_timeout: float) -> dict[str, list[float]]:
    """``requests`` requests round-robin over ``live``, one thread per client; counts ok / queue-full /
    failed into ``report`` (and its wall time); returns the latencies in ms of each endpoint."""
    latencies: dict[str, list[float]] = defaultdict(list)
    lock = threading.Lock()

    def send(c, i: int) -> None:
        e = live[i % len(live)]
        t0 = time.perf_counter()
        try:
            c.submit(api_name=f"/{e}", **templates[e]).result(timeout=request_timeout)
        except Exception as exc:  # noqa: BLE001 - classified below
            with lock:
                if is_queue_full(exc):
                    report.queue_full += 1
                else:
                    report.failed += 1
                    if len(report.failures) < 10:
                        report.failures.append(f"{e}: {type(exc).__name__}: {str(exc)[:200]}")
            return
        dt = (time.perf_counter() - t0) * 1000
        with lock:
            report.ok += 1
            latencies[e].append(dt)

    t_run = time.perf_counter()
    share_work(pool_clients, requests, send)
    report.wall_s = round(time.perf_counter() - t_run, 2)
    return latencies


def record_latencies(report: Report, latencies: dict[str, list[float]]) -> None:
    """p50 / p95 / max overall and per endpoint, and the throughput, into ``report``."""
    every = [x for xs in latencies.values() for x in xs]
    report.p50_ms = _r(percentile(every, 50))
    report.p95_ms = _r(percentile(every, 95))
    report.max_ms = _r(max(every) if every else None)
    report.throughput_rps = round(report.ok / report.wall_s, 2) if report.wall_s else 0.0
    report.per_endpoint = {e: {"n": len(xs), "p50_ms": _r(percentile(xs, 50)), "p95_ms": _r(percentile(xs, 95))}
                           for e, xs in sorted(latencies.items())}


def load_session(proc: subprocess.Popen, url: str, dirs: dict, clip: Path, *, clients: int, requests: int,
                 endpoints: list[str] | None, request_timeout: float) -> Report:
    """Steps 2–5 against a running server: warm up, take the baseline, send the load, measure again."""
    from gradio_client import Client

    probe = Client(url, verbose=False, download_files=False)
    templates = endpoint_templates(probe, endpoints, clip)
    unavailable = warm_up(probe, templates)
    live = [e for e in templates if e not in unavailable]
    if not live:
        raise RuntimeError(f"no endpoint could serve a request: {unavailable}")
    pool_clients = [Client(url, verbose=False, download_files=False) for _ in range(clients)]
    warm_concurrently(pool_clients, live, templates)
    time.sleep(1.0)
    rss_warm = rss_bytes(proc.pid)
    files_warm = count_files(dirs["gradio"], dirs["tmp"])

    report = Report(clients=clients, requests=requests, endpoints=live, unavailable=unavailable)
    latencies = send_requests(pool_clients, live, templates, report, requests=requests,
                              request_timeout=request_timeout)
    for c in pool_clients:
        c.close()
    probe.close()
    record_latencies(report, latencies)
    time.sleep(1.0)  # let the server finish post-processing before measuring
    report.rss_warm_mb = round(rss_warm / 2**20, 1)
    report.rss_after_mb = round(rss_bytes(proc.pid) / 2**20, 1)
    report.rss_growth_pct = round(100 * (report.rss_after_mb - report.rss_warm_mb) / report.rss_warm_mb, 2)
    report.temp_files_warm = files_warm
    report.temp_files_after = count_files(dirs["gradio"], dirs["tmp"])
    return report


def checks_of(report: Report, *, requests: int, max_rss_growth: float) -> dict[str, bool]:
    """The pass / fail checks of a finished run (step 5)."""
    return {
        "no_failed_requests": report.failed == 0,
        "all_requests_answered": report.ok + report.queue_full + report.failed == requests,
        f"rss_growth_within_{max_rss_growth:g}pct": report.rss_growth_pct <= max_rss_growth,
        "no_temp_file_growth": report.temp_files_after <= report.temp_files_warm,
        "temp_files_cleaned_at_exit": report.temp_files_left_after_exit == 0,
    }


def run(*, clients: int = 32, requests: int = 500, endpoints: list[str] | None = None, queue_size: int = 64,
        max_rss_growth: float = 10.0, request_timeout: float = 300, workdir: Path | None = None) -> Report:
    """The whole load test (steps 1–5 of the module docstring); the work directory is removed when the
    run passes and none was given."""
    if clients < 1 or requests < 1:
        raise ValueError("--clients and --requests must be at least 1")
    own_dir = workdir is None
    workdir = Path(workdir or tempfile.mkdtemp(prefix="bv-loadtest-"))
    proc, url, dirs = start_server(workdir, queue_size=queue_size)
    try:
        clip = make_clip(workdir / "clip.mp4")
        report = load_session(proc, url, dirs, clip, clients=clients, requests=requests, endpoints=endpoints,
                              request_timeout=request_timeout)
    finally:
        stop_server(proc)
    # what the server leaves behind once it has exited: uploads, cached outputs, handler temp files
    report.temp_files_left_after_exit = count_files(dirs["gradio"], dirs["tmp"])
    report.checks = checks_of(report, requests=requests, max_rss_growth=max_rss_growth)
    report.passed = all(report.checks.values())
    if own_dir and report.passed:
        import shutil

        shutil.rmtree(workdir, ignore_errors=True)
    return report


def _r(x: float | None) -> float | None:
    return None if x is None else round(x, 1)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m evaluation.loadtest", description=__doc__.split("\n\n")[0])
    p.add_argument("--clients", type=int, default=32, help="concurrent gradio_client clients (default 32)")
    p.add_argument("--requests", type=int, default=500, help="total requests (default 500)")
    p.add_argument("--endpoints", help="comma-separated api names (default: every model-backed endpoint that serves)")
    p.add_argument("--queue-size", type=int, default=64, help="the app's queue max_size (default 64)")
    p.add_argument("--max-rss-growth", type=float, default=10.0, help="allowed RSS growth in percent (default 10)")
    p.add_argument("--timeout", type=float, default=300, help="per-request timeout in seconds")
    p.add_argument("--workdir", help="keep the server log, temp and upload dirs here")
    args = p.parse_args(argv)
    endpoints = [e.strip().lstrip("/") for e in args.endpoints.split(",") if e.strip()] if args.endpoints else None
    try:
        report = run(clients=args.clients, requests=args.requests, endpoints=endpoints, queue_size=args.queue_size,
                     max_rss_growth=args.max_rss_growth, request_timeout=args.timeout,
                     workdir=Path(args.workdir) if args.workdir else None)
    except (ValueError, RuntimeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"{report.ok} ok, {report.queue_full} queue-full, {report.failed} failed of {report.requests} requests "
          f"from {report.clients} clients in {report.wall_s} s; p50 {report.p50_ms} ms, p95 {report.p95_ms} ms; "
          f"RSS {report.rss_warm_mb} → {report.rss_after_mb} MB ({report.rss_growth_pct:+.1f}%); "
          f"temp files {report.temp_files_warm} → {report.temp_files_after}", file=sys.stderr)
    for e, why in report.unavailable.items():
        print(f"skipped {e}: {why}", file=sys.stderr)
    for f in report.failures:
        print(f"failure: {f}", file=sys.stderr)
    print(json.dumps(asdict(report), ensure_ascii=False))
    return 0 if report.passed else 1


if __name__ == "__main__":
    sys.exit(main())
