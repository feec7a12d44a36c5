"""The variant lab: every recipe runs end-to-end on a tiny config (tiny model, tiny data, a few steps),
produces a loadable checkpoint + a valid result JSON, reproduces under a fixed seed, and its checkpoint
becomes the registry's offline default."""

from __future__ import annotations

import csv
import gzip
import json
import os
from pathlib import Path

import pytest
import torch

from bertvariants import serving
from bertvariants.serving import manifest as mf
from bertvariants.corpus import corpus_blocks, read_corpus
from bertvariants.io import atomic_write_json
from bertvariants.train import RECIPES, build_note, recipe, run_recipe
from bertvariants.train.config import TrainConfig, config_from_args
from bertvariants.train.data import Sampler, data_file

POS = ["a wonderful , moving film", "great acting and a lovely story", "funny , warm and smart", "a joy to watch",
       "brilliant and touching", "the best film of the year"]
NEG = ["a dull , lifeless mess", "boring and far too long", "the plot makes no sense", "awful acting throughout",
       "a tedious waste of time", "the worst film of the year"]
WORDS = ("the river flows north through the old city and the market opens at dawn while the bells ring . "
         "farmers bring grain , fish and wool ; traders count coins and the council meets in the hall . ").split()


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    """A tiny directory in the shared-data layout (so recipes run without ../shared/data)."""
    root = tmp_path_factory.mktemp("data")
    (root / "glue" / "sst2").mkdir(parents=True)
    for split, reps in (("train", 4), ("dev", 1)):
        rows = [f"{t}\t1" for t in POS] + [f"{t}\t0" for t in NEG]
        (root / "glue" / "sst2" / f"{split}.tsv").write_text("sentence\tlabel\n" + "\n".join(rows * reps) + "\n")
    (root / "corpus").mkdir()
    gen = torch.Generator().manual_seed(0)
    docs = [" ".join(WORDS[int(i)] for i in torch.randint(len(WORDS), (300,), generator=gen)) for _ in range(7)]
    (root / "corpus" / "enwiki_sample.jsonl").write_text(
        "\n".join(json.dumps({"id": str(i), "title": f"d{i}", "text": d}) for i, d in enumerate(docs)) + "\n")
    parts = root / "corpus" / "enwiki2018"  # the large corpus's layout: JSONL parts, gzipped or not
    parts.mkdir()
    more = [" ".join(WORDS[int(i)] for i in torch.randint(len(WORDS), (120,), generator=gen)) for _ in range(9)]
    rows = [json.dumps({"id": f"n{i}", "title": f"n{i}", "text": d}) + "\n" for i, d in enumerate(more)]
    (parts / "part00.jsonl.gz").write_bytes(gzip.compress("".join(rows[:5]).encode()))
    (parts / "part01.jsonl").write_text("".join(rows[5:]))
    return root


@pytest.fixture(scope="module")
def tiny_base(tiny_checkpoint) -> Path:
    return tiny_checkpoint("feature-extraction")


def tiny(data_dir, tiny_base, out, **kw):
    return {"data": str(data_dir), "base_model": str(tiny_base), "output": str(out), "log_every": 1, **kw}


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(autouse=True)
def results_in_tmp(tmp_path, monkeypatch):
    from bertvariants.paths import REPO_ROOT

    real = REPO_ROOT / "results"
    before = set(real.glob("*.json")) if real.is_dir() else set()
    monkeypatch.setenv("BERTVARIANTS_RESULTS_DIR", str(tmp_path / "results"))
    yield
    after = set(real.glob("*.json")) if real.is_dir() else set()
    assert after == before, f"a test wrote into the repository's results/: {sorted(p.name for p in after - before)}"
    return tmp_path / "results"


def check_result(report, task: str):
    """result.json is an evaluation record the Leaderboard loads, with the training provenance attached."""
    from evaluation import results

    rec = json.loads(report.result_path.read_text())
    assert rec["task"] == task and results.read_result(report.result_path) is not None
    runs = results.load_runs(os.environ["BERTVARIANTS_RESULTS_DIR"])
    assert task in set(runs["task"])
    assert rec["primary_metric"] in rec["metrics"]
    assert rec["training"]["steps"] == report.fit.steps
    assert all(isinstance(v, float) for v in rec["metrics"].values())
    rows = list(csv.DictReader(open(report.output / "loss_curve.csv")))
    assert rows and {"step", "loss", "lr", "seconds"} <= set(rows[0])
    card = (report.output / "README.md").read_text()
    assert "seed" in card and "steps" in card and rec["primary_metric"] in card
    if rec.get("ci95"):  # the harness headline: score with its interval and the evaluation data's sha256
        assert f"**{rec['score']:.2f}** (95% CI {rec['ci95']['low']:.2f}–{rec['ci95']['high']:.2f}" in card
    if rec.get("data_sha256"):
        assert rec["data_sha256"] in card
    return rec


