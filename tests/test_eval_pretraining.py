"""The held-out pretraining benchmarks of the evaluation harness (wikipedia-mlm / -rtd / -span) on tiny
checkpoints and a tiny corpus: valid records, determinism, the recipes' split, the papers' 15% masking budget,
AUROC semantics, the lower-is-better direction, and clear errors for checkpoints that lack a head."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from evaluation import results, runner, tasks

from .conftest import unpack
from evaluation.metrics import pretraining as P

WORDS = ("the river flows north through the old city and the market opens at dawn while the bells ring . "
         "farmers bring grain , fish and wool ; traders count coins and the council meets in the hall . "
         "unaffable weavers sell indigo cloth beside the harbour").split()
TASKS = ("wikipedia-mlm", "wikipedia-rtd", "wikipedia-span")


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    """9 documents of 170 words: 3 training documents, then the 6 held-out ones (about 8 blocks of 128 tokens)."""
    gen = torch.Generator().manual_seed(0)
    docs = [" ".join(WORDS[int(i)] for i in torch.randint(len(WORDS), (170,), generator=gen)) for _ in range(9)]
    path = tmp_path_factory.mktemp("corpus") / "enwiki_sample.jsonl"
    path.write_text("\n".join(json.dumps({"id": str(i), "title": f"d{i}", "text": d}) for i, d in enumerate(docs))
                    + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def tiny_mlm(tiny_checkpoint) -> Path:
    return tiny_checkpoint("masked-lm")


@pytest.fixture(scope="module")
def tiny_electra(tmp_path_factory, tiny_tokenizer_dir) -> Path:
    """What the electra recipe saves: <dir>/generator (ElectraForMaskedLM) and <dir>/discriminator."""
    from transformers import ElectraConfig, ElectraForMaskedLM, ElectraForPreTraining

    from tests.conftest import save_tiny

    root = tmp_path_factory.mktemp("electra")
    shape = dict(vocab_size=30522, embedding_size=36, num_hidden_layers=1, num_attention_heads=3,
                 intermediate_size=37, max_position_embeddings=128)
    save_tiny(ElectraForMaskedLM, ElectraConfig(hidden_size=12, **{**shape, "num_attention_heads": 2}),
              tiny_tokenizer_dir, root / "generator")
    save_tiny(ElectraForPreTraining, ElectraConfig(hidden_size=36, **shape), tiny_tokenizer_dir, root / "discriminator")
    return root


@pytest.fixture(scope="module")
def tiny_span(tmp_path_factory, tiny_mlm) -> Path:
    """A BertForMaskedLM with a span-boundary head saved as the spanbert recipe saves it."""
    from safetensors.torch import save_file
    from transformers import BertForMaskedLM

    from bertvariants.spanbert import SpanBertModel

    out = tmp_path_factory.mktemp("span") / "spanbert"
    shutil.copytree(tiny_mlm, out)
    torch.manual_seed(1)
    model = SpanBertModel(BertForMaskedLM.from_pretrained(out), max_span_tokens=17)
    save_file({k: v.contiguous() for k, v in model.sbo.state_dict().items() if k != "decoder.weight"},
              str(out / "sbo_head.safetensors"))
    return out


def run(task, model, corpus, **kw):
    return unpack(runner.run(task, str(model), data=str(corpus), progress=False, **kw))


# ------------------------------------------------------------------ the table and the split
def test_benchmarks_in_the_table():
    for key in TASKS:
        b = tasks.benchmark(key)
        assert b.family == "pretraining" and b.format in tasks.BLOCK_FORMATS and b.format in runner.EVALUATORS
        assert b.primary in b.metrics and b.default_split == "heldout"
        assert b.files["heldout"] == "corpus/enwiki_sample.jsonl"
    assert tasks.benchmark("wikipedia-mlm").higher_is_better is False
    assert results.higher_is_better("wikipedia-mlm") is False  # the leaderboard reads the table's direction
    assert tasks.benchmark("wikipedia-rtd").higher_is_better and tasks.benchmark("wikipedia-span").higher_is_better
    assert (P.HELDOUT_DOCS, P.BLOCK_TOKENS, P.EVAL_BLOCKS, P.MASK_SEED) == (6, 128, 96, 1234)


def test_recipe_defaults_are_the_harness_defaults():
    from bertvariants.train.electra import ElectraConfig
    from bertvariants.train.mlm import MLMConfig, heldout_docs
    from bertvariants.train.spanbert import SpanBertConfig

    for cfg in (ElectraConfig(), SpanBertConfig()):
        assert (cfg.heldout_docs, cfg.max_length, cfg.eval_blocks) == (P.HELDOUT_DOCS, P.BLOCK_TOKENS, P.EVAL_BLOCKS)
    mlm = MLMConfig()  # held-out documents follow the training corpus's harness split
    assert (heldout_docs(mlm), mlm.max_length, mlm.eval_blocks) == (P.HELDOUT_DOCS, P.BLOCK_TOKENS, P.EVAL_BLOCKS)
    assert heldout_docs(MLMConfig(corpus="enwiki2018")) == P.HELDOUT_DOCS_BY_SPLIT["enwiki2018"] == 100


@pytest.mark.parametrize("heldout_docs,block", [(6, 128), (2, 33)])
def test_heldout_blocks_are_the_recipes_split(corpus, tiny_tokenizer_dir, heldout_docs, block):
    """The harness cuts exactly the blocks the recipes hold out (bertvariants.corpus.corpus_blocks)."""
    from transformers import AutoTokenizer

    from bertvariants.corpus import corpus_blocks, read_corpus

    tok = AutoTokenizer.from_pretrained(tiny_tokenizer_dir)
    docs = read_corpus(corpus)
    cfg = P.HeldoutConfig(heldout_docs=heldout_docs, block_tokens=block, eval_blocks=5)
    _, recipe_heldout = corpus_blocks(tok, docs, block=block, heldout_docs=heldout_docs)
    assert torch.equal(P.heldout_blocks(tok, docs, cfg), recipe_heldout[:5])
    whole = P.HeldoutConfig(heldout_docs=heldout_docs, block_tokens=block)
    assert len(P.heldout_blocks(tok, docs, whole)) == min(96, len(recipe_heldout))


# ------------------------------------------------------------------ wikipedia-mlm
def test_mlm_record_is_valid_and_in_nats(corpus, tiny_mlm):
    rec, records = run("wikipedia-mlm", tiny_mlm, corpus)
    m = rec["metrics"]
    assert rec["task"] == "wikipedia-mlm" and rec["split"] == "heldout" and rec["primary_metric"] == "heldout_mlm_loss"
    assert rec["score"] == m["heldout_mlm_loss"] and rec["n"] == len(records) == rec["details"]["blocks"] >= 6
    assert rec["ci95"]["low"] <= rec["score"] <= rec["ci95"]["high"]
    assert m["heldout_perplexity"] == pytest.approx(math.exp(m["heldout_mlm_loss"]), rel=1e-3)
    # a randomly initialised head is close to uniform over the 30,522 WordPiece tokens: loss ≈ ln V nats
    assert abs(m["heldout_mlm_loss"] - math.log(30522)) < 0.5
    # BERT §3.1: 15% of the (non-special) tokens are predicted
    assert 11.0 < rec["details"]["masked_fraction"] < 19.0
    assert rec["details"]["heldout"] == {"heldout_docs": 6, "block_tokens": 128, "eval_blocks": 96, "mask_seed": 1234}
    assert {"id", "input", "prediction", "reference", "error"} <= set(records[0])


def test_mlm_is_deterministic_prefix_stable_and_batch_independent(corpus, tiny_mlm):
    full, recs = run("wikipedia-mlm", tiny_mlm, corpus)
    again, recs2 = run("wikipedia-mlm", tiny_mlm, corpus, batch_size=3)
    assert again["metrics"] == pytest.approx(full["metrics"], abs=2e-4) and again["ci95"]["low"] == pytest.approx(
        full["ci95"]["low"], abs=2e-4)
    assert [r["prediction"] for r in recs2] == [r["prediction"] for r in recs]
    head, head_recs = run("wikipedia-mlm", tiny_mlm, corpus, limit=3)
    assert head["n"] == 3 and head["limit"] == 3
    assert [r["id"] for r in head_recs] == [r["id"] for r in recs[:3]]  # --limit N = the first N blocks, same masks
    assert [r["reference"] for r in head_recs] == [r["reference"] for r in recs[:3]]


def test_bert_masks_follow_the_paper_rates(tiny_tokenizer_dir):
    """15% of the tokens selected; of those 80% [MASK], 10% random, 10% unchanged; specials never selected."""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_tokenizer_dir)
    blocks = torch.randint(2000, 29000, (300, 41), generator=torch.Generator().manual_seed(3))
    blocks[:, 0], blocks[:, -1] = tok.cls_token_id, tok.sep_token_id
    inputs, labels = P.bert_masks(blocks, tok, seed=1234)
    sel = labels != -100
    assert not sel[:, 0].any() and not sel[:, -1].any()
    assert sel[:, 1:-1].float().mean().item() == pytest.approx(0.15, abs=0.01)
    is_mask = (inputs[sel] == tok.mask_token_id).float().mean().item()
    unchanged = (inputs[sel] == blocks[sel]).float().mean().item()
    assert is_mask == pytest.approx(0.8, abs=0.03) and unchanged == pytest.approx(0.1, abs=0.02)
    again = P.bert_masks(blocks, tok, seed=1234)
    assert torch.equal(again[0], inputs) and not torch.equal(P.bert_masks(blocks, tok, seed=1)[0], inputs)


def test_lower_loss_ranks_first_on_the_leaderboard(corpus, tiny_mlm, tiny_checkpoint, tmp_path):
    worse = tiny_checkpoint("masked-lm", initializer_range=0.5)  # large random logits: a far higher loss
    for model in (worse, tiny_mlm):
        rec, recs = run("wikipedia-mlm", model, corpus, limit=2)
        results.write_result(rec, tmp_path, recs)
    board = results.leaderboard(tmp_path, include_paper=False)
    rows = board[board["task"] == "wikipedia-mlm"]
    assert list(rows["model"]) == [str(tiny_mlm), str(worse)]
    assert rows["score"].iloc[0] < rows["score"].iloc[1]


def test_cli_writes_a_normal_result(corpus, tiny_mlm, tmp_path, capsys):
    from evaluation.__main__ import main

    assert main(["run", "--task", "wikipedia-mlm", "--model", str(tiny_mlm), "--data", str(corpus), "--limit", "2",
                 "--output", str(tmp_path)]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["task"] == "wikipedia-mlm" and out["n"] == 2
    saved = results.read_result(Path(out["file"]))
    assert saved["metrics"] == out["metrics"] and (tmp_path / saved["predictions_file"]).is_file()


# ------------------------------------------------------------------ wikipedia-rtd
def test_auroc_is_the_official_auroc_with_weights():
    import doctest

    from sklearn.metrics import roc_auc_score

    assert doctest.testmod(P).failed == 0

    rng = np.random.default_rng(0)
    truth = rng.random(400) < 0.2
    scores = np.round(rng.random(400) + truth * 0.3, 1)  # rounded: many ties
    w = rng.integers(0, 4, 400)
    assert P.auroc_points(scores, truth) == pytest.approx(100 * roc_auc_score(truth, scores))
    assert P.auroc_points(scores, truth, w) == pytest.approx(100 * roc_auc_score(truth, scores, sample_weight=w))
    assert math.isnan(P.auroc_points(scores, np.zeros(400, bool)))


def test_rtd_record_from_the_recipe_layout_and_a_discriminator_dir(corpus, tiny_electra):
    rec, records = run("wikipedia-rtd", tiny_electra, corpus, limit=4)
    m = rec["metrics"]
    assert rec["primary_metric"] == "auroc" and 0.0 <= m["auroc"] <= 100.0 and rec["n"] == len(records) == 4
    assert set(m) == set(tasks.benchmark("wikipedia-rtd").metrics)
    # ELECTRA §2: 15% masked; a random generator almost never samples the original token back
    assert 11.0 < rec["details"]["masked_fraction"] < 19.0
    assert 10.0 < m["replaced_fraction"] <= rec["details"]["masked_fraction"] + 1e-3
    same, _ = run("wikipedia-rtd", tiny_electra / "discriminator", corpus, limit=4)
    assert same["metrics"] == m and same["model_revision"] == rec["model_revision"]


def test_rtd_without_a_generator_is_a_clear_error(corpus, tiny_electra, tiny_mlm, tmp_path):
    with pytest.raises(ValueError, match="needs an ELECTRA generator and discriminator"):
        run("wikipedia-rtd", tiny_mlm, corpus)
    shutil.copytree(tiny_mlm, tmp_path / "discriminator")
    shutil.copytree(tiny_electra / "generator", tmp_path / "generator")
    with pytest.raises(ValueError, match="not an ELECTRA discriminator"):
        run("wikipedia-rtd", tmp_path, corpus)


# ------------------------------------------------------------------ wikipedia-span
def test_span_record_and_determinism(corpus, tiny_span):
    rec, records = run("wikipedia-span", tiny_span, corpus, limit=4)
    m = rec["metrics"]
    assert rec["primary_metric"] == "heldout_sbo_accuracy" and rec["n"] == 4 and rec["variant"] == "SpanBERT"
    assert 0.0 <= m["heldout_sbo_accuracy"] <= 100.0
    assert abs(m["heldout_sbo_loss"] - math.log(30522)) < 1.0 and abs(m["heldout_mlm_loss"] - math.log(30522)) < 0.5
    assert 8.0 < rec["details"]["masked_fraction"] < 22.0  # SpanBERT §3.1: 15% of the words (tokens ≈ 15%)
    again, records2 = run("wikipedia-span", tiny_span, corpus, limit=4, batch_size=1)
    assert again["metrics"] == pytest.approx(m, abs=2e-4) and [r["reference"] for r in records2] == [
        r["reference"] for r in records]


def test_heads_are_required_not_made_up(corpus, tiny_mlm, tiny_checkpoint):
    with pytest.raises(ValueError, match="no sbo_head.safetensors"):
        run("wikipedia-span", tiny_mlm, corpus)
    with pytest.raises(ValueError, match="no masked-LM head"):
        run("wikipedia-mlm", tiny_checkpoint("feature-extraction"), corpus)
    with pytest.raises(ValueError, match="not a local directory"):
        run("wikipedia-mlm", "no-such-model", corpus)


# ------------------------------------------------------------------ options and bad input
def test_options_and_bad_input(corpus, tiny_mlm, tmp_path):
    small, _ = run("wikipedia-mlm", tiny_mlm, corpus, options={"heldout_docs": 2, "block_tokens": 33, "eval_blocks": 5})
    assert small["n"] == 5 and small["details"]["heldout"]["block_tokens"] == 33
    with pytest.raises(ValueError, match="unknown option"):
        run("wikipedia-mlm", tiny_mlm, corpus, options={"heldout": 2})
    with pytest.raises(ValueError, match="exceed the model's 128 positions"):
        run("wikipedia-mlm", tiny_mlm, corpus, options={"block_tokens": 300})
    with pytest.raises(ValueError, match="takes no options"):
        runner.run("sst2", str(tiny_mlm), options={"eval_blocks": 3})
    with pytest.raises(ValueError, match="evaluation splits are heldout, enwiki2018; got 'train'"):
        run("wikipedia-mlm", tiny_mlm, corpus, split="train")
    few = tmp_path / "few.jsonl"
    few.write_text('{"text": "one short document"}\n{"text": "two"}\n', encoding="utf-8")
    with pytest.raises(ValueError, match="needs at least 7"):
        run("wikipedia-mlm", tiny_mlm, few)
