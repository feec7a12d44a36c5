"""Held-out pretraining benchmarks: masked-LM loss, ELECTRA replaced-token detection, SpanBERT's span objectives.

The held-out set is the one the variant lab's recipes hold out (:class:`HeldoutConfig`): the corpus's last
``heldout_docs`` = 6 documents, never trained on, cut into contiguous blocks of ``block_tokens`` = 128 tokens
([CLS] … [SEP]) by :func:`bertvariants.corpus.corpus_blocks` (the recipes' own function), of which the
first ``eval_blocks`` = 96 are scored. Corruption is drawn block after block from one generator seeded with
``mask_seed`` = 1234, so every model compared sees the same masks, the numbers do not depend on the batch size,
and ``--limit N`` scores exactly the first N blocks of the full run.

- :func:`masked_lm_scores`: BERT's masking (Devlin et al. 2019 §3.1: 15% of the tokens, 80% [MASK] / 10% random /
  10% unchanged); the loss is the mean cross-entropy per masked token (lower is better), perplexity = e^loss.
- :func:`rtd_scores`: ELECTRA's §2 data path on held-out text: mask 15% → sample x̂ ~ p_G at the masked
  positions → the discriminator's P(replaced) for every token; AUROC against the truth (a sample equal to the
  original counts as original, §2), accuracy at 0.5, the replaced fraction and the generator's top-1 accuracy.
- :func:`span_scores`: SpanBERT's span masking (Joshi et al. 2020 §3.1) and both of its losses (§3.2): MLM from
  each masked token's own state, SBO from the span's boundary states x_{s−1}, x_{e+1} and the relative position;
  SBO top-1 accuracy.

Rates are in percentage points like every metric of the harness; losses are raw (nats per token).
torch is imported inside the functions: importing this module stays cheap.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from typing import Sequence

import numpy as np

HELDOUT_DOCS = 6  # the corpus's last documents: the recipes never train on them
HELDOUT_DOCS_BY_SPLIT = {"heldout": HELDOUT_DOCS, "enwiki2018": 100}  # the 2018 sample's documents are shorter
BLOCK_TOKENS = 128  # tokens per block, [CLS] and [SEP] included (the recipes' max_length)
EVAL_BLOCKS = 96  # the first blocks of the held-out documents that are scored
MASK_SEED = 1234  # one corruption for every model compared
MLM_PROBABILITY = 0.15  # BERT §3.1, ELECTRA §2, SpanBERT §3.1 (of words): the masking budget


@dataclass(frozen=True)
class HeldoutConfig:
    """How the corpus becomes the held-out set. The recipes' configs carry the same settings (``heldout_docs``,
    ``max_length`` = ``block_tokens``, ``eval_blocks``) and pass them on, so a recipe and
    ``python -m evaluation run`` score the same blocks."""

    heldout_docs: int = HELDOUT_DOCS
    block_tokens: int = BLOCK_TOKENS
    eval_blocks: int = EVAL_BLOCKS
    mask_seed: int = MASK_SEED

    def __post_init__(self):
        for f in fields(self):
            v = getattr(self, f.name)
            if not isinstance(v, int) or isinstance(v, bool):
                raise ValueError(f"{f.name} must be an integer, got {v!r}")
        if self.heldout_docs < 1 or self.eval_blocks < 1:
            raise ValueError(f"heldout_docs and eval_blocks must be ≥ 1 (got {self.heldout_docs}, {self.eval_blocks})")
        if self.block_tokens < 8:
            raise ValueError(f"block_tokens must be ≥ 8, got {self.block_tokens}")


def heldout_config(options: dict | None = None) -> HeldoutConfig:
    """A :class:`HeldoutConfig` from the runner's ``options`` (unknown names are an error, not ignored)."""
    options = dict(options or {})
    known = {f.name for f in fields(HeldoutConfig)}
    unknown = sorted(set(options) - known)
    if unknown:
        raise ValueError(f"unknown option(s) {', '.join(unknown)} for a held-out pretraining benchmark; "
                         f"known: {', '.join(sorted(known))}")
    return HeldoutConfig(**options)


