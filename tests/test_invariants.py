"""Invariants of the reference forward pass (spec/options.md, spec/shapes.md, spec/numerics.md).

Each property relates two runs of ``lstm_forward`` that a correct LSTM must make agree (or differ), so
no expected number is taken from the reference itself. Weights come from ``random_weights`` (asymmetric
across gates), configs and seeds from hypothesis.
"""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from reference import (GATES, Config, LayerWeights, Weights, keras_default_weights, lengths_to_mask, lstm_forward,
                       output_shapes, random_weights, to_keras)
from ref_cases import SETTINGS, assert_close, case, configs, initial_state, inputs, seeds

TOL = 1e-12  # float64 runs that differ only in how the same sums are grouped


def _seq(cfg: Config) -> Config:
    return cfg.replace(return_sequences=True)


def _outs(r) -> tuple:
    """The output as a tuple of arrays (merge_mode 'none' already gives two)."""
    return r.output if isinstance(r.output, tuple) else (r.output,)


# ---- MASK ----------------------------------------------------------------------------------------------

@SETTINGS
@given(configs(), seeds, st.sampled_from(["carry", "zero"]))
def test_all_true_mask_equals_no_mask(cfg, seed, masked_output):
    """MASK-1, MASK-2: a mask that keeps every step changes nothing, output and states."""
    cfg = _seq(cfg)
    w, x = case(cfg, seed, batch=2, timesteps=4)
    a = lstm_forward(cfg, w, x)
    b = lstm_forward(cfg, w, x, mask=np.ones((2, 4), bool), masked_output=masked_output)
    for ya, yb in zip(_outs(a), _outs(b), strict=True):
        assert np.array_equal(ya, yb)
    for l in range(cfg.num_layers):
        for d in range(cfg.num_directions):
            assert np.array_equal(a.h[l][d], b.h[l][d]) and np.array_equal(a.c[l][d], b.c[l][d])


@SETTINGS
@given(configs(num_layers=1, bidirectional=False, go_backwards=False), seeds, st.data())
def test_right_padded_lengths_equal_running_each_prefix(cfg, seed, data):
    """MASK-1, MASK-2, MASK-3: with right-padded lengths each row's final state is the state after its own
    unpadded prefix; valid outputs equal the prefix's outputs; padded outputs are 0 ('zero') or repeat
    the last valid output ('carry'; zeros when the row has no valid step)."""
    cfg = _seq(cfg)
    B, T = 3, 5
    lengths = np.array(data.draw(st.lists(st.integers(0, T), min_size=B, max_size=B)))
    w, x = case(cfg, seed, batch=B, timesteps=T)
    h0s = initial_state(cfg, seed + 7, B)
    zero = lstm_forward(cfg, w, x, lengths=lengths, masked_output="zero", initial_state=h0s)
    carry = lstm_forward(cfg, w, x, lengths=lengths, masked_output="carry", initial_state=h0s)
    for b in range(B):
        n = int(lengths[b])
        h0, c0 = h0s[0][0][0][b:b + 1], h0s[0][0][1][b:b + 1]
        if n == 0:  # MASK-1: nothing ran, the row keeps its initial state
            exp_h, exp_c, exp_y = h0[0], c0[0], np.zeros((0, cfg.hidden_size))
        else:
            ref = lstm_forward(cfg, w, x[b:b + 1, :n], initial_state=(h0, c0))
            exp_h, exp_c, exp_y = ref.h[0][0][0], ref.c[0][0][0], ref.output[0]
        for r in (zero, carry):
            assert_close(r.h[0][0][b], exp_h, TOL, f"row {b} (length {n}) final h")
            assert_close(r.c[0][0][b], exp_c, TOL, f"row {b} (length {n}) final c")
            assert_close(r.output[b, :n], exp_y, TOL, f"row {b} valid outputs")
        assert np.all(zero.output[b, n:] == 0)
        last = carry.output[b, n - 1] if n else np.zeros(cfg.hidden_size)
        assert np.array_equal(carry.output[b, n:], np.broadcast_to(last, (T - n, cfg.hidden_size))), f"row {b} carry"


