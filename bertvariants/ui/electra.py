"""ELECTRA tab: the RTD data path, generator replacements → discriminator's P(replaced) per token (APIs below)."""

from __future__ import annotations

import gradio as gr
import pandas as pd
import torch

from .. import electra
from ..models import get_model, packaged_tokenizer
from .common import action, claim_markdown, number, rounded, safe, text

GENERATOR_TASK = "electra-generator"
DISCRIMINATOR_TASK = "electra-discriminator"
MAX_CHARS = 1000
MAX_TOKENS = 128


def _highlight(verdicts: list[electra.TokenVerdict], specials: set[str]) -> list[tuple[str, float | None]]:
    """(text, 2·P(replaced) − 1) pieces for gr.HighlightedText, whose colour scale runs from −1 to 1:
    red = replaced (P → 1), blue = original (P → 0), no colour at P = 0.5. '##' pieces join the previous word."""
    out = []
    for v in verdicts:
        if v.token in specials:
            continue
        piece = v.token[2:] if v.token.startswith("##") else " " + v.token
        out.append((piece, round(2 * v.p_replaced - 1, 3)))
    return out


def _table(verdicts: list[electra.TokenVerdict]) -> pd.DataFrame:
    return pd.DataFrame([{"token": v.token, "original": v.original, "masked": v.masked,
                          "replaced (truth)": v.replaced, "P(replaced)": round(v.p_replaced, 4),
                          "flagged": v.p_replaced > 0.5} for v in verdicts]).pipe(rounded)


@safe
def data_path(sentence: str, p_original, seed):
    """ELECTRA's pretraining data path with a stand-in generator, no weights needed (Clark et al. 2020 §2;
    public API `electra_data_path`).

    Args:
        sentence: the text to corrupt (≤ 128 tokens).
        p_original: the stand-in generator's probability of sampling the original token (0–0.99).
        seed: seed for the masking and the samples.

    Returns: an explanation with the losses of an untrained pair (markdown), and a per-token table."""
    text(sentence, "Sentence", max_chars=MAX_CHARS)
    q = number(p_original, "generator accuracy", lo=0.0, hi=0.99)
    seed = number(seed, "seed", lo=0, hi=2**31 - 1, integer=True)
    tok = packaged_tokenizer()
    ids = tok(sentence.strip())["input_ids"]
    if len(ids) > MAX_TOKENS:
        raise ValueError(f"the sentence has {len(ids)} tokens; the limit here is {MAX_TOKENS}")
    ex = electra.data_path_example(torch.tensor(ids), tok, p_original=q, seed=seed)
    sel, rep = ex.masked.selected[0], ex.replacements.is_replaced[0]
    rows = [{"token": t, "masked for the generator": bool(s), "generator sample": g if s else "",
             "discriminator target": ("replaced" if r else "original")}
            for t, g, s, r in zip(ex.tokens, ex.sampled_tokens, sel.tolist(), rep.tolist())]
    u = ex.untrained
    md = (f"{int(sel.sum())} of {len(ids)} tokens masked; **{int(rep.sum())} replaced** — samples equal to the "
          f"original count as original. The generator (MLM) learns from the {int(sel.sum())} masked tokens only; "
          f"the discriminator learns from all {len(ids)}.\n\nLosses of an untrained pair (uniform generator, "
          f"discriminator at P=0.5): MLM = ln V = {u.mlm_loss.item():.3f}, disc = ln 2 = {u.disc_loss.item():.3f}, "
          f"total = MLM + {electra.DISC_WEIGHT:g}·disc = **{u.loss.item():.2f}** (λ = 50 balances the per-token "
          "binary loss against the much larger vocabulary-wide MLM loss).")
    return md, pd.DataFrame(rows)


@safe
def replace_and_detect(sentence: str, seed, mask_rate):
    """Mask, let the generator replace the masked tokens, and have the discriminator score every
    token (Clark et al. 2020 §2; public API `electra_replace`).

    Args:
        sentence: the text to corrupt (≤ 128 tokens).
        seed: seed for the masking and the generator's samples.
        mask_rate: share of tokens masked (0.01–0.5; the paper uses 0.15).

    Returns: a summary (markdown), the tokens coloured by P(replaced), the corrupted sentence, a per-token table."""
    text(sentence, "Sentence", max_chars=MAX_CHARS)
    seed = number(seed, "seed", lo=0, hi=2**31 - 1, integer=True)
    rate = number(mask_rate, "mask rate", lo=0.01, hi=0.5)
    gen, disc = get_model(GENERATOR_TASK), get_model(DISCRIMINATOR_TASK)
    verdicts = electra.corrupt_and_discriminate(gen.model, disc.model, disc.tokenizer, sentence, seed=seed,
                                                mlm_probability=rate, max_tokens=MAX_TOKENS)
    specials = set(disc.tokenizer.all_special_tokens)
    n_masked = sum(v.masked for v in verdicts)
    n_repl = sum(v.replaced for v in verdicts)
    caught = sum(v.replaced and v.p_replaced > 0.5 for v in verdicts)
    if n_masked == 0:
        md = ("No position was selected at this mask rate and seed, so nothing was replaced: raise the rate or "
              "change the seed.\n\n")
    else:
        md = ""
    md += (f"{n_masked} positions masked; the generator changed **{n_repl}** of them (a sample equal to the original "
          f"counts as original); the discriminator flags {caught}/{n_repl} of the replaced tokens at P > 0.5.\n\n"
          f"Generator: {gen.label} · discriminator: {disc.label} · {generator_size(gen.model, disc.model)}")
    return md, _highlight(verdicts, specials), electra.to_text(verdicts, disc.tokenizer), _table(verdicts)


