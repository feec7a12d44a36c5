"""RoBERTa (Liu et al. 2019): static vs dynamic masking, byte-level BPE vs WordPiece, fill-mask.

§4.1 "Static vs. Dynamic Masking": the original BERT masked once during preprocessing; RoBERTa's
static baseline duplicates the training data 10 times so each sequence is masked in 10 different
ways over the 40 epochs (each mask seen 4 times); dynamic masking draws a fresh mask every time a
sequence is fed to the model. Both use BERT's corruption (15% selected; 80% [MASK] / 10% random /
10% unchanged) — :func:`bertvariants.common.mask_tokens`.
§4.4 "Text Encoding": a byte-level BPE with a 50K vocabulary (GPT-2's) can encode any text without
unknown tokens, unlike BERT's 30K WordPiece vocabulary, which emits [UNK] for characters it has never
seen (emoji, many scripts).
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import plotly.graph_objects as go
import torch

from . import checks
from .common import (  # noqa: F401
    IGNORE_INDEX,
    MASK_SPELLINGS,
    MaskedBatch,
    mask_tokens,
    normalize_mask_text,
    wordpiece_piece,
)
from .figures import finish
from .figures import title as make_title
from .serving import ModelUnavailable, packaged_model_path
from .serving.cache import user_cache_dir
from .serving.sources import hub_tokenizer

log = logging.getLogger(__name__)

# §4.1: "training data was duplicated 10 times so that each sequence is masked in 10 different ways"
NUM_STATIC_MASKS = 10
BPE_VOCAB_SIZE = 50_000  # §4.4: "a larger byte-level BPE vocabulary containing 50K subword units"
ROBERTA_HUB_ID = "roberta-base"


@dataclass(frozen=True)
class MaskingConfig:
    """BERT's corruption with its defaults, shared by both schemes."""

    mlm_probability: float = 0.15
    mask_ratio: float = 0.8
    random_ratio: float = 0.1


@dataclass(frozen=True)
class StaticMasks:
    """The static scheme: ``NUM_STATIC_MASKS`` masks drawn once in preprocessing, then reused in turn."""

    masks: tuple[MaskedBatch, ...]

    def for_epoch(self, epoch: int) -> MaskedBatch:
        """Epoch ``e`` sees mask ``e mod 10`` (40 epochs: each mask 4 times, as in §4.1)."""
        if epoch < 0:
            raise ValueError(f"epoch must be ≥ 0, got {epoch}")
        return self.masks[epoch % len(self.masks)]


def static_masks(ids: torch.Tensor, *, mask_token_id: int, vocab_size: int, generator: torch.Generator,
                 special_ids=(), num_masks: int = NUM_STATIC_MASKS,
                 config: MaskingConfig = MaskingConfig()) -> StaticMasks:
    """Precompute the static masks of ``ids`` (B, T) — done once, before training (§4.1)."""
    if num_masks < 1:
        raise ValueError(f"num_masks must be ≥ 1, got {num_masks}")
    return StaticMasks(tuple(
        mask_tokens(ids, mask_token_id=mask_token_id, vocab_size=vocab_size, generator=generator,
                    special_ids=special_ids, mlm_probability=config.mlm_probability, mask_ratio=config.mask_ratio,
                    random_ratio=config.random_ratio) for _ in range(num_masks)))


class DynamicMasking:
    """The dynamic scheme: every call draws a fresh mask from the producer's own generator (§4.1)."""

    def __init__(self, *, mask_token_id: int, vocab_size: int, generator: torch.Generator, special_ids=(),
                 config: MaskingConfig = MaskingConfig()):
        self.mask_token_id, self.vocab_size, self.generator = mask_token_id, vocab_size, generator
        self.special_ids, self.config = tuple(special_ids), config

    def __call__(self, ids: torch.Tensor) -> MaskedBatch:
        c = self.config
        return mask_tokens(ids, mask_token_id=self.mask_token_id, vocab_size=self.vocab_size,
                           generator=self.generator, special_ids=self.special_ids, mlm_probability=c.mlm_probability,
                           mask_ratio=c.mask_ratio, random_ratio=c.random_ratio)


