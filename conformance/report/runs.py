"""Reading one run directory for the report: ``results.jsonl`` (through harness.results.read_results, the
record's one reader; a run fanned out over pytest-xdist has one ``results-<worker>.jsonl`` per worker instead,
and every one is read) and ``run.json`` (the run's configuration and status).

Runs are read defensively: a run killed mid-way (``run.json`` status still ``running``), interrupted, or with
a truncated or corrupt ``results.jsonl`` is kept with what finished and marked as such, never dropped; every
line that could not be read is counted and named (``results.jsonl:LINE: reason``) in the run's problems.
"""

from __future__ import annotations

import dataclasses
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from ..harness.results import SCHEMA_VERSION, Result, read_results, result_files

__all__ = ["RunData", "load_run", "property_rules", "safe_name"]

#: problems listed one by one per run; the rest are counted
_PROBLEMS_NAMED = 20


@dataclass
class RunData:
    run_dir: Path
    info: dict
    records: list[Result]
    lost_lines: int
    status: str  # finished | interrupted | killed | unknown
    problems: list[str] = field(default_factory=list)

    @property
    def run_id(self) -> str:
        return str(self.info.get("run_id") or self.run_dir.name)

    @property
    def hypothesis_seed(self) -> str | None:
        """The ``--hypothesis-seed`` the run was given (run.json; runs from before it was recorded: None)."""
        seed = self.info.get("hypothesis_seed")
        return None if seed is None else str(seed)


def property_rules(run: RunData) -> dict[str, list[str]]:
    """property -> the rules its ``@rules`` marker names, as run.json records them. Runs written before
    run.json had the map: the rules the records of each property cite."""
    props = run.info.get("properties")
    if isinstance(props, dict):
        return {str(p): [str(r) for r in rids] for p, rids in props.items() if isinstance(rids, list)}
    seen: dict[str, list[str]] = {}
    for rec in run.records:
        mine = seen.setdefault(rec.property, [])
        mine += [r for r in rec.rules if r not in mine]
    return seen


def _read_info(info_path: Path, problems: list[str]) -> dict:
    if not info_path.exists():
        problems.append("no run.json: the run's configuration is unknown")
        return {}
    try:
        info = json.loads(info_path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        problems.append(f"run.json unreadable ({exc}); configuration unknown")
        return {}
    if not isinstance(info, dict):
        problems.append(f"run.json unreadable (a JSON {type(info).__name__}, not an object); configuration unknown")
        return {}
    return info


def _test_function(test: str) -> str | None:
    """``conformance/test_x.py::test_forward_matches_reference[numpy]`` -> ``forward_matches_reference``."""
    name = test.rsplit("::", 1)[-1].split("[", 1)[0]
    return name.removeprefix("test_") if name.startswith("test_") and "::" in test else None


def _current_names(records: list[Result]) -> tuple[list[Result], dict[str, str]]:
    """Records of schema 1 carry a free label as ``property`` ('forward', 'go_backwards', 'shapes'); today
    the property is the test function's name. Rename them so an old run lines up with a new one."""
    renamed: dict[str, str] = {}
    out = []
    for rec in records:
        name = _test_function(rec.test) if rec.schema_version < SCHEMA_VERSION else None
        if name and name != rec.property:
            renamed.setdefault(rec.property, name)
            rec = dataclasses.replace(rec, property=name)
        out.append(rec)
    return out, renamed


#: a problem naming one line of a results file (harness.results.read_results)
_LINE_PROBLEM = re.compile(r"results(-[A-Za-z0-9_]+)?\.jsonl:\d+: ")

#: the form of a rule id (schema.json's pattern); a record citing anything else keeps its other rules
_RULE_FORM = re.compile(r"[A-Z]{2,6}-[0-9]+")


def _well_formed_rules(records: list[Result]) -> tuple[list[Result], list[str]]:
    """Records without the rule ids that are not of the form GATE-1, and those ids (a hand-edited or
    corrupted record must not stop the report, nor reach the page as a rule)."""
    out, dropped = [], []
    for rec in records:
        ok = [r for r in rec.rules if _RULE_FORM.fullmatch(r)]
        if len(ok) != len(rec.rules):
            dropped += [r for r in rec.rules if r not in ok]
            rec = dataclasses.replace(rec, rules=ok)
        out.append(rec)
    return out, dropped


def _read_records(run_dir: Path, problems: list[str]) -> tuple[list[Result], int]:
    files = result_files(run_dir)
    if not files:
        problems.append("no results.jsonl: no check finished")
        return [], 0
    records, found = [], []
    for results in files:
        mine, theirs = read_results(results)
        records += mine
        # name the file as the run folder holds it: the run is named beside every problem in the report
        found += [p.replace(str(results), results.name, 1) for p in theirs]
    bad_lines = [p for p in found if _LINE_PROBLEM.match(p)]
    if bad_lines:
        where = ", ".join(sorted({p.split(":", 1)[0] for p in bad_lines}))
        problems.append(f"{where}: {len(bad_lines)} line(s) skipped (truncated, corrupt or not a valid "
                        f"record); {len(records)} record(s) kept")
    problems += [p for p in found if p not in bad_lines]
    problems += bad_lines[:_PROBLEMS_NAMED]
    if len(bad_lines) > _PROBLEMS_NAMED:
        problems.append(f"... and {len(bad_lines) - _PROBLEMS_NAMED} more skipped line(s)")
    records, dropped = _well_formed_rules(records)
    if dropped:
        shown = ", ".join(repr(r) for r in sorted(set(dropped))[:5])
        problems.append(f"results.jsonl: {len(dropped)} citation(s) of malformed rule ids left out: {shown}")
    records, renamed = _current_names(records)
    if renamed:
        pairs = ", ".join(f"{old!r} -> {new!r}" for old, new in sorted(renamed.items()))
        problems.append(f"results.jsonl: properties of the older records renamed after their test function: {pairs}")
    return records, len(bad_lines)


def load_run(run_dir: Path) -> RunData:
    """Read one run directory; raise ValueError when it holds neither results.jsonl (nor a worker's
    results-<worker>.jsonl) nor run.json."""
    run_dir = Path(run_dir)
    info_path = run_dir / "run.json"
    if not result_files(run_dir) and not info_path.exists():
        raise ValueError(f"{run_dir}: not a run directory (no results.jsonl or run.json)")
    problems: list[str] = []
    info = _read_info(info_path, problems)
    records, lost = _read_records(run_dir, problems)
    # run.json says 'running' until the session ends; still 'running' afterwards means the process died
    status = {"finished": "finished", "interrupted": "interrupted", "running": "killed"}.get(info.get("status"),
                                                                                               "unknown")
    if status == "killed":
        problems.insert(0, "run.json still says 'running': the process was killed (or is still running); "
                        f"{len(records)} check(s) had finished")
    elif status == "interrupted":
        problems.insert(0, f"the run was interrupted; {len(records)} check(s) had finished")
    return RunData(run_dir, info, records, lost, status, problems)


_SAFE = re.compile(r"[^A-Za-z0-9_.-]+")


def safe_name(text: str) -> str:
    """A file-name-safe form of ``text`` (run ids and adapter names come from the command line)."""
    return _SAFE.sub("_", text).strip("._") or "x"
