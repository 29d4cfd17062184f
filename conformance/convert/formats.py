"""Reading and writing each format's LSTM tensors, the architecture they imply, and the shape check.

A file is read into its framework's own layout (reference.layouts LAYOUT-2..4): a torch state_dict
(``{name: array}``), the ``W, R, B`` initializers of each ONNX ``LSTM`` node (one node per layer), a
Keras ``get_weights()`` list (``kernel, recurrent_kernel, bias`` per layer and direction, forward first) read
from ``np.savez(path, *weights)``, a ``.keras`` model or a ``.weights.h5`` file (trees.py), or per layer and
direction the LAYOUT-5 cell params of a Flax parameter tree (trees.py). The expected shapes are those of the layout of the stated
architecture (the layout function applied to zero weights), so the layouts are written once.
"""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import numpy as np

from reference import Config
from reference.layouts import from_flax, from_keras, from_onnx, from_torch, to_flax, to_keras, to_onnx, to_torch
from reference.weights import LayerWeights, Weights

import conformance.convert.trees as trees

__all__ = ["FORMATS", "format_of", "read", "write", "infer_architecture", "check_shapes", "to_canonical",
           "from_canonical", "ONNX_OPSET"]

FORMATS = ("torch", "onnx", "keras", "flax")
#: file name endings -> format
_SUFFIXES = {".pt": "torch", ".pth": "torch", ".onnx": "onnx", ".npz": "keras", ".keras": "keras", ".h5": "keras",
             ".msgpack": "flax"}
ALLOWED = (".pt/.pth (torch state_dict), .onnx, .keras (a Keras model), .weights.h5 (Keras save_weights), .npz "
           "(Keras get_weights() saved with np.savez), .msgpack (a Flax parameter tree, flax.serialization)")
ONNX_OPSET = 14
ARCH_FIELDS = ("input_dim", "units", "num_layers", "bidirectional", "proj_size", "use_bias")


def format_of(path: Path, given: str | None = None) -> str:
    if given is not None:
        if given not in FORMATS:
            raise ValueError(f"format {given!r}: allowed values are {', '.join(FORMATS)}")
        return given
    suffix = path.suffix.lower()
    if suffix in _SUFFIXES:
        return _SUFFIXES[suffix]
    raise ValueError(f"{path}: unknown file type {suffix or '(none)'!r}; allowed: {ALLOWED}")


# ---- reading -------------------------------------------------------------------------------------------
def read(path: Path, fmt: str):
    """The file's tensors in its framework's layout (see the module docstring)."""
    if not path.exists():
        raise ValueError(f"{path}: no such file")
    if path.is_dir():
        raise ValueError(f"{path}: is a folder; expected a file")
    if fmt == "torch":
        import torch

        sd = torch.load(path, map_location="cpu", weights_only=True)
        if not isinstance(sd, dict):
            raise ValueError(f"{path}: not a state_dict (found {type(sd).__name__}); save module.state_dict()")
        return {k: v.detach().cpu().numpy() for k, v in sd.items()}
    if fmt == "onnx":
        import onnx
        from onnx import numpy_helper

        model = onnx.load(str(path))
        inits = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
        nodes = [n for n in model.graph.node if n.op_type == "LSTM"]
        if not nodes:
            raise ValueError(f"{path}: the ONNX graph has no LSTM node")
        layers = []
        for i, node in enumerate(nodes):
            tensors = {}
            for key, name in zip(("W", "R", "B"), list(node.input)[1:4]):
                if name and name not in inits:
                    raise ValueError(f"{path}: LSTM node {i} input {key} ({name!r}) is not an initializer; "
                                     "only models whose weights are constants can be ported")
                if name:
                    tensors[key] = inits[name]
            extra = [a for a in ("P",) if len(node.input) > 7 and node.input[7]]
            if extra:
                raise ValueError(f"{path}: LSTM node {i} has peepholes (P); allowed: none (no other format has them)")
            layers.append(tensors)
        return layers
    if fmt == "flax":
        return trees.read_flax(path)
    if path.suffix.lower() == ".keras":
        return _read_keras_model(path)
    if path.suffix.lower() == ".h5":
        return trees.read_keras_h5(path)
    with np.load(path, allow_pickle=False) as z:
        keys = list(z.keys())
        want = [f"arr_{i}" for i in range(len(keys))]
        if sorted(keys, key=lambda k: (len(k), k)) != want:
            raise ValueError(f"{path}: expected a get_weights() list saved with np.savez(path, *weights) "
                             f"(arrays arr_0..arr_{len(keys) - 1}); found {', '.join(keys[:6])}")
        return [z[k] for k in want]


def _import_keras():
    """Keras 3 on KERAS_BACKEND, else on the first installed of tensorflow, jax, torch (not keras.json's choice,
    which may name a framework this environment lacks)."""
    from ..adapters.keras.compat import choose_backend

    choose_backend(("tensorflow", "jax", "torch"))
    import keras

    return keras


