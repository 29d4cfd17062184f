"""``lstm-conformance diagnose CASE.npz``: which semantic variant reproduces a saved failing case.

The implementation's outputs come from the blob (kept there since blobs carry them); a blob written
before that is replayed on its adapter, which must then be installed here (else ImportError, exit 3).
Exit 0 when one variant explains the case, 1 when none or several do, or the check cannot be diagnosed.
"""

from __future__ import annotations

import argparse

import json
import sys
from pathlib import Path

from reference.variants import catalogue

from ..harness.repro import load_blob
from ..harness.results import CheckKind
from .record import diagnose_check, implementation_output, load_outputs

__all__ = ["run_diagnose"]


def run_diagnose(path: Path, *, budget: float, as_json: bool = False, out=None) -> int:
    out = out or sys.stdout
    meta, case = load_blob(path)
    kind = CheckKind(meta.get("check", "forward"))
    impl, source = load_outputs(path), "the blob"
    if impl is None and kind is not CheckKind.PARAMS:
        from ..adapters import all_names, load
        from ..harness.judge import Target

        if meta["adapter"] not in all_names():
            raise ImportError(f"{path}: holds no implementation outputs and its adapter {meta['adapter']!r} is not "
                              "known here")
        adapter = load(meta["adapter"])
        reason = adapter.unavailable_reason()
        if reason:
            raise ImportError(f"{path}: holds no implementation outputs and adapter {meta['adapter']!r} is not "
                              f"installed here ({reason})")
        got = implementation_output(Target(adapter, meta.get("variant", "default"), meta.get("device", "cpu")),
                                    kind, case)
        impl, source = (got[0] if got else None), f"a new run of {adapter.name}"
    metrics = {}
    if kind is CheckKind.PARAMS:  # the count is not in the blob: the adapter's count is needed
        raise ValueError(f"{path}: a parameter-count blob; its diagnosis is in the run's record")
    diag = diagnose_check(kind, case, impl, metrics, budget=budget)
    if as_json:
        print(json.dumps({"blob": str(path), "outputs_from": source, **diag.to_dict()}, indent=1), file=out)
        return 0 if diag.confident else 1
    by_name = {v.name: v for v in catalogue()}

    def p(*a) -> None:
        print(*a, file=out)

    p(f"diagnose {path}")
    p(f"  case      {meta['adapter']}:{meta.get('variant', 'default')} {meta.get('property', kind.value)}  "
      f"{case.brief()}")
    p(f"  outputs   from {source}")
    ratio = "n/a" if diag.spec_ratio is None else f"{diag.spec_ratio:.3g}"
    p(f"  spec      ratio {ratio} against the spec")
    p(f"  result    {diag.summary()}")
    for name, aliases in zip(diag.variants, diag.aliases):
        parts = [by_name[n] for n in name.split(" + ") if n in by_name]
        p(f"    {name}: " + "; ".join(f"{v.reading} (departs from {v.rule})" for v in parts)
          + (f"  [same output: {', '.join(aliases)}]" if aliases else ""))
    if diag.status == "unexplained":
        p("  closest   " + ", ".join(f"{c['variant']} (ratio {c['ratio']:.3g})" for c in diag.closest
                                     if c["ratio"] is not None))
    return 0 if diag.confident else 1


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r}: must be a number of seconds > 0")
    return value


def add_parser(sub):
    """The ``diagnose`` subcommand's arguments (cli.py wires it)."""
    pd = sub.add_parser("diagnose", help="name the semantic variant that reproduces a saved failing case (.npz)")
    pd.add_argument("blob", metavar="CASE.npz")
    pd.add_argument("--budget", type=_seconds, default=30.0, help="CPU seconds for the search, > 0 (default 30)")
    pd.add_argument("--json", action="store_true", help="print the diagnosis as JSON")
    return pd
