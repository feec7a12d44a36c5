"""``distil-student``: a 3-layer sentence encoder distilled from MiniLM (Sanh et al. 2019, DistilBERT §3).

Student initialisation (§3 "taking one layer out of two"): MiniLM's embeddings and its layers 1, 3, 5
(:func:`bertvariants.distillation.init_student_from_teacher`; keeping the last layer starts the student at
STS-B dev Spearman 76.1 where layers 0, 2, 4 start at 73.8). Training matches the teacher on unlabelled
sentences from Wikipedia, SST-2 and STS-B train:

    L = (1 − cos(mean-pooled student, mean-pooled teacher))  +  w_hidden · L_cos(hidden states)

The first term aligns the sentence embeddings that the Sentence-BERT tab and STS-B score (the embedding
distillation of Reimers & Gurevych 2020, §2, with cosine instead of MSE because STS ranks by cosine). The
teacher is frozen and deterministic in eval mode, so its sentence embeddings are computed once, through the
batched inference path, before training: a step then costs one 3-layer forward + backward instead of that
plus a 6-layer teacher forward. The second term is DistilBERT's cosine loss on the last hidden states
(:func:`cosine_embedding_loss`); it needs the teacher's token states every step, so it is off by default
(``hidden_weight`` > 0 turns it on and runs the teacher live). DistilBERT's soft-target MLM term needs an MLM
head, which MiniLM does not have, so it is left out (the :mod:`bertvariants.distillation` docstring has the
full triple loss). Batches group sentences of similar length (:class:`BucketSampler`), so little is padding.

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

from evaluation.loaders import load_sst2, load_stsb

from ..common import pool
from ..corpus import read_corpus
from ..distillation import cosine_embedding_loss, init_student_from_teacher
from ..inference import encode
from ..lab_step import with_lora
from .config import TrainConfig, base_model_path, output_dir
from .data import WIKIPEDIA, BucketSampler, data_file, labelled_texts
from .loop import Setup, fit, seed_everything
from .lora import save_model
from .records import RunReport, finish, harness

NAME = "distil-student"
KIND = "sentence-embedding"


@dataclass(frozen=True)
class DistilStudentConfig(TrainConfig):
    steps: int = 1200
    batch_size: int = 32
    lr: float = 5e-4  # LoRA's rate; full fine-tuning of the 3 layers (lora_rank=0) used 1e-4
    max_length: int = 64
    lora_rank: int = 32  # the shipped student: LoRA over MiniLM's layers 1, 3, 5; 0 = full fine-tuning
    cpu_bf16: bool = True
    student_layers: tuple[int, ...] = (1, 3, 5)  # teacher layers copied into the student (every other one)
    hidden_weight: float = 0.0  # weight of DistilBERT's hidden-state cosine loss (> 0 runs the teacher live)
    train_sentences: int = 40000  # cap; a run uses at most steps × batch_size of them (each seen once)


_SPLIT = re.compile(r"(?<=[.!?])\s+")


def distillation_sentences(cfg: TrainConfig, *, limit: int) -> tuple[list[str], dict[str, str]]:
    """Unlabelled sentences: Wikipedia (split at sentence ends, 5–60 words), SST-2 train, STS-B train (both sides).

    Each source contributes what is available; shuffled with the config's seed and capped at ``limit``."""
    wiki = data_file(cfg, WIKIPEDIA, what="Wikipedia corpus")
    sst = data_file(cfg, "glue/sst2/train.tsv", what="SST-2 train")
    sts = data_file(cfg, "glue/stsb/sts-train.csv", what="STS-B train")
    sents = [s for doc in read_corpus(wiki) for s in _SPLIT.split(doc.replace("\n", " ")) if 5 <= len(s.split()) <= 60]
    sents += [t for t in labelled_texts(load_sst2(sst, split="train"))[0] if len(t.split()) >= 4]
    sents += [s for e in load_stsb(sts, split="train").examples for s in (e.text, e.text_pair)]
    sents = sorted(set(sents))
    random.Random(cfg.seed).shuffle(sents)
    return sents[:limit], {"wikipedia": str(wiki), "sst2": str(sst), "stsb": str(sts)}


def sentence_batches(tokenizer, sentences: list[str], *, batch_size: int, max_length: int, seed: int):
    """Seeded batches of similar-length sentences (dynamic padding), each with the sentences' ``index``."""
    for idx in BucketSampler([len(t) for t in sentences], batch_size, seed=seed):
        batch = dict(tokenizer([sentences[i] for i in idx], truncation=True, max_length=max_length, padding=True,
                               return_tensors="pt"))
        batch["index"] = torch.tensor(idx)
        yield batch


