"""Drawing calibration cases and running them through the harness (``conformance.harness.judge``).

For one backend, ``n`` cases are drawn within its capabilities by the suite's own strategy
(:func:`conformance.harness.strategies.cases`, hypothesis in generate-only mode with a fixed seed:
deterministic, no shrinking), each run on the backend (:func:`judge.run_adapter`) and on the reference
in float64 and as the dtype under test (:func:`judge.reference`, :func:`judge.oracle`), and judged by
:func:`judge.judge_outputs` -- exactly as a conformance run judges it. Sizes are capped at ``MAX_SIZE``
for speed (the error model's ratio does not grow with size, which is the point of the oracle).

Each case also runs through the known slips (:data:`slips.SLIPS`), simulated on the reference and judged
the same way. A slip that changes nothing on a case where values are compared (e.g. a dropped forget bias
when ``c_{t-1} = 0`` throughout) is *not observable* there and left out of the slip statistics.
"""

from __future__ import annotations

import dataclasses
import time
from collections import Counter

import numpy as np

from ..adapters import load
from ..adapters.base import Output, Unsupported
from ..harness import errors
from ..harness.errors import nudge_inputs
from ..harness.judge import Target, judge_outputs, oracle, oracles, reference, run_adapter
from ..harness.strategies import Case
from ..harness.xfails import case_facts, load_xfails, version_matches
from .slips import SLIPS
from .stats import Row

__all__ = ["MAX_SIZE", "SPREAD_SAMPLES", "calibrate_backend", "spread"]

MAX_SIZE = 64  # cap on timesteps, units and input_dim for calibration runs (speed)
SPREAD_SAMPLES = 2  # nudged references per case for the NUM-1+spread model (stats.MODELS)


def _for_each_case(target: Target, n: int, seed: int, fn) -> None:
    """Call ``fn(case)`` on ``n`` cases the adapter supports, drawn deterministically from ``seed``."""
    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis import seed as hypothesis_seed
    from hypothesis import strategies as st

    from ..harness.strategies import cases

    small = st.one_of(st.integers(1, 8), st.integers(1, 8), st.integers(1, MAX_SIZE))  # as strategies._size

    @hypothesis_seed(seed)
    @settings(max_examples=n, database=None, phases=[Phase.generate], deadline=None, derandomize=False,
              suppress_health_check=list(HealthCheck), report_multiple_bugs=False)
    @given(data=st.data())
    def draw(data):
        fixed = {"units": data.draw(small, label="units"), "input_dim": data.draw(small, label="input_dim")}
        fn(data.draw(cases(target.adapter, target.variant, target.device, fixed=fixed, max_timesteps=MAX_SIZE,
                           long_sequences=False), label="case"))

    draw()


def _known_findings(target: Target):
    """case -> rules of the backend's *conditional* xfail entries covering it. Known findings are genuine
    disagreements, not rounding: their cases are reported apart and left out of the K suggestion."""
    versions = target.adapter.versions()
    entries = [e for e in load_xfails(target.adapter.name) if e.conditional and version_matches(e.versions, versions)]

    def known(case: Case) -> tuple[str, ...]:
        facts = case_facts(case.describe(), target.variant)
        return tuple(sorted({e.rule for e in entries if e.matches_case(facts)}))

    return known


def _flat(res) -> np.ndarray:
    return errors.flatten_outputs(res.output, res.h, res.c)


def _row(case: Case, out, ref64, refdt, **kw) -> Row | str:
    """The judged case as a :class:`Row`, or the reason it could not be compared (wrong shapes)."""
    return _row_of(case, judge_outputs(case, out, ref64, refdt), **kw)


def _row_of(case: Case, j, **kw) -> Row | str:
    """A :class:`Row` from a Judgement already made, or the reason it could not be compared (wrong shapes)."""
    m = j.metrics
    if "ratio" not in m:
        return j.message
    # metrics are JSON-safe: a non-finite err_impl (implementation not finite) is None there
    err_impl = np.inf if m["err_impl"] is None else m["err_impl"]
    return Row(case.config.dtype, err_impl, m["err_oracle"] or 0.0, m["ymax"] or 0.0, m["out_of_range"], **kw)


