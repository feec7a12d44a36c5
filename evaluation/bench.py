"""Performance benchmark of the one inference path, against the tools a user would otherwise pick.

    python -m evaluation bench [--only stsb,sst2,flops,app,cold,rss] [--repeats 3] [--stsb PATH] [--sst2 PATH]

Every A/B pair runs in this one process, alternating (A, B, C, then B, C, A, ...), ``--repeats`` times,
and the median wall time of each side is compared, so a machine shared with other jobs slows both sides
alike. Results must agree before a time counts: the same embeddings / predictions (within a stated
tolerance). Sections:

- ``stsb``: embed every STS-B sentence (dev from the shared data, or ``--stsb PATH``) with
  sentence-transformers' ``encode`` (its default: batch 32, fp32) and with ``inference.encode`` in the
  default fp32 mode and the fast mode (bf16 autocast on CPUs with native bf16); Spearman of each.
- ``flops``: FLOPs of the STS-B encode counted from the model shape and the real token counts of every
  padded batch (executed and useful), the matmul peak measured now (fp32 and bf16 ``torch.matmul``),
  achieved GFLOP/s and the floor = useful FLOPs / peak.
- ``sst2``: ``pipeline("text-classification")`` at batch 1 and 32 versus ``inference.classify`` on SST-2
  dev with the same classifier (models/sst2-teacher when trained, else a seeded classifier head on
  MiniLM), predictions asserted identical.
- ``app``: the similarity handler served by Gradio with ``batch=True`` versus the same handler unbatched,
  16 concurrent ``gradio_client`` clients, requests/s and p50/p95 latency.
- ``cold``: ``python app.py`` until the first HTTP 200; ``rss``: the app's resident memory after one call
  of every endpoint it exposes (endpoints whose model is unavailable offline are listed, not fatal).

Prints a table, writes JSON + a plot (HTML via plotly, and a hand-written SVG) under ``--out``, and prints
the JSON object as the last line.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

REPO = Path(__file__).resolve().parent.parent
SECTIONS = ("stsb", "flops", "sst2", "app", "cold", "rss")
GOALS = {  # key -> (goal, higher is better)
    "stsb_encode_vs_sentence_transformers_fp32": (1.2, True),
    "stsb_encode_vs_sentence_transformers_fast": (2.0, True),
    "sst2_vs_pipeline_bs1": (3.0, True),
    "sst2_vs_pipeline_bs32": (1.5, True),
    "app_batching_speedup": (3.0, True),
    "cold_start_seconds": (8.0, False),
    "rss_mb_all_tabs": (3000.0, False),
}
SPEARMAN_TOLERANCE = 0.1  # points
FAST_PRECISION = "bf16"


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------------------------
# Timing: alternating A/B, median
# --------------------------------------------------------------------------------------------
def alternate(fns: dict[str, Callable[[], object]], repeats: int, cpu: dict | None = None) -> dict[str, list[float]]:
    """Wall times of each function, run in a rotating order ``repeats`` times (warm them up before).

    ``cpu``, when given, receives this process's CPU seconds per call too: on a machine shared with other
    jobs they vary far less than wall time (with one torch thread they equal the wall time on an idle core).
    """
    names = list(fns)
    times: dict[str, list[float]] = {n: [] for n in names}
    for r in range(repeats):
        order = names[r % len(names):] + names[:r % len(names)]
        for n in order:
            gc.collect()
            t0, c0 = time.perf_counter(), time.process_time()
            fns[n]()
            times[n].append(time.perf_counter() - t0)
            if cpu is not None:
                cpu.setdefault(n, []).append(time.process_time() - c0)
            log(f"  {n}: {times[n][-1]:.2f} s" + (f" (cpu {cpu[n][-1]:.2f} s)" if cpu is not None else ""))
    return times


def median(xs: list[float]) -> float:
    return float(statistics.median(xs))


# --------------------------------------------------------------------------------------------
# FLOPs of a BERT encoder, from its shape
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class EncoderShape:
    layers: int
    hidden: int
    intermediate: int

    @classmethod
    def of(cls, config) -> "EncoderShape":
        return cls(config.num_hidden_layers, config.hidden_size, config.intermediate_size)

    def flops(self, rows: int, length: int) -> float:
        """Multiply-adds × 2 of ``rows`` sequences of ``length`` tokens through the encoder layers.

        Per layer and token: Q, K, V and output projections 4·H² and the feed-forward 2·H·I weights
        (2 FLOPs each); attention scores QKᵀ and the weighted sum of V add 2·2·T·H per token.
        Embedding lookups, LayerNorm, softmax and pooling are O(T·H) and left out.
        """
        per_token = 2 * (4 * self.hidden ** 2 + 2 * self.hidden * self.intermediate) + 4 * length * self.hidden
        return float(self.layers * rows * length * per_token)


def matmul_peak(dtype_name: str, *, n: int = 2048, repeats: int = 5) -> tuple[float, float]:
    """GFLOP/s of one n×n×n torch.matmul in ``dtype``: best of ``repeats`` by wall time and by this
    process's CPU time (the latter is what one thread reaches on a core nobody else uses)."""
    import torch

    dtype = {"fp32": torch.float32, "bf16": torch.bfloat16}[dtype_name]
    a, b = torch.randn(n, n).to(dtype), torch.randn(n, n).to(dtype)
    a @ b
    wall = cpu = float("inf")
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        a @ b
        wall, cpu = min(wall, time.perf_counter() - t0), min(cpu, time.process_time() - c0)
    flop = 2 * n ** 3
    return flop / wall / 1e9, flop / max(cpu, 1e-9) * torch.get_num_threads() / 1e9  # cpu time sums threads


