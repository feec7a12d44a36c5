"""Fixes around two gradio 6.31 defects and a first-request import race, and per-request validation for
batched endpoints.

Upload temp files: ``gr.File(type="filepath")`` / ``gr.UploadButton`` preprocessing creates an empty
``NamedTemporaryFile(delete=False)`` in the upload cache for every request and never deletes or tracks it,
so each upload request leaves one more file behind (found by ``python -m evaluation.loadtest``).
:func:`install_upload_fix` returns the same value without creating it. Uploaded files themselves are
tracked by gradio and removed by ``gr.Blocks(delete_cache=...)``.

Batched events:

A ``batch=True`` event (e.g. ``/similarity``) runs many users' requests in one call, so a ``gr.Error``
raised for one bad request fails every request in its batch. Gradio 6's ``validator=`` runs before the
request joins the queue — one request at a time — and answers a bad one alone with HTTP 422, which
``gradio_client`` raises as ``ValidationError`` and the page shows on the input at fault.

In gradio 6.31 this is broken for batched events: ``gradio.queueing.create_validator_fn`` copies
``batch=True`` onto the validator while the request body is not batched, so ``process_api`` unpacks the
inputs wrongly and every request fails with 400 "didn't receive enough input values ... Received
inputs". :func:`install_validator_fix` makes the validator function unbatched (it always sees exactly
one request) and gives it the raw payload (see the comment there); it is idempotent and only touches the
validator, never the event itself.

Usage (one line per batched event)::

    btn.click(fn, [a, b], [out], batch=True, validator=per_input_validator(check_a, check_b), ...)
"""

from __future__ import annotations

import functools
import threading
from typing import Callable

import gradio as gr
import gradio.queueing as _queueing


def install_fixes() -> None:
    """Everything this module patches; idempotent. Called by ``build_demo``."""
    install_validator_fix()
    install_upload_fix()
    preload_in_background()
    limit_malloc_arenas()


_PRELOADED = threading.Event()
_PRELOAD_STARTED = threading.Lock()


def preload_in_background() -> None:
    """Run :func:`preload_lazy_imports` on a daemon thread (once): the page is served while it runs (cold
    start stays a few seconds shorter), and handlers wait for it through :func:`wait_until_preloaded`."""
    if not _PRELOAD_STARTED.acquire(blocking=False):
        return

    def run() -> None:
        try:
            preload_lazy_imports()
        finally:
            _PRELOADED.set()

    threading.Thread(target=run, name="bertvariants-preload", daemon=True).start()


def wait_until_preloaded(timeout: float = 300) -> None:
    """Block a handler until the lazy imports are done, so no first request imports them concurrently.
    Returns at once when no preload was started (library use, unit tests of single handlers)."""
    if _PRELOAD_STARTED.locked():
        _PRELOADED.wait(timeout)


def limit_malloc_arenas(n: int | None = None) -> bool:
    """Cap glibc's malloc arenas (``mallopt(M_ARENA_MAX, n)``; default 2, env ``BERTVARIANTS_MALLOC_ARENAS``).

    glibc gives each new thread its own arena, up to 8 per core; gradio serves requests from a pool of up
    to 40 threads, so the heap fragments across arenas and resident memory kept climbing under load (+16%
    over 384 mixed requests from 16 clients) although no handler leaks (each is flat when called in a
    loop). With 2 arenas it levels off. The same as starting Python with ``MALLOC_ARENA_MAX=2``, but
    applied in-process before the server's threads exist. No-op off glibc, or when MALLOC_ARENA_MAX is set.
    """
    import ctypes
    import ctypes.util
    import os

    if os.environ.get("MALLOC_ARENA_MAX"):
        return False
    n = n or int(os.environ.get("BERTVARIANTS_MALLOC_ARENAS", "2"))
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        ok = bool(libc.mallopt(-8, n))  # M_ARENA_MAX = -8 in glibc's malloc.h
        # a fixed 1 MiB mmap threshold (M_MMAP_THRESHOLD = -3): video frames and batch tensors are mmapped and
        # returned to the OS when freed, instead of glibc raising the threshold and keeping them in the heap
        ok &= bool(libc.mallopt(-3, 1 << 20))
        return ok
    except (OSError, AttributeError):
        return False


