"""The benchmark table, the original-format loaders, and the runner on tiny checkpoints."""

from __future__ import annotations

import json

import numpy as np
import pytest

from bertvariants import serving
from evaluation import loaders, runner, tasks

from .conftest import unpack
from evaluation.metrics import glue
from tests.conftest import needs_shared_data


# ------------------------------------------------------------------ the table
def test_benchmark_table_is_consistent():
    keys = [b.key for b in tasks.BENCHMARKS]
    assert len(keys) == len(set(keys))
    for b in tasks.BENCHMARKS:
        assert b.primary in b.metrics, b.key
        assert b.format in tasks.FORMATS, b.key
        assert b.default_split in b.files, b.key
        assert b.format in runner.EVALUATORS
        if b.format in ("single", "pair"):
            assert set(b.metrics) <= set(glue.FUNCTIONS) and len(b.labels) == 2
    assert set(tasks.GLUE_TASKS) == {"sst2", "mrpc", "stsb", "rte", "cola", "qnli"}
    assert tasks.benchmark("STS-B").key == "stsb"
    with pytest.raises(ValueError, match="unknown task 'mnli2'"):
        tasks.benchmark("mnli2")


def test_missing_default_data_says_pass_data(tmp_path, monkeypatch):
    monkeypatch.setenv("BERTVARIANTS_DATA", str(tmp_path))
    with pytest.raises(ValueError, match="pass --data PATH"):
        tasks.load(tasks.benchmark("stsb"))
    with pytest.raises(ValueError, match="data file not found"):
        tasks.load(tasks.benchmark("stsb"), data=tmp_path / "nope.csv")


# ------------------------------------------------------------------ loaders on crafted originals
def test_sst2_tsv_keeps_bare_quotes(tmp_path):
    p = tmp_path / "dev.tsv"
    p.write_text('sentence\tlabel\nit \'s a "charming" film . \t1\nbleak \t0\n', encoding="utf-8")
    ds = loaders.load_sst2(p)
    assert [e.label for e in ds.examples] == [1, 0]
    assert ds.examples[0].text == 'it \'s a "charming" film . '


