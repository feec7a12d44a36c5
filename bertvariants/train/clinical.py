"""``clinical``: the long-note classifier of the ClinicalBERT tab (Huang et al. 2019, §3.4) on MTSamples.

Task: is a transcription from the Surgery specialty (vs any other)? Notes are long (often > 512 tokens), so —
as ClinicalBERT does for readmission — each note is cut into chunks (:func:`bertvariants.clinical_bert.chunk_note`),
every chunk is trained with its note's label, and at test time the chunk probabilities are combined with
eq. 4, P = (P_max + P_mean·n/c) / (1 + n/c), c = 2 (:func:`aggregate_chunk_scores`, used by the harness).

Notes: the harness task ``benchmark`` decides them — ``mtsamples-subset`` (default): train on the 3,700
MTSamples notes over 40 specialties, test on the whole 322-note subset they are disjoint from; ``mtsamples``: the
subset's fixed stratified 50/50 split. Either way the score (AUROC, AUPRC, RP80 from ``evaluation.runner``) is on
notes never trained on, and the harness's frozen-MiniLM probe of the same task learns from the same notes. Chunks are
``max_length`` tokens; the saved tokenizer's ``model_max_length`` is set to the same value so that the
harness and the tab chunk exactly as training did. Output: ``models/clinical``.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..clinical_bert import chunk_note
from .config import TrainConfig, base_model_path, output_dir
from .data import data_file, text_batches
from .loop import Setup, classification_loss, fit, seed_everything
from .lora import save_model, with_lora
from .records import RunReport, finish, harness

NAME = "clinical"
KIND = "sequence-classification"
LABELS = ("other", "Surgery")  # the harness's mtsamples labels (1 = Surgery)


@dataclass(frozen=True)
class ClinicalConfig(TrainConfig):
    steps: int = 600  # ≈ 1 epoch of the 3,700 notes' ≈ 19k chunks at batch 32
    batch_size: int = 32
    lr: float = 5e-4  # LoRA's rate (full fine-tuning, lora_rank=0, used 5e-5)
    lora_rank: int = 16  # the shipped classifier: a LoRA adapter + head (bertvariants.train.lora)
    max_length: int = 128  # tokens per chunk (with [CLS]/[SEP])
    freeze_word_embeddings: bool = True
    benchmark: str = "mtsamples-subset"  # or "mtsamples" (the 322-note subset's 50/50 split)


def chunk_dataset(tokenizer, notes, *, max_tokens: int) -> tuple[list[str], list[int]]:
    """Every chunk of every note, labelled with its note's label (ClinicalBERT §3.4)."""
    texts, labels = [], []
    for e in notes:
        for ch in chunk_note(tokenizer, e.text, max_tokens=max_tokens, max_chunks=100_000):
            texts.append(ch.text)
            labels.append(int(e.label))
    if len(set(labels)) < 2:
        raise ValueError("MTSamples training notes need both Surgery and other notes")
    return texts, labels


def run(cfg: ClinicalConfig, *, progress: bool = True) -> RunReport:
    from transformers import AutoTokenizer, BertForSequenceClassification

    from evaluation import tasks

    bench = tasks.benchmark(cfg.benchmark)
    if bench.format != "long-note":
        raise ValueError(f"benchmark must be an MTSamples long-note task (mtsamples-subset, mtsamples), got {cfg.benchmark!r}")
    path = data_file(cfg, bench.files["train"], what="MTSamples training notes (CSV)")
    test_path = data_file(cfg, bench.files["test"], what="MTSamples test notes (CSV)")
    seed_everything(cfg.seed)
    base = base_model_path(cfg)
    tokenizer = AutoTokenizer.from_pretrained(base)
    tokenizer.model_max_length = cfg.max_length
    train = tasks.load(bench, "train", path)
    texts, labels = chunk_dataset(tokenizer, train.examples, max_tokens=cfg.max_length)
    model = BertForSequenceClassification.from_pretrained(
        base, num_labels=2, id2label=dict(enumerate(LABELS)), label2id={l: i for i, l in enumerate(LABELS)})
    if cfg.freeze_word_embeddings:
        model.bert.embeddings.word_embeddings.weight.requires_grad_(False)
    if cfg.lora_rank:
        model = with_lora(model, KIND, rank=cfg.lora_rank)
    setup = Setup(model=model, loss_fn=classification_loss,
                  batches=text_batches(tokenizer, texts, labels, batch_size=cfg.batch_size,
                                       max_length=cfg.max_length, seed=cfg.seed))
    result = fit(setup, cfg, desc=NAME, progress=progress)
    out = output_dir(cfg, NAME)
    save_model(setup.model, tokenizer, out, cfg, name=NAME, kind=KIND,
               config={"num_labels": 2, "id2label": dict(enumerate(LABELS)), "label2id": {l: i for i, l in enumerate(LABELS)}})
    scored = harness(bench.key, out, data=test_path, split="test", limit=cfg.eval_limit)
    positives = sum(labels)
    return finish(recipe=NAME, name=NAME, title="MTSamples Surgery-vs-other long-note classifier (MiniLM)", cfg=cfg,
                  fit=result, out=out, result=scored, variant="ClinicalBERT",
                  paper="Huang et al. 2019 (ClinicalBERT) §3.4 chunked notes, eq. 4 aggregation with c = 2",
                  data={"notes": f"{path} (harness task {bench.key}, split 'train': {len(train)} notes)",
                        "chunks": f"{len(texts)} chunks of ≤ {cfg.max_length} tokens, {positives} from Surgery notes",
                        "evaluation": f"{test_path} (harness task {bench.key}, split 'test': notes never trained on)"},
                  notes="Labels: 0 = other, 1 = Surgery. Score a note with `bertvariants.clinical_bert.score_note`.")