@SETTINGS
@given(configs(num_layers=1, bidirectional=False), seeds, st.data())
def test_masked_output_rules_on_arbitrary_masks(cfg, seed, data):
    """MASK-1, MASK-2: at a masked step the state is kept; 'zero' emits 0, 'carry' repeats the previous
    step's output (0 before the first valid step); unmasked steps and final states agree between rules."""
    cfg = _seq(cfg)
    B, T = 2, 5
    mask = np.array(data.draw(st.lists(st.booleans(), min_size=B * T, max_size=B * T))).reshape(B, T)
    w, x = case(cfg, seed, batch=B, timesteps=T)
    zero = lstm_forward(cfg, w, x, mask=mask, masked_output="zero")
    carry = lstm_forward(cfg, w, x, mask=mask, masked_output="carry")
    assert np.array_equal(zero.h[0][0], carry.h[0][0]) and np.array_equal(zero.c[0][0], carry.c[0][0])
    # go_backwards returns outputs in processing order, so the mask is read in that order too (DIR-2)
    m = mask[:, ::-1] if cfg.go_backwards else mask
    for b in range(B):
        for t in range(T):
            if m[b, t]:
                assert np.array_equal(zero.output[b, t], carry.output[b, t])
            else:
                assert np.all(zero.output[b, t] == 0)
                prev = carry.output[b, t - 1] if t else np.zeros(cfg.hidden_size)
                assert np.array_equal(carry.output[b, t], prev)
    # masked steps do not advance the state: dropping them from the sequence gives the same final state
    for b in range(B):
        keep = mask[b]
        if keep.any():
            ref = lstm_forward(cfg, w, x[b:b + 1, keep])
            assert_close(zero.h[0][0][b], ref.h[0][0][0], TOL, "final h with masked steps removed")
            assert_close(zero.c[0][0][b], ref.c[0][0][0], TOL, "final c with masked steps removed")


@SETTINGS
@given(configs(), seeds)
def test_fully_masked_row_keeps_initial_state(cfg, seed):
    """MASK-1, STATE-1: a row whose every step is masked ends with exactly its initial (h, c), in every
    layer and direction, while the other row does run."""
    cfg = _seq(cfg)
    w, x = case(cfg, seed, batch=2, timesteps=3)
    s0 = initial_state(cfg, seed + 3, 2)
    mask = np.array([[False] * 3, [True] * 3])
    r = lstm_forward(cfg, w, x, mask=mask, initial_state=s0)
    for l in range(cfg.num_layers):
        for d in range(cfg.num_directions):
            assert np.array_equal(r.h[l][d][0], s0[l][d][0][0])
            assert np.array_equal(r.c[l][d][0], s0[l][d][1][0])
            assert not np.array_equal(r.c[l][d][1], s0[l][d][1][1])


# ---- DIR -----------------------------------------------------------------------------------------------

@SETTINGS
@given(configs(bidirectional=False, go_backwards=True), seeds, st.booleans())
def test_go_backwards_matches_forward_on_reversed_input(cfg, seed, with_mask):
    """DIR-1, DIR-2: go_backwards on x == forward on x[:, ::-1] (mask reversed likewise), outputs in
    processing order, same final states in every layer."""
    cfg = _seq(cfg)
    w, x = case(cfg, seed, batch=2, timesteps=4)
    mask = np.random.default_rng(seed).random((2, 4)) < 0.7 if with_mask else None
    fwd = cfg.replace(go_backwards=False)
    if cfg.num_layers == 1:
        a = lstm_forward(cfg, w, x, mask=mask)
        b = lstm_forward(fwd, w, x[:, ::-1], mask=None if mask is None else mask[:, ::-1])
        assert_close(a.output, b.output, TOL, "go_backwards output vs forward on reversed input")
        assert_close(a.h[0][0], b.h[0][0], TOL, "final h")
        assert_close(a.c[0][0], b.c[0][0], TOL, "final c")
    else:
        # Layer 1 of a go_backwards stack reads layer 0's output in processing order and reverses it again,
        # with the caller's mask reversed again too: Keras passes a layer's input mask on unchanged
        # (RNN.compute_mask), so a stacked go_backwards layer sees the mask in original order beside
        # time-reversed data. The reference reproduces that; a non-palindromic mask exercises it.
        l0 = Config(**{**cfg.to_dict(), "num_layers": 1})
        l1 = Config(**{**cfg.to_dict(), "num_layers": 1, "input_dim": cfg.merged_size})
        r0 = lstm_forward(l0.replace(go_backwards=False), Weights([w.layers[0]]), x[:, ::-1],
                          mask=None if mask is None else mask[:, ::-1])
        r1 = lstm_forward(l1.replace(go_backwards=False), Weights([w.layers[1]]), r0.output[:, ::-1],
                          mask=None if mask is None else mask[:, ::-1])
        full = lstm_forward(cfg, w, x, mask=mask)
        assert_close(full.output, r1.output, TOL, "stacked go_backwards output")


