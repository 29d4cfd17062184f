"""bench/throughput.py on the numpy adapter: a measured ratio per shape, a missing bare call printed as "not
measured" and failing the target, a framework's exception a skipped row instead of the end of the benchmark."""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import pytest

from conformance.adapters import load
from conformance.adapters.base import Unsupported

_PATH = Path(__file__).resolve().parent.parent / "bench" / "throughput.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_throughput", _PATH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_shape_gets_a_measured_ratio(bench):
    rows = bench.bench_shapes("numpy", 2)
    assert len(rows) == len(bench.SHAPES) * len(load("numpy").variants)
    for r in rows:
        assert "skip" not in r, r
        assert r["adapter_ms"] > 0 and r["bare_ms"] > 0 and math.isfinite(r["ratio"]), r


def test_a_missing_bare_call_is_not_measured_and_fails_the_target(bench, monkeypatch, capsys):
    base = type(load("numpy"))

    class NoBare(base):
        def bare_forward(self, handle, x):
            raise Unsupported("no bare call here")

    monkeypatch.setattr(bench, "load", lambda name: NoBare())
    assert bench.main(["--backend", "numpy", "--no-profiles", "--repeats", "1"]) == 1
    out = capsys.readouterr().out
    rows = [line for line in out.splitlines() if line.startswith("numpy")]
    assert rows and all(line.rstrip().endswith("not measured") for line in rows), out  # the ratio column
    assert "numpy:" in out.split("over target or not measured:")[1]


def test_a_framework_exception_is_a_skipped_row(bench, monkeypatch):
    base = type(load("numpy"))

    class Raises(base):
        def forward(self, handle, x, **kw):
            raise RuntimeError("this shape is not supported by the framework")

    monkeypatch.setattr(bench, "load", lambda name: Raises())
    rows = bench.bench_shapes("numpy", 1)
    assert rows and all("the framework raised RuntimeError: this shape" in r["skip"] for r in rows)
