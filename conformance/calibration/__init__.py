"""Calibration of the error model (NUM-4): how large the ratio of correct backends gets, how far above
it the known semantic slips land, and the K and floor that separate them.

- :mod:`.slips` -- the known slips, as functions on canonical weights and configs
- :mod:`.sampling` -- draw cases and judge them through the harness (``conformance.harness.judge``)
- :mod:`.stats` -- distributions, the K/floor suggestion, the printed tables
- :mod:`.calibrate` -- :func:`run_calibration` and :func:`merge`, behind ``lstm-conformance calibrate``
- :mod:`.false_alarms` -- :func:`run_false_alarms`, behind ``lstm-conformance false-alarms``
"""

from .calibrate import merge, run_calibration
from .false_alarms import run_false_alarms

__all__ = ["merge", "run_calibration", "run_false_alarms"]
