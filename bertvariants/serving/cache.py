"""The one bounded model cache: every model (and every small shared object) loads once per process; and the
user's cache directory, where files derived from models are kept (never the repository).

Nothing here imports gradio or loads a model at import time.
"""

from __future__ import annotations

import logging
import os
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any, Callable

from .manifest import packaged_model_path

log = logging.getLogger(__name__)

CACHE_ENV = "BERTVARIANTS_CACHE_DIR"  # where derived files go (default ~/.cache/bertvariants, XDG_CACHE_HOME honoured)


# transformers builds models under a process-global meta-device context; two loads in two threads at once
# failed with "Cannot copy out of meta tensor; no data!" (found by python -m evaluation.loadtest). So loads run
# one at a time under this one re-entrant lock: a build may itself ask the cache for another object (same
# thread: re-entrant), and with a single lock no two threads can wait on each other.
_LOAD_LOCK = threading.RLock()


class ModelCache:
    """Thread-safe bounded LRU: each model loads once per process.

    Models weigh 1 and at most ``max_items`` stay (``BERTVARIANTS_MAX_MODELS``, default 6); small shared
    objects (tokenizers, decoded sample clips) weigh 0: they never evict a model and are never evicted.
    """

    def __init__(self, max_items: int | None = None):
        self.max_items = max_items or int(os.environ.get("BERTVARIANTS_MAX_MODELS", "6"))
        self._items: OrderedDict[tuple, Any] = OrderedDict()
        self._weights: dict[tuple, int] = {}
        self._lock = threading.Lock()  # guards the dicts only; never held while loading

    def _hit(self, key: tuple) -> tuple[bool, Any]:
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return True, self._items[key]
        return False, None

    def get(self, key: tuple, loader: Callable[[], Any], *, weight: int = 1) -> Any:
        found, value = self._hit(key)  # hits never wait for a load in progress elsewhere
        if found:
            return value
        with _LOAD_LOCK:  # one load at a time, process-wide: from_pretrained is not thread-safe (issue 8)
            found, value = self._hit(key)  # loaded by the request that held the lock before us: load once
            if found:
                return value
            loaded = loader()
            with self._lock:
                self._items[key], self._weights[key] = loaded, weight
                self._evict()
            return loaded

    def _evict(self) -> None:
        while sum(self._weights.values()) > self.max_items:
            evicted = next(k for k in self._items if self._weights[k] > 0)
            del self._items[evicted], self._weights[evicted]
            log.info("model cache full: evicted %s", evicted)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self._weights.clear()

    def __len__(self) -> int:
        return sum(1 for w in self._weights.values() if w > 0)


CACHE = ModelCache()


def cached(key: tuple, build: Callable[[], Any]) -> Any:
    """A small shared object built once per process (weight 0 in :data:`CACHE`: never evicts a model)."""
    return CACHE.get(("object", *key), build, weight=0)


def packaged_tokenizer():
    """The packaged MiniLM's WordPiece tokenizer (BERT's uncased 30,522-token vocabulary, fast: word ids)."""
    def build():
        from transformers import AutoTokenizer

        return AutoTokenizer.from_pretrained(str(packaged_model_path()))

    return cached(("packaged-tokenizer",), build)


def user_cache_dir() -> Path:
    """Where files derived from models are cached (SmolLM2's bf16 copy, RoBERTa's byte-level BPE trained here):
    ``$BERTVARIANTS_CACHE_DIR``, else ``$XDG_CACHE_HOME/bertvariants``, else ``~/.cache/bertvariants`` — never the
    repository (a clone needs no ``models/``)."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "bertvariants"
