"""ALBERT: exact parameter accounting against real modules, the paper's sizes, SOP pairs, features."""

from __future__ import annotations

import pytest
import torch

from bertvariants import albert
from bertvariants.albert import AlbertSize, SharedEncoder, count_parameters, transformers_model
from bertvariants.common import make_generator

TINY = dict(vocab_size=99, embedding_size=13, hidden_size=36, num_layers=3, intermediate_size=37, num_heads=3,
            max_position=17)


def numel(module) -> int:
    return sum(p.numel() for p in module.parameters())


@pytest.mark.parametrize("sharing", ["all", "none"])
@pytest.mark.parametrize("pooler", [True, False])
def test_count_equals_transformers_albert(sharing, pooler):
    size = AlbertSize(**TINY, sharing=sharing, pooler=pooler)
    assert count_parameters(size).total == numel(transformers_model(size))


def test_count_equals_transformers_bert():
    size = albert.bert_equivalent(AlbertSize(**TINY))
    assert count_parameters(size, factorized=False).total == numel(transformers_model(size, bert=True))


@pytest.mark.parametrize("sharing", albert.SHARING_MODES)
def test_count_equals_shared_encoder_every_mode(sharing):
    size = AlbertSize(**TINY, sharing=sharing)
    assert count_parameters(size).total == numel(SharedEncoder(size))


def test_shared_encoder_matches_albert_structure_when_all_shared_or_none():
    for sharing in ("all", "none"):
        size = AlbertSize(**TINY, sharing=sharing)
        assert numel(SharedEncoder(size)) == numel(transformers_model(size))


def test_shared_encoder_forward_backward_and_sharing_is_real():
    size = AlbertSize(**TINY, sharing="ffn")
    torch.manual_seed(0)
    enc = SharedEncoder(size)
    assert enc.ffn[0] is enc.ffn[2] and enc.attention[0] is not enc.attention[2]
    ids = torch.randint(0, 99, (2, 7))
    mask = torch.ones(2, 7, dtype=torch.long)
    mask[1, 5:] = 0
    out = enc(ids, mask)
    assert out.shape == (2, 7, 36)
    out.sum().backward()
    assert enc.word.weight.grad is not None and enc.ffn[0].up.weight.grad.abs().sum() > 0


def test_paper_table1_sizes():
    """Table 1: ALBERT base 12M, large 18M (exact when rounded); BERT-base 110M (BERT paper), large 334M.

    xlarge / xxlarge: the paper prints 60M / 235M, but its own Table 1 configs give 58.7M / 222.6M
    (= transformers' AlbertModel from the same config, as the tests above show); we check our
    numbers, not the paper's rounding.
    """
    rows = {r["model"]: r for r in albert.paper_table()}
    assert rows["ALBERT-base"]["ours"] == "12M" and rows["ALBERT-large"]["ours"] == "18M"
    assert rows["ALBERT-base"]["parameters (exact)"] == 11_683_584
    assert round(rows["BERT-base"]["parameters (exact)"] / 1e7) * 10 == 110  # 109.5M
    assert abs(rows["BERT-large"]["parameters (exact)"] - 334e6) < 1.2e6  # 335.1M
    assert rows["ALBERT-xlarge"]["parameters (exact)"] == 58_724_864
    assert rows["ALBERT-xxlarge"]["parameters (exact)"] == 222_595_584


@pytest.mark.parametrize("name", [*albert.PAPER_CONFIGS, *albert.BERT_CONFIGS])
def test_full_size_counts_equal_transformers_on_meta_device(name):
    """The real base … xxlarge and BERT-base/large modules (built on the meta device: no memory) match exactly."""
    size, _ = {**albert.PAPER_CONFIGS, **albert.BERT_CONFIGS}[name]
    is_bert = name.startswith("BERT")
    with torch.device("meta"):
        model = transformers_model(size, bert=is_bert)
    assert numel(model) == count_parameters(size, factorized=not is_bert).total


