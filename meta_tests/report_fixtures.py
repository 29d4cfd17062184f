"""Realistic inputs for the report, gate and repro tests: real harness runs on the numpy adapter.

Runs are ``python -m pytest conformance ...`` subprocesses (profile ``ci``: derandomized, so two runs of
the same adapter draw the same cases). Failures come from :class:`SwappedIFAdapter`, the numpy reference
with the i and f gate rows of W, U, b (and b2) exchanged; it is registered only inside those
subprocesses, by loading this module as a plugin (``-p report_fixtures``, this directory on PYTHONPATH).

Every run starts at once (they overlap on the cores) the first time a test asks for one; the results are
cached for the session, shared by test_report.py, test_gate.py and test_report_browser.py (each wraps
these helpers in its own fixtures).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from conformance.adapters.numpy_ref import NumpyAdapter
from reference import Weights
from reference.weights import GATES, LayerWeights

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
_I, _F = GATES.index("i"), GATES.index("f")
#: set in a subprocess to make the backend named ``numpy`` the broken one (a framework that regressed)
REGRESS_ENV = "LSTM_REPORT_FIXTURES_REGRESS_NUMPY"


class SwappedIFAdapter(NumpyAdapter):
    """i and f rows of W, U, b, b2 exchanged before running: a layout table with two gates swapped."""

    name = "numpy-swapped-if"

    def versions(self):
        return {**super().versions(), "slip": "i<->f"}

    def build(self, config, weights, **kw):
        def swap(lw: LayerWeights) -> LayerWeights:
            arrays = {k: np.array(v, copy=True) for k, v in lw.arrays().items()}
            for key in ("W", "U", "b", "b2"):
                if key in arrays:
                    arrays[key][[_I, _F]] = arrays[key][[_F, _I]]
            return LayerWeights(**arrays)

        return super().build(config, Weights([[swap(lw) for lw in dirs] for dirs in weights.layers]), **kw)


class RegressedNumpyAdapter(SwappedIFAdapter):
    """The same slip under the name ``numpy``: a new release of a framework that broke its gate order."""

    name = "numpy"


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config):
    """Plugin hook (only when loaded with ``-p report_fixtures``): register the broken adapters, before the
    harness plugin checks ``--backend`` against the known adapters."""
    from conformance.adapters import BUILTIN

    BUILTIN[SwappedIFAdapter.name] = "report_fixtures:SwappedIFAdapter"
    if os.environ.get(REGRESS_ENV) == "1":
        BUILTIN["numpy"] = "report_fixtures:RegressedNumpyAdapter"


#: a run written by the previous layout (commit 33fa23d: records without schema_version and check, property
#: labels such as 'forward', 'go_backwards', 'shapes', 'params', 'continuation'; run.json without 'properties'
#: and 'hypothesis_seed'): 16 lines of a real ``--backend numpy --backend numpy-swapped-if`` run, the three
#: failures of the swapped adapter among them (their repro blobs are not kept)
LEGACY_RUN = HERE / "data" / "legacy-run"


def subprocess_env(regress: bool = False) -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(HERE), str(ROOT), env.get("PYTHONPATH")) if p)
    env.pop(REGRESS_ENV, None)
    if regress:
        env[REGRESS_ENV] = "1"
    return env


#: run id -> (backend, regress?, -k expression). The correct runs cover forward, parameter, shape and
#: state properties; the broken ones fewer, since hypothesis shrinks each failure (seconds per property).
_GOOD = "test_equations.py or test_state.py or test_parameters.py or test_shapes.py"
RUNS = {
    "good-a": ("numpy", False, _GOOD),
    "good-b": ("numpy", False, _GOOD),
    "swapped": ("numpy-swapped-if", False, "matches_reference or param_count or output_shapes or two_calls"),
    "regressed": ("numpy", True, "matches_reference or param_count"),
}


def _argv(run_id: str, backend: str, select: str, report_dir: Path) -> list[str]:
    return [sys.executable, "-m", "pytest", "conformance", "-q", "-p", "report_fixtures", "-p", "no:cacheprovider",
            "--backend", backend, "--run-id", run_id, "--report-dir", str(report_dir),
            "--hypothesis-profile", "ci", "-k", select]


class HarnessRuns:
    def __init__(self, report_dir: Path):
        self.report_dir = report_dir
        self.procs: dict[str, subprocess.Popen] = {}
        self.outputs: dict[str, str] = {}
        self.t0 = time.perf_counter()
        for run_id, (backend, regress, select) in RUNS.items():
            with open(report_dir / f"{run_id}.log", "w") as log:  # the child keeps its own copy of the fd
                self.procs[run_id] = subprocess.Popen(_argv(run_id, backend, select, report_dir), cwd=ROOT,
                                                      env=subprocess_env(regress), stdout=log,
                                                      stderr=subprocess.STDOUT)
        self.seconds: float | None = None

    def get(self, run_id: str) -> Path:
        proc = self.procs[run_id]
        if proc.returncode is None:
            proc.wait(timeout=240)
        if self.seconds is None and all(p.returncode is not None for p in self.procs.values()):
            self.seconds = time.perf_counter() - self.t0
        run_dir = self.report_dir / run_id
        out = (self.report_dir / f"{run_id}.log").read_text()
        # pytest exit 1 = some check failed (expected for the broken adapters); anything else is a harness error
        if proc.returncode not in (0, 1) or not (run_dir / "results.jsonl").exists():
            pytest.fail(f"harness run {run_id} exited {proc.returncode}:\n{out[-3000:]}")
        return run_dir


_CACHE: dict[str, HarnessRuns] = {}


def harness_runs(tmp_path_factory) -> HarnessRuns:
    """The session's harness runs (started on first use). Test modules wrap these helpers in fixtures."""
    if "runs" not in _CACHE:
        _CACHE["runs"] = HarnessRuns(tmp_path_factory.mktemp("harness-runs"))
    return _CACHE["runs"]


