"""BERT masking primitive (common.mask_tokens): the paper's rates, specials never selected, determinism."""

from __future__ import annotations

import pytest
import torch

from bertvariants.common import (IGNORE_INDEX, REPLACE_KEEP, REPLACE_MASK, REPLACE_RANDOM, apply_replacements,
                                 draw_replacement_kinds, make_generator, mask_tokens, special_tokens_mask,
                                 word_ids_from_tokens, word_spans)

CLS, SEP, PAD, MASK, V = 1, 2, 0, 3, 97


def batch(rows=400, length=251, seed=0):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(4, V, (rows, length), generator=g)
    ids[:, 0], ids[:, -1] = CLS, SEP
    ids[::3, -40:] = PAD  # padding in a third of the rows
    return ids


def test_rates_match_bert_paper():
    ids = batch()
    out = mask_tokens(ids, mask_token_id=MASK, vocab_size=V, special_ids=(CLS, SEP, PAD), generator=make_generator(1))
    eligible = ~special_tokens_mask(ids, (CLS, SEP, PAD))
    n_sel = out.selected.sum().item()
    assert n_sel / eligible.sum().item() == pytest.approx(0.15, abs=0.005)
    assert out.masked.sum().item() / n_sel == pytest.approx(0.80, abs=0.01)
    assert out.randomized.sum().item() / n_sel == pytest.approx(0.10, abs=0.01)
    assert out.kept.sum().item() / n_sel == pytest.approx(0.10, abs=0.01)
    assert not (out.selected & ~eligible).any()
    assert torch.equal(out.masked | out.randomized | out.kept, out.selected)
    assert (out.input_ids[out.masked] == MASK).all()
    assert torch.equal(out.input_ids[~out.selected], ids[~out.selected])
    assert torch.equal(out.input_ids[out.kept], ids[out.kept])
    assert (out.labels[~out.selected] == IGNORE_INDEX).all()
    assert torch.equal(out.labels[out.selected], ids[out.selected])


def test_seed_determinism_and_difference():
    ids = batch(rows=5, length=33)
    kw = dict(mask_token_id=MASK, vocab_size=V, special_ids=(CLS, SEP, PAD))
    a = mask_tokens(ids, generator=make_generator(7), **kw)
    b = mask_tokens(ids, generator=make_generator(7), **kw)
    c = mask_tokens(ids, generator=make_generator(8), **kw)
    assert torch.equal(a.input_ids, b.input_ids) and torch.equal(a.labels, b.labels)
    assert not torch.equal(a.selected, c.selected)


def test_special_mask_argument_and_1d_input():
    ids = torch.arange(4, 41)
    never = torch.zeros_like(ids, dtype=torch.bool)
    never[:10] = True
    out = mask_tokens(ids, mask_token_id=MASK, vocab_size=V, special_mask=never, mlm_probability=1.0,
                      generator=make_generator(0))
    assert not out.selected[:10].any() and out.selected[10:].all()


def test_replacement_kinds_rates():
    kinds = draw_replacement_kinds((200_000,), generator=make_generator(3))
    for kind, rate in ((REPLACE_MASK, 0.8), (REPLACE_RANDOM, 0.1), (REPLACE_KEEP, 0.1)):
        assert (kinds == kind).float().mean().item() == pytest.approx(rate, abs=0.01)


@pytest.mark.parametrize("kwargs, match", [
    (dict(mlm_probability=1.5), "mlm_probability"),
    (dict(mask_ratio=0.9, random_ratio=0.2), "mask_ratio \\+ random_ratio"),
    (dict(special_mask=torch.zeros(3, dtype=torch.bool)), "special_mask shape"),
])
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        mask_tokens(torch.arange(4, 11), mask_token_id=MASK, vocab_size=V, generator=make_generator(0), **kwargs)


def test_apply_replacements_shape_check():
    ids = torch.arange(5)
    with pytest.raises(ValueError, match="same shape"):
        apply_replacements(ids, torch.ones(4, dtype=torch.bool), torch.zeros(5, dtype=torch.long), mask_token_id=MASK,
                           vocab_size=V, generator=make_generator(0))


def test_whole_words():
    tokens = ["[CLS]", "un", "##aff", "##able", "cat", "[UNK]", "##s", "[SEP]"]
    wid = word_ids_from_tokens(tokens)
    assert wid == [None, 0, 0, 0, 1, 2, 2, None]
    assert word_spans(wid) == [(1, 4), (4, 5), (5, 7)]
