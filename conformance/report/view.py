"""What index.html shows, computed from the summary and the records as plain numbers and strings: the
verdict bars and histogram geometry (drawn as SVG by the template), the rule x backend matrix grouped by
spec page, and per (backend, rule) a sample of its cases. No markup is built here."""

from __future__ import annotations

import math

from ..harness.results import Result, Verdict
from .runs import RunData

__all__ = ["build_view", "case_anchor", "config_brief", "fmt"]

_CASES_NONPASS = 60  # failing/xfail/crash/inconclusive cases listed per matrix cell (all are in results.jsonl)
_CASES_PASS = 12  # passing/skipped cases listed per matrix cell
_ORDER = list(Verdict)


def case_anchor(backend: str, rule: str) -> str:
    return "cases-" + "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in f"{backend}--{rule}")


def _config_parts(cfg: dict) -> list[str]:
    parts = [f"d={cfg.get('input_dim')}", f"u={cfg.get('units')}"]
    flags = {"go_backwards": "go_backwards", "peepholes": "peepholes", "input_forget": "input_forget"}
    if (cfg.get("num_layers") or 1) > 1:
        parts.append(f"layers={cfg['num_layers']}")
    if cfg.get("bidirectional"):
        parts.append(f"bidi/{cfg.get('merge_mode') or 'concat'}")
    parts += [label for key, label in flags.items() if cfg.get(key)]
    if cfg.get("proj_size"):
        parts.append(f"proj={cfg['proj_size']}")
    if cfg.get("cell_clip") is not None:
        parts.append(f"clip={cfg['cell_clip']}")
    if cfg.get("use_bias") is False:
        parts.append("no bias")
    elif cfg.get("bias_mode") == "double":
        parts.append("2 biases")
    if cfg.get("activation") not in (None, "tanh") or cfg.get("recurrent_activation") not in (None, "sigmoid"):
        parts.append(f"act={cfg.get('activation')}/{cfg.get('recurrent_activation')}")
    if cfg.get("dtype"):
        parts.append(str(cfg["dtype"]))
    return parts


def config_brief(desc) -> str:
    """One line for a Case description (or a bare Config dict): the fields a reader scans for."""
    if not isinstance(desc, dict):
        return ""
    cfg = desc.get("config") if isinstance(desc.get("config"), dict) else desc
    parts = _config_parts(cfg)
    if cfg is not desc:
        if "batch" in desc:
            parts.append(f"B={desc['batch']} T={desc.get('timesteps')}")
        if desc.get("mask") not in (None, "none"):
            parts.append(f"mask={desc['mask']}/{desc.get('masked_output')}")
        if desc.get("initial_state"):
            parts.append("h0,c0")
        if "split" in desc:
            parts.append(f"split={desc['split']}")
    return " ".join(parts)


def fmt(v, digits: int = 3) -> str:
    if v is None:
        return "—"
    if isinstance(v, float):
        if not math.isfinite(v):
            return "inf"
        return "0" if v == 0 else f"{v:.{digits}g}"
    return str(v)


def _clip(text: str, n: int) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def cell_class(counts: dict | None) -> str:
    """The verdict a matrix cell is coloured by: the most alarming one present."""
    if not counts or not sum(counts.values()):
        return "none"
    if any(counts.get(v.value) for v in Verdict if v.failing):
        return Verdict.FAIL.value
    for v in (Verdict.XFAIL, Verdict.PASS, Verdict.INCONCLUSIVE):
        if counts.get(v.value):
            return v.value
    return Verdict.SKIP.value


def _cell(counts: dict | None, anchor: str) -> dict:
    """A matrix cell: its colour, its text (the verdict that colours it, out of all) and a tooltip."""
    cls = cell_class(counts)
    if cls == "none":
        return {"cls": cls, "anchor": None, "label": "", "title": ""}
    total = sum(counts.values())
    if cls == Verdict.FAIL.value:
        label = f"{sum(counts.get(v.value, 0) for v in Verdict if v.failing)} fail / {total}"
    elif cls == Verdict.XFAIL.value:
        label = f"{counts[cls]} xfail / {total}"
    else:
        label = " · ".join(f"{counts[v.value]} {v.value}" for v in (Verdict.PASS, Verdict.INCONCLUSIVE, Verdict.SKIP)
                           if counts.get(v.value))
    title = ", ".join(f"{counts[v.value]} {v.value}" for v in Verdict if counts.get(v.value))
    return {"cls": cls, "anchor": anchor, "label": label, "title": title}


