"""Calibration statistics: the per-case measurements (:class:`Row`), their ratio distributions, the K and
floor suggestion (NUM-4), and the printed tables.

A row keeps what :func:`conformance.harness.errors.compare` measured (``err_impl``, ``err_oracle``,
``ymax``), so the ratio is recomputed under any candidate floor by :func:`errors.ratio` itself: the
calibration never has a formula of its own.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass

import numpy as np

from ..harness import errors

__all__ = [
    "CANDIDATE_FLOOR_ULPS",
    "MARGIN",
    "MODELS",
    "Row",
    "print_backend",
    "print_merged",
    "print_suggestion",
    "suggest",
    "summarise",
]

CANDIDATE_FLOOR_ULPS = (1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0)
MARGIN = 4.0  # K >= MARGIN x the largest ratio of a correct backend

#: error models the calibration compares (the current one first); only K and floor_ulps are suggested,
#: for the current model -- the others are measurements for a decision about the model itself.
MODELS = {
    "NUM-1": "current (v2): err_oracle over the dtype run and nudged references; floor at scale max|y|",
    "NUM-1+spread": "err_oracle widened further by SPREAD_SAMPLES more references on 1-ulp-nudged inputs",
    "NUM-1 1-floor": "floor at scale max(1, max|y|) instead of max|y| (the v1 floor)",
}


@dataclass
class Row:
    """What calibration keeps of one case: enough to recompute the ratio under any floor and model."""

    dtype: str
    err_impl: float
    err_oracle: float
    ymax: float  # max |y_ref64| over the compared values (errors.Comparison.ymax)
    out_of_range: bool
    describe: dict
    known: tuple[str, ...] = ()  # rules of the backend's xfail entries (known findings) that cover this case
    err_spread: float = 0.0  # max |y_nudged - y_ref64| over the nudged references (sampling.spread)

    def ratio(self, floor_ulps: float = errors.FLOOR_ULPS, model: str = "NUM-1") -> float:
        """The ratio under ``floor_ulps`` and one of :data:`MODELS`."""
        scale = errors.output_scale(self.ymax) if model == "NUM-1 1-floor" else errors.floor_scale(self.ymax)
        oracle = max(self.err_oracle, self.err_spread) if model == "NUM-1+spread" else self.err_oracle
        return errors.ratio(self.err_impl, oracle, self.dtype, scale, floor_ulps)

    @property
    def floor_decides(self) -> bool:
        """The current floor, not the oracle, is the ratio's denominator."""
        return self.err_oracle < errors.floor(self.dtype, errors.floor_scale(self.ymax))

    def to_json(self) -> dict:
        return {"dtype": self.dtype, "err_impl": self.err_impl, "err_oracle": self.err_oracle,
                "err_spread": self.err_spread, "ymax": self.ymax, "out_of_range": self.out_of_range,
                "known": list(self.known), **({"case": self.describe} if self.describe else {})}

    @classmethod
    def from_json(cls, item: dict) -> Row:
        # JSON has no inf: a non-finite err_impl (implementation not finite) is written as null
        return cls(item["dtype"], math.inf if item["err_impl"] is None else item["err_impl"], item["err_oracle"] or 0.0,
                   item["ymax"] or 0.0, item["out_of_range"], item.get("case", {}), tuple(item.get("known", ())),
                   item.get("err_spread") or 0.0)


# ---- distributions -----------------------------------------------------------------------------------
def _quantiles(a: np.ndarray, ps) -> list[float]:
    # "nearest": ratios may be inf (a non-finite slip output); interpolating between infs gives nan
    return [float(np.quantile(a, p, method="nearest")) if a.size else math.nan for p in ps]


def _stats(ratios: list[float], k: float) -> dict:
    if not ratios:
        return {"cases": 0}
    a = np.asarray(ratios, dtype=np.float64)
    p01, median, p99 = _quantiles(a, (0.01, 0.5, 0.99))
    return {"cases": int(a.size), "min": float(a.min()), "p01": p01, "median": median, "p99": p99,
            "max": float(a.max()), "above_K": int(np.sum(a > k))}


def _pow2_at_least(x: float) -> float:
    if not math.isfinite(x):
        return math.inf
    return float(2 ** math.ceil(math.log2(x))) if x > 1 else 1.0


def suggest(rows: list[Row], slip_rows: list[Row]) -> dict:
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


