"""The report: merge run directories into ``summary.json`` + a self-contained ``index.html`` (and the
repro files of every failure), and gate a run against a baseline (:mod:`.gate`).

Plain functions; the command line is ``lstm-conformance report`` / ``gate`` (conformance/cli.py). Every file
is written atomically (temp file + rename): a reader never sees half a report. The report reads records and
run.json only: it never imports or runs an adapter.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from ..harness.files import write_json_atomic, write_text_atomic
from .repro_scripts import write_repros
from .runs import load_run
from .summary import build_summary
from .text import printable

__all__ = ["expand_run_dirs", "find_run_dirs", "make_report", "page_size", "run_report", "schema", "validate"]

#: the folder a report over a folder of runs goes to by default, and that is never read as a run
LATEST = "latest"


def schema() -> dict:
    return json.loads(Path(__file__).with_name("schema.json").read_text(encoding="utf-8"))


def validate(summary: dict) -> None:
    """Raise ValueError naming the first schema violation (jsonschema ships with the ``report`` extra)."""
    import jsonschema

    try:
        jsonschema.validate(summary, schema())
    except jsonschema.ValidationError as exc:
        where = "/".join(str(p) for p in exc.absolute_path) or "(top level)"
        raise ValueError(f"summary does not match schema.json at {where}: {exc.message}") from None


def make_report(run_dirs: list[Path], out: Path) -> dict:
    """Read the runs, write ``out``/summary.json, index.html, conventions.md and repro/; return the summary."""
    from .html import render

    if not run_dirs:
        raise ValueError("no run directory given")
    runs = [load_run(Path(d)) for d in run_dirs]
    ids = [r.run_id for r in runs]
    if len(set(ids)) != len(ids):
        raise ValueError(f"the same run id appears twice: {sorted(i for i in set(ids) if ids.count(i) > 1)}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    summary = build_summary(runs)
    write_repros(runs, summary, out)
    validate(json.loads(json.dumps(summary)))
    write_json_atomic(out / "summary.json", summary)
    write_text_atomic(out / "index.html", render(summary, runs))
    from .conventions import build_conventions, conventions_markdown  # the table spec/README.md checks against

    write_text_atomic(out / "conventions.md", conventions_markdown(build_conventions(
        [rec for run in runs for rec in run.records])))
    return summary


def _is_run_dir(d: Path) -> bool:
    return (d / "results.jsonl").exists() or (d / "run.json").exists()


def find_run_dirs(root: Path, exclude=()) -> list[Path]:
    """Run directories directly under ``root`` (holding results.jsonl or run.json), sorted by name, except
    those in ``exclude`` and a folder named ``latest`` (the default report folder)."""
    root = Path(root)
    skip = {Path(e).resolve() for e in exclude}
    if not root.is_dir():
        return []
    return sorted(d for d in root.iterdir()
                  if d.is_dir() and d.resolve() not in skip and d.name != LATEST and _is_run_dir(d))


def expand_run_dirs(paths: list[Path], exclude=()) -> list[Path]:
    """Each path is a run directory, or a folder of run directories (its children that are runs, except
    ``exclude``). ValueError naming the path that is neither."""
    found: list[Path] = []
    for p in map(Path, paths):
        if _is_run_dir(p):
            found.append(p)
            continue
        if not p.is_dir():
            raise ValueError(f"{p}: no such run directory")
        children = find_run_dirs(p, exclude=exclude)
        if not children:
            raise ValueError(f"{p}: neither a run directory (results.jsonl, run.json) nor a folder holding any "
                             "(did any backend run?)")
        found += children
    return found


def page_size(nbytes: int) -> str:
    return f"{nbytes:,} bytes = {nbytes / 1e6:.2f} MB"


def run_report(paths: list[Path], out: Path, stream=None) -> int:
    """``lstm-conformance report PATH... --out OUT``: report over the runs in ``paths`` (see
    :func:`expand_run_dirs`) and print one line (what it merged, the page and its size), then each run's
    problems, one line each (text from the runs is escaped: see :mod:`.text`). ValueError on bad input."""
    stream = stream or sys.stdout
    out = Path(out)
    run_dirs = expand_run_dirs(paths, exclude=[out])
    summary = make_report(run_dirs, out)
    page = out / "index.html"
    counts = ", ".join(f"{n} {v}" for v, n in summary["totals"].items() if n) or "no check"
    ids = printable(", ".join(r["run_id"] for r in summary["runs"]))
    print(f"lstm-conformance report: {len(summary['runs'])} run(s) ({ids}), {len(summary['backends'])} backend(s): "
          f"{counts} -> {printable(page)} ({page_size(page.stat().st_size)})", file=stream)
    for run in summary["runs"]:
        for p in run["problems"]:
            print(f"  run {printable(run['run_id'])} ({run['status']}): {printable(p)}", file=stream)
    return 0
