"""``lstm-conformance calibrate``: the error-ratio distribution of correct backends -> K and floor (NUM-4).

:func:`run_calibration` measures each backend (:mod:`.sampling`), prints its distributions and the
suggestion (:mod:`.stats`) and optionally writes every number to a JSON file. Backends are calibrated in
their own environments (one framework per process); :func:`merge` combines those JSON files into one
suggestion over all backends.

The suggestion: for each candidate ``floor_ulps``, ``K`` = the smallest power of two >= 4 x the largest
ratio of any correct backend; the floor whose K catches the most slip cases (:mod:`.slips`) is suggested.
"""

from __future__ import annotations

import json
import platform
import sys
import time
from pathlib import Path

from ..harness import errors
from ..harness.files import check_writable, write_json_atomic
from .sampling import MAX_SIZE, calibrate_backend
from .stats import Row, print_backend, print_merged, print_suggestion, suggest, summarise

__all__ = ["MAX_CASES", "merge", "run_calibration"]


#: the most cases per backend (2000, the default, take minutes; a million take days)
MAX_CASES = 1_000_000


def run_calibration(backends: list[str] | None, cases: int, seed: int, json_path: Path | None = None,
                    out=sys.stdout) -> int:
    """Calibrate ``backends`` (default: every installed one) on ``cases`` cases each, drawn from ``seed``;
    print the distributions and the K/floor suggestion to ``out``, and write all numbers to ``json_path``
    (atomically) when given. Returns 0, or 1 when a backend crashed on a case. Before any computation:
    ValueError for ``cases`` outside 1..MAX_CASES or an unknown backend, NotWritable (an OSError) for a
    ``json_path`` that cannot be written."""
    from ..adapters import all_names, available_names

    if not 1 <= cases <= MAX_CASES:
        raise ValueError(f"--cases {cases}: allowed 1..{MAX_CASES:,}")
    names = list(backends) if backends else available_names()
    unknown = [n for n in names if n not in all_names()]
    if unknown:
        raise ValueError(f"--backend {', '.join(unknown)}: not a known adapter; allowed: {', '.join(all_names())}")
    if json_path is not None:
        check_writable(json_path, what="--json", folder=False)
    print(f"lstm-conformance calibrate: {cases} cases per backend, seed {seed}, timesteps/units/input_dim "
          f"<= {MAX_SIZE}; current K = {errors.K:g}, floor_ulps = {errors.FLOOR_ULPS:g}", file=out)
    report = {"K": errors.K, "floor_ulps": errors.FLOOR_ULPS, "cases_requested": cases, "seed": seed,
              "max_size": MAX_SIZE, "python": platform.python_version(), "backends": {}}
    all_rows: list[Row] = []
    all_slips: list[Row] = []
    status = 0
    for name in names:
        t0 = time.perf_counter()
        result = calibrate_backend(name, cases, seed, progress=lambda m: print(m, file=out, flush=True))
        if "unavailable" in result:
            print(f"\n{name}: not installed ({result['unavailable']})", file=out)
            report["backends"][name] = {"unavailable": result["unavailable"]}
            continue
        summary = summarise(result["rows"], result["slips"])
        print_backend(name, result, summary, out=out)
        all_rows += [r for r in result["rows"] if not r.known]
        all_slips += [r for rows in result["slips"].values() for r in rows]
        status = max(status, 1 if result["crashes"] else 0)
        report["backends"][name] = {
            "framework": result["framework"], "variant": result["variant"], "versions": result["versions"],
            "seconds": time.perf_counter() - t0, "summary": summary, "crashes": result["crashes"],
            "rows": [r.to_json() for r in result["rows"]],
            "slip_rows": {s: [r.to_json() for r in rows] for s, rows in result["slips"].items()}}
    if all_rows:
        report["suggestion"] = suggest(all_rows, all_slips)
        print_suggestion(report["suggestion"], out=out)
    if json_path is not None:
        write_json_atomic(json_path, report)
        print(f"numbers written to {json_path}", file=out)
    return status


def _load(path: Path) -> dict:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path}: cannot read a calibration JSON file ({exc})") from None
    if not isinstance(data, dict) or not isinstance(data.get("backends"), dict):
        raise ValueError(f"{path}: not a calibration JSON file (written by lstm-conformance calibrate --json)")
    return data


def merge(paths: list[Path], out=sys.stdout, json_path: Path | None = None) -> dict:
    """Combine calibration JSON files (one per environment) into one suggestion over all backends; print
    it to ``out`` and, when given, write it to ``json_path``. Returns ``{"backends": [...], "suggestion"}``.
    ValueError naming the file for one that is not a calibration JSON file; NotWritable (before reading
    any) for a ``json_path`` that cannot be written."""
    if json_path is not None:
        check_writable(json_path, what="--json", folder=False)
    rows: list[Row] = []
    slips: list[Row] = []
    merged: dict[str, dict] = {}
    for data in [_load(p) for p in paths]:
        for name, b in data["backends"].items():
            if "rows" not in b:
                continue  # the backend was not installed in that environment
            merged[name] = b
            rows += [r for r in map(Row.from_json, b["rows"]) if not r.known]
            slips += [Row.from_json(item) for items in b["slip_rows"].values() for item in items]
    print_merged(merged, out=out)
    result = {"backends": sorted(merged), "suggestion": suggest(rows, slips)}
    print_suggestion(result["suggestion"], out=out)
    if json_path is not None:
        write_json_atomic(json_path, result)
    return result
