"""ELECTRA (Clark et al. 2020): replaced-token detection.

§2 "Method": mask ~15% of the positions with [MASK]; a small generator (an MLM) samples a token
for each masked position; the discriminator sees the corrupted sequence and predicts, for *every*
token, whether it was replaced. A sampled token that equals the original counts as "original"
(§2: "if the generator happens to generate the correct token, that token is considered real").
The combined loss is  L_MLM(generator) + λ · L_Disc  with λ = 50 (§2, Appendix A); the sampling
step is not back-propagated through (§2: the discriminator loss is not back-propagated into the
generator).
§3.2 "Weight sharing": when generator and discriminator have the same size all weights can be
tied; with a smaller generator (the efficient choice) only the token and position embeddings are
shared.

The data path is pure tensor functions (:func:`mask_for_generator`, :func:`sample_replacements`,
:func:`rtd_loss`); :class:`ReplacedTokenDetection` wires them around two transformers models so a
training loop only calls ``forward`` and ``backward``.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from .checks import tokenized
from .common import IGNORE_INDEX, MaskedBatch, mask_tokens
from .mlm_lens import mlm_head

DISC_WEIGHT = 50.0  # λ of §2 (Appendix A: "λ = 50")


@dataclass(frozen=True)
class RTDConfig:
    """Hyper-parameters of replaced-token detection with the paper's defaults."""

    mlm_probability: float = 0.15  # §2 / Appendix A: mask 15% of the tokens
    mask_ratio: float = 1.0  # §2: masked positions become [MASK] (no BERT 80/10/10 for the generator input)
    disc_weight: float = DISC_WEIGHT
    temperature: float = 1.0  # sample from the generator's softmax as is


def mask_for_generator(ids: torch.Tensor, *, mask_token_id: int, vocab_size: int, generator: torch.Generator,
                       special_ids=(), special_mask: torch.Tensor | None = None, mlm_probability: float = 0.15,
                       mask_ratio: float = 1.0) -> MaskedBatch:
    """Step 1 of §2: choose ~15% of the non-special positions and replace them with [MASK].

    ``mask_ratio`` < 1 leaves the rest of the selected positions unchanged (the released code uses 0.85).
    """
    return mask_tokens(ids, mask_token_id=mask_token_id, vocab_size=vocab_size, generator=generator,
                       special_ids=special_ids, special_mask=special_mask, mlm_probability=mlm_probability,
                       mask_ratio=mask_ratio, random_ratio=0.0)


@dataclass(frozen=True)
class Replacements:
    """The discriminator's input and targets."""

    input_ids: torch.Tensor  # (B, T) original ids with the generator's samples at the selected positions
    is_replaced: torch.Tensor  # (B, T) bool: sampled token differs from the original
    sampled: torch.Tensor  # (B, T) the sampled id at selected positions, the original elsewhere


def sample_replacements(gen_logits: torch.Tensor, original_ids: torch.Tensor, selected: torch.Tensor, *,
                        generator: torch.Generator, temperature: float = 1.0) -> Replacements:
    """Step 2 of §2: x̂_i ~ p_G(x_i | x_masked) at the selected positions; labels "replaced" iff x̂_i ≠ x_i.

    ``gen_logits``: (B, T, V), or (M, V) with one row per selected position in row-major order (a sparse
    head that projected only those). It is detached: the sampling step is not differentiated (§2).
    """
    rows = gen_logits.dim() == 2  # (M, V): already the selected positions
    lined_up = gen_logits.shape[0] == int(selected.sum()) if rows else gen_logits.shape[:2] == original_ids.shape
    if selected.shape != original_ids.shape or not lined_up:
        raise ValueError(f"gen_logits {tuple(gen_logits.shape)}, original_ids {tuple(original_ids.shape)} and "
                         f"selected {tuple(selected.shape)} do not line up")
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    selected = selected.bool()
    sampled = original_ids.clone()
    if selected.any():
        picked = gen_logits.detach() if rows else gen_logits.detach()[selected]  # (M, V)
        probs = F.softmax(picked.float() / temperature, dim=-1)
        draws = torch.multinomial(probs, 1, generator=generator).squeeze(-1)
        sampled[selected] = draws.to(sampled.dtype)
    is_replaced = selected & (sampled != original_ids)
    return Replacements(input_ids=sampled, is_replaced=is_replaced, sampled=sampled)


