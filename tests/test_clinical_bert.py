"""ClinicalBERT: chunking, the §3.4 aggregate against hand-computed values, t-SNE of the term list."""

from __future__ import annotations

import numpy as np
import pytest

from bertvariants import clinical_bert as cb


def test_aggregate_by_hand_and_official_code():
    probs = [0.9, 0.2, 0.1, 0.4]  # n = 4, c = 2: (0.9 + 0.4·2) / (1 + 2) = 1.7 / 3
    agg = cb.aggregate_chunk_scores(probs)
    assert agg.probability == pytest.approx(1.7 / 3)
    assert (agg.p_max, agg.p_mean, agg.n) == (pytest.approx(0.9), pytest.approx(0.4), 4)
    assert agg.probability == pytest.approx(cb.official_aggregate(probs))
    rng = np.random.default_rng(0)
    for n in (1, 2, 7, 30):
        p = rng.random(n)
        assert cb.aggregate_chunk_scores(p).probability == pytest.approx(cb.official_aggregate(p))
    # one chunk: the aggregate is that chunk's score; many chunks pull it toward the mean
    assert cb.aggregate_chunk_scores([0.3]).probability == pytest.approx(0.3)
    many = cb.aggregate_chunk_scores([0.9] + [0.1] * 99)
    assert many.p_mean < many.probability < many.p_max
    assert many.probability == pytest.approx((0.9 + 0.108 * 50) / 51)


def test_aggregate_multiclass_and_errors():
    p = np.array([[0.8, 0.2], [0.4, 0.6]])
    agg = cb.aggregate_chunk_scores(p, c=1.0)  # (max + mean·2) / 3 per class
    np.testing.assert_allclose(agg.probability, [(0.8 + 1.2) / 3, (0.6 + 0.8) / 3])
    for bad, msg in (([], "non-empty"), ([1.5], r"\[0, 1\]"), ([0.2, float("nan")], r"\[0, 1\]")):
        with pytest.raises(ValueError, match=msg):
            cb.aggregate_chunk_scores(bad)
    with pytest.raises(ValueError, match="c must be"):
        cb.aggregate_chunk_scores([0.5], c=0)


def test_chunk_token_ids_lengths_and_stride():
    ids = list(range(1, 1201))
    chunks = cb.chunk_token_ids(ids, max_tokens=512, cls_id=101, sep_id=102)
    assert [len(c) for c in chunks] == [512, 512, 1200 - 2 * 510 + 2]
    assert all(c[0] == 101 and c[-1] == 102 for c in chunks)
    assert sum(len(c) - 2 for c in chunks) == 1200 and chunks[1][1] == 511
    strided = cb.chunk_token_ids(ids, max_tokens=512, stride=100, cls_id=101, sep_id=102)
    assert all(len(c) <= 512 for c in strided)
    assert strided[1][1] == 511 - 100  # the second chunk starts 100 tokens before the first ended
    assert strided[-1][-2] == 1200
    assert cb.chunk_token_ids([5, 6, 7], max_tokens=512) == [[5, 6, 7]]
    with pytest.raises(ValueError, match="stride"):
        cb.chunk_token_ids(ids, max_tokens=512, stride=600)
    with pytest.raises(ValueError, match="no tokens"):
        cb.chunk_token_ids([], max_tokens=512)


def test_chunk_note_word_boundaries(tiny_tokenizer_dir):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_tokenizer_dir)
    note = " ".join(["The patient underwent laparoscopic cholecystectomy without complications."] * 60)
    chunks = cb.chunk_note(tok, note, max_tokens=64, stride=8)
    assert len(chunks) > 5
    for ch in chunks:
        ids = tok(ch.text)["input_ids"]
        assert len(ids) <= 64 and len(ids) - 2 == ch.num_tokens  # re-tokenizing the chunk text gives its tokens
        assert not ch.text.startswith("#")
    assert chunks[0].char_start == 0 and chunks[-1].char_end == len(note)
    assert all(b.token_start < a.token_end for a, b in zip(chunks, chunks[1:]))  # overlap
    with pytest.raises(ValueError, match="empty"):
        cb.chunk_note(tok, "   ")
    with pytest.raises(ValueError, match="limit"):
        cb.chunk_note(tok, "x" * 1_000_000)


