"""Sentence-BERT: pooling modes against hand-computed values, cosine, batched encoding, search, clustering, and
the same pair through five encoders (the compare view)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bertvariants import sentence_bert as sb
from bertvariants.common import pool
from bertvariants.io import weights_size


def test_pooling_modes_by_hand():
    hidden = torch.tensor([[[1.0, 2.0], [3.0, -4.0], [100.0, 100.0]],  # 3rd token is padding
                           [[0.5, 0.0], [-1.0, 6.0], [2.0, 1.0]]])  # (B=2, T=3, H=2)
    mask = torch.tensor([[1, 1, 0], [1, 1, 1]])
    assert pool(hidden, mask, "mean").flatten().tolist() == pytest.approx([2.0, -1.0, 0.5, 7.0 / 3])
    assert pool(hidden, mask, "cls").tolist() == [[1.0, 2.0], [0.5, 0.0]]
    assert pool(hidden, mask, "max").tolist() == [[3.0, 2.0], [2.0, 6.0]]  # padding's 100 never wins
    with pytest.raises(ValueError, match="pooling must be one of"):
        pool(hidden, mask, "sum")


def test_max_pooling_ignores_padding_even_when_all_real_values_are_negative():
    hidden = torch.tensor([[[-5.0], [-3.0], [0.0]]])
    assert pool(hidden, torch.tensor([[1, 1, 0]]), "max").item() == -3.0


def test_cosine_matrix_by_hand():
    a = torch.tensor([[1.0, 0.0], [1.0, 1.0]])
    b = torch.tensor([[0.0, 2.0], [-3.0, 0.0]])
    expected = [0.0, -1.0, 1 / 2 ** 0.5, -1 / 2 ** 0.5]
    assert sb.cosine_matrix(a, b).flatten().tolist() == pytest.approx(expected)
    assert torch.diagonal(sb.cosine_matrix(a)).tolist() == pytest.approx([1.0, 1.0])


@pytest.fixture(scope="module")
def tiny(tiny_checkpoint):
    from bertvariants.serving import load_checkpoint

    m = load_checkpoint(str(tiny_checkpoint("feature-extraction")), "feature-extraction", device="cpu")
    return m.model, m.tokenizer


def test_encode_matches_a_manual_forward_and_batching_does_not_change_it(tiny):
    from bertvariants.inference import encode

    model, tok = tiny
    sents = ["a short one", "a considerably longer sentence with many more words in it", "a short one"]
    batched = encode(model, tok, sents, pooling="mean", normalize=False)
    for i, s in enumerate(sents):
        enc = tok([s], return_tensors="pt")
        with torch.no_grad():
            h = model(**enc).last_hidden_state
        assert torch.allclose(batched[i], h[0].mean(0), atol=1e-5)  # no padding for a lone sentence
    assert torch.equal(batched[0], batched[2])  # de-duplicated, scattered back


def test_similarity_and_similarities_agree(tiny):
    model, tok = tiny
    pair = sb.similarity(model, tok, "a cat sits", "a dog runs", pooling="cls")
    assert pair.score == pytest.approx(float(np.dot(pair.embedding_a, pair.embedding_b)), abs=1e-5)
    batch = sb.similarities(model, tok, ["a cat sits", "x"], ["a dog runs", "x"], pooling="cls")
    assert batch[0] == pytest.approx(pair.score, abs=1e-5) and batch[1] == pytest.approx(1.0, abs=1e-5)
    with pytest.raises(ValueError, match="2 first sentences but 1"):
        sb.similarities(model, tok, ["a", "b"], ["c"])


def test_semantic_search_ranks_by_cosine(tiny):
    from bertvariants.inference import encode

    model, tok = tiny
    corpus = ["the red car", "a blue boat", "green trees in spring", "the red car"]
    hits = sb.semantic_search(model, tok, "a red automobile", corpus, top_k=10)
    assert [h.rank for h in hits] == [1, 2, 3, 4]  # top_k above the corpus size returns the corpus
    emb = encode(model, tok, ["a red automobile", *corpus])
    manual = (emb[1:] @ emb[0]).numpy()
    assert [h.score for h in hits] == pytest.approx(sorted(manual, reverse=True), abs=1e-5)
    assert all(h.sentence == corpus[h.index] for h in hits)
    with pytest.raises(ValueError, match="top_k"):
        sb.semantic_search(model, tok, "q", corpus, top_k=0)
    with pytest.raises(ValueError, match="at least 1 non-empty"):
        sb.semantic_search(model, tok, "q", ["  ", ""])


def test_clustering_recovers_separated_groups_deterministically():
    rng = np.random.default_rng(0)
    emb = np.concatenate([rng.normal(loc=c, scale=0.05, size=(5, 8)) for c in (-3.0, 0.0, 3.0)])
    names = [f"s{i}" for i in range(15)]
    a = sb.cluster(emb, names, k=3, seed=0)
    groups = [set(a.labels[i:i + 5].tolist()) for i in (0, 5, 10)]
    assert all(len(g) == 1 for g in groups) and len(set().union(*groups)) == 3
    b = sb.cluster(emb, names, k=3, seed=0)
    assert np.array_equal(a.labels, b.labels) and np.allclose(a.coords, b.coords)
    assert a.coords.shape == (15, 2) and a.explained_variance[0] > 0.9
    fig = sb.cluster_figure(a)
    assert len(fig.data) == 3
    with pytest.raises(ValueError, match="number of clusters"):
        sb.cluster(emb, names, k=16)


def test_check_sentences_limits():
    assert sb.check_sentences([" a ", "", "b"]) == ["a", "b"]
    with pytest.raises(ValueError, match="at least 2"):
        sb.check_sentences(["a"], minimum=2)
    with pytest.raises(ValueError, match="at most 3"):
        sb.check_sentences(list("abcd"), maximum=3)
    with pytest.raises(ValueError, match="the limit is"):
        sb.check_sentences(["x" * (sb.MAX_CHARS + 1)])


def test_heatmap_figure():
    fig = sb.heatmap_figure(["a", "b"], np.array([[1.0, 0.2], [0.2, 1.0]]))
    assert np.asarray(fig.data[0].z).shape == (2, 2)


def test_similarity_pairs_is_the_cosine_of_encode_embeddings(tiny):
    """The similarity endpoint's scores: cos of each pair's pooled embeddings, rounded, pairs kept apart."""
    from bertvariants.inference import encode

    model, tok = tiny
    firsts, seconds = ["a cat sits", "x", "the red car"], ["a dog runs", "x", "green trees in spring"]
    scores = sb.similarity_pairs(model, tok, firsts, seconds, decimals=None)
    emb = encode(model, tok, firsts + seconds, normalize=False)
    expected = [float(sb.cosine_matrix(emb[i:i + 1], emb[3 + i:4 + i])) for i in range(3)]
    assert scores == pytest.approx(expected, abs=1e-5)
    assert sb.similarity_pairs(model, tok, firsts, seconds) == [round(s, 4) for s in scores]  # default: 4 places
    assert sb.similarity_pairs(model, tok, firsts[:1], seconds[:1], decimals=None)[0] == pytest.approx(scores[0], abs=1e-5)
    with pytest.raises(ValueError, match="3 first sentences but 2"):
        sb.similarity_pairs(model, tok, firsts, seconds[:2])
    with pytest.raises(ValueError, match="pair 2: sentence B is empty"):
        sb.similarity_pairs(model, tok, ["a", "b"], ["c", "  "])
    with pytest.raises(ValueError, match="the limit is"):
        sb.similarity_pairs(model, tok, ["a"], ["x" * (sb.MAX_CHARS + 1)])


def test_size_on_disk_counts_every_weight_format(tmp_path):
    for name, size in (("model.safetensors", 10), ("model.onnx", 7), ("model.gguf", 5), ("vocab.txt", 1000)):
        (tmp_path / name).write_bytes(b"x" * size)
    assert weights_size(tmp_path) == 22  # the vocabulary is not a weight file
    assert weights_size(tmp_path / "model.onnx") == 7
    assert weights_size(tmp_path / "missing") == 0 and weights_size("org/hub-id") == 0


def test_timed_similarity_is_the_pair_cosine_with_a_latency(tiny):
    model, tok = tiny
    timed = sb.timed_similarity(model, tok, "a cat sits", "a dog runs", pooling="cls", repeats=2)
    assert timed.score == pytest.approx(sb.similarity(model, tok, "a cat sits", "a dog runs", pooling="cls").score,
                                        abs=1e-5)
    assert timed.latency_ms > 0
    with pytest.raises(ValueError, match="repeats must be"):
        sb.timed_similarity(model, tok, "a", "b", repeats=0)
    with pytest.raises(ValueError, match="at least 1 non-empty"):
        sb.timed_similarity(model, tok, "  ", "b")


def test_compare_models_gives_one_row_per_model(tiny_checkpoint):
    from bertvariants.serving import load_checkpoint

    path = str(tiny_checkpoint("feature-extraction"))
    m = load_checkpoint(path, "feature-extraction", device="cpu")
    rows = sb.compare_models([("tiny", m), ("tiny again", m)], "a cat sits", "a dog runs", repeats=1)
    assert [r.name for r in rows] == ["tiny", "tiny again"]
    assert rows[0].score == pytest.approx(rows[1].score, abs=1e-6)
    assert rows[0].parameters == sum(p.numel() for p in m.model.parameters())
    assert rows[0].size_bytes == weights_size(path) > 0 and rows[0].latency_ms > 0


def test_the_compare_endpoint_returns_a_row_per_encoder():
    """PyTorch MiniLM-L6, MiniLM-L3 ONNX, MiniLM-L6 int8 ONNX (the real packaged models, offline) and the two
    shipped students of MiniLM-L6 on one pair."""
    from bertvariants.serving.sources import servable as available
    from bertvariants.ui import sentence_bert as ui

    df, md = ui.compare_similarity("A man is eating food.", "Someone is having a meal.")
    assert list(df["model"]) == list(sb.COMPARE_MODELS) and list(df.columns) == list(ui.COMPARE_COLUMNS)
    assert "measured now" in md
    if not all(available(n) for n in sb.COMPARE_MODELS):
        pytest.skip("an ONNX MiniLM pip package is not installed")
    rows = df.set_index("model")
    assert rows.loc["minilm", "cosine"] == pytest.approx(0.689, abs=0.01)  # README's reference pair
    assert abs(rows.loc["minilm-int8-onnx", "cosine"] - rows.loc["minilm", "cosine"]) < 0.01
    assert rows.loc["minilm-l3-onnx", "parameters (M)"] < rows.loc["minilm", "parameters (M)"]
    assert rows.loc["minilm-int8-onnx", "size on disk (MB)"] < rows.loc["minilm", "size on disk (MB)"] / 3
    assert (df["latency (ms, median of 5)"] > 0).all()
    # the students were distilled to reproduce the teacher's cosines: close to it, with fewer layers / parameters
    assert abs(rows.loc["distil-student", "cosine"] - rows.loc["minilm", "cosine"]) < 0.08
    assert abs(rows.loc["albert-student", "cosine"] - rows.loc["minilm", "cosine"]) < 0.2
    assert rows.loc["albert-student", "parameters (M)"] < rows.loc["minilm", "parameters (M)"] / 3


def test_the_compare_endpoint_rejects_bad_input():
    import gradio as gr

    from bertvariants.ui import sentence_bert as ui

    with pytest.raises(gr.Error, match="Sentence A is empty"):
        ui.compare_similarity("   ", "b")
