"""``lstm-conformance gate --baseline BASE RUN``: fail a CI job when a run regressed against a baseline.

Both arguments are ``summary.json`` files (or directories holding one) written by ``lstm-conformance
report``. Exit 0: nothing regressed. Exit 1: a readable list of regressions. Exit 2: unusable input.

A regression is, per backend present in the baseline:
- a new failure: a property (and the rules it cites) with fail/crash checks now and none in the baseline;
  known disagreements recorded as xfail are not failures;
- a crashed backend: its run was killed, interrupted or left a truncated results.jsonl, where the
  baseline's had finished; or it vanished from the run, or is no longer installed;
- a disappeared check: a property that executed checks in the baseline and executes none now;
- a worse error ratio: per (backend, property) the p99 or max ratio grew by more than ``--ratio-factor``
  (default 4). Ratios below 1 (as accurate as the reference in the dtype itself) count as 1, so noise
  among near-exact results is not a regression.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path

__all__ = ["main", "compare", "load_summary", "Regression"]

_FAILING = ("fail", "crash")
_INCOMPLETE = ("killed", "interrupted", "unknown")


@dataclass(frozen=True)
class Regression:
    kind: str  # NEW FAILURE | CRASHED | DISAPPEARED | RATIO
    backend: str
    text: str

    def __str__(self) -> str:
        return f"  {self.kind:<12} {self.backend}: {self.text}"


def load_summary(path: str | Path) -> dict:
    """A validated summary; ValueError (exit 2) naming the problem otherwise."""
    path = Path(path)
    if path.is_dir():
        path = path / "summary.json"
    if not path.is_file():
        raise ValueError(f"{path}: no such summary (give a summary.json or the report directory holding one)")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(data, dict) or "schema_version" not in data:
        raise ValueError(f"{path}: not an lstm-conformance summary.json (no schema_version)")
    from .report import validate

    try:
        validate(data)
    except ImportError:  # jsonschema (the ``report`` extra) missing: check the keys the gate reads
        if not all(isinstance(data.get(k), dict) for k in ("backends", "rules")):
            raise ValueError(f"{path}: summary lacks backends/rules") from None
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from None
    return data


def _failing(counts: dict) -> int:
    return sum(counts.get(v, 0) for v in _FAILING)


def _executed(counts: dict) -> int:
    return sum(n for v, n in counts.items() if v != "skip")


def _first_failure(backend: dict, prop: str) -> str:
    for f in backend.get("failures", []):
        if f.get("property") == prop and f.get("verdict") in _FAILING:
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


def compare(base: dict, run: dict, ratio_factor: float = 4.0) -> list[Regression]:
    out: list[Regression] = []
    for name, b in sorted(base["backends"].items()):
        r = run["backends"].get(name)
        if r is None:
            out.append(Regression("DISAPPEARED", name, f"backend missing from the run ({b['executed']} checks in the "
                                                       "baseline)"))
            continue
        if r["status"] in _INCOMPLETE and b["status"] not in _INCOMPLETE:
            detail = "; ".join(r.get("problems") or []) or f"run status {r['status']}"
            out.append(Regression("CRASHED", name, f"run {r['status']} (baseline finished): {detail}"))
        elif r["status"] == "unavailable" and b["status"] != "unavailable":
            out.append(Regression("DISAPPEARED", name, f"not installed in the run: {r.get('unavailable')}"))
        # new failures, per property, naming the rules the failing checks cite
        for prop, counts in sorted(r["properties"].items()):
            before = b["properties"].get(prop, {})
            if _failing(counts) and not _failing(before):
                rules = _rules_of(r, prop)
                was = ", ".join(f"{before[v]} {v}" for v in ("pass", "xfail", "skip") if before.get(v)) or "absent"
                msg = _first_failure(r, prop)
                out.append(Regression("NEW FAILURE", name,
                                      f"{prop} [{', '.join(rules)}]: {_failing(counts)} failing check(s) "
                                      f"(baseline: {was})" + (f"\n{'':15}{msg}" if msg else "")))
        newly = sorted(rid for rid, c in r["rules"].items() if _failing(c) and not _failing(b["rules"].get(rid, {})))
        if newly:
            out.append(Regression("NEW FAILURE", name,
                                  f"rules failing now and not in the baseline: {', '.join(newly)}"))
        # checks that disappeared
        for prop, before in sorted(b["properties"].items()):
            if _executed(before) and not _executed(r["properties"].get(prop, {})):
                now = r["properties"].get(prop)
                why = "absent from the run" if now is None else f"now {now.get('skip', 0)} skipped"
                out.append(Regression("DISAPPEARED", name, f"{prop}: {_executed(before)} checks in the baseline, "
                                                           f"none executed ({why})"))
        # error ratios
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
                if now is None or was is None:
                    continue
                if max(now, 1.0) > ratio_factor * max(was, 1.0):
                    out.append(Regression("RATIO", name, f"{prop}: {stat} error ratio {now:.3g} vs baseline "
                                                         f"{was:.3g} (> {ratio_factor:g}x)"))
                    break
    return out


def main(args) -> int:
    try:
        factor = float(args.ratio_factor)
        if not factor >= 1:
            raise ValueError(f"--ratio-factor {args.ratio_factor}: must be a number >= 1")
        base, run = load_summary(args.baseline), load_summary(args.run)
    except ValueError as exc:
        print(f"lstm-conformance gate: error: {exc}", file=sys.stderr)
        return 2
    regressions = compare(base, run, factor)
    header = (f"lstm-conformance gate: baseline {args.baseline} ({base['generated']}) "
              f"vs run {args.run} ({run['generated']})")
    new = sorted(set(run["backends"]) - set(base["backends"]))
    if not regressions:
        print(f"{header}\n  no regression over {len(base['backends'])} backend(s)"
              + (f"; new backend(s) not gated: {', '.join(new)}" if new else ""))
        return 0
    print(f"{header}\n{len(regressions)} regression(s):")
    for reg in regressions:
        print(reg)
    if new:
        print(f"  (new backend(s) not in the baseline, not gated: {', '.join(new)})")
    return 1
