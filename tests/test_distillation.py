"""Distillation losses against hand-computed values; DistilBERT init; TinyBERT map; BiLSTM student round trip."""

from __future__ import annotations

import math

import pytest
import torch

from bertvariants.io import weights_size
from bertvariants import distillation as kd
from bertvariants import serving
from bertvariants.students import BiLSTMConfig, BiLSTMStudent


def _softmax(xs):
    e = [math.exp(x) for x in xs]
    return [v / sum(e) for v in e]


def test_temperature_softmax_by_hand():
    z = torch.tensor([3.0, 1.0, -1.0])
    for t in (1.0, 2.0, 5.0):
        expected = _softmax([3 / t, 1 / t, -1 / t])
        assert kd.softmax_t(z, temperature=t).tolist() == pytest.approx(expected, abs=1e-6)
    # T -> large flattens toward uniform; dark knowledge grows with T
    dk = [kd.dark_knowledge(kd.softmax_t(z, temperature=t)).item() for t in (1, 2, 5, 20)]
    assert dk == sorted(dk) and dk[-1] > 0.6
    assert dk[0] == pytest.approx(1 - _softmax([3, 1, -1])[0], abs=1e-6)


@pytest.mark.parametrize("bad", [0, -1.0, float("nan")])
def test_bad_temperature(bad):
    with pytest.raises(ValueError, match="temperature"):
        kd.softmax_t(torch.zeros(3), temperature=bad)


def test_distillation_objective_by_hand():
    s, t = torch.tensor([[2.0, 0.0]]), torch.tensor([[3.0, 0.0]])
    p = _softmax([1.5, 0.0])  # teacher at T=2
    logq = [math.log(v) for v in _softmax([1.0, 0.0])]  # student at T=2
    soft_ce = -(p[0] * logq[0] + p[1] * logq[1])
    hard_ce = -math.log(_softmax([2.0, 0.0])[0])
    out = kd.distillation_objective(s, t, labels=torch.tensor([0]), temperature=2.0, alpha=0.7, beta=0.3)
    assert out.distill.item() == pytest.approx(4 * soft_ce, abs=1e-5)  # × T²
    assert out.student.item() == pytest.approx(hard_ce, abs=1e-5)
    assert out.loss.item() == pytest.approx(0.7 * 4 * soft_ce + 0.3 * hard_ce, abs=1e-5)
    assert out.hard_target_source == "gold"


def test_hard_targets_gold_vs_teacher():
    t = torch.tensor([[0.1, 2.0, -1.0], [3.0, 0.0, 0.0]])
    gold = torch.tensor([0, 2])
    assert kd.hard_targets(t, gold, source="gold").tolist() == [0, 2]
    assert kd.hard_targets(t, source="teacher").tolist() == [1, 0]
    with pytest.raises(ValueError, match="need labels"):
        kd.hard_targets(t, source="gold")
    s = torch.zeros(2, 3)
    a = kd.distillation_objective(s, t, labels=gold, hard_target="gold")
    b = kd.distillation_objective(s, t, hard_target="teacher")
    assert a.student.item() == pytest.approx(math.log(3)) and b.hard_targets.tolist() == [1, 0]


def test_weights_validation():
    s = torch.zeros(1, 2)
    with pytest.raises(ValueError, match="α \\+ β = 0"):
        kd.distillation_objective(s, s, labels=torch.tensor([0]), alpha=0, beta=0)
    with pytest.raises(ValueError, match="≥ 0"):
        kd.distillation_objective(s, s, labels=torch.tensor([0]), alpha=-1, beta=2)


def test_t_squared_keeps_gradient_scale():
    """Hinton §2: gradients of the soft term scale as 1/T²; the T² factor makes them comparable across T."""
    g = torch.Generator().manual_seed(0)
    t_logits = torch.randn(64, 5, generator=g)
    base = torch.randn(64, 5, generator=g)
    norms = []
    for temp in (4.0, 8.0, 16.0):
        s = base.clone().requires_grad_(True)
        kd.distillation_loss(s, t_logits, temperature=temp).backward()
        norms.append(s.grad.norm().item())
    assert max(norms) / min(norms) < 1.3  # without T² the ratio would be 16 between T=4 and T=16