@dataclass(frozen=True)
class RTDLoss:
    loss: torch.Tensor  # mlm_loss + disc_weight * disc_loss
    mlm_loss: torch.Tensor
    disc_loss: torch.Tensor


def rtd_loss(gen_logits: torch.Tensor, mlm_labels: torch.Tensor, disc_logits: torch.Tensor,
             is_replaced: torch.Tensor, attention_mask: torch.Tensor | None = None, *,
             disc_weight: float = DISC_WEIGHT) -> RTDLoss:
    """§2: L = L_MLM(x, θ_G) + λ · L_Disc(x, θ_D), λ = 50.

    L_MLM: cross-entropy over the masked positions (labels -100 elsewhere). L_Disc: sigmoid
    binary cross-entropy over every real (non-padding) token, target 1 = replaced.
    """
    v = gen_logits.shape[-1]
    if (mlm_labels != IGNORE_INDEX).any():
        mlm = F.cross_entropy(gen_logits.reshape(-1, v).float(), mlm_labels.reshape(-1), ignore_index=IGNORE_INDEX)
    else:  # nothing selected (e.g. a 3-token input): no MLM signal, keep the graph
        mlm = gen_logits.sum() * 0.0
    keep = torch.ones_like(is_replaced, dtype=torch.bool) if attention_mask is None else attention_mask.bool()
    disc = F.binary_cross_entropy_with_logits(disc_logits[keep].float(), is_replaced[keep].float())
    return RTDLoss(loss=mlm + disc_weight * disc, mlm_loss=mlm, disc_loss=disc)


# --------------------------------------------------------------------------------------------
# Weight sharing between generator and discriminator (§3.2)
# --------------------------------------------------------------------------------------------
_SIZE_FIELDS = ("vocab_size", "embedding_size", "hidden_size", "num_hidden_layers", "num_attention_heads",
                "intermediate_size", "max_position_embeddings", "type_vocab_size")


@dataclass(frozen=True)
class Sharing:
    mode: str  # "all" (same sizes: the whole encoder is one module) or "embeddings" (token + position + segment)
    shared_parameters: int


def share_weights(generator_model, discriminator_model) -> Sharing:
    """Tie the generator to the discriminator as §3.2 does (transformers ElectraForMaskedLM / ElectraForPreTraining).

    Same sizes → the generator's encoder *is* the discriminator's (all weights tied). Different
    sizes → token, position and segment embeddings (and the embedding LayerNorm) are shared; this
    needs the same ``embedding_size`` (the generator's own E→H projection stays separate). The
    generator's output layer stays tied to the (now shared) token embeddings.
    """
    gc, dc = generator_model.config, discriminator_model.config
    if gc.vocab_size != dc.vocab_size or gc.embedding_size != dc.embedding_size:
        raise ValueError("embedding sharing needs the same vocab_size and embedding_size, got generator "
                         f"{gc.vocab_size}×{gc.embedding_size} and discriminator {dc.vocab_size}×{dc.embedding_size}")
    if all(getattr(gc, f) == getattr(dc, f) for f in _SIZE_FIELDS):
        generator_model.electra = discriminator_model.electra
        mode = "all"
    else:
        g_emb, d_emb = generator_model.electra.embeddings, discriminator_model.electra.embeddings
        if g_emb.position_embeddings.weight.shape != d_emb.position_embeddings.weight.shape:
            raise ValueError("embedding sharing needs the same max_position_embeddings and type_vocab_size")
        for name in ("word_embeddings", "position_embeddings", "token_type_embeddings", "LayerNorm"):
            setattr(g_emb, name, getattr(d_emb, name))
        mode = "embeddings"
    generator_model.tie_weights()  # re-point the generator's output layer at the shared token embeddings
    gen_ids = {id(p) for p in generator_model.parameters()}
    shared = sum(p.numel() for p in discriminator_model.parameters() if id(p) in gen_ids)
    return Sharing(mode=mode, shared_parameters=shared)


