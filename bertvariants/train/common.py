"""The shared training loop of the variant lab: config base, data, seeding, logging, checkpoints, results.

Every recipe (``bertvariants/train/<recipe>.py``) is a frozen config dataclass plus two functions:
``build(cfg, data) -> Setup`` (model, tokenizer, a batch sampler and a loss function) and
``evaluate(...)``. :func:`fit` runs the loop they share:

    seed -> Accelerator (bf16 on GPU, multi-GPU under ``accelerate launch``) -> AdamW + linear warm-up/decay
    -> tqdm over ``steps`` optimizer steps -> loss-curve CSV -> save_pretrained + tokenizer
    -> model card (README.md) -> result JSON (evaluation results format, written atomically)

Batches are drawn from an explicit seeded ``torch.Generator`` (:func:`bertvariants.common.make_generator`),
so two runs with the same seed see the same batches, masks and initial weights: reruns reproduce on CPU.

Data: recipes read the shared public corpora (``../shared/data``: SST-2, STS-B, Wikipedia, MTSamples) or
files the user passes with ``--data``; nothing in the product requires the shared directory.
"""

from __future__ import annotations

import csv
import json
import math
import os
import random
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import torch

from ..common import make_generator

REPO_ROOT = Path(__file__).resolve().parent.parent.parent


# --------------------------------------------------------------------------------------------
# Config
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class TrainConfig:
    """Settings every recipe shares. Defaults are sized for ≤ 15 min on a 2-core CPU; ``scale`` multiplies steps.

    Attributes:
        steps: optimizer steps at scale 1.
        batch_size: examples per step (per process under ``accelerate launch``).
        lr: peak AdamW learning rate, reached after ``warmup`` × steps, then decayed linearly to 0.
        max_length: tokens per sequence (truncation).
        scale: multiplies ``steps`` (``--scale 20`` for a real GPU run at the same schedule shape).
        seed: seeds weights of new heads, batch order and masking; the same seed reproduces the run.
        output: checkpoint directory; ``None`` = ``<models_dir>/<recipe's name>``.
        data: data directory or file; ``None`` = ``../shared/data`` (or env ``BERTVARIANTS_DATA``).
        log_every: steps between loss-curve rows.
        eval_limit: cap on evaluation examples (``None`` = the full dev/held-out set).
        max_minutes: stop training after this many minutes (or on SIGTERM) and still save + evaluate; the
            model card and result record the steps actually run.
    """

    steps: int = 300
    batch_size: int = 32
    lr: float = 5e-5
    weight_decay: float = 0.01
    warmup: float = 0.06
    max_length: int = 128
    scale: float = 1.0
    seed: int = 42
    output: str | None = None
    data: str | None = None
    log_every: int = 10
    eval_limit: int | None = None
    base_model: str | None = None  # None = the packaged all-MiniLM-L6-v2
    max_minutes: float | None = None  # wall-time budget: stop early (checkpoint + evaluation still happen)
    cpu_bf16: bool = False  # bf16 autocast on a CPU with native bf16 (AVX-512 BF16 / AMX); GPUs always use bf16

    @property
    def total_steps(self) -> int:
        return max(1, int(round(self.steps * self.scale)))


def config_from_args(cls, overrides: dict[str, Any]):
    """Build a recipe config from CLI overrides, ignoring ``None`` (= keep the documented default)."""
    names = {f.name for f in fields(cls)}
    unknown = set(k for k, v in overrides.items() if v is not None) - names
    if unknown:
        raise ValueError(f"{cls.__name__} has no setting(s) {', '.join(sorted(unknown))}")
    cfg = cls(**{k: v for k, v in overrides.items() if v is not None})
    if cfg.steps < 1 or cfg.scale <= 0 or cfg.batch_size < 1:
        raise ValueError(f"steps and batch_size must be ≥ 1 and scale > 0 (got steps={cfg.steps}, "
                         f"batch_size={cfg.batch_size}, scale={cfg.scale})")
    return cfg


def base_model_path(cfg: TrainConfig) -> str:
    if cfg.base_model:
        return cfg.base_model
    from ..registry import packaged_model_path

    return str(packaged_model_path())


def output_dir(cfg: TrainConfig, name: str) -> Path:
    """Where a recipe saves: ``--output`` or ``<models_dir>/<name>`` (the registry's ``trained:<name>``)."""
    if cfg.output:
        return Path(cfg.output)
    from ..registry import load_manifest

    return load_manifest().models_dir / name