# ---------------------------------------------------------------------------------------------- shared loop
def test_recipe_table_matches_manifest():
    """Every trained:<name> in spaces.yml is built by some recipe, and every recipe module exists."""
    built = {b for r in RECIPES for b in r.builds}
    for task in mf.load_manifest().tasks.values():
        if task.trained_name:
            assert task.trained_name in built, task.key
            assert task.build and task.build.split()[-1] in {r.name for r in RECIPES}
    with pytest.raises(ValueError, match="unknown recipe"):
        recipe("bogus")


def test_manifest_build_minutes_match_the_recipe_table():
    """spaces.yml's ``build_minutes`` (shown when a model is unavailable) is what :func:`build_note` computes
    from the recipe table, so the two cannot drift."""
    checked = 0
    for task in mf.load_manifest().tasks.values():
        if task.build and task.build.startswith("python -m bertvariants.train "):
            assert task.build_minutes == build_note(task.build.split()[-1]), task.key
            checked += 1
    assert checked


def test_config_rejects_bad_values():
    from bertvariants.train.sst2_teacher import Sst2TeacherConfig

    with pytest.raises(ValueError, match="no setting"):
        config_from_args(Sst2TeacherConfig, {"stepz": 3})
    with pytest.raises(ValueError, match="steps and batch_size"):
        config_from_args(Sst2TeacherConfig, {"steps": 0})
    assert config_from_args(Sst2TeacherConfig, {"steps": 100, "scale": 2.5}).total_steps == 250


def test_sampler_is_seeded_and_covers_epochs():
    a = [next(Sampler(11, 4, seed=3)) for _ in range(1)]
    b = [next(Sampler(11, 4, seed=3)) for _ in range(1)]
    assert a == b
    s = Sampler(11, 4, seed=5)
    seen = sum((next(s) for _ in range(11)), [])  # 44 draws = 4 epochs
    assert sorted(seen) == sorted(list(range(11)) * 4)


def test_corpus_blocks_hold_out_whole_documents(tiny_tokenizer_dir):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_tokenizer_dir)
    train, held = corpus_blocks(tok, ["alpha beta gamma " * 20, "delta epsilon " * 20, "zeta eta " * 20],
                                block=9, heldout_docs=1)
    assert train.shape[1] == held.shape[1] == 9
    assert (train[:, 0] == tok.cls_token_id).all() and (held[:, -1] == tok.sep_token_id).all()
    zeta = tok.convert_tokens_to_ids("zeta")
    assert not (train == zeta).any() and (held == zeta).any()
    with pytest.raises(ValueError, match="cannot hold out"):
        corpus_blocks(tok, ["a b"], block=9, heldout_docs=1)


def test_missing_data_is_a_clear_error(tmp_path, tiny_base):
    with pytest.raises(ValueError, match="does not exist"):
        run_recipe("sst2-teacher", {"data": str(tmp_path), "base_model": str(tiny_base), "steps": 1,
                                    "output": str(tmp_path / "o")}, progress=False)


def test_missing_shared_data_names_the_setting(tmp_path, monkeypatch):
    monkeypatch.setenv("BERTVARIANTS_DATA", str(tmp_path / "nowhere"))
    with pytest.raises(ValueError, match=r"--data DIR.*DIR/glue/sst2/train\.tsv.*set BERTVARIANTS_DATA=DIR"):
        data_file(TrainConfig(), "glue/sst2/train.tsv", what="SST-2 train")
    (tmp_path / "nowhere").mkdir()
    with pytest.raises(ValueError, match="does not exist"):
        data_file(TrainConfig(), "glue/sst2/train.tsv", what="SST-2 train")


def test_result_json_is_written_atomically_leaving_no_temp(tmp_path):
    atomic_write_json(tmp_path / "r.json", {"a": 1})  # what the recipes' finish() writes result.json with
    assert json.loads((tmp_path / "r.json").read_text()) == {"a": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]


# ---------------------------------------------------------------------------------------------- recipes
def test_sst2_teacher_tiny_run_is_reproducible_and_served_offline(data_dir, tiny_base, tmp_path, monkeypatch):
    monkeypatch.setenv("BERTVARIANTS_MODELS_DIR", str(tmp_path / "models"))
    kw = {"data": str(data_dir), "base_model": str(tiny_base), "log_every": 1, "steps": 12, "batch_size": 8,
          "lr": 3e-3}
    a = run_recipe("sst2-teacher", kw, progress=False)
    assert a.output == tmp_path / "models" / "sst2-teacher"
    rec = check_result(a, "sst2")
    assert 0.0 <= rec["metrics"]["accuracy"] <= 100.0 and rec["n"] == 12  # the harness scored the dev file
    losses = [r["loss"] for r in a.fit.curve]
    assert sum(losses[-3:]) / 3 < sum(losses[:3]) / 3  # it learns on a fixed seed
    b = run_recipe("sst2-teacher", {**kw, "output": str(tmp_path / "again")}, progress=False)
    assert [r["loss"] for r in b.fit.curve] == pytest.approx(losses, rel=1e-5)  # reruns reproduce
    res = serving.resolve("distillation-teacher", mf.load_manifest(), online=False)
    assert res.source == "trained" and Path(res.location) == a.output
    loaded = serving.load_checkpoint(res.location, "sequence-classification", device="cpu")
    assert loaded.model.config.id2label[1] == "positive"