SCHEMES = ("static", "dynamic")
# codes of the explorer's epoch × position grid
NOT_SELECTED, MASKED, RANDOMIZED, KEPT = 0, 1, 2, 3


def masks_across_epochs(ids: torch.Tensor, *, scheme: str, epochs: int, seed: int, mask_token_id: int,
                        vocab_size: int, special_ids=(), num_masks: int = NUM_STATIC_MASKS,
                        config: MaskingConfig = MaskingConfig()) -> torch.Tensor:
    """(epochs, T) grid of what happened to each position of one sequence ``ids`` (T,) in each epoch."""
    if scheme not in SCHEMES:
        raise ValueError(f"scheme must be one of {', '.join(SCHEMES)}, got {scheme!r}")
    if epochs < 1:
        raise ValueError(f"epochs must be ≥ 1, got {epochs}")
    gen = torch.Generator().manual_seed(int(seed))
    kw = dict(mask_token_id=mask_token_id, vocab_size=vocab_size, generator=gen, special_ids=special_ids, config=config)
    row = ids.unsqueeze(0)
    if scheme == "static":
        pre = static_masks(row, num_masks=num_masks, **kw)
        per_epoch = [pre.for_epoch(e) for e in range(epochs)]
    else:
        producer = DynamicMasking(**kw)
        per_epoch = [producer(row) for _ in range(epochs)]
    grid = torch.zeros(epochs, ids.shape[0], dtype=torch.long)
    for e, m in enumerate(per_epoch):
        grid[e][m.masked[0]] = MASKED
        grid[e][m.randomized[0]] = RANDOMIZED
        grid[e][m.kept[0]] = KEPT
    return grid


def distinct_masks(grid: torch.Tensor) -> int:
    """How many different selections a grid contains (static: ≤ 10 however many epochs)."""
    return len({tuple((row > 0).tolist()) for row in grid})


def masks_figure(grid: torch.Tensor, tokens: list[str], *, title: str) -> go.Figure:
    """Heatmap: epochs (rows) × tokens (columns), coloured by what the masking did."""
    names = ["·", "[MASK]", "random", "kept"]
    colours = [[0.0, "#f4f4f4"], [0.25, "#f4f4f4"], [0.25, "#d62728"], [0.5, "#d62728"], [0.5, "#ff7f0e"],
               [0.75, "#ff7f0e"], [0.75, "#1f77b4"], [1.0, "#1f77b4"]]
    text = [[names[v] for v in row] for row in grid.tolist()]
    x = [f"{i}:{t}" for i, t in enumerate(tokens)]
    fig = go.Figure(go.Heatmap(z=grid.tolist(), x=x, y=[f"epoch {e + 1}" for e in range(grid.shape[0])], zmin=-0.5,
                               zmax=3.5, colorscale=colours, text=text, hoverinfo="x+y+text", showscale=False,
                               xgap=1, ygap=1))
    # no explicit ticks: Plotly thins the column labels to fit the width (a phone shows a few, hover shows all)
    return finish(fig, title=make_title(title, "red = [MASK], orange = random token, blue = selected but kept"),
                  height=max(320, 22 * grid.shape[0] + 170), xaxis_title="token (position:WordPiece)",
                  yaxis=dict(title="epoch", autorange="reversed"))


# --------------------------------------------------------------------------------------------
# Byte-level BPE vs WordPiece (§4.4)
# --------------------------------------------------------------------------------------------
BPE_SPECIALS = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]