# --------------------------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------------------------
def shared_data_dir() -> Path | None:
    """``$BERTVARIANTS_DATA`` or ``../shared/data`` next to the repository, when it exists."""
    env = os.environ.get("BERTVARIANTS_DATA")
    path = Path(env) if env else REPO_ROOT.parent / "shared" / "data"
    return path if path.is_dir() else None


def data_file(cfg: TrainConfig, relative: str, *, what: str, override: str | None = None) -> Path:
    """Resolve one input file: an explicit path (``--data FILE`` or a recipe option), else ``<data dir>/<relative>``.

    ``--data DIR`` replaces the shared data directory (same layout); ``--data FILE`` is used as is.
    """
    explicit = override or cfg.data
    if explicit:
        path = Path(explicit).expanduser()
        if path.is_dir():
            path = path / relative
    else:
        base = shared_data_dir()
        if base is None:
            raise ValueError(f"no {what} given: pass --data PATH (expected layout: <dir>/{relative}); "
                             "the shared corpora ../shared/data are not present here")
        path = base / relative
    if not path.is_file():
        raise ValueError(f"{what}: {path} does not exist (pass --data PATH)")
    return path


def read_sst2(path: Path) -> tuple[list[str], list[int]]:
    """GLUE SST-2 TSV (``sentence<TAB>label`` with a header) -> texts, labels."""
    texts, labels = [], []
    with open(path, encoding="utf-8") as f:
        reader = csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
        header = next(reader)
        if header[:2] != ["sentence", "label"]:
            raise ValueError(f"{path}: expected an SST-2 header 'sentence<TAB>label', got {header!r}")
        for row in reader:
            if len(row) >= 2 and row[1].strip() in ("0", "1"):
                texts.append(row[0].strip())
                labels.append(int(row[1]))
    if not texts:
        raise ValueError(f"{path}: no labelled sentences")
    return texts, labels


def read_stsb(path: Path) -> tuple[list[str], list[str], list[float]]:
    """STS Benchmark CSV (tab-separated: genre, file, year, id, score, s1, s2) -> s1, s2, gold scores."""
    s1, s2, scores = [], [], []
    with open(path, encoding="utf-8") as f:
        for line in f:
            parts = line.rstrip("\n").split("\t")
            if len(parts) >= 7:
                try:
                    score = float(parts[4])
                except ValueError:
                    continue
                s1.append(parts[5])
                s2.append(parts[6])
                scores.append(score)
    if not s1:
        raise ValueError(f"{path}: no STS-B rows (genre, file, year, id, score, s1, s2)")
    return s1, s2, scores


def read_corpus(path: Path) -> list[str]:
    """Plain-text corpus -> documents: JSONL with a ``text`` field (one document per line) or a .txt file
    (documents separated by blank lines)."""
    if path.suffix == ".jsonl":
        docs = [json.loads(line)["text"] for line in open(path, encoding="utf-8") if line.strip()]
    else:
        docs = [d.strip() for d in path.read_text(encoding="utf-8").split("\n\n")]
    docs = [d for d in docs if d.strip()]
    if not docs:
        raise ValueError(f"{path}: empty corpus")
    return docs


