"""``albert-student``: MiniLM distilled into an ALBERT-shaped encoder (Lan et al. 2019, §3.1).

The two parameter reductions of ALBERT applied to the same teacher, to measure what they cost: factorized
embeddings (E = 128, initialised by truncated SVD of MiniLM's table) and one shared layer applied 6 times
(:mod:`bertvariants.albert_init`). By default the V×E table stays frozen (it is recomputed at load from the
packaged MiniLM), so the compact form stores the rest: ≈ 2M parameters, fp16.

Trained with the ``distil-student`` objective (cosine to the teacher's cached sentence embeddings; optional
hidden-state cosine) on the same sentences; reports parameters of both and STS-B dev Spearman from the evaluation harness.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..albert_init import albert_from_bert
from .config import TrainConfig, base_model_path, output_dir
from .distil_student import compare, distillation_sentences, distillation_setup, score_stsb
from .loop import fit, seed_everything
from .lora import export_on_frozen_base
from .records import RunReport, finish, save_checkpoint

NAME = "albert-student"
FROZEN = ("embeddings.word_embeddings.",)  # recomputed at load by truncated SVD of the packaged table


@dataclass(frozen=True)
class AlbertStudentConfig(TrainConfig):
    steps: int = 1200
    batch_size: int = 32
    lr: float = 2e-4
    max_length: int = 64
    embedding_size: int = 128  # E (ALBERT §3.1; 128 in every ALBERT size)
    shared_from: int = 2  # teacher layer whose weights initialise the one shared layer
    hidden_weight: float = 0.0  # DistilBERT's hidden-state cosine term (> 0 runs the teacher live)
    train_sentences: int = 40000
    cpu_bf16: bool = True
    freeze_word_embeddings: bool = True  # keep the SVD table U_E·Σ_E (recomputed at load, not stored: the compact form)


def run(cfg: AlbertStudentConfig, *, progress: bool = True) -> RunReport:
    from transformers import AutoTokenizer, BertModel

    seed_everything(cfg.seed)
    base = base_model_path(cfg)
    tokenizer = AutoTokenizer.from_pretrained(base)
    sentences, sources = distillation_sentences(cfg, limit=cfg.train_sentences)
    teacher = BertModel.from_pretrained(base).eval()
    student = albert_from_bert(teacher, embedding_size=cfg.embedding_size, shared_from=cfg.shared_from)
    if cfg.freeze_word_embeddings:
        student.embeddings.word_embeddings.weight.requires_grad_(False)
    setup = distillation_setup(cfg, student, teacher, tokenizer, sentences, progress=progress)
    result = fit(setup, cfg, desc=NAME, progress=progress)
    out = output_dir(cfg, NAME)
    if cfg.freeze_word_embeddings and not cfg.base_model:  # compact: everything but the recomputable V×E table
        export_on_frozen_base(student, out, frozen=FROZEN, name=NAME, kind="sentence-embedding", base="albert-minilm",
                              config={"embedding_size": cfg.embedding_size, "shared_from": cfg.shared_from},
                              recipe=NAME, max_length=tokenizer.model_max_length)
    else:
        save_checkpoint(student, tokenizer, out)
    scored = compare(*score_stsb(cfg, out, base))
    return finish(recipe=NAME, name=NAME, title="ALBERT-shaped student of MiniLM (E=128, one shared layer)", cfg=cfg,
                  fit=result, out=out, result=scored, variant="ALBERT",
                  paper="Lan et al. 2019 (ALBERT) §3.1 factorized embeddings + cross-layer sharing",
                  data={**sources, "sentences": str(len(sentences))},
                  notes=f"AlbertModel: E = {cfg.embedding_size} (truncated SVD of MiniLM's embeddings), one layer "
                        f"(from teacher layer {cfg.shared_from}) applied {student.config.num_hidden_layers}×.")
