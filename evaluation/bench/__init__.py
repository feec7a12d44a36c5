"""Performance benchmark of the one inference path, against the tools a user would otherwise pick.

    python -m evaluation bench [--only stsb,sst2,flops,summary,app,cold,rss,train] [--repeats 3] [--threads N]
                               [--stsb PATH] [--sst2 PATH]

Every A/B pair runs in this one process, alternating (A, B, C, then B, C, A, ...), ``--repeats`` times,
and the median wall time of each side is compared, so a machine shared with other jobs slows both sides
alike. Results must agree before a time counts: the same embeddings / predictions (within a stated
tolerance). Sections, one module each:

- ``stsb``, ``flops`` (:mod:`.encode`): the STS-B encode against sentence-transformers (fp32 and the fast
  bf16 mode), Spearman of each; its FLOPs from the model shape, the matmul peak, achieved GFLOP/s, the floor.
- ``sst2`` (:mod:`.classify`): ``pipeline("text-classification")`` at batch 1 and 32 versus
  ``inference.classify``, predictions asserted identical.
- ``summary`` (:mod:`.summary`): the BART tab's offline summarizer on its default document, the earlier
  2-beam path against the greedy fast-path default, both times and their ratio.
- ``app``, ``cold``, ``rss`` (:mod:`.app`): Gradio batching of the similarity handler (16 concurrent
  clients, requests/s, p50/p95); ``python app.py`` to the first HTTP 200 against a bare gradio app with the
  same tabs started the same way (:mod:`.startup`), and the difference; resident memory after one call of
  every endpoint.
- ``train`` (:mod:`.train`, only when asked): the variant lab's training step against a plain PyTorch step
  (QA, masked LM, replaced-token detection, distillation), run as ``python -m bertvariants.train bench``.

Prints a table, writes JSON + a plot (HTML via plotly, and a hand-written SVG) under ``--out``
(:mod:`.report`), and prints the JSON object as the last line. The options are a frozen
:class:`~.settings.BenchSettings`; :func:`run` takes one, :func:`main` parses the command line.
"""

from __future__ import annotations

import json
import os
import time

from .settings import SECTIONS, BenchSettings, settings_from_argv

__all__ = ["SECTIONS", "BenchSettings", "main", "run", "run_sections"]


def prepare_process(settings: BenchSettings) -> None:
    """Offline, no tokenizer threads of its own, and the torch thread count both sides share."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    import torch

    if settings.threads:
        torch.set_num_threads(settings.threads)


def run_sections(settings: BenchSettings, out: dict, detail: dict) -> None:
    """Each section in the order asked."""
    from .app import bench_app, bench_cold_and_rss
    from .classify import bench_sst2
    from .encode import bench_flops, bench_stsb
    from .startup import bench_startup
    from .summary import bench_summary
    from .timing import log
    from .train import bench_train

    stsb_run = None
    only = settings.sections
    for section in only:
        log(f"== {section}")
        if section == "stsb":
            stsb_run = bench_stsb(settings, out, detail)
        elif section == "flops":
            bench_flops(settings, out, detail, stsb_run)
        elif section == "sst2":
            bench_sst2(settings, out, detail)
        elif section == "summary":
            bench_summary(settings, out, detail)
        elif section == "train":
            bench_train(settings, out, detail)
        elif section == "app":
            bench_app(settings, out, detail)
        elif section == "cold":
            bench_startup(settings, out, detail)
        elif section == "rss":
            bench_cold_and_rss(settings, out, detail, cold=False, rss=True)


def run(settings: BenchSettings) -> tuple[dict, dict]:
    """Run the benchmark: ``(summary, detail)``, the two halves of bench.json."""
    prepare_process(settings)
    import torch

    out: dict = {}
    from bertvariants.serving.device import cpu_capabilities

    detail: dict = {"cpu": cpu_capabilities().describe(), "torch": torch.__version__,
                    "threads": torch.get_num_threads(), "cpu_count": os.cpu_count(),
                    "load_average_start": os.getloadavg(), "sections": list(settings.sections),
                    "repeats": settings.repeats}
    t_start = time.perf_counter()
    run_sections(settings, out, detail)
    detail["load_average_end"] = os.getloadavg()
    detail["wall_seconds"] = time.perf_counter() - t_start
    return out, detail


def main(argv: list[str] | None = None) -> int:
    from .report import table, write_json, write_plots

    settings = settings_from_argv(argv)
    out, detail = run(settings)
    plots = write_plots(out, settings.out)
    path = write_json(out, detail, settings.out)
    print(table(out))
    print(f"(details: {path}; plots: {', '.join(str(p) for p in plots) or 'none'})")
    print(json.dumps(out))
    return 0