# --------------------------------------------------------------------------------------------
# Sections
# --------------------------------------------------------------------------------------------
def _stsb_data(path: str | None):
    from .tasks import benchmark, load

    ds = load(benchmark("stsb"), "test" if path else None, path)
    a = [e.text for e in ds.examples]
    b = [e.text_pair for e in ds.examples]
    gold = np.array([float(e.label) for e in ds.examples])
    return a, b, gold, str(ds.path)


def _spearman(emb: np.ndarray, n: int, gold: np.ndarray) -> float:
    from scipy.stats import spearmanr

    u, v = emb[:n], emb[n:]
    cos = (u * v).sum(1) / (np.linalg.norm(u, axis=1) * np.linalg.norm(v, axis=1))
    return float(100 * spearmanr(gold, cos).statistic)


def bench_stsb(args, out: dict, detail: dict) -> None:
    import torch
    from sentence_transformers import SentenceTransformer

    from bertvariants.inference import encode, prepare
    from bertvariants.registry import load_checkpoint, packaged_model_path

    a, b, gold, where = _stsb_data(args.stsb)
    texts = a + b
    path = str(packaged_model_path())
    st = SentenceTransformer(path, device="cpu")
    ours = load_checkpoint(path, "sentence-embedding", device="cpu")
    model, tok = ours.model, ours.tokenizer
    max_len = st.max_seq_length  # 256 for all-MiniLM-L6-v2: both sides truncate alike
    log(f"stsb: {len(texts)} sentences ({len(set(texts))} unique) from {where}; torch threads {torch.get_num_threads()}")

    fns = {
        "sentence-transformers fp32 (batch 32)": lambda: st.encode(texts, batch_size=32, convert_to_numpy=True),
        "ours fp32": lambda: encode(model, tok, texts, max_length=max_len).numpy(),
        f"ours fast ({FAST_PRECISION})": lambda: encode(model, tok, texts, max_length=max_len,
                                                         precision=FAST_PRECISION).numpy(),
    }
    embs = {k: f() for k, f in fns.items()}  # warm-up + results
    ref = embs["sentence-transformers fp32 (batch 32)"]
    fp32_diff = float(np.abs(embs["ours fp32"] - ref).max())
    assert fp32_diff < 1e-4, f"fp32 embeddings differ from sentence-transformers by {fp32_diff}"
    n = len(a)
    sp = {k: _spearman(e, n, gold) for k, e in embs.items()}
    cpu: dict[str, list[float]] = {}
    times = alternate(fns, args.repeats, cpu)
    med = {k: median(v) for k, v in times.items()}
    med_cpu = {k: median(v) for k, v in cpu.items()}
    st_key, fp_key, fast_key = list(fns)
    out["stsb_encode_vs_sentence_transformers_fp32"] = round(med[st_key] / med[fp_key], 3)
    out["stsb_encode_vs_sentence_transformers_fast"] = round(med[st_key] / med[fast_key], 3)
    out["stsb_cpu_time_ratio_fp32"] = round(med_cpu[st_key] / med_cpu[fp_key], 3)
    out["stsb_cpu_time_ratio_fast"] = round(med_cpu[st_key] / med_cpu[fast_key], 3)
    out["stsb_spearman_sentence_transformers"] = round(sp[st_key], 3)
    out["stsb_spearman_fp32"] = round(sp[fp_key], 3)
    out["stsb_spearman_fast"] = round(sp[fast_key], 3)
    out["stsb_spearman_within_tolerance"] = all(abs(sp[k] - sp[st_key]) <= SPEARMAN_TOLERANCE for k in sp)
    prep = prepare(tok, texts)
    padded = sum(r * t for r, t in prep.shapes())
    detail["stsb"] = {"data": where, "sentences": len(texts), "unique": len(set(texts)), "seconds": med,
                      "all_seconds": times, "cpu_seconds": med_cpu, "all_cpu_seconds": cpu, "spearman": sp, "fp32_max_abs_diff_vs_st": fp32_diff,
                      "useful_tokens": int(sum(prep.useful_tokens())), "padded_tokens": int(padded),
                      "st_padded_tokens": _st_padded_tokens(tok, texts, 32), "forward_passes": len(prep.shapes()),
                      "torch_threads": torch.get_num_threads()}
    detail["_stsb_runtime"] = (model, tok, texts, med[fp_key], med[fast_key])


