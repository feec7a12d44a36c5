"""The parts of the variant lab's training step, below every layer that trains or measures training.

The recipes (:mod:`bertvariants.train`) build their step from these, and the training-step benchmark
(:mod:`evaluation.bench.train_steps`) builds the lab's side from the same functions in its own process:

- :func:`adamw`: AdamW with BERT's parameter groups (no weight decay on biases and LayerNorm weights, BERT §A.2)
  and the fused kernel where torch has it (:func:`adamw_kernel`);
- :func:`set_attention_dropout`: the lab trains without dropout on the attention probabilities
  (:data:`LAB_ATTENTION_DROPOUT`), whose B×heads×T×T mask and unfused softmax took most of a CPU step;
- :func:`with_lora`: LoRA adapters (Hu et al. 2021 §4.1) on the packaged MiniLM's linears, the task head trained
  in full.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from .serving.shipped import HEAD_PREFIXES, LORA_TARGETS

LAB_ATTENTION_DROPOUT = 0.0  # TrainConfig.attention_dropout's default
LAB_WEIGHT_DECAY = 0.01  # TrainConfig.weight_decay's default (BERT §A.2)


def adamw_kernel() -> dict:
    """AdamW's fused kernel (one pass over all parameters; CPU and CUDA in torch ≥ 2.4): the same update as the
    default per-tensor loop, which it beats on a CPU (with the sparse heads, the bench's "exact" side: 1.16× the
    plain QA step at 32 × 256; ``python -m bertvariants.train bench``)."""
    try:
        torch.optim.AdamW([torch.nn.Parameter(torch.zeros(1))], fused=True)
        return {"fused": True}
    except (RuntimeError, TypeError, ValueError):  # an older torch or an unsupported device: multi-tensor
        return {"foreach": True}


def adamw(params: Sequence[torch.nn.Parameter], *, lr: float, weight_decay: float) -> torch.optim.AdamW:
    """AdamW over ``params``; matrices decay by ``weight_decay``, biases and LayerNorm weights do not (BERT §A.2)."""
    decay = [p for p in params if p.ndim >= 2]
    no_decay = [p for p in params if p.ndim < 2]
    return torch.optim.AdamW([{"params": decay, "weight_decay": weight_decay},
                              {"params": no_decay, "weight_decay": 0.0}], lr=lr, **adamw_kernel())


def set_attention_dropout(model: torch.nn.Module, p: float) -> int:
    """Set the attention-probability dropout of every self-attention module (BERT, ELECTRA, ALBERT, …) to ``p``;
    returns how many modules changed. Hidden-state dropouts are left alone."""
    if not 0.0 <= p < 1.0:
        raise ValueError(f"attention_dropout must be in [0, 1), got {p}")
    changed = 0
    for module in model.modules():
        # BertSelfAttention / ElectraSelfAttention keep it as .dropout, AlbertAttention as .attention_dropout
        attr = "dropout" if type(module).__name__.endswith("SelfAttention") else "attention_dropout"
        drop = getattr(module, attr, None)
        if isinstance(drop, torch.nn.Dropout):
            drop.p = p
            changed += 1
    return changed


def with_lora(model, kind: str, *, rank: int, alpha: float | None = None, dropout: float = 0.1):
    """``model`` wrapped by peft with LoRA adapters of rank ``rank`` on :data:`LORA_TARGETS`; the base is frozen
    and the task head (:data:`HEAD_PREFIXES`) trains in full. α defaults to 2r (the scale α/r = 2)."""
    from peft import LoraConfig, get_peft_model

    if rank < 1:
        raise ValueError(f"lora_rank must be ≥ 1, got {rank}")
    config = LoraConfig(r=rank, lora_alpha=alpha or 2 * rank, lora_dropout=dropout, target_modules=list(LORA_TARGETS))
    peft_model = get_peft_model(model, config)
    prefixes = HEAD_PREFIXES[kind]
    for name, param in peft_model.base_model.model.named_parameters(remove_duplicate=False):
        if prefixes and name.startswith(prefixes):
            param.requires_grad_(True)
    return peft_model


def trainable_parameters(model) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
