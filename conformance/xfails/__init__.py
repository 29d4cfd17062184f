"""Known framework disagreements with the spec, one file per backend (``<backend>.txt``).

Each non-comment line: ``TEST_ID | RULE | VERSIONS | REASON``. TEST_ID is an fnmatch pattern on the
pytest node id (e.g. ``*test_forward.py::test_forward_matches_reference[tf-keras:*]``); VERSIONS a
``package<spec>`` (``keras>=3.15``) or ``*``. The failing check stays a check: it runs, is recorded as
*xfail* and shows in the report; an entry that matches no test or whose test passes is warned about.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from pathlib import Path

__all__ = ["XfailEntry", "load_xfails", "version_matches"]


@dataclass(frozen=True)
class XfailEntry:
    backend: str
    pattern: str
    rule: str
    versions: str
    reason: str
    source: str

    def matches(self, nodeid: str) -> bool:
        return fnmatch.fnmatchcase(nodeid, self.pattern) or fnmatch.fnmatchcase(nodeid.split("/")[-1], self.pattern)


def load_xfails(backend: str) -> list[XfailEntry]:
    path = Path(__file__).with_name(f"{backend}.txt")
    if not path.exists():
        return []
    out = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        parts = [p.strip() for p in line.split("|")]
        if len(parts) != 4:
            raise ValueError(f"{path}:{n}: expected 'TEST_ID | RULE | VERSIONS | REASON', got {line!r}")
        out.append(XfailEntry(backend, parts[0], parts[1], parts[2], parts[3], f"{path.name}:{n}"))
    return out


def version_matches(spec: str, versions: dict[str, str]) -> bool:
    """``*`` or ``package<op>version`` (PEP 440 specifier) against the adapter's versions."""
    if spec == "*":
        return True
    from packaging.requirements import Requirement

    req = Requirement(spec)
    have = versions.get(req.name)
    return have is not None and req.specifier.contains(have.split("+")[0], prereleases=True)
