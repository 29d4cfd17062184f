"""Version specs on the command line and in ``LSTM_CONFORMANCE_PINS`` (PEP 440, read with ``packaging``).

Forms accepted by :func:`parse_versions`:

- ``keras==3.0.0...3.15.1``  every final release the index offers from 3.0.0 to 3.15.1, both included
- ``keras==3.0.0,3.9.2,3.15.1``  exactly these releases
- ``keras>=3.0,<3.11``  any PEP 440 specifier set, resolved against the index's final releases
- ``keras==3.4.1``  one release

Pre-releases are left out of ranges and specifier sets unless named exactly. Every bad spec raises one
``ValueError`` naming it and the accepted forms.
"""

from __future__ import annotations

import re
import subprocess
import sys
from dataclasses import dataclass

from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

__all__ = ["VersionSpec", "parse_versions", "parse_pins", "index_versions", "FORMS"]

FORMS = ("PKG==A...B (a range of releases), PKG==A,B,C (a list), PKG>=A,<B (a PEP 440 specifier set), "
         "PKG==A (one release)")
_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)(\[[A-Za-z0-9,._-]+\])?\s*(.*)$")


@dataclass(frozen=True)
class VersionSpec:
    """A package and which of its releases: an explicit list, an inclusive range, or a specifier set."""

    package: str  # as written (extras kept: "jax[cpu]")
    releases: tuple[str, ...] = ()  # an explicit list
    low: str | None = None  # an inclusive range low...high
    high: str | None = None
    specifier: str | None = None  # a PEP 440 specifier set

    @property
    def name(self) -> str:
        return canonicalize_name(_NAME.match(self.package).group(1))

    def select(self, available: list[str]) -> list[str]:
        """The releases this spec names, oldest first, among ``available`` (the index's, any order)."""
        if self.releases:
            return sorted(self.releases, key=Version)
        finals = sorted({v for v in available if not Version(v).is_prerelease and not Version(v).is_devrelease},
                        key=Version)
        if self.low is not None:
            lo, hi = Version(self.low), Version(self.high)
            return [v for v in finals if lo <= Version(v) <= hi]
        spec = SpecifierSet(self.specifier)
        return [v for v in finals if Version(v) in spec]

    def pin(self, version: str) -> str:
        return f"{self.package}=={version}"


def _version(text: str, spec: str) -> str:
    try:
        return str(Version(text.strip()))
    except InvalidVersion:
        raise ValueError(f"{spec!r}: {text.strip()!r} is not a version; accepted forms: {FORMS}") from None


def parse_versions(spec: str) -> VersionSpec:
    """One ``--versions`` argument (see the module docstring)."""
    m = _NAME.match(spec or "")
    if not m or not m.group(3):
        raise ValueError(f"{spec!r}: expected a package with versions; accepted forms: {FORMS}")
    package, rest = m.group(1) + (m.group(2) or ""), m.group(3).strip()
    if rest.startswith("==") and "..." in rest:
        low, _, high = rest[2:].partition("...")
        low, high = _version(low, spec), _version(high, spec)
        if Version(low) > Version(high):
            raise ValueError(f"{spec!r}: the range is empty ({low} is after {high}); write it oldest first")
        return VersionSpec(package, low=low, high=high)
    if rest.startswith("==") and not any(op in rest[2:] for op in "<>=!~*"):
        releases = tuple(_version(v, spec) for v in rest[2:].split(",") if v.strip())
        if not releases:
            raise ValueError(f"{spec!r}: no version after '=='; accepted forms: {FORMS}")
        return VersionSpec(package, releases=tuple(dict.fromkeys(releases)))
    try:
        SpecifierSet(rest)
    except InvalidSpecifier:
        raise ValueError(f"{spec!r}: {rest!r} is not a PEP 440 specifier set; accepted forms: {FORMS}") from None
    return VersionSpec(package, specifier=rest)


def parse_pins(text: str, source: str = "LSTM_CONFORMANCE_PINS") -> list[str]:
    """Requirements separated by spaces (``"keras==3.4.1 jax==0.4.30"``), from ``source`` (named in errors)."""
    pins = []
    for token in (text or "").split():
        try:
            Requirement(token)
        except InvalidRequirement as exc:
            raise ValueError(f"{source}: {token!r} is not a requirement ({exc}); write e.g. "
                             f"{source}=\"keras==3.4.1 jax==0.4.30\"") from None
        pins.append(token)
    return pins


def index_versions(package: str, python: str = sys.executable) -> list[str]:
    """The releases of ``package`` on the configured index (``pip index versions``); ValueError when the index
    has none (an unknown package) or pip cannot ask it."""
    name = _NAME.match(package).group(1)
    proc = subprocess.run([python, "-m", "pip", "index", "versions", name], capture_output=True, text=True,
                          check=False)
    for line in proc.stdout.splitlines():
        if line.strip().startswith("Available versions:"):
            return [v.strip() for v in line.split(":", 1)[1].split(",") if v.strip()]
    why = (proc.stderr.strip().splitlines() or ["no 'Available versions' line"])[-1]
    raise ValueError(f"package {name!r}: the index offers no release ({why})")
