"""Readers for the benchmarks' original file formats (no `datasets` needed), each returning a :class:`Dataset`.

- GLUE tsv (Wang et al. 2019): SST-2 ``sentence\\tlabel``; CoLA (original, headerless: source, label, mark,
  sentence; or a ``sentence/label`` export); QNLI / RTE (``question|sentence1``, ``sentence|sentence2``,
  ``label`` as 0/1 or entailment/not_entailment). Quoting is off: GLUE sentences contain bare quotes.
- STS benchmark csv (Cer et al. 2017): tab-separated, no header, ≥ 7 columns (genre, file, year, id, score,
  s1, s2, optional sources); also the GLUE STS-B tsv with a header (sentence1, sentence2, score).
- MSR paraphrase txt (Dolan & Brockett 2005): UTF-8 with BOM, header Quality, #1 ID, #2 ID, #1 String, #2 String.
- SQuAD json (official ``{"version", "data": [articles → paragraphs → qas]}``).
- Summarization jsonl: CNN/DM (``article`` → ``highlights``), XSum (``document`` → ``summary``).
- MTSamples csv (transcription, medical_specialty) and a BIOSSES-style pair file (sentence1, sentence2, score).
- A pretraining corpus (JSONL with ``text``, or .txt): its last documents are the held-out split.

Hugging Face ``datasets`` is not used: everything here reads local files, so the harness runs offline.
"""

from __future__ import annotations

import csv
import gzip
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

csv.field_size_limit(min(sys.maxsize, 2**31 - 1))  # MTSamples notes exceed csv's 128 KiB default


@dataclass(frozen=True)
class Example:
    """One evaluation item. ``label``: class index (int), similarity score (float), reference summary (str)
    or gold answer texts (list, SQuAD)."""

    id: str
    text: str
    text_pair: str | None = None
    label: Any = None


@dataclass
class Dataset:
    task: str
    split: str
    path: Path
    examples: list[Example]
    raw: Any = None  # SQuAD: the official JSON's "data" list (what the official scorer reads)
    meta: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.examples)

    def limit(self, n: int | None) -> "Dataset":
        """The first ``n`` examples (SQuAD keeps its raw data filtered to the kept question ids)."""
        if n is None or n >= len(self.examples):
            return self
        if n < 1:
            raise ValueError(f"--limit must be ≥ 1, got {n}")
        kept = self.examples[:n]
        raw = self.raw
        if raw is not None:
            ids = {e.id for e in kept}
            raw = [{**a, "paragraphs": [{**p, "qas": [q for q in p["qas"] if q["id"] in ids]}
                                        for p in a["paragraphs"]]} for a in raw]
        return Dataset(self.task, self.split, self.path, kept, raw, {**self.meta, "limit": n})


def _open_checked(path: str | Path) -> Path:
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"data file not found: {path}")
    return path


def read_tsv(path: str | Path, *, delimiter: str = "\t") -> list[list[str]]:
    """All rows of a tab-separated file, quoting off, UTF-8 with or without BOM."""
    with open(_open_checked(path), encoding="utf-8-sig", newline="") as f:
        return [row for row in csv.reader(f, delimiter=delimiter, quoting=csv.QUOTE_NONE) if row]


def _col(header: list[str], *names: str, path: Path) -> int:
    low = [h.strip().lower() for h in header]
    for name in names:
        if name.lower() in low:
            return low.index(name.lower())
    raise ValueError(f"{path.name}: no column named {' or '.join(names)} (header: {', '.join(header)})")


NLI_LABELS = {"entailment": 0, "not_entailment": 1, "0": 0, "1": 1}


def _label(value: str, mapping: dict | None, path: Path, line: int):
    v = value.strip()
    if mapping is not None:
        if v not in mapping:
            raise ValueError(f"{path.name}:{line}: unknown label {v!r}; expected one of {', '.join(mapping)}")
        return mapping[v]
    try:
        return int(v)
    except ValueError:
        raise ValueError(f"{path.name}:{line}: label {v!r} is not an integer") from None


def load_glue(path: str | Path, *, task: str, split: str, text: Sequence[str], pair: Sequence[str] = (),
              label: Sequence[str] = ("label",), label_map: dict | None = None) -> Dataset:
    """A GLUE tsv with a header row; ``text`` / ``pair`` / ``label`` list accepted column names."""
    path = _open_checked(path)
    rows = read_tsv(path)
    if not rows:
        raise ValueError(f"{path.name} is empty")
    header, body = rows[0], rows[1:]
    ti = _col(header, *text, path=path)
    pi = _col(header, *pair, path=path) if pair else None
    li = _col(header, *label, path=path)
    idx = header.index("idx") if "idx" in header else (header.index("index") if "index" in header else None)
    out = []
    for n, row in enumerate(body, start=2):
        if len(row) < len(header):
            raise ValueError(f"{path.name}:{n}: expected {len(header)} tab-separated columns, got {len(row)}")
        out.append(Example(id=row[idx] if idx is not None else str(n - 2), text=row[ti],
                           text_pair=row[pi] if pi is not None else None, label=_label(row[li], label_map, path, n)))
    return Dataset(task, split, path, out)


