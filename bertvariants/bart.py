"""BART (Lewis et al. 2019): the five noising functions of §2.2, abstractive summarization via ``generate``,
and two extractive baselines (Lead-n, embedding-centroid ranking) for offline use and for evaluation.

Every noising function is pure and seeded by an explicit ``torch.Generator``: it takes a token list and
returns :class:`Noised`, the corrupted tokens plus, for each output token, where it came from — so the
functions compose (the explorer chains them) and the UI can highlight every edit.

Tokens here are whatever the caller passes (the explorer uses whitespace words; fairseq applies the same
operations to whole words of its BPE stream).

>>> from bertvariants.common import make_generator
>>> text_infilling("a b c d e f g h i j".split(), ratio=0.3, generator=make_generator(0)).tokens.count("<mask>") >= 1
True
"""

from __future__ import annotations

import math
import re
import unicodedata
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import torch

from . import checks
from .streaming import step_criteria

MASK = "<mask>"
NOISE_KINDS = ("token_masking", "token_deletion", "text_infilling", "sentence_permutation", "document_rotation")
MAX_DOC_CHARS = 100_000  # summarization / noising inputs
DEFAULT_DOCUMENT = (  # the BART tab's example, and the document the bench times a summary of
    "The city council voted on Tuesday to turn the old rail yard into a public park. The project will cost "
    "about 12 million dollars and is expected to open in two years. Council members said the park would add "
    "green space to a neighbourhood that has almost none. Several residents spoke in favour at the meeting, "
    "although some business owners worried about parking. The mayor said construction could begin next spring "
    "once the final design is approved. A local school has asked to use part of the site for a garden."
)


# --------------------------------------------------------------------------------------------
# Noising (§2.2, Figure 2)
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Noised:
    """A corrupted sequence. ``source[i]`` is the input index output token i came from, -1 for a ``<mask>``
    that replaced a span or was inserted; ``spans[i]`` (masks only) lists the input indices the mask hides."""

    tokens: list
    source: list[int]
    spans: dict[int, list[int]] = field(default_factory=dict)  # output position of a mask -> hidden input indices
    num_input: int = 0

    @property
    def removed(self) -> list[int]:
        """Input indices that do not survive (deleted or hidden under a mask)."""
        kept = set(i for i in self.source if i >= 0)
        return [i for i in range(self.num_input) if i not in kept]


def _count(n: int, ratio: float) -> int:
    # fairseq's denoising dataset: ceil(n · ratio) positions
    return min(n, int(math.ceil(n * ratio)))


def _choose(n: int, k: int, generator: torch.Generator) -> set[int]:
    return set(torch.randperm(n, generator=generator)[:k].tolist())


def token_masking(tokens: Sequence, *, ratio: float = 0.15, mask_token=MASK, generator: torch.Generator) -> Noised:
    """Token masking (§2.2): as in BERT, ceil(ratio·n) random tokens are replaced by ``<mask>``."""
    ratio = checks.probability(ratio, "ratio")
    chosen = _choose(len(tokens), _count(len(tokens), ratio), generator)
    out, src, spans = [], [], {}
    for i, tok in enumerate(tokens):
        if i in chosen:
            spans[len(out)] = [i]
            out.append(mask_token)
            src.append(-1)
        else:
            out.append(tok)
            src.append(i)
    return Noised(out, src, spans, len(tokens))


def token_deletion(tokens: Sequence, *, ratio: float = 0.15, generator: torch.Generator) -> Noised:
    """Token deletion (§2.2): ceil(ratio·n) random tokens are deleted; the model must find the missing positions."""
    ratio = checks.probability(ratio, "ratio")
    chosen = _choose(len(tokens), _count(len(tokens), ratio), generator)
    keep = [i for i in range(len(tokens)) if i not in chosen]
    return Noised([tokens[i] for i in keep], keep, {}, len(tokens))