def killed_copy(run_dir: Path, dst: Path, keep_lines: int = 5) -> Path:
    """A copy of ``run_dir`` as a killed process leaves it: run.json still 'running', the last line cut."""
    shutil.copytree(run_dir, dst)
    info = json.loads((dst / "run.json").read_text())
    info["run_id"] = dst.name
    info["status"] = "running"
    info.pop("finished", None)
    info.pop("counts", None)
    (dst / "run.json").write_text(json.dumps(info))
    lines = (dst / "results.jsonl").read_bytes().split(b"\n")
    (dst / "results.jsonl").write_bytes(b"\n".join(lines[:keep_lines]) + b"\n" + lines[keep_lines][:40])
    return dst


_REPORTS: dict[str, tuple[Path, dict]] = {}


def swapped_report(tmp_path_factory) -> tuple[Path, dict]:
    """A report over a correct run, the gate-swapping run and a killed run: (out dir, summary)."""
    from conformance.report import make_report

    runs = harness_runs(tmp_path_factory)
    if "main" not in _REPORTS:
        base = tmp_path_factory.mktemp("report")
        killed = killed_copy(runs.get("good-b"), base / "killed-run")
        out = base / "out"
        summary = make_report([runs.get("good-a"), runs.get("swapped"), killed], out)
        _REPORTS["main"] = (out, summary)
    return _REPORTS["main"]


#: markup that must reach the page as text: a config value, a framework message, a run id, an adapter name
HOSTILE = {
    "run_id": 'evil-run <script>alert("run")</script>',
    "message": "</pre><script>alert('message')</script><img src=x onerror=alert(1)>",
    "activation": "<b>bold</b>",
    "adapter": "<svg onload=alert(2)>",
    "test": 'conformance/test_x.py::t[<iframe src="x">]',
}


def hostile_copy(run_dir: Path, dst: Path) -> Path:
    """A copy of a correct run plus records whose every string is markup (and a repro path that escapes)."""
    shutil.copytree(run_dir, dst)
    info = json.loads((dst / "run.json").read_text())
    info["run_id"] = HOSTILE["run_id"]
    info["argv"] = ["pytest", HOSTILE["message"]]
    (dst / "run.json").write_text(json.dumps(info))
    config = {"config": {"input_dim": 2, "units": 3, "activation": HOSTILE["activation"], "dtype": "float32"},
              "batch": 1, "timesteps": 2, "mask": "none"}
    base = {"device": "cpu", "framework": "numpy", "versions": {"numpy": HOSTILE["activation"]}, "variant": "default",
            "rules": ["GATE-1"], "property": "forward_matches_reference", "check": "forward", "schema_version": 2,
            "test": HOSTILE["test"], "config": config, "dtype": "float32",
            "metrics": {"ratio": 1e9, "err_impl": 1.0, "err_oracle": 1e-9, "floor": 1e-9, "note": HOSTILE["message"]},
            "duration": 0.1, "kernel_path": HOSTILE["activation"], "precision": "ieee"}
    lines = [dict(base, adapter="numpy", verdict="fail", message=HOSTILE["message"], repro="../../../etc/passwd"),
             dict(base, adapter=HOSTILE["adapter"], verdict="crash", message=HOSTILE["message"], repro=None)]
    with open(dst / "results.jsonl", "a") as fh:
        fh.writelines(json.dumps(rec) + "\n" for rec in lines)
    return dst


def hostile_report(tmp_path_factory) -> tuple[Path, dict]:
    """A report over a run whose records carry markup everywhere: (out dir, summary)."""
    from conformance.report import make_report

    if "hostile" not in _REPORTS:
        base = tmp_path_factory.mktemp("hostile")
        run = hostile_copy(harness_runs(tmp_path_factory).get("good-a"), base / "evil-run")
        out = base / "out"
        _REPORTS["hostile"] = (out, make_report([run], out))
    return _REPORTS["hostile"]
