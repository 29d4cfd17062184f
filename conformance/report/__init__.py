"""``lstm-conformance report RUN_DIR... [--out reports/latest]``: merge runs into summary.json + index.html.

Also writes, for every failure with a saved case, a copy of its ``.npz`` blob and a short runnable
script under ``<out>/repro/<run>/`` so the report directory is self-sufficient. Every file is written
atomically (temp file + rename): a reader never sees half a report.

``python -m conformance.report REPORTS_ROOT --out REPORTS_ROOT/latest`` merges every run directory found
under REPORTS_ROOT (the tox ``report`` env uses it, so a backend env that did not run is simply absent).
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

from ..recording import replace_atomically, write_json_atomic, write_text_atomic
from .summary import RunData, attach_repro_paths, build_summary, load_run, safe_name

__all__ = ["main", "make_report", "find_run_dirs", "schema", "validate", "write_text_atomic"]


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


def _copy_atomic(src: Path, dst: Path) -> None:
    replace_atomically(dst, lambda tmp: shutil.copyfile(src, tmp))


def _one_line(text) -> str:
    return " ".join(str(text).split())[:200]


def _script(blob_name: str, backend: str, failure: dict, run_id: str) -> str:
    rules = ", ".join(failure.get("rules") or [])
    return (
        "#!/usr/bin/env python3\n"
        f"# Repro of a failed conformance check: {_one_line(backend)} {_one_line(failure.get('property'))} "
        f"[{_one_line(rules)}], run {_one_line(run_id)}.\n"
        "# Rebuilds the framework layer with the saved weights and inputs (the .npz beside this file),\n"
        "# runs it and the reference, and prints the disagreement. Needs lstm-conformance and the framework.\n"
        "import sys\n"
        "from pathlib import Path\n\n"
        "from conformance.repro import main\n\n"
        f"sys.exit(main([str(Path(__file__).resolve().with_name({blob_name!r}))]))\n"
    )


def _write_repros(runs: list[RunData], summary: dict, out: Path) -> dict[str, str]:
    """Copy blobs and write scripts; returns script path (report-relative) -> script text."""
    by_id = {r.run_id: r for r in runs}
    mapping, scripts, written = {}, {}, set()
    for key, b in summary["backends"].items():
        run = by_id[b["run"]]
        for f in b["failures"]:
            rel = f.get("repro")
            if not rel or (b["run"], rel) in mapping:
                continue
            src = (run.run_dir / rel).resolve()
            if not src.is_file() or run.run_dir.resolve() not in src.parents:
                continue
            folder = Path("repro") / safe_name(b["run"])
            blob = folder / safe_name(Path(rel).name)
            script = blob.with_suffix(".py")
            _copy_atomic(src, out / blob)
            text = _script(blob.name, key, f, b["run"])
            write_text_atomic(out / script, text)
            os.chmod(out / script, 0o755)
            mapping[(b["run"], rel)] = {"blob": blob.as_posix(), "script": script.as_posix()}
            scripts[script.as_posix()] = text
            written.update({out / blob, out / script})
    # drop repro files of an earlier report in the same directory (only the kinds this command writes)
    for old in (out / "repro").glob("*/*") if (out / "repro").is_dir() else []:
        if old.suffix in (".npz", ".py") and old not in written:
            old.unlink()
    attach_repro_paths(summary, mapping)
    return scripts


def make_report(run_dirs: list[Path], out: Path) -> dict:
    """Read the runs, write ``out``/summary.json, index.html and repro/; return the summary."""
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
    scripts = _write_repros(runs, summary, out)
    validate(json.loads(json.dumps(summary)))
    write_json_atomic(out / "summary.json", summary)
    write_text_atomic(out / "index.html", render(summary, runs, scripts))
    return summary


def main(args) -> int:
    summary = make_report([Path(r) for r in args.runs], Path(args.out))
    t = summary["totals"]
    print(f"lstm-conformance report: {len(summary['runs'])} run(s), {len(summary['backends'])} backend(s): "
          + ", ".join(f"{n} {v}" for v, n in t.items() if n) + f" -> {Path(args.out) / 'index.html'}")
    for run in summary["runs"]:
        for p in run["problems"]:
            print(f"  run {run['run_id']} ({run['status']}): {p}")
    return 0


def find_run_dirs(root: Path, exclude: list[Path] = ()) -> list[Path]:
    """Run directories directly under ``root`` (holding results.jsonl or run.json), except ``exclude``."""
    root = Path(root)
    skip = {Path(e).resolve() for e in exclude}
    if not root.is_dir():
        return []
    return sorted(d for d in root.iterdir() if d.is_dir() and d.resolve() not in skip and d.name != "latest"
                  and ((d / "results.jsonl").exists() or (d / "run.json").exists()))


def main_all(argv: list[str] | None = None) -> int:
    """``python -m conformance.report ROOT --out OUT``: report over every run found under ROOT."""
    import argparse

    p = argparse.ArgumentParser(prog="python -m conformance.report",
                                description="merge every run directory under ROOT (missing backends are skipped)")
    p.add_argument("root", nargs="?", default="reports")
    p.add_argument("--out", default=None, help="default: ROOT/latest")
    a = p.parse_args(argv)
    out = Path(a.out) if a.out else Path(a.root) / "latest"
    runs = find_run_dirs(Path(a.root), exclude=[out])
    if not runs:
        print(f"lstm-conformance report: no run directory under {a.root} (did any backend env run?)", file=sys.stderr)
        return 2
    print(f"lstm-conformance report: runs found under {a.root}: {', '.join(d.name for d in runs)}")
    try:
        return main(argparse.Namespace(runs=[str(d) for d in runs], out=str(out)))
    except ValueError as exc:
        print(f"lstm-conformance report: error: {exc}", file=sys.stderr)
        return 2
