"""RoBERTa tab: static vs dynamic masking across epochs, byte-level BPE vs WordPiece, fill-mask (public APIs below)."""

from __future__ import annotations

import gradio as gr
import pandas as pd
import torch

from .. import roberta as rb
from ..common import MASK_SPELLINGS, model_token_limit, normalize_mask_text
from ..inference import fill_mask
from ..models import cached, get_model, packaged_tokenizer
from .common import number, safe, text
from .guard import per_input_validator

TASK = "roberta-fill-mask"
MAX_CHARS = 2000
MAX_MASK_TOKENS = 64  # columns of the masking heatmap


def byte_bpe() -> rb.ByteBpe:
    """RoBERTa's byte-level BPE (trained here on first use when offline), built once per process."""
    return cached(("roberta-byte-bpe",), rb.byte_bpe_tokenizer)


@safe
def masking(sentence: str, epochs, seed):
    """Which positions are masked in each epoch, static vs dynamic (public API `roberta_masking`)."""
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
    """The same text through WordPiece and byte-level BPE (public API `roberta_tokenizers`)."""
    text(sample, "Text", max_chars=MAX_CHARS)
    bpe = byte_bpe()
    wp, bp, words = rb.compare_tokenizers(sample, packaged_tokenizer(), bpe.tokenizer, max_chars=MAX_CHARS)
    md = (f"**WordPiece** (MiniLM / BERT uncased, 30,522): {wp.count} tokens, **{wp.num_unknown} [UNK]** · "
          f"**Byte-level BPE**: {bp.count} tokens, **{bp.num_unknown} unknown** — {bpe.label}.\n\n"
          "Byte-level tokens are shown as stored (Ġ = a leading space, other odd symbols = raw UTF-8 bytes).")
    per_word = pd.DataFrame([{"word": w.word, "WordPiece": " ".join(w.wordpiece),
                              "byte-level BPE": " ".join(w.byte_bpe),
                              "pieces (WP / BPE)": f"{len(w.wordpiece)} / {len(w.byte_bpe)}"} for w in words])
    return md, per_word, " ".join(wp.tokens), " ".join(bp.tokens)


def check_fill_request(sentence, top_k) -> None:
    """Model-free checks of one fill-mask request (run per request before it joins a batch)."""
    sentence = text(sentence, "Sentence", max_chars=MAX_CHARS)
    number(top_k, "top-k", lo=1, hi=20, integer=True)
    if not any(m in sentence for m in MASK_SPELLINGS):
        raise ValueError("no mask token in the text: put [MASK] (or <mask>) where a word should be predicted")


@safe
def fill_batch(sentences: list[str], top_ks: list[float]):
    """Batched endpoint (public API `roberta_fill_mask`): concurrent requests share one forward pass."""
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
    label = f"Served by {m.label} (mask token `{m.tokenizer.mask_token}`)"
    tables = []
    for per_text, k in zip(preds, ks):
        tables.append(pd.DataFrame([
            {"mask": i + 1, "rank": r + 1, "token": m.tokenizer.decode([tid]).strip(), "probability": round(p, 4)}
            for i, pred in enumerate(per_text)
            for r, (tid, p) in enumerate(zip(pred.token_ids[:k], pred.probabilities[:k]))]))
    return [label] * len(sentences), tables


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
        m_btn = gr.Button("Show masks", variant="primary")
        m_md = gr.Markdown()
        static_plot, dynamic_plot = gr.Plot(), gr.Plot()
        m_btn.click(masking, [sent, epochs, seed], [m_md, static_plot, dynamic_plot], api_name="roberta_masking")
    with gr.Tab("Byte-level BPE vs WordPiece"):
        sample = gr.Textbox(label="Text", lines=3,
                            value="Naïve café owners 🙂 sell crème brûlée in 東京 — antidisestablishmentarianism!")
        t_btn = gr.Button("Tokenize both ways", variant="primary")
        t_md = gr.Markdown()
        t_df = gr.Dataframe(label="How each word splits")
        with gr.Row():
            wp_tokens = gr.Textbox(label="WordPiece tokens", lines=3)
            bpe_tokens = gr.Textbox(label="Byte-level BPE tokens", lines=3)
        t_btn.click(tokenizers, [sample], [t_md, t_df, wp_tokens, bpe_tokens], api_name="roberta_tokenizers")
    with gr.Tab("Fill mask"):
        masked = gr.Textbox(label="Sentence with <mask> or [MASK]", value="The capital of France is <mask>.")
        k = gr.Slider(1, 20, value=5, step=1, label="top-k")
        f_btn = gr.Button("Fill mask", variant="primary")
        f_md = gr.Markdown()
        f_df = gr.Dataframe(label="Predictions")
        f_btn.click(fill_batch, [masked, k], [f_md, f_df], api_name="roberta_fill_mask", batch=True,
                    max_batch_size=16, concurrency_limit=1,
                    validator=per_input_validator(lambda s: check_fill_request(s, 5), lambda k: check_fill_request(
                        "[MASK]", k)))
