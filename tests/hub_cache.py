"""A simulated Hugging Face cache for the Space: every Hub id of spaces.yml as a tiny random-weight checkpoint
(6 layers and 12 heads, like the smallest real ones, so that every default request — e.g. attention in layer 6,
head 12 — is valid).

Each entry of :data:`FIXTURES` imitates one real repository: the **same architecture class, tokenizer type and
config conventions** (ALBERT: a sentencepiece-style Unigram tokenizer with ``▁`` pieces and ``[MASK]``; RoBERTa and
BART: byte-level BPE with ``<mask>``; SpanBERT and Bio_ClinicalBERT: cased WordPiece as a bare ``vocab.txt``;
textattack's SST-2 model: ``LABEL_0`` / ``LABEL_1``; DistilBERT: no ``token_type_ids``; Bio_ClinicalBERT: a
pretraining checkpoint (MLM + NSP heads, ``pytorch_model.bin``, a config without ``architectures``) and no
classifier; bart-large-cnn with its generation config; all-MiniLM-L6-v2 with its sentence-transformers files),
written in the real cache layout (``models--org--name/refs/main`` -> ``snapshots/<sha>`` of symlinks into
``blobs/``). Served with ``HF_HUB_CACHE=<dir> HF_HUB_OFFLINE=1``, the app takes the Space's path: random weights
test the plumbing, not quality.

    python -m tests.hub_cache DIR      # build one by hand, then: HF_HUB_CACHE=DIR HF_HUB_OFFLINE=1 python app.py
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import string
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

CORPUS = """The capital of France is Paris. Paris is the largest city of France and its capital.
The quick brown fox jumps over the lazy dog. The chef cooked the meal in the kitchen and served it to the guests.
SpanBERT was developed by researchers at the University of Washington and Facebook AI. It masks contiguous spans
of whole words and predicts each masked token from the boundary of its span. BERT reads text in both directions.
The patient was admitted to the hospital with chest pain and shortness of breath. A cystoscopy was performed.
The surgeon made an incision and the procedure was completed without complications. History of present illness.
This movie was wonderful, a truly great film with brilliant acting. The plot was boring and the ending terrible.
A man is playing a guitar. A woman is slicing an onion. The cat sits on the mat. Two dogs are running in a park.
Scientists discovered a new species of bird in the rainforest. The government announced new rules on Monday.
Machine learning models learn representations of language from large amounts of text on the internet."""
WORDS = sorted(set(re.findall(r"[A-Za-z]+", CORPUS)))
CHARS = string.ascii_letters + string.digits + string.punctuation
SEED = 0


# ----------------------------------------------------------------------------------------------- tokenizers
def wordpiece_vocab(*, cased: bool) -> list[str]:
    """A WordPiece vocabulary: BERT's specials at their usual ids, every printable character alone and as a
    ``##`` continuation (so any text tokenizes), then whole words (lower-cased for an uncased model)."""
    words = sorted({w if cased else w.lower() for w in WORDS})
    chars = CHARS if cased else string.ascii_lowercase + string.digits + string.punctuation
    specials = ["[PAD]"] + [f"[unused{i}]" for i in range(3)] + ["[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    pieces = specials + list(chars) + ["##" + c for c in chars] + words
    return list(dict.fromkeys(pieces))


def write_vocab_txt(out: Path, *, cased: bool) -> None:
    (out / "vocab.txt").write_text("\n".join(wordpiece_vocab(cased=cased)) + "\n", encoding="utf-8")


def save_bert_tokenizer(out: Path, *, cased: bool, cls_name: str = "BertTokenizer") -> None:
    import transformers as tf

    vocab = {p: i for i, p in enumerate(wordpiece_vocab(cased=cased))}
    getattr(tf, cls_name)(vocab=vocab, do_lower_case=not cased).save_pretrained(out)


def save_unigram_tokenizer(out: Path) -> None:
    """ALBERT's tokenizer type: sentencepiece Unigram pieces with the ``▁`` word-start marker, lower-cased."""
    import transformers as tf

    specials = ["<pad>", "<unk>", "[CLS]", "[SEP]", "[MASK]"]
    pieces = ([(s, 0.0) for s in specials] + [("▁" + w.lower(), -8.0) for w in WORDS] + [("▁", -6.0)]
              + [(c, -10.0) for c in string.ascii_lowercase + string.digits + string.punctuation])
    vocab = list({p: (p, s) for p, s in pieces}.values())
    tf.AlbertTokenizer(vocab=vocab, do_lower_case=True).save_pretrained(out)


def byte_level_bpe() -> tuple[dict[str, int], list[tuple[str, str]]]:
    """A byte-level BPE vocabulary and merges trained on the corpus, specials at RoBERTa's ids (``<mask>`` last)."""
    from tokenizers import ByteLevelBPETokenizer

    from bertvariants.ui.bart import EXAMPLE  # the BART tab's default document: whole-word pieces, as in the real
    # 50k vocabulary, so its token count (the summary attribution's limit) is what the real tokenizer gives

    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator([CORPUS, EXAMPLE] * 4, vocab_size=1200, min_frequency=1,
                            special_tokens=["<s>", "<pad>", "</s>", "<unk>"], show_progress=False)
    model = json.loads(bpe.to_str())["model"]
    vocab = dict(model["vocab"])
    vocab["<mask>"] = len(vocab)
    merges = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in model["merges"]]
    return vocab, merges


