"""The ``sst2`` section: ``pipeline("text-classification")`` at batch 1 and 32 versus ``inference.classify``.

Both run the same classifier on SST-2 dev (models/sst2-teacher when trained, else a seeded classifier head
on MiniLM); fp32 predictions must be identical before a time counts.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from ..tasks import benchmark, load
from .settings import FAST_PRECISION, BenchSettings
from .timing import alternate, log, medians

PIPE_1 = "pipeline batch 1"
PIPE_32 = "pipeline batch 32"
OURS = "ours classify"
OURS_FAST = f"ours classify fast ({FAST_PRECISION})"


def sst2_classifier(tmp: Path) -> tuple[str, str]:
    """(location, description): the project's SST-2 teacher — the one you trained in models/ when present, else the
    one shipped in the repository, rebuilt (LoRA merged) and saved to ``tmp`` so that transformers' ``pipeline``
    reads the very same weights; a seeded classifier head on MiniLM only if neither exists."""
    from bertvariants.serving import load_checkpoint, packaged_model_path
    from bertvariants.serving.sources import project_model

    teacher = project_model("sst2-teacher")
    if teacher is not None and teacher.source == "trained" and (Path(teacher.location) / "config.json").is_file():
        return teacher.location, "models/sst2-teacher (trained here)"
    if teacher is not None:
        loaded = load_checkpoint(teacher.location, "sequence-classification", device="cpu")
        loaded.model.save_pretrained(tmp)
        loaded.tokenizer.save_pretrained(tmp)
        return str(tmp), "the shipped sst2-teacher (bertvariants/assets/models, LoRA merged)"
    import torch
    from transformers import AutoTokenizer, BertForSequenceClassification

    path = packaged_model_path()
    torch.manual_seed(0)
    model = BertForSequenceClassification.from_pretrained(path, num_labels=2)  # head initialised from seed 0
    model.save_pretrained(tmp)
    AutoTokenizer.from_pretrained(path).save_pretrained(tmp)
    return str(tmp), "MiniLM + classifier head initialised with seed 0 (no trained teacher here)"


def bench_sst2(settings: BenchSettings, out: dict, detail: dict) -> None:
    from transformers import pipeline

    from bertvariants.inference import classify, fast_path
    from bertvariants.serving import load_checkpoint

    ds = load(benchmark("sst2"), None, settings.sst2)
    texts = [e.text for e in ds.examples]
    with tempfile.TemporaryDirectory(prefix="bv-bench-") as tmp:
        location, what = sst2_classifier(Path(tmp))
        ours = load_checkpoint(location, "sequence-classification", device="cpu")
        pipe = pipeline("text-classification", model=location, device="cpu")
        log(f"sst2: {len(texts)} sentences, classifier: {what}")
        label_id = {v: int(k) for k, v in pipe.model.config.id2label.items()}

        def run_pipe(bs: int):
            return lambda: [label_id[r["label"]] for r in pipe(texts, batch_size=bs, truncation=True)]

        fns = {PIPE_1: run_pipe(1), PIPE_32: run_pipe(32),
               OURS: lambda: classify(ours.model, ours.tokenizer, texts).argmax(-1).tolist(),
               OURS_FAST: lambda: classify(
                   ours.model, ours.tokenizer, texts, precision=FAST_PRECISION).argmax(-1).tolist()}
        preds = {k: f() for k, f in fns.items()}
        agree = {k: float(np.mean(np.array(p) == np.array(preds[PIPE_1]))) for k, p in preds.items()}
        exact = [k for k in fns if "fast" not in k]
        assert all(agree[k] == 1.0 for k in exact), f"fp32 predictions differ from the pipeline's: {agree}"
        cpu: dict[str, list[float]] = {}
        times = alternate(fns, settings.repeats, cpu)
    med, med_cpu = medians(times), medians(cpu)
    out["sst2_fast_path"] = fast_path(ours.model).precision
    detail["fast_path_sst2"] = fast_path(ours.model).describe()
    out["sst2_vs_pipeline_bs1"] = round(med[PIPE_1] / med[OURS], 3)
    out["sst2_vs_pipeline_bs32"] = round(med[PIPE_32] / med[OURS], 3)
    out["sst2_vs_pipeline_bs1_fast"] = round(med[PIPE_1] / med[OURS_FAST], 3)
    out["sst2_vs_pipeline_bs32_fast"] = round(med[PIPE_32] / med[OURS_FAST], 3)
    out["sst2_fast_prediction_agreement"] = round(agree[OURS_FAST], 4)
    out["sst2_cpu_time_ratio_bs1"] = round(med_cpu[PIPE_1] / med_cpu[OURS], 3)
    out["sst2_cpu_time_ratio_bs32"] = round(med_cpu[PIPE_32] / med_cpu[OURS], 3)
    labels = np.array([int(e.label) for e in ds.examples])
    detail["sst2"] = {"classifier": what, "sentences": len(texts), "seconds": med, "all_seconds": times,
                      "cpu_seconds": med_cpu,
                      "sentences_per_second": {k: len(texts) / v for k, v in med.items()},
                      "agreement_with_pipeline": agree, "accuracy": float(np.mean(np.array(preds[OURS]) == labels))}
