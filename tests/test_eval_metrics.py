"""Metrics of the evaluation harness: reference values, official SQuAD semantics, ROUGE-Lsum, bootstrap."""

from __future__ import annotations

import doctest
import json
import math

import numpy as np
import pytest
from tests.conftest import needs_shared_data

import evaluation.metrics as M
from evaluation.metrics import clinical, glue, rouge, squad


@pytest.mark.parametrize("module", [M, glue, squad, rouge, clinical])
def test_docstring_examples_run(module):
    assert doctest.testmod(module).failed == 0


# ------------------------------------------------------------------ GLUE
def test_glue_reference_values():
    pred, gold = [1, 0, 1, 1, 0, 1], [1, 0, 0, 1, 1, 1]
    assert glue.accuracy(pred, gold) == pytest.approx(100 * 4 / 6)
    # tp = 3, fp = 1, fn = 1 -> F1 = 2·3 / (2·3 + 1 + 1) = 0.75
    assert glue.f1(pred, gold) == pytest.approx(75.0)
    # MCC = (tp·tn − fp·fn) / sqrt((tp+fp)(tp+fn)(tn+fp)(tn+fn)) = (3·1 − 1·1) / sqrt(4·4·2·2) = 0.25
    assert glue.mcc(pred, gold) == pytest.approx(25.0)
    assert glue.pearson([1, 2, 3], [2, 4, 6.5]) == pytest.approx(100 * np.corrcoef([1, 2, 3], [2, 4, 6.5])[0, 1])
    assert glue.spearman([0.1, 0.9, 0.5], [1, 3, 2]) == pytest.approx(100.0)
    assert glue.spearman([0.1, 0.9, 0.5], [3, 1, 2]) == pytest.approx(-100.0)
    assert math.isnan(glue.pearson([1, 1, 1], [1, 2, 3]))


def test_correlations_equal_scipy_with_ties():
    from scipy.stats import pearsonr, spearmanr

    rng = np.random.default_rng(0)
    a, b = rng.integers(0, 5, 97).astype(float), rng.random(97)
    assert glue.spearman(a, b) == pytest.approx(100 * spearmanr(a, b)[0], abs=1e-9)
    assert glue.pearson(a, b) == pytest.approx(100 * pearsonr(a, b)[0], abs=1e-9)


def test_glue_rejects_mismatched_lengths():
    with pytest.raises(ValueError, match="2 predictions but 3 references"):
        glue.accuracy([1, 0], [1, 0, 1])
    with pytest.raises(ValueError, match="unknown GLUE metric"):
        glue.compute("bleu", [1], [1])


# ------------------------------------------------------------------ SQuAD (official semantics)
def _dataset(qas):
    return [{"title": "t", "paragraphs": [{"context": "ctx", "qas": qas}]}]


def _qa(qid, *answers):
    return {"id": qid, "question": "q?", "answers": [{"text": a, "answer_start": 0} for a in answers]}


def test_normalize_answer_official_order():
    assert squad.normalize_answer("The Eiffel Tower.") == "eiffel tower"
    assert squad.normalize_answer("  An   apple, a DAY!") == "apple day"
    assert squad.normalize_answer("theatre") == "theatre"  # articles only as whole words
    assert squad.normalize_answer("Normandy's") == "normandys"  # punctuation removed before articles


def test_squad_v1_articles_punctuation_and_max_over_golds():
    data = _dataset([_qa("a", "the Eiffel Tower"), _qa("b", "Paris", "in Paris, France"), _qa("c", "1066")])
    score = squad.squad_v1(data, {"a": "Eiffel Tower!", "b": "Paris France", "c": ""})
    assert score.exact == {"a": 1.0, "b": 0.0, "c": 0.0}
    # b: vs "Paris" P=1/2 R=1 -> 2/3; vs "in Paris, France" P=1 R=2/3 -> 0.8; max = 0.8
    assert score.f1["b"] == pytest.approx(0.8)
    assert score.f1["c"] == 0.0  # an empty prediction scores 0 in v1.1
    assert score.metrics["exact_match"] == pytest.approx(100 / 3)
    assert score.metrics["f1"] == pytest.approx(100 * (1 + 0.8 + 0) / 3)


def test_squad_v2_no_answer_handling_and_breakdown():
    data = _dataset([_qa("has", "Normandy"), _qa("none1"), _qa("none2"), _qa("has2", "10th century")])
    preds = {"has": "normandy", "none1": "", "none2": "France", "has2": "the 10th"}
    score = squad.squad_v2(data, preds)
    assert score.exact["none1"] == 1.0 and score.f1["none1"] == 1.0  # empty prediction on a no-answer question
    assert score.exact["none2"] == 0.0 and score.f1["none2"] == 0.0
    assert score.f1["has2"] == pytest.approx(2 * 1 * 0.5 / 1.5)  # "10th" vs "10th century"
    m = score.metrics
    assert m["HasAns_exact"] == pytest.approx(50.0) and m["NoAns_exact"] == pytest.approx(50.0)
    assert m["exact_match"] == pytest.approx(50.0)
    assert score.counts == {"total": 4, "HasAns_total": 2, "NoAns_total": 2}


