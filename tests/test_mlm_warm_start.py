"""The masked-LM recipe's smaller generator (``layers=``) and warm start (``init=``) from the shipped masked LM."""

from __future__ import annotations

import pytest
import torch

from bertvariants.lab_step import with_lora
from bertvariants.serving.shipped import SHIPPED_DIR, build_shipped_model
from bertvariants.train.mlm import keep_layers, warm_start

SHIPPED_MLM = SHIPPED_DIR / "mlm-dynamic"


def fresh(layers=()):
    from transformers import BertForMaskedLM

    from bertvariants.serving import packaged_model_path

    model = BertForMaskedLM.from_pretrained(str(packaged_model_path()))
    if layers:
        keep_layers(model, layers)
    return with_lora(model, "masked-lm", rank=64).eval()


@pytest.fixture(scope="module")
def ids():
    return torch.randint(1000, 20000, (2, 12), generator=torch.Generator().manual_seed(0))


def test_full_depth_warm_start_is_the_shipped_model(ids):
    model = fresh()
    warm_start(model, str(SHIPPED_MLM))
    shipped = build_shipped_model(SHIPPED_MLM)[0].eval()
    with torch.no_grad():
        got = model.base_model.model(input_ids=ids).logits
        want = shipped(input_ids=ids).logits
    assert torch.allclose(got, want, atol=2e-3)  # fp16 storage, merged vs unmerged adapter


def test_kept_layers_take_their_own_adapters():
    model = fresh((0, 1, 5))
    assert len(model.base_model.model.bert.encoder.layer) == 3 == model.base_model.model.config.num_hidden_layers
    warm_start(model, str(SHIPPED_MLM), layers=(0, 1, 5))
    from safetensors.torch import load_file

    stored = load_file(str(SHIPPED_MLM / "adapter_model.safetensors"))
    got = model.base_model.model.bert.encoder.layer[2].attention.self.query.lora_A.default.weight
    want = stored["base_model.model.bert.encoder.layer.5.attention.self.query.lora_A.weight"].float()
    assert torch.equal(got.detach(), want)  # layer 5's adapter sits on the third kept layer


def test_bad_layers_and_ranks_are_refused(tmp_path):
    from transformers import BertForMaskedLM

    from bertvariants.serving import packaged_model_path

    with pytest.raises(ValueError, match="distinct indices"):
        keep_layers(BertForMaskedLM.from_pretrained(str(packaged_model_path())), (0, 0, 6))
    from transformers import BertForMaskedLM as M

    small = with_lora(M.from_pretrained(str(packaged_model_path())), "masked-lm", rank=8)
    with pytest.raises(ValueError, match="LoRA rank 64"):
        warm_start(small, str(SHIPPED_MLM))
    with pytest.raises(ValueError, match="no shipped.json"):
        warm_start(small, str(tmp_path))


@pytest.mark.parametrize("name", ["mlm-dynamic", "electra-discriminator"])
def test_compact_encoder_exports_as_plain_bert(name, tmp_path, monkeypatch, ids):
    """--base-model <compact dir>: the exported BertModel computes the compact model's own hidden states."""
    from transformers import BertModel

    from bertvariants.train.config import TrainConfig, base_model_path

    monkeypatch.setenv("BERTVARIANTS_MODELS_DIR", str(tmp_path))
    path = base_model_path(TrainConfig(base_model=str(SHIPPED_DIR / name)))
    assert path.startswith(str(tmp_path)) and base_model_path(TrainConfig(base_model=str(SHIPPED_DIR / name))) == path
    model, _ = build_shipped_model(SHIPPED_DIR / name)
    encoder = (getattr(model, "electra", None) or model.base_model).eval()
    exported = BertModel.from_pretrained(path).eval()
    with torch.no_grad():
        want = encoder(input_ids=ids).last_hidden_state
        got = exported(input_ids=ids).last_hidden_state
    assert torch.allclose(got, want, atol=1e-5)
    # the pooler is the packaged MiniLM's (neither a masked LM nor a discriminator has one)
    from bertvariants.serving import packaged_model_path

    assert torch.equal(exported.pooler.dense.weight, BertModel.from_pretrained(str(packaged_model_path())).pooler.dense.weight)
    # a full (saved) pretraining checkpoint exports the same way
    full = tmp_path / "full"
    model.save_pretrained(str(full))
    again = BertModel.from_pretrained(base_model_path(TrainConfig(base_model=str(full)))).eval()
    with torch.no_grad():
        assert torch.allclose(again(input_ids=ids).last_hidden_state, want, atol=1e-5)
