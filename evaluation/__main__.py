"""Command line of the evaluation harness.

    python -m evaluation run --task TASK --model MODEL [--data PATH] [--split SPLIT] [--limit N]
                             [--batch-size B] [--output DIR]
    python -m evaluation score --metric {rouge,squad,squad_v2,accuracy,f1,mcc,pearson,spearman}
                               --predictions FILE --references FILE
    python -m evaluation sweep MANIFEST.yml [--shard i/N] [--output DIR]   (a job list: evaluation/sweep.py)
    python -m evaluation merge DIR [DIR ...] [--into DIR]
    python -m evaluation leaderboard [--results DIR]
    python -m evaluation bench ...            (performance benchmarks: evaluation/bench/)

``run`` and ``score`` print progress on stderr and the JSON result object as the last line of stdout (``sweep`` and
``merge``: their report). Under ``accelerate launch`` ``run`` splits its forward passes across the processes and
rank 0 alone prints and writes (:mod:`evaluation.parallel`).
Bad input ends with exit status 2 and a one-line ``error: ...`` on stderr (BERTVARIANTS_DEBUG=1 shows the traceback).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np

import evaluation.bench  # called through the package (evaluation.bench.main), as a test replaces it
from bertvariants.io import sha256_file
from bertvariants.paths import portable_path, results_dir

from . import parallel
from .loaders import Dataset, Example, pick_field, read_jsonl
from .metrics import glue
from .metrics import rouge as rouge_m
from .metrics import squad as squad_m
from .record import Outcome, make_result
from .tasks import BENCHMARKS

SCORE_METRICS = ("rouge", "squad", "squad_v2", "accuracy", "f1", "mcc", "pearson", "spearman")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m evaluation", description="Evaluation harness for the BERT variants.")
    sub = p.add_subparsers(dest="command", required=True)

    r = sub.add_parser("run", help="evaluate a model on a benchmark and write one JSON result")
    r.add_argument("--task", required=True, help="one of: " + ", ".join(b.key for b in BENCHMARKS))
    r.add_argument("--model", required=True,
                   help="minilm (packaged all-MiniLM-L6-v2), lead3, a spaces.yml task key, a local checkpoint "
                        "directory, or a Hub id (online only)")
    r.add_argument("--data", help="evaluation file in the task's original format (default: ../shared/data)")
    r.add_argument("--train-data", help="training file for a linear probe (default: the task's train file)")
    r.add_argument("--split", help="split name (default: the task's evaluation split)")
    r.add_argument("--limit", type=int, help="evaluate only the first N examples")
    r.add_argument("--batch-size", type=int, default=64)
    r.add_argument("--probe-train-size", type=int, default=8000,
                   help="at most this many training examples for a linear probe (a seeded sample)")
    r.add_argument("--seed", type=int, default=0, help="seed of the probe sample, CV folds and bootstrap")
    r.add_argument("--output", default="results", help="directory for the result JSON (default: results/)")

    s = sub.add_parser("score", help="score a prediction file against references (no model)")
    s.add_argument("--metric", required=True, choices=SCORE_METRICS)
    s.add_argument("--predictions", required=True, help="rouge: text (one summary per line) or jsonl; "
                   "squad: {id: answer} json; others: one value per line, a json list or jsonl")
    s.add_argument("--references", required=True, help="rouge: text or jsonl; squad: the official dataset json")
    s.add_argument("--predictions-field", help="jsonl field holding the predictions")
    s.add_argument("--references-field", help="jsonl field holding the references")
    s.add_argument("--na-probs", help="squad_v2: json {id: probability of no answer}")
    s.add_argument("--na-prob-thresh", type=float, default=1.0, help="squad_v2: no-answer threshold (default 1.0)")
    s.add_argument("--no-split", action="store_true", help="rouge: do not split sentences for ROUGE-Lsum")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--task", help="record the score as a result of this task (with --output)")
    s.add_argument("--model", help="model label of the recorded result, e.g. 'facebook/bart-large-cnn (outputs)'")
    s.add_argument("--split", default="test")
    s.add_argument("--variant", default="", help="variant label of the recorded result")
    s.add_argument("--params", type=int, help="parameter count of the model that wrote the predictions")
    s.add_argument("--output", help="write a result JSON here (needs --task and --model)")

    sw = sub.add_parser("sweep", help="run a manifest's models × tasks × seeds (one shard of them), one result file "
                        "per job, skipping jobs already done")
    sw.add_argument("manifest",
                    help="YAML: grid: [{models, tasks, seeds, split, limit, options, ...}] (evaluation/sweep.py)")
    sw.add_argument("--shard", help="i/N: run only the jobs whose stable hash falls in shard i of N (0 ≤ i < N), "
                    "e.g. --shard $SLURM_ARRAY_TASK_ID/$N")
    sw.add_argument("--output", help="directory for the jobs' result files (default: the manifest's output, else "
                    "sweep-results/)")
    sw.add_argument("--list", action="store_true", help="print this shard's jobs and their commands; run nothing")

    mg = sub.add_parser("merge", help="collect sweep shards' result files into the results store; name missing jobs")
    mg.add_argument("dirs", nargs="+", help="the shards' output directories")
    mg.add_argument("--into", help="results directory (default: $BERTVARIANTS_RESULTS_DIR, else results/)")

    lb = sub.add_parser("leaderboard", help="print the aggregated results table")
    lb.add_argument("--results", default="results", help="results directory (default: results/)")
    lb.add_argument("--no-paper", action="store_true", help="measured rows only")
    lb.add_argument("--csv", help="also write the table as CSV (formula cells escaped)")
    return p


# --------------------------------------------------------------------------------------------
# Reading prediction / reference files
# --------------------------------------------------------------------------------------------
def _read_values(path: str, field: str | None, candidates: tuple[str, ...]) -> list:
    p = Path(path)
    if not p.is_file():
        raise ValueError(f"file not found: {p}")
    if p.suffix == ".jsonl":
        rows = read_jsonl(p)
        f = pick_field(rows[0], field, candidates, p, "value")
        return [r[f] for r in rows]
    if p.suffix == ".json":
        data = json.loads(p.read_text(encoding="utf-8"))
        if not isinstance(data, list):
            raise ValueError(f"{p.name}: expected a JSON list of values")
        return data
    lines = p.read_text(encoding="utf-8").splitlines()
    while lines and not lines[-1].strip():
        lines.pop()  # a trailing newline is not an extra summary
    return lines


def _as_labels(values: list, name: str) -> np.ndarray:
    try:
        return np.array([float(v) for v in values])
    except (TypeError, ValueError):
        return np.array([str(v).strip() for v in values])


def _json_file(path: str, what: str):
    p = Path(path)
    if not p.is_file():
        raise ValueError(f"{what} file not found: {p}")
    try:
        return json.loads(p.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ValueError(f"{p.name}: not valid JSON ({exc.msg} at line {exc.lineno})") from None


def score(args):
    """``python -m evaluation score``: a prediction file against references, no model. Returns an Evaluation."""
    from .evaluators.generate import squad_outcome
    from .runner import Evaluation

    records: list[dict]
    if args.metric == "rouge":
        preds = [str(x) for x in _read_values(args.predictions, args.predictions_field,
                                              ("prediction", "summary", "output"))]
        refs = [str(x) for x in _read_values(args.references, args.references_field,
                                             ("highlights", "summary", "reference", "target"))]
        if len(preds) != len(refs):
            raise ValueError(f"{len(preds)} predictions but {len(refs)} references: ROUGE needs one line per summary "
                             "on both sides, in the same order")
        res = rouge_m.rouge(preds, refs, split=not args.no_split)
        per = res.per_example["rougeLsum"]
        records = [{"id": str(i), "input": "", "prediction": p, "reference": r, "error": round(1 - s / 100, 4)}
                   for i, (p, r, s) in enumerate(zip(preds, refs, per))]
        outcome = Outcome(res.metrics, lambda idx: float(per[idx].mean()), records,
                          {"rouge": "rouge-score, use_stemmer=True" + ("" if args.no_split else
                                                                       ", Lsum on one sentence per line")})
        primary, n = "rougeLsum", len(preds)
    elif args.metric in ("squad", "squad_v2"):
        answers = _json_file(args.predictions, "predictions")
        data = _json_file(args.references, "references")
        if not isinstance(answers, dict):
            raise ValueError(f"{Path(args.predictions).name}: SQuAD predictions must be a JSON object {{id: answer}}")
        if not isinstance(data, dict) or "data" not in data:
            raise ValueError(f"{Path(args.references).name}: not an official SQuAD dataset json")
        na = _json_file(args.na_probs, "na-probs") if args.na_probs else None
        if args.metric == "squad":
            sc = squad_m.squad_v1(data["data"], answers)
        else:
            sc = squad_m.squad_v2(data["data"], answers, na_probs=na, na_prob_thresh=args.na_prob_thresh)
        examples = [Example(qa["id"], qa["question"], None, [a["text"] for a in qa["answers"]])
                    for qa in squad_m.iter_questions(data["data"])]
        outcome = squad_outcome(sc, Dataset("squad", "", Path(args.references), examples), answers, {})
        if sc.metrics.get("best_exact_thresh") is not None:
            outcome.details["best_thresholds"] = {k: sc.metrics[k] for k in ("best_exact_thresh", "best_f1_thresh")}
        primary, n = "f1", len(outcome.records)
    else:
        preds = _as_labels(_read_values(args.predictions, args.predictions_field, ("prediction", "label")),
                           "predictions")
        refs = _as_labels(_read_values(args.references, args.references_field, ("label", "reference", "score")),
                          "references")
        if len(preds) != len(refs):
            raise ValueError(f"{len(preds)} predictions but {len(refs)} references")
        if args.metric in ("pearson", "spearman") and (preds.dtype.kind not in "fi" or refs.dtype.kind not in "fi"):
            raise ValueError(f"{args.metric} needs numbers on both sides")
        fn = glue.FUNCTIONS[args.metric]
        value = fn(preds, refs)
        records = [{"id": str(i), "input": "", "prediction": p.item(), "reference": r.item(),
                    "error": float(abs(float(p) - float(r))) if preds.dtype.kind in "fi" and refs.dtype.kind in "fi"
                    else float(p != r)} for i, (p, r) in enumerate(zip(preds, refs))]
        outcome = Outcome({args.metric: value}, lambda idx: fn(preds[idx], refs[idx]), records, {})
        primary, n = args.metric, len(preds)
    result = make_result(task=args.task or args.metric, model=args.model or Path(args.predictions).name,
                         split=args.split, n=n, outcome=outcome, primary=primary, seconds=0.0, device="none",
                         seed=args.seed, data_sha256=sha256_file(args.references),
                         model_revision="predictions:sha256:" + sha256_file(args.predictions)[:16],
                         variant=args.variant, params=args.params,
                         extra={"metric": args.metric, "source": "measured",
                                "predictions": portable_path(args.predictions),
                                "references": portable_path(args.references)})
    # no model ran: no throughput
    return Evaluation(replace(result, examples_per_second=None, latency_ms=None), outcome.records)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "bench":
        return evaluation.bench.main(argv[1:]) or 0
    args = _parser().parse_args(argv)
    try:
        return _dispatch(args, argv)
    except KeyboardInterrupt:  # Ctrl-C: results are written atomically at the very end, so nothing partial exists
        print("interrupted: no result was written (a result file appears only when a run completes)", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - bad input must end in one line, not a traceback
        if os.environ.get("BERTVARIANTS_DEBUG"):
            raise
        msg = exc.args[0] if exc.args and isinstance(exc.args[0], str) else str(exc)
        print(f"error: {' '.join(str(msg).split())}", file=sys.stderr)
        return 2


def sweep_main(args) -> int:
    """``sweep``: this shard's jobs, one after the other; the report as the last line of stdout. Exit 1 when a job
    failed (its error is in the report; re-running the shard retries only the jobs without a result)."""
    from . import sweep

    manifest = sweep.read_manifest(args.manifest)
    index, count = sweep.parse_shard(args.shard)
    jobs = sweep.shard_jobs(manifest.jobs, index, count)
    if args.list:
        for job in jobs:
            print(f"{job.id}  {job.command()}")
        return 0
    out = Path(args.output or manifest.output)
    sweep.write_job_list(manifest, out)
    report = sweep.run_jobs(jobs, out, shard=f"{index}/{count}")
    print(json.dumps({**report.as_dict(), "output": str(out), "manifest_jobs": len(manifest.jobs)}))
    return 1 if report.failed else 0


def merge_main(args) -> int:
    """``merge``: the shards' job files into the results store; exit 1 (with the missing jobs' commands on stderr)
    when a manifest's job has no result in any directory."""
    from . import sweep

    report = sweep.merge(args.dirs, args.into or results_dir())
    for entry in report.missing:
        print(f"missing {entry['id']}: {entry['command']}", file=sys.stderr)
    print(json.dumps(report.as_dict()))
    return 1 if report.missing else 0


