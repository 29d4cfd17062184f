"""Exact properties of the reference backward pass (spec/gradients.md GRAD-2..GRAD-4) and its API.

Masked steps (GRAD-2), carried state (GRAD-3) and the clip sub-gradient (GRAD-4) are checked as identities
that follow from the forward rules, bit for bit where the arithmetic is the same; the finite-difference
checks of every option are in test_backward_fd.py.
"""

from __future__ import annotations

import numpy as np
import pytest
from ref_cases import initial_state, inputs

from reference import Config, LayerWeights, lstm_backward, lstm_forward, random_weights, to_torch
from reference.cell import input_preactivations, lstm_step_backward, lstm_step_trace

MASK = np.array([[True, False, True, True, False], [False] * 5, [True, True, True, False, False]])


def _case(cfg: Config, seed: int = 0, batch: int = 3, steps: int = 5):
    w = random_weights(cfg, seed, scale=1.5)
    x = inputs(cfg, seed + 1, batch, steps)
    r = lstm_forward(cfg, w, x)
    rng = np.random.default_rng(seed + 3)
    out = r.output
    g_out = tuple(rng.normal(size=o.shape) for o in out) if isinstance(out, tuple) else rng.normal(size=out.shape)
    return w, x, initial_state(cfg, seed + 2, batch), g_out


@pytest.mark.parametrize("masked_output", ["carry", "zero"])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_masked_inputs_get_exactly_zero_gradient(masked_output, bidirectional):
    """GRAD-2, MASK-1: an input at a masked step never reaches the output or the state: its gradient is 0."""
    cfg = Config(input_dim=2, units=3, num_layers=2, bidirectional=bidirectional, return_sequences=True)
    w, x, init, g_out = _case(cfg)
    g = lstm_backward(cfg, w, x, g_out=g_out, mask=MASK, initial_state=init, masked_output=masked_output,
                      g_h=[[np.ones((3, 3))] * cfg.num_directions] * 2)
    assert np.all(g.x[~MASK] == 0)
    assert np.all(g.x[MASK] != 0)


@pytest.mark.parametrize("empty_rows", ["keep-initial", "zero-state"])
def test_fully_masked_row_passes_its_state_gradient_through(empty_rows):
    """GRAD-2, MASK-3: a row with no valid step keeps its initial state (``keep-initial``: dL/dh0 = g_h and
    dL/dc0 = g_c exactly) or ends at a constant zero state (``zero-state``: no gradient reaches h0, c0)."""
    cfg = Config(input_dim=2, units=3, proj_size=2, return_sequences=True)
    w, x, init, g_out = _case(cfg)
    g_h, g_c = np.full((3, 2), 0.75), np.full((3, 3), -1.25)
    g = lstm_backward(cfg, w, x, g_out=g_out, g_h=g_h, g_c=g_c, mask=MASK, initial_state=init,
                      empty_rows=empty_rows)
    expect_h, expect_c = (g_h[1], g_c[1]) if empty_rows == "keep-initial" else (0 * g_h[1], 0 * g_c[1])
    assert np.array_equal(g.h0[0][0][1], expect_h) and np.array_equal(g.c0[0][0][1], expect_c)
    assert np.all(g.x[1] == 0)


def test_masked_rows_add_nothing_to_the_weight_gradients():
    """GRAD-2: the weight gradients of a batch equal those of the batch without its fully masked row."""
    cfg = Config(input_dim=2, units=3, peepholes=True, proj_size=1, bias_mode="double", return_sequences=True)
    w, x, init, g_out = _case(cfg)
    full = lstm_backward(cfg, w, x, g_out=g_out, mask=MASK, initial_state=init)
    keep = [0, 2]
    part = lstm_backward(cfg, w, x[keep], g_out=g_out[keep], mask=MASK[keep],
                         initial_state=[[(h[keep], c[keep]) for h, c in init[0]]])
    for name, arr in full.weights.layers[0][0].arrays().items():
        np.testing.assert_allclose(arr, getattr(part.weights.layers[0][0], name), rtol=1e-13, atol=1e-15, err_msg=name)


def test_carry_rule_sends_a_masked_outputs_gradient_to_the_last_valid_output():
    """GRAD-2, MASK-2 'carry': y_t = y_{t-1} at a masked step, so a loss weight there acts on the last valid
    step's output (and on nothing for a row with no valid step before it)."""
    cfg = Config(input_dim=2, units=2, return_sequences=True)
    w, x, init, _ = _case(cfg)
    at_masked, at_valid = np.zeros((3, 5, 2)), np.zeros((3, 5, 2))
    at_masked[0, 4] = at_valid[0, 3] = [0.5, -2.0]  # row 0: step 4 masked, step 3 its last valid step
    a = lstm_backward(cfg, w, x, g_out=at_masked, mask=MASK, initial_state=init)
    b = lstm_backward(cfg, w, x, g_out=at_valid, mask=MASK, initial_state=init)
    assert np.array_equal(a.x, b.x) and np.array_equal(a.h0[0][0], b.h0[0][0])
    z = lstm_backward(cfg, w, x, g_out=at_masked, mask=MASK, initial_state=init, masked_output="zero")
    assert np.all(z.x == 0) and np.all(z.weights.layers[0][0].W == 0)


