"""ELECTRA replaced-token detection: data path, λ=50 loss, weight sharing, forward + backward, inference."""

from __future__ import annotations

import pytest
import torch
from transformers import ElectraConfig, ElectraForMaskedLM, ElectraForPreTraining

from bertvariants import electra
from bertvariants.common import IGNORE_INDEX, make_generator

V, MASK, CLS, SEP = 99, 3, 1, 2


def configs(gen_hidden=12, gen_heads=1):
    d = ElectraConfig(vocab_size=V, embedding_size=13, hidden_size=36, num_hidden_layers=2, num_attention_heads=3,
                      intermediate_size=37, max_position_embeddings=17)
    g = ElectraConfig(**{**d.to_dict(), "hidden_size": gen_hidden, "num_attention_heads": gen_heads,
                         "intermediate_size": 13})
    return g, d


def ids_batch(rows=3, t=7, seed=0):
    x = torch.randint(4, V, (rows, t), generator=torch.Generator().manual_seed(seed))
    x[:, 0], x[:, -1] = CLS, SEP
    return x


def test_generator_masking_rates_all_mask():
    x = ids_batch(rows=500, t=200)
    m = electra.mask_for_generator(x, mask_token_id=MASK, vocab_size=V, special_ids=(CLS, SEP),
                                   generator=make_generator(0))
    assert m.selected.float().sum().item() / (500 * 198) == pytest.approx(0.15, abs=0.005)
    assert torch.equal(m.masked, m.selected)  # §2: every selected position becomes [MASK]


def test_sample_equal_to_original_counts_as_original():
    x = ids_batch()
    selected = torch.zeros_like(x, dtype=torch.bool)
    selected[:, 2:5] = True
    logits = torch.full((*x.shape, V), -1e4)
    logits.scatter_(2, x.unsqueeze(-1), 1e4)  # the generator is certain of the original token
    r = electra.sample_replacements(logits, x, selected, generator=make_generator(0))
    assert torch.equal(r.input_ids, x) and not r.is_replaced.any()
    # a generator certain of a *different* token replaces every selected position
    other = (x + 1) % V
    logits2 = torch.full((*x.shape, V), -1e4).scatter_(2, other.unsqueeze(-1), 1e4)
    r2 = electra.sample_replacements(logits2, x, selected, generator=make_generator(0))
    assert torch.equal(r2.is_replaced, selected) and torch.equal(r2.input_ids[selected], other[selected])
    assert torch.equal(r2.input_ids[~selected], x[~selected])


def test_sampling_follows_the_generator_distribution():
    x = torch.full((1, 20_000), 5)
    selected = torch.ones_like(x, dtype=torch.bool)
    logits = torch.full((1, 20_000, V), -1e4)
    logits[..., 5], logits[..., 6] = 0.0, torch.log(torch.tensor(3.0))  # P(5)=1/4, P(6)=3/4
    r = electra.sample_replacements(logits, x, selected, generator=make_generator(1))
    assert r.is_replaced.float().mean().item() == pytest.approx(0.75, abs=0.01)


def test_rtd_loss_weights_discriminator_by_lambda_50():
    torch.manual_seed(0)
    gl, dl = torch.randn(2, 5, V), torch.randn(2, 5)
    labels = torch.full((2, 5), IGNORE_INDEX)
    labels[0, 1], labels[1, 3] = 7, 9
    rep = torch.zeros(2, 5, dtype=torch.bool)
    rep[0, 1] = True
    am = torch.ones(2, 5, dtype=torch.long)
    am[1, 4] = 0
    out = electra.rtd_loss(gl, labels, dl, rep, am)
    mlm = torch.nn.functional.cross_entropy(torch.stack([gl[0, 1], gl[1, 3]]), torch.tensor([7, 9]))
    keep = am.bool()
    disc = torch.nn.functional.binary_cross_entropy_with_logits(dl[keep], rep[keep].float())
    assert torch.allclose(out.mlm_loss, mlm) and torch.allclose(out.disc_loss, disc)
    assert torch.allclose(out.loss, mlm + 50 * disc)
    assert electra.DISC_WEIGHT == 50.0


def test_embedding_sharing_small_generator():
    g, d = configs()
    gm, dm = ElectraForMaskedLM(g), ElectraForPreTraining(d)
    s = electra.share_weights(gm, dm)
    assert s.mode == "embeddings"
    emb = dm.electra.embeddings
    assert gm.electra.embeddings.word_embeddings.weight is emb.word_embeddings.weight
    assert gm.electra.embeddings.position_embeddings.weight is emb.position_embeddings.weight
    assert gm.generator_lm_head.weight is emb.word_embeddings.weight
    assert gm.electra.encoder is not dm.electra.encoder
    assert s.shared_parameters == sum(p.numel() for p in emb.parameters())


