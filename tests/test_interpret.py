"""The Interpret tab: attention maps (every layer and head, checked against the model's own output_attentions and
against softmax(QKᵀ/√d) recomputed by hand), integrated gradients to the paper (completeness), gradient × input,
the PNG / SVG / HTML files, the public endpoints, and bad input."""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET

import numpy as np
import pytest
import torch

from bertvariants import attention as att, figure_files as ff, interpret as ip, saliency as sal
from bertvariants.serving import get_model, get_packaged, load_checkpoint

from .conftest import save_tiny

SENTENCE = "The cat sat on the mat."


@pytest.fixture(scope="module")
def minilm():
    return get_packaged("feature-extraction")


@pytest.fixture(scope="module")
def minilm_maps(minilm):
    return att.attention_maps(minilm.model, minilm.tokenizer, SENTENCE)


# ----------------------------------------------------------------------------------------------- attention
def test_rows_sum_to_one_and_match_the_models_own_output_attentions(minilm, minilm_maps):
    from transformers import AutoModel

    maps = minilm_maps.part()
    assert maps.part == att.ENCODER and maps.weights.shape == (6, 12, 9, 9)  # [CLS] the cat sat on the mat . [SEP]
    np.testing.assert_allclose(maps.weights.sum(-1), 1.0, atol=1e-5)  # every layer, head and row
    reference = AutoModel.from_pretrained(minilm.location, attn_implementation="eager").eval()
    enc = minilm.tokenizer(SENTENCE, return_tensors="pt")
    with torch.no_grad():
        out = reference(**enc, output_attentions=True, output_hidden_states=True)
    np.testing.assert_allclose(maps.weights, torch.stack([a[0] for a in out.attentions]).numpy(), atol=1e-5)
    # layer 1 by hand: A = softmax(Q Kᵀ / √d) from the embeddings' output (Vaswani et al. §3.2.1)
    self_att = reference.encoder.layer[0].attention.self
    h = out.hidden_states[0][0]  # (T, 384)
    d = self_att.attention_head_size
    with torch.no_grad():
        q = self_att.query(h).view(len(h), -1, d).transpose(0, 1)  # (H, T, d)
        k = self_att.key(h).view(len(h), -1, d).transpose(0, 1)
        by_hand = torch.softmax(q @ k.transpose(1, 2) / math.sqrt(d), -1).numpy()
    np.testing.assert_allclose(maps.weights[0], by_hand, atol=1e-5)
    assert maps.query_tokens[0] == "[CLS]" and maps.key_tokens[-1] == "[SEP]"


def test_the_shared_model_keeps_sdpa(minilm, minilm_maps):
    assert minilm.model.config._attn_implementation == "sdpa"  # the eager copy did the work


def test_head_summaries_by_hand():
    w = np.zeros((1, 2, 3, 3), dtype=np.float32)
    w[0, 0] = np.eye(3)  # every token reads itself: entropy 0, distance 0
    w[0, 1] = 1 / 3  # uniform: entropy ln 3, distance mean(|i - j|) = (1 + 2/3 + 1) / 3
    np.testing.assert_allclose(att.head_entropy(w), [[0.0, math.log(3)]], atol=1e-6)
    np.testing.assert_allclose(att.mean_distance(w), [[0.0, (1 + 2 / 3 + 1) / 3]], atol=1e-6)
    with pytest.raises(ValueError, match="needs self-attention"):
        att.mean_distance(np.ones((1, 1, 2, 3)) / 3)


def test_overview_has_layers_times_heads_entries(minilm_maps):
    maps = minilm_maps.part()
    fig = ip.overview_figure(maps, 6, 12)
    assert [np.asarray(t.z).shape for t in fig.data] == [(6, 12), (6, 12)]  # entropy and distance
    assert fig.layout.title.text and all(a.text for a in fig.layout.annotations)  # a title per panel
    head = ip.head_figure(maps, 6, 12)
    z = np.asarray(head.data[0].z)
    assert z.shape == (9, 9) and np.array_equal(z, np.round(z, 4))  # rounded: no float32 tails on hover
    assert head.layout.title.text == "Layer 6, head 12: encoder self-attention"
    assert head.layout.xaxis.title.text and head.layout.yaxis.title.text
    assert list(head.layout.xaxis.ticktext) == ip.display_tokens(maps.key_tokens)


def test_attention_view_of_the_packaged_minilm():
    view = ip.attention_view("similarity", ip.DEFAULT_SENTENCE, layer=ip.DEFAULT_LAYER, head=ip.DEFAULT_HEAD)
    assert "**it → animal**" in view.summary  # "it" reads the noun it refers to
    assert [p.suffix for p in view.files] == [".png", ".svg", ".html"]
    clamped = ip.attention_view("similarity", "A dog.", layer=40, head=99, clamp=True)
    assert (clamped.layer, clamped.head) == (6, 12)


