"""``lstm-conformance gate``: a correct run passes against a stored baseline; a regression fails, by name."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest
from report_fixtures import LEGACY_RUN, ROOT, killed_copy

from conformance.report import make_report
from conformance.report.gate import run_gate

_SUMMARIES: dict[str, object] = {}


@pytest.fixture(scope="module")
def summaries(harness_runs, tmp_path_factory):
    """Report directories: the stored baseline and three later runs of the same backend (numpy)."""
    if not _SUMMARIES:
        base = tmp_path_factory.mktemp("gate")
        killed = killed_copy(harness_runs.get("good-b"), base / "killed-run", keep_lines=3)
        for name, runs in {"baseline": ["good-a"], "correct": ["good-b"], "regressed": ["regressed"]}.items():
            make_report([harness_runs.get(r) for r in runs], base / name)
        make_report([killed], base / "killed")
        _SUMMARIES.update({name: base / name for name in ("baseline", "correct", "regressed", "killed")})
    return _SUMMARIES


def _gate(baseline, run, capsys, factor=4.0) -> tuple[int, str]:
    rc = run_gate(baseline, run, ratio_factor=factor)
    cap = capsys.readouterr()
    return rc, cap.out + cap.err


def test_correct_run_passes_against_the_stored_baseline(summaries, capsys):
    rc, out = _gate(summaries["baseline"] / "summary.json", summaries["correct"], capsys)
    assert rc == 0, out
    assert "no regression" in out


def test_gate_swapped_release_fails_naming_the_rule(summaries, capsys):
    rc, out = _gate(summaries["baseline"], summaries["regressed"] / "summary.json", capsys)
    assert rc == 1, out
    # the swapped i/f gates are diagnosed as a gate-order departure: the gate names that rule, not every
    # rule the failing property exercises (GATE-2..4, SHAPE-4, NUM-*, ...)
    assert "NEW FAILURE  numpy: forward_matches_reference [GATE-1]: " in out, out
    assert "rules failing now and not in the baseline: GATE-1\n" in out, out
    assert "repro/" in out, "the diff points at the failure's repro script"


def test_killed_run_is_a_crash_and_its_missing_checks_disappear(summaries, capsys):
    rc, out = _gate(summaries["baseline"], summaries["killed"], capsys)
    assert rc == 1, out
    assert "CRASHED" in out and "killed" in out
    assert "DISAPPEARED" in out


def test_error_ratio_worse_than_the_factor_is_a_regression(summaries, tmp_path, capsys):
    data = json.loads((summaries["baseline"] / "summary.json").read_text())
    stats = data["backends"]["numpy"]["ratios_by_property"]["forward_matches_reference"]
    stats["p99"] = stats["max"] = 10 * max(stats["max"], 1.0)
    (tmp_path / "summary.json").write_text(json.dumps(data))
    rc, out = _gate(summaries["baseline"], tmp_path, capsys)
    assert rc == 1 and "RATIO" in out and "forward_matches_reference" in out, out
    rc, out = _gate(summaries["baseline"], tmp_path, capsys, factor=20)
    assert rc == 0, out


def test_backend_missing_from_the_run_is_reported(summaries, tmp_path, capsys):
    data = json.loads((summaries["baseline"] / "summary.json").read_text())
    data["backends"] = {}
    (tmp_path / "summary.json").write_text(json.dumps(data))
    rc, out = _gate(summaries["baseline"], tmp_path, capsys)
    assert rc == 1 and "DISAPPEARED" in out and "numpy" in out


def test_unusable_input_exits_2(summaries, tmp_path, capsys):
    (tmp_path / "junk.json").write_text("{not json")
    (tmp_path / "other.json").write_text(json.dumps({"schema_version": 3, "backends": []}))
    (tmp_path / "older.json").write_text(json.dumps({"schema_version": 2, "backends": {"numpy": {}}, "runs": []}))
    for bad in (tmp_path / "missing.json", tmp_path / "junk.json", tmp_path / "other.json", tmp_path / "older.json",
                tmp_path):
        rc, out = _gate(summaries["baseline"], bad, capsys)
        assert rc == 2, (bad, out)
        rc, out = _gate(bad, summaries["correct"], capsys)
        assert rc == 2, (bad, out)
    assert "does not match schema.json" in _gate(summaries["baseline"], tmp_path / "other.json", capsys)[1]
    assert "'numpy': missing or mistyped status" in _gate(summaries["baseline"], tmp_path / "older.json", capsys)[1]


def test_gate_command_line(summaries):
    """What a framework's CI runs: the console entry point's exit status."""
    proc = subprocess.run([sys.executable, "-m", "conformance.cli", "gate", "--baseline",
                           str(summaries["baseline"] / "summary.json"), str(summaries["regressed"])],
                          check=False, cwd=ROOT, text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          timeout=60)
    assert proc.returncode == 1 and "GATE-1" in proc.stdout, proc.stdout


def test_summary_of_an_older_schema_is_refused_with_the_way_out(summaries, tmp_path, capsys):
    data = json.loads((summaries["baseline"] / "summary.json").read_text())
    data["schema_version"] = 1
    (tmp_path / "summary.json").write_text(json.dumps(data))
    rc, out = _gate(tmp_path, summaries["correct"], capsys)
    assert rc == 2 and "summary schema 1" in out and "run directories" in out, out


def test_run_directories_are_gated_directly(harness_runs, capsys):
    rc, out = _gate(harness_runs.get("good-a"), harness_runs.get("good-b"), capsys)
    assert rc == 0, out
    rc, out = _gate(harness_runs.get("good-a"), harness_runs.get("regressed"), capsys)
    assert rc == 1 and "GATE-1" in out, out


def test_a_run_of_the_previous_layout_is_gated_with_a_note(harness_runs, capsys):
    """Baseline: a results.jsonl of the previous layout; its property labels ('forward', 'params', ...) are read
    as today's test function names, so a correct run of today lines up with it."""
    rc, out = _gate(LEGACY_RUN, harness_runs.get("good-a"), capsys)
    assert "note: run legacy:" in out and "written before record schema 2" in out, out
    # good-a runs neither the swapped adapter nor the go_backwards property: those two disappeared, nothing else
    assert rc == 1 and "numpy-swapped-if: backend missing from the run" in out, out
    assert "numpy: go_backwards_output_in_processing_order" in out, out
    for prop in ("forward_matches_reference", "param_count_matches_convention", "output_shapes_match_spec",
                 "two_calls_with_carried_state_equal_one_call"):
        assert f"DISAPPEARED  numpy: {prop}" not in out, out
    assert "NEW FAILURE" not in out, out


