"""Compact shipped models: LoRA adapter + head over the packaged MiniLM, hashed, rebuilt and merged at load."""

from __future__ import annotations

import json

import pytest
import torch

from bertvariants import serving
from bertvariants.lab_step import trainable_parameters, with_lora
from bertvariants.serving import shipped
from bertvariants.train.lora import export_compact, ship


def _lora_classifier(rank: int = 2):
    from transformers import BertForSequenceClassification

    torch.manual_seed(0)
    model = BertForSequenceClassification.from_pretrained(str(serving.packaged_model_path()), num_labels=2)
    peft_model = with_lora(model, "sequence-classification", rank=rank)
    with torch.no_grad():  # a trained-looking adapter: B ≠ 0, so the merge changes the function
        for name, p in peft_model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.02)
    return peft_model.eval()


@pytest.fixture(scope="module")
def compact(tmp_path_factory):
    peft_model = _lora_classifier()
    out = tmp_path_factory.mktemp("compact") / "teacher"
    export_compact(peft_model, out, name="teacher", kind="sequence-classification", base="minilm",
                   config={"num_labels": 2, "id2label": {0: "negative", 1: "positive"}}, recipe="test")
    return peft_model, out


def test_lora_trains_only_the_adapter_and_the_head():
    peft_model = _lora_classifier(rank=4)
    trainable = {n for n, p in peft_model.named_parameters() if p.requires_grad}
    assert all("lora_" in n or ".classifier." in n or ".pooler." in n for n in trainable), trainable
    assert any("lora_A" in n for n in trainable) and any("classifier" in n for n in trainable)
    # Hu et al. §4.1: r·(d_in + d_out) per adapted matrix; 6 matrices per layer (q, k, v, o, ffn in, ffn out)
    per_layer = 4 * (4 * (384 + 384)) + 4 * (384 + 1536) * 2
    head = 384 * 384 + 384 + 384 * 2 + 2
    assert trainable_parameters(peft_model) == 6 * per_layer + head


def test_compact_form_reloads_to_the_same_function(compact, tiny_tokenizer_dir):
    peft_model, out = compact
    spec = shipped.ShippedSpec.read(out)
    assert spec.base_sha256 == shipped.packaged_sha256() and set(spec.files) >= {"adapter_model.safetensors"}
    loaded = serving.load_checkpoint(str(out), "sequence-classification", device="cpu")
    assert loaded.resolution.source == "local" and "LoRA merged" in loaded.label  # loaded by path, not by task
    assert loaded.model.config.id2label == {0: "negative", 1: "positive"}
    assert not any("lora" in n for n, _ in loaded.model.named_parameters())  # merged: a plain model
    batch = loaded.tokenizer(["a gripping, beautifully acted film", "dull"], padding=True, return_tensors="pt")
    with torch.no_grad():
        want = peft_model(**batch).logits
        got = loaded.model(**batch).logits
    assert torch.allclose(got, want, atol=2e-2)  # fp16 storage of adapter and head


def test_merge_is_hu_et_al_formula_without_peft(compact):
    """merge_lora adds (α/r)·B·A to each adapted weight: the merged query weight equals peft's own merge."""
    peft_model, out = compact
    model, _ = shipped.build_shipped_model(out)
    lora = peft_model.base_model.model.bert.encoder.layer[0].attention.self.query
    want = lora.base_layer.weight + lora.scaling["default"] * lora.lora_B["default"].weight @ lora.lora_A["default"].weight
    got = model.bert.encoder.layer[0].attention.self.query.weight
    assert torch.allclose(got, want, atol=1e-3)  # fp16 storage of A and B


def test_changed_file_or_other_base_is_refused(compact, tmp_path):
    import shutil

    _, out = compact
    bad = tmp_path / "bad"
    shutil.copytree(out, bad)
    head = bad / "head.safetensors"
    head.write_bytes(head.read_bytes()[:-8])
    with pytest.raises(shipped.ShippedModelError, match="sha256 does not match"):
        shipped.build_shipped_model(bad)
    other = tmp_path / "other"
    shutil.copytree(out, other)
    data = json.loads((other / "shipped.json").read_text())
    data["base_sha256"] = "0" * 64
    (other / "shipped.json").write_text(json.dumps(data))
    with pytest.raises(shipped.ShippedModelError, match="another all-MiniLM-L6-v2"):
        shipped.build_shipped_model(other)


def test_masked_lm_head_does_not_store_the_tied_decoder():
    from transformers import BertForMaskedLM

    model = BertForMaskedLM.from_pretrained(str(serving.packaged_model_path()))
    head = shipped.head_state(with_lora(model, "masked-lm", rank=2).base_model.model, "masked-lm")
    assert "cls.predictions.decoder.weight" not in head  # = the word embeddings, recomputed from the base
    assert {"cls.predictions.transform.dense.weight", "cls.predictions.bias"} <= set(head)


def test_ship_copies_a_verified_compact_checkpoint(compact, tmp_path):
    _, out = compact
    (out / "README.md").write_text("# card\n")
    dst = ship(out, name="teacher", assets=tmp_path / "assets")
    assert (dst / "README.md").read_text() == "# card\n"
    assert shipped.is_shipped(dst) and serving.load_checkpoint(str(dst), "sequence-classification", device="cpu")
    with pytest.raises(ValueError, match="not a compact checkpoint"):
        ship(tmp_path, name="x", assets=tmp_path / "assets")