def _st_padded_tokens(tok, texts: list[str], batch_size: int) -> int:
    """Token positions sentence-transformers executes: it sorts by character length, pads per batch of 32."""
    lengths = [len(x) for x in tok(texts, truncation=True, max_length=256)["input_ids"]]
    order = np.argsort([-len(t) for t in texts], kind="stable")
    return int(sum(max(lengths[i] for i in order[s:s + batch_size]) * len(order[s:s + batch_size])
                   for s in range(0, len(order), batch_size)))


def bench_flops(args, out: dict, detail: dict) -> None:
    from bertvariants.inference import prepare

    if "_stsb_runtime" not in detail:
        raise ValueError("the flops section needs the stsb section (it times the STS-B encode)")
    model, tok, texts, t_fp32, t_fast = detail["_stsb_runtime"]
    shape = EncoderShape.of(model.config)
    prep = prepare(tok, texts)
    ids = prep.features["input_ids"]
    executed = sum(shape.flops(r, t) for r, t in prep.shapes())
    useful_unique = sum(shape.flops(1, len(ids[prep.source[u]])) for batch in prep.plan.batches for u in batch)
    lengths = [len(x) for x in tok(texts, truncation=True, max_length=256)["input_ids"]]
    useful_all = sum(shape.flops(1, n) for n in lengths)  # every sentence, duplicates included
    measured = {p: matmul_peak(p) for p in ("fp32", "bf16")}
    peak = {p: max(w, c) for p, (w, c) in measured.items()}  # the machine's rate when nobody else runs
    stsb = detail["stsb"]
    cpu_fp32, cpu_fast = (stsb["cpu_seconds"][k] for k in ("ours fp32", f"ours fast ({FAST_PRECISION})"))
    out["achieved_gflops"] = round(executed / t_fp32 / 1e9, 1)
    out["achieved_gflops_fast"] = round(executed / t_fast / 1e9, 1)
    out["achieved_gflops_per_cpu_second"] = round(executed / cpu_fp32 / 1e9, 1)
    out["achieved_gflops_per_cpu_second_fast"] = round(executed / cpu_fast / 1e9, 1)
    out["floor_seconds"] = round(useful_unique / (peak["fp32"] * 1e9), 3)
    out["floor_seconds_fast"] = round(useful_unique / (peak["bf16"] * 1e9), 3)
    out["matmul_peak_gflops_fp32"] = round(peak["fp32"], 1)
    out["matmul_peak_gflops_bf16"] = round(peak["bf16"], 1)
    detail["flops"] = {"executed_gflop": executed / 1e9, "useful_gflop_unique": useful_unique / 1e9,
                       "useful_gflop_all_sentences": useful_all / 1e9, "shape": shape.__dict__,
                       "seconds_fp32": t_fp32, "seconds_fast": t_fast,
                       "matmul_gflops_wall_and_cpu": measured,
                       "fraction_of_peak_fp32_cpu": executed / cpu_fp32 / 1e9 / peak["fp32"],
                       "fraction_of_peak_fast_cpu": executed / cpu_fast / 1e9 / peak["bf16"]}