def test_time_budget_stops_early_but_still_saves_and_scores(data_dir, tiny_base, tmp_path):
    rep = run_recipe("sst2-teacher", tiny(data_dir, tiny_base, tmp_path / "t", steps=50, batch_size=4,
                                          max_minutes=1e-9), progress=False)
    assert rep.fit.steps == 1 and rep.fit.planned_steps == 50
    rec = check_result(rep, "sst2")
    assert rec["training"]["steps"] == 1 and rec["training"]["planned_steps"] == 50
    assert "stopped early" in (rep.output / "README.md").read_text()


@pytest.mark.parametrize("masking", ["dynamic", "static"])
def test_mlm_tiny_run(data_dir, tiny_base, tmp_path, masking):
    rep = run_recipe(f"mlm-{masking}", tiny(data_dir, tiny_base, tmp_path / masking, steps=10, batch_size=4,
                                            lr=1e-2, train_blocks=8, heldout_docs=1, eval_blocks=4), progress=False)
    rec = check_result(rep, "wikipedia-mlm")  # scored by the evaluation harness, plus the recipe's own numbers
    assert rec["metrics"]["heldout_mlm_loss"] < rec["metrics"]["heldout_mlm_loss_before"]
    assert rec["metrics"]["epochs"] == pytest.approx(10 * 4 / 8)
    assert rec["details"]["masking"] == masking and rec["ci95"]["low"] <= rec["score"]
    assert rec["n"] == rec["details"]["blocks"] == 2  # the one held-out document (~330 tokens): 2 blocks of 128
    loaded = serving.load_checkpoint(str(rep.output), "masked-lm", device="cpu")
    assert loaded.model.config.vocab_size == 30522
    # heldout_mlm_loss_before is measured in-process on the recipe's own held-out blocks: the same blocks and masks
    # as the harness's, so the saved model scored that way gives the harness's number
    from evaluation.metrics.pretraining import masked_lm_scores

    _, held = corpus_blocks(loaded.tokenizer, read_corpus(data_dir / "corpus" / "enwiki_sample.jsonl"), block=128,
                            heldout_docs=1)
    own = masked_lm_scores(loaded.model, loaded.tokenizer, held[:4]).mean_loss()
    assert own == pytest.approx(rec["metrics"]["heldout_mlm_loss"], abs=1e-3)


def test_static_masks_repeat_and_dynamic_masks_do_not(tiny_tokenizer_dir):
    from transformers import AutoTokenizer

    from bertvariants.common import tokenizer_masking_kwargs
    from bertvariants.train.mlm import masked_batches

    tok = AutoTokenizer.from_pretrained(tiny_tokenizer_dir)
    blocks = torch.randint(1000, 2000, (3, 41))
    kw = tokenizer_masking_kwargs(tok)

    def two_epochs(masking):
        it = masked_batches(blocks, masking=masking, batch_size=3, seed=7, **kw)
        return [next(it) for _ in range(2)]

    s1, s2 = two_epochs("static")
    d1, d2 = two_epochs("dynamic")
    # each batch is the whole data set (3 blocks): compare the sets of masked positions per epoch
    key = lambda b: sorted(tuple((r != -100).nonzero().flatten().tolist()) for r in b["labels"])  # noqa: E731
    assert key(s1) == key(s2)
    assert key(d1) != key(d2)
    with pytest.raises(ValueError, match="masking must be"):
        next(masked_batches(blocks, masking="sometimes", batch_size=3, seed=7, **kw))


def test_electra_tiny_run_maps_bert_weights_and_is_served(data_dir, tiny_base, tmp_path, monkeypatch):
    from transformers import BertModel

    from bertvariants.electra import discriminator_from_bert

    bert = BertModel.from_pretrained(tiny_base, add_pooling_layer=False)
    disc = discriminator_from_bert(bert)
    disc.eval()
    ids = torch.tensor([[101, 2023, 2003, 102]])
    assert torch.allclose(disc.electra(ids).last_hidden_state, bert(ids).last_hidden_state, atol=1e-5)

    monkeypatch.setenv("BERTVARIANTS_MODELS_DIR", str(tmp_path / "models"))
    rep = run_recipe("electra", {"data": str(data_dir), "base_model": str(tiny_base), "log_every": 1, "steps": 6,
                                 "batch_size": 4, "max_length": 33, "heldout_docs": 1, "eval_blocks": 8},
                     progress=False)
    rec = check_result(rep, "wikipedia-rtd")
    assert 0.0 <= rec["metrics"]["auroc"] <= 100.0 and rec["n"] == 8  # the harness, on the recipe's held-out blocks
    assert {"mlm_loss", "disc_loss", "disc_acc"} <= set(rep.fit.curve[0])
    manifest = mf.load_manifest()
    for task, kind in (("electra-discriminator", "electra-discriminator"), ("electra-generator", "masked-lm")):
        res = serving.resolve(task, manifest, online=False)
        assert res.source == "trained"
        serving.load_checkpoint(res.location, kind, device="cpu")


