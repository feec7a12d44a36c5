"""The Gradio app, built from the registry's table of tabs: one module per tab (``ui/<key>.py``)."""

from __future__ import annotations

import importlib
import importlib.util
import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

import gradio as gr  # noqa: E402

from ..registry import TABS, default_manifest  # noqa: E402
from .common import header  # noqa: E402
from .guard import install_fixes  # noqa: E402

TITLE = "BERT variants: how they work, and what they do"
CSS = """
.bv-small { font-size: 0.9em; opacity: 0.85; }
"""


def build_demo() -> gr.Blocks:
    """Build the Blocks: one tab per entry of ``registry.TABS``. Loads no model and starts no server."""
    default_manifest()  # validate spaces.yml before anything is shown: a bad manifest fails here, naming the key
    install_fixes()  # gradio 6.31: no leaked temp file per upload; validators of batched events see one request
    # uploads and cached outputs older than an hour are deleted every 10 minutes (and all of them at shutdown)
    with gr.Blocks(title=TITLE, delete_cache=(600, 3600)) as demo:
        gr.Markdown(f"# {TITLE}\nEach tab shows what the variant changed versus BERT and runs its task. "
                    "Models load on first use; offline, the tabs are served by the packaged all-MiniLM-L6-v2 or by "
                    "checkpoints this project trains.")
        with gr.Tabs():
            for spec in TABS:
                with gr.Tab(spec.label, id=spec.key) as tab:
                    header(spec)
                    if importlib.util.find_spec(f"{__name__}.{spec.key}") is not None:
                        importlib.import_module(f"{__name__}.{spec.key}").build(spec, tab)
    return demo


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
