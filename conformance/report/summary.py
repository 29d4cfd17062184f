"""Build ``summary.json`` (schema: ``conformance/report/schema.json``) from one or more run directories.

A run directory holds ``results.jsonl`` (one line per check, conformance/recording.py) and ``run.json``
(the run's configuration and status). Runs are read defensively: a run killed mid-way (``run.json``
status still ``running``), interrupted, or with a truncated ``results.jsonl`` is kept with what finished
and marked as such, never dropped.
"""

from __future__ import annotations

import math
import re
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from reference import CONVENTIONS, Config, model_param_counts, param_count, parse_model
from reference.params import UnsupportedConvention

from .. import __version__, errors
from ..recording import VERDICTS, read_results
from ..rules import cited_rule_ids, spec_rules

__all__ = ["RunData", "load_run", "build_summary", "SCHEMA_VERSION", "FAILING", "HIST_EDGES"]

SCHEMA_VERSION = 1
FAILING = ("fail", "crash")
#: log10(ratio) histogram bin edges: half decades from 1e-6 to 1e9 (K=64 sits near 1.8)
HIST_EDGES = [x / 2 for x in range(-12, 19)]
_WORST = 8  # worst cases kept per backend
_PARAM_ROWS = 60  # distinct checked parameter-count configurations kept per backend

#: The seeds' worked examples (FACTS.md "Parameter counts"), recomputed with reference.params.
SEED_LAYER = {"input_dim": 80, "units": 12}
SEED_MODEL = {"spec": "lstm:64,lstm:128,lstm:64,dense:64,dense:32,dense:5", "input_shape": [5, 126]}


@dataclass
class RunData:
    run_dir: Path
    info: dict
    records: list[dict]
    lost_lines: int
    status: str  # finished | interrupted | killed | unknown
    problems: list[str] = field(default_factory=list)

    @property
    def run_id(self) -> str:
        return str(self.info.get("run_id") or self.run_dir.name)


def load_run(run_dir: Path) -> RunData:
    """Read one run directory; raise ValueError when it holds neither results.jsonl nor run.json."""
    import json

    run_dir = Path(run_dir)
    results, info_path = run_dir / "results.jsonl", run_dir / "run.json"
    if not results.exists() and not info_path.exists():
        raise ValueError(f"{run_dir}: not a run directory (no results.jsonl or run.json)")
    problems: list[str] = []
    info: dict = {}
    if info_path.exists():
        try:
            info = json.loads(info_path.read_text(encoding="utf-8"))
            if not isinstance(info, dict):
                raise ValueError("not a JSON object")
        except (ValueError, UnicodeDecodeError) as exc:
            problems.append(f"run.json unreadable ({exc}); configuration unknown")
            info = {}
    else:
        problems.append("no run.json: the run's configuration is unknown")
    records, lost = read_results(results) if results.exists() else ([], 0)
    if not results.exists():
        problems.append("no results.jsonl: no check finished")
    if lost:
        problems.append(f"results.jsonl: {lost} line(s) truncated or corrupt and lost; {len(records)} complete kept")
    raw = info.get("status")
    # run.json says 'running' until the session ends; still 'running' afterwards means the process died
    status = {"finished": "finished", "interrupted": "interrupted", "running": "killed"}.get(raw, "unknown")
    if status == "killed":
        problems.insert(0, "run.json still says 'running': the process was killed (or is still running); "
                        f"{len(records)} check(s) had finished")
    elif status == "interrupted":
        problems.insert(0, f"the run was interrupted; {len(records)} check(s) had finished")
    return RunData(run_dir, info, records, lost, status, problems)


# ---- statistics ------------------------------------------------------------------------------------
def _pct(values: list[float], q: float) -> float | None:
    return float(np.percentile(values, q)) if values else None


def _ratio_stats(ratios: list[float], nonfinite: int) -> dict:
    finite = [r for r in ratios if r is not None and math.isfinite(r)]
    return {"count": len(finite) + nonfinite, "nonfinite": nonfinite, "min": min(finite) if finite else None,
            "p50": _pct(finite, 50), "p90": _pct(finite, 90), "p99": _pct(finite, 99),
            "max": max(finite) if finite else None}


