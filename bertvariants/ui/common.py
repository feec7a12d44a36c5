"""What every tab shares: the error wrapper, the tab header, and model-status lines.

Gradio lives only in ``bertvariants.ui``; the library below it raises ValueError for bad input and
ModelUnavailable when no checkpoint can serve a task.
"""

from __future__ import annotations

import functools
import logging
import math

import gradio as gr

from ..models import describe, ModelUnavailable
from ..registry import default_manifest, ManifestError, TabSpec
from .guard import wait_until_preloaded

log = logging.getLogger("bertvariants.ui")


def user_error(exc: BaseException) -> gr.Error:
    """Turn a library exception into a readable gr.Error (no traceback reaches the page)."""
    if isinstance(exc, gr.Error):
        return exc
    if isinstance(exc, (ValueError, ModelUnavailable, ManifestError, KeyError)):
        msg = exc.args[0] if exc.args else str(exc)
        return gr.Error(str(msg))
    if isinstance(exc, MemoryError):
        return gr.Error("The input is too large for this server's memory; try a shorter input.")
    log.exception("unexpected error in a handler")
    return gr.Error(f"Internal error ({type(exc).__name__}): {exc}. The server is still running; please try again.")


def safe(fn):
    """Wrap a handler so any exception becomes a gr.Error message and the app keeps serving."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        wait_until_preloaded()  # first requests never race the start-up imports (see guard.preload_lazy_imports)
        try:
            return fn(*args, **kwargs)
        except Exception as exc:  # noqa: BLE001 - every failure must reach the user as a message
            raise user_error(exc) from None

    return wrapper


def number(value, name: str, *, lo: float, hi: float, integer: bool = False):
    """Validate a slider / number input sent through the API (NaN, None, out of range -> ValueError)."""
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number, got {value!r}") from None
    if math.isnan(x) or math.isinf(x):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    if not lo <= x <= hi:
        raise ValueError(f"{name} must be between {lo:g} and {hi:g}, got {x:g}")
    if integer:
        if x != int(x):
            raise ValueError(f"{name} must be a whole number, got {x:g}")
        return int(x)
    return x


def text(value, name: str, *, max_chars: int, allow_empty: bool = False) -> str:
    """Validate a text input: not empty (unless allowed), at most ``max_chars`` characters."""
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise ValueError(f"{name} must be text, got {type(value).__name__}")
    if not allow_empty and not value.strip():
        raise ValueError(f"{name} is empty: please enter some text")
    if len(value) > max_chars:
        raise ValueError(f"{name} has {len(value):,} characters; the limit is {max_chars:,}")
    return value


def serving_markdown(tab_key: str) -> str:
    """Which model serves each of the tab's tasks right now (resolved, not loaded)."""
    tasks = default_manifest().for_tab(tab_key)
    if not tasks:
        return "_Mechanism view: this tab needs no pretrained model._"
    return "Serving now:\n" + "\n".join(f"- {describe(t.key)}" for t in tasks)


def header(spec: TabSpec) -> None:
    """The tab's explanation: what changed versus BERT, the paper, and which model serves it."""
    gr.Markdown(f"### {spec.label}\n{spec.summary}\n\n_Paper: [{spec.paper}]({spec.url})_")
    with gr.Accordion("Which model is serving this tab", open=False):
        gr.Markdown(serving_markdown(spec.key))