def sample_span_lengths(num_tokens_to_mask: int, *, poisson_lambda: float = 3.0,
                        generator: torch.Generator) -> list[int]:
    """Span lengths ~ Poisson(λ) drawn until they cover ``num_tokens_to_mask`` tokens; the last span is trimmed so
    the lengths sum exactly to it (fairseq's denoising dataset). Zero-length spans are kept: they become masks
    inserted between tokens (§2.2)."""
    if num_tokens_to_mask < 0:
        raise ValueError(f"number of tokens to mask must be ≥ 0, got {num_tokens_to_mask}")
    if not poisson_lambda > 0:
        raise ValueError(f"Poisson λ must be > 0, got {poisson_lambda}")
    lengths: list[int] = []
    total = 0
    while total < num_tokens_to_mask:
        draw = torch.poisson(torch.full((max(8, num_tokens_to_mask // 2),), float(poisson_lambda)),
                             generator=generator).long().tolist()
        for length in draw:
            if total >= num_tokens_to_mask:
                break
            length = min(length, num_tokens_to_mask - total)
            lengths.append(length)
            total += length
    return lengths


def text_infilling(tokens: Sequence, *, ratio: float = 0.3, poisson_lambda: float = 3.0, mask_token=MASK,
                   generator: torch.Generator) -> Noised:
    """Text infilling (§2.2): spans with lengths ~ Poisson(λ=3) covering ceil(ratio·n) tokens are each replaced by
    ONE ``<mask>`` (so the model must also predict how many tokens are missing); 0-length spans insert a mask.

    Spans are placed without overlap: with F = n − masked free tokens there are F + 1 gaps, and each span goes
    into a gap drawn uniformly (several spans in one gap sit next to each other).
    """
    ratio = checks.probability(ratio, "ratio")
    n = len(tokens)
    lengths = sample_span_lengths(_count(n, ratio), poisson_lambda=poisson_lambda, generator=generator)
    free = n - sum(lengths)
    gaps = torch.randint(0, free + 1, (len(lengths),), generator=generator).tolist() if lengths else []
    by_gap: dict[int, list[int]] = {}
    for length, gap in zip(lengths, gaps):
        by_gap.setdefault(gap, []).append(length)
    out, src, spans = [], [], {}
    p = 0  # next input token
    for gap in range(free + 1):
        for length in by_gap.get(gap, []):
            spans[len(out)] = list(range(p, p + length))
            out.append(mask_token)
            src.append(-1)
            p += length
        if gap < free:
            out.append(tokens[p])
            src.append(p)
            p += 1
    assert p == n
    return Noised(out, src, spans, n)


_SENT_END = re.compile(r"[.!?][\"')\]”’]*$")


def sentence_bounds(tokens: Sequence[str]) -> list[tuple[int, int]]:
    """[start, end) token ranges of sentences: a sentence ends at a token ending in . ! or ? (§2.2: "full stops")."""
    bounds, start = [], 0
    for i, tok in enumerate(tokens):
        if _SENT_END.search(str(tok)):
            bounds.append((start, i + 1))
            start = i + 1
    if start < len(tokens):
        bounds.append((start, len(tokens)))
    return bounds


def sentence_permutation(tokens: Sequence[str], *, generator: torch.Generator) -> Noised:
    """Sentence permutation (§2.2): the document is divided into sentences at full stops and they are shuffled."""
    bounds = sentence_bounds(tokens)
    order = torch.randperm(len(bounds), generator=generator).tolist() if bounds else []
    src = [i for k in order for i in range(*bounds[k])]
    return Noised([tokens[i] for i in src], src, {}, len(tokens))


def document_rotation(tokens: Sequence, *, generator: torch.Generator) -> Noised:
    """Document rotation (§2.2): a token is chosen uniformly at random and the document is rotated to start with it."""
    n = len(tokens)
    start = int(torch.randint(0, n, (1,), generator=generator)) if n else 0
    src = list(range(start, n)) + list(range(start))
    return Noised([tokens[i] for i in src], src, {}, n)


def compose(first: Noised, second: Noised) -> Noised:
    """``second`` was applied to ``first.tokens``: map its provenance back to the original input."""
    src = [first.source[j] if j >= 0 else -1 for j in second.source]
    spans: dict[int, list[int]] = {}
    for pos, hidden in second.spans.items():  # new masks: hidden tokens may themselves be earlier masks
        spans[pos] = sorted([first.source[j] for j in hidden if first.source[j] >= 0]
                            + [i for j in hidden if first.source[j] < 0 for i in first.spans.get(j, [])])
    for pos, j in enumerate(second.source):  # masks of the first pass that survive the second
        if j >= 0 and first.source[j] < 0:
            spans[pos] = list(first.spans.get(j, []))
    return Noised(second.tokens, src, spans, first.num_input)


@dataclass(frozen=True)
class NoiseConfig:
    """Which §2.2 transformations to apply, in fairseq's order: permute, rotate, then token-level noise."""

    sentence_permutation: bool = False
    document_rotation: bool = False
    token_masking: float = 0.0  # ratio; 0 = off
    token_deletion: float = 0.0
    text_infilling: float = 0.0
    poisson_lambda: float = 3.0


def apply_noise(tokens: Sequence, config: NoiseConfig, *, generator: torch.Generator) -> Noised:
    """Chain the selected noising functions; provenance always refers to the original tokens."""
    result = Noised(list(tokens), list(range(len(tokens))), {}, len(tokens))
    steps = []
    if config.sentence_permutation:
        steps.append(lambda t: sentence_permutation(t, generator=generator))
    if config.document_rotation:
        steps.append(lambda t: document_rotation(t, generator=generator))
    if config.text_infilling:
        steps.append(lambda t: text_infilling(t, ratio=config.text_infilling, poisson_lambda=config.poisson_lambda,
                                              generator=generator))
    if config.token_masking:
        steps.append(lambda t: token_masking(t, ratio=config.token_masking, generator=generator))
    if config.token_deletion:
        steps.append(lambda t: token_deletion(t, ratio=config.token_deletion, generator=generator))
    for step in steps:
        result = compose(result, step(result.tokens))
    return result


def highlight_corrupted(noised: Noised) -> list[tuple[str, str | None]]:
    """(text, label) pairs for gr.HighlightedText: the encoder input, each ``<mask>`` labelled with how many tokens
    it hides (0 = an inserted mask), and the first token of every block that permutation / rotation moved labelled
    "moved" (a jump over tokens that are still present somewhere; gaps left by deletions or masks are not jumps)."""
    removed = set(noised.removed)
    out = []
    last = -1  # the highest original index covered so far in reading order
    for pos, (tok, s) in enumerate(zip(noised.tokens, noised.source)):
        if s < 0:
            hidden = noised.spans.get(pos, [])
            what = f"mask hiding {len(hidden)} token(s)" if hidden else "inserted mask (0-length span)"
            out.append((f"{tok} ", what))
            if hidden and min(hidden) == last + 1:
                last = max(hidden)
            continue
        jump = s <= last or any(i not in removed for i in range(last + 1, s))
        out.append((f"{tok} ", "moved" if jump else None))
        last = s
    return out


def highlight_original(noised: Noised, original: Sequence[str]) -> list[tuple[str, str | None]]:
    """(text, label) pairs over the ORIGINAL tokens: which ones were deleted or hidden under a mask."""
    hidden = {i for span in noised.spans.values() for i in span}
    kept = {s for s in noised.source if s >= 0}
    out = []
    for i, tok in enumerate(original):
        label = None if i in kept else ("under a mask" if i in hidden else "deleted")
        out.append((f"{tok} ", label))
    return out


# --------------------------------------------------------------------------------------------
# Sentences and extractive summaries (offline fallback and evaluation baselines)
# --------------------------------------------------------------------------------------------
_SPLIT = re.compile(r"(?<=[.!?])[\"')\]”’]*\s+(?=[\"'(\[“‘]?[A-Z0-9])")


def split_sentences(text: str) -> list[str]:
    """Split text into sentences: at line breaks and after . ! ? followed by whitespace and a capital or digit."""
    sentences = []
    for line in (text or "").splitlines():
        line = line.strip()
        if not line:
            continue
        parts, last = [], 0
        for m in _SPLIT.finditer(line):
            parts.append(line[last:m.end()].strip())
            last = m.end()
        parts.append(line[last:].strip())
        sentences.extend(p for p in parts if p)
    return sentences


def check_document(text: str, *, max_chars: int = MAX_DOC_CHARS) -> str:
    return checks.text(text, "the document", max_chars=max_chars, hint="please paste some text")


@dataclass(frozen=True)
class ExtractiveSummary:
    text: str  # selected sentences joined by a space, in document order
    sentences: list[str]
    indices: list[int]  # positions in the document's sentence list
    scores: list[float]  # per selected sentence (cosine to centroid; for Lead-n: 1.0)
    method: str


def lead_n(text: str, n: int = 3) -> ExtractiveSummary:
    """Lead-n: the document's first n sentences (the classic CNN/DailyMail baseline, Lead-3)."""
    if n < 1:
        raise ValueError(f"n must be ≥ 1, got {n}")
    sents = split_sentences(check_document(text))
    chosen = sents[:n]
    return ExtractiveSummary(" ".join(chosen), chosen, list(range(len(chosen))), [1.0] * len(chosen), f"lead-{n}")


def centroid_ranking(embeddings: np.ndarray, *, n: int = 3) -> tuple[list[int], list[float]]:
    """Indices (document order) and scores of the n rows of ``embeddings`` (S, H) closest in cosine to their mean."""
    e = np.asarray(embeddings, dtype=np.float64)
    if e.ndim != 2 or e.shape[0] == 0:
        raise ValueError(f"need a non-empty (sentences, dims) embedding matrix, got shape {e.shape}")
    e = e / np.clip(np.linalg.norm(e, axis=1, keepdims=True), 1e-12, None)
    centroid = e.mean(0)
    centroid /= max(np.linalg.norm(centroid), 1e-12)
    scores = e @ centroid
    top = sorted(np.argsort(-scores, kind="stable")[:n].tolist())
    return top, [float(scores[i]) for i in top]


def centroid_summary(text: str, model, tokenizer, *, n: int = 3) -> ExtractiveSummary:
    """The n sentences whose sentence embeddings (mean pooling, inference.encode) lie closest to the document's
    centroid, in document order — an extractive fallback when no seq2seq model is available."""
    from .inference import encode

    if n < 1:
        raise ValueError(f"n must be ≥ 1, got {n}")
    sents = split_sentences(check_document(text))
    if len(sents) <= n:
        return ExtractiveSummary(" ".join(sents), sents, list(range(len(sents))), [1.0] * len(sents), "centroid")
    emb = encode(model, tokenizer, sents).numpy()
    idx, scores = centroid_ranking(emb, n=n)
    chosen = [sents[i] for i in idx]
    return ExtractiveSummary(" ".join(chosen), chosen, idx, scores, "centroid")


# --------------------------------------------------------------------------------------------
# Abstractive summarization (§5: fine-tuned on CNN/DM; transformers 5 has no summarization pipeline)
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class GenerationSettings:
    """Beam search with 4 beams, at most 100 tokens, stop when all beams are done. ``None`` keeps the checkpoint's
    own generation config (bart-large-cnn's: min_length 56, no_repeat_ngram_size 3, length_penalty 2.0)."""

    num_beams: int = 4
    max_length: int = 100
    min_length: int | None = None
    early_stopping: bool = True
    no_repeat_ngram_size: int | None = None
    length_penalty: float | None = None

    def __post_init__(self):
        checks.number(self.num_beams, "num_beams", lo=1, hi=16, integer=True)
        checks.number(self.max_length, "max_length", lo=1, hi=1024, integer=True)
        if self.min_length is not None and not 0 <= self.min_length <= self.max_length:
            raise ValueError(f"min_length must be between 0 and max_length ({self.max_length}), got {self.min_length}")

    def generate_kwargs(self, model) -> dict:
        """Arguments for ``model.generate``: what is set here, the checkpoint's generation config for the rest (its
        min_length capped at max_length, so a short summary asked for is still possible)."""
        kw = {"num_beams": self.num_beams, "max_length": self.max_length, "early_stopping": self.early_stopping}
        kw.update({k: v for k, v in (("min_length", self.min_length), ("length_penalty", self.length_penalty),
                                     ("no_repeat_ngram_size", self.no_repeat_ngram_size)) if v is not None})
        own = getattr(getattr(model, "generation_config", None), "min_length", None) or 0
        if "min_length" not in kw and own > self.max_length:
            kw["min_length"] = self.max_length
        return kw


def summarize(model, tokenizer, texts: Sequence[str], *, settings: GenerationSettings = GenerationSettings(),
              batch_size: int = 4, max_input_tokens: int = 1024, on_step=None) -> list[str]:
    """Abstractive summaries with ``model.generate`` (beam search), inputs truncated to the encoder's limit.
    ``on_step(text)``: the first summary so far, after every generated token (:class:`StepReporter`)."""
    if not texts:
        raise ValueError("no documents to summarize")
    for t in texts:
        check_document(t)
    device = next(model.parameters()).device
    limit = min(max_input_tokens, getattr(tokenizer, "model_max_length", max_input_tokens) or max_input_tokens)
    out: list[str] = []
    with torch.inference_mode():
        for i in range(0, len(texts), batch_size):
            enc = tokenizer(list(texts[i:i + batch_size]), truncation=True, max_length=limit, padding=True,
                            return_tensors="pt")
            # only ids and mask: seq2seq models take no token_type_ids (a BERT tokenizer would add them)
            ids = model.generate(input_ids=enc["input_ids"].to(device), attention_mask=enc["attention_mask"].to(device),
                                 stopping_criteria=step_criteria(tokenizer, on_step if i == 0 else None),
                                 **settings.generate_kwargs(model))
            out.extend(s.strip() for s in tokenizer.batch_decode(ids, skip_special_tokens=True))
    return out


def generation_problem(text: str) -> str | None:
    """Why a generated summary is not one, or None: nothing but special tokens or whitespace (empty once decoded),
    or bytes that are not text (U+FFFD replacement characters from an undecodable byte-level BPE sequence, control
    characters). A random or broken checkpoint produces these; the tab says so and shows an extractive summary."""
    if not text or not text.strip():
        return "the model generated no text (an empty or special-token-only sequence)"
    if "\ufffd" in text:
        return "the model generated bytes that are not valid text (replacement characters �)"
    if any(unicodedata.category(c) == "Cc" and c not in "\n\t\r" for c in text):
        return "the model generated control characters, not text"
    return None


# --------------------------------------------------------------------------------------------
# Which summarizer a resolved model is (the tab shows it honestly)
# --------------------------------------------------------------------------------------------
SUMMARIZER_KINDS = ("seq2seq", "causal-lm")  # an encoder-decoder like BART; a decoder prompted by instruction


def summarize_with(loaded, texts: Sequence[str], *, settings: GenerationSettings = GenerationSettings(),
                   on_step=None) -> list[str]:
    """Abstractive summaries from a resolved model (:class:`bertvariants.serving.LoadedModel`): a seq2seq model
    through :func:`summarize`; a ``causal-lm`` instruction decoder (the offline stand-in) through
    :func:`bertvariants.smollm.summarize`, with ``settings.max_length`` as its budget of new tokens."""
    for t in texts:
        check_document(t)
    if loaded.kind == "seq2seq":
        return summarize(loaded.model, loaded.tokenizer, texts, settings=settings, on_step=on_step)
    if loaded.kind == "causal-lm":
        from .smollm import summarize as instruct

        return instruct(loaded.model, loaded.tokenizer, texts, num_beams=settings.num_beams,
                        max_new_tokens=settings.max_length, on_step=on_step)
    raise ValueError(f"a {loaded.kind} model cannot summarize: one of {', '.join(SUMMARIZER_KINDS)} is needed")


def summarizer_note(kind: str, online: str | None) -> str:
    """What the summarizer is, said plainly: a decoder-only stand-in is not BART."""
    if kind != "causal-lm":
        return "an encoder-decoder (seq2seq) summarizer"
    from .smollm import STAND_IN

    return STAND_IN + (f"; online: `{online}`" if online else "")
