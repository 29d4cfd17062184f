"""What index.html shows, computed from the summary and the records as plain numbers and strings: the
verdict bars and histogram geometry (drawn as SVG by the template), the rule x backend matrix grouped by
spec page, and per (backend, rule) a sample of its cases (the failures, inconclusive cases and findings
section: :mod:`.attention`). No markup is built here."""

from __future__ import annotations

import math

from ..harness.results import Result, Verdict
from ..harness.rules import rule_sort_key
from .findings import xfail_parts
from .runs import RunData
from .summary import tensor_order

__all__ = ["build_view", "case_anchor", "config_brief", "fmt"]

_CASES_NONPASS = 3  # failing/inconclusive/xfail cases (one row per case, its variants named) per matrix cell
_CASES_PASS = 1  # passing/skipped cases (one row per case) per matrix cell; all are in results.jsonl
_PARAMS = 15  # checked parameter-count configurations shown per backend (summary.json keeps more)
_ALERT_LINES = 3  # problems of a run shown in its alert; the rest are folded
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


#: the histogram's verdict classes, bottom to top of a bar, with their legend
_HIST_LEGEND = {"pass": "pass (ratio ≤ K)", "inconclusive": "inconclusive", "xfail": "xfail (known finding)",
                "fail": "fail / crash"}


