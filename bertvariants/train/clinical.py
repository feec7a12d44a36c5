"""``clinical``: the long-note classifier of the ClinicalBERT tab (Huang et al. 2019, §3.4) on MTSamples.

Task: is a transcription from the Surgery specialty (vs any other)? Notes are long (often > 512 tokens), so —
as ClinicalBERT does for readmission — each note is cut into chunks (:func:`bertvariants.clinical_bert.chunk_note`),
every chunk is trained with its note's label, and at test time the chunk probabilities are combined with
eq. 4, P = (P_max + P_mean·n/c) / (1 + n/c), c = 2 (:func:`aggregate_chunk_scores`, used by the harness).

Selection happens on the 3,700 training notes themselves (``mtsamples-subset``'s train file): ``heldout`` of them
(stratified, identical transcriptions kept together — MTSamples lists many notes under two specialties) are held
out (:func:`group_split`) and never trained or selected on; the recipe scores the model there and the harness's
frozen-MiniLM linear probe trained on the same training notes (the baseline to beat), then on the 322-note subset.
The split is written beside the model (``notes-train.csv``, ``notes-heldout.csv``) so that
``python -m evaluation run --task mtsamples-subset --model ... --data notes-heldout.csv`` repeats the score.

Two methods: ``head`` (default) keeps MiniLM frozen and trains only BERT's pooler and the classifier on the chunks'
cached [CLS] states, its epochs chosen by 4-fold CV on the training notes (:func:`choose_epochs`); the compact form
is that head alone (``head.safetensors``), the encoder recomputed from the packaged model. ``lora`` trains a LoRA
adapter on every chunk (each step runs the encoder: the GPU bundle's size). Chunks are ``max_length`` tokens; the
saved tokenizer's ``model_max_length`` is the same, so the harness and the tab chunk exactly as training did.
Output: ``models/clinical``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from evaluation import runner, tasks

from ..clinical_bert import aggregate_chunk_scores, chunk_note
from ..inference import run_batched
from .classifier import KIND, fine_tune, label_config, trainable_classifier
from .config import TrainConfig, base_model_path, output_dir
from .data import data_file, text_batches
from .loop import FitResult, seed_everything
from .lora import export_on_frozen_base
from .records import RunReport, finish, harness, save_checkpoint

NAME = "clinical"
LABELS = ("other", "Surgery")  # the harness's mtsamples labels (1 = Surgery)


@dataclass(frozen=True)
class ClinicalConfig(TrainConfig):
    steps: int = 600  # ≈ 1 epoch of the 3,700 notes' ≈ 19k chunks at batch 32
    batch_size: int = 32
    lr: float = 5e-4  # LoRA's rate (full fine-tuning, lora_rank=0, used 5e-5)
    lora_rank: int = 16  # the shipped classifier: a LoRA adapter + head (bertvariants.train.lora)
    max_length: int = 128  # tokens per chunk (with [CLS]/[SEP])
    freeze_word_embeddings: bool = True
    benchmark: str = "mtsamples-subset"  # or "mtsamples" (the 322-note subset's 50/50 split)
    # "head": MiniLM frozen, only BERT's pooler + classifier trained on the chunks' cached [CLS] states (minutes on
    # a CPU); "lora": every chunk through the encoder with a LoRA adapter each step (the GPU bundle's choice)
    method: str = "head"
    heldout: float = 0.2  # share of the 3,700 notes (identical texts kept together) never trained or selected on
    head_epochs: tuple[int, ...] = (3, 10, 30)  # "head": candidates, chosen by 4-fold CV on the training notes
    head_lr: float = 1e-3


def group_split(notes, *, heldout: float, seed: int) -> tuple[list[int], list[int]]:
    """(train, held-out) note indices: a stratified split of ``heldout`` of the notes in which identical
    transcriptions stay together (MTSamples lists many notes twice, e.g. under Surgery and under Orthopedic:
    ~1,700 of the 3,700 are repeats), so no held-out text was ever trained on."""
    import numpy as np
    from sklearn.model_selection import StratifiedGroupKFold

    if not 0 < heldout < 0.5:
        raise ValueError(f"heldout must be in (0, 0.5), got {heldout}")
    y = np.array([int(e.label) for e in notes])
    groups = np.array([e.text.strip() for e in notes])
    folds = StratifiedGroupKFold(n_splits=round(1 / heldout), shuffle=True, random_state=seed)
    train, test = next(folds.split(np.zeros(len(y)), y, groups))
    return sorted(train.tolist()), sorted(test.tolist())


def write_notes(notes, path) -> Path:
    """Notes as an MTSamples CSV the harness reads (``--data`` / ``--train-data`` of ``mtsamples-subset``)."""
    import csv

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow(["", "medical_specialty", "transcription"])
        w.writerows([e.id, LABELS[int(e.label)], e.text] for e in notes)
    return path


def chunk_dataset(tokenizer, notes, *, max_tokens: int) -> tuple[list[str], list[int]]:
    """Every chunk of every note, labelled with its note's label (ClinicalBERT §3.4)."""
    texts, labels = [], []
    for e in notes:
        for ch in chunk_note(tokenizer, e.text, max_tokens=max_tokens, max_chunks=100_000):
            texts.append(ch.text)
            labels.append(int(e.label))
    if len(set(labels)) < 2:
        raise ValueError("MTSamples training notes need both Surgery and other notes")
    return texts, labels


