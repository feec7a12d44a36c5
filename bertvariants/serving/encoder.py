"""A checkpoint's encoder as a plain ``BertModel``: what a recipe's ``--base-model`` starts from.

Every recipe fine-tunes a BERT encoder. A compact shipped model (LoRA merged) or a pretraining checkpoint (a
``BertForMaskedLM``, an ``ElectraForPreTraining``) is a different format; :func:`base_encoder` recognises it and
exports its encoder once (:func:`encoder_as_bert`), so recipes never test a checkpoint's format themselves.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from ..io import atomic_directory, sha256_file
from .manifest import load_manifest, packaged_model_path
from .shipped import ShippedSpec, build_shipped_model, is_shipped


def base_encoder(ref: str | None) -> str:
    """``ref`` (a recipe's ``--base-model``), or the packaged all-MiniLM-L6-v2 every recipe starts from; a compact
    checkpoint or a pretraining checkpoint (a masked LM, an ELECTRA discriminator) is first exported to a plain BERT
    encoder (:func:`encoder_as_bert`)."""
    if ref:
        return str(encoder_as_bert(Path(ref))) if needs_export(Path(ref)) else ref
    return str(packaged_model_path())


def needs_export(src: Path) -> bool:
    """A compact checkpoint, or a saved model that is not a plain ``BertModel`` (a masked LM, ELECTRA)."""
    if is_shipped(src):
        return True
    config = src / "config.json"
    if not config.is_file():
        return False
    c = json.loads(config.read_text(encoding="utf-8"))
    return c.get("model_type") == "electra" or (c.get("architectures") or ["BertModel"])[0] != "BertModel"


ENCODER_PREFIXES = ("bert.", "electra.")


def encoder_as_bert(src: Path) -> Path:
    """The encoder of a pretraining checkpoint — compact (``shipped.json``: LoRA merged) or full (a
    ``BertForMaskedLM``, an ``ElectraForPreTraining``) — as a plain ``BertModel`` checkpoint, so that any recipe can
    fine-tune it (``--base-model``): ELECTRA's encoder modules map one to one onto BERT's, heads are dropped, and
    the pooler — which a masked LM or a discriminator does not have — is the packaged MiniLM's, the same for every
    source (a fair start for a comparison). Saved once under ``<models_dir>/.encoders/<name>-<sha>``, keyed by the
    source's weight hashes."""
    from transformers import AutoTokenizer, BertModel

    if is_shipped(src):
        spec = ShippedSpec.read(src)
        name, hashes = spec.name, spec.files
    else:
        weights = sorted(src.glob("*.safetensors"))
        if not weights:
            raise ValueError(f"{src}: no safetensors weights to start from")
        name, hashes = src.name, {w.name: sha256_file(w) for w in weights}
    key = hashlib.sha256(json.dumps(hashes, sort_keys=True).encode()).hexdigest()[:12]
    dst = load_manifest().models_dir / ".encoders" / f"{name}-{key}"
    if (dst / "config.json").is_file():
        return dst
    if is_shipped(src):
        state = build_shipped_model(src)[0].state_dict()
    else:
        from safetensors.torch import load_file

        state = {k: v for w in sorted(src.glob("*.safetensors")) for k, v in load_file(str(w)).items()}
    encoder = {k[len(p):]: v for k, v in state.items() for p in ENCODER_PREFIXES
               if k.startswith(p) and not k[len(p):].startswith("pooler.")}
    bert = BertModel.from_pretrained(str(packaged_model_path()))
    own = {k for k in bert.state_dict() if not k.startswith("pooler.")}
    if set(encoder) - set(bert.state_dict()) or own - set(encoder):
        extra, missing = sorted(set(encoder) - set(bert.state_dict()))[:3], sorted(own - set(encoder))[:3]
        raise ValueError(f"{src}: its encoder does not map onto the packaged 6-layer BERT (extra {extra}, missing "
                         f"{missing})")
    bert.load_state_dict(encoder, strict=False)
    with atomic_directory(dst) as tmp:
        bert.save_pretrained(str(tmp))
        AutoTokenizer.from_pretrained(str(packaged_model_path())).save_pretrained(str(tmp))
        (Path(tmp) / "SOURCE.json").write_text(json.dumps({"source": str(src), "files": hashes}, indent=2))
    return dst
