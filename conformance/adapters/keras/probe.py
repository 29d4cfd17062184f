"""Small pieces the Keras adapters' builds and runners share: the initialiser layers are built with, and the
probe that tells which kernel path a call took.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

__all__ = ["PathProbe", "numpy_zeros"]

_NUMPY_ZEROS: dict[str, type] = {}


def numpy_zeros(keras) -> Any:
    """A Keras initialiser returning zeros as a numpy array (a variable takes it without running a framework
    op), registered so that ``Bidirectional``, which rebuilds its backward layer from the layer's config, finds it."""
    cls = _NUMPY_ZEROS.get(keras.__name__)
    if cls is None:
        class NumpyZeros(keras.initializers.Initializer):
            def __call__(self, shape, dtype=None, **kwargs):
                return np.zeros(tuple(shape), dtype=np.dtype(getattr(dtype, "as_numpy_dtype", dtype) or "float32"))

            def get_config(self):
                return {}

        saving = getattr(keras, "saving", None)
        register = getattr(saving, "register_keras_serializable", None) or keras.utils.register_keras_serializable
        cls = _NUMPY_ZEROS[keras.__name__] = register(package="lstm_conformance")(NumpyZeros)
    return cls()


class PathProbe:
    """Records whether a Keras cell's Python ``call`` ran (the generic step loop) during one chain call.

    Fused kernels (cuDNN, Keras-on-torch's ``_fallback_lstm``) never call the cell. Under tracing
    (``tf.function``/``jax.jit``) the Python body runs only when a trace is made, so ``traced`` tells
    whether the observation is fresh or the runner reused an earlier trace.
    """

    def __init__(self):
        self.traced = False
        self.cell_ran = False

    def reset(self):
        self.traced = self.cell_ran = False

    def wrap(self, cell) -> None:
        original = cell.call

        @functools.wraps(original)
        def call(*args, **kwargs):
            self.cell_ran = True
            return original(*args, **kwargs)

        cell.call = call  # instance attribute: the Keras layer's __call__ dispatches to it
