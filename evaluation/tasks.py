"""The one benchmark table: every benchmark's loader, files, metrics, primary metric and label names.

The runner, the CLI, the results store, the leaderboard columns and the tests all read :data:`BENCHMARKS`;
adding a benchmark = one loader in ``loaders.py`` and one row here.

Default data: ``--data`` wins; otherwise the file named in ``files`` under the shared data directory
(:func:`bertvariants.paths.shared_data_dir`: env ``BERTVARIANTS_DATA``, else ``../shared/data`` next to the
repository).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Callable

from bertvariants.paths import shared_data_dir

from . import loaders
from .metrics import pretraining as P

FORMATS = ("single", "pair", "sts", "qa", "summarization", "long-note", "term-map", "mlm", "rtd", "span")
BLOCK_FORMATS = ("mlm", "rtd", "span")  # held-out pretraining: scored on corpus blocks, options = HeldoutConfig


@dataclass(frozen=True)
class Benchmark:
    key: str
    name: str
    family: str  # glue | squad | summarization | clinical | pretraining: groups columns and plots
    format: str  # one of FORMATS: decides how a model is run on it
    metrics: tuple[str, ...]
    primary: str
    loader: Callable[..., loaders.Dataset]  # loader(path, split=...) -> Dataset
    files: dict[str, str]  # split -> path relative to the shared data directory
    default_split: str
    paper: str
    labels: tuple[str, ...] = ()  # class names by label index (for mapping a fine-tuned head's id2label)
    probe_split: str | None = None  # split a linear probe trains on (None: cross-validation on the eval split)
    probe_balanced: bool = False  # weight the probe's classes (a metric that scores both classes, e.g. MCC)
    higher_is_better: bool = True
    notes: str = ""
    aliases: tuple[str, ...] = field(default=())


def _sim(path, *, split="test"):
    return loaders.load_sentence_similarity(path, split=split)


# split -> corpus: "heldout" = the last 6 of the 106-article sample (the default every recipe holds out);
# "enwiki2018" = the last 100 of the 31,906-article 2018 sample (8 JSONL parts), held out by the recipes that
# train on it (mlm --set corpus=enwiki2018)
PRETRAINING_CORPUS = {"heldout": "corpus/enwiki_sample.jsonl", "enwiki2018": "corpus/enwiki2018"}
_HELDOUT = (f"held-out split = the corpus's last {P.HELDOUT_DOCS} documents (split 'enwiki2018': the last "
            f"{P.HELDOUT_DOCS_BY_SPLIT['enwiki2018']} of the 2018 sample; the variant lab's recipes never train on "
            f"them), {P.BLOCK_TOKENS}-token blocks, the first {P.EVAL_BLOCKS}, corruption seed {P.MASK_SEED}; "
            "--limit N scores the first N of them")


BENCHMARKS: tuple[Benchmark, ...] = (
    Benchmark("sst2", "SST-2", "glue", "single", ("accuracy",), "accuracy", loaders.load_sst2,
              {"train": "glue/sst2/train.tsv", "dev": "glue/sst2/dev.tsv"}, "dev",
              "Socher et al. 2013; GLUE (Wang et al. 2019)", labels=("negative", "positive"), probe_split="train"),
    Benchmark("mrpc", "MRPC", "glue", "pair", ("accuracy", "f1"), "accuracy", loaders.load_mrpc,
              {"train": "glue/mrpc/msr_paraphrase_train.txt", "test": "glue/mrpc/msr_paraphrase_test.txt"}, "test",
              "Dolan & Brockett 2005; GLUE", labels=("not_equivalent", "equivalent"), probe_split="train",
              notes="the original MSR release: train 4,076 / test 1,725 pairs (GLUE's dev is carved from train)"),
    Benchmark("stsb", "STS-B", "glue", "sts", ("spearman", "pearson"), "spearman", loaders.load_stsb,
              {"train": "glue/stsb/sts-train.csv", "dev": "glue/stsb/sts-dev.csv"}, "dev",
              "Cer et al. 2017; GLUE", aliases=("sts-b", "sts")),
    Benchmark("rte", "RTE", "glue", "pair", ("accuracy",), "accuracy", loaders.load_rte,
              {"train": "glue/rte/train.tsv", "dev": "glue/rte/dev.tsv"}, "dev", "Dagan et al. 2006 (RTE1-3, 5); GLUE",
              labels=("entailment", "not_entailment"), probe_split="train",
              notes="an embedding model's probe trains on RTE train (2,490 pairs) and is scored on dev"),
    Benchmark("cola", "CoLA", "glue", "single", ("mcc",), "mcc", loaders.load_cola,
              {"train": "glue/cola/train.tsv", "dev": "glue/cola/dev.tsv"}, "dev", "Warstadt et al. 2019; GLUE",
              labels=("unacceptable", "acceptable"), probe_split="train", probe_balanced=True,
              notes="MCC scores both classes: the probe weights them (70% of CoLA is acceptable)"),
    Benchmark("qnli", "QNLI", "glue", "pair", ("accuracy",), "accuracy", loaders.load_qnli,
              {"dev": "glue/qnli/dev.tsv"}, "dev", "Rajpurkar et al. 2016; GLUE",
              labels=("entailment", "not_entailment"),
              notes="no train split here (105k pairs): an embedding model's probe is scored by 10-fold "
                    "cross-validation on dev"),
    Benchmark("squad_v1", "SQuAD v1.1", "squad", "qa", ("exact_match", "f1"), "f1",
              partial(loaders.load_squad, task="squad_v1"), {"dev": "squad/dev-v1.1-slice.json"}, "dev",
              "Rajpurkar et al. 2016", notes="shared data: 8 of the 48 dev articles (2,762 questions, official ids)"),
    Benchmark("squad_v2", "SQuAD v2.0", "squad", "qa",
              ("exact_match", "f1", "HasAns_exact", "HasAns_f1", "NoAns_exact", "NoAns_f1"), "f1",
              partial(loaders.load_squad, task="squad_v2"), {"dev": "squad/dev-v2.0-small.json"}, "dev",
              "Rajpurkar et al. 2018", notes="shared data holds a 14-question excerpt of dev"),
    Benchmark("cnndm", "CNN/DailyMail", "summarization", "summarization", ("rouge1", "rouge2", "rougeL", "rougeLsum"),
              "rougeLsum", partial(loaders.load_summarization, task="cnndm"),
              {"test": "summarization/cnndm_frank/test250.jsonl"}, "test", "Hermann et al. 2015; See et al. 2017",
              notes="shared data: the 250-article FRANK excerpt of the test set"),
    Benchmark("xsum", "XSum", "summarization", "summarization", ("rouge1", "rouge2", "rougeL", "rougeLsum"),
              "rougeLsum", partial(loaders.load_summarization, task="xsum"),
              {"test": "summarization/xsum_frank/test251.jsonl"}, "test", "Narayan et al. 2018",
              notes="shared data: the 251-document FRANK excerpt of the test set"),
    Benchmark("mtsamples", "MTSamples Surgery vs other", "clinical", "long-note", ("auroc", "auprc", "rp80"), "auroc",
              loaders.load_mtsamples, {"train": "clinical/mtsamples_subset.csv",
                                       "test": "clinical/mtsamples_subset.csv",
                                       "all": "clinical/mtsamples_subset.csv"}, "test",
              "Huang et al. 2019 (ClinicalBERT metrics and chunk aggregation); mtsamples.com",
              labels=("other", "Surgery"), probe_split="train",
              notes="long notes, chunked and aggregated with P = (P_max + P_mean·n/c)/(1 + n/c), c = 2; "
                    "fixed stratified 50/50 train/test split of the notes"),
    Benchmark("mtsamples-subset", "MTSamples Surgery vs other: 3,700 training notes → the 322-note subset", "clinical",
              "long-note", ("auroc", "auprc", "rp80"), "auroc", loaders.load_mtsamples_notes,
              {"train": "clinical/mtsamples_train.csv", "test": "clinical/mtsamples_subset.csv"}, "test",
              "Huang et al. 2019 (ClinicalBERT metrics and chunk aggregation); mtsamples.com",
              labels=("other", "Surgery"), probe_split="train",
              notes="test = all 322 notes of the subset (mostly Urology and Surgery); a probe or fine-tune learns from "
                    "the 3,700 disjoint notes over 40 specialties; chunks aggregated with c = 2 as in mtsamples"),
    Benchmark("bioterms", "Biomedical term map: same-category nearest neighbours", "clinical", "term-map",
              ("nn_rate_tsne", "nn_rate_embedding", "chance_rate"), "nn_rate_tsne", loaders.load_terms,
              {"all": "clinical/biomedical_terms.tsv"}, "all",
              "Huang et al. 2019 §3.3 / Fig. 2 (clinical term embeddings clustered by category, t-SNE)",
              notes="500 terms per category (Disease, Chemical), seed 0; embeddings mean-pooled, t-SNE perplexity 30 "
                    "(cosine, seed 0); a term scores 1 when its nearest other term shares its category"),
    Benchmark("biosses", "BIOSSES-style similarity", "clinical", "sts", ("spearman", "pearson"), "spearman", _sim,
              {"test": "clinical/biosses.tsv"}, "test", "Soğancıoğlu et al. 2017",
              notes="format: sentence1, sentence2, score (or annotator columns); no BIOSSES data ships here"),
    Benchmark("wikipedia-mlm", "Wikipedia held-out masked LM", "pretraining", "mlm",
              ("heldout_mlm_loss", "heldout_perplexity", "heldout_mlm_accuracy"), "heldout_mlm_loss",
              partial(loaders.load_corpus, task="wikipedia-mlm"), PRETRAINING_CORPUS, "heldout",
              "Devlin et al. 2019 §3.1 (masked LM, 15% 80/10/10); Liu et al. 2019 §4.1 (static vs dynamic masking)",
              higher_is_better=False,
              notes="any *ForMaskedLM checkpoint; loss = mean cross-entropy per masked token (nats), "
                    "perplexity = e^loss; " + _HELDOUT),
    Benchmark("wikipedia-rtd", "Wikipedia held-out replaced-token detection", "pretraining", "rtd",
              ("auroc", "accuracy", "replaced_fraction", "generator_mlm_accuracy"), "auroc",
              partial(loaders.load_corpus, task="wikipedia-rtd"), PRETRAINING_CORPUS, "heldout",
              "Clark et al. 2020 (ELECTRA) §2",
              notes="model = a directory holding generator/ and discriminator/ (what the electra recipe saves), or a "
                    "discriminator directory beside ../generator; AUROC of P(replaced) over every real token; "
                    + _HELDOUT),
    Benchmark("wikipedia-span", "Wikipedia held-out span boundary objective", "pretraining", "span",
              ("heldout_sbo_accuracy", "heldout_sbo_loss", "heldout_mlm_loss", "heldout_mlm_accuracy"),
              "heldout_sbo_accuracy", partial(loaders.load_corpus, task="wikipedia-span"), PRETRAINING_CORPUS,
              "heldout", "Joshi et al. 2020 (SpanBERT) §3.1 span masking, §3.2 span boundary objective",
              notes="a BertForMaskedLM checkpoint with sbo_head.safetensors (the spanbert recipe's output); "
                    "primary = SBO top-1 accuracy, the objective SpanBERT adds (its span-masked MLM loss is not "
                    "comparable with wikipedia-mlm's token masking); " + _HELDOUT),
)

GLUE_TASKS = tuple(b.key for b in BENCHMARKS if b.family == "glue")


def benchmark(key: str) -> Benchmark:
    k = key.strip().lower()
    for b in BENCHMARKS:
        if k == b.key or k in b.aliases:
            return b
    raise ValueError(f"unknown task {key!r}; one of {', '.join(b.key for b in BENCHMARKS)}")


def data_path(bench: Benchmark, split: str, data: str | os.PathLike | None = None) -> Path:
    """``data`` if given (must exist), else the split's default file in the shared data directory."""
    if data is not None:
        path = Path(data).expanduser()
        if not (path.is_file() or (bench.format in BLOCK_FORMATS and path.is_dir())):  # a corpus may be in parts
            raise ValueError(f"data file not found: {path}")
        return path
    if split not in bench.files:
        raise ValueError(f"{bench.key} has no default file for split {split!r} (known: {', '.join(bench.files)}); "
                         f"pass --data PATH")
    path = shared_data_dir() / bench.files[split]
    if not (path.is_file() or (bench.format in BLOCK_FORMATS and path.is_dir())):
        raise ValueError(f"{bench.key} {split}: default data {path} is not here; pass --data PATH "
                         f"(a file in the task's original format) or set BERTVARIANTS_DATA")
    return path


def load(bench: Benchmark, split: str | None = None, data: str | os.PathLike | None = None,
         **options) -> loaders.Dataset:
    """The split's dataset; ``options`` go to the loader (the pretraining corpus takes ``heldout_docs``)."""
    split = split or bench.default_split
    return bench.loader(data_path(bench, split, data), split=split, **options)
