"""The third-party internals this project relies on, in one table each, checked before first use.

A private name of a library (transformers' ``config._attn_implementation``, accelerate's
``AcceleratorState._shared_state``) can change in any release without a deprecation. Each one used here is a row
of a table below, with the parameters the calling code passes and why it is used; :func:`require` checks a
table once per process, the first time the code that needs it runs, and raises RuntimeError naming the
internal, the parameters expected and found, and the installed version — never a silent wrong answer or an
AttributeError deep in a forward pass. ``bertvariants.ui.guard`` checks gradio's table with :func:`problems` at
start-up; ``python -m bertvariants.internals`` checks the tables here.
"""

from __future__ import annotations

import functools
import importlib
import inspect
from dataclasses import dataclass


@dataclass(frozen=True)
class Internal:
    """One internal: ``where`` (a module or ``module.Class``) holds ``name``.

    ``params``: the parameter names the caller relies on, in order (None: an attribute that must exist);
    ``exact=False``: the signature must include them (it may have more). A name set in ``__init__`` (a config
    field) is looked up on a default instance of the class. ``why``: what uses it.
    """

    where: str
    name: str
    params: tuple[str, ...] | None
    why: str
    exact: bool = True

    @property
    def qualname(self) -> str:
        return f"{self.where}.{self.name}"


TRANSFORMERS = (
    Internal("transformers.masking_utils", "create_bidirectional_mask", ("config", "inputs_embeds", "attention_mask"),
             "inference.bert_cls_logits builds the padding mask of a BERT classifier's last layer", exact=False),
    Internal("transformers.modeling_utils.ALL_ATTENTION_FUNCTIONS", "get_interface", ("attn_implementation", "default"),
             "inference.bert_cls_logits runs the configured attention kernel on the [CLS] query only"),
    Internal("transformers.models.bert.modeling_bert", "eager_attention_forward",
             ("module", "query", "key", "value", "attention_mask", "scaling", "dropout"),
             "the kernel bert_cls_logits falls back to (called with dropout= and scaling=)", exact=False),
    Internal("transformers.PretrainedConfig", "_attn_implementation", None,
             "the attention kernel a loaded model was configured with (read by bert_cls_logits)"),
    Internal("transformers.models.bert.modeling_bert.BertLayer", "feed_forward_chunk", ("self", "attention_output"),
             "bert_cls_logits runs the last layer's feed-forward on the [CLS] row only"),
)

ACCELERATE = (
    Internal("accelerate.state.AcceleratorState", "_shared_state", None,
             "train.loop.make_accelerator reads the process-wide mixed-precision choice of the previous recipe"),
    Internal("accelerate.state.AcceleratorState", "_reset_state", ("reset_partial_state",),
             "train.loop.make_accelerator drops that choice when `train all` changes precision", exact=False),
)

TORCH = (
    Internal("torch.Tensor", "_version", None,
             "inference's eager / int8 twins are rebuilt when a weight's version counter moved (an optimizer step)"),
)

TABLES = {"transformers": TRANSFORMERS, "accelerate": ACCELERATE, "torch": TORCH}


def lookup(path: str):
    """The object a dotted path names: the longest importable module prefix, then attributes."""
    parts = path.split(".")
    for i in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:i]))
        except ImportError:
            continue
        for attr in parts[i:]:
            obj = getattr(obj, attr)
        return obj
    raise ImportError(path)


def problems(table: tuple[Internal, ...]) -> list[str]:
    """One line per internal of ``table`` that is missing or whose signature no longer matches."""
    found_problems = []
    for item in table:
        try:
            owner = lookup(item.where)
            obj = getattr(owner, item.name) if hasattr(owner, item.name) else _instance_attribute(owner, item.name)
        except (ImportError, AttributeError):
            found_problems.append(f"{item.qualname} is missing (needed because: {item.why})")
            continue
        if item.params is None:
            continue
        found = tuple(inspect.signature(obj).parameters)  # follows __wrapped__: a patch shows the original
        ok = found == item.params if item.exact else set(item.params) <= set(found)
        if not ok:
            want = ("(" if item.exact else "(at least ") + ", ".join(item.params) + ")"
            found_problems.append(f"{item.qualname} should take {want} but takes ({', '.join(found)}) "
                                  f"(needed because: {item.why})")
    return found_problems


def _instance_attribute(owner, name: str):
    """``name`` on a default instance of the class ``owner`` (attributes set in ``__init__``, e.g. a config's)."""
    if not inspect.isclass(owner):
        raise AttributeError(name)
    return getattr(owner(), name)


def version(package: str) -> str:
    return getattr(importlib.import_module(package), "__version__", "?")


@functools.cache
def require(package: str) -> None:
    """Check ``TABLES[package]`` (once per process); RuntimeError listing every change found."""
    found = problems(TABLES[package])
    if found:
        raise RuntimeError(
            f"bertvariants relies on internals of {package} {version(package)} that changed:\n- "
            + "\n- ".join(found)
            + f"\nInstall the {package} version requirements.txt allows, or update the code named above and "
              f"bertvariants/internals.py's table.")


def main() -> int:
    for package in TABLES:
        require(package)
        print(f"{package} {version(package)}: {len(TABLES[package])} internals as expected")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