def test_parse_logits():
    assert kd.parse_logits("2.5, -1 ,0;3") == [2.5, -1.0, 0.0, 3.0]
    for bad, msg in (("", "at least two"), ("1, x", "not a number"), ("1", "between 2"), ("1, inf", "finite")):
        with pytest.raises(ValueError, match=msg):
            kd.parse_logits(bad)


def test_cosine_embedding_loss_and_mask():
    h = torch.randn(2, 5, 8)
    assert kd.cosine_embedding_loss(h, h).item() == pytest.approx(0.0, abs=1e-6)
    assert kd.cosine_embedding_loss(h, -h).item() == pytest.approx(2.0, abs=1e-6)
    other = h.clone()
    other[:, 3:] = -h[:, 3:]  # only padded positions differ
    mask = torch.tensor([[1, 1, 1, 0, 0]] * 2)
    assert kd.cosine_embedding_loss(h, other, mask).item() == pytest.approx(0.0, abs=1e-6)
    # matches torch's CosineEmbeddingLoss with target +1
    a, b = torch.randn(4, 3, 6), torch.randn(4, 3, 6)
    ref = torch.nn.CosineEmbeddingLoss()(a.reshape(-1, 6), b.reshape(-1, 6), torch.ones(12))
    assert kd.cosine_embedding_loss(a, b).item() == pytest.approx(ref.item(), abs=1e-6)


def test_triple_loss_backward():
    g = torch.Generator().manual_seed(1)
    s_logits = torch.randn(2, 7, 99, generator=g, requires_grad=True)
    t_logits = torch.randn(2, 7, 99, generator=g)
    labels = torch.full((2, 7), -100)
    labels[0, 2], labels[1, 5] = 4, 17
    s_h = torch.randn(2, 7, 36, generator=g, requires_grad=True)
    out = kd.distilbert_triple_loss(s_logits, t_logits, labels, s_h, torch.randn(2, 7, 36, generator=g))
    assert out.loss.item() == pytest.approx(5 * out.ce.item() + 2 * out.mlm.item() + out.cos.item(), rel=1e-5)
    out.loss.backward()
    assert s_logits.grad[0, 0].abs().sum() == 0 and s_logits.grad[0, 2].abs().sum() > 0  # only masked positions
    with pytest.raises(ValueError, match="no masked positions"):
        kd.distilbert_triple_loss(s_logits, t_logits, torch.full((2, 7), -100), s_h, s_h)


def test_student_init_every_other_layer(tiny_bert_config):
    from transformers import BertModel

    cfg = tiny_bert_config.__class__(**{**tiny_bert_config.to_dict(), "num_hidden_layers": 5, "vocab_size": 99})
    torch.manual_seed(0)
    teacher = BertModel(cfg).eval()
    student = kd.init_student_from_teacher(teacher).eval()
    assert kd.every_other_layer(12) == [0, 2, 4, 6, 8, 10]
    assert student.config.num_hidden_layers == 3 and teacher.config.num_hidden_layers == 5
    for s, t in zip(range(3), (0, 2, 4)):
        for (k, a), (_, b) in zip(student.encoder.layer[s].state_dict().items(),
                                  teacher.encoder.layer[t].state_dict().items()):
            assert torch.equal(a, b), k
    assert torch.equal(student.embeddings.word_embeddings.weight, teacher.embeddings.word_embeddings.weight)
    assert kd.num_parameters(student) < kd.num_parameters(teacher)
    with pytest.raises(ValueError, match="layer indices"):
        kd.init_student_from_teacher(teacher, layers=[0, 9])


