"""The gradient error model (conformance/harness/gradient_errors.py, spec/gradients.md GRAD-1): one ratio per
tensor, a failing conclusive tensor fails the case whatever the others are, NUM-2/NUM-6 per tensor, the
whole case inconclusive near a kink; and the judge end to end on the numpy adapter with a slip injected."""

from __future__ import annotations

import dataclasses

import numpy as np

from conformance.adapters.numpy_ref import NumpyAdapter
from conformance.harness import errors
from conformance.harness.gradient_errors import compare_gradients, gradient_tensors, near_kink
from conformance.harness.gradient_judge import judge_gradient_output, judge_gradients
from conformance.harness.judge import Target
from conformance.harness.strategies import Case
from reference import Config, lstm_backward, random_weights
from reference.forward import normalise_initial_state, prepare_call, run_layers

RNG = np.random.default_rng(0)


def _tensors(scale_w: float = 1.0) -> dict:
    return {"x": RNG.normal(size=(2, 3, 4)), "h0[0,0]": RNG.normal(size=(2, 5)) * 1e-6,
            "W[0,0]": RNG.normal(size=(4, 5, 4)) * scale_w}


def _oracles(ref: dict, rel: float) -> list[dict]:
    return [{n: a * (1 + rel * RNG.choice([-1.0, 1.0], size=a.shape)) for n, a in ref.items()} for _ in range(2)]


def test_a_small_tensor_is_judged_at_its_own_scale():
    """An error of 1e-9 in a tensor of scale 1e-6 is 0.1 % there (a fail), while one flat vector with a floor
    set by the largest tensor (scale 1e3) would not see it."""
    ref = _tensors(scale_w=1e3)
    oracles = _oracles(ref, 1e-13)
    impl = {n: a.copy() for n, a in ref.items()}
    impl["h0[0,0]"] = impl["h0[0,0]"] + 1e-9
    cmp = compare_gradients(impl, ref, oracles, "float64")
    assert not cmp.passed and not cmp.inconclusive and cmp.worst == "h0[0,0]", cmp
    assert cmp.tensors["x"].passed and cmp.tensors["W[0,0]"].passed
    flat = errors.compare(np.concatenate([a.ravel() for a in impl.values()]),
                          np.concatenate([a.ravel() for a in ref.values()]),
                          [np.concatenate([a.ravel() for a in o.values()]) for o in oracles], "float64")
    assert flat.passed, "the flattened comparison was meant to miss it (why the spec judges per tensor)"


def test_exact_gradients_pass_and_a_missing_tensor_fails():
    ref = _tensors()
    oracles = _oracles(ref, 1e-12)
    assert compare_gradients(dict(ref), ref, oracles, "float64").passed
    cmp = compare_gradients({n: a for n, a in ref.items() if n != "W[0,0]"}, ref, oracles, "float64")
    assert not cmp.passed and cmp.worst == "W[0,0]" and cmp.missing == ("W[0,0]",)


def test_an_inconclusive_tensor_does_not_hide_a_failing_one():
    ref = _tensors()
    oracles = _oracles(ref, 1e-12)
    oracles[0]["x"] = ref["x"] * (1 + 1e-3)  # roundings disagree in the top third of the mantissa: NUM-6
    impl = dict(ref)
    impl["W[0,0]"] = ref["W[0,0]"] * 1.01
    cmp = compare_gradients(impl, ref, oracles, "float64")
    assert cmp.tensors["x"].inconclusive.startswith("NUM-6")
    assert not cmp.passed and not cmp.inconclusive and cmp.worst == "W[0,0]"
    cmp = compare_gradients(dict(ref), ref, oracles, "float64")
    assert not cmp.passed and cmp.inconclusive.startswith("NUM-6") and "gradient x" in cmp.inconclusive


def test_forward_out_of_range_makes_the_case_inconclusive():
    ref = {"forward": np.array([1.0, np.inf]), **_tensors()}
    cmp = compare_gradients(dict(ref), ref, _oracles(ref, 1e-12), "float32")
    assert not cmp.passed and cmp.inconclusive.startswith("NUM-2") and cmp.worst == "forward"


def _tapes(config, weights, x, dtype):
    dt, xd, mask = prepare_call(config, weights, x, None, None, "carry", "last-step", "keep-initial", dtype)
    tapes: list = []
    run_layers(config, weights.astype(dt), xd, mask, normalise_initial_state(config, None, x.shape[0], dt), "carry",
               "last-step", "keep-initial", tapes)
    return tapes


