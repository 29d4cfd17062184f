"""Differences between Keras 3 releases the adapters meet, in one place (feature checks, not version
arithmetic). Supported range: Keras 3.0.0 to the latest, on TensorFlow, JAX and torch.

- ``keras.device`` (a device scope) exists from Keras 3.1; 3.0 has none, so the backend's own scope is used.
- The device-name form a scope accepts differs: on JAX, Keras 3.1-3.10 want ``"cpu:0"`` (a bare ``"cpu"``
  raises), while on torch Keras 3.15 builds variables only under a bare ``"cpu"``. The first form the
  release accepts is kept.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from contextlib import nullcontext

__all__ = ["device_scope", "choose_backend"]

_FORMS: dict[tuple[str, str], str] = {}  # (backend, device) -> the name this release's keras.device accepts


def choose_backend(candidates: tuple[str, ...]) -> None:
    """Before Keras is imported, with KERAS_BACKEND unset: the first installed of ``candidates``. Keras reads its
    backend once, at import, from KERAS_BACKEND, else ``~/.keras/keras.json`` (often 'tensorflow'), which may
    name a framework this environment lacks."""
    if "keras" in sys.modules or os.environ.get("KERAS_BACKEND"):
        return
    chosen = next((b for b in candidates if importlib.util.find_spec(b) is not None), None)
    if chosen:
        os.environ["KERAS_BACKEND"] = chosen


def _native_scope(backend: str, device: str):
    """The backend's own device scope (Keras 3.0, which has no ``keras.device``)."""
    if backend == "jax":
        import jax

        return jax.default_device(jax.devices("gpu" if device == "gpu" else "cpu")[0])
    if backend == "tensorflow":
        import tensorflow as tf

        return tf.device("/GPU:0" if device == "gpu" else "/CPU:0")
    return nullcontext()  # torch: Keras places tensors on its own default device


def device_scope(keras, backend: str, device: str):
    """A context manager placing the layer's variables and computation on ``device`` ('cpu' or 'gpu')."""
    if not hasattr(keras, "device"):
        return _native_scope(backend, device)
    key = (backend, device)
    if key not in _FORMS:
        for form in (device, f"{device}:0"):
            try:
                with keras.device(form):
                    pass
            except (ValueError, RuntimeError):
                continue
            _FORMS[key] = form
            break
        else:
            _FORMS[key] = device  # neither form enters: let the call raise the release's own error
    return keras.device(_FORMS[key])
