"""Known framework disagreements with the spec (findings), one TOML file per backend:
``conformance/xfails/<backend>.toml``, read with :mod:`tomllib`.

Each finding is one ``[[finding]]`` table::

    [[finding]]
    test = "*keras-jax:unroll*"          # fnmatch pattern on the pytest node id; only * and ? are wildcards
    rule = "MASK-2"                      # the spec rule the framework disagrees with
    versions = "keras==3.15.1"           # a PEP 440 requirement on one package the adapter reports, or "*"
    when = { masked_output = "zero" }    # optional: only cases with these facts (a value or a list: any of)
    unless = { mask = "none" }           # optional: not cases with these facts
    reason = "what the framework does and where"

``when``/``unless`` keys are the case's config fields (``dtype``, ``go_backwards``, ...), ``mask``
(none|right-padded|arbitrary), ``masked_output``, ``initial_state``, ``variant``, ``batch``, ``timesteps``,
``activations`` (either activation) and, for training-mode checks, ``dropout`` and ``recurrent_dropout``.
An entry with neither marks the whole test as an expected failure; with them, only a failing or crashing case
that matches is recorded as *xfail* and the test goes on, so any other failure in the same test still fails it.
An entry that matches no collected test is warned about.
"""

from __future__ import annotations

import fnmatch
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["XfailEntry", "load_xfails", "version_matches", "case_facts", "XFAIL_DIR"]

#: the findings live beside the packages, where users look for them (not inside the machinery)
XFAIL_DIR = Path(__file__).resolve().parent.parent / "xfails"

_CASE_KEYS = frozenset({"mask", "masked_output", "initial_state", "variant", "activations", "batch", "timesteps",
                        "dropout", "recurrent_dropout"})  # the last two: TRAIN checks' rates (None elsewhere)
_FIELDS = ("test", "rule", "versions", "reason")


def _known_keys() -> frozenset[str]:
    from reference import Config

    return _CASE_KEYS | {f for f in Config.__dataclass_fields__ if not f.startswith("_")}


def _facts_table(raw, where: str, name: str) -> tuple[tuple[str, frozenset[str]], ...]:
    if raw is None:
        return ()
    if not isinstance(raw, dict):
        raise ValueError(f"{where}: '{name}' must be a table like {{ dtype = \"float64\" }}, got {raw!r}")
    known = _known_keys()
    out = []
    for key, values in raw.items():
        if key not in known:
            raise ValueError(f"{where}: '{name}' key {key!r} is not a case fact; allowed: {', '.join(sorted(known))}")
        values = values if isinstance(values, list) else [values]
        out.append((key, frozenset(_fact(v) for v in values)))
    return tuple(out)


def _fact(value) -> str:
    return str(value)  # facts compare as strings: True -> "True", 1 -> "1"


def case_facts(described: dict, variant: str) -> dict[str, tuple[str, ...]]:
    """The values ``when``/``unless`` can test, from ``Case.describe()``, each as a tuple of strings."""
    cfg = described.get("config", {})
    facts = {k: (_fact(v),) for k, v in cfg.items()}
    for key in ("mask", "masked_output", "initial_state", "batch", "timesteps", "dropout", "recurrent_dropout"):
        facts[key] = (_fact(described.get(key)),)
    facts["variant"] = (variant,)
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
    when: tuple[tuple[str, frozenset[str]], ...] = field(default=())
    unless: tuple[tuple[str, frozenset[str]], ...] = field(default=())

    @property
    def conditional(self) -> bool:
        """True when the entry covers only the cases its when/unless describe."""
        return bool(self.when or self.unless)

    def matches(self, nodeid: str) -> bool:
        # Only * and ? are wildcards: the brackets of a pytest id ("[keras-jax:unroll]") are literal,
        # not an fnmatch character class.
        pattern = self.pattern.replace("[", "[[]")
        return fnmatch.fnmatchcase(nodeid, pattern) or fnmatch.fnmatchcase(nodeid.split("/")[-1], pattern)

    def matches_case(self, facts: dict[str, tuple[str, ...]]) -> bool:
        hit = lambda key, values: any(v in values for v in facts.get(key, ()))  # noqa: E731
        return all(hit(k, v) for k, v in self.when) and not any(hit(k, v) for k, v in self.unless)

    def describe(self) -> str:
        return f"{self.rule} [{self.versions}] {self.reason} ({self.source})"


def load_xfails(backend: str, directory: Path = XFAIL_DIR) -> list[XfailEntry]:
    path = Path(directory) / f"{backend}.toml"
    if not path.exists():
        return []
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"{path}: not valid TOML ({exc})") from None
    out = []
    for n, item in enumerate(data.get("finding", []), 1):
        where = f"{path.name} finding {n}"
        missing = [k for k in _FIELDS if not isinstance(item.get(k), str) or not item[k].strip()]
        if missing:
            raise ValueError(f"{where}: needs the text fields {', '.join(_FIELDS)}; missing or empty: {missing}")
        extra = set(item) - set(_FIELDS) - {"when", "unless"}
        if extra:
            raise ValueError(f"{where}: unknown field(s) {sorted(extra)}; allowed: {', '.join(_FIELDS)}, when, unless")
        out.append(XfailEntry(backend, item["test"], item["rule"], item["versions"], item["reason"], where,
                              _facts_table(item.get("when"), where, "when"),
                              _facts_table(item.get("unless"), where, "unless")))
    return out


def version_matches(spec: str, versions: dict[str, str]) -> bool:
    """``*`` or ``package<op>version`` (PEP 440 specifier) against the adapter's versions."""
    if spec == "*":
        return True
    from packaging.requirements import Requirement

    req = Requirement(spec)
    have = versions.get(req.name)
    return have is not None and req.specifier.contains(have.split("+")[0], prereleases=True)
