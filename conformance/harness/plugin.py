"""The pytest plugin (entry point ``pytest11: lstm_conformance``).

Options: ``--backend NAME`` (repeatable; default every installed adapter), ``--device cpu|gpu``,
``--report-dir DIR``, ``--run-id ID``, ``--shrink-seconds S``, ``--replay-failures-from NAME[:VARIANT]``.
Properties that take the ``check`` fixture are parametrized over ``backend:variant``; each check appends a
line to ``<report-dir>/<run-id>/results.jsonl``.

Hypothesis' example database keeps each property's saved failures under a key of its own per backend and
variant (hypothesis keys a ``parametrize`` mark, not ``pytest_generate_tests``). Replaying another backend's
saved failures is explicit: ``--replay-failures-from`` adds them to what hypothesis reads first, and the
terminal summary counts them. Under pytest-xdist (``-n N``) the controller holds the run folder and each worker
writes its own results file (harness.fanout); a derandomized profile draws the same cases per test either way.
"""

from __future__ import annotations

import os
import sys
import time
import warnings
from pathlib import Path

import pytest

from ..adapters import BUILTIN, all_names, available_names, load
from ..adapters.base import Adapter
from . import profiles  # also registers the hypothesis profiles
from .checker import Checker
from .examples import ReplayDatabase, ShrinkBound, database_key
from .fanout import CONFIG as _CONFIG, STATE_KEY as _STATE_KEY, WORKER_KEY as _WORKER_KEY, controller_lines
from .fanout import (from_controller, pytest_configure_node, pytest_runtest_logfinish,  # noqa: F401 (hooks)
                     pytest_collection_finish, pytest_runtest_logreport, pytest_testnodedown)
from .files import NotWritable, check_writable
from .judge import Target
from .rules import property_name, property_rules
from .results import CheckKind, Result, ResultWriter, RunLocked, Verdict, validate_run_id
from .xfails import load_xfails, version_matches


def pytest_addoption(parser):
    g = parser.getgroup("lstm-conformance")
    g.addoption("--backend", action="append", default=[], metavar="NAME",
                help=f"adapter to check (repeatable; default: every installed one). Known: {', '.join(all_names())}")
    g.addoption("--device", choices=("cpu", "gpu"), default="cpu", help="device the adapters run on")
    g.addoption("--report-dir", default="reports", help="directory for runs (default: reports)")
    g.addoption("--run-id", default=None, help="name of this run's directory (default: timestamp + backends)")
    g.addoption("--shrink-seconds", type=float, default=None, metavar="S",
                help="time hypothesis may spend shrinking one failing test (default per profile: "
                     + ", ".join(f"{p} {s:g}" for p, s in profiles.SHRINK_SECONDS.items()) + ")")
    g.addoption("--replay-failures-from", action="append", default=[], metavar="NAME[:VARIANT]",
                help="also replay the failures another backend (variant; default every one of its variants "
                     "seen in the database key) saved in hypothesis' example database (repeatable)")


@pytest.hookimpl(tryfirst=True)  # before hypothesis' own pytest_configure reads --hypothesis-seed
def pytest_configure(config):
    config.addinivalue_line("markers", "rules(*ids): spec rule IDs a property checks")
    from hypothesis import settings

    profile = config.getoption("hypothesis_profile", None)
    if not profile:
        settings.load_profile("dev")
    profiles.pin_draws(settings.get_profile(profile or "dev"))
    given = from_controller(config)  # a pytest-xdist worker: its controller's run id and hypothesis seed
    if config.getoption("hypothesis_seed", None) is None and not settings.get_profile(profile or "dev").derandomize:
        # a random run still gets one recorded seed (run.json, report), so `--hypothesis-seed S` replays it
        import random

        config.option.hypothesis_seed = str(random.SystemRandom().randrange(2**32))
    _CONFIG["config"] = config
    if (shrink := config.getoption("--shrink-seconds", None)) is None:
        shrink = profiles.SHRINK_SECONDS.get(profile or "dev", profiles.DEFAULT_SHRINK_SECONDS)
    config.stash[_STATE_KEY] = {"adapters": {}, "writer": None, "properties": {}, "findings": {},
                                "isatty": sys.stdout.isatty(), "shrink_seconds": shrink, "replayed": {},
                                "worker": getattr(config, "workerinput", {}).get("workerid"), "controller": False,
                                "run_id": given.get("run_id"), "workers": 0, "uncovered": None}
    if not config.option.help:
        problem = _environment_problem(config)
        # forget what this early look loaded: a plugin configured after this one may still register or
        # replace adapters (the meta tests' regressed 'numpy'), and the run must use those
        config.stash[_STATE_KEY]["adapters"].clear()
        if problem:
            # one line on stderr and exit 3 before any collection: 14 skipped properties would hide it
            pytest.exit(f"lstm-conformance: {problem}", returncode=3)


