"""``lstm-conformance calibrate``: the error-ratio distribution of correct backends -> K and floor (NUM-4).

For each backend, ``--cases`` random cases are drawn within its capabilities by the suite's own strategy
(``strategies.cases``, driven by hypothesis in generate-only mode with a fixed seed: deterministic, no
shrinking), each run on the backend and on the reference in float64 and in the case's dtype, and judged
with :func:`conformance.errors.compare`. Sizes are capped for speed (timesteps, units and input_dim at
most ``MAX_SIZE``; the error model's ratio does not grow with size, which is the point of the oracle).

For contrast the same cases are run through *known semantic slips*, simulated on the reference itself
(a slip is a perturbed weight set or activation, run in the case's dtype and judged exactly like a
backend): i and f gates swapped, forget-gate bias dropped, Keras 2 ``hard_sigmoid`` computed where
Keras 3's is declared. A slip that changes nothing on a case (e.g. a dropped forget bias when
``c_{t-1} = 0`` throughout) is *not observable* there and left out of the slip statistics.

The suggestion: for each candidate ``floor_ulps``, ``K`` = the smallest power of two >= 4 x the largest
ratio of any correct backend; the floor that leaves the slips furthest above that ``K`` is suggested.
Backends are calibrated in their own environments (one framework per process); merge the ``--json``
files with ``python -m conformance.calibrate --merge a.json b.json ...``.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from reference import Weights, lstm_forward
from reference.weights import GATES, LayerWeights

from . import errors

__all__ = ["SLIPS", "calibrate_backend", "main", "merge", "suggest"]

MAX_SIZE = 64  # cap on timesteps, units and input_dim for calibration runs (speed)
CANDIDATE_FLOOR_ULPS = (1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0)
MARGIN = 4.0  # K >= MARGIN x the largest ratio of a correct backend
_I, _F = GATES.index("i"), GATES.index("f")


# ---- slips simulated on the reference ----------------------------------------------------------------
def _map_weights(weights: Weights, fn) -> Weights:
    return Weights([[fn(LayerWeights(**{k: np.array(v, copy=True) for k, v in lw.arrays().items()}))
                     for lw in dirs] for dirs in weights.layers])


def _swap_if(lw: LayerWeights) -> LayerWeights:
    for key in ("W", "U", "b", "b2"):
        arr = getattr(lw, key)
        if arr is not None:
            arr[[_I, _F]] = arr[[_F, _I]]
    return lw


def _drop_forget_bias(lw: LayerWeights) -> LayerWeights:
    for key in ("b", "b2"):
        arr = getattr(lw, key)
        if arr is not None:
            arr[_F] = 0.0
    return lw


def _slip_gate_swap(config, weights):
    return config, config, _map_weights(weights, _swap_if)  # (reference config, slip config, slip weights)


def _slip_forget_bias(config, weights):
    if not config.use_bias:
        return None
    return config, config, _map_weights(weights, _drop_forget_bias)


def _slip_hard_sigmoid(config, weights):
    # The slip needs hard_sigmoid in play: the recurrent activation (gates i, f, o) is set to Keras 3's
    # hard_sigmoid for the reference and to Keras 2's for the slip; same weights and inputs.
    ref = config.replace(recurrent_activation="hard_sigmoid_keras3")
    slip = ref.replace(recurrent_activation="hard_sigmoid_keras2",
                       activation="hard_sigmoid_keras2" if ref.activation == "hard_sigmoid_keras3" else ref.activation)
    return ref, slip, weights


#: slip name -> fn(config, weights) -> (reference config, slip config, slip weights) | None (not applicable)
SLIPS = {
    "gate-swap-i-f": _slip_gate_swap,
    "forget-bias-dropped": _slip_forget_bias,
    "keras2-hard-sigmoid-for-keras3": _slip_hard_sigmoid,
}


# ---- one case ----------------------------------------------------------------------------------------
def _flat(res) -> np.ndarray:
    return errors.flatten_outputs(res.output, res.h, res.c)


#: error models the calibration compares (the current one first); only K and floor_ulps are suggested,
#: for the current model -- the others are measurements for a decision about the model itself.
MODELS = {
    "NUM-1": "current: ratio = err_impl / max(err_oracle, floor), floor at scale max(1, max|y|)",
    "NUM-1+spread": "err_oracle widened to the max over SPREAD_SAMPLES more references on 1-ulp-nudged inputs",
    "NUM-1 |y|-floor": "floor at scale max|y| instead of max(1, max|y|)",
}
SPREAD_SAMPLES = 2


@dataclass
class _Row:
    """What calibration keeps of one case: enough to recompute the ratio under any floor and model."""

    dtype: str
    err_impl: float
    err_oracle: float
    ymax: float  # max |y_ref64| over the compared (finite) values; NUM-1's scale is max(1, ymax)
    out_of_range: bool
    describe: dict
    known: tuple[str, ...] = ()  # rules of the backend's xfail entries (known findings) that cover this case
    err_spread: float = 0.0  # max |y_nudged - y_ref64| over SPREAD_SAMPLES nudged references (see _spread)

    def ratio(self, floor_ulps: float = errors.FLOOR_ULPS, model: str = "NUM-1") -> float:
        """The ratio under ``floor_ulps`` and one of :data:`MODELS`."""
        scale = self.ymax if model == "NUM-1 |y|-floor" else max(1.0, self.ymax)
        floor = floor_ulps * float(np.finfo(np.dtype(self.dtype)).eps) * scale
        oracle = max(self.err_oracle, self.err_spread) if model == "NUM-1+spread" else self.err_oracle
        denom = max(oracle, floor)
        return self.err_impl / denom if denom > 0 else (0.0 if self.err_impl == 0 else math.inf)


def _measure(impl, ref64, refdt, dtype: str) -> tuple[float, float, float, bool] | None:
    """(err_impl, err_oracle, ymax, out_of_range) as errors.compare sees them; None on a size mismatch."""
    cmp = errors.compare(impl, ref64, refdt, dtype)
    if cmp.note.startswith("size"):
        return None
    if cmp.compared == 0:
        return 0.0, 0.0, 0.0, True
    finite = np.isfinite(refdt) & np.isfinite(ref64)
    return cmp.err_impl, cmp.err_oracle, float(np.max(np.abs(ref64[finite]))), cmp.out_of_range


def _reference(case, config, weights, dtype, *, oracle: bool = False):
    if oracle:  # what the dtype under test costs the reference (NUM-1)
        return _flat(errors.oracle_reference(config, weights, case.x, mask=case.mask, initial_state=case.initial_state,
                                             masked_output=case.masked_output, seed=case.seed))
    return _flat(lstm_forward(config, weights, case.x, mask=case.mask, initial_state=case.initial_state,
                              masked_output=case.masked_output, dtype=dtype))


def _nudged(a, dtype: str, rng: np.random.Generator) -> np.ndarray:
    a = np.asarray(a, dtype)
    up = rng.random(a.shape) < 0.5
    return np.where(up, np.nextafter(a, np.asarray(np.inf, dtype)), np.nextafter(a, np.asarray(-np.inf, dtype)))


def _spread(case, config, weights, ref64) -> float:
    """How far other, equally valid roundings of this case land from the truth: the max over
    SPREAD_SAMPLES references run in the dtype on inputs, weights and initial state each moved by one ulp of
    that dtype (random sign). One oracle sample underestimates this on ill-conditioned cases (saturated or
    unbounded activations, long stacks), where rounding is amplified by orders of magnitude."""
    dt = config.dtype
    rng = np.random.default_rng([case.seed, 0x5B7EAD])
    worst = 0.0
    for _ in range(SPREAD_SAMPLES):
        w = Weights.from_flat({k: _nudged(v, dt, rng) for k, v in weights.flat().items()})
        init = None if case.initial_state is None else [[(_nudged(h, dt, rng), _nudged(c, dt, rng)) for h, c in dirs]
                                                        for dirs in case.initial_state]
        with np.errstate(all="ignore"):
            y = _flat(lstm_forward(config, w, _nudged(case.x, dt, rng), mask=case.mask, initial_state=init,
                                   masked_output=case.masked_output, dtype=dt))
            finite = np.isfinite(y) & np.isfinite(ref64)
            if finite.any():
                worst = max(worst, float(np.max(np.abs(y[finite] - ref64[finite]))))
    return worst


def _slip_rows(case, ref64, refdt, spread: float) -> dict[str, _Row]:
    out = {}
    dt = case.config.dtype
    for name, make in SLIPS.items():
        made = make(case.config, case.weights)
        if made is None:
            continue
        ref_cfg, slip_cfg, slip_w = made
        r64, rdt = (ref64, refdt) if ref_cfg == case.config else (
            _reference(case, ref_cfg, case.weights, "float64"), _reference(case, ref_cfg, case.weights, dt, oracle=True))
        slip64 = _reference(case, slip_cfg, slip_w, "float64")
        finite = np.isfinite(slip64) & np.isfinite(r64) & np.isfinite(rdt)  # where NUM-2 compares
        if not np.any(np.abs(slip64[finite] - r64[finite]) > 0):
            continue  # the slip does not change this case where it is compared: not observable here
        m = _measure(_reference(case, slip_cfg, slip_w, dt, oracle=True), r64, rdt, dt)
        if m is not None:
            sp = spread if ref_cfg == case.config else _spread(case, ref_cfg, case.weights, r64)
            out[name] = _Row(dt, *m, describe={}, err_spread=sp)
    return out


# ---- drawing cases -----------------------------------------------------------------------------------
def _for_each_case(adapter, variant: str, n: int, seed: int, fn) -> None:
    """Call ``fn(case)`` on ``n`` cases the adapter supports, drawn deterministically from ``seed``."""
    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis import seed as hypothesis_seed
    from hypothesis import strategies as st

    from .strategies import cases

    small = st.one_of(st.integers(1, 8), st.integers(1, 8), st.integers(1, MAX_SIZE))  # as strategies._size

    @hypothesis_seed(seed)
    @settings(max_examples=n, database=None, phases=[Phase.generate], deadline=None, derandomize=False,
              suppress_health_check=list(HealthCheck), report_multiple_bugs=False)
    @given(data=st.data())
    def draw(data):
        fixed = {"units": data.draw(small, label="units"), "input_dim": data.draw(small, label="input_dim")}
        fn(data.draw(cases(adapter, variant, "cpu", fixed=fixed, max_timesteps=MAX_SIZE, long_sequences=False),
                     label="case"))

    draw()


def _known_findings(adapter, variant: str):
    """case -> rules of the backend's *conditional* xfail entries covering it. Known findings are genuine
    disagreements, not rounding: their cases are reported apart and left out of the K suggestion."""
    try:
        from .xfails import case_facts, load_xfails, version_matches
    except ImportError:  # an xfails module without case conditions: nothing to match
        return lambda case: ()
    versions = adapter.versions()
    entries = [e for e in load_xfails(adapter.name)
               if getattr(e, "conditional", False) and version_matches(e.versions, versions)]

    def known(case) -> tuple[str, ...]:
        facts = case_facts(case.describe(), variant)
        return tuple(sorted({e.rule for e in entries if e.matches_case(facts)}))

    return known


def calibrate_backend(name: str, n: int, seed: int, *, progress=None) -> dict:
    """Run ``n`` cases on backend ``name``; return its rows, slip rows, crashes and timing."""
    from hypothesis import reject

    from .adapters import load
    from .adapters.base import Unsupported

    adapter = load(name)
    reason = adapter.unavailable_reason()
    if reason is not None:
        return {"backend": name, "unavailable": reason}
    # Variants are the same math through another layout or entry point; the first one is calibrated, on CPU.
    variant = adapter.variants[0]
    known = _known_findings(adapter, variant)
    rows: list[_Row] = []
    slips: dict[str, list[_Row]] = {s: [] for s in SLIPS}
    crashes: list[dict] = []
    t0 = time.perf_counter()

    def one(case):
        try:
            handle = adapter.build(case.config, case.weights, variant=variant, device="cpu")
            out = adapter.forward(handle, case.x, mask=case.mask, initial_state=case.initial_state,
                                  masked_output=case.masked_output)
            impl = errors.flatten_outputs(out.output, out.h, out.c)
        except Unsupported:
            reject()
        except Exception as exc:  # noqa: BLE001 - a crash is a calibration result, not a reason to stop
            crashes.append({"case": case.describe(), "error": f"{type(exc).__name__}: {exc}"[:300]})
            return
        ref64 = _reference(case, case.config, case.weights, "float64")
        refdt = _reference(case, case.config, case.weights, case.config.dtype, oracle=True)
        m = _measure(impl, ref64, refdt, case.config.dtype)
        if m is None:
            crashes.append({"case": case.describe(), "error": f"output size {impl.size}, reference {ref64.size}"})
            return
        spread = _spread(case, case.config, case.weights, ref64)
        rows.append(_Row(case.config.dtype, *m, describe=case.describe(), known=known(case), err_spread=spread))
        for slip, row in _slip_rows(case, ref64, refdt, spread).items():
            slips[slip].append(row)
        if progress and len(rows) % 250 == 0:
            progress(f"  {name}: {len(rows)} cases, {time.perf_counter() - t0:.0f}s")

    _for_each_case(adapter, variant, n, seed, one)
    return {"backend": name, "variant": variant, "framework": adapter.framework, "versions": adapter.versions(),
            "rows": rows, "slips": slips, "crashes": crashes, "seconds": time.perf_counter() - t0}


# ---- statistics --------------------------------------------------------------------------------------
def _quantiles(a: np.ndarray, ps) -> list[float]:
    # "nearest": ratios may be inf (a non-finite slip output); interpolating between infs gives nan
    return [float(np.quantile(a, p, method="nearest")) if a.size else math.nan for p in ps]


def _stats(ratios: list[float], k: float) -> dict:
    if not ratios:
        return {"cases": 0}
    a = np.asarray(ratios, dtype=np.float64)
    p01, median, p99 = _quantiles(a, (0.01, 0.5, 0.99))
    return {"cases": int(a.size), "min": float(a.min()), "p01": p01, "median": median, "p99": p99,
            "max": float(a.max()),
            "above_K": int(np.sum(a > k))}


def _pow2_at_least(x: float) -> float:
    if not math.isfinite(x):
        return math.inf
    return float(2 ** math.ceil(math.log2(x))) if x > 1 else 1.0


def suggest(rows: list[_Row], slip_rows: list[_Row]) -> dict:
    """Per model and candidate floor: K = pow2 >= MARGIN x max correct ratio, and how many slip cases that K
    catches. K and floor_ulps are suggested for the current model only (the others change the formula)."""
    table = []
    for model in MODELS:
        for fu in CANDIDATE_FLOOR_ULPS:
            worst = max((r.ratio(fu, model) for r in rows), default=0.0)
            k = max(_pow2_at_least(MARGIN * worst), MARGIN)
            sr = np.asarray([r.ratio(fu, model) for r in slip_rows], dtype=np.float64)
            p01, median = _quantiles(sr, (0.01, 0.5))
            table.append({"model": model, "floor_ulps": fu, "max_correct_ratio": worst, "K": k,
                          "slip_min": float(sr.min()) if sr.size else math.nan, "slip_p01": p01,
                          "slip_median": median, "slips_caught": int(np.sum(sr > k)), "slips": int(sr.size)})
    # Most slip cases caught at its own K wins; ties go to the current floor, then to the larger floor
    # (more robust to backends not in this calibration).
    best = max((t for t in table if t["model"] == "NUM-1"),
               key=lambda t: (t["slips_caught"], t["floor_ulps"] == errors.FLOOR_ULPS, t["floor_ulps"]))
    return {"candidates": table, "suggested": best, "margin": MARGIN, "models": MODELS}


def _summaries(result: dict) -> dict:
    """Per dtype: the ratio distribution of the cases no known finding covers, the known-finding cases
    apart, and the cases above K that nothing explains (to investigate: a new finding or a wrong K)."""
    by_dtype: dict[str, dict] = {}
    for dt in sorted({r.dtype for r in result["rows"]}):
        every = [r for r in result["rows"] if r.dtype == dt]
        rows = [r for r in every if not r.known] or every
        ratios = [r.ratio(errors.FLOOR_ULPS) for r in rows]
        st = _stats(ratios, errors.K)
        st["out_of_range"] = sum(r.out_of_range for r in rows)
        st["floor_decides"] = sum(r.err_oracle < errors.FLOOR_ULPS * np.finfo(np.dtype(dt)).eps * max(1.0, r.ymax)
                                  for r in rows)
        worst = rows[int(np.argmax(ratios))]
        st["worst_case"] = worst.describe
        st["worst_err_impl"], st["worst_err_oracle"] = worst.err_impl, worst.err_oracle
        st["above_K_cases"] = [{"ratio": r.ratio(), "ratio_spread": r.ratio(model="NUM-1+spread"),
                                "err_impl": r.err_impl, "err_oracle": r.err_oracle, "err_spread": r.err_spread,
                                "ymax": r.ymax, "case": r.describe} for r in rows if r.ratio() > errors.K][:20]
        known = [r for r in every if r.known]
        st["known_findings"] = {"cases": len(known), "rules": sorted({k for r in known for k in r.known}),
                                "max_ratio": max((r.ratio() for r in known), default=None)}
        by_dtype[dt] = st
    slips = {}
    for s, srows in result["slips"].items():
        slips[s] = {dt: _stats([r.ratio(errors.FLOOR_ULPS) for r in srows if r.dtype == dt], errors.K)
                    for dt in sorted({r.dtype for r in srows})}
    return {"dtypes": by_dtype, "slips": slips}


def _fmt(x) -> str:
    return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.3g}"


def _print_backend(name: str, summ: dict, result: dict, out=sys.stdout) -> None:
    print(f"\n{name}:{result['variant']} ({result.get('versions')}): {len(result['rows'])} cases in "
          f"{result['seconds']:.1f}s, {len(result['crashes'])} crashed", file=out)
    print(f"  {'dtype':<8}{'cases':>6}{'min':>10}{'median':>10}{'p99':>10}{'max':>10}{'>K':>5}{'out of range':>14}"
          f"{'floor decides':>15}", file=out)
    for dt, s in summ["dtypes"].items():
        print(f"  {dt:<8}{s['cases']:>6}{_fmt(s['min']):>10}{_fmt(s['median']):>10}{_fmt(s['p99']):>10}"
              f"{_fmt(s['max']):>10}{s['above_K']:>5}{s['out_of_range']:>14}{s['floor_decides']:>15}", file=out)
        kf = s["known_findings"]
        if kf["cases"]:
            print(f"  {'':<8}+ {kf['cases']} case(s) covered by known findings (xfail {', '.join(kf['rules'])}), "
                  f"max ratio {_fmt(kf['max_ratio'])}; left out above", file=out)
        for c in s["above_K_cases"][:5]:
            print(f"  {'':<8}! ratio {_fmt(c['ratio'])} above K (with the spread oracle {_fmt(c['ratio_spread'])}, "
                  f"max|y| {_fmt(c['ymax'])}), not a known finding: {c['case']}", file=out)
    print("  slips on the same cases (observable cases only):", file=out)
    for slip, per in summ["slips"].items():
        for dt, s in per.items():
            print(f"    {slip:<32}{dt:<8}{s['cases']:>6} cases  min {_fmt(s['min'])}  p01 {_fmt(s['p01'])}  "
                  f"median {_fmt(s['median'])}  caught at K={errors.K:g}: {s['above_K']}/{s['cases']}",
                  file=out)
    for c in result["crashes"][:3]:
        print(f"  crash: {c['error']}  case {c['case']}", file=out)


def _print_suggestion(sug: dict, out=sys.stdout) -> None:
    print(f"\nK per floor (K = power of two >= {sug['margin']:g} x max correct ratio); slips judged at that K:", file=out)
    print(f"  {'model':<16}{'floor_ulps':>10}{'max ratio':>12}{'K':>8}{'slip min':>12}{'slip p01':>12}"
          f"{'slip median':>13}{'caught':>14}", file=out)
    for t in sug["candidates"]:
        print(f"  {t['model']:<16}{t['floor_ulps']:>10g}{_fmt(t['max_correct_ratio']):>12}{t['K']:>8g}"
              f"{_fmt(t['slip_min']):>12}{_fmt(t['slip_p01']):>12}{_fmt(t['slip_median']):>13}"
              f"{t['slips_caught']:>8}/{t['slips']:<5}", file=out)
    s = sug["suggested"]
    print(f"suggested: K = {s['K']:g}, floor_ulps = {s['floor_ulps']:g} (current: K = {errors.K:g}, "
          f"floor_ulps = {errors.FLOOR_ULPS:g})", file=out)


def _rows_json(rows: list[_Row]) -> list[dict]:
    return [{"dtype": r.dtype, "err_impl": r.err_impl, "err_oracle": r.err_oracle, "err_spread": r.err_spread,
             "ymax": r.ymax,
             "out_of_range": r.out_of_range, "known": list(r.known), **({"case": r.describe} if r.describe else {})}
            for r in rows]


def _rows_from_json(items: list[dict]) -> list[_Row]:
    # JSON has no inf: recording writes a non-finite err_impl (implementation not finite) as null
    return [_Row(i["dtype"], math.inf if i["err_impl"] is None else i["err_impl"], i["err_oracle"] or 0.0,
                 i["ymax"] or 0.0, i["out_of_range"], i.get("case", {}), tuple(i.get("known", ())),
                 i.get("err_spread") or 0.0) for i in items]


def main(args) -> int:
    from .adapters import available_names

    names = args.backend or available_names()
    if args.cases < 1:
        raise ValueError(f"--cases {args.cases}: must be >= 1")
    print(f"lstm-conformance calibrate: {args.cases} cases per backend, seed {args.seed}, timesteps/units/input_dim "
          f"<= {MAX_SIZE}; current K = {errors.K:g}, floor_ulps = {errors.FLOOR_ULPS:g}")
    report = {"K": errors.K, "floor_ulps": errors.FLOOR_ULPS, "cases_requested": args.cases, "seed": args.seed,
              "max_size": MAX_SIZE, "python": platform.python_version(), "backends": {}}
    all_rows, all_slips = [], []
    status = 0
    for name in names:
        t0 = time.perf_counter()
        result = calibrate_backend(name, args.cases, args.seed, progress=lambda m: print(m, flush=True))
        if "unavailable" in result:
            print(f"\n{name}: not installed ({result['unavailable']})")
            report["backends"][name] = {"unavailable": result["unavailable"]}
            continue
        summ = _summaries(result)
        _print_backend(name, summ, result)
        all_rows += [r for r in result["rows"] if not r.known]
        all_slips += [r for rows in result["slips"].values() for r in rows]
        if result["crashes"]:
            status = 1
        report["backends"][name] = {
            "framework": result["framework"], "variant": result["variant"], "versions": result["versions"],
            "seconds": time.perf_counter() - t0,
            "summary": summ, "crashes": result["crashes"], "rows": _rows_json(result["rows"]),
            "slip_rows": {s: _rows_json(rows) for s, rows in result["slips"].items()}}
    if all_rows:
        report["suggestion"] = suggest(all_rows, all_slips)
        _print_suggestion(report["suggestion"])
    if args.json:
        from .recording import write_json_atomic

        write_json_atomic(args.json, report)
        print(f"numbers written to {args.json}")
    return status


def merge(paths: list[str], out=sys.stdout) -> dict:
    """Combine calibration JSON files (one per environment) into one suggestion over all backends."""
    rows, slips, merged = [], [], {}
    for p in paths:
        data = json.loads(Path(p).read_text())
        for name, b in data["backends"].items():
            if "rows" not in b:
                continue
            merged[name] = b
            rows += [r for r in _rows_from_json(b["rows"]) if not r.known]
            slips += [r for items in b["slip_rows"].values() for r in _rows_from_json(items)]
    print(f"{'backend':<18}{'dtype':<9}{'cases':>6}{'min':>10}{'median':>10}{'p99':>10}{'max':>10}{'>K':>5}"
          f"{'out of range':>14}", file=out)
    for name, b in merged.items():
        for dt, s in b["summary"]["dtypes"].items():
            print(f"{name:<18}{dt:<9}{s['cases']:>6}{_fmt(s['min']):>10}{_fmt(s['median']):>10}{_fmt(s['p99']):>10}"
                  f"{_fmt(s['max']):>10}{s['above_K']:>5}{s['out_of_range']:>14}", file=out)
    sug = suggest(rows, slips)
    _print_suggestion(sug, out=out)
    return {"backends": sorted(merged), "suggestion": sug}


if __name__ == "__main__":
    p = argparse.ArgumentParser(prog="python -m conformance.calibrate", description="merge calibration JSON files")
    p.add_argument("--merge", nargs="+", required=True, metavar="JSON")
    p.add_argument("--json", metavar="FILE", help="write the merged suggestion here")
    a = p.parse_args()
    result = merge(a.merge)
    if a.json:
        from .recording import write_json_atomic

        write_json_atomic(a.json, result)
