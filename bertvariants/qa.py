"""Extractive question answering with a sliding window: SQuAD 1.1 / 2.0 decoding (Devlin et al. 2019 §4.2–4.3).

Three steps, each testable alone:

1. :func:`windows` — tokenize (question, context) pairs; a context longer than ``max_length`` is cut into
   windows overlapping by ``stride`` tokens, each with its character offsets;
2. :func:`window_logits` — run the QA head over the windows in batches → start / end logits per window;
3. :func:`decode` — pure: in each window combine the ``n_best`` start and end logits into spans (end ≥ start, at
   most ``max_answer_len`` tokens, inside the context), keep each span's best score over windows, and answer
   "no answer" (SQuAD 2.0) when the null score (the [CLS] start + end logits, smallest over windows) beats the
   best span by more than ``null_threshold``.

:func:`answer_questions` chains them (as transformers' run_qa post-processing does). SpanBERT §4.1 fine-tunes on
SQuAD with exactly this decoding; the SpanBERT tab and the harness's ``squad_v1`` / ``squad_v2`` use it.

The null threshold is a property of the model, not of the decoder: a QA checkpoint may carry
``qa_decoding.json`` (:data:`DECODING_FILE`) with the threshold chosen on unanswerable pairs it never trained on
(:func:`choose_null_threshold`, written by ``python -m bertvariants.train.squad_null calibrate``); the tab's default
and the harness's ``squad_v2`` read it with :func:`null_threshold_of` (0, the plain §4.3 rule, when absent).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import torch

from .checks import same_length, text

DECODING_FILE = "qa_decoding.json"  # beside a QA checkpoint: {"null_threshold": τ, how it was chosen...}


@dataclass(frozen=True)
class QAResult:
    """The answer to one question. ``answer == ""`` means "no answer" (SQuAD 2.0)."""

    question: str
    context: str
    answer: str
    start_char: int  # -1 for no answer
    end_char: int
    score: float  # start_logit + end_logit of the chosen span (or the null score)
    null_score: float  # [CLS] start + end logit, minimum over windows
    best_span_score: float  # best non-null span score (-inf if none)
    probability: float  # softmax over the n-best candidates and the null answer
    num_windows: int
    candidates: list[dict] = field(default_factory=list)  # n-best: text, start_char, end_char, score

    @property
    def is_impossible(self) -> bool:
        return self.answer == ""


@dataclass
class Windows:
    """Tokenized windows of (question, context) pairs: ``encoding`` holds input ids etc. per window."""

    encoding: object  # transformers BatchEncoding (offsets and sample mapping popped)
    sample_map: list[int]  # window -> question index
    offsets: list[list[tuple[int, int]]]  # window -> token -> (start_char, end_char) in the context
    context_index: int  # which sequence of the pair is the context (0 or 1)

    def __len__(self) -> int:
        return len(self.encoding["input_ids"])


@dataclass
class WindowLogits:
    start: list[torch.Tensor]  # window -> (T_w,) float32 on the CPU
    end: list[torch.Tensor]


def check_qa_inputs(questions: Sequence[str], contexts: Sequence[str]) -> None:
    same_length(questions, contexts, "questions", "contexts")
    if not questions:
        raise ValueError("no questions given")
    for i, (q, c) in enumerate(zip(questions, contexts)):
        text(q, f"question {i + 1}", hint="please enter a question")
        if not (c or "").strip():
            raise ValueError(f"question {i + 1} has no context: extractive QA needs a passage to find the answer in")


def windows(tokenizer, questions: Sequence[str], contexts: Sequence[str], *, max_length: int, stride: int) -> Windows:
    """Cut each (question, context) pair into windows of ≤ ``max_length`` tokens overlapping by ``stride``."""
    longest_q = max(len(tokenizer(q, add_special_tokens=False)["input_ids"]) for q in questions)
    room = max_length - longest_q - 3  # [CLS] q [SEP] context [SEP]
    if room < 16:
        raise ValueError(f"the question is too long ({longest_q} tokens) for windows of {max_length} tokens")
    stride = min(stride, room // 2)  # the overlap must leave room for new context in each window
    pad_right = tokenizer.padding_side == "right"
    enc = tokenizer(list(questions) if pad_right else list(contexts), list(contexts) if pad_right else list(questions),
                    truncation="only_second" if pad_right else "only_first", max_length=max_length, stride=stride,
                    return_overflowing_tokens=True, return_offsets_mapping=True, padding=False)
    sample_map = list(enc.pop("overflow_to_sample_mapping"))
    offsets = enc.pop("offset_mapping")
    return Windows(enc, sample_map, offsets, 1 if pad_right else 0)


def window_logits(model, tokenizer, wins: Windows, *, batch_size: int = 16) -> WindowLogits:
    """Start / end logits of every window; windows of one request have the same length, so plain chunks pad little."""
    enc, n = wins.encoding, len(wins)
    device = next(model.parameters()).device
    out = WindowLogits([], [])
    with torch.inference_mode():
        for lo in range(0, n, batch_size):
            feats = [{k: enc[k][i] for k in enc.keys()} for i in range(lo, min(lo + batch_size, n))]
            batch = {k: v.to(device) for k, v in tokenizer.pad(feats, padding="longest", return_tensors="pt").items()}
            pred = model(**batch)
            for row, feat in enumerate(feats):
                t = len(feat["input_ids"])
                out.start.append(pred.start_logits[row, :t].float().cpu())
                out.end.append(pred.end_logits[row, :t].float().cpu())
    return out


def _window_candidates(wins: Windows, logits: WindowLogits, cls_token_id: int, *, n_best: int,
                       max_answer_len: int) -> dict[int, dict]:
    """question index -> {"null": min null score, "cands": [{start_char, end_char, score}], "windows": count}."""
    best: dict[int, dict] = {}
    for f in range(len(wins)):
        seq_ids = wins.encoding.sequence_ids(f)
        st, en, off = logits.start[f], logits.end[f], wins.offsets[f]
        ids = wins.encoding["input_ids"][f]
        cls = ids.index(cls_token_id) if cls_token_id in ids else 0
        null = float(st[cls] + en[cls])
        entry = best.setdefault(wins.sample_map[f], {"null": null, "cands": [], "windows": 0})
        entry["null"] = min(entry["null"], null)
        entry["windows"] += 1
        k = min(n_best, len(st))
        for s in torch.topk(st, k).indices.tolist():
            for e in torch.topk(en, k).indices.tolist():
                if seq_ids[s] != wins.context_index or seq_ids[e] != wins.context_index or e < s \
                        or e - s + 1 > max_answer_len:
                    continue
                entry["cands"].append({"start_char": off[s][0], "end_char": off[e][1], "score": float(st[s] + en[e])})
    return best


def decide(question: str, context: str, entry: dict, *, n_best: int, null_threshold: float,
           allow_impossible: bool) -> QAResult:
    """Pure: one question's candidates (merged over windows) → its answer, or "no answer" (SQuAD 2.0)."""
    merged: dict[tuple[int, int], float] = {}  # the same span seen from two overlapping windows: keep its best
    for cand in entry["cands"]:
        key = (cand["start_char"], cand["end_char"])
        merged[key] = max(merged.get(key, float("-inf")), cand["score"])
    ranked = sorted(merged.items(), key=lambda kv: -kv[1])[:n_best]
    cands = [{"text": context[s:e], "start_char": s, "end_char": e, "score": sc} for (s, e), sc in ranked]
    best_score = cands[0]["score"] if cands else float("-inf")
    null = entry["null"]
    scores = torch.tensor([x["score"] for x in cands] + ([null] if allow_impossible else []))
    probs = torch.softmax(scores, 0).tolist() if len(scores) else []
    if cands and (not allow_impossible or null - best_score <= null_threshold):
        top = cands[0]
        return QAResult(question, context, top["text"], top["start_char"], top["end_char"], top["score"], null,
                        best_score, probs[0], entry["windows"], cands)
    return QAResult(question, context, "", -1, -1, null, null, best_score, probs[-1] if probs else 1.0,
                    entry["windows"], cands)