def corpus_blocks(tokenizer, docs: Sequence[str], *, block: int, heldout_docs: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Tokenize documents into contiguous blocks of ``block`` tokens ([CLS] … [SEP]); the last
    ``heldout_docs`` documents form the held-out set (documents never straddle the split).

    Returns (train_blocks, heldout_blocks), each (N, block) int64.
    """
    if heldout_docs >= len(docs):
        raise ValueError(f"corpus has {len(docs)} documents; cannot hold out {heldout_docs}")
    inner = block - 2

    def blocks(part: Sequence[str]) -> torch.Tensor:
        ids: list[int] = []
        for doc in part:
            ids.extend(tokenizer(doc, add_special_tokens=False)["input_ids"])
        n = len(ids) // inner
        t = torch.tensor(ids[: n * inner], dtype=torch.long).view(n, inner)
        cls = torch.full((n, 1), tokenizer.cls_token_id)
        sep = torch.full((n, 1), tokenizer.sep_token_id)
        return torch.cat([cls, t, sep], dim=1)

    split = len(docs) - heldout_docs
    return blocks(docs[:split]), blocks(docs[split:])


class Sampler:
    """Seeded index sampler: epochs of a random permutation drawn from one explicit generator."""

    def __init__(self, n: int, batch_size: int, *, seed: int):
        if n < 1:
            raise ValueError("no training examples")
        self.n, self.batch_size = n, min(batch_size, n)
        self.gen = make_generator(seed)
        self._perm: list[int] = []

    def __iter__(self) -> Iterator[list[int]]:
        return self

    def __next__(self) -> list[int]:
        if len(self._perm) < self.batch_size:
            self._perm += torch.randperm(self.n, generator=self.gen).tolist()
        batch, self._perm = self._perm[: self.batch_size], self._perm[self.batch_size:]
        return batch


class BucketSampler(Sampler):
    """Seeded batches of similar length: each pool of ``pool`` batches' worth of a random permutation is sorted
    by length and cut into batches, which are then shuffled. Padding (and so compute) drops several-fold on
    SST-2's mix of 3-word phrases and 50-word sentences, while every epoch still visits every example once."""

    def __init__(self, lengths: Sequence[int], batch_size: int, *, seed: int, pool: int = 50):
        super().__init__(len(lengths), batch_size, seed=seed)
        self.lengths, self.pool = list(lengths), pool
        self._batches: list[list[int]] = []

    def __next__(self) -> list[int]:
        if not self._batches:
            perm = torch.randperm(self.n, generator=self.gen).tolist()
            size = self.batch_size * self.pool
            for start in range(0, self.n, size):
                chunk = sorted(perm[start:start + size], key=lambda i: self.lengths[i])
                self._batches += [chunk[j:j + self.batch_size] for j in range(0, len(chunk), self.batch_size)]
            order = torch.randperm(len(self._batches), generator=self.gen).tolist()
            self._batches = [self._batches[i] for i in order]
        return self._batches.pop()


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (new-head initialisation draws from torch's global generator)."""
    random.seed(seed)
    try:
        import numpy as np

        np.random.seed(seed)
    except ImportError:  # pragma: no cover - numpy ships with torch
        pass
    torch.manual_seed(seed)


# --------------------------------------------------------------------------------------------
# The loop
# --------------------------------------------------------------------------------------------
@dataclass
class Setup:
    """What a recipe hands to :func:`fit`.

    ``loss_fn(model, batch) -> dict`` must return ``{"loss": tensor, <other scalar logs>...}``;
    ``batches`` yields batches (dicts of CPU tensors) forever; ``model`` is an ``nn.Module`` holding every
    trainable part (a wrapper when a recipe trains several, e.g. ELECTRA's generator + discriminator).
    """

    model: torch.nn.Module
    batches: Iterator[dict]
    loss_fn: Callable[[torch.nn.Module, dict], dict]
    parameters: Sequence[torch.nn.Parameter] | None = None  # default: model.parameters() that require grad


@dataclass(frozen=True)
class FitResult:
    steps: int
    seconds: float
    curve: list[dict]  # one row per logged step: step, loss, lr, seconds and the recipe's extra logs
    device: str
    processes: int
    planned_steps: int = 0  # steps the schedule was built for (> steps when stopped early)
    precision: str = "fp32"  # "bf16" when the loss ran under bf16 autocast (weights and optimizer stay fp32)

    @property
    def first_loss(self) -> float:
        return self.curve[0]["loss"]

    @property
    def last_loss(self) -> float:
        return self.curve[-1]["loss"]


def mixed_precision(cfg: TrainConfig | None = None) -> str:
    """accelerate's ``mixed_precision``: bf16 on GPU; on CPU bf16 autocast only when the recipe asks for it
    (``cpu_bf16``) and the processor multiplies bf16 natively (else autocast would emulate it, slower than fp32)."""
    if torch.cuda.is_available():
        return "bf16"
    from ..inference import cpu_has_native_bf16

    return "bf16" if cfg is not None and cfg.cpu_bf16 and cpu_has_native_bf16() else "no"


def make_accelerator(cfg: TrainConfig | None = None):
    """Mixed precision per :func:`mixed_precision`; multi-process when launched with ``accelerate launch``."""
    from accelerate import Accelerator
    from accelerate.state import AcceleratorState

    precision = mixed_precision(cfg)
    state = AcceleratorState._shared_state
    if state and state.get("_mixed_precision") not in (None, precision):
        # the state is a process-wide singleton: ``train all`` runs recipes of different precisions in one
        # process, so drop the previous recipe's choice (the process group, PartialState, is kept)
        AcceleratorState._reset_state()
    return Accelerator(mixed_precision=precision)


def fit(setup: Setup, cfg: TrainConfig, *, desc: str, progress: bool = True, accelerator=None) -> FitResult:
    """Run ``cfg.total_steps`` AdamW steps with linear warm-up/decay and grad-norm clipping at 1.0."""
    from tqdm.auto import tqdm
    from transformers import get_linear_schedule_with_warmup

    accelerator = accelerator or make_accelerator(cfg)
    steps = cfg.total_steps
    params = list(setup.parameters) if setup.parameters is not None else [
        p for p in setup.model.parameters() if p.requires_grad]
    decay = [p for p in params if p.ndim >= 2]
    no_decay = [p for p in params if p.ndim < 2]  # biases and LayerNorm weights: no weight decay (BERT §A.2)
    optim = torch.optim.AdamW([{"params": decay, "weight_decay": cfg.weight_decay},
                               {"params": no_decay, "weight_decay": 0.0}], lr=cfg.lr)
    sched = get_linear_schedule_with_warmup(optim, int(cfg.warmup * steps), steps)
    # the scheduler is stepped here once per optimizer step; accelerate's prepared scheduler would step it once
    # per process, decaying n× too fast under ``accelerate launch``
    model, optim = accelerator.prepare(setup.model, optim)
    model.train()
    curve: list[dict] = []
    window: dict[str, list[float]] = {}
    start = time.perf_counter()
    bar = tqdm(range(1, steps + 1), desc=desc, unit="step", disable=not (progress and accelerator.is_main_process))
    stop = _StopFlag()
    step = 0
    for step in bar:
        if step > 1 and (stop.requested or (cfg.max_minutes and time.perf_counter() - start > 60 * cfg.max_minutes)):
            step -= 1
            break
        # every process draws the same seeded stream and keeps its own slice: distinct data per GPU, reproducible
        draws = [next(setup.batches) for _ in range(accelerator.num_processes)]
        batch = {k: v.to(accelerator.device) if torch.is_tensor(v) else v
                 for k, v in draws[accelerator.process_index].items()}
        with accelerator.autocast():
            logs = setup.loss_fn(model, batch)
        loss = logs["loss"]
        if not torch.isfinite(loss):
            raise FloatingPointError(f"{desc}: loss became {loss.item()} at step {step}; lower --lr")
        accelerator.backward(loss)
        accelerator.clip_grad_norm_(params, 1.0)
        optim.step()
        sched.step()
        optim.zero_grad(set_to_none=True)
        for k, v in logs.items():
            window.setdefault(k, []).append(float(v.detach()) if torch.is_tensor(v) else float(v))
        if step % cfg.log_every == 0 or step == steps or step == 1:
            row = {"step": step, **{k: sum(v) / len(v) for k, v in window.items()},
                   "lr": sched.get_last_lr()[0], "seconds": round(time.perf_counter() - start, 2)}
            curve.append(row)
            window = {}
            bar.set_postfix(loss=f"{row['loss']:.4f}")
    bar.close()
    stop.restore()
    if window:  # the last partial window when stopped early
        curve.append({"step": step, **{k: sum(v) / len(v) for k, v in window.items()},
                      "lr": sched.get_last_lr()[0], "seconds": round(time.perf_counter() - start, 2)})
    seconds = time.perf_counter() - start
    setup.model = accelerator.unwrap_model(model)
    setup.model.eval()
    return FitResult(steps=step, seconds=seconds, curve=curve, device=str(accelerator.device),
                     processes=accelerator.num_processes, planned_steps=steps,
                     precision="bf16" if accelerator.mixed_precision == "bf16" else "fp32")


class _StopFlag:
    """SIGTERM during training = finish the current step, then save and evaluate (main thread only)."""

    def __init__(self):
        import signal
        import threading

        self.requested = False
        self._previous = None
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGTERM, self._handle)

    def _handle(self, signum, frame):
        self.requested = True

    def restore(self):
        import signal

        if self._previous is not None:
            signal.signal(signal.SIGTERM, self._previous)
            self._previous = None


# --------------------------------------------------------------------------------------------
# Outputs: loss curve, checkpoint, model card, result JSON
# --------------------------------------------------------------------------------------------
def write_curve(path: Path, curve: list[dict]) -> Path:
    """Loss curve as CSV (columns: step, loss, <recipe logs>, lr, seconds)."""
    cols: list[str] = []
    for row in curve:
        cols += [k for k in row if k not in cols]
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=cols)
        w.writeheader()
        w.writerows(curve)
    return path


