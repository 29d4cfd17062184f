"""The activation registry (spec/activations.md, ACT-1..ACT-16, ACT-20..ACT-25).

Every registry function is compared at a few points with its textbook formula written with the
``math`` module, one scalar at a time; the two hard_sigmoids are pinned at x = 1; parameterised
ONNX names parse with their ONNX defaults.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from reference import ACTIVATIONS, Activation, Config, activation_names, parse_activation

POINTS = [-7.0, -3.0, -1.0, -0.5, -1e-3, 0.0, 1e-3, 0.5, 1.0, 2.5, 3.0, 7.0]


def _sig(x):
    return 1.0 / (1.0 + math.exp(-x))


def _phi(x):  # standard normal CDF
    return 0.5 * (1.0 + math.erf(x / math.sqrt(2.0)))


# registry name -> (rule, independent scalar formula)
EXPECTED = {
    "tanh": ("ACT-1", math.tanh),
    "sigmoid": ("ACT-2", _sig),
    "hard_sigmoid_keras2": ("ACT-3", lambda x: min(1.0, max(0.0, 0.2 * x + 0.5))),
    "hard_sigmoid_keras3": ("ACT-4", lambda x: min(6.0, max(0.0, x + 3.0)) / 6.0),
    "relu": ("ACT-5", lambda x: x if x > 0 else 0.0),
    "linear": ("ACT-6", lambda x: x),
    "softsign": ("ACT-7", lambda x: x / (1.0 + abs(x))),
    "softplus": ("ACT-8", lambda x: math.log(1.0 + math.exp(x))),
    "elu": ("ACT-9", lambda x: x if x > 0 else math.exp(x) - 1.0),
    "selu": ("ACT-10", lambda x: 1.0507009873554805 * (x if x > 0 else 1.6732632423543772 * (math.exp(x) - 1.0))),
    "silu": ("ACT-11", lambda x: x * _sig(x)),
    "swish": ("ACT-12", lambda x: x / (1.0 + math.exp(-x))),  # the same function as silu (ACT-11)
    "gelu": ("ACT-13", lambda x: x * _phi(x)),
    "gelu_tanh": ("ACT-14", lambda x: 0.5 * x * (1.0 + math.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3)))),
    "exponential": ("ACT-15", math.exp),
    "leaky_relu": ("ACT-16", lambda x: x if x >= 0 else 0.2 * x),
    # ONNX operators with their default parameters (Operators.md)
    "onnx_affine": ("ACT-20", lambda x: 1.0 * x + 0.0),
    "onnx_leaky_relu": ("ACT-21", lambda x: x if x >= 0 else 0.01 * x),
    "onnx_thresholded_relu": ("ACT-22", lambda x: x if x > 1.0 else 0.0),
    "onnx_scaled_tanh": ("ACT-23", lambda x: 1.0 * math.tanh(1.0 * x)),
    "onnx_hard_sigmoid": ("ACT-24", lambda x: max(0.0, min(1.0, 0.2 * x + 0.5))),
    "onnx_elu": ("ACT-25", lambda x: x if x > 0 else 1.0 * (math.exp(x) - 1.0)),
}


def test_every_registry_name_is_tested_here():
    """ACT-*: a new registry entry must come with its independent formula in this file."""
    assert set(activation_names()) == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_registry_function_matches_textbook_formula(name):
    """ACT-1..ACT-16, ACT-20..ACT-25: each function at 12 points, float64, to 4 ulps of the value."""
    rule, formula = EXPECTED[name]
    act = parse_activation(name)
    assert act.rule == rule
    got = act(np.array(POINTS))
    assert got.dtype == np.float64
    for x, y in zip(POINTS, got):
        exp = formula(x)
        assert abs(y - exp) <= 4 * np.finfo(float).eps * max(1.0, abs(exp)), f"{name}({x}) = {y!r}, expected {exp!r}"


@pytest.mark.parametrize("dtype", [np.float16, np.float32])
@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_registry_function_keeps_the_dtype_under_test(name, dtype):
    """NUM-5, ACT-*: an activation computes in the dtype it is given (no silent float64 upcast in the output)."""
    x = np.array([-1.0, 0.0, 0.5], dtype=dtype)
    y = parse_activation(name)(x)
    assert y.dtype == dtype
    np.testing.assert_allclose(y.astype(float), [EXPECTED[name][1](float(v)) for v in x],
                               rtol=5e-3 if dtype == np.float16 else 1e-6, atol=1e-3 if dtype == np.float16 else 1e-7)


def test_the_two_hard_sigmoids_differ_at_one():
    """ACT-3, ACT-4, DEF-3: Keras 2 clip(0.2x+0.5) gives 0.7 at x=1; Keras 3 relu6(x+3)/6 gives 4/6 = 0.6667."""
    x = np.array([1.0])
    assert parse_activation("hard_sigmoid_keras2")(x)[0] == pytest.approx(0.7, abs=1e-15)
    assert parse_activation("hard_sigmoid_keras3")(x)[0] == pytest.approx(2 / 3, abs=1e-15)
    # they also saturate at different points: Keras 2 at |x| = 2.5, Keras 3 at |x| = 3
    assert parse_activation("hard_sigmoid_keras2")(np.array([2.5]))[0] == 1.0
    assert parse_activation("hard_sigmoid_keras3")(np.array([2.5]))[0] < 1.0


def test_swish_is_silu():
    """ACT-11, ACT-12: swish and silu share one function; swish is listed under its own rule."""
    assert ACTIVATIONS["swish"].fn is ACTIVATIONS["silu"].fn
    assert ACTIVATIONS["swish"].rule == "ACT-12"
    x = np.linspace(-5, 5, 11)
    assert np.array_equal(parse_activation("swish")(x), parse_activation("silu")(x))


def test_sigmoid_is_stable_for_large_magnitudes():
    """ACT-2: no overflow (underflow to 0 is fine), exact 0/1 limits, sigmoid(-x) = 1 - sigmoid(x)."""
    x = np.array([-1000.0, -40.0, 40.0, 1000.0])
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        y = parse_activation("sigmoid")(x)
    assert y[0] == 0.0 and y[-1] == 1.0
    assert y[1] == pytest.approx(math.exp(-40.0), rel=1e-14)
    assert y[1] + y[2] == pytest.approx(1.0, abs=1e-16)
    assert parse_activation("softplus")(np.array([1000.0]))[0] == 1000.0


def test_parameterised_onnx_name_parses_alpha_and_beta():
    """ACT-23: 'onnx_scaled_tanh(alpha=1.5, beta=0.5)' is 1.5 * tanh(0.5 x)."""
    act = parse_activation("onnx_scaled_tanh(alpha=1.5, beta=0.5)")
    assert act == Activation("onnx_scaled_tanh", (("alpha", 1.5), ("beta", 0.5)))
    assert act(np.array([0.8]))[0] == pytest.approx(1.5 * math.tanh(0.4), abs=1e-15)
    # one parameter given: the other keeps its ONNX default (beta = 1)
    assert dict(parse_activation("onnx_scaled_tanh(alpha=2)").params) == {"alpha": 2.0, "beta": 1.0}
    # spaces and order do not matter
    assert parse_activation(" onnx_scaled_tanh( beta=0.5 , alpha=1.5 ) ") == act


@pytest.mark.parametrize("name, defaults", [
    ("onnx_affine", {"alpha": 1.0, "beta": 0.0}),
    ("onnx_leaky_relu", {"alpha": 0.01}),
    ("onnx_thresholded_relu", {"alpha": 1.0}),
    ("onnx_scaled_tanh", {"alpha": 1.0, "beta": 1.0}),
    ("onnx_hard_sigmoid", {"alpha": 0.2, "beta": 0.5}),
    ("onnx_elu", {"alpha": 1.0}),
])
def test_onnx_parameter_defaults(name, defaults):
    """ACT-20..ACT-25: parameters not given take the ONNX operator's defaults."""
    assert dict(parse_activation(name).params) == defaults


