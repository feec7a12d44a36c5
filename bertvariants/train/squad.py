"""``squad``: extractive question answering on SQuAD v1.0 train — the SpanBERT tab's offline QA model.

Devlin et al. 2019 §4.2–4.3: a start and an end vector score every token of (question, context); the answer
is the best span (:mod:`bertvariants.qa`). Contexts longer than the window are cut into overlapping windows
(``max_length`` tokens, ``stride`` overlap), and a window that does not contain the answer is trained to point
at [CLS], the "no answer" position. SQuAD 2.0's way of learning no-answer (§4.3: the null span's score s_null
against the best span) is taught with unanswerable pairs built as Rajpurkar et al. 2018 §3 suggests: with
probability ``unanswerable`` a question is paired with another paragraph of its own article (plausible text,
no answer), target [CLS].

Defaults fit a 2-core CPU (LoRA rank 16 over the packaged MiniLM, bf16 autocast where native): a first model,
scored by the evaluation harness on the SQuAD v1.1 dev slice (``squad_v1``; the same code as
``python -m evaluation run --task squad_v1 --model models/squad``).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

import torch

from ..lab_step import with_lora
from .config import TrainConfig, base_model_path, output_dir
from .data import data_file
from .loop import Setup, fit, seed_everything
from .lora import save_model
from .records import RunReport, finish, harness
from .squad_data import TRAIN_PARTS, QAExample, read_articles, read_examples
from .squad_null import calibrate

NAME = "squad"
KIND = "question-answering"
DEV = "squad/dev-v1.1-slice.json"


@dataclass(frozen=True)
class SquadConfig(TrainConfig):
    steps: int = 1500
    batch_size: int = 16
    lr: float = 5e-4  # LoRA wants a larger rate than full fine-tuning
    max_length: int = 192  # window length (question + context + 3 specials)
    stride: int = 64  # overlap of consecutive windows of one context
    unanswerable: float = 0.25  # share of questions paired with another paragraph of their article
    cpu_bf16: bool = True
    lora_rank: int = 16
    hold_out_articles: bool = True  # never train on the articles the null threshold is chosen / reported on
    calibrate_questions: int = 800  # pairs of the held-out 'calibrate' articles that choose τ (0: keep τ = 0)


def window_targets(enc, i: int, ex: QAExample) -> tuple[int, int]:
    """(start token, end token) of the answer in window ``i``, or (0, 0) = [CLS] when the window lacks it."""
    if ex.answer_start < 0:
        return 0, 0
    seq = enc.sequence_ids(i)
    offsets = enc["offset_mapping"][i]
    lo, hi = seq.index(1), len(seq) - 1 - seq[::-1].index(1)  # the context's first and last tokens
    start_char, end_char = ex.answer_start, ex.answer_start + len(ex.answer_text)
    if offsets[lo][0] > start_char or offsets[hi][1] < end_char:
        return 0, 0
    s = lo
    while s <= hi and offsets[s][0] <= start_char:
        s += 1
    e = hi
    while e >= lo and offsets[e][1] >= end_char:
        e -= 1
    return s - 1, e + 1


def qa_batches(tokenizer, examples: list[QAExample], *, batch_size: int, max_length: int, stride: int, seed: int):
    """Seeded batches of windows: questions in a shuffled order, each cut into windows, ``batch_size`` windows
    per batch (the first window of a long context is as likely as any to hold the answer)."""
    order = list(range(len(examples)))
    rng = random.Random(seed)
    pending: list[dict] = []
    while True:
        rng.shuffle(order)
        for lo in range(0, len(order), batch_size):
            chunk = [examples[j] for j in order[lo:lo + batch_size]]
            enc = tokenizer([e.question for e in chunk], [e.context for e in chunk], truncation="only_second",
                            max_length=max_length, stride=stride, return_overflowing_tokens=True,
                            return_offsets_mapping=True)
            for i, owner in enumerate(enc["overflow_to_sample_mapping"]):
                s, e = window_targets(enc, i, chunk[owner])
                pending.append({"input_ids": enc["input_ids"][i], "token_type_ids": enc["token_type_ids"][i],
                                "start_positions": s, "end_positions": e})
            while len(pending) >= batch_size:
                rows, pending = pending[:batch_size], pending[batch_size:]
                yield collate(tokenizer, rows)


def collate(tokenizer, rows: list[dict]) -> dict:
    padded = tokenizer.pad([{k: r[k] for k in ("input_ids", "token_type_ids")} for r in rows], return_tensors="pt")
    return {**padded, "start_positions": torch.tensor([r["start_positions"] for r in rows]),
            "end_positions": torch.tensor([r["end_positions"] for r in rows])}


def qa_loss(model, batch):
    """Devlin et al. §4.2: mean of the start and end cross-entropies."""
    out = model(**batch)
    hit = ((out.start_logits.argmax(-1) == batch["start_positions"]) &
           (out.end_logits.argmax(-1) == batch["end_positions"])).float().mean()
    return {"loss": out.loss, "train_exact": hit}


def run(cfg: SquadConfig, *, progress: bool = True) -> RunReport:
    from transformers import AutoTokenizer, BertForQuestionAnswering

    paths = [data_file(cfg, part, what="SQuAD v1.0 train part") for part in TRAIN_PARTS]
    dev = data_file(cfg, DEV, what="SQuAD v1.1 dev slice")
    seed_everything(cfg.seed)
    base = base_model_path(cfg)
    tokenizer = AutoTokenizer.from_pretrained(base)
    articles = read_articles(paths)
    examples = read_examples(articles, unanswerable=cfg.unanswerable, seed=cfg.seed, hold_out=cfg.hold_out_articles)
    model = BertForQuestionAnswering.from_pretrained(base)
    model.bert.embeddings.word_embeddings.weight.requires_grad_(False)
    if cfg.lora_rank:
        model = with_lora(model, KIND, rank=cfg.lora_rank)
    setup = Setup(model=model, loss_fn=qa_loss,
                  batches=qa_batches(tokenizer, examples, batch_size=cfg.batch_size, max_length=cfg.max_length,
                                     stride=cfg.stride, seed=cfg.seed))
    result = fit(setup, cfg, desc=NAME, progress=progress)
    out = output_dir(cfg, NAME)
    save_model(setup.model, tokenizer, out, cfg, name=NAME, kind=KIND)
    if cfg.calibrate_questions:  # τ for SQuAD 2.0-style use (the tab, squad_v2), on articles never trained on

        calibrate(out, articles=articles, n_questions=cfg.calibrate_questions, seed=cfg.seed)
    scored = harness("squad_v1", out, data=dev, limit=cfg.eval_limit)
    unanswerable = sum(e.answer_start < 0 for e in examples)
    return finish(recipe=NAME, name=NAME, title="Extractive QA (MiniLM + LoRA, SQuAD v1.0 train)", cfg=cfg,
                  fit=result, out=out, result=scored, variant="SpanBERT",
                  paper="Devlin et al. 2019 §4.2 (SQuAD span head); Rajpurkar et al. 2018 (no-answer pairs)",
                  data={"train": f"{Path(paths[0]).parent} (8 parts): {len(examples)} questions, {unanswerable} "
                                 "re-paired with another paragraph of their article (no answer)",
                        "dev": str(dev)},
                  notes="Windows of max_length tokens with stride overlap; windows without the answer point at [CLS]."
                        + (" Articles held out for the null threshold (bertvariants.train.squad_null) were not "
                           "trained on; the threshold chosen there is in qa_decoding.json."
                           if cfg.hold_out_articles else ""))
