"""Conditional xfail entries (``... | WHEN | REASON``): only the cases a WHEN describes turn into *xfail*.

Run in-process on the broken gate-swap adapter (every forward check fails): a matching case is recorded as
xfail and the check returns; a case outside the WHEN still fails the check.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from broken_adapters import GateSwapAdapter
from conformance.checks import CheckFailure, Checker
from conformance.recording import ResultWriter
from conformance.strategies import Case
from conformance.xfails import XfailEntry, case_facts, load_xfails
from reference import Config, random_weights


def _case(dtype: str) -> Case:
    cfg = Config(input_dim=3, units=4, return_sequences=True, return_state=True, dtype=dtype)
    rng = np.random.default_rng(1)
    return Case(cfg, random_weights(cfg, rng), rng.normal(size=(2, 5, 3)))


def _checker(tmp_path, entries) -> Checker:
    writer = ResultWriter(tmp_path / "run", {"run_id": "when"})
    return Checker(adapter=GateSwapAdapter(), variant="default", device="cpu", writer=writer, rules=("GATE-1",),
                   test_id="t", case_xfails=tuple(entries))


def _verdicts(tmp_path) -> list[str]:
    lines = (tmp_path / "run" / "results.jsonl").read_text().splitlines()
    return [json.loads(line)["verdict"] for line in lines]


def test_when_clauses_match_case_facts():
    entry = XfailEntry("b", "*", "ACT-13", "*", "why", "x.txt:1", "dtype=float64; activations=gelu; mask!=none")
    facts = case_facts({"config": {"dtype": "float64", "activation": "tanh", "recurrent_activation": "gelu"},
                        "mask": "arbitrary"}, "default")
    assert entry.conditional and entry.matches_case(facts)
    facts["mask"] = ("none",)
    assert not entry.matches_case(facts)
    assert not XfailEntry("b", "*", "R", "*", "why", "x.txt:2").conditional


def test_unknown_when_key_is_refused_with_the_allowed_keys():
    with pytest.raises(ValueError, match="WHEN clause 'colour=red'.*dtype"):
        XfailEntry("b", "*", "R", "*", "why", "x.txt:3", "colour=red")


def test_matching_case_is_recorded_xfail_and_others_still_fail(tmp_path):
    entry = XfailEntry("broken-gate-swap", "*", "GATE-1", "*", "known slip", "x.txt:4", "dtype=float64")
    checker = _checker(tmp_path, [entry])
    checker.forward(_case("float64"))  # described by the WHEN: no failure raised
    with pytest.raises(CheckFailure):
        checker.forward(_case("float32"))  # outside the WHEN: still a failure
    assert _verdicts(tmp_path) == ["xfail", "fail"]


def test_shipped_xfail_files_parse():
    for backend in ("keras-tensorflow", "keras-jax", "keras-torch", "tf-keras"):
        for entry in load_xfails(backend):
            assert entry.rule and entry.reason, entry.source
