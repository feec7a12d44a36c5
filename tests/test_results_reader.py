"""One reader of result records: ``results.read`` -> ``Result.from_dict``, the inverse of ``Result.to_dict``."""

from __future__ import annotations

import ast
import json

import pytest

from evaluation import results
from evaluation.record import Result

from .conftest import REPO


def committed_records():
    return sorted(REPO.joinpath("results").glob("*.json")) + sorted(REPO.joinpath("models").rglob("result.json"))


@pytest.mark.parametrize("path", committed_records(), ids=lambda p: str(p.relative_to(REPO)))
def test_every_committed_record_reads_back_unchanged(path):
    raw = results.read_result(path)
    record = results.read(path)
    assert record is not None and raw is not None
    written = record.to_dict()
    assert {k: written[k] for k in raw} == raw  # every stored key comes back with its value
    assert record.primary_value == raw["metrics"].get(raw["primary_metric"])


def test_from_dict_keeps_extras_and_fills_neutral_defaults(tmp_path):
    record = Result.from_dict({"task": "stsb", "model": "m", "split": "dev", "metrics": {"spearman": 80.0},
                               "primary_metric": "spearman", "timestamp": "2026-12-08T00:00:00+00:00",
                               "training": {"recipe": "distil-student", "steps": 10}, "model_path": "models/x"})
    assert record.score == 80.0 and record.ci95 == {} and record.n == 0
    assert record.training == {"recipe": "distil-student", "steps": 10}
    assert record.extra == {"training": {"recipe": "distil-student", "steps": 10}, "model_path": "models/x"}
    assert Result.from_dict(record.to_dict()) == record
    assert Result.from_dict({**record.to_dict(), "training": "not an object"}).training is None
    path = tmp_path / "r.json"
    path.write_text(json.dumps({"task": "stsb"}), encoding="utf-8")
    with pytest.warns(UserWarning, match="missing fields"):
        assert results.read(path) is None


def above_core():
    """Modules that may import evaluation (the layers above core): evaluation, train, ui. Core modules (the
    resolver reading one field of a trained model's record) sit below the Result type and read JSON with io."""
    yield from REPO.joinpath("evaluation").rglob("*.py")
    for layer in ("train", "ui"):
        yield from REPO.joinpath("bertvariants", layer).rglob("*.py")


def test_no_module_reads_a_result_record_by_hand():
    """``read_result`` (the validated dict) is results.read's own step; everything else takes a Result."""
    offenders = []
    for path in above_core():
        if path == REPO / "evaluation" / "results.py":
            continue
        source = path.read_text(encoding="utf-8")
        for node in ast.walk(ast.parse(source)):
            name = node.attr if isinstance(node, ast.Attribute) else node.id if isinstance(node, ast.Name) else ""
            if name == "read_result":
                offenders.append(f"{path.relative_to(REPO)}:{node.lineno} calls read_result")
            if isinstance(node, ast.Call) and "result.json" in ast.unparse(node) and "loads" in ast.unparse(node):
                offenders.append(f"{path.relative_to(REPO)}:{node.lineno} parses a result.json by hand")
    assert not offenders, "read records with evaluation.results.read: " + "; ".join(sorted(set(offenders)))
