"""Known framework disagreements with the spec, one file per backend (``<backend>.txt``).

Each non-comment line: ``TEST_ID | RULE | VERSIONS | REASON`` or ``TEST_ID | RULE | VERSIONS | WHEN | REASON``.
TEST_ID is an fnmatch pattern on the pytest node id (e.g. ``*test_forward.py::test_forward_matches_reference[tf-keras:*]``);
VERSIONS a ``package<spec>`` (``keras>=3.15``) or ``*``. The failing check stays a check: it runs, is recorded as
*xfail* and shows in the report; an entry that matches no test or whose test passes is warned about.

WHEN (optional, default ``*``) narrows an entry to the drawn cases it describes, for a disagreement that only
some configs show (a float64-only constant, one masking path): ``;``-separated clauses ``key=v1,v2`` (any of)
or ``key!=v1,v2`` (none of), over the case's config fields (``dtype``, ``go_backwards``, ...), ``mask``
(none|right-padded|arbitrary), ``masked_output``, ``initial_state``, ``variant``, and ``activations`` (either
activation). Such an entry marks no test: a failing or crashing case that matches is recorded as *xfail*
and the test goes on; any other failure in the same test still fails it.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from pathlib import Path

__all__ = ["XfailEntry", "load_xfails", "version_matches", "case_facts"]


_CASE_KEYS = frozenset({"mask", "masked_output", "initial_state", "variant", "activations", "batch", "timesteps"})


def _parse_when(when: str, where: str) -> tuple[tuple[str, bool, frozenset[str]], ...]:
    from reference import Config

    if when.strip() == "*":
        return ()
    known = _CASE_KEYS | {f for f in Config.__dataclass_fields__ if not f.startswith("_")}
    clauses = []
    for part in when.split(";"):
        key, neg, values = part.partition("!=") if "!=" in part else part.partition("=")
        key = key.strip()
        if not neg or key not in known:
            raise ValueError(f"{where}: WHEN clause {part.strip()!r}: expected key=v1,v2 or key!=v1,v2 with key "
                             f"in {sorted(known)}")
        clauses.append((key, neg == "!=", frozenset(v.strip() for v in values.split(","))))
    return tuple(clauses)


def case_facts(described: dict, variant: str) -> dict[str, tuple[str, ...]]:
    """The values a WHEN clause can test, from ``Case.describe()``, each as a tuple of strings."""
    facts = {k: (str(v),) for k, v in described.get("config", {}).items()}
    for key in ("mask", "masked_output", "initial_state", "batch", "timesteps"):
        facts[key] = (str(described.get(key)),)
    facts["variant"] = (variant,)
    cfg = described.get("config", {})
    facts["activations"] = (str(cfg.get("activation")), str(cfg.get("recurrent_activation")))
    return facts


@dataclass(frozen=True)
class XfailEntry:
    backend: str
    pattern: str
    rule: str
    versions: str
    reason: str
    source: str
    when: str = "*"

    def __post_init__(self):
        object.__setattr__(self, "_clauses", _parse_when(self.when, self.source))

    @property
    def conditional(self) -> bool:
        """True when the entry covers only the cases its WHEN describes."""
        return bool(self._clauses)

    def matches(self, nodeid: str) -> bool:
        # Only * and ? are wildcards: the brackets of a pytest id ("[keras-jax:unroll]") are literal,
        # not an fnmatch character class.
        pattern = self.pattern.replace("[", "[[]")
        return fnmatch.fnmatchcase(nodeid, pattern) or fnmatch.fnmatchcase(nodeid.split("/")[-1], pattern)

    def matches_case(self, facts: dict[str, tuple[str, ...]]) -> bool:
        for key, negated, values in self._clauses:
            hit = any(v in values for v in facts.get(key, ()))
            if hit == negated:
                return False
        return True


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
        if len(parts) not in (4, 5):
            raise ValueError(f"{path}:{n}: expected 'TEST_ID | RULE | VERSIONS | [WHEN |] REASON', got {line!r}")
        when = parts[3] if len(parts) == 5 else "*"
        out.append(XfailEntry(backend, parts[0], parts[1], parts[2], parts[-1], f"{path.name}:{n}", when))
    return out


def version_matches(spec: str, versions: dict[str, str]) -> bool:
    """``*`` or ``package<op>version`` (PEP 440 specifier) against the adapter's versions."""
    if spec == "*":
        return True
    from packaging.requirements import Requirement

    req = Requirement(spec)
    have = versions.get(req.name)
    return have is not None and req.specifier.contains(have.split("+")[0], prereleases=True)
