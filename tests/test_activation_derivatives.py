"""The derivatives of the activation registry (spec/activations.md "Derivatives", GRAD-1, GRAD-4).

Each registry derivative is compared with its textbook derivative written with the ``math`` module, one
scalar at a time, away from kinks; at each kink the value is the convention the spec states (of the two
one-sided derivatives the one of smaller magnitude, 0 when they differ in sign: the minimum-norm sub- or
super-gradient of the PyTorch autograd notes), and the listed kinks are exactly where the one-sided
derivatives differ.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from reference import activation_names, parse_activation

POINTS = [-7.0, -3.1, -2.0, -1.0, -0.5, -1e-3, 1e-3, 0.3, 0.5, 1.0, 2.0, 2.9, 7.0]
SELU_A, SELU_S = 1.6732632423543772, 1.0507009873554805


def _sig(x):
    return 1.0 / (1.0 + math.exp(-x))


def _gelu_tanh_d(x):
    k = math.sqrt(2.0 / math.pi)
    t = math.tanh(k * (x + 0.044715 * x**3))
    return 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * k * (1 + 3 * 0.044715 * x * x)


# registry name -> independent scalar derivative (valid away from the kinks)
DERIVATIVES = {
    "tanh": lambda x: 1.0 / math.cosh(x) ** 2,
    "sigmoid": lambda x: _sig(x) * (1.0 - _sig(x)),
    "hard_sigmoid_keras2": lambda x: 0.2 if abs(x) < 2.5 else 0.0,
    "hard_sigmoid_keras3": lambda x: 1.0 / 6.0 if abs(x) < 3.0 else 0.0,
    "relu": lambda x: 1.0 if x > 0 else 0.0,
    "linear": lambda x: 1.0,
    "softsign": lambda x: 1.0 / (1.0 + abs(x)) ** 2,
    "softplus": _sig,
    "elu": lambda x: 1.0 if x > 0 else math.exp(x),
    "selu": lambda x: SELU_S if x > 0 else SELU_S * SELU_A * math.exp(x),
    "silu": lambda x: _sig(x) + x * _sig(x) * (1.0 - _sig(x)),
    "swish": lambda x: _sig(x) + x * _sig(x) * (1.0 - _sig(x)),
    "gelu": lambda x: 0.5 * (1.0 + math.erf(x / math.sqrt(2.0))) + x * math.exp(-x * x / 2) / math.sqrt(2 * math.pi),
    "gelu_tanh": _gelu_tanh_d,
    "exponential": math.exp,
    "leaky_relu": lambda x: 1.0 if x > 0 else 0.2,
    "onnx_affine": lambda x: 1.0,
    "onnx_leaky_relu": lambda x: 1.0 if x > 0 else 0.01,
    "onnx_thresholded_relu": lambda x: 1.0 if x > 1.0 else 0.0,
    "onnx_scaled_tanh": lambda x: 1.0 / math.cosh(x) ** 2,
    "onnx_hard_sigmoid": lambda x: 0.2 if abs(x) < 2.5 else 0.0,
    "onnx_elu": lambda x: 1.0 if x > 0 else math.exp(x),
    "onnx_scaled_tanh(alpha=1.5, beta=0.5)": lambda x: 0.75 / math.cosh(0.5 * x) ** 2,
    "onnx_hard_sigmoid(alpha=0.3, beta=0.4)": lambda x: 0.3 if 0 < 0.3 * x + 0.4 < 1 else 0.0,
    "onnx_elu(alpha=0.5)": lambda x: 1.0 if x > 0 else 0.5 * math.exp(x),
    "onnx_leaky_relu(alpha=-0.5)": lambda x: 1.0 if x > 0 else -0.5,
    "onnx_affine(alpha=0.7, beta=0.1)": lambda x: 0.7,
}

# (name, kink, the value the convention gives there)
AT_KINKS = [
    ("relu", 0.0, 0.0), ("leaky_relu", 0.0, 0.2), ("selu", 0.0, SELU_S), ("onnx_leaky_relu", 0.0, 0.01),
    ("onnx_leaky_relu(alpha=-0.5)", 0.0, 0.0), ("onnx_leaky_relu(alpha=3)", 0.0, 1.0),
    ("onnx_elu(alpha=0.5)", 0.0, 0.5), ("onnx_elu(alpha=2)", 0.0, 1.0), ("onnx_thresholded_relu", 1.0, 0.0),
    ("hard_sigmoid_keras2", -2.5, 0.0), ("hard_sigmoid_keras2", 2.5, 0.0), ("hard_sigmoid_keras3", -3.0, 0.0),
    ("hard_sigmoid_keras3", 3.0, 0.0), ("onnx_hard_sigmoid", -2.5, 0.0), ("onnx_hard_sigmoid", 2.5, 0.0),
]


def test_every_registry_name_has_a_derivative_here():
    """ACT-*: a new registry entry must come with its independent derivative in this file."""
    assert set(activation_names()) <= set(DERIVATIVES)


@pytest.mark.parametrize("name", sorted(DERIVATIVES))
def test_derivative_matches_textbook_formula_away_from_kinks(name):
    """ACT-*, GRAD-1: f'(x) at 13 points (none on a kink), float64, to 8 ulps of max(1, |f'|)."""
    act = parse_activation(name)
    got = act.derivative(np.array(POINTS))
    assert got.dtype == np.float64
    for x, d in zip(POINTS, got):
        exp = DERIVATIVES[name](x)
        assert abs(d - exp) <= 8 * np.finfo(float).eps * max(1.0, abs(exp)), f"{name}'({x}) = {d!r}, expected {exp!r}"


@pytest.mark.parametrize("name,kink,value", AT_KINKS)
def test_derivative_at_a_kink_is_the_minimum_norm_one_sided_value(name, kink, value):
    """ACT-* Derivatives: at a kink, of the two one-sided derivatives the one nearer 0 (0 if they differ in sign)."""
    act = parse_activation(name)
    assert kink in act.kinks
    assert act.derivative(np.array([kink]))[0] == pytest.approx(value, abs=1e-15)


@pytest.mark.parametrize("name", sorted(DERIVATIVES))
def test_listed_kinks_are_where_the_one_sided_derivatives_differ(name):
    """ACT-*: ``kinks`` lists every point where f is not differentiable on [-8, 8], and no other (one-sided
    difference quotients of f itself, so the list is checked against the function, not the derivative)."""
    act = parse_activation(name)
    h = 1e-7
    candidates = sorted(set(act.kinks) | {0.0, -3.0, -2.5, 2.5, 3.0, 1.0, 2.0})
    for k in candidates:
        x = np.array([k - h, k, k + h])
        y = act(x)
        left, right = (y[1] - y[0]) / h, (y[2] - y[1]) / h
        differs = abs(left - right) > 1e-4 or abs(y[2] - y[0]) > 1e-3  # a corner or a jump
        assert differs == (k in act.kinks), f"{name} at {k}: one-sided {left:.6g} / {right:.6g}, kinks {act.kinks}"


@pytest.mark.parametrize("dtype", [np.float16, np.float32])
@pytest.mark.parametrize("name", sorted(DERIVATIVES))
def test_derivative_keeps_the_dtype_under_test(name, dtype):
    """NUM-5: a derivative computes in the dtype it is given."""
    x = np.array([-1.0, 0.5, 2.0], dtype=dtype)
    d = parse_activation(name).derivative(x)
    assert d.dtype == dtype
    np.testing.assert_allclose(d.astype(float), [DERIVATIVES[name](float(v)) for v in x], rtol=5e-3, atol=1e-3)
