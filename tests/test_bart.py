"""BART noising (§2.2) statistics and provenance; extractive baselines; generate() on a tiny BART."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from bertvariants import bart
from bertvariants.common import make_generator

WORDS = [f"w{i}" for i in range(200)]
DOC = ("The council met on Monday. It voted to expand the park! Residents were pleased? "
       "Work starts in May. The budget is 2 million dollars.").split()


def test_poisson_span_lengths_mean_three():
    lengths = bart.sample_span_lengths(60_000, poisson_lambda=3.0, generator=make_generator(0))
    assert sum(lengths) == 60_000
    assert abs(np.mean(lengths[:-1]) - 3.0) < 0.1
    assert 0.03 < np.mean(np.array(lengths) == 0) < 0.07  # P(0) = e^-3 ≈ 0.0498: zero-length spans do occur


def test_text_infilling_ratio_one_mask_per_span_and_provenance():
    g = make_generator(1)
    zero_spans = 0
    for _ in range(200):
        out = bart.text_infilling(WORDS, ratio=0.3, generator=g)
        hidden = [i for span in out.spans.values() for i in span]
        assert len(hidden) == 60 == len(set(hidden))  # exactly ceil(0.3·200) tokens, no overlap
        assert out.tokens.count(bart.MASK) == len(out.spans)  # one <mask> per span
        assert len(out.tokens) == 200 - 60 + len(out.spans)
        kept = [s for s in out.source if s >= 0]
        assert kept == sorted(kept) and sorted(kept + hidden) == list(range(200))
        for pos, span in out.spans.items():  # spans are contiguous and sit where their mask is
            assert span == list(range(span[0], span[0] + len(span))) if span else True
        zero_spans += sum(1 for span in out.spans.values() if not span)
    assert zero_spans > 0  # 0-length spans insert a mask


@pytest.mark.parametrize("ratio", [0.15, 0.3, 0.5])
def test_token_masking_and_deletion_ratios(ratio):
    g = make_generator(2)
    m = bart.token_masking(WORDS, ratio=ratio, generator=g)
    assert m.tokens.count(bart.MASK) == int(np.ceil(200 * ratio)) and len(m.tokens) == 200
    d = bart.token_deletion(WORDS, ratio=ratio, generator=g)
    assert len(d.tokens) == 200 - int(np.ceil(200 * ratio)) and bart.MASK not in d.tokens
    # positions are uniform: over many draws every position is masked about ratio of the time
    hits = np.zeros(200)
    for _ in range(300):
        hits[[s[0] for s in bart.token_masking(WORDS, ratio=ratio, generator=g).spans.values()]] += 1
    assert abs(hits.mean() / 300 - ratio) < 0.01 and hits.min() > 0


def test_sentence_permutation_and_rotation():
    bounds = bart.sentence_bounds(DOC)
    assert len(bounds) == 5
    g = make_generator(3)
    orders = set()
    for _ in range(50):
        out = bart.sentence_permutation(DOC, generator=g)
        assert sorted(out.tokens) == sorted(DOC)
        sents = {" ".join(DOC[a:b]) for a, b in bounds}
        assert {" ".join(out.tokens[a:b]) for a, b in bart.sentence_bounds(out.tokens)} == sents
        orders.add(tuple(out.tokens))
    assert len(orders) > 10
    starts = []
    for _ in range(2000):
        rot = bart.document_rotation(WORDS[:10], generator=g)
        k = rot.source[0]
        assert rot.tokens == WORDS[k:10] + WORDS[:k]
        starts.append(k)
    assert np.bincount(starts, minlength=10).min() > 150  # uniform over the 10 tokens


def test_seed_determinism_and_composition():
    cfg = bart.NoiseConfig(sentence_permutation=True, document_rotation=True, text_infilling=0.3,
                           token_masking=0.1, token_deletion=0.1)
    a = bart.apply_noise(DOC, cfg, generator=make_generator(7))
    b = bart.apply_noise(DOC, cfg, generator=make_generator(7))
    assert a == b
    # provenance refers to the original document
    for tok, s in zip(a.tokens, a.source):
        assert tok == bart.MASK if s < 0 else tok == DOC[s]
    hidden = {i for span in a.spans.values() for i in span}
    kept = {s for s in a.source if s >= 0}
    assert not hidden & kept
    labels = [label for _, label in bart.highlight_original(a, DOC)]
    assert labels.count("under a mask") == len(hidden)
    assert labels.count("deleted") == len(DOC) - len(kept) - len(hidden)
    assert any(lbl and lbl.startswith("mask hiding") for _, lbl in bart.highlight_corrupted(a))


def test_bad_ratio():
    with pytest.raises(ValueError, match="between 0 and 1"):
        bart.token_masking(WORDS, ratio=1.5, generator=make_generator(0))


def test_split_sentences_and_lead():
    text = 'He said "Go now." Then he left. Dr. Smith stayed!\nNew line here? Yes 2 more.'
    sents = bart.split_sentences(text)
    assert sents[0] == 'He said "Go now."' and sents[-1] == "Yes 2 more." and "New line here?" in sents
    assert bart.lead_n(text, 2).text == 'He said "Go now." Then he left.'
    with pytest.raises(ValueError, match="empty"):
        bart.lead_n("  ")


def test_centroid_ranking():
    e = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.95, 0.05]])
    idx, scores = bart.centroid_ranking(e, n=2)
    assert idx == [1, 3]  # closest to the centroid, returned in document order
    assert all(-1 <= s <= 1 for s in scores)


def test_centroid_summary_with_real_minilm(minilm_path):
    from bertvariants.serving import get_packaged

    m = get_packaged()
    text = ("The storm hit the coast on Tuesday. Thousands lost power as the storm moved inland. "
            "Officials said the storm was the worst in a decade. My cat likes tuna. "
            "Repair crews expect to restore power by Friday.")
    s = bart.centroid_summary(text, m.model, m.tokenizer, n=2)
    assert len(s.indices) == 2 and s.method == "centroid" and 3 not in s.indices


@pytest.fixture(scope="module")
def tiny_bart(tmp_path_factory, tiny_tokenizer_dir):
    import shutil

    from transformers import BartConfig, BartForConditionalGeneration

    cfg = BartConfig(vocab_size=30522, d_model=16, encoder_layers=1, decoder_layers=1, encoder_attention_heads=2,
                     decoder_attention_heads=2, encoder_ffn_dim=20, decoder_ffn_dim=20, max_position_embeddings=128,
                     pad_token_id=0, bos_token_id=101, eos_token_id=102, decoder_start_token_id=102,
                     forced_eos_token_id=102)
    torch.manual_seed(0)
    out = tmp_path_factory.mktemp("tiny-bart")
    BartForConditionalGeneration(cfg).save_pretrained(out)
    for f in tiny_tokenizer_dir.iterdir():
        shutil.copy(f, out / f.name)
    return out


def final(stream):
    """The last update of a streaming handler (what the API returns)."""
    return list(stream)[-1]


def test_summarize_generate_path(tiny_bart):
    from bertvariants.serving import load_checkpoint

    m = load_checkpoint(str(tiny_bart), "seq2seq", device="cpu")
    settings = bart.GenerationSettings(num_beams=2, max_length=9)
    out = bart.summarize(m.model, m.tokenizer, ["a short document about rain.", "another one."], settings=settings)
    assert len(out) == 2 and all(isinstance(s, str) for s in out)
    assert out == bart.summarize(m.model, m.tokenizer, ["a short document about rain.", "another one."],
                                 settings=settings)
    with pytest.raises(ValueError, match="num_beams"):
        bart.GenerationSettings(num_beams=0)


# --------------------------------------------------------------------------------------------
# The tab's handlers
# --------------------------------------------------------------------------------------------
def test_ui_noise_highlights():
    import gradio as gr

    from bertvariants.ui import bart as ui

    orig, corr, md = ui.noise(ui.EXAMPLE, True, True, True, 0.1, True, 0.1, True, 0.3, 3, 0)
    assert len(orig) == len(ui.EXAMPLE.split())
    assert {lbl for _, lbl in orig} >= {None, "deleted", "under a mask"}
    assert any(lbl and lbl.startswith("mask hiding") for _, lbl in corr)
    assert ui.noise(ui.EXAMPLE, True, True, True, 0.1, True, 0.1, True, 0.3, 3, 0) == (orig, corr, md)
    with pytest.raises(gr.Error, match="empty"):
        ui.noise(" ", False, False, False, 0, False, 0, False, 0, 3, 0)


def test_ui_summarize_generate_and_fallback(tmp_path, monkeypatch, tiny_bart):
    import gradio as gr

    from bertvariants import serving
    from bertvariants.ui import bart as ui

    def nothing(task):
        raise serving.ModelUnavailable("no summarization model here.")

    lead3 = bart.lead_n(ui.EXAMPLE, 3).text
    with monkeypatch.context() as m:  # neither BART nor the packaged stand-in: the extractive fallback
        m.setattr(ui, "get_model", nothing)
        summary, md, beside = final(ui.summarize(ui.EXAMPLE, 4, 100, True, "lead-3"))
    assert "Extractive fallback" in md and summary == lead3 == beside
    monkeypatch.setenv("BERTVARIANTS_MODEL_SUMMARIZATION", str(tiny_bart))
    summary, md, beside = final(ui.summarize(ui.EXAMPLE, 2, 12, True, "lead-3"))
    assert md.startswith("Abstractive summary") and "num_beams=2" in md and isinstance(summary, str)
    assert "encoder-decoder" in md and "standing in" not in md and beside == lead3
    for args, msg in (((" ", 4, 100, True, "lead-3"), "empty"), ((ui.EXAMPLE, 0, 100, True, "lead-3"), "num_beams"),
                      (("x" * 1_000_000, 4, 100, True, "lead-3"), "limit"),
                      ((ui.EXAMPLE, 2, 100, True, "no-such"), "fallback must be one of")):
        with pytest.raises(gr.Error, match=msg):
            final(ui.summarize(*args))
    assert serving.resolve("summarization").source == "local"


def test_ui_summarize_offline_stand_in_is_labelled(monkeypatch, one_torch_thread):
    """Offline the task resolves to SmolLM2-135M-Instruct from its pip package: a real abstractive summary,
    labelled as the decoder-only stand-in it is, with Lead-3 beside it."""
    from bertvariants import serving
    from bertvariants.serving import packaged
    from bertvariants.ui import bart as ui

    monkeypatch.delenv("BERTVARIANTS_MODEL_SUMMARIZATION", raising=False)
    if not packaged.available("smollm2") or serving.resolve("summarization").source != "packaged":
        pytest.skip("summarization is not served by the packaged SmolLM2 here")
    summary, md, beside = final(ui.summarize(ui.EXAMPLE, 1, 20, True, "lead-3"))
    assert summary.strip() and summary != beside == bart.lead_n(ui.EXAMPLE, 3).text
    assert "SmolLM2-135M-Instruct" in md and "standing in for BART offline" in md
    assert "facebook/bart-large-cnn" in md and "num_beams=1" in md and "at most 20 new tokens" in md


def test_highlight_marks_only_block_starts_as_moved():
    doc = "A b. C d. E f.".split()  # three 2-token sentences
    perm = bart.Noised(["C", "d.", "A", "b.", "E", "f."], [2, 3, 0, 1, 4, 5], {}, 6)
    assert [lbl for _, lbl in bart.highlight_corrupted(perm)] == ["moved", None, "moved", None, "moved", None]
    # deletions and masks leave gaps that are not moves
    gaps = bart.Noised(["A", "<mask>", "E", "f."], [0, -1, 4, 5], {1: [2, 3]}, 6)
    assert [lbl for _, lbl in bart.highlight_corrupted(gaps)] == [None, "mask hiding 2 token(s)", None, None]
    deleted = bart.token_deletion(doc, ratio=0.5, generator=make_generator(0))
    assert all(lbl is None for _, lbl in bart.highlight_corrupted(deleted))


def test_generation_problem_names_what_is_not_a_summary():
    assert bart.generation_problem("A short summary.") is None
    assert bart.generation_problem("Zwei Sätze.\nZweite Zeile.") is None
    assert "no text" in bart.generation_problem("")
    assert "no text" in bart.generation_problem("  \n ")
    assert "not valid text" in bart.generation_problem("ab\ufffd\ufffdcd")
    assert "control characters" in bart.generation_problem("a\x00b")


def test_a_failed_generation_shows_the_extractive_summary_and_says_so(monkeypatch, tiny_bart):
    from bertvariants.ui import bart as ui

    monkeypatch.setenv("BERTVARIANTS_MODEL_SUMMARIZATION", str(tiny_bart))
    monkeypatch.setattr(bart, "summarize_with", lambda m, docs, settings, on_step=None: ["\ufffd\ufffd"])
    summary, md, lead3 = final(ui.summarize(ui.EXAMPLE, 2, 20, True, "lead-3"))
    assert summary == lead3 and "No abstractive summary" in md and "not valid text" in md
    assert "extractive fallback" in md
    table, _ = ui.compare_summarization(ui.EXAMPLE, 2, 20)
    neural = table.iloc[0]
    assert neural["summary"].startswith("(no summary:") and pd.isna(neural["words"])


def test_generation_keeps_the_checkpoint_config_for_what_is_not_set():
    class Model:
        class generation_config:  # noqa: N801 - stands for a transformers GenerationConfig
            min_length = 56

    kw = bart.GenerationSettings(num_beams=2, max_length=30).generate_kwargs(Model)
    assert kw == {"num_beams": 2, "max_length": 30, "early_stopping": True, "min_length": 30}
    kw = bart.GenerationSettings(num_beams=2, max_length=100).generate_kwargs(Model)
    assert "min_length" not in kw and "no_repeat_ngram_size" not in kw and "length_penalty" not in kw
    kw = bart.GenerationSettings(max_length=100, min_length=5, length_penalty=1.0).generate_kwargs(Model)
    assert kw["min_length"] == 5 and kw["length_penalty"] == 1.0


def test_the_summary_streams_while_it_is_written(monkeypatch, tiny_bart):
    """on_step sees the first summary grow token by token (beam search: the leading beam); the page gets the text so
    far, then the finished summary with how it was made."""
    from bertvariants.serving import load_checkpoint
    from bertvariants.ui import bart as ui

    m = load_checkpoint(str(tiny_bart), "seq2seq", device="cpu")
    seen: list[str] = []
    settings = bart.GenerationSettings(num_beams=2, max_length=12, min_length=10)
    out = bart.summarize(m.model, m.tokenizer, ["a short document about rain."], settings=settings,
                         on_step=seen.append)
    assert len(seen) >= 5 and out == bart.summarize(m.model, m.tokenizer, ["a short document about rain."],
                                                    settings=settings)
    monkeypatch.setenv("BERTVARIANTS_MODEL_SUMMARIZATION", str(tiny_bart))
    monkeypatch.setattr(ui, "STREAM_EVERY", 0.0)
    slow = bart.summarize_with

    def slowly(m, docs, settings, on_step=None):  # a token every 50 ms, so the page sees the steps
        import time

        return slow(m, docs, settings=settings, on_step=lambda t: (on_step(t), time.sleep(0.05)))

    monkeypatch.setattr(bart, "summarize_with", slowly)
    updates = list(ui.summarize(ui.EXAMPLE, 2, 12, True, "lead-3"))
    assert len(updates) >= 2 and all(u[2] == bart.lead_n(ui.EXAMPLE, 3).text for u in updates)
    assert updates[0][1].startswith("_Writing…") and updates[-1][1].startswith(("Abstractive", "**No abstractive"))
