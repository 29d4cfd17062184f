"""Known findings: the xfail records of a backend folded per finding (one xfails/<backend>.toml entry).

harness.judge records a case-level xfail with the entry's description before the check's own message:
``RULE [versions] reason (source): message`` (xfails.XfailEntry.describe; source is
``<backend>.toml finding N``, or ``<backend>.txt:LINE`` in runs of the older list format). Records of one
finding share rule, reason and source; a whole-test xfail carries no description, and folds per property.
"""

from __future__ import annotations

import math
import re

from ..harness.rules import rule_sort_key

__all__ = ["fold_findings", "xfail_parts"]

_DESCRIBED = re.compile(r"(?P<rule>[A-Z]{2,6}-\d+) \[(?P<versions>[^\]]*)\] (?P<reason>.*?) "
                        r"\((?P<source>[^()\s]+\.(?:toml finding \d+|txt:\d+))\): (?P<detail>.*)", re.DOTALL)


def xfail_parts(message: str) -> dict | None:
    """rule, versions, reason, source and detail (the check's own message) of a described xfail message."""
    m = _DESCRIBED.fullmatch(message or "")
    return m.groupdict() if m else None


def fold_findings(failures: list[dict]) -> list[dict]:
    """One entry per finding over the xfail cases among ``failures`` (summary case dicts): rule, reason,
    source, versions, how many checks it covered, the properties/variants/rules they cite, the largest
    ratio (null when a ratio was not finite; ``nonfinite`` counts those) and ``example``, the index in
    ``failures`` of its first case. Natural rule order, then reason."""
    folded: dict[tuple, dict] = {}
    for i, f in enumerate(failures):
        if f["verdict"] != "xfail":
            continue
        parts = xfail_parts(f["message"])
        if parts:
            key = (parts["source"], parts["rule"], parts["reason"])
            head = {"rule": parts["rule"], "reason": parts["reason"], "source": parts["source"],
                    "versions": parts["versions"]}
        else:  # a whole-test xfail: the record names no entry
            rule = min(f["rules"], key=rule_sort_key) if f["rules"] else ""
            key = ("", f["property"], rule)
            head = {"rule": rule, "reason": None, "source": None, "versions": None}
        entry = folded.setdefault(key, {**head, "count": 0, "properties": [], "variants": [], "rules": [],
                                        "ratio_max": None, "nonfinite": 0, "example": i})
        entry["count"] += 1
        for field, values in (("properties", [f["property"]]), ("variants", [f.get("variant") or "default"]),
                              ("rules", f["rules"])):
            entry[field] += [v for v in values if v not in entry[field]]
        if "ratio" in f["metrics"]:
            ratio = f["metrics"]["ratio"]
            if ratio is None or not math.isfinite(ratio):
                entry["nonfinite"] += 1
            elif entry["ratio_max"] is None or ratio > entry["ratio_max"]:
                entry["ratio_max"] = ratio
    for entry in folded.values():
        entry["rules"].sort(key=rule_sort_key)
        entry["properties"].sort()
    return sorted(folded.values(), key=lambda e: (rule_sort_key(e["rule"]) if e["rule"] else ("~", 0),
                                                  e["reason"] or "", e["source"] or ""))