LABEL_CONFIG = label_config(LABELS)
HEAD_FROZEN = ("bert.embeddings.", "bert.encoder.")  # "head": everything but BERT's pooler + the classifier
NOTE_FILES = ("notes-train.csv", "notes-heldout.csv")  # the split, beside the model, in the harness's format


def note_chunks(tokenizer, notes, *, max_tokens: int) -> tuple[list[str], list[list[int]]]:
    """(the distinct chunk texts, each note's chunk indices into them): a note listed twice costs one pass."""
    texts: dict[str, int] = {}
    owned = []
    for e in notes:
        chunks = chunk_note(tokenizer, e.text, max_tokens=max_tokens, max_chunks=100_000)
        owned.append([texts.setdefault(ch.text, len(texts)) for ch in chunks])
    return list(texts), owned


def cls_states(model, tokenizer, texts: list[str], *, max_length: int) -> torch.Tensor:
    """(N, H) last-layer [CLS] states of a frozen BERT: what the pooler of a sequence classifier reads."""
    return run_batched(model.bert, tokenizer, texts, head=lambda m, b: m(**b).last_hidden_state[:, 0],
                       max_length=max_length, batch_size=32)


def head_probs(model, states: torch.Tensor) -> torch.Tensor:
    """P(Surgery) of each chunk from its [CLS] state: the classifier's own pooler → dropout → linear (eval mode)."""
    with torch.no_grad():
        return torch.softmax(model.classifier(model.bert.pooler.dense(states).tanh()), -1)[:, 1]


def note_auroc(model, states, owned, labels) -> float:
    """Note-level AUROC with ClinicalBERT's eq. 4 over each note's chunk probabilities."""
    from sklearn.metrics import roc_auc_score

    p = head_probs(model, states).numpy()
    return 100 * roc_auc_score(labels, [aggregate_chunk_scores(p[idx]).probability for idx in owned])