@pytest.mark.parametrize("spec, x, expected", [
    ("onnx_hard_sigmoid(alpha=0.3, beta=0.4)", 1.0, 0.7),
    ("onnx_hard_sigmoid(alpha=0.3, beta=0.4)", 3.0, 1.0),
    ("onnx_leaky_relu(alpha=0.1)", -2.0, -0.2),
    ("onnx_thresholded_relu(alpha=0.5)", 0.5, 0.0),  # strictly greater than alpha
    ("onnx_thresholded_relu(alpha=0.5)", 0.6, 0.6),
    ("onnx_elu(alpha=0.8)", -1.0, 0.8 * (math.exp(-1.0) - 1.0)),
    ("onnx_affine(alpha=0.7, beta=0.1)", 2.0, 1.5),
])
def test_onnx_parameters_are_applied(spec, x, expected):
    """ACT-20..ACT-25: given parameters change the function as the ONNX operator defines."""
    assert parse_activation(spec)(np.array([x]))[0] == pytest.approx(expected, abs=1e-15)


def test_config_activation_roles():
    """GATE-2: recurrent_activation drives i, f, o and activation drives g and act(c) (resolved on the Config)."""
    cfg = Config(input_dim=1, units=1, activation="onnx_scaled_tanh(alpha=1.5)", recurrent_activation="hard_sigmoid_keras3")
    assert cfg.act == Activation("onnx_scaled_tanh", (("alpha", 1.5), ("beta", 1.0)))
    assert cfg.recurrent_act.name == "hard_sigmoid_keras3"


def test_config_default_activations():
    """DEF-2: the defaults are activation = tanh, recurrent_activation = sigmoid (Keras >= 2.3, torch, ONNX, Flax)."""
    cfg = Config(input_dim=1, units=1)
    assert (cfg.activation, cfg.recurrent_activation) == ("tanh", "sigmoid")
    assert cfg.act.rule == "ACT-1" and cfg.recurrent_act.rule == "ACT-2"