# ---- STATE ---------------------------------------------------------------------------------------------

@SETTINGS
@given(configs(bidirectional=False, go_backwards=False), seeds, st.integers(1, 4), st.booleans())
def test_two_calls_with_carried_state_equal_one_call(cfg, seed, split, zero_start):
    """STATE-1, STATE-2: running x[:, :k] then x[:, k:] with initial_state = the first call's final
    (h, c) of every layer equals one call on x; outputs concatenate."""
    cfg = _seq(cfg)
    w, x = case(cfg, seed, batch=2, timesteps=5)
    s0 = None if zero_start else initial_state(cfg, seed + 5, 2)
    whole = lstm_forward(cfg, w, x, initial_state=s0)
    first = lstm_forward(cfg, w, x[:, :split], initial_state=s0)
    carried = [[(first.h[l][0], first.c[l][0])] for l in range(cfg.num_layers)]
    second = lstm_forward(cfg, w, x[:, split:], initial_state=carried)
    assert_close(np.concatenate([first.output, second.output], axis=1), whole.output, TOL, "joined outputs")
    for l in range(cfg.num_layers):
        assert_close(second.h[l][0], whole.h[l][0], TOL, f"layer {l} final h")
        assert_close(second.c[l][0], whole.c[l][0], TOL, f"layer {l} final c")


@SETTINGS
@given(configs(num_layers=1, bidirectional=False), seeds)
def test_zero_initial_state_equals_default(cfg, seed):
    """STATE-1: initial_state None means zeros."""
    w, x = case(cfg, seed)
    a = lstm_forward(cfg, w, x)
    z = (np.zeros((2, cfg.hidden_size)), np.zeros((2, cfg.units)))
    b = lstm_forward(cfg, w, x, initial_state=z)
    assert np.array_equal(a.output, b.output)


@SETTINGS
@given(configs(), seeds)
def test_states_list_is_last_layer_h_c_per_direction(cfg, seed):
    """STATE-4: states() == [h_f, c_f, (h_b, c_b)] of the last layer; without return_sequences the output of a
    forward-only layer is its final h."""
    w, x = case(cfg, seed)
    r = lstm_forward(cfg, w, x)
    expected = [a for d in range(cfg.num_directions) for a in (r.h[-1][d], r.c[-1][d])]
    assert len(r.states()) == len(expected)
    for a, b in zip(r.states(), expected):
        assert np.array_equal(a, b)
    if not cfg.bidirectional and not cfg.return_sequences:
        assert_close(r.output, r.h[-1][0], 0, "last output vs final h")


# ---- BIDI ----------------------------------------------------------------------------------------------

def _merge(mode: str, yf, yb):
    return {"concat": lambda: np.concatenate([yf, yb], -1), "sum": lambda: yf + yb, "mul": lambda: yf * yb,
            "ave": lambda: (yf + yb) / 2, "none": lambda: (yf, yb)}[mode]()


@SETTINGS
@given(configs(bidirectional=True, num_layers=1), seeds, st.sampled_from(["concat", "sum", "mul", "ave", "none"]),
       st.booleans(), st.booleans())
def test_bidirectional_equals_forward_plus_flipped_backward(cfg, seed, merge, with_mask, with_state):
    """BIDI-1, BIDI-2, BIDI-3, SHAPE-3, SHAPE-5: a bidirectional layer == a forward layer with the forward
    weights and a go_backwards layer with the backward weights (its output flipped back to original time
    order), merged by merge_mode; without return_sequences the backward half is its last processed step."""
    cfg = cfg.replace(merge_mode=merge)
    w, x = case(cfg, seed, batch=2, timesteps=4)
    mask = np.random.default_rng(seed).random((2, 4)) < 0.7 if with_mask else None
    s0 = initial_state(cfg, seed + 1, 2) if with_state else None
    one = Config(**{**cfg.to_dict(), "bidirectional": False, "merge_mode": None, "return_sequences": True})
    f = lstm_forward(one, Weights([[w[0, 0]]]), x, mask=mask, initial_state=None if s0 is None else s0[0][0])
    b = lstm_forward(one.replace(go_backwards=True), Weights([[w[0, 1]]]), x, mask=mask,
                     initial_state=None if s0 is None else s0[0][1])
    for seqs in (True, False):
        r = lstm_forward(cfg.replace(return_sequences=seqs), w, x, mask=mask, initial_state=s0)
        exp = _merge(merge, f.output, b.output[:, ::-1]) if seqs else _merge(merge, f.output[:, -1], b.output[:, -1])
        if merge == "none":
            assert isinstance(r.output, tuple) and len(r.output) == 2
            assert_close(r.output[0], exp[0], TOL, "forward half")
            assert_close(r.output[1], exp[1], TOL, "backward half")
        else:
            assert_close(r.output, exp, TOL, f"merge {merge}, return_sequences={seqs}")
        assert_close(r.h[0][0], f.h[0][0], TOL, "forward final h")
        assert_close(r.c[0][1], b.c[0][0], TOL, "backward final c")