def test_full_tying_when_sizes_equal_and_error_when_embeddings_differ():
    _, d = configs()
    gm, dm = ElectraForMaskedLM(d), ElectraForPreTraining(d)
    s = electra.share_weights(gm, dm)
    assert s.mode == "all" and gm.electra is dm.electra
    assert s.shared_parameters == sum(p.numel() for p in dm.electra.parameters())
    bad = ElectraConfig(**{**d.to_dict(), "embedding_size": 11})
    with pytest.raises(ValueError, match="embedding_size"):
        electra.share_weights(ElectraForMaskedLM(bad), ElectraForPreTraining(d))


def test_generator_config_quarter_width():
    _, d = configs()
    d = ElectraConfig(**{**d.to_dict(), "hidden_size": 48, "num_attention_heads": 4, "intermediate_size": 100})
    g = electra.generator_config(d)
    assert (g.hidden_size, g.num_attention_heads, g.intermediate_size, g.embedding_size) == (12, 1, 25, 13)


def test_forward_backward_and_seed_determinism():
    g, d = configs()
    torch.manual_seed(0)
    rtd = electra.ReplacedTokenDetection(ElectraForMaskedLM(g), ElectraForPreTraining(d), mask_token_id=MASK,
                                         special_ids=(CLS, SEP))
    x = ids_batch(rows=4, t=13)
    am = torch.ones_like(x)
    am[0, -3:] = 0
    rtd.eval()  # no dropout: the seed alone must fix masks, samples and loss
    a = rtd(x, am, rng=make_generator(5))
    b = rtd(x, am, rng=make_generator(5))
    assert torch.equal(a.replacements.input_ids, b.replacements.input_ids)
    assert torch.allclose(a.loss, b.loss)
    assert not a.masked.selected[0, -3:].any()  # padding never selected
    a.loss.backward()
    shared = rtd.discriminator_model.electra.embeddings.word_embeddings.weight
    assert shared.grad is not None and shared.grad.abs().sum() > 0
    assert rtd.generator_model.generator_predictions.dense.weight.grad.abs().sum() > 0
    assert 0.0 <= a.disc_accuracy <= 1.0



def test_sparse_head_is_the_same_step():
    """The sparse head (vocabulary logits at the masked positions only) samples and scores exactly as the full one."""
    g, d = configs()
    torch.manual_seed(0)
    gen, disc = ElectraForMaskedLM(g), ElectraForPreTraining(d)
    full = electra.ReplacedTokenDetection(gen, disc, mask_token_id=MASK, special_ids=(CLS, SEP)).eval()
    sparse = electra.ReplacedTokenDetection(gen, disc, mask_token_id=MASK, special_ids=(CLS, SEP),
                                            sparse_head=True).eval()
    x = ids_batch(rows=4, t=13)
    a, b = full(x, rng=make_generator(3)), sparse(x, rng=make_generator(3))
    assert b.gen_logits.shape == (int(a.masked.selected.sum()), V)  # (M, V)
    assert torch.equal(a.replacements.input_ids, b.replacements.input_ids)
    assert torch.allclose(a.loss, b.loss, atol=1e-5) and torch.allclose(a.mlm_loss, b.mlm_loss, atol=1e-5)
    with pytest.raises(ValueError, match="line up"):
        electra.sample_replacements(b.gen_logits[1:], x, b.masked.selected, generator=make_generator(0))


def test_frozen_generator_trains_the_discriminator_only():
    g, d = configs(gen_hidden=36, gen_heads=3)
    torch.manual_seed(0)
    rtd = electra.ReplacedTokenDetection(ElectraForMaskedLM(g), ElectraForPreTraining(d), mask_token_id=MASK,
                                         special_ids=(CLS, SEP), frozen_generator=True)
    x = ids_batch(rows=4, t=13)
    am = torch.ones_like(x)
    am[1, -2:] = 0
    out = rtd(x, am, rng=make_generator(1))
    assert rtd.sharing is None and rtd.sparse_head  # no §3.2 sharing with a fixed generator
    assert torch.allclose(out.loss, electra.DISC_WEIGHT * out.disc_loss)  # λ·L_Disc; L_MLM only reported
    out.loss.backward()
    assert all(p.grad is None for p in rtd.generator_model.parameters())
    assert rtd.discriminator_model.discriminator_predictions.dense.weight.grad.abs().sum() > 0
    real = am.bool()
    assert out.replaced_fraction == pytest.approx(float(out.replacements.is_replaced[real].float().mean()))
    assert out.disc_accuracy == pytest.approx(
        float(((out.disc_logits > 0) == out.replacements.is_replaced)[real].float().mean()))