def generator_config(discriminator_config, *, multiplier: float = 0.25):
    """A generator ``multiplier`` × the discriminator's width (§3.2: 1/4–1/2 works best), same E and vocab."""
    cfg = discriminator_config.__class__(**discriminator_config.to_dict())
    heads = max(1, round(discriminator_config.num_attention_heads * multiplier))
    head_dim = discriminator_config.hidden_size // discriminator_config.num_attention_heads
    cfg.hidden_size = heads * head_dim
    cfg.num_attention_heads = heads
    cfg.intermediate_size = max(1, round(discriminator_config.intermediate_size * multiplier))
    return cfg


# --------------------------------------------------------------------------------------------
# The whole pre-training step as a module
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class RTDOutput:
    loss: torch.Tensor  # what trains: mlm_loss + λ·disc_loss, or λ·disc_loss alone with a frozen generator
    mlm_loss: torch.Tensor
    disc_loss: torch.Tensor
    masked: MaskedBatch  # the generator's input and MLM labels
    replacements: Replacements  # the discriminator's input and targets
    gen_logits: torch.Tensor  # (B, T, V), or (M, V) at the masked positions with the sparse head
    disc_logits: torch.Tensor  # (B, T)
    attention_mask: torch.Tensor | None = None  # (B, T) the real tokens; None = all

    def _real(self) -> torch.Tensor:
        if self.attention_mask is None:
            return torch.ones_like(self.replacements.is_replaced)
        return self.attention_mask.bool()

    @property
    def disc_accuracy(self) -> float:
        """The discriminator's accuracy (logit > 0 = replaced) over the real tokens."""
        return float(((self.disc_logits > 0) == self.replacements.is_replaced)[self._real()].float().mean())

    @property
    def replaced_fraction(self) -> float:
        """The share of the real tokens that the generator's samples changed."""
        return float(self.replacements.is_replaced.float().sum() / self._real().sum())


