"""``lstm-conformance report`` and ``repro`` on real harness runs (numpy adapter, correct and gate-swapped)."""

from __future__ import annotations

import ast
import json
import os
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import jsonschema
import pytest
from report_fixtures import HOSTILE, ROOT, subprocess_env

from conformance.harness.results import VERDICTS, Result, read_results
from conformance.harness.rules import rule_sort_key, spec_rules

SCHEMA = json.loads((ROOT / "conformance" / "report" / "schema.json").read_text())


def _records(run_dir: Path) -> list[Result]:
    return read_results(run_dir / "results.jsonl")[0]


def test_summary_follows_schema_and_counts_every_record(swapped_report, harness_runs):
    out, summary = swapped_report
    on_disk = json.loads((out / "summary.json").read_text())
    jsonschema.validate(on_disk, SCHEMA)
    for key, run_id in (("numpy", "good-a"), ("numpy-swapped-if", "swapped")):
        b = on_disk["backends"][key]
        recs = _records(harness_runs.get(run_id))
        assert b["counts"] == {v: Counter(r.verdict.value for r in recs).get(v, 0) for v in VERDICTS}
        # a non-pass record counts under the rules it implicates (all its rules when it names none)
        per_rule = Counter((rid, r.verdict.value) for r in recs
                           for rid in (r.implicated if r.implicated and r.verdict.value != "pass" else r.rules))
        assert {(rid, v): n for rid, c in b["rules"].items() for v, n in c.items() if n} == dict(per_rule)
        per_prop = Counter((r.property, r.verdict.value) for r in recs)
        assert {(p, v): n for p, c in b["properties"].items() for v, n in c.items() if n} == dict(per_prop)
        assert b["versions"]["numpy"] and b["device"] == "cpu"
        assert set(b["kernel_paths"]) == {r.kernel_path for r in recs if r.kernel_path}
    info = json.loads((harness_runs.get("good-a") / "run.json").read_text())
    run = next(r for r in on_disk["runs"] if r["run_id"] == "good-a")
    assert (run["profile"], run["K"], run["floor_ulps"], run["suite_version"]) == (
        "ci", info["K"], info["floor_ulps"], info["suite_version"])
    assert on_disk["error_model"]["K"] == info["K"]
    swapped = on_disk["backends"]["numpy-swapped-if"]
    assert swapped["rules"]["GATE-1"]["fail"] >= 1, "the gate swap must fail a GATE-1 check"
    assert swapped["ratios"]["max"] > info["K"]
    assert set(spec_rules()) <= set(on_disk["rules"])
    # natural order (ACT-2 before ACT-10) where order shows: the summary returned and the page's matrix
    assert list(summary["rules"]) == sorted(summary["rules"], key=rule_sort_key)
    assert list(summary["backends"]["numpy"]["rules"]) == sorted(summary["backends"]["numpy"]["rules"],
                                                                 key=rule_sort_key)
    html = (out / "index.html").read_text()
    assert html.index('id="rule-ACT-2"') < html.index('id="rule-ACT-10"')
    # the rules a property cites come from run.json's property -> @rules map, not from scanning sources
    assert run["properties"] == {p: sorted(r, key=rule_sort_key) for p, r in info["properties"].items()}
    assert run["hypothesis_seed"] == info["hypothesis_seed"]
    assert "forward_matches_reference" in on_disk["rules"]["GATE-1"]["properties"]
    assert on_disk["rules"]["GATE-1"]["cited"] and on_disk["rules"]["GATE-1"]["exercised"]


def test_schema_knows_every_verdict():
    assert SCHEMA["$defs"]["verdict"]["enum"] == list(VERDICTS)
    assert SCHEMA["$defs"]["counts"]["required"] == list(VERDICTS)


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
    assert "Run killed-run: killed." in html
    assert "1 line(s) skipped (truncated, corrupt or not a valid record); 5 record(s) kept" in html
    assert "results.jsonl:6: not a complete JSON line" in html, "the lost line is named"


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
        proc = subprocess.run([sys.executable, "-c", wrapper], check=False, cwd=out, env=subprocess_env(), text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=120)
        assert proc.returncode == 1, proc.stdout
        assert "result   FAIL" in proc.stdout and f["property"] in proc.stdout
        ratio = f["metrics"]["ratio"]
        assert f"ratio    {ratio:.6g}" in proc.stdout, f"replay must give the recorded ratio {ratio}:\n{proc.stdout}"
        html = (out / "index.html").read_text()
        assert f["script"] in html


