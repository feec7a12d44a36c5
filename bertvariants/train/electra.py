"""``electra``: replaced-token-detection pretraining (Clark et al. 2020, §2–3) from MiniLM.

The discriminator is an ``ElectraForPreTraining`` whose encoder is initialised from MiniLM: ELECTRA's and
BERT's embedding and transformer layers are the same modules under other names, so MiniLM's state dict maps
over one to one (:func:`bertvariants.electra.discriminator_from_bert`); only the per-token "replaced?" head is
new. The generator is an ``ElectraForMaskedLM`` ¼ the discriminator's width (§3.2: ¼–½ works best) that shares the token,
position and segment embeddings with it (§3.2 "Weight sharing"). The data path and the loss
L_MLM + λ·L_Disc with λ = 50 are :mod:`bertvariants.electra`'s (:class:`ReplacedTokenDetection`).

Outputs ``models/electra/generator`` and ``models/electra/discriminator`` (the ELECTRA tab's offline models),
scored by the evaluation harness's ``wikipedia-rtd`` benchmark (the same code as
``python -m evaluation run --task wikipedia-rtd --model models/electra``): the discriminator's AUROC at telling
replaced from original tokens on held-out Wikipedia documents (:func:`evaluation.metrics.pretraining.rtd_scores`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from evaluation.metrics.pretraining import BLOCK_TOKENS, EVAL_BLOCKS, HELDOUT_DOCS

from ..common import make_generator
from ..electra import (RTDConfig, ReplacedTokenDetection, discriminator_from_bert, generator_config,
                       mask_for_generator, rtd_loss)
from ..paths import portable_path
from .config import TrainConfig, base_model_path, output_dir
from .data import block_batches, wikipedia_blocks
from .loop import Setup, fit, seed_everything
from .lora import save_model, with_lora
from .records import RunReport, copy_tokenizer, finish, harness, heldout_options, save_checkpoint

NAME = "electra"


@dataclass(frozen=True)
class ElectraConfig(TrainConfig):
    steps: int = 250
    batch_size: int = 8
    lr: float = 1e-4
    max_length: int = BLOCK_TOKENS  # block length; the harness's wikipedia-rtd blocks have the same
    generator_multiplier: float = 0.25  # §3.2: generator width / discriminator width
    disc_weight: float = 50.0  # λ (§2, Appendix A)
    heldout_docs: int = HELDOUT_DOCS  # last documents of the corpus, never trained on
    eval_blocks: int = EVAL_BLOCKS
    # a trained masked LM (a directory, or "served" = the model serving electra-generator here) used as a frozen
    # generator: only the discriminator trains (a LoRA adapter when lora_rank > 0). None = the joint recipe.
    generator: str | None = None


def build_pair(base: str, *, multiplier: float):
    """(generator, discriminator): discriminator from the BERT at ``base``, a fresh narrower generator."""
    from transformers import BertModel, ElectraForMaskedLM

    disc = discriminator_from_bert(BertModel.from_pretrained(base, add_pooling_layer=False))
    gen = ElectraForMaskedLM(generator_config(disc.config, multiplier=multiplier))
    return gen, disc


def corrupt_at(input_ids: torch.Tensor, selected: torch.Tensor, gen_logits: torch.Tensor, *, temperature: float,
               rng: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """§2: sample x̂ ~ softmax(logits / T) at the ``selected`` (B, T) positions (``gen_logits``: (M, V), one row
    per selected position) and put the samples in; no gradient flows through sampling. Returns (corrupted ids,
    is_replaced), where a sample equal to the original counts as original."""
    with torch.no_grad():
        probs = torch.softmax(gen_logits.detach().float() / temperature, dim=-1)
        draws = torch.multinomial(probs, 1, generator=rng).squeeze(-1) if len(probs) else input_ids[selected]
    corrupted = input_ids.clone()
    corrupted[selected] = draws.to(input_ids.dtype)
    return corrupted, selected & (corrupted != input_ids)


class SparseRTD(nn.Module):
    """ELECTRA's §2 step with the generator's vocabulary projection computed only at the masked positions.

    Same maths as :class:`bertvariants.electra.ReplacedTokenDetection` (whose weight sharing it uses) — mask
    15% → sample x̂ ~ p_G at masked positions → discriminator on every token → L_MLM + λ·L_Disc
    (:func:`bertvariants.electra.rtd_loss`) — but the (B, T, 30522) generator logits, the costliest tensor of a
    CPU step, shrink to (M, 30522) for the M ≈ 0.15·B·T masked tokens.
    """

    def __init__(self, rtd: ReplacedTokenDetection):
        super().__init__()
        self.rtd = rtd

    @property
    def generator_model(self):
        return self.rtd.generator_model

    @property
    def discriminator_model(self):
        return self.rtd.discriminator_model

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, *, rng: torch.Generator) -> dict:
        gen, disc, cfg = self.rtd.generator_model, self.rtd.discriminator_model, self.rtd.config
        masked = mask_for_generator(input_ids, mask_token_id=self.rtd.mask_token_id, vocab_size=disc.config.vocab_size,
                                    generator=rng, special_ids=self.rtd.special_ids, special_mask=attention_mask == 0,
                                    mlm_probability=cfg.mlm_probability, mask_ratio=cfg.mask_ratio)
        sel = masked.selected  # (B, T)
        hidden = gen.electra(input_ids=masked.input_ids, attention_mask=attention_mask).last_hidden_state
        gen_logits = gen.generator_lm_head(gen.generator_predictions(hidden[sel]))  # (M, V)
        corrupted, is_replaced = corrupt_at(input_ids, sel, gen_logits, temperature=cfg.temperature, rng=rng)
        disc_logits = disc(input_ids=corrupted, attention_mask=attention_mask).logits  # (B, T)
        losses = rtd_loss(gen_logits, input_ids[sel], disc_logits, is_replaced, attention_mask,
                          disc_weight=cfg.disc_weight)
        keep = attention_mask.bool()
        acc = ((disc_logits > 0) == is_replaced)[keep].float().mean()
        return {"loss": losses.loss, "mlm_loss": losses.mlm_loss, "disc_loss": losses.disc_loss, "disc_acc": acc}


class FrozenGeneratorRTD(nn.Module):
    """ELECTRA's §2 step against a fixed, already trained generator (the masked LM the tabs serve): mask 15% →
    sample x̂ ~ p_G (no gradient) → the discriminator on every token, loss λ·L_Disc (the generator's MLM loss is
    logged, not trained). §3.2's weight sharing does not apply: the generator does not change."""

    def __init__(self, generator_model, discriminator_model, *, mask_token_id: int, special_ids=(),
                 config: RTDConfig = RTDConfig()):
        super().__init__()
        from evaluation.metrics.pretraining import mlm_head

        self.generator_model, self.discriminator_model, self.config = generator_model, discriminator_model, config
        self.generator_model.requires_grad_(False)
        self.head = mlm_head(generator_model)
        self.mask_token_id, self.special_ids = mask_token_id, tuple(special_ids)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, *, rng: torch.Generator) -> dict:
        gen, disc, cfg = self.generator_model, self.discriminator_model, self.config
        masked = mask_for_generator(input_ids, mask_token_id=self.mask_token_id, vocab_size=disc.config.vocab_size,
                                    generator=rng, special_ids=self.special_ids, special_mask=attention_mask == 0,
                                    mlm_probability=cfg.mlm_probability, mask_ratio=cfg.mask_ratio)
        sel = masked.selected  # (B, T)
        with torch.no_grad():  # a frozen generator: sampling only
            hidden = gen.base_model(input_ids=masked.input_ids, attention_mask=attention_mask).last_hidden_state
            gen_logits = self.head(hidden[sel]).float()  # (M, V)
        corrupted, is_replaced = corrupt_at(input_ids, sel, gen_logits, temperature=cfg.temperature, rng=rng)
        disc_logits = disc(input_ids=corrupted, attention_mask=attention_mask).logits  # (B, T)
        losses = rtd_loss(gen_logits, input_ids[sel], disc_logits, is_replaced, attention_mask,
                          disc_weight=cfg.disc_weight)
        acc = ((disc_logits > 0) == is_replaced)[attention_mask.bool()].float().mean()
        return {"loss": cfg.disc_weight * losses.disc_loss, "mlm_loss": losses.mlm_loss, "disc_loss": losses.disc_loss,
                "disc_acc": acc, "replaced": is_replaced.float().sum() / attention_mask.sum()}