@pytest.mark.parametrize("sharing, e, paper_m", [
    ("all", 128, 12), ("ffn", 128, 38), ("attention", 128, 64), ("none", 128, 89),
    ("all", 768, 31), ("ffn", 768, 57), ("attention", 768, 83)])
def test_paper_table4_sharing_ablation(sharing, e, paper_m):
    """Table 4 (ALBERT-base, E=128 / 768): our counts are within 1M of every printed value."""
    total = count_parameters(AlbertSize(embedding_size=e, sharing=sharing)).total
    assert abs(total / 1e6 - paper_m) < 1.0


def test_worked_example_embeddings():
    full, factorized = albert.embedding_saving(vocab_size=30000, embedding_size=128, hidden_size=768)
    assert full == 23_040_000 and factorized == 3_938_304


def test_saving_and_figure():
    cmp = albert.compare_with_bert(AlbertSize())
    assert 0.89 < cmp.saving < 0.90  # 11.7M vs 109.1M (V=30000)
    fig = albert.breakdown_figure(AlbertSize(**TINY, sharing="attention"))
    assert len(fig.data) == 4 and fig.layout.barmode == "stack"


@pytest.mark.parametrize("kwargs, match", [(dict(sharing="half"), "sharing must be"),
                                           (dict(hidden_size=0), "hidden_size must be"),
                                           (dict(hidden_size=10, num_heads=3), "not divisible")])
def test_bad_sizes(kwargs, match):
    with pytest.raises(ValueError, match=match):
        AlbertSize(**kwargs)


def test_bert_needs_e_equals_h():
    with pytest.raises(ValueError, match="embedding_size must equal hidden_size"):
        count_parameters(AlbertSize(), factorized=False)


def test_sop_pairs():
    doc = "The cat sat. Then it slept! Later it woke up? Finally it ate."
    both = albert.sop_pairs(doc)
    assert len(both) == 6
    assert both[0] == albert.SopPair("The cat sat.", "Then it slept!", True)
    assert both[1] == albert.SopPair("Then it slept!", "The cat sat.", False)
    a = albert.sop_pairs(doc, generator=make_generator(3))
    b = albert.sop_pairs(doc, generator=make_generator(3))
    assert a == b and len(a) == 3
    many = albert.sop_pairs(" ".join(f"Sentence {i}." for i in range(2001)), generator=make_generator(0))
    assert sum(not p.in_order for p in many) / len(many) == pytest.approx(0.5, abs=0.04)
    with pytest.raises(ValueError, match="at least 2 sentences"):
        albert.sop_pairs("Just one sentence.")


def test_token_features_on_tiny_checkpoint(tiny_checkpoint):
    from bertvariants.serving import load_checkpoint

    m = load_checkpoint(str(tiny_checkpoint("feature-extraction")), "feature-extraction")
    f = albert.token_features(m.model, m.tokenizer, "ALBERT shares one layer, naïve café 🙂")
    assert f.hidden.shape == (len(f.tokens), 36) and f.cls.shape == (36,)
    assert f.tokens[0] == "[CLS]" and f.coords.shape == (len(f.tokens), 2)
    assert len(albert.features_figure(f).data) == 1
    with pytest.raises(ValueError, match="empty"):
        albert.token_features(m.model, m.tokenizer, "   ")
    with pytest.raises(ValueError, match="limit"):
        albert.token_features(m.model, m.tokenizer, "word " * 200)


# ------------------------------------------------------------------ UI handlers (end to end on tiny checkpoints)
def test_ui_parameters_handler():
    import gradio as gr

    from bertvariants.ui import albert as ui

    md, fig, df = ui.parameters(30000, 768, 128, 12, "all")
    assert "11,683,584" in md and "saving" in md
    assert df.set_index("part").loc["total", "ALBERT"] == "11,683,584"  # thousands separators on the page
    assert len(fig.data) == 4
    with pytest.raises(gr.Error, match="sharing must be"):
        ui.parameters(30000, 768, 128, 12, "half")
    with pytest.raises(gr.Error, match="between"):
        ui.parameters(30000, 768, 128, 99, "all")