def write_json_atomic(path: Path, obj: Any) -> Path:
    """Write JSON to a temporary file in the same directory, then rename: readers never see half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(obj, f, indent=2, sort_keys=False, default=str)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def save_checkpoint(model, tokenizer, out: Path) -> Path:
    """``save_pretrained`` (safetensors) + the tokenizer files, so ``from_pretrained(out)`` loads it offline."""
    from ..io import atomic_directory

    with atomic_directory(out) as tmp:  # a Ctrl-C mid-save never leaves config.json beside half the weights
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
    return out


def copy_tokenizer(src: Path, dst: Path) -> None:
    for name in ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json"):
        if (src / name).is_file():
            shutil.copy(src / name, dst / name)


@dataclass(frozen=True)
class RunReport:
    """What a recipe returns: where the checkpoint is, the fit, and the measured metrics."""

    recipe: str
    output: Path
    fit: FitResult
    metrics: dict[str, float]
    result_path: Path


def model_card(*, title: str, recipe: str, paper: str, cfg: TrainConfig, fit: FitResult, metrics: dict[str, float],
               data: dict[str, str], notes: str = "") -> str:
    """README.md for a trained checkpoint: what it is, data, steps, seconds, metrics, seed, how to rebuild."""
    rows = "\n".join(f"| {k} | {v:.4f} |" for k, v in metrics.items())
    data_rows = "\n".join(f"- {k}: `{v}`" for k, v in data.items())
    overrides = " ".join(f"--{f.name.replace('_', '-')} {getattr(cfg, f.name)}" for f in fields(cfg)
                         if getattr(cfg, f.name) != f.default and f.name not in ("output", "data", "base_model"))
    return f"""---
