"""Training-step benchmark: the variant lab's step against a plain PyTorch step, measured in one run.

    python -m bertvariants.train bench [--only qa,mlm,rtd,distill] [--batch 32] [--tokens 256] [--repeats 5]
                                       [--loss-steps N] [--threads T] [--compile]
                                       [--precision auto|fp32]

For each recipe step (extractive QA, masked LM, ELECTRA's replaced-token detection, sentence distillation) three
sides run on the same seeded batches of the same shape, starting from the packaged MiniLM:

- **plain**: what one would write first — the transformers model with every weight trainable, its own loss
  (the masked-LM / generator head projects every position onto the 30,522-word vocabulary), ``torch.optim.AdamW``
  with its defaults, bf16 autocast where the CPU multiplies bf16 natively (fp32 otherwise), as the lab;
- **exact**: the lab's optimizer (:func:`bertvariants.lab_step.adamw`: fused AdamW) and loss functions
  (heads at the labelled positions only, :func:`bertvariants.common.sparse_mlm_loss`) on the same full model —
  the same maths as plain, so its loss after ``--loss-steps`` steps matches plain's within noise;
- **lab**: what the recipe trains by default — LoRA r = 16 adapters (the distillation student r = 32) + the
  task head, frozen word embeddings, the generator frozen (ELECTRA with ``generator=``): no weight gradients for
  what does not train; and no dropout on the attention probabilities (``TrainConfig.attention_dropout`` = 0),
  whose B×heads×T×T Bernoulli mask and unfused softmax path took most of a CPU step (hidden dropout stays).

The sides alternate (plain, exact, lab, then again) ``--repeats`` times after one warm-up step each, so a
loaded machine slows all alike; each reports the median seconds per step, tokens/s, and the plain model's
FLOPs per step (6 × parameters × tokens for the matmuls + attention, the same count for all three) divided by
its time: the GFLOP/s at which it delivers the plain step's work, and that as a share of the bf16 (or fp32)
matmul peak measured here at the start. Prints one JSON object last; ``python -m evaluation bench --only train``
calls :func:`run` in its own process and merges the result. The lab's side is built from
:mod:`bertvariants.lab_step`, the same functions the recipes train with, so neither the recipes nor this bench
reaches across a layer.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch

from bertvariants.common import IGNORE_INDEX, pool, sparse_mlm_loss
from bertvariants.distillation import init_student_from_teacher
from bertvariants.electra import discriminator_from_bert, sample_replacements
from bertvariants.inference import cpu_has_native_bf16
from bertvariants.lab_step import (
    LAB_ATTENTION_DROPOUT,
    LAB_WEIGHT_DECAY,
    adamw,
    set_attention_dropout,
    trainable_parameters,
    with_lora,
)
from bertvariants.serving.manifest import packaged_model_path

from .encode import matmul_peak

KINDS = ("qa", "mlm", "rtd", "distill")
SIDES = ("plain", "exact", "lab")


@dataclass
class Side:
    """One way to train: the module holding what trains, its optimizer, and ``loss(batch) -> tensor``."""

    model: torch.nn.Module
    optim: torch.optim.Optimizer
    loss: Callable[[dict], torch.Tensor]

    def step(self, batch: dict, autocast: bool) -> float:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
            loss = self.loss(batch)
        loss.backward()
        params = [p for g in self.optim.param_groups for p in g["params"]]
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        self.optim.step()
        self.optim.zero_grad(set_to_none=True)
        return float(loss.detach())


def _trainable(model) -> list:
    return [p for p in model.parameters() if p.requires_grad]


def _plain_optim(model, lr: float):
    return torch.optim.AdamW(_trainable(model), lr=lr)  # the defaults: the per-tensor loop on a CPU


def _lab_optim(model, lr: float):
    return adamw(_trainable(model), lr=lr, weight_decay=LAB_WEIGHT_DECAY)  # the lab's (no schedule: constant lr)


def _freeze_embeddings(model) -> None:
    model.get_input_embeddings().weight.requires_grad_(False)


def _lora(model, kind: str, rank: int = 16):
    _freeze_embeddings(model)
    return with_lora(model, kind, rank=rank, dropout=0.0)


def _batch(kind: str, *, batch: int, tokens: int, vocab: int, seed: int) -> dict:
    """Seeded random token ids (no padding: every side does the same work) with the kind's labels."""
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(1000, vocab, (batch, tokens), generator=g)
    out = {"input_ids": ids, "attention_mask": torch.ones_like(ids)}
    if kind == "qa":
        start = torch.randint(1, tokens - 8, (batch,), generator=g)
        out |= {"start_positions": start, "end_positions": start + torch.randint(0, 8, (batch,), generator=g)}
    if kind in ("mlm", "rtd"):
        selected = torch.rand(batch, tokens, generator=g) < 0.15
        out["labels"] = torch.where(selected, ids, torch.full_like(ids, IGNORE_INDEX))
        out["masked_ids"] = torch.where(selected, torch.full_like(ids, 103), ids)  # [MASK]
    return out


