"""ELECTRA tab: the RTD data path, generator replacements → discriminator's P(replaced) per token (APIs below)."""

from __future__ import annotations

import gradio as gr
import pandas as pd
import torch

from ..checks import number, text, token_count
from .. import electra
from ..common import wordpiece_piece
from ..serving import get_model, packaged_tokenizer
from .common import action, claim, explanation, readable, safe

GENERATOR_TASK = "electra-generator"
DISCRIMINATOR_TASK = "electra-discriminator"
MAX_CHARS = 1000
MAX_TOKENS = 128


REPLACED, ORIGINAL = "replaced (P > 0.5)", "original (P ≤ 0.5)"
COLORS = {REPLACED: "#ef4444", ORIGINAL: "#60a5fa"}  # the legend's words: red = replaced, blue = original


def _highlight(verdicts: list[electra.TokenVerdict], specials: set[str]) -> list[tuple[str, str]]:
    """(text, verdict) pieces for gr.HighlightedText: every word red when the discriminator flags it (P > 0.5), blue
    otherwise — one colour per verdict, so a flagged word is as visible as any other (a score scale would draw
    P = 0.51 almost transparent). '##' pieces join the previous word."""
    out = []
    for v in verdicts:
        if v.token in specials:
            continue
        out.append((wordpiece_piece(v.token), REPLACED if v.p_replaced > 0.5 else ORIGINAL))
    return out


