"""The named readings of ambiguous or silent texts (spec/README.md "Readings"): each one computed by name.

CLIP-1 (``Config.clip_reading``), IFG-1 (``Config.input_forget_reading``), MASK-2 (``lstm_forward(last_output=)``),
MASK-3 (``lstm_forward(empty_rows=)``), ACT-23 / ACT-30 (``from_onnx_activations`` / ``to_onnx_activations``) and
DEF-1 (``unit_forget_bias``). Expectations come from hand computations and from invariants between readings
(where two readings must agree and where they must not), never from a second copy of the step.
"""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from ref_cases import SETTINGS, assert_close, case, configs, initial_state, seeds

from reference import (
    CLIP_READINGS,
    EMPTY_ROW_READINGS,
    GATES,
    INPUT_FORGET_READINGS,
    LAST_OUTPUT_READINGS,
    UNIT_FORGET_BIAS_READINGS,
    Activation,
    Config,
    LayerWeights,
    Weights,
    default_init_problems,
    from_onnx_activations,
    keras_default_weights,
    lstm_forward,
    to_onnx_activations,
    unit_forget_bias,
)


def sig(z: float) -> float:
    return 1.0 / (1.0 + math.exp(-z))


def one_unit(W, U, b) -> Weights:
    """u = d = 1; W, U, b as dicts over gates i, f, c, o."""
    return Weights([[LayerWeights(W=np.array([W[k] for k in "ifco"], float).reshape(4, 1, 1),
                                  U=np.array([U[k] for k in "ifco"], float).reshape(4, 1, 1),
                                  b=np.array([b[k] for k in "ifco"], float).reshape(4, 1))]])


def test_default_readings_are_the_first_of_each_list():
    """The defaults: the governing text's reading (CLIP-1 literal, DEF-1 docs) or this spec's convention."""
    cfg = Config(input_dim=1, units=1)
    assert (cfg.clip_reading, cfg.input_forget_reading) == (CLIP_READINGS[0], INPUT_FORGET_READINGS[0])
    assert CLIP_READINGS[0] == "gate-inputs-and-cell" and INPUT_FORGET_READINGS[0] == "f-from-i"
    assert LAST_OUTPUT_READINGS[0] == "last-step" and EMPTY_ROW_READINGS[0] == "keep-initial"
    assert UNIT_FORGET_BIAS_READINGS[0] == "forced-zeros"


# ---- CLIP-1 ----------------------------------------------------------------------------------------------

def test_clip_readings_one_step_by_hand():
    """CLIP-1: u = d = 1, clip 0.5, x = 2, h0 = 0, c0 = 0.9. Gates: z = (W x + b) = i 1.0, f 2.0, c 0.6, o 0.2;
    clipped: i 0.5, f 0.5, c 0.5, o 0.2. c1 = sig(0.5)*0.9 + sig(0.5)*tanh(0.5) = 0.847863 (stored as is
    under both readings); h1 = sig(0.2)*tanh(c1) = 0.379359 ('gate-inputs') and
    sig(0.2)*tanh(clip(c1)) = sig(0.2)*tanh(0.5) = 0.254088 ('gate-inputs-and-cell')."""
    m, x, c0 = 0.5, 2.0, 0.9
    w = one_unit(W=dict(i=0.5, f=1.0, c=0.3, o=0.1), U=dict(i=0.0, f=0.0, c=0.0, o=0.0),
                 b=dict(i=0.0, f=0.0, c=0.0, o=0.0))
    c1 = sig(0.5) * c0 + sig(0.5) * math.tanh(0.5)
    want = {"gate-inputs": sig(0.2) * math.tanh(c1), "gate-inputs-and-cell": sig(0.2) * math.tanh(0.5)}
    assert round(c1, 6) == 0.847863 and [round(v, 6) for v in want.values()] == [0.379359, 0.254088]
    for reading, h1 in want.items():
        cfg = Config(input_dim=1, units=1, cell_clip=m, clip_reading=reading)
        r = lstm_forward(cfg, w, np.array([[[x]]]), initial_state=(np.zeros((1, 1)), np.array([[c0]])))
        np.testing.assert_allclose(r.output.item(), h1, rtol=0, atol=1e-15)
        np.testing.assert_allclose(r.c[0][0].item(), c1, rtol=0, atol=1e-15)  # the state is never clipped


