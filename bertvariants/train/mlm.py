"""``mlm-dynamic`` and ``mlm-static``: RoBERTa's masking comparison (Liu et al. 2019, §4.1, Table 1).

Both continue MiniLM's pretraining with BERT's masked-LM objective (15% of tokens, 80/10/10) on the same
Wikipedia blocks for the same number of steps; only *when the mask is drawn* differs:

- static (BERT's original recipe): each training sequence is masked once in preprocessing, so every
  epoch shows the model the same masked positions;
- dynamic (RoBERTa): a fresh mask is drawn every time a sequence is fed to the model.

The difference only shows when sequences repeat, so the default trains on ``train_blocks`` = 320 blocks of
128 tokens for 300 steps × 8 = 7.5 epochs. Both are scored by the evaluation harness's ``wikipedia-mlm``
benchmark (the same code as ``python -m evaluation run --task wikipedia-mlm --model models/mlm-dynamic``): the
same held-out documents with the same fixed-seed masks, held-out MLM loss, lower is better; the loss of the
untrained head on those masks is kept as ``heldout_mlm_loss_before``. MiniLM ships without an MLM head: a new one
is initialised (its decoder tied to the word embeddings) and trained here; ``mlm-dynamic`` then serves the
RoBERTa and ALBERT fill-mask tabs offline.

The two schemes are :mod:`bertvariants.roberta`'s (:func:`~bertvariants.roberta.static_masks` with one mask per
sequence, BERT's original; :class:`~bertvariants.roberta.DynamicMasking`); the loss is BERT §3.1's with the head
applied at the masked positions only (:func:`bertvariants.common.sparse_mlm_loss`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from evaluation.metrics.pretraining import (
    BLOCK_TOKENS,
    EVAL_BLOCKS,
    HELDOUT_DOCS,
    HELDOUT_DOCS_BY_SPLIT,
    MASK_SEED,
    masked_lm_scores,
)

from ..common import make_generator, sparse_mlm_loss, tokenizer_masking_kwargs
from ..lab_step import with_lora
from ..paths import portable_path
from ..roberta import DynamicMasking, MaskingConfig, static_masks
from ..serving.shipped import (
    ADAPTER_FILES,
    HEAD_FILE,
    ShippedSpec,
    is_shipped,
    load_head,
)
from .config import TrainConfig, base_model_path, output_dir
from .data import CORPORA, WIKIPEDIA, block_batches, data_file, wikipedia_blocks
from .loop import Setup, fit, seed_everything
from .lora import save_model
from .records import RunReport, amended, finish, harness, heldout_options

MASKINGS = ("dynamic", "static")
KIND = "masked-lm"


@dataclass(frozen=True)
class MLMConfig(TrainConfig):
    steps: int = 300
    batch_size: int = 8
    lr: float = 2e-4  # the MLM head is new
    max_length: int = BLOCK_TOKENS  # block length (tokens, incl. [CLS]/[SEP]); the harness's blocks have the same
    train_blocks: int | None = 320  # sequences that repeat across epochs (None or 0 = the whole corpus)
    corpus: str = "enwiki_sample"  # or "enwiki2018": the 31,906-article sample (train/data.py CORPORA)
    heldout_docs: int | None = None  # last documents of the corpus, never trained on (None: 6, enwiki2018: 100)
    eval_blocks: int = EVAL_BLOCKS
    mlm_probability: float = 0.15
    freeze_word_embeddings: bool = True  # the tied decoder keeps MiniLM's token geometry; halves optimizer work
    # a smaller masked LM (ELECTRA §3.2's generator): keep only these encoder layers of MiniLM, e.g. [1, 3, 5]
    layers: tuple[int, ...] = ()
    # start from a trained compact masked LM (e.g. bertvariants/assets/models/mlm-dynamic): its LoRA adapter (of the
    # kept layers) and its MLM head initialise this run's (same lora_rank)
    init: str | None = None


def masked_batches(blocks: torch.Tensor, *, masking: str, batch_size: int, seed: int, mlm_probability: float = 0.15,
                   **tokens):
    """Training batches: a fresh mask per draw (dynamic) or the one drawn for every block up front (static, BERT's
    single mask). ``tokens``: the tokenizer's ``mask_token_id``, ``vocab_size`` and ``special_ids``."""
    if masking not in MASKINGS:
        raise ValueError(f"masking must be one of {', '.join(MASKINGS)}, got {masking!r}")
    config = MaskingConfig(mlm_probability=mlm_probability)
    dynamic = DynamicMasking(generator=make_generator(seed + 1), config=config, **tokens)
    fixed = static_masks(blocks, generator=make_generator(seed + 2), num_masks=1, config=config,
                         **tokens).masks[0] if masking == "static" else None
    for idx, ids in block_batches(blocks, batch_size=batch_size, seed=seed):
        if fixed is None:
            out = dynamic(ids)
            inputs, labels = out.input_ids, out.labels
        else:
            inputs, labels = fixed.input_ids[idx], fixed.labels[idx]
        yield {"input_ids": inputs, "labels": labels, "attention_mask": torch.ones_like(inputs)}


