"""``glue``: fine-tune MiniLM on one GLUE task that has a train split here (BERT §4.1), scored on its dev split.

``--set task=rte`` (default), ``cola``, ``mrpc`` or ``sst2`` (``sst2-teacher`` is the tuned SST-2 run). Single
sentences and pairs alike go in as BERT's ``[CLS] A [SEP] B [SEP]`` with the [CLS] state's classifier
(``BertForSequenceClassification``); the labels are the harness's (:data:`evaluation.tasks.BENCHMARKS`), so the
result row sits on the Leaderboard beside the frozen-MiniLM probe of the same task and the papers' rows. CoLA's
MCC scores both classes: ``balanced`` weights the loss by inverse class frequency (on by default there, as the
probe's ``probe_balanced``). Output ``models/glue-<task>`` (compact LoRA form).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from evaluation import tasks

from .classifier import fine_tune, label_config, trainable_classifier
from .config import TrainConfig, base_model_path, output_dir
from .data import BucketSampler, data_file
from .loop import seed_everything
from .records import RunReport, finish, harness

TASKS = ("rte", "cola", "mrpc", "sst2")


@dataclass(frozen=True)
class GlueConfig(TrainConfig):
    task: str = "rte"
    steps: int = 300
    batch_size: int = 32
    lr: float = 5e-4  # LoRA's rate
    lora_rank: int = 16
    max_length: int = 128
    cpu_bf16: bool = True
    freeze_word_embeddings: bool = True
    balanced: bool | None = None  # class-weighted loss (None: the benchmark's probe_balanced, i.e. CoLA)


def pair_batches(tokenizer, examples, *, batch_size: int, max_length: int, seed: int):
    """Seeded length-bucketed batches of (text, text_pair) examples with gold labels (dynamic padding)."""
    lengths = [len(e.text) + len(e.text_pair or "") for e in examples]
    for idx in BucketSampler(lengths, batch_size, seed=seed):
        chosen = [examples[i] for i in idx]
        pairs = [e.text_pair for e in chosen] if chosen[0].text_pair is not None else None
        batch = dict(tokenizer([e.text.strip() for e in chosen], pairs, truncation=True, max_length=max_length,
                               padding=True, return_tensors="pt"))
        batch["labels"] = torch.tensor([int(e.label) for e in chosen])
        yield batch


def weighted_loss(weights: torch.Tensor | None):
    def loss_fn(model, batch: dict) -> dict:
        out = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                    token_type_ids=batch.get("token_type_ids"))
        logits = out.logits.float()
        w = weights.to(logits.device) if weights is not None else None
        loss = torch.nn.functional.cross_entropy(logits, batch["labels"], weight=w)
        return {"loss": loss, "train_acc": (logits.argmax(-1) == batch["labels"]).float().mean()}

    return loss_fn


def run(cfg: GlueConfig, *, progress: bool = True) -> RunReport:
    from transformers import AutoTokenizer, BertForSequenceClassification

    if cfg.task not in TASKS:
        raise ValueError(f"task must be one of {', '.join(TASKS)} (a GLUE task with a train split here), "
                         f"got {cfg.task!r}")
    bench = tasks.benchmark(cfg.task)
    name = f"glue-{bench.key}"
    train_path = data_file(cfg, bench.files["train"], what=f"{bench.name} train")
    dev_path = data_file(cfg, bench.files[bench.default_split], what=f"{bench.name} {bench.default_split}")
    seed_everything(cfg.seed)
    base = base_model_path(cfg)
    tokenizer = AutoTokenizer.from_pretrained(base)
    labels = label_config(bench.labels)
    model = trainable_classifier(BertForSequenceClassification.from_pretrained(base, **labels), cfg)
    train = tasks.load(bench, "train", train_path)
    counts = torch.bincount(torch.tensor([int(e.label) for e in train.examples]), minlength=len(bench.labels)).float()
    balanced = bench.probe_balanced if cfg.balanced is None else cfg.balanced
    weights = counts.sum() / (len(counts) * counts.clamp(min=1)) if balanced else None
    batches = pair_batches(tokenizer, train.examples, batch_size=cfg.batch_size, max_length=cfg.max_length,
                           seed=cfg.seed)
    out = output_dir(cfg, name)
    result = fine_tune(model, batches, cfg, name=name, tokenizer=tokenizer, out=out, labels=labels,
                       loss_fn=weighted_loss(weights), progress=progress)
    scored = harness(bench.key, out, data=dev_path, split=bench.default_split, limit=cfg.eval_limit)
    epochs = result.steps * cfg.batch_size / len(train)
    return finish(recipe="glue", name=name, title=f"{bench.name}: MiniLM fine-tuned", cfg=cfg, fit=result, out=out,
                  paper="Devlin et al. 2019 §4.1 (GLUE fine-tuning: [CLS] A [SEP] B [SEP] → classifier)",
                  result=scored, variant="BERT",
                  data={"train": f"{train_path} ({len(train)} examples, {epochs:.2f} epochs)",
                        "dev": str(dev_path),
                        "classes": ", ".join(f"{label} {int(c)}" for label, c in zip(bench.labels, counts)),
                        "loss": "class-weighted cross-entropy" if balanced else "cross-entropy"},
                  notes=f"BertForSequenceClassification from all-MiniLM-L6-v2; labels {labels['id2label']}.")