def _read_keras_model(path: Path) -> list[np.ndarray]:
    """The weights of a .keras model's LSTM layers (a Bidirectional wrapper: forward then backward), in order."""
    keras = _import_keras()

    model = keras.saving.load_model(path, compile=False)
    out = []
    for layer in model.layers:
        if isinstance(layer, keras.layers.Bidirectional) and isinstance(layer.forward_layer, keras.layers.LSTM):
            out += [np.asarray(w) for w in layer.forward_layer.get_weights() + layer.backward_layer.get_weights()]
        elif isinstance(layer, keras.layers.LSTM):
            out += [np.asarray(w) for w in layer.get_weights()]
    if not out:
        raise ValueError(f"{path}: the model has no LSTM layer (found {', '.join(type(l).__name__ for l in model.layers)})")
    return out


def _keras_model(arrays: list[np.ndarray], config: Config):
    """A Sequential stack of (Bidirectional) LSTM layers returning sequences, weights set from the list."""
    keras = _import_keras()

    layers = [keras.Input((None, config.input_dim), dtype=str(arrays[0].dtype))]
    for _ in range(config.num_layers):
        lstm = keras.layers.LSTM(config.units, use_bias=config.use_bias, return_sequences=True,
                                 dtype=str(arrays[0].dtype))
        layers.append(keras.layers.Bidirectional(lstm, dtype=str(arrays[0].dtype)) if config.bidirectional else lstm)
    model = keras.Sequential(layers)
    model.set_weights(arrays)
    return model


def _keras_groups(arrays: list[np.ndarray]) -> list[dict[str, np.ndarray]]:
    """kernel, recurrent_kernel[, bias] per layer and direction, in get_weights() order."""
    groups, i = [], 0
    while i < len(arrays):
        if i + 1 >= len(arrays) or arrays[i].ndim != 2 or arrays[i + 1].ndim != 2:
            raise ValueError(f"arr_{i}: expected a kernel and a recurrent_kernel (two 2-D arrays), found shapes "
                             f"{[tuple(a.shape) for a in arrays[i:i + 2]]}")
        g = {"kernel": arrays[i], "recurrent_kernel": arrays[i + 1]}
        i += 2
        if i < len(arrays) and arrays[i].ndim == 1:
            g["bias"] = arrays[i]
            i += 1
        groups.append(g)
    return groups


# ---- the architecture a file implies ---------------------------------------------------------------------
def infer_architecture(fmt: str, raw) -> dict:
    """What the file's shapes say (``None`` where they cannot tell)."""
    if fmt == "torch":
        if "weight_hh_l0" not in raw or "weight_ih_l0" not in raw:
            raise ValueError(f"state_dict: no weight_ih_l0/weight_hh_l0 (found {', '.join(list(raw)[:6])}); "
                             "expected an nn.LSTM state_dict")
        layers = len([k for k in raw if re.fullmatch(r"weight_ih_l\d+", k)])
        proj = raw["weight_hr_l0"].shape[0] if "weight_hr_l0" in raw else 0
        return dict(input_dim=raw["weight_ih_l0"].shape[1], units=raw["weight_hh_l0"].shape[0] // 4, num_layers=layers,
                    bidirectional="weight_ih_l0_reverse" in raw, proj_size=proj, use_bias="bias_ih_l0" in raw)
    if fmt == "flax":  # LAYOUT-5: ii kernel (in, u); the hidden-side Dense always carries the bias
        cells = raw["cells"]
        k = cells[0]["ii"]["kernel"]
        arch = dict(input_dim=k.shape[0], units=k.shape[1], proj_size=0, use_bias="bias" in cells[0]["hi"])
        if raw["layers"] is not None:
            return dict(arch, num_layers=len(raw["layers"]), bidirectional=len(raw["layers"][0]) == 2)
        inputs = [c["ii"]["kernel"].shape[0] for c in cells]
        return dict(arch, **_stack_from_inputs(inputs, k.shape[1]))
    if fmt == "onnx":
        W = raw[0]["W"]
        return dict(input_dim=W.shape[2], units=W.shape[1] // 4, num_layers=len(raw), bidirectional=W.shape[0] == 2,
                    proj_size=0, use_bias="B" in raw[0])
    groups = _keras_groups(raw)
    k0 = groups[0]["kernel"]
    units = k0.shape[1] // 4
    return dict(input_dim=k0.shape[0], units=units, proj_size=0, use_bias="bias" in groups[0],
                **_stack_from_inputs([g["kernel"].shape[0] for g in groups], units))


