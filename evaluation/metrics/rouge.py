"""ROUGE-1/2/L/Lsum F-measure (Lin 2004) via Google's ``rouge-score`` with the Porter stemmer, in points.

ROUGE-Lsum is the summary-level LCS (Lin 2004, §3.2.2): it unions the LCS of each reference sentence against
all candidate sentences, and rouge-score finds the sentences by **newlines**. Text without newlines is one
"sentence", and Lsum then silently equals ROUGE-L. So both sides are split one sentence per line first
(:func:`split_sentences`): on the FRANK CNN/DM excerpt, bart-large-cnn scores Lsum 42.3 split, 32.7 unsplit.

Scores are means of per-example F-measures (what ``rouge_score.scoring.BootstrapAggregator`` reports as its
mid value, without its resampling noise); the confidence interval comes from :func:`metrics.bootstrap_ci`.

>>> s = rouge(["the cat sat on the mat ."], ["the cat was on the mat ."])
>>> round(s.metrics["rouge1"], 1)
83.3
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Sequence

import numpy as np

ROUGE_TYPES = ("rouge1", "rouge2", "rougeL", "rougeLsum")

# A sentence ends at . ! ? (optionally followed by a closing quote or bracket) followed by whitespace and
# something that can start a sentence. Handles both tokenized CNN/DM text ("word . Next") and plain text
# ("word. Next", "word.' Next"); "U.S. officials" stays one sentence, "$3.5 million" is never split.
# Second alternative: sentences glued without a space ("the community.Dr Venter"), as in the FRANK XSum
# documents, whose one-sentence-per-line originals were joined with "": a lower-case word, the stop, then a
# capitalised word ("U.S.Treasury" and "3.5" stay whole).
_SENT_END = re.compile(r"""(?:(?<=[.!?])|(?<=[.!?]['"’”)\]]))\s+(?=[A-Z0-9"'‘“(\[])|(?<=[a-z]{2}[.!?])(?=[A-Z][a-z])""")


def split_sentences(text: str) -> list[str]:
    """Split a summary / article into sentences (newlines are always boundaries)."""
    out: list[str] = []
    for line in text.splitlines():
        out.extend(s.strip() for s in _SENT_END.split(line.strip()) if s.strip())
    return out


def one_sentence_per_line(text: str) -> str:
    return "\n".join(split_sentences(text))


def lead(article: str, n: int = 3) -> str:
    """The Lead-n extractive baseline (See et al. 2017, §5: Lead-3): the article's first ``n`` sentences."""
    if n < 1:
        raise ValueError(f"n must be ≥ 1, got {n}")
    return "\n".join(split_sentences(article)[:n])


@dataclass(frozen=True)
class RougeScore:
    metrics: dict[str, float]  # mean F-measure per ROUGE type, points
    per_example: dict[str, np.ndarray]  # (N,) F-measure per example, points


def rouge(predictions: Sequence[str], references: Sequence[str], *, use_stemmer: bool = True,
          split: bool = True, rouge_types: Sequence[str] = ROUGE_TYPES) -> RougeScore:
    """Mean ROUGE F-measures of ``predictions`` against ``references`` (one reference per example).

    ``split=False`` scores the text as given (then Lsum equals L unless the texts already hold newlines).
    """
    from rouge_score import rouge_scorer

    if len(predictions) != len(references):
        raise ValueError(f"got {len(predictions)} predictions but {len(references)} references; "
                         "ROUGE needs one prediction per reference, in the same order")
    if not predictions:
        raise ValueError("no summaries to score")
    unknown = set(rouge_types) - set(ROUGE_TYPES)
    if unknown:
        raise ValueError(f"unknown ROUGE type(s) {', '.join(sorted(unknown))}; one of {', '.join(ROUGE_TYPES)}")
    scorer = rouge_scorer.RougeScorer(list(rouge_types), use_stemmer=use_stemmer)
    prep = one_sentence_per_line if split else (lambda t: t)
    per = {t: np.empty(len(predictions)) for t in rouge_types}
    for i, (pred, ref) in enumerate(zip(predictions, references)):
        scores = scorer.score(prep(ref), prep(pred))  # score(target, prediction)
        for t in rouge_types:
            per[t][i] = scores[t].fmeasure * 100
    return RougeScore(metrics={t: float(v.mean()) for t, v in per.items()}, per_example=per)
