"""Weight layouts of each framework <-> canonical (spec/layouts.md, LAYOUT-1..LAYOUT-5).

Pure functions on numpy arrays; every round trip canonical -> framework -> canonical is exact
(only reshapes, transposes and gate permutations, never arithmetic, except that a single canonical
bias goes to torch/ONNX as ``(b, 0)`` and comes back as ``b + 0``).
"""

from __future__ import annotations

import numpy as np

from .config import Config
from .weights import GATES, LayerWeights, Weights

__all__ = [
    "to_keras", "from_keras", "to_torch", "from_torch", "to_onnx", "from_onnx", "to_flax", "from_flax",
    "ONNX_GATE_ORDER", "KERAS_GATE_ORDER", "TORCH_GATE_ORDER", "torch_param_name",
]

KERAS_GATE_ORDER = ("i", "f", "c", "o")  # LAYOUT-2
TORCH_GATE_ORDER = ("i", "f", "c", "o")  # LAYOUT-3 (torch calls c "g")
ONNX_GATE_ORDER = ("i", "o", "f", "c")  # LAYOUT-4
_ONNX_PERM = [GATES.index(g) for g in ONNX_GATE_ORDER]  # canonical index for each ONNX slot
_ONNX_INV = [ONNX_GATE_ORDER.index(g) for g in GATES]


def _stack_gates(t: np.ndarray) -> np.ndarray:
    """(4, u, k) canonical -> (k, 4u) column blocks i|f|c|o (Keras kernel convention)."""
    return t.transpose(2, 0, 1).reshape(t.shape[2], -1)


def _split_gates(m: np.ndarray, units: int) -> np.ndarray:
    """(k, 4u) column blocks -> (4, u, k)."""
    return m.reshape(m.shape[0], 4, units).transpose(1, 2, 0).copy()


# ---- Keras (3 and 2): kernel (d, 4u), recurrent_kernel (h, 4u), bias (4u,), order i, f, c, o -----------

def to_keras(weights: Weights, config: Config) -> list[list[dict[str, np.ndarray]]]:
    """LAYOUT-2: ``[layer][direction] -> {"kernel", "recurrent_kernel", "bias"?}``.

    A Keras LSTM has one bias; a canonical double bias cannot be expressed without arithmetic, so it
    is refused rather than summed silently.
    """
    if config.use_bias and config.bias_mode == "double":
        raise ValueError("bias_mode='double' has no Keras layout: Keras LSTM has one bias; allowed: 'single'")
    if config.proj_size or config.peepholes:
        raise ValueError("proj_size/peepholes have no Keras layout (Keras LSTM has neither)")
    out = []
    for dirs in weights.layers:
        row = []
        for lw in dirs:
            d = {"kernel": _stack_gates(lw.W), "recurrent_kernel": _stack_gates(lw.U)}
            if lw.b is not None:
                d["bias"] = lw.b.reshape(-1).copy()
            row.append(d)
        out.append(row)
    return out


def from_keras(layers: list[list[dict[str, np.ndarray]]], config: Config) -> Weights:
    u = config.units
    return Weights([[LayerWeights(W=_split_gates(d["kernel"], u), U=_split_gates(d["recurrent_kernel"], u),
                                  b=None if "bias" not in d else d["bias"].reshape(4, u).copy())
                     for d in dirs] for dirs in layers])


# ---- PyTorch nn.LSTM: weight_ih_l{k}[_reverse] (4H, in), weight_hh (4H, Hr), bias_ih, bias_hh, weight_hr ---

def torch_param_name(kind: str, layer: int, direction: int) -> str:
    """LAYOUT-3 naming: ``weight_ih_l0``, ``bias_hh_l1_reverse``, ``weight_hr_l0``..."""
    return f"{kind}_l{layer}" + ("_reverse" if direction == 1 else "")


def to_torch(weights: Weights, config: Config) -> dict[str, np.ndarray]:
    """LAYOUT-3: an ``nn.LSTM`` state_dict (numpy arrays). A single canonical bias becomes
    ``bias_ih = b, bias_hh = 0``; peepholes have no torch layout."""
    if config.peepholes:
        raise ValueError("peepholes=True has no torch layout (nn.LSTM has no peepholes)")
    sd: dict[str, np.ndarray] = {}
    for l, dirs in enumerate(weights.layers):
        for d, lw in enumerate(dirs):
            sd[torch_param_name("weight_ih", l, d)] = lw.W.reshape(-1, lw.W.shape[2]).copy()
            sd[torch_param_name("weight_hh", l, d)] = lw.U.reshape(-1, lw.U.shape[2]).copy()
            if lw.b is not None:
                sd[torch_param_name("bias_ih", l, d)] = lw.b.reshape(-1).copy()
                b2 = lw.b2 if lw.b2 is not None else np.zeros_like(lw.b)
                sd[torch_param_name("bias_hh", l, d)] = b2.reshape(-1).copy()
            if lw.W_hr is not None:
                sd[torch_param_name("weight_hr", l, d)] = lw.W_hr.copy()
    return sd


