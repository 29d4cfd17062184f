"""Hypothesis profiles: ``dev`` (quick), ``ci`` (derandomized, gating), ``thorough`` (release checks), and the
time each profile lets hypothesis spend shrinking one failing test (the plugin enforces it: see
``plugin.ShrinkBound``).
"""

from hypothesis import HealthCheck, Phase, settings

_COMMON = dict(
    deadline=None,  # framework builds and traces vary wildly in time; speed is measured in bench/
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.filter_too_much,
                           HealthCheck.data_too_large, HealthCheck.differing_executors],
    print_blob=True,
    # no 'explain' phase: its "lines always and only run by failing cases" are the harness's own, not the
    # framework's, and bury the failure's one-line message; the record and repro blob carry the detail
    phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.target, Phase.shrink],
)

# Each profile is built on hypothesis' own defaults, not on the profile loaded at import: where a CI service's
# variable is set (``CI``, ``GITHUB_ACTIONS``, ...) hypothesis loads its derandomized "ci" profile as the
# default, and a profile registered without a parent would inherit it: ``dev`` and ``thorough`` would then
# draw the same cases at every run and keep no example database.
_BASE = settings.get_profile("default")
settings.register_profile("dev", _BASE, max_examples=10, **_COMMON)
# ci: derandomized so a gating run is reproducible run to run; failures still shrink.
settings.register_profile("ci", _BASE, max_examples=12, derandomize=True, database=None, **_COMMON)
settings.register_profile("thorough", _BASE, max_examples=300, **_COMMON)

#: seconds of shrinking per failing test, from its first failure to the replay of the smallest example found.
#: On the Keras backends a shrink step costs a framework build and compile (~0.5-2 s on JAX), and unbounded
#: shrinking took about half of a CI run's check time; ``--shrink-seconds`` overrides. The bound and the steps
#: taken are recorded in the failing result's ``metrics["shrink"]``.
SHRINK_SECONDS = {"dev": 20.0, "ci": 30.0, "thorough": 120.0}
DEFAULT_SHRINK_SECONDS = 60.0  # a profile registered elsewhere


def pin_draws(active: settings) -> None:
    """Under a derandomized profile (``ci``) draw the same cases at every commit of this project.

    Hypothesis (6.13x and later) also draws integer, float and string constants it reads from the source of
    the local modules loaded, this project's own among them, so an edit of any module (a new message, a new
    threshold) moved every ci draw and a gating run's verdicts with it. A derandomized profile draws from
    hypothesis' global constants only; a random profile keeps the local pool (constants from the code, such
    as thresholds and bounds, are good draws)."""
    if not active.derandomize:
        return
    from hypothesis.internal.conjecture import providers

    if hasattr(providers, "_get_local_constants"):  # absent before the feature: nothing to pin
        empty = providers.Constants()
        providers._get_local_constants = lambda: empty
        providers.CONSTANTS_CACHE.cache.clear()


def scale_examples(items, scale: float) -> None:
    """Draw ``scale`` times the profile's ``max_examples`` (at least 1) in every property test among ``items``:
    for a backend whose every case is an export or a conversion of seconds (``Adapter.examples_scale``)."""
    if scale >= 1:
        return
    done = set()
    for item in items:
        fn = getattr(item, "obj", None)
        current = getattr(fn, "_hypothesis_internal_use_settings", None)  # what @given runs the test with
        if current is None or id(fn) in done:
            continue
        done.add(id(fn))
        fn._hypothesis_internal_use_settings = settings(current, max_examples=max(1, round(current.max_examples * scale)))
