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


# ---- a large synthetic run (no harness run: records written directly) -----------------------------------
#: property -> the rules its @rules marker names (as run.json records them)
SYNTH_PROPERTIES = {
    "forward_matches_reference": ["GATE-1", "GATE-2", "GATE-3", "GATE-4", "NUM-1"],
    "masked_steps_keep_state": ["MASK-1", "MASK-2"],
    "go_backwards_output_in_processing_order": ["DIR-1", "DIR-2"],
    "bidirectional_merge_modes": ["BIDI-1", "BIDI-2"],
    "two_calls_with_carried_state_equal_one_call": ["STATE-1", "STATE-2"],
    "param_count_matches_convention": ["PARAM-1", "PARAM-2"],
}
_SYNTH_ACTS = {"tanh": "ACT-1", "sigmoid": "ACT-2", "relu": "ACT-4", "swish": "ACT-10", "onnx_affine": "ACT-20"}
#: per backend: failing checks, and the known findings its xfails are spread over (rule, reason)
SYNTH_BACKENDS = {
    "keras-jax": (2, [("NUM-5", "a float64 layer computes in float32 (Keras 3 type promotion)"),
                      ("MASK-2", "masked outputs hold the previous step, not zeros")]),
    "onnxruntime": (12, [("ACT-20", "Affine alpha = beta = 0 without activation_alpha/beta"),
                         ("ACT-22", "ThresholdedRelu alpha = 0 without activation_alpha"),
                         ("MASK-3", "a row of length 0 returns zero states")]),
    "torch": (2, [("ACT-13", "gelu tail follows F.gelu")]),
}


def _synth_record(rng: np.random.Generator, backend: str, verdict: str, n: int, run_id: str) -> dict:
    prop = list(SYNTH_PROPERTIES)[int(rng.integers(0, len(SYNTH_PROPERTIES)))]
    act, rec_act = (list(_SYNTH_ACTS)[int(i)] for i in rng.integers(0, len(_SYNTH_ACTS), 2))
    cfg = {"input_dim": int(rng.integers(1, 64)), "units": int(rng.integers(1, 32)), "activation": act,
           "recurrent_activation": rec_act, "go_backwards": bool(rng.random() < 0.2), "num_layers": 1,
           "bidirectional": False, "use_bias": True, "bias_mode": "single", "dtype": "float32"}
    desc = {"config": cfg, "batch": int(rng.integers(1, 9)), "timesteps": int(rng.integers(1, 40)),
            "mask": "none", "initial_state": False, "seed": n}
    ratio = {"pass": 10 ** rng.uniform(-1, 1.5), "fail": 10 ** rng.uniform(3, 9), "xfail": 10 ** rng.uniform(2, 7),
             "inconclusive": 10 ** rng.uniform(0, 4), "crash": None, "skip": None}[verdict]
    metrics = {} if ratio is None else {"ratio": ratio, "err_oracle": 1e-7, "floor": 9.5e-7,
                                        "err_impl": ratio * 9.5e-7, "compared": 40, "out_of_range": False}
    rules = SYNTH_PROPERTIES[prop] + sorted({_SYNTH_ACTS[act], _SYNTH_ACTS[rec_act]})
    message = {"skip": f"{backend} does not support peepholes", "crash": f"{backend} raised ValueError: boom",
               "inconclusive": "outputs outside float32's range where the reference is finite"}.get(verdict, "")
    if verdict == "fail":
        message = f"ratio {ratio:.3g} > K=64 (err_impl {ratio * 9.5e-7:.3g}); case {json.dumps(desc)}"
    return {"adapter": backend, "verdict": verdict, "property": prop, "check": "forward", "schema_version": 2,
            "test": f"conformance/properties/test_x.py::test_{prop}[{backend}:default]", "variant": "default",
            "framework": backend.split("-")[0], "versions": {"framework": "1.0"}, "device": "cpu", "rules": rules,
            "message": message, "duration": 0.01, "kernel_path": "generic", "precision": "ieee", "metrics": metrics,
            "repro": None, "config": desc, "dtype": "float32", "seed": n, "run": run_id}


def synthetic_run(dst: Path, records: int = 3000, xfails: int = 300, inconclusive: int = 30, crashes: int = 2,
                  run_id: str = "synthetic", seed: int = 0) -> Path:
    """One run directory over SYNTH_BACKENDS: ``records`` records, ``xfails`` of them xfail (spread over
    each backend's findings, messages as harness.judge writes them), the failures SYNTH_BACKENDS names
    (each with a repro blob), ``crashes`` crashes, ``inconclusive`` inconclusive ones, the rest pass/skip."""
    rng = np.random.default_rng(seed)
    (dst / "repro").mkdir(parents=True)
    names = list(SYNTH_BACKENDS)
    verdicts = [(b, "fail") for b, (n_fail, _) in SYNTH_BACKENDS.items() for _ in range(n_fail)]
    verdicts += [(names[i % len(names)], v) for i, v in enumerate(["xfail"] * xfails + ["crash"] * crashes
                                                                  + ["inconclusive"] * inconclusive)]
    verdicts += [(names[i % len(names)], "skip" if i % 25 == 0 else "pass") for i in range(records - len(verdicts))]
    lines = []
    for n, (backend, verdict) in enumerate(verdicts):
        rec = _synth_record(rng, backend, verdict, n, run_id)
        if verdict == "xfail":
            findings = SYNTH_BACKENDS[backend][1]
            k = int(rng.integers(0, len(findings)))
            rule, reason = findings[k]
            rec["rules"] = sorted(set(rec["rules"]) | {rule})
            rec["message"] = (f"{rule} [framework==1.0] {reason} ({backend}.toml finding {k + 1}): ratio "
                              f"{rec['metrics']['ratio']:.3g} > K=64")
        if verdict in ("fail", "crash"):
            rec["repro"] = f"repro/{backend}-{n}.npz"
            (dst / rec["repro"]).write_bytes(b"not a real blob")
        lines.append(json.dumps(rec))
    (dst / "results.jsonl").write_text("\n".join(lines) + "\n")
    info = {"run_id": run_id, "status": "finished", "started": 1.7e9, "finished": 1.7e9 + 600, "K": 64.0,
            "floor_ulps": 8.0, "profile": "ci", "hypothesis_seed": "12345", "max_examples": 12, "derandomize": True,
            "suite_version": "0.1.0", "device": "cpu", "argv": ["pytest", "conformance"],
            "properties": SYNTH_PROPERTIES,
            "backends": {b: {"framework": b.split("-")[0], "versions": {"framework": "1.0"}} for b in names}}
    (dst / "run.json").write_text(json.dumps(info))
    return dst


def synthetic_report(tmp_path_factory) -> tuple[Path, dict]:
    """A report over :func:`synthetic_run` (3000 records, 300 xfails, 3 backends): (out dir, summary)."""
    from conformance.report import make_report

    if "synthetic" not in _REPORTS:
        base = tmp_path_factory.mktemp("synthetic")
        out = base / "out"
        _REPORTS["synthetic"] = (out, make_report([synthetic_run(base / "synthetic")], out))
    return _REPORTS["synthetic"]
