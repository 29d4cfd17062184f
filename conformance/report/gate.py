"""``lstm-conformance gate --baseline BASE RUN``: fail a CI job when a run regressed against a baseline.

Each argument is a ``summary.json`` written by ``lstm-conformance report``, a report directory holding one,
or a run directory (``results.jsonl`` + ``run.json``, also one written by an older lstm-conformance),
summarized on the fly. Exit 0: nothing regressed. Exit 1: a readable list of regressions. Exit 2: unusable
input.

A regression is, per backend present in the baseline:
- a new failure: a property (and the rules it cites) with failing (fail/crash) checks now and none in the
  baseline; known disagreements recorded as xfail are not failures;
- a crashed backend: its run was killed, interrupted or left a truncated results.jsonl, where the
  baseline's had finished; or it vanished from the run, or is no longer installed;
- a disappeared check: a property that executed checks in the baseline and executes none now;
- a worse error ratio: per (backend, property) the p99 or max ratio grew by more than ``ratio_factor``
  (default 4). Ratios below 1 (as accurate as the reference in the dtype itself) count as 1, so noise
  among near-exact results is not a regression.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path

from ..harness.results import Verdict
from . import validate
from .runs import load_run
from .summary import SCHEMA_VERSION, build_summary

__all__ = ["Regression", "compare", "load_summary", "run_gate"]

_INCOMPLETE = ("killed", "interrupted", "unknown")
_NOTES_PER_RUN = 5


@dataclass(frozen=True)
class Regression:
    kind: str  # NEW FAILURE | CRASHED | DISAPPEARED | RATIO
    backend: str
    text: str

    def __str__(self) -> str:
        return f"  {self.kind:<12} {self.backend}: {self.text}"


def _summary_file(path: Path) -> dict:
    if not path.is_file():
        raise ValueError(f"{path}: no such summary (give a summary.json, the report directory holding one, or a "
                         "run directory)")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(data, dict) or "schema_version" not in data:
        raise ValueError(f"{path}: not an lstm-conformance summary.json (no schema_version)")
    if data["schema_version"] != SCHEMA_VERSION:
        raise ValueError(f"{path}: summary schema {data['schema_version']!r}, this gate reads schema {SCHEMA_VERSION}"
                         ": give the gate the run directories themselves, or rebuild the summary with "
                         "`lstm-conformance report RUN_DIR... --out DIR`")
    return data


def load_summary(path: str | Path) -> dict:
    """A validated summary; ValueError (exit 2) naming the problem otherwise."""
    path = Path(path)
    if path.is_dir() and not (path / "summary.json").exists() and (
            (path / "results.jsonl").exists() or (path / "run.json").exists()):
        data = build_summary([load_run(path)])
        where = path
    else:
        where = path / "summary.json" if path.is_dir() else path
        data = _summary_file(where)
    try:
        validate(json.loads(json.dumps(data)))
    except ImportError:  # jsonschema (the ``report`` extra) missing: check the keys the gate reads
        if not all(isinstance(data.get(k), dict) for k in ("backends", "rules")):
            raise ValueError(f"{where}: summary lacks backends/rules") from None
    except ValueError as exc:
        raise ValueError(f"{where}: {exc}") from None
    return data


def _failing(counts: dict) -> int:
    return sum(counts.get(v.value, 0) for v in Verdict if v.failing)


def _executed(counts: dict) -> int:
    return sum(counts.get(v.value, 0) for v in Verdict if v.executed)


def _first_failure(backend: dict, prop: str) -> str:
    for f in backend.get("failures", []):
        if f.get("property") == prop and Verdict(f["verdict"]).failing:
            msg = " ".join(str(f.get("message", "")).split())
            where = f" (repro: {f['script']})" if f.get("script") else ""
            return (msg[:240] + ("..." if len(msg) > 240 else "")) + where
    return ""


def _rules_of(backend: dict, prop: str) -> list[str]:
    rules: list[str] = []
    for f in backend.get("failures", []):
        if f.get("property") == prop:
            rules += [r for r in f.get("rules", []) if r not in rules]
    return rules


def _status(name: str, b: dict, r: dict) -> list[Regression]:
    if r["status"] in _INCOMPLETE and b["status"] not in _INCOMPLETE:
        detail = "; ".join(r.get("problems") or []) or f"run status {r['status']}"
        return [Regression("CRASHED", name, f"run {r['status']} (baseline finished): {detail}")]
    if r["status"] == "unavailable" and b["status"] != "unavailable":
        return [Regression("DISAPPEARED", name, f"not installed in the run: {r.get('unavailable')}")]
    return []


def _new_failures(name: str, b: dict, r: dict) -> list[Regression]:
    """Per property, naming the rules the failing checks cite; then rules failing now and not before."""
    out = []
    for prop, counts in sorted(r["properties"].items()):
        before = b["properties"].get(prop, {})
        if _failing(counts) and not _failing(before):
            was = ", ".join(f"{before[v.value]} {v.value}" for v in Verdict
                            if not v.failing and before.get(v.value)) or "absent"
            msg = _first_failure(r, prop)
            out.append(Regression("NEW FAILURE", name,
                                  f"{prop} [{', '.join(_rules_of(r, prop))}]: {_failing(counts)} failing check(s) "
                                  f"(baseline: {was})" + (f"\n{'':15}{msg}" if msg else "")))
    newly = [rid for rid, c in r["rules"].items() if _failing(c) and not _failing(b["rules"].get(rid, {}))]
    if newly:
        out.append(Regression("NEW FAILURE", name, f"rules failing now and not in the baseline: {', '.join(newly)}"))
    return out


def _disappeared(name: str, b: dict, r: dict) -> list[Regression]:
    out = []
    for prop, before in sorted(b["properties"].items()):
        if _executed(before) and not _executed(r["properties"].get(prop, {})):
            now = r["properties"].get(prop)
            why = "absent from the run" if now is None else f"now {now.get(Verdict.SKIP.value, 0)} skipped"
            out.append(Regression("DISAPPEARED", name, f"{prop}: {_executed(before)} checks in the baseline, "
                                                       f"none executed ({why})"))
    return out


def _ratios(name: str, b: dict, r: dict, ratio_factor: float) -> list[Regression]:
    out = []
    for prop, st in sorted(r.get("ratios_by_property", {}).items()):
        bst = b.get("ratios_by_property", {}).get(prop)
        if not bst or not bst.get("count"):
            continue
        if st.get("nonfinite") and not bst.get("nonfinite"):
            out.append(Regression("RATIO", name, f"{prop}: {st['nonfinite']} non-finite output(s) where the "
                                                 "baseline had none"))
            continue
        for stat in ("p99", "max"):
            now, was = st.get(stat), bst.get(stat)
            if now is not None and was is not None and max(now, 1.0) > ratio_factor * max(was, 1.0):
                out.append(Regression("RATIO", name, f"{prop}: {stat} error ratio {now:.3g} vs baseline "
                                                     f"{was:.3g} (> {ratio_factor:g}x)"))
                break
    return out


def compare(base: dict, run: dict, ratio_factor: float = 4.0) -> list[Regression]:
    out: list[Regression] = []
    for name, b in sorted(base["backends"].items()):
        r = run["backends"].get(name)
        if r is None:
            out.append(Regression("DISAPPEARED", name, f"backend missing from the run ({b['executed']} checks in the "
                                                       "baseline)"))
            continue
        out += _status(name, b, r) + _new_failures(name, b, r) + _disappeared(name, b, r)
        out += _ratios(name, b, r, ratio_factor)
    return out


def _notes(summary: dict) -> list[str]:
    """What the runs' readers noticed (older records, skipped lines), so a gate over them says so."""
    lines = []
    for run in summary.get("runs", []):
        problems = run.get("problems") or []
        lines += [f"  note: run {run['run_id']}: {p}" for p in problems[:_NOTES_PER_RUN]]
        if len(problems) > _NOTES_PER_RUN:
            lines.append(f"  note: run {run['run_id']}: ... {len(problems) - _NOTES_PER_RUN} more problem(s)")
    return lines