def heldout_blocks(tokenizer, documents: Sequence[str], config: HeldoutConfig = HeldoutConfig()):
    """(N, block_tokens) int64: the first ``eval_blocks`` blocks of the last ``heldout_docs`` documents.

    ``corpus_blocks`` tokenizes each side of its split on its own, so its held-out blocks depend only on the
    held-out documents: it is given just one training document in front of them (not the whole corpus).
    """
    from bertvariants.corpus import corpus_blocks

    k = config.heldout_docs
    if len(documents) <= k:
        raise ValueError(f"the corpus has {len(documents)} documents; holding out {k} needs at least {k + 1}")
    _, held = corpus_blocks(tokenizer, list(documents[-(k + 1):]), block=config.block_tokens, heldout_docs=k)
    if len(held) == 0:
        raise ValueError(f"the last {k} documents hold fewer than {config.block_tokens - 2} tokens: no block to score")
    return held[: config.eval_blocks]


# --------------------------------------------------------------------------------------------
# Masked LM (BERT §3.1)
# --------------------------------------------------------------------------------------------
def masked_logits(model, input_ids, selected):
    """Logits (M, V) at the ``selected`` (B, T) positions, rows in row-major order of ``selected``: the model's own
    MLM head (:data:`bertvariants.mlm_lens.MLM_HEADS`) on the selected hidden states only, so only the ~15% masked
    positions are projected onto the vocabulary."""
    import torch

    from bertvariants.mlm_lens import MLM_HEADS  # torch at import: kept out of this module's import

    mask = torch.ones_like(input_ids)
    head = MLM_HEADS.get(type(model).__name__)
    if head is None:  # any other masked-LM class: the full (B, T, V) forward, then the selected rows
        return model(input_ids=input_ids, attention_mask=mask).logits[selected]
    hidden = model.base_model(input_ids=input_ids, attention_mask=mask).last_hidden_state  # (B, T, H)
    return head(model, hidden[selected])


def _per_block(values, rows, n_blocks: int) -> np.ndarray:
    """Sum per block of per-token ``values`` (M,) whose block index is ``rows`` (M,)."""
    return np.bincount(np.asarray(rows), weights=np.asarray(values, dtype=np.float64), minlength=n_blocks)


def _tokens(tokenizer, ids, n: int = 12) -> str:
    toks = tokenizer.convert_ids_to_tokens([int(i) for i in ids[:n]])
    return " ".join(toks) + (" …" if len(ids) > n else "")


@dataclass
class BlockScores:
    """Per-block sums (arrays of length N blocks) from which every metric and its bootstrap are computed."""

    loss: np.ndarray  # summed cross-entropy of the block's predictions
    hits: np.ndarray  # top-1 correct predictions
    count: np.ndarray  # predictions (masked tokens)
    tokens: np.ndarray  # maskable (non-special) tokens
    records: list[dict]

    def mean_loss(self, idx=slice(None)) -> float:
        n = self.count[idx].sum()
        return float(self.loss[idx].sum() / n) if n else float("nan")

    def accuracy(self, idx=slice(None)) -> float:
        n = self.count[idx].sum()
        return float(100 * self.hits[idx].sum() / n) if n else float("nan")

    @property
    def masked_fraction(self) -> float:
        return float(self.count.sum() / self.tokens.sum())


def bert_masks(blocks, tokenizer, *, seed: int = MASK_SEED, mlm_probability: float = MLM_PROBABILITY):
    """BERT's 15% / 80-10-10 masking of each block in turn from one seeded generator → (input_ids, labels)."""
    import torch

    from bertvariants.common import make_generator, mask_tokens, tokenizer_masking_kwargs

    gen = make_generator(seed)
    kw = dict(tokenizer_masking_kwargs(tokenizer), mlm_probability=mlm_probability)
    outs = [mask_tokens(b, generator=gen, **kw) for b in blocks]
    return torch.stack([o.input_ids for o in outs]), torch.stack([o.labels for o in outs])


