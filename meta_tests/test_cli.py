"""The installed console script, as a user meets it: each subcommand in a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conformance.harness.results import ResultWriter, RunLocked, validate_run_id

SCRIPT = Path(sys.executable).with_name("lstm-conformance")
needs_script = pytest.mark.skipif(not SCRIPT.exists(), reason=f"console script not installed beside {sys.executable}")


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    return subprocess.run([str(SCRIPT), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


@needs_script
def test_run_report_gate_through_the_console_script(tmp_path):
    run = cli("run", "--backend", "numpy", "--profile", "ci", "--report-dir", "reports", "--run-id", "numpy",
              "-k", "shapes or param_count", cwd=tmp_path)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    records = [json.loads(line) for line in (tmp_path / "reports/numpy/results.jsonl").read_text().splitlines()]
    assert records and all(r["verdict"] == "pass" for r in records if r["verdict"] != "skip")

    rep = cli("report", "reports", "--out", "reports/latest", cwd=tmp_path)
    assert rep.returncode == 0, rep.stderr
    assert (tmp_path / "reports/latest/index.html").is_file()

    gate = cli("gate", "--baseline", "reports/latest/summary.json", "reports/latest", cwd=tmp_path)
    assert gate.returncode == 0, gate.stdout + gate.stderr


@needs_script
def test_params_prints_the_seed_counts(tmp_path):
    out = cli("params", "--input-dim", "80", "--units", "12", cwd=tmp_path)
    assert out.returncode == 0 and "4,464" in out.stdout and "4,512" in out.stdout


@needs_script
@pytest.mark.parametrize("args", [("run", "--backend", "no-such-backend"), ("run", "--run-id", "../escape"),
                                  ("params", "--units", "0", "--input-dim", "3"), ("repro", "missing.npz"),
                                  ("report", "no-such-folder")])
def test_bad_input_is_one_line_and_exit_2(tmp_path, args):
    out = cli(*args, cwd=tmp_path)
    assert out.returncode == 2, (out.returncode, out.stdout[-2000:], out.stderr[-2000:])
    assert "Traceback" not in out.stderr + out.stdout
    assert len(out.stderr.strip().splitlines()) <= 2, out.stderr  # argparse prints usage + the line


@pytest.mark.parametrize("run_id", ["../x", "/abs", "a/b", "..", "", ".hidden"])
def test_run_ids_cannot_leave_the_report_folder(run_id):
    with pytest.raises(ValueError, match="--run-id"):
        validate_run_id(run_id)


def test_a_second_writer_on_the_same_run_is_refused(tmp_path):
    first = ResultWriter(tmp_path / "r", {"run_id": "r"})
    try:
        with pytest.raises(RunLocked, match="another run"):
            ResultWriter(tmp_path / "r", {"run_id": "r"})
    finally:
        first.close()
    ResultWriter(tmp_path / "r", {"run_id": "r"}).close()  # free again once the first one closed


@needs_script
def test_calibrate_and_repro_through_the_console_script(tmp_path):
    out = cli("calibrate", "--backend", "numpy", "--cases", "5", "--json", "cal.json", cwd=tmp_path)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    assert "suggested: K =" in out.stdout and json.loads((tmp_path / "cal.json").read_text())
    merged = cli("calibrate", "--merge", "cal.json", cwd=tmp_path)
    assert merged.returncode == 0 and "suggested" in merged.stdout, merged.stderr


@needs_script
def test_false_alarms_counts_earlier_runs_with_their_commit(tmp_path):
    """A run of one seed, then a tally of the folder alone (--seeds 0 --thorough-runs 0 --include-previous):
    the earlier run is counted and listed with the commit it ran on; an empty folder proves nothing (exit 1)."""
    first = cli("false-alarms", "--backend", "numpy", "--seeds", "1", "--thorough-runs", "0", "--report-dir", "fa",
                "-k", "param_count", cwd=tmp_path)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    tally = cli("false-alarms", "--backend", "numpy", "--seeds", "0", "--thorough-runs", "0", "--include-previous",
                "--report-dir", "fa", cwd=tmp_path)
    assert tally.returncode == 0, tally.stdout + tally.stderr
    assert "false-alarms numpy: 1 runs" in tally.stdout and "earlier run, finished, commit " in tally.stdout
    empty = cli("false-alarms", "--backend", "numpy", "--seeds", "0", "--thorough-runs", "0", "--include-previous",
                "--report-dir", "nothing-here", cwd=tmp_path)
    assert empty.returncode == 1 and "no run of numpy" in empty.stdout