def run_gate(baseline: Path, run: Path, ratio_factor: float = 4.0, out=None, err=None) -> int:
    """Compare ``run`` with ``baseline`` and print the verdict: 0 no regression, 1 regression(s), 2 bad input."""
    out, err = out or sys.stdout, err or sys.stderr
    try:
        factor = float(ratio_factor)
        if not factor >= 1:
            raise ValueError(f"--ratio-factor {ratio_factor}: must be a number >= 1")
        base, now = load_summary(baseline), load_summary(run)
    except ValueError as exc:
        print(f"lstm-conformance gate: error: {exc}", file=err)
        return 2
    regressions = compare(base, now, factor)
    print(f"lstm-conformance gate: baseline {baseline} ({base['generated']}) vs run {run} ({now['generated']})",
          file=out)
    for line in _notes(base) + _notes(now):
        print(line, file=out)
    new = sorted(set(now["backends"]) - set(base["backends"]))
    if not regressions:
        print(f"  no regression over {len(base['backends'])} backend(s)"
              + (f"; new backend(s) not gated: {', '.join(new)}" if new else ""), file=out)
        return 0
    print(f"{len(regressions)} regression(s):", file=out)
    for reg in regressions:
        print(reg, file=out)
    if new:
        print(f"  (new backend(s) not in the baseline, not gated: {', '.join(new)})", file=out)
    return 1