def masked_lm_scores(model, tokenizer, blocks, *, seed: int = MASK_SEED, batch_size: int = 32,
                     mlm_probability: float = MLM_PROBABILITY) -> BlockScores:
    """Held-out masked-LM cross-entropy per masked token (Devlin et al. 2019 §3.1) with fixed-seed masks.

    ``model``: any ``*ForMaskedLM``; ``blocks`` (N, T) from :func:`heldout_blocks`.
    """
    import torch
    from torch.nn import functional as F

    from bertvariants.common import IGNORE_INDEX, special_tokens_mask

    inputs, labels = bert_masks(blocks, tokenizer, seed=seed, mlm_probability=mlm_probability)
    n = len(blocks)
    device = next(model.parameters()).device
    model.eval()
    loss, hits, count = np.zeros(n), np.zeros(n), np.zeros(n)
    records: list[dict] = []
    with torch.inference_mode():
        for i in range(0, n, batch_size):
            ids, lab = inputs[i:i + batch_size].to(device), labels[i:i + batch_size].to(device)
            sel = lab != IGNORE_INDEX  # (B, T)
            rows = sel.nonzero()[:, 0].cpu().numpy() + i
            logits = masked_logits(model, ids, sel).float()  # (M, V)
            gold = lab[sel]
            ce = F.cross_entropy(logits, gold, reduction="none").cpu().numpy()
            top, gold = logits.argmax(-1).cpu(), gold.cpu()
            loss += _per_block(ce, rows, n)
            hits += _per_block((top == gold).numpy(), rows, n)
            count += np.bincount(rows, minlength=n)
            for b in range(len(ids)):
                r = torch.from_numpy(rows == i + b)
                records.append({"id": f"block-{i + b}", "input": tokenizer.decode(blocks[i + b][1:41]) + " …",
                                "prediction": _tokens(tokenizer, top[r].tolist()),
                                "reference": _tokens(tokenizer, gold[r].tolist()), "masked": int(r.sum())})
    specials = special_tokens_mask(blocks, tokenizer.all_special_ids)
    scores = BlockScores(loss, hits, count, (~specials).sum(1).numpy().astype(np.float64), records)
    if not count.sum():
        raise ValueError("the held-out blocks have no masked tokens")
    for rec, l, c in zip(records, loss, count):
        rec["error"] = round(float(l / c), 4) if c else 0.0  # the block's mean cross-entropy
    return scores


def mlm_metrics(scores: BlockScores) -> dict[str, float]:
    loss = scores.mean_loss()
    return {"heldout_mlm_loss": loss, "heldout_perplexity": math.exp(min(loss, 50.0)),
            "heldout_mlm_accuracy": scores.accuracy()}


# --------------------------------------------------------------------------------------------
# Replaced-token detection (ELECTRA §2)
# --------------------------------------------------------------------------------------------
def auroc_points(scores: np.ndarray, truth: np.ndarray, weights: np.ndarray | None = None, *,
                 groups: np.ndarray | None = None) -> float:
    """AUROC in points by the Mann–Whitney statistic (ties count ½), optionally with per-token ``weights``
    (a bootstrap resample = each token weighted by how often its block was drawn). With no weights it equals
    ``sklearn.metrics.roc_auc_score``. NaN when one class is absent. ``groups``: ``np.unique(scores,
    return_inverse=True)[1]``, computed once by a caller that scores many resamples of the same tokens.

    >>> round(auroc_points(np.array([0.1, 0.4, 0.35, 0.8]), np.array([0, 0, 1, 1])), 2)
    75.0
    """
    truth = np.asarray(truth, dtype=bool)
    w = np.ones(len(truth)) if weights is None else np.asarray(weights, dtype=np.float64)
    group = np.unique(np.asarray(scores), return_inverse=True)[1] if groups is None else groups  # ties share one
    pos = np.bincount(group, weights=w * truth)
    neg = np.bincount(group, weights=w * ~truth)
    n_pos, n_neg = pos.sum(), neg.sum()
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    below = np.cumsum(neg) - neg  # negatives scored strictly lower than each group
    return float(100 * (pos * (below + 0.5 * neg)).sum() / (n_pos * n_neg))


@dataclass
class RTDScores:
    """Per-token discriminator outputs of the held-out set (non-special tokens only) and per-block counts."""

    probability: np.ndarray  # (K,) P(replaced)
    replaced: np.ndarray  # (K,) bool truth
    block: np.ndarray  # (K,) block index of each token
    generator_hits: np.ndarray  # (N,) generator top-1 hits at masked positions
    masked: np.ndarray  # (N,) masked positions
    records: list[dict]
    _groups: np.ndarray | None = field(default=None, repr=False)  # tie groups of ``probability`` (bootstrap cache)

    def auroc(self, idx=None) -> float:
        if idx is None:
            from sklearn.metrics import roc_auc_score

            if self.replaced.all() or not self.replaced.any():
                return float("nan")
            return float(100 * roc_auc_score(self.replaced, self.probability))
        if self._groups is None:
            self._groups = np.unique(self.probability, return_inverse=True)[1]
        weights = np.bincount(idx, minlength=len(self.masked))[self.block]  # times each token's block was drawn
        return auroc_points(self.probability, self.replaced, weights, groups=self._groups)


