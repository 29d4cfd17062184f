"""Build ``summary.json`` (schema: ``conformance/report/schema.json``) from run directories read by
:mod:`.runs`: per backend the verdict counts per rule, property and variant, the error-ratio statistics, the
worst cases, the failures (xfails also folded per finding: :mod:`.findings`), the inconclusive cases and the
checked parameter counts; per rule of spec/ whether a property cites it
(run.json's ``properties``) and whether a check exercised it.
"""

from __future__ import annotations

import math
import time
from collections import Counter

import numpy as np

from reference import CONVENTIONS, Config, model_param_counts, param_count, parse_model
from reference.params import UnsupportedConvention

from .. import __version__
from ..harness import errors
from ..harness.results import VERDICTS, CheckKind, Result, Verdict
from ..harness.rules import rule_sort_key, spec_rules
from .findings import fold_findings
from .runs import RunData, property_rules

__all__ = ["HIST_EDGES", "RATIO_CLASSES", "SCHEMA_VERSION", "build_summary", "tensor_order"]

#: version of summary.json's layout (2: counts include 'inconclusive'; rules name the properties citing them;
#: 3: ratio statistics over passes and failures, xfail and inconclusive ratios apart, the histogram per verdict;
#: xfails folded into findings; inconclusive cases listed)
SCHEMA_VERSION = 3
#: log10(ratio) histogram bin edges: half decades from 1e-6 to 1e9 (K=64 sits near 1.8)
HIST_EDGES = [x / 2 for x in range(-12, 19)]
_WORST = 8  # worst cases kept per backend
_PARAM_ROWS = 60  # distinct checked parameter-count configurations kept per backend

#: The seeds' worked examples (FACTS.md "Parameter counts"), recomputed with reference.params.
SEED_LAYER = {"input_dim": 80, "units": 12}
SEED_MODEL = {"spec": "lstm:64,lstm:128,lstm:64,dense:64,dense:32,dense:5", "input_shape": [5, 126]}


# ---- statistics ------------------------------------------------------------------------------------
def _pct(values: list[float], q: float) -> float | None:
    return float(np.percentile(values, q)) if values else None


def _ratio_stats(ratios: list[float], nonfinite: int) -> dict:
    finite = [r for r in ratios if r is not None and math.isfinite(r)]
    return {"count": len(finite) + nonfinite, "nonfinite": nonfinite, "min": min(finite) if finite else None,
            "p50": _pct(finite, 50), "p90": _pct(finite, 90), "p99": _pct(finite, 99),
            "max": max(finite) if finite else None}


#: the verdict classes the ratio statistics and the histogram keep apart (a crash with a ratio counts as fail)
RATIO_CLASSES = ("pass", "fail", "xfail", "inconclusive")
#: the classes of a backend's (and a property's) headline statistics: what the verdict was judged on
_JUDGED = ("pass", "fail")


def _ratio_class(verdict: Verdict) -> str | None:
    return "fail" if verdict.failing else (verdict.value if verdict.value in RATIO_CLASSES else None)


class _Ratios:
    """Finite ratios and the count of non-finite ones, per ratio class."""

    def __init__(self):
        self.finite: dict[str, list[float]] = {c: [] for c in RATIO_CLASSES}
        self.nonfinite: dict[str, int] = {c: 0 for c in RATIO_CLASSES}

    def add(self, cls: str, ratio: float | None, nonfinite: bool) -> None:
        if nonfinite:
            self.nonfinite[cls] += 1
        else:
            self.finite[cls].append(ratio)

    def stats(self, *classes: str) -> dict:
        return _ratio_stats([r for c in classes for r in self.finite[c]], sum(self.nonfinite[c] for c in classes))

    def split(self) -> dict:
        """Headline statistics over passes and failures; xfail and inconclusive checks beside them."""
        return {**self.stats(*_JUDGED), "xfail": self.stats("xfail"), "inconclusive": self.stats("inconclusive")}


