"""Parameter counts per framework convention (spec/parameters.md, PARAM-1..PARAM-6)."""

from __future__ import annotations

from dataclasses import dataclass

from .config import Config

__all__ = ["CONVENTIONS", "param_count", "layer_param_counts", "ModelLayer", "parse_model", "model_param_counts",
           "MAX_MODEL_UNITS", "MAX_MODEL_LAYERS"]

CONVENTIONS = ("keras", "torch", "onnx", "flax")


class UnsupportedConvention(ValueError):
    """The architecture cannot be expressed in that framework (e.g. peepholes in Keras)."""


def _one(config: Config, layer: int, convention: str) -> int:
    u, d, H = config.units, config.layer_input_dim(layer), config.hidden_size
    p = config.proj_size
    if convention == "keras":  # PARAM-1: kernel + recurrent_kernel + bias = 4u(d + u + 1)
        if p or config.peepholes:
            raise UnsupportedConvention("keras: Keras LSTM has no proj_size or peepholes")
        return 4 * u * (d + u + (1 if config.use_bias else 0))
    if convention == "torch":  # PARAM-2: 4H*in + 4H*Hr + 8H (two biases) + P*H (weight_hr)
        if config.peepholes:
            raise UnsupportedConvention("torch: nn.LSTM has no peepholes")
        return 4 * u * d + 4 * u * H + (8 * u if config.use_bias else 0) + p * u
    if convention == "onnx":  # PARAM-3: 4H*I + 4H*H + 8H (B: Wb, Rb) + 3H (P)
        if p:
            raise UnsupportedConvention("onnx: the ONNX LSTM op has no projection")
        return 4 * u * d + 4 * u * u + (8 * u if config.use_bias else 0) + (3 * u if config.peepholes else 0)
    if convention == "flax":  # PARAM-4: 4 input Dense (d, u) + 4 hidden Dense (u, u) with bias
        if p or config.peepholes:
            raise UnsupportedConvention("flax: LSTMCell has no proj_size or peepholes")
        if not config.use_bias:
            raise UnsupportedConvention("flax: LSTMCell's hidden Dense layers always carry a bias (no use_bias=False)")
        return 4 * u * (d + u + 1)
    raise ValueError(f"convention={convention!r}: allowed values are {', '.join(CONVENTIONS)}")


def layer_param_counts(config: Config, convention: str) -> list[int]:
    """PARAM-5: one count per layer, directions included (x2 when bidirectional)."""
    return [config.num_directions * _one(config, l, convention) for l in range(config.num_layers)]


def param_count(config: Config, convention: str = "keras") -> int:
    """Total trainable parameters of ``config`` as ``convention`` counts them (PARAM-1..PARAM-5)."""
    return sum(layer_param_counts(config, convention))


@dataclass(frozen=True)
class ModelLayer:
    kind: str  # 'lstm' | 'bilstm' | 'dense'
    units: int


_KINDS = ("lstm", "bilstm", "dense")
#: bounds of a --model stack: units per layer (a layer wider than this is a typo, not a model) and layers
MAX_MODEL_UNITS = 2**20
MAX_MODEL_LAYERS = 1024


def parse_model(spec: str) -> list[ModelLayer]:
    """``"lstm:64,lstm:128,dense:5"`` -> layers (KIND in lstm, bilstm, dense; UNITS in 1..MAX_MODEL_UNITS;
    at most MAX_MODEL_LAYERS items). Raises ValueError naming the bad item; an empty item (a trailing or
    doubled comma) is refused rather than skipped."""
    if not spec.strip():
        raise ValueError("--model: no layers given; example: lstm:64,dense:5")
    items = [s.strip() for s in spec.split(",")]
    if len(items) > MAX_MODEL_LAYERS:
        raise ValueError(f"--model: {len(items)} items; at most {MAX_MODEL_LAYERS} layers")
    layers = []
    for pos, item in enumerate(items, 1):
        if not item:
            raise ValueError(f"--model item {pos} of {spec!r} is empty (a trailing or doubled comma?); "
                             "expected KIND:UNITS, e.g. lstm:64,dense:5")
        kind, sep, units = item.partition(":")
        if kind not in _KINDS or not sep:
            raise ValueError(f"--model item {item!r}: expected KIND:UNITS with KIND in {', '.join(_KINDS)}")
        # digits only: int() would also take '+4', ' 4' and '1_000'
        n = int(units) if units.isascii() and units.isdigit() else 0
        if not 1 <= n <= MAX_MODEL_UNITS:
            raise ValueError(f"--model item {item!r}: units must be an integer >= 1 and <= {MAX_MODEL_UNITS:,}")
        layers.append(ModelLayer(kind, n))
    return layers


def model_param_counts(layers: list[ModelLayer], input_dim: int, convention: str = "keras",
                       use_bias: bool = True) -> list[tuple[str, int, int]]:
    """PARAM-6: (name, output features, count) per layer of a sequential stack on input features d.

    Each layer reads the previous layer's last axis; Dense(n) on k features has n*(k+1) parameters
    (n*k without bias), the same in every convention."""
    rows, d = [], input_dim
    for layer in layers:
        if layer.kind == "dense":
            rows.append((f"dense:{layer.units}", layer.units, layer.units * (d + (1 if use_bias else 0))))
            d = layer.units
            continue
        cfg = Config(input_dim=d, units=layer.units, use_bias=use_bias, bidirectional=layer.kind == "bilstm")
        rows.append((f"{layer.kind}:{layer.units}", cfg.merged_size, param_count(cfg, convention)))
        d = cfg.merged_size
    return rows