def test_score_note_end_to_end(tiny_checkpoint):
    from bertvariants.serving import load_checkpoint

    m = load_checkpoint(str(tiny_checkpoint("sequence-classification")), "sequence-classification", device="cpu")
    note = "Chief complaint: flank pain. " * 120
    res = cb.score_note(m.model, m.tokenizer, note, max_tokens=100)
    assert res.chunk_probs.shape == (len(res.chunks), 2) and len(res.chunks) >= 7
    assert res.aggregate.probability == pytest.approx(cb.official_aggregate(res.chunk_probs[:, 1]))
    fig = cb.chunk_figure(res)
    assert len(fig.data) == 4 and len(fig.data[0].y) == len(res.chunks)


def test_term_list_and_tsne():
    terms = cb.load_terms()
    cats = {c: sum(t.category == c for t in terms) for c in cb.TERM_CATEGORIES}
    assert set(cats) == {t.category for t in terms} and all(15 <= v <= 25 for v in cats.values())
    assert len({t.term for t in terms}) == len(terms)
    rng = np.random.default_rng(0)
    centers = {c: rng.normal(size=16) * 5 for c in cb.TERM_CATEGORIES}
    terms = terms[::2]  # 40 terms keep the test fast
    emb = np.stack([centers[t.category] + rng.normal(size=16) for t in terms])
    a = cb.tsne_terms(emb, terms, seed=0)
    b = cb.tsne_terms(emb, terms, seed=0)
    np.testing.assert_allclose(a.coords, b.coords)
    assert a.coords.shape == (len(terms), 2)
    fig = cb.tsne_figure(a)
    assert {tr.name for tr in fig.data} == set(cb.TERM_CATEGORIES)
    with pytest.raises(ValueError, match="≥ 3 terms"):
        cb.tsne_terms(emb[:2], terms[:2])


# --------------------------------------------------------------------------------------------
# The tab's handlers
# --------------------------------------------------------------------------------------------
def test_ui_score_with_tiny_classifier(monkeypatch, tiny_checkpoint):
    import gradio as gr

    from bertvariants.ui import clinical_bert as ui

    monkeypatch.setenv("BERTVARIANTS_MODEL_CLINICAL_CLASSIFIER", str(tiny_checkpoint("sequence-classification")))
    fig, md, table = ui.score(ui.EXAMPLE_NOTE, 64, 8, 2, 1)
    assert len(fig.data[0].y) == len(table) > 3 and "max only" in md and "P(LABEL_1)" in table
    agg = cb.aggregate_chunk_scores(table["P(LABEL_1)"].to_numpy()).probability
    assert f"{agg:.3f}"[:4] in md
    for args, msg in ((("", 64, 0, 2, 1), "empty"), (("x" * 1_000_000, 64, 0, 2, 1), "limit is 200,000"),
                      ((ui.EXAMPLE_NOTE, 64, 70, 2, 1), "Stride"), ((ui.EXAMPLE_NOTE, 64, 0, 2, 5), "Class index")):
        with pytest.raises(gr.Error, match=msg):
            ui.score(*args)


def test_ui_score_without_classifier_still_chunks(no_models_here):
    from bertvariants.ui import clinical_bert as ui

    fig, md, table = ui.score(ui.EXAMPLE_NOTE, 128, 0, 2, 1)
    assert fig is None and "No clinical classifier" in md and "python -m bertvariants.train clinical" in md
    assert len(table) >= 5 and (table["tokens"] <= 126).all()


def test_ui_term_map(monkeypatch, tiny_checkpoint):
    import gradio as gr

    from bertvariants.ui import clinical_bert as ui

    monkeypatch.setenv("BERTVARIANTS_MODEL_CLINICAL_EMBEDDINGS", str(tiny_checkpoint("feature-extraction")))
    fig, md = ui.term_map("ibuprofen 400 mg, drugs\nscalpel, instruments", 10)
    assert "instruments" in {tr.name for tr in fig.data} and "82 terms" in md
    with pytest.raises(gr.Error, match="term, category"):
        ui.term_map("no comma here", 10)
    bio = [k for k in cb.TERM_SETS if "BC5CDR" in k][0]
    fig, md = ui.term_map("", 10, bio)
    assert {tr.name for tr in fig.data} == {"Disease", "Chemical"} and "200 terms" in md and "by chance" in md
    with pytest.raises(gr.Error, match="Term set must be one of"):
        ui.term_map("", 10, "all of PubMed")


def test_shipped_biomedical_terms_are_an_even_sample():
    terms = cb.load_terms(cb.BIOMEDICAL_TERMS_PATH)
    assert len(terms) == 200 and sum(t.category == "Disease" for t in terms) == 100
    assert len({t.term.lower() for t in terms}) == 200
