"""The ``stsb`` and ``flops`` sections: the STS-B encode against sentence-transformers, and its FLOPs.

- ``stsb``: embed every STS-B sentence with sentence-transformers' ``encode`` (its default: batch 32,
  fp32) and with ``inference.encode`` in the default fp32 mode and the fast mode; Spearman of each.
- ``flops``: FLOPs of that encode counted from the model shape and the real token counts of every padded
  batch (executed and useful), the matmul peak measured now, achieved GFLOP/s and the floor.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from ..tasks import benchmark, load
from .settings import FAST_PRECISION, BenchSettings
from .timing import alternate, log, medians

SPEARMAN_TOLERANCE = 0.1  # points: our fp32 path against sentence-transformers (the same maths)
FAST_SPEARMAN_TOLERANCE = 0.5  # points: the fast path (bf16 / int8) against our fp32 (issue 26)
ST_KEY = "sentence-transformers fp32 (batch 32)"
FP32_KEY = "ours fp32"
FAST_KEY = f"ours fast ({FAST_PRECISION})"


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
# STS-B data
# --------------------------------------------------------------------------------------------
class StsbData(NamedTuple):
    firsts: list[str]
    seconds: list[str]
    gold: np.ndarray  # (N,) similarity labels
    where: str  # the file read


def stsb_data(path: str | None) -> StsbData:
    """STS-B pairs: ``path`` (its test split) or dev from the shared data (ValueError when absent)."""
    ds = load(benchmark("stsb"), "test" if path else None, path)
    a = [e.text for e in ds.examples]
    b = [e.text_pair for e in ds.examples]
    gold = np.array([float(e.label) for e in ds.examples])
    return StsbData(a, b, gold, str(ds.path))


def spearman_of_embeddings(emb: np.ndarray, n: int, gold: np.ndarray) -> float:
    """100 × Spearman of gold against cos(emb[i], emb[n + i]); ``emb`` (2N, H) holds firsts then seconds."""
    from scipy.stats import spearmanr

    u, v = emb[:n], emb[n:]
    cos = (u * v).sum(1) / (np.linalg.norm(u, axis=1) * np.linalg.norm(v, axis=1))
    return float(100 * spearmanr(gold, cos).statistic)


def st_padded_tokens(tok, texts: list[str], batch_size: int) -> int:
    """Token positions sentence-transformers executes: it sorts by character length, pads per batch of 32."""
    lengths = [len(x) for x in tok(texts, truncation=True, max_length=256)["input_ids"]]
    order = np.argsort([-len(t) for t in texts], kind="stable")
    return int(sum(max(lengths[i] for i in order[s:s + batch_size]) * len(order[s:s + batch_size])
                   for s in range(0, len(order), batch_size)))


# --------------------------------------------------------------------------------------------
# Sections
# --------------------------------------------------------------------------------------------
class StsbRun(NamedTuple):
    """What the flops section needs from the stsb section: the encoder, its inputs and our median times."""

    model: Any
    tokenizer: Any
    texts: list[str]
    seconds_fp32: float
    seconds_fast: float


def bench_stsb(settings: BenchSettings, out: dict, detail: dict) -> StsbRun:
    import torch
    from sentence_transformers import SentenceTransformer

    from bertvariants.inference import encode, fast_path, prepare
    from bertvariants.serving import load_checkpoint, packaged_model_path

    a, b, gold, where = stsb_data(settings.stsb)
    texts = a + b
    path = str(packaged_model_path())
    st = SentenceTransformer(path, device="cpu")
    ours = load_checkpoint(path, "sentence-embedding", device="cpu")
    model, tok = ours.model, ours.tokenizer
    max_len = st.max_seq_length  # 256 for all-MiniLM-L6-v2: both sides truncate alike
    log(f"stsb: {len(texts)} sentences ({len(set(texts))} unique) from {where}; "
        f"torch threads {torch.get_num_threads()}")

    fns = {
        ST_KEY: lambda: st.encode(texts, batch_size=32, convert_to_numpy=True),
        FP32_KEY: lambda: encode(model, tok, texts, max_length=max_len).numpy(),
        FAST_KEY: lambda: encode(model, tok, texts, max_length=max_len, precision=FAST_PRECISION).numpy(),
    }
    embs = {k: f() for k, f in fns.items()}  # warm-up + results
    fp32_diff = float(np.abs(embs[FP32_KEY] - embs[ST_KEY]).max())
    assert fp32_diff < 1e-4, f"fp32 embeddings differ from sentence-transformers by {fp32_diff}"
    sp = {k: spearman_of_embeddings(e, len(a), gold) for k, e in embs.items()}
    cpu: dict[str, list[float]] = {}
    times = alternate(fns, settings.repeats, cpu)
    med, med_cpu = medians(times), medians(cpu)
    out["stsb_encode_vs_sentence_transformers_fp32"] = round(med[ST_KEY] / med[FP32_KEY], 3)
    out["stsb_encode_vs_sentence_transformers_fast"] = round(med[ST_KEY] / med[FAST_KEY], 3)
    out["stsb_cpu_time_ratio_fp32"] = round(med_cpu[ST_KEY] / med_cpu[FP32_KEY], 3)
    out["stsb_cpu_time_ratio_fast"] = round(med_cpu[ST_KEY] / med_cpu[FAST_KEY], 3)
    out["stsb_spearman_sentence_transformers"] = round(sp[ST_KEY], 3)
    out["stsb_spearman_fp32"] = round(sp[FP32_KEY], 3)
    out["stsb_spearman_fast"] = round(sp[FAST_KEY], 3)
    out["stsb_spearman_within_tolerance"] = (abs(sp[FP32_KEY] - sp[ST_KEY]) <= SPEARMAN_TOLERANCE
                                             and abs(sp[FAST_KEY] - sp[FP32_KEY]) <= FAST_SPEARMAN_TOLERANCE)
    out["stsb_fast_path"] = fast_path(model).precision
    detail["fast_path_stsb"] = fast_path(model).describe()
    prep = prepare(tok, texts)
    padded = sum(r * t for r, t in prep.shapes())
    detail["stsb"] = {"data": where, "sentences": len(texts), "unique": len(set(texts)), "seconds": med,
                      "all_seconds": times, "cpu_seconds": med_cpu, "all_cpu_seconds": cpu, "spearman": sp,
                      "fp32_max_abs_diff_vs_st": fp32_diff,
                      "useful_tokens": int(sum(prep.useful_tokens())), "padded_tokens": int(padded),
                      "st_padded_tokens": st_padded_tokens(tok, texts, 32), "forward_passes": len(prep.shapes()),
                      "torch_threads": torch.get_num_threads()}
    return StsbRun(model, tok, texts, med[FP32_KEY], med[FAST_KEY])


def bench_flops(settings: BenchSettings, out: dict, detail: dict, stsb: StsbRun | None) -> None:
    """FLOPs of the STS-B encode the stsb section timed (``stsb``), against the matmul peak measured now."""
    from bertvariants.inference import prepare

    if stsb is None:
        raise ValueError("the flops section needs the stsb section (it times the STS-B encode)")
    model, tok, texts, t_fp32, t_fast = stsb
    shape = EncoderShape.of(model.config)
    prep = prepare(tok, texts)
    ids = prep.features["input_ids"]
    executed = sum(shape.flops(r, t) for r, t in prep.shapes())
    useful_unique = sum(shape.flops(1, len(ids[prep.source[u]])) for batch in prep.plan.batches for u in batch)
    lengths = [len(x) for x in tok(texts, truncation=True, max_length=256)["input_ids"]]
    useful_all = sum(shape.flops(1, n) for n in lengths)  # every sentence, duplicates included
    measured = {p: matmul_peak(p) for p in ("fp32", "bf16")}
    peak = {p: max(w, c) for p, (w, c) in measured.items()}  # the machine's rate when nobody else runs
    cpu_fp32, cpu_fast = (detail["stsb"]["cpu_seconds"][k] for k in (FP32_KEY, FAST_KEY))
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