def test_spanbert_tiny_run(data_dir, tiny_base, tmp_path):
    rep = run_recipe("spanbert", tiny(data_dir, tiny_base, tmp_path / "span", steps=8, batch_size=4, lr=1e-2,
                                      max_length=41, heldout_docs=1, eval_blocks=6), progress=False)
    rec = check_result(rep, "wikipedia-span")  # scored by the evaluation harness
    assert 0.0 <= rec["metrics"]["heldout_sbo_accuracy"] <= 100.0 and rec["details"]["masked_tokens"] > 0
    assert rec["n"] == 6 and rec["details"]["heldout"]["block_tokens"] == 41  # the recipe's own split settings
    assert {"mlm_loss", "sbo_loss"} <= set(rep.fit.curve[0])
    assert (rep.output / "sbo_head.safetensors").is_file()
    serving.load_checkpoint(str(rep.output), "masked-lm", device="cpu")


def test_block_word_ids_follow_wordpiece(tiny_tokenizer_dir):
    from transformers import AutoTokenizer

    from bertvariants.spanbert import block_word_ids

    tok = AutoTokenizer.from_pretrained(tiny_tokenizer_dir)
    enc = tok("unaffable river flows")
    assert block_word_ids(tok, torch.tensor(enc["input_ids"])) == enc.word_ids()


def test_bilstm_student_tiny_run(data_dir, tiny_checkpoint, tmp_path):
    teacher = tiny_checkpoint("sequence-classification")
    rep = run_recipe("bilstm-student", {"data": str(data_dir), "teacher": str(teacher), "output": str(tmp_path / "s"),
                                        "log_every": 1, "steps": 15, "batch_size": 8, "lr": 1e-2, "augment": 1,
                                        "latency_sentences": 3}, progress=False)
    rec = check_result(rep, "sst2")
    assert {"latency_ms_batch1", "teacher_latency_ms_batch1", "speedup_batch1"} <= set(rec["metrics"])
    losses = [r["loss"] for r in rep.fit.curve]
    assert sum(losses[-3:]) < sum(losses[:3])
    loaded = serving.load_checkpoint(str(rep.output), "sequence-classification", device="cpu")
    assert loaded.architecture.startswith("BiLSTMStudent")
    # the accuracy is the evaluation harness's (bootstrap CI, data hash), and the CLI path scores the same checkpoint
    from evaluation import runner

    assert rec["ci95"] and rec["data_sha256"]
    again = runner.run("sst2", str(rep.output), data=str(data_dir / "glue" / "sst2" / "dev.tsv"),
                       progress=False).result.to_dict()
    assert again["metrics"]["accuracy"] == rec["metrics"]["accuracy"] and again["variant"] == "Distillation"


def test_tang_augmentation_rates():
    from bertvariants.common import make_generator
    from bertvariants.train.bilstm_student import augment_sentence

    gen = make_generator(0)
    words = [f"w{i}" for i in range(20)]
    outs = [augment_sentence(words, generator=gen, p_mask=0.1, p_ngram=0.25) for _ in range(2000)]
    ngram = [o for o in outs if len(o) < 20]
    assert abs(len(ngram) / 2000 - 0.25) < 0.03  # p_ng
    full = [o for o in outs if len(o) == 20]
    assert abs(sum(w == "[MASK]" for o in full for w in o) / (20 * len(full)) - 0.1) < 0.01  # p_mask
    assert all(1 <= len(o) <= 5 for o in ngram)
    with pytest.raises(ValueError, match="empty"):
        augment_sentence([], generator=gen)


def write_clinical(root: Path, name: str = "mtsamples_subset.csv", offset: int = 0, n: int = 12) -> Path:
    """A tiny MTSamples-format CSV (index, description, medical_specialty, sample_name, transcription, keywords)."""
    rows = ["index,description,medical_specialty,sample_name,transcription,keywords"]
    for i in range(offset, offset + n):
        surgery = i % 2 == 0
        body = ("PROCEDURE: incision , the patient was prepped and draped , sutures closed the wound . " * 9 if surgery
                else "HISTORY: the patient reports urinary frequency , urine culture was negative , follow up . " * 9)
        rows.append(f'{i},note {i},{"Surgery" if surgery else "Urology"},s{i},"note {i} . {body}",k')
    path = root / "clinical" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(rows) + "\n")
    return path


