"""Meta tests check the checker: conformance runs in a subprocess, on broken and correct adapters.

A run is described by a :class:`SuiteRun` (backend, property modules, extra pytest args). Tests take the
``suite_run`` fixture parametrized *indirectly* with SuiteRun values; the first such test starts every
run the session collected on a small thread pool (each run is a separate ``python -m pytest``
process), so the runs overlap on the available cores while tests consume results in order.

The broken adapters (:mod:`broken_adapters`) are registered in the subprocess by ``-p broken_plugin``
with this directory on PYTHONPATH.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
for _p in (str(ROOT), str(HERE)):
    if _p not in sys.path:
        sys.path.insert(0, _p)

#: a subprocess that takes longer than this is a hung run, not a slow one
RUN_TIMEOUT_S = 240


@dataclass(frozen=True)
class SuiteRun:
    """One ``python -m pytest <modules> --backend <backend>`` conformance run (profile ci: derandomized)."""

    backend: str
    modules: tuple[str, ...]
    extra: tuple[str, ...] = ()
    profile: str = "ci"

    @property
    def run_id(self) -> str:
        rid = re.sub(r"[^A-Za-z0-9_.-]+", "_", "-".join((self.backend, *map(_stem, self.modules), *self.extra)))
        if len(rid) > 100:  # run ids name folders (at most 128 characters): keep a readable head and a hash
            rid = f"{rid[:80]}-{hashlib.sha1(rid.encode()).hexdigest()[:12]}"
        return rid

    def argv(self, report_dir: Path) -> list[str]:
        return [sys.executable, "-m", "pytest", *self.modules, "-q", "-p", "broken_plugin", "-p", "no:cacheprovider",
                "--backend", self.backend, "--report-dir", str(report_dir), "--run-id", self.run_id,
                "--hypothesis-profile", self.profile, *self.extra]


def _stem(path: str) -> str:
    return Path(path).stem.removeprefix("test_")


@dataclass
class SuiteResult:
    run: SuiteRun
    returncode: int
    output: str
    run_dir: Path
    duration: float
    records: list[dict] = field(default_factory=list)

    def with_verdict(self, verdict: str) -> list[dict]:
        return [r for r in self.records if r.get("verdict") == verdict]

    def describe(self) -> str:
        counts = {}
        for r in self.records:
            counts[r.get("verdict")] = counts.get(r.get("verdict"), 0) + 1
        tail = "\n".join(self.output.strip().splitlines()[-25:])
        return (f"`{' '.join(self.run.argv(self.run_dir.parent)[1:])}` exited {self.returncode} after "
                f"{self.duration:.1f}s; verdicts {counts}\n--- output tail ---\n{tail}")


def run_suite(run: SuiteRun, report_dir: Path) -> SuiteResult:
    """Run ``run`` in a subprocess from the repository root and read back its results.jsonl."""
    from conformance.harness.results import read_results

    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(HERE), str(ROOT), env.get("PYTHONPATH")) if p)
    t0 = time.perf_counter()
    proc = subprocess.run(run.argv(report_dir), check=False, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, timeout=RUN_TIMEOUT_S)
    run_dir = Path(report_dir) / run.run_id
    records = ([r.to_dict() for r in read_results(run_dir / "results.jsonl")[0]]
               if (run_dir / "results.jsonl").exists() else [])
    return SuiteResult(run, proc.returncode, proc.stdout, run_dir, time.perf_counter() - t0, records)


class _Runs:
    """Starts every collected SuiteRun at once (bounded by the cores) and hands out results."""

    def __init__(self, session: pytest.Session, report_dir: Path):
        self._session = session
        self._report_dir = report_dir
        self._futures: dict[SuiteRun, Future] = {}
        self._pool = ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 2))

    def _submit(self, run: SuiteRun) -> None:
        if run not in self._futures:
            self._futures[run] = self._pool.submit(run_suite, run, self._report_dir)

    def get(self, run: SuiteRun) -> SuiteResult:
        if not self._futures:
            for item in self._session.items:
                spec = getattr(item, "callspec", None) and item.callspec.params.get("suite_run")
                if isinstance(spec, SuiteRun):
                    self._submit(spec)
        self._submit(run)
        return self._futures[run].result()

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


@pytest.fixture(scope="session")
def suite_runs(request, tmp_path_factory):
    runs = _Runs(request.session, tmp_path_factory.mktemp("conformance-runs"))
    yield runs
    runs.close()


@pytest.fixture
def suite_run(request, suite_runs) -> SuiteResult:
    """The finished run for the SuiteRun this test is parametrized with (``indirect=["suite_run"]``)."""
    return suite_runs.get(request.param)


# ---- minimum failing ratio per broken adapter, printed at the end of the session ---------------------
_RATIOS: dict[str, dict] = {}


def record_broken_result(name: str, rule: str, fails: int, ratios: list[float], duration: float) -> None:
    _RATIOS[name] = {"rule": rule, "min_ratio": min(ratios) if ratios else None, "fails": fails,
                     "duration": duration}


def pytest_terminal_summary(terminalreporter):
    if not _RATIOS:
        return
    tr = terminalreporter
    from conformance.harness import errors

    tr.section(f"meta tests: broken adapters caught (K = {errors.K:g})")
    for name, r in sorted(_RATIOS.items()):
        ratio = "n/a (count)" if r["min_ratio"] is None else f"min fail ratio {r['min_ratio']:.3g}"
        tr.write_line(f"{name:<34} {r['rule']:<8} {r['fails']} fail record(s), {ratio}, run {r['duration']:.1f}s")
    path = os.environ.get("LSTM_META_RATIOS_JSON")
    if path:  # for calibration write-ups: the same numbers, machine-readable
        Path(path).write_text(json.dumps(_RATIOS, indent=2, sort_keys=True))


# Report fixtures shared by test_report, test_report_browser and test_gate: each builds real harness runs
# in subprocesses, so they are session-scoped and built once for all three modules.
@pytest.fixture(scope="session")
def harness_runs(tmp_path_factory):
    import report_fixtures

    return report_fixtures.harness_runs(tmp_path_factory)


@pytest.fixture(scope="session")
def swapped_report(tmp_path_factory):
    import report_fixtures

    return report_fixtures.swapped_report(tmp_path_factory)


@pytest.fixture(scope="session")
def hostile_report(tmp_path_factory):
    import report_fixtures

    return report_fixtures.hostile_report(tmp_path_factory)
