"""The plugin fanned out over pytest-xdist (``-n N``): what the controlling process and its workers exchange.

The controller claims the run folder (plugin.pytest_sessionstart) and hands each worker its run id and
hypothesis seed (``workerinput``); each worker appends its checks to ``results-<worker>.jsonl`` and sends back,
when it ends, its finding statistics, replay counts and property map (``workeroutput``), merged here into the
controller's state for ``run.json`` and the terminal summary. Counts come from the files (ResultWriter.recount).
The terminal progress line lives here too: it is shown by a serial run or a worker-less controller alone.
"""

from __future__ import annotations

import pytest

#: the plugin's per-run state (plugin.pytest_configure fills it)
STATE_KEY = pytest.StashKey[dict]()
#: the key of this suite's entries in pytest-xdist's workerinput / workeroutput
WORKER_KEY = "lstm_conformance"
#: the running pytest config (hooks without a config argument read it here)
CONFIG: dict = {}


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node):
    """pytest-xdist, on the controller, per worker: the run id and hypothesis seed it must use."""
    config = node.config
    node.workerinput[WORKER_KEY] = {"run_id": config.stash[STATE_KEY]["run_id"],  # set when it claimed the folder
                                     "hypothesis_seed": config.getoption("hypothesis_seed", None)}


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node, error):
    """pytest-xdist, on the controller: merge what a finished worker sends back (its results are in its file)."""
    state = node.config.stash[STATE_KEY]
    got = getattr(node, "workeroutput", {}).get(WORKER_KEY)
    if not got:
        return  # a worker that died: its results file keeps what finished, the counts come from the files
    state["workers"] += 1
    for prop, rules in got["properties"].items():
        mine = state["properties"].setdefault(prop, [])
        mine += [r for r in rules if r not in mine]
    for source, st in got["findings"].items():
        mine = state["findings"].setdefault(source, {**st, "pass": 0, "xfail": 0})
        mine["pass"] += st["pass"]
        mine["xfail"] += st["xfail"]
    for nodeid, counts in got["replayed"].items():
        mine = state["replayed"].setdefault(nodeid, {})
        for k, n in counts.items():
            mine[k] = mine.get(k, 0) + n


def pytest_runtest_logreport(report):
    """On the pytest-xdist controller: the uncovered-rules list a worker's coverage test recorded (the line it
    prints itself stays in the worker's output)."""
    config = CONFIG.get("config")
    if config is None or not config.stash[STATE_KEY]["controller"] or report.when != "call":
        return
    for key, value in report.user_properties:
        if key == "uncovered_rules":
            config.stash[STATE_KEY]["uncovered"] = value


def pytest_runtest_logfinish(nodeid, location):
    """Progress on a terminal: cases done per backend after each property (long runs take minutes)."""
    config = CONFIG.get("config")
    if config is None:
        return
    state = config.stash[STATE_KEY]
    writer = state["writer"]
    if writer is None or not state["isatty"] or state["controller"]:
        return  # under pytest-xdist the controller sees no record until the end (xdist shows its own progress)
    tr = config.pluginmanager.get_plugin("terminalreporter")
    if tr is None:
        return
    parts = []
    for adapter, counts in writer.per_adapter.items():
        done = sum(counts.values())
        detail = ", ".join(f"{n} {v}" for v, n in counts.items())
        parts.append(f"{adapter}: {done} cases ({detail})")
    tr.write_line(f"  lstm-conformance progress | {' | '.join(parts)}")


def from_controller(config) -> dict:
    """On a worker: the run id and hypothesis seed its controller gave it (the seed set as ``--hypothesis-seed``,
    so a random run draws what its recorded seed replays serially); elsewhere an empty dict."""
    given = getattr(config, "workerinput", {}).get(WORKER_KEY, {})
    if config.getoption("hypothesis_seed", None) is None and given.get("hypothesis_seed") is not None:
        config.option.hypothesis_seed = given["hypothesis_seed"]
    return given


def controller_lines(state: dict) -> list[str]:
    """The controller's summary lines a worker's test printed into the worker's own output (uncovered rules)."""
    if not state["controller"] or state["uncovered"] is None:
        return []
    uncovered = [r for r in str(state["uncovered"]).split(",") if r]
    return [f"lstm-conformance: {len(uncovered)} spec rules not covered by a property yet: {', '.join(uncovered)}"]


#: the packages of this project whose modules hypothesis can read constants from
_PROJECT_PACKAGES = ("reference", "conformance")


def pytest_collection_finish(session):
    """Import every module of this project before the first example, in a serial run and in each worker alike.

    Hypothesis (6.13x and later) mixes constants read from the source of the local modules loaded so far into its
    draws, and reads them again whenever ``sys.modules`` grows. This suite imports some modules lazily (the report,
    diagnosis, ...), so without this a worker that ran other tests first drew other cases than a serial run of
    the same derandomized profile (measured: keras-torch stacked-cells, one gradient test's 8th example differed
    under ``-n 2``). A module whose optional dependency is missing is skipped, as in both modes."""
    import importlib
    import pkgutil

    for name in _PROJECT_PACKAGES:
        try:
            package = importlib.import_module(name)
        except ImportError:
            continue
        for info in pkgutil.walk_packages(package.__path__, prefix=f"{name}."):
            if info.name.endswith("__main__") or ".properties." in info.name:  # a command; collected already
                continue
            try:
                importlib.import_module(info.name)
            except Exception:  # noqa: BLE001 - an optional dependency missing here: not imported either way
                continue