@pytest.mark.parametrize("method", ["head", "lora"])
def test_clinical_tiny_run_scores_notes_with_chunk_aggregation(method, data_dir, tiny_base, tmp_path, monkeypatch):
    write_clinical(data_dir)  # the test notes
    write_clinical(data_dir, "mtsamples_train.csv", offset=100, n=20)  # the disjoint training notes
    monkeypatch.setenv("BERTVARIANTS_MODELS_DIR", str(tmp_path / "models"))
    rep = run_recipe("clinical", {"data": str(data_dir), "base_model": str(tiny_base), "log_every": 1, "steps": 6,
                                  "batch_size": 8, "max_length": 40, "lr": 1e-3, "method": method,
                                  "head_epochs": (1, 3)}, progress=False)
    rec = check_result(rep, "mtsamples-subset")
    assert rec["split"] == "heldout" and rec["n"] == 4  # a fifth of the 20 training notes, never trained on
    held = [r[""] for r in csv.DictReader(open(rep.output / "notes-heldout.csv"))]
    trained = [r[""] for r in csv.DictReader(open(rep.output / "notes-train.csv"))]
    assert len(held) == 4 and len(trained) == 16 and not set(held) & set(trained)
    details = rec["details"]
    assert details["subset"]["n"] == 12  # and every note of the subset
    assert details["probe_heldout"]["model"] == str(tiny_base)  # the frozen base's probe, on the same notes
    assert "mtsamples_train.csv" in json.loads(rep.result_path.read_text())["training"]["data"]["notes"]
    assert details["aggregation"].startswith("P = (P_max + P_mean*n/c)")
    assert details["chunk_tokens"] == 40  # the harness chunks as training did
    assert details["chunks"] > rec["n"]  # notes longer than one chunk
    if method == "head":
        assert details["head"]["epochs"] in (1, 3) and set(details["head"]["cv_auroc"]) == {"1", "3"}  # JSON keys
        from safetensors.torch import load_file

        saved, base = load_file(str(rep.output / "model.safetensors")), load_file(str(tiny_base / "model.safetensors"))
        key = next(k for k in base if "encoder.layer.0." in k)
        assert torch.equal(saved["bert." + key.removeprefix("bert.")], base[key])  # the encoder stayed frozen
    res = serving.resolve("clinical-classifier", mf.load_manifest(), online=False)
    assert res.source == "trained"


def test_clinical_head_folds_its_standardisation_into_the_pooler():
    """train_head learns on standardised [CLS] states and folds (x − μ)/σ into the pooler: a per-dimension affine
    change of the states gives the same probabilities, and the saved head reads the raw states."""
    from transformers import BertConfig, BertForSequenceClassification

    from bertvariants.train.clinical import ClinicalConfig, head_probs, train_head

    config = BertConfig(vocab_size=99, hidden_size=36, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=37, num_labels=2)
    gen = torch.Generator().manual_seed(0)
    states = torch.randn(40, 36, generator=gen)
    owned, labels = [[i, i + 20] for i in range(20)], [i % 2 for i in range(20)]
    states[torch.tensor([i for i in range(40) if (i % 20) % 2])] += 0.8  # a learnable signal
    cfg = ClinicalConfig(batch_size=8, seed=3)
    probs = []
    for x in (states, states * torch.linspace(0.5, 3.0, 36) + 7.0):
        model = BertForSequenceClassification(config)
        fit = train_head(model, x, owned, labels, epochs=4, cfg=cfg)
        probs.append(head_probs(model, x))
    assert fit.steps == 4 * 5 and len(fit.curve) == 4
    assert torch.allclose(probs[0], probs[1], atol=1e-4)
    assert probs[0][1::2].mean() > probs[0][0::2].mean()  # it learned the signal


@pytest.mark.parametrize("recipe_name", ["distil-student", "albert-student"])
def test_sentence_students_tiny_run(recipe_name, data_dir, tiny_base, tmp_path):
    root = data_dir
    (root / "glue" / "stsb").mkdir(exist_ok=True)
    pairs = [("a man plays a guitar", "a person plays guitar", 4.2), ("a cat sleeps", "the stock market fell", 0.2),
             ("two dogs run", "dogs are running", 3.8), ("a woman cooks", "a chef is cooking", 3.5),
             ("the sun sets", "a car drives fast", 0.5)]
    for name in ("sts-train.csv", "sts-dev.csv"):
        (root / "glue" / "stsb" / name).write_text(
            "".join(f"main-captions\tMSRvid\t2012\t{i}\t{s}\t{a}\t{b}\n" for i, (a, b, s) in enumerate(pairs * 2)))
    kw = tiny(data_dir, tiny_base, tmp_path / recipe_name, steps=6, batch_size=8, lr=1e-3, train_sentences=60)
    if recipe_name == "distil-student":
        kw["student_layers"] = (0,)
    else:  # steps chosen on 4 held-out STS-B train pairs, measured every 2 steps
        kw.update(embedding_size=12, shared_from=1, select_pairs=4, eval_every=2, squad_questions=0)
    rep = run_recipe(recipe_name, kw, progress=False)
    rec = check_result(rep, "stsb")
    if recipe_name == "albert-student":
        chosen = rec["details"]["steps_chosen"]
        assert [h["step"] for h in chosen["history"]] == [2, 4, 6]
        assert chosen["spearman"] == max(h["spearman"] for h in chosen["history"])
        assert chosen["step"] in (2, 4, 6) and f"weights of step {chosen['step']}" in (rep.output / "README.md").read_text()
        held = (rep.output / "stsb-select.csv").read_text().splitlines()
        assert len(held) == 4 and rec["split"] == "dev"  # dev is only reported
    assert {"spearman", "teacher_spearman", "encode_speedup", "params_ratio"} <= set(rec["metrics"])
    assert rec["metrics"]["params_ratio"] > 1.0
    losses = [r["loss"] for r in rep.fit.curve]
    assert losses[-1] < losses[0]


