"""Where a recipe's data comes from, and the seeded batch order it is drawn in.

Recipes read the shared public corpora (SST-2, STS-B, Wikipedia, MTSamples) from the one shared data setting,
:func:`bertvariants.paths.shared_data_dir` (env ``BERTVARIANTS_DATA``, else ``../shared/data``), or the files
the user passes with ``--data``; when neither has a file and the Hub is reachable, the public dataset it comes
from is fetched with the ``datasets`` library (:mod:`bertvariants.train.public_data`, which also says, offline,
what each file is and where to get it). Nothing in the product requires them. Files are parsed by the strict readers
the evaluation harness uses (:mod:`evaluation.loaders`, :mod:`bertvariants.corpus`): a malformed row is an
error naming the file and line, never a silently skipped example.

Batches are drawn from an explicit seeded ``torch.Generator`` (:func:`bertvariants.common.make_generator`),
so two runs with the same seed see the same batches in the same order.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator, Sequence

import torch

from ..common import make_generator
from ..corpus import corpus_blocks, read_corpus
from ..io import atomic_write_bytes, sha256_path
from ..paths import DATA_ENV, shared_data_dir
from . import public_data
from .config import TrainConfig

WIKIPEDIA = "corpus/enwiki_sample.jsonl"  # the pretraining recipes' corpus, relative to the data directory
# the corpora a pretraining recipe can train on (``--set corpus=NAME``) -> (path in the data directory, the
# evaluation harness's split that holds out the same last documents)
CORPORA = {"enwiki_sample": (WIKIPEDIA, "heldout"), "enwiki2018": ("corpus/enwiki2018", "enwiki2018")}


def data_file(cfg: TrainConfig, relative: str, *, what: str, override: str | None = None,
              directory: bool = False) -> Path:
    """Resolve one input file: an explicit path (``--data FILE`` or a recipe option), else ``<data dir>/<relative>``.

    ``--data DIR`` replaces the shared data directory (same layout); ``--data FILE`` is used as is.
    ``directory``: the input is a directory (a corpus in JSONL parts) rather than one file.
    """
    explicit = override or cfg.data
    if explicit:
        path = Path(explicit).expanduser()
        if path.is_dir() and not (directory and override):
            path = path / relative
    else:
        base = shared_data_dir()
        path = base / relative
        if not path.is_file() and (fetched := public_data.fetch(relative)) is not None:
            return fetched  # online: the public dataset, fetched once with the `datasets` library
        if not base.is_dir():
            raise ValueError(f"no {what} given and no shared data directory at {base}: pass --data DIR (laid out "
                             f"like the shared data, with DIR/{relative}) or --data FILE, or set {DATA_ENV}=DIR."
                             f"{public_data.how_to_get(relative)}")
    if not (path.is_dir() if directory else path.is_file()):
        raise ValueError(f"{what}: {path} does not exist (pass --data PATH, or set {DATA_ENV} to a directory "
                         f"with {relative}).{public_data.how_to_get(relative)}")
    return path


class Sampler:
    """Seeded index sampler: epochs of a random permutation drawn from one explicit generator."""

    def __init__(self, n: int, batch_size: int, *, seed: int):
        if n < 1:
            raise ValueError("no training examples")
        self.n, self.batch_size = n, min(batch_size, n)
        self.gen = make_generator(seed)
        self._perm: list[int] = []

    def __iter__(self) -> Iterator[list[int]]:
        return self

    def __next__(self) -> list[int]:
        if len(self._perm) < self.batch_size:
            self._perm += torch.randperm(self.n, generator=self.gen).tolist()
        batch, self._perm = self._perm[: self.batch_size], self._perm[self.batch_size:]
        return batch


class BucketSampler(Sampler):
    """Seeded batches of similar length: each pool of ``pool`` batches' worth of a random permutation is sorted
    by length and cut into batches, which are then shuffled. Padding (and so compute) drops several-fold on
    SST-2's mix of 3-word phrases and 50-word sentences, while every epoch still visits every example once."""

    def __init__(self, lengths: Sequence[int], batch_size: int, *, seed: int, pool: int = 50):
        super().__init__(len(lengths), batch_size, seed=seed)
        self.lengths, self.pool = list(lengths), pool
        self._batches: list[list[int]] = []

    def __next__(self) -> list[int]:
        if not self._batches:
            perm = torch.randperm(self.n, generator=self.gen).tolist()
            size = self.batch_size * self.pool
            for start in range(0, self.n, size):
                chunk = sorted(perm[start:start + size], key=lambda i: self.lengths[i])
                self._batches += [chunk[j:j + self.batch_size] for j in range(0, len(chunk), self.batch_size)]
            order = torch.randperm(len(self._batches), generator=self.gen).tolist()
            self._batches = [self._batches[i] for i in order]
        return self._batches.pop()