def _qa(base: str, side: str, lr: float) -> Side:
    from transformers import BertForQuestionAnswering

    model = BertForQuestionAnswering.from_pretrained(base)
    if side == "lab":
        model = _lora(model, "question-answering")

    def loss(b):
        return model(input_ids=b["input_ids"], attention_mask=b["attention_mask"],
                     start_positions=b["start_positions"], end_positions=b["end_positions"]).loss

    return Side(model, _plain_optim(model, lr) if side == "plain" else _lab_optim(model, lr), loss)


def _mlm(base: str, side: str, lr: float) -> Side:
    from transformers import BertForMaskedLM

    model = BertForMaskedLM.from_pretrained(base)
    if side == "plain":
        def loss(b):
            return model(input_ids=b["masked_ids"], attention_mask=b["attention_mask"], labels=b["labels"]).loss

        return Side(model, _plain_optim(model, lr), loss)
    inner = model
    if side == "lab":
        model = _lora(model, "masked-lm")

    def sparse(b):
        hidden = inner.bert(input_ids=b["masked_ids"], attention_mask=b["attention_mask"]).last_hidden_state
        return sparse_mlm_loss(hidden, b["labels"], inner.cls)

    return Side(model, _lab_optim(model, lr), sparse)


def _rtd(base: str, side: str, lr: float) -> Side:
    """Generator (the MiniLM masked LM) fills the masks with samples; the discriminator flags replacements.
    plain/exact train both (ELECTRA §2's joint loss); the lab's default freezes the generator (``generator=``)."""
    from transformers import BertForMaskedLM, BertModel

    gen = BertForMaskedLM.from_pretrained(base)
    disc = discriminator_from_bert(BertModel.from_pretrained(base, add_pooling_layer=False))
    rng = torch.Generator().manual_seed(0)

    def step_loss(gen_logits_fn, b):
        selected = b["labels"] != IGNORE_INDEX
        gen_loss, logits = gen_logits_fn(b, selected)
        repl = sample_replacements(logits, b["input_ids"], selected, generator=rng)  # logits (M, V)
        d = disc(input_ids=repl.input_ids, attention_mask=b["attention_mask"]).logits
        disc_loss = torch.nn.functional.binary_cross_entropy_with_logits(d.float(), repl.is_replaced.float())
        return gen_loss + 50.0 * disc_loss

    if side == "plain":
        def full(b, selected):
            out = gen(input_ids=b["masked_ids"], attention_mask=b["attention_mask"], labels=b["labels"])
            return out.loss, out.logits[selected]

        pair = torch.nn.ModuleDict({"gen": gen, "disc": disc})
        return Side(pair, _plain_optim(pair, lr), lambda b: step_loss(full, b))
    if side == "exact":
        def sparse(b, selected):
            hidden = gen.bert(input_ids=b["masked_ids"], attention_mask=b["attention_mask"]).last_hidden_state
            logits = gen.cls(hidden[selected])
            return torch.nn.functional.cross_entropy(logits.float(), b["labels"][selected]), logits

        pair = torch.nn.ModuleDict({"gen": gen, "disc": disc})
        return Side(pair, _lab_optim(pair, lr), lambda b: step_loss(sparse, b))
    gen.requires_grad_(False).eval()
    disc = _lora(disc, "electra-discriminator")

    def frozen(b, selected):
        with torch.no_grad():
            hidden = gen.bert(input_ids=b["masked_ids"], attention_mask=b["attention_mask"]).last_hidden_state
            return torch.zeros(()), gen.cls(hidden[selected])

    return Side(disc, _lab_optim(disc, lr), lambda b: step_loss(frozen, b))