def _environment_problem(config) -> str | None:
    """Why this run cannot do what was asked here: an explicitly requested backend that is not installed,
    ``--device gpu`` that no selected backend sees, or a ``--report-dir`` that cannot be written."""
    known = all_names()  # an unknown name is a usage error, reported at session start
    for name in config.getoption("--backend"):
        adapter = _adapter(config, name) if name in known else None
        if isinstance(adapter, str):
            return f"--backend {adapter}; run it where its framework is installed (e.g. tox -e {name})"
    if config.getoption("--device") == "gpu":
        adapters = [a for a in (_adapter(config, n) for n in _selected(config) if n in known) if isinstance(a, Adapter)]
        if not any("gpu" in a.devices() for a in adapters):
            seen = ", ".join(f"{a.name} ({'/'.join(a.devices())})" for a in adapters) or "no installed backend"
            return f"--device gpu: no GPU visible to any selected backend ({seen}); use --device cpu"
    if not config.option.collectonly:
        try:
            check_writable(Path(config.getoption("--report-dir")), what="--report-dir", folder=True)
        except NotWritable as exc:
            return str(exc)
    return None


def pytest_sessionstart(session):
    """Bad input is one line at start-up, not one collection error per property module. Checked here, after
    every plugin's pytest_configure, so plugins that register adapters (meta tests) are seen."""
    config = session.config
    known = all_names()
    for n in config.getoption("--backend"):
        if n not in known:
            raise pytest.UsageError(f"--backend {n!r} is not a known adapter; allowed: {', '.join(known)}")
    if (config.getoption("--shrink-seconds") or 0) < 0:
        raise pytest.UsageError(f"--shrink-seconds {config.getoption('--shrink-seconds')}: must be >= 0")
    for spec in config.getoption("--replay-failures-from"):
        name, _, variant = spec.partition(":")
        if name not in known:
            raise pytest.UsageError(f"--replay-failures-from {spec!r}: {name!r} is not a known adapter; allowed: "
                                    f"{', '.join(known)}")
        from hypothesis import settings

        if settings().database is None:
            raise pytest.UsageError(f"--replay-failures-from {spec!r}: profile {settings._current_profile!r} keeps "
                                    "no example database (ci sets database=None); use dev or thorough")
    run_id = config.getoption("--run-id")
    if run_id is not None:
        try:
            validate_run_id(run_id)
        except ValueError as exc:
            raise pytest.UsageError(str(exc)) from None
    if config.pluginmanager.has_plugin("dsession") and not config.option.collectonly:
        # the pytest-xdist controller runs no check but holds the run folder (claimed before the workers start)
        config.stash[_STATE_KEY]["controller"] = True
        _claim_run(config)


def _run_id(config) -> str:
    state = config.stash[_STATE_KEY]
    if state["run_id"] is None:
        state["run_id"] = (config.getoption("--run-id")
                           or f"{time.strftime('%Y%m%dT%H%M%S')}-{'+'.join(_selected(config))}")
    return state["run_id"]