# ---- STACK ---------------------------------------------------------------------------------------------

@SETTINGS
@given(configs(num_layers=2), seeds, st.booleans())
def test_two_stacked_layers_equal_two_chained_single_layers(cfg, seed, with_mask):
    """STACK-1: layer 1 of a stack reads layer 0's merged output sequence; chaining two one-layer runs
    (layer 1 on input_dim = merged width) gives the same output and per-layer states."""
    w, x = case(cfg, seed, batch=2, timesteps=4)
    mask = np.random.default_rng(seed).random((2, 4)) < 0.7 if with_mask else None
    base = {**cfg.to_dict(), "num_layers": 1}
    l0 = Config(**{**base, "return_sequences": True})
    l1 = Config(**{**base, "input_dim": cfg.merged_size})
    r0 = lstm_forward(l0, Weights([w.layers[0]]), x, mask=mask)
    r1 = lstm_forward(l1, Weights([w.layers[1]]), r0.output, mask=mask)
    full = lstm_forward(cfg, w, x, mask=mask)
    assert_close(full.output, r1.output, TOL, "stack output")
    assert_close(full.sequences[0], r0.output, TOL, "layer 0 sequence")
    for d in range(cfg.num_directions):
        assert_close(full.h[0][d], r0.h[0][d], TOL, "layer 0 h")
        assert_close(full.c[1][d], r1.c[0][d], TOL, "layer 1 c")


# ---- SHAPE ---------------------------------------------------------------------------------------------

@SETTINGS
@given(configs(), seeds, st.integers(1, 3), st.integers(1, 4))
def test_output_shapes_match_forward(cfg, seed, B, T):
    """SHAPE-1..SHAPE-6: output_shapes(config, B, T) is exactly what lstm_forward returns."""
    w = random_weights(cfg, seed)
    r = lstm_forward(cfg, w, inputs(cfg, seed, B, T))
    s = output_shapes(cfg, B, T)
    if isinstance(r.output, tuple):
        assert tuple(a.shape for a in r.output) == s["output"]
    else:
        assert r.output.shape == s["output"]
    assert [[a.shape for a in dirs] for dirs in r.h] == s["h"]
    assert [[a.shape for a in dirs] for dirs in r.c] == s["c"]
    assert [a.shape for a in r.states()] == s["states"]


def test_shapes_by_hand():
    """SHAPE-2, SHAPE-3, SHAPE-5, SHAPE-6: a few shapes written out. Bidirectional concat of proj 2 -> 4
    features; sum -> 2; h has proj_size, c has units."""
    cfg = Config(input_dim=3, units=5, proj_size=2, bidirectional=True, return_sequences=True)
    assert output_shapes(cfg, 4, 7)["output"] == (4, 7, 4)
    assert output_shapes(cfg.replace(merge_mode="sum", return_sequences=False), 4, 7)["output"] == (4, 2)
    assert output_shapes(cfg, 4, 7)["states"] == [(4, 2), (4, 5), (4, 2), (4, 5)]
    assert output_shapes(cfg.replace(merge_mode="none"), 4, 7)["output"] == ((4, 7, 2), (4, 7, 2))


# ---- GATE asymmetry ------------------------------------------------------------------------------------

@SETTINGS
@given(configs(num_layers=1, bidirectional=False, input_forget=False, recurrent_activation="sigmoid",
               activation="tanh", cell_clip=None), seeds)
def test_swapping_two_gates_changes_the_output(cfg, seed):
    """GATE-1, GATE-2: random_weights differ per gate, so exchanging any two gates' W, U, b (and b2) rows
    must change the output: a swapped-gate implementation cannot pass a parity check."""
    cfg = _seq(cfg)
    w, x = case(cfg, seed, batch=2, timesteps=3)
    base = lstm_forward(cfg, w, x).output
    lw = w[0, 0]
    for a in range(4):
        for b in range(a + 1, 4):
            perm = list(range(4))
            perm[a], perm[b] = b, a
            sw = LayerWeights(**{k: (v[perm] if k in ("W", "U", "b", "b2") else v) for k, v in lw.arrays().items()})
            out = lstm_forward(cfg, Weights([[sw]]), x).output
            diff = np.max(np.abs(out - base))
            assert diff > 1e-6, f"swapping gates {GATES[a]} and {GATES[b]} changed the output by only {diff:.1e}"


