"""The MLM lens: a masked LM's own prediction head read off every layer, and each token's path through the stack.

A masked LM predicts the token at a ``[MASK]`` from its last hidden state through its MLM head: a transform
(dense → activation → LayerNorm) and the decoder tied to the input embeddings (Devlin et al. 2019, §3.1 and
Appendix A.1; ALBERT, RoBERTa and ELECTRA's generator keep the same shape). Applying that same head, with its
transform and LayerNorm, to the hidden state after *every* layer (the "logit lens" of nostalgebraist 2020, here
with the model's own head and no training, as Geva et al. 2022 read intermediate layers of a transformer LM)
shows where in the stack the answer appears: per layer, the top-k tokens at each mask and the rank of a gold
token. At the last layer the lens *is* the model's fill-mask output (:func:`lens` returns the same logits).

**Token trajectories**: each token's hidden state after every layer, projected to 2-D by one PCA fitted on all
layers' states together (so the layers share axes and a token's path through them can be drawn as a line).

Which head a checkpoint has is one table, :data:`MLM_HEADS` (architecture -> hidden states to logits).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from .checks import token_count
MAX_TOKENS = 128
MAX_TOP_K = 20
DEFAULT_TOP_K = 5
MASK = "[MASK]"  # what the user types; replaced by the model's own mask token (RoBERTa's <mask>)

# architecture -> (model, hidden states (..., H)) -> logits (..., V): the head the model's own forward applies
MLM_HEADS: dict[str, Callable] = {
    "BertForMaskedLM": lambda m, h: m.cls(h),  # transform (dense, GELU, LayerNorm) + tied decoder
    "AlbertForMaskedLM": lambda m, h: m.predictions(h),
    "RobertaForMaskedLM": lambda m, h: m.lm_head(h),
    "XLMRobertaForMaskedLM": lambda m, h: m.lm_head(h),
    "ElectraForMaskedLM": lambda m, h: m.generator_lm_head(m.generator_predictions(h)),
    "DistilBertForMaskedLM": lambda m, h: m.vocab_projector(m.vocab_layer_norm(m.activation(m.vocab_transform(h)))),
}


def mlm_head(model) -> Callable[[torch.Tensor], torch.Tensor]:
    """The model's own MLM head as a function of hidden states; a ValueError for a model without one."""
    name = type(model).__name__
    if name not in MLM_HEADS:
        raise ValueError(f"{name} has no masked-LM head the lens knows (it reads {', '.join(MLM_HEADS)})")
    return lambda h: MLM_HEADS[name](model, h)


@dataclass(frozen=True)
class LayerPrediction:
    """The head applied after one layer (0 = the embeddings) at one mask."""

    layer: int
    tokens: list[str]  # top-k
    probabilities: list[float]
    gold_rank: int | None  # 1 = the top prediction; None without a gold token
    gold_probability: float | None


@dataclass(frozen=True)
class MaskLens:
    position: int  # token index of the mask
    layers: list[LayerPrediction]  # one per layer, 0..L
    logits: torch.Tensor  # (L + 1, V) float32: the head's output after every layer

    def first_layer_in_top(self, k: int) -> int | None:
        """The first layer whose top-k holds the gold token (None: never, or no gold)."""
        for p in self.layers:
            if p.gold_rank is not None and p.gold_rank <= k:
                return p.layer
        return None


@dataclass(frozen=True)
class Lens:
    tokens: list[str]
    masks: list[MaskLens]
    hidden: np.ndarray  # (L + 1, T, H) float32: every layer's hidden states
    gold: str | None
    top_k: int
    gold_id: int | None = None

    @property
    def layers(self) -> int:
        return int(self.hidden.shape[0]) - 1


def gold_id(tokenizer, gold: str) -> int:
    """The vocabulary id of the one token ``gold`` (as typed, or with a leading space for a byte-level BPE)."""
    for form in (gold.strip(), " " + gold.strip()):
        ids = tokenizer(form, add_special_tokens=False)["input_ids"]
        if len(ids) == 1:
            return int(ids[0])
    pieces = tokenizer.tokenize(gold.strip())
    raise ValueError(f"the answer {gold.strip()!r} is {len(pieces)} tokens for this model ({' '.join(pieces)}): "
                     "the lens ranks one vocabulary token, so give a single-token answer")


