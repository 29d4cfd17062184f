"""``lstm-conformance bisect CASE.npz --backend B --versions SPEC``: one saved case across releases.

Each release runs in its own cached environment (:mod:`.venvs`), the case replayed there by :mod:`.probe`
with the same error model. With an explicit list (or ``--all``) every release runs; with a range or a
specifier set, the two ends run first and, when their outcomes differ, a binary search finds where the
outcome changes (a release that does not install or cannot run the case is set aside, as ``git bisect skip``
does, and the search goes on without it). The table printed is every release that ran; below it the first
bad and first good release, and a ``versions`` specifier to paste into the finding's xfail entry.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .specs import VersionSpec, index_versions, parse_versions
from .venvs import InstallError, ensure_venv, run_env, venv_python

__all__ = ["Outcome", "bisect", "run_bisect", "add_parser"]

_GOOD = "pass"
#: the case disagrees (fail) or the framework raises on it (crash: the table's message tells an API change from a bug)
_BAD = ("fail", "crash")
_PROBE_TIMEOUT = 1800  # seconds for one replay (an import of a large framework included)


@dataclass
class Outcome:
    version: str
    outcome: str  # pass | fail | crash (the framework raised) | skip | inconclusive | unavailable | install-failed |
    #               error (the suite itself could not run there)
    ratio: float | None = None
    message: str = ""
    versions: dict = field(default_factory=dict)

    @property
    def decides(self) -> bool:
        return self.outcome in _BAD or self.outcome == _GOOD

    @property
    def bad(self) -> bool:
        return self.outcome in _BAD


def _probe(case: Path, backend: str, pins: list[str], cache: Path | None, log) -> dict:
    try:
        env_path = ensure_venv(backend, pins, cache, log=log)
    except InstallError as exc:
        return {"outcome": "install-failed", "message": str(exc)}
    try:
        proc = subprocess.run([str(venv_python(env_path)), "-m", "conformance.versions.probe", str(case)],
                              capture_output=True, text=True, env=run_env(backend), timeout=_PROBE_TIMEOUT,
                              check=False)
    except subprocess.TimeoutExpired:
        return {"outcome": "error", "message": f"no answer within {_PROBE_TIMEOUT} s"}
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith("{"):
            return json.loads(line)
    err = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    return {"outcome": "error", "message": (err[-1] if err else f"probe exited {proc.returncode}")}


def bisect(case: Path, backend: str, spec: VersionSpec, releases: list[str], *, with_pins: list[str],
           cache: Path | None, exhaustive: bool, log) -> list[Outcome]:
    """Run ``case`` on ``releases`` (oldest first) and return the outcomes of those that ran."""
    done: dict[str, Outcome] = {}

    def run(version: str) -> Outcome:
        if version not in done:
            log(f"  {spec.pin(version)} ...")
            res = _probe(case, backend, [spec.pin(version), *with_pins], cache, log)
            done[version] = Outcome(version, res.get("outcome", "crash"), res.get("ratio"),
                                    res.get("message") or "", res.get("versions") or {})
            log(f"  {spec.pin(version)}: {done[version].outcome} {done[version].message[:120]}")
        return done[version]

    if exhaustive or spec.releases:
        for v in releases:
            run(v)
        return [done[v] for v in releases]
    candidates = list(releases)
    lo = next((i for i, v in enumerate(candidates) if run(v).decides), None)
    hi = next((i for i in range(len(candidates) - 1, -1, -1) if run(candidates[i]).decides), None)
    if lo is not None and hi is not None and lo < hi and done[candidates[lo]].bad != done[candidates[hi]].bad:
        while hi - lo > 1:  # invariant: candidates[lo] has the old outcome, candidates[hi] the new one
            mid = (lo + hi) // 2
            res = run(candidates[mid])
            if not res.decides:  # set aside, like `git bisect skip`
                del candidates[mid]
                hi -= 1
                continue
            if res.bad == done[candidates[lo]].bad:
                lo = mid
            else:
                hi = mid
    return [done[v] for v in releases if v in done]


def _transitions(results: list[Outcome], spec: VersionSpec) -> tuple[list[str], str | None]:
    """Lines naming the first bad / first good release, and an xfail ``versions`` specifier."""
    decided = [r for r in results if r.decides]
    lines, spec_out = [], None
    if not decided:
        return ["  no release decided the case (see the outcomes above)"], None
    if all(r.bad == decided[0].bad for r in decided):
        what = "fails" if decided[0].bad else "passes"
        lines.append(f"  the case {what} on every release that ran ({decided[0].version} .. {decided[-1].version}); "
                     "releases between two that ran were not all tried: --all runs each")
        if decided[0].bad:
            spec_out = f">={decided[0].version}"
        return lines, spec_out
    bad_from = good_from = None
    for prev, cur in zip(decided, decided[1:]):
        if prev.bad != cur.bad:
            if cur.bad and bad_from is None:
                bad_from = (prev, cur)
            elif not cur.bad:
                good_from = (prev, cur)
    if bad_from:
        lines.append(f"  first bad:  {spec.pin(bad_from[1].version)}  (last good {bad_from[0].version})")
    if good_from:
        lines.append(f"  first good: {spec.pin(good_from[1].version)}  (last bad {good_from[0].version})")
    low = bad_from[1].version if bad_from else decided[0].version
    spec_out = f">={low}" + (f",<{good_from[1].version}" if good_from and (not bad_from or
                             _later(good_from[1].version, low)) else "")
    return lines, spec_out


def _later(a: str, b: str) -> bool:
    from packaging.version import Version

    return Version(a) > Version(b)


def run_bisect(case: Path, backend: str, versions: str, *, with_pins: list[str], cache: Path | None,
               exhaustive: bool = False, json_out: Path | None = None, out=None, err=None) -> int:
    """The command: 0 when every release ran, 1 when some could not be installed or run; ValueError (exit 2)
    for a bad spec, an empty selection or an unreadable case."""
    out, err = out or sys.stdout, err or sys.stderr
    from ..harness.repro import load_blob

    spec = parse_versions(versions)
    meta, _ = load_blob(case)  # a damaged blob is refused before anything is built
    if meta.get("adapter") != backend:
        raise ValueError(f"{case}: recorded on {meta.get('adapter')!r}, not {backend!r} (a case replays on the "
                         "adapter that recorded it)")
    releases = spec.select([] if spec.releases else index_versions(spec.package))
    if not releases:
        raise ValueError(f"--versions {versions!r}: the index offers no release in that range")

    def log(msg: str) -> None:
        print(msg, file=err, flush=True)

    log(f"bisect {case} on {backend}: {len(releases)} release(s) of {spec.name} "
        f"({releases[0]} .. {releases[-1]})" + (f", with {' '.join(with_pins)}" if with_pins else ""))
    results = bisect(case, backend, spec, releases, with_pins=with_pins, cache=cache, exhaustive=exhaustive, log=log)
    print(f"{'release':<24}{'outcome':<16}{'ratio':>12}  message", file=out)
    for r in results:
        ratio = "-" if r.ratio is None else f"{r.ratio:.3g}"
        print(f"{spec.pin(r.version):<24}{r.outcome:<16}{ratio:>12}  {r.message[:160]}", file=out)
    lines, xfail_spec = _transitions(results, spec)
    for line in lines:
        print(line, file=out)
    if xfail_spec:
        print(f'  xfail entry: versions = "{spec.name}{xfail_spec}"', file=out)
    if json_out:
        json_out.write_text(json.dumps({"case": str(case), "backend": backend, "package": spec.name,
                                        "with": with_pins, "results": [asdict(r) for r in results],
                                        "xfail_versions": f"{spec.name}{xfail_spec}" if xfail_spec else None},
                                       indent=2) + "\n")
    return 0 if all(r.outcome not in ("install-failed", "unavailable", "error") for r in results) else 1


def add_parser(sub):
    """The ``bisect`` subcommand's arguments (cli.py wires it)."""
    pb = sub.add_parser("bisect", help="replay a saved case (.npz) across releases of a package, each in its own "
                                        "cached venv; print first bad / first good")
    pb.add_argument("blob", metavar="CASE.npz")
    pb.add_argument("--backend", required=True, help="the adapter that recorded the case (e.g. keras-jax)")
    pb.add_argument("--versions", required=True, help="keras==3.0.0...3.15.1 (a range), keras==3.0.0,3.9.2 (a list) "
                    "or keras>=3.0,<3.11 (a specifier set)")
    pb.add_argument("--with", dest="with_", action="append", metavar="PINS",
                    help='companion pins for every release, e.g. --with "jax==0.4.23 jaxlib==0.4.23" (repeatable)')
    pb.add_argument("--all", action="store_true", help="run every release of a range, not a binary search")
    pb.add_argument("--cache", help="where the venvs live (default ~/.cache/lstm-conformance/venvs)")
    pb.add_argument("--json", metavar="FILE", help="also write the table as JSON")
    return pb
