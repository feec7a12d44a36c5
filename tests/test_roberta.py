"""RoBERTa: static vs dynamic masking, byte-level BPE vs WordPiece, fill-mask input handling and inference."""

from __future__ import annotations

import json

import pytest
import torch

from bertvariants import roberta as rb
from bertvariants.common import make_generator

from tests.conftest import needs_shared_data

MASK, V, CLS, SEP = 3, 97, 1, 2


def seq(t=41, seed=0):
    x = torch.randint(4, V, (t,), generator=torch.Generator().manual_seed(seed))
    x[0], x[-1] = CLS, SEP
    return x


def test_static_reuses_ten_masks_across_epochs():
    kw = dict(mask_token_id=MASK, vocab_size=V, special_ids=(CLS, SEP))
    grid = rb.masks_across_epochs(seq(), scheme="static", epochs=40, seed=0, **kw)
    assert grid.shape == (40, 41)
    for e in range(10, 40):
        assert torch.equal(grid[e], grid[e % 10])  # epoch e uses mask e mod 10 (§4.1: each mask seen 4 times)
    assert rb.distinct_masks(grid) <= 10
    dyn = rb.masks_across_epochs(seq(), scheme="dynamic", epochs=40, seed=0, **kw)
    assert rb.distinct_masks(dyn) > 30  # a fresh mask every epoch
    assert (grid[:, 0] == rb.NOT_SELECTED).all() and (dyn[:, -1] == rb.NOT_SELECTED).all()  # specials never


def test_both_schemes_keep_bert_rates():
    ids = torch.randint(4, V, (300, 200), generator=torch.Generator().manual_seed(1))
    for masked in (rb.static_masks(ids, mask_token_id=MASK, vocab_size=V, generator=make_generator(0),
                                   num_masks=2).for_epoch(1),
                   rb.DynamicMasking(mask_token_id=MASK, vocab_size=V, generator=make_generator(0))(ids)):
        n = masked.selected.sum().item()
        assert n / ids.numel() == pytest.approx(0.15, abs=0.005)
        assert masked.masked.sum().item() / n == pytest.approx(0.8, abs=0.01)
        assert masked.randomized.sum().item() / n == pytest.approx(0.1, abs=0.01)


def test_dynamic_producer_is_seeded():
    ids = seq().unsqueeze(0)
    a = rb.DynamicMasking(mask_token_id=MASK, vocab_size=V, generator=make_generator(4))
    b = rb.DynamicMasking(mask_token_id=MASK, vocab_size=V, generator=make_generator(4))
    first_a, first_b = a(ids), b(ids)
    assert torch.equal(first_a.input_ids, first_b.input_ids)
    assert not torch.equal(a(ids).selected, first_a.selected)


@pytest.mark.parametrize("kwargs, match", [(dict(scheme="weekly"), "scheme must be"), (dict(epochs=0), "epochs")])
def test_masks_across_epochs_bad_args(kwargs, match):
    args = dict(scheme="static", epochs=3, seed=0, mask_token_id=MASK, vocab_size=V) | kwargs
    with pytest.raises(ValueError, match=match):
        rb.masks_across_epochs(seq(), **args)


def test_masks_figure():
    grid = rb.masks_across_epochs(seq(7), scheme="dynamic", epochs=3, seed=0, mask_token_id=MASK, vocab_size=V)
    fig = rb.masks_figure(grid, [str(i) for i in range(7)], title="t")
    assert len(fig.data) == 1 and len(fig.data[0].z) == 3


@pytest.fixture(scope="module")
def bpe(tmp_path_factory):
    return rb.byte_bpe_tokenizer(cache_dir=tmp_path_factory.mktemp("models"))


def test_offline_byte_bpe_is_labelled_cached_and_never_unknown(bpe, tmp_path_factory, tiny_tokenizer_dir):
    from transformers import AutoTokenizer

    assert "trained here" in bpe.label and "not RoBERTa" in bpe.label
    wordpiece = AutoTokenizer.from_pretrained(tiny_tokenizer_dir)
    text = "Naïve café owners 🙂 sell crème brûlée in 東京 — antidisestablishmentarianism!"
    wp, bp, words = rb.compare_tokenizers(text, wordpiece, bpe.tokenizer)
    assert bp.num_unknown == 0 and wp.num_unknown >= 1  # the emoji is [UNK] for WordPiece
    assert bpe.tokenizer.convert_tokens_to_string(bp.tokens) == text  # byte-level: lossless
    assert [w.word for w in words] == text.split()
    assert len(words[3].byte_bpe) >= 2  # the emoji is several byte tokens, not an unknown


def test_byte_bpe_reloads_from_disk(tmp_path):
    first = rb.byte_bpe_tokenizer(cache_dir=tmp_path)
    assert (tmp_path / "byte-bpe-wordpiece-vocab" / "tokenizer.json").is_file()
    again = rb.byte_bpe_tokenizer(cache_dir=tmp_path)
    assert again.tokenizer.tokenize("hello world") == first.tokenizer.tokenize("hello world")



def test_the_byte_bpe_is_cached_in_the_user_cache_not_the_repository(monkeypatch, tmp_path):
    from bertvariants.paths import REPO_ROOT
    from bertvariants.serving import ModelUnavailable

    def not_here(hub_id):
        raise ModelUnavailable(f"{hub_id}: not cached")

    def snapshot():  # what the repository's models/ holds, with modification times
        return {p: p.stat().st_mtime_ns for p in (REPO_ROOT / "models").rglob("byte-bpe*/*")}

    monkeypatch.setattr(rb, "hub_tokenizer", not_here)
    monkeypatch.setenv("BERTVARIANTS_CACHE_DIR", str(tmp_path / "cache"))
    before = snapshot()
    assert "trained here" in rb.byte_bpe_tokenizer().label
    assert (tmp_path / "cache" / "byte-bpe-wordpiece-vocab" / "tokenizer.json").is_file()
    assert snapshot() == before  # nothing written into the repository