def _histogram_svg(hist: dict, k: float, width: int = 560, height: int = 150) -> dict:
    """Bar geometry for a log10(ratio) histogram: [0 | <1e-6 | half decades ... | >1e9 | non-finite], each
    bar stacked by verdict class so a known finding is never drawn as a failure."""
    edges = hist["edges"]
    labels = ["0", f"<1e{int(edges[0])}"] + [None] * (len(edges) - 1) + [f">1e{int(edges[-1])}", "not finite"]
    by_class = {c: [hist["zero"][c], hist["below"][c], *hist["counts"][c], hist["above"][c], hist["nonfinite"][c]]
                for c in _HIST_LEGEND}
    left, right, top, bottom = 34, 8, 10, 26
    n = len(labels)
    bw = (width - left - right) / n
    totals = [sum(by_class[c][i] for c in by_class) for i in range(n)]
    peak = max(totals) or 1
    scale = (height - top - bottom) / peak
    bars = []
    for i, total in enumerate(totals):
        if not total:
            continue
        special = i < 2 or i >= n - 2
        where = labels[i] if special else f"1e{edges[i - 2]:g} ≤ ratio < 1e{edges[i - 2] + 0.5:g}"
        parts = ", ".join(f"{by_class[c][i]} {c}" for c in _HIST_LEGEND if by_class[c][i])
        y, segs = height - bottom, []
        for c in _HIST_LEGEND:
            h = by_class[c][i] * scale
            if h > 0:
                y -= h
                segs.append({"cls": c, "y": round(y, 2), "h": round(h, 2)})
        bars.append({"x": round(left + i * bw + 1, 2), "w": round(bw - 2, 2), "segs": segs,
                     "title": f"{where}: {total} ({parts})"})

    def xpos(lg: float) -> float:
        return round(left + (2 + (lg - edges[0]) * 2) * bw, 2)

    # decade ticks every 3 decades, inside the regular range (its two ends sit beside the special bins' labels)
    ticks = [{"x": xpos(e), "label": ("1" if e == 0 else f"1e{int(e)}")} for e in edges[1:-1]
             if float(e).is_integer() and int(e) % 3 == 0]
    legend = [{"cls": c, "label": label, "n": sum(by_class[c])} for c, label in _HIST_LEGEND.items()
              if sum(by_class[c])]
    return {"width": width, "height": height, "bars": bars, "ticks": ticks, "base": height - bottom,
            "left": left, "right": width - right, "top": top, "peak": peak, "legend": legend,
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
    """Failing first, then inconclusive cases and known failures, then passes and skips."""
    return (not v.failing, v in (Verdict.PASS, Verdict.SKIP), v is Verdict.XFAIL, _ORDER.index(v))


def _numbers(m: dict) -> str:
    if "ratio" in m:
        return "ratio " + ("inf" if m["ratio"] is None else fmt(m["ratio"]))
    if "param_count" in m:
        return f"{m['param_count']} vs {m.get('param_expected')} ({m.get('convention')})"
    return ""


def _row_message(rec: Result) -> str:
    """A case's message in a matrix cell's list; an xfail names its finding (its card has the reason)."""
    parts = xfail_parts(rec.message) if rec.verdict is Verdict.XFAIL else None
    if parts:
        return f"known finding {parts['rule']} ({parts['source']})"
    return _clip(rec.message, 160)


def _same_case_rows(recs: list[Result]) -> list[dict]:
    """One row per case and outcome, in first-seen order: the variants of a backend draw the same cases (a
    derandomized profile), so a case that ran on four variants with one verdict and message is one row naming
    the four, its numbers from the first (the largest ratio if they differ)."""
    rows: dict[tuple, dict] = {}
    for r in recs:
        brief, message = config_brief(r.config), _row_message(r)
        key = (r.verdict, r.property, brief, message)
        row = rows.get(key)
        if row is None:  # the first record of this case and outcome gives the row its numbers
            row = rows[key] = {"verdict": r.verdict.value, "property": r.property, "variants": [], "config": brief,
                               "ratios": [], "number": _numbers(r.metrics), "message": message, "records": 0}
        row["records"] += 1
        if r.variant and r.variant != "default" and r.variant not in row["variants"]:
            row["variants"].append(r.variant)
        if isinstance(r.metrics.get("ratio"), (int, float)):
            row["ratios"].append(r.metrics["ratio"])
    for row in rows.values():
        ratios = row.pop("ratios")
        if len(set(ratios)) > 1:
            row["number"] = f"ratio {fmt(min(ratios))} to {fmt(max(ratios))}"
        row["variant"] = ", ".join(row.pop("variants"))
    return list(rows.values())


def _cases_by_rule(records: list[Result]) -> dict[str, dict]:
    """rule (natural order) -> {"rows": [...], "hidden": n, "total": n}: a few of the cases needing attention
    (failing first), then a sample of passes and skips; a case seen on several variants is one row."""
    grouped: dict[str, list[Result]] = {}
    for rec in records:
        for rid in rec.rules:
            grouped.setdefault(rid, []).append(rec)
    out = {}
    for rid in sorted(grouped, key=rule_sort_key):
        recs = grouped[rid]
        # within one verdict the cases that implicate this rule first (the others name it as exercised only)
        notable = _same_case_rows(sorted((r for r in recs if r.verdict not in (Verdict.PASS, Verdict.SKIP)),
                                         key=lambda r: (_attention(r.verdict), rid not in r.implicated)))
        notable = notable[:_CASES_NONPASS]
        routine = _same_case_rows([r for r in recs if r.verdict in (Verdict.PASS, Verdict.SKIP)])[:_CASES_PASS]
        shown = sum(row["records"] for row in notable + routine)
        out[rid] = {"rows": notable + routine, "hidden": len(recs) - shown, "total": len(recs)}
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
        failing = sum(b["counts"].get(v.value, 0) for v in Verdict if v.failing)
        compared = b["ratios"]["count"] + b["ratios"]["xfail"]["count"] + b["ratios"]["inconclusive"]["count"]
        views.append({
            "key": key, "b": b, "cases": cases, "bar": _verdict_bar(b["counts"]), "params": b["params"][:_PARAMS],
            "hist": _histogram_svg(b["ratios"]["histogram"], k) if compared else None,
            "grads": [{"kind": kind, "st": st, "hist": _histogram_svg(st["histogram"], k, width=300, height=96)}
                      for kind, st in sorted((b.get("gradients") or {}).items(), key=lambda kv: tensor_order(kv[0]))],
            "state": "bad" if failing or b["status"] not in ("finished", "unavailable") else
                     ("na" if b["status"] == "unavailable" else "good"),
        })
    return views


def _alerts(summary: dict) -> list[dict]:
    """A run's problems: the first few in its alert, the rest folded below them."""
    return [{"run": run["run_id"], "status": run["status"], "texts": run["problems"][:_ALERT_LINES],
             "more": run["problems"][_ALERT_LINES:]} for run in summary["runs"] if run["problems"]]


def build_view(summary: dict, runs: list[RunData]) -> dict:
    backends = _backend_views(summary, runs)
    pages: dict[str, list] = {}
    for rid, meta in summary["rules"].items():  # natural rule order (summary.py)
        cells = [_cell(be["b"]["rules"].get(rid), case_anchor(be["key"], rid)) for be in backends]
        pages.setdefault(meta["page"] or "(not in spec/)", []).append({"id": rid, **meta, "cells": cells})
    # spec pages by name, rules that spec/ lacks last
    pages = dict(sorted(pages.items(), key=lambda kv: (kv[0].startswith("("), kv[0])))
    uncovered = [rid for rid, m in summary["rules"].items() if not m["exercised"]]
    return {"backends": backends, "pages": pages, "alerts": _alerts(summary), "uncovered": uncovered}
