"""The page's first section, what needs a reader's attention, as plain data: failing checks (fail, crash) of
every backend first, then inconclusive checks, then the known findings (xfail cases folded per finding, one
card each with its count and one example); per backend the jump links; the values the filters offer.

Cards are compact; every case stays in summary.json (and results.jsonl). A group (backend + property) shows
at most a few example cards and counts the rest, so a run with hundreds of failures still makes a light page.
"""

from __future__ import annotations

import json
import re

from ..harness.results import Verdict
from ..harness.rules import rule_sort_key
from .diagnoses import diagnosis_line, finding_diagnosis
from .findings import xfail_parts
from .view import config_brief, fmt

__all__ = ["build_attention"]

#: example cards per (backend, property) group; the rest are counted
_EXAMPLES = {"failing": 3, "inconclusive": 2}
_FINDINGS = 40  # finding cards per backend (each already folds all its checks)
_MESSAGE = 480  # characters of a message on a card (summary.json has it whole)
_NUMBERS = ("ratio", "err_impl", "err_oracle", "floor", "param_count", "param_expected", "convention")
_ANCHOR = re.compile(r"[^A-Za-z0-9_-]")


def _anchor(*parts) -> str:
    return "-".join(_ANCHOR.sub("_", str(p)) for p in parts)


def _clip(text: str, n: int = _MESSAGE) -> str:
    text = text or ""
    return text if len(text) <= n else text[: n - 1] + "…"


def _numbers(metrics: dict, k: float) -> list[tuple[str, str]]:
    out = []
    for key in (k_ for k_ in _NUMBERS if k_ in metrics):
        value = metrics[key]
        if key == "ratio":  # a non-finite ratio is stored as null
            out += [("ratio", "inf" if value is None else fmt(value, 4)), ("K", fmt(k))]
        elif value not in (None, ""):
            out.append((key, fmt(value, 4)))
    return out


def _card(key: str, b: dict, f: dict, k: float, seeds: dict, anchor: str, full: bool) -> dict:
    return {
        "anchor": anchor, "backend": key, "verdict": f["verdict"], "rules": sorted(f["rules"], key=rule_sort_key),
        "implicated": sorted(f.get("implicated") or [], key=rule_sort_key),
        "property": f["property"], "variant": f.get("variant") or "default", "message": _clip(f["message"]),
        "config": config_brief(f.get("config")), "dtype": f.get("dtype"), "test": f.get("test"),
        "kernel_path": f.get("kernel_path"), "numbers": _numbers(f.get("metrics") or {}, k),
        "run": b["run"], "hypothesis_seed": seeds.get(b["run"]), "tox_env": f.get("tox_env"),
        "command": f.get("command"), "script": f.get("script"), "blob": f.get("blob"),
        "artifacts": f.get("artifacts") or [],
        "repro_missing": f.get("repro") if f.get("repro") and not f.get("blob") else None,
        # the whole case only where it is worth the bytes: the few real failures
        "case": json.dumps(f["config"], indent=2, sort_keys=True, default=str) if full and f.get("config") else None,
        "finding": None, "diagnosis": diagnosis_line(f.get("metrics")),
    }


def _grouped(kind: str, key: str, b: dict, cases: list[dict], k: float, seeds: dict) -> list[dict]:
    by_prop: dict[str, list[dict]] = {}
    for f in cases:
        by_prop.setdefault(f["property"], []).append(f)
    groups = []
    for prop, fs in sorted(by_prop.items()):
        fs.sort(key=lambda f: list(Verdict).index(Verdict(f["verdict"])))
        shown = fs[: _EXAMPLES[kind]]
        cards = [_card(key, b, f, k, seeds, _anchor(kind, key, prop, i), full=kind == "failing")
                 for i, f in enumerate(shown)]
        groups.append({"kind": kind, "backend": key, "property": prop, "cards": cards, "total": len(fs),
                       "more": len(fs) - len(shown)})
    return groups


def _finding_cards(key: str, b: dict, k: float, seeds: dict) -> dict:
    cards = []
    for n, finding in enumerate(b.get("findings", [])[:_FINDINGS]):
        example = b["failures"][finding["example"]]
        card = _card(key, b, example, k, seeds, _anchor("finding", key, n), full=False)
        # the card's rules: every rule its checks cite (the filter matches any of them)
        parts = xfail_parts(example["message"])
        card.update(rules=finding["rules"], finding=finding, message=_clip(parts["detail"] if parts else card["message"]),
                    diagnosis=finding_diagnosis(b["failures"], finding) or card["diagnosis"])
        cards.append(card)
    findings = b.get("findings", [])
    return {"kind": "xfail", "backend": key, "property": None, "cards": cards,
            "total": sum(f["count"] for f in findings), "more": len(findings) - len(cards)}


def _first_anchor(groups: list[dict]) -> str | None:
    return groups[0]["cards"][0]["anchor"] if groups else None


def build_attention(summary: dict) -> dict:
    k = summary["error_model"]["K"]
    seeds = {r["run_id"]: r.get("hypothesis_seed") for r in summary["runs"]}
    failing, inconclusive, known, jumps = [], [], [], []
    for key, b in summary["backends"].items():
        f_groups = _grouped("failing", key, b, [f for f in b["failures"] if Verdict(f["verdict"]).failing], k, seeds)
        i_groups = _grouped("inconclusive", key, b, list(b.get("inconclusive", [])), k, seeds)
        k_group = _finding_cards(key, b, k, seeds)
        failing += f_groups
        inconclusive += i_groups
        if k_group["cards"]:
            known.append(k_group)
        jumps.append({"backend": key, "status": b["status"],
                      "failing": sum(g["total"] for g in f_groups), "failing_at": _first_anchor(f_groups),
                      "inconclusive": sum(g["total"] for g in i_groups), "inconclusive_at": _first_anchor(i_groups),
                      "xfail": k_group["total"], "findings": len(b.get("findings", [])),
                      "xfail_at": _first_anchor([k_group] if k_group["cards"] else []),
                      "pass": b["counts"].get(Verdict.PASS.value, 0), "skip": b["counts"].get(Verdict.SKIP.value, 0)})
    cards = [c for g in failing + inconclusive + known for c in g["cards"]]
    return {
        "failing": failing, "inconclusive": inconclusive, "known": known, "jumps": jumps,
        "n_failing": sum(g["total"] for g in failing), "n_inconclusive": sum(g["total"] for g in inconclusive),
        "n_xfail": sum(g["total"] for g in known), "n_cards": len(cards),
        "filters": {"backends": [j["backend"] for j in jumps if j["failing"] or j["inconclusive"] or j["xfail"]],
                    "verdicts": [v.value for v in Verdict if any(c["verdict"] == v.value for c in cards)],
                    "rules": sorted({r for c in cards for r in c["rules"]}, key=rule_sort_key)},
    }
