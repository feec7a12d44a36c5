"""``distil-student``: a 3-layer sentence encoder distilled from MiniLM (Sanh et al. 2019, DistilBERT §3).

Student initialisation (§3 "taking one layer out of two"): MiniLM's embeddings and its layers 0, 2, 4
(:func:`bertvariants.distillation.init_student_from_teacher`). Training matches the teacher on unlabelled
sentences from Wikipedia, SST-2 and STS-B train:

    L = L_cos(hidden states)  +  (1 − cos(mean-pooled student, mean-pooled teacher))

L_cos is DistilBERT's cosine loss on the last hidden states (:func:`cosine_embedding_loss`); the second term
aligns the sentence embeddings the Sentence-BERT tab and STS-B score. DistilBERT's soft-target MLM term needs
an MLM head, which MiniLM does not have, so it is left out (the module docstring of
:mod:`bertvariants.distillation` has the full triple loss).

Reports STS-B dev Spearman of student and teacher and their encoding speed, both from the evaluation
harness (``stsb`` task). The helpers here are shared with ``albert-student``.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from pathlib import Path

import torch
from torch.nn import functional as F

from ..common import pool
from ..distillation import cosine_embedding_loss, init_student_from_teacher
from .common import (
    RunReport,
    Setup,
    TrainConfig,
    base_model_path,
    data_file,
    finish,
    fit,
    harness,
    output_dir,
    read_corpus,
    read_sst2,
    read_stsb,
    save_checkpoint,
    seed_everything,
)
from .common import Sampler

NAME = "distil-student"


@dataclass(frozen=True)
class DistilStudentConfig(TrainConfig):
    steps: int = 600
    batch_size: int = 32
    lr: float = 1e-4
    max_length: int = 64
    student_layers: tuple[int, ...] = (0, 2, 4)  # teacher layers copied into the student (every other one)
    sentence_weight: float = 1.0  # weight of the pooled-embedding cosine term
    train_sentences: int = 40000


_SPLIT = re.compile(r"(?<=[.!?])\s+")


def distillation_sentences(cfg: TrainConfig, *, limit: int) -> tuple[list[str], dict[str, str]]:
    """Unlabelled sentences: Wikipedia (split at sentence ends, 5–60 words), SST-2 train, STS-B train (both sides).

    Each source contributes what is available; shuffled with the config's seed and capped at ``limit``."""
    wiki = data_file(cfg, "corpus/enwiki_sample.jsonl", what="Wikipedia corpus")
    sst = data_file(cfg, "glue/sst2/train.tsv", what="SST-2 train")
    sts = data_file(cfg, "glue/stsb/sts-train.csv", what="STS-B train")
    sents = [s for doc in read_corpus(wiki) for s in _SPLIT.split(doc.replace("\n", " ")) if 5 <= len(s.split()) <= 60]
    sents += [t for t in read_sst2(sst)[0] if len(t.split()) >= 4]
    a, b, _ = read_stsb(sts)
    sents += a + b
    sents = sorted(set(sents))
    random.Random(cfg.seed).shuffle(sents)
    return sents[:limit], {"wikipedia": str(wiki), "sst2": str(sst), "stsb": str(sts)}


def sentence_batches(tokenizer, sentences: list[str], *, batch_size: int, max_length: int, seed: int):
    for idx in Sampler(len(sentences), batch_size, seed=seed):
        yield dict(tokenizer([sentences[i] for i in idx], truncation=True, max_length=max_length, padding=True,
                             return_tensors="pt"))


def embedding_distillation_loss(teacher, *, sentence_weight: float):
    """loss_fn(student, batch): L_cos on last hidden states + sentence-embedding cosine, teacher frozen."""

    def loss_fn(student, batch):
        mask = batch["attention_mask"]
        with torch.no_grad():
            t = teacher(input_ids=batch["input_ids"], attention_mask=mask).last_hidden_state  # (B, T, H)
        s = student(input_ids=batch["input_ids"], attention_mask=mask).last_hidden_state  # (B, T, H)
        hidden = cosine_embedding_loss(s, t, mask)
        sent = 1 - F.cosine_similarity(pool(s.float(), mask), pool(t.float(), mask), dim=-1).mean()
        return {"loss": hidden + sentence_weight * sent, "hidden_cos": hidden, "sentence_cos": sent}

    return loss_fn


def score_stsb(cfg: TrainConfig, student_dir: Path, teacher_dir: str) -> tuple[dict, dict]:
    """(student result, teacher result) of the evaluation harness on STS-B dev."""
    dev = data_file(cfg, "glue/stsb/sts-dev.csv", what="STS-B dev")
    return (harness("stsb", student_dir, data=dev, limit=cfg.eval_limit),
            harness("stsb", Path(teacher_dir), data=dev, limit=cfg.eval_limit))


def compare(student: dict, teacher: dict) -> dict:
    """Merge the two harness records into the student's, adding retention and speed-up."""
    sm, tm = student["metrics"], teacher["metrics"]
    metrics = {**sm, "teacher_spearman": tm["spearman"], "spearman_retained": sm["spearman"] / tm["spearman"],
               "encode_speedup": teacher["seconds"] / student["seconds"],
               "params_ratio": teacher["params"] / student["params"]}
    details = {**student.get("details", {}), "teacher_seconds": teacher["seconds"], "student_seconds": student["seconds"],
               "teacher_params": teacher["params"]}
    return {**student, "metrics": metrics, "details": details}


def run(cfg: DistilStudentConfig, *, progress: bool = True) -> RunReport:
    from transformers import AutoTokenizer, BertModel

    seed_everything(cfg.seed)
    base = base_model_path(cfg)
    tokenizer = AutoTokenizer.from_pretrained(base)
    sentences, sources = distillation_sentences(cfg, limit=cfg.train_sentences)
    teacher = BertModel.from_pretrained(base).eval()
    student = init_student_from_teacher(teacher, layers=list(cfg.student_layers))
    setup = Setup(model=student, loss_fn=embedding_distillation_loss(teacher, sentence_weight=cfg.sentence_weight),
                  batches=sentence_batches(tokenizer, sentences, batch_size=cfg.batch_size, max_length=cfg.max_length,
                                           seed=cfg.seed))
    result = fit(setup, cfg, desc=NAME, progress=progress)
    out = output_dir(cfg, NAME)
    save_checkpoint(setup.model, tokenizer, out)
    scored = compare(*score_stsb(cfg, out, base))
    return finish(recipe=NAME, name=NAME, title=f"{len(cfg.student_layers)}-layer MiniLM student (DistilBERT-style)",
                  cfg=cfg, fit=result, out=out, result=scored, variant="Distillation",
                  paper="Sanh et al. 2019 (DistilBERT) §3: every-other-layer initialisation, cosine loss",
                  data={**sources, "sentences": str(len(sentences))},
                  notes=f"BertModel, teacher layers {list(cfg.student_layers)}; use mean pooling (Sentence-BERT).")