def test_stsb_csv_seven_plus_columns_quoting_off(tmp_path):
    p = tmp_path / "sts-dev.csv"
    p.write_text('main-captions\tMSRvid\t2012test\t0000\t5.000\tA "man" is here.\tA man is here.\n'
                 'main-news\theadlines\t2015\t0001\t1.5\tOne.\tTwo.\tsource-a\tsource-b\n', encoding="utf-8")
    ds = loaders.load_stsb(p)
    assert [(e.text, e.text_pair, e.label) for e in ds.examples] == [
        ('A "man" is here.', "A man is here.", 5.0), ("One.", "Two.", 1.5)]
    p.write_text("a\tb\tc\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"sts-dev.csv:1: expected ≥ 7"):
        loaders.load_stsb(p)


def test_mrpc_txt_with_bom(tmp_path):
    p = tmp_path / "msr_paraphrase_test.txt"
    p.write_bytes("\ufeffQuality\t#1 ID\t#2 ID\t#1 String\t#2 String\n1\t11\t12\tA cat.\tThe cat.\n0\t13\t14\tX\tY\n"
                  .encode("utf-8"))
    ds = loaders.load_mrpc(p)
    assert [(e.id, e.label) for e in ds.examples] == [("11-12", 1), ("13-14", 0)]


def test_rte_datasets_export_and_glue_string_labels(tmp_path):
    p = tmp_path / "dev.tsv"
    p.write_text("sentence1\tsentence2\tlabel\tidx\nA.\tB.\t1\t0\nC.\tD.\t0\t1\n", encoding="utf-8")
    assert [e.label for e in loaders.load_rte(p).examples] == [1, 0]
    p.write_text("index\tsentence1\tsentence2\tlabel\n0\tA.\tB.\tnot_entailment\n1\tC.\tD.\tentailment\n")
    assert [e.label for e in loaders.load_rte(p).examples] == [1, 0]
    p.write_text("index\tsentence1\tsentence2\tlabel\n0\tA.\tB.\tmaybe\n")
    with pytest.raises(ValueError, match="unknown label 'maybe'"):
        loaders.load_rte(p)


def test_cola_headerless_original(tmp_path):
    p = tmp_path / "dev.tsv"
    p.write_text("gj04\t1\t\tThe sailors rode the breeze.\ngj04\t0\t*\tThe more we study.\n", encoding="utf-8")
    assert [(e.text, e.label) for e in loaders.load_cola(p).examples] == [
        ("The sailors rode the breeze.", 1), ("The more we study.", 0)]


def test_squad_json_and_limit_filters_raw(tmp_path):
    data = {"version": "v2.0", "data": [{"title": "t", "paragraphs": [{"context": "Paris is in France.", "qas": [
        {"id": "q1", "question": "Where?", "answers": [{"text": "France", "answer_start": 12}]},
        {"id": "q2", "question": "Who?", "answers": [], "is_impossible": True}]}]}]}
    p = tmp_path / "dev.json"
    p.write_text(json.dumps(data))
    ds = loaders.load_squad(p)
    assert [(e.id, e.label) for e in ds.examples] == [("q1", ["France"]), ("q2", [])]
    one = ds.limit(1)
    assert [q["id"] for q in one.raw[0]["paragraphs"][0]["qas"]] == ["q1"]
    p.write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        loaders.load_squad(p)


def test_summarization_jsonl_field_detection(tmp_path):
    p = tmp_path / "x.jsonl"
    p.write_text(json.dumps({"id": "1", "document": "Doc text.", "summary": "Sum."}) + "\n")
    ds = loaders.load_summarization(p, task="xsum")
    assert (ds.examples[0].text, ds.examples[0].label, ds.meta["doc_field"]) == ("Doc text.", "Sum.", "document")
    p.write_text(json.dumps({"body": "x"}) + "\n")
    with pytest.raises(ValueError, match="no document field"):
        loaders.load_summarization(p)


def test_mtsamples_fixed_stratified_split(tmp_path):
    p = tmp_path / "mt.csv"
    rows = [",description,medical_specialty,sample_name,transcription,keywords"]
    for i in range(20):
        rows.append(f'{i},d, {"Surgery" if i % 2 else "Urology"},s,"Note {i}, with a comma.",k')
    rows.append('20,d, Surgery,s,"a note cut inside its quotes')  # like the public subset's last row
    p.write_text("\n".join(rows) + "\n")
    train, test = loaders.load_mtsamples(p, split="train"), loaders.load_mtsamples(p, split="test")
    assert {e.id for e in train.examples}.isdisjoint({e.id for e in test.examples})
    assert len(train) + len(test) == 21 == len(loaders.load_mtsamples(p, split="all"))
    assert [e.id for e in loaders.load_mtsamples(p, split="test").examples] == [e.id for e in test.examples]
    assert abs(sum(e.label for e in test.examples) - len(test) / 2) <= 1  # stratified


def test_biosses_style_pairs(tmp_path):
    p = tmp_path / "biosses.tsv"
    p.write_text("sentence1\tsentence2\tAnnotator A\tAnnotator B\nS1.\tS2.\t4\t3\nS3.\tS4.\t0\t1\n")
    ds = loaders.load_sentence_similarity(p)
    assert [e.label for e in ds.examples] == [3.5, 0.5]  # mean of the annotators, as in BIOSSES
    p.write_text("a\tb\n1\t2\n")
    with pytest.raises(ValueError, match="sentence1 and sentence2"):
        loaders.load_sentence_similarity(p)


@needs_shared_data
def test_shared_data_row_counts(shared_data, monkeypatch):
    monkeypatch.setenv("BERTVARIANTS_DATA", str(shared_data))
    counts = {("sst2", "dev"): 872, ("stsb", "dev"): 1500, ("mrpc", "test"): 1725, ("rte", "dev"): 277,
              ("squad_v2", "dev"): 14, ("cnndm", "test"): 250, ("xsum", "test"): 251}
    for (key, split), n in counts.items():
        assert len(tasks.load(tasks.benchmark(key), split)) == n, key
    assert len(tasks.load(tasks.benchmark("mtsamples"), "all")) > 300


# ------------------------------------------------------------------ runner on tiny checkpoints
def _sts_file(tmp_path):
    p = tmp_path / "sts.csv"
    pairs = [("A man plays guitar.", "A man plays a guitar.", 4.8), ("A dog runs.", "A cat sleeps.", 0.6),
             ("Kids swim.", "Children are swimming.", 4.2), ("Stocks fell.", "A bird sings.", 0.0),
             ("She cooks.", "A woman is cooking.", 4.5), ("It rains.", "The sun shines.", 1.0),
             ("Men talk.", "Two men are talking.", 3.9)]
    p.write_text("".join(f"g\tf\t2012\t{i:04d}\t{s}\t{a}\t{b}\n" for i, (a, b, s) in enumerate(pairs)))
    return p


def test_run_sts_embedding_model_is_deterministic(tmp_path, tiny_checkpoint):
    model = str(tiny_checkpoint("feature-extraction"))
    data = _sts_file(tmp_path)
    a, recs = unpack(runner.run("stsb", model, data=str(data), progress=False))
    b, _ = unpack(runner.run("stsb", model, data=str(data), progress=False))
    assert a["metrics"] == b["metrics"] and a["ci95"] == b["ci95"]
    assert a["n"] == 7 and a["primary_metric"] == "spearman" and -100 <= a["metrics"]["spearman"] <= 100
    assert a["model_revision"].startswith("sha256:") and len(a["data_sha256"]) == 64
    assert len(recs) == 7 and all(0 <= r["error"] <= 1 for r in recs)


def test_run_classifier_head_and_probe(tmp_path, tiny_checkpoint):
    p = tmp_path / "sst.tsv"
    lines = ["sentence\tlabel"] + [f"{'great fun' if i % 2 else 'dull mess'} number {i}\t{i % 2}" for i in range(24)]
    p.write_text("\n".join(lines) + "\n")
    head, recs = unpack(runner.run("sst2", str(tiny_checkpoint("sequence-classification")), data=str(p), progress=False))
    assert head["details"]["method"] == "fine-tuned classification head" and len(recs) == 24
    probe, _ = unpack(runner.run("sst2", str(tiny_checkpoint("feature-extraction")), data=str(p), train_data=str(p),
                          probe_train_size=16, progress=False))
    assert probe["details"]["probe_train_size"] == 16
    assert probe["metrics"]["accuracy"] >= 75  # two word patterns: separable even by a random tiny encoder
    assert probe["ci95"]["low"] <= probe["metrics"]["accuracy"] <= probe["ci95"]["high"]


def test_run_pair_probe_by_cross_validation(tmp_path, tiny_checkpoint):
    p = tmp_path / "qnli.tsv"  # QNLI has no train split here: its probe is cross-validated on dev
    rows = ["question\tsentence\tlabel\tidx"] + [f"Text number {i}?\tHypothesis {i % 3}.\t{i % 2}\t{i}" for i in range(30)]
    p.write_text("\n".join(rows) + "\n")
    res, _ = unpack(runner.run("qnli", str(tiny_checkpoint("feature-extraction")), data=str(p), progress=False))
    assert "10-fold cross-validation" in res["details"]["method"]
    assert res["details"]["features"] == "[u, v, |u-v|, u*v]"


def test_run_squad_with_qa_head(tmp_path, tiny_checkpoint):
    data = {"version": "v2.0", "data": [{"title": "t", "paragraphs": [
        {"context": "The Normans gave their name to Normandy, a region in France.", "qas": [
            {"id": "q1", "question": "Where is Normandy?", "answers": [{"text": "France", "answer_start": 54}]},
            {"id": "q2", "question": "Who ate the moon?", "answers": []}]}]}]}
    p = tmp_path / "dev.json"
    p.write_text(json.dumps(data))
    res, recs = unpack(runner.run("squad_v2", str(tiny_checkpoint("question-answering")), data=str(p), progress=False))
    assert set(res["metrics"]) >= {"exact_match", "f1", "HasAns_f1", "NoAns_f1"}
    assert {r["id"] for r in recs} == {"q1", "q2"}
    with pytest.raises(ValueError, match="needs a question-answering model"):
        runner.run("squad_v2", str(tiny_checkpoint("feature-extraction")), data=str(p), progress=False)


def test_run_lead3_and_long_notes(tmp_path, tiny_checkpoint):
    p = tmp_path / "cnn.jsonl"
    p.write_text("".join(json.dumps({"id": str(i), "article": "First fact here. Second fact. Third one. Fourth.",
                                     "highlights": "First fact here . Second fact ."}) + "\n" for i in range(3)))
    res, recs = unpack(runner.run("cnndm", "lead3", data=str(p), progress=False))
    assert recs[0]["prediction"] == "First fact here.\nSecond fact.\nThird one."
    assert res["metrics"]["rouge2"] > 0 and res["params"] == 0
    mt = tmp_path / "mt.csv"
    rows = [",description,medical_specialty,sample_name,transcription,keywords"]
    for i in range(16):
        word = "incision suture scalpel" if i % 2 else "bladder kidney prostate"
        rows.append(f'{i},d, {"Surgery" if i % 2 else "Urology"},s,"{(word + " ") * (20 + 7 * i)}",k')
    mt.write_text("\n".join(rows) + "\n")
    clf, recs = unpack(runner.run("mtsamples", str(tiny_checkpoint("sequence-classification")), data=str(mt), progress=False))
    assert set(clf["metrics"]) == {"auroc", "auprc", "rp80"} and clf["details"]["chunk_tokens"] == 128
    assert max(r["chunks"] for r in recs) >= 2  # long notes really are chunked
    probe, _ = unpack(runner.run("mtsamples", str(tiny_checkpoint("feature-extraction")), data=str(mt), progress=False))
    assert probe["metrics"]["auroc"] == pytest.approx(100.0)  # disjoint vocabularies
    assert np.isfinite(probe["ci95"]["low"])


def test_unknown_and_offline_hub_models_are_clear_errors():
    with pytest.raises(ValueError, match="Hub is unreachable"):
        serving.load("someone/some-model")
    with pytest.raises(ValueError, match="unknown model 'nonsense'"):
        serving.load("nonsense")


def test_probe_without_train_file_names_train_data(tmp_path, tiny_checkpoint, monkeypatch):
    monkeypatch.setenv("BERTVARIANTS_DATA", str(tmp_path))
    p = tmp_path / "dev.tsv"
    p.write_text("sentence\tlabel\ngood\t1\nbad\t0\n")
    with pytest.raises(ValueError, match="--train-data PATH"):
        runner.run("sst2", str(tiny_checkpoint("feature-extraction")), data=str(p), progress=False)
