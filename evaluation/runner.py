"""Run one benchmark on one model and return a result record with full provenance.

How a model is evaluated depends on the benchmark's format (``tasks.Benchmark.format``) and the model's kind:

- sentence embeddings: STS by the cosine of the two embeddings (Sentence-BERT §4.1); classification and pair
  tasks by a **linear probe**: logistic regression (C by 5-fold CV) on standardised frozen embeddings, features
  (u) for single sentences and (u, v, |u−v|, u∗v) for pairs (Sentence-BERT §3, the classification objective's
  features), trained on the task's train split (capped at ``probe_train_size`` examples, a seeded sample), or by
  stratified 10-fold cross-validation on the evaluation split when the task has no train split here (RTE);
  long notes by a probe over chunk embeddings, chunk probabilities aggregated as in ClinicalBERT §3.4.
- fine-tuned classifiers: logits → label, the head's ``id2label`` mapped onto the task's label names;
- question answering: windows + n-best span decoding (``bertvariants.spanbert``), official SQuAD scoring;
- seq2seq summarizers: ``generate``; ``lead3``: the first three sentences (See et al. 2017);
- held-out pretraining (formats ``mlm``, ``rtd``, ``span``): the corpus's held-out blocks, corrupted with a fixed
  seed, scored by :mod:`evaluation.metrics.pretraining` (masked-LM loss, ELECTRA's replaced-token detection,
  SpanBERT's MLM + SBO); ``options`` set the split (:class:`~evaluation.metrics.pretraining.HeldoutConfig`),
  ``--limit`` keeps the first N blocks, and the bootstrap resamples blocks.

Forward passes go through ``bertvariants.inference`` (``encode`` / ``classify``), except seq2seq ``generate``
(not covered by that module), SQuAD, whose windows run in ``bertvariants.spanbert.answer_questions``, and the
pretraining objectives, whose heads run on the masked positions only (:mod:`evaluation.metrics.pretraining`).
"""

from __future__ import annotations

import hashlib
import json
import math
import platform
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

import numpy as np

from . import metrics as M
from . import tasks
from .loaders import Dataset, sha256_file
from .metrics import glue, rouge as rouge_m, squad as squad_m
from .metrics.clinical import clinical as clinical_metrics

DEFAULT_SEED = 0
PROBE_TRAIN_SIZE = 8000
BASELINES = ("lead3",)


@dataclass
class ModelHandle:
    """What the runner evaluates: a loaded model (or a baseline) plus where it came from."""

    name: str  # as given on the command line
    kind: str  # registry kind, or "lead3"
    loaded: Any = None  # bertvariants.registry.LoadedModel
    revision: str = ""
    variant: str = ""
    params: int | None = None
    pooling: str = "mean"
    max_length: int | None = None
    parts: dict = field(default_factory=dict)  # further models a format needs (ELECTRA's generator, SpanBERT's SBO)


# --------------------------------------------------------------------------------------------
# Model resolution
# --------------------------------------------------------------------------------------------
def _weights_hash(path: Path) -> str:
    files = sorted(p for p in path.iterdir() if p.suffix in (".safetensors", ".bin") and p.is_file())
    if not files:
        return "unknown"
    h = hashlib.sha256()
    for f in files:
        h.update(sha256_file(f).encode())
    return "sha256:" + h.hexdigest()[:16]


def _revision(location: str) -> str:
    path = Path(location)
    if path.is_dir():
        if path.parent.name == "snapshots":  # a Hugging Face cache snapshot: its name is the commit sha
            return f"hub:{path.name}"
        return _weights_hash(path)
    return f"hub:{location}"


def _kind_from_config(location: str) -> str:
    from transformers import AutoConfig

    cfg = AutoConfig.from_pretrained(location, trust_remote_code=False)
    arch = (getattr(cfg, "architectures", None) or [""])[0]
    if arch.endswith("ForSequenceClassification"):
        return "sequence-classification"
    if arch.endswith("ForQuestionAnswering"):
        return "question-answering"
    if getattr(cfg, "is_encoder_decoder", False):
        return "seq2seq"
    return "sentence-embedding"


def _pooling_of(path: Path) -> str:
    cfg = path / "1_Pooling" / "config.json"
    if cfg.is_file():
        data = json.loads(cfg.read_text())
        if data.get("pooling_mode_cls_token"):
            return "cls"
        if data.get("pooling_mode_max_tokens"):
            return "max"
    return "mean"