def _histogram(ratios: list[float], nonfinite: int, k: float) -> dict:
    """log10(ratio) counts per half decade, plus how many of each bin lie above K (those checks failed)."""
    counts = [0] * (len(HIST_EDGES) - 1)
    over = [0] * len(counts)
    zero = below = above = 0
    for r in ratios:
        if r <= 0:
            zero += 1
            continue
        lg = math.log10(r)
        if lg < HIST_EDGES[0]:
            below += 1
        elif lg >= HIST_EDGES[-1]:
            above += 1
        else:
            i = min(int((lg - HIST_EDGES[0]) * 2), len(counts) - 1)
            counts[i] += 1
            over[i] += r > k
    return {"edges": HIST_EDGES, "counts": counts, "over_k": over, "k": k, "zero": zero, "below": below,
            "above": above, "nonfinite": nonfinite}


def _counts() -> dict[str, int]:
    return {v: 0 for v in VERDICTS}


def _case_config(rec: dict) -> dict | None:
    cfg = rec.get("config")
    if isinstance(cfg, dict) and isinstance(cfg.get("config"), dict):
        return cfg["config"]  # Case.describe(): {"config": Config.to_dict(), "batch": ..}
    return cfg if isinstance(cfg, dict) else None


def _ratio_of(rec: dict) -> tuple[float | None, bool]:
    """(ratio, nonfinite): a non-finite ratio is stored as null next to a non-finite note (recording.to_jsonable)."""
    m = rec.get("metrics") or {}
    if "ratio" not in m:
        return None, False
    r = m.get("ratio")
    if r is None:
        return None, True
    return float(r), False


def _param_row(rec: dict) -> dict | None:
    m = rec.get("metrics") or {}
    cfg = _case_config(rec)
    if rec.get("property") != "params" or "param_count" not in m or cfg is None:
        return None
    counts = {}
    try:
        config = Config.from_dict(cfg)
        for conv in CONVENTIONS:
            try:
                counts[conv] = param_count(config, conv)
            except UnsupportedConvention:
                counts[conv] = None
    except (ValueError, TypeError):
        counts = {conv: None for conv in CONVENTIONS}
    keys = ("input_dim", "units", "num_layers", "bidirectional", "proj_size", "use_bias", "bias_mode", "peepholes")
    return {"config": {k: cfg.get(k) for k in keys}, "convention": m.get("convention"),
            "framework_count": m.get("param_count"), "reference_count": m.get("param_expected"),
            "by_convention": counts, "verdict": rec.get("verdict"), "variant": rec.get("variant")}


def _seed_examples() -> dict:
    layer = Config(**SEED_LAYER)
    layer_counts = {conv: param_count(layer, conv) for conv in CONVENTIONS}
    layers = parse_model(SEED_MODEL["spec"])
    d = SEED_MODEL["input_shape"][1]
    per_conv = {conv: model_param_counts(layers, d, conv) for conv in ("keras", "torch")}
    rows = [{"layer": name, "features": feat, "keras": k, "torch": t}
            for (name, feat, k), (_, _, t) in zip(per_conv["keras"], per_conv["torch"])]
    return {"layer": {"config": dict(SEED_LAYER), "counts": layer_counts},
            "model": {**SEED_MODEL, "layers": rows, "totals": {c: sum(r[c] for r in rows) for c in ("keras", "torch")}}}


def _hypothesis_seed(argv: list) -> str | None:
    for i, a in enumerate(argv or []):
        a = str(a)
        if a.startswith("--hypothesis-seed="):
            return a.split("=", 1)[1]
        if a == "--hypothesis-seed" and i + 1 < len(argv):
            return str(argv[i + 1])
    return None


def _run_entry(run: RunData) -> dict:
    info = run.info
    seed = info.get("seed")
    return {
        "run_id": run.run_id, "dir": str(run.run_dir), "status": run.status, "problems": run.problems,
        "records": len(run.records), "lost_lines": run.lost_lines,
        "profile": info.get("profile"), "seed": None if seed is None else str(seed),
        "hypothesis_seed": _hypothesis_seed(info.get("argv") or []),
        "max_examples": info.get("max_examples"), "derandomize": info.get("derandomize"),
        "suite_version": info.get("suite_version"), "K": info.get("K"), "floor_ulps": info.get("floor_ulps"),
        "device": info.get("device"), "started": info.get("started"), "finished": info.get("finished"),
        "argv": [str(a) for a in info.get("argv") or []],
        "backends": sorted(set(info.get("backends") or {}) | {str(r.get("adapter")) for r in run.records}),
    }


