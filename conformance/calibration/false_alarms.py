"""``lstm-conformance false-alarms``: does a correct backend stay green under the draws users get?

CI's derandomized profile draws the same cases every time, which can hide what users draw. This runs the
properties on one backend under the ``dev`` profile with several random hypothesis seeds, plus the
``thorough`` profile (random seeds too), each run a separate pytest process writing its own results, and lists every
check that did not pass: fails and crashes (false alarms unless a finding explains them), inconclusive
cases with their reason, and the known findings (xfails) seen.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from ..harness.results import CheckKind, Verdict, read_run_results, validate_run_id

__all__ = ["run_false_alarms", "Tally"]

PROPERTIES = Path(__file__).resolve().parent.parent / "properties"
VALUE_CHECKS = (CheckKind.FORWARD, CheckKind.CONTINUATION, CheckKind.STATEFUL)


@dataclass
class Tally:
    runs: list[dict] = field(default_factory=list)
    counts: Counter = field(default_factory=Counter)
    value_checks: int = 0
    unexplained: list[str] = field(default_factory=list)
    inconclusive: Counter = field(default_factory=Counter)
    findings: Counter = field(default_factory=Counter)


def _one_run(backend: str, profile: str, seed: int | None, report_dir: Path, extra: list[str]) -> tuple[Path, int, float]:
    run_id = validate_run_id(f"fa-{backend}-{profile}-{seed}")
    argv = [sys.executable, "-m", "pytest", str(PROPERTIES), "-q", "-p", "no:cacheprovider", "--backend", backend,
            "--hypothesis-profile", profile, "--report-dir", str(report_dir), "--run-id", run_id, *extra]
    if seed is not None:
        argv += ["--hypothesis-seed", str(seed)]
    t0 = time.perf_counter()
    proc = subprocess.run(argv, capture_output=True, text=True, check=False)
    return report_dir / run_id, proc.returncode, time.perf_counter() - t0


def run_false_alarms(backend: str, seeds: int, report_dir: Path, *, thorough: int = 1, extra=(),
                     previous: bool = False, out=sys.stdout) -> int:
    """Run and summarise; 0 when nothing failed or crashed outside the known findings, else 1.

    ``previous``: also count the runs of this backend that earlier invocations left in ``report_dir``
    (``fa-<backend>-*``), each listed with the commit it ran on, so volume accumulates across sessions."""
    if seeds < 0:
        raise ValueError(f"--seeds {seeds}: expected a count >= 0")
    rng = random.SystemRandom()
    plan = [("dev", rng.randrange(2**32)) for _ in range(seeds)] + [("thorough", rng.randrange(2**32))
                                                                   for _ in range(thorough)]
    tally = Tally()
    done = set()
    for profile, seed in plan:
        run_dir, rc, seconds = _one_run(backend, profile, seed, Path(report_dir), list(extra))
        done.add(run_dir.name)
        _tally(tally, run_dir, profile, seed, rc, seconds, out)
    if previous:
        for run_dir in sorted(Path(report_dir).glob(f"fa-{backend}-*")):
            info = _run_info(run_dir)
            if run_dir.name in done or not info:
                continue
            seconds = (info.get("finished") or info.get("started") or 0) - (info.get("started") or 0)
            _tally(tally, run_dir, info.get("profile"), info.get("hypothesis_seed"), None, seconds, out,
                   note=f"earlier run, {info.get('status')}, commit {info.get('suite_commit') or 'not recorded'}, "
                        + time.strftime("%Y-%m-%d %H:%M", time.gmtime(info.get("started") or 0)))
    _print(backend, tally, out)
    if not tally.runs:
        print(f"  no run of {backend} to count in {report_dir}", file=out)
    return 1 if tally.unexplained or not tally.runs else 0


def _run_info(run_dir: Path) -> dict:
    try:
        return json.loads((run_dir / "run.json").read_text())
    except (OSError, ValueError):
        return {}


def _tally(tally: Tally, run_dir: Path, profile, seed, rc: int | None, seconds: float, out, note: str = "") -> None:
    records, problems = read_run_results(run_dir)  # every results*.jsonl (also of an `-n N` run)
    n = Counter(r.verdict.value for r in records)
    tally.runs.append({"profile": profile, "seed": seed, "rc": rc, "seconds": seconds, "counts": dict(n),
                       "dir": str(run_dir)})
    print(f"  {profile or '?':<8} seed {seed if seed is not None else '-':<11} exit {'-' if rc is None else rc}  "
          f"{seconds:6.0f}s  " + ", ".join(f"{v} {c}" for v, c in sorted(n.items())) + (f"  ({note})" if note else ""),
          file=out)
    for line in problems:
        print(f"    note: {line}", file=out)
    if (rc is not None and rc not in (0, 1)) or not records:  # a run that could not start or checked nothing
        tally.unexplained.append(f"{profile} seed {seed}: the run exited {rc} with {len(records)} records "
                                 f"(see {run_dir})")
    for r in records:
        tally.counts[r.verdict.value] += 1
        tally.value_checks += r.check in VALUE_CHECKS and r.verdict is not Verdict.SKIP
        if r.verdict.failing:
            tally.unexplained.append(f"{profile} seed {seed}: {r.verdict.value} {r.property} "
                                     f"[{', '.join(r.implicated or r.rules)}] {r.message[:300]}")
        elif r.verdict is Verdict.INCONCLUSIVE:
            tally.inconclusive[", ".join(r.implicated) or r.message.split(":")[0]] += 1
        elif r.verdict is Verdict.XFAIL:
            tally.findings[", ".join(r.implicated) or "?"] += 1


def _print(backend: str, t: Tally, out) -> None:
    total = sum(t.counts.values())
    print(f"false-alarms {backend}: {len(t.runs)} runs, {total} checks ({t.value_checks} value checks): "
          + ", ".join(f"{v} {c}" for v, c in sorted(t.counts.items())), file=out)
    for reason, n in t.inconclusive.most_common():
        print(f"  inconclusive {n:>5}  {reason}", file=out)
    for rule, n in t.findings.most_common():
        print(f"  known finding {n:>4}  {rule}", file=out)
    if t.unexplained:
        print(f"  {len(t.unexplained)} unexplained fail/crash:", file=out)
        for line in t.unexplained:
            print(f"    {line}", file=out)
    else:
        print("  0 unexplained failures", file=out)
