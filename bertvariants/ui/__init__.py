"""The Gradio app, built from the registry's table of tabs: one module per tab (``ui/<key>.py`` with
``build(spec, tab)``; a tab without its module is an error at build time). Models load on first use only."""

from __future__ import annotations

import importlib
import importlib.util
import json
import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

import gradio as gr  # noqa: E402

from ..registry import TabSpec, TABS  # noqa: E402
from ..serving.manifest import default_manifest
from .common import TABLE_CSS, header, named  # noqa: E402
from .guard import install_fixes, preload_in_background  # noqa: E402

TITLE = "BERT variants: how they work, and what they do"
CSS = """
.bv-small { font-size: 0.9em; opacity: 0.85; }
.bv-error { color: #b42318; background: #fef3f2; border: 1px solid #fda29b; border-radius: 6px; padding: 4px 10px; }
.bv-error p { margin: 0; }
.bv-chips { display: flex; flex-wrap: wrap; gap: 4px; }
.bv-chip { border: 1px solid #c7d2fe; background: #eef2ff; border-radius: 4px; padding: 1px 5px;
           font-family: ui-monospace, monospace; font-size: 0.9em; white-space: pre; }
/* a plot's title is drawn in the figure's own margin (bertvariants.figures): gradio's floating "Plot" label would
   sit on top of it, so plot blocks show no label */
.block:has([data-testid="plotly"]) > label[data-testid="block-label"] { display: none !important; }
/* a clicked button while its request runs (common.pending): dimmed, not clickable again, a moving stripe */
.bv-pending { pointer-events: none; opacity: 0.75; cursor: progress;
  background-image: linear-gradient(90deg, transparent 0%, rgba(255,255,255,0.45) 50%, transparent 100%) !important;
  background-size: 200% 100% !important; animation: bv-pending 1.2s linear infinite; }
.bv-pending::after { content: " · running…"; }
@keyframes bv-pending { from { background-position: 200% 0; } to { background-position: -200% 0; } }
""" + TABLE_CSS


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
                # a share link names the tab it was made on: ?tab=<key> (other parameters, e.g. the leaderboard's
                # filters, are kept)
                tab.select(None, None, None, js=_SET_TAB_JS % json.dumps(spec.key), api_visibility="private")
    name_tools_after_endpoints(demo)
    return demo


def name_tools_after_endpoints(demo: gr.Blocks) -> None:
    """Each named endpoint's function renamed to its API name (MCP tools are named after functions)."""
    for block_fn in demo.fns.values():
        if block_fn.fn is not None and block_fn.api_name and block_fn.fn.__name__ != block_fn.api_name:
            block_fn.fn = named(block_fn.fn, block_fn.api_name)
            block_fn.name = block_fn.api_name


_SET_TAB_JS = """() => { if (!window.bvTabReady) return;  // the first tab's select on page load: keep ?tab=
  const url = new URL(window.location.href); url.searchParams.set("tab", %s);
  window.history.replaceState(null, "", url); }"""


_HEAD = "<script>window.bvTab = new URL(window.location.href).searchParams.get('tab');</script>"
_OPEN_TAB_JS = """() => { const key = window.bvTab;  // read in <head>, before any tab's select rewrote the URL
  const labels = %s;  // tab key -> label
  if (!key || !(key in labels)) { window.bvTabReady = true; return; }  // none or unknown: the first tab
  // a narrow window shows the first tabs only; the rest are label-only buttons in the "More tabs" (⋯) dropdown
  const find = () => document.querySelector(`button[role="tab"][data-tab-id="${CSS.escape(key)}"]`) ||
    [...document.querySelectorAll(".overflow-dropdown button")].find(b => b.textContent.trim() === labels[key]);
  let tries = 0;  // the tab bar may render after this runs: look for its button for up to 10 s
  const open = () => { const b = find();
    if (b) { window.bvTabReady = true; b.click(); }
    else if (tries++ < 100) setTimeout(open, 100); else window.bvTabReady = true; };
  open(); }"""


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
    # mcp_server: every named endpoint is also an MCP tool (its docstring is the tool's description), at
    # /gradio_api/mcp/sse (README "Public API")
    # js: a share link (?tab=<key>) opens its tab, in the browser (a server round trip could answer late and
    # re-render the tabs under a user's click)
    return dict(theme=theme, css=CSS, head=_HEAD, js=_OPEN_TAB_JS % json.dumps({spec.key: spec.label for spec in TABS}),
                max_file_size="50mb", show_error=True, mcp_server=True)


def serve(demo: gr.Blocks, *, block: bool = True, **launch_args) -> gr.Blocks:
    """Launch the queued ``demo`` with :func:`launch_kwargs` (plus ``launch_args``: host, port, …), then, once the
    server answers, preload what handlers import lazily (:func:`guard.preload_in_background`: first requests must
    not race in imports); blocks like ``demo.launch()`` unless ``block=False``. app.py, the tests' in-process app
    and the GPU-seconds tool all start the app through here."""
    demo.launch(prevent_thread_lock=True, **launch_args, **launch_kwargs())
    preload_in_background()
    if block:
        demo.block_thread()
    return demo


def queue(demo: gr.Blocks) -> gr.Blocks:
    """A bounded queue: at most 64 waiting events; beyond that clients get an explicit 'queue full'."""
    return demo.queue(max_size=int(os.environ.get("BERTVARIANTS_QUEUE_SIZE", "64")), default_concurrency_limit=2)
