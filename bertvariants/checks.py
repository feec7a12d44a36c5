"""Input checks, one implementation each: text, numbers in a range, probabilities, masked sentences, lists of texts.

Every library function and UI handler that takes user input checks it with these, so one kind of mistake gets
one wording everywhere ("Sentence is empty: please enter some text", "top-k must be between 1 and 20, got 50").
Each raises ValueError with a message meant for the person who typed the input; the UI shows it in place
(``bertvariants.ui.common.safe``) and the API returns it as the error. Each returns the checked value (a
number converted to int / float, a text unchanged) so a caller can check and use in one line.
"""

from __future__ import annotations

import math
from typing import Sequence

MASK_SPELLINGS = ("[MASK]", "<mask>")  # BERT / ALBERT and RoBERTa / BART spellings of the mask token


def number(value, name: str, *, lo: float = -math.inf, hi: float = math.inf, integer: bool = False,
           lo_open: bool = False):
    """A finite number in [lo, hi] (``lo_open``: (lo, hi]); an int when ``integer`` (a whole float is accepted:
    sliders send 5.0). NaN, None, text, booleans or out of range -> ValueError naming ``name`` and the range."""
    try:
        if isinstance(value, bool):
            raise TypeError
        x = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number, got {value!r}") from None
    kind = "a whole number " if integer else ""
    if lo_open:
        wanted = f"{kind}> {lo:g}" + (f" and ≤ {hi:g}" if math.isfinite(hi) else "")
    elif math.isfinite(lo) and math.isfinite(hi):
        wanted = f"{kind}between {lo:g} and {hi:g}"
    else:
        wanted = f"{kind}≥ {lo:g}" if math.isfinite(lo) else f"{kind}≤ {hi:g}"
    if math.isnan(x) or math.isinf(x):
        raise ValueError(f"{name} must be a finite number: {wanted}, got {value!r}")
    inside = (lo < x if lo_open else lo <= x) and x <= hi
    if not inside or (integer and x != int(x)):
        raise ValueError(f"{name} must be {wanted}, got {x:g}")
    return int(x) if integer else x


def probability(value, name: str) -> float:
    """A number in [0, 1]."""
    return number(value, name, lo=0.0, hi=1.0)


def text(value, name: str, *, max_chars: int | None = None, allow_empty: bool = False,
         hint: str = "please enter some text") -> str:
    """A string, not blank (unless ``allow_empty``), at most ``max_chars`` characters (None: a caller that limits
    the length in tokens instead); returned unchanged. ``None`` counts as empty (an API call that leaves the field
    out)."""
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise ValueError(f"{name} must be text, got {type(value).__name__}")
    if not allow_empty and not value.strip():
        raise ValueError(f"{name} is empty: {hint}")
    if max_chars is not None and len(value) > max_chars:
        raise ValueError(f"{name} has {len(value):,} characters; the limit is {max_chars:,}")
    return value


def masked(value, name: str, *, max_chars: int, spellings: Sequence[str] = MASK_SPELLINGS) -> str:
    """A text holding at least one mask token (any of ``spellings``)."""
    value = text(value, name, max_chars=max_chars)
    if not any(m in value for m in spellings):
        others = f" (or {', '.join(spellings[1:])})" if len(spellings) > 1 else ""
        raise ValueError(f"no mask token in the text: put {spellings[0]}{others} where a word should be predicted")
    return value


def token_count(n_tokens: int, name: str, *, limit: int, why: str = "") -> int:
    """A tokenized input's length against the model's limit; ``why``: what the limit is for (said in the message)."""
    if n_tokens > limit:
        raise ValueError(f"{name} has {n_tokens:,} tokens; the limit is {limit:,}{' ' + why if why else ''}: "
                         "shorten it")
    return n_tokens


def tokenized(value, name: str, *, tokenizer, max_tokens: int) -> tuple[str, list[int]]:
    """A non-blank text (stripped) and its token ids with special tokens, at most ``max_tokens`` of them."""
    value = text(value, name).strip()
    ids = tokenizer(value, truncation=False)["input_ids"]
    token_count(len(ids), name, limit=max_tokens)
    return value, ids


def same_length(first: Sequence, second: Sequence, first_name: str, second_name: str) -> None:
    """Two parallel lists (questions and contexts, A and B sentences) have one item each per example."""
    if len(first) != len(second):
        raise ValueError(f"got {len(first)} {first_name} but {len(second)} {second_name}")