class ReplacedTokenDetection(nn.Module):
    """Generator + discriminator of §2 with the combined loss. ``forward`` runs the models; the maths is above.

    Options (the same §2 step, cheaper):
        sparse_head: project the generator's hidden states onto the vocabulary only at the ~15% masked positions
            (``gen_logits`` (M, V) instead of (B, T, V), the costliest tensor of a CPU step); the same losses.
        frozen_generator: a fixed, already trained masked LM samples the replacements (no gradient, no §3.2
            weight sharing); the loss is λ·L_Disc and L_MLM is only reported. Implies the sparse head.
    """

    def __init__(self, generator_model, discriminator_model, *, mask_token_id: int, special_ids=(),
                 config: RTDConfig = RTDConfig(), share: bool = True, sparse_head: bool = False,
                 frozen_generator: bool = False):
        super().__init__()
        self.generator_model, self.discriminator_model = generator_model, discriminator_model
        self.mask_token_id, self.special_ids, self.config = int(mask_token_id), tuple(special_ids), config
        self.frozen_generator = bool(frozen_generator)
        self.sparse_head = bool(sparse_head) or self.frozen_generator
        if self.frozen_generator:
            generator_model.requires_grad_(False)
        share = share and not self.frozen_generator
        self.sharing = share_weights(generator_model, discriminator_model) if share else None

    def generator_logits(self, masked_ids: torch.Tensor, attention_mask: torch.Tensor,
                         selected: torch.Tensor) -> torch.Tensor:
        """The generator's logits: (B, T, V), or (M, V) at the ``selected`` positions with the sparse head."""
        gen = self.generator_model
        if not self.sparse_head:
            return gen(input_ids=masked_ids, attention_mask=attention_mask).logits
        hidden = gen.base_model(input_ids=masked_ids, attention_mask=attention_mask).last_hidden_state  # (B, T, H)
        return mlm_head(gen)(hidden[selected])  # (M, V)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None, *,
                rng: torch.Generator) -> RTDOutput:
        cfg = self.config
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        vocab = self.discriminator_model.config.vocab_size
        masked = mask_for_generator(input_ids, mask_token_id=self.mask_token_id, vocab_size=vocab, generator=rng,
                                    special_ids=self.special_ids, special_mask=attention_mask == 0,
                                    mlm_probability=cfg.mlm_probability, mask_ratio=cfg.mask_ratio)
        with torch.no_grad() if self.frozen_generator else contextlib.nullcontext():  # frozen: sampling only
            gen_logits = self.generator_logits(masked.input_ids, attention_mask, masked.selected)
        if self.frozen_generator:
            gen_logits = gen_logits.float()
        repl = sample_replacements(gen_logits, input_ids, masked.selected, generator=rng, temperature=cfg.temperature)
        disc_logits = self.discriminator_model(input_ids=repl.input_ids, attention_mask=attention_mask).logits
        labels = masked.labels[masked.selected] if self.sparse_head else masked.labels  # (M,) or (B, T)
        losses = rtd_loss(gen_logits, labels, disc_logits, repl.is_replaced, attention_mask,
                          disc_weight=cfg.disc_weight)
        loss = cfg.disc_weight * losses.disc_loss if self.frozen_generator else losses.loss
        return RTDOutput(loss=loss, mlm_loss=losses.mlm_loss, disc_loss=losses.disc_loss, masked=masked,
                         replacements=repl, gen_logits=gen_logits, disc_logits=disc_logits,
                         attention_mask=attention_mask)


def generator_size(generator_model, discriminator_model) -> str:
    """How the generator's size compares with the discriminator's (§3.2: ¼–½ of its width works best)."""
    g, d = generator_model.config, discriminator_model.config
    if g.hidden_size < d.hidden_size:
        return (f"generator width {g.hidden_size} = ×{g.hidden_size / d.hidden_size:.2g} the discriminator's "
                f"{d.hidden_size} (§3.2: ¼–½ works best)")
    return (f"generator {g.num_hidden_layers} of the discriminator's {d.num_hidden_layers} layers at its width "
            f"{d.hidden_size}: ×{g.num_hidden_layers / d.num_hidden_layers:.2g} its transformer compute "
            "(§3.2 sizes generators at ¼–½ of the discriminator)")


def check_shared_vocabulary(generator_model, discriminator_model) -> None:
    """§2: the discriminator reads the generator's samples as its own token ids, so both must share one
    vocabulary; a ValueError naming both sizes otherwise."""
    g_vocab, d_vocab = generator_model.config.vocab_size, discriminator_model.config.vocab_size
    if g_vocab != d_vocab:
        raise ValueError(f"generator and discriminator must share a vocabulary, got {g_vocab} and {d_vocab} tokens")


# --------------------------------------------------------------------------------------------
# Weight-free explorer: the data path with a stand-in generator of chosen accuracy
# --------------------------------------------------------------------------------------------
def stand_in_generator_logits(ids: torch.Tensor, *, vocab_size: int, p_original: float) -> torch.Tensor:
    """(B, T, V) logits of a stand-in generator: P(original token) = ``p_original``, the rest uniform.

    Lets the explorer run the real :func:`sample_replacements` and :func:`rtd_loss` without weights;
    ``p_original`` plays the role of the generator's MLM accuracy (§3.2 studies generator size / strength).
    """
    if not 0.0 <= p_original < 1.0:
        raise ValueError(f"p_original must be in [0, 1), got {p_original}")
    other = (1.0 - p_original) / (vocab_size - 1)
    probs = torch.full((*ids.shape, vocab_size), other)
    probs.scatter_(-1, ids.unsqueeze(-1), max(p_original, 1e-12))
    return probs.log()


