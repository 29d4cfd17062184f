"""``python -m conformance.report [ROOT] [--out OUT]``: ``lstm-conformance report`` over every run directory
under ROOT (default ``reports``), written to OUT (default ``ROOT/latest``)."""

import sys
from pathlib import Path

from ..cli import main


def _argv(args: list[str]) -> list[str]:
    positional = [a for i, a in enumerate(args) if not a.startswith("-") and (i == 0 or args[i - 1] != "--out")]
    roots = positional or ["reports"]
    has_out = any(a == "--out" or a.startswith("--out=") for a in args)
    out = [] if has_out or len(roots) != 1 else ["--out", str(Path(roots[0]) / "latest")]
    return ["report", *args, *([] if positional else roots), *out]


sys.exit(main(_argv(sys.argv[1:])))