def _table(verdicts: list[electra.TokenVerdict], *, truth: bool) -> pd.DataFrame:
    """Per token: P(replaced) and the discriminator's verdict; with ``truth`` also whether it really was replaced,
    and by what ("replaced (chef → buildings)"). A sentence the user typed has no truth, so those columns are left
    out."""
    rows = []
    for v in verdicts:
        row = {"token": v.token, "P(replaced)": v.p_replaced,
               "verdict": "replaced" if v.p_replaced > 0.5 else "original"}
        if truth:  # three columns and the truth: fits a phone's width
            row["truth"] = f"replaced ({v.original} → {v.token})" if v.replaced else "original"
        rows.append(row)
    return readable(pd.DataFrame(rows))


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
    token_count(len(ids), "the sentence", limit=MAX_TOKENS)
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

    Returns: a summary (markdown), the tokens coloured by the discriminator's verdict, the corrupted sentence, a
    per-token table (with what the generator replaced), and the source of the corrupted sentence (page state)."""
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
    false_alarms = sum(not v.replaced and v.p_replaced > 0.5 and v.token not in specials for v in verdicts)
    swaps = ", ".join(f"{v.original} → **{v.token}**" for v in verdicts if v.replaced)
    if n_masked == 0:
        md = ("No position was selected at this mask rate and seed, so nothing was replaced: raise the rate or "
              "change the seed.\n\n")
    else:
        md = ""
    md += (f"{n_masked} positions masked; the generator changed **{n_repl}** of them"
           + (f" ({swaps})" if swaps else "") + " — a sample equal to the original counts as original. The "
           f"discriminator flags **{caught} of the {n_repl}** replaced tokens (P > 0.5) and {false_alarms} original "
           f"one(s).\n\nGenerator: {gen.label} · discriminator: {disc.label} · "
           f"{electra.generator_size(gen.model, disc.model)}")
    corrupted = electra.to_text(verdicts, disc.tokenizer)
    return (md, _highlight(verdicts, specials), corrupted, _table(verdicts, truth=True),
            {"original": sentence, "corrupted": corrupted})


@safe
def detect(sentence: str, source: dict | None = None):
    """The discriminator's P(replaced) for every token of any sentence (public API `electra_detect`).

    Args:
        sentence: the text to check, e.g. a sentence with a word swapped for a plausible wrong one.
        source: (page state) {"original", "corrupted"}: the last corrupted sentence and its source; when
            ``sentence`` is that corrupted sentence unedited, the table also shows the truth.

    Returns: the flagged tokens (markdown), the tokens coloured by the discriminator's verdict, and a per-token
    table (with the truth only where it is known)."""
    text(sentence, "The corrupted sentence", max_chars=MAX_CHARS)
    disc = get_model(DISCRIMINATOR_TASK)
    verdicts = electra.discriminate(disc.model, disc.tokenizer, sentence, max_tokens=MAX_TOKENS)
    specials = set(disc.tokenizer.all_special_tokens)
    flagged = [v.token for v in verdicts if v.p_replaced > 0.5 and v.token not in specials]
    known = None
    if isinstance(source, dict) and source.get("original") and source.get("corrupted"):
        tokens = [disc.tokenizer.convert_ids_to_tokens(disc.tokenizer(str(source[k]).strip())["input_ids"])
                  for k in ("corrupted", "original")]
        known = electra.with_truth(verdicts, corrupted=tokens[0], original=tokens[1])
    md = f"Flagged as replaced (P > 0.5): **{', '.join(flagged) if flagged else 'none'}**"
    if known is None:
        md += (" · you edited the sentence, so which words were really replaced is not known here: the table shows "
               "the discriminator's verdict only")
    else:
        swaps = [v for v in known if v.replaced]
        caught = sum(v.p_replaced > 0.5 for v in swaps)
        md += (f" · truth: {len(swaps)} word(s) replaced ("
               + (", ".join(f"{v.original} → {v.token}" for v in swaps) or "none") + f"), {caught} of them flagged")
    md += f" · served by {disc.label}"
    return md, _highlight(verdicts, specials), _table(known or verdicts, truth=known is not None)


DEFAULT_SENTENCE = "The chef cooked the meal in the kitchen and served it to guests."
# the generator's own corruption of DEFAULT_SENTENCE at seed 0 (chef → buildings, cooked → of, to → are): "Detect"
# on it shows the truth next to the verdicts; the discriminator flags "buildings" only
DEFAULT_EDITED = "The buildings of the meal in the kitchen and served it are guests."


def build(spec, tab) -> None:
    with explanation("How it works (§2) and what was measured here"):
        gr.Markdown("§2: mask 15% → the generator samples a token for each masked position → the discriminator "
                    "predicts for every token whether it was replaced. Loss = MLM(generator) + λ·BCE(discriminator), "
                    f"λ = {electra.DISC_WEIGHT:g}. Colour = the discriminator's verdict: red = replaced (P > 0.5), "
                    "blue = original.")
        claim("RTD vs MLM pretraining, then SST-2 (ELECTRA §3.3)",
              "ELECTRA's claim (§3.3: replaced-token detection learns more per step than MLM)")
    # the models view first: on a phone the sub-tab bar shows one or two tabs and puts the rest behind "⋯"
    with gr.Tab("Generator + discriminator"):
        _models_view()
    with gr.Tab("Data path"):  # short: fits beside the first at 390 px
        gr.Markdown("The data path without weights: a stand-in generator that keeps each masked word with "
                    "probability P(original), and the labels the discriminator would learn.")
        dp_sentence = gr.Textbox(label="Sentence", value="The chef cooked the meal in the kitchen and served it.")
        with gr.Row():
            q = gr.Slider(0.0, 0.99, value=0.3, step=0.01, label="stand-in generator accuracy P(original)")
            dp_seed = gr.Number(value=0, precision=0, label="seed")
        dp_btn = action("Run the data path")
        dp_md = gr.Markdown(visible=False)
        dp_df = gr.Dataframe(label="Per token", visible=False)
        dp_btn.click(data_path, [dp_sentence, q, dp_seed], [dp_md, dp_df], api_name="electra_data_path")


def _models_view() -> None:
    sentence = gr.Textbox(label="Sentence", value=DEFAULT_SENTENCE)
    with gr.Row():
        seed = gr.Number(value=0, precision=0, label="seed")
        rate = gr.Slider(0.05, 0.5, value=0.15, step=0.01, label="mask rate")
    r_btn = action("Generator replaces → discriminator detects")
    r_md = gr.Markdown(visible=False)
    r_hl = gr.HighlightedText(label="Discriminator: red = replaced, blue = original", color_map=COLORS,
                              show_legend=True, visible=False)
    edited = gr.Textbox(label="The corrupted sentence — edit words yourself (or type any sentence), then ask the "
                              "discriminator", value=DEFAULT_EDITED)
    # where the corrupted sentence came from (the truth of "Detect" while it is unedited); each replacement sets it
    source = gr.State({"original": DEFAULT_SENTENCE, "corrupted": DEFAULT_EDITED})
    d_btn = action("Detect replaced words", variant="secondary")
    d_md = gr.Markdown(visible=False)
    d_hl = gr.HighlightedText(label="Your text: red = flagged as replaced, blue = original", color_map=COLORS,
                              show_legend=True, visible=False)
    table = gr.Dataframe(label="Per token", visible=False)
    r_btn.click(replace_and_detect, [sentence, seed, rate], [r_md, r_hl, edited, table, source],
                api_name="electra_replace")
    d_btn.click(detect, [edited, source], [d_md, d_hl, table], api_name="electra_detect")