def labelled_texts(dataset) -> tuple[list[str], list]:
    """(texts, labels) of a single-text :class:`evaluation.loaders.Dataset` (e.g. ``load_sst2``'s), texts stripped
    of the trailing spaces GLUE's SST-2 phrases carry."""
    return [e.text.strip() for e in dataset.examples], [e.label for e in dataset.examples]


def text_batches(tokenizer, texts: Sequence[str], labels: Sequence[int], *, batch_size: int, max_length: int,
                 seed: int, extra: torch.Tensor | None = None) -> Iterator[dict]:
    """Seeded length-bucketed batches of tokenized texts (dynamic padding) with gold ``labels`` (and optional
    per-example ``extra`` rows (N, ...), e.g. the teacher's logits)."""
    lengths = [len(t) for t in texts]  # characters: a free, monotone proxy for token counts
    for idx in BucketSampler(lengths, batch_size, seed=seed):
        batch = dict(tokenizer([texts[i] for i in idx], truncation=True, max_length=max_length, padding=True,
                               return_tensors="pt"))
        batch["labels"] = torch.tensor([labels[i] for i in idx])
        if extra is not None:
            batch["extra"] = extra[torch.tensor(idx)]
        yield batch


def wikipedia_blocks(cfg: TrainConfig, tokenizer, *, block: int, heldout_docs: int, override: str | None = None,
                     corpus: str = "enwiki_sample") -> tuple[torch.Tensor, torch.Tensor, Path]:
    """(train_blocks, heldout_blocks, corpus path) of a Wikipedia sample (:data:`CORPORA`; or ``--data``'s corpus).

    The blocks are :func:`bertvariants.corpus.corpus_blocks`'s, the same cut the harness's held-out
    ``wikipedia-*`` benchmarks make, so the last ``heldout_docs`` documents are never trained on."""
    if corpus not in CORPORA:
        raise ValueError(f"corpus must be one of {', '.join(CORPORA)}, got {corpus!r}")
    relative = CORPORA[corpus][0]
    path = data_file(cfg, relative, what="pretraining corpus (JSONL with 'text', .txt, or a directory of JSONL parts)",
                     override=override, directory=not relative.endswith((".jsonl", ".txt")))
    train, heldout = cached_blocks(path, tokenizer, block=block, heldout_docs=heldout_docs)
    if len(train) == 0 or len(heldout) == 0:
        raise ValueError(f"{path}: corpus too small for blocks of {block} tokens")
    return train, heldout, path


def blocks_cache_file(path: Path, tokenizer, *, block: int, heldout_docs: int) -> Path:
    """Where the token blocks of a corpus are cached: keyed by the corpus file's sha256, the tokenizer's full
    definition, the block length and the held-out split, so any change to one of them re-tokenizes."""
    import hashlib
    import json

    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None:  # the definition without the per-call truncation / padding state
        spec = json.loads(backend.to_str())
        definition = json.dumps({k: v for k, v in spec.items() if k not in ("truncation", "padding")}, sort_keys=True)
    else:
        definition = repr(sorted(tokenizer.get_vocab().items()))
    key = hashlib.sha256("|".join([sha256_path(path), hashlib.sha256(definition.encode()).hexdigest(), str(block),
                                   str(heldout_docs), "blocks-v1"]).encode()).hexdigest()[:32]
    return public_data.cache_dir().parent / "blocks" / f"{Path(path).stem}-{key}.safetensors"


def cached_blocks(path: Path, tokenizer, *, block: int, heldout_docs: int) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`bertvariants.corpus.corpus_blocks` of the corpus at ``path``, tokenized once and cached (int32
    safetensors, written atomically): a 9M-word corpus takes minutes to tokenize and milliseconds to read back."""
    from safetensors.torch import load_file, save

    cache = blocks_cache_file(path, tokenizer, block=block, heldout_docs=heldout_docs)
    if cache.is_file():
        saved = load_file(str(cache))
        return saved["train"].long(), saved["heldout"].long()
    train, heldout = corpus_blocks(tokenizer, read_corpus(path), block=block, heldout_docs=heldout_docs)
    if len(train) and len(heldout):
        atomic_write_bytes(cache, save({"train": train.int().contiguous(), "heldout": heldout.int().contiguous()}))
    return train, heldout


def block_batches(blocks: torch.Tensor, *, batch_size: int, seed: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Seeded batches of corpus blocks forever: (indices (B,), blocks (B, T))."""
    for idx in Sampler(len(blocks), batch_size, seed=seed):
        index = torch.tensor(idx)
        yield index, blocks[index]
