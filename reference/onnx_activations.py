"""ONNX LSTM activation attributes <-> registry activations (spec/activations.md ACT-20..ACT-25, ACT-30).

An ONNX LSTM node names its functions in ``activations`` (f, g, h per direction, forward first) and gives
their parameters in two flat lists, ``activation_alpha`` and ``activation_beta``. The operator text says
the values "are consumed in the order of activation functions" and that missing values take "the same
[defaults] as of corresponding ONNX operators" (https://onnx.ai/onnx/operators/onnx__LSTM.html). It does
not say whether a function without the parameter consumes a slot, and the ScaledTanh operator has no
default at all (onnx/defs/experiments/defs.cc, ScaledTanh-1: alpha and beta OPTIONAL, no value). Both gaps
are readings, named here (spec/README.md "Readings"), the first of each being this spec's convention:

- ``PARAMETER_ORDERS`` (ACT-30): ``per-function`` -- the lists hold values only for the functions that
  take the parameter, in function order (ONNX Runtime 1.32); ``per-slot`` -- one value per function slot,
  ignored by functions without the parameter.
- ``SCALED_TANH_DEFAULTS`` (ACT-23): ``unity`` -- alpha = beta = 1 (plain tanh); ``zero`` -- alpha =
  beta = 0 (what ONNX Runtime 1.32's LSTM kernel takes: the function is 0).

Canonical configs have one ``activation`` for g and h (GATE-2), so a node maps to (ract, act, act).
"""

from __future__ import annotations

from .activations import ACTIVATIONS, Activation, parse_activation

__all__ = ["ONNX_ACTIVATION_NAMES", "PARAMETER_ORDERS", "SCALED_TANH_DEFAULTS", "from_onnx_activations",
           "to_onnx_activations"]

#: ONNX function name -> registry name (ACT-30); the ONNX HardSigmoid is ACT-24, not either Keras one
ONNX_ACTIVATION_NAMES = {
    "Sigmoid": "sigmoid", "Tanh": "tanh", "Relu": "relu", "HardSigmoid": "onnx_hard_sigmoid",
    "Affine": "onnx_affine", "LeakyRelu": "onnx_leaky_relu", "ThresholdedRelu": "onnx_thresholded_relu",
    "ScaledTanh": "onnx_scaled_tanh", "Elu": "onnx_elu", "Softsign": "softsign", "Softplus": "softplus",
}
_REGISTRY_TO_ONNX = {v: k for k, v in ONNX_ACTIVATION_NAMES.items()}
PARAMETER_ORDERS = ("per-function", "per-slot")  # ACT-30 readings
SCALED_TANH_DEFAULTS = {"unity": (1.0, 1.0), "zero": (0.0, 0.0)}  # ACT-23 readings
_PARAMETERS = ("alpha", "beta")  # activation_alpha feeds a function's alpha, activation_beta its beta


def _check(order: str, scaled_tanh: str) -> None:
    if order not in PARAMETER_ORDERS:
        raise ValueError(f"order={order!r}: allowed values are {', '.join(PARAMETER_ORDERS)} (ACT-30)")
    if scaled_tanh not in SCALED_TANH_DEFAULTS:
        raise ValueError(f"scaled_tanh={scaled_tanh!r}: allowed values are {', '.join(SCALED_TANH_DEFAULTS)} (ACT-23)")


def _defaults(name: str, scaled_tanh: str) -> dict[str, float]:
    if name == "onnx_scaled_tanh":
        return dict(zip(_PARAMETERS, SCALED_TANH_DEFAULTS[scaled_tanh]))
    return dict(ACTIVATIONS[name].params)


def from_onnx_activations(names: list[str], alpha: list[float] | None = None, beta: list[float] | None = None,
                          *, order: str = "per-function", scaled_tanh: str = "unity") -> list[Activation]:
    """The registry activations an ONNX node computes, one per entry of ``names`` (f, g, h[, f, g, h]).

    ``order`` and ``scaled_tanh`` select the readings above; a parameter with no value in its list takes
    its operator default (ACT-20..ACT-25), ScaledTanh's by ``scaled_tanh``.
    """
    _check(order, scaled_tanh)
    values = {"alpha": list(alpha or []), "beta": list(beta or [])}
    used = {"alpha": 0, "beta": 0}
    out = []
    for slot, onnx_name in enumerate(names):
        if onnx_name not in ONNX_ACTIVATION_NAMES:
            raise ValueError(f"activations[{slot}]={onnx_name!r} is not an ONNX LSTM activation; allowed: "
                             f"{', '.join(ONNX_ACTIVATION_NAMES)}")
        name = ONNX_ACTIVATION_NAMES[onnx_name]
        given = {}
        for p in (k for k, _ in ACTIVATIONS[name].params):
            k = slot if order == "per-slot" else used[p]
            if k < len(values[p]):
                given[p] = float(values[p][k])
            used[p] += 1
        params = {**_defaults(name, scaled_tanh), **given}
        out.append(Activation(name, tuple((k, params[k]) for k, _ in ACTIVATIONS[name].params)))
    return out


def to_onnx_activations(activations: list[str | Activation], *, order: str = "per-function") -> dict:
    """ONNX attributes ``activations`` / ``activation_alpha`` / ``activation_beta`` for registry activations.

    Every parameter is written explicitly, so the node does not depend on a runtime's defaults (ACT-23: the
    text gives ScaledTanh none). ``order`` is the ACT-30 reading; under ``per-slot`` a function without a
    parameter holds a placeholder 0.0 in that list.
    """
    _check(order, "unity")
    acts = [parse_activation(a) for a in activations]
    attrs: dict[str, list] = {"activations": []}
    lists: dict[str, list[float]] = {"alpha": [], "beta": []}
    for act in acts:
        if act.name not in _REGISTRY_TO_ONNX:
            raise ValueError(f"activation {act} has no ONNX LSTM name; allowed: {', '.join(sorted(_REGISTRY_TO_ONNX))}")
        attrs["activations"].append(_REGISTRY_TO_ONNX[act.name])
        params = dict(act.params)
        for p in _PARAMETERS:
            if p in params:
                lists[p].append(float(params[p]))
            elif order == "per-slot":
                lists[p].append(0.0)
    for p in _PARAMETERS:
        if any(p in dict(a.params) for a in acts):
            attrs[f"activation_{p}"] = lists[p]
    return attrs