def train_byte_bpe(texts_or_files: Iterable[str] | Iterable[Path], *, vocab_size: int = BPE_VOCAB_SIZE,
                   min_frequency: int = 2):
    """Train a byte-level BPE (GPT-2 / RoBERTa style, ``tokenizers``) on texts, or on text files given as Paths.

    The 256 byte symbols are always in the alphabet, so any string is encodable: no unknown token.
    """
    from tokenizers import ByteLevelBPETokenizer

    if vocab_size < 256 + len(BPE_SPECIALS):
        raise ValueError(f"vocab_size must be ≥ {256 + len(BPE_SPECIALS)} (the bytes + specials), got {vocab_size}")
    items = list(texts_or_files)
    tok = ByteLevelBPETokenizer()
    kw = dict(vocab_size=vocab_size, min_frequency=min_frequency, special_tokens=BPE_SPECIALS, show_progress=False)
    if items and all(isinstance(x, Path) for x in items):
        missing = [str(x) for x in items if not x.is_file()]
        if missing:
            raise ValueError(f"BPE training file(s) not found: {', '.join(missing)}")
        tok.train([str(x) for x in items], **kw)
    else:
        tok.train_from_iterator(items, **kw)
    return tok


def _wordpiece_vocab_texts(vocab_file: Path) -> list[str]:
    """Training text made of the WordPiece vocabulary: whole words with a leading space, '##' pieces bare."""
    out = []
    for entry in vocab_file.read_text(encoding="utf-8").splitlines():
        if not entry or (entry.startswith("[") and entry.endswith("]")):
            continue
        out.append(wordpiece_piece(entry))
    return out


@dataclass
class ByteBpe:
    """A byte-level BPE tokenizer (a transformers fast tokenizer) and an honest description of where it came from."""

    tokenizer: object
    label: str


def _as_fast(tok):
    from tokenizers import Tokenizer
    from transformers import PreTrainedTokenizerFast

    # a trained ByteLevelBPETokenizer or a tokenizers.Tokenizer: both serialise to tokenizer.json text
    return PreTrainedTokenizerFast(tokenizer_object=Tokenizer.from_str(tok.to_str()),
                                   bos_token="<s>", eos_token="</s>", unk_token="<unk>", pad_token="<pad>",
                                   mask_token="<mask>")


def byte_bpe_tokenizer(*, cache_dir: Path | None = None, corpus: Path | None = None) -> ByteBpe:
    """roberta-base's tokenizer when cached (or online); else a byte-level BPE trained once here, cached on disk.

    Offline fallback: trained (≈1 s) on a text file named by ``corpus`` / env ``BERTVARIANTS_BPE_CORPUS``
    (one document per line), otherwise on the packaged MiniLM's 30,522 WordPiece vocabulary strings.
    Either way it is saved under ``<cache_dir>/byte-bpe-*`` (default: the user's cache directory,
    :func:`bertvariants.serving.cache.user_cache_dir`, never the repository) and reused.
    """
    try:
        tok = hub_tokenizer(ROBERTA_HUB_ID)
        return ByteBpe(tok, f"`{ROBERTA_HUB_ID}` tokenizer (byte-level BPE, {len(tok):,} tokens)")
    except ModelUnavailable:  # not cached / offline: build our own below
        log.info("roberta-base tokenizer unavailable: using a byte-level BPE trained here")
    if corpus is None and os.environ.get("BERTVARIANTS_BPE_CORPUS"):
        corpus = Path(os.environ["BERTVARIANTS_BPE_CORPUS"])
    name = f"byte-bpe-{re.sub(r'[^A-Za-z0-9]+', '-', corpus.stem)}" if corpus else "byte-bpe-wordpiece-vocab"
    out = Path(cache_dir or user_cache_dir()) / name
    if (out / "tokenizer.json").is_file():
        from tokenizers import Tokenizer

        tok = _as_fast(Tokenizer.from_file(str(out / "tokenizer.json")))
    else:
        if corpus:
            trained = train_byte_bpe([corpus])
        else:
            trained = train_byte_bpe(_wordpiece_vocab_texts(packaged_model_path() / "vocab.txt"), min_frequency=1)
        try:
            out.mkdir(parents=True, exist_ok=True)
            trained.save(str(out / "tokenizer.json"))
        except OSError as exc:  # a read-only cache dir: keep it in memory, train again next process
            log.warning("could not cache the byte-level BPE in %s: %s", out, exc)
        tok = _as_fast(trained)
    source = f"the text file {corpus.name}" if corpus else "the 30,522 WordPiece vocabulary strings of MiniLM"
    return ByteBpe(tok, f"byte-level BPE trained here on {source} ({len(tok):,} tokens) — not RoBERTa's own "
                        "50K merges (roberta-base is not cached)")