def _max_seq(path: Path) -> int | None:
    cfg = path / "sentence_bert_config.json"
    if cfg.is_file():
        return json.loads(cfg.read_text()).get("max_seq_length")
    return None


def _is_bilstm(path: Path) -> bool:
    from bertvariants.distillation import is_bilstm_checkpoint

    return is_bilstm_checkpoint(path)


def _bilstm_loaded(path: Path):
    """A Tang et al. BiLSTM student (``python -m bertvariants.train bilstm-student``), which transformers' Auto
    classes cannot load, as a registry ``LoadedModel`` of kind sequence-classification (it runs through
    ``inference.classify`` like any classifier)."""
    from bertvariants import registry
    from bertvariants.distillation import load_student

    student = load_student(path)
    res = registry.Resolution("local", "trained", str(path), str(path))
    return registry.LoadedModel(resolution=res, kind="sequence-classification", model=student.model,
                                tokenizer=student.tokenizer, device="cpu")


def resolve_model(name: str) -> ModelHandle:
    """``lead3`` | ``minilm`` (packaged) | a spaces.yml task key | a local checkpoint dir | a Hub id (online)."""
    from bertvariants import registry

    if name in BASELINES:
        return ModelHandle(name, "lead3", revision="lead3:split_sentences-v1", variant="Baseline", params=0)
    manifest = registry.default_manifest()
    variant_of = {t.key: t.label for t in registry.TABS}
    if name == registry.PACKAGED_NAME:
        loaded = registry.get_packaged("sentence-embedding")
        variant = "Sentence-BERT"
    elif name in manifest.tasks:
        spec = manifest.task(name)
        loaded = registry.get_model(name)  # raises ModelUnavailable with the way to get one
        variant = variant_of.get(spec.tab, spec.tab)
    elif Path(name).expanduser().is_dir():
        path = Path(name).expanduser()
        if not (path / "config.json").is_file():
            raise ValueError(f"{path} is not a checkpoint directory (no config.json)")
        if _is_bilstm(path):
            loaded, variant = _bilstm_loaded(path), "Distillation"
        else:
            loaded = registry.load_checkpoint(str(path), _kind_from_config(str(path)))
            variant = "local checkpoint"
    elif "/" in name and not Path(name).exists():
        if not registry.hub_online():
            raise ValueError(f"{name!r} looks like a Hugging Face Hub id, but the Hub is unreachable (offline). "
                             f"Use a registry name ({registry.PACKAGED_NAME}, lead3, or a spaces.yml task: "
                             f"{', '.join(sorted(manifest.tasks))}) or a local checkpoint directory")
        if not registry.model_allowed(name):  # before even its config is fetched
            raise ValueError(f"{name!r} is not a model named in spaces.yml; set BERTVARIANTS_ALLOW_ANY_MODEL=1 "
                             "to evaluate arbitrary Hub ids")
        loaded = registry.load_checkpoint(name, _kind_from_config(name))
        variant = "Hub checkpoint"
    else:
        raise ValueError(f"unknown model {name!r}: not {registry.PACKAGED_NAME}, lead3, a spaces.yml task "
                         f"({', '.join(sorted(manifest.tasks))}), a local directory or a Hub id")
    loc = Path(loaded.resolution.location)
    kind = "sentence-embedding" if loaded.kind == "feature-extraction" else loaded.kind
    # the longest input the model was trained on: Sentence-Transformers' max_seq_length, the position table,
    # the tokenizer's limit, BERT's 512 (whichever is smallest)
    limits = [_max_seq(loc) if loc.is_dir() else None,
              getattr(loaded.model.config, "max_position_embeddings", None),
              getattr(loaded.tokenizer, "model_max_length", None), 512]
    return ModelHandle(name, kind, loaded, revision=_revision(loaded.resolution.location), variant=variant,
                       params=loaded.num_parameters, pooling=_pooling_of(loc) if loc.is_dir() else "mean",
                       max_length=min(x for x in limits if isinstance(x, int) and x > 0))


def _checkpoint_dir(name: str) -> Path:
    """A local checkpoint directory: as given, or the one a spaces.yml task resolves to here."""
    from bertvariants import registry

    path = Path(name).expanduser()
    if path.is_dir():
        return path
    manifest = registry.default_manifest()
    if name in manifest.tasks:
        location = Path(registry.resolve(name, manifest).location)  # ModelUnavailable says how to build one
        if location.is_dir():
            return location
    raise ValueError(f"{name!r} is not a local directory: the held-out pretraining benchmarks take a checkpoint "
                     "directory (e.g. models/mlm-dynamic, models/electra, models/spanbert) or a spaces.yml task "
                     "served by one")