def test_repro_script_names_backend_property_rules_run_and_environment(swapped_report):
    out, summary = swapped_report
    b = summary["backends"]["numpy-swapped-if"]
    f = b["failures"][0]
    text = (out / f["script"]).read_text()
    header = [line for line in text.splitlines() if line.startswith("#")]
    assert header[0] == "#!/usr/bin/env python3"
    joined = "\n".join(header)
    env_hint = ".tox/numpy-swapped-if/bin/python"
    for what in ("numpy-swapped-if", f["property"], ", ".join(f["rules"]), b["run"], env_hint):
        assert what in joined, f"{what!r} missing from the script's header:\n{joined}"
    assert 'sys.exit(main(["repro", str(blob_path)]))' in text and "from conformance.cli import main" in text
    compile(text, f["script"], "exec")


def test_repro_script_comment_cannot_be_escaped():
    from conformance.report.repro_scripts import render_script

    evil = "x\nimport os; os.system('echo pwned')\r\u2028# y"
    text = render_script(backend={"adapter": evil, "run": evil, "framework": evil},
                         failure={"property": evil, "rules": [evil], "verdict": "fail", "variant": evil},
                         blob_name="b'\n.npz", script=evil)
    tree = ast.parse(text)  # comments are not in the tree; a value that escaped its comment would be
    assert "pwned" not in ast.dump(tree), text
    blob_literal = repr("b'\n.npz")
    assert f".with_name({blob_literal})" in text, "the blob name is a Python literal"


def test_repro_of_the_same_blob_passes_on_the_correct_adapter(swapped_report, monkeypatch, capsys):
    from conformance.adapters import BUILTIN
    from conformance.harness.repro import replay

    out, summary = swapped_report
    blob = out / summary["backends"]["numpy-swapped-if"]["failures"][0]["blob"]
    monkeypatch.setitem(BUILTIN, "numpy-swapped-if", "conformance.adapters.numpy_ref:NumpyAdapter")
    assert replay(blob) == 0
    assert "result   PASS" in capsys.readouterr().out


def test_repro_unusable_input_exits_2(tmp_path, capsys):
    from conformance.cli import main as cli

    assert cli(["repro", str(tmp_path / "missing.npz")]) == 2
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    assert cli(["repro", str(tmp_path / "junk.npz")]) == 2
    err = capsys.readouterr().err
    assert "junk.npz: not a" in err and "repro blob" in err, err


def test_markup_in_configs_and_messages_is_escaped(hostile_report):
    out, _ = hostile_report
    html = (out / "index.html").read_text()
    for what, text in HOSTILE.items():
        assert text not in html, f"{what} reached the page unescaped"
    assert "&lt;script&gt;alert(&#39;message&#39;)&lt;/script&gt;" in html
    assert html.count("<script>") == 1, "only the report's own inline script"
    assert not list((out / "repro").glob("**/*passwd*")), "a repro path leaving the run directory must not be copied"


def test_report_over_a_reports_root(harness_runs, tmp_path, capsys):
    from conformance.report import find_run_dirs, run_report

    root = tmp_path / "reports"
    root.mkdir()
    with pytest.raises(ValueError, match="did any backend run"):
        run_report([root], root / "latest")
    for run_id in ("good-a", "swapped"):
        (root / run_id).symlink_to(harness_runs.get(run_id), target_is_directory=True)
    (root / "notes").mkdir()  # not a run: ignored
    assert run_report([root], root / "latest") == 0
    assert "2 run(s) (good-a, swapped)" in capsys.readouterr().out
    summary = json.loads((root / "latest" / "summary.json").read_text())
    assert [r["run_id"] for r in summary["runs"]] == ["good-a", "swapped"]
    # a second report over the same root must not pick up its own output as a run
    assert [d.name for d in find_run_dirs(root)] == ["good-a", "swapped"]
    assert [d.name for d in find_run_dirs(root, exclude=[root / "swapped"])] == ["good-a"]
    with pytest.raises(ValueError, match="no such run directory"):
        run_report([tmp_path / "no-such-run"], tmp_path / "o")