def _histogram_svg(hist: dict, k: float, width: int = 560, height: int = 150) -> dict:
    """Bar geometry for a log10(ratio) histogram: [0 | <1e-6 | half decades ... | >1e9 | non-finite]."""
    edges = hist["edges"]
    labels = ["0", f"<1e{int(edges[0])}"] + [None] * len(hist["counts"]) + [f">1e{int(edges[-1])}", "not finite"]
    counts = [hist["zero"], hist["below"], *hist["counts"], hist["above"], hist["nonfinite"]]
    left, right, top, bottom = 34, 8, 10, 26
    n = len(counts)
    bw = (width - left - right) / n
    peak = max(counts) or 1
    over = [0, 0, *hist.get("over_k", [0] * len(hist["counts"])), hist["above"], hist["nonfinite"]]
    bars = []
    for i, c in enumerate(counts):
        h = (height - top - bottom) * c / peak
        hi = (height - top - bottom) * over[i] / peak  # the part above K: checks that failed
        special = i < 2 or i >= n - 2
        lo = edges[i - 2] if not special else None
        title = (f"{labels[i] or ''}: {c}" if special else f"1e{lo:g} ≤ ratio < 1e{lo + 0.5:g}: {c}")
        if over[i]:
            title += f" ({over[i]} above K)"
        bars.append({"x": round(left + i * bw + 1, 2), "y": round(height - bottom - h + hi, 2), "w": round(bw - 2, 2),
                     "h": round(h - hi, 2), "y_over": round(height - bottom - h, 2), "h_over": round(hi, 2),
                     "title": title, "count": c, "cls": "bar-special" if i < 2 else "bar"})

    def xpos(lg: float) -> float:
        return round(left + (2 + (lg - edges[0]) * 2) * bw, 2)

    # decade ticks every 3 decades, inside the regular range (its two ends sit beside the special bins' labels)
    ticks = [{"x": xpos(e), "label": ("1" if e == 0 else f"1e{int(e)}")} for e in edges[1:-1]
             if float(e).is_integer() and int(e) % 3 == 0]
    return {"width": width, "height": height, "bars": bars, "ticks": ticks, "base": height - bottom,
            "left": left, "right": width - right, "top": top, "peak": peak,
            "k_x": xpos(math.log10(k)), "one_x": xpos(0.0), "k": k,
            # the tiny/huge bins keep their tooltips; only 0 and inf are labelled (no room for more)
            "special": [{"x": round(left + i * bw + bw / 2, 2), "label": "inf" if i == n - 1 else labels[i]}
                        for i in (0, n - 1)]}


def _verdict_bar(counts: dict, width: int = 240) -> list[dict]:
    total = sum(counts.values()) or 1
    x, out = 0.0, []
    for v in Verdict:
        w = width * counts.get(v.value, 0) / total
        if w:
            out.append({"verdict": v.value, "x": round(x, 2), "w": round(w, 2), "n": counts[v.value]})
        x += w
    return out


def _attention(v: Verdict) -> tuple:
    """Failing first, then known failures and inconclusive cases, then passes and skips."""
    return (not v.failing, v in (Verdict.PASS, Verdict.SKIP), _ORDER.index(v))


def _numbers(m: dict) -> str:
    if "ratio" in m:
        return "ratio " + ("inf" if m["ratio"] is None else fmt(m["ratio"]))
    if "param_count" in m:
        return f"{m['param_count']} vs {m.get('param_expected')} ({m.get('convention')})"
    return ""


def _cases_by_rule(records: list[Result]) -> dict[str, dict]:
    """rule -> {"rows": [...], "hidden": n, "total": n}: every case needing attention (up to a limit), then a
    sample of passes and skips."""
    grouped: dict[str, list[Result]] = {}
    for rec in records:
        for rid in rec.rules:
            grouped.setdefault(rid, []).append(rec)
    out = {}
    for rid, recs in grouped.items():
        routine = [r for r in recs if r.verdict in (Verdict.PASS, Verdict.SKIP)]
        notable = [r for r in recs if r.verdict not in (Verdict.PASS, Verdict.SKIP)]
        shown = sorted(notable[:_CASES_NONPASS] + routine[:_CASES_PASS], key=lambda r: _attention(r.verdict))
        rows = [{"verdict": r.verdict.value, "property": r.property, "variant": r.variant,
                 "config": config_brief(r.config), "number": _numbers(r.metrics), "message": _clip(r.message, 300)}
                for r in shown]
        out[rid] = {"rows": rows, "hidden": len(recs) - len(shown), "total": len(recs)}
    return out


def _backend_views(summary: dict, runs: list[RunData]) -> list[dict]:
    k = summary["error_model"]["K"]
    records: dict[tuple[str, str], list[Result]] = {}
    for run in runs:
        for rec in run.records:
            records.setdefault((run.run_id, rec.adapter), []).append(rec)
    views = []
    for key, b in summary["backends"].items():
        cases = _cases_by_rule(records.get((b["run"], b["adapter"]), []))
        for rid, cs in cases.items():
            cs["anchor"] = case_anchor(key, rid)
        failures = [f for f in b["failures"] if Verdict(f["verdict"]).failing]
        views.append({
            "key": key, "b": b, "cases": cases, "bar": _verdict_bar(b["counts"]),
            "hist": _histogram_svg(b["ratios"]["histogram"], k) if b["ratios"]["count"] else None,
            "failures": failures, "known": [f for f in b["failures"] if f["verdict"] == Verdict.XFAIL.value],
            "state": "bad" if failures or b["status"] not in ("finished", "unavailable") else
                     ("na" if b["status"] == "unavailable" else "good"),
        })
    return views


def build_view(summary: dict, runs: list[RunData]) -> dict:
    backends = _backend_views(summary, runs)
    pages: dict[str, list] = {}
    for rid, meta in summary["rules"].items():  # natural rule order (summary.py)
        cells = [_cell(be["b"]["rules"].get(rid), case_anchor(be["key"], rid)) for be in backends]
        pages.setdefault(meta["page"] or "(not in spec/)", []).append({"id": rid, **meta, "cells": cells})
    # spec pages by name, rules that spec/ lacks last
    pages = dict(sorted(pages.items(), key=lambda kv: (kv[0].startswith("("), kv[0])))
    alerts = [{"run": run["run_id"], "status": run["status"], "texts": run["problems"]}
              for run in summary["runs"] if run["problems"]]
    uncovered = [rid for rid, m in summary["rules"].items() if not m["exercised"]]
    return {"backends": backends, "pages": pages, "alerts": alerts, "uncovered": uncovered,
            "n_failures": sum(len(be["failures"]) for be in backends)}
