"""Fanning out: a run spread over pytest-xdist workers (``-n 2``) counts what a serial run counts.

The ci profile is derandomized (each test seeds hypothesis from its own digest), so every test draws the same
cases in whichever process runs it. Each worker writes ``results-<worker>.jsonl``; the controlling process
writes ``run.json`` and the terminal summary from all of them. Compared here per test and verdict, so a lost
or doubled record, a worker that wrote over another's file, or a summary counting one worker only fails.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from conftest import HERE, ROOT, RUN_TIMEOUT_S
from conformance.harness.results import (Result, ResultWriter, RunLocked, Verdict, read_run_results,
                                         result_files)
from conformance.report.runs import load_run

#: a ci-profile subset of the numpy run with hypothesis-drawn checks, a skip-free mix of verdicts and the
#: coverage test whose uncovered-rules line the controller must print
MODULES = ("conformance/properties/test_direction.py", "conformance/properties/test_state.py",
           "conformance/properties/test_spec_coverage.py")
SUMMARY = re.compile(r"^lstm-conformance: \d+ checks executed \(.*?\)", re.M)
UNCOVERED = re.compile(r"^lstm-conformance: \d+ spec rules not covered by a property yet:.*$", re.M)


def _run(report_dir: Path, run_id: str, *extra: str) -> tuple[subprocess.CompletedProcess, Path]:
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(HERE), str(ROOT), env.get("PYTHONPATH")) if p)
    argv = [sys.executable, "-m", "pytest", *MODULES, "-q", "-p", "no:cacheprovider", "--backend", "numpy",
            "--hypothesis-profile", "ci", "--report-dir", str(report_dir), "--run-id", run_id, *extra]
    proc = subprocess.run(argv, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          timeout=RUN_TIMEOUT_S, check=False)
    return proc, report_dir / run_id


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    pytest.importorskip("xdist", reason="pytest-xdist is not installed (the `test` extra has it)")
    reports = tmp_path_factory.mktemp("fan-out")
    return _run(reports, "serial"), _run(reports, "fanned", "-n", "2")


def test_workers_write_their_own_files_and_the_controller_run_json(runs):
    (serial, serial_dir), (fanned, fanned_dir) = runs
    assert serial.returncode == 0, serial.stdout[-3000:]
    assert fanned.returncode == 0, fanned.stdout[-3000:]
    assert [p.name for p in result_files(serial_dir)] == ["results.jsonl"]
    names = [p.name for p in result_files(fanned_dir)]
    assert names and all(re.fullmatch(r"results-gw\d+\.jsonl", n) for n in names), names
    info = json.loads((fanned_dir / "run.json").read_text())
    assert info["status"] == "finished" and info["run_id"] == "fanned" and info["workers"] == 2, info


def test_fanned_out_run_counts_what_the_serial_run_counts(runs):
    (_, serial_dir), (_, fanned_dir) = runs
    serial, problems_s = read_run_results(serial_dir)
    fanned, problems_f = read_run_results(fanned_dir)
    assert not problems_s and not problems_f, problems_s + problems_f
    per_test = Counter((r.test, r.verdict.value) for r in serial)
    assert len({t for t, _ in per_test}) >= 5 and sum(per_test.values()) >= 20, per_test  # a real sample
    assert Counter((r.test, r.verdict.value) for r in fanned) == per_test
    info_s, info_f = (json.loads((d / "run.json").read_text()) for d in (serial_dir, fanned_dir))
    assert info_f["counts"] == info_s["counts"] == dict(Counter(r.verdict.value for r in serial),
                                                        **{v: 0 for v in info_s["counts"]
                                                           if v not in {r.verdict.value for r in serial}})
    assert info_f["properties"] == info_s["properties"] and info_s["properties"]
    assert info_f["findings"] == info_s["findings"]


def test_controller_prints_the_serial_summary_lines(runs):
    (serial, _), (fanned, _) = runs
    for pattern in (SUMMARY, UNCOVERED):
        lines_s, lines_f = pattern.findall(serial.stdout), pattern.findall(fanned.stdout)
        assert len(lines_s) == 1 and lines_f == lines_s, (lines_s, lines_f)


def _rec(verdict: Verdict, test: str) -> Result:
    return Result(adapter="numpy", verdict=verdict, property="p", test=test)


def test_workers_files_are_read_together_and_a_rerun_replaces_them(tmp_path):
    """Without xdist: the writer's three roles and the reader over several files, a truncated line named by its
    file, and a serial re-run of the same id removing the workers' files."""
    run = tmp_path / "r"
    controller = ResultWriter(run, {"run_id": "r"}, records=False)
    with pytest.raises(RunLocked):
        ResultWriter(run, {"run_id": "r"})  # the controller holds the folder for its workers
    with pytest.raises(RuntimeError, match="records no check itself"):
        controller.record(_rec(Verdict.PASS, "t0"))
    workers = {w: ResultWriter(run, {"run_id": "r"}, worker=w) for w in ("gw10", "gw2")}
    workers["gw2"].record(_rec(Verdict.PASS, "t1"))
    workers["gw2"].record(_rec(Verdict.FAIL, "t2"))
    workers["gw10"].record(_rec(Verdict.XFAIL, "t3"))
    for w in workers.values():
        w.close()
    with open(run / "results-gw10.jsonl", "a") as fh:
        fh.write('{"adapter": "numpy", "verd')  # a worker killed mid-line
    assert [p.name for p in result_files(run)] == ["results-gw2.jsonl", "results-gw10.jsonl"]
    controller.recount()
    controller.close()
    assert json.loads((run / "run.json").read_text())["counts"] == {
        "pass": 1, "fail": 1, "xfail": 1, "crash": 0, "inconclusive": 0, "skip": 0}
    data = load_run(run)
    assert sorted(r.test for r in data.records) == ["t1", "t2", "t3"] and data.lost_lines == 1
    assert any(p.startswith("results-gw10.jsonl:2: not a complete JSON line") for p in data.problems), data.problems
    serial = ResultWriter(run, {"run_id": "r"})  # the same id again, serially: the old files go
    serial.record(_rec(Verdict.PASS, "t4"))
    serial.close()
    assert [p.name for p in result_files(run)] == ["results.jsonl"]
    assert [r.test for r in load_run(run).records] == ["t4"]


def test_collection_end_imports_every_project_module_in_a_fresh_process():
    """The same local modules are loaded before the first example whatever ran before (Hypothesis reads
    constants from their source): after the hook, a module only the report imports lazily is loaded, and
    the report's ``__main__`` (a command) is not run."""
    code = ("import sys; from conformance.harness.fanout import pytest_collection_finish as hook; "
            "assert 'conformance.report.gate' not in sys.modules; hook(None); "
            "print(sorted(m for m in ('conformance.report.gate', 'conformance.diagnosis.command', "
            "'conformance.report.__main__') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=RUN_TIMEOUT_S,
                         cwd=ROOT, check=True).stdout
    assert out.strip() == "['conformance.diagnosis.command', 'conformance.report.gate']", out