def _distill(base: str, side: str, lr: float) -> Side:
    """DistilBERT §3 student (MiniLM layers 1, 3, 5) matching the teacher's mean-pooled sentence embedding.
    Every side runs the frozen teacher's forward each step (the recipe runs it once per sentence, before training)."""
    from transformers import BertModel

    teacher = BertModel.from_pretrained(base).eval()
    student = init_student_from_teacher(teacher, layers=[1, 3, 5])
    if side == "lab":
        student = _lora(student, "sentence-embedding", rank=32)

    def loss(b):
        with torch.no_grad():  # the recipe computes these once up front: the same forward, paid before step 1
            t = pool(teacher(input_ids=b["input_ids"], attention_mask=b["attention_mask"]).last_hidden_state.float(),
                     b["attention_mask"])
        s = student(input_ids=b["input_ids"], attention_mask=b["attention_mask"]).last_hidden_state
        return 1 - torch.nn.functional.cosine_similarity(pool(s.float(), b["attention_mask"]), t).mean()

    return Side(student, _plain_optim(student, lr) if side == "plain" else _lab_optim(student, lr), loss)


BUILDERS = {"qa": _qa, "mlm": _mlm, "rtd": _rtd, "distill": _distill}


# --------------------------------------------------------------------------------------------
# FLOPs of the plain step (the peak is evaluation.bench.encode.matmul_peak's)
# --------------------------------------------------------------------------------------------
def plain_flops(kind: str, config, *, batch: int, tokens: int) -> float:
    """FLOPs of the plain step (2 per multiply-add; backward = 2 × forward): the linears, attention's two
    T×T products, and the vocabulary head where the plain step computes it at every position."""
    h, i, v = config.hidden_size, config.intermediate_size, config.vocab_size

    def fwd(layers: int) -> float:  # multiply-adds per token
        return layers * (4 * h * h + 2 * h * i + 2 * tokens * h)

    head = h * h + h * v
    per_token = {"qa": 3 * fwd(6), "mlm": 3 * (fwd(6) + head), "rtd": 3 * (fwd(6) + head) + 3 * fwd(6),
                 "distill": 3 * fwd(3) + fwd(6)}[kind]
    return 2.0 * per_token * batch * tokens


# --------------------------------------------------------------------------------------------
# The run
# --------------------------------------------------------------------------------------------
def build_side(kind: str, base: str, name: str, lr: float) -> Side:
    """One side from the same seed; ``lab+compile`` is the lab side with its loss (forward and, through
    AOTAutograd, backward) compiled by ``torch.compile`` (inductor)."""
    torch.manual_seed(0)  # the same new-head initialisation on every side
    side = BUILDERS[kind](base, "lab" if name == "lab+compile" else name, lr)
    side.model.train()
    if name in ("lab", "lab+compile"):
        set_attention_dropout(side.model, LAB_ATTENTION_DROPOUT)  # the lab's default
    if name == "lab+compile":
        side.loss = torch.compile(side.loss, dynamic=False)
    return side