@pytest.mark.parametrize("masked", [False, True])
def test_state_gradient_chains_across_calls(masked):
    """GRAD-3, STATE-2: back-propagating chunk 2 from chunk 1's carried state, then chunk 1 with chunk 2's
    initial-state gradients as its g_h, g_c, gives the gradients of one call over both chunks."""
    cfg = Config(input_dim=2, units=3, num_layers=2, proj_size=2, peepholes=True, return_sequences=True)
    w, x, init, g_out = _case(cfg, steps=6)
    mask = np.concatenate([MASK, MASK[:, :1]], axis=1) if masked else None
    rng = np.random.default_rng(9)
    g_h = [[rng.normal(size=(3, 2))] for _ in range(2)]
    g_c = [[rng.normal(size=(3, 3))] for _ in range(2)]
    kw = dict(masked_output="zero")  # the 'carry' rule's previous output does not cross calls (STATE-2)
    whole = lstm_backward(cfg, w, x, g_out=g_out, g_h=g_h, g_c=g_c, mask=mask, initial_state=init, **kw)
    T1 = 4
    m1, m2 = (None, None) if mask is None else (mask[:, :T1], mask[:, T1:])
    first = lstm_forward(cfg, w, x[:, :T1], mask=m1, initial_state=init, **kw)
    carried = [[(first.h[l][0], first.c[l][0])] for l in range(2)]
    g2 = lstm_backward(cfg, w, x[:, T1:], g_out=g_out[:, T1:], g_h=g_h, g_c=g_c, mask=m2, initial_state=carried, **kw)
    g1 = lstm_backward(cfg, w, x[:, :T1], g_out=g_out[:, :T1], g_h=g2.h0, g_c=g2.c0, mask=m1, initial_state=init, **kw)
    np.testing.assert_allclose(np.concatenate([g1.x, g2.x], axis=1), whole.x, rtol=1e-12, atol=1e-14)
    for l in range(2):
        np.testing.assert_allclose(g1.h0[l][0], whole.h0[l][0], rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(g1.c0[l][0], whole.c0[l][0], rtol=1e-12, atol=1e-14)
        for name, arr in whole.weights.layers[l][0].arrays().items():
            chained = getattr(g1.weights.layers[l][0], name) + getattr(g2.weights.layers[l][0], name)
            np.testing.assert_allclose(chained, arr, rtol=1e-12, atol=1e-14, err_msg=f"{name}[{l}]")


@pytest.mark.parametrize("reading", ["gate-inputs-and-cell", "gate-inputs"])
def test_clip_sub_gradient_is_zero_at_and_beyond_the_bound(reading):
    """GRAD-4, CLIP-1: d clip(z)/dz = 1 strictly inside (-c, c), 0 at +-c and beyond (one step, by hand)."""
    cfg = Config(input_dim=1, units=1, cell_clip=0.5, clip_reading=reading)
    lw = LayerWeights(W=np.zeros((4, 1, 1)), U=np.zeros((4, 1, 1)), b=np.array([[0.2], [0.3], [0.5], [-0.5]]))
    h0, c0 = np.zeros((3, 1)), np.array([[0.0], [0.6], [-0.5]])  # c_t ends inside, beyond, at -0.5
    b_c = np.array([0.49, 0.5, 0.7])  # z_c inside, at, beyond the bound, one row each
    zx = input_preactivations(lw, np.zeros((3, 1)))
    zx[:, 2, 0] = b_c
    tr = lstm_step_trace(cfg, lw, zx, h0, c0)
    sg = lstm_step_backward(cfg, lw, tr, np.ones((3, 1)), np.zeros((3, 1)))
    assert sg.dz[0, 2, 0] != 0 and sg.dz[1, 2, 0] == 0 and sg.dz[2, 2, 0] == 0  # z_c
    assert np.all(sg.dz[:, 3, 0] == 0)  # z_o = -0.5 exactly: at the bound
    through_cell = sg.dz[:, 0, 0]  # d/dz_i reaches the loss only through c_t -> act(clip(c_t))
    if reading == "gate-inputs-and-cell":
        assert abs(tr.c[1, 0]) > 0.5 and through_cell[1] == 0
    else:
        assert through_cell[1] != 0


@pytest.mark.parametrize("reading", ["f-from-i", "i-from-f"])
def test_unused_gate_weights_of_a_coupled_gate_get_zero_gradient(reading):
    """IFG-1: the derived gate's own weights, bias and peephole are unused: their gradients are exactly 0."""
    cfg = Config(input_dim=2, units=2, input_forget=True, input_forget_reading=reading, peepholes=True,
                 bias_mode="double")
    w, x, init, g_out = _case(cfg)
    g = lstm_backward(cfg, w, x, g_out=g_out, initial_state=init).weights.layers[0][0]
    gate, peep = (1, 2) if reading == "f-from-i" else (0, 0)  # canonical row of the unused gate; P rows i, o, f
    for arr in (g.W, g.U, g.b, g.b2):
        assert np.all(arr[gate] == 0) and np.any(arr[1 - gate] != 0)
    assert np.all(g.P[peep] == 0)


def test_double_bias_shares_one_gradient_and_the_layout_converts_gradients():
    """GATE-1, LAYOUT-3: b and b2 are summed, so d/db = d/db2; gradients are canonical tensors and go through
    the layouts like weights (torch bias_ih / bias_hh)."""
    cfg = Config(input_dim=2, units=3, bias_mode="double", num_layers=2, bidirectional=True)
    w, x, init, g_out = _case(cfg)
    g = lstm_backward(cfg, w, x, g_out=g_out, initial_state=init)
    sd = to_torch(g.weights, cfg)
    for l in range(2):
        for d in range(2):
            lw = g.weights.layers[l][d]
            assert np.array_equal(lw.b, lw.b2)
            assert sd[f"bias_ih_l{l}{'_reverse' if d else ''}"].shape == (12,)


def test_backward_forward_is_lstm_forward_bit_for_bit():
    """GRAD-1: the gradients belong to the forward run of lstm_forward (the same numbers, not a re-derivation)."""
    cfg = Config(input_dim=3, units=3, bidirectional=True, merge_mode="ave", peepholes=True, cell_clip=0.6,
                 return_sequences=True)
    w, x, init, g_out = _case(cfg)
    kw = dict(mask=MASK, initial_state=init, masked_output="zero", last_output="last-valid")
    g = lstm_backward(cfg, w, x, g_out=g_out, **kw)
    r = lstm_forward(cfg, w, x, **kw)
    assert np.array_equal(g.forward.output, r.output)
    assert all(np.array_equal(a, b) for ra, rb in ((g.forward.h, r.h), (g.forward.c, r.c))
               for la, lb in zip(ra, rb) for a, b in zip(la, lb))


@pytest.mark.parametrize("dtype", ["float32", "float16"])
def test_gradients_in_the_dtype_under_test(dtype):
    """NUM-5, GRAD-1: dtype='float32' computes every gradient in float32 (close to float64's)."""
    cfg = Config(input_dim=2, units=3, proj_size=2, num_layers=2, return_sequences=True)
    w, x, init, g_out = _case(cfg)
    g64 = lstm_backward(cfg, w, x, g_out=g_out, initial_state=init)
    g = lstm_backward(cfg, w, x, g_out=g_out, initial_state=init, dtype=dtype)
    tol = 1e-4 if dtype == "float32" else 5e-2
    assert g.x.dtype == np.dtype(dtype) and g.h0[1][0].dtype == np.dtype(dtype)
    np.testing.assert_allclose(g.x, g64.x, rtol=tol, atol=tol)
    for name, arr in g.weights.layers[1][0].arrays().items():
        assert arr.dtype == np.dtype(dtype), name
        np.testing.assert_allclose(arr, getattr(g64.weights.layers[1][0], name), rtol=tol, atol=tol * 10, err_msg=name)


def test_bad_loss_weights_raise_naming_the_argument():
    """The API refuses misshaped loss weights with one message naming the argument and the expected shape."""
    cfg = Config(input_dim=2, units=2, bidirectional=True, merge_mode="none")
    w, x, _, g_out = _case(cfg)
    with pytest.raises(ValueError, match="g_out: merge_mode 'none'"):
        lstm_backward(cfg, w, x, g_out=g_out[0])
    with pytest.raises(ValueError, match=r"g_out: shape \(3, 5\)"):
        lstm_backward(cfg, w, x, g_out=(np.zeros((3, 5)), g_out[1]))
    with pytest.raises(ValueError, match=r"g_h\[0\]\[1\]: shape"):
        lstm_backward(cfg, w, x, g_out=g_out, g_h=[[np.zeros((3, 2)), np.zeros((2, 2))]])
    with pytest.raises(ValueError, match="g_c: expected"):
        lstm_backward(cfg, w, x, g_out=g_out, g_c=[[np.zeros((3, 2))]])
    with pytest.raises(ValueError, match="masked_output"):
        lstm_backward(cfg, w, x, g_out=g_out, masked_output="skip")