def _sst2_classifier(tmp: Path):
    """The trained SST-2 teacher when present, else a seeded classifier head on MiniLM saved to ``tmp``."""
    from bertvariants.registry import default_manifest, packaged_model_path

    teacher = default_manifest().models_dir / "sst2-teacher"
    if (teacher / "config.json").is_file():
        return str(teacher), "models/sst2-teacher (trained)"
    import torch
    from transformers import AutoTokenizer, BertForSequenceClassification

    path = packaged_model_path()
    torch.manual_seed(0)
    model = BertForSequenceClassification.from_pretrained(path, num_labels=2)  # head initialised from seed 0
    model.save_pretrained(tmp)
    AutoTokenizer.from_pretrained(path).save_pretrained(tmp)
    return str(tmp), "MiniLM + classifier head initialised with seed 0 (no trained teacher here)"


def bench_sst2(args, out: dict, detail: dict) -> None:
    from transformers import pipeline

    from bertvariants.inference import classify
    from bertvariants.registry import load_checkpoint

    from .tasks import benchmark, load

    ds = load(benchmark("sst2"), None, args.sst2)
    texts = [e.text for e in ds.examples]
    with tempfile.TemporaryDirectory(prefix="bv-bench-") as tmp:
        location, what = _sst2_classifier(Path(tmp))
        ours = load_checkpoint(location, "sequence-classification", device="cpu")
        pipe = pipeline("text-classification", model=location, device="cpu")
        log(f"sst2: {len(texts)} sentences, classifier: {what}")
        label_id = {v: int(k) for k, v in pipe.model.config.id2label.items()}

        def run_pipe(bs: int):
            return lambda: [label_id[r["label"]] for r in pipe(texts, batch_size=bs, truncation=True)]

        fns = {"pipeline batch 1": run_pipe(1), "pipeline batch 32": run_pipe(32),
               "ours classify": lambda: classify(ours.model, ours.tokenizer, texts).argmax(-1).tolist(),
               f"ours classify fast ({FAST_PRECISION})": lambda: classify(
                   ours.model, ours.tokenizer, texts, precision=FAST_PRECISION).argmax(-1).tolist()}
        preds = {k: f() for k, f in fns.items()}
        agree = {k: float(np.mean(np.array(p) == np.array(preds["pipeline batch 1"]))) for k, p in preds.items()}
        exact = [k for k in fns if "fast" not in k]
        assert all(agree[k] == 1.0 for k in exact), f"fp32 predictions differ from the pipeline's: {agree}"
        cpu: dict[str, list[float]] = {}
        times = alternate(fns, args.repeats, cpu)
    med = {k: median(v) for k, v in times.items()}
    med_cpu = {k: median(v) for k, v in cpu.items()}
    out["sst2_vs_pipeline_bs1"] = round(med["pipeline batch 1"] / med["ours classify"], 3)
    out["sst2_vs_pipeline_bs32"] = round(med["pipeline batch 32"] / med["ours classify"], 3)
    fast = f"ours classify fast ({FAST_PRECISION})"
    out["sst2_vs_pipeline_bs1_fast"] = round(med["pipeline batch 1"] / med[fast], 3)
    out["sst2_vs_pipeline_bs32_fast"] = round(med["pipeline batch 32"] / med[fast], 3)
    out["sst2_fast_prediction_agreement"] = round(agree[fast], 4)
    out["sst2_cpu_time_ratio_bs1"] = round(med_cpu["pipeline batch 1"] / med_cpu["ours classify"], 3)
    out["sst2_cpu_time_ratio_bs32"] = round(med_cpu["pipeline batch 32"] / med_cpu["ours classify"], 3)
    labels = np.array([int(e.label) for e in ds.examples])
    detail["sst2"] = {"classifier": what, "sentences": len(texts), "seconds": med, "all_seconds": times,
                      "cpu_seconds": med_cpu,
                      "sentences_per_second": {k: len(texts) / v for k, v in med.items()},
                      "agreement_with_pipeline": agree, "accuracy": float(np.mean(np.array(preds["ours classify"]) == labels))}


