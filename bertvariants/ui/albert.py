"""ALBERT tab: parameter explorer (factorization + sharing), SOP pairs, features and fill-mask (public APIs below)."""

from __future__ import annotations

import gradio as gr
import pandas as pd

from .. import albert
from ..albert_init import svd_factorize
from ..checks import number, text, token_count
from ..common import make_generator, model_token_limit, normalize_mask_text
from ..serving import cached, get_model
from .common import action, readable, safe, shared_fill_mask_note

FEATURES_TASK = "albert-features"
FILL_MASK_TASK = "albert-fill-mask"
MAX_CHARS = 2000
SOP_EXAMPLE = ("Tom bought a new bike on Monday. He rode it to work the next morning. "
               "On the way, a tyre went flat. He walked the rest of the way and arrived late.")


@safe
def parameters(vocab, hidden, embedding, layers, sharing):
    """ALBERT's parameter count versus a BERT of the same V, H, L (Lan et al. 2019 §3.1; public API
    `albert_parameters`).

    Args:
        vocab: vocabulary size V (100–300,000).
        hidden: hidden size H (64–8,192); the FFN is 4H.
        embedding: factorized embedding size E (16–8,192).
        layers: number of layers L (1–48).
        sharing: cross-layer sharing: "all", "ffn", "attention" or "none" (Table 4).

    Returns: a summary (markdown), a bar chart of parameters by part, and the table of parts."""
    size = albert.AlbertSize(vocab_size=number(vocab, "V (vocabulary)", lo=100, hi=300_000, integer=True),
                             hidden_size=number(hidden, "H (hidden)", lo=64, hi=8192, integer=True),
                             embedding_size=number(embedding, "E (embedding)", lo=16, hi=8192, integer=True),
                             num_layers=number(layers, "layers", lo=1, hi=48, integer=True),
                             intermediate_size=4 * int(float(hidden)), num_heads=1, sharing=str(sharing))
    cmp = albert.compare_with_bert(size)
    full, fact = albert.embedding_saving(vocab_size=size.vocab_size, embedding_size=size.embedding_size,
                                         hidden_size=size.hidden_size)
    md = (f"**ALBERT: {cmp.albert.total:,} parameters** ({albert.SHARING_LABELS[size.sharing]}) · "
          f"**BERT** with the same V, H, L: {cmp.bert.total:,} · **saving {cmp.saving:.1%}**\n\n"
          f"Embedding matrices: V×H = {full:,} → V×E + E×H = {fact:,} ({1 - fact / full:.1%} smaller). "
          f"FFN size 4H = {size.intermediate_size:,}; the count includes biases, LayerNorms, position/segment "
          "embeddings and the [CLS] pooler, exactly as `sum(p.numel())` of transformers' AlbertModel / BertModel.")
    rows = pd.DataFrame([{"part": part, "ALBERT": getattr(cmp.albert, part), "BERT": getattr(cmp.bert, part)}
                         for part in ("embeddings", "attention", "ffn", "pooler")]
                        + [{"part": "total", "ALBERT": cmp.albert.total, "BERT": cmp.bert.total}])
    return md, albert.breakdown_figure(size), readable(rows)  # 4,005,120, as the summary writes it


@safe
def sop(document: str, seed):
    """Sentence-order prediction pairs built from one document (Lan et al. 2019 §3.1; public API `albert_sop`).

    Args:
        document: a few sentences of running text (two or more).
        seed: seed for which pairs are swapped (0 ≤ seed < 2³¹).

    Returns: a table of (segment A, segment B, in order / swapped)."""
    text(document, "Document", max_chars=MAX_CHARS * 5)
    seed = number(seed, "seed", lo=0, hi=2**31 - 1, integer=True)
    pairs = albert.sop_pairs(document, generator=make_generator(seed))
    return pd.DataFrame([{"segment A": p.first, "segment B": p.second,
                          "label": "in order (positive)" if p.in_order else "swapped (negative)"} for p in pairs])


@safe
def features(sentence: str):
    """Token representations and the [CLS] vector of a sentence from the ALBERT-slot encoder (public API
    `albert_features`).

    Args:
        sentence: the text to encode (≤ 2,000 characters).

    Returns: a summary (markdown), a table of tokens with their L2 norms, and a plot of the token states."""
    text(sentence, "Sentence", max_chars=MAX_CHARS)
    m = get_model(FEATURES_TASK)
    f = albert.token_features(m.model, m.tokenizer, sentence, max_length=albert.MAX_TOKENS)
    md = (f"Token states: **{tuple(f.hidden.shape)}** (tokens × hidden) · [CLS] vector: {f.cls.shape[0]} dims, "
          f"L2 norm **{f.cls.norm().item():.3f}** · served by {m.label}")
    table = pd.DataFrame({"token": f.tokens, "L2 norm": f.hidden.norm(dim=-1).double().numpy().round(3),
                          "first 4 dims": [", ".join(f"{x:+.3f}" for x in row[:4].tolist()) for row in f.hidden]})
    return md, table, albert.features_figure(f)


EMBEDDING_SIZE = 128  # ALBERT's E (§3.1)
FILL_EXAMPLE = "She drank a cup of [MASK] before work."  # the shipped masked LM answers "coffee" first, also at E = 128


