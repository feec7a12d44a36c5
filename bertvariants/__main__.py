"""``python -m bertvariants models``: which model serves every task slot here, from where, its size and load time.

    python -m bertvariants models [--json] [--no-load]

One row per task of ``spaces.yml`` (resolved by :mod:`bertvariants.serving`, the one resolver): the source
(local / hub-cache / hub / trained / shipped / packaged / unavailable), the model, its weights' size on disk and
how long it took to load (``--no-load`` skips loading). Then the components that ship inside pip packages.
Exit status 1 when any slot is unavailable, so a script (or CI) can insist on a complete app.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from .io import weights_size
from .paths import portable_path


@dataclass(frozen=True)
class SlotRow:
    task: str
    tab: str
    source: str  # a serving.sources.SOURCES value, or "unavailable"
    model: str
    location: str
    size_mb: float | None
    load_seconds: float | None
    note: str = ""
    passed_over: tuple[str, ...] = ()  # earlier sources not served, each with why (e.g. a checkpoint without a head)
    warning: str = ""  # served, but something a user would see is wrong (e.g. placeholder class names)


def weights_size_mb(location: str) -> float | None:
    """Weights on disk in MB, the ELECTRA pair's two directories included; None for a Hub id."""
    path = Path(location)
    if not path.is_dir():
        return None
    return round(sum(weights_size(d) for d in (path, *(p for p in path.iterdir() if p.is_dir()))) / 1e6, 2)


def slot_rows(*, load: bool = True) -> list[SlotRow]:
    from . import serving
    from .serving.manifest import default_manifest
    from .serving.resolver import generic_labels

    rows = []
    for spec in default_manifest().tasks.values():
        try:
            res = serving.resolve(spec)
        except serving.ModelUnavailable as exc:
            rows.append(SlotRow(spec.key, spec.tab, "unavailable", "", "", None, None, str(exc)))
            continue
        seconds, note, warning = None, "", ""
        if load:
            start = time.perf_counter()
            try:
                loaded = serving.get_model(spec.key)
            except Exception as exc:  # noqa: BLE001 - a slot that resolves but fails to load is reported, not fatal
                rows.append(SlotRow(spec.key, spec.tab, "unavailable", res.label, portable_path(res.location),
                                    weights_size_mb(res.location), None, f"load failed: {exc}"))
                continue
            seconds, note = round(time.perf_counter() - start, 2), loaded.label
            res = loaded.resolution  # a load may have passed over a checkpoint without the task's head
            if spec.kind == "sequence-classification" and generic_labels(getattr(loaded.model, "config", None)):
                warning = f"class names are placeholders (LABEL_0, …): add labels: to spaces.yml tasks.{spec.key}"
        rows.append(SlotRow(spec.key, spec.tab, res.source, replace(res, skipped=()).label, portable_path(res.location),
                            weights_size_mb(res.location), seconds, note, res.skipped, warning))
    return rows


def component_rows() -> list[dict]:
    from .serving.packaged import PACKAGED_MODELS, available, locate

    return [{"name": p.name, "package": p.distribution, "model": p.hub_id, "kind": p.kind or "component",
             "available": available(p.name), "size_mb": weights_size_mb(str(locate(p.name))) if available(p.name)
             else None} for p in PACKAGED_MODELS]


def project_rows() -> list[dict]:
    """The project's shipped models that serve no slot of their own (the sentence students): where each is loaded
    from here (models/ overrides the shipped copy) and its size."""
    from .serving.manifest import default_manifest
    from .serving.shipped import SHIPPED_DIR, is_shipped
    from .serving.sources import project_model

    served = {t.shipped for t in default_manifest().tasks.values()}
    rows = []
    for folder in sorted(p for p in SHIPPED_DIR.iterdir() if is_shipped(p) and p.name not in served):
        res = project_model(folder.name)
        rows.append({"name": folder.name, "source": res.source, "location": portable_path(res.location),
                     "size_mb": weights_size_mb(res.location)})
    return rows


def table(rows: list[SlotRow], components: list[dict], project: list[dict] = ()) -> str:
    lines = [f"{'task':24s} {'source':12s} {'size MB':>8s} {'load s':>7s}  model"]
    for r in rows:
        size = f"{r.size_mb:8.1f}" if r.size_mb is not None else f"{'-':>8s}"
        load = f"{r.load_seconds:7.2f}" if r.load_seconds is not None else f"{'-':>7s}"
        what = r.model if r.source != "unavailable" else r.note
        mark = "*" if r.passed_over else " "
        lines.append(f"{r.task:23s}{mark} {r.source:12s} {size} {load}  {what.replace('`', '')}")
        lines += [f"{'':25s}* passed over: {why.replace('`', '')}" for why in r.passed_over]
        if r.warning:
            lines.append(f"{'':25s}! {r.warning}")
    lines.append("")
    lines.append("pretrained weights from pip packages:")
    for c in components:
        state = "installed" if c["available"] else "MISSING"
        size = f"{c['size_mb']:.1f} MB" if c["size_mb"] else ""
        lines.append(f"  {c['name']:20s} {state:10s} {size:>9s}  {c['model']} ({c['package']}, {c['kind']})")
    if project:
        lines.append("")
        lines.append("project models without a slot of their own (Sentence-BERT compare; load by name):")
        for r in project:
            lines.append(f"  {r['name']:20s} {r['source']:10s} {r['size_mb']:6.2f} MB  {r['location']}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bertvariants", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    m = sub.add_parser("models", help="which model serves each task slot here (exit 1 if any is unavailable)")
    m.add_argument("--json", action="store_true", help="print JSON instead of a table")
    m.add_argument("--no-load", action="store_true", help="resolve only; do not load (no load times)")
    m.add_argument("--verbose", action="store_true", help="show transformers' load reports and progress bars")
    args = p.parse_args(argv)
    if not args.verbose:  # the table is the output: no load reports or progress bars above it
        import transformers

        transformers.logging.set_verbosity_error()
        transformers.logging.disable_progress_bar()
    from .serving.device import hub_online

    hub_online()  # decide online/offline once, fast
    rows = slot_rows(load=not args.no_load)
    components, project = component_rows(), project_rows()
    if args.json:
        print(json.dumps({"slots": [asdict(r) for r in rows], "components": components, "project_models": project},
                         ensure_ascii=False))
    else:
        print(table(rows, components, project))
    return 1 if any(r.source == "unavailable" for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
