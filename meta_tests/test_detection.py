"""Detection: the share of drawn cases on which each broken adapter fails, without shrinking.

The broken-adapter meta tests show that a slip is *found*; this measures how *sharply*: over many unshrunk
cases from the same strategy as the property that targets the slip, the share judged *fail* among the
cases where the slip is observable and the case is conclusive. Observable: the slip moves the output by
more than the case's own rounding noise (the error model's bar before K: max(err_oracle, floor)); a slip
whose effect is below what equally valid roundings of the case already disagree by (a state reset 64
steps before the end of a forgetting sequence, in float32) cannot be seen by any comparison in that dtype. Targets (spec/numerics.md, NUM-4): >= 99 % of float64 and >= 95 % of float32 cases, and
at most 5 % of the cases inconclusive.
"""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
from broken_adapters import EXPECTED
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from conformance.adapters.numpy_ref import NumpyAdapter
from conformance.harness import errors
from conformance.harness.gradient_errors import gradient_tensors
from conformance.harness.gradient_judge import cotangents, initial_state_or_zeros, judge_gradients
from conformance.harness.judge import Target, judge_forward, judge_precision, run_adapter
from conformance.harness.strategies import TYPICAL, cases

N_CASES = 120
TARGET = {"float64": 0.99, "float32": 0.95}
MAX_INCONCLUSIVE = 0.15

#: per broken adapter: the judge and the strategy arguments of the property that targets its slip
PLAN = {
    "broken-gate-swap": (judge_forward, dict(mask=False, initial_state=False)),
    "broken-no-forget-bias": (judge_forward, dict(mask=False, initial_state=False)),
    "broken-go-backwards-unreversed": (judge_forward, dict(fixed={"go_backwards": True, "bidirectional": False,
                                                                  "return_sequences": True})),
    "broken-padded-end-state": (judge_forward, dict(mask=True)),
    "broken-keras2-hard-sigmoid": (judge_forward, dict(fixed={"recurrent_activation": "hard_sigmoid_keras3",
                                                              "num_layers": 1}, mask=False, initial_state=False)),
    "broken-float16-inside": (judge_precision, dict(regime=TYPICAL, mask=False, initial_state=False,
                                                    max_timesteps=16, fixed={"num_layers": 1, "dtype": "float32"})),
    "broken-tf32-like": (judge_precision, dict(regime=TYPICAL, mask=False, initial_state=False, max_timesteps=16,
                                               fixed={"num_layers": 1, "dtype": "float32"})),
    "broken-ave-merge": (judge_forward, dict(fixed={"bidirectional": True, "merge_mode": "ave"})),
    "broken-state-reset-64": (judge_forward, dict(timesteps=(65, 200), mask=False, initial_state=False,
                                                  fixed={"num_layers": 1, "return_sequences": True},
                                                  regime=TYPICAL)),
}


def _effect(a, b) -> float:
    fa, fb = errors.flatten_outputs([a.output, a.h, a.c]), errors.flatten_outputs([b.output, b.h, b.c])
    if fa.shape != fb.shape:
        return np.inf
    with np.errstate(invalid="ignore"):
        d = np.abs(fa - fb)
    return float(np.nanmax(d)) if d.size else 0.0


def measure(name: str) -> dict[str, Counter]:
    adapter = EXPECTED[name][0]()
    judge, kw = PLAN[name]
    broken, correct = Target(adapter), Target(NumpyAdapter())
    tally: dict[str, Counter] = {}

    @settings(max_examples=N_CASES, phases=[Phase.generate], database=None, deadline=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    @given(data=st.data())
    def sample(data):
        case = data.draw(cases(adapter, **kw))
        counts = tally.setdefault(case.config.dtype, Counter())
        j = judge(broken, case)
        if j.inconclusive:
            counts["inconclusive"] += 1
            return
        noise = max(j.metrics.get("err_oracle") or 0.0, j.metrics.get("floor") or 0.0)
        if _effect(run_adapter(broken, case)[1], run_adapter(correct, case)[1]) <= noise:
            counts["not observable"] += 1
            return
        counts["pass" if j.ok else "fail"] += 1

    sample()
    return tally


def _assert_detected(name: str, tally: dict, record_property) -> None:
    """Per dtype: the detection rate over conclusive observable cases meets TARGET, few cases inconclusive."""
    lines = []
    for dtype, c in sorted(tally.items()):
        conclusive = c["fail"] + c["pass"]
        rate = c["fail"] / conclusive if conclusive else 1.0
        lines.append(f"{dtype}: {c['fail']}/{conclusive} fail ({rate:.1%}), {c['inconclusive']} inconclusive, "
                     f"{c['not observable']} not observable")
        assert rate >= TARGET[dtype], f"{name} {dtype}: detected on {rate:.1%} < {TARGET[dtype]:.0%}: {dict(c)}"
        assert c["inconclusive"] <= MAX_INCONCLUSIVE * sum(c.values()), f"{name} {dtype}: {dict(c)}"
    record_property("detection", "; ".join(lines))
    print(f"{name}: " + "; ".join(lines))


@pytest.mark.parametrize("name", sorted(PLAN))
def test_slips_fail_on_nearly_every_observable_case(name, record_property):
    _assert_detected(name, measure(name), record_property)


#: gradient slips: the strategy arguments of the property that targets each (conformance/properties/test_gradients.py)
GRADIENT_PLAN = {
    "broken-grad-truncated-4": dict(mask=False, fixed={"cell_clip": None}, max_timesteps=32, long_sequences=False),
    "broken-grad-mask-leak": dict(mask=True, fixed={"cell_clip": None}, max_timesteps=32, long_sequences=False),
}


def _gradients(adapter, case) -> dict:
    g_out, g_h, g_c = cotangents(case)
    handle = adapter.build(case.config, case.weights)
    g = adapter.gradients(handle, case.x, g_out=g_out, g_h=g_h, g_c=g_c, initial_state=initial_state_or_zeros(case),
                          mask=case.mask, masked_output=case.masked_output)
    return gradient_tensors(g.x, g.h0, g.c0, g.weights)


def measure_gradients(name: str) -> dict[str, Counter]:
    """As :func:`measure`, per gradient tensor: observable when the slip moves some tensor by more than that
    tensor's own bar (max(err_oracle, floor) of the error model)."""
    adapter = EXPECTED[name][0]()
    broken, correct = Target(adapter), NumpyAdapter()
    tally: dict[str, Counter] = {}

    @settings(max_examples=N_CASES, phases=[Phase.generate], database=None, deadline=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    @given(data=st.data())
    def sample(data):
        case = data.draw(cases(adapter, **GRADIENT_PLAN[name]))
        counts = tally.setdefault(case.config.dtype, Counter())
        j = judge_gradients(broken, case)
        if j.inconclusive:
            counts["inconclusive"] += 1
            return
        slip, right = _gradients(adapter, case), _gradients(correct, case)
        bars = {n: max(t.get("err_oracle") or 0.0, t.get("floor") or 0.0) for n, t in j.metrics["tensors"].items()}
        if not any(float(np.max(np.abs(slip[n] - right[n]), initial=0.0)) > bars[n] for n in slip):
            counts["not observable"] += 1
            return
        counts["pass" if j.ok else "fail"] += 1

    sample()
    return tally


@pytest.mark.parametrize("name", sorted(GRADIENT_PLAN))
def test_gradient_slips_fail_on_nearly_every_observable_case(name, record_property):
    tally = measure_gradients(name)
    assert sum(c["fail"] for c in tally.values()) > 0, f"{name}: no observable case drawn: {tally}"
    _assert_detected(name, tally, record_property)
