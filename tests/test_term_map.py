"""The clinical benchmarks built on the larger MTSamples and term data: the same-category nearest-neighbour rate
of a term map (ClinicalBERT Fig. 2 as a number), the 3,700-note → 322-note task, and its probe's training file."""

from __future__ import annotations

import numpy as np
import pytest

from bertvariants import clinical_bert as cb
from evaluation import loaders, runner, tasks

from .conftest import unpack


def test_nearest_neighbour_rate_and_its_chance_level():
    cats = ["a"] * 10 + ["b"] * 10
    clusters = np.r_[np.random.default_rng(0).normal(0, 0.1, (10, 2)), np.random.default_rng(1).normal(5, 0.1, (10, 2))]
    assert cb.same_category_neighbours(clusters, cats).tolist() == [1.0] * 20
    line = np.arange(20, dtype=float)[:, None]  # a b a b …: every nearest neighbour is of the other category
    alternating = ["a" if i % 2 == 0 else "b" for i in range(20)]
    assert cb.same_category_neighbours(line, alternating).sum() == 0
    # Σ n_c(n_c − 1) / (N(N − 1)) = 2·10·9 / (20·19) = ½ − 1/(2·19)
    assert cb.chance_neighbour_rate(cats) == pytest.approx(0.5 - 1 / 38)
    assert cb.chance_neighbour_rate(["a"] * 3 + ["b"]) == pytest.approx(6 / 12)
    # cosine ignores length: (1, 0) and (10, 0.1) are neighbours although far apart in euclidean distance
    pts = np.array([[1.0, 0.0], [10.0, 0.1], [0.0, 1.0], [0.1, 10.0]])
    assert cb.same_category_neighbours(pts, ["x", "x", "y", "y"], metric="cosine").tolist() == [1, 1, 1, 1]
    with pytest.raises(ValueError, match="one category per point"):
        cb.same_category_neighbours(pts, ["x"])


def test_terms_are_sampled_evenly_per_category(tmp_path):
    p = tmp_path / "terms.tsv"
    rows = ["term\tcategory\tcount\tsources"] + [f"disease {i}\tDisease\t1\ts" for i in range(9)] + \
           [f"drug {i}\tChemical\t1\ts" for i in range(3)] + ["Drug 0\tChemical\t1\ts"]  # a case-duplicate
    p.write_text("\n".join(rows) + "\n")
    ds = loaders.load_terms(p, per_category=4)
    counts = {c: sum(e.label == c for e in ds.examples) for c in ("Disease", "Chemical")}
    assert counts == {"Disease": 4, "Chemical": 3}  # 4 of 9; all 3 distinct of the smaller category
    assert [e.id for e in loaders.load_terms(p, per_category=4).examples] == [e.id for e in ds.examples]  # seeded
    assert ds.meta["categories"] == {"Chemical": 3, "Disease": 9}
    p.write_text("term\tcategory\nx\tDisease\n")
    with pytest.raises(ValueError, match="at least 2 categories"):
        loaders.load_terms(p)


def test_term_map_benchmark_runs_and_bootstraps(tmp_path, tiny_checkpoint):
    p = tmp_path / "terms.tsv"
    words = ["kidney", "bladder", "prostate", "urine", "renal", "aspirin", "insulin", "morphine", "heparin", "iron"]
    p.write_text("term\tcategory\n" + "".join(f"{w}\t{'Organ' if i < 5 else 'Drug'}\n" for i, w in enumerate(words)))
    res, recs = unpack(runner.run("bioterms", str(tiny_checkpoint("feature-extraction")), data=str(p), progress=False))
    m = res["metrics"]
    assert set(m) == {"nn_rate_tsne", "nn_rate_embedding", "chance_rate"}
    assert m["chance_rate"] == pytest.approx(100 * (2 * 5 * 4) / (10 * 9), abs=1e-3)
    assert m["nn_rate_tsne"] == pytest.approx(100 * np.mean([r["prediction"] for r in recs]), abs=1e-3)
    assert res["ci95"]["low"] <= m["nn_rate_tsne"] <= res["ci95"]["high"]
    assert len(recs) == 10 and {"x", "y", "embedding_match"} <= set(recs[0])
    # a classifier's encoder is mean-pooled the same way
    clf, _ = unpack(runner.run("bioterms", str(tiny_checkpoint("sequence-classification")), data=str(p), progress=False))
    assert 0 <= clf["metrics"]["nn_rate_embedding"] <= 100


def write_notes(path, start, n, words):
    rows = [",description,medical_specialty,sample_name,transcription,keywords"]
    for i in range(start, start + n):
        surgery = i % 2
        rows.append(f'{i},d, {"Surgery" if surgery else "Urology"},s,"{(words[surgery] + " ") * (20 + 3 * i)}",k')
    path.write_text("\n".join(rows) + "\n")


def test_subset_task_probe_learns_from_the_training_notes_only(tmp_path, tiny_checkpoint, monkeypatch):
    """mtsamples-subset: the probe trains on mtsamples_train.csv (never on the test notes) and scores every note
    of the subset; with the training notes' words swapped, the probe must score the test notes backwards."""
    (tmp_path / "clinical").mkdir()
    monkeypatch.setenv("BERTVARIANTS_DATA", str(tmp_path))
    test = tmp_path / "clinical" / "mtsamples_subset.csv"
    write_notes(test, 0, 12, ["bladder kidney prostate", "incision suture scalpel"])
    bench = tasks.benchmark("mtsamples-subset")
    assert len(tasks.load(bench, "test")) == 12  # every note of the subset
    model = str(tiny_checkpoint("feature-extraction"))
    write_notes(tmp_path / "clinical" / "mtsamples_train.csv", 100, 16, ["bladder kidney prostate", "incision suture scalpel"])
    same, _ = unpack(runner.run("mtsamples-subset", model, progress=False))
    write_notes(tmp_path / "clinical" / "mtsamples_train.csv", 100, 16, ["incision suture scalpel", "bladder kidney prostate"])
    swapped, _ = unpack(runner.run("mtsamples-subset", model, progress=False))
    assert same["n"] == 12 and same["details"]["probe_train_notes"] == 16
    assert same["metrics"]["auroc"] == pytest.approx(100.0) and swapped["metrics"]["auroc"] == pytest.approx(0.0)
