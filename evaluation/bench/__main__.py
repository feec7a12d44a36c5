"""``python -m evaluation.bench`` (the same as ``python -m evaluation bench``)."""

import sys

from . import main

sys.exit(main())