def load_sst2(path, *, split="dev") -> Dataset:
    return load_glue(path, task="sst2", split=split, text=("sentence",))


def load_rte(path, *, split="dev") -> Dataset:
    """RTE from the `datasets` export (sentence1, sentence2, label 0 = entailment) or GLUE's original tsv."""
    return load_glue(path, task="rte", split=split, text=("sentence1",), pair=("sentence2",), label_map=NLI_LABELS)


def load_qnli(path, *, split="dev") -> Dataset:
    return load_glue(path, task="qnli", split=split, text=("question",), pair=("sentence",), label_map=NLI_LABELS)


def load_cola(path, *, split="dev") -> Dataset:
    """CoLA: original headerless tsv (source, label, original mark, sentence) or an export with a header."""
    path = _open_checked(path)
    rows = read_tsv(path)
    if rows and "sentence" in [h.lower() for h in rows[0]]:
        return load_glue(path, task="cola", split=split, text=("sentence",))
    out = []
    for n, row in enumerate(rows, start=1):
        if len(row) < 4:
            raise ValueError(f"{path.name}:{n}: CoLA rows have 4 columns (source, label, mark, sentence), "
                             f"got {len(row)}")
        out.append(Example(id=str(n - 1), text=row[3], label=_label(row[1], None, path, n)))
    return Dataset("cola", split, path, out)


def load_mrpc(path, *, split="test") -> Dataset:
    """MSR paraphrase corpus: Quality (1 = paraphrase), #1 ID, #2 ID, #1 String, #2 String."""
    path = _open_checked(path)
    rows = read_tsv(path)
    header = rows[0]
    q, a, b = (_col(header, n, path=path) for n in ("Quality", "#1 String", "#2 String"))
    id1, id2 = _col(header, "#1 ID", path=path), _col(header, "#2 ID", path=path)
    out = []
    for n, row in enumerate(rows[1:], start=2):
        if len(row) < 5:
            raise ValueError(f"{path.name}:{n}: expected 5 tab-separated columns, got {len(row)}")
        out.append(Example(id=f"{row[id1]}-{row[id2]}", text=row[a], text_pair=row[b],
                           label=_label(row[q], None, path, n)))
    return Dataset("mrpc", split, path, out)


def load_stsb(path, *, split="dev") -> Dataset:
    """STS benchmark: genre, file, year, id, score (0–5), sentence1, sentence2[, sources]; or GLUE STS-B tsv."""
    path = _open_checked(path)
    rows = read_tsv(path)
    if rows and "sentence1" in rows[0]:
        h = rows[0]
        si, ai, bi = _col(h, "score", path=path), _col(h, "sentence1", path=path), _col(h, "sentence2", path=path)
        body, start = rows[1:], 2
    else:
        si, ai, bi, body, start = 4, 5, 6, rows, 1
    out = []
    for n, row in enumerate(body, start=start):
        if len(row) <= max(si, ai, bi):
            raise ValueError(f"{path.name}:{n}: expected ≥ {max(si, ai, bi) + 1} tab-separated columns, got {len(row)}")
        try:
            score = float(row[si])
        except ValueError:
            raise ValueError(f"{path.name}:{n}: similarity score {row[si]!r} is not a number") from None
        out.append(Example(id=str(n - start), text=row[ai], text_pair=row[bi], label=score))
    return Dataset("stsb", split, path, out)


def load_sentence_similarity(path, *, task="biosses", split="test") -> Dataset:
    """BIOSSES-style pairs (Soğancıoğlu et al. 2017): a header with sentence1, sentence2 and either ``score``
    or annotator columns (the gold score is then their mean, as in the BIOSSES paper). Tab- or comma-separated."""
    import pandas as pd

    path = _open_checked(path)
    sep = "," if path.suffix.lower() == ".csv" else "\t"
    try:
        df = pd.read_csv(path, sep=sep, encoding="utf-8-sig", quoting=csv.QUOTE_MINIMAL)
    except Exception as exc:  # noqa: BLE001 - any parse error becomes a one-line message
        raise ValueError(f"{path.name}: cannot parse as a {'comma' if sep == ',' else 'tab'}-separated table: "
                         f"{exc}") from None
    cols = {c.lower().replace(" ", "").replace("_", ""): c for c in df.columns}
    try:
        a, b = cols["sentence1"], cols["sentence2"]
    except KeyError:
        raise ValueError(f"{path.name}: needs columns sentence1 and sentence2 (got {', '.join(df.columns)})") from None
    if "score" in cols:
        scores = df[cols["score"]].astype(float)
    else:
        ann = [c for k, c in cols.items() if k.startswith("annotator")]
        if not ann:
            raise ValueError(f"{path.name}: needs a 'score' column or annotator columns")
        scores = df[ann].astype(float).mean(axis=1)
    out = [Example(id=str(i), text=str(s1), text_pair=str(s2), label=float(sc))
           for i, (s1, s2, sc) in enumerate(zip(df[a], df[b], scores))]
    return Dataset(task, split, path, out)


