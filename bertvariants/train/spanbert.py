"""``spanbert``: span masking + span-boundary objective pretraining (Joshi et al. 2020, §3.1–3.2) from MiniLM.

Masking is :func:`bertvariants.spanbert.span_mask`: whole-word spans, lengths ~ Geometric(0.2) clipped at 10,
15% of the words, one 80/10/10 decision per span. The loss is MLM + SBO (§3.2: "we sum the loss from both
the span boundary and MLM objectives"): the MLM head predicts every masked token from its own state, the
:class:`~bertvariants.spanbert.SpanBoundaryHead` from the span's two boundary states x_{s−1}, x_{e+1} and the
relative position. MiniLM has neither head: both are new; the SBO decoder is tied to the word embeddings.

The masking (:func:`~bertvariants.spanbert.span_mask_batch`, :func:`~bertvariants.spanbert.sbo_targets`), the model
and its loss (:class:`~bertvariants.spanbert.SpanBertModel`, whose ``forward`` is
:func:`~bertvariants.spanbert.spanbert_loss` over its two heads) and its saved form
(:func:`~bertvariants.spanbert.load_span_model`) live in the core :mod:`bertvariants.spanbert`, which the evaluation
harness and the SpanBERT tab use too.

Output: ``models/spanbert`` (a BertForMaskedLM checkpoint + ``sbo_head.safetensors``), scored by the evaluation
harness's ``wikipedia-span`` benchmark: held-out MLM loss, SBO loss and SBO top-1 accuracy on span-masked held-out
Wikipedia blocks with fixed-seed masks (:func:`evaluation.metrics.pretraining.span_scores`; the same command as
``python -m evaluation run --task wikipedia-span --model models/spanbert``).
"""

from __future__ import annotations

from dataclasses import dataclass

from evaluation.metrics.pretraining import BLOCK_TOKENS, EVAL_BLOCKS, HELDOUT_DOCS

import torch

from ..common import make_generator
from ..spanbert import SBO_HEAD_FILE, SpanBertModel, block_word_ids, sbo_targets, span_mask_batch
from .config import TrainConfig, base_model_path, output_dir
from .data import block_batches, wikipedia_blocks
from .loop import Setup, fit, seed_everything
from .records import RunReport, finish, harness, heldout_options, save_checkpoint

NAME = "spanbert"


@dataclass(frozen=True)
class SpanBertConfig(TrainConfig):
    steps: int = 300
    batch_size: int = 16
    lr: float = 2e-4  # both heads are new
    max_length: int = BLOCK_TOKENS  # block length; the harness's wikipedia-span blocks have the same
    heldout_docs: int = HELDOUT_DOCS  # last documents of the corpus, never trained on
    eval_blocks: int = EVAL_BLOCKS
    max_span_tokens: int = 32  # relative-position table of the SBO head (spans ≤ 10 words)
    freeze_word_embeddings: bool = True


def run(cfg: SpanBertConfig, *, progress: bool = True) -> RunReport:
    from safetensors.torch import save_file
    from transformers import AutoTokenizer, BertForMaskedLM

    seed_everything(cfg.seed)
    base = base_model_path(cfg)
    tokenizer = AutoTokenizer.from_pretrained(base)
    train, _, corpus = wikipedia_blocks(cfg, tokenizer, block=cfg.max_length, heldout_docs=cfg.heldout_docs)
    mlm = BertForMaskedLM.from_pretrained(base)
    if cfg.freeze_word_embeddings:
        mlm.bert.embeddings.word_embeddings.weight.requires_grad_(False)
    model = SpanBertModel(mlm, max_span_tokens=cfg.max_span_tokens)
    words = [block_word_ids(tokenizer, b) for b in train]
    gen = make_generator(cfg.seed + 1)

    def batches():  # §3.1 span masking block by block, then §3.2's targets (on the CPU, before the step)
        for idx, ids in block_batches(train, batch_size=cfg.batch_size, seed=cfg.seed):
            masked = span_mask_batch(ids, [words[i] for i in idx.tolist()], mask_token_id=tokenizer.mask_token_id,
                                     vocab_size=len(tokenizer), generator=gen)
            yield {"input_ids": masked.input_ids, "labels": masked.labels, "attention_mask": torch.ones_like(ids),
                   "sbo": sbo_targets(masked.spans, masked.labels, max_span_tokens=cfg.max_span_tokens)}

    def loss_fn(m: SpanBertModel, batch) -> dict:
        out = m(batch["input_ids"], batch["labels"], batch["sbo"], batch["attention_mask"])
        return {"loss": out.loss, "mlm_loss": out.mlm_loss, "sbo_loss": out.sbo_loss}

    setup = Setup(model=model, batches=batches(), loss_fn=loss_fn)
    result = fit(setup, cfg, desc=NAME, progress=progress)
    out = output_dir(cfg, NAME)
    save_checkpoint(setup.model.mlm, tokenizer, out)
    sbo_state = {k: v.detach().cpu().contiguous() for k, v in setup.model.sbo.state_dict().items()
                 if k != "decoder.weight"}  # the decoder is the (saved) word-embedding matrix
    save_file(sbo_state, str(out / SBO_HEAD_FILE))
    scored = harness("wikipedia-span", out, data=corpus, limit=cfg.eval_limit, options=heldout_options(cfg))
    return finish(recipe=NAME, name=NAME, title="SpanBERT-style continued pretraining of MiniLM", cfg=cfg,
                  fit=result, out=out, result=scored, variant="SpanBERT",
                  paper="Joshi et al. 2020 §3.1 span masking, §3.2 span boundary objective",
                  data={"corpus": str(corpus), "train_blocks": f"{len(train)} × {cfg.max_length} tokens",
                        "heldout": f"last {cfg.heldout_docs} documents, {scored['n']} blocks, "
                                   f"mask seed {scored['details']['heldout']['mask_seed']} (evaluation harness)"},
                  notes="BertForMaskedLM (MLM head new) + span-boundary head in `sbo_head.safetensors` "
                        "(its decoder is tied to the word embeddings).")
