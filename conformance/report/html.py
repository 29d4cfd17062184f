"""Render ``index.html``: one self-contained page (inline CSS and SVG, no external URL) from the summary.

Jinja2 with autoescaping on: every string from a config, a framework's error message or the command line
reaches the page escaped. Plots are computed here as plain numbers (bar positions, tick labels) and drawn
as SVG by the template, so no markup is ever built from strings in Python.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from .summary import FAILING, RunData

__all__ = ["render", "config_brief", "case_anchor"]

_VERDICT_ORDER = ("fail", "crash", "xfail", "pass", "skip")
_CASES_NONPASS = 60  # failing/xfail/crash cases listed per matrix cell (all are in results.jsonl)
_CASES_PASS = 12  # passing/skipped cases listed per matrix cell


def case_anchor(backend: str, rule: str) -> str:
    return "cases-" + "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in f"{backend}--{rule}")


def config_brief(desc) -> str:
    """One line for a Case description (or a bare Config dict): the fields a reader scans for."""
    if not isinstance(desc, dict):
        return ""
    cfg = desc.get("config") if isinstance(desc.get("config"), dict) else desc
    parts = [f"d={cfg.get('input_dim')}", f"u={cfg.get('units')}"]
    if (cfg.get("num_layers") or 1) > 1:
        parts.append(f"layers={cfg['num_layers']}")
    if cfg.get("bidirectional"):
        parts.append(f"bidi/{cfg.get('merge_mode') or 'concat'}")
    if cfg.get("go_backwards"):
        parts.append("go_backwards")
    if cfg.get("proj_size"):
        parts.append(f"proj={cfg['proj_size']}")
    if cfg.get("peepholes"):
        parts.append("peepholes")
    if cfg.get("cell_clip") is not None:
        parts.append(f"clip={cfg['cell_clip']}")
    if cfg.get("input_forget"):
        parts.append("input_forget")
    if cfg.get("use_bias") is False:
        parts.append("no bias")
    elif cfg.get("bias_mode") == "double":
        parts.append("2 biases")
    if cfg.get("activation") not in (None, "tanh") or cfg.get("recurrent_activation") not in (None, "sigmoid"):
        parts.append(f"act={cfg.get('activation')}/{cfg.get('recurrent_activation')}")
    if cfg.get("dtype"):
        parts.append(str(cfg["dtype"]))
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


def _fmt(v, digits: int = 3) -> str:
    if v is None:
        return "—"
    if isinstance(v, float):
        if not math.isfinite(v):
            return "inf"
        if v == 0:
            return "0"
        return f"{v:.{digits}g}"
    return str(v)


def _clip(text: str, n: int) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def _cell_class(counts: dict | None) -> str:
    if not counts or not sum(counts.values()):
        return "none"
    if counts.get("fail") or counts.get("crash"):
        return "fail"
    if counts.get("xfail"):
        return "xfail"
    if counts.get("pass"):
        return "pass"
    return "skip"


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
        bars.append({"x": round(left + i * bw + 1, 2), "y": round(height - bottom - h, 2), "w": round(bw - 2, 2),
                     "h": round(h - hi, 2), "y_over": round(height - bottom - h, 2), "h_over": round(hi, 2),
                     "title": title, "count": c, "cls": "bar-special" if i < 2 else "bar"})
        if hi:
            bars[-1]["y"] = round(height - bottom - h + hi, 2)

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
    for v in ("pass", "xfail", "fail", "crash", "skip"):
        w = width * counts.get(v, 0) / total
        if w:
            out.append({"verdict": v, "x": round(x, 2), "w": round(w, 2), "n": counts[v]})
        x += w
    return out


def _cases_by_rule(records: list[dict]) -> dict[str, dict]:
    """rule -> {"shown": [rows], "hidden": n}: non-passing first, then a sample of passes."""
    grouped: dict[str, list[dict]] = {}
    for rec in records:
        for rid in rec.get("rules") or []:
            grouped.setdefault(str(rid), []).append(rec)
    out = {}
    for rid, recs in grouped.items():
        bad = [r for r in recs if r.get("verdict") not in ("pass", "skip")]
        good = [r for r in recs if r.get("verdict") in ("pass", "skip")]
        shown = bad[:_CASES_NONPASS] + good[:_CASES_PASS]
        rows = []
        for r in sorted(shown, key=lambda r: _VERDICT_ORDER.index(r.get("verdict")) if r.get("verdict")
                        in _VERDICT_ORDER else 0):
            m = r.get("metrics") or {}
            if "ratio" in m:
                num = "ratio " + ("inf" if m.get("ratio") is None else _fmt(m.get("ratio")))
            elif "param_count" in m:
                num = f"{m.get('param_count')} vs {m.get('param_expected')} ({m.get('convention')})"
            else:
                num = ""
            rows.append({"verdict": r.get("verdict"), "property": r.get("property"), "variant": r.get("variant"),
                         "config": config_brief(r.get("config")), "number": num,
                         "message": _clip(str(r.get("message") or ""), 300)})
        out[rid] = {"rows": rows, "hidden": len(recs) - len(shown), "total": len(recs)}
    return out


def _num(v) -> str:
    return f"{v:,}" if isinstance(v, int) and not isinstance(v, bool) else ("n/a" if v is None else str(v))


def _duration(run: dict) -> str:
    a, b = run.get("started"), run.get("finished")
    if not isinstance(a, (int, float)) or not isinstance(b, (int, float)):
        return ""
    sec = b - a
    return f"{sec:.1f} s" if sec < 120 else f"{sec / 60:.1f} min"


def _iso(ts) -> str:
    import time

    if not isinstance(ts, (int, float)):
        return "—"
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(ts))


def _view(summary: dict, runs: list[RunData]) -> dict:
    k = summary["error_model"]["K"]
    records_by_key: dict[tuple[str, str], list[dict]] = {}
    for run in runs:
        for rec in run.records:
            records_by_key.setdefault((run.run_id, str(rec.get("adapter") or "unknown")), []).append(rec)
    backends = []
    for key, b in summary["backends"].items():
        recs = records_by_key.get((b["run"], b["adapter"]), [])
        failures = [f for f in b["failures"] if f["verdict"] in FAILING]
        known = [f for f in b["failures"] if f["verdict"] == "xfail"]
        cases = _cases_by_rule(recs)
        for rid, cs in cases.items():
            cs["anchor"] = case_anchor(key, rid)
        backends.append({
            "key": key, "b": b, "cases": cases, "bar": _verdict_bar(b["counts"]),
            "hist": _histogram_svg(b["ratios"]["histogram"], k) if b["ratios"]["count"] else None,
            "failures": failures, "known": known,
            "state": "bad" if failures or b["status"] not in ("finished", "unavailable") else
                     ("na" if b["status"] == "unavailable" else "good"),
        })
    pages: dict[str, list] = {}
    for rid, meta in summary["rules"].items():
        cells = []
        for be in backends:
            counts = be["b"]["rules"].get(rid)
            cells.append({"counts": counts, "cls": _cell_class(counts),
                          "anchor": case_anchor(be["key"], rid) if counts else None})
        pages.setdefault(meta["page"] or "(not in spec/)", []).append({"id": rid, **meta, "cells": cells})
    alerts = []
    for run in summary["runs"]:
        if run["problems"]:
            alerts.append({"run": run["run_id"], "status": run["status"], "texts": run["problems"]})
    uncovered = [rid for rid, m in summary["rules"].items() if not m["exercised"]]
    return {"backends": backends, "pages": pages, "alerts": alerts, "uncovered": uncovered,
            "n_failures": sum(len(be["failures"]) for be in backends)}


def render(summary: dict, runs: list[RunData], scripts: dict[str, str] | None = None) -> str:
    """The page as a string. ``scripts`` maps a failure's script path (report-relative) to its text."""
    import jinja2

    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(Path(__file__).with_name("templates"))),
                             autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters["fmt"] = _fmt
    env.filters["brief"] = config_brief
    env.filters["iso"] = _iso
    env.filters["num"] = _num
    env.filters["duration"] = _duration
    env.filters["pretty"] = lambda v: json.dumps(v, indent=2, sort_keys=True, default=str)
    env.globals["verdicts"] = ("pass", "fail", "crash", "xfail", "skip")
    return env.get_template("index.html.j2").render(s=summary, v=_view(summary, runs), scripts=scripts or {})
