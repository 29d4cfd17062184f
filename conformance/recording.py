"""Result recording (DESIGN §5): one JSON line per check in ``<report-dir>/<run>/results.jsonl``.

Each line is written and flushed as the check finishes, so an interrupted run keeps what finished.
A ``run.json`` beside it records the run's configuration and is rewritten atomically at start and end.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["ResultWriter", "write_json_atomic", "write_text_atomic", "replace_atomically", "read_results", "VERDICTS", "to_jsonable"]

VERDICTS = ("pass", "fail", "skip", "xfail", "crash")


def to_jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, (np.floating, float)):
        f = float(obj)
        return f if np.isfinite(f) else None
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.bool_):
        return bool(obj)
    return obj


def replace_atomically(path: Path, fill) -> None:
    """Create ``path`` through a temp file in the same directory + rename, so readers never see half a
    file; ``fill(tmp_path)`` writes the content. The file ends up world-readable (0644)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        fill(tmp)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_text_atomic(path: Path, text: str) -> None:
    replace_atomically(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))


def write_json_atomic(path: Path, data: Any) -> None:
    write_text_atomic(path, json.dumps(to_jsonable(data), indent=2, sort_keys=True) + "\n")


class ResultWriter:
    """Appends check results to ``run_dir/results.jsonl``; thread-safe, flushed per line."""

    def __init__(self, run_dir: Path, run_info: dict):
        self.run_dir = Path(run_dir)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.path = self.run_dir / "results.jsonl"
        self.run_info = dict(run_info)
        self.counts: dict[str, int] = {v: 0 for v in VERDICTS}
        self.per_adapter: dict[str, dict[str, int]] = {}
        self._lock = threading.Lock()
        # a run id names one run: a new run with the same id replaces the old results and repro blobs
        shutil.rmtree(self.run_dir / "repro", ignore_errors=True)
        self._fh = open(self.path, "w", buffering=1)
        self.run_info.setdefault("started", time.time())
        self.run_info["status"] = "running"
        write_json_atomic(self.run_dir / "run.json", self.run_info)

    def record(self, result: dict) -> None:
        result = {"run": self.run_info.get("run_id"), **result}
        line = json.dumps(to_jsonable(result), sort_keys=True)
        with self._lock:
            self._fh.write(line + "\n")
            self._fh.flush()
            verdict = result.get("verdict", "crash")
            self.counts[verdict] = self.counts.get(verdict, 0) + 1
            mine = self.per_adapter.setdefault(str(result.get("adapter")), {})
            mine[verdict] = mine.get(verdict, 0) + 1

    @property
    def executed(self) -> int:
        return sum(n for v, n in self.counts.items() if v != "skip")

    def close(self, status: str = "finished") -> None:
        with self._lock:
            if not self._fh.closed:
                self._fh.close()
        self.run_info.update(status=status, finished=time.time(), counts=self.counts)
        write_json_atomic(self.run_dir / "run.json", self.run_info)


def read_results(path: Path) -> tuple[list[dict], int]:
    """Read a results.jsonl; returns (complete records, number of lines lost to truncation/corruption)."""
    records, lost = [], 0
    with open(path, "rb") as fh:
        data = fh.read()
    for raw in data.split(b"\n"):
        if not raw.strip():
            continue
        try:
            rec = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError):
            lost += 1
            continue
        if isinstance(rec, dict):
            records.append(rec)
        else:
            lost += 1
    return records, lost