def test_albert_init_is_the_best_low_rank_factorization(tiny_base):
    from transformers import BertModel

    from bertvariants.albert_init import albert_from_bert, svd_factorize

    bert = BertModel.from_pretrained(tiny_base)
    w = bert.embeddings.word_embeddings.weight.detach()
    a, b = svd_factorize(w, 12)
    err12 = torch.linalg.matrix_norm(w - a @ b)
    a6, b6 = svd_factorize(w, 6)
    err6 = torch.linalg.matrix_norm(w - a6 @ b6)
    assert err12 < err6  # a larger E approximates better (Eckart–Young)
    full = svd_factorize(w, 36)
    assert torch.allclose(full[0] @ full[1], w, atol=1e-4)  # full rank: exact
    albert = albert_from_bert(bert, embedding_size=12, shared_from=1)
    n_albert = sum(p.numel() for p in albert.parameters())
    assert n_albert < sum(p.numel() for p in bert.parameters()) / 2
    layer = albert.encoder.albert_layer_groups[0].albert_layers[0]
    assert torch.equal(layer.ffn.weight, bert.encoder.layer[1].intermediate.dense.weight)
    with pytest.raises(ValueError, match="rank"):
        svd_factorize(w, 0)
    with pytest.raises(ValueError, match="shared_from"):
        albert_from_bert(bert, shared_from=9)
    # ALBERT's num_hidden_groups: G shared layers, group g from the teacher layer shared_from places in its span
    layers = bert.config.num_hidden_layers
    two = albert_from_bert(bert, embedding_size=12, shared_from=0, hidden_groups=2)
    assert two.config.num_hidden_groups == 2 and len(two.encoder.albert_layer_groups) == 2
    for g in range(2):
        grouped = two.encoder.albert_layer_groups[g].albert_layers[0]
        assert torch.equal(grouped.ffn.weight, bert.encoder.layer[g * layers // 2].intermediate.dense.weight)
    with pytest.raises(ValueError, match="hidden_groups"):
        albert_from_bert(bert, hidden_groups=layers + 1)


def test_cpu_bf16_only_where_asked_and_native(monkeypatch):
    from bertvariants import inference
    from bertvariants.train.loop import make_accelerator, mixed_precision

    import dataclasses

    def native(flag: bool) -> None:  # the one CPU-capability function, as another CPU kind would answer it
        caps = dataclasses.replace(inference.cpu_capabilities(), native_bf16=flag)
        monkeypatch.setattr(inference, "cpu_capabilities", lambda: caps)

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    native(True)
    assert mixed_precision(TrainConfig()) == "no"  # fp32 unless the recipe asks
    assert mixed_precision(TrainConfig(cpu_bf16=True)) == "bf16"
    native(False)
    assert mixed_precision(TrainConfig(cpu_bf16=True)) == "no"  # emulated bf16 would be slower than fp32
    # recipes of different precisions in one process (``train all``): the accelerate singleton is re-made
    native(True)
    assert make_accelerator(TrainConfig(cpu_bf16=True)).mixed_precision == "bf16"
    assert make_accelerator(TrainConfig()).mixed_precision == "no"


def test_distillation_loss_uses_cached_targets_and_optional_hidden_term(tiny_base):
    from transformers import AutoTokenizer, BertModel

    from bertvariants.train.distil_student import embedding_distillation_loss, teacher_targets

    tok = AutoTokenizer.from_pretrained(tiny_base)
    teacher = BertModel.from_pretrained(tiny_base).eval()
    sents = ["a man plays a guitar", "the sun sets", "two dogs run in a park"]
    targets = teacher_targets(teacher, tok, sents, max_length=16, progress=False)
    batch = dict(tok(sents, padding=True, return_tensors="pt"))
    batch["index"] = torch.arange(3)
    out = embedding_distillation_loss(targets)(teacher, batch)  # the teacher as its own student: loss 0
    assert abs(out["loss"].item()) < 1e-5 and "hidden_cos" not in out
    both = embedding_distillation_loss(targets, teacher=teacher, hidden_weight=0.5)(teacher, batch)
    assert abs(both["hidden_cos"].item()) < 1e-5
    with pytest.raises(ValueError, match="needs the teacher"):
        embedding_distillation_loss(targets, hidden_weight=1.0)


def test_attention_dropout_is_set_on_every_self_attention_and_only_there(tiny_base):
    """The lab trains without dropout on the attention probabilities (TrainConfig.attention_dropout = 0) and keeps
    hidden-state dropout; ``None`` leaves the model's own."""
    from transformers import BertForMaskedLM

    from bertvariants.train.config import TrainConfig
    from bertvariants.lab_step import set_attention_dropout

    model = BertForMaskedLM.from_pretrained(tiny_base)
    layers = model.config.num_hidden_layers
    assert TrainConfig().attention_dropout == 0.0
    assert set_attention_dropout(model, 0.0) == layers
    attn = [m.dropout.p for m in model.modules() if type(m).__name__ == "BertSelfAttention"]
    hidden = [m.dropout.p for m in model.modules() if type(m).__name__ in ("BertSelfOutput", "BertOutput")]
    assert attn == [0.0] * layers and all(p == model.config.hidden_dropout_prob for p in hidden)
    with pytest.raises(ValueError, match="attention_dropout"):
        set_attention_dropout(model, 1.0)


# ---------------------------------------------------------------------------------------------- --resume
class _StopAfter:
    """Stand-in for the loop's SIGTERM flag: asks to stop once ``steps`` steps have run (a deterministic kill)."""

    def __init__(self, steps: int):
        self.steps, self.checks = steps, 0

    def __call__(self):
        return self

    @property
    def requested(self) -> bool:  # read before every step after the first of a run
        self.checks += 1
        return self.checks >= self.steps

    def restore(self):
        pass


RESUMABLE = {
    "mlm-dynamic": dict(steps=8, batch_size=4, lr=1e-2, train_blocks=8, heldout_docs=1, eval_blocks=2),
    "electra": dict(steps=8, batch_size=4, max_length=33, heldout_docs=1, eval_blocks=2),
    "sst2-teacher": dict(steps=8, batch_size=4, lr=3e-3),
}


@pytest.mark.parametrize("recipe_name", sorted(RESUMABLE))
def test_killed_then_resumed_run_equals_an_unbroken_one(recipe_name, data_dir, tiny_base, tmp_path, monkeypatch):
    """Stop after 3 of 8 steps (state saved), resume with --resume: every logged loss and every trained weight
    equals the unbroken run's — optimizer moments, schedule, RNG streams and data position all carried over."""
    from safetensors.torch import load_file

    from bertvariants.train import loop

    kw = dict(RESUMABLE[recipe_name], checkpoint_minutes=0)
    whole = run_recipe(recipe_name, tiny(data_dir, tiny_base, tmp_path / "whole", **kw), progress=False)
    with monkeypatch.context() as patch:  # only this patch is undone (results stay in tmp_path)
        patch.setattr(loop, "_StopFlag", _StopAfter(3))
        cut = run_recipe(recipe_name, tiny(data_dir, tiny_base, tmp_path / "cut", **kw), progress=False)
    assert cut.fit.steps == 3 and cut.fit.planned_steps == 8
    assert (tmp_path / "cut.train-state.pt").is_file()
    resumed = run_recipe(recipe_name, tiny(data_dir, tiny_base, tmp_path / "cut", resume=True, **kw), progress=False)
    assert resumed.fit.steps == 8
    assert [r["step"] for r in resumed.fit.curve] == [r["step"] for r in whole.fit.curve]
    assert [r["loss"] for r in resumed.fit.curve] == pytest.approx([r["loss"] for r in whole.fit.curve], abs=1e-6)
    for a in sorted(whole.output.rglob("*.safetensors")):
        b = resumed.output / a.relative_to(whole.output)
        wa, wb = load_file(str(a)), load_file(str(b))
        assert wa.keys() == wb.keys()
        for key in wa:
            assert torch.allclose(wa[key], wb[key], atol=1e-6), (a.name, key)


def test_resume_refuses_a_state_saved_with_other_settings(data_dir, tiny_base, tmp_path):
    kw = tiny(data_dir, tiny_base, tmp_path / "t", steps=4, batch_size=4, lr=3e-3)
    run_recipe("sst2-teacher", kw, progress=False)
    with pytest.raises(ValueError, match="lr: saved 0.003, now 0.001"):
        run_recipe("sst2-teacher", {**kw, "lr": 1e-3, "resume": True}, progress=False)
    (tmp_path / "t.train-state.pt").write_bytes(b"half a file")
    with pytest.raises(ValueError, match="cannot read the training state"):
        run_recipe("sst2-teacher", {**kw, "resume": True}, progress=False)


def test_mlm_on_the_large_corpus_in_parts_scores_both_heldout_sets(data_dir, tiny_base, tmp_path):
    """corpus=enwiki2018: trains on the parts directory minus its last documents; the harness scores that held-out
    slice (split enwiki2018) and the standard 6 documents of the sample, one result row each."""
    from bertvariants.corpus import read_corpus

    assert len(read_corpus(data_dir / "corpus" / "enwiki2018")) == 9  # .jsonl.gz and .jsonl parts, in name order
    rep = run_recipe("mlm-dynamic", tiny(data_dir, tiny_base, tmp_path / "big", steps=4, batch_size=4, lr=1e-2,
                                         train_blocks=0, corpus="enwiki2018", heldout_docs=2, eval_blocks=2),
                     progress=False)
    rec = check_result(rep, "wikipedia-mlm")
    assert rec["split"] == "heldout" and rec["details"]["corpus"] == "enwiki2018"
    rows = [json.loads(p.read_text()) for p in (tmp_path / "results").glob("wikipedia-mlm__*.json")]
    assert sorted(r["split"] for r in rows) == ["enwiki2018", "heldout"]
    own = next(r for r in rows if r["split"] == "enwiki2018")
    assert own["training"]["steps"] == 4 and own["model"] == "mlm-dynamic" and own["n"] >= 1
    assert "held-out slice of the training corpus" in (rep.output / "README.md").read_text()
    # --set run_name names both rows (a comparison run never files a row under the shipped model's name)
    for p in (tmp_path / "results").glob("wikipedia-mlm__*.json"):
        p.unlink()
    run_recipe("mlm-dynamic", tiny(data_dir, tiny_base, tmp_path / "named", steps=2, batch_size=4, lr=1e-2,
                                   train_blocks=0, corpus="enwiki2018", heldout_docs=2, eval_blocks=2,
                                   run_name="big-run"), progress=False)
    rows = [json.loads(p.read_text()) for p in (tmp_path / "results").glob("wikipedia-mlm__*.json")]
    assert sorted((r["split"], r["model"]) for r in rows) == [("enwiki2018", "big-run"), ("heldout", "big-run")]


def test_large_corpus_never_holds_a_heldout_document_of_the_sample():
    """The standard held-out documents (the sample's last 6) are not among the 2018 corpus's articles (by title),
    so training on it does not leak the wikipedia-mlm held-out set."""
    import gzip as gz

    from bertvariants.paths import shared_data_dir

    root = shared_data_dir() / "corpus"
    if not (root / "enwiki2018").is_dir():
        pytest.skip("the shared 2018 Wikipedia sample is not here")
    sample = [json.loads(line) for line in (root / "enwiki_sample.jsonl").read_text().splitlines() if line.strip()]
    held = {d["title"] for d in sample[-6:]}
    titles = {json.loads(line)["title"] for p in sorted((root / "enwiki2018").glob("*.jsonl.gz"))
              for line in gz.open(p, "rt", encoding="utf-8") if line.strip()}
    assert len(titles) > 30000 and not held & titles


def test_glue_recipe_fine_tunes_a_pair_task_and_weights_cola(data_dir, tiny_base, tmp_path):
    """glue: RTE pairs go in as [CLS] A [SEP] B [SEP] and the row is the harness's rte dev result; CoLA's loss is
    class-weighted by default (its MCC scores both classes)."""
    from bertvariants.train.glue import weighted_loss

    rte = data_dir / "glue" / "rte"
    rte.mkdir(parents=True, exist_ok=True)
    rows = ["index\tsentence1\tsentence2\tlabel"]
    for i in range(24):
        same = i % 2 == 0
        rows.append(f"{i}\tA dog runs in the park {i}.\t{'A dog runs.' if same else 'A cat sleeps at home.'}\t"
                    f"{'entailment' if same else 'not_entailment'}")
    for name in ("train.tsv", "dev.tsv"):
        (rte / name).write_text("\n".join(rows) + "\n")
    rep = run_recipe("glue", tiny(data_dir, tiny_base, tmp_path / "glue-rte", steps=6, batch_size=8, lr=1e-3),
                     progress=False)
    rec = check_result(rep, "rte")
    assert rec["model"] == "glue-rte" and rec["n"] == 24
    assert "24 examples" in rec["training"]["data"]["train"] and rec["training"]["data"]["loss"] == "cross-entropy"
    # the weighted loss is the class-weighted mean cross-entropy
    import torch

    batch = {"input_ids": torch.zeros(2, 3, dtype=torch.long), "attention_mask": torch.ones(2, 3, dtype=torch.long),
             "labels": torch.tensor([0, 1])}

    class Fixed(torch.nn.Module):
        def forward(self, **kw):
            return type("O", (), {"logits": torch.tensor([[2.0, 0.0], [0.0, 1.0]])})()

    got = weighted_loss(torch.tensor([3.0, 1.0]))(Fixed(), batch)["loss"]
    ce = torch.nn.functional.cross_entropy(torch.tensor([[2.0, 0.0], [0.0, 1.0]]), torch.tensor([0, 1]), reduction="none")
    assert torch.isclose(got, (3 * ce[0] + 1 * ce[1]) / 4)
    with pytest.raises(ValueError, match="task must be one of"):
        run_recipe("glue", {"task": "qnli", "data": str(data_dir)}, progress=False)