def test_decoder_attention_is_causal_and_encoder_decoder_has_cross_attention(tiny_tokenizer_dir, tmp_path):
    import transformers as tf

    llama = tf.LlamaConfig(vocab_size=30522, hidden_size=36, intermediate_size=37, num_hidden_layers=2,
                           num_attention_heads=3, num_key_value_heads=1, max_position_embeddings=128,
                           pad_token_id=0, bos_token_id=101, eos_token_id=102)
    dec = load_checkpoint(str(save_tiny(tf.LlamaForCausalLM, llama, tiny_tokenizer_dir, tmp_path / "llama")),
                          "causal-lm")
    maps = att.attention_maps(dec.model, dec.tokenizer, SENTENCE).part()
    assert maps.part == att.DECODER and maps.causal and maps.weights.shape[:2] == (2, 3)
    np.testing.assert_allclose(maps.weights.sum(-1), 1.0, atol=1e-5)
    assert np.all(np.triu(maps.weights, k=1) == 0)  # no token reads a later one
    bart = tf.BartConfig(vocab_size=30522, d_model=36, encoder_layers=2, decoder_layers=1, encoder_attention_heads=3,
                         decoder_attention_heads=3, encoder_ffn_dim=37, decoder_ffn_dim=37, max_position_embeddings=128,
                         pad_token_id=0, bos_token_id=101, eos_token_id=102, decoder_start_token_id=102)
    s2s = load_checkpoint(str(save_tiny(tf.BartForConditionalGeneration, bart, tiny_tokenizer_dir, tmp_path / "bart")),
                          "seq2seq")
    result = att.attention_maps(s2s.model, s2s.tokenizer, SENTENCE, max_new_tokens=5)
    cross = result.part()
    assert result.main == att.CROSS and set(result.parts) == set(att.PARTS)
    assert cross.weights.shape == (1, 3, len(cross.query_tokens), len(result.part(att.ENCODER).key_tokens))
    np.testing.assert_allclose(cross.weights.sum(-1), 1.0, atol=1e-5)
    assert [np.asarray(t.z).shape for t in ip.overview_figure(cross, 1, 1).data] == [(1, 3)]  # no distance
    with pytest.raises(ValueError, match="has no cross-attention; it has: decoder self-attention"):
        att.attention_maps(dec.model, dec.tokenizer, SENTENCE).part(att.CROSS)


def test_a_bilstm_has_no_attention_and_is_not_offered_for_it():
    student = get_model("distillation-student")
    with pytest.raises(ValueError, match="recurrent network .* no attention layers"):
        att.attention_maps(student.model, student.tokenizer, SENTENCE, architecture=student.architecture)
    offered = ip.offer(ip.ATTENTION_KINDS, attention=True)
    names = {t for m in offered.models for t in m.tasks}
    assert {"similarity", "distillation-teacher", "clinical-classifier", "spanbert-qa", "albert-fill-mask",
            "electra-discriminator"} <= names
    assert "distillation-student" not in names and any("distillation-student" in x for x in offered.excluded)
    assert len({m.name for m in offered.models}) == len(offered.models)  # one entry per checkpoint


# ----------------------------------------------------------------------------------------------- saliency
def test_gradient_x_input_of_a_linear_model_is_w_times_x():
    g = torch.Generator().manual_seed(0)
    w, x = torch.randn(7, 5, generator=g), torch.randn(7, 5, generator=g)
    f = lambda e: (e * w).sum((-1, -2))  # F(x) = <w, x>
    torch.testing.assert_close(sal.gradient_x_input(f, x).float(), w * x)
    ig = sal.integrated_gradients(f, x, torch.zeros_like(x), steps=3)  # linear: exact for any m
    torch.testing.assert_close(ig.attributions.float(), w * x, atol=1e-5, rtol=1e-5)


def test_ig_completeness_gap_shrinks_with_steps():
    w = torch.tensor([[1.5, -2.0], [0.5, 3.0]])
    f = lambda e: torch.sigmoid((e * w).sum((-1, -2)))  # saturating, like a classifier
    x, x0 = torch.ones(2, 2), torch.zeros(2, 2)
    exact = float(torch.sigmoid(w.sum()) - 0.5)
    gaps = {rule: [sal.integrated_gradients(f, x, x0, steps=m, rule=rule).gap for m in (5, 50, 300)]
            for rule in sal.RULES}
    for rule, tol in (("riemann", 2e-3), ("trapezoid", 1e-5)):  # errors O(1/m) and O(1/m²)
        assert gaps[rule][0] > gaps[rule][1] > gaps[rule][2] and gaps[rule][2] < tol, gaps
    assert all(t < r for t, r in zip(gaps["trapezoid"], gaps["riemann"])), gaps
    ig = sal.integrated_gradients(f, x, x0, steps=300)
    assert ig.delta == pytest.approx(exact) and ig.total == pytest.approx(exact, abs=1e-5)
    alphas, weights = sal.path_points(4, "trapezoid")
    assert alphas.tolist() == [0, 0.25, 0.5, 0.75, 1] and weights.tolist() == [0.125, 0.25, 0.25, 0.25, 0.125]
    assert sal.path_points(4, "riemann")[0].tolist() == [0.25, 0.5, 0.75, 1.0]  # the paper's eq. 3