@dataclass(frozen=True)
class Tokenization:
    name: str
    tokens: list[str]
    readable: list[str]  # each token's bytes decoded ('�' where a token holds part of a UTF-8 character)
    num_unknown: int

    @property
    def count(self) -> int:
        return len(self.tokens)


def _readable(tokenizer, tokens: list[str]) -> list[str]:
    out = []
    for t in tokens:
        if t.startswith("##"):
            out.append(t)
        else:
            out.append(tokenizer.convert_tokens_to_string([t]))
    return out


def tokenize(tokenizer, text: str, *, name: str) -> Tokenization:
    """Tokens of ``text`` without special tokens, and how many are the unknown token."""
    tokens = tokenizer.tokenize(text)
    unk = tokenizer.unk_token
    return Tokenization(name, tokens, _readable(tokenizer, tokens), sum(t == unk for t in tokens))


def _byte_decoder() -> dict[str, int]:
    """GPT-2's byte-to-symbol table inverted (Radford et al. 2019 §2.2, the byte-level BPE RoBERTa adopts, §4.4):
    each of the 256 bytes is stored as one printable symbol, e.g. a space as 'Ġ', byte 0xC3 as 'Ã'."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(
        range(ord("®"), ord("ÿ") + 1))
    symbols, extra = printable[:], 0
    for b in range(256):
        if b not in printable:
            printable.append(b)
            symbols.append(256 + extra)
            extra += 1
    return {chr(s): b for b, s in zip(printable, symbols)}


BYTE_DECODER = _byte_decoder()


def piece_text(piece: str) -> str:
    """A byte-level BPE piece as a reader sees it: its bytes decoded as UTF-8, a leading space shown as '␣', and
    the bytes of a piece that holds only part of a character shown as hex (⟨C3⟩: 'ï' is two pieces, C3 AF).
    Pieces that are not byte-level symbols (WordPiece's '##ing') are returned unchanged."""
    if any(c not in BYTE_DECODER for c in piece):
        return piece
    raw = bytes(BYTE_DECODER[c] for c in piece)
    out, i = [], 0
    while i < len(raw):  # decode the longest valid UTF-8 prefix at each position, hex for stray bytes
        for j in range(min(len(raw), i + 4), i, -1):
            try:
                out.append(raw[i:j].decode("utf-8"))
                i = j
                break
            except UnicodeDecodeError:
                continue
        else:
            out.append(f"⟨{raw[i]:02X}⟩")
            i += 1
    text = "".join(out)
    return "␣" + text[1:] if text.startswith(" ") else text


@dataclass(frozen=True)
class WordSplit:
    word: str
    wordpiece: list[str]
    byte_bpe: list[str]


def compare_tokenizers(text: str, wordpiece, byte_bpe, *,
                       max_chars: int = 2000) -> tuple[Tokenization, Tokenization, list[WordSplit]]:
    """The same text through both tokenizers, plus how each whitespace-separated word splits (§4.4)."""
    text = checks.text(text, "the text", max_chars=max_chars).strip()
    wp = tokenize(wordpiece, text, name="WordPiece")
    bpe = tokenize(byte_bpe, text, name="byte-level BPE")
    words = [WordSplit(w, wordpiece.tokenize(w), byte_bpe.tokenize((" " if i else "") + w))
             for i, w in enumerate(text.split())]
    return wp, bpe, words
