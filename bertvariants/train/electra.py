"""``electra``: replaced-token-detection pretraining (Clark et al. 2020, §2–3) from MiniLM.

The discriminator is an ``ElectraForPreTraining`` whose encoder is initialised from MiniLM: ELECTRA's and
BERT's embedding and transformer layers are the same modules under other names, so MiniLM's state dict maps
over one to one (:func:`bertvariants.electra.discriminator_from_bert`); only the per-token "replaced?" head is
new. The generator is an ``ElectraForMaskedLM`` ¼ the discriminator's width (§3.2: ¼–½ works best) that shares
the token, position and segment embeddings with it (§3.2 "Weight sharing"). The data path and the loss
L_MLM + λ·L_Disc with λ = 50 are :mod:`bertvariants.electra`'s :class:`ReplacedTokenDetection`, run with its
sparse head (the generator's vocabulary projection only at the masked positions); with ``generator=`` its
frozen-generator option (only the discriminator trains).

Outputs ``models/electra/generator`` and ``models/electra/discriminator`` (the ELECTRA tab's offline models),
scored by the evaluation harness's ``wikipedia-rtd`` benchmark (the same code as
``python -m evaluation run --task wikipedia-rtd --model models/electra``): the discriminator's AUROC at telling
replaced from original tokens on held-out Wikipedia documents (:func:`evaluation.metrics.pretraining.rtd_scores`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from evaluation.metrics.pretraining import BLOCK_TOKENS, EVAL_BLOCKS, HELDOUT_DOCS

from ..common import make_generator
from ..electra import (
    ReplacedTokenDetection,
    RTDConfig,
    RTDOutput,
    discriminator_from_bert,
    generator_config,
    generator_size,
)
from ..lab_step import with_lora
from ..paths import portable_path
from ..serving import load_checkpoint
from ..serving.sources import local_checkpoint
from .config import TrainConfig, base_model_path, output_dir
from .data import block_batches, wikipedia_blocks
from .loop import Setup, fit, seed_everything
from .lora import save_model
from .records import (
    RunReport,
    copy_tokenizer,
    finish,
    harness,
    heldout_options,
    save_checkpoint,
)

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


def frozen_generator_dir(cfg: ElectraConfig):
    """The generator directory: ``cfg.generator``, or the masked LM serving ``electra-generator`` here."""
    return local_checkpoint("electra-generator", None if cfg.generator == "served" else cfg.generator,
                            missing="generator {path} is not a masked-LM checkpoint directory (build one with "
                                    "`python -m bertvariants.train mlm-dynamic`)")


class rtd_loss_fn:  # noqa: N801 - used like the other recipes' loss functions
    """``loss_fn`` of replaced-token detection: :class:`ReplacedTokenDetection`'s step, its named output turned into
    the loss curve's logs. The generator samples its replacements from a generator of its own (one per device),
    whose state ``--resume`` saves and restores (:mod:`bertvariants.train.resume`). ``frozen_generator`` also
    logs the share of tokens replaced (a fixed generator's samples do not get harder as it trains)."""

    def __init__(self, rng_seed: int, *, frozen_generator: bool = False):
        self.rng_seed, self.frozen_generator = rng_seed, frozen_generator
        self.rngs: dict[str, torch.Generator] = {}

    def _rng(self, device) -> torch.Generator:
        return self.rngs.setdefault(str(device), make_generator(self.rng_seed, device))

    def __call__(self, model: ReplacedTokenDetection, batch) -> dict:
        out: RTDOutput = model(batch["input_ids"], batch["attention_mask"], rng=self._rng(batch["input_ids"].device))
        logs = {"loss": out.loss, "mlm_loss": out.mlm_loss, "disc_loss": out.disc_loss, "disc_acc": out.disc_accuracy}
        return {**logs, "replaced": out.replaced_fraction} if self.frozen_generator else logs

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
        rtd = ReplacedTokenDetection(gen, disc, mask_token_id=tokenizer.mask_token_id, special_ids=specials,
                                     config=RTDConfig(disc_weight=cfg.disc_weight), sparse_head=True)

    def batches():
        for _, ids in block_batches(train, batch_size=cfg.batch_size, seed=cfg.seed):
            yield {"input_ids": ids, "attention_mask": torch.ones_like(ids)}

    loss_fn = rtd_loss_fn(cfg.seed + 1, frozen_generator=bool(cfg.generator))
    setup = Setup(model=rtd, batches=batches(), loss_fn=loss_fn)
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
    return finish(recipe=NAME, name=NAME, title="ELECTRA from MiniLM (generator + discriminator)", cfg=cfg,
                  fit=result, out=out, paper="Clark et al. 2020 §2 replaced-token detection, §3.2 weight sharing",
                  result=scored, variant="ELECTRA",
                  data={"corpus": str(corpus), "train_blocks": f"{len(train)} × {cfg.max_length} tokens",
                        "heldout": f"last {cfg.heldout_docs} documents, {scored['n']} blocks, "
                                   f"mask seed {scored['details']['heldout']['mask_seed']} (evaluation harness)"},
                  notes=run_notes(cfg, rtd))


def run_notes(cfg: ElectraConfig, rtd: ReplacedTokenDetection) -> str:
    """The record's note: what ``generator/`` and ``discriminator/`` hold and the loss that trained."""
    if cfg.generator:
        lora = f" + LoRA r={cfg.lora_rank}" if cfg.lora_rank else ""
        return (f"`generator/`: the frozen masked LM {portable_path(frozen_generator_dir(cfg))} "
                f"({generator_size(rtd.generator_model, rtd.discriminator_model)}, kept fixed); `discriminator/`: "
                f"ElectraForPreTraining initialised from MiniLM{lora}. Loss = {cfg.disc_weight:g}·L_Disc.")
    sharing = rtd.sharing.shared_parameters if rtd.sharing else 0
    return (f"`generator/`: ElectraForMaskedLM, width ×{cfg.generator_multiplier}; `discriminator/`: "
            f"ElectraForPreTraining initialised from MiniLM. Shared embedding parameters: {sharing:,}. "
            f"Loss = L_MLM + {cfg.disc_weight:g}·L_Disc.")


def frozen_setup(cfg: ElectraConfig, base: str, tokenizer, specials) -> ReplacedTokenDetection:
    """The discriminator (MiniLM as ElectraForPreTraining, + LoRA) against the frozen served generator."""
    from transformers import BertModel

    generator = load_checkpoint(str(frozen_generator_dir(cfg)), "masked-lm", device="cpu").model
    disc = discriminator_from_bert(BertModel.from_pretrained(base, add_pooling_layer=False))
    disc.electra.embeddings.word_embeddings.weight.requires_grad_(False)
    if cfg.lora_rank:
        disc = with_lora(disc, "electra-discriminator", rank=cfg.lora_rank)
    return ReplacedTokenDetection(generator, disc, mask_token_id=tokenizer.mask_token_id, special_ids=specials,
                                  config=RTDConfig(disc_weight=cfg.disc_weight), frozen_generator=True)


def save_frozen_pair(cfg: ElectraConfig, rtd: ReplacedTokenDetection, tokenizer, out) -> None:
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