def _histogram(ratios: _Ratios, k: float) -> dict:
    """log10(ratio) counts per half decade, per ratio class; ratios of 0, below the first edge, above the
    last and non-finite ones counted apart."""
    out: dict = {"edges": HIST_EDGES, "k": k, "counts": {}, "zero": {}, "below": {}, "above": {}, "nonfinite": {}}
    for cls in RATIO_CLASSES:
        counts = [0] * (len(HIST_EDGES) - 1)
        zero = below = above = 0
        for r in ratios.finite[cls]:
            if r <= 0:
                zero += 1
                continue
            lg = math.log10(r)
            if lg < HIST_EDGES[0]:
                below += 1
            elif lg >= HIST_EDGES[-1]:
                above += 1
            else:
                counts[min(int((lg - HIST_EDGES[0]) * 2), len(counts) - 1)] += 1
        out["counts"][cls] = counts
        out["zero"][cls], out["below"][cls], out["above"][cls] = zero, below, above
        out["nonfinite"][cls] = ratios.nonfinite[cls]
    return out


def _counts() -> dict[str, int]:
    return {v: 0 for v in VERDICTS}


_PARAM_CONFIG_KEYS = ("input_dim", "units", "num_layers", "bidirectional", "proj_size", "use_bias", "bias_mode",
                      "peepholes")


def _param_row(rec: Result) -> dict | None:
    m, cfg = rec.metrics, rec.case_config
    if rec.check is not CheckKind.PARAMS or "param_count" not in m or cfg is None:
        return None
    counts: dict[str, int | None] = {conv: None for conv in CONVENTIONS}
    try:
        config = Config.from_dict(cfg)
    except (ValueError, TypeError):
        config = None
    for conv in CONVENTIONS if config is not None else ():
        try:
            counts[conv] = param_count(config, conv)
        except UnsupportedConvention:
            pass
    return {"config": {k: cfg.get(k) for k in _PARAM_CONFIG_KEYS}, "convention": m.get("convention"),
            "framework_count": m.get("param_count"), "reference_count": m.get("param_expected"),
            "by_convention": counts, "verdict": rec.verdict.value, "variant": rec.variant}


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


def _run_entry(run: RunData) -> dict:
    info = run.info
    seed = info.get("seed")
    return {
        "run_id": run.run_id, "dir": str(run.run_dir), "status": run.status, "problems": run.problems,
        "records": len(run.records), "lost_lines": run.lost_lines,
        "profile": info.get("profile"), "seed": None if seed is None else str(seed),
        "hypothesis_seed": run.hypothesis_seed,
        "max_examples": info.get("max_examples"), "derandomize": info.get("derandomize"),
        "suite_version": info.get("suite_version"), "suite_commit": info.get("suite_commit"),
        "K": info.get("K"), "floor_ulps": info.get("floor_ulps"),
        "device": info.get("device"), "started": info.get("started"), "finished": info.get("finished"),
        "argv": [str(a) for a in info.get("argv") or []],
        "backends": sorted(set(info.get("backends") or {}) | {r.adapter for r in run.records}),
        "properties": {p: sorted(rids, key=rule_sort_key) for p, rids in sorted(property_rules(run).items())},
    }


