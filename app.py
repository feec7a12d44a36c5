"""bertvariants: a Gradio Space demonstrating the BERT variants.

Run: ``python app.py`` -> http://127.0.0.1:7860 (works offline on the packaged MiniLM).
No model loads or file I/O happen at import; the server starts only under ``__main__``.
"""

import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

from bertvariants.ui import build_demo, launch_kwargs, queue  # noqa: E402

if __name__ == "__main__":
    from bertvariants.runtime import hub_online

    hub_online()  # decide online/offline once, fast, before any hub call could sit through retries
    queue(build_demo()).launch(
        server_name=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"),
        server_port=int(os.environ.get("GRADIO_SERVER_PORT", "7860")),
        **launch_kwargs(),
    )