def test_tinybert_uniform_map_and_losses():
    assert kd.uniform_layer_map(4, 12) == [0, 3, 6, 9, 12]
    with pytest.raises(ValueError, match="multiple"):
        kd.uniform_layer_map(5, 12)
    g = torch.Generator().manual_seed(2)
    B, T, ds, dt, h = 2, 7, 12, 18, 3
    t_hidden = [torch.randn(B, T, dt, generator=g) for _ in range(5)]  # 4-layer teacher
    t_att = [torch.softmax(torch.randn(B, h, T, T, generator=g), -1) for _ in range(4)]
    s_hidden = [torch.randn(B, T, ds, generator=g, requires_grad=True) for _ in range(3)]  # 2-layer student
    s_att = [torch.softmax(torch.randn(B, h, T, T, generator=g), -1).requires_grad_(True) for _ in range(2)]
    proj = kd.HiddenProjection(ds, dt)
    out = kd.tinybert_layer_losses(s_hidden, t_hidden, s_att, t_att, projection=proj)
    assert out.layer_map == [0, 2, 4]
    manual_att = sum(((s_att[i] - t_att[j]) ** 2).mean() for i, j in ((0, 1), (1, 3)))
    assert out.attention.item() == pytest.approx(manual_att.item(), rel=1e-5)
    manual_hid = sum(((proj(s_hidden[i]) - t_hidden[j]) ** 2).mean() for i, j in ((1, 2), (2, 4)))
    assert out.hidden.item() == pytest.approx(manual_hid.item(), rel=1e-5)
    out.loss.backward()
    assert proj.proj.weight.grad is not None and s_hidden[0].grad is not None
    with pytest.raises(ValueError, match="HiddenProjection"):
        kd.hidden_mse_loss(s_hidden[0], t_hidden[0])


def test_attention_loss_ignores_padding():
    a = torch.rand(1, 2, 4, 4)
    b = a.clone()
    b[..., 3] += 1.0  # differences only on the padded key
    mask = torch.tensor([[1, 1, 1, 0]])
    assert kd.attention_mse_loss(a, b, mask).item() == pytest.approx(0.0)
    assert kd.attention_mse_loss(a, b).item() > 0


def test_logit_mse_and_tang_objective():
    s, t = torch.tensor([[1.0, 2.0]]), torch.tensor([[0.0, 4.0]])
    assert kd.logit_mse_loss(s, t).item() == pytest.approx((1 + 4) / 2)
    out = kd.tang_objective(s, t, torch.tensor([1]), alpha=0.0)
    assert out.loss.item() == pytest.approx(2.5)


def test_bilstm_student_forward_backward_and_round_trip(tmp_path, tiny_tokenizer_dir):
    from transformers import AutoTokenizer

    from bertvariants.inference import classify

    tok = AutoTokenizer.from_pretrained(tiny_tokenizer_dir)
    cfg = BiLSTMConfig(vocab_size=tok.vocab_size, embedding_dim=13, hidden_size=11, fc_size=9, num_labels=2)
    torch.manual_seed(0)
    model = BiLSTMStudent(cfg)
    batch = tok(["a great film", "awful, boring and far too long"], padding=True, return_tensors="pt")
    logits = model(**batch).logits
    assert logits.shape == (2, 2)
    kd.logit_mse_loss(logits, torch.randn(2, 2)).backward()
    assert model.embedding.weight.grad is not None
    model.eval()
    # padding must not change a sentence's logits (packed sequences)
    alone = model(**tok(["a great film"], return_tensors="pt")).logits
    assert torch.allclose(alone[0], model(**batch).logits[0], atol=1e-5)
    out = model.save_pretrained(tmp_path / "student", tokenizer=tok)
    loaded = serving.load_checkpoint(str(out), "sequence-classification", device="cpu")
    assert serving.formats.loader_for(str(out), "sequence-classification").name == "bilstm-student"
    assert loaded.architecture.startswith("BiLSTMStudent")
    assert loaded.model.config.id2label == {0: "NEGATIVE", 1: "POSITIVE"}
    got = classify(loaded.model, loaded.tokenizer, ["a great film", "awful, boring and far too long"])
    assert torch.allclose(got, model(**batch).logits, atol=1e-5)


def test_load_student_transformers_and_errors(tmp_path, tiny_checkpoint):
    loaded = serving.load_checkpoint(str(tiny_checkpoint("sequence-classification")), "sequence-classification",
                                    device="cpu")
    assert type(loaded.model).__name__ == "BertForSequenceClassification" and loaded.architecture == ""
    assert weights_size(tiny_checkpoint("sequence-classification")) > 0
    with pytest.raises(ValueError, match="not a checkpoint"):
        serving.load_checkpoint(str(tmp_path), "sequence-classification", device="cpu")


def test_temperature_figure():
    fig = kd.temperature_figure([3.0, 1.0, 0.2], temperature=4.0, labels=["a", "b", "c"])
    assert len(fig.data) == 2 and list(fig.data[1].x) == ["a", "b", "c"]
    assert sum(fig.data[1].y) == pytest.approx(1.0)


