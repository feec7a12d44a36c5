"""What the app needs around gradio 6.31: two patches, one read of gradio's build context, a first-request import
race, and per-request validation for batched endpoints.

**Patches fail loudly.** requirements.txt pins gradio to :data:`PINNED_GRADIO` (README's ``sdk_version``).
:data:`GRADIO_INTERNALS` is the one table of gradio internals this module touches; :func:`check_gradio` runs at
start-up (from :func:`install_fixes`, before anything is patched) and raises RuntimeError naming the function,
the parameters the patch expects, those found and the pinned version when an upgrade changed one of them. It
never silently skips a patch.

Upload temp files: ``gr.File(type="filepath")`` / ``gr.UploadButton`` preprocessing creates an empty
``NamedTemporaryFile(delete=False)`` in the upload cache for every request and never deletes or tracks it,
so each upload request leaves one more file behind (found by ``python -m evaluation.loadtest``).
:func:`install_upload_fix` returns the same value without creating it. Uploaded files themselves are
tracked by gradio and removed by ``gr.Blocks(delete_cache=...)``.

Batched events: a ``batch=True`` event (e.g. ``/similarity``) runs many users' requests in one call, so a
``gr.Error`` raised for one bad request fails every request in its batch. Gradio 6's ``validator=`` runs before
the request joins the queue — one request at a time — and answers a bad one alone with HTTP 422, which
``gradio_client`` raises as ``ValidationError`` and the page shows on the input at fault. In gradio 6.31 this is
broken for batched events: ``gradio.queueing.create_validator_fn`` copies ``batch=True`` onto the validator
while the request body is not batched, so every request fails with 400 "didn't receive enough input values".
:func:`install_validator_fix` makes the validator unbatched and gives it the raw payload. Usage (one line per
batched event)::

    btn.click(fn, [a, b], [out], batch=True, validator=per_input_validator(check_a, check_b), ...)
"""

from __future__ import annotations

import ast
import functools
import importlib
import logging
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import gradio as gr

from ..internals import Internal, problems
from ..paths import REPO_ROOT

log = logging.getLogger(__name__)

PINNED_GRADIO = "6.31.0"  # == requirements.txt's gradio pin == README's sdk_version (tests/test_docs.py checks)


# --------------------------------------------------------------------------------------------
# The gradio internals we rely on, checked at start-up
# --------------------------------------------------------------------------------------------
# one row per internal, checked like every other library's table (bertvariants/internals.py)
GRADIO_INTERNALS: tuple[Internal, ...] = (
    Internal("gradio.queueing", "create_validator_fn", ("fn",),
             "validators of batch=True events are built batched though each sees one request (HTTP 400)"),
    Internal("gradio.block_function.BlockFunction", "__init__", ("self", "batch", "preprocess"),
             "the validator fix sets BlockFunction.batch and .preprocess", exact=False),
    Internal("gradio.components.file.File", "_process_single_file", ("self", "f"),
             "filepath preprocessing leaks one empty NamedTemporaryFile(delete=False) per upload"),
    Internal("gradio.components.upload_button.UploadButton", "_process_single_file", ("self", "f"),
             "filepath preprocessing leaks one empty NamedTemporaryFile(delete=False) per upload"),
    Internal("gradio_client.utils", "is_valid_file", ("file_path", "file_types"),
             "the upload fix checks file types exactly as gradio does"),
    Internal("gradio.context.Context", "root_block", None,
             "a tab builder gets no handle on the Blocks it is built in (root_blocks())"),
)


def check_gradio() -> None:
    """Raise RuntimeError when an internal of :data:`GRADIO_INTERNALS` is missing or its signature changed."""
    found = problems(GRADIO_INTERNALS)
    if found:
        raise RuntimeError(
            f"bertvariants.ui.guard patches gradio internals, and gradio {gr.__version__} changed them:\n- "
            + "\n- ".join(found)
            + f"\nrequirements.txt pins gradio=={PINNED_GRADIO} (README sdk_version): install that version, or "
              "re-check the patches in bertvariants/ui/guard.py against this gradio and update GRADIO_INTERNALS.")
    if gr.__version__ != PINNED_GRADIO:
        log.warning("gradio %s is installed but %s is pinned; the patched signatures still match", gr.__version__,
                    PINNED_GRADIO)


def root_blocks() -> gr.Blocks:
    """The Blocks being built (for a tab that wires a page-load event). Checked by :func:`check_gradio`."""
    from gradio.context import Context

    root = Context.root_block
    if root is None:
        raise RuntimeError("root_blocks() is called outside `with gr.Blocks():` (build the tab inside a Blocks)")
    return root


def install_fixes() -> None:
    """Check gradio, then everything this module patches; idempotent. Called by ``build_demo``. (The lazy
    imports are preloaded once the server answers: :func:`preload_in_background`, from app.py.)"""
    check_gradio()
    install_validator_fix()
    install_upload_fix()
    limit_malloc_arenas()