def _pairs_for_clients(n: int, path: str | None) -> list[tuple[str, str]]:
    try:
        a, b, _, _ = _stsb_data(path)
        return list(zip(a, b))[:n]
    except ValueError:  # no shared data: distinct synthetic pairs (dedup must not help either side)
        return [(f"A sentence about topic number {i}.", f"Another sentence, this one about item {i}.") for i in range(n)]


def bench_app(args, out: dict, detail: dict) -> None:
    """Same handler, batch=True (the app's setting) vs one request per call, 16 concurrent clients."""
    import subprocess
    import urllib.request

    from gradio_client import Client

    from bertvariants.ui.sentence_bert import _model as load_similarity_model
    from bertvariants.ui.sentence_bert import similarity_batch

    from .loadtest import free_port, percentile

    # the handler alone (no HTTP): one call with the clients' 16 pairs vs 16 calls of one pair
    load_similarity_model()
    group = _pairs_for_clients(args.clients, args.stsb)
    firsts, seconds = [p[0] for p in group], [p[1] for p in group]
    fns = {"handler, one call of 16": lambda: similarity_batch(firsts, seconds),
           "handler, 16 calls of 1": lambda: [similarity_batch([x], [y]) for x, y in group]}
    for f in fns.values():
        f()
    handler = {k: median(v) for k, v in alternate(fns, max(3, args.repeats)).items()}
    out["app_handler_batching_speedup"] = round(handler["handler, 16 calls of 1"] / handler["handler, one call of 16"], 3)

    port = free_port()
    cmd = [sys.executable, "-m", "bertvariants.ui.bench_app", str(port), "--max-batch-size",
           str(args.max_batch_size)] + (["--threads", str(args.threads)] if args.threads else [])
    env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    server = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/"
    t0 = time.monotonic()
    while True:
        if server.poll() is not None:
            raise RuntimeError(f"the similarity server exited with {server.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    break
        except OSError:
            if time.monotonic() - t0 > 300:
                server.kill()
                raise RuntimeError("the similarity server did not start within 300 s") from None
            time.sleep(0.3)
    pairs = _pairs_for_clients(args.requests, args.stsb)
    clients = [Client(url, verbose=False, download_files=False) for _ in range(args.clients)]
    try:
        results: dict[str, dict] = {}
        for variant in ["unbatched", "batched", "noop"] * args.app_repeats:
            lat: list[float] = []
            scores: dict[int, float] = {}
            lock = threading.Lock()
            todo = iter(range(len(pairs)))

            def worker(c: Client) -> None:
                while True:
                    with lock:
                        i = next(todo, None)
                    if i is None:
                        return
                    t0 = time.perf_counter()
                    r = c.submit(*pairs[i], api_name=f"/{variant}").result(timeout=args.endpoint_timeout)
                    with lock:
                        lat.append(time.perf_counter() - t0)
                        scores[i] = float(r)

            t0 = time.perf_counter()
            with ThreadPoolExecutor(len(clients)) as ex:
                list(ex.map(worker, clients))
            wall = time.perf_counter() - t0
            rec = results.setdefault(variant, {"rps": [], "p50_ms": [], "p95_ms": [], "scores": scores})
            rec["rps"].append(len(pairs) / wall)
            rec["p50_ms"].append(1000 * percentile(lat, 50))
            rec["p95_ms"].append(1000 * percentile(lat, 95))
            log(f"  app {variant}: {len(pairs) / wall:.1f} req/s, p50 {rec['p50_ms'][-1]:.0f} ms, "
                f"p95 {rec['p95_ms'][-1]:.0f} ms")
    finally:
        for c in clients:
            c.close()
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
    detail["app"] = {"handler_seconds": handler, "clients": args.clients, "requests": len(pairs), "max_batch_size": args.max_batch_size,
                     "summary": summary, "max_score_diff": diff,
                     "runs": {v: {k: r[k] for k in ("rps", "p50_ms", "p95_ms")} for v, r in results.items()}}


def bench_cold_and_rss(args, out: dict, detail: dict, *, cold: bool, rss: bool) -> None:
    """``python app.py`` to the first HTTP 200; then every endpoint once and the server's resident memory."""
    from gradio_client import Client

    from .loadtest import make_clip, request_kwargs, rss_bytes, start_server, stop_server

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
                client = Client(url, verbose=False, download_files=False)
                api = client.view_api(print_info=False, return_format="dict")["named_endpoints"]
                ran, failed = [], {}
                for name, info in sorted(api.items()):
                    t1 = time.perf_counter()
                    try:
                        client.submit(api_name=name, **request_kwargs(info["parameters"], clip)).result(
                            timeout=args.endpoint_timeout)
                        ran.append(name)
                    except Exception as exc:  # noqa: BLE001 - offline some models need training: reported
                        failed[name] = (str(exc).splitlines() or [type(exc).__name__])[0][:160]
                    log(f"  {name}: {'ok' if name in ran else 'unavailable/failed'} ({time.perf_counter() - t1:.1f} s)")
                client.close()
                time.sleep(1.0)
                out["rss_mb_all_tabs"] = round(rss_bytes(proc.pid) / 2**20, 1)
                out["rss_endpoints_ran"] = len(ran)
                out["rss_endpoints_total"] = len(api)
                detail["rss"] = {"ran": ran, "unavailable_or_failed": failed}
        finally:
            stop_server(proc)


# --------------------------------------------------------------------------------------------
# Report: table, JSON, plot
# --------------------------------------------------------------------------------------------
def table(out: dict) -> str:
    rows = [("metric", "value", "goal", "met")]
    for key, value in out.items():
        goal = GOALS.get(key)
        if goal is None:
            rows.append((key, str(value), "", ""))
            continue
        target, higher = goal
        met = value >= target if higher else value <= target
        rows.append((key, str(value), ("≥ " if higher else "≤ ") + f"{target:g}", "yes" if met else "NO"))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)) for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


