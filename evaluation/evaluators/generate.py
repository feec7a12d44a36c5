"""Span extraction (SQuAD) and summarization (ROUGE).

- question answering: windows + n-best span decoding (:mod:`bertvariants.qa`), official SQuAD scoring;
- seq2seq summarizers: ``generate`` (transformers 5 has no summarization pipeline); ``causal-lm``: an instruction
  decoder prompted through its chat template (:func:`bertvariants.smollm.summarize`, the BART tab's offline
  stand-in); ``lead3``: the first three sentences (See et al. 2017).
"""

from __future__ import annotations

import numpy as np

from bertvariants import smollm
from bertvariants.qa import answer_questions, null_threshold_of

from ..handle import ModelHandle
from ..loaders import Dataset
from ..metrics import rouge as rouge_m
from ..metrics import squad as squad_m
from ..record import Outcome
from .common import clip


def qa(bench, h, ds, *, batch_size, progress, **_) -> Outcome:
    """SQuAD with a QA head: the project's one span decoder (``bertvariants.qa.answer_questions``:
    windows with stride, n-best, null threshold), then the official scorer."""
    if h.kind != "question-answering":
        raise ValueError(f"{bench.key} needs a question-answering model (AutoModelForQuestionAnswering); "
                         f"{h.name} is {h.kind}")
    v2 = bench.key == "squad_v2"
    m = h.loaded
    tau = null_threshold_of(m.location) if v2 else 0.0  # the threshold chosen for this model (qa_decoding.json)
    preds = answer_questions(m.model, m.tokenizer, [e.text for e in ds.examples], [e.text_pair for e in ds.examples],
                             allow_impossible=v2, null_threshold=tau, batch_size=min(batch_size, 16))
    answers = {e.id: p.answer for e, p in zip(ds.examples, preds)}
    if v2:  # a probability-like no-answer score for the official threshold search: sigmoid(s_null − s_best)
        na = {e.id: float(1 / (1 + np.exp(-np.clip(p.null_score - p.best_span_score, -50, 50))))
              for e, p in zip(ds.examples, preds)}
        score = squad_m.squad_v2(ds.raw, answers, na_probs=na)
    else:
        score = squad_m.squad_v1(ds.raw, answers)
    return squad_outcome(score, ds, answers,
                          {"method": "bertvariants.qa.answer_questions: windows (stride 128), n-best 20, "
                                     f"null threshold {tau:g}" if v2
                                     else "bertvariants.qa.answer_questions: windows, n-best 20"})


def squad_outcome(score, ds: Dataset, answers: dict, details: dict) -> Outcome:
    ids = [e.id for e in ds.examples if e.id in score.f1]
    f1 = np.array([score.f1[q] for q in ids]) * 100
    by_id = {e.id: e for e in ds.examples}
    records = [{"id": q, "input": clip(by_id[q].text, None), "prediction": answers.get(q, ""),
                "reference": " | ".join(by_id[q].label) or "(no answer)", "error": round(1 - score.f1[q], 4)}
               for q in ids]
    return Outcome({k: v for k, v in score.metrics.items() if not k.endswith("_thresh")},
                   lambda idx: float(f1[idx].mean()), records, {**details, "counts": score.counts})


def summarization(bench, h, ds, *, batch_size, progress, **_) -> Outcome:
    docs = [e.text for e in ds.examples]
    if h.kind == "lead3":
        preds = [rouge_m.lead(d, 3) for d in docs]
        method = "Lead-3: the first three sentences"
    elif h.kind == "seq2seq":
        preds = generate(h, docs, batch_size=max(1, min(batch_size, 8)), progress=progress)
        method = "model.generate with the checkpoint's generation config"
    elif h.kind == "causal-lm":
        return instruct_summaries(bench, h, ds, batch_size=max(1, min(batch_size, INSTRUCT_BATCH)), progress=progress)
    else:
        raise ValueError(f"{bench.key} needs a seq2seq model, a causal-lm instruction model or the lead3 baseline; "
                         f"{h.name} is {h.kind}")
    return rouge_outcome(bench, ds, preds, {"method": method})


INSTRUCT_BATCH = 4  # documents per generate call (left-padded); bf16 results depend slightly on it: recorded


def instruct_summaries(bench, h, ds, *, batch_size: int, progress: bool) -> Outcome:
    """A decoder-only instruction model (e.g. SmolLM2-135M-Instruct) with the BART tab's default settings."""
    path = smollm.DEFAULT_PATH  # the tab's default: 2 beams, in fp32 or bf16, whichever runs faster here
    settings = {"max_words": path.max_words, "num_beams": path.num_beams, "max_new_tokens": path.max_new_tokens,
                "precision": path.precision, "batch_size": batch_size}
    docs = [e.text for e in ds.examples]
    starts = range(0, len(docs), batch_size)
    if progress:
        from tqdm.auto import tqdm

        starts = tqdm(starts, desc="generate", unit="batch")
    m = h.loaded
    preds = [s for i in starts for s in smollm.summarize(m.model, m.tokenizer, docs[i:i + batch_size], **settings)]
    details = {"method": "smollm.summarize: the document's first max_words words in a chat-template prompt, "
                         "generate (greedy or beam search, no sampling), only the new tokens decoded",
               "prompt": smollm.PROMPT, "settings": settings, "dtype": str(next(m.model.parameters()).dtype),
               "ran_in": smollm.precision_used(m.model, path.precision, path.candidates),
               "stand_in": smollm.STAND_IN}
    return rouge_outcome(bench, ds, preds, details)


def rouge_outcome(bench, ds: Dataset, preds: list[str], details: dict) -> Outcome:
    refs = [e.label for e in ds.examples]
    score = rouge_m.rouge(preds, refs)
    per = score.per_example[bench.primary if bench.primary in score.per_example else "rougeLsum"]
    records = [{"id": e.id, "input": clip(e.text, None), "prediction": p, "reference": r,
                "error": round(1 - float(s) / 100, 4)} for e, p, r, s in zip(ds.examples, preds, refs, per)]
    details = {**details, "rouge": "rouge-score, use_stemmer=True, Lsum on one sentence per line"}
    return Outcome(score.metrics, lambda idx: float(per[idx].mean()), records, details)


def generate(h: ModelHandle, docs: list[str], *, batch_size: int, progress: bool) -> list[str]:
    import torch

    m = h.loaded
    out: list[str] = []
    it = range(0, len(docs), batch_size)
    if progress:
        from tqdm.auto import tqdm

        it = tqdm(it, desc="generate", unit="batch")
    max_len = min(getattr(m.tokenizer, "model_max_length", 1024) or 1024, 1024)
    with torch.inference_mode():
        for i in it:
            enc = m.tokenizer(docs[i:i + batch_size], truncation=True, max_length=max_len, padding=True,
                              return_tensors="pt").to(m.device)
            ids = m.model.generate(**enc)
            out.extend(t.strip() for t in m.tokenizer.batch_decode(ids, skip_special_tokens=True))
    return out