# ---- per backend -----------------------------------------------------------------------------------
def _case(rec: Result, ratio: float | None = None, full: bool = False) -> dict:
    """A record as the summary lists it (worst cases; failures, xfails and inconclusive cases in full)."""
    m = rec.metrics
    out = {"property": rec.property, "check": rec.check.value, "rules": sorted(rec.rules, key=rule_sort_key),
           "implicated": sorted(rec.implicated, key=rule_sort_key),
           "verdict": rec.verdict.value, "variant": rec.variant, "dtype": rec.dtype, "test": rec.test,
           "config": rec.config, "message": rec.message}
    if ratio is not None:
        out["ratio"] = None if not math.isfinite(ratio) else ratio
        out["err_impl"], out["err_oracle"] = m.get("err_impl"), m.get("err_oracle")
    if full:
        out.update(metrics=m, repro=rec.repro, blob=None, script=None, artifacts=[], tox_env=None, command=None,
                   seed=rec.seed, kernel_path=rec.kernel_path, precision=rec.precision, duration=rec.duration)
    return out


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
        self.ratios = _Ratios()
        self.out_of_range = 0
        self.prop_ratios: dict[str, _Ratios] = {}
        self.grad_ratios: dict[str, _Ratios] = {}  # GRAD-1: per gradient tensor kind (x, h0, W, ...)
        self.worst: list[dict] = []
        self.failures: list[dict] = []
        self.inconclusive: list[dict] = []
        self.params: dict[str, dict] = {}
        self.skips: Counter = Counter()
        self.versions: dict = dict(meta.get("versions") or {})
        self.framework = meta.get("framework")

    def add(self, rec: Result) -> None:
        v = rec.verdict.value
        self.counts[v] += 1
        # a fail, xfail or inconclusive record counts under the rules it implicates (which output differed, or
        # the finding's rule), not under every rule its property exercises; older records name none
        for rid in rec.rules:
            self.rules.setdefault(rid, _counts())  # exercised: a row in the matrix even when nothing counts there
        for rid in (rec.implicated if rec.implicated and rec.verdict is not Verdict.PASS else rec.rules):
            self.rules.setdefault(rid, _counts())[v] += 1
        self.properties.setdefault(rec.property, _counts())[v] += 1
        self.variants.setdefault(rec.variant, _counts())[v] += 1
        for counter, value in ((self.kernel_paths, rec.kernel_path), (self.precisions, rec.precision),
                               (self.devices, rec.device)):
            if value:
                counter[value] += 1
        self.versions = self.versions or dict(rec.versions)
        self.framework = self.framework or rec.framework or None
        if rec.verdict is Verdict.SKIP:
            self.skips[rec.message or "no reason given"] += 1
        self.out_of_range += bool(rec.metrics.get("out_of_range"))
        ratio, nonfinite = rec.ratio
        cls = _ratio_class(rec.verdict)
        if cls and (ratio is not None or nonfinite):
            self.ratios.add(cls, ratio, nonfinite)
            self.prop_ratios.setdefault(rec.property, _Ratios()).add(cls, ratio, nonfinite)
            if cls in _JUDGED:  # known findings are listed per finding, not among the worst cases
                self.worst.append(_case(rec, ratio=math.inf if nonfinite else ratio))
        if rec.check is CheckKind.GRADIENT and cls:
            self._add_gradient(rec, cls)
        if rec.verdict.failing or rec.verdict is Verdict.XFAIL:
            self.failures.append(_case(rec, full=True))
        elif rec.verdict is Verdict.INCONCLUSIVE:
            self.inconclusive.append(_case(rec, full=True))
        row = _param_row(rec)
        if row is not None:
            key = repr(sorted(row["config"].items())) + str(row["convention"]) + str(row["framework_count"])
            old = self.params.get(key)
            if old is None or (old["verdict"] == Verdict.PASS.value and row["verdict"] != Verdict.PASS.value):
                self.params[key] = row

    def _add_gradient(self, rec: Result, cls: str) -> None:
        """Each tensor's ratio of a gradient check, under its kind; in a judged record a tensor counts as pass
        or fail by its own ratio (one wrong tensor fails the case, not its other tensors)."""
        k = float(self.run.info.get("K") or errors.K)
        for name, t in (rec.metrics.get("tensors") or {}).items():
            if not isinstance(t, dict):
                continue
            r = t.get("ratio")
            tcls = cls
            if t.get("inconclusive"):
                tcls = "inconclusive"
            elif cls in _JUDGED:
                tcls = "pass" if r is not None and r <= k else "fail"
            self.grad_ratios.setdefault(name.split("[", 1)[0], _Ratios()).add(tcls, r, r is None)

    def finish(self) -> dict:
        unavailable = self.meta.get("unavailable")
        executed = sum(n for v, n in self.counts.items() if Verdict(v).executed)
        status = "unavailable" if unavailable and executed == 0 else self.run.status
        worst = sorted(self.worst, key=lambda c: -(math.inf if c.get("ratio") is None else c["ratio"]))[:_WORST]
        params = sorted(self.params.values(),
                        key=lambda r: (r["verdict"] == Verdict.PASS.value, r["config"]["units"] or 0))
        k = float(self.run.info.get("K") or errors.K)
        return {
            "adapter": self.name, "run": self.run.run_id, "framework": self.framework, "versions": self.versions,
            "device": (self.devices.most_common(1)[0][0] if self.devices else self.run.info.get("device")),
            "devices_available": self.meta.get("devices"), "variants": self.variants,
            "builtin": self.meta.get("builtin", True),  # False: an lstm_conformance.adapters entry point's adapter
            "kernel_paths": dict(self.kernel_paths), "precisions": dict(self.precisions),
            "status": status, "unavailable": unavailable, "problems": list(self.run.problems),
            "counts": self.counts, "executed": executed,
            "rules": dict(sorted(self.rules.items(), key=lambda kv: rule_sort_key(kv[0]))),
            "properties": dict(sorted(self.properties.items())),
            "ratios": {**self.ratios.split(), "out_of_range": self.out_of_range,
                       "histogram": _histogram(self.ratios, k)},
            "ratios_by_property": {p: r.split() for p, r in sorted(self.prop_ratios.items())},
            "gradients": {kind: {**self.grad_ratios[kind].split(), "histogram": _histogram(self.grad_ratios[kind], k)}
                          for kind in sorted(self.grad_ratios, key=tensor_order)},
            "worst": worst, "failures": self.failures, "findings": fold_findings(self.failures),
            "inconclusive": self.inconclusive, "params": params[:_PARAM_ROWS],
            "params_total": len(params),
            "skips": [{"reason": r, "count": n} for r, n in self.skips.most_common()],
        }