# ---- per backend -----------------------------------------------------------------------------------
class _BackendAcc:
    def __init__(self, name: str, run: RunData, meta: dict):
        self.name, self.run, self.meta = name, run, meta
        self.counts = _counts()
        self.rules: dict[str, dict[str, int]] = {}
        self.properties: dict[str, dict[str, int]] = {}
        self.variants: dict[str, dict[str, int]] = {}
        self.kernel_paths: Counter = Counter()
        self.precisions: Counter = Counter()
        self.devices: Counter = Counter()
        self.ratios: list[float] = []
        self.nonfinite = 0
        self.out_of_range = 0
        self.prop_ratios: dict[str, tuple[list[float], list[int]]] = {}
        self.worst: list[dict] = []
        self.failures: list[dict] = []
        self.params: dict[str, dict] = {}
        self.skips: Counter = Counter()
        self.versions: dict = dict(meta.get("versions") or {})
        self.framework = meta.get("framework")

    def add(self, rec: dict) -> None:
        v = rec.get("verdict") if rec.get("verdict") in VERDICTS else "crash"
        prop = str(rec.get("property") or "unknown")
        self.counts[v] += 1
        for rid in rec.get("rules") or []:
            self.rules.setdefault(str(rid), _counts())[v] += 1
        self.properties.setdefault(prop, _counts())[v] += 1
        self.variants.setdefault(str(rec.get("variant") or "default"), _counts())[v] += 1
        if rec.get("kernel_path"):
            self.kernel_paths[str(rec["kernel_path"])] += 1
        if rec.get("precision"):
            self.precisions[str(rec["precision"])] += 1
        if rec.get("device"):
            self.devices[str(rec["device"])] += 1
        if not self.versions and isinstance(rec.get("versions"), dict):
            self.versions = rec["versions"]
        self.framework = self.framework or rec.get("framework")
        if v == "skip":
            self.skips[str(rec.get("message") or "no reason given")] += 1
        ratio, nonfinite = _ratio_of(rec)
        m = rec.get("metrics") or {}
        if m.get("out_of_range"):
            self.out_of_range += 1
        if ratio is not None or nonfinite:
            pr = self.prop_ratios.setdefault(prop, ([], [0]))
            if nonfinite:
                self.nonfinite += 1
                pr[1][0] += 1
            else:
                self.ratios.append(ratio)
                pr[0].append(ratio)
            self.worst.append(self._case(rec, ratio=math.inf if nonfinite else ratio))
        if v in FAILING or v == "xfail":
            self.failures.append(self._case(rec, full=True))
        row = _param_row(rec)
        if row is not None:
            key = repr(sorted(row["config"].items())) + str(row["convention"]) + str(row["framework_count"])
            old = self.params.get(key)
            if old is None or (old["verdict"] == "pass" and row["verdict"] != "pass"):
                self.params[key] = row

    @staticmethod
    def _case(rec: dict, ratio: float | None = None, full: bool = False) -> dict:
        m = rec.get("metrics") or {}
        out = {"property": rec.get("property"), "rules": list(rec.get("rules") or []), "verdict": rec.get("verdict"),
               "variant": rec.get("variant"), "dtype": rec.get("dtype"), "test": rec.get("test"),
               "config": rec.get("config"), "message": str(rec.get("message") or "")}
        if ratio is not None:
            out["ratio"] = None if not math.isfinite(ratio) else ratio
            out["err_impl"], out["err_oracle"] = m.get("err_impl"), m.get("err_oracle")
        if full:
            out.update(metrics=m, repro=rec.get("repro"), blob=None, script=None, seed=rec.get("seed"),
                       kernel_path=rec.get("kernel_path"), precision=rec.get("precision"),
                       duration=rec.get("duration"))
        return out

    def finish(self) -> dict:
        unavailable = self.meta.get("unavailable")
        executed = sum(n for v, n in self.counts.items() if v != "skip")
        status = "unavailable" if unavailable and executed == 0 else self.run.status
        worst = sorted(self.worst, key=lambda c: -(math.inf if c.get("ratio") is None else c["ratio"]))[:_WORST]
        params = sorted(self.params.values(), key=lambda r: (r["verdict"] == "pass", r["config"]["units"] or 0))
        return {
            "adapter": self.name, "run": self.run.run_id, "framework": self.framework, "versions": self.versions,
            "device": (self.devices.most_common(1)[0][0] if self.devices else self.run.info.get("device")),
            "devices_available": self.meta.get("devices"), "variants": self.variants,
            "kernel_paths": dict(self.kernel_paths), "precisions": dict(self.precisions),
            "status": status, "unavailable": unavailable, "problems": list(self.run.problems),
            "counts": self.counts, "executed": executed, "rules": self.rules, "properties": self.properties,
            "ratios": {**_ratio_stats(self.ratios, self.nonfinite), "out_of_range": self.out_of_range,
                       "histogram": _histogram(self.ratios, self.nonfinite, float(self.run.info.get("K") or errors.K))},
            "ratios_by_property": {p: _ratio_stats(r, n[0]) for p, (r, n) in sorted(self.prop_ratios.items())},
            "worst": worst, "failures": self.failures, "params": params[:_PARAM_ROWS],
            "params_total": len(params),
            "skips": [{"reason": r, "count": n} for r, n in self.skips.most_common()],
        }


