"""The reference's fast paths compute what its plain formulas say (spec/activations.md, spec/gradients.md).

- f' through the output (``Activation.derivative(x, y)``, used by the backward pass with the forward
  trace's values) is the registry derivative ``f'(x)`` bit for bit, in every dtype;
- the overflow-safe sigmoid (ACT-2) never overflows, in any dtype, and agrees with ``1 / (1 + exp(-x))``
  evaluated with the ``math`` module;
- the loop's weight gradients, one product over all (batch, step) rows, equal the sum over steps of
  :func:`reference.cell.lstm_step_backward`'s own per-step dU, dP and dW_hr (masks, peepholes, projection);
- a float32 run computes in float32 (its result is not the float64 result rounded once: NUM-5);
- the in-place operations never touch the caller's arrays, and a result is not overwritten by a later call
  (the reference memo keeps results by their inputs' content).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import reference.backward as backward_module
from reference import ACTIVATIONS, Config, lstm_backward, lstm_forward, parse_activation, random_weights
from reference.cell import lstm_step_backward

DTYPES = (np.float16, np.float32, np.float64)
WITH_OUTPUT_FORM = sorted(n for n, e in ACTIVATIONS.items() if e.dfn_y is not None)


def test_some_activations_have_an_output_form():
    """The backward pass relies on it for the default activations; an empty list would make the next test vacuous."""
    assert {"sigmoid", "tanh"} <= set(WITH_OUTPUT_FORM)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", WITH_OUTPUT_FORM)
def test_derivative_through_the_output_is_the_registry_derivative(name, dtype):
    act = parse_activation(name)
    x = np.concatenate([np.linspace(-12, 12, 97), [0.0, -0.0, 1e-8, -1e-8, 30.0, -30.0]]).astype(dtype)
    with np.errstate(all="ignore"):
        plain, through_y = act.derivative(x), act.derivative(x, act(x))
    assert through_y.dtype == dtype
    np.testing.assert_array_equal(through_y, plain)


@pytest.mark.parametrize("dtype", DTYPES)
def test_sigmoid_never_overflows_and_matches_the_formula(dtype):
    """ACT-2: no overflow anywhere (|x| up to the dtype's max and inf); within 2 ulps of the formula."""
    big = float(np.finfo(dtype).max)
    x = np.array([-big, -1e4, -800.0, -100.0, -30.0, -15.0, -5.0, -1.0, -1e-3, 0.0, 1e-3, 1.0, 5.0, 15.0, 30.0,
                  100.0, 800.0, 1e4, big], np.float64).clip(-big, big).astype(dtype)
    x = np.concatenate([x, np.array([-np.inf, np.inf], dtype)])
    with np.errstate(over="raise", invalid="raise", divide="raise", under="ignore"):
        got = parse_activation("sigmoid")(x)
    assert got.dtype == dtype

    def exact(v):
        return 1.0 / (1.0 + math.exp(-v)) if v > -700 else 0.0

    want = np.array([exact(float(v)) for v in x]).astype(dtype)
    tiny = float(np.finfo(dtype).smallest_subnormal)
    err = np.abs(got.astype(np.float64) - want.astype(np.float64))
    assert np.all(err <= 2 * np.spacing(np.abs(want)).astype(np.float64) + tiny), list(zip(x, got, want))


CASES = [  # (config kwargs, mask?)
    (dict(input_dim=3, units=4), False),
    (dict(input_dim=3, units=4, peepholes=True, cell_clip=0.8), True),
    (dict(input_dim=2, units=5, proj_size=3, bias_mode="double"), True),
    (dict(input_dim=2, units=3, bidirectional=True, num_layers=2, peepholes=True, proj_size=2), True),
    (dict(input_dim=2, units=3, input_forget=True, input_forget_reading="i-from-f", go_backwards=True), True),
]


@pytest.mark.parametrize("kw,masked", CASES)
def test_weight_gradients_are_the_sum_of_the_step_gradients(kw, masked, monkeypatch):
    """GRAD-1: each direction's dU, dP, dW_hr from lstm_backward == the sum over steps of what
    lstm_step_backward computes itself for each step, given the trace and step gradients the loop passed it."""
    cfg = Config(return_sequences=True, **kw)
    rng = np.random.default_rng(3)
    B, T = 3, 6
    w = random_weights(cfg, 4)
    x = rng.normal(size=(B, T, cfg.input_dim))
    mask = rng.random((B, T)) < 0.7 if masked else None
    g_out = rng.normal(size=lstm_forward(cfg, w, x, mask=mask).output.shape)
    calls = []

    def spy(config, lw, tr, dh, dc, **options):
        calls.append((lw, tr, dh.copy(), dc.copy()))
        return lstm_step_backward(config, lw, tr, dh, dc, **options)

    monkeypatch.setattr(backward_module, "lstm_step_backward", spy)
    grads = lstm_backward(cfg, w, x, g_out=g_out, mask=mask)
    per_direction: dict[int, list] = {}
    for lw, tr, dh, dc in calls:
        per_direction.setdefault(id(lw), []).append(lstm_step_backward(cfg, lw, tr, dh, dc, weight_gradients=True))
    assert len(per_direction) == cfg.num_layers * cfg.num_directions
    # lstm_backward walks layers top-down; within a layer, directions in order
    order = [(l, d) for l in reversed(range(cfg.num_layers)) for d in range(cfg.num_directions)]
    for (l, d), steps in zip(order, per_direction.values()):
        got = grads.weights.layers[l][d]
        for name, field in (("U", "dU"), ("P", "dP"), ("W_hr", "dW_hr")):
            parts = [getattr(s, field) for s in steps]
            if parts[0] is None:
                assert getattr(got, name) is None
                continue
            want = np.sum(parts, axis=0)
            np.testing.assert_allclose(getattr(got, name), want, rtol=1e-12, atol=1e-13 * np.abs(want).max(),
                                       err_msg=f"layer {l} direction {d} {name}")


def test_a_float32_run_computes_in_float32():
    """NUM-5: the float32 run's outputs and gradients are float32 and carry float32 rounding along the sequence
    (a float64 computation rounded once at the end would equal the float64 result rounded to float32)."""
    cfg = Config(input_dim=4, units=8, return_sequences=True)
    w = random_weights(cfg, 1)
    x = np.random.default_rng(2).normal(size=(2, 40, 4))
    g = np.random.default_rng(5).normal(size=(2, 40, 8))
    r32, r64 = lstm_backward(cfg, w, x, g_out=g, dtype="float32"), lstm_backward(cfg, w, x, g_out=g)
    for a32, a64 in ((r32.forward.output, r64.forward.output), (r32.x, r64.x), (r32.weights[0, 0].U, r64.weights[0, 0].U)):
        assert a32.dtype == np.float32
        assert np.any(a32 != a64.astype(np.float32))
        np.testing.assert_allclose(a32, a64, rtol=1e-3, atol=1e-4)


def test_calls_leave_their_inputs_alone_and_results_stay_put():
    cfg = Config(input_dim=3, units=4, peepholes=True, bias_mode="double", return_sequences=True, cell_clip=1.0)
    w = random_weights(cfg, 6)
    rng = np.random.default_rng(7)
    x, g = rng.normal(size=(2, 5, 3)), rng.normal(size=(2, 5, 4))
    init = (rng.normal(size=(2, 4)), rng.normal(size=(2, 4)))
    before = [a.copy() for a in (x, g, *init, *w.flat().values())]
    first = lstm_backward(cfg, w, x, g_out=g, initial_state=init)
    kept = [a.copy() for a in (first.forward.output, first.x, first.weights[0, 0].U, first.weights[0, 0].P)]
    lstm_backward(cfg, w, x + 1.0, g_out=-g, initial_state=init)
    lstm_forward(cfg, w, x * 2.0, initial_state=init)
    for a, b in zip(before, [x, g, *init, *w.flat().values()]):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(kept, (first.forward.output, first.x, first.weights[0, 0].U, first.weights[0, 0].P)):
        np.testing.assert_array_equal(a, b)
