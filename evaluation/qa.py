"""Extractive QA decoding for SQuAD with a question-answering head (Devlin et al. 2019, §4.2–4.3).

Long contexts are cut into overlapping windows ("doc stride", §4.2) at word starts, every (question, window)
pair runs through the one inference path (``bertvariants.inference.run_batched``) with a head that returns
start/end logits, and each question's answer is the best span over all windows: start ≤ end, at most
``max_answer_tokens`` long, inside the context, score = start logit + end logit, from an n-best list.
SQuAD 2.0 (§4.3): the no-answer score is s_null = start[CLS] + end[CLS] (the minimum over windows); the
answer is "" when s_null − best span score > ``null_threshold``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch

from bertvariants.clinical_bert import chunk_spans
from bertvariants.inference import run_batched

NEG = -1e4  # logit of padded positions: never part of a best span


@dataclass(frozen=True)
class QAConfig:
    max_length: int = 384  # BERT's SQuAD setting (§4.2)
    doc_stride: int = 128  # overlap between consecutive windows, in tokens
    n_best: int = 20
    max_answer_tokens: int = 30
    null_threshold: float = 0.0  # predict "" when s_null − s_best > threshold (v2 only)


@dataclass(frozen=True)
class QAPrediction:
    answer: str
    score: float  # best span's start + end logit
    null_score: float  # start[CLS] + end[CLS], minimum over windows
    na_prob: float  # sigmoid(s_null − s_best): a probability-like no-answer score for the v2 scorer


def _windows(tokenizer, question: str, context: str, cfg: QAConfig) -> list[tuple[int, str]]:
    """(char offset, text) windows of the context that fit next to the question in ``max_length`` tokens."""
    q_len = len(tokenizer(question, add_special_tokens=False)["input_ids"])
    body = cfg.max_length - min(q_len, cfg.max_length // 2) - tokenizer.num_special_tokens_to_add(pair=True)
    enc = tokenizer(context, add_special_tokens=False, return_offsets_mapping=True)
    offsets = enc["offset_mapping"]
    if not offsets:
        return [(0, context)]
    word_ids = enc.word_ids()
    starts = [i == 0 or word_ids[i] != word_ids[i - 1] for i in range(len(offsets))] + [True]
    spans = chunk_spans(len(offsets), max_tokens=body, stride=min(cfg.doc_stride, body - 1), num_special=0,
                        starts_allowed=starts)
    return [(offsets[s][0], context[offsets[s][0]:offsets[e - 1][1]]) for s, e in spans]


def answer_questions(model, tokenizer, questions: Sequence[str], contexts: Sequence[str], *,
                     config: QAConfig = QAConfig(), version_2: bool = True, batch_size: int = 32,
                     progress: bool = False) -> list[QAPrediction]:
    """Best answer span per (question, context); "" for predicted no-answer when ``version_2``."""
    cfg = config
    owner, qs, ws, offs = [], [], [], []
    for i, (q, c) in enumerate(zip(questions, contexts)):
        for off, text in _windows(tokenizer, q, c, cfg):
            owner.append(i), qs.append(q), ws.append(text), offs.append(off)

    def head(m, batch):
        out = m(**batch)
        logits = torch.stack([out.start_logits, out.end_logits], -1)  # (B, T, 2)
        return torch.nn.functional.pad(logits, (0, 0, 0, cfg.max_length - logits.shape[1]), value=NEG)

    logits = run_batched(model, tokenizer, qs, ws, head=head, batch_size=batch_size, max_length=cfg.max_length,
                         progress=progress, desc="qa").numpy()  # (W, max_length, 2)
    best: dict[int, tuple[float, str]] = {}
    null: dict[int, float] = {}
    for w in range(len(qs)):
        enc = tokenizer(qs[w], ws[w], truncation="only_second", max_length=cfg.max_length,
                        return_offsets_mapping=True)
        seq = enc.sequence_ids()
        ctx = [t for t, s in enumerate(seq) if s == 1]
        start, end = logits[w, :, 0], logits[w, :, 1]
        i = owner[w]
        null[i] = min(null.get(i, np.inf), float(start[0] + end[0]))
        if not ctx:
            continue
        lo, hi = ctx[0], ctx[-1]
        s_idx = [t for t in np.argsort(start[lo:hi + 1])[::-1][:cfg.n_best] + lo]
        e_idx = [t for t in np.argsort(end[lo:hi + 1])[::-1][:cfg.n_best] + lo]
        for s in s_idx:
            for e in e_idx:
                if e < s or e - s + 1 > cfg.max_answer_tokens:
                    continue
                score = float(start[s] + end[e])
                if i not in best or score > best[i][0]:
                    c0, c1 = enc["offset_mapping"][s][0], enc["offset_mapping"][e][1]
                    best[i] = (score, ws[w][c0:c1])
    preds = []
    for i in range(len(questions)):
        score, text = best.get(i, (float(NEG), ""))
        s_null = null.get(i, float(NEG))
        na_prob = float(1 / (1 + np.exp(-np.clip(s_null - score, -50, 50))))
        if version_2 and s_null - score > cfg.null_threshold:
            text = ""
        preds.append(QAPrediction(answer=text, score=score, null_score=s_null, na_prob=na_prob))
    return preds
