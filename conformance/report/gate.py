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
- a worse error ratio: per (backend, property) the p99 or max ratio of the passing and failing checks
  grew by more than ``ratio_factor`` (default 4); known findings (xfail) are not compared. Ratios below 1
  (as accurate as the reference in the dtype itself) count as 1, so noise among near-exact results is not a
  regression.

Before the regressions, the gate prints what changed without failing it, for reading an upgrade (two runs of
one backend on different releases): framework versions, findings fixed (a known finding with xfail checks in
the baseline and none now), new known findings, properties passing now that failed before, executed checks.

Summaries of schema 2 (whose ratio statistics still included xfail checks) are read too, with a note.
Every text taken from the inputs (names, messages, paths) is printed through :func:`.text.printable`: a
record cannot clear the terminal or forge an output line.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path

from ..harness.results import Verdict
from ..harness.rules import rule_sort_key
from . import validate
from .runs import load_run
from .summary import SCHEMA_VERSION, build_summary
from .text import printable

__all__ = ["Regression", "changes", "compare", "load_summary", "run_gate"]

_INCOMPLETE = ("killed", "interrupted", "unknown")
_NOTES_PER_RUN = 5
#: the older summary layout the gate still reads: the same keys where the gate looks, xfail ratios included
_OLDER_SCHEMA = 2
_MESSAGE = 240  # characters of a failure's message in a regression line
_FAILING = frozenset(v.value for v in Verdict if v.failing)


@dataclass(frozen=True)
class Regression:
    kind: str  # NEW FAILURE | CRASHED | DISAPPEARED | RATIO
    backend: str
    text: str

    def __str__(self) -> str:
        """One line: every control character of the backend name or the text is escaped."""
        return f"  {self.kind:<12} {printable(self.backend)}: {printable(self.text)}"


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
    if data["schema_version"] not in (SCHEMA_VERSION, _OLDER_SCHEMA):
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
        if data["schema_version"] == _OLDER_SCHEMA:  # schema.json describes today's layout only
            _check_keys(data)
        else:
            validate(json.loads(json.dumps(data)))
    except ImportError:  # jsonschema (the ``report`` extra) missing: check the keys the gate reads
        try:
            _check_keys(data)
        except ValueError as exc:
            raise ValueError(f"{where}: {exc}") from None
    except ValueError as exc:
        raise ValueError(f"{where}: {exc}") from None
    return data


_BACKEND_KEYS = {"status": str, "executed": int, "properties": dict, "rules": dict, "failures": list,
                 "ratios_by_property": dict}


def _check_keys(data: dict) -> None:
    """The keys the gate reads, with their types (a summary schema.json cannot check)."""
    lacking = [key for key, kind in (("backends", dict), ("runs", list)) if not isinstance(data.get(key), kind)]
    if lacking:
        raise ValueError(f"summary lacks {'/'.join(lacking)}")
    for name, b in data["backends"].items():
        bad = [k for k, t in _BACKEND_KEYS.items() if not isinstance(b, dict) or not isinstance(b.get(k), t)]
        if bad:
            raise ValueError(f"summary backend {name!r}: missing or mistyped {', '.join(bad)}")


def _failing(counts: dict) -> int:
    return sum(counts.get(v.value, 0) for v in Verdict if v.failing)


def _executed(counts: dict) -> int:
    return sum(counts.get(v.value, 0) for v in Verdict if v.executed)


def _first_failure(backend: dict, prop: str) -> str:
    for f in backend.get("failures", []):
        if f.get("property") == prop and f.get("verdict") in _FAILING:
            msg = " ".join(str(f.get("message", "")).split())
            where = f" (repro: {f.get('command') or f['script']})" if f.get("script") else ""
            return (msg[:_MESSAGE] + ("..." if len(msg) > _MESSAGE else "")) + where
    return ""


def _rules_of(backend: dict, prop: str) -> list[str]:
    """The rules the failing checks of ``prop`` implicate (rule attribution, a confident diagnosis); a check
    that implicates none contributes every rule its property exercises."""
    rules: set[str] = set()
    for f in backend.get("failures", []):
        if f.get("property") == prop and f.get("verdict") in _FAILING:
            rules.update(f.get("implicated") or f.get("rules", []))
    return sorted(rules, key=rule_sort_key)


def _status(name: str, b: dict, r: dict) -> list[Regression]:
    if r["status"] in _INCOMPLETE and b["status"] not in _INCOMPLETE:
        detail = "; ".join(r.get("problems") or []) or f"run status {r['status']}"
        return [Regression("CRASHED", name, f"run {r['status']} (baseline finished): {detail}")]
    if r["status"] == "unavailable" and b["status"] != "unavailable":
        return [Regression("DISAPPEARED", name, f"not installed in the run: {r.get('unavailable')}")]
    return []


