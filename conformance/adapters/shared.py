"""Mechanics more than one adapter needs, each written once: the cache of built layers, sequence lengths
from a mask, switching reduced-precision matmuls off, and the canonical per-layer/direction state layout.

Framework imports stay inside the functions (DESIGN §1: ``import conformance`` needs no framework).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable, Sequence
from typing import Any

import numpy as np

from .base import Unsupported

__all__ = ["LayerCache", "right_padded_lengths", "lengths_from_mask", "ieee_matmuls_torch", "ieee_matmuls_tf",
           "ieee_matmuls_jax", "torch_devices", "layer_major", "per_layer"]


class LayerCache:
    """Built layers, modules or sessions by structure key, least recently used dropped beyond ``maxsize``.

    Building costs far more than a forward call on the suite's small cases (a Keras layer up to ~0.85 s, a
    traced graph or an ORT session tens of ms), and a CI run meets a few dozen structures; the bound keeps
    traced graphs and sessions from piling up over a long run.
    """

    def __init__(self, maxsize: int):
        if maxsize < 1:
            raise ValueError(f"LayerCache maxsize={maxsize}: must be >= 1")
        self.maxsize = maxsize
        self._items: OrderedDict[Hashable, Any] = OrderedDict()

    def get(self, key: Hashable) -> Any | None:
        """The entry for ``key`` (now the most recently used), or None."""
        item = self._items.get(key)
        if item is not None:
            self._items.move_to_end(key)
        return item

    def put(self, key: Hashable, item: Any) -> Any:
        """Store ``item`` as the most recently used; returns it."""
        self._items[key] = item
        self._items.move_to_end(key)
        while len(self._items) > self.maxsize:
            self._items.popitem(last=False)
        return item

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, key: Hashable) -> bool:
        return key in self._items


# ---- masks as sequence lengths (MASK-1) ---------------------------------------------------------------
def right_padded_lengths(mask: np.ndarray) -> np.ndarray | None:
    """Each row's number of valid steps when every row of ``mask[B, T]`` is valid steps then padding;
    None for any other mask (a gap, or a valid step after padding)."""
    mask = np.asarray(mask, dtype=bool)
    lengths = mask.sum(axis=1)
    if not np.array_equal(mask, np.arange(mask.shape[1])[None, :] < lengths[:, None]):
        return None
    return lengths


def lengths_from_mask(adapter: str, mask: np.ndarray, masked_output: str, *, via: str) -> np.ndarray:
    """Sequence lengths for a framework that takes lengths, not masks (``via``: its argument, e.g.
    ``'sequence_lens'``), and zero-fills the output past each length (MASK-2 'zero').

    Raises Unsupported for any other masked-output rule and for masks that are not right-padded.
    """
    if masked_output != "zero":
        raise Unsupported(f"{adapter}: padded steps output zeros (MASK-2 'zero'), not {masked_output!r}")
    lengths = right_padded_lengths(mask)
    if lengths is None:
        raise Unsupported(f"{adapter}: only right-padded masks ({via}) are expressible")
    return lengths


# ---- matmul precision (NUM-3) -------------------------------------------------------------------------
# float32 checks need IEEE float32 matmuls: TF32 (10-bit mantissa) is a different, much looser error model
# (DESIGN §3). Each function switches it off where the framework would use it and returns the precision
# now in force, recorded with each result ('ieee' or 'tf32').

def ieee_matmuls_torch(device: str) -> str:
    """torch: TF32 is off by default for CUDA matmuls but on for cuDNN (so cuDNN RNNs would use it)."""
    if device != "gpu":
        return "ieee"
    import torch

    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    tf32 = torch.backends.cuda.matmul.allow_tf32 or torch.backends.cudnn.allow_tf32
    return "tf32" if tf32 else "ieee"


def ieee_matmuls_tf(device: str) -> str:
    """TensorFlow enables TF32 matmuls and convolutions by default on Ampere and later GPUs."""
    if device != "gpu":
        return "ieee"
    import tensorflow as tf

    tf.config.experimental.enable_tensor_float_32_execution(False)
    return "tf32" if tf.config.experimental.tensor_float_32_execution_enabled() else "ieee"


def ieee_matmuls_jax(device: str) -> str:
    """JAX's default matmul precision on GPUs may use TF32; 'highest' is full float32."""
    if device != "gpu":
        return "ieee"
    import jax

    jax.config.update("jax_default_matmul_precision", "highest")
    return "ieee"


def jax_devices() -> list[str]:
    """Devices a JAX-based adapter can run on."""
    import jax

    try:
        gpus = jax.devices("gpu")
    except RuntimeError:  # no GPU backend in this jaxlib
        gpus = []
    return ["cpu"] + (["gpu"] if gpus else [])


def torch_devices() -> list[str]:
    """Devices a torch-based adapter can run on."""
    import torch

    return ["cpu"] + (["gpu"] if torch.cuda.is_available() else [])


# ---- state layout (STATE-1) ---------------------------------------------------------------------------
def layer_major(initial_state) -> tuple[list, list]:
    """Canonical ``initial_state[layer][direction] = (h, c)`` as two flat lists ``[l0 fwd, l0 bwd, l1 fwd,
    ...]`` (torch's h0/c0 and ONNX's initial_h/initial_c order)."""
    pairs = [pair for dirs in initial_state for pair in dirs]
    return [np.asarray(h) for h, _ in pairs], [np.asarray(c) for _, c in pairs]


def per_layer(flat: Sequence, num_layers: int, num_directions: int) -> list[list]:
    """A layer-major sequence (``[l0 fwd, l0 bwd, l1 fwd, ...]``, e.g. torch's h_n) as ``[layer][direction]``."""
    if len(flat) != num_layers * num_directions:
        raise ValueError(f"{len(flat)} states for {num_layers} layer(s) x {num_directions} direction(s)")
    return [[flat[l * num_directions + d] for d in range(num_directions)] for l in range(num_layers)]