def load_squad(path, *, task="squad_v2", split="dev") -> Dataset:
    """Official SQuAD json (or .json.gz); examples hold (question, context, gold answer texts, and the first
    answer's character offset in ``meta['starts']``); ``raw`` keeps the data list."""
    path = _open_checked(path)
    try:
        raw_text = (gzip.open(path, "rt", encoding="utf-8").read() if path.suffix == ".gz"
                    else path.read_text(encoding="utf-8"))
        data = json.loads(raw_text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path.name}: not valid JSON ({exc.msg} at line {exc.lineno})") from None
    if not isinstance(data, dict) or not isinstance(data.get("data"), list):
        raise ValueError(f"{path.name}: not a SQuAD dataset (expected {{'version', 'data': [...]}})")
    out, starts = [], []
    for article in data["data"]:
        for para in article["paragraphs"]:
            for qa in para["qas"]:
                out.append(Example(id=qa["id"], text=qa["question"], text_pair=para["context"],
                                   label=[a["text"] for a in qa["answers"]]))
                starts.append(qa["answers"][0]["answer_start"] if qa.get("answers") else -1)
    return Dataset(task, split, path, out, raw=data["data"], meta={"version": data.get("version"), "starts": starts})


DOC_FIELDS = ("article", "document", "text", "source")
SUMMARY_FIELDS = ("highlights", "summary", "reference", "target")


def read_jsonl(path: str | Path) -> list[dict]:
    path = _open_checked(path)
    rows = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, start=1):
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError as exc:
                    raise ValueError(f"{path.name}:{n}: not valid JSON ({exc.msg})") from None
    if not rows:
        raise ValueError(f"{path.name} has no records")
    return rows


def pick_field(record: dict, wanted: str | None, candidates: Sequence[str], path: Path, what: str) -> str:
    if wanted:
        if wanted not in record:
            raise ValueError(f"{path.name}: no field {wanted!r} (fields: {', '.join(record)})")
        return wanted
    for c in candidates:
        if c in record:
            return c
    raise ValueError(f"{path.name}: no {what} field ({' / '.join(candidates)}); fields: {', '.join(record)}")


def load_summarization(path, *, task="cnndm", split="test", doc_field: str | None = None,
                       summary_field: str | None = None) -> Dataset:
    """CNN/DM jsonl (``article``, ``highlights``) or XSum jsonl (``document``, ``summary``); other fields kept in
    meta."""
    path = _open_checked(path)
    rows = read_jsonl(path)
    d = pick_field(rows[0], doc_field, DOC_FIELDS, path, "document")
    s = pick_field(rows[0], summary_field, SUMMARY_FIELDS, path, "reference summary")
    out = [Example(id=str(r.get("id", i)), text=r[d], label=r[s]) for i, r in enumerate(rows)]
    return Dataset(task, split, path, out, meta={"doc_field": d, "summary_field": s, "records": rows})


MTSAMPLES_POSITIVE = "Surgery"


def load_mtsamples(path, *, split="test", positive: str = MTSAMPLES_POSITIVE, test_size: float = 0.5,
                   seed: int = 0) -> Dataset:
    """MTSamples transcriptions, label 1 = ``medical_specialty`` is ``positive`` (default Surgery).

    ``split`` 'train' / 'test': a fixed stratified split (scikit-learn, ``random_state=seed``, default 50/50)
    so that a probe trains and tests on disjoint notes; 'all' keeps every note.
    """
    from sklearn.model_selection import train_test_split

    path = _open_checked(path)
    # csv (not pandas' C parser): the public subset's last note is cut inside its quotes, which csv reads as is
    with open(path, encoding="utf-8-sig", newline="") as f:
        rows = list(csv.reader(f))
    if not rows:
        raise ValueError(f"{path.name} is empty")
    header = [h.strip() for h in rows[0]]
    ti, si = (_col(header, c, path=path) for c in ("transcription", "medical_specialty"))
    notes = [r for r in rows[1:] if len(r) > max(ti, si) and r[ti].strip()]
    labels = [int(r[si].strip() == positive) for r in notes]
    ids = [r[0].strip() if header[0] == "" and r[0].strip() else str(i) for i, r in enumerate(notes)]
    order = list(range(len(notes)))
    if split in ("train", "test"):
        if len(set(labels)) < 2:
            raise ValueError(f"{path.name}: needs notes both in and out of {positive!r} for a train/test split")
        tr, te = train_test_split(order, test_size=test_size, random_state=seed, stratify=labels)
        order = sorted(tr if split == "train" else te)
    elif split != "all":
        raise ValueError(f"MTSamples split must be train, test or all, got {split!r}")
    out = [Example(id=ids[i], text=notes[i][ti], label=labels[i]) for i in order]
    return Dataset("mtsamples", split, path, out, meta={"positive": positive})


