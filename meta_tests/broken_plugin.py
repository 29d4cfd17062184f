"""A pytest plugin (``-p broken_plugin``, with meta_tests/ on PYTHONPATH) that registers the broken
adapters of :mod:`broken_adapters` as backends for one conformance run; meta tests only."""

from broken_adapters import EXPECTED, NeverInstalledAdapter

from conformance.adapters import BUILTIN

BUILTIN.update({name: f"broken_adapters:{cls.__name__}" for name, (cls, *_) in EXPECTED.items()})
BUILTIN[NeverInstalledAdapter.name] = "broken_adapters:NeverInstalledAdapter"

from variant_adapters import VARIANT_ADAPTERS  # noqa: E402 - the diagnosis meta tests' variant adapters

BUILTIN.update({name: f"variant_adapters:{cls.__name__}" for name, cls in VARIANT_ADAPTERS.items()})
