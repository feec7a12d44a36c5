"""``bilstm-student``: distil the SST-2 teacher into a BiLSTM (Tang et al. 2019, "Distilling Task-Specific
Knowledge from BERT into Simple Neural Networks").

§3.2: the student regresses the teacher's logits, L = α·CE(gold) + (1 − α)·||z_teacher − z_student||²
(:func:`bertvariants.distillation.tang_objective`; α = 0 — pure logit MSE — is what they found best; the
default here keeps a little gold signal, α = 0.1). §4.2: one BiLSTM layer (150 units per direction), the
two final states concatenated, a 400-unit ReLU layer, the classifier. Offline there is no word2vec/GloVe, so
the word embeddings are initialised from the teacher's token embeddings (384-d, WordPiece vocabulary).

§3.3 data augmentation (optional, ``--augment K``: K new sentences per training sentence, labelled by the
teacher): *masking* (each word → [MASK] with p_mask = 0.1) and *n-gram sampling* (with p_ng = 0.25 keep only
a random n-gram, n ∈ 1..5). The POS-guided word swap needs a tagger and is left out.

Outputs ``models/distil-student-sst2`` (the Distillation tab's student), its SST-2 dev accuracy and the
batch-1 CPU latency of teacher and student measured in the same run.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass

import torch

from evaluation.loaders import load_sst2

from ..common import make_generator
from ..distillation import tang_objective
from ..inference import classify
from ..paths import portable_path
from ..serving import load_checkpoint
from ..serving.shipped import packaged_word_embeddings
from ..serving.sources import local_checkpoint
from ..students import BiLSTMConfig, BiLSTMStudent
from .config import TrainConfig, output_dir
from .data import labelled_texts, text_batches
from .loop import Setup, fit, seed_everything
from .lora import export_on_frozen_base
from .records import RunReport, finish, harness
from .sst2_teacher import LABELS, sst2_files

NAME = "distil-student-sst2"
RECIPE = "bilstm-student"


@dataclass(frozen=True)
class BiLSTMStudentConfig(TrainConfig):
    steps: int = 3000
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 0.0
    warmup: float = 0.02
    max_length: int = 64
    alpha: float = 0.1  # weight of the gold-label cross-entropy (Tang et al. §3.2)
    train_limit: int | None = None  # training sentences labelled by the teacher (None = all 67k)
    augment: int = 0  # §3.3: augmented sentences per training sentence
    p_mask: float = 0.1
    p_ngram: float = 0.25
    teacher: str | None = None  # default <models_dir>/sst2-teacher, else the shipped teacher
    freeze_embedding: bool = True  # keep MiniLM's token embeddings (= the teacher's, frozen there too): not stored
    embedding_rank: int = 64  # with a frozen table: a trained low-rank correction U·V (stored, 2 MB at r = 64)
    latency_sentences: int = 100
    train_file: str | None = None
    dev_file: str | None = None


def augment_sentence(words: list[str], *, generator: torch.Generator, p_mask: float = 0.1, p_ngram: float = 0.25,
                     mask_token: str = "[MASK]") -> list[str]:
    """Tang et al. §3.3: mask each word with p_mask; then with p_ng keep only a random n-gram (n ∈ 1..5)."""
    if not words:
        raise ValueError("cannot augment an empty sentence")
    u = torch.rand(len(words), generator=generator).tolist()
    out = [mask_token if x < p_mask else w for w, x in zip(words, u)]
    if float(torch.rand(1, generator=generator)) < p_ngram:
        n = min(int(torch.randint(1, 6, (1,), generator=generator)), len(out))
        start = int(torch.randint(0, len(out) - n + 1, (1,), generator=generator))
        out = out[start:start + n]
    return out


def augmented(texts: list[str], *, copies: int, seed: int, p_mask: float, p_ngram: float) -> list[str]:
    gen = make_generator(seed)
    return [" ".join(augment_sentence(t.split(), generator=gen, p_mask=p_mask, p_ngram=p_ngram))
            for _ in range(copies) for t in texts if t.split()]


def teacher_path(cfg: BiLSTMStudentConfig):
    """--teacher DIR, else the teacher the Distillation tab serves offline: models/sst2-teacher if you built one,
    else the shipped one (the resolver's order)."""
    return local_checkpoint("distillation-teacher", cfg.teacher, missing="no SST-2 teacher at {path}: build it first "
                            "with `python -m bertvariants.train sst2-teacher` (or pass --teacher DIR)")


def batch1_latency_ms(models: dict, tokenizer, texts: list[str], *, include_tokenization: bool = True,
                      rounds: int = 3) -> dict[str, float]:
    """Median wall time (ms) of one forward pass on one sentence, per model, CPU, no grad (Tang et al. Table 3
    compares models one sentence at a time). Each round runs every model over all ``texts`` in turn, the order
    flipping every round, so a burst of load elsewhere on the machine hits all of them alike; within its turn a
    model runs warm, as it does when served alone (taking turns sentence by sentence would make the small model
    reload its weights from memory after every teacher pass). One warm-up pass each.
    ``include_tokenization``: also time the tokenizer call."""
    encoded = [tokenizer(t, return_tensors="pt", truncation=True, max_length=128) for t in texts]
    names = list(models)
    times: dict[str, list[float]] = {n: [] for n in names}
    with torch.inference_mode():
        for model in models.values():
            model.eval()
            model(input_ids=encoded[0]["input_ids"], attention_mask=encoded[0]["attention_mask"])
        for r in range(rounds):
            for name in (names if r % 2 == 0 else names[::-1]):
                for t, pre in zip(texts, encoded):
                    start = time.perf_counter()
                    enc = tokenizer(t, return_tensors="pt", truncation=True, max_length=128) \
                        if include_tokenization else pre
                    models[name](input_ids=enc["input_ids"], attention_mask=enc["attention_mask"])
                    times[name].append(1000 * (time.perf_counter() - start))
    return {n: statistics.median(v) for n, v in times.items()}


def distill_loss_fn(alpha: float):
    def loss_fn(model, batch):
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
        out = tang_objective(logits, batch["extra"], batch["labels"], alpha=alpha)
        return {"loss": out.loss, "logit_mse": out.distill, "ce": out.student,
                "train_acc": (logits.argmax(-1) == batch["labels"]).float().mean()}

    return loss_fn


def run(cfg: BiLSTMStudentConfig, *, progress: bool = True) -> RunReport:
    train_path, dev_path = sst2_files(cfg)
    teacher_dir = teacher_path(cfg)
    seed_everything(cfg.seed)
    loaded_teacher = load_checkpoint(str(teacher_dir), "sequence-classification", device="cpu")
    teacher, tokenizer = loaded_teacher.model.eval(), loaded_teacher.tokenizer
    texts, labels = labelled_texts(load_sst2(train_path, split="train"))
    order = torch.randperm(len(texts), generator=make_generator(cfg.seed)).tolist()[: cfg.train_limit or len(texts)]
    texts, labels = [texts[i] for i in order], [labels[i] for i in order]
    if cfg.augment:
        extra = augmented(texts, copies=cfg.augment, seed=cfg.seed + 3, p_mask=cfg.p_mask, p_ngram=cfg.p_ngram)
        texts = texts + extra
        labels = labels + [-1] * len(extra)  # unknown gold: their CE term uses the teacher's argmax below
    teacher_logits = classify(teacher, tokenizer, texts, batch_size=128, max_length=cfg.max_length, progress=progress)
    labels = [l if l >= 0 else int(z.argmax()) for l, z in zip(labels, teacher_logits)]

    emb = teacher.bert.embeddings.word_embeddings.weight.detach()
    student = BiLSTMStudent(BiLSTMConfig(vocab_size=emb.shape[0], embedding_dim=emb.shape[1],
                                         pad_token_id=tokenizer.pad_token_id, id2label=dict(enumerate(LABELS)),
                                         embedding_rank=cfg.embedding_rank if cfg.freeze_embedding else 0))
    student.embedding.weight.data.copy_(emb)  # no GloVe offline: start from the teacher's token embeddings
    if cfg.freeze_embedding:
        student.embedding.weight.requires_grad_(False)
    setup = Setup(model=student, loss_fn=distill_loss_fn(cfg.alpha),
                  batches=text_batches(tokenizer, texts, labels, batch_size=cfg.batch_size, max_length=cfg.max_length,
                                       seed=cfg.seed, extra=teacher_logits))
    result = fit(setup, cfg, desc=RECIPE, progress=progress)
    student = setup.model.cpu().eval()
    out = output_dir(cfg, NAME)
    if cfg.freeze_embedding and torch.equal(emb, packaged_word_embeddings()):
        # compact: the (frozen) embedding table is the packaged MiniLM's (a teacher trained with frozen word
        # embeddings on it), recomputed at load; only the rest is stored
        export_on_frozen_base(student, out, frozen=("embedding.",), name=NAME, kind="sequence-classification",
                              base="bilstm-minilm", config=student.config.to_json(), recipe=RECIPE,
                              max_length=tokenizer.model_max_length)
    else:
        student.save_pretrained(out, tokenizer=tokenizer)

    # SST-2 dev accuracy of student and teacher from the evaluation harness (the Leaderboard's code path)
    scored_student = harness("sst2", out, data=dev_path, limit=cfg.eval_limit)
    scored_teacher = harness("sst2", teacher_dir, data=dev_path, limit=cfg.eval_limit)
    acc_student = scored_student["metrics"]["accuracy"]
    acc_teacher = scored_teacher["metrics"]["accuracy"]
    dev_texts, _ = labelled_texts(load_sst2(dev_path, split="dev"))
    sample = dev_texts[: cfg.latency_sentences]
    pair = {"teacher": teacher, "student": student}
    with_tok = batch1_latency_ms(pair, tokenizer, sample)
    model_only = batch1_latency_ms(pair, tokenizer, sample, include_tokenization=False)
    lat_teacher, lat_student = with_tok["teacher"], with_tok["student"]
    model_teacher, model_student = model_only["teacher"], model_only["student"]
    params_student = sum(p.numel() for p in student.parameters())
    metrics = {"accuracy": acc_student, "teacher_accuracy": acc_teacher, "latency_ms_batch1": lat_student,
               "teacher_latency_ms_batch1": lat_teacher, "speedup_batch1": lat_teacher / lat_student,
               "model_latency_ms_batch1": model_student, "teacher_model_latency_ms_batch1": model_teacher,
               "model_speedup_batch1": model_teacher / model_student}
    scored = {**scored_student, "metrics": {**scored_student["metrics"], **metrics}, "variant": "Distillation",
              "details": {**scored_student.get("details", {}),
                          "method": "BiLSTM student (Tang et al. 2019), scored by the evaluation harness",
                          "teacher": portable_path(teacher_dir), "teacher_params": scored_teacher.get("params"),
                          "latency": f"median of {len(sample)} single sentences × 3 rounds, teacher and student "
                                     "taking turns by round; latency_* includes tokenization, model_latency_* times "
                                     "the forward pass alone"}}
    return finish(recipe=RECIPE, name=NAME, title="BiLSTM student of the SST-2 teacher (Tang et al. 2019)", cfg=cfg,
                  fit=result, out=out, result=scored, variant="Distillation",
                  paper="Tang et al. 2019 §3.2 logit-regression distillation, §3.3 augmentation, §4.2 BiLSTM",
                  data={"train": f"{train_path} ({len(texts)} sentences incl. {cfg.augment}× augmentation)",
                        "dev": str(dev_path), "teacher": portable_path(teacher_dir)},
                  notes=f"Loads through `bertvariants.serving` (the BiLSTM or compact loader). "
                        f"{params_student:,} parameters; α = {cfg.alpha}.")
