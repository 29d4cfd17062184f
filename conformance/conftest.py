# The pytest plugin is registered through the ``pytest11`` entry point; this keeps it active when the
# package is used from a source checkout that was not pip-installed.
import importlib.metadata as _md

if not any(ep.name == "lstm_conformance" for ep in _md.entry_points(group="pytest11")):
    pytest_plugins = ["conformance.harness.plugin"]
