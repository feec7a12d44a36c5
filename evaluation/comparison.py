"""Two runs side by side: their metrics, settings and package versions, the paired significance test, and the
examples on which they disagree (the Leaderboard's two-run comparison view; no gradio here).

Runs are result file names in the results directory. Both must be of the same task and split (ValueError
otherwise: their numbers would not be comparable); the paired test (:mod:`evaluation.significance`) needs both
runs' stored predictions, and without them the view falls back to the runs' 95% intervals and says so.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import pandas as pd

from . import significance as sig
from .record import Result

MAX_DISAGREEMENTS = 200
RUN_FIELDS = ("model", "variant", "task", "split", "n", "primary_metric")
SETUP_FIELDS = ("params", "latency_ms", "examples_per_second", "seconds", "device", "seed", "limit", "data",
                "data_sha256", "model_revision", "model_path", "timestamp")


@dataclass(frozen=True)
class RunComparison:
    """What the two-run view shows: a summary (markdown), the settings side by side, the disagreements."""

    summary: str
    settings: pd.DataFrame  # field, A, B, differs
    disagreements: pd.DataFrame  # one row per example the runs predict differently, biggest error gap first
    test: sig.PairedTest | None  # None when the runs have no shared predictions to test on


def _text(value) -> str:
    """A settings cell: numbers with 4 significant digits, dicts / lists compact, missing as an empty cell."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, (int, float)):
        return f"{value:.4g}" if isinstance(value, float) else f"{value:,}"
    if isinstance(value, (dict, list, tuple)):
        return (", ".join(f"{k}={v}" for k, v in value.items()) if isinstance(value, dict)
                else ", ".join(map(str, value)))
    return str(value)


def _flat(prefix: str, value, out: dict) -> None:
    if isinstance(value, dict) and value:
        for k, v in value.items():
            _flat(f"{prefix}.{k}", v, out)
    else:
        out[prefix] = value


def record_fields(result: Result) -> dict[str, object]:
    """The fields a run is compared on, in display order: identity, every metric and its interval, the setup
    (size, speed, device, seed, data and model hashes), the method, package versions and training settings."""
    record = result.to_dict()
    out: dict[str, object] = {k: record.get(k) for k in RUN_FIELDS}
    for k, v in sorted((record.get("metrics") or {}).items()):
        out[f"metric: {k}"] = v
    ci = record.get("ci95") or {}
    out["95% CI"] = f"{_text(ci.get('low'))} – {_text(ci.get('high'))}" if ci else None
    out.update({k: record.get(k) for k in SETUP_FIELDS})
    details = record.get("details") if isinstance(record.get("details"), dict) else {}
    for k, v in details.items():  # how it was run: method, masking, probe, ... (scalars only)
        if isinstance(v, (str, int, float, bool)):
            out["method" if k == "method" else f"detail: {k}"] = v
    for k, v in sorted((record.get("versions") or {}).items()):
        out[f"version: {k}"] = v
    training = record.get("training") if isinstance(record.get("training"), dict) else {}
    for k in ("recipe", "steps", "seconds", "device", "precision"):
        if k in training:
            out[f"training: {k}"] = training[k]
    for k, v in sorted((training.get("config") or {}).items()):
        _flat(f"training config: {k}", v, out)
    return out


def settings_table(record_a: Result, record_b: Result) -> pd.DataFrame:
    """field | A | B | differs ("≠" where the two runs differ), over the union of both runs' fields."""
    a, b = record_fields(record_a), record_fields(record_b)
    rows = [{"field": k, "A": _text(a.get(k)), "B": _text(b.get(k))} for k in dict.fromkeys([*a, *b])]
    table = pd.DataFrame(rows, columns=["field", "A", "B"])
    table = table[(table["A"] != "") | (table["B"] != "")]
    return table.assign(differs=["≠" if x != y else "" for x, y in zip(table["A"], table["B"])]).reset_index(drop=True)


def disagreements(pair: sig.Pair, *, top: int = MAX_DISAGREEMENTS) -> tuple[pd.DataFrame, dict[str, int]]:
    """The shared examples the two runs predict differently, the largest error gap first (at most ``top``), and
    counts: ``disagree``, ``a_better``, ``b_better`` (lower stored error), ``shared``."""
    a, b = pair.a, pair.b
    differ = a["prediction"].astype(str) != b["prediction"].astype(str)
    ea, eb = (pd.to_numeric(x.get("error", pd.Series(float("nan"), index=x.index)), errors="coerce") for x in (a, b))
    better = pd.Series("tie", index=a.index).mask(ea < eb, "A").mask(eb < ea, "B")
    table = pd.DataFrame({"id": a["id"], "reference": a.get("reference"), "A: prediction": a["prediction"],
                          "B: prediction": b["prediction"], "A: error": ea, "B: error": eb, "better": better,
                          "input": a.get("input", pd.Series("", index=a.index))})[differ]
    table = table.assign(_gap=(table["A: error"] - table["B: error"]).abs()).sort_values(
        "_gap", ascending=False, kind="stable", na_position="last").drop(columns="_gap")
    counts = {"shared": pair.n, "disagree": int(differ.sum()), "a_better": int((better[differ] == "A").sum()),
              "b_better": int((better[differ] == "B").sum())}
    return table.head(top).reset_index(drop=True), counts