@dataclass(frozen=True)
class DataPathExample:
    """One sentence through §2's data path, with the losses an untrained model would get."""

    tokens: list[str]
    masked: MaskedBatch
    replacements: Replacements
    sampled_tokens: list[str]
    untrained: RTDLoss  # losses with uniform generator logits and a discriminator at P = 0.5


def data_path_example(ids: torch.Tensor, tokenizer, *, p_original: float, seed: int,
                      mlm_probability: float = 0.15) -> DataPathExample:
    """Mask → stand-in generator samples → replaced / original labels → the two losses (for the explorer)."""
    ids = ids.unsqueeze(0) if ids.dim() == 1 else ids
    rng = torch.Generator().manual_seed(int(seed))
    vocab = len(tokenizer)
    masked = mask_for_generator(ids, mask_token_id=tokenizer.mask_token_id, vocab_size=vocab, generator=rng,
                                special_ids=tokenizer.all_special_ids, mlm_probability=mlm_probability)
    logits = stand_in_generator_logits(ids, vocab_size=vocab, p_original=p_original)
    repl = sample_replacements(logits, ids, masked.selected, generator=rng)
    untrained = rtd_loss(torch.zeros(*ids.shape, vocab), masked.labels, torch.zeros(ids.shape), repl.is_replaced)
    return DataPathExample(tokens=tokenizer.convert_ids_to_tokens(ids[0].tolist()), masked=masked, replacements=repl,
                           sampled_tokens=tokenizer.convert_ids_to_tokens(repl.input_ids[0].tolist()),
                           untrained=untrained)


# --------------------------------------------------------------------------------------------
# Inference for the tab: corrupt a sentence, then ask the discriminator which tokens were replaced
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class TokenVerdict:
    token: str
    original: str  # the token before the generator replaced it (== token when untouched)
    p_replaced: float
    masked: bool  # the position was masked and re-sampled by the generator
    replaced: bool  # the generator's sample differs from the original (the ground truth)


def _check_text(text: str, tokenizer, max_tokens: int) -> list[int]:
    return tokenized(text, "the sentence", tokenizer=tokenizer, max_tokens=max_tokens)[1]


def discriminate(discriminator_model, tokenizer, text: str, *, max_tokens: int = 128) -> list[TokenVerdict]:
    """P(replaced) for every token of ``text`` (the user may have edited words themselves)."""
    from .inference import run_batched

    ids = _check_text(text, tokenizer, max_tokens)
    probs = run_batched(discriminator_model, tokenizer, [text.strip()], max_length=max_tokens,
                        head=lambda m, b: torch.sigmoid(m(**b).logits.float()))[0]  # (T,)
    tokens = tokenizer.convert_ids_to_tokens(ids)
    return [TokenVerdict(t, t, float(p), False, False) for t, p in zip(tokens, probs.tolist())]


