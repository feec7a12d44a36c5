"""Where things live: the repository, the shared data, the results store; and how paths are recorded.

One of each, for every layer (core, evaluation, train, ui) to import:

- :data:`REPO_ROOT`: the repository checkout;
- :func:`shared_data_dir`: the public corpora the tests and the variant lab read (``$BERTVARIANTS_DATA``,
  else ``../shared/data`` beside the repository). The product never needs it;
- :func:`results_dir`: where ``python -m evaluation`` and the variant lab write result JSON and where the
  Leaderboard reads it (``$BERTVARIANTS_RESULTS_DIR``, else ``results/``);
- :func:`portable_path`: how a path is written into a result or a model card, so that records say
  ``shared/data/glue/sst2/dev.tsv`` or ``models/sst2-teacher`` instead of one machine's absolute path.
"""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
DATA_ENV = "BERTVARIANTS_DATA"
RESULTS_ENV = "BERTVARIANTS_RESULTS_DIR"
SHARED_DATA_LABEL = "shared/data"  # how the shared data directory is written in records
RESULTS_DIR = REPO_ROOT / "results"  # the results store in the repository (the default of results_dir())


def shared_data_dir() -> Path:
    """``$BERTVARIANTS_DATA`` or ``../shared/data`` next to the repository (it may not exist: check it)."""
    env = os.environ.get(DATA_ENV)
    return Path(env).expanduser() if env else REPO_ROOT.parent / "shared" / "data"


def shared_data_present() -> bool:
    return shared_data_dir().is_dir()


def results_dir() -> Path:
    """Where results are written and the Leaderboard reads them: ``$BERTVARIANTS_RESULTS_DIR`` or ``results/``."""
    env = os.environ.get(RESULTS_ENV)
    return Path(env).expanduser() if env else RESULTS_DIR


def portable_path(path: str | os.PathLike) -> str:
    """``shared/data/<rel>`` for a file in the shared data, ``<rel>`` for a path in the repository, else the
    path as given. Records are shared between machines; absolute machine paths are not.

    >>> portable_path(REPO_ROOT / "models" / "sst2-teacher")
    'models/sst2-teacher'
    """
    resolved = Path(path).expanduser().resolve()
    try:
        return f"{SHARED_DATA_LABEL}/" + resolved.relative_to(shared_data_dir().resolve()).as_posix()
    except ValueError:
        pass
    try:
        return resolved.relative_to(REPO_ROOT.resolve()).as_posix()
    except ValueError:
        return str(path)


def portable_text(text: str) -> str:
    """``text`` with the shared data directory's absolute path written as ``shared/data`` (data descriptions)."""
    base = str(shared_data_dir().resolve())
    return text.replace(base, SHARED_DATA_LABEL)
