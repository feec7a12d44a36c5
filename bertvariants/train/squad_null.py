"""SQuAD 2.0's null threshold, chosen on unanswerable Wikipedia pairs held out by article.

Devlin et al. 2019 §4.3 answer "no answer" when the null score s_null (the [CLS] start + end logits) beats the
best span by more than a threshold τ "selected on the dev set to maximize F1". We have no SQuAD 2.0 train or dev
here, so the pairs are built from SQuAD v1.0 train: a question with its own paragraph (answerable), or, half the
time as in SQuAD 2.0 dev, with a plausible text that does not answer it (:func:`unanswerable_context`): either the
paragraph of the *same article* that shares most words with the question and holds none of its answers
(Rajpurkar et al. 2018 §3's suggestion), or its own paragraph with the sentences holding the answer cut out (the
rest of the passage still matches the question, as SQuAD 2.0's written-to-be-plausible questions do).

Articles are split by a hash of their title (:func:`split_of`, stable whatever order the files are read in):
``calibrate`` (5%) chooses τ, ``report`` (another 5%) is never looked at while choosing and is where the result is
reported, the rest (``train``) is what the ``squad`` recipe trains on. τ goes into ``qa_decoding.json`` beside the
model (and into ``shipped.json``'s hashed file list when the model is compact), where the SpanBERT tab and
``python -m evaluation run --task squad_v2`` read it (:func:`bertvariants.qa.null_threshold_of`).

    python -m bertvariants.train.squad_null calibrate bertvariants/assets/models/squad
    python -m bertvariants.train.squad_null split report --output squad2-report.json
    python -m evaluation run --task squad_v2 --model bertvariants/assets/models/squad --data squad2-report.json
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
from dataclasses import dataclass
from pathlib import Path

from ..io import atomic_write_json, sha256_file
from .config import TrainConfig
from .squad_data import SPLITS, TRAIN_PARTS, split_of, trained_questions
from .squad_data import read_articles as read

CALIBRATE_QUESTIONS = 800
REPORT_QUESTIONS = 1000
WORD = re.compile(r"\w+")
SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
NEGATIVE_KINDS = ("other-paragraph", "answer-cut")
STOPWORDS = frozenset("the a an of in on to and or is was were are what which who whom when where why how did does "
                      "do for by with as at from that this it its be been".split())


@dataclass(frozen=True)
class NullPair:
    id: str
    question: str
    context: str
    answers: tuple[str, ...]  # () = unanswerable in this context
    title: str


def _words(text: str) -> set[str]:
    return {w for w in WORD.findall(text.lower()) if w not in STOPWORDS}


def plausible_other(question: str, answers, paragraphs: list[str], own: str) -> str | None:
    """The other paragraph of the article sharing most content words with the question and holding none of its
    answers (a hard negative: SQuAD 2.0's unanswerable questions come with plausible text)."""
    q = _words(question)
    others = [p for p in paragraphs if p != own and not any(a and a in p for a in answers)]
    return max(others, key=lambda p: (len(q & _words(p)), -paragraphs.index(p)), default=None)


def answer_cut(context: str, qa: dict) -> str | None:
    """``context`` without the sentences that overlap any of the answers; None when an answer's text is still in
    what is left or too little is left (fewer than two sentences)."""
    spans = [(a["answer_start"], a["answer_start"] + len(a["text"])) for a in qa["answers"]]
    kept, pos = [], 0
    for sentence in SENTENCE_END.split(context):
        start = context.index(sentence, pos)
        pos = start + len(sentence)
        if not any(start < hi and lo < pos for lo, hi in spans):
            kept.append(sentence)
    rest = " ".join(kept)
    if len(kept) < 2 or any(a["text"] and a["text"] in rest for a in qa["answers"]):
        return None
    return rest


def unanswerable_context(qa: dict, context: str, paragraphs: list[str], kind: str) -> str | None:
    """A plausible text without the answer to ``qa`` (see the module docstring), or None when there is none."""
    answers = [a["text"] for a in qa["answers"]]
    if kind == "answer-cut":
        return answer_cut(context, qa) or plausible_other(qa["question"], answers, paragraphs, context)
    if kind == "other-paragraph":
        return plausible_other(qa["question"], answers, paragraphs, context)
    raise ValueError(f"unknown kind of unanswerable pair {kind!r}; one of {', '.join(NEGATIVE_KINDS)}")


def build_pairs(articles: list[dict], *, split: str, n_questions: int, seed: int,
                exclude: frozenset[str] = frozenset()) -> list[NullPair]:
    """A seeded sample of ``n_questions`` questions of the ``split`` articles (none of ``exclude``), each paired
    with its own paragraph or, with probability ½, with a plausible text that does not answer it (either kind
    of :data:`NEGATIVE_KINDS` equally often)."""
    rng = random.Random(seed)
    pool = []
    for article in articles:
        if split_of(article["title"]) != split:
            continue
        paragraphs = [p["context"] for p in article["paragraphs"]]
        for para in article["paragraphs"]:
            for qa in para["qas"]:
                if qa["answers"] and qa["question"] not in exclude:
                    pool.append((article["title"], para["context"], qa, paragraphs))
    if not pool:
        raise ValueError(f"no questions in the {split!r} articles")
    out = []
    for title, context, qa, paragraphs in rng.sample(pool, min(n_questions, len(pool))):
        kind = rng.choice(NEGATIVE_KINDS) if rng.random() < 0.5 else None
        other = unanswerable_context(qa, context, paragraphs, kind) if kind else None
        out.append(NullPair(qa["id"] + ("-na" if other else ""), qa["question"], other or context,
                            () if other else tuple(a["text"] for a in qa["answers"]), title))
    return out


def as_squad_v2(pairs: list[NullPair]) -> dict:
    """The pairs as an official SQuAD 2.0 dataset (one paragraph per pair), for ``python -m evaluation``."""
    data = []
    for p in pairs:
        qa = {"id": p.id, "question": p.question, "is_impossible": not p.answers,
              "answers": [{"text": a, "answer_start": p.context.index(a)} for a in p.answers]}
        data.append({"title": p.title, "paragraphs": [{"context": p.context, "qas": [qa]}]})
    return {"version": "v2.0", "data": data}


def read_articles(data_dir: str | None = None) -> list[dict]:
    from .data import data_file

    cfg = TrainConfig(data=data_dir)
    return read([data_file(cfg, part, what="SQuAD v1.0 train part") for part in TRAIN_PARTS])


def score_pairs(model, tokenizer, pairs: list[NullPair], *, batch_size: int = 16):
    """(s_null − s_best, the best span's F1) per pair, decoded as the harness decodes (384-token windows, stride
    128, n-best 20) with τ = +∞ so that the best span is always known."""
    from evaluation.metrics.squad import f1_score

    from ..qa import answer_questions

    preds = answer_questions(model, tokenizer, [p.question for p in pairs], [p.context for p in pairs],
                             null_threshold=float("inf"), batch_size=batch_size)
    diffs = [r.null_score - r.best_span_score for r in preds]
    f1 = [max((f1_score(r.answer, a) for a in p.answers), default=0.0) for r, p in zip(preds, pairs)]
    return diffs, f1


def write_decoding(folder: Path, record: dict) -> Path:
    """``qa_decoding.json`` beside the model; a compact model lists it (with its sha256) in ``shipped.json``."""
    from ..qa import DECODING_FILE
    from ..serving.shipped import ShippedSpec, is_shipped

    path = atomic_write_json(Path(folder) / DECODING_FILE, record)
    if is_shipped(folder):
        spec = ShippedSpec.read(folder)
        ShippedSpec(**{**spec.__dict__, "files": {**spec.files, DECODING_FILE: sha256_file(path)}}).write(folder)
    return path


def calibrate(folder: Path, *, articles: list[dict] | None = None, n_questions: int = CALIBRATE_QUESTIONS,
              seed: int = 0, exclude: frozenset[str] = frozenset(), data_dir: str | None = None,
              command: str = "") -> dict:
    """Choose τ on the ``calibrate`` articles for the QA model in ``folder`` and store it there."""
    from ..qa import choose_null_threshold
    from ..serving import load_checkpoint

    articles = articles if articles is not None else read_articles(data_dir)
    pairs = build_pairs(articles, split="calibrate", n_questions=n_questions, seed=seed, exclude=exclude)
    loaded = load_checkpoint(str(folder), "question-answering", device="cpu")
    diffs, f1 = score_pairs(loaded.model, loaded.tokenizer, pairs)
    chosen = choose_null_threshold(diffs, f1, [bool(p.answers) for p in pairs])
    record = {"null_threshold": chosen.threshold,
              "rule": "no answer when s_null - s_best > null_threshold (Devlin et al. 2019 §4.3); windows 384, "
                      "stride 128, n-best 20",
              "chosen_on": {"data": "SQuAD v1.0 train, articles whose title hash falls in the 'calibrate' bucket "
                                    "(bertvariants.train.squad_data.split_of); unanswerable = the question with the "
                                    "most word-overlapping other paragraph of its article, or with its own paragraph "
                                    "less the answer's sentences (half each)",
                            "questions": chosen.n, "unanswerable": sum(not p.answers for p in pairs),
                            "seed": seed, "excluded_trained_questions": len(exclude),
                            "f1": round(100 * chosen.f1, 2), "abstain_f1": round(100 * chosen.abstain_f1, 2),
                            "answer_all_f1": round(100 * chosen.answer_all_f1, 2)},
              "command": command or f"python -m bertvariants.train.squad_null calibrate {folder}"}
    write_decoding(Path(folder), record)
    return record


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bertvariants.train.squad_null", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    c = sub.add_parser("calibrate", help="choose the null threshold of a QA model on the calibrate articles")
    c.add_argument("model", help="a QA checkpoint folder (compact or full)")
    c.add_argument("--questions", type=int, default=CALIBRATE_QUESTIONS)
    s = sub.add_parser("split", help="write a split's pairs as a SQuAD 2.0 json")
    s.add_argument("split", choices=sorted(SPLITS))
    s.add_argument("--questions", type=int)
    s.add_argument("--output", required=True)
    for q in (c, s):
        q.add_argument("--data", help="data directory (default: the shared data)")
        q.add_argument("--seed", type=int, default=0)
        q.add_argument("--exclude-trained", metavar="STEPS", type=int,
                       help="leave out the questions a squad run from before the held-out articles (seed 42, batch "
                            "16) can have fed in its STEPS steps (the shipped model: 912)")
    args = p.parse_args(argv)
    articles = read_articles(args.data)
    exclude = frozenset()
    if args.exclude_trained:
        exclude = trained_questions(articles, steps=args.exclude_trained)
    if args.command == "split":
        n = args.questions or (REPORT_QUESTIONS if args.split == "report" else CALIBRATE_QUESTIONS)
        pairs = build_pairs(articles, split=args.split, n_questions=n, seed=args.seed, exclude=exclude)
        Path(args.output).write_text(json.dumps(as_squad_v2(pairs)), encoding="utf-8")
        print(f"{len(pairs)} questions ({sum(not x.answers for x in pairs)} unanswerable) -> {args.output}")
        return 0
    record = calibrate(Path(args.model), articles=articles, n_questions=args.questions, seed=args.seed,
                       exclude=exclude, command="python -m bertvariants.train.squad_null " + " ".join(
                           argv if argv is not None else sys.argv[1:]))
    print(json.dumps(record, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
