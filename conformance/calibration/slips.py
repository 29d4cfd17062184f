"""Known semantic slips: mistakes a real framework binding could make, as small functions on the
reference's canonical weights and configs.

Calibration runs them on the reference itself to show how far above K a real slip lands (NUM-4); the
meta tests' broken adapters (meta_tests/broken_adapters.py) apply the same functions to a correct adapter
to show the suite flags them. Each function returns new objects; its input is left untouched.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from reference import GATES, Config, LayerWeights, Weights

__all__ = ["SLIPS", "Slip", "drop_forget_bias", "keras2_hard_sigmoid", "swap_input_forget"]

_I, _F = GATES.index("i"), GATES.index("f")


def _map_layers(weights: Weights, fn: Callable[[LayerWeights], None]) -> Weights:
    """A deep copy of ``weights`` with ``fn`` applied in place to each layer and direction's copy."""
    def changed(lw: LayerWeights) -> LayerWeights:
        new = LayerWeights(**{k: np.array(v, copy=True) for k, v in lw.arrays().items()})
        fn(new)
        return new

    return Weights([[changed(lw) for lw in dirs] for dirs in weights.layers])


def swap_input_forget(weights: Weights) -> Weights:
    """The i and f blocks of W, U, b (and b2) exchanged: a layout table with two gates in the wrong order."""
    def swap(lw: LayerWeights) -> None:
        for arr in (lw.W, lw.U, lw.b, lw.b2):
            if arr is not None:
                arr[[_I, _F]] = arr[[_F, _I]]

    return _map_layers(weights, swap)


def drop_forget_bias(weights: Weights) -> Weights:
    """The forget-gate chunk of every bias zeroed (e.g. a loader that skips ``unit_forget_bias``'s chunk)."""
    def drop(lw: LayerWeights) -> None:
        for arr in (lw.b, lw.b2):
            if arr is not None:
                arr[_F] = 0.0

    return _map_layers(weights, drop)


def keras2_hard_sigmoid(config: Config) -> Config:
    """Keras 2's ``hard_sigmoid`` (clip(0.2x + 0.5, 0, 1)) computed wherever Keras 3's (relu6(x + 3) / 6)
    is declared, as activation or recurrent_activation."""
    swap = {"hard_sigmoid_keras3": "hard_sigmoid_keras2"}
    return config.replace(activation=swap.get(config.activation, config.activation),
                          recurrent_activation=swap.get(config.recurrent_activation, config.recurrent_activation))


#: fn(config, weights) -> (reference config, slip config, slip weights), or None where the slip cannot apply
Slip = Callable[[Config, Weights], tuple[Config, Config, Weights] | None]


def _gate_swap(config: Config, weights: Weights):
    return config, config, swap_input_forget(weights)


def _forget_bias(config: Config, weights: Weights):
    return (config, config, drop_forget_bias(weights)) if config.use_bias else None


def _hard_sigmoid(config: Config, weights: Weights):
    # The slip needs hard_sigmoid in play: the recurrent activation (gates i, f, o) is Keras 3's
    # hard_sigmoid for the reference and Keras 2's for the slip; same weights and inputs.
    ref = config.replace(recurrent_activation="hard_sigmoid_keras3")
    return ref, keras2_hard_sigmoid(ref), weights


#: the slips calibration measures, by name
SLIPS: dict[str, Slip] = {
    "gate-swap-i-f": _gate_swap,
    "forget-bias-dropped": _forget_bias,
    "keras2-hard-sigmoid-for-keras3": _hard_sigmoid,
}