@SETTINGS
@given(cfg=configs(cell_clip=0.5), seed=seeds)
def test_clip_readings_agree_while_the_cell_stays_inside_the_clip(cfg, seed):
    """CLIP-1: the readings differ only in act(c_t); with tiny weights and inputs |c_t| stays far below the
    clip and both give the same numbers, bit for bit."""
    w, _ = case(cfg, seed, weight_scale=0.01)
    x = np.random.default_rng(seed).normal(0, 0.01, (2, 4, cfg.input_dim))
    a = lstm_forward(cfg.replace(clip_reading="gate-inputs"), w, x)
    b = lstm_forward(cfg.replace(clip_reading="gate-inputs-and-cell"), w, x)
    assert max(float(np.max(np.abs(c))) for layer in a.c for c in layer) < 0.5
    for u, v in zip(a.sequences, b.sequences):
        assert np.array_equal(u, v)


def test_clip_readings_differ_once_the_cell_exceeds_the_clip():
    """CLIP-1: from an initial cell state of 2 (above the clip 0.5) the readings give different outputs at
    once, and the same stored cell state at the first step (only act's input is clipped)."""
    cfg = Config(input_dim=2, units=3, cell_clip=0.5, return_sequences=True)
    w, x = case(cfg, 7, timesteps=8)
    init = (np.zeros((2, 3)), np.full((2, 3), 2.0))
    a = lstm_forward(cfg.replace(clip_reading="gate-inputs"), w, x, initial_state=init)
    b = lstm_forward(cfg, w, x, initial_state=init)
    a1 = lstm_forward(cfg.replace(clip_reading="gate-inputs"), w, x[:, :1], initial_state=init)
    b1 = lstm_forward(cfg, w, x[:, :1], initial_state=init)
    assert np.array_equal(a1.c[0][0], b1.c[0][0]) and np.max(np.abs(a1.c[0][0])) > 0.5
    assert np.max(np.abs(a.output - b.output)) > 1e-2


# ---- IFG-1 -----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("reading", INPUT_FORGET_READINGS)
def test_input_forget_readings_one_step_by_hand(reading):
    """IFG-1: u = d = 1, x = 1, h0 = 0, c0 = 0.6; z = (i 0.4, f -0.7, c 0.5, o 0.3).
    'f-from-i': i = sig(0.4), f = 1 - i; 'i-from-f': f = sig(-0.7), i = 1 - f; c1 = f c0 + i tanh(0.5)."""
    w = one_unit(W=dict(i=0.4, f=-0.7, c=0.5, o=0.3), U=dict(i=0.0, f=0.0, c=0.0, o=0.0),
                 b=dict(i=0.0, f=0.0, c=0.0, o=0.0))
    i = sig(0.4) if reading == "f-from-i" else 1 - sig(-0.7)
    f = 1 - i if reading == "f-from-i" else sig(-0.7)
    c1 = f * 0.6 + i * math.tanh(0.5)
    cfg = Config(input_dim=1, units=1, input_forget=True, input_forget_reading=reading)
    r = lstm_forward(cfg, w, np.ones((1, 1, 1)), initial_state=(np.zeros((1, 1)), np.array([[0.6]])))
    np.testing.assert_allclose(r.c[0][0].item(), c1, rtol=0, atol=1e-15)
    np.testing.assert_allclose(r.output.item(), sig(0.3) * math.tanh(c1), rtol=0, atol=1e-15)


@SETTINGS
@given(cfg=configs(input_forget=True), seed=seeds, reading=st.sampled_from(INPUT_FORGET_READINGS))
def test_input_forget_reading_ignores_the_derived_gate_weights(cfg, seed, reading):
    """IFG-1: the derived gate's own weights, bias and peephole are unused: 'f-from-i' ignores f's,
    'i-from-f' ignores i's. Scrambling them changes nothing, bit for bit."""
    cfg = cfg.replace(input_forget_reading=reading)
    w, x = case(cfg, seed)
    k = GATES.index("f" if reading == "f-from-i" else "i")
    peep = {"f": 2, "i": 0}[GATES[k]]  # P rows are (i, o, f)
    scrambled = Weights([[LayerWeights(**lw.arrays()) for lw in dirs] for dirs in w.layers])
    for dirs in scrambled.layers:
        for lw in dirs:
            lw.W, lw.U = lw.W.copy(), lw.U.copy()
            lw.W[k] *= -3.0
            lw.U[k] += 1.0
            if lw.b is not None:
                lw.b = lw.b.copy()
                lw.b[k] += 5.0
            if lw.P is not None:
                lw.P = lw.P.copy()
                lw.P[peep] *= -2.0
    a, b = lstm_forward(cfg, w, x), lstm_forward(cfg, scrambled, x)
    for u, v in zip(a.sequences, b.sequences):
        assert np.array_equal(u, v)