RATIO_KEYS = ("stsb_encode_vs_sentence_transformers_fp32", "stsb_encode_vs_sentence_transformers_fast",
              "sst2_vs_pipeline_bs1", "sst2_vs_pipeline_bs32", "app_batching_speedup")


CPU_KEYS = {  # ratio key -> the same ratio taken on this process's CPU seconds (stable on a shared machine)
    "stsb_encode_vs_sentence_transformers_fp32": "stsb_cpu_time_ratio_fp32",
    "stsb_encode_vs_sentence_transformers_fast": "stsb_cpu_time_ratio_fast",
    "sst2_vs_pipeline_bs1": "sst2_cpu_time_ratio_bs1",
    "sst2_vs_pipeline_bs32": "sst2_cpu_time_ratio_bs32",
    "app_batching_speedup": "app_handler_batching_speedup",
}


def svg_chart(out: dict) -> str:
    """A hand-written SVG bar chart of the speed-ups against their goals (renders in a README).

    Each key gets two bars: the wall-time ratio (dark) and the CPU-time ratio (light; for the app, the
    handler alone without HTTP). Colour: goal met or not."""
    keys = [k for k in RATIO_KEYS if k in out]
    width, bar_h, gap, left, top = 760, 16, 18, 310, 44
    height = top + len(keys) * (2 * bar_h + gap) + 34
    values = [out[k] for k in keys] + [out.get(CPU_KEYS[k], 0) for k in keys] + [GOALS[k][0] for k in keys]
    vmax = max(values + [1.0]) * 1.12
    x = lambda v: left + (width - left - 60) * v / vmax  # noqa: E731
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" '
             'font-size="12">', '<rect width="100%" height="100%" fill="white"/>',
             '<text x="10" y="20" font-size="14" font-weight="bold">Speed-up of the batched inference path '
             '(× faster; medians of alternating repeats, one run)</text>',
             f'<line x1="{x(1):.1f}" y1="{top - 8}" x2="{x(1):.1f}" y2="{height - 28}" stroke="#999" '
             'stroke-dasharray="3,3"/>']
    for i, k in enumerate(keys):
        y = top + i * (2 * bar_h + gap)
        goal = GOALS[k][0]
        parts.append(f'<text x="{left - 8}" y="{y + bar_h + 4}" text-anchor="end">{k}</text>')
        for j, (value, light) in enumerate([(out[k], False), (out.get(CPU_KEYS[k]), True)]):
            if value is None:
                continue
            yy = y + j * bar_h
            color = ("#8fd3c9" if light else "#2a9d8f") if value >= goal else ("#f4b8a6" if light else "#e76f51")
            parts.append(f'<rect x="{left}" y="{yy}" width="{max(x(value) - left, 1):.1f}" height="{bar_h - 2}" '
                         f'fill="{color}"/>')
            parts.append(f'<text x="{x(value) + 4:.1f}" y="{yy + bar_h - 5}">{value:.2f}×'
                         f'{" (cpu)" if light else " (wall)"}</text>')
        parts.append(f'<line x1="{x(goal):.1f}" y1="{y - 3}" x2="{x(goal):.1f}" y2="{y + 2 * bar_h + 1}" '
                     'stroke="#222" stroke-width="2"/>')
    parts.append(f'<text x="10" y="{height - 10}" fill="#555">dark: wall-time ratio · light: CPU-time ratio (app: the '
                 'handler alone) · black tick: goal · dashed: 1× · green: goal met</text></svg>')
    return "\n".join(parts)