def test_python_m_conformance_report_over_a_root(harness_runs, tmp_path):
    """The tox ``report`` env's way in: ``python -m conformance.report ROOT`` -> ROOT/latest."""
    root = tmp_path / "reports"
    root.mkdir()
    (root / "good-a").symlink_to(harness_runs.get("good-a"), target_is_directory=True)
    proc = subprocess.run([sys.executable, "-m", "conformance.report", str(root)], check=False, cwd=ROOT, text=True,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=120)
    assert proc.returncode == 0, proc.stdout
    assert json.loads((root / "latest" / "summary.json").read_text())["runs"][0]["run_id"] == "good-a"
    proc = subprocess.run([sys.executable, "-m", "conformance.report", str(tmp_path / "empty")], check=False, cwd=ROOT,
                          text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=120)
    assert proc.returncode == 2, proc.stdout


def test_report_never_imports_an_adapter(harness_runs, tmp_path):
    """The report reads records only (DESIGN §1): building one imports no adapter, not even through harness."""
    code = ("import sys; from pathlib import Path; from conformance.report import make_report; "
            "from conformance.report.gate import load_summary; "
            f"make_report([Path({str(harness_runs.get('swapped'))!r})], Path({str(tmp_path / 'out')!r})); "
            f"load_summary(Path({str(harness_runs.get('good-a'))!r})); "
            "bad = sorted(m for m in sys.modules if m.startswith(('conformance.adapters', 'conformance.harness.judge',"
            " 'conformance.harness.plugin', 'conformance.harness.strategies', 'conformance.harness.repro'))); "
            "print(bad); sys.exit(1 if bad else 0)")
    proc = subprocess.run([sys.executable, "-c", code], check=False, cwd=ROOT, text=True, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, timeout=120)
    assert proc.returncode == 0, proc.stdout


def test_bad_records_are_named_and_skipped_the_others_render(harness_runs, tmp_path):
    from conformance.report import make_report

    run = tmp_path / "damaged"
    shutil.copytree(harness_runs.get("good-a"), run)
    info = json.loads((run / "run.json").read_text())
    info["run_id"] = "damaged"
    (run / "run.json").write_text(json.dumps(info))
    lines = (run / "results.jsonl").read_text().splitlines()
    rec = json.loads(lines[1])
    bad = [dict(rec, verdict="maybe"), dict(rec, rules="GATE-1"), {k: v for k, v in rec.items() if k != "adapter"}]
    lines[1:2] = [json.dumps(b) for b in bad]
    (run / "results.jsonl").write_text("\n".join(lines) + "\n")
    summary = make_report([run], tmp_path / "out")
    entry = summary["runs"][0]
    assert (entry["records"], entry["lost_lines"]) == (len(lines) - 3, 3)
    problems = "\n".join(entry["problems"])
    assert "results.jsonl:2: field 'verdict': 'maybe' is not one of" in problems
    assert "results.jsonl:3: field 'rules'" in problems and "results.jsonl:4: field 'adapter' is missing" in problems
    assert sum(summary["totals"].values()) == len(lines) - 3
    html = (tmp_path / "out" / "index.html").read_text()
    assert "results.jsonl:2: field &#39;verdict&#39;" in html and 'id="rule-GATE-1"' in html


