"""RoBERTa tab: static vs dynamic masking across epochs, byte-level BPE vs WordPiece, fill-mask (public APIs below)."""

from __future__ import annotations

from pathlib import Path

import gradio as gr
import pandas as pd
import torch

from .. import roberta as rb
from ..checks import masked, number, text
from ..common import model_token_limit, normalize_mask_text
from ..inference import fill_mask
from ..io import weights_size
from ..serving import cached, get_model, packaged_tokenizer, resolve
from .common import action, done, pending, readable, safe, shared_fill_mask_note
from .guard import per_input_validator
from .zerogpu import on_gpu

TASK = "roberta-fill-mask"
MAX_CHARS = 2000
MAX_MASK_TOKENS = 64  # columns of the masking heatmap
FILL_EXAMPLE = "The doctor works in a <mask>."  # the shipped masked LM answers "hospital" first


def byte_bpe() -> rb.ByteBpe:
    """RoBERTa's byte-level BPE (trained here on first use when offline), built once per process."""
    return cached(("roberta-byte-bpe",), rb.byte_bpe_tokenizer)


@safe
def masking(sentence: str, epochs, seed):
    """Which positions are masked in each epoch under static and dynamic masking (Liu et al. 2019 §4.1; public
    API `roberta_masking`).

    Args:
        sentence: the text to mask (≤ 64 WordPiece tokens).
        epochs: epochs to show (1–40); static masking reuses its 10 masks (epoch e uses mask e mod 10).
        seed: masking seed.

    Returns: a summary with the distinct-mask counts, and one heatmap per scheme (epochs × tokens)."""
    text(sentence, "Sentence", max_chars=MAX_CHARS)
    epochs = number(epochs, "epochs", lo=1, hi=40, integer=True)
    seed = number(seed, "seed", lo=0, hi=2**31 - 1, integer=True)
    tok = packaged_tokenizer()  # BERT's uncased WordPiece (30,522)
    ids = tok(sentence.strip())["input_ids"]
    if len(ids) > MAX_MASK_TOKENS:
        raise ValueError(f"the sentence has {len(ids)} tokens; this view shows at most {MAX_MASK_TOKENS}")
    ids_t = torch.tensor(ids)
    kw = dict(epochs=epochs, seed=seed, mask_token_id=tok.mask_token_id, vocab_size=len(tok),
              special_ids=tok.all_special_ids)
    static = rb.masks_across_epochs(ids_t, scheme="static", **kw)
    dynamic = rb.masks_across_epochs(ids_t, scheme="dynamic", **kw)
    tokens = tok.convert_ids_to_tokens(ids)
    md = (f"Over {epochs} epochs the static scheme shows **{rb.distinct_masks(static)}** distinct masks "
          f"(at most {rb.NUM_STATIC_MASKS}: epoch e reuses mask e mod 10); dynamic masking shows "
          f"**{rb.distinct_masks(dynamic)}**. Red = [MASK], orange = random token, blue = selected but kept. "
          "Tokens: BERT's WordPiece vocabulary (the masking is the same for any vocabulary).")
    return (md, rb.masks_figure(static, tokens, title="Static masking (10 masks precomputed, reused)"),
            rb.masks_figure(dynamic, tokens, title="Dynamic masking (a fresh mask every epoch)"))


@safe
def tokenizers(sample: str):
    """The same text through BERT's WordPiece and a byte-level BPE (Liu et al. 2019 §4.4; public API
    `roberta_tokenizers`).

    Args:
        sample: any text (≤ 2,000 characters; accents, emoji and other scripts show the difference).

    Returns: counts (markdown), a per-word table of pieces, and both token sequences as HTML (byte-level pieces
    decoded for reading, the stored symbols on hover)."""
    text(sample, "Text", max_chars=MAX_CHARS)
    bpe = byte_bpe()
    wp, bp, words = rb.compare_tokenizers(sample, packaged_tokenizer(), bpe.tokenizer, max_chars=MAX_CHARS)
    md = (f"**WordPiece** (MiniLM / BERT uncased, 30,522): {wp.count} tokens, **{wp.num_unknown} [UNK]** · "
          f"**Byte-level BPE**: {bp.count} tokens, **{bp.num_unknown} unknown** — {bpe.label}.\n\n"
          "Byte-level pieces are shown decoded: ␣ = the piece starts with a space, ⟨C3⟩ = one byte of a character "
          "that BPE split across pieces (hover a piece for the symbols the tokenizer stores, e.g. Ġ for the space).")
    per_word = pd.DataFrame([{"word": w.word, "WordPiece": " ".join(w.wordpiece),
                              "byte-level BPE": " ".join(rb.piece_text(p) for p in w.byte_bpe),
                              "pieces (WP / BPE)": f"{len(w.wordpiece)} / {len(w.byte_bpe)}"} for w in words])
    return md, per_word, chips(wp.tokens, wp.tokens), chips([rb.piece_text(p) for p in bp.tokens], bp.tokens)


