"""What every tab shares: the error wrapper, the tab header, and model-status lines.

Gradio lives only in ``bertvariants.ui``; the library below it raises ValueError for bad input and
ModelUnavailable when no checkpoint can serve a task.
"""

from __future__ import annotations

import functools
import inspect
import itertools
import json
import logging
from dataclasses import dataclass

import gradio as gr

from ..registry import TabSpec
from ..serving import describe, ModelUnavailable, resolve
from ..serving.manifest import default_manifest, ManifestError
from .guard import root_blocks, wait_until_preloaded
from .zerogpu import on_gpu

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
    """Wrap a handler so any exception becomes a gr.Error message and the app keeps serving. A generator handler
    (one that streams) is followed through: an exception raised while it streams is converted too."""
    if inspect.isgeneratorfunction(fn):
        @functools.wraps(fn)
        def stream(*args, **kwargs):
            wait_until_preloaded()
            try:
                yield from fn(*args, **kwargs)
            except Exception as exc:  # noqa: BLE001 - every failure must reach the user as a message
                raise user_error(exc) from None

        return stream

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        wait_until_preloaded()  # first requests never race the start-up imports (see guard.preload_lazy_imports)
        try:
            return fn(*args, **kwargs)
        except Exception as exc:  # noqa: BLE001 - every failure must reach the user as a message
            raise user_error(exc) from None

    return wrapper


@dataclass
class Action:
    """A button whose failures are shown in place: an error line right under it, never over the inputs.

    :meth:`click` wires two events on the same handler. The page's (private: not in the API or MCP) catches the
    handler's error and writes it into the error line, leaving every output as it was (``gr.skip()``) — an input
    that is also an output (ELECTRA's editable corrupted sentence) stays usable. The API's (``api_name``, on a
    hidden trigger) runs the same handler and raises: API and MCP clients get the message as an error.
    """

    button: gr.Button
    error: gr.Markdown

    def click(self, fn, inputs, outputs, *, api_name: str, **kwargs):
        outputs = list(outputs)
        fn = on_gpu(fn, api_name)  # @spaces.GPU(duration=…) when it runs a model (a no-op off ZeroGPU)
        gr.Button(visible=False, elem_classes=["bv-api-trigger"]).click(fn, inputs, outputs, api_name=api_name,
                                                                         **kwargs)
        pending(self.button)  # registered first: gradio runs a trigger's events in the order they were added
        event = self.button.click(in_place(fn, len(outputs)), inputs, [*outputs, self.error],
                                  api_visibility="private", **kwargs)
        return done(self.button, event)


_PENDING_ON = """() => { const b = document.getElementById(%s); if (b) { b.classList.add("bv-pending");
  b.setAttribute("aria-busy", "true"); } }"""
_PENDING_OFF = """() => { const b = document.getElementById(%s); if (b) { b.classList.remove("bv-pending");
  b.removeAttribute("aria-busy"); } }"""


def pending(button: gr.Button) -> None:
    """Feedback the moment ``button`` is clicked: a pending state drawn in the browser (no server round trip, so it
    shows within a frame even while the server loads a model), until :func:`done`. Call it before wiring the
    button's own event (gradio runs one trigger's events in the order they were added). The result areas are hidden
    until their first output, so gradio's own progress overlay has nowhere to show before it."""
    if not button.elem_id:
        button.elem_id = f"bv-button-{next(_BUTTON_IDS)}"
    button.click(None, None, None, js=_PENDING_ON % json.dumps(button.elem_id), api_visibility="private",
                 queue=False)


def done(button: gr.Button, event):
    """Clear :func:`pending`'s state when ``event`` finishes or fails; returns the new event."""
    return event.then(None, None, None, js=_PENDING_OFF % json.dumps(button.elem_id), api_visibility="private",
                      queue=False)


_BUTTON_IDS = itertools.count(1)


