"""Cases computed by hand, step by step, in plain scalar Python (math.exp / math.tanh), never through the
reference's own code. Each docstring writes the arithmetic with its rounded values; the test body
recomputes it exactly and compares with ``lstm_forward`` to 1e-15.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from reference import Config, LayerWeights, Weights, lstm_forward


def sig(z: float) -> float:
    return 1.0 / (1.0 + math.exp(-z))


def clip(z: float, m: float) -> float:
    return max(-m, min(m, z))


def one_unit_weights(W, U, b, b2=None, P=None) -> Weights:
    """u = d = 1; W, U, b as dicts over gates i, f, c, o; P over i, o, f (canonical peephole order)."""
    order = "ifco"
    lw = LayerWeights(W=np.array([W[k] for k in order], float).reshape(4, 1, 1),
                      U=np.array([U[k] for k in order], float).reshape(4, 1, 1),
                      b=np.array([b[k] for k in order], float).reshape(4, 1))
    if b2 is not None:
        lw.b2 = np.array([b2[k] for k in order], float).reshape(4, 1)
    if P is not None:
        lw.P = np.array([P[k] for k in "iof"], float).reshape(3, 1)
    return Weights([[lw]])


def test_one_unit_two_steps_by_hand():
    """GATE-1..GATE-4, ACT-1, ACT-2: u = d = 1, x = (1.0, 0.5), h0 = c0 = 0, sigmoid / tanh.

    Weights (gate: W, U, b): i: 0.5, 0.1, 0.1 | f: -0.3, 0.4, 1.0 | c: 0.8, -0.6, -0.2 | o: 0.2, 0.7, 0.3.

    Step 1 (x = 1, h = c = 0): z = W*x + b + U*h -> z_i = 0.6, z_f = 0.7, z_c = 0.6, z_o = 0.5.
      i = sig(0.6) = 0.645656, f = sig(0.7) = 0.668188, g = tanh(0.6) = 0.537050, o = sig(0.5) = 0.622459
      c1 = f*0 + i*g = 0.346749;  h1 = o * tanh(c1) = 0.622459 * 0.333466 = 0.207584
    Step 2 (x = 0.5, h = 0.207584, c = 0.346749):
      z_i = 0.25 + 0.1 + 0.1*0.207584 = 0.370758;  z_f = -0.15 + 1.0 + 0.4*0.207584 = 0.933033
      z_c = 0.4 - 0.2 - 0.6*0.207584 = 0.075450;   z_o = 0.1 + 0.3 + 0.7*0.207584 = 0.545309
      i = 0.591642, f = 0.717690, g = 0.075307, o = 0.633046
      c2 = 0.717690*0.346749 + 0.591642*0.075307 = 0.293413;  h2 = 0.633046 * tanh(0.293413) = 0.180591
    """
    W = dict(i=0.5, f=-0.3, c=0.8, o=0.2)
    U = dict(i=0.1, f=0.4, c=-0.6, o=0.7)
    b = dict(i=0.1, f=1.0, c=-0.2, o=0.3)
    xs = [1.0, 0.5]

    h = c = 0.0
    hs, cs = [], []
    for x in xs:
        zi = W["i"] * x + b["i"] + U["i"] * h
        zf = W["f"] * x + b["f"] + U["f"] * h
        zc = W["c"] * x + b["c"] + U["c"] * h
        zo = W["o"] * x + b["o"] + U["o"] * h
        i, f, g, o = sig(zi), sig(zf), math.tanh(zc), sig(zo)
        c = f * c + i * g
        h = o * math.tanh(c)
        hs.append(h)
        cs.append(c)
    # The docstring's rounded arithmetic agrees with the exact scalar computation.
    assert abs(hs[0] - 0.207584) < 1e-6 and abs(cs[0] - 0.346749) < 1e-6
    assert abs(hs[1] - 0.180591) < 1e-6 and abs(cs[1] - 0.293413) < 1e-6

    cfg = Config(input_dim=1, units=1, return_sequences=True)
    r = lstm_forward(cfg, one_unit_weights(W, U, b), np.array(xs).reshape(1, 2, 1))
    np.testing.assert_allclose(r.output.reshape(2), hs, rtol=0, atol=1e-15)
    np.testing.assert_allclose(r.h[0][0].item(), hs[1], rtol=0, atol=1e-15)
    np.testing.assert_allclose(r.c[0][0].item(), cs[1], rtol=0, atol=1e-15)


@pytest.mark.parametrize("reading", ["gate-inputs", "gate-inputs-and-cell"])
def test_peepholes_clip_double_bias_by_hand(reading):
    """PEEP-1, CLIP-1, GATE-1 (double bias): u = d = 1, clip = 1.0, x = (1.0, 0.7, 1.2), h0 = c0 = 0.

    W: i 0.6, f 0.5, c 0.9, o -0.4; U: i -0.3, f 0.2, c 0.5, o 0.6; b + b2 (summed): i 0.2-0.1, f 0.4+0.3,
    c 0.1+0.2, o 0.0+0.5; peepholes P_i = 0.5, P_o = -2.0, P_f = -0.8 (i, f see c_{t-1}, o sees c_t).
    Every gate's activation input, *peephole term included*, is clipped to [-1, 1]; the stored c_t is
    never clipped. Reading 'gate-inputs' (ONNX Runtime 1.32) leaves tanh(c_t) alone; reading
    'gate-inputs-and-cell' (the ONNX text, the default) computes tanh(clip(c_t)).

    Step 1: z = (0.7, 1.2, 1.2, 0.1) for (i, f, c, o); c0 = 0 so the i/f peepholes add 0.
      zi = 0.7, zf = clip(1.2) = 1, zc = clip(1.2) = 1 -> c1 = sig(1)*0 + sig(0.7)*tanh(1) = 0.508888
      zo = clip(0.1 - 2*0.508888 = -0.917776) = -0.917776 -> h1 = sig(zo)*tanh(c1) = 0.133880
    Step 2: z_f = 0.35 + 0.7 + 0.2*0.133880 = 1.076776; zf = clip(1.076776 - 0.8*0.508888) = 0.669666
      (clipping z_f *before* adding the peephole would give 1 - 0.407110 = 0.592890: a different result);
      zi = 0.479836 + 0.5*0.508888 = 0.734280; zc = 0.996940 -> c2 = 0.850365, zo = clip(-1.400402) = -1,
      h2 = 0.185908
    Step 3: zi = clip(0.764227 + 0.5*0.850365 = 1.189) = 1, zf = 0.656890, zc = clip(1.472954) = 1,
      c3 = 1.116787 (> clip, kept), zo = clip(-2.10203) = -1, h3 = sig(-1)*tanh(1.116787) = 0.216887
      ('gate-inputs'), h3 = sig(-1)*tanh(clip(1.116787)) = sig(-1)*tanh(1) = 0.204824 ('gate-inputs-and-cell').
    Steps 1 and 2 agree: |c1|, |c2| < 1, where the readings coincide.
    """
    W = dict(i=0.6, f=0.5, c=0.9, o=-0.4)
    U = dict(i=-0.3, f=0.2, c=0.5, o=0.6)
    b = dict(i=0.2, f=0.4, c=0.1, o=0.0)
    b2 = dict(i=-0.1, f=0.3, c=0.2, o=0.5)
    P = dict(i=0.5, o=-2.0, f=-0.8)
    m = 1.0
    xs = [1.0, 0.7, 1.2]

    h = c = 0.0
    hs, cs = [], []
    for x in xs:
        zi = clip(W["i"] * x + (b["i"] + b2["i"]) + U["i"] * h + P["i"] * c, m)
        zf = clip(W["f"] * x + (b["f"] + b2["f"]) + U["f"] * h + P["f"] * c, m)
        zc = clip(W["c"] * x + (b["c"] + b2["c"]) + U["c"] * h, m)
        c = sig(zf) * c + sig(zi) * math.tanh(zc)
        zo = clip(W["o"] * x + (b["o"] + b2["o"]) + U["o"] * h + P["o"] * c, m)
        h = sig(zo) * math.tanh(clip(c, m) if reading == "gate-inputs-and-cell" else c)
        hs.append(h)
        cs.append(c)
    h3 = 0.204824 if reading == "gate-inputs-and-cell" else 0.216887
    assert [round(v, 6) for v in hs] == [0.13388, 0.185908, h3]
    assert round(cs[-1], 6) == 1.116787 and cs[-1] > m  # the cell state exceeds the clip and is kept

    cfg = Config(input_dim=1, units=1, return_sequences=True, bias_mode="double", peepholes=True, cell_clip=m,
                 clip_reading=reading)
    r = lstm_forward(cfg, one_unit_weights(W, U, b, b2, P), np.array(xs).reshape(1, 3, 1))
    np.testing.assert_allclose(r.output.reshape(3), hs, rtol=0, atol=1e-15)
    np.testing.assert_allclose(r.c[0][0].item(), cs[-1], rtol=0, atol=1e-15)


def test_projection_input_forget_hard_sigmoid_by_hand():
    """PROJ-1, IFG-1, ACT-4, ACT-5: u = 2 cell units, projection to p = 1, d = 1, two steps, h0 = c0 = 0.

    recurrent_activation = Keras 3 hard_sigmoid hs(z) = clip(z/6 + 0.5, 0, 1); activation = relu.
    input_forget: f = 1 - i (the forget weights are present but unused).
    Per unit k: z_gk = W_gk * x + b_gk + U_gk * h (h is the 1-d projected state);
    i_k = hs(z_ik), g_k = relu(z_ck), c_k = (1 - i_k) c_k + i_k g_k, o_k = hs(z_ok), m_k = o_k relu(c_k),
    h = W_hr[0] . m.
    Step 1 (x = 2): unit 0: z_i = 0.8+0.1 = 0.9 -> i = 0.65; z_c = 1.0+0.0 = 1.0 -> g = 1.0; c = 0.65;
      z_o = 0.6+0.2 = 0.8 -> o = 0.633333; m0 = 0.411667.
      unit 1: z_i = -1.0+0.3 = -0.7 -> i = 0.383333; z_c = 0.6-0.1 = 0.5 -> g = 0.5; c = 0.191667;
      z_o = 2.4-0.1 = 2.3 -> o = 0.883333; m1 = 0.169306.  h = 0.7*0.411667 - 0.5*0.169306 = 0.203514.
    Step 2 (x = -1, h = 0.203514): unit 0: z_i = -0.4+0.1+0.2*h = -0.259297 -> i = 0.456784;
      z_c = -0.5+0.0+0.9*h = -0.316837 -> g = 0; c = 0.543216*0.65 = 0.353091; z_o = -0.3+0.2-0.4*h = -0.181406
      -> o = 0.469766; m0 = 0.165870.
      unit 1: z_i = 0.5+0.3-0.6*h = 0.677892 -> i = 0.612982; z_c = -0.3-0.1+1.5*h = -0.094729 -> g = 0;
      c = 0.387018*0.191667 = 0.074178; z_o = -1.2-0.1+0.3*h = -1.238946 -> o = 0.293509; m1 = 0.021772.
      h = 0.7*0.165870 - 0.5*0.021772 = 0.105223.
    """
    hs_ = lambda z: min(max(z / 6.0 + 0.5, 0.0), 1.0)  # noqa: E731
    relu = lambda z: max(z, 0.0)  # noqa: E731
    # [gate][unit]; the forget gate's numbers are deliberately large: with input_forget they must not matter.
    W = {"i": [0.4, -0.5], "f": [5.0, -5.0], "c": [0.5, 0.3], "o": [0.3, 1.2]}
    U = {"i": [0.2, -0.6], "f": [3.0, 3.0], "c": [0.9, 1.5], "o": [-0.4, 0.3]}
    b = {"i": [0.1, 0.3], "f": [2.0, -2.0], "c": [0.0, -0.1], "o": [0.2, -0.1]}
    W_hr = [0.7, -0.5]
    xs = [2.0, -1.0]

    h, c = 0.0, [0.0, 0.0]
    out = []
    for x in xs:
        m = []
        for k in range(2):
            i = hs_(W["i"][k] * x + b["i"][k] + U["i"][k] * h)
            g = relu(W["c"][k] * x + b["c"][k] + U["c"][k] * h)
            c[k] = (1.0 - i) * c[k] + i * g
            o = hs_(W["o"][k] * x + b["o"][k] + U["o"][k] * h)
            m.append(o * relu(c[k]))
        h = W_hr[0] * m[0] + W_hr[1] * m[1]
        out.append(h)
    assert [round(v, 6) for v in out] == [0.203514, 0.105223]

    cfg = Config(input_dim=1, units=2, proj_size=1, input_forget=True, recurrent_activation="hard_sigmoid_keras3",
                 activation="relu", return_sequences=True)
    lw = LayerWeights(W=np.array([W[g] for g in "ifco"]).reshape(4, 2, 1),
                      U=np.array([U[g] for g in "ifco"]).reshape(4, 2, 1),
                      b=np.array([b[g] for g in "ifco"]), W_hr=np.array([W_hr]))
    r = lstm_forward(cfg, Weights([[lw]]), np.array(xs).reshape(1, 2, 1))
    np.testing.assert_allclose(r.output.reshape(2), out, rtol=0, atol=1e-15)
    np.testing.assert_allclose(r.c[0][0].reshape(2), c, rtol=0, atol=1e-15)
    assert r.h[0][0].shape == (1, 1) and r.c[0][0].shape == (1, 2)  # SHAPE-6: h has p, c has u