def test_ui_sop_handler():
    import gradio as gr

    from bertvariants.ui import albert as ui

    df = ui.sop(ui.SOP_EXAMPLE, 0)
    assert len(df) == 3 and set(df["label"]) <= {"in order (positive)", "swapped (negative)"}
    with pytest.raises(gr.Error, match="empty"):
        ui.sop("", 0)
    with pytest.raises(gr.Error, match="at least 2 sentences"):
        ui.sop("Only one.", 0)


def test_ui_features_and_fill_mask(tiny_checkpoint, monkeypatch, tmp_path):
    import gradio as gr

    from bertvariants.ui import albert as ui

    monkeypatch.setenv("BERTVARIANTS_MODEL_ALBERT_FEATURES", str(tiny_checkpoint("feature-extraction")))
    md, df, fig = ui.features("Café naïve 東京 🙂")
    assert "(tokens × hidden)" in md and df["token"].iloc[0] == "[CLS]"
    with pytest.raises(gr.Error, match="limit"):
        ui.features("word " * 1000)
    with pytest.raises(gr.Error, match="limit"):
        ui.features("x" * 5000)
    # fill-mask unavailable: the registry's message reaches the user, no traceback
    monkeypatch.setenv("BERTVARIANTS_MODEL_ALBERT_FILL_MASK", str(tmp_path))
    with pytest.raises(gr.Error, match="not a checkpoint directory"):
        ui.fill("The capital of France is [MASK].", 5)
    monkeypatch.setenv("BERTVARIANTS_MODEL_ALBERT_FILL_MASK", str(tiny_checkpoint("masked-lm")))
    label, preds = ui.fill("The capital of France is <mask>.", 3)
    assert "Served by" in label and len(preds) == 3 and preds["probability"].is_monotonic_decreasing
    with pytest.raises(gr.Error, match="no mask token"):
        ui.fill("The capital of France is Paris.", 3)


def test_factorized_fill_is_exact_at_full_rank_and_counts_the_saving(tiny_checkpoint):
    from transformers import AutoTokenizer, BertForMaskedLM

    path = tiny_checkpoint("masked-lm")
    model, tok = BertForMaskedLM.from_pretrained(path).eval(), AutoTokenizer.from_pretrained(path)
    text = "The cat sat on the [MASK] and the [MASK]."
    full_rank = albert.factorized_fill(model, tok, text, embedding_size=36, top_k=3)  # H = 36: W = A·B exactly
    assert len(full_rank.full) == 2  # one list per mask
    for exact, fact in zip(full_rank.full, full_rank.factorized):
        assert [t for t, _ in exact] == [t for t, _ in fact]
        assert [p for _, p in exact] == pytest.approx([p for _, p in fact], abs=1e-4)
    small = albert.factorized_fill(model, tok, text, embedding_size=4, top_k=3)
    assert small.full_parameters == 30522 * 36 and small.factorized_parameters == 30522 * 4 + 4 * 36
    assert small.full == full_rank.full  # the full table's answer does not depend on E
    with pytest.raises(ValueError, match="no mask token"):
        albert.factorized_fill(model, tok, "No mask here.", embedding_size=4)


def test_readable_tables_separate_thousands_and_round_floats():
    import pandas as pd

    from bertvariants.ui.common import readable

    df = readable(pd.DataFrame({"n": [4005120, 12], "rank": [1, 2], "p": [0.123456789, 1.0], "t": ["a", "b"]}))
    assert list(df["n"]) == ["4,005,120", "12"] and list(df["rank"]) == [1, 2]  # small counts stay numbers
    assert list(df["p"]) == [0.1235, 1.0] and list(df["t"]) == ["a", "b"]
