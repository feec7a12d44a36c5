"""``spanbert``: span masking + span-boundary objective pretraining (Joshi et al. 2020, §3.1–3.2) from MiniLM.

Masking is :func:`bertvariants.spanbert.span_mask`: whole-word spans, lengths ~ Geometric(0.2) clipped at 10,
15% of the words, one 80/10/10 decision per span. The loss is MLM + SBO (§3.2: "we sum the loss from both
the span boundary and MLM objectives"): the MLM head predicts every masked token from its own state, the
:class:`~bertvariants.spanbert.SpanBoundaryHead` from the span's two boundary states x_{s−1}, x_{e+1} and the
relative position. MiniLM has neither head: both are new; the SBO decoder is tied to the word embeddings.

Output: ``models/spanbert`` (a BertForMaskedLM checkpoint + ``sbo_head.safetensors``, reloaded by
:func:`load_span_model`), scored by the evaluation harness's ``wikipedia-span`` benchmark: held-out MLM loss,
SBO loss and SBO top-1 accuracy on span-masked held-out Wikipedia blocks with fixed-seed masks
(:func:`evaluation.metrics.pretraining.span_scores`; the same command as
``python -m evaluation run --task wikipedia-span --model models/spanbert``).
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import torch
from torch import nn

from evaluation.metrics.pretraining import BLOCK_TOKENS, EVAL_BLOCKS, HELDOUT_DOCS

from ..common import make_generator, word_ids_from_tokens
from ..spanbert import SpanBoundaryHead, SpanMaskingConfig, sbo_loss, sbo_targets, span_mask
from .common import (
    RunReport,
    Setup,
    TrainConfig,
    base_model_path,
    block_batches,
    finish,
    fit,
    harness,
    heldout_options,
    output_dir,
    save_checkpoint,
    seed_everything,
    sparse_mlm_loss,
    wikipedia_blocks,
)

NAME = "spanbert"
SBO_HEAD_FILE = "sbo_head.safetensors"


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


class SpanBertModel(nn.Module):
    """A BertForMaskedLM plus a span-boundary head; ``forward`` returns the two losses (named)."""

    def __init__(self, mlm, *, max_span_tokens: int = 32):
        super().__init__()
        self.mlm = mlm
        emb = mlm.bert.embeddings.word_embeddings
        self.sbo = SpanBoundaryHead(mlm.config.hidden_size, mlm.config.vocab_size, max_span_tokens=max_span_tokens,
                                    decoder_weight=emb.weight)

    def losses(self, batch) -> dict:
        hidden = self.mlm.bert(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).last_hidden_state
        targets = batch["sbo"]
        targets = type(targets)(**{f.name: getattr(targets, f.name).to(hidden.device) for f in fields(targets)})
        mlm = sparse_mlm_loss(hidden, batch["labels"], self.mlm.cls)
        logits = self.sbo(hidden, targets)
        sbo = sbo_loss(logits, targets)
        hits = (logits.argmax(-1) == targets.target).float().sum() if targets.target.numel() else hidden.new_zeros(())
        return {"loss": mlm + sbo, "mlm_loss": mlm, "sbo_loss": sbo, "sbo_hits": hits,
                "sbo_n": float(targets.target.numel())}


def block_word_ids(tokenizer, block: torch.Tensor) -> list[int | None]:
    """WordPiece word index of each token of a block ("##" continues the previous word); specials -> None."""
    return word_ids_from_tokens(tokenizer.convert_ids_to_tokens(block.tolist()),
                                special_tokens=tokenizer.all_special_tokens)


def mask_blocks(tokenizer, blocks: torch.Tensor, word_ids: list[list[int | None]], *, generator: torch.Generator,
                config: SpanMaskingConfig, max_span_tokens: int) -> dict:
    """Span-mask each block; the batch dict holds ids, MLM labels and the SBO targets."""
    rows = [span_mask(b, w, mask_token_id=tokenizer.mask_token_id, vocab_size=len(tokenizer), generator=generator,
                      config=config) for b, w in zip(blocks, word_ids)]
    labels = torch.stack([r.labels for r in rows])
    ids = torch.stack([r.input_ids for r in rows])
    return {"input_ids": ids, "labels": labels, "attention_mask": torch.ones_like(ids),
            "sbo": sbo_targets([r.spans for r in rows], labels, max_span_tokens=max_span_tokens)}


def load_span_model(mlm, head_file) -> SpanBertModel:
    """A saved SpanBERT: ``mlm`` (the loaded ``BertForMaskedLM``) plus the SBO head saved beside it in
    ``sbo_head.safetensors`` (its decoder is the tied word-embedding matrix, so it is not in the file)."""
    from safetensors.torch import load_file

    state = load_file(str(head_file))
    if "position.weight" not in state:
        raise ValueError(f"{head_file} is not a span-boundary head (no position.weight)")
    model = SpanBertModel(mlm, max_span_tokens=state["position.weight"].shape[0])
    result = model.sbo.load_state_dict(state, strict=False)
    if result.unexpected_keys or set(result.missing_keys) != {"decoder.weight"}:
        raise ValueError(f"{head_file} does not match the span-boundary head: missing {result.missing_keys}, "
                         f"unexpected {result.unexpected_keys}")
    return model.to(next(mlm.parameters()).device).eval()


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

    def batches():
        for idx, ids in block_batches(train, batch_size=cfg.batch_size, seed=cfg.seed):
            yield mask_blocks(tokenizer, ids, [words[i] for i in idx.tolist()], generator=gen,
                              config=SpanMaskingConfig(), max_span_tokens=cfg.max_span_tokens)

    def loss_fn(m, batch):
        out = m.losses(batch)
        return {k: out[k] for k in ("loss", "mlm_loss", "sbo_loss")}

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
