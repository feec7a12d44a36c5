"""CLI: ``python -m bertvariants.train RECIPE [--steps N] [--scale X] [--seed S] [--output DIR] [--data PATH]``.

``python -m bertvariants.train list`` shows the recipes; ``python -m bertvariants.train all`` builds every
offline default in dependency order. The same command runs multi-GPU / multi-node under
``accelerate launch -m bertvariants.train RECIPE`` (bf16 on GPU).
"""

from __future__ import annotations

import argparse
import sys
import time

from . import RECIPES, recipe, run_recipe
from .gpu_bundle import main as bundle_main


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bertvariants.train", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("recipe", help="one of: " + ", ".join(r.name for r in RECIPES)
                   + ", all, list (or: ship NAME..., bench, gpu-bundle)")
    p.add_argument("--steps", type=int, help="optimizer steps at scale 1 (default: the recipe's)")
    p.add_argument("--scale", type=float, help="multiply steps (e.g. 20 for a GPU run)")
    p.add_argument("--seed", type=int, help="seed (default 42); the same seed reproduces a run")
    p.add_argument("--seeds", type=int, help="run K seeds (--seed, +1, …) under --set run_name=NAME: one leaderboard "
                   "row with the mean and a 95%% interval over seeds (train/seeds.py)")
    p.add_argument("--batch-size", type=int, dest="batch_size")
    p.add_argument("--lr", type=float)
    p.add_argument("--max-length", type=int, dest="max_length")
    p.add_argument("--output", help="checkpoint directory (default: <models_dir>/<name>)")
    p.add_argument("--data", help="data directory with the shared layout, or one input file "
                   "(default: $BERTVARIANTS_DATA, else ../shared/data)")
    p.add_argument("--base-model", dest="base_model", help="start from this local checkpoint instead of MiniLM")
    p.add_argument("--log-every", type=int, dest="log_every", help="steps between loss-curve rows")
    p.add_argument("--eval-limit", type=int, dest="eval_limit", help="evaluate on at most N examples")
    p.add_argument("--max-minutes", type=float, dest="max_minutes",
                   help="stop training after this many minutes (SIGTERM does the same); still saves and evaluates")
    p.add_argument("--resume", action="store_true", default=None,
                   help="continue from the training state the last run saved (<output>.train-state.pt)")
    p.add_argument("--checkpoint-minutes", type=float, dest="checkpoint_minutes",
                   help="minutes between training-state saves (default 5)")
    p.add_argument("--threads", type=int, help="CPU threads for torch (1 is fastest on an oversubscribed machine)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="any other setting of the recipe's config, e.g. --set augment=1 --set alpha=0 (repeatable)")
    p.add_argument("--no-progress", action="store_true", help="no tqdm bars")
    return p


def parse_settings(items: list[str]) -> dict:
    """``["augment=1", "student_layers=[0, 3]"]`` -> ``{"augment": 1, "student_layers": (0, 3)}`` (YAML scalars)."""
    import yaml

    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"--set expects KEY=VALUE, got {item!r}")
        parsed = yaml.safe_load(value)
        out[key.strip().replace("-", "_")] = tuple(parsed) if isinstance(parsed, list) else parsed
    return out


def ship_main(names: list[str]) -> int:
    """``python -m bertvariants.train ship NAME...``: copy compact checkpoints from the models directory into
    ``bertvariants/assets/models`` (what a fresh clone serves); ``electra/discriminator`` ships as
    ``electra-discriminator``."""
    from ..serving.manifest import load_manifest
    from .lora import ship

    if not names:
        print("usage: python -m bertvariants.train ship NAME [NAME ...] (checkpoints under the models directory, "
              "trained with --set lora_rank=R)", file=sys.stderr)
        return 2
    models_dir = load_manifest().models_dir
    for name in names:
        try:
            dst = ship(models_dir / name, name=name.replace("/", "-"))
        except ValueError as exc:
            print(f"{name}: {exc}", file=sys.stderr)
            return 2
        size = sum(f.stat().st_size for f in dst.iterdir() if f.suffix == ".safetensors")
        print(f"{name} -> {dst} ({size / 1e6:.2f} MB of weights)")
    return 0


def seeds_main(names: list[str], overrides: dict, k: int, *, progress: bool) -> int:
    """``--seeds K``: each recipe K times with consecutive seeds (:func:`bertvariants.train.seeds.run_seeds`)."""
    from .seeds import run_seeds

    if len(names) > 1:
        print("--seeds runs one recipe (not 'all'): its runs share one --set run_name", file=sys.stderr)
        return 2
    for name in names:
        try:
            reports, summary = run_seeds(name, overrides, k, progress=progress)
        except ValueError as exc:
            print(f"{name}: {exc}", file=sys.stderr)
            return 2
        for report in reports:
            print(f"{name}: {report.fit.steps} steps in {report.fit.seconds:.0f} s -> {report.output}")
        print(f"{name} over seeds {', '.join(map(str, summary.seeds))}: {summary.text}")
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["ship"]:
        return ship_main(argv[1:])
    if argv[:1] == ["bench"]:  # the training-step benchmark (plain PyTorch step vs the lab's), evaluation's
        from evaluation.bench.train_steps import main as bench_main

        return bench_main(argv[1:])
    # every compute-bound recipe on one GPU from ≤ 64 MiB of inputs (train/gpu_bundle.py)
    if argv[:1] == ["gpu-bundle"]:
        return bundle_main(argv[1:])
    args = parser().parse_args(argv)
    if args.recipe == "list":
        for r in RECIPES:
            print(f"{r.name:16s} -> {', '.join('models/' + b for b in r.builds):45s} ≈{r.minutes:3d} min  {r.summary}")
        return 0
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    overrides = {k: v for k, v in vars(args).items() if k not in ("recipe", "no_progress", "threads", "set", "seeds")}
    try:
        overrides.update(parse_settings(args.set))
        names = [r.name for r in RECIPES] if args.recipe == "all" else [recipe(args.recipe).name]
    except ValueError as exc:
        print(exc, file=sys.stderr)
        return 2
    if args.recipe == "all" and args.output:
        print("--output cannot be used with 'all' (each recipe has its own directory)", file=sys.stderr)
        return 2
    if args.seeds is not None:
        return seeds_main(names, overrides, args.seeds, progress=not args.no_progress)
    start = time.perf_counter()
    for name in names:
        try:
            report = run_recipe(name, overrides, progress=not args.no_progress)
        except ValueError as exc:
            print(f"{name}: {exc}", file=sys.stderr)
            return 2
        shown = ", ".join(f"{k}={v:.4f}" for k, v in report.metrics.items())
        print(f"{name}: {report.fit.steps} steps in {report.fit.seconds:.0f} s -> {report.output} | {shown}")
    if len(names) > 1:
        print(f"all done in {time.perf_counter() - start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