# ---- DEF -----------------------------------------------------------------------------------------------

@SETTINGS
@given(configs(proj_size=0, peepholes=False, bias_mode="single"), st.integers(0, 1000))
def test_keras_default_weights(cfg, seed):
    """DEF-1: Keras defaults: forget bias exactly 1 and the other biases exactly 0 (unit_forget_bias),
    orthogonal recurrent kernel (its (u, 4u) Keras form has orthonormal rows), glorot_uniform kernel."""
    w = keras_default_weights(cfg, seed)
    w.check(cfg)
    keras = to_keras(w, cfg)
    for l, dirs in enumerate(w.layers):
        for d, lw in enumerate(dirs):
            if cfg.use_bias:
                assert np.all(lw.b[GATES.index("f")] == 1.0)
                assert np.all(lw.b[[GATES.index(g) for g in "ico"]] == 0.0)
            else:
                assert lw.b is None
            rk = keras[l][d]["recurrent_kernel"]
            np.testing.assert_allclose(rk @ rk.T, np.eye(cfg.units), atol=1e-12)
            limit = np.sqrt(6.0 / (cfg.layer_input_dim(l) + 4 * cfg.units))
            assert np.all(np.abs(keras[l][d]["kernel"]) <= limit)


# ---- NUM -----------------------------------------------------------------------------------------------

@SETTINGS
@given(configs(activation="tanh"), seeds, st.integers(1, 6))
def test_float32_run_is_close_to_float64(cfg, seed, T):
    """NUM-1, NUM-5: the reference run in float32 computes in float32 and stays within a rounding budget of the
    float64 run: max error <= 1e-5 * T (float32 eps 1.2e-7, a few dozen roundings per step, errors that
    at worst accumulate linearly over steps through c)."""
    w, x = case(cfg, seed, batch=2, timesteps=T)
    r64 = lstm_forward(cfg, w, x)
    r32 = lstm_forward(cfg, w, x, dtype="float32")
    for a32, a64 in zip(_outs(r32), _outs(r64), strict=True):
        assert a32.dtype == np.float32 and a64.dtype == np.float64
        assert_close(a32, a64, 1e-5 * T, "float32 vs float64 output")
    assert r32.c[-1][0].dtype == np.float32
    assert_close(r32.c[-1][0], r64.c[-1][0], 1e-5 * T, "float32 vs float64 final c")


@SETTINGS
@given(configs(activation="tanh"), seeds)
def test_float16_runs_and_is_finite_for_moderate_inputs(cfg, seed):
    """NUM-5, NUM-2: float16 runs in float16 and is finite for |x| ~ 1 with unit-scale weights; it stays within
    a loose budget of float64 (float16 eps ~1e-3)."""
    cfg = cfg.replace(dtype="float16")
    w, x = case(cfg, seed, batch=2, timesteps=4)
    r16 = lstm_forward(cfg, w, x)
    r64 = lstm_forward(cfg, w, x, dtype="float64")
    for a16, a64 in zip(_outs(r16), _outs(r64), strict=True):
        assert a16.dtype == np.float16
        assert np.all(np.isfinite(a16))
        assert_close(a16, a64, 0.05, "float16 vs float64 output")


def test_overflow_is_reported_as_non_finite_not_raised():
    """NUM-2: an unbounded activation (relu) with large weights overflows float16; the reference returns
    the non-finite values (the error model records the case as out of range) instead of raising."""
    cfg = Config(input_dim=2, units=3, activation="relu", return_sequences=True, dtype="float16")
    w = random_weights(cfg, 0, scale=50.0)
    x = np.full((1, 8, 2), 3000.0)
    with np.errstate(all="raise"):  # the reference must not leak floating-point errors to the caller
        r = lstm_forward(cfg, w, x)
    assert not np.all(np.isfinite(r.output))
    assert np.all(np.isfinite(lstm_forward(cfg, w, x, dtype="float64").output))


def test_lengths_to_mask_is_right_padded():
    """MASK-3: lengths (2, 0, 3) over 3 steps -> rows TTF, FFF, TTT."""
    assert lengths_to_mask(np.array([2, 0, 3]), 3).tolist() == [[True, True, False], [False] * 3, [True] * 3]
