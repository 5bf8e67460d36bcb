"""``python -m medlib.study run|select``: see :mod:`medlib.study.runner`."""

import sys

from .runner import main

sys.exit(main())
