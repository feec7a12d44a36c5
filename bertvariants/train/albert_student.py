"""``albert-student``: MiniLM distilled into an ALBERT-shaped encoder (Lan et al. 2019, §3.1).

The two parameter reductions of ALBERT applied to the same teacher, to measure what they cost: factorized
embeddings (E = 128, initialised by truncated SVD of MiniLM's table) and cross-layer sharing
(:mod:`bertvariants.albert_init`): by default two shared layers, each applied to 3 consecutive positions
(ALBERT's ``num_hidden_groups`` = 2). One shared layer applied 6 times (``--set hidden_groups=1``, the paper's
"all-shared") is too small a student at MiniLM's width: at equal steps it kept 87% of MiniLM's STS-B Spearman,
two groups 96% (docs/lab.md). By default the V×E table stays frozen (it is recomputed at load from the
packaged MiniLM), so the compact form stores the rest: ≈ 2M parameters, fp16.

Trained with the ``distil-student`` objective (cosine to the teacher's cached sentence embeddings; optional
hidden-state cosine) on the same sentences; reports parameters of both and STS-B dev Spearman from the evaluation
harness.

**Choosing the steps without STS-B dev.** ``select_pairs`` STS-B *train* pairs (a seeded sample) are taken out of
the distillation sentences; every ``eval_every`` steps the student's Spearman on them is measured and the best
weights are kept (:class:`StepSelection`), so STS-B dev is only ever reported. ``squad_questions`` SQuAD v1.0
train questions join the sentences (STS-B test's question–question and forum genres are questions; the
distillation needs no labels).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

from evaluation.loaders import read_tsv

from ..albert_init import albert_from_bert
from ..inference import encode
from .config import TrainConfig, base_model_path, output_dir
from .data import data_file
from .distil_student import (
    compare,
    distillation_sentences,
    distillation_setup,
    score_stsb,
)
from .loop import fit, seed_everything
from .lora import export_on_frozen_base
from .records import RunReport, finish, save_checkpoint
from .squad_data import TRAIN_PARTS, read_articles

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
    hidden_groups: int = 2  # ALBERT's num_hidden_groups: shared layers, each applied to 6 / groups positions
    hidden_weight: float = 0.0  # DistilBERT's hidden-state cosine term (> 0 runs the teacher live)
    train_sentences: int = 40000
    cpu_bf16: bool = True
    freeze_word_embeddings: bool = True  # keep the SVD table U_E·Σ_E (recomputed at load, not stored: the compact form)
    select_pairs: int = 1000  # STS-B train pairs held out of distillation to choose the steps (0: keep the last step)
    eval_every: int = 300  # steps between two measurements on the selection pairs
    squad_questions: int = 8000  # SQuAD v1.0 train questions added to the distillation sentences (0: none)


STSB_TRAIN = "glue/stsb/sts-train.csv"
SELECT_FILE = "stsb-select.csv"  # the selection pairs, written beside the model in STS-B's own format


def selection_pairs(cfg: AlbertStudentConfig) -> list[list[str]]:
    """``cfg.select_pairs`` rows of STS-B train (a seeded sample, in file order), as the file's own columns."""
    rows = read_tsv(data_file(cfg, STSB_TRAIN, what="STS-B train"))
    if cfg.select_pairs >= len(rows):
        raise ValueError(f"select_pairs={cfg.select_pairs} leaves nothing of STS-B train's {len(rows)} pairs "
                         "to train on")
    keep = sorted(random.Random(cfg.seed).sample(range(len(rows)), cfg.select_pairs))
    return [rows[i] for i in keep]


def student_sentences(cfg: AlbertStudentConfig, held: list[list[str]]) -> tuple[list[str], dict[str, str]]:
    """The distillation sentences less every sentence of the selection pairs, with SQuAD questions mixed in."""
    sentences, sources = distillation_sentences(cfg, limit=10**9)
    if cfg.squad_questions:
        paths = [data_file(cfg, part, what="SQuAD v1.0 train part") for part in TRAIN_PARTS]
        questions = sorted({qa["question"].strip() for a in read_articles(paths) for p in a["paragraphs"]
                            for qa in p["qas"]})
        sentences += random.Random(cfg.seed).sample(questions, min(cfg.squad_questions, len(questions)))
        sources["squad"] = str(Path(paths[0]).parent)
    banned = {s for row in held for s in (row[5], row[6])}
    sentences = [s for s in dict.fromkeys(sentences) if s not in banned]
    random.Random(cfg.seed + 1).shuffle(sentences)
    return sentences[: cfg.train_sentences], sources


