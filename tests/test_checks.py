"""The input checks (bertvariants/checks.py): one wording per mistake, and no second copy elsewhere."""

from __future__ import annotations

import ast
import math
import re

import pytest

from bertvariants import checks

from .conftest import REPO


@pytest.mark.parametrize("value, kw, message", [
    (None, dict(lo=1, hi=5), r"top-k must be a number, got None"),
    ("five", dict(lo=1, hi=5), r"must be a number, got 'five'"),
    (True, dict(lo=0, hi=5), r"must be a number, got True"),
    (math.nan, dict(lo=1, hi=5), r"must be a finite number"),
    (math.inf, dict(lo=1, hi=5), r"must be a finite number"),
    (9, dict(lo=1, hi=5), r"top-k must be between 1 and 5, got 9"),
    (2.5, dict(lo=1, hi=5, integer=True), r"must be a whole number between 1 and 5, got 2.5"),
    (-1, dict(lo=0), r"top-k must be ≥ 0, got -1"),
    (0, dict(lo=0, lo_open=True), r"top-k must be > 0, got 0"),
])
def test_number_refuses_with_one_wording(value, kw, message):
    with pytest.raises(ValueError, match=message):
        checks.number(value, "top-k", **kw)


def test_number_returns_the_converted_value():
    assert checks.number("3", "k", lo=1, hi=5, integer=True) == 3
    assert isinstance(checks.number(5.0, "k", lo=1, hi=5, integer=True), int)
    assert checks.number(0.25, "p", lo=0.0, lo_open=True) == 0.25
    assert checks.probability(1, "ratio") == 1.0
    with pytest.raises(ValueError, match=r"ratio must be between 0 and 1, got 1.5"):
        checks.probability(1.5, "ratio")


@pytest.mark.parametrize("value, message", [
    (None, r"Sentence is empty: please enter some text"),
    ("   \n", r"Sentence is empty"),
    (12, r"Sentence must be text, got int"),
    ("x" * 11, r"Sentence has 11 characters; the limit is 10"),
])
def test_text_refuses_with_one_wording(value, message):
    with pytest.raises(ValueError, match=message):
        checks.text(value, "Sentence", max_chars=10)


def test_text_keeps_the_value_and_takes_a_hint():
    assert checks.text("  a b ", "Sentence", max_chars=10) == "  a b "
    assert checks.text("", "Sentence", max_chars=10, allow_empty=True) == ""
    with pytest.raises(ValueError, match=r"the note is empty: please paste a clinical note"):
        checks.text("", "the note", max_chars=10, hint="please paste a clinical note")


def test_masked_and_tokens():
    assert checks.masked("a [MASK] b", "Sentence", max_chars=50) == "a [MASK] b"
    assert checks.masked("a <mask> b", "Sentence", max_chars=50)
    with pytest.raises(ValueError, match=r"no mask token in the text: put \[MASK\] \(or <mask>\) where"):
        checks.masked("no mask here", "Sentence", max_chars=50)
    with pytest.raises(ValueError, match=r"the text has 1,200 tokens; the limit is 512 for the lens: shorten it"):
        checks.token_count(1200, "the text", limit=512, why="for the lens")
    assert checks.token_count(12, "the text", limit=512) == 12

    def tokenizer(text, truncation):
        return {"input_ids": [101, *range(len(text.split())), 102]}
    assert checks.tokenized("  two words ", "the sentence", tokenizer=tokenizer, max_tokens=4) == (
        "two words", [101, 0, 1, 102])
    with pytest.raises(ValueError, match=r"the sentence has 5 tokens; the limit is 4"):
        checks.tokenized("three words here", "the sentence", tokenizer=tokenizer, max_tokens=4)
    with pytest.raises(ValueError, match=r"got 2 questions but 1 contexts"):
        checks.same_length(["a", "b"], ["c"], "questions", "contexts")


# The messages only checks.py may write: a second copy of an input check is a second wording of one mistake.
HAND_WRITTEN = re.compile(r"is empty: |tokens; the limit|characters; the limit|must be between \S+ and \S+, got")


def hand_written_checks() -> list[str]:
    found = []
    for path in sorted(REPO.joinpath("bertvariants").rglob("*.py")):
        if path.name == "checks.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Raise) and node.exc is not None and HAND_WRITTEN.search(ast.unparse(node.exc)):
                found.append(f"{path.relative_to(REPO)}:{node.lineno}")
    return found


def test_no_input_check_is_written_twice():
    assert hand_written_checks() == [], "use bertvariants.checks (text / number / token_count / masked …)"