def mlm_loss_fn(model, batch):
    hidden = model.bert(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).last_hidden_state
    return {"loss": sparse_mlm_loss(hidden, batch["labels"], model.cls)}


def keep_layers(model, layers: tuple[int, ...]) -> None:
    """Keep only ``layers`` of the encoder, in order (DistilBERT §3's initialisation, used for ELECTRA's smaller
    generator); the compact form rebuilds the same cut at load (``shipped.py``'s ``minilm-layers`` base)."""
    from torch import nn

    encoder = model.bert.encoder
    if not layers or len(set(layers)) != len(layers) or min(layers) < 0 or max(layers) >= len(encoder.layer):
        raise ValueError(f"layers must be distinct indices of the {len(encoder.layer)} encoder layers, "
                         f"got {list(layers)}")
    encoder.layer = nn.ModuleList(encoder.layer[i] for i in layers)
    model.config.num_hidden_layers = len(layers)


def warm_start(peft_model, init: str, *, layers: tuple[int, ...] = ()) -> dict:
    """Copy a compact masked LM's LoRA adapter and MLM head into ``peft_model`` (a LoRA-wrapped BertForMaskedLM).

    With ``layers``, the adapter of source layer ``layers[j]`` goes to layer j and the others are dropped.
    Returns counts of what was copied; a rank mismatch or a tensor that fits nowhere is an error."""
    import re
    from pathlib import Path

    from peft import set_peft_model_state_dict
    from safetensors.torch import load_file

    src = Path(init)
    if not is_shipped(src):
        raise ValueError(f"init={init}: not a compact masked-LM checkpoint (no shipped.json)")
    spec = ShippedSpec.read(src)
    if spec.kind != KIND or spec.layers:
        raise ValueError(f"init={init}: need a full-depth {KIND} checkpoint, got {spec.kind} with layers {spec.layers}")
    adapter = load_file(str(src / ADAPTER_FILES[1]))
    position = {old: new for new, old in enumerate(layers)} if layers else None
    mapped = {}
    for key, value in adapter.items():
        m = re.search(r"\.layer\.(\d+)\.", key)
        if m and position is not None:
            if int(m.group(1)) not in position:
                continue
            key = key[:m.start()] + f".layer.{position[int(m.group(1))]}." + key[m.end():]
        mapped[key] = value.float()
    own = {k: v for k, v in peft_model.state_dict().items() if "lora_" in k}
    rank = next(v.shape[0] for k, v in own.items() if "lora_A" in k)
    theirs = next(v.shape[0] for k, v in mapped.items() if "lora_A" in k)
    if rank != theirs:
        raise ValueError(f"init={init} has LoRA rank {theirs}; this run's lora_rank is {rank}")
    result = set_peft_model_state_dict(peft_model, mapped)
    if result.unexpected_keys:
        raise ValueError(f"init={init}: adapter tensors that fit nowhere: {sorted(result.unexpected_keys)[:3]}")
    load_head(peft_model.base_model.model, src / HEAD_FILE)
    return {"adapter_tensors": len(mapped), "from": portable_path(src)}


def heldout_docs(cfg: MLMConfig) -> int:
    """The documents held out of the training corpus: ``cfg.heldout_docs``, else the harness split's default."""
    return cfg.heldout_docs or HELDOUT_DOCS_BY_SPLIT[CORPORA[cfg.corpus][1]]


@dataclass(frozen=True)
class Start:
    """The model a run trains and its held-out MLM loss before training (the untrained head, or the warm start)."""

    model: torch.nn.Module
    before: float
    warm_start: dict | None  # what :func:`warm_start` copied, with ``init=``


def starting_model(cfg: MLMConfig, base: str, tokenizer, heldout: torch.Tensor) -> Start:
    """MiniLM + a new MLM head (decoder tied to the word embeddings), cut to ``cfg.layers``, LoRA-wrapped and warm
    started as configured; ``heldout``: exactly the harness's blocks (the same masks, seed ``MASK_SEED``)."""
    from transformers import BertForMaskedLM

    model = BertForMaskedLM.from_pretrained(base)
    if cfg.layers:
        keep_layers(model, tuple(cfg.layers))
    if cfg.freeze_word_embeddings:
        model.bert.embeddings.word_embeddings.weight.requires_grad_(False)
    before = None if cfg.init else masked_lm_scores(model, tokenizer, heldout, seed=MASK_SEED).mean_loss()
    if cfg.lora_rank:  # after the "before" score: LoRA starts at B = 0, i.e. the same function
        model = with_lora(model, KIND, rank=cfg.lora_rank)
    if not cfg.init:
        return Start(model, before, None)
    started = warm_start(model, cfg.init, layers=tuple(cfg.layers))  # "before" = the warm-started model
    return Start(model, masked_lm_scores(model.base_model.model, tokenizer, heldout, seed=MASK_SEED).mean_loss(),
                 started)