class StepSelection:
    """Chooses the training steps on held-out pairs: the batch stream calls :meth:`check` every ``every`` draws
    (between two optimizer steps), which scores the student's cosine against the pairs' gold (Spearman) and keeps
    a copy of the best weights; :meth:`restore` loads them back after training."""

    def __init__(self, student, tokenizer, pairs: list[list[str]], *, every: int, max_length: int):
        self.student, self.tokenizer, self.every, self.max_length = student, tokenizer, every, max_length
        self.a, self.b = [r[5] for r in pairs], [r[6] for r in pairs]
        self.gold = [float(r[4]) for r in pairs]
        self.history: list[dict] = []
        self.best: dict | None = None

    def spearman(self) -> float:
        from scipy.stats import spearmanr

        was_training = self.student.training
        self.student.eval()
        u, v = (encode(self.student, self.tokenizer, side, pooling="mean", max_length=self.max_length)
                for side in (self.a, self.b))
        self.student.train(was_training)
        return 100 * float(spearmanr((u * v).sum(-1).numpy(), self.gold).statistic)

    def check(self, step: int) -> None:
        score = self.spearman()
        self.history.append({"step": step, "spearman": round(score, 4)})
        if self.best is None or score > self.best["spearman"]:
            self.best = {"step": step, "spearman": score,
                         "state": {k: t.detach().clone() for k, t in self.student.state_dict().items()}}

    def wrap(self, batches):
        for draw, batch in enumerate(batches):
            if draw and draw % self.every == 0:
                self.check(draw)
            yield batch

    def restore(self) -> dict:
        """Load the best weights; returns the choice (step, Spearman, every measurement)."""
        self.student.load_state_dict(self.best["state"])
        return {"step": self.best["step"], "spearman": round(self.best["spearman"], 4), "history": self.history}


def run(cfg: AlbertStudentConfig, *, progress: bool = True) -> RunReport:
    from transformers import AutoTokenizer, BertModel

    seed_everything(cfg.seed)
    base = base_model_path(cfg)
    tokenizer = AutoTokenizer.from_pretrained(base)
    held = selection_pairs(cfg) if cfg.select_pairs else []
    sentences, sources = student_sentences(cfg, held)
    teacher = BertModel.from_pretrained(base).eval()
    student = albert_from_bert(teacher, embedding_size=cfg.embedding_size, shared_from=cfg.shared_from,
                               hidden_groups=cfg.hidden_groups)
    if cfg.freeze_word_embeddings:
        student.embeddings.word_embeddings.weight.requires_grad_(False)
    setup = distillation_setup(cfg, student, teacher, tokenizer, sentences, progress=progress)
    selection = (StepSelection(student, tokenizer, held, every=cfg.eval_every, max_length=cfg.max_length)
                 if held else None)
    if selection is not None:
        setup.batches = selection.wrap(setup.batches)
    result = fit(setup, cfg, desc=NAME, progress=progress)
    chosen = None
    if selection is not None:
        selection.check(result.steps)
        chosen = selection.restore()
    out = output_dir(cfg, NAME)
    if cfg.freeze_word_embeddings and not cfg.base_model:  # compact: everything but the recomputable V×E table
        export_on_frozen_base(student, out, frozen=FROZEN, name=NAME, kind="sentence-embedding", base="albert-minilm",
                              config={"embedding_size": cfg.embedding_size, "shared_from": cfg.shared_from,
                                      "hidden_groups": cfg.hidden_groups},
                              recipe=NAME, max_length=tokenizer.model_max_length)
    else:
        save_checkpoint(student, tokenizer, out)
    scored = compare(*score_stsb(cfg, out, base))
    span = student.config.num_hidden_layers // cfg.hidden_groups
    sources_of = ", ".join(str(g * span + min(cfg.shared_from, span - 1)) for g in range(cfg.hidden_groups))
    shared = (f"one layer (from teacher layer {sources_of}) applied {span}×" if cfg.hidden_groups == 1
              else f"{cfg.hidden_groups} shared layers (from teacher layers {sources_of}), each applied {span}×")
    notes = f"AlbertModel: E = {cfg.embedding_size} (truncated SVD of MiniLM's embeddings), {shared}."
    data = {**sources, "sentences": str(len(sentences))}
    if chosen is not None:
        write_selection(out / SELECT_FILE, held)
        scored["details"] = {**scored.get("details", {}), "steps_chosen": chosen}
        data["selection"] = (f"{len(held)} STS-B train pairs held out of the distillation sentences "
                             f"({SELECT_FILE}, seed {cfg.seed})")
        notes += (f" Steps chosen on the held-out STS-B train pairs, never on dev: the weights of step "
                  f"{chosen['step']} (Spearman {chosen['spearman']:.2f} there; measured every {cfg.eval_every} steps: "
                  + ", ".join(f"{h['step']}: {h['spearman']:.2f}" for h in chosen["history"]) + ").")
    return finish(recipe=NAME, name=NAME, title=f"ALBERT-shaped student of MiniLM (E={cfg.embedding_size}, "
                  + ("one shared layer)" if cfg.hidden_groups == 1 else f"{cfg.hidden_groups} shared layers)"), cfg=cfg,
                  fit=result, out=out, result=scored, variant="ALBERT",
                  paper="Lan et al. 2019 (ALBERT) §3.1 factorized embeddings + cross-layer sharing",
                  data=data, notes=notes)


def write_selection(path: Path, rows: list[list[str]]) -> Path:
    """The selection pairs in STS-B's tab-separated format (``python -m evaluation run --task stsb --data``)."""
    path.write_text("".join("\t".join(r) + "\n" for r in rows), encoding="utf-8")
    return path
