"""The app section of ``python -m evaluation bench``: the app's similarity handler served three ways.

Gradio lives only in ``bertvariants.ui``, so the benchmark starts this module as its own server process:
``python -m bertvariants.ui.bench_app PORT [--max-batch-size N] [--threads T]``.
"""

from __future__ import annotations

import argparse
import sys

from bertvariants.serving import get_model
from bertvariants.ui import queue


def similarity_variants_demo(max_batch_size: int):
    """The app's similarity handler behind three endpoints: ``batched`` (the app's setting), ``unbatched``
    (one request per call, the queue's default concurrency) and ``noop`` (batched, no model: the
    framework's own ceiling on requests/s)."""
    import gradio as gr

    from bertvariants.ui.sentence_bert import similarity_batch

    def single(a: str, b: str) -> float:
        return similarity_batch([a], [b])[0][0]

    def noop(first: list[str], second: list[str]) -> list[list[float]]:
        return [[0.0] * len(first)]

    with gr.Blocks() as demo:
        a, b, s = gr.Textbox(), gr.Textbox(), gr.Number()
        btn = gr.Button()
        btn.click(similarity_batch, [a, b], [s], api_name="batched", batch=True, max_batch_size=max_batch_size,
                  concurrency_limit=1)
        btn.click(single, [a, b], [s], api_name="unbatched")
        btn.click(noop, [a, b], [s], api_name="noop", batch=True, max_batch_size=max_batch_size, concurrency_limit=1)
    return queue(demo)


def serve_similarity_variants(port: int, max_batch_size: int, threads: int | None) -> None:
    """Run :func:`similarity_variants_demo` in this process (the bench starts it as a subprocess, so the
    server never shares a GIL with the 16 client threads)."""
    import torch

    from bertvariants.ui.sentence_bert import TASK

    if threads:
        torch.set_num_threads(threads)
    get_model(TASK)  # the model loads once (into the shared cache), before either variant is timed
    similarity_variants_demo(max_batch_size).launch(server_name="127.0.0.1", server_port=port, quiet=True)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bertvariants.ui.bench_app", description=__doc__)
    p.add_argument("port", type=int)
    p.add_argument("--max-batch-size", type=int, default=32)
    p.add_argument("--threads", type=int, default=None)
    args = p.parse_args(argv)
    serve_similarity_variants(args.port, args.max_batch_size, args.threads)
    return 0


if __name__ == "__main__":
    sys.exit(main())
