"""bertvariants: a Gradio Space demonstrating the BERT variants.

Run: ``python app.py`` -> http://127.0.0.1:7860 (works offline on the packaged MiniLM).
No model loads or file I/O happen at import, except on a ZeroGPU Space (``SPACES_ZERO_GPU``, or the project's own
switch ``BERTVARIANTS_PRELOAD=1``): there the Space's models load at module scope, as ZeroGPU requires
(bertvariants/ui/zerogpu.py). The server starts only under ``__main__``.
"""

import os

try:  # ZeroGPU: `spaces` must be imported before anything initialises CUDA; a no-op package everywhere else
    import spaces  # noqa: F401
except ImportError:
    spaces = None

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

from bertvariants.ui import build_demo, queue, serve  # noqa: E402
from bertvariants.ui import zerogpu  # noqa: E402

PRELOADED = zerogpu.preload_space_models() if zerogpu.preload_requested() else None  # module scope: ZeroGPU

if __name__ == "__main__":
    from bertvariants.serving.device import hub_online

    hub_online()  # decide online/offline once, fast, before any hub call could sit through retries
    demo = queue(build_demo())
    print(zerogpu.startup_report(PRELOADED), flush=True)
    serve(demo, server_name=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"),
          server_port=int(os.environ.get("GRADIO_SERVER_PORT", "7860")))
