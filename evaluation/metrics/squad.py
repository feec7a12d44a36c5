"""SQuAD scoring with the official scripts' semantics, kept exactly (Rajpurkar et al. 2016, §5; 2018, §5).

- v1.1 (``evaluate-v1.1.py``): answers are normalised (lower-case, punctuation removed, articles a/an/the
  removed, whitespace collapsed); EM and token-level F1 take the max over the gold answers; F1 is 0 when no
  token overlaps (so an empty prediction scores 0).
- v2.0 (``evaluate-v2.0.py``): a question whose gold answers are all empty after normalisation is
  unanswerable and gets the gold answer ``""``; F1 with an empty side is 1 only when both are empty; an optional
  no-answer probability per question turns a prediction into "no answer" above ``na_prob_thresh`` (default
  1.0 = never); results are broken down into HasAns / NoAns, and with probabilities the best threshold is
  searched as in the official script.

One deliberate difference: the official scripts warn and go on when a question has no prediction; here
that is an error (``allow_missing=True`` restores the official behaviour), so a truncated prediction file
cannot silently score well.

>>> normalize_answer("The  Eiffel-Tower!")
'eiffeltower'
>>> round(f1_score("the cat sat", "a cat sat down"), 4)
0.8
"""

from __future__ import annotations

import re
import string
from collections import Counter
from dataclasses import dataclass, field
from typing import Iterable, Mapping

ARTICLES = re.compile(r"\b(a|an|the)\b", re.UNICODE)
PUNCT = set(string.punctuation)


def normalize_answer(s: str) -> str:
    """Lower text and remove punctuation, articles and extra whitespace (official order: lower, punc, articles, ws)."""
    s = s.lower()
    s = "".join(ch for ch in s if ch not in PUNCT)
    s = ARTICLES.sub(" ", s)
    return " ".join(s.split())


def get_tokens(s: str) -> list[str]:
    return normalize_answer(s).split() if s else []


def exact_match_score(prediction: str, ground_truth: str) -> bool:
    return normalize_answer(prediction) == normalize_answer(ground_truth)


def f1_score(prediction: str, ground_truth: str) -> float:
    """v1.1 token F1: 0 when nothing overlaps (including two empty strings)."""
    pred, gold = normalize_answer(prediction).split(), normalize_answer(ground_truth).split()
    num_same = sum((Counter(pred) & Counter(gold)).values())
    if num_same == 0:
        return 0.0
    precision, recall = num_same / len(pred), num_same / len(gold)
    return 2 * precision * recall / (precision + recall)


def compute_exact(a_gold: str, a_pred: str) -> int:
    return int(normalize_answer(a_gold) == normalize_answer(a_pred))


def compute_f1(a_gold: str, a_pred: str) -> float:
    """v2.0 token F1: if either side is empty, 1 when both are (a correct abstention), else 0."""
    gold, pred = get_tokens(a_gold), get_tokens(a_pred)
    if not gold or not pred:
        return float(gold == pred)
    num_same = sum((Counter(gold) & Counter(pred)).values())
    if num_same == 0:
        return 0.0
    precision, recall = num_same / len(pred), num_same / len(gold)
    return 2 * precision * recall / (precision + recall)


def iter_questions(dataset: Iterable[Mapping]) -> Iterable[Mapping]:
    """The qa dicts of an official dataset's ``data`` list (articles → paragraphs → qas)."""
    for article in dataset:
        for paragraph in article["paragraphs"]:
            yield from paragraph["qas"]


@dataclass
class SquadScore:
    """Aggregate metrics (points) and per-question EM / F1 (0–1) in dataset order."""

    metrics: dict[str, float]
    exact: dict[str, float] = field(default_factory=dict)
    f1: dict[str, float] = field(default_factory=dict)
    has_answer: dict[str, bool] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)


def _check_missing(qids: list[str], predictions: Mapping, allow_missing: bool) -> None:
    missing = [q for q in qids if q not in predictions]
    if missing and not allow_missing:
        raise ValueError(f"{len(missing)} of {len(qids)} question ids have no prediction "
                         f"(first: {', '.join(missing[:3])})")


