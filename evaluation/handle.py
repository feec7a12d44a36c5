"""What the runner evaluates: a model loaded by :mod:`bertvariants.serving` (the one resolver), or a baseline.

``lead3`` (the first three sentences, See et al. 2017) is the only baseline: it runs no model. Everything else
is a name the resolver understands (``minilm``, a spaces.yml task key, a local checkpoint directory, a Hub id);
the held-out pretraining benchmarks ask it for a masked LM, an ELECTRA generator + discriminator pair or a
masked LM with SpanBERT's boundary head.
"""

from __future__ import annotations

from dataclasses import dataclass

from bertvariants import serving
from bertvariants.serving.formats import require_masked_lm
from bertvariants.serving.loaded import revision_of
from bertvariants.serving.sources import checkpoint_dir

from . import tasks

BASELINES = ("lead3",)
PRETRAINING_KINDS = {"mlm": "masked-lm", "rtd": "electra-rtd", "span": "span-mlm"}  # benchmark format -> kind


@dataclass(frozen=True)
class ModelHandle:
    """A loaded model (or a baseline) plus the name it was asked for and the variant it belongs to."""

    name: str  # as given on the command line
    kind: str  # the model's kind (feature extraction counts as sentence-embedding), or "lead3"
    loaded: serving.LoadedModel | None = None
    variant: str = ""
    revision: str = ""
    params: int | None = None

    @property
    def pooling(self) -> str:
        return self.loaded.pooling if self.loaded is not None else "mean"

    @property
    def max_length(self) -> int | None:
        return self.loaded.max_length if self.loaded is not None else None

    @property
    def parts(self) -> dict:
        return self.loaded.parts if self.loaded is not None else {}

    @property
    def device(self) -> str:
        return self.loaded.device if self.loaded is not None else "cpu"


def _handle(name: str, loaded: serving.LoadedModel) -> ModelHandle:
    kind = "sentence-embedding" if loaded.kind == "feature-extraction" else loaded.kind
    return ModelHandle(name, kind, loaded, variant=loaded.variant, revision=loaded.revision or
                       revision_of(loaded.resolution.location), params=loaded.num_parameters)


def resolve_model(name: str, bench: tasks.Benchmark) -> ModelHandle:
    """The model (or baseline) ``name`` as ``bench`` needs it. A pretraining checkpoint without the head its
    objective needs is refused: a fresh random head would score nonsense."""
    if name in BASELINES:
        return ModelHandle(name, "lead3", revision="lead3:split_sentences-v1", variant="Baseline", params=0)
    kind = PRETRAINING_KINDS.get(bench.format)
    if kind == "masked-lm":
        require_masked_lm(checkpoint_dir(name), bench.key)
    return _handle(name, serving.load(name, kind=kind))