def rtd_scores(generator_model, discriminator_model, tokenizer, blocks, *, seed: int = MASK_SEED,
               batch_size: int = 32, mlm_probability: float = MLM_PROBABILITY) -> RTDScores:
    """ELECTRA §2 on held-out blocks: mask (seed), sample the generator (seed + 1), score every token.

    Masked positions become [MASK] (§2; no 80/10/10 for the generator's input). x̂ is sampled from the generator's
    softmax at temperature 1 by :func:`bertvariants.electra.sample_replacements`, block by block from the masked
    positions' logits only.
    """
    import torch

    from bertvariants.common import make_generator, special_tokens_mask
    from bertvariants.electra import mask_for_generator, sample_replacements

    specials = tokenizer.all_special_ids
    mask_rng, sample_rng = make_generator(seed), make_generator(seed + 1)
    vocab = discriminator_model.config.vocab_size
    masked = [mask_for_generator(b, mask_token_id=tokenizer.mask_token_id, vocab_size=vocab, generator=mask_rng,
                                 special_ids=specials, mlm_probability=mlm_probability) for b in blocks]
    inputs = torch.stack([m.input_ids for m in masked])
    selected = torch.stack([m.selected for m in masked])  # (N, T)
    real = ~special_tokens_mask(blocks, specials)  # (N, T)
    n = len(blocks)
    device = next(discriminator_model.parameters()).device
    generator_model.eval(), discriminator_model.eval()
    probs, truth, owner, records = [], [], [], []
    hits, count = np.zeros(n), selected.sum(1).numpy().astype(np.float64)
    with torch.inference_mode():
        for i in range(0, n, batch_size):
            ids, sel = blocks[i:i + batch_size], selected[i:i + batch_size]
            logits = masked_logits(generator_model, inputs[i:i + batch_size].to(device), sel.to(device)).float().cpu()
            rows = sel.nonzero()[:, 0]
            corrupted = ids.clone()
            for b in range(len(ids)):  # block by block: the samples do not depend on the batch size
                lg = logits[rows == b]  # (M_b, V)
                corrupted[b] = sample_replacements(lg, ids[b], sel[b], generator=sample_rng).input_ids
                hits[i + b] = float((lg.argmax(-1) == ids[b, sel[b]]).sum())
            is_replaced = sel & (corrupted != ids)  # a sample equal to the original counts as original (§2)
            p = torch.sigmoid(discriminator_model(input_ids=corrupted.to(device)).logits.float()).cpu()  # (B, T)
            for b in range(len(ids)):
                keep = real[i + b]
                pb, tb = p[b, keep].numpy(), is_replaced[b, keep].numpy()
                probs.append(pb), truth.append(tb), owner.append(np.full(len(pb), i + b))
                flagged = corrupted[b, keep][torch.from_numpy(pb > 0.5)]
                records.append({"id": f"block-{i + b}", "input": tokenizer.decode(corrupted[b][1:41]) + " …",
                                "prediction": "flagged: " + _tokens(tokenizer, flagged.tolist()),
                                "reference": "replaced: " + _tokens(tokenizer, corrupted[b, keep][
                                    torch.from_numpy(tb)].tolist()),
                                "error": round(float(np.abs(pb - tb).mean()), 4) if len(pb) else 0.0})
    out = RTDScores(np.concatenate(probs), np.concatenate(truth), np.concatenate(owner), hits, count, records)
    if out.replaced.all() or not out.replaced.any():
        raise ValueError("the held-out set needs both replaced and original tokens to compute AUROC "
                         f"({int(out.replaced.sum())} of {len(out.replaced)} tokens replaced)")
    return out


def rtd_metrics(scores: RTDScores) -> dict[str, float]:
    return {"auroc": scores.auroc(),
            "accuracy": float(100 * ((scores.probability > 0.5) == scores.replaced).mean()),
            "replaced_fraction": float(100 * scores.replaced.mean()),
            "generator_mlm_accuracy": float(100 * scores.generator_hits.sum() / max(scores.masked.sum(), 1))}