def _architecture(path: Path) -> str:
    cfg = path / "config.json"
    if not cfg.is_file():
        raise ValueError(f"{path} is not a checkpoint directory (no config.json)")
    return (json.loads(cfg.read_text(encoding="utf-8")).get("architectures") or ["(none recorded)"])[0]


def electra_pair(path: Path) -> tuple[Path, Path]:
    """(generator dir, discriminator dir) of ``path``: a directory holding ``generator/`` and ``discriminator/``
    (what ``python -m bertvariants.train electra`` saves), or a discriminator directory with ``../generator``."""
    if (path / "generator").is_dir() and (path / "discriminator").is_dir():
        gen, disc = path / "generator", path / "discriminator"
    elif (path / "config.json").is_file() and (path.parent / "generator").is_dir() and path.name != "generator":
        gen, disc = path.parent / "generator", path
    else:
        raise ValueError(f"wikipedia-rtd needs an ELECTRA generator and discriminator: a directory holding "
                         f"generator/ and discriminator/ (python -m bertvariants.train electra saves one) or a "
                         f"discriminator directory with ../generator beside it; {path} is neither")
    if (arch := _architecture(disc)) != "ElectraForPreTraining":
        raise ValueError(f"{disc} holds a {arch}, not an ELECTRA discriminator (ElectraForPreTraining)")
    if not (arch := _architecture(gen)).endswith("ForMaskedLM"):
        raise ValueError(f"{gen} holds a {arch}, not a masked-LM generator (*ForMaskedLM)")
    return gen, disc


def resolve_pretraining_model(name: str, bench: tasks.Benchmark) -> ModelHandle:
    """Load what a held-out pretraining benchmark needs: a masked LM (``mlm``), an ELECTRA generator +
    discriminator (``rtd``), or a masked LM with SpanBERT's boundary head ``sbo_head.safetensors`` (``span``).
    A checkpoint without the head the objective needs is refused: a fresh random head would score nonsense."""
    from bertvariants import registry

    path = _checkpoint_dir(name)
    if bench.format == "rtd":
        gen_dir, disc_dir = electra_pair(path)
        disc = registry.load_checkpoint(str(disc_dir), "electra-discriminator")
        gen = registry.load_checkpoint(str(gen_dir), "masked-lm", device=disc.device)
        if gen.model.config.vocab_size != disc.model.config.vocab_size:
            raise ValueError(f"generator vocabulary {gen.model.config.vocab_size} != discriminator vocabulary "
                             f"{disc.model.config.vocab_size}")
        return ModelHandle(name, "electra-rtd", disc, variant="ELECTRA", params=disc.num_parameters,
                           revision=f"discriminator {_weights_hash(disc_dir)}; generator {_weights_hash(gen_dir)}",
                           max_length=disc.model.config.max_position_embeddings, parts={"generator": gen.model})
    arch = _architecture(path)
    if not arch.endswith("ForMaskedLM"):
        raise ValueError(f"{path} holds a {arch}, which has no masked-LM head: {bench.key} needs a *ForMaskedLM "
                         "checkpoint (e.g. models/mlm-dynamic)")
    head = path / "sbo_head.safetensors"
    if bench.format == "span" and not head.is_file():
        raise ValueError(f"{path} has no sbo_head.safetensors: wikipedia-span needs SpanBERT's span-boundary "
                         "head (python -m bertvariants.train spanbert saves it beside the masked LM)")
    loaded = registry.load_checkpoint(str(path), "masked-lm")
    handle = ModelHandle(name, "masked-lm", loaded, revision=_weights_hash(path), variant="local checkpoint",
                         params=loaded.num_parameters, max_length=loaded.model.config.max_position_embeddings)
    if bench.format == "span":
        from bertvariants.train.spanbert import load_span_model

        handle.parts["span_model"] = span = load_span_model(loaded.model, head)
        handle.params, handle.variant = sum(p.numel() for p in span.parameters()), "SpanBERT"
    return handle


# --------------------------------------------------------------------------------------------
# Per-format evaluation: each returns an Outcome
# --------------------------------------------------------------------------------------------
@dataclass
class Outcome:
    metrics: dict[str, float]
    primary_fn: Callable[[np.ndarray], float]  # index array -> primary metric (for the bootstrap)
    records: list[dict]  # per-example predictions, with "error" (higher = worse)
    details: dict
    n: int | None = None  # units scored and resampled when they are not the dataset's examples (corpus blocks)


