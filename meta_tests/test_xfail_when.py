"""Conditional xfail entries (``when = {...}`` / ``unless = {...}`` tables of a ``[[finding]]`` in
``conformance/xfails/<backend>.toml``): only the cases they describe turn into *xfail*.

The Checker runs in-process on the broken gate-swap adapter (every forward check fails): a matching case
is recorded as xfail and the check returns; a case outside the finding still fails the check.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from broken_adapters import GateSwapAdapter

from conformance.adapters.numpy_ref import NumpyAdapter
from conformance.harness.checker import Checker, CheckFailure
from conformance.harness.judge import Target
from conformance.harness.results import ResultWriter
from conformance.harness.strategies import Case
from conformance.harness.xfails import XFAIL_DIR, case_facts, load_xfails
from reference import Config, random_weights

BACKEND = "broken-gate-swap"


def _findings(tmp_path, *tables: str) -> list:
    """Write ``tables`` (the body of each ``[[finding]]``) as the backend's xfail file; load it back."""
    body = "\n".join(f'[[finding]]\ntest = "*"\nrule = "GATE-1"\nversions = "*"\nreason = "known slip"\n{t}\n'
                     for t in tables)
    (tmp_path / f"{BACKEND}.toml").write_text(body, encoding="utf-8")
    return load_xfails(BACKEND, directory=tmp_path)


def _facts(dtype="float64", activation="tanh", recurrent_activation="gelu", mask="arbitrary", **config):
    described = {"config": {"dtype": dtype, "activation": activation,
                            "recurrent_activation": recurrent_activation, **config}, "mask": mask}
    return case_facts(described, "default")


def test_when_and_unless_tables_match_case_facts(tmp_path):
    (entry, plain) = _findings(tmp_path, 'when = { dtype = "float64", activations = "gelu" }\n'
                                         'unless = { mask = "none" }', "")
    assert entry.conditional and not plain.conditional
    assert entry.matches_case(_facts())
    assert not entry.matches_case(_facts(mask="none")), "unless excludes the case"
    assert not entry.matches_case(_facts(dtype="float32")), "every when key must match"
    assert not entry.matches_case(_facts(recurrent_activation="sigmoid")), "activations: either activation"


def test_list_values_match_any_and_booleans_match_config_flags(tmp_path):
    (entry,) = _findings(tmp_path, 'when = { dtype = ["float32", "float64"], go_backwards = true }')
    assert entry.matches_case(_facts("float32", go_backwards=True))
    assert entry.matches_case(_facts("float64", go_backwards=True))
    assert not entry.matches_case(_facts("float64", go_backwards=False))


def test_unknown_key_is_refused_with_the_allowed_keys(tmp_path):
    with pytest.raises(ValueError, match=r"finding 1: 'when' key 'colour' is not a case fact; allowed: .*dtype"):
        _findings(tmp_path, 'when = { colour = "red" }')


def test_when_as_a_string_is_refused(tmp_path):
    # the old one-line form "dtype=float64" is not a table: refused, not silently ignored
    with pytest.raises(ValueError, match="'unless' must be a table"):
        _findings(tmp_path, 'unless = "dtype=float64"')


def test_missing_text_field_is_refused(tmp_path):
    (tmp_path / f"{BACKEND}.toml").write_text('[[finding]]\ntest = "*"\nrule = "GATE-1"\nversions = "*"\n')
    with pytest.raises(ValueError, match="missing or empty: \\['reason'\\]"):
        load_xfails(BACKEND, directory=tmp_path)


def _case(dtype: str) -> Case:
    cfg = Config(input_dim=3, units=4, return_sequences=True, return_state=True, dtype=dtype)
    rng = np.random.default_rng(1)
    return Case(cfg, random_weights(cfg, rng), rng.normal(size=(2, 5, 3)))


def test_matching_case_is_recorded_xfail_and_others_still_fail(tmp_path):
    entries = _findings(tmp_path, 'when = { dtype = "float64" }')
    writer = ResultWriter(tmp_path / "run", {"run_id": "when"})
    checker = Checker(target=Target(GateSwapAdapter()), sink=writer, rules=("GATE-1",), test_id="t",
                      property="forward_matches_reference", case_xfails=tuple(entries), save_repros=False)
    checker.forward(_case("float64"))  # described by the finding: no failure raised
    with pytest.raises(CheckFailure):
        checker.forward(_case("float32"))  # outside it: still a failure
    writer.close()
    lines = (tmp_path / "run" / "results.jsonl").read_text().splitlines()
    assert [json.loads(line)["verdict"] for line in lines] == ["xfail", "fail"]


