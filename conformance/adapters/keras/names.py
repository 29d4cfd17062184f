"""Keras activation names and the registry function each computes (ACT-30), for Keras 3 and tf-keras.

The same name can mean different functions by API (``hard_sigmoid``: ACT-3 in tf-keras, ACT-4 in Keras 3),
so each adapter declares its own table (DEF-3).
"""

from __future__ import annotations

from collections.abc import Callable

__all__ = ["keras_activations", "gelu_approximate", "GELU_TANH_NAME"]

#: Activation-call names that are not plain strings: resolved to a callable by the adapter (ACT-14).
GELU_TANH_NAME = "gelu(approximate=True)"


def keras_activations(hard_sigmoid: str) -> dict[str, str]:
    """Keras activation name -> registry function it computes (ACT-30), verified by
    ``test_activation_choices_match_registry`` on every backend.

    The one name whose function differs between the APIs is ``hard_sigmoid`` (ACT-3 vs ACT-4), hence the
    argument. ``'gelu'`` is the exact erf form in both (``approximate=False`` default); the tanh form is
    only reachable as ``gelu(x, approximate=True)``. ``'leaky_relu'`` uses the default slope 0.2 (Keras 3
    ``negative_slope=0.2``, tf-keras ``tf.nn.leaky_relu(alpha=0.2)``).
    """
    names = ["tanh", "sigmoid", "relu", "linear", "softsign", "softplus", "elu", "selu", "silu", "swish", "gelu",
             "exponential", "leaky_relu"]
    table = {n: n for n in names}
    table["hard_sigmoid"] = hard_sigmoid
    table[GELU_TANH_NAME] = "gelu_tanh"
    return table


_GELU_APPROXIMATE: dict[str, Callable] = {}


def gelu_approximate(keras) -> Callable:
    """``gelu(x, approximate=True)`` as a registered serializable function: Bidirectional builds its backward
    layer from the forward layer's config, which cannot serialize a ``functools.partial``."""
    fn = _GELU_APPROXIMATE.get(keras.__name__)
    if fn is None:
        def gelu_approximate(x):
            return keras.activations.gelu(x, approximate=True)

        register = keras.saving.register_keras_serializable(package="lstm_conformance", name="gelu_approximate")
        fn = _GELU_APPROXIMATE[keras.__name__] = register(gelu_approximate)
    return fn
