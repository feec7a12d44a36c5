"""Classification, sentence similarity and long clinical notes.

- fine-tuned classifiers: logits → label, the head's ``id2label`` mapped onto the task's label names;
- sentence embeddings: STS by the cosine of the two embeddings (Sentence-BERT §4.1); classification and pair
  tasks by a **linear probe**: logistic regression (C by 5-fold CV) on standardised frozen embeddings, features
  (u) for single sentences and (u, v, |u−v|, u∗v) for pairs (Sentence-BERT §3, the classification objective's
  features), trained on the task's train split (capped at ``probe_train_size`` examples, a seeded sample), or by
  stratified 10-fold cross-validation on the evaluation split when the task has no train split here (RTE);
- long notes: a probe over chunk embeddings (or the classifier on each chunk), chunk probabilities aggregated
  as in ClinicalBERT §3.4.
"""

from __future__ import annotations

import numpy as np

from bertvariants.clinical_bert import aggregate_chunk_scores, chunk_note
from bertvariants.io import sha256_file

from .. import metrics as M
from .. import tasks
from ..loaders import Dataset
from ..metrics import glue
from ..metrics.clinical import clinical as clinical_metrics
from ..record import Outcome
from .common import clip, encode, features, logits

PROBE_CS = (1e-4, 1e-3, 1e-2, 1e-1, 1.0, 10.0)


def _probe_name(n_train: int, balanced: bool = False) -> str:
    solver = "liblinear" if n_train < 1000 else "lbfgs"
    weights = ", class_weight=balanced" if balanced else ""
    return f"StandardScaler + LogisticRegressionCV(Cs={list(PROBE_CS)}, cv=5, log-loss, {solver}{weights})"


def _probe(n_train: int, balanced: bool = False):
    """The linear probe: standardised features -> L2 logistic regression whose strength C is chosen by 5-fold
    cross-validation (log-loss) on the probe's training data (SentEval-style; a fixed C overfits 1,536 pair features).
    liblinear below 1,000 examples (fast there), lbfgs above; unshuffled stratified folds: deterministic.
    ``balanced``: classes weighted inversely to their frequency, for a metric that scores both classes (CoLA's
    MCC: unweighted, the probe of a weak signal collapses to the 70% majority class and scores MCC 0)."""
    from sklearn.linear_model import LogisticRegressionCV
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    solver = "liblinear" if n_train < 1000 else "lbfgs"
    return make_pipeline(StandardScaler(), LogisticRegressionCV(Cs=list(PROBE_CS), cv=5, max_iter=2000, solver=solver,
                                                                l1_ratios=(0.0,), scoring="neg_log_loss",
                                                                class_weight="balanced" if balanced else None,
                                                                use_legacy_attributes=False))


def _load_train(bench: tasks.Benchmark, train_data) -> Dataset:
    try:
        return tasks.load(bench, bench.probe_split, train_data)
    except ValueError as exc:
        raise ValueError(f"the linear probe needs {bench.key}'s {bench.probe_split} split: {exc} "
                         "(for the probe's training file use --train-data PATH)") from None


def _label_map(bench: tasks.Benchmark, config) -> list[int]:
    """Model class index -> task label index, by label name when the names match, else by position."""
    id2label = {int(k): str(v) for k, v in (getattr(config, "id2label", None) or {}).items()}
    n = len(id2label) or getattr(config, "num_labels", 0)
    if bench.labels and n != len(bench.labels):
        raise ValueError(f"the model has {n} classes but {bench.key} has {len(bench.labels)} "
                         f"({', '.join(bench.labels)})")
    names = [b.lower() for b in bench.labels]
    mapped = [names.index(id2label[i].lower()) if id2label.get(i, "").lower() in names else None for i in range(n)]
    return mapped if all(m is not None for m in mapped) else list(range(n))


