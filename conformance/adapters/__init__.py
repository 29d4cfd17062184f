"""Adapter registry: built-in adapters plus the ``lstm_conformance.adapters`` entry-point group.

One module per framework, named after its backend (``torch.py``, ``onnxruntime.py``; the Keras family in
``keras/``), the API in ``base.py`` and what several adapters need in ``shared.py``. Adapter modules import
their framework lazily (inside methods), so listing adapters never imports a framework; a missing framework
shows as *not installed* with the import error as its reason. A module named like its framework does not
shadow it: every import of a framework is absolute.
"""

from __future__ import annotations

import importlib
from importlib.metadata import entry_points

from .base import Adapter, Capabilities, Output, Unsupported

__all__ = ["Adapter", "Capabilities", "Output", "Unsupported", "BUILTIN", "available_names", "load", "all_names"]

#: name -> "module:attribute" (attribute is an Adapter subclass or an instance)
BUILTIN: dict[str, str] = {
    "numpy": "conformance.adapters.numpy_ref:NumpyAdapter",
    "keras-tensorflow": "conformance.adapters.keras.keras3:KerasTensorFlowAdapter",
    "keras-jax": "conformance.adapters.keras.keras3:KerasJaxAdapter",
    "keras-torch": "conformance.adapters.keras.keras3:KerasTorchAdapter",
    "tf-keras": "conformance.adapters.keras.tf_keras:TfKerasAdapter",
    "torch": "conformance.adapters.torch:TorchAdapter",
    "onnxruntime": "conformance.adapters.onnxruntime:OnnxRuntimeAdapter",
    "flax": "conformance.adapters.flax:FlaxAdapter",
    "torch-onnx": "conformance.adapters.exported:TorchOnnxAdapter",
    "torch-onnx-dynamo": "conformance.adapters.exported:TorchOnnxDynamoAdapter",
    "tf-keras-litert": "conformance.adapters.litert:TfKerasLiteRTAdapter",
    "keras-torch-onnx": "conformance.adapters.keras_onnx:KerasTorchOnnxAdapter",
    "keras-tensorflow-onnx": "conformance.adapters.keras_onnx:KerasTensorFlowOnnxAdapter",
    "tf-keras-onnx": "conformance.adapters.keras_onnx:TfKerasOnnxAdapter",
    "keras-jax-onnx": "conformance.adapters.keras_onnx:KerasJaxOnnxAdapter",
}

ENTRY_POINT_GROUP = "lstm_conformance.adapters"


def _entry_points() -> dict[str, str]:
    return {ep.name: ep.value for ep in entry_points(group=ENTRY_POINT_GROUP)}


def all_names() -> list[str]:
    names = dict(BUILTIN)
    names.update(_entry_points())
    return list(names)


def load(name: str) -> Adapter:
    """Instantiate adapter ``name``; raise ValueError naming the allowed names if unknown."""
    table = dict(BUILTIN)
    table.update(_entry_points())
    if name not in table:
        raise ValueError(f"--backend {name!r} is not a known adapter; allowed: {', '.join(table)}")
    module, _, attr = table[name].partition(":")
    obj = getattr(importlib.import_module(module), attr)
    adapter = obj() if isinstance(obj, type) else obj
    if not isinstance(adapter, Adapter):
        raise TypeError(f"adapter {name!r} ({table[name]}) is not a conformance.adapters.Adapter")
    return adapter


def available_names() -> list[str]:
    """Adapters whose framework is importable here."""
    out = []
    for name in all_names():
        try:
            adapter = load(name)
        except ImportError:
            continue
        if adapter.unavailable_reason() is None:
            out.append(name)
    return out