def test_shipped_xfail_files_parse():
    backends = sorted(p.stem for p in XFAIL_DIR.glob("*.toml"))
    assert backends, f"no xfail files in {XFAIL_DIR}"
    for backend in backends:
        for entry in load_xfails(backend):
            assert entry.rule and entry.reason, entry.source


def test_a_finding_whose_cases_pass_is_counted_as_fixed_here(tmp_path):
    """On the correct numpy adapter a finding's described cases pass: the stats show it, so the plugin can
    say "fixed here?" instead of silently ignoring a stale entry."""
    (entry,) = _findings(tmp_path, 'when = { dtype = "float64" }')
    cfg = Config(input_dim=2, units=3, dtype="float64")
    case = Case(cfg, random_weights(cfg, np.random.default_rng(1)), np.random.default_rng(2).normal(size=(2, 4, 2)))
    stats: dict = {}
    checker = Checker(target=Target(NumpyAdapter()), sink=None, rules=("GATE-1",), test_id="t", property="p",
                      case_xfails=(entry,), finding_stats=stats)
    checker.forward(case)
    assert stats[entry.source] == {"rule": "GATE-1", "versions": "*", "pass": 1, "xfail": 0}


class _CrashingAdapter(NumpyAdapter):
    """Crashes on bidirectional configs (a release whose Bidirectional cannot be called), runs the rest."""

    name = BACKEND

    def forward(self, handle, x, **kw):
        if handle.config.bidirectional:
            raise ValueError("Bidirectional cannot be called")
        return super().forward(handle, x, **kw)


def _crash_checker(tmp_path) -> Checker:
    (entry,) = _findings(tmp_path, "when = { bidirectional = true }")
    return Checker(target=Target(_CrashingAdapter()), sink=None, rules=("BIDI-3",), test_id="t", property="p",
                   case_xfails=(entry,), save_repros=False)


def _bidi_case(bidirectional=True) -> Case:
    cfg = Config(input_dim=2, units=3, bidirectional=bidirectional)
    return Case(cfg, random_weights(cfg, np.random.default_rng(1)), np.random.default_rng(2).normal(size=(2, 4, 2)))


# the checker's reject() is called here directly, outside a property, to observe what it raises
@pytest.mark.filterwarnings("ignore:Using `reject` outside a property-based test")
def test_a_test_whose_every_case_is_a_known_crash_stops_early(tmp_path):
    """Each known crash rejects its draw; once KNOWN_CRASH_STOP cases in a row from the test's first were the
    known crash, the test stops (skip naming the finding) instead of hypothesis drawing hundreds more."""
    from hypothesis.errors import UnsatisfiedAssumption

    from conformance.harness.checker import KNOWN_CRASH_STOP

    checker = _crash_checker(tmp_path)
    for _ in range(KNOWN_CRASH_STOP - 1):
        with pytest.raises(UnsatisfiedAssumption):
            checker.forward(_bidi_case())
    with pytest.raises(pytest.skip.Exception, match=r"stopped after 5 cases, each the known crash .*GATE-1"):
        checker.forward(_bidi_case())


# the checker's reject() is called here directly, outside a property, to observe what it raises
@pytest.mark.filterwarnings("ignore:Using `reject` outside a property-based test")
def test_a_known_crash_among_cases_that_run_does_not_stop_the_test(tmp_path):
    from hypothesis.errors import UnsatisfiedAssumption

    from conformance.harness.checker import KNOWN_CRASH_STOP

    checker = _crash_checker(tmp_path)
    checker.forward(_bidi_case(bidirectional=False))  # a case that runs (and passes)
    for _ in range(KNOWN_CRASH_STOP + 2):
        with pytest.raises(UnsatisfiedAssumption):  # the known crash: rejected, the test goes on drawing
            checker.forward(_bidi_case())