def test_records_of_the_previous_layout_still_load(tmp_path):
    """A results.jsonl of the previous layout (no schema_version, no check, free property labels) and its
    run.json (no properties map, no hypothesis_seed) make a report, with a note saying so."""
    from report_fixtures import LEGACY_RUN

    from conformance.report import make_report

    raw = [json.loads(line) for line in (LEGACY_RUN / "results.jsonl").read_text().splitlines()]
    assert not any("schema_version" in r or "check" in r for r in raw)
    assert {"forward", "go_backwards", "shapes", "params", "continuation"} <= {r["property"] for r in raw}
    summary = make_report([LEGACY_RUN], tmp_path / "out")
    run = summary["runs"][0]
    assert run["records"] == len(raw) and run["lost_lines"] == 0 and run["hypothesis_seed"] is None
    problems = "\n".join(run["problems"])
    assert f"{len(raw)} record(s) written before record schema 2" in problems
    assert "'forward' -> 'forward_matches_reference'" in problems and "'go_backwards' -> " in problems
    numpy = summary["backends"]["numpy"]
    assert numpy["counts"]["pass"] == sum(r["adapter"] == "numpy" and r["verdict"] == "pass" for r in raw)
    assert set(numpy["properties"]) >= {"forward_matches_reference", "param_count_matches_convention"}
    assert numpy["params"], "the legacy 'params' records are parameter-count checks"
    swapped = summary["backends"]["numpy-swapped-if"]
    assert swapped["counts"]["fail"] == 3 and swapped["rules"]["GATE-1"]["fail"] >= 1
    # without run.json's property map, a rule counts as cited when a record names it
    gate1 = summary["rules"]["GATE-1"]
    assert gate1["cited"] and "forward_matches_reference" in gate1["properties"]
    html = (tmp_path / "out" / "index.html").read_text()
    assert "written before record schema 2" in html
    assert "was not found in the run directory" in html, "the legacy failures' blobs were not kept"


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


def test_a_third_party_adapters_repro_command_is_its_environments_console_script(harness_runs, tmp_path):
    """A built-in adapter's repro runs in the checkout's tox env; an entry-point adapter (run.json says
    builtin false) has no tox env here: the command is the console script of wherever it is installed."""
    from conformance.report import make_report
    from conformance.report.repro_scripts import repro_command

    assert repro_command("torch", "r/x.npz") == ".tox/torch/bin/lstm-conformance repro r/x.npz"
    assert repro_command("mykernel", "r/x.npz", builtin=False) == "lstm-conformance repro r/x.npz"
    run = tmp_path / "third-party"
    shutil.copytree(harness_runs.get("swapped"), run)
    info = json.loads((run / "run.json").read_text())
    assert all(meta.get("builtin") is True for meta in info["backends"].values() if "unavailable" not in meta)
    for meta in info["backends"].values():
        meta["builtin"] = False
    (run / "run.json").write_text(json.dumps(info))
    make_report([run], tmp_path / "out")
    html = (tmp_path / "out" / "index.html").read_text()
    assert "in the environment where the" in html and "\nlstm-conformance repro " in html
    assert "--notest" not in html


def test_the_file_a_failing_call_ran_is_kept_beside_its_repro_and_linked(harness_runs, tmp_path):
    """Adapter.artifacts (an exported graph): the run copies it beside the failing check's blob
    (keep_artifacts), the report copies it beside the blob it shows and links it on the card."""
    from conformance.harness.repro import keep_artifacts
    from conformance.report import make_report

    run = tmp_path / "exported"
    shutil.copytree(harness_runs.get("swapped"), run)
    blob = next((run / "repro").glob("*.npz")).relative_to(run).as_posix()
    graph = tmp_path / "lstm-state.onnx"
    graph.write_bytes(b"the exported graph")
    kept = keep_artifacts(run, blob, [graph])
    assert kept == [blob[:-len(".npz")] + ".lstm-state.onnx"] and (run / kept[0]).read_bytes() == b"the exported graph"
    make_report([run], tmp_path / "out")
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    arts = [a for b in summary["backends"].values() for f in b["failures"] for a in f.get("artifacts") or []]
    assert len(arts) == 1 and (tmp_path / "out" / arts[0]).read_bytes() == b"the exported graph", arts
    assert f'file it ran <a href="{arts[0]}">' in (tmp_path / "out" / "index.html").read_text()