def teacher_targets(teacher, tokenizer, sentences: list[str], *, max_length: int, progress: bool) -> torch.Tensor:
    """The frozen teacher's mean-pooled sentence embeddings (N, H), computed once with the batched inference path
    (same truncation as the training batches)."""
    return encode(teacher, tokenizer, sentences, pooling="mean", normalize=False, max_length=max_length,
                  progress=progress).float()


def embedding_distillation_loss(targets: torch.Tensor, *, teacher=None, hidden_weight: float = 0.0):
    """loss_fn(student, batch): 1 − cos(pooled student, cached teacher target) [+ hidden_weight · L_cos]."""
    if hidden_weight and teacher is None:
        raise ValueError("hidden_weight > 0 needs the teacher (its token states are not cached)")
    on_device: dict = {}

    def loss_fn(student, batch):
        mask = batch["attention_mask"]
        s = student(input_ids=batch["input_ids"], attention_mask=mask).last_hidden_state  # (B, T, H)
        if on_device.get("device") != s.device:
            on_device.update(device=s.device, targets=targets.to(s.device))
        target = on_device["targets"][batch["index"]]  # (B, H)
        sent = 1 - F.cosine_similarity(pool(s.float(), mask), target, dim=-1).mean()
        logs = {"sentence_cos": sent}
        loss = sent
        if hidden_weight:
            with torch.no_grad():
                t = teacher(input_ids=batch["input_ids"], attention_mask=mask).last_hidden_state  # (B, T, H)
            hidden = cosine_embedding_loss(s, t, mask)
            loss = loss + hidden_weight * hidden
            logs["hidden_cos"] = hidden
        return {"loss": loss, **logs}

    return loss_fn


def distillation_setup(cfg, student, teacher, tokenizer, sentences: list[str], *, progress: bool) -> Setup:
    """The shared setup of both sentence students: the sentences a run will see, their cached teacher targets,
    bucketed batches and the embedding-distillation loss."""
    sentences = sentences[: cfg.total_steps * cfg.batch_size]
    targets = teacher_targets(teacher, tokenizer, sentences, max_length=cfg.max_length, progress=progress)
    return Setup(model=student, loss_fn=embedding_distillation_loss(targets, teacher=teacher,
                                                                    hidden_weight=cfg.hidden_weight),
                 batches=sentence_batches(tokenizer, sentences, batch_size=cfg.batch_size,
                                          max_length=cfg.max_length, seed=cfg.seed))


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
    details = {**student.get("details", {}), "teacher_seconds": teacher["seconds"],
               "student_seconds": student["seconds"], "teacher_params": teacher["params"]}
    return {**student, "metrics": metrics, "details": details}


def run(cfg: DistilStudentConfig, *, progress: bool = True) -> RunReport:
    from transformers import AutoTokenizer, BertModel

    seed_everything(cfg.seed)
    base = base_model_path(cfg)
    tokenizer = AutoTokenizer.from_pretrained(base)
    sentences, sources = distillation_sentences(cfg, limit=cfg.train_sentences)
    teacher = BertModel.from_pretrained(base).eval()
    student = init_student_from_teacher(teacher, layers=list(cfg.student_layers))
    if cfg.lora_rank:  # the compact form: the packaged layers 1, 3, 5 rebuilt at load + this adapter
        student = with_lora(student, KIND, rank=cfg.lora_rank)
    setup = distillation_setup(cfg, student, teacher, tokenizer, sentences, progress=progress)
    result = fit(setup, cfg, desc=NAME, progress=progress)
    out = output_dir(cfg, NAME)
    save_model(setup.model, tokenizer, out, cfg, name=NAME, kind=KIND, base="minilm-layers",
               layers=tuple(cfg.student_layers))
    scored = compare(*score_stsb(cfg, out, base))
    return finish(recipe=NAME, name=NAME, title=f"{len(cfg.student_layers)}-layer MiniLM student (DistilBERT-style)",
                  cfg=cfg, fit=result, out=out, result=scored, variant="Distillation",
                  paper="Sanh et al. 2019 (DistilBERT) §3: every-other-layer initialisation; "
                        "Reimers & Gurevych 2020 §2: sentence-embedding distillation",
                  data={**sources, "sentences": str(len(sentences))},
                  notes=f"BertModel, teacher layers {list(cfg.student_layers)}; use mean pooling (Sentence-BERT).")