def classification(bench, h, ds, *, seed, batch_size, probe_train_size, train_data, progress) -> Outcome:
    y = np.array([e.label for e in ds.examples])
    details: dict = {}
    if h.kind == "sequence-classification":
        import torch

        m = h.loaded
        out = logits(h, [e.text for e in ds.examples],
                     [e.text_pair for e in ds.examples] if ds.examples[0].text_pair is not None else None,
                     batch_size=batch_size, max_length=h.max_length, progress=progress)
        probs_model = torch.softmax(torch.from_numpy(out), -1).numpy()
        mapping = _label_map(bench, m.model.config)
        probs = np.zeros((len(y), max(len(bench.labels), probs_model.shape[1])))
        for i, j in enumerate(mapping):
            probs[:, j] += probs_model[:, i]
        details["method"] = "fine-tuned classification head"
        details["label_mapping"] = mapping
    elif h.kind == "sentence-embedding":
        x = features(h, ds, batch_size=batch_size, progress=progress)
        if bench.probe_split:
            train = _load_train(bench, train_data)
            rng = np.random.default_rng(seed)
            cap = min(probe_train_size, len(train))
            keep = np.sort(rng.permutation(len(train))[:cap])
            train = Dataset(train.task, train.split, train.path, [train.examples[i] for i in keep])
            xt = features(h, train, batch_size=batch_size, progress=progress)
            yt = np.array([e.label for e in train.examples])
            clf = _probe(len(yt), bench.probe_balanced).fit(xt, yt)
            probs = clf.predict_proba(x)
            details.update(method="linear probe (logistic regression on standardised frozen embeddings, "
                                  "C by 5-fold CV)",
                           probe=_probe_name(len(yt), bench.probe_balanced),
                           probe_C=float(np.ravel(clf[-1].C_)[0]),
                           probe_train_split=bench.probe_split, probe_train_size=int(cap),
                           probe_train_sha256=sha256_file(train.path))
        else:
            from sklearn.model_selection import StratifiedKFold, cross_val_predict

            folds = StratifiedKFold(n_splits=10, shuffle=True, random_state=seed)
            probs = cross_val_predict(_probe(len(y) * 9 // 10), x, y, cv=folds, method="predict_proba")
            details.update(method="linear probe, stratified 10-fold cross-validation on the evaluation split "
                                  "(no train split available)", probe=_probe_name(len(y) * 9 // 10))
        if bench.format == "pair":
            details["features"] = "[u, v, |u-v|, u*v]"
    else:
        raise ValueError(f"{bench.key} needs a sentence-embedding or sequence-classification model; "
                         f"{h.name} is {h.kind}")
    pred = probs.argmax(1)
    fns = {k: glue.FUNCTIONS[k] for k in bench.metrics}
    metrics = {k: fn(pred, y) for k, fn in fns.items()}
    primary = fns[bench.primary]
    records = [{"id": e.id, "input": clip(e.text, e.text_pair), "prediction": int(p), "reference": int(t),
                "confidence": round(float(pr.max()), 4), "error": round(1 - float(pr[t]), 4)}
               for e, p, t, pr in zip(ds.examples, pred, y, probs)]
    return Outcome(metrics, lambda idx: primary(pred[idx], y[idx]), records, details)


def sts(bench, h, ds, *, batch_size, progress, **_) -> Outcome:
    gold = np.array([e.label for e in ds.examples], dtype=np.float64)
    if h.kind == "sentence-embedding":
        u = encode(h, [e.text for e in ds.examples], batch_size=batch_size, progress=progress)
        v = encode(h, [e.text_pair for e in ds.examples], batch_size=batch_size, progress=progress)
        pred = (u * v).sum(1)  # unit vectors: the cosine
        method = f"cosine of {h.pooling}-pooled embeddings"
    elif h.kind == "sequence-classification" and h.loaded.model.config.num_labels == 1:
        pred = logits(h, [e.text for e in ds.examples], [e.text_pair for e in ds.examples], batch_size=batch_size,
                      max_length=h.max_length, progress=progress)[:, 0].astype(np.float64)
        method = "regression head"
    else:
        raise ValueError(f"{bench.key} needs a sentence-embedding model or a 1-output regression head; "
                         f"{h.name} is {h.kind}")
    metrics = {k: glue.FUNCTIONS[k](pred, gold) for k in bench.metrics}
    primary = glue.FUNCTIONS[bench.primary]
    # error: how far apart the example sits in the two rankings (what Spearman's ρ penalises)
    from scipy.stats import rankdata

    rank_gap = np.abs(rankdata(pred) - rankdata(gold)) / len(gold)
    records = [{"id": e.id, "input": clip(e.text, e.text_pair), "prediction": round(float(p), 4),
                "reference": float(g), "error": round(float(r), 4)}
               for e, p, g, r in zip(ds.examples, pred, gold, rank_gap)]
    return Outcome(metrics, lambda idx: primary(pred[idx], gold[idx]), records, {"method": method})


def long_notes(bench, h, ds, *, seed, batch_size, train_data, progress, **_) -> Outcome:
    """ClinicalBERT §3.4: chunk each note, score chunks, aggregate P = (P_max + P_mean·n/c)/(1 + n/c)."""
    import torch

    m = h.loaded
    if h.kind not in ("sentence-embedding", "sequence-classification"):
        raise ValueError(f"{bench.key} needs a sentence-embedding or sequence-classification model; "
                         f"{h.name} is {h.kind}")
    max_tokens = h.max_length or 512

    def chunks_of(d: Dataset) -> tuple[list[str], np.ndarray]:
        texts, owner = [], []
        for i, e in enumerate(d.examples):
            for ch in chunk_note(m.tokenizer, e.text, max_tokens=max_tokens, max_chunks=100_000):
                texts.append(ch.text), owner.append(i)
        return texts, np.array(owner)

    texts, owner = chunks_of(ds)
    y = np.array([e.label for e in ds.examples])
    details = {"chunk_tokens": max_tokens, "chunks": len(texts),
               "aggregation": "P = (P_max + P_mean*n/c)/(1 + n/c), c = 2"}
    if h.kind == "sequence-classification":
        out = logits(h, texts, batch_size=batch_size, max_length=max_tokens, progress=progress)
        mapping = _label_map(bench, m.model.config)
        chunk_p = torch.softmax(torch.from_numpy(out), -1).numpy()[:, mapping.index(1)]
        details["method"] = "fine-tuned classifier on each chunk"
    else:
        # a task whose probe split is another part of the evaluated file (mtsamples' 50/50 split) reads the same
        # file; one with its own training file (mtsamples-subset) reads that, never the test notes
        same_file = bench.files.get(bench.probe_split) == bench.files.get(ds.split)
        train = _load_train(bench, train_data or (ds.path if same_file else None))
        t_texts, t_owner = chunks_of(train)
        yt = np.array([e.label for e in train.examples])[t_owner]
        xt = encode(h, t_texts, batch_size=batch_size, progress=progress)
        clf = _probe(len(yt)).fit(xt, yt)
        details["probe_C"] = float(np.ravel(clf[-1].C_)[0])
        details["probe"] = _probe_name(len(yt))
        chunk_p = clf.predict_proba(encode(h, texts, batch_size=batch_size, progress=progress))[:, 1]
        details.update(method="linear probe on chunk embeddings (each chunk labelled with its note's label)",
                       probe_train_split=bench.probe_split, probe_train_notes=len(train),
                       probe_train_chunks=len(t_texts))
    note_p = np.array([aggregate_chunk_scores(chunk_p[owner == i]).probability for i in range(len(y))])
    metrics = clinical_metrics(y, note_p).metrics
    fn = {"auroc": M.clinical.auroc, "auprc": M.clinical.auprc, "rp80": M.clinical.rp80}[bench.primary]
    records = [{"id": e.id, "input": clip(e.text, None), "prediction": round(float(p), 4), "reference": int(t),
                "chunks": int((owner == i).sum()), "error": round(abs(float(t) - float(p)), 4)}
               for i, (e, p, t) in enumerate(zip(ds.examples, note_p, y))]
    return Outcome(metrics, lambda idx: fn(y[idx], note_p[idx]), records, details)