@pytest.mark.parametrize("task, tol", [("distillation-teacher", 1e-4), ("distillation-student", 2e-3),
                                       ("clinical-classifier", 1e-4)])
def test_ig_completeness_on_every_served_classifier(task, tol):
    m = get_model(task)
    coarse = sal.explain(m.model, m.tokenizer, "A gripping, beautifully acted film.", steps=5)
    fine = sal.explain(m.model, m.tokenizer, "A gripping, beautifully acted film.", steps=300)
    assert fine.ig.gap < tol < coarse.ig.gap, (coarse.ig.gap, fine.ig.gap)
    assert fine.ig.total == pytest.approx(fine.ig.delta, abs=tol)
    special = np.array(fine.special)
    assert special[0] and special[-1] and np.all(fine.integrated_gradients[special] == 0)  # x = x' there
    assert all(p.grad is None for p in m.model.parameters())  # nothing accumulated in the shared model


def test_bilstm_logits_from_embeddings_equal_its_forward():
    m = get_model("distillation-student")
    enc = m.tokenizer(["A gripping film.", "Dull."], padding=True, return_tensors="pt")
    ids = enc["input_ids"][:1]
    with torch.no_grad():
        ours = m.model.logits_from_embeddings(m.model.input_embeddings(ids))
        torch.testing.assert_close(ours, m.model(input_ids=ids).logits)


def test_saliency_view_has_one_entry_per_token_and_rounded_numbers():
    view = ip.saliency_view("distillation-teacher", ip.DEFAULT_REVIEW, steps=20)
    tokens = view.result.tokens
    assert len(view.gradient_x_input) == len(view.integrated_gradients) == len(view.table) == len(tokens)
    assert "".join(t for t, _ in view.integrated_gradients) == "[CLS] the plot is thin, but the performances are " \
                                                               "wonderful. [SEP]"
    assert max(abs(s) for _, s in view.integrated_gradients) == 1.0
    for column in ("grad × input", "IG"):
        assert all(v == float(f"{v:.4g}") == round(v, 6) for v in view.table[column])  # no float32 tails
    assert "Prediction: positive" in view.summary and "Completeness gap" in view.summary
    assert len(view.smoothgrad) == len(tokens) and list(view.table.columns) == ["token", "grad × input", "IG",
                                                                                 "SmoothGrad"]


# ----------------------------------------------------------------------------------------------- files
def test_exports_are_valid_png_svg_html(tmp_path):
    values = np.array([[0.1, 0.9], [0.5, 0.5]])
    panels = [ff.Panel("Layer 1, head 1", values, ["a\x00b", "\u202ertl"], ["x", "y"], "query", "key", "weight",
                       annotate=True, highlight=(0, 1))]
    png, svg, html = ff.write_files(panels, title="A <test> & title", caption="caption", folder=tmp_path)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    root = ET.fromstring(svg.read_text(encoding="utf-8"))  # well-formed XML despite the control characters
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    titles = [t.text for t in root.iter("{http://www.w3.org/2000/svg}title")]
    assert "query a·b · key y: 0.9000" in titles
    page = html.read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>") and "<script" not in page and "http://" not in page.replace(
        'xmlns="http://www.w3.org/2000/svg"', "")
    ET.fromstring(page[page.index("<svg"): page.index("</svg>") + 6])
    assert ff.write_files(panels, title="A <test> & title", caption="caption", folder=tmp_path) == [png, svg, html]
    from PIL import Image

    with Image.open(png) as img:
        d = ff.layout(panels, title="A <test> & title")
        assert img.size == (int(d.width * 2), int(d.height * 2))


def test_attention_files_hold_the_head_and_the_overview(minilm_maps):
    panels = ip.export_panels(minilm_maps.part(), 2, 3)
    assert [p.values.shape for p in panels] == [(9, 9), (6, 12), (6, 12)]
    assert panels[1].highlight == (1, 2)


