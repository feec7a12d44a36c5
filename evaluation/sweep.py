"""A job list across (model, task, seed) pairs, sharded deterministically, merged afterwards.

    python -m evaluation sweep MANIFEST.yml [--shard i/N] [--output DIR]
    python -m evaluation merge DIR [DIR ...] [--into results/]

The manifest lists grids of models × tasks × seeds, each with its split and options (:func:`read_manifest`)::

    output: sweep-results          # where the jobs' result files go (--output overrides)
    grid:
      - models: [minilm, minilm-l3-onnx]
        tasks: [stsb, sst2]
        seeds: [0, 1, 2]           # the harness seed: probe sample, CV folds, bootstrap
        split: dev                 # optional: the task's evaluation split by default
        limit: 500                 # optional: and batch_size, probe_train_size, data, train_data, options

Each job's identity is a SHA-256 of its canonical JSON (:attr:`Job.id`), so ``--shard i/N`` (job ``j`` belongs to
shard ``int(j.id, 16) mod N``) gives the same disjoint parts on every machine and Python: one per Slurm array task
(``--shard $SLURM_ARRAY_TASK_ID/$N``), Ray task or Kubernetes indexed job. Nothing here schedules: the cluster's
own scheduler runs the shards. Each job writes ``<task>__<model>__<split>__seed<S>__<id>.json`` (+ its predictions)
atomically, only when it completes; a job whose file exists is skipped, so re-running a killed or failed shard
completes only its missing jobs. ``merge`` copies the job files of every shard directory into the results store
(idempotent: a file already there is left alone) and names the jobs of the manifests (``sweep-<id>.jobs.jsonl``, the
full job list each shard writes beside its results) that no directory holds.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Iterable

from bertvariants.io import atomic_write_text

from . import results

GRID_KEYS = ("models", "tasks", "seeds", "split", "limit", "batch_size", "probe_train_size", "data", "train_data",
             "options")
DEFAULT_OUTPUT = "sweep-results"
JOBS_SUFFIX = ".jobs.jsonl"  # not *.json: the results store never mistakes the job list for a result


def file_slug(text) -> str:
    """``text`` as a file-name part: runs of other characters become "-" (a model path ``models/x`` → ``models-x``)."""
    return re.sub(r"[^A-Za-z0-9._-]+", "-", str(text)).strip("-")[:60] or "x"


@dataclass(frozen=True)
class Job:
    """One ``python -m evaluation run``: everything that decides its result (and so its identity)."""

    task: str
    model: str
    seed: int = 0
    split: str | None = None
    limit: int | None = None
    batch_size: int = 64
    probe_train_size: int = 8000
    data: str | None = None
    train_data: str | None = None
    options: tuple = ()  # sorted (name, value) pairs of the held-out benchmarks' split settings

    @property
    def key(self) -> str:
        return json.dumps(asdict(self), sort_keys=True, default=list)

    @property
    def id(self) -> str:
        """12 hex digits of the SHA-256 of :attr:`key`: stable across machines, processes and Python versions."""
        return hashlib.sha256(self.key.encode()).hexdigest()[:12]

    @property
    def stem(self) -> str:
        """The job's result file name without ``.json``."""
        return (f"{file_slug(self.task)}__{file_slug(self.model)}__{file_slug(self.split or 'default')}"
                f"__seed{self.seed}__{self.id}")

    def shard(self, n: int) -> int:
        return int(hashlib.sha256(self.key.encode()).hexdigest(), 16) % n

    def command(self) -> str:
        """The equivalent single-job command line."""
        parts = ["python -m evaluation run", f"--task {self.task}", f"--model {self.model}", f"--seed {self.seed}"]
        parts += [f"--{k.replace('_', '-')} {v}" for k, v in (("split", self.split), ("limit", self.limit),
                                                                 ("data", self.data), ("train_data", self.train_data))
                  if v is not None]
        return " ".join(parts + [f"--batch-size {self.batch_size}", f"--probe-train-size {self.probe_train_size}"])


def _as_list(value, what: str) -> list:
    if value is None:
        return []
    if isinstance(value, (str, int)):
        return [value]
    if isinstance(value, list):
        return value
    raise ValueError(f"manifest: {what} must be a name or a list, got {type(value).__name__}")