@needs_shared_data
def test_train_byte_bpe_on_the_shared_corpus(shared_data):
    lines = [json.loads(line)["text"] for line in
             (shared_data / "corpus" / "enwiki_sample.jsonl").read_text(encoding="utf-8").splitlines()[:40]]
    tok = rb.train_byte_bpe(lines, vocab_size=5000)
    assert 1000 < tok.get_vocab_size() <= 5000
    enc = tok.encode("The history of the city 🙂")
    assert tok.decode(enc.ids) == "The history of the city 🙂"


def test_train_byte_bpe_rejects_tiny_vocab():
    with pytest.raises(ValueError, match="vocab_size must be"):
        rb.train_byte_bpe(["a"], vocab_size=10)


def test_compare_bad_input(bpe, tiny_tokenizer_dir):
    from transformers import AutoTokenizer

    wp = AutoTokenizer.from_pretrained(tiny_tokenizer_dir)
    with pytest.raises(ValueError, match="empty"):
        rb.compare_tokenizers("  ", wp, bpe.tokenizer)
    with pytest.raises(ValueError, match="limit"):
        rb.compare_tokenizers("x" * 3000, wp, bpe.tokenizer)


def test_normalize_mask_text(tiny_tokenizer_dir, bpe):
    from transformers import AutoTokenizer

    wp = AutoTokenizer.from_pretrained(tiny_tokenizer_dir)
    assert rb.normalize_mask_text("Paris is the <mask> of France.", wp) == "Paris is the [MASK] of France."
    assert rb.normalize_mask_text("Paris is the [MASK] of France.", bpe.tokenizer) == "Paris is the <mask> of France."
    with pytest.raises(ValueError, match="no mask token in the text"):
        rb.normalize_mask_text("Paris is the capital of France.", wp)
    with pytest.raises(ValueError, match="empty"):
        rb.normalize_mask_text("", wp)
    with pytest.raises(ValueError, match="at most 5"):
        rb.normalize_mask_text("[MASK] " * 6, wp)


def test_fill_mask_on_tiny_checkpoint(tiny_checkpoint):
    from bertvariants.inference import fill_mask
    from bertvariants.serving import load_checkpoint

    m = load_checkpoint(str(tiny_checkpoint("masked-lm")), "masked-lm")
    texts = ["Paris is the [MASK] of France.", "A [MASK] and a [MASK] 🙂", "Paris is the [MASK] of France."]
    preds = fill_mask(m.model, m.tokenizer, texts, top_k=4)
    assert len(preds[0]) == 1 and len(preds[1]) == 2 and preds[2] == preds[0]
    p = preds[0][0]
    assert len(p.tokens) == 4 and p.probabilities == sorted(p.probabilities, reverse=True)
    assert 0 < sum(p.probabilities) <= 1.0 + 1e-6
    ids = m.tokenizer(texts[0])["input_ids"]
    assert ids[p.position] == m.tokenizer.mask_token_id


# ------------------------------------------------------------------ UI handlers
def test_ui_masking_handler():
    import gradio as gr

    from bertvariants.ui import roberta as ui

    md, static, dynamic = ui.masking("RoBERTa uses dynamic masking of the training data.", 25, 0)
    assert "distinct masks" in md and len(static.data[0].z) == 25
    with pytest.raises(gr.Error, match="empty"):
        ui.masking("  ", 5, 0)
    with pytest.raises(gr.Error, match="at most 64"):
        ui.masking("word " * 100, 5, 0)
    with pytest.raises(gr.Error, match="between"):
        ui.masking("fine", 41, 0)


def test_ui_tokenizers_handler(monkeypatch, tmp_path):
    from bertvariants.ui import roberta as ui

    monkeypatch.setenv("BERTVARIANTS_MODELS_DIR", str(tmp_path))
    monkeypatch.setattr(ui, "byte_bpe", lambda: rb.byte_bpe_tokenizer(cache_dir=tmp_path))
    md, df, wp, bpe = ui.tokenizers("Emoji 🙂 and Привет")
    assert "[UNK]" in wp and "0 unknown" in md and len(df) == 4


def test_ui_fill_mask_handler(tiny_checkpoint, monkeypatch):
    import gradio as gr

    from bertvariants.ui import roberta as ui

    monkeypatch.setenv("BERTVARIANTS_MODEL_ROBERTA_FILL_MASK", str(tiny_checkpoint("masked-lm")))
    label, df = ui.fill("Paris is the <mask> of France and [MASK] too.", 2)
    assert "[MASK]" in label and list(df["mask"]) == [1, 1, 2, 2]
    with pytest.raises(gr.Error, match="no mask token"):
        ui.fill("No mask here 🙂", 2)
    with pytest.raises(gr.Error, match="limit"):
        ui.fill("word " * 300 + "[MASK]", 2)
    with pytest.raises(gr.Error, match="empty"):
        ui.fill("", 2)


def test_train_byte_bpe_from_files(tmp_path):
    a, b = tmp_path / "a.txt", tmp_path / "b.txt"
    a.write_text("the cat sat on the mat\n" * 50, encoding="utf-8")
    b.write_text("the dog sat on the log 🙂\n" * 50, encoding="utf-8")
    tok = rb.train_byte_bpe([a, b], vocab_size=300)
    assert tok.decode(tok.encode("the cat 🙂").ids) == "the cat 🙂"
    with pytest.raises(ValueError, match="not found"):
        rb.train_byte_bpe([tmp_path / "missing.txt"], vocab_size=300)
