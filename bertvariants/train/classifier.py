"""The classifier fine-tune the classification recipes share (Devlin et al. 2019 §4.1).

A ``BertForSequenceClassification`` on MiniLM is made trainable the one way (:func:`trainable_classifier`: the word
embeddings frozen, a LoRA adapter on every linear), trained by the shared loop and saved in the compact LoRA form
(:func:`fine_tune`). ``sst2-teacher``, ``glue`` and ``clinical --set method=lora`` differ only in their data, labels
and loss.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import torch

from ..lab_step import with_lora
from .loop import FitResult, Setup, classification_loss, fit
from .lora import save_model

KIND = "sequence-classification"


def label_config(labels: Sequence[str]) -> dict:
    """The ``num_labels`` / ``id2label`` / ``label2id`` of a model config for ``labels`` (index = class id).

    >>> label_config(("negative", "positive"))["label2id"]
    {'negative': 0, 'positive': 1}
    """
    return {"num_labels": len(labels), "id2label": dict(enumerate(labels)),
            "label2id": {label: i for i, label in enumerate(labels)}}


def trainable_classifier(model, cfg) -> torch.nn.Module:
    """``model`` (a ``BertForSequenceClassification``) as the recipes fine-tune it: the word embeddings frozen with
    ``cfg.freeze_word_embeddings`` (half of MiniLM's weights: half the optimizer's work, rare words keep their
    pretrained geometry), a LoRA adapter of rank ``cfg.lora_rank`` (0: every other weight trains)."""
    if cfg.freeze_word_embeddings:
        model.bert.embeddings.word_embeddings.weight.requires_grad_(False)
    return with_lora(model, KIND, rank=cfg.lora_rank) if cfg.lora_rank else model


def fine_tune(model, batches: Iterator[dict], cfg, *, name: str, tokenizer, out: Path, labels: dict,
              loss_fn: Callable[[torch.nn.Module, dict], dict] = classification_loss,
              progress: bool = True) -> FitResult:
    """Train ``model`` (from :func:`trainable_classifier`) on ``batches`` with ``loss_fn`` (default: the model's
    cross-entropy) for ``cfg.steps``, then save it to ``out`` with the config's ``labels``."""
    setup = Setup(model=model, loss_fn=loss_fn, batches=batches)
    result = fit(setup, cfg, desc=name, progress=progress)
    save_model(setup.model, tokenizer, out, cfg, name=name, kind=KIND, config=labels)
    return result