def grid_jobs(grid: dict, where: str = "grid") -> list[Job]:
    """The jobs of one grid: every model × task × seed with the grid's split and options."""
    if not isinstance(grid, dict):
        raise ValueError(f"manifest: {where} must be a mapping of {', '.join(GRID_KEYS)}")
    unknown = set(grid) - set(GRID_KEYS)
    if unknown:
        raise ValueError(f"manifest: {where} has unknown key(s) {', '.join(sorted(unknown))}; "
                         f"allowed: {', '.join(GRID_KEYS)}")
    models, tasks = _as_list(grid.get("models"), "models"), _as_list(grid.get("tasks"), "tasks")
    seeds = _as_list(grid.get("seeds", [0]), "seeds")
    if not models or not tasks:
        raise ValueError(f"manifest: {where} needs at least one model and one task")
    if not all(isinstance(s, int) and not isinstance(s, bool) for s in seeds):
        raise ValueError(f"manifest: {where}: seeds must be integers, got {seeds}")
    options = grid.get("options") or {}
    if not isinstance(options, dict):
        raise ValueError(f"manifest: {where}: options must be a mapping")
    fixed = {k: grid[k] for k in ("split", "limit", "batch_size", "probe_train_size", "data", "train_data")
             if grid.get(k) is not None}
    return [Job(task=str(t), model=str(m), seed=int(s), options=tuple(sorted(options.items())), **fixed)
            for m in models for t in tasks for s in seeds]


@dataclass(frozen=True)
class Manifest:
    jobs: tuple[Job, ...]
    output: str = DEFAULT_OUTPUT

    @property
    def id(self) -> str:
        return hashlib.sha256("\n".join(sorted(j.id for j in self.jobs)).encode()).hexdigest()[:12]


def read_manifest(path: str | os.PathLike) -> Manifest:
    """Parse a sweep manifest (YAML): ``grid:`` a list of grids, or one grid's keys at the top level."""
    import yaml

    p = Path(path)
    if not p.is_file():
        raise ValueError(f"manifest not found: {p}")
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ValueError(f"{p.name}: not valid YAML ({str(exc).splitlines()[0]})") from None
    if not isinstance(data, dict):
        raise ValueError(f"{p.name}: a manifest is a mapping (grid: [...] or models/tasks/seeds)")
    output = str(data.get("output") or DEFAULT_OUTPUT)
    grids = data.get("grid")
    if grids is None:
        grids = [{k: v for k, v in data.items() if k != "output"}]
    elif set(data) - {"grid", "output"}:
        raise ValueError(f"{p.name}: with grid: [...], only 'output' may sit at the top level "
                         f"(got {', '.join(sorted(set(data) - {'grid', 'output'}))})")
    if not isinstance(grids, list) or not grids:
        raise ValueError(f"{p.name}: grid must be a non-empty list of grids")
    jobs = [j for i, g in enumerate(grids) for j in grid_jobs(g, f"grid[{i}]")]
    return Manifest(tuple(dict.fromkeys(jobs)), output)  # a job listed twice runs once


def parse_shard(text: str | None) -> tuple[int, int]:
    """``"i/N"`` → (i, N) with 0 ≤ i < N (Slurm array indices from 0: ``--array=0-{N-1}``); None → (0, 1)."""
    if text is None:
        return 0, 1
    m = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", str(text))
    if not m or int(m.group(2)) < 1 or int(m.group(1)) >= int(m.group(2)):
        raise ValueError(f"--shard must be i/N with 0 ≤ i < N (e.g. 0/4 … 3/4), got {text!r}")
    return int(m.group(1)), int(m.group(2))


def shard_jobs(jobs: Iterable[Job], index: int, count: int) -> list[Job]:
    return [j for j in jobs if j.shard(count) == index]


@dataclass
class SweepReport:
    """What one shard did: job ids run, skipped (result present) and failed (with the error)."""

    shard: str
    jobs: int
    done: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict:
        return asdict(self)


def job_done(job: Job, out_dir: Path) -> bool:
    """The job's result file exists and reads as a result (a corrupt one is redone)."""
    path = out_dir / f"{job.stem}.json"
    if not path.is_file():
        return False
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return results.read(path) is not None


def write_job(job: Job, record: dict, records: list[dict] | None, out_dir: Path) -> Path:
    """The job's predictions, then its result, each atomically: a result file only exists complete."""
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{job.stem}.json"
    record = {**record, "sweep_job": job.id, "command": job.command()}
    if records is not None:
        side = path.with_suffix(".predictions.jsonl")
        atomic_write_text(side, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records))
        record["predictions_file"] = side.name
    atomic_write_text(path, json.dumps(record, indent=1, ensure_ascii=False, default=str) + "\n")
    return path