# --------------------------------------------------------------------------------------------
# Span masking + span boundary objective (SpanBERT §3.1–3.2)
# --------------------------------------------------------------------------------------------
@dataclass
class SpanScores:
    mlm: BlockScores
    sbo: BlockScores


def span_scores(model, tokenizer, blocks, *, seed: int = MASK_SEED, batch_size: int = 16) -> SpanScores:
    """SpanBERT's two held-out losses and SBO accuracy: span masking from one seeded generator, then for every
    masked token the MLM prediction from its own state and the SBO prediction from its span's boundaries.

    ``model``: :class:`bertvariants.spanbert.SpanBertModel` (a ``BertForMaskedLM`` + the SBO head).
    """
    import torch
    from torch.nn import functional as F

    from bertvariants.common import IGNORE_INDEX, make_generator, special_tokens_mask
    from bertvariants.spanbert import block_word_ids, sbo_targets, span_mask_batch

    gen = make_generator(seed)
    words = [block_word_ids(tokenizer, b) for b in blocks]
    n = len(blocks)
    device = next(model.parameters()).device
    model.eval()
    sums = {k: np.zeros(n) for k in ("mlm_loss", "mlm_hits", "mlm_n", "sbo_loss", "sbo_hits", "sbo_n")}
    records: list[dict] = []
    with torch.inference_mode():
        for i in range(0, n, batch_size):  # span_mask runs block by block: masks do not depend on the batch size
            masked = span_mask_batch(blocks[i:i + batch_size], words[i:i + batch_size], generator=gen,
                                     mask_token_id=tokenizer.mask_token_id, vocab_size=len(tokenizer))
            ids, lab = masked.input_ids.to(device), masked.labels.to(device)
            targets = sbo_targets(masked.spans, masked.labels,
                                  max_span_tokens=model.sbo.position.num_embeddings).to(device)
            logits = model.logits(ids, lab, targets)  # the MLM head at the masked positions, the SBO head
            mlm_logits, sbo_logits = logits.mlm.float(), logits.sbo.float()
            sel = lab != IGNORE_INDEX
            mlm_rows = sel.nonzero()[:, 0].cpu().numpy() + i
            sbo_rows = targets.batch_index.cpu().numpy() + i
            for name, logits, gold, rows in (("mlm", mlm_logits, lab[sel], mlm_rows),
                                             ("sbo", sbo_logits, targets.target, sbo_rows)):
                if len(gold):
                    sums[f"{name}_loss"] += _per_block(F.cross_entropy(logits, gold, reduction="none").cpu(), rows, n)
                    sums[f"{name}_hits"] += _per_block((logits.argmax(-1) == gold).cpu(), rows, n)
                    sums[f"{name}_n"] += np.bincount(rows, minlength=n)
            sbo_top = sbo_logits.argmax(-1).cpu()
            for b in range(len(ids)):
                r = torch.from_numpy(sbo_rows == i + b)
                records.append({"id": f"block-{i + b}", "input": tokenizer.decode(masked.input_ids[b][1:41]) + " …",
                                "prediction": "SBO: " + _tokens(tokenizer, sbo_top[r].tolist()),
                                "reference": _tokens(tokenizer, targets.target.cpu()[r].tolist())})
    tokens = (~special_tokens_mask(blocks, tokenizer.all_special_ids)).sum(1).numpy().astype(np.float64)
    if not sums["sbo_n"].sum():
        raise ValueError("the held-out blocks produced no masked spans")
    for rec, l, c in zip(records, sums["sbo_loss"], sums["sbo_n"]):
        rec["error"] = round(float(l / c), 4) if c else 0.0  # the block's mean SBO cross-entropy
    return SpanScores(mlm=BlockScores(sums["mlm_loss"], sums["mlm_hits"], sums["mlm_n"], tokens, records),
                      sbo=BlockScores(sums["sbo_loss"], sums["sbo_hits"], sums["sbo_n"], tokens, records))


def span_metrics(scores: SpanScores) -> dict[str, float]:
    return {"heldout_sbo_accuracy": scores.sbo.accuracy(), "heldout_sbo_loss": scores.sbo.mean_loss(),
            "heldout_mlm_loss": scores.mlm.mean_loss(), "heldout_mlm_accuracy": scores.mlm.accuracy()}