def _encode(h: ModelHandle, texts, *, batch_size: int, progress: bool):
    from bertvariants.inference import encode

    m = h.loaded
    return encode(m.model, m.tokenizer, list(texts), pooling=h.pooling, batch_size=batch_size,
                  max_length=h.max_length, progress=progress).numpy()


def _features(h: ModelHandle, ds: Dataset, *, batch_size: int, progress: bool) -> np.ndarray:
    """(N, H) for single sentences, (N, 4H) = [u, v, |u−v|, u∗v] for pairs (Sentence-BERT §3)."""
    u = _encode(h, [e.text for e in ds.examples], batch_size=batch_size, progress=progress)
    if ds.examples[0].text_pair is None:
        return u
    v = _encode(h, [e.text_pair for e in ds.examples], batch_size=batch_size, progress=progress)
    return np.concatenate([u, v, np.abs(u - v), u * v], axis=1)


PROBE_CS = (1e-4, 1e-3, 1e-2, 1e-1, 1.0, 10.0)


def _probe_name(n_train: int) -> str:
    solver = "liblinear" if n_train < 1000 else "lbfgs"
    return f"StandardScaler + LogisticRegressionCV(Cs={list(PROBE_CS)}, cv=5, log-loss, {solver})"


def _probe(n_train: int):
    """The linear probe: standardised features -> L2 logistic regression whose strength C is chosen by 5-fold
    cross-validation (log-loss) on the probe's training data (SentEval-style; a fixed C overfits 1,536 pair features).
    liblinear below 1,000 examples (fast there), lbfgs above; unshuffled stratified folds: deterministic."""
    from sklearn.linear_model import LogisticRegressionCV
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    solver = "liblinear" if n_train < 1000 else "lbfgs"
    return make_pipeline(StandardScaler(), LogisticRegressionCV(Cs=list(PROBE_CS), cv=5, max_iter=2000, solver=solver,
                                                                l1_ratios=(0.0,), scoring="neg_log_loss",
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


def _classification(bench, h, ds, *, seed, batch_size, probe_train_size, train_data, progress) -> Outcome:
    y = np.array([e.label for e in ds.examples])
    details: dict = {}
    if h.kind == "sequence-classification":
        import torch

        from bertvariants.inference import classify

        m = h.loaded
        logits = classify(m.model, m.tokenizer, [e.text for e in ds.examples],
                          [e.text_pair for e in ds.examples] if ds.examples[0].text_pair is not None else None,
                          batch_size=batch_size, max_length=h.max_length, progress=progress)
        probs_model = torch.softmax(logits, -1).numpy()
        mapping = _label_map(bench, m.model.config)
        probs = np.zeros((len(y), max(len(bench.labels), probs_model.shape[1])))
        for i, j in enumerate(mapping):
            probs[:, j] += probs_model[:, i]
        details["method"] = "fine-tuned classification head"
        details["label_mapping"] = mapping
    elif h.kind == "sentence-embedding":
        x = _features(h, ds, batch_size=batch_size, progress=progress)
        if bench.probe_split:
            train = _load_train(bench, train_data)
            rng = np.random.default_rng(seed)
            cap = min(probe_train_size, len(train))
            keep = np.sort(rng.permutation(len(train))[:cap])
            train = Dataset(train.task, train.split, train.path, [train.examples[i] for i in keep])
            xt = _features(h, train, batch_size=batch_size, progress=progress)
            yt = np.array([e.label for e in train.examples])
            clf = _probe(len(yt)).fit(xt, yt)
            probs = clf.predict_proba(x)
            details.update(method="linear probe (logistic regression on standardised frozen embeddings, C by 5-fold CV)",
                           probe=_probe_name(len(yt)),
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
    records = [{"id": e.id, "input": _clip(e.text, e.text_pair), "prediction": int(p), "reference": int(t),
                "confidence": round(float(pr.max()), 4), "error": round(1 - float(pr[t]), 4)}
               for e, p, t, pr in zip(ds.examples, pred, y, probs)]
    return Outcome(metrics, lambda idx: primary(pred[idx], y[idx]), records, details)


def _sts(bench, h, ds, *, batch_size, progress, **_) -> Outcome:
    gold = np.array([e.label for e in ds.examples], dtype=np.float64)
    if h.kind == "sentence-embedding":
        u = _encode(h, [e.text for e in ds.examples], batch_size=batch_size, progress=progress)
        v = _encode(h, [e.text_pair for e in ds.examples], batch_size=batch_size, progress=progress)
        pred = (u * v).sum(1)  # unit vectors: the cosine
        method = f"cosine of {h.pooling}-pooled embeddings"
    elif h.kind == "sequence-classification" and h.loaded.model.config.num_labels == 1:
        from bertvariants.inference import classify

        m = h.loaded
        pred = classify(m.model, m.tokenizer, [e.text for e in ds.examples], [e.text_pair for e in ds.examples],
                        batch_size=batch_size, max_length=h.max_length, progress=progress)[:, 0].numpy().astype(np.float64)
        method = "regression head"
    else:
        raise ValueError(f"{bench.key} needs a sentence-embedding model or a 1-output regression head; "
                         f"{h.name} is {h.kind}")
    metrics = {k: glue.FUNCTIONS[k](pred, gold) for k in bench.metrics}
    primary = glue.FUNCTIONS[bench.primary]
    # error: how far apart the example sits in the two rankings (what Spearman's ρ penalises)
    from scipy.stats import rankdata

    rank_gap = np.abs(rankdata(pred) - rankdata(gold)) / len(gold)
    records = [{"id": e.id, "input": _clip(e.text, e.text_pair), "prediction": round(float(p), 4),
                "reference": float(g), "error": round(float(r), 4)}
               for e, p, g, r in zip(ds.examples, pred, gold, rank_gap)]
    return Outcome(metrics, lambda idx: primary(pred[idx], gold[idx]), records, {"method": method})


def _qa(bench, h, ds, *, batch_size, progress, **_) -> Outcome:
    """SQuAD with a QA head: the project's one span decoder (``bertvariants.spanbert.answer_questions``:
    windows with stride, n-best, null threshold), then the official scorer."""
    from bertvariants.spanbert import answer_questions

    if h.kind != "question-answering":
        raise ValueError(f"{bench.key} needs a question-answering model (AutoModelForQuestionAnswering); "
                         f"{h.name} is {h.kind}")
    v2 = bench.key == "squad_v2"
    m = h.loaded
    preds = answer_questions(m.model, m.tokenizer, [e.text for e in ds.examples], [e.text_pair for e in ds.examples],
                             allow_impossible=v2, batch_size=min(batch_size, 16))
    answers = {e.id: p.answer for e, p in zip(ds.examples, preds)}
    if v2:  # a probability-like no-answer score for the official threshold search: sigmoid(s_null − s_best)
        na = {e.id: float(1 / (1 + np.exp(-np.clip(p.null_score - p.best_span_score, -50, 50))))
              for e, p in zip(ds.examples, preds)}
        score = squad_m.squad_v2(ds.raw, answers, na_probs=na)
    else:
        score = squad_m.squad_v1(ds.raw, answers)
    return _squad_outcome(score, ds, answers,
                          {"method": "bertvariants.spanbert.answer_questions: windows (stride 128), n-best 20, "
                                     "null threshold 0" if v2 else "bertvariants.spanbert.answer_questions: windows, n-best 20"})


def _squad_outcome(score, ds: Dataset, answers: dict, details: dict) -> Outcome:
    ids = [e.id for e in ds.examples if e.id in score.f1]
    f1 = np.array([score.f1[q] for q in ids]) * 100
    by_id = {e.id: e for e in ds.examples}
    records = [{"id": q, "input": _clip(by_id[q].text, None), "prediction": answers.get(q, ""),
                "reference": " | ".join(by_id[q].label) or "(no answer)", "error": round(1 - score.f1[q], 4)}
               for q in ids]
    return Outcome({k: v for k, v in score.metrics.items() if not k.endswith("_thresh")},
                   lambda idx: float(f1[idx].mean()), records, {**details, "counts": score.counts})


def _summarization(bench, h, ds, *, batch_size, progress, **_) -> Outcome:
    docs = [e.text for e in ds.examples]
    if h.kind == "lead3":
        preds = [rouge_m.lead(d, 3) for d in docs]
        method = "Lead-3: the first three sentences"
    elif h.kind == "seq2seq":
        preds = generate(h, docs, batch_size=max(1, min(batch_size, 8)), progress=progress)
        method = "model.generate with the checkpoint's generation config"
    else:
        raise ValueError(f"{bench.key} needs a seq2seq model or the lead3 baseline; {h.name} is {h.kind}")
    return _rouge_outcome(bench, ds, preds, {"method": method})


def _rouge_outcome(bench, ds: Dataset, preds: list[str], details: dict) -> Outcome:
    refs = [e.label for e in ds.examples]
    score = rouge_m.rouge(preds, refs)
    per = score.per_example[bench.primary if bench.primary in score.per_example else "rougeLsum"]
    records = [{"id": e.id, "input": _clip(e.text, None), "prediction": p, "reference": r,
                "error": round(1 - float(s) / 100, 4)} for e, p, r, s in zip(ds.examples, preds, refs, per)]
    details = {**details, "rouge": "rouge-score, use_stemmer=True, Lsum on one sentence per line"}
    return Outcome(score.metrics, lambda idx: float(per[idx].mean()), records, details)


def generate(h: ModelHandle, docs: list[str], *, batch_size: int, progress: bool) -> list[str]:
    import torch

    m = h.loaded
    out: list[str] = []
    it = range(0, len(docs), batch_size)
    if progress:
        from tqdm.auto import tqdm

        it = tqdm(it, desc="generate", unit="batch")
    max_len = min(getattr(m.tokenizer, "model_max_length", 1024) or 1024, 1024)
    with torch.inference_mode():
        for i in it:
            enc = m.tokenizer(docs[i:i + batch_size], truncation=True, max_length=max_len, padding=True,
                              return_tensors="pt").to(m.device)
            ids = m.model.generate(**enc)
            out.extend(t.strip() for t in m.tokenizer.batch_decode(ids, skip_special_tokens=True))
    return out


def _long_notes(bench, h, ds, *, seed, batch_size, train_data, progress, **_) -> Outcome:
    """ClinicalBERT §3.4: chunk each note, score chunks, aggregate P = (P_max + P_mean·n/c)/(1 + n/c)."""
    import torch

    from bertvariants.clinical_bert import aggregate_chunk_scores, chunk_note

    m = h.loaded
    if h.kind not in ("sentence-embedding", "sequence-classification"):
        raise ValueError(f"{bench.key} needs a sentence-embedding or sequence-classification model; {h.name} is {h.kind}")
    max_tokens = h.max_length or 512

    def chunks_of(d: Dataset) -> tuple[list[str], np.ndarray]:
        texts, owner = [], []
        for i, e in enumerate(d.examples):
            for ch in chunk_note(m.tokenizer, e.text, max_tokens=max_tokens, max_chunks=100_000):
                texts.append(ch.text), owner.append(i)
        return texts, np.array(owner)

    texts, owner = chunks_of(ds)
    y = np.array([e.label for e in ds.examples])
    details = {"chunk_tokens": max_tokens, "chunks": len(texts), "aggregation": "P = (P_max + P_mean*n/c)/(1 + n/c), c = 2"}
    if h.kind == "sequence-classification":
        from bertvariants.inference import classify

        logits = classify(m.model, m.tokenizer, texts, batch_size=batch_size, max_length=max_tokens, progress=progress)
        mapping = _label_map(bench, m.model.config)
        chunk_p = torch.softmax(logits, -1).numpy()[:, mapping.index(1)]
        details["method"] = "fine-tuned classifier on each chunk"
    else:
        train = _load_train(bench, train_data or ds.path)
        t_texts, t_owner = chunks_of(train)
        yt = np.array([e.label for e in train.examples])[t_owner]
        xt = _encode(h, t_texts, batch_size=batch_size, progress=progress)
        clf = _probe(len(yt)).fit(xt, yt)
        details["probe_C"] = float(np.ravel(clf[-1].C_)[0])
        details["probe"] = _probe_name(len(yt))
        chunk_p = clf.predict_proba(_encode(h, texts, batch_size=batch_size, progress=progress))[:, 1]
        details.update(method="linear probe on chunk embeddings (each chunk labelled with its note's label)",
                       probe_train_split=bench.probe_split, probe_train_notes=len(train), probe_train_chunks=len(t_texts))
    note_p = np.array([aggregate_chunk_scores(chunk_p[owner == i]).probability for i in range(len(y))])
    metrics = clinical_metrics(y, note_p).metrics
    fn = {"auroc": M.clinical.auroc, "auprc": M.clinical.auprc, "rp80": M.clinical.rp80}[bench.primary]
    records = [{"id": e.id, "input": _clip(e.text, None), "prediction": round(float(p), 4), "reference": int(t),
                "chunks": int((owner == i).sum()), "error": round(abs(float(t) - float(p)), 4)}
               for i, (e, p, t) in enumerate(zip(ds.examples, note_p, y))]
    return Outcome(metrics, lambda idx: fn(y[idx], note_p[idx]), records, details)


def _heldout_blocks(h: ModelHandle, ds: Dataset, *, heldout, limit: int | None):
    from .metrics import pretraining as P

    if heldout.block_tokens > (h.max_length or heldout.block_tokens):
        raise ValueError(f"blocks of {heldout.block_tokens} tokens exceed the model's {h.max_length} positions")
    if limit is not None and limit < 1:
        raise ValueError(f"--limit must be ≥ 1, got {limit}")
    return P.heldout_blocks(h.loaded.tokenizer, ds.raw, heldout)[:limit]


def _block_details(ds: Dataset, blocks, heldout, method: str) -> dict:
    return {"method": method, "heldout": asdict(heldout), "blocks": len(blocks), "documents": ds.meta["documents"],
            "heldout_documents": [e.id for e in ds.examples], "bootstrap": "blocks resampled"}


def _held_out_mlm(bench, h, ds, *, batch_size, limit, heldout, **_) -> Outcome:
    """BERT §3.1 masked LM on held-out blocks: mean cross-entropy per masked token (lower is better)."""
    from .metrics import pretraining as P

    blocks = _heldout_blocks(h, ds, heldout=heldout, limit=limit)
    s = P.masked_lm_scores(h.loaded.model, h.loaded.tokenizer, blocks, seed=heldout.mask_seed, batch_size=batch_size)
    details = _block_details(ds, blocks, heldout, "BERT masking (15%, 80/10/10), fixed seed; cross-entropy of the "
                                                  "masked-LM head at the masked positions")
    details.update(masked_tokens=int(s.count.sum()), masked_fraction=round(100 * s.masked_fraction, 3))
    return Outcome(P.mlm_metrics(s), s.mean_loss, s.records, details, n=len(blocks))


def _held_out_rtd(bench, h, ds, *, batch_size, limit, heldout, **_) -> Outcome:
    """ELECTRA §2 on held-out blocks: the generator fills 15% masks, the discriminator flags replaced tokens."""
    from .metrics import pretraining as P

    blocks = _heldout_blocks(h, ds, heldout=heldout, limit=limit)
    s = P.rtd_scores(h.parts["generator"], h.loaded.model, h.loaded.tokenizer, blocks, seed=heldout.mask_seed,
                     batch_size=batch_size)
    details = _block_details(ds, blocks, heldout, "15% of the tokens masked (fixed seed), filled by samples of the "
                                                  "generator (seed + 1); AUROC of the discriminator's P(replaced) "
                                                  "over every non-special token")
    details.update(tokens=len(s.replaced), masked_fraction=round(100 * float(s.masked.sum()) / len(s.replaced), 3))
    return Outcome(P.rtd_metrics(s), s.auroc, s.records, details, n=len(blocks))


def _held_out_span(bench, h, ds, *, batch_size, limit, heldout, **_) -> Outcome:
    """SpanBERT §3.1–3.2 on held-out blocks: span masking (fixed seed), MLM and SBO losses, SBO accuracy."""
    from .metrics import pretraining as P

    blocks = _heldout_blocks(h, ds, heldout=heldout, limit=limit)
    s = P.span_scores(h.parts["span_model"], h.loaded.tokenizer, blocks, seed=heldout.mask_seed,
                      batch_size=min(batch_size, 16))
    details = _block_details(ds, blocks, heldout, "span masking (whole words, lengths ~ Geometric(0.2) clipped at 10, "
                                                  "15% of the words, 80/10/10 per span), fixed seed; MLM from each "
                                                  "token's state, SBO from the span's boundaries")
    details.update(masked_tokens=int(s.sbo.count.sum()), masked_fraction=round(100 * s.sbo.masked_fraction, 3))
    return Outcome(P.span_metrics(s), s.sbo.accuracy, s.sbo.records, details, n=len(blocks))


EVALUATORS = {"single": _classification, "pair": _classification, "sts": _sts, "qa": _qa,
              "summarization": _summarization, "long-note": _long_notes,
              "mlm": _held_out_mlm, "rtd": _held_out_rtd, "span": _held_out_span}


def _clip(text: str, pair: str | None, n: int = 300) -> str:
    s = text if pair is None else f"{text} ||| {pair}"
    return s if len(s) <= n else s[: n - 1] + "…"


# --------------------------------------------------------------------------------------------
# The result record
# --------------------------------------------------------------------------------------------
def versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for pkg in ("torch", "transformers", "scikit-learn", "numpy", "scipy", "rouge-score", "sentence-transformers"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            pass
    return out


def make_result(*, task: str, model: str, split: str, n: int, outcome: Outcome, primary: str, seconds: float,
                device: str, seed: int, data_sha256: str, model_revision: str, variant: str = "",
                params: int | None = None, extra: dict | None = None) -> dict:
    """The JSON result record (metrics in points, bootstrap CI of the primary metric)."""
    iv = M.bootstrap_ci(outcome.primary_fn, n, seed=seed)
    clean = {k: (round(v, 4) if v is not None and math.isfinite(v) else None) for k, v in outcome.metrics.items()}
    return {
        "task": task, "model": model, "split": split, "n": n,
        "metrics": clean, "primary_metric": primary, "score": clean.get(primary), "ci95": iv.as_dict(),
        "examples_per_second": round(n / seconds, 3) if seconds > 0 else None,
        "seconds": round(seconds, 3), "latency_ms": round(1000 * seconds / n, 3) if n else None,
        "device": device, "seed": seed, "data_sha256": data_sha256, "model_revision": model_revision,
        "variant": variant, "params": params, "versions": versions(),
        "timestamp": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "details": outcome.details, **(extra or {}),
    }


def _display_path(path: Path) -> str:
    """Data files under the shared data directory are recorded as ``shared/data/<rel>`` (machine-independent)."""
    try:
        return "shared/data/" + Path(path).resolve().relative_to(tasks.shared_data_dir().resolve()).as_posix()
    except ValueError:
        return str(path)


def run(task: str, model: str, *, data: str | None = None, split: str | None = None, limit: int | None = None,
        batch_size: int = 64, seed: int = DEFAULT_SEED, probe_train_size: int = PROBE_TRAIN_SIZE,
        train_data: str | None = None, progress: bool = True, options: dict | None = None) -> tuple[dict, list[dict]]:
    """Evaluate ``model`` on ``task``; returns (result record, per-example records).

    ``train_data``: the probe's training file when the task's default train file is not available.
    ``options``: the held-out pretraining benchmarks' split settings (names of
    :class:`evaluation.metrics.pretraining.HeldoutConfig`: ``heldout_docs``, ``block_tokens``, ``eval_blocks``,
    ``mask_seed``); the recipes pass their own so that they and the CLI agree. ``limit`` caps blocks there.
    """
    if batch_size < 1:
        raise ValueError(f"--batch-size must be ≥ 1, got {batch_size}")
    bench = tasks.benchmark(task)
    split = split or bench.default_split
    block_kw: dict = {}  # the held-out pretraining evaluators' settings
    if bench.format in tasks.BLOCK_FORMATS:
        from .metrics.pretraining import heldout_config

        heldout = heldout_config(options)
        ds = tasks.load(bench, split, data, heldout_docs=heldout.heldout_docs)
        block_kw = {"limit": limit, "heldout": heldout}
    elif options:
        raise ValueError(f"{bench.key} takes no options (got {', '.join(options)})")
    else:
        ds = tasks.load(bench, split, data).limit(limit)
    if not ds.examples:
        raise ValueError(f"{ds.path.name} has no examples")
    handle = resolve_pretraining_model(model, bench) if block_kw else resolve_model(model)
    device = handle.loaded.device if handle.loaded is not None else "cpu"
    t0 = time.perf_counter()
    outcome = EVALUATORS[bench.format](bench, handle, ds, seed=seed, batch_size=batch_size,
                                       probe_train_size=probe_train_size, train_data=train_data, progress=progress,
                                       **block_kw)
    seconds = time.perf_counter() - t0
    n = outcome.n if outcome.n is not None else len(ds)
    result = make_result(task=bench.key, model=model, split=split, n=n, outcome=outcome, primary=bench.primary,
                         seconds=seconds, device=device, seed=seed, data_sha256=sha256_file(ds.path),
                         model_revision=handle.revision, variant=handle.variant, params=handle.params,
                         extra={"data": _display_path(ds.path), "limit": limit, "source": "measured"})
    return result, outcome.records