#: the report's order of gradient tensor kinds: the call's outputs, the input, the states, the weights
_TENSOR_ORDER = ("forward", "x", "h0", "c0", "W", "U", "b", "b2", "P", "W_hr")


def tensor_order(kind: str) -> tuple[int, str]:
    """Sort key of a gradient tensor kind (the report's order; unknown kinds last, by name)."""
    return (_TENSOR_ORDER.index(kind) if kind in _TENSOR_ORDER else len(_TENSOR_ORDER), kind)


def _version_label(backend: dict) -> str:
    """``keras 3.8.0, jax 0.4.38``: what tells two runs of one backend apart in an upgrade comparison."""
    return ", ".join(f"{k} {v}" for k, v in sorted((backend.get("versions") or {}).items()))


def _backends(runs: list[RunData]) -> dict[str, dict]:
    """One entry per backend and run. A backend that appears in several runs is keyed ``name@versions`` when the
    runs differ in framework versions (one card per release in an upgrade comparison); otherwise the first run
    keeps the name and later ones are ``name@run_id``."""
    finished: list[tuple[str, dict, RunData]] = []
    for run in runs:
        accs = {name: _BackendAcc(name, run, meta if isinstance(meta, dict) else {})
                for name, meta in dict(run.info.get("backends") or {}).items()}
        for rec in run.records:
            if rec.adapter not in accs:
                accs[rec.adapter] = _BackendAcc(rec.adapter, run, {})
            accs[rec.adapter].add(rec)
        finished += [(name, acc.finish(), run) for name, acc in accs.items()]
    backends: dict[str, dict] = {}
    for name, entry, run in finished:
        same = [e for n, e, _ in finished if n == name]
        labels = {_version_label(e) for e in same}
        if len(same) > 1 and len(labels) == len(same):
            key = f"{name}@{_version_label(entry)}"
        else:  # one run, or runs of the same releases (shards, reruns): the first keeps the name
            key = name if name not in backends else f"{name}@{run.run_id}"
        n = 2
        while key in backends:
            key, n = f"{name}@{run.run_id}-{n}", n + 1
        backends[key] = entry
    return backends


def _rules(runs: list[RunData], backends: dict[str, dict]) -> dict[str, dict]:
    """Every rule of spec/ (and any rule a record cites that spec/ lacks), in natural order."""
    known = spec_rules()
    citing: dict[str, set[str]] = {}  # rule -> properties whose @rules name it
    for run in runs:
        for prop, rids in property_rules(run).items():
            for rid in rids:
                citing.setdefault(rid, set()).add(prop)
    # records also cite rules of their case (the ACT-* of its activations), not only @rules
    seen: set[str] = {r for b in backends.values() for r in b["rules"]}
    out = {}
    for rid in sorted(set(known) | seen, key=rule_sort_key):
        meta = known.get(rid, {"title": "(not defined in spec/)", "page": None})
        out[rid] = {"title": meta["title"], "page": meta["page"], "in_spec": rid in known,
                    "cited": rid in citing or rid in seen, "exercised": rid in seen,
                    "properties": sorted(citing.get(rid, ()))}
    return out


def build_summary(runs: list[RunData], *, generated: float | None = None) -> dict:
    """The summary dict (see schema.json). Pure: reads nothing but ``runs`` and spec/."""
    backends = _backends(runs)
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
        "rules": _rules(runs, backends),
        "param_examples": _seed_examples(),
    }