def _unique_key(name: str, run: RunData, taken: dict) -> str:
    if name not in taken:
        return name
    key = f"{name}@{run.run_id}"
    n = 2
    while key in taken:
        key, n = f"{name}@{run.run_id}-{n}", n + 1
    return key


def build_summary(runs: list[RunData], *, generated: float | None = None) -> dict:
    """The summary dict (see schema.json). Pure: reads nothing but ``runs`` and spec/."""
    backends: dict[str, dict] = {}
    for run in runs:
        metas = dict(run.info.get("backends") or {})
        accs: dict[str, _BackendAcc] = {}
        for name, meta in metas.items():
            accs[name] = _BackendAcc(name, run, meta if isinstance(meta, dict) else {})
        for rec in run.records:
            name = str(rec.get("adapter") or "unknown")
            if name not in accs:
                accs[name] = _BackendAcc(name, run, {})
            accs[name].add(rec)
        for name, acc in accs.items():
            backends[_unique_key(name, run, backends)] = acc.finish()

    known = spec_rules()
    props = [p for p in (Path(__file__).resolve().parents[1]).glob("test_*.py")]
    cited = cited_rule_ids(props) if props else {}
    seen: set[str] = {r for b in backends.values() for r in b["rules"]}
    rules = {rid: {"title": meta["title"], "page": meta["page"], "in_spec": True,
                   # records also cite rules from their case (the ACT-* of its activations), not only @rules
                   "cited": rid in cited or rid in seen, "exercised": rid in seen} for rid, meta in known.items()}
    for rid in sorted(seen - set(known), key=_rule_sort_key):
        rules[rid] = {"title": "(not defined in spec/)", "page": None, "in_spec": False, "cited": rid in cited,
                      "exercised": True}

    totals = _counts()
    for b in backends.values():
        for v, n in b["counts"].items():
            totals[v] += n
    ks = {r.info.get("K") for r in runs if r.info.get("K") is not None}
    floors = {r.info.get("floor_ulps") for r in runs if r.info.get("floor_ulps") is not None}
    return {
        "schema_version": SCHEMA_VERSION,
        "generated": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(generated or time.time())),
        "report_suite_version": __version__,
        "error_model": {"K": next(iter(ks)) if len(ks) == 1 else errors.K,
                        "floor_ulps": next(iter(floors)) if len(floors) == 1 else errors.FLOOR_ULPS,
                        "consistent": len(ks) <= 1 and len(floors) <= 1},
        "runs": [_run_entry(r) for r in runs],
        "totals": totals,
        "backends": backends,
        "rules": rules,
        "param_examples": _seed_examples(),
    }


def _rule_sort_key(rid: str):
    fam, _, num = rid.partition("-")
    return (fam, int(num) if num.isdigit() else 0)


_SAFE = re.compile(r"[^A-Za-z0-9_.-]+")


def safe_name(text: str) -> str:
    """A file-name-safe form of ``text`` (run ids and adapter names come from the command line)."""
    return _SAFE.sub("_", text).strip("._") or "x"


def attach_repro_paths(summary: dict, mapping: dict[tuple[str, str], dict[str, Any]]) -> None:
    """Add report-relative blob/script paths to failures: mapping[(run_id, blob_rel)] -> {blob, script}."""
    for b in summary["backends"].values():
        for f in b["failures"]:
            hit = mapping.get((b["run"], f.get("repro") or ""))
            if hit:
                f.update(hit)
