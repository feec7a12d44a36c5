"""The Gradio app, built from the registry's table of tabs: one module per tab (``ui/<key>.py`` with
``build(spec, tab)``; a tab without its module is an error at build time). Models load on first use only."""

from __future__ import annotations

import importlib
import importlib.util
import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

import gradio as gr  # noqa: E402

from ..registry import default_manifest, TabSpec, TABS  # noqa: E402
from .common import header  # noqa: E402
from .guard import install_fixes  # noqa: E402

TITLE = "BERT variants: how they work, and what they do"
CSS = """
.bv-small { font-size: 0.9em; opacity: 0.85; }
"""


def build_demo() -> gr.Blocks:
    """Build the Blocks: one tab per entry of ``registry.TABS``. Loads no model and starts no server."""
    default_manifest()  # validate spaces.yml before anything is shown: a bad manifest fails here, naming the key
    install_fixes()  # checks gradio's patched internals (fails loudly), then patches uploads and batched validators
    # uploads and cached outputs older than an hour are deleted every 10 minutes (and all of them at shutdown)
    with gr.Blocks(title=TITLE, delete_cache=(600, 3600)) as demo:
        gr.Markdown(f"# {TITLE}\nEach tab shows what the variant changed versus BERT and runs its task. "
                    "Models load on first use; offline, the tabs are served by the packaged all-MiniLM-L6-v2 or by "
                    "checkpoints this project trains.")
        with gr.Tabs():
            for spec in TABS:
                with gr.Tab(spec.label, id=spec.key) as tab:
                    header(spec)
                    tab_module(spec).build(spec, tab)
    return demo


def tab_module(spec: TabSpec):
    """``bertvariants.ui.<key>``, which draws the tab ``spec`` with ``build(spec, tab)``; a tab of
    ``registry.TABS`` without one is an error at build time (never a header-only tab)."""
    name = f"{__name__}.{spec.key}"
    if importlib.util.find_spec(name) is None:
        raise RuntimeError(f"registry.TABS has the tab {spec.key!r} ({spec.label}) but there is no module {name}: "
                           f"add bertvariants/ui/{spec.key}.py with build(spec, tab), or remove the tab from TABS")
    module = importlib.import_module(name)
    if not callable(getattr(module, "build", None)):
        raise RuntimeError(f"{name} has no build(spec, tab): it must define one to draw the {spec.label} tab")
    return module


def launch_kwargs() -> dict:
    """Arguments for ``demo.launch`` shared by app.py, the tests and the benchmarks."""
    # System fonts only: the page must render fully offline (the default themes fetch Google Fonts).
    fonts = [gr.themes.Font("ui-sans-serif"), gr.themes.Font("system-ui"), gr.themes.Font("sans-serif")]
    mono = [gr.themes.Font("ui-monospace"), gr.themes.Font("monospace")]
    theme = gr.themes.Soft(font=fonts, font_mono=mono)
    return dict(theme=theme, css=CSS, max_file_size="50mb", show_error=True)


def queue(demo: gr.Blocks) -> gr.Blocks:
    """A bounded queue: at most 64 waiting events; beyond that clients get an explicit 'queue full'."""
    return demo.queue(max_size=int(os.environ.get("BERTVARIANTS_QUEUE_SIZE", "64")), default_concurrency_limit=2)