def frozen_generator_dir(cfg: ElectraConfig):
    """The generator directory: ``cfg.generator``, or the masked LM serving ``electra-generator`` here."""
    from ..serving import local_checkpoint

    return local_checkpoint("electra-generator", None if cfg.generator == "served" else cfg.generator,
                            missing="generator {path} is not a masked-LM checkpoint directory (build one with "
                                    "`python -m bertvariants.train mlm-dynamic`)")


class rtd_loss_fn:  # noqa: N801 - used like the other recipes' loss functions
    """``loss_fn`` of replaced-token detection: the generator samples its replacements from a generator of its own
    (one per device), whose state ``--resume`` saves and restores (:mod:`bertvariants.train.resume`)."""

    def __init__(self, rng_seed: int):
        self.rng_seed = rng_seed
        self.rngs: dict[str, torch.Generator] = {}

    def _rng(self, device) -> torch.Generator:
        return self.rngs.setdefault(str(device), make_generator(self.rng_seed, device))

    def __call__(self, model: SparseRTD, batch):
        return model(batch["input_ids"], batch["attention_mask"], rng=self._rng(batch["input_ids"].device))

    def state_dict(self) -> dict:
        return {device: rng.get_state() for device, rng in self.rngs.items()}

    def load_state_dict(self, state: dict) -> None:
        for device, rng_state in state.items():
            self._rng(device).set_state(rng_state)