def _claim_run(config) -> None:  # an unwritable or busy run folder stops the run with one line, before any check
    try:
        _writer(config)
    except OSError as exc:
        pytest.exit(f"lstm-conformance: cannot write results under {config.getoption('--report-dir')}: "
                    f"{exc.strerror or exc} ({exc.filename or ''})", returncode=3)


def _selected(config) -> list[str]:
    return config.getoption("--backend") or available_names()


def _adapter(config, name: str) -> Adapter | str:
    """The adapter instance, or the reason it is unavailable (not installed)."""
    cache = config.stash[_STATE_KEY]["adapters"]
    if name not in cache:
        try:
            adapter = load(name)
            reason = adapter.cannot_run_reason()
            cache[name] = adapter if reason is None else f"{name} not installed: {reason}"
        except ImportError as exc:
            cache[name] = f"{name} not installed: {exc}"
    return cache[name]


def pytest_generate_tests(metafunc):
    if "check" not in metafunc.fixturenames:
        return
    params, ids = [], []
    for name in _selected(metafunc.config):
        adapter = _adapter(metafunc.config, name)
        variants = adapter.variants if isinstance(adapter, Adapter) else ("default",)
        for v in variants:
            params.append((name, v))
            ids.append(name if v == "default" else f"{name}:{v}")
    metafunc.parametrize("backend_variant", params, ids=ids)


def _writer(config) -> ResultWriter:
    state = config.stash[_STATE_KEY]
    if state["writer"] is None:
        names = _selected(config)
        run_id = _run_id(config)
        run_dir = Path(config.getoption("--report-dir")) / run_id
        if state["worker"] is not None:  # its controller holds the folder and writes run.json
            state["writer"] = ResultWriter(run_dir, {"run_id": run_id}, worker=state["worker"])
            return state["writer"]
        from hypothesis import settings

        from .. import __version__
        from . import errors

        backends = {}
        for n in names:
            a = _adapter(config, n)
            backends[n] = ({"framework": a.framework, "versions": a.versions(), "devices": a.devices(), "variants":
                            list(a.variants), "builtin": n in BUILTIN, "examples_scale": a.examples_scale}
                           if isinstance(a, Adapter) else {"unavailable": a})
        seed = config.getoption("hypothesis_seed", None)
        try:
            state["writer"] = ResultWriter(run_dir, {
                "run_id": run_id, "backends": backends, "device": config.getoption("--device"),
                "profile": settings._current_profile, "max_examples": settings().max_examples,
                "derandomize": settings().derandomize, "hypothesis_seed": None if seed is None else str(seed),
                "suite_version": __version__, "K": errors.K, "floor_ulps": errors.FLOOR_ULPS, "pid": os.getpid(),
                "shrink_seconds": state["shrink_seconds"],
                "argv": sys.argv, "properties": state["properties"],
            }, records=not state["controller"])
        except RunLocked as exc:
            raise pytest.UsageError(str(exc)) from None
    return state["writer"]


def pytest_collection_modifyitems(session, config, items):
    # property -> the rules it names, for the report's coverage (recorded in run.json)
    config.stash[_STATE_KEY]["properties"].update(property_rules(items))
    if not any("check" in getattr(i, "fixturenames", ()) for i in items):
        return  # no conformance property collected (e.g. the reference's unit tests)
    for name in _selected(config):
        adapter = _adapter(config, name)
        versions = adapter.versions() if isinstance(adapter, Adapter) else {}
        for entry in load_xfails(name):
            if not version_matches(entry.versions, versions):
                continue  # a finding of other releases: it describes none of this run's tests
            hit = False
            for item in items:
                callspec = getattr(item, "callspec", None)
                if callspec is None or "backend_variant" not in callspec.params:
                    continue
                if callspec.params["backend_variant"][0] != name or not entry.matches(item.nodeid):
                    continue
                hit = True
                if entry.conditional:
                    # only the cases its WHEN describes are expected to fail: the Checker decides per case
                    item.stash[_CASE_XFAILS_KEY] = item.stash.get(_CASE_XFAILS_KEY, ()) + (entry,)
                else:
                    item.add_marker(pytest.mark.xfail(reason=entry.describe(), strict=False))
                    item.stash[_XFAIL_KEY] = entry
            if not hit:
                warnings.warn(f"xfail entry {entry.source} ({entry.pattern}) matches no collected test for "
                              f"{name} {versions}: stale?")
    adapters = [a for a in (_adapter(config, n) for n in _selected(config)) if isinstance(a, Adapter)]
    profiles.scale_examples(items, min([a.examples_scale for a in adapters], default=1.0))
    if not config.option.collectonly:
        _claim_run(config)