def train_head(model, states: torch.Tensor, owned, labels, *, epochs: int, cfg) -> FitResult:
    """Train the pooler + classifier (dropout on) on every chunk of every note with its note's label (AdamW, linear
    decay), the encoder never run: the states are cached. The pooler starts fresh and learns on standardised states;
    the standardisation is then folded into its weights (W/σ, b − W·μ/σ), so the saved head reads raw [CLS]
    states."""
    import time

    rows = torch.tensor([i for idx in owned for i in idx])
    y = torch.tensor([int(lab) for idx, lab in zip(owned, labels) for _ in idx])
    mu, sd = states[rows].mean(0), states[rows].std(0) + 1e-6  # (H,)
    const = sd < 1e-4  # [CLS] dimensions that never vary carry nothing; folded W/σ would blow up (inf in fp16)
    x = ((states - mu) / sd).masked_fill(const, 0.0)
    torch.manual_seed(cfg.seed)
    for layer in (model.bert.pooler.dense, model.classifier):
        layer.reset_parameters()
    params = list(model.bert.pooler.parameters()) + list(model.classifier.parameters())
    opt = torch.optim.AdamW(params, lr=cfg.head_lr, weight_decay=cfg.weight_decay)
    per_epoch = -(-len(rows) // cfg.batch_size)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda k: 1 - k / max(1, epochs * per_epoch))
    gen = torch.Generator().manual_seed(cfg.seed)
    curve, start, step = [], time.perf_counter(), 0
    model.train()
    for epoch in range(epochs):
        total = 0.0
        for b in torch.randperm(len(rows), generator=gen).split(cfg.batch_size):
            h = model.bert.pooler.dense(x[rows[b]]).tanh()  # (B, H)
            loss = torch.nn.functional.cross_entropy(model.classifier(model.dropout(h)), y[b])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            total, step = total + loss.item() * len(b), step + 1
        curve.append({"step": step, "loss": total / len(rows), "lr": sched.get_last_lr()[0],
                      "seconds": round(time.perf_counter() - start, 2)})
    model.eval()
    with torch.no_grad():  # fold (x − μ)/σ into the pooler: W x/σ + (b − W μ/σ)
        dense = model.bert.pooler.dense
        dense.weight[:, const] = 0.0  # those inputs were zero in training
        dense.bias -= dense.weight @ (mu / sd)
        dense.weight /= sd
    return FitResult(steps=step, seconds=time.perf_counter() - start, curve=curve, device="cpu", processes=1,
                     planned_steps=step)


def choose_epochs(model, states, notes, owned, cfg) -> dict:
    """The epoch count of :func:`train_head`, by 4-fold stratified CV (identical texts together) on the training
    notes alone: mean note-level AUROC per candidate."""
    import copy

    import numpy as np
    from sklearn.model_selection import StratifiedGroupKFold

    y = np.array([int(e.label) for e in notes])
    folds = list(StratifiedGroupKFold(n_splits=4, shuffle=True, random_state=cfg.seed).split(
        np.zeros(len(y)), y, [e.text.strip() for e in notes]))
    scores = {}
    for epochs in cfg.head_epochs:
        fold_scores = []
        for a, b in folds:
            trial = copy.deepcopy(model)
            train_head(trial, states, [owned[i] for i in a], y[a].tolist(), epochs=epochs, cfg=cfg)
            fold_scores.append(note_auroc(trial, states, [owned[i] for i in b], y[b].tolist()))
        scores[epochs] = round(float(np.mean(fold_scores)), 3)
    return {"epochs": max(scores, key=scores.get), "cv_auroc": scores}


def run(cfg: ClinicalConfig, *, progress: bool = True) -> RunReport:
    from transformers import AutoTokenizer, BertForSequenceClassification

    bench = tasks.benchmark(cfg.benchmark)
    if bench.format != "long-note" or cfg.method not in ("head", "lora"):
        raise ValueError(f"benchmark must be an MTSamples long-note task (mtsamples-subset, mtsamples) and method "
                         f"head or lora, got {cfg.benchmark!r}, {cfg.method!r}")
    path = data_file(cfg, bench.files["train"], what="MTSamples training notes (CSV)")
    test_path = data_file(cfg, bench.files["test"], what="MTSamples test notes (CSV)")
    seed_everything(cfg.seed)
    base = base_model_path(cfg)
    tokenizer = AutoTokenizer.from_pretrained(base)
    tokenizer.model_max_length = cfg.max_length
    notes = tasks.load(bench, "train", path).examples
    train_idx, held_idx = group_split(notes, heldout=cfg.heldout, seed=cfg.seed) if cfg.heldout else (
        list(range(len(notes))), [])
    train = [notes[i] for i in train_idx]
    model = BertForSequenceClassification.from_pretrained(base, **LABEL_CONFIG)
    out = output_dir(cfg, NAME)
    chosen: dict = {}
    if cfg.method == "head":
        texts, owned = note_chunks(tokenizer, train, max_tokens=cfg.max_length)
        states = cls_states(model, tokenizer, texts, max_length=cfg.max_length)
        chosen = choose_epochs(model, states, train, owned, cfg)
        result = train_head(model, states, owned, [e.label for e in train], epochs=chosen["epochs"], cfg=cfg)
        if cfg.base_model:  # the compact form rebuilds its encoder from the packaged model: not this one
            save_checkpoint(model, tokenizer, out)
        else:
            export_on_frozen_base(model, out, frozen=HEAD_FROZEN, name=NAME, kind=KIND, base="minilm",
                                  config=LABEL_CONFIG, recipe=NAME, max_length=cfg.max_length)
        chunks, positives = len(texts), None
    else:
        texts, labels = chunk_dataset(tokenizer, train, max_tokens=cfg.max_length)
        batches = text_batches(tokenizer, texts, labels, batch_size=cfg.batch_size, max_length=cfg.max_length,
                               seed=cfg.seed)
        result = fine_tune(trainable_classifier(model, cfg), batches, cfg, name=NAME, tokenizer=tokenizer, out=out,
                           labels=LABEL_CONFIG, progress=progress)
        chunks, positives = len(texts), sum(labels)
    return score_and_finish(cfg, bench, out, result, notes=notes, split=(train_idx, held_idx), test_path=test_path,
                            path=path, chosen=chosen, chunks=chunks, positives=positives, runner=runner)


def score_and_finish(cfg, bench, out, result, *, notes, split, test_path, path, chosen, chunks, positives,
                     runner) -> RunReport:
    """Harness rows: the held-out notes of the 3,700 (the primary record; and the frozen-MiniLM probe trained on
    the same training notes, the baseline to beat), then the 322-note subset."""
    train_idx, held_idx = split
    subset = harness(bench.key, out, data=test_path, split="test", limit=cfg.eval_limit)
    scored, extra = subset, {}
    if held_idx:
        files = [write_notes([notes[i] for i in idx], out / f) for idx, f in zip(split, NOTE_FILES)]
        scored = harness(bench.key, out, data=files[1], split="heldout", limit=cfg.eval_limit)
        probe = runner.run(bench.key, cfg.base_model or "minilm", data=str(files[1]), split="heldout",
                           train_data=str(files[0]), limit=cfg.eval_limit, progress=False).result.to_dict()
        extra = {"probe_heldout": {k: probe[k] for k in ("model", "score", "ci95", "metrics", "details")},
                 "subset": {k: subset[k] for k in ("split", "n", "score", "ci95", "metrics", "data_sha256")}}
    scored = {**scored, "details": {**scored.get("details", {}), **extra, **({"head": chosen} if chosen else {})}}
    notes_line = "Labels: 0 = other, 1 = Surgery. Score a note with `bertvariants.clinical_bert.score_note`."
    if cfg.method == "head":
        notes_line += (f" MiniLM frozen: only BERT's pooler and the classifier were trained, on the [CLS] states of "
                       f"the training notes' chunks, for {chosen['epochs']} epochs (chosen by 4-fold CV on the "
                       f"training notes: mean AUROC by epochs {chosen['cv_auroc']}).")
    if extra:
        notes_line += (f" Held-out notes: {len(held_idx)} of the 3,700 (stratified, identical texts kept together; "
                       f"`{NOTE_FILES[1]}`), never trained or selected on: AUROC {scored['score']:.2f} (95% CI "
                       f"{scored['ci95']['low']:.2f}–{scored['ci95']['high']:.2f}); the frozen-MiniLM linear probe "
                       f"trained on the same {len(train_idx)} notes: {extra['probe_heldout']['score']:.2f} "
                       f"({extra['probe_heldout']['ci95']['low']:.2f}–{extra['probe_heldout']['ci95']['high']:.2f}). "
                       f"The 322-note subset: {subset['score']:.2f} ({subset['ci95']['low']:.2f}–"
                       f"{subset['ci95']['high']:.2f}).")
    data = {"notes": f"{path} (harness task {bench.key}: {len(train_idx)} training notes)",
            "chunks": f"{chunks} chunks of ≤ {cfg.max_length} tokens" + (f", {positives} from Surgery notes"
                                                                           if positives is not None else ""),
            "evaluation": (f"{len(held_idx)} held-out notes of the same file ({NOTE_FILES[1]}); " if held_idx else "")
                          + f"{test_path} (the 322-note subset)"}
    return finish(recipe=NAME, name=NAME, title="MTSamples Surgery-vs-other long-note classifier (MiniLM)", cfg=cfg,
                  fit=result, out=out, result=scored, variant="ClinicalBERT",
                  paper="Huang et al. 2019 (ClinicalBERT) §3.4 chunked notes, eq. 4 aggregation with c = 2",
                  data=data, notes=notes_line)
