"""``Adapter.examples_scale``: a backend whose every case is an export or conversion draws a fraction of the
profile's examples in every property test (``profiles.scale_examples``), and a run records the scale."""

from __future__ import annotations

from types import SimpleNamespace

from hypothesis import given, settings
from hypothesis import strategies as st

from conformance.adapters import load
from conformance.harness.profiles import scale_examples


def _test_fn():
    seen = []

    @given(st.integers())
    def prop(n):
        seen.append(n)

    return prop, seen


def test_scale_draws_that_fraction_of_the_profile_examples():
    prop, seen = _test_fn()
    items = [SimpleNamespace(obj=prop), SimpleNamespace(obj=prop)]  # two parametrized items, one function
    prop._hypothesis_internal_use_settings = settings(max_examples=12, database=None)
    scale_examples(items, 0.25)
    assert prop._hypothesis_internal_use_settings.max_examples == 3, "scaled once, not once per item"
    prop()
    assert 1 <= len(seen) <= 3


def test_scale_keeps_at_least_one_example_and_full_scale_changes_nothing():
    prop, _ = _test_fn()
    prop._hypothesis_internal_use_settings = settings(max_examples=2, database=None)
    scale_examples([SimpleNamespace(obj=prop)], 1.0)
    assert prop._hypothesis_internal_use_settings.max_examples == 2
    scale_examples([SimpleNamespace(obj=prop)], 0.1)
    assert prop._hypothesis_internal_use_settings.max_examples == 1


def test_exported_paths_declare_a_scale_below_one():
    # importing the adapter modules needs no framework (imports are lazy)
    for name in ("tf-keras-litert", "keras-torch-onnx"):
        assert 0 < load(name).examples_scale < 1
    assert load("numpy").examples_scale == 1.0
