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


def test_a_derandomized_profile_draws_nothing_from_the_project_source():
    """ci draws the same cases at every commit: the constants hypothesis reads from local modules (an edit of
    any module changed them) stay out of a derandomized profile's draws; a random profile keeps hypothesis' own
    pool. Which modules hypothesis counts as local depends on where the checkout lies (a path with a ``test``
    part, or one under the interpreter's prefix, counts as not local), so the random profile's side is checked
    on hypothesis' function left in place and on the constants it reads from a project module, not on a count
    that the checkout's path decides. Both with and without a CI service's variable: where ``CI`` is set,
    hypothesis loads its own derandomized profile as the default, which the project's profiles must not
    inherit."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    from hypothesis._settings import _CI_VARS

    code = ("import sys; from hypothesis import settings; from hypothesis.internal.conjecture import providers; "
            "from hypothesis.internal.constants_ast import constants_from_module; "
            "import conformance.harness.profiles as p; import reference, conformance.harness.plugin; "
            "own = providers._get_local_constants; p.pin_draws(settings.get_profile(sys.argv[1])); "
            "c = providers._get_local_constants(); "
            "print(len(c.integers) + len(c.floats) + len(c.strings), providers._get_local_constants is own, "
            "len(constants_from_module(p, limit=False)))")
    root = Path(__file__).resolve().parent.parent
    local = {k: v for k, v in os.environ.items() if k not in _CI_VARS}
    for env in (local, {**local, "CI": "true"}):
        out = {name: subprocess.run([sys.executable, "-c", code, name], capture_output=True, text=True, cwd=root,
                                    check=True, timeout=120, env=env).stdout.split()
               for name in ("ci", "dev")}
        out["CI"] = env.get("CI")
        drawn, kept, _ = out["ci"]
        assert drawn == "0" and kept == "False", out
        _, kept, readable = out["dev"]
        assert kept == "True" and int(readable) > 0, out  # hypothesis' own pool, which holds this module's constants