TRANSFORMERS_NAMES = (
    "AutoConfig", "AutoTokenizer", "PreTrainedTokenizerFast", "AutoModel", "AutoModelForMaskedLM",
    "AutoModelForSequenceClassification", "AutoModelForQuestionAnswering", "AutoModelForSeq2SeqLM",
    "ElectraForPreTraining", "ElectraForMaskedLM", "BertModel", "BertForMaskedLM", "BertForSequenceClassification",
    "AlbertModel", "AlbertConfig", "BertConfig", "ElectraConfig",
)


def preload_lazy_imports() -> None:
    """Import, once and up front, what handlers would otherwise import lazily on their first request.

    Concurrent first requests crashed (found by ``python -m evaluation.loadtest``): Plotly imports
    ``narwhals.stable.v1`` while scikit-learn (k-means, PCA, t-SNE) imports ``narwhals.stable.v2`` inside
    a call; two threads doing both at once form an import cycle and Python raises
    ``_DeadlockError: deadlock detected by _ModuleLock('narwhals.stable.v2')`` in one of them. Likewise
    transformers' lazy module (see below). Costs a few seconds at startup, none per request.
    """
    import importlib

    for name in ("narwhals", "narwhals.stable.v1", "narwhals.stable.v2", "sklearn.utils.validation",
                 "sklearn.cluster", "sklearn.decomposition", "sklearn.manifold"):
        try:
            importlib.import_module(name)
        except ImportError:
            pass
    # transformers' lazy module is not thread-safe on first access either: concurrent first requests got
    # "ImportError: cannot import name 'AutoTokenizer' from 'transformers'". Touch every class the tabs use.
    import transformers

    for name in TRANSFORMERS_NAMES:
        getattr(transformers, name, None)
    import plotly.graph_objects as go

    # one trace of each kind the tabs draw: plotly loads each trace type's validators on first use
    go.Figure([go.Scatter(x=[0], y=[0]), go.Bar(x=[0], y=[0]), go.Heatmap(z=[[0]])]).to_json()


def install_upload_fix() -> None:
    """``filepath`` preprocessing of File / UploadButton without the leaked empty temp file."""
    import gradio_client.utils as client_utils
    from gradio.components import File, UploadButton
    from gradio.exceptions import Error
    from gradio.utils import NamedString

    for cls in (File, UploadButton):
        original = cls._process_single_file
        if getattr(original, "_bertvariants_fixed", False):
            continue

        def _process_single_file(self, f, _original=original):
            if self.type != "filepath":
                return _original(self, f)
            if self.file_types and not client_utils.is_valid_file(f.path, self.file_types):
                raise Error(f"Invalid file type. Please upload a file that is one of these formats: {self.file_types}")
            return NamedString(f.path)

        _process_single_file._bertvariants_fixed = True
        cls._process_single_file = _process_single_file


def install_validator_fix() -> None:
    """Run validators of batched events on the single request they validate (see module docstring)."""
    current = _queueing.create_validator_fn
    if getattr(current, "_bertvariants_unbatched", False):
        return

    @functools.wraps(current)
    def create_validator_fn(fn):
        validator_fn = current(fn)
        validator_fn.batch = False  # the queue validates one request body, never a batch
        # Raw payloads: a component's own preprocessing error (e.g. a Slider value out of range) raised
        # inside the validator becomes an HTTP 400 whose message gradio_client drops; the checks see the
        # raw value instead and answer with a readable 422 (text and numbers arrive unchanged).
        validator_fn.preprocess = False
        return validator_fn

    create_validator_fn._bertvariants_unbatched = True
    _queueing.create_validator_fn = create_validator_fn


def per_input_validator(*checks: Callable[[object], object]) -> Callable:
    """A ``validator=`` that runs ``checks[i]`` on input ``i``; a ValueError becomes that input's message.

    Each check is a library-style validator (e.g. ``lambda v: text(v, "Sentence A", max_chars=5000)``)
    that raises ValueError with a readable message. The validator never raises: an unexpected error
    would turn into an HTTP 400 without a message.
    """
    install_validator_fix()

    def validator(*values):
        if len(values) != len(checks):
            return [gr.validate(False, f"expected {len(checks)} inputs, got {len(values)}")] * max(1, len(values))
        results = []
        for check, value in zip(checks, values):
            try:
                check(value)
                results.append(gr.validate(True, ""))
            except (ValueError, TypeError) as exc:
                results.append(gr.validate(False, str(exc.args[0] if exc.args else exc)))
        return results

    return validator