# --------------------------------------------------------------------------------------------
# The tab's handlers, end to end on tiny checkpoints
# --------------------------------------------------------------------------------------------
def test_ui_explorer_and_loss_calculator_bad_input():
    import gradio as gr

    from bertvariants.ui import distillation as ui

    fig, md = ui.explore("3, 1, -1", "pos, neu, neg", 4)
    assert list(fig.data[0].x) == ["pos", "neu", "neg"] and "Dark knowledge at T = 4" in md
    df = ui.loss_calculator("3, 1", "1, 1", 0, "teacher", 0.5, 0.5, 2)
    assert df["value"].iloc[2] == "0"  # teacher argmax
    for args, msg in ((("3,1", "1,1", 0, "gold", 0, 0, 2), "α \\+ β = 0"),
                      (("3,1", "1,1", 0, "gold", 1, 1, 0), "T must be > 0"),
                      (("3,1", "1,1", 0, "gold", 1, 1, -2), "T must be > 0"),
                      (("3,1", "1,1,2", 0, "gold", 1, 1, 2), "same classes"),
                      (("", "1,1", 0, "gold", 1, 1, 2), "at least two")):
        with pytest.raises(gr.Error, match=msg):
            ui.loss_calculator(*args)
    with pytest.raises(gr.Error, match="T must be > 0"):
        ui.explore("1, 2", "", 0)


def test_ui_compare_without_models_is_a_clear_message(no_models_here):
    from bertvariants.ui import distillation as ui

    df, md = ui.compare("a fine film")
    assert list(df["model"]) == ["unavailable", "unavailable"]
    assert "python -m bertvariants.train sst2-teacher" in md and "BERTVARIANTS_MODEL_DISTILLATION_STUDENT" in md


def test_ui_compare_teacher_vs_bilstm_student(tmp_path, monkeypatch, tiny_checkpoint, tiny_tokenizer_dir):
    from transformers import AutoTokenizer

    from bertvariants.ui import distillation as ui

    tok = AutoTokenizer.from_pretrained(tiny_tokenizer_dir)
    cfg = BiLSTMConfig(vocab_size=tok.vocab_size, embedding_dim=7, hidden_size=5, fc_size=9,
                          id2label={0: "negative", 1: "positive"})
    student_dir = BiLSTMStudent(cfg).save_pretrained(tmp_path / "bilstm", tokenizer=tok)
    monkeypatch.setenv("BERTVARIANTS_MODEL_DISTILLATION_TEACHER", str(tiny_checkpoint("sequence-classification")))
    monkeypatch.setenv("BERTVARIANTS_MODEL_DISTILLATION_STUDENT", str(student_dir))
    df, md = ui.compare("a fine film")
    assert list(df["role"]) == ["teacher", "student"]
    assert df["model"].iloc[1] == "bilstm" and "BiLSTMStudent" in md and df["prediction"].iloc[1] in ("negative", "positive")
    assert all(df["latency (ms, median of 5)"] > 0) and all(df["in memory (MB, fp32)"] > 0)
    # like with like: the same token-embedding table (V × d) on both sides, the layers apart
    assert df["token embeddings (M params)"].iloc[1] == round(tok.vocab_size * 7 / 1e6, 2)
    assert "Layers" in md and "files:" in md and "all its weights" in md  # what each stores, said per model
    logits, labels, _ = ui.teacher_logits("a fine film")
    assert len(kd.parse_logits(logits)) == 2 and labels.count(",") == 1


def test_parameter_split_counts_the_embedding_table_and_its_low_rank_update_together():
    from transformers import BertConfig, BertForSequenceClassification

    bert = BertForSequenceClassification(BertConfig(vocab_size=99, hidden_size=36, num_hidden_layers=1,
                                                    num_attention_heads=3, intermediate_size=37))
    split = kd.parameter_split(bert)
    assert split.embeddings == 99 * 36 and split.total == kd.num_parameters(bert)
    student = BiLSTMStudent(BiLSTMConfig(vocab_size=99, embedding_dim=7, hidden_size=5, fc_size=9, embedding_rank=3))
    split = kd.parameter_split(student)
    assert split.embeddings == 99 * 7 + 99 * 3 + 3 * 7 and split.total == kd.num_parameters(student)
