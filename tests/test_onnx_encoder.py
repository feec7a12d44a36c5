"""The ONNX sentence encoders: the two real packaged files load offline, encode through the one inference path,
agree with the PyTorch MiniLM (int8) and with their own exported pooling (L3), and report honest parameter counts.
No shared data needed: the sentences are inline."""

from __future__ import annotations

import re
from types import SimpleNamespace

import pytest
import torch

from bertvariants import onnx_encoder as ox
from bertvariants.inference import encode
from bertvariants.serving.packaged import available, locate

pytestmark = pytest.mark.skipif(not (available("minilm-l3-onnx") and available("minilm-int8-onnx")),
                                reason="the ONNX MiniLM pip packages are not installed")

SENTENCES = ["A man is eating food.", "Someone is having a meal.", "The stock market fell sharply today.",
             "A woman is playing the violin while a small crowd listens in the park on a sunny afternoon.", "Hi"]


@pytest.fixture(scope="module")
def l3():
    return ox.open_onnx_encoder(locate("minilm-l3-onnx"), device="cpu", threads=1)


@pytest.fixture(scope="module")
def int8():
    return ox.open_onnx_encoder(locate("minilm-int8-onnx"), device="cpu", threads=1)


@pytest.fixture(scope="module")
def fp32_minilm(minilm_path):
    from transformers import AutoModel

    from bertvariants.serving import packaged_tokenizer

    return AutoModel.from_pretrained(str(minilm_path)).eval(), packaged_tokenizer()


@pytest.mark.parametrize("name", ["l3", "int8"])
def test_both_files_load_offline_and_encode_through_the_inference_path(name, request):
    opened = request.getfixturevalue(name)
    emb = encode(opened.model, opened.tokenizer, SENTENCES)
    assert emb.shape == (len(SENTENCES), 384) and emb.dtype == torch.float32
    assert torch.allclose(emb.norm(dim=-1), torch.ones(len(SENTENCES)), atol=1e-5)
    # padding must not leak into the pooled vector: each sentence alone (no padding) == inside the padded batch
    alone = torch.cat([encode(opened.model, opened.tokenizer, [s]) for s in SENTENCES])
    assert torch.allclose(emb, alone, atol=1e-5)
    assert opened.device == "cpu" and next(opened.model.parameters()).device.type == "cpu"


def test_int8_agrees_with_the_packaged_fp32_minilm(int8, fp32_minilm):
    model, tok = fp32_minilm
    ref = encode(model, tok, SENTENCES)
    got = encode(int8.model, int8.tokenizer, SENTENCES)
    cos = (ref * got).sum(-1).tolist()  # unit rows
    assert min(cos[:4]) >= 0.999, cos  # sentences: 0.9995-0.9997 measured
    # a two-letter input is the int8 rounding's worst case: 3 tokens, nothing to average it out (0.9983 measured)
    assert SENTENCES[4] == "Hi" and cos[4] >= 0.997, cos


def test_l3_mean_pooling_reproduces_the_exports_own_pooled_output(l3):
    """minilm-l3-onnx exports the sentence-transformers pipeline: its (B, H) output is the mean-pooled token states."""
    assert l3.model.config.pooled_output is not None and "token_type_ids" not in l3.model.config.inputs
    enc = l3.tokenizer(SENTENCES, padding=True, return_tensors="np")
    feed = {k: enc[k] for k in l3.model.config.inputs}
    (pooled,) = l3.model.session.run([l3.model.config.pooled_output], feed)
    ours = encode(l3.model, l3.tokenizer, SENTENCES, pooling="mean", normalize=False)
    assert torch.allclose(ours, torch.from_numpy(pooled), atol=1e-4)


def test_parameter_counts_are_the_onnx_weights_not_the_anchor(l3, int8):
    # the BertModel counts without the [CLS] pooler (17,389,824 and 22,713,216 with it), which the exports drop
    assert sum(p.numel() for p in l3.model.parameters()) == 17_241_984
    assert sum(p.numel() for p in int8.model.parameters()) == 22_565_376
    assert int8.model.config.weight_dtypes["int8"] == 22_533_888 and int8.model.config.quantization_elements > 0
    assert l3.model.config.weight_dtypes == {"fp32": 17_241_984} and l3.model.config.quantization_elements == 0
    first = next(int8.model.parameters())
    assert first.numel() == 0 and first.device.type == "cpu"  # the device anchor holds nothing
    assert all(p.device.type == "meta" for _, p in int8.model.weight_shapes)
    assert list(int8.model.state_dict()) == ["anchor"]  # shape-only mirrors have nothing to save
    int8.model.to("cpu")  # moving the module moves the anchor only


def test_revision_size_and_config(l3, int8):
    for opened in (l3, int8):
        cfg = opened.model.config
        assert re.fullmatch(r"onnx:sha256:[0-9a-f]{16}", opened.revision) and cfg.sha256.startswith(opened.revision[12:])
        assert cfg.size_bytes == ox.onnx_file(cfg.file).stat().st_size > 10_000_000
        assert (cfg.hidden_size, cfg.vocab_size, cfg.max_position_embeddings) == (384, 30522, 512)
        assert "onnxruntime" in opened.architecture and "CPU" in opened.architecture
    assert ox.onnx_revision(locate("minilm-int8-onnx")) == int8.revision
    assert "int8" in int8.architecture and "fp32" in l3.architecture


def test_a_sentence_pair_on_a_graph_without_token_types_is_refused(l3):
    ids = torch.tensor([[101, 2023, 102, 2008, 102]])
    with pytest.raises(ValueError, match="takes no token_type_ids"):
        l3.model(input_ids=ids, attention_mask=torch.ones_like(ids), token_type_ids=torch.tensor([[0, 0, 0, 1, 1]]))
    out = l3.model(input_ids=ids, attention_mask=torch.ones_like(ids), token_type_ids=torch.zeros_like(ids))
    assert out.last_hidden_state.shape == (1, 5, 384)


def test_pooled_only_exports_and_bad_directories_are_refused(tmp_path):
    outputs = [SimpleNamespace(name="sentence_embedding", shape=["batch", 384], type="tensor(float)")]
    with pytest.raises(ValueError, match="needs the token states"):
        ox.pick_outputs(outputs)
    outputs.append(SimpleNamespace(name="token_embeddings", shape=["b", "t", 384], type="tensor(float)"))
    assert ox.pick_outputs(outputs) == ("token_embeddings", "sentence_embedding")
    with pytest.raises(ValueError, match="exactly one .onnx file, found none"):
        ox.onnx_file(tmp_path)
    (tmp_path / "a.onnx").write_bytes(b"")
    (tmp_path / "b.onnx").write_bytes(b"")
    with pytest.raises(ValueError, match="found a.onnx, b.onnx"):
        ox.onnx_file(tmp_path)


def test_the_resolver_loads_the_packaged_onnx_models_by_name():
    from bertvariants import serving

    for name, params in (("minilm-l3-onnx", 17_241_984), ("minilm-int8-onnx", 22_565_376)):
        named = serving.load(name)
        m = named
        assert named.variant == "Sentence-BERT" and m.kind == "sentence-embedding"
        assert m.num_parameters == params and m.revision.startswith("onnx:sha256:") and m.pooling == "mean"
        assert "pip package" in m.label and "ONNX" in m.label
        assert encode(m.model, m.tokenizer, ["A man is eating food."], max_length=m.max_length).shape == (1, 384)
