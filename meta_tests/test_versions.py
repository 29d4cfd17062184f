"""Versions: the spec forms, the bisect search (with a stand-in probe: no venv is built here), the pins the
CI workflow uses, and the workflow's matrix against tox's backend envs."""

from __future__ import annotations

import configparser
import re
from pathlib import Path

import pytest

from conformance.versions import bisect as bisect_mod
from conformance.versions.specs import parse_pins, parse_versions

ROOT = Path(__file__).resolve().parent.parent
AVAILABLE = ["3.0.0", "3.0.1", "3.1.0", "3.2.0rc1", "3.2.0", "3.3.0", "3.4.1", "3.5.0", "2.15.0"]


@pytest.mark.parametrize("spec, expected", [
    ("keras==3.0.1...3.3.0", ["3.0.1", "3.1.0", "3.2.0", "3.3.0"]),  # pre-releases left out of a range
    ("keras==3.4.1,3.0.0", ["3.0.0", "3.4.1"]),
    ("keras>=3.1,<3.4", ["3.1.0", "3.2.0", "3.3.0"]),
    ("keras==3.2.0rc1", ["3.2.0rc1"]),  # named exactly: kept
    ("jax[cpu]==3.0.0...3.0.1", ["3.0.0", "3.0.1"]),
])
def test_version_specs_select_releases(spec, expected):
    assert parse_versions(spec).select(AVAILABLE) == expected


@pytest.mark.parametrize("spec, needle", [
    ("keras", "expected a package with versions"), ("keras==3.5...3.1", "the range is empty"),
    ("keras==x...3.1", "is not a version"), ("keras>=>3", "not a PEP 440 specifier"), ("", "expected a package"),
])
def test_bad_version_specs_name_the_problem(spec, needle):
    with pytest.raises(ValueError, match=needle):
        parse_versions(spec)


def test_pins_parse_and_refuse():
    assert parse_pins("keras==3.4.1  jax[cpu]==0.4.30 numpy<2") == ["keras==3.4.1", "jax[cpu]==0.4.30", "numpy<2"]
    assert parse_pins("") == []
    with pytest.raises(ValueError, match="LSTM_CONFORMANCE_PINS"):
        parse_pins("keras==3.4.1 ==bad")


def _fake_probe(outcomes: dict[str, str], calls: list[str]):
    def probe(case, backend, pins, cache, log):
        version = pins[0].split("==")[1]
        calls.append(version)
        return {"outcome": outcomes[version], "ratio": 1e5 if outcomes[version] == "fail" else 0.5, "message": ""}
    return probe


def _run(monkeypatch, outcomes: dict[str, str], exhaustive=False):
    calls: list[str] = []
    monkeypatch.setattr(bisect_mod, "_probe", _fake_probe(outcomes, calls))
    spec = parse_versions(f"keras=={min(outcomes)}...{max(outcomes)}")
    releases = spec.select(list(outcomes))
    results = bisect_mod.bisect(Path("case.npz"), "keras-jax", spec, releases, with_pins=[], cache=None,
                                exhaustive=exhaustive, log=lambda m: None)
    return results, calls, spec


def test_bisect_finds_the_first_bad_release_in_log_steps(monkeypatch):
    versions = [f"3.{i}.0" for i in range(10)]
    outcomes = {v: ("pass" if i < 6 else "fail") for i, v in enumerate(versions)}
    results, calls, spec = _run(monkeypatch, outcomes)
    assert len(calls) <= 2 + 4, calls  # the two ends, then a binary search
    lines, xfail = bisect_mod._transitions(results, spec)
    assert any("first bad:  keras==3.6.0" in ln and "last good 3.5.0" in ln for ln in lines), lines
    assert xfail == ">=3.6.0"


def test_bisect_skips_releases_that_do_not_install(monkeypatch):
    versions = [f"3.{i}.0" for i in range(8)]
    outcomes = {v: ("fail" if i < 5 else "pass") for i, v in enumerate(versions)}
    outcomes["3.4.0"] = outcomes["3.3.0"] = "install-failed"
    results, calls, spec = _run(monkeypatch, outcomes)
    lines, xfail = bisect_mod._transitions(results, spec)
    # 3.3.0 and 3.4.0 decide nothing: the change lies between 3.2.0 (fail) and 3.5.0 (pass)
    assert any("first good: keras==3.5.0" in ln for ln in lines), (lines, calls)
    assert xfail == ">=3.0.0,<3.5.0"