def write_job_list(manifest: Manifest, out_dir: Path) -> Path:
    """The manifest's full job list beside the results, for ``merge`` to name the missing ones."""
    out_dir.mkdir(parents=True, exist_ok=True)
    text = "".join(json.dumps({"id": j.id, "stem": j.stem, "command": j.command()}) + "\n" for j in manifest.jobs)
    return atomic_write_text(out_dir / f"sweep-{manifest.id}{JOBS_SUFFIX}", text)


def run_jobs(jobs: list[Job], out_dir: str | os.PathLike, *, shard: str = "0/1", evaluate: Callable | None = None,
             progress: bool = False, log=sys.stderr) -> SweepReport:
    """Run every job whose result is not in ``out_dir`` yet, one after the other. ``evaluate``: the runner
    (``evaluation.runner.run``; tests pass a counting one). A job that fails with a ValueError (a model that
    cannot load, data that is missing) is reported and the shard goes on; Ctrl-C / SIGTERM stops it with the
    finished jobs written and the running one not."""
    if evaluate is None:
        from .runner import run as evaluate
    out = Path(out_dir)
    report = SweepReport(shard=shard, jobs=len(jobs))
    for n, job in enumerate(jobs, start=1):
        if job_done(job, out):
            report.skipped.append(job.id)
            print(f"[{n}/{len(jobs)}] {job.id} present, skipped: {job.stem}", file=log)
            continue
        print(f"[{n}/{len(jobs)}] {job.id} running: {job.command()}", file=log)
        try:
            done = evaluate(job.task, job.model, data=job.data, split=job.split, limit=job.limit,
                            batch_size=job.batch_size, seed=job.seed, probe_train_size=job.probe_train_size,
                            train_data=job.train_data, progress=progress, options=dict(job.options) or None)
        except ValueError as exc:
            report.failed[job.id] = " ".join(str(exc).split())[:300]
            print(f"[{n}/{len(jobs)}] {job.id} failed: {report.failed[job.id]}", file=log)
            continue
        write_job(job, done.result.to_dict(), done.records, out)
        report.done.append(job.id)
    return report


@dataclass
class MergeReport:
    """What ``merge`` did: job files copied into the store, already there, and the manifests' missing jobs."""

    into: str
    copied: list[str] = field(default_factory=list)
    present: list[str] = field(default_factory=list)
    missing: list[dict] = field(default_factory=list)  # {"id", "stem", "command"} of each job no directory holds

    def as_dict(self) -> dict:
        return asdict(self)


JOB_FILE = re.compile(r".+__seed-?\d+__[0-9a-f]{12}\.json$")


def merge(dirs: Iterable[str | os.PathLike], into: str | os.PathLike) -> MergeReport:
    """Copy every job result (+ predictions) of ``dirs`` into ``into``; list the jobs of the job lists found in
    ``dirs`` that none of them holds. Files already in ``into`` with the same name are left alone."""
    target = Path(into)
    report = MergeReport(into=str(target))
    expected: dict[str, dict] = {}
    found: set[str] = set()
    for d in map(Path, dirs):
        if not d.is_dir():
            raise ValueError(f"not a directory: {d}")
        for jobs_file in sorted(d.glob(f"*{JOBS_SUFFIX}")):
            for line in jobs_file.read_text(encoding="utf-8").splitlines():
                if line.strip():
                    entry = json.loads(line)
                    expected[entry["id"]] = entry
        for path in sorted(d.glob("*.json")):
            if not JOB_FILE.match(path.name) or results.read(path) is None:
                continue
            found.add(path.stem.rsplit("__", 1)[-1])
            if (target / path.name).is_file():
                report.present.append(path.name)
                continue
            target.mkdir(parents=True, exist_ok=True)
            side = path.with_suffix(".predictions.jsonl")
            if side.is_file():  # the predictions first: the result never points at a file not there yet
                atomic_write_text(target / side.name, side.read_text(encoding="utf-8"))
            tmp = target / f".{path.name}.merge.tmp"
            shutil.copyfile(path, tmp)
            os.replace(tmp, target / path.name)
            report.copied.append(path.name)
    report.missing = [e for i, e in sorted(expected.items()) if i not in found]
    return report
