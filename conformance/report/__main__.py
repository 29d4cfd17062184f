"""``python -m conformance.report [ROOT] [--out OUT]``: report over every run directory under ROOT."""

import sys

from . import main_all

sys.exit(main_all())