def bench_kind(kind: str, base: str, *, batch: int, tokens: int, repeats: int, loss_steps: int, autocast: bool,
               peak: float, lr: float = 5e-5, progress=print, sides_run: tuple[str, ...] = SIDES) -> dict:
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(base)
    sides = {name: build_side(kind, base, name, lr) for name in sides_run}
    batches = [_batch(kind, batch=batch, tokens=tokens, vocab=config.vocab_size, seed=s) for s in range(repeats + 1)]
    times: dict[str, list[float]] = {n: [] for n in sides_run}
    for n in sides_run:
        sides[n].step(batches[0], autocast)  # warm-up: first-call allocations, kernel choices, compilation
    k = len(sides_run)
    for r in range(repeats):
        order = sides_run[r % k:] + sides_run[: r % k]
        for n in order:
            t0 = time.perf_counter()
            sides[n].step(batches[r + 1], autocast)
            times[n].append(time.perf_counter() - t0)
        progress(f"  {kind} repeat {r + 1}/{repeats}: " + ", ".join(f"{n} {times[n][-1]:.2f} s" for n in sides_run))
    flops = plain_flops(kind, config, batch=batch, tokens=tokens)
    out: dict = {"flops_per_step": flops}
    for n in sides_run:
        sec = statistics.median(times[n])
        out[n] = {"seconds_per_step": round(sec, 4), "tokens_per_second": round(batch * tokens / sec, 1),
                  "gflops": round(flops / sec / 1e9, 1), "share_of_peak": round(flops / sec / 1e9 / peak, 4),
                  "trainable_parameters": trainable_parameters(sides[n].model)}
    out["lab_speedup"] = round(out["plain"]["seconds_per_step"] / out["lab"]["seconds_per_step"], 2)
    out["exact_speedup"] = round(out["plain"]["seconds_per_step"] / out["exact"]["seconds_per_step"], 2)
    if "lab+compile" in out:
        out["compile_speedup_over_lab"] = round(out["lab"]["seconds_per_step"]
                                                / out["lab+compile"]["seconds_per_step"], 2)
    if loss_steps:
        out["losses"] = same_seed_losses(kind, base, config, batch=batch, tokens=tokens, steps=loss_steps,
                                         autocast=autocast, lr=lr, progress=progress)
    return out


LOSS_POOL = 8  # the loss comparison cycles over this many fixed batches


