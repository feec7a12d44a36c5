"""The one way to get a model: every caller (a tab, ``python -m evaluation``, a training recipe) asks here.

- :func:`get_model` by **task key** of ``spaces.yml`` (the tabs); :func:`resolve` says where it would come from
  without loading it; :func:`describe` says it in one line.
- :func:`load` by **name** (the CLI and the recipes): ``minilm``, a packaged model, a task key, a project model,
  a local checkpoint directory, or a Hub id named in spaces.yml. Returns a :class:`LoadedModel` whose ``variant``
  is the Leaderboard group its results go to.

The package, module by module:

- :mod:`.manifest` — spaces.yml as :class:`TaskSpec` / :class:`Manifest`, and the one table of kinds
  (:data:`~.manifest.KINDS`: Auto class, trained head, shipped architecture per kind);
- :mod:`.sources` — the ordered sources: explicit, Hub cache / Hub, trained (models/), shipped, packaged;
- :mod:`.formats` — the loader table (:data:`~.formats.LOADERS`): each checkpoint format owns its recognition,
  default kind, variant and checks; no module outside this package tests a checkpoint's format;
- :mod:`.shipped` (compact weights in the repository), :mod:`.packaged` (weights in pip packages);
- :mod:`.cache` — the one bounded model cache and the user's cache directory; :mod:`.device` — where models run
  and whether the Hub is reachable; :mod:`.loaded` — what a loaded model is; :mod:`.resolver` — :func:`get_model`
  and :func:`load`.

Nothing here imports gradio, loads a model or touches the network at import time.
"""

from .cache import CACHE, cached, packaged_tokenizer, user_cache_dir
from .formats import (LOADERS, architecture_of, attention_note, is_checkpoint, load_checkpoint, recorded_architecture,
                      require_masked_lm)
from .loaded import LoadedModel, ModelUnavailable, Resolution, UntrainedHead, revision_of
from .manifest import KINDS, PACKAGED_NAME, Manifest, ManifestError, TaskSpec, default_manifest, packaged_model_path
from .packaged import PackageMissing, packaged_model
from .resolver import generic_labels, get_model, get_packaged, load, with_labels
from .sources import checkpoint_dir, describe, hub_tokenizer, local_checkpoint, project_model, resolve, servable

__all__ = ["CACHE", "KINDS", "LOADERS", "PACKAGED_NAME", "LoadedModel", "Manifest", "ManifestError",
           "ModelUnavailable", "PackageMissing", "Resolution", "TaskSpec", "UntrainedHead", "architecture_of",
           "attention_note", "cached", "checkpoint_dir", "default_manifest", "describe", "generic_labels",
           "get_model", "get_packaged", "hub_tokenizer", "is_checkpoint", "load", "load_checkpoint",
           "local_checkpoint", "packaged_model", "packaged_model_path",
           "packaged_tokenizer", "project_model", "recorded_architecture", "require_masked_lm", "resolve",
           "revision_of", "servable", "user_cache_dir", "with_labels"]