# ----------------------------------------------------------------------------------------------- the app
def test_endpoints_are_registered_with_docstrings():
    from bertvariants.ui import build_demo
    from bertvariants.ui import interpret as ui

    api = build_demo().get_api_info()["named_endpoints"]
    from bertvariants.ui import sentence_bert as sbert

    assert {"/attention", "/saliency", "/faithfulness", "/mlm_lens", "/similarity_attribution"} <= set(api)
    params = {name: [p["parameter_name"] for p in api[name]["parameters"]] for name in api}
    assert params["/attention"] == ["model", "sentence", "layer", "head", "part", "view"]
    assert params["/saliency"] == ["model", "sentence", "steps", "baseline", "rule", "contrast"]
    assert params["/faithfulness"] == ["model", "sentence", "steps", "baseline"]
    assert params["/mlm_lens"] == ["model", "sentence", "answer", "top_k"]
    assert params["/similarity_attribution"] == ["a", "b", "steps"]
    assert params["/summary_attribution"] == ["document", "new_tokens"]
    for fn in (ui.attention, ui.saliency, ui.faithfulness, ui.mlm_lens, sbert.similarity_attribution,
               ui.summary_attribution):
        assert "Args:" in fn.__doc__ and "Returns:" in fn.__doc__
        args = fn.__doc__.split("Args:")[1].split("Returns:")[0]
        missing = [p for p in params[f"/{fn.__name__}"] if f"{p}:" not in args]
        assert not missing, f"{fn.__name__}: document {missing} under Args:"


# ----------------------------------------------------------------------------------------------- bad input
@pytest.mark.parametrize("kwargs, message", [
    (dict(name="similarity", text="   "), r"the text is empty"),
    (dict(name="similarity", text="word " * 300), r"has 1,500 characters; the limit is 1,000"),
    (dict(name="similarity", text="supercalifragilistic " * 40), r"the text has \d+ tokens; the limit is 128"),
    (dict(name="no-such-model", text=SENTENCE), r"unknown model 'no-such-model': choose one of similarity"),
    (dict(name="similarity", text=SENTENCE, layer=7), r"layer must be a whole number between 1 and 6"),
    (dict(name="similarity", text=SENTENCE, head=0), r"head must be a whole number between 1 and 12"),
    (dict(name="similarity", text=SENTENCE, part="cross-attention"), r"has no cross-attention"),
    (dict(name="similarity", text=SENTENCE, part="sideways"), r"the attention must be one of auto"),
    (dict(name="distillation-student", text=SENTENCE), r"unknown model 'distillation-student'"),
])
def test_attention_bad_input(kwargs, message):
    name, text = kwargs.pop("name"), kwargs.pop("text")
    with pytest.raises(ValueError, match=message):
        ip.attention_view(name, text, **kwargs)


@pytest.mark.parametrize("kwargs, message", [
    (dict(text=""), r"the text is empty"),
    (dict(steps=0), r"whole number between 1 and 300, got 0"),
    (dict(steps=301), r"between 1 and 300, got 301"),
    (dict(steps=2.5), r"whole number between 1 and 300, got 2.5"),
    (dict(steps=float("nan")), r"between 1 and 300, got nan"),
    (dict(baseline="noise"), r"baseline must be one of pad, zero"),
    (dict(rule="simpson"), r"the rule one of trapezoid, riemann"),
    (dict(name="similarity"), r"unknown model 'similarity': choose one of distillation-teacher"),
])
def test_saliency_bad_input(kwargs, message):
    args = dict(name="distillation-teacher", text=SENTENCE) | kwargs
    with pytest.raises(ValueError, match=message):
        ip.saliency_view(args.pop("name"), args.pop("text"), **args)


def test_the_handlers_turn_bad_input_into_a_message():
    import gradio as gr

    from bertvariants.ui import interpret as ui

    with pytest.raises(gr.Error, match="Sentence is empty"):
        ui.attention("similarity", "", 1, 1, "auto")
    with pytest.raises(gr.Error, match="Layer must be a finite number"):
        ui.attention("similarity", SENTENCE, float("nan"), 1, "auto")
    with pytest.raises(gr.Error, match="Integration steps must be a whole number between 1 and 300"):
        ui.saliency("distillation-teacher", SENTENCE, 1e12, "pad", "trapezoid")
    with pytest.raises(gr.Error, match="unknown contrast class"):
        ui.saliency("distillation-teacher", SENTENCE, 5, "pad", "trapezoid", "no-such-class")
    with pytest.raises(gr.Error, match="the view must be one of attention, rollout, flow"):
        ui.attention("similarity", SENTENCE, 1, 1, "auto", "sideways")
    with pytest.raises(gr.Error, match="baseline must be one of pad, zero"):
        ui.faithfulness("distillation-teacher", SENTENCE, 5, "noise")
    with pytest.raises(gr.Error, match="the text has no mask token"):
        ui.mlm_lens("albert-fill-mask", SENTENCE, "", 5)
    with pytest.raises(gr.Error, match="top-k must be a whole number between 1 and 20"):
        ui.mlm_lens("albert-fill-mask", "The [MASK].", "", 21)