def test_inference_on_tiny_checkpoints(tiny_checkpoint, electra_disc_dir):
    from bertvariants.serving import load_checkpoint

    gen = load_checkpoint(str(tiny_checkpoint("masked-lm")), "masked-lm")
    disc = load_checkpoint(str(electra_disc_dir), "electra-discriminator")
    text = "The chef cooked the meal in the kitchen with a big pan and some oil today."
    v = electra.corrupt_and_discriminate(gen.model, disc.model, gen.tokenizer, text, seed=3, mlm_probability=0.3)
    assert v[0].token == "[CLS]" and all(0 <= x.p_replaced <= 1 for x in v)
    assert any(x.masked for x in v) and not v[0].masked
    assert all((x.token != x.original) == x.replaced for x in v)
    same = electra.corrupt_and_discriminate(gen.model, disc.model, gen.tokenizer, text, seed=3, mlm_probability=0.3)
    assert same == v
    edited = electra.to_text(v, gen.tokenizer)
    d2 = electra.discriminate(disc.model, disc.tokenizer, edited)
    assert len(d2) == len(disc.tokenizer(edited)["input_ids"])
    with pytest.raises(ValueError, match="empty"):
        electra.discriminate(disc.model, disc.tokenizer, "  ")
    with pytest.raises(ValueError, match="limit"):
        electra.discriminate(disc.model, disc.tokenizer, "word " * 300)


@pytest.fixture(scope="module")
def electra_disc_dir(tmp_path_factory, tiny_tokenizer_dir):
    import shutil

    cfg = ElectraConfig(vocab_size=30522, embedding_size=13, hidden_size=36, num_hidden_layers=2,
                        num_attention_heads=3, intermediate_size=37, max_position_embeddings=128)
    out = tmp_path_factory.mktemp("electra-disc")
    torch.manual_seed(0)
    ElectraForPreTraining(cfg).save_pretrained(out)
    for f in tiny_tokenizer_dir.iterdir():
        shutil.copy(f, out / f.name)
    return out


# ------------------------------------------------------------------ UI handlers
def test_ui_handlers_end_to_end(tiny_checkpoint, electra_disc_dir, monkeypatch, tmp_path):
    import gradio as gr

    from bertvariants.ui import electra as ui

    monkeypatch.setenv("BERTVARIANTS_MODEL_ELECTRA_GENERATOR", str(tmp_path))  # unavailable: message, no crash
    with pytest.raises(gr.Error, match="not a checkpoint directory"):
        ui.replace_and_detect("The chef cooked the meal.", 0, 0.15)
    monkeypatch.setenv("BERTVARIANTS_MODEL_ELECTRA_GENERATOR", str(tiny_checkpoint("masked-lm")))
    monkeypatch.setenv("BERTVARIANTS_MODEL_ELECTRA_DISCRIMINATOR", str(electra_disc_dir))
    md, hl, edited, table, source = ui.replace_and_detect("The chef cooked the meal in the kitchen 🙂 東京.", 1, 0.4)
    assert "positions masked" in md and edited and len(table) >= len(hl)
    assert "§3.2" in md  # the generator's size next to the discriminator's
    from types import SimpleNamespace as NS

    half = electra.generator_size(NS(config=NS(hidden_size=384, num_hidden_layers=3)),
                                  NS(config=NS(hidden_size=384, num_hidden_layers=6)))
    assert "3 of the discriminator's 6 layers" in half and "×0.5" in half
    assert "×0.25" in electra.generator_size(NS(config=NS(hidden_size=64, num_hidden_layers=12)),
                                             NS(config=NS(hidden_size=256, num_hidden_layers=12)))
    # one colour per verdict, as the legend says: red = flagged (P > 0.5), blue = original
    p = dict(zip(table["token"], table["P(replaced)"]))
    assert {verdict for _, verdict in hl} <= set(ui.COLORS) and ui.COLORS[ui.REPLACED] == "#ef4444"
    assert all((verdict == ui.REPLACED) == (p[piece.strip()] > 0.5) for piece, verdict in hl if piece.strip() in p)
    assert source == {"original": "The chef cooked the meal in the kitchen 🙂 東京.", "corrupted": edited}
    assert "truth" in table.columns  # the generator's replacements are known
    md2, hl2, table2 = ui.detect(edited)  # no source: the truth is unknown, so no truth column
    assert "Flagged" in md2 and len(hl2) >= 1 and "truth" not in table2.columns and "not known" in md2
    md3, _, table3 = ui.detect("The chef ate the meal.", {"original": "The chef cooked the meal.",
                                                          "corrupted": "The chef ate the meal."})
    assert list(table3["truth"]) == ["original"] * 3 + ["replaced (cooked → ate)"] + ["original"] * 4
    assert "cooked → ate" in md3 and set(table3["verdict"]) <= {"replaced", "original"}
    _, _, table4 = ui.detect("The chef ate a meal.", {"original": "The chef cooked the meal.",
                                                       "corrupted": "The chef ate the meal."})
    assert "truth" not in table4.columns  # edited after the replacement: no truth
    with pytest.raises(gr.Error, match="empty"):
        ui.detect("   ")
    with pytest.raises(gr.Error, match="between"):
        ui.replace_and_detect("fine", 0, 0.9)