def chips(shown: list[str], stored: list[str]) -> str:
    """Tokens as boxes (HTML): the readable form, the stored symbols on hover."""
    import html

    boxes = "".join(f'<span class="bv-chip" title="stored as: {html.escape(raw, quote=True)}">'
                    f"{html.escape(text)}</span>"
                    for text, raw in zip(shown, stored))
    return f'<div class="bv-chips">{boxes}</div>'



def check_fill_request(sentence, top_k) -> None:
    """Model-free checks of one fill-mask request (run per request before it joins a batch)."""
    masked(sentence, "Sentence", max_chars=MAX_CHARS)
    number(top_k, "top-k", lo=1, hi=20, integer=True)


@safe
def fill_batch(sentences: list[str], top_ks: list[float]):
    """Fill <mask> / [MASK] with the RoBERTa-slot masked LM (public API `roberta_fill_mask`). Batched:
    concurrent requests share one forward pass; each request is validated alone first.

    Args:
        sentences: texts with one or more mask tokens (<mask> or [MASK]), one per request.
        top_ks: predictions per mask (1–20), one per request.

    Returns: per request, which model served (markdown) and a table (mask, rank, token, probability)."""
    for s, k in zip(sentences, top_ks):
        check_fill_request(s, k)
    m = get_model(TASK)
    prepared = [normalize_mask_text(s, m.tokenizer) for s in sentences]
    limit = model_token_limit(m.model, m.tokenizer)
    for p in prepared:
        n_tokens = len(m.tokenizer(p)["input_ids"])
        if n_tokens > limit:
            raise ValueError(f"the sentence has {n_tokens} tokens; the model's limit is {limit}")
    ks = [int(float(k)) for k in top_ks]
    preds = fill_mask(m.model, m.tokenizer, prepared, top_k=max(ks))
    bpe = byte_bpe()
    label = (f"Served by {m.label} (its mask token is `{m.tokenizer.mask_token}`; `<mask>` and `[MASK]` both work). "
             f"{shared_fill_mask_note(TASK)}\n\n**RoBERTa's vocabulary** (§4.4): each predicted word as byte-level BPE "
             f"pieces — Ġ marks a leading space, so \"Ġhospital\" is one piece for \" hospital\" and no word is ever "
             f"[UNK] ({bpe.label}).")
    tables = []
    for per_text, k in zip(preds, ks):
        rows = []
        for i, pred in enumerate(per_text):
            for r, (tid, p) in enumerate(zip(pred.token_ids[:k], pred.probabilities[:k])):
                word = m.tokenizer.decode([tid]).strip()
                rows.append({**({"mask": i + 1} if len(per_text) > 1 else {}), "rank": r + 1, "token": word,
                             "probability": p,
                             "byte-level BPE pieces": " ".join(bpe.tokenizer.tokenize(" " + word)) if word else ""})
        tables.append(readable(pd.DataFrame(rows)))
    return [label] * len(sentences), tables


FILL_MASK_SLOTS = ("albert-fill-mask", "roberta-fill-mask", "electra-generator")  # every slot a masked LM serves


@safe
def compare_fill_mask(sentence: str, top_k):
    """The same masked sentence through every masked LM that serves a slot here (the ALBERT and RoBERTa fill-mask
    slots, the ELECTRA generator), side by side with latency and size (public API `compare_fill_mask`). Slots
    served by the same checkpoint share one row (offline they may all be this project's masked LM).

    Args:
        sentence: text with one mask token ([MASK] or <mask>; each model gets its own mask token).
        top_k: predictions shown per model (1–10).

    Returns: a table (model, slots, top predictions with probabilities, latency, parameters, size on disk) and a
    note on how it was measured (markdown)."""
    import statistics
    import time

    check_fill_request(sentence, top_k)
    k = number(top_k, "top-k", lo=1, hi=10, integer=True)
    by_location: dict[str, list[str]] = {}
    for slot in FILL_MASK_SLOTS:
        by_location.setdefault(resolve(slot).location, []).append(slot)
    rows, notes = [], []
    for location, slots in by_location.items():
        m = get_model(slots[0])
        prepared = normalize_mask_text(sentence, m.tokenizer)
        n_tokens = len(m.tokenizer(prepared)["input_ids"])
        if n_tokens > model_token_limit(m.model, m.tokenizer):
            raise ValueError(f"the sentence has {n_tokens} tokens; {m.label} takes at most "
                             f"{model_token_limit(m.model, m.tokenizer)}")
        fill_mask(m.model, m.tokenizer, [prepared], top_k=k)  # warm-up
        times = []
        for _ in range(5):
            t0 = time.perf_counter()
            preds = fill_mask(m.model, m.tokenizer, [prepared], top_k=k)[0]
            times.append((time.perf_counter() - t0) * 1000)
        first = preds[0]
        top = ", ".join(f"{m.tokenizer.decode([t]).strip()} ({p:.2f})"
                        for t, p in zip(first.token_ids, first.probabilities))
        size = weights_size(location)
        rows.append({"model": Path(location).name if Path(location).exists() else location,
                     "serves": ", ".join(slots), f"top {k} for the first mask": top,
                     "latency (ms, median of 5)": round(statistics.median(times), 1),
                     "parameters (M)": round(sum(p.numel() for p in m.model.parameters()) / 1e6, 1),
                     "size on disk (MB)": round(size / 2**20, 1) if size else None})
        notes.append(f"- **{', '.join(slots)}**: {m.label}")
    md = ("Latency: tokenize + forward + top-k for this sentence, median of 5 runs after a warm-up, measured now on "
          "this server. Size on disk is what the checkpoint stores (a shipped adapter is rebuilt over the packaged "
          "MiniLM at load)." + ("" if len(rows) > 1 else " Here one checkpoint serves every fill-mask slot, so "
                                "there is one row; online each slot has its own Hub model.")
          + "\n\n" + "\n".join(notes))
    return pd.DataFrame(rows), md


