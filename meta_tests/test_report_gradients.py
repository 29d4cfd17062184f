"""The report's gradient section (GRAD-1): per backend and gradient tensor kind, the ratios of gradient checks,
a tensor of a judged check counted by its own ratio, and the GRAD rules in the rule matrix.

Built from records written by the harness's own writer (one run folder, no adapter run), so the numbers in the
summary are known exactly.
"""

from __future__ import annotations

import json

from conformance.harness import errors
from conformance.harness.results import CheckKind, Result, ResultWriter, Verdict
from conformance.report import make_report
from conformance.report.summary import HIST_EDGES


def _record(verdict: Verdict, tensors: dict[str, float | None], implicated=()) -> Result:
    worst = max(tensors, key=lambda n: float("inf") if tensors[n] is None else tensors[n])
    metrics = {"ratio": tensors[worst], "tensor": worst, "err_impl": 1e-6, "err_oracle": 1e-7, "floor": 1e-8,
               "tensors": {n: {"ratio": r, "err_impl": 1e-6, "err_oracle": 1e-7, "floor": 1e-8, "inconclusive": ""}
                           for n, r in tensors.items()}}
    return Result(adapter="numpy", verdict=verdict, property="gradients_match_reference", check=CheckKind.GRADIENT,
                  rules=["GRAD-1"], implicated=list(implicated), metrics=metrics, dtype="float32",
                  config={"config": {"input_dim": 1, "units": 1, "dtype": "float32"}, "batch": 1, "timesteps": 5})


def test_gradient_section_counts_each_tensor_by_its_own_ratio(tmp_path):
    run = tmp_path / "grad-run"
    writer = ResultWriter(run, {"run_id": "grad-run", "K": errors.K, "backends": {"numpy": {"framework": "numpy"}}})
    writer.record(_record(Verdict.PASS, {"forward": 0.5, "x": 2.0, "h0[0,0]": 1.0, "W[0,0]": 0.25}))
    # one wrong tensor (h0) fails the case; its other tensors still count as passes
    writer.record(_record(Verdict.FAIL, {"forward": 0.5, "x": 3.0, "h0[0,0]": 1e6, "W[0,0]": 0.5}, ["GRAD-1"]))
    writer.record(_record(Verdict.FAIL, {"forward": 0.5, "x": None, "h0[0,0]": 1.0, "W[0,0]": 0.5}, ["GRAD-2"]))
    writer.close()
    out = tmp_path / "html"
    make_report([run], out)
    summary = json.loads((out / "summary.json").read_text())
    grads = summary["backends"]["numpy"]["gradients"]
    assert set(grads) == {"forward", "x", "h0", "W"}
    assert grads["h0"]["count"] == 3 and grads["h0"]["max"] == 1e6
    at = int((6 - HIST_EDGES[0]) * 2)  # 1e6 lies in the half decade [1e6, 1e6.5)
    fails = grads["h0"]["histogram"]["counts"]["fail"]
    assert fails[at] == 1 and sum(fails) == 1
    assert sum(grads["h0"]["histogram"]["counts"]["pass"]) == 2
    assert grads["x"]["nonfinite"] == 1 and grads["x"]["max"] == 3.0
    assert grads["W"]["max"] == 0.5 and sum(grads["W"]["histogram"]["counts"]["fail"]) == 0
    rules = summary["backends"]["numpy"]["rules"]
    assert rules["GRAD-1"]["fail"] == 1 and rules["GRAD-2"]["fail"] == 1 and rules["GRAD-1"]["pass"] == 1
    page = (out / "index.html").read_text()
    assert 'id="gradients"' in page and 'id="grad-numpy-h0"' in page and 'href="#gradients"' in page
    # the report's order: outputs, input, states, weights
    assert page.index('id="grad-numpy-forward"') < page.index('id="grad-numpy-x"') < page.index(
        'id="grad-numpy-h0"') < page.index('id="grad-numpy-W"')


def test_report_without_gradient_checks_says_so(tmp_path):
    run = tmp_path / "fwd-run"
    writer = ResultWriter(run, {"run_id": "fwd-run", "K": errors.K})
    writer.record(Result(adapter="numpy", verdict=Verdict.PASS, property="forward_matches_reference",
                         metrics={"ratio": 0.5}, rules=["GATE-1"]))
    writer.close()
    make_report([run], tmp_path / "html")
    assert json.loads((tmp_path / "html" / "summary.json").read_text())["backends"]["numpy"]["gradients"] == {}
    assert "No gradient check ran in these runs." in (tmp_path / "html" / "index.html").read_text()