def from_torch(state_dict: dict[str, np.ndarray], config: Config) -> Weights:
    u = config.units
    layers = []
    for l in range(config.num_layers):
        dirs = []
        for d in range(config.num_directions):
            g = lambda kind: state_dict.get(torch_param_name(kind, l, d))  # noqa: E731
            lw = LayerWeights(W=np.asarray(g("weight_ih")).reshape(4, u, -1).copy(),
                              U=np.asarray(g("weight_hh")).reshape(4, u, -1).copy())
            if g("bias_ih") is not None:
                bih, bhh = np.asarray(g("bias_ih")).reshape(4, u), np.asarray(g("bias_hh")).reshape(4, u)
                if config.bias_mode == "double":
                    lw.b, lw.b2 = bih.copy(), bhh.copy()
                else:
                    lw.b = bih + bhh
            if g("weight_hr") is not None:
                lw.W_hr = np.asarray(g("weight_hr")).copy()
            dirs.append(lw)
        layers.append(dirs)
    return Weights(layers)


# ---- ONNX LSTM: W (D, 4H, I), R (D, 4H, H), B (D, 8H) = [Wb, Rb], P (D, 3H); order i, o, f, c ---------

def to_onnx(weights: Weights, config: Config, layer: int = 0) -> dict[str, np.ndarray]:
    """LAYOUT-4: the ``W, R, B?, P?`` inputs of one ONNX LSTM node (one layer, all directions)."""
    if config.proj_size:
        raise ValueError("proj_size has no ONNX layout (the ONNX LSTM op has no projection)")
    dirs = weights.layers[layer]
    out = {"W": np.stack([lw.W[_ONNX_PERM].reshape(-1, lw.W.shape[2]) for lw in dirs]),
           "R": np.stack([lw.U[_ONNX_PERM].reshape(-1, lw.U.shape[2]) for lw in dirs])}
    if config.use_bias:
        out["B"] = np.stack([np.concatenate([lw.b[_ONNX_PERM].reshape(-1),
                                             (lw.b2 if lw.b2 is not None else np.zeros_like(lw.b))[_ONNX_PERM].reshape(-1)])
                             for lw in dirs])
    if config.peepholes:
        out["P"] = np.stack([lw.P.reshape(-1) for lw in dirs])  # canonical P is already i, o, f
    return out


def from_onnx(tensors: dict[str, np.ndarray], config: Config) -> Weights:
    u = config.units
    dirs = []
    for d in range(tensors["W"].shape[0]):
        lw = LayerWeights(W=tensors["W"][d].reshape(4, u, -1)[_ONNX_INV].copy(),
                          U=tensors["R"][d].reshape(4, u, -1)[_ONNX_INV].copy())
        if "B" in tensors:
            wb = tensors["B"][d][: 4 * u].reshape(4, u)[_ONNX_INV]
            rb = tensors["B"][d][4 * u:].reshape(4, u)[_ONNX_INV]
            if config.bias_mode == "double":
                lw.b, lw.b2 = wb.copy(), rb.copy()
            else:
                lw.b = wb + rb
        if "P" in tensors:
            lw.P = tensors["P"][d].reshape(3, u).copy()
        dirs.append(lw)
    return Weights([dirs])


# ---- Flax linen LSTMCell: per-gate Dense ii/if/ig/io (d, H) no bias; hi/hf/hg/ho (H, H) with bias ------

_FLAX_GATE = {"i": "i", "f": "f", "c": "g", "o": "o"}  # LAYOUT-5


def to_flax(weights: Weights, config: Config, layer: int = 0, direction: int = 0) -> dict:
    """LAYOUT-5: the ``params`` dict of ``flax.linen.LSTMCell`` (one layer, one direction).

    Flax carries one bias, on the hidden-side Dense layers; it has no projection or peepholes."""
    if config.proj_size or config.peepholes or (config.use_bias and config.bias_mode == "double"):
        raise ValueError("Flax LSTMCell has no projection, peepholes or second bias; allowed: proj_size=0, "
                         "peepholes=False, bias_mode='single'")
    lw = weights.layers[layer][direction]
    params = {}
    for gi, g in enumerate(GATES):
        fg = _FLAX_GATE[g]
        params[f"i{fg}"] = {"kernel": lw.W[gi].T.copy()}
        params[f"h{fg}"] = {"kernel": lw.U[gi].T.copy()}
        params[f"h{fg}"]["bias"] = lw.b[gi].copy() if lw.b is not None else np.zeros(config.units)
    return params


def from_flax(params: dict, config: Config) -> Weights:
    W = np.stack([np.asarray(params[f"i{_FLAX_GATE[g]}"]["kernel"]).T for g in GATES])
    U = np.stack([np.asarray(params[f"h{_FLAX_GATE[g]}"]["kernel"]).T for g in GATES])
    b = np.stack([np.asarray(params[f"h{_FLAX_GATE[g]}"]["bias"]) for g in GATES]) if config.use_bias else None
    return Weights([[LayerWeights(W=W, U=U, b=b)]])