def heldout_scores(cfg: MLMConfig, out, corpus, held: int) -> tuple[dict, list[dict]]:
    """(the run's record, other records): the harness's wikipedia-mlm on the training corpus's held-out documents;
    trained on the large corpus, the record is the standard 6 held-out documents of the sample and the large
    corpus's own held-out slice is the other record."""
    split = CORPORA[cfg.corpus][1]
    own = harness("wikipedia-mlm", out, data=corpus, split=split, limit=cfg.eval_limit,
                  options={**heldout_options(cfg), "heldout_docs": held})
    if split == "heldout":
        return own, []
    sample = data_file(cfg, WIKIPEDIA, what="the 106-article sample (the standard held-out documents)")
    return harness("wikipedia-mlm", out, data=sample, limit=cfg.eval_limit,
                   options={**heldout_options(cfg), "heldout_docs": HELDOUT_DOCS}), [own]


def run_data(cfg: MLMConfig, *, corpus, train: torch.Tensor, held: int, own: dict, start: Start) -> dict[str, str]:
    """The record's data block: corpus, training blocks, the held-out documents scored (``own``: the harness's
    record on the training corpus), the kept layers and the warm start."""
    data = {"corpus": str(corpus), "train_blocks": f"{len(train)} × {cfg.max_length} tokens",
            "heldout": f"last {held} documents, {own['n']} blocks, mask seed {MASK_SEED} (evaluation harness)"}
    if cfg.layers:
        data["layers"] = (f"MiniLM's encoder layers {list(cfg.layers)} of 6 (ELECTRA §3.2: a generator smaller "
                          "than the discriminator)")
    if start.warm_start:
        data["init"] = (f"LoRA adapter and MLM head of {start.warm_start['from']} "
                        f"({start.warm_start['adapter_tensors']} adapter tensors)")
    return data


def run_notes(masking: str, epochs: float, held: int, extra: list[dict]) -> str:
    notes = f"{masking} masking; {epochs:.2f} epochs over the training blocks."
    for rec in extra:
        m = rec["metrics"]
        notes += (f" On the held-out slice of the training corpus (`--split {rec['split']}`, the last {held} "
                  f"documents): loss {m['heldout_mlm_loss']:.3f}, perplexity {m['heldout_perplexity']:.1f}, "
                  f"top-1 {m['heldout_mlm_accuracy']:.1f}%.")
    return notes


def run(cfg: MLMConfig, *, masking: str = "dynamic", progress: bool = True) -> RunReport:
    from transformers import AutoTokenizer

    if masking not in MASKINGS:
        raise ValueError(f"masking must be one of {', '.join(MASKINGS)}, got {masking!r}")
    if cfg.corpus not in CORPORA:
        raise ValueError(f"corpus must be one of {', '.join(CORPORA)}, got {cfg.corpus!r}")
    if cfg.init and not cfg.lora_rank:
        raise ValueError("init= starts from a LoRA adapter: set lora_rank to the checkpoint's rank")
    layers = tuple(cfg.layers)
    name = f"mlm-{masking}" + (f"-{len(layers)}L" if layers else "")
    seed_everything(cfg.seed)
    base = base_model_path(cfg)
    tokenizer = AutoTokenizer.from_pretrained(base)
    held = heldout_docs(cfg)
    train, heldout, corpus = wikipedia_blocks(cfg, tokenizer, block=cfg.max_length, heldout_docs=held,
                                              corpus=cfg.corpus)
    train = train[: cfg.train_blocks] if cfg.train_blocks else train
    # the harness's blocks: wikipedia_blocks and the harness cut the corpus alike and keep eval_blocks, then --limit
    start = starting_model(cfg, base, tokenizer, heldout[: cfg.eval_blocks][: cfg.eval_limit])
    kw = dict(tokenizer_masking_kwargs(tokenizer), mlm_probability=cfg.mlm_probability)
    setup = Setup(model=start.model, loss_fn=mlm_loss_fn,
                  batches=masked_batches(train, masking=masking, batch_size=cfg.batch_size, seed=cfg.seed, **kw))
    result = fit(setup, cfg, desc=name, progress=progress)
    out = output_dir(cfg, name)
    save_model(setup.model, tokenizer, out, cfg, name=name, kind=KIND, base="minilm-layers" if layers else "minilm",
               layers=layers)
    epochs = result.steps * cfg.batch_size / len(train)
    scored, extra = heldout_scores(cfg, out, corpus, held)
    data = run_data(cfg, corpus=corpus, train=train, held=held, own=extra[0] if extra else scored, start=start)
    return finish(recipe=f"mlm-{masking}", name=name, cfg=cfg, fit=result, out=out, data=data, extra=extra,
                  title=f"MiniLM{f' ({len(layers)} of 6 layers)' if layers else ''} + MLM head, {masking} masking",
                  result=amended(scored, metrics={"heldout_mlm_loss_before": round(start.before, 4),
                                                  "epochs": round(epochs, 4)},
                                 details={"masking": masking, "corpus": cfg.corpus}),
                  variant="ELECTRA" if layers else "RoBERTa", notes=run_notes(masking, epochs, held, extra),
                  paper="Liu et al. 2019 (RoBERTa) §4.1 static vs dynamic masking; Devlin et al. 2019 §3.1 masked LM")