def output_factors(m, embedding_size: int = EMBEDDING_SIZE):
    """The best rank-E factorization (V×E, E×H) of the served masked LM's output embedding, once per checkpoint
    (E ≤ H/2: a factorization as wide as the model would save nothing)."""
    weight = m.model.get_output_embeddings().weight.detach().float().cpu()  # (V, H)
    embedding_size = min(embedding_size, weight.shape[1] // 2)  # a narrow model (tests: H = 36) gets E = H/2
    return cached(("albert-output-factors", m.resolution.location, embedding_size),
                  lambda: svd_factorize(weight, embedding_size))


@safe
def fill(sentence: str, top_k):
    """Fill [MASK] with the ALBERT-slot masked LM, through its full V×H output embedding and through ALBERT's
    factorized V×E · E×H with E = 128 (Lan et al. 2019 §3.1; public API `albert_fill_mask`).

    Args:
        sentence: text with one or more [MASK] tokens.
        top_k: predictions per mask (1–20).

    Returns: which model served and what the factorization kept (markdown), and a table (mask, rank, token,
    probability; the same with E = 128)."""
    text(sentence, "Sentence", max_chars=MAX_CHARS)
    k = number(top_k, "top-k", lo=1, hi=20, integer=True)
    m = get_model(FILL_MASK_TASK)
    prepared = normalize_mask_text(sentence, m.tokenizer)
    n_tokens = len(m.tokenizer(prepared)["input_ids"])
    limit = min(albert.MAX_TOKENS, model_token_limit(m.model, m.tokenizer))
    token_count(n_tokens, "the sentence", limit=limit)
    if m.tokenizer.mask_token not in prepared:
        raise ValueError("no mask token in the text: put [MASK] where a word should be predicted")
    f = albert.factorized_fill(m.model, m.tokenizer, prepared, top_k=k, factors=output_factors(m))
    word = lambda tid: m.tokenizer.decode([tid]).strip()  # noqa: E731
    e = f"E = {f.embedding_size}"
    rows = [{**({"mask": i + 1} if len(f.full) > 1 else {}), "rank": r + 1, "token": word(t), "probability": p,
             f"{e}: token": word(te), f"{e}: probability": pe}
            for i, (full, fact) in enumerate(zip(f.full, f.factorized))
            for r, ((t, p), (te, pe)) in enumerate(zip(full, fact))]
    same = [a[0][0] == b[0][0] for a, b in zip(f.full, f.factorized)]
    md = (f"Served by {m.label}. {shared_fill_mask_note(FILL_MASK_TASK)}\n\n"
          f"**ALBERT's factorized embedding, applied to this prediction** (§3.1): the output layer scores every word "
          f"by a dot product with its row of the V×H token-embedding table ({f.full_parameters:,} parameters). "
          f"Replaced by its best rank-{f.embedding_size} factorization V×E · E×H ({f.factorized_parameters:,}, "
          f"{1 - f.factorized_parameters / f.full_parameters:.0%} fewer; truncated SVD), the hidden state is projected "
          f"to {f.embedding_size} dimensions first — and the top word "
          + ("stays the same" if all(same) else "changes" if not any(same) else "stays the same at some masks")
          + f" ({', '.join(f'{word(a[0][0])} → {word(b[0][0])}' for a, b in zip(f.full, f.factorized))}).")
    return md, readable(pd.DataFrame(rows))


def build(spec, tab) -> None:
    with gr.Tab("Parameter explorer"):
        gr.Markdown("§3.1: factorized embeddings (V×E + E×H instead of V×H) and cross-layer sharing. "
                    "Paper's worked example: V=30000, E=128, H=768 → embeddings 3.9M instead of 23.0M.")
        with gr.Row():
            v = gr.Slider(1000, 100_000, value=30_000, step=1000, label="V (vocabulary)")
            h = gr.Slider(128, 4096, value=768, step=64, label="H (hidden size)")
            e = gr.Slider(16, 1024, value=128, step=16, label="E (embedding size)")
            layers = gr.Slider(1, 48, value=12, step=1, label="layers L")
        sharing = gr.Radio(list(albert.SHARING_MODES), value="all", label="cross-layer sharing (Table 4)")
        p_btn = action("Count parameters")
        p_md = gr.Markdown(visible=False)
        p_fig = gr.Plot(visible=False)
        p_df = gr.Dataframe(label="Parameters by part", visible=False)
        p_btn.click(parameters, [v, h, e, layers, sharing], [p_md, p_fig, p_df], api_name="albert_parameters")
        gr.Markdown("**Table 1 configurations, counted exactly** (the paper rounds; its xlarge / xxlarge configs "
                    "give 58.7M / 222.6M, not the printed 60M / 235M)")
        gr.Dataframe(value=readable(pd.DataFrame(albert.paper_table())), interactive=False)
    with gr.Tab("Sentence-order prediction"):
        gr.Markdown("SOP (§3.1): positive = two consecutive segments in order; negative = the same two swapped.")
        doc = gr.Textbox(label="Document", lines=5, value=SOP_EXAMPLE)
        seed = gr.Number(value=0, precision=0, label="seed")
        s_btn = action("Build SOP pairs", variant="secondary")
        s_df = gr.Dataframe(label="SOP training pairs", visible=False, wrap=True)
        s_btn.click(sop, [doc, seed], [s_df], api_name="albert_sop")
    with gr.Tab("Use ALBERT like BERT"):
        sent = gr.Textbox(label="Sentence", value="ALBERT shares one set of layer weights across all layers.")
        f_btn = action("Token representations")
        f_md = gr.Markdown(visible=False)
        with gr.Row():
            f_df = gr.Dataframe(label="Tokens", visible=False)
            f_plot = gr.Plot(visible=False)
        f_btn.click(features, [sent], [f_md, f_df, f_plot], api_name="albert_features")
        masked = gr.Textbox(label="Sentence with [MASK]", value=FILL_EXAMPLE)
        k = gr.Slider(1, 20, value=5, step=1, label="top-k")
        m_btn = action("Fill mask", variant="secondary")
        m_md = gr.Markdown(visible=False)
        m_df = gr.Dataframe(label="Predictions", visible=False)
        m_btn.click(fill, [masked, k], [m_md, m_df], api_name="albert_fill_mask")