def shown(value):
    """An output value as an update that also makes its component visible: result areas are laid out hidden
    (``visible=False``) so that no empty plot or header-only table shows before the first result."""
    if isinstance(value, dict) and value.get("__type__") == "update":
        return {**value, "visible": True}
    return gr.update(value=value, visible=True)


def rounded(df, digits: int = 4):
    """A table for display: every float column as float64 rounded to ``digits`` (a float32 0.69 would otherwise
    reach the page as 0.6899999976158142); integers and text unchanged. Downloads keep full precision."""
    out = df.copy()
    for column in out.columns:
        if out[column].dtype.kind == "f":
            out[column] = out[column].astype("float64").round(digits)
    return out


def readable(df, digits: int = 4):
    """A table for reading on the page: floats rounded to ``digits`` decimals (as :func:`rounded`); a column of
    whole numbers reaching 10,000 written with thousands separators (4005120 -> "4,005,120"), as the page's text
    writes them; small integers and text unchanged. Downloads keep full precision: give them the original frame."""
    out = rounded(df, digits)
    for column in out.columns:
        values = out[column]
        kind = values.dtype.kind
        whole = kind in "iu" or (kind == "f" and values.dropna().map(float.is_integer).all())
        if whole and len(values.dropna()) and (values.abs() >= 10_000).any():
            out[column] = values.map(lambda x: "" if x != x else f"{int(x):,}").astype(object)
    return out


# Page CSS for tables (for ui/__init__.py's CSS; gradio's wrapped tables break header words and numbers anywhere):
# a header word or a number is never split; a table wider than the page scrolls sideways inside its own frame; a
# gallery caption (VideoBERT's storyboard: visual word and time) wraps on a phone instead of ending in "…", and the
# storyboard (2 columns on a phone) grows with its rows instead of scrolling inside 55% of the screen
TABLE_CSS = """
th .wrap, th span.text, .prose th, .prose td { word-break: normal !important; overflow-wrap: normal !important; }
td span.text.wrap { display: inline-block; min-width: 9ch; }
.virtual-table-viewport { scrollbar-width: thin; scrollbar-color: #a5b4fc transparent; }
.bv-storyboard .caption-label { white-space: normal !important; text-overflow: clip !important;
  max-width: calc(100% - 8px) !important; line-height: 1.2; }
.bv-storyboard .grid-wrap.fixed-height { max-height: none !important; }
@media (max-width: 576px) {
  .bv-storyboard .grid-container { grid-template-columns: repeat(2, minmax(0, 1fr)) !important; } }
"""


def action(label: str, *, variant: str = "primary", **button_kwargs) -> Action:
    """A :class:`Action` button and its (hidden until needed) error line, laid out where this is called."""
    button = gr.Button(label, variant=variant, **button_kwargs)
    return Action(button, gr.Markdown(visible=False, elem_classes=["bv-error"]))


def in_place(fn, n_outputs: int):
    """``fn`` for a page event: its outputs plus a hidden error line on success; on failure every output kept
    (``gr.skip()``) and the message in the error line. Generators (progress streams) are followed through."""

    def failed(exc: BaseException):
        message = user_error(exc).message
        return (*[gr.skip()] * n_outputs, gr.update(value=f"**Could not run:** {message}", visible=True))

    def done(out):
        out = out if n_outputs > 1 else (out,)
        return (*[shown(v) for v in out], gr.update(value="", visible=False))

    if inspect.isgeneratorfunction(inspect.unwrap(fn)):
        @functools.wraps(fn)
        def stream(*args, **kwargs):
            try:
                for out in fn(*args, **kwargs):
                    yield done(out)
            except Exception as exc:  # noqa: BLE001 - shown in place
                yield failed(exc)
        return stream

    @functools.wraps(fn)
    def run(*args, **kwargs):
        try:
            return done(fn(*args, **kwargs))
        except Exception as exc:  # noqa: BLE001 - shown in place
            return failed(exc)

    return run