library_name: transformers
tags: [bertvariants, {recipe}]
---
# {title}

Trained by `python -m bertvariants.train {recipe}{(' ' + overrides) if overrides else ''}` (bertvariants variant lab).
Implements: {paper}.

{notes}

## Training
- base model: `{cfg.base_model or 'sentence-transformers/all-MiniLM-L6-v2 (packaged)'}`
- steps: {fit.steps}{f" (stopped early; schedule planned for {fit.planned_steps})" if fit.planned_steps > fit.steps else ""} × batch {cfg.batch_size} × {fit.processes} process(es), peak lr {cfg.lr}, warm-up {cfg.warmup:.0%}, max length {cfg.max_length}
- wall time: {fit.seconds:.0f} s on `{fit.device}` ({fit.precision}{" autocast, fp32 weights" if fit.precision == "bf16" else ""})
- seed: {cfg.seed} (reruns with the same seed reproduce on the same hardware)
- loss: {fit.first_loss:.4f} (first logged) → {fit.last_loss:.4f} (last logged); curve in `loss_curve.csv`

## Data
{data_rows}

## Evaluation (evaluation results format, `result.json`; the Leaderboard reads it)
| metric | value |
|---|---|
{rows}
"""


def harness(task: str, checkpoint: Path, *, data: Path | None = None, split: str | None = None,
            limit: int | None = None, options: dict | None = None) -> dict:
    """Score a saved checkpoint with the evaluation harness (``evaluation.runner.run``: the same code path as
    ``python -m evaluation run`` and the Leaderboard). Returns its result record (metrics in points).
    ``options``: the benchmark's split settings (:func:`heldout_options` for the held-out pretraining tasks)."""
    from evaluation import runner

    result, _ = runner.run(task, str(checkpoint), data=str(data) if data else None, split=split, limit=limit,
                           progress=False, options=options)
    return result


def heldout_options(cfg) -> dict:
    """A pretraining recipe's held-out split as the harness's ``wikipedia-*`` options, so that the recipe and
    ``python -m evaluation run --task ... --model <checkpoint>`` score the same blocks with the same masks."""
    return {"heldout_docs": cfg.heldout_docs, "block_tokens": cfg.max_length, "eval_blocks": cfg.eval_blocks}