def write_plots(out: dict, directory: Path) -> list[Path]:
    import plotly.graph_objects as go

    directory.mkdir(parents=True, exist_ok=True)
    keys = [k for k in RATIO_KEYS if k in out]
    written = []
    if keys:
        fig = go.Figure([go.Bar(x=[out[k] for k in keys], y=keys, orientation="h", name="measured",
                                text=[f"{out[k]:.2f}×" for k in keys]),
                         go.Scatter(x=[GOALS[k][0] for k in keys], y=keys, mode="markers", name="goal",
                                    marker=dict(symbol="line-ns-open", size=24, line=dict(width=3)))])
        fig.update_layout(title="Speed-up of the batched inference path (one run, medians)",
                          xaxis_title="× faster than the reference", height=360, margin=dict(l=320))
        html = directory / "bench.html"
        fig.write_html(html, include_plotlyjs="cdn")
        svg = directory / "bench.svg"
        svg.write_text(svg_chart(out), encoding="utf-8")
        written += [html, svg]
    return written


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m evaluation bench", description=__doc__.split("\n\n")[0])
    p.add_argument("--only", help=f"comma-separated sections (default all): {','.join(SECTIONS)}")
    p.add_argument("--repeats", type=int, default=3, help="alternating repeats per A/B pair (median; default 3)")
    p.add_argument("--stsb", help="STS-B file (test split; default: dev from the shared data)")
    p.add_argument("--sst2", help="SST-2 file (default: dev from the shared data)")
    p.add_argument("--clients", type=int, default=16, help="concurrent gradio_client clients (default 16)")
    p.add_argument("--requests", type=int, default=256, help="requests per app variant (default 256)")
    p.add_argument("--app-repeats", type=int, default=1, help="alternating repeats of the app pair (default 1)")
    p.add_argument("--max-batch-size", type=int, default=32, help="max_batch_size of the batched endpoint")
    p.add_argument("--endpoint-timeout", type=float, default=300, help="seconds per endpoint in the rss section")
    p.add_argument("--threads", type=int, default=0,
                   help="torch threads, the same for both sides (default 0 = torch's default, one per core, what a "
                        "user gets; on a CPU shared with other jobs pass 1: a multi-threaded OpenMP region stalls "
                        "whenever one of its threads is descheduled)")
    p.add_argument("--out", default=str(REPO / "artifacts" / "bench"), help="directory for bench.json and plots")
    args = p.parse_args(argv)
    only = [s.strip() for s in (args.only or ",".join(SECTIONS)).split(",") if s.strip()]
    unknown = [s for s in only if s not in SECTIONS]
    if unknown:
        p.error(f"unknown section(s) {', '.join(unknown)}; known: {', '.join(SECTIONS)}")
    if args.repeats < 1 or args.clients < 1 or args.requests < 1:
        p.error("--repeats, --clients and --requests must be ≥ 1")
    if "flops" in only and "stsb" not in only:
        only.insert(0, "stsb")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    out: dict = {}
    detail: dict = {"torch": torch.__version__, "threads": torch.get_num_threads(), "cpu_count": os.cpu_count(),
                    "load_average_start": os.getloadavg(), "sections": only, "repeats": args.repeats}
    t_start = time.perf_counter()
    for section in only:
        log(f"== {section}")
        if section == "stsb":
            bench_stsb(args, out, detail)
        elif section == "flops":
            bench_flops(args, out, detail)
        elif section == "sst2":
            bench_sst2(args, out, detail)
        elif section == "app":
            bench_app(args, out, detail)
        elif section == "cold" and "rss" in only:
            bench_cold_and_rss(args, out, detail, cold=True, rss=True)
        elif section == "cold" or (section == "rss" and "cold" not in only):
            bench_cold_and_rss(args, out, detail, cold=section == "cold", rss=section == "rss")
    detail.pop("_stsb_runtime", None)
    detail["load_average_end"] = os.getloadavg()
    detail["wall_seconds"] = time.perf_counter() - t_start
    directory = Path(args.out)
    plots = write_plots(out, directory)
    (directory / "bench.json").write_text(json.dumps({"summary": out, "detail": detail}, indent=2, default=str),
                                          encoding="utf-8")
    print(table(out))
    print(f"(details: {directory / 'bench.json'}; plots: {', '.join(str(p) for p in plots) or 'none'})")
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