# ---- MASK-2: the last output ---------------------------------------------------------------------------

@SETTINGS
@given(cfg=configs(return_sequences=False), seed=seeds, rule=st.sampled_from(["carry", "zero"]))
def test_last_valid_reading_is_the_carry_rules_last_output(cfg, seed, rule):
    """MASK-2 'last-valid': the last output is the output at each row's last valid step, whatever the rule:
    the 'carry' rule's last output (zeros for a row with no valid step). In a stack the rule of the lower
    layers does not matter here: the same mask reaches every layer, so a layer never reads its input at a
    masked step (MASK-1). Not so in a go_backwards stack: layer 1 pairs its reversed input with the unreversed
    mask (STACK-1) and does read layer 0's masked-step outputs, so those stacks are left out."""
    assume(not (cfg.go_backwards and cfg.num_layers > 1))
    w, x = case(cfg, seed, batch=3, timesteps=5)
    mask = np.random.default_rng(seed).random((3, 5)) < 0.5
    got = lstm_forward(cfg, w, x, mask=mask, masked_output=rule, last_output="last-valid").output
    want = lstm_forward(cfg, w, x, mask=mask, masked_output="carry").output
    assert np.array_equal(got, want)


@SETTINGS
@given(cfg=configs(return_sequences=False, bidirectional=False), seed=seeds)
def test_last_step_reading_with_zero_rule_zeroes_a_masked_last_step(cfg, seed):
    """MASK-2 'last-step' (the default): with 'zero' the last output is the last processing step's output,
    zeros for every row whose last processing step is masked; rows whose last step is valid agree with
    'last-valid'. With 'carry' the two readings are the same."""
    w, x = case(cfg, seed, batch=3, timesteps=4)
    mask = np.array([[1, 1, 0, 0], [1, 1, 1, 1], [0, 1, 1, 1]], bool)
    step = lstm_forward(cfg, w, x, mask=mask, masked_output="zero").output
    valid = lstm_forward(cfg, w, x, mask=mask, masked_output="zero", last_output="last-valid").output
    last_masked = ~mask[:, 0] if cfg.go_backwards else ~mask[:, -1]  # the last *processing* step
    assert np.all(step[last_masked] == 0)
    assert np.array_equal(step[~last_masked], valid[~last_masked])
    carry = [lstm_forward(cfg, w, x, mask=mask, masked_output="carry", last_output=r).output
             for r in LAST_OUTPUT_READINGS]
    assert np.array_equal(carry[0], carry[1])


def test_last_valid_reading_in_a_stack_is_the_top_sequence_at_the_last_valid_step():
    """MASK-2 'last-valid', STACK-1: the stack's last output is the top layer's 'zero' sequence
    (return_sequences=True) at each row's last valid step, zeros for the fully masked row."""
    cfg = Config(input_dim=2, units=3, num_layers=2)
    w, x = case(cfg, 3, batch=3, timesteps=5)
    mask = np.array([[1, 1, 0, 1, 0], [1, 1, 1, 1, 1], [0, 0, 0, 0, 0]], bool)
    last = lstm_forward(cfg, w, x, mask=mask, masked_output="zero", last_output="last-valid").output
    seq = lstm_forward(cfg.replace(return_sequences=True), w, x, mask=mask, masked_output="zero").output
    np.testing.assert_array_equal(last[:2], seq[np.arange(2), [3, 4]])
    assert np.all(last[2] == 0) and np.all(last[:2] != 0)


def test_last_valid_reading_bidirectional_takes_each_directions_own_last_valid_step():
    """MASK-2 'last-valid', BIDI-1: the backward direction's last processing step is original t = 0; with
    the mask [1, 1, 0] (t = 2 masked) the forward half is y_f at t = 1, the backward half y_b at t = 0."""
    cfg = Config(input_dim=2, units=2, bidirectional=True, merge_mode="none")
    w, x = case(cfg, 5, batch=1, timesteps=3)
    mask = np.array([[1, 1, 0]], bool)
    fwd, bwd = lstm_forward(cfg, w, x, mask=mask, masked_output="zero", last_output="last-valid").output
    yf, yb = lstm_forward(cfg.replace(return_sequences=True), w, x, mask=mask, masked_output="zero").output
    np.testing.assert_array_equal(fwd, yf[:, 1])
    np.testing.assert_array_equal(bwd, yb[:, 0])


# ---- MASK-3: rows with no valid step ---------------------------------------------------------------------

