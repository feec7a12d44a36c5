"""The public datasets the recipes train on: what each file is, where to get it, and (online) fetching it.

Every file a recipe reads (:func:`bertvariants.train.data.data_file`) is a public dataset in a plain format. When
neither ``--data`` nor the shared data directory provides it, the recipe either fetches it — when the Hugging Face
Hub is reachable, with the ``datasets`` library by the dataset's public name, written once in the layout the
recipes read under ``~/.cache/bertvariants/data`` (``BERTVARIANTS_DATA_CACHE``) — or, offline, stops with a
message that names the dataset, its format and where to get it. Nothing here is needed by the app.
"""

from __future__ import annotations

import gzip
import json
import os
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

from ..io import atomic_write_bytes, atomic_write_text
from ..serving.device import hub_online

CACHE_ENV = "BERTVARIANTS_DATA_CACHE"


@dataclass(frozen=True)
class PublicDataset:
    """One file of the shared layout: what it is, its format, and the Hub dataset it can be rebuilt from."""

    title: str
    format: str  # what --data FILE must look like
    source: str  # where to get it by hand
    hub: str = ""  # Hugging Face dataset id ("" = not on the Hub in a usable form)
    config: str | None = None
    split: str = "train"
    write: Callable[[Iterable[dict]], str] | None = None  # rows -> file text in the shared layout
    limit: int | None = None  # rows to take (a sample of a large corpus; streamed)


def _glue_single(rows: Iterable[dict]) -> str:
    return "sentence\tlabel\n" + "".join(f"{r['sentence'].strip()}\t{int(r['label'])}\n" for r in rows)


def _glue_stsb(rows: Iterable[dict]) -> str:
    clean = lambda s: " ".join(s.split())  # noqa: E731  (tabs/newlines would break the TSV)
    return "score\tsentence1\tsentence2\n" + "".join(
        f"{float(r['label']):.3f}\t{clean(r['sentence1'])}\t{clean(r['sentence2'])}\n" for r in rows)


def _jsonl(rows: Iterable[dict]) -> str:
    return "".join(json.dumps({"id": str(r.get("id", i)), "title": r.get("title", ""), "text": r["text"]},
                              ensure_ascii=False) + "\n" for i, r in enumerate(rows))


def squad_json(rows: Iterable[dict]) -> str:
    """Flat SQuAD rows (the Hub's ``rajpurkar/squad``: id, title, context, question, answers{text, answer_start})
    regrouped into the official JSON (articles → paragraphs → qas) that :func:`evaluation.loaders.load_squad` reads."""
    articles: dict[str, dict[str, list]] = defaultdict(lambda: defaultdict(list))
    for r in rows:
        answers = [{"text": t, "answer_start": int(s)}
                   for t, s in zip(r["answers"]["text"], r["answers"]["answer_start"])]
        articles[r["title"]][r["context"]].append({"id": r["id"], "question": r["question"], "answers": answers})
    data = [{"title": title, "paragraphs": [{"context": c, "qas": qas} for c, qas in paras.items()]}
            for title, paras in articles.items()]
    return json.dumps({"version": "1.1", "data": data}, ensure_ascii=False)


GLUE = "nyu-mll/glue"
SQUAD = ("SQuAD v1.1 (Rajpurkar et al. 2016), official JSON: {\"data\": [{\"title\", \"paragraphs\": [{\"context\", "
         "\"qas\": [{\"id\", \"question\", \"answers\": [{\"text\", \"answer_start\"}]}]}]}]}")