def named(fn, name: str):
    """``fn`` under the name ``name`` (same docstring, signature, generator-ness): gradio's MCP server names each
    tool after its function, so an endpoint's tool is called by its API name (``albert_fill_mask``, not ``fill``)."""
    if inspect.isgeneratorfunction(fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            yield from fn(*args, **kwargs)
    else:
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            return fn(*args, **kwargs)
    wrapper.__name__ = wrapper.__qualname__ = name
    return wrapper


FILL_MASK_TABS = {"albert-fill-mask": "ALBERT", "roberta-fill-mask": "RoBERTa"}  # the two fill-mask slots


def shared_fill_mask_note(task: str) -> str:
    """One sentence when one checkpoint serves both fill-mask slots (offline: this project's masked LM), so that
    a user comparing the ALBERT and RoBERTa tabs knows why the words agree; "" when each has its own model."""
    try:
        same = len({resolve(t).location for t in FILL_MASK_TABS}) == 1
    except (ModelUnavailable, ManifestError, OSError):
        return ""
    if not same:
        return ""
    other = next(v for k, v in FILL_MASK_TABS.items() if k != task)
    return (f"The same checkpoint serves the {other} tab's fill-mask here, so its words are the same; each tab shows "
            "the prediction through its own variant's lens.")


# tabs that serve no slot of their own but use the other tabs' models
SERVING_NOTES = {"interpret": "_This tab looks inside the models the other tabs serve: pick one in each view (the "
                              "list is resolved now, so it names what serves here, offline or online)._"}


def serving_markdown(tab_key: str) -> str:
    """Which model serves each of the tab's tasks right now (resolved, not loaded)."""
    tasks = default_manifest().for_tab(tab_key)
    if tab_key in SERVING_NOTES:
        return SERVING_NOTES[tab_key]
    if not tasks:
        return "_Mechanism view: this tab needs no pretrained model._"
    return "Serving now:\n" + "\n".join(f"- {describe(t.key)}" for t in tasks)


def claim_markdown(label: str, claim: str) -> str:
    """A paper's claim as the variant lab measured it here: the held-out verdict of the Leaderboard's training-view
    preset ``label`` (computed from the records in results/), or "" while its runs are missing."""
    from evaluation.training_view import claim_verdict

    try:
        verdict = claim_verdict(label)
    except (OSError, ValueError, KeyError) as exc:  # unreadable records must not break the tab
        log.warning("claim %r: %s", label, exc)
        return ""
    if verdict is None:
        return ""
    return (f"**{claim}, measured here** (same start, pretraining steps and data, then the same fine-tuning; "
            f"Leaderboard → Training runs → \"{label}\"): {verdict}.")


def claim(label: str, text: str) -> gr.Markdown:
    """The claim's Markdown, written when the page loads (it follows results/ as the lab adds runs): the verdict
    reads results/ and the statistics libraries behind it (scipy, scikit-learn), which start-up does not wait for.
    (Not on the tab's select: a server event there held up the next tab's select while the server was busy.)"""
    md = gr.Markdown("")
    root_blocks().load(lambda: claim_markdown(label, text), None, md, api_visibility="private")
    return md


def header(spec: TabSpec) -> None:
    """The tab's header: what changed versus BERT in one sentence; the paper and which model serves it sit in a
    closed accordion, so that on a phone the tab's first input is in the first screen."""
    gr.Markdown(f"**{spec.label}** — {spec.summary}")  # the tab bar names the tab: no heading line
    with gr.Accordion("Paper and the model serving this tab", open=False):
        gr.Markdown(f"_Paper: [{spec.paper}]({spec.url})_\n\n{serving_markdown(spec.key)}")


def explanation(label: str = "How it works", *, open: bool = False) -> gr.Accordion:
    """A closed accordion for a tab's longer prose (``with explanation(): gr.Markdown(...)``): the one-sentence
    summary of :func:`header` stays visible, the rest is a click away and keeps the first input in view."""
    return gr.Accordion(label, open=open)