def _dispatch(args, argv: list[str]) -> int:
    from . import results

    if args.command == "sweep":
        return sweep_main(args)
    if args.command == "merge":
        return merge_main(args)

    if args.command == "leaderboard":
        df = results.leaderboard(args.results, include_paper=not args.no_paper)
        if df.empty:
            raise ValueError(f"no results in {args.results}")
        import pandas as pd

        from .pareto import pareto_columns

        table = pd.concat([results.flat(df), pareto_columns(df)[["pareto"]]], axis=1)
        if args.csv:
            results.to_csv(table, args.csv)
        cols = ["task", "model", "source", "split", "primary_metric", "score", "ci95_low", "ci95_high", "seeds",
                "seed_sd", "seed_ci95_low", "seed_ci95_high", "params_millions", "pareto"]
        with pd.option_context("display.width", 200, "display.max_rows", 500, "display.max_colwidth", 40):
            print(table[cols].to_string(index=False))
        return 0
    if args.command == "run":
        from . import runner

        if args.limit is not None and args.limit < 1:
            raise ValueError(f"--limit must be ≥ 1, got {args.limit}")
        done = runner.run(args.task, args.model, data=args.data, split=args.split, limit=args.limit,
                          batch_size=args.batch_size, seed=args.seed, probe_train_size=args.probe_train_size,
                          train_data=args.train_data)
    else:
        done = score(args)
        if args.output and not (args.task and args.model):
            raise ValueError("score --output needs --task and --model to label the result")

    if not parallel.is_main():  # under accelerate launch: rank 0 alone prints and writes the one result
        return 0
    result = done.result.with_extra(command="python -m evaluation " + " ".join(argv))
    out = getattr(args, "output", None)
    if out:
        path = results.write_result(result.to_dict(), out, done.records)
        result = result.with_extra(file=str(path))
    print(json.dumps(result.to_dict(), ensure_ascii=False, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