_XFAIL_KEY = pytest.StashKey[object]()
_CASE_XFAILS_KEY = pytest.StashKey[tuple]()


@pytest.fixture
def check(request, backend_variant) -> Checker:
    name, variant = backend_variant
    config = request.config
    adapter = _adapter(config, name)
    writer = _writer(config)
    rules_mark = request.node.get_closest_marker("rules")
    rules = tuple(rules_mark.args) if rules_mark else ()
    device = config.getoption("--device")
    prop = property_name(request.node)

    def skip(reason: str) -> None:
        writer.record(Result(adapter=name, verdict=Verdict.SKIP, property=prop, check=CheckKind.REQUIREMENTS,
                             test=request.node.nodeid, variant=variant, rules=list(rules), message=reason,
                             device=device))
        pytest.skip(reason)

    if isinstance(adapter, str):
        skip(adapter)
    if device not in adapter.devices():
        skip(f"{name}: no {device.upper()} visible to {adapter.framework} (devices: {', '.join(adapter.devices())})")
    reason = adapter.variant_unavailable_reason(variant, device)
    if reason:
        # a variant that cannot run here at all: skip with its reason instead of drawing only rejected cases
        skip(f"{name}:{variant}: {reason}")
    return Checker(target=Target(adapter, variant, device), sink=writer, rules=rules, test_id=request.node.nodeid,
                   property=prop, expect_fail=request.node.stash.get(_XFAIL_KEY, None),
                   case_xfails=request.node.stash.get(_CASE_XFAILS_KEY, ()),
                   finding_stats=config.stash[_STATE_KEY]["findings"])


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item):
    """Per property run: its own example-database key per backend and variant, the opt-in replay of another
    backend's saved failures, and the shrink-time bound (the test function object is shared by every
    parametrization, so each is set for this call and restored after)."""
    hyp = getattr(item.obj, "hypothesis", None)
    callspec = getattr(item, "callspec", None)
    if hyp is None or callspec is None or "backend_variant" not in callspec.params:
        yield
        return
    from hypothesis import settings
    from hypothesis.internal.reflection import function_digest

    state = item.config.stash[_STATE_KEY]
    name, variant = callspec.params["backend_variant"]
    inner, fn = hyp.inner_test, getattr(item.obj, "__func__", item.obj)
    had = "_hypothesis_internal_use_settings" in fn.__dict__
    saved_settings = getattr(fn, "_hypothesis_internal_use_settings", None)
    bound = ShrinkBound(state["shrink_seconds"]).wrap(inner)
    hyp.inner_test = bound
    base = saved_settings or settings()
    had_key = "_hypothesis_internal_database_key" in fn.__dict__

    def key(n: str, v: str) -> bytes:
        # the test's digest with the backend and variant added, as hypothesis keys parametrized tests. Only
        # the database key: a derandomized profile seeds from the plain digest, so every variant of a backend
        # draws the same cases (and shares their memoised references)
        bound._hypothesis_internal_add_digest = database_key(item, n, v)
        try:
            return function_digest(bound)
        finally:
            del bound._hypothesis_internal_add_digest

    replay = item.config.getoption("--replay-failures-from")
    if base.database is not None:
        # explicit, because hypothesis uses no database at all under a forced seed, which every random run
        # has (pytest_configure records one): saved failures are replayed per backend and variant again
        own = fn._hypothesis_internal_database_key = key(name, variant)
    if replay and base.database is not None:
        extra = []
        adapters = {n: _adapter(item.config, n) for n in {r.partition(":")[0] for r in replay}}
        for spec in replay:
            other, _, v = spec.partition(":")
            a = adapters[other]
            for ov in ([v] if v else list(a.variants) if isinstance(a, Adapter) else ["default"]):
                if (other, ov) != (name, variant):
                    extra.append(key(other, ov))
        counts = state["replayed"].setdefault(item.nodeid, {})
        fn._hypothesis_internal_use_settings = settings(base, database=ReplayDatabase(base.database, {own: extra},
                                                                                      counts))
    try:
        yield
    finally:
        hyp.inner_test = inner
        if not had_key:
            fn.__dict__.pop("_hypothesis_internal_database_key", None)
        if had:
            fn._hypothesis_internal_use_settings = saved_settings
        elif "_hypothesis_internal_use_settings" in fn.__dict__:
            del fn._hypothesis_internal_use_settings


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    state = config.stash[_STATE_KEY]
    writer: ResultWriter | None = state["writer"]
    if writer is None or state["worker"] is not None:
        return
    xpassed = [r.nodeid for r in terminalreporter.stats.get("xpassed", [])]
    for nodeid in xpassed:
        terminalreporter.write_line(f"lstm-conformance: xfail entry now passes, remove it: {nodeid}", yellow=True)
    for source, st in sorted(state["findings"].items()):
        if st["pass"] and not st["xfail"]:
            terminalreporter.write_line(f"lstm-conformance: fixed here? finding {source} ({st['rule']}, "
                                        f"{st['versions']}): all {st['pass']} cases it describes passed", yellow=True)
    replayed = {nodeid: sum(c.values()) for nodeid, c in state["replayed"].items() if c}
    if config.getoption("--replay-failures-from"):
        terminalreporter.write_line(f"lstm-conformance: replayed {sum(replayed.values())} saved failure(s) of "
                                    f"{', '.join(config.getoption('--replay-failures-from'))} in {len(replayed)} "
                                    f"test(s){': ' + ', '.join(replayed) if replayed else ''}")
    for name in _selected(config):
        adapter = _adapter(config, name)
        if isinstance(adapter, str):
            terminalreporter.write_line(f"lstm-conformance: {adapter}: none of its checks ran", red=True)
    for line in controller_lines(state):
        terminalreporter.write_line(line)
    counts = ", ".join(f"{n} {v}" for v, n in writer.counts.items() if n)
    where = f"{writer.run_dir}/results-*.jsonl ({state['workers']} workers)" if state["controller"] else writer.path
    terminalreporter.write_line(f"lstm-conformance: {writer.executed} checks executed ({counts or 'none'}); "
                                f"results in {where}")


def pytest_sessionfinish(session, exitstatus):
    state = session.config.stash.get(_STATE_KEY, None)
    if not state or state["writer"] is None:
        return
    writer: ResultWriter = state["writer"]
    status = "finished" if exitstatus in (0, 1) else "interrupted"
    if state["worker"] is not None:  # what its controller merges into run.json and its summary
        writer.close()
        session.config.workeroutput[_WORKER_KEY] = {"findings": state["findings"], "replayed": state["replayed"],
                                                    "properties": state["properties"]}
        return
    if state["controller"]:  # counts from every worker's results file, a worker that died included
        writer.recount()
        writer.run_info["workers"] = state["workers"]
    # per known finding: cases it describes that passed / failed as known ("fixed here" when none failed)
    writer.run_info["findings"] = state["findings"]
    writer.close(status=status)
    if writer.executed == 0 and exitstatus == 0:
        # a conformance run that checked nothing must not pass
        session.exitstatus = pytest.ExitCode.NO_TESTS_COLLECTED
