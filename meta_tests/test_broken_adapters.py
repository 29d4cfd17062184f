"""The suite must flag each deliberately broken adapter, naming the broken rule, and pass the correct one.

Each run is a real conformance run (subprocess, profile ci: derandomized, so the verdict is
reproducible). The fail record is the *shrunk* example: hypothesis minimises the case (tiny weights,
float32, a few steps), which is where a slip is hardest to see, so its ratio is the smallest margin the
suite showed, not a typical one (``lstm-conformance calibrate`` measures slips on unshrunk cases).
"""

from __future__ import annotations

import math

import pytest
from broken_adapters import EXPECTED
from conftest import SuiteRun, record_broken_result

from conformance.harness import errors

# Each broken adapter runs only the property its slip breaks (a pytest node id: keeps the meta tests fast);
# the correct adapter runs all of those properties together.
BROKEN = {name: SuiteRun(name, (f"{module}::{prop}",)) for name, (_, module, prop, _) in EXPECTED.items()}
CORRECT = SuiteRun("numpy", tuple(sorted({f"{module}::{prop}" for _, module, prop, _ in EXPECTED.values()})))


@pytest.mark.parametrize("suite_run", list(BROKEN.values()), ids=list(BROKEN), indirect=True)
def test_broken_adapter_is_flagged_with_its_rule(suite_run):
    name = suite_run.run.backend
    rule = EXPECTED[name][3]
    assert suite_run.returncode == 1, f"{name}: expected pytest exit 1 (tests failed)\n{suite_run.describe()}"
    fails = suite_run.with_verdict("fail")
    naming = [r for r in fails if rule in r.get("implicated", [])]
    assert naming, (f"{name}: no fail record implicates {rule}; fail records implicate "
                    f"{[r.get('implicated') for r in fails]}\n{suite_run.describe()}")
    assert not suite_run.with_verdict("crash"), f"{name}: the slip should fail the comparison, not crash"
    # a ratio stored as null is not finite (files.to_jsonable): a wrong value where the reference is exactly 0
    ratios = [math.inf if r["metrics"]["ratio"] is None else r["metrics"]["ratio"] for r in naming
              if "ratio" in (r.get("metrics") or {})]
    for r in naming:
        if "min_bits" in (r.get("metrics") or {}):
            # a precision fail (NUM-5): the effective bits are the evidence
            assert r["metrics"]["bits"] < r["metrics"]["min_bits"] or r["metrics"]["returned_dtypes"] != [r["dtype"]], r
        elif "ratio" in (r.get("metrics") or {}):
            # a comparison fail: the recorded ratio is the evidence, and it must exceed K (NUM-4)
            assert r["metrics"]["ratio"] is None or r["metrics"]["ratio"] > errors.K, r
        else:
            # a count fail (PARAM-*): the record carries both numbers
            assert r["metrics"]["param_count"] != r["metrics"]["param_expected"], r
    record_broken_result(name, rule, len(naming), ratios, suite_run.duration)
    shown = ", ".join(f"{x:.3g}" for x in ratios) or "n/a (parameter count)"
    print(f"{name}: {len(naming)} fail record(s) naming {rule}; ratios {shown} (K={errors.K:g})")


@pytest.mark.parametrize("suite_run", [CORRECT], ids=["numpy"], indirect=True)
def test_correct_numpy_adapter_passes_the_same_runs(suite_run):
    """The same properties on the unbroken numpy adapter: exit 0 and not one fail, so the checker discriminates."""
    assert suite_run.returncode == 0, suite_run.describe()
    bad = suite_run.with_verdict("fail") + suite_run.with_verdict("crash")
    assert not bad, f"the correct adapter got {len(bad)} fail/crash records: {[r.get('message') for r in bad]}"
    passed_rules = {rule for r in suite_run.with_verdict("pass") for rule in r.get("rules", [])}
    missing = {rule for *_, rule in EXPECTED.values()} - passed_rules
    assert not missing, f"the correct run never passed a check of {sorted(missing)}: it did not run the same checks"


@pytest.mark.parametrize("suite_run", [
    pytest.param(SuiteRun("numpy", ("conformance",), ("-k", "nothing_matches")), id="all-deselected"),
    pytest.param(SuiteRun("broken-never-installed", ("conformance/properties/test_equations.py",)),
                 id="backend-not-installed"),
], indirect=True)
def test_run_that_executes_no_check_fails(suite_run):
    """A conformance run that checked nothing must not look like a pass (no check recorded pass/fail)."""
    assert suite_run.returncode != 0, f"a run with zero checks exited 0\n{suite_run.describe()}"
    assert not [r for r in suite_run.records if r.get("verdict") != "skip"], suite_run.describe()
    if suite_run.run.backend == "broken-never-installed":
        # an explicitly requested backend that is not installed stops the run at start-up: exit 3 (environment)
        # and one line naming it, not every property skipped and '0 checks executed'
        assert suite_run.returncode == 3, suite_run.describe()
        lines = [line for line in suite_run.output.splitlines() if line.strip()]
        assert len(lines) == 1 and "--backend broken-never-installed not installed" in lines[0], suite_run.describe()
        assert not suite_run.run_dir.exists(), "stopped before any check: no run folder"