def summarise(rows: list[Row], slips: dict[str, list[Row]]) -> dict:
    """Per dtype: the ratio distribution of the cases no known finding covers, the known-finding cases
    apart, and the cases above K that nothing explains (to investigate: a new finding or a wrong K)."""
    by_dtype: dict[str, dict] = {}
    for dt in sorted({r.dtype for r in rows}):
        every = [r for r in rows if r.dtype == dt]
        plain = [r for r in every if not r.known] or every
        ratios = [r.ratio() for r in plain]
        st = _stats(ratios, errors.K)
        st["out_of_range"] = sum(r.out_of_range for r in plain)
        st["floor_decides"] = sum(r.floor_decides for r in plain)
        worst = plain[int(np.argmax(ratios))]
        st["worst_case"] = worst.describe
        st["worst_err_impl"], st["worst_err_oracle"] = worst.err_impl, worst.err_oracle
        st["above_K_cases"] = [{"ratio": r.ratio(), "ratio_spread": r.ratio(model="NUM-1+spread"),
                                "err_impl": r.err_impl, "err_oracle": r.err_oracle, "err_spread": r.err_spread,
                                "ymax": r.ymax, "case": r.describe} for r in plain if r.ratio() > errors.K][:20]
        known = [r for r in every if r.known]
        st["known_findings"] = {"cases": len(known), "rules": sorted({k for r in known for k in r.known}),
                                "max_ratio": max((r.ratio() for r in known), default=None)}
        by_dtype[dt] = st
    per_slip = {s: {dt: _stats([r.ratio() for r in srows if r.dtype == dt], errors.K)
                    for dt in sorted({r.dtype for r in srows})} for s, srows in slips.items()}
    return {"dtypes": by_dtype, "slips": per_slip}


# ---- printing ----------------------------------------------------------------------------------------
def _fmt(x) -> str:
    return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.3g}"


_DIST_HEADER = f"{'cases':>6}{'min':>10}{'median':>10}{'p99':>10}{'max':>10}{'>K':>5}{'out of range':>14}"


def _dist_cells(s: dict) -> str:
    return (f"{s['cases']:>6}{_fmt(s['min']):>10}{_fmt(s['median']):>10}{_fmt(s['p99']):>10}{_fmt(s['max']):>10}"
            f"{s['above_K']:>5}{s['out_of_range']:>14}")


def print_backend(name: str, result: dict, summary: dict, out=sys.stdout) -> None:
    """One backend's ratio distribution per dtype, known findings, unexplained cases, slips and crashes."""
    print(f"\n{name}:{result['variant']} ({result.get('versions')}): {len(result['rows'])} cases in "
          f"{result['seconds']:.1f}s, {len(result['crashes'])} crashed, inconclusive "
          f"{result.get('inconclusive') or 0}", file=out)
    print(f"  {'dtype':<8}{_DIST_HEADER}{'floor decides':>15}", file=out)
    for dt, s in summary["dtypes"].items():
        print(f"  {dt:<8}{_dist_cells(s)}{s['floor_decides']:>15}", file=out)
        kf = s["known_findings"]
        if kf["cases"]:
            print(f"  {'':<8}+ {kf['cases']} case(s) covered by known findings (xfail {', '.join(kf['rules'])}), "
                  f"max ratio {_fmt(kf['max_ratio'])}; left out above", file=out)
        for c in s["above_K_cases"][:5]:
            print(f"  {'':<8}! ratio {_fmt(c['ratio'])} above K (with the spread oracle {_fmt(c['ratio_spread'])}, "
                  f"max|y| {_fmt(c['ymax'])}), not a known finding: {c['case']}", file=out)
    print("  slips on the same cases (observable cases only):", file=out)
    for slip, per in summary["slips"].items():
        for dt, s in per.items():
            print(f"    {slip:<32}{dt:<8}{s['cases']:>6} cases  min {_fmt(s['min'])}  p01 {_fmt(s['p01'])}  "
                  f"median {_fmt(s['median'])}  caught at K={errors.K:g}: {s['above_K']}/{s['cases']}",
                  file=out)
    for c in result["crashes"][:3]:
        print(f"  crash: {c['error']}  case {c['case']}", file=out)


def print_merged(backends: dict[str, dict], out=sys.stdout) -> None:
    """The per-dtype distributions of several backends' stored summaries, one line each."""
    print(f"{'backend':<18}{'dtype':<9}{_DIST_HEADER}", file=out)
    for name, b in backends.items():
        for dt, s in b["summary"]["dtypes"].items():
            print(f"{name:<18}{dt:<9}{_dist_cells(s)}", file=out)


def print_suggestion(sug: dict, out=sys.stdout) -> None:
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