def run(cfg: ElectraConfig, *, progress: bool = True) -> RunReport:
    from transformers import AutoTokenizer

    seed_everything(cfg.seed)
    base = base_model_path(cfg)
    tokenizer = AutoTokenizer.from_pretrained(base)
    train, _, corpus = wikipedia_blocks(cfg, tokenizer, block=cfg.max_length, heldout_docs=cfg.heldout_docs)
    specials = tuple(tokenizer.all_special_ids)
    if cfg.generator:
        rtd = frozen_setup(cfg, base, tokenizer, specials)
    else:
        gen, disc = build_pair(base, multiplier=cfg.generator_multiplier)
        rtd = SparseRTD(ReplacedTokenDetection(gen, disc, mask_token_id=tokenizer.mask_token_id, special_ids=specials,
                                               config=RTDConfig(disc_weight=cfg.disc_weight)))

    def batches():
        for _, ids in block_batches(train, batch_size=cfg.batch_size, seed=cfg.seed):
            yield {"input_ids": ids, "attention_mask": torch.ones_like(ids)}

    setup = Setup(model=rtd, batches=batches(), loss_fn=rtd_loss_fn(cfg.seed + 1))
    result = fit(setup, cfg, desc=NAME, progress=progress)
    rtd = setup.model
    out = output_dir(cfg, NAME)
    if cfg.generator:
        save_frozen_pair(cfg, rtd, tokenizer, out)
    else:
        save_checkpoint(rtd.generator_model, tokenizer, out / "generator")
        save_checkpoint(rtd.discriminator_model, tokenizer, out / "discriminator")
        copy_tokenizer(out / "discriminator", out)
    scored = harness("wikipedia-rtd", out, data=corpus, limit=cfg.eval_limit, options=heldout_options(cfg))
    scored = {**scored, "details": {**scored["details"], "generator": portable_path(out / "generator"),
                                    "discriminator": portable_path(out / "discriminator")}}
    sharing = rtd.rtd.sharing.shared_parameters if not cfg.generator and rtd.rtd.sharing else 0
    return finish(recipe=NAME, name=NAME, title="ELECTRA from MiniLM (generator + discriminator)", cfg=cfg,
                  fit=result, out=out, paper="Clark et al. 2020 §2 replaced-token detection, §3.2 weight sharing",
                  result=scored, variant="ELECTRA",
                  data={"corpus": str(corpus), "train_blocks": f"{len(train)} × {cfg.max_length} tokens",
                        "heldout": f"last {cfg.heldout_docs} documents, {scored['n']} blocks, "
                                   f"mask seed {scored['details']['heldout']['mask_seed']} (evaluation harness)"},
                  notes=(f"`generator/`: the frozen masked LM {portable_path(frozen_generator_dir(cfg))} "
                         f"({generator_size(frozen_generator_dir(cfg))}, kept fixed); `discriminator/`: ElectraForPreTraining "
                         f"initialised from MiniLM{' + LoRA r=' + str(cfg.lora_rank) if cfg.lora_rank else ''}. "
                         f"Loss = {cfg.disc_weight:g}·L_Disc." if cfg.generator else
                         f"`generator/`: ElectraForMaskedLM, width ×{cfg.generator_multiplier}; `discriminator/`: "
                         f"ElectraForPreTraining initialised from MiniLM. Shared embedding parameters: {sharing:,}. "
                         f"Loss = L_MLM + {cfg.disc_weight:g}·L_Disc."))