def same_seed_losses(kind: str, base: str, config, *, batch: int, tokens: int, steps: int, autocast: bool, lr: float,
                     progress=print) -> dict:
    """Fresh sides from the same seed, ``steps`` steps on the same batches: plain and exact should agree, and the
    lab (LoRA, frozen embeddings) should learn too. The batches cycle over :data:`LOSS_POOL` fixed random ones:
    random ids carry nothing to learn, but a model can fit a few batches seen again and again, so the losses fall
    and the comparison is between two learning curves rather than two flat lines at chance."""
    curves: dict[str, list[float]] = {}
    pool = [_batch(kind, batch=batch, tokens=tokens, vocab=config.vocab_size, seed=1000 + s) for s in range(LOSS_POOL)]
    for name in SIDES:
        side = build_side(kind, base, name, lr)
        curves[name] = [side.step(pool[s % LOSS_POOL], autocast) for s in range(steps)]
        progress(f"  {kind} {name}: loss {curves[name][0]:.4f} -> {curves[name][-1]:.4f} after {steps} steps")
    tail = max(1, steps // 10)
    mean_tail = {n: round(sum(c[-tail:]) / tail, 4) for n, c in curves.items()}
    return {"steps": steps, "pool": LOSS_POOL, "first": {n: round(c[0], 4) for n, c in curves.items()},
            "last_mean": mean_tail,
            "max_abs_diff_plain_exact": round(max(abs(a - b) for a, b in zip(curves["plain"], curves["exact"])), 4)}


def run(kinds=KINDS, *, batch: int = 32, tokens: int = 256, repeats: int = 5, loss_steps: int = 0,
        compile: bool = False, precision: str = "auto", progress=print) -> dict:
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()  # the new heads' load reports, once per side
    hf_logging.disable_progress_bar()
    if precision not in ("auto", "fp32"):
        raise ValueError(f"precision must be auto or fp32, got {precision!r}")
    # fp32 = what every side does on a CPU without native bf16 (the lab then runs fp32 like plain)
    autocast = precision == "auto" and cpu_has_native_bf16()
    peak_bf16 = matmul_peak("bf16")[0] if autocast else None  # GFLOP/s by wall time
    peak_fp32 = matmul_peak("fp32")[0]
    peak = peak_bf16 or peak_fp32
    result = {"batch": batch, "tokens": tokens, "repeats": repeats, "precision": "bf16" if autocast else "fp32",
              "threads": torch.get_num_threads(), "matmul_peak_gflops": {"bf16": peak_bf16 and round(peak_bf16, 1),
                                                                           "fp32": round(peak_fp32, 1)}}
    base = str(packaged_model_path())
    for kind in kinds:
        progress(f"== {kind}")
        result[kind] = bench_kind(kind, base, batch=batch, tokens=tokens, repeats=repeats, loss_steps=loss_steps,
                                  autocast=autocast, peak=peak, progress=progress,
                                  sides_run=SIDES + (("lab+compile",) if compile else ()))
    return result


def table(result: dict) -> str:
    rows = [f"{'step':8} {'side':6} {'s/step':>8} {'tokens/s':>9} {'GFLOP/s':>8} {'% peak':>7} {'trainable':>11}"]
    for kind in KINDS:
        if kind not in result:
            continue
        for side in (s for s in (*SIDES, "lab+compile") if s in result[kind]):
            r = result[kind][side]
            rows.append(f"{kind:8} {side:6} {r['seconds_per_step']:8.3f} {r['tokens_per_second']:9.0f} "
                        f"{r['gflops']:8.1f} {100 * r['share_of_peak']:6.1f}% {r['trainable_parameters']:11,}")
        extra = (f", compile {result[kind]['compile_speedup_over_lab']}× lab"
                 if "compile_speedup_over_lab" in result[kind] else "")
        rows.append(f"{'':8} lab {result[kind]['lab_speedup']}× plain, "
                    f"exact {result[kind]['exact_speedup']}× plain{extra}")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bertvariants.train bench", description=__doc__.split("\n\n")[0])
    p.add_argument("--only", default=",".join(KINDS), help=f"comma-separated steps (default all): {','.join(KINDS)}")
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--tokens", type=int, default=256)
    p.add_argument("--repeats", type=int, default=5, help="timed steps per side, alternating (median)")
    p.add_argument("--loss-steps", type=int, default=0, help="also train each side N steps from one seed (0: skip)")
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--compile", action="store_true", help="also time the lab step under torch.compile (inductor)")
    p.add_argument("--precision", choices=("auto", "fp32"), default="auto",
                   help="auto: bf16 autocast where the CPU has native bf16; fp32: as on a CPU without it")
    args = p.parse_args(argv)
    kinds = tuple(k.strip() for k in args.only.split(",") if k.strip())
    unknown = [k for k in kinds if k not in KINDS]
    if unknown or args.batch < 1 or args.tokens < 16 or args.repeats < 1 or args.loss_steps < 0:
        p.error(f"unknown step(s) {unknown}" if unknown
                else "--batch ≥ 1, --tokens ≥ 16, --repeats ≥ 1, --loss-steps ≥ 0")
    if args.threads:
        torch.set_num_threads(args.threads)
    result = run(kinds, batch=args.batch, tokens=args.tokens, repeats=args.repeats, loss_steps=args.loss_steps,
                 compile=args.compile, precision=args.precision)
    print(table(result))
    print(json.dumps(result))
    return 0
