"""The one batched inference path: order restoration, de-duplication, equality with a naive loop,
batch planning, precision options. No timing asserts (the bench measures speed)."""

from __future__ import annotations

import random

import pytest
import torch

from bertvariants import inference
from bertvariants.inference import classify, encode, plan_batches, prepare, resolve_precision, run_batched

WORDS = "the a cat dog sat ran on under mat table quickly slowly red blue big small".split()


def sentences(n: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    return [" ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 23))) for _ in range(n)]


@pytest.fixture(scope="module")
def tiny_encoder(tiny_checkpoint):
    from bertvariants.serving import load_checkpoint

    m = load_checkpoint(str(tiny_checkpoint("feature-extraction")), "feature-extraction", device="cpu")
    return m.model, m.tokenizer


@pytest.fixture(scope="module")
def tiny_classifier(tiny_checkpoint):
    from bertvariants.serving import load_checkpoint

    m = load_checkpoint(str(tiny_checkpoint("sequence-classification", num_labels=3)), "sequence-classification",
                        device="cpu")
    return m.model, m.tokenizer


def naive_encode(model, tok, texts):
    """One text at a time, no padding at all: the reference the batched path must reproduce."""
    out = []
    with torch.inference_mode():
        for t in texts:
            b = tok(t, return_tensors="pt", truncation=True, max_length=512)
            h = model(**b).last_hidden_state[0]  # (T, H)
            out.append(torch.nn.functional.normalize(h.mean(0), dim=-1))
    return torch.stack(out)


# ---------------------------------------------------------------------------------- plan_batches
def test_plan_batches_dedups_and_sorts_longest_first():
    lengths = [3, 9, 3, 5, 9, 1, 5]
    keys = ["a", "b", "a", "c", "d", "e", "c"]
    plan = plan_batches(lengths, keys, batch_size=2)
    assert plan.unique_index == [0, 1, 0, 2, 3, 4, 2]  # first-appearance numbering, duplicates share an index
    flat = [u for b in plan.batches for u in b]
    assert sorted(flat) == [0, 1, 2, 3, 4]  # every unique input exactly once
    uniq_len = {0: 3, 1: 9, 2: 5, 3: 9, 4: 1}
    assert [uniq_len[u] for u in flat] == sorted(uniq_len.values(), reverse=True)
    assert flat[:2] == [1, 3]  # ties keep first-appearance order
    assert all(len(b) <= 2 for b in plan.batches)


@pytest.mark.parametrize("seed", range(5))
def test_plan_batches_respects_caps_on_random_inputs(seed):
    rng = random.Random(seed)
    n = rng.randint(1, 301)
    lengths = [rng.randint(1, 97) for _ in range(n)]
    keys = [rng.randint(0, n // 2 + 1) for _ in range(n)]
    lengths = [dict(zip(keys, lengths))[k] for k in keys]  # one length per key, as tokenization gives
    batch_size, max_tokens = rng.randint(1, 37), rng.randint(50, 700)
    plan = plan_batches(lengths, keys, batch_size=batch_size, max_tokens=max_tokens)
    uniq_len = {plan.unique_index[i]: lengths[i] for i in range(n)}
    flat = [u for b in plan.batches for u in b]
    assert sorted(flat) == list(range(len(set(keys))))
    for b in plan.batches:
        assert 1 <= len(b) <= batch_size
        longest = max(uniq_len[u] for u in b)
        assert longest == uniq_len[b[0]]
        assert len(b) == 1 or longest * len(b) <= max_tokens  # only a lone over-long input may exceed it
    # batches are greedy: a batch is closed only when the next input would break a cap
    for b, nxt in zip(plan.batches, plan.batches[1:]):
        assert len(b) == batch_size or uniq_len[b[0]] * (len(b) + 1) > max_tokens, (b, nxt)


def test_plan_batches_rejects_bad_arguments():
    with pytest.raises(ValueError, match="batch_size must be ≥ 1"):
        plan_batches([1], ["a"], batch_size=0)
    with pytest.raises(ValueError, match="max_tokens must be ≥ 1"):
        plan_batches([1], ["a"], batch_size=4, max_tokens=0)
    with pytest.raises(ValueError, match="got 2 lengths but 1 keys"):
        plan_batches([1, 2], ["a"], batch_size=4)


# ---------------------------------------------------------------------------------- run_batched
def test_encode_equals_naive_unbatched_loop_in_fp32(tiny_encoder):
    model, tok = tiny_encoder
    texts = sentences(23, seed=1)
    batched = encode(model, tok, texts, batch_size=5)
    assert batched.shape == (23, model.config.hidden_size) and batched.dtype == torch.float32
    torch.testing.assert_close(batched, naive_encode(model, tok, texts), atol=1e-5, rtol=1e-5)


def test_order_is_restored_whatever_the_input_order(tiny_encoder):
    model, tok = tiny_encoder
    texts = sentences(29, seed=2)
    ref = encode(model, tok, texts, batch_size=4)
    perm = list(range(29))
    random.Random(3).shuffle(perm)
    shuffled = encode(model, tok, [texts[i] for i in perm], batch_size=4)
    torch.testing.assert_close(shuffled, ref[perm], atol=1e-5, rtol=1e-5)


def test_duplicates_run_once_and_come_back_everywhere(tiny_encoder, monkeypatch):
    model, tok = tiny_encoder
    base = sentences(7, seed=4)
    texts = [base[i % 7] for i in range(31)]  # each sentence 4-5 times
    rows_run = []

    def counting_head(m, batch):
        rows_run.append(batch["input_ids"].shape[0])
        return m(**batch).last_hidden_state[:, 0]

    out = run_batched(model, tok, texts, head=counting_head, batch_size=3)
    assert sum(rows_run) == len(set(base))  # one forward row per unique sentence
    for i, t in enumerate(texts):
        torch.testing.assert_close(out[i], out[texts.index(t)], atol=0, rtol=0)
    prep = prepare(tok, texts, batch_size=3)
    assert len(prep.text_index) == 31 and max(prep.text_index) + 1 == len(set(base))


def test_texts_that_tokenize_identically_are_merged(tiny_encoder):
    model, tok = tiny_encoder
    texts = ["The cat sat.", "the cat  sat.", "THE CAT SAT.", "a dog"]  # uncased WordPiece: same tokens
    prep = prepare(tok, texts)
    assert len(prep.features["input_ids"]) == 4  # 4 distinct strings tokenized once each
    assert sum(len(b) for b in prep.plan.batches) == 2  # but only 2 distinct token sequences run
    out = encode(model, tok, texts)
    torch.testing.assert_close(out[0], out[2], atol=0, rtol=0)


def test_batch_has_attention_mask_and_token_types_padded_right(tiny_encoder):
    model, tok = tiny_encoder
    seen = []

    def head(m, batch):
        seen.append({k: v.clone() for k, v in batch.items()})
        return m(**batch).last_hidden_state[:, 0]

    run_batched(model, tok, ["a b c d e f", "a"], ["x", "y z"], head=head)
    batch = seen[0]
    assert set(batch) == {"input_ids", "token_type_ids", "attention_mask"}
    lengths = batch["attention_mask"].sum(1).tolist()
    assert lengths == sorted(lengths, reverse=True)
    short = batch["attention_mask"][1]
    assert short[: lengths[1]].all() and not short[lengths[1]:].any()  # right padding
    assert (batch["input_ids"][1, lengths[1]:] == tok.pad_token_id).all()
    assert batch["token_type_ids"][0].max() == 1  # the pair's second segment


def test_pairs_match_naive_loop_and_dedup_on_the_pair(tiny_classifier):
    model, tok = tiny_classifier
    a, b = sentences(13, seed=5), sentences(13, seed=6)
    a[7], b[7] = a[2], b[2]  # a repeated pair
    b[3] = b[2]  # same second text, different first: not a duplicate
    logits = classify(model, tok, a, b, batch_size=4)
    with torch.inference_mode():
        naive = torch.cat([model(**tok(x, y, return_tensors="pt")).logits for x, y in zip(a, b)])
    torch.testing.assert_close(logits, naive, atol=1e-5, rtol=1e-5)
    assert sum(len(x) for x in prepare(tok, a, b).plan.batches) == 12


def test_max_tokens_splits_long_batches_without_changing_results(tiny_encoder):
    model, tok = tiny_encoder
    texts = sentences(23, seed=7)
    small = prepare(tok, texts, batch_size=64, max_tokens=40)
    assert all(r * t <= 40 or r == 1 for r, t in small.shapes())
    torch.testing.assert_close(encode(model, tok, texts, max_tokens=40), encode(model, tok, texts, max_tokens=None),
                               atol=1e-5, rtol=1e-5)
    assert sum(small.useful_tokens()) == sum(len(x) for x in tok(list(dict.fromkeys(texts)))["input_ids"])


def test_truncation_to_max_length(tiny_encoder):
    model, tok = tiny_encoder
    prep = prepare(tok, ["word " * 300], max_length=17)
    assert prep.shapes() == [(1, 17)]


def test_bad_inputs_raise_value_errors(tiny_encoder):
    model, tok = tiny_encoder
    with pytest.raises(ValueError, match="no input texts"):
        encode(model, tok, [])
    with pytest.raises(ValueError, match="got 2 texts but 1 text pairs"):
        classify(model, tok, ["a", "b"], ["c"])
    with pytest.raises(ValueError, match="precision must be one of"):
        encode(model, tok, ["a"], precision="int4")


# ---------------------------------------------------------------------------------- precision
def test_resolve_precision_validates():
    assert resolve_precision("fp32", "cpu") is None
    assert resolve_precision("auto", "cpu") is None  # exact fp32 stays the CPU default
    assert resolve_precision("bf16", "cpu") is torch.bfloat16
    with pytest.raises(ValueError, match="fp16 is only supported on CUDA"):
        resolve_precision("fp16", "cpu")
    with pytest.raises(ValueError, match="precision must be one of fp32, bf16, fp16, auto"):
        resolve_precision("float32", "cpu")


def test_bf16_is_close_to_fp32(tiny_encoder):
    model, tok = tiny_encoder
    texts = sentences(19, seed=8)
    fp32 = encode(model, tok, texts)
    bf16 = encode(model, tok, texts, precision="bf16")
    assert bf16.dtype == torch.float32  # results always come back in fp32
    cos = (fp32 * bf16).sum(-1)  # both are unit vectors
    assert cos.min() > 0.995
    assert not torch.equal(fp32, bf16)  # bf16 really ran (it rounds)


@pytest.mark.parametrize("flags, bf16, int8", [
    ("fpu avx512f avx512_bf16 gfni avx512_vnni", True, True),  # Cooper Lake
    ("fpu amx_bf16 amx_tile amx_int8 avx512_bf16 avx512_vnni", True, True),  # Sapphire Rapids
    ("fpu avx2 avx512f avx512_vnni", False, True),  # Ice Lake: int8 dot products, bf16 emulated
    ("fpu avx2 avx512f", False, False), (None, False, False)])
def test_cpu_capabilities_read_the_cpu_flags(flags, bf16, int8):
    from bertvariants.serving.device import parse_cpuinfo

    info = "" if flags is None else f"processor : 0\nmodel name : Test CPU\nflags : {flags}\n"
    caps = parse_cpuinfo(info)
    assert (caps.native_bf16, caps.int8_dot) == (bf16, int8)
    assert "Test CPU" in caps.describe() or flags is None
    arm = parse_cpuinfo("processor : 0\nFeatures : fp asimd asimddp bf16\n", machine="aarch64")
    assert arm.native_bf16 and arm.int8_dot


def test_the_fast_mode_measures_and_remembers_its_choice(monkeypatch):
    """fast_path times fp32, bf16 and int8 on the model's own shapes once; encode(precision="fast") runs the
    choice; int8 stays close to fp32 (per-channel weights)."""
    from bertvariants.serving import get_packaged

    m = get_packaged()
    path = inference.fast_path(m.model)
    assert path.precision in ("fp32", "bf16", "int8") and set(path.seconds) == {"fp32", "bf16", "int8"}
    assert path.precision == min(path.seconds, key=path.seconds.get)
    assert inference.fast_path(m.model) is path  # measured once per model and process
    texts = ["A man is playing a guitar.", "A woman is slicing an onion.", "A man is playing a guitar."]
    exact = inference.encode(m.model, m.tokenizer, texts)
    for precision in ("int8", "fast"):
        approx = inference.encode(m.model, m.tokenizer, texts, precision=precision)
        assert (approx * exact).sum(-1).min() > 0.97, precision
    assert torch.equal(inference.encode(m.model, m.tokenizer, texts), exact)  # the shared model is untouched
    monkeypatch.setitem(inference._FAST, m.model, {(inference.FAST_SHAPE, inference.FAST_CANDIDATES):
                                                   inference.FastPath("int8", {}, "test")})
    assert inference.runner_for(m.model, "fast", "cpu")[0] is inference.quantized_twin(m.model)
    with pytest.raises(ValueError, match="int8 is a CPU precision"):
        inference.resolve_precision("int8", "cuda")


def test_the_fast_mode_is_measured_per_shape_and_releases_the_twins_that_lost(tiny_classifier):
    """A decoder's generation step (DECODE_SHAPE) is measured apart from a batch of sentences (FAST_SHAPE); each
    choice is remembered; a twin no shape chose is not kept (a 135M decoder's eager copy alone is 0.5 GB)."""
    model = tiny_classifier[0]
    step = inference.fast_path(model, shape=inference.DECODE_SHAPE)
    batch = inference.fast_path(model)
    assert step is inference.fast_path(model, shape=inference.DECODE_SHAPE) and batch is inference.fast_path(model)
    assert {shape for shape, _ in inference._FAST[model]} == {inference.DECODE_SHAPE, inference.FAST_SHAPE}
    chosen = {step.precision, batch.precision}
    assert (model in inference._TWINS) == ("bf16" in chosen)
    assert (model in inference._INT8_TWINS) == ("int8" in chosen)
    runner, dtype = inference.runner_for(model, "fast", "cpu", shape=inference.DECODE_SHAPE)
    assert (dtype is torch.bfloat16) == (step.precision == "bf16")
    assert (runner is model) == (step.precision == "fp32")
    no_int8 = inference.fast_path(model, shape=inference.DECODE_SHAPE, candidates=("fp32", "bf16"))
    assert set(no_int8.seconds) == {"fp32", "bf16"} and no_int8.precision != "int8"
    with pytest.raises(ValueError, match="candidates"):
        inference.fast_path(model, candidates=("fp8",))


@pytest.mark.parametrize("attn", ["sdpa", "eager"])
def test_cls_only_last_layer_equals_the_full_forward(tiny_classifier, attn):
    """bert_cls_logits computes the last layer at [CLS] only; padded pairs, both attention kernels."""
    from bertvariants import inference

    model, tok = tiny_classifier
    before = model.config._attn_implementation
    model.config._attn_implementation = attn
    try:
        a, b = sentences(9, seed=11), sentences(9, seed=12)
        batch = dict(tok(a, b, padding=True, return_tensors="pt"))
        assert not bool(batch["attention_mask"].all())  # the mask path is exercised
        with torch.inference_mode():
            full = model(**batch).logits
            fast = inference.bert_cls_logits(model, batch)
            one = inference.bert_cls_logits(model, dict(tok(a[0], b[0], return_tensors="pt")))
        torch.testing.assert_close(fast, full, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(one[0], full[0], atol=1e-5, rtol=1e-5)
    finally:
        model.config._attn_implementation = before


def test_cls_only_path_is_used_in_eval_and_not_in_training(tiny_classifier, monkeypatch):
    from bertvariants import inference

    model, _ = tiny_classifier
    assert inference._cls_only_applies(model)
    model.train()
    try:
        assert not inference._cls_only_applies(model)  # dropout would differ: the stock forward runs
    finally:
        model.eval()


def test_fast_mode_runs_an_eager_copy_and_leaves_the_shared_model_alone(tiny_checkpoint):
    """bf16 on a CPU runs an eager-attention copy (faster at sentence lengths); the shared model keeps its
    attention, fp32 stays bit-for-bit, and a weight change makes a fresh copy."""
    from transformers import AutoModel, AutoTokenizer

    from bertvariants import inference as inf

    path = tiny_checkpoint("feature-extraction")
    model, tok = AutoModel.from_pretrained(path).eval(), AutoTokenizer.from_pretrained(path)
    before = model.config._attn_implementation
    twin = inf.eager_twin(model)
    assert twin is not model and twin.config._attn_implementation == "eager"
    assert model.config._attn_implementation == before and inf.eager_twin(model) is twin
    texts = ["a short sentence", "another, somewhat longer sentence here"]
    fp32 = inf.encode(model, tok, texts)
    fast = inf.encode(model, tok, texts, precision="bf16")
    assert torch.equal(fp32, inf.encode(model, tok, texts)) and torch.allclose(fast, fp32, atol=0.05)
    with torch.no_grad():
        next(model.parameters()).add_(0.01)
    assert inf.eager_twin(model) is not twin