def fill(sentence: str, top_k):
    """One request through the batched path (for tests and direct calls)."""
    labels, tables = fill_batch([sentence], [top_k])
    return labels[0], tables[0]


def build(spec, tab) -> None:
    with gr.Tab("Static vs dynamic masking"):
        gr.Markdown("§4.1: BERT's corruption (15% selected; 80% [MASK] / 10% random / 10% unchanged), either drawn "
                    "10 times in preprocessing and reused (static) or drawn afresh each epoch (dynamic).")
        sent = gr.Textbox(label="Sentence", value="RoBERTa drops next sentence prediction and trains longer on more "
                                                 "data with bigger batches.")
        with gr.Row():
            epochs = gr.Slider(1, 40, value=20, step=1, label="epochs")
            seed = gr.Number(value=0, precision=0, label="seed")
        m_btn = action("Show masks")
        m_md = gr.Markdown(visible=False)
        static_plot, dynamic_plot = gr.Plot(visible=False), gr.Plot(visible=False)
        m_btn.click(masking, [sent, epochs, seed], [m_md, static_plot, dynamic_plot], api_name="roberta_masking")
    with gr.Tab("Byte-level BPE vs WordPiece"):
        sample = gr.Textbox(label="Text", lines=3,
                            value="Naïve café owners 🙂 sell crème brûlée in 東京 — antidisestablishmentarianism!")
        t_btn = action("Tokenize both ways")
        t_md = gr.Markdown(visible=False)
        t_df = gr.Dataframe(label="How each word splits", visible=False, wrap=True)
        with gr.Row():
            with gr.Column():
                gr.Markdown("**WordPiece tokens**")
                wp_tokens = gr.HTML(visible=False)
            with gr.Column():
                gr.Markdown("**Byte-level BPE tokens** (hover: stored symbols)")
                bpe_tokens = gr.HTML(visible=False)
        t_btn.click(tokenizers, [sample], [t_md, t_df, wp_tokens, bpe_tokens], api_name="roberta_tokenizers")
    with gr.Tab("Fill mask"):
        masked = gr.Textbox(label="Sentence with <mask> or [MASK]", value=FILL_EXAMPLE)
        k = gr.Slider(1, 20, value=5, step=1, label="top-k")
        f_btn = gr.Button("Fill mask", variant="primary")
        f_md = gr.Markdown(visible=False)
        f_df = gr.Dataframe(label="Predictions", visible=False)
        pending(f_btn)
        f_event = f_btn.click(on_gpu(fill_batch, "roberta_fill_mask"), [masked, k], [f_md, f_df],
                              api_name="roberta_fill_mask", batch=True,
                              max_batch_size=16, concurrency_limit=1,
                              validator=per_input_validator(lambda s: check_fill_request(s, 5),
                                                            lambda k: check_fill_request("[MASK]", k)))
        # a batched event shares one call among users, so it keeps one event: reveal its outputs after it ran
        f_event.success(lambda: (gr.update(visible=True), gr.update(visible=True)), None, [f_md, f_df],
                        api_visibility="private")
        done(f_btn, f_event)
        with gr.Accordion("Compare every fill-mask model here on this sentence (latency, size)", open=False):
            cmp_btn = action("Compare fill-mask models", variant="secondary")
            cmp_df = gr.Dataframe(label="Same sentence, each masked LM", visible=False, wrap=True)
            cmp_md = gr.Markdown(visible=False)
            cmp_btn.click(compare_fill_mask, [masked, k], [cmp_df, cmp_md], api_name="compare_fill_mask",
                          concurrency_limit=1)  # one comparison at a time: each latency is measured alone
