"""Reference results computed once per case: every variant of a backend (and every property) that draws
the same case under a fixed seed reuses its float64 truth and oracles instead of recomputing them.

Keyed by the case's content (config, arrays, options), bounded by the bytes it holds (least recently used
results go first), so memory stays flat however long the run.
"""

from __future__ import annotations

import hashlib
import json
from collections import OrderedDict
from typing import Any, Callable

import numpy as np

__all__ = ["ReferenceMemo", "case_key"]

MAX_BYTES = 256 * 2**20


def case_key(case, what: str) -> str:
    """A digest of everything the reference reads from ``case`` (and which result is wanted)."""
    h = hashlib.sha1(what.encode())
    h.update(json.dumps([case.config.to_dict(), case.masked_output, case.last_output, case.seed],
                        sort_keys=True, default=str).encode())
    for name, a in sorted(case.arrays().items()):
        a = np.ascontiguousarray(a)
        h.update(f"{name}{a.dtype}{a.shape}".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def _nbytes(obj: Any) -> int:
    if isinstance(obj, np.ndarray):
        return obj.nbytes
    if isinstance(obj, (list, tuple)):
        return sum(_nbytes(o) for o in obj)
    if hasattr(obj, "__dataclass_fields__"):
        return sum(_nbytes(getattr(obj, f)) for f in obj.__dataclass_fields__)
    return 64


class ReferenceMemo:
    def __init__(self, max_bytes: int = MAX_BYTES):
        self.max_bytes, self.bytes = max_bytes, 0
        self._items: OrderedDict[str, tuple[Any, int]] = OrderedDict()
        self.hits = self.misses = 0

    def get(self, key: str, compute: Callable[[], Any]) -> Any:
        if key in self._items:
            self._items.move_to_end(key)
            self.hits += 1
            return self._items[key][0]
        self.misses += 1
        value = compute()
        size = _nbytes(value)
        if size <= self.max_bytes:
            self._items[key] = (value, size)
            self.bytes += size
            while self.bytes > self.max_bytes:
                _, (_, old) = self._items.popitem(last=False)
                self.bytes -= old
        return value
