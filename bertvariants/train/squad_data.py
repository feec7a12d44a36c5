"""SQuAD v1.0 train as the ``squad`` recipe and its null-threshold calibration read it: the articles, their split
by a hash of the title (``calibrate`` / ``report`` articles are held out of training, :func:`split_of`), and the
training examples with their unanswerable re-pairings (Rajpurkar et al. 2018 §3)."""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass

from evaluation.loaders import load_squad

TRAIN_PARTS = tuple(f"squad/train-v1.0/squad_v1.0_train.part{i:02d}.json.gz" for i in range(8))
SPLITS = {"calibrate": (0.0, 0.05), "report": (0.05, 0.10)}  # article-hash buckets; everything else is "train"


def split_of(title: str) -> str:
    """``calibrate`` / ``report`` / ``train`` for an article, from the sha256 of its title."""
    u = int(hashlib.sha256(title.encode("utf-8")).hexdigest()[:8], 16) / 2**32
    return next((name for name, (lo, hi) in SPLITS.items() if lo <= u < hi), "train")


@dataclass(frozen=True)
class QAExample:
    question: str
    context: str
    answer_start: int  # character offset; -1 = no answer in this context
    answer_text: str


def read_articles(paths) -> list[dict]:
    """The articles of SQuAD-format files (strict reader), in file order."""
    return [a for path in paths for a in load_squad(path, task="squad_v1", split="train").raw]


def read_examples(articles: list[dict], *, unanswerable: float, seed: int, hold_out: bool = False) -> list[QAExample]:
    """SQuAD questions; a share of them re-paired with another paragraph of their article. ``hold_out``: skip the
    articles :func:`split_of` keeps for choosing and reporting the null threshold."""
    rng = random.Random(seed)
    out: list[QAExample] = []
    for article in articles:
        if hold_out and split_of(article["title"]) != "train":
            continue
        contexts = [p["context"] for p in article["paragraphs"]]
        for para in article["paragraphs"]:
            for qa in para["qas"]:
                if not qa["answers"]:
                    continue
                start = qa["answers"][0]["answer_start"]
                others = [c for c in contexts if c != para["context"] and qa["answers"][0]["text"] not in c]
                if others and rng.random() < unanswerable:
                    out.append(QAExample(qa["question"], rng.choice(others), -1, ""))
                else:
                    out.append(QAExample(qa["question"], para["context"], start, qa["answers"][0]["text"]))
    return out


def trained_questions(articles: list[dict], *, steps: int, seed: int = 42, batch_size: int = 16,
                      unanswerable: float = 0.25) -> frozenset[str]:
    """The questions a run of this recipe (held-out articles not skipped, as before they existed) can have
    fed in ``steps`` steps: every question yields ≥ 1 window, so at most steps × batch (+ one batch pending)."""
    examples = read_examples(articles, unanswerable=unanswerable, seed=seed)
    order = list(range(len(examples)))
    random.Random(seed).shuffle(order)  # qa_batches' first epoch
    return frozenset(examples[j].question for j in order[:(steps + 1) * batch_size])