def load_mtsamples_notes(path, *, split="test", positive: str = MTSAMPLES_POSITIVE) -> Dataset:
    """Every note of one MTSamples file as one split (``mtsamples-subset``: the 3,700 training notes, or the
    322-note subset they are disjoint from, kept whole as the test set)."""
    ds = load_mtsamples(path, split="all", positive=positive)
    return Dataset("mtsamples-subset", split, ds.path, ds.examples, meta=ds.meta)


def load_terms(path, *, split="all", per_category: int | None = 500, seed: int = 0) -> Dataset:
    """Categorised terms (``term<TAB>category`` with a header naming them; more columns are ignored), sampled
    evenly: ``per_category`` terms of each category (all of a smaller one), drawn with ``seed``, so that the
    same-category nearest-neighbour rate is not dominated by the largest category. Example: text = term,
    label = category."""
    import random

    path = _open_checked(path)
    rows = read_tsv(path)
    if not rows:
        raise ValueError(f"{path.name} is empty")
    header = [h.strip().lower() for h in rows[0]]
    ti, ci = (_col(header, c, path=path) for c in ("term", "category"))
    by_cat: dict[str, list[str]] = {}
    seen = set()
    for r in rows[1:]:
        if len(r) > max(ti, ci) and r[ti].strip() and r[ti].strip().lower() not in seen:
            seen.add(r[ti].strip().lower())
            by_cat.setdefault(r[ci].strip(), []).append(r[ti].strip())
    if len(by_cat) < 2:
        raise ValueError(f"{path.name}: needs terms of at least 2 categories, found {len(by_cat)}")
    rng = random.Random(seed)
    out = []
    for cat in sorted(by_cat):
        terms = by_cat[cat]
        pick = terms if per_category is None or len(terms) <= per_category else rng.sample(terms, per_category)
        out += [Example(id=f"{cat}:{t}", text=t, label=cat) for t in pick]
    return Dataset("bioterms", split, path, out, meta={"categories": {c: len(v) for c, v in sorted(by_cat.items())},
                                                      "per_category": per_category, "seed": seed})


def load_corpus(path, *, task: str = "wikipedia", split: str = "heldout", heldout_docs: int | None = None) -> Dataset:
    """A pretraining corpus (JSONL with a ``text`` field, or .txt with blank-line-separated documents), read by
    the recipes' own reader (``bertvariants.corpus.read_corpus``) so documents are counted identically.

    ``split`` 'heldout' = the last ``heldout_docs`` documents (default
    :data:`evaluation.metrics.pretraining.HELDOUT_DOCS` = 6; split 'enwiki2018': 100), the ones the recipes never
    train on. ``path`` may be a directory of JSONL parts. ``raw`` keeps
    every document: the runner cuts the held-out blocks exactly as the recipes do.
    """
    from bertvariants.corpus import read_corpus

    from .metrics.pretraining import HELDOUT_DOCS_BY_SPLIT

    if split not in HELDOUT_DOCS_BY_SPLIT:
        raise ValueError(f"a pretraining corpus's evaluation splits are {', '.join(HELDOUT_DOCS_BY_SPLIT)}; "
                         f"got {split!r}")
    k = HELDOUT_DOCS_BY_SPLIT[split] if heldout_docs is None else heldout_docs
    path = Path(path)
    if not path.is_dir():  # a directory = a corpus in parts (bertvariants.corpus.corpus_files)
        path = _open_checked(path)
    docs = read_corpus(path)
    if k < 1 or len(docs) <= k:
        raise ValueError(f"{path.name} has {len(docs)} documents; holding out the last {k} needs at least {k + 1}")
    start = len(docs) - k
    out = [Example(id=f"doc-{start + j}", text=d) for j, d in enumerate(docs[start:])]
    return Dataset(task, split, path, out, raw=docs, meta={"documents": len(docs), "heldout_docs": k})
