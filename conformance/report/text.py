"""Text from records on a terminal: property names, messages, rule ids, backend and run names all come from
results.jsonl / run.json / summary.json, files anyone can write. Printed raw, an ANSI escape could clear the
screen or recolour a line, and a ``\\r`` or ``\\n`` inside a field could forge a line ("no regression").
:func:`printable` shows every such character as a visible escape instead, so one field stays on one line.
"""

from __future__ import annotations

import re

__all__ = ["printable"]

# C0 controls (tab and newline included), DEL and C1; the Unicode line/paragraph separators; the bidi
# embedding, override and isolate controls (they reorder what follows them on the line)
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u200e\u200f\u202a-\u202e\u2066-\u2069]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape(m: re.Match) -> str:
    ch = m.group()
    if ch in _NAMED:
        return _NAMED[ch]
    return f"\\x{ord(ch):02x}" if ord(ch) < 0x100 else f"\\u{ord(ch):04x}"


def printable(value) -> str:
    """``str(value)`` with every control character escaped visibly: ESC -> ``\\x1b``, CR -> ``\\r``."""
    return _CONTROL.sub(_escape, str(value))