@SETTINGS
@given(cfg=configs(), seed=seeds, rule=st.sampled_from(["carry", "zero"]))
def test_empty_row_readings(cfg, seed, rule):
    """MASK-3: a row of length 0 keeps its initial state ('keep-initial', the default) or ends at zeros
    ('zero-state'); every other row and every output is the same under both readings."""
    w, x = case(cfg, seed, batch=3, timesteps=4)
    init = initial_state(cfg, seed, 3)
    lengths = np.array([2, 0, 4])
    keep = lstm_forward(cfg, w, x, lengths=lengths, initial_state=init, masked_output=rule)
    zero = lstm_forward(cfg, w, x, lengths=lengths, initial_state=init, masked_output=rule, empty_rows="zero-state")
    for l in range(cfg.num_layers):
        for d in range(cfg.num_directions):
            (h0, c0), (hk, ck), (hz, cz) = init[l][d], (keep.h[l][d], keep.c[l][d]), (zero.h[l][d], zero.c[l][d])
            assert np.array_equal(hk[1], h0[1]) and np.array_equal(ck[1], c0[1])
            assert np.all(hz[1] == 0) and np.all(cz[1] == 0)
            assert np.array_equal(hk[[0, 2]], hz[[0, 2]]) and np.array_equal(ck[[0, 2]], cz[[0, 2]])
    assert_close(np.asarray(keep.output), np.asarray(zero.output), 0.0, "outputs")


# ---- ACT-23, ACT-30: ONNX activation attributes -----------------------------------------------------------

def test_parameter_orders_by_example():
    """ACT-30: [HardSigmoid, Tanh, ScaledTanh] with alpha [0.3, 1.5], beta [0.4, 0.5]: 'per-function' gives
    ScaledTanh (1.5, 0.5); 'per-slot' reads slot 2 (no value) and gives it its default."""
    names, alpha, beta = ["HardSigmoid", "Tanh", "ScaledTanh"], [0.3, 1.5], [0.4, 0.5]
    f, g, h = from_onnx_activations(names, alpha, beta, order="per-function")
    assert f == Activation("onnx_hard_sigmoid", (("alpha", 0.3), ("beta", 0.4))) and g == Activation("tanh")
    assert h == Activation("onnx_scaled_tanh", (("alpha", 1.5), ("beta", 0.5)))
    f, g, h = from_onnx_activations(names, alpha, beta, order="per-slot")
    assert f == Activation("onnx_hard_sigmoid", (("alpha", 0.3), ("beta", 0.4)))
    assert h == Activation("onnx_scaled_tanh", (("alpha", 1.0), ("beta", 1.0)))


def test_missing_values_take_operator_defaults_and_scaled_tanh_its_reading():
    """ACT-20..ACT-25: a parameter without a value takes its ONNX operator default (LeakyRelu 0.01,
    HardSigmoid 0.2/0.5, Affine 1/0, ThresholdedRelu 1, Elu 1); ScaledTanh has none (ACT-23): 'unity'
    (this spec's convention) gives 1/1, 'zero' (ONNX Runtime's LSTM kernel) 0/0."""
    names = ["LeakyRelu", "HardSigmoid", "Affine", "ThresholdedRelu", "Elu", "ScaledTanh"]
    got = {a.name: dict(a.params) for a in from_onnx_activations(names)}
    assert got == {"onnx_leaky_relu": {"alpha": 0.01}, "onnx_hard_sigmoid": {"alpha": 0.2, "beta": 0.5},
                   "onnx_affine": {"alpha": 1.0, "beta": 0.0}, "onnx_thresholded_relu": {"alpha": 1.0},
                   "onnx_elu": {"alpha": 1.0}, "onnx_scaled_tanh": {"alpha": 1.0, "beta": 1.0}}
    (zero,) = from_onnx_activations(["ScaledTanh"], scaled_tanh="zero")
    assert dict(zero.params) == {"alpha": 0.0, "beta": 0.0}
    assert np.all(zero(np.linspace(-3, 3, 7)) == 0)


