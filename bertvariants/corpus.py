"""Pretraining corpora: documents in, fixed-length token blocks out (BERT §3.1's "contiguous text").

Shared by the variant lab's pretraining recipes (training blocks) and the evaluation harness's held-out
benchmarks (``wikipedia-mlm``, ``-rtd``, ``-span``), so both count documents and cut blocks identically.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

import torch


CORPUS_PARTS = ("*.jsonl", "*.jsonl.gz")  # the files of a corpus given as a directory, read in name order


def corpus_files(path: str | Path) -> list[Path]:
    """The file(s) of a corpus: ``path`` itself, or a directory's ``*.jsonl`` / ``*.jsonl.gz`` parts by name
    (e.g. the 8 parts of the 2018 Wikipedia sample)."""
    path = Path(path)
    if not path.is_dir():
        return [path]
    parts = sorted({p for pattern in CORPUS_PARTS for p in path.glob(pattern)}, key=lambda p: p.name)
    if not parts:
        raise ValueError(f"{path}: a corpus directory needs *.jsonl or *.jsonl.gz parts; found none")
    return parts


def read_corpus(path: str | Path) -> list[str]:
    """Plain-text corpus -> documents: JSONL with a ``text`` field (one document per line; ``.jsonl.gz`` too), a
    .txt file (documents separated by blank lines), or a directory of JSONL parts read in name order. A JSONL line
    that is not an object with a string ``text`` is an error naming the file and line."""
    docs: list[str] = []
    for part in corpus_files(path):
        if part.name.endswith((".jsonl", ".jsonl.gz")):
            docs += _read_jsonl(part)
        else:
            docs += [d.strip() for d in part.read_text(encoding="utf-8").split("\n\n")]
    docs = [d for d in docs if d.strip()]
    if not docs:
        raise ValueError(f"{path}: empty corpus")
    return docs


def _read_jsonl(path: Path) -> list[str]:
    import gzip

    docs = []
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as f:
        for line_no, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ValueError(f"{path}:{line_no}: not valid JSON ({exc.msg})") from None
            if not isinstance(record, dict) or not isinstance(record.get("text"), str):
                raise ValueError(f"{path}:{line_no}: expected an object with a string 'text' field")
            docs.append(record["text"])
    return docs


def corpus_blocks(tokenizer, docs: Sequence[str], *, block: int,
                  heldout_docs: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Tokenize documents into contiguous blocks of ``block`` tokens ([CLS] … [SEP]); the last
    ``heldout_docs`` documents form the held-out set (documents never straddle the split).

    Returns (train_blocks, heldout_blocks), each (N, block) int64.
    """
    if heldout_docs >= len(docs):
        raise ValueError(f"corpus has {len(docs)} documents; cannot hold out {heldout_docs}")
    inner = block - 2

    def blocks(part: Sequence[str]) -> torch.Tensor:
        ids: list[int] = []
        for start in range(0, len(part), 256):  # one fast-tokenizer call per 256 documents (same ids as one by one)
            for doc_ids in tokenizer(list(part[start:start + 256]), add_special_tokens=False)["input_ids"]:
                ids.extend(doc_ids)
        n = len(ids) // inner
        t = torch.tensor(ids[: n * inner], dtype=torch.long).view(n, inner)  # (N, block - 2)
        cls = torch.full((n, 1), tokenizer.cls_token_id)
        sep = torch.full((n, 1), tokenizer.sep_token_id)
        return torch.cat([cls, t, sep], dim=1)

    split = len(docs) - heldout_docs
    return blocks(docs[:split]), blocks(docs[split:])
