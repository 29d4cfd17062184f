"""Writing files so that readers never see half of one: JSON-safe values and atomic replacement."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["NotWritable", "check_writable", "to_jsonable", "replace_atomically", "write_text_atomic",
           "write_json_atomic"]


class NotWritable(OSError):
    """An output path that cannot be written; the message names it and why (exit 3 on the command line)."""

    def __str__(self) -> str:
        return str(self.args[0])


def check_writable(path: Path, *, what: str, folder: bool) -> None:
    """Raise :class:`NotWritable` unless ``path`` can be written as a file (``folder=False``) or used as a
    folder (``folder=True``), missing parents created on the way. Called before a long computation, so a
    bad destination fails in a second rather than after minutes; ``what`` names the option (``--out``)."""
    path = Path(path)
    if folder and path.exists() and not path.is_dir():
        raise NotWritable(f"{what} {path}: exists and is not a folder")
    if not folder and path.is_dir():
        raise NotWritable(f"{what} {path}: is a folder; give a file name")
    probe = path if folder and path.is_dir() else path.parent
    while not probe.exists() and probe != probe.parent:  # missing folders are created when writing
        probe = probe.parent
    if not probe.is_dir():
        raise NotWritable(f"{what} {path}: {probe} is a file, not a folder")
    try:
        with tempfile.TemporaryFile(dir=probe):
            pass
    except OSError as exc:
        raise NotWritable(f"{what} {path}: cannot write in {probe} ({exc.strerror or exc})") from None


def to_jsonable(obj: Any) -> Any:
    """numpy values to plain JSON; a non-finite float becomes null (records keep a note beside it)."""
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
