"""The settings every recipe shares, and where a recipe starts from and saves to.

Each recipe subclasses :class:`TrainConfig` (a frozen dataclass) with its own defaults; the CLI builds it with
:func:`config_from_args`. Defaults are sized for ≤ 15 min on a 2-core CPU; ``--scale`` multiplies the steps.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class TrainConfig:
    """Settings every recipe shares. Defaults are sized for ≤ 15 min on a 2-core CPU; ``scale`` multiplies steps.

    Attributes:
        steps: optimizer steps at scale 1.
        batch_size: examples per step (per process under ``accelerate launch``).
        lr: peak AdamW learning rate, reached after ``warmup`` × steps, then decayed linearly to 0.
        max_length: tokens per sequence (truncation).
        scale: multiplies ``steps`` (``--scale 20`` for a real GPU run at the same schedule shape).
        seed: seeds weights of new heads, batch order and masking; the same seed reproduces the run.
        output: checkpoint directory; ``None`` = ``<models_dir>/<recipe's name>``.
        data: data directory (the shared layout) or one file; ``None`` = the shared data directory
            (:func:`bertvariants.paths.shared_data_dir`: env ``BERTVARIANTS_DATA``, else ``../shared/data``).
        log_every: steps between loss-curve rows.
        eval_limit: cap on evaluation examples (``None`` = the full dev/held-out set).
        max_minutes: stop training after this many minutes (or on SIGTERM) and still save + evaluate; the
            model card and result record the steps actually run.
        resume: continue from the training state the last run of this recipe and output saved (parameters,
            optimizer, schedule, random states, data position; :mod:`bertvariants.train.resume`).
        checkpoint_minutes: minutes between training-state saves.
        base_model: a full checkpoint directory, or a compact one this project trained (e.g. a masked LM or the
            ELECTRA discriminator): its encoder is exported once as a plain BERT (:func:`encoder_from_compact`).
        run_name: the model name of the result row and model card (default: the recipe's), e.g. to keep a
            comparison's runs apart on the Leaderboard.
    """

    steps: int = 300
    batch_size: int = 32
    lr: float = 5e-5
    weight_decay: float = 0.01
    warmup: float = 0.06
    max_length: int = 128
    scale: float = 1.0
    seed: int = 42
    output: str | None = None
    data: str | None = None
    log_every: int = 10
    eval_limit: int | None = None
    base_model: str | None = None  # None = the packaged all-MiniLM-L6-v2
    max_minutes: float | None = None  # wall-time budget: stop early (checkpoint + evaluation still happen)
    cpu_bf16: bool = False  # bf16 autocast on a CPU with native bf16 (AVX-512 BF16 / AMX); GPUs always use bf16
    lora_rank: int = 0  # > 0: train a LoRA adapter of this rank + the task head, save the compact form (train/lora.py)
    # dropout on the attention probabilities during training (None = the model's own, 0.1 for BERTs). 0 by default:
    # on a CPU that dropout samples a B×heads×T×T mask per layer and forces attention off its fused kernel, which
    # made it most of a step's time (python -m bertvariants.train bench); Cramming (Geiping & Goldstein 2023, §4.3)
    # drops dropout from BERT training for the same reason. Hidden-state dropout is kept.
    attention_dropout: float | None = 0.0
    run_name: str | None = None  # result rows' model name (default: the recipe's name)
    resume: bool = False  # continue from <output>.train-state.pt (train/resume.py) instead of step 0
    checkpoint_minutes: float = 5.0  # save the training state this often (0: only at an early stop and the end)

    @property
    def total_steps(self) -> int:
        return max(1, int(round(self.steps * self.scale)))


def config_from_args(cls, overrides: dict[str, Any]):
    """Build a recipe config from CLI overrides, ignoring ``None`` (= keep the documented default)."""
    names = {f.name for f in fields(cls)}
    unknown = set(k for k, v in overrides.items() if v is not None) - names
    if unknown:
        raise ValueError(f"{cls.__name__} has no setting(s) {', '.join(sorted(unknown))}")
    cfg = cls(**{k: v for k, v in overrides.items() if v is not None})
    if cfg.steps < 1 or cfg.scale <= 0 or cfg.batch_size < 1:
        raise ValueError(f"steps and batch_size must be ≥ 1 and scale > 0 (got steps={cfg.steps}, "
                         f"batch_size={cfg.batch_size}, scale={cfg.scale})")
    return cfg


def base_model_path(cfg: TrainConfig) -> str:
    """``--base-model`` or the packaged all-MiniLM-L6-v2 every recipe starts from, as a plain BERT encoder directory
    (a compact or pretraining checkpoint is exported first: :func:`bertvariants.serving.encoder.base_encoder`)."""
    from ..serving.encoder import base_encoder

    return base_encoder(cfg.base_model)


def output_dir(cfg: TrainConfig, name: str) -> Path:
    """Where a recipe saves: ``--output`` or ``<models_dir>/<name>`` (the registry's ``trained:<name>``)."""
    if cfg.output:
        return Path(cfg.output)
    from ..serving.manifest import load_manifest

    return load_manifest().models_dir / name
