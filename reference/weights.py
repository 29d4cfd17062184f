"""Canonical weights (spec/layouts.md LAYOUT-1) and the weight generators used by the checks.

Canonical gate order is ``GATES = ('i', 'f', 'c', 'o')`` with an explicit gate axis:

=========  ===========  =========================================================
tensor     shape        meaning
=========  ===========  =========================================================
``W``      (4, u, d_l)  input kernel per gate (d_l = input size of layer l)
``U``      (4, u, h)    recurrent kernel per gate (h = proj_size or u)
``b``      (4, u)       bias (absent when use_bias=False)
``b2``     (4, u)       second bias, summed with b (bias_mode='double': torch, ONNX)
``P``      (3, u)       peephole weights, order i, o, f as in ONNX (PEEP-1)
``W_hr``   (p, u)       projection (PROJ-1)
=========  ===========  =========================================================
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .config import Config

__all__ = ["GATES", "LayerWeights", "Weights", "random_weights", "keras_default_weights",
           "DEFAULT_ACTIVATIONS", "ORTHOGONALITY_TOLERANCE", "default_init_problems", "UNIT_FORGET_BIAS_READINGS",
           "unit_forget_bias"]

GATES = ("i", "f", "c", "o")
PEEPHOLE_GATES = ("i", "o", "f")

# DEF-2: the activations a layer built without arguments must compute (registry names).
DEFAULT_ACTIVATIONS = {"activation": "tanh", "recurrent_activation": "sigmoid"}
# DEF-1: largest max|K K^T - I| accepted as an orthogonal recurrent kernel. Loose enough for a float32
# kernel's rounding, far below the O(0.1..1) of a kernel drawn uniformly (as PyTorch's default is).
ORTHOGONALITY_TOLERANCE = 1e-4
# DEF-1 readings of Keras's unit_forget_bias=True with a non-default bias_initializer (the first is the docs'):
# 'forced-zeros': "add 1 to the bias of the forget gate" and "force bias_initializer='zeros'" -> 0 and 1;
# 'forget-set-to-one': the other chunks keep the bias_initializer's values, the forget chunk is set to 1.
UNIT_FORGET_BIAS_READINGS = ("forced-zeros", "forget-set-to-one")


@dataclass
class LayerWeights:
    W: np.ndarray
    U: np.ndarray
    b: np.ndarray | None = None
    b2: np.ndarray | None = None
    P: np.ndarray | None = None
    W_hr: np.ndarray | None = None

    def arrays(self) -> dict[str, np.ndarray]:
        return {k: v for k, v in self.__dict__.items() if v is not None}

    def astype(self, dtype) -> "LayerWeights":
        return LayerWeights(**{k: np.asarray(v, dtype=dtype) for k, v in self.arrays().items()})


@dataclass
class Weights:
    """One :class:`LayerWeights` per layer and direction: ``layers[l][d]`` (d=0 forward, 1 backward)."""

    layers: list[list[LayerWeights]] = field(default_factory=list)

    def __getitem__(self, idx: tuple[int, int]) -> LayerWeights:
        layer, direction = idx
        return self.layers[layer][direction]

    def astype(self, dtype) -> "Weights":
        return Weights([[lw.astype(dtype) for lw in dirs] for dirs in self.layers])

    def flat(self) -> dict[str, np.ndarray]:
        """Name -> array, e.g. ``l0_d1_W``; used to save repro blobs (``np.savez``)."""
        return {f"l{l}_d{d}_{k}": v for l, dirs in enumerate(self.layers) for d, lw in enumerate(dirs)
                for k, v in lw.arrays().items()}

    @classmethod
    def from_flat(cls, flat: dict[str, np.ndarray]) -> "Weights":
        out: dict[tuple[int, int], dict[str, np.ndarray]] = {}
        for key, v in flat.items():
            l, d, name = key.split("_", 2)
            out.setdefault((int(l[1:]), int(d[1:])), {})[name] = np.asarray(v)
        nl = max(l for l, _ in out) + 1
        return cls([[LayerWeights(**out[(l, d)]) for d in range(max(dd for ll, dd in out if ll == l) + 1)]
                    for l in range(nl)])

    def check(self, config: Config) -> None:
        """LAYOUT-1: raise ValueError naming the tensor whose shape does not match ``config``."""
        if len(self.layers) != config.num_layers:
            raise ValueError(f"weights: {len(self.layers)} layers given, config.num_layers={config.num_layers}")
        u, h, p = config.units, config.hidden_size, config.proj_size
        for l, dirs in enumerate(self.layers):
            if len(dirs) != config.num_directions:
                raise ValueError(f"weights layer {l}: {len(dirs)} directions given, expected {config.num_directions}")
            d_in = config.layer_input_dim(l)
            for d, lw in enumerate(dirs):
                expect = {"W": (4, u, d_in), "U": (4, u, h),
                          "b": (4, u) if config.use_bias else None,
                          "b2": (4, u) if config.use_bias and config.bias_mode == "double" else None,
                          "P": (3, u) if config.peepholes else None,
                          "W_hr": (p, u) if p else None}
                for name, shape in expect.items():
                    arr = getattr(lw, name)
                    got = None if arr is None else tuple(arr.shape)
                    if got != shape:
                        raise ValueError(f"weights l{l} d{d} {name}: shape {got}, expected {shape} for this config")


def _gate_scales(rng: np.random.Generator) -> np.ndarray:
    # Distinct per-gate multipliers so that any permutation of gates changes the result
    # (a constant or symmetric weight set cannot see a gate swap).
    return np.array([0.7, 1.0, 1.3, 0.85]) * rng.uniform(0.9, 1.1, size=4)


def random_weights(config: Config, seed: int | np.random.Generator = 0, scale: float = 1.0) -> Weights:
    """Seeded random canonical weights, asymmetric across gates.

    ``scale`` multiplies a fan-in-normalised uniform draw: 1 is a typical trained-network scale,
    ~0.01 tiny (near-linear), >= 5 drives sigmoid/tanh into saturation. Biases get distinct per-gate
    offsets so a swapped or dropped bias changes outputs even with zero input.
    """
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    u, h, p = config.units, config.hidden_size, config.proj_size
    layers = []
    for l in range(config.num_layers):
        d_in = config.layer_input_dim(l)
        dirs = []
        for _ in range(config.num_directions):
            g = _gate_scales(rng)[:, None, None]
            lw = LayerWeights(
                W=g * rng.uniform(-1, 1, (4, u, d_in)) * scale / np.sqrt(d_in),
                U=g[::-1] * rng.uniform(-1, 1, (4, u, h)) * scale / np.sqrt(h),
            )
            if config.use_bias:
                offsets = np.array([0.1, 0.6, -0.2, 0.3])[:, None]
                lw.b = (offsets + 0.5 * rng.uniform(-1, 1, (4, u))) * scale
                if config.bias_mode == "double":
                    lw.b2 = (offsets[::-1] + 0.5 * rng.uniform(-1, 1, (4, u))) * scale
            if config.peepholes:
                lw.P = np.array([0.5, -0.4, 0.8])[:, None] * rng.uniform(0.2, 1, (3, u)) * scale
            if p:
                lw.W_hr = rng.uniform(-1, 1, (p, u)) * scale / np.sqrt(u)
            dirs.append(lw)
        layers.append(dirs)
    return Weights(layers)


def unit_forget_bias(initial: np.ndarray, reading: str = "forced-zeros") -> np.ndarray:
    """DEF-1: the canonical bias (4, u) a Keras layer with ``unit_forget_bias=True`` starts from, given the
    values ``initial`` (4, u) its ``bias_initializer`` drew, under a reading of :data:`UNIT_FORGET_BIAS_READINGS`.
    With the default ``bias_initializer='zeros'`` both readings give zeros with a forget chunk of exactly 1."""
    if reading not in UNIT_FORGET_BIAS_READINGS:
        raise ValueError(f"reading={reading!r}: allowed values are {', '.join(UNIT_FORGET_BIAS_READINGS)} (DEF-1)")
    initial = np.asarray(initial)
    if initial.ndim != 2 or initial.shape[0] != 4:
        raise ValueError(f"initial: shape {initial.shape}, expected (4, units)")
    bias = np.zeros_like(initial) if reading == "forced-zeros" else initial.copy()
    f = GATES.index("f")
    bias[f] = bias[f] + 1 if reading == "forced-zeros" else 1  # docs: 0 + 1; the other reading: set to 1
    return bias


def keras_default_weights(config: Config, seed: int = 0) -> Weights:
    """DEF-1: the Keras default initialisation *semantics* (not its random stream).

    kernel glorot_uniform, recurrent_kernel orthogonal, bias zeros with 1 added to the forget chunk
    (``unit_forget_bias=True`` with the default ``bias_initializer='zeros'``: every DEF-1 reading gives
    exactly 0 and 1). What a fresh framework layer must satisfy is checked by
    :func:`default_init_problems`, which accepts these weights.
    """
    rng = np.random.default_rng(seed)
    u, h = config.units, config.hidden_size
    layers = []
    for l in range(config.num_layers):
        d_in = config.layer_input_dim(l)
        dirs = []
        for _ in range(config.num_directions):
            limit = np.sqrt(6.0 / (d_in + 4 * u))  # glorot_uniform on the Keras (d, 4u) kernel
            kernel = rng.uniform(-limit, limit, (d_in, 4 * u))
            q, r = np.linalg.qr(rng.normal(size=(4 * u, h)))  # orthogonal (h, 4u) recurrent kernel
            rec = (q * np.sign(np.diag(r))).T
            lw = LayerWeights(W=kernel.T.reshape(4, u, d_in), U=rec.T.reshape(4, u, h).copy())
            if config.use_bias:
                lw.b = unit_forget_bias(np.zeros((4, u)))
            dirs.append(lw)
        layers.append(dirs)
    return Weights(layers)


def default_init_problems(weights: Weights, activations: dict[str, str]) -> tuple[list[str], float]:
    """DEF-1, DEF-2: what a fresh Keras-style layer's own initialisation breaks, and its orthogonality error.

    ``weights`` are the layer's canonical weights as built, ``activations`` the registry names it really
    computes (keys as in :data:`DEFAULT_ACTIVATIONS`). Returns ``(problems, worst_orth)``: one message per
    broken rule (empty when all hold) and the largest ``max|K K^T - I|`` over layers and directions, K the
    Keras ``(h, 4u)`` recurrent kernel. With two biases their sum is checked (the forget chunk must be
    exactly 1, the other chunks exactly 0).
    """
    problems = []
    for name, expected in DEFAULT_ACTIVATIONS.items():
        if activations.get(name) != expected:
            problems.append(f"default {name} computes {activations.get(name)}, spec DEF-2 says {expected}")
    f, others = GATES.index("f"), [k for k, g in enumerate(GATES) if g != "f"]
    worst_orth = 0.0
    for l, dirs in enumerate(weights.layers):
        for d, lw in enumerate(dirs):
            if lw.b is not None:
                b = lw.b + (lw.b2 if lw.b2 is not None else 0)
                if not np.all(b[f] == 1.0):
                    problems.append(f"l{l} d{d}: forget-gate bias not exactly 1 (min {b[f].min()}, max {b[f].max()})")
                other_max = np.abs(b[others]).max()
                if other_max != 0:
                    problems.append(f"l{l} d{d}: non-forget biases not 0 (max |b| {other_max})")
            rk = lw.U.transpose(2, 0, 1).reshape(lw.U.shape[2], -1)  # Keras (h, 4u)
            gram = rk @ rk.T
            worst_orth = max(worst_orth, float(np.abs(gram - np.eye(gram.shape[0])).max()))
    if worst_orth > ORTHOGONALITY_TOLERANCE:
        problems.append(f"recurrent kernel not orthogonal: max |K K^T - I| = {worst_orth:.3g}")
    return problems, worst_orth
