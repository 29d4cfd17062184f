"""Activation registry (spec/activations.md, rules ACT-*).

Every registry name maps to exactly one formula. Frameworks that reuse a name for different
functions (``hard_sigmoid`` in Keras 2 vs Keras 3) are mapped by their adapters to the registry
name they really compute; the registry itself never guesses.

Names may carry ONNX-style parameters, e.g. ``"onnx_scaled_tanh(alpha=1.5, beta=0.5)"``; parameters
that are not given take the defaults of the corresponding ONNX operator (ACT-20..ACT-25), except
ScaledTanh's, which ONNX does not define: its 1 and 1 are this spec's convention (ACT-23 reading 'unity').

Each entry also carries its derivative (``Activation.derivative``, used by the backward pass, GRAD-1) and
the points where the function is not differentiable (``Activation.kinks``). At a kink the derivative is
the one of minimum magnitude between the two one-sided derivatives (0 when they differ in sign), the
minimum-norm sub-/super-gradient of the PyTorch autograd notes; at the jump of ``onnx_thresholded_relu``
it is the derivative of the piece holding the point (0). spec/activations.md, "Derivatives".
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Callable

import numpy as np

__all__ = ["ACTIVATIONS", "Activation", "parse_activation", "activation_names", "apply_activation"]


def _sigmoid(x):
    # ACT-2: 1 / (1 + exp(-x)), evaluated without overflow for large |x|: with e = exp(-|x|) <= 1 it is
    # 1 / (1 + e) for x >= 0 and e / (1 + e) for x < 0. One exp and one division serve both branches: the
    # numerator max(e, sign(x)) is 1 for x > 0, e = 1 at x = 0, e for x < 0 (sign -1 < e) and NaN for NaN.
    e = np.exp(-np.abs(x))
    out = np.maximum(e, np.sign(x))
    out /= 1 + e
    return out


def _d_sigmoid_from_output(y):
    # ACT-2: sigmoid' = s (1 - s) with s = sigmoid(x)
    return y * (1 - y)


def _softplus(x):
    # ACT-8: log(1 + exp(x)), stable form max(x, 0) + log1p(exp(-|x|)).
    return (np.maximum(x, 0) + np.log1p(np.exp(-np.abs(x)))).astype(x.dtype, copy=False)


def _elu(x, alpha):
    return np.where(x > 0, x, alpha * np.expm1(np.minimum(x, 0))).astype(x.dtype, copy=False)


_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_SCALE = 1.0507009873554804934193349852946


def _gelu_exact(x):
    # ACT-13: x * Phi(x) = 0.5 x (1 + erf(x / sqrt 2)) = 0.5 x erfc(-x / sqrt 2); numpy has no erf ufunc, so
    # vectorise math.erfc. The erfc form keeps the negative tail: 1 + erf(x / sqrt 2) cancels to 0 in float64
    # below x ~ -8.3 (and loses digits from x ~ -5), where x * Phi(x) is still a normal float (-8.05e-34 at
    # x = -12.27, as TF and JAX compute it).
    erfc = np.vectorize(math.erfc, otypes=[np.float64])(-x.astype(np.float64) / math.sqrt(2.0))
    return (0.5 * x.astype(np.float64) * erfc).astype(x.dtype, copy=False)


def _d_gelu_exact(x):
    # d/dx x Phi(x) = Phi(x) + x phi(x), in float64 as the function itself
    x64 = x.astype(np.float64)
    erfc = np.vectorize(math.erfc, otypes=[np.float64])(-x64 / math.sqrt(2.0))
    return (0.5 * erfc + x64 * np.exp(-0.5 * x64 * x64) / math.sqrt(2.0 * math.pi)).astype(x.dtype, copy=False)


def _d_gelu_tanh(x):
    c, k = np.asarray(math.sqrt(2.0 / math.pi), dtype=x.dtype), np.asarray(0.044715, x.dtype)
    t = np.tanh(c * (x + k * x**3))
    return (0.5 * (1 + t) + 0.5 * x * (1 - t * t) * c * (1 + 3 * k * x * x)).astype(x.dtype, copy=False)


def _d_silu(x):
    s = _sigmoid(x)
    return s * (1 + x * (1 - s))  # d/dx x s(x) = s + x s (1 - s)


def _min_norm(left, right):
    """The derivative at a kink: of the one-sided derivatives, the one nearer 0 (0 if they differ in sign)."""
    return np.where(left * right <= 0, 0, np.where(np.abs(left) <= np.abs(right), left, right))


def _d_elu(x, alpha):
    # 1 for x > 0, alpha e^x for x < 0; at 0 (a kink unless alpha = 1) the minimum-norm value of (alpha, 1)
    at0 = _min_norm(alpha, np.asarray(1, x.dtype))
    return np.where(x > 0, 1, np.where(x < 0, alpha * np.exp(np.minimum(x, 0)), at0)).astype(x.dtype, copy=False)


def _d_leaky(x, alpha):
    at0 = _min_norm(alpha, np.asarray(1, x.dtype))
    return np.where(x > 0, 1, np.where(x < 0, alpha, at0)).astype(x.dtype, copy=False)


def _d_clip(y, slope, top=1):
    # derivative of clip(y, 0, top) with y = slope x + offset: slope strictly inside, 0 at and beyond the kinks
    return np.where((y > 0) & (y < top), slope, 0).astype(y.dtype, copy=False)


def _gelu_tanh(x):
    # ACT-14: 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))
    c = np.asarray(math.sqrt(2.0 / math.pi), dtype=x.dtype)
    return (0.5 * x * (1 + np.tanh(c * (x + np.asarray(0.044715, x.dtype) * x**3)))).astype(x.dtype, copy=False)


@dataclass(frozen=True)
class _Entry:
    rule: str
    formula: str
    fn: Callable[..., np.ndarray]
    params: tuple[tuple[str, float], ...] = ()  # (name, ONNX default) in the order ONNX consumes them
    dfn: Callable[..., np.ndarray] | None = None  # derivative f'(x, *params), same dtype as x (GRAD-1)
    # f' written through the output y = f(x), where that is dfn's own arithmetic (the same numbers without
    # evaluating f again; the backward pass has y from the forward trace)
    dfn_y: Callable[..., np.ndarray] | None = None
    kinks: Callable[..., tuple[float, ...]] = lambda *params: ()  # where f' is undefined, given the params


# name -> entry. Functions receive x in the dtype under test and return the same dtype.
def _dt(v, x):
    return np.asarray(v, x.dtype)


_ONE = lambda x, *p: np.ones_like(x)  # noqa: E731
_AT_ZERO = lambda *p: (0.0,)  # noqa: E731

# name -> entry. Functions receive x in the dtype under test and return the same dtype; ``dfn`` is f' (the
# minimum-norm value at a kink, module docstring), ``kinks`` the points where f' is undefined (GRAD-1).
ACTIVATIONS: dict[str, _Entry] = {
    "tanh": _Entry("ACT-1", "tanh(x)", lambda x: np.tanh(x), dfn=lambda x: 1 - np.tanh(x) ** 2,
                   dfn_y=lambda y: 1 - y ** 2),
    "sigmoid": _Entry("ACT-2", "1 / (1 + exp(-x))", _sigmoid, dfn=lambda x: _d_sigmoid_from_output(_sigmoid(x)),
                      dfn_y=_d_sigmoid_from_output),
    "hard_sigmoid_keras2": _Entry(
        "ACT-3", "clip(0.2 x + 0.5, 0, 1)  (tf-keras / Keras 2 `hard_sigmoid`)",
        lambda x: np.clip(np.asarray(0.2, x.dtype) * x + np.asarray(0.5, x.dtype), 0, 1).astype(x.dtype),
        dfn=lambda x: _d_clip(_dt(0.2, x) * x + _dt(0.5, x), 0.2), kinks=lambda: (-2.5, 2.5),
    ),
    "hard_sigmoid_keras3": _Entry(
        "ACT-4", "relu6(x + 3) / 6 = clip(x / 6 + 0.5, 0, 1)  (Keras 3 `hard_sigmoid`)",
        lambda x: (np.clip(x + np.asarray(3, x.dtype), 0, 6) / np.asarray(6, x.dtype)).astype(x.dtype),
        dfn=lambda x: _d_clip(x + _dt(3, x), 1 / 6, top=6), kinks=lambda: (-3.0, 3.0),
    ),
    "relu": _Entry("ACT-5", "max(x, 0)", lambda x: np.maximum(x, np.asarray(0, x.dtype)),
                   dfn=lambda x: (x > 0).astype(x.dtype), kinks=_AT_ZERO),
    "linear": _Entry("ACT-6", "x", lambda x: x, dfn=_ONE),
    "softsign": _Entry("ACT-7", "x / (1 + |x|)", lambda x: x / (1 + np.abs(x)), dfn=lambda x: 1 / (1 + np.abs(x)) ** 2),
    "softplus": _Entry("ACT-8", "log(1 + exp(x))", _softplus, dfn=_sigmoid),
    "elu": _Entry("ACT-9", "x if x > 0 else exp(x) - 1", lambda x: _elu(x, np.asarray(1.0, x.dtype)),
                  dfn=lambda x: _d_elu(x, _dt(1.0, x))),
    "selu": _Entry(
        "ACT-10", "scale * (x if x > 0 else alpha (exp(x) - 1)), alpha=1.67326..., scale=1.05070...",
        lambda x: (np.asarray(_SELU_SCALE, x.dtype) * _elu(x, np.asarray(_SELU_ALPHA, x.dtype))).astype(x.dtype),
        dfn=lambda x: (_dt(_SELU_SCALE, x) * _d_elu(x, _dt(_SELU_ALPHA, x))).astype(x.dtype), kinks=_AT_ZERO,
    ),
    "silu": _Entry("ACT-11", "x * sigmoid(x)  (also called swish)", lambda x: x * _sigmoid(x), dfn=_d_silu),
    "gelu": _Entry("ACT-13", "0.5 x (1 + erf(x / sqrt(2)))  (exact)", _gelu_exact, dfn=_d_gelu_exact),
    "gelu_tanh": _Entry("ACT-14", "0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))", _gelu_tanh, dfn=_d_gelu_tanh),
    "exponential": _Entry("ACT-15", "exp(x)", lambda x: np.exp(x), dfn=lambda x: np.exp(x), dfn_y=lambda y: y),
    "leaky_relu": _Entry(
        "ACT-16", "x if x >= 0 else 0.2 x  (Keras default negative_slope 0.2)",
        lambda x: np.where(x >= 0, x, np.asarray(0.2, x.dtype) * x).astype(x.dtype),
        dfn=lambda x: _d_leaky(x, _dt(0.2, x)), kinks=_AT_ZERO,
    ),
    # ONNX parameterised activations (Operators.md, LSTM `activations`, `activation_alpha/beta`).
    "onnx_affine": _Entry(
        "ACT-20", "alpha * x + beta", lambda x, a, b: (a * x + b).astype(x.dtype), (("alpha", 1.0), ("beta", 0.0)),
        dfn=lambda x, a, b: np.full_like(x, a),
    ),
    "onnx_leaky_relu": _Entry(
        "ACT-21", "x if x >= 0 else alpha x", lambda x, a: np.where(x >= 0, x, a * x).astype(x.dtype),
        (("alpha", 0.01),), dfn=_d_leaky, kinks=lambda a: () if a == 1 else (0.0,),
    ),
    "onnx_thresholded_relu": _Entry(
        "ACT-22", "x if x > alpha else 0", lambda x, a: np.where(x > a, x, 0).astype(x.dtype), (("alpha", 1.0),),
        dfn=lambda x, a: (x > a).astype(x.dtype), kinks=lambda a: (a,),  # a jump for alpha != 0
    ),
    "onnx_scaled_tanh": _Entry(  # ONNX gives no default: alpha = beta = 1 is the convention 'unity' (ACT-23)
        "ACT-23", "alpha * tanh(beta * x)", lambda x, a, b: (a * np.tanh(b * x)).astype(x.dtype),
        (("alpha", 1.0), ("beta", 1.0)), dfn=lambda x, a, b: (a * b * (1 - np.tanh(b * x) ** 2)).astype(x.dtype),
    ),
    "onnx_hard_sigmoid": _Entry(
        "ACT-24", "max(0, min(1, alpha x + beta))", lambda x, a, b: np.clip(a * x + b, 0, 1).astype(x.dtype),
        (("alpha", 0.2), ("beta", 0.5)), dfn=lambda x, a, b: _d_clip(a * x + b, a),
        kinks=lambda a, b: () if a == 0 else (-b / a, (1 - b) / a),
    ),
    "onnx_elu": _Entry("ACT-25", "x if x > 0 else alpha (exp(x) - 1)", _elu, (("alpha", 1.0),), dfn=_d_elu,
                       kinks=lambda a: () if a == 1 else (0.0,)),
}
# ACT-12: swish is the same function as silu (same formula object), listed under its own rule.
ACTIVATIONS["swish"] = _Entry("ACT-12", "x * sigmoid(x)  (same function as silu, ACT-11)", ACTIVATIONS["silu"].fn,
                              dfn=ACTIVATIONS["silu"].dfn)


def activation_names() -> list[str]:
    return sorted(ACTIVATIONS)


_CALL = re.compile(r"^\s*([a-z0-9_]+)\s*(?:\((.*)\))?\s*$")


@dataclass(frozen=True)
class Activation:
    """A registry function with its parameters bound (ONNX alpha/beta), callable on arrays."""

    name: str
    params: tuple[tuple[str, float], ...] = ()

    @property
    def rule(self) -> str:
        return ACTIVATIONS[self.name].rule

    def __call__(self, x: np.ndarray) -> np.ndarray:
        entry = ACTIVATIONS[self.name]
        if not self.params:
            return entry.fn(x)
        return entry.fn(x, *(np.asarray(v, dtype=x.dtype) for _, v in self.params))

    def derivative(self, x: np.ndarray, y: np.ndarray | None = None) -> np.ndarray:
        """f'(x) in x's dtype; at a kink the minimum-norm one-sided value (spec/activations.md, Derivatives).

        ``y``, when given, must be ``f(x)`` as this activation computed it (the forward trace's value): a
        derivative that is a formula in the output (sigmoid, tanh, exponential) then reads it instead of
        evaluating f again, with the same arithmetic and so the same numbers.
        """
        entry = ACTIVATIONS[self.name]
        if y is not None and entry.dfn_y is not None:
            return entry.dfn_y(y)
        args = [np.asarray(v, dtype=x.dtype) for _, v in self.params]
        return entry.dfn(x, *args)

    @property
    def kinks(self) -> tuple[float, ...]:
        """The points where f is not differentiable (a finite-difference check must stay away from them)."""
        return tuple(float(k) for k in ACTIVATIONS[self.name].kinks(*(v for _, v in self.params)))

    def __str__(self) -> str:
        if not self.params:
            return self.name
        return f"{self.name}({', '.join(f'{k}={v!r}' for k, v in self.params)})"


def parse_activation(spec: str, *, field: str = "activation") -> Activation:
    """Parse ``"name"`` or ``"name(alpha=.., beta=..)"`` into an :class:`Activation`.

    Raises one ``ValueError`` naming ``field``, the bad value and the allowed names/parameters.
    """
    if isinstance(spec, Activation):
        return spec
    if not isinstance(spec, str):
        raise ValueError(f"{field}={spec!r}: expected an activation name (str); allowed: {', '.join(activation_names())}")
    m = _CALL.match(spec)
    if not m or m.group(1) not in ACTIVATIONS:
        raise ValueError(f"{field}={spec!r} is not a known activation; allowed: {', '.join(activation_names())}")
    name, argtext = m.group(1), m.group(2)
    entry = ACTIVATIONS[name]
    defaults = dict(entry.params)
    given: dict[str, float] = {}
    if argtext and argtext.strip():
        for part in argtext.split(","):
            key, eq, val = part.partition("=")
            key = key.strip()
            if not eq or key not in defaults:
                allowed = ", ".join(defaults) or "none"
                raise ValueError(f"{field}={spec!r}: parameter {part.strip()!r} not accepted by {name}; parameters: {allowed}")
            try:
                given[key] = float(val)
            except ValueError:
                raise ValueError(f"{field}={spec!r}: parameter {key} must be a number, got {val.strip()!r}") from None
            if not math.isfinite(given[key]):
                raise ValueError(f"{field}={spec!r}: parameter {key} must be finite")
    params = tuple((k, given.get(k, d)) for k, d in entry.params)
    return Activation(name, params)


def apply_activation(spec: str, x: np.ndarray) -> np.ndarray:
    return parse_activation(spec)(np.asarray(x))
