"""Rule IDs: the ``@rules`` marker and the catalogue parsed from spec/*.md."""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

import pytest

__all__ = ["rules", "spec_dir", "spec_rules", "RULE_ID", "cited_rule_ids", "property_name", "property_rules", "rule_sort_key"]

#: rule families of spec/ (a citation like UTF-8 in prose is not a rule)
FAMILIES = ("GATE", "ACT", "SHAPE", "PARAM", "LAYOUT", "MASK", "DIR", "BIDI", "STATE", "STACK", "PROJ", "PEEP",
            "CLIP", "IFG", "DEF", "NUM", "KPATH", "GRAD", "TRAIN")
RULE_ID = re.compile(r"\b((?:%s)-\d+)\b" % "|".join(FAMILIES))
_HEADING = re.compile(r"^###\s+([A-Z]{2,6}-\d+)\s+[—-]+\s+(.*)$")


def rules(*ids: str):
    """Tag a property with the spec rules it checks: ``@rules("GATE-1", "SHAPE-2")``."""
    for rid in ids:
        if not RULE_ID.fullmatch(rid):
            raise ValueError(f"rule id {rid!r}: expected the form GATE-1")
    return pytest.mark.rules(*ids)


def spec_dir() -> Path:
    return Path(__file__).resolve().parents[2] / "spec"


@lru_cache(maxsize=1)
def spec_rules() -> dict[str, dict]:
    """rule id -> {"title", "page"} from the ``### ID — title`` headings of spec/*.md."""
    out: dict[str, dict] = {}
    d = spec_dir()
    for page in sorted(d.glob("*.md")) if d.is_dir() else []:
        for line in page.read_text(encoding="utf-8").splitlines():
            m = _HEADING.match(line.strip())
            if m:
                out[m.group(1)] = {"title": m.group(2).strip(), "page": page.name}
    return out


def cited_rule_ids(paths: list[Path]) -> dict[str, set[str]]:
    """rule id -> files citing it, over the given source files."""
    cited: dict[str, set[str]] = {}
    for path in paths:
        for rid in RULE_ID.findall(path.read_text(encoding="utf-8")):
            cited.setdefault(rid, set()).add(str(path))
    return cited


def property_name(item) -> str:
    """A property's name as records carry it: the test function's name without ``test_``."""
    return getattr(item, "originalname", item.name).removeprefix("test_")


def property_rules(items) -> dict[str, list[str]]:
    """property (test function name without ``test_``) -> the rules its ``@rules`` marker names."""
    out: dict[str, list[str]] = {}
    for item in items:
        mark = item.get_closest_marker("rules")
        if mark is not None:
            out[property_name(item)] = list(mark.args)
    return out


def rule_sort_key(rid: str) -> tuple[str, int]:
    """Natural order: ACT-2 before ACT-10."""
    fam, _, num = rid.partition("-")
    return (fam, int(num) if num.isdigit() else 0)