def _stack_from_inputs(inputs: list[int], units: int) -> dict:
    """A flat list of per-direction tensors: layer l > 0 reads u (one direction) or 2u (concat of two) features,
    so the input sizes tell D where only one fits; ``_groups`` lets ``architecture`` finish from a flag."""
    n = len(inputs)
    fits = [d for d in (1, 2) if n % d == 0 and all(i == d * units for i in inputs[d:])]
    bidi = (fits[0] == 2) if len(fits) == 1 else None
    return dict(num_layers=None if bidi is None else n // (2 if bidi else 1), bidirectional=bidi, _groups=n)


def _shape_rows(fmt: str, raw, config: Config) -> list[tuple[str, tuple | None, tuple | None]]:
    """(tensor name, expected shape, found shape) for every tensor the layout of ``config`` has or the file has."""
    zero = _zero_weights(config)
    if fmt == "torch":
        want = {k: v.shape for k, v in to_torch(zero, config).items()}
        got = {k: tuple(v.shape) for k, v in raw.items()}
        return [(k, want.get(k), got.get(k)) for k in dict.fromkeys([*want, *got])]
    if fmt == "flax":
        raw, rows = trees.flax_layers(raw, config.num_directions), []
        for l in range(max(config.num_layers, len(raw))):
            for d in range(max(config.num_directions, len(raw[l]) if l < len(raw) else 0)):
                want = to_flax(zero, config, l, d) if l < config.num_layers and d < config.num_directions else {}
                got = raw[l][d] if l < len(raw) and d < len(raw[l]) else {}
                rows += [(f"layer {l} {'backward' if d else 'forward'} {k}/{kk}", _shape(want, k, kk),
                          _shape(got, k, kk)) for k in dict.fromkeys([*want, *got])
                         for kk in dict.fromkeys([*want.get(k, {}), *got.get(k, {})])]
        return rows
    if fmt == "onnx":
        rows = []
        for l in range(max(config.num_layers, len(raw))):
            want = to_onnx(zero, config, layer=l) if l < config.num_layers else {}
            got = raw[l] if l < len(raw) else {}
            rows += [(f"LSTM node {l} {k}", tuple(want[k].shape) if k in want else None,
                      tuple(got[k].shape) if k in got else None) for k in dict.fromkeys([*want, *got])]
        return rows
    want = [d for dirs in to_keras(zero, config) for d in dirs]
    got = _keras_groups(raw)
    rows, i = [], 0
    for g in range(max(len(want), len(got))):
        w, f = (want[g] if g < len(want) else {}), (got[g] if g < len(got) else {})
        l, d = divmod(g, config.num_directions)
        for k in dict.fromkeys([*w, *f]):
            rows.append((f"layer {l} {'backward' if d else 'forward'} {k} (arr_{i})",
                         tuple(w[k].shape) if k in w else None, tuple(f[k].shape) if k in f else None))
            i += 1
    return rows


def _shape(tree: dict, k: str, kk: str) -> tuple | None:
    return tuple(tree[k][kk].shape) if k in tree and kk in tree[k] else None


def check_shapes(fmt: str, raw, config: Config, path: Path) -> None:
    """One ValueError naming the first tensor whose shape differs from the stated architecture's layout."""
    for name, want, got in _shape_rows(fmt, raw, config):
        if want != got:
            arch = (f"units={config.units}, input_dim={config.input_dim}, layers={config.num_layers}, "
                    f"bidirectional={config.bidirectional}, proj_size={config.proj_size}, use_bias={config.use_bias}")
            raise ValueError(f"{path}: tensor {name}: expected shape {want or '(absent)'}, found "
                             f"{got or '(absent)'} for {arch}")


def _zero_weights(config: Config) -> Weights:
    H, u = config.hidden_size, config.units
    layers = []
    for l in range(config.num_layers):
        d_in = config.input_dim if l == 0 else H * config.num_directions
        layers.append([LayerWeights(W=np.zeros((4, u, d_in)), U=np.zeros((4, u, H)),
                                    b=np.zeros((4, u)) if config.use_bias else None,
                                    b2=np.zeros((4, u)) if config.use_bias and config.bias_mode == "double" else None,
                                    W_hr=np.zeros((config.proj_size, u)) if config.proj_size else None)
                       for _ in range(config.num_directions)])
    return Weights(layers)


# ---- layouts <-> canonical -------------------------------------------------------------------------------
def to_canonical(fmt: str, raw, config: Config) -> Weights:
    if fmt == "torch":
        return from_torch(raw, config)
    if fmt == "onnx":
        return Weights([from_onnx(t, config).layers[0] for t in raw])
    if fmt == "flax":  # LAYOUT-5, one cell at a time
        one = replace(config, num_layers=1, bidirectional=False)
        return Weights([[from_flax(cell, one).layers[0][0] for cell in cells]
                        for cells in trees.flax_layers(raw, config.num_directions)])
    groups = _keras_groups(raw)
    D = config.num_directions
    return from_keras([groups[l * D:(l + 1) * D] for l in range(config.num_layers)], config)


def from_canonical(fmt: str, weights: Weights, config: Config, dtype) -> object:
    cast = lambda a: np.asarray(a, dtype=dtype)  # noqa: E731
    if fmt == "torch":
        return {k: cast(v) for k, v in to_torch(weights, config).items()}
    if fmt == "onnx":
        return [{k: cast(v) for k, v in to_onnx(weights, config, layer=l).items()} for l in range(config.num_layers)]
    if fmt == "flax":
        return [[{k: {kk: cast(vv) for kk, vv in v.items()} for k, v in to_flax(weights, config, l, d).items()}
                 for d in range(config.num_directions)] for l in range(config.num_layers)]
    return [cast(d[k]) for dirs in to_keras(weights, config) for d in dirs
            for k in ("kernel", "recurrent_kernel", "bias") if k in d]


# ---- writing ---------------------------------------------------------------------------------------------
def write(path: Path, fmt: str, tensors, config: Config) -> None:
    if fmt == "torch":
        import torch

        torch.save({k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in tensors.items()}, path)
    elif fmt == "onnx":
        import onnx

        onnx.save(_onnx_model(tensors, config), str(path))
    elif fmt == "flax":
        trees.write_flax(path, tensors)
    elif path.suffix.lower() == ".keras":
        _keras_model(tensors, config).save(path)
    elif path.suffix.lower() == ".h5":
        trees.write_keras_h5(path, lambda: _keras_model(tensors, config))
    else:
        with open(path, "wb") as f:
            np.savez(f, *tensors)


def _onnx_model(layers: list[dict[str, np.ndarray]], config: Config):
    """A runnable stacked model: X (T, B, I) -> LSTM node per layer; layer l+1 reads layer l's Y
    (T, D, B, H) transposed to (T, B, D, H) and reshaped to (T, B, D*H) (the concat of STACK-1)."""
    import onnx
    from onnx import helper, numpy_helper

    elem = helper.np_dtype_to_tensor_dtype(layers[0]["W"].dtype)
    direction = "bidirectional" if config.bidirectional else "forward"
    nodes, inits, outputs = [], [numpy_helper.from_array(np.array([0, 0, -1], np.int64), "flat_shape")], []
    x = "X"
    for l, t in enumerate(layers):
        names = []
        for k in ("W", "R", "B"):
            if k in t:
                inits.append(numpy_helper.from_array(t[k], f"{k}_{l}"))
                names.append(f"{k}_{l}")
        nodes.append(helper.make_node("LSTM", [x, *names], [f"Y_{l}", f"Y_h_{l}", f"Y_c_{l}"], name=f"lstm_{l}",
                                      hidden_size=config.units, direction=direction))
        nodes.append(helper.make_node("Transpose", [f"Y_{l}"], [f"Yt_{l}"], perm=[0, 2, 1, 3]))
        nodes.append(helper.make_node("Reshape", [f"Yt_{l}", "flat_shape"], [f"seq_{l}"]))
        x = f"seq_{l}"
        outputs += [helper.make_tensor_value_info(n, elem, [None] * 3) for n in (f"Y_h_{l}", f"Y_c_{l}")]
    outputs.insert(0, helper.make_tensor_value_info(x, elem, [None] * 3))
    graph = helper.make_graph(nodes, "lstm_stack", [helper.make_tensor_value_info("X", elem, [None, None,
                                                                                              config.input_dim])],
                              outputs, initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", ONNX_OPSET)])
    onnx.checker.check_model(model)
    return model


def architecture(inferred: dict, stated: dict, path: Path) -> Config:
    """The stated fields override what the file's shapes say; a field neither gives is an error."""
    inferred = dict(inferred)
    groups = inferred.get("_groups")
    if groups is not None and inferred.get("bidirectional") is None:  # Keras lists: one of the two tells the other
        if stated.get("num_layers"):
            inferred["bidirectional"] = groups == 2 * stated["num_layers"]
        elif stated.get("bidirectional") is not None:
            inferred["num_layers"] = groups // (2 if stated["bidirectional"] else 1)
    fields = {}
    for name in ARCH_FIELDS:
        value = stated.get(name) if stated.get(name) is not None else inferred.get(name)
        if value is None:
            flag = {"num_layers": "--layers", "bidirectional": "--bidirectional or --no-bidirectional"}.get(
                name, f"--{name.replace('_', '-')}")
            raise ValueError(f"{path}: the shapes cannot tell {name} ({inferred.get('_groups')} per-direction weight "
                             f"groups fit more than one stack); state it with {flag}")
        fields[name] = value
    return replace(Config(input_dim=1, units=2), **{k: v for k, v in fields.items()})