def masked_input(tokenizer, text: str, *, max_tokens: int = MAX_TOKENS) -> dict:
    """``text`` with [MASK] written the model's way, tokenized; ValueError without a mask or over the limit."""
    if tokenizer.mask_token is None:
        raise ValueError("this tokenizer has no mask token")
    text = text.replace(MASK, tokenizer.mask_token) if tokenizer.mask_token != MASK else text
    enc = tokenizer(text, return_tensors="pt", truncation=False)
    n = int(enc["input_ids"].shape[1])
    token_count(n, "the text", limit=max_tokens, why="for the lens")
    if not bool((enc["input_ids"][0] == tokenizer.mask_token_id).any()):
        raise ValueError(f"the text has no mask token: write {MASK} where the model should predict a word")
    return dict(enc)


def rank_of(logits: torch.Tensor, token: int) -> int:
    """1 + the number of tokens scored strictly higher than ``token`` (logits (V,))."""
    return int((logits > logits[token]).sum()) + 1


def lens(model, tokenizer, text: str, *, gold: str | None = None, top_k: int = DEFAULT_TOP_K,
         max_tokens: int = MAX_TOKENS) -> Lens:
    """The model's MLM head after every layer at every mask of ``text`` (see the module docstring)."""
    if isinstance(top_k, bool) or not isinstance(top_k, int) or not 1 <= top_k <= MAX_TOP_K:
        raise ValueError(f"top-k must be a whole number between 1 and {MAX_TOP_K}, got {top_k!r}")
    head = mlm_head(model)
    gold = gold.strip() if gold and gold.strip() else None
    target = gold_id(tokenizer, gold) if gold else None
    device = next(model.parameters()).device
    enc = {k: v.to(device) for k, v in masked_input(tokenizer, text, max_tokens=max_tokens).items()}
    with torch.inference_mode():
        out = model(**enc, output_hidden_states=True)
        hidden = torch.stack(out.hidden_states)[:, 0]  # (L + 1, T, H)
        positions = (enc["input_ids"][0] == tokenizer.mask_token_id).nonzero().flatten().tolist()
        masks = []
        for pos in positions:
            logits = head(hidden[:, pos]).float()  # (L + 1, V): the same head on every layer's state
            probs = logits.softmax(-1)
            top = probs.topk(top_k, dim=-1)
            names = [[str(t) for t in tokenizer.convert_ids_to_tokens(row.tolist())] for row in top.indices]
            layers = [LayerPrediction(layer, names[layer], top.values[layer].tolist(),
                                      rank_of(logits[layer], target) if target is not None else None,
                                      float(probs[layer, target]) if target is not None else None)
                      for layer in range(len(logits))]
            masks.append(MaskLens(pos, layers, logits.cpu()))
    tokens = [str(t) for t in tokenizer.convert_ids_to_tokens(enc["input_ids"][0].tolist())]
    return Lens(tokens, masks, hidden.float().cpu().numpy(), gold, top_k, target)


@dataclass(frozen=True)
class Trajectories:
    coords: np.ndarray  # (L + 1, T, 2): every token's hidden state after every layer, in the PCA plane
    explained: tuple[float, float]  # variance ratio of each component


def trajectories(hidden: np.ndarray) -> Trajectories:
    """One PCA over all layers' states (L + 1, T, H) -> (L + 1, T, 2), by SVD of the centred states; each
    component's sign fixed so that its largest loading is positive (the same input draws the same picture)."""
    states = np.asarray(hidden, dtype=np.float64)
    flat = states.reshape(-1, states.shape[-1])
    centred = flat - flat.mean(0)
    _, s, vt = np.linalg.svd(centred, full_matrices=False)
    comps = vt[:2]
    comps *= np.sign(comps[np.arange(len(comps)), np.abs(comps).argmax(1)])[:, None]
    coords = (centred @ comps.T).reshape(*states.shape[:2], -1)
    var = s**2 / max(float((s**2).sum()), 1e-300)
    if coords.shape[-1] == 1:  # one state: no second direction
        coords = np.concatenate([coords, np.zeros_like(coords)], -1)
    return Trajectories(coords, (float(var[0]), float(var[1]) if len(var) > 1 else 0.0))