def test_squad_v2_na_prob_threshold_and_best_threshold():
    data = _dataset([_qa("has", "Normandy"), _qa("none")])
    preds = {"has": "Normandy", "none": "France"}
    na = {"has": 0.2, "none": 0.9}
    plain = squad.squad_v2(data, preds)
    assert plain.metrics["exact_match"] == pytest.approx(50.0)  # default threshold 1.0: never abstain
    thresholded = squad.squad_v2(data, preds, na_probs=na, na_prob_thresh=0.5)
    assert thresholded.exact == {"has": 1.0, "none": 1.0}  # "none" is above 0.5 -> predicted no-answer
    assert thresholded.metrics["best_exact"] == pytest.approx(100.0)
    assert thresholded.metrics["best_exact_thresh"] == pytest.approx(0.2)


def test_squad_missing_predictions_are_an_error_unless_allowed():
    data = _dataset([_qa("a", "x"), _qa("b", "y")])
    with pytest.raises(ValueError, match="1 of 2 question ids have no prediction"):
        squad.squad_v1(data, {"a": "x"})
    assert squad.squad_v1(data, {"a": "x"}, allow_missing=True).metrics["exact_match"] == pytest.approx(50.0)
    assert squad.squad_v2(data, {"a": "x"}, allow_missing=True).metrics["exact_match"] == pytest.approx(100.0)


# ------------------------------------------------------------------ ROUGE
def test_split_sentences_tokenized_and_plain_text():
    assert rouge.split_sentences("Locke was confirmed . The club went unbeaten . He is 39 .") == [
        "Locke was confirmed .", "The club went unbeaten .", "He is 39 ."]
    assert rouge.split_sentences("He paid $3.5 million. U.S. officials agreed.' Then 'nothing' happened") == [
        "He paid $3.5 million.", "U.S. officials agreed.'", "Then 'nothing' happened"]
    assert rouge.split_sentences("by the community.Dr Venter agreed. The U.S.Treasury paid 3.5bn.") == [
        "by the community.", "Dr Venter agreed.", "The U.S.Treasury paid 3.5bn."]  # FRANK XSum glues sentences
    assert rouge.lead("One. Two. Three. Four.", 3) == "One.\nTwo.\nThree."


def test_rouge_lsum_needs_the_sentence_split():
    pred = ["The cat sat on the mat . A dog barked loudly ."]
    ref = ["A dog barked loudly . The cat sat on the mat ."]
    unsplit = rouge.rouge(pred, ref, split=False).metrics
    split = rouge.rouge(pred, ref).metrics
    assert unsplit["rougeLsum"] == pytest.approx(unsplit["rougeL"])  # the pitfall: Lsum silently equals L
    assert split["rougeLsum"] == pytest.approx(100.0)  # same sentences, other order: summary-level LCS is perfect
    assert split["rougeL"] < 70
    with pytest.raises(ValueError, match="2 predictions but 1 references"):
        rouge.rouge(["a", "b"], ["a"])


@needs_shared_data
def test_rouge_bart_large_cnn_reference_values(shared_data):
    rows = [json.loads(line) for line in (shared_data / "summarization/cnndm_frank/test250.jsonl").open()]
    res = rouge.rouge([r["bart_large_cnn_output"] for r in rows], [r["highlights"] for r in rows])
    got = [res.metrics[k] for k in ("rouge1", "rouge2", "rougeL", "rougeLsum")]
    assert got == pytest.approx([45.31, 22.53, 32.69, 42.32], abs=0.02)  # PROVENANCE.md


# ------------------------------------------------------------------ clinical
def test_clinical_metrics_reference_values():
    y = [1, 1, 0, 1, 0, 0]
    s = [0.9, 0.8, 0.7, 0.6, 0.2, 0.1]
    # pairs (pos, neg): 9, of which the positive ranks higher in 8 -> AUROC 8/9
    assert clinical.auroc(y, s) == pytest.approx(100 * 8 / 9)
    # recall at ≥ 80% precision: threshold 0.8 gives 2/2 (recall 2/3); 0.6 gives 3/4 (< 80%)
    assert clinical.rp80(y, s) == pytest.approx(100 * 2 / 3)
    assert 0 < clinical.auprc(y, s) <= 100
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(1)
    yy, ss = rng.integers(0, 2, 113), rng.integers(0, 7, 113) / 7  # many ties
    assert clinical.auroc(yy, ss) == pytest.approx(100 * roc_auc_score(yy, ss), abs=1e-9)
    assert clinical.rp80([1, 0], [0.1, 0.9]) == 0.0  # precision 1/2 or 0/1: never 80%


# ------------------------------------------------------------------ bootstrap
def test_bootstrap_is_seeded_and_brackets_the_estimate():
    rng = np.random.default_rng(3)
    correct = (rng.random(301) < 0.7).astype(float)
    metric = lambda idx: 100 * correct[idx].mean()  # noqa: E731
    a = M.bootstrap_ci(metric, len(correct), seed=5)
    b = M.bootstrap_ci(metric, len(correct), seed=5)
    c = M.bootstrap_ci(metric, len(correct), seed=6)
    assert (a.low, a.high) == (b.low, b.high)
    assert (a.low, a.high) != (c.low, c.high)
    assert a.low < 100 * correct.mean() < a.high
    # the binomial standard error gives the width: ±1.96·sqrt(p(1−p)/n)
    half = 1.96 * 100 * math.sqrt(0.7 * 0.3 / 301)
    assert (a.high - a.low) / 2 == pytest.approx(half, rel=0.2)
