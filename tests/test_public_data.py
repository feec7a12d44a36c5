"""A recipe's data on a fresh clone: offline it says which public dataset to get and in what format; online it
fetches that dataset with the `datasets` library (faked here: no network in tests) into the layout it reads."""

from __future__ import annotations

import gzip
import json
import sys
import types

import pytest
import torch

from bertvariants.train import public_data
from bertvariants.train.config import TrainConfig
from bertvariants.train.data import data_file
from evaluation.loaders import load_squad, load_sst2, load_stsb


@pytest.fixture
def no_shared(monkeypatch, tmp_path):
    monkeypatch.setenv("BERTVARIANTS_DATA", str(tmp_path / "absent"))
    monkeypatch.setenv(public_data.CACHE_ENV, str(tmp_path / "cache"))
    return tmp_path


def test_offline_error_names_the_dataset_its_format_and_where_to_get_it(no_shared):
    with pytest.raises(ValueError) as err:
        data_file(TrainConfig(), "glue/sst2/train.tsv", what="SST-2 train")
    msg = str(err.value)
    assert "GLUE SST-2 train" in msg and "sentence<TAB>label" in msg and "nyu-mll/glue" in msg and "--data" in msg


def test_every_file_a_recipe_reads_is_described():
    import ast
    from pathlib import Path

    import bertvariants.train as train

    relatives = set()
    for path in Path(train.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "data_file" and len(node.args) > 1:
                arg = node.args[1]
                if isinstance(arg, ast.Constant):
                    relatives.add(arg.value)
    from bertvariants.train.data import CORPORA, WIKIPEDIA
    from bertvariants.train.squad import DEV, TRAIN_PARTS

    relatives |= {WIKIPEDIA, DEV, *TRAIN_PARTS, *(path for path, _ in CORPORA.values())}
    missing = [r for r in relatives if public_data.describe(r) is None]
    assert relatives and not missing, missing


def _fake_datasets(monkeypatch, tables):
    calls = []

    def load_dataset(name, config=None, *, split, streaming=False):
        calls.append((name, config, split, streaming))
        rows = tables[(name, config, split)]

        class Rows(list):
            def take(self, n):
                return Rows(self[:n])

        return Rows(rows)

    monkeypatch.setitem(sys.modules, "datasets", types.SimpleNamespace(load_dataset=load_dataset))
    monkeypatch.setattr(public_data, "hub_online", lambda: True)
    return calls


def test_online_fetch_writes_files_the_strict_readers_accept(no_shared, monkeypatch):
    squad_rows = [
        {"id": "q1", "title": "Paris", "context": "Paris is the capital of France.", "question": "Capital?",
         "answers": {"text": ["Paris"], "answer_start": [0]}},
        {"id": "q2", "title": "Paris", "context": "Paris is the capital of France.", "question": "Of what?",
         "answers": {"text": ["France"], "answer_start": [24]}},
    ]
    calls = _fake_datasets(monkeypatch, {
        ("nyu-mll/glue", "sst2", "train"): [{"sentence": "a fine film ", "label": 1}, {"sentence": "dull", "label": 0}],
        ("nyu-mll/glue", "stsb", "validation"): [{"sentence1": "A b.", "sentence2": "A\tc.", "label": 3.8}],
        ("rajpurkar/squad", None, "train"): squad_rows,
    })
    cfg = TrainConfig()
    sst = load_sst2(data_file(cfg, "glue/sst2/train.tsv", what="SST-2 train"), split="train")
    assert [(e.text, e.label) for e in sst.examples] == [("a fine film", 1), ("dull", 0)]
    sts = load_stsb(data_file(cfg, "glue/stsb/sts-dev.csv", what="STS-B dev"))
    assert sts.examples[0].label == pytest.approx(3.8) and sts.examples[0].text_pair == "A c."
    part0 = data_file(cfg, "squad/train-v1.0/squad_v1.0_train.part00.json.gz", what="SQuAD")
    part1 = data_file(cfg, "squad/train-v1.0/squad_v1.0_train.part01.json.gz", what="SQuAD")
    data = json.loads(gzip.decompress(part0.read_bytes()))
    assert len(data["data"]) == 1 and len(data["data"][0]["paragraphs"][0]["qas"]) == 2
    assert json.loads(gzip.decompress(part1.read_bytes()))["data"] == []
    squad = load_squad(part0, task="squad_v1", split="train")
    assert len(squad.examples) == 2
    n = len(calls)
    data_file(cfg, "glue/sst2/train.tsv", what="SST-2 train")  # cached: fetched once
    assert len(calls) == n


def test_a_dataset_without_a_hub_source_is_not_fetched(no_shared, monkeypatch):
    _fake_datasets(monkeypatch, {})
    with pytest.raises(ValueError, match="kaggle.com"):
        data_file(TrainConfig(), "clinical/mtsamples_subset.csv", what="MTSamples CSV")


def test_corpus_blocks_are_tokenized_once_and_read_back_identical(tmp_path, monkeypatch, tiny_tokenizer_dir):
    from transformers import AutoTokenizer

    from bertvariants.corpus import corpus_blocks
    from bertvariants.train import data

    tok = AutoTokenizer.from_pretrained(tiny_tokenizer_dir)
    docs = [f"Document {i} says that the capital of France is Paris, and more words follow. " * 6 for i in range(6)]
    corpus = tmp_path / "c.jsonl"
    corpus.write_text("".join(json.dumps({"text": d}) + "\n" for d in docs))
    monkeypatch.setenv(public_data.CACHE_ENV, str(tmp_path / "cache" / "data"))
    train, held = data.cached_blocks(corpus, tok, block=32, heldout_docs=1)
    ref_train, ref_held = corpus_blocks(tok, docs, block=32, heldout_docs=1)
    assert torch.equal(train, ref_train) and torch.equal(held, ref_held) and train.dtype == torch.long
    one_by_one = [i for d in docs[:-1] for i in tok(d, add_special_tokens=False)["input_ids"]]
    assert train[:, 1:-1].flatten().tolist() == one_by_one[: train.numel() - 2 * len(train)]

    def no_tokenizing(*a, **k):
        raise AssertionError("tokenized again")

    monkeypatch.setattr(data, "corpus_blocks", no_tokenizing)
    again = data.cached_blocks(corpus, tok, block=32, heldout_docs=1)
    assert torch.equal(again[0], train) and torch.equal(again[1], held)
    corpus.write_text(corpus.read_text() + json.dumps({"text": "one more document here"}) + "\n")
    with pytest.raises(AssertionError, match="tokenized again"):  # a changed corpus is a new key
        data.cached_blocks(corpus, tok, block=32, heldout_docs=1)
