"""The result record (DESIGN §5): one :class:`Result` per check, one JSON line each in
``<report-dir>/<run>/results.jsonl``. This module is the record's one home: the verdict vocabulary,
the check kinds, the dataclass, the writer and the reader.

A run fanned out over pytest-xdist workers writes one file per worker, ``results-<worker>.jsonl``
(gw0, gw1, ...), beside one ``run.json`` that the controlling process writes; :func:`result_files` lists
a run folder's files and :func:`read_run_results` reads them all.

Each line is written and flushed as the check finishes (one ``write`` of a whole line to a file opened
for appending), so an interrupted run keeps what finished. ``run.json`` beside it holds the run's
configuration and status and is rewritten atomically at start and end. A run folder is claimed with an
exclusive lock: a second run with the same id is refused instead of interleaving with the first.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
import subprocess
import threading
import time
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any, Iterator

from .files import to_jsonable, write_json_atomic

__all__ = ["Verdict", "CheckKind", "Result", "ResultWriter", "RunLocked", "read_results", "read_run_results",
           "result_files", "SCHEMA_VERSION", "validate_run_id"]

#: version of the record's layout; records written before it existed carry none (read as version 1)
SCHEMA_VERSION = 2


class Verdict(str, Enum):
    """What a check concluded. ``FAIL``/``CRASH`` fail a run; ``XFAIL`` is a known finding."""

    PASS = "pass"
    FAIL = "fail"
    XFAIL = "xfail"
    CRASH = "crash"
    INCONCLUSIVE = "inconclusive"
    SKIP = "skip"

    @property
    def failing(self) -> bool:
        return self in (Verdict.FAIL, Verdict.CRASH)

    @property
    def executed(self) -> bool:
        return self is not Verdict.SKIP

    def __str__(self) -> str:
        return self.value


#: report order: what needs attention first
VERDICTS = tuple(v.value for v in Verdict)


class CheckKind(str, Enum):
    """Which comparison a record holds (harness.judge has one function per kind; repro dispatches on it)."""

    FORWARD = "forward"  # outputs and final states vs the reference
    SHAPES = "shapes"  # output/state shapes vs reference.output_shapes
    PARAMS = "params"  # the framework's parameter count vs the convention's formula
    CONTINUATION = "continuation"  # two calls with carried state vs one call
    STATEFUL = "stateful"  # two calls of a stateful layer vs one call
    DEFAULTS = "defaults"  # a fresh layer's initialisation and activations
    PRECISION = "precision"  # the layer computes in the dtype it declares (effective bits, NUM-5)
    GRADIENT = "gradient"  # the framework's autodiff vs the reference backward pass, per tensor (GRAD-*)
    TRAINING = "training"  # a layer built with dropout, in inference and training mode (TRAIN-*)
    REQUIREMENTS = "requirements"  # no comparison: the adapter lacks an option the property needs

    def __str__(self) -> str:
        return self.value


#: schema-1 records had only a free ``property`` string; the kind it implied (repro used this table)
_LEGACY_KIND = {"shapes": CheckKind.SHAPES, "params": CheckKind.PARAMS, "continuation": CheckKind.CONTINUATION,
                "stateful": CheckKind.STATEFUL, "defaults": CheckKind.DEFAULTS,
                "requirements": CheckKind.REQUIREMENTS}


@dataclass
class Result:
    """One check's outcome. ``property`` is the property's label (``go_backwards``, ``masking``, ...),
    ``check`` the comparison it ran; ``config`` the case description (``Case.describe()``) or a bare
    ``Config.to_dict()`` for checks without a drawn case; ``metrics`` the numbers (``err_impl``,
    ``err_oracle``, ``ratio``, shapes, counts)."""

    adapter: str
    verdict: Verdict
    property: str
    check: CheckKind = CheckKind.FORWARD
    test: str = ""
    variant: str = "default"
    framework: str = ""
    versions: dict[str, str] = field(default_factory=dict)
    device: str | None = None
    rules: list[str] = field(default_factory=list)
    implicated: list[str] = field(default_factory=list)  # a fail's broken rule(s); exercised rules in ``rules``
    message: str = ""
    duration: float = 0.0
    kernel_path: str | None = None
    precision: str | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    repro: str | None = None
    config: dict | None = None
    dtype: str | None = None
    seed: int | None = None
    run: str | None = None
    traceback: str | None = None  # a crash's full traceback (the message keeps the exception's first line)
    schema_version: int = SCHEMA_VERSION

    @property
    def ratio(self) -> tuple[float | None, bool]:
        """(ratio, nonfinite): a non-finite ratio is stored as null (files.to_jsonable)."""
        if "ratio" not in self.metrics:
            return None, False
        r = self.metrics["ratio"]
        return (None, True) if r is None else (float(r), False)

    @property
    def case_config(self) -> dict | None:
        """The Config fields of the case (``config`` may be a case description or a bare config)."""
        cfg = self.config
        if isinstance(cfg, dict) and isinstance(cfg.get("config"), dict):
            return cfg["config"]
        return cfg if isinstance(cfg, dict) else None

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["verdict"], d["check"] = self.verdict.value, self.check.value
        return to_jsonable(d)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, raw: Any) -> Result:
        """A record read back; ValueError naming the field when one is missing or of the wrong type.
        Records of schema 1 (no ``schema_version``, no ``check``) are read with the kind their
        ``property`` implied."""
        if not isinstance(raw, dict):
            raise ValueError(f"a record is a JSON object, got {type(raw).__name__}")
        version = raw.get("schema_version", 1)
        if not isinstance(version, int) or version > SCHEMA_VERSION:
            raise ValueError(f"schema_version {version!r}: this reader knows 1..{SCHEMA_VERSION} "
                             "(written by a newer lstm-conformance?)")
        kw: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            if f.name in raw and raw[f.name] is not None:
                kw[f.name] = raw[f.name]
        for name in ("adapter", "verdict", "property"):
            if name not in kw:
                raise ValueError(f"field {name!r} is missing")
        try:
            kw["verdict"] = Verdict(kw["verdict"])
        except ValueError:
            raise ValueError(f"field 'verdict': {kw['verdict']!r} is not one of {', '.join(VERDICTS)}") from None
        if "check" in kw:
            try:
                kw["check"] = CheckKind(kw["check"])
            except ValueError:
                raise ValueError(f"field 'check': {kw['check']!r} is not one of "
                                 f"{', '.join(k.value for k in CheckKind)}") from None
        else:
            kw["check"] = _LEGACY_KIND.get(str(kw["property"]), CheckKind.FORWARD)
        _expect(kw, str, "adapter", "property", "test", "variant", "framework", "message", "kernel_path",
                "precision", "repro", "dtype", "run", "device", "traceback")
        _expect(kw, dict, "versions", "metrics")
        _expect(kw, list, "rules", "implicated")
        _expect(kw, (int, float), "duration")
        _expect(kw, int, "seed")
        if "config" in kw and not isinstance(kw["config"], dict):
            raise ValueError(f"field 'config': expected an object, got {type(kw['config']).__name__}")
        for name in ("rules", "implicated"):
            if not all(isinstance(r, str) for r in kw.get(name, [])):
                raise ValueError(f"field {name!r}: expected a list of rule IDs (strings)")
        kw["schema_version"] = version
        return cls(**kw)


def _expect(kw: dict, types, *names: str) -> None:
    for name in names:
        if name in kw and (not isinstance(kw[name], types) or isinstance(kw[name], bool) and types is not bool):
            want = types.__name__ if isinstance(types, type) else "/".join(t.__name__ for t in types)
            raise ValueError(f"field {name!r}: expected {want}, got {type(kw[name]).__name__} {kw[name]!r:.40}")


_RUN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+@-]{0,127}")


def validate_run_id(run_id: str) -> str:
    """A run id names one folder directly under the report folder: no separators, no '..'."""
    if not _RUN_ID.fullmatch(run_id) or ".." in run_id:
        raise ValueError(f"--run-id {run_id!r}: use 1-128 letters, digits and _ . + @ - (starting with a letter "
                         "or digit, no '..'); it names a folder inside --report-dir")
    return run_id


class RunLocked(RuntimeError):
    """Another process is writing the same run folder."""


def suite_commit() -> str | None:
    """The checkout's commit (``git describe --always --dirty``), so a run's numbers name the code that made
    them; None outside a git checkout (an installed wheel) or without git."""
    root = Path(__file__).resolve().parents[2]
    if not (root / ".git").exists():
        return None
    try:
        out = subprocess.run(["git", "-C", str(root), "describe", "--always", "--dirty", "--abbrev=10"],
                             capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


class ResultWriter:
    """Appends :class:`Result` lines to ``run_dir/results.jsonl``; thread-safe, one write per line.

    A run id names one run: a new run with the same id replaces the old results (every ``results*.jsonl``)
    and repro blobs, but only when no other process holds the folder (exclusive ``flock`` on ``run_dir/.lock``).

    Fanned out over pytest-xdist, the controlling process holds the folder and writes ``run.json``
    (``records=False``: it runs no check), and each worker appends to ``results-<worker>.jsonl``
    (``worker="gw0"``: no lock, no run.json; its controller holds both)."""

    def __init__(self, run_dir: Path, run_info: dict, *, worker: str | None = None, records: bool = True):
        self.run_dir = Path(run_dir)
        self.worker = worker
        self.run_info = dict(run_info)
        self.counts: dict[str, int] = {v: 0 for v in VERDICTS}
        self.per_adapter: dict[str, dict[str, int]] = {}
        self._lock = threading.Lock()
        self._lock_fd = self._fd = None
        if worker is not None:
            if not _WORKER.fullmatch(worker):
                raise ValueError(f"worker {worker!r}: use letters, digits and _ (it names results-<worker>.jsonl)")
            self.path = self.run_dir / f"results-{worker}.jsonl"
        else:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            self.path = self.run_dir / "results.jsonl"
            self._lock_fd = _claim(self.run_dir)
            shutil.rmtree(self.run_dir / "repro", ignore_errors=True)
            for old in result_files(self.run_dir):  # the previous run of this id, serial or fanned out
                old.unlink()
        if records:
            # a worker appends: its controller removed the previous run's files before starting it, and a worker
            # pytest-xdist restarts after a crash may take the same name
            truncate = os.O_TRUNC if worker is None else 0
            self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | truncate | os.O_APPEND, 0o644)
        if worker is None:
            self.run_info.setdefault("started", time.time())
            self.run_info.setdefault("suite_commit", suite_commit())
            self.run_info["status"] = "running"
            write_json_atomic(self.run_dir / "run.json", self.run_info)

    def record(self, result: Result) -> None:
        if result.run is None:
            result.run = self.run_info.get("run_id")
        data = (result.to_json() + "\n").encode("utf-8")
        with self._lock:
            if self._fd is None:
                raise RuntimeError(f"{self.run_dir}: this writer holds the run folder for its workers and "
                                   "records no check itself")
            os.write(self._fd, data)
            self._count(result.adapter, result.verdict.value)

    def _count(self, adapter: str, verdict: str, n: int = 1) -> None:
        self.counts[verdict] = self.counts.get(verdict, 0) + n
        mine = self.per_adapter.setdefault(adapter, {})
        mine[verdict] = mine.get(verdict, 0) + n

    def recount(self) -> None:
        """Counts from every results file of the run folder (the controller of a fanned-out run: what its
        workers wrote, including a worker that died before reporting its counts)."""
        counts, per_adapter = {v: 0 for v in VERDICTS}, {}
        with self._lock:
            self.counts, self.per_adapter = counts, per_adapter
            for rec in read_run_results(self.run_dir)[0]:
                self._count(rec.adapter, rec.verdict.value)

    @property
    def executed(self) -> int:
        return sum(n for v, n in self.counts.items() if v != Verdict.SKIP.value)

    def close(self, status: str = "finished") -> None:
        with self._lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None
        if self.worker is not None:
            return
        self.run_info.update(status=status, finished=time.time(), counts=self.counts)
        write_json_atomic(self.run_dir / "run.json", self.run_info)
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # releases the flock
            self._lock_fd = None


_WORKER = re.compile(r"[A-Za-z0-9_]{1,64}")
_RESULT_FILE = re.compile(r"results(?:-([A-Za-z0-9_]{1,64}))?\.jsonl")


def result_files(run_dir: Path) -> list[Path]:
    """A run folder's results files: ``results.jsonl`` (a serial run) and ``results-<worker>.jsonl`` (one per
    pytest-xdist worker), workers in numeric order (gw2 before gw10)."""
    def order(p: Path):
        worker = _RESULT_FILE.fullmatch(p.name).group(1) or ""
        return (worker != "", [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", worker)])

    try:
        found = [p for p in Path(run_dir).iterdir() if _RESULT_FILE.fullmatch(p.name)]
    except (FileNotFoundError, NotADirectoryError):
        return []
    return sorted(found, key=order)


def _claim(run_dir: Path) -> int | None:
    try:
        import fcntl
    except ImportError:  # not POSIX: no lock, as before
        return None
    fd = os.open(run_dir / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        raise RunLocked(f"{run_dir} is being written by another run right now; give this run its own --run-id "
                        "or wait for the other one to finish") from None
    return fd


def iter_lines(path: Path) -> Iterator[tuple[int, bytes]]:
    with open(path, "rb") as fh:
        for n, raw in enumerate(fh, 1):
            if raw.strip():
                yield n, raw


def read_results(path: Path) -> tuple[list[Result], list[str]]:
    """Read a results.jsonl defensively: (records, problems). A line that is not JSON (a truncated last
    line) or not a valid record is skipped and named as ``file:line: reason``; the others are kept."""
    records: list[Result] = []
    problems: list[str] = []
    legacy = 0
    for n, raw in iter_lines(Path(path)):
        try:
            rec = Result.from_dict(json.loads(raw))
        except (json.JSONDecodeError, UnicodeDecodeError):
            problems.append(f"{path}:{n}: not a complete JSON line (truncated or corrupt); skipped")
            continue
        except (ValueError, TypeError) as exc:
            problems.append(f"{path}:{n}: {exc}; skipped")
            continue
        legacy += rec.schema_version < SCHEMA_VERSION
        records.append(rec)
    if legacy:
        problems.append(f"{path}: {legacy} record(s) written before record schema {SCHEMA_VERSION} (no check kind); "
                        "read with the kind their property implies")
    return records, problems


def read_run_results(run_dir: Path) -> tuple[list[Result], list[str]]:
    """Every record of a run folder, over all its results files (:func:`result_files`), and the problems of
    each file as :func:`read_results` names them (``file:line: reason``)."""
    records: list[Result] = []
    problems: list[str] = []
    for path in result_files(run_dir):
        mine, found = read_results(path)
        records += mine
        problems += found
    return records, problems
