"""The diagnosis beside each failure (conformance/diagnosis): one line per failure card, and per known
finding a tally of what its cases were diagnosed as. Reads the records' ``metrics['diagnosis']`` only."""

from __future__ import annotations

from collections import Counter

from .findings import xfail_parts

__all__ = ["diagnosis_line", "finding_diagnosis"]

_WHERE = ("part", "layer", "direction", "timestep", "batch", "unit")  # the divergence, in reading order


def diagnosis_line(metrics: dict | None) -> dict | None:
    """{"text", "status", "confident"} for a card, or None when the record carries no diagnosis."""
    d = (metrics or {}).get("diagnosis")
    if not isinstance(d, dict) or "status" not in d:
        return None
    status = d["status"]
    if status in ("explained", "ambiguous"):
        names = " | ".join(d.get("variants") or [])
        text = ("explained by " if d.get("confident") else "ambiguous: ") + names
        readings = d.get("readings") or []
        if d.get("confident") and readings:
            text += f" ({readings[0]}; departs from {', '.join(d.get('rules') or [])})"
    elif status == "unexplained":
        closest = [c["variant"] for c in d.get("closest") or []][:2]
        text = "no known variant explains it" + (f" (closest: {', '.join(closest)})" if closest else "")
    else:
        text = f"not diagnosed: {d.get('message') or 'no reason given'}"
    where = d.get("divergence") or {}
    at = ", ".join(f"{k} {where[k]}" for k in _WHERE if where.get(k) is not None)
    if at:
        text += f"; first diverges from the spec at {at}"
    budget = f"{d.get('tried', 0)} variants, {d.get('pairs', 0)} pairs, {d.get('elapsed_s', 0):.2f} s"
    if d.get("exhausted"):
        budget += f", budget {d.get('budget_s')} s exhausted"
    return {"text": f"{text} [{budget}]", "status": status, "confident": bool(d.get("confident"))}


def finding_diagnosis(failures: list[dict], finding: dict) -> dict | None:
    """What the cases of one known finding were diagnosed as: the diagnosis line of the most common
    explanation, with its count among the diagnosed cases."""
    names: Counter = Counter()
    lines: dict[str, dict] = {}
    diagnosed = 0
    for f in failures:
        if f["verdict"] != "xfail":
            continue
        parts = xfail_parts(f["message"])
        if (parts["source"] if parts else None) != finding.get("source") or (
                parts and parts["rule"] != finding.get("rule")):
            continue
        line = diagnosis_line(f.get("metrics"))
        if line is None or line["status"] == "not-diagnosed":
            continue
        diagnosed += 1
        d = f["metrics"]["diagnosis"]
        key = " | ".join(d.get("variants") or []) if line["confident"] else line["status"]
        names[key] += 1
        lines.setdefault(key, line)
    if not diagnosed:
        return None
    key, n = names.most_common(1)[0]
    return {**lines[key], "text": f"{lines[key]['text']} — {n} of {diagnosed} diagnosed cases"}