def test_stand_in_generator_and_data_path(tiny_tokenizer_dir):
    from transformers import AutoTokenizer

    logits = electra.stand_in_generator_logits(torch.tensor([[5, 6]]), vocab_size=V, p_original=0.3)
    assert torch.allclose(logits.exp().sum(-1), torch.ones(1, 2)) and logits[0, 0, 5].exp().item() == pytest.approx(0.3)
    # a generator right 30% of the time leaves ~30% of the selected tokens "original" (§2 rule)
    x = torch.randint(4, V, (1, 20_000), generator=torch.Generator().manual_seed(0))
    r = electra.sample_replacements(electra.stand_in_generator_logits(x, vocab_size=V, p_original=0.3), x,
                                    torch.ones_like(x, dtype=torch.bool), generator=make_generator(0))
    assert r.is_replaced.float().mean().item() == pytest.approx(0.7, abs=0.015)
    tok = AutoTokenizer.from_pretrained(tiny_tokenizer_dir)
    ex = electra.data_path_example(torch.tensor(tok("the cat sat on the mat " * 5)["input_ids"]), tok,
                                   p_original=0.5, seed=1)
    assert ex.untrained.disc_loss.item() == pytest.approx(0.6931, abs=1e-4)  # ln 2 at P = 0.5
    assert ex.untrained.mlm_loss.item() == pytest.approx(torch.log(torch.tensor(float(len(tok)))).item(), abs=1e-3)
    assert ex.untrained.loss.item() == pytest.approx(ex.untrained.mlm_loss.item() + 50 * 0.6931, abs=1e-2)
    with pytest.raises(ValueError, match="p_original"):
        electra.stand_in_generator_logits(x, vocab_size=V, p_original=1.0)


def test_ui_data_path_needs_no_model():
    import gradio as gr

    from bertvariants.ui import electra as ui

    md, df = ui.data_path("The chef cooked the meal in the kitchen and served it to the guests tonight.", 0.0, 2)
    n_masked = int(df["masked for the generator"].sum())
    assert f"**{n_masked} replaced**" in md  # accuracy 0: every masked token is replaced
    assert (df["discriminator target"] == "replaced").sum() == n_masked
    with pytest.raises(gr.Error, match="between"):
        ui.data_path("fine", 1.5, 0)


def test_corrupt_needs_a_shared_vocabulary(tiny_tokenizer_dir):
    from transformers import AutoTokenizer

    g, d = configs()
    tok = AutoTokenizer.from_pretrained(tiny_tokenizer_dir)
    other = ElectraConfig(**{**d.to_dict(), "vocab_size": V + 2})
    with pytest.raises(ValueError, match="share a vocabulary"):
        electra.corrupt_and_discriminate(ElectraForMaskedLM(g), ElectraForPreTraining(other), tok, "a b c")


def test_served_pair_is_the_tabs_generator_and_discriminator(monkeypatch, tmp_path):
    """wikipedia-rtd --model electra-discriminator scores the pair the ELECTRA tab serves (§2): the discriminator
    slot with the generator slot's samples, not a generator/ directory beside it."""
    from bertvariants import serving
    from bertvariants.serving import manifest as mf

    monkeypatch.setenv("BERTVARIANTS_MODELS_DIR", str(tmp_path))  # the shipped models, not a local build
    mf.default_manifest.cache_clear()
    try:
        pair = serving.load("electra-discriminator", kind="electra-rtd")
        gen = serving.get_model("electra-generator")
    finally:
        mf.default_manifest.cache_clear()
    assert pair.variant == "ELECTRA" and pair.kind == "electra-rtd"
    assert type(pair.model).__name__ == "ElectraForPreTraining"
    assert pair.parts["generator"] is gen.model  # the served generator itself
    assert gen.model.config.num_hidden_layers == 3  # mlm-dynamic-3L: ½ the discriminator's depth
    assert "discriminator" in pair.revision and "generator" in pair.revision
    with pytest.raises(ValueError, match="needs an ELECTRA generator and discriminator"):
        serving.load("similarity", kind="electra-rtd")  # not a discriminator slot: the directory path refuses it