def generator_size(gen, disc) -> str:
    """How the generator's size compares with the discriminator's (§3.2: ¼–½ of its width works best)."""
    g, d = gen.config, disc.config
    if g.hidden_size < d.hidden_size:
        return (f"generator width {g.hidden_size} = ×{g.hidden_size / d.hidden_size:.2g} the discriminator's "
                f"{d.hidden_size} (§3.2: ¼–½ works best)")
    return (f"generator {g.num_hidden_layers} of the discriminator's {d.num_hidden_layers} layers at its width "
            f"{d.hidden_size}: ×{g.num_hidden_layers / d.num_hidden_layers:.2g} its transformer compute "
            "(§3.2 sizes generators at ¼–½ of the discriminator)")


@safe
def detect(sentence: str):
    """The discriminator's P(replaced) for every token of any sentence (public API `electra_detect`).

    Args:
        sentence: the text to check, e.g. a sentence with a word swapped for a plausible wrong one.

    Returns: the flagged tokens (markdown), the tokens coloured by P(replaced), and a per-token table."""
    text(sentence, "The corrupted sentence", max_chars=MAX_CHARS)
    disc = get_model(DISCRIMINATOR_TASK)
    verdicts = electra.discriminate(disc.model, disc.tokenizer, sentence, max_tokens=MAX_TOKENS)
    specials = set(disc.tokenizer.all_special_tokens)
    flagged = [v.token for v in verdicts if v.p_replaced > 0.5 and v.token not in specials]
    md = f"Flagged as replaced (P > 0.5): {', '.join(flagged) if flagged else 'none'} · served by {disc.label}"
    return md, _highlight(verdicts, set(disc.tokenizer.all_special_tokens)), _table(verdicts)


def build(spec, tab) -> None:
    gr.Markdown("§2: mask 15% → the generator samples a token for each masked position → the discriminator "
                "predicts for every token whether it was replaced. Loss = MLM(generator) + λ·BCE(discriminator), "
                f"λ = {electra.DISC_WEIGHT:g}. Colour = the discriminator's P(replaced).")
    gr.Markdown(claim_markdown("RTD vs MLM pretraining, then SST-2 (ELECTRA §3.3)",
                               "ELECTRA's claim (§3.3: replaced-token detection learns more per step than MLM)"))
    with gr.Tab("Data path (no weights)"):
        dp_sentence = gr.Textbox(label="Sentence", value="The chef cooked the meal in the kitchen and served it.")
        with gr.Row():
            q = gr.Slider(0.0, 0.99, value=0.3, step=0.01, label="stand-in generator accuracy P(original)")
            dp_seed = gr.Number(value=0, precision=0, label="seed")
        dp_btn = action("Run the data path")
        dp_md = gr.Markdown(visible=False)
        dp_df = gr.Dataframe(label="Per token", visible=False)
        dp_btn.click(data_path, [dp_sentence, q, dp_seed], [dp_md, dp_df], api_name="electra_data_path")
    with gr.Tab("Generator + discriminator"):
        _models_view()


def _models_view() -> None:
    sentence = gr.Textbox(label="Sentence", value="The chef cooked the meal in the kitchen and served it to guests.")
    with gr.Row():
        seed = gr.Number(value=0, precision=0, label="seed")
        rate = gr.Slider(0.05, 0.5, value=0.15, step=0.01, label="mask rate")
    r_btn = action("Generator replaces → discriminator detects")
    r_md = gr.Markdown(visible=False)
    r_hl = gr.HighlightedText(label="Discriminator: red = replaced, blue = original (colour = 2·P(replaced) − 1)",
                              visible=False)
    edited = gr.Textbox(label="The corrupted sentence — edit words yourself (or type any sentence), then ask the "
                              "discriminator", value="The chef ate the meal in the kitchen and served it to guests.")
    d_btn = action("Detect replaced words", variant="secondary")
    d_md = gr.Markdown(visible=False)
    d_hl = gr.HighlightedText(label="Your text: red = flagged as replaced, blue = original", visible=False)
    table = gr.Dataframe(label="Per token", visible=False)
    r_btn.click(replace_and_detect, [sentence, seed, rate], [r_md, r_hl, edited, table], api_name="electra_replace")
    d_btn.click(detect, [edited], [d_md, d_hl, table], api_name="electra_detect")