# --------------------------------------------------------------------------------------------
# The first-request import race
# --------------------------------------------------------------------------------------------
_PRELOADED = threading.Event()
_PRELOAD_STARTED = threading.Lock()


def preload_in_background() -> None:
    """Run :func:`preload_lazy_imports` on a daemon thread (once): app.py starts it once the server answers, so
    neither the start-up nor ``build_demo`` waits for it (nor shares the GIL with it); handlers that run before it
    finished wait for it through :func:`wait_until_preloaded`."""
    if not _PRELOAD_STARTED.acquire(blocking=False):
        return

    def run() -> None:
        try:
            preload_lazy_imports()
        finally:
            _PRELOADED.set()

    threading.Thread(target=run, name="bertvariants-preload", daemon=True).start()


def preloaded() -> bool:
    """True once the background preload has finished."""
    return _PRELOADED.is_set()


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


PACKAGE = REPO_ROOT / "bertvariants"  # the code the handlers run (core + ui)


@dataclass(frozen=True)
class TransformersUse:
    """What the handlers' code takes from transformers: top-level names and submodules."""

    names: tuple[str, ...]  # `from transformers import X`, `transformers.X`, `tf.X` (import transformers as tf)
    modules: tuple[str, ...]  # `from transformers.sub import ...`, `import transformers.sub`


def transformers_use(files=None) -> TransformersUse:
    """Every transformers name and submodule that core + ui import, read from their source (no list to keep
    in step with the tabs: a new tab's imports are found the day it lands)."""
    files = files if files is not None else [*PACKAGE.glob("*.py"), *PACKAGE.glob("ui/*.py")]
    names: set[str] = set()
    modules: set[str] = set()
    for path in files:
        tree = ast.parse(Path(path).read_text(encoding="utf-8"))
        aliases = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                if node.module == "transformers":
                    names.update(a.name for a in node.names)
                elif node.module.startswith("transformers."):
                    modules.add(node.module)
            elif isinstance(node, ast.Import):
                for a in node.names:
                    if a.name == "transformers":
                        aliases.add(a.asname or a.name)
                    elif a.name.startswith("transformers."):
                        modules.add(a.name)
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in aliases:
                names.add(node.attr)
    return TransformersUse(tuple(sorted(names)), tuple(sorted(modules)))


def preload_lazy_imports() -> None:
    """Import, once and up front, what handlers would otherwise import lazily on their first request.

    Concurrent first requests crashed (found by ``python -m evaluation.loadtest``): Plotly imports
    ``narwhals.stable.v1`` while scikit-learn (k-means, PCA, t-SNE) imports ``narwhals.stable.v2`` inside
    a call; two threads doing both at once form an import cycle and Python raises
    ``_DeadlockError: deadlock detected by _ModuleLock('narwhals.stable.v2')`` in one of them. Likewise
    transformers' lazy module (see below). Costs a few seconds at startup, none per request.
    """
    for name in ("narwhals", "narwhals.stable.v1", "narwhals.stable.v2", "sklearn.utils.validation",
                 "sklearn.cluster", "sklearn.decomposition", "sklearn.manifold"):
        try:
            importlib.import_module(name)
        except ImportError:
            pass
    # transformers' lazy module is not thread-safe on first access either: concurrent first requests got
    # "ImportError: cannot import name 'AutoTokenizer' from 'transformers'". Touch everything the code uses.
    import transformers

    use = transformers_use()
    for module in use.modules:
        importlib.import_module(module)
    for name in use.names:
        getattr(transformers, name)
    import plotly.graph_objects as go

    # one trace of each kind the tabs draw: plotly loads each trace type's validators on first use
    go.Figure([go.Scatter(x=[0], y=[0]), go.Bar(x=[0], y=[0]), go.Heatmap(z=[[0]])]).to_json()


# --------------------------------------------------------------------------------------------
# The patches
# --------------------------------------------------------------------------------------------
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

        # upstream: gradio 6.31 File/UploadButton create NamedTemporaryFile(delete=False) per request, never removed
        @functools.wraps(original)
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
    import gradio.queueing as queueing

    current = queueing.create_validator_fn
    if getattr(current, "_bertvariants_unbatched", False):
        return

    # upstream: gradio 6.31 create_validator_fn copies batch=True onto the validator of a batched event (HTTP 400)
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
    queueing.create_validator_fn = create_validator_fn


def per_input_validator(*checks: Callable[[object], object]) -> Callable:
    """A ``validator=`` that runs ``checks[i]`` on input ``i``; a ValueError becomes that input's message.

    Each check is a library-style validator (e.g. ``lambda v: text(v, "Sentence A", max_chars=5000)``)
    that raises ValueError with a readable message. The validator never raises: an unexpected error
    would turn into an HTTP 400 without a message.
    """
    check_gradio()
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