def decode(wins: Windows, logits: WindowLogits, questions: Sequence[str], contexts: Sequence[str], *,
           cls_token_id: int, n_best: int = 20, max_answer_len: int = 30, null_threshold: float = 0.0,
           allow_impossible: bool = True) -> list[QAResult]:
    """Pure: windows + their logits → one :class:`QAResult` per question (see the module docstring)."""
    best = _window_candidates(wins, logits, cls_token_id, n_best=n_best, max_answer_len=max_answer_len)
    return [decide(q, c, best[i], n_best=n_best, null_threshold=null_threshold, allow_impossible=allow_impossible)
            for i, (q, c) in enumerate(zip(questions, contexts))]


def answer_questions(model, tokenizer, questions: Sequence[str], contexts: Sequence[str], *, max_length: int = 384,
                     stride: int = 128, n_best: int = 20, max_answer_len: int = 30, null_threshold: float = 0.0,
                     batch_size: int = 16, allow_impossible: bool = True) -> list[QAResult]:
    """Answer each question from its context: :func:`windows` → :func:`window_logits` → :func:`decode`.

    ``allow_impossible=False`` always returns a span (SQuAD 1.1).
    """
    check_qa_inputs(questions, contexts)
    if not 0 <= stride < max_length:
        raise ValueError(f"stride must be in [0, max_length), got stride={stride}, max_length={max_length}")
    if n_best < 1 or max_answer_len < 1:
        raise ValueError("n_best and max_answer_len must be ≥ 1")
    questions = [q.strip() for q in questions]
    # never feed more positions than the model has (tiny or distilled checkpoints may have fewer than 384)
    positions = getattr(getattr(model, "config", None), "max_position_embeddings", None)
    max_length = min(max_length, positions) if positions else max_length
    wins = windows(tokenizer, questions, contexts, max_length=max_length, stride=stride)
    logits = window_logits(model, tokenizer, wins, batch_size=batch_size)
    return decode(wins, logits, questions, contexts, cls_token_id=tokenizer.cls_token_id, n_best=n_best,
                  max_answer_len=max_answer_len, null_threshold=null_threshold, allow_impossible=allow_impossible)