def corrupt_and_discriminate(generator_model, discriminator_model, tokenizer, text: str, *, seed: int = 0,
                             mlm_probability: float = 0.15, max_tokens: int = 128) -> list[TokenVerdict]:
    """The full §2 path on one sentence: mask → generator samples → discriminator's P(replaced) per token."""
    if tokenizer.mask_token_id is None:
        raise ValueError("the tokenizer has no mask token: the generator cannot be given masked input")
    check_shared_vocabulary(generator_model, discriminator_model)
    ids = torch.tensor([_check_text(text, tokenizer, max_tokens)])
    rng = torch.Generator().manual_seed(int(seed))
    device = next(discriminator_model.parameters()).device
    masked = mask_for_generator(ids, mask_token_id=tokenizer.mask_token_id, vocab_size=len(tokenizer), generator=rng,
                                special_ids=tokenizer.all_special_ids, mlm_probability=mlm_probability)
    with torch.inference_mode():
        gen_logits = generator_model(input_ids=masked.input_ids.to(device)).logits.float().cpu()
        repl = sample_replacements(gen_logits, ids, masked.selected, generator=rng)
        probs = torch.sigmoid(discriminator_model(input_ids=repl.input_ids.to(device)).logits.float().cpu())[0]
    new = tokenizer.convert_ids_to_tokens(repl.input_ids[0].tolist())
    old = tokenizer.convert_ids_to_tokens(ids[0].tolist())
    return [TokenVerdict(t, o, float(p), bool(s), bool(r))
            for t, o, p, s, r in zip(new, old, probs.tolist(), masked.selected[0].tolist(),
                                     repl.is_replaced[0].tolist())]


def with_truth(verdicts: list[TokenVerdict], *, corrupted: list[str], original: list[str]) -> list[TokenVerdict] | None:
    """The truth for a re-scored sentence: when ``verdicts`` score exactly the tokens ``corrupted`` (a corrupted
    sentence, unedited) and ``original`` (its source) lines up with them token for token, each verdict gets its
    original token and ``replaced`` = the token differs from it. Otherwise (the user edited the words, or a
    replacement changed the token count) the truth is unknown: None.

    >>> v = [TokenVerdict("the", "the", 0.1, False, False), TokenVerdict("ate", "ate", 0.7, False, False)]
    >>> [x.replaced for x in with_truth(v, corrupted=["the", "ate"], original=["the", "cooked"])]
    [False, True]
    >>> with_truth(v, corrupted=["the", "cooked"], original=["the", "cooked"]) is None
    True
    """
    if [v.token for v in verdicts] != list(corrupted) or len(original) != len(corrupted):
        return None
    return [TokenVerdict(v.token, o, v.p_replaced, o != v.token, o != v.token) for v, o in zip(verdicts, original)]


def to_text(verdicts: list[TokenVerdict], tokenizer) -> str:
    """The corrupted sentence as plain text (special tokens dropped), for the user to edit."""
    specials = set(tokenizer.all_special_tokens)
    return tokenizer.convert_tokens_to_string([v.token for v in verdicts if v.token not in specials])


# --------------------------------------------------------------------------------------------
# A BERT encoder as an ELECTRA discriminator (same modules under other names)
# --------------------------------------------------------------------------------------------
def electra_config_from_bert(bert_config):
    """An ElectraConfig with exactly a BERT config's shapes (embedding_size = hidden_size: no projection)."""
    from transformers import ElectraConfig as HFElectraConfig

    keep = ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size", "hidden_act",
            "hidden_dropout_prob", "attention_probs_dropout_prob", "max_position_embeddings", "type_vocab_size",
            "initializer_range", "layer_norm_eps", "pad_token_id")
    return HFElectraConfig(embedding_size=bert_config.hidden_size, **{k: getattr(bert_config, k) for k in keep})


def discriminator_from_bert(bert):
    """ElectraForPreTraining with ``bert``'s (a transformers BertModel) embeddings and encoder copied in.

    Only ``discriminator_predictions`` (dense → GELU → 1 logit per token) is new; the BERT pooler has no ELECTRA
    counterpart and is dropped. Raises if any other weight fails to map.
    """
    from transformers import ElectraForPreTraining

    disc = ElectraForPreTraining(electra_config_from_bert(bert.config))
    state = {f"electra.{k}": v for k, v in bert.state_dict().items() if not k.startswith("pooler.")}
    result = disc.load_state_dict(state, strict=False)
    missing = [k for k in result.missing_keys if not k.startswith("discriminator_predictions.")]
    if missing or result.unexpected_keys:
        raise ValueError(f"BERT -> ELECTRA mapping failed: missing {missing}, unexpected {result.unexpected_keys}")
    return disc
