"""Held-out pretraining objectives (formats ``mlm``, ``rtd``, ``span``): the corpus's held-out blocks,
corrupted with a fixed seed, scored by :mod:`evaluation.metrics.pretraining` (masked-LM loss, ELECTRA's
replaced-token detection, SpanBERT's MLM + SBO). ``heldout`` (a
:class:`~evaluation.metrics.pretraining.HeldoutConfig`) sets the split, ``limit`` keeps the first N blocks, and
the bootstrap resamples blocks.
"""

from __future__ import annotations

from dataclasses import asdict

from ..handle import ModelHandle
from ..loaders import Dataset
from ..metrics import pretraining as P
from ..record import Outcome


def _heldout_blocks(h: ModelHandle, ds: Dataset, *, heldout, limit: int | None):
    if heldout.block_tokens > (h.max_length or heldout.block_tokens):
        raise ValueError(f"blocks of {heldout.block_tokens} tokens exceed the model's {h.max_length} positions")
    if limit is not None and limit < 1:
        raise ValueError(f"--limit must be ≥ 1, got {limit}")
    return P.heldout_blocks(h.loaded.tokenizer, ds.raw, heldout)[:limit]


def _block_details(ds: Dataset, blocks, heldout, method: str) -> dict:
    return {"method": method, "heldout": asdict(heldout), "blocks": len(blocks), "documents": ds.meta["documents"],
            "heldout_documents": [e.id for e in ds.examples], "bootstrap": "blocks resampled"}


def held_out_mlm(bench, h, ds, *, batch_size, limit, heldout, **_) -> Outcome:
    """BERT §3.1 masked LM on held-out blocks: mean cross-entropy per masked token (lower is better)."""
    blocks = _heldout_blocks(h, ds, heldout=heldout, limit=limit)
    s = P.masked_lm_scores(h.loaded.model, h.loaded.tokenizer, blocks, seed=heldout.mask_seed, batch_size=batch_size)
    details = _block_details(ds, blocks, heldout, "BERT masking (15%, 80/10/10), fixed seed; cross-entropy of the "
                                                  "masked-LM head at the masked positions")
    details.update(masked_tokens=int(s.count.sum()), masked_fraction=round(100 * s.masked_fraction, 3))
    return Outcome(P.mlm_metrics(s), s.mean_loss, s.records, details, n=len(blocks))


def held_out_rtd(bench, h, ds, *, batch_size, limit, heldout, **_) -> Outcome:
    """ELECTRA §2 on held-out blocks: the generator fills 15% masks, the discriminator flags replaced tokens."""
    blocks = _heldout_blocks(h, ds, heldout=heldout, limit=limit)
    s = P.rtd_scores(h.parts["generator"], h.loaded.model, h.loaded.tokenizer, blocks, seed=heldout.mask_seed,
                     batch_size=batch_size)
    details = _block_details(ds, blocks, heldout, "15% of the tokens masked (fixed seed), filled by samples of the "
                                                  "generator (seed + 1); AUROC of the discriminator's P(replaced) "
                                                  "over every non-special token")
    details.update(tokens=len(s.replaced), masked_fraction=round(100 * float(s.masked.sum()) / len(s.replaced), 3))
    return Outcome(P.rtd_metrics(s), s.auroc, s.records, details, n=len(blocks))


def held_out_span(bench, h, ds, *, batch_size, limit, heldout, **_) -> Outcome:
    """SpanBERT §3.1–3.2 on held-out blocks: span masking (fixed seed), MLM and SBO losses, SBO accuracy."""
    blocks = _heldout_blocks(h, ds, heldout=heldout, limit=limit)
    s = P.span_scores(h.parts["span_model"], h.loaded.tokenizer, blocks, seed=heldout.mask_seed,
                      batch_size=min(batch_size, 16))
    details = _block_details(ds, blocks, heldout, "span masking (whole words, lengths ~ Geometric(0.2) clipped at 10, "
                                                  "15% of the words, 80/10/10 per span), fixed seed; MLM from each "
                                                  "token's state, SBO from the span's boundaries")
    details.update(masked_tokens=int(s.sbo.count.sum()), masked_fraction=round(100 * s.sbo.masked_fraction, 3))
    return Outcome(P.span_metrics(s), s.sbo.accuracy, s.sbo.records, details, n=len(blocks))