def _label(record: Result) -> str:
    return f"{record.model} ({record.task} {record.split}, {str(record.timestamp)[:10]})"


def _interval_note(ra: Result, rb: Result, why: str) -> str:
    primary = ra.primary_metric
    va, vb = (r.metrics.get(primary) for r in (ra, rb))
    ia = sig.interval(va, (ra.ci95 or {}).get("low"), (ra.ci95 or {}).get("high"))
    ib = sig.interval(vb, (rb.ci95 or {}).get("low"), (rb.ci95 or {}).get("high"))
    verdict = "overlap: no clear difference" if ia[0] <= ib[1] and ib[0] <= ia[1] else "do not overlap"
    return (f"No paired test ({why}). On {primary}: A {_text(va)} [{_text(ia[0])}, {_text(ia[1])}], B {_text(vb)} "
            f"[{_text(ib[0])}, {_text(ib[1])}]; the 95% intervals {verdict} (CI overlap is a cruder rule than a "
            "paired test).")


def compare(directory: str | os.PathLike, run_a: str, run_b: str, *, resamples: int = sig.RESAMPLES,
            top: int = MAX_DISAGREEMENTS) -> RunComparison:
    """The two-run view of ``run_a`` and ``run_b`` (result file names); ValueError for an unknown run, the same
    run twice, or runs of different tasks or splits."""
    where = Path(directory)
    (fa, ra), (fb, rb) = sig.run_record(where, run_a), sig.run_record(where, run_b)
    if fa == fb:
        raise ValueError(f"pick two different runs (both are {fa})")
    if (ra.task, ra.split) != (rb.task, rb.split):
        raise ValueError(f"{ra.model} was scored on {ra.task} {ra.split} but {rb.model} on {rb.task} "
                         f"{rb.split}: pick two runs of the same task and split")
    head = f"**A** = {_label(ra)} · **B** = {_label(rb)}"
    empty = pd.DataFrame(columns=["id", "reference", "A: prediction", "B: prediction", "A: error", "B: error",
                                  "better", "input"])
    try:
        pair = sig.pair(where, fa, fb)
    except ValueError as exc:
        return RunComparison(f"{head}\n\n{_interval_note(ra, rb, str(exc))}", settings_table(ra, rb), empty, None)
    table, counts = disagreements(pair, top=top)
    shown = f" (the {len(table)} with the largest error gap shown)" if counts["disagree"] > len(table) else ""
    said = (f"They predict differently on **{counts['disagree']}** of {counts['shared']} shared examples{shown}: "
            f"A has the lower error on {counts['a_better']}, B on {counts['b_better']}.")
    try:
        test = sig.significance(where, fa, fb, resamples=resamples)
        verdict = test.text
    except ValueError as exc:
        test, verdict = None, _interval_note(ra, rb, str(exc))
    return RunComparison(f"{head}\n\n{verdict}\n\n{said}", settings_table(ra, rb), table, test)


def default_pair(rows: pd.DataFrame, directory: str | os.PathLike) -> tuple[str, str] | None:
    """Two measured runs to compare first: the first task (in ``rows`` order) with two runs that share stored
    predictions, best first; else any two measured runs of one task and split; else None."""
    runs = rows[rows["source"] == "measured"] if len(rows) else rows
    fallback = None
    for _, g in runs.groupby(["task", "split"], sort=False):
        files = [f for f in g["file"] if isinstance(f, str) and f]
        if len(files) < 2:
            continue
        fallback = fallback or (files[0], files[1])
        with_pred = [f for f, p in zip(g["file"], g["predictions_file"]) if isinstance(p, str) and p]
        for a, b in _pairs(with_pred):
            try:
                sig.pair(directory, a, b)
            except ValueError:
                continue
            return a, b
    return fallback


def _pairs(items: list[str]) -> Iterable[tuple[str, str]]:
    return ((x, y) for i, x in enumerate(items) for y in items[i + 1:])


def run_choices(rows: pd.DataFrame) -> list[tuple[str, str]]:
    """(label, result file) of every measured run in ``rows``: the two-run view's choices."""
    runs = rows[rows["source"] == "measured"] if len(rows) else rows
    return [(f"{r.model} · {r.task} {r.split} · {str(r.timestamp)[:10]}", r.file) for r in runs.itertuples()
            if isinstance(r.file, str) and r.file]

