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

from .cache import CACHE, cached, packaged_tokenizer
from .formats import load_checkpoint
from .loaded import LoadedModel, ModelUnavailable
from .manifest import default_manifest, packaged_model_path
from .resolver import get_model, get_packaged, load
from .sources import describe, resolve

# the API; everything else is imported from its module (serving.manifest.KINDS, serving.formats.LOADERS, …)
__all__ = ["CACHE", "LoadedModel", "ModelUnavailable", "cached", "default_manifest", "describe", "get_model",
           "get_packaged", "load", "load_checkpoint", "packaged_model_path", "packaged_tokenizer", "resolve"]
