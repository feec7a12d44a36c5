"""The Interpret tab's newer methods, each against the property its paper proves: deletion / insertion curves and
AOPC (Samek et al. 2017; Petsiuk et al. 2018), SmoothGrad (Smilkov et al. 2017), contrastive attribution (Yin &
Neubig 2022), attention rollout and flow (Abnar & Zuidema 2020), the MLM lens, and integrated Jacobians for a
Siamese encoder (Möller et al. 2023)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from bertvariants import explain_figures as xf, faithfulness as fa, interpret as ip, interpret_views as iv
from bertvariants import mlm_lens as ml, rollout as ro, saliency as sal, similarity_attribution as sa
from bertvariants.serving import get_model, get_packaged, load_checkpoint

from .conftest import save_tiny

pytestmark = pytest.mark.usefixtures("one_torch_thread")
PAIR = ("A man is eating food.", "Someone is having a meal.")  # the Sentence-BERT tab's default pair


def stochastic(n_layers: int, heads: int, t: int, seed: int) -> np.ndarray:
    w = np.random.default_rng(seed).random((n_layers, heads, t, t))
    return w / w.sum(-1, keepdims=True)


# ----------------------------------------------------------------------------------------------- rollout / flow
def test_rollout_is_row_stochastic_and_is_the_product_of_the_residual_matrices():
    w = stochastic(3, 4, 7, seed=0)
    a = ro.residual_attention(w)
    np.testing.assert_allclose(a, (0.5 * w.mean(1) + 0.5 * np.eye(7)), atol=1e-12)  # rows of ½A + ½I sum to 1
    r = ro.rollout(w)
    np.testing.assert_allclose(r.sum(-1), 1.0, atol=1e-12)  # every layer, every row
    assert np.all(r >= 0)
    np.testing.assert_allclose(r[2], a[2] @ a[1] @ a[0], atol=1e-12)  # §3 eq. 1


def test_rollout_of_a_served_encoder_is_row_stochastic():
    m = get_packaged("feature-extraction")
    from bertvariants.attention import attention_maps

    weights = attention_maps(m.model, m.tokenizer, ip.DEFAULT_SENTENCE).part().weights
    np.testing.assert_allclose(ro.rollout(weights).sum(-1), 1.0, atol=1e-6)


def min_cut(capacity: np.ndarray, source: int, sink: int) -> float:
    """Brute force over every cut (the max-flow min-cut theorem's other side)."""
    others = [v for v in range(len(capacity)) if v not in (source, sink)]
    best = np.inf
    for k in range(len(others) + 1):
        for side in itertools.combinations(others, k):
            s = {source, *side}
            best = min(best, sum(capacity[u, v] for u in s for v in range(len(capacity)) if v not in s))
    return best


def test_flow_is_the_min_cut_of_the_layered_graph_and_one_layer_is_the_attention():
    w = stochastic(2, 2, 3, seed=1)
    f = ro.flow(w)
    cap = ro.flow_graph(ro.residual_attention(w)).toarray() / ro.FLOW_SCALE
    for i, j in itertools.product(range(3), range(3)):
        assert f[i, j] == pytest.approx(min_cut(cap, 2 * 3 + i, j), abs=1e-9)
    assert np.all((f >= 0) & (f <= 1))
    np.testing.assert_allclose(ro.flow(w[:1]), ro.residual_attention(w[:1])[0], atol=2e-6)  # one edge per pair
    with pytest.raises(ValueError, match="the limit is 40 tokens"):
        ro.flow(stochastic(1, 1, 41, seed=2))
    with pytest.raises(ValueError, match=r"self-attention weights \(L, H, T, T\)"):
        ro.rollout(np.ones((1, 1, 2, 3)))


def test_attention_view_shows_rollout_and_flow():
    view = ip.attention_view("similarity", ip.DEFAULT_SENTENCE, layer=6, head=1, method="rollout")
    np.testing.assert_allclose(view.traced.sum(-1), 1.0, atol=1e-6)
    assert "Attention rollout" in view.summary and view.head_figure.layout.title.text.startswith("Attention rollout")
    flow = ip.attention_view("similarity", "The cat sat.", layer=2, head=1, method="flow")
    assert flow.traced.shape == (6, 6) and np.all(flow.traced <= 1)
    with pytest.raises(ValueError, match="the view must be one of attention, rollout, flow"):
        ip.attention_view("similarity", "The cat sat.", method="sideways")


# ----------------------------------------------------------------------------------------------- faithfulness
def test_aopc_and_areas_by_hand():
    assert fa.aopc(np.array([1.0, 0.5, 0.0])) == pytest.approx(0.5)  # mean of 0, 0.5, 1 (eq. 12)
    assert fa.area(np.array([1.0, 0.5, 0.0])) == pytest.approx(0.5)
    x, x0 = torch.arange(6.0).view(3, 2), torch.zeros(3, 2)
    rows = fa.perturbed(x, x0, [2, 0])
    assert rows[0].tolist() == x.tolist() and rows[2].tolist() == [[0, 0], [2, 3], [0, 0]]
    ins = fa.perturbed(x, x0, [2, 0], insert=True)
    assert ins[0].tolist() == x0.tolist() and ins[1].tolist() == [[0, 0], [0, 0], [4, 5]]


def test_gradient_x_input_is_the_most_faithful_order_of_an_additive_model():
    """F = Σ w·x with a zero baseline: removing word i lowers F by exactly its gradient × input, so that order
    maximises AOPC over all orders (checked against all 5! of them), and beats the random orders."""
    g = torch.Generator().manual_seed(0)
    w, x = torch.randn(5, 3, generator=g), torch.randn(5, 3, generator=g)
    f = lambda e: (e * w).sum((-1, -2))
    scores = sal.gradient_x_input(f, x).sum(-1).numpy()
    words = list(range(5))
    result = fa.evaluate(f, x, torch.zeros_like(x), {"gradient × input": scores}, words, output="F", n_random=20)
    best = max(fa.curves(f, x, torch.zeros_like(x), list(o)).aopc for o in itertools.permutations(words))
    assert result.methods[0].aopc == pytest.approx(best, abs=1e-6)
    assert result.methods[0].aopc > max(c.aopc for c in result.random) - 1e-9
    again = fa.evaluate(f, x, torch.zeros_like(x), {"g": scores}, words, output="F", n_random=20)
    assert [c.order for c in again.random] == [c.order for c in result.random]  # seeded


@pytest.mark.parametrize("text", iv.FAITHFULNESS_EXAMPLES)
def test_ig_deletion_beats_a_random_order_on_the_shipped_sst2_teacher(text):
    view = iv.faithfulness_view("distillation-teacher", text)
    by = {c.method: c for c in view.result.methods}
    ig, rand = by["integrated gradients"].aopc, float(np.mean([c.aopc for c in view.result.random]))
    print(f"\n{text!r}: " + ", ".join(f"{c.method} {c.aopc:.4f}" for c in view.result.methods)
          + f", random {rand:.4f}")
    assert ig > rand
    assert set(by) == {"gradient × input", "integrated gradients", "SmoothGrad × input",
                       "attention ([CLS], last layer)", "attention rollout ([CLS])"}
    assert [p.suffix for p in view.files] == [".png", ".svg", ".html"]
    curves = view.result.methods[0]
    assert curves.deletion[0] == pytest.approx(view.saliency.probabilities[view.saliency.target], abs=1e-5)


def test_faithfulness_of_the_bilstm_leaves_attention_out():
    view = iv.faithfulness_view("distillation-student", "A gripping film.", steps=10, n_random=3)
    assert len(view.result.methods) == 3 and "no attention layers" in view.summary


# ----------------------------------------------------------------------------------------------- SmoothGrad, contrast
def test_smoothgrad_of_a_linear_model_is_gradient_x_input_and_is_seeded():
    g = torch.Generator().manual_seed(1)
    w, x = torch.randn(4, 3, generator=g), torch.randn(4, 3, generator=g)
    lin = lambda e: (e * w).sum((-1, -2))
    sg = sal.smoothgrad(lin, x, samples=7, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(sg, sal.gradient_x_input(lin, x))  # a constant gradient: noise changes nothing
    sq = lambda e: (e * w).sum((-1, -2)) ** 2
    a = sal.smoothgrad(sq, x, generator=torch.Generator().manual_seed(3))
    assert torch.equal(a, sal.smoothgrad(sq, x, generator=torch.Generator().manual_seed(3)))
    assert not torch.equal(a, sal.smoothgrad(sq, x, generator=torch.Generator().manual_seed(4)))
    none = torch.zeros(4, 1, dtype=torch.bool)  # noise nowhere: the plain gradient × input
    torch.testing.assert_close(sal.smoothgrad(sq, x, where=none, generator=g), sal.gradient_x_input(sq, x))
    with pytest.raises(ValueError, match="SmoothGrad samples must be a whole number between 1 and 200"):
        sal.smoothgrad(sq, x, samples=0, generator=g)


def test_contrastive_ig_is_complete_for_the_logit_difference():
    m = get_model("distillation-teacher")
    r = sal.explain(m.model, m.tokenizer, ip.DEFAULT_REVIEW, foil="runner-up")
    assert r.output == "logit(positive) − logit(negative)" and r.foil == 0
    assert r.ig.gap <= 0.01 * abs(r.ig.delta)  # completeness within 1% at the default 50 steps
    named = sal.explain(m.model, m.tokenizer, ip.DEFAULT_REVIEW, foil="negative")
    np.testing.assert_allclose(named.integrated_gradients, r.integrated_gradients)
    with pytest.raises(ValueError, match="is the predicted class itself"):
        sal.explain(m.model, m.tokenizer, ip.DEFAULT_REVIEW, foil="positive")
    with pytest.raises(ValueError, match="unknown contrast class 'neutral'"):
        ip.saliency_view("distillation-teacher", ip.DEFAULT_REVIEW, contrast="neutral")


def test_ig_is_complete_within_1_percent_at_the_default_steps():
    m = get_model("distillation-teacher")
    r = sal.explain(m.model, m.tokenizer, ip.DEFAULT_REVIEW)
    assert r.ig.steps == sal.DEFAULT_STEPS and r.ig.gap <= 0.01 * abs(r.ig.delta), (r.ig.gap, r.ig.delta)


# ----------------------------------------------------------------------------------------------- MLM lens
def tiny_mlms(tiny_tokenizer_dir, tmp_path):
    import transformers as tf

    common = dict(vocab_size=30522, hidden_size=36, num_hidden_layers=2, num_attention_heads=3, intermediate_size=37,
                  max_position_embeddings=128)
    configs = {tf.AlbertForMaskedLM: tf.AlbertConfig(embedding_size=20, **common),
               tf.RobertaForMaskedLM: tf.RobertaConfig(**{**common, "max_position_embeddings": 130}),
               tf.ElectraForMaskedLM: tf.ElectraConfig(embedding_size=36, **common),
               tf.DistilBertForMaskedLM: tf.DistilBertConfig(vocab_size=30522, dim=36, n_layers=2, n_heads=3,
                                                             hidden_dim=37, max_position_embeddings=128)}
    for cls, cfg in configs.items():
        yield load_checkpoint(str(save_tiny(cls, cfg, tiny_tokenizer_dir, tmp_path / cls.__name__)), "masked-lm")


def lens_equals_fill_mask(m, text: str) -> ml.Lens:
    from bertvariants.inference import fill_mask

    result = ml.lens(m.model, m.tokenizer, text, top_k=5)
    enc = m.tokenizer(text, return_tensors="pt")
    with torch.no_grad():
        logits = m.model(**enc).logits[0].float()
    predicted = fill_mask(m.model, m.tokenizer, [text], top_k=5)[0]
    for mask, own in zip(result.masks, predicted):
        assert torch.equal(mask.logits[-1], logits[mask.position]), type(m.model).__name__  # bit for bit
        assert mask.layers[-1].tokens == own.tokens
        assert mask.layers[-1].probabilities == pytest.approx(own.probabilities, abs=1e-7)
    return result


def test_the_last_layer_of_the_lens_is_the_models_own_fill_mask(tiny_tokenizer_dir, tmp_path):
    shipped = get_model("albert-fill-mask")
    result = lens_equals_fill_mask(shipped, "The capital of France is [MASK] and [MASK] is big.")
    assert len(result.masks) == 2 and len(result.masks[0].layers) == result.layers + 1 == 7
    for m in tiny_mlms(tiny_tokenizer_dir, tmp_path):  # every head in the table
        lens_equals_fill_mask(m, "The cat sat on the [MASK].")


def test_paris_enters_the_top_5_of_the_shipped_masked_lm_at_layer_4():
    view = iv.mlm_lens_view("albert-fill-mask", iv.DEFAULT_LENS_SENTENCE, answer=iv.DEFAULT_LENS_ANSWER)
    mask = view.result.masks[0]
    print("\n" + "\n".join(f"layer {p.layer}: {p.tokens} rank {p.gold_rank}" for p in mask.layers))
    assert mask.first_layer_in_top(5) == 4 and mask.layers[0].gold_rank > 1000
    assert "first enters the top 5 at layer 4" in view.summary
    assert [p.suffix for p in view.files] == [".png", ".svg", ".html"]
    assert np.asarray(view.lens_figure.data[0].z).shape == (7, 5)


def test_trajectories_are_one_pca_over_every_layer():
    from sklearn.decomposition import PCA

    h = np.random.default_rng(0).normal(size=(4, 6, 10)) * np.linspace(3, 0.1, 10)
    t = ml.trajectories(h)
    ref = PCA(2).fit(h.reshape(-1, 10))
    np.testing.assert_allclose(np.abs(t.coords.reshape(-1, 2)), np.abs(ref.transform(h.reshape(-1, 10))), atol=1e-8)
    np.testing.assert_allclose(t.explained, ref.explained_variance_ratio_, atol=1e-10)
    assert xf.trajectory_figure(["[CLS]", "a", "b", "c", "d", "[SEP]"], t, [True, False, False, False, False, True])


def test_lens_bad_input():
    m = get_model("albert-fill-mask")
    with pytest.raises(ValueError, match=r"no mask token: write \[MASK\]"):
        ml.lens(m.model, m.tokenizer, "No mask here.")
    with pytest.raises(ValueError, match=r"is 6 tokens for this model \(super ##cal"):
        ml.lens(m.model, m.tokenizer, "The [MASK].", gold="supercalifragilistic")
    with pytest.raises(ValueError, match="top-k must be a whole number between 1 and 20"):
        ml.lens(m.model, m.tokenizer, "The [MASK].", top_k=0)
    clf = get_model("distillation-teacher")
    with pytest.raises(ValueError, match="has no masked-LM head"):
        ml.lens(clf.model, clf.tokenizer, "The [MASK].")


# ----------------------------------------------------------------------------------------------- integrated Jacobians
def test_integrated_contributions_of_a_linear_encoder_are_exact():
    g = torch.Generator().manual_seed(0)
    w, x, r = torch.randn(5, 4 * 3, generator=g), torch.randn(4, 3, generator=g), torch.randn(4, 3, generator=g)
    f = lambda e: e.reshape(e.shape[0], -1) @ w.T  # (B, T, E) -> (B, 5)
    p = sa.integrated_contributions(f, x, r, steps=2)
    expected = torch.stack([(w.view(5, 4, 3)[:, i] * (x - r)[i]).sum(-1) for i in range(4)], 1).double()
    torch.testing.assert_close(p, expected, atol=1e-5, rtol=1e-5)
    sq = lambda e: torch.tanh(e.reshape(e.shape[0], -1) @ w.T)  # nonlinear: Σ_i P[:, i] → f(x) − f(r)
    total = sa.integrated_contributions(sq, x, r, steps=200).sum(1)
    torch.testing.assert_close(total, (sq(x[None]) - sq(r[None]))[0].double(), atol=1e-3, rtol=1e-3)


def test_pair_attribution_sums_to_the_score_minus_the_reference_terms():
    from bertvariants.sentence_bert import similarity

    view = iv.similarity_attribution_view(*PAIR)
    r = view.result
    m = get_model("similarity")
    assert r.score == pytest.approx(similarity(m.model, m.tokenizer, *PAIR).score, abs=1e-5)  # the tab's cosine
    assert r.steps == sa.DEFAULT_STEPS and r.relative_gap <= 0.01, (r.gap, r.target)  # completeness within 1%
    assert r.total == pytest.approx(r.score - r.reference_terms, rel=0.01)
    assert np.all(r.matrix[np.array(r.special_a)] == 0) and np.all(r.matrix[:, np.array(r.special_b)] == 0)
    top = r.top_pairs(3)
    print("\ntop pairs:", top, f"gap {r.gap:.2e} ({100 * r.relative_gap:.5f}%)")
    assert top[0][1] == "meal" and {top[0][0], top[1][0]} == {"food", "eating"}
    assert [p.suffix for p in view.files] == [".png", ".svg", ".html"] and len(view.pairs) == sa.TOP_PAIRS
    with pytest.raises(ValueError, match="the sentence has 60 tokens; the limit is 32"):
        sa.attribute_pair(m.model, m.tokenizer, "word " * 58, "A cat.")


# ----------------------------------------------------------------------------------------------- generation
def tiny_generators(tiny_tokenizer_dir, tmp_path):
    import transformers as tf

    llama = tf.LlamaConfig(vocab_size=30522, hidden_size=36, intermediate_size=37, num_hidden_layers=2,
                           num_attention_heads=3, num_key_value_heads=1, max_position_embeddings=256,
                           pad_token_id=0, bos_token_id=101, eos_token_id=102)
    out = tmp_path / "llama"
    tok = tf.AutoTokenizer.from_pretrained(tiny_tokenizer_dir)
    tok.chat_template = "{% for m in messages %}{{ m['content'] }} [SEP] {% endfor %}"
    tok.save_pretrained(out)
    yield load_checkpoint(str(save_tiny(tf.LlamaForCausalLM, llama, tiny_tokenizer_dir, out)), "causal-lm")
    bart = tf.BartConfig(vocab_size=30522, d_model=36, encoder_layers=1, decoder_layers=1, encoder_attention_heads=3,
                         decoder_attention_heads=3, encoder_ffn_dim=37, decoder_ffn_dim=37, max_position_embeddings=256,
                         pad_token_id=0, bos_token_id=101, eos_token_id=102, decoder_start_token_id=102)
    yield load_checkpoint(str(save_tiny(tf.BartForConditionalGeneration, bart, tiny_tokenizer_dir, tmp_path / "bart")),
                          "seq2seq")


def first_token_by_hand(m, doc: str) -> tuple[np.ndarray, float]:
    """x · ∂p/∂x at the document's tokens for the first greedy token, p its probability, computed directly."""
    from bertvariants.smollm import build_prompt

    net = m.model
    if m.kind == "seq2seq":
        ids = m.tokenizer(doc, return_tensors="pt")["input_ids"]
        where = list(range(ids.shape[1]))
    else:
        ids = m.tokenizer(build_prompt(m.tokenizer, doc), add_special_tokens=False, return_tensors="pt")["input_ids"]
        doc_ids = m.tokenizer(doc, add_special_tokens=False)["input_ids"]
        row = ids[0].tolist()
        at = next(i for i in range(len(row)) if row[i:i + len(doc_ids)] == doc_ids)
        where = list(range(at, at + len(doc_ids)))
    with torch.no_grad():
        x = net.get_input_embeddings()(ids)[0]
    x = x.clone().requires_grad_(True)
    if m.kind == "seq2seq":
        start = torch.tensor([[net.config.decoder_start_token_id]])
        logits = net(inputs_embeds=x[None], decoder_input_ids=start).logits[0, -1]
    else:
        logits = net(inputs_embeds=x[None]).logits[0, -1]
    p = logits.softmax(-1).max()  # greedy: the first token is the argmax
    (g,) = torch.autograd.grad(p, x)
    return (x * g).sum(-1)[where].detach().numpy(), float(p.detach())


def test_generation_attribution_is_the_gradient_of_each_greedy_tokens_probability(tiny_tokenizer_dir, tmp_path):
    from bertvariants import generation_attribution as ga

    doc = "The council voted to turn the rail yard into a park. It opens next year."
    for m in tiny_generators(tiny_tokenizer_dir, tmp_path):
        r = ga.attribute_generation(m.model, m.tokenizer, doc, max_new_tokens=5)
        n = len(r.generated_tokens)
        assert 1 <= n <= 5 and r.scores.shape == (n, len(r.source_tokens))
        if m.kind == "causal-lm":  # the document's tokens only: the instruction around them is left out
            assert r.source_tokens == m.tokenizer.tokenize(doc)
        scores, p = first_token_by_hand(m, doc)
        np.testing.assert_allclose(r.scores[0], scores, atol=1e-6)
        assert r.probabilities[0] == pytest.approx(p, abs=1e-6)
        assert np.all(r.probabilities > 0) and np.all(r.probabilities <= 1)
    with pytest.raises(ValueError, match="between 1 and 24, got 25"):
        ga.attribute_generation(m.model, m.tokenizer, doc, max_new_tokens=25)
    with pytest.raises(ValueError, match="the document is empty"):
        ga.attribute_generation(m.model, m.tokenizer, "  ")
    with pytest.raises(ValueError, match=r"the document has \d+ tokens; the limit is 256"):
        ga.attribute_generation(m.model, m.tokenizer, "supercalifragilistic " * 100)


# ----------------------------------------------------------------------------------------------- bad input
@pytest.mark.parametrize("call, message", [
    (lambda: iv.faithfulness_view("similarity", "A film."), r"unknown model 'similarity': choose one of distillation"),
    (lambda: iv.faithfulness_view("distillation-teacher", " "), r"the text is empty"),
    (lambda: iv.faithfulness_view("distillation-teacher", "A film.", n_random=0), r"random orders must be a whole number between 1"),
    (lambda: iv.faithfulness_view("distillation-teacher", "A film.", steps=0), r"between 1 and 300, got 0"),
    (lambda: iv.mlm_lens_view("distillation-teacher", "The [MASK]."), r"unknown model 'distillation-teacher'"),
    (lambda: iv.mlm_lens_view("albert-fill-mask", "x" * 1001), r"1,001 characters; the limit is 1,000"),
    (lambda: iv.similarity_attribution_view("", "A cat."), r"the text is empty"),
    (lambda: iv.similarity_attribution_view("A cat.", "A dog.", steps=301), r"between 1 and 300, got 301"),
    (lambda: iv.generation_view("   "), r"the document is empty"),
    (lambda: ip.traced(att_maps(), 1, "rollout"), r"cross-attention has no such path"),
    (lambda: fa.evaluate(lambda e: e.sum((1, 2)), torch.ones(2, 3), torch.zeros(2, 3), {}, [], output="F"),
     r"no words to remove"),
])
def test_new_views_refuse_bad_input(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def att_maps():
    from bertvariants import attention as att

    return att.AttentionMaps(att.CROSS, ["a", "b"], ["x", "y", "z"], np.full((1, 1, 2, 3), 1 / 3, np.float32))