def _new_failures(name: str, b: dict, r: dict) -> list[Regression]:
    """Per property, naming the rules the failing checks implicate; then rules failing now and not before."""
    out = []
    for prop, counts in sorted(r["properties"].items()):
        before = b["properties"].get(prop, {})
        if _failing(counts) and not _failing(before):
            was = ", ".join(f"{before[v.value]} {v.value}" for v in Verdict
                            if not v.failing and before.get(v.value)) or "absent"
            msg = _first_failure(r, prop)
            out.append(Regression("NEW FAILURE", name,
                                  f"{prop} [{', '.join(_rules_of(r, prop))}]: {_failing(counts)} failing check(s) "
                                  f"(baseline: {was})" + (f"; first: {msg}" if msg else "")))
    newly = sorted((rid for rid, c in r["rules"].items() if _failing(c) and not _failing(b["rules"].get(rid, {}))),
                   key=rule_sort_key)
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


def _finding_key(f: dict) -> tuple:
    return (f.get("rule"), f.get("reason") or ",".join(f.get("properties") or []))


def changes(base: dict, run: dict) -> list[str]:
    """What changed besides regressions, for reading an upgrade: versions, findings fixed or newly matched,
    failures gone, executed checks. Informational: none of it fails the gate."""
    lines = []
    for name, b in sorted(base["backends"].items()):
        r = run["backends"].get(name)
        if r is None:
            continue
        bv, rv = b.get("versions") or {}, r.get("versions") or {}
        moved = [f"{k} {bv.get(k, '-')} -> {rv.get(k, '-')}" for k in sorted(set(bv) | set(rv)) if bv.get(k) != rv.get(k)]
        if moved:
            lines.append(f"  VERSIONS     {printable(name)}: {printable(', '.join(moved))}")
        now = {_finding_key(f): f for f in r.get("findings") or []}
        for key, f in sorted(((k, f) for k, f in ((_finding_key(f), f) for f in b.get("findings") or [])
                              if k not in now), key=lambda kf: rule_sort_key(kf[0][0] or "")):
            lines.append(f"  FIXED        {printable(name)}: {printable(f.get('rule'))} {printable(f.get('reason') or '')}"
                         f" ({f.get('count', 0)} known-finding check(s) in the baseline, none now)")
        before = {_finding_key(f) for f in b.get("findings") or []}
        for key, f in now.items():
            if key not in before:
                lines.append(f"  NEW FINDING  {printable(name)}: {printable(f.get('rule'))} "
                             f"{printable(f.get('reason') or '')} ({f.get('count', 0)} check(s); a known finding, "
                             "recorded as xfail)")
        for prop, counts in sorted(b["properties"].items()):
            if _failing(counts) and not _failing(r["properties"].get(prop, {})) and \
                    _executed(r["properties"].get(prop, {})):
                lines.append(f"  NOW PASSING  {printable(name)}: {printable(prop)} ({_failing(counts)} failing "
                             "check(s) in the baseline, none now)")
        if b.get("executed") != r.get("executed"):
            lines.append(f"  CHECKS       {printable(name)}: {b.get('executed')} executed in the baseline, "
                         f"{r.get('executed')} now")
    return lines


def _notes(label: str, summary: dict) -> list[str]:
    """What the runs' readers noticed (older records, skipped lines), so a gate over them says so."""
    lines = []
    if summary.get("schema_version") == _OLDER_SCHEMA:
        lines.append(f"  note: {label}: summary schema {_OLDER_SCHEMA}: its ratio statistics include xfail checks "
                     f"(schema {SCHEMA_VERSION} leaves them out); give the run directories for an exact comparison")
    for run in summary.get("runs", []):
        problems = run.get("problems") or []
        run_id = printable(run.get("run_id"))
        lines += [f"  note: run {run_id}: {printable(p)}" for p in problems[:_NOTES_PER_RUN]]
        if len(problems) > _NOTES_PER_RUN:
            lines.append(f"  note: run {run_id}: ... {len(problems) - _NOTES_PER_RUN} more problem(s)")
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
        print(f"lstm-conformance gate: error: {printable(exc)}", file=err)
        return 2
    regressions = compare(base, now, factor)
    print(f"lstm-conformance gate: baseline {printable(baseline)} ({printable(base.get('generated'))}) vs run "
          f"{printable(run)} ({printable(now.get('generated'))})", file=out)
    for line in _notes("baseline", base) + _notes("run", now):
        print(line, file=out)
    changed = changes(base, now)
    if changed:
        print("what changed (informational):", file=out)
        for line in changed:
            print(line, file=out)
    new = printable(", ".join(sorted(set(now["backends"]) - set(base["backends"]))))
    if not regressions:
        print(f"  no regression over {len(base['backends'])} backend(s)"
              + (f"; new backend(s) not gated: {new}" if new else ""), file=out)
        return 0
    print(f"{len(regressions)} regression(s):", file=out)
    for reg in regressions:
        print(reg, file=out)
    if new:
        print(f"  (new backend(s) not in the baseline, not gated: {new})", file=out)
    return 1