def squad_v1(dataset: list, predictions: Mapping[str, str], *, allow_missing: bool = False) -> SquadScore:
    """Official v1.1 evaluation: EM and F1 max over gold answers, averaged over all questions (points).

    ``dataset`` is the official JSON's ``data`` list; ``predictions`` maps question id → answer text.
    A missing prediction counts as 0 (official) only with ``allow_missing``.
    """
    qas = list(iter_questions(dataset))
    _check_missing([qa["id"] for qa in qas], predictions, allow_missing)
    score = SquadScore(metrics={})
    for qa in qas:
        golds = [a["text"] for a in qa["answers"]]
        pred = predictions.get(qa["id"])
        if pred is None or not golds:
            score.exact[qa["id"]], score.f1[qa["id"]] = 0.0, 0.0
        else:
            score.exact[qa["id"]] = float(max(exact_match_score(pred, g) for g in golds))
            score.f1[qa["id"]] = max(f1_score(pred, g) for g in golds)
        score.has_answer[qa["id"]] = bool(golds)
    total = len(qas)
    if total == 0:
        raise ValueError("the dataset has no questions")
    score.metrics = {"exact_match": 100.0 * sum(score.exact.values()) / total,
                     "f1": 100.0 * sum(score.f1.values()) / total}
    score.counts = {"total": total}
    return score


def _best_threshold(preds: Mapping[str, str], scores: Mapping[str, float], na_probs: Mapping[str, float],
                    has_ans: Mapping[str, bool]) -> tuple[float, float]:
    """Official ``find_best_thresh``: sweep the no-answer threshold over the sorted probabilities."""
    cur = best = sum(1 for k in has_ans if not has_ans[k])
    best_thresh = 0.0
    for qid in sorted(na_probs, key=lambda k: na_probs[k]):
        if qid not in scores:
            continue
        diff = scores[qid] if has_ans[qid] else (-1 if preds[qid] else 0)
        cur += diff
        if cur > best:
            best, best_thresh = cur, na_probs[qid]
    return 100.0 * best / len(scores), best_thresh


def squad_v2(dataset: list, predictions: Mapping[str, str], *, na_probs: Mapping[str, float] | None = None,
             na_prob_thresh: float = 1.0, allow_missing: bool = False) -> SquadScore:
    """Official v2.0 evaluation: EM / F1 overall and on HasAns / NoAns questions (points).

    ``na_probs`` (question id → probability of no answer, optional): a question is predicted unanswerable
    when its probability exceeds ``na_prob_thresh``; with probabilities, best_exact / best_f1 and their
    thresholds are added, as in the official script.
    """
    qas = list(iter_questions(dataset))
    _check_missing([qa["id"] for qa in qas], predictions, allow_missing)
    na_probs = dict(na_probs) if na_probs is not None else None
    probs = na_probs if na_probs is not None else {k: 0.0 for k in predictions}
    score = SquadScore(metrics={})
    raw_exact: dict[str, float] = {}
    raw_f1: dict[str, float] = {}
    for qa in qas:
        qid = qa["id"]
        golds = [a["text"] for a in qa["answers"] if normalize_answer(a["text"])]
        score.has_answer[qid] = bool(qa["answers"])
        if not golds:
            golds = [""]  # unanswerable: the only correct prediction is the empty string
        if qid not in predictions:
            continue  # official: skipped (only reachable with allow_missing)
        pred = predictions[qid]
        raw_exact[qid] = float(max(compute_exact(g, pred) for g in golds))
        raw_f1[qid] = max(compute_f1(g, pred) for g in golds)
    for qid in raw_exact:  # official apply_no_ans_threshold
        if probs.get(qid, 0.0) > na_prob_thresh:
            score.exact[qid] = score.f1[qid] = float(not score.has_answer[qid])
        else:
            score.exact[qid], score.f1[qid] = raw_exact[qid], raw_f1[qid]
    if not score.exact:
        raise ValueError("no question has a prediction")

    def mean(values: dict, ids: list[str]) -> float:
        return 100.0 * sum(values[q] for q in ids) / len(ids)

    ids = list(score.exact)
    score.metrics = {"exact_match": mean(score.exact, ids), "f1": mean(score.f1, ids)}
    score.counts = {"total": len(ids)}
    for name, want in (("HasAns", True), ("NoAns", False)):
        sub = [q for q in ids if score.has_answer[q] == want]
        if sub:
            score.metrics[f"{name}_exact"] = mean(score.exact, sub)
            score.metrics[f"{name}_f1"] = mean(score.f1, sub)
            score.counts[f"{name}_total"] = len(sub)
    if na_probs is not None:
        has_ans = {q: score.has_answer[q] for q in score.has_answer}
        score.metrics["best_exact"], score.metrics["best_exact_thresh"] = _best_threshold(
            predictions, raw_exact, na_probs, has_ans)
        score.metrics["best_f1"], score.metrics["best_f1_thresh"] = _best_threshold(
            predictions, raw_f1, na_probs, has_ans)
    return score