def save_bpe_tokenizer(out: Path, cls_name: str) -> int:
    import transformers as tf

    vocab, merges = byte_level_bpe()
    getattr(tf, cls_name)(vocab=vocab, merges=merges).save_pretrained(out)
    return len(vocab)


# ----------------------------------------------------------------------------------------------- models
def tiny(cls_name: str, config, out: Path, *, safetensors: bool = True) -> None:
    """A randomly initialised ``transformers.<cls_name>`` saved in ``out`` (as ``pytorch_model.bin``, the format of
    older repositories, when ``safetensors`` is False)."""
    import torch
    import transformers as tf

    torch.manual_seed(SEED)
    model = getattr(tf, cls_name)(config)
    model.save_pretrained(out)
    if not safetensors:
        (out / "model.safetensors").unlink()
        torch.save({k: v.contiguous() for k, v in model.state_dict().items()}, out / "pytorch_model.bin")


def bert_config(vocab_size: int, **kw):
    import transformers as tf

    return tf.BertConfig(vocab_size=vocab_size, hidden_size=36, num_hidden_layers=6, num_attention_heads=12,
                         intermediate_size=37, max_position_embeddings=512, **kw)


def albert(out: Path) -> None:
    import transformers as tf

    save_unigram_tokenizer(out)
    n = len(tf.AutoTokenizer.from_pretrained(out))
    tiny("AlbertForMaskedLM", tf.AlbertConfig(vocab_size=n, embedding_size=16, hidden_size=36, num_hidden_layers=6,
                                              num_attention_heads=12, intermediate_size=37, pad_token_id=0,
                                              bos_token_id=2, eos_token_id=3), out)


def roberta(out: Path) -> None:
    import transformers as tf

    n = save_bpe_tokenizer(out, "RobertaTokenizer")
    tiny("RobertaForMaskedLM", tf.RobertaConfig(vocab_size=n, hidden_size=36, num_hidden_layers=6,
                                                num_attention_heads=12, intermediate_size=37,
                                                max_position_embeddings=514, type_vocab_size=1, pad_token_id=1,
                                                bos_token_id=0, eos_token_id=2), out)


def electra(cls_name: str, hidden: int, heads: int) -> Callable[[Path], None]:
    def build(out: Path) -> None:
        import transformers as tf

        save_bert_tokenizer(out, cased=False, cls_name="ElectraTokenizer")
        cfg = tf.ElectraConfig(vocab_size=len(wordpiece_vocab(cased=False)), embedding_size=24, hidden_size=hidden,
                               num_hidden_layers=6, num_attention_heads=heads, intermediate_size=hidden + 1)
        tiny(cls_name, cfg, out)

    return build


def spanbert_qa(out: Path) -> None:  # the fine-tuned QA model; its tokenizer comes from SpanBERT/spanbert-large-cased
    tiny("BertForQuestionAnswering", bert_config(len(wordpiece_vocab(cased=True))), out)


def spanbert_cased(out: Path) -> None:  # the tokenizer repo: a bare cased vocab.txt beside a BERT config
    write_vocab_txt(out, cased=True)
    bert_config(len(wordpiece_vocab(cased=True))).save_pretrained(out)


def textattack_sst2(out: Path) -> None:  # no label names: transformers' LABEL_0 / LABEL_1
    save_bert_tokenizer(out, cased=False)
    tiny("BertForSequenceClassification", bert_config(len(wordpiece_vocab(cased=False)), num_labels=2), out)