def highlight_answer(result: QAResult) -> list[tuple[str, str | None]]:
    """The context with the answer marked, for gr.HighlightedText."""
    if result.is_impossible:
        return [(result.context, None)]
    c, s, e = result.context, result.start_char, result.end_char
    return [(piece, label) for piece, label in ((c[:s], None), (c[s:e], "answer"), (c[e:], None)) if piece]


# --------------------------------------------------------------------------------------------
# The null threshold: chosen on held-out unanswerable pairs, stored with the model
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class NullThreshold:
    """The threshold τ that maximises SQuAD 2.0 F1 on a calibration set, with what it scored there."""

    threshold: float  # answer "no answer" when s_null − s_best > τ
    f1: float  # SQuAD 2.0 F1 (0–1) on the calibration set with τ
    abstain_f1: float  # F1 of answering "no answer" to every question (the share of unanswerable ones)
    answer_all_f1: float  # F1 of always answering the best span (τ = +∞)
    n: int


def choose_null_threshold(diffs: Sequence[float], span_f1: Sequence[float],
                          has_answer: Sequence[bool]) -> NullThreshold:
    """Pure: the τ maximising SQuAD 2.0 F1, where question i is answered iff ``diffs[i]`` = s_null − s_best ≤ τ
    and then scores ``span_f1[i]`` (its best span's F1; 0 on an unanswerable question), and scores 1 for "no
    answer" iff it has none (Rajpurkar et al. 2018, §5's threshold search, in score space). τ is put midway
    between the two neighbouring differences, so that it does not sit on a calibration example.

    Example:
        >>> t = choose_null_threshold([-3.0, -1.0, 2.0, 4.0], [1.0, 1.0, 0.0, 0.0], [True, True, False, False])
        >>> t.threshold, t.f1, t.abstain_f1
        (0.5, 1.0, 0.5)
    """
    n = len(diffs)
    if n == 0 or len(span_f1) != n or len(has_answer) != n:
        raise ValueError(f"need one span F1 and one has-answer flag per difference, got {n}, {len(span_f1)}, "
                         f"{len(has_answer)}")
    order = sorted(range(n), key=lambda i: diffs[i])
    d = [float(diffs[i]) for i in order]
    gain = [float(span_f1[i]) if has_answer[i] else 0.0 for i in order]  # answered: its span's F1
    keep = [0.0 if has_answer[i] else 1.0 for i in order]  # abstained: 1 iff it has no answer
    best_k, best, score = 0, sum(keep), sum(keep)  # k = how many of the smallest differences are answered
    for k in range(1, n + 1):
        score += gain[k - 1] - keep[k - 1]
        realisable = k == n or d[k] > d[k - 1]  # τ cannot split two equal differences
        if realisable and math.isfinite(d[k - 1]) and score > best + 1e-12:
            best_k, best = k, score
    if best_k == 0:
        tau = d[0] - 1.0 if math.isfinite(d[0]) else 0.0
    elif best_k == n or not math.isfinite(d[best_k]):
        tau = d[best_k - 1] + 1.0
    else:
        tau = (d[best_k - 1] + d[best_k]) / 2
    answer_all = sum(g for g, x in zip(gain, d) if math.isfinite(x))
    return NullThreshold(threshold=round(tau, 4), f1=best / n, abstain_f1=sum(keep) / n, answer_all_f1=answer_all / n,
                         n=n)


def null_threshold_of(location) -> float:
    """The null threshold stored with a QA checkpoint (``<location>/qa_decoding.json``), else 0.0 (§4.3's rule)."""
    path = Path(str(location)) / DECODING_FILE
    if not path.is_file():
        return 0.0
    try:
        value = float(json.loads(path.read_text(encoding="utf-8"))["null_threshold"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"{path}: not a readable QA decoding record ({exc})") from None
    if not math.isfinite(value):
        raise ValueError(f"{path}: null_threshold must be finite, got {value}")
    return value