def spread(case: Case, ref64) -> float:
    """How far other, equally valid roundings of this case land from the truth: the max over
    SPREAD_SAMPLES references run in the dtype on inputs, weights and initial state each nudged by an ulp
    of that dtype (:func:`errors.nudge`). One oracle sample underestimates this on ill-conditioned cases
    (saturated or unbounded activations, long stacks), where rounding is amplified by orders of magnitude."""
    dt = case.config.dtype
    rng = np.random.default_rng([case.seed, 0x5B7EAD])
    r64 = _flat(ref64)
    worst = 0.0
    for _ in range(SPREAD_SAMPLES):
        w, x, init = nudge_inputs(case.weights, case.x, case.initial_state, dt, rng)
        nudged = dataclasses.replace(case, weights=w, x=x, initial_state=init)
        with np.errstate(all="ignore"):
            y = _flat(reference(nudged, dt))
            finite = np.isfinite(y) & np.isfinite(r64)
            if finite.any():
                worst = max(worst, float(np.max(np.abs(y[finite] - r64[finite]))))
    return worst


def _slip_rows(case: Case, ref64, refdt, case_spread: float) -> dict[str, Row]:
    """Each applicable, observable slip of ``case`` judged like a backend: the slip's reference as the dtype
    under test sees it (judge.oracle) is the "implementation"."""
    out = {}
    for name, make in SLIPS.items():
        made = make(case.config, case.weights)
        if made is None:
            continue
        ref_cfg, slip_cfg, slip_w = made
        ref_case = case if ref_cfg == case.config else dataclasses.replace(case, config=ref_cfg)
        r64, rdt = (ref64, refdt) if ref_case is case else (reference(ref_case), oracle(ref_case))
        slip_case = dataclasses.replace(case, config=slip_cfg, weights=slip_w)
        slip64, a, b = _flat(reference(slip_case)), _flat(r64), _flat(rdt)
        finite = np.isfinite(slip64) & np.isfinite(a) & np.isfinite(b)  # where NUM-2 compares
        if not np.any(np.abs(slip64[finite] - a[finite]) > 0):
            continue  # the slip does not change this case where it is compared: not observable here
        slipped = oracle(slip_case)
        row = _row(ref_case, Output(slipped.output, slipped.h, slipped.c), r64, rdt, describe={},
                   err_spread=case_spread if ref_case is case else spread(ref_case, r64))
        if isinstance(row, Row):
            out[name] = row
    return out


def calibrate_backend(name: str, n: int, seed: int, *, progress=None) -> dict:
    """Run ``n`` cases on backend ``name`` (its first variant, on CPU); return its rows, slip rows, crashes
    and timing, or ``{"backend": name, "unavailable": reason}``."""
    from hypothesis import reject

    adapter = load(name)
    reason = adapter.unavailable_reason()
    if reason is not None:
        return {"backend": name, "unavailable": reason}
    # Variants are the same math through another layout or entry point; the first one is calibrated.
    target = Target(adapter, adapter.variants[0], "cpu")
    known = _known_findings(target)
    rows: list[Row] = []
    slip_rows: dict[str, list[Row]] = {s: [] for s in SLIPS}
    crashes: list[dict] = []
    inconclusive: Counter = Counter()  # rule (NUM-2, NUM-6) -> cases: proved nothing, left out of the ratios
    t0 = time.perf_counter()

    def one(case: Case) -> None:
        try:
            _, out = run_adapter(target, case)
        except Unsupported:
            reject()
        except Exception as exc:  # noqa: BLE001 - a crash is a calibration result, not a reason to stop
            crashes.append({"case": case.describe(), "error": f"{type(exc).__name__}: {exc}"[:300]})
            return
        ref64, rounds = reference(case), oracles(case)  # rounds[0] is judge.oracle(case), the slips' bar
        refdt = rounds[0]
        judged = judge_outputs(case, out, ref64, rounds)  # the error model as a conformance run applies it
        if judged.inconclusive:
            inconclusive[judged.implicated[0]] += 1  # the rule that made it inconclusive (NUM-2, NUM-6)
            return
        row = _row_of(case, judged, describe=case.describe(), known=known(case))
        if not isinstance(row, Row):
            crashes.append({"case": case.describe(), "error": row})
            return
        row.err_spread = spread(case, ref64)
        rows.append(row)
        for slip, srow in _slip_rows(case, ref64, refdt, row.err_spread).items():
            slip_rows[slip].append(srow)
        if progress and len(rows) % 250 == 0:
            progress(f"  {name}: {len(rows)} cases, {time.perf_counter() - t0:.0f}s")

    _for_each_case(target, n, seed, one)
    return {"backend": name, "variant": target.variant, "framework": adapter.framework,
            "versions": adapter.versions(), "rows": rows, "slips": slip_rows, "crashes": crashes,
            "inconclusive": dict(inconclusive),
            "seconds": time.perf_counter() - t0}