PUBLIC: dict[str, PublicDataset] = {
    "glue/sst2/train.tsv": PublicDataset("GLUE SST-2 train", "TSV with header `sentence<TAB>label` (0/1)",
                                         "https://gluebenchmark.com/tasks", GLUE, "sst2", "train", _glue_single),
    "glue/sst2/dev.tsv": PublicDataset("GLUE SST-2 dev", "TSV with header `sentence<TAB>label` (0/1)",
                                       "https://gluebenchmark.com/tasks", GLUE, "sst2", "validation", _glue_single),
    "glue/stsb/sts-train.csv": PublicDataset("STS benchmark train", "TSV: the STS-B release's 7 columns (score 0–5 "
                                             "in column 5) or a header with score, sentence1, sentence2",
                                             "https://ixa2.si.ehu.eus/stswiki", GLUE, "stsb", "train", _glue_stsb),
    "glue/stsb/sts-dev.csv": PublicDataset("STS benchmark dev", "as STS-B train", "https://ixa2.si.ehu.eus/stswiki",
                                           GLUE, "stsb", "validation", _glue_stsb),
    "corpus/enwiki_sample.jsonl": PublicDataset("English Wikipedia (a sample of articles)",
                                                "JSONL with a `text` field per document (or a .txt file)",
                                                "https://dumps.wikimedia.org", "wikimedia/wikipedia", "20231101.en",
                                                "train", _jsonl, limit=2000),
    "corpus/enwiki2018": PublicDataset("English Wikipedia (a 32,000-article sample, ≈ 9M words)",
                                       "a directory of JSONL parts (*.jsonl or *.jsonl.gz) with a `text` field per "
                                       "document", "https://dumps.wikimedia.org", "wikimedia/wikipedia", "20231101.en",
                                       "train", _jsonl, limit=32000),
    "squad/dev-v1.1-slice.json": PublicDataset("SQuAD v1.1 dev", SQUAD, "https://rajpurkar.github.io/SQuAD-explorer/",
                                               "rajpurkar/squad", None, "validation", squad_json),
    "clinical/mtsamples_subset.csv": PublicDataset(
        "MTSamples medical transcriptions", "CSV with columns medical_specialty and transcription (one note a row)",
        "mtsamples.com scrape, CC0: https://www.kaggle.com/datasets/tboyle10/medicaltranscriptions"),
}
SQUAD_TRAIN = PublicDataset("SQuAD v1.1 train", SQUAD + " (one file or several parts)",
                            "https://rajpurkar.github.io/SQuAD-explorer/", "rajpurkar/squad", None, "train", squad_json)


def describe(relative: str) -> PublicDataset | None:
    """The public dataset behind a shared-layout path (SQuAD train parts share one entry)."""
    if relative.startswith("squad/train-v1.0/"):
        return SQUAD_TRAIN
    return PUBLIC.get(relative)


def cache_dir() -> Path:
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "bertvariants" / "data")


def how_to_get(relative: str) -> str:
    """One sentence for an error message: which public dataset, its format, and where to get it."""
    d = describe(relative)
    if d is None:
        return ""
    online = f"; online, the recipe fetches it from the Hub ({d.hub}) with the `datasets` library" if d.hub else ""
    return f" It is {d.title} ({d.source}); --data FILE must be {d.format}{online}."


def fetch(relative: str, *, online: bool | None = None) -> Path | None:
    """The file rebuilt from its Hub dataset into :func:`cache_dir` (written once, atomically), or ``None`` when
    it has no Hub source or the Hub is unreachable. SQuAD train is fetched whole into the first part's path; the
    other parts are then empty article lists (the recipe reads them all)."""
    d = describe(relative)
    if d is None or not d.hub or d.write is None or not (hub_online() if online is None else online):
        return None
    directory = not Path(relative).suffix  # a corpus in parts: fetched into one part of the directory
    target = cache_dir() / relative / "part00.jsonl.gz" if directory else cache_dir() / relative
    if target.is_file():
        return target.parent if directory else target
    try:
        import datasets
    except ImportError:
        raise ValueError(f"{d.title} can be fetched from the Hub ({d.hub}), but the `datasets` library is not "
                         "installed: pip install datasets") from None
    squad_part = relative.startswith("squad/train-v1.0/")
    if squad_part and not relative.endswith("part00.json.gz"):
        text = json.dumps({"version": "1.1", "data": []})  # everything went into part00
    else:
        rows = datasets.load_dataset(d.hub, d.config, split=d.split, streaming=d.limit is not None)
        if d.limit is not None:
            rows = rows.take(d.limit)
        text = d.write(rows)
    if relative.endswith(".gz"):
        atomic_write_bytes(target, gzip.compress(text.encode("utf-8")))
    else:
        atomic_write_text(target, text)
    return target.parent if directory else target