@pytest.mark.parametrize("order", ["per-function", "per-slot"])
def test_to_onnx_activations_round_trips_and_writes_every_parameter(order):
    """ACT-30: canonical -> ONNX attributes -> canonical is exact under either order, and every parameter is
    written explicitly (the node never relies on a runtime's default, ACT-23)."""
    acts = ["sigmoid", "onnx_scaled_tanh", "onnx_leaky_relu(alpha=0.1)", "onnx_hard_sigmoid(alpha=0.3, beta=0.4)",
            "tanh", "onnx_elu(alpha=0.8)"]
    attrs = to_onnx_activations(acts, order=order)
    assert attrs["activations"] == ["Sigmoid", "ScaledTanh", "LeakyRelu", "HardSigmoid", "Tanh", "Elu"]
    if order == "per-function":
        assert attrs["activation_alpha"] == [1.0, 0.1, 0.3, 0.8] and attrs["activation_beta"] == [1.0, 0.4]
    else:
        assert len(attrs["activation_alpha"]) == len(attrs["activation_beta"]) == 6
    back = from_onnx_activations(attrs["activations"], attrs.get("activation_alpha"), attrs.get("activation_beta"),
                                 order=order, scaled_tanh="zero")  # explicit values: the default is never used
    assert [str(a) for a in back] == [str(Config(input_dim=1, units=1, activation=a).act) for a in acts]
    assert "activation_alpha" not in to_onnx_activations(["sigmoid", "tanh", "tanh"], order=order)


# ---- DEF-1 ------------------------------------------------------------------------------------------------

def test_unit_forget_bias_readings():
    """DEF-1: with the default bias_initializer (zeros) both readings give zeros and a forget chunk of
    exactly 1; with another initializer 'forced-zeros' (the Keras docs) still does, while
    'forget-set-to-one' keeps the initializer's values in the i, c, o chunks."""
    zeros = np.zeros((4, 3))
    for reading in UNIT_FORGET_BIAS_READINGS:
        b = unit_forget_bias(zeros, reading)
        assert np.array_equal(b[GATES.index("f")], np.ones(3)) and np.all(np.delete(b, GATES.index("f"), 0) == 0)
    drawn = np.full((4, 3), 0.25)
    docs, code = unit_forget_bias(drawn), unit_forget_bias(drawn, "forget-set-to-one")
    f = GATES.index("f")
    assert np.array_equal(docs[f], np.ones(3)) and np.all(np.delete(docs, f, 0) == 0)
    assert np.array_equal(code[f], np.ones(3)) and np.all(np.delete(code, f, 0) == 0.25)
    assert drawn[0, 0] == 0.25, "the input is not modified"
    w = keras_default_weights(Config(input_dim=3, units=4), seed=1)
    assert default_init_problems(w, {"activation": "tanh", "recurrent_activation": "sigmoid"})[0] == []


# ---- every reading name is validated ---------------------------------------------------------------------

BAD_READINGS = [
    ("clip_reading", lambda: Config(input_dim=1, units=1, clip_reading="cell"), [r"clip_reading='cell'",
                                                                                r"gate-inputs-and-cell", r"CLIP-1"]),
    ("input_forget_reading", lambda: Config(input_dim=1, units=1, input_forget_reading="x"),
     [r"input_forget_reading='x'", r"f-from-i", r"i-from-f", r"IFG-1"]),
    ("last_output", lambda: lstm_forward(Config(input_dim=1, units=1), keras_default_weights(Config(input_dim=1, units=1)),
                                         np.zeros((1, 1, 1)), last_output="final"),
     [r"last_output='final'", r"last-step", r"last-valid", r"MASK-2"]),
    ("empty_rows", lambda: lstm_forward(Config(input_dim=1, units=1), keras_default_weights(Config(input_dim=1, units=1)),
                                        np.zeros((1, 1, 1)), empty_rows="zeros"),
     [r"empty_rows='zeros'", r"keep-initial", r"zero-state", r"MASK-3"]),
    ("order", lambda: from_onnx_activations(["Tanh"], order="positional"), [r"order='positional'", r"per-slot", r"ACT-30"]),
    ("scaled_tanh", lambda: from_onnx_activations(["ScaledTanh"], scaled_tanh="one"), [r"scaled_tanh='one'", r"unity",
                                                                                       r"ACT-23"]),
    ("onnx name", lambda: from_onnx_activations(["Gelu"]), [r"activations\[0\]='Gelu'", r"ScaledTanh"]),
    ("registry name", lambda: to_onnx_activations(["gelu"]), [r"gelu", r"no ONNX LSTM name"]),
    ("unit_forget_bias", lambda: unit_forget_bias(np.zeros((4, 2)), "added"), [r"reading='added'", r"forced-zeros",
                                                                               r"DEF-1"]),
]


@pytest.mark.parametrize("what, call, patterns", BAD_READINGS, ids=[c[0] for c in BAD_READINGS])
def test_unknown_reading_is_refused_with_the_allowed_names(what, call, patterns):
    with pytest.raises(ValueError) as err:
        call()
    for pattern in patterns:
        assert re.search(pattern, str(err.value)), f"{what}: {pattern!r} not in {err.value}"