def distilbert_sst2(out: Path) -> None:  # named labels, and a tokenizer without token_type_ids
    import transformers as tf

    save_bert_tokenizer(out, cased=False, cls_name="DistilBertTokenizer")
    cfg = tf.DistilBertConfig(vocab_size=len(wordpiece_vocab(cased=False)), dim=36, n_layers=6, n_heads=12,
                              hidden_dim=37, id2label={0: "NEGATIVE", 1: "POSITIVE"},
                              label2id={"NEGATIVE": 0, "POSITIVE": 1})
    tiny("DistilBertForSequenceClassification", cfg, out)


def bio_clinicalbert(out: Path) -> None:
    """A pretraining checkpoint: MLM + NSP heads (``BertForPreTraining``) in ``pytorch_model.bin``, no classifier, a
    config without ``architectures`` and a bare cased ``vocab.txt`` (no tokenizer config)."""
    write_vocab_txt(out, cased=True)
    tiny("BertForPreTraining", bert_config(len(wordpiece_vocab(cased=True))), out, safetensors=False)
    cfg = json.loads((out / "config.json").read_text())
    cfg.pop("architectures", None)
    (out / "config.json").write_text(json.dumps(cfg, indent=2))


def bart_large_cnn(out: Path) -> None:
    import transformers as tf

    n = save_bpe_tokenizer(out, "BartTokenizer")
    cfg = tf.BartConfig(vocab_size=n, d_model=36, encoder_layers=6, decoder_layers=6, encoder_attention_heads=12,
                        decoder_attention_heads=12, encoder_ffn_dim=37, decoder_ffn_dim=37,
                        max_position_embeddings=1024, pad_token_id=1, bos_token_id=0, eos_token_id=2,
                        decoder_start_token_id=2, forced_bos_token_id=0, forced_eos_token_id=2)
    tiny("BartForConditionalGeneration", cfg, out)
    # bart-large-cnn's generation config (its summarization defaults)
    tf.GenerationConfig(num_beams=4, max_length=142, min_length=56, length_penalty=2.0, no_repeat_ngram_size=3,
                        early_stopping=True, bos_token_id=0, eos_token_id=2, pad_token_id=1,
                        decoder_start_token_id=2, forced_bos_token_id=0, forced_eos_token_id=2).save_pretrained(out)


