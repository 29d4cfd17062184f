"""``lstm-conformance report`` and ``repro`` on real harness runs (numpy adapter, correct and gate-swapped)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import jsonschema
import pytest
from report_fixtures import HOSTILE, ROOT, subprocess_env

from conformance.recording import read_results
from conformance.rules import spec_rules

SCHEMA = json.loads((ROOT / "conformance" / "report" / "schema.json").read_text())





def _records(run_dir: Path) -> list[dict]:
    return read_results(run_dir / "results.jsonl")[0]


def test_summary_follows_schema_and_counts_every_record(swapped_report, harness_runs):
    out, _ = swapped_report
    on_disk = json.loads((out / "summary.json").read_text())
    jsonschema.validate(on_disk, SCHEMA)
    for key, run_id in (("numpy", "good-a"), ("numpy-swapped-if", "swapped")):
        b = on_disk["backends"][key]
        recs = _records(harness_runs.get(run_id))
        assert b["counts"] == {v: Counter(r["verdict"] for r in recs).get(v, 0)
                               for v in ("pass", "fail", "skip", "xfail", "crash")}
        per_rule = Counter((rid, r["verdict"]) for r in recs for rid in r["rules"])
        assert {(rid, v): n for rid, c in b["rules"].items() for v, n in c.items() if n} == dict(per_rule)
        per_prop = Counter((r["property"], r["verdict"]) for r in recs)
        assert {(p, v): n for p, c in b["properties"].items() for v, n in c.items() if n} == dict(per_prop)
        assert b["versions"]["numpy"] and b["device"] == "cpu"
        assert set(b["kernel_paths"]) == {r["kernel_path"] for r in recs if r.get("kernel_path")}
    info = json.loads((harness_runs.get("good-a") / "run.json").read_text())
    run = next(r for r in on_disk["runs"] if r["run_id"] == "good-a")
    assert (run["profile"], run["K"], run["floor_ulps"], run["suite_version"]) == (
        "ci", info["K"], info["floor_ulps"], info["suite_version"])
    assert on_disk["error_model"]["K"] == info["K"]
    swapped = on_disk["backends"]["numpy-swapped-if"]
    assert swapped["rules"]["GATE-1"]["fail"] >= 1, "the gate swap must fail a GATE-1 check"
    assert swapped["ratios"]["max"] > info["K"]
    assert set(spec_rules()) <= set(on_disk["rules"])


def test_schema_rejects_a_malformed_summary(swapped_report):
    _, summary = swapped_report
    bad = json.loads(json.dumps(summary))
    bad["backends"]["numpy"]["counts"]["pass"] = "many"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, SCHEMA)


def test_html_is_self_contained_and_lists_every_spec_rule(swapped_report):
    out, summary = swapped_report
    html = (out / "index.html").read_text()
    for needle in ("http://", "https://", "<link", "@import", "url(", " src=", "//cdn"):
        assert needle not in html, f"index.html must not reference anything outside itself ({needle!r})"
    for rid in spec_rules():
        assert f'id="rule-{rid}"' in html, f"rule {rid} missing from the matrix"
    for key in summary["backends"]:
        assert f">{key}</th>" in html


def test_killed_run_is_shown_with_what_finished(swapped_report):
    out, summary = swapped_report
    run = next(r for r in summary["runs"] if r["run_id"] == "killed-run")
    assert (run["status"], run["records"], run["lost_lines"]) == ("killed", 5, 1)
    b = summary["backends"]["numpy@killed-run"]
    assert b["status"] == "killed" and sum(b["counts"].values()) == 5
    html = (out / "index.html").read_text()
    assert "Run killed-run: killed." in html and "1 line(s) truncated or corrupt and lost; 5 complete kept" in html


def test_parameter_report_shows_seed_examples_and_checked_configs(swapped_report):
    out, summary = swapped_report
    html = (out / "index.html").read_text()
    d, u = 80, 12  # the seeds' layer: Keras/Flax 4u(d+u+1), torch/ONNX two biases 4u(d+u+2)
    assert summary["param_examples"]["layer"]["counts"] == {
        "keras": 4 * u * (d + u + 1), "torch": 4 * u * (d + u + 2), "onnx": 4 * u * (d + u + 2),
        "flax": 4 * u * (d + u + 1)}
    assert f"{4 * u * (d + u + 1):,}" in html and f"{4 * u * (d + u + 2):,}" in html
    model = summary["param_examples"]["model"]
    assert [r["layer"] for r in model["layers"]] == [
        "lstm:64", "lstm:128", "lstm:64", "dense:64", "dense:32", "dense:5"]
    assert model["layers"][0]["keras"] == 4 * 64 * (126 + 64 + 1)
    rows = summary["backends"]["numpy"]["params"]
    assert rows, "the params property ran: its configurations must be listed"
    for row in rows:
        assert row["verdict"] == "pass" and row["framework_count"] == row["reference_count"]
        assert row["by_convention"][row["convention"]] == row["reference_count"]


def test_every_failure_has_a_repro_script_that_reproduces_it(swapped_report):
    out, summary = swapped_report
    failures = summary["backends"]["numpy-swapped-if"]["failures"]
    assert failures
    for f in failures:
        script = out / f["script"]
        assert script.is_file() and (out / f["blob"]).is_file()
        # the adapter exists only where it is registered: register it, then run the script as written
        wrapper = ("import sys, runpy, report_fixtures; report_fixtures.pytest_configure(None); "
                   f"sys.argv = [{str(script)!r}]; runpy.run_path({str(script)!r}, run_name='__main__')")
        proc = subprocess.run([sys.executable, "-c", wrapper], cwd=out, env=subprocess_env(), text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=120)
        assert proc.returncode == 1, proc.stdout
        assert "result   FAIL" in proc.stdout and f["property"] in proc.stdout
        ratio = f["metrics"]["ratio"]
        assert f"ratio    {ratio:.6g}" in proc.stdout, f"replay must give the recorded ratio {ratio}:\n{proc.stdout}"
        html = (out / "index.html").read_text()
        assert f["script"] in html


def test_repro_of_the_same_blob_passes_on_the_correct_adapter(swapped_report, monkeypatch, capsys):
    from conformance import repro
    from conformance.adapters import BUILTIN

    out, summary = swapped_report
    blob = out / summary["backends"]["numpy-swapped-if"]["failures"][0]["blob"]
    monkeypatch.setitem(BUILTIN, "numpy-swapped-if", "conformance.adapters.numpy_ref:NumpyAdapter")
    assert repro.main([str(blob)]) == 0
    assert "result   PASS" in capsys.readouterr().out


def test_repro_unusable_input_exits_2(tmp_path, capsys):
    from conformance import repro
    from conformance.cli import main as cli

    assert cli(["repro", str(tmp_path / "missing.npz")]) == 2
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    assert repro.main([str(tmp_path / "junk.npz")]) == 2
    assert "not a readable .npz" in capsys.readouterr().err


def test_markup_in_configs_and_messages_is_escaped(hostile_report):
    out, summary = hostile_report
    html = (out / "index.html").read_text()
    for what, text in HOSTILE.items():
        assert text not in html, f"{what} reached the page unescaped"
    assert "&lt;script&gt;alert(&#39;message&#39;)&lt;/script&gt;" in html
    assert html.count("<script>") == 1, "only the report's own inline script"
    assert not list((out / "repro").glob("**/*passwd*")), "a repro path leaving the run directory must not be copied"


def test_report_cli_and_helper_over_a_reports_root(harness_runs, tmp_path):
    from conformance.cli import main as cli
    from conformance.report import main_all

    root = tmp_path / "reports"
    root.mkdir()
    assert main_all([str(root)]) == 2, "no run at all is an error, with a message"
    for run_id in ("good-a", "swapped"):
        (root / run_id).symlink_to(harness_runs.get(run_id), target_is_directory=True)
    (root / "notes").mkdir()  # not a run: ignored
    assert main_all([str(root)]) == 0
    summary = json.loads((root / "latest" / "summary.json").read_text())
    assert [r["run_id"] for r in summary["runs"]] == ["good-a", "swapped"]
    # a second report over the same root must not pick up latest/ as a run
    assert main_all([str(root)]) == 0
    assert cli(["report", str(tmp_path / "no-such-run"), "--out", str(tmp_path / "o")]) == 2


def test_a_failed_write_leaves_the_previous_report_intact(harness_runs, tmp_path, monkeypatch):
    from conformance.report import make_report

    out = tmp_path / "out"
    make_report([harness_runs.get("good-a")], out)
    before = {name: (out / name).read_bytes() for name in ("summary.json", "index.html")}

    def disk_full(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", disk_full)  # every atomic write renames its temp file last
    with pytest.raises(OSError, match="disk full"):
        make_report([harness_runs.get("good-a"), harness_runs.get("swapped")], out)
    monkeypatch.undo()
    assert {name: (out / name).read_bytes() for name in before} == before
    assert not [p.name for p in out.rglob("*.tmp")], "temp files must be removed when a write fails"