def generator_size(path) -> str:
    """How big a frozen generator is next to the 6-layer discriminator (§3.2 finds ¼–½ of its size best)."""
    from pathlib import Path

    from ..serving.shipped import ShippedSpec, is_shipped

    layers = len(ShippedSpec.read(Path(path)).layers) if is_shipped(Path(path)) else 0
    if layers:
        return (f"{layers} of MiniLM's 6 layers at full width: {layers / 6:.2g} of the discriminator's transformer "
                "layers and FLOPs, inside §3.2's ¼–½")
    return "full MiniLM size: larger than §3.2's ¼–½"


def frozen_setup(cfg: ElectraConfig, base: str, tokenizer, specials) -> FrozenGeneratorRTD:
    """The discriminator (MiniLM as ElectraForPreTraining, + LoRA) against the frozen served generator."""
    from transformers import BertModel

    from ..serving import load_checkpoint

    generator = load_checkpoint(str(frozen_generator_dir(cfg)), "masked-lm", device="cpu").model
    disc = discriminator_from_bert(BertModel.from_pretrained(base, add_pooling_layer=False))
    disc.electra.embeddings.word_embeddings.weight.requires_grad_(False)
    if cfg.lora_rank:
        disc = with_lora(disc, "electra-discriminator", rank=cfg.lora_rank)
    return FrozenGeneratorRTD(generator, disc, mask_token_id=tokenizer.mask_token_id, special_ids=specials,
                              config=RTDConfig(disc_weight=cfg.disc_weight))


def save_frozen_pair(cfg: ElectraConfig, rtd: FrozenGeneratorRTD, tokenizer, out) -> None:
    """``out/discriminator`` (compact with LoRA, else full) + ``out/generator``: a copy of the frozen generator's
    files, so ``out`` is the pair the harness's wikipedia-rtd benchmark reads."""
    import shutil

    save_model(rtd.discriminator_model, tokenizer, out / "discriminator", cfg, name="electra-discriminator",
               kind="electra-discriminator", base="minilm-electra")
    src = frozen_generator_dir(cfg)
    if (out / "generator").exists():
        shutil.rmtree(out / "generator")
    shutil.copytree(src, out / "generator", ignore=shutil.ignore_patterns("loss_curve.csv"))
    copy_tokenizer(src, out)
