"""One evaluator per benchmark format (``tasks.Benchmark.format``):
``evaluator(bench, handle, dataset, **kw) -> Outcome``.

Forward passes go through ``bertvariants.inference`` (``encode`` / ``classify``), except seq2seq ``generate``,
SQuAD, whose windows run in ``bertvariants.qa.answer_questions``, and the pretraining objectives, whose heads
run on the masked positions only (:mod:`evaluation.metrics.pretraining`).
"""

from __future__ import annotations

from .classify import classification, long_notes, sts
from .generate import qa, summarization
from .heldout import held_out_mlm, held_out_rtd, held_out_span
from .terms import term_map

EVALUATORS = {"single": classification, "pair": classification, "sts": sts, "qa": qa,
              "summarization": summarization, "long-note": long_notes, "term-map": term_map,
              "mlm": held_out_mlm, "rtd": held_out_rtd, "span": held_out_span}