def test_near_kink_flags_an_input_on_a_kink_and_only_with_kinks():
    cfg = Config(input_dim=1, units=1, activation="relu", return_sequences=True)
    w = random_weights(cfg, 1)
    lw = w.layers[0][0]
    lw.W[:], lw.U[:], lw.b[:] = 0.0, 0.0, 0.0
    lw.W[2, 0, 0] = 1.0  # z_c = x: relu's kink at 0 is hit by x = 0
    x = np.array([[[0.5], [0.0], [0.7]]])
    reason = near_kink(cfg, _tapes(cfg, w, x, "float64"), [_tapes(cfg, w, x, "float32")], "float32")
    assert reason.startswith("GRAD-1: near a kink: z_c = 0") and "step 1" in reason, reason
    far = np.array([[[0.5], [0.4], [0.7]]])
    assert near_kink(cfg, _tapes(cfg, w, far, "float64"), [_tapes(cfg, w, far, "float32")], "float32") == ""
    smooth = cfg.replace(activation="tanh")
    assert near_kink(smooth, _tapes(smooth, w, x, "float64"), [], "float32") == ""


def test_clip_bounds_are_kinks_of_the_values_before_the_clip():
    """GRAD-4: a gate input exactly on the bound is flagged; gate inputs clipped far beyond it and a cell state
    growing past it between steps are not (the test reads the values before the clip)."""
    cfg = Config(input_dim=1, units=1, cell_clip=3.0, return_sequences=True)
    w = random_weights(cfg, 2)
    lw = w.layers[0][0]
    lw.W[:], lw.U[:], lw.b[:] = 0.0, 0.0, 10.0  # z_i = z_f = z_c = 10, clipped to 3: c_t = 0.95, 1.85, 2.71, 3.53
    lw.W[3, 0, 0], lw.b[3] = 1.0, 0.0  # z_o = x
    on = np.array([[[0.5], [3.0], [0.7], [0.2]]])
    reason = near_kink(cfg, _tapes(cfg, w, on, "float64"), [_tapes(cfg, w, on, "float32")], "float32")
    assert reason.startswith("GRAD-4: near a kink: z_o = 3") and "step 1" in reason, reason
    off = np.array([[[0.5], [0.4], [0.7], [0.2]]])
    cs = [float(s.c[0, 0]) for s in _tapes(cfg, w, off, "float64")[0][0].steps]
    assert cs[2] < 3.0 < cs[3], cs  # c_t passes the bound between steps, clipped inside act from then on
    assert near_kink(cfg, _tapes(cfg, w, off, "float64"), [_tapes(cfg, w, off, "float32")], "float32") == ""


def _case(config: Config, seed: int = 3, **kw) -> Case:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(2, 6, config.input_dim))
    return Case(config, random_weights(config, rng), x, seed=seed, extra={"cotangent_seed": seed + 1}, **kw)


def test_judge_passes_the_reference_and_fails_a_wrong_tensor_naming_it():
    cfg = Config(input_dim=3, units=4, return_sequences=True, dtype="float32")
    case = _case(cfg)
    target = Target(NumpyAdapter())
    assert judge_gradients(target, case).ok
    adapter = target.adapter
    handle = adapter.build(cfg, case.weights)
    from conformance.harness.gradient_judge import cotangents, gradient_oracles, gradient_reference, initial_state_or_zeros

    g_out, g_h, g_c = cotangents(case)
    got = adapter.gradients(handle, case.x, g_out=g_out, g_h=g_h, g_c=g_c, initial_state=initial_state_or_zeros(case))
    got.weights.layers[0][0].U = got.weights.layers[0][0].U * 1.001  # a 0.1 % slip in the recurrent kernel's gradient
    j = judge_gradient_output(case, got, gradient_reference(case), gradient_oracles(case))
    assert not j.ok and not j.inconclusive and j.metrics["tensor"] == "U[0,0]" and j.implicated == ["GRAD-1"], j
    assert "gradient U[0,0]" in j.message


def test_cotangents_weight_what_the_case_says():
    cfg = Config(input_dim=2, units=3, return_sequences=True)
    case = _case(cfg)
    only_out = dataclasses.replace(case, extra={**case.extra, "cotangents": "output"})
    ref = lstm_backward(cfg, case.weights, case.x, g_out=np.zeros((2, 6, 3)), g_h=None, g_c=None)
    from conformance.harness.gradient_judge import cotangents, gradient_reference

    g_out, g_h, g_c = cotangents(only_out)
    assert np.all(g_h[0][0] == 0) and np.all(g_c[0][0] == 0) and np.any(g_out != 0)
    assert not np.array_equal(gradient_reference(only_out).x, ref.x)
    assert set(gradient_tensors(ref.x, ref.h0, ref.c0, ref.weights)) == {"x", "h0[0,0]", "c0[0,0]", "W[0,0]",
                                                                         "U[0,0]", "b[0,0]"}


def test_a_subnormal_gradient_error_is_measured_not_raised():
    """Gradients after long forgetting reach 1e-320: err / scale underflows to 0 in the effective bits (NUM-5);
    it was a ValueError (math domain error) that crashed a correct backend's check."""
    ref = {"h0[0,0]": np.array([0.0, 20.0]), "x": np.array([1.0, 2.0])}
    impl = {"h0[0,0]": np.array([1e-320, 20.0]), "x": np.array([1.0, 2.0])}
    cmp = compare_gradients(impl, ref, [dict(ref)], "float64")
    assert cmp.passed and cmp.tensors["h0[0,0]"].bits == 53.0
