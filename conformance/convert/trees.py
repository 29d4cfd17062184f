"""The two formats whose LSTM tensors sit in a tree of named groups: a Keras 3 ``.weights.h5`` file and a Flax
parameter tree saved with ``flax.serialization`` (``.msgpack``).

Keras ``.weights.h5`` (``model.save_weights``): one group per layer under ``layers/``, named by Keras' saving
walk (``lstm``, ``lstm_1``, ..., ``bidirectional``, ...; not the layer names), an LSTM's variables in
``<layer>/cell/vars/0..2`` (kernel, recurrent_kernel, bias: LAYOUT-2) and a Bidirectional's in
``<layer>/forward_layer/...`` and ``<layer>/backward_layer/...``. Reading needs h5py only (Keras' own
dependency); the groups are taken in the saving walk's order (the number after the last ``_``), and groups of
other layers are ignored. Writing builds the Sequential stack ``formats`` writes as ``.keras`` and saves its
weights, so the file loads into that model with ``model.load_weights``.

Flax (LAYOUT-5): the ``params`` of ``flax.linen.LSTMCell`` / ``nnx.LSTMCell`` (``ii .. io`` input kernels,
``hi .. ho`` hidden kernels with the bias; nnx spells ``if`` as ``if_``) or of ``OptimizedLSTMCell`` (fused
``dense_i`` / ``dense_h``, LAYOUT-2's column order), anywhere in the tree: a cell under a path with a part
starting ``backward`` is the backward direction (``nn.Bidirectional``'s ``backward_rnn``), and cells that share
the rest of their path are one layer; layers are taken in the order of the number in their path
(``layers_0``, ``layers_1``, ...). Cells whose paths say neither (made inline in a compact module:
``OptimizedLSTMCell_0``, ``_1``, ...; none under an ``RNN``'s ``cell``) are a flat list, read like a Keras
``get_weights()`` list: the shapes tell one bidirectional layer from two stacked ones where they differ, else
``--layers``/``--bidirectional``. The tree written is ``{"params": {"layers_<l>": {"cell": cell}}}`` (a
bidirectional layer: ``{"forward_rnn": {"cell": ...}, "backward_rnn": {"cell": ...}}``), linen's split-cell
names; reading and writing need flax.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

__all__ = ["read_keras_h5", "write_keras_h5", "read_flax", "write_flax", "flax_cell", "flax_layers"]

_FLAX_GATES = ("i", "f", "g", "o")  # LAYOUT-5 names of the i, f, c, o blocks


def _natural(path: tuple[str, ...]) -> tuple:
    return tuple((re.sub(r"_?\d+$", "", p), int(m.group(1)) if (m := re.search(r"(\d+)$", p)) else -1) for p in path)


# ---- Keras .weights.h5 ---------------------------------------------------------------------------------
def read_keras_h5(path: Path) -> list[np.ndarray]:
    """The LSTM variables in ``get_weights()`` order (layer by layer; a Bidirectional: forward, then backward)."""
    try:
        import h5py
    except ImportError as exc:
        raise ImportError(f"reading {path} needs h5py (installed with Keras): {exc}") from exc
    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        raise ValueError(f"{path}: not an HDF5 file ({exc})") from exc
    with f:
        cells = []  # (path of the layer, direction, [vars])

        def visit(name: str, obj) -> None:
            if isinstance(obj, h5py.Group) and name.endswith("cell/vars"):
                parts = tuple(name.split("/")[:-2])
                direction = 1 if parts and parts[-1] == "backward_layer" else 0
                layer = parts[:-1] if parts and parts[-1] in ("forward_layer", "backward_layer") else parts
                arrays = [np.asarray(obj[k]) for k in sorted(obj.keys(), key=int)]
                if len(arrays) >= 2 and arrays[0].ndim == 2 and arrays[1].ndim == 2 \
                        and arrays[0].shape[1] == arrays[1].shape[1] == 4 * arrays[1].shape[0]:
                    cells.append((layer, direction, arrays))

        f.visititems(visit)
    if not cells:
        raise ValueError(f"{path}: no LSTM variables found (expected Keras 3 save_weights groups "
                         "layers/<lstm>/cell/vars or layers/<bidirectional>/forward_layer/cell/vars)")
    cells.sort(key=lambda c: (_natural(c[0]), c[1]))
    return [a for _, _, arrays in cells for a in arrays]


def write_keras_h5(path: Path, build_model) -> None:
    """``build_model()`` is the Sequential stack with its weights set (formats._keras_model)."""
    model = build_model()
    model.save_weights(path)


# ---- Flax parameter trees --------------------------------------------------------------------------------
def flax_cell(node: dict) -> dict | None:
    """A cell's params in LAYOUT-5's split form (``ii .. ho``), or None when ``node`` is not a cell."""
    if not isinstance(node, dict):
        return None
    if "dense_i" in node and "dense_h" in node:  # OptimizedLSTMCell: fused (in, 4u) kernels, columns i, f, c, o
        ki, kh = np.asarray(node["dense_i"]["kernel"]), np.asarray(node["dense_h"]["kernel"])
        u = kh.shape[0]
        cell = {}
        for n, g in enumerate(_FLAX_GATES):
            cell[f"i{g}"] = {"kernel": ki[:, n * u:(n + 1) * u]}
            cell[f"h{g}"] = {"kernel": kh[:, n * u:(n + 1) * u]}
            if "bias" in node["dense_h"]:
                cell[f"h{g}"]["bias"] = np.asarray(node["dense_h"]["bias"])[n * u:(n + 1) * u]
        return cell
    keys = {("if" if k == "if_" else k) for k in node}
    if {f"{s}{g}" for s in "ih" for g in _FLAX_GATES} <= keys:
        return {("if" if k == "if_" else k): {kk: np.asarray(vv) for kk, vv in v.items()} for k, v in node.items()
                if ("if" if k == "if_" else k) in {f"{s}{g}" for s in "ih" for g in _FLAX_GATES}}
    return None


def read_flax(path: Path) -> dict:
    """``{"cells": [cell params in split form, in path order], "layers": [[cell index per direction] per layer]}``;
    ``"layers"`` is None when the paths do not group the cells (see :func:`flax_layers`)."""
    try:
        from flax import serialization
    except ImportError as exc:
        raise ImportError(f"reading {path} needs flax: {exc}") from exc
    try:
        tree = serialization.msgpack_restore(path.read_bytes())
    except Exception as exc:  # msgpack's own errors vary by release
        raise ValueError(f"{path}: not a flax.serialization msgpack file ({type(exc).__name__}: {exc})") from exc
    found, paths = [], []

    def walk(node, parts: tuple[str, ...]) -> None:
        cell = flax_cell(node)
        if cell is not None:
            paths.append(parts)
            direction = 1 if any(p.startswith("backward") for p in parts) else 0
            layer = tuple(p for p in parts if not p.startswith(("backward", "forward")) and p != "cell")
            found.append((layer, direction, cell))
        elif isinstance(node, dict):
            for k, v in node.items():
                walk(v, (*parts, str(k)))

    walk(tree, ())
    if not found:
        raise ValueError(f"{path}: no LSTM cell params found (expected linen/nnx LSTMCell keys ii..io, hi..ho or "
                         "OptimizedLSTMCell dense_i/dense_h anywhere in the tree)")
    found.sort(key=lambda c: (_natural(c[0]), c[1]))
    marked = any(direction for _, direction, _ in found) or any(
        p.startswith(("forward", "backward")) for layer, _, _ in found for p in layer)
    in_rnn = any(path[-1:] == ("cell",) for path in paths)  # nn.RNN's cell attribute: one RNN, one layer
    if not marked and not in_rnn and len({layer for layer, _, _ in found}) == len(found):
        # cells made inline in a compact module (``OptimizedLSTMCell_0``, ``_1``, ...): their paths do not say
        # which cells are one layer's two directions; like a Keras list, the shapes or the flags must
        return {"cells": [cell for _, _, cell in found], "layers": None}
    layers: dict[tuple, list] = {}
    for i, (layer, _, _) in enumerate(found):
        layers.setdefault(layer, []).append(i)
    return {"cells": [cell for _, _, cell in found], "layers": list(layers.values())}


def flax_layers(raw: dict, directions: int) -> list[list[dict]]:
    """Per layer, per direction, the cells of a :func:`read_flax` result (a flat list: ``directions`` per layer)."""
    cells, groups = raw["cells"], raw["layers"]
    if groups is None:
        groups = [list(range(i, min(i + directions, len(cells)))) for i in range(0, len(cells), directions)]
    return [[cells[i] for i in g] for g in groups]


def write_flax(path: Path, layers: list[list[dict]]) -> None:
    from flax import serialization

    tree = {}
    for l, cells in enumerate(layers):
        tree[f"layers_{l}"] = ({"forward_rnn": {"cell": cells[0]}, "backward_rnn": {"cell": cells[1]}}
                               if len(cells) == 2 else {"cell": cells[0]})
    path.write_bytes(serialization.msgpack_serialize({"params": tree}))