def test_a_framework_crash_is_bad_and_a_suite_error_decides_nothing(monkeypatch):
    outcomes = {"3.0.0": "crash", "3.0.1": "error", "3.1.0": "pass", "3.2.0": "pass"}
    results, calls, spec = _run(monkeypatch, outcomes)
    lines, xfail = bisect_mod._transitions(results, spec)
    assert any("first good: keras==3.1.0" in ln and "last bad 3.0.0" in ln for ln in lines), lines
    assert xfail == ">=3.0.0,<3.1.0"


def test_bisect_all_runs_every_release_and_same_outcome_says_so(monkeypatch):
    outcomes = {f"3.{i}.0": "fail" for i in range(4)}
    results, calls, spec = _run(monkeypatch, outcomes, exhaustive=True)
    assert calls == sorted(outcomes)
    lines, xfail = bisect_mod._transitions(results, spec)
    assert "fails on every release" in lines[0] and xfail == ">=3.0.0"


def _tox_backends() -> set[str]:
    cp = configparser.ConfigParser(interpolation=None)
    cp.read(ROOT / "tox.ini")
    return {s.split(":", 1)[1] for s in cp.sections() if s.startswith("testenv:")
            and "conformance" in cp[s].get("labels", "") and "BACKEND =" in cp[s].get("set_env", "")}


def test_ci_workflow_matrix_covers_every_backend_env():
    text = (ROOT / ".github" / "workflows" / "conformance.yml").read_text()
    rows = re.findall(r"- \{backend: ([\w-]+), label: ([\w.-]+), pins: \"([^\"]*)\"\}", text)
    assert rows, "no matrix rows found"
    backends = _tox_backends()
    assert backends, "no conformance env in tox.ini"
    for backend, label, pins in rows:
        assert backend in backends | {"numpy"}, f"matrix backend {backend} is no tox env"
        parse_pins(pins)
    assert {b for b, label, _ in rows if label == "latest"} >= backends, "a backend env without a 'latest' job"
    assert len({(b, label) for b, label, _ in rows}) == len(rows), "duplicate (backend, label) rows"
    assert "lstm-conformance report reports" in text and "lstm-conformance gate --baseline" in text


def test_declared_floor_refuses_an_older_release_in_one_line(monkeypatch):
    """An adapter's ``supported`` range: a release below it is named with the range; inside it, or a
    package the adapter does not declare, runs."""
    from conformance.adapters.numpy_ref import NumpyAdapter

    adapter = NumpyAdapter()
    monkeypatch.setattr(NumpyAdapter, "supported", {"numpy": ">=1.16.0"})
    for have, expect in [("1.15.4", "numpy 1.15.4 is outside the releases numpy drives (numpy>=1.16.0)"),
                         ("1.16.0", None), ("2.3.0rc1", None), ("2.0.0+local", None)]:
        monkeypatch.setattr(adapter, "versions", lambda have=have: {"numpy": have})
        assert adapter.version_unsupported_reason() == expect, have
    monkeypatch.setattr(NumpyAdapter, "supported", {"other": ">=9"})
    assert adapter.version_unsupported_reason() is None


def test_every_framework_adapter_declares_the_floor_the_readme_states():
    from conformance.adapters.keras.keras3 import _Keras3Adapter
    from conformance.adapters.keras.tf_keras import TfKerasAdapter
    from conformance.adapters.onnxruntime import OnnxRuntimeAdapter
    from conformance.adapters.torch import TorchAdapter

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    table = readme[readme.index("| adapter | floor |"):]
    for cls in (_Keras3Adapter, TfKerasAdapter, TorchAdapter, OnnxRuntimeAdapter):
        (package, spec), = cls.supported.items()
        assert f"`{package}{spec}`" in table, (cls.__name__, package, spec)
