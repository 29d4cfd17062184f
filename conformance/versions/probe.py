"""``python -m conformance.versions.probe CASE.npz``: replay one saved case in this environment and print one
JSON line (outcome, ratio, message, the framework versions), for ``bisect`` to read. Never a traceback: a
case that cannot run here says why in ``message``."""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path

__all__ = ["probe", "main"]


def probe(path: Path) -> dict:
    from ..harness.repro import replay
    from ..harness.results import Verdict

    records: list = []
    text = io.StringIO()
    try:
        replay(path, out=text, records=records)
    except ImportError as exc:  # the adapter is unknown or its framework does not import here
        return {"outcome": "unavailable", "message": str(exc).splitlines()[0]}
    except Exception as exc:  # noqa: BLE001 - the suite itself could not run here (not the framework's answer)
        first = (str(exc).strip().splitlines() or [""])[0]
        return {"outcome": "error", "message": f"the suite failed here: {type(exc).__name__}: {first}"}
    if not records:
        lines = [ln.strip() for ln in text.getvalue().splitlines() if ln.strip().startswith("result")]
        return {"outcome": "skip", "message": lines[-1] if lines else "no result recorded"}
    rec = records[-1]
    outcome = {Verdict.PASS: "pass", Verdict.FAIL: "fail", Verdict.XFAIL: "fail", Verdict.CRASH: "crash",
               Verdict.INCONCLUSIVE: "inconclusive", Verdict.SKIP: "skip"}[rec.verdict]
    ratio, _ = rec.ratio
    return {"outcome": outcome, "verdict": rec.verdict.value, "ratio": ratio, "message": rec.message,
            "versions": rec.versions}


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print(json.dumps({"outcome": "crash", "message": "usage: python -m conformance.versions.probe CASE.npz"}))
        return 2
    print(json.dumps(probe(Path(args[0]))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
