"""The cell step on its own (reference/cell.py): a hand computation, and lstm_forward with T = 1.

The loop in forward.py only iterates ``lstm_step`` and applies masks/directions; these tests pin the step
itself, from a non-zero state, without going through the loop's zero initial state.
"""

from __future__ import annotations

import math

import numpy as np
from hypothesis import given
from ref_cases import SETTINGS, assert_close, case, configs, initial_state, seeds

from reference import Config, LayerWeights, input_preactivations, lstm_forward, lstm_step
from reference.cell import with_step_layout

DTYPES = ("float64", "float32", "float16")


def sig(z: float) -> float:
    return 1.0 / (1.0 + math.exp(-z))


def test_step_from_nonzero_state_by_hand():
    """GATE-1..GATE-4, PEEP-1, IFG-1, PROJ-1: u = 2, d = 1, H = p = 1, one step from h = 0.5, c = (0.4, -1.0).

    Unit 0 / unit 1 (gate: W, U, b): i: 0.5/-0.2, 0.3/0.1, 0.1/0.0 | f (unused, IFG-1): 9/9, 9/9, 9/9 |
    c: 0.8/0.6, -0.6/0.4, -0.2/0.1 | o: 0.2/-0.5, 0.7/0.3, 0.3/0.2; peepholes P_i = (0.5, -0.3),
    P_o = (0.2, 0.1), P_f = (9, 9) (unused); W_hr = (1.5, -0.5); x = 1.
      z_i = (0.5 + 0.15 + 0.1 + 0.5*0.4, -0.2 + 0.05 + 0 + 0.3) = (0.95, 0.15);  f = 1 - i
      z_c = (0.8 - 0.3 - 0.2, 0.6 + 0.2 + 0.1) = (0.3, 0.9)
      c' = (1 - i) * c + i * tanh(z_c);  z_o = (0.2 + 0.35 + 0.3, -0.5 + 0.15 + 0.2) + P_o * c'
      h' = W_hr @ (sig(z_o) * tanh(c'))
    """
    x, h, c = 1.0, 0.5, [0.4, -1.0]
    W = {"i": [0.5, -0.2], "f": [9, 9], "c": [0.8, 0.6], "o": [0.2, -0.5]}
    U = {"i": [0.3, 0.1], "f": [9, 9], "c": [-0.6, 0.4], "o": [0.7, 0.3]}
    b = {"i": [0.1, 0.0], "f": [9, 9], "c": [-0.2, 0.1], "o": [0.3, 0.2]}
    P = {"i": [0.5, -0.3], "o": [0.2, 0.1], "f": [9, 9]}
    W_hr = [1.5, -0.5]

    c_new, o_act = [], []
    for k in range(2):
        i = sig(W["i"][k] * x + U["i"][k] * h + b["i"][k] + P["i"][k] * c[k])
        g = math.tanh(W["c"][k] * x + U["c"][k] * h + b["c"][k])
        ck = (1 - i) * c[k] + i * g
        o = sig(W["o"][k] * x + U["o"][k] * h + b["o"][k] + P["o"][k] * ck)
        c_new.append(ck)
        o_act.append(o * math.tanh(ck))
    h_new = W_hr[0] * o_act[0] + W_hr[1] * o_act[1]

    cfg = Config(input_dim=1, units=2, proj_size=1, peepholes=True, input_forget=True)
    lw = LayerWeights(W=np.array([W[g] for g in "ifco"]).reshape(4, 2, 1),
                      U=np.array([U[g] for g in "ifco"]).reshape(4, 2, 1),
                      b=np.array([b[g] for g in "ifco"]), P=np.array([P[g] for g in "iof"]),
                      W_hr=np.array([W_hr]))
    zx = input_preactivations(lw, np.array([[x]]))
    h1, c1 = lstm_step(cfg, lw, zx, np.array([[h]]), np.array([c]))
    np.testing.assert_allclose(c1[0], c_new, rtol=0, atol=1e-15)
    np.testing.assert_allclose(h1[0, 0], h_new, rtol=0, atol=1e-15)


@SETTINGS
@given(cfg=configs(num_layers=1, bidirectional=False, go_backwards=False), seed=seeds)
def test_step_equals_forward_with_one_timestep(cfg: Config, seed: int):
    """GATE-1..GATE-4 with every option drawn: ``lstm_step`` from (h0, c0) == ``lstm_forward`` over T = 1,
    bit for bit in each dtype given the loop's input product and U layout, and to float64 rounding from a
    per-step input product and the canonical layout (BLAS rounds other operand shapes differently)."""
    weights, x = case(cfg, seed, batch=3, timesteps=1)
    state = initial_state(cfg, seed + 2, batch=3)
    for dt in DTYPES:
        ref = lstm_forward(cfg, weights, x, initial_state=state, dtype=dt)
        lw = weights[0, 0].astype(dt)
        h0, c0 = (np.asarray(s, dt) for s in state[0][0])
        zx = input_preactivations(lw, x.astype(dt))[:, 0]  # the loop's product over [B, T, d], as it rounds
        h1, c1 = lstm_step(cfg, with_step_layout(lw), zx, h0, c0)
        assert h1.dtype == c1.dtype == np.dtype(dt)
        np.testing.assert_array_equal(h1, ref.h[0][0], err_msg=f"h after one step, {dt}")
        np.testing.assert_array_equal(c1, ref.c[0][0], err_msg=f"c after one step, {dt}")
    lw = weights[0, 0]
    h1, c1 = lstm_step(cfg, lw, input_preactivations(lw, x[:, 0]), *state[0][0])
    ref = lstm_forward(cfg, weights, x, initial_state=state)
    assert_close(h1, ref.h[0][0], 1e-14, "h after one step, canonical U layout")
    assert_close(c1, ref.c[0][0], 1e-14, "c after one step, canonical U layout")


@SETTINGS
@given(cfg=configs(num_layers=1, bidirectional=False, go_backwards=False, return_sequences=True), seed=seeds)
def test_forward_without_mask_is_the_step_repeated(cfg: Config, seed: int):
    """STATE-2 at step granularity: with no mask, lstm_forward's output at t is h after t+1 calls of
    ``lstm_step``, each starting from the previous one's state."""
    weights, x = case(cfg, seed, batch=2, timesteps=4)
    ref = lstm_forward(cfg, weights, x)
    lw = with_step_layout(weights[0, 0])
    h, c = np.zeros((2, cfg.hidden_size)), np.zeros((2, cfg.units))
    for t in range(x.shape[1]):
        h, c = lstm_step(cfg, lw, input_preactivations(lw, x[:, t]), h, c)
        assert_close(h, ref.output[:, t], 1e-14, f"output at t={t}")
    assert_close(c, ref.c[0][0], 1e-14, "final c")
