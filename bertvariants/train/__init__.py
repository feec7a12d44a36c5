"""The variant lab: ``python -m bertvariants.train RECIPE [options]``.

One module per recipe; :data:`RECIPES` is the one table the CLI, ``all`` and the tests walk. Each recipe
module defines a frozen config dataclass (documented defaults sized for ≤ 15 min on a 2-core CPU) and
``run(cfg) -> RunReport``; checkpoints land in the registry's models directory (``spaces.yml`` ``models_dir``,
env ``BERTVARIANTS_MODELS_DIR``), where :func:`bertvariants.serving.resolve` finds them as offline defaults.

Nothing is imported or loaded until a recipe runs.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass


@dataclass(frozen=True)
class RecipeSpec:
    name: str  # CLI name
    module: str  # bertvariants.train.<module>
    config: str  # config dataclass name in that module
    builds: tuple[str, ...]  # checkpoint names under the models directory (spaces.yml trained:<name>)
    summary: str
    needs: tuple[str, ...] = ()  # recipes whose checkpoints this one reads (run first by ``all``)
    kwargs: tuple[tuple[str, object], ...] = ()  # fixed keyword arguments of run()
    minutes: int = 15  # wall time of the default config on a 2-core CPU (docs/lab.md's recipe table; rounded up)


RECIPES: tuple[RecipeSpec, ...] = (
    RecipeSpec("sst2-teacher", "sst2_teacher", "Sst2TeacherConfig", ("sst2-teacher",),
               "fine-tune MiniLM on SST-2 (the distillation teacher)", minutes=22),
    RecipeSpec("bilstm-student", "bilstm_student", "BiLSTMStudentConfig", ("distil-student-sst2",),
               "Tang et al. 2019: BiLSTM student of the SST-2 teacher (CE + logit MSE)", needs=("sst2-teacher",),
               minutes=9),
    RecipeSpec("mlm-dynamic", "mlm", "MLMConfig", ("mlm-dynamic",),
               "RoBERTa §4.1: continued MLM pretraining, a fresh mask every time a sequence is seen",
               kwargs=(("masking", "dynamic"),), minutes=6),
    RecipeSpec("mlm-static", "mlm", "MLMConfig", ("mlm-static",),
               "RoBERTa §4.1: the same run with masks fixed once in preprocessing (BERT's static masking)",
               kwargs=(("masking", "static"),), minutes=6),
    RecipeSpec("electra", "electra", "ElectraConfig", ("electra/generator", "electra/discriminator"),
               "Clark et al. 2020: replaced-token detection, small generator + MiniLM discriminator, λ=50",
               minutes=15),  # the budget it is sized for: only a 149-step run was timed here
    RecipeSpec("spanbert", "spanbert", "SpanBertConfig", ("spanbert",),
               "Joshi et al. 2020: span masking + span-boundary objective",
               minutes=15),  # the budget it is sized for: only a 135-step run was timed here
    RecipeSpec("clinical", "clinical", "ClinicalConfig", ("clinical",),
               "Huang et al. 2019: MTSamples Surgery-vs-other classifier, chunk aggregation c=2",
               minutes=10),  # estimate: chunk states of 3,700 notes + the probe; 52 min on a CPU shared by 4 jobs
    RecipeSpec("distil-student", "distil_student", "DistilStudentConfig", ("distil-student",),
               "Sanh et al. 2019: 3-layer student from every other MiniLM layer (sentence-embedding cosine)",
               minutes=10),
    RecipeSpec("squad", "squad", "SquadConfig", ("squad",),
               "Devlin et al. 2019 §4.2: extractive QA on SQuAD v1.0 train (sliding window, no-answer pairs), LoRA",
               minutes=30),
    RecipeSpec("glue", "glue", "GlueConfig", ("glue-rte",),
               "Devlin et al. 2019 §4.1: fine-tune MiniLM on a GLUE task with a train split "
               "(--set task=rte|cola|mrpc|sst2)",
               minutes=5),
    RecipeSpec("albert-student", "albert_student", "AlbertStudentConfig", ("albert-student",),
               "Lan et al. 2019: ALBERT-shaped student (E=128 via SVD, 2 shared layers ×3)", minutes=15),
)


def build_note(name: str) -> str:
    """How long building a recipe's checkpoint takes, with what it needs first (for "model unavailable" messages)."""
    spec = recipe(name)
    note = f"≈ {spec.minutes} min on a 2-core CPU"
    for need in spec.needs:
        note += f", after `python -m bertvariants.train {need}` (≈ {recipe(need).minutes} min)"
    return note


def recipe(name: str) -> RecipeSpec:
    for spec in RECIPES:
        if spec.name == name:
            return spec
    raise ValueError(f"unknown recipe {name!r}; one of: {', '.join(r.name for r in RECIPES)}, all")


def load(spec: RecipeSpec):
    """(module, config class) of a recipe."""
    module = importlib.import_module(f"{__name__}.{spec.module}")
    return module, getattr(module, spec.config)


def run_recipe(name: str, overrides: dict | None = None, *, progress: bool = True):
    """Build the recipe's config from ``overrides`` (None values keep the defaults) and run it."""
    from .config import config_from_args

    spec = recipe(name)
    module, cls = load(spec)
    cfg = config_from_args(cls, overrides or {})
    return module.run(cfg, progress=progress, **dict(spec.kwargs))