def results_dir() -> Path:
    """Where the Leaderboard reads results: ``$BERTVARIANTS_RESULTS_DIR`` or the evaluation default (results/)."""
    env = os.environ.get("BERTVARIANTS_RESULTS_DIR")
    if env:
        return Path(env)
    from evaluation.results import DEFAULT_RESULTS_DIR

    return DEFAULT_RESULTS_DIR


def repo_relative(path: Path) -> str:
    """``models/<name>`` for a path inside the repository (records are shared; machine paths are not)."""
    try:
        return Path(path).resolve().relative_to(REPO_ROOT.resolve()).as_posix()
    except ValueError:
        return str(path)


def _portable(text: str) -> str:
    """Data descriptions with the shared data directory written as ``shared/data`` (as the harness records it)."""
    base = shared_data_dir()
    return text.replace(str(base), "shared/data") if base is not None else text


def finish(*, recipe: str, name: str, title: str, paper: str, cfg: TrainConfig, fit: FitResult, out: Path,
           result: dict, data: dict[str, str], notes: str = "", variant: str = "") -> RunReport:
    """Write the loss curve, the model card and the result JSON (``<out>/result.json`` + the Leaderboard's
    results directory) next to an already saved checkpoint. ``result`` is the evaluation record."""
    write_curve(out / "loss_curve.csv", fit.curve)
    metrics = {k: float(v) for k, v in result["metrics"].items() if v is not None}
    record = {**result, "model": name, "variant": variant or result.get("variant", ""),
              "model_path": repo_relative(out), "model_revision": result.get("model_revision", "trained")}
    record["training"] = {
        "recipe": recipe, "config": asdict(cfg), "steps": fit.steps, "planned_steps": fit.planned_steps,
        "seconds": round(fit.seconds, 1),
        "device": fit.device, "precision": fit.precision, "processes": fit.processes, "data": {k: _portable(str(v)) for k, v in data.items()}, "curve_csv": repo_relative(out / "loss_curve.csv"),
        "curve": [{k: (round(v, 6) if isinstance(v, float) else v) for k, v in row.items()} for row in fit.curve],
    }
    (out / "README.md").write_text(model_card(title=title, recipe=recipe, paper=paper, cfg=cfg, fit=fit,
                                              metrics=metrics, data=data, notes=notes), encoding="utf-8")
    path = write_json_atomic(out / "result.json", record)
    from evaluation.results import write_result

    write_result(record, results_dir())
    return RunReport(recipe=recipe, output=out, fit=fit, metrics=metrics, result_path=path)


def perplexity(loss: float) -> float:
    return math.exp(min(loss, 50.0))


# --------------------------------------------------------------------------------------------
# Masked-LM helpers shared by the pretraining recipes (mlm, spanbert, electra)
# --------------------------------------------------------------------------------------------
def wikipedia_blocks(cfg: TrainConfig, tokenizer, *, block: int, heldout_docs: int,
                     override: str | None = None) -> tuple[torch.Tensor, torch.Tensor, Path]:
    """(train_blocks, heldout_blocks, corpus path) of the Wikipedia sample (or ``--data``'s corpus)."""
    path = data_file(cfg, "corpus/enwiki_sample.jsonl", what="pretraining corpus (JSONL with 'text', or .txt)",
                     override=override)
    train, heldout = corpus_blocks(tokenizer, read_corpus(path), block=block, heldout_docs=heldout_docs)
    if len(train) == 0 or len(heldout) == 0:
        raise ValueError(f"{path}: corpus too small for blocks of {block} tokens")
    return train, heldout, path


def sparse_mlm_loss(hidden: torch.Tensor, labels: torch.Tensor, head) -> torch.Tensor:
    """Cross-entropy of ``head`` applied only at predicted positions (labels ≠ -100).

    Projecting only the ~15% selected positions onto the 30k vocabulary instead of all T positions
    is the same loss for a fraction of the compute. hidden (B, T, H), labels (B, T) -> ().
    """
    sel = labels != -100
    if not bool(sel.any()):
        return hidden.sum() * 0.0  # no prediction in this batch: a zero that keeps the graph
    logits = head(hidden[sel])  # (M, V)
    return torch.nn.functional.cross_entropy(logits.float(), labels[sel])


def block_batches(blocks: torch.Tensor, *, batch_size: int, seed: int) -> Iterator[torch.Tensor]:
    """Seeded batches of corpus blocks, (B, T) each, forever."""
    for idx in Sampler(len(blocks), batch_size, seed=seed):
        yield torch.tensor(idx), blocks[torch.tensor(idx)]