def minilm_sentence_transformer(out: Path) -> None:
    save_bert_tokenizer(out, cased=False)
    tiny("BertModel", bert_config(len(wordpiece_vocab(cased=False))), out)
    (out / "modules.json").write_text(json.dumps([
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
        {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"}]))
    (out / "sentence_bert_config.json").write_text(json.dumps({"max_seq_length": 256, "do_lower_case": False}))
    (out / "1_Pooling").mkdir()
    (out / "1_Pooling" / "config.json").write_text(json.dumps({
        "word_embedding_dimension": 36, "pooling_mode_cls_token": False, "pooling_mode_mean_tokens": True,
        "pooling_mode_max_tokens": False, "pooling_mode_mean_sqrt_len_tokens": False}))


@dataclass(frozen=True)
class HubFixture:
    repo: str
    build: Callable[[Path], None]  # writes the repository's files into an empty directory
    imitates: str  # the real repository's conventions, in words


FIXTURES: dict[str, HubFixture] = {f.repo: f for f in (
    HubFixture("sentence-transformers/all-MiniLM-L6-v2", minilm_sentence_transformer,
               "BertModel + mean pooling (modules.json, 1_Pooling), uncased WordPiece"),
    HubFixture("albert-base-v2", albert, "AlbertForMaskedLM, factorised embeddings, Unigram (▁) tokenizer, [MASK]"),
    HubFixture("roberta-base", roberta, "RobertaForMaskedLM, byte-level BPE, <mask>, positions offset by 2"),
    HubFixture("google/electra-small-generator", electra("ElectraForMaskedLM", 24, 12),
               "ElectraForMaskedLM, a smaller generator over the discriminator's uncased WordPiece vocabulary"),
    HubFixture("google/electra-small-discriminator", electra("ElectraForPreTraining", 36, 12),
               "ElectraForPreTraining, uncased WordPiece"),
    HubFixture("mrm8488/spanbert-large-finetuned-squadv2", spanbert_qa, "BertForQuestionAnswering (SQuAD 2.0)"),
    HubFixture("SpanBERT/spanbert-large-cased", spanbert_cased, "cased WordPiece vocab.txt and a BERT config"),
    HubFixture("textattack/bert-base-uncased-SST-2", textattack_sst2,
               "BertForSequenceClassification with LABEL_0 / LABEL_1, uncased WordPiece"),
    HubFixture("distilbert-base-uncased-finetuned-sst-2-english", distilbert_sst2,
               "DistilBertForSequenceClassification, NEGATIVE / POSITIVE, no token_type_ids"),
    HubFixture("emilyalsentzer/Bio_ClinicalBERT", bio_clinicalbert,
               "BertForPreTraining weights (MLM + NSP, no classifier), pytorch_model.bin, no architectures, cased"),
    HubFixture("facebook/bart-large-cnn", bart_large_cnn,
               "BartForConditionalGeneration, byte-level BPE, generation_config (4 beams, 56-142 tokens)"),
)}


# ----------------------------------------------------------------------------------------------- the cache
def space_repos(manifest=None) -> dict[str, str]:
    """Every Hub id spaces.yml names (models and tokenizers) with its revision."""
    from bertvariants.serving.manifest import load_manifest

    manifest = manifest or load_manifest()
    repos: dict[str, str] = {}
    for t in manifest.tasks.values():
        for repo in (t.hub, t.tokenizer):
            if repo:
                repos[repo] = t.revision
    return repos


def commit_sha(repo: str) -> str:
    return hashlib.sha1(f"simulated:{repo}".encode()).hexdigest()


def write_snapshot(cache: Path, repo: str, revision: str, files: Path) -> Path:
    """``files`` as a snapshot of ``repo`` in the Hugging Face cache layout: blobs named by content hash,
    ``snapshots/<commit>/…`` symlinks into them, ``refs/<revision>`` holding the commit."""
    root = cache / ("models--" + repo.replace("/", "--"))
    sha = commit_sha(repo)
    snapshot = root / "snapshots" / sha
    (root / "blobs").mkdir(parents=True, exist_ok=True)
    for f in sorted(p for p in files.rglob("*") if p.is_file()):
        data = f.read_bytes()
        blob = root / "blobs" / hashlib.sha256(data).hexdigest()
        blob.write_bytes(data)
        link = snapshot / f.relative_to(files)
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(os.path.relpath(blob, link.parent))
    (root / "refs").mkdir(exist_ok=True)
    (root / "refs" / revision).write_text(sha)
    return snapshot


def build_hub_cache(cache: Path, manifest=None) -> dict[str, Path]:
    """Every Hub id of spaces.yml written into ``cache``; KeyError names an id without a :data:`FIXTURES` entry."""
    made = {}
    for repo, revision in space_repos(manifest).items():
        if repo not in FIXTURES:
            raise KeyError(f"spaces.yml names the Hub id {repo!r} but tests/hub_cache.py has no fixture for it: add a "
                           "HubFixture imitating its architecture class, tokenizer type and config conventions")
        with tempfile.TemporaryDirectory() as tmp:
            FIXTURES[repo].build(Path(tmp))
            made[repo] = write_snapshot(cache, repo, revision, Path(tmp))
    return made


# ----------------------------------------------------------------------------------------------- the app on it
def space_env(hub_cache: Path, models_dir: Path, **extra) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BERTVARIANTS_MODEL_")}
    env.update(HF_HUB_CACHE=str(hub_cache), HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1",
               BERTVARIANTS_MODELS_DIR=str(models_dir), OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1", **extra)
    return env


class SpaceApp:
    def __init__(self, url: str, log: Path, proc: subprocess.Popen):
        self.url, self.log, self.proc = url, log, proc

    @property
    def output(self) -> str:
        return self.log.read_text(errors="replace")


def start_space_app(hub_cache: Path, tmp: Path, *, without_spaces: bool = False) -> SpaceApp:
    """``python app.py`` served from the simulated cache with the ZeroGPU start-up path (module-scope loading)."""
    import httpx

    from .conftest import REPO, free_port

    port = free_port()
    log = tmp / "app.log"
    env = space_env(hub_cache, tmp / "models", BERTVARIANTS_PRELOAD="1", GRADIO_SERVER_PORT=str(port))
    cmd = [sys.executable, "app.py"]
    if without_spaces:  # as if the spaces package were not installed: `import spaces` raises ImportError
        cmd = [sys.executable, "-c", "import runpy, sys; sys.modules['spaces'] = None; "
                                     "runpy.run_path('app.py', run_name='__main__')"]
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    deadline = time.time() + 240
    while time.time() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"app.py exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return SpaceApp(url, log, proc)
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    proc.kill()
    raise AssertionError(f"app.py did not answer within 240 s:\n{log.read_text()[-3000:]}")


def stop(app: SpaceApp) -> None:
    app.proc.terminate()
    try:
        app.proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        app.proc.kill()



if __name__ == "__main__":
    target = Path(sys.argv[1] if len(sys.argv) > 1 else "hub-cache")
    for repo, path in build_hub_cache(target).items():
        print(f"{repo:50s} {path}")