def test_a_baseline_of_the_previous_summary_schema_is_gated_with_a_note(summaries, tmp_path, capsys):
    """Schema 2 (ratio statistics still over xfail checks too): the keys the gate reads are the same."""
    data = json.loads((summaries["baseline"] / "summary.json").read_text())
    data["schema_version"] = 2
    (tmp_path / "summary.json").write_text(json.dumps(data))
    rc, out = _gate(tmp_path, summaries["correct"], capsys)
    assert rc == 0 and "note: baseline: summary schema 2: its ratio statistics include xfail checks" in out, out
    rc, out = _gate(tmp_path, summaries["regressed"], capsys)
    assert rc == 1 and "GATE-1" in out, out


# ---- text from records on the terminal ----------------------------------------------------------------
_CLEAR = "\x1b[2J\x1b[H"
_CONTROL = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u2028\u2029]")  # all but the newline ending a line
#: property names that try to clear the screen, forge a line, rewrite the current one, or hide in C1/U+2028
HOSTILE_PROPERTIES = [f"{_CLEAR}ALL GREEN", "forged\n  no regression over 1 backend(s)", "rewrite\rOK",
                      "c1\x9b2J\u2028x"]


def _hostile_run(dst, run_id: str, verdict: str, backend: str = "numpy\x1b[31m") -> object:
    dst.mkdir()
    recs = [{"adapter": backend, "verdict": verdict, "property": prop, "rules": ["GATE-1", f"ACT-{i}\x07"],
             "check": "forward", "schema_version": 2,
             "message": f"{_CLEAR}ALL GREEN\nlstm-conformance gate: no regression", "metrics": {"ratio": 1.0}}
            for i, prop in enumerate(HOSTILE_PROPERTIES)]
    lines = [json.dumps(r) for r in recs] + ['{"adapter": "torn']  # a torn last line: the run gets a problem
    (dst / "results.jsonl").write_text("\n".join(lines) + "\n")
    (dst / "run.json").write_text(json.dumps({"run_id": run_id, "status": "finished", "K": 64.0,
                                              "generated": _CLEAR, "floor_ulps": 8.0}))
    return dst


def test_hostile_records_cannot_clear_the_screen_or_forge_a_line(tmp_path, capsys):
    from conformance.report.gate import compare, load_summary

    base = _hostile_run(tmp_path / "base", f"base{_CLEAR}\rALL GREEN", "pass")
    run = _hostile_run(tmp_path / "run", "run\nlstm-conformance gate: no regression", "fail")
    rc, out = _gate(base, run, capsys)
    assert rc == 1, out
    assert not _CONTROL.search(out), repr(out)
    assert "\\x1b[2J" in out and "forged\\n  no regression" in out and "rewrite\\rOK" in out
    assert "\\x9b" in out and "\\u2028" in out
    lines = out.splitlines()
    regressions = compare(load_summary(base), load_summary(run))
    notes = [line for line in lines if line.startswith("  note: ")]
    problems = [p for path in (base, run) for r in load_summary(path)["runs"] for p in r["problems"]]
    assert any("malformed rule ids left out: 'ACT-0\\x07', 'ACT-1\\x07'" in p for p in problems), problems
    assert len(notes) == len(problems) == 6, "per run: the torn line (counted, named) and the malformed rule ids"
    # one line per item: the header, the notes, the count, one line per regression
    assert len(lines) == 1 + len(notes) + 1 + len(regressions), out
    assert lines[len(notes) + 1] == f"{len(regressions)} regression(s):"
    assert all(line.startswith(("  NEW FAILURE  numpy\\x1b[31m: ", "  RATIO")) for line in lines[len(notes) + 2:]), out
    assert not any(line.lstrip().startswith(("no regression", "ALL GREEN", "OK", "lstm-conformance gate: no"))
                   for line in lines), out
